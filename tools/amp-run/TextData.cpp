//===- TextData.cpp - byte-level language-model data for amp-run ----------===//
//
// --data text=FILE: every byte of FILE (gzipped or not) is a token. The last
// tenth of the file is held out. Training samples are the windows of
// sequence + 1 bytes starting at multiples of the sequence length: the
// first `sequence` bytes feed the model and each one's next byte is its
// label. The held-out windows are evaluated by their mean next-token cross
// entropy and its exponential, the perplexity.
//
//===----------------------------------------------------------------------===//

#include "Dataset.h"
#include "TrainingData.h"

#include <algorithm>
#include <cmath>

namespace amprun {

using amprt::DType;
using amprt::Program;
using amprt::Session;
using amprt::Status;
using amprt::TensorInfo;

namespace {

constexpr int64_t kByteTokens = 256;

std::string describe(const TensorInfo &info) {
  std::string text = std::string(amprt::dtypeName(info.dtype)) + " [";
  for (size_t i = 0; i < info.shape.size(); ++i)
    text += (i ? ", " : "") + std::to_string(info.shape[i]);
  return text + "]";
}

class TextData : public TrainingData {
public:
  int64_t trainCount() const override { return (trainBytes - 1) / sequence; }
  int64_t batch() const override { return batchSize; }

  std::vector<amprt::Feed> trainBatch(const int64_t *indices) override {
    for (int64_t i = 0; i < batchSize; ++i)
      window(indices[i] * sequence, &tokens[i * sequence], &labels[i * sequence]);
    return {{inputName, tokens.data(), tokens.size() * sizeof(int64_t)},
            {labelName, labels.data(), labels.size() * sizeof(int64_t)}};
  }

  /// Mean cross entropy of every held-out next byte, from the eval
  /// program's logits in double precision; the last partial batch is padded
  /// and its padding ignored.
  Status evaluate(Session &session, Scores *scores) override {
    const TensorInfo &logitsInfo = session.outputs(Program::Eval)[0];
    int64_t vocabulary = logitsInfo.shape.back();
    int64_t windows = (static_cast<int64_t>(text.size()) - trainBytes - 1) / sequence;
    std::vector<int64_t> evalTokens(evalBatch * sequence), evalLabels(evalBatch * sequence);
    std::vector<char> logits(logitsInfo.bytes());
    std::vector<double> row(vocabulary);
    double total = 0;
    for (int64_t start = 0; start < windows; start += evalBatch) {
      int64_t n = std::min(evalBatch, windows - start);
      std::fill(evalTokens.begin(), evalTokens.end(), 0);
      for (int64_t i = 0; i < n; ++i)
        window(trainBytes + (start + i) * sequence, &evalTokens[i * sequence],
               &evalLabels[i * sequence]);
      AMPRT_RETURN_IF_ERROR(session.evaluate(
          {{evalInputName, evalTokens.data(), evalTokens.size() * sizeof(int64_t)}}));
      AMPRT_RETURN_IF_ERROR(
          session.readOutput(Program::Eval, logitsInfo.name, logits.data(), logits.size()));
      for (int64_t t = 0; t < n * sequence; ++t) {
        double largest = -INFINITY, sum = 0;
        for (int64_t v = 0; v < vocabulary; ++v) {
          row[v] = readFloat(logits.data(), t * vocabulary + v, logitsInfo.dtype);
          largest = std::max(largest, row[v]);
        }
        for (int64_t v = 0; v < vocabulary; ++v)
          sum += std::exp(row[v] - largest);
        total += largest + std::log(sum) - row[evalLabels[t]];
      }
    }
    double loss = total / static_cast<double>(windows * sequence);
    *scores = {{"test_loss", loss}, {"test_perplexity", std::exp(loss)}};
    return Status::ok();
  }

  /// The tokens and next-byte labels of the window at byte `offset`.
  void window(int64_t offset, int64_t *windowTokens, int64_t *windowLabels) const {
    for (int64_t i = 0; i < sequence; ++i) {
      windowTokens[i] = static_cast<uint8_t>(text[offset + i]);
      windowLabels[i] = static_cast<uint8_t>(text[offset + i + 1]);
    }
  }

  std::string text;
  int64_t trainBytes = 0; // bytes [0, trainBytes) train; the rest is held out
  int64_t sequence = 0, batchSize = 0, evalBatch = 0;
  std::string inputName, labelName, evalInputName;
  std::vector<int64_t> tokens, labels;
};

/// `info` is an int64 [batch, sequence] tensor (`what` names it).
Status checkTokens(const TensorInfo *info, const std::string &what) {
  if (!info || info->dtype != DType::I64 || info->shape.size() != 2)
    return Status::error("text data feeds byte tokens: the plan's " + what +
                         (info ? " '" + info->name + "' is " + describe(*info) : " is missing") +
                         ", not int64 [batch, sequence]");
  return Status::ok();
}

} // namespace

Status openTextData(const std::string &path, const Session &session, bool training,
                    std::unique_ptr<TrainingData> *data) {
  auto text = std::make_unique<TextData>();
  const TensorInfo *input = findRole(session.inputs(Program::Eval), "input");
  AMPRT_RETURN_IF_ERROR(checkTokens(input, "eval input"));
  text->evalInputName = input->name;
  text->evalBatch = input->shape[0];
  text->sequence = input->shape[1];
  const auto &outputs = session.outputs(Program::Eval);
  if (outputs.empty() || outputs[0].shape.size() != 3 || !amprt::isFloat(outputs[0].dtype) ||
      outputs[0].shape[0] != text->evalBatch || outputs[0].shape[1] != text->sequence)
    return Status::error("text data needs the eval program's first output to be logits "
                         "[batch, sequence, vocabulary]" +
                         (outputs.empty() ? std::string() : ", not " + describe(outputs[0])));
  if (outputs[0].shape[2] < kByteTokens)
    return Status::error("the model's vocabulary holds " + std::to_string(outputs[0].shape[2]) +
                         " tokens; byte tokens need " + std::to_string(kByteTokens));
  if (training) {
    const auto &inputs = session.inputs(Program::Train);
    input = findRole(inputs, "input");
    const TensorInfo *label = findRole(inputs, "label");
    AMPRT_RETURN_IF_ERROR(checkTokens(input, "train input"));
    AMPRT_RETURN_IF_ERROR(checkTokens(label, "labels input (compile with loss=cross-entropy)"));
    if (input->shape != label->shape || input->shape[1] != text->sequence)
      return Status::error("the plan's tokens " + describe(*input) + " and labels " +
                           describe(*label) + " differ in shape from each other or from the "
                           "eval input's sequence of " + std::to_string(text->sequence));
    text->inputName = input->name;
    text->labelName = label->name;
    text->batchSize = input->shape[0];
    text->tokens.resize(text->batchSize * text->sequence);
    text->labels.resize(text->batchSize * text->sequence);
  }
  AMPRT_RETURN_IF_ERROR(readDataFile(path, &text->text));
  int64_t size = static_cast<int64_t>(text->text.size());
  int64_t windowBytes = text->sequence + 1;
  text->trainBytes = size - std::max(size / 10, windowBytes);
  int64_t needed = std::max<int64_t>(text->batchSize, 1);
  if (text->trainBytes < windowBytes || text->trainCount() < needed)
    return Status::error(path + ": " + std::to_string(size) + " bytes are too few: training " +
                         "needs " + std::to_string(needed) + " sequence(s) of " +
                         std::to_string(windowBytes) + " bytes besides the held-out tenth " +
                         "(at least one sequence)");
  *data = std::move(text);
  return Status::ok();
}

} // namespace amprun
