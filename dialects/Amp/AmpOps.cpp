//===- AmpOps.cpp - amp dialect, verifiers, shape inference, folders ------===//

#include "dialects/Amp/AmpOps.h"

#include "mlir/IR/Builders.h"
#include "mlir/IR/BuiltinAttributes.h"
#include "mlir/IR/DialectImplementation.h"
#include "mlir/IR/TypeUtilities.h"
#include "llvm/ADT/TypeSwitch.h"

using namespace mlir;
using namespace mlir::amp;

#include "dialects/Amp/AmpDialect.cpp.inc"
#include "dialects/Amp/AmpEnums.cpp.inc"
#include "dialects/Amp/AmpInterfaces.cpp.inc"

#define GET_ATTRDEF_CLASSES
#include "dialects/Amp/AmpAttrs.cpp.inc"

#define GET_OP_CLASSES
#include "dialects/Amp/AmpOps.cpp.inc"

//===----------------------------------------------------------------------===//
// Dialect
//===----------------------------------------------------------------------===//

void AmpDialect::initialize() {
  addAttributes<
#define GET_ATTRDEF_LIST
#include "dialects/Amp/AmpAttrs.cpp.inc"
      >();
  addOperations<
#define GET_OP_LIST
#include "dialects/Amp/AmpOps.cpp.inc"
      >();
}

Operation *AmpDialect::materializeConstant(OpBuilder &builder, Attribute value,
                                           Type type, Location loc) {
  auto elements = dyn_cast<ElementsAttr>(value);
  if (!elements || elements.getType() != type)
    return nullptr;
  return ConstantOp::create(builder, loc, elements);
}

//===----------------------------------------------------------------------===//
// Shared verification helpers
//===----------------------------------------------------------------------===//

static RankedTensorType tensorType(Value value) {
  return cast<RankedTensorType>(value.getType());
}

/// Checks each result shape against the op's own shape inference, so the
/// verifier and the batch-size pass apply one rule.
template <typename OpTy>
static LogicalResult verifyInferredShapes(OpTy op) {
  SmallVector<ShapedTypeComponents> inferred;
  typename OpTy::Adaptor adaptor(op);
  if (failed(OpTy::inferReturnTypeComponents(op.getContext(), op.getLoc(),
                                             adaptor, inferred)))
    return failure(); // inference has reported why, at the op

  for (auto [result, components] : llvm::zip(op->getResults(), inferred)) {
    auto actual = tensorType(result).getShape();
    if (failed(verifyCompatibleShape(actual, components.getDims())))
      return op.emitOpError() << "result shape ["
                              << llvm::make_range(actual.begin(), actual.end())
                              << "] does not match the inferred shape ["
                              << components.getDims() << "]";
  }
  return success();
}

LogicalResult mlir::amp::sameShapeComponents(ValueRange values,
                                            SmallVectorImpl<ShapedTypeComponents> &out) {
  for (Value v : values)
    out.emplace_back(tensorType(v).getShape());
  return success();
}

static LogicalResult emitShapeError(std::optional<Location> loc, StringRef op,
                                    const std::string &why) {
  return emitOptionalError(loc, "'amp.", op, "' op ", why);
}

//===----------------------------------------------------------------------===//
// ConstantOp
//===----------------------------------------------------------------------===//

OpFoldResult ConstantOp::fold(FoldAdaptor) { return getValue(); }

//===----------------------------------------------------------------------===//
// MatmulOp
//===----------------------------------------------------------------------===//

LogicalResult MatmulOp::inferReturnTypeComponents(
    MLIRContext *, std::optional<Location> loc, Adaptor adaptor,
    SmallVectorImpl<ShapedTypeComponents> &inferred) {
  std::string error;
  auto shape = matmulShape(tensorType(adaptor.getLhs()).getShape(),
                           tensorType(adaptor.getRhs()).getShape(),
                           adaptor.getTransposeLhs(), adaptor.getTransposeRhs(), error);
  if (failed(shape))
    return emitShapeError(loc, "matmul", error);
  inferred.emplace_back(*shape);
  return success();
}

LogicalResult MatmulOp::verify() {
  Type lhsElement = getLhs().getType().getElementType();
  Type resultElement = getResult().getType().getElementType();
  if (lhsElement != getRhs().getType().getElementType())
    return emitOpError("operands must share an element type");
  if (resultElement != lhsElement && !resultElement.isF32())
    return emitOpError("result element type must equal the operands' or be f32");
  return verifyInferredShapes(*this);
}

int64_t MatmulOp::getFlops() {
  auto lhs = getLhs().getType();
  if (!lhs.hasStaticShape() || !getResult().getType().hasStaticShape())
    return 0;
  int64_t inner = lhs.getDimSize(lhs.getRank() - (getTransposeLhs() ? 2 : 1));
  return 2 * getResult().getType().getNumElements() * inner;
}

//===----------------------------------------------------------------------===//
// Broadcasting binary ops
//===----------------------------------------------------------------------===//

