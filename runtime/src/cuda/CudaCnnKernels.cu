//===- CudaCnnKernels.cu - pooling, batch norm, box copies, dropout -------===//
//
// Forward pooling and elementwise work take one thread per output element.
// The pooling gradients scatter each plane serially in one thread, in the
// CPU backend's order (f32 sums, rounded once), so that overlapping windows
// need no atomics and both backends sum alike. Batch normalization takes one
// block per channel and sums in double (the CPU adds float lanes, then
// double: the two agree to rounding, not bit for bit).
//
//===----------------------------------------------------------------------===//

#include "CudaCnnLaunch.h"
#include "KernelMath.h"

namespace amprt::cuda {
namespace {

constexpr int kThreads = 256;

int blocksFor(int64_t work, int64_t cap = 65535) {
  int64_t blocks = (work + kThreads - 1) / kThreads;
  return static_cast<int>(blocks < 1 ? 1 : blocks > cap ? cap : blocks);
}

#define AMPRT_GRID_STRIDE(i, count)                                                               \
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < (count);     \
       i += static_cast<int64_t>(gridDim.x) * blockDim.x)

//===--------------------------------------------------------------------===//
// Pooling
//===--------------------------------------------------------------------===//

__global__ void maxPoolKernel(PoolArgs a) {
  AMPRT_GRID_STRIDE(i, a.planes * a.outSize) {
    int64_t plane = i / a.outSize, flat = i % a.outSize, base = plane * a.inSize;
    float best = -INFINITY;
    int64_t bestIndex = -1;
    forEachTapInside(a.geometry, flat, [&](int64_t offset) {
      float v = fused::loadAs(a.from, a.type, base + offset);
      // Larger, or NaN, which wins as in PyTorch (CpuPooling.cpp's maxPoolPlane).
      if (bestIndex < 0 || v > best || (isnan(v) && !isnan(best))) {
        best = v;
        bestIndex = offset;
      }
    });
    fused::storeAs(a.to, a.type, i, bestIndex < 0 ? 0.0f : best);
    a.indices[i] = bestIndex;
  }
}

__global__ void avgPoolKernel(PoolArgs a) {
  AMPRT_GRID_STRIDE(i, a.planes * a.outSize) {
    int64_t flat = i % a.outSize, base = (i / a.outSize) * a.inSize;
    float sum = 0;
    forEachTapInside(a.geometry, flat,
                     [&](int64_t offset) { sum += fused::loadAs(a.from, a.type, base + offset); });
    auto divisor = static_cast<float>(windowDivisor(a.geometry, flat, a.includePad));
    fused::storeAs(a.to, a.type, i, divisor ? sum / divisor : 0.0f);
  }
}

__global__ void zeroKernel(float *data, int64_t count) {
  AMPRT_GRID_STRIDE(i, count) data[i] = 0.0f;
}

/// One thread per plane: dy scattered through the indices, in output order.
__global__ void maxPoolScatterKernel(PoolArgs a) {
  int64_t plane = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (plane >= a.planes)
    return;
  float *sums = a.sums + plane * a.inSize;
  for (int64_t o = 0; o < a.outSize; ++o) {
    int64_t i = a.indices[plane * a.outSize + o];
    if (i >= a.inSize) {
      if (a.error.flag)
        atomicCAS(a.error.flag, 0, a.error.code);
      continue;
    }
    if (i >= 0)
      sums[i] += fused::loadAs(a.from, a.type, plane * a.outSize + o);
  }
}

/// One thread per plane: each output's share spread over its window.
__global__ void avgPoolScatterKernel(PoolArgs a) {
  int64_t plane = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (plane >= a.planes)
    return;
  float *sums = a.sums + plane * a.inSize;
  for (int64_t o = 0; o < a.outSize; ++o) {
    auto divisor = static_cast<float>(windowDivisor(a.geometry, o, a.includePad));
    if (!divisor)
      continue;
    float share = fused::loadAs(a.from, a.type, plane * a.outSize + o) / divisor;
    forEachTapInside(a.geometry, o, [&](int64_t offset) { sums[offset] += share; });
  }
}

__global__ void roundKernel(const float *sums, void *to, Storage type, int64_t count) {
  AMPRT_GRID_STRIDE(i, count) fused::storeAs(to, type, i, sums[i]);
}

/// The gradients: zero the f32 sums, scatter per plane, round into dx
/// (the sums are dx itself when dx is f32).
template <typename Scatter>
cudaError_t poolGradient(const PoolArgs &a, Scatter scatter, cudaStream_t stream) {
  int64_t count = a.planes * a.inSize;
  zeroKernel<<<blocksFor(count, 4096), kThreads, 0, stream>>>(a.sums, count);
  scatter<<<blocksFor(a.planes, INT32_MAX), kThreads, 0, stream>>>(a);
  if (a.type != Storage::F32)
    roundKernel<<<blocksFor(count, 4096), kThreads, 0, stream>>>(a.sums, a.to, a.type, count);
  return cudaGetLastError();
}

//===--------------------------------------------------------------------===//
// Batch normalization
//===--------------------------------------------------------------------===//

/// The block's sum of `v` (every thread gets it), in a fixed order.
__device__ double blockSum(double v) {
  __shared__ double partial[kThreads];
  __syncthreads(); // the previous call's readers are done
  partial[threadIdx.x] = v;
  __syncthreads();
  for (int width = kThreads / 2; width > 0; width /= 2) {
    if (threadIdx.x < width)
      partial[threadIdx.x] += partial[threadIdx.x + width];
    __syncthreads();
  }
  return partial[0];
}

/// Element i of channel c's values (batch rows of spatial values).
__device__ int64_t channelOffset(const BatchNormArgs &a, int64_t c, int64_t i) {
  return ((i / a.spatial) * a.channels + c) * a.spatial + i % a.spatial;
}

__global__ void batchNormKernel(BatchNormArgs a) {
  int64_t c = blockIdx.x, count = a.batch * a.spatial;
  double sum = 0;
  for (int64_t i = threadIdx.x; i < count; i += blockDim.x)
    sum += fused::loadAs(a.x, a.type, channelOffset(a, c, i));
  float m = static_cast<float>(blockSum(sum) / count);
  double squares = 0; // two passes, as on the CPU: no cancellation
  for (int64_t i = threadIdx.x; i < count; i += blockDim.x) {
    float d = fused::loadAs(a.x, a.type, channelOffset(a, c, i)) - m;
    squares += d * d;
  }
  float var = static_cast<float>(blockSum(squares) / count);
  float scale = a.scale[c] / sqrtf(var + a.epsilon), shift = a.shift[c] - m * scale;
  for (int64_t i = threadIdx.x; i < count; i += blockDim.x) {
    int64_t at = channelOffset(a, c, i);
    fused::storeAs(a.y, a.type, at, fused::loadAs(a.x, a.type, at) * scale + shift);
  }
  if (threadIdx.x == 0) {
    // Running averages as ONNX (and the CPU): old * momentum + batch * (1 - momentum).
    float oldMean = a.mean[c], oldVariance = a.variance[c];
    a.batchMean[c] = m;
    a.batchVariance[c] = var;
    a.runningMeanOut[c] = oldMean * a.momentum + m * (1.0f - a.momentum);
    a.runningVarianceOut[c] = oldVariance * a.momentum + var * (1.0f - a.momentum);
  }
}

__global__ void batchNormInferenceKernel(BatchNormArgs a) {
  AMPRT_GRID_STRIDE(i, a.batch * a.channels * a.spatial) {
    int64_t c = (i / a.spatial) % a.channels;
    float scale = a.scale[c] / sqrtf(a.variance[c] + a.epsilon);
    float shift = a.shift[c] - a.mean[c] * scale;
    fused::storeAs(a.y, a.type, i, fused::loadAs(a.x, a.type, i) * scale + shift);
  }
}

__global__ void batchNormGradKernel(BatchNormArgs a) {
  int64_t c = blockIdx.x, count = a.batch * a.spatial;
  float m = a.mean[c], invStd = 1.0f / sqrtf(a.variance[c] + a.epsilon);
  double sumDy = 0, sumDyCentered = 0;
  for (int64_t i = threadIdx.x; i < count; i += blockDim.x) {
    int64_t at = channelOffset(a, c, i);
    float g = fused::loadAs(a.dy, a.type, at);
    sumDy += g;
    sumDyCentered += g * (fused::loadAs(a.x, a.type, at) - m);
  }
  sumDy = blockSum(sumDy);
  sumDyCentered = blockSum(sumDyCentered);
  if (threadIdx.x == 0) {
    a.dshift[c] = static_cast<float>(sumDy);
    a.dscale[c] = static_cast<float>(sumDyCentered * invStd);
  }
  // With batch statistics dx also carries the statistics' own gradient.
  float k = a.scale[c] * invStd;
  float meanDy = a.globalStats ? 0.0f : static_cast<float>(sumDy / count);
  float centered =
      a.globalStats ? 0.0f : static_cast<float>(sumDyCentered / count) * invStd * invStd;
  for (int64_t i = threadIdx.x; i < count; i += blockDim.x) {
    int64_t at = channelOffset(a, c, i);
    float g = fused::loadAs(a.dy, a.type, at), v = fused::loadAs(a.x, a.type, at);
    fused::storeAs(a.y, a.type, at, k * (g - meanDy - (v - m) * centered));
  }
}

//===--------------------------------------------------------------------===//
// Layer normalization (the CPU's formulas, sums in double)
//===--------------------------------------------------------------------===//

__global__ void layerNormKernel(LayerNormArgs a) {
  int64_t r = blockIdx.x, base = r * a.width;
  double sum = 0;
  for (int64_t i = threadIdx.x; i < a.width; i += blockDim.x)
    sum += fused::loadAs(a.x, a.type, base + i);
  float m = static_cast<float>(blockSum(sum) / a.width);
  double squares = 0;
  for (int64_t i = threadIdx.x; i < a.width; i += blockDim.x) {
    float d = fused::loadAs(a.x, a.type, base + i) - m;
    squares += d * d;
  }
  float inv = 1.0f / sqrtf(static_cast<float>(blockSum(squares) / a.width) + a.epsilon);
  for (int64_t i = threadIdx.x; i < a.width; i += blockDim.x) {
    float xhat = (fused::loadAs(a.x, a.type, base + i) - m) * inv;
    fused::storeAs(a.y, a.type, base + i, xhat * a.scale[i] + a.shift[i]);
  }
  if (threadIdx.x == 0) {
    a.mean[r] = m;
    a.invStd[r] = inv;
  }
}

__global__ void layerNormGradKernel(LayerNormArgs a) {
  int64_t r = blockIdx.x, base = r * a.width;
  float m = a.mean[r], inv = a.invStd[r];
  double sumG = 0, sumGX = 0;
  for (int64_t i = threadIdx.x; i < a.width; i += blockDim.x) {
    float g = fused::loadAs(a.dy, a.type, base + i) * a.scale[i];
    sumG += g;
    sumGX += g * (fused::loadAs(a.x, a.type, base + i) - m) * inv;
  }
  float meanG = static_cast<float>(blockSum(sumG) / a.width);
  float meanGX = static_cast<float>(blockSum(sumGX) / a.width);
  for (int64_t i = threadIdx.x; i < a.width; i += blockDim.x) {
    float g = fused::loadAs(a.dy, a.type, base + i) * a.scale[i];
    float xhat = (fused::loadAs(a.x, a.type, base + i) - m) * inv;
    fused::storeAs(a.y, a.type, base + i, inv * (g - meanG - xhat * meanGX));
  }
}

/// dscale[j] = sum over rows of dy * xhat, dshift[j] = sum of dy, rows in order.
__global__ void layerNormColumnsKernel(LayerNormArgs a) {
  AMPRT_GRID_STRIDE(j, a.width) {
    double sumXhat = 0, sumDy = 0;
    for (int64_t r = 0; r < a.rows; ++r) {
      float g = fused::loadAs(a.dy, a.type, r * a.width + j);
      sumXhat += g * (fused::loadAs(a.x, a.type, r * a.width + j) - a.mean[r]) * a.invStd[r];
      sumDy += g;
    }
    a.dscale[j] = static_cast<float>(sumXhat);
    a.dshift[j] = static_cast<float>(sumDy);
  }
}

//===--------------------------------------------------------------------===//
// Gather and its scatter-add
//===--------------------------------------------------------------------===//

/// indices[i] made non-negative, or -1 (and the error raised) outside.
__device__ int64_t gatherIndex(const GatherArgs &a, int64_t i) {
  int64_t index = a.int32Indices ? static_cast<const int32_t *>(a.indices)[i]
                                 : static_cast<const int64_t *>(a.indices)[i];
  if (index < -a.size || index >= a.size) {
    if (a.error.flag)
      atomicCAS(a.error.flag, 0, a.error.code);
    return -1;
  }
  return index < 0 ? index + a.size : index;
}

template <typename Word> __global__ void gatherKernel(GatherArgs a) {
  AMPRT_GRID_STRIDE(e, a.outer * a.count * a.inner) {
    int64_t j = e % a.inner, row = e / a.inner, o = row / a.count;
    int64_t index = gatherIndex(a, row % a.count);
    if (index >= 0)
      static_cast<Word *>(a.dst)[e] =
          static_cast<const Word *>(a.src)[(o * a.size + index) * a.inner + j];
  }
}

__global__ void gatherGradKernel(GatherArgs a) {
  AMPRT_GRID_STRIDE(e, a.outer * a.count * a.inner) {
    int64_t j = e % a.inner, row = e / a.inner, o = row / a.count;
    int64_t index = gatherIndex(a, row % a.count);
    if (index >= 0)
      atomicAdd(static_cast<float *>(a.dst) + (o * a.size + index) * a.inner + j,
                static_cast<const float *>(a.src)[e]);
  }
}

//===--------------------------------------------------------------------===//
// Box copies, fill, dropout, widening
//===--------------------------------------------------------------------===//

template <typename Word> __global__ void copyBoxKernel(BoxArgs a, int64_t count) {
  AMPRT_GRID_STRIDE(i, count) {
    int64_t rest = i, s = 0, t = 0;
    for (int d = a.rank - 1; d >= 0; --d) {
      int64_t at = rest % a.box[d];
      rest /= a.box[d];
      s += (a.from[d] + at) * a.srcStrides[d];
      t += (a.to[d] + at) * a.dstStrides[d];
    }
    static_cast<Word *>(a.dst)[t] = static_cast<const Word *>(a.src)[s];
  }
}

__global__ void fillKernel(void *dst, Storage type, float value, int64_t count) {
  AMPRT_GRID_STRIDE(i, count) fused::storeAs(dst, type, i, value);
}

__global__ void dropoutKernel(DropoutArgs a) {
  auto step = static_cast<uint64_t>(*a.step);
  AMPRT_GRID_STRIDE(i, a.count) {
    bool keep = math::dropoutKeeps(a.seed, step, static_cast<uint64_t>(i), a.threshold);
    fused::storeAs(a.y, a.type, i, keep ? fused::loadAs(a.x, a.type, i) * a.scale : 0.0f);
  }
}

__global__ void widenKernel(const void *src, Storage type, float *dst, int64_t count) {
  AMPRT_GRID_STRIDE(i, count) dst[i] = fused::loadAs(src, type, i);
}

__global__ void integersToFloatKernel(const void *src, IntegerKind kind, void *dst,
                                      Storage type, int64_t count) {
  AMPRT_GRID_STRIDE(i, count) {
    float v = kind == IntegerKind::I32    ? static_cast<float>(static_cast<const int32_t *>(src)[i])
              : kind == IntegerKind::Bool ? (static_cast<const uint8_t *>(src)[i] != 0 ? 1.0f : 0.0f)
                                          : static_cast<float>(static_cast<const int64_t *>(src)[i]);
    fused::storeAs(dst, type, i, v);
  }
}

__global__ void floatToBoolKernel(const void *src, Storage type, uint8_t *dst, int64_t count) {
  AMPRT_GRID_STRIDE(i, count) dst[i] = fused::loadAs(src, type, i) != 0.0f;
}

/// A batch-norm kernel with one block per channel (none: nothing to do).
cudaError_t perChannel(void (*kernel)(BatchNormArgs), const BatchNormArgs &args,
                       cudaStream_t stream) {
  if (args.channels == 0)
    return cudaSuccess;
  kernel<<<static_cast<unsigned>(args.channels), kThreads, 0, stream>>>(args);
  return cudaGetLastError();
}

} // namespace

