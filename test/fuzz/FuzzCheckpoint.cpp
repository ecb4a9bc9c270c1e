//===- FuzzCheckpoint.cpp - checkpoint files loaded into a session --------===//
//
// The bytes are a checkpoint restored into a session of a small plan (the
// one the seed checkpoints were saved from): header, CRC, parse, and every
// tensor's name, type and shape checked before anything is written.
//
//===----------------------------------------------------------------------===//
#include "FuzzInput.h"
#include "amprt/Session.h"

#include <cstdlib>
#include <memory>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static std::unique_ptr<amprt::Session> session = [] {
    const char *plan = std::getenv("AMP_FUZZ_PLAN");
    std::unique_ptr<amprt::Session> created;
    if (!plan || !amprt::Session::create(plan, {}, &created))
      std::abort(); // the target needs AMP_FUZZ_PLAN: the seeds' plan
    return created;
  }();
  std::map<std::string, std::string> metadata;
  (void)session->loadCheckpoint(ampfuzz::writeInput(data, size, "input.ckpt"), &metadata);
  return 0;
}
