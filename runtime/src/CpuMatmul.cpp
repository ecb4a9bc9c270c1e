//===- CpuMatmul.cpp - GEMMs on the CPU through oneDNN --------------------===//
//
// f32 x f32 and bf16 x bf16 (f32 accumulation, f32 or bf16 result) run as
// oneDNN matmul primitives, whose JIT uses AVX-512 BF16 or AMX where the CPU
// has them. oneDNN 2.6 has no f16 GEMM on CPUs, so f16 operands are widened
// exactly to f32 scratch, multiplied in f32, and the result rounded on store:
// the emulation the autocast issue asks for.
//
//===----------------------------------------------------------------------===//

#include "CpuKernelSupport.h"
#include "KernelChecks.h"

#include <oneapi/dnnl/dnnl.hpp>

#include <vector>

namespace amprt {

CpuContext::CpuContext()
    : engine(std::make_unique<dnnl::engine>(dnnl::engine::kind::cpu, 0)),
      stream(std::make_unique<dnnl::stream>(*engine)) {}
CpuContext::~CpuContext() = default;

namespace {

dnnl::memory::data_type dnnlType(DType dtype) {
  switch (dtype) {
  case DType::BF16:
    return dnnl::memory::data_type::bf16;
  case DType::F16:
    return dnnl::memory::data_type::f16;
  default:
    return dnnl::memory::data_type::f32;
  }
}

/// A logical [rows, cols] matrix stored row-major, or its transpose.
dnnl::memory::desc matrixDesc(int64_t rows, int64_t cols, bool storedTransposed,
                              DType dtype) {
  using dims = dnnl::memory::dims;
  dims strides = storedTransposed ? dims{1, rows} : dims{cols, 1};
  return dnnl::memory::desc(dims{rows, cols}, dnnlType(dtype), strides);
}

/// f16 tensors widened to f32 before the GEMM and rounded back after it;
/// a low-precision bias is widened too (oneDNN gets an f32 bias).
struct F16Staging {
  std::vector<float> a, b, c, bias;
  const uint16_t *aSource = nullptr, *bSource = nullptr, *biasSource = nullptr;
  DType biasType = DType::F32;
  uint16_t *cTarget = nullptr; // null when the result is f32

  void widen() {
    parallelFor(static_cast<int64_t>(a.size()),
                [&](int64_t i) { a[i] = math::f16ToFloat(aSource[i]); });
    parallelFor(static_cast<int64_t>(b.size()),
                [&](int64_t i) { b[i] = math::f16ToFloat(bSource[i]); });
    for (size_t i = 0; biasSource && i < bias.size(); ++i)
      bias[i] = biasType == DType::BF16 ? math::bf16ToFloat(biasSource[i])
                                        : math::f16ToFloat(biasSource[i]);
  }
  void narrow() {
    if (cTarget)
      parallelFor(static_cast<int64_t>(c.size()),
                  [&](int64_t i) { cTarget[i] = math::floatToF16(c[i]); });
  }
};

class MatmulKernel : public CpuKernel {
public:
  MatmulKernel(CpuContext &context, dnnl::matmul primitive,
               std::unordered_map<int, dnnl::memory> args, std::unique_ptr<F16Staging> staging)
      : context(context), primitive(std::move(primitive)), args(std::move(args)),
        staging(std::move(staging)) {}
  Status run() override {
    if (staging)
      staging->widen();
    primitive.execute(*context.stream, args);
    context.stream->wait();
    if (staging)
      staging->narrow();
    return Status::ok();
  }

private:
  CpuContext &context;
  dnnl::matmul primitive;
  std::unordered_map<int, dnnl::memory> args;
  std::unique_ptr<F16Staging> staging;
};

} // namespace

Status buildMatmul(const proto::Kernel &kernel, const std::vector<TensorRef> &in,
                   const TensorRef &c, CpuContext &context,
                   std::unique_ptr<CpuKernel> *result) {
  const TensorRef &a = in[0], &b = in[1];
  MatmulShape shape;
  AMPRT_RETURN_IF_ERROR(checkMatmul(kernel, in, c, &shape));
  int64_t m = shape.m, k = shape.k, n = shape.n;
  bool ta = shape.transposeLhs, tb = shape.transposeRhs, hasBias = shape.bias, relu = shape.relu;

  void *aData = a.data, *bData = b.data, *cData = c.data;
  void *biasData = hasBias ? in[2].data : nullptr;
  DType compute = a.dtype, output = c.dtype;
  std::unique_ptr<F16Staging> staging;
  if (hasBias && in[2].dtype != DType::F32) {
    staging = std::make_unique<F16Staging>();
    staging->bias.resize(n);
    staging->biasSource = static_cast<const uint16_t *>(in[2].data);
    staging->biasType = in[2].dtype;
    biasData = staging->bias.data();
  }
  if (a.dtype == DType::F16) {
    if (!staging)
      staging = std::make_unique<F16Staging>();
    staging->a.resize(a.size());
    staging->b.resize(b.size());
    staging->aSource = static_cast<const uint16_t *>(a.data);
    staging->bSource = static_cast<const uint16_t *>(b.data);
    aData = staging->a.data();
    bData = staging->b.data();
    if (c.dtype == DType::F16) {
      staging->c.resize(c.size());
      staging->cTarget = static_cast<uint16_t *>(c.data);
      cData = staging->c.data();
    }
    compute = output = DType::F32;
  }
  auto aDesc = matrixDesc(m, k, ta, compute), bDesc = matrixDesc(k, n, tb, compute),
       cDesc = matrixDesc(m, n, false, output);
  auto biasDesc = matrixDesc(1, n, false, DType::F32);
  try {
    // The epilogue runs in f32 inside the GEMM: bias, then relu, then one
    // rounding to C's type (what cuBLASLt's epilogues do on the GPU).
    dnnl::primitive_attr attributes;
    if (relu) {
      dnnl::post_ops ops;
      ops.append_eltwise(1.0f, dnnl::algorithm::eltwise_relu, 0.0f, 0.0f);
      attributes.set_post_ops(ops);
    }
    auto desc = hasBias ? dnnl::matmul::desc(aDesc, bDesc, biasDesc, cDesc)
                        : dnnl::matmul::desc(aDesc, bDesc, cDesc);
    dnnl::matmul::primitive_desc pd(desc, attributes, *context.engine);
    std::unordered_map<int, dnnl::memory> args = {
        {DNNL_ARG_SRC, dnnl::memory(aDesc, *context.engine, aData)},
        {DNNL_ARG_WEIGHTS, dnnl::memory(bDesc, *context.engine, bData)},
        {DNNL_ARG_DST, dnnl::memory(cDesc, *context.engine, cData)}};
    if (hasBias)
      args.emplace(DNNL_ARG_BIAS, dnnl::memory(biasDesc, *context.engine, biasData));
    *result = std::make_unique<MatmulKernel>(context, dnnl::matmul(pd), std::move(args),
                                             std::move(staging));
  } catch (const dnnl::error &e) {
    return Status::error(std::string("oneDNN: ") + e.what());
  }
  return Status::ok();
}

} // namespace amprt
