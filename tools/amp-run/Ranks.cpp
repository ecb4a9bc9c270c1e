//===- Ranks.cpp - mpirun's world, or one rank ----------------------------===//

#include "Ranks.h"

#include <cstdlib>

#ifdef AMP_RUN_MPI
#include "amprt/MpiCommunicator.h"
#endif

namespace amprun {

namespace {

/// The world size mpirun announces in the environment; 0 when not under it.
int launcherWorldSize() {
  for (const char *name : {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE"})
    if (const char *value = std::getenv(name))
      return std::atoi(value);
  return 0;
}

} // namespace

amprt::Status Ranks::join(int *argc, char ***argv, std::unique_ptr<Ranks> *ranks) {
  auto world = std::unique_ptr<Ranks>(new Ranks());
  int announced = launcherWorldSize();
  if (announced > 0) {
#ifdef AMP_RUN_MPI
    if (MPI_Init(argc, argv) != MPI_SUCCESS)
      return amprt::Status::error("MPI_Init failed");
    world->initialisedMpi = true;
    world->communicator_ = amprt::makeMpiCommunicator(MPI_COMM_WORLD);
    world->rank_ = world->communicator_->rank();
    world->size_ = world->communicator_->size();
    if (world->size_ == 1)
      world->communicator_.reset(); // alone after all: nothing to reduce
#else
    (void)argc;
    (void)argv;
    if (announced > 1)
      return amprt::Status::error(
          "launched by mpirun over " + std::to_string(announced) +
          " ranks, but this amp-run was built without MPI (install libopenmpi-dev and rebuild)");
#endif
  }
  *ranks = std::move(world);
  return amprt::Status::ok();
}

Ranks::~Ranks() {
  communicator_.reset();
#ifdef AMP_RUN_MPI
  if (initialisedMpi)
    MPI_Finalize();
#endif
}

std::string Ranks::substitute(std::string text) const {
  const std::string key = "{rank}", value = std::to_string(rank_);
  for (size_t at = text.find(key); at != std::string::npos; at = text.find(key, at + value.size()))
    text.replace(at, key.size(), value);
  return text;
}

} // namespace amprun
