//===- Dataset.h - IDX image classification datasets ------------*- C++ -*-===//
#ifndef AMP_RUN_DATASET_H
#define AMP_RUN_DATASET_H

#include "amprt/Status.h"

#include <cstdint>
#include <string>
#include <vector>

namespace amprun {

/// Images as floats in [0, 1] (pixel / 255, as torchvision's ToTensor) and
/// int64 labels.
struct Split {
  int64_t count = 0;
  int64_t rows = 0, cols = 0;
  int64_t pixels = 0; // per image: rows * cols
  std::vector<float> images;
  std::vector<int64_t> labels;
};

struct Dataset {
  Split train, test;
};

/// Reads a whole data file, gzipped or not (zlib passes plain files
/// through), up to amprt::kMaxDataFileBytes.
amprt::Status readDataFile(const std::string &path, std::string *contents);

/// Reads an MNIST-style folder: {train,t10k}-{images-idx3,labels-idx1}-ubyte,
/// gzipped or not.
amprt::Status loadIdxDataset(const std::string &directory, Dataset *dataset);

/// How images fit a model's input of per-sample shape `sample` (the batch
/// dim dropped): any shape of rows * cols values takes the image as it is
/// (an MLP's [784], a LeNet's [1, 28, 28]); [C, H, W] with C 1 or 3 and H,
/// W at least the image's takes it replicated over the channels and
/// zero-padded evenly around (28x28 into 32x32 as torchvision's Pad(2)),
/// so CIFAR-shaped models train on Fashion-MNIST. Fails naming both shapes.
class SampleLayout {
public:
  static amprt::Status fit(const Split &split, const std::vector<int64_t> &sample,
                           SampleLayout *layout);
  /// Writes image `index` of `split` in the model's layout to `out`.
  void copy(const Split &split, int64_t index, float *out) const;
  int64_t values() const { return channels * height * width; }

private:
  int64_t channels = 1, height = 0, width = 0, top = 0, left = 0;
};

} // namespace amprun

#endif // AMP_RUN_DATASET_H
