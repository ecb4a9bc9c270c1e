//===- ParallelHelpersTest.cpp - when the CPU kernels open OpenMP regions -===//
//
// parallelFor and parallelChunks open a region only for work split several
// ways outside any region. A kernel's inner loops (the fused chains convert
// each 512-element block through them) must not open nested one-thread
// regions: libgomp made ~150,000 futex calls per step of the causal LM.

#include "CpuKernelSupport.h"

#include <gtest/gtest.h>

#include <omp.h>

#include <atomic>
#include <vector>

using namespace amprt;

namespace {

/// The deepest OpenMP nesting level (active or not) seen by any call.
template <typename Run> int deepestLevel(Run run) {
  std::atomic<int> deepest{0};
  run([&] {
    int level = omp_get_level();
    int seen = deepest.load();
    while (level > seen && !deepest.compare_exchange_weak(seen, level)) {
    }
  });
  return deepest.load();
}

TEST(ParallelHelpers, OnePartOpensNoRegion) {
  EXPECT_EQ(deepestLevel([](auto note) { parallelChunks(100, [&](int64_t, int64_t) { note(); }); }),
            0);
  EXPECT_EQ(deepestLevel([](auto note) { parallelFor(100, [&](int64_t) { note(); }); }), 0);
}

TEST(ParallelHelpers, ManyPartsOpenOneRegion) {
  std::vector<int> covered(1 << 20, 0);
  int level = deepestLevel([&](auto note) {
    parallelChunks(static_cast<int64_t>(covered.size()), [&](int64_t begin, int64_t n) {
      note();
      for (int64_t i = begin; i < begin + n; ++i)
        ++covered[i];
    });
  });
  EXPECT_EQ(level, 1);
  for (int c : covered)
    ASSERT_EQ(c, 1);
  EXPECT_EQ(deepestLevel([](auto note) { parallelFor(1 << 20, [&](int64_t) { note(); }); }), 1);
}

TEST(ParallelHelpers, InsideARegionOpenNoNestedOne) {
  int level = deepestLevel([](auto note) {
#pragma omp parallel num_threads(2)
    {
      parallelChunks(1 << 20, [&](int64_t, int64_t) { note(); });
      parallelFor(1 << 20, [&](int64_t) { note(); });
    }
  });
  EXPECT_EQ(level, 1);
}

} // namespace
