//===- ShapeRules.cpp - ONNX import: shapes, constants and copies -----------===//
//
// Each rule imports one node; its registry row (at the end) says which op
// type, domain and op sets it handles and what it refuses.
//
//===----------------------------------------------------------------------===//

#include "OnnxImporterImpl.h"

#include "mlir/IR/Matchers.h"
#include "llvm/Support/InterleavedRange.h"

#include <algorithm>
#include <cmath>
#include <cstring>

using namespace mlir;
using namespace mlir::amp;
using namespace mlir::amp::onnx_import;

/// Reshape to `target` (which may hold one dynamic dim), resolved by the
/// dialect's reshape rule.
static FailureOr<Value> buildReshape(OpBuilder &b, Location loc, Value input,
                                     ArrayRef<int64_t> target, std::string &error) {
  auto type = cast<RankedTensorType>(input.getType());
  auto shape = reshapeShape(type.getShape(), target, error);
  if (failed(shape))
    return failure();
  return ReshapeOp::create(b, loc, RankedTensorType::get(*shape, type.getElementType()), input)
      .getResult();
}

static LogicalResult importFlatten(OnnxImporter &im, const onnx::NodeProto &node) {
  auto x = im.input(node, 0);
  if (failed(x))
    return failure();
  auto shape = cast<RankedTensorType>(x->getType()).getShape();
  int64_t rank = shape.size();
  auto axisAttr = im.intAttr(node, "axis", 1);
  if (failed(axisAttr))
    return failure();
  int64_t axis = *axisAttr < 0 ? *axisAttr + rank : *axisAttr;
  if (axis < 0 || axis > rank)
    return im.nodeError(node) << "axis " << *axisAttr << " is out of range for rank " << rank;
  auto product = [&](int64_t begin, int64_t end) {
    int64_t p = 1;
    for (int64_t i = begin; i < end; ++i) {
      if (ShapedType::isDynamic(shape[i]))
        return ShapedType::kDynamic;
      p *= shape[i];
    }
    return p;
  };
  std::string error;
  auto result = buildReshape(im.builder, im.nodeLoc(node), *x,
                             {product(0, axis), product(axis, rank)}, error);
  if (failed(result))
    return im.nodeError(node) << error;
  im.define(node, 0, *result);
  return success();
}

/// The shape of the node's index-th input: a value's, or a compile-time
/// integer tensor's.
static FailureOr<SmallVector<int64_t>> inputShape(OnnxImporter &im, const onnx::NodeProto &node,
                                                  int index, Value *value) {
  if (const GraphValue *folded = im.integerInput(node, index))
    return llvm::to_vector(integerShape(*folded));
  auto x = im.input(node, index);
  if (failed(x))
    return failure();
  *value = *x;
  return llvm::to_vector(cast<RankedTensorType>(x->getType()).getShape());
}

/// Squeeze and Unsqueeze (opset 13: constant int64 axes as the second
/// input; Squeeze without axes drops every static 1): reshapes, or of a
/// compile-time integer tensor (a shape computation) the same values.
static LogicalResult importSqueezeOrUnsqueeze(OnnxImporter &im, const onnx::NodeProto &node) {
  bool unsqueeze = node.op_type() == "Unsqueeze";
  Value x;
  auto inShape = inputShape(im, node, 0, &x);
  if (failed(inShape))
    return failure();
  ArrayRef<int64_t> shape = *inShape;
  auto rank = static_cast<int64_t>(shape.size());
  SmallVector<int64_t> axes;
  if (im.hasInput(node, 1)) {
    auto it = im.values.find(node.input(1));
    if (it == im.values.end() || !it->second.integers)
      return im.nodeError(node) << "axes must be a constant int64 tensor";
    axes = *it->second.integers;
  } else if (unsqueeze) {
    return im.nodeError(node) << "needs its axes input";
  }
  int64_t resultRank = unsqueeze ? rank + static_cast<int64_t>(axes.size()) : rank;
  SmallVector<bool> named(resultRank, false);
  for (int64_t axis : axes) {
    int64_t a = axis < 0 ? axis + resultRank : axis;
    if (a < 0 || a >= resultRank || named[a])
      return im.nodeError(node) << "axis " << axis << " is out of range or repeated";
    named[a] = true;
  }
  SmallVector<int64_t> target;
  if (unsqueeze) {
    for (int64_t d = 0, from = 0; d < resultRank; ++d)
      target.push_back(named[d] ? 1 : shape[from++]);
  } else {
    for (int64_t d = 0; d < rank; ++d) {
      bool drop = axes.empty() ? shape[d] == 1 : named[d];
      if (drop && shape[d] != 1)
        return im.nodeError(node) << "dim " << d << " of the input is not 1";
      if (!drop)
        target.push_back(shape[d]);
    }
  }
  if (!x) {
    im.defineIntegers(node, 0, *im.integerInput(node, 0)->integers, target);
    return success();
  }
  std::string error;
  auto result = buildReshape(im.builder, im.nodeLoc(node), x, target, error);
  if (failed(result))
    return im.nodeError(node) << error;
  im.define(node, 0, *result);
  return success();
}

