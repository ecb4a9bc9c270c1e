//===- LegalizePrecision.cpp - casts a backend needs ----------------------===//
//
// Policy (autocast) decides what may run in low precision; legality makes the
// result runnable, as XLA's float normalization does. Ops whose runtime
// kernels run in f32 only say so in ODS (Amp_F32KernelsOnly: reductions,
// losses, exp/log/softmax, optimizer updates); their low-precision inputs are
// widened here (exactly: every bf16/f16 value is an f32), and a low result is
// computed in f32 and rounded once after the op.
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
    if (backend != "cpu") {
      mlir::emitError(getOperation().getLoc()) << "amp-legalize-precision: unknown backend '" << backend
                                 << "' (expected cpu)";
      return signalPassFailure();
    }
    Type f32 = Float32Type::get(&getContext());
    for (auto func : getOperation().getOps<func::FuncOp>()) {
      CastCache casts;
      func.walk([&](Operation *op) {
        if (!op->hasTrait<F32KernelsOnly>()) // declared in ODS
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
