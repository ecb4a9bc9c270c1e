//===- MemoryPlanner.cpp - liveness-based arena offsets -------------------===//

#include "MemoryPlanner.h"

#include <algorithm>
#include <numeric>

namespace mlir::amp {

static int64_t alignUp(int64_t value) { return (value + 63) / 64 * 64; }

std::vector<int64_t> planArena(const std::vector<ArenaRequest> &requests,
                               int64_t &arenaBytes) {
  std::vector<size_t> order(requests.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    return requests[a].bytes > requests[b].bytes;
  });
  std::vector<int64_t> offsets(requests.size(), -1);
  std::vector<size_t> placed;
  arenaBytes = 0;
  for (size_t index : order) {
    const ArenaRequest &request = requests[index];
    // Byte ranges of placed tensors that are live at the same time.
    std::vector<std::pair<int64_t, int64_t>> busy;
    for (size_t other : placed) {
      const ArenaRequest &o = requests[other];
      if (o.firstUse <= request.lastUse && request.firstUse <= o.lastUse)
        busy.emplace_back(offsets[other], offsets[other] + alignUp(o.bytes));
    }
    std::sort(busy.begin(), busy.end());
    int64_t offset = 0;
    for (auto [begin, end] : busy) {
      if (offset + alignUp(request.bytes) <= begin)
        break;
      offset = std::max(offset, end);
    }
    offsets[index] = offset;
    placed.push_back(index);
    arenaBytes = std::max(arenaBytes, offset + alignUp(request.bytes));
  }
  return offsets;
}

} // namespace mlir::amp