template <typename OpTy>
static LogicalResult inferBroadcast(std::optional<Location> loc, Value lhs, Value rhs,
                                    SmallVectorImpl<ShapedTypeComponents> &inferred) {
  auto shape = broadcastShapes(tensorType(lhs).getShape(), tensorType(rhs).getShape());
  if (failed(shape))
    return emitShapeError(loc, OpTy::getOperationName().drop_front(4),
                          "operand shapes do not broadcast");
  inferred.emplace_back(*shape);
  return success();
}

template <typename OpTy>
static LogicalResult verifyBroadcast(OpTy op) {
  Type element = op.getResult().getType().getElementType();
  if (op.getLhs().getType().getElementType() != element ||
      op.getRhs().getType().getElementType() != element)
    return op.emitOpError("operands and result must share an element type");
  return verifyInferredShapes(op);
}

#define AMP_BROADCAST_OP(OpTy)                                                 \
  LogicalResult OpTy::inferReturnTypeComponents(                               \
      MLIRContext *, std::optional<Location> loc, Adaptor adaptor,             \
      SmallVectorImpl<ShapedTypeComponents> &inferred) {                       \
    return inferBroadcast<OpTy>(loc, adaptor.getLhs(), adaptor.getRhs(),       \
                                inferred);                                     \
  }                                                                            \
  LogicalResult OpTy::verify() { return verifyBroadcast(*this); }
AMP_BROADCAST_OP(AddOp)
AMP_BROADCAST_OP(SubOp)
AMP_BROADCAST_OP(MulOp)
AMP_BROADCAST_OP(DivOp)
AMP_BROADCAST_OP(MaximumOp)
AMP_BROADCAST_OP(MinimumOp)
AMP_BROADCAST_OP(GreaterEqualMaskOp)
AMP_BROADCAST_OP(LessEqualMaskOp)
AMP_BROADCAST_OP(EqualMaskOp)
AMP_BROADCAST_OP(LessMaskOp)
AMP_BROADCAST_OP(GreaterMaskOp)
AMP_BROADCAST_OP(MaskedOp)
#undef AMP_BROADCAST_OP

//===----------------------------------------------------------------------===//
// ConvOp
//===----------------------------------------------------------------------===//

LogicalResult ConvOp::inferReturnTypeComponents(
    MLIRContext *, std::optional<Location> loc, Adaptor adaptor,
    SmallVectorImpl<ShapedTypeComponents> &inferred) {
  std::string error;
  ConvGeometry geometry{adaptor.getStrides(), adaptor.getPads(), adaptor.getDilations(),
                        static_cast<int64_t>(adaptor.getGroup())};
  auto shape = convShape(tensorType(adaptor.getInput()).getShape(),
                         tensorType(adaptor.getFilter()).getShape(), geometry, error);
  if (failed(shape))
    return emitShapeError(loc, "conv", error);
  inferred.emplace_back(*shape);
  return success();
}

LogicalResult ConvOp::verify() {
  Type element = getInput().getType().getElementType();
  Type resultElement = getResult().getType().getElementType();
  if (element != getFilter().getType().getElementType())
    return emitOpError("operands must share an element type");
  if (resultElement != element && !resultElement.isF32())
    return emitOpError("result element type must equal the operands' or be f32");
  return verifyInferredShapes(*this);
}

/// A convolution gradient's operands share an element type, its result is
/// that type or f32, and the forward rule over (input, filter) gives the
/// gradient's shape.
template <typename OpTy>
static LogicalResult verifyConvGradient(OpTy op, Value input, Value filter, Value grad) {
  Type element = op.getFirst().getType().getElementType();
  Type resultElement = op.getResult().getType().getElementType();
  if (element != op.getSecond().getType().getElementType())
    return op.emitOpError("operands must share an element type");
  if (resultElement != element && !resultElement.isF32())
    return op.emitOpError("result element type must equal the operands' or be f32");
  std::string error;
  ConvGeometry geometry{op.getStrides(), op.getPads(), op.getDilations(),
                        static_cast<int64_t>(op.getGroup())};
  auto shape = convShape(tensorType(input).getShape(), tensorType(filter).getShape(), geometry,
                         error);
  if (failed(shape))
    return op.emitOpError() << error;
  if (failed(verifyCompatibleShape(*shape, tensorType(grad).getShape())))
    return op.emitOpError() << "the gradient's shape does not match the convolution's result";
  return success();
}

LogicalResult ConvBackwardDataOp::verify() {
  return verifyConvGradient(*this, getResult(), getSecond(), getFirst());
}
LogicalResult ConvBackwardFilterOp::verify() {
  return verifyConvGradient(*this, getFirst(), getResult(), getSecond());
}

/// A convolution, forward or either gradient, multiplies and adds each
/// element of its result (forward) or of the result's gradient with one
/// filter row: `C / group` channels times the kernel's taps.
static int64_t convFlops(Value convResult, Value filter) {
  auto filterType = tensorType(filter);
  if (!filterType.hasStaticShape() || !tensorType(convResult).hasStaticShape() ||
      filterType.getDimSize(0) == 0)
    return 0;
  return 2 * tensorType(convResult).getNumElements() *
         (filterType.getNumElements() / filterType.getDimSize(0));
}
int64_t ConvOp::getFlops() { return convFlops(getResult(), getFilter()); }
int64_t ConvBackwardDataOp::getFlops() { return convFlops(getFirst(), getSecond()); }
int64_t ConvBackwardFilterOp::getFlops() { return convFlops(getSecond(), getResult()); }

