//===- ReductionRules.cpp - ONNX import: softmax, sums and the loss ---------===//
//
// Each rule imports one node; its registry row (at the end) says which op
// type, domain and op sets it handles and what it refuses.
//
//===----------------------------------------------------------------------===//

#include "OnnxImporterImpl.h"

using namespace mlir;
using namespace mlir::amp;
using namespace mlir::amp::onnx_import;

/// Softmax and LogSoftmax (opset 13: along one axis, not over the
/// dimensions flattened after it as before).
template <typename OpTy>
static LogicalResult importSoftmax(OnnxImporter &im, const onnx::NodeProto &node) {
  auto x = im.input(node, 0);
  auto axis = im.intAttr(node, "axis", -1);
  if (failed(x) || failed(axis))
    return failure();
  int64_t rank = cast<RankedTensorType>(x->getType()).getRank();
  if (rank == 0 || *axis < -rank || *axis >= rank)
    return im.nodeError(node) << "axis " << *axis << " is out of range for rank " << rank;
  if (*axis < 0)
    *axis += rank;
  im.define(node, 0,
            OpTy::create(im.builder, im.nodeLoc(node), x->getType(), *x,
                         im.builder.getI64IntegerAttr(*axis)));
  return success();
}

/// ReduceSum (opset 13: axes as a constant input), ReduceMean, ReduceMax and
/// ReduceMin (axes an attribute in opsets 13 to 17, a constant input from
/// 18); the mean a sum times 1 / count, the minimum -reduce_max(-x).
static LogicalResult importReduction(OnnxImporter &im, const onnx::NodeProto &node) {
  const std::string &kind = node.op_type();
  bool mean = kind == "ReduceMean", min = kind == "ReduceMin";
  auto x = im.input(node, 0);
  if (failed(x))
    return failure();
  auto type = cast<RankedTensorType>(x->getType());
  int64_t rank = type.getRank();
  auto noopWithEmptyAxes = im.intAttr(node, "noop_with_empty_axes", 0);
  auto keepDimsAttr = im.intAttr(node, "keepdims", 1);
  if (failed(noopWithEmptyAxes) || failed(keepDimsAttr))
    return failure();
  SmallVector<int64_t> axes;
  if (kind != "ReduceSum" && im.opset < 18) {
    auto listed = im.intsAttr(node, "axes", {});
    if (failed(listed))
      return failure();
    axes = *listed;
  } else if (im.hasInput(node, 1)) {
    auto it = im.values.find(node.input(1));
    if (it == im.values.end() || !it->second.integers)
      return im.nodeError(node) << "the axes operand must be a constant int64 tensor";
    axes = *it->second.integers;
  }
  if (axes.empty()) {
    if (*noopWithEmptyAxes) {
      im.define(node, 0, *x);
      return success();
    }
    for (int64_t i = 0; i < rank; ++i)
      axes.push_back(i);
  }
  for (int64_t &axis : axes) {
    if (axis < -rank || axis >= rank)
      return im.nodeError(node) << "axis " << axis << " is out of range for rank " << rank;
    axis = axis < 0 ? axis + rank : axis;
  }
  llvm::sort(axes);
  axes.erase(std::unique(axes.begin(), axes.end()), axes.end());
  bool keepDims = *keepDimsAttr != 0;
  std::string error;
  auto shape = reduceShape(type.getShape(), axes, keepDims, error);
  if (failed(shape))
    return im.nodeError(node) << error;
  Location loc = im.nodeLoc(node);
  auto resultType = RankedTensorType::get(*shape, type.getElementType());
  auto axesAttr = im.builder.getDenseI64ArrayAttr(axes);
  if (kind == "ReduceMax" || min) {
    Value input = min ? NegOp::create(im.builder, loc, type, *x).getResult() : *x;
    Value result = ReduceMaxOp::create(im.builder, loc, resultType, input, axesAttr, keepDims);
    im.define(node, 0, min ? NegOp::create(im.builder, loc, resultType, result) : result);
    return success();
  }
  Value result = ReduceSumOp::create(im.builder, loc, resultType, *x, axesAttr, keepDims);
  if (mean) {
    int64_t count = 1;
    for (int64_t axis : axes) {
      if (type.isDynamicDim(axis))
        return im.nodeError(node) << "a mean over dim " << axis << " of " << type
                                  << ", whose size is not known";
      count *= type.getDimSize(axis);
    }
    result = MulOp::create(im.builder, loc, result.getType(), result,
                           im.scalarLike(result, 1.0f / static_cast<float>(count), loc));
  }
  im.define(node, 0, result);
  return success();
}

/// SoftmaxCrossEntropyLoss of [N, C] scores: the mean or sum loss, and the
/// log_prob output where something reads it.
static LogicalResult importSoftmaxCrossEntropyLoss(OnnxImporter &im, const onnx::NodeProto &node) {
  auto scores = im.input(node, 0), labels = im.input(node, 1);
  if (failed(scores) || failed(labels))
    return failure();
  if (im.hasInput(node, 2))
    return im.nodeError(node) << "class weights are not supported";
  auto reductionAttr = im.stringAttr(node, "reduction", "mean");
  auto ignoreIndex = im.attribute(node, "ignore_index", onnx::AttributeProto::INT);
  if (failed(reductionAttr) || failed(ignoreIndex))
    return failure();
  std::string reduction = *reductionAttr;
  if (reduction != "mean" && reduction != "sum")
    return im.nodeError(node) << "reduction '" << reduction << "' is not supported (mean or sum)";
  auto labelsType = cast<RankedTensorType>(labels->getType());
  if (!labelsType.getElementType().isInteger(64))
    return im.nodeError(node) << "labels must be int64";
  auto op = SoftmaxCrossEntropyOp::create(
      im.builder, im.nodeLoc(node), RankedTensorType::get({}, im.builder.getF32Type()), *scores,
      *labels,
      LossReductionAttr::get(im.context,
                             reduction == "mean" ? LossReduction::Mean : LossReduction::Sum),
      *ignoreIndex ? im.builder.getI64IntegerAttr((*ignoreIndex)->i()) : IntegerAttr());
  if (failed(im.verifyBuilt(node, op)))
    return failure();
  im.define(node, 0, op.getLoss());
  // log_prob (an eval model's second output): the log-softmax over the
  // class axis, which the loss computes internally too.
  if (im.isRead(node, 1))
    im.define(node, 1,
              LogSoftmaxOp::create(im.builder, im.nodeLoc(node), scores->getType(), *scores,
                                   im.builder.getI64IntegerAttr(1)));
  return success();
}

ArrayRef<OnnxImporter::Registration> mlir::amp::onnx_import::reductionRules() {
  static const OnnxImporter::Registration rules[] = {
      {{"", "Softmax", 13, 0, ""}, &importSoftmax<SoftmaxOp>},
      {{"", "LogSoftmax", 13, 0, ""}, &importSoftmax<LogSoftmaxOp>},
      {{"", "ReduceSum", 13, 0, "constant axes"}, &importReduction},
      // ReduceMean-18, ReduceMax-18 and ReduceMin-18 take their axes as an
      // input, as ReduceSum-13 does: the same rule reads them by op set.
      {{"", "ReduceMean", 13, 0, "static reduced dims; constant axes"}, &importReduction},
      {{"", "ReduceMax", 13, 0, "constant axes"}, &importReduction},
      {{"", "ReduceMin", 13, 0, "constant axes"}, &importReduction},
      {{"", "SoftmaxCrossEntropyLoss", 13, 0,
        "mean or sum reduction, no class weights"},
       &importSoftmaxCrossEntropyLoss},
  };
  return rules;
}
