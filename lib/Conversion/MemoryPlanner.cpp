//===- MemoryPlanner.cpp - liveness-based arena offsets -------------------===//
//
// Greedy by decreasing size, each tensor at the lowest offset that is free
// over its whole live range. Placed tensors are kept sorted by offset, so a
// request walks them upwards and stops at the first gap that fits: it looks
// only at the tensors below its own offset, not at every tensor placed (and
// builds and sorts no list per request). What remains is first fit's own
// cost: a tensor that ends up above L others looks at those L.
//
//===----------------------------------------------------------------------===//

#include "MemoryPlanner.h"

#include <algorithm>
#include <numeric>

namespace mlir::amp {

static int64_t alignUp(int64_t value) { return (value + 63) / 64 * 64; }

namespace {
/// A placed tensor: its bytes [begin, end) and live range [first, last].
struct Placed {
  int64_t begin, end, first, last;
};
} // namespace

std::vector<int64_t> planArena(const std::vector<ArenaRequest> &requests,
                               int64_t &arenaBytes) {
  std::vector<size_t> order(requests.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    return requests[a].bytes > requests[b].bytes;
  });
  std::vector<int64_t> offsets(requests.size(), -1);
  std::vector<Placed> placed; // sorted by (begin, end)
  arenaBytes = 0;
  for (size_t index : order) {
    const ArenaRequest &request = requests[index];
    int64_t size = alignUp(request.bytes), offset = 0;
    for (const Placed &p : placed) {
      if (p.first > request.lastUse || request.firstUse > p.last)
        continue; // never live at the same time
      if (offset + size <= p.begin)
        break; // the gap below p fits
      offset = std::max(offset, p.end);
    }
    offsets[index] = offset;
    Placed entry{offset, offset + size, request.firstUse, request.lastUse};
    placed.insert(std::upper_bound(placed.begin(), placed.end(), entry,
                                   [](const Placed &a, const Placed &b) {
                                     return a.begin < b.begin ||
                                            (a.begin == b.begin && a.end < b.end);
                                   }),
                  entry);
    arenaBytes = std::max(arenaBytes, offset + size);
  }
  return offsets;
}

} // namespace mlir::amp
