//===- Communicator.h - collectives for data-parallel training ---*- C++ -*-===//
//
// A plan compiled with data-parallel=N (amp-data-parallel) holds all_reduce
// kernels; a Session runs them through the Communicator the embedder hands
// it (SessionOptions::communicator). The runtime never starts or owns the
// communication engine: the embedder does (MPI_Init, a communicator of its
// own), so the library stays free of globals. MpiCommunicator.h wraps an
// MPI communicator; a session without one runs as a world of one rank.
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
    Sum, // f32 in f32; bf16 and f16 accumulated in f32 per combine, rounded once per hop
    Max, // NaN wins (a non-finite statistic on any rank reaches every rank)
  };
  /// Reduces `count` elements of `dtype` at `data` (host memory) across all
  /// ranks, in place. Every rank calls the same collectives in the same
  /// order with the same counts and types; every rank gets the same bits.
  virtual Status allReduce(void *data, int64_t count, DType dtype, Reduction reduction) = 0;
};

} // namespace amprt

#endif // AMPRT_COMMUNICATOR_H
