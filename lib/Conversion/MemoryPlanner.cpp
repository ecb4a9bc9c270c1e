//===- MemoryPlanner.cpp - liveness-based arena offsets -------------------===//
//
// First fit, greedy by decreasing size: each tensor at the lowest offset
// that is free over its whole live range. A request walks the placed
// tensors upwards in offset order: one it is not live with is passed over;
// one it is live with either leaves a gap below it that fits (the answer)
// or pushes the offset to its end.
//
// Walking every placed tensor made deep networks quadratic (the saved
// activations and gradients of a training step are live together and stack
// up). The placed tensors are kept in offset order in blocks of about
// kBlock, each with a summary that lets a request pass a whole block in
// O(log kBlock) when the walk through it is known without looking: no
// tensor in it is live with the request; or all are and none leaves a gap
// that fits; or some that tile its bytes are. Only other blocks are walked
// tensor by tensor. The offsets are
// exactly those of the plain walk (a unit test checks them against it).
//
//===----------------------------------------------------------------------===//

#include "MemoryPlanner.h"

#include <algorithm>
#include <limits>
#include <numeric>

namespace mlir::amp {

static int64_t alignUp(int64_t value) { return (value + 63) / 64 * 64; }

namespace {

/// A placed tensor: its bytes [begin, end) and live range [first, last].
struct Placed {
  int64_t begin, end, first, last;
  bool operator<(const Placed &o) const {
    return begin < o.begin || (begin == o.begin && end < o.end);
  }
};

constexpr size_t kBlock = 64;

/// Placed tensors, consecutive in offset order, and what a walk needs to
/// know about them as a whole.
struct Block {
  std::vector<Placed> items; // by (begin, end)
  int64_t maxEnd = 0, minLast = 0, maxFirst = 0;
  /// The largest gap between an item and everything before it in the
  /// block (begin - the largest end so far), over all but the first item.
  int64_t largestGap = 0;
  /// Times during which the block's long-lived items are all live and tile
  /// its bytes from the first up to `tiledTo` without a gap (empty when they
  /// do not): a request live then, with no room below the block, is pushed
  /// to `tiledTo` by the items that begin below it (or past it by the few
  /// in `overhang` that end beyond it) and walks only the rest, from `tail`.
  /// (A training step's saved activations and gradients tile blocks whose
  /// bytes short-lived temporaries use before or after them.)
  int64_t solidFrom = 0, solidTo = -1, tiledTo = 0;
  size_t tail = 0;
  std::vector<size_t> overhang;
  /// Live ranges sorted by first, with the running maximum of last: is any
  /// item live during [f, l]?
  std::vector<std::pair<int64_t, int64_t>> byFirst; // (first, max last so far)

  void summarize() {
    maxEnd = maxFirst = largestGap = std::numeric_limits<int64_t>::min();
    minLast = std::numeric_limits<int64_t>::max();
    byFirst.clear();
    for (size_t i = 0; i < items.size(); ++i) {
      const Placed &p = items[i];
      if (i > 0)
        largestGap = std::max(largestGap, p.begin - maxEnd);
      maxEnd = std::max(maxEnd, p.end);
      minLast = std::min(minLast, p.last);
      maxFirst = std::max(maxFirst, p.first);
      byFirst.emplace_back(p.first, p.last);
    }
    // The long-lived items: at least half the longest live range, and
    // ending within half of it from the latest end (so that they share a
    // window: saved activations and gradients of one step differ there).
    int64_t longest = 0, latest = std::numeric_limits<int64_t>::min();
    for (const Placed &p : items) {
      longest = std::max(longest, p.last - p.first);
      latest = std::max(latest, p.last);
    }
    int64_t reach = items.front().begin;
    int64_t from = std::numeric_limits<int64_t>::min(), to = std::numeric_limits<int64_t>::max();
    bool any = false;
    for (const Placed &p : items) {
      if (2 * (p.last - p.first) < longest || 2 * (latest - p.last) > longest)
        continue;
      if (p.begin > reach)
        break; // a gap: the tiling ends here
      any = true;
      reach = std::max(reach, p.end);
      from = std::max(from, p.first);
      to = std::min(to, p.last);
    }
    solidFrom = any ? from : 0;
    solidTo = any && from <= to ? to : -1;
    tiledTo = reach;
    tail = 0;
    overhang.clear();
    while (tail < items.size() && items[tail].begin < reach) {
      if (items[tail].end > reach)
        overhang.push_back(tail);
      ++tail;
    }
    std::sort(byFirst.begin(), byFirst.end());
    for (size_t i = 1; i < byFirst.size(); ++i)
      byFirst[i].second = std::max(byFirst[i].second, byFirst[i - 1].second);
  }

