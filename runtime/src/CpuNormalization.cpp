//===- CpuNormalization.cpp - batch and layer normalization on the CPU ---===//
//
// batch_norm (training: batch statistics, then the running averages),
// batch_norm_inference and batch_norm_grad over activations [N, C,
// spatial...] of any float storage, with f32 statistics, scale and shift;
// layer_norm and layer_norm_grad over rows of activations the same way (one
// task per row; the scale and shift gradients sum columns over the rows).
// Hand-written rather than oneDNN 2.6's: on the plan's plain NCHW layout
// oneDNN runs its generic kernel (1.7 ms forward for ResNet-18's first batch
// norm at batch 64, where the three passes over memory take well under
// 1 ms), and it reads bf16 only through a slower path, so low precision was
// staged through f32 copies. Here each block of up to 16 channels is one task
// (channels are independent), read in memory order: sums run in 16 float
// lanes per row and in double across rows, bf16 is read and written
// directly, each output rounded once; f16 goes through f32 staging (vector
// conversions; scalar f16 loads were slower).
//
//===----------------------------------------------------------------------===//

#include "CnnChecks.h"
#include "CpuConversions.h"
#include "CpuKernelSupport.h"

#include <algorithm>
#include <cmath>
#include <type_traits>
#include <vector>

namespace amprt {
namespace {

constexpr int64_t kLanes = 16;

/// The activation's layout: `batch` rows of `spatial` values per channel.
struct Layout {
  int64_t batch, channels, spatial;
  int64_t count() const { return batch * spatial; } // values per channel
  int64_t offset(int64_t n, int64_t c) const { return (n * channels + c) * spatial; }
};

Layout layoutOf(const std::vector<int64_t> &shape) {
  return {shape[0], shape[1], product(shape, 2)};
}

/// A sum over rows: each row's first multiple of kLanes values in kLanes
/// float lanes (vectorisable without reordering any lane's sum), added to
/// kLanes double lanes; the rest of each row in one double; all of it
/// added up at the end. A channel of ResNet-18's last maps has 64 rows of
/// 1 to 16 values: adding each row's lanes up into one double, a chain of
/// 16 dependent adds, cost more than the row itself.
///
/// An aggregate, zeroed with `{}` where declared: clang 22 left the
/// implicit constructor of default member initialisers undefined in the
/// AMPRT_VECTOR_CLONES clones that use it (a link error).
struct LaneSums {
  double lanes[kLanes];
  double rest;

