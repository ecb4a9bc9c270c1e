//===- CpuConvolution.cpp - convolutions on the CPU through oneDNN --------===//
//
// conv, conv_backward_data and conv_backward_filter are oneDNN convolution
// primitives (forward training, backward data, backward weights) with f32
// accumulation, over the plan's plain row-major layouts (NCHW-style
// activations, [M, C/group, kernel...] filters; a grouped filter is the same
// bytes seen as [group, M/group, C/group, kernel...]). As for GEMMs, a
// low-precision convolution runs natively where oneDNN has a kernel for it
// on this CPU and is emulated elsewhere: operands widened to f32 staging, an
// f32 primitive, the result rounded once.
//
//===----------------------------------------------------------------------===//

#include "CpuConversions.h"
#include "CpuKernelSupport.h"
#include "KernelChecks.h"

#include "CpuDnnl.h"

#include <optional>
#include <unordered_map>

namespace amprt {
namespace {

using cpu::dnnlType;

using dims = dnnl::memory::dims;

/// A plain row-major memory descriptor.
dnnl::memory::desc plainDesc(const dims &shape, DType dtype) {
  dims strides(shape.size(), 1);
  for (size_t i = shape.size() - 1; i-- > 0;)
    strides[i] = strides[i + 1] * shape[i + 1];
  return dnnl::memory::desc(shape, dnnlType(dtype), strides);
}

/// The kernel's geometry: strides, pads (begin, then end), dilations in
/// oneDNN's convention (0 = dense), group; from the attributes NAME.i.
struct Geometry {
  dims strides, padBegin, padEnd, dilations;
  int64_t group = 1;
};

Status readGeometry(const proto::Kernel &kernel, size_t spatial, Geometry *g) {
  dims pads;
  if (!listAttr(kernel, "strides", spatial, std::nullopt, &g->strides) ||
      !listAttr(kernel, "pads", 2 * spatial, std::nullopt, &pads) ||
      !listAttr(kernel, "dilations", spatial, std::nullopt, &g->dilations) ||
      anyBelow(g->strides, 1) || anyBelow(g->dilations, 1) || anyBelow(pads, 0))
    return Status::error("needs strides, pads and dilations for " + std::to_string(spatial) +
                         " spatial dims (strides and dilations >= 1, pads >= 0)");
  g->padBegin.assign(pads.begin(), pads.begin() + spatial);
  g->padEnd.assign(pads.begin() + spatial, pads.end());
  for (int64_t &d : g->dilations)
    d -= 1; // oneDNN counts the gaps: 0 is dense
  auto group = kernel.attrs().find("group");
  g->group = group == kernel.attrs().end() ? 1 : static_cast<int64_t>(group->second);
  return g->group >= 1 ? Status::ok() : Status::error("group must be at least 1");
}

/// The three tensors of a convolution in oneDNN's roles, whatever the kernel.
struct ConvTensors {
  TensorRef src, weights, dst;
};

/// Checks shapes: dst = conv(src, weights) by the forward rule.
Status checkShapes(const ConvTensors &t, const Geometry &g) {
  const auto &x = t.src.shape, &w = t.weights.shape, &y = t.dst.shape;
  size_t rank = x.size();
  if (rank < 3 || w.size() != rank || y.size() != rank)
    return Status::error("expects input, filter and result of one rank, at least 3");
  if (w[0] % g.group != 0 || w[1] * g.group != x[1] || y[0] != x[0] || y[1] != w[0])
    return Status::error("channels and groups do not fit");
  for (size_t d = 0; d + 2 < rank; ++d) {
    int64_t span = (g.dilations[d] + 1) * (w[d + 2] - 1) + 1;
    int64_t out = (x[d + 2] + g.padBegin[d] + g.padEnd[d] - span) / g.strides[d] + 1;
    if (out != y[d + 2])
      return Status::error("the result's spatial size does not follow from the geometry");
  }
  return Status::ok();
}

dims weightsDims(const std::vector<int64_t> &w, int64_t group) {
  if (group == 1)
    return dims(w.begin(), w.end());
  dims grouped = {group, w[0] / group};
  grouped.insert(grouped.end(), w.begin() + 1, w.end());
  return grouped;
}

/// The primitive descriptors of all three directions share the forward one
/// as a hint; `types` are the storage types of src, weights and dst.
struct ConvDescs {
  dnnl::memory::desc src, weights, dst;
};

ConvDescs convDescs(const ConvTensors &t, const Geometry &g, DType src, DType weights,
                    DType dst) {
  return {plainDesc(dims(t.src.shape.begin(), t.src.shape.end()), src),
          plainDesc(weightsDims(t.weights.shape, g.group), weights),
          plainDesc(dims(t.dst.shape.begin(), t.dst.shape.end()), dst)};
}

dnnl::convolution_forward::primitive_desc forwardDesc(const ConvDescs &d, const Geometry &g,
                                                      const dnnl::engine &engine) {
  dnnl::convolution_forward::desc desc(dnnl::prop_kind::forward_training,
                                       dnnl::algorithm::convolution_direct, d.src, d.weights,
                                       d.dst, g.strides, g.dilations, g.padBegin, g.padEnd);
  return dnnl::convolution_forward::primitive_desc(desc, engine);
}

/// One convolution primitive: which tensors are staged through f32 and the
/// oneDNN argument each one binds to. Two operands in, one result out.
class ConvKernel : public CpuKernel {
public:
  struct Slot {
    int arg; // DNNL_ARG_*
    TensorRef tensor;
    dnnl::memory::desc desc;
    bool staged = false;
    std::vector<float> *staging = nullptr;
  };
  ConvKernel(CpuContext &context, dnnl::primitive primitive, std::vector<Slot> inputs,
             Slot output)
      : context(context), primitive(std::move(primitive)), inputs(std::move(inputs)),
        output(std::move(output)) {}

