//===- CpuConvolutionGemm.cpp - filter gradients of small maps as GEMMs ---===//
//
// On small output maps (at most kSmallMap positions: ResNet-18's last two
// stages at 32x32 inputs) oneDNN 2.6's backward-weights convolutions are
// slow, its BF16 one slower than FP32, and each also reorders the filter
// gradient out of a blocked layout. There the gradient is one GEMM:
//   dW[o, (c, tap)] = sum over (n, p) of dy[n, o, p] * x[n, c, window(p, tap)]
// with the input windows gathered into a [N*P, C*taps] matrix (zeros where a
// window reads padding) and dy transposed to [N*P, O]: both small, since P
// is. oneDNN's matmul then runs natively in BF16 where the CPU has it (f32
// accumulation), and in f32 on widened operands elsewhere, as every GEMM
// here does. Only live taps are gathered (see LiveTaps); the dead ones get
// zeros.
//
//===----------------------------------------------------------------------===//

#include "CpuConvolution.h"
#include "CpuDnnl.h"

#include <algorithm>
#include <optional>
#include <string>

namespace amprt::conv {
namespace {

constexpr int64_t kSmallMap = 4;

/// The layout facts of one filter-gradient GEMM.
struct Problem {
  int64_t batch, channels, filters; // N, C, O
  dims in, out, taps;               // spatial sizes; taps: the full filter's
  dims first, live;                 // live taps per dim: first and count
  dims strides, steps, padBegin;    // steps: dilation + 1; pads as cut
  // Precomputed once: for output position p and live tap l, the input
  // offset in a plane (-1: padding); for each tap of the full filter, its
  // live index (-1: dead).
  std::vector<int64_t> windowOffset, liveIndex;
  int64_t positions() const { return product(out); }
  int64_t rows() const { return batch * positions(); }
  int64_t liveTaps() const { return product(live); }
  int64_t columns() const { return channels * liveTaps(); }
};

/// Spatial coordinates of flat index `flat` over `sizes`.
void unflatten(int64_t flat, const dims &sizes, dims &coords) {
  for (size_t d = sizes.size(); d-- > 0;) {
    coords[d] = flat % sizes[d];
    flat /= sizes[d];
  }
}

/// Fills the problem's windowOffset and liveIndex tables.
void tabulate(Problem &pb) {
  size_t rank = pb.in.size();
  dims o(rank), l(rank), t(rank);
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
  for (int64_t tap = 0; tap < product(pb.taps); ++tap) {
    unflatten(tap, pb.taps, t);
    int64_t index = 0;
    bool isLive = true;
    for (size_t d = 0; d < rank; ++d) {
      int64_t k = t[d] - pb.first[d];
      isLive = isLive && k >= 0 && k < pb.live[d];
      index = index * pb.live[d] + k;
    }
    pb.liveIndex.push_back(isLive ? index : -1);
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

/// dW[o, c, taps...] from the live part [o, (c, l)]; dead taps get 0.
template <typename W>
void scatterFilter(const Problem &pb, const float *liveGrad, W *dw) {
  int64_t tapCount = product(pb.taps), liveCount = pb.liveTaps();
  const int64_t *index = pb.liveIndex.data();
#pragma omp parallel for schedule(static)
  for (int64_t oc = 0; oc < pb.filters * pb.channels; ++oc)
    for (int64_t tap = 0; tap < tapCount; ++tap)
      dw[oc * tapCount + tap] =
          math::store<W>(index[tap] < 0 ? 0.0f : liveGrad[oc * liveCount + index[tap]]);
}

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
    try {
      dnnl::engine &engine = *context.engine;
      matmul.execute(
          *context.stream,
          {{DNNL_ARG_SRC, dnnl::memory(pd.src_desc(), engine, context.stagingB.data())},
           {DNNL_ARG_WEIGHTS, dnnl::memory(pd.weights_desc(), engine, context.stagingA.data())},
           {DNNL_ARG_DST, dnnl::memory(pd.dst_desc(), engine, context.stagingC.data())}});
      context.stream->wait();
    } catch (const dnnl::error &e) {
      return Status::error(std::string("oneDNN: ") + e.what());
    }
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

  static void grow(std::vector<float> &staging, size_t floats) {
    if (staging.size() < floats)
      staging.resize(floats);
  }
};

} // namespace

bool filterGradientByGemm(const ConvTensors &t, const Geometry &g) {
  return g.group == 1 && product(t.dst.shape, 2) <= kSmallMap;
}

Status buildFilterGradientByGemm(const ConvTensors &t, const Geometry &g, const LiveTaps &live,
                                 CpuContext &context, std::unique_ptr<CpuKernel> *result) {
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

} // namespace amprt::conv
