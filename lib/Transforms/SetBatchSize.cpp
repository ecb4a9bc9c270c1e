//===- SetBatchSize.cpp - fix the batch dimension, re-infer shapes --------===//

#include "amp/Transforms/Passes.h"

namespace mlir::amp {
#define GEN_PASS_DEF_AMPSETBATCHSIZE
#include "amp/Transforms/Passes.h.inc"
} // namespace mlir::amp

using namespace mlir;
using namespace mlir::amp;

namespace {

/// Recomputes `op`'s result shapes from its (already refined) operands,
/// keeping element types: precision is not this pass's business. An op
/// without a shape rule (a pooling gradient, whose result has its forward
/// input's shape) keeps its result types, but for an unknown leading dim:
/// the only dim an imported graph leaves unknown is the batch.
LogicalResult refineResults(Operation *op, int64_t batch) {
  SmallVector<SmallVector<int64_t>> shapes;
  if (auto reshape = dyn_cast<ReshapeOp>(op)) {
    // A reshape's target shape lives in its result type.
    std::string error;
    auto input = reshape.getInput().getType().getShape();
    auto shape = reshape.getShape()
                     ? onnxReshapeTarget(input, *reshape.getShape(), error)
                     : reshapeShape(input, reshape.getType().getShape(), error);
    if (failed(shape))
      return op->emitError() << "cannot reshape: " << error;
    shapes.push_back(*shape);
  } else if (auto infer = dyn_cast<InferShapedTypeOpInterface>(op)) {
    SmallVector<ShapedTypeComponents> components;
    if (failed(infer.inferReturnTypeComponents(
            op->getContext(), op->getLoc(), op->getOperands(),
            op->getAttrDictionary(), op->getPropertiesStorage(),
            op->getRegions(), components)))
      return failure();
    for (auto &c : components)
      shapes.emplace_back(c.getDims());
  } else {
    for (Value result : op->getResults()) {
      auto type = dyn_cast<RankedTensorType>(result.getType());
      if (!type || type.getRank() == 0 || !type.isDynamicDim(0))
        continue;
      SmallVector<int64_t> shape(type.getShape());
      shape[0] = batch;
      result.setType(type.clone(shape));
    }
    return success();
  }
  for (auto [result, shape] : llvm::zip(op->getResults(), shapes)) {
    auto type = cast<RankedTensorType>(result.getType());
    result.setType(RankedTensorType::get(shape, type.getElementType()));
  }
  return success();
}

struct SetBatchSizePass : public amp::impl::AmpSetBatchSizeBase<SetBatchSizePass> {
  using AmpSetBatchSizeBase::AmpSetBatchSizeBase;

  void runOnOperation() override {
    if (batch == 0)
      return;
    if (batch < 0) {
      mlir::emitError(getOperation().getLoc()) << "batch must be positive, got " << static_cast<int64_t>(batch);
      return signalPassFailure();
    }
    for (auto func : getOperation().getOps<func::FuncOp>())
      if (failed(refineFunction(func)))
        return signalPassFailure();
  }

  LogicalResult refineFunction(func::FuncOp func) {
    Block &body = func.getBody().front();
    for (BlockArgument arg : body.getArguments()) {
      auto type = dyn_cast<RankedTensorType>(arg.getType());
      auto roleAttr = getRole(func.getArgAttrDict(arg.getArgNumber()));
      bool isBatch = roleAttr && (roleAttr->first == role::kInput ||
                                  roleAttr->first == role::kLabel);
      if (!type || !isBatch || type.getRank() == 0 || !type.isDynamicDim(0))
        continue;
      SmallVector<int64_t> shape(type.getShape());
      shape[0] = batch;
      arg.setType(RankedTensorType::get(shape, type.getElementType()));
    }
    for (Operation &op : body.without_terminator())
      if (failed(refineResults(&op, batch)))
        return failure();
    func.setType(FunctionType::get(func.getContext(), body.getArgumentTypes(),
                                   body.getTerminator()->getOperandTypes()));
    return success();
  }
};

} // namespace