LogicalResult MaxPoolOp::inferReturnTypeComponents(
    MLIRContext *, std::optional<Location> loc, Adaptor adaptor,
    SmallVectorImpl<ShapedTypeComponents> &inferred) {
  std::string error;
  ConvGeometry geometry{adaptor.getStrides(), adaptor.getPads(), adaptor.getDilations(), 1};
  auto shape = poolShape(tensorType(adaptor.getInput()).getShape(), adaptor.getKernel(),
                         geometry, adaptor.getCeilMode(), error);
  if (failed(shape))
    return emitShapeError(loc, "max_pool", error);
  inferred.emplace_back(*shape); // the pooled values
  inferred.emplace_back(*shape); // where they came from
  return success();
}

/// Data movement and pooling: the result keeps the input's element type,
/// and its shape follows the op's shape inference.
template <typename OpTy>
static LogicalResult verifyKeepsElementType(OpTy op) {
  if (op.getResult().getType().getElementType() != op.getInput().getType().getElementType())
    return op.emitOpError("result element type must equal the input's");
  return verifyInferredShapes(op);
}

LogicalResult MaxPoolOp::verify() { return verifyKeepsElementType(*this); }

/// Average pooling uses no dilation.
static SmallVector<int64_t> denseDilations(size_t spatial) {
  return SmallVector<int64_t>(spatial, 1);
}

LogicalResult AvgPoolOp::inferReturnTypeComponents(
    MLIRContext *, std::optional<Location> loc, Adaptor adaptor,
    SmallVectorImpl<ShapedTypeComponents> &inferred) {
  std::string error;
  auto dilations = denseDilations(adaptor.getKernel().size());
  ConvGeometry geometry{adaptor.getStrides(), adaptor.getPads(), dilations, 1};
  auto shape = poolShape(tensorType(adaptor.getInput()).getShape(), adaptor.getKernel(),
                         geometry, adaptor.getCeilMode(), error);
  if (failed(shape))
    return emitShapeError(loc, "avg_pool", error);
  inferred.emplace_back(*shape);
  return success();
}

LogicalResult AvgPoolOp::verify() { return verifyInferredShapes(*this); }

LogicalResult AvgPoolGradOp::verify() {
  std::string error;
  auto dilations = denseDilations(getKernel().size());
  ConvGeometry geometry{getStrides(), getPads(), dilations, 1};
  auto shape =
      poolShape(getResult().getType().getShape(), getKernel(), geometry, getCeilMode(), error);
  if (failed(shape))
    return emitOpError() << error;
  if (failed(verifyCompatibleShape(*shape, getGrad().getType().getShape())))
    return emitOpError("the gradient's shape is not the pooled shape of the result");
  if (getGrad().getType().getElementType() != getResult().getType().getElementType())
    return emitOpError("result element type must equal the gradient's");
  return success();
}

LogicalResult MaxPoolGradOp::verify() {
  auto grad = getGrad().getType(), result = getResult().getType();
  if (failed(verifyCompatibleShape(grad.getShape(), getIndices().getType().getShape())))
    return emitOpError("grad and indices must have one shape");
  if (grad.getElementType() != result.getElementType())
    return emitOpError("result element type must equal the gradient's");
  if (grad.getRank() != result.getRank() || grad.getRank() < 3 ||
      failed(verifyCompatibleShape(grad.getShape().take_front(2),
                                   result.getShape().take_front(2))))
    return emitOpError("grad and result must share rank (at least 3), batch and channels");
  return success();
}

//===----------------------------------------------------------------------===//
// Data movement: pad, slice, concat
//===----------------------------------------------------------------------===//

LogicalResult PadOp::inferReturnTypeComponents(
    MLIRContext *, std::optional<Location> loc, Adaptor adaptor,
    SmallVectorImpl<ShapedTypeComponents> &inferred) {
  auto shape = tensorType(adaptor.getInput()).getShape();
  ArrayRef<int64_t> pads = adaptor.getPads();
  if (pads.size() != 2 * shape.size() || llvm::any_of(pads, [](int64_t p) { return p < 0; }))
    return emitShapeError(loc, "pad", "needs a begin and an end pad >= 0 for each of the " +
                                          std::to_string(shape.size()) + " dims");
  SmallVector<int64_t> result(shape);
  for (size_t d = 0; d < shape.size(); ++d)
    if (!ShapedType::isDynamic(shape[d]))
      result[d] += pads[d] + pads[d + shape.size()];
  inferred.emplace_back(result);
  return success();
}

LogicalResult PadOp::verify() { return verifyKeepsElementType(*this); }

