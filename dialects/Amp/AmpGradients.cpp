//===- AmpGradients.cpp - reverse-mode rules of amp ops -------------------===//
//
// GradientOpInterface implementations, one per differentiable op. Each
// receives its results' gradients (null means zero) and builds its operands'
// gradients; buildReverseGradients (at the end) walks a block with them, for
// the training-step builder and the importer's ONNX Gradient rule.
//
//===----------------------------------------------------------------------===//

#include "dialects/Amp/AmpOps.h"

#include "mlir/IR/Builders.h"
#include "llvm/ADT/DenseSet.h"

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
  Value dC = resultGrads[0];
  operandGrads[0] = sumToShape(b, getLoc(), dC, typeOf(getLhs()));
  operandGrads[1] = sumToShape(b, getLoc(), dC, typeOf(getRhs()));
  return success();
}

LogicalResult SubOp::buildGradients(OpBuilder &b, ArrayRef<Value> resultGrads,
                                    SmallVectorImpl<Value> &operandGrads) {
  Value dC = resultGrads[0];
  operandGrads[0] = sumToShape(b, getLoc(), dC, typeOf(getLhs()));
  Value negated = NegOp::create(b, getLoc(), dC);
  operandGrads[1] = sumToShape(b, getLoc(), negated, typeOf(getRhs()));
  return success();
}

LogicalResult MulOp::buildGradients(OpBuilder &b, ArrayRef<Value> resultGrads,
                                    SmallVectorImpl<Value> &operandGrads) {
  Value dC = resultGrads[0];
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
  Value dC = resultGrads[0];
  operandGrads[0] = NegOp::create(b, getLoc(), dC);
  return success();
}

LogicalResult ReluOp::buildGradients(OpBuilder &b, ArrayRef<Value> resultGrads,
                                     SmallVectorImpl<Value> &operandGrads) {
  // Masked by the output (y > 0 exactly where x > 0): the pre-activation
  // need not be kept, so a GEMM can apply bias and relu in its epilogue.
  Value dC = resultGrads[0];
  operandGrads[0] = ReluGradOp::create(b, getLoc(), dC, getResult());
  return success();
}

LogicalResult TanhOp::buildGradients(OpBuilder &b, ArrayRef<Value> resultGrads,
                                     SmallVectorImpl<Value> &operandGrads) {
  operandGrads[0] = TanhGradOp::create(b, getLoc(), resultGrads[0], getResult());
  return success();
}

LogicalResult SigmoidOp::buildGradients(OpBuilder &b, ArrayRef<Value> resultGrads,
                                        SmallVectorImpl<Value> &operandGrads) {
  operandGrads[0] = SigmoidGradOp::create(b, getLoc(), resultGrads[0], getResult());
  return success();
}

LogicalResult LeakyReluOp::buildGradients(OpBuilder &b, ArrayRef<Value> resultGrads,
                                          SmallVectorImpl<Value> &operandGrads) {
  // Masked by the input: with a negative alpha the output's sign is not the
  // input's.
  operandGrads[0] =
      LeakyReluGradOp::create(b, getLoc(), resultGrads[0], getInput(), getAlphaAttr());
  return success();
}

LogicalResult SqrtOp::buildGradients(OpBuilder &b, ArrayRef<Value> resultGrads,
                                     SmallVectorImpl<Value> &operandGrads) {
  operandGrads[0] = SqrtGradOp::create(b, getLoc(), resultGrads[0], getResult());
  return success();
}

LogicalResult ErfOp::buildGradients(OpBuilder &b, ArrayRef<Value> resultGrads,
                                    SmallVectorImpl<Value> &operandGrads) {
  operandGrads[0] = ErfGradOp::create(b, getLoc(), resultGrads[0], getInput());
  return success();
}

LogicalResult GeluOp::buildGradients(OpBuilder &b, ArrayRef<Value> resultGrads,
                                     SmallVectorImpl<Value> &operandGrads) {
  operandGrads[0] = GeluGradOp::create(b, getLoc(), resultGrads[0], getInput(),
                                       getApproximateTanhAttr());
  return success();
}

