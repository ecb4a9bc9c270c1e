//===- CpuConvolutionGemm.cpp - convolutions of small maps as GEMMs -------===//
//
// On small output maps (at most kSmallMap positions: ResNet-18's last two
// stages at 32x32 inputs) oneDNN 2.6's convolutions are slow: its f32 direct
// kernels reach about a quarter of their large-map rate, and its
// backward-weights ones also reorder the filter gradient out of a blocked
// layout. There the filter gradient and the forward are one GEMM each over
// the input windows gathered into a [N*P, C*taps] matrix, cols (zeros where
// a window reads padding; small, since P is):
//   filter gradient: dW[o, (c, tap)] = sum over (n, p) of dy[n, o, p] * cols
//   forward:         y[(n, p), o] = sum over (c, tap) of cols * W[o, (c, tap)]
//   backward-data:   cols = dy[(n, p), o] x W[o, (c, tap)], each column added
//                    back into the input position it read
// oneDNN's matmul runs the filter gradient natively in BF16 where the CPU has
// it (f32 accumulation), and in f32 on widened operands elsewhere, as every
// GEMM here does. The forward and backward-data take this path only where
// their GEMM runs in f32 (f32 operands, or low ones widened): where bf16
// runs natively, oneDNN's bf16 convolutions keep their rate on small maps.
// The backward-data only on maps of one position: on ResNet-18's 2x2 maps
// it was slower than oneDNN's (1.8 against 1.6 ms), on the 1x1 ones faster
// (0.6 against 0.8 ms, and 0.65 against 2.05 for the 2x2-to-1x1 stride-2
// convolution, where oneDNN ran a slow direct kernel). Only live taps are
// gathered (see LiveTaps); the dead ones get zeros.
//
//===----------------------------------------------------------------------===//

#include "CpuConversions.h"
#include "CpuConvolution.h"
#include "CpuDnnl.h"

#include <algorithm>
#include <cstring>
#include <optional>
#include <string>

