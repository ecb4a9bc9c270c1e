//===- OnnxImporter.h - ONNX ModelProto -> amp dialect ----------*- C++ -*-===//
#ifndef AMP_IMPORT_ONNXIMPORTER_H
#define AMP_IMPORT_ONNXIMPORTER_H

#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/OwningOpRef.h"

namespace mlir::amp {

/// Reads the ONNX model at `path` (checked with the ONNX checker, shapes
/// inferred) into a module holding `func.func @forward`: float initializers
/// become `amp.param` arguments carrying their values in `amp.init`, graph
/// inputs become `amp.input` arguments, graph outputs `amp.output` results.
/// Each op's location is its ONNX node name. Errors are emitted as
/// diagnostics naming the file, node and op type; returns null then.
OwningOpRef<ModuleOp> importOnnxFile(StringRef path, MLIRContext *context);

} // namespace mlir::amp

#endif // AMP_IMPORT_ONNXIMPORTER_H
