//===- CpuCollectives.cpp - all_reduce on the CPU backend -----------------===//
//
// One all_reduce kernel is one bucket of tensors (amp-data-parallel groups
// gradients by size): they are packed into one contiguous buffer, reduced
// across the ranks in one collective call (a mean, or for the loss-scaling
// statistics a maximum), and unpacked into the outputs. Packing costs a
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
          max ? Communicator::Reduction::Max : Communicator::Reduction::Mean));
    offset = 0;
    for (const TensorRef &t : out) {
      std::memcpy(t.data, packed.data() + offset, t.bytes());
      offset += t.bytes();
    }
    return Status::ok();
  }

private:
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
  if (context.communicator && context.communicator->onDevice())
    return Status::error("the session's communicator reduces GPU memory (NCCL): a CPU session "
                         "needs one over host memory (MPI)");
  bool max = false;
  AMPRT_RETURN_IF_ERROR(checkAllReduce(kernel, in, out, context.communicator, &max));
  *result = std::make_unique<AllReduceKernel>(in, out, in[0].dtype, max, context.communicator);
  return Status::ok();
}

} // namespace amprt
