//===- FeedChecks.cpp - what fed tensors must hold -------------------------===//

#include "FeedChecks.h"

#include "amprt/FloatConversions.h"

#include <cmath>
#include <cstring>

namespace amprt {

namespace {

float elementAsFloat(const uint8_t *bytes, DType dtype, size_t i) {
  if (dtype == DType::F32) {
    float v;
    std::memcpy(&v, bytes + 4 * i, 4);
    return v;
  }
  uint16_t bits;
  std::memcpy(&bits, bytes + 2 * i, 2);
  return dtype == DType::BF16 ? math::bf16ToFloat(bits) : math::f16ToFloat(bits);
}

} // namespace

int64_t indexOfNonFinite(const void *data, size_t bytes, DType dtype) {
  if (!isFloat(dtype))
    return -1;
  const auto *raw = static_cast<const uint8_t *>(data);
  size_t count = bytes / dtypeSize(dtype);
  for (size_t i = 0; i < count; ++i)
    if (!std::isfinite(elementAsFloat(raw, dtype, i)))
      return static_cast<int64_t>(i);
  return -1;
}

std::vector<FeedCheck> feedChecks(const proto::Program &program) {
  std::vector<FeedCheck> checks;
  for (const auto &binding : program.inputs()) {
    FeedCheck check;
    auto dtype = static_cast<DType>(program.buffers(binding.buffer()).type().dtype());
    if (isFloat(dtype))
      check.kind = FeedCheck::Kind::Finite;
    for (const auto &kernel : program.kernels()) {
      if (dtype != DType::I64 || kernel.op() != "softmax_cross_entropy" ||
          kernel.inputs_size() != 2 || kernel.inputs(1) != binding.buffer())
        continue;
      const auto &logits = program.buffers(kernel.inputs(0)).type();
      if (logits.shape_size() != 2)
        continue; // the kernel itself refuses it when the session binds it
      check = {FeedCheck::Kind::Labels, logits.shape(1), labelRule(kernel)};
      break;
    }
    checks.push_back(check);
  }
  return checks;
}

Status checkFeed(const FeedCheck &check, DType dtype, const void *data, size_t bytes) {
  if (check.kind == FeedCheck::Kind::Labels) {
    int64_t counted;
    return checkLabels(static_cast<const int64_t *>(data),
                       static_cast<int64_t>(bytes / sizeof(int64_t)), check.classes, check.rule,
                       &counted);
  }
  int64_t bad = check.kind == FeedCheck::Kind::Finite ? indexOfNonFinite(data, bytes, dtype) : -1;
  if (bad < 0)
    return Status::ok();
  float v = elementAsFloat(static_cast<const uint8_t *>(data), dtype, bad);
  return Status::error(std::string(std::isnan(v) ? "NaN" : "inf") + " at element " +
                       std::to_string(bad));
}

} // namespace amprt
