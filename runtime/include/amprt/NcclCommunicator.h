//===- NcclCommunicator.h - amprt::Communicator over NCCL --------*- C++ -*-===//
//
// Built into amprt::nccl when the CUDA backend is built and NCCL is found
// (the CUDA toolkit's). One communicator per process and GPU; its
// collectives reduce device memory on the session's stream (and inside its
// CUDA graph). NCCL needs its ranks to share one id first: rank 0 makes it
// and the embedder sends it to the others over its own channel (MPI_Bcast,
// a file, a socket):
//
//   amprt::NcclId id;
//   if (rank == 0) amprt::newNcclId(&id);
//   MPI_Bcast(id.bytes, sizeof id.bytes, MPI_BYTE, 0, MPI_COMM_WORLD);
//   std::unique_ptr<amprt::Communicator> comm;
//   amprt::makeNcclCommunicator(id, rank, size, /*cudaDevice=*/localRank, 300, &comm);
//   options.device = "cuda:" + std::to_string(localRank);
//   options.communicator = comm.get();
//
//===----------------------------------------------------------------------===//
#ifndef AMPRT_NCCLCOMMUNICATOR_H
#define AMPRT_NCCLCOMMUNICATOR_H

#include "amprt/Communicator.h"

#include <memory>

namespace amprt {

/// NCCL's unique id (ncclUniqueId), as plain bytes to send between ranks.
struct NcclId {
  char bytes[128];
};

/// A fresh id, made by one rank (it opens NCCL's bootstrap listener).
Status newNcclId(NcclId *id);

/// Joins the world `id` names as `rank` of `size`, on GPU `cudaDevice`
/// (every rank of a machine its own GPU). Blocks until all ranks joined. A
/// step still running after `timeoutSeconds` (0: no limit) aborts its
/// collectives and is an error. NCCL's maximum, unlike MPI's here, does
/// not propagate NaN: the loss scaler's skip flag, not its norm, carries a
/// non-finite gradient to every rank.
Status makeNcclCommunicator(const NcclId &id, int rank, int size, int cudaDevice,
                            double timeoutSeconds, std::unique_ptr<Communicator> *result);

} // namespace amprt

#endif // AMPRT_NCCLCOMMUNICATOR_H
