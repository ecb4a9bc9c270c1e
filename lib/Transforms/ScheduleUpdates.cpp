//===- ScheduleUpdates.cpp - run each optimizer update as early as it can ---===//
//
// Autodiff leaves every optimizer update at the end of @train_step, so every
// weight gradient stays alive until the last one is computed: for ResNet-18
// that is 45 MB of FP32 gradients on top of the activations. This pass moves
// each update (with the cast that writes its low-precision weight copy) to
// just after the last op it must follow:
//  - the definitions of its operands (a skip flag that checks every gradient
//    pins the updates to the end, as the non-finite skip requires);
//  - every reader of the parameters and state it overwrites (through
//    views too), so that the lowering still updates them in place.
// Its gradient then dies at the update. Only these ops move, and never past
// an op they depend on, so the step computes the same values.
//
//===----------------------------------------------------------------------===//

#include "amp/Transforms/Passes.h"

namespace mlir::amp {
#define GEN_PASS_DEF_AMPSCHEDULEUPDATES
#include "amp/Transforms/Passes.h.inc"
} // namespace mlir::amp

using namespace mlir;
using namespace mlir::amp;

namespace {

/// For each value @train_step returns as a parameter or state tensor, the
/// argument holding that tensor's old value.
DenseMap<Value, BlockArgument> replacedArguments(func::FuncOp step) {
  llvm::StringMap<BlockArgument> byName;
  for (BlockArgument arg : step.getArguments())
    if (auto role = getRole(step.getArgAttrDict(arg.getArgNumber())))
      byName[role->second] = arg;
  DenseMap<Value, BlockArgument> replaced;
  auto ret = cast<func::ReturnOp>(step.getBody().front().getTerminator());
  for (auto [i, value] : llvm::enumerate(ret.getOperands()))
    if (auto role = getRole(step.getResultAttrDict(i));
        role && (role->first == role::kParam || role->first == role::kState))
      if (auto arg = byName.find(role->second); arg != byName.end())
        replaced[value] = arg->second;
  return replaced;
}

struct ScheduleUpdatesPass
    : public amp::impl::AmpScheduleUpdatesBase<ScheduleUpdatesPass> {
  void runOnOperation() override {
    auto step = getOperation().lookupSymbol<func::FuncOp>("train_step");
    if (!step)
      return;
    Block &body = step.getBody().front();
    DenseMap<Value, BlockArgument> replaced = replacedArguments(step);
    // Program order, numbered once: moving an update never reorders the
    // ops that later updates are placed after.
    DenseMap<Operation *, size_t> position;
    for (Operation &op : body)
      position[&op] = position.size();
    // Where the last update placed after an op went, to keep updates that
    // share an anchor in their original order.
    DenseMap<Operation *, Operation *> lastPlaced;
    for (auto update : llvm::to_vector(body.getOps<OptimizerUpdateOpInterface>())) {
      SmallVector<Operation *> group = {update};
      for (Operation *user : update.getNewParam().getUsers())
        if (isa<CastOp>(user) && user->getBlock() == &body)
          group.push_back(user);
      Operation *anchor = nullptr;
      auto mustFollow = [&](Operation *op) {
        if (op && !llvm::is_contained(group, op) &&
            (!anchor || position.lookup(op) > position.lookup(anchor)))
          anchor = op;
      };
      for (Operation *op : group) {
        for (Value operand : op->getOperands())
          mustFollow(operand.getDefiningOp());
        for (Value result : op->getResults())
          if (auto old = replaced.find(result); old != replaced.end())
            for (Operation *reader : readersThroughViews(old->second))
              mustFollow(reader);
      }
      if (anchor && position.lookup(anchor) >= position.lookup(update))
        continue; // already as early as it can be
      Operation *after = anchor ? lastPlaced.lookup(anchor) : lastPlaced.lookup(nullptr);
      if (!after)
        after = anchor;
      for (Operation *op : group) {
        if (after)
          op->moveAfter(after);
        else
          op->moveBefore(&body, body.begin());
        // Ties with the anchor are harmless: later updates only follow
        // ops that stay in place (defs, readers), never a moved update.
        position[op] = anchor ? position.lookup(anchor) : 0;
        after = op;
      }
      lastPlaced[anchor] = after;
    }
  }
};

} // namespace
