//===- FuzzNpy.cpp - amp-run's .npy reader ---------------------------------===//
#include "FuzzInput.h"
#include "Npy.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  amprun::NpyArray array;
  (void)amprun::readNpy(ampfuzz::writeInput(data, size, "input.npy"), &array);
  return 0;
}
