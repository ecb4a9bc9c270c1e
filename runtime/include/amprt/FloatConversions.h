//===- FloatConversions.h - exact f32 <-> bf16/f16 conversions --*- C++ -*-===//
//
// Round-to-nearest-even conversions shared by the kernels (KernelMath.h),
// the tools (ONNX export) and, later, the device backend.
//
//===----------------------------------------------------------------------===//
#ifndef AMPRT_FLOATCONVERSIONS_H
#define AMPRT_FLOATCONVERSIONS_H

#include <cstdint>
#include <cstring>

#if defined(__CUDACC__)
#define AMPRT_HD __host__ __device__
#else
#define AMPRT_HD
#endif

namespace amprt::math {

//===----------------------------------------------------------------------===//
// Low-precision storage: exact round-to-nearest-even conversions
//===----------------------------------------------------------------------===//

AMPRT_HD inline uint32_t floatBits(float f) {
  uint32_t bits;
  std::memcpy(&bits, &f, sizeof(bits));
  return bits;
}
AMPRT_HD inline float bitsFloat(uint32_t bits) {
  float f;
  std::memcpy(&f, &bits, sizeof(f));
  return f;
}

/// bfloat16 is the top half of a float32; rounding adds 0x7fff plus the
/// lowest kept bit (ties to even). NaNs stay NaN (quiet).
AMPRT_HD inline uint16_t floatToBf16(float f) {
  uint32_t bits = floatBits(f);
  if ((bits & 0x7fffffffu) > 0x7f800000u)
    return static_cast<uint16_t>((bits >> 16) | 0x0040u);
  bits += 0x7fffu + ((bits >> 16) & 1u);
  return static_cast<uint16_t>(bits >> 16);
}
AMPRT_HD inline float bf16ToFloat(uint16_t h) { return bitsFloat(static_cast<uint32_t>(h) << 16); }

/// IEEE binary16 with subnormals, overflow to infinity and ties to even.
AMPRT_HD inline uint16_t floatToF16(float f) {
  uint32_t bits = floatBits(f);
  uint16_t sign = static_cast<uint16_t>((bits >> 16) & 0x8000u);
  uint32_t magnitude = bits & 0x7fffffffu;
  if (magnitude > 0x7f800000u) // NaN
    return sign | 0x7e00u;
  if (magnitude >= 0x477ff000u) // rounds to >= 65520: infinity
    return sign | 0x7c00u;
  if (magnitude < 0x38800000u) { // below the smallest normal half (2^-14)
    if (magnitude < 0x33000000u) // below half the smallest subnormal (2^-25)
      return sign;
    // Subnormal: shift the full significand into place, rounding to even.
    uint32_t mantissa = (magnitude & 0x007fffffu) | 0x00800000u;
    int shift = 126 - static_cast<int>(magnitude >> 23); // 14..24
    uint32_t half = mantissa >> shift;
    uint32_t rest = mantissa & ((1u << shift) - 1u);
    uint32_t midpoint = 1u << (shift - 1);
    if (rest > midpoint || (rest == midpoint && (half & 1u)))
      ++half;
    return sign | static_cast<uint16_t>(half);
  }
  // Normal: rebias the exponent, round the 13 dropped mantissa bits to even.
  uint32_t rounded = magnitude - 0x38000000u; // exponent bias 127 -> 15
  rounded += 0x0fffu + ((rounded >> 13) & 1u);
  return sign | static_cast<uint16_t>(rounded >> 13);
}

AMPRT_HD inline float f16ToFloat(uint16_t h) {
  uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  uint32_t exponent = (h >> 10) & 0x1fu;
  uint32_t mantissa = h & 0x03ffu;
  if (exponent == 0x1f) // infinity or NaN
    return bitsFloat(sign | 0x7f800000u | (mantissa << 13));
  if (exponent == 0) {
    if (mantissa == 0)
      return bitsFloat(sign);
    // Subnormal: value = mantissa * 2^-24, exact in float.
    float value = static_cast<float>(mantissa) * 5.9604644775390625e-8f;
    return sign ? -value : value;
  }
  return bitsFloat(sign | ((exponent + 112) << 23) | (mantissa << 13));
}

} // namespace amprt::math

#endif // AMPRT_FLOATCONVERSIONS_H
