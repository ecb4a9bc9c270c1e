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

enum class Op : uint8_t { Add, Sub, Mul, Div, Neg, Relu, ReluGrad, Cast, Exp, Log };
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

AMPRT_HD inline float apply(Op op, float x, float y) {
  switch (op) {
  case Op::Add:
    return x + y;
  case Op::Sub:
    return x - y;
  case Op::Mul:
    return x * y;
  case Op::Div:
    return x / y;
  case Op::Neg:
    return -x;
  case Op::Relu:
    return math::relu(x);
  case Op::ReluGrad:
    return math::reluGrad(x, y);
  case Op::Exp:
    return ::expf(x);
  case Op::Log:
    return ::logf(x);
  default: // Cast: the rounding to the step's type does the work
    return x;
  }
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
    reg[p.numInputs + s] = roundTo(apply(p.op[s], reg[p.lhs[s]], reg[p.rhs[s]]), p.stepType[s]);
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
/// so that both backends run every elementwise op through one evaluator.
Status singleStepChain(const proto::Kernel &kernel, const std::vector<TensorRef> &inputs,
                       const std::vector<TensorRef> &outputs, proto::Kernel *chain);
} // namespace amprt::fused
#endif

#endif // AMPRT_FUSEDELEMENTWISE_H
