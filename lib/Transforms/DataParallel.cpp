//===- DataParallel.cpp - all-reduce gradients across ranks ---------------===//
//
// Rewrites @train_step (after amp-build-train-step, before loss scaling) so
// that each optimizer update reads the mean of its gradient over the ranks:
//   (g_a, g_b, ...) = all_reduce(g_a, g_b, ...)   one per bucket, right after
//                                                 its last gradient is made
//   loss            = all_reduce(loss)            the reported loss: the mean
// Buckets follow the order the backward pass produces the gradients (last
// layer first), as PyTorch's DDP fills them, so a bucket can go as soon as
// it is full. With grad-reduce=bf16/fp16 each bucket is cast to the low type
// before and back to FP32 after.
//
//===----------------------------------------------------------------------===//

#include "amp/Transforms/Passes.h"

#include "mlir/IR/Builders.h"

#include "llvm/ADT/MapVector.h"

namespace mlir::amp {
#define GEN_PASS_DEF_AMPDATAPARALLEL
#include "amp/Transforms/Passes.h.inc"
} // namespace mlir::amp

using namespace mlir;
using namespace mlir::amp;

namespace {

struct DataParallelPass : public amp::impl::AmpDataParallelBase<DataParallelPass> {
  using AmpDataParallelBase::AmpDataParallelBase;

  void runOnOperation() override {
    ModuleOp module = getOperation();
    if (ranks < 2 || bucketMb <= 0 ||
        (gradReduce != "fp32" && gradReduce != "bf16" && gradReduce != "fp16")) {
      mlir::emitError(module.getLoc())
          << "amp-data-parallel: needs ranks >= 2, bucket-mb > 0 and grad-reduce fp32, bf16 "
             "or fp16";
      return signalPassFailure();
    }
    auto step = module.lookupSymbol<func::FuncOp>("train_step");
    if (!step) {
      mlir::emitError(module.getLoc())
          << "amp-data-parallel: no func.func @train_step (run amp-build-train-step first)";
      return signalPassFailure();
    }
    if (failed(rewrite(step)))
      return signalPassFailure();
  }

  LogicalResult rewrite(func::FuncOp func);
  /// One all_reduce of `bucket` after its last producer; returns the means.
  SmallVector<Value> reduceBucket(ArrayRef<Value> bucket, Location loc);
};

SmallVector<Value> DataParallelPass::reduceBucket(ArrayRef<Value> bucket, Location loc) {
  // After the gradient made last (the bucket is in production order).
  OpBuilder b(bucket.back().getContext());
  b.setInsertionPointAfterValue(bucket.back());
  Type low = gradReduce == "bf16"   ? Type(b.getBF16Type())
             : gradReduce == "fp16" ? Type(b.getF16Type())
                                    : Type();
  SmallVector<Value> sent;
  for (Value grad : bucket) {
    if (!low) {
      sent.push_back(grad);
      continue;
    }
    auto type = cast<RankedTensorType>(grad.getType());
    sent.push_back(CastOp::create(b, loc, type.clone(low), grad));
  }
  auto reduce = AllReduceOp::create(b, loc, sent, ranks, /*max=*/false);
  SmallVector<Value> means;
  for (auto [grad, mean] : llvm::zip(bucket, reduce.getResults()))
    means.push_back(low ? CastOp::create(b, loc, grad.getType(), mean).getResult() : Value(mean));
  return means;
}

LogicalResult DataParallelPass::rewrite(func::FuncOp func) {
  Block &body = func.getBody().front();
  Location loc = NameLoc::get(StringAttr::get(func.getContext(), "data_parallel"), func.getLoc());

  // Each distinct gradient once (tied weights share one), in the order the
  // step computes them.
  llvm::MapVector<Value, SmallVector<OptimizerUpdateOpInterface>> readers;
  body.walk([&](OptimizerUpdateOpInterface update) {
    readers[update.getGrad()].push_back(update);
  });
  if (readers.empty())
    return func.emitError("amp-data-parallel: @train_step has no optimizer update "
                          "(optimizer=none returns each rank's own gradients)");
  SmallVector<Value> grads;
  for (auto &entry : readers) {
    if (!entry.first.getDefiningOp())
      return func.emitError("amp-data-parallel: a gradient is an argument of @train_step");
    grads.push_back(entry.first);
  }
  llvm::sort(grads, [](Value a, Value b) {
    return a.getDefiningOp()->isBeforeInBlock(b.getDefiningOp());
  });

  int64_t bucketBytes = static_cast<int64_t>(bucketMb * 1024 * 1024);
  SmallVector<Value> bucket;
  int64_t filled = 0;
  auto flush = [&] {
    for (auto [grad, mean] : llvm::zip(bucket, reduceBucket(bucket, loc)))
      for (OptimizerUpdateOpInterface update : readers[grad])
        update.setGrad(mean);
    bucket.clear();
    filled = 0;
  };
  for (Value grad : grads) {
    bucket.push_back(grad);
    filled += staticTensorBytes(grad);
    if (filled >= bucketBytes)
      flush();
  }
  if (!bucket.empty())
    flush();

  // The loss each rank reports is its shard's: report the mean instead.
  auto ret = cast<func::ReturnOp>(body.getTerminator());
  OpBuilder b(ret);
  for (unsigned i = 0; i < ret.getNumOperands(); ++i)
    if (auto role = getRole(func.getResultAttrDict(i)); role && role->first == role::kLoss) {
      Value loss = ret.getOperand(i);
      ret.setOperand(i, AllReduceOp::create(b, loc, ValueRange{loss}, ranks, false).getResult(0));
    }
  return success();
}

} // namespace