LogicalResult ConvOp::buildGradients(OpBuilder &b, ArrayRef<Value> resultGrads,
                                     SmallVectorImpl<Value> &operandGrads) {
  // Same geometry; the results take the forward operands' types.
  Value dY = resultGrads[0];
  auto strides = getStridesAttr(), pads = getPadsAttr(), dilations = getDilationsAttr();
  operandGrads[0] = ConvBackwardDataOp::create(b, getLoc(), getInput().getType(), dY,
                                               getFilter(), strides, pads, dilations, getGroup());
  operandGrads[1] = ConvBackwardFilterOp::create(b, getLoc(), getFilter().getType(),
                                                 getInput(), dY, strides, pads, dilations,
                                                 getGroup());
  return success();
}

LogicalResult MaxPoolOp::buildGradients(OpBuilder &b, ArrayRef<Value> resultGrads,
                                        SmallVectorImpl<Value> &operandGrads) {
  // Only the pooled values carry a gradient (indices are integers).
  if (!resultGrads[0])
    return success();
  operandGrads[0] = MaxPoolGradOp::create(b, getLoc(), getInput().getType(), resultGrads[0],
                                          getIndices());
  return success();
}

LogicalResult AvgPoolOp::buildGradients(OpBuilder &b, ArrayRef<Value> resultGrads,
                                        SmallVectorImpl<Value> &operandGrads) {
  operandGrads[0] = AvgPoolGradOp::create(b, getLoc(), getInput().getType(), resultGrads[0],
                                          getKernelAttr(), getStridesAttr(), getPadsAttr(),
                                          getCeilModeAttr(), getCountIncludePadAttr());
  return success();
}

/// max/min of two operands: the gradient goes to the operand that was taken
/// (`mask` 1 for lhs; ties go to lhs, as in torch.clamp), summed back over
/// broadcast dims.
template <typename MaskOp>
static void selectGradients(OpBuilder &b, Location loc, Value dC, Value lhs, Value rhs,
                            SmallVectorImpl<Value> &operandGrads) {
  Value mask = MaskOp::create(b, loc, dC.getType(), lhs, rhs);
  Value toLhs = MulOp::create(b, loc, dC.getType(), dC, mask);
  Value toRhs = SubOp::create(b, loc, dC.getType(), dC, toLhs);
  operandGrads[0] = sumToShape(b, loc, toLhs, typeOf(lhs));
  operandGrads[1] = sumToShape(b, loc, toRhs, typeOf(rhs));
}

LogicalResult MaximumOp::buildGradients(OpBuilder &b, ArrayRef<Value> resultGrads,
                                        SmallVectorImpl<Value> &operandGrads) {
  selectGradients<GreaterEqualMaskOp>(b, getLoc(), resultGrads[0], getLhs(), getRhs(),
                                      operandGrads);
  return success();
}

LogicalResult MinimumOp::buildGradients(OpBuilder &b, ArrayRef<Value> resultGrads,
                                        SmallVectorImpl<Value> &operandGrads) {
  selectGradients<LessEqualMaskOp>(b, getLoc(), resultGrads[0], getLhs(), getRhs(),
                                   operandGrads);
  return success();
}

// Comparisons are piecewise constant: no gradient to their operands.
#define AMP_MASK_GRADIENT(OpTy)                                                \
  LogicalResult OpTy::buildGradients(OpBuilder &, ArrayRef<Value>,             \
                                     SmallVectorImpl<Value> &) {               \
    return success();                                                          \
  }
AMP_MASK_GRADIENT(GreaterEqualMaskOp)
AMP_MASK_GRADIENT(LessEqualMaskOp)
AMP_MASK_GRADIENT(EqualMaskOp)
AMP_MASK_GRADIENT(LessMaskOp)
AMP_MASK_GRADIENT(GreaterMaskOp)
#undef AMP_MASK_GRADIENT

LogicalResult MaskedOp::buildGradients(OpBuilder &b, ArrayRef<Value> resultGrads,
                                       SmallVectorImpl<Value> &operandGrads) {
  Value dC = resultGrads[0];
  Value kept = MaskedOp::create(b, getLoc(), dC.getType(), dC, getRhs());
  operandGrads[0] = sumToShape(b, getLoc(), kept, typeOf(getLhs()));
  return success(); // the mask is not differentiable
}

LogicalResult ReshapeOp::buildGradients(OpBuilder &b, ArrayRef<Value> resultGrads,
                                        SmallVectorImpl<Value> &operandGrads) {
  Value dC = resultGrads[0];
  operandGrads[0] = ReshapeOp::create(b, getLoc(), getInput().getType(), dC);
  return success();
}

