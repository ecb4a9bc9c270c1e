//===- Session.cpp - persistent state, arenas and program execution -------===//

#include "amprt/Session.h"
#include "Checkpoint.h"
#include "Device.h"
#include "FeedChecks.h"
#include "PlanLoader.h"

#include "amprt/AtomicFile.h"

#include <chrono>
#include <cmath>
#include <cstring>
#include <map>

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
  case DType::I32:
    return 4;
  case DType::Bool:
    return 1;
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
  case DType::I32:
    return "i32";
  case DType::Bool:
    return "bool";
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

/// Zeroed memory of one device, released with it.
class DeviceMemory {
public:
  DeviceMemory(Device &device, size_t bytes)
      : device(&device), data(device.allocate(bytes)), size(bytes) {}
  DeviceMemory(DeviceMemory &&other) noexcept
      : device(other.device), data(other.data), size(other.size) {
    other.data = nullptr;
  }
  DeviceMemory(const DeviceMemory &) = delete;
  ~DeviceMemory() {
    if (data)
      device->release(data);
  }
  Device *device;
  void *data;
  size_t size;
};

/// One program bound to memory: its arena, constants and kernels.
struct BoundProgram {
  std::vector<DeviceMemory> memory; // arena and constants
  std::vector<TensorRef> buffers;
  std::unique_ptr<Executable> executable;
  std::vector<std::string> kernelNodes;
  std::vector<KernelTime> times; // one per kernel, filled when profiling
  std::vector<std::vector<int32_t>> kernelOutputs;
  std::vector<TensorInfo> inputs, outputs;
  std::map<std::string, int32_t> inputBuffers, outputBuffers;
  std::map<std::string, FeedCheck> feedChecks; // by input name
  int64_t arenaBytes = 0;
};

} // namespace

struct Session::Impl {
  std::string name;
  proto::Plan plan;
  std::unique_ptr<Device> device; // declared first: memory below returns to it
  std::vector<DeviceMemory> states;
  std::vector<TensorInfo> stateInfos;
  std::map<std::string, size_t> stateIndex;
  BoundProgram train, eval;
  mutable float lastLoss = 0.0f;
  mutable bool lossPending = false; // the last step's loss is still on the device
  int32_t lossBuffer = -1;
  bool profile = false;
  bool checkNumerics = false;
  bool allowNonFiniteInputs = false;
  std::string firstNonFinite;

  Status bind(const proto::Program &program, BoundProgram &bound);
  Status run(BoundProgram &bound, const std::vector<Feed> &feeds, const char *what);
  /// True when kernel k of `bound` wrote an inf or NaN (reads its outputs back).
  bool kernelWritesNonFinite(const BoundProgram &bound, size_t k) const;
  BoundProgram &program(Program p) { return p == Program::Train ? train : eval; }
  const BoundProgram &program(Program p) const { return p == Program::Train ? train : eval; }
};