LogicalResult SliceOp::inferReturnTypeComponents(
    MLIRContext *, std::optional<Location> loc, Adaptor adaptor,
    SmallVectorImpl<ShapedTypeComponents> &inferred) {
  auto shape = tensorType(adaptor.getInput()).getShape();
  ArrayRef<int64_t> offsets = adaptor.getOffsets(), sizes = adaptor.getSizes();
  if (offsets.size() != shape.size() || sizes.size() != shape.size())
    return emitShapeError(loc, "slice", "needs an offset and a size for each dim");
  for (size_t d = 0; d < shape.size(); ++d)
    if (offsets[d] < 0 || sizes[d] < 0 ||
        (!ShapedType::isDynamic(shape[d]) && offsets[d] + sizes[d] > shape[d]))
      return emitShapeError(loc, "slice", "the box leaves the input in dim " +
                                              std::to_string(d));
  inferred.emplace_back(sizes);
  return success();
}

LogicalResult SliceOp::verify() { return verifyKeepsElementType(*this); }

LogicalResult ConcatOp::inferReturnTypeComponents(
    MLIRContext *, std::optional<Location> loc, Adaptor adaptor,
    SmallVectorImpl<ShapedTypeComponents> &inferred) {
  if (adaptor.getInputs().empty())
    return emitShapeError(loc, "concat", "needs at least one input");
  SmallVector<int64_t> result(tensorType(adaptor.getInputs().front()).getShape());
  int64_t axis = adaptor.getAxis();
  if (axis < 0 || axis >= static_cast<int64_t>(result.size()))
    return emitShapeError(loc, "concat", "axis " + std::to_string(axis) +
                                             " is out of range for rank " +
                                             std::to_string(result.size()));
  for (Value input : adaptor.getInputs().drop_front()) {
    auto shape = tensorType(input).getShape();
    if (shape.size() != result.size())
      return emitShapeError(loc, "concat", "inputs must share their rank");
    for (size_t d = 0; d < shape.size(); ++d) {
      if (static_cast<int64_t>(d) == axis) {
        result[d] = ShapedType::isDynamic(result[d]) || ShapedType::isDynamic(shape[d])
                        ? ShapedType::kDynamic
                        : result[d] + shape[d];
      } else if (failed(verifyCompatibleShape(result[d], shape[d]))) {
        return emitShapeError(loc, "concat", "inputs differ in dim " + std::to_string(d) +
                                                 ", which is not the axis");
      }
    }
  }
  inferred.emplace_back(result);
  return success();
}

LogicalResult ConcatOp::verify() {
  for (Value input : getInputs())
    if (tensorType(input).getElementType() != getResult().getType().getElementType())
      return emitOpError("inputs and result must share their element type");
  return verifyInferredShapes(*this);
}

/// Gather's result shape: input[:axis] + indices + input[axis + 1:].
static FailureOr<SmallVector<int64_t>> gatherShape(std::optional<Location> loc,
                                                   ArrayRef<int64_t> input,
                                                   ArrayRef<int64_t> indices, int64_t axis) {
  if (axis < 0 || axis >= static_cast<int64_t>(input.size()))
    return emitShapeError(loc, "gather", "axis " + std::to_string(axis) +
                                             " is out of range for rank " +
                                             std::to_string(input.size()));
  SmallVector<int64_t> result(input.begin(), input.begin() + axis);
  result.append(indices.begin(), indices.end());
  result.append(input.begin() + axis + 1, input.end());
  return result;
}

LogicalResult GatherOp::inferReturnTypeComponents(
    MLIRContext *, std::optional<Location> loc, Adaptor adaptor,
    SmallVectorImpl<ShapedTypeComponents> &inferred) {
  auto shape = gatherShape(loc, tensorType(adaptor.getInput()).getShape(),
                           tensorType(adaptor.getIndices()).getShape(),
                           static_cast<int64_t>(adaptor.getAxis()));
  if (failed(shape))
    return failure();
  inferred.emplace_back(*shape);
  return success();
}

LogicalResult GatherOp::verify() {
  if (getInput().getType().getElementType() != getType().getElementType())
    return emitOpError("must keep the element type");
  return verifyInferredShapes(*this);
}

LogicalResult GatherGradOp::verify() {
  auto shape = gatherShape(getLoc(), getType().getShape(), getIndices().getType().getShape(),
                           static_cast<int64_t>(getAxis()));
  if (failed(shape))
    return failure();
  if (failed(verifyCompatibleShape(*shape, getGrad().getType().getShape())))
    return emitOpError() << "gathering " << getType() << " at the indices gives "
                         << *shape << ", not the gradient's shape";
  return success();
}

LogicalResult TransposeOp::inferReturnTypeComponents(
    MLIRContext *, std::optional<Location> loc, Adaptor adaptor,
    SmallVectorImpl<ShapedTypeComponents> &inferred) {
  auto shape = tensorType(adaptor.getInput()).getShape();
  ArrayRef<int64_t> perm = adaptor.getPermutation();
  if (perm.size() != shape.size())
    return emitShapeError(loc, "transpose", "the permutation has " +
                                                std::to_string(perm.size()) +
                                                " entries for rank " +
                                                std::to_string(shape.size()));
  SmallVector<bool> seen(shape.size(), false);
  SmallVector<int64_t> result;
  for (int64_t from : perm) {
    if (from < 0 || from >= static_cast<int64_t>(shape.size()) || seen[from])
      return emitShapeError(loc, "transpose", "the permutation is not one of the dims");
    seen[from] = true;
    result.push_back(shape[from]);
  }
  inferred.emplace_back(result);
  return success();
}

