//===- OrtGradientRules.cpp - ONNX import: onnxruntime-training's gradient ops ===//
//
// The com.microsoft ops onnxruntime-training's gradient builder writes into
// an artifact set's training_model.onnx, each mapped onto the amp op that
// computes the same gradient (and so has its precision fact): the loss
// gradient in FP32, activation gradients following their input. The
// accumulation of gradients (InPlaceAccumulatorV2) and the optimizer model
// are read by the artifact import itself (OrtArtifacts.cpp).
//
//===----------------------------------------------------------------------===//

#include "OnnxImporterImpl.h"

using namespace mlir;
using namespace mlir::amp;
using namespace mlir::amp::onnx_import;

/// SoftmaxCrossEntropyLossGrad(dY, log_prob, label): (softmax - onehot) * dY,
/// over the count of counted rows for mean reduction. softmax(log_prob) is
/// softmax(logits), so the amp op reads the logits where the forward's
/// log_prob is this import's log-softmax of them. A constant dY of 1 is the
/// backward's seed, which loss scaling replaces by the scale.
static LogicalResult importSoftmaxCrossEntropyLossGrad(OnnxImporter &im,
                                                       const onnx::NodeProto &node) {
  auto dY = im.input(node, 0), logProb = im.input(node, 1), labels = im.input(node, 2);
  if (failed(dY) || failed(logProb) || failed(labels))
    return failure();
  if (im.hasInput(node, 3) || im.hasInput(node, 4))
    return im.nodeError(node) << "class weights and an ignore_index input are not supported";
  auto reductionAttr = im.stringAttr(node, "reduction", "mean");
  auto ignoreIndex = im.attribute(node, "ignore_index", onnx::AttributeProto::INT);
  if (failed(reductionAttr) || failed(ignoreIndex))
    return failure();
  if (*reductionAttr != "mean" && *reductionAttr != "sum")
    return im.nodeError(node) << "reduction '" << *reductionAttr
                              << "' is not supported (mean or sum)";
  auto gradType = cast<RankedTensorType>(dY->getType());
  if (gradType.getRank() != 0 || !gradType.getElementType().isF32())
    return im.nodeError(node) << "dY must be an f32 scalar, got " << gradType;
  auto probType = cast<RankedTensorType>(logProb->getType());
  if (probType.getRank() != 2)
    return im.nodeError(node) << "log_prob must be [N, C], got " << probType;
  if (!cast<RankedTensorType>(labels->getType()).getElementType().isInteger(64))
    return im.nodeError(node) << "labels must be int64";
  Value scores = *logProb;
  if (auto logSoftmax = scores.getDefiningOp<LogSoftmaxOp>())
    scores = logSoftmax.getInput();
  Location loc = im.nodeLoc(node);
  Value seed = *dY;
  if (auto constant = seed.getDefiningOp<ConstantOp>()) {
    auto value = dyn_cast<DenseElementsAttr>(constant.getValue());
    if (value && value.isSplat() && value.getSplatValue<APFloat>().convertToDouble() == 1.0) {
      // Its own constant, so that replacing the seed touches nothing else.
      auto own = ConstantOp::create(im.builder, loc, value);
      own->setAttr(kLossSeedAttr, im.builder.getUnitAttr());
      seed = own;
    }
  }
  auto op = SoftmaxCrossEntropyGradOp::create(
      im.builder, loc, scores.getType(), seed, scores, *labels,
      LossReductionAttr::get(im.context,
                             *reductionAttr == "mean" ? LossReduction::Mean : LossReduction::Sum),
      *ignoreIndex ? im.builder.getI64IntegerAttr((*ignoreIndex)->i()) : IntegerAttr());
  if (failed(im.verifyBuilt(node, op)))
    return failure();
  im.define(node, 0, op.getResult());
  return success();
}

/// ReluGrad(dY, X): dY where X > 0 (X the relu's input or output).
static LogicalResult importReluGrad(OnnxImporter &im, const onnx::NodeProto &node) {
  auto dY = im.input(node, 0), x = im.input(node, 1);
  if (failed(dY) || failed(x))
    return failure();
  if (dY->getType() != x->getType())
    return im.nodeError(node) << "dY and X must have one type, got " << dY->getType()
                              << " and " << x->getType();
  auto op = ReluGradOp::create(im.builder, im.nodeLoc(node), dY->getType(), *dY, *x);
  if (failed(im.verifyBuilt(node, op)))
    return failure();
  im.define(node, 0, op.getResult());
  return success();
}

ArrayRef<OnnxImporter::Registration> mlir::amp::onnx_import::ortGradientRules() {
  static const OnnxImporter::Registration rules[] = {
      {{"com.microsoft", "SoftmaxCrossEntropyLossGrad", 1, 1,
        "[N, C] log_prob; mean or sum; no class weights"},
       &importSoftmaxCrossEntropyLossGrad},
      {{"com.microsoft", "ReluGrad", 1, 1, ""}, &importReluGrad},
  };
  return rules;
}
