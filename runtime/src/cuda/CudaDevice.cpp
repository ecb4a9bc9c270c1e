//===- CudaDevice.cpp - memory, transfers and CUDA graphs -----------------===//
//
// One stream per session. Feeds are staged through pinned buffers and copied
// asynchronously; a program's kernels are captured once into a CUDA graph
// and replayed each step, so a step costs one graph launch and the host
// never waits for the GPU unless it reads something back.
//
//===----------------------------------------------------------------------===//

#include "CudaDevice.h"

#include "amprt/Communicator.h"

#include <chrono>
#include <cstdio>
#include <cstring>
#include <thread>

namespace amprt::cuda {

Status check(cudaError_t error, const char *what) {
  if (error == cudaSuccess)
    return Status::ok();
  return Status::error(std::string("CUDA: ") + what + ": " + cudaGetErrorString(error));
}

Status check(cudnnStatus_t status, const char *what) {
  if (status == CUDNN_STATUS_SUCCESS)
    return Status::ok();
  return Status::error(std::string("cuDNN: ") + what + ": " + cudnnGetErrorString(status));
}

Status check(cublasStatus_t status, const char *what) {
  if (status == CUBLAS_STATUS_SUCCESS)
    return Status::ok();
  return Status::error(std::string("cuBLASLt: ") + what + ": status " +
                       std::to_string(static_cast<int>(status)));
}

DeviceScratch::~DeviceScratch() {
  if (data)
    cudaFree(data);
}

Status DeviceScratch::allocate(size_t bytes) {
  AMPRT_RETURN_IF_ERROR(check(cudaMalloc(&data, bytes ? bytes : 1), "allocating scratch"));
  capacity = bytes;
  return check(cudaMemset(data, 0, bytes ? bytes : 1), "clearing scratch");
}

Status DeviceScratch::reserve(size_t bytes) {
  if (data && bytes <= capacity)
    return Status::ok();
  if (data)
    AMPRT_RETURN_IF_ERROR(check(cudaFree(data), "freeing scratch"));
  data = nullptr;
  return allocate(bytes);
}

Status DeviceScratch::upload(const void *host, size_t bytes) {
  AMPRT_RETURN_IF_ERROR(allocate(bytes));
  return check(cudaMemcpy(data, host, bytes, cudaMemcpyHostToDevice), "uploading a table");
}

namespace {

/// Pinned host memory for one destination, reused each step. Its event marks
/// the end of the last copy from it, so it is refilled only after that.
struct PinnedStage {
  void *host = nullptr;
  size_t bytes = 0;
  cudaEvent_t copied = nullptr;
};

/// Gives up on the device's collectives (a timeout, or NCCL's own error):
/// aborts them so the stream drains, and marks the context so that no graph
/// that recorded them runs again.
Status abandonCollectives(CudaContext &context, const std::string &why) {
  Communicator *communicator = context.communicator;
  communicator->abort();
  context.abandoned = "rank " + std::to_string(communicator->rank()) + " of " +
                      std::to_string(communicator->size()) + ": " + why;
  // Aborted NCCL kernels return; give them a moment, not forever.
  auto drained = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (cudaStreamQuery(context.stream) == cudaErrorNotReady &&
         std::chrono::steady_clock::now() < drained)
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  return Status::error(context.abandoned);
}

/// Waits for the stream. NCCL's kernels wait for their peers forever, so
/// with a device-memory communicator the wait is bounded by its timeout and
/// NCCL's asynchronous errors are polled: either ends the collectives.
Status waitForStream(CudaContext &context) {
  Communicator *communicator = context.communicator;
  if (!communicator || !communicator->onDevice() || communicator->timeoutSeconds() <= 0)
    return check(cudaStreamSynchronize(context.stream), "running the step");
  auto deadline = std::chrono::steady_clock::now() +
                  std::chrono::duration<double>(communicator->timeoutSeconds());
  for (int polls = 0;; ++polls) {
    cudaError_t state = cudaStreamQuery(context.stream);
    if (state != cudaErrorNotReady)
      return check(state, "running the step");
    if (polls % 64 == 0)
      if (Status health = communicator->asyncError(); !health)
        return abandonCollectives(context, health.message());
    if (std::chrono::steady_clock::now() > deadline) {
      char seconds[32];
      std::snprintf(seconds, sizeof seconds, "%g s", communicator->timeoutSeconds());
      return abandonCollectives(context, std::string("the step did not finish within ") +
                                             seconds +
                                             " (its collectives were aborted): another rank "
                                             "has stopped, hangs or cannot be reached");
    }
    if (polls > 1000)
      std::this_thread::sleep_for(std::chrono::microseconds(100));
  }
}

/// Waits for everything queued, then reports what failed: the kernels'
/// fault flag (read and cleared), a host function's fault.
Status finishQueuedWork(CudaContext &context) {
  AMPRT_RETURN_IF_ERROR(waitForStream(context));
  int fault = 0;
  AMPRT_RETURN_IF_ERROR(
      check(cudaMemcpy(&fault, context.errorFlag, sizeof(int), cudaMemcpyDeviceToHost),
            "reading the fault flag"));
  if (fault != 0)
    cudaMemset(context.errorFlag, 0, sizeof(int));
  if (std::string hostFault = context.takeHostFault(); !hostFault.empty())
    return Status::error(hostFault);
  if (fault == 0)
    return Status::ok();
  if (fault < 1 || fault > static_cast<int>(context.errorReasons.size()))
    return Status::error("a kernel reported an unknown fault");
  return Status::error(context.errorReasons[fault - 1]);
}

class CudaExecutable : public Executable {
public:
  CudaExecutable(std::vector<std::unique_ptr<Kernel>> kernels, CudaContext &context)
      : kernels(std::move(kernels)), context(context) {}
  ~CudaExecutable() override {
    if (graph)
      cudaGraphExecDestroy(graph);
  }

