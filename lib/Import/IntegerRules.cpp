//===- IntegerRules.cpp - ONNX import: integers, comparisons, booleans -----===//
//
// Exporters compute shapes in the graph (Shape -> Gather -> Equal -> Where
// -> Expand, as PyTorch writes `x.expand(batch, -1, -1)`). Once the batch
// size is fixed these are compile-time integer tensors, folded here, with
// the helpers the other families' rules call for their integer forms;
// compile-time booleans are 0/1 integers. Comparisons of float tensors at
// run time (masks built from activations or inputs) give 0/1 masks of the
// compared type (GraphValue::mask): Not, And, Or and Where read those, and
// Where is masked(x, c) + masked(y, not c), exact even where the value not
// picked is -inf.
//
//===----------------------------------------------------------------------===//

#include "OnnxImporterImpl.h"

#include <algorithm>

using namespace mlir;
using namespace mlir::amp;
using namespace mlir::amp::onnx_import;

ArrayRef<int64_t> mlir::amp::onnx_import::integerShape(const GraphValue &value) {
  return cast<ShapedType>(value.integerTensor.getType()).getShape();
}

LogicalResult mlir::amp::onnx_import::foldIntegerElementwise(
    OnnxImporter &im, const onnx::NodeProto &node, ArrayRef<const GraphValue *> operands,
    llvm::function_ref<int64_t(ArrayRef<int64_t>, std::string &)> compute) {
  SmallVector<int64_t> shape;
  for (const GraphValue *operand : operands) {
    auto joined = broadcastShapes(shape, integerShape(*operand));
    if (failed(joined))
      return im.nodeError(node) << "integer operands of shapes that do not broadcast";
    shape = *joined;
  }
  // Each operand's stride per result dim: 0 where it is broadcast.
  auto rank = static_cast<int64_t>(shape.size());
  SmallVector<SmallVector<int64_t>> strides;
  for (const GraphValue *operand : operands) {
    ArrayRef<int64_t> own = integerShape(*operand);
    SmallVector<int64_t> stride(rank, 0);
    for (int64_t d = rank - 1, s = 1, k = static_cast<int64_t>(own.size()) - 1; k >= 0; --d, --k) {
      stride[d] = own[k] == 1 ? 0 : s;
      s *= own[k];
    }
    strides.push_back(stride);
  }
  int64_t count = ShapedType::getNumElements(shape);
  SmallVector<int64_t> result, index(rank, 0), arguments(operands.size());
  std::string error;
  for (int64_t i = 0; i < count; ++i) {
    for (size_t o = 0; o < operands.size(); ++o) {
      int64_t at = 0;
      for (int64_t d = 0; d < rank; ++d)
        at += index[d] * strides[o][d];
      arguments[o] = (*operands[o]->integers)[at];
    }
    result.push_back(compute(arguments, error));
    if (!error.empty())
      return im.nodeError(node) << error;
    for (int64_t d = rank - 1; d >= 0 && ++index[d] == shape[d]; --d)
      index[d] = 0;
  }
  im.defineIntegers(node, 0, result, shape);
  return success();
}

LogicalResult mlir::amp::onnx_import::foldIntegerSlice(OnnxImporter &im,
                                                       const onnx::NodeProto &node,
                                                       const GraphValue &data,
                                                       ArrayRef<SliceAxis> axes) {
  ArrayRef<int64_t> shape = integerShape(data);
  auto rank = static_cast<int64_t>(shape.size());
  SmallVector<int64_t> first(rank, 0), step(rank, 1), size(shape);
  for (const SliceAxis &axis : axes) {
    first[axis.axis] = axis.first;
    step[axis.axis] = axis.step;
    size[axis.axis] = axis.count;
  }
  SmallVector<int64_t> result, index(rank, 0), strides(rank, 1);
  for (int64_t d = rank - 2; d >= 0; --d)
    strides[d] = strides[d + 1] * shape[d + 1];
  int64_t count = ShapedType::getNumElements(size);
  for (int64_t i = 0; i < count; ++i) {
    int64_t at = 0;
    for (int64_t d = 0; d < rank; ++d)
      at += (first[d] + index[d] * step[d]) * strides[d];
    result.push_back((*data.integers)[at]);
    for (int64_t d = rank - 1; d >= 0 && ++index[d] == size[d]; --d)
      index[d] = 0;
  }
  im.defineIntegers(node, 0, result, size);
  return success();
}

