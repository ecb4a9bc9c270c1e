//===- FusedElementwise.h - one pass over a chain of elementwise ops -*- C++ -*-===//
//
// A "fused_elementwise" kernel of the plan, flattened into a fixed-size
// description that both backends evaluate with the same per-element code:
// the CPU backend in a loop (tested there), the CUDA backend in a kernel that
// takes the description by value. Each step's value is rounded to its result
// type, so a fused chain computes exactly what its unfused ops would.
//
//===----------------------------------------------------------------------===//
#ifndef AMPRT_FUSEDELEMENTWISE_H
#define AMPRT_FUSEDELEMENTWISE_H

#include "KernelMath.h"
#include "amprt/PlanFormat.h"

#include <cmath>
#include <cstdint>

namespace amprt::fused {

constexpr int kMaxRegisters = kMaxInputs + kMaxSteps;

/// A step: an elementwise kernel (ElementwiseKernels.def), or Cast (also
/// the step of broadcast_to: loading and rounding do their work).
enum class Op : uint8_t {
#define AMPRT_ELEMENTWISE(Id, name, arity, attribute, math) Id,
#include "amprt/ElementwiseKernels.def"
  Cast,
};
enum class Storage : uint8_t { F32, BF16, F16 };

struct Program {
  int32_t numInputs = 0, numSteps = 0, numOutputs = 0, rank = 0;
  int64_t count = 0;              // elements of each output
  int64_t shape[kMaxRank] = {};   // the outputs' shape
  /// Element strides of each input over the output's index space: 0 along
  /// broadcast dimensions. `contiguous` inputs have the outputs' shape.
  int64_t strides[kMaxInputs][kMaxRank] = {};
  bool contiguous[kMaxInputs] = {};
  Storage inputType[kMaxInputs] = {};
  Op op[kMaxSteps] = {};
  float param[kMaxSteps] = {}; // the step's attribute, if its kernel reads one
  int8_t lhs[kMaxSteps] = {}, rhs[kMaxSteps] = {};
  Storage stepType[kMaxSteps] = {};
  Storage outputType[kMaxOutputs] = {};
  int8_t outputRegister[kMaxOutputs] = {};
};

AMPRT_HD inline float roundTo(float v, Storage type) {
  switch (type) {
  case Storage::BF16:
    return math::bf16ToFloat(math::floatToBf16(v));
  case Storage::F16:
    return math::f16ToFloat(math::floatToF16(v));
  default:
    return v;
  }
}

/// One step's math in float (before rounding to the step's type).
AMPRT_HD inline float apply(Op op, float a, float b, float p) {
  switch (op) {
#define AMPRT_ELEMENTWISE(Id, name, arity, attribute, math)                                  \
  case Op::Id:                                                                             \
    return math;
#include "amprt/ElementwiseKernels.def"
  case Op::Cast:
    break;
  }
  return a;
}

AMPRT_HD inline float loadAs(const void *data, Storage type, int64_t i) {
  switch (type) {
  case Storage::BF16:
    return math::bf16ToFloat(static_cast<const uint16_t *>(data)[i]);
  case Storage::F16:
    return math::f16ToFloat(static_cast<const uint16_t *>(data)[i]);
  default:
    return static_cast<const float *>(data)[i];
  }
}

AMPRT_HD inline void storeAs(void *data, Storage type, int64_t i, float v) {
  switch (type) {
  case Storage::BF16:
    static_cast<uint16_t *>(data)[i] = math::floatToBf16(v);
    break;
  case Storage::F16:
    static_cast<uint16_t *>(data)[i] = math::floatToF16(v);
    break;
  default:
    static_cast<float *>(data)[i] = v;
  }
}

/// Where input `in` keeps the element that broadcasts to output `index`.
AMPRT_HD inline int64_t inputOffset(const Program &p, int in, int64_t index) {
  if (p.contiguous[in])
    return index;
  int64_t offset = 0;
  for (int d = p.rank - 1; d >= 0; --d) {
    offset += (index % p.shape[d]) * p.strides[in][d];
    index /= p.shape[d];
  }
  return offset;
}

/// Computes output element `index` of every output.
AMPRT_HD inline void evaluate(const Program &p, const void *const *inputs,
                              void *const *outputs, int64_t index) {
  float reg[kMaxRegisters];
  for (int in = 0; in < p.numInputs; ++in)
    reg[in] = loadAs(inputs[in], p.inputType[in], inputOffset(p, in, index));
  for (int s = 0; s < p.numSteps; ++s)
    reg[p.numInputs + s] =
        roundTo(apply(p.op[s], reg[p.lhs[s]], reg[p.rhs[s]], p.param[s]), p.stepType[s]);
  for (int o = 0; o < p.numOutputs; ++o)
    storeAs(outputs[o], p.outputType[o], index, reg[p.outputRegister[o]]);
}

} // namespace amprt::fused

#ifndef __CUDACC__
#include "Device.h"
namespace amprt::fused {
/// The storage of a float dtype; an error for others.
Status storageOf(DType dtype, Storage *storage);
/// Checks a "fused_elementwise" kernel against its tensors and flattens it.
Status describe(const proto::Kernel &kernel, const std::vector<TensorRef> &inputs,
                const std::vector<TensorRef> &outputs, Program *program);
/// A plain elementwise kernel (add, relu, ...) as a fused chain of one step,
/// for the evaluator that both backends share (the GPU runs every
/// elementwise kernel so; the CPU when its operand types differ).
/// The value of an elementwise kernel's float attribute (its row in
/// ElementwiseKernels.def names it); 0 when it reads none.
float stepParam(const proto::Kernel &kernel);
Status singleStepChain(const proto::Kernel &kernel, const std::vector<TensorRef> &inputs,
                       const std::vector<TensorRef> &outputs, proto::Kernel *chain);
} // namespace amprt::fused
#endif

#endif // AMPRT_FUSEDELEMENTWISE_H
