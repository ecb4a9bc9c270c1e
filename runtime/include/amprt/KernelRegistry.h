//===- KernelRegistry.h - every kernel a plan may name ------------*- C++ -*-===//
//
// One row per kernel: its plan name, operand and result counts and the
// attributes it reads. The plan checks use it, and each backend turns the
// KernelId into its implementation with an exhaustive switch (no default:
// the compiler names a kernel a backend forgot), so adding a kernel is a row
// here plus one case per backend. Elementwise kernels are rows of
// ElementwiseKernels.def instead, which both backends handle generically.
//
//===----------------------------------------------------------------------===//
#ifndef AMPRT_KERNELREGISTRY_H
#define AMPRT_KERNELREGISTRY_H

#include "amprt/Status.h"
#include "plan.pb.h"

#include <string>

namespace amprt {

enum class KernelId {
#define AMPRT_ELEMENTWISE(Id, name, arity, attribute, math) Id,
#include "amprt/ElementwiseKernels.def"
  Matmul,
  Conv,
  ConvBackwardData,
  ConvBackwardFilter,
  MaxPool,
  MaxPoolGrad,
  AvgPool,
  AvgPoolGrad,
  Dropout,
  Pad,
  Slice,
  Concat,
  Transpose,
  Gather,
  GatherGrad,
  BatchNorm,
  BatchNormInference,
  BatchNormGrad,
  LayerNorm,
  LayerNormGrad,
  Softmax,
  LogSoftmax,
  ReduceSum,
  ReduceMax,
  BroadcastTo,
  Cast,
  Copy,
  SoftmaxCrossEntropy,
  SoftmaxCrossEntropyGrad,
  AdamWUpdate,
  SgdUpdate,
  Increment,
  Unscale,
  FoundNonFinite,
  GlobalNorm,
  GradientStats,
  ClipCoefficient,
  UpdateLossScale,
  AccumulationStep,
  ZeroIf,
  AllReduce,
  FusedElementwise,
};

struct KernelSpec {
  KernelId id;
  const char *op;
  int minInputs, maxInputs; // maxInputs -1: any number
  int minOutputs, maxOutputs; // maxOutputs -1: any number
  /// The attributes the kernel reads, space separated; others are refused.
  /// A list attribute NAME is stored as NAME.0, NAME.1, ... (plan attributes
  /// are numbers).
  const char *attributes;
};

/// Checks a plan kernel against its row: known name, operand and result
/// counts, attribute names. Sets `*spec` on success.
Status checkKernel(const proto::Kernel &kernel, size_t numInputs, size_t numOutputs,
                   const KernelSpec **spec);

/// The row of a kernel name, or null.
const KernelSpec *findKernel(const std::string &op);

/// Every row, in KernelId order (`kernelCount` of them).
const KernelSpec *kernelTable();
extern const size_t kernelCount;

/// Whether the kernel reads the attribute `name` (is it in its list).
bool readsAttribute(const KernelSpec &spec, const std::string &name);

} // namespace amprt

#endif // AMPRT_KERNELREGISTRY_H
