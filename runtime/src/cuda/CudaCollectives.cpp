//===- CudaCollectives.cpp - all_reduce on the CUDA backend ---------------===//
//
// As on the CPU, one all_reduce kernel is one bucket of tensors: packed into
// one buffer, reduced across the ranks in one collective, unpacked into the
// outputs. With a device-memory communicator (NCCL) the bucket is packed in
// device memory and reduced on the step's stream, inside its CUDA graph.
// With a host-memory one (MPI) it is staged through pinned host memory and
// reduced by a host function the stream runs in order (cudaLaunchHostFunc,
// capturable too): the stream waits for the ranks, the host thread does not.
//
//===----------------------------------------------------------------------===//

#include "CudaDevice.h"
#include "KernelChecks.h"

#include "amprt/Communicator.h"

namespace amprt::cuda {
namespace {

/// The bucket's tensors and their places in the packed buffer.
struct Bucket {
  std::vector<TensorRef> in, out;
  DType dtype = DType::F32;
  Communicator::Reduction reduction = Communicator::Reduction::Mean;
  size_t bytes() const {
    size_t total = 0;
    for (const TensorRef &t : in)
      total += t.bytes();
    return total;
  }
  int64_t count() const { return static_cast<int64_t>(bytes() / dtypeSize(dtype)); }

  /// Enqueues the copies of the inputs into `packed` (or of `packed` into
  /// the outputs), of kind `kind`.
  cudaError_t pack(char *packed, cudaMemcpyKind kind, cudaStream_t stream) const {
    size_t offset = 0;
    for (const TensorRef &t : in) {
      if (cudaError_t e = cudaMemcpyAsync(packed + offset, t.data, t.bytes(), kind, stream))
        return e;
      offset += t.bytes();
    }
    return cudaSuccess;
  }
  cudaError_t unpack(const char *packed, cudaMemcpyKind kind, cudaStream_t stream) const {
    size_t offset = 0;
    for (const TensorRef &t : out) {
      if (cudaError_t e = cudaMemcpyAsync(t.data, packed + offset, t.bytes(), kind, stream))
        return e;
      offset += t.bytes();
    }
    return cudaSuccess;
  }
};

/// NCCL: the collective is one more launch on the stream.
class DeviceAllReduce : public CudaKernel {
public:
  DeviceAllReduce(Bucket bucket, CudaContext &context)
      : bucket(std::move(bucket)), context(context) {}
  Status init() { return packed.allocate(bucket.bytes()); }

  /// One reduction of the (scratch) buffer before the graph is captured:
  /// NCCL sets up its connections at a communicator's first collectives,
  /// which a capture must not record. Every rank warms up the same kernels
  /// in the same order, so these collectives match too.
  Status warmUp() override {
    return context.communicator->allReduceOnStream(packed.as<void>(), bucket.count(), bucket.dtype,
                                                   bucket.reduction, context.stream);
  }

  Status run() override {
    cudaStream_t stream = context.stream;
    AMPRT_RETURN_IF_ERROR(check(bucket.pack(packed.as<char>(), cudaMemcpyDeviceToDevice, stream),
                                "packing a gradient bucket"));
    AMPRT_RETURN_IF_ERROR(context.communicator->allReduceOnStream(
        packed.as<void>(), bucket.count(), bucket.dtype, bucket.reduction, stream));
    return check(bucket.unpack(packed.as<char>(), cudaMemcpyDeviceToDevice, stream),
                 "unpacking a gradient bucket");
  }

private:
  Bucket bucket;
  CudaContext &context;
  DeviceScratch packed;
};

/// MPI: device -> pinned host, reduce on the host in stream order, back.
class StagedAllReduce : public CudaKernel {
public:
  StagedAllReduce(Bucket bucket, CudaContext &context)
      : bucket(std::move(bucket)), context(context) {}
  ~StagedAllReduce() override {
    if (staging)
      cudaFreeHost(staging);
  }
  Status init() {
    return check(cudaMallocHost(&staging, bucket.bytes() ? bucket.bytes() : 1),
                 "pinning an all-reduce buffer");
  }

  Status run() override {
    cudaStream_t stream = context.stream;
    AMPRT_RETURN_IF_ERROR(check(bucket.pack(static_cast<char *>(staging),
                                            cudaMemcpyDeviceToHost, stream),
                                "staging a gradient bucket"));
    AMPRT_RETURN_IF_ERROR(
        check(cudaLaunchHostFunc(stream, &StagedAllReduce::reduce, this), "queueing the reduction"));
    return check(bucket.unpack(static_cast<const char *>(staging), cudaMemcpyHostToDevice, stream),
                 "unstaging a gradient bucket");
  }

private:
  /// Runs on CUDA's callback thread, which may not call CUDA: a failure is
  /// left for Device::synchronize to report. The MPI library must not call
  /// CUDA either, so it must not be a CUDA-aware build (Debian's Open MPI is
  /// not); with one, use NCCL.
  static void CUDART_CB reduce(void *self) {
    auto *kernel = static_cast<StagedAllReduce *>(self);
    const Bucket &b = kernel->bucket;
    Status status =
        kernel->context.communicator->allReduce(kernel->staging, b.count(), b.dtype, b.reduction);
    if (!status.isOk())
      kernel->context.reportHostFault(status.message());
  }

  Bucket bucket;
  CudaContext &context;
  void *staging = nullptr;
};

} // namespace

Status buildCudaAllReduce(const proto::Kernel &kernel, const std::vector<TensorRef> &in,
                          const std::vector<TensorRef> &out, CudaContext &context,
                          std::unique_ptr<Kernel> *result) {
  bool max = false;
  AMPRT_RETURN_IF_ERROR(checkAllReduce(kernel, in, out, context.communicator, &max));
  Bucket bucket{in, out, in[0].dtype,
                max ? Communicator::Reduction::Max : Communicator::Reduction::Mean};
  if (!context.communicator || context.communicator->size() == 1) {
    // A world of one: the mean and the maximum are the tensors themselves.
    *result = launcher(
        [bucket, stream = context.stream] {
          for (size_t i = 0; i < bucket.in.size(); ++i)
            if (bucket.in[i].data != bucket.out[i].data)
              if (cudaError_t e =
                      cudaMemcpyAsync(bucket.out[i].data, bucket.in[i].data, bucket.in[i].bytes(),
                                      cudaMemcpyDeviceToDevice, stream))
                return e;
          return cudaSuccess;
        },
        "all_reduce over one rank");
    return Status::ok();
  }
  if (context.communicator->onDevice()) {
    auto device = std::make_unique<DeviceAllReduce>(std::move(bucket), context);
    AMPRT_RETURN_IF_ERROR(device->init());
    *result = std::move(device);
  } else {
    auto staged = std::make_unique<StagedAllReduce>(std::move(bucket), context);
    AMPRT_RETURN_IF_ERROR(staged->init());
    *result = std::move(staged);
  }
  return Status::ok();
}

} // namespace amprt::cuda
