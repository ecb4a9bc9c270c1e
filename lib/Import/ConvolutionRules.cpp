//===- ConvolutionRules.cpp - ONNX import: convolutions and pooling ------===//
//
// Each rule imports one node; its registry row (at the end) says which op
// type, domain and op sets it handles and what it refuses.
//
//===----------------------------------------------------------------------===//

#include "OnnxImporterImpl.h"

#include "llvm/Support/CheckedArithmetic.h"

#include <optional>

using namespace mlir;
using namespace mlir::amp;
using namespace mlir::amp::onnx_import;

/// ONNX's auto_pad: the begin and end pads (begin pads first) that keep
/// out = ceil(in / stride); SAME_UPPER puts an odd extra pad at the end,
/// SAME_LOWER at the beginning. None where a pad would leave int64 (the
/// strides, dilations and kernel are positive).
static std::optional<SmallVector<int64_t>>
samePads(ArrayRef<int64_t> spatialIn, ArrayRef<int64_t> kernel, ArrayRef<int64_t> strides,
         ArrayRef<int64_t> dilations, bool upper) {
  size_t n = spatialIn.size();
  SmallVector<int64_t> pads(2 * n, 0);
  for (size_t d = 0; d < n; ++d) {
    int64_t out = spatialIn[d] / strides[d] + (spatialIn[d] % strides[d] != 0);
    // total = (out - 1) * stride + dilation * (kernel - 1) + 1 - in
    std::optional<int64_t> reach = llvm::checkedMul(out - 1, strides[d]),
                           span = llvm::checkedMul(dilations[d], kernel[d] - 1);
    std::optional<int64_t> total = reach && span ? llvm::checkedAdd(*reach, *span) : std::nullopt;
    if (total)
      total = llvm::checkedAdd(*total, int64_t{1});
    if (!total)
      return std::nullopt;
    *total = std::max<int64_t>(0, *total - spatialIn[d]);
    int64_t small = *total / 2, large = *total - small;
    pads[d] = upper ? small : large;
    pads[d + n] = upper ? large : small;
  }
  return pads;
}

/// The window a conv or pooling node states over `input` ([N, C,
/// spatial...]): kernel_shape (default `kernel`), strides, dilations and
/// pads, with auto_pad resolved into pads (begins, then ends).
struct WindowAttrs {
  SmallVector<int64_t> kernel, strides, dilations, pads;
};

static FailureOr<WindowAttrs> readWindowAttrs(OnnxImporter &im, const onnx::NodeProto &node,
                                              RankedTensorType input,
                                              ArrayRef<int64_t> kernel) {
  size_t spatial = input.getRank() - 2;
  SmallVector<int64_t> ones(spatial, 1), zeros(2 * spatial, 0);
  auto kernelShape = im.intsAttr(node, "kernel_shape", kernel);
  auto strides = im.intsAttr(node, "strides", ones);
  auto dilations = im.intsAttr(node, "dilations", ones);
  auto pads = im.intsAttr(node, "pads", zeros);
  auto autoPad = im.stringAttr(node, "auto_pad", "NOTSET");
  if (failed(kernelShape) || failed(strides) || failed(dilations) || failed(pads) ||
      failed(autoPad))
    return failure();
  if (kernelShape->size() != spatial || strides->size() != spatial ||
      dilations->size() != spatial) {
    im.nodeError(node) << "expects kernel_shape, strides and dilations for " << spatial
                       << " spatial dims";
    return failure();
  }
  // A Conv's kernel comes from its weights' shape, which may be dynamic.
  auto belowOne = [](int64_t v) { return v < 1; };
  auto staticBelowOne = [](int64_t v) { return v < 1 && !ShapedType::isDynamic(v); };
  if (llvm::any_of(*kernelShape, staticBelowOne) || llvm::any_of(*strides, belowOne) ||
      llvm::any_of(*dilations, belowOne)) {
    im.nodeError(node) << "expects positive kernel_shape, strides and dilations";
    return failure();
  }
  if (*autoPad == "SAME_UPPER" || *autoPad == "SAME_LOWER") {
    ArrayRef<int64_t> in = input.getShape().drop_front(2);
    if (llvm::any_of(in, ShapedType::isDynamic) ||
        llvm::any_of(*kernelShape, ShapedType::isDynamic)) {
      im.nodeError(node) << "auto_pad " << *autoPad << " needs static spatial dims and kernel";
      return failure();
    }
    auto same = samePads(in, *kernelShape, *strides, *dilations, *autoPad == "SAME_UPPER");
    if (!same) {
      im.nodeError(node) << "auto_pad " << *autoPad << ": the padding leaves int64";
      return failure();
    }
    *pads = *same;
  } else if (*autoPad == "VALID") {
    *pads = zeros;
  } else if (*autoPad != "NOTSET") {
    im.nodeError(node) << "unknown auto_pad '" << *autoPad << "'";
    return failure();
  }
  return WindowAttrs{*kernelShape, *strides, *dilations, *pads};
}

