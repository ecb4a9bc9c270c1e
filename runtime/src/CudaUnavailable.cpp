//===- CudaUnavailable.cpp - the CUDA backend when it is not built --------===//

#include "Device.h"

namespace amprt {

static const char kWhy[] = "this runtime was built without the CUDA backend (no CUDA "
                          "toolkit was found when it was configured)";

Status makeCudaDevice(int, bool, Communicator *, std::unique_ptr<Device> *) {
  return Status::error(kWhy);
}

Status cudaDeviceNames(std::vector<std::string> *) { return Status::error(kWhy); }

} // namespace amprt
