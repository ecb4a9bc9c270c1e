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

#include "amprt/FloatConversions.h" // AMPRT_HD and the bf16/f16 conversions

#if defined(__CUDACC__) || !defined(__GNUC__)
#define AMPRT_ALWAYS_INLINE
#else
#define AMPRT_ALWAYS_INLINE __attribute__((always_inline))
#endif

namespace amprt::math {

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

/// Neither inf nor NaN (by its bits: the same test on host and device).
AMPRT_HD inline bool isFinite(float x) { return (floatBits(x) & 0x7f800000u) != 0x7f800000u; }

/// max(x, 0) that lets NaN through, as torch.relu does (a NaN must not
/// vanish before the non-finite check sees it).
/// Dropout's mask, counter-based so that any backend, the backward pass and
/// a resumed run draw the same one: element `index` of a dropout with
/// `seed` at step `counter` is kept when 32 bits of a splitmix64 hash of the
/// three are at least `threshold` (ratio * 2^32).
AMPRT_HD inline bool dropoutKeeps(uint64_t seed, uint64_t counter, uint64_t index,
                                  uint64_t threshold) {
  uint64_t z = seed ^ (counter * 0x9E3779B97F4A7C15ull) ^ (index * 0xD1B54A32D192ED03ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  z ^= z >> 31;
  return (z >> 32) >= threshold;
}

/// The larger of a and b where a NaN wins (std::max and fmaxf drop one):
/// reduce_max's step, as torch.amax.
AMPRT_HD inline float maxOrNaN(float a, float b) { return (a > b || a != a) ? a : b; }

AMPRT_HD inline float relu(float x) { return x < 0.0f ? 0.0f : x; }
AMPRT_HD inline float reluGrad(float dy, float x) { return x > 0.0f ? dy : 0.0f; }

/// Branch-free exp, erf and tanh for the GELUs, so that the CPU's loops
/// over them vectorise: glibc's erff costs about 16 ns per element and its
/// expf and tanhf are a call each. On the device they are CUDA's own.
/// Always inlined on the host: a call left in a loop (GCC's inliner gives
/// up on some, depending on the loop and the target clone) keeps the whole
/// loop scalar, 4 to 8 times slower.
///
/// e^x to about 1 ulp for x in [-87, 88] (clamped there: e^-87 instead of a
/// smaller or zero value, e^88 instead of larger or inf); NaN stays NaN. The
/// power of two is made from the bits of x log2(e) + 1.5 * 2^23, whose low
/// mantissa bits hold the rounded integer: no float-to-int conversion.
AMPRT_HD AMPRT_ALWAYS_INLINE inline float expClamped(float x) {
#ifdef __CUDA_ARCH__
  return ::expf(fminf(fmaxf(x, -87.0f), 88.0f));
#else
  constexpr float kLog2e = 1.44269504088896341f, kShifter = 12582912.0f;
  constexpr float kLn2High = 0.693145751953125f, kLn2Low = 1.42860682030941723e-6f;
  x = x < -87.0f ? -87.0f : (x > 88.0f ? 88.0f : x);
  float shifted = x * kLog2e + kShifter;
  float n = shifted - kShifter;
  float r = (x - n * kLn2High) - n * kLn2Low; // |r| <= ln(2) / 2
  // Taylor to r^7 (error below 1e-8), Horner's scheme.
  float p = ((((((r * (1.0f / 5040) + 1.0f / 720) * r + 1.0f / 120) * r + 1.0f / 24) * r +
               1.0f / 6) * r + 0.5f) * r + 1.0f) * r + 1.0f;
  return p * bitsFloat((floatBits(shifted) - floatBits(kShifter) + 127u) << 23);
#endif
}

/// erf(x) to 5e-7 absolute (Abramowitz and Stegun 7.1.26, 1.5e-7, plus
/// float rounding where the sum cancels; the form
/// PyTorch's vectorised CPU erf takes); GELU adds it to 1. `e` is
/// exp(-x * x), which GELU's backward also needs: it computes it once.
AMPRT_HD AMPRT_ALWAYS_INLINE inline float erfGivenExp(float x, float e) {
  float a = std::fabs(x);
  float t = 1.0f / (1.0f + 0.3275911f * a);
  float p = (((1.061405429f * t - 1.453152027f) * t + 1.421413741f) * t - 0.284496736f) * t +
            0.254829592f;
  return std::copysign(1.0f - p * t * e, x);
}
AMPRT_HD AMPRT_ALWAYS_INLINE inline float erfForGelu(float x) {
#ifdef __CUDA_ARCH__
  return ::erff(x);
#else
  return erfGivenExp(x, expClamped(-x * x));
#endif
}

/// tanh(x) to about 1e-7 absolute (its relative error grows near 0, where
/// GELU adds it to 1).
AMPRT_HD AMPRT_ALWAYS_INLINE inline float tanhForGelu(float x) {
#ifdef __CUDA_ARCH__
  return ::tanhf(x);
#else
  return std::copysign(1.0f - 2.0f / (expClamped(2.0f * std::fabs(x)) + 1.0f), x);
#endif
}

/// GELU, exact (x Phi(x), with erf) and in the tanh approximation, and their
/// derivatives times `dy`, as torch.nn.functional.gelu and its backward.
constexpr float kSqrtHalf = 0.70710678118654752f;       // 1 / sqrt(2)
constexpr float kInvSqrtTwoPi = 0.39894228040143268f;   // 1 / sqrt(2 pi)
constexpr float kSqrtTwoOverPi = 0.79788456080286536f;  // sqrt(2 / pi)
constexpr float kGeluCubic = 0.044715f;
AMPRT_HD AMPRT_ALWAYS_INLINE inline float gelu(float x) { return 0.5f * x * (1.0f + erfForGelu(x * kSqrtHalf)); }
AMPRT_HD AMPRT_ALWAYS_INLINE inline float geluGrad(float dy, float x) {
  float e = expClamped(-0.5f * x * x); // the pdf's exp, and erf's at x / sqrt(2)
#ifdef __CUDA_ARCH__
  float cdf = 0.5f * (1.0f + ::erff(x * kSqrtHalf));
#else
  float cdf = 0.5f * (1.0f + erfGivenExp(x * kSqrtHalf, e));
#endif
  return dy * (cdf + x * (kInvSqrtTwoPi * e));
}
AMPRT_HD AMPRT_ALWAYS_INLINE inline float geluTanh(float x) {
  float inner = kSqrtTwoOverPi * (x + kGeluCubic * x * x * x);
  return 0.5f * x * (1.0f + tanhForGelu(inner));
}
AMPRT_HD AMPRT_ALWAYS_INLINE inline float geluTanhGrad(float dy, float x) {
  float t = tanhForGelu(kSqrtTwoOverPi * (x + kGeluCubic * x * x * x));
  float innerSlope = kSqrtTwoOverPi * (1.0f + 3.0f * kGeluCubic * x * x);
  return dy * (0.5f * (1.0f + t) + 0.5f * x * (1.0f - t * t) * innerSlope);
}

/// d pow(x, e) = e x^(e - 1) dx; zero for e = 0 (as torch, where 0 * x^-1
/// would be NaN at x = 0).
AMPRT_HD inline float powGrad(float dy, float x, float e) {
  return e == 0.0f ? 0.0f : dy * e * ::powf(x, e - 1.0f);
}

/// Scalars of one AdamW step, computed once per step (as torch.optim does,
/// in double, then used in float).
/// (1 - beta) is formed in double before rounding, as torch.optim does:
/// 1 - float(0.999) would be off by 1.3e-5 relative.
/// With `huggingface` (HuggingFace's AdamW, onnxruntime-training's
/// adam_mode 1) both corrections scale the step size, epsilon is added to
/// the uncorrected root and the decay follows the update.
struct AdamWScalars {
  float beta1, beta2, oneMinusBeta1, oneMinusBeta2, eps, decayFactor, stepSize, bias2Sqrt;
  bool decayAfter;
};

AMPRT_HD inline AdamWScalars adamwScalars(double lr, double beta1, double beta2, double eps,
                                          double weightDecay, int64_t step,
                                          bool huggingface = false) {
  double bias1 = 1.0 - ::pow(beta1, static_cast<double>(step));
  double bias2 = 1.0 - ::pow(beta2, static_cast<double>(step));
  double stepSize = huggingface ? lr * ::sqrt(bias2) / bias1 : lr / bias1;
  return {static_cast<float>(beta1), static_cast<float>(beta2),
          static_cast<float>(1.0 - beta1), static_cast<float>(1.0 - beta2),
          static_cast<float>(eps),
          static_cast<float>(1.0 - lr * weightDecay), static_cast<float>(stepSize),
          huggingface ? 1.0f : static_cast<float>(::sqrt(bias2)), huggingface};
}

/// torch.optim.AdamW (single-tensor path) for one element, or HuggingFace's.
AMPRT_HD inline void adamwElement(const AdamWScalars &s, float grad, float &param,
                                  float &expAvg, float &expAvgSq) {
  if (!s.decayAfter)
    param *= s.decayFactor;
  expAvg = expAvg * s.beta1 + grad * s.oneMinusBeta1;
  expAvgSq = expAvgSq * s.beta2 + grad * grad * s.oneMinusBeta2;
  float denom = ::sqrtf(expAvgSq) / s.bias2Sqrt + s.eps;
  param -= s.stepSize * (expAvg / denom);
  if (s.decayAfter)
    param *= s.decayFactor;
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
    if (isFinite(grown))
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
