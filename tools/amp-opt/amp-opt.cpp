//===- amp-opt.cpp - mlir-opt for amp, reading .onnx and writing plans ----===//
//
// .mlir input without --emit=plan goes straight to MlirOptMain, so every
// mlir-opt flag (-verify-diagnostics, -split-input-file, ...) works. ONNX
// input (isOnnxModel) is imported first; --emit=plan lowers the result to a runtime plan.
// Output files are written atomically, and only on success.
//
//===----------------------------------------------------------------------===//

#include "amp/Conversion/AmpToPlan.h"
#include "amp/Import/OnnxImporter.h"
#include "amp/Transforms/Passes.h"
#include "amp/Transforms/PrecisionReport.h"
#include "plan.pb.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/AsmState.h"
#include "mlir/IR/MLIRContext.h"
#include "mlir/Parser/Parser.h"
#include "mlir/Pass/PassManager.h"
#include "mlir/Support/FileUtilities.h"
#include "mlir/Support/Timing.h"
#include "mlir/Tools/mlir-opt/MlirOptMain.h"
#include "mlir/Transforms/Passes.h"
#include "llvm/Support/CommandLine.h"
#include "llvm/Support/Error.h"
#include "llvm/Support/FormatVariadic.h"
#include "llvm/Support/InitLLVM.h"

#include <fstream>
#include <limits>
#include "llvm/Support/SourceMgr.h"
#include "llvm/Support/ToolOutputFile.h"
#include "llvm/Support/raw_ostream.h"

using namespace mlir;

