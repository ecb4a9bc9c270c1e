//===- Export.h - trained weights back into the ONNX model ------*- C++ -*-===//
#ifndef AMP_RUN_EXPORT_H
#define AMP_RUN_EXPORT_H

#include "amprt/Session.h"

#include <string>

namespace amprun {

/// Writes `onnxPath`'s model with every initializer that is a parameter of
/// `session` replaced by its trained value (a parameter the model takes as
/// a graph input, as an onnxruntime-training eval model does, becomes an
/// initializer), in `precision` (fp32, fp16 or
/// bf16: then the graph's float inputs and outputs take that type too), to
/// `outPath`. The result must pass the ONNX checker and strict shape
/// inference before it is written (atomically).
amprt::Status exportOnnx(const amprt::Session &session, const std::string &onnxPath,
                         const std::string &precision, const std::string &outPath);

/// Writes a copy of the onnxruntime-training checkpoint at `sourcePath`
/// (of the artifact set the plan was compiled from) with the session's
/// trained parameters and running averages and its AdamW state (step and
/// moments, as ORT's optimizer group "group0") to `outPath` (atomically);
/// ORT's training API resumes from it.
amprt::Status exportOrtCheckpoint(const amprt::Session &session, const std::string &sourcePath,
                                  const std::string &outPath);

} // namespace amprun

#endif // AMP_RUN_EXPORT_H
