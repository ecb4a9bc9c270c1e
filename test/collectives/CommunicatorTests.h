//===- CommunicatorTests.h - checks any Communicator must pass --*- C++ -*-===//
//
// Shared by the MPI (host memory) and NCCL (device memory) tests: each rank
// fills buffers from its rank, the communicator reduces them, and every
// element is compared with the reduction computed here, in the rule the
// interface documents (f32 sums exact for these values, 16-bit sums widened
// to f32 and rounded once per combine, a mean times 1 / size).
//
//===----------------------------------------------------------------------===//
#ifndef AMP_TEST_COMMUNICATORTESTS_H
#define AMP_TEST_COMMUNICATORTESTS_H

#include "amprt/Communicator.h"
#include "amprt/FloatConversions.h"
#include "amprt/Session.h"

#include <cmath>
#include <cstdint>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

namespace amptest {

using amprt::Communicator;
using amprt::DType;

/// Rank r's value at element i: small multiples of 1/8, exact in bf16.
inline float valueOf(int rank, int64_t i) {
  return static_cast<float>((i % 17) - 8 + rank * 3) / 8.0f;
}

inline float widen(DType type, uint16_t word) {
  return type == DType::BF16 ? amprt::math::bf16ToFloat(word) : amprt::math::f16ToFloat(word);
}
inline uint16_t narrow(DType type, float value) {
  return type == DType::BF16 ? amprt::math::floatToBf16(value) : amprt::math::floatToF16(value);
}

/// The elements as this rank holds them before the reduction, as bytes.
inline std::vector<char> rankBuffer(DType type, int rank, int64_t count) {
  std::vector<char> bytes(count * amprt::dtypeSize(type));
  for (int64_t i = 0; i < count; ++i) {
    float v = valueOf(rank, i);
    if (type == DType::F32)
      std::memcpy(bytes.data() + 4 * i, &v, 4);
    else {
      uint16_t w = narrow(type, v);
      std::memcpy(bytes.data() + 2 * i, &w, 2);
    }
  }
  return bytes;
}

/// Element i of the expected result, as f32. The values are small
/// multiples of 1/8, so every partial sum is exact in all three types and
/// the order of combining does not matter.
inline float expected(Communicator::Reduction reduction, int size, int64_t i) {
  float sum = 0, max = -INFINITY;
  for (int r = 0; r < size; ++r) {
    sum += valueOf(r, i);
    max = std::fmax(max, valueOf(r, i));
  }
  if (reduction == Communicator::Reduction::Max)
    return max;
  return reduction == Communicator::Reduction::Mean ? sum * (1.0f / size) : sum;
}

inline float elementOf(DType type, const std::vector<char> &bytes, int64_t i) {
  if (type == DType::F32) {
    float v;
    std::memcpy(&v, bytes.data() + 4 * i, 4);
    return v;
  }
  uint16_t w;
  std::memcpy(&w, bytes.data() + 2 * i, 2);
  return widen(type, w);
}

/// Runs `reduce` (in place on a buffer of this rank's values) for every
/// type and reduction the interface offers; returns the first mismatch.
inline std::string checkReductions(
    const Communicator &communicator,
    const std::function<amprt::Status(std::vector<char> &, int64_t, DType,
                                      Communicator::Reduction)> &reduce) {
  const int64_t count = 1000;
  for (DType type : {DType::F32, DType::BF16, DType::F16})
    for (auto reduction : {Communicator::Reduction::Sum, Communicator::Reduction::Mean,
                           Communicator::Reduction::Max}) {
      if (reduction == Communicator::Reduction::Max && type != DType::F32)
        continue;
      std::vector<char> buffer = rankBuffer(type, communicator.rank(), count);
      if (amprt::Status s = reduce(buffer, count, type, reduction); !s.isOk())
        return s.message();
      for (int64_t i = 0; i < count; ++i) {
        float want = expected(reduction, communicator.size(), i);
        if (type != DType::F32)
          want = widen(type, narrow(type, want));
        float got = elementOf(type, buffer, i);
        if (got != want)
          return std::string(amprt::dtypeName(type)) + " reduction " +
                 std::to_string(static_cast<int>(reduction)) + ": element " + std::to_string(i) +
                 " is " + std::to_string(got) + ", expected " + std::to_string(want);
      }
    }
  return "";
}

} // namespace amptest

#endif // AMP_TEST_COMMUNICATORTESTS_H
