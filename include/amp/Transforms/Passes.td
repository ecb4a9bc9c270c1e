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
    of updating. Step state of the model itself (`amp.state` arguments and
    results of @forward: batch norm's running averages) becomes state of
    the step, updated by the forward ops as in training.
  }];
  let options = [
    Option<"loss", "loss", "std::string", /*default=*/"\"cross-entropy\"",
           "cross-entropy (over the single output [..., C], adds int64 `labels` [...]) or "
           "output:NAME">,
    Option<"ignoreIndex", "ignore-index", "std::string", /*default=*/"\"\"",
           "cross-entropy: a label value that counts for nothing (torch's ignore_index)">,
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

def AmpRecognizeComposites : Pass<"amp-recognize-composites", "mlir::ModuleOp"> {
  let summary = "Replaces written-out GELUs and layer norms with amp.gelu and amp.layer_norm";
  let description = [{
    Exporters before ONNX opset 20 write GELU as arithmetic:
    `x * 0.5 * (1 + erf(x / sqrt(2)))`, or with the tanh approximation
    `x * 0.5 * (1 + tanh(sqrt(2 / pi) * (x + 0.044715 * x^3)))`, in any
    association and operand order. Each becomes one `amp.gelu` (with
    `approximate_tanh` for the second), which saves only its input for the
    backward pass instead of the intermediates. A layer norm written out,
    `c = x - mean(x); c / sqrt(mean(c^2) + eps)` (means over trailing dims,
    as ReduceMean imports; c^2 as Pow 2 or c * c), with the scale Mul and
    shift Add that follow it when they take tensors of the normalized dims'
    f32 shape, becomes one `amp.layer_norm` (f32 statistics). Runs before
    amp-build-train-step, so the gradients are the ops' own.
  }];
  let dependentDialects = ["mlir::amp::AmpDialect"];
}

def AmpEvalMode : Pass<"amp-eval-mode", "mlir::ModuleOp"> {
  let summary = "Turns @forward into the evaluation program";
  let description = [{
    Replaces every op of `func.func @forward` with a training and an
    evaluation behaviour (TrainingModeOpInterface: batch norm, dropout) by
    its evaluation form, so evaluation normalizes with the running averages
    and leaves them unchanged. Runs after amp-build-train-step, which
    clones the training form.
  }];
  let dependentDialects = ["mlir::amp::AmpDialect"];
}

def AmpAutocast : Pass<"amp-autocast", "mlir::ModuleOp"> {
  let summary = "Assigns a precision to every op of the training step and inserts casts";
  let description = [{
    Paints every op of every function (forward and backward alike) in the
    spirit of TensorFlow's auto-mixed-precision: compute-bound ops run in the
    low type; follow ops on a path into FP32-only ops stay FP32; other follow
    ops are low when all their activation inputs are low (parameters and
    constants adopt their consumer's type), else FP32. Then each value gets
    at most one cast per type (one per parameter per step, shared by forward
    and backward), and gradients reach the optimizer in FP32. Each op records
    its reason in `amp.rule`.
  }];
  let options = [
    Option<"precision", "precision", "std::string", /*default=*/"\"\"",
           "Low type: bf16, fp16, or fp32 (leaves the IR alone); default: the "
           "policy file's, else bf16">,
    Option<"policy", "policy", "std::string", /*default=*/"\"\"",
           "YAML or JSON policy file (see PrecisionPolicy.h)">,
    ListOption<"opRules", "ops", "std::string",
               "Inline op rules OP=low|f32|follow, e.g. amp.matmul=f32">,
    ListOption<"nodeRules", "nodes", "std::string",
               "Inline node rules GLOB=low|f32|follow over ONNX node names">
  ];
  let dependentDialects = ["mlir::amp::AmpDialect"];
}

def AmpLegalizePrecision : Pass<"amp-legalize-precision", "mlir::ModuleOp"> {
  let summary = "Adds the casts a backend needs for ops it cannot run in low precision";
  let description = [{
    Kept apart from autocast's policy (as XLA's float normalization is): the
    policy may let an op read low-precision inputs, and this pass widens them
    where the chosen backend runs the op in f32 only. Every backend: the ops
    marked Amp_F32KernelsOnly in ODS (softmax, the softmax cross-entropy and
    its gradient, optimizer updates); ops marked Amp_F32ResultKernels (the
    reductions) keep low inputs and only get an f32 result narrowed after
    them when a policy made theirs low. A named backend also
    gets f32 compute for the low types it only emulates (each op's
    bf16EmulatedOn/f16EmulatedOn in ODS: GEMMs on bf16 for `cpu`, on f16 for
    `cpu` and `cpu-bf16`).
  }];
  let options = [
    Option<"backend", "backend", "std::string", /*default=*/"\"any\"",
           "Target: any (runs everywhere), cpu (no native low-precision GEMMs), "
           "cpu-bf16 (native BF16 GEMMs), cuda">
  ];
  let dependentDialects = ["mlir::amp::AmpDialect"];
}

def AmpCastCleanup : Pass<"amp-cast-cleanup", "mlir::ModuleOp"> {
  let summary = "Folds cast pairs, drops no-op casts, merges duplicate casts";
  let dependentDialects = ["mlir::amp::AmpDialect"];
}

def AmpLossScaling : Pass<"amp-loss-scaling", "mlir::ModuleOp"> {
  let summary = "Loss scaling, non-finite skip, clipping and step metrics for @train_step";
  let description = [{
    Seeds the backward pass with the loss scale (a state tensor), unscales
    every gradient in FP32 (`amp.unscale`), checks them all for inf/NaN in
    one fused reduction, clips by global norm (`clip`), and skips the update
    (parameters, optimizer state and step counter unchanged) when a gradient
    is not finite. With mode=dynamic the scale follows torch.amp.GradScaler
    (backoff on overflow, growth after `growth-interval` finite steps) and is
    part of the step's state. The step also returns the metrics
    `loss_scale`, `skipped` and `grad_norm`. Run before autocast.
  }];
  let options = [
    Option<"mode", "mode", "std::string", /*default=*/"\"dynamic\"",
           "dynamic, static or none (no scaling; the skip and metrics stay)">,
    Option<"initScale", "init", "double", /*default=*/"65536.0", "Initial scale">,
    Option<"growthFactor", "growth-factor", "double", /*default=*/"2.0", "Growth factor">,
    Option<"backoffFactor", "backoff-factor", "double", /*default=*/"0.5", "Backoff factor">,
    Option<"growthInterval", "growth-interval", "int64_t", /*default=*/"2000",
           "Finite steps before the scale grows">,
    Option<"skipNonFinite", "skip-nonfinite", "bool", /*default=*/"true",
           "Skip the update when a gradient is inf or NaN">,
    Option<"clip", "clip", "double", /*default=*/"0.0",
           "Clip gradients to this global L2 norm (0: no clipping)">,
    Option<"accumulate", "accumulate", "int64_t", /*default=*/"1",
           "Micro-batches per optimizer step: gradients are summed in FP32 "
           "buffers and their mean applied every accumulate-th step">
  ];
  let dependentDialects = ["mlir::amp::AmpDialect"];
}

def AmpDataParallel : Pass<"amp-data-parallel", "mlir::ModuleOp"> {
  let summary = "All-reduces the gradients of @train_step across data-parallel ranks";
  let description = [{
    Every rank runs the same step on its own shard of the global batch; this
    pass makes each optimizer update see the mean of its gradient over the
    `ranks` ranks. Gradients are grouped into buckets of about `bucket-mb`
    megabytes in the order the backward pass produces them, and each bucket
    is one `amp.all_reduce` placed right after its last gradient is ready.
    The reduction is FP32 unless `grad-reduce` asks for bf16 or fp16 (half
    the bytes; each combine adds in FP32 and rounds). The loss the step
    reports becomes the mean over the ranks too. Run before amp-loss-scaling,
    which then checks, measures and clips the reduced gradients, and reduces
    its non-finite flag and norm as well, so every rank takes the same skip,
    scale and clipping decision.
  }];
  let options = [
    Option<"ranks", "ranks", "int64_t", /*default=*/"2", "Data-parallel world size (>= 2)">,
    Option<"gradReduce", "grad-reduce", "std::string", /*default=*/"\"fp32\"",
           "Type the gradients travel in: fp32, bf16 or fp16">,
    Option<"bucketMb", "bucket-mb", "double", /*default=*/"25.0",
           "Bucket size in MB (of FP32 gradients)">
  ];
  let dependentDialects = ["mlir::amp::AmpDialect"];
}

def AmpCheckGradientScaling : Pass<"amp-check-gradient-scaling", "mlir::ModuleOp"> {
  let summary = "Rejects IR that clips or updates with scaled gradients";
  let description = [{
    A value derived from the loss scale (through any op but `amp.unscale`) is
    a scaled gradient. Optimizer updates, clipping and gradient norms must
    see only unscaled gradients; this pass reports any that do not, at the
    op's location. The pipeline runs it after loss scaling.
  }];
  let dependentDialects = ["mlir::amp::AmpDialect"];
}

def AmpFuseWeightCasts : Pass<"amp-fuse-weight-casts", "mlir::ModuleOp"> {
  let summary = "Keeps each parameter's low-precision copy as state, written by its update";
  let description = [{
    Replaces the per-step cast of a master weight to the low type with a
    state tensor `NAME.low`, produced by casting the updated weight right
    after its optimizer update; the lowering fuses that cast into the update
    kernel, so one pass over the weights writes both.
  }];
  let dependentDialects = ["mlir::amp::AmpDialect"];
}

def AmpRecomputeGradients : Pass<"amp-recompute-gradients", "mlir::ModuleOp"> {
  let summary = "Checks large gradients after the backward pass and computes them again at their update";
  let description = [{
    Where updates wait for the step's gradient check (the non-finite skip
    or clipping), every gradient would stay alive until the end of the
    step. A gradient larger than the tensors it is computed from (a
    filter's gradient on small maps) can instead be computed and checked
    alone just before the step's check, after the backward pass (the
    step's check and norm combine the partial ones), and computed again,
    by the same ops from the same inputs, just before its update. The gradients saving the most bytes per
    operation go first while the added arithmetic stays within `percent` of
    the step's GEMM and convolution operations. Run after CSE and before
    amp-schedule-updates.
  }];
  let options = [
    Option<"percent", "percent", "double", /*default=*/"10.0",
           "At most this share (percent) of the step's arithmetic spent "
           "recomputing gradients (0: never)">
  ];
  let dependentDialects = ["mlir::amp::AmpDialect"];
}

def AmpScheduleUpdates : Pass<"amp-schedule-updates", "mlir::ModuleOp"> {
  let summary = "Runs each optimizer update as soon as its gradient is ready";
  let description = [{
    Moves every optimizer update of @train_step (and the cast writing its
    low-precision weight copy) to just after the last op it depends on or
    must follow to update its parameter and state in place, so that each
    weight gradient dies at its update instead of at the end of the step.
    Updates gated by a skip flag that checks all gradients stay at the end.
  }];
  let dependentDialects = ["mlir::amp::AmpDialect"];
}

#endif // AMP_TRANSFORMS_PASSES_TD