  Status runAll() override {
    if (!context.abandoned.empty()) // the graph holds aborted collectives
      return Status::error(context.abandoned + "; this session cannot run again");
    if (!graph)
      AMPRT_RETURN_IF_ERROR(capture());
    return check(cudaGraphLaunch(graph, context.stream), "launching the step's graph");
  }

  Status runOne(size_t k) override {
    if (!context.abandoned.empty())
      return Status::error(context.abandoned + "; this session cannot run again");
    AMPRT_RETURN_IF_ERROR(kernels[k]->run());
    return finishQueuedWork(context);
  }

private:
  /// Records every kernel's launches once; replaying the graph reruns them
  /// with the same pointers (memory never moves) and no host work.
  Status capture() {
    GraphSchedule schedule;
    AMPRT_RETURN_IF_ERROR(scheduleForGraph(kernels, context, &schedule));
    for (Kernel *kernel : schedule.order)
      if (auto *cudaKernel = dynamic_cast<CudaKernel *>(kernel))
        AMPRT_RETURN_IF_ERROR(cudaKernel->warmUp());
    AMPRT_RETURN_IF_ERROR(check(cudaStreamSynchronize(context.stream), "warming up"));
    cudaGraph_t recorded = nullptr;
    AMPRT_RETURN_IF_ERROR(check(
        cudaStreamBeginCapture(context.stream, cudaStreamCaptureModeThreadLocal),
        "starting the graph capture"));
    Status status = Status::ok();
    for (Kernel *kernel : schedule.order)
      if (status = kernel->run(); !status.isOk())
        break;
    cudaError_t ended = cudaStreamEndCapture(context.stream, &recorded);
    AMPRT_RETURN_IF_ERROR(status);
    AMPRT_RETURN_IF_ERROR(check(ended, "capturing the step"));
    cudaError_t made = cudaGraphInstantiate(&graph, recorded, 0);
    cudaGraphDestroy(recorded);
    merged = std::move(schedule.merged); // the graph's launches read their tables
    return check(made, "instantiating the step's graph");
  }

  std::vector<std::unique_ptr<Kernel>> kernels; // one per plan kernel (runOne)
  std::vector<std::unique_ptr<Kernel>> merged;  // multi-tensor kernels of the graph
  CudaContext &context;
  cudaGraphExec_t graph = nullptr;
};

class CudaDevice : public Device {
public:
  ~CudaDevice() override {
    if (context.stream)
      cudaStreamSynchronize(context.stream);
    for (auto &[target, stage] : stages) {
      cudaFreeHost(stage.host);
      cudaEventDestroy(stage.copied);
    }
    if (readBack)
      cudaFreeHost(readBack);
    if (context.workspace)
      cudaFree(context.workspace);
    if (context.errorFlag)
      cudaFree(context.errorFlag);
    if (context.lt)
      cublasLtDestroy(context.lt);
    if (context.dnn)
      cudnnDestroy(context.dnn);
    if (context.stream)
      cudaStreamDestroy(context.stream);
  }

  Status init(int index, bool allowTf32, Communicator *communicator) {
    context.communicator = communicator;
    int count = 0;
    AMPRT_RETURN_IF_ERROR(check(cudaGetDeviceCount(&count), "no usable GPU"));
    if (index < 0 || index >= count)
      return Status::error("no CUDA device " + std::to_string(index) + " (found " +
                           std::to_string(count) + ")");
    AMPRT_RETURN_IF_ERROR(check(cudaSetDevice(index), "selecting the GPU"));
    cudaDeviceProp properties;
    AMPRT_RETURN_IF_ERROR(check(cudaGetDeviceProperties(&properties, index), "querying the GPU"));
    deviceName = properties.name;
    context.allowTf32 = allowTf32;
    AMPRT_RETURN_IF_ERROR(
        check(cudaStreamCreateWithFlags(&context.stream, cudaStreamNonBlocking), "making a stream"));
    AMPRT_RETURN_IF_ERROR(check(cublasLtCreate(&context.lt), "creating the handle"));
    AMPRT_RETURN_IF_ERROR(
        check(cudaMalloc(&context.workspace, context.workspaceBytes), "allocating the workspace"));
    AMPRT_RETURN_IF_ERROR(check(cudaMalloc(reinterpret_cast<void **>(&context.errorFlag), sizeof(int)), "allocating a flag"));
    return check(cudaMemset(context.errorFlag, 0, sizeof(int)), "clearing the flag");
  }

