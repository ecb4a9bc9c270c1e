//===- CpuKernels.cpp - CPU backend: oneDNN matmul, C++ for the rest ------===//
//
// GEMMs go to oneDNN (its JIT picks AVX-512/AMX); everything else is plain
// C++ over the per-element math in KernelMath.h, parallelised with OpenMP
// where the work is elementwise.
//
//===----------------------------------------------------------------------===//

#include "CpuKernels.h"
#include "KernelMath.h"

#include <oneapi/dnnl/dnnl.hpp>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <functional>

namespace amprt {

CpuContext::CpuContext()
    : engine(std::make_unique<dnnl::engine>(dnnl::engine::kind::cpu, 0)),
      stream(std::make_unique<dnnl::stream>(*engine)) {}
CpuContext::~CpuContext() = default;

namespace {

/// A kernel given as a closure over its bound tensors.
class LambdaKernel : public CpuKernel {
public:
  explicit LambdaKernel(std::function<Status()> body) : body(std::move(body)) {}
  Status run() override { return body(); }

private:
  std::function<Status()> body;
};

std::unique_ptr<CpuKernel> lambda(std::function<Status()> body) {
  return std::make_unique<LambdaKernel>(std::move(body));
}

std::unique_ptr<CpuKernel> elementwise(std::function<void(int64_t)> perElement,
                                       int64_t count) {
  return lambda([perElement, count] {
#pragma omp parallel for schedule(static) if (count > 32768)
    for (int64_t i = 0; i < count; ++i)
      perElement(i);
    return Status::ok();
  });
}

//===----------------------------------------------------------------------===//
// matmul (oneDNN)
//===----------------------------------------------------------------------===//

class MatmulKernel : public CpuKernel {
public:
  MatmulKernel(CpuContext &context, dnnl::matmul primitive,
               std::unordered_map<int, dnnl::memory> args)
      : context(context), primitive(std::move(primitive)), args(std::move(args)) {}
  Status run() override {
    primitive.execute(*context.stream, args);
    context.stream->wait();
    return Status::ok();
  }

private:
  CpuContext &context;
  dnnl::matmul primitive;
  std::unordered_map<int, dnnl::memory> args;
};

/// A logical [rows, cols] f32 matrix stored row-major, or its transpose.
dnnl::memory::desc matrixDesc(int64_t rows, int64_t cols, bool storedTransposed) {
  using dims = dnnl::memory::dims;
  dims strides = storedTransposed ? dims{1, rows} : dims{cols, 1};
  return dnnl::memory::desc(dims{rows, cols}, dnnl::memory::data_type::f32, strides);
}

Status buildMatmul(const proto::Kernel &kernel, const TensorRef &a, const TensorRef &b,
                   const TensorRef &c, CpuContext &context,
                   std::unique_ptr<CpuKernel> *result) {
  bool ta = kernel.attrs().count("transpose_lhs") && kernel.attrs().at("transpose_lhs");
  bool tb = kernel.attrs().count("transpose_rhs") && kernel.attrs().at("transpose_rhs");
  if (a.shape.size() != 2 || b.shape.size() != 2 || c.shape.size() != 2)
    return Status::error("expects 2-D operands");
  int64_t m = ta ? a.shape[1] : a.shape[0], k = ta ? a.shape[0] : a.shape[1];
  int64_t kb = tb ? b.shape[1] : b.shape[0], n = tb ? b.shape[0] : b.shape[1];
  if (k != kb || c.shape[0] != m || c.shape[1] != n)
    return Status::error("operand shapes do not multiply");
  auto aDesc = matrixDesc(m, k, ta), bDesc = matrixDesc(k, n, tb),
       cDesc = matrixDesc(m, n, false);
  try {
    dnnl::matmul::primitive_desc pd(dnnl::matmul::desc(aDesc, bDesc, cDesc),
                                    *context.engine);
    std::unordered_map<int, dnnl::memory> args = {
        {DNNL_ARG_SRC, dnnl::memory(aDesc, *context.engine, a.data)},
        {DNNL_ARG_WEIGHTS, dnnl::memory(bDesc, *context.engine, b.data)},
        {DNNL_ARG_DST, dnnl::memory(cDesc, *context.engine, c.data)}};
    *result = std::make_unique<MatmulKernel>(context, dnnl::matmul(pd), std::move(args));
  } catch (const dnnl::error &e) {
    return Status::error(std::string("oneDNN: ") + e.what());
  }
  return Status::ok();
}

//===----------------------------------------------------------------------===//
// Broadcasting binary ops and reductions
//===----------------------------------------------------------------------===//

/// Strides of `shape` (right-aligned to `rank`) with 0 for broadcast dims.
std::vector<int64_t> broadcastStrides(const std::vector<int64_t> &shape, size_t rank) {
  std::vector<int64_t> strides(rank, 0);
  int64_t stride = 1;
  for (size_t i = 0; i < shape.size(); ++i) {
    size_t dim = shape.size() - 1 - i, out = rank - 1 - i;
    strides[out] = shape[dim] == 1 ? 0 : stride;
    stride *= shape[dim];
  }
  return strides;
}

/// Calls body(outIndex, aOffset, bOffset) over an output of `outShape` whose
/// operands are broadcast with the given strides; rows run in parallel.
template <typename Body>
void forEachBroadcast(const std::vector<int64_t> &outShape,
                      const std::vector<int64_t> &aStrides,
                      const std::vector<int64_t> &bStrides, Body body) {
  size_t rank = outShape.size();
  if (rank == 0) {
    body(0, 0, 0);
    return;
  }
  int64_t inner = outShape[rank - 1];
  int64_t rows = 1;
  for (size_t i = 0; i + 1 < rank; ++i)
    rows *= outShape[i];
#pragma omp parallel for schedule(static) if (rows * inner > 32768)
  for (int64_t row = 0; row < rows; ++row) {
    int64_t aBase = 0, bBase = 0, rest = row;
    for (size_t i = rank - 1; i-- > 0;) {
      int64_t index = rest % outShape[i];
      rest /= outShape[i];
      aBase += index * aStrides[i];
      bBase += index * bStrides[i];
    }
    for (int64_t j = 0; j < inner; ++j)
      body(row * inner + j, aBase + j * aStrides[rank - 1], bBase + j * bStrides[rank - 1]);
  }
}

/// True when `in` broadcasts (numpy rules, right-aligned) to `out`.
bool broadcastsTo(const std::vector<int64_t> &in, const std::vector<int64_t> &out) {
  if (in.size() > out.size())
    return false;
  for (size_t i = 0; i < in.size(); ++i) {
    int64_t dim = in[in.size() - 1 - i], outDim = out[out.size() - 1 - i];
    if (dim != outDim && dim != 1)
      return false;
  }
  return true;
}

Status buildBinary(const std::string &op, const TensorRef &a, const TensorRef &b,
                   const TensorRef &c, std::unique_ptr<CpuKernel> *result) {
  if (!broadcastsTo(a.shape, c.shape) || !broadcastsTo(b.shape, c.shape))
    return Status::error("operand shapes do not broadcast to the result");
  std::function<float(float, float)> fn;
  if (op == "add")
    fn = [](float x, float y) { return x + y; };
  else if (op == "sub")
    fn = [](float x, float y) { return x - y; };
  else
    fn = [](float x, float y) { return x * y; };
  auto aStrides = broadcastStrides(a.shape, c.shape.size());
  auto bStrides = broadcastStrides(b.shape, c.shape.size());
  float *pa = a.f32(), *pb = b.f32(), *pc = c.f32();
  auto shape = c.shape;
  if (a.shape == c.shape && b.shape == c.shape) {
    *result = elementwise([=](int64_t i) { pc[i] = fn(pa[i], pb[i]); }, c.size());
    return Status::ok();
  }
  *result = lambda([=] {
    forEachBroadcast(shape, aStrides, bStrides, [&](int64_t i, int64_t ia, int64_t ib) {
      pc[i] = fn(pa[ia], pb[ib]);
    });
    return Status::ok();
  });
  return Status::ok();
}

Status buildReduceSum(const proto::Kernel &kernel, const TensorRef &in,
                      const TensorRef &out, std::unique_ptr<CpuKernel> *result) {
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
  float *pin = in.f32(), *pout = out.f32();
  int64_t outCount = out.size();
  *result = lambda([=] {
    std::fill(pout, pout + outCount, 0.0f);
    std::vector<int64_t> zero(rank, 0);
    // Serial: several input rows accumulate into one output element.
    size_t r = rank;
    if (r == 0) {
      pout[0] = pin[0];
      return Status::ok();
    }
    int64_t inner = inShape[r - 1], rows = 1;
    for (size_t i = 0; i + 1 < r; ++i)
      rows *= inShape[i];
    for (int64_t row = 0; row < rows; ++row) {
      int64_t base = 0, rest = row;
      for (size_t i = r - 1; i-- > 0;) {
        base += (rest % inShape[i]) * strides[i];
        rest /= inShape[i];
      }
      const float *src = pin + row * inner;
      if (strides[r - 1] == 0) {
        float sum = 0.0f;
        for (int64_t j = 0; j < inner; ++j)
          sum += src[j];
        pout[base] += sum;
      } else {
        float *dst = pout + base;
        for (int64_t j = 0; j < inner; ++j)
          dst[j] += src[j];
      }
    }
    return Status::ok();
  });
  return Status::ok();
}

//===----------------------------------------------------------------------===//
// Softmax cross-entropy and its gradient
//===----------------------------------------------------------------------===//

/// Checks labels lie in [0, classes) before any arithmetic uses them.
Status checkLabels(const int64_t *labels, int64_t n, int64_t classes) {
  for (int64_t i = 0; i < n; ++i)
    if (labels[i] < 0 || labels[i] >= classes)
      return Status::error("label " + std::to_string(labels[i]) + " at row " +
                           std::to_string(i) + " is outside [0, " +
                           std::to_string(classes) + ")");
  return Status::ok();
}

/// Row-wise log-sum-exp, computed stably around the row's maximum.
inline float logSumExp(const float *row, int64_t classes) {
  float maxValue = row[0];
  for (int64_t c = 1; c < classes; ++c)
    maxValue = std::max(maxValue, row[c]);
  float sum = 0.0f;
  for (int64_t c = 0; c < classes; ++c)
    sum += std::exp(row[c] - maxValue);
  return maxValue + std::log(sum);
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
  bool mean = kernel.attrs().count("mean") && kernel.attrs().at("mean");
  float *x = logits.f32(), *out = loss.f32();
  int64_t *y = labels.i64();
  *result = lambda([=] {
    AMPRT_RETURN_IF_ERROR(checkLabels(y, n, classes));
    double total = 0.0;
#pragma omp parallel for reduction(+ : total) schedule(static) if (n * classes > 32768)
    for (int64_t i = 0; i < n; ++i) {
      const float *row = x + i * classes;
      total += logSumExp(row, classes) - row[y[i]];
    }
    out[0] = static_cast<float>(mean ? total / n : total);
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
  bool mean = kernel.attrs().count("mean") && kernel.attrs().at("mean");
  float *g = grad.f32(), *x = logits.f32(), *dx = out.f32();
  int64_t *y = labels.i64();
  *result = lambda([=] {
    AMPRT_RETURN_IF_ERROR(checkLabels(y, n, classes));
    float scale = g[0] * (mean ? 1.0f / n : 1.0f);
#pragma omp parallel for schedule(static) if (n * classes > 32768)
    for (int64_t i = 0; i < n; ++i) {
      const float *row = x + i * classes;
      float lse = logSumExp(row, classes);
      for (int64_t c = 0; c < classes; ++c)
        dx[i * classes + c] =
            scale * (std::exp(row[c] - lse) - (c == y[i] ? 1.0f : 0.0f));
    }
    return Status::ok();
  });
  return Status::ok();
}

//===----------------------------------------------------------------------===//
// Optimizer updates
//===----------------------------------------------------------------------===//

double attr(const proto::Kernel &kernel, const std::string &name) {
  auto it = kernel.attrs().find(name);
  return it == kernel.attrs().end() ? 0.0 : it->second;
}

Status buildAdamW(const proto::Kernel &kernel, const std::vector<TensorRef> &in,
                  const std::vector<TensorRef> &out, std::unique_ptr<CpuKernel> *result) {
  int64_t count = in[0].size();
  for (int i = 0; i < 4; ++i)
    if (in[i].size() != count || in[i].dtype != DType::F32)
      return Status::error("parameter, gradient and moments must be f32 of one size");
  if (in[4].dtype != DType::I64 || in[4].size() != 1)
    return Status::error("the step counter must be one int64");
  for (const auto &o : out)
    if (o.size() != count || o.dtype != DType::F32)
      return Status::error("outputs must be f32 of the parameter's size");
  float *p = in[0].f32(), *g = in[1].f32(), *m = in[2].f32(), *v = in[3].f32();
  int64_t *step = in[4].i64();
  float *po = out[0].f32(), *mo = out[1].f32(), *vo = out[2].f32();
  double lr = attr(kernel, "lr"), beta1 = attr(kernel, "beta1"), beta2 = attr(kernel, "beta2"),
         eps = attr(kernel, "eps"), decay = attr(kernel, "weight_decay");
  *result = lambda([=] {
    auto scalars = math::adamwScalars(lr, beta1, beta2, eps, decay, step[0] + 1);
#pragma omp parallel for schedule(static) if (count > 32768)
    for (int64_t i = 0; i < count; ++i) {
      float param = p[i], expAvg = m[i], expAvgSq = v[i];
      math::adamwElement(scalars, g[i], param, expAvg, expAvgSq);
      po[i] = param;
      mo[i] = expAvg;
      vo[i] = expAvgSq;
    }
    return Status::ok();
  });
  return Status::ok();
}

Status buildSgd(const proto::Kernel &kernel, const std::vector<TensorRef> &in,
                const std::vector<TensorRef> &out, std::unique_ptr<CpuKernel> *result) {
  int64_t count = in[0].size();
  if (in[1].size() != count || in[2].size() != count || out[0].size() != count ||
      out[1].size() != count)
    return Status::error("parameter, gradient and buffer differ in size");
  float *p = in[0].f32(), *g = in[1].f32(), *b = in[2].f32();
  float *po = out[0].f32(), *bo = out[1].f32();
  float lr = attr(kernel, "lr"), momentum = attr(kernel, "momentum"),
        decay = attr(kernel, "weight_decay");
  bool nesterov = attr(kernel, "nesterov") != 0.0;
  *result = elementwise(
      [=](int64_t i) {
        float param = p[i], buffer = b[i];
        math::sgdElement(lr, momentum, decay, nesterov, g[i], param, buffer);
        po[i] = param;
        bo[i] = buffer;
      },
      count);
  return Status::ok();
}

//===----------------------------------------------------------------------===//
// Dispatch
//===----------------------------------------------------------------------===//

/// Expected operand and result counts of each op.
struct Arity {
  const char *op;
  size_t inputs, outputs;
};
constexpr Arity kArities[] = {
    {"matmul", 2, 1},       {"add", 2, 1},        {"sub", 2, 1},
    {"mul", 2, 1},          {"neg", 1, 1},        {"relu", 1, 1},
    {"relu_grad", 2, 1},    {"reduce_sum", 1, 1}, {"softmax_cross_entropy", 2, 1},
    {"softmax_cross_entropy_grad", 3, 1},         {"adamw_update", 5, 3},
    {"sgd_update", 3, 2},   {"increment", 1, 1},  {"copy", 1, 1},
};

Status checkSignature(const std::string &op, const std::vector<TensorRef> &in,
                      const std::vector<TensorRef> &out) {
  for (const auto &arity : kArities) {
    if (op != arity.op)
      continue;
    if (in.size() != arity.inputs || out.size() != arity.outputs)
      return Status::error("expects " + std::to_string(arity.inputs) + " inputs and " +
                           std::to_string(arity.outputs) + " outputs");
    return Status::ok();
  }
  return Status::error("unknown kernel");
}

Status checkFloat(const std::vector<TensorRef> &tensors) {
  for (const auto &t : tensors)
    if (t.dtype != DType::F32)
      return Status::error("expects f32 tensors (low precision arrives with autocast)");
  return Status::ok();
}

Status buildChecked(const proto::Kernel &kernel, const std::vector<TensorRef> &in,
                    const std::vector<TensorRef> &out, CpuContext &context,
                    std::unique_ptr<CpuKernel> *result) {
  const std::string &op = kernel.op();
  AMPRT_RETURN_IF_ERROR(checkSignature(op, in, out));
  if (op == "increment" || op == "copy") {
    if (in[0].size() != out[0].size() || in[0].dtype != out[0].dtype)
      return Status::error("input and output differ");
    if (op == "increment" && (in[0].dtype != DType::I64 || in[0].size() != 1))
      return Status::error("the step counter must be one int64");
    void *src = in[0].data, *dst = out[0].data;
    size_t bytes = in[0].size() * dtypeSize(in[0].dtype);
    if (op == "copy") {
      *result = lambda([=] {
        if (src != dst)
          std::memcpy(dst, src, bytes);
        return Status::ok();
      });
    } else {
      int64_t *s = in[0].i64(), *d = out[0].i64();
      *result = lambda([=] {
        d[0] = s[0] + 1;
        return Status::ok();
      });
    }
    return Status::ok();
  }
  if (op == "softmax_cross_entropy")
    return buildSoftmaxCrossEntropy(kernel, in[0], in[1], out[0], result);
  if (op == "softmax_cross_entropy_grad")
    return buildSoftmaxCrossEntropyGrad(kernel, in[0], in[1], in[2], out[0], result);
  if (op == "adamw_update")
    return buildAdamW(kernel, in, out, result);
  AMPRT_RETURN_IF_ERROR(checkFloat(in));
  AMPRT_RETURN_IF_ERROR(checkFloat(out));
  if (op == "matmul")
    return buildMatmul(kernel, in[0], in[1], out[0], context, result);
  if (op == "add" || op == "sub" || op == "mul")
    return buildBinary(op, in[0], in[1], out[0], result);
  if (op == "reduce_sum")
    return buildReduceSum(kernel, in[0], out[0], result);
  if (op == "sgd_update")
    return buildSgd(kernel, in, out, result);
  // Unary ops and relu_grad: same-shaped elementwise.
  for (const auto &t : in)
    if (t.size() != out[0].size())
      return Status::error("operands differ in size");
  float *x = in[0].f32(), *y = out[0].f32();
  if (op == "neg") {
    *result = elementwise([=](int64_t i) { y[i] = -x[i]; }, out[0].size());
  } else if (op == "relu") {
    *result = elementwise([=](int64_t i) { y[i] = math::relu(x[i]); }, out[0].size());
  } else {
    float *input = in[1].f32();
    *result = elementwise([=](int64_t i) { y[i] = math::reluGrad(x[i], input[i]); },
                          out[0].size());
  }
  return Status::ok();
}

} // namespace

Status buildCpuKernel(const proto::Kernel &kernel, std::vector<TensorRef> inputs,
                      std::vector<TensorRef> outputs, CpuContext &context,
                      std::unique_ptr<CpuKernel> *result) {
  Status status = buildChecked(kernel, inputs, outputs, context, result);
  if (!status.isOk())
    return Status::error("kernel '" + kernel.op() + "' at node '" + kernel.node() +
                         "': " + status.message());
  return status;
}

} // namespace amprt
