//===- CpuLossScaling.cpp - unscale, non-finite check, norms, scale -------===//
//
// The loss-scaling kernels of torch.amp.GradScaler and clip_grad_norm_, and
// the two small ones of gradient accumulation (micro-batch counter, buffer
// reset):
// unscale multiplies by the reciprocal of the scale (formed in double, as
// GradScaler does); the non-finite check and the global norm make one pass
// over all gradients of the step; the scale update is KernelMath's.
//
//===----------------------------------------------------------------------===//

#include "CpuKernelSupport.h"
#include "KernelChecks.h"

#include <cmath>

namespace amprt {

namespace {

/// The sum of squares of n floats stored as `type`, in double (exact per
/// term), in 8 partial sums so that it vectorises.
AMPRT_VECTOR_CLONES double sumOfSquares(DType type, const void *data, int64_t n) {
  constexpr int kLanes = 8;
  double lanes[kLanes] = {};
  auto run = [&](auto load) {
    int64_t i = 0;
    for (; i + kLanes <= n; i += kLanes)
      for (int j = 0; j < kLanes; ++j) {
        double v = load(i + j);
        lanes[j] += v * v;
      }
    for (; i < n; ++i) {
      double v = load(i);
      lanes[0] += v * v;
    }
  };
  if (type == DType::BF16)
    run([&](int64_t i) { return math::bf16ToFloat(static_cast<const uint16_t *>(data)[i]); });
  else if (type == DType::F16)
    run([&](int64_t i) { return math::f16ToFloat(static_cast<const uint16_t *>(data)[i]); });
  else
    run([&](int64_t i) { return static_cast<const float *>(data)[i]; });
  double sum = 0;
  for (double lane : lanes)
    sum += lane;
  return sum;
}

/// A piece of one tensor, for splitting a pass over many across threads.
struct Piece {
  DType type;
  const void *data;
  int64_t count;
};

/// The pieces of at most kPiece elements that cover `tensors`.
std::vector<Piece> piecesOf(const std::vector<TensorRef> &tensors) {
  constexpr int64_t kPiece = 1 << 15;
  std::vector<Piece> pieces;
  for (const TensorRef &t : tensors)
    for (int64_t begin = 0; begin < t.size(); begin += kPiece)
      pieces.push_back({t.dtype, static_cast<const char *>(t.data) + begin * dtypeSize(t.dtype),
                        std::min(kPiece, t.size() - begin)});
  return pieces;
}

} // namespace

Status buildLossScaling(const proto::Kernel &kernel, KernelId id, const std::vector<TensorRef> &in,
                        const std::vector<TensorRef> &out, std::unique_ptr<CpuKernel> *result) {
  if (id == KernelId::Unscale) {
    AMPRT_RETURN_IF_ERROR(requireScalar(in[1], DType::F32, "the scale"));
    AMPRT_RETURN_IF_ERROR(requireF32({out[0]}, "unscale's result"));
    if (in[0].size() != out[0].size())
      return Status::error("gradient and result differ in size");
    const float *scale = in[1].f32();
    float *y = out[0].f32();
    int64_t count = out[0].size();
    return withFloatStorage(in[0].dtype, [&](auto storage) {
      using T = decltype(storage);
      const T *g = static_cast<const T *>(in[0].data);
      *result = lambda([=] {
        float inverse = static_cast<float>(1.0 / static_cast<double>(scale[0]));
        parallelFor(count, [&](int64_t i) { y[i] = math::load(g[i]) * inverse; });
        return Status::ok();
      });
      return Status::ok();
    });
  }
  if (id == KernelId::FoundNonFinite || id == KernelId::GlobalNorm ||
      id == KernelId::GradientStats) {
    for (const auto &o : out)
      AMPRT_RETURN_IF_ERROR(requireScalar(o, DType::F32, "the result"));
    for (const auto &t : in)
      AMPRT_RETURN_IF_ERROR(withFloatStorage(t.dtype, [](auto) { return Status::ok(); }));
    std::vector<Piece> pieces = piecesOf(in);
    // gradient_stats writes both: [found, norm].
    float *foundOut = id == KernelId::GlobalNorm ? nullptr : out[0].f32();
    float *normOut = id == KernelId::GlobalNorm ? out[0].f32()
                     : id == KernelId::GradientStats ? out[1].f32()
                                              : nullptr;
    *result = lambda([=] {
      // One vectorised pass over all the tensors, split into pieces across
      // the threads (one parallel region, not one per tensor): the sum of
      // squares in double is finite exactly when every value is (a finite
      // float's square cannot overflow it), so it is also the non-finite
      // check. Piece sums are added in order: the same bits on any number
      // of threads.
      auto count = static_cast<int64_t>(pieces.size());
      std::vector<double> partial(count);
#pragma omp parallel for schedule(static) if (worthARegion(count))
      for (int64_t i = 0; i < count; ++i)
        partial[i] = sumOfSquares(pieces[i].type, pieces[i].data, pieces[i].count);
      double total = 0;
      for (double p : partial)
        total += p;
      if (foundOut)
        foundOut[0] = std::isfinite(total) ? 0.0f : 1.0f;
      if (normOut)
        normOut[0] = static_cast<float>(std::sqrt(total));
      return Status::ok();
    });
    return Status::ok();
  }
  if (id == KernelId::ClipCoefficient || id == KernelId::AccumulationStep ||
      id == KernelId::UpdateLossScale)
    AMPRT_RETURN_IF_ERROR(checkScalarKernel(kernel, id, in, out));
  if (id == KernelId::ClipCoefficient) {
    const float *norm = in[0].f32();
    float *y = out[0].f32();
    float maxNorm = static_cast<float>(attr(kernel, "max_norm"));
    *result = lambda([=] {
      y[0] = math::clipCoefficient(norm[0], maxNorm);
      return Status::ok();
    });
    return Status::ok();
  }
  if (id == KernelId::AccumulationStep) {
    auto microBatches = static_cast<int64_t>(attr(kernel, "micro_batches"));
    const int64_t *count = in[0].i64();
    int64_t *newCount = out[0].i64();
    float *apply = out[1].f32();
    *result = lambda([=] {
      int64_t next = count[0] + 1;
      apply[0] = next >= microBatches ? 1.0f : 0.0f;
      newCount[0] = next % microBatches;
      return Status::ok();
    });
    return Status::ok();
  }
  if (id == KernelId::ZeroIf) {
    AMPRT_RETURN_IF_ERROR(requireF32({in[0], out[0]}, "zero_if"));
    AMPRT_RETURN_IF_ERROR(requireScalar(in[1], DType::F32, "the flag"));
    if (in[0].size() != out[0].size())
      return Status::error("input and output differ in size");
    const float *x = in[0].f32(), *flag = in[1].f32();
    float *y = out[0].f32();
    int64_t count = out[0].size();
    *result = lambda([=] {
      bool zero = flag[0] != 0.0f;
      parallelFor(count, [&](int64_t i) { y[i] = zero ? 0.0f : x[i]; });
      return Status::ok();
    });
    return Status::ok();
  }
  // update_loss_scale
  const float *skip;
  AMPRT_RETURN_IF_ERROR(skipFlag(in, 3, &skip));
  const float *scale = in[0].f32(), *found = in[2].f32();
  const int64_t *tracker = in[1].i64();
  float *newScale = out[0].f32();
  int64_t *newTracker = out[1].i64();
  double growth = attr(kernel, "growth_factor"), backoff = attr(kernel, "backoff_factor");
  auto interval = static_cast<int64_t>(attr(kernel, "growth_interval"));
  *result = lambda([=] {
    float s = scale[0];
    int64_t t = tracker[0];
    if (!skip || skip[0] == 0.0f)
      math::updateLossScale(s, t, found[0] != 0.0f, growth, backoff, interval);
    newScale[0] = s;
    newTracker[0] = t;
    return Status::ok();
  });
  return Status::ok();
}

} // namespace amprt