  Status run() override {
    std::unordered_map<int, dnnl::memory> args;
    for (Slot &slot : inputs) {
      void *data = slot.tensor.data;
      if (slot.staged) {
        cpu::widen(slot.tensor.dtype, slot.tensor.data, slot.staging->data(),
                   slot.tensor.size());
        data = slot.staging->data();
      }
      args.emplace(slot.arg, dnnl::memory(slot.desc, *context.engine, data));
    }
    void *result = output.staged ? output.staging->data() : output.tensor.data;
    args.emplace(output.arg, dnnl::memory(output.desc, *context.engine, result));
    primitive.execute(*context.stream, args);
    context.stream->wait();
    if (output.staged)
      cpu::narrow(output.tensor.dtype, output.staging->data(), output.tensor.data,
                  output.tensor.size());
    return Status::ok();
  }

private:
  CpuContext &context;
  dnnl::primitive primitive;
  std::vector<Slot> inputs;
  Slot output;
};

/// Builds the primitive of one direction for the given storage types
/// (src, weights, dst); throws dnnl::error where oneDNN has no kernel.
dnnl::primitive makePrimitive(KernelId id, const ConvTensors &t, const Geometry &g,
                              DType low, DType result, const dnnl::engine &engine,
                              ConvDescs *descs) {
  // The result is stored in its own type; the operands share `low`.
  DType src = id == KernelId::ConvBackwardData ? result : low;
  DType weights = id == KernelId::ConvBackwardFilter ? result : low;
  DType dst = id == KernelId::Conv ? result : low;
  *descs = convDescs(t, g, src, weights, dst);
  auto forward = forwardDesc(*descs, g, engine);
  if (id == KernelId::Conv)
    return dnnl::convolution_forward(forward);
  if (id == KernelId::ConvBackwardData) {
    dnnl::convolution_backward_data::desc desc(dnnl::algorithm::convolution_direct, descs->src,
                                               descs->weights, descs->dst, g.strides,
                                               g.dilations, g.padBegin, g.padEnd);
    return dnnl::convolution_backward_data(
        dnnl::convolution_backward_data::primitive_desc(desc, engine, forward));
  }
  dnnl::convolution_backward_weights::desc desc(dnnl::algorithm::convolution_direct, descs->src,
                                                descs->weights, descs->dst, g.strides,
                                                g.dilations, g.padBegin, g.padEnd);
  return dnnl::convolution_backward_weights(
      dnnl::convolution_backward_weights::primitive_desc(desc, engine, forward));
}

} // namespace

Status buildConvolution(const proto::Kernel &kernel, KernelId id,
                        const std::vector<TensorRef> &in, const TensorRef &out,
                        CpuContext &context, std::unique_ptr<CpuKernel> *result) {
  // Roles: conv (src, weights) -> dst; backward data (diff dst, weights) ->
  // diff src; backward filter (src, diff dst) -> diff weights.
  ConvTensors t = id == KernelId::Conv               ? ConvTensors{in[0], in[1], out}
                  : id == KernelId::ConvBackwardData ? ConvTensors{out, in[1], in[0]}
                                                     : ConvTensors{in[0], out, in[1]};
  Geometry g;
  AMPRT_RETURN_IF_ERROR(readGeometry(kernel, t.src.shape.size() - 2, &g));
  AMPRT_RETURN_IF_ERROR(checkShapes(t, g));
  DType low = in[0].dtype;
  if (in[1].dtype != low)
    return Status::error("operands must share an element type");
  if (out.dtype != low && out.dtype != DType::F32)
    return Status::error("the result must be the operands' type or f32");
  for (const TensorRef &x : {in[0], in[1], out})
    if (x.dtype != DType::F32 && x.dtype != DType::BF16 && x.dtype != DType::F16)
      return Status::error("expects float tensors");
  int args[3]; // oneDNN arguments of in[0], in[1], out
  if (id == KernelId::Conv)
    args[0] = DNNL_ARG_SRC, args[1] = DNNL_ARG_WEIGHTS, args[2] = DNNL_ARG_DST;
  else if (id == KernelId::ConvBackwardData)
    args[0] = DNNL_ARG_DIFF_DST, args[1] = DNNL_ARG_WEIGHTS, args[2] = DNNL_ARG_DIFF_SRC;
  else
    args[0] = DNNL_ARG_SRC, args[1] = DNNL_ARG_DIFF_DST, args[2] = DNNL_ARG_DIFF_WEIGHTS;
  try {
    ConvDescs descs;
    std::optional<dnnl::primitive> primitive;
    bool emulated = false;
    if (low == DType::F32 || context.nativeGemm(low)) {
      try {
        primitive = makePrimitive(id, t, g, low, out.dtype, *context.engine, &descs);
      } catch (const dnnl::error &) {
        // No native kernel for these types here: emulate below.
      }
    }
    if (!primitive) {
      emulated = true;
      context.emulatedGemms.insert(low);
      primitive = makePrimitive(id, t, g, DType::F32, DType::F32, *context.engine, &descs);
    }
    auto descOf = [&](int arg) {
      switch (arg) {
      case DNNL_ARG_SRC:
      case DNNL_ARG_DIFF_SRC:
        return descs.src;
      case DNNL_ARG_WEIGHTS:
      case DNNL_ARG_DIFF_WEIGHTS:
        return descs.weights;
      default:
        return descs.dst;
      }
    };
    std::vector<float> *stagings[3] = {&context.stagingA, &context.stagingB, &context.stagingC};
    const TensorRef *tensors[3] = {&in[0], &in[1], &out};
    ConvKernel::Slot slots[3];
    for (int i = 0; i < 3; ++i) {
      slots[i] = {args[i], *tensors[i], descOf(args[i]),
                  emulated && tensors[i]->dtype != DType::F32, stagings[i]};
      if (slots[i].staged && stagings[i]->size() < static_cast<size_t>(tensors[i]->size()))
        stagings[i]->resize(tensors[i]->size());
    }
    *result = std::make_unique<ConvKernel>(context, std::move(*primitive),
                                           std::vector<ConvKernel::Slot>{slots[0], slots[1]},
                                           slots[2]);
  } catch (const dnnl::error &e) {
    return Status::error(std::string("oneDNN: ") + e.what());
  }
  return Status::ok();
}

} // namespace amprt
