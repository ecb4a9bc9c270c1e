//===- LinearAlgebraRules.cpp - ONNX import: Gemm, MatMul and the Transposes they fold ===//
//
// Each rule imports one node; its registry row (at the end) says which op
// type, domain and op sets it handles and what it refuses.
//
//===----------------------------------------------------------------------===//

#include "OnnxImporterImpl.h"

using namespace mlir;
using namespace mlir::amp;
using namespace mlir::amp::onnx_import;

static LogicalResult importTranspose(OnnxImporter &im, const onnx::NodeProto &node) {
  auto x = im.input(node, 0, /*allowTransposed=*/true);
  if (failed(x))
    return failure();
  auto rank = cast<RankedTensorType>(x->getType()).getRank();
  auto permAttr = im.attribute(node, "perm", onnx::AttributeProto::INTS);
  if (failed(permAttr))
    return failure();
  const onnx::AttributeProto *perm = *permAttr;
  bool swap =
      rank == 2 && (!perm || (perm->ints_size() == 2 && perm->ints(0) == 1 && perm->ints(1) == 0));
  if (!swap)
    return im.nodeError(node) << "only 2-D transposes (perm [1, 0]) are supported";
  if (node.output_size() > 0)
    im.values[node.output(0)] = GraphValue{*x, std::nullopt, !im.isTransposed(node, 0)};
  return success();
}

static FailureOr<Value> buildMatmul(OnnxImporter &im, const onnx::NodeProto &node, bool transA,
                                    bool transB) {
  // A Transpose feeding the GEMM flips its transpose flag.
  transA ^= im.isTransposed(node, 0);
  transB ^= im.isTransposed(node, 1);
  auto a = im.input(node, 0, /*allowTransposed=*/true), b = im.input(node, 1, true);
  if (failed(a) || failed(b))
    return failure();
  auto aType = cast<RankedTensorType>(a->getType());
  std::string error;
  auto shape = matmulShape(aType.getShape(), cast<RankedTensorType>(b->getType()).getShape(),
                           transA, transB, error);
  if (failed(shape))
    return im.nodeError(node) << error;
  auto matmul = MatmulOp::create(im.builder, im.nodeLoc(node),
                                 RankedTensorType::get(*shape, aType.getElementType()), *a, *b,
                                 transA, transB);
  if (failed(im.verifyBuilt(node, matmul)))
    return failure();
  return matmul.getResult();
}

static LogicalResult importGemm(OnnxImporter &im, const onnx::NodeProto &node) {
  auto transA = im.intAttr(node, "transA", 0), transB = im.intAttr(node, "transB", 0);
  auto alphaAttr = im.floatAttr(node, "alpha", 1.0f), betaAttr = im.floatAttr(node, "beta", 1.0f);
  if (failed(transA) || failed(transB) || failed(alphaAttr) || failed(betaAttr))
    return failure();
  auto product = buildMatmul(im, node, *transA, *transB);
  if (failed(product))
    return failure();
  float alpha = *alphaAttr, beta = *betaAttr;
  Location loc = im.nodeLoc(node);
  Value result = *product;
  if (alpha != 1.0f)
    result =
        MulOp::create(im.builder, loc, result.getType(), result, im.scalarLike(result, alpha, loc));
  if (im.hasInput(node, 2)) {
    auto c = im.input(node, 2);
    if (failed(c))
      return failure();
    Value bias = *c;
    if (beta != 1.0f)
      bias = MulOp::create(im.builder, loc, bias.getType(), bias, im.scalarLike(bias, beta, loc));
    auto sum = buildBroadcast<AddOp>(im.builder, loc, result, bias);
    if (failed(sum))
      return im.nodeError(node) << "bias C of type " << bias.getType()
                                << " does not broadcast to the product " << result.getType();
    result = *sum;
  }
  im.define(node, 0, result);
  return success();
}

static LogicalResult importMatMul(OnnxImporter &im, const onnx::NodeProto &node) {
  auto product = buildMatmul(im, node, false, false);
  if (failed(product))
    return failure();
  im.define(node, 0, *product);
  return success();
}

ArrayRef<OnnxImporter::Registration> mlir::amp::onnx_import::linearAlgebraRules() {
  static const OnnxImporter::Registration rules[] = {
      {{"", "Gemm", 13, 0, "2-D operands"}, &importGemm},
      {{"", "MatMul", 13, 0, "2-D operands"}, &importMatMul},
      {{"", "Transpose", 13, 0, "2-D, folded into the GEMM that reads it"}, &importTranspose},
  };
  return rules;
}
