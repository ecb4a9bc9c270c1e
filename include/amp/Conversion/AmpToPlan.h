//===- AmpToPlan.h - lower a training step to a runtime plan ----*- C++ -*-===//
#ifndef AMP_CONVERSION_AMPTOPLAN_H
#define AMP_CONVERSION_AMPTOPLAN_H

#include "mlir/IR/BuiltinOps.h"
#include "mlir/Support/Timing.h"
#include "llvm/Support/raw_ostream.h"

#include <string>

namespace amprt::proto {
class Plan;
}

namespace mlir::amp {

/// Lowers @train_step (if present; otherwise the plan is for inference
/// only) and @forward to `plan`: one buffer per
/// tensor (aliases for reshapes), parameters and optimizer state as
/// persistent state updated in place, everything else in a liveness-planned
/// arena, one kernel per compute op. Requires static shapes; errors are
/// emitted at the offending op's location. Each stage is timed under
/// `timing` when given (amp-opt's --mlir-timing).
LogicalResult lowerToPlan(ModuleOp module, StringRef source, amprt::proto::Plan &plan,
                          TimingScope *timing = nullptr);

/// The plan serialized (binary, or protobuf text format) to `os` as it is
/// produced (no copy of the whole in memory); `*bytes` gets its size.
LogicalResult serializePlan(const amprt::proto::Plan &plan, bool text, llvm::raw_ostream &os,
                            int64_t *bytes);

/// A summary of the plan for people: bytes, states, and per program its
/// kernels by op and its arena.
void printPlanStatistics(const amprt::proto::Plan &plan, int64_t bytes, llvm::raw_ostream &os);

} // namespace mlir::amp

#endif // AMP_CONVERSION_AMPTOPLAN_H
