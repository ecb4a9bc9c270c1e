//===- trainer.cpp - embedding the AMP-MLIR runtime in a C++ trainer ------===//
//
// Loads a plan compiled by amp-opt, trains it on one fixed random batch (a
// model that can learn must drive that loss down), and saves the parameters.
//
//   example-trainer model.ampplan [steps]
//
//===----------------------------------------------------------------------===//

#include "amprt/Session.h"

#include <cstdio>
#include <random>
#include <string>
#include <vector>

int main(int argc, char **argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: example-trainer PLAN [STEPS]\n");
    return 2;
  }
  int steps = argc > 2 ? std::stoi(argv[2]) : 50;

  std::unique_ptr<amprt::Session> session;
  if (amprt::Status s = amprt::Session::create(argv[1], {}, &session); !s) {
    std::fprintf(stderr, "error: %s\n", s.message().c_str());
    return 1;
  }

  // One random batch with the shapes the plan expects: float inputs, int64
  // labels below the number of classes (the eval output's last dimension).
  int64_t classes = session->outputs(amprt::Program::Eval).at(0).shape.back();
  std::mt19937 rng(0);
  std::vector<std::vector<char>> storage;
  std::vector<amprt::Feed> feeds;
  for (const amprt::TensorInfo &input : session->inputs(amprt::Program::Train)) {
    storage.emplace_back(input.bytes());
    if (input.dtype == amprt::DType::I64) {
      auto *labels = reinterpret_cast<int64_t *>(storage.back().data());
      for (int64_t i = 0; i < input.numElements(); ++i)
        labels[i] = rng() % classes;
    } else {
      auto *values = reinterpret_cast<float *>(storage.back().data());
      std::normal_distribution<float> normal;
      for (int64_t i = 0; i < input.numElements(); ++i)
        values[i] = normal(rng);
    }
    feeds.push_back({input.name, storage.back().data(), storage.back().size()});
  }

  float first = 0;
  for (int step = 0; step < steps; ++step) {
    if (amprt::Status s = session->step(feeds); !s) {
      std::fprintf(stderr, "error: %s\n", s.message().c_str());
      return 1;
    }
    if (step == 0)
      first = session->loss();
    if (step % 10 == 0 || step + 1 == steps)
      std::printf("step %d loss %.5f\n", step, session->loss());
  }
  std::printf("loss %s: %.5f -> %.5f\n", session->loss() < first ? "fell" : "did not fall",
              first, session->loss());

  // Parameters are ordinary named tensors.
  for (const amprt::TensorInfo &state : session->states())
    if (state.role == "param") {
      std::vector<char> values(state.bytes());
      (void)session->readState(state.name, values.data(), values.size());
      std::printf("parameter %s: %lld values\n", state.name.c_str(),
                  static_cast<long long>(state.numElements()));
    }
  return session->loss() < first ? 0 : 1;
}
