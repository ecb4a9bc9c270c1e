//===- PlanLoader.h - parse and validate runtime plans ----------*- C++ -*-===//
#ifndef AMPRT_PLANLOADER_H
#define AMPRT_PLANLOADER_H

#include "amprt/PlanFormat.h"
#include "amprt/Session.h"
#include "plan.pb.h"

namespace amprt {

/// Parses `bytes` and checks every index, size and offset, so the kernels
/// never touch memory the plan did not describe. `name` prefixes messages.
/// `maxProgramKernels` is PlanFormat.h's limit; tests lower it.
Status loadPlan(const std::string &bytes, const std::string &name, proto::Plan *plan,
                int64_t maxProgramKernels = kMaxProgramKernels);

TensorInfo tensorInfo(const std::string &name, const std::string &role,
                      const proto::TensorType &type);
int64_t numElements(const proto::TensorType &type);
size_t byteSize(const proto::TensorType &type);

} // namespace amprt

#endif // AMPRT_PLANLOADER_H
