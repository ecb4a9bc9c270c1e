//===- Ranks.h - the data-parallel ranks amp-run runs among -----*- C++ -*-===//
//
// Under mpirun (Open MPI's OMPI_COMM_WORLD_SIZE, or PMI_SIZE, in the
// environment) amp-run initialises MPI and its sessions all-reduce through
// a communicator over the world: MPI for CPU sessions, NCCL for GPU ones
// (when built; else MPI staged through the host); otherwise it is one rank
// alone and MPI is never touched.
//
//===----------------------------------------------------------------------===//
#ifndef AMP_RUN_RANKS_H
#define AMP_RUN_RANKS_H

#include "amprt/Communicator.h"
#include "amprt/Status.h"

#include <memory>
#include <string>

namespace amprun {

class Ranks {
public:
  /// Joins mpirun's world if launched by it (MPI_Init), else a world of one.
  static amprt::Status join(int *argc, char ***argv, std::unique_ptr<Ranks> *ranks);
  ~Ranks(); // frees the communicator, then MPI_Finalize

  int rank() const { return rank_; }
  int size() const { return size_; }
  /// The session device for `device` on this rank: under mpirun, "cuda"
  /// becomes "cuda:L" with L the rank's index on its machine (one GPU per
  /// process).
  std::string deviceFor(const std::string &device) const;
  /// The communicator for sessions on `device` (as deviceFor returns it),
  /// made at the first call: `engine` "mpi" or "nccl" (GPUs only), or empty
  /// for NCCL on GPUs where built and MPI otherwise; collectives give up
  /// after `timeoutSeconds`. Null when alone.
  amprt::Status communicator(const std::string &device, const std::string &engine,
                             double timeoutSeconds, amprt::Communicator **result);
  /// After an error on this rank, ends the whole job (MPI_Abort) so that no
  /// other rank waits for it; returns when alone.
  void abortJob(int code);
  /// `text` with every "{rank}" replaced by this rank's number.
  std::string substitute(std::string text) const;

private:
  int rank_ = 0, size_ = 1, localRank = 0;
  bool initialisedMpi = false, serializedCalls = false;
  std::unique_ptr<amprt::Communicator> communicator_;
};

} // namespace amprun

#endif // AMP_RUN_RANKS_H
