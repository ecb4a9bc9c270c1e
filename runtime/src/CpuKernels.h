//===- CpuKernels.h - CPU backend kernels -----------------------*- C++ -*-===//
#ifndef AMPRT_CPUKERNELS_H
#define AMPRT_CPUKERNELS_H

#include "Device.h"

#include <map>
#include <memory>
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
  /// Low precisions some GEMM of this session emulates.
  std::set<DType> emulatedGemms;
  /// Whether oneDNN has a GEMM of `type` operands here (probed once).
  bool nativeGemm(DType type);

private:
  std::map<DType, bool> probed;
};

/// Checks `kernel` against its tensors and binds it. Errors name the node.
Status buildCpuKernel(const proto::Kernel &kernel, std::vector<TensorRef> inputs,
                      std::vector<TensorRef> outputs, CpuContext &context,
                      std::unique_ptr<CpuKernel> *result);

} // namespace amprt

#endif // AMPRT_CPUKERNELS_H
