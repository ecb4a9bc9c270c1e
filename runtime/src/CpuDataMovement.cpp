//===- CpuDataMovement.cpp - pad, slice, concat and transpose on the CPU ===//
//
// Each is boxes copied between plain row-major tensors of one element type:
// pad fills the result with its value and copies the input to the begin
// pads' corner, slice copies the box at its offsets, concat copies each
// input to its place along the axis. A box is copied row by row (rows of
// its last dim are contiguous), in parallel over rows when it pays. A
// transpose gathers each result row from the input with a stride, in tiles
// when the result's last dim is strided in the input.
//
//===----------------------------------------------------------------------===//

#include "CnnChecks.h"
#include "CpuKernelSupport.h"

#include <algorithm>
#include <cstring>

namespace amprt {
namespace {

using Shape = std::vector<int64_t>;

/// Row-major strides (in elements) of `shape`.
Shape stridesOf(const Shape &shape) {
  Shape strides(shape.size(), 1);
  for (size_t d = shape.size(); d-- > 1;)
    strides[d - 1] = strides[d] * shape[d];
  return strides;
}

/// Copies the box of extent `box` at `from` in `src` to `to` in `dst`.
void copyBox(const char *src, const Shape &srcShape, const Shape &from, char *dst,
             const Shape &dstShape, const Shape &to, const Shape &box, size_t element) {
  size_t rank = box.size();
  int64_t rows = 1;
  for (size_t d = 0; d + 1 < rank; ++d)
    rows *= box[d];
  if (rank == 0 || rows == 0 || box.back() == 0) {
    if (rank == 0)
      std::memcpy(dst, src, element);
    return;
  }
  Shape srcStrides = stridesOf(srcShape), dstStrides = stridesOf(dstShape);
  size_t rowBytes = box.back() * element;
#pragma omp parallel for schedule(static) if (rows * box.back() > 65536)
  for (int64_t row = 0; row < rows; ++row) {
    int64_t rest = row, s = from.back(), t = to.back();
    for (size_t d = rank - 1; d-- > 0;) { // the row's index in each outer dim
      int64_t i = rest % box[d];
      rest /= box[d];
      s += (from[d] + i) * srcStrides[d];
      t += (to[d] + i) * dstStrides[d];
    }
    std::memcpy(dst + t * element, src + s * element, rowBytes);
  }
}

char *bytes(const TensorRef &t) { return static_cast<char *>(t.data); }

/// y = x with its dims permuted (y's dim d is x's dim perm[d]); `Word` is an
/// unsigned integer of the element's size.
template <typename Word>
void transpose(const Word *x, const Shape &xShape, const Shape &perm, Word *y,
               const Shape &yShape) {
  size_t rank = yShape.size();
  if (rank == 0) {
    *y = *x;
    return;
  }
  Shape xStrides = stridesOf(xShape), yStrides = stridesOf(yShape), from(rank);
  for (size_t d = 0; d < rank; ++d)
    from[d] = xStrides[perm[d]]; // x's stride along y's dim d
  int64_t width = yShape.back(), total = 1;
  for (int64_t n : yShape)
    total *= n;
  if (total == 0)
    return;
  size_t last = rank - 1;
  // y's dim whose elements are contiguous in x: when it is not y's last
  // and a y row's elements lie a page or more apart in x, gathering the row
  // touches a cache line per element, all in one set of the L1 cache (their
  // addresses differ by multiples of 4 KiB), so the next row finds none of
  // them. Tiles of kTile x kTile read kTile lines (within the cache's
  // associativity) for kTile^2 elements.
  size_t inner = std::find(perm.begin(), perm.end(), static_cast<int64_t>(last)) - perm.begin();
  if (inner != last && width > 1 && from[last] * static_cast<int64_t>(sizeof(Word)) >= 4096) {
    constexpr int64_t kTile = 8;
    int64_t rows = yShape[inner], blocks = total / (rows * width);
#pragma omp parallel for schedule(static) if (total > 65536)
    for (int64_t block = 0; block < blocks; ++block) {
      int64_t rest = block, s = 0, t = 0; // x and y offsets of the block
      for (size_t d = rank - 1; d-- > 0;) {
        if (d == inner)
          continue;
        s += (rest % yShape[d]) * from[d];
        t += (rest % yShape[d]) * yStrides[d];
        rest /= yShape[d];
      }
      for (int64_t i0 = 0; i0 < rows; i0 += kTile)
        for (int64_t j0 = 0; j0 < width; j0 += kTile)
          for (int64_t i = i0; i < std::min(i0 + kTile, rows); ++i) {
            const Word *in = x + s + i * from[inner];
            Word *out = y + t + i * yStrides[inner];
            for (int64_t j = j0; j < std::min(j0 + kTile, width); ++j)
              out[j] = in[j * from[last]];
          }
    }
    return;
  }
  int64_t rows = total / width, step = from.back();
#pragma omp parallel for schedule(static) if (total > 65536)
  for (int64_t row = 0; row < rows; ++row) {
    int64_t rest = row, s = 0;
    for (size_t d = rank - 1; d-- > 0;) {
      s += (rest % yShape[d]) * from[d];
      rest /= yShape[d];
    }
    Word *out = y + row * width;
    for (int64_t j = 0; j < width; ++j)
      out[j] = x[s + j * step];
  }
}

} // namespace

Status buildDataMovement(const proto::Kernel &kernel, KernelId id,
                         const std::vector<TensorRef> &in, const TensorRef &out,
                         std::unique_ptr<CpuKernel> *result) {
  DataMovement m;
  AMPRT_RETURN_IF_ERROR(checkDataMovement(kernel, id, in, out, &m));
  size_t rank = out.shape.size();
  size_t element = dtypeSize(out.dtype);
  Shape zeros(rank, 0);
  if (id == KernelId::Slice) {
    Shape offsets = m.corner;
    TensorRef x = in[0], y = out;
    *result = lambda([=] {
      copyBox(bytes(x), x.shape, offsets, bytes(y), y.shape, zeros, y.shape, element);
      return Status::ok();
    });
    return Status::ok();
  }
  if (id == KernelId::Pad) {
    Shape begins = m.corner;
    float value = m.value;
    TensorRef x = in[0], y = out;
    *result = lambda([=] {
      return withFloatStorage(y.dtype, [&](auto storage) {
        using T = decltype(storage);
        T fill = math::store<T>(value);
        T *data = static_cast<T *>(y.data);
        parallelFor(y.size(), [&](int64_t i) { data[i] = fill; });
        copyBox(bytes(x), x.shape, zeros, bytes(y), y.shape, begins, x.shape, element);
        return Status::ok();
      });
    });
    return Status::ok();
  }
  if (id == KernelId::Transpose) {
    Shape perm = m.permutation;
    TensorRef x = in[0], y = out;
    *result = lambda([=] {
      if (element == 2)
        transpose(static_cast<const uint16_t *>(x.data), x.shape, perm,
                  static_cast<uint16_t *>(y.data), y.shape);
      else
        transpose(static_cast<const uint32_t *>(x.data), x.shape, perm,
                  static_cast<uint32_t *>(y.data), y.shape);
      return Status::ok();
    });
    return Status::ok();
  }
  // Concat: each input to its place along the axis.
  int64_t axis = m.axis;
  std::vector<TensorRef> inputs = in;
  TensorRef y = out;
  *result = lambda([=] {
    Shape to(rank, 0);
    for (const TensorRef &x : inputs) {
      copyBox(bytes(x), x.shape, Shape(rank, 0), bytes(y), y.shape, to, x.shape, element);
      to[axis] += x.shape[axis];
    }
    return Status::ok();
  });
  return Status::ok();
}

/// Gather or its scatter-add with int64 or int32 (`Index`) indices.
template <typename Index>
static Status buildGatherOf(KernelId id, const GatherShape &g, const Index *indices,
                            const TensorRef &source, const TensorRef &target,
                            std::unique_ptr<CpuKernel> *result) {
  if (id == KernelId::Gather) {
    // Row (o, i) of the result is row (o, indices[i]) of the table.
    size_t rowBytes = g.inner * dtypeSize(target.dtype);
    *result = lambda([=] {
      AMPRT_RETURN_IF_ERROR(checkGatherIndices(indices, g.count, g.size));
      parallelFor(g.outer * g.count, [&](int64_t row) {
        int64_t o = row / g.count, index = indices[row % g.count];
        index += index < 0 ? g.size : 0;
        std::memcpy(bytes(target) + row * rowBytes,
                    bytes(source) + (o * g.size + index) * rowBytes, rowBytes);
      });
      return Status::ok();
    });
    return Status::ok();
  }
  // Scatter-add in f32: each task owns a block of columns of one outer
  // slice and adds the gradient rows in index order, so repeated indices
  // sum in the same order on any thread count.
  constexpr int64_t kColumns = 256;
  int64_t blocks = (g.inner + kColumns - 1) / kColumns;
  *result = lambda([=] {
    AMPRT_RETURN_IF_ERROR(checkGatherIndices(indices, g.count, g.size));
    const float *grad = source.f32();
    float *table = target.f32();
    std::fill_n(table, target.size(), 0.0f);
    parallelFor(g.outer * blocks, [&](int64_t task) {
      int64_t o = task / blocks, begin = (task % blocks) * kColumns;
      int64_t end = std::min(g.inner, begin + kColumns);
      for (int64_t i = 0; i < g.count; ++i) {
        int64_t index = indices[i] + (indices[i] < 0 ? g.size : 0);
        float *to = table + (o * g.size + index) * g.inner;
        const float *from = grad + (o * g.count + i) * g.inner;
        for (int64_t j = begin; j < end; ++j)
          to[j] += from[j];
      }
    });
    return Status::ok();
  });
  return Status::ok();
}

Status buildGather(const proto::Kernel &kernel, KernelId id, const std::vector<TensorRef> &in,
                   const TensorRef &out, std::unique_ptr<CpuKernel> *result) {
  GatherShape g;
  AMPRT_RETURN_IF_ERROR(checkGather(kernel, id, in, out, &g));
  if (in[1].dtype == DType::I32)
    return buildGatherOf(id, g, static_cast<const int32_t *>(in[1].data), in[0], out, result);
  return buildGatherOf(id, g, in[1].i64(), in[0], out, result);
}

} // namespace amprt
