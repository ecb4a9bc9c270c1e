//===- FuzzInput.h - fuzz inputs for parsers that read files -----*- C++ -*-===//
//
// Most parsers take a path (the real entry points read files), so a target
// writes its input to a file in a private temporary folder first.
//
//===----------------------------------------------------------------------===//
#ifndef AMP_TEST_FUZZ_FUZZINPUT_H
#define AMP_TEST_FUZZ_FUZZINPUT_H

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

namespace ampfuzz {

/// `data` written to `name` in this process's temporary folder; its path.
inline std::string writeInput(const uint8_t *data, size_t size, const char *name) {
  static std::string folder = [] {
    char pattern[] = "/tmp/amp-fuzz-XXXXXX";
    if (!mkdtemp(pattern))
      abort();
    return std::string(pattern);
  }();
  std::string path = folder + "/" + name;
  FILE *file = fopen(path.c_str(), "wb");
  if (!file || fwrite(data, 1, size, file) != size || fclose(file) != 0)
    abort();
  return path;
}

} // namespace ampfuzz

#endif // AMP_TEST_FUZZ_FUZZINPUT_H