cudaError_t launchMaxPool(const PoolArgs &args, cudaStream_t stream) {
  maxPoolKernel<<<blocksFor(args.planes * args.outSize, 4096), kThreads, 0, stream>>>(args);
  return cudaGetLastError();
}

cudaError_t launchMaxPoolGrad(const PoolArgs &args, cudaStream_t stream) {
  return poolGradient(args, maxPoolScatterKernel, stream);
}

cudaError_t launchAvgPool(const PoolArgs &args, cudaStream_t stream) {
  avgPoolKernel<<<blocksFor(args.planes * args.outSize, 4096), kThreads, 0, stream>>>(args);
  return cudaGetLastError();
}

cudaError_t launchAvgPoolGrad(const PoolArgs &args, cudaStream_t stream) {
  return poolGradient(args, avgPoolScatterKernel, stream);
}

cudaError_t launchLayerNorm(const LayerNormArgs &args, cudaStream_t stream) {
  if (args.rows == 0)
    return cudaSuccess;
  layerNormKernel<<<static_cast<unsigned>(args.rows), kThreads, 0, stream>>>(args);
  return cudaGetLastError();
}

cudaError_t launchLayerNormGrad(const LayerNormArgs &args, cudaStream_t stream) {
  if (args.width == 0)
    return cudaSuccess;
  if (args.rows > 0)
    layerNormGradKernel<<<static_cast<unsigned>(args.rows), kThreads, 0, stream>>>(args);
  layerNormColumnsKernel<<<blocksFor(args.width, 4096), kThreads, 0, stream>>>(args);
  return cudaGetLastError();
}

