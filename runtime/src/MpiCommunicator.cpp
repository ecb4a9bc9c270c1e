//===- MpiCommunicator.cpp - collectives through MPI ----------------------===//
//
// f32 sums are MPI_SUM on MPI_FLOAT. bf16 and f16 travel as 16-bit words
// with a user-defined sum that widens both sides to f32, adds, and rounds
// once per combine (as NCCL does for these types); the maximum is a user
// op too, so that a NaN on any rank wins (C's comparison would drop it).
// Before each reduction the ranks meet at a non-blocking barrier polled
// against the communicator's timeout, so that a rank that never arrives is
// an error here rather than a hang. A rank that stops inside the reduction
// itself (MPI's blocking all-reduce, which cannot be abandoned) is caught
// by a watchdog thread, which calls the embedder's handler (amp-run's ends
// the process) once the reduction has run past the timeout.
//
//===----------------------------------------------------------------------===//

#include "amprt/MpiCommunicator.h"
#include "Watchdog.h"
#include "amprt/FloatConversions.h"
#include "amprt/Session.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <functional>
#include <cstdio>
#include <string>
#include <thread>

namespace amprt {
namespace {

template <float (*Load)(uint16_t), uint16_t (*Store)(float)>
void sum16(void *in, void *inout, int *len, MPI_Datatype *) {
  auto *a = static_cast<const uint16_t *>(in);
  auto *b = static_cast<uint16_t *>(inout);
  for (int i = 0; i < *len; ++i)
    b[i] = Store(Load(a[i]) + Load(b[i]));
}

void maxNanWins(void *in, void *inout, int *len, MPI_Datatype *) {
  auto *a = static_cast<const float *>(in);
  auto *b = static_cast<float *>(inout);
  for (int i = 0; i < *len; ++i)
    if (std::isnan(a[i]) || a[i] > b[i])
      b[i] = a[i];
}

class MpiCommunicator : public Communicator {
public:
  MpiCommunicator(MPI_Comm parent, double timeout, std::function<void(const std::string &)> stuck)
      : timeout(timeout), watchdog(timeout, std::move(stuck)) {
    MPI_Comm_dup(parent, &comm);
    MPI_Comm_rank(comm, &rank_);
    MPI_Comm_size(comm, &size_);
    MPI_Op_create(&sum16<math::bf16ToFloat, math::floatToBf16>, /*commute=*/1, &sumBf16);
    MPI_Op_create(&sum16<math::f16ToFloat, math::floatToF16>, 1, &sumF16);
    MPI_Op_create(&maxNanWins, 1, &maxF32);
    // Errors come back as codes (reported with the rank) instead of
    // aborting the job from inside the library.
    MPI_Comm_set_errhandler(comm, MPI_ERRORS_RETURN);
  }
  ~MpiCommunicator() override {
    MPI_Op_free(&sumBf16);
    MPI_Op_free(&sumF16);
    MPI_Op_free(&maxF32);
    MPI_Comm_free(&comm);
  }
  int rank() const override { return rank_; }
  int size() const override { return size_; }
  double timeoutSeconds() const override { return timeout; }

