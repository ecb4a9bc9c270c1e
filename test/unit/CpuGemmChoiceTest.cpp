//===- CpuGemmChoiceTest.cpp - native or widened low-precision GEMMs ------===//

#include "ConvolutionReference.h"
#include "CpuKernels.h"
#include "KernelMath.h"

#include <gtest/gtest.h>

#include <cmath>
#include <random>

using namespace amprt;

namespace {

TEST(CpuGemmChoice, FollowsThePolicyTheRateAndTheMapSize) {
  for (bool faster : {false, true})
    for (int64_t positions : {0, 1, 4, 15, 16, 64}) {
      EXPECT_TRUE(lowPrecisionRunsNative(CpuGemms::Native, faster, positions));
      EXPECT_FALSE(lowPrecisionRunsNative(CpuGemms::Widened, faster, positions));
      // Fastest: native where faster; where not, only convolutions on maps
      // of fewer than kSmallConvolutionMap positions (a GEMM passes 0).
      bool small = positions > 0 && positions < kSmallConvolutionMap;
      EXPECT_EQ(lowPrecisionRunsNative(CpuGemms::Fastest, faster, positions), faster || small)
          << faster << " " << positions;
    }
}

TEST(CpuGemmChoice, MeasuresTheBf16DotRateWhereTheCpuHasIt) {
  double rate = measureBf16DotRate();
#if defined(__x86_64__)
  if (!__builtin_cpu_supports("avx512bf16")) {
    EXPECT_EQ(rate, 0);
    return;
  }
#endif
  if (rate == 0)
    GTEST_SKIP() << "no AVX-512 BF16 here";
  // Half to twice the f32 rate on the CPUs seen; far outside means a broken
  // measurement (a loop optimized away, the wrong FLOP count).
  EXPECT_GT(rate, 0.2);
  EXPECT_LT(rate, 8);
}

/// A bf16 matmul records how it ran: widened by choice only where a
/// native kernel exists, emulated where none does, nothing when native.
TEST(CpuGemmChoice, ContextsRecordWidenedAndEmulatedGemms) {
  for (CpuGemms policy : {CpuGemms::Native, CpuGemms::Widened}) {
    CpuContext context;
    context.gemms = policy;
    std::vector<uint16_t> a(4 * 8), b(8 * 3), c(4 * 3);
    proto::Kernel kernel;
    kernel.set_op("matmul");
    kernel.set_node("probe");
    std::unique_ptr<CpuKernel> built;
    ASSERT_TRUE(buildCpuKernel(kernel, {{a.data(), DType::BF16, {4, 8}}, {b.data(), DType::BF16, {8, 3}}},
                               {{c.data(), DType::BF16, {4, 3}}}, context, &built)
                    .isOk());
    bool native = context.nativeGemm(DType::BF16);
    EXPECT_EQ(context.emulatedGemms.count(DType::BF16), native ? 0u : 1u);
    EXPECT_EQ(context.widenedGemms.count(DType::BF16),
              native && policy == CpuGemms::Widened ? 1u : 0u);
  }
}

/// Values on the bf16 grid, as floats and as bf16 bits.
struct Bf16Values {
  std::vector<float> values;
  std::vector<uint16_t> bits;
  Bf16Values(int64_t count, unsigned seed) {
    std::mt19937 rng(seed);
    std::uniform_real_distribution<float> uniform(-1.0f, 1.0f);
    for (int64_t i = 0; i < count; ++i) {
      bits.push_back(math::floatToBf16(uniform(rng)));
      values.push_back(math::bf16ToFloat(bits.back()));
    }
  }
};

/// Builds and runs one kernel in a context of its own under `policy`;
/// `widened`: whether it ran widened by choice.
void runKernel(const proto::Kernel &kernel, std::vector<TensorRef> in, TensorRef out,
               CpuGemms policy, bool *widened = nullptr) {
  CpuContext context;
  context.gemms = policy;
  std::unique_ptr<CpuKernel> built;
  ASSERT_TRUE(buildCpuKernel(kernel, std::move(in), {out}, context, &built).isOk());
  ASSERT_TRUE(built->run().isOk());
  if (widened)
    *widened = context.widenedGemms.count(DType::BF16) > 0;
}

/// A bf16 convolution (forward, backward data) on a large map (36 output
/// positions) and a small one (4), in every policy: within one bf16
/// rounding of the FP64 result of the same bf16 inputs; and, widened, the
/// f32 kernel's result on those inputs rounded once, bit for bit.
TEST(CpuGemmChoice, Bf16ConvolutionsInEveryPolicyMatchDoubleReference) {
  const int64_t batch = 2, channels = 5, filters = 4, stride = 1;
  for (int64_t side : {6, 2})
    for (const char *op : {"conv", "conv_backward_data"}) {
      bool forward = std::string(op) == "conv";
      test::Conv3x3Shape shape{batch, channels, filters, side, side, stride};
      int64_t out = shape.outH();
      std::vector<int64_t> xShape = {batch, channels, side, side},
                           yShape = {batch, filters, out, out}, wShape = {filters, channels, 3, 3};
      int64_t xCount = batch * channels * side * side, yCount = batch * filters * out * out;
      Bf16Values operand(forward ? xCount : yCount, 1), weights(filters * channels * 9, 2);
      std::vector<double> expected = test::referenceConv3x3(
          shape, forward, [&](int64_t i) { return double(operand.values[i]); },
          [&](int64_t i) { return double(weights.values[i]); });
      const std::vector<int64_t> &inShape = forward ? xShape : yShape,
                                 &outShape = forward ? yShape : xShape;
      // The f32 kernel on the same values, for the widened comparison.
      std::vector<float> f32(expected.size());
      runKernel(test::paddedConv3x3(op, stride),
                {{operand.values.data(), DType::F32, inShape},
                 {weights.values.data(), DType::F32, wShape}},
                {f32.data(), DType::F32, outShape}, CpuGemms::Fastest);
      bool native = CpuContext().nativeGemm(DType::BF16);
      for (CpuGemms policy : {CpuGemms::Native, CpuGemms::Widened, CpuGemms::Fastest}) {
        std::vector<uint16_t> result(expected.size());
        bool widened = false;
        runKernel(test::paddedConv3x3(op, stride),
                  {{operand.bits.data(), DType::BF16, inShape},
                   {weights.bits.data(), DType::BF16, wShape}},
                  {result.data(), DType::BF16, outShape}, policy, &widened);
        // The path taken: widened by choice only where a native kernel
        // exists; under Fastest, never on the small map.
        if (policy != CpuGemms::Fastest) {
          EXPECT_EQ(widened, native && policy == CpuGemms::Widened) << op << " map " << side;
        } else if (out * out < kSmallConvolutionMap) {
          EXPECT_FALSE(widened) << op << " map " << side;
        }
        for (size_t i = 0; i < result.size(); ++i) {
          double got = math::bf16ToFloat(result[i]);
          EXPECT_NEAR(got, expected[i], std::abs(expected[i]) * 0x1p-8 + 1e-5)
              << op << " map " << side << " policy " << int(policy) << " at " << i;
          if (policy == CpuGemms::Widened) {
            EXPECT_EQ(result[i], math::floatToBf16(f32[i]))
                << op << " map " << side << " widened at " << i;
          }
        }
      }
    }
}

} // namespace
