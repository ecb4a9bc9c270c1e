//===- MpiCommunicator.cpp - collectives through MPI ----------------------===//
//
// f32 sums are MPI_SUM on MPI_FLOAT. bf16 and f16 travel as 16-bit words
// with a user-defined sum that widens both sides to f32, adds, and rounds
// once per combine (as NCCL does for these types); the maximum is a user
// op too, so that a NaN on any rank wins (C's comparison would drop it).
//
//===----------------------------------------------------------------------===//

#include "amprt/MpiCommunicator.h"
#include "amprt/FloatConversions.h"
#include "amprt/Session.h"

#include <algorithm>
#include <cmath>
#include <string>

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
  explicit MpiCommunicator(MPI_Comm parent) {
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

  Status allReduce(void *data, int64_t count, DType dtype, Reduction reduction) override {
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
      int code = MPI_Allreduce(MPI_IN_PLACE, bytes + done * dtypeSize(dtype), n, type, op, comm);
      if (code != MPI_SUCCESS) {
        char text[MPI_MAX_ERROR_STRING];
        int length = 0;
        MPI_Error_string(code, text, &length);
        return Status::error("MPI_Allreduce failed on rank " + std::to_string(rank_) + " of " +
                             std::to_string(size_) + ": " + std::string(text, length));
      }
    }
    return Status::ok();
  }

private:
  MPI_Comm comm = MPI_COMM_NULL;
  int rank_ = 0, size_ = 1;
  MPI_Op sumBf16 = MPI_OP_NULL, sumF16 = MPI_OP_NULL, maxF32 = MPI_OP_NULL;
};

} // namespace

std::unique_ptr<Communicator> makeMpiCommunicator(MPI_Comm comm) {
  return std::make_unique<MpiCommunicator>(comm);
}

} // namespace amprt
