//===- KernelChecks.h - checks every backend makes of its kernels -*- C++ -*-===//
//
// Each backend checks a plan kernel against its tensors before binding it;
// the checks that do not depend on the backend live here, once.
//
//===----------------------------------------------------------------------===//
#ifndef AMPRT_KERNELCHECKS_H
#define AMPRT_KERNELCHECKS_H

#include "Device.h"
#include "amprt/KernelRegistry.h"

#include <optional>

namespace amprt {

/// A number attribute of the kernel, 0 when absent.
inline double attr(const proto::Kernel &kernel, const std::string &name) {
  auto it = kernel.attrs().find(name);
  return it == kernel.attrs().end() ? 0.0 : it->second;
}

/// The product of values[from...]: element counts of shapes and their tails.
inline int64_t product(const std::vector<int64_t> &values, size_t from = 0) {
  int64_t p = 1;
  for (size_t i = from; i < values.size(); ++i)
    p *= values[i];
  return p;
}

/// Checks the one-element operands of increment, update_loss_scale,
/// accumulation_step and clip_coefficient.
Status checkScalarKernel(const proto::Kernel &kernel, KernelId id, const std::vector<TensorRef> &in,
                         const std::vector<TensorRef> &out);

/// Checks an all_reduce bucket (float tensors of one type, each output its
/// input's shape; the maximum over f32 only) and that the session's
/// communicator spans the world size the plan was compiled for; `max` says
/// which reduction the kernel asks for.
Status checkAllReduce(const proto::Kernel &kernel, const std::vector<TensorRef> &in,
                      const std::vector<TensorRef> &out, const Communicator *communicator,
                      bool *max);

/// Elements NAME.0 .. NAME.(count-1) of a list attribute (the lowering
/// stores integer lists so) into `values`; an absent element takes
/// `fallback`, or makes the list missing (false) without one.
bool listAttr(const proto::Kernel &kernel, const std::string &name, size_t count,
              std::optional<int64_t> fallback, std::vector<int64_t> *values);

/// Whether any of `values` is below `least`.
inline bool anyBelow(const std::vector<int64_t> &values, int64_t least) {
  for (int64_t v : values)
    if (v < least)
      return true;
  return false;
}

/// `t` is one element of `dtype`.
Status requireScalar(const TensorRef &t, DType dtype, const char *what);
/// The optional skip flag of an update at `in[index]`: null when absent,
/// else checked to be one f32.
Status skipFlag(const std::vector<TensorRef> &in, size_t index, const float **flag);

/// Which labels of a softmax_cross_entropy(_grad) count: all, or those
/// different from its ignore_index.
struct LabelRule {
  bool hasIgnore = false;
  int64_t ignore = 0;
  bool counts(int64_t label) const { return !hasIgnore || label != ignore; }
};
LabelRule labelRule(const proto::Kernel &kernel);
/// Checks labels lie in [0, classes) (or are ignored) before any arithmetic
/// uses them; returns how many count. Kernels check so, and the session
/// checks fed labels before a step runs at all.
Status checkLabels(const int64_t *labels, int64_t n, int64_t classes, LabelRule rule,
                   int64_t *counted);

/// A checked GEMM: C[m,n] = op(A)[m,k] op(B)[k,n] (+ bias over n) (relu),
/// `batch` times over leading dims that A, B and C share (contiguous
/// matrices, one after the other; a bias only for a single GEMM).
struct MatmulShape {
  int64_t m = 0, n = 0, k = 0, batch = 1;
  bool transposeLhs = false, transposeRhs = false, bias = false, relu = false;
};
/// Checks a "matmul" kernel's attributes, operand shapes and types (bf16/f16
/// operands may give an f32 result; a bias is a float vector of C's columns).
Status checkMatmul(const proto::Kernel &kernel, const std::vector<TensorRef> &in,
                   const TensorRef &c, MatmulShape *shape);

/// A checked layer_norm (x, scale, bias) -> (y, mean, inv_std) or
/// layer_norm_grad (dy, x, scale, mean, inv_std) -> (dx, dscale, dbias):
/// activations of one float type and shape, viewed as [rows, width] around
/// `axis`; scale-like tensors f32 [width], statistics f32 [rows].
struct LayerNormShape {
  int64_t rows = 0, width = 0;
  float epsilon = 0;
};
Status checkLayerNorm(const proto::Kernel &kernel, KernelId id, const std::vector<TensorRef> &in,
                      const std::vector<TensorRef> &out, LayerNormShape *shape);

/// A checked gather (table, indices) -> gathered or gather_grad (gathered
/// gradient, indices) -> f32 table gradient: the table viewed as [outer,
/// size, inner] around the axis, the gathered tensor as [outer, count,
/// inner] with `count` int64 indices.
struct GatherShape {
  int64_t outer = 0, size = 0, count = 0, inner = 0;
};
Status checkGather(const proto::Kernel &kernel, KernelId id, const std::vector<TensorRef> &in,
                   const TensorRef &out, GatherShape *shape);
/// Checks every index lies in [-size, size) before any is used.
Status checkGatherIndices(const int64_t *indices, int64_t count, int64_t size);
Status checkGatherIndices(const int32_t *indices, int64_t count, int64_t size);

/// A checked softmax or log_softmax: f32 input and output of one shape,
/// viewed as [outer, width, inner] around the axis (attribute "axis",
/// negative from the end; absent: the last).
struct SoftmaxShape {
  int64_t outer = 0, width = 0, inner = 0;
};
Status checkSoftmax(const proto::Kernel &kernel, const TensorRef &in, const TensorRef &out,
                    SoftmaxShape *shape);

} // namespace amprt

#endif // AMPRT_KERNELCHECKS_H
