//===- PrecisionReport.h - autocast's decisions for people ------*- C++ -*-===//
#ifndef AMP_TRANSFORMS_PRECISIONREPORT_H
#define AMP_TRANSFORMS_PRECISIONREPORT_H

#include "mlir/IR/BuiltinOps.h"
#include "llvm/Support/raw_ostream.h"

namespace mlir::amp {

/// Writes the decisions on @train_step (else @forward) as JSON:
/// {"precision": "bf16", "ops": [{"op", "node", "precision", "rule"}...], "casts": N}.
/// Casts are counted, not listed.
LogicalResult writePrecisionReport(ModuleOp module, llvm::raw_ostream &os);

/// The same function as a Graphviz digraph, ops coloured by precision.
LogicalResult writePrecisionDot(ModuleOp module, llvm::raw_ostream &os);

} // namespace mlir::amp

#endif // AMP_TRANSFORMS_PRECISIONREPORT_H
