//===- CpuKernels.cpp - CPU backend: kernel choice and checks -------------===//
//
// GEMMs go to oneDNN (CpuMatmul.cpp); everything else is plain C++ over the
// per-element math of KernelMath.h (CpuElementwise.cpp, CpuReduction.cpp,
// CpuOptimizer.cpp), parallelised with OpenMP where the work is
// elementwise. Every kernel is checked against its tensors when it is built,
// so a malformed plan is refused before anything runs.
//
//===----------------------------------------------------------------------===//

#include "CpuKernelSupport.h"

namespace amprt {

Status requireF32(const std::vector<TensorRef> &tensors, const char *why) {
  for (const auto &t : tensors)
    if (t.dtype != DType::F32)
      return Status::error(std::string(why) + " runs in f32 on the CPU, got " +
                           dtypeName(t.dtype));
  return Status::ok();
}

namespace {

/// Expected operand and result counts of each op (maxInputs -1: any).
struct Arity {
  const char *op;
  int minInputs, maxInputs, outputs;
};
constexpr Arity kArities[] = {
    {"matmul", 2, 3, 1}, // a third input is the epilogue's bias
    {"add", 2, 2, 1},          {"sub", 2, 2, 1},
    {"mul", 2, 2, 1},          {"div", 2, 2, 1},          {"neg", 1, 1, 1},
    {"relu", 1, 1, 1},         {"relu_grad", 2, 2, 1},    {"exp", 1, 1, 1},
    {"log", 1, 1, 1},          {"softmax", 1, 1, 1},      {"reduce_sum", 1, 1, 1},
    {"broadcast_to", 1, 1, 1}, {"cast", 1, 1, 1},         {"copy", 1, 1, 1},
    {"softmax_cross_entropy", 2, 2, 1},  {"softmax_cross_entropy_grad", 3, 3, 1},
    {"adamw_update", 5, 6, 3}, {"sgd_update", 3, 4, 2},   {"increment", 1, 2, 1},
    {"adamw_update", 5, 6, 4}, {"sgd_update", 3, 4, 3}, // with the low-precision copy
    {"unscale", 2, 2, 1},      {"found_nonfinite", 1, -1, 1}, {"global_norm", 1, -1, 1},
    {"clip_coefficient", 1, 1, 1}, {"update_loss_scale", 3, 4, 2},
    {"accumulation_step", 1, 1, 2}, {"zero_if", 2, 2, 1},
    {"gradient_stats", 1, -1, 2}, // found_nonfinite and global_norm in one pass
    {"fused_elementwise", 1, -1, 1}, {"fused_elementwise", 1, -1, 2},
    {"fused_elementwise", 1, -1, 3}, {"fused_elementwise", 1, -1, 4},
};

Status checkSignature(const std::string &op, const std::vector<TensorRef> &in,
                      const std::vector<TensorRef> &out) {
  const Arity *known = nullptr;
  for (const auto &arity : kArities) {
    if (op != arity.op)
      continue;
    known = &arity;
    int inputs = static_cast<int>(in.size());
    if (inputs >= arity.minInputs && (arity.maxInputs < 0 || inputs <= arity.maxInputs) &&
        static_cast<int>(out.size()) == arity.outputs)
      return Status::ok();
  }
  if (!known)
    return Status::error("unknown kernel");
  return Status::error("expects " + std::to_string(known->minInputs) +
                       (known->maxInputs == known->minInputs ? "" : " or more") +
                       " inputs and " + std::to_string(known->outputs) + " outputs");
}

Status buildChecked(const proto::Kernel &kernel, const std::vector<TensorRef> &in,
                    const std::vector<TensorRef> &out, CpuContext &context,
                    std::unique_ptr<CpuKernel> *result) {
  const std::string &op = kernel.op();
  AMPRT_RETURN_IF_ERROR(checkSignature(op, in, out));
  if (op == "matmul")
    return buildMatmul(kernel, in, out[0], context, result);
  if (op == "fused_elementwise")
    return buildFusedElementwise(kernel, in, out, result);
  if (op == "reduce_sum")
    return buildReduceSum(kernel, in[0], out[0], result);
  if (op == "softmax_cross_entropy")
    return buildSoftmaxCrossEntropy(kernel, in[0], in[1], out[0], result);
  if (op == "softmax_cross_entropy_grad")
    return buildSoftmaxCrossEntropyGrad(kernel, in[0], in[1], in[2], out[0], result);
  if (op == "exp" || op == "log" || op == "softmax")
    return buildSensitive(kernel, in[0], out[0], result);
  if (op == "unscale" || op == "found_nonfinite" || op == "global_norm" ||
      op == "gradient_stats" ||
      op == "clip_coefficient" || op == "update_loss_scale" || op == "accumulation_step" ||
      op == "zero_if")
    return buildLossScaling(kernel, in, out, result);
  if (op == "adamw_update")
    return buildAdamW(kernel, in, out, result);
  if (op == "sgd_update")
    return buildSgd(kernel, in, out, result);
  return buildElementwise(kernel, in, out, result);
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
