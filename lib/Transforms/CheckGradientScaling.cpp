//===- CheckGradientScaling.cpp - no scaled gradient reaches an update ----===//

#include "amp/Transforms/Passes.h"

#include "llvm/ADT/DenseSet.h"

namespace mlir::amp {
#define GEN_PASS_DEF_AMPCHECKGRADIENTSCALING
#include "amp/Transforms/Passes.h.inc"
} // namespace mlir::amp

using namespace mlir;
using namespace mlir::amp;

namespace {

struct CheckGradientScalingPass
    : public amp::impl::AmpCheckGradientScalingBase<CheckGradientScalingPass> {
  void runOnOperation() override {
    bool failed = false;
    for (auto func : getOperation().getOps<func::FuncOp>()) {
      // Scaled values: the loss-scale state and everything computed from it,
      // except through amp.unscale (whose result is unscaled) and the
      // loss-scale bookkeeping itself.
      llvm::DenseSet<Value> scaled;
      for (BlockArgument arg : func.getArguments())
        if (auto r = getRole(func.getArgAttrDict(arg.getArgNumber()));
            r && r->first == role::kState && r->second == "loss_scale")
          scaled.insert(arg);
      if (scaled.empty())
        continue;
      func.walk([&](Operation *op) {
        if (op->hasTrait<RemovesLossScale>())
          return;
        auto isScaled = [&](Value v) { return scaled.contains(v); };
        Value gradient;
        if (auto update = dyn_cast<OptimizerUpdateOpInterface>(op))
          gradient = update.getGrad();
        if ((gradient && isScaled(gradient)) ||
            (op->hasTrait<ReadsUnscaledGradients>() &&
             llvm::any_of(op->getOperands(), isScaled))) {
          op->emitError() << "'" << op->getName()
                          << "' reads a gradient that is still multiplied by the loss scale; "
                             "unscale it first (amp.unscale)";
          failed = true;
          return;
        }
        if (llvm::any_of(op->getOperands(), isScaled))
          scaled.insert(op->result_begin(), op->result_end());
      });
    }
    if (failed)
      signalPassFailure();
  }
};

} // namespace
