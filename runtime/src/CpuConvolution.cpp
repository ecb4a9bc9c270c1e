//===- CpuConvolution.cpp - convolutions on the CPU through oneDNN --------===//
//
// conv, conv_backward_data and conv_backward_filter are oneDNN convolution
// primitives (forward training, backward data, backward weights) with f32
// accumulation. The plan's tensors are plain row-major (NCHW-style
// activations, [M, C/group, kernel...] filters; a grouped filter is the same
// bytes seen as [group, M/group, C/group, kernel...]); the primitives run on
// the layouts oneDNN picks for speed (blocked), reached by reorders inside
// the kernel. As for GEMMs, a low-precision convolution runs natively where
// oneDNN has an optimized kernel for it on this CPU and is emulated
// elsewhere: the operands are widened to f32 (vector conversions), an f32
// primitive runs, and the result is rounded once on its way back.
// Filter taps that only ever read padding are cut off (see LiveTaps).
//
//===----------------------------------------------------------------------===//

#include "CpuConversions.h"
#include "CpuConvolution.h"
#include "KernelChecks.h"

#include "CpuDnnl.h"

#include <cstring>
#include <optional>
#include <unordered_map>

namespace amprt {
namespace {

using cpu::dnnlType;
using namespace conv;

using dims = dnnl::memory::dims;

/// A plain row-major memory descriptor.
dnnl::memory::desc plainDesc(const dims &shape, DType dtype) {
  dims strides(shape.size(), 1);
  for (size_t i = shape.size() - 1; i-- > 0;)
    strides[i] = strides[i + 1] * shape[i + 1];
  return dnnl::memory::desc(shape, dnnlType(dtype), strides);
}

/// Checks shapes: dst = conv(src, weights) by the forward rule.
dims weightsDims(const std::vector<int64_t> &w, int64_t group) {
  if (group == 1)
    return dims(w.begin(), w.end());
  dims grouped = {group, w[0] / group};
  grouped.insert(grouped.end(), w.begin() + 1, w.end());
  return grouped;
}

/// The primitive descriptors of all three directions share the forward one
/// as a hint. Each tensor is described in its compute type with format
/// `any`, so oneDNN picks its fastest layout (blocked, nChw16c and the like)
/// and kernel (brgemm, jit; native bf16 where the CPU has it).
struct ConvDescs {
  dnnl::memory::desc src, weights, dst;
};

dnnl::memory::desc anyDesc(const dims &shape, DType dtype) {
  return dnnl::memory::desc(shape, dnnlType(dtype), dnnl::memory::format_tag::any);
}

/// The primitive of one direction for compute types (src, weights, dst);
/// `chosen` receives the layouts oneDNN picked, `impl` its implementation.
/// Throws dnnl::error where oneDNN has no kernel.
dnnl::primitive makePrimitive(KernelId id, const ConvTensors &t, const Geometry &g,
                              DType src, DType weights, DType dst,
                              const dnnl::engine &engine, ConvDescs *chosen,
                              std::string *impl) {
  dims x(t.src.shape.begin(), t.src.shape.end()), y(t.dst.shape.begin(), t.dst.shape.end());
  dims w = weightsDims(t.weights.shape, g.group);
  // The backward directions' hint is a forward in the operands' type (the
  // one a wider result of theirs has no kernel for).
  DType hint = id == KernelId::ConvBackwardData     ? weights
               : id == KernelId::ConvBackwardFilter ? src
                                                    : DType::F32;
  dnnl::convolution_forward::desc forwardDesc(
      dnnl::prop_kind::forward_training, dnnl::algorithm::convolution_direct,
      anyDesc(x, id == KernelId::Conv ? src : hint),
      anyDesc(w, id == KernelId::Conv ? weights : hint),
      anyDesc(y, id == KernelId::Conv ? dst : hint), g.strides, g.dilations, g.padBegin,
      g.padEnd);
  dnnl::convolution_forward::primitive_desc forward(forwardDesc, engine);
  if (id == KernelId::Conv) {
    *chosen = {forward.src_desc(), forward.weights_desc(), forward.dst_desc()};
    *impl = forward.impl_info_str();
    return dnnl::convolution_forward(forward);
  }
  if (id == KernelId::ConvBackwardData) {
    dnnl::convolution_backward_data::primitive_desc pd(
        dnnl::convolution_backward_data::desc(dnnl::algorithm::convolution_direct,
                                              anyDesc(x, src), anyDesc(w, weights),
                                              anyDesc(y, dst), g.strides, g.dilations,
                                              g.padBegin, g.padEnd),
        engine, forward);
    *chosen = {pd.diff_src_desc(), pd.weights_desc(), pd.diff_dst_desc()};
    *impl = pd.impl_info_str();
    return dnnl::convolution_backward_data(pd);
  }
  dnnl::convolution_backward_weights::primitive_desc pd(
      dnnl::convolution_backward_weights::desc(dnnl::algorithm::convolution_direct,
                                               anyDesc(x, src), anyDesc(w, weights),
                                               anyDesc(y, dst), g.strides, g.dilations,
                                               g.padBegin, g.padEnd),
      engine, forward);
  *chosen = {pd.src_desc(), pd.diff_weights_desc(), pd.diff_dst_desc()};
  *impl = pd.impl_info_str();
  return dnnl::convolution_backward_weights(pd);
}

/// One tensor of a convolution: its plain bytes in the plan and the layout
/// the primitive computes on. Where they differ, a oneDNN reorder moves the
/// tensor through a scratch buffer the session's GEMMs and convolutions
/// share (kernels run one at a time). On the emulated path a low-precision
/// tensor is first widened to plain f32 (and a result rounded back) with
/// the runtime's vector conversions: oneDNN 2.6's f16 reorders are scalar.
struct ConvOperand {
  int arg; // DNNL_ARG_*
  void *data;
  DType storage;
  int64_t count;
  dnnl::memory::desc plain, used; // plain: f32 when widened
  std::optional<dnnl::reorder> reorder;
  std::vector<float> *scratch = nullptr, *widened = nullptr;
  size_t zeroBytes = 0; // a filter gradient with cut taps: zeroed first
};

class ConvKernel : public CpuKernel {
public:
  ConvKernel(CpuContext &context, dnnl::primitive primitive, std::vector<ConvOperand> inputs,
             ConvOperand output)
      : context(context), primitive(std::move(primitive)), inputs(std::move(inputs)),
        output(std::move(output)) {}

