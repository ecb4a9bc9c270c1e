//===- AmpPrecision.cpp - default precision classes of amp ops ------------===//
//
// PrecisionOpInterface overrides: compute-bound ops run in the low type,
// numerically sensitive ops stay FP32. Every other op follows its inputs
// (the interface's default). docs/precision-policies.md explains each choice
// next to PyTorch autocast and TensorFlow's mixed-precision lists.
//
//===----------------------------------------------------------------------===//

#include "dialects/Amp/AmpOps.h"

using namespace mlir;
using namespace mlir::amp;

PrecisionClass MatmulOp::getPrecisionClass() { return PrecisionClass::Low; }
StringRef MatmulOp::getPrecisionReason() {
  return "compute-bound GEMM: low-precision operands, FP32 accumulation";
}
bool MatmulOp::canWidenResult() { return true; }

PrecisionClass ReduceSumOp::getPrecisionClass() { return PrecisionClass::FP32; }
StringRef ReduceSumOp::getPrecisionReason() {
  return "reduction: accumulates and stores in FP32";
}
bool ReduceSumOp::acceptsLowPrecisionInputs() { return true; }

PrecisionClass SoftmaxCrossEntropyOp::getPrecisionClass() { return PrecisionClass::FP32; }
StringRef SoftmaxCrossEntropyOp::getPrecisionReason() {
  return "loss: log-softmax (exp, log, sum) in FP32";
}
bool SoftmaxCrossEntropyOp::acceptsLowPrecisionInputs() { return true; }

PrecisionClass SoftmaxCrossEntropyGradOp::getPrecisionClass() {
  return PrecisionClass::FP32;
}
StringRef SoftmaxCrossEntropyGradOp::getPrecisionReason() {
  return "loss gradient: softmax in FP32";
}
bool SoftmaxCrossEntropyGradOp::acceptsLowPrecisionInputs() { return true; }

PrecisionClass SgdUpdateOp::getPrecisionClass() { return PrecisionClass::FP32; }
StringRef SgdUpdateOp::getPrecisionReason() {
  return "optimizer update: FP32 master weights and state";
}

PrecisionClass AdamWUpdateOp::getPrecisionClass() { return PrecisionClass::FP32; }
StringRef AdamWUpdateOp::getPrecisionReason() {
  return "optimizer update: FP32 master weights and state";
}

PrecisionClass IncrementOp::getPrecisionClass() { return PrecisionClass::FP32; }
StringRef IncrementOp::getPrecisionReason() { return "optimizer step counter"; }

PrecisionClass ExpOp::getPrecisionClass() { return PrecisionClass::FP32; }
StringRef ExpOp::getPrecisionReason() { return "exp: overflows low precision; FP32"; }
bool ExpOp::acceptsLowPrecisionInputs() { return true; }

PrecisionClass LogOp::getPrecisionClass() { return PrecisionClass::FP32; }
StringRef LogOp::getPrecisionReason() {
  return "log: tiny inputs underflow in low precision; FP32";
}
bool LogOp::acceptsLowPrecisionInputs() { return true; }

PrecisionClass SoftmaxOp::getPrecisionClass() { return PrecisionClass::FP32; }
StringRef SoftmaxOp::getPrecisionReason() { return "softmax: exp and sum in FP32"; }
bool SoftmaxOp::acceptsLowPrecisionInputs() { return true; }

PrecisionClass UnscaleOp::getPrecisionClass() { return PrecisionClass::FP32; }
StringRef UnscaleOp::getPrecisionReason() {
  return "loss scaling: gradients are unscaled in FP32";
}
bool UnscaleOp::acceptsLowPrecisionInputs() { return true; }

PrecisionClass FoundNonFiniteOp::getPrecisionClass() { return PrecisionClass::FP32; }
StringRef FoundNonFiniteOp::getPrecisionReason() {
  return "loss scaling: one fused inf/NaN check over all gradients";
}
bool FoundNonFiniteOp::acceptsLowPrecisionInputs() { return true; }

PrecisionClass GlobalNormOp::getPrecisionClass() { return PrecisionClass::FP32; }
StringRef GlobalNormOp::getPrecisionReason() { return "gradient norm: a long sum, in FP32"; }
bool GlobalNormOp::acceptsLowPrecisionInputs() { return true; }

PrecisionClass ClipCoefficientOp::getPrecisionClass() { return PrecisionClass::FP32; }
StringRef ClipCoefficientOp::getPrecisionReason() { return "gradient clipping factor"; }

PrecisionClass UpdateLossScaleOp::getPrecisionClass() { return PrecisionClass::FP32; }
StringRef UpdateLossScaleOp::getPrecisionReason() { return "loss-scale state"; }

PrecisionClass AccumulationStepOp::getPrecisionClass() { return PrecisionClass::FP32; }
StringRef AccumulationStepOp::getPrecisionReason() { return "micro-batch counter"; }

PrecisionClass ZeroIfOp::getPrecisionClass() { return PrecisionClass::FP32; }
StringRef ZeroIfOp::getPrecisionReason() {
  return "gradient accumulation buffers are FP32";
}
