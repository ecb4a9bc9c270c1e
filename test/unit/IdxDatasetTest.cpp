//===- IdxDatasetTest.cpp - amp-run's IDX reader on hostile headers --------===//

#include "Dataset.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>

namespace {

std::string bigEndian32(uint32_t v) {
  return {static_cast<char>(v >> 24), static_cast<char>(v >> 16), static_cast<char>(v >> 8),
          static_cast<char>(v)};
}

/// A temporary folder holding `images` and `labels` as both the train and
/// the test split; removed with the object.
struct DatasetFolder {
  DatasetFolder(const std::string &images, const std::string &labels);
  ~DatasetFolder() { std::filesystem::remove_all(path); }
  std::string path;
};

DatasetFolder::DatasetFolder(const std::string &images, const std::string &labels) {
  char pattern[] = "/tmp/amp-idx-test-XXXXXX";
  path = mkdtemp(pattern);
  for (const char *split : {"train", "t10k"})
    for (auto [stem, bytes] :
         {std::pair{"-images-idx3-ubyte", &images}, {"-labels-idx1-ubyte", &labels}}) {
      FILE *f = std::fopen((path + "/" + split + stem).c_str(), "wb");
      std::fwrite(bytes->data(), 1, bytes->size(), f);
      std::fclose(f);
    }
}

std::string imageFile(uint32_t count, uint32_t rows, uint32_t cols, size_t pixelBytes) {
  return bigEndian32(0x803) + bigEndian32(count) + bigEndian32(rows) + bigEndian32(cols) +
         std::string(pixelBytes, '\x80');
}

std::string labelFile(uint32_t count) {
  return bigEndian32(0x801) + bigEndian32(count) + std::string(count, '\x03');
}

TEST(IdxDataset, ReadsImagesAndLabels) {
  DatasetFolder folder(imageFile(2, 3, 4, 24), labelFile(2));
  amprun::Dataset dataset;
  ASSERT_TRUE(amprun::loadIdxDataset(folder.path, &dataset).isOk());
  EXPECT_EQ(dataset.train.count, 2);
  EXPECT_EQ(dataset.train.pixels, 12);
  EXPECT_FLOAT_EQ(dataset.test.images[23], 128 / 255.0f);
  EXPECT_EQ(dataset.test.labels[1], 3);
}

// Found by fuzz-idx: the header's count, rows and columns were multiplied in
// int64 before being compared with the file's size, and 3313170949 x
// 4030543603 overflowed (UBSan).
TEST(IdxDataset, RefusesHeadersWhoseProductOverflows) {
  DatasetFolder folder(imageFile(0xffffffff, 0xc57afa05, 0xf03d36f3, 24), labelFile(2));
  amprun::Dataset dataset;
  amprt::Status s = amprun::loadIdxDataset(folder.path, &dataset);
  EXPECT_EQ(s.message(), folder.path + "/train-images-idx3-ubyte: size does not match its header "
                                  "(4294967295 images of 3313170949x4030543603, 24 bytes of "
                                  "pixels)");
}

TEST(IdxDataset, RefusesImagesWithoutPixels) {
  DatasetFolder folder(imageFile(5, 0, 28, 0), labelFile(5));
  amprun::Dataset dataset;
  amprt::Status s = amprun::loadIdxDataset(folder.path, &dataset);
  EXPECT_EQ(s.message(),
            folder.path + "/train-images-idx3-ubyte: holds no pixels (5 images of 0x28)");
}

} // namespace
