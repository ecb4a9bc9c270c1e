//===- concurrent_sessions.cpp - sessions trained on threads of their own --===//
//
// Checks the Session's thread-safety contract (docs/runtime-api.md): separate
// sessions may be used from separate threads at once. Each job (a plan) is
// trained first alone, then all jobs at once, one thread per job, each thread
// creating its session, training, evaluating, and saving and reloading a
// checkpoint. Every loss, every state tensor and the evaluation output must
// be bit-identical to the job's run alone. Run under ThreadSanitizer by
// `scripts/check --sanitize-thread`.
//
//   amp-concurrent-sessions [--threads N] [--steps N] [--checkpoints DIR] PLAN...
//
//===----------------------------------------------------------------------===//

#include "amprt/Session.h"

#include <cstdio>
#include <cstring>
#include <random>
#include <string>
#include <thread>
#include <vector>

namespace {

struct Options {
  int threads = 0, steps = 8;
  std::string checkpoints; // where each job saves and reloads one; "" skips it
  std::vector<std::string> plans;
};

/// What a job's run leaves behind: compared bit for bit.
struct Outcome {
  std::string error;
  std::vector<float> losses;
  std::vector<std::vector<char>> states;
  std::vector<char> evalOutput;
};

/// A few batches shaped as the plan's train inputs, drawn from `seed`: float
/// inputs normal, int64 labels below the class count (the eval output's last
/// dimension).
struct Batches {
  std::vector<std::vector<std::vector<char>>> storage; // [batch][input] bytes
  std::vector<std::vector<amprt::Feed>> feeds;
};

Batches makeBatches(const amprt::Session &session, unsigned seed, int count) {
  int64_t classes = session.outputs(amprt::Program::Eval).at(0).shape.back();
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal;
  Batches batches;
  batches.storage.resize(count);
  for (auto &batch : batches.storage)
    for (const amprt::TensorInfo &input : session.inputs(amprt::Program::Train)) {
      batch.emplace_back(input.bytes());
      if (input.dtype == amprt::DType::I64) {
        auto *labels = reinterpret_cast<int64_t *>(batch.back().data());
        for (int64_t i = 0; i < input.numElements(); ++i)
          labels[i] = static_cast<int64_t>(rng() % classes);
      } else {
        auto *values = reinterpret_cast<float *>(batch.back().data());
        for (int64_t i = 0; i < input.numElements(); ++i)
          values[i] = normal(rng);
      }
    }
  for (auto &batch : batches.storage) {
    batches.feeds.emplace_back();
    const auto &inputs = session.inputs(amprt::Program::Train);
    for (size_t i = 0; i < inputs.size(); ++i)
      batches.feeds.back().push_back({inputs[i].name, batch[i].data(), batch[i].size()});
  }
  return batches;
}

/// The eval feeds: the first batch's tensors under the eval program's names.
std::vector<amprt::Feed> evalFeeds(const amprt::Session &session, const Batches &batches) {
  std::vector<amprt::Feed> feeds;
  for (const amprt::TensorInfo &input : session.inputs(amprt::Program::Eval))
    for (const amprt::Feed &feed : batches.feeds[0])
      if (feed.name == input.name)
        feeds.push_back(feed);
  return feeds;
}

#define JOB_CHECK(call)                                                                       \
  if (amprt::Status s = (call); !s) {                                                        \
    outcome.error = s.message();                                                             \
    return outcome;                                                                          \
  }

Outcome runJob(const Options &options, size_t job, const std::string &pass) {
  Outcome outcome;
  amprt::SessionOptions sessionOptions;
  sessionOptions.numThreads = options.threads;
  std::unique_ptr<amprt::Session> session;
  JOB_CHECK(amprt::Session::create(options.plans[job], sessionOptions, &session));
  Batches batches = makeBatches(*session, static_cast<unsigned>(job), 3);
  for (int step = 0; step < options.steps; ++step) {
    JOB_CHECK(session->step(batches.feeds[step % batches.feeds.size()]));
    outcome.losses.push_back(session->loss());
  }
  if (!options.checkpoints.empty()) {
    std::string path = options.checkpoints + "/" + pass + "-" + std::to_string(job) + ".ckpt";
    JOB_CHECK(session->saveCheckpoint(path, {{"job", std::to_string(job)}}));
    JOB_CHECK(session->loadCheckpoint(path));
  }
  for (const amprt::TensorInfo &state : session->states()) {
    outcome.states.emplace_back(state.bytes());
    JOB_CHECK(session->readState(state.name, outcome.states.back().data(), state.bytes()));
  }
  JOB_CHECK(session->evaluate(evalFeeds(*session, batches)));
  const amprt::TensorInfo &output = session->outputs(amprt::Program::Eval).at(0);
  outcome.evalOutput.resize(output.bytes());
  JOB_CHECK(session->readOutput(amprt::Program::Eval, output.name, outcome.evalOutput.data(),
                                outcome.evalOutput.size()));
  return outcome;
}

bool sameBits(const Outcome &a, const Outcome &b) {
  return a.losses.size() == b.losses.size() &&
         std::memcmp(a.losses.data(), b.losses.data(), a.losses.size() * sizeof(float)) == 0 &&
         a.states == b.states && a.evalOutput == b.evalOutput;
}

bool parse(int argc, char **argv, Options *options) {
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    bool hasValue = i + 1 < argc;
    if (arg == "--threads" && hasValue)
      options->threads = std::atoi(argv[++i]);
    else if (arg == "--steps" && hasValue)
      options->steps = std::atoi(argv[++i]);
    else if (arg == "--checkpoints" && hasValue)
      options->checkpoints = argv[++i];
    else if (arg.rfind("--", 0) == 0)
      return false;
    else
      options->plans.push_back(arg);
  }
  return !options->plans.empty() && options->steps > 0;
}

} // namespace

int main(int argc, char **argv) {
  Options options;
  if (!parse(argc, argv, &options)) {
    std::fprintf(stderr, "usage: amp-concurrent-sessions [--threads N] [--steps N] "
                         "[--checkpoints DIR] PLAN...\n");
    return 2;
  }
  size_t jobs = options.plans.size();
  std::vector<Outcome> alone, together(jobs);
  for (size_t job = 0; job < jobs; ++job)
    alone.push_back(runJob(options, job, "alone"));
  std::vector<std::thread> threads;
  for (size_t job = 0; job < jobs; ++job)
    threads.emplace_back([&, job] { together[job] = runJob(options, job, "together"); });
  for (std::thread &thread : threads)
    thread.join();

  int failures = 0;
  for (size_t job = 0; job < jobs; ++job) {
    const std::string &plan = options.plans[job];
    for (const Outcome *outcome : {&alone[job], &together[job]})
      if (!outcome->error.empty()) {
        std::printf("FAIL job %zu (%s): %s\n", job, plan.c_str(), outcome->error.c_str());
        ++failures;
      }
    if (!alone[job].error.empty() || !together[job].error.empty())
      continue;
    bool same = sameBits(alone[job], together[job]);
    failures += !same;
    std::printf("%s job %zu (%s): %d steps, loss %.5f -> %.5f, %zu states and the eval "
                "output %s alone and on %zu threads at once\n",
                same ? "ok  " : "FAIL", job, plan.c_str(), options.steps,
                alone[job].losses.front(), alone[job].losses.back(), alone[job].states.size(),
                same ? "bit-identical" : "DIFFERENT", jobs);
  }
  return failures ? 1 : 0;
}
