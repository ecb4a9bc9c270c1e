//===- CpuKernels.h - CPU backend kernels -----------------------*- C++ -*-===//
#ifndef AMPRT_CPUKERNELS_H
#define AMPRT_CPUKERNELS_H

#include "Device.h"

#include <map>
#include <memory>
#include <optional>
#include <set>
#include <vector>

namespace dnnl {
struct engine;
struct stream;
} // namespace dnnl

namespace amprt {

class Communicator;

/// CPU kernels are plain Kernels whose run() does the arithmetic.
using CpuKernel = Kernel;

/// What kernels share within a session: the oneDNN engine and stream, and
/// the f32 staging buffers of emulated GEMMs (kernels run one at a time, so
/// one set serves them all; they grow to the largest GEMM when built).
struct CpuContext {
  CpuContext();
  ~CpuContext();
  std::unique_ptr<dnnl::engine> engine;
  std::unique_ptr<dnnl::stream> stream;
  std::vector<float> stagingA, stagingB, stagingC, stagingBias;
  /// f32 copies of low-precision convolution operands that run emulated.
  std::vector<float> widenedA, widenedB, widenedC;
  /// The session's communicator for all_reduce kernels (not owned); null
  /// runs as a world of one rank.
  Communicator *communicator = nullptr;
  /// Low precisions some GEMM of this session emulates (no native kernel).
  std::set<DType> emulatedGemms;
  /// Low precisions some GEMM or convolution runs widened by choice.
  std::set<DType> widenedGemms;
  CpuGemms gemms = CpuGemms::Native;
  /// Whether oneDNN has a GEMM of `type` operands here (probed once).
  bool nativeGemm(DType type);
  /// Whether a GEMM (convolutionPositions 0) or a convolution with that
  /// many output positions per image, of `type` operands, runs on its
  /// native kernel under `gemms`; records it in emulatedGemms or
  /// widenedGemms otherwise. Always true for f32.
  bool runsNative(DType type, int64_t convolutionPositions = 0);
  /// Whether native `type` kernels beat widened ones here (measured once).
  bool nativeFaster(DType type);
  /// measureBf16DotRate(), measured once per context.
  double bf16DotRateHere();

private:
  std::map<DType, bool> probed;
  std::optional<double> bf16DotRate;
};

/// Native bf16 pays where the CPU's bf16 dot products reach this fraction
/// of its f32 FMA rate: between the measured 0.5 (Sapphire Rapids without
/// AMX) and 1 (Cooper Lake), clear of both.
constexpr double kNativeBf16Rate = 0.75;
/// Convolutions with fewer output positions per image than this keep
/// native kernels even where they run at a lower rate (CpuGemmChoice.cpp).
constexpr int64_t kSmallConvolutionMap = 16;

/// This CPU's bf16 dot-product FLOP rate over its f32 FMA rate (a few
/// milliseconds of timing); 0 without AVX-512 BF16.
double measureBf16DotRate();
/// The choice behind CpuContext::runsNative for a type with a native kernel.
bool lowPrecisionRunsNative(CpuGemms policy, bool nativeFaster, int64_t convolutionPositions);

/// Checks `kernel` against its tensors and binds it. Errors name the node.
Status buildCpuKernel(const proto::Kernel &kernel, std::vector<TensorRef> inputs,
                      std::vector<TensorRef> outputs, CpuContext &context,
                      std::unique_ptr<CpuKernel> *result);

} // namespace amprt

#endif // AMPRT_CPUKERNELS_H