Status Session::Impl::bind(const proto::Program &program, BoundProgram &bound) {
  bound.arenaBytes = program.arena_bytes();
  bound.memory.emplace_back(*device, program.arena_bytes());
  if (!bound.memory.back().data)
    return Status::error(name + ": cannot allocate an arena of " +
                         std::to_string(program.arena_bytes()) + " bytes on " + device->name());
  void *arena = bound.memory.back().data;
  std::vector<void *> constants;
  for (const auto &constant : program.constants()) {
    bound.memory.emplace_back(*device, constant.size());
    if (!bound.memory.back().data)
      return Status::error(name + ": cannot allocate a constant on " +
                           std::string(device->name()));
    AMPRT_RETURN_IF_ERROR(device->write(bound.memory.back().data, constant.data(),
                                        constant.size()));
    constants.push_back(bound.memory.back().data);
  }
  for (const auto &buffer : program.buffers()) {
    TensorRef ref;
    ref.dtype = static_cast<DType>(buffer.type().dtype());
    ref.shape.assign(buffer.type().shape().begin(), buffer.type().shape().end());
    switch (buffer.kind()) {
    case proto::Buffer::STATE:
      ref.data = states[buffer.offset()].data;
      break;
    case proto::Buffer::CONSTANT:
      ref.data = constants[buffer.offset()];
      break;
    default:
      ref.data = static_cast<uint8_t *>(arena) + buffer.offset();
      break;
    }
    bound.buffers.push_back(std::move(ref));
  }
  std::vector<std::unique_ptr<Kernel>> kernels;
  for (const auto &kernel : program.kernels()) {
    std::vector<TensorRef> in, out;
    for (int32_t index : kernel.inputs())
      in.push_back(bound.buffers[index]);
    for (int32_t index : kernel.outputs())
      out.push_back(bound.buffers[index]);
    std::unique_ptr<Kernel> built;
    Status status = device->buildKernel(kernel, std::move(in), std::move(out), &built);
    if (!status.isOk())
      return Status::error(name + ": " + program.name() + ": " + status.message());
    kernels.push_back(std::move(built));
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
  bound.executable = device->makeExecutable(std::move(kernels));
  std::vector<FeedCheck> checks = feedChecks(program);
  for (int i = 0; i < program.inputs_size(); ++i) {
    const auto &binding = program.inputs(i);
    bound.inputs.push_back(tensorInfo(binding.name(), binding.role(),
                                      program.buffers(binding.buffer()).type()));
    bound.inputBuffers[binding.name()] = binding.buffer();
    if (allowNonFiniteInputs && checks[i].kind == FeedCheck::Kind::Finite)
      checks[i].kind = FeedCheck::Kind::None;
    bound.feedChecks[binding.name()] = checks[i];
  }
  for (const auto &binding : program.outputs()) {
    bound.outputs.push_back(tensorInfo(binding.name(), binding.role(),
                                       program.buffers(binding.buffer()).type()));
    bound.outputBuffers[binding.name()] = binding.buffer();
  }
  return Status::ok();
}

bool Session::Impl::kernelWritesNonFinite(const BoundProgram &bound, size_t k) const {
  for (int32_t index : bound.kernelOutputs[k]) {
    const TensorRef &t = bound.buffers[index];
    std::vector<uint8_t> bytes(t.bytes());
    if (!device->copyOut(bytes.data(), t.data, bytes.size()).isOk())
      return false;
    if (indexOfNonFinite(bytes.data(), bytes.size(), t.dtype) >= 0)
      return true;
  }
  return false;
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
    if (feed.bytes != buffer.bytes() || !feed.data)
      return Status::error(std::string(what) + ": input '" + feed.name + "' needs " +
                           std::to_string(buffer.bytes()) + " bytes, got " +
                           std::to_string(feed.bytes));
    // Before anything is copied or run: a bad feed leaves the session as it was.
    Status valid =
        checkFeed(bound.feedChecks.at(feed.name), buffer.dtype, feed.data, feed.bytes);
    if (!valid.isOk())
      return Status::error(std::string(what) + ": input '" + feed.name + "': " +
                           valid.message());
  }
  for (const auto &feed : feeds)
    AMPRT_RETURN_IF_ERROR(
        device->copyIn(bound.buffers[bound.inputBuffers[feed.name]].data, feed.data, feed.bytes));
  firstNonFinite.clear();
  if (!profile && !checkNumerics) {
    Status status = bound.executable->runAll();
    return status.isOk() ? status : Status::error(std::string(what) + ": " + status.message());
  }
  // Kernel by kernel, each waited for: timed, and its outputs checked.
  for (size_t k = 0; k < bound.kernelNodes.size(); ++k) {
    auto start = std::chrono::steady_clock::now();
    Status status = bound.executable->runOne(k);
    if (profile) {
      bound.times[k].seconds +=
          std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      ++bound.times[k].calls;
    }
    if (!status.isOk())
      return Status::error(std::string(what) + ": node '" + bound.kernelNodes[k] +
                           "': " + status.message());
    if (checkNumerics && firstNonFinite.empty() && kernelWritesNonFinite(bound, k))
      firstNonFinite = bound.times[k].op + " at node '" + bound.kernelNodes[k] + "'";
  }
  return Status::ok();
}

