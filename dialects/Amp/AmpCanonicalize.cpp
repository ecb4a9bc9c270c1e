//===- AmpCanonicalize.cpp - canonicalization patterns of the amp ops -----===//
//
// Rewrites that the pipeline's canonicalizer applies after autodiff and
// autocast, each registered by its op's getCanonicalizationPatterns, and
// the folders of arithmetic ops.
//
//===----------------------------------------------------------------------===//

#include "dialects/Amp/AmpOps.h"

#include "mlir/IR/PatternMatch.h"

using namespace mlir;
using namespace mlir::amp;

namespace {

/// add(pad(a), pad(b)) of zero pads whose boxes meet along one axis is
/// pad(concat(a, b)), and a plain concat once the boxes cover the result:
/// autodiff writes the gradient of a tensor sliced into parts (a packed
/// Q/K/V projection) as a sum of zero-padded parts. The concat writes each
/// element once where the pads and adds wrote three full tensors; 0 + x is
/// x in every type, so the values are the same.
struct AddOfAdjacentPads : OpRewritePattern<AddOp> {
  using OpRewritePattern::OpRewritePattern;

  LogicalResult matchAndRewrite(AddOp add, PatternRewriter &rewriter) const override {
    auto first = add.getLhs().getDefiningOp<PadOp>();
    auto second = add.getRhs().getDefiningOp<PadOp>();
    auto type = cast<RankedTensorType>(add.getType());
    if (!first || !second || !first.getValue().isZero() || !second.getValue().isZero() ||
        first.getType() != type || second.getType() != type || !type.hasStaticShape())
      return failure();
    int64_t rank = type.getRank(), axis = -1;
    for (int64_t d = 0; d < rank; ++d) {
      bool padded = first.getPads()[d] || first.getPads()[d + rank] || second.getPads()[d] ||
                    second.getPads()[d + rank];
      if (padded && axis >= 0)
        return failure(); // padded along two axes: not two boxes in a row
      if (padded)
        axis = d;
    }
    if (axis < 0)
      return failure();
    if (first.getPads()[axis] > second.getPads()[axis])
      std::swap(first, second);
    int64_t size = type.getDimSize(axis);
    if (size - first.getPads()[axis + rank] != second.getPads()[axis])
      return failure(); // the boxes overlap or leave a gap
    SmallVector<int64_t> shape(type.getShape());
    shape[axis] = size - first.getPads()[axis] - second.getPads()[axis + rank];
    Location loc = add.getLoc();
    Operation *joined = ConcatOp::create(
        rewriter, loc, RankedTensorType::get(shape, type.getElementType()),
        ValueRange{first.getInput(), second.getInput()}, rewriter.getI64IntegerAttr(axis));
    SmallVector<int64_t> pads(2 * rank, 0);
    pads[axis] = first.getPads()[axis];
    pads[axis + rank] = second.getPads()[axis + rank];
    Operation *result = joined;
    if (pads[axis] || pads[axis + rank])
      result = PadOp::create(rewriter, loc, type, joined->getResult(0),
                             rewriter.getDenseI64ArrayAttr(pads), rewriter.getF32FloatAttr(0.0f));
    // The precision report reads why each op has its type: the add's reason.
    if (Attribute rule = add->getAttr("amp.rule")) {
      joined->setAttr("amp.rule", rule);
      result->setAttr("amp.rule", rule);
    }
    rewriter.replaceOp(add, result->getResults());
    return success();
  }
};

} // namespace

void AddOp::getCanonicalizationPatterns(RewritePatternSet &patterns, MLIRContext *context) {
  patterns.add<AddOfAdjacentPads>(context);
}

/// x * 1 is x, bit for bit in every float type (NaN stays NaN, -0 stays -0),
/// when x already has the result's type (1 does not broadcast it). PyTorch's
/// attention exports a scale of 1 on its scores and mask, and autodiff
/// repeats it in the backward: a full pass each over [batch * heads, S, S].
OpFoldResult MulOp::fold(FoldAdaptor adaptor) {
  auto isOne = [](Attribute attr) {
    auto splat = dyn_cast_or_null<SplatElementsAttr>(attr);
    return splat && isa<FloatType>(splat.getElementType()) &&
           splat.getSplatValue<APFloat>().isExactlyValue(1.0);
  };
  if (isOne(adaptor.getRhs()) && getLhs().getType() == getType())
    return getLhs();
  if (isOne(adaptor.getLhs()) && getRhs().getType() == getType())
    return getRhs();
  return {};
}
