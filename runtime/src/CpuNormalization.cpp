//===- CpuNormalization.cpp - batch normalization on the CPU (oneDNN) ----===//
//
// batch_norm (training: batch statistics, then the running averages),
// batch_norm_inference and batch_norm_grad are oneDNN batch-normalization
// primitives with f32 statistics, scale and shift. The activation [N, C,
// spatial...] is seen as [N, C, S, 1] (S the spatial size; 1 for [N, C]): the
// statistics do not care how the spatial dims are grouped. A low-precision
// activation is widened to f32 staging and the result rounded once on the
// way out (faster than oneDNN 2.6's bf16 kernel on this layout).
//
//===----------------------------------------------------------------------===//

#include "CpuConversions.h"
#include "CpuKernelSupport.h"

#include "CpuDnnl.h"

#include <optional>
#include <string>
#include <unordered_map>

namespace amprt {
namespace {

using dims = dnnl::memory::dims;

/// The activation's oneDNN view [N, C, S, 1], plain row-major f32 (nchw,
/// which oneDNN's optimized kernels take; they refuse 3-D ncw).
dnnl::memory::desc activationDesc(const std::vector<int64_t> &shape) {
  int64_t spatial = 1;
  for (size_t d = 2; d < shape.size(); ++d)
    spatial *= shape[d];
  return dnnl::memory::desc({shape[0], shape[1], spatial, 1}, dnnl::memory::data_type::f32,
                            dnnl::memory::format_tag::nchw);
}

/// One bound oneDNN argument; `staged` activations go through f32 staging.
struct Binding {
  int arg;
  TensorRef tensor;
  bool staged = false;
  std::vector<float> *staging = nullptr;
};

/// A batch-norm primitive over its bindings; `afterwards` runs once the
/// primitive has (the running-average update).
class NormKernel : public CpuKernel {
public:
  NormKernel(CpuContext &context, dnnl::primitive primitive, const std::vector<int64_t> &shape,
             std::vector<Binding> inputs, std::vector<Binding> outputs,
             std::function<void()> afterwards)
      : context(context), primitive(std::move(primitive)), activation(activationDesc(shape)),
        perChannel({shape[1]}, dnnl::memory::data_type::f32, dnnl::memory::format_tag::a),
        inputs(std::move(inputs)), outputs(std::move(outputs)),
        afterwards(std::move(afterwards)) {}

  /// oneDNN 2.6's backward asks for a shift (DNNL_ARG_SHIFT) it never reads.
  void bindUnreadShift(int64_t channels) { shiftPlaceholder.assign(channels, 0.0f); }

