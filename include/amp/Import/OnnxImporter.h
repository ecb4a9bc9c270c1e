//===- OnnxImporter.h - ONNX ModelProto -> amp dialect ----------*- C++ -*-===//
#ifndef AMP_IMPORT_ONNXIMPORTER_H
#define AMP_IMPORT_ONNXIMPORTER_H

#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/OwningOpRef.h"

#include "amprt/PlanFormat.h"

#include <string>
#include <vector>

namespace mlir::amp {

/// Reads the ONNX model at `path` (checked with the ONNX checker, shapes
/// inferred, both with the newer schemas of lib/Import/NewerOpsetSchemas.h)
/// into a module holding `func.func @forward`: float initializers become
/// `amp.param` arguments carrying their values in `amp.init`, graph inputs
/// become `amp.input` arguments, graph outputs `amp.output` results.
/// Each op's location is its ONNX node name. Errors are emitted as
/// diagnostics naming the file, node and op type; returns null then.
/// Limits on untrusted models beyond their tensors (docs/reliability.md).
struct OnnxImportOptions {
  /// Graphs with more nodes are refused before any is imported (amp-opt
  /// --onnx-max-nodes); the default is the plan format's kMaxModelNodes.
  int64_t maxNodes = amprt::kMaxModelNodes;
  /// Float initializers (names or glob patterns) that are constants, not
  /// trainable parameters: buffers such as attention masks (amp-opt
  /// --onnx-frozen). Initializers holding an inf or NaN are constants
  /// anyway: no optimizer can train them.
  std::vector<std::string> frozen;
};

OwningOpRef<ModuleOp> importOnnxFile(StringRef path, MLIRContext *context,
                                     const OnnxImportOptions &options = {});

/// Whether `path` is an onnxruntime-training artifact set: a folder holding
/// training_model.onnx, optimizer_model.onnx and checkpoint, or that
/// folder's training_model.onnx; `folder` is set to the folder.
bool findOrtArtifactSet(StringRef path, std::string &folder);

/// Imports the artifact set in `folder` (lib/Import/OrtArtifacts.cpp) into
/// `func.func @train_step` (forward, loss and gradient ops of the training
/// model, the optimizer model's update of every parameter, parameters and
/// optimizer state from the checkpoint), which amp-build-train-step then
/// keeps, and `@forward` (the model's output, for evaluation).
OwningOpRef<ModuleOp> importOrtArtifacts(StringRef folder, MLIRContext *context,
                                         const OnnxImportOptions &options = {});

/// One ONNX op the importer has a rule for: its domain ("" is the default
/// domain, ai.onnx), the op-set versions the rule handles (`untilVersion` 0:
/// up to the newest op set the importer reads) and any limit of the rule.
struct OnnxOpSupport {
  StringRef domain, opType;
  int64_t sinceVersion, untilVersion;
  StringRef limits;
};

/// Every op the importer handles, from its rule registry (what
/// `amp-opt --list-onnx-ops` prints and unsupported-op errors list).
std::vector<OnnxOpSupport> supportedOnnxOps();

/// The default-domain op sets a model may import: ONNX 1.12's schemas know
/// them up to 17, and the importer declares the newer signatures of the ops
/// it reads in op sets 18 to 21 (lib/Import/NewerOpsetSchemas.h). Each rule
/// says from which op set its semantics hold (most from 13; Conv and
/// AveragePool from 11, MaxPool from 10, GlobalAveragePool from 1), so an
/// older model is refused per op, naming the node.
constexpr int64_t kMinOnnxOpset = 1, kMaxOnnxOpset = 21;

} // namespace mlir::amp

#endif // AMP_IMPORT_ONNXIMPORTER_H
