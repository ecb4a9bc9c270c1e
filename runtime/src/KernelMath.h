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

#if defined(__CUDACC__)
#define AMPRT_HD __host__ __device__
#else
#define AMPRT_HD
#endif

namespace amprt::math {

AMPRT_HD inline float relu(float x) { return x > 0.0f ? x : 0.0f; }
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

} // namespace amprt::math

#endif // AMPRT_KERNELMATH_H
