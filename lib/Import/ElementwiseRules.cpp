//===- ElementwiseRules.cpp - ONNX import: elementwise arithmetic and activations ===//
//
// Each rule imports one node; its registry row (at the end) says which op
// type, domain and op sets it handles and what it refuses.
//
//===----------------------------------------------------------------------===//

#include "OnnxImporterImpl.h"

using namespace mlir;
using namespace mlir::amp;
using namespace mlir::amp::onnx_import;

template <typename OpTy>
static LogicalResult importBinary(OnnxImporter &im, const onnx::NodeProto &node) {
  auto a = im.input(node, 0), b = im.input(node, 1);
  if (failed(a) || failed(b))
    return failure();
  Type element = cast<RankedTensorType>(a->getType()).getElementType();
  if (element != cast<RankedTensorType>(b->getType()).getElementType())
    return im.nodeError(node) << "operands have different element types";
  auto result = buildBroadcast<OpTy>(im.builder, im.nodeLoc(node), *a, *b);
  if (failed(result))
    return im.nodeError(node) << "shapes " << a->getType() << " and " << b->getType()
                              << " do not broadcast";
  im.define(node, 0, *result);
  return success();
}

static LogicalResult importLeakyRelu(OnnxImporter &im, const onnx::NodeProto &node) {
  auto x = im.input(node, 0);
  auto alpha = im.floatAttr(node, "alpha", 0.01f);
  if (failed(x) || failed(alpha))
    return failure();
  im.define(node, 0,
            LeakyReluOp::create(im.builder, im.nodeLoc(node), x->getType(), *x,
                                im.builder.getF32FloatAttr(*alpha)));
  return success();
}

template <typename OpTy>
static LogicalResult importUnary(OnnxImporter &im, const onnx::NodeProto &node) {
  auto x = im.input(node, 0);
  if (failed(x))
    return failure();
  im.define(node, 0, OpTy::create(im.builder, im.nodeLoc(node), x->getType(), *x));
  return success();
}

ArrayRef<OnnxImporter::Registration> mlir::amp::onnx_import::elementwiseRules() {
  static const OnnxImporter::Registration rules[] = {
      {{"", "Add", 13, 0, "broadcasting"}, &importBinary<AddOp>},
      {{"", "Sub", 13, 0, "broadcasting"}, &importBinary<SubOp>},
      {{"", "Mul", 13, 0, "broadcasting"}, &importBinary<MulOp>},
      {{"", "Div", 13, 0, "broadcasting"}, &importBinary<DivOp>},
      {{"", "Exp", 13, 0, ""}, &importUnary<ExpOp>},
      {{"", "Log", 13, 0, ""}, &importUnary<LogOp>},
      {{"", "Neg", 13, 0, ""}, &importUnary<NegOp>},
      {{"", "Relu", 13, 0, ""}, &importUnary<ReluOp>},
      {{"", "LeakyRelu", 13, 0, ""}, &importLeakyRelu},
      {{"", "Tanh", 13, 0, ""}, &importUnary<TanhOp>},
      {{"", "Sigmoid", 13, 0, ""}, &importUnary<SigmoidOp>},
  };
  return rules;
}