/// Shape (opset 15: start and end) of a tensor whose dims are known: a
/// compile-time integer tensor.
static LogicalResult importShape(OnnxImporter &im, const onnx::NodeProto &node) {
  Value x;
  auto shape = inputShape(im, node, 0, &x);
  if (failed(shape))
    return failure();
  auto rank = static_cast<int64_t>(shape->size());
  auto start = im.intAttr(node, "start", 0), end = im.intAttr(node, "end", rank);
  if (failed(start) || failed(end))
    return failure();
  auto clamp = [&](int64_t v) { return std::clamp(v < 0 ? v + rank : v, int64_t(0), rank); };
  int64_t begin = clamp(*start), stop = std::max(begin, clamp(*end));
  ArrayRef<int64_t> dims = ArrayRef<int64_t>(*shape).slice(begin, stop - begin);
  if (llvm::any_of(dims, ShapedType::isDynamic)) {
    // The whole shape of a tensor, for Reshapes only (ORT's Flatten
    // gradient): they reshape to that tensor's type.
    bool whole = begin == 0 && stop == rank && x;
    bool onlyReshapes = im.readOnlyBy(node.output(0), [](const onnx::NodeProto &reader, int i) {
      return reader.op_type() == "Reshape" && i == 1;
    });
    if (!whole || !onlyReshapes || llvm::count_if(dims, ShapedType::isDynamic) != 1)
      return im.nodeError(node) << "the shape is not known at compile time (export with a fixed "
                                   "batch size, or set it)";
    GraphValue measured;
    measured.shapeOf = x;
    im.values[node.output(0)] = measured;
    return success();
  }
  im.defineIntegers(node, 0, dims, {static_cast<int64_t>(dims.size())});
  return success();
}

/// Expand (opset 13) of float data to a constant shape, numpy broadcasting
/// both ways: a broadcast_to.
static LogicalResult importExpand(OnnxImporter &im, const onnx::NodeProto &node) {
  auto x = im.input(node, 0);
  if (failed(x))
    return failure();
  const GraphValue *shape = im.integerInput(node, 1);
  if (!shape)
    return im.nodeError(node) << "the shape must be constant int64 values";
  auto type = cast<RankedTensorType>(x->getType());
  auto result = broadcastShapes(type.getShape(), *shape->integers);
  if (failed(result))
    return im.nodeError(node) << type << " does not broadcast to the shape";
  Value expanded = *x;
  if (ArrayRef<int64_t>(*result) != type.getShape())
    expanded = BroadcastToOp::create(im.builder, im.nodeLoc(node),
                                     RankedTensorType::get(*result, type.getElementType()), *x);
  im.define(node, 0, expanded);
  return success();
}

