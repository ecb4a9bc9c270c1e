//===- TrainingData.cpp - --data KIND=PATH --------------------------------===//

#include "TrainingData.h"
#include "amprt/FloatConversions.h"

#include <cstring>

namespace amprun {

using amprt::Status;

Status TrainingData::open(const std::string &spec, const amprt::Session &session, bool training,
                          std::unique_ptr<TrainingData> *data) {
  auto eq = spec.find('=');
  std::string kind = spec.substr(0, eq), path = eq == std::string::npos ? "" : spec.substr(eq + 1);
  if (path.empty() || (kind != "fashion-mnist" && kind != "mnist" && kind != "text"))
    return Status::error("--data expects fashion-mnist=DIR (an IDX folder) or text=FILE (byte "
                         "tokens), got '" + spec + "'");
  if (kind == "text")
    return openTextData(path, session, training, data);
  return openImageData(path, session, training, data);
}

const amprt::TensorInfo *findRole(const std::vector<amprt::TensorInfo> &infos,
                                  const std::string &role) {
  for (const auto &info : infos)
    if (info.role == role)
      return &info;
  return nullptr;
}

float readFloat(const char *bytes, size_t i, amprt::DType dtype) {
  if (dtype == amprt::DType::F32) {
    float v;
    std::memcpy(&v, bytes + 4 * i, 4);
    return v;
  }
  uint16_t half;
  std::memcpy(&half, bytes + 2 * i, 2);
  return dtype == amprt::DType::F16 ? amprt::math::f16ToFloat(half)
                                    : amprt::math::bf16ToFloat(half);
}

std::vector<char> toStorage(const std::vector<float> &values, amprt::DType dtype) {
  std::vector<char> bytes(values.size() * amprt::dtypeSize(dtype));
  for (size_t i = 0; i < values.size(); ++i) {
    if (dtype == amprt::DType::F32) {
      std::memcpy(bytes.data() + 4 * i, &values[i], 4);
      continue;
    }
    uint16_t half = dtype == amprt::DType::F16 ? amprt::math::floatToF16(values[i])
                                               : amprt::math::floatToBf16(values[i]);
    std::memcpy(bytes.data() + 2 * i, &half, 2);
  }
  return bytes;
}

} // namespace amprun
