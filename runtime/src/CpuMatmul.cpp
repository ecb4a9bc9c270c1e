//===- CpuMatmul.cpp - GEMMs on the CPU through oneDNN --------------------===//
//
// Every GEMM is a oneDNN matmul primitive with f32 accumulation. Low-precision
// operands run natively where oneDNN has a primitive for them on this CPU
// (bf16 on AVX-512 and AMX; f16 only where oneDNN supports it). Elsewhere
// (bf16 on AVX2-only CPUs, f16 on most CPUs) the GEMM is emulated: operands
// widened to f32 with vector conversions, an f32 GEMM, the result rounded
// once, which is the same arithmetic (exact products, f32 sums) at f32 speed.
//
// The relu epilogue is not oneDNN's relu post-op: its JIT computes
// max(x, 0), which turns NaN into 0 and would hide a NaN from the
// non-finite check. Bias runs in the primitive; relu (math::relu, NaN kept)
// runs on the f32 result, in cache-sized chunks fused with the final
// rounding, so the epilogue still rounds once, after bias and relu.
//
//===----------------------------------------------------------------------===//

#include "CpuConversions.h"
#include "CpuKernelSupport.h"
#include "KernelChecks.h"

#include "CpuDnnl.h"

#include <optional>
#include <unordered_map>

namespace amprt {

CpuContext::CpuContext()
    : engine(std::make_unique<dnnl::engine>(dnnl::engine::kind::cpu, 0)),
      stream(std::make_unique<dnnl::stream>(*engine)) {}
CpuContext::~CpuContext() = default;

namespace {

using cpu::dnnlType;

/// A logical [rows, cols] matrix stored row-major, or its transpose; with
/// `batch` > 1, that many of them one after the other ([batch, rows, cols]).
dnnl::memory::desc matrixDesc(int64_t rows, int64_t cols, bool storedTransposed,
                              DType dtype, int64_t batch = 1) {
  using dims = dnnl::memory::dims;
  dims strides = storedTransposed ? dims{1, rows} : dims{cols, 1};
  if (batch == 1)
    return dnnl::memory::desc(dims{rows, cols}, dnnlType(dtype), strides);
  return dnnl::memory::desc(dims{batch, rows, cols}, dnnlType(dtype),
                            dims{rows * cols, strides[0], strides[1]});
}

/// `values` resized to at least `count` (staging grows to the largest GEMM).
float *staging(std::vector<float> &values, int64_t count) {
  if (values.size() < static_cast<size_t>(count))
    values.resize(count);
  return values.data();
}

/// One GEMM: which operands are staged through f32 buffers, and the
/// primitive over what it then reads and writes.
class MatmulKernel : public CpuKernel {
public:
  struct Operand {
    TensorRef tensor;
    bool staged = false; // widened into (or, for C, rounded from) f32 staging
  };
  MatmulKernel(CpuContext &context, dnnl::matmul primitive, dnnl::matmul::primitive_desc pd,
               Operand a, Operand b, Operand c, Operand bias, bool hasBias, bool relu)
      : context(context), primitive(std::move(primitive)), pd(std::move(pd)), a(a), b(b), c(c),
        bias(bias), hasBias(hasBias), relu(relu) {}

  Status run() override {
    const dnnl::engine &engine = *context.engine;
    widenStaged();
    void *aData = a.staged ? context.stagingA.data() : a.tensor.data;
    void *bData = b.staged ? context.stagingB.data() : b.tensor.data;
    void *cData = c.staged ? context.stagingC.data() : c.tensor.data;
    std::unordered_map<int, dnnl::memory> args = {
        {DNNL_ARG_SRC, dnnl::memory(pd.src_desc(), engine, aData)},
        {DNNL_ARG_WEIGHTS, dnnl::memory(pd.weights_desc(), engine, bData)},
        {DNNL_ARG_DST, dnnl::memory(pd.dst_desc(), engine, cData)}};
    if (hasBias) {
      void *biasData = bias.staged ? context.stagingBias.data() : bias.tensor.data;
      if (bias.staged)
        cpu::widen(bias.tensor.dtype, bias.tensor.data, context.stagingBias.data(),
                   bias.tensor.size());
      args.emplace(DNNL_ARG_BIAS, dnnl::memory(pd.bias_desc(), engine, biasData));
    }
    primitive.execute(*context.stream, args);
    context.stream->wait();
    if (relu || c.staged)
      finishResult(static_cast<float *>(cData));
    return Status::ok();
  }

private:
  /// Widens the staged operands in one parallel region: on a 2-core machine
  /// each region's thread wake-up costs as much as converting 100k values.
  void widenStaged() {
    int64_t aCount = a.staged ? a.tensor.size() : 0;
    int64_t total = aCount + (b.staged ? b.tensor.size() : 0);
    parallelChunks(total, [&](int64_t begin, int64_t count) {
      for (int64_t end = begin + count; begin < end;) {
        bool inA = begin < aCount;
        const Operand &operand = inA ? a : b;
        float *buffer = (inA ? context.stagingA : context.stagingB).data();
        int64_t offset = inA ? begin : begin - aCount;
        int64_t n = std::min(end, inA ? aCount : total) - begin;
        size_t size = dtypeSize(operand.tensor.dtype);
        cpu::widen(operand.tensor.dtype,
                   static_cast<const char *>(operand.tensor.data) + offset * size,
                   buffer + offset, n);
        begin += n;
      }
    });
  }