/// Split of float data into slices: sizes as a constant input, or equal
/// parts (opsets 13 to 17: one per output, exactly; from 18: `num_outputs`
/// parts, the last the remainder when the size does not divide).
static LogicalResult importSplit(OnnxImporter &im, const onnx::NodeProto &node) {
  auto x = im.input(node, 0);
  auto axisAttr = im.intAttr(node, "axis", 0);
  if (failed(x) || failed(axisAttr))
    return failure();
  auto type = cast<RankedTensorType>(x->getType());
  int64_t rank = type.getRank(), axis = *axisAttr < 0 ? *axisAttr + rank : *axisAttr;
  if (axis < 0 || axis >= rank || type.isDynamicDim(axis))
    return im.nodeError(node) << "axis " << *axisAttr << " is out of range or of unknown size";
  int64_t size = type.getDimSize(axis), parts = node.output_size();
  auto numOutputs = im.attribute(node, "num_outputs", onnx::AttributeProto::INT);
  if (failed(numOutputs))
    return failure();
  if (*numOutputs && im.hasInput(node, 1))
    return im.nodeError(node) << "takes split sizes or num_outputs, not both";
  SmallVector<int64_t> sizes;
  if (im.hasInput(node, 1)) {
    const GraphValue *split = im.integerInput(node, 1);
    if (!split)
      return im.nodeError(node) << "split must be constant int64 values";
    sizes = *split->integers;
  } else if (im.opset >= 18) {
    int64_t part = parts ? (size + parts - 1) / parts : 0; // ceil, as Split-18
    if (!*numOutputs || (*numOutputs)->i() != parts || part * (parts - 1) >= size)
      return im.nodeError(node) << "num_outputs must be given, equal the " << parts
                                << " outputs and leave no part of the " << size
                                << " elements empty";
    for (int64_t i = 0; i < parts; ++i)
      sizes.push_back(std::min(part, size - i * part));
  } else {
    if (parts == 0 || size % parts != 0)
      return im.nodeError(node) << "cannot split " << size << " into " << parts
                                << " equal parts";
    sizes.assign(parts, size / parts);
  }
  int64_t total = 0;
  for (int64_t s : sizes)
    total += s < 0 ? size + 1 : s; // a negative size cannot add up
  if (static_cast<int64_t>(sizes.size()) != parts || total != size)
    return im.nodeError(node) << "the split sizes do not add up to " << size << " over "
                              << parts << " outputs";
  SmallVector<int64_t> offsets(rank, 0), box(type.getShape());
  for (int64_t i = 0; i < parts; ++i) {
    box[axis] = sizes[i];
    auto op = SliceOp::create(im.builder, im.nodeLoc(node),
                              RankedTensorType::get(box, type.getElementType()), *x,
                              im.builder.getDenseI64ArrayAttr(offsets),
                              im.builder.getDenseI64ArrayAttr(box));
    if (failed(im.verifyBuilt(node, op)))
      return failure();
    im.define(node, i, op.getResult());
    offsets[axis] += sizes[i];
  }
  return success();
}

/// ConstantOfShape (opset 9 and later) of a constant shape: a float splat
/// constant, or compile-time integers for an int64 value.
static LogicalResult importConstantOfShape(OnnxImporter &im, const onnx::NodeProto &node) {
  const GraphValue *shape = im.integerInput(node, 0);
  auto valueAttr = im.attribute(node, "value", onnx::AttributeProto::TENSOR);
  if (failed(valueAttr))
    return failure();
  if (!shape || llvm::any_of(*shape->integers, [](int64_t d) { return d < 0; }))
    return im.nodeError(node) << "the shape must be constant int64 values >= 0";
  DenseElementsAttr value =
      DenseElementsAttr::get(RankedTensorType::get({1}, im.builder.getF32Type()), 0.0f);
  if (*valueAttr) {
    auto parsed = im.tensorAttr((*valueAttr)->t());
    if (failed(parsed) || parsed->getNumElements() != 1)
      return im.nodeError(node) << "value must be a one-element float or int64 tensor";
    value = *parsed;
  }
  ArrayRef<int64_t> dims = *shape->integers;
  if (value.getElementType().isInteger(64)) {
    SmallVector<int64_t> data(ShapedType::getNumElements(dims),
                              value.getSplatValue<APInt>().getSExtValue());
    im.defineIntegers(node, 0, data, dims);
    return success();
  }
  auto type = RankedTensorType::get(dims, value.getElementType());
  im.define(node, 0,
            ConstantOp::create(im.builder, im.nodeLoc(node),
                               DenseElementsAttr::get(type, value.getSplatValue<Attribute>())));
  return success();
}

/// Range (opset 11) of float constant scalars: a float constant of
/// ceil((limit - start) / delta) values start + i delta, in start's type.
static LogicalResult importFloatRange(OnnxImporter &im, const onnx::NodeProto &node) {
  auto start = im.floatConstantInput(node, 0, 0.0f, "start");
  auto limit = im.floatConstantInput(node, 1, 0.0f, "limit");
  auto delta = im.floatConstantInput(node, 2, 0.0f, "delta");
  if (failed(start) || failed(limit) || failed(delta))
    return failure();
  if (*delta == 0.0f || !std::isfinite(*start) || !std::isfinite(*limit) ||
      !std::isfinite(*delta))
    return im.nodeError(node) << "start, limit and delta must be finite and delta not 0";
  double count = std::max(std::ceil((double(*limit) - *start) / *delta), 0.0);
  if (count > double(1 << 24))
    return im.nodeError(node) << "the range has more than 2^24 values";
  auto element = cast<FloatType>(
      cast<RankedTensorType>((*im.input(node, 0)).getType()).getElementType());
  SmallVector<APFloat> values;
  for (int64_t i = 0; i < static_cast<int64_t>(count); ++i) {
    APFloat v(*start + static_cast<float>(i) * *delta);
    bool lost;
    v.convert(element.getFloatSemantics(), APFloat::rmNearestTiesToEven, &lost);
    values.push_back(v);
  }
  auto type = RankedTensorType::get({static_cast<int64_t>(count)}, element);
  im.define(node, 0,
            ConstantOp::create(im.builder, im.nodeLoc(node), DenseElementsAttr::get(type, values)));
  return success();
}

