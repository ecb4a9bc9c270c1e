//===- FuzzCheckpoint.cpp - checkpoint files loaded into a session --------===//
//
// The bytes are a checkpoint restored into a session of a small plan (the
// one the seed checkpoints were saved from): header, CRC, parse, and every
// tensor's name, type and shape checked before anything is written. An
// input without the checkpoint magic is taken as the payload alone and
// given a valid header and CRC-32, so that mutations also reach the checks
// behind the CRC (the seeds hold a whole checkpoint and a bare payload).
//
//===----------------------------------------------------------------------===//
#include "FuzzInput.h"
#include "amprt/Session.h"

#include <cstdlib>
#include <cstring>
#include <memory>
#include <zlib.h>

namespace {

std::string withHeader(const uint8_t *payload, size_t size) {
  std::string file = "AMPCKPT1";
  auto put = [&](uint64_t value, int bytes) {
    for (int i = 0; i < bytes; ++i)
      file += static_cast<char>((value >> (8 * i)) & 0xff);
  };
  put(size, 8);
  put(crc32(crc32(0L, Z_NULL, 0), payload, static_cast<uInt>(size)), 4);
  file.append(reinterpret_cast<const char *>(payload), size);
  return file;
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static std::unique_ptr<amprt::Session> session = [] {
    const char *plan = std::getenv("AMP_FUZZ_PLAN");
    std::unique_ptr<amprt::Session> created;
    if (!plan || !amprt::Session::create(plan, {}, &created))
      std::abort(); // the target needs AMP_FUZZ_PLAN: the seeds' plan
    return created;
  }();
  std::string path;
  if (size >= 8 && std::memcmp(data, "AMPCKPT1", 8) == 0) {
    path = ampfuzz::writeInput(data, size, "input.ckpt");
  } else {
    std::string file = withHeader(data, size);
    path = ampfuzz::writeInput(reinterpret_cast<const uint8_t *>(file.data()), file.size(),
                               "input.ckpt");
  }
  std::map<std::string, std::string> metadata;
  (void)session->loadCheckpoint(path, &metadata);
  return 0;
}
