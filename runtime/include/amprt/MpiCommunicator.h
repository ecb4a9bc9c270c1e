//===- MpiCommunicator.h - amprt::Communicator over MPI ----------*- C++ -*-===//
//
// Built into amprt::mpi when CMake finds MPI (Open MPI from Debian). The
// embedder initialises MPI and keeps it alive for the communicator's life:
//
//   MPI_Init(&argc, &argv);
//   {
//     auto comm = amprt::makeMpiCommunicator(MPI_COMM_WORLD);
//     amprt::SessionOptions options;
//     options.communicator = comm.get();
//     ... sessions, training ...
//   } // the communicator (and its MPI ops) before MPI_Finalize
//   MPI_Finalize();
//
//===----------------------------------------------------------------------===//
#ifndef AMPRT_MPICOMMUNICATOR_H
#define AMPRT_MPICOMMUNICATOR_H

#include "amprt/Communicator.h"

#include <mpi.h>

#include <memory>

namespace amprt {

/// A communicator over a duplicate of `comm` (so the session's collectives
/// never match the embedder's own messages). MPI must be initialised. A
/// collective still incomplete after `timeoutSeconds` (0: no limit) returns
/// an error instead of hanging: a rank that stopped without dying (stuck,
/// suspended, cut off) is noticed; one that died, mpirun notices itself.
std::unique_ptr<Communicator> makeMpiCommunicator(MPI_Comm comm, double timeoutSeconds = 0);

} // namespace amprt

#endif // AMPRT_MPICOMMUNICATOR_H