cudaError_t launchGather(const GatherArgs &args, cudaStream_t stream) {
  int64_t count = args.outer * args.count * args.inner;
  if (count == 0)
    return cudaSuccess;
  if (args.elementSize == 2)
    gatherKernel<uint16_t><<<blocksFor(count, 4096), kThreads, 0, stream>>>(args);
  else
    gatherKernel<uint32_t><<<blocksFor(count, 4096), kThreads, 0, stream>>>(args);
  return cudaGetLastError();
}

cudaError_t launchGatherGrad(const GatherArgs &args, cudaStream_t stream) {
  cudaError_t zeroed = cudaMemsetAsync(args.dst, 0, args.outer * args.size * args.inner *
                                                       sizeof(float), stream);
  int64_t count = args.outer * args.count * args.inner;
  if (zeroed != cudaSuccess || count == 0)
    return zeroed;
  gatherGradKernel<<<blocksFor(count, 4096), kThreads, 0, stream>>>(args);
  return cudaGetLastError();
}

cudaError_t launchBatchNorm(const BatchNormArgs &args, cudaStream_t stream) {
  return perChannel(batchNormKernel, args, stream);
}

cudaError_t launchBatchNormInference(const BatchNormArgs &args, cudaStream_t stream) {
  batchNormInferenceKernel<<<blocksFor(args.batch * args.channels * args.spatial, 4096), kThreads,
                             0, stream>>>(args);
  return cudaGetLastError();
}

