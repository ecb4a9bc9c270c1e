//===- FuzzPlan.cpp - runtime plans: load, validate, one step --------------===//
//
// The bytes are a plan: loaded and checked by the Session, and when that
// accepts it, one training step runs on zero feeds (label 0 is a valid
// class). Sessions are limited to 256 MiB (SessionOptions::memoryLimitBytes:
// a plan may ask for any arena up to 2^40 bytes), and steps of plans whose
// arena exceeds 64 MiB are skipped to keep each input fast.
//
//===----------------------------------------------------------------------===//
#include "amprt/Session.h"

#include <memory>
#include <string>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  std::unique_ptr<amprt::Session> session;
  std::string bytes(reinterpret_cast<const char *>(data), size);
  amprt::SessionOptions options;
  options.numThreads = 1;
  options.memoryLimitBytes = 256 << 20;
  if (!amprt::Session::createFromBytes(bytes, "fuzz.ampplan", options, &session))
    return 0;
  if (session->arenaBytes(amprt::Program::Train) > (64 << 20))
    return 0;
  std::vector<std::vector<char>> buffers;
  std::vector<amprt::Feed> feeds;
  for (const auto &input : session->inputs(amprt::Program::Train)) {
    if (input.bytes() > (16u << 20))
      return 0;
    buffers.emplace_back(input.bytes(), 0);
    feeds.push_back({input.name, buffers.back().data(), buffers.back().size()});
  }
  (void)session->step(feeds);
  return 0;
}