/// Range (opset 11) of constant int64 start, limit and delta: compile-time
/// integers (positions); of float constants: importFloatRange.
static LogicalResult importRange(OnnxImporter &im, const onnx::NodeProto &node) {
  const GraphValue *start = im.integerInput(node, 0), *limit = im.integerInput(node, 1),
                   *delta = im.integerInput(node, 2);
  if (!start && !limit && !delta)
    return importFloatRange(im, node);
  if (!start || !limit || !delta || start->integers->size() != 1 ||
      limit->integers->size() != 1 || delta->integers->size() != 1)
    return im.nodeError(node) << "start, limit and delta must be constant int64 scalars";
  int64_t from = start->integers->front(), to = limit->integers->front(),
          step = delta->integers->front();
  if (step == 0)
    return im.nodeError(node) << "delta is 0";
  SmallVector<int64_t> values;
  for (int64_t v = from; step > 0 ? v < to : v > to; v += step) {
    if (values.size() >= (size_t(1) << 24))
      return im.nodeError(node) << "the range has more than 2^24 values";
    values.push_back(v);
  }
  im.defineIntegers(node, 0, values, {static_cast<int64_t>(values.size())});
  return success();
}

/// Slice (opset 13) with constant starts, ends, axes and steps, of float
/// data or of a compile-time integer tensor (a shape computation). On float
/// data the axes of step 1 are one amp.slice; each axis of another step
/// (negative ones reverse, as torch.flip exports) is then a gather at the
/// constant positions it picks, whose gradient (a scatter-add) is the
/// strided slice's.
static LogicalResult importSlice(OnnxImporter &im, const onnx::NodeProto &node) {
  Value x;
  auto shape = inputShape(im, node, 0, &x);
  if (failed(shape))
    return failure();
  auto rank = static_cast<int64_t>(shape->size());
  SmallVector<int64_t> lists[4]; // starts, ends, axes, steps
  const char *names[4] = {"starts", "ends", "axes", "steps"};
  for (int i = 0; i < 4; ++i) {
    if (!im.hasInput(node, i + 1))
      continue;
    const GraphValue *folded = im.integerInput(node, i + 1);
    if (!folded)
      return im.nodeError(node) << names[i] << " must be constant int64 values";
    lists[i] = *folded->integers;
  }
  SmallVector<int64_t> &starts = lists[0], &ends = lists[1], &axes = lists[2], &steps = lists[3];
  if (axes.empty())
    for (int64_t d = 0; d < static_cast<int64_t>(starts.size()); ++d)
      axes.push_back(d);
  if (steps.empty())
    steps.assign(starts.size(), 1);
  if (ends.size() != starts.size() || axes.size() != starts.size() ||
      steps.size() != starts.size())
    return im.nodeError(node) << "starts, ends, axes and steps differ in length";
  SmallVector<SliceAxis> sliced;
  SmallVector<bool> seen(rank, false);
  for (size_t i = 0; i < axes.size(); ++i) {
    int64_t axis = axes[i] < 0 ? axes[i] + rank : axes[i];
    if (axis < 0 || axis >= rank || seen[axis] || ShapedType::isDynamic((*shape)[axis]))
      return im.nodeError(node) << "axis " << axes[i]
                                << " is out of range, repeated or of unknown size";
    if (steps[i] == 0)
      return im.nodeError(node) << "step 0 is not supported";
    seen[axis] = true;
    sliced.push_back(sliceAxis(axis, (*shape)[axis], starts[i], ends[i], steps[i]));
  }
  if (!x)
    return foldIntegerSlice(im, node, *im.integerInput(node, 0), sliced);
  auto type = cast<RankedTensorType>(x.getType());
  SmallVector<int64_t> offsets(rank, 0), sizes(type.getShape());
  bool contiguous = false;
  for (const SliceAxis &s : sliced) {
    if (s.step != 1 && s.count > 0)
      continue; // gathered below
    offsets[s.axis] = s.count ? s.first : 0; // an empty slice starts anywhere
    sizes[s.axis] = s.count;
    contiguous = true;
  }
  Value result = x;
  Location loc = im.nodeLoc(node);
  if (contiguous) {
    auto op = SliceOp::create(im.builder, loc, RankedTensorType::get(sizes, type.getElementType()),
                              x, im.builder.getDenseI64ArrayAttr(offsets),
                              im.builder.getDenseI64ArrayAttr(sizes));
    if (failed(im.verifyBuilt(node, op)))
      return failure();
    result = op.getResult();
  }
  for (const SliceAxis &s : sliced) {
    if (s.step == 1 || s.count == 0)
      continue;
    SmallVector<int64_t> picks;
    for (int64_t k = 0; k < s.count; ++k)
      picks.push_back(s.first + k * s.step);
    auto indices = ConstantOp::create(
        im.builder, loc,
        DenseElementsAttr::get(RankedTensorType::get({s.count}, im.builder.getI64Type()),
                               ArrayRef<int64_t>(picks)));
    SmallVector<int64_t> gathered(cast<RankedTensorType>(result.getType()).getShape());
    gathered[s.axis] = s.count;
    auto op = GatherOp::create(im.builder, loc,
                               RankedTensorType::get(gathered, type.getElementType()), result,
                               indices, im.builder.getI64IntegerAttr(s.axis));
    if (failed(im.verifyBuilt(node, op)))
      return failure();
    result = op.getResult();
  }
  im.define(node, 0, result);
  return success();
}

