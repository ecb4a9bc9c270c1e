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
  int64_t pixels = 0; // per image
  std::vector<float> images;
  std::vector<int64_t> labels;
};

struct Dataset {
  Split train, test;
};

/// Reads an MNIST-style folder: {train,t10k}-{images-idx3,labels-idx1}-ubyte,
/// gzipped or not.
amprt::Status loadIdxDataset(const std::string &directory, Dataset *dataset);

} // namespace amprun

#endif // AMP_RUN_DATASET_H
