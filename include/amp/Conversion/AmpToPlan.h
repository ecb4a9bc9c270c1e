//===- AmpToPlan.h - lower a training step to a runtime plan ----*- C++ -*-===//
#ifndef AMP_CONVERSION_AMPTOPLAN_H
#define AMP_CONVERSION_AMPTOPLAN_H

#include "mlir/IR/BuiltinOps.h"
#include "mlir/Support/Timing.h"
#include "llvm/ADT/STLFunctionalExtras.h"
#include "llvm/Support/raw_ostream.h"

#include <map>
#include <string>
#include <vector>

namespace amprt::proto {
class Plan;
}

namespace mlir::amp {

/// One part of a plan, as lowerToPlanInParts hands it over.
struct PlanPart {
  /// The header and the state tensors; or one program (train or eval), and
  /// nothing else.
  const amprt::proto::Plan &plan;
  /// With PlanLoweringOptions::encodeKernels, that program's kernels are
  /// not in it but here, in order, each encoded as the Program field
  /// `kernels` (attributes in key order). On the wire they go between the
  /// program's buffers and its inputs. The messages are large: a 100k-op
  /// step has 50k kernels of about 500 bytes each (Kernel's map of
  /// attributes is most of it), against 40 encoded.
  llvm::StringRef kernels;
  /// The program's kernels counted by op (sorted by op name).
  const std::map<std::string, int> &kernelsByOp;
};

struct PlanLoweringOptions {
  /// Keep kernels encoded (PlanPart::kernels): for binary output.
  bool encodeKernels = false;
  /// Erase @train_step once its program is out: the largest IR goes before
  /// the last part (the caller no longer needs it).
  bool releaseTrainStep = false;
};

/// Receives each part of a plan as it is lowered (see lowerToPlanInParts).
using PlanPartSink = llvm::function_ref<LogicalResult(const PlanPart &)>;

/// Lowers @train_step (if present; otherwise the plan is for inference
/// only) and @forward to a runtime plan: one buffer per tensor (aliases for
/// reshapes), parameters and optimizer state as persistent state updated in
/// place, everything else in a liveness-planned arena, one kernel per
/// compute op. Requires static shapes; errors are emitted at the offending
/// op's location. Each stage is timed under `timing` when given (amp-opt's
/// --mlir-timing).
///
/// The plan comes in three parts, each handed to `emit` and freed after:
/// the header and the state tensors, the training program, the evaluation
/// program. Serialized one after the other (serializePlanPart), the parts
/// give the whole plan's bytes (protobuf merges concatenated messages, and
/// the parts set disjoint fields in field order), so a caller can write a
/// plan without ever holding all of it.
LogicalResult lowerToPlanInParts(ModuleOp module, StringRef source, const PlanPartSink &emit,
                                 TimingScope *timing = nullptr,
                                 const PlanLoweringOptions &options = {});

/// The same, the parts merged into `plan`.
LogicalResult lowerToPlan(ModuleOp module, StringRef source, amprt::proto::Plan &plan,
                          TimingScope *timing = nullptr);

/// A part serialized (binary, or protobuf text format: not with encoded
/// kernels) to `os` as it is produced; `*bytes` gets its size. The parts of
/// a plan, serialized in the order they come, make the whole plan's file.
LogicalResult serializePlanPart(const PlanPart &part, bool text, llvm::raw_ostream &os,
                                int64_t *bytes);

/// A summary of a plan for people (amp-opt --plan-stats), gathered part by
/// part: bytes, states, and per program its kernels by op and its arena.
class PlanStatistics {
public:
  void add(const PlanPart &part);
  void print(int64_t bytes, llvm::raw_ostream &os) const;

private:
  struct Program {
    std::string name;
    int buffers = 0;
    int64_t arenaBytes = 0;
    std::map<std::string, int> kernelsByOp; // sorted by op name
  };
  int states = 0;
  std::vector<Program> programs;
};

} // namespace mlir::amp

#endif // AMP_CONVERSION_AMPTOPLAN_H
