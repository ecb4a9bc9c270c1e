//===- Autocast.cpp - precision painting and cast insertion ---------------===//
//
// One whole-graph decision per function, then one rewrite:
//  1. classify every op: node rule > op rule > the op's PrecisionOpInterface;
//  2. mark follow ops whose results only flow into FP32-only ops (or out of
//     the function): they stay FP32, so no value ping-pongs low -> f32;
//  3. decide in program order: low ops take low operands (their result is
//     f32 when only FP32 ops read it: FP32 accumulation, no lossy round
//     trip); FP32 ops produce f32; follow ops are low when all their
//     activation inputs are low. Parameters, optimizer state and constants
//     are neutral: they adopt whatever their consumer needs;
//  4. retype results and insert one cast per (value, type).
//
//===----------------------------------------------------------------------===//

#include "amp/Transforms/CastUtils.h"
#include "amp/Transforms/Passes.h"
#include "amp/Transforms/PrecisionPolicy.h"

#include "mlir/IR/Builders.h"
#include "llvm/ADT/DenseSet.h"

namespace mlir::amp {
#define GEN_PASS_DEF_AMPAUTOCAST
#include "amp/Transforms/Passes.h.inc"
} // namespace mlir::amp

using namespace mlir;
using namespace mlir::amp;

namespace {

class FunctionAutocast {
public:
  FunctionAutocast(func::FuncOp func, const PrecisionPolicy &policy, Type low)
      : func(func), policy(policy), low(low), f32(Float32Type::get(func.getContext())) {}

  void run() {
    classify();
    markFp32Paths();
    decide();
    rewrite();
  }

private:
  Block &body() { return func.getBody().front(); }
  bool isNeutral(Value value);
  bool isFp32Consumer(Operation *user);
  void classify();
  void markFp32Paths();
  void decide();
  void rewrite();
  StringRef lowName() { return low.isBF16() ? "bf16" : "f16"; }