namespace amprt::conv {
namespace {

constexpr int64_t kSmallMap = 4;

/// The layout facts of one small-map GEMM (filter gradient or forward).
struct Problem {
  int64_t batch, channels, filters; // N, C, O
  dims in, out, taps;               // spatial sizes; taps: the full filter's
  dims first, live;                 // live taps per dim: first and count
  dims strides, steps, padBegin;    // steps: dilation + 1; pads as cut
  // Precomputed once: for output position p and live tap l, the input
  // offset in a plane (-1: padding); for each live tap, its tap in the full
  // filter.
  std::vector<int64_t> windowOffset, fullTap;
  int64_t positions() const { return product(out); }
  int64_t rows() const { return batch * positions(); }
  int64_t liveTaps() const { return product(live); }
  bool allLive() const { return liveTaps() == product(taps); }
  int64_t columns() const { return channels * liveTaps(); }
};

/// Spatial coordinates of flat index `flat` over `sizes`.
void unflatten(int64_t flat, const dims &sizes, dims &coords) {
  for (size_t d = sizes.size(); d-- > 0;) {
    coords[d] = flat % sizes[d];
    flat /= sizes[d];
  }
}

/// Fills the problem's windowOffset and fullTap tables.
void tabulate(Problem &pb) {
  size_t rank = pb.in.size();
  dims o(rank), l(rank);
  for (int64_t p = 0; p < pb.positions(); ++p) {
    unflatten(p, pb.out, o);
    for (int64_t tap = 0; tap < pb.liveTaps(); ++tap) {
      unflatten(tap, pb.live, l);
      int64_t offset = 0;
      bool inside = true;
      for (size_t d = 0; d < rank; ++d) {
        int64_t pos = o[d] * pb.strides[d] - pb.padBegin[d] + l[d] * pb.steps[d];
        inside = inside && pos >= 0 && pos < pb.in[d];
        offset = offset * pb.in[d] + pos;
      }
      pb.windowOffset.push_back(inside ? offset : -1);
    }
  }
  for (int64_t tap = 0; tap < pb.liveTaps(); ++tap) {
    unflatten(tap, pb.live, l);
    int64_t full = 0;
    for (size_t d = 0; d < rank; ++d)
      full = full * pb.taps[d] + pb.first[d] + l[d];
    pb.fullTap.push_back(full);
  }
}

/// cols[(n, p), (c, l)] = x[n, c, window of p at tap l] (0 in padding).
template <typename T, typename G>
void gatherWindows(const Problem &pb, const T *x, G *cols) {
  int64_t liveCount = pb.liveTaps(), inPlane = product(pb.in), positions = pb.positions();
#pragma omp parallel for schedule(static)
  for (int64_t r = 0; r < pb.rows(); ++r) {
    const T *image = x + r / positions * pb.channels * inPlane;
    const int64_t *offsets = pb.windowOffset.data() + r % positions * liveCount;
    G *row = cols + r * pb.columns();
    for (int64_t c = 0; c < pb.channels; ++c)
      for (int64_t l = 0; l < liveCount; ++l)
        row[c * liveCount + l] = math::store<G>(
            offsets[l] < 0 ? 0.0f : math::load(image[c * inPlane + offsets[l]]));
  }
}

/// dyT[(n, p), o] = dy[n, o, p].
template <typename T, typename G>
void transposeGradient(const Problem &pb, const T *dy, G *dyT) {
  int64_t positions = pb.positions();
#pragma omp parallel for schedule(static)
  for (int64_t r = 0; r < pb.rows(); ++r) {
    const T *image = dy + r / positions * pb.filters * positions + r % positions;
    for (int64_t o = 0; o < pb.filters; ++o)
      dyT[r * pb.filters + o] = math::store<G>(math::load(image[o * positions]));
  }
}

/// dW[o, c, taps...] from the live part [o, (c, l)]; dead taps get 0. A
/// chunk of rows is zeroed (a memset) and its live values written while it
/// is still in L1: on ResNet-18's 1x1 maps one tap in nine is live, and an
/// element-by-element choice between zero and a live value ran at a
/// fifth of that rate (0.9 against 0.2 ms for a 512x512x3x3 filter).
template <typename W>
void scatterFilter(const Problem &pb, const float *liveGrad, W *dw) {
  constexpr int64_t kRowsPerChunk = 256;
  int64_t tapCount = product(pb.taps), liveCount = pb.liveTaps(), rows = pb.filters * pb.channels;
  const int64_t *fullTap = pb.fullTap.data();
#pragma omp parallel for schedule(static)
  for (int64_t first = 0; first < rows; first += kRowsPerChunk) {
    int64_t end = std::min(rows, first + kRowsPerChunk);
    std::memset(dw + first * tapCount, 0, (end - first) * tapCount * sizeof(W));
    for (int64_t oc = first; oc < end; ++oc)
      for (int64_t l = 0; l < liveCount; ++l)
        dw[oc * tapCount + fullTap[l]] = math::store<W>(liveGrad[oc * liveCount + l]);
  }
}

/// Grows one of the session's shared staging buffers to `floats`.
void grow(std::vector<float> &staging, size_t floats) {
  if (staging.size() < floats)
    staging.resize(floats);
}

/// Runs `matmul` on the src, weights and dst arrays (the session's staging)
/// and waits for it.
Status executeMatmul(CpuContext &context, dnnl::matmul &matmul,
                     const dnnl::matmul::primitive_desc &pd, void *src, void *weights,
                     void *dst) {
  try {
    dnnl::engine &engine = *context.engine;
    matmul.execute(*context.stream,
                   {{DNNL_ARG_SRC, dnnl::memory(pd.src_desc(), engine, src)},
                    {DNNL_ARG_WEIGHTS, dnnl::memory(pd.weights_desc(), engine, weights)},
                    {DNNL_ARG_DST, dnnl::memory(pd.dst_desc(), engine, dst)}});
    context.stream->wait();
  } catch (const dnnl::error &e) {
    return Status::error(std::string("oneDNN: ") + e.what());
  }
  return Status::ok();
}

/// wl[o, (c, l)] = w[o, c, the full filter's tap of live tap l].
template <typename T, typename G>
void gatherLiveFilter(const Problem &pb, const T *w, G *wl) {
  int64_t tapCount = product(pb.taps), liveCount = pb.liveTaps();
  const int64_t *fullTap = pb.fullTap.data();
#pragma omp parallel for schedule(static)
  for (int64_t oc = 0; oc < pb.filters * pb.channels; ++oc)
    for (int64_t l = 0; l < liveCount; ++l)
      wl[oc * liveCount + l] = math::store<G>(math::load(w[oc * tapCount + fullTap[l]]));
}

/// The live filter wl [O, (c, l)] in f32 for a GEMM: f32 weights with
/// every tap live already are wl and are read in place; others are
/// gathered (widened) into `staging`.
float *liveFilter(const Problem &pb, const TensorRef &weights, float *staging) {
  if (weights.dtype == DType::F32 && pb.allLive())
    return weights.f32();
  (void)withFloatStorage(weights.dtype, [&](auto storage) { // the checks admit float types
    gatherLiveFilter(pb, static_cast<const decltype(storage) *>(weights.data), staging);
    return Status::ok();
  });
  return staging;
}

/// y[n, o, p] = result[(n, p), o], rounded once to T.
template <typename T> void scatterOutput(const Problem &pb, const float *result, T *y) {
  int64_t positions = pb.positions();
#pragma omp parallel for schedule(static)
  for (int64_t r = 0; r < pb.rows(); ++r) {
    T *image = y + r / positions * pb.filters * positions + r % positions;
    for (int64_t o = 0; o < pb.filters; ++o)
      image[o * positions] = math::store<T>(result[r * pb.filters + o]);
  }
}

/// dx[n, c, window of p at tap l] = the sum of cols[(n, p), (c, l)] over
/// the windows reading it (0 where none does), in f32.
void scatterWindows(const Problem &pb, const float *cols, float *dx) {
  int64_t liveCount = pb.liveTaps(), inPlane = product(pb.in), positions = pb.positions();
  int64_t image = pb.channels * inPlane;
#pragma omp parallel for schedule(static)
  for (int64_t n = 0; n < pb.batch; ++n) {
    float *sum = dx + n * image;
    std::fill_n(sum, image, 0.0f);
    for (int64_t p = 0; p < positions; ++p) {
      const float *row = cols + (n * positions + p) * pb.columns();
      const int64_t *offsets = pb.windowOffset.data() + p * liveCount;
      for (int64_t c = 0; c < pb.channels; ++c)
        for (int64_t l = 0; l < liveCount; ++l)
          if (offsets[l] >= 0)
            sum[c * inPlane + offsets[l]] += row[c * liveCount + l];
    }
  }
}

/// The forward of a small map as one f32 GEMM, [N*P, C*taps] x [C*taps, O]
/// (operands widened from a low type as they are gathered).
class ForwardGemm : public CpuKernel {
public:
  ForwardGemm(CpuContext &context, Problem problem, TensorRef x, TensorRef weights, TensorRef y,
              dnnl::matmul matmul, dnnl::matmul::primitive_desc pd)
      : context(context), pb(std::move(problem)), x(std::move(x)), weights(std::move(weights)),
        y(std::move(y)), matmul(std::move(matmul)), pd(std::move(pd)) {
    // The session's shared staging (kernels run one at a time), grown to fit.
    grow(context.stagingA, pb.rows() * pb.columns());
    grow(context.stagingB, pb.filters * pb.columns());
    grow(context.stagingC, pb.rows() * pb.filters);
  }

