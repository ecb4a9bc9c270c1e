//===- ImageData.cpp - IDX image classification for amp-run ---------------===//

#include "Dataset.h"
#include "TrainingData.h"
#include "amprt/FloatConversions.h"

#include <algorithm>
#include <cstring>

namespace amprun {

using amprt::DType;
using amprt::Program;
using amprt::Session;
using amprt::Status;

namespace {

/// Fashion-MNIST (or MNIST) images in the model's input layout, with their
/// class labels; evaluated by test accuracy.
class ImageData : public TrainingData {
public:
  int64_t trainCount() const override { return dataset.train.count; }
  int64_t batch() const override { return batchSize; }

  std::vector<amprt::Feed> trainBatch(const int64_t *indices) override {
    for (int64_t i = 0; i < batchSize; ++i) {
      trainLayout.copy(dataset.train, indices[i], images.data() + i * sampleValues);
      labels[i] = dataset.train.labels[indices[i]];
    }
    return {{inputName, images.data(), images.size() * sizeof(float)},
            {labelName, labels.data(), labels.size() * sizeof(int64_t)}};
  }

  /// Test accuracy through the eval program; the last partial batch is
  /// padded and its padding ignored. Inputs and outputs may be f32, bf16 or
  /// f16 (an exported low-precision model).
  Status evaluate(Session &session, Scores *scores) override {
    const amprun::Split &test = dataset.test;
    const auto &outputs = session.outputs(Program::Eval);
    if (outputs.empty() || outputs[0].shape.size() != 2 || !amprt::isFloat(outputs[0].dtype))
      return Status::error("the eval program has no [N, C] float output");
    DType outputType = outputs[0].dtype;
    int64_t classes = outputs[0].shape[1];
    std::vector<float> batch(evalBatch * evalValues);
    std::vector<char> logits(outputs[0].bytes());
    int64_t correct = 0;
    for (int64_t start = 0; start < test.count; start += evalBatch) {
      int64_t n = std::min(evalBatch, test.count - start);
      std::fill(batch.begin(), batch.end(), 0.0f);
      for (int64_t i = 0; i < n; ++i)
        evalLayout.copy(test, start + i, batch.data() + i * evalValues);
      std::vector<char> fed = toStorage(batch, evalInputType);
      AMPRT_RETURN_IF_ERROR(session.evaluate({{evalInputName, fed.data(), fed.size()}}));
      AMPRT_RETURN_IF_ERROR(
          session.readOutput(Program::Eval, outputs[0].name, logits.data(), logits.size()));
      for (int64_t i = 0; i < n; ++i) {
        int64_t best = 0;
        for (int64_t c = 1; c < classes; ++c)
          if (readFloat(logits.data(), i * classes + c, outputType) >
              readFloat(logits.data(), i * classes + best, outputType))
            best = c;
        correct += best == test.labels[start + i];
      }
    }
    *scores = {{"test_accuracy", static_cast<double>(correct) / test.count}};
    return Status::ok();
  }

  Dataset dataset;
  SampleLayout trainLayout, evalLayout;
  std::string inputName, labelName, evalInputName;
  DType evalInputType = DType::F32;
  int64_t batchSize = 0, sampleValues = 0; // of the train program's input
  int64_t evalBatch = 0, evalValues = 0;
  std::vector<float> images;
  std::vector<int64_t> labels;
};

/// The batch input of `program` and its per-sample shape.
Status batchInput(const Session &session, Program program, const amprt::TensorInfo **input,
                  std::vector<int64_t> *sample) {
  *input = findRole(session.inputs(program), "input");
  if (!*input || (*input)->shape.empty())
    return Status::error("the plan has no batch input");
  if (!amprt::isFloat((*input)->dtype)) // images are written as f32, bf16 or f16
    return Status::error("image data feeds float images; the plan's input '" + (*input)->name +
                         "' is " + amprt::dtypeName((*input)->dtype));
  sample->assign((*input)->shape.begin() + 1, (*input)->shape.end());
  return Status::ok();
}

} // namespace

Status openImageData(const std::string &directory, const Session &session, bool training,
                     std::unique_ptr<TrainingData> *data) {
  auto images = std::make_unique<ImageData>();
  AMPRT_RETURN_IF_ERROR(loadIdxDataset(directory, &images->dataset));
  const amprt::TensorInfo *input;
  std::vector<int64_t> sample;
  AMPRT_RETURN_IF_ERROR(batchInput(session, Program::Eval, &input, &sample));
  AMPRT_RETURN_IF_ERROR(SampleLayout::fit(images->dataset.test, sample, &images->evalLayout));
  images->evalInputName = input->name;
  images->evalInputType = input->dtype;
  images->evalBatch = input->shape[0];
  images->evalValues = input->numElements() / images->evalBatch;
  if (training) {
    AMPRT_RETURN_IF_ERROR(batchInput(session, Program::Train, &input, &sample));
    AMPRT_RETURN_IF_ERROR(SampleLayout::fit(images->dataset.train, sample, &images->trainLayout));
    const amprt::TensorInfo *label = findRole(session.inputs(Program::Train), "label");
    if (!label)
      return Status::error("the plan has no labels input (compile with loss=cross-entropy)");
    images->inputName = input->name;
    images->labelName = label->name;
    images->batchSize = input->shape[0];
    images->sampleValues = input->numElements() / images->batchSize;
    images->images.resize(images->batchSize * images->sampleValues);
    images->labels.resize(images->batchSize);
  }
  *data = std::move(images);
  return Status::ok();
}

} // namespace amprun
