//===- BuildTrainStep.cpp - forward + loss + autodiff + optimizer ---------===//
//
// Builds @train_step next to @forward. Autodiff is a generic reverse walk:
// every rule comes from the op's GradientOpInterface (AmpGradients.cpp).
//
//===----------------------------------------------------------------------===//

#include "amp/Transforms/Passes.h"

#include "mlir/IR/Builders.h"
#include "mlir/IR/IRMapping.h"
#include "mlir/Transforms/RegionUtils.h"

namespace mlir::amp {
#define GEN_PASS_DEF_AMPBUILDTRAINSTEP
#include "amp/Transforms/Passes.h.inc"
} // namespace mlir::amp

using namespace mlir;
using namespace mlir::amp;

namespace {

/// One function argument or result being assembled: type, role and name.
struct Slot {
  Type type;
  StringLiteral role;
  std::string name;
};

/// Grows a function signature alongside the block arguments that back it.
class SignatureBuilder {
public:
  explicit SignatureBuilder(Block &block) : block(block) {}

  Value addArgument(Type type, StringLiteral role, StringRef name, Location loc) {
    args.push_back({type, role, name.str()});
    return block.addArgument(type, loc);
  }
  void addResult(Value value, StringLiteral role, StringRef name) {
    results.push_back({value.getType(), role, name.str()});
    resultValues.push_back(value);
  }

  /// Installs the signature, its role attributes and the return.
  void finish(func::FuncOp func, OpBuilder &builder, Location loc) {
    func::ReturnOp::create(builder, loc, resultValues);
    func.setType(builder.getFunctionType(block.getArgumentTypes(),
                                         ValueRange(resultValues).getTypes()));
    // All at once: setting them one by one rebuilds the whole attribute
    // array each time (quadratic in the signature's length).
    func.setAllArgAttrs(slotAttrs(builder, args));
    func.setAllResultAttrs(slotAttrs(builder, results));
  }

private:
  static SmallVector<DictionaryAttr> slotAttrs(OpBuilder &builder, ArrayRef<Slot> slots) {
    SmallVector<DictionaryAttr> dicts;
    for (const Slot &slot : slots)
      dicts.push_back(mlir::amp::roleAttrs(builder, slot.role, slot.name));
    return dicts;
  }

  Block &block;
  SmallVector<Slot> args, results;
  SmallVector<Value> resultValues;
};

struct BuildTrainStepPass : public amp::impl::AmpBuildTrainStepBase<BuildTrainStepPass> {
  using AmpBuildTrainStepBase::AmpBuildTrainStepBase;

  void runOnOperation() override {
    ModuleOp module = getOperation();
    auto forward = module.lookupSymbol<func::FuncOp>("forward");
    if (!forward) {
      mlir::emitError(module.getLoc(), "amp-build-train-step: no func.func @forward to train");
      return signalPassFailure();
    }
    if (module->hasAttr(kImportedStepAttr))
      return; // an imported training step: its loss and optimizer are its own
    if (module.lookupSymbol("train_step")) {
      mlir::emitError(module.getLoc(), "amp-build-train-step: @train_step already exists");
      return signalPassFailure();
    }
    if (optimizer != "adamw" && optimizer != "sgd" && optimizer != "none") {
      mlir::emitError(module.getLoc()) << "unknown optimizer '" << optimizer
                         << "' (expected adamw, sgd or none)";
      return signalPassFailure();
    }
    if (failed(build(module, forward)))
      return signalPassFailure();
  }