/// Trilu (opset 14) of a constant, as graphs build attention masks: folded,
/// the elements outside the triangle (column - row >= k for upper, <= k
/// for lower, over the last two dims) zeroed. Float constants stay
/// constants, compile-time integers stay integers; a Trilu of values
/// computed at run time is refused.
static LogicalResult importTrilu(OnnxImporter &im, const onnx::NodeProto &node) {
  auto upper = im.intAttr(node, "upper", 1);
  if (failed(upper))
    return failure();
  int64_t k = 0;
  if (im.hasInput(node, 1)) {
    const GraphValue *diagonal = im.integerInput(node, 1);
    if (!diagonal || diagonal->integers->size() != 1)
      return im.nodeError(node) << "k must be a constant int64 scalar";
    k = diagonal->integers->front();
  }
  const GraphValue *integers = im.integerInput(node, 0);
  DenseElementsAttr constant;
  if (!integers) {
    auto x = im.input(node, 0);
    if (failed(x))
      return failure();
    if (!matchPattern(*x, m_Constant(&constant)))
      return im.nodeError(node) << "the input must be a constant (a mask); a Trilu of values "
                                   "computed at run time is not supported";
  }
  ArrayRef<int64_t> shape =
      integers ? integerShape(*integers) : cast<ShapedType>(constant.getType()).getShape();
  if (shape.size() < 2)
    return im.nodeError(node) << "the input has rank " << shape.size() << ", not 2 or more";
  int64_t rows = shape[shape.size() - 2], columns = shape.back();
  auto kept = [&](int64_t i) {
    int64_t column = i % columns, row = (i / columns) % rows;
    return *upper ? column - row >= k : column - row <= k;
  };
  if (integers) {
    SmallVector<int64_t> values(*integers->integers);
    for (int64_t i = 0, n = values.size(); i < n; ++i)
      values[i] = kept(i) ? values[i] : 0;
    im.defineIntegers(node, 0, values, shape);
    return success();
  }
  SmallVector<APFloat> values = llvm::to_vector(constant.getValues<APFloat>());
  for (int64_t i = 0, n = values.size(); i < n; ++i)
    if (!kept(i))
      values[i] = APFloat::getZero(values[i].getSemantics());
  im.define(node, 0,
            ConstantOp::create(im.builder, im.nodeLoc(node),
                               DenseElementsAttr::get(constant.getType(), values)));
  return success();
}

