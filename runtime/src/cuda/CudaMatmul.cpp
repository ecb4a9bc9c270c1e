//===- CudaMatmul.cpp - GEMMs on Tensor Cores through cuBLASLt ------------===//
//
// Row-major C[m,n] = op(A) op(B) is computed as the column-major product
// C^T = op(B)^T op(A)^T, so cuBLASLt sees B as its first operand and the
// bias (one value per column of C) as its per-row bias. bf16/f16 operands
// accumulate in FP32 (CUBLAS_COMPUTE_32F); FP32 GEMMs stay true FP32 unless
// the session allows TF32. Bias and relu run in the epilogue, in FP32,
// before the one rounding to C's type. The heuristic's first algorithm is
// cached per shape, type and epilogue, and reused by every GEMM like it.
//
//===----------------------------------------------------------------------===//

#include "CudaDevice.h"
#include "KernelChecks.h"

namespace amprt::cuda {
namespace {

cudaDataType_t cudaType(DType dtype) {
  switch (dtype) {
  case DType::BF16:
    return CUDA_R_16BF;
  case DType::F16:
    return CUDA_R_16F;
  default:
    return CUDA_R_32F;
  }
}

/// The descriptors of one GEMM, destroyed with it.
struct LtGemm {
  cublasLtMatmulDesc_t desc = nullptr;
  cublasLtMatrixLayout_t a = nullptr, b = nullptr, c = nullptr;
  cublasLtMatmulAlgo_t algo{};
  ~LtGemm() {
    if (desc)
      cublasLtMatmulDescDestroy(desc);
    for (auto layout : {a, b, c})
      if (layout)
        cublasLtMatrixLayoutDestroy(layout);
  }
};

class CudaMatmulKernel : public CudaKernel {
public:
  CudaMatmulKernel(std::unique_ptr<LtGemm> gemm, CudaContext &context, const void *lhs,
                   const void *rhs, void *out)
      : gemm(std::move(gemm)), context(context), lhs(lhs), rhs(rhs), out(out) {}
  Status run() override {
    const float one = 1.0f, zero = 0.0f;
    // cuBLASLt's A is our B and its B our A (see the file comment).
    return check(cublasLtMatmul(context.lt, gemm->desc, &one, rhs, gemm->a, lhs, gemm->b, &zero,
                                out, gemm->c, out, gemm->c, &gemm->algo, context.workspace,
                                context.workspaceBytes, context.stream),
                 "matmul");
  }

private:
  std::unique_ptr<LtGemm> gemm;
  CudaContext &context;
  const void *lhs, *rhs;
  void *out;
};

template <typename T>
Status setAttribute(cublasLtMatmulDesc_t desc, cublasLtMatmulDescAttributes_t attribute,
                    const T &value, const char *what) {
  return check(cublasLtMatmulDescSetAttribute(desc, attribute, &value, sizeof(value)), what);
}

} // namespace

Status buildCudaMatmul(const proto::Kernel &kernel, const std::vector<TensorRef> &in,
                       const TensorRef &c, CudaContext &context,
                       std::unique_ptr<Kernel> *result) {
  const TensorRef &a = in[0], &b = in[1];
  MatmulShape shape;
  AMPRT_RETURN_IF_ERROR(checkMatmul(kernel, in, c, &shape));
  int64_t m = shape.m, n = shape.n, k = shape.k;
  bool ta = shape.transposeLhs, tb = shape.transposeRhs, hasBias = shape.bias, relu = shape.relu;
  // cuBLASLt's bias has C's type.
  if (hasBias && in[2].dtype != c.dtype)
    return Status::error("the bias must have the result's type");

  auto gemm = std::make_unique<LtGemm>();
  bool f32 = a.dtype == DType::F32;
  cublasComputeType_t compute =
      f32 && context.allowTf32 ? CUBLAS_COMPUTE_32F_FAST_TF32 : CUBLAS_COMPUTE_32F;
  AMPRT_RETURN_IF_ERROR(
      check(cublasLtMatmulDescCreate(&gemm->desc, compute, CUDA_R_32F), "describing a GEMM"));
  cublasOperation_t opA = tb ? CUBLAS_OP_T : CUBLAS_OP_N, opB = ta ? CUBLAS_OP_T : CUBLAS_OP_N;
  AMPRT_RETURN_IF_ERROR(setAttribute(gemm->desc, CUBLASLT_MATMUL_DESC_TRANSA, opA, "transA"));
  AMPRT_RETURN_IF_ERROR(setAttribute(gemm->desc, CUBLASLT_MATMUL_DESC_TRANSB, opB, "transB"));
  if (hasBias) {
    cublasLtEpilogue_t epilogue = relu ? CUBLASLT_EPILOGUE_RELU_BIAS : CUBLASLT_EPILOGUE_BIAS;
    const void *bias = in[2].data;
    cudaDataType_t biasType = cudaType(in[2].dtype);
    AMPRT_RETURN_IF_ERROR(
        setAttribute(gemm->desc, CUBLASLT_MATMUL_DESC_EPILOGUE, epilogue, "epilogue"));
    AMPRT_RETURN_IF_ERROR(
        setAttribute(gemm->desc, CUBLASLT_MATMUL_DESC_BIAS_POINTER, bias, "bias"));
    AMPRT_RETURN_IF_ERROR(
        setAttribute(gemm->desc, CUBLASLT_MATMUL_DESC_BIAS_DATA_TYPE, biasType, "bias type"));
  } else if (relu) {
    AMPRT_RETURN_IF_ERROR(setAttribute(gemm->desc, CUBLASLT_MATMUL_DESC_EPILOGUE,
                                       CUBLASLT_EPILOGUE_RELU, "epilogue"));
  }
  // Stored matrices in column-major terms: row-major X[r, c] is X^T with ld c.
  cudaDataType_t operand = cudaType(a.dtype), output = cudaType(c.dtype);
  AMPRT_RETURN_IF_ERROR(check(cublasLtMatrixLayoutCreate(&gemm->a, operand, tb ? k : n,
                                                         tb ? n : k, tb ? k : n),
                              "describing B"));
  AMPRT_RETURN_IF_ERROR(check(cublasLtMatrixLayoutCreate(&gemm->b, operand, ta ? m : k,
                                                         ta ? k : m, ta ? m : k),
                              "describing A"));
  AMPRT_RETURN_IF_ERROR(
      check(cublasLtMatrixLayoutCreate(&gemm->c, output, n, m, n), "describing C"));
  if (shape.batch > 1) { // matrices one after the other
    int32_t count = static_cast<int32_t>(shape.batch);
    for (auto [layout, stride] : {std::pair{gemm->a, k * n}, std::pair{gemm->b, m * k},
                                  std::pair{gemm->c, m * n}}) {
      AMPRT_RETURN_IF_ERROR(check(cublasLtMatrixLayoutSetAttribute(
                                      layout, CUBLASLT_MATRIX_LAYOUT_BATCH_COUNT, &count,
                                      sizeof(count)),
                                  "batch count"));
      AMPRT_RETURN_IF_ERROR(check(cublasLtMatrixLayoutSetAttribute(
                                      layout, CUBLASLT_MATRIX_LAYOUT_STRIDED_BATCH_OFFSET,
                                      &stride, sizeof(stride)),
                                  "batch stride"));
    }
  }

  std::string key = std::to_string(shape.batch) + "*" + std::to_string(m) + "x" +
                    std::to_string(n) + "x" + std::to_string(k) +
                    ":" + std::to_string(ta) + std::to_string(tb) + ":" + dtypeName(a.dtype) +
                    "->" + dtypeName(c.dtype) + ":" + std::to_string(hasBias) +
                    std::to_string(relu) + ":" + std::to_string(context.allowTf32);
  auto cached = context.algorithms.find(key);
  if (cached != context.algorithms.end()) {
    gemm->algo = cached->second;
  } else {
    cublasLtMatmulPreference_t preference = nullptr;
    AMPRT_RETURN_IF_ERROR(check(cublasLtMatmulPreferenceCreate(&preference), "preferences"));
    size_t workspace = context.workspaceBytes;
    cublasLtMatmulPreferenceSetAttribute(preference, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES,
                                         &workspace, sizeof(workspace));
    cublasLtMatmulHeuristicResult_t heuristic{};
    int found = 0;
    cublasStatus_t status = cublasLtMatmulAlgoGetHeuristic(
        context.lt, gemm->desc, gemm->a, gemm->b, gemm->c, gemm->c, preference, 1, &heuristic,
        &found);
    cublasLtMatmulPreferenceDestroy(preference);
    AMPRT_RETURN_IF_ERROR(check(status, "choosing an algorithm"));
    if (found == 0)
      return Status::error("cuBLASLt has no algorithm for " + key);
    gemm->algo = heuristic.algo;
    context.algorithms[key] = heuristic.algo;
  }
  *result = std::make_unique<CudaMatmulKernel>(std::move(gemm), context, a.data, b.data, c.data);
  return Status::ok();
}

} // namespace amprt::cuda