  template <typename Term> AMPRT_ALWAYS_INLINE void addRow(int64_t n, Term term) {
    int64_t i = 0;
    if (n >= kLanes) {
      float row[kLanes] = {};
      for (; i + kLanes <= n; i += kLanes)
        for (int64_t j = 0; j < kLanes; ++j)
          row[j] += term(i + j);
      for (int64_t j = 0; j < kLanes; ++j)
        lanes[j] += row[j];
    }
    for (; i < n; ++i)
      rest += term(i);
  }
  double total() const {
    double sum = rest;
    for (double lane : lanes)
      sum += lane;
    return sum;
  }
};

/// The sum of term(i) over [0, n), as one row of LaneSums.
template <typename Term> AMPRT_ALWAYS_INLINE inline double rowSum(int64_t n, Term term) {
  LaneSums sums{};
  sums.addRow(n, term);
  return sums.total();
}

/// out[i] = value(i) over [0, n), rounded once to T. `omp simd`: `out`
/// does not overlap the rows value(i) reads (the arena gives the tensors
/// one kernel reads and writes bytes of their own), which the compiler
/// cannot see; its overlap checks cost about 8% of ResNet-18's batch norms.
template <typename T, typename Value>
AMPRT_ALWAYS_INLINE inline void rowMap(T *out, int64_t n, Value value) {
#pragma omp simd
  for (int64_t i = 0; i < n; ++i)
    out[i] = math::store<T>(value(i));
}

/// One batch norm kernel's tensors: activations (x, and dy for the
/// backward) in f32 or bf16 storage, everything per channel in f32.
struct BatchNormTensors {
  Layout l;
  const void *x, *dy;
  void *out; // y, or dx for the backward
  const float *scale, *shift;
  float epsilon;
  float *mean, *variance; // the training forward writes them
  bool globalStats;
  float *dscale, *dshift;
};

/// Channels per task, at most. A block's rows are adjacent in memory for each
/// sample, so a task reads its block sample by sample, in memory order; a
/// channel at a time strode across the batch, one row per sample, and the
/// loads waited on memory.
constexpr int64_t kChannelBlock = 16;

/// Runs row(n, c, k) over the samples n and the block's channels c = c0 + k,
/// in memory order.
template <typename Row>
AMPRT_ALWAYS_INLINE inline void forRows(const Layout &l, int64_t c0, int64_t c1, Row row) {
  for (int64_t n = 0; n < l.batch; ++n)
    for (int64_t c = c0; c < c1; ++c)
      row(n, c, c - c0);
}

/// y = x * a + b per channel, with a = scale / sqrt(variance + epsilon)
/// and b = shift - mean * a from t.mean and t.variance: the inference
/// forward, and the training forward once it has written them.
template <typename T>
AMPRT_ALWAYS_INLINE inline void normalizeBlock(const BatchNormTensors &t, int64_t c0,
                                               int64_t c1) {
  const Layout &l = t.l;
  const T *x = static_cast<const T *>(t.x);
  T *y = static_cast<T *>(t.out);
  float a[kChannelBlock], b[kChannelBlock];
  for (int64_t c = c0; c < c1; ++c) {
    a[c - c0] = t.scale[c] / std::sqrt(t.variance[c] + t.epsilon);
    b[c - c0] = t.shift[c] - t.mean[c] * a[c - c0];
  }
  forRows(l, c0, c1, [&](int64_t n, int64_t c, int64_t k) {
    const T *v = x + l.offset(n, c);
    float ak = a[k], bk = b[k];
    rowMap(y + l.offset(n, c), l.spatial, [=](int64_t i) { return math::load(v[i]) * ak + bk; });
  });
}

/// The batch statistics (two passes: no cancellation in E[x^2] - m^2) into
/// t.mean and t.variance, then the normalized output.
template <typename T>
AMPRT_ALWAYS_INLINE inline void trainingBlock(const BatchNormTensors &t, int64_t c0, int64_t c1) {
  const Layout &l = t.l;
  const T *x = static_cast<const T *>(t.x);
  LaneSums sums[kChannelBlock] = {}, squares[kChannelBlock] = {};
  forRows(l, c0, c1, [&](int64_t n, int64_t c, int64_t k) {
    const T *v = x + l.offset(n, c);
    sums[k].addRow(l.spatial, [v](int64_t i) { return math::load(v[i]); });
  });
  for (int64_t c = c0; c < c1; ++c)
    t.mean[c] = static_cast<float>(sums[c - c0].total() / l.count());
  forRows(l, c0, c1, [&](int64_t n, int64_t c, int64_t k) {
    const T *v = x + l.offset(n, c);
    float m = t.mean[c];
    squares[k].addRow(l.spatial, [v, m](int64_t i) {
      float d = math::load(v[i]) - m;
      return d * d;
    });
  });
  for (int64_t c = c0; c < c1; ++c)
    t.variance[c] = static_cast<float>(squares[c - c0].total() / l.count());
  normalizeBlock<T>(t, c0, c1);
}

/// dx, dscale = sum(dy * xhat), dshift = sum(dy); with batch statistics dx
/// also carries the statistics' own gradient.
template <typename T>
AMPRT_ALWAYS_INLINE inline void backwardBlock(const BatchNormTensors &t, int64_t c0, int64_t c1) {
  const Layout &l = t.l;
  const T *x = static_cast<const T *>(t.x), *dy = static_cast<const T *>(t.dy);
  T *dx = static_cast<T *>(t.out);
  LaneSums dySums[kChannelBlock] = {}, dyCenteredSums[kChannelBlock] = {};
  forRows(l, c0, c1, [&](int64_t n, int64_t c, int64_t k) {
    const T *g = dy + l.offset(n, c), *v = x + l.offset(n, c);
    float m = t.mean[c];
    dySums[k].addRow(l.spatial, [g](int64_t i) { return math::load(g[i]); });
    dyCenteredSums[k].addRow(l.spatial, [g, v, m](int64_t i) {
      return math::load(g[i]) * (math::load(v[i]) - m);
    });
  });
  float a[kChannelBlock], meanDy[kChannelBlock], slope[kChannelBlock];
  for (int64_t c = c0; c < c1; ++c) {
    int64_t k = c - c0;
    float invStd = 1.0f / std::sqrt(t.variance[c] + t.epsilon);
    double sumDy = dySums[k].total(), sumDyCentered = dyCenteredSums[k].total();
    t.dshift[c] = static_cast<float>(sumDy);
    t.dscale[c] = static_cast<float>(sumDyCentered * invStd);
    a[k] = t.scale[c] * invStd;
    meanDy[k] = t.globalStats ? 0.0f : static_cast<float>(sumDy / l.count());
    slope[k] = t.globalStats ? 0.0f
                             : static_cast<float>(sumDyCentered / l.count()) * invStd * invStd;
  }
  forRows(l, c0, c1, [&](int64_t n, int64_t c, int64_t k) {
    const T *g = dy + l.offset(n, c), *v = x + l.offset(n, c);
    float ak = a[k], mdy = meanDy[k], m = t.mean[c], s = slope[k];
    rowMap(dx + l.offset(n, c), l.spatial, [=](int64_t i) {
      return ak * (math::load(g[i]) - mdy - (math::load(v[i]) - m) * s);
    });
  });
}

enum class BatchNormPass { Training, Inference, Backward };

/// One block of channels [c0, c1) of one pass, compiled per vector width
/// (AMPRT_VECTOR_CLONES): the baseline's SSE2 has no 32-to-16-bit pack, so
/// there the bf16 stores stay scalar, and bf16 ran slower than f32. A
/// function per block, not per kernel: an OpenMP region inside a clone
/// would be outlined before the cloning and run the baseline code.
AMPRT_VECTOR_CLONES
void runBlock(BatchNormPass pass, bool bf16, const BatchNormTensors &t, int64_t c0, int64_t c1) {
  switch (pass) {
  case BatchNormPass::Training:
    return bf16 ? trainingBlock<math::Bf16>(t, c0, c1) : trainingBlock<float>(t, c0, c1);
  case BatchNormPass::Inference:
    return bf16 ? normalizeBlock<math::Bf16>(t, c0, c1) : normalizeBlock<float>(t, c0, c1);
  case BatchNormPass::Backward:
    return bf16 ? backwardBlock<math::Bf16>(t, c0, c1) : backwardBlock<float>(t, c0, c1);
  }
}

/// Runs `pass` over every block of channels (independent: one task each;
/// each channel's sums run in the same order on any number of threads), in
/// parallel, on activations of storage `T`: f32 or bf16 (activationKernel
/// stages f16 through f32).
template <typename T> void runBatchNorm(BatchNormPass pass, const BatchNormTensors &t) {
  constexpr bool bf16 = std::is_same_v<T, math::Bf16>;
  // Blocks of up to kChannelBlock channels, smaller where that leaves a
  // thread without one (64 channels on 16 threads: blocks of 4).
  int64_t threads = omp_get_max_threads();
  int64_t size = std::clamp<int64_t>((t.l.channels + threads - 1) / threads, 1, kChannelBlock);
  int64_t blocks = (t.l.channels + size - 1) / size;
#pragma omp parallel for schedule(static)
  for (int64_t block = 0; block < blocks; ++block)
    runBlock(pass, bf16, t, block * size, std::min(t.l.channels, (block + 1) * size));
}

/// Layer norm of `rows` rows of `width` values: each row's mean and
/// inv_std (two passes), then y = (x - mean) * inv_std * scale + shift.
template <typename T>
void layerNormForward(const LayerNormShape &s, const T *x, T *y, const float *scale,
                      const float *shift, float *mean, float *invStd) {
  int64_t width = s.width;
#pragma omp parallel for schedule(static)
  for (int64_t r = 0; r < s.rows; ++r) {
    const T *v = x + r * width;
    float m = static_cast<float>(rowSum(width, [v](int64_t i) { return math::load(v[i]); }) /
                                 width);
    double squares = rowSum(width, [v, m](int64_t i) {
      float d = math::load(v[i]) - m;
      return d * d;
    });
    float inv = 1.0f / std::sqrt(static_cast<float>(squares / width) + s.epsilon);
    mean[r] = m;
    invStd[r] = inv;
    rowMap(y + r * width, width,
           [=](int64_t i) { return (math::load(v[i]) - m) * inv * scale[i] + shift[i]; });
  }
}

/// dx per row: inv_std * (g - mean(g) - xhat * mean(g * xhat)) with g = dy *
/// scale; dscale and dshift sum dy * xhat and dy over the rows, in column
/// blocks (each block one task, rows in order, so the sums are the same on
/// any thread count).
template <typename T>
void layerNormBackward(const LayerNormShape &s, const T *dy, const T *x, T *dx,
                       const float *scale, const float *mean, const float *invStd,
                       float *dscale, float *dshift) {
  int64_t width = s.width;
#pragma omp parallel for schedule(static)
  for (int64_t r = 0; r < s.rows; ++r) {
    const T *g = dy + r * width, *v = x + r * width;
    float m = mean[r], inv = invStd[r];
    float meanG = static_cast<float>(
        rowSum(width, [=](int64_t i) { return math::load(g[i]) * scale[i]; }) / width);
    float meanGX = static_cast<float>(rowSum(width, [=](int64_t i) {
                                        return math::load(g[i]) * scale[i] *
                                               (math::load(v[i]) - m) * inv;
                                      }) /
                                      width);
    rowMap(dx + r * width, width, [=](int64_t i) {
      float xhat = (math::load(v[i]) - m) * inv;
      return inv * (math::load(g[i]) * scale[i] - meanG - xhat * meanGX);
    });
  }
  constexpr int64_t kBlock = 64;
  int64_t blocks = (width + kBlock - 1) / kBlock;
#pragma omp parallel for schedule(static)
  for (int64_t b = 0; b < blocks; ++b) {
    int64_t begin = b * kBlock, end = std::min(width, begin + kBlock);
    double sumXhat[kBlock] = {}, sumDy[kBlock] = {};
    for (int64_t r = 0; r < s.rows; ++r) {
      const T *g = dy + r * width, *v = x + r * width;
      float m = mean[r], inv = invStd[r];
      for (int64_t j = begin; j < end; ++j) {
        float grad = math::load(g[j]);
        sumXhat[j - begin] += grad * (math::load(v[j]) - m) * inv;
        sumDy[j - begin] += grad;
      }
    }
    for (int64_t j = begin; j < end; ++j) {
      dscale[j] = static_cast<float>(sumXhat[j - begin]);
      dshift[j] = static_cast<float>(sumDy[j - begin]);
    }
  }
}

/// A kernel calling body(a, b, out) on the activations' storage: a and out
/// always, b (the second activation input) or null. f16 activations are
/// staged through f32 in the session's shared staging (the runtime's
/// vector conversions beat scalar f16 loads and stores here), widened
/// before and the result narrowed after.
template <typename Body>
Status activationKernel(CpuContext &context, const TensorRef &a, const TensorRef *b,
                        const TensorRef &out, std::unique_ptr<CpuKernel> *result, Body body) {
  if (a.dtype != DType::F16)
    return withFloatStorage(a.dtype, [&](auto storage) {
      using T = decltype(storage);
      const T *pa = static_cast<const T *>(a.data);
      const T *pb = b ? static_cast<const T *>(b->data) : nullptr;
      T *po = static_cast<T *>(out.data);
      *result = lambda([=] {
        body(pa, pb, po);
        return Status::ok();
      });
      return Status::ok();
    });
  for (std::vector<float> *staging : {&context.stagingA, &context.stagingB, &context.stagingC})
    if (staging->size() < static_cast<size_t>(a.size()))
      staging->resize(a.size());
  TensorRef second = b ? *b : TensorRef{};
  CpuContext *shared = &context;
  *result = lambda([=] {
    cpu::widen(DType::F16, a.data, shared->stagingA.data(), a.size());
    if (second.data)
      cpu::widen(DType::F16, second.data, shared->stagingB.data(), a.size());
    body(static_cast<const float *>(shared->stagingA.data()),
         second.data ? static_cast<const float *>(shared->stagingB.data()) : nullptr,
         shared->stagingC.data());
    cpu::narrow(DType::F16, shared->stagingC.data(), out.data, a.size());
    return Status::ok();
  });
  return Status::ok();
}

} // namespace

Status buildBatchNorm(const proto::Kernel &kernel, KernelId id, const std::vector<TensorRef> &in,
                      const std::vector<TensorRef> &out, CpuContext &context,
                      std::unique_ptr<CpuKernel> *result) {
  float epsilon;
  AMPRT_RETURN_IF_ERROR(checkBatchNorm(kernel, id, in, out, &epsilon));
  BatchNormTensors t{layoutOf(in[0].shape), nullptr, nullptr, nullptr, nullptr, nullptr,
                     epsilon, nullptr, nullptr, false, nullptr, nullptr};
  using std::remove_pointer_t;
  if (id == KernelId::BatchNorm) {
    // (x, scale, shift, running mean, running var) ->
    // (y, new running mean, new running var, batch mean, batch var)
    float momentum = static_cast<float>(attr(kernel, "momentum"));
    t.scale = in[1].f32();
    t.shift = in[2].f32();
    t.mean = out[3].f32();
    t.variance = out[4].f32();
    return activationKernel(context, in[0], nullptr, out[0], result,
                            [=](const auto *x, const auto *, auto *y) {
      BatchNormTensors bound = t;
      bound.x = x;
      bound.out = y;
      runBatchNorm<remove_pointer_t<decltype(y)>>(BatchNormPass::Training, bound);
      // running = running * momentum + batch * (1 - momentum) (ONNX; the
      // population variance), per element, so it may overwrite the old.
      for (int k = 0; k < 2; ++k)
        for (int64_t c = 0; c < t.l.channels; ++c)
          out[1 + k].f32()[c] =
              in[3 + k].f32()[c] * momentum + out[3 + k].f32()[c] * (1.0f - momentum);
    });
  }
  if (id == KernelId::BatchNormInference) {
    // (x, scale, shift, mean, var) -> y
    t.scale = in[1].f32();
    t.shift = in[2].f32();
    t.mean = in[3].f32();
    t.variance = in[4].f32();
    return activationKernel(context, in[0], nullptr, out[0], result,
                            [=](const auto *x, const auto *, auto *y) {
      BatchNormTensors bound = t;
      bound.x = x;
      bound.out = y;
      runBatchNorm<remove_pointer_t<decltype(y)>>(BatchNormPass::Inference, bound);
    });
  }
  // BatchNormGrad: (dy, x, scale, mean, var) -> (dx, dscale, dshift)
  t.scale = in[2].f32();
  t.mean = in[3].f32();
  t.variance = in[4].f32();
  t.globalStats = attr(kernel, "use_global_stats") != 0;
  t.dscale = out[1].f32();
  t.dshift = out[2].f32();
  return activationKernel(context, in[0], &in[1], out[0], result,
                          [=](const auto *dy, const auto *x, auto *dx) {
    BatchNormTensors bound = t;
    bound.dy = dy;
    bound.x = x;
    bound.out = dx;
    runBatchNorm<remove_pointer_t<decltype(dx)>>(BatchNormPass::Backward, bound);
  });
}

Status buildLayerNorm(const proto::Kernel &kernel, KernelId id, const std::vector<TensorRef> &in,
                      const std::vector<TensorRef> &out, CpuContext &context,
                      std::unique_ptr<CpuKernel> *result) {
  LayerNormShape s;
  AMPRT_RETURN_IF_ERROR(checkLayerNorm(kernel, id, in, out, &s));
  if (id == KernelId::LayerNorm) // (x, scale, shift) -> (y, mean, inv_std)
    return activationKernel(context, in[0], nullptr, out[0], result,
                            [=](const auto *x, const auto *, auto *y) {
      layerNormForward(s, x, y, in[1].f32(), in[2].f32(), out[1].f32(), out[2].f32());
    });
  // (dy, x, scale, mean, inv_std) -> (dx, dscale, dshift)
  return activationKernel(context, in[0], &in[1], out[0], result,
                          [=](const auto *dy, const auto *x, auto *dx) {
    layerNormBackward(s, dy, x, dx, in[2].f32(), in[3].f32(), in[4].f32(), out[1].f32(),
                      out[2].f32());
  });
}

} // namespace amprt
