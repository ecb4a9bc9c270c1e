//===- NewerOpsetSchemas.h - ONNX checks for op sets 18 to 21 ---*- C++ -*-===//
//
// ONNX 1.12 (Debian's libonnx) knows op sets up to 17 and IR version 8. The
// importer reads op sets up to 21 and IR version 10: the ops it imports whose
// signature changed in op sets 18 to 21 are declared here in ONNX's own
// schema form, and ONNX's checker and strict shape inference run with them.
//
//===----------------------------------------------------------------------===//
#ifndef AMP_LIB_IMPORT_NEWEROPSETSCHEMAS_H
#define AMP_LIB_IMPORT_NEWEROPSETSCHEMAS_H

#include "onnx/defs/schema.h"
#include "onnx/onnx_pb.h"

namespace mlir::amp::onnx_import {

/// The newest IR version the importer reads (IR 10 came with op set 21;
/// IR 9 and 10 added element types: float8 and 4-bit integers, which the
/// importer refuses by type).
constexpr int64_t kMaxIrVersion = 10;

/// ONNX 1.12's schemas, and for op sets 18 to 21 the newer schemas of the
/// ops the importer has rules for there (Gelu-20, ReduceMean/Max/Min-18,
/// Split-18). Every other op keeps its op-set-17 signature here: the ops the
/// importer reads changed after 17 only by new element types (refused by
/// the importer), bar Pad-18's axes input and AveragePool-19's dilations,
/// which this signature refuses.
const onnx::ISchemaRegistry &schemasThroughOpset21();

/// ONNX's check_model (graph, nodes against their schemas, tensors) for IR
/// versions up to kMaxIrVersion with schemasThroughOpset21(); throws
/// onnx::checker::ValidationError as check_model does.
void checkModel(const onnx::ModelProto &model);

} // namespace mlir::amp::onnx_import

#endif // AMP_LIB_IMPORT_NEWEROPSETSCHEMAS_H
