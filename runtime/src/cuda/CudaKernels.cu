//===- CudaKernels.cu - device kernels of the CUDA backend ----------------===//
//
// Elementwise work runs the fused-chain evaluator of FusedElementwise.h,
// four elements per thread; row-wise kernels (softmax, cross-entropy) use a
// warp per row; reductions over many tensors (gradient statistics) write
// per-block partials that one block sums in a fixed order, so results do
// not depend on scheduling. Optimizer updates walk a device-side table of
// tensors: one launch updates every parameter.
//
//===----------------------------------------------------------------------===//

#include "CudaLaunch.h"

#include <cfloat>

namespace amprt::cuda {
namespace {

constexpr int kThreads = 256;
constexpr int kPerThread = 4;

int blocksFor(int64_t work, int64_t perBlock, int64_t cap = 65535) {
  int64_t blocks = (work + perBlock - 1) / perBlock;
  return static_cast<int>(blocks < 1 ? 1 : blocks > cap ? cap : blocks);
}

/// The warp reductions' step: a sum, or a maximum that NaN wins (reduce_max;
/// softmax's warpMax below drops NaN as fmaxf does, and is kept as it was).
struct SumStep {
  static constexpr float kIdentity = 0.0f;
  __device__ static float combine(float a, float b) { return a + b; }
};
struct MaxStep {
  static constexpr float kIdentity = -INFINITY;
  __device__ static float combine(float a, float b) { return math::maxOrNaN(a, b); }
};

template <typename Step> __device__ float warpReduce(float v) {
  for (int offset = 16; offset > 0; offset /= 2)
    v = Step::combine(v, __shfl_xor_sync(0xffffffffu, v, offset));
  return v;
}

__device__ float warpMax(float v) {
  for (int offset = 16; offset > 0; offset /= 2)
    v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, offset));
  return v;
}

__device__ void raise(ErrorSink sink) {
  if (sink.flag)
    atomicCAS(sink.flag, 0, sink.code);
}

//===--------------------------------------------------------------------===//
// Elementwise
//===--------------------------------------------------------------------===//

__global__ void fusedKernel(FusedArgs args) {
  int64_t count = args.program.count;
  int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x * kPerThread;
  for (int64_t base = (static_cast<int64_t>(blockIdx.x) * blockDim.x) * kPerThread + threadIdx.x;
       base < count; base += stride)
#pragma unroll
    for (int j = 0; j < kPerThread; ++j) {
      int64_t i = base + j * blockDim.x; // consecutive threads, consecutive elements
      if (i < count)
        fused::evaluate(args.program, args.inputs, args.outputs, i);
    }
}

__global__ void unscaleKernel(UnscaleArgs args) {
  float inverse = static_cast<float>(1.0 / static_cast<double>(args.scale[0]));
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < args.count;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x)
    args.out[i] = fused::loadAs(args.grad, args.gradType, i) * inverse;
}

__global__ void zeroIfKernel(const float *x, const float *flag, float *y, int64_t n) {
  bool zero = flag[0] != 0.0f;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x)
    y[i] = zero ? 0.0f : x[i];
}

//===--------------------------------------------------------------------===//
// Reductions
//===--------------------------------------------------------------------===//

/// inner > 1: a 32-wide tile of `inner` per block, 8 rows of threads
/// striding over the reduced axis, then a shared-memory reduction.
template <typename Step> __global__ void reduceStridedKernel(ReduceArgs args) {
  __shared__ float partial[8][33];
  int64_t tiles = (args.inner + 31) / 32;
  int64_t o = blockIdx.x / tiles, i = (blockIdx.x % tiles) * 32 + threadIdx.x;
  float acc = Step::kIdentity;
  if (i < args.inner)
    for (int64_t r = threadIdx.y; r < args.reduced; r += blockDim.y)
      acc = Step::combine(
          acc, fused::loadAs(args.in, args.inType, (o * args.reduced + r) * args.inner + i));
  partial[threadIdx.y][threadIdx.x] = acc;
  __syncthreads();
  if (threadIdx.y == 0 && i < args.inner) {
    float total = Step::kIdentity;
    for (int y = 0; y < 8; ++y)
      total = Step::combine(total, partial[y][threadIdx.x]);
    args.out[o * args.inner + i] = total;
  }
}

