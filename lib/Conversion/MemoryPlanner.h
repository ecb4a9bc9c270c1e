//===- MemoryPlanner.h - liveness-based arena offsets -----------*- C++ -*-===//
#ifndef AMP_CONVERSION_MEMORYPLANNER_H
#define AMP_CONVERSION_MEMORYPLANNER_H

#include <cstdint>
#include <vector>

namespace mlir::amp {

/// A tensor to place in the arena, live over [firstUse, lastUse] (indices in
/// program order, inclusive).
struct ArenaRequest {
  int64_t bytes;
  int64_t firstUse, lastUse;
};

/// Assigns 64-byte-aligned offsets so that no two requests whose live
/// ranges overlap share bytes; returns the offsets and the arena size.
/// Greedy by decreasing size, lowest fitting offset first.
std::vector<int64_t> planArena(const std::vector<ArenaRequest> &requests,
                               int64_t &arenaBytes);

} // namespace mlir::amp

#endif // AMP_CONVERSION_MEMORYPLANNER_H
