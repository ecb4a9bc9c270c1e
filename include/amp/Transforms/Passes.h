//===- Passes.h - amp transformation passes ---------------------*- C++ -*-===//
#ifndef AMP_TRANSFORMS_PASSES_H
#define AMP_TRANSFORMS_PASSES_H

#include "dialects/Amp/AmpOps.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Pass/Pass.h"

namespace mlir::amp {

#define GEN_PASS_DECL
#include "amp/Transforms/Passes.h.inc"

#define GEN_PASS_REGISTRATION
#include "amp/Transforms/Passes.h.inc"

/// Options of `--amp-pipeline`, the whole compile from imported forward
/// graph to a static-shaped training step.
struct PipelineOptions : public PassPipelineOptions<PipelineOptions> {
  Option<std::string> precision{*this, "precision", llvm::cl::desc("fp32, bf16 or fp16"),
                                llvm::cl::init("fp32")};
  Option<std::string> policy{*this, "policy",
                             llvm::cl::desc("autocast policy file (YAML or JSON)"),
                             llvm::cl::init("")};
  Option<std::string> loss{*this, "loss", llvm::cl::desc("cross-entropy or output:NAME"),
                           llvm::cl::init("cross-entropy")};
  Option<std::string> ignoreIndex{
      *this, "ignore-index",
      llvm::cl::desc("cross-entropy: a label value that counts for nothing (e.g. -100)"),
      llvm::cl::init("")};
  Option<std::string> optimizer{*this, "optimizer", llvm::cl::desc("adamw, sgd or none"),
                                llvm::cl::init("adamw")};
  Option<double> lr{*this, "lr", llvm::cl::desc("learning rate"), llvm::cl::init(0.001)};
  Option<double> momentum{*this, "momentum", llvm::cl::desc("SGD momentum"), llvm::cl::init(0.0)};
  Option<bool> nesterov{*this, "nesterov", llvm::cl::desc("SGD Nesterov"), llvm::cl::init(false)};
  Option<double> beta1{*this, "beta1", llvm::cl::desc("AdamW beta1"), llvm::cl::init(0.9)};
  Option<double> beta2{*this, "beta2", llvm::cl::desc("AdamW beta2"), llvm::cl::init(0.999)};
  Option<double> eps{*this, "eps", llvm::cl::desc("AdamW epsilon"), llvm::cl::init(1e-8)};
  Option<double> weightDecay{*this, "weight-decay",
                             llvm::cl::desc("negative: torch.optim's default"),
                             llvm::cl::init(-1.0)};
  Option<int64_t> batch{*this, "batch", llvm::cl::desc("fixes a dynamic batch dimension"),
                        llvm::cl::init(0)};
  Option<std::string> lossScale{
      *this, "loss-scale",
      llvm::cl::desc("auto (dynamic for fp16, none for bf16/fp32), dynamic, static or none"),
      llvm::cl::init("auto")};
  Option<double> lossScaleInit{*this, "loss-scale-init", llvm::cl::desc("initial loss scale"),
                               llvm::cl::init(65536.0)};
  Option<double> growthFactor{*this, "growth-factor", llvm::cl::desc("loss-scale growth"),
                              llvm::cl::init(2.0)};
  Option<double> backoffFactor{*this, "backoff-factor", llvm::cl::desc("loss-scale backoff"),
                               llvm::cl::init(0.5)};
  Option<int64_t> growthInterval{*this, "growth-interval",
                                 llvm::cl::desc("finite steps before the scale grows"),
                                 llvm::cl::init(2000)};
  Option<std::string> skipNonFinite{
      *this, "skip-nonfinite",
      llvm::cl::desc("auto (on for bf16/fp16, off for fp32), true or false"),
      llvm::cl::init("auto")};
  Option<double> clip{*this, "clip", llvm::cl::desc("clip gradients to this global norm"),
                      llvm::cl::init(0.0)};
  Option<double> recomputeGradients{
      *this, "recompute-gradients",
      llvm::cl::desc("when updates wait for the gradient check: at most this share (percent) "
                     "of the step's arithmetic spent computing large gradients again at "
                     "their updates instead of holding them (0: never)"),
      llvm::cl::init(10.0)};
  Option<int64_t> accumulate{*this, "accumulate",
                             llvm::cl::desc("micro-batches per optimizer step"),
                             llvm::cl::init(1)};
  Option<int64_t> dataParallel{
      *this, "data-parallel",
      llvm::cl::desc("ranks of data-parallel training (mpirun -np N); 0 or 1: one process"),
      llvm::cl::init(0)};
  Option<std::string> gradReduce{*this, "grad-reduce",
                                 llvm::cl::desc("data-parallel gradients travel as fp32, bf16 "
                                                "or fp16"),
                                 llvm::cl::init("fp32")};
  Option<double> bucketMb{*this, "bucket-mb",
                          llvm::cl::desc("data-parallel all-reduce bucket size (MB)"),
                          llvm::cl::init(25.0)};
  Option<std::string> backend{
      *this, "backend",
      llvm::cl::desc("legality target: any (the plan runs everywhere), cpu, cpu-bf16 or cuda"),
      llvm::cl::init("any")};
};

/// Adds the passes of `--amp-pipeline` to `pm`; fails (with a diagnostic on
/// stderr) on an option value it cannot honour.
LogicalResult buildAmpPipeline(OpPassManager &pm, const PipelineOptions &options);

/// Registers `--amp-pipeline` with the pass registry.
void registerAmpPipeline();

} // namespace mlir::amp

#endif // AMP_TRANSFORMS_PASSES_H
