//===- NcclCommunicator.cpp - collectives through NCCL --------------------===//
//
// In-place ncclAllReduce on the caller's stream: f32, bf16 and f16 sums
// (NCCL accumulates the 16-bit types per hop in their own type after a
// widening add), ncclAvg for the mean, ncclMax for the maximum.
//
//===----------------------------------------------------------------------===//

#include "amprt/NcclCommunicator.h"
#include "amprt/Session.h"

#include <cuda_runtime_api.h>
#include <nccl.h>

#include <cstring>
#include <string>

namespace amprt {
namespace {

static_assert(sizeof(NcclId::bytes) == sizeof(ncclUniqueId), "NCCL's id changed size");

Status checked(ncclResult_t result, const char *what) {
  if (result == ncclSuccess)
    return Status::ok();
  return Status::error(std::string("NCCL: ") + what + ": " + ncclGetErrorString(result));
}

class NcclCommunicator : public Communicator {
public:
  NcclCommunicator(ncclComm_t comm, int rank, int size, double timeout)
      : comm(comm), rank_(rank), size_(size), timeout(timeout) {}
  ~NcclCommunicator() override {
    if (comm)
      ncclCommDestroy(comm);
  }
  int rank() const override { return rank_; }
  int size() const override { return size_; }
  bool onDevice() const override { return true; }
  double timeoutSeconds() const override { return timeout; }

  Status allReduce(void *, int64_t, DType, Reduction) override {
    return Status::error("an NCCL communicator reduces GPU memory: use allReduceOnStream");
  }

  Status allReduceOnStream(void *data, int64_t count, DType dtype, Reduction reduction,
                           void *cudaStream) override {
    if (!comm)
      return Status::error("rank " + std::to_string(rank_) +
                           ": the NCCL communicator was aborted after a timeout");
    ncclDataType_t type;
    switch (dtype) {
    case DType::F32: type = ncclFloat32; break;
    case DType::BF16: type = ncclBfloat16; break;
    case DType::F16: type = ncclFloat16; break;
    default: return Status::error(std::string("all-reduce: cannot sum ") + dtypeName(dtype));
    }
    ncclRedOp_t op = reduction == Reduction::Sum ? ncclSum
                     : reduction == Reduction::Mean ? ncclAvg
                                                    : ncclMax;
    if (reduction == Reduction::Max && dtype != DType::F32)
      return Status::error("all-reduce: the maximum is taken over f32 values only");
    ncclResult_t result = ncclAllReduce(data, data, static_cast<size_t>(count), type, op, comm,
                                        static_cast<cudaStream_t>(cudaStream));
    if (result == ncclSuccess)
      return Status::ok();
    return Status::error("ncclAllReduce failed on rank " + std::to_string(rank_) + " of " +
                         std::to_string(size_) + ": " + ncclGetErrorString(result) + " (" +
                         ncclGetLastError(comm) + ")");
  }

  Status asyncError() override {
    if (!comm)
      return Status::ok();
    ncclResult_t state = ncclSuccess;
    if (ncclCommGetAsyncError(comm, &state) != ncclSuccess)
      return Status::ok(); // cannot tell: the timeout still bounds the wait
    if (state == ncclSuccess || state == ncclInProgress)
      return Status::ok();
    return Status::error(std::string("NCCL: ") + ncclGetErrorString(state) + " (" +
                         ncclGetLastError(comm) + ")");
  }

  void abort() override {
    if (comm)
      ncclCommAbort(comm);
    comm = nullptr;
  }

private:
  ncclComm_t comm;
  int rank_, size_;
  double timeout;
};

} // namespace

Status newNcclId(NcclId *id) {
  ncclUniqueId unique;
  AMPRT_RETURN_IF_ERROR(checked(ncclGetUniqueId(&unique), "making the world's id"));
  std::memcpy(id->bytes, &unique, sizeof unique);
  return Status::ok();
}

Status makeNcclCommunicator(const NcclId &id, int rank, int size, int cudaDevice,
                            double timeoutSeconds, std::unique_ptr<Communicator> *result) {
  if (cudaError_t error = cudaSetDevice(cudaDevice))
    return Status::error("NCCL: selecting GPU " + std::to_string(cudaDevice) + " for rank " +
                         std::to_string(rank) + ": " + cudaGetErrorString(error));
  ncclUniqueId unique;
  std::memcpy(&unique, id.bytes, sizeof unique);
  ncclComm_t comm = nullptr;
  AMPRT_RETURN_IF_ERROR(checked(ncclCommInitRank(&comm, size, unique, rank),
                                ("joining as rank " + std::to_string(rank) + " of " +
                                 std::to_string(size) + " on GPU " + std::to_string(cudaDevice))
                                    .c_str()));
  *result = std::make_unique<NcclCommunicator>(comm, rank, size, timeoutSeconds);
  return Status::ok();
}

} // namespace amprt
