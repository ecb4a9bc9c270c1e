//===- ExternalData.cpp - ONNX tensors whose bytes live in other files ----===//
//
// ONNX keeps large tensors outside the model file: data_location EXTERNAL
// with "location", "offset" and "length" entries (and an optional
// "checksum", which ONNX's own loader does not check either). A model is
// untrusted input, so a location must be relative, have no ".." component
// and resolve (symbolic links followed) to a regular file inside the model's
// folder; offset and length must lie within that file. The file opened is
// the resolved one, so a link changed after the check is not followed.
//
//===----------------------------------------------------------------------===//

#include "ExternalData.h"

#include "llvm/ADT/SmallString.h"
#include "llvm/ADT/Twine.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Support/Path.h"

using namespace llvm;

namespace mlir::amp::onnx_import {

namespace {

Error failure(const onnx::TensorProto &tensor, const Twine &reason) {
  return createStringError(inconvertibleErrorCode(),
                           "tensor '" + tensor.name() + "': external data " + reason);
}

/// The file `location` names, resolved, if it is inside `folder` (resolved).
Expected<std::string> containedFile(const onnx::TensorProto &tensor, StringRef location,
                                    StringRef folder) {
  if (location.empty() || location.contains('\0'))
    return failure(tensor, "has an empty or malformed location");
  if (sys::path::is_absolute(location))
    return failure(tensor, "location '" + location +
                               "' is absolute; it must be relative to the model's folder");
  for (StringRef component : make_range(sys::path::begin(location), sys::path::end(location)))
    if (component == "..")
      return failure(tensor, "location '" + location + "' leaves the model's folder ('..')");
  SmallString<256> joined(folder), resolved;
  sys::path::append(joined, location);
  if (std::error_code error = sys::fs::real_path(joined, resolved))
    return failure(tensor, "file '" + location + "' cannot be opened: " + error.message());
  // Inside: below "folder/" (a sibling "folder2/..." shares the prefix).
  SmallString<256> inside(folder);
  inside += sys::path::get_separator();
  if (!StringRef(resolved).starts_with(inside))
    return failure(tensor, "location '" + location + "' resolves to '" + resolved +
                               "', outside the model's folder");
  if (!sys::fs::is_regular_file(resolved))
    return failure(tensor, "location '" + location + "' is not a regular file");
  return std::string(resolved);
}

Error inlineTensor(onnx::TensorProto &tensor, StringRef folder) {
  if (tensor.has_raw_data() || tensor.float_data_size() || tensor.int64_data_size() ||
      tensor.int32_data_size() || tensor.double_data_size())
    return failure(tensor, "is given along with inline data");
  std::string location;
  uint64_t offset = 0, length = 0;
  bool hasLength = false;
  for (const auto &entry : tensor.external_data()) {
    StringRef key = entry.key(), value = entry.value();
    if (key == "location") {
      location = value.str();
    } else if (key == "offset" || key == "length") {
      uint64_t number;
      if (value.getAsInteger(10, number))
        return failure(tensor, key + " '" + value + "' is not a non-negative integer");
      (key == "offset" ? offset : length) = number;
      hasLength |= key == "length";
    } else if (key != "checksum") {
      return failure(tensor, "has the unknown key '" + key + "'");
    }
  }
  auto file = containedFile(tensor, location, folder);
  if (!file)
    return file.takeError();
  uint64_t size = 0;
  if (std::error_code error = sys::fs::file_size(*file, size))
    return failure(tensor, "file '" + location + "' cannot be read: " + error.message());
  if (offset > size)
    return failure(tensor, "offset " + Twine(offset) + " is past the end of '" + location +
                               "' (" + Twine(size) + " bytes)");
  if (!hasLength)
    length = size - offset;
  if (length > size - offset)
    return failure(tensor, "offset " + Twine(offset) + " + length " + Twine(length) +
                               " is past the end of '" + location + "' (" + Twine(size) +
                               " bytes)");
  std::string bytes;
  if (length > 0) {
    auto buffer = MemoryBuffer::getFileSlice(*file, length, offset);
    if (!buffer)
      return failure(tensor, "file '" + location +
                                 "' cannot be read: " + buffer.getError().message());
    bytes.assign((*buffer)->getBufferStart(), (*buffer)->getBufferSize());
  }
  tensor.clear_external_data();
  tensor.set_data_location(onnx::TensorProto::DEFAULT);
  tensor.set_raw_data(std::move(bytes));
  return Error::success();
}

} // namespace

Error inlineExternalData(onnx::ModelProto &model, StringRef modelPath) {
  SmallString<256> folder(sys::path::parent_path(modelPath));
  if (folder.empty())
    folder = ".";
  SmallString<256> resolvedFolder;
  bool resolved = false;
  auto inlineIfExternal = [&](onnx::TensorProto &tensor) -> Error {
    if (tensor.data_location() != onnx::TensorProto::EXTERNAL)
      return Error::success();
    if (!resolved) {
      if (std::error_code error = sys::fs::real_path(folder, resolvedFolder))
        return failure(tensor, "cannot be read: the model's folder: " + error.message());
      resolved = true;
    }
    return inlineTensor(tensor, resolvedFolder);
  };
  auto *graph = model.mutable_graph();
  for (auto &tensor : *graph->mutable_initializer())
    if (Error error = inlineIfExternal(tensor))
      return error;
  for (auto &node : *graph->mutable_node())
    for (auto &attribute : *node.mutable_attribute())
      if (attribute.has_t())
        if (Error error = inlineIfExternal(*attribute.mutable_t()))
          return error;
  return Error::success();
}

} // namespace mlir::amp::onnx_import
