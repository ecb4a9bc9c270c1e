//===- KernelRegistry.cpp - every kernel a plan may name ------------------===//

#include "amprt/KernelRegistry.h"

namespace amprt {

namespace {

constexpr const char *kMatmulAttrs = "transpose_lhs transpose_rhs bias relu";
constexpr const char *kAvgPoolAttrs = "kernel strides pads ceil_mode count_include_pad";
constexpr const char *kConvAttrs = "strides pads dilations group"; // lists but group

// In KernelId order (a unit test checks it).
constexpr KernelSpec kKernels[] = {
#define AMPRT_ELEMENTWISE(Id, name, arity, attribute, math)                                  \
  {KernelId::Id, name, arity, arity, 1, 1, attribute},
#include "amprt/ElementwiseKernels.def"
    {KernelId::Matmul, "matmul", 2, 3, 1, 1, kMatmulAttrs}, // a third input: the bias
    {KernelId::Conv, "conv", 2, 2, 1, 1, kConvAttrs},
    {KernelId::ConvBackwardData, "conv_backward_data", 2, 2, 1, 1, kConvAttrs},
    {KernelId::ConvBackwardFilter, "conv_backward_filter", 2, 2, 1, 1, kConvAttrs},
    // The second result: where each maximum came from (int64, flat per plane).
    {KernelId::MaxPool, "max_pool", 1, 1, 2, 2, "kernel strides pads dilations ceil_mode"},
    {KernelId::MaxPoolGrad, "max_pool_grad", 2, 2, 1, 1, ""},
    {KernelId::AvgPool, "avg_pool", 1, 1, 1, 1, kAvgPoolAttrs},
    {KernelId::AvgPoolGrad, "avg_pool_grad", 1, 1, 1, 1, kAvgPoolAttrs},
    // (input, step counter) -> result; the mask is KernelMath.h's dropoutKeeps.
    {KernelId::Dropout, "dropout", 2, 2, 1, 1, "ratio seed"},
    {KernelId::Pad, "pad", 1, 1, 1, 1, "pads value"},
    {KernelId::Slice, "slice", 1, 1, 1, 1, "offsets"}, // sizes: the result's shape
    {KernelId::Concat, "concat", 1, -1, 1, 1, "axis"},
    {KernelId::Transpose, "transpose", 1, 1, 1, 1, "permutation"},
    {KernelId::Gather, "gather", 2, 2, 1, 1, "axis"},
    {KernelId::GatherGrad, "gather_grad", 2, 2, 1, 1, "axis"},
    // (input, scale, bias, running mean, running var) -> (result, new running
    // mean, new running var, batch mean, batch var).
    {KernelId::BatchNorm, "batch_norm", 5, 5, 5, 5, "epsilon momentum"},
    {KernelId::BatchNormInference, "batch_norm_inference", 5, 5, 1, 1, "epsilon"},
    // (grad, input, scale, mean, var) -> (input, scale, bias gradients).
    {KernelId::BatchNormGrad, "batch_norm_grad", 5, 5, 3, 3, "epsilon use_global_stats"},
    {KernelId::LayerNorm, "layer_norm", 3, 3, 3, 3, "axis epsilon"},
    {KernelId::LayerNormGrad, "layer_norm_grad", 5, 5, 3, 3, "axis"},
    {KernelId::Softmax, "softmax", 1, 1, 1, 1, "axis"},
    {KernelId::LogSoftmax, "log_softmax", 1, 1, 1, 1, "axis"},
    {KernelId::ReduceSum, "reduce_sum", 1, 1, 1, 1, ""}, // axes: the kernel's own field
    {KernelId::ReduceMax, "reduce_max", 1, 1, 1, 1, ""}, // the same
    {KernelId::BroadcastTo, "broadcast_to", 1, 1, 1, 1, ""},
    {KernelId::Cast, "cast", 1, 1, 1, 1, ""},
    {KernelId::Copy, "copy", 1, 1, 1, 1, ""},
    {KernelId::SoftmaxCrossEntropy, "softmax_cross_entropy", 2, 2, 1, 1,
     "mean has_ignore_index ignore_index"},
    {KernelId::SoftmaxCrossEntropyGrad, "softmax_cross_entropy_grad", 3, 3, 1, 1,
     "mean has_ignore_index ignore_index"},
    // Updates: an optional skip flag; an extra result is the low-precision copy.
    {KernelId::AdamWUpdate, "adamw_update", 5, 6, 3, 4, "lr beta1 beta2 eps weight_decay huggingface"},
    {KernelId::SgdUpdate, "sgd_update", 3, 4, 2, 3, "lr momentum weight_decay nesterov"},
    {KernelId::Increment, "increment", 1, 2, 1, 1, ""},
    {KernelId::Unscale, "unscale", 2, 2, 1, 1, ""},
    {KernelId::FoundNonFinite, "found_nonfinite", 1, -1, 1, 1, ""},
    {KernelId::GlobalNorm, "global_norm", 1, -1, 1, 1, ""},
    // found_nonfinite and global_norm in one pass.
    {KernelId::GradientStats, "gradient_stats", 1, -1, 2, 2, ""},
    {KernelId::ClipCoefficient, "clip_coefficient", 1, 1, 1, 1, "max_norm"},
    {KernelId::UpdateLossScale, "update_loss_scale", 3, 4, 2, 2,
     "growth_factor backoff_factor growth_interval"},
    {KernelId::AccumulationStep, "accumulation_step", 1, 1, 2, 2, "micro_batches"},
    {KernelId::ZeroIf, "zero_if", 2, 2, 1, 1, ""},
    // Data-parallel: the mean (or, with max, the maximum) over the ranks of
    // each input, written to the output of the same index.
    {KernelId::AllReduce, "all_reduce", 1, -1, 1, -1, "world_size max"},
    // Limits checked with the chain (PlanFormat.h's fused::kMax*).
    {KernelId::FusedElementwise, "fused_elementwise", 1, -1, 1, 4, ""},
};

} // namespace

const KernelSpec *kernelTable() { return kKernels; }
const size_t kernelCount = sizeof(kKernels) / sizeof(kKernels[0]);

bool readsAttribute(const KernelSpec &spec, const std::string &name) {
  // NAME.i is element i of the list attribute NAME.
  std::string base = name;
  size_t dot = name.rfind('.');
  if (dot != std::string::npos && dot + 1 < name.size() &&
      name.find_first_not_of("0123456789", dot + 1) == std::string::npos)
    base = name.substr(0, dot);
  return (" " + std::string(spec.attributes) + " ").find(" " + base + " ") != std::string::npos;
}

const KernelSpec *findKernel(const std::string &op) {
  for (const KernelSpec &spec : kKernels)
    if (op == spec.op)
      return &spec;
  return nullptr;
}

Status checkKernel(const proto::Kernel &kernel, size_t numInputs, size_t numOutputs,
                   const KernelSpec **spec) {
  const KernelSpec *found = findKernel(kernel.op());
  if (!found)
    return Status::error("unknown kernel");
  int inputs = static_cast<int>(numInputs), outputs = static_cast<int>(numOutputs);
  if (inputs < found->minInputs || (found->maxInputs >= 0 && inputs > found->maxInputs) ||
      outputs < found->minOutputs || (found->maxOutputs >= 0 && outputs > found->maxOutputs)) {
    auto range = [](int low, int high) {
      return high < 0     ? std::to_string(low) + " or more"
             : low == high ? std::to_string(low)
                           : std::to_string(low) + " to " + std::to_string(high);
    };
    return Status::error("expects " + range(found->minInputs, found->maxInputs) +
                         " inputs and " + range(found->minOutputs, found->maxOutputs) +
                         " outputs, got " + std::to_string(inputs) + " and " +
                         std::to_string(outputs));
  }
  for (const auto &[name, value] : kernel.attrs())
    if (!readsAttribute(*found, name))
      return Status::error("unknown attribute '" + name + "'");
  *spec = found;
  return Status::ok();
}

} // namespace amprt
