//===- MemoryPlannerTest.cpp - arena offsets respect liveness -------------===//

#include "MemoryPlanner.h"

#include <gtest/gtest.h>

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

} // namespace
