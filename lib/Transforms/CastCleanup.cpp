//===- CastCleanup.cpp - fold, drop and merge casts -----------------------===//
//
// Cast folders (CastOp::fold) drop no-op casts, fold exact round trips
// (bf16 -> f32 -> bf16) and fold casts of constants; the pattern here merges
// casts of one value to one type into the first of them. The greedy driver
// erases casts left without users.
//
//===----------------------------------------------------------------------===//

#include "amp/Transforms/Passes.h"

#include "mlir/IR/PatternMatch.h"
#include "mlir/Transforms/GreedyPatternRewriteDriver.h"

namespace mlir::amp {
#define GEN_PASS_DEF_AMPCASTCLEANUP
#include "amp/Transforms/Passes.h.inc"
} // namespace mlir::amp

using namespace mlir;
using namespace mlir::amp;

namespace {

/// Replaces a cast by an identical earlier cast of the same value in the
/// same block.
struct MergeDuplicateCasts : public OpRewritePattern<CastOp> {
  using OpRewritePattern::OpRewritePattern;

  LogicalResult matchAndRewrite(CastOp op, PatternRewriter &rewriter) const override {
    for (Operation *user : op.getInput().getUsers()) {
      auto other = dyn_cast<CastOp>(user);
      if (!other || other == op || other.getType() != op.getType() ||
          other->getBlock() != op->getBlock() || !other->isBeforeInBlock(op))
        continue;
      rewriter.replaceOp(op, other.getResult());
      return success();
    }
    return rewriter.notifyMatchFailure(op, "no earlier identical cast of this value");
  }
};

struct CastCleanupPass : public amp::impl::AmpCastCleanupBase<CastCleanupPass> {
  void runOnOperation() override {
    RewritePatternSet patterns(&getContext());
    patterns.add<MergeDuplicateCasts>(&getContext());
    if (failed(applyPatternsGreedily(getOperation(), std::move(patterns))))
      return signalPassFailure();
  }
};

} // namespace
