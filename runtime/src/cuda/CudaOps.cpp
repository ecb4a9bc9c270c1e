//===- CudaOps.cpp - plan kernels to CUDA launches ------------------------===//
//
// Checks each plan kernel against its tensors (as the CPU backend does) and
// binds it to a launch of CudaKernels.cu. Every elementwise op, fused or
// not, runs the fused-chain kernel; GEMMs go to CudaMatmul.cpp.
//
//===----------------------------------------------------------------------===//

#include "CudaCnnLaunch.h"
#include "CudaDevice.h"
#include "KernelChecks.h"

#include <algorithm>
#include <functional>
#include <set>

namespace amprt::cuda {
namespace {

Status requireF32(std::initializer_list<TensorRef> tensors, const char *what) {
  for (const auto &t : tensors)
    if (t.dtype != DType::F32)
      return Status::error(std::string(what) + " runs in f32, got " + dtypeName(t.dtype));
  return Status::ok();
}

/// A kernel given as a closure that enqueues its launches.
class LaunchKernel : public CudaKernel {
public:
  explicit LaunchKernel(std::function<cudaError_t()> launch, const char *what)
      : launch(std::move(launch)), what(what) {}
  Status run() override { return check(launch(), what); }

private:
  std::function<cudaError_t()> launch;
  const char *what;
};


//===----------------------------------------------------------------------===//
// Kernels the graph schedule can merge
//===----------------------------------------------------------------------===//

class UnscaleKernel : public CudaKernel {
public:
  UnscaleKernel(UnscaleArgs args, cudaStream_t stream) : args(args), stream(stream) {}
  Status run() override { return check(launchUnscale(args, stream), "unscale"); }
  UnscaleArgs args;
  cudaStream_t stream;
};

class GradientStatsKernel : public CudaKernel {
public:
  GradientStatsArgs args{};
  std::vector<TensorSlot> slots;
  DeviceScratch table, unscaledTable, partials;
  cudaStream_t stream = nullptr;
  Status run() override { return check(launchGradientStats(args, stream), "gradient stats"); }
};

class UpdateKernel : public CudaKernel {
public:
  bool adamw = true;
  AdamWArgs adam{};
  SgdArgs sgd{};
  std::vector<UpdateSlot> slots;
  DeviceScratch table;
  cudaStream_t stream = nullptr;

