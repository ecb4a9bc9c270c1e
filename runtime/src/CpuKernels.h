//===- CpuKernels.h - CPU backend kernels -----------------------*- C++ -*-===//
#ifndef AMPRT_CPUKERNELS_H
#define AMPRT_CPUKERNELS_H

#include "Device.h"

#include <memory>
#include <vector>

namespace dnnl {
struct engine;
struct stream;
} // namespace dnnl

namespace amprt {

/// CPU kernels are plain Kernels whose run() does the arithmetic.
using CpuKernel = Kernel;

/// What kernels share within a session: the oneDNN engine and stream.
struct CpuContext {
  CpuContext();
  ~CpuContext();
  std::unique_ptr<dnnl::engine> engine;
  std::unique_ptr<dnnl::stream> stream;
};

/// Checks `kernel` against its tensors and binds it. Errors name the node.
Status buildCpuKernel(const proto::Kernel &kernel, std::vector<TensorRef> inputs,
                      std::vector<TensorRef> outputs, CpuContext &context,
                      std::unique_ptr<CpuKernel> *result);

} // namespace amprt

#endif // AMPRT_CPUKERNELS_H
