//===- CpuPooling.cpp - max pooling and its gradient ----------------------===//
//
// Plain C++ over [N, C, spatial...] planes, one plane per OpenMP task. Max
// pooling writes, next to each maximum, its flat index in the input plane,
// and its gradient scatters through those indices; average pooling divides
// each window's sum by its count; gradients sum in f32 per plane and round
// once. (Not oneDNN's pooling: its workspace is an opaque,
// layout-specific buffer, while these indices are plain data that both
// backends and checkpoints can share.)
//
//===----------------------------------------------------------------------===//

#include "CnnChecks.h"
#include "CpuConversions.h"
#include "CpuKernelSupport.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <type_traits>
#include <vector>

namespace amprt {
namespace {

/// The number of planes and their input and result sizes.
struct Planes {
  int64_t count, inSize, outSize;
};

Planes planesOf(const TensorRef &x, const TensorRef &y) {
  return {x.shape[0] * x.shape[1], product(x.shape, 2), product(y.shape, 2)};
}

/// Max pooling of one plane: for each output position, the largest input in
/// its window (larger, or NaN over a number, as in PyTorch; ties keep the
/// earlier tap) and its flat index.
template <typename T>
void maxPoolPlane(const T *x, T *y, int64_t *index, const PoolGeometry &g, int64_t outCount) {
  for (int64_t flat = 0; flat < outCount; ++flat) {
    float best = -INFINITY;
    int64_t bestIndex = -1;
    forEachTapInside(g, flat, [&](int64_t offset) {
      float v = math::load(x[offset]);
      if (bestIndex < 0 || v > best || (std::isnan(v) && !std::isnan(best))) {
        best = v;
        bestIndex = offset;
      }
    });
    // A window entirely in padding (possible with ceil_mode) has no input.
    y[flat] = math::store<T>(bestIndex < 0 ? 0.0f : best);
    index[flat] = bestIndex;
  }
}

/// Whether tap `v` (at `offset`) becomes the maximum over `best` (as in
/// maxPoolPlane: larger, or NaN over a number), blended through
/// masks: GCC compiles `take ? v : best` to a branch, which mispredicts on
/// about half of the taps.
AMPRT_ALWAYS_INLINE inline void takeIfBeats(float v, int64_t offset, float &best,
                                            int64_t &bestIndex) {
  bool take = (v > best) | ((v != v) & (best == best));
  uint32_t mask = 0u - static_cast<uint32_t>(take);
  best = math::bitsFloat((math::floatBits(v) & mask) | (math::floatBits(best) & ~mask));
  int64_t wideMask = -static_cast<int64_t>(take);
  bestIndex = (offset & wideMask) | (bestIndex & ~wideMask);
}

/// A 2-D max pooling's scratch, per thread: each input row's maximum over
/// each output column's taps, and their indices; for bf16, the plane
/// widened and its result before rounding.
struct RowMaxima {
  std::vector<float> value;
  std::vector<int64_t> index;
  std::vector<float> plane, pooled;
};

/// One column tap of 2-D windows: its index kw and the output columns
/// whose tap kw is inside the input (contiguous: a tap's column grows with
/// the output column).
struct ColumnTap {
  int64_t kw;
  TapRange columns;
};

/// Where each 2-D window's taps lie inside the input, computed once per
/// kernel: for each output row, its taps inside; for each output column, its
/// first tap inside (-1: none); the column taps that some window has inside,
/// in increasing kw. Only taps inside are listed, so the tables stay within
/// the tensors' sizes whatever the kernel's.
struct WindowTaps {
  std::vector<TapRange> rowTaps;
  std::vector<int64_t> firstColumn;
  std::vector<ColumnTap> columnTaps;
};

WindowTaps windowTaps(const PoolGeometry &g) {
  WindowTaps taps;
  for (int64_t oh = 0; oh < g.out[0]; ++oh)
    taps.rowTaps.push_back(tapsOfResult(g, 0, oh));
  std::map<int64_t, TapRange> columnsOfTap;
  for (int64_t ow = 0; ow < g.out[1]; ++ow) {
    int64_t left = windowStart(g, 1, ow);
    TapRange live = tapsOfResult(g, 1, ow);
    taps.firstColumn.push_back(live.begin < live.end ? left + live.begin * g.dilations[1] : -1);
    for (int64_t kw = live.begin; kw < live.end; ++kw) {
      auto [entry, added] = columnsOfTap.try_emplace(kw, TapRange{ow, ow + 1});
      entry->second.end = ow + 1;
    }
  }
  for (auto [kw, columns] : columnsOfTap)
    taps.columnTaps.push_back({kw, columns});
  return taps;
}

/// The same for 2-D windows, the common case, in two separable passes: the
/// maximum of each input row over each output column's taps, then of those
/// row maxima over each output row's taps, a loop along the output row that
/// vectorises. The window's first maximum in row-major order is the first
/// maximum of its earliest row holding one. (Per window, each tap waited on
/// the previous tap's compare: 10 cycles a tap on ResNet-18's 3x3 pooling.)
template <typename T>
AMPRT_ALWAYS_INLINE inline void maxPoolPlane2d(const T *x, T *y, int64_t *index,
                                               const PoolGeometry &g, const WindowTaps &taps,
                                               RowMaxima &rows) {
  const int64_t inH = g.in[0], inW = g.in[1], outH = g.out[0], outW = g.out[1];
  const int64_t strideH = g.strides[0], strideW = g.strides[1], padH = g.padBegin[0],
                padW = g.padBegin[1], dilH = g.dilations[0], dilW = g.dilations[1];
  // Each row's maxima start as -inf with the first tap's index: the first
  // tap takes its place, or keeps it as -inf itself. A column whose taps
  // all lie in the padding keeps index -1. Column by column the taps stride
  // through the row; along the output row the maxima are independent.
  for (int64_t r = 0; r < inH; ++r) {
    float *best = rows.value.data() + r * outW;
    int64_t *at = rows.index.data() + r * outW;
    for (int64_t ow = 0; ow < outW; ++ow) {
      best[ow] = -INFINITY;
      at[ow] = taps.firstColumn[ow] < 0 ? -1 : r * inW + taps.firstColumn[ow];
    }
    for (const ColumnTap &tap : taps.columnTaps) {
      // Locals, and `omp simd`: the stores to `at` (int64) could otherwise
      // alias the bounds, which kept the loop scalar.
      int64_t shift = r * inW - padW + tap.kw * dilW, begin = tap.columns.begin,
              end = tap.columns.end;
#pragma omp simd
      for (int64_t ow = begin; ow < end; ++ow)
        takeIfBeats(math::load(x[shift + ow * strideW]), shift + ow * strideW, best[ow],
                    at[ow]);
    }
  }
  float *best = rows.value.data() + inH * outW; // one output row's maxima
  for (int64_t oh = 0; oh < outH; ++oh) {
    int64_t top = oh * strideH - padH;
    TapRange window = taps.rowTaps[oh];
    int64_t *at = index + oh * outW;
    if (window.begin == window.end)
      for (int64_t ow = 0; ow < outW; ++ow) {
        best[ow] = 0.0f;
        at[ow] = -1;
      }
    else
      for (int64_t ow = 0; ow < outW; ++ow) {
        best[ow] = rows.value[(top + window.begin * dilH) * outW + ow];
        at[ow] = rows.index[(top + window.begin * dilH) * outW + ow];
      }
    for (int64_t kh = window.begin + 1; kh < window.end; ++kh) {
      const float *value = rows.value.data() + (top + kh * dilH) * outW;
      const int64_t *rowIndex = rows.index.data() + (top + kh * dilH) * outW;
#pragma omp simd
      for (int64_t ow = 0; ow < outW; ++ow)
        takeIfBeats(value[ow], rowIndex[ow], best[ow], at[ow]);
    }
    // A window entirely in padding (possible with ceil_mode) has no input.
    for (int64_t ow = 0; ow < outW; ++ow)
      y[oh * outW + ow] = math::store<T>(at[ow] < 0 ? 0.0f : best[ow]);
  }
}

/// maxPoolPlane2d on f32 planes, compiled per vector width
/// (AMPRT_VECTOR_CLONES). bf16 planes are widened into f32 first, exactly,
/// and their maxima rounded back, exactly: the strided taps then load f32
/// lanes, which vectorise, where 16-bit ones went one at a time (ResNet-18's
/// max pooling took 1.5x as long in bf16 as in f32).
AMPRT_VECTOR_CLONES
void maxPoolPlane2dF32(const float *x, float *y, int64_t *index, const PoolGeometry &g,
                       const WindowTaps &taps, RowMaxima &rows) {
  maxPoolPlane2d(x, y, index, g, taps, rows);
}

Status buildMaxPool(const proto::Kernel &kernel, const TensorRef &x, const TensorRef &y,
                    const TensorRef &indices, std::unique_ptr<CpuKernel> *result) {
  PoolGeometry g;
  AMPRT_RETURN_IF_ERROR(checkMaxPool(kernel, x, y, indices, &g));
  Planes shape = planesOf(x, y);
  int64_t planes = shape.count, inPlane = shape.inSize, outPlane = shape.outSize;
  // The separable path's scratch holds each input row's maxima per result
  // column: only where that stays within the tensors' own sizes (a plan's
  // tall input and wide result would ask for gigabytes per thread).
  int64_t rowMaxima;
  bool separable = g.rank == 2 && !__builtin_mul_overflow(g.in[0], g.out[1], &rowMaxima) &&
                   rowMaxima <= inPlane + outPlane;
  WindowTaps taps = separable ? windowTaps(g) : WindowTaps{};
  return withFloatStorage(x.dtype, [&](auto storage) {
    using T = decltype(storage);
    const T *px = static_cast<const T *>(x.data);
    T *py = static_cast<T *>(y.data);
    int64_t *pi = indices.i64();
    *result = lambda([=] {
#pragma omp parallel
      {
        RowMaxima rows;
        if (separable) {
          rows.value.resize((g.in[0] + 1) * g.out[1]);
          rows.index.resize(g.in[0] * g.out[1]);
          if (std::is_same_v<T, math::Bf16>) {
            rows.plane.resize(inPlane);
            rows.pooled.resize(outPlane);
          }
        }
#pragma omp for schedule(static)
        for (int64_t p = 0; p < planes; ++p) {
          const T *planeX = px + p * inPlane;
          T *planeY = py + p * outPlane;
          int64_t *planeIndex = pi + p * outPlane;
          if (!separable) {
            maxPoolPlane(planeX, planeY, planeIndex, g, outPlane);
          } else if constexpr (std::is_same_v<T, float>) {
            maxPoolPlane2dF32(planeX, planeY, planeIndex, g, taps, rows);
          } else if constexpr (std::is_same_v<T, math::Bf16>) {
            cpu::widen(DType::BF16, planeX, rows.plane.data(), inPlane);
            maxPoolPlane2dF32(rows.plane.data(), rows.pooled.data(), planeIndex, g, taps, rows);
            cpu::narrow(DType::BF16, rows.pooled.data(), planeY, outPlane);
          } else {
            maxPoolPlane2d(planeX, planeY, planeIndex, g, taps, rows);
          }
        }
      }
      return Status::ok();
    });
    return Status::ok();
  });
}

Status buildMaxPoolGrad(const TensorRef &dy, const TensorRef &indices, const TensorRef &dx,
                        std::unique_ptr<CpuKernel> *result) {
  AMPRT_RETURN_IF_ERROR(checkMaxPoolGrad(dy, indices, dx));
  int64_t planes = dy.shape[0] * dy.shape[1];
  int64_t outPlane = dy.size() / std::max<int64_t>(planes, 1);
  int64_t inPlane = dx.size() / std::max<int64_t>(planes, 1);
  return withFloatStorage(dy.dtype, [&](auto storage) {
    using T = decltype(storage);
    const T *pdy = static_cast<const T *>(dy.data);
    const int64_t *pi = indices.i64();
    T *pdx = static_cast<T *>(dx.data);
    *result = lambda([=] {
      bool bad = false;
#pragma omp parallel for schedule(static) reduction(|| : bad)
      for (int64_t p = 0; p < planes; ++p) {
        std::vector<float> sum(inPlane, 0.0f); // f32, rounded once below
        for (int64_t o = 0; o < outPlane; ++o) {
          int64_t i = pi[p * outPlane + o];
          if (i >= inPlane) {
            bad = true;
            continue;
          }
          if (i >= 0)
            sum[i] += math::load(pdy[p * outPlane + o]);
        }
        for (int64_t i = 0; i < inPlane; ++i)
          pdx[p * inPlane + i] = math::store<T>(sum[i]);
      }
      return bad ? Status::error("max_pool_grad: an index lies outside the input plane")
                 : Status::ok();
    });
    return Status::ok();
  });
}

/// avg_pool (forward) or avg_pool_grad (`backward`): x is the pooled
/// input and y the pooled result, in each direction's own storage.
Status buildAvgPool(const proto::Kernel &kernel, bool backward, const TensorRef &from,
                    const TensorRef &to, std::unique_ptr<CpuKernel> *result) {
  const TensorRef &x = backward ? to : from, &y = backward ? from : to;
  PoolGeometry g;
  AMPRT_RETURN_IF_ERROR(checkAvgPool(kernel, x, y, &g));
  bool includePad = attr(kernel, "count_include_pad") != 0;
  Planes shape = planesOf(x, y);
  int64_t planes = shape.count, inPlane = shape.inSize, outPlane = shape.outSize;
  return withFloatStorage(x.dtype, [&](auto storage) {
    using T = decltype(storage);
    const T *source = static_cast<const T *>(from.data);
    T *target = static_cast<T *>(to.data);
    *result = lambda([=] {
#pragma omp parallel for schedule(static)
      for (int64_t p = 0; p < planes; ++p) {
        if (!backward) {
          for (int64_t o = 0; o < outPlane; ++o) {
            float sum = 0;
            forEachTapInside(g, o, [&](int64_t offset) {
              sum += math::load(source[p * inPlane + offset]);
            });
            auto divisor = static_cast<float>(windowDivisor(g, o, includePad));
            target[p * outPlane + o] = math::store<T>(divisor ? sum / divisor : 0.0f);
          }
          continue;
        }
        std::vector<float> sum(inPlane, 0.0f); // f32, rounded once below
        for (int64_t o = 0; o < outPlane; ++o) {
          auto divisor = static_cast<float>(windowDivisor(g, o, includePad));
          if (!divisor)
            continue;
          float share = math::load(source[p * outPlane + o]) / divisor;
          forEachTapInside(g, o, [&](int64_t offset) { sum[offset] += share; });
        }
        for (int64_t i = 0; i < inPlane; ++i)
          target[p * inPlane + i] = math::store<T>(sum[i]);
      }
      return Status::ok();
    });
    return Status::ok();
  });
}

} // namespace

Status buildPooling(const proto::Kernel &kernel, KernelId id, const std::vector<TensorRef> &in,
                    const std::vector<TensorRef> &out, std::unique_ptr<CpuKernel> *result) {
  switch (id) {
  case KernelId::MaxPool:
    return buildMaxPool(kernel, in[0], out[0], out[1], result);
  case KernelId::MaxPoolGrad:
    return buildMaxPoolGrad(in[0], in[1], out[0], result);
  case KernelId::AvgPool:
  case KernelId::AvgPoolGrad:
    return buildAvgPool(kernel, id == KernelId::AvgPoolGrad, in[0], out[0], result);
  default:
    return Status::error("not a pooling kernel");
  }
}

} // namespace amprt
