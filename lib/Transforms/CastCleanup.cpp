//===- CastCleanup.cpp - fold, drop and merge casts -----------------------===//
//
// Cast folders (CastOp::fold) drop no-op casts, fold exact round trips
// (bf16 -> f32 -> bf16) and fold casts of constants; the patterns here merge
// casts of one value to one type into the first of them, and let a GEMM whose
// every reader widens its low result write its f32 accumulator instead. The
// greedy driver erases casts left without users.
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

/// `%r = <low GEMM> -> bf16` whose every reader is `cast %r to f32`: the
/// GEMM writes its FP32 accumulator as the result (what autocast does when
/// it sees only FP32 readers, here after the follow-ops between it and them
/// turned f32). The rounding to bf16 and the widening pass go; the value is
/// the unrounded accumulator, closer to the FP32 model.
struct WidenGemmResultForF32Readers : public OpRewritePattern<CastOp> {
  using OpRewritePattern::OpRewritePattern;

  LogicalResult matchAndRewrite(CastOp op, PatternRewriter &rewriter) const override {
    auto result = dyn_cast<OpResult>(op.getInput());
    auto type = dyn_cast<RankedTensorType>(op.getType());
    if (!result || !type || !type.getElementType().isF32() ||
        cast<RankedTensorType>(result.getType()).getElementType().isF32())
      return rewriter.notifyMatchFailure(op, "not a widening cast of an op's result");
    Operation *producer = result.getOwner();
    auto precision = dyn_cast<PrecisionOpInterface>(producer);
    if (!precision || !precision.canWidenResult() || producer->getNumResults() != 1)
      return rewriter.notifyMatchFailure(op, "its producer cannot write its accumulator");
    for (Operation *user : result.getUsers())
      if (auto cast = dyn_cast<CastOp>(user); !cast || cast.getType() != type)
        return rewriter.notifyMatchFailure(op, "a reader wants the low result");
    rewriter.modifyOpInPlace(producer, [&] {
      result.setType(type);
      if (auto rule = producer->getAttrOfType<StringAttr>("amp.rule"))
        producer->setAttr("amp.rule",
                          rewriter.getStringAttr(rule.getValue() +
                                                 "; f32 result (every reader widens it)"));
    });
    for (Operation *user : llvm::make_early_inc_range(result.getUsers()))
      rewriter.replaceOp(user, result);
    return success();
  }
};

struct CastCleanupPass : public amp::impl::AmpCastCleanupBase<CastCleanupPass> {
  void runOnOperation() override {
    RewritePatternSet patterns(&getContext());
    patterns.add<MergeDuplicateCasts, WidenGemmResultForF32Readers>(&getContext());
    if (failed(applyPatternsGreedily(getOperation(), std::move(patterns))))
      return signalPassFailure();
  }
};

} // namespace
