//===- LossScaling.cpp - loss scaling, non-finite skip, clipping ----------===//
//
// Rewrites @train_step (built by amp-build-train-step) into
//   scale = state "loss_scale"          (dynamic/static; 1 with mode=none)
//   backward seeded with scale           (instead of 1)
//   g_i  = unscale(grad_i, scale)        (FP32, for every parameter)
//   bad  = found_nonfinite(g_1 .. g_n)   (one fused check, when a scale,
//   norm = global_norm(g_1 .. g_n)        the skip or clipping needs it)
//   bad, norm = all_reduce max (...)      (data-parallel steps only)
//   g_i *= clip_coefficient(norm)        (clip=)
//   update_i(param_i, g_i, ... skip(bad))
//   scale', tracker' = update_loss_scale(scale, tracker, bad)   (dynamic)
// so unscale -> clip -> update holds by construction. With accumulate=K the
// unscaled gradients are summed into FP32 state buffers and only every K-th
// step applies their mean (the other steps skip the update and the scale
// update) and resets the buffers.
//
//===----------------------------------------------------------------------===//

#include "amp/Transforms/Passes.h"

#include "mlir/IR/Builders.h"

namespace mlir::amp {
#define GEN_PASS_DEF_AMPLOSSSCALING
#include "amp/Transforms/Passes.h.inc"
} // namespace mlir::amp

using namespace mlir;
using namespace mlir::amp;

namespace {

struct LossScalingPass : public amp::impl::AmpLossScalingBase<LossScalingPass> {
  using AmpLossScalingBase::AmpLossScalingBase;

  void runOnOperation() override {
    ModuleOp module = getOperation();
    if (mode != "dynamic" && mode != "static" && mode != "none") {
      mlir::emitError(module.getLoc())
          << "amp-loss-scaling: mode must be dynamic, static or none, not '" << mode << "'";
      return signalPassFailure();
    }
    if (initScale <= 0 || clip < 0 || accumulate < 1) {
      mlir::emitError(module.getLoc()) << "amp-loss-scaling: init must be positive, "
                                          "clip non-negative and accumulate at least 1";
      return signalPassFailure();
    }
    auto step = module.lookupSymbol<func::FuncOp>("train_step");
    if (!step) {
      mlir::emitError(module.getLoc())
          << "amp-loss-scaling: no func.func @train_step (run amp-build-train-step first)";
      return signalPassFailure();
    }
    if (failed(rewrite(step)))
      return signalPassFailure();
  }