LogicalResult TransposeOp::verify() {
  if (getInput().getType().getElementType() != getType().getElementType())
    return emitOpError("must keep the element type");
  return verifyInferredShapes(*this);
}

//===----------------------------------------------------------------------===//
// Batch normalization
//===----------------------------------------------------------------------===//

/// `input` is [N, C, ...] and every per-channel value is [C]; `same` values
/// share the input's type.
static LogicalResult verifyBatchNorm(Operation *op, Value input, ValueRange perChannel,
                                     ValueRange same) {
  auto type = tensorType(input);
  if (type.getRank() < 2)
    return op->emitOpError("expects an input of rank 2 or more ([N, C, ...])");
  for (Value v : perChannel) {
    auto shape = tensorType(v).getShape();
    if (shape.size() != 1 || failed(verifyCompatibleShape(shape[0], type.getDimSize(1))))
      return op->emitOpError() << "per-channel operands and results must be ["
                               << type.getDimSize(1) << "]";
  }
  for (Value v : same)
    if (v.getType() != input.getType())
      return op->emitOpError("expects the input's type for the activation and its gradient");
  return success();
}

LogicalResult BatchNormOp::verify() {
  return verifyBatchNorm(*this, getInput(),
                         {getScale(), getBias(), getRunningMean(), getRunningVar(),
                          getNewRunningMean(), getNewRunningVar(), getSavedMean(),
                          getSavedVar()},
                         getResult());
}
LogicalResult BatchNormInferenceOp::verify() {
  return verifyBatchNorm(*this, getInput(), {getScale(), getBias(), getMean(), getVar()},
                         getResult());
}
LogicalResult BatchNormGradOp::verify() {
  return verifyBatchNorm(*this, getInput(),
                         {getScale(), getMean(), getVar(), getScaleGrad(), getBiasGrad()},
                         ValueRange{getGrad(), getInputGrad()});
}

/// The shape of a layer norm's statistics: the input's, 1 from `axis` on.
static FailureOr<SmallVector<int64_t>> layerNormStatsShape(std::optional<Location> loc,
                                                           Value input, int64_t axis) {
  auto shape = tensorType(input).getShape();
  int64_t rank = static_cast<int64_t>(shape.size());
  if (axis < 0 || axis >= rank)
    return emitShapeError(loc, "layer_norm", "axis " + std::to_string(axis) +
                                                 " is out of range for rank " +
                                                 std::to_string(rank));
  SmallVector<int64_t> stats(shape);
  std::fill(stats.begin() + axis, stats.end(), 1);
  return stats;
}

LogicalResult LayerNormOp::inferReturnTypeComponents(
    MLIRContext *, std::optional<Location> loc, Adaptor adaptor,
    SmallVectorImpl<ShapedTypeComponents> &inferred) {
  auto stats = layerNormStatsShape(loc, adaptor.getInput(),
                                   static_cast<int64_t>(adaptor.getAxis()));
  if (failed(stats))
    return failure();
  inferred.emplace_back(tensorType(adaptor.getInput()).getShape());
  inferred.emplace_back(*stats);
  inferred.emplace_back(*stats);
  return success();
}

LogicalResult LayerNormGradOp::inferReturnTypeComponents(
    MLIRContext *, std::optional<Location>, Adaptor adaptor,
    SmallVectorImpl<ShapedTypeComponents> &inferred) {
  return sameShapeComponents(ValueRange{adaptor.getInput(), adaptor.getScale(),
                                        adaptor.getScale()},
                             inferred);
}

/// Scale-like operands have the normalized dims' shape, statistics the
/// statistics' shape; `same` values share the input's type.
static LogicalResult verifyLayerNorm(Operation *op, Value input, int64_t axis,
                                     ValueRange normalized, ValueRange stats, ValueRange same) {
  auto statsShape = layerNormStatsShape(op->getLoc(), input, axis);
  if (failed(statsShape))
    return failure();
  ArrayRef<int64_t> shape = tensorType(input).getShape();
  for (Value v : normalized)
    if (failed(verifyCompatibleShape(tensorType(v).getShape(), shape.drop_front(axis))))
      return op->emitOpError("scale, bias and their gradients must have the normalized dims' "
                             "shape");
  for (Value v : stats)
    if (failed(verifyCompatibleShape(tensorType(v).getShape(), *statsShape)))
      return op->emitOpError("mean and inv_std must have the input's shape with the "
                             "normalized dims 1");
  for (Value v : same)
    if (v.getType() != input.getType())
      return op->emitOpError("expects the input's type for the activation and its gradient");
  return success();
}