/// Gather (opset 13) of float data at int64 or int32 indices: a graph input
/// (token ids) or a constant (a fixed position, such as a class token's).
static LogicalResult importGather(OnnxImporter &im, const onnx::NodeProto &node) {
  if (const GraphValue *data = im.integerInput(node, 0)) {
    // A shape computation: picks from a 1-D integer tensor.
    const GraphValue *picks = im.integerInput(node, 1);
    ArrayRef<int64_t> dataShape = integerShape(*data);
    if (!picks || dataShape.size() != 1)
      return im.nodeError(node) << "gathers from integers only with constant indices from a "
                                   "1-D tensor";
    int64_t size = dataShape[0];
    SmallVector<int64_t> picked;
    for (int64_t index : *picks->integers) {
      if (index < -size || index >= size)
        return im.nodeError(node) << "index " << index << " is outside [" << -size << ", "
                                  << size << ")";
      picked.push_back((*data->integers)[index < 0 ? index + size : index]);
    }
    im.defineIntegers(node, 0, picked,
                      integerShape(*picks));
    return success();
  }
  auto x = im.input(node, 0);
  auto axisAttr = im.intAttr(node, "axis", 0);
  if (failed(x) || failed(axisAttr))
    return failure();
  auto type = cast<RankedTensorType>(x->getType());
  if (!isa<FloatType>(type.getElementType()))
    return im.nodeError(node) << "expects float data, got " << type;
  int64_t rank = type.getRank(), axis = *axisAttr < 0 ? *axisAttr + rank : *axisAttr;
  if (axis < 0 || axis >= rank)
    return im.nodeError(node) << "axis " << *axisAttr << " is out of range for rank " << rank;
  Value indices;
  auto it = im.hasInput(node, 1) ? im.values.find(node.input(1)) : im.values.end();
  if (it != im.values.end() && it->second.integerTensor) {
    indices = ConstantOp::create(im.builder, im.nodeLoc(node), it->second.integerTensor);
  } else {
    auto value = im.input(node, 1);
    if (failed(value))
      return failure();
    indices = *value;
  }
  auto indicesType = cast<RankedTensorType>(indices.getType());
  if (!indicesType.getElementType().isInteger(64) && !indicesType.getElementType().isInteger(32))
    return im.nodeError(node) << "expects int64 or int32 indices, got " << indicesType;
  SmallVector<int64_t> shape(type.getShape().take_front(axis));
  shape.append(indicesType.getShape().begin(), indicesType.getShape().end());
  shape.append(type.getShape().begin() + axis + 1, type.getShape().end());
  auto op = GatherOp::create(im.builder, im.nodeLoc(node),
                             RankedTensorType::get(shape, type.getElementType()), *x, indices,
                             im.builder.getI64IntegerAttr(axis));
  if (failed(im.verifyBuilt(node, op)))
    return failure();
  im.define(node, 0, op.getResult());
  return success();
}

/// Reshape (opset 13) to a constant shape: of float data, or of a
/// compile-time integer tensor (a shape computation).
static LogicalResult importReshape(OnnxImporter &im, const onnx::NodeProto &node) {
  Value x;
  auto inShape = inputShape(im, node, 0, &x);
  if (failed(inShape))
    return failure();
  auto it = im.hasInput(node, 1) ? im.values.find(node.input(1)) : im.values.end();
  if (x && it != im.values.end() && it->second.shapeOf) {
    // To the shape of a tensor whose one unknown dim (the batch) becomes -1.
    auto target = cast<RankedTensorType>(it->second.shapeOf.getType());
    SmallVector<int64_t> spec(target.getShape());
    for (int64_t &dim : spec)
      dim = ShapedType::isDynamic(dim) ? -1 : dim;
    std::string error;
    if (failed(onnxReshapeTarget(*inShape, spec, error)))
      return im.nodeError(node) << "cannot reshape " << x.getType() << " to the shape of "
                                << target << ": " << error;
    auto resultType = target.clone(cast<RankedTensorType>(x.getType()).getElementType());
    im.define(node, 0, ReshapeOp::create(im.builder, im.nodeLoc(node), resultType, x,
                                         im.builder.getDenseI64ArrayAttr(spec)));
    return success();
  }
  if (it == im.values.end() || !it->second.integers)
    return im.nodeError(node) << "the shape operand must be a constant int64 tensor";
  auto allowZero = im.intAttr(node, "allowzero", 0);
  if (failed(allowZero))
    return failure();
  if (*allowZero != 0)
    return im.nodeError(node) << "allowzero=1 is not supported";
  std::string error;
  auto shape = onnxReshapeTarget(*inShape, *it->second.integers, error);
  if (failed(shape))
    return im.nodeError(node) << "cannot reshape a tensor of shape [" << llvm::interleaved(*inShape)
                              << "]: " << error;
  if (!x) {
    im.defineIntegers(node, 0, *im.integerInput(node, 0)->integers, *shape);
    return success();
  }
  auto inputType = cast<RankedTensorType>(x.getType());
  auto resultType = RankedTensorType::get(*shape, inputType.getElementType());
  // Keep the ONNX target while shapes are dynamic, so the batch size can
  // resolve "0" (copy) dims later.
  DenseI64ArrayAttr spec;
  if (!resultType.hasStaticShape())
    spec = im.builder.getDenseI64ArrayAttr(*it->second.integers);
  Value result = ReshapeOp::create(im.builder, im.nodeLoc(node), resultType, x, spec);
  im.define(node, 0, result);
  return success();
}

