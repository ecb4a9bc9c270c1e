//===- CpuDevice.cpp - the CPU backend behind the Device interface --------===//

#include "CpuKernels.h"

#include <cstdlib>
#include <cstring>

#ifdef _OPENMP
#include <omp.h>
#endif

namespace amprt {
namespace {

/// OpenMP's thread count belongs to the calling thread (its nthreads ICV),
/// and oneDNN reads it both when a primitive is built and when it runs. A
/// session sets its own count around its kernel builds and runs only: the
/// embedder's setting is left as it was, and sessions with different counts
/// can run on different threads.
class ThreadCountScope {
public:
  explicit ThreadCountScope(int numThreads) {
#ifdef _OPENMP
    if (numThreads > 0) {
      previous = omp_get_max_threads();
      omp_set_num_threads(numThreads);
    }
#else
    (void)numThreads;
#endif
  }
  ~ThreadCountScope() {
#ifdef _OPENMP
    if (previous > 0)
      omp_set_num_threads(previous);
#endif
  }
  ThreadCountScope(const ThreadCountScope &) = delete;
  ThreadCountScope &operator=(const ThreadCountScope &) = delete;

private:
  int previous = 0;
};

class CpuExecutable : public Executable {
public:
  CpuExecutable(std::vector<std::unique_ptr<Kernel>> kernels, int numThreads)
      : kernels(std::move(kernels)), numThreads(numThreads) {}
  Status runAll() override {
    ThreadCountScope threads(numThreads);
    for (auto &kernel : kernels)
      AMPRT_RETURN_IF_ERROR(kernel->run());
    return Status::ok();
  }
  Status runOne(size_t k) override {
    ThreadCountScope threads(numThreads);
    return kernels[k]->run();
  }

private:
  std::vector<std::unique_ptr<Kernel>> kernels;
  int numThreads;
};

class CpuDevice : public Device {
public:
  CpuDevice(int numThreads, CpuGemms gemms, Communicator *communicator)
      : numThreads(numThreads) {
    context.communicator = communicator;
    context.gemms = gemms;
  }
  const char *name() const override { return "cpu"; }
  void *allocate(size_t bytes) override {
    // 256-byte aligned (oneDNN wants 64), zeroed: arenas and state start at 0.
    size_t rounded = (bytes + 255) / 256 * 256;
    void *data = std::aligned_alloc(256, rounded ? rounded : 256);
    if (data)
      std::memset(data, 0, rounded ? rounded : 256);
    return data;
  }
  void release(void *data) override { std::free(data); }
  Status copyIn(void *device, const void *host, size_t bytes) override {
    if (device != host)
      std::memcpy(device, host, bytes);
    return Status::ok();
  }
  Status write(void *device, const void *host, size_t bytes) override {
    return copyIn(device, host, bytes);
  }
  Status copyOut(void *host, const void *device, size_t bytes) override {
    if (device != host)
      std::memcpy(host, device, bytes);
    return Status::ok();
  }
  Status synchronize() override { return Status::ok(); }
  Status buildKernel(const proto::Kernel &kernel, std::vector<TensorRef> inputs,
                     std::vector<TensorRef> outputs, std::unique_ptr<Kernel> *result) override {
    ThreadCountScope threads(numThreads);
    return buildCpuKernel(kernel, std::move(inputs), std::move(outputs), context, result);
  }
  std::unique_ptr<Executable>
  makeExecutable(std::vector<std::unique_ptr<Kernel>> kernels) override {
    return std::make_unique<CpuExecutable>(std::move(kernels), numThreads);
  }
  std::vector<DType> emulatedGemmTypes() const override {
    return {context.emulatedGemms.begin(), context.emulatedGemms.end()};
  }
  std::vector<DType> widenedGemmTypes() const override {
    return {context.widenedGemms.begin(), context.widenedGemms.end()};
  }

private:
  int numThreads; // 0: the calling thread's OpenMP default
  CpuContext context;
};

} // namespace

std::unique_ptr<Device> makeCpuDevice(int numThreads, CpuGemms gemms,
                                      Communicator *communicator) {
  return std::make_unique<CpuDevice>(numThreads, gemms, communicator);
}

} // namespace amprt
