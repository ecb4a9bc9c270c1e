//===- Device.h - what a backend provides to the Session --------*- C++ -*-===//
//
// The Session is written once against this interface; the CPU backend
// (CpuDevice.cpp) and the CUDA backend (cuda/) implement it. A backend owns
// its memory, builds one kernel per plan kernel (checked against its tensors
// when the session is made) and runs a program's kernels: the CPU one after
// the other, the CUDA backend as one captured CUDA graph.
//
//===----------------------------------------------------------------------===//
#ifndef AMPRT_DEVICE_H
#define AMPRT_DEVICE_H

#include "amprt/Session.h"
#include "plan.pb.h"

#include <memory>
#include <vector>

namespace amprt {

class Communicator;

/// A tensor of the running program: where it lives (host or device memory,
/// as its backend decides) and what it is.
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
  size_t bytes() const { return size() * dtypeSize(dtype); }
  float *f32() const { return static_cast<float *>(data); }
  int64_t *i64() const { return static_cast<int64_t *>(data); }
};

/// One kernel of a program, bound to its tensors when the session is made
/// (memory never moves), so running it is only the arithmetic (CPU) or one
/// or more launches on the backend's stream (CUDA).
class Kernel {
public:
  virtual ~Kernel() = default;
  virtual Status run() = 0;
};

/// A program's kernels, ready to run on one device.
class Executable {
public:
  virtual ~Executable() = default;
  /// Runs every kernel in order. It may return before the device finishes;
  /// Device::synchronize waits and reports errors kernels raised on it.
  virtual Status runAll() = 0;
  /// Runs kernel `k` alone and waits for it (profiling, numerics checks).
  virtual Status runOne(size_t k) = 0;
};

class Device {
public:
  virtual ~Device() = default;
  virtual const char *name() const = 0;
  /// `bytes` of zeroed memory, 256-byte aligned; null on failure.
  virtual void *allocate(size_t bytes) = 0;
  virtual void release(void *data) = 0;
  /// Copies a feed in, ordered with the kernels and without waiting for them
  /// (a GPU stages it in a pinned buffer kept for that destination, reused
  /// by every step's feed).
  virtual Status copyIn(void *device, const void *host, size_t bytes) = 0;
  /// Copies host data in now, after queued work, keeping nothing (state,
  /// constants, checkpoints: copied once, not every step).
  virtual Status write(void *device, const void *host, size_t bytes) = 0;
  /// Copies device data out after everything before it has finished.
  virtual Status copyOut(void *host, const void *device, size_t bytes) = 0;
  /// Waits for all queued work; reports what failed on the device.
  virtual Status synchronize() = 0;
  virtual Status buildKernel(const proto::Kernel &kernel, std::vector<TensorRef> inputs,
                             std::vector<TensorRef> outputs,
                             std::unique_ptr<Kernel> *result) = 0;
  virtual std::unique_ptr<Executable>
  makeExecutable(std::vector<std::unique_ptr<Kernel>> kernels) = 0;
  /// Low precisions whose GEMMs the kernels built so far emulate in f32.
  virtual std::vector<DType> emulatedGemmTypes() const { return {}; }
  /// Low precisions whose GEMMs or convolutions run widened by choice.
  virtual std::vector<DType> widenedGemmTypes() const { return {}; }
};

/// `communicator` (not owned, may be null) serves the plan's all_reduce kernels.
std::unique_ptr<Device> makeCpuDevice(int numThreads, CpuGemms gemms,
                                      Communicator *communicator);
/// The CUDA backend, or an error saying why there is none (not built in,
/// no GPU, driver too old). `communicator` as for the CPU.
Status makeCudaDevice(int deviceIndex, bool allowTf32, Communicator *communicator,
                      std::unique_ptr<Device> *device);
/// The names of the usable GPUs, or why there are none.
Status cudaDeviceNames(std::vector<std::string> *names);

} // namespace amprt

#endif // AMPRT_DEVICE_H
