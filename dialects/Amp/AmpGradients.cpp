//===- AmpGradients.cpp - reverse-mode rules of amp ops -------------------===//
//
// GradientOpInterface implementations, one per differentiable op. Each
// receives its results' gradients (null means zero) and builds its operands'
// gradients; autodiff (BuildTrainStep) only walks the graph.
//
//===----------------------------------------------------------------------===//

#include "dialects/Amp/AmpOps.h"

#include "mlir/IR/Builders.h"

using namespace mlir;
using namespace mlir::amp;

static RankedTensorType typeOf(Value v) { return cast<RankedTensorType>(v.getType()); }

/// A matmul with the element type of `like` and the inferred result shape.
static Value buildMatmul(OpBuilder &b, Location loc, Value lhs, Value rhs,
                         bool transposeLhs, bool transposeRhs, Value like) {
  std::string error;
  auto shape = matmulShape(typeOf(lhs).getShape(), typeOf(rhs).getShape(),
                           transposeLhs, transposeRhs, error);
  auto type = RankedTensorType::get(*shape, typeOf(like).getElementType());
  return MatmulOp::create(b, loc, type, lhs, rhs, transposeLhs, transposeRhs);
}

//===----------------------------------------------------------------------===//
// matmul: C = op(A) op(B)
//===----------------------------------------------------------------------===//

LogicalResult MatmulOp::buildGradients(OpBuilder &b, ArrayRef<Value> resultGrads,
                                       SmallVectorImpl<Value> &operandGrads) {
  Value dC = resultGrads[0];
  operandGrads.assign(2, Value());
  if (!dC)
    return success();
  Location loc = getLoc();
  Value a = getLhs(), bm = getRhs();
  bool ta = getTransposeLhs(), tb = getTransposeRhs();
  // Each case is the textbook identity for d(op(A) op(B)) written so that
  // the gradient comes out in A's (or B's) stored layout.
  if (!ta && !tb) {
    operandGrads[0] = buildMatmul(b, loc, dC, bm, false, true, a);  // dC B^T
    operandGrads[1] = buildMatmul(b, loc, a, dC, true, false, bm);  // A^T dC
  } else if (!ta && tb) {
    operandGrads[0] = buildMatmul(b, loc, dC, bm, false, false, a); // dC B
    operandGrads[1] = buildMatmul(b, loc, dC, a, true, false, bm);  // dC^T A
  } else if (ta && !tb) {
    operandGrads[0] = buildMatmul(b, loc, bm, dC, false, true, a);  // B dC^T
    operandGrads[1] = buildMatmul(b, loc, a, dC, false, false, bm); // A dC
  } else {
    operandGrads[0] = buildMatmul(b, loc, bm, dC, true, true, a);   // B^T dC^T
    operandGrads[1] = buildMatmul(b, loc, dC, a, true, true, bm);   // dC^T A^T
  }
  return success();
}

//===----------------------------------------------------------------------===//
// add, sub, mul: gradients summed back over broadcast dims
//===----------------------------------------------------------------------===//

LogicalResult AddOp::buildGradients(OpBuilder &b, ArrayRef<Value> resultGrads,
                                    SmallVectorImpl<Value> &operandGrads) {
  operandGrads.assign(2, Value());
  if (Value dC = resultGrads[0]) {
    operandGrads[0] = sumToShape(b, getLoc(), dC, typeOf(getLhs()));
    operandGrads[1] = sumToShape(b, getLoc(), dC, typeOf(getRhs()));
  }
  return success();
}

LogicalResult SubOp::buildGradients(OpBuilder &b, ArrayRef<Value> resultGrads,
                                    SmallVectorImpl<Value> &operandGrads) {
  operandGrads.assign(2, Value());
  if (Value dC = resultGrads[0]) {
    operandGrads[0] = sumToShape(b, getLoc(), dC, typeOf(getLhs()));
    Value negated = NegOp::create(b, getLoc(), dC);
    operandGrads[1] = sumToShape(b, getLoc(), negated, typeOf(getRhs()));
  }
  return success();
}

LogicalResult MulOp::buildGradients(OpBuilder &b, ArrayRef<Value> resultGrads,
                                    SmallVectorImpl<Value> &operandGrads) {
  operandGrads.assign(2, Value());
  Value dC = resultGrads[0];
  if (!dC)
    return success();
  Location loc = getLoc();
  Value dA = MulOp::create(b, loc, dC.getType(), dC, getRhs());
  Value dB = MulOp::create(b, loc, dC.getType(), dC, getLhs());
  operandGrads[0] = sumToShape(b, loc, dA, typeOf(getLhs()));
  operandGrads[1] = sumToShape(b, loc, dB, typeOf(getRhs()));
  return success();
}

//===----------------------------------------------------------------------===//
// Unary ops
//===----------------------------------------------------------------------===//

LogicalResult NegOp::buildGradients(OpBuilder &b, ArrayRef<Value> resultGrads,
                                    SmallVectorImpl<Value> &operandGrads) {
  operandGrads.assign(1, Value());
  if (Value dC = resultGrads[0])
    operandGrads[0] = NegOp::create(b, getLoc(), dC);
  return success();
}

LogicalResult ReluOp::buildGradients(OpBuilder &b, ArrayRef<Value> resultGrads,
                                     SmallVectorImpl<Value> &operandGrads) {
  operandGrads.assign(1, Value());
  if (Value dC = resultGrads[0])
    operandGrads[0] = ReluGradOp::create(b, getLoc(), dC, getInput());
  return success();
}

LogicalResult ReshapeOp::buildGradients(OpBuilder &b, ArrayRef<Value> resultGrads,
                                        SmallVectorImpl<Value> &operandGrads) {
  operandGrads.assign(1, Value());
  if (Value dC = resultGrads[0])
    operandGrads[0] = ReshapeOp::create(b, getLoc(), getInput().getType(), dC);
  return success();
}

LogicalResult CastOp::buildGradients(OpBuilder &b, ArrayRef<Value> resultGrads,
                                     SmallVectorImpl<Value> &operandGrads) {
  operandGrads.assign(1, Value());
  if (Value dC = resultGrads[0])
    operandGrads[0] = CastOp::create(b, getLoc(), getInput().getType(), dC);
  return success();
}

//===----------------------------------------------------------------------===//
// softmax_cross_entropy: labels are not differentiable
//===----------------------------------------------------------------------===//

LogicalResult SoftmaxCrossEntropyOp::buildGradients(
    OpBuilder &b, ArrayRef<Value> resultGrads, SmallVectorImpl<Value> &operandGrads) {
  operandGrads.assign(2, Value());
  if (Value dLoss = resultGrads[0])
    operandGrads[0] = SoftmaxCrossEntropyGradOp::create(
        b, getLoc(), getLogits().getType(), dLoss, getLogits(), getLabels(),
        getReductionAttr());
  return success();
}
