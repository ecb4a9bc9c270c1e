//===- PlanFormat.h - what the compiler and the runtime agree on -*- C++ -*-===//
//
// Constants both sides of the plan use, defined once: the compiler (MLIR,
// lib/Conversion) writes plans within them, the runtime refuses plans that
// are not. Plain C++ (the CUDA kernels include it too).
//
//===----------------------------------------------------------------------===//
#ifndef AMPRT_PLANFORMAT_H
#define AMPRT_PLANFORMAT_H

#include <cstdint>

namespace amprt {

/// plan.proto's format_version: bumped on any change old runtimes misread.
constexpr uint32_t kPlanFormatVersion = 1;

namespace fused {
/// Limits of one "fused_elementwise" kernel (FusedElementwise.h): the
/// lowering's fusion stays within them, the runtime checks them.
constexpr int kMaxInputs = 8, kMaxSteps = 16, kMaxOutputs = 4, kMaxRank = 6;
} // namespace fused

} // namespace amprt

#endif // AMPRT_PLANFORMAT_H
