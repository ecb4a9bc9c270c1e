//===- MpiCommunicator.h - amprt::Communicator over MPI ----------*- C++ -*-===//
//
// Built into amprt::mpi when CMake finds MPI (Open MPI from Debian). The
// embedder initialises MPI and keeps it alive for the communicator's life.
// A CPU session calls MPI from the thread that runs its step; a GPU session
// (which stages its buckets through host memory) from CUDA's host-callback
// thread, so MPI must then be initialised with MPI_THREAD_SERIALIZED:
//
//   MPI_Init(&argc, &argv);   // GPU sessions: MPI_Init_thread(..., MPI_THREAD_SERIALIZED, ...)
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

#include <functional>
#include <memory>
#include <string>

namespace amprt {

/// A communicator over a duplicate of `comm` (so the session's collectives
/// never match the embedder's own messages). MPI must be initialised.
/// With `timeoutSeconds` (0: no limit), a rank that stopped without dying
/// (stuck, suspended, cut off) is noticed; one that died, mpirun notices
/// itself. A collective whose ranks have not all arrived by then returns an
/// error. One they all entered but that still has not finished (a rank
/// stopped inside it) cannot be abandoned: `stuckInCollective` is called
/// with the message, from a watchdog thread, and should end the job (print
/// it, then MPI_Abort or exit); without it, such a call waits.
std::unique_ptr<Communicator>
makeMpiCommunicator(MPI_Comm comm, double timeoutSeconds = 0,
                    std::function<void(const std::string &)> stuckInCollective = {});

} // namespace amprt

#endif // AMPRT_MPICOMMUNICATOR_H
