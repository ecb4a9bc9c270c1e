//===- CpuElementwise.cpp - broadcasting and elementwise kernels ----------===//
//
// Every elementwise kernel loads its storage type (f32, bf16 or f16),
// computes in float and rounds on store, as GPU kernels do.
//
//===----------------------------------------------------------------------===//

#include "CnnChecks.h"
#include "CpuConversions.h"
#include "CpuKernelSupport.h"
#include "FusedElementwise.h"

#include <algorithm>
#include <cstring>

namespace amprt {
namespace {

/// Elements handled together by the block-wise kernels (stack buffers).
constexpr int64_t kBlock = 512;

/// Strides of `shape` (right-aligned to `rank`) with 0 for broadcast dims.
std::vector<int64_t> broadcastStrides(const std::vector<int64_t> &shape, size_t rank) {
  std::vector<int64_t> strides(rank, 0);
  int64_t stride = 1;
  for (size_t i = 0; i < shape.size(); ++i) {
    size_t dim = shape.size() - 1 - i, out = rank - 1 - i;
    strides[out] = shape[dim] == 1 ? 0 : stride;
    stride *= shape[dim];
  }
  return strides;
}

/// True when `in` broadcasts (numpy rules, right-aligned) to `out`.
bool broadcastsTo(const std::vector<int64_t> &in, const std::vector<int64_t> &out) {
  if (in.size() > out.size())
    return false;
  for (size_t i = 0; i < in.size(); ++i) {
    int64_t dim = in[in.size() - 1 - i], outDim = out[out.size() - 1 - i];
    if (dim != outDim && dim != 1)
      return false;
  }
  return true;
}

/// Calls body(outIndex, aOffset, bOffset) over an output of `outShape` whose
/// operands are broadcast with the given strides; rows run in parallel.
template <typename Body>
void forEachBroadcast(const std::vector<int64_t> &outShape,
                      const std::vector<int64_t> &aStrides,
                      const std::vector<int64_t> &bStrides, Body body) {
  size_t rank = outShape.size();
  if (rank == 0) {
    body(0, 0, 0);
    return;
  }
  int64_t inner = outShape[rank - 1];
  int64_t rows = 1;
  for (size_t i = 0; i + 1 < rank; ++i)
    rows *= outShape[i];
#pragma omp parallel for schedule(static) if (rows * inner > 32768)
  for (int64_t row = 0; row < rows; ++row) {
    int64_t aBase = 0, bBase = 0, rest = row;
    for (size_t i = rank - 1; i-- > 0;) {
      int64_t index = rest % outShape[i];
      rest /= outShape[i];
      aBase += index * aStrides[i];
      bBase += index * bStrides[i];
    }
    for (int64_t j = 0; j < inner; ++j)
      body(row * inner + j, aBase + j * aStrides[rank - 1], bBase + j * bStrides[rank - 1]);
  }
}

template <typename T, typename Fn>
std::unique_ptr<CpuKernel> binaryKernel(const TensorRef &a, const TensorRef &b,
                                        const TensorRef &c, Fn fn) {
  auto *pa = static_cast<const T *>(a.data), *pb = static_cast<const T *>(b.data);
  auto *pc = static_cast<T *>(c.data);
  int64_t count = c.size();
  if (a.shape == c.shape && b.shape == c.shape)
    return lambda([=] {
      parallelFor(count, [&](int64_t i) {
        pc[i] = math::store<T>(fn(math::load(pa[i]), math::load(pb[i])));
      });
      return Status::ok();
    });
  auto shape = c.shape;
  auto aStrides = broadcastStrides(a.shape, shape.size());
  auto bStrides = broadcastStrides(b.shape, shape.size());
  return lambda([=] {
    forEachBroadcast(shape, aStrides, bStrides, [&](int64_t i, int64_t ia, int64_t ib) {
      pc[i] = math::store<T>(fn(math::load(pa[ia]), math::load(pb[ib])));
    });
    return Status::ok();
  });
}

template <typename Fn>
Status buildBinary(const std::vector<TensorRef> &in, const TensorRef &out, Fn fn,
                   std::unique_ptr<CpuKernel> *result) {
  if (!broadcastsTo(in[0].shape, out.shape) || !broadcastsTo(in[1].shape, out.shape))
    return Status::error("operand shapes do not broadcast to the result");
  return withFloatStorage(out.dtype, [&](auto storage) {
    using T = decltype(storage);
    *result = binaryKernel<T>(in[0], in[1], out, fn);
    return Status::ok();
  });
}

/// One integer element (int64, int32 or a bool byte) as a float.
static float integerAt(const void *data, DType dtype, int64_t i) {
  switch (dtype) {
  case DType::I32:
    return static_cast<float>(static_cast<const int32_t *>(data)[i]);
  case DType::Bool:
    return static_cast<const uint8_t *>(data)[i] != 0 ? 1.0f : 0.0f;
  default:
    return static_cast<float>(static_cast<const int64_t *>(data)[i]);
  }
}

/// Converts int64, int32 or bool values (token ids, masks) to a float type,
/// through f32 blocks.
static Status buildIntegersToFloat(const TensorRef &in, const TensorRef &out,
                                   std::unique_ptr<CpuKernel> *result) {
  if (in.shape != out.shape || !isFloat(out.dtype))
    return Status::error("casts integers to a float tensor of their shape");
  DType from = in.dtype;
  const void *x = in.data;
  void *y = out.data;
  DType to = out.dtype;
  int64_t count = out.size();
  *result = lambda([=] {
    parallelChunks(count, [&](int64_t begin, int64_t n) {
      float block[kBlock];
      for (int64_t i = 0; i < n; i += kBlock) {
        int64_t m = std::min(kBlock, n - i);
        for (int64_t j = 0; j < m; ++j)
          block[j] = integerAt(x, from, begin + i + j);
        cpu::narrow(to, block, static_cast<char *>(y) + (begin + i) * dtypeSize(to), m);
      }
    });
    return Status::ok();
  });
  return Status::ok();
}

/// A float tensor as bools (1 where not 0: NaN too, as ONNX's Cast).
static Status buildFloatToBool(const TensorRef &in, const TensorRef &out,
                               std::unique_ptr<CpuKernel> *result) {
  if (in.shape != out.shape || !isFloat(in.dtype))
    return Status::error("casts a float tensor of its shape to bool");
  DType from = in.dtype;
  const void *x = in.data;
  auto *y = static_cast<uint8_t *>(out.data);
  int64_t count = out.size();
  *result = lambda([=] {
    parallelChunks(count, [&](int64_t begin, int64_t n) {
      float block[kBlock];
      for (int64_t i = 0; i < n; i += kBlock) {
        int64_t m = std::min(kBlock, n - i);
        cpu::widen(from, static_cast<const char *>(x) + (begin + i) * dtypeSize(from), block, m);
        for (int64_t j = 0; j < m; ++j)
          y[begin + i + j] = block[j] != 0.0f;
      }
    });
    return Status::ok();
  });
  return Status::ok();
}

/// Converts between float storage types, rounding to nearest even, with the
/// vector conversions (through an f32 block when neither side is f32);
/// integers and bools to floats, and floats to bools.
Status buildCast(const TensorRef &in, const TensorRef &out, std::unique_ptr<CpuKernel> *result) {
  if (in.dtype == DType::I64 || in.dtype == DType::I32 || in.dtype == DType::Bool)
    return buildIntegersToFloat(in, out, result);
  if (out.dtype == DType::Bool)
    return buildFloatToBool(in, out, result);
  if (!isFloat(in.dtype) || !isFloat(out.dtype))
    return Status::error("casts convert between float types, or integers to floats");
  DType from = in.dtype, to = out.dtype;
  const void *x = in.data;
  void *y = out.data;
  int64_t count = out.size();
  *result = lambda([=] {
    parallelChunks(count, [&](int64_t begin, int64_t n) {
      const char *source = static_cast<const char *>(x) + begin * dtypeSize(from);
      char *target = static_cast<char *>(y) + begin * dtypeSize(to);
      if (from == DType::F32)
        return cpu::narrow(to, reinterpret_cast<const float *>(source), target, n);
      if (to == DType::F32)
        return cpu::widen(from, source, reinterpret_cast<float *>(target), n);
      float block[kBlock];
      for (int64_t i = 0; i < n; i += kBlock) {
        int64_t m = std::min(kBlock, n - i);
        cpu::widen(from, source + i * dtypeSize(from), block, m);
        cpu::narrow(to, block, target + i * dtypeSize(to), m);
      }
    });
    return Status::ok();
  });
  return Status::ok();
}

DType dtypeOf(fused::Storage storage) {
  switch (storage) {
  case fused::Storage::BF16:
    return DType::BF16;
  case fused::Storage::F16:
    return DType::F16;
  default:
    return DType::F32;
  }
}

/// A loop per op over n elements: r[j] = store(math(load(x[j]), load(y[j]))),
/// the arithmetic of fused::apply, so that each vectorises. A zero
/// parameter gets a loop of its own, where it is a constant: a select on it
/// (the GELU's form) then costs nothing instead of both forms and a blend
/// per element. Inlined into each of the cloned callers below, so that it
/// is compiled for their vector widths.
template <typename T, typename Load, typename Store>
AMPRT_ALWAYS_INLINE inline void stepLoops(fused::Op op, const T *x, const T *y, float param,
                                          T *__restrict r, int64_t n, Load load, Store store) {
  switch (op) {
#define AMPRT_ELEMENTWISE(Id, name, arity, attribute, math)                                  \
  case fused::Op::Id:                                                                      \
    if (param == 0.0f) {                                                                   \
      for (int64_t j = 0; j < n; ++j) {                                                    \
        constexpr float p = 0.0f;                                                          \
        float a = load(x[j]), b = load(y[j]);                                              \
        r[j] = store(math);                                                                \
      }                                                                                    \
    } else {                                                                               \
      for (int64_t j = 0; j < n; ++j) {                                                    \
        float p = param, a = load(x[j]), b = load(y[j]);                                   \
        r[j] = store(math);                                                                \
      }                                                                                    \
    }                                                                                      \
    break;
#include "amprt/ElementwiseKernels.def"
  case fused::Op::Cast: // a change of type is the loads' and stores' work
    std::copy_n(x, n, r);
    break;
  }
}

/// One step of a fused program over a block of f32 registers (the rounding
/// to the step's type follows it).
AMPRT_VECTOR_CLONES
void applyToBlock(fused::Op op, const float *x, const float *y, float param,
                  float *__restrict r, int64_t n) {
  auto same = [](float v) { return v; };
  stepLoops(op, x, y, param, r, n, same, same);
}

/// A one-step program whose operands and result are all contiguous bf16:
/// one loop widens, computes and rounds each element in registers. The
/// block evaluator's separate widening and narrowing passes cost as much
/// as a GELU's arithmetic and leave the loads and stores of those passes no
/// arithmetic to hide behind. The same values, bit for bit.
AMPRT_VECTOR_CLONES
void applyBf16(fused::Op op, const uint16_t *x, const uint16_t *y, float param,
               uint16_t *__restrict r, int64_t n) {
  stepLoops(
      op, x, y, param, r, n, [](uint16_t h) { return math::bf16ToFloat(h); },
      [](float v) { return math::floatToBf16(v); });
}

bool isBf16OneStep(const fused::Program &p) {
  if (p.numSteps != 1 || p.numOutputs != 1 || p.outputRegister[0] != p.numInputs ||
      p.stepType[0] != fused::Storage::BF16 || p.outputType[0] != fused::Storage::BF16)
    return false;
  for (int in = 0; in < p.numInputs; ++in)
    if (!p.contiguous[in] || p.inputType[in] != fused::Storage::BF16)
      return false;
  return true;
}

/// Elements [begin, begin + n) of broadcast input `in` as floats, a run
/// along the innermost dim at a time (a copy, a splat or a strided gather)
/// with the index carried between runs: fused::inputOffset's divisions per
/// dim per element cost more than the arithmetic of most programs.
void loadBroadcast(const fused::Program &p, int in, const void *data, int64_t begin, int64_t n,
                   float *out) {
  if (p.rank == 0) {
    std::fill_n(out, n, fused::loadAs(data, p.inputType[in], 0));
    return;
  }
  int64_t index[fused::kMaxRank], offset = 0, rest = begin;
  const int64_t *strides = p.strides[in];
  for (int d = p.rank - 1; d >= 0; --d) {
    index[d] = rest % p.shape[d];
    rest /= p.shape[d];
    offset += index[d] * strides[d];
  }
  int last = p.rank - 1;
  DType type = dtypeOf(p.inputType[in]);
  for (int64_t j = 0; j < n;) {
    int64_t run = std::min(n - j, p.shape[last] - index[last]), stride = strides[last];
    if (stride == 1)
      cpu::widen(type, static_cast<const char *>(data) + offset * dtypeSize(type), out + j, run);
    else if (stride == 0)
      std::fill_n(out + j, run, fused::loadAs(data, p.inputType[in], offset));
    else
      for (int64_t k = 0; k < run; ++k)
        out[j + k] = fused::loadAs(data, p.inputType[in], offset + k * stride);
    j += run;
    offset += run * stride;
    index[last] += run;
    for (int d = last; d > 0 && index[d] == p.shape[d]; --d) { // carry
      offset += strides[d - 1] - index[d] * strides[d];
      index[d] = 0;
      ++index[d - 1];
    }
  }
}

/// Where a fused program's registers live during a block, chosen once per
/// kernel so that a block moves no more bytes than it must: an f32 input is
/// read where it lies, and an f32 step that is an output is computed into
/// the output (unless the output overlaps an input: an in-place state update
/// would then overwrite what a later step reads). A step is rounded to its
/// type only when a later step reads it or an output of another type stores
/// it; otherwise the output's narrowing rounds it, bit for bit the same.
struct BlockLayout {
  bool readInPlace[fused::kMaxInputs] = {};
  int8_t writesOutput[fused::kMaxSteps] = {}; // the output it writes, or -1
  bool rounds[fused::kMaxSteps] = {};
  bool storedByStep[fused::kMaxOutputs] = {};
};

bool overlaps(const TensorRef &a, const TensorRef &b) {
  auto *aBegin = static_cast<const char *>(a.data), *bBegin = static_cast<const char *>(b.data);
  return aBegin < bBegin + b.size() * dtypeSize(b.dtype) &&
         bBegin < aBegin + a.size() * dtypeSize(a.dtype);
}

BlockLayout layoutBlocks(const fused::Program &p, const std::vector<TensorRef> &in,
                         const std::vector<TensorRef> &out) {
  BlockLayout layout;
  for (int i = 0; i < p.numInputs; ++i)
    layout.readInPlace[i] = p.contiguous[i] && p.inputType[i] == fused::Storage::F32;
  for (int s = 0; s < p.numSteps; ++s) {
    int reg = p.numInputs + s;
    layout.writesOutput[s] = -1;
    bool readLater = false;
    for (int t = s + 1; t < p.numSteps; ++t)
      readLater |= p.lhs[t] == reg || p.rhs[t] == reg;
    bool storedAsOther = false;
    for (int o = 0; o < p.numOutputs; ++o) {
      if (p.outputRegister[o] != reg)
        continue;
      storedAsOther |= p.outputType[o] != p.stepType[s];
      bool direct = layout.writesOutput[s] < 0 && p.stepType[s] == fused::Storage::F32 &&
                    p.outputType[o] == fused::Storage::F32 &&
                    std::none_of(in.begin(), in.end(),
                                 [&](const TensorRef &x) { return overlaps(x, out[o]); });
      if (direct) {
        layout.writesOutput[s] = static_cast<int8_t>(o);
        layout.storedByStep[o] = true;
      }
    }
    layout.rounds[s] = p.stepType[s] != fused::Storage::F32 && (readLater || storedAsOther);
  }
  return layout;
}

/// Output elements [begin, begin + n) of a fused program, n <= kBlock: the
/// same values as fused::evaluate element by element, bit for bit, with
/// loads, steps and stores each one vectorisable loop over the block.
void evaluateBlock(const fused::Program &p, const BlockLayout &layout,
                   const void *const *inputs, void *const *outputs, int64_t begin, int64_t n) {
  alignas(64) float block[fused::kMaxRegisters][kBlock];
  const float *reg[fused::kMaxRegisters];
  for (int in = 0; in < p.numInputs; ++in) {
    DType type = dtypeOf(p.inputType[in]);
    if (layout.readInPlace[in]) {
      reg[in] = static_cast<const float *>(inputs[in]) + begin;
    } else if (p.contiguous[in]) {
      cpu::widen(type, static_cast<const char *>(inputs[in]) + begin * dtypeSize(type),
                 block[in], n);
      reg[in] = block[in];
    } else {
      loadBroadcast(p, in, inputs[in], begin, n, block[in]);
      reg[in] = block[in];
    }
  }
  for (int s = 0; s < p.numSteps; ++s) {
    int o = layout.writesOutput[s];
    float *r = o >= 0 ? static_cast<float *>(outputs[o]) + begin : block[p.numInputs + s];
    applyToBlock(p.op[s], reg[p.lhs[s]], reg[p.rhs[s]], p.param[s], r, n);
    if (layout.rounds[s])
      cpu::roundThrough(dtypeOf(p.stepType[s]), r, n);
    reg[p.numInputs + s] = r;
  }
  for (int o = 0; o < p.numOutputs; ++o) {
    if (layout.storedByStep[o])
      continue;
    DType type = dtypeOf(p.outputType[o]);
    cpu::narrow(type, reg[p.outputRegister[o]],
                static_cast<char *>(outputs[o]) + begin * dtypeSize(type), n);
  }
}

} // namespace

Status buildFusedElementwise(const proto::Kernel &kernel, const std::vector<TensorRef> &in,
                             const std::vector<TensorRef> &out,
                             std::unique_ptr<CpuKernel> *result) {
  fused::Program program;
  AMPRT_RETURN_IF_ERROR(fused::describe(kernel, in, out, &program));
  BlockLayout layout = layoutBlocks(program, in, out);
  std::vector<const void *> inputs;
  std::vector<void *> outputs;
  for (const auto &x : in)
    inputs.push_back(x.data);
  for (const auto &y : out)
    outputs.push_back(y.data);
  if (isBf16OneStep(program)) {
    // Each output element reads only the same element of each input, so an
    // output that is an input's bytes (in place) is fine here.
    auto *x = static_cast<const uint16_t *>(inputs[program.lhs[0]]);
    auto *y = static_cast<const uint16_t *>(inputs[program.rhs[0]]);
    auto *r = static_cast<uint16_t *>(outputs[0]);
    fused::Op op = program.op[0];
    float param = program.param[0];
    *result = lambda([=] {
      parallelChunks(program.count, [&](int64_t begin, int64_t count) {
        applyBf16(op, x + begin, y + begin, param, r + begin, count);
      });
      return Status::ok();
    });
    return Status::ok();
  }
  *result = lambda([=] {
    parallelChunks(program.count, [&](int64_t begin, int64_t count) {
      for (int64_t i = 0; i < count; i += kBlock)
        evaluateBlock(program, layout, inputs.data(), outputs.data(), begin + i,
                      std::min(kBlock, count - i));
    });
    return Status::ok();
  });
  return Status::ok();
}

Status buildElementwise(const proto::Kernel &kernel, KernelId id, const std::vector<TensorRef> &in,
                        const std::vector<TensorRef> &out,
                        std::unique_ptr<CpuKernel> *result) {
  const TensorRef &y = out[0];
  if (id == KernelId::Increment) {
    AMPRT_RETURN_IF_ERROR(checkScalarKernel(kernel, id, in, out));
    const float *skip;
    AMPRT_RETURN_IF_ERROR(skipFlag(in, 1, &skip));
    int64_t *s = in[0].i64(), *d = y.i64();
    *result = lambda([=] {
      d[0] = skip && skip[0] != 0.0f ? s[0] : s[0] + 1;
      return Status::ok();
    });
    return Status::ok();
  }
  if (id == KernelId::Copy) {
    if (in[0].size() != y.size() || in[0].dtype != y.dtype)
      return Status::error("input and output differ");
    void *src = in[0].data, *dst = y.data;
    size_t bytes = y.size() * dtypeSize(y.dtype);
    *result = lambda([=] {
      if (src != dst)
        std::memcpy(dst, src, bytes);
      return Status::ok();
    });
    return Status::ok();
  }
  if (id == KernelId::Cast) {
    if (in[0].shape != y.shape)
      return Status::error("a cast keeps the shape");
    return buildCast(in[0], y, result);
  }
  if (id == KernelId::BroadcastTo) { // y = x broadcast: binary, ignoring its second input
    if (in[0].dtype != y.dtype)
      return Status::error("operand and result must share an element type");
    return buildBinary({in[0], y}, y, [](float a, float) { return a; }, result);
  }
  return Status::error("unknown elementwise kernel");
}

Status buildElementwiseMath(const proto::Kernel &kernel, KernelId id,
                            const std::vector<TensorRef> &in, const std::vector<TensorRef> &out,
                            std::unique_ptr<CpuKernel> *result) {
  // One step of the fused evaluator: it converts operands of another type
  // than the result as it loads them (exp reading bf16, writing f32), and
  // runs each op as one loop over a block, compiled per vector width; a
  // closure per element was 2-4x slower (GELU's backward: 6 ms per 1M).
  proto::Kernel chain;
  AMPRT_RETURN_IF_ERROR(fused::singleStepChain(kernel, in, out, &chain));
  return buildFusedElementwise(chain, in, out, result);
}

Status buildDropout(const proto::Kernel &kernel, const std::vector<TensorRef> &in,
                    const TensorRef &out, std::unique_ptr<CpuKernel> *result) {
  DropoutParams p;
  AMPRT_RETURN_IF_ERROR(checkDropout(kernel, in, out, &p));
  const TensorRef &x = in[0], &counter = in[1];
  uint64_t seed = p.seed, threshold = p.threshold;
  float scale = p.scale;
  TensorRef y = out;
  *result = lambda([=] {
    auto step = static_cast<uint64_t>(*counter.i64());
    return withFloatStorage(y.dtype, [&](auto storage) {
      using T = decltype(storage);
      const T *src = static_cast<const T *>(x.data);
      T *dst = static_cast<T *>(y.data);
      parallelFor(y.size(), [&](int64_t i) {
        bool keep = math::dropoutKeeps(seed, step, static_cast<uint64_t>(i), threshold);
        dst[i] = math::store<T>(keep ? math::load(src[i]) * scale : 0.0f);
      });
      return Status::ok();
    });
  });
  return Status::ok();
}

} // namespace amprt