  Status finish() {
    AMPRT_RETURN_IF_ERROR(table.upload(slots.data(), slots.size() * sizeof(UpdateSlot)));
    int64_t maxCount = 0;
    for (const auto &slot : slots)
      maxCount = std::max(maxCount, slot.count);
    adam.slots = sgd.slots = table.as<UpdateSlot>();
    adam.numSlots = sgd.numSlots = static_cast<int>(slots.size());
    adam.maxCount = sgd.maxCount = maxCount;
    return Status::ok();
  }
  Status run() override {
    return adamw ? check(launchAdamW(adam, stream), "adamw_update")
                 : check(launchSgd(sgd, stream), "sgd_update");
  }
  /// Same hyperparameters, step counter and skip flag: one launch can do both.
  bool mergeableWith(const UpdateKernel &o) const {
    if (adamw != o.adamw)
      return false;
    if (adamw)
      return adam.lr == o.adam.lr && adam.beta1 == o.adam.beta1 && adam.beta2 == o.adam.beta2 &&
             adam.eps == o.adam.eps && adam.weightDecay == o.adam.weightDecay &&
             adam.huggingface == o.adam.huggingface &&
             adam.step == o.adam.step && adam.skip == o.adam.skip;
    return sgd.lr == o.sgd.lr && sgd.momentum == o.sgd.momentum &&
           sgd.weightDecay == o.sgd.weightDecay && sgd.nesterov == o.sgd.nesterov &&
           sgd.skip == o.sgd.skip;
  }
};

//===----------------------------------------------------------------------===//
// Builders
//===----------------------------------------------------------------------===//

/// Any elementwise op as a fused chain of one step.
Status buildElementwise(const proto::Kernel &kernel, KernelId id, const std::vector<TensorRef> &in,
                        const std::vector<TensorRef> &out, CudaContext &context,
                        std::unique_ptr<Kernel> *result) {
  proto::Kernel chain;
  const proto::Kernel *source = &kernel;
  if (id != KernelId::FusedElementwise) {
    AMPRT_RETURN_IF_ERROR(fused::singleStepChain(kernel, in, out, &chain));
    source = &chain;
  }
  FusedArgs args{};
  AMPRT_RETURN_IF_ERROR(fused::describe(*source, in, out, &args.program));
  for (size_t i = 0; i < in.size(); ++i)
    args.inputs[i] = in[i].data;
  for (size_t o = 0; o < out.size(); ++o)
    args.outputs[o] = out[o].data;
  cudaStream_t stream = context.stream;
  *result = launcher([=] { return launchFused(args, stream); }, "elementwise");
  return Status::ok();
}

/// A cast of int64, int32 or bool values (token ids, masks) to a float
/// type, or of a float tensor to bool.
Status buildIntegerCast(const TensorRef &in, const TensorRef &out, CudaContext &context,
                        std::unique_ptr<Kernel> *result) {
  const void *src = in.data;
  void *dst = out.data;
  int64_t count = out.size();
  cudaStream_t stream = context.stream;
  Storage type;
  if (in.shape == out.shape && out.dtype == DType::Bool &&
      fused::storageOf(in.dtype, &type).isOk()) {
    auto *flags = static_cast<uint8_t *>(dst);
    *result = launcher([=] { return launchFloatToBool(src, type, flags, count, stream); },
                       "cast");
    return Status::ok();
  }
  if (in.shape != out.shape || isFloat(in.dtype) || !fused::storageOf(out.dtype, &type).isOk())
    return Status::error("casts integers or bools to a float tensor of their shape, or a float "
                         "tensor to bool");
  IntegerKind kind = in.dtype == DType::I32    ? IntegerKind::I32
                     : in.dtype == DType::Bool ? IntegerKind::Bool
                                               : IntegerKind::I64;
  *result = launcher(
      [=] { return launchIntegersToFloat(src, kind, dst, type, count, stream); }, "cast");
  return Status::ok();
}

Status buildReduction(const proto::Kernel &kernel, KernelId id, const TensorRef &in,
                      const TensorRef &out, CudaContext &context,
                      std::unique_ptr<Kernel> *result) {
  const char *name = id == KernelId::ReduceMax ? "reduce_max" : "reduce_sum";
  AMPRT_RETURN_IF_ERROR(requireF32({out}, name));
  ReduceArgs args{};
  if (!fused::storageOf(in.dtype, &args.inType).isOk())
    return Status::error(std::string(name) + " reads a float tensor, got " +
                         dtypeName(in.dtype));
  std::vector<int64_t> axes(kernel.axes().begin(), kernel.axes().end());
  std::sort(axes.begin(), axes.end());
  axes.erase(std::unique(axes.begin(), axes.end()), axes.end());
  int64_t rank = static_cast<int64_t>(in.shape.size());
  if (rank > fused::kMaxRank)
    return Status::error("rank above " + std::to_string(fused::kMaxRank));
  args.in = in.data;
  args.out = out.f32();
  args.outer = args.reduced = args.inner = 1;
  args.max = id == KernelId::ReduceMax;
  args.rank = static_cast<int>(rank);
  for (size_t i = 0; i < axes.size(); ++i) {
    if (axes[i] < 0 || axes[i] >= rank)
      return Status::error("axis " + std::to_string(axes[i]) + " is out of range");
    args.general |= i > 0 && axes[i] != axes[i - 1] + 1;
    args.isReduced[axes[i]] = true;
  }
  int64_t first = axes.empty() ? rank : axes.front(), last = axes.empty() ? rank : axes.back() + 1;
  for (int64_t d = 0; d < rank; ++d) {
    args.shape[d] = in.shape[d];
    if (args.general) // outer * inner: the outputs; reduced: the summed elements
      (args.isReduced[d] ? args.reduced : args.outer) *= in.shape[d];
    else
      (d < first ? args.outer : d < last ? args.reduced : args.inner) *= in.shape[d];
  }
  if (args.outer * args.inner != out.size())
    return Status::error("output size does not match the reduction");
  cudaStream_t stream = context.stream;
  *result = launcher([=] { return launchReduce(args, stream); }, name);
  return Status::ok();
}

Status buildCrossEntropy(const proto::Kernel &kernel, KernelId id, const std::vector<TensorRef> &in,
                         const TensorRef &out, CudaContext &context,
                         std::unique_ptr<Kernel> *result) {
  bool grad = id == KernelId::SoftmaxCrossEntropyGrad;
  const TensorRef &logits = in[grad ? 1 : 0], &labels = in[grad ? 2 : 1];
  if (logits.shape.size() != 2 || labels.shape.size() != 1 ||
      labels.shape[0] != logits.shape[0] || labels.dtype != DType::I64 ||
      logits.dtype != DType::F32 || out.dtype != DType::F32 || logits.shape[1] < 1 ||
      (grad ? out.shape != logits.shape : out.size() != 1))
    return Status::error("expects [N, C] f32 logits, [N] int64 labels and an f32 result");
  if (grad)
    AMPRT_RETURN_IF_ERROR(requireScalar(in[0], DType::F32, "the incoming gradient"));
  auto scratch = std::make_shared<DeviceScratch>();
  int64_t rows = logits.shape[0];
  AMPRT_RETURN_IF_ERROR(scratch->allocate((2 * rows + 1) * sizeof(float)));
  CrossEntropyArgs args{};
  args.logits = logits.f32();
  args.labels = labels.i64();
  args.rows = rows;
  args.classes = logits.shape[1];
  args.mean = attr(kernel, "mean") != 0;
  args.hasIgnore = attr(kernel, "has_ignore_index") != 0;
  args.ignore = static_cast<int64_t>(attr(kernel, "ignore_index"));
  args.scratch = scratch->as<float>();
  args.seed = grad ? in[0].f32() : nullptr;
  args.out = out.f32();
  args.error = context.errorSink(kernel, "a label is outside [0, " +
                                             std::to_string(args.classes) + ")");
  cudaStream_t stream = context.stream;
  *result = launcher(
      [=] {
        (void)scratch; // owned by the launch
        return grad ? launchCrossEntropyGrad(args, stream) : launchCrossEntropy(args, stream);
      },
      "softmax cross-entropy");
  return Status::ok();
}

Status buildGradientStats(const proto::Kernel &kernel, KernelId id,
                          const std::vector<TensorRef> &in, const std::vector<TensorRef> &out,
                          CudaContext &context, std::unique_ptr<Kernel> *result) {
  for (const auto &o : out)
    AMPRT_RETURN_IF_ERROR(requireScalar(o, DType::F32, "the result"));
  auto stats = std::make_unique<GradientStatsKernel>();
  for (const auto &t : in) {
    TensorSlot slot{t.data, t.size(), Storage::F32};
    AMPRT_RETURN_IF_ERROR(fused::storageOf(t.dtype, &slot.storage));
    stats->slots.push_back(slot);
  }
  AMPRT_RETURN_IF_ERROR(stats->table.upload(stats->slots.data(),
                                            stats->slots.size() * sizeof(TensorSlot)));
  AMPRT_RETURN_IF_ERROR(stats->partials.allocate(2 * kStatsBlocks * sizeof(double)));
  stats->args.slots = stats->table.as<TensorSlot>();
  stats->args.numSlots = static_cast<int>(in.size());
  stats->args.partials = stats->partials.as<double>();
  stats->args.found = id == KernelId::GlobalNorm ? nullptr : out[0].f32();
  stats->args.norm = id == KernelId::GlobalNorm      ? out[0].f32()
                     : id == KernelId::GradientStats ? out[1].f32()
                                              : nullptr;
  stats->stream = context.stream;
  *result = std::move(stats);
  return Status::ok();
}

Status buildUpdate(const proto::Kernel &kernel, KernelId id, const std::vector<TensorRef> &in,
                   const std::vector<TensorRef> &out, CudaContext &context,
                   std::unique_ptr<Kernel> *result) {
  bool adamw = id == KernelId::AdamWUpdate;
  size_t states = adamw ? 2 : 1, lowIndex = states + 1;
  int64_t count = in[0].size();
  for (size_t i = 0; i < 2 + states; ++i)
    if (in[i].size() != count || in[i].dtype != DType::F32)
      return Status::error("parameter, gradient and optimizer state must be f32 of one size");
  for (size_t o = 0; o < 1 + states; ++o)
    if (out[o].size() != count || out[o].dtype != DType::F32)
      return Status::error("outputs must be f32 of the parameter's size");
  auto update = std::make_unique<UpdateKernel>();
  update->adamw = adamw;
  update->stream = context.stream;
  UpdateSlot slot{};
  slot.param = in[0].f32();
  slot.grad = in[1].f32();
  slot.state0 = in[2].f32();
  slot.state1 = adamw ? in[3].f32() : nullptr;
  slot.paramOut = out[0].f32();
  slot.state0Out = out[1].f32();
  slot.state1Out = adamw ? out[2].f32() : nullptr;
  slot.count = count;
  if (out.size() > lowIndex) {
    const TensorRef &low = out[lowIndex];
    if (low.size() != count || (low.dtype != DType::BF16 && low.dtype != DType::F16))
      return Status::error("the low-precision weight copy must be bf16 or f16 of the "
                           "parameter's size");
    slot.low = low.data;
    slot.lowType = low.dtype == DType::BF16 ? Storage::BF16 : Storage::F16;
  }
  update->slots.push_back(slot);
  if (adamw) {
    AMPRT_RETURN_IF_ERROR(requireScalar(in[4], DType::I64, "the step counter"));
    AMPRT_RETURN_IF_ERROR(skipFlag(in, 5, &update->adam.skip));
    update->adam.step = in[4].i64();
    update->adam.lr = attr(kernel, "lr");
    update->adam.beta1 = attr(kernel, "beta1");
    update->adam.beta2 = attr(kernel, "beta2");
    update->adam.eps = attr(kernel, "eps");
    update->adam.weightDecay = attr(kernel, "weight_decay");
    update->adam.huggingface = attr(kernel, "huggingface") != 0;
  } else {
    AMPRT_RETURN_IF_ERROR(skipFlag(in, 3, &update->sgd.skip));
    update->sgd.lr = static_cast<float>(attr(kernel, "lr"));
    update->sgd.momentum = static_cast<float>(attr(kernel, "momentum"));
    update->sgd.weightDecay = static_cast<float>(attr(kernel, "weight_decay"));
    update->sgd.nesterov = attr(kernel, "nesterov") != 0;
  }
  AMPRT_RETURN_IF_ERROR(update->finish());
  *result = std::move(update);
  return Status::ok();
}

Status buildScalar(const proto::Kernel &kernel, KernelId id, const std::vector<TensorRef> &in,
                   const std::vector<TensorRef> &out, CudaContext &context,
                   std::unique_ptr<Kernel> *result) {
  AMPRT_RETURN_IF_ERROR(checkScalarKernel(kernel, id, in, out));
  ScalarArgs args{};
  cudaStream_t stream = context.stream;
  if (id == KernelId::Increment) {
    AMPRT_RETURN_IF_ERROR(skipFlag(in, 1, &args.skip));
    args.i0 = in[0].i64();
    args.iOut0 = out[0].i64();
    *result = launcher([=] { return launchIncrement(args, stream); }, "increment");
    return Status::ok();
  }
  if (id == KernelId::UpdateLossScale) {
    AMPRT_RETURN_IF_ERROR(skipFlag(in, 3, &args.skip));
    args.f0 = in[0].f32();
    args.i0 = in[1].i64();
    args.f1 = in[2].f32();
    args.fOut0 = out[0].f32();
    args.iOut0 = out[1].i64();
    args.a = attr(kernel, "growth_factor");
    args.b = attr(kernel, "backoff_factor");
    args.n = static_cast<int64_t>(attr(kernel, "growth_interval"));
    *result = launcher([=] { return launchUpdateLossScale(args, stream); }, "update_loss_scale");
    return Status::ok();
  }
  if (id == KernelId::AccumulationStep) {
    args.n = static_cast<int64_t>(attr(kernel, "micro_batches"));
    args.i0 = in[0].i64();
    args.iOut0 = out[0].i64();
    args.fOut0 = out[1].f32();
    *result = launcher([=] { return launchAccumulationStep(args, stream); }, "accumulation_step");
    return Status::ok();
  }
  // clip_coefficient
  args.f0 = in[0].f32();
  args.fOut0 = out[0].f32();
  args.a = attr(kernel, "max_norm");
  *result = launcher([=] { return launchClipCoefficient(args, stream); }, "clip_coefficient");
  return Status::ok();
}

/// The kernel alone (buildCudaKernel adds its launch group).
Status buildUngrouped(const proto::Kernel &kernel, const std::vector<TensorRef> &in,
                      const std::vector<TensorRef> &out, CudaContext &context,
                      std::unique_ptr<Kernel> *result) {
  const KernelSpec *spec;
  AMPRT_RETURN_IF_ERROR(checkKernel(kernel, in.size(), out.size(), &spec));
  cudaStream_t stream = context.stream;
  switch (spec->id) {
  case KernelId::Matmul:
    return buildCudaMatmul(kernel, in, out[0], context, result);
  case KernelId::Conv:
  case KernelId::ConvBackwardData:
  case KernelId::ConvBackwardFilter:
    return buildCudaConvolution(kernel, spec->id, in, out[0], context, result);
  case KernelId::MaxPool:
  case KernelId::MaxPoolGrad:
  case KernelId::AvgPool:
  case KernelId::AvgPoolGrad:
  case KernelId::Dropout:
  case KernelId::Pad:
  case KernelId::Slice:
  case KernelId::Concat:
  case KernelId::Transpose:
  case KernelId::Gather:
  case KernelId::GatherGrad:
  case KernelId::BatchNorm:
  case KernelId::BatchNormInference:
  case KernelId::BatchNormGrad:
  case KernelId::LayerNorm:
  case KernelId::LayerNormGrad:
    return buildCudaCnnKernel(kernel, spec->id, in, out, context, result);
  case KernelId::ReduceSum:
  case KernelId::ReduceMax:
    return buildReduction(kernel, spec->id, in[0], out[0], context, result);
  case KernelId::SoftmaxCrossEntropy:
  case KernelId::SoftmaxCrossEntropyGrad:
    return buildCrossEntropy(kernel, spec->id, in, out[0], context, result);
  case KernelId::FoundNonFinite:
  case KernelId::GlobalNorm:
  case KernelId::GradientStats:
    return buildGradientStats(kernel, spec->id, in, out, context, result);
  case KernelId::AdamWUpdate:
  case KernelId::SgdUpdate:
    return buildUpdate(kernel, spec->id, in, out, context, result);
  case KernelId::Increment:
  case KernelId::UpdateLossScale:
  case KernelId::AccumulationStep:
  case KernelId::ClipCoefficient:
    return buildScalar(kernel, spec->id, in, out, context, result);
  case KernelId::Softmax:
  case KernelId::LogSoftmax: {
    SoftmaxShape shape;
    AMPRT_RETURN_IF_ERROR(checkSoftmax(kernel, in[0], out[0], &shape));
    SoftmaxArgs args{in[0].f32(), out[0].f32(), shape.outer * shape.inner, shape.width,
                     shape.inner, spec->id == KernelId::LogSoftmax};
    *result = launcher([=] { return launchSoftmax(args, stream); }, "softmax");
    return Status::ok();
  }
  case KernelId::Unscale: {
    AMPRT_RETURN_IF_ERROR(requireScalar(in[1], DType::F32, "the scale"));
    AMPRT_RETURN_IF_ERROR(requireF32({out[0]}, "unscale's result"));
    if (in[0].size() != out[0].size())
      return Status::error("gradient and result differ in size");
    UnscaleArgs args{in[0].data, Storage::F32, in[1].f32(), out[0].f32(), out[0].size()};
    AMPRT_RETURN_IF_ERROR(fused::storageOf(in[0].dtype, &args.gradType));
    *result = std::make_unique<UnscaleKernel>(args, stream);
    return Status::ok();
  }
  case KernelId::ZeroIf: {
    AMPRT_RETURN_IF_ERROR(requireF32({in[0], out[0]}, "zero_if"));
    AMPRT_RETURN_IF_ERROR(requireScalar(in[1], DType::F32, "the flag"));
    if (in[0].size() != out[0].size())
      return Status::error("input and output differ in size");
    const float *x = in[0].f32(), *flag = in[1].f32();
    float *y = out[0].f32();
    int64_t n = out[0].size();
    *result = launcher([=] { return launchZeroIf(x, flag, y, n, stream); }, "zero_if");
    return Status::ok();
  }
  case KernelId::AllReduce:
    return buildCudaAllReduce(kernel, in, out, context, result);
  case KernelId::Copy: {
    if (in[0].bytes() != out[0].bytes() || in[0].dtype != out[0].dtype)
      return Status::error("input and output differ");
    const void *src = in[0].data;
    void *dst = out[0].data;
    size_t bytes = out[0].bytes();
    *result = launcher(
        [=] {
          return src == dst ? cudaSuccess
                            : cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, stream);
        },
        "copy");
    return Status::ok();
  }
  case KernelId::Cast:
    if (!isFloat(in[0].dtype) || !isFloat(out[0].dtype))
      return buildIntegerCast(in[0], out[0], context, result);
    return buildElementwise(kernel, spec->id, in, out, context, result);
#define AMPRT_ELEMENTWISE(Id, name, arity, attribute, math) case KernelId::Id:
#include "amprt/ElementwiseKernels.def"
  case KernelId::BroadcastTo:
  case KernelId::FusedElementwise:
    return buildElementwise(kernel, spec->id, in, out, context, result);
  }
  return Status::error("unknown kernel"); // unreachable: the switch names every id
}

} // namespace

