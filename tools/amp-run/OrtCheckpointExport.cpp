//===- OrtCheckpointExport.cpp - trained state into an ORT checkpoint -----===//
//
// A plan compiled from an onnxruntime-training artifact set names its
// parameters, running averages and AdamW moments as the checkpoint does
// (lib/Import/OrtArtifacts.cpp), so the trained values go back into a copy
// of the artifact set's checkpoint; ORT's training API then resumes from it:
// the optimizer group "group0" holds the step and, per parameter, the
// moments "momentum0" (first) and "momentum1" (second), as ORT saves them.
//
//===----------------------------------------------------------------------===//

#include "Export.h"
#include "amprt/AtomicFile.h"

#include "OrtCheckpoint_generated.h"

#include <map>

namespace amprun {

using amprt::Status;

namespace {

constexpr int32_t kOnnxFloat = 1;

/// The session's f32 state tensor `name` as checkpoint bytes, checked
/// against the shape the checkpoint declares.
Status stateBytes(const amprt::Session &session, const amprt::TensorInfo &info,
                  const std::vector<int64_t> &dims, std::vector<uint8_t> *bytes) {
  if (info.dtype != amprt::DType::F32 || info.shape != dims)
    return Status::error("'" + info.name + "' has another shape or type in the plan than in "
                         "the checkpoint");
  bytes->resize(info.numElements() * sizeof(float));
  return session.readState(info.name, bytes->data(), bytes->size());
}

std::unique_ptr<ort_checkpoint::TensorT> newTensor(const std::string &name,
                                                   const amprt::TensorInfo &info) {
  auto tensor = std::make_unique<ort_checkpoint::TensorT>();
  tensor->name = name;
  tensor->dims = info.shape;
  tensor->data_type = kOnnxFloat;
  return tensor;
}

} // namespace

Status exportOrtCheckpoint(const amprt::Session &session, const std::string &sourcePath,
                           const std::string &outPath) {
  std::string bytes;
  AMPRT_RETURN_IF_ERROR(amprt::readFile(sourcePath, &bytes));
  const auto *data = reinterpret_cast<const uint8_t *>(bytes.data());
  flatbuffers::Verifier verifier(data, bytes.size());
  if (bytes.size() < 8 || !ort_checkpoint::CheckpointBufferHasIdentifier(data) ||
      !ort_checkpoint::VerifyCheckpointBuffer(verifier))
    return Status::error(sourcePath + ": not a valid onnxruntime-training checkpoint");
  // Unpacking loads 8-byte vector elements in place; the verifier does not
  // check their alignment (a corrupt file may misplace them).
  const ort_checkpoint::Checkpoint *root = ort_checkpoint::GetCheckpoint(data);
  auto aligned = [](const ort_checkpoint::Tensor *tensor) {
    return !tensor->dims() ||
           reinterpret_cast<uintptr_t>(tensor->dims()->Data()) % alignof(int64_t) == 0;
  };
  bool ok = reinterpret_cast<uintptr_t>(data) % alignof(int64_t) == 0;
  if (const auto *module = root->module_state())
    for (const auto *list : {module->requires_grad_params(), module->frozen_params()})
      if (list)
        for (const ort_checkpoint::Tensor *tensor : *list)
          ok = ok && aligned(tensor);
  if (const auto *groups = root->optimizer_groups())
    for (const ort_checkpoint::OptimizerGroup *group : *groups)
      if (group->optimizer_states())
        for (const auto *state : *group->optimizer_states())
          if (state->momentums())
            for (const ort_checkpoint::Tensor *tensor : *state->momentums())
              ok = ok && aligned(tensor);
  if (!ok)
    return Status::error(sourcePath + ": not a valid onnxruntime-training checkpoint "
                                      "(misaligned tensor shapes)");
  std::unique_ptr<ort_checkpoint::CheckpointT> checkpoint(root->UnPack());
  if (!checkpoint->module_state)
    return Status::error(sourcePath + ": the checkpoint holds no module state");
  if (checkpoint->module_state->is_nominal_state || checkpoint->module_state->has_external_data)
    return Status::error(sourcePath + ": a nominal checkpoint, or one with external data, is "
                                      "not supported");

  std::map<std::string, const amprt::TensorInfo *> states;
  for (const auto &info : session.states())
    states[info.name] = &info;
  auto lookup = [&](const std::string &name) {
    auto found = states.find(name);
    return found == states.end() ? nullptr : found->second;
  };

  // Parameters and frozen tensors the plan trains or updates (running
  // averages); frozen tensors it does not know stay as they are.
  ort_checkpoint::ModuleStateT &module = *checkpoint->module_state;
  for (auto &tensor : module.requires_grad_params) {
    const amprt::TensorInfo *info = lookup(tensor->name);
    if (!info || info->role != "param")
      return Status::error(sourcePath + ": the plan has no parameter '" + tensor->name +
                           "' (was it compiled from this artifact set?)");
    AMPRT_RETURN_IF_ERROR(stateBytes(session, *info, tensor->dims, &tensor->raw_data));
  }
  for (auto &tensor : module.frozen_params)
    if (const amprt::TensorInfo *info = lookup(tensor->name))
      AMPRT_RETURN_IF_ERROR(stateBytes(session, *info, tensor->dims, &tensor->raw_data));

  // The optimizer's state, where the plan has AdamW's.
  const amprt::TensorInfo *step = lookup("step");
  if (step && step->dtype == amprt::DType::I64 && step->numElements() == 1) {
    auto group = std::make_unique<ort_checkpoint::OptimizerGroupT>();
    group->group_name = "group0";
    AMPRT_RETURN_IF_ERROR(session.readState("step", &group->step, sizeof(int64_t)));
    group->initial_learning_rate = 1e-3f; // ORT's default; its Optimizer sets its own
    if (!checkpoint->optimizer_groups.empty())
      group->initial_learning_rate = checkpoint->optimizer_groups.front()->initial_learning_rate;
    for (const auto &param : module.requires_grad_params) {
      const amprt::TensorInfo *first = lookup(param->name + ".exp_avg");
      const amprt::TensorInfo *second = lookup(param->name + ".exp_avg_sq");
      if (!first || !second)
        continue;
      auto state = std::make_unique<ort_checkpoint::ParameterOptimizerStateT>();
      state->param_name = param->name;
      for (auto [name, info] : {std::pair{"momentum0", first}, std::pair{"momentum1", second}}) {
        auto moment = newTensor(name, *info);
        AMPRT_RETURN_IF_ERROR(stateBytes(session, *info, param->dims, &moment->raw_data));
        state->momentums.push_back(std::move(moment));
      }
      group->optimizer_states.push_back(std::move(state));
    }
    checkpoint->optimizer_groups.clear();
    checkpoint->optimizer_groups.push_back(std::move(group));
  }

  // Written table by table: ORT requires the parameter and state lists to
  // be present even when empty, which the object API's Pack leaves out.
  flatbuffers::FlatBufferBuilder builder;
  auto tensors = [&](const std::vector<std::unique_ptr<ort_checkpoint::TensorT>> &list) {
    std::vector<flatbuffers::Offset<ort_checkpoint::Tensor>> offsets;
    for (const auto &tensor : list)
      offsets.push_back(ort_checkpoint::Tensor::Pack(builder, tensor.get()));
    return builder.CreateVector(offsets);
  };
  auto trainable = tensors(module.requires_grad_params), frozen = tensors(module.frozen_params);
  // Every tensor's values are written inline here.
  auto moduleState = ort_checkpoint::CreateModuleState(builder, trainable, frozen,
                                                       /*is_nominal_state=*/false,
                                                       /*has_external_data=*/false);
  std::vector<flatbuffers::Offset<ort_checkpoint::OptimizerGroup>> groups;
  for (const auto &group : checkpoint->optimizer_groups) {
    std::vector<flatbuffers::Offset<ort_checkpoint::ParameterOptimizerState>> params;
    for (const auto &state : group->optimizer_states) {
      auto moments = tensors(state->momentums);
      params.push_back(ort_checkpoint::CreateParameterOptimizerState(
          builder, builder.CreateString(state->param_name), moments));
    }
    auto paramStates = builder.CreateVector(params);
    groups.push_back(ort_checkpoint::CreateOptimizerGroup(
        builder, builder.CreateString(group->group_name), group->step,
        group->initial_learning_rate, paramStates));
  }
  auto groupList = builder.CreateVector(groups);
  auto properties = checkpoint->property_bag
                        ? ort_checkpoint::PropertyBag::Pack(builder, checkpoint->property_bag.get())
                        : flatbuffers::Offset<ort_checkpoint::PropertyBag>();
  ort_checkpoint::FinishCheckpointBuffer(
      builder, ort_checkpoint::CreateCheckpoint(builder, checkpoint->version, moduleState,
                                                groupList, properties));
  return amprt::writeFileAtomically(
      outPath, std::string(reinterpret_cast<const char *>(builder.GetBufferPointer()),
                           builder.GetSize()));
}

} // namespace amprun