Session::Session(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Session::~Session() = default;

std::vector<std::string> listDevices(std::string *whyNoGpu) {
  std::vector<std::string> devices = {"cpu"}, gpus;
  Status status = cudaDeviceNames(&gpus);
  if (!status.isOk() && whyNoGpu)
    *whyNoGpu = status.message();
  for (size_t i = 0; i < gpus.size(); ++i)
    devices.push_back("cuda:" + std::to_string(i) + " " + gpus[i]);
  return devices;
}

/// The backend `options.device` names: "cpu", "cuda" or "cuda:N".
static Status makeDevice(const SessionOptions &options, std::unique_ptr<Device> *device) {
  const std::string &spec = options.device;
  if (spec.empty() || spec == "cpu") {
    *device = makeCpuDevice(options.numThreads, options.cpuGemms, options.communicator);
    return Status::ok();
  }
  if (spec == "cuda")
    return makeCudaDevice(0, options.allowTf32, options.communicator, device);
  if (spec.rfind("cuda:", 0) == 0 && spec.size() > 5 &&
      spec.find_first_not_of("0123456789", 5) == std::string::npos)
    return makeCudaDevice(std::stoi(spec.substr(5)), options.allowTf32, options.communicator,
                          device);
  return Status::error("unknown device '" + spec + "' (expected cpu, cuda or cuda:N)");
}

Status Session::createFromBytes(const std::string &bytes, const std::string &name,
                                const SessionOptions &options,
                                std::unique_ptr<Session> *session) {
  auto impl = std::make_unique<Impl>();
  impl->name = name;
  impl->profile = options.profile;
  impl->checkNumerics = options.checkNumerics;
  impl->allowNonFiniteInputs = options.allowNonFiniteInputs;
  AMPRT_RETURN_IF_ERROR(loadPlan(bytes, name, &impl->plan));
  if (options.memoryLimitBytes > 0) {
    // Each term is below 2^43 (the plan loader's limits) and the sum stops
    // once past the limit, so it cannot overflow.
    int64_t needed = 0;
    auto add = [&](int64_t bytes) { return (needed += bytes) > options.memoryLimitBytes; };
    bool over = false;
    for (const auto &state : impl->plan.states())
      over = over || add(static_cast<int64_t>(byteSize(state.type())));
    for (const auto *program : {&impl->plan.train(), &impl->plan.eval()}) {
      over = over || add(program->arena_bytes());
      for (const auto &constant : program->constants())
        over = over || add(static_cast<int64_t>(constant.size()));
    }
    if (over)
      return Status::error(name + ": the plan needs more than " +
                           std::to_string(options.memoryLimitBytes) +
                           " bytes of device memory (the session's limit), " +
                           std::to_string(needed) + " counted so far");
  }
  AMPRT_RETURN_IF_ERROR(makeDevice(options, &impl->device));
  Device &device = *impl->device;
  for (int i = 0; i < impl->plan.states_size(); ++i) {
    const auto &state = impl->plan.states(i);
    impl->states.emplace_back(device, byteSize(state.type()));
    if (!impl->states.back().data)
      return Status::error(name + ": cannot allocate state '" + state.name() + "' on " +
                           device.name());
    if (!state.init().empty())
      AMPRT_RETURN_IF_ERROR(
          device.write(impl->states.back().data, state.init().data(), state.init().size()));
    impl->stateInfos.push_back(tensorInfo(state.name(), state.role(), state.type()));
    impl->stateIndex[state.name()] = i;
  }
  AMPRT_RETURN_IF_ERROR(impl->bind(impl->plan.train(), impl->train));
  AMPRT_RETURN_IF_ERROR(impl->bind(impl->plan.eval(), impl->eval));
  auto loss = impl->train.outputBuffers.find("loss");
  if (loss != impl->train.outputBuffers.end())
    impl->lossBuffer = loss->second;
  session->reset(new Session(std::move(impl)));
  return Status::ok();
}

Status Session::create(const std::string &path, const SessionOptions &options,
                       std::unique_ptr<Session> *session) {
  std::string contents;
  AMPRT_RETURN_IF_ERROR(readFile(path, &contents)); // within protobuf's 2 GiB
  return createFromBytes(contents, path, options, session);
}

const std::vector<TensorInfo> &Session::inputs(Program program) const {
  return impl_->program(program).inputs;
}
const std::vector<TensorInfo> &Session::outputs(Program program) const {
  return impl_->program(program).outputs;
}
const std::vector<TensorInfo> &Session::states() const { return impl_->stateInfos; }
int64_t Session::dataParallelRanks() const {
  for (const auto &kernel : impl_->plan.train().kernels())
    if (kernel.op() == "all_reduce") // every one says the same (amp-data-parallel)
      if (auto it = kernel.attrs().find("world_size"); it != kernel.attrs().end())
        return static_cast<int64_t>(it->second);
  return 1;
}
int64_t Session::arenaBytes(Program program) const {
  return impl_->program(program).arenaBytes;
}

Status Session::step(const std::vector<Feed> &feeds) {
  if (impl_->plan.train().name().empty())
    return Status::error(impl_->name + ": the plan has no training step (compile with "
                                       "--amp-pipeline)");
  AMPRT_RETURN_IF_ERROR(impl_->run(impl_->train, feeds, "step"));
  // The loss stays on the device until asked for: no wait per step.
  impl_->lossPending = impl_->lossBuffer >= 0;
  return Status::ok();
}

float Session::loss() const {
  if (impl_->lossPending) {
    const TensorRef &buffer = impl_->train.buffers[impl_->lossBuffer];
    if (!impl_->device->copyOut(&impl_->lastLoss, buffer.data, sizeof(float)).isOk())
      impl_->lastLoss = std::nanf("");
    impl_->lossPending = false;
  }
  return impl_->lastLoss;
}

Status Session::synchronize() { return impl_->device->synchronize(); }

const char *Session::deviceName() const { return impl_->device->name(); }

std::vector<DType> Session::emulatedGemmTypes() const {
  return impl_->device->emulatedGemmTypes();
}

std::vector<DType> Session::widenedGemmTypes() const {
  return impl_->device->widenedGemmTypes();
}

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
  if (bytes != buffer.bytes())
    return Status::error("output '" + name + "' has " + std::to_string(buffer.bytes()) +
                         " bytes, not " + std::to_string(bytes));
  return impl_->device->copyOut(data, buffer.data, bytes);
}

