//===- LegalizePrecision.cpp - casts a backend needs ----------------------===//
//
// Policy (autocast) decides what may run in low precision; legality makes the
// result runnable, as XLA's float normalization does, for a backend given by
// its capabilities:
//   any       a plan every backend runs (the default)
//   cpu       the CPU backend without native low-precision GEMMs (AVX2)
//   cpu-bf16  the CPU backend with native BF16 GEMMs (AVX-512 BF16, AMX)
//   cuda      the CUDA backend
// The facts it reads are in each op's ODS definition: Amp_F32KernelsOnly
// (every backend's kernels take f32 only: losses, optimizer updates),
// Amp_F32ResultKernels (kernels read any float type, write f32: the
// reductions) and emulatesOn (the backends that run a low type only by
// emulation). Such an op's low-precision operands are widened (exactly:
// every bf16/f16 value is an f32; not for Amp_F32ResultKernels, which widen
// as they load), and a low result is computed in f32 and rounded once after
// the op, which is what the runtime's emulation does, so for a named
// backend the IR shows the precision the hardware computes in.
//
//===----------------------------------------------------------------------===//

#include "amp/Transforms/CastUtils.h"
#include "amp/Transforms/Passes.h"

namespace mlir::amp {
#define GEN_PASS_DEF_AMPLEGALIZEPRECISION
#include "amp/Transforms/Passes.h.inc"
} // namespace mlir::amp

using namespace mlir;
using namespace mlir::amp;

namespace {

struct LegalizePrecisionPass
    : public amp::impl::AmpLegalizePrecisionBase<LegalizePrecisionPass> {
  using AmpLegalizePrecisionBase::AmpLegalizePrecisionBase;

  void runOnOperation() override {
    if (!llvm::is_contained({"any", "cpu", "cpu-bf16", "cuda"}, StringRef(backend))) {
      mlir::emitError(getOperation().getLoc())
          << "amp-legalize-precision: unknown backend '" << backend
          << "' (expected any, cpu, cpu-bf16 or cuda)";
      return signalPassFailure();
    }
    Type f32 = Float32Type::get(&getContext());
    for (auto func : getOperation().getOps<func::FuncOp>()) {
      CastCache casts;
      func.walk([&](Operation *op) {
        std::string rule = legalityRule(op);
        if (rule.empty())
          return;
        // The op's own decision record says it too (reports read it).
        if (auto decided = op->getAttrOfType<StringAttr>("amp.rule"))
          op->setAttr("amp.rule",
                      StringAttr::get(op->getContext(), decided.getValue() + "; " + rule));
        if (!op->hasTrait<F32ResultKernels>())
          for (OpOperand &operand : op->getOpOperands())
            if (isFloatTensor(operand.get().getType()))
              operand.set(casts.get(operand.get(), f32, op, rule));
        // A result a policy made low is computed in f32 and rounded once for
        // its readers (what a low-precision kernel with f32 accumulation does).
        for (OpResult result : op->getResults()) {
          auto type = dyn_cast<RankedTensorType>(result.getType());
          if (!type || !isFloatTensor(type) || type.getElementType() == f32)
            continue;
          result.setType(RankedTensorType::get(type.getShape(), f32));
          OpBuilder builder(op->getContext());
          builder.setInsertionPointAfter(op);
          auto narrow = CastOp::create(builder, op->getLoc(), type, result);
          narrow->setAttr("amp.rule", builder.getStringAttr(rule));
          result.replaceAllUsesExcept(narrow, narrow);
        }
      });
    }
  }

  /// Why `op` must compute in f32 on this backend (the casts' amp.rule), or
  /// empty when it runs as it is.
  std::string legalityRule(Operation *op) {
    std::string name = op->getName().getStringRef().str();
    if (op->hasTrait<F32KernelsOnly>()) // declared in ODS
      return "legality: every backend runs '" + name + "' in f32";
    if (op->hasTrait<F32ResultKernels>()) // declared in ODS
      return llvm::any_of(op->getResultTypes(),
                          [](Type type) {
                            return isFloatTensor(type) &&
                                   !cast<RankedTensorType>(type).getElementType().isF32();
                          })
                 ? "legality: every backend writes '" + name + "' in f32"
                 : "";
    auto precision = dyn_cast<PrecisionOpInterface>(op);
    if (!precision || backend == "any")
      return "";
    for (Type type : op->getOperandTypes())
      if (auto tensor = dyn_cast<RankedTensorType>(type);
          tensor && precision.emulatesOn(tensor.getElementType(), backend)) {
        std::string element;
        llvm::raw_string_ostream(element) << tensor.getElementType();
        return "legality: backend '" + backend + "' emulates '" + name + "' on " + element +
               " (computes in f32)";
      }
    return "";
  }
};

} // namespace
