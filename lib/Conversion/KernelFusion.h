//===- KernelFusion.h - which ops of a function share one kernel -*- C++ -*-===//
//
// The lowering's kernel grouping, decided before buffers are placed:
//  - a GEMM absorbs the bias add and relu that only it feeds (an epilogue:
//    cuBLASLt's BIAS/RELU_BIAS on the GPU, oneDNN post-ops on the CPU);
//  - chains of elementwise ops of one shape become one "fused_elementwise"
//    kernel; values used only inside the chain are never stored.
// Each group's kernel runs at its last member's place in the program.
//
//===----------------------------------------------------------------------===//
#ifndef AMP_CONVERSION_KERNELFUSION_H
#define AMP_CONVERSION_KERNELFUSION_H

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "llvm/ADT/DenseMap.h"
#include "llvm/ADT/SmallVector.h"

namespace mlir::amp {

struct FusionGroup {
  enum Kind { Epilogue, Elementwise } kind;
  /// In program order; the first is the GEMM for an epilogue.
  SmallVector<Operation *> members;
  /// Epilogue: the bias vector the add brings.
  Value bias;
  Operation *last() const { return members.back(); }
};

struct FusionPlan {
  SmallVector<FusionGroup> groups;
  /// Every member of every group -> its group's index.
  llvm::DenseMap<Operation *, unsigned> groupOf;
};

/// Groups the ops of `func`'s body. Ops listed in `excluded` (already fused
/// elsewhere by the lowering) are left alone.
FusionPlan planFusion(func::FuncOp func,
                      llvm::function_ref<bool(Operation *)> excluded);

/// True for the ops a fused elementwise kernel can evaluate.
bool isFusableElementwise(Operation *op);

} // namespace mlir::amp

#endif // AMP_CONVERSION_KERNELFUSION_H