/// inner == 1: one block per output, a tree over the reduced axis.
template <typename Step> __global__ void reduceRowsKernel(ReduceArgs args) {
  __shared__ float warps[kThreads / 32];
  int64_t row = static_cast<int64_t>(blockIdx.x) * args.reduced;
  float acc = Step::kIdentity;
  for (int64_t r = threadIdx.x; r < args.reduced; r += blockDim.x)
    acc = Step::combine(acc, fused::loadAs(args.in, args.inType, row + r));
  acc = warpReduce<Step>(acc);
  if (threadIdx.x % 32 == 0)
    warps[threadIdx.x / 32] = acc;
  __syncthreads();
  if (threadIdx.x < 32) {
    float v = threadIdx.x < kThreads / 32 ? warps[threadIdx.x] : Step::kIdentity;
    v = warpReduce<Step>(v);
    if (threadIdx.x == 0)
      args.out[blockIdx.x] = v;
  }
}

/// Any set of axes: thread o reduces the input elements whose kept
/// coordinates are output o's, in row-major order of the reduced ones.
template <typename Step> __global__ void reduceGeneralKernel(ReduceArgs args) {
  int64_t o = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  int64_t outputs = args.outer * args.inner, reducedCount = args.reduced;
  if (o >= outputs)
    return;
  int64_t base = 0, stride = 1, rest = o;
  int64_t strides[fused::kMaxRank];
  for (int d = args.rank - 1; d >= 0; --d) {
    strides[d] = stride;
    stride *= args.shape[d];
  }
  for (int d = args.rank - 1; d >= 0; --d)
    if (!args.isReduced[d]) {
      base += (rest % args.shape[d]) * strides[d];
      rest /= args.shape[d];
    }
  float acc = Step::kIdentity;
  for (int64_t r = 0; r < reducedCount; ++r) {
    int64_t offset = base, index = r;
    for (int d = args.rank - 1; d >= 0; --d)
      if (args.isReduced[d]) {
        offset += (index % args.shape[d]) * strides[d];
        index /= args.shape[d];
      }
    acc = Step::combine(acc, fused::loadAs(args.in, args.inType, offset));
  }
  args.out[o] = acc;
}

template <typename Step> cudaError_t launchReduction(const ReduceArgs &args,
                                                     cudaStream_t stream) {
  if (args.general)
    reduceGeneralKernel<Step><<<blocksFor(args.outer * args.inner, kThreads, INT32_MAX),
                                kThreads, 0, stream>>>(args);
  else if (args.inner == 1)
    reduceRowsKernel<Step><<<static_cast<unsigned>(args.outer), kThreads, 0, stream>>>(args);
  else
    reduceStridedKernel<Step><<<static_cast<unsigned>(args.outer * ((args.inner + 31) / 32)),
                                dim3(32, 8), 0, stream>>>(args);
  return cudaGetLastError();
}

//===--------------------------------------------------------------------===//
// Softmax and cross-entropy: a warp per row
//===--------------------------------------------------------------------===//

struct RowExp {
  float max, sum;
};
/// Over row[0], row[stride], ... row[(width - 1) * stride].
__device__ RowExp rowExp(const float *row, int64_t width, int64_t stride = 1) {
  float m = -FLT_MAX;
  for (int64_t c = threadIdx.x % 32; c < width; c += 32)
    m = fmaxf(m, row[c * stride]);
  m = warpMax(m);
  float s = 0.0f;
  for (int64_t c = threadIdx.x % 32; c < width; c += 32)
    s += expf(row[c * stride] - m);
  return {m, warpReduce<SumStep>(s)};
}

__device__ int64_t warpRow() {
  return (static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x) / 32;
}

/// Warp r takes slice (o, :, i) of [outer, width, inner], r = o * inner + i.
__global__ void softmaxKernel(SoftmaxArgs args) {
  int64_t r = warpRow();
  if (r >= args.slices)
    return;
  int64_t base = (r / args.inner) * args.width * args.inner + r % args.inner;
  const float *x = args.x + base;
  float *y = args.y + base;
  RowExp e = rowExp(x, args.width, args.inner);
  float logSum = logf(e.sum);
  for (int64_t c = threadIdx.x % 32; c < args.width; c += 32) {
    float shifted = x[c * args.inner] - e.max;
    y[c * args.inner] = args.log ? shifted - logSum : expf(shifted) / e.sum;
  }
}

