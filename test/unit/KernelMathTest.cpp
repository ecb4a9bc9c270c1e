//===- KernelMathTest.cpp - per-element kernel math vs FP64 ---------------===//

#include "KernelMath.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <vector>

using namespace amprt;

namespace {

/// torch.optim.AdamW's update for one element, in double.
void adamwReference(double lr, double b1, double b2, double eps, double wd, int step,
                    double g, double &p, double &m, double &v) {
  p *= 1 - lr * wd;
  m = b1 * m + (1 - b1) * g;
  v = b2 * v + (1 - b2) * g * g;
  double bias1 = 1 - std::pow(b1, step), bias2 = 1 - std::pow(b2, step);
  p -= lr / bias1 * m / (std::sqrt(v) / std::sqrt(bias2) + eps);
}

TEST(KernelMath, AdamWMatchesDoublePrecisionOverSteps) {
  const double lr = 1e-3, b1 = 0.9, b2 = 0.999, eps = 1e-8, wd = 0.01;
  float p = 0.3f, m = 0, v = 0;
  double pr = 0.3, mr = 0, vr = 0;
  const float grads[] = {0.5f, -0.25f, 1e-3f, 2.0f, -0.75f};
  int step = 0;
  for (float g : grads) {
    ++step;
    math::adamwElement(math::adamwScalars(lr, b1, b2, eps, wd, step), g, p, m, v);
    adamwReference(lr, b1, b2, eps, wd, step, g, pr, mr, vr);
    EXPECT_NEAR(p, pr, 1e-6 * std::abs(pr)) << "step " << step;
    EXPECT_NEAR(m, mr, 1e-6 * std::abs(mr) + 1e-12) << "step " << step;
    EXPECT_NEAR(v, vr, 1e-6 * std::abs(vr) + 1e-12) << "step " << step;
  }
}

/// HuggingFace's AdamW (onnxruntime-training's AdamWOptimizer, adam_mode
/// 1) for one element, in double: epsilon on the uncorrected root, the
/// corrections in the step size, the decay after the update.
void huggingfaceReference(double lr, double b1, double b2, double eps, double wd, int step,
                          double g, double &p, double &m, double &v) {
  m = b1 * m + (1 - b1) * g;
  v = b2 * v + (1 - b2) * g * g;
  double bias1 = 1 - std::pow(b1, step), bias2 = 1 - std::pow(b2, step);
  p -= lr * std::sqrt(bias2) / bias1 * m / (std::sqrt(v) + eps);
  p -= lr * wd * p;
}

TEST(KernelMath, HuggingFaceAdamWMatchesDoublePrecisionOverSteps) {
  // eps large against sqrt(v) so that its placement shows: torch's formula
  // differs from this one by more than the bound.
  const double lr = 1e-2, b1 = 0.9, b2 = 0.999, eps = 1e-2, wd = 0.1;
  float p = 0.3f, m = 0, v = 0, torchP = 0.3f, torchM = 0, torchV = 0;
  double pr = 0.3, mr = 0, vr = 0;
  const float grads[] = {0.05f, -0.025f, 1e-3f, 0.2f, -0.075f};
  int step = 0;
  for (float g : grads) {
    ++step;
    math::adamwElement(math::adamwScalars(lr, b1, b2, eps, wd, step, /*huggingface=*/true), g,
                       p, m, v);
    math::adamwElement(math::adamwScalars(lr, b1, b2, eps, wd, step), g, torchP, torchM,
                       torchV);
    huggingfaceReference(lr, b1, b2, eps, wd, step, g, pr, mr, vr);
    EXPECT_NEAR(p, pr, 1e-6 * std::abs(pr)) << "step " << step;
    EXPECT_GT(std::abs(torchP - pr), 1e-4 * std::abs(pr)) << "step " << step;
  }
}

TEST(KernelMath, AdamWFirstStepMovesByLearningRate) {
  // With zero moments, the first update is lr * sign(g) (plus decay).
  float p = 1.0f, m = 0, v = 0;
  math::adamwElement(math::adamwScalars(0.01, 0.9, 0.999, 1e-8, 0.0, 1), -3.0f, p, m, v);
  EXPECT_NEAR(p, 1.01f, 1e-6f);
}

TEST(KernelMath, SgdMomentumAndNesterov) {
  float p = 1.0f, buffer = 0.0f;
  math::sgdElement(0.1f, 0.9f, 0.0f, false, 2.0f, p, buffer);
  EXPECT_FLOAT_EQ(buffer, 2.0f); // torch: the first buffer is the gradient
  EXPECT_FLOAT_EQ(p, 0.8f);
  math::sgdElement(0.1f, 0.9f, 0.0f, false, 1.0f, p, buffer);
  EXPECT_FLOAT_EQ(buffer, 2.8f);
  EXPECT_FLOAT_EQ(p, 0.52f);

  float q = 1.0f, nb = 0.0f;
  math::sgdElement(0.1f, 0.9f, 0.5f, true, 2.0f, q, nb);
  // g' = 2 + 0.5 * 1 = 2.5; buf = 2.5; direction = 2.5 + 0.9 * 2.5 = 4.75.
  EXPECT_FLOAT_EQ(nb, 2.5f);
  EXPECT_FLOAT_EQ(q, 1.0f - 0.475f);
}

// The GELUs' exp, erf and tanh are polynomial (branch-free, so the CPU's
// loops vectorise): their errors against double precision over the range
// where they matter, their limits, and NaN.
TEST(KernelMath, GeluHelpersMatchDoublePrecision) {
  double expWorst = 0, erfWorst = 0, tanhWorst = 0;
  for (double x = -87.0; x <= 88.0; x += 0.001) {
    float xf = static_cast<float>(x);
    expWorst = std::max(expWorst, std::abs(math::expClamped(xf) / std::exp(double(xf)) - 1));
  }
  for (double x = -8.0; x <= 8.0; x += 0.0001) {
    float xf = static_cast<float>(x);
    erfWorst = std::max(erfWorst, std::abs(math::erfForGelu(xf) - std::erf(double(xf))));
    tanhWorst = std::max(tanhWorst, std::abs(math::tanhForGelu(xf) - std::tanh(double(xf))));
  }
  EXPECT_LT(expWorst, 3e-7); // relative: about 2 ulp
  EXPECT_LT(erfWorst, 5e-7); // absolute: Abramowitz and Stegun 7.1.26 plus rounding
  EXPECT_LT(tanhWorst, 2e-7);
  float inf = INFINITY, nan = NAN;
  EXPECT_EQ(math::erfForGelu(inf), 1.0f);
  EXPECT_EQ(math::erfForGelu(-inf), -1.0f);
  EXPECT_EQ(math::tanhForGelu(-inf), -1.0f);
  EXPECT_EQ(math::erfForGelu(0.0f), 0.0f);
  EXPECT_TRUE(std::isnan(math::expClamped(nan)));
  EXPECT_TRUE(std::isnan(math::erfForGelu(nan)));
  EXPECT_TRUE(std::isnan(math::gelu(nan)));
  EXPECT_FLOAT_EQ(math::expClamped(-1000.0f), std::exp(-87.0f)); // clamped, not 0
}

TEST(KernelMath, GelusAndGradientsMatchDoublePrecision) {
  double worst[4] = {0, 0, 0, 0};
  for (double x = -10.0; x <= 10.0; x += 0.001) {
    float xf = static_cast<float>(x);
    double xd = xf, cdf = 0.5 * (1 + std::erf(xd / std::sqrt(2.0)));
    double pdf = std::exp(-0.5 * xd * xd) / std::sqrt(2 * M_PI);
    double u = std::sqrt(2 / M_PI) * (xd + 0.044715 * xd * xd * xd), t = std::tanh(u);
    double slope = std::sqrt(2 / M_PI) * (1 + 3 * 0.044715 * xd * xd);
    double reference[4] = {xd * cdf, cdf + xd * pdf, 0.5 * xd * (1 + t),
                           0.5 * (1 + t) + 0.5 * xd * (1 - t * t) * slope};
    float ours[4] = {math::gelu(xf), math::geluGrad(1.0f, xf), math::geluTanh(xf),
                     math::geluTanhGrad(1.0f, xf)};
    for (int i = 0; i < 4; ++i) // relative to the size of x, as the erf's error
      worst[i] = std::max(worst[i], std::abs(ours[i] - reference[i]) / std::max(1.0, std::abs(xd)));
  }
  for (double w : worst)
    EXPECT_LT(w, 5e-7);
}

TEST(KernelMath, ReluAndItsGradient) {
  EXPECT_EQ(math::relu(-1.0f), 0.0f);
  EXPECT_EQ(math::relu(2.5f), 2.5f);
  EXPECT_EQ(math::reluGrad(3.0f, -0.1f), 0.0f);
  EXPECT_EQ(math::reluGrad(3.0f, 0.1f), 3.0f);
  EXPECT_EQ(math::reluGrad(3.0f, 0.0f), 0.0f); // torch's choice at 0
  EXPECT_TRUE(std::isnan(math::relu(NAN)));     // NaN propagates, as in torch
}

} // namespace