  Status run() override {
    dnnl::stream &stream = *context.stream;
    std::unordered_map<int, dnnl::memory> args;
    try {
      for (ConvOperand &in : inputs) {
        void *data = in.data;
        if (in.widened) {
          cpu::widen(in.storage, in.data, in.widened->data(), in.count);
          data = in.widened->data();
        }
        dnnl::memory plain(in.plain, *context.engine, data);
        if (!in.reorder) {
          args.emplace(in.arg, plain);
          continue;
        }
        dnnl::memory used(in.used, *context.engine, in.scratch->data());
        in.reorder->execute(stream, plain, used);
        args.emplace(in.arg, used);
      }
      dnnl::memory plainOut(output.plain, *context.engine,
                            output.widened ? output.widened->data() : output.data);
      std::optional<dnnl::memory> usedOut;
      if (output.reorder)
        usedOut = dnnl::memory(output.used, *context.engine, output.scratch->data());
      args.emplace(output.arg, usedOut ? *usedOut : plainOut);
      if (output.zeroBytes)
        std::memset(output.widened ? output.widened->data() : output.data, 0, output.zeroBytes);
      primitive.execute(stream, args);
      if (output.reorder)
        output.reorder->execute(stream, *usedOut, plainOut);
      stream.wait();
      if (output.widened)
        cpu::narrow(output.storage, output.widened->data(), output.data, output.count);
    } catch (const dnnl::error &e) {
      return Status::error(std::string("oneDNN: ") + e.what());
    }
    return Status::ok();
  }

private:
  CpuContext &context;
  dnnl::primitive primitive;
  std::vector<ConvOperand> inputs;
  ConvOperand output;
};

/// A plain row-major descriptor of `tensor` in `dtype`; the filter is seen
/// grouped, and as the view of its live taps.
dnnl::memory::desc plainOf(const TensorRef &tensor, DType dtype, bool isWeights,
                           int64_t group, const LiveTaps &live) {
  if (!isWeights)
    return plainDesc(dims(tensor.shape.begin(), tensor.shape.end()), dtype);
  dims full = weightsDims(tensor.shape, group);
  dnnl::memory::desc plain = plainDesc(full, dtype);
  if (live.all)
    return plain;
  size_t spatialAt = full.size() - live.first.size();
  dims cut = full, offsets(full.size(), 0);
  for (size_t d = 0; d < live.first.size(); ++d) {
    cut[spatialAt + d] = live.count[d];
    offsets[spatialAt + d] = live.first[d];
  }
  return plain.submemory_desc(cut, offsets);
}

} // namespace

Status buildConvolution(const proto::Kernel &kernel, KernelId id,
                        const std::vector<TensorRef> &in, const TensorRef &out,
                        CpuContext &context, std::unique_ptr<CpuKernel> *result) {
  ConvTensors t;
  ConvGeometry checked;
  AMPRT_RETURN_IF_ERROR(checkConvolution(kernel, id, in, out, &t, &checked));
  Geometry g = oneDnnGeometry(checked);
  LiveTaps live = liveTaps(t, &g);
  ConvTensors cut = t; // the primitive's view: the live taps only
  for (size_t d = 0; d < live.count.size(); ++d)
    cut.weights.shape[d + 2] = live.count[d];
  DType low = in[0].dtype;
  if (smallMapByGemm(id, t, g, context))
    return buildSmallMapByGemm(id, t, g, live, context, result);
  // The oneDNN roles of in[0], in[1], out, and which of them is the weights.
  int args[3];
  int weightsSlot;
  if (id == KernelId::Conv)
    args[0] = DNNL_ARG_SRC, args[1] = DNNL_ARG_WEIGHTS, args[2] = DNNL_ARG_DST, weightsSlot = 1;
  else if (id == KernelId::ConvBackwardData)
    args[0] = DNNL_ARG_DIFF_DST, args[1] = DNNL_ARG_WEIGHTS, args[2] = DNNL_ARG_DIFF_SRC,
    weightsSlot = 1;
  else
    args[0] = DNNL_ARG_SRC, args[1] = DNNL_ARG_DIFF_DST, args[2] = DNNL_ARG_DIFF_WEIGHTS,
    weightsSlot = 2;
  try {
    // Native: the operands' type in, the result's type out. Emulated (no
    // kernel, or only oneDNN's slow reference one, for a low type here) or
    // widened by choice (CpuGemmChoice.cpp): everything in f32, operands
    // widened and the result rounded around it.
    ConvDescs chosen;
    std::string impl;
    std::optional<dnnl::primitive> primitive;
    DType src = id == KernelId::ConvBackwardData ? out.dtype : low;
    DType weights = id == KernelId::ConvBackwardFilter ? out.dtype : low;
    DType dst = id == KernelId::Conv ? out.dtype : low;
    if (context.runsNative(low, product(t.dst.shape, 2))) {
      try {
        primitive =
            makePrimitive(id, cut, g, src, weights, dst, *context.engine, &chosen, &impl);
        if (low != DType::F32 && impl.find("ref") != std::string::npos)
          primitive.reset();
      } catch (const dnnl::error &) {
        if (low == DType::F32)
          throw;
      }
      if (!primitive)
        context.emulatedGemms.insert(low);
    }
    bool emulated = !primitive;
    if (emulated) {
      primitive = makePrimitive(id, cut, g, DType::F32, DType::F32, DType::F32, *context.engine,
                                &chosen, &impl);
    }
    auto usedOf = [&](int arg) {
      switch (arg) {
      case DNNL_ARG_SRC:
      case DNNL_ARG_DIFF_SRC:
        return chosen.src;
      case DNNL_ARG_WEIGHTS:
      case DNNL_ARG_DIFF_WEIGHTS:
        return chosen.weights;
      default:
        return chosen.dst;
      }
    };
    std::vector<float> *scratch[3] = {&context.stagingA, &context.stagingB, &context.stagingC};
    std::vector<float> *widened[3] = {&context.widenedA, &context.widenedB, &context.widenedC};
    const TensorRef *tensors[3] = {&in[0], &in[1], &out};
    ConvOperand operands[3];
    for (int i = 0; i < 3; ++i) {
      ConvOperand &o = operands[i];
      o.arg = args[i];
      o.data = tensors[i]->data;
      o.storage = tensors[i]->dtype;
      o.count = tensors[i]->size();
      if (emulated && o.storage != DType::F32) {
        o.widened = widened[i];
        if (o.widened->size() < static_cast<size_t>(o.count))
          o.widened->resize(o.count);
      }
      o.plain = plainOf(*tensors[i], o.widened ? DType::F32 : o.storage, i == weightsSlot,
                        g.group, live);
      if (i == 2 && i == weightsSlot && !live.all)
        o.zeroBytes = o.count * dtypeSize(o.widened ? DType::F32 : o.storage);
      o.used = usedOf(args[i]);
      if (o.used == o.plain)
        continue;
      o.reorder = i < 2 ? dnnl::reorder(dnnl::reorder::primitive_desc(
                              *context.engine, o.plain, *context.engine, o.used))
                        : dnnl::reorder(dnnl::reorder::primitive_desc(
                              *context.engine, o.used, *context.engine, o.plain));
      o.scratch = scratch[i];
      size_t floats = (o.used.get_size() + sizeof(float) - 1) / sizeof(float);
      if (o.scratch->size() < floats)
        o.scratch->resize(floats);
    }
    *result = std::make_unique<ConvKernel>(
        context, std::move(*primitive), std::vector<ConvOperand>{operands[0], operands[1]},
        operands[2]);
  } catch (const dnnl::error &e) {
    return Status::error(std::string("oneDNN: ") + e.what());
  }
  return Status::ok();
}

} // namespace amprt
