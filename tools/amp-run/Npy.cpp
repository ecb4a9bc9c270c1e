//===- Npy.cpp - read and write NumPy .npy files --------------------------===//

#include "Npy.h"
#include "amprt/AtomicFile.h"
#include "amprt/PlanFormat.h"

#include <charconv>
#include <sstream>

namespace amprun {

using amprt::DType;
using amprt::Status;

namespace {

const char kMagic[] = "\x93NUMPY";

/// NumPy type strings; bfloat16, which NumPy lacks, is written as its raw
/// 16-bit patterns ('<u2').
const char *descr(DType dtype) {
  switch (dtype) {
  case DType::I64:
    return "<i8";
  case DType::I32:
    return "<i4";
  case DType::Bool:
    return "|b1";
  case DType::F16:
    return "<f2";
  case DType::BF16:
    return "<u2";
  default:
    return "<f4";
  }
}

} // namespace

Status writeNpy(const std::string &path, const NpyArray &array) {
  std::ostringstream header;
  header << "{'descr': '" << descr(array.dtype) << "', 'fortran_order': False, 'shape': (";
  for (size_t i = 0; i < array.shape.size(); ++i)
    header << array.shape[i] << (array.shape.size() == 1 || i + 1 < array.shape.size() ? "," : "")
           << (i + 1 < array.shape.size() ? " " : "");
  header << "), }";
  std::string text = header.str();
  size_t total = 10 + text.size() + 1;
  text.append((64 - total % 64) % 64, ' ');
  text += '\n';
  std::string contents(kMagic, 6);
  contents += '\x01';
  contents += '\x00';
  contents += static_cast<char>(text.size() & 0xff);
  contents += static_cast<char>(text.size() >> 8);
  contents += text;
  contents += array.bytes;
  return amprt::writeFileAtomically(path, contents);
}

Status readNpy(const std::string &path, NpyArray *array) {
  std::string data;
  AMPRT_RETURN_IF_ERROR(amprt::readFile(path, &data, amprt::kMaxDataFileBytes));
  if (data.size() < 10 || data.compare(0, 6, kMagic, 6) != 0 || data[6] != 1)
    return Status::error(path + ": not a version 1 .npy file");
  size_t headerSize = static_cast<uint8_t>(data[8]) | (static_cast<uint8_t>(data[9]) << 8);
  if (data.size() < 10 + headerSize)
    return Status::error(path + ": truncated header");
  std::string header = data.substr(10, headerSize);
  if (header.find("'fortran_order': False") == std::string::npos)
    return Status::error(path + ": only C-ordered arrays are supported");
  if (header.find("'<f4'") != std::string::npos)
    array->dtype = DType::F32;
  else if (header.find("'<i8'") != std::string::npos)
    array->dtype = DType::I64;
  else if (header.find("'<i4'") != std::string::npos)
    array->dtype = DType::I32;
  else if (header.find("'|b1'") != std::string::npos)
    array->dtype = DType::Bool;
  else
    return Status::error(path + ": only float32, int64, int32 and bool arrays are supported");
  size_t open = header.find('(', header.find("'shape'"));
  size_t close = header.find(')', open);
  if (open == std::string::npos || close == std::string::npos)
    return Status::error(path + ": no shape in the header");
  array->shape.clear();
  std::stringstream dims(header.substr(open + 1, close - open - 1));
  std::string item;
  while (std::getline(dims, item, ',')) {
    size_t first = item.find_first_not_of(' '), last = item.find_last_not_of(' ');
    if (first == std::string::npos)
      continue; // the empty item after a 1-tuple's comma
    int64_t dim = -1;
    const char *begin = item.data() + first, *end = item.data() + last + 1;
    auto [stop, error] = std::from_chars(begin, end, dim);
    if (error != std::errc() || stop != end || dim < 0)
      return Status::error(path + ": shape has an invalid dimension '" +
                           std::string(begin, end) + "'");
    array->shape.push_back(dim);
  }
  std::string beyond = amprt::beyondTensorLimits(array->shape.data(), array->shape.size());
  if (!beyond.empty())
    return Status::error(path + ": shape has " + beyond);
  int64_t count = amprt::boundedElementCount(array->shape.data(), array->shape.size());
  array->bytes = data.substr(10 + headerSize);
  if (array->bytes.size() != static_cast<size_t>(count) * amprt::dtypeSize(array->dtype))
    return Status::error(path + ": data size does not match the shape");
  return Status::ok();
}

} // namespace amprun