LogicalResult LayerNormOp::verify() {
  return verifyLayerNorm(*this, getInput(), static_cast<int64_t>(getAxis()),
                         {getScale(), getBias()}, {getMean(), getInvStd()}, getResult());
}
LogicalResult LayerNormGradOp::verify() {
  return verifyLayerNorm(*this, getInput(), static_cast<int64_t>(getAxis()),
                         {getScale(), getScaleGrad(), getBiasGrad()}, {getMean(), getInvStd()},
                         ValueRange{getGrad(), getInputGrad()});
}

LogicalResult DropoutOp::verify() {
  if (getResult().getType() != getInput().getType())
    return emitOpError("result type must equal the input's");
  if (!(getRatio().convertToFloat() >= 0.0f && getRatio().convertToFloat() < 1.0f))
    return emitOpError("ratio must be in [0, 1)");
  return success();
}

/// Evaluation keeps every element.
LogicalResult DropoutOp::buildEvalForm(OpBuilder &, SmallVectorImpl<Value> &replacements) {
  replacements.push_back(getInput());
  return success();
}

/// Evaluation normalizes with the running averages, which stay as they are.
LogicalResult BatchNormOp::buildEvalForm(OpBuilder &b, SmallVectorImpl<Value> &replacements) {
  replacements.push_back(BatchNormInferenceOp::create(b, getLoc(), getResult().getType(),
                                                      getInput(), getScale(), getBias(),
                                                      getRunningMean(), getRunningVar(),
                                                      getEpsilonAttr()));
  replacements.append({getRunningMean(), getRunningVar(), Value(), Value()});
  return success();
}

//===----------------------------------------------------------------------===//
// Ops whose results take their operands' shapes
//===----------------------------------------------------------------------===//

#define AMP_SAME_SHAPE_OP(OpTy, ...)                                           \
  LogicalResult OpTy::inferReturnTypeComponents(                               \
      MLIRContext *, std::optional<Location>, Adaptor adaptor,                 \
      SmallVectorImpl<ShapedTypeComponents> &inferred) {                       \
    return sameShapeComponents(ValueRange{__VA_ARGS__}, inferred);             \
  }
AMP_SAME_SHAPE_OP(CastOp, adaptor.getInput())
AMP_SAME_SHAPE_OP(ExpOp, adaptor.getInput())
AMP_SAME_SHAPE_OP(LogOp, adaptor.getInput())
AMP_SAME_SHAPE_OP(PowOp, adaptor.getInput())
AMP_SAME_SHAPE_OP(SoftmaxOp, adaptor.getInput())
AMP_SAME_SHAPE_OP(LogSoftmaxOp, adaptor.getInput())
AMP_SAME_SHAPE_OP(UnscaleOp, adaptor.getGrad())
AMP_SAME_SHAPE_OP(ClipCoefficientOp, adaptor.getNorm())
AMP_SAME_SHAPE_OP(UpdateLossScaleOp, adaptor.getScale(), adaptor.getGrowthTracker())
AMP_SAME_SHAPE_OP(AccumulationStepOp, adaptor.getCount(), adaptor.getCount())
AMP_SAME_SHAPE_OP(ZeroIfOp, adaptor.getInput())
AMP_SAME_SHAPE_OP(SoftmaxCrossEntropyGradOp, adaptor.getLogits())
AMP_SAME_SHAPE_OP(SgdUpdateOp, adaptor.getParam(), adaptor.getMomentumBuffer())
AMP_SAME_SHAPE_OP(AdamWUpdateOp, adaptor.getParam(), adaptor.getExpAvg(),
                  adaptor.getExpAvgSq())
// Batch norm: the activation's shape, then per-channel vectors (the
// operands' shapes are the verifiers' business).
AMP_SAME_SHAPE_OP(BatchNormOp, adaptor.getInput(), adaptor.getRunningMean(),
                  adaptor.getRunningVar(), adaptor.getRunningMean(), adaptor.getRunningVar())
AMP_SAME_SHAPE_OP(BatchNormInferenceOp, adaptor.getInput())
AMP_SAME_SHAPE_OP(DropoutOp, adaptor.getInput())
AMP_SAME_SHAPE_OP(BatchNormGradOp, adaptor.getInput(), adaptor.getScale(), adaptor.getScale())
#undef AMP_SAME_SHAPE_OP


LogicalResult CastOp::verify() {
  // float -> float, integers or booleans -> float, float -> boolean.
  bool fromFloat = isa<FloatType>(getInput().getType().getElementType());
  bool toFloat = isa<FloatType>(getType().getElementType());
  if (!fromFloat && !toFloat)
    return emitOpError("converts integers and booleans to float types only");
  return verifyInferredShapes(*this);
}