  LogicalResult build(ModuleOp module, func::FuncOp forward);
  FailureOr<Value> buildLoss(OpBuilder &b, func::FuncOp forward,
                             func::ReturnOp forwardReturn, IRMapping &mapping,
                             SignatureBuilder &signature, Block &body);
  LogicalResult differentiate(Block &body, Value loss, ArrayRef<Value> params,
                              OpBuilder &b, SmallVectorImpl<Value> &paramGrads);
};

FailureOr<Value> BuildTrainStepPass::buildLoss(OpBuilder &b, func::FuncOp forward,
                                               func::ReturnOp forwardReturn,
                                               IRMapping &mapping,
                                               SignatureBuilder &signature,
                                               Block &body) {
  // The model's outputs (its other results are step state: running averages).
  SmallVector<std::pair<StringRef, Value>> outputs;
  for (auto [i, value] : llvm::enumerate(forwardReturn.getOperands()))
    if (auto role = getRole(forward.getResultAttrDict(i)); role && role->first == role::kOutput)
      outputs.emplace_back(role->second, value);
  StringRef spec = loss;
  if (spec.consume_front("output:")) {
    for (auto [name, output] : outputs) {
      if (name != spec)
        continue;
      Value value = mapping.lookup(output);
      auto type = cast<RankedTensorType>(value.getType());
      if (type.getRank() != 0 || !type.getElementType().isF32())
        return forward.emitError() << "loss output '" << spec
                                   << "' must be a scalar f32 tensor, got " << type;
      return value;
    }
    return forward.emitError() << "loss=output:" << spec
                               << " names no output of the model";
  }
  if (spec != "cross-entropy")
    return forward.emitError() << "unknown loss '" << spec
                               << "' (expected cross-entropy or output:NAME)";
  if (outputs.size() != 1)
    return forward.emitError() << "loss=cross-entropy needs exactly one model "
                                  "output (the logits), found "
                               << outputs.size();
  Value logits = mapping.lookup(outputs.front().second);
  auto logitsType = cast<RankedTensorType>(logits.getType());
  if (logitsType.getRank() < 2)
    return forward.emitError() << "loss=cross-entropy needs [..., C] logits, got "
                               << logitsType;
  IntegerAttr ignore;
  if (!ignoreIndex.empty()) {
    int64_t value;
    if (StringRef(ignoreIndex).getAsInteger(10, value))
      return forward.emitError() << "ignore-index=" << ignoreIndex << " is not an integer";
    ignore = b.getI64IntegerAttr(value);
  }
  Location loc = NameLoc::get(b.getStringAttr("loss"), forwardReturn.getLoc());
  // Labels [...] for logits [..., C]; a sequence model's positions are rows
  // of one [rows, C] loss, the mean over every counted position (as
  // torch.nn.functional.cross_entropy over flattened logits).
  auto labelType = RankedTensorType::get(logitsType.getShape().drop_back(), b.getI64Type());
  Value labels = signature.addArgument(labelType, role::kLabel, "labels", loc);
  if (logitsType.getRank() > 2) {
    auto flatten = [&](Value v, ArrayRef<int64_t> target) -> Value {
      auto type = cast<RankedTensorType>(v.getType());
      std::string error;
      auto shape = onnxReshapeTarget(type.getShape(), target, error);
      auto flat = RankedTensorType::get(*shape, type.getElementType());
      return ReshapeOp::create(b, loc, flat, v,
                               flat.hasStaticShape() ? DenseI64ArrayAttr()
                                                     : b.getDenseI64ArrayAttr(target));
    };
    int64_t classes = logitsType.getShape().back();
    if (ShapedType::isDynamic(classes))
      return forward.emitError() << "loss=cross-entropy needs a known class count, got "
                                 << logitsType;
    logits = flatten(logits, {-1, classes});
    labels = flatten(labels, {-1});
  }
  auto lossType = RankedTensorType::get({}, b.getF32Type());
  return SoftmaxCrossEntropyOp::create(
             b, loc, lossType, logits, labels,
             LossReductionAttr::get(b.getContext(), LossReduction::Mean), ignore)
      .getResult();
}

LogicalResult BuildTrainStepPass::differentiate(Block &body, Value loss,
                                                ArrayRef<Value> params, OpBuilder &b,
                                                SmallVectorImpl<Value> &paramGrads) {
  auto scalarType = RankedTensorType::get({}, b.getF32Type());
  auto seed = ConstantOp::create(b, loss.getLoc(), DenseElementsAttr::get(scalarType, 1.0f));
  // Loss scaling finds the seed by this mark and replaces it with the scale.
  seed->setAttr(kLossSeedAttr, b.getUnitAttr());
  return buildReverseGradients(body, loss, seed, params, b, paramGrads);
}

LogicalResult BuildTrainStepPass::build(ModuleOp module, func::FuncOp forward) {
  OpBuilder b(module.getContext());
  b.setInsertionPointAfter(forward);
  auto trainStep = func::FuncOp::create(b, forward.getLoc(), "train_step",
                                        b.getFunctionType({}, {}));
  Block &body = trainStep.getBody().emplaceBlock();
  SignatureBuilder signature(body);
  IRMapping mapping;

  // Arguments: parameters, optimizer state, step, then batch inputs.
  SmallVector<Value> params;
  SmallVector<std::string> paramNames;
  Block &forwardBody = forward.getBody().front();
  for (BlockArgument arg : forwardBody.getArguments()) {
    auto roleAttr = getRole(forward.getArgAttrDict(arg.getArgNumber()));
    if (!roleAttr || roleAttr->first != role::kParam)
      continue;
    Value param = signature.addArgument(arg.getType(), role::kParam, roleAttr->second,
                                        arg.getLoc());
    mapping.map(arg, param);
    params.push_back(param);
    paramNames.push_back(roleAttr->second.str());
  }
  if (params.empty())
    return forward.emitError("the model has no trainable parameters (float initializers)");

  double decay = weightDecay >= 0 ? weightDecay.getValue()
                                  : (optimizer == "adamw" ? 0.01 : 0.0);
  SmallVector<SmallVector<Value>> states(params.size());
  Value step;
  for (auto [i, param] : llvm::enumerate(params)) {
    Type type = param.getType();
    Location loc = param.getLoc();
    if (optimizer == "sgd") {
      states[i].push_back(signature.addArgument(type, role::kState,
                                                paramNames[i] + ".momentum_buffer", loc));
    } else if (optimizer == "adamw") {
      states[i].push_back(signature.addArgument(type, role::kState,
                                                paramNames[i] + ".exp_avg", loc));
      states[i].push_back(signature.addArgument(type, role::kState,
                                                paramNames[i] + ".exp_avg_sq", loc));
    }
  }
  if (optimizer == "adamw")
    step = signature.addArgument(RankedTensorType::get({}, b.getI64Type()),
                                 role::kState, "step", forward.getLoc());
  // The model's own step state (running averages) after the optimizer's.
  for (BlockArgument arg : forwardBody.getArguments())
    if (auto roleAttr = getRole(forward.getArgAttrDict(arg.getArgNumber()));
        roleAttr && roleAttr->first == role::kState)
      mapping.map(arg, signature.addArgument(arg.getType(), role::kState, roleAttr->second,
                                             arg.getLoc()));

  for (BlockArgument arg : forwardBody.getArguments()) {
    auto roleAttr = getRole(forward.getArgAttrDict(arg.getArgNumber()));
    if (roleAttr && (roleAttr->first == role::kParam || roleAttr->first == role::kState))
      continue;
    if (!roleAttr || roleAttr->first != role::kInput)
      return forward.emitError() << "argument #" << arg.getArgNumber()
                                 << " of @forward has no amp.input, amp.param or amp.state role";
    mapping.map(arg, signature.addArgument(arg.getType(), role::kInput,
                                           roleAttr->second, arg.getLoc()));
  }

  // Forward ops, then the loss.
  b.setInsertionPointToEnd(&body);
  for (Operation &op : forwardBody.without_terminator())
    b.clone(op, mapping);
  auto forwardReturn = cast<func::ReturnOp>(forwardBody.getTerminator());
  FailureOr<Value> loss = buildLoss(b, forward, forwardReturn, mapping, signature, body);
  if (failed(loss))
    return failure();

  SmallVector<Value> grads;
  if (failed(differentiate(body, *loss, params, b, grads)))
    return failure();

  // Optimizer updates come last, so each may update its state in place.
  for (auto [i, param] : llvm::enumerate(params)) {
    // Updates are named after their parameter, for errors and numerics checks.
    Location loc = NameLoc::get(b.getStringAttr(paramNames[i] + ".update"), param.getLoc());
    if (optimizer == "none") {
      signature.addResult(grads[i], role::kGrad, paramNames[i]);
      continue;
    }
    if (optimizer == "sgd") {
      auto update = SgdUpdateOp::create(
          b, loc, param.getType(), param.getType(), param, grads[i], states[i][0],
          /*skip=*/Value(), b.getF64FloatAttr(lr), b.getF64FloatAttr(momentum),
          b.getF64FloatAttr(decay), nesterov ? b.getUnitAttr() : UnitAttr());
      signature.addResult(update.getNewParam(), role::kParam, paramNames[i]);
      signature.addResult(update.getNewMomentumBuffer(), role::kState,
                          paramNames[i] + ".momentum_buffer");
      continue;
    }
    auto update = AdamWUpdateOp::create(
        b, loc, param.getType(), param.getType(), param.getType(), param, grads[i],
        states[i][0], states[i][1], step, /*skip=*/Value(), b.getF64FloatAttr(lr),
        b.getF64FloatAttr(beta1), b.getF64FloatAttr(beta2), b.getF64FloatAttr(eps),
        b.getF64FloatAttr(decay));
    signature.addResult(update.getNewParam(), role::kParam, paramNames[i]);
    signature.addResult(update.getNewExpAvg(), role::kState, paramNames[i] + ".exp_avg");
    signature.addResult(update.getNewExpAvgSq(), role::kState,
                        paramNames[i] + ".exp_avg_sq");
  }
  for (auto [i, value] : llvm::enumerate(forwardReturn.getOperands()))
    if (auto role = getRole(forward.getResultAttrDict(i)); role && role->first == role::kState)
      signature.addResult(mapping.lookup(value), role::kState, role->second);
  if (step)
    signature.addResult(IncrementOp::create(b, step.getLoc(), step.getType(), step, Value()),
                        role::kState, "step");
  signature.addResult(*loss, role::kLoss, "loss");
  signature.finish(trainStep, b, forward.getLoc());
  // Gradient rules build every operand's gradient; drop those nobody needs
  // (e.g. of batch inputs).
  for (Operation &op : llvm::make_early_inc_range(llvm::reverse(body)))
    if (isOpTriviallyDead(&op))
      op.erase();
  return success();
}

} // namespace
