//===- KernelMathTest.cpp - per-element optimizer math vs FP64 ------------===//

#include "KernelMath.h"

#include <gtest/gtest.h>

#include <cmath>

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

TEST(KernelMath, ReluAndItsGradient) {
  EXPECT_EQ(math::relu(-1.0f), 0.0f);
  EXPECT_EQ(math::relu(2.5f), 2.5f);
  EXPECT_EQ(math::reluGrad(3.0f, -0.1f), 0.0f);
  EXPECT_EQ(math::reluGrad(3.0f, 0.1f), 3.0f);
  EXPECT_EQ(math::reluGrad(3.0f, 0.0f), 0.0f); // torch's choice at 0
}

} // namespace