  func::FuncOp func;
  const PrecisionPolicy &policy;
  Type low, f32;
  llvm::DenseMap<Operation *, PrecisionDecision> classes;
  llvm::DenseSet<Operation *> towardFp32;
  /// Per op: the element type each float operand must have (null: keep).
  llvm::DenseMap<Operation *, SmallVector<Type>> operandTypes;
  /// Per op: the element type of its float results, and why.
  llvm::DenseMap<Operation *, std::pair<Type, std::string>> resultTypes;
};

/// Operands and results an op declares f32 by definition (statistics,
/// running averages): never cast to the low type, never counted.
bool isF32Operand(Operation *op, unsigned index) {
  auto iface = dyn_cast<PrecisionOpInterface>(op);
  return iface && iface.isF32Operand(index);
}
bool isF32Result(OpResult result) {
  auto iface = dyn_cast<PrecisionOpInterface>(result.getOwner());
  return iface && iface.isF32Result(result.getResultNumber());
}

/// Parameters, optimizer state and constants (and views of them) have no
/// precision of their own.
bool FunctionAutocast::isNeutral(Value value) {
  if (auto arg = dyn_cast<BlockArgument>(value)) {
    auto role = getRole(func.getArgAttrDict(arg.getArgNumber()));
    return role && (role->first == role::kParam || role->first == role::kState);
  }
  // A view of one (a conv bias reshaped to [1, C, 1, 1]) is still one.
  if (auto view = dyn_cast_or_null<ViewLikeOpInterface>(value.getDefiningOp()))
    return isNeutral(view.getViewSource());
  return isa_and_nonnull<ConstantOp>(value.getDefiningOp());
}

bool FunctionAutocast::isFp32Consumer(Operation *user) {
  if (isa<func::ReturnOp>(user))
    return true; // function results keep their (f32) signature
  auto it = classes.find(user);
  if (it == classes.end())
    return false;
  return it->second.precision == PrecisionClass::FP32 || towardFp32.contains(user);
}

void FunctionAutocast::classify() {
  for (Operation &op : body().without_terminator())
    if (!isa<CastOp>(op)) // explicit casts are the user's intent: kept as they are
      classes[&op] = policy.classify(&op);
}

void FunctionAutocast::markFp32Paths() {
  for (Operation &op : llvm::reverse(body().without_terminator())) {
    auto it = classes.find(&op);
    if (it == classes.end() || it->second.precision != PrecisionClass::Follow)
      continue;
    bool anyFloat = false, allFp32 = true;
    for (OpResult result : op.getResults()) {
      if (!isFloatTensor(result.getType()) || isF32Result(result))
        continue;
      anyFloat = true;
      for (Operation *user : result.getUsers())
        allFp32 &= isFp32Consumer(user);
    }
    if (anyFloat && allFp32)
      towardFp32.insert(&op);
  }
}

void FunctionAutocast::decide() {
  // Element type of each float value after autocast (updated as we go).
  auto elementOf = [&](Value v) {
    auto it = resultTypes.find(v.getDefiningOp());
    if (v.getDefiningOp() && it != resultTypes.end() && it->second.first)
      return it->second.first;
    return cast<RankedTensorType>(v.getType()).getElementType();
  };
  for (Operation &op : body().without_terminator()) {
    auto it = classes.find(&op);
    if (it == classes.end())
      continue;
    const PrecisionDecision &decision = it->second;
    SmallVector<Type> &required = operandTypes[&op];
    required.assign(op.getNumOperands(), Type());
    if (isa<ConstantOp>(op)) { // whatever a rule says: consumers cast (folded)
      resultTypes[&op] = {Type(), "constant: adopts its consumer's type"};
      continue;
    }
    Type result;
    std::string rule;
    switch (decision.precision) {
    case PrecisionClass::Low: {
      auto iface = dyn_cast<PrecisionOpInterface>(op);
      bool onlyFp32Readers = iface && iface.canWidenResult() &&
                             llvm::all_of(op.getUsers(), [&](Operation *user) {
                               return isFp32Consumer(user);
                             });
      result = onlyFp32Readers ? f32 : low;
      rule = decision.rule + " -> " + lowName().str() +
             (onlyFp32Readers ? " operands, f32 result (only FP32 ops read it)" : "");
      for (auto [i, operand] : llvm::enumerate(op.getOperands()))
        if (isFloatTensor(operand.getType()))
          required[i] = isF32Operand(&op, i) ? f32 : low;
      break;
    }
    case PrecisionClass::FP32: {
      result = f32;
      bool floatResults = llvm::any_of(op.getResultTypes(), isFloatTensor);
      rule = decision.rule + (floatResults ? " -> f32" : "");
      bool acceptsLow = false;
      if (auto iface = dyn_cast<PrecisionOpInterface>(op))
        acceptsLow = iface.acceptsLowPrecisionInputs();
      for (auto [i, operand] : llvm::enumerate(op.getOperands()))
        if (isFloatTensor(operand.getType()) && !acceptsLow)
          required[i] = f32;
      break;
    }
    case PrecisionClass::Follow: {
      bool anyActivation = false, allLow = true;
      for (auto [i, operand] : llvm::enumerate(op.getOperands()))
        if (isFloatTensor(operand.getType()) && !isNeutral(operand) && !isF32Operand(&op, i)) {
          anyActivation = true;
          allLow &= elementOf(operand) == low;
        }
      if (towardFp32.contains(&op)) {
        result = f32;
        rule = decision.rule + "; leads into FP32-only ops -> f32";
      } else if (anyActivation && allLow) {
        result = low;
        rule = decision.rule + "; inputs are " + lowName().str() + " -> " + lowName().str();
      } else {
        result = f32;
        rule = decision.rule + (anyActivation ? "; an input is f32 (the widest wins) -> f32"
                                              : "; only parameters or constants -> f32");
      }
      for (auto [i, operand] : llvm::enumerate(op.getOperands()))
        if (isFloatTensor(operand.getType()))
          required[i] = isF32Operand(&op, i) ? f32 : result;
      break;
    }
    }
    resultTypes[&op] = {result, rule};
  }
}

void FunctionAutocast::rewrite() {
  CastCache casts;
  std::string castRule = "autocast: converts a value for a consumer of another precision";
  Builder builder(func.getContext());
  for (Operation &op : llvm::make_early_inc_range(body().without_terminator())) {
    auto it = resultTypes.find(&op);
    if (it == resultTypes.end())
      continue;
    auto &[element, rule] = it->second;
    op.setAttr("amp.rule", builder.getStringAttr(rule));
    for (auto [i, type] : llvm::enumerate(operandTypes[&op]))
      if (type)
        op.setOperand(i, casts.get(op.getOperand(i), type, &op, castRule));
    if (element)
      for (OpResult result : op.getResults())
        if (isFloatTensor(result.getType()) && !isF32Result(result)) {
          auto tensor = cast<RankedTensorType>(result.getType());
          result.setType(RankedTensorType::get(tensor.getShape(), element));
        }
  }
  // The signature stays: a value a policy made low is widened back to it.
  Operation *ret = body().getTerminator();
  for (auto [i, type] : llvm::enumerate(func.getResultTypes()))
    if (ret->getOperand(i).getType() != type && isFloatTensor(type))
      ret->setOperand(i, casts.get(ret->getOperand(i),
                                   cast<RankedTensorType>(type).getElementType(), ret,
                                   castRule));
}

struct AutocastPass : public amp::impl::AmpAutocastBase<AutocastPass> {
  using AmpAutocastBase::AmpAutocastBase;

  void runOnOperation() override {
    ModuleOp module = getOperation();
    MLIRContext *context = module.getContext();
    PrecisionPolicy policy;
    std::string error;
    if (!this->policy.empty()) {
      auto loaded = PrecisionPolicy::loadFile(this->policy, context, error);
      if (!loaded) {
        mlir::emitError(module.getLoc()) << error;
        return signalPassFailure();
      }
      policy = std::move(*loaded);
    }
    if (failed(policy.addInline(opRules, nodeRules, context, error))) {
      mlir::emitError(module.getLoc()) << error;
      return signalPassFailure();
    }
    // The pass option wins; else the policy file's default; else bf16.
    std::string precisionName = !precision.empty() ? precision.getValue()
                                : !policy.defaultPrecision().empty() ? policy.defaultPrecision()
                                                                     : "bf16";
    if (precisionName != "bf16" && precisionName != "fp16" && precisionName != "fp32") {
      mlir::emitError(module.getLoc()) << "amp-autocast: precision must be bf16, fp16 or fp32, not '"
                         << precisionName << "'";
      return signalPassFailure();
    }
    module->setAttr("amp.precision", StringAttr::get(context, precisionName));
    if (precisionName == "fp32")
      return;
    Type low = precisionName == "bf16" ? Type(BFloat16Type::get(context))
                                       : Type(Float16Type::get(context));
    for (auto func : module.getOps<func::FuncOp>())
      FunctionAutocast(func, policy, low).run();
  }
};

} // namespace
