//===- FuzzPolicy.cpp - precision policy files (YAML or JSON) --------------===//
//
// The bytes are a policy file, as `--amp-pipeline="policy=FILE"` reads it:
// LLVM's YAML parser, then the rules checked against the amp ops.
//
//===----------------------------------------------------------------------===//
#include "FuzzInput.h"
#include "amp/Transforms/PrecisionPolicy.h"
#include "dialects/Amp/AmpOps.h"

#include "mlir/IR/MLIRContext.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static mlir::MLIRContext *context = [] {
    auto *created = new mlir::MLIRContext(mlir::MLIRContext::Threading::DISABLED);
    created->loadDialect<mlir::amp::AmpDialect>();
    return created;
  }();
  std::string error;
  (void)mlir::amp::PrecisionPolicy::loadFile(
      ampfuzz::writeInput(data, size, "policy.yaml"), context, error);
  return 0;
}