LogicalResult CastOp::buildGradients(OpBuilder &b, ArrayRef<Value> resultGrads,
                                     SmallVectorImpl<Value> &operandGrads) {
  Value dC = resultGrads[0];
  if (isa<FloatType>(getInput().getType().getElementType()) &&
      isa<FloatType>(getType().getElementType())) // integers and booleans get none
    operandGrads[0] = CastOp::create(b, getLoc(), getInput().getType(), dC);
  return success();
}

//===----------------------------------------------------------------------===//
// softmax_cross_entropy: labels are not differentiable
//===----------------------------------------------------------------------===//

LogicalResult SoftmaxCrossEntropyOp::buildGradients(
    OpBuilder &b, ArrayRef<Value> resultGrads, SmallVectorImpl<Value> &operandGrads) {
  Value dLoss = resultGrads[0];
  operandGrads[0] = SoftmaxCrossEntropyGradOp::create(
      b, getLoc(), getLogits().getType(), dLoss, getLogits(), getLabels(),
      getReductionAttr(), getIgnoreIndexAttr());
  return success();
}

//===----------------------------------------------------------------------===//
// div, exp, log, softmax, reduce_sum, broadcast_to
//===----------------------------------------------------------------------===//

/// `value` with `like`'s element type (gradients keep their value's type).
static Value castLike(OpBuilder &b, Location loc, Value value, Value like) {
  auto type = typeOf(value);
  Type element = typeOf(like).getElementType();
  if (type.getElementType() == element)
    return value;
  return CastOp::create(b, loc, RankedTensorType::get(type.getShape(), element), value);
}

LogicalResult DivOp::buildGradients(OpBuilder &b, ArrayRef<Value> resultGrads,
                                    SmallVectorImpl<Value> &operandGrads) {
  Value dC = resultGrads[0];
  Location loc = getLoc();
  // d(a/b)/da = 1/b; d(a/b)/db = -(a/b)/b.
  Value dA = DivOp::create(b, loc, dC.getType(), dC, getRhs());
  Value quotient = MulOp::create(b, loc, dC.getType(), dC, getResult());
  Value dB = NegOp::create(b, loc, DivOp::create(b, loc, dC.getType(), quotient, getRhs()));
  operandGrads[0] = sumToShape(b, loc, dA, typeOf(getLhs()));
  operandGrads[1] = sumToShape(b, loc, dB, typeOf(getRhs()));
  return success();
}

LogicalResult ExpOp::buildGradients(OpBuilder &b, ArrayRef<Value> resultGrads,
                                    SmallVectorImpl<Value> &operandGrads) {
  // d exp(x) = exp(x) dx
  Value dY = resultGrads[0];
  operandGrads[0] = castLike(
      b, getLoc(), MulOp::create(b, getLoc(), dY.getType(), dY, getResult()), getInput());
  return success();
}

LogicalResult LogOp::buildGradients(OpBuilder &b, ArrayRef<Value> resultGrads,
                                    SmallVectorImpl<Value> &operandGrads) {
  // d log(x) = dx / x
  Value dY = resultGrads[0];
  operandGrads[0] = DivOp::create(b, getLoc(), getInput().getType(),
                                  castLike(b, getLoc(), dY, getInput()), getInput());
  return success();
}

LogicalResult PowOp::buildGradients(OpBuilder &b, ArrayRef<Value> resultGrads,
                                    SmallVectorImpl<Value> &operandGrads) {
  // In f32, as the pow itself: the input is widened, the gradient rounded
  // back to the input's type.
  Value dY = resultGrads[0];
  Value x = castLike(b, getLoc(), getInput(), dY);
  Value dX = PowGradOp::create(b, getLoc(), dY, x, getExponentAttr());
  operandGrads[0] = castLike(b, getLoc(), dX, getInput());
  return success();
}

/// sum(value, axis) with the axis kept (size 1), for softmax gradients.
static Value sumAlongAxis(OpBuilder &b, Location loc, Value value, int64_t axis) {
  auto type = typeOf(value);
  if (axis < 0)
    axis += type.getRank();
  SmallVector<int64_t> kept(type.getShape());
  kept[axis] = 1;
  return ReduceSumOp::create(b, loc, RankedTensorType::get(kept, type.getElementType()), value,
                             b.getDenseI64ArrayAttr({axis}), /*keep_dims=*/true);
}