SliceAxis mlir::amp::onnx_import::sliceAxis(int64_t axis, int64_t size, int64_t start,
                                            int64_t end, int64_t step) {
  // ONNX Slice: negative bounds count from the end; starts are clamped to
  // [0, size] going forward and [0, size - 1] going backward, ends to
  // [0, size] and [-1, size - 1] (the spec, and ONNX's shape inference).
  if (size == 0)
    return {axis, 0, 0, step};
  auto clamp = [&](int64_t v, int64_t low, int64_t high) {
    return std::clamp(v < 0 ? v + size : v, low, high);
  };
  // A step past the size picks at most one element: clamped, so that the
  // count below cannot overflow.
  step = std::clamp(step, -(size + 1), size + 1);
  int64_t from = step > 0 ? clamp(start, 0, size) : clamp(start, 0, size - 1);
  int64_t to = step > 0 ? clamp(end, 0, size) : clamp(end, -1, size - 1);
  int64_t count = step > 0 ? (to - from + step - 1) / step : (from - to - step - 1) / -step;
  return {axis, from, std::max<int64_t>(count, 0), step};
}

/// The node's `count` inputs, all compile-time integer tensors, or an error
/// naming the node: this family folds, it builds nothing at run time.
static FailureOr<SmallVector<const GraphValue *>>
integerInputs(OnnxImporter &im, const onnx::NodeProto &node, int count) {
  if (node.input_size() != count)
    return im.nodeError(node) << "needs " << count << " inputs";
  SmallVector<const GraphValue *> operands;
  for (int i = 0; i < node.input_size(); ++i) {
    const GraphValue *operand = im.integerInput(node, i);
    if (!operand)
      return im.nodeError(node) << "input '" << node.input(i)
                                << "' is not a compile-time integer tensor; comparisons and "
                                   "Where of float tensors at run time are not supported";
    operands.push_back(operand);
  }
  return operands;
}

/// Whether every input of the node is a compile-time integer tensor.
static bool allIntegers(OnnxImporter &im, const onnx::NodeProto &node) {
  for (int i = 0; i < node.input_size(); ++i)
    if (!im.integerInput(node, i))
      return false;
  return true;
}

/// The node's index-th input as a run-time value of float type `element`:
/// a float value of that type, or a compile-time integer tensor (a
/// boolean condition, a constant) made a constant of it; null with the
/// node's error otherwise.
static Value floatOperand(OnnxImporter &im, const onnx::NodeProto &node, int index,
                          FloatType element) {
  if (const GraphValue *integers = im.integerInput(node, index)) {
    SmallVector<APFloat> values;
    for (int64_t v : *integers->integers) {
      APFloat f(static_cast<double>(v));
      bool lost;
      f.convert(element.getFloatSemantics(), APFloat::rmNearestTiesToEven, &lost);
      values.push_back(f);
    }
    auto type = RankedTensorType::get(integerShape(*integers), element);
    return ConstantOp::create(im.builder, im.nodeLoc(node), DenseElementsAttr::get(type, values));
  }
  auto value = im.input(node, index);
  if (failed(value))
    return {};
  auto type = cast<RankedTensorType>(value->getType());
  if (type.getElementType() == element)
    return *value;
  if (im.isMask(node, index) && isa<FloatType>(type.getElementType())) // 0/1 in any type
    return CastOp::create(im.builder, im.nodeLoc(node), type.clone(element), *value);
  im.nodeError(node) << "input '" << node.input(index) << "' is " << type << ", not a "
                     << element << " tensor (run-time comparisons and selects take float "
                                   "tensors of one type)";
  return {};
}

/// The float type a run-time comparison or select computes in: that of its
/// first run-time float operand from `first` on (masks are float too).
static FailureOr<FloatType> runTimeFloatType(OnnxImporter &im, const onnx::NodeProto &node,
                                             int first) {
  for (int i = first; i < node.input_size(); ++i) {
    if (im.integerInput(node, i))
      continue;
    auto value = im.input(node, i);
    if (failed(value))
      return failure();
    auto element = cast<RankedTensorType>(value->getType()).getElementType();
    if (auto floatType = dyn_cast<FloatType>(element))
      return floatType;
    return im.nodeError(node) << "input '" << node.input(i) << "' is "
                              << value->getType()
                              << "; comparisons and selects at run time take float tensors";
  }
  return im.nodeError(node) << "has no run-time input";
}

