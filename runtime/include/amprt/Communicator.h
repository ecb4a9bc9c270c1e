//===- Communicator.h - collectives for data-parallel training ---*- C++ -*-===//
//
// A plan compiled with data-parallel=N (amp-data-parallel) holds all_reduce
// kernels; a Session runs them through the Communicator the embedder hands
// it (SessionOptions::communicator). The runtime never starts or owns the
// communication engine: the embedder does (MPI_Init, a communicator of its
// own), so the library stays free of globals. MpiCommunicator.h wraps an
// MPI communicator (host memory: CPU sessions, or GPU sessions staging
// through the host), NcclCommunicator.h an NCCL one (device memory of one
// GPU, on the session's stream); a session without one runs as a world of
// one rank.
//
//===----------------------------------------------------------------------===//
#ifndef AMPRT_COMMUNICATOR_H
#define AMPRT_COMMUNICATOR_H

#include "amprt/Status.h"

#include <cstdint>

namespace amprt {

enum class DType;

class Communicator {
public:
  virtual ~Communicator() = default;
  virtual int rank() const = 0;
  virtual int size() const = 0;

  enum class Reduction {
    Sum,  // f32 in f32; bf16 and f16 accumulated in f32 per combine, rounded once per hop
    Mean, // the sum divided by size() (exact scaling for a power-of-two world)
    Max,  // f32 only; a non-finite value on any rank reaches every rank
  };
  /// Reduces `count` elements of `dtype` at `data` (host memory) across all
  /// ranks, in place. Every rank calls the same collectives in the same
  /// order with the same counts and types; every rank gets the same bits.
  /// A collective that does not complete within the communicator's timeout
  /// (a rank died or hangs) returns an error; the communicator is unusable
  /// afterwards, and the embedder should end the job (MPI_Abort).
  virtual Status allReduce(void *data, int64_t count, DType dtype, Reduction reduction) = 0;

  /// True when the collectives take device memory of one GPU (NCCL): the
  /// CUDA backend then calls allReduceOnStream; otherwise it stages the
  /// buffers through host memory and calls allReduce.
  virtual bool onDevice() const { return false; }
  /// Enqueues the reduction of device memory on `cudaStream` (a
  /// cudaStream_t) and returns; it runs in stream order and may be captured
  /// in a CUDA graph. Device-memory communicators only.
  virtual Status allReduceOnStream(void *data, int64_t count, DType dtype, Reduction reduction,
                                   void *cudaStream) {
    (void)data, (void)count, (void)dtype, (void)reduction, (void)cudaStream;
    return Status::error("this communicator reduces host memory only");
  }
  /// How long a collective may take before the job is considered broken;
  /// zero waits forever.
  virtual double timeoutSeconds() const { return 0; }
  /// An error a device-memory communicator found while its collectives run
  /// (NCCL's asynchronous errors: a peer or the network failed); polled
  /// while the session waits for the stream.
  virtual Status asyncError() { return Status::ok(); }
  /// Gives up on the collectives in flight (a timeout was reached): a
  /// device-memory communicator aborts them so the stream can drain.
  virtual void abort() {}
};

} // namespace amprt

#endif // AMPRT_COMMUNICATOR_H
