//===- CnnChecks.h - the convolutional kernels' checks and geometry -*- C++ -*-===//
//
// What the CPU and CUDA backends both read from a convolution, pooling,
// batch-norm, data-movement or dropout kernel: its geometry from the
// attributes and the checks of its tensors, written once so that both
// backends accept and refuse the same plans.
//
//===----------------------------------------------------------------------===//
#ifndef AMPRT_CNNCHECKS_H
#define AMPRT_CNNCHECKS_H

#include "KernelChecks.h"
#include "PoolGeometry.h"

#include <cstdint>
#include <vector>

namespace amprt {

/// A convolution's three tensors in the forward roles, whatever the
/// direction: conv (src, weights) -> dst; backward data (diff dst,
/// weights) -> diff src; backward filter (src, diff dst) -> diff weights.
struct ConvTensors {
  TensorRef src, weights, dst;
};

/// Strides, pads (begin and end per spatial dim), dilations (1: dense) and
/// group, from the attributes NAME.i.
struct ConvGeometry {
  std::vector<int64_t> strides, padBegin, padEnd, dilations;
  int64_t group = 1;
};

/// Reads and checks a conv, conv_backward_data or conv_backward_filter
/// kernel: geometry, shapes, and element types (two operands of one float
/// type; the result of that type or f32).
Status checkConvolution(const proto::Kernel &kernel, KernelId id, const std::vector<TensorRef> &in,
                        const TensorRef &out, ConvTensors *tensors, ConvGeometry *geometry);

/// The most taps one pooling kernel may visit, all windows of all planes
/// together: 2^36, minutes of work. A plan's windows far larger than their
/// strides (each overlapping millions of others) are refused, not run for
/// hours; real poolings visit each input a few to a few dozen times.
constexpr double kMaxPoolTaps = 0x1p36;

/// max_pool: x [N, C, spatial...] -> (y of x's type, int64 indices of y's
/// shape). Pooling windows (avg_pool's have no dilations: 1) must fit the
/// padded input, and the result's spatial sizes follow from them, rounded
/// down or up (ceil_mode), so that no position overflows int64.
Status checkMaxPool(const proto::Kernel &kernel, const TensorRef &x, const TensorRef &y,
                    const TensorRef &indices, PoolGeometry *geometry);
/// max_pool_grad: (dy, indices) -> dx of dy's type.
Status checkMaxPoolGrad(const TensorRef &dy, const TensorRef &indices, const TensorRef &dx);
/// avg_pool or avg_pool_grad between the pooled input x and result y.
Status checkAvgPool(const proto::Kernel &kernel, const TensorRef &x, const TensorRef &y,
                    PoolGeometry *geometry);

/// batch_norm, batch_norm_inference or batch_norm_grad: activations
/// [N, C, ...] of one float type, per-channel tensors f32 [C], epsilon > 0.
Status checkBatchNorm(const proto::Kernel &kernel, KernelId id, const std::vector<TensorRef> &in,
                      const std::vector<TensorRef> &out, float *epsilon);

/// pad, slice, concat or transpose: inputs and result of one element type
/// and rank. `corner`: slice's offsets or pad's begin pads; `axis`:
/// concat's; `permutation`: transpose's (result dim d is input dim
/// permutation[d]).
struct DataMovement {
  std::vector<int64_t> corner, permutation;
  float value = 0; // pad's fill
  int64_t axis = 0;
};
Status checkDataMovement(const proto::Kernel &kernel, KernelId id,
                         const std::vector<TensorRef> &in, const TensorRef &out,
                         DataMovement *movement);

/// dropout (x, step counter) -> y: element i is kept when
/// math::dropoutKeeps(seed, counter, i, threshold), then scaled.
struct DropoutParams {
  uint64_t seed, threshold;
  float scale;
};
Status checkDropout(const proto::Kernel &kernel, const std::vector<TensorRef> &in,
                    const TensorRef &out, DropoutParams *params);

} // namespace amprt

#endif // AMPRT_CNNCHECKS_H
