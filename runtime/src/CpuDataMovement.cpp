//===- CpuDataMovement.cpp - pad, slice and concat on the CPU ------------===//
//
// Each is boxes copied between plain row-major tensors of one element type:
// pad fills the result with its value and copies the input to the begin
// pads' corner, slice copies the box at its offsets, concat copies each
// input to its place along the axis. A box is copied row by row (rows of
// its last dim are contiguous), in parallel over rows when it pays.
//
//===----------------------------------------------------------------------===//

#include "CnnChecks.h"
#include "CpuKernelSupport.h"

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

} // namespace amprt