/// FP32 ops that may read low precision: f32 result, or the input's type.
template <typename OpTy> static LogicalResult verifyWidening(OpTy op) {
  Type result = op.getType().getElementType();
  if (result != op.getInput().getType().getElementType() && !result.isF32())
    return op.emitOpError("result element type must equal the input's or be f32");
  return success();
}
LogicalResult ExpOp::verify() { return verifyWidening(*this); }
LogicalResult LogOp::verify() { return verifyWidening(*this); }
LogicalResult PowOp::verify() { return verifyWidening(*this); }
template <typename OpTy> static LogicalResult verifySoftmax(OpTy op) {
  int64_t rank = op.getInput().getType().getRank();
  if (rank < 1)
    return op.emitOpError("needs at least one dimension");
  auto axis = static_cast<int64_t>(op.getAxis()); // I64Attr reads back unsigned
  if (axis < -rank || axis >= rank)
    return op.emitOpError() << "axis " << axis << " is out of range for rank " << rank;
  return verifyWidening(op);
}
LogicalResult SoftmaxOp::verify() { return verifySoftmax(*this); }
LogicalResult LogSoftmaxOp::verify() { return verifySoftmax(*this); }

LogicalResult BroadcastToOp::verify() {
  if (getInput().getType().getElementType() != getType().getElementType())
    return emitOpError("must keep the element type");
  auto shape = broadcastShapes(getInput().getType().getShape(), getType().getShape());
  if (failed(shape) || ArrayRef<int64_t>(*shape) != getType().getShape())
    return emitOpError() << "cannot broadcast " << getInput().getType() << " to " << getType();
  return success();
}

OpFoldResult CastOp::fold(FoldAdaptor adaptor) {
  if (getInput().getType() == getType())
    return getInput();
  // A cast of a constant is a constant of the new type, rounded to nearest
  // even as the runtime's cast kernel would, except that a finite value
  // beyond the type's range saturates to its finite extreme instead of
  // overflowing to infinity: an attention mask's -1e9 becomes -65504 in
  // fp16, so a row masked entirely stays finite (uniform), as in FP32.
  // Infinities and NaN stay what they are.
  auto element = dyn_cast<FloatType>(getType().getElementType());
  if (auto constant = dyn_cast_or_null<DenseFPElementsAttr>(adaptor.getInput());
      constant && element) {
    return constant.mapValues(element, [&](const APFloat &value) {
      APFloat converted = value;
      bool losesInfo;
      APFloat::opStatus status = converted.convert(
          element.getFloatSemantics(), APFloat::rmNearestTiesToEven, &losesInfo);
      if ((status & APFloat::opOverflow) && value.isFinite())
        converted = APFloat::getLargest(element.getFloatSemantics(), value.isNegative());
      return converted.bitcastToAPInt();
    });
  }
  // cast(cast(x : T -> wider) -> T) == x: widening to f32 is exact.
  if (auto inner = getInput().getDefiningOp<CastOp>())
    if (inner.getInput().getType() == getType() &&
        inner.getType().getElementType().isF32())
      return inner.getInput();
  return {};
}

LogicalResult SgdUpdateOp::verify() {
  if (getLr().convertToDouble() < 0 || getMomentum().convertToDouble() < 0)
    return emitOpError("learning rate and momentum must be non-negative");
  return success();
}

LogicalResult AdamWUpdateOp::verify() {
  if (getBeta1().convertToDouble() < 0 || getBeta1().convertToDouble() >= 1 ||
      getBeta2().convertToDouble() < 0 || getBeta2().convertToDouble() >= 1)
    return emitOpError("betas must lie in [0, 1)");
  return success();
}

//===----------------------------------------------------------------------===//
// ReshapeOp
//===----------------------------------------------------------------------===//

/// A reshape is a view: the lowering gives its result the operand's bytes.
Value ReshapeOp::getViewSource() { return getInput(); }

LogicalResult ReshapeOp::verify() {
  if (getInput().getType().getElementType() != getType().getElementType())
    return emitOpError("must keep the element type");
  std::string error;
  if (failed(reshapeShape(getInput().getType().getShape(), getType().getShape(), error)))
    return emitOpError() << error;
  if (auto spec = getShape()) {
    if (spec->size() != static_cast<size_t>(getType().getRank()))
      return emitOpError("shape must have the result's rank");
    auto resolved = onnxReshapeTarget(getInput().getType().getShape(), *spec, error);
    if (failed(resolved))
      return emitOpError() << error;
    if (failed(verifyCompatibleShape(*resolved, getType().getShape())))
      return emitOpError("result type contradicts shape");
  }
  return success();
}

//===----------------------------------------------------------------------===//
// ReduceSumOp, ReduceMaxOp
//===----------------------------------------------------------------------===//

/// reduce_sum and reduce_max: the input's shape less (or with size 1 at)
/// the reduced axes; the input's element type or f32.
template <typename Adaptor>
static LogicalResult inferReduction(std::optional<Location> loc, StringRef name,
                                    Adaptor adaptor,
                                    SmallVectorImpl<ShapedTypeComponents> &inferred) {
  std::string error;
  auto shape = reduceShape(tensorType(adaptor.getInput()).getShape(),
                           adaptor.getAxes(), adaptor.getKeepDims(), error);
  if (failed(shape))
    return emitShapeError(loc, name, error);
  inferred.emplace_back(*shape);
  return success();
}

template <typename OpTy> static LogicalResult verifyReduction(OpTy op) {
  Type result = op.getType().getElementType();
  if (op.getInput().getType().getElementType() != result && !result.isF32())
    return op.emitOpError("result element type must equal the input's or be f32");
  return verifyInferredShapes(op);
}