cudaError_t launchBatchNormGrad(const BatchNormArgs &args, cudaStream_t stream) {
  return perChannel(batchNormGradKernel, args, stream);
}

cudaError_t launchCopyBox(const BoxArgs &args, cudaStream_t stream) {
  int64_t count = 1;
  for (int d = 0; d < args.rank; ++d)
    count *= args.box[d];
  if (count == 0)
    return cudaSuccess;
  int blocks = blocksFor(count, 4096);
  switch (args.elementSize) {
  case 1:
    copyBoxKernel<uint8_t><<<blocks, kThreads, 0, stream>>>(args, count);
    break;
  case 2:
    copyBoxKernel<uint16_t><<<blocks, kThreads, 0, stream>>>(args, count);
    break;
  case 4:
    copyBoxKernel<uint32_t><<<blocks, kThreads, 0, stream>>>(args, count);
    break;
  default:
    copyBoxKernel<uint64_t><<<blocks, kThreads, 0, stream>>>(args, count);
    break;
  }
  return cudaGetLastError();
}

cudaError_t launchFill(void *dst, Storage type, float value, int64_t count, cudaStream_t stream) {
  fillKernel<<<blocksFor(count, 4096), kThreads, 0, stream>>>(dst, type, value, count);
  return cudaGetLastError();
}

cudaError_t launchDropout(const DropoutArgs &args, cudaStream_t stream) {
  dropoutKernel<<<blocksFor(args.count, 4096), kThreads, 0, stream>>>(args);
  return cudaGetLastError();
}

cudaError_t launchWiden(const void *src, Storage type, float *dst, int64_t count,
                        cudaStream_t stream) {
  widenKernel<<<blocksFor(count, 4096), kThreads, 0, stream>>>(src, type, dst, count);
  return cudaGetLastError();
}

cudaError_t launchIntegersToFloat(const void *src, IntegerKind kind, void *dst, Storage type,
                                  int64_t count, cudaStream_t stream) {
  if (count == 0)
    return cudaSuccess;
  integersToFloatKernel<<<blocksFor(count, 4096), kThreads, 0, stream>>>(src, kind, dst, type,
                                                                          count);
  return cudaGetLastError();
}

cudaError_t launchFloatToBool(const void *src, Storage type, uint8_t *dst, int64_t count,
                              cudaStream_t stream) {
  if (count == 0)
    return cudaSuccess;
  floatToBoolKernel<<<blocksFor(count, 4096), kThreads, 0, stream>>>(src, type, dst, count);
  return cudaGetLastError();
}

} // namespace amprt::cuda