LogicalResult SoftmaxOp::buildGradients(OpBuilder &b, ArrayRef<Value> resultGrads,
                                        SmallVectorImpl<Value> &operandGrads) {
  // dx = y * (dy - sum(dy * y, axis)).
  Value dY = resultGrads[0];
  Location loc = getLoc();
  Value y = getResult();
  auto type = typeOf(y);
  Value product = MulOp::create(b, loc, type, dY, y);
  Value sum = sumAlongAxis(b, loc, product, static_cast<int64_t>(getAxis()));
  Value centered = SubOp::create(b, loc, type, dY, sum);
  operandGrads[0] = castLike(b, loc, MulOp::create(b, loc, type, y, centered), getInput());
  return success();
}

LogicalResult LogSoftmaxOp::buildGradients(OpBuilder &b, ArrayRef<Value> resultGrads,
                                           SmallVectorImpl<Value> &operandGrads) {
  // dx = dy - exp(y) * sum(dy, axis): exp(y) is the softmax.
  Value dY = resultGrads[0];
  Location loc = getLoc();
  auto type = typeOf(getResult());
  Value softmax = ExpOp::create(b, loc, type, getResult());
  Value sum = sumAlongAxis(b, loc, dY, static_cast<int64_t>(getAxis()));
  Value dX = SubOp::create(b, loc, type, dY, MulOp::create(b, loc, type, softmax, sum));
  operandGrads[0] = castLike(b, loc, dX, getInput());
  return success();
}

/// A reduction's result (or its gradient) with the reduced axes kept as
/// size 1, so that it broadcasts against the reduction's input.
template <typename OpTy> static Value withKeptAxes(OpBuilder &b, OpTy op, Value value) {
  std::string error;
  auto kept = reduceShape(typeOf(op.getInput()).getShape(), op.getAxes(), /*keepDims=*/true,
                          error);
  auto type = typeOf(value);
  if (type.getShape() == ArrayRef<int64_t>(*kept))
    return value;
  return ReshapeOp::create(b, op.getLoc(), RankedTensorType::get(*kept, type.getElementType()),
                           value);
}

LogicalResult ReduceSumOp::buildGradients(OpBuilder &b, ArrayRef<Value> resultGrads,
                                          SmallVectorImpl<Value> &operandGrads) {
  Value dY = resultGrads[0];
  // Every input element contributes once: broadcast dy back over the axes.
  Location loc = getLoc();
  Value spread = BroadcastToOp::create(
      b, loc, RankedTensorType::get(typeOf(getInput()).getShape(), typeOf(dY).getElementType()),
      withKeptAxes(b, *this, dY));
  operandGrads[0] = castLike(b, loc, spread, getInput());
  return success();
}

LogicalResult ReduceMaxOp::buildGradients(OpBuilder &b, ArrayRef<Value> resultGrads,
                                          SmallVectorImpl<Value> &operandGrads) {
  // dx = dy / ties where x equals its maximum, 0 elsewhere: tied maxima
  // share the gradient evenly, as torch.amax's backward.
  Value dY = resultGrads[0];
  Location loc = getLoc();
  Value x = castLike(b, loc, getInput(), dY);
  auto type = typeOf(x);
  Value max = withKeptAxes(b, *this, castLike(b, loc, getResult(), dY));
  Value mask = GreaterEqualMaskOp::create(b, loc, type, x, max);
  Value ties = ReduceSumOp::create(b, loc, typeOf(max), mask, getAxesAttr(),
                                   /*keep_dims=*/true);
  Value share = DivOp::create(b, loc, typeOf(max), withKeptAxes(b, *this, dY), ties);
  operandGrads[0] = castLike(b, loc, MulOp::create(b, loc, type, mask, share), getInput());
  return success();
}

LogicalResult BroadcastToOp::buildGradients(OpBuilder &b, ArrayRef<Value> resultGrads,
                                            SmallVectorImpl<Value> &operandGrads) {
  Value dY = resultGrads[0];
  operandGrads[0] = sumToShape(b, getLoc(), dY, typeOf(getInput()));
  return success();
}

//===----------------------------------------------------------------------===//
// batch normalization: one gradient op gives the input's, scale's and bias's
//===----------------------------------------------------------------------===//

/// The gradients of a batch norm that normalized with `mean` and `var`
/// (batch statistics, or constants with `useGlobalStats`).
static void buildBatchNormGradients(OpBuilder &b, Location loc, Value dY, Value input,
                                    Value scale, Value mean, Value var, FloatAttr epsilon,
                                    bool useGlobalStats, SmallVectorImpl<Value> &operandGrads) {
  auto grads = BatchNormGradOp::create(b, loc, input.getType(), scale.getType(),
                                       scale.getType(), dY, input, scale, mean, var, epsilon,
                                       useGlobalStats ? b.getUnitAttr() : UnitAttr());
  operandGrads[0] = grads.getInputGrad();
  operandGrads[1] = grads.getScaleGrad();
  operandGrads[2] = grads.getBiasGrad();
}

