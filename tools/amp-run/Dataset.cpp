//===- Dataset.cpp - IDX image classification datasets --------------------===//

#include "Dataset.h"
#include "amprt/AtomicFile.h"

#include <zlib.h>

#include <algorithm>

namespace amprun {

using amprt::Status;

Status readDataFile(const std::string &path, std::string *contents) {
  gzFile file = gzopen(path.c_str(), "rb");
  if (!file)
    return Status::error(path + ": cannot open");
  char chunk[1 << 16];
  int n;
  while ((n = gzread(file, chunk, sizeof(chunk))) > 0) {
    if (contents->size() + n > amprt::kMaxDataFileBytes) {
      gzclose(file);
      return Status::error(path + ": more than " +
                           std::to_string(amprt::kMaxDataFileBytes >> 30) +
                           " GiB uncompressed (the limit of a dataset file)");
    }
    contents->append(chunk, n);
  }
  bool failed = n < 0;
  gzclose(file);
  if (failed)
    return Status::error(path + ": read or decompression failed");
  return Status::ok();
}

namespace {

uint32_t bigEndian(const std::string &data, size_t offset) {
  auto byte = [&](size_t i) { return static_cast<uint32_t>(static_cast<uint8_t>(data[offset + i])); };
  return byte(0) << 24 | byte(1) << 16 | byte(2) << 8 | byte(3);
}

/// Finds `stem` or `stem.gz` in `directory`.
std::string locate(const std::string &directory, const std::string &stem) {
  std::string plain = directory + "/" + stem;
  if (gzFile f = gzopen(plain.c_str(), "rb")) {
    gzclose(f);
    return plain;
  }
  return plain + ".gz";
}

Status loadSplit(const std::string &directory, const std::string &prefix, Split *split) {
  std::string imagesPath = locate(directory, prefix + "-images-idx3-ubyte");
  std::string labelsPath = locate(directory, prefix + "-labels-idx1-ubyte");
  std::string images, labels;
  AMPRT_RETURN_IF_ERROR(readDataFile(imagesPath, &images));
  AMPRT_RETURN_IF_ERROR(readDataFile(labelsPath, &labels));
  if (images.size() < 16 || bigEndian(images, 0) != 0x803)
    return Status::error(imagesPath + ": not an IDX3 image file");
  if (labels.size() < 8 || bigEndian(labels, 0) != 0x801)
    return Status::error(labelsPath + ": not an IDX1 label file");
  int64_t count = bigEndian(images, 4), rows = bigEndian(images, 8), cols = bigEndian(images, 12);
  if (count == 0 || rows == 0 || cols == 0)
    return Status::error(imagesPath + ": holds no pixels (" + std::to_string(count) +
                         " images of " + std::to_string(rows) + "x" + std::to_string(cols) + ")");
  // Each factor is bounded by the bytes there are before the product is
  // formed: the header's three 32-bit counts can overflow int64 together.
  int64_t available = static_cast<int64_t>(images.size()) - 16;
  if (rows > available || cols > available / rows || count > available / (rows * cols) ||
      count * rows * cols != available)
    return Status::error(imagesPath + ": size does not match its header (" +
                         std::to_string(count) + " images of " + std::to_string(rows) + "x" +
                         std::to_string(cols) + ", " + std::to_string(available) +
                         " bytes of pixels)");
  int64_t pixels = rows * cols;
  if (bigEndian(labels, 4) != count || static_cast<int64_t>(labels.size()) != 8 + count)
    return Status::error(labelsPath + ": label count does not match the images");
  split->count = count;
  split->rows = rows;
  split->cols = cols;
  split->pixels = pixels;
  split->images.resize(count * pixels);
  for (int64_t i = 0; i < count * pixels; ++i)
    split->images[i] = static_cast<uint8_t>(images[16 + i]) / 255.0f;
  split->labels.resize(count);
  for (int64_t i = 0; i < count; ++i)
    split->labels[i] = static_cast<uint8_t>(labels[8 + i]);
  return Status::ok();
}

} // namespace

Status loadIdxDataset(const std::string &directory, Dataset *dataset) {
  AMPRT_RETURN_IF_ERROR(loadSplit(directory, "train", &dataset->train));
  AMPRT_RETURN_IF_ERROR(loadSplit(directory, "t10k", &dataset->test));
  if (dataset->train.pixels != dataset->test.pixels)
    return Status::error(directory + ": train and test images differ in size");
  return Status::ok();
}

Status SampleLayout::fit(const Split &split, const std::vector<int64_t> &sample,
                        SampleLayout *layout) {
  int64_t values = 1;
  for (int64_t d : sample)
    values *= d;
  std::string shape;
  for (int64_t d : sample)
    shape += (shape.empty() ? "" : ", ") + std::to_string(d);
  *layout = SampleLayout();
  if (values == split.pixels) { // the image as it is, whatever the shape says
    layout->height = split.rows;
    layout->width = split.cols;
    return Status::ok();
  }
  if (sample.size() != 3 || (sample[0] != 1 && sample[0] != 3) || sample[1] < split.rows ||
      sample[2] < split.cols)
    return Status::error("the model's input ([" + shape + "] per sample) does not fit " +
                         std::to_string(split.rows) + "x" + std::to_string(split.cols) +
                         " images: it takes " + std::to_string(split.pixels) +
                         " values, or [1 or 3, H, W] with H >= " + std::to_string(split.rows) +
                         " and W >= " + std::to_string(split.cols));
  layout->channels = sample[0];
  layout->height = sample[1];
  layout->width = sample[2];
  layout->top = (sample[1] - split.rows) / 2;
  layout->left = (sample[2] - split.cols) / 2;
  return Status::ok();
}

void SampleLayout::copy(const Split &split, int64_t index, float *out) const {
  const float *image = split.images.data() + index * split.pixels;
  if (height == split.rows && width == split.cols && channels == 1) {
    std::copy_n(image, split.pixels, out);
    return;
  }
  std::fill_n(out, values(), 0.0f);
  for (int64_t c = 0; c < channels; ++c)
    for (int64_t r = 0; r < split.rows; ++r)
      std::copy_n(image + r * split.cols, split.cols,
                  out + (c * height + top + r) * width + left);
}

} // namespace amprun
