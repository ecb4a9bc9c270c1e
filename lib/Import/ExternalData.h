//===- ExternalData.h - ONNX tensors whose bytes live in other files -*- C++ -*-===//
#ifndef AMP_LIB_IMPORT_EXTERNALDATA_H
#define AMP_LIB_IMPORT_EXTERNALDATA_H

#include "llvm/ADT/StringRef.h"
#include "llvm/Support/Error.h"

#include "onnx/onnx_pb.h"

namespace mlir::amp::onnx_import {

/// Reads the external data of the model's tensors (initializers and Constant
/// values of the main graph) into their raw_data, so that the checker and
/// the importer see an ordinary model. `modelPath` is the model file; every
/// location must name a regular file inside its folder. The error names the
/// tensor and the reason.
llvm::Error inlineExternalData(onnx::ModelProto &model, llvm::StringRef modelPath);

} // namespace mlir::amp::onnx_import

#endif // AMP_LIB_IMPORT_EXTERNALDATA_H
