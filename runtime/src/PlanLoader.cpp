//===- PlanLoader.cpp - parse and validate runtime plans ------------------===//

#include "PlanLoader.h"

#include <cmath>
#include <set>

namespace amprt {

int64_t numElements(const proto::TensorType &type) {
  int64_t n = 1;
  for (int64_t d : type.shape())
    n *= d;
  return n;
}

size_t byteSize(const proto::TensorType &type) {
  return static_cast<size_t>(numElements(type)) *
         dtypeSize(static_cast<DType>(type.dtype()));
}

TensorInfo tensorInfo(const std::string &name, const std::string &role,
                      const proto::TensorType &type) {
  TensorInfo info;
  info.name = name;
  info.role = role;
  info.dtype = static_cast<DType>(type.dtype());
  info.shape.assign(type.shape().begin(), type.shape().end());
  return info;
}

namespace {

Status checkType(const proto::TensorType &type, const std::string &what) {
  if (type.dtype() < proto::F32 || type.dtype() > proto::BOOL)
    return Status::error(what + " has an invalid dtype");
  for (int64_t d : type.shape())
    if (d < 0)
      return Status::error(what + " has an invalid dimension " + std::to_string(d));
  std::string beyond = beyondTensorLimits(type.shape().data(), type.shape_size());
  if (!beyond.empty())
    return Status::error(what + " has " + beyond);
  return Status::ok();
}

/// `name` (`what`: "state #3's name") within kMaxNameLength.
Status checkName(const std::string &name, const std::string &what) {
  std::string beyond = beyondNameLimit(name);
  return beyond.empty() ? Status::ok() : Status::error(what + " is " + beyond);
}

Status checkProgram(const proto::Plan &plan, const proto::Program &program,
                    const std::string &where, int64_t maxKernels) {
  AMPRT_RETURN_IF_ERROR(checkName(program.name(), where + "'s name"));
  for (int count : {program.kernels_size(), program.buffers_size()})
    if (count > maxKernels)
      return Status::error(where + " has " + std::to_string(count) +
                           " kernels or buffers, above the limit of " +
                           std::to_string(maxKernels));
  for (int i = 0; i < program.buffers_size(); ++i) {
    const auto &buffer = program.buffers(i);
    std::string what = where + " buffer #" + std::to_string(i);
    AMPRT_RETURN_IF_ERROR(checkType(buffer.type(), what));
    size_t bytes = byteSize(buffer.type());
    switch (buffer.kind()) {
    case proto::Buffer::ARENA:
      if (buffer.offset() < 0 || buffer.offset() % 64 != 0 ||
          static_cast<uint64_t>(buffer.offset()) + bytes >
              static_cast<uint64_t>(program.arena_bytes()))
        return Status::error(what + " lies outside the arena");
      break;
    case proto::Buffer::STATE:
      if (buffer.offset() < 0 || buffer.offset() >= plan.states_size() ||
          byteSize(plan.states(buffer.offset()).type()) != bytes)
        return Status::error(what + " names an invalid state tensor");
      break;
    case proto::Buffer::CONSTANT:
      if (buffer.offset() < 0 || buffer.offset() >= program.constants_size() ||
          program.constants(buffer.offset()).size() != bytes)
        return Status::error(what + " names an invalid constant");
      break;
    default:
      return Status::error(what + " has an invalid kind");
    }
  }
  auto checkIndex = [&](int32_t index, const std::string &what) {
    if (index < 0 || index >= program.buffers_size())
      return Status::error(what + " refers to buffer " + std::to_string(index) +
                           ", which does not exist");
    return Status::ok();
  };
  for (int k = 0; k < program.kernels_size(); ++k) {
    const auto &kernel = program.kernels(k);
    std::string numbered = where + " kernel #" + std::to_string(k);
    AMPRT_RETURN_IF_ERROR(checkName(kernel.op(), numbered + "'s op name"));
    AMPRT_RETURN_IF_ERROR(checkName(kernel.node(), numbered + "'s node name"));
    std::string what = numbered + " (" + kernel.op() + ")";
    for (int32_t index : kernel.inputs())
      AMPRT_RETURN_IF_ERROR(checkIndex(index, what));
    for (int32_t index : kernel.outputs())
      AMPRT_RETURN_IF_ERROR(checkIndex(index, what));
    // Attributes are doubles that kernels also read as integers (window
    // sizes, axes, intervals): outside int64 that conversion is undefined.
    for (const auto &[name, value] : kernel.attrs())
      if (!std::isfinite(value) || std::fabs(value) > kMaxAttributeMagnitude)
        return Status::error(what + " has attribute '" + name + "' = " + std::to_string(value) +
                             ", outside +-2^62");
  }
  std::set<std::string> names;
  for (const auto *bindings : {&program.inputs(), &program.outputs()})
    for (const auto &binding : *bindings) {
      AMPRT_RETURN_IF_ERROR(checkName(binding.name(), where + " binding's name"));
      AMPRT_RETURN_IF_ERROR(checkName(binding.role(), where + " binding's role"));
      AMPRT_RETURN_IF_ERROR(checkIndex(binding.buffer(), where + " binding '" +
                                                             binding.name() + "'"));
      if (!names.insert(binding.name()).second && bindings == &program.inputs())
        return Status::error(where + " binds '" + binding.name() + "' twice");
    }
  if (program.arena_bytes() < 0 || program.arena_bytes() > (int64_t{1} << 40))
    return Status::error(where + " has an invalid arena size");
  return Status::ok();
}

} // namespace

Status loadPlan(const std::string &bytes, const std::string &name, proto::Plan *plan,
                int64_t maxProgramKernels) {
  if (!plan->ParseFromString(bytes))
    return Status::error(name + ": not a valid plan (protobuf parse failed)");
  if (plan->format_version() != kPlanFormatVersion)
    return Status::error(name + ": plan format version " +
                         std::to_string(plan->format_version()) + " is not supported (expected " +
                         std::to_string(kPlanFormatVersion) + ")");
  for (int i = 0; i < plan->states_size(); ++i) {
    const auto &state = plan->states(i);
    std::string numbered = name + ": state #" + std::to_string(i);
    AMPRT_RETURN_IF_ERROR(checkName(state.name(), numbered + "'s name"));
    AMPRT_RETURN_IF_ERROR(checkName(state.role(), numbered + "'s role"));
    AMPRT_RETURN_IF_ERROR(checkType(state.type(), name + ": state '" + state.name() + "'"));
    if (!state.init().empty() && state.init().size() != byteSize(state.type()))
      return Status::error(name + ": initial value of '" + state.name() +
                           "' has the wrong size");
  }
  AMPRT_RETURN_IF_ERROR(
      checkProgram(*plan, plan->train(), name + ": train program", maxProgramKernels));
  AMPRT_RETURN_IF_ERROR(
      checkProgram(*plan, plan->eval(), name + ": eval program", maxProgramKernels));
  return Status::ok();
}

} // namespace amprt