namespace {

enum class Emit { MLIR, Plan, PlanText };

llvm::cl::opt<Emit> emitKind(
    "emit", llvm::cl::desc("What to write"), llvm::cl::init(Emit::MLIR),
    llvm::cl::values(clEnumValN(Emit::MLIR, "mlir", "the IR after the passes (default)"),
                     clEnumValN(Emit::Plan, "plan", "a runtime plan (binary protobuf)"),
                     clEnumValN(Emit::PlanText, "plan-text",
                                "a runtime plan in protobuf text format")));

llvm::cl::opt<std::string> reportPath(
    "amp-report", llvm::cl::desc("Write autocast's decisions as JSON to this file"),
    llvm::cl::value_desc("file"), llvm::cl::init(""));
llvm::cl::opt<std::string> reportDotPath(
    "amp-report-dot",
    llvm::cl::desc("Write the training step as Graphviz, coloured by precision"),
    llvm::cl::value_desc("file"), llvm::cl::init(""));

llvm::cl::opt<bool> planStats(
    "plan-stats",
    llvm::cl::desc("With --emit=plan or plan-text: print each function's ops, then the plan's "
                   "size, state tensors, and per program its kernels by op and its arena "
                   "(to stderr)"),
    llvm::cl::init(false));

llvm::cl::opt<int64_t> onnxMaxNodes(
    "onnx-max-nodes",
    llvm::cl::desc("Refuse ONNX graphs with more nodes than this (an untrusted model's size "
                   "limit; default 4194304)"),
    llvm::cl::value_desc("N"), llvm::cl::init(amp::OnnxImportOptions().maxNodes));

llvm::cl::list<std::string> onnxFrozen(
    "onnx-frozen",
    llvm::cl::desc("Float initializers (names or globs, comma-separated) that are constants, "
                   "not trained: buffers such as attention masks. Initializers holding inf or "
                   "NaN are constants anyway"),
    llvm::cl::value_desc("NAME"), llvm::cl::CommaSeparated);

llvm::cl::opt<bool> listOnnxOps(
    "list-onnx-ops",
    llvm::cl::desc("List the ONNX ops the importer handles (op, domain, op sets, limits)"),
    llvm::cl::init(false));

/// The importer's registry as a table, one op per line.
void printOnnxOps(raw_ostream &os) {
  os << llvm::formatv("{0,-24} {1,-8} {2,-8} {3}\n", "op", "domain", "opsets", "limits");
  for (const amp::OnnxOpSupport &op : amp::supportedOnnxOps()) {
    int64_t until = op.untilVersion ? op.untilVersion : amp::kMaxOnnxOpset;
    std::string line = llvm::formatv("{0,-24} {1,-8} {2,-8} {3}", op.opType,
                                     op.domain.empty() ? "ai.onnx" : op.domain,
                                     llvm::formatv("{0}-{1}", op.sinceVersion, until).str(),
                                     op.limits);
    os << StringRef(line).rtrim() << "\n";
  }
}

/// Writes what `write` produces to `path` atomically: into a temporary
/// file, renamed into place only when `write` succeeds.
LogicalResult writeFile(StringRef path, llvm::function_ref<LogicalResult(raw_ostream &)> write) {
  bool produced = true;
  if (auto error = llvm::writeToOutput(path, [&](llvm::raw_ostream &out) -> llvm::Error {
        produced = succeeded(write(out));
        // Flushed here, and a write error taken off the stream: what stays
        // buffered, or an error left set, would be flushed or reported by
        // the stream's destructor after writeToOutput closed or kept the
        // file (a fatal error; a truncated file renamed into place).
        // (writeToOutput writes through a raw_fd_ostream, a temporary
        // file's or stdout's, except for /dev/null.)
        out.flush();
        if (path != "/dev/null") {
          auto &file = static_cast<llvm::raw_fd_ostream &>(out);
          if (std::error_code code = file.error()) {
            file.clear_error();
            return llvm::errorCodeToError(code);
          }
        }
        if (!produced)
          return llvm::createStringError("its contents could not be produced");
        return llvm::Error::success();
      })) {
    if (!produced) { // `write` has said why
      llvm::consumeError(std::move(error));
      return failure();
    }
    llvm::errs() << "error: cannot write " << path << ": " << llvm::toString(std::move(error))
                 << "\n";
    return failure();
  }
  return success();
}

LogicalResult writeFile(StringRef path, StringRef text) {
  return writeFile(path, [&](raw_ostream &out) {
    out << text;
    return success();
  });
}

/// Writes the reports asked for (their text made beforehand).
LogicalResult writeReports(StringRef report, StringRef reportDot) {
  if (!reportPath.empty() && failed(writeFile(reportPath, report)))
    return failure();
  if (!reportDotPath.empty() && failed(writeFile(reportDotPath, reportDot)))
    return failure();
  return success();
}

/// What `produce` writes, as a string (empty on failure).
FailureOr<std::string> produceText(llvm::function_ref<LogicalResult(raw_ostream &)> produce) {
  std::string text;
  llvm::raw_string_ostream os(text);
  if (failed(produce(os)))
    return failure();
  return text;
}

/// An ONNX model: named *.onnx (any case), or a file whose first byte is
/// 0x08, the tag of ModelProto's ir_version, which exporters write first
/// (MLIR text never starts with that control character). "-" (stdin) is
/// read as MLIR.
bool isOnnxModel(StringRef path) {
  std::string folder;
  if (path.ends_with_insensitive(".onnx") || amp::findOrtArtifactSet(path, folder))
    return true;
  if (path == "-")
    return false;
  std::ifstream file(path.str(), std::ios::binary);
  return file && file.get() == 0x08;
}

/// The custom path: import or parse, run the pipeline, emit. Each stage is
/// a timer of --mlir-timing (the pipeline's passes nest under it).
LogicalResult compile(StringRef input, bool onnx, StringRef output, DialectRegistry &registry,
                      const MlirOptMainConfig &config) {
  MLIRContext context(registry);
  context.loadAllAvailableDialects();
  llvm::SourceMgr sourceMgr;
  SourceMgrDiagnosticHandler diagnostics(sourceMgr, &context);
  DefaultTimingManager timingManager;
  applyDefaultTimingManagerCLOptions(timingManager);
  TimingScope timing = timingManager.getRootScope();
  OwningOpRef<ModuleOp> module;
  if (onnx) {
    TimingScope stage = timing.nest("ONNX import");
    amp::OnnxImportOptions importOptions;
    importOptions.maxNodes = onnxMaxNodes;
    importOptions.frozen.assign(onnxFrozen.begin(), onnxFrozen.end());
    std::string artifacts;
    module = amp::findOrtArtifactSet(input, artifacts)
                 ? amp::importOrtArtifacts(artifacts, &context, importOptions)
                 : amp::importOnnxFile(input, &context, importOptions);
  } else {
    TimingScope stage = timing.nest("parsing");
    std::string error;
    auto file = openInputFile(input, &error);
    if (!file) {
      llvm::errs() << "error: " << error << "\n";
      return failure();
    }
    sourceMgr.AddNewSourceBuffer(std::move(file), SMLoc());
    module = parseSourceFile<ModuleOp>(sourceMgr, &context);
  }
  if (!module)
    return failure();

  PassManager pm(&context, ModuleOp::getOperationName());
  pm.enableVerifier(config.shouldVerifyPasses()); // --verify-each, as in mlir-opt
  pm.enableTiming(timing);
  if (failed(applyPassManagerCLOptions(pm)) || failed(config.setupPassPipeline(pm)) ||
      failed(pm.run(*module)))
    return failure();

  // Nothing is written before everything is produced, so a failure writes
  // nothing (the plan goes to a temporary file renamed into place; the
  // reports follow the output). The reports read the IR, so they are made
  // first: the lowering releases the training step's IR as it goes.
  FailureOr<std::string> report = std::string(), reportDot = std::string();
  if (!reportPath.empty())
    report = produceText([&](raw_ostream &out) { return amp::writePrecisionReport(*module, out); });
  if (!reportDotPath.empty())
    reportDot = produceText([&](raw_ostream &out) { return amp::writePrecisionDot(*module, out); });
  if (failed(report) || failed(reportDot))
    return failure();
  if (emitKind == Emit::MLIR) {
    std::string text;
    {
      TimingScope stage = timing.nest("printing");
      llvm::raw_string_ostream os(text);
      module->print(os);
      os << "\n";
    }
    if (failed(writeFile(output, text)))
      return failure();
    return writeReports(*report, *reportDot);
  }
  if (planStats)
    for (auto func : module->getOps<func::FuncOp>()) {
      int64_t ops = 0;
      func.walk([&](Operation *) { ++ops; });
      llvm::errs() << "@" << func.getName() << ": " << ops - 1 << " ops in the IR\n";
    }
  // The plan is written part by part as it is lowered (the parts follow
  // each other in the file; see lowerToPlanInParts), so the IR and the whole
  // plan are never held together. A failure leaves no output: the file is
  // written to a temporary renamed into place, and stdout gets the plan only
  // once all of it is made.
  amp::PlanStatistics statistics;
  int64_t bytes = 0;
  auto lowerAndWrite = [&](raw_ostream &out) -> LogicalResult {
    TimingScope stage = timing.nest("lowering to a plan");
    return amp::lowerToPlanInParts(
        *module, input,
        [&](const amp::PlanPart &part) -> LogicalResult {
          int64_t partBytes = 0;
          if (failed(amp::serializePlanPart(part, emitKind == Emit::PlanText, out, &partBytes)))
            return failure();
          bytes += partBytes;
          if (bytes > std::numeric_limits<int>::max()) {
            llvm::errs() << "error: the plan is over 2 GB, protobuf's limit for a message\n";
            return failure();
          }
          if (planStats)
            statistics.add(part);
          return success();
        },
        &stage, {/*encodeKernels=*/emitKind == Emit::Plan, /*releaseTrainStep=*/true});
  };
  if (output == "-") {
    FailureOr<std::string> plan = produceText(lowerAndWrite);
    if (failed(plan) || failed(writeFile(output, *plan)))
      return failure();
  } else if (failed(writeFile(output, lowerAndWrite))) {
    return failure();
  }
  module = nullptr;
  if (planStats)
    statistics.print(bytes, llvm::errs());
  return writeReports(*report, *reportDot);
}

} // namespace

