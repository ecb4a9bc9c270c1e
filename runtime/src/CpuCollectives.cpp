//===- CpuCollectives.cpp - all_reduce on the CPU backend -----------------===//
//
// One all_reduce kernel is one bucket of tensors (amp-data-parallel groups
// gradients by size): they are packed into one contiguous buffer, reduced
// across the ranks in one collective call, and unpacked into the outputs;
// for a mean, divided by the world size on the way out. Packing costs a
// copy, but one call per bucket instead of one per tensor is what keeps
// small gradients (biases, norms) from paying a collective's latency each.
//
//===----------------------------------------------------------------------===//

#include "CpuKernelSupport.h"

#include "amprt/Communicator.h"

#include <cstring>

namespace amprt {
namespace {

class AllReduceKernel : public CpuKernel {
public:
  AllReduceKernel(std::vector<TensorRef> in, std::vector<TensorRef> out, DType dtype, bool max,
                  Communicator *communicator)
      : in(std::move(in)), out(std::move(out)), dtype(dtype), max(max),
        communicator(communicator) {
    size_t bytes = 0;
    for (const TensorRef &t : this->in)
      bytes += t.bytes();
    packed.resize(bytes);
  }

  Status run() override {
    size_t offset = 0;
    for (const TensorRef &t : in) {
      std::memcpy(packed.data() + offset, t.data, t.bytes());
      offset += t.bytes();
    }
    int64_t count = static_cast<int64_t>(packed.size() / dtypeSize(dtype));
    if (communicator && communicator->size() > 1)
      AMPRT_RETURN_IF_ERROR(communicator->allReduce(
          packed.data(), count, dtype,
          max ? Communicator::Reduction::Max : Communicator::Reduction::Sum));
    int ranks = communicator ? communicator->size() : 1;
    if (!max && ranks > 1)
      divide(count, 1.0f / static_cast<float>(ranks));
    offset = 0;
    for (const TensorRef &t : out) {
      std::memcpy(t.data, packed.data() + offset, t.bytes());
      offset += t.bytes();
    }
    return Status::ok();
  }

private:
  /// The sum becomes the mean: multiplied by 1 / ranks in f32 (exact for a
  /// power-of-two world size), rounded once for bf16 and f16.
  void divide(int64_t count, float inverse) {
    (void)withFloatStorage(dtype, [&](auto storage) { // dtype was checked at build
      using T = decltype(storage);
      T *values = reinterpret_cast<T *>(packed.data());
      parallelFor(count, [&](int64_t i) {
        values[i] = math::store<T>(math::load(values[i]) * inverse);
      });
      return Status::ok();
    });
  }

  std::vector<TensorRef> in, out;
  DType dtype;
  bool max;
  Communicator *communicator;
  std::vector<char> packed;
};

} // namespace

Status buildAllReduce(const proto::Kernel &kernel, const std::vector<TensorRef> &in,
                      const std::vector<TensorRef> &out, CpuContext &context,
                      std::unique_ptr<CpuKernel> *result) {
  if (in.size() != out.size())
    return Status::error("all_reduce needs one output per input");
  for (size_t i = 0; i < in.size(); ++i)
    if (in[i].dtype != in[0].dtype || out[i].dtype != in[i].dtype ||
        out[i].shape != in[i].shape || !isFloat(in[i].dtype))
      return Status::error("all_reduce's tensors must be float tensors of one type, each "
                           "output its input's shape");
  bool max = attr(kernel, "max") != 0;
  if (max && in[0].dtype != DType::F32)
    return Status::error("all_reduce's maximum is taken over f32 tensors only");
  double worldSize = attr(kernel, "world_size");
  int ranks = context.communicator ? context.communicator->size() : 1;
  if (worldSize != ranks)
    return Status::error(
        "the plan was compiled for data-parallel training over " +
        std::to_string(static_cast<int64_t>(worldSize)) + " ranks, but this session runs " +
        (context.communicator ? "on " + std::to_string(ranks) + " ranks"
                              : std::string("without a communicator (one rank)")) +
        " (amp-opt --amp-pipeline='... data-parallel=N', and amp-run under mpirun -np N)");
  *result = std::make_unique<AllReduceKernel>(in, out, in[0].dtype, max, context.communicator);
  return Status::ok();
}

} // namespace amprt
