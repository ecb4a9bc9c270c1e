//===- EvalMode.cpp - @forward becomes the evaluation program -------------===//
//
// Each op that trains differently than it evaluates says how it evaluates
// (TrainingModeOpInterface, beside the op); this pass only applies that.
//
//===----------------------------------------------------------------------===//

#include "amp/Transforms/Passes.h"

#include "mlir/IR/Builders.h"

namespace mlir::amp {
#define GEN_PASS_DEF_AMPEVALMODE
#include "amp/Transforms/Passes.h.inc"
} // namespace mlir::amp

using namespace mlir;
using namespace mlir::amp;

namespace {

struct EvalModePass : public amp::impl::AmpEvalModeBase<EvalModePass> {
  void runOnOperation() override {
    auto forward = getOperation().lookupSymbol<func::FuncOp>("forward");
    if (!forward)
      return;
    SmallVector<TrainingModeOpInterface> ops;
    forward.walk([&](TrainingModeOpInterface op) { ops.push_back(op); });
    for (TrainingModeOpInterface op : ops) {
      OpBuilder builder(op);
      SmallVector<Value> replacements;
      if (failed(op.buildEvalForm(builder, replacements)))
        return signalPassFailure();
      for (auto [result, replacement] : llvm::zip(op->getResults(), replacements)) {
        if (replacement) {
          result.replaceAllUsesWith(replacement);
        } else if (!result.use_empty()) {
          op->emitError() << "result #" << cast<OpResult>(result).getResultNumber()
                          << " has no evaluation form but is used";
          return signalPassFailure();
        }
      }
      op->erase();
    }
  }
};

} // namespace
