//===- FusedElementwise.cpp - check and flatten a fused chain -------------===//

#include "FusedElementwise.h"

#include <map>
#include <string>

namespace amprt::fused {

Status storageOf(DType dtype, Storage *storage) {
  switch (dtype) {
  case DType::F32:
    *storage = Storage::F32;
    return Status::ok();
  case DType::BF16:
    *storage = Storage::BF16;
    return Status::ok();
  case DType::F16:
    *storage = Storage::F16;
    return Status::ok();
  default:
    return Status::error(std::string("expects float tensors, got ") + dtypeName(dtype));
  }
}

namespace {

struct OpInfo {
  Op op;
  int arity;
  const char *attribute; // the kernel's float attribute that is the step's param
};
const std::map<std::string, OpInfo> &opTable() {
  static const std::map<std::string, OpInfo> table = {
#define AMPRT_ELEMENTWISE(Id, name, arity, attribute, math) {name, {Op::Id, arity, attribute}},
#include "amprt/ElementwiseKernels.def"
      {"cast", {Op::Cast, 1, ""}},
      {"broadcast_to", {Op::Cast, 1, ""}}, // broadcast: the load does it
  };
  return table;
}

} // namespace

Status describe(const proto::Kernel &kernel, const std::vector<TensorRef> &inputs,
                const std::vector<TensorRef> &outputs, Program *p) {
  *p = Program();
  if (inputs.empty() || inputs.size() > kMaxInputs || outputs.empty() ||
      outputs.size() > kMaxOutputs || kernel.steps_size() < 1 ||
      kernel.steps_size() > kMaxSteps ||
      kernel.output_registers_size() != static_cast<int>(outputs.size()))
    return Status::error("needs 1-" + std::to_string(kMaxInputs) + " inputs, 1-" +
                         std::to_string(kMaxOutputs) + " outputs with a register each and 1-" +
                         std::to_string(kMaxSteps) + " steps");
  const std::vector<int64_t> &shape = outputs[0].shape;
  if (shape.size() > static_cast<size_t>(kMaxRank))
    return Status::error("rank above " + std::to_string(kMaxRank));
  p->numInputs = static_cast<int32_t>(inputs.size());
  p->numSteps = kernel.steps_size();
  p->numOutputs = static_cast<int32_t>(outputs.size());
  p->rank = static_cast<int32_t>(shape.size());
  p->count = outputs[0].size();
  for (int d = 0; d < p->rank; ++d)
    p->shape[d] = shape[d];
  for (int in = 0; in < p->numInputs; ++in) {
    const TensorRef &x = inputs[in];
    AMPRT_RETURN_IF_ERROR(storageOf(x.dtype, &p->inputType[in]));
    if (x.shape.size() > shape.size())
      return Status::error("input " + std::to_string(in) + " has a higher rank than the result");
    p->contiguous[in] = x.shape == shape;
    int64_t stride = 1;
    for (size_t i = 0; i < x.shape.size(); ++i) {
      size_t dim = x.shape.size() - 1 - i, out = shape.size() - 1 - i;
      if (x.shape[dim] != shape[out] && x.shape[dim] != 1)
        return Status::error("input " + std::to_string(in) + " does not broadcast to the result");
      p->strides[in][out] = x.shape[dim] == 1 ? 0 : stride;
      stride *= x.shape[dim];
    }
  }
  for (int s = 0; s < p->numSteps; ++s) {
    const proto::ElementwiseStep &step = kernel.steps(s);
    auto it = opTable().find(step.op());
    if (it == opTable().end())
      return Status::error("step " + std::to_string(s) + ": '" + step.op() +
                           "' is not a fusable elementwise op");
    if (step.args_size() != it->second.arity)
      return Status::error("step " + std::to_string(s) + ": '" + step.op() + "' takes " +
                           std::to_string(it->second.arity) + " operands");
    int available = p->numInputs + s;
    for (int32_t arg : step.args())
      if (arg < 0 || arg >= available)
        return Status::error("step " + std::to_string(s) + " reads register " +
                             std::to_string(arg) + ", not yet defined");
    p->op[s] = it->second.op;
    p->lhs[s] = static_cast<int8_t>(step.args(0));
    p->rhs[s] = static_cast<int8_t>(step.args(step.args_size() - 1));
    p->param[s] = step.param();
    AMPRT_RETURN_IF_ERROR(storageOf(static_cast<DType>(step.dtype()), &p->stepType[s]));
  }
  int registers = p->numInputs + p->numSteps;
  for (int o = 0; o < p->numOutputs; ++o) {
    int32_t r = kernel.output_registers(o);
    if (r < 0 || r >= registers)
      return Status::error("output " + std::to_string(o) + " names register " +
                           std::to_string(r) + ", which does not exist");
    if (outputs[o].shape != shape)
      return Status::error("outputs differ in shape");
    AMPRT_RETURN_IF_ERROR(storageOf(outputs[o].dtype, &p->outputType[o]));
    p->outputRegister[o] = static_cast<int8_t>(r);
  }
  return Status::ok();
}

float stepParam(const proto::Kernel &kernel) {
  auto it = opTable().find(kernel.op());
  if (it == opTable().end() || !*it->second.attribute)
    return 0.0f;
  auto attr = kernel.attrs().find(it->second.attribute);
  return attr == kernel.attrs().end() ? 0.0f : static_cast<float>(attr->second);
}

Status singleStepChain(const proto::Kernel &kernel, const std::vector<TensorRef> &inputs,
                       const std::vector<TensorRef> &outputs, proto::Kernel *chain) {
  if (outputs.size() != 1)
    return Status::error("expects one output");
  auto it = opTable().find(kernel.op());
  if (it == opTable().end())
    return Status::error("'" + kernel.op() + "' is not an elementwise kernel");
  *chain = proto::Kernel();
  chain->set_op("fused_elementwise");
  chain->set_node(kernel.node());
  auto *step = chain->add_steps();
  step->set_op(kernel.op());
  for (size_t i = 0; i < inputs.size(); ++i)
    step->add_args(static_cast<int32_t>(i));
  step->set_dtype(static_cast<proto::DType>(outputs[0].dtype));
  step->set_param(stepParam(kernel));
  chain->add_output_registers(static_cast<int32_t>(inputs.size()));
  return Status::ok();
}

} // namespace amprt::fused
