//===- IntegerRules.cpp - ONNX import: compile-time integer tensors -------===//
//
// Exporters compute shapes in the graph (Shape -> Gather -> Equal -> Where
// -> Expand, as PyTorch writes `x.expand(batch, -1, -1)`). Once the batch
// size is fixed these are compile-time integer tensors, folded here: the
// comparisons and Where, which only ever see such tensors, and the helpers
// the other families' rules call for their integer forms. Booleans are kept
// as 0/1 integers. Float comparisons and selects, which would need a boolean
// tensor type at run time, are refused naming the node.
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
  // ONNX Slice: negative bounds count from the end; they are clamped to
  // [0, size] going forward and to [-1, size - 1] going backward.
  auto clamp = [&](int64_t v, int64_t low, int64_t high) {
    return std::clamp(v < 0 ? v + size : v, low, high);
  };
  int64_t from = step > 0 ? clamp(start, 0, size) : clamp(start, -1, size - 1);
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

/// Equal, Less or Greater of integers (shape computations): 0/1.
static LogicalResult importComparison(OnnxImporter &im, const onnx::NodeProto &node) {
  auto operands = integerInputs(im, node, 2);
  if (failed(operands))
    return failure();
  const std::string &op = node.op_type();
  return foldIntegerElementwise(im, node, *operands,
                                [&](ArrayRef<int64_t> v, std::string &) -> int64_t {
                                  return op == "Equal" ? v[0] == v[1]
                                         : op == "Less" ? v[0] < v[1]
                                                        : v[0] > v[1];
                                });
}

/// Where of an integer condition between integers (shape computations).
static LogicalResult importWhere(OnnxImporter &im, const onnx::NodeProto &node) {
  auto operands = integerInputs(im, node, 3);
  if (failed(operands))
    return failure();
  return foldIntegerElementwise(
      im, node, *operands,
      [](ArrayRef<int64_t> v, std::string &) { return v[0] != 0 ? v[1] : v[2]; });
}

ArrayRef<OnnxImporter::Registration> mlir::amp::onnx_import::integerRules() {
  static const OnnxImporter::Registration rules[] = {
      // Equal-19 added strings; Less and Greater are unchanged since 13.
      {{"", "Equal", 13, 0, "compile-time integers (folded)"}, &importComparison},
      {{"", "Less", 13, 0, "compile-time integers (folded)"}, &importComparison},
      {{"", "Greater", 13, 0, "compile-time integers (folded)"}, &importComparison},
      {{"", "Where", 9, 0, "compile-time integers (folded)"}, &importWhere},
  };
  return rules;
}