namespace {

// Reference conversions from the compiler: _Float16 rounds to nearest even.
uint16_t referenceF16(float f) {
  _Float16 h = static_cast<_Float16>(f);
  uint16_t bits;
  std::memcpy(&bits, &h, 2);
  return bits;
}
float referenceF16ToFloat(uint16_t bits) {
  _Float16 h;
  std::memcpy(&h, &bits, 2);
  return static_cast<float>(h);
}

TEST(LowPrecision, F16WideningIsExactForEveryValue) {
  for (uint32_t bits = 0; bits < 65536; ++bits) {
    float ours = math::f16ToFloat(static_cast<uint16_t>(bits));
    float reference = referenceF16ToFloat(static_cast<uint16_t>(bits));
    if (std::isnan(reference))
      EXPECT_TRUE(std::isnan(ours)) << bits;
    else
      EXPECT_EQ(math::floatBits(ours), math::floatBits(reference)) << bits;
  }
}

TEST(LowPrecision, F16NarrowingRoundsToNearestEven) {
  // Every half value, every midpoint between neighbours (the ties), and a
  // sweep of random floats across the whole exponent range.
  std::vector<float> probes = {0.0f, -0.0f, 65504.0f, 65519.99f, 65520.0f, 1e10f,
                               -1e10f, 5.96e-8f, 2.98e-8f, 2.99e-8f, 1e-9f,
                               INFINITY, -INFINITY};
  for (uint32_t bits = 0; bits < 0x7c00; ++bits) {
    float value = math::f16ToFloat(static_cast<uint16_t>(bits));
    float next = math::f16ToFloat(static_cast<uint16_t>(bits + 1));
    probes.push_back(value);
    probes.push_back(-value);
    probes.push_back(value + (next - value) / 2); // exact tie in float
  }
  std::mt19937 rng(3);
  for (int i = 0; i < 200000; ++i)
    probes.push_back(math::bitsFloat(rng()));
  for (float f : probes) {
    if (std::isnan(f)) {
      EXPECT_TRUE(std::isnan(math::f16ToFloat(math::floatToF16(f))));
      continue;
    }
    ASSERT_EQ(math::floatToF16(f), referenceF16(f)) << "value " << f;
  }
}

/// bfloat16 rounding computed from first principles in double.
uint16_t referenceBf16(float f) {
  uint32_t bits = math::floatBits(f);
  uint32_t down = bits & 0xffff0000u, up = down + 0x10000u;
  double distanceDown = std::abs(double(f) - double(math::bitsFloat(down)));
  double distanceUp = std::abs(double(math::bitsFloat(up)) - double(f));
  if (distanceDown < distanceUp || (distanceDown == distanceUp && !((down >> 16) & 1u)))
    return static_cast<uint16_t>(down >> 16);
  return static_cast<uint16_t>(up >> 16);
}

TEST(LowPrecision, Bf16RoundsToNearestEven) {
  EXPECT_EQ(math::floatToBf16(1.0f), 0x3f80);
  EXPECT_EQ(math::floatToBf16(math::bitsFloat(0x3f808000u)), 0x3f80); // tie, even below
  EXPECT_EQ(math::floatToBf16(math::bitsFloat(0x3f818000u)), 0x3f82); // tie, even above
  EXPECT_EQ(math::floatToBf16(math::bitsFloat(0x3f808001u)), 0x3f81);
  EXPECT_EQ(math::floatToBf16(math::bitsFloat(0x7f7fffffu)), 0x7f80); // overflows to inf
  EXPECT_TRUE(std::isnan(math::bf16ToFloat(math::floatToBf16(NAN))));
  std::mt19937 rng(4);
  for (int i = 0; i < 500000; ++i) {
    float f = math::bitsFloat(rng());
    if (std::isnan(f) || std::isinf(f) ||
        std::abs(f) > math::bitsFloat(0x7f7f0000u)) // near FLT_MAX: the up-neighbour is inf
      continue;
    ASSERT_EQ(math::floatToBf16(f), referenceBf16(f)) << f;
  }
}

TEST(LowPrecision, Bf16RoundTripIsExact) {
  for (uint32_t bits = 0; bits < 65536; ++bits) {
    float value = math::bf16ToFloat(static_cast<uint16_t>(bits));
    if (!std::isnan(value)) {
      EXPECT_EQ(math::floatToBf16(value), bits);
    }
  }
}

} // namespace
