//===- CpuReduction.cpp - reductions and the softmax cross-entropy --------===//
//
// Numerically sensitive kernels, computing in f32: autocast keeps them in
// FP32. The reductions read a bf16/f16 input themselves (widening is exact,
// so the sums are those of the cast input); the cross-entropy takes f32.
//
//===----------------------------------------------------------------------===//

#include "CpuConversions.h"
#include "CpuKernelSupport.h"

#include <algorithm>
#include <cmath>

namespace amprt {
namespace {

/// exp for the softmaxes: KernelMath's branch-free exp, which vectorises
/// (glibc's expf is a call per element), and 0 below -87, where expf's
/// values are subnormal or 0 (beside the row maximum's exp(0) = 1 they count
/// for nothing) and a masked -inf gives exactly 0.
inline float expForSoftmax(float x) { return x < -87.0f ? 0.0f : math::expClamped(x); }

constexpr int kLanes = 16; // partial maxima and sums, one vector register's worth

/// The maximum of a row, NaN if it holds one (math::maxOrNaN, as reduce_max).
AMPRT_VECTOR_CLONES float rowMax(const float *row, int64_t n) {
  float lanes[kLanes];
  std::fill_n(lanes, kLanes, -INFINITY);
  int64_t c = 0;
  for (; c + kLanes <= n; c += kLanes)
    for (int j = 0; j < kLanes; ++j)
      lanes[j] = math::maxOrNaN(lanes[j], row[c + j]);
  float result = -INFINITY;
  for (; c < n; ++c)
    result = math::maxOrNaN(result, row[c]);
  for (float lane : lanes)
    result = math::maxOrNaN(result, lane);
  return result;
}

/// The sum of a row, in kLanes partial sums (as vectorised sums do; a
/// running sum is one add's latency per element).
AMPRT_VECTOR_CLONES float rowSum(const float *row, int64_t n) {
  float lanes[kLanes] = {};
  int64_t c = 0;
  for (; c + kLanes <= n; c += kLanes)
    for (int j = 0; j < kLanes; ++j)
      lanes[j] += row[c + j];
  float sum = 0.0f;
  for (; c < n; ++c)
    sum += row[c];
  for (float lane : lanes)
    sum += lane;
  return sum;
}

/// The sum of exp(x - max) over a row, and each term into `out` (if given).
AMPRT_VECTOR_CLONES float expSum(const float *row, int64_t n, float max, float *out) {
  float lanes[kLanes] = {};
  int64_t c = 0;
  for (; c + kLanes <= n; c += kLanes)
    for (int j = 0; j < kLanes; ++j) {
      float e = expForSoftmax(row[c + j] - max);
      if (out)
        out[c + j] = e;
      lanes[j] += e;
    }
  float sum = 0.0f;
  for (; c < n; ++c) {
    float e = expForSoftmax(row[c] - max);
    if (out)
      out[c] = e;
    sum += e;
  }
  for (float lane : lanes)
    sum += lane;
  return sum;
}

/// A row's maximum and sum of exp(x - max). Results are formed relative to
/// the maximum (x - max, never x - logsumexp), which stays exact for large
/// logits where max + log(sum) would round.
struct RowExp {
  float max, sum;
};
inline RowExp rowExp(const float *row, int64_t classes, float *terms = nullptr) {
  float maxValue = rowMax(row, classes);
  return {maxValue, expSum(row, classes, maxValue, terms)};
}

/// out[c] = scale * out[c] / sum over a row (the terms expSum wrote).
AMPRT_VECTOR_CLONES void normalise(float *out, int64_t n, float sum, float scale) {
  for (int64_t c = 0; c < n; ++c)
    out[c] = scale * (out[c] / sum);
}

/// dst[j] = dst[j] + src[j] (or the maximum, NaN winning) over a row.
AMPRT_VECTOR_CLONES void combineRow(bool max, float *dst, const float *src, int64_t n) {
  if (max)
    for (int64_t j = 0; j < n; ++j)
      dst[j] = math::maxOrNaN(dst[j], src[j]);
  else
    for (int64_t j = 0; j < n; ++j)
      dst[j] += src[j];
}

/// dst[j] += src[j] over a bf16 row, widened as it is loaded (a call to
/// cpu::widen per short row of a column sum costs more than the sum).
AMPRT_VECTOR_CLONES void addBf16Row(float *dst, const uint16_t *src, int64_t n) {
  for (int64_t j = 0; j < n; ++j)
    dst[j] += math::bf16ToFloat(src[j]);
}

} // namespace

Status buildReduction(const proto::Kernel &kernel, KernelId id, const TensorRef &in,
                      const TensorRef &out, std::unique_ptr<CpuKernel> *result) {
  bool max = id == KernelId::ReduceMax;
  const char *name = max ? "reduce_max" : "reduce_sum";
  AMPRT_RETURN_IF_ERROR(requireF32({out}, name));
  if (in.dtype != DType::F32 && in.dtype != DType::BF16 && in.dtype != DType::F16)
    return Status::error(std::string(name) + " reads a float tensor, got " +
                         dtypeName(in.dtype));
  // Output strides over the input's index space, 0 along reduced axes.
  size_t rank = in.shape.size();
  std::vector<bool> reduced(rank, false);
  for (int64_t axis : kernel.axes()) {
    if (axis < 0 || axis >= static_cast<int64_t>(rank))
      return Status::error("axis " + std::to_string(axis) + " is out of range");
    reduced[axis] = true;
  }
  std::vector<int64_t> keptShape(rank), strides(rank, 0);
  int64_t stride = 1, expected = 1;
  for (size_t i = rank; i-- > 0;) {
    keptShape[i] = reduced[i] ? 1 : in.shape[i];
    strides[i] = reduced[i] ? 0 : stride;
    stride *= keptShape[i];
    expected *= keptShape[i];
  }
  if (expected != out.size())
    return Status::error("output size does not match the reduction");
  auto inShape = in.shape;
  const char *pin = static_cast<const char *>(in.data);
  DType inType = in.dtype;
  size_t inSize = dtypeSize(inType);
  float *pout = out.f32();
  int64_t outCount = out.size();
  float identity = max ? -INFINITY : 0.0f;
  auto combine = [max](float a, float b) { return max ? math::maxOrNaN(a, b) : a + b; };
  *result = lambda([=] {
    std::fill(pout, pout + outCount, identity);
    size_t r = rank;
    if (r == 0) {
      cpu::widen(inType, pin, pout, 1);
      return Status::ok();
    }
    int64_t inner = inShape[r - 1], rows = 1;
    for (size_t i = 0; i + 1 < r; ++i)
      rows *= inShape[i];
    // Rows [all] and columns [begin, end) of the innermost dim, in row order:
    // several input rows accumulate into one output element.
    // A bf16 column sum widens as it adds; other low inputs go through a row buffer.
    bool bf16Columns = inType == DType::BF16 && !max && strides[r - 1] != 0;
    auto accumulate = [&](int64_t begin, int64_t end) {
      std::vector<float> widened(inType == DType::F32 || bf16Columns ? 0 : end - begin);
      for (int64_t row = 0; row < rows; ++row) {
        int64_t base = 0, rest = row;
        for (size_t i = r - 1; i-- > 0;) {
          base += (rest % inShape[i]) * strides[i];
          rest /= inShape[i];
        }
        // The row's columns [begin, end) as f32.
        const char *bytes = pin + (row * inner + begin) * inSize;
        if (bf16Columns) {
          addBf16Row(pout + base + begin, reinterpret_cast<const uint16_t *>(bytes), end - begin);
          continue;
        }
        const float *src = reinterpret_cast<const float *>(bytes);
        if (inType != DType::F32) {
          cpu::widen(inType, bytes, widened.data(), end - begin);
          src = widened.data();
        }
        if (strides[r - 1] == 0) {
          float total = max ? rowMax(src, end - begin) : rowSum(src, end - begin);
          pout[base] = combine(pout[base], total);
        } else {
          combineRow(max, pout + base + begin, src, end - begin);
        }
      }
    };
    // A kept innermost dim (bias gradients: [tokens, features] -> [features])
    // splits across the threads by columns; each element still sums its
    // rows in order, so the result does not depend on the thread count.
    if (strides[r - 1] != 0 && inner >= 64 && rows * inner > 65536 && worthARegion(2)) {
#pragma omp parallel
      {
        int64_t t = omp_get_thread_num(), n = omp_get_num_threads();
        accumulate(inner * t / n, inner * (t + 1) / n);
      }
    } else {
      accumulate(0, inner);
    }
    return Status::ok();
  });
  return Status::ok();
}

Status buildSoftmaxCrossEntropy(const proto::Kernel &kernel, const TensorRef &logits,
                                const TensorRef &labels, const TensorRef &loss,
                                std::unique_ptr<CpuKernel> *result) {
  if (logits.shape.size() != 2 || labels.shape.size() != 1 ||
      labels.shape[0] != logits.shape[0] || labels.dtype != DType::I64 ||
      logits.dtype != DType::F32 || loss.dtype != DType::F32 || loss.size() != 1 ||
      logits.shape[1] < 1)
    return Status::error("expects [N, C] f32 logits, [N] int64 labels, a scalar loss");
  int64_t n = logits.shape[0], classes = logits.shape[1];
  bool mean = attr(kernel, "mean") != 0;
  LabelRule rule = labelRule(kernel);
  float *x = logits.f32(), *out = loss.f32();
  int64_t *y = labels.i64();
  *result = lambda([=] {
    int64_t counted;
    AMPRT_RETURN_IF_ERROR(checkLabels(y, n, classes, rule, &counted));
    double total = 0.0;
#pragma omp parallel for reduction(+ : total) schedule(static) if (n * classes > 32768)
    for (int64_t i = 0; i < n; ++i) {
      if (!rule.counts(y[i]))
        continue;
      const float *row = x + i * classes;
      RowExp e = rowExp(row, classes);
      total += std::log(e.sum) - (row[y[i]] - e.max);
    }
    // A mean over no counted rows is 0/0, as in PyTorch.
    out[0] = static_cast<float>(mean ? total / static_cast<double>(counted) : total);
    return Status::ok();
  });
  return Status::ok();
}

Status buildSoftmaxCrossEntropyGrad(const proto::Kernel &kernel, const TensorRef &grad,
                                    const TensorRef &logits, const TensorRef &labels,
                                    const TensorRef &out,
                                    std::unique_ptr<CpuKernel> *result) {
  if (logits.shape.size() != 2 || labels.shape.size() != 1 ||
      labels.shape[0] != logits.shape[0] || out.shape != logits.shape ||
      labels.dtype != DType::I64 || logits.dtype != DType::F32 || out.dtype != DType::F32 ||
      grad.dtype != DType::F32 || grad.size() != 1 || logits.shape[1] < 1)
    return Status::error("expects an f32 scalar gradient, [N, C] f32 logits, [N] int64 labels");
  int64_t n = logits.shape[0], classes = logits.shape[1];
  bool mean = attr(kernel, "mean") != 0;
  LabelRule rule = labelRule(kernel);
  float *g = grad.f32(), *x = logits.f32(), *dx = out.f32();
  int64_t *y = labels.i64();
  *result = lambda([=] {
    int64_t counted;
    AMPRT_RETURN_IF_ERROR(checkLabels(y, n, classes, rule, &counted));
    float scale = g[0] * (mean ? 1.0f / static_cast<float>(counted) : 1.0f);
#pragma omp parallel for schedule(static) if (n * classes > 32768)
    for (int64_t i = 0; i < n; ++i) {
      if (!rule.counts(y[i])) {
        for (int64_t c = 0; c < classes; ++c)
          dx[i * classes + c] = 0.0f;
        continue;
      }
      const float *row = x + i * classes;
      float *dxRow = dx + i * classes;
      RowExp e = rowExp(row, classes, dxRow);
      float labelTerm = dxRow[y[i]];
      normalise(dxRow, classes, e.sum, scale);
      dxRow[y[i]] = scale * (labelTerm / e.sum - 1.0f);
    }
    return Status::ok();
  });
  return Status::ok();
}

//===----------------------------------------------------------------------===//
// softmax
//===----------------------------------------------------------------------===//

Status buildSoftmax(const proto::Kernel &kernel, const TensorRef &in, const TensorRef &out,
                    bool log, std::unique_ptr<CpuKernel> *result) {
  SoftmaxShape shape;
  AMPRT_RETURN_IF_ERROR(checkSoftmax(kernel, in, out, &shape));
  const float *x = in.f32();
  float *y = out.f32();
  int64_t count = out.size(), width = shape.width, inner = shape.inner;
  int64_t slices = shape.outer * inner;
  *result = lambda([=] {
    // Slice s is element (o, :, i) of [outer, width, inner]: contiguous on
    // the last axis, strided by `inner` on the others.
#pragma omp parallel for schedule(static) if (count > 32768)
    for (int64_t s = 0; s < slices; ++s) {
      if (inner == 1) { // the last axis: contiguous rows, vectorised
        const float *row = x + s * width;
        float *yRow = y + s * width;
        RowExp e = rowExp(row, width, log ? nullptr : yRow);
        if (!log) {
          normalise(yRow, width, e.sum, 1.0f);
          continue;
        }
        float logSum = std::log(e.sum);
        for (int64_t c = 0; c < width; ++c)
          yRow[c] = (row[c] - e.max) - logSum;
        continue;
      }
      int64_t base = (s / inner) * width * inner + s % inner;
      float maxValue = x[base];
      for (int64_t c = 1; c < width; ++c)
        maxValue = std::max(maxValue, x[base + c * inner]);
      float sum = 0.0f;
      for (int64_t c = 0; c < width; ++c)
        sum += expForSoftmax(x[base + c * inner] - maxValue);
      float logSum = std::log(sum);
      for (int64_t c = 0; c < width; ++c) {
        float shifted = x[base + c * inner] - maxValue;
        y[base + c * inner] = log ? shifted - logSum : expForSoftmax(shifted) / sum;
      }
    }
    return Status::ok();
  });
  return Status::ok();
}

} // namespace amprt