  bool anyLiveDuring(int64_t first, int64_t last) const {
    auto it = std::upper_bound(byFirst.begin(), byFirst.end(),
                               std::make_pair(last, std::numeric_limits<int64_t>::max()));
    return it != byFirst.begin() && std::prev(it)->second >= first;
  }
};

/// The walk through one block from `offset`; true when it found the gap.
bool walk(const Block &block, int64_t size, int64_t first, int64_t last, int64_t &offset) {
  if (!block.anyLiveDuring(first, last))
    return false; // passes over all of them
  bool below = block.items.front().begin < offset + size; // no room before the block
  bool allLive = block.minLast >= first && block.maxFirst <= last;
  if (below && allLive && block.largestGap < size) {
    offset = std::max(offset, block.maxEnd); // each pushes, none leaves a gap
    return false;
  }
  auto live = [&](const Placed &p) { return p.first <= last && first <= p.last; };
  size_t from = 0;
  if (below && std::max(block.solidFrom, first) <= std::min(block.solidTo, last)) {
    offset = std::max(offset, block.tiledTo); // no gap below tiledTo
    for (size_t i : block.overhang)
      if (live(block.items[i]))
        offset = std::max(offset, block.items[i].end);
    from = block.tail;
  }
  for (size_t i = from; i < block.items.size(); ++i) {
    const Placed &p = block.items[i];
    if (!live(p))
      continue;
    if (offset + size <= p.begin)
      return true;
    offset = std::max(offset, p.end);
  }
  return false;
}

} // namespace

std::vector<int64_t> planArena(const std::vector<ArenaRequest> &requests,
                               int64_t &arenaBytes) {
  std::vector<size_t> order(requests.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    return requests[a].bytes > requests[b].bytes;
  });
  std::vector<int64_t> offsets(requests.size(), -1);
  std::vector<Block> blocks;
  arenaBytes = 0;
  for (size_t index : order) {
    const ArenaRequest &request = requests[index];
    int64_t size = alignUp(request.bytes), offset = 0;
    for (const Block &block : blocks)
      if (walk(block, size, request.firstUse, request.lastUse, offset))
        break;
    offsets[index] = offset;
    arenaBytes = std::max(arenaBytes, offset + size);
    // Into the last block whose first item is not after it (or the first).
    Placed entry{offset, offset + size, request.firstUse, request.lastUse};
    auto target = std::upper_bound(blocks.begin(), blocks.end(), entry,
                                   [](const Placed &e, const Block &b) {
                                     return e < b.items.front();
                                   });
    if (blocks.empty())
      target = blocks.insert(blocks.end(), Block());
    else if (target != blocks.begin())
      --target;
    auto &items = target->items;
    items.insert(std::upper_bound(items.begin(), items.end(), entry), entry);
    if (items.size() > 2 * kBlock) { // split in two halves
      Block upper;
      upper.items.assign(items.begin() + kBlock, items.end());
      items.resize(kBlock);
      target->summarize();
      upper.summarize();
      blocks.insert(target + 1, std::move(upper));
    } else {
      target->summarize();
    }
  }
  return offsets;
}

} // namespace mlir::amp