/// A 0/1 mask op of two float operands with broadcasting.
template <typename MaskOp>
static LogicalResult defineMaskOf(OnnxImporter &im, const onnx::NodeProto &node, Value lhs,
                                  Value rhs) {
  auto mask = buildBroadcast<MaskOp>(im.builder, im.nodeLoc(node), lhs, rhs);
  if (failed(mask))
    return im.nodeError(node) << "operand shapes " << lhs.getType() << " and " << rhs.getType()
                              << " do not broadcast";
  im.defineMask(node, 0, *mask);
  return success();
}

/// A run-time int64 or int32 tensor compared with compile-time integers all
/// of magnitude below 2^24 compares exactly in f32 (rounding an integer to
/// f32 is monotonic and keeps it on the same side of, and apart from, such
/// a value): the tensor is cast to f32 (an integer attention mask == 0).
static FailureOr<Value> integersAsF32(OnnxImporter &im, const onnx::NodeProto &node) {
  int runTime = im.integerInput(node, 0) ? 1 : 0;
  const GraphValue *constant = im.integerInput(node, 1 - runTime);
  auto value = im.input(node, runTime);
  if (failed(value))
    return failure();
  auto type = cast<RankedTensorType>(value->getType());
  bool integers = type.getElementType().isInteger(64) || type.getElementType().isInteger(32);
  if (!constant || !integers ||
      !llvm::all_of(*constant->integers,
                    [](int64_t v) { return v > -(int64_t{1} << 24) && v < (int64_t{1} << 24); }))
    return im.nodeError(node) << "input '" << node.input(runTime) << "' is " << type
                              << "; comparisons and selects at run time take float tensors, or "
                                 "integers against constants below 2^24 in magnitude";
  return CastOp::create(im.builder, im.nodeLoc(node), type.clone(im.builder.getF32Type()),
                        *value)
      .getResult();
}

/// Equal, Less, Greater, LessOrEqual or GreaterOrEqual: folded on integers
/// (0/1), a mask op on float tensors at run time, or on integers compared
/// with small constants (integersAsF32).
static LogicalResult importComparison(OnnxImporter &im, const onnx::NodeProto &node) {
  const std::string &op = node.op_type();
  if (allIntegers(im, node)) {
    auto operands = integerInputs(im, node, 2);
    if (failed(operands))
      return failure();
    return foldIntegerElementwise(im, node, *operands,
                                  [&](ArrayRef<int64_t> v, std::string &) -> int64_t {
                                    return op == "Equal"     ? v[0] == v[1]
                                           : op == "Less"    ? v[0] < v[1]
                                           : op == "Greater" ? v[0] > v[1]
                                           : op == "LessOrEqual" ? v[0] <= v[1]
                                                                 : v[0] >= v[1];
                                  });
  }
  Value lhs, rhs;
  if (im.integerInput(node, 0) || im.integerInput(node, 1)) {
    int runTime = im.integerInput(node, 0) ? 1 : 0;
    auto value = im.input(node, runTime);
    if (failed(value))
      return failure();
    if (!isa<FloatType>(cast<RankedTensorType>(value->getType()).getElementType())) {
      auto widened = integersAsF32(im, node);
      if (failed(widened))
        return failure();
      Value constant = floatOperand(im, node, 1 - runTime, im.builder.getF32Type());
      lhs = runTime == 0 ? *widened : constant;
      rhs = runTime == 0 ? constant : *widened;
    }
  }
  if (!lhs) {
    auto element = runTimeFloatType(im, node, 0);
    if (failed(element))
      return failure();
    lhs = floatOperand(im, node, 0, *element);
    rhs = floatOperand(im, node, 1, *element);
  }
  if (!lhs || !rhs)
    return failure();
  if (op == "Equal")
    return defineMaskOf<EqualMaskOp>(im, node, lhs, rhs);
  if (op == "Less")
    return defineMaskOf<LessMaskOp>(im, node, lhs, rhs);
  if (op == "Greater")
    return defineMaskOf<GreaterMaskOp>(im, node, lhs, rhs);
  if (op == "LessOrEqual")
    return defineMaskOf<LessEqualMaskOp>(im, node, lhs, rhs);
  return defineMaskOf<GreaterEqualMaskOp>(im, node, lhs, rhs);
}