std::unique_ptr<Kernel> launcher(std::function<cudaError_t()> launch, const char *what) {
  return std::make_unique<LaunchKernel>(std::move(launch), what);
}

Status buildCudaKernel(const proto::Kernel &kernel, const std::vector<TensorRef> &in,
                       const std::vector<TensorRef> &out, CudaContext &context,
                       std::unique_ptr<Kernel> *result) {
  AMPRT_RETURN_IF_ERROR(buildUngrouped(kernel, in, out, context, result));
  if (auto *built = dynamic_cast<CudaKernel *>(result->get()))
    built->launchGroup = kernel.launch_group();
  return Status::ok();
}

Status scheduleForGraph(const std::vector<std::unique_ptr<Kernel>> &kernels,
                        CudaContext &context, GraphSchedule *schedule) {
  for (size_t k = 0; k < kernels.size();) {
    // The plan's launch group starting here, if any.
    auto *head = dynamic_cast<CudaKernel *>(kernels[k].get());
    int32_t group = head ? head->launchGroup : 0;
    auto inGroup = [&](size_t i) {
      auto *kernel = dynamic_cast<CudaKernel *>(kernels[i].get());
      return group != 0 && kernel && kernel->launchGroup == group;
    };
    // Unscales whose results are exactly what the next check reads: one pass
    // (the plan groups them; the checks below only confirm it).
    size_t run = k;
    std::set<const void *> unscaled;
    const float *scale = nullptr;
    while (run < kernels.size() && inGroup(run)) {
      auto *unscale = dynamic_cast<UnscaleKernel *>(kernels[run].get());
      if (!unscale || (scale && unscale->args.scale != scale))
        break;
      scale = unscale->args.scale;
      unscaled.insert(unscale->args.out);
      ++run;
    }
    auto *stats = run > k && run < kernels.size() && inGroup(run)
                      ? dynamic_cast<GradientStatsKernel *>(kernels[run].get())
                      : nullptr;
    if (stats && stats->slots.size() == run - k &&
        std::all_of(stats->slots.begin(), stats->slots.end(),
                    [&](const TensorSlot &s) { return unscaled.count(s.data) == 1; })) {
      auto fusedStats = std::make_unique<GradientStatsKernel>();
      fusedStats->stream = stats->stream;
      fusedStats->args = stats->args;
      // Sources: the scaled gradients, in the order of the check's slots.
      std::vector<TensorSlot> sources, targets = stats->slots;
      for (const TensorSlot &target : targets)
        for (size_t u = k; u < run; ++u) {
          auto *unscale = static_cast<UnscaleKernel *>(kernels[u].get());
          if (unscale->args.out == target.data)
            sources.push_back({unscale->args.grad, target.count, unscale->args.gradType});
        }
      AMPRT_RETURN_IF_ERROR(
          fusedStats->table.upload(sources.data(), sources.size() * sizeof(TensorSlot)));
      AMPRT_RETURN_IF_ERROR(fusedStats->partials.allocate(2 * kStatsBlocks * sizeof(double)));
      AMPRT_RETURN_IF_ERROR(fusedStats->unscaledTable.upload(
          targets.data(), targets.size() * sizeof(TensorSlot)));
      fusedStats->args.slots = fusedStats->table.as<TensorSlot>();
      fusedStats->args.unscaled = fusedStats->unscaledTable.as<TensorSlot>();
      fusedStats->args.scale = scale;
      fusedStats->args.partials = fusedStats->partials.as<double>();
      schedule->order.push_back(fusedStats.get());
      schedule->merged.push_back(std::move(fusedStats));
      k = run + 1;
      continue;
    }
    // A group of updates with the same hyperparameters: one multi-tensor launch.
    auto *update = dynamic_cast<UpdateKernel *>(kernels[k].get());
    size_t end = k + 1;
    while (update && end < kernels.size() && inGroup(end)) {
      auto *next = dynamic_cast<UpdateKernel *>(kernels[end].get());
      if (!next || !update->mergeableWith(*next))
        break;
      ++end;
    }
    if (end - k < 2) {
      schedule->order.push_back(kernels[k].get());
      ++k;
      continue;
    }
    auto merged = std::make_unique<UpdateKernel>();
    merged->adamw = update->adamw;
    merged->adam = update->adam;
    merged->sgd = update->sgd;
    merged->stream = update->stream;
    for (size_t u = k; u < end; ++u)
      for (const auto &slot : static_cast<UpdateKernel *>(kernels[u].get())->slots)
        merged->slots.push_back(slot);
    AMPRT_RETURN_IF_ERROR(merged->finish());
    schedule->order.push_back(merged.get());
    schedule->merged.push_back(std::move(merged));
    k = end;
  }
  return Status::ok();
}

} // namespace amprt::cuda
