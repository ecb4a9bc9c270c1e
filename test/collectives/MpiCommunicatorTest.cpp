//===- MpiCommunicatorTest.cpp - amprt::mpi under mpirun -np 2 ------------===//
//
// Every rank runs the same tests, so the collectives match up; mpirun's
// exit code is non-zero when any rank fails.
//
//===----------------------------------------------------------------------===//

#include "CommunicatorTests.h"

#include "amprt/MpiCommunicator.h"

#include <gtest/gtest.h>

#include <chrono>
#include <thread>

namespace {

using amprt::Communicator;
using amprt::DType;

TEST(MpiCommunicator, SumsMeansAndMaximaOfEveryType) {
  auto communicator = amprt::makeMpiCommunicator(MPI_COMM_WORLD);
  ASSERT_GE(communicator->size(), 2) << "run under mpirun -np 2 or more";
  EXPECT_FALSE(communicator->onDevice());
  std::string mismatch = amptest::checkReductions(
      *communicator, [&](std::vector<char> &buffer, int64_t count, DType type,
                         Communicator::Reduction reduction) {
        return communicator->allReduce(buffer.data(), count, type, reduction);
      });
  EXPECT_EQ(mismatch, "");
}

TEST(MpiCommunicator, WithATimeoutReducesTheSame) {
  auto communicator = amprt::makeMpiCommunicator(MPI_COMM_WORLD, /*timeoutSeconds=*/30);
  std::string mismatch = amptest::checkReductions(
      *communicator, [&](std::vector<char> &buffer, int64_t count, DType type,
                         Communicator::Reduction reduction) {
        return communicator->allReduce(buffer.data(), count, type, reduction);
      });
  EXPECT_EQ(mismatch, "");
}

TEST(MpiCommunicator, ANaNOnOneRankWinsTheMaximum) {
  auto communicator = amprt::makeMpiCommunicator(MPI_COMM_WORLD);
  float values[3] = {1.0f, static_cast<float>(communicator->rank()), -5.0f};
  if (communicator->rank() == 1)
    values[2] = NAN;
  ASSERT_TRUE(communicator->allReduce(values, 3, DType::F32, Communicator::Reduction::Max));
  EXPECT_EQ(values[0], 1.0f);
  EXPECT_EQ(values[1], static_cast<float>(communicator->size() - 1));
  EXPECT_TRUE(std::isnan(values[2]));
}

TEST(MpiCommunicator, RefusesWhatItCannotReduce) {
  auto communicator = amprt::makeMpiCommunicator(MPI_COMM_WORLD);
  uint16_t words[2] = {0, 0};
  amprt::Status status =
      communicator->allReduce(words, 2, DType::BF16, Communicator::Reduction::Max);
  EXPECT_FALSE(status.isOk());
  EXPECT_NE(status.message().find("f32"), std::string::npos) << status.message();
  EXPECT_FALSE(communicator->allReduceOnStream(words, 2, DType::BF16,
                                               Communicator::Reduction::Sum, nullptr));
}

// Last: rank 0's collective is left pending (the communicator is unusable
// after a timeout; amp-run then ends the job).
TEST(MpiCommunicator, ARankThatStopsAnsweringIsAnErrorAfterTheTimeout) {
  int rank = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  auto communicator = amprt::makeMpiCommunicator(MPI_COMM_WORLD, /*timeoutSeconds=*/1);
  if (rank == 0) {
    float value = 1.0f;
    auto start = std::chrono::steady_clock::now();
    amprt::Status status =
        communicator->allReduce(&value, 1, DType::F32, Communicator::Reduction::Sum);
    double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    ASSERT_FALSE(status.isOk());
    EXPECT_NE(status.message().find("rank 0 of"), std::string::npos) << status.message();
    EXPECT_NE(status.message().find("did not complete within 1 s"), std::string::npos)
        << status.message();
    EXPECT_GE(seconds, 1.0);
    EXPECT_LT(seconds, 2.0);
    // The ranks may now be in different collectives: a second call fails at
    // once instead of posting another that could pair with the wrong one.
    start = std::chrono::steady_clock::now();
    status = communicator->allReduce(&value, 1, DType::F32, Communicator::Reduction::Sum);
    seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    ASSERT_FALSE(status.isOk());
    EXPECT_NE(status.message().find("unusable from here on"), std::string::npos)
        << status.message();
    EXPECT_LT(seconds, 0.5);
  } else {
    // Silent: alive, but never joins the collective.
    std::this_thread::sleep_for(std::chrono::milliseconds(1500));
  }
  MPI_Barrier(MPI_COMM_WORLD);
}

} // namespace

int main(int argc, char **argv) {
  MPI_Init(&argc, &argv);
  ::testing::InitGoogleTest(&argc, argv);
  int failed = RUN_ALL_TESTS();
  MPI_Finalize();
  return failed;
}
