//===- PrecisionPolicy.cpp - read and apply precision policies ------------===//
//
// Files are read with LLVM's YAML I/O, which also accepts JSON (a subset of
// YAML's flow style), so one reader serves both formats.
//
//===----------------------------------------------------------------------===//

#include "amp/Transforms/PrecisionPolicy.h"

#include "mlir/IR/Location.h"
#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Support/YAMLTraits.h"

using namespace mlir;
using namespace mlir::amp;

namespace {
/// The file's shape, as YAML I/O maps it.
struct RuleEntry {
  std::string op, match, precision, reason;
};
struct PolicyFile {
  std::string defaultPrecision;
  std::vector<RuleEntry> ops, nodes;
};
} // namespace

LLVM_YAML_IS_SEQUENCE_VECTOR(RuleEntry)

namespace llvm::yaml {
template <> struct MappingTraits<RuleEntry> {
  static void mapping(IO &io, RuleEntry &rule) {
    io.mapOptional("op", rule.op);
    io.mapOptional("match", rule.match);
    io.mapRequired("precision", rule.precision);
    io.mapOptional("reason", rule.reason);
  }
};
template <> struct MappingTraits<PolicyFile> {
  static void mapping(IO &io, PolicyFile &file) {
    io.mapOptional("default", file.defaultPrecision);
    io.mapOptional("ops", file.ops);
    io.mapOptional("nodes", file.nodes);
  }
};
} // namespace llvm::yaml


LogicalResult PrecisionPolicy::addRule(StringRef kind, StringRef pattern,
                                       StringRef precision, StringRef reason,
                                       MLIRContext *context, std::string &error) {
  auto parsed = symbolizePrecisionClass(precision);
  if (!parsed) {
    error = kind.str() + " rule '" + pattern.str() + "': unknown precision '" +
            precision.str() + "' (expected low, f32 or follow)";
    return failure();
  }
  PrecisionRule rule{pattern.str(), *parsed, reason.str(), nullptr, std::nullopt};
  if (kind == "op") {
    auto name = RegisteredOperationName::lookup(pattern, context);
    if (!name || name->getDialectNamespace() != "amp") {
      error = "op rule: unknown op '" + pattern.str() + "' (expected an amp op such as amp.matmul)";
      return failure();
    }
    // Losses, loss-scale state and optimizer updates (FP32 master weights)
    // are f32 by definition: a rule for one could only make invalid IR.
    if (name->hasTrait<FixedPrecision>()) {
      error = "op rule '" + pattern.str() +
              "': its precision is fixed (f32 by definition: losses, loss scaling, "
              "optimizer updates and FP32 master weights); no policy can change it";
      return failure();
    }
  } else {
    rule.globText = std::make_shared<const std::string>(pattern.str());
    auto glob = llvm::GlobPattern::create(*rule.globText);
    if (!glob) {
      error = "node rule '" + pattern.str() + "': " + llvm::toString(glob.takeError());
      return failure();
    }
    rule.glob = std::move(*glob);
  }
  auto &rules = kind == "op" ? opRules : nodeRules;
  for (const PrecisionRule &existing : rules)
    if (existing.pattern == rule.pattern && existing.precision != rule.precision) {
      error = kind.str() + " rules for '" + pattern.str() + "' contradict each other (" +
              stringifyPrecisionClass(existing.precision).str() + " vs " + precision.str() + ")";
      return failure();
    }
  rules.push_back(std::move(rule));
  return success();
}

std::optional<PrecisionPolicy> PrecisionPolicy::loadFile(StringRef path, MLIRContext *context,
                                                         std::string &error) {
  auto buffer = llvm::MemoryBuffer::getFile(path);
  if (!buffer) {
    error = path.str() + ": cannot read: " + buffer.getError().message();
    return std::nullopt;
  }
  PolicyFile file;
  std::string diagnostics;
  llvm::raw_string_ostream diagnosticStream(diagnostics);
  llvm::yaml::Input input((*buffer)->getMemBufferRef(), nullptr,
                          [](const llvm::SMDiagnostic &d, void *out) {
                            *static_cast<llvm::raw_ostream *>(out)
                                << "line " << d.getLineNo() << ", column "
                                << d.getColumnNo() + 1 << ": " << d.getMessage() << "\n";
                          },
                          &diagnosticStream);
  input >> file;
  if (input.error()) {
    error = path.str() + ": malformed policy: " + StringRef(diagnostics).trim().str();
    return std::nullopt;
  }
  PrecisionPolicy policy;
  if (!file.defaultPrecision.empty() && file.defaultPrecision != "bf16" &&
      file.defaultPrecision != "fp16" && file.defaultPrecision != "fp32") {
    error = path.str() + ": default must be bf16, fp16 or fp32, not '" +
            file.defaultPrecision + "'";
    return std::nullopt;
  }
  policy.defaultLow = file.defaultPrecision;
  for (const RuleEntry &rule : file.ops)
    if (rule.op.empty() || !rule.match.empty()) {
      error = path.str() + ": each ops entry needs 'op' (and no 'match')";
      return std::nullopt;
    } else if (failed(policy.addRule("op", rule.op, rule.precision, rule.reason, context, error))) {
      error = path.str() + ": " + error;
      return std::nullopt;
    }
  for (const RuleEntry &rule : file.nodes)
    if (rule.match.empty() || !rule.op.empty()) {
      error = path.str() + ": each nodes entry needs 'match' (and no 'op')";
      return std::nullopt;
    } else if (failed(policy.addRule("node", rule.match, rule.precision, rule.reason, context,
                                     error))) {
      error = path.str() + ": " + error;
      return std::nullopt;
    }
  return policy;
}

LogicalResult PrecisionPolicy::addInline(ArrayRef<std::string> opRuleTexts,
                                         ArrayRef<std::string> nodeRuleTexts,
                                         MLIRContext *context, std::string &error) {
  for (auto [kind, texts] : {std::make_pair(StringRef("op"), opRuleTexts),
                             std::make_pair(StringRef("node"), nodeRuleTexts)})
    for (StringRef text : texts) {
      auto [pattern, precision] = text.rsplit('=');
      if (precision.empty()) {
        error = kind.str() + " rule '" + text.str() + "' is not PATTERN=PRECISION";
        return failure();
      }
      if (failed(addRule(kind, pattern, precision, "inline " + kind.str() + " rule",
                         context, error)))
        return failure();
    }
  return success();
}

PrecisionDecision PrecisionPolicy::classify(Operation *op) const {
  auto iface = dyn_cast<PrecisionOpInterface>(op);
  // Ops of fixed precision keep it: a node glob ("*") passes over them.
  if (op->hasTrait<FixedPrecision>())
    return {iface.getPrecisionClass(), iface.getPrecisionReason().str()};
  std::string node = nodeNameOf(op);
  auto describe = [](const char *kind, const PrecisionRule &rule) {
    std::string text = std::string(kind) + " rule '" + rule.pattern + "'";
    return rule.reason.empty() ? text : text + ": " + rule.reason;
  };
  if (!node.empty())
    for (const PrecisionRule &rule : nodeRules)
      if (rule.glob->match(node))
        return {rule.precision, describe("node", rule)};
  for (const PrecisionRule &rule : opRules)
    if (rule.pattern == op->getName().getStringRef())
      return {rule.precision, describe("op", rule)};
  if (iface)
    return {iface.getPrecisionClass(), iface.getPrecisionReason().str()};
  return {PrecisionClass::FP32, "not an amp op: left in FP32"};
}
