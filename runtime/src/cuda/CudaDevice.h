//===- CudaDevice.h - the CUDA backend's shared state ----------*- C++ -*-===//
#ifndef AMPRT_CUDA_CUDADEVICE_H
#define AMPRT_CUDA_CUDADEVICE_H

#include "CudaLaunch.h"
#include "Device.h"
#include "amprt/KernelRegistry.h"

#include <cublasLt.h>
#include <cudnn.h>
#include <cuda_runtime_api.h>

#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <tuple>
#include <vector>

namespace amprt::cuda {

Status check(cudaError_t error, const char *what);
Status check(cublasStatus_t status, const char *what);
Status check(cudnnStatus_t status, const char *what);

/// Device memory a kernel owns (scratch, pointer tables), freed with it; or
/// that kernels of one stream take turns using (cuDNN's workspace, staging
/// of results), grown with `reserve` while they are built and read when
/// they run.
class DeviceScratch {
public:
  DeviceScratch() = default;
  DeviceScratch(const DeviceScratch &) = delete;
  ~DeviceScratch();
  Status allocate(size_t bytes);
  /// Allocates and fills from the host (setup time: synchronous).
  Status upload(const void *host, size_t bytes);
  /// At least `bytes`: reallocated (contents lost) when larger.
  Status reserve(size_t bytes);
  template <typename T> T *as() const { return static_cast<T *>(data); }

private:
  void *data = nullptr;
  size_t capacity = 0;
};

/// What the kernels of one device share: its stream, cuBLASLt handle and
/// workspace, the algorithm cache and the fault flag with its messages.
struct CudaContext {
  cudaStream_t stream = nullptr;
  cublasLtHandle_t lt = nullptr;
  void *workspace = nullptr;
  size_t workspaceBytes = 32u << 20;
  bool allowTf32 = false;
  int *errorFlag = nullptr;              // device int, 0 when all is well
  std::vector<std::string> errorReasons; // code - 1 -> message
  /// cuDNN's handle (made by the first convolution), its workspace and the
  /// staging of results widened to f32.
  cudnnHandle_t dnn = nullptr;
  DeviceScratch dnnWorkspace, dnnStaging;
  /// cuBLASLt's chosen algorithm per GEMM shape and type.
  std::map<std::string, cublasLtMatmulAlgo_t> algorithms;
  /// Serves the plan's all_reduce kernels (not owned; null: one rank).
  Communicator *communicator = nullptr;
  /// Why the collectives were aborted, once they were: the captured graph
  /// holds them, so the session must not run again.
  std::string abandoned;

  /// Host work the stream runs (an all-reduce staged through the host)
  /// cannot return a Status: it leaves its failure here for synchronize.
  void reportHostFault(const std::string &message) {
    std::lock_guard<std::mutex> lock(hostFaultMutex);
    if (hostFault.empty())
      hostFault = message;
  }
  std::string takeHostFault() {
    std::lock_guard<std::mutex> lock(hostFaultMutex);
    return std::move(hostFault);
  }

  ErrorSink errorSink(const proto::Kernel &kernel, const std::string &reason) {
    errorReasons.push_back("kernel '" + kernel.op() + "' at node '" + kernel.node() + "': " +
                           reason);
    return {errorFlag, static_cast<int>(errorReasons.size())};
  }

private:
  std::mutex hostFaultMutex;
  std::string hostFault;
};

/// A kernel of this backend: run() enqueues its launches on the stream.
class CudaKernel : public Kernel {
public:
  /// The plan's launch_group: kernels that may share one launch (0: none).
  int32_t launchGroup = 0;
  /// Runs before the program's graph is captured, outside the capture:
  /// libraries that load their code at first use (cuDNN) do it here.
  virtual Status warmUp() { return Status::ok(); }
};

Status buildCudaMatmul(const proto::Kernel &kernel, const std::vector<TensorRef> &in,
                       const TensorRef &out, CudaContext &context,
                       std::unique_ptr<Kernel> *result);
Status buildCudaKernel(const proto::Kernel &kernel, const std::vector<TensorRef> &in,
                       const std::vector<TensorRef> &out, CudaContext &context,
                       std::unique_ptr<Kernel> *result);
/// Convolutions through cuDNN (CudaConvolution.cpp).
Status buildCudaConvolution(const proto::Kernel &kernel, KernelId id,
                            const std::vector<TensorRef> &in, const TensorRef &out,
                            CudaContext &context, std::unique_ptr<Kernel> *result);
/// Pooling, batch norm, pad/slice/concat and dropout (CudaCnnOps.cpp).
Status buildCudaCnnKernel(const proto::Kernel &kernel, KernelId id,
                          const std::vector<TensorRef> &in, const std::vector<TensorRef> &out,
                          CudaContext &context, std::unique_ptr<Kernel> *result);
/// all_reduce: through the context's communicator (CudaCollectives.cpp).
Status buildCudaAllReduce(const proto::Kernel &kernel, const std::vector<TensorRef> &in,
                          const std::vector<TensorRef> &out, CudaContext &context,
                          std::unique_ptr<Kernel> *result);
/// A kernel given as a closure that enqueues its launches.
std::unique_ptr<Kernel> launcher(std::function<cudaError_t()> launch, const char *what);

/// The order a program's graph launches: its kernels, except that the
/// plan's launch groups (runs of optimizer updates, unscales with the
/// non-finite check of their results) become one launch each.
struct GraphSchedule {
  std::vector<std::unique_ptr<Kernel>> merged; // owned here
  std::vector<Kernel *> order;
};
Status scheduleForGraph(const std::vector<std::unique_ptr<Kernel>> &kernels,
                        CudaContext &context, GraphSchedule *schedule);

} // namespace amprt::cuda

#endif // AMPRT_CUDA_CUDADEVICE_H