static LogicalResult importConstant(OnnxImporter &im, const onnx::NodeProto &node) {
  auto tensor = im.attribute(node, "value", onnx::AttributeProto::TENSOR);
  auto scalar = im.attribute(node, "value_float", onnx::AttributeProto::FLOAT);
  auto list = im.attribute(node, "value_ints", onnx::AttributeProto::INTS);
  if (failed(tensor) || failed(scalar) || failed(list))
    return failure();
  DenseElementsAttr value;
  if (*tensor && (*tensor)->t().data_type() == onnx::TensorProto::DOUBLE) {
    // Kept aside for a Cast to a float type (importCast).
    const onnx::TensorProto &t = (*tensor)->t();
    SmallVector<double> data(t.double_data().begin(), t.double_data().end());
    if (data.empty() && t.has_raw_data()) {
      data.resize(t.raw_data().size() / sizeof(double));
      std::memcpy(data.data(), t.raw_data().data(), data.size() * sizeof(double));
    }
    SmallVector<int64_t> dims(t.dims().begin(), t.dims().end());
    auto type = RankedTensorType::get(dims, im.builder.getF64Type());
    if (static_cast<int64_t>(data.size()) != type.getNumElements())
      return im.nodeError(node) << "cannot read its float64 value tensor";
    if (node.output_size() > 0)
      im.values[node.output(0)] =
          GraphValue{Value(), std::nullopt, false, DenseElementsAttr::get(type, ArrayRef(data))};
    return success();
  }
  if (*tensor) { // int32 and bool values come back as int64 (bools 0/1: flags)
    auto parsed = im.tensorAttr((*tensor)->t());
    if (failed(parsed))
      return im.nodeError(node) << "cannot read its value tensor";
    value = *parsed;
  } else if (*scalar) {
    value =
        DenseElementsAttr::get(RankedTensorType::get({}, im.builder.getF32Type()), (*scalar)->f());
  } else if (*list) {
    SmallVector<int64_t> ints((*list)->ints().begin(), (*list)->ints().end());
    value = DenseElementsAttr::get(
        RankedTensorType::get({static_cast<int64_t>(ints.size())}, im.builder.getI64Type()),
        ArrayRef<int64_t>(ints));
  } else {
    return im.nodeError(node) << "only value, value_float and value_ints are supported";
  }
  if (node.output_size() < 1)
    return success();
  if (value.getElementType().isInteger(64)) {
    GraphValue constant{Value(), llvm::to_vector(value.getValues<int64_t>())};
    constant.integerTensor = value;
    im.values[node.output(0)] = constant;
    return success();
  }
  im.define(node, 0, ConstantOp::create(im.builder, im.nodeLoc(node), value));
  return success();
}

static LogicalResult importIdentity(OnnxImporter &im, const onnx::NodeProto &node) {
  auto it = im.hasInput(node, 0) ? im.values.find(node.input(0)) : im.values.end();
  if (it == im.values.end())
    return im.nodeError(node) << "missing input #0";
  if (node.output_size() > 0)
    im.values[node.output(0)] = it->second;
  return success();
}

