//===- CnnChecks.cpp - the convolutional kernels' checks and geometry -----===//

#include "CnnChecks.h"

namespace amprt {
namespace {

/// The padded input left over after a window's span (dilation * (taps - 1)
/// + 1), false when the window exceeds it or a sum or product leaves int64
/// (hostile plans; the positions the kernels form stay below this sum plus
/// a stride).
bool roomAfterWindow(int64_t in, int64_t padBegin, int64_t padEnd, int64_t taps,
                     int64_t dilation, int64_t *room) {
  int64_t padded, span;
  if (taps < 1 || __builtin_add_overflow(in, padBegin, &padded) ||
      __builtin_add_overflow(padded, padEnd, &padded) ||
      __builtin_mul_overflow(dilation, taps - 1, &span) || span >= padded)
    return false;
  *room = padded - span - 1;
  return true;
}

Status checkConvShapes(const ConvTensors &t, const ConvGeometry &g) {
  const auto &x = t.src.shape, &w = t.weights.shape, &y = t.dst.shape;
  size_t rank = x.size();
  if (rank < 3 || w.size() != rank || y.size() != rank)
    return Status::error("expects input, filter and result of one rank, at least 3");
  if (w[0] % g.group != 0 || w[1] * g.group != x[1] || y[0] != x[0] || y[1] != w[0])
    return Status::error("channels and groups do not fit");
  for (size_t d = 0; d + 2 < rank; ++d) {
    int64_t room;
    if (!roomAfterWindow(x[d + 2], g.padBegin[d], g.padEnd[d], w[d + 2], g.dilations[d], &room))
      return Status::error("the filter exceeds the padded input in spatial dim " +
                           std::to_string(d));
    if (room / g.strides[d] + 1 != y[d + 2])
      return Status::error("the result's spatial size does not follow from the geometry");
  }
  return Status::ok();
}

/// Reads a pooling's window and checks it against x and y [N, C, spatial...]
/// of one rank.
Status readWindow(const proto::Kernel &kernel, const TensorRef &x, const TensorRef &y,
                  PoolGeometry *g) {
  size_t spatial = x.shape.size() - 2;
  if (spatial > static_cast<size_t>(kMaxPoolDims))
    return Status::error("at most " + std::to_string(kMaxPoolDims) + " spatial dims");
  std::vector<int64_t> kernelSizes, strides, pads, dilations;
  if (!listAttr(kernel, "kernel", spatial, std::nullopt, &kernelSizes) ||
      !listAttr(kernel, "strides", spatial, std::nullopt, &strides) ||
      !listAttr(kernel, "pads", 2 * spatial, std::nullopt, &pads) ||
      !listAttr(kernel, "dilations", spatial, 1, &dilations) || // avg_pool has none
      anyBelow(kernelSizes, 1) || anyBelow(strides, 1) || anyBelow(dilations, 1) ||
      anyBelow(pads, 0))
    return Status::error("needs kernel, strides and pads for " + std::to_string(spatial) +
                         " spatial dims");
  g->rank = static_cast<int>(spatial);
  for (size_t d = 0; d < spatial; ++d) {
    g->in[d] = x.shape[d + 2];
    g->out[d] = y.shape[d + 2];
    g->kernel[d] = kernelSizes[d];
    g->strides[d] = strides[d];
    g->padBegin[d] = pads[d];
    g->padEnd[d] = pads[d + spatial];
    g->dilations[d] = dilations[d];
    int64_t room, beyond;
    if (!roomAfterWindow(g->in[d], g->padBegin[d], g->padEnd[d], g->kernel[d], g->dilations[d],
                         &room) ||
        __builtin_add_overflow(room, g->strides[d], &beyond))
      return Status::error("the window exceeds the padded input (or its positions int64) in "
                           "spatial dim " +
                           std::to_string(d));
    int64_t roundedDown = room / g->strides[d] + 1;
    if (g->out[d] != roundedDown && g->out[d] != roundedDown + (room % g->strides[d] != 0))
      return Status::error("the result's spatial size does not follow from the window in "
                           "spatial dim " +
                           std::to_string(d));
  }
  // The taps the kernel visits: over the planes, the product across dims of
  // each dim's taps inside, summed over its results (a loop as long as the
  // result's dims, which the kernel walks anyway).
  double taps = static_cast<double>(x.shape[0]) * static_cast<double>(x.shape[1]);
  for (int d = 0; d < g->rank; ++d) {
    double sum = 0;
    for (int64_t o = 0; o < g->out[d]; ++o) {
      TapRange r = tapsOfResult(*g, d, o);
      sum += static_cast<double>(r.end - r.begin);
    }
    taps *= sum;
  }
  if (taps > kMaxPoolTaps)
    return Status::error("the pooling visits " + std::to_string(taps) +
                         " taps, more than 2^36 (windows far larger than their strides)");
  return Status::ok();
}

/// Activations of one shape and float type, per-channel tensors f32 [C].
Status checkNormTensors(const std::vector<const TensorRef *> &activations,
                        const std::vector<const TensorRef *> &perChannel) {
  const TensorRef &x = *activations.front();
  if (x.shape.size() < 2)
    return Status::error("expects activations [N, C, ...]");
  for (const TensorRef *a : activations)
    if (a->shape != x.shape || a->dtype != x.dtype)
      return Status::error("activations and their gradients must share shape and type");
  if (!isFloat(x.dtype))
    return Status::error("expects float activations");
  for (const TensorRef *c : perChannel)
    if (c->dtype != DType::F32 || c->shape != std::vector<int64_t>{x.shape[1]})
      return Status::error("scale, bias and statistics must be f32 [" +
                           std::to_string(x.shape[1]) + "]");
  return Status::ok();
}

} // namespace

Status checkConvolution(const proto::Kernel &kernel, KernelId id, const std::vector<TensorRef> &in,
                        const TensorRef &out, ConvTensors *t, ConvGeometry *g) {
  *t = id == KernelId::Conv               ? ConvTensors{in[0], in[1], out}
       : id == KernelId::ConvBackwardData ? ConvTensors{out, in[1], in[0]}
                                          : ConvTensors{in[0], out, in[1]};
  if (t->src.shape.size() < 3)
    return Status::error("expects input, filter and result of one rank, at least 3");
  size_t spatial = t->src.shape.size() - 2;
  std::vector<int64_t> pads;
  if (!listAttr(kernel, "strides", spatial, std::nullopt, &g->strides) ||
      !listAttr(kernel, "pads", 2 * spatial, std::nullopt, &pads) ||
      !listAttr(kernel, "dilations", spatial, std::nullopt, &g->dilations) ||
      anyBelow(g->strides, 1) || anyBelow(g->dilations, 1) || anyBelow(pads, 0))
    return Status::error("needs strides, pads and dilations for " + std::to_string(spatial) +
                         " spatial dims (strides and dilations >= 1, pads >= 0)");
  g->padBegin.assign(pads.begin(), pads.begin() + spatial);
  g->padEnd.assign(pads.begin() + spatial, pads.end());
  auto group = kernel.attrs().find("group");
  g->group = group == kernel.attrs().end() ? 1 : static_cast<int64_t>(group->second);
  if (g->group < 1)
    return Status::error("group must be at least 1");
  AMPRT_RETURN_IF_ERROR(checkConvShapes(*t, *g));
  DType low = in[0].dtype;
  if (in[1].dtype != low)
    return Status::error("operands must share an element type");
  if (out.dtype != low && out.dtype != DType::F32)
    return Status::error("the result must be the operands' type or f32");
  if (!isFloat(low) || !isFloat(out.dtype))
    return Status::error("expects float tensors");
  return Status::ok();
}

Status checkMaxPool(const proto::Kernel &kernel, const TensorRef &x, const TensorRef &y,
                    const TensorRef &indices, PoolGeometry *geometry) {
  if (x.shape.size() < 3 || y.shape.size() != x.shape.size() || indices.shape != y.shape ||
      y.shape[0] != x.shape[0] || y.shape[1] != x.shape[1])
    return Status::error("expects input [N, C, spatial...] and two results of one pooled shape");
  if (indices.dtype != DType::I64 || y.dtype != x.dtype || !isFloat(x.dtype))
    return Status::error("the result takes the input's float type, the indices are int64");
  return readWindow(kernel, x, y, geometry);
}

Status checkMaxPoolGrad(const TensorRef &dy, const TensorRef &indices, const TensorRef &dx) {
  if (dy.shape != indices.shape || indices.dtype != DType::I64 || dx.dtype != dy.dtype ||
      !isFloat(dx.dtype) || dx.shape.size() != dy.shape.size() || dy.shape.size() < 3 ||
      dx.shape[0] != dy.shape[0] || dx.shape[1] != dy.shape[1])
    return Status::error("expects a gradient and int64 indices of one shape, and a result of "
                         "the gradient's type with its batch and channels");
  if (dx.shape.size() - 2 > static_cast<size_t>(kMaxPoolDims))
    return Status::error("at most " + std::to_string(kMaxPoolDims) + " spatial dims");
  return Status::ok();
}

Status checkAvgPool(const proto::Kernel &kernel, const TensorRef &x, const TensorRef &y,
                    PoolGeometry *geometry) {
  if (x.shape.size() < 3 || y.shape.size() != x.shape.size() || y.shape[0] != x.shape[0] ||
      y.shape[1] != x.shape[1] || x.dtype != y.dtype || !isFloat(x.dtype))
    return Status::error("expects [N, C, spatial...] tensors of one type and batch and channels");
  return readWindow(kernel, x, y, geometry);
}

Status checkBatchNorm(const proto::Kernel &kernel, KernelId id, const std::vector<TensorRef> &in,
                      const std::vector<TensorRef> &out, float *epsilon) {
  *epsilon = static_cast<float>(attr(kernel, "epsilon"));
  if (!(*epsilon > 0))
    return Status::error("epsilon must be positive");
  if (id == KernelId::BatchNorm)
    // (x, scale, shift, running mean, running var) ->
    // (y, new running mean, new running var, batch mean, batch var)
    return checkNormTensors({&in[0], &out[0]}, {&in[1], &in[2], &in[3], &in[4], &out[1],
                                                &out[2], &out[3], &out[4]});
  if (id == KernelId::BatchNormInference) // (x, scale, shift, mean, var) -> y
    return checkNormTensors({&in[0], &out[0]}, {&in[1], &in[2], &in[3], &in[4]});
  // batch_norm_grad: (dy, x, scale, mean, var) -> (dx, dscale, dshift)
  return checkNormTensors({&in[0], &in[1], &out[0]}, {&in[2], &in[3], &in[4], &out[1], &out[2]});
}

Status checkDataMovement(const proto::Kernel &kernel, KernelId id,
                         const std::vector<TensorRef> &in, const TensorRef &out,
                         DataMovement *m) {
  size_t rank = out.shape.size();
  for (const TensorRef &t : in)
    if (t.dtype != out.dtype || t.shape.size() != rank)
      return Status::error("inputs and result must share element type and rank");
  if (id == KernelId::Slice) {
    if (!listAttr(kernel, "offsets", rank, std::nullopt, &m->corner) || anyBelow(m->corner, 0))
      return Status::error("needs an offset >= 0 for each dim");
    for (size_t d = 0; d < rank; ++d)
      if (m->corner[d] + out.shape[d] > in[0].shape[d])
        return Status::error("the box leaves the input in dim " + std::to_string(d));
    return Status::ok();
  }
  if (id == KernelId::Pad) {
    std::vector<int64_t> pads;
    if (!listAttr(kernel, "pads", 2 * rank, std::nullopt, &pads) || anyBelow(pads, 0))
      return Status::error("needs a begin and an end pad >= 0 for each dim");
    for (size_t d = 0; d < rank; ++d)
      if (in[0].shape[d] + pads[d] + pads[d + rank] != out.shape[d])
        return Status::error("the result's shape is not the padded input's");
    m->corner.assign(pads.begin(), pads.begin() + rank);
    m->value = static_cast<float>(attr(kernel, "value"));
    return isFloat(out.dtype) ? Status::ok() : Status::error("pad expects float tensors");
  }
  if (id == KernelId::Transpose) {
    std::vector<int64_t> &perm = m->permutation;
    if (!listAttr(kernel, "permutation", rank, std::nullopt, &perm))
      return Status::error("needs a permutation entry for each dim");
    std::vector<bool> seen(rank, false);
    for (size_t d = 0; d < rank; ++d) {
      if (perm[d] < 0 || perm[d] >= static_cast<int64_t>(rank) || seen[perm[d]])
        return Status::error("the permutation is not one of the dims");
      seen[perm[d]] = true;
      if (out.shape[d] != in[0].shape[perm[d]])
        return Status::error("the result's shape is not the permuted input's");
    }
    return isFloat(out.dtype) ? Status::ok() : Status::error("transpose expects float tensors");
  }
  // Concat.
  auto axisAttr = kernel.attrs().find("axis");
  m->axis = axisAttr == kernel.attrs().end() ? -1 : static_cast<int64_t>(axisAttr->second);
  if (m->axis < 0 || m->axis >= static_cast<int64_t>(rank))
    return Status::error("axis must be a dim of the result");
  int64_t total = 0;
  for (const TensorRef &t : in) {
    for (size_t d = 0; d < rank; ++d)
      if (static_cast<int64_t>(d) != m->axis && t.shape[d] != out.shape[d])
        return Status::error("inputs differ from the result in dim " + std::to_string(d));
    total += t.shape[m->axis];
  }
  if (total != out.shape[m->axis])
    return Status::error("the inputs' sizes along the axis do not add up to the result's");
  return Status::ok();
}

Status checkDropout(const proto::Kernel &kernel, const std::vector<TensorRef> &in,
                    const TensorRef &out, DropoutParams *p) {
  const TensorRef &x = in[0], &counter = in[1];
  if (x.dtype != out.dtype || x.shape != out.shape || !isFloat(x.dtype))
    return Status::error("input and result must share float type and shape");
  AMPRT_RETURN_IF_ERROR(requireScalar(counter, DType::I64, "the step counter"));
  double ratio = attr(kernel, "ratio");
  if (!(ratio >= 0.0 && ratio < 1.0))
    return Status::error("ratio must be in [0, 1)");
  p->seed = static_cast<uint64_t>(static_cast<int64_t>(attr(kernel, "seed")));
  p->threshold = static_cast<uint64_t>(ratio * 4294967296.0);
  p->scale = static_cast<float>(1.0 / (1.0 - ratio));
  return Status::ok();
}

} // namespace amprt
