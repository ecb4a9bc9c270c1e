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

Status buildChecked(const proto::Kernel &kernel, const std::vector<TensorRef> &in,
                    const std::vector<TensorRef> &out, CpuContext &context,
                    std::unique_ptr<CpuKernel> *result) {
  const std::string &op = kernel.op();
  AMPRT_RETURN_IF_ERROR(checkSignature(op, in.size(), out.size()));
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