LogicalResult BatchNormOp::buildGradients(OpBuilder &b, ArrayRef<Value> resultGrads,
                                          SmallVectorImpl<Value> &operandGrads) {
  // The running averages never reach a loss; only the activation has a gradient.
  if (!resultGrads[0])
    return success();
  buildBatchNormGradients(b, getLoc(), resultGrads[0], getInput(), getScale(), getSavedMean(),
                          getSavedVar(), getEpsilonAttr(), /*useGlobalStats=*/false,
                          operandGrads);
  return success();
}

LogicalResult BatchNormInferenceOp::buildGradients(OpBuilder &b, ArrayRef<Value> resultGrads,
                                                   SmallVectorImpl<Value> &operandGrads) {
  // The statistics are state, not parameters: they get no gradient.
  buildBatchNormGradients(b, getLoc(), resultGrads[0], getInput(), getScale(), getMean(),
                          getVar(), getEpsilonAttr(), /*useGlobalStats=*/true, operandGrads);
  return success();
}

LogicalResult LayerNormOp::buildGradients(OpBuilder &b, ArrayRef<Value> resultGrads,
                                          SmallVectorImpl<Value> &operandGrads) {
  // The saved statistics are no model outputs a loss reads in practice; if
  // one does, its gradient is not supported (refused, not dropped).
  if (resultGrads[1] || resultGrads[2])
    return emitOpError("gradients through the mean or inv_std results are not supported");
  if (!resultGrads[0])
    return success();
  auto grad = LayerNormGradOp::create(
      b, getLoc(), TypeRange{getInput().getType(), getScale().getType(), getScale().getType()},
      resultGrads[0], getInput(), getScale(), getMean(), getInvStd(), getAxisAttr());
  operandGrads[0] = grad.getInputGrad();
  operandGrads[1] = grad.getScaleGrad();
  operandGrads[2] = grad.getBiasGrad();
  return success();
}

//===----------------------------------------------------------------------===//
// pad, slice, concat: each other's gradients
//===----------------------------------------------------------------------===//

/// The box of `like`'s shape at `offsets` in `grad`.
static Value buildSlice(OpBuilder &b, Location loc, Value grad, ArrayRef<int64_t> offsets,
                        Value like) {
  auto shape = typeOf(like).getShape();
  return SliceOp::create(b, loc, RankedTensorType::get(shape, typeOf(grad).getElementType()),
                         grad, b.getDenseI64ArrayAttr(offsets), b.getDenseI64ArrayAttr(shape));
}

LogicalResult PadOp::buildGradients(OpBuilder &b, ArrayRef<Value> resultGrads,
                                    SmallVectorImpl<Value> &operandGrads) {
  ArrayRef<int64_t> pads = getPads();
  operandGrads[0] = buildSlice(b, getLoc(), resultGrads[0],
                               pads.take_front(typeOf(getInput()).getRank()), getInput());
  return success();
}

LogicalResult SliceOp::buildGradients(OpBuilder &b, ArrayRef<Value> resultGrads,
                                      SmallVectorImpl<Value> &operandGrads) {
  // Zeros around the box: begin pads are the offsets, end pads the rest.
  auto input = typeOf(getInput()).getShape();
  SmallVector<int64_t> pads(getOffsets());
  for (size_t d = 0; d < input.size(); ++d)
    pads.push_back(input[d] - getOffsets()[d] - getSizes()[d]);
  operandGrads[0] = PadOp::create(b, getLoc(),
                                  RankedTensorType::get(input, typeOf(resultGrads[0]).getElementType()),
                                  resultGrads[0], b.getDenseI64ArrayAttr(pads),
                                  b.getF32FloatAttr(0.0f));
  return success();
}

LogicalResult GatherOp::buildGradients(OpBuilder &b, ArrayRef<Value> resultGrads,
                                       SmallVectorImpl<Value> &operandGrads) {
  // A scatter-add into an FP32 table-shaped gradient; indices get none.
  auto inputType = typeOf(getInput());
  Value grad = GatherGradOp::create(
      b, getLoc(), RankedTensorType::get(inputType.getShape(), b.getF32Type()), resultGrads[0],
      getIndices(), getAxisAttr());
  operandGrads[0] = castLike(b, getLoc(), grad, getInput());
  return success();
}