  Status allReduce(void *data, int64_t count, DType dtype, Reduction reduction) override {
    // After a failure the ranks may be in different collectives: calling
    // another would mismatch them, so every later call fails at once.
    if (!failure.empty())
      return Status::error(failure);
    MPI_Datatype type = MPI_FLOAT;
    MPI_Op op = MPI_SUM;
    if (reduction == Reduction::Max) {
      if (dtype != DType::F32)
        return Status::error("all-reduce: the maximum is taken over f32 values only");
      op = maxF32;
    } else if (dtype == DType::BF16 || dtype == DType::F16) {
      type = MPI_UINT16_T;
      op = dtype == DType::BF16 ? sumBf16 : sumF16;
    } else if (dtype != DType::F32) {
      return Status::error(std::string("all-reduce: cannot sum ") + dtypeName(dtype));
    }
    // MPI counts are int: large buffers go in chunks.
    constexpr int64_t kChunk = int64_t{1} << 30;
    char *bytes = static_cast<char *>(data);
    for (int64_t done = 0; done < count; done += kChunk) {
      int n = static_cast<int>(std::min(kChunk, count - done));
      if (Status status = reduce(bytes + done * dtypeSize(dtype), n, type, op); !status) {
        failure = status.message() + " (the communicator is unusable from here on)";
        return status;
      }
    }
    if (reduction == Reduction::Mean)
      divide(data, count, dtype);
    return Status::ok();
  }

private:
  /// Every rank first announces its arrival (MPI_Ibarrier), polled against
  /// the deadline: a rank that died or hangs never arrives, and this one
  /// reports it instead of waiting forever. Once all have arrived, the
  /// reduction itself is MPI's blocking one (its non-blocking MPI_Iallreduce
  /// runs 2-3x slower in Open MPI). Every rank makes the same two calls
  /// whatever its timeout, so that they always match.
  Status reduce(void *data, int n, MPI_Datatype type, MPI_Op op) {
    MPI_Request arrival;
    AMPRT_RETURN_IF_ERROR(checked(MPI_Ibarrier(comm, &arrival), "MPI_Ibarrier"));
    auto start = std::chrono::steady_clock::now();
    for (int done = 0; !done;) {
      AMPRT_RETURN_IF_ERROR(checked(MPI_Test(&arrival, &done, MPI_STATUS_IGNORE), "MPI_Test"));
      if (!done && timeout > 0 &&
          std::chrono::steady_clock::now() - start > std::chrono::duration<double>(timeout))
        return Status::error(timeoutMessage());
      std::this_thread::yield();
    }
    Watchdog::Watch watch(watchdog, timeoutMessage());
    return checked(MPI_Allreduce(MPI_IN_PLACE, data, n, type, op, comm), "MPI_Allreduce");
  }

  std::string timeoutMessage() const {
    return "rank " + std::to_string(rank_) + " of " + std::to_string(size_) +
           ": an all-reduce did not complete within " + formatSeconds() +
           ": another rank has stopped, hangs or cannot be reached";
  }

  Status checked(int code, const char *call) const {
    if (code == MPI_SUCCESS)
      return Status::ok();
    char text[MPI_MAX_ERROR_STRING];
    int length = 0;
    MPI_Error_string(code, text, &length);
    return Status::error(std::string(call) + " failed on rank " + std::to_string(rank_) + " of " +
                         std::to_string(size_) + ": " + std::string(text, length));
  }

  std::string formatSeconds() const {
    char text[32];
    std::snprintf(text, sizeof text, "%g s", timeout);
    return text;
  }

  /// The sum becomes the mean: times 1 / size in f32, rounded once.
  void divide(void *data, int64_t count, DType dtype) const {
    float inverse = 1.0f / static_cast<float>(size_);
    if (dtype == DType::F32) {
      float *values = static_cast<float *>(data);
      for (int64_t i = 0; i < count; ++i)
        values[i] *= inverse;
      return;
    }
    auto *words = static_cast<uint16_t *>(data);
    bool bf16 = dtype == DType::BF16;
    for (int64_t i = 0; i < count; ++i)
      words[i] = bf16 ? math::floatToBf16(math::bf16ToFloat(words[i]) * inverse)
                      : math::floatToF16(math::f16ToFloat(words[i]) * inverse);
  }

  double timeout;
  std::string failure; // the first collective that failed, if one did
  Watchdog watchdog;
  MPI_Comm comm = MPI_COMM_NULL;
  int rank_ = 0, size_ = 1;
  MPI_Op sumBf16 = MPI_OP_NULL, sumF16 = MPI_OP_NULL, maxF32 = MPI_OP_NULL;
};

} // namespace

std::unique_ptr<Communicator>
makeMpiCommunicator(MPI_Comm comm, double timeoutSeconds,
                    std::function<void(const std::string &)> stuckInCollective) {
  return std::make_unique<MpiCommunicator>(comm, timeoutSeconds, std::move(stuckInCollective));
}

} // namespace amprt