int main(int argc, char **argv) {
  llvm::InitLLVM init(argc, argv);
  DialectRegistry registry;
  registry.insert<amp::AmpDialect, func::FuncDialect>();
  amp::registerAmpPasses();
  amp::registerAmpPipeline();
  registerCanonicalizerPass();
  registerCSEPass();

  llvm::cl::AddExtraVersionPrinter(
      [](raw_ostream &os) { os << "amp-opt (AMP-MLIR) " << AMP_VERSION << "\n"; });
  auto [input, output] = registerAndParseCLIOptions(
      argc, argv, "amp-opt: ONNX/amp IR -> training step -> runtime plan\n", registry);
  MlirOptMainConfig config = MlirOptMainConfig::createFromCLOptions();
  if (listOnnxOps) {
    printOnnxOps(llvm::outs());
    return 0;
  }

  bool onnx = isOnnxModel(input);
  if (onnx || emitKind != Emit::MLIR || !reportPath.empty() || !reportDotPath.empty())
    return failed(compile(input, onnx, output, registry, config)) ? 1 : 0;

  std::string error;
  auto file = openInputFile(input, &error);
  if (!file) {
    llvm::errs() << "error: " << error << "\n";
    return 1;
  }
  auto out = openOutputFile(output, &error);
  if (!out) {
    llvm::errs() << "error: " << error << "\n";
    return 1;
  }
  if (failed(MlirOptMain(out->os(), std::move(file), registry, config)))
    return 1;
  out->keep();
  return 0;
}
