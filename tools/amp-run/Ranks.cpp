//===- Ranks.cpp - mpirun's world, or one rank ----------------------------===//

#include "Ranks.h"

#include <cstdio>
#include <cstdlib>

#ifdef AMP_RUN_MPI
#include "amprt/MpiCommunicator.h"
#endif
#ifdef AMP_RUN_NCCL
#include "amprt/NcclCommunicator.h"
#endif

namespace amprun {

namespace {

/// A number the launcher puts in the environment; 0 when absent.
int fromLauncher(std::initializer_list<const char *> names) {
  for (const char *name : names)
    if (const char *value = std::getenv(name))
      return std::atoi(value);
  return 0;
}

} // namespace

amprt::Status Ranks::join(int *argc, char ***argv, std::unique_ptr<Ranks> *ranks) {
  auto world = std::unique_ptr<Ranks>(new Ranks());
  int announced = fromLauncher({"OMPI_COMM_WORLD_SIZE", "PMI_SIZE"});
  if (announced > 0) {
#ifdef AMP_RUN_MPI
    // Serialized: a GPU session that reduces through MPI calls it from
    // CUDA's host-callback thread while the main thread waits for the step.
    int provided = MPI_THREAD_SINGLE;
    if (MPI_Init_thread(argc, argv, MPI_THREAD_SERIALIZED, &provided) != MPI_SUCCESS)
      return amprt::Status::error("MPI_Init_thread failed");
    world->serializedCalls = provided >= MPI_THREAD_SERIALIZED;
    world->initialisedMpi = true;
    MPI_Comm_rank(MPI_COMM_WORLD, &world->rank_);
    MPI_Comm_size(MPI_COMM_WORLD, &world->size_);
    world->localRank = fromLauncher({"OMPI_COMM_WORLD_LOCAL_RANK", "MPI_LOCALRANKID"});
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

std::string Ranks::deviceFor(const std::string &device) const {
  return size_ > 1 && device == "cuda" ? "cuda:" + std::to_string(localRank) : device;
}

amprt::Status Ranks::communicator(const std::string &device, const std::string &engine,
                                  double timeoutSeconds, amprt::Communicator **result) {
  *result = nullptr;
  bool gpu = device.rfind("cuda", 0) == 0;
  if (!engine.empty() && engine != "mpi" && engine != "nccl")
    return amprt::Status::error("--collectives expects mpi or nccl, got '" + engine + "'");
  if (engine == "nccl" && !gpu)
    return amprt::Status::error("--collectives nccl reduces GPU memory: it needs --device cuda");
  if (size_ == 1)
    return amprt::Status::ok();
#ifdef AMP_RUN_MPI
  if (!communicator_) {
    if (gpu && engine != "mpi") {
#ifdef AMP_RUN_NCCL
      // NCCL's ranks meet through an id that rank 0 makes and MPI carries.
      amprt::NcclId id{};
      amprt::Status made = rank_ == 0 ? amprt::newNcclId(&id) : amprt::Status::ok();
      MPI_Bcast(id.bytes, sizeof id.bytes, MPI_BYTE, 0, MPI_COMM_WORLD);
      AMPRT_RETURN_IF_ERROR(made);
      int gpuIndex = device.size() > 5 ? std::atoi(device.c_str() + 5) : 0;
      AMPRT_RETURN_IF_ERROR(amprt::makeNcclCommunicator(id, rank_, size_, gpuIndex,
                                                        timeoutSeconds, &communicator_));
#else
      if (engine == "nccl")
        return amprt::Status::error("--collectives nccl: this amp-run was built without NCCL");
#endif
    }
    if (!communicator_ && gpu && !serializedCalls)
      return amprt::Status::error("this MPI library cannot be called from another thread "
                                  "(MPI_THREAD_SERIALIZED), which GPU sessions reducing "
                                  "through MPI need: use --collectives nccl");
    if (!communicator_)
      communicator_ = amprt::makeMpiCommunicator(
          MPI_COMM_WORLD, timeoutSeconds, [rank = rank_, size = size_](const std::string &why) {
            // A rank stopped inside a reduction: this one cannot leave it,
            // so the process ends, and mpirun stops the others.
            std::fprintf(stderr, "amp-run: error (rank %d of %d): %s\n", rank, size,
                         why.c_str());
            std::fflush(stderr);
            std::_Exit(1);
          });
  }
#else
  (void)timeoutSeconds;
#endif
  *result = communicator_.get();
  return amprt::Status::ok();
}

void Ranks::abortJob(int code) {
#ifdef AMP_RUN_MPI
  if (initialisedMpi && size_ > 1)
    MPI_Abort(MPI_COMM_WORLD, code);
#endif
  (void)code;
}

std::string Ranks::substitute(std::string text) const {
  const std::string key = "{rank}", value = std::to_string(rank_);
  for (size_t at = text.find(key); at != std::string::npos; at = text.find(key, at + value.size()))
    text.replace(at, key.size(), value);
  return text;
}

} // namespace amprun
