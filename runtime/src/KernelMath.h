//===- KernelMath.h - per-element math shared by all backends ---*- C++ -*-===//
//
// The arithmetic of each kernel for one element, written once and compiled
// for the host (CPU backend, tested there) and, later, for the device.
//
//===----------------------------------------------------------------------===//
#ifndef AMPRT_KERNELMATH_H
#define AMPRT_KERNELMATH_H

#include <cmath>
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

/// Storage types of tensors: arithmetic is always float (as GPU kernels
/// do), low-precision values are rounded on store.
struct Bf16 {
  uint16_t bits;
};
struct F16 {
  uint16_t bits;
};
AMPRT_HD inline float load(float x) { return x; }
AMPRT_HD inline float load(Bf16 x) { return bf16ToFloat(x.bits); }
AMPRT_HD inline float load(F16 x) { return f16ToFloat(x.bits); }
template <typename T> AMPRT_HD inline T store(float x);
template <> AMPRT_HD inline float store<float>(float x) { return x; }
template <> AMPRT_HD inline Bf16 store<Bf16>(float x) { return {floatToBf16(x)}; }
template <> AMPRT_HD inline F16 store<F16>(float x) { return {floatToF16(x)}; }

/// max(x, 0) that lets NaN through, as torch.relu does (a NaN must not
/// vanish before the non-finite check sees it).
AMPRT_HD inline float relu(float x) { return x < 0.0f ? 0.0f : x; }
AMPRT_HD inline float reluGrad(float dy, float x) { return x > 0.0f ? dy : 0.0f; }

/// Scalars of one AdamW step, computed once per step (as torch.optim does,
/// in double, then used in float).
/// (1 - beta) is formed in double before rounding, as torch.optim does:
/// 1 - float(0.999) would be off by 1.3e-5 relative.
struct AdamWScalars {
  float beta1, beta2, oneMinusBeta1, oneMinusBeta2, eps, decayFactor, stepSize, bias2Sqrt;
};

inline AdamWScalars adamwScalars(double lr, double beta1, double beta2, double eps,
                                 double weightDecay, int64_t step) {
  double bias1 = 1.0 - std::pow(beta1, static_cast<double>(step));
  double bias2 = 1.0 - std::pow(beta2, static_cast<double>(step));
  return {static_cast<float>(beta1), static_cast<float>(beta2),
          static_cast<float>(1.0 - beta1), static_cast<float>(1.0 - beta2),
          static_cast<float>(eps),
          static_cast<float>(1.0 - lr * weightDecay), static_cast<float>(lr / bias1),
          static_cast<float>(std::sqrt(bias2))};
}

/// torch.optim.AdamW (single-tensor path) for one element.
AMPRT_HD inline void adamwElement(const AdamWScalars &s, float grad, float &param,
                                  float &expAvg, float &expAvgSq) {
  param *= s.decayFactor;
  expAvg = expAvg * s.beta1 + grad * s.oneMinusBeta1;
  expAvgSq = expAvgSq * s.beta2 + grad * grad * s.oneMinusBeta2;
  float denom = std::sqrt(expAvgSq) / s.bias2Sqrt + s.eps;
  param -= s.stepSize * (expAvg / denom);
}

/// torch.optim.SGD with momentum (dampening 0) for one element. A zero
/// initial buffer reproduces torch's first-step `buf = grad`.
AMPRT_HD inline void sgdElement(float lr, float momentum, float weightDecay,
                                bool nesterov, float grad, float &param,
                                float &buffer) {
  float g = grad + weightDecay * param;
  buffer = momentum * buffer + g;
  float direction = nesterov ? g + momentum * buffer : buffer;
  param -= lr * direction;
}

/// torch.amp.GradScaler's update (_amp_update_scale_) for one step.
AMPRT_HD inline void updateLossScale(float &scale, int64_t &growthTracker, bool foundNonFinite,
                                     double growthFactor, double backoffFactor,
                                     int64_t growthInterval) {
  if (foundNonFinite) {
    scale = static_cast<float>(scale * backoffFactor);
    growthTracker = 0;
    return;
  }
  int64_t successful = growthTracker + 1;
  if (successful == growthInterval) {
    float grown = static_cast<float>(scale * growthFactor);
    if (std::isfinite(grown))
      scale = grown;
    growthTracker = 0;
  } else {
    growthTracker = successful;
  }
}

/// clip_grad_norm_'s factor: min(1, max_norm / (norm + 1e-6)), in float.
AMPRT_HD inline float clipCoefficient(float norm, float maxNorm) {
  float coefficient = maxNorm / (norm + 1e-6f);
  return coefficient < 1.0f ? coefficient : 1.0f;
}

} // namespace amprt::math

#endif // AMPRT_KERNELMATH_H
