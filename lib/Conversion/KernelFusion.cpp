//===- KernelFusion.cpp - GEMM epilogues and elementwise chains -----------===//

#include "KernelFusion.h"

#include "amprt/PlanFormat.h"
#include "dialects/Amp/AmpOps.h"

#include "mlir/Interfaces/ViewLikeInterface.h"
#include "llvm/ADT/DenseSet.h"

using namespace mlir;
using namespace mlir::amp;

namespace {

// The runtime's limits for one fused kernel (FusedElementwise.h).
using amprt::fused::kMaxInputs, amprt::fused::kMaxOutputs, amprt::fused::kMaxRank,
    amprt::fused::kMaxSteps;

/// The one op reading `v`, or null when there are none or several.
Operation *soleUser(Value v) { return v.hasOneUse() ? *v.getUsers().begin() : nullptr; }

/// matmul [-> reshape] -> add(bias over columns) [-> relu], each value read
/// only by the next, bias and result of the matmul's type: the group, or no
/// members. The reshape may only regroup the rows ([M, N] -> [..., N], as a
/// linear layer over [batch, sequence, features] exports): the GEMM then
/// writes the add's bytes in its own [M, N] shape.
FusionGroup matchEpilogue(MatmulOp matmul) {
  auto resultType = cast<RankedTensorType>(matmul.getResult().getType());
  if (resultType.getRank() != 2) // the runtimes' bias epilogue is for single GEMMs
    return {};
  int64_t columns = resultType.getDimSize(1);
  Value product = matmul.getResult();
  auto reshape = dyn_cast_or_null<ReshapeOp>(soleUser(product));
  if (reshape) {
    auto viewType = cast<RankedTensorType>(reshape.getResult().getType());
    if (viewType.getRank() < 1 || viewType.getDimSize(viewType.getRank() - 1) != columns)
      return {};
    product = reshape.getResult();
  }
  auto add = dyn_cast_or_null<AddOp>(soleUser(product));
  if (!add)
    return {};
  Value bias = add.getLhs() == product ? add.getRhs() : add.getLhs();
  auto biasType = cast<RankedTensorType>(bias.getType());
  bool biasOverColumns =
      biasType.getNumElements() == columns && biasType.getRank() >= 1 &&
      biasType.getDimSize(biasType.getRank() - 1) == columns && biasType.getRank() <= 2;
  if (!biasOverColumns || bias == product ||
      biasType.getElementType() != resultType.getElementType() ||
      add.getResult().getType() != product.getType())
    return {};
  FusionGroup group{FusionGroup::Epilogue, {matmul}, bias};
  if (reshape)
    group.members.push_back(reshape);
  group.members.push_back(add);
  if (auto relu = dyn_cast_or_null<ReluOp>(soleUser(add.getResult())))
    group.members.push_back(relu);
  return group;
}

RankedTensorType resultType(Operation *op) {
  return dyn_cast<RankedTensorType>(op->getResult(0).getType());
}

/// Grows elementwise chains greedily in program order.
class ChainBuilder {
public:
  explicit ChainBuilder(FusionPlan &plan) : plan(plan) {}

  void visit(Operation *op, bool candidate) {
    if (candidate && !current.empty() && canJoin(op)) {
      add(op);
      return;
    }
    // An outsider reading a chain value needs it stored now: close the chain.
    if (!current.empty() && llvm::any_of(op->getOperands(), [&](Value v) {
          return defined.contains(v);
        }))
      close();
    if (!candidate)
      return;
    close();
    add(op);
  }

  void close() {
    if (current.size() >= 2) {
      unsigned index = plan.groups.size();
      plan.groups.push_back({FusionGroup::Elementwise, current});
      for (Operation *member : current)
        plan.groupOf[member] = index;
    }
    current.clear();
    defined.clear();
    inputs.clear();
  }

private:
  /// Joins when it reads the chain, has its shape and stays within limits.
  bool canJoin(Operation *op) {
    if (resultType(op).getShape() != resultType(current.front()).getShape())
      return false;
    if (llvm::none_of(op->getOperands(), [&](Value v) { return defined.contains(v); }))
      return false;
    llvm::SmallDenseSet<Value> newInputs(inputs.begin(), inputs.end());
    for (Value v : op->getOperands())
      if (!defined.contains(v))
        newInputs.insert(v);
    if (newInputs.size() > kMaxInputs || current.size() + 1 > kMaxSteps)
      return false;
    // Outputs: values read outside the chain; a new member can only add.
    unsigned outputs = 0;
    for (Operation *member : current)
      outputs += llvm::any_of(member->getResult(0).getUsers(),
                              [&](Operation *user) { return user != op && !contains(user); });
    return outputs + 1 <= kMaxOutputs;
  }

  bool contains(Operation *op) { return llvm::is_contained(current, op); }

  void add(Operation *op) {
    for (Value v : op->getOperands())
      if (!defined.contains(v))
        inputs.insert(v);
    current.push_back(op);
    defined.insert(op->getResult(0));
  }

  FusionPlan &plan;
  SmallVector<Operation *> current;
  llvm::DenseSet<Value> defined;
  llvm::SmallDenseSet<Value> inputs;
};

} // namespace