LogicalResult ReduceSumOp::inferReturnTypeComponents(
    MLIRContext *, std::optional<Location> loc, Adaptor adaptor,
    SmallVectorImpl<ShapedTypeComponents> &inferred) {
  return inferReduction(loc, "reduce_sum", adaptor, inferred);
}

LogicalResult ReduceSumOp::verify() { return verifyReduction(*this); }

LogicalResult ReduceMaxOp::inferReturnTypeComponents(
    MLIRContext *, std::optional<Location> loc, Adaptor adaptor,
    SmallVectorImpl<ShapedTypeComponents> &inferred) {
  return inferReduction(loc, "reduce_max", adaptor, inferred);
}

LogicalResult ReduceMaxOp::verify() { return verifyReduction(*this); }

//===----------------------------------------------------------------------===//
// Softmax cross-entropy
//===----------------------------------------------------------------------===//

static LogicalResult verifyLogitsAndLabels(Operation *op, RankedTensorType logits,
                                           RankedTensorType labels) {
  if (logits.getRank() != 2 || labels.getRank() != 1)
    return op->emitOpError("expects [N, C] logits and [N] labels");
  if (failed(verifyCompatibleShape(logits.getDimSize(0), labels.getDimSize(0))))
    return op->emitOpError() << "batch of logits (" << logits.getDimSize(0)
                             << ") and labels (" << labels.getDimSize(0) << ") differ";
  return success();
}

LogicalResult SoftmaxCrossEntropyOp::inferReturnTypeComponents(
    MLIRContext *, std::optional<Location>, Adaptor,
    SmallVectorImpl<ShapedTypeComponents> &inferred) {
  inferred.emplace_back(ArrayRef<int64_t>{});
  return success();
}

LogicalResult SoftmaxCrossEntropyOp::verify() {
  return verifyLogitsAndLabels(*this, getLogits().getType(), getLabels().getType());
}

LogicalResult SoftmaxCrossEntropyGradOp::verify() {
  if (getType().getShape() != getLogits().getType().getShape())
    return emitOpError("result must have the logits' shape");
  return verifyLogitsAndLabels(*this, getLogits().getType(), getLabels().getType());
}

//===----------------------------------------------------------------------===//
// Loss scaling ops
//===----------------------------------------------------------------------===//

LogicalResult UnscaleOp::verify() { return verifyInferredShapes(*this); }

/// Reductions of many tensors to one scalar.
#define AMP_SCALAR_RESULT_OP(OpTy)                                             \
  LogicalResult OpTy::inferReturnTypeComponents(                               \
      MLIRContext *, std::optional<Location>, Adaptor,                         \
      SmallVectorImpl<ShapedTypeComponents> &inferred) {                       \
    inferred.emplace_back(ArrayRef<int64_t>{});                                \
    return success();                                                          \
  }
AMP_SCALAR_RESULT_OP(FoundNonFiniteOp)
AMP_SCALAR_RESULT_OP(GlobalNormOp)
#undef AMP_SCALAR_RESULT_OP

LogicalResult FoundNonFiniteOp::verify() {
  if (getTensors().empty())
    return emitOpError("needs at least one tensor");
  return success();
}

LogicalResult GlobalNormOp::verify() {
  if (getTensors().empty())
    return emitOpError("needs at least one tensor");
  return success();
}

LogicalResult ClipCoefficientOp::verify() {
  if (getMaxNorm().convertToDouble() <= 0)
    return emitOpError("max_norm must be positive");
  return success();
}

LogicalResult UpdateLossScaleOp::verify() {
  if (getGrowthFactor().convertToDouble() < 1.0 || getBackoffFactor().convertToDouble() <= 0 ||
      getBackoffFactor().convertToDouble() >= 1.0 || getGrowthInterval() < 1)
    return emitOpError("needs growth_factor >= 1, 0 < backoff_factor < 1, growth_interval >= 1");
  return success();
}

LogicalResult AccumulationStepOp::verify() {
  if (getMicroBatches() < 1)
    return emitOpError("micro_batches must be at least 1");
  return success();
}

LogicalResult AllReduceOp::verify() {
  if (getTensors().empty())
    return emitOpError("needs at least one tensor");
  if (getWorldSize() < 1)
    return emitOpError("world_size must be at least 1");
  if (getResults().getTypes() != getTensors().getTypes())
    return emitOpError("results must have the operands' types, in order");
  Type element = cast<ShapedType>(getTensors()[0].getType()).getElementType();
  for (Value tensor : getTensors())
    if (cast<ShapedType>(tensor.getType()).getElementType() != element)
      return emitOpError("one bucket holds one element type");
  if (getMax() && !element.isF32())
    return emitOpError("max is taken over f32 tensors only");
  return success();
}


std::string mlir::amp::nodeNameOf(Location loc) {
  if (auto name = dyn_cast<NameLoc>(loc))
    return name.getName().str();
  if (auto fused = dyn_cast<FusedLoc>(loc))
    for (Location inner : fused.getLocations())
      if (std::string name = nodeNameOf(inner); !name.empty())
        return name;
  return "";
}
