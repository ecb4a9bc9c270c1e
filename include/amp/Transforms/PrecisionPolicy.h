//===- PrecisionPolicy.h - user overrides of precision classes --*- C++ -*-===//
//
// A policy overrides the ops' default precision classes, per op type or per
// ONNX node (a glob over node names, which are op locations). It comes from
// a YAML or JSON file and/or inline pass options:
//
//   default: bf16                # the low type: bf16 or fp16 (optional)
//   ops:                         # per op type
//     - op: amp.matmul
//       precision: f32           # low | f32 | follow
//       reason: keep GEMMs exact for this experiment
//   nodes:                       # per ONNX node, first match wins
//     - match: "/head/*"
//       precision: f32
//       reason: the classifier head is sensitive
//
//===----------------------------------------------------------------------===//
#ifndef AMP_TRANSFORMS_PRECISIONPOLICY_H
#define AMP_TRANSFORMS_PRECISIONPOLICY_H

#include "dialects/Amp/AmpOps.h"

#include "llvm/Support/GlobPattern.h"

#include <memory>

#include <optional>
#include <string>
#include <vector>

namespace mlir::amp {

struct PrecisionRule {
  std::string pattern; // op name ("amp.matmul") or node-name glob
  PrecisionClass precision;
  std::string reason;
  /// Node rules only. A GlobPattern keeps StringRefs into the text it was
  /// made from, so that text lives on the heap, shared by copies of the rule
  /// and never moved (not the policy file's strings, which die after loading,
  /// nor `pattern`, which moves with the rule).
  std::shared_ptr<const std::string> globText;
  std::optional<llvm::GlobPattern> glob;
};

/// The class autocast gives an op, and why.
struct PrecisionDecision {
  PrecisionClass precision;
  std::string rule;
};

class PrecisionPolicy {
public:
  /// Reads a YAML or JSON policy; `error` gets "FILE: reason" on failure.
  static std::optional<PrecisionPolicy> loadFile(StringRef path, MLIRContext *context,
                                                 std::string &error);
  /// Adds inline rules "OP=CLASS" and "GLOB=CLASS" (pass options).
  LogicalResult addInline(ArrayRef<std::string> opRules, ArrayRef<std::string> nodeRules,
                          MLIRContext *context, std::string &error);

  /// Node rule (first matching glob) > op rule > the op's own default.
  PrecisionDecision classify(Operation *op) const;
  /// The low type the file asks for ("bf16", "fp16"), if any.
  const std::string &defaultPrecision() const { return defaultLow; }

private:
  LogicalResult addRule(StringRef kind, StringRef pattern, StringRef precision,
                        StringRef reason, MLIRContext *context, std::string &error);

  std::string defaultLow;
  std::vector<PrecisionRule> opRules, nodeRules;
};

} // namespace mlir::amp

#endif // AMP_TRANSFORMS_PRECISIONPOLICY_H
