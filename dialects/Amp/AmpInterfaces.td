//===- AmpInterfaces.td - gradient interface of amp ops ---*- tablegen -*-===//
//
// Each op states its own gradient rule here, beside the op, so autodiff is a
// generic walk and never a central switch over op kinds.
//
//===----------------------------------------------------------------------===//

#ifndef AMP_INTERFACES_TD
#define AMP_INTERFACES_TD

include "mlir/IR/OpBase.td"

def Amp_GradientOpInterface : OpInterface<"GradientOpInterface"> {
  let cppNamespace = "::mlir::amp";
  let description = [{
    Reverse-mode derivative of an op. Given the gradients of the op's results
    (a null Value means "no gradient reaches this result", i.e. zero), the op
    builds the gradient of each operand. Operands that are not differentiable
    (integer labels, step counters) get a null Value.
  }];
  let methods = [
    InterfaceMethod<
      /*desc=*/"Builds operand gradients at the builder's insertion point.",
      /*retTy=*/"::llvm::LogicalResult",
      /*methodName=*/"buildGradients",
      /*args=*/(ins "::mlir::OpBuilder &":$builder,
                    "::mlir::ArrayRef<::mlir::Value>":$resultGradients,
                    "::llvm::SmallVectorImpl<::mlir::Value> &":$operandGradients)
    >
  ];
}

#endif // AMP_INTERFACES_TD
