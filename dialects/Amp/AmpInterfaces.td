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

def Amp_PrecisionOpInterface : OpInterface<"PrecisionOpInterface"> {
  let cppNamespace = "::mlir::amp";
  let description = [{
    The op's default precision class for autocast, with the reason shown in
    decision reports. Most ops follow their inputs (the default); compute-
    bound and numerically sensitive ops override, beside their definition
    (AmpPrecision.cpp). Policies may override the default per op type or per
    ONNX node.
  }];
  let methods = [
    InterfaceMethod<"The precision class autocast assigns by default.",
      "::mlir::amp::PrecisionClass", "getPrecisionClass", (ins), [{}],
      [{ return ::mlir::amp::PrecisionClass::Follow; }]>,
    InterfaceMethod<"Why the default is what it is (for reports).",
      "::llvm::StringRef", "getPrecisionReason", (ins), [{}],
      [{ return "simple elementwise or data movement: follows its inputs"; }]>,
    InterfaceMethod<[{True when an f32 op may read low-precision inputs and
      widen them itself (as PyTorch does for softmax and sum), so autocast
      need not insert a cast in front of it.}],
      "bool", "acceptsLowPrecisionInputs", (ins), [{}], [{ return false; }]>,
    InterfaceMethod<[{True when a low-precision op can write an f32 result
      from its FP32 accumulator (a GEMM), which autocast uses when only f32
      ops read the result.}],
      "bool", "canWidenResult", (ins), [{}], [{ return false; }]>
  ];
}

#endif // AMP_INTERFACES_TD