/// True when row r's label counts; raises on a label out of range.
__device__ bool labelCounts(const CrossEntropyArgs &args, int64_t r) {
  int64_t label = args.labels[r];
  if (args.hasIgnore && label == args.ignore)
    return false;
  if (label < 0 || label >= args.classes) {
    raise(args.error);
    return false;
  }
  return true;
}

/// scratch[r] = the row's loss (0 if ignored), scratch[rows + r] = counted.
__global__ void crossEntropyRowsKernel(CrossEntropyArgs args) {
  int64_t r = warpRow();
  if (r >= args.rows)
    return;
  bool counts = labelCounts(args, r);
  const float *row = args.logits + r * args.classes;
  RowExp e = rowExp(row, args.classes);
  if (threadIdx.x % 32 == 0) {
    args.scratch[r] = counts ? logf(e.sum) - (row[args.labels[r]] - e.max) : 0.0f;
    args.scratch[args.rows + r] = counts ? 1.0f : 0.0f;
  }
}

/// Sums per-row values in a fixed order (double), for the loss or the count.
__global__ void crossEntropyTotalKernel(CrossEntropyArgs args, bool lossToo) {
  __shared__ double loss[kThreads], counted[kThreads];
  double l = 0, c = 0;
  for (int64_t r = threadIdx.x; r < args.rows; r += blockDim.x) {
    if (lossToo)
      l += args.scratch[r];
    c += args.scratch[args.rows + r];
  }
  loss[threadIdx.x] = l;
  counted[threadIdx.x] = c;
  __syncthreads();
  for (int half = kThreads / 2; half > 0; half /= 2) {
    if (threadIdx.x < half) {
      loss[threadIdx.x] += loss[threadIdx.x + half];
      counted[threadIdx.x] += counted[threadIdx.x + half];
    }
    __syncthreads();
  }
  if (threadIdx.x == 0) {
    if (lossToo) // a mean over no counted rows is 0/0, as in PyTorch
      args.out[0] = static_cast<float>(args.mean ? loss[0] / counted[0] : loss[0]);
    else
      args.scratch[2 * args.rows] = static_cast<float>(counted[0]);
  }
}

__global__ void countLabelsKernel(CrossEntropyArgs args) {
  int64_t r = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (r < args.rows)
    args.scratch[args.rows + r] = labelCounts(args, r) ? 1.0f : 0.0f;
}

__global__ void crossEntropyGradKernel(CrossEntropyArgs args) {
  int64_t r = warpRow();
  if (r >= args.rows)
    return;
  float *dx = args.out + r * args.classes;
  if (args.scratch[args.rows + r] == 0.0f) {
    for (int64_t c = threadIdx.x % 32; c < args.classes; c += 32)
      dx[c] = 0.0f;
    return;
  }
  float scale = args.seed[0] * (args.mean ? 1.0f / args.scratch[2 * args.rows] : 1.0f);
  const float *row = args.logits + r * args.classes;
  RowExp e = rowExp(row, args.classes);
  int64_t label = args.labels[r];
  for (int64_t c = threadIdx.x % 32; c < args.classes; c += 32)
    dx[c] = scale * (expf(row[c] - e.max) / e.sum - (c == label ? 1.0f : 0.0f));
}

//===--------------------------------------------------------------------===//
// Gradient statistics (and the fused unscale)
//===--------------------------------------------------------------------===//