  Status run() override {
    float *a = context.stagingA.data(), *c = context.stagingC.data();
    float *b = liveFilter(pb, weights, context.stagingB.data());
    AMPRT_RETURN_IF_ERROR(withFloatStorage(x.dtype, [&](auto storage) {
      gatherWindows(pb, static_cast<const decltype(storage) *>(x.data), a);
      return Status::ok();
    }));
    AMPRT_RETURN_IF_ERROR(executeMatmul(context, matmul, pd, a, b, c));
    return withFloatStorage(y.dtype, [&](auto storage) {
      scatterOutput(pb, c, static_cast<decltype(storage) *>(y.data));
      return Status::ok();
    });
  }

private:
  CpuContext &context;
  Problem pb;
  TensorRef x, weights, y;
  dnnl::matmul matmul;
  dnnl::matmul::primitive_desc pd;
};

/// The backward-data of a map of one position as one f32 GEMM: [N, O] x
/// [O, C*taps] gives each live tap's input gradient, which lands on input
/// positions of its own (operands widened from a low type as they are
/// gathered).
class BackwardDataGemm : public CpuKernel {
public:
  BackwardDataGemm(CpuContext &context, Problem problem, TensorRef dy, TensorRef weights,
                   TensorRef dx, dnnl::matmul matmul, dnnl::matmul::primitive_desc pd)
      : context(context), pb(std::move(problem)), dy(std::move(dy)), weights(std::move(weights)),
        dx(std::move(dx)), matmul(std::move(matmul)), pd(std::move(pd)) {
    // The session's shared staging (kernels run one at a time), grown to fit.
    grow(context.stagingA, pb.rows() * pb.filters);
    grow(context.stagingB, pb.filters * pb.columns());
    grow(context.stagingC, pb.rows() * pb.columns());
    if (this->dx.dtype != DType::F32)
      grow(context.widenedC, this->dx.size());
  }

