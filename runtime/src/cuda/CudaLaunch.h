//===- CudaLaunch.h - the CUDA backend's device kernels ---------*- C++ -*-===//
//
// Plain-data arguments and launch functions of the kernels in
// CudaKernels.cu. This header is shared by nvcc (the kernels) and the host
// compiler (the backend, which never sees device code), so it uses only
// the CUDA runtime's types. Every kernel's per-element arithmetic is the
// CPU backend's (KernelMath.h, FusedElementwise.h), tested there.
//
//===----------------------------------------------------------------------===//
#ifndef AMPRT_CUDA_CUDALAUNCH_H
#define AMPRT_CUDA_CUDALAUNCH_H

#include "FusedElementwise.h"

#include <cuda_runtime_api.h>
#include <cstdint>

namespace amprt::cuda {

using fused::Storage;

/// Where kernels report a fault (a label out of range): the first code
/// written wins; the host reads it when it synchronises.
struct ErrorSink {
  int *flag = nullptr;
  int code = 0; // the kernel's index + 1 in its device's table
};

struct FusedArgs {
  fused::Program program;
  const void *inputs[fused::kMaxInputs];
  void *outputs[fused::kMaxOutputs];
};
cudaError_t launchFused(const FusedArgs &args, cudaStream_t stream);

/// y = x * (1 / scale), the reciprocal formed in double (GradScaler's).
struct UnscaleArgs {
  const void *grad;
  Storage gradType;
  const float *scale;
  float *out;
  int64_t count;
};
cudaError_t launchUnscale(const UnscaleArgs &args, cudaStream_t stream);

/// out[o, i] = sum (or max) over r of in[o, r, i], in f32 whatever `in`'s
/// float type, when the reduced axes are adjacent;
/// otherwise (`general`) one thread per output walks the reduced axes.
struct ReduceArgs {
  const void *in;
  fused::Storage inType; // f32, or bf16/f16 widened as loaded
  float *out;
  int64_t outer, reduced, inner;
  bool general;
  bool max; // reduce_max (NaN wins) rather than reduce_sum
  int rank;
  int64_t shape[fused::kMaxRank];
  bool isReduced[fused::kMaxRank];
};
cudaError_t launchReduce(const ReduceArgs &args, cudaStream_t stream);

/// Softmax over the last axis of [rows, width].
/// softmax (or log_softmax) of [outer, width, inner] along width; `slices`
/// is outer * inner.
struct SoftmaxArgs {
  const float *x;
  float *y;
  int64_t slices, width, inner;
  bool log;
};
cudaError_t launchSoftmax(const SoftmaxArgs &args, cudaStream_t stream);

/// Softmax cross-entropy of [rows, classes] logits and int64 labels; its
/// scratch holds a per-row loss and a counted flag (2 * rows floats).
struct CrossEntropyArgs {
  const float *logits;
  const int64_t *labels;
  int64_t rows, classes;
  bool mean, hasIgnore;
  int64_t ignore;
  float *scratch;
  const float *seed; // gradient only: the incoming scalar gradient
  float *out;        // loss (scalar) or gradient ([rows, classes])
  ErrorSink error;
};
cudaError_t launchCrossEntropy(const CrossEntropyArgs &args, cudaStream_t stream);
cudaError_t launchCrossEntropyGrad(const CrossEntropyArgs &args, cudaStream_t stream);

/// A tensor of a multi-tensor kernel (pointer tables live on the device).
struct TensorSlot {
  const void *data;
  int64_t count;
  Storage storage;
};

/// One pass over all gradients: found = any inf/NaN, norm = sqrt(sum g^2),
/// each when non-null. With `scale`, gradients are first unscaled and the
/// unscaled values written to `unscaled` (f32 slots, same order).
struct GradientStatsArgs {
  const TensorSlot *slots;
  const TensorSlot *unscaled; // null, or outputs of the fused unscale
  int numSlots;
  const float *scale;         // null unless unscaling
  double *partials;           // 2 * kStatsBlocks doubles of scratch
  float *found, *norm;
};
constexpr int kStatsBlocks = 264;
cudaError_t launchGradientStats(const GradientStatsArgs &args, cudaStream_t stream);

/// One AdamW or SGD parameter: old values in, new values out (the same
/// memory when the plan updates in place), plus the optional low copy.
struct UpdateSlot {
  const float *param, *grad, *state0, *state1;
  float *paramOut, *state0Out, *state1Out;
  void *low;
  Storage lowType;
  int64_t count;
};
struct AdamWArgs {
  const UpdateSlot *slots;
  int numSlots;
  int64_t maxCount;
  double lr, beta1, beta2, eps, weightDecay;
  bool huggingface; // HuggingFace's AdamW (math::adamwScalars)
  const int64_t *step;
  const float *skip; // null: never skipped
};
cudaError_t launchAdamW(const AdamWArgs &args, cudaStream_t stream);
struct SgdArgs {
  const UpdateSlot *slots; // state0: the momentum buffer
  int numSlots;
  int64_t maxCount;
  float lr, momentum, weightDecay;
  bool nesterov;
  const float *skip;
};
cudaError_t launchSgd(const SgdArgs &args, cudaStream_t stream);

/// The small scalar kernels of a step (one thread each).
struct ScalarArgs {
  const char *op; // host only: which of the ops below
  const float *f0, *f1, *skip;
  const int64_t *i0;
  float *fOut0, *fOut1;
  int64_t *iOut0;
  double a, b;
  int64_t n;
};
cudaError_t launchIncrement(const ScalarArgs &args, cudaStream_t stream);
cudaError_t launchUpdateLossScale(const ScalarArgs &args, cudaStream_t stream);
cudaError_t launchAccumulationStep(const ScalarArgs &args, cudaStream_t stream);
cudaError_t launchClipCoefficient(const ScalarArgs &args, cudaStream_t stream);
/// y = flag ? 0 : x over n floats.
cudaError_t launchZeroIf(const float *x, const float *flag, float *y, int64_t n,
                         cudaStream_t stream);

} // namespace amprt::cuda

#endif // AMPRT_CUDA_CUDALAUNCH_H
