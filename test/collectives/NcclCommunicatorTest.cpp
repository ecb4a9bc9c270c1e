//===- NcclCommunicatorTest.cpp - amprt::nccl on the GPUs of this machine -===//
//
// Under mpirun -np N, one rank per GPU (N at most the GPU count; 1 works).
// Each rank reduces device buffers on a stream and reads them back. Exits
// 77 (skipped) where no GPU can be used.
//
//===----------------------------------------------------------------------===//

#include "CommunicatorTests.h"

#include "amprt/NcclCommunicator.h"

#include <cuda_runtime_api.h>
#include <gtest/gtest.h>
#include <mpi.h>

#include <cstdio>
#include <cstdlib>

namespace {

using amprt::Communicator;
using amprt::DType;

int worldRank() {
  int rank = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  return rank;
}

std::unique_ptr<Communicator> joinNccl(double timeout) {
  int rank = worldRank(), size = 1;
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  amprt::NcclId id{};
  if (rank == 0) {
    EXPECT_TRUE(amprt::newNcclId(&id));
  }
  MPI_Bcast(id.bytes, sizeof id.bytes, MPI_BYTE, 0, MPI_COMM_WORLD);
  std::unique_ptr<Communicator> communicator;
  amprt::Status status = amprt::makeNcclCommunicator(id, rank, size, rank, timeout, &communicator);
  EXPECT_TRUE(status) << status.message();
  return communicator;
}

TEST(NcclCommunicator, ReducesDeviceMemoryOnAStream) {
  auto communicator = joinNccl(0);
  ASSERT_TRUE(communicator);
  EXPECT_TRUE(communicator->onDevice());
  cudaStream_t stream;
  ASSERT_EQ(cudaStreamCreate(&stream), cudaSuccess);
  std::string mismatch = amptest::checkReductions(
      *communicator, [&](std::vector<char> &buffer, int64_t count, DType type,
                         Communicator::Reduction reduction) -> amprt::Status {
        void *device = nullptr;
        if (cudaMalloc(&device, buffer.size()) != cudaSuccess)
          return amprt::Status::error("cudaMalloc failed");
        cudaMemcpy(device, buffer.data(), buffer.size(), cudaMemcpyHostToDevice);
        amprt::Status status =
            communicator->allReduceOnStream(device, count, type, reduction, stream);
        cudaError_t synced = cudaStreamSynchronize(stream);
        cudaMemcpy(buffer.data(), device, buffer.size(), cudaMemcpyDeviceToHost);
        cudaFree(device);
        if (status && synced != cudaSuccess)
          return amprt::Status::error(cudaGetErrorString(synced));
        return status;
      });
  EXPECT_EQ(mismatch, "");
  float host = 0;
  EXPECT_FALSE(communicator->allReduce(&host, 1, DType::F32, Communicator::Reduction::Sum));
  cudaStreamDestroy(stream);
}

TEST(NcclCommunicator, AbortedIsAnErrorNotAHang) {
  auto communicator = joinNccl(5);
  ASSERT_TRUE(communicator);
  EXPECT_EQ(communicator->timeoutSeconds(), 5);
  communicator->abort();
  void *device = nullptr;
  ASSERT_EQ(cudaMalloc(&device, sizeof(float)), cudaSuccess);
  amprt::Status status =
      communicator->allReduceOnStream(device, 1, DType::F32, Communicator::Reduction::Sum, nullptr);
  EXPECT_FALSE(status);
  EXPECT_NE(status.message().find("aborted"), std::string::npos) << status.message();
  cudaFree(device);
}

} // namespace

int main(int argc, char **argv) {
  MPI_Init(&argc, &argv);
  int gpus = 0, size = 1;
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  if (cudaGetDeviceCount(&gpus) != cudaSuccess || gpus < size) {
    if (worldRank() == 0)
      std::printf("SKIPPED: %d rank(s) need as many GPUs, this machine has %d usable\n", size,
                  gpus);
    MPI_Finalize();
    return 77;
  }
  ::testing::InitGoogleTest(&argc, argv);
  int failed = RUN_ALL_TESTS();
  MPI_Finalize();
  return failed;
}
