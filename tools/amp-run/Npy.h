//===- Npy.h - read and write NumPy .npy files ------------------*- C++ -*-===//
#ifndef AMP_RUN_NPY_H
#define AMP_RUN_NPY_H

#include "amprt/Session.h"

#include <string>
#include <vector>

namespace amprun {

struct NpyArray {
  amprt::DType dtype = amprt::DType::F32;
  std::vector<int64_t> shape;
  std::string bytes;
};

/// Reads a little-endian, C-ordered .npy of float32 or int64.
amprt::Status readNpy(const std::string &path, NpyArray *array);
/// Writes `array` as .npy (version 1.0) through a temporary file and rename.
amprt::Status writeNpy(const std::string &path, const NpyArray &array);

} // namespace amprun

#endif // AMP_RUN_NPY_H