/// The node's first input as [N, C, spatial...].
static FailureOr<Value> spatialInput(OnnxImporter &im, const onnx::NodeProto &node) {
  auto x = im.input(node, 0);
  if (failed(x))
    return failure();
  auto type = cast<RankedTensorType>(x->getType());
  if (type.getRank() < 3) {
    im.nodeError(node) << "expects [N, C, spatial...], got " << type;
    return failure();
  }
  return *x;
}

FailureOr<ConvWindow> mlir::amp::onnx_import::readConvWindow(OnnxImporter &im,
                                                             const onnx::NodeProto &node,
                                                             RankedTensorType xType,
                                                             RankedTensorType wType) {
  if (xType.getRank() < 3 || wType.getRank() != xType.getRank()) {
    im.nodeError(node) << "expects input [N, C, spatial...] and weights [M, C/group, "
                          "kernel...] of one rank, at least 3; got "
                       << xType << " and " << wType;
    return failure();
  }
  auto window = readWindowAttrs(im, node, xType, wType.getShape().drop_front(2));
  auto group = im.intAttr(node, "group", 1);
  if (failed(window) || failed(group))
    return failure();
  if (ArrayRef<int64_t>(window->kernel) != wType.getShape().drop_front(2)) {
    im.nodeError(node) << "kernel_shape does not match the weights' shape " << wType;
    return failure();
  }
  std::string error;
  ConvGeometry geometry{window->strides, window->pads, window->dilations, *group};
  auto shape = convShape(xType.getShape(), wType.getShape(), geometry, error);
  if (failed(shape)) {
    im.nodeError(node) << error;
    return failure();
  }
  Builder &b = im.builder;
  return ConvWindow{b.getDenseI64ArrayAttr(window->strides), b.getDenseI64ArrayAttr(window->pads),
                    b.getDenseI64ArrayAttr(window->dilations), *group,
                    RankedTensorType::get(*shape, xType.getElementType())};
}

/// Conv: 1-D and up, strides, pads or auto_pad, dilations, groups; the
/// optional bias becomes a broadcast add over the channel dim.
static LogicalResult importConv(OnnxImporter &im, const onnx::NodeProto &node) {
  auto x = im.input(node, 0), w = im.input(node, 1);
  if (failed(x) || failed(w))
    return failure();
  auto xType = cast<RankedTensorType>(x->getType());
  auto wType = cast<RankedTensorType>(w->getType());
  auto window = readConvWindow(im, node, xType, wType);
  if (failed(window))
    return failure();
  Location loc = im.nodeLoc(node);
  auto conv = ConvOp::create(im.builder, loc, window->result, *x, *w, window->strides,
                             window->pads, window->dilations, window->group);
  if (failed(im.verifyBuilt(node, conv)))
    return failure();
  Value result = conv.getResult();
  if (im.hasInput(node, 2)) {
    auto bias = im.input(node, 2);
    if (failed(bias))
      return failure();
    auto biasType = cast<RankedTensorType>(bias->getType());
    if (biasType.getRank() != 1 || biasType.getDimSize(0) != wType.getDimSize(0))
      return im.nodeError(node) << "bias " << biasType << " must be [" << wType.getDimSize(0)
                                << "], one value per output channel";
    // [M] -> [1, M, 1, ...]: broadcasts over the batch and spatial dims.
    SmallVector<int64_t> channelShape(xType.getRank(), 1);
    channelShape[1] = biasType.getDimSize(0);
    Value channels = ReshapeOp::create(
        im.builder, loc, RankedTensorType::get(channelShape, biasType.getElementType()), *bias);
    auto sum = buildBroadcast<AddOp>(im.builder, loc, result, channels);
    if (failed(sum))
      return im.nodeError(node) << "the bias does not broadcast to " << result.getType();
    result = *sum;
  }
  im.define(node, 0, result);
  return success();
}

