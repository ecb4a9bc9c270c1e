//===- OrtCheckpoint.cpp - onnxruntime-training's parameter checkpoint ----===//
//
// The buffer is verified (flatbuffers::Verifier) before any field is read:
// the file is untrusted input. Tensors must hold float data in raw_data
// whose size matches their shape.
//
//===----------------------------------------------------------------------===//

#include "OrtCheckpoint.h"

#include "OrtCheckpoint_generated.h"

#include "llvm/Support/FormatVariadic.h"

#include <cmath>
#include <cstring>

using namespace mlir::amp;

namespace {

/// The caller's diagnostic names the file.
llvm::Error fail(llvm::StringRef, const llvm::Twine &message) {
  return llvm::createStringError(llvm::inconvertibleErrorCode(),
                                 "ORT checkpoint: " + message);
}

constexpr int32_t kOnnxFloat = 1;
constexpr int64_t kMaxDims = 8;

llvm::Expected<ort::CheckpointTensor> readTensor(llvm::StringRef path,
                                                 const ort_checkpoint::Tensor *tensor) {
  if (!tensor || !tensor->name() || tensor->name()->size() == 0)
    return fail(path, "a tensor has no name");
  ort::CheckpointTensor out;
  out.name = tensor->name()->str();
  out.dataType = tensor->data_type();
  if (tensor->external_data_offset() != -1)
    return fail(path, "tensor '" + out.name +
                          "' keeps its data in an external file, which is not supported");
  if (out.dataType != kOnnxFloat)
    return fail(path, llvm::formatv("tensor '{0}' has ONNX data type {1}; only float (1) "
                                    "parameters are supported",
                                    out.name, out.dataType));
  uint64_t count = 1;
  if (tensor->dims()) {
    if (tensor->dims()->size() > kMaxDims)
      return fail(path, "tensor '" + out.name + "' has more than 8 dimensions");
    // The verifier checks a vector's length prefix, not that its 8-byte
    // elements are aligned (a writer aligns them; a corrupt file need not):
    // each is copied out rather than loaded in place (found by fuzzing).
    const uint8_t *bytes = tensor->dims()->Data();
    for (uint32_t i = 0; i < tensor->dims()->size(); ++i) {
      int64_t dim;
      std::memcpy(&dim, bytes + i * sizeof(int64_t), sizeof(int64_t));
      if (dim < 0 || dim > (int64_t{1} << 40) || (dim && count > (uint64_t{1} << 40) / dim))
        return fail(path, "tensor '" + out.name + "' has an invalid shape");
      out.dims.push_back(dim);
      count *= static_cast<uint64_t>(dim);
    }
  }
  uint64_t size = tensor->raw_data() ? tensor->raw_data()->size() : 0;
  if (size != count * sizeof(float))
    return fail(path, llvm::formatv("tensor '{0}' holds {1} bytes, but its shape needs {2}",
                                    out.name, size, count * sizeof(float)));
  if (size)
    out.bytes = llvm::StringRef(reinterpret_cast<const char *>(tensor->raw_data()->data()),
                                size);
  return out;
}

llvm::Error readTensors(llvm::StringRef path,
                        const flatbuffers::Vector<flatbuffers::Offset<ort_checkpoint::Tensor>> *tensors,
                        std::vector<ort::CheckpointTensor> &out) {
  if (!tensors)
    return llvm::Error::success();
  for (const ort_checkpoint::Tensor *tensor : *tensors) {
    auto read = readTensor(path, tensor);
    if (!read)
      return read.takeError();
    out.push_back(std::move(*read));
  }
  return llvm::Error::success();
}

} // namespace

llvm::Expected<ort::Checkpoint> ort::readCheckpoint(llvm::StringRef path) {
  // Aligned as FlatBuffers expects its buffer (scalars are verified aligned
  // relative to the buffer's start).
  auto file = llvm::MemoryBuffer::getFile(path, /*IsText=*/false,
                                          /*RequiresNullTerminator=*/false,
                                          /*IsVolatile=*/false, llvm::Align(16));
  if (!file)
    return fail(path, "cannot read: " + file.getError().message());
  Checkpoint checkpoint;
  checkpoint.buffer = std::move(*file);
  const auto *data = reinterpret_cast<const uint8_t *>(checkpoint.buffer->getBufferStart());
  size_t size = checkpoint.buffer->getBufferSize();
  if (size < 8 || !ort_checkpoint::CheckpointBufferHasIdentifier(data))
    return fail(path, "not an onnxruntime-training checkpoint (no \"ODTC\" FlatBuffer "
                      "identifier)");
  flatbuffers::Verifier verifier(data, size);
  if (!ort_checkpoint::VerifyCheckpointBuffer(verifier))
    return fail(path, "the FlatBuffer is corrupt (verification failed)");
  const ort_checkpoint::Checkpoint *root = ort_checkpoint::GetCheckpoint(data);
  const ort_checkpoint::ModuleState *module = root->module_state();
  if (!module)
    return fail(path, "it holds no module state (parameters)");
  if (module->is_nominal_state())
    return fail(path, "it is a nominal state (parameter names without values)");
  if (module->has_external_data())
    return fail(path, "its parameters are in an external data file, which is not supported");
  if (auto error = readTensors(path, module->requires_grad_params(), checkpoint.trainable))
    return std::move(error);
  if (auto error = readTensors(path, module->frozen_params(), checkpoint.frozen))
    return std::move(error);
  if (checkpoint.trainable.empty())
    return fail(path, "it holds no trainable parameters");

  if (const auto *groups = root->optimizer_groups(); groups && groups->size() > 0) {
    if (groups->size() > 1)
      return fail(path, llvm::formatv("it holds {0} optimizer groups; one is supported",
                                      groups->size()));
    const ort_checkpoint::OptimizerGroup *group = groups->Get(0);
    OptimizerState state;
    state.step = group->step();
    state.learningRate = group->initial_learning_rate();
    // Past 2^53 steps the count is corrupt (and step + 1 would overflow
    // near 2^63).
    if (state.step < 0 || state.step > (int64_t{1} << 53))
      return fail(path, "the optimizer's step " + std::to_string(state.step) +
                            " is out of range");
    if (!std::isfinite(state.learningRate) || state.learningRate < 0)
      return fail(path, "the optimizer's learning rate is negative or not finite");
    if (const auto *params = group->optimizer_states())
      for (const ort_checkpoint::ParameterOptimizerState *param : *params) {
        if (!param->param_name())
          return fail(path, "an optimizer state names no parameter");
        std::vector<CheckpointTensor> moments;
        if (auto error = readTensors(path, param->momentums(), moments))
          return std::move(error);
        state.moments[param->param_name()->str()] = std::move(moments);
      }
    checkpoint.optimizer = std::move(state);
  }
  return checkpoint;
}