Status Session::readState(const std::string &name, void *data, size_t bytes) const {
  auto it = impl_->stateIndex.find(name);
  if (it == impl_->stateIndex.end())
    return Status::error("no state tensor named '" + name + "'");
  const auto &state = impl_->states[it->second];
  if (bytes != state.size)
    return Status::error("state '" + name + "' has " + std::to_string(state.size) +
                         " bytes, not " + std::to_string(bytes));
  return impl_->device->copyOut(data, state.data, bytes);
}

Status Session::writeState(const std::string &name, const void *data, size_t bytes) {
  auto it = impl_->stateIndex.find(name);
  if (it == impl_->stateIndex.end())
    return Status::error("no state tensor named '" + name + "'");
  auto &state = impl_->states[it->second];
  if (bytes != state.size)
    return Status::error("state '" + name + "' has " + std::to_string(state.size) +
                         " bytes, not " + std::to_string(bytes));
  return impl_->device->write(state.data, data, bytes);
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
    std::string data(impl_->states[i].size, '\0');
    AMPRT_RETURN_IF_ERROR(impl_->device->copyOut(data.data(), impl_->states[i].data, data.size()));
    tensor->set_data(std::move(data));
  }
  for (const auto &[key, value] : metadata)
    (*checkpoint.mutable_metadata())[key] = value;
  std::string file;
  if (Status encoded = encodeCheckpoint(checkpoint, &file); !encoded)
    return Status::error(path + ": " + encoded.message() + "; nothing was written");
  return writeFileAtomically(path, file);
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
    AMPRT_RETURN_IF_ERROR(impl_->device->write(
        impl_->states[i].data, checkpoint.tensors(i).data().data(), impl_->states[i].size));
  if (metadata)
    metadata->insert(checkpoint.metadata().begin(), checkpoint.metadata().end());
  return Status::ok();
}

} // namespace amprt
