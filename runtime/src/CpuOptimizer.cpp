//===- CpuOptimizer.cpp - fused optimizer updates -------------------------===//
//
// One pass per parameter over FP32 master weights and state, with the
// per-element math of torch.optim from KernelMath.h.
//
//===----------------------------------------------------------------------===//

#include "CpuConversions.h"
#include "CpuKernelSupport.h"

#include <algorithm>
#include <cstring>
#include <type_traits>

namespace amprt {
namespace {

/// Updates write in place (the plan aliases new and old state); when it did
/// not, the old values are copied to the outputs first. Either way the loops
/// below see distinct, non-aliasing arrays and vectorise.
void prepareInPlace(const float *source, float *target, int64_t count) {
  if (source != target)
    std::memcpy(target, source, count * sizeof(float));
}

/// Elements per block: each block is updated (a vectorised loop), then its
/// low-precision copy is written while the block is still in L1, so the
/// copy costs no extra pass over memory.
constexpr int64_t kBlock = 2048;

/// The update loops over [begin, end), compiled per vector width
/// (AMPRT_VECTOR_CLONES): AdamW's square root and two divisions per element
/// kept the baseline's 4-lane SSE2 loop busy computing, not waiting on
/// memory. `omp simd`: the arrays do not alias (prepareInPlace).
AMPRT_VECTOR_CLONES
void adamwRange(const math::AdamWScalars &s, const float *g, float *p, float *m, float *v,
                int64_t begin, int64_t end) {
#pragma omp simd
  for (int64_t i = begin; i < end; ++i)
    math::adamwElement(s, g[i], p[i], m[i], v[i]);
}
AMPRT_VECTOR_CLONES
void sgdRange(float lr, float momentum, float decay, bool nesterov, const float *g, float *p,
              float *b, int64_t begin, int64_t end) {
#pragma omp simd
  for (int64_t i = begin; i < end; ++i)
    math::sgdElement(lr, momentum, decay, nesterov, g[i], p[i], b[i]);
}

/// Runs `update(begin, end)` over [0, count) block by block and, when `low`
/// is set (bf16 or f16), writes each block's low-precision copy of `param`
/// while the block is still in L1. An empty `update` (a skipped step) writes
/// the copy alone.
template <typename Update>
void updateInBlocks(int64_t count, const float *param, void *low, DType lowType,
                    Update update) {
  size_t lowSize = low ? dtypeSize(lowType) : 0;
#pragma omp parallel for schedule(static) if (count > 32768)
  for (int64_t start = 0; start < count; start += kBlock) {
    int64_t end = std::min(count, start + kBlock);
    update(start, end);
    if (low)
      cpu::narrow(lowType, param + start, static_cast<char *>(low) + start * lowSize,
                  end - start);
  }
}

/// The optional low-precision copy output of an update.
Status lowCopy(const std::vector<TensorRef> &out, size_t index, int64_t count,
               const TensorRef **copy) {
  *copy = out.size() > index ? &out[index] : nullptr;
  if (*copy && ((*copy)->size() != count || ((*copy)->dtype != DType::BF16 &&
                                              (*copy)->dtype != DType::F16)))
    return Status::error("the low-precision weight copy must be bf16 or f16 of the "
                         "parameter's size");
  return Status::ok();
}

} // namespace

Status buildAdamW(const proto::Kernel &kernel, const std::vector<TensorRef> &in,
                  const std::vector<TensorRef> &out, std::unique_ptr<CpuKernel> *result) {
  int64_t count = in[0].size();
  const float *skip;
  AMPRT_RETURN_IF_ERROR(skipFlag(in, 5, &skip));
  for (int i = 0; i < 4; ++i)
    if (in[i].size() != count || in[i].dtype != DType::F32)
      return Status::error("parameter, gradient and moments must be f32 of one size");
  if (in[4].dtype != DType::I64 || in[4].size() != 1)
    return Status::error("the step counter must be one int64");
  for (size_t o = 0; o < 3; ++o)
    if (out[o].size() != count || out[o].dtype != DType::F32)
      return Status::error("outputs must be f32 of the parameter's size");
  const TensorRef *copy;
  AMPRT_RETURN_IF_ERROR(lowCopy(out, 3, count, &copy));
  void *low = copy ? copy->data : nullptr;
  DType lowType = copy ? copy->dtype : DType::F32;
  float *p = in[0].f32(), *g = in[1].f32(), *m = in[2].f32(), *v = in[3].f32();
  int64_t *step = in[4].i64();
  float *po = out[0].f32(), *mo = out[1].f32(), *vo = out[2].f32();
  double lr = attr(kernel, "lr"), beta1 = attr(kernel, "beta1"), beta2 = attr(kernel, "beta2"),
         eps = attr(kernel, "eps"), decay = attr(kernel, "weight_decay");
  bool huggingface = attr(kernel, "huggingface") != 0;
  *result = lambda([=] {
    prepareInPlace(p, po, count);
    prepareInPlace(m, mo, count);
    prepareInPlace(v, vo, count);
    // A non-finite gradient keeps everything as it was (the copy is rewritten).
    if (skip && skip[0] != 0.0f) {
      updateInBlocks(count, po, low, lowType, [](int64_t, int64_t) {});
      return Status::ok();
    }
    auto s = math::adamwScalars(lr, beta1, beta2, eps, decay, step[0] + 1, huggingface);
    updateInBlocks(count, po, low, lowType,
                   [&](int64_t begin, int64_t end) { adamwRange(s, g, po, mo, vo, begin, end); });
    return Status::ok();
  });
  return Status::ok();
}

Status buildSgd(const proto::Kernel &kernel, const std::vector<TensorRef> &in,
                const std::vector<TensorRef> &out, std::unique_ptr<CpuKernel> *result) {
  int64_t count = in[0].size();
  if (in[1].size() != count || in[2].size() != count || out[0].size() != count ||
      out[1].size() != count)
    return Status::error("parameter, gradient and buffer differ in size");
  AMPRT_RETURN_IF_ERROR(requireF32({in[0], in[1], in[2], out[0], out[1]}, "sgd_update"));
  const TensorRef *copy;
  AMPRT_RETURN_IF_ERROR(lowCopy(out, 2, count, &copy));
  void *low = copy ? copy->data : nullptr;
  DType lowType = copy ? copy->dtype : DType::F32;
  const float *skip;
  AMPRT_RETURN_IF_ERROR(skipFlag(in, 3, &skip));
  float *p = in[0].f32(), *g = in[1].f32(), *b = in[2].f32();
  float *po = out[0].f32(), *bo = out[1].f32();
  float lr = attr(kernel, "lr"), momentum = attr(kernel, "momentum"),
        decay = attr(kernel, "weight_decay");
  bool nesterov = attr(kernel, "nesterov") != 0.0;
  *result = lambda([=] {
    prepareInPlace(p, po, count);
    prepareInPlace(b, bo, count);
    if (skip && skip[0] != 0.0f) {
      updateInBlocks(count, po, low, lowType, [](int64_t, int64_t) {});
      return Status::ok();
    }
    updateInBlocks(count, po, low, lowType, [&](int64_t begin, int64_t end) {
      sgdRange(lr, momentum, decay, nesterov, g, po, bo, begin, end);
    });
    return Status::ok();
  });
  return Status::ok();
}

} // namespace amprt
