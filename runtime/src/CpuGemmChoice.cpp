//===- CpuGemmChoice.cpp - native or widened low-precision GEMMs ----------===//
//
// A bf16 GEMM or convolution can run on oneDNN's native bf16 kernel or, with
// its operands widened, on the f32 one. Native is not always faster: on a
// Sapphire Rapids-class Xeon without AMX, vdpbf16ps (two bf16 products per
// lane) issues once every two cycles while f32 FMAs issue twice per cycle,
// so bf16 dot products reach half the f32 rate (measured 0.50x), and oneDNN
// 2.6's bf16 GEMMs and convolutions on large maps ran 1.5-2x slower than
// its f32 ones (bench/README.md). Zen 4 runs them at twice the f32 rate and
// AMX far above it. Under CpuGemms::Fastest the rate is measured, once per
// session that has a bf16 kernel to build, and the faster path chosen.
//
//===----------------------------------------------------------------------===//

#include "CpuKernels.h"

#include <oneapi/dnnl/dnnl.hpp>

#include <algorithm>
#include <chrono>

namespace amprt {
namespace {

#if defined(__x86_64__)
// Twelve independent accumulators (more than latency x issue width needs),
// so each loop is bound by how often the instruction issues. Written in
// assembly: the compiler would merge identical intrinsic chains.
#define AMPRT_TWELVE(op)                                                                       \
  op " %%zmm14, %%zmm15, %%zmm0\n\t" op " %%zmm14, %%zmm15, %%zmm1\n\t" op                    \
     " %%zmm14, %%zmm15, %%zmm2\n\t" op " %%zmm14, %%zmm15, %%zmm3\n\t" op                    \
     " %%zmm14, %%zmm15, %%zmm4\n\t" op " %%zmm14, %%zmm15, %%zmm5\n\t" op                    \
     " %%zmm14, %%zmm15, %%zmm6\n\t" op " %%zmm14, %%zmm15, %%zmm7\n\t" op                    \
     " %%zmm14, %%zmm15, %%zmm8\n\t" op " %%zmm14, %%zmm15, %%zmm9\n\t" op                    \
     " %%zmm14, %%zmm15, %%zmm10\n\t" op " %%zmm14, %%zmm15, %%zmm11\n\t"
// Every register starts at zero: a denormal left in an accumulator would
// slow the FMAs alone (vdpbf16ps flushes them). vzeroupper clears the upper
// halves of all sixteen, so all are clobbered.
#define AMPRT_ZERO(r) "vpxord %%zmm" #r ", %%zmm" #r ", %%zmm" #r "\n\t"
#define AMPRT_ISSUE_LOOP(op, iterations)                                                       \
  __asm__ volatile(AMPRT_ZERO(0) AMPRT_ZERO(1) AMPRT_ZERO(2) AMPRT_ZERO(3) AMPRT_ZERO(4)        \
                       AMPRT_ZERO(5) AMPRT_ZERO(6) AMPRT_ZERO(7) AMPRT_ZERO(8) AMPRT_ZERO(9)   \
                           AMPRT_ZERO(10) AMPRT_ZERO(11) AMPRT_ZERO(14) AMPRT_ZERO(15)         \
                   "1:\n\t" AMPRT_TWELVE(op) "dec %0\n\t"                                      \
                   "jnz 1b\n\t"                                                                \
                   "vzeroupper"                                                                \
                   : "+r"(iterations)                                                          \
                   :                                                                           \
                   : "cc", "memory", "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6",   \
                     "xmm7", "xmm8", "xmm9", "xmm10", "xmm11", "xmm12", "xmm13", "xmm14",      \
                     "xmm15")

template <typename Loop> double fastestSeconds(Loop loop) {
  double best = 1e30;
  for (int trial = 0; trial < 5; ++trial) {
    auto start = std::chrono::steady_clock::now();
    loop();
    best = std::min(best, std::chrono::duration<double>(std::chrono::steady_clock::now() - start)
                              .count());
  }
  return best;
}
#endif

} // namespace

double measureBf16DotRate() {
#if defined(__x86_64__)
  if (!__builtin_cpu_supports("avx512bf16"))
    return 0;
  constexpr long kIterations = 20000; // 240k instructions: 50-200 us a trial
  // The best of five trials each, interleaved so a frequency change or a
  // preemption hits neither side alone.
  double fma = 1e30, dot = 1e30;
  for (int round = 0; round < 2; ++round) {
    fma = std::min(fma, fastestSeconds([] {
                     long n = kIterations;
                     AMPRT_ISSUE_LOOP("vfmadd231ps", n);
                   }));
    dot = std::min(dot, fastestSeconds([] {
                     long n = kIterations;
                     AMPRT_ISSUE_LOOP("vdpbf16ps", n);
                   }));
  }
  // FLOPs per instruction: an f32 FMA 2 per lane, a bf16 pair dot 4.
  return (4.0 / dot) / (2.0 / fma);
#else
  return 0;
#endif
}

bool lowPrecisionRunsNative(CpuGemms policy, bool nativeFaster, int64_t convolutionPositions) {
  switch (policy) {
  case CpuGemms::Native:
    return true;
  case CpuGemms::Widened:
    return false;
  case CpuGemms::Fastest:
    break;
  }
  // On small maps (ResNet-18's 2x2 and 1x1 at 32x32 inputs) oneDNN 2.6's
  // f32 direct convolutions reach a quarter of their large-map rate while
  // its bf16 ones keep theirs, and widening a large filter for little work
  // costs more than it saves: native stays faster there even at half rate.
  // (Filter gradients on maps of up to 4 positions run as GEMMs, which are
  // widened: there oneDNN's f32 matmul is twice as fast as its bf16 one.)
  return nativeFaster || (convolutionPositions > 0 && convolutionPositions < kSmallConvolutionMap);
}

double CpuContext::bf16DotRateHere() {
  if (!bf16DotRate)
    bf16DotRate = measureBf16DotRate();
  return *bf16DotRate;
}

bool CpuContext::nativeFaster(DType type) {
  if (type != DType::BF16)
    return true; // f16: not measured; native wherever oneDNN has a kernel
  return dnnl::get_effective_cpu_isa() == dnnl::cpu_isa::avx512_core_amx ||
         bf16DotRateHere() >= kNativeBf16Rate;
}

bool CpuContext::runsNative(DType type, int64_t convolutionPositions) {
  if (type == DType::F32)
    return true;
  // oneDNN 2.6 has bf16 and f16 convolutions where it has matmuls of the
  // type, so the matmul probe answers for both.
  if (!nativeGemm(type)) {
    emulatedGemms.insert(type);
    return false;
  }
  // Only Fastest asks whether native is faster (measuring the rate).
  if (lowPrecisionRunsNative(gemms, gemms == CpuGemms::Fastest && nativeFaster(type),
                             convolutionPositions))
    return true;
  widenedGemms.insert(type);
  return false;
}

} // namespace amprt