/// MaxPool: kernel, strides, pads or auto_pad, dilations, ceil_mode; the
/// optional Indices output (ONNX's flat index over the whole tensor) only
/// where ORT's MaxPoolGrad alone reads it (as amp.max_pool's own indices);
/// column-major storage_order is refused.
static LogicalResult importMaxPool(OnnxImporter &im, const onnx::NodeProto &node) {
  auto x = spatialInput(im, node);
  if (failed(x))
    return failure();
  bool indices = node.output_size() > 1 && !node.output(1).empty();
  if (indices && !im.readOnlyBy(node.output(1), [](const onnx::NodeProto &reader, int) {
        return reader.op_type() == "MaxPoolGrad";
      }))
    return im.nodeError(node) << "the Indices output is supported only as the input of "
                                 "onnxruntime-training's MaxPoolGrad";
  auto type = cast<RankedTensorType>(x->getType());
  auto window = readWindowAttrs(im, node, type, {});
  auto ceilMode = im.intAttr(node, "ceil_mode", 0);
  auto storageOrder = im.intAttr(node, "storage_order", 0);
  if (failed(window) || failed(ceilMode) || failed(storageOrder))
    return failure();
  if (*storageOrder != 0)
    return im.nodeError(node) << "storage_order=1 is not supported";
  std::string error;
  ConvGeometry geometry{window->strides, window->pads, window->dilations, 1};
  auto shape = poolShape(type.getShape(), window->kernel, geometry, *ceilMode != 0, error);
  if (failed(shape))
    return im.nodeError(node) << error;
  auto pool = MaxPoolOp::create(
      im.builder, im.nodeLoc(node), RankedTensorType::get(*shape, type.getElementType()),
      RankedTensorType::get(*shape, im.builder.getI64Type()), *x,
      im.builder.getDenseI64ArrayAttr(window->kernel),
      im.builder.getDenseI64ArrayAttr(window->strides),
      im.builder.getDenseI64ArrayAttr(window->pads),
      im.builder.getDenseI64ArrayAttr(window->dilations), *ceilMode != 0);
  if (failed(im.verifyBuilt(node, pool)))
    return failure();
  im.define(node, 0, pool.getResult());
  if (indices)
    im.define(node, 1, pool.getIndices());
  return success();
}

/// AveragePool: kernel, strides, pads or auto_pad, ceil_mode,
/// count_include_pad (op set 11's form: no dilations).
static LogicalResult importAveragePool(OnnxImporter &im, const onnx::NodeProto &node) {
  auto x = spatialInput(im, node);
  if (failed(x))
    return failure();
  auto type = cast<RankedTensorType>(x->getType());
  auto window = readWindowAttrs(im, node, type, {}); // op set 11: no dilations
  auto ceilMode = im.intAttr(node, "ceil_mode", 0);
  auto includePad = im.intAttr(node, "count_include_pad", 0);
  if (failed(window) || failed(ceilMode) || failed(includePad))
    return failure();
  std::string error;
  ConvGeometry geometry{window->strides, window->pads, window->dilations, 1};
  auto shape = poolShape(type.getShape(), window->kernel, geometry, *ceilMode != 0, error);
  if (failed(shape))
    return im.nodeError(node) << error;
  auto pool = AvgPoolOp::create(
      im.builder, im.nodeLoc(node), RankedTensorType::get(*shape, type.getElementType()), *x,
      im.builder.getDenseI64ArrayAttr(window->kernel),
      im.builder.getDenseI64ArrayAttr(window->strides),
      im.builder.getDenseI64ArrayAttr(window->pads), *ceilMode != 0, *includePad != 0);
  if (failed(im.verifyBuilt(node, pool)))
    return failure();
  im.define(node, 0, pool.getResult());
  return success();
}

/// GlobalAveragePool: the mean over the spatial dims, kept as size-1 dims,
/// as a sum (f32, reading low precision) times 1 / (spatial size); its
/// gradient follows from theirs.
static LogicalResult importGlobalAveragePool(OnnxImporter &im, const onnx::NodeProto &node) {
  auto x = im.input(node, 0);
  if (failed(x))
    return failure();
  auto type = cast<RankedTensorType>(x->getType());
  if (type.getRank() < 3)
    return im.nodeError(node) << "expects [N, C, spatial...], got " << type;
  SmallVector<int64_t> axes, shape(type.getShape());
  int64_t count = 1;
  for (int64_t d = 2; d < type.getRank(); ++d) {
    if (type.isDynamicDim(d))
      return im.nodeError(node) << "needs static spatial dims, got " << type;
    axes.push_back(d);
    count *= type.getDimSize(d);
    shape[d] = 1;
  }
  Location loc = im.nodeLoc(node);
  Value sum = ReduceSumOp::create(im.builder, loc,
                                  RankedTensorType::get(shape, type.getElementType()), *x,
                                  im.builder.getDenseI64ArrayAttr(axes), /*keepDims=*/true);
  Value mean = MulOp::create(im.builder, loc, sum.getType(), sum,
                             im.scalarLike(sum, 1.0f / static_cast<float>(count), loc));
  im.define(node, 0, mean);
  return success();
}

ArrayRef<OnnxImporter::Registration> mlir::amp::onnx_import::convolutionRules() {
  static const OnnxImporter::Registration rules[] = {
      {{"", "Conv", 11, 0, "float; explicit pads or auto_pad"}, &importConv}, // Conv-11
      {{"", "GlobalAveragePool", 1, 0, "static spatial dims"}, &importGlobalAveragePool},
      // MaxPool-10 added ceil_mode and dilations; 11 and 12 changed neither.
      {{"", "MaxPool", 10, 0, "Indices only for MaxPoolGrad; storage_order 0"}, &importMaxPool},
      // AveragePool-11: pads with auto_pad semantics as today (no dilations).
      {{"", "AveragePool", 11, 0, ""}, &importAveragePool},
  };
  return rules;
}
