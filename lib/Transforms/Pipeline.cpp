//===- Pipeline.cpp - the --amp-pipeline pass pipeline --------------------===//

#include "amp/Transforms/Passes.h"

#include "mlir/Pass/PassManager.h"
#include "mlir/Pass/PassRegistry.h"
#include "mlir/Transforms/Passes.h"

using namespace mlir;
using namespace mlir::amp;

LogicalResult mlir::amp::buildAmpPipeline(OpPassManager &pm,
                                          const PipelineOptions &options) {
  if (options.precision != "fp32" && options.precision != "bf16" &&
      options.precision != "fp16") {
    llvm::errs() << "error: --amp-pipeline: precision=" << options.precision
                 << " is not supported (supported: fp32, bf16, fp16)\n";
    return failure();
  }
  pm.addPass(createAmpSetBatchSize(AmpSetBatchSizeOptions{options.batch}));
  pm.addPass(createAmpRecognizeComposites());
  AmpBuildTrainStepOptions step;
  step.loss = options.loss;
  step.ignoreIndex = options.ignoreIndex;
  step.optimizer = options.optimizer;
  step.lr = options.lr;
  step.momentum = options.momentum;
  step.nesterov = options.nesterov;
  step.beta1 = options.beta1;
  step.beta2 = options.beta2;
  step.eps = options.eps;
  step.weightDecay = options.weightDecay;
  pm.addPass(createAmpBuildTrainStep(step));
  pm.addPass(createAmpEvalMode());
  if (options.dataParallel > 1) {
    AmpDataParallelOptions parallel;
    parallel.ranks = options.dataParallel;
    parallel.gradReduce = options.gradReduce;
    parallel.bucketMb = options.bucketMb;
    pm.addPass(createAmpDataParallel(parallel));
  }
  if (options.optimizer != "none") {
    bool lowPrecision = options.precision != "fp32";
    AmpLossScalingOptions scaling;
    scaling.mode = options.lossScale == "auto"
                       ? (options.precision == "fp16" ? "dynamic" : "none")
                       : options.lossScale.getValue();
    scaling.initScale = options.lossScaleInit;
    scaling.growthFactor = options.growthFactor;
    scaling.backoffFactor = options.backoffFactor;
    scaling.growthInterval = options.growthInterval;
    if (options.skipNonFinite != "auto" && options.skipNonFinite != "true" &&
        options.skipNonFinite != "false") {
      llvm::errs() << "error: --amp-pipeline: skip-nonfinite must be auto, true or false\n";
      return failure();
    }
    scaling.skipNonFinite = options.skipNonFinite == "auto" ? lowPrecision
                                                            : options.skipNonFinite == "true";
    scaling.clip = options.clip;
    scaling.accumulate = options.accumulate;
    pm.addPass(createAmpLossScaling(scaling));
    pm.addPass(createAmpCheckGradientScaling());
  }
  // Policy, then what the target backend needs (legality), then tidy casts.
  AmpAutocastOptions autocast;
  autocast.precision = options.precision;
  autocast.policy = options.policy;
  pm.addPass(createAmpAutocast(autocast));
  pm.addPass(createAmpLegalizePrecision(AmpLegalizePrecisionOptions{options.backend}));
  pm.addPass(createAmpCastCleanup());
  pm.addPass(createAmpFuseWeightCasts());
  pm.addPass(createCanonicalizerPass());
  pm.addPass(createCSEPass());
  // After CSE, which would merge a recomputed gradient with its original.
  pm.addPass(createAmpRecomputeGradients(
      AmpRecomputeGradientsOptions{options.recomputeGradients}));
  // Last: the passes above may add readers of a parameter or gradient.
  pm.addPass(createAmpScheduleUpdates());
  return success();
}

void mlir::amp::registerAmpPipeline() {
  registerPassPipeline(
      "amp-pipeline",
      "Imported forward graph -> static-shaped training step "
      "(options: precision policy loss ignore-index optimizer lr momentum nesterov beta1 beta2 "
      "eps weight-decay batch loss-scale loss-scale-init growth-factor backoff-factor "
      "growth-interval skip-nonfinite clip recompute-gradients accumulate data-parallel grad-reduce bucket-mb "
      "backend)",
      [](OpPassManager &pm, StringRef text,
         function_ref<LogicalResult(const Twine &)> errorHandler) {
        PipelineOptions options;
        if (failed(options.parseFromString(text)))
          return errorHandler("invalid --amp-pipeline options: " + text);
        return buildAmpPipeline(pm, options);
      },
      [](function_ref<void(const mlir::detail::PassOptions &)> handler) {
        handler(PipelineOptions());
      });
}