/// Pad (op set 13's form: pads and constant_value are inputs), constant
/// mode; pads must be constant and non-negative, constant_value a constant.
static LogicalResult importPad(OnnxImporter &im, const onnx::NodeProto &node) {
  auto x = im.input(node, 0);
  auto mode = im.stringAttr(node, "mode", "constant");
  if (failed(x) || failed(mode))
    return failure();
  if (*mode != "constant")
    return im.nodeError(node) << "mode '" << *mode << "' is not supported (only constant)";
  auto type = cast<RankedTensorType>(x->getType());
  auto it = im.hasInput(node, 1) ? im.values.find(node.input(1)) : im.values.end();
  if (it == im.values.end() || !it->second.integers)
    return im.nodeError(node) << "pads must be a constant int64 tensor";
  SmallVector<int64_t> pads = *it->second.integers;
  if (static_cast<int64_t>(pads.size()) != 2 * type.getRank() ||
      llvm::any_of(pads, [](int64_t p) { return p < 0; }))
    return im.nodeError(node) << "expects " << 2 * type.getRank()
                              << " pads, none negative (cropping is not supported)";
  auto value = im.floatConstantInput(node, 2, 0.0f, "constant_value");
  if (failed(value))
    return failure();
  auto pad = PadOp::create(im.builder, im.nodeLoc(node), type, *x,
                           im.builder.getDenseI64ArrayAttr(pads),
                           im.builder.getF32FloatAttr(*value));
  if (failed(im.inferResultTypes(node, pad)))
    return failure();
  im.define(node, 0, pad.getResult());
  return success();
}

/// Concat (op set 13): float inputs of one type along a (possibly negative) axis.
static LogicalResult importConcat(OnnxImporter &im, const onnx::NodeProto &node) {
  if (node.input_size() > 0 && im.integerInput(node, 0)) {
    // A shape computation: joins 1-D integer tensors.
    SmallVector<int64_t> joined;
    for (int i = 0; i < node.input_size(); ++i) {
      const GraphValue *part = im.integerInput(node, i);
      if (!part || integerShape(*part).size() != 1)
        return im.nodeError(node) << "joins integers only from constant 1-D tensors";
      joined.append(part->integers->begin(), part->integers->end());
    }
    im.defineIntegers(node, 0, joined, {static_cast<int64_t>(joined.size())});
    return success();
  }
  SmallVector<Value> inputs;
  for (int i = 0; i < node.input_size(); ++i) {
    auto v = im.input(node, i);
    if (failed(v))
      return failure();
    inputs.push_back(*v);
  }
  auto axisAttr = im.intAttr(node, "axis", 0);
  if (failed(axisAttr) || inputs.empty())
    return failed(axisAttr) ? failure() : im.nodeError(node) << "needs at least one input";
  auto first = cast<RankedTensorType>(inputs.front().getType());
  int64_t axis = *axisAttr < 0 ? *axisAttr + first.getRank() : *axisAttr;
  if (axis < 0 || axis >= first.getRank())
    return im.nodeError(node) << "axis " << *axisAttr << " is out of range for rank "
                              << first.getRank();
  auto concat = ConcatOp::create(im.builder, im.nodeLoc(node), first, inputs, axis);
  if (failed(im.inferResultTypes(node, concat)))
    return failure();
  im.define(node, 0, concat.getResult());
  return success();
}

ArrayRef<OnnxImporter::Registration> mlir::amp::onnx_import::shapeRules() {
  static const OnnxImporter::Registration rules[] = {
      {{"", "Flatten", 13, 0, ""}, &importFlatten},
      {{"", "Shape", 13, 0, "known dims (folded)"}, &importShape},
      {{"", "Slice", 13, 0, "constant starts, ends, axes and steps"},
       &importSlice},
      {{"", "Expand", 13, 0, "float data, constant shape"}, &importExpand},
      // Split-18 added num_outputs.
      {{"", "Split", 13, 0, "float data, constant split or num_outputs (18)"}, &importSplit},
      {{"", "ConstantOfShape", 9, 0, "constant shape"}, &importConstantOfShape},
      {{"", "Range", 11, 0, "constant int64 or float scalars (folded)"}, &importRange},
      {{"", "Gather", 13, 0, "float data, int64 or int32 indices"}, &importGather},
      {{"", "Trilu", 14, 0, "a constant input (folded)"}, &importTrilu},
      {{"", "Squeeze", 13, 0, "constant axes"}, &importSqueezeOrUnsqueeze},
      {{"", "Unsqueeze", 13, 0, "constant axes"}, &importSqueezeOrUnsqueeze},
      {{"", "Reshape", 13, 0, "constant shape, allowzero=0"}, &importReshape},
      {{"", "Constant", 11, 0, "value, value_float, value_ints (12)"}, &importConstant},
      {{"", "Identity", 13, 0, "tensors"}, &importIdentity},
      {{"", "Pad", 13, 0, "constant mode, constant pads >= 0"}, &importPad},
      {{"", "Concat", 13, 0, "float inputs of one type"}, &importConcat},
  };
  return rules;
}
