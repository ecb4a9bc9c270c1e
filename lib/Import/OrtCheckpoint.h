//===- OrtCheckpoint.h - onnxruntime-training's parameter checkpoint -*- C++ -*-===//
//
// Reads the `checkpoint` file of an onnxruntime-training artifact set (the
// FlatBuffer format declared in OrtCheckpoint.fbs): trainable and frozen
// parameters and, once ORT has saved a trained state, the optimizer's step,
// learning rate and moments.
//
//===----------------------------------------------------------------------===//
#ifndef AMP_LIB_IMPORT_ORTCHECKPOINT_H
#define AMP_LIB_IMPORT_ORTCHECKPOINT_H

#include "llvm/ADT/StringMap.h"
#include "llvm/Support/Error.h"
#include "llvm/Support/MemoryBuffer.h"

#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace mlir::amp::ort {

/// A tensor of the checkpoint; `bytes` points into the checkpoint's buffer.
struct CheckpointTensor {
  std::string name;
  std::vector<int64_t> dims;
  int32_t dataType; // ONNX TensorProto.DataType
  llvm::StringRef bytes;
};

/// The optimizer's saved state (absent in a freshly generated checkpoint).
struct OptimizerState {
  int64_t step = 0;
  float learningRate = 0;
  /// The moments of each parameter, in the optimizer's order (AdamW: the
  /// first, then the second moment).
  llvm::StringMap<std::vector<CheckpointTensor>> moments;
};

struct Checkpoint {
  std::unique_ptr<llvm::MemoryBuffer> buffer; // owns what the tensors point to
  std::vector<CheckpointTensor> trainable, frozen;
  std::optional<OptimizerState> optimizer;
};

/// Reads and verifies the checkpoint at `path`; errors say what is wrong or
/// unsupported (external data, nominal states, several optimizer groups,
/// non-float tensors, sizes that disagree with shapes), the caller names
/// the file.
llvm::Expected<Checkpoint> readCheckpoint(llvm::StringRef path);

} // namespace mlir::amp::ort

#endif // AMP_LIB_IMPORT_ORTCHECKPOINT_H