  Status run() override {
    float *a = context.stagingA.data(), *c = context.stagingC.data();
    float *b = liveFilter(pb, weights, context.stagingB.data());
    AMPRT_RETURN_IF_ERROR(withFloatStorage(dy.dtype, [&](auto storage) {
      transposeGradient(pb, static_cast<const decltype(storage) *>(dy.data), a);
      return Status::ok();
    }));
    AMPRT_RETURN_IF_ERROR(executeMatmul(context, matmul, pd, a, b, c));
    // Summed in f32: in dx itself, or for a low dx in staging rounded once.
    bool f32 = dx.dtype == DType::F32;
    scatterWindows(pb, c, f32 ? dx.f32() : context.widenedC.data());
    if (!f32)
      cpu::narrow(dx.dtype, context.widenedC.data(), dx.data, dx.size());
    return Status::ok();
  }

private:
  CpuContext &context;
  Problem pb;
  TensorRef dy, weights, dx;
  dnnl::matmul matmul;
  dnnl::matmul::primitive_desc pd;
};

class FilterGradientGemm : public CpuKernel {
public:
  FilterGradientGemm(CpuContext &context, Problem problem, TensorRef x, TensorRef dy,
                     TensorRef dw, DType gemmType, dnnl::matmul matmul,
                     dnnl::matmul::primitive_desc pd)
      : context(context), pb(std::move(problem)), x(std::move(x)), dy(std::move(dy)),
        dw(std::move(dw)), gemmType(gemmType), matmul(std::move(matmul)), pd(std::move(pd)) {
    // The session's shared staging (kernels run one at a time), grown to
    // fit: cols and dyT hold gemmType values.
    size_t gemmBytes = dtypeSize(gemmType);
    grow(context.stagingA, (pb.rows() * pb.columns() * gemmBytes + 3) / 4);
    grow(context.stagingB, (pb.rows() * pb.filters * gemmBytes + 3) / 4);
    grow(context.stagingC, pb.filters * pb.columns());
  }

