//===- CpuKernelSupport.h - helpers shared by the CPU kernels ---*- C++ -*-===//
#ifndef AMPRT_CPUKERNELSUPPORT_H
#define AMPRT_CPUKERNELSUPPORT_H

#include "CpuKernels.h"
#include "KernelChecks.h"
#include "KernelMath.h"

#include <algorithm>
#include <functional>

#include <omp.h>

namespace amprt {

/// Compiles a hot loop once per x86 vector width and lets the loader pick
/// the widest the CPU has (an ifunc): the runtime is built for the x86-64
/// baseline (SSE2) so that one binary runs on every CPU, as PyTorch's
/// kernels dispatch. The clones give the same values (no FMA contraction).
/// x86-64-v4 is AVX-512 F, BW, DQ, VL and CD: BW has the 16-bit lane
/// operations that bf16 conversions need.
#if defined(__x86_64__) && defined(__GNUC__)
#define AMPRT_VECTOR_CLONES                                                                    \
  __attribute__((target_clones("arch=x86-64-v4", "avx2", "default")))
#else
#define AMPRT_VECTOR_CLONES
#endif

/// A kernel given as a closure over its bound tensors.
class LambdaKernel : public CpuKernel {
public:
  explicit LambdaKernel(std::function<Status()> body) : body(std::move(body)) {}
  Status run() override { return body(); }

private:
  std::function<Status()> body;
};

inline std::unique_ptr<CpuKernel> lambda(std::function<Status()> body) {
  return std::make_unique<LambdaKernel>(std::move(body));
}

/// Whether work split `parts` ways should open an OpenMP region: not for one
/// part, and not inside a region already. `#pragma omp parallel if (false)`
/// is no answer: it still opens a (one-thread) region, and libgomp makes
/// futex calls for each; the fused chains call the conversions per block of
/// 512 elements inside their own region, which cost more than the arithmetic.
inline bool worthARegion(int64_t parts) { return parts > 1 && !omp_in_parallel(); }

/// Runs `perElement(i)` for i in [0, count), in parallel when it pays.
template <typename Fn> void parallelFor(int64_t count, Fn perElement) {
  if (count <= 32768 || !worthARegion(count)) {
    for (int64_t i = 0; i < count; ++i)
      perElement(i);
    return;
  }
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < count; ++i)
    perElement(i);
}

/// Calls fn(begin, count) over [0, total) in chunks small enough to stay in
/// cache (a pass that rounds after another works on warm data), in parallel.
template <typename Fn> void parallelChunks(int64_t total, Fn fn) {
  constexpr int64_t kChunk = 1 << 15;
  int64_t chunks = (total + kChunk - 1) / kChunk;
  if (!worthARegion(chunks)) {
    for (int64_t c = 0; c < chunks; ++c)
      fn(c * kChunk, std::min(kChunk, total - c * kChunk));
    return;
  }
#pragma omp parallel for schedule(static)
  for (int64_t c = 0; c < chunks; ++c)
    fn(c * kChunk, std::min(kChunk, total - c * kChunk));
}

/// Calls fn(T{}) with T the storage type of `dtype` (float, Bf16 or F16).
template <typename Fn> Status withFloatStorage(DType dtype, Fn fn) {
  switch (dtype) {
  case DType::F32:
    return fn(float{});
  case DType::BF16:
    return fn(math::Bf16{});
  case DType::F16:
    return fn(math::F16{});
  default:
    return Status::error(std::string("expects a float tensor, got ") + dtypeName(dtype));
  }
}

Status requireF32(const std::vector<TensorRef> &tensors, const char *why);

// Builders, one family per file.
/// C = A B, optionally + bias (attr "bias": a third input of C's columns)
/// and relu (attr "relu") applied in f32 before C is rounded.
/// max_pool, avg_pool and their gradients (CpuPooling.cpp).
Status buildPooling(const proto::Kernel &kernel, KernelId id, const std::vector<TensorRef> &in,
                    const std::vector<TensorRef> &out, std::unique_ptr<CpuKernel> *result);
/// conv, conv_backward_data, conv_backward_filter (oneDNN; CpuConvolution.cpp).
Status buildConvolution(const proto::Kernel &kernel, KernelId id,
                        const std::vector<TensorRef> &in, const TensorRef &out,
                        CpuContext &context, std::unique_ptr<CpuKernel> *result);
