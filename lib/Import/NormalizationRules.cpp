//===- NormalizationRules.cpp - ONNX import: batch and layer normalization ===//
//
// Each rule imports one node; its registry row (at the end) says which op
// type, domain and op sets it handles, what it refuses, and which inputs
// are step state (running averages) rather than parameters.
//
//===----------------------------------------------------------------------===//

#include "OnnxImporterImpl.h"

using namespace mlir;
using namespace mlir::amp;
using namespace mlir::amp::onnx_import;

/// BatchNormalization (op set 14 and later; 15 only widened its types).
/// training_mode 1 (PyTorch's training export) normalizes with batch
/// statistics and updates the running averages, which are step state of
/// the model; 0 normalizes with them. Scale, bias and the statistics must
/// be f32: the statistics are FP32 by policy.
static LogicalResult importBatchNormalization(OnnxImporter &im, const onnx::NodeProto &node) {
  SmallVector<Value> operands;
  for (int i = 0; i < 5; ++i) {
    auto value = im.input(node, i);
    if (failed(value))
      return failure();
    operands.push_back(*value);
  }
  auto type = cast<RankedTensorType>(operands[0].getType());
  if (type.getRank() < 2)
    return im.nodeError(node) << "expects an input [N, C, ...], got " << type;
  for (Value v : ArrayRef(operands).drop_front())
    if (!cast<RankedTensorType>(v.getType()).getElementType().isF32())
      return im.nodeError(node) << "scale, bias, mean and var must be float (f32), got "
                                << v.getType();
  auto epsilon = im.floatAttr(node, "epsilon", 1e-5f);
  auto momentum = im.floatAttr(node, "momentum", 0.9f);
  // onnxruntime-training's BatchNormInternal trains unless told otherwise.
  auto training = im.intAttr(node, "training_mode", node.domain() == "com.microsoft" ? 1 : 0);
  if (failed(epsilon) || failed(momentum) || failed(training))
    return failure();
  Location loc = im.nodeLoc(node);
  auto epsilonAttr = im.builder.getF32FloatAttr(*epsilon);
  if (*training == 0) {
    auto op = BatchNormInferenceOp::create(im.builder, loc, type, operands[0], operands[1],
                                           operands[2], operands[3], operands[4], epsilonAttr);
    if (failed(im.verifyBuilt(node, op)))
      return failure();
    im.define(node, 0, op.getResult());
    return success();
  }
  Type stats = operands[3].getType();
  auto op = BatchNormOp::create(im.builder, loc, type, stats, stats, stats, stats, operands[0],
                                operands[1], operands[2], operands[3], operands[4], epsilonAttr,
                                im.builder.getF32FloatAttr(*momentum));
  if (failed(im.verifyBuilt(node, op)))
    return failure();
  im.define(node, 0, op.getResult());
  im.define(node, 1, op.getNewRunningMean());
  im.define(node, 2, op.getNewRunningVar());
  im.updateState(node, 3, op.getNewRunningMean());
  im.updateState(node, 4, op.getNewRunningVar());
  // onnxruntime-training's BatchNormInternal also writes the batch mean and
  // 1 / sqrt(var + epsilon), which its BatchNormalizationGrad reads.
  im.define(node, 3, op.getSavedMean());
  if (node.output_size() > 4 && !node.output(4).empty()) {
    Value var = op.getSavedVar();
    Value shifted = AddOp::create(im.builder, loc, stats, var, im.scalarLike(var, *epsilon, loc));
    Value root = SqrtOp::create(im.builder, loc, stats, shifted);
    im.define(node, 4, DivOp::create(im.builder, loc, stats, im.scalarLike(var, 1.0f, loc), root));
    im.values[node.output(4)].batchVariance = var;
  }
  return success();
}

/// LayerNormalization (op set 17): over the dims from `axis` on, with f32
/// scale and optional bias of exactly those dims' shape (ONNX also allows a
/// broadcastable one, which exporters do not write), statistics in f32
/// (stash_type 1; other stash types are refused). The Mean and InvStdDev
/// outputs are the op's saved statistics.
static LogicalResult importLayerNormalization(OnnxImporter &im, const onnx::NodeProto &node) {
  auto x = im.input(node, 0), scale = im.input(node, 1);
  auto axisAttr = im.intAttr(node, "axis", -1);
  auto epsilon = im.floatAttr(node, "epsilon", 1e-5f);
  auto stash = im.intAttr(node, "stash_type", 1);
  if (failed(x) || failed(scale) || failed(axisAttr) || failed(epsilon) || failed(stash))
    return failure();
  auto type = cast<RankedTensorType>(x->getType());
  int64_t rank = type.getRank(), axis = *axisAttr < 0 ? *axisAttr + rank : *axisAttr;
  if (axis < 0 || axis >= rank)
    return im.nodeError(node) << "axis " << *axisAttr << " is out of range for rank " << rank;
  if (*stash != 1)
    return im.nodeError(node) << "stash_type " << *stash
                              << " is not supported (statistics are computed in float32)";
  auto normalized = RankedTensorType::get(type.getShape().drop_front(axis), im.builder.getF32Type());
  Value bias;
  if (im.hasInput(node, 2)) {
    auto value = im.input(node, 2);
    if (failed(value))
      return failure();
    bias = *value;
  } else {
    bias = ConstantOp::create(im.builder, im.nodeLoc(node), normalized,
                              DenseElementsAttr::get(normalized, 0.0f));
  }
  for (Value v : {*scale, bias})
    if (v.getType() != normalized)
      return im.nodeError(node) << "scale and bias must be " << normalized << " (f32, the "
                                << "normalized dims' shape), got " << v.getType();
  SmallVector<int64_t> statsShape(type.getShape());
  std::fill(statsShape.begin() + axis, statsShape.end(), 1);
  auto stats = RankedTensorType::get(statsShape, im.builder.getF32Type());
  auto op = LayerNormOp::create(im.builder, im.nodeLoc(node), type, stats, stats, *x, *scale,
                                bias, im.builder.getI64IntegerAttr(axis),
                                im.builder.getF32FloatAttr(*epsilon));
  if (failed(im.verifyBuilt(node, op)))
    return failure();
  im.define(node, 0, op.getResult());
  im.define(node, 1, op.getMean());
  im.define(node, 2, op.getInvStd());
  return success();
}

ArrayRef<OnnxImporter::Registration> mlir::amp::onnx_import::normalizationRules() {
  static const OnnxImporter::Registration rules[] = {
      // Inputs 3 and 4 (input_mean, input_var) are step state.
      {{"", "BatchNormalization", 14, 0, "f32 scale, bias, mean and var"},
       &importBatchNormalization,
       0b11000},
      // onnxruntime-training's training-mode form, with the batch statistics.
      {{"com.microsoft", "BatchNormInternal", 1, 1,
        "as BatchNormalization; saved_inv_std read by BatchNormalizationGrad"},
       &importBatchNormalization,
       0b11000},
      {{"", "LayerNormalization", 17, 0,
        "f32 scale and bias of the normalized shape, stash_type 1"},
       &importLayerNormalization},
  };
  return rules;
}
