//===- RecomputeGradients.cpp - checked gradients computed again at their update ===//
//
// With the non-finite skip (or clipping), no update may run before every
// gradient has been checked, so every weight gradient stays alive until the
// end of the step. Where a gradient is much larger than the tensors it is
// computed from, keeping those instead is cheaper: a 512x512x3x3 filter's
// gradient on ResNet-18's 1x1 maps is 9.4 MB, made from 130 KB. For such a
// gradient this pass
//  - computes and checks it alone (found_nonfinite and global_norm of it,
//    one fused kernel) just before the step's check, after the backward
//    pass, when the activations are gone, and lets it die there;
//  - folds that partial check into the step's: found = maximum(found, f),
//    norm = global_norm(norm, n), the norm of the norms, as
//    torch.nn.utils.clip_grad_norm_ forms it;
//  - computes it again, from the same inputs and by the same ops, just
//    before its update, which therefore sees the values that were checked.
// The trade is the gradient's computation done twice, for memory: like
// activation checkpointing, but of weight gradients. The gradients that
// save the most bytes per operation go first, while the extra arithmetic
// stays within `percent` of the step's (its GEMMs and convolutions). Runs
// after CSE (which would merge the copies again), before
// amp-schedule-updates (which must see the copies' reads).
//
//===----------------------------------------------------------------------===//

#include "amp/Transforms/Passes.h"

#include "mlir/IR/Builders.h"
#include "mlir/IR/IRMapping.h"
#include "mlir/Interfaces/SideEffectInterfaces.h"
#include "llvm/ADT/SmallPtrSet.h"

namespace mlir::amp {
#define GEN_PASS_DEF_AMPRECOMPUTEGRADIENTS
#include "amp/Transforms/Passes.h.inc"
} // namespace mlir::amp

using namespace mlir;
using namespace mlir::amp;