  Status run() override {
    std::unordered_map<int, dnnl::memory> args;
    auto bind = [&](Binding &b, bool widen) {
      void *data = b.tensor.data;
      if (b.staged) {
        if (widen)
          cpu::widen(b.tensor.dtype, b.tensor.data, b.staging->data(), b.tensor.size());
        data = b.staging->data();
      }
      const auto &desc = b.tensor.shape.size() == 1 ? perChannel : activation;
      args.emplace(b.arg, dnnl::memory(desc, *context.engine, data));
    };
    for (Binding &b : inputs)
      bind(b, true);
    for (Binding &b : outputs)
      bind(b, false);
    if (!shiftPlaceholder.empty())
      args.emplace(DNNL_ARG_SHIFT,
                   dnnl::memory(perChannel, *context.engine, shiftPlaceholder.data()));
    try {
      primitive.execute(*context.stream, args);
      context.stream->wait();
    } catch (const dnnl::error &e) {
      return Status::error(std::string("oneDNN: ") + e.what());
    }
    for (Binding &b : outputs)
      if (b.staged)
        cpu::narrow(b.tensor.dtype, b.staging->data(), b.tensor.data, b.tensor.size());
    if (afterwards)
      afterwards();
    return Status::ok();
  }

private:
  CpuContext &context;
  dnnl::primitive primitive;
  dnnl::memory::desc activation, perChannel; // f32, the primitive's views
  std::vector<Binding> inputs, outputs;
  std::function<void()> afterwards;
  std::vector<float> shiftPlaceholder;
};

/// Checks the kernel's tensors: activations [N, C, ...] of one float type,
/// per-channel tensors f32 [C].
Status checkTensors(const std::vector<const TensorRef *> &activations,
                    const std::vector<const TensorRef *> &perChannel) {
  const TensorRef &x = *activations.front();
  if (x.shape.size() < 2)
    return Status::error("expects activations [N, C, ...]");
  for (const TensorRef *a : activations)
    if (a->shape != x.shape || a->dtype != x.dtype)
      return Status::error("activations and their gradients must share shape and type");
  if (x.dtype != DType::F32 && x.dtype != DType::BF16 && x.dtype != DType::F16)
    return Status::error("expects float activations");
  for (const TensorRef *c : perChannel)
    if (c->dtype != DType::F32 || c->shape != std::vector<int64_t>{x.shape[1]})
      return Status::error("scale, bias and statistics must be f32 [" +
                           std::to_string(x.shape[1]) + "]");
  return Status::ok();
}

} // namespace

Status buildBatchNorm(const proto::Kernel &kernel, KernelId id, const std::vector<TensorRef> &in,
                      const std::vector<TensorRef> &out, CpuContext &context,
                      std::unique_ptr<CpuKernel> *result) {
  using flags = dnnl::normalization_flags;
  float epsilon = static_cast<float>(attr(kernel, "epsilon"));
  if (!(epsilon > 0))
    return Status::error("epsilon must be positive");
  // Roles, per kernel: activations (staged when emulated) and per-channel f32.
  std::vector<Binding> inputs, outputs;
  std::vector<const TensorRef *> activations, perChannel;
  flags base = flags::use_scale | flags::use_shift;
  std::function<void()> afterwards;
  if (id == KernelId::BatchNorm) {
    inputs = {{DNNL_ARG_SRC, in[0]}, {DNNL_ARG_SCALE, in[1]}, {DNNL_ARG_SHIFT, in[2]}};
    outputs = {{DNNL_ARG_DST, out[0]}, {DNNL_ARG_MEAN, out[3]}, {DNNL_ARG_VARIANCE, out[4]}};
    activations = {&in[0], &out[0]};
    perChannel = {&in[1], &in[2], &in[3], &in[4], &out[1], &out[2], &out[3], &out[4]};
    float momentum = static_cast<float>(attr(kernel, "momentum"));
    // running = running * momentum + batch * (1 - momentum), per element,
    // so the new average may be written over the old one.
    afterwards = [momentum, in, out] {
      for (int k = 0; k < 2; ++k) {
        const float *running = in[3 + k].f32(), *batch = out[3 + k].f32();
        float *updated = out[1 + k].f32();
        for (int64_t c = 0; c < in[3 + k].size(); ++c)
          updated[c] = running[c] * momentum + batch[c] * (1.0f - momentum);
      }
    };
  } else if (id == KernelId::BatchNormInference) {
    inputs = {{DNNL_ARG_SRC, in[0]},   {DNNL_ARG_SCALE, in[1]},   {DNNL_ARG_SHIFT, in[2]},
              {DNNL_ARG_MEAN, in[3]}, {DNNL_ARG_VARIANCE, in[4]}};
    outputs = {{DNNL_ARG_DST, out[0]}};
    activations = {&in[0], &out[0]};
    perChannel = {&in[1], &in[2], &in[3], &in[4]};
    base = base | flags::use_global_stats;
  } else { // BatchNormGrad: (grad, input, scale, mean, var)
    inputs = {{DNNL_ARG_DIFF_DST, in[0]}, {DNNL_ARG_SRC, in[1]}, {DNNL_ARG_SCALE, in[2]},
              {DNNL_ARG_MEAN, in[3]},     {DNNL_ARG_VARIANCE, in[4]}};
    outputs = {{DNNL_ARG_DIFF_SRC, out[0]},
               {DNNL_ARG_DIFF_SCALE, out[1]},
               {DNNL_ARG_DIFF_SHIFT, out[2]}};
    activations = {&in[0], &in[1], &out[0]};
    perChannel = {&in[2], &in[3], &in[4], &out[1], &out[2]};
    if (attr(kernel, "use_global_stats") != 0)
      base = base | flags::use_global_stats;
  }
  AMPRT_RETURN_IF_ERROR(checkTensors(activations, perChannel));
  const TensorRef &x = *activations.front();
  try {
    // Low-precision activations always go through f32 staging: oneDNN 2.6's
    // plain-layout bf16 batch norm took twice as long as widening, an f32
    // kernel and rounding (ResNet-18 on AVX-512 BF16).
    auto data = activationDesc(x.shape);
    auto make = [&] {
      auto prop = id == KernelId::BatchNormInference ? dnnl::prop_kind::forward_inference
                                                     : dnnl::prop_kind::forward_training;
      dnnl::batch_normalization_forward::primitive_desc forward(
          dnnl::batch_normalization_forward::desc(prop, data, epsilon, base), *context.engine);
      if (id != KernelId::BatchNormGrad)
        return dnnl::primitive(dnnl::batch_normalization_forward(forward));
      dnnl::batch_normalization_backward::primitive_desc backward(
          dnnl::batch_normalization_backward::desc(dnnl::prop_kind::backward, data, data,
                                                   epsilon, base),
          *context.engine, forward);
      return dnnl::primitive(dnnl::batch_normalization_backward(backward));
    };
    dnnl::primitive primitive = make();
    std::vector<float> *stagings[] = {&context.stagingA, &context.stagingB, &context.stagingC};
    size_t nextStaging = 0;
    for (auto *bindings : {&inputs, &outputs})
      for (Binding &b : *bindings)
        if (b.tensor.shape.size() > 1 && b.tensor.dtype != DType::F32) {
          b.staged = true;
          b.staging = stagings[nextStaging++];
          if (b.staging->size() < static_cast<size_t>(b.tensor.size()))
            b.staging->resize(b.tensor.size());
        }
    auto norm = std::make_unique<NormKernel>(context, std::move(primitive), x.shape,
                                             std::move(inputs), std::move(outputs),
                                             std::move(afterwards));
    if (id == KernelId::BatchNormGrad)
      norm->bindUnreadShift(x.shape[1]);
    *result = std::move(norm);
  } catch (const dnnl::error &e) {
    return Status::error(std::string("oneDNN: ") + e.what());
  }
  return Status::ok();
}

} // namespace amprt
