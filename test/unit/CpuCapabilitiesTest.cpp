//===- CpuCapabilitiesTest.cpp - what the CPU backend runs natively -------===//

#include "CpuKernels.h"
#include "amprt/Session.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <string>

using namespace amprt;

namespace {

bool cappedToAvx2() {
  const char *cap = std::getenv("DNNL_MAX_CPU_ISA");
  return cap && std::string(cap) == "AVX2";
}

TEST(CpuCapabilities, NamesTheCpuAndOneDnnIsa) {
  CpuCapabilities capabilities = cpuCapabilities();
  EXPECT_FALSE(capabilities.model.empty());
  EXPECT_FALSE(capabilities.onednnIsa.empty());
#if defined(__x86_64__)
  EXPECT_NE(capabilities.model, "unknown CPU");
  EXPECT_NE(capabilities.onednnIsa, "generic");
#endif
}

/// Under DNNL_MAX_CPU_ISA=AVX2 (the capped rerun of these tests) oneDNN has
/// no bf16 GEMM, so the backend must say it emulates, on any CPU.
TEST(CpuCapabilities, TheAvx2CapMeansEmulatedBf16) {
  if (!cappedToAvx2())
    GTEST_SKIP() << "runs in the DNNL_MAX_CPU_ISA=AVX2 rerun (unit.avx2.*)";
  CpuCapabilities capabilities = cpuCapabilities();
  EXPECT_FALSE(capabilities.bf16GemmNative);
  EXPECT_EQ(capabilities.onednnIsa.rfind("avx2", 0) == 0 || capabilities.onednnIsa == "avx" ||
                capabilities.onednnIsa == "sse41",
            true)
      << capabilities.onednnIsa;
}

/// A kernel built for a precision without a native GEMM is recorded as
/// emulated (what amp-run reports), and one with a native GEMM is not.
TEST(CpuCapabilities, KernelsRecordEmulatedPrecisions) {
  CpuContext context;
  for (DType type : {DType::BF16, DType::F16}) {
    std::vector<uint16_t> a(4 * 8), b(8 * 3), c(4 * 3);
    proto::Kernel kernel;
    kernel.set_op("matmul");
    kernel.set_node("probe");
    std::unique_ptr<CpuKernel> built;
    ASSERT_TRUE(buildCpuKernel(kernel, {{a.data(), type, {4, 8}}, {b.data(), type, {8, 3}}},
                               {{c.data(), type, {4, 3}}}, context, &built)
                    .isOk());
    ASSERT_TRUE(built->run().isOk());
    EXPECT_EQ(context.emulatedGemms.count(type) == 1, !context.nativeGemm(type)) << dtypeName(type);
  }
}

} // namespace
