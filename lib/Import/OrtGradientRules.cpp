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

#include "mlir/IR/TypeUtilities.h"

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
  // Loss scaling scales the seed this node reads; another reader of it
  // would keep an unscaled 1 while its gradients are unscaled all the same.
  if (!im.readOnlyBy(node.input(0), [&](const onnx::NodeProto &reader, int i) {
        return &reader == &node && i == 0;
      }))
    return im.nodeError(node) << "dY '" << node.input(0)
                              << "' is read by other nodes too: a loss gradient seeded "
                                 "elsewhere as well is not supported";
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

/// BatchNormalizationGrad(dY, X, scale, saved_mean, saved_inv_std): the
/// input, scale and bias gradients of a training-mode batch norm, from the
/// statistics its BatchNormInternal saved (amp.batch_norm_grad reads the
/// variance behind saved_inv_std).
static LogicalResult importBatchNormalizationGrad(OnnxImporter &im,
                                                  const onnx::NodeProto &node) {
  SmallVector<Value> operands;
  for (int i = 0; i < 4; ++i) {
    auto value = im.input(node, i);
    if (failed(value))
      return failure();
    operands.push_back(*value);
  }
  auto saved = im.hasInput(node, 4) ? im.values.find(node.input(4)) : im.values.end();
  if (saved == im.values.end() || !saved->second.batchVariance)
    return im.nodeError(node) << "saved_inv_std must be an output of a BatchNormInternal node";
  // ORT's kernel reads saved_inv_std, made with the forward's epsilon: the
  // amp op derives it from the variance with that epsilon.
  Value var = saved->second.batchVariance;
  auto forward = var.getDefiningOp<BatchNormOp>();
  auto op = BatchNormGradOp::create(im.builder, im.nodeLoc(node), operands[1].getType(),
                                    var.getType(), var.getType(), operands[0], operands[1],
                                    operands[2], operands[3], var, forward.getEpsilonAttr(),
                                    UnitAttr());
  if (failed(im.verifyBuilt(node, op)))
    return failure();
  im.define(node, 0, op.getInputGrad());
  im.define(node, 1, op.getScaleGrad());
  im.define(node, 2, op.getBiasGrad());
  return success();
}

/// ConvGrad(dY, X, W) with Conv's attributes: dX, dW and dB (each where
/// named): the data and filter gradients with the forward's geometry, the
/// bias gradient the sum of dY over all but the channel dim.
static LogicalResult importConvGrad(OnnxImporter &im, const onnx::NodeProto &node) {
  auto dY = im.input(node, 0), x = im.input(node, 1), w = im.input(node, 2);
  if (failed(dY) || failed(x) || failed(w))
    return failure();
  auto xType = cast<RankedTensorType>(x->getType());
  auto wType = cast<RankedTensorType>(w->getType());
  auto window = readConvWindow(im, node, xType, wType);
  if (failed(window))
    return failure();
  auto dYType = cast<RankedTensorType>(dY->getType());
  if (failed(verifyCompatibleShape(dYType, window->result)))
    return im.nodeError(node) << "dY " << dYType << " is not the convolution's result type "
                              << window->result;
  Location loc = im.nodeLoc(node);
  auto strides = window->strides, pads = window->pads, dilations = window->dilations;
  int64_t group = window->group;
  if (im.isRead(node, 0)) {
    auto op = ConvBackwardDataOp::create(im.builder, loc, xType, *dY, *w, strides, pads,
                                         dilations, group);
    if (failed(im.verifyBuilt(node, op)))
      return failure();
    im.define(node, 0, op.getResult());
  }
  if (im.isRead(node, 1)) {
    auto op = ConvBackwardFilterOp::create(im.builder, loc, wType, *x, *dY, strides, pads,
                                           dilations, group);
    if (failed(im.verifyBuilt(node, op)))
      return failure();
    im.define(node, 1, op.getResult());
  }
  if (im.isRead(node, 2)) {
    SmallVector<int64_t> axes = {0};
    for (int64_t d = 2; d < dYType.getRank(); ++d)
      axes.push_back(d);
    auto biasType = RankedTensorType::get({wType.getDimSize(0)}, dYType.getElementType());
    im.define(node, 2, ReduceSumOp::create(im.builder, loc, biasType, *dY,
                                           im.builder.getDenseI64ArrayAttr(axes), UnitAttr()));
  }
  return success();
}

/// MaxPoolGrad(dY, Indices): each gradient added where its window's maximum
/// was, Indices being the output of a MaxPool this import made (amp.max_pool's
/// own indices, which index within each plane).
static LogicalResult importMaxPoolGrad(OnnxImporter &im, const onnx::NodeProto &node) {
  auto dY = im.input(node, 0), indices = im.input(node, 1);
  if (failed(dY) || failed(indices))
    return failure();
  auto pool = indices->getDefiningOp<MaxPoolOp>();
  if (!pool || pool.getIndices() != *indices)
    return im.nodeError(node) << "Indices must be the Indices output of a MaxPool node";
  auto op = MaxPoolGradOp::create(
      im.builder, im.nodeLoc(node),
      cast<RankedTensorType>(pool.getInput().getType())
          .clone(cast<RankedTensorType>(dY->getType()).getElementType()),
      *dY, *indices);
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
      {{"com.microsoft", "BatchNormalizationGrad", 1, 1,
        "statistics from a BatchNormInternal node"},
       &importBatchNormalizationGrad},
      {{"com.microsoft", "ConvGrad", 1, 1, "as Conv"}, &importConvGrad},
      // onnxruntime-training registers MaxPoolGrad in the default domain.
      {{"", "MaxPoolGrad", 1, 0, "Indices from a MaxPool node"}, &importMaxPoolGrad},
  };
  return rules;
}