LogicalResult TransposeOp::buildGradients(OpBuilder &b, ArrayRef<Value> resultGrads,
                                          SmallVectorImpl<Value> &operandGrads) {
  // The inverse permutation carries the gradient back to the input's dims.
  ArrayRef<int64_t> perm = getPermutation();
  SmallVector<int64_t> inverse(perm.size());
  for (auto [d, from] : llvm::enumerate(perm))
    inverse[from] = static_cast<int64_t>(d);
  Value dY = resultGrads[0];
  auto inputType = typeOf(getInput());
  operandGrads[0] = TransposeOp::create(
      b, getLoc(), RankedTensorType::get(inputType.getShape(), typeOf(dY).getElementType()),
      dY, b.getDenseI64ArrayAttr(inverse));
  return success();
}

LogicalResult ConcatOp::buildGradients(OpBuilder &b, ArrayRef<Value> resultGrads,
                                       SmallVectorImpl<Value> &operandGrads) {
  SmallVector<int64_t> offsets(typeOf(getResult()).getRank(), 0);
  for (auto [i, input] : llvm::enumerate(getInputs())) {
    operandGrads[i] = buildSlice(b, getLoc(), resultGrads[0], offsets, input);
    offsets[getAxis()] += typeOf(input).getDimSize(getAxis());
  }
  return success();
}

//===----------------------------------------------------------------------===//
// dropout: the same mask (same seed and counter) applied to the gradient
//===----------------------------------------------------------------------===//

LogicalResult DropoutOp::buildGradients(OpBuilder &b, ArrayRef<Value> resultGrads,
                                        SmallVectorImpl<Value> &operandGrads) {
  operandGrads[0] = DropoutOp::create(b, getLoc(), resultGrads[0].getType(), resultGrads[0],
                                      getCounter(), getRatioAttr(), getSeedAttr());
  return success();
}

//===----------------------------------------------------------------------===//
// Reverse mode over a block
//===----------------------------------------------------------------------===//

LogicalResult mlir::amp::buildReverseGradients(Block &body, Value output, Value seed,
                                               ArrayRef<Value> wrt, OpBuilder &b,
                                               SmallVectorImpl<Value> &grads) {
  // Forward sweep: which values depend on one of `wrt`.
  llvm::DenseSet<Value> needsGrad(wrt.begin(), wrt.end());
  SmallVector<Operation *> tape;
  for (Operation &op : body) {
    tape.push_back(&op);
    if (llvm::any_of(op.getOperands(), [&](Value v) { return needsGrad.contains(v); }))
      needsGrad.insert(op.result_begin(), op.result_end());
  }

  // Reverse sweep from d output / d output = seed; a value used twice sums
  // the gradients of its uses.
  llvm::DenseMap<Value, Value> gradOf;
  gradOf[output] = seed;
  for (Operation *op : llvm::reverse(tape)) {
    SmallVector<Value> resultGrads;
    for (Value r : op->getResults())
      resultGrads.push_back(gradOf.lookup(r));
    bool reached = llvm::any_of(resultGrads, [](Value g) { return bool(g); });
    bool differentiable =
        llvm::any_of(op->getOperands(), [&](Value v) { return needsGrad.contains(v); });
    if (!reached || !differentiable)
      continue;
    auto rule = dyn_cast<GradientOpInterface>(op);
    if (!rule)
      return op->emitError() << "'" << op->getName()
                             << "' has no gradient rule, but a parameter's gradient flows "
                                "through it";
    SmallVector<Value> operandGrads(op->getNumOperands()); // null: no gradient
    if (failed(rule.buildGradients(b, resultGrads, operandGrads)))
      return failure();
    for (auto [operand, grad] : llvm::zip(op->getOperands(), operandGrads)) {
      if (!grad || !needsGrad.contains(operand))
        continue;
      Value &sum = gradOf[operand];
      sum = sum ? AddOp::create(b, op->getLoc(), sum.getType(), sum, grad).getResult() : grad;
    }
  }
  for (Value value : wrt) {
    Value grad = gradOf.lookup(value);
    if (!grad) { // `output` does not depend on it: the gradient is zero.
      auto type = cast<ShapedType>(value.getType());
      grad = ConstantOp::create(b, value.getLoc(),
                                DenseElementsAttr::get(type, b.getZeroAttr(type.getElementType())));
    }
    grads.push_back(grad);
  }
  return success();
}