bool mlir::amp::isFusableElementwise(Operation *op) {
  if (!op->hasTrait<FusableElementwise>()) // declared in ODS
    return false;
  auto type = resultType(op);
  if (!type || !type.hasStaticShape() || type.getRank() > kMaxRank ||
      !isa<FloatType>(type.getElementType()))
    return false;
  return llvm::all_of(op->getOperandTypes(), [](Type t) {
    auto operand = dyn_cast<RankedTensorType>(t);
    return operand && isa<FloatType>(operand.getElementType());
  });
}

/// The non-finite check and the norm of the same gradients: one pass.
static void matchGradientStats(Block &body, FusionPlan &plan) {
  for (auto found : body.getOps<FoundNonFiniteOp>())
    for (Operation *user : found.getOperand(0).getUsers())
      if (auto norm = dyn_cast<GlobalNormOp>(user);
          norm && norm->getOperands() == found->getOperands() && !plan.groupOf.count(norm)) {
        plan.groupOf[found] = plan.groupOf[norm] = plan.groups.size();
        plan.groups.push_back({FusionGroup::GradientStats, {found, norm}});
        break;
      }
}

/// An update and the cast of its new weights (the low copy kept as state):
/// the update kernel writes both.
static void matchUpdateLowCopies(Block &body, FusionPlan &plan) {
  for (auto update : body.getOps<OptimizerUpdateOpInterface>())
    for (Operation *user : update.getNewParam().getUsers())
      if (auto lowCopy = dyn_cast<CastOp>(user)) {
        plan.groupOf[update] = plan.groupOf[lowCopy] = plan.groups.size();
        plan.groups.push_back({FusionGroup::UpdateWithLowCopy, {update, lowCopy}});
        break;
      }
}

/// The ops that become kernels, in the order the lowering emits them: not
/// constants or views (no kernel), and a group once, at its runsAt().
static SmallVector<Operation *> kernelOrder(Block &body, const FusionPlan &plan) {
  SmallVector<Operation *> order;
  for (Operation &op : body.without_terminator()) {
    if (op.hasTrait<OpTrait::ConstantLike>() || isa<ViewLikeOpInterface>(op))
      continue;
    auto group = plan.groupOf.find(&op);
    if (group != plan.groupOf.end() && plan.groups[group->second].runsAt() != &op)
      continue;
    order.push_back(&op);
  }
  return order;
}

/// Updates of the same kind, attributes and scalar operands (step counter,
/// skip flag): one multi-tensor launch can apply both.
static bool shareLaunch(Operation *a, Operation *b) {
  if (!isa<OptimizerUpdateOpInterface>(a) || a->getName() != b->getName() ||
      a->getAttrDictionary() != b->getAttrDictionary() ||
      a->getNumOperands() != b->getNumOperands())
    return false;
  for (auto [x, y] : llvm::zip(a->getOperands(), b->getOperands()))
    if (cast<RankedTensorType>(x.getType()).getRank() == 0 && x != y)
      return false;
  return true;
}

/// Runs of adjacent kernels that one launch can do: updates that share
/// their launch, and unscales (of one scale) directly followed by the
/// gradient check that reads exactly their results.
static void planLaunchGroups(Block &body, FusionPlan &plan) {
  SmallVector<Operation *> order = kernelOrder(body, plan);
  int32_t next = 1;
  auto assign = [&](ArrayRef<Operation *> run) {
    for (Operation *op : run)
      plan.launchGroup[op] = next;
    ++next;
  };
  for (size_t k = 0; k < order.size();) {
    size_t end = k + 1;
    while (end < order.size() && shareLaunch(order[k], order[end]))
      ++end;
    if (end - k >= 2) {
      assign(ArrayRef(order).slice(k, end - k));
      k = end;
      continue;
    }
    // Unscales of one scale, then the check (gradient_stats) of their results.
    auto first = dyn_cast<UnscaleOp>(order[k]);
    end = k;
    while (end < order.size() && first && isa<UnscaleOp>(order[end]) &&
           cast<UnscaleOp>(order[end]).getScale() == first.getScale())
      ++end;
    if (first && end < order.size() && isa<FoundNonFiniteOp>(order[end])) {
      llvm::SmallDenseSet<Value> unscaled;
      for (Operation *op : ArrayRef(order).slice(k, end - k))
        unscaled.insert(op->getResult(0));
      Operation *check = order[end];
      llvm::SmallDenseSet<Value> read(check->operand_begin(), check->operand_end());
      if (read == unscaled && check->getNumOperands() == unscaled.size()) {
        assign(ArrayRef(order).slice(k, end - k + 1));
        k = end + 1;
        continue;
      }
    }
    ++k;
  }
}

FusionPlan mlir::amp::planFusion(func::FuncOp func) {
  FusionPlan plan;
  Block &body = func.getBody().front();
  matchGradientStats(body, plan);
  matchUpdateLowCopies(body, plan);
  for (auto matmul : body.getOps<MatmulOp>()) {
    FusionGroup group = matchEpilogue(matmul);
    if (group.members.empty() ||
        llvm::any_of(group.members, [&](Operation *m) { return plan.groupOf.count(m); }))
      continue;
    for (Operation *member : group.members)
      plan.groupOf[member] = plan.groups.size();
    plan.groups.push_back(std::move(group));
  }
  ChainBuilder chains(plan);
  for (Operation &op : body) {
    bool candidate = !plan.groupOf.count(&op) && isFusableElementwise(&op);
    chains.visit(&op, candidate);
  }
  chains.close();
  planLaunchGroups(body, plan);
  return plan;
}
