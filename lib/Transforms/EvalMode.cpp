//===- EvalMode.cpp - @forward becomes the evaluation program -------------===//
//
// Each op that trains differently than it evaluates says how it evaluates
// (TrainingModeOpInterface, beside the op); this pass only applies that.
//
//===----------------------------------------------------------------------===//

#include "amp/Transforms/Passes.h"

#include "mlir/IR/Builders.h"
#include "mlir/Transforms/RegionUtils.h"

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
    keepStepState(forward);
  }

  /// Evaluation changes no step state: each `amp.state` result returns its
  /// argument (the dropout counter's increment then has no reader).
  static void keepStepState(func::FuncOp forward) {
    Block &body = forward.getBody().front();
    Operation *ret = body.getTerminator();
    for (unsigned i = 0; i < ret->getNumOperands(); ++i) {
      auto role = getRole(forward.getResultAttrDict(i));
      if (!role || role->first != role::kState)
        continue;
      for (BlockArgument arg : body.getArguments())
        if (auto argRole = getRole(forward.getArgAttrDict(arg.getArgNumber()));
            argRole && argRole->first == role::kState && argRole->second == role->second)
          ret->setOperand(i, arg);
    }
    SmallVector<Operation *> ops;
    for (Operation &op : body.without_terminator())
      ops.push_back(&op);
    for (Operation *op : llvm::reverse(ops)) // readers before what they read
      if (isOpTriviallyDead(op))
        op->erase();
  }
};

} // namespace
