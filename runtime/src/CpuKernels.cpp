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
  const KernelSpec *spec;
  AMPRT_RETURN_IF_ERROR(checkKernel(kernel, in.size(), out.size(), &spec));
  switch (spec->id) {
  case KernelId::Matmul:
    return buildMatmul(kernel, in, out[0], context, result);
  case KernelId::Conv:
  case KernelId::ConvBackwardData:
  case KernelId::ConvBackwardFilter:
    return buildConvolution(kernel, spec->id, in, out[0], context, result);
  case KernelId::MaxPool:
  case KernelId::MaxPoolGrad:
  case KernelId::AvgPool:
  case KernelId::AvgPoolGrad:
    return buildPooling(kernel, spec->id, in, out, result);
  case KernelId::Dropout:
    return buildDropout(kernel, in, out[0], result);
  case KernelId::Pad:
  case KernelId::Slice:
  case KernelId::Concat:
  case KernelId::Transpose:
    return buildDataMovement(kernel, spec->id, in, out[0], result);
  case KernelId::Gather:
  case KernelId::GatherGrad:
    return buildGather(kernel, spec->id, in, out[0], result);
  case KernelId::BatchNorm:
  case KernelId::BatchNormInference:
  case KernelId::BatchNormGrad:
    return buildBatchNorm(kernel, spec->id, in, out, context, result);
  case KernelId::LayerNorm:
  case KernelId::LayerNormGrad:
    return buildLayerNorm(kernel, spec->id, in, out, context, result);
  case KernelId::FusedElementwise:
    return buildFusedElementwise(kernel, in, out, result);
  case KernelId::ReduceSum:
  case KernelId::ReduceMax:
    return buildReduction(kernel, spec->id, in[0], out[0], result);
  case KernelId::SoftmaxCrossEntropy:
    return buildSoftmaxCrossEntropy(kernel, in[0], in[1], out[0], result);
  case KernelId::SoftmaxCrossEntropyGrad:
    return buildSoftmaxCrossEntropyGrad(kernel, in[0], in[1], in[2], out[0], result);
  case KernelId::Softmax:
  case KernelId::LogSoftmax:
    return buildSoftmax(kernel, in[0], out[0], spec->id == KernelId::LogSoftmax, result);
  case KernelId::Unscale:
  case KernelId::FoundNonFinite:
  case KernelId::GlobalNorm:
  case KernelId::GradientStats:
  case KernelId::ClipCoefficient:
  case KernelId::UpdateLossScale:
  case KernelId::AccumulationStep:
  case KernelId::ZeroIf:
    return buildLossScaling(kernel, spec->id, in, out, result);
  case KernelId::AdamWUpdate:
    return buildAdamW(kernel, in, out, result);
  case KernelId::SgdUpdate:
    return buildSgd(kernel, in, out, result);
  case KernelId::AllReduce:
    return buildAllReduce(kernel, in, out, context, result);
#define AMPRT_ELEMENTWISE(Id, name, arity, attribute, math) case KernelId::Id:
#include "amprt/ElementwiseKernels.def"
    return buildElementwiseMath(kernel, spec->id, in, out, result);
  case KernelId::BroadcastTo:
  case KernelId::Cast:
  case KernelId::Copy:
  case KernelId::Increment:
    return buildElementwise(kernel, spec->id, in, out, result);
  }
  return Status::error("unknown kernel"); // unreachable: the switch names every id
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
