//===- Passes.td - amp transformation passes ---------------*- tablegen -*-===//

#ifndef AMP_TRANSFORMS_PASSES_TD
#define AMP_TRANSFORMS_PASSES_TD

include "mlir/Pass/PassBase.td"

def AmpSetBatchSize : Pass<"amp-set-batch-size", "mlir::ModuleOp"> {
  let summary = "Fixes a dynamic batch dimension and re-infers static shapes";
  let description = [{
    Replaces the dynamic leading dimension of every batch input (arguments
    marked `amp.input`) with `batch`, then re-runs each op's shape inference
    in program order and updates function types. Any other dynamic dimension
    is reported at the ONNX node that produced it.
  }];
  let options = [
    Option<"batch", "batch", "int64_t", /*default=*/"0",
           "Batch size; 0 leaves shapes as they are">
  ];
  let dependentDialects = ["mlir::amp::AmpDialect"];
}

def AmpBuildTrainStep : Pass<"amp-build-train-step", "mlir::ModuleOp"> {
  let summary = "Builds train_step = forward + loss + reverse-mode autodiff + optimizer update";
  let description = [{
    Reads `func.func @forward` (batch inputs `amp.input`, parameters
    `amp.param`, outputs `amp.output`) and adds `func.func @train_step`, a pure
    function from (parameters, optimizer state, step, batch) to (new
    parameters, new optimizer state, new step, loss). Gradients come from each
    op's GradientOpInterface. `optimizer=none` returns the gradients instead
    of updating.
  }];
  let options = [
    Option<"loss", "loss", "std::string", /*default=*/"\"cross-entropy\"",
           "cross-entropy (over the single output, adds an int64 `labels` input) or output:NAME">,
    Option<"optimizer", "optimizer", "std::string", /*default=*/"\"adamw\"",
           "adamw, sgd or none (return gradients)">,
    Option<"lr", "lr", "double", /*default=*/"0.001", "Learning rate">,
    Option<"momentum", "momentum", "double", /*default=*/"0.0", "SGD momentum">,
    Option<"nesterov", "nesterov", "bool", /*default=*/"false", "SGD Nesterov momentum">,
    Option<"beta1", "beta1", "double", /*default=*/"0.9", "AdamW beta1">,
    Option<"beta2", "beta2", "double", /*default=*/"0.999", "AdamW beta2">,
    Option<"eps", "eps", "double", /*default=*/"1e-8", "AdamW epsilon">,
    Option<"weightDecay", "weight-decay", "double", /*default=*/"-1.0",
           "Weight decay; negative means torch.optim's default (0.01 AdamW, 0 SGD)">
  ];
  let dependentDialects = ["mlir::amp::AmpDialect", "mlir::func::FuncDialect"];
}

#endif // AMP_TRANSFORMS_PASSES_TD
