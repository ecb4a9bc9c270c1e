//===- Session.cpp - persistent state, arenas and program execution -------===//

#include "amprt/Session.h"
#include "Checkpoint.h"
#include "CpuKernels.h"
#include "PlanLoader.h"

#include <chrono>
#include <cmath>

#include "amprt/FloatConversions.h"
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <sstream>

#ifdef _OPENMP
#include <omp.h>
#endif

namespace amprt {

size_t dtypeSize(DType dtype) {
  switch (dtype) {
  case DType::F32:
    return 4;
  case DType::BF16:
  case DType::F16:
    return 2;
  case DType::I64:
    return 8;
  }
  return 0;
}

const char *dtypeName(DType dtype) {
  switch (dtype) {
  case DType::F32:
    return "f32";
  case DType::BF16:
    return "bf16";
  case DType::F16:
    return "f16";
  case DType::I64:
    return "i64";
  }
  return "?";
}

int64_t TensorInfo::numElements() const {
  int64_t n = 1;
  for (int64_t d : shape)
    n *= d;
  return n;
}

namespace {

/// 64-byte aligned bytes, zero-initialised (the alignment oneDNN prefers).
struct AlignedBytes {
  struct Free {
    void operator()(void *p) const { std::free(p); }
  };
  std::unique_ptr<uint8_t, Free> data;
  size_t size = 0;

  static AlignedBytes allocate(size_t bytes) {
    AlignedBytes result;
    size_t rounded = (bytes + 63) / 64 * 64;
    result.data.reset(static_cast<uint8_t *>(std::aligned_alloc(64, rounded ? rounded : 64)));
    if (result.data)
      std::memset(result.data.get(), 0, rounded ? rounded : 64);
    result.size = bytes;
    return result;
  }
};

/// One program bound to memory: its arena, constants and kernels.
struct BoundProgram {
  AlignedBytes arena;
  std::vector<AlignedBytes> constants;
  std::vector<TensorRef> buffers;
  std::vector<std::unique_ptr<CpuKernel>> kernels;
  std::vector<std::string> kernelNodes;
  std::vector<KernelTime> times; // one per kernel, filled when profiling
  std::vector<std::vector<int32_t>> kernelOutputs;

  /// True when kernel k's float outputs hold an inf or NaN.
  bool kernelWritesNonFinite(size_t k) const {
    for (int32_t index : kernelOutputs[k]) {
      const TensorRef &t = buffers[index];
      for (int64_t i = 0, n = t.size(); i < n; ++i) {
        float v;
        if (t.dtype == DType::F32)
          v = t.f32()[i];
        else if (t.dtype == DType::BF16)
          v = math::bf16ToFloat(static_cast<const uint16_t *>(t.data)[i]);
        else if (t.dtype == DType::F16)
          v = math::f16ToFloat(static_cast<const uint16_t *>(t.data)[i]);
        else
          break;
        if (!std::isfinite(v))
          return true;
      }
    }
    return false;
  }
  std::vector<TensorInfo> inputs, outputs;
  std::map<std::string, int32_t> inputBuffers, outputBuffers;
  int64_t arenaBytes = 0;
};

} // namespace

struct Session::Impl {
  std::string name;
  proto::Plan plan;
  CpuContext cpu;
  std::vector<AlignedBytes> states;
  std::vector<TensorInfo> stateInfos;
  std::map<std::string, size_t> stateIndex;
  BoundProgram train, eval;
  float lastLoss = 0.0f;
  bool profile = false;
  bool checkNumerics = false;
  std::string firstNonFinite;

