//===- CudaUnavailable.cpp - the CUDA backend when it is not built --------===//

#include "Device.h"

namespace amprt {

Status makeCudaDevice(int, bool, std::unique_ptr<Device> *) {
  return Status::error("this runtime was built without the CUDA backend (no CUDA toolkit "
                       "was found when it was configured)");
}

} // namespace amprt
