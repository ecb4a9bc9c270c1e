//===- FuzzIdx.cpp - amp-run's IDX dataset reader (--data) ----------------===//
//
// The input is an image file and a label file: its first two bytes (little
// endian) say how many of the remaining bytes are the image file. Both
// splits (train, t10k) get the same two files; gzip is recognised by content.
//
//===----------------------------------------------------------------------===//
#include "Dataset.h"
#include "FuzzInput.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 2)
    return 0;
  size_t imageBytes = std::min<size_t>(data[0] | size_t{data[1]} << 8, size - 2);
  const uint8_t *images = data + 2, *labels = images + imageBytes;
  size_t labelBytes = size - 2 - imageBytes;
  std::string path;
  for (const char *split : {"train", "t10k"}) {
    ampfuzz::writeInput(images, imageBytes, (std::string(split) + "-images-idx3-ubyte").c_str());
    path = ampfuzz::writeInput(labels, labelBytes,
                               (std::string(split) + "-labels-idx1-ubyte").c_str());
  }
  amprun::Dataset dataset;
  (void)amprun::loadIdxDataset(path.substr(0, path.rfind('/')), &dataset);
  return 0;
}
