//===- PlanFormat.h - what the compiler and the runtime agree on -*- C++ -*-===//
//
// Constants both sides of the plan use, defined once: the compiler (MLIR,
// lib/Conversion) writes plans within them, the runtime refuses plans that
// are not. Plain C++ (the CUDA kernels include it too).
//
//===----------------------------------------------------------------------===//
#ifndef AMPRT_PLANFORMAT_H
#define AMPRT_PLANFORMAT_H

#include <cstddef>
#include <cstdint>
#include <string>

namespace amprt {

/// plan.proto's format_version: bumped on any change old runtimes misread.
constexpr uint32_t kPlanFormatVersion = 1;

namespace fused {
/// Limits of one "fused_elementwise" kernel (FusedElementwise.h): the
/// lowering's fusion stays within them, the runtime checks them.
constexpr int kMaxInputs = 8, kMaxSteps = 16, kMaxOutputs = 4, kMaxRank = 6;
} // namespace fused

/// Limits on every tensor, checked before anything is allocated: by the
/// importer on ONNX values and initializers, by the plan loader on buffers.
/// 2^40 elements (4 TiB of FP32) is beyond any one device and still leaves
/// byte counts and offsets far from int64 overflow.
constexpr size_t kMaxTensorRank = 16;
constexpr int64_t kMaxTensorElements = int64_t{1} << 40;

/// Limits on what a graph and a plan may hold beside their tensors, so that
/// a small file cannot make the importer or the runtime build millions of
/// ops or copy huge names into every message and table. Names (of nodes,
/// values, tensors, states, inputs and outputs) beyond 4 KiB are not names.
/// 2^22 ONNX nodes is ten times the largest step the compile-time goals
/// target (issue 13); a plan program, after autodiff and the optimizer, may
/// hold 4x as many kernels and buffers.
constexpr size_t kMaxNameLength = 4096;
constexpr int64_t kMaxModelNodes = int64_t{1} << 22;
constexpr int64_t kMaxProgramKernels = int64_t{1} << 24;

/// "" when `name` is within kMaxNameLength, else what is wrong with it
/// ("5000 bytes, above the limit of 4096"); the name itself is left out of
/// messages.
inline std::string beyondNameLimit(const std::string &name) {
  if (name.size() <= kMaxNameLength)
    return "";
  return std::to_string(name.size()) + " bytes, above the limit of " +
         std::to_string(kMaxNameLength);
}

/// Every kernel attribute (a double) is finite and within +-2^62, so that
/// the ones kernels read as integers convert without overflow.
constexpr double kMaxAttributeMagnitude = 4611686018427387904.0; // 2^62

/// The element count of a shape, or -1 when a dimension is negative or the
/// count exceeds kMaxTensorElements (computed without overflowing).
inline int64_t boundedElementCount(const int64_t *dims, size_t rank) {
  bool empty = false;
  for (size_t i = 0; i < rank; ++i) {
    if (dims[i] < 0 || dims[i] > kMaxTensorElements)
      return -1;
    empty |= dims[i] == 0;
  }
  if (empty)
    return 0;
  int64_t count = 1;
  for (size_t i = 0; i < rank; ++i) {
    if (dims[i] > kMaxTensorElements / count)
      return -1;
    count *= dims[i];
  }
  return count;
}

/// For a shape without negative dimensions: "" when within the limits, else
/// what is beyond them ("rank 17, above the limit of 16", "more elements
/// than the limit of 1099511627776"), for the caller's message.
inline std::string beyondTensorLimits(const int64_t *dims, size_t rank) {
  if (rank > kMaxTensorRank)
    return "rank " + std::to_string(rank) + ", above the limit of " +
           std::to_string(kMaxTensorRank);
  if (boundedElementCount(dims, rank) < 0)
    return "more elements than the limit of " + std::to_string(kMaxTensorElements);
  return "";
}

} // namespace amprt

#endif // AMPRT_PLANFORMAT_H