__global__ void gradientStatsPartialKernel(GradientStatsArgs args) {
  __shared__ double squares[kThreads];
  __shared__ int bad[kThreads];
  double sum = 0;
  int nonFinite = 0;
  float inverse = args.scale ? static_cast<float>(1.0 / static_cast<double>(args.scale[0])) : 1.0f;
  for (int t = 0; t < args.numSlots; ++t) {
    TensorSlot slot = args.slots[t];
    float *unscaled = args.unscaled ? static_cast<float *>(const_cast<void *>(args.unscaled[t].data))
                                    : nullptr;
    for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < slot.count;
         i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
      float v = fused::loadAs(slot.data, slot.storage, i);
      if (args.scale) {
        v *= inverse;
        unscaled[i] = v;
      }
      sum += static_cast<double>(v) * v;
      nonFinite |= !math::isFinite(v);
    }
  }
  squares[threadIdx.x] = sum;
  bad[threadIdx.x] = nonFinite;
  __syncthreads();
  for (int half = kThreads / 2; half > 0; half /= 2) {
    if (threadIdx.x < half) {
      squares[threadIdx.x] += squares[threadIdx.x + half];
      bad[threadIdx.x] |= bad[threadIdx.x + half];
    }
    __syncthreads();
  }
  if (threadIdx.x == 0) {
    args.partials[2 * blockIdx.x] = squares[0];
    args.partials[2 * blockIdx.x + 1] = bad[0];
  }
}

__global__ void gradientStatsFinalKernel(GradientStatsArgs args) {
  if (threadIdx.x != 0)
    return;
  double sum = 0, bad = 0;
  for (int b = 0; b < kStatsBlocks; ++b) {
    sum += args.partials[2 * b];
    bad += args.partials[2 * b + 1];
  }
  if (args.found)
    args.found[0] = bad != 0 ? 1.0f : 0.0f;
  if (args.norm)
    args.norm[0] = static_cast<float>(sqrt(sum));
}

//===--------------------------------------------------------------------===//
// Optimizer updates: blockIdx.y picks the parameter
//===--------------------------------------------------------------------===//

template <typename Update>
__device__ void updateSlot(const UpdateSlot &slot, bool skip, Update update) {
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < slot.count;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    float p = slot.param[i], s0 = slot.state0 ? slot.state0[i] : 0.0f,
          s1 = slot.state1 ? slot.state1[i] : 0.0f;
    if (!skip)
      update(slot.grad[i], p, s0, s1);
    slot.paramOut[i] = p;
    if (slot.state0Out)
      slot.state0Out[i] = s0;
    if (slot.state1Out)
      slot.state1Out[i] = s1;
    if (slot.low)
      fused::storeAs(slot.low, slot.lowType, i, p);
  }
}

__global__ void adamwKernel(AdamWArgs args) {
  __shared__ math::AdamWScalars scalars;
  if (threadIdx.x == 0)
    scalars = math::adamwScalars(args.lr, args.beta1, args.beta2, args.eps, args.weightDecay,
                                 args.step[0] + 1, args.huggingface);
  __syncthreads();
  bool skip = args.skip && args.skip[0] != 0.0f;
  math::AdamWScalars s = scalars;
  updateSlot(args.slots[blockIdx.y], skip, [&](float g, float &p, float &m, float &v) {
    math::adamwElement(s, g, p, m, v);
  });
}

__global__ void sgdKernel(SgdArgs args) {
  bool skip = args.skip && args.skip[0] != 0.0f;
  updateSlot(args.slots[blockIdx.y], skip, [&](float g, float &p, float &b, float &) {
    math::sgdElement(args.lr, args.momentum, args.weightDecay, args.nesterov, g, p, b);
  });
}

//===--------------------------------------------------------------------===//
// Scalars: the loss scale, step counters, clipping
//===--------------------------------------------------------------------===//

__global__ void incrementKernel(ScalarArgs args) {
  args.iOut0[0] = args.skip && args.skip[0] != 0.0f ? args.i0[0] : args.i0[0] + 1;
}

__global__ void updateLossScaleKernel(ScalarArgs args) {
  // f0: scale, i0: growth tracker, f1: found non-finite; a/b: growth and
  // backoff factors, n: growth interval.
  float scale = args.f0[0];
  int64_t tracker = args.i0[0];
  if (!args.skip || args.skip[0] == 0.0f)
    math::updateLossScale(scale, tracker, args.f1[0] != 0.0f, args.a, args.b, args.n);
  args.fOut0[0] = scale;
  args.iOut0[0] = tracker;
}

__global__ void accumulationStepKernel(ScalarArgs args) {
  int64_t next = args.i0[0] + 1;
  args.fOut0[0] = next >= args.n ? 1.0f : 0.0f;
  args.iOut0[0] = next % args.n;
}

