//===- CpuKernels.h - CPU backend kernels -----------------------*- C++ -*-===//
#ifndef AMPRT_CPUKERNELS_H
#define AMPRT_CPUKERNELS_H

#include "amprt/Session.h"
#include "plan.pb.h"

#include <memory>
#include <vector>

namespace dnnl {
struct engine;
struct stream;
} // namespace dnnl

namespace amprt {

/// A tensor of the running program: where it lives and what it is.
struct TensorRef {
  void *data = nullptr;
  DType dtype = DType::F32;
  std::vector<int64_t> shape;
  int64_t size() const {
    int64_t n = 1;
    for (int64_t d : shape)
      n *= d;
    return n;
  }
  float *f32() const { return static_cast<float *>(data); }
  int64_t *i64() const { return static_cast<int64_t *>(data); }
};

/// One kernel of a program, bound to its tensors when the session is made
/// (the arena never moves), so running it is only the arithmetic.
class CpuKernel {
public:
  virtual ~CpuKernel() = default;
  virtual Status run() = 0;
};

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