  Status run() override {
    Status status = withFloatStorage(x.dtype, [&](auto storage) {
      using T = decltype(storage);
      auto gather = [&](auto gemmStorage) {
        using G = decltype(gemmStorage);
        gatherWindows(pb, static_cast<const T *>(x.data),
                      reinterpret_cast<G *>(context.stagingA.data()));
        transposeGradient(pb, static_cast<const T *>(dy.data),
                          reinterpret_cast<G *>(context.stagingB.data()));
      };
      if (gemmType == DType::F32)
        gather(float{});
      else
        gather(storage);
      return Status::ok();
    });
    AMPRT_RETURN_IF_ERROR(status);
    // An f32 gradient with every tap live is the GEMM's result as it is.
    bool direct = dw.dtype == DType::F32 && pb.allLive();
    AMPRT_RETURN_IF_ERROR(executeMatmul(context, matmul, pd, context.stagingB.data(),
                                        context.stagingA.data(),
                                        direct ? dw.f32() : context.stagingC.data()));
    if (direct)
      return Status::ok();
    return withFloatStorage(dw.dtype, [&](auto storage) {
      scatterFilter(pb, context.stagingC.data(), static_cast<decltype(storage) *>(dw.data));
      return Status::ok();
    });
  }

private:
  CpuContext &context;
  Problem pb;
  TensorRef x, dy, dw;
  DType gemmType;
  dnnl::matmul matmul;
  dnnl::matmul::primitive_desc pd;
};

/// The problem of a convolution in convolution roles (t, g as cut by
/// liveTaps).
Problem problemOf(const ConvTensors &t, const Geometry &g, const LiveTaps &live) {
  Problem pb;
  const auto &x = t.src.shape, &w = t.weights.shape, &y = t.dst.shape;
  pb.batch = x[0];
  pb.channels = x[1];
  pb.filters = y[1];
  pb.in.assign(x.begin() + 2, x.end());
  pb.out.assign(y.begin() + 2, y.end());
  pb.taps.assign(w.begin() + 2, w.end());
  pb.first = live.first;
  pb.live = live.count;
  pb.strides = g.strides;
  pb.padBegin = g.padBegin;
  for (int64_t gap : g.dilations)
    pb.steps.push_back(gap + 1);
  tabulate(pb);
  return pb;
}

/// The filter gradient as one GEMM, natively in a low type where the CPU
/// runs it so.
Status buildFilterGradientByGemm(const ConvTensors &t, const Geometry &g, const LiveTaps &live,
                                 CpuContext &context, std::unique_ptr<CpuKernel> *result) {
  Problem pb = problemOf(t, g, live);
  DType operands = t.src.dtype;
  using tag = dnnl::memory::format_tag;
  auto build = [&](DType gemmType) {
    dnnl::memory::dim o = pb.filters, r = pb.rows(), k = pb.columns();
    // A = dyT seen as [O, N*P] (column-major), B = cols [N*P, C*taps].
    dnnl::memory::desc a({o, r}, cpu::dnnlType(gemmType), dnnl::memory::dims{1, o});
    dnnl::memory::desc b({r, k}, cpu::dnnlType(gemmType), tag::ab);
    dnnl::memory::desc c({o, k}, dnnl::memory::data_type::f32, tag::ab);
    return dnnl::matmul::primitive_desc(dnnl::matmul::desc(a, b, c), *context.engine);
  };
  try {
    std::optional<dnnl::matmul::primitive_desc> pd;
    DType gemmType = operands;
    if (context.runsNative(operands)) {
      try {
        pd = build(operands);
        // oneDNN's reference kernel is far slower than widening to f32.
        if (operands != DType::F32 && std::string(pd->impl_info_str()).find("ref") !=
                                          std::string::npos)
          pd.reset();
      } catch (const dnnl::error &) {
      }
      if (!pd)
        context.emulatedGemms.insert(operands);
    }
    if (!pd) {
      gemmType = DType::F32;
      pd = build(DType::F32);
    }
    *result = std::make_unique<FilterGradientGemm>(context, pb, t.src, t.dst, t.weights,
                                                   gemmType, dnnl::matmul(*pd), *pd);
  } catch (const dnnl::error &e) {
    return Status::error(std::string("oneDNN: ") + e.what());
  }
  return Status::ok();
}

} // namespace

bool smallMapByGemm(KernelId id, const ConvTensors &t, const Geometry &g,
                    CpuContext &context) {
  int64_t positions = product(t.dst.shape, 2);
  if (g.group != 1 || positions > kSmallMap ||
      (id == KernelId::ConvBackwardData && positions != 1))
    return false;
  DType operands = id == KernelId::ConvBackwardData ? t.dst.dtype : t.src.dtype;
  return id == KernelId::ConvBackwardFilter || operands == DType::F32 ||
         !context.runsNative(operands, positions);
}

Status buildSmallMapByGemm(KernelId id, const ConvTensors &t, const Geometry &g,
                           const LiveTaps &live, CpuContext &context,
                           std::unique_ptr<CpuKernel> *result) {
  if (id == KernelId::ConvBackwardFilter)
    return buildFilterGradientByGemm(t, g, live, context, result);
  Problem pb = problemOf(t, g, live);
  using tag = dnnl::memory::format_tag;
  auto f32 = dnnl::memory::data_type::f32;
  dnnl::memory::dim r = pb.rows(), k = pb.columns(), o = pb.filters;
  try {
    if (id == KernelId::ConvBackwardData) {
      // dyT [R, O] x wl [O, K] -> cols [R, K].
      dnnl::matmul::primitive_desc pd(
          dnnl::matmul::desc(dnnl::memory::desc({r, o}, f32, tag::ab),
                             dnnl::memory::desc({o, k}, f32, tag::ab),
                             dnnl::memory::desc({r, k}, f32, tag::ab)),
          *context.engine);
      *result = std::make_unique<BackwardDataGemm>(context, std::move(pb), t.dst, t.weights,
                                                   t.src, dnnl::matmul(pd), pd);
      return Status::ok();
    }
    // cols [R, K] x wl seen as [K, O] (wl is [O, K] row-major).
    dnnl::matmul::primitive_desc pd(
        dnnl::matmul::desc(dnnl::memory::desc({r, k}, f32, tag::ab),
                           dnnl::memory::desc({k, o}, f32, dnnl::memory::dims{1, k}),
                           dnnl::memory::desc({r, o}, f32, tag::ab)),
        *context.engine);
    *result = std::make_unique<ForwardGemm>(context, std::move(pb), t.src, t.weights, t.dst,
                                            dnnl::matmul(pd), pd);
  } catch (const dnnl::error &e) {
    return Status::error(std::string("oneDNN: ") + e.what());
  }
  return Status::ok();
}

} // namespace amprt::conv
