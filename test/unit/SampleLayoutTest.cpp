//===- SampleLayoutTest.cpp - images fitted to a model's input ------------===//

#include "Dataset.h"

#include <gtest/gtest.h>

namespace {

/// Two 2x3 images with distinct values: image i, pixel p = 10 i + p + 1.
amprun::Split twoImages() {
  amprun::Split split;
  split.count = 2;
  split.rows = 2;
  split.cols = 3;
  split.pixels = 6;
  for (int i = 0; i < 2; ++i)
    for (int p = 0; p < 6; ++p)
      split.images.push_back(10.0f * i + p + 1);
  split.labels = {0, 1};
  return split;
}

TEST(SampleLayout, TakesTheImageAsItIsWhenTheSizesAgree) {
  amprun::Split split = twoImages();
  for (std::vector<int64_t> shape : {std::vector<int64_t>{6}, {1, 2, 3}, {3, 2}}) {
    amprun::SampleLayout layout;
    ASSERT_TRUE(amprun::SampleLayout::fit(split, shape, &layout).isOk());
    std::vector<float> out(layout.values());
    layout.copy(split, 1, out.data());
    EXPECT_EQ(out, std::vector<float>({11, 12, 13, 14, 15, 16}));
  }
}

TEST(SampleLayout, ReplicatesChannelsAndPadsEvenly) {
  amprun::Split split = twoImages();
  amprun::SampleLayout layout;
  ASSERT_TRUE(amprun::SampleLayout::fit(split, {3, 4, 5}, &layout).isOk());
  ASSERT_EQ(layout.values(), 60);
  std::vector<float> out(60, -1.0f);
  layout.copy(split, 0, out.data());
  // Each channel: a 4x5 plane of zeros with the 2x3 image at row 1, col 1.
  std::vector<float> plane = {0, 0, 0, 0, 0, //
                              0, 1, 2, 3, 0, //
                              0, 4, 5, 6, 0, //
                              0, 0, 0, 0, 0};
  for (int c = 0; c < 3; ++c)
    EXPECT_EQ(std::vector<float>(out.begin() + 20 * c, out.begin() + 20 * (c + 1)), plane);
}

TEST(SampleLayout, RefusesInputsTheImagesDoNotFit) {
  amprun::Split split = twoImages();
  amprun::SampleLayout layout;
  for (std::vector<int64_t> shape : {std::vector<int64_t>{4}, {2, 4, 5}, {3, 1, 5}, {1, 4}}) {
    amprt::Status status = amprun::SampleLayout::fit(split, shape, &layout);
    ASSERT_FALSE(status.isOk());
    EXPECT_NE(status.message().find("does not fit 2x3 images"), std::string::npos)
        << status.message();
  }
}

} // namespace
