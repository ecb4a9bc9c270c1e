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
// tensor by tensor. A balanced tree over the blocks keeps these facts
// (conservatively: by bounds) for runs of blocks, so a request also passes
// runs of blocks at once instead of visiting each (thousands of blocks of
// short-lived tensors at the same few offsets in a forward program; the
// blocks of saved tensors below a training step's backward temporaries).
// The offsets are exactly those of the plain walk (unit tests check them
// against it).
//
//===----------------------------------------------------------------------===//

#include "MemoryPlanner.h"

#include <algorithm>
#include <limits>
#include <numeric>
#include <tuple>

namespace mlir::amp {

static int64_t alignUp(int64_t value) { return (value + 63) / 64 * 64; }

namespace {

/// A placed tensor: its bytes [begin, end) and live range [first, last].
struct Placed {
  int64_t begin, end, first, last;
  /// By offset; ties (same bytes, which the walk passes alike) by time,
  /// so that a block's tensors at one offset share a window of the program.
  bool operator<(const Placed &o) const {
    return std::tie(begin, end, first) < std::tie(o.begin, o.end, o.first);
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

/// What a run of consecutive blocks shows a walk, by bounds: the walk
/// passes the run without looking when no tensor in it can be live with
/// the request (outside [minFirst, maxLast]), or when all are and none
/// leaves a gap that fits. largestGap is an upper bound: the gap before a
/// block's first tensor from the run before it, or the block's own.
/// Or, third, when its blocks' tilings (Block::solidFrom) join into one
/// that reaches its highest byte, and the request is live with each block's
/// tiling: the walk then ends at `tiledTo` without finding a gap. (Without
/// this, every request of a deep training step walked every block of the
/// saved tensors below it, one at a time: 300k ops planned in 1.4 s, 7x the
/// time of 100k.)
struct RunSummary {
  bool empty = true;
  int64_t firstBegin = 0, maxEnd = 0, largestGap = 0;
  int64_t minFirst = 0, maxLast = 0, maxFirst = 0, minLast = 0;
  bool tiles = false; // [firstBegin, tiledTo) tiled by the blocks' tilings
  int64_t tiledTo = 0, maxSolidFrom = 0, minSolidTo = 0;

  static RunSummary of(const Block &block) {
    RunSummary s;
    s.empty = false;
    s.firstBegin = block.items.front().begin;
    s.maxEnd = block.maxEnd;
    s.largestGap = block.largestGap;
    s.maxFirst = block.maxFirst;
    s.minLast = block.minLast;
    s.minFirst = block.byFirst.front().first;
    s.maxLast = block.byFirst.back().second;
    s.tiles = block.solidFrom <= block.solidTo;
    s.tiledTo = block.tiledTo;
    s.maxSolidFrom = block.solidFrom;
    s.minSolidTo = block.solidTo;
    return s;
  }
  static RunSummary join(const RunSummary &a, const RunSummary &b) {
    if (a.empty || b.empty)
      return a.empty ? b : a;
    RunSummary s = a;
    s.maxEnd = std::max(a.maxEnd, b.maxEnd);
    s.largestGap = std::max({a.largestGap, b.largestGap, b.firstBegin - a.maxEnd});
    s.minFirst = std::min(a.minFirst, b.minFirst);
    s.maxLast = std::max(a.maxLast, b.maxLast);
    s.maxFirst = std::max(a.maxFirst, b.maxFirst);
    s.minLast = std::min(a.minLast, b.minLast);
    s.tiles = a.tiles && b.tiles && b.firstBegin <= a.tiledTo;
    s.tiledTo = std::max(a.tiledTo, b.tiledTo);
    s.maxSolidFrom = std::max(a.maxSolidFrom, b.maxSolidFrom);
    s.minSolidTo = std::min(a.minSolidTo, b.minSolidTo);
    return s;
  }
};

/// The placed tensors: offset-ordered blocks under a complete binary tree
/// of run summaries (leaves are the blocks, padded to a power of two).
class PlacedTensors {
public:
  /// The lowest offset from which `size` bytes are free during [first, last].
  int64_t lowestFit(int64_t size, int64_t first, int64_t last) const {
    int64_t offset = 0;
    if (!blocks.empty())
      walkRun(1, size, first, last, offset);
    return offset;
  }

  void insert(const Placed &entry) {
    // Into the last block whose first item is not after it (or the first).
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
    target->summarize();
    if (items.size() <= 2 * kBlock && leaves > 0) {
      update(target - blocks.begin());
      return;
    }
    if (items.size() > 2 * kBlock) { // split in two halves
      Block upper;
      upper.items.assign(items.begin() + kBlock, items.end());
      items.resize(kBlock);
      target->summarize();
      upper.summarize();
      blocks.insert(target + 1, std::move(upper));
    }
    rebuild();
  }

private:
  std::vector<Block> blocks;
  std::vector<RunSummary> tree; // node i has children 2i and 2i+1
  size_t leaves = 0;

  void rebuild() {
    leaves = 1;
    while (leaves < blocks.size())
      leaves *= 2;
    tree.assign(2 * leaves, RunSummary());
    for (size_t i = 0; i < blocks.size(); ++i)
      tree[leaves + i] = RunSummary::of(blocks[i]);
    for (size_t node = leaves - 1; node >= 1; --node)
      tree[node] = RunSummary::join(tree[2 * node], tree[2 * node + 1]);
  }

  void update(size_t block) {
    size_t node = leaves + block;
    tree[node] = RunSummary::of(blocks[block]);
    for (node /= 2; node >= 1; node /= 2)
      tree[node] = RunSummary::join(tree[2 * node], tree[2 * node + 1]);
  }

  /// The walk through the blocks under `node`; true when it found the gap.
  bool walkRun(size_t node, int64_t size, int64_t first, int64_t last, int64_t &offset) const {
    const RunSummary &run = tree[node];
    if (run.empty || run.maxLast < first || last < run.minFirst)
      return false; // none live
    if (run.firstBegin < offset + size && run.maxFirst <= last && first <= run.minLast &&
        run.largestGap < size) {
      offset = std::max(offset, run.maxEnd); // all live, each pushes
      return false;
    }
    if (run.tiles && run.firstBegin < offset + size && run.maxSolidFrom <= last &&
        first <= run.minSolidTo && run.maxEnd <= run.tiledTo) {
      offset = std::max(offset, run.tiledTo); // live tilings, no gap, nothing above
      return false;
    }
    if (node >= leaves)
      return walk(blocks[node - leaves], size, first, last, offset);
    return walkRun(2 * node, size, first, last, offset) ||
           walkRun(2 * node + 1, size, first, last, offset);
  }
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
  PlacedTensors placed;
  arenaBytes = 0;
  for (size_t index : order) {
    const ArenaRequest &request = requests[index];
    int64_t size = alignUp(request.bytes);
    int64_t offset = placed.lowestFit(size, request.firstUse, request.lastUse);
    offsets[index] = offset;
    arenaBytes = std::max(arenaBytes, offset + size);
    placed.insert({offset, offset + size, request.firstUse, request.lastUse});
  }
  return offsets;
}

} // namespace mlir::amp
