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
// staged through f32 copies. Here each channel is one task (channels are
// independent): sums run in 16 float lanes per row and in double across
// rows, bf16 is read and written directly, each output rounded once; f16 goes
// through f32 staging (vector conversions; scalar f16 loads were slower).
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

/// The sum of term(i) over [0, n), in kLanes float lanes (vectorisable
/// without reordering any lane's sum), added up in double.
template <typename Term> double rowSum(int64_t n, Term term) {
  float lanes[kLanes] = {};
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes)
    for (int64_t j = 0; j < kLanes; ++j)
      lanes[j] += term(i + j);
  double sum = 0;
  for (; i < n; ++i)
    sum += term(i);
  for (float lane : lanes)
    sum += lane;
  return sum;
}

/// out[i] = value(i) over [0, n), rounded once to T.
template <typename T, typename Value> void rowMap(T *out, int64_t n, Value value) {
  for (int64_t i = 0; i < n; ++i)
    out[i] = math::store<T>(value(i));
}

/// Runs perChannel(c) for every channel, in parallel.
template <typename Fn> void forEachChannel(const Layout &l, Fn perChannel) {
#pragma omp parallel for schedule(static)
  for (int64_t c = 0; c < l.channels; ++c)
    perChannel(c);
}

template <typename T>
void forwardTraining(const Layout &l, const T *x, T *y, const float *scale, const float *shift,
                     float epsilon, float *mean, float *variance) {
  forEachChannel(l, [&](int64_t c) {
    double sum = 0;
    for (int64_t n = 0; n < l.batch; ++n) {
      const T *v = x + l.offset(n, c);
      sum += rowSum(l.spatial, [v](int64_t i) { return math::load(v[i]); });
    }
    float m = static_cast<float>(sum / l.count());
    double squares = 0; // two passes: no cancellation in E[x^2] - m^2
    for (int64_t n = 0; n < l.batch; ++n) {
      const T *v = x + l.offset(n, c);
      squares += rowSum(l.spatial, [v, m](int64_t i) {
        float d = math::load(v[i]) - m;
        return d * d;
      });
    }
    float var = static_cast<float>(squares / l.count());
    mean[c] = m;
    variance[c] = var;
    float a = scale[c] / std::sqrt(var + epsilon), b = shift[c] - m * a;
    for (int64_t n = 0; n < l.batch; ++n) {
      const T *v = x + l.offset(n, c);
      rowMap(y + l.offset(n, c), l.spatial, [=](int64_t i) { return math::load(v[i]) * a + b; });
    }
  });
}

template <typename T>
void forwardInference(const Layout &l, const T *x, T *y, const float *scale, const float *shift,
                      float epsilon, const float *mean, const float *variance) {
  forEachChannel(l, [&](int64_t c) {
    float a = scale[c] / std::sqrt(variance[c] + epsilon), b = shift[c] - mean[c] * a;
    for (int64_t n = 0; n < l.batch; ++n) {
      const T *v = x + l.offset(n, c);
      rowMap(y + l.offset(n, c), l.spatial, [=](int64_t i) { return math::load(v[i]) * a + b; });
    }
  });
}

/// dx, dscale = sum(dy * xhat), dshift = sum(dy); with batch statistics dx
/// also carries the statistics' own gradient.
template <typename T>
void backward(const Layout &l, const T *dy, const T *x, T *dx, const float *scale,
              const float *mean, const float *variance, float epsilon, bool globalStats,
              float *dscale, float *dshift) {
  forEachChannel(l, [&](int64_t c) {
    float m = mean[c], invStd = 1.0f / std::sqrt(variance[c] + epsilon);
    double sumDy = 0, sumDyCentered = 0;
    for (int64_t n = 0; n < l.batch; ++n) {
      const T *g = dy + l.offset(n, c), *v = x + l.offset(n, c);
      sumDy += rowSum(l.spatial, [g](int64_t i) { return math::load(g[i]); });
      sumDyCentered += rowSum(l.spatial, [g, v, m](int64_t i) {
        return math::load(g[i]) * (math::load(v[i]) - m);
      });
    }
    dshift[c] = static_cast<float>(sumDy);
    dscale[c] = static_cast<float>(sumDyCentered * invStd);
    float a = scale[c] * invStd;
    float meanDy = globalStats ? 0.0f : static_cast<float>(sumDy / l.count());
    float k = globalStats ? 0.0f
                          : static_cast<float>(sumDyCentered / l.count()) * invStd * invStd;
    for (int64_t n = 0; n < l.batch; ++n) {
      const T *g = dy + l.offset(n, c), *v = x + l.offset(n, c);
      rowMap(dx + l.offset(n, c), l.spatial, [=](int64_t i) {
        return a * (math::load(g[i]) - meanDy - (math::load(v[i]) - m) * k);
      });
    }
  });
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
  Layout l = layoutOf(in[0].shape);
  if (id == KernelId::BatchNorm) {
    // (x, scale, shift, running mean, running var) ->
    // (y, new running mean, new running var, batch mean, batch var)
    float momentum = static_cast<float>(attr(kernel, "momentum"));
    return activationKernel(context, in[0], nullptr, out[0], result,
                            [=](const auto *x, const auto *, auto *y) {
      forwardTraining(l, x, y, in[1].f32(), in[2].f32(), epsilon, out[3].f32(), out[4].f32());
      // running = running * momentum + batch * (1 - momentum) (ONNX; the
      // population variance), per element, so it may overwrite the old.
      for (int k = 0; k < 2; ++k)
        for (int64_t c = 0; c < l.channels; ++c)
          out[1 + k].f32()[c] =
              in[3 + k].f32()[c] * momentum + out[3 + k].f32()[c] * (1.0f - momentum);
    });
  }
  if (id == KernelId::BatchNormInference) {
    // (x, scale, shift, mean, var) -> y
    return activationKernel(context, in[0], nullptr, out[0], result,
                            [=](const auto *x, const auto *, auto *y) {
      forwardInference(l, x, y, in[1].f32(), in[2].f32(), epsilon, in[3].f32(), in[4].f32());
    });
  }
  // BatchNormGrad: (dy, x, scale, mean, var) -> (dx, dscale, dshift)
  bool globalStats = attr(kernel, "use_global_stats") != 0;
  return activationKernel(context, in[0], &in[1], out[0], result,
                          [=](const auto *dy, const auto *x, auto *dx) {
    backward(l, dy, x, dx, in[2].f32(), in[3].f32(), in[4].f32(), epsilon, globalStats,
             out[1].f32(), out[2].f32());
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
