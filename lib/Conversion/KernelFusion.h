//===- KernelFusion.h - which ops of a function share one kernel -*- C++ -*-===//
//
// Every kernel-grouping decision of the lowering, made here once, before
// buffers are placed, and recorded in the plan; the backends only execute
// them:
//  - a GEMM absorbs the bias add and relu that only it feeds, also through
//    a reshape that regroups its rows (a linear layer over a sequence) (an
//    epilogue: cuBLASLt's BIAS/RELU_BIAS on the GPU, oneDNN post-ops on the
//    CPU);
//  - chains of elementwise ops of one shape become one "fused_elementwise"
//    kernel; values used only inside the chain are never stored;
//  - the non-finite check and the norm of the same gradients are one
//    "gradient_stats" kernel;
//  - an optimizer update writes the low-precision copy of its new weights
//    (the cast that follows it) as an extra output;
//  - launch groups: adjacent updates with the same hyperparameters, and the
//    unscales whose results one gradient check reads together with that
//    check, may run as one multi-tensor launch (the plan's
//    `launch_group`; the CUDA backend merges them, the CPU runs them in
//    order).
//
//===----------------------------------------------------------------------===//
#ifndef AMP_CONVERSION_KERNELFUSION_H
#define AMP_CONVERSION_KERNELFUSION_H

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "llvm/ADT/DenseMap.h"
#include "llvm/ADT/SmallVector.h"

namespace mlir::amp {

struct FusionGroup {
  enum Kind { Epilogue, Elementwise, GradientStats, UpdateWithLowCopy } kind;
  /// In program order; the first is the GEMM of an epilogue, the
  /// found_nonfinite of gradient stats, the update of an update with its copy.
  SmallVector<Operation *> members;
  /// Epilogue: the bias vector the add brings.
  Value bias;
  Operation *last() const { return members.back(); }
  /// Where the group's kernel runs: its inputs live until then and its
  /// outputs are written then. Chains run at their last member (all their
  /// inputs exist by then); the other groups at their first, whose extra
  /// members only add outputs computed from what the first reads or writes.
  Operation *runsAt() const {
    return kind == Epilogue || kind == Elementwise ? last() : members.front();
  }
};

struct FusionPlan {
  SmallVector<FusionGroup> groups;
  /// Every member of every group -> its group's index.
  llvm::DenseMap<Operation *, unsigned> groupOf;
  /// Ops that may share one launch with others of the same id (ids from 1;
  /// the ops of a fused group are represented by the op it runs at).
  llvm::DenseMap<Operation *, int32_t> launchGroup;
};

/// Groups the ops of `func`'s body.
FusionPlan planFusion(func::FuncOp func);

/// True for the ops a fused elementwise kernel can evaluate.
bool isFusableElementwise(Operation *op);

} // namespace mlir::amp

#endif // AMP_CONVERSION_KERNELFUSION_H
