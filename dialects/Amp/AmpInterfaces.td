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
    (a null Value means "no gradient reaches this result", i.e. zero; autodiff
    calls the rule only when at least one is not null, so a single-result
    op's gradient is always there), the op builds the gradient of each
    operand into `operandGrads`, which arrives with one null entry per
    operand. Operands that are not differentiable (integer labels, step
    counters) keep their null entry.
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
    bound and numerically sensitive ops state their class in their ODS
    definition (the `precision` fields of Amp_Op, AmpOps.td), which
    generates these methods. Policies may override the default per op type
    or per ONNX node.
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
      "bool", "canWidenResult", (ins), [{}], [{ return false; }]>,
    InterfaceMethod<[{True when `backend` (a capability name of
      amp-legalize-precision: cpu, cpu-bf16, cuda) runs this op on `element`
      (bf16 or f16) only by emulation: widening to f32, computing in f32 and
      rounding once. Legality for that backend then shows the f32 compute in
      the IR. Generated from the op's `bf16EmulatedOn`/`f16EmulatedOn`.}],
      "bool", "emulatesOn", (ins "::mlir::Type":$element, "::llvm::StringRef":$backend),
      [{}], [{ return false; }]>,
    InterfaceMethod<[{True when operand `index` is f32 by definition
      (normalization parameters, statistics, running averages) whatever the
      op's class: autocast neither casts it to the low type nor counts it
      when a follow op looks at its inputs. From the ODS `f32Operands`.}],
      "bool", "isF32Operand", (ins "unsigned":$index), [{}], [{ return false; }]>,
    InterfaceMethod<[{True when result `index` is f32 by definition
      (statistics): autocast keeps its type. From the ODS `f32Results`.}],
      "bool", "isF32Result", (ins "unsigned":$index), [{}], [{ return false; }]>
  ];
}

def Amp_ArithmeticOpInterface : OpInterface<"ArithmeticOpInterface"> {
  let cppNamespace = "::mlir::amp";
  let description = [{
    The floating-point operations of a compute-bound op (GEMMs and
    convolutions; a multiply-add counts two), from its static shapes. Passes
    that trade computation for memory weigh their cost with it.
  }];
  let methods = [
    InterfaceMethod<"Floating-point operations the op performs (0 when a shape is dynamic).",
      "int64_t", "getFlops", (ins)>
  ];
}

def Amp_TrainingModeOpInterface : OpInterface<"TrainingModeOpInterface"> {
  let cppNamespace = "::mlir::amp";
  let description = [{
    An op that computes differently in training than in evaluation: batch
    normalization (batch statistics and running-average updates, or the
    running averages) and dropout (a random mask, or nothing). Imported
    graphs are in training mode; amp-eval-mode asks each such op of
    @forward, the evaluation program, for its evaluation form.
  }];
  let methods = [
    InterfaceMethod<[{Builds the evaluation form at the builder's insertion
      point and gives one replacement per result (an updated running
      average is replaced by its old value; a result nothing may read in
      evaluation, such as a saved statistic, may stay null).}],
      "::llvm::LogicalResult", "buildEvalForm",
      (ins "::mlir::OpBuilder &":$builder,
           "::llvm::SmallVectorImpl<::mlir::Value> &":$replacements)>
  ];
}

def Amp_OptimizerUpdateOpInterface : OpInterface<"OptimizerUpdateOpInterface"> {
  let cppNamespace = "::mlir::amp";
  let description = [{
    One optimizer step for one parameter: reads the FP32 master parameter,
    its gradient and the optimizer's state, honours an optional skip flag
    (non-zero: nothing changes), and returns the new parameter first, then
    the new state. Passes that place loss scaling, check gradients, fuse the
    weight copy or plan updates in place ask this interface, never a list of
    optimizer ops; an op gets it by naming its operands `param`, `grad` and
    `skip` and its first result `new_param`.
  }];
  let methods = [
    InterfaceMethod<"The FP32 master parameter this step updates.",
      "::mlir::Value", "getParam", (ins), [{ return $_op.getParam(); }]>,
    InterfaceMethod<"The gradient the step reads.",
      "::mlir::Value", "getGrad", (ins), [{ return $_op.getGrad(); }]>,
    InterfaceMethod<"Makes the step read another gradient (unscaled, clipped).",
      "void", "setGrad", (ins "::mlir::Value":$grad),
      [{ $_op.getGradMutable().assign(grad); }]>,
    InterfaceMethod<"The skip flag, or null when the step always applies.",
      "::mlir::Value", "getSkip", (ins), [{ return $_op.getSkip(); }]>,
    InterfaceMethod<"Makes the step skip when the scalar flag is non-zero.",
      "void", "setSkip", (ins "::mlir::Value":$skip),
      [{ $_op.getSkipMutable().assign(skip); }]>,
    InterfaceMethod<"The updated parameter.",
      "::mlir::Value", "getNewParam", (ins), [{ return $_op.getNewParam(); }]>
  ];
}

#endif // AMP_INTERFACES_TD
