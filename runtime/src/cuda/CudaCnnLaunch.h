//===- CudaCnnLaunch.h - device kernels of the convolutional ops -*- C++ -*-===//
//
// Plain-data arguments and launch functions of CudaCnnKernels.cu: pooling,
// batch normalization, box copies (pad, slice, concat), dropout and the
// widening of a low-precision result into f32. Shared by nvcc and the host
// compiler like CudaLaunch.h; the arithmetic per element is the CPU
// backend's (KernelMath.h), and the summation orders follow it.
//
//===----------------------------------------------------------------------===//
#ifndef AMPRT_CUDA_CUDACNNLAUNCH_H
#define AMPRT_CUDA_CUDACNNLAUNCH_H

#include "CudaLaunch.h"
#include "PoolGeometry.h"

namespace amprt::cuda {

/// A pooling over planes [N * C] of `inSize` -> `outSize` elements.
struct PoolArgs {
  PoolGeometry geometry; // max_pool_grad: rank and sizes only
  int64_t planes, inSize, outSize;
  bool includePad; // avg: count padding in the divisor
  Storage type;
  const void *from; // max/avg forward: x; backward: dy
  void *to;         // forward: y; backward: dx
  int64_t *indices; // max: written by the forward, read by the backward
  float *sums;      // backward: planes * inSize floats of scratch
  ErrorSink error;  // max backward: an index outside the plane
};
cudaError_t launchMaxPool(const PoolArgs &args, cudaStream_t stream);
cudaError_t launchMaxPoolGrad(const PoolArgs &args, cudaStream_t stream);
cudaError_t launchAvgPool(const PoolArgs &args, cudaStream_t stream);
cudaError_t launchAvgPoolGrad(const PoolArgs &args, cudaStream_t stream);

/// Batch normalization over [batch, channels, spatial] activations; one
/// block per channel. The tensors' roles follow the plan kernels.
struct BatchNormArgs {
  int64_t batch, channels, spatial;
  Storage type;
  float epsilon, momentum;
  bool globalStats;
  const void *x, *dy;
  void *y; // y, or dx for the gradient
  const float *scale, *shift, *mean, *variance; // inputs (mean/variance: running or saved)
  float *runningMeanOut, *runningVarianceOut, *batchMean, *batchVariance; // forward training
  float *dscale, *dshift; // gradient
};
cudaError_t launchBatchNorm(const BatchNormArgs &args, cudaStream_t stream);
cudaError_t launchBatchNormInference(const BatchNormArgs &args, cudaStream_t stream);
cudaError_t launchBatchNormGrad(const BatchNormArgs &args, cudaStream_t stream);

/// Layer normalization over `rows` rows of `width` values: one block per
/// row; the scale and shift gradients one thread per column.
struct LayerNormArgs {
  int64_t rows, width;
  Storage type;
  float epsilon;
  const void *x, *dy;
  void *y; // y, or dx for the gradient
  const float *scale, *shift;
  float *mean, *invStd; // written by the forward, read by the gradient
  float *dscale, *dshift;
};
cudaError_t launchLayerNorm(const LayerNormArgs &args, cudaStream_t stream);
cudaError_t launchLayerNormGrad(const LayerNormArgs &args, cudaStream_t stream);

/// gather: out[o, i, :] = table[o, indices[i], :] over [outer, count, inner]
/// (rows of `elementSize` bytes per value); gather_grad: the f32 table
/// zeroed, then each gradient row added at its index (atomically, so
/// repeated indices sum in an unspecified order). An index outside [-size,
/// size) raises `error` and is skipped.
struct GatherArgs {
  int64_t outer, size, count, inner;
  int elementSize;
  const void *indices;
  bool int32Indices; // else int64
  const void *src;
  void *dst;
  ErrorSink error;
};
cudaError_t launchGather(const GatherArgs &args, cudaStream_t stream);
cudaError_t launchGatherGrad(const GatherArgs &args, cudaStream_t stream);

/// Copies the box of extent `box` at `from` in src to `to` in dst (tensors
/// of one element size; strides in elements, so that a transpose is a box
/// read with permuted strides).
struct BoxArgs {
  int rank;
  int64_t srcStrides[fused::kMaxRank], dstStrides[fused::kMaxRank];
  int64_t from[fused::kMaxRank], to[fused::kMaxRank], box[fused::kMaxRank];
  int elementSize; // 2 or 4 bytes
  const void *src;
  void *dst;
};
cudaError_t launchCopyBox(const BoxArgs &args, cudaStream_t stream);
/// dst[i] = value (rounded to `type`) over count elements.
cudaError_t launchFill(void *dst, Storage type, float value, int64_t count, cudaStream_t stream);

/// y = keep(i) ? x * scale : 0, keep from math::dropoutKeeps(seed, *step, i).
struct DropoutArgs {
  const void *x;
  void *y;
  Storage type;
  int64_t count;
  const int64_t *step;
  uint64_t seed, threshold;
  float scale;
};
cudaError_t launchDropout(const DropoutArgs &args, cudaStream_t stream);

/// dst (f32) = src (`type`) over count elements.
cudaError_t launchWiden(const void *src, Storage type, float *dst, int64_t count,
                        cudaStream_t stream);

/// The integer types a cast reads or (bool) writes.
enum class IntegerKind { I64, I32, Bool };

/// dst (`type`) = src (int64, int32 or bool bytes) over count elements,
/// rounded to nearest even.
cudaError_t launchIntegersToFloat(const void *src, IntegerKind kind, void *dst, Storage type,
                                  int64_t count, cudaStream_t stream);
/// dst (bool bytes) = src (`type`) != 0 over count elements.
cudaError_t launchFloatToBool(const void *src, Storage type, uint8_t *dst, int64_t count,
                              cudaStream_t stream);

} // namespace amprt::cuda

#endif // AMPRT_CUDA_CUDACNNLAUNCH_H
