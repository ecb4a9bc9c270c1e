//===- TrainingData.h - what amp-run trains and evaluates on ----*- C++ -*-===//
//
// `amp-run train` and `amp-run accuracy` read their data through this
// interface (--data KIND=PATH): the training split as batches in the plan's
// input layout, and a held-out split evaluated through the eval program.
//
//===----------------------------------------------------------------------===//
#ifndef AMP_RUN_TRAININGDATA_H
#define AMP_RUN_TRAININGDATA_H

#include "amprt/Session.h"
#include "amprt/Status.h"

#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace amprun {

/// A held-out evaluation's results in the order they are reported, e.g.
/// {"test_accuracy", 0.87} or {"test_loss", 1.9}, {"test_perplexity", 6.7}.
using Scores = std::vector<std::pair<std::string, double>>;

class TrainingData {
public:
  virtual ~TrainingData() = default;

  /// Opens --data's value fitted to `session`'s plan: fashion-mnist=DIR or
  /// mnist=DIR (IDX images, test accuracy) or text=FILE (byte tokens, held-out
  /// loss and perplexity). `training` also requires the train program's
  /// inputs; without it only the eval program is used.
  static amprt::Status open(const std::string &spec, const amprt::Session &session,
                            bool training, std::unique_ptr<TrainingData> *data);

  /// Samples in the training split; the plan's batch size.
  virtual int64_t trainCount() const = 0;
  virtual int64_t batch() const = 0;
  /// The train feeds of samples indices[0, batch()); valid until the next call.
  virtual std::vector<amprt::Feed> trainBatch(const int64_t *indices) = 0;
  /// Runs the held-out split through the eval program.
  virtual amprt::Status evaluate(amprt::Session &session, Scores *scores) = 0;
};

/// The plan's tensor of `role` among `infos`, or null.
const amprt::TensorInfo *findRole(const std::vector<amprt::TensorInfo> &infos,
                                  const std::string &role);

/// Element `i` of a float output stored as f32, bf16 or f16.
float readFloat(const char *bytes, size_t i, amprt::DType dtype);
/// Float values as the storage of `dtype` (f32, bf16 or f16), rounded to
/// nearest even.
std::vector<char> toStorage(const std::vector<float> &values, amprt::DType dtype);

amprt::Status openImageData(const std::string &directory, const amprt::Session &session,
                            bool training, std::unique_ptr<TrainingData> *data);
amprt::Status openTextData(const std::string &path, const amprt::Session &session,
                           bool training, std::unique_ptr<TrainingData> *data);

} // namespace amprun

#endif // AMP_RUN_TRAININGDATA_H
