//===- FuzzOnnx.cpp - ONNX models through amp-opt's whole path -------------===//
//
// The bytes are an ONNX model: imported, trained-step built and rewritten to
// BF16 by --amp-pipeline, and lowered to a plan, as `amp-opt MODEL
// --amp-pipeline="precision=bf16 loss=cross-entropy optimizer=adamw
// batch=4" --emit=plan` does. Diagnostics are swallowed: only crashes,
// sanitizer reports, leaks and hangs count.
//
//===----------------------------------------------------------------------===//
#include "FuzzInput.h"
#include "amp/Conversion/AmpToPlan.h"
#include "amp/Import/OnnxImporter.h"
#include "amp/Transforms/Passes.h"
#include "dialects/Amp/AmpOps.h"
#include "plan.pb.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/Diagnostics.h"
#include "mlir/IR/MLIRContext.h"
#include "mlir/Pass/PassManager.h"

using namespace mlir;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  std::string path = ampfuzz::writeInput(data, size, "input.onnx");
  DialectRegistry registry;
  registry.insert<amp::AmpDialect, func::FuncDialect>();
  MLIRContext context(registry, MLIRContext::Threading::DISABLED);
  ScopedDiagnosticHandler quiet(&context, [](Diagnostic &) { return success(); });
  OwningOpRef<ModuleOp> module = amp::importOnnxFile(path, &context);
  if (!module)
    return 0;
  auto options = amp::PipelineOptions::createFromString(
      "precision=bf16 loss=cross-entropy optimizer=adamw batch=4");
  PassManager pm(&context);
  if (!options || failed(amp::buildAmpPipeline(pm, *options)) || failed(pm.run(*module)))
    return 0;
  amprt::proto::Plan plan;
  (void)amp::lowerToPlan(*module, path, plan);
  return 0;
}
