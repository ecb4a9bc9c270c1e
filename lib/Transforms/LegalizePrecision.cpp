//===- LegalizePrecision.cpp - casts a backend needs ----------------------===//
//
// Policy (autocast) decides what may run in low precision; legality makes the
// result runnable on one backend, as XLA's float normalization does. The CPU
// runtime's reductions and loss kernels run in f32 only, so low-precision
// inputs to them are widened here (exactly: every bf16/f16 value is an f32),
// and a low result is computed in f32 and rounded once after the op.
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

/// Ops whose CPU kernels take only f32 float operands.
bool cpuNeedsF32Operands(Operation *op) {
  return isa<ReduceSumOp, SoftmaxCrossEntropyOp, SoftmaxCrossEntropyGradOp, ExpOp, LogOp,
             SoftmaxOp, AdamWUpdateOp, SgdUpdateOp>(op);
}

struct LegalizePrecisionPass
    : public amp::impl::AmpLegalizePrecisionBase<LegalizePrecisionPass> {
  using AmpLegalizePrecisionBase::AmpLegalizePrecisionBase;

  void runOnOperation() override {
    if (backend != "cpu") {
      mlir::emitError(getOperation().getLoc()) << "amp-legalize-precision: unknown backend '" << backend
                                 << "' (expected cpu)";
      return signalPassFailure();
    }
    Type f32 = Float32Type::get(&getContext());
    for (auto func : getOperation().getOps<func::FuncOp>()) {
      CastCache casts;
      func.walk([&](Operation *op) {
        if (!cpuNeedsF32Operands(op))
          return;
        std::string rule = "legality: the CPU backend runs '" +
                           op->getName().getStringRef().str() + "' in f32";
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
};

} // namespace