__global__ void clipCoefficientKernel(ScalarArgs args) {
  args.fOut0[0] = math::clipCoefficient(args.f0[0], static_cast<float>(args.a));
}

} // namespace

cudaError_t launchFused(const FusedArgs &args, cudaStream_t stream) {
  fusedKernel<<<blocksFor(args.program.count, kThreads * kPerThread, 4096), kThreads, 0,
                stream>>>(args);
  return cudaGetLastError();
}

cudaError_t launchUnscale(const UnscaleArgs &args, cudaStream_t stream) {
  unscaleKernel<<<blocksFor(args.count, kThreads, 4096), kThreads, 0, stream>>>(args);
  return cudaGetLastError();
}

cudaError_t launchZeroIf(const float *x, const float *flag, float *y, int64_t n,
                         cudaStream_t stream) {
  zeroIfKernel<<<blocksFor(n, kThreads, 4096), kThreads, 0, stream>>>(x, flag, y, n);
  return cudaGetLastError();
}

cudaError_t launchReduce(const ReduceArgs &args, cudaStream_t stream) {
  return args.max ? launchReduction<MaxStep>(args, stream) : launchReduction<SumStep>(args, stream);
}

cudaError_t launchSoftmax(const SoftmaxArgs &args, cudaStream_t stream) {
  softmaxKernel<<<blocksFor(args.slices * 32, kThreads, INT32_MAX), kThreads, 0, stream>>>(args);
  return cudaGetLastError();
}

cudaError_t launchCrossEntropy(const CrossEntropyArgs &args, cudaStream_t stream) {
  crossEntropyRowsKernel<<<blocksFor(args.rows * 32, kThreads, INT32_MAX), kThreads, 0,
                           stream>>>(args);
  crossEntropyTotalKernel<<<1, kThreads, 0, stream>>>(args, true);
  return cudaGetLastError();
}

cudaError_t launchCrossEntropyGrad(const CrossEntropyArgs &args, cudaStream_t stream) {
  countLabelsKernel<<<blocksFor(args.rows, kThreads, INT32_MAX), kThreads, 0, stream>>>(args);
  crossEntropyTotalKernel<<<1, kThreads, 0, stream>>>(args, false);
  crossEntropyGradKernel<<<blocksFor(args.rows * 32, kThreads, INT32_MAX), kThreads, 0,
                           stream>>>(args);
  return cudaGetLastError();
}

cudaError_t launchGradientStats(const GradientStatsArgs &args, cudaStream_t stream) {
  gradientStatsPartialKernel<<<kStatsBlocks, kThreads, 0, stream>>>(args);
  gradientStatsFinalKernel<<<1, 32, 0, stream>>>(args);
  return cudaGetLastError();
}

cudaError_t launchAdamW(const AdamWArgs &args, cudaStream_t stream) {
  dim3 grid(blocksFor(args.maxCount, kThreads * kPerThread, 1024), args.numSlots);
  adamwKernel<<<grid, kThreads, 0, stream>>>(args);
  return cudaGetLastError();
}

cudaError_t launchSgd(const SgdArgs &args, cudaStream_t stream) {
  dim3 grid(blocksFor(args.maxCount, kThreads * kPerThread, 1024), args.numSlots);
  sgdKernel<<<grid, kThreads, 0, stream>>>(args);
  return cudaGetLastError();
}

cudaError_t launchIncrement(const ScalarArgs &args, cudaStream_t stream) {
  incrementKernel<<<1, 1, 0, stream>>>(args);
  return cudaGetLastError();
}
cudaError_t launchUpdateLossScale(const ScalarArgs &args, cudaStream_t stream) {
  updateLossScaleKernel<<<1, 1, 0, stream>>>(args);
  return cudaGetLastError();
}
cudaError_t launchAccumulationStep(const ScalarArgs &args, cudaStream_t stream) {
  accumulationStepKernel<<<1, 1, 0, stream>>>(args);
  return cudaGetLastError();
}
cudaError_t launchClipCoefficient(const ScalarArgs &args, cudaStream_t stream) {
  clipCoefficientKernel<<<1, 1, 0, stream>>>(args);
  return cudaGetLastError();
}

} // namespace amprt::cuda
