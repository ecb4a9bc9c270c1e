//===- FuzzOrtCheckpoint.cpp - onnxruntime-training checkpoints -----------===//
//
// The bytes are the `checkpoint` of an onnxruntime-training artifact set
// whose models are the tiny MLP's (AMP_FUZZ_ORT_ARTIFACTS: its folder);
// the set is imported as `amp-opt FOLDER` does and, where that succeeds,
// compiled to a BF16 plan. The FlatBuffer is verified before any field is
// read; diagnostics are swallowed: only crashes, sanitizer reports, leaks
// and hangs count.
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
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/Path.h"

using namespace mlir;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static std::string folder = [] {
    const char *source = std::getenv("AMP_FUZZ_ORT_ARTIFACTS");
    if (!source)
      std::abort(); // the target needs the artifact set's models
    std::string checkpoint = ampfuzz::writeInput(nullptr, 0, "checkpoint");
    std::string dir = llvm::sys::path::parent_path(checkpoint).str();
    for (const char *model : {"training_model.onnx", "optimizer_model.onnx"})
      if (llvm::sys::fs::copy_file(std::string(source) + "/" + model, dir + "/" + model))
        std::abort();
    return dir;
  }();
  ampfuzz::writeInput(data, size, "checkpoint");
  DialectRegistry registry;
  registry.insert<amp::AmpDialect, func::FuncDialect>();
  MLIRContext context(registry, MLIRContext::Threading::DISABLED);
  ScopedDiagnosticHandler quiet(&context, [](Diagnostic &) { return success(); });
  OwningOpRef<ModuleOp> module = amp::importOrtArtifacts(folder, &context);
  if (!module)
    return 0;
  auto options = amp::PipelineOptions::createFromString("precision=bf16 batch=4");
  PassManager pm(&context);
  if (!options || failed(amp::buildAmpPipeline(pm, *options)) || failed(pm.run(*module)))
    return 0;
  amprt::proto::Plan plan;
  (void)amp::lowerToPlan(*module, folder, plan);
  return 0;
}
