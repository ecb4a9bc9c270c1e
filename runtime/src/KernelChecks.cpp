//===- KernelChecks.cpp - checks every backend makes of its kernels -------===//

#include "KernelChecks.h"
#include "amprt/Communicator.h"

namespace amprt {

bool listAttr(const proto::Kernel &kernel, const std::string &name, size_t count,
              std::optional<int64_t> fallback, std::vector<int64_t> *values) {
  values->clear();
  for (size_t i = 0; i < count; ++i) {
    auto it = kernel.attrs().find(name + "." + std::to_string(i));
    if (it == kernel.attrs().end() && !fallback)
      return false;
    values->push_back(it == kernel.attrs().end() ? *fallback
                                                 : static_cast<int64_t>(it->second));
  }
  return true;
}

Status requireScalar(const TensorRef &t, DType dtype, const char *what) {
  if (t.dtype != dtype || t.size() != 1)
    return Status::error(std::string(what) + " must be one " + dtypeName(dtype));
  return Status::ok();
}

Status skipFlag(const std::vector<TensorRef> &in, size_t index, const float **flag) {
  *flag = nullptr;
  if (in.size() <= index)
    return Status::ok();
  AMPRT_RETURN_IF_ERROR(requireScalar(in[index], DType::F32, "the skip flag"));
  *flag = in[index].f32();
  return Status::ok();
}

Status checkScalarKernel(const proto::Kernel &kernel, KernelId id, const std::vector<TensorRef> &in,
                         const std::vector<TensorRef> &out) {
  if (id == KernelId::Increment) {
    const float *skip;
    AMPRT_RETURN_IF_ERROR(skipFlag(in, 1, &skip));
    AMPRT_RETURN_IF_ERROR(requireScalar(in[0], DType::I64, "the step counter"));
    return requireScalar(out[0], DType::I64, "the new step counter");
  }
  if (id == KernelId::UpdateLossScale) {
    const float *skip;
    AMPRT_RETURN_IF_ERROR(skipFlag(in, 3, &skip));
    AMPRT_RETURN_IF_ERROR(requireScalar(in[0], DType::F32, "the scale"));
    AMPRT_RETURN_IF_ERROR(requireScalar(in[1], DType::I64, "the growth tracker"));
    AMPRT_RETURN_IF_ERROR(requireScalar(in[2], DType::F32, "the non-finite flag"));
    AMPRT_RETURN_IF_ERROR(requireScalar(out[0], DType::F32, "the new scale"));
    return requireScalar(out[1], DType::I64, "the new growth tracker");
  }
  if (id == KernelId::AccumulationStep) {
    AMPRT_RETURN_IF_ERROR(requireScalar(in[0], DType::I64, "the micro-batch count"));
    AMPRT_RETURN_IF_ERROR(requireScalar(out[0], DType::I64, "the new count"));
    AMPRT_RETURN_IF_ERROR(requireScalar(out[1], DType::F32, "the apply flag"));
    auto it = kernel.attrs().find("micro_batches");
    if (it == kernel.attrs().end() || it->second < 1)
      return Status::error("micro_batches must be at least 1");
    return Status::ok();
  }
  if (id == KernelId::ClipCoefficient) {
    AMPRT_RETURN_IF_ERROR(requireScalar(in[0], DType::F32, "the norm"));
    return requireScalar(out[0], DType::F32, "the coefficient");
  }
  return Status::error("'" + kernel.op() + "' is not a scalar kernel");
}

Status checkMatmul(const proto::Kernel &kernel, const std::vector<TensorRef> &in,
                   const TensorRef &c, MatmulShape *shape) {
  auto flag = [&](const char *name) {
    auto it = kernel.attrs().find(name);
    return it != kernel.attrs().end() && it->second != 0;
  };
  const TensorRef &a = in[0], &b = in[1];
  bool ta = flag("transpose_lhs"), tb = flag("transpose_rhs");
  *shape = {0, 0, 0, 1, ta, tb, flag("bias"), flag("relu")};
  if (shape->bias != (in.size() == 3))
    return Status::error("the bias attribute and the number of inputs disagree");
  size_t rank = c.shape.size();
  if (rank < 2 || a.shape.size() != rank || b.shape.size() != rank)
    return Status::error("expects operands and result of one rank, at least 2");
  for (size_t d = 0; d + 2 < rank; ++d) {
    if (a.shape[d] != c.shape[d] || b.shape[d] != c.shape[d])
      return Status::error("operands and result differ in batch dim " + std::to_string(d));
    shape->batch *= c.shape[d];
  }
  if (shape->bias && rank != 2)
    return Status::error("a bias is only supported for a single (2-D) GEMM");
  size_t r = rank - 2; // the matrices' first dim
  shape->m = ta ? a.shape[r + 1] : a.shape[r];
  shape->k = ta ? a.shape[r] : a.shape[r + 1];
  int64_t kb = tb ? b.shape[r + 1] : b.shape[r];
  shape->n = tb ? b.shape[r] : b.shape[r + 1];
  if (shape->k != kb || c.shape[r] != shape->m || c.shape[r + 1] != shape->n)
    return Status::error("operand shapes do not multiply");
  if (a.dtype != b.dtype || !isFloat(a.dtype) ||
      (c.dtype != a.dtype && c.dtype != DType::F32))
    return Status::error(std::string("unsupported types ") + dtypeName(a.dtype) + " x " +
                         dtypeName(b.dtype) + " -> " + dtypeName(c.dtype));
  if (shape->bias && (in[2].size() != shape->n || !isFloat(in[2].dtype)))
    return Status::error("the bias must be a float vector of the result's columns");
  return Status::ok();
}

LabelRule labelRule(const proto::Kernel &kernel) {
  LabelRule rule;
  rule.hasIgnore = attr(kernel, "has_ignore_index") != 0;
  rule.ignore = static_cast<int64_t>(attr(kernel, "ignore_index"));
  return rule;
}

Status checkLabels(const int64_t *labels, int64_t n, int64_t classes, LabelRule rule,
                   int64_t *counted) {
  *counted = 0;
  for (int64_t i = 0; i < n; ++i) {
    if (!rule.counts(labels[i]))
      continue;
    if (labels[i] < 0 || labels[i] >= classes)
      return Status::error("label " + std::to_string(labels[i]) + " at row " +
                           std::to_string(i) + " is outside [0, " +
                           std::to_string(classes) + ")");
    ++*counted;
  }
  return Status::ok();
}

Status checkSoftmax(const proto::Kernel &kernel, const TensorRef &in, const TensorRef &out,
                    SoftmaxShape *shape) {
  if (in.dtype != DType::F32 || out.dtype != DType::F32)
    return Status::error("expects f32 input and output");
  if (in.shape != out.shape || in.shape.empty())
    return Status::error("expects an input and an output of one shape, rank >= 1");
  auto rank = static_cast<int64_t>(in.shape.size());
  auto it = kernel.attrs().find("axis");
  double axis = it == kernel.attrs().end() ? -1.0 : it->second;
  if (!(axis >= static_cast<double>(-rank) && axis < static_cast<double>(rank)) ||
      axis != static_cast<double>(static_cast<int64_t>(axis)))
    return Status::error("axis " + std::to_string(axis) + " is out of range for rank " +
                         std::to_string(rank));
  auto a = static_cast<size_t>(axis < 0 ? axis + rank : axis);
  shape->width = in.shape[a];
  shape->inner = product(in.shape, a + 1);
  int64_t slice = shape->width * shape->inner;
  shape->outer = slice ? product(in.shape) / slice : 0;
  return Status::ok();
}

Status checkLayerNorm(const proto::Kernel &kernel, KernelId id, const std::vector<TensorRef> &in,
                      const std::vector<TensorRef> &out, LayerNormShape *shape) {
  bool grad = id == KernelId::LayerNormGrad;
  const TensorRef &x = in[grad ? 1 : 0];
  if (x.dtype != DType::F32 && x.dtype != DType::BF16 && x.dtype != DType::F16)
    return Status::error("expects a float activation");
  std::vector<const TensorRef *> activations{&x, &out[0]}, perValue, perRow;
  if (grad) {
    activations.push_back(&in[0]);
    perValue = {&in[2], &out[1], &out[2]};
    perRow = {&in[3], &in[4]};
  } else {
    perValue = {&in[1], &in[2]};
    perRow = {&out[1], &out[2]};
  }
  for (const TensorRef *t : activations)
    if (t->dtype != x.dtype || t->shape != x.shape)
      return Status::error("activations and their gradients must share type and shape");
  auto rank = static_cast<double>(x.shape.size());
  double axis = attr(kernel, "axis");
  if (!(axis >= 0 && axis < rank) || axis != static_cast<double>(static_cast<int64_t>(axis)))
    return Status::error("axis must be a dim of the input");
  shape->width = product(x.shape, static_cast<size_t>(axis));
  shape->rows = shape->width ? x.size() / shape->width : 0;
  for (const TensorRef *t : perValue)
    if (t->dtype != DType::F32 || t->size() != shape->width)
      return Status::error("scale, bias and their gradients must be f32 with " +
                           std::to_string(shape->width) + " values");
  for (const TensorRef *t : perRow)
    if (t->dtype != DType::F32 || t->size() != shape->rows)
      return Status::error("mean and inv_std must be f32 with " + std::to_string(shape->rows) +
                           " values");
  shape->epsilon = static_cast<float>(attr(kernel, "epsilon"));
  if (!grad && !(shape->epsilon > 0.0f))
    return Status::error("epsilon must be > 0");
  return Status::ok();
}

Status checkGather(const proto::Kernel &kernel, KernelId id, const std::vector<TensorRef> &in,
                   const TensorRef &out, GatherShape *shape) {
  bool grad = id == KernelId::GatherGrad;
  const TensorRef &table = grad ? out : in[0], &gathered = grad ? in[0] : out,
                  &indices = in[1];
  if (indices.dtype != DType::I64 && indices.dtype != DType::I32)
    return Status::error("expects int64 or int32 indices");
  if (grad ? (table.dtype != DType::F32 || gathered.dtype != DType::F32)
           : (table.dtype != gathered.dtype || !isFloat(table.dtype)))
    return Status::error(grad ? "expects an f32 gradient and result"
                              : "expects a float table and a result of its type");
  auto rank = static_cast<double>(table.shape.size());
  double axis = attr(kernel, "axis");
  if (!(axis >= 0 && axis < rank) || axis != static_cast<double>(static_cast<int64_t>(axis)))
    return Status::error("axis must be a dim of the table");
  auto a = static_cast<size_t>(axis);
  std::vector<int64_t> expected(table.shape.begin(), table.shape.begin() + a);
  expected.insert(expected.end(), indices.shape.begin(), indices.shape.end());
  expected.insert(expected.end(), table.shape.begin() + a + 1, table.shape.end());
  if (gathered.shape != expected)
    return Status::error("the gathered shape is not the table's with the axis replaced by the "
                         "indices' shape");
  shape->size = table.shape[a];
  shape->inner = product(table.shape, a + 1);
  shape->outer = product(std::vector<int64_t>(table.shape.begin(), table.shape.begin() + a));
  shape->count = indices.size();
  return Status::ok();
}

template <typename Index>
static Status checkIndices(const Index *indices, int64_t count, int64_t size) {
  for (int64_t i = 0; i < count; ++i)
    if (indices[i] < -size || indices[i] >= size)
      return Status::error("index " + std::to_string(indices[i]) + " at position " +
                           std::to_string(i) + " is outside [" + std::to_string(-size) + ", " +
                           std::to_string(size) + ")");
  return Status::ok();
}

Status checkGatherIndices(const int64_t *indices, int64_t count, int64_t size) {
  return checkIndices(indices, count, size);
}

Status checkGatherIndices(const int32_t *indices, int64_t count, int64_t size) {
  return checkIndices(indices, count, size);
}

Status checkAllReduce(const proto::Kernel &kernel, const std::vector<TensorRef> &in,
                      const std::vector<TensorRef> &out, const Communicator *communicator,
                      bool *max) {
  if (in.size() != out.size())
    return Status::error("all_reduce needs one output per input");
  for (size_t i = 0; i < in.size(); ++i)
    if (in[i].dtype != in[0].dtype || out[i].dtype != in[i].dtype ||
        out[i].shape != in[i].shape || !isFloat(in[i].dtype))
      return Status::error("all_reduce's tensors must be float tensors of one type, each "
                           "output its input's shape");
  *max = attr(kernel, "max") != 0;
  if (*max && in[0].dtype != DType::F32)
    return Status::error("all_reduce's maximum is taken over f32 tensors only");
  double worldSize = attr(kernel, "world_size");
  int ranks = communicator ? communicator->size() : 1;
  if (worldSize != ranks)
    return Status::error(
        "the plan was compiled for data-parallel training over " +
        std::to_string(static_cast<int64_t>(worldSize)) + " ranks, but this session runs " +
        (communicator ? "on " + std::to_string(ranks) + " ranks"
                      : std::string("without a communicator (one rank)")) +
        " (amp-opt --amp-pipeline='... data-parallel=N', and amp-run under mpirun -np N)");
  return Status::ok();
}

} // namespace amprt
