//===- MemoryPlannerTest.cpp - arena offsets respect liveness -------------===//

#include "MemoryPlanner.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <random>

using namespace mlir::amp;

namespace {

/// Checks that no two simultaneously live requests share bytes.
void expectNoConflicts(const std::vector<ArenaRequest> &requests,
                       const std::vector<int64_t> &offsets, int64_t arenaBytes) {
  for (size_t i = 0; i < requests.size(); ++i) {
    EXPECT_EQ(offsets[i] % 64, 0);
    EXPECT_LE(offsets[i] + requests[i].bytes, arenaBytes);
    for (size_t j = i + 1; j < requests.size(); ++j) {
      bool liveTogether = requests[i].firstUse <= requests[j].lastUse &&
                          requests[j].firstUse <= requests[i].lastUse;
      bool overlap = offsets[i] < offsets[j] + requests[j].bytes &&
                     offsets[j] < offsets[i] + requests[i].bytes;
      EXPECT_FALSE(liveTogether && overlap) << "requests " << i << " and " << j;
    }
  }
}

TEST(MemoryPlanner, ReusesBytesOfDeadTensors) {
  // A chain: each tensor dies when the next one is made.
  std::vector<ArenaRequest> chain = {{1000, 0, 1}, {1000, 1, 2}, {1000, 2, 3}, {1000, 3, 4}};
  int64_t arena = 0;
  auto offsets = planArena(chain, arena);
  expectNoConflicts(chain, offsets, arena);
  EXPECT_EQ(arena, 2 * 1024); // two live at a time, each rounded to 1024
}

TEST(MemoryPlanner, KeepsLiveTensorsApart) {
  std::vector<ArenaRequest> all = {{100, 0, 10}, {200, 0, 10}, {300, 0, 10}};
  int64_t arena = 0;
  auto offsets = planArena(all, arena);
  expectNoConflicts(all, offsets, arena);
  EXPECT_EQ(arena, 128 + 256 + 320);
}

TEST(MemoryPlanner, RandomProgramsNeverConflict) {
  std::mt19937 rng(7);
  for (int trial = 0; trial < 50; ++trial) {
    std::vector<ArenaRequest> requests;
    int64_t total = 0;
    for (int i = 0; i < 40; ++i) {
      int64_t first = rng() % 60;
      requests.push_back({1 + static_cast<int64_t>(rng() % 5000), first,
                          first + static_cast<int64_t>(rng() % 20)});
      total += (requests.back().bytes + 63) / 64 * 64;
    }
    int64_t arena = 0;
    auto offsets = planArena(requests, arena);
    expectNoConflicts(requests, offsets, arena);
    EXPECT_LE(arena, total);
  }
}

/// First fit as first written: greedy by decreasing size (stable), each
/// tensor at the lowest offset clear of every placed tensor live with it.
std::vector<int64_t> firstFitDefinition(const std::vector<ArenaRequest> &requests) {
  auto align = [](int64_t v) { return (v + 63) / 64 * 64; };
  std::vector<size_t> order(requests.size());
  for (size_t i = 0; i < order.size(); ++i)
    order[i] = i;
  std::stable_sort(order.begin(), order.end(),
                   [&](size_t a, size_t b) { return requests[a].bytes > requests[b].bytes; });
  std::vector<int64_t> offsets(requests.size(), -1);
  std::vector<size_t> placed;
  for (size_t index : order) {
    const ArenaRequest &r = requests[index];
    std::vector<std::pair<int64_t, int64_t>> busy;
    for (size_t other : placed) {
      const ArenaRequest &o = requests[other];
      if (o.firstUse <= r.lastUse && r.firstUse <= o.lastUse)
        busy.emplace_back(offsets[other], offsets[other] + align(o.bytes));
    }
    std::sort(busy.begin(), busy.end());
    int64_t offset = 0;
    for (auto [begin, end] : busy) {
      if (offset + align(r.bytes) <= begin)
        break;
      offset = std::max(offset, end);
    }
    offsets[index] = offset;
    placed.push_back(index);
  }
  return offsets;
}

// The planner walks placed tensors in offset order, passing whole blocks of
// them where it can, instead of collecting and sorting the live ones per
// request: the offsets must be exactly first fit's (plans must not change),
// ties of size and offset included.
TEST(MemoryPlanner, OffsetsEqualTheFirstFitDefinition) {
  std::mt19937 rng(11);
  for (int trial = 0; trial < 200; ++trial) {
    std::vector<ArenaRequest> requests;
    // Up to 700, and 6000 in the last trials (some long-lived): the
    // planner's blocks of placed tensors split many times. Trials 190-194
    // are mostly long-lived, so that runs of blocks are all live with a
    // request and the tree above the blocks passes them whole.
    bool longLived = trial >= 190 && trial < 195;
    int n = trial >= 190 ? 6000 : 1 + static_cast<int>(rng() % (trial < 100 ? 120 : 700));
    for (int i = 0; i < n; ++i) {
      int64_t first = rng() % (n > 1000 ? 3000 : 100);
      int64_t bytes = trial % 2 ? 64 * (1 + static_cast<int64_t>(rng() % 4)) // many ties
                                : 1 + static_cast<int64_t>(rng() % 5000);
      int64_t span = longLived || rng() % 10 == 0 ? rng() % 2000 : rng() % 30;
      requests.push_back({bytes, first, first + span});
    }
    int64_t arena = 0;
    EXPECT_EQ(planArena(requests, arena), firstFitDefinition(requests)) << "trial " << trial;
  }
}

// A deep training step's shape: each layer's saved tensors live from its
// forward to its backward, with short-lived temporaries around them, so
// the saved ones tile blocks whose bytes the temporaries use before and
// after: the tree passes runs of such blocks whole (RunSummary::tiles).
TEST(MemoryPlanner, TrainingStepOffsetsEqualTheFirstFitDefinition) {
  std::mt19937 rng(5);
  for (int trial = 0; trial < 6; ++trial) {
    const int64_t layers = 400 + 300 * trial, end = 2 * layers + 2;
    std::vector<ArenaRequest> requests;
    for (int64_t i = 0; i < layers; ++i) {
      int64_t forward = i + 1, backward = end - i - 1;
      int64_t saved = trial % 2 ? 512 : 64 * (1 + static_cast<int64_t>(rng() % 16));
      requests.push_back({saved, forward, backward});          // saved activation
      requests.push_back({512, forward, forward + 1});          // forward temporary
      requests.push_back({512, backward, backward + 1});        // incoming gradient
      requests.push_back({1024, backward, backward});           // weight gradient
      if (rng() % 4 == 0)
        requests.push_back({256, forward, backward + static_cast<int64_t>(rng() % 3)}); // a second saved one
    }
    int64_t arena = 0;
    EXPECT_EQ(planArena(requests, arena), firstFitDefinition(requests)) << "trial " << trial;
  }
}

} // namespace