  const char *name() const override { return deviceName.c_str(); }

  void *allocate(size_t bytes) override {
    void *data = nullptr;
    if (cudaMalloc(&data, bytes ? bytes : 256) != cudaSuccess)
      return nullptr;
    if (cudaMemset(data, 0, bytes ? bytes : 256) != cudaSuccess) {
      cudaFree(data);
      return nullptr;
    }
    return data;
  }

  void release(void *data) override {
    cudaStreamSynchronize(context.stream);
    cudaFree(data);
  }

  Status copyIn(void *device, const void *host, size_t bytes) override {
    PinnedStage &stage = stages[device];
    if (stage.bytes < bytes) {
      if (stage.host) {
        cudaEventSynchronize(stage.copied);
        cudaFreeHost(stage.host);
      }
      AMPRT_RETURN_IF_ERROR(check(cudaMallocHost(&stage.host, bytes), "pinning a feed buffer"));
      stage.bytes = bytes;
      if (!stage.copied)
        AMPRT_RETURN_IF_ERROR(check(
            cudaEventCreateWithFlags(&stage.copied, cudaEventDisableTiming), "making an event"));
    } else {
      // The previous copy out of this buffer must be done before refilling it.
      AMPRT_RETURN_IF_ERROR(check(cudaEventSynchronize(stage.copied), "waiting for a copy"));
    }
    std::memcpy(stage.host, host, bytes);
    AMPRT_RETURN_IF_ERROR(check(
        cudaMemcpyAsync(device, stage.host, bytes, cudaMemcpyHostToDevice, context.stream),
        "copying a feed"));
    return check(cudaEventRecord(stage.copied, context.stream), "recording a copy");
  }

  Status write(void *device, const void *host, size_t bytes) override {
    AMPRT_RETURN_IF_ERROR(synchronize());
    return check(cudaMemcpy(device, host, bytes, cudaMemcpyHostToDevice), "writing state");
  }

  Status copyOut(void *host, const void *device, size_t bytes) override {
    if (readBackBytes < bytes) {
      if (readBack)
        cudaFreeHost(readBack);
      readBack = nullptr;
      AMPRT_RETURN_IF_ERROR(check(cudaMallocHost(&readBack, bytes), "pinning a read buffer"));
      readBackBytes = bytes;
    }
    AMPRT_RETURN_IF_ERROR(check(
        cudaMemcpyAsync(readBack, device, bytes, cudaMemcpyDeviceToHost, context.stream),
        "reading back"));
    AMPRT_RETURN_IF_ERROR(synchronize());
    std::memcpy(host, readBack, bytes);
    return Status::ok();
  }

  Status synchronize() override { return finishQueuedWork(context); }

  Status buildKernel(const proto::Kernel &kernel, std::vector<TensorRef> inputs,
                     std::vector<TensorRef> outputs, std::unique_ptr<Kernel> *result) override {
    Status status = buildCudaKernel(kernel, inputs, outputs, context, result);
    if (!status.isOk())
      return Status::error("kernel '" + kernel.op() + "' at node '" + kernel.node() +
                           "': " + status.message());
    return status;
  }

  std::unique_ptr<Executable>
  makeExecutable(std::vector<std::unique_ptr<Kernel>> kernels) override {
    return std::make_unique<CudaExecutable>(std::move(kernels), context);
  }

private:
  std::string deviceName;
  CudaContext context;
  std::map<void *, PinnedStage> stages;
  void *readBack = nullptr;
  size_t readBackBytes = 0;
};

} // namespace
} // namespace amprt::cuda

namespace amprt {

Status makeCudaDevice(int deviceIndex, bool allowTf32, Communicator *communicator,
                      std::unique_ptr<Device> *device) {
  auto cudaDevice = std::make_unique<cuda::CudaDevice>();
  AMPRT_RETURN_IF_ERROR(cudaDevice->init(deviceIndex, allowTf32, communicator));
  *device = std::move(cudaDevice);
  return Status::ok();
}

Status cudaDeviceNames(std::vector<std::string> *names) {
  int count = 0;
  AMPRT_RETURN_IF_ERROR(cuda::check(cudaGetDeviceCount(&count), "no usable GPU"));
  for (int i = 0; i < count; ++i) {
    cudaDeviceProp properties;
    AMPRT_RETURN_IF_ERROR(cuda::check(cudaGetDeviceProperties(&properties, i), "querying a GPU"));
    names->push_back(properties.name);
  }
  if (names->empty())
    return Status::error("no CUDA device found");
  return Status::ok();
}

} // namespace amprt