/// dropout with the counter-based mask of KernelMath.h (CpuElementwise.cpp).
Status buildDropout(const proto::Kernel &kernel, const std::vector<TensorRef> &in,
                    const TensorRef &out, std::unique_ptr<CpuKernel> *result);
/// pad, slice and concat: boxes copied between plain tensors (CpuDataMovement.cpp).
Status buildDataMovement(const proto::Kernel &kernel, KernelId id,
                         const std::vector<TensorRef> &in, const TensorRef &out,
                         std::unique_ptr<CpuKernel> *result);
/// gather, gather_grad (scatter-add).
Status buildGather(const proto::Kernel &kernel, KernelId id, const std::vector<TensorRef> &in,
                   const TensorRef &out, std::unique_ptr<CpuKernel> *result);
/// batch_norm, batch_norm_inference, batch_norm_grad (oneDNN; CpuNormalization.cpp).
Status buildBatchNorm(const proto::Kernel &kernel, KernelId id, const std::vector<TensorRef> &in,
                      const std::vector<TensorRef> &out, CpuContext &context,
                      std::unique_ptr<CpuKernel> *result);
/// layer_norm, layer_norm_grad.
Status buildLayerNorm(const proto::Kernel &kernel, KernelId id, const std::vector<TensorRef> &in,
                      const std::vector<TensorRef> &out, CpuContext &context,
                      std::unique_ptr<CpuKernel> *result);
Status buildMatmul(const proto::Kernel &kernel, const std::vector<TensorRef> &in,
                   const TensorRef &c, CpuContext &context,
                   std::unique_ptr<CpuKernel> *result);
/// copy, cast, broadcast_to and increment.
Status buildElementwise(const proto::Kernel &kernel, KernelId id, const std::vector<TensorRef> &in,
                        const std::vector<TensorRef> &out,
                        std::unique_ptr<CpuKernel> *result);
/// The kernels of ElementwiseKernels.def (`id` is one of them).
Status buildElementwiseMath(const proto::Kernel &kernel, KernelId id,
                            const std::vector<TensorRef> &in, const std::vector<TensorRef> &out,
                            std::unique_ptr<CpuKernel> *result);
/// "fused_elementwise": a chain of elementwise ops in one pass (FusedElementwise.h).
Status buildFusedElementwise(const proto::Kernel &kernel, const std::vector<TensorRef> &in,
                             const std::vector<TensorRef> &out,
                             std::unique_ptr<CpuKernel> *result);
/// reduce_sum and reduce_max over the kernel's axes (CpuReduction.cpp).
Status buildReduction(const proto::Kernel &kernel, KernelId id, const TensorRef &in,
                      const TensorRef &out, std::unique_ptr<CpuKernel> *result);
Status buildSoftmaxCrossEntropy(const proto::Kernel &kernel, const TensorRef &logits,
                                const TensorRef &labels, const TensorRef &loss,
                                std::unique_ptr<CpuKernel> *result);
Status buildSoftmaxCrossEntropyGrad(const proto::Kernel &kernel, const TensorRef &grad,
                                    const TensorRef &logits, const TensorRef &labels,
                                    const TensorRef &out, std::unique_ptr<CpuKernel> *result);
/// softmax or (`log`) log_softmax along the kernel's axis (checkSoftmax).
Status buildSoftmax(const proto::Kernel &kernel, const TensorRef &in, const TensorRef &out,
                    bool log, std::unique_ptr<CpuKernel> *result);
/// unscale, found_nonfinite, global_norm, clip_coefficient, update_loss_scale.
Status buildLossScaling(const proto::Kernel &kernel, KernelId id, const std::vector<TensorRef> &in,
                        const std::vector<TensorRef> &out, std::unique_ptr<CpuKernel> *result);
Status buildAdamW(const proto::Kernel &kernel, const std::vector<TensorRef> &in,
                  const std::vector<TensorRef> &out, std::unique_ptr<CpuKernel> *result);
Status buildSgd(const proto::Kernel &kernel, const std::vector<TensorRef> &in,
                const std::vector<TensorRef> &out, std::unique_ptr<CpuKernel> *result);
/// all_reduce through the context's communicator (CpuCollectives.cpp).
Status buildAllReduce(const proto::Kernel &kernel, const std::vector<TensorRef> &in,
                      const std::vector<TensorRef> &out, CpuContext &context,
                      std::unique_ptr<CpuKernel> *result);

} // namespace amprt

#endif // AMPRT_CPUKERNELSUPPORT_H