  LogicalResult rewrite(func::FuncOp func);
};

/// Appends an argument with a role (and optional initial value) to `func`.
BlockArgument addStateArgument(func::FuncOp func, Type type, StringRef name,
                               Attribute init) {
  unsigned index = func.getNumArguments();
  Builder b(func.getContext());
  (void)func.insertArgument(index, type, roleAttrs(b, role::kState, name, init), func.getLoc());
  return func.getArgument(index);
}

/// A skipped step of a step with its own optimizer arithmetic: every f32
/// parameter and state result is its argument again (a select, so that a
/// NaN update is not kept). Integer state (a dropout counter) advances, as
/// dropout's does in any skipped step.
LogicalResult keepStateOnSkip(func::FuncOp func, func::ReturnOp ret, Value skip, OpBuilder &b,
                              Location loc) {
  b.setInsertionPoint(ret);
  auto scalarF32 = RankedTensorType::get({}, b.getF32Type());
  Value one = ConstantOp::create(b, loc, DenseElementsAttr::get(scalarF32, 1.0f));
  Value apply = SubOp::create(b, loc, scalarF32, one, skip);
  llvm::StringMap<BlockArgument> args;
  for (BlockArgument arg : func.getArguments())
    if (auto role = getRole(func.getArgAttrDict(arg.getArgNumber())))
      args[(role->first + ":" + role->second).str()] = arg;
  for (unsigned i = 0; i < ret.getNumOperands(); ++i) {
    auto role = getRole(func.getResultAttrDict(i));
    if (!role || (role->first != role::kParam && role->first != role::kState))
      continue;
    BlockArgument old = args.lookup((role->first + ":" + role->second).str());
    Value updated = ret.getOperand(i);
    if (!cast<RankedTensorType>(updated.getType()).getElementType().isF32())
      continue;
    if (!old || old.getType() != updated.getType())
      return func.emitError() << "amp-loss-scaling: cannot keep '" << role->second
                              << "' on a skipped step (no state argument of its name and type)";
    Type type = updated.getType();
    Value kept = AddOp::create(b, loc, type, ZeroIfOp::create(b, loc, type, updated, skip),
                               ZeroIfOp::create(b, loc, type, old, apply));
    ret.setOperand(i, kept);
  }
  return success();
}

LogicalResult LossScalingPass::rewrite(func::FuncOp func) {
  Block &body = func.getBody().front();
  auto ret = cast<func::ReturnOp>(body.getTerminator());
  OpBuilder b(ret);
  MLIRContext *context = func.getContext();
  auto scalarF32 = RankedTensorType::get({}, b.getF32Type());
  auto scalarI64 = RankedTensorType::get({}, b.getI64Type());
  Location loc = NameLoc::get(b.getStringAttr("loss_scaling"), func.getLoc());

  // The backward seed becomes the scale.
  ConstantOp seed;
  body.walk([&](ConstantOp op) {
    if (op->hasAttr(kLossSeedAttr))
      seed = op;
  });
  if (!seed)
    return func.emitError("amp-loss-scaling: no backward seed (amp.loss_seed) in @train_step");

  // Optimizer updates and their gradients, in program order.
  SmallVector<OptimizerUpdateOpInterface> updates;
  SmallVector<Value> grads;
  body.walk([&](OptimizerUpdateOpInterface update) {
    updates.push_back(update);
    grads.push_back(update.getGrad());
  });
  // A step with its own optimizer arithmetic (a TrainingInfoProto's) has
  // none: its gradients are unscaled by the seed already (by 1 until the
  // seed becomes the scale), and a skipped step keeps every state.
  SmallVector<Value> ownUnscaled;
  if (updates.empty())
    for (Operation *user : seed->getUsers())
      if (auto unscale = dyn_cast<UnscaleOp>(user); unscale && unscale.getScale() == seed)
        ownUnscaled.push_back(unscale.getResult());
  if (updates.empty() && ownUnscaled.empty())
    return func.emitError("amp-loss-scaling: @train_step has no optimizer update "
                          "(optimizer=none returns raw gradients)");
  if (!ownUnscaled.empty() && (accumulate > 1 || clip > 0))
    return func.emitError("amp-loss-scaling: gradient accumulation and clipping need amp "
                          "optimizer updates; this step's optimizer is its own arithmetic");

  Value scale, tracker;
  if (mode == "none") {
    scale = seed.getResult();
  } else {
    auto init = DenseElementsAttr::get(scalarF32, static_cast<float>(initScale.getValue()));
    scale = addStateArgument(func, scalarF32, "loss_scale", init);
    if (mode == "dynamic")
      tracker = addStateArgument(func, scalarI64, "loss_scale.growth_tracker", Attribute());
    seed.getResult().replaceAllUsesWith(scale);
    seed.erase();
  }

  // Before the first update (when every gradient is complete): unscale them
  // all in FP32, then check, measure and clip.
  if (!updates.empty())
    b.setInsertionPoint(updates.front());
  SmallVector<Value> unscaled(ownUnscaled);
  for (Value grad : grads)
    unscaled.push_back(mode == "none" ? grad
                                      : UnscaleOp::create(b, loc, grad.getType(), grad, scale)
                                            .getResult());

  // Gradient accumulation: sum into FP32 buffers, apply the mean every K-th
  // micro-batch, then reset the buffers.
  Value apply, notApply, count;
  SmallVector<Value> sums;
  if (accumulate > 1) {
    count = addStateArgument(func, scalarI64, "accumulation.count", Attribute());
    auto step = AccumulationStepOp::create(b, loc, scalarI64, scalarF32, count,
                                           b.getI64IntegerAttr(accumulate));
    apply = step.getApply();
    count = step.getNewCount();
    Value one = ConstantOp::create(b, loc, DenseElementsAttr::get(scalarF32, 1.0f));
    notApply = SubOp::create(b, loc, scalarF32, one, apply);
    auto inverse = DenseElementsAttr::get(scalarF32, static_cast<float>(1.0 / accumulate));
    Value meanFactor = ConstantOp::create(b, loc, inverse);
    for (size_t i = 0; i < unscaled.size(); ++i) {
      Value &grad = unscaled[i];
      Value param = updates[i].getParam();
      auto name = getRole(func.getArgAttrDict(cast<BlockArgument>(param).getArgNumber()));
      Value accumulator = addStateArgument(func, grad.getType(),
                                           (name->second + ".grad_accum").str(), Attribute());
      Value sum = AddOp::create(b, loc, grad.getType(), accumulator, grad);
      sums.push_back(sum);
      grad = MulOp::create(b, loc, grad.getType(), sum, meanFactor);
    }
  }

  // The gradient statistics (one fused pass at run time) only when something
  // reads them: a loss scale, the skip, or clipping. A plain FP32 step pays
  // nothing, as in PyTorch without a GradScaler.
  bool checked = mode != "none" || skipNonFinite || clip > 0;
  Value found, norm;
  if (checked) {
    found = FoundNonFiniteOp::create(b, loc, scalarF32, unscaled);
    norm = GlobalNormOp::create(b, loc, scalarF32, unscaled);
    // In a data-parallel step (amp-data-parallel ran first) every rank has
    // the same reduced gradients; their statistics are reduced as well (the
    // maximum, NaN winning), so that no rounding difference between ranks
    // can ever split the skip, scale and clipping decisions.
    AllReduceOp gradReduce;
    body.walk([&](AllReduceOp op) { gradReduce = op; });
    if (gradReduce) {
      auto stats = AllReduceOp::create(b, loc, ValueRange{found, norm},
                                       gradReduce.getWorldSize(), /*max=*/true);
      found = stats.getResult(0);
      norm = stats.getResult(1);
    }
  }
  SmallVector<Value> clipped(unscaled);
  if (clip > 0) {
    Value coefficient = ClipCoefficientOp::create(b, loc, scalarF32, norm,
                                                  b.getF64FloatAttr(clip));
    for (Value &grad : clipped)
      grad = MulOp::create(b, loc, grad.getType(), grad, coefficient);
  }
  // Skip on a non-finite step and, when accumulating, on every step that
  // completes no optimizer step (flags are "non-zero means skip").
  Value skip = skipNonFinite ? found : Value();
  if (notApply)
    skip = skip ? AddOp::create(b, loc, scalarF32, skip, notApply).getResult() : notApply;
  for (auto [update, grad] : llvm::zip(updates, clipped)) {
    update.setGrad(grad);
    if (skip)
      update.setSkip(skip);
  }
  if (skip && !ownUnscaled.empty() && failed(keepStateOnSkip(func, ret, skip, b, loc)))
    return failure();
  // The optimizer's step counter (the one its updates read) skips with
  // them; other counters (dropout's) advance every step.
  body.walk([&](IncrementOp op) {
    bool optimizerStep = llvm::any_of(op.getInput().getUsers(), [](Operation *user) {
      return isa<OptimizerUpdateOpInterface>(user);
    });
    if (skip && optimizerStep)
      op.getSkipMutable().assign(skip);
  });

  // New state and metrics join the results.
  b.setInsertionPoint(ret);
  SmallVector<Value> results(ret.getOperands());
  SmallVector<DictionaryAttr> resultAttrs;
  for (unsigned i = 0; i < results.size(); ++i)
    resultAttrs.push_back(func.getResultAttrDict(i) ? func.getResultAttrDict(i)
                                                    : DictionaryAttr::get(context));
  auto addResult = [&](Value value, StringRef roleName, StringRef name) {
    results.push_back(value);
    resultAttrs.push_back(roleAttrs(b, roleName, name));
  };
  if (accumulate > 1) {
    for (auto [i, sum] : llvm::enumerate(sums)) {
      Value param = updates[i].getParam();
      auto name = getRole(func.getArgAttrDict(cast<BlockArgument>(param).getArgNumber()));
      addResult(ZeroIfOp::create(b, loc, sum.getType(), sum, apply), role::kState,
                (name->second + ".grad_accum").str());
    }
    addResult(count, role::kState, "accumulation.count");
  }
  if (mode == "dynamic") {
    // The scale moves once per optimizer step, not per micro-batch.
    auto updated = UpdateLossScaleOp::create(
        b, loc, scalarF32, scalarI64, scale, tracker, found, notApply,
        b.getF64FloatAttr(growthFactor), b.getF64FloatAttr(backoffFactor),
        b.getI64IntegerAttr(growthInterval));
    addResult(updated.getNewScale(), role::kState, "loss_scale");
    addResult(updated.getNewGrowthTracker(), role::kState, "loss_scale.growth_tracker");
  } else if (mode == "static") {
    addResult(scale, role::kState, "loss_scale");
  }
  // Metrics are read after the step: the scale as GradScaler.get_scale()
  // returns it after update(). The flag says what happened: "skipped" when a
  // non-finite step was skipped, "nonfinite" when it was applied anyway.
  if (mode != "none")
    addResult(mode == "dynamic" ? results[results.size() - 2] : scale, role::kMetric,
              "loss_scale");
  if (checked) {
    addResult(found, role::kMetric, skipNonFinite ? "skipped" : "nonfinite");
    addResult(norm, role::kMetric, "grad_norm");
  }
  func::ReturnOp::create(b, ret.getLoc(), results);
  ret.erase();
  func.setType(FunctionType::get(context, body.getArgumentTypes(),
                                 ValueRange(results).getTypes()));
  func.setAllResultAttrs(resultAttrs);
  return success();
}

} // namespace