namespace {

bool isScalar(Value value) {
  auto type = dyn_cast<RankedTensorType>(value.getType());
  return type && type.getRank() == 0;
}

/// A pure op that carries one tensor through, rescaled, viewed or cast:
/// the unscale, a clip's multiply, a reshape or a cast between a gradient's
/// computation and its update. Its other operands are scalars.
Value passedThrough(Operation *op) {
  if (!op || !isPure(op) || op->getNumResults() != 1)
    return {};
  Value carried;
  for (Value operand : op->getOperands()) {
    if (isScalar(operand))
      continue;
    if (carried)
      return {};
    carried = operand;
  }
  auto from = carried ? dyn_cast<ShapedType>(carried.getType()) : ShapedType();
  auto to = dyn_cast<ShapedType>(op->getResult(0).getType());
  if (!from || !to || !from.hasStaticShape() || !to.hasStaticShape() ||
      from.getNumElements() != to.getNumElements())
    return {};
  return carried;
}

/// How one update's gradient is made: `ops` (in program order, the first
/// computes it from its inputs, the rest pass it through) and the value of
/// them the step's check reads.
struct GradientChain {
  SmallVector<Operation *> ops;
  Value checked;
};

/// The chain ending at `update`'s gradient, when each of its values is read
/// only by the next op of the chain and the step's check.
std::optional<GradientChain> chainOf(OptimizerUpdateOpInterface update,
                                     FoundNonFiniteOp found, GlobalNormOp norm) {
  GradientChain chain;
  Value value = update.getGrad();
  Operation *reader = update;
  while (Operation *op = value.getDefiningOp()) {
    bool onlyChecked = llvm::all_of(value.getUsers(), [&](Operation *user) {
      return user == reader || user == found || user == norm;
    });
    if (!onlyChecked || op->getBlock() != update->getBlock())
      return std::nullopt;
    // Its users are few; the check's operands are all the gradients.
    if (llvm::is_contained(value.getUsers(), found.getOperation()))
      chain.checked = value;
    chain.ops.insert(chain.ops.begin(), op);
    Value carried = passedThrough(op);
    if (!carried)
      break;
    value = carried;
    reader = op;
  }
  // The first op is a GEMM or convolution, whose cost the op states and
  // whose kernels compute the same bits again (not, e.g., a scatter-add of
  // an embedding's gradient, which sums with atomics on the GPU).
  Operation *first = chain.ops.empty() ? nullptr : chain.ops.front();
  if (!chain.checked || !first || !isa<ArithmeticOpInterface>(first) || !isPure(first) ||
      first->getNumResults() != 1)
    return std::nullopt;
  auto isStatic = [](Value value) { return cast<ShapedType>(value.getType()).hasStaticShape(); };
  if (!isStatic(chain.checked) || !llvm::all_of(first->getOperands(), isStatic))
    return std::nullopt;
  return chain;
}

/// The bytes that recomputing keeps alive longer: the inputs of the chain's
/// first op that the arena holds (not parameters, state or constants).
int64_t inputBytes(Operation *first) {
  int64_t bytes = 0;
  for (Value operand : first->getOperands()) {
    Operation *def = operand.getDefiningOp();
    if (def && !def->hasTrait<OpTrait::ConstantLike>())
      bytes += staticTensorBytes(operand);
  }
  return bytes;
}

/// The arithmetic of `op`: what a GEMM or convolution states, else 0.
int64_t flopsOf(Operation *op) {
  auto arithmetic = dyn_cast<ArithmeticOpInterface>(op);
  return arithmetic ? arithmetic.getFlops() : 0;
}

struct RecomputeGradientsPass
    : public amp::impl::AmpRecomputeGradientsBase<RecomputeGradientsPass> {
  using AmpRecomputeGradientsBase::AmpRecomputeGradientsBase;

  void runOnOperation() override {
    auto step = getOperation().lookupSymbol<func::FuncOp>("train_step");
    if (!step || percent <= 0)
      return;
    Block &body = step.getBody().front();
    auto founds = llvm::to_vector(body.getOps<FoundNonFiniteOp>());
    auto norms = llvm::to_vector(body.getOps<GlobalNormOp>());
    // The one check of all gradients amp-loss-scaling makes.
    if (founds.size() != 1 || norms.size() != 1 ||
        founds[0]->getOperands() != norms[0]->getOperands())
      return;
    FoundNonFiniteOp found = founds[0];
    GlobalNormOp norm = norms[0];

    // Candidates: gradients whose updates wait for the check and that are
    // larger than the inputs they would keep alive instead.
    struct Candidate {
      OptimizerUpdateOpInterface update;
      GradientChain chain;
      int64_t savedBytes, flops;
    };
    SmallVector<Candidate> candidates;
    for (auto update : body.getOps<OptimizerUpdateOpInterface>()) {
      std::optional<GradientChain> chain = chainOf(update, found, norm);
      if (!chain)
        continue;
      // Only an update that waits for the check (its skip flag, or a clip
      // between the check and it) holds its gradient that long.
      bool waits = update.getSkip() || chain->ops.back()->getResult(0) != chain->checked;
      int64_t saved = staticTensorBytes(chain->checked) - inputBytes(chain->ops.front());
      if (!waits || saved <= 0)
        continue;
      int64_t flops = 0;
      for (Operation *op : chain->ops)
        flops += flopsOf(op);
      candidates.push_back({update, *chain, saved, flops});
    }
    // The most bytes for the least arithmetic first, while the budget lasts.
    llvm::stable_sort(candidates, [](const Candidate &a, const Candidate &b) {
      return a.savedBytes * static_cast<double>(b.flops) >
             b.savedBytes * static_cast<double>(a.flops);
    });
    int64_t stepFlops = 0;
    for (Operation &op : body)
      stepFlops += flopsOf(&op);
    double budget = percent / 100.0 * static_cast<double>(stepFlops);
    // The step's check (found_nonfinite and global_norm, in either order):
    // the partial checks go before it.
    Operation *check = found->isBeforeInBlock(norm) ? found.getOperation() : norm.getOperation();
    SmallVector<Value> partialFound, partialNorm;
    for (Candidate &candidate : candidates) {
      if (static_cast<double>(candidate.flops) > budget)
        continue;
      budget -= static_cast<double>(candidate.flops);
      recompute(candidate.update, candidate.chain, check, found, norm, partialFound,
                partialNorm);
    }
    if (partialFound.empty())
      return;
    combine(found, norm, partialFound, partialNorm);
  }

  /// Computes and checks `chain`'s gradient alone just before `check` (the
  /// step's), and makes it again for `update`.
  void recompute(OptimizerUpdateOpInterface update, const GradientChain &chain,
                 Operation *check, FoundNonFiniteOp found, GlobalNormOp norm,
                 SmallVectorImpl<Value> &partialFound, SmallVectorImpl<Value> &partialNorm) {
    // Computed and checked where the step's check is: after the backward
    // pass, when the activations are gone, so that the gradient's bytes
    // never add to their peak. Its inputs live that long anyway, for the
    // copy; the ops moved only ever move later than their operands.
    for (Operation *op : chain.ops) {
      op->moveBefore(check);
      if (op->getResult(0) == chain.checked)
        break;
    }
    OpBuilder b(update);
    b.setInsertionPointAfterValue(chain.checked);
    Location loc = chain.checked.getLoc();
    auto partial = FoundNonFiniteOp::create(b, loc, found.getType(), chain.checked);
    partial->setAttrs(found->getAttrDictionary());
    auto partialNormOp = GlobalNormOp::create(b, loc, norm.getType(), chain.checked);
    partialNormOp->setAttrs(norm->getAttrDictionary());
    partialFound.push_back(partial);
    partialNorm.push_back(partialNormOp);
    b.setInsertionPoint(update);
    IRMapping copies;
    for (Operation *op : chain.ops)
      b.clone(*op, copies);
    update.setGrad(copies.lookup(update.getGrad()));
    // The original ops past the check fed only the update.
    for (Operation *op : llvm::reverse(chain.ops))
      if (op->use_empty())
        op->erase();
  }

  /// The gradients checked alone leave the step's check; found' =
  /// maximum(found, f_1, ...) and norm' = global_norm(norm, n_1, ...) take
  /// its places, and it is dropped when no gradient is left to it.
  void combine(FoundNonFiniteOp found, GlobalNormOp norm, ArrayRef<Value> partialFound,
               ArrayRef<Value> partialNorm) {
    // The gradients checked alone leave the step's check, in one pass (the
    // check reads every gradient of the step).
    llvm::SmallPtrSet<Operation *, 16> alone;
    for (Value flag : partialFound)
      alone.insert(flag.getDefiningOp());
    SmallVector<Value> rest;
    for (Value grad : found->getOperands())
      if (llvm::none_of(grad.getUsers(), [&](Operation *user) { return alone.contains(user); }))
        rest.push_back(grad);
    found->setOperands(rest);
    norm->setOperands(rest);
    OpBuilder b(found);
    b.setInsertionPointAfter(found->isBeforeInBlock(norm) ? norm : found);
    Location loc = found.getLoc();
    bool keep = found->getNumOperands() > 0;
    Value anyFound = keep ? found.getResult() : partialFound.front();
    Operation *firstMaximum = nullptr;
    for (Value flag : partialFound.drop_front(keep ? 0 : 1)) {
      auto maximum = MaximumOp::create(b, loc, found.getType(), anyFound, flag);
      maximum->setAttr("amp.rule",
                       b.getStringAttr("gradient check: any of the partial checks (FP32 flags)"));
      anyFound = maximum;
      if (!firstMaximum)
        firstMaximum = maximum;
    }
    SmallVector<Value> norms(partialNorm);
    if (keep)
      norms.insert(norms.begin(), norm.getResult());
    auto total = GlobalNormOp::create(b, loc, norm.getType(), norms);
    total->setAttrs(norm->getAttrDictionary());
    found.getResult().replaceAllUsesExcept(anyFound, firstMaximum);
    norm.getResult().replaceAllUsesExcept(total, total);
    if (!keep) {
      found->erase();
      norm->erase();
    }
  }
};

} // namespace
