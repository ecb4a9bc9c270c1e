//===- LinearAlgebraRules.cpp - ONNX import: Gemm, MatMul and Transpose ===//
//
// Each rule imports one node; its registry row (at the end) says which op
// type, domain and op sets it handles and what it refuses.
//
//===----------------------------------------------------------------------===//

#include "OnnxImporterImpl.h"

using namespace mlir;
using namespace mlir::amp;
using namespace mlir::amp::onnx_import;

/// A 2-D swap stays pending, for a GEMM to take as its transpose flag (two
/// in a row cancel); any other permutation is an amp.transpose.
static LogicalResult importTranspose(OnnxImporter &im, const onnx::NodeProto &node) {
  bool swapsPending = im.isTransposed(node, 0);
  auto x = im.input(node, 0, /*allowTransposed=*/true);
  if (failed(x))
    return failure();
  auto type = cast<RankedTensorType>(x->getType());
  int64_t rank = type.getRank();
  SmallVector<int64_t> reversed(llvm::reverse(llvm::seq<int64_t>(0, rank)));
  auto perm = im.intsAttr(node, "perm", reversed);
  if (failed(perm))
    return failure();
  if (rank == 2 && *perm == ArrayRef<int64_t>{1, 0}) {
    GraphValue pending{*x};
    pending.transposed = !swapsPending;
    pending.transposeLoc = im.nodeLoc(node);
    im.values[node.output(0)] = pending;
    return success();
  }
  if (swapsPending)
    x = im.input(node, 0); // materialised: only a swap folds into a swap
  auto notPermutation = [&] {
    return im.nodeError(node) << "perm is not a permutation of the " << rank << " dims";
  };
  if (static_cast<int64_t>(perm->size()) != rank)
    return notPermutation();
  SmallVector<bool> seen(rank, false);
  SmallVector<int64_t> shape;
  for (int64_t from : *perm) {
    if (from < 0 || from >= rank || seen[from])
      return notPermutation();
    seen[from] = true;
    shape.push_back(type.getDimSize(from));
  }
  im.define(node, 0,
            TransposeOp::create(im.builder, im.nodeLoc(node),
                                RankedTensorType::get(shape, type.getElementType()), *x,
                                im.builder.getDenseI64ArrayAttr(*perm)));
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

/// `x` reshaped to an ONNX-style target (-1: the dim that makes the count
/// fit), which the op keeps while shapes are dynamic.
static FailureOr<Value> reshapeTo(OnnxImporter &im, const onnx::NodeProto &node, Value x,
                                  ArrayRef<int64_t> target) {
  auto type = cast<RankedTensorType>(x.getType());
  std::string error;
  auto shape = onnxReshapeTarget(type.getShape(), target, error);
  if (failed(shape))
    return im.nodeError(node) << "cannot reshape " << type << ": " << error;
  auto resultType = RankedTensorType::get(*shape, type.getElementType());
  DenseI64ArrayAttr spec =
      resultType.hasStaticShape() ? DenseI64ArrayAttr() : im.builder.getDenseI64ArrayAttr(target);
  return ReshapeOp::create(im.builder, im.nodeLoc(node), resultType, x, spec).getResult();
}

/// MatMul (numpy semantics, rank >= 2). 2-D operands are one GEMM; a
/// [batch..., M, K] input times a 2-D weight is one GEMM over all the rows
/// (the input flattened to [rows, K] and back); otherwise the batch dims
/// broadcast (each operand broadcast to them, whose gradient sums back) and
/// one batched GEMM multiplies the matrices of each batch index.
static LogicalResult importMatMul(OnnxImporter &im, const onnx::NodeProto &node) {
  bool ta = im.isTransposed(node, 0), tb = im.isTransposed(node, 1);
  auto a = im.input(node, 0, /*allowTransposed=*/true), b = im.input(node, 1, true);
  if (failed(a) || failed(b))
    return failure();
  auto aType = cast<RankedTensorType>(a->getType()), bType = cast<RankedTensorType>(b->getType());
  int64_t ra = aType.getRank(), rb = bType.getRank();
  if (ra < 2 || rb < 2)
    return im.nodeError(node) << "1-D operands are not supported (" << aType << " x " << bType
                              << ")";
  if (ra == 2 && rb == 2) {
    auto product = buildMatmul(im, node, false, false);
    if (failed(product))
      return failure();
    im.define(node, 0, *product);
    return success();
  }
  Location loc = im.nodeLoc(node);
  auto matmul = [&](Value lhs, Value rhs) -> FailureOr<Value> {
    std::string error;
    auto shape = matmulShape(cast<RankedTensorType>(lhs.getType()).getShape(),
                             cast<RankedTensorType>(rhs.getType()).getShape(), ta, tb, error);
    if (failed(shape))
      return im.nodeError(node) << error;
    auto op = MatmulOp::create(im.builder, loc,
                               RankedTensorType::get(*shape, aType.getElementType()), lhs, rhs,
                               ta, tb);
    if (failed(im.verifyBuilt(node, op)))
      return failure();
    return op.getResult();
  };
  ArrayRef<int64_t> aShape = aType.getShape(), bShape = bType.getShape();
  if (rb == 2) {
    // Every dim but the first must be known to restore the batch dims.
    if (llvm::any_of(aShape.drop_front(), ShapedType::isDynamic))
      return im.nodeError(node) << "a batched input " << aType
                                << " may have a dynamic size in its first dim only";
    auto rows = reshapeTo(im, node, *a, {-1, aShape.back()});
    if (failed(rows))
      return failure();
    auto product = matmul(*rows, *b);
    if (failed(product))
      return failure();
    SmallVector<int64_t> target{-1};
    target.append(aShape.begin() + 1, aShape.end() - 1);
    target.push_back(cast<RankedTensorType>(product->getType()).getDimSize(1));
    auto result = reshapeTo(im, node, *product, target);
    if (failed(result))
      return failure();
    im.define(node, 0, *result);
    return success();
  }
  auto batch = broadcastShapes(aShape.drop_back(2), bShape.drop_back(2));
  if (failed(batch))
    return im.nodeError(node) << "the batch dims of " << aType << " and " << bType
                              << " do not broadcast";
  auto toBatch = [&](Value x, RankedTensorType type) -> Value {
    SmallVector<int64_t> shape(*batch);
    shape.append(type.getShape().take_back(2).begin(), type.getShape().take_back(2).end());
    if (ArrayRef<int64_t>(shape) == type.getShape())
      return x;
    return BroadcastToOp::create(im.builder, loc,
                                 RankedTensorType::get(shape, type.getElementType()), x);
  };
  Value lhs = toBatch(*a, aType); // in order: argument evaluation order is unspecified
  Value rhs = toBatch(*b, bType);
  auto product = matmul(lhs, rhs);
  if (failed(product))
    return failure();
  im.define(node, 0, *product);
  return success();
}

ArrayRef<OnnxImporter::Registration> mlir::amp::onnx_import::linearAlgebraRules() {
  static const OnnxImporter::Registration rules[] = {
      {{"", "Gemm", 13, 0, "2-D operands"}, &importGemm},
      {{"", "MatMul", 13, 0, "rank >= 2; batch dims broadcast"}, &importMatMul},
      {{"", "Transpose", 13, 0, "2-D swaps folded into the GEMM that reads them"},
       &importTranspose},
  };
  return rules;
}