/// Not, And, Or: folded on compile-time booleans, on masks at run time
/// (not m is m == 0, and a product, or a maximum).
static LogicalResult importLogical(OnnxImporter &im, const onnx::NodeProto &node) {
  const std::string &op = node.op_type();
  if (allIntegers(im, node)) {
    auto operands = integerInputs(im, node, op == "Not" ? 1 : 2);
    if (failed(operands))
      return failure();
    return foldIntegerElementwise(im, node, *operands,
                                  [&](ArrayRef<int64_t> v, std::string &) -> int64_t {
                                    return op == "Not"   ? v[0] == 0
                                           : op == "And" ? v[0] != 0 && v[1] != 0
                                                         : v[0] != 0 || v[1] != 0;
                                  });
  }
  for (int i = 0; i < node.input_size(); ++i)
    if (!im.integerInput(node, i) && !im.isMask(node, i))
      return im.nodeError(node) << "input '" << node.input(i)
                                << "' is not a boolean (a comparison's result, a boolean "
                                   "graph input or a constant)";
  auto element = runTimeFloatType(im, node, 0);
  if (failed(element))
    return failure();
  Value lhs = floatOperand(im, node, 0, *element);
  if (!lhs)
    return failure();
  Location loc = im.nodeLoc(node);
  if (op == "Not") {
    im.defineMask(node, 0, im.zeroMask(lhs, loc));
    return success();
  }
  Value rhs = floatOperand(im, node, 1, *element);
  if (!rhs)
    return failure();
  auto result = op == "And" ? buildBroadcast<MulOp>(im.builder, loc, lhs, rhs)
                            : buildBroadcast<MaximumOp>(im.builder, loc, lhs, rhs);
  if (failed(result))
    return im.nodeError(node) << "operand shapes do not broadcast";
  im.defineMask(node, 0, *result);
  return success();
}

/// Where: folded when all three are compile-time integers; else a select of
/// float tensors at a mask (or a compile-time condition made one):
/// masked(x, c) + masked(y, c == 0).
static LogicalResult importWhere(OnnxImporter &im, const onnx::NodeProto &node) {
  if (allIntegers(im, node)) {
    auto operands = integerInputs(im, node, 3);
    if (failed(operands))
      return failure();
    return foldIntegerElementwise(
        im, node, *operands,
        [](ArrayRef<int64_t> v, std::string &) { return v[0] != 0 ? v[1] : v[2]; });
  }
  if (node.input_size() != 3)
    return im.nodeError(node) << "needs 3 inputs";
  if (!im.integerInput(node, 0) && !im.isMask(node, 0))
    return im.nodeError(node) << "the condition '" << node.input(0)
                              << "' is not a boolean (a comparison's result, a boolean "
                                 "graph input or a constant)";
  auto element = runTimeFloatType(im, node, 1);
  if (failed(element))
    return failure();
  Value c = floatOperand(im, node, 0, *element), x = floatOperand(im, node, 1, *element),
        y = floatOperand(im, node, 2, *element);
  if (!c || !x || !y)
    return failure();
  Location loc = im.nodeLoc(node);
  Value notC = im.zeroMask(c, loc);
  auto picked = buildBroadcast<MaskedOp>(im.builder, loc, x, c);
  auto others = buildBroadcast<MaskedOp>(im.builder, loc, y, notC);
  if (failed(picked) || failed(others))
    return im.nodeError(node) << "condition and values do not broadcast";
  auto result = buildBroadcast<AddOp>(im.builder, loc, *picked, *others);
  if (failed(result))
    return im.nodeError(node) << "condition and values do not broadcast";
  im.define(node, 0, *result);
  return success();
}

static constexpr const char *kComparisonLimits =
    "compile-time integers (folded) or float tensors (a 0/1 mask)";
static constexpr const char *kLogicalLimits =
    "compile-time booleans (folded) or run-time ones (0/1 masks)";

ArrayRef<OnnxImporter::Registration> mlir::amp::onnx_import::integerRules() {
  static const OnnxImporter::Registration rules[] = {
      // Equal-19 added strings; Less and Greater are unchanged since 13.
      {{"", "Equal", 13, 0, kComparisonLimits}, &importComparison},
      {{"", "Less", 13, 0, kComparisonLimits}, &importComparison},
      {{"", "Greater", 13, 0, kComparisonLimits}, &importComparison},
      {{"", "LessOrEqual", 12, 0, kComparisonLimits}, &importComparison},
      {{"", "GreaterOrEqual", 12, 0, kComparisonLimits}, &importComparison},
      {{"", "Not", 1, 0, kLogicalLimits}, &importLogical},
      {{"", "And", 7, 0, kLogicalLimits}, &importLogical},
      {{"", "Or", 7, 0, kLogicalLimits}, &importLogical},
      {{"", "Where", 9, 0,
        "compile-time integers (folded), or float values at a computed or constant condition"},
       &importWhere},
  };
  return rules;
}
