//===- CpuConversionsTest.cpp - vector conversions equal the scalar ones --===//
//
// The AVX2/F16C conversions must give the scalar functions' bits for every
// input (NaN payloads, subnormals, overflow, ties), whatever the array's
// length (the tails run scalar).

#include "CpuConversions.h"
#include "amprt/FloatConversions.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <vector>

using namespace amprt;

namespace {

/// Every 16-bit pattern, in an array whose length leaves a scalar tail.
std::vector<uint16_t> everyHalf() {
  std::vector<uint16_t> bits(65536 + 5);
  for (size_t i = 0; i < bits.size(); ++i)
    bits[i] = static_cast<uint16_t>(i);
  return bits;
}

/// A spread of float patterns (a prime stride over all 2^32) plus the
/// boundaries where rounding changes: ties, f16 overflow and subnormals,
/// NaNs with payloads, signed zeros and infinities.
std::vector<float> floatSamples() {
  std::vector<uint32_t> bits;
  for (uint64_t b = 0; b < (1ull << 32); b += 4099)
    bits.push_back(static_cast<uint32_t>(b));
  for (uint32_t center : {0x477fe000u, 0x477ff000u, 0x47800000u, 0x38800000u, 0x33000000u,
                          0x33800000u, 0x387fc000u, 0x3f808000u, 0x3f818000u, 0x7f7f8000u,
                          0x7f800000u, 0x7fc00000u, 0x00000000u, 0x00800000u})
    for (uint32_t sign : {0u, 0x80000000u})
      for (int delta = -40; delta <= 40; ++delta)
        bits.push_back((center + delta) ^ sign);
  for (uint32_t nan : {0x7f800001u, 0x7fbfffffu, 0x7fc00001u, 0xffc12345u, 0x7fffffffu})
    bits.push_back(nan);
  std::vector<float> values;
  for (uint32_t b : bits)
    values.push_back(math::bitsFloat(b));
  values.resize(values.size() / 8 * 8 + 3); // leave a scalar tail
  return values;
}

TEST(CpuConversions, WideningEqualsScalarForEveryPattern) {
  std::vector<uint16_t> bits = everyHalf();
  std::vector<float> got(bits.size());
  for (DType type : {DType::BF16, DType::F16}) {
    cpu::widen(type, bits.data(), got.data(), static_cast<int64_t>(bits.size()));
    for (size_t i = 0; i < bits.size(); ++i) {
      float expected = type == DType::BF16 ? math::bf16ToFloat(bits[i]) : math::f16ToFloat(bits[i]);
      ASSERT_EQ(math::floatBits(got[i]), math::floatBits(expected))
          << dtypeName(type) << " pattern 0x" << std::hex << bits[i];
    }
  }
}

TEST(CpuConversions, NarrowingAndRoundingEqualScalar) {
  std::vector<float> values = floatSamples();
  std::vector<uint16_t> narrowed(values.size());
  for (DType type : {DType::BF16, DType::F16}) {
    cpu::narrow(type, values.data(), narrowed.data(), static_cast<int64_t>(values.size()));
    std::vector<float> rounded = values;
    cpu::roundThrough(type, rounded.data(), static_cast<int64_t>(rounded.size()));
    for (size_t i = 0; i < values.size(); ++i) {
      uint16_t expected =
          type == DType::BF16 ? math::floatToBf16(values[i]) : math::floatToF16(values[i]);
      ASSERT_EQ(narrowed[i], expected) << dtypeName(type) << " of 0x" << std::hex
                                       << math::floatBits(values[i]);
      float back = type == DType::BF16 ? math::bf16ToFloat(expected) : math::f16ToFloat(expected);
      ASSERT_EQ(math::floatBits(rounded[i]), math::floatBits(back))
          << dtypeName(type) << " round trip of 0x" << std::hex << math::floatBits(values[i]);
    }
  }
}

TEST(CpuConversions, F32IsACopy) {
  std::vector<float> values = floatSamples(), copy(values.size());
  cpu::narrow(DType::F32, values.data(), copy.data(), static_cast<int64_t>(values.size()));
  for (size_t i = 0; i < values.size(); ++i)
    ASSERT_EQ(math::floatBits(copy[i]), math::floatBits(values[i]));
}

} // namespace