  Status bind(const proto::Program &program, BoundProgram &bound);
  Status run(BoundProgram &bound, const std::vector<Feed> &feeds, const char *what);
  BoundProgram &program(Program p) { return p == Program::Train ? train : eval; }
  const BoundProgram &program(Program p) const { return p == Program::Train ? train : eval; }
};

Status Session::Impl::bind(const proto::Program &program, BoundProgram &bound) {
  bound.arenaBytes = program.arena_bytes();
  bound.arena = AlignedBytes::allocate(program.arena_bytes());
  if (!bound.arena.data)
    return Status::error(name + ": cannot allocate an arena of " +
                         std::to_string(program.arena_bytes()) + " bytes");
  for (const auto &constant : program.constants()) {
    bound.constants.push_back(AlignedBytes::allocate(constant.size()));
    std::memcpy(bound.constants.back().data.get(), constant.data(), constant.size());
  }
  for (const auto &buffer : program.buffers()) {
    TensorRef ref;
    ref.dtype = static_cast<DType>(buffer.type().dtype());
    ref.shape.assign(buffer.type().shape().begin(), buffer.type().shape().end());
    switch (buffer.kind()) {
    case proto::Buffer::STATE:
      ref.data = states[buffer.offset()].data.get();
      break;
    case proto::Buffer::CONSTANT:
      ref.data = bound.constants[buffer.offset()].data.get();
      break;
    default:
      ref.data = bound.arena.data.get() + buffer.offset();
      break;
    }
    bound.buffers.push_back(std::move(ref));
  }
  for (const auto &kernel : program.kernels()) {
    std::vector<TensorRef> in, out;
    for (int32_t index : kernel.inputs())
      in.push_back(bound.buffers[index]);
    for (int32_t index : kernel.outputs())
      out.push_back(bound.buffers[index]);
    std::unique_ptr<CpuKernel> cpuKernel;
    Status status = buildCpuKernel(kernel, std::move(in), std::move(out), cpu, &cpuKernel);
    if (!status.isOk())
      return Status::error(name + ": " + program.name() + ": " + status.message());
    bound.kernels.push_back(std::move(cpuKernel));
    bound.kernelNodes.push_back(kernel.node());
    bound.kernelOutputs.emplace_back(kernel.outputs().begin(), kernel.outputs().end());
    KernelTime time;
    time.op = kernel.op();
    time.node = kernel.node();
    for (size_t i = 0; i < kernel.inputs_size() + kernel.outputs_size(); ++i) {
      bool input = i < static_cast<size_t>(kernel.inputs_size());
      int32_t index = input ? kernel.inputs(i) : kernel.outputs(i - kernel.inputs_size());
      time.types += (i == 0 ? "" : i == static_cast<size_t>(kernel.inputs_size()) ? "->" : ",");
      time.types += dtypeName(bound.buffers[index].dtype);
    }
    bound.times.push_back(std::move(time));
  }
  for (const auto &binding : program.inputs()) {
    bound.inputs.push_back(tensorInfo(binding.name(), binding.role(),
                                      program.buffers(binding.buffer()).type()));
    bound.inputBuffers[binding.name()] = binding.buffer();
  }
  for (const auto &binding : program.outputs()) {
    bound.outputs.push_back(tensorInfo(binding.name(), binding.role(),
                                       program.buffers(binding.buffer()).type()));
    bound.outputBuffers[binding.name()] = binding.buffer();
  }
  return Status::ok();
}

Status Session::Impl::run(BoundProgram &bound, const std::vector<Feed> &feeds,
                          const char *what) {
  if (feeds.size() != bound.inputs.size())
    return Status::error(std::string(what) + ": expects " +
                         std::to_string(bound.inputs.size()) + " inputs, got " +
                         std::to_string(feeds.size()));
  for (const auto &feed : feeds) {
    auto it = bound.inputBuffers.find(feed.name);
    if (it == bound.inputBuffers.end())
      return Status::error(std::string(what) + ": no input named '" + feed.name + "'");
    const TensorRef &buffer = bound.buffers[it->second];
    size_t bytes = buffer.size() * dtypeSize(buffer.dtype);
    if (feed.bytes != bytes || !feed.data)
      return Status::error(std::string(what) + ": input '" + feed.name + "' needs " +
                           std::to_string(bytes) + " bytes, got " +
                           std::to_string(feed.bytes));
    std::memcpy(buffer.data, feed.data, bytes);
  }
  firstNonFinite.clear();
  for (size_t k = 0; k < bound.kernels.size(); ++k) {
    auto start = profile ? std::chrono::steady_clock::now()
                         : std::chrono::steady_clock::time_point();
    Status status = bound.kernels[k]->run();
    if (profile) {
      bound.times[k].seconds +=
          std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      ++bound.times[k].calls;
    }
    if (!status.isOk())
      return Status::error(std::string(what) + ": node '" + bound.kernelNodes[k] +
                           "': " + status.message());
    if (checkNumerics && firstNonFinite.empty() && bound.kernelWritesNonFinite(k))
      firstNonFinite = bound.times[k].op + " at node '" + bound.kernelNodes[k] + "'";
  }
  return Status::ok();
}

Session::Session(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Session::~Session() = default;

Status Session::createFromBytes(const std::string &bytes, const std::string &name,
                                const SessionOptions &options,
                                std::unique_ptr<Session> *session) {
  auto impl = std::make_unique<Impl>();
  impl->name = name;
  impl->profile = options.profile;
  impl->checkNumerics = options.checkNumerics;
  AMPRT_RETURN_IF_ERROR(loadPlan(bytes, name, &impl->plan));
#ifdef _OPENMP
  if (options.numThreads > 0)
    omp_set_num_threads(options.numThreads);
#endif
  for (int i = 0; i < impl->plan.states_size(); ++i) {
    const auto &state = impl->plan.states(i);
    impl->states.push_back(AlignedBytes::allocate(byteSize(state.type())));
    if (!impl->states.back().data)
      return Status::error(name + ": cannot allocate state '" + state.name() + "'");
    if (!state.init().empty())
      std::memcpy(impl->states.back().data.get(), state.init().data(), state.init().size());
    impl->stateInfos.push_back(tensorInfo(state.name(), state.role(), state.type()));
    impl->stateIndex[state.name()] = i;
  }
  AMPRT_RETURN_IF_ERROR(impl->bind(impl->plan.train(), impl->train));
  AMPRT_RETURN_IF_ERROR(impl->bind(impl->plan.eval(), impl->eval));
  session->reset(new Session(std::move(impl)));
  return Status::ok();
}

Status Session::create(const std::string &path, const SessionOptions &options,
                       std::unique_ptr<Session> *session) {
  std::ifstream file(path, std::ios::binary);
  if (!file)
    return Status::error(path + ": cannot open the plan");
  std::stringstream contents;
  contents << file.rdbuf();
  return createFromBytes(contents.str(), path, options, session);
}

const std::vector<TensorInfo> &Session::inputs(Program program) const {
  return impl_->program(program).inputs;
}
const std::vector<TensorInfo> &Session::outputs(Program program) const {
  return impl_->program(program).outputs;
}
const std::vector<TensorInfo> &Session::states() const { return impl_->stateInfos; }
int64_t Session::arenaBytes(Program program) const {
  return impl_->program(program).arenaBytes;
}

Status Session::step(const std::vector<Feed> &feeds) {
  if (impl_->plan.train().name().empty())
    return Status::error(impl_->name + ": the plan has no training step (compile with "
                                       "--amp-pipeline)");
  AMPRT_RETURN_IF_ERROR(impl_->run(impl_->train, feeds, "step"));
  auto it = impl_->train.outputBuffers.find("loss");
  if (it != impl_->train.outputBuffers.end())
    impl_->lastLoss = impl_->train.buffers[it->second].f32()[0];
  return Status::ok();
}

float Session::loss() const { return impl_->lastLoss; }

const std::string &Session::firstNonFinite() const { return impl_->firstNonFinite; }

std::vector<KernelTime> Session::kernelProfile(Program program) const {
  return impl_->program(program).times;
}

Status Session::evaluate(const std::vector<Feed> &feeds) {
  return impl_->run(impl_->eval, feeds, "evaluate");
}

Status Session::readOutput(Program program, const std::string &name, void *data,
                           size_t bytes) const {
  const BoundProgram &bound = impl_->program(program);
  auto it = bound.outputBuffers.find(name);
  if (it == bound.outputBuffers.end())
    return Status::error("no output named '" + name + "'");
  const TensorRef &buffer = bound.buffers[it->second];
  size_t size = buffer.size() * dtypeSize(buffer.dtype);
  if (bytes != size)
    return Status::error("output '" + name + "' has " + std::to_string(size) +
                         " bytes, not " + std::to_string(bytes));
  std::memcpy(data, buffer.data, size);
  return Status::ok();
}

Status Session::readState(const std::string &name, void *data, size_t bytes) const {
  auto it = impl_->stateIndex.find(name);
  if (it == impl_->stateIndex.end())
    return Status::error("no state tensor named '" + name + "'");
  const auto &state = impl_->states[it->second];
  if (bytes != state.size)
    return Status::error("state '" + name + "' has " + std::to_string(state.size) +
                         " bytes, not " + std::to_string(bytes));
  std::memcpy(data, state.data.get(), bytes);
  return Status::ok();
}

Status Session::writeState(const std::string &name, const void *data, size_t bytes) {
  auto it = impl_->stateIndex.find(name);
  if (it == impl_->stateIndex.end())
    return Status::error("no state tensor named '" + name + "'");
  auto &state = impl_->states[it->second];
  if (bytes != state.size)
    return Status::error("state '" + name + "' has " + std::to_string(state.size) +
                         " bytes, not " + std::to_string(bytes));
  std::memcpy(state.data.get(), data, bytes);
  return Status::ok();
}

Status Session::saveCheckpoint(const std::string &path,
                               const std::map<std::string, std::string> &metadata) const {
  proto::Checkpoint checkpoint;
  checkpoint.set_format_version(kCheckpointFormatVersion);
  checkpoint.set_plan_source(impl_->plan.source());
  for (int i = 0; i < impl_->plan.states_size(); ++i) {
    auto *tensor = checkpoint.add_tensors();
    tensor->set_name(impl_->plan.states(i).name());
    *tensor->mutable_type() = impl_->plan.states(i).type();
    tensor->set_data(impl_->states[i].data.get(), impl_->states[i].size);
  }
  for (const auto &[key, value] : metadata)
    (*checkpoint.mutable_metadata())[key] = value;
  return writeFileAtomically(path, encodeCheckpoint(checkpoint));
}

Status Session::loadCheckpoint(const std::string &path,
                               std::map<std::string, std::string> *metadata) {
  std::string file;
  AMPRT_RETURN_IF_ERROR(readFile(path, &file));
  proto::Checkpoint checkpoint;
  AMPRT_RETURN_IF_ERROR(decodeCheckpoint(file, path, &checkpoint));
  // Check everything before changing anything.
  if (checkpoint.tensors_size() != impl_->plan.states_size())
    return Status::error(path + ": holds " + std::to_string(checkpoint.tensors_size()) +
                         " tensors, the plan has " + std::to_string(impl_->plan.states_size()));
  for (int i = 0; i < checkpoint.tensors_size(); ++i) {
    const auto &tensor = checkpoint.tensors(i);
    const auto &state = impl_->plan.states(i);
    if (tensor.name() != state.name() || tensor.type().dtype() != state.type().dtype() ||
        !std::equal(tensor.type().shape().begin(), tensor.type().shape().end(),
                    state.type().shape().begin(), state.type().shape().end()) ||
        tensor.data().size() != impl_->states[i].size)
      return Status::error(path + ": tensor '" + tensor.name() + "' does not match the plan's '" +
                           state.name() + "' (name, type or shape differ)");
  }
  for (int i = 0; i < checkpoint.tensors_size(); ++i)
    std::memcpy(impl_->states[i].data.get(), checkpoint.tensors(i).data().data(),
                impl_->states[i].size);
  if (metadata)
    metadata->insert(checkpoint.metadata().begin(), checkpoint.metadata().end());
  return Status::ok();
}

} // namespace amprt
