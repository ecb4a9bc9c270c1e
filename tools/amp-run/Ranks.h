//===- Ranks.h - the data-parallel ranks amp-run runs among -----*- C++ -*-===//
//
// Under mpirun (Open MPI's OMPI_COMM_WORLD_SIZE, or PMI_SIZE, in the
// environment) amp-run initialises MPI and its sessions all-reduce through
// an MPI communicator over the world; otherwise it is one rank alone and
// MPI is never touched.
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
  /// The communicator for sessions; null when alone.
  amprt::Communicator *communicator() const { return communicator_.get(); }
  /// `text` with every "{rank}" replaced by this rank's number.
  std::string substitute(std::string text) const;

private:
  int rank_ = 0, size_ = 1;
  bool initialisedMpi = false;
  std::unique_ptr<amprt::Communicator> communicator_;
};

} // namespace amprun

#endif // AMP_RUN_RANKS_H