  /// relu, then one rounding to C's type, chunk by chunk while it is warm.
  void finishResult(float *result) {
    const TensorRef &target = c.tensor;
    size_t size = dtypeSize(target.dtype);
    parallelChunks(target.size(), [&](int64_t begin, int64_t count) {
      float *chunk = result + begin;
      if (relu)
        for (int64_t i = 0; i < count; ++i)
          chunk[i] = math::relu(chunk[i]);
      if (c.staged)
        cpu::narrow(target.dtype, chunk, static_cast<char *>(target.data) + begin * size, count);
    });
  }

  CpuContext &context;
  dnnl::matmul primitive;
  dnnl::matmul::primitive_desc pd;
  Operand a, b, c, bias;
  bool hasBias, relu;
};

dnnl::matmul::primitive_desc matmulDesc(const MatmulShape &shape, DType operands, DType result,
                                        const dnnl::engine &engine) {
  auto aDesc = matrixDesc(shape.m, shape.k, shape.transposeLhs, operands, shape.batch);
  auto bDesc = matrixDesc(shape.k, shape.n, shape.transposeRhs, operands, shape.batch);
  auto cDesc = matrixDesc(shape.m, shape.n, false, result, shape.batch);
  auto desc = shape.bias ? dnnl::matmul::desc(aDesc, bDesc, matrixDesc(1, shape.n, false,
                                                                       DType::F32), cDesc)
                         : dnnl::matmul::desc(aDesc, bDesc, cDesc);
  return dnnl::matmul::primitive_desc(desc, engine);
}

} // namespace

bool CpuContext::nativeGemm(DType type) {
  if (type == DType::F32)
    return true;
  auto it = probed.find(type);
  if (it != probed.end())
    return it->second;
  bool native = true;
  try {
    MatmulShape probe;
    probe.m = probe.k = probe.n = 16;
    matmulDesc(probe, type, DType::F32, *engine);
  } catch (const dnnl::error &) {
    native = false; // "could not create a primitive descriptor": no kernel for this ISA
  }
  probed[type] = native;
  return native;
}

Status buildMatmul(const proto::Kernel &kernel, const std::vector<TensorRef> &in,
                   const TensorRef &c, CpuContext &context,
                   std::unique_ptr<CpuKernel> *result) {
  MatmulShape shape;
  AMPRT_RETURN_IF_ERROR(checkMatmul(kernel, in, c, &shape));
  DType operands = in[0].dtype;
  MatmulKernel::Operand a{in[0]}, b{in[1]}, out{c}, bias;
  if (shape.bias)
    bias = {in[2], in[2].dtype != DType::F32};
  try {
    std::optional<dnnl::matmul::primitive_desc> pd;
    if (context.runsNative(operands)) {
      // With relu the f32 result is finished by us, so C is staged in f32.
      out.staged = shape.relu && c.dtype != DType::F32;
      try {
        pd = matmulDesc(shape, operands, out.staged ? DType::F32 : c.dtype, *context.engine);
      } catch (const dnnl::error &) {
        // This form (a result type, a transpose) has no native kernel: emulate.
        context.emulatedGemms.insert(operands);
      }
    }
    if (!pd) {
      a.staged = b.staged = operands != DType::F32;
      out.staged = c.dtype != DType::F32;
      pd = matmulDesc(shape, DType::F32, DType::F32, *context.engine);
    }
    if (a.staged)
      staging(context.stagingA, in[0].size());
    if (b.staged)
      staging(context.stagingB, in[1].size());
    if (out.staged)
      staging(context.stagingC, c.size());
    if (bias.staged)
      staging(context.stagingBias, in[2].size());
    *result = std::make_unique<MatmulKernel>(context, dnnl::matmul(*pd), *pd, a, b, out, bias,
                                             shape.bias, shape.relu);
  } catch (const dnnl::error &e) {
    return Status::error(std::string("oneDNN: ") + e.what());
  }
  return Status::ok();
}

} // namespace amprt
