//===- AmpToPlan.cpp - lower a training step to a runtime plan ------------===//
//
// Bufferization, memory planning and kernel choice for the CPU runtime:
//  - every SSA value gets a buffer; reshapes alias their operand's bytes;
//  - parameters and optimizer state are persistent state tensors, and an
//    update whose op is the last reader of the old value writes in place;
//  - the rest share one arena, placed by liveness (MemoryPlanner);
//  - each compute op becomes one kernel carrying its ONNX node name.
//
//===----------------------------------------------------------------------===//

#include "amp/Conversion/AmpToPlan.h"
#include "KernelFusion.h"
#include "MemoryPlanner.h"
#include "PlanWriter.h"
#include "dialects/Amp/AmpOps.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "llvm/ADT/DenseSet.h"
#include "llvm/ADT/MapVector.h"
#include "llvm/Support/JSON.h"

#include "amprt/KernelRegistry.h"
#include "amprt/PlanFormat.h"
#include "plan.pb.h"
#include <google/protobuf/arena.h>
#include <map>

using namespace mlir;
using namespace mlir::amp;

namespace {


/// Runs `stage` under a timer named `name` nested in `timing`.
template <typename Stage> auto timed(TimingScope &timing, StringRef name, Stage stage) {
  TimingScope scope = timing.nest(name);
  return stage();
}

FailureOr<amprt::proto::DType> dtypeOf(Type element) {
  if (element.isF32())
    return amprt::proto::F32;
  if (element.isBF16())
    return amprt::proto::BF16;
  if (element.isF16())
    return amprt::proto::F16;
  if (element.isInteger(64))
    return amprt::proto::I64;
  if (element.isInteger(32))
    return amprt::proto::I32;
  if (element.isInteger(1))
    return amprt::proto::BOOL;
  return failure();
}

int64_t byteSize(RankedTensorType type) {
  Type element = type.getElementType();
  int64_t width = element.isInteger(64)                          ? 8
                  : element.isF32() || element.isInteger(32) ? 4
                  : element.isInteger(1)                     ? 1
                                                             : 2;
  return type.getNumElements() * width;
}


/// Kernel name and numeric attributes of a compute op. The runtime's kernel
/// registry (amprt/KernelRegistry.h) says which kernels exist and which
/// attributes each reads; those the op carries (float, integer, bool or unit
/// attributes of the same name, and integer lists as NAME.0, NAME.1, ...)
/// are copied. Ops whose attributes are not
/// numbers say here how they are encoded.
LogicalResult describeKernel(Operation *op, amprt::proto::Kernel &kernel) {
  std::string name = op->getName().stripDialect().str();
  const amprt::KernelSpec *spec = amprt::findKernel(name);
  if (!spec)
    return op->emitError() << "'" << op->getName() << "' has no kernel in the runtime";
  kernel.set_op(name);
  auto &attrs = *kernel.mutable_attrs();
  for (NamedAttribute attr : op->getAttrs()) {
    std::string key = attr.getName().str();
    if (!amprt::readsAttribute(*spec, key))
      continue;
    if (auto list = dyn_cast<DenseI64ArrayAttr>(attr.getValue())) {
      for (auto [i, value] : llvm::enumerate(list.asArrayRef()))
        attrs[key + "." + std::to_string(i)] = static_cast<double>(value);
    } else if (auto f = dyn_cast<FloatAttr>(attr.getValue()))
      attrs[key] = f.getValueAsDouble();
    else if (auto b = dyn_cast<BoolAttr>(attr.getValue()))
      attrs[key] = b.getValue();
    else if (auto i = dyn_cast<IntegerAttr>(attr.getValue()))
      attrs[key] = static_cast<double>(i.getInt());
    else if (isa<UnitAttr>(attr.getValue()))
      attrs[key] = 1;
  }
  auto reductionAxes = [&](auto reduce) {
    for (int64_t axis : reduce.getAxes())
      kernel.add_axes(axis);
  };
  if (auto reduce = dyn_cast<ReduceSumOp>(op))
    reductionAxes(reduce);
  if (auto reduce = dyn_cast<ReduceMaxOp>(op))
    reductionAxes(reduce);
  auto crossEntropy = [&](auto ce) {
    attrs["mean"] = ce.getReduction() == LossReduction::Mean;
    attrs["has_ignore_index"] = ce.getIgnoreIndex().has_value();
  };
  if (auto ce = dyn_cast<SoftmaxCrossEntropyOp>(op))
    crossEntropy(ce);
  if (auto ce = dyn_cast<SoftmaxCrossEntropyGradOp>(op))
    crossEntropy(ce);
  return success();
}

// The plan's strings are proto3 strings, which protobuf will not parse
// unless they are UTF-8. ONNX names are checked at import; names in MLIR
// input are not.

/// A kernel's node name (for error messages): invalid bytes replaced.
std::string planNodeName(Location loc) {
  std::string name = nodeNameOf(loc);
  return llvm::json::isUTF8(name) ? name : llvm::json::fixUTF8(name);
}

/// Every state and binding name of `func` in UTF-8.
LogicalResult checkNamesAreUtf8(func::FuncOp func) {
  auto check = [&](DictionaryAttr attrs, StringRef what, unsigned i) -> LogicalResult {
    auto role = getRole(attrs);
    if (!role || llvm::json::isUTF8(role->second))
      return success();
    return func.emitError() << what << " #" << i << "'s name is not valid UTF-8";
  };
  for (unsigned i = 0; i < func.getNumArguments(); ++i)
    if (failed(check(func.getArgAttrDict(i), "argument", i)))
      return failure();
  for (unsigned i = 0; i < func.getNumResults(); ++i)
    if (failed(check(func.getResultAttrDict(i), "result", i)))
      return failure();
  return success();
}

/// Lowers one function to one program.
class ProgramLowering {
public:
  ProgramLowering(func::FuncOp func, const llvm::StringMap<int> &stateIndex,
                  amprt::proto::Program &program, bool encodeKernels)
      : func(func), stateIndex(stateIndex), program(program), encodeKernels(encodeKernels) {}

  LogicalResult run(TimingScope &timing);
  /// The program's kernels, if encoded (see PlanPart::kernels).
  std::string takeKernels() { return std::move(kernels); }
  std::map<std::string, int> takeKernelsByOp() { return std::move(kernelsByOp); }

private:
  struct ValueInfo {
    int32_t buffer;   // index into program.buffers
    Value root;       // the value whose bytes this one uses (self, or reshape source)
  };

  LogicalResult checkStatic();
  int32_t addBuffer(RankedTensorType type, amprt::proto::Buffer::Kind kind,
                    int64_t offset);
  LogicalResult assignArguments();
  LogicalResult addConstant(ConstantOp op);
  void chooseInPlaceUpdates();
  LogicalResult emitKernels();
  /// The buffer of `result`, new: in its state slot when updated in place.
  int32_t resultBuffer(Value result);
  LogicalResult emitGroup(const FusionGroup &group);
  void planFusionGroups();
  void planArenaOffsets();
  void bindResults();
  /// A new kernel to fill; the one before it is finished now.
  amprt::proto::Kernel &addKernel();
  /// Counts the current kernel and, when encoding, encodes it.
  void finishKernel();

  func::FuncOp func;
  const llvm::StringMap<int> &stateIndex;
  amprt::proto::Program &program;
  llvm::MapVector<Value, ValueInfo> values; // ordered: plans are deterministic
  llvm::DenseMap<Operation *, int64_t> position;
  /// Results written straight into a state tensor, and their state slots.
  llvm::DenseMap<Value, int> inPlace;
  /// Returned updates that need a final copy into their state slot.
  SmallVector<std::pair<Value, int>> copyBack;
  FusionPlan fusion;
  /// Kernels are only written, never read back, so with `encodeKernels`
  /// each is kept encoded once made (see PlanPart::kernels), and `pending`
  /// is the one being filled; otherwise they are the program's.
  bool encodeKernels;
  amprt::proto::Kernel pending;
  amprt::proto::Kernel *current = nullptr;
  std::string kernels;
  std::map<std::string, int> kernelsByOp;
};

amprt::proto::Kernel &ProgramLowering::addKernel() {
  finishKernel();
  current = encodeKernels ? &pending : program.add_kernels();
  current->Clear();
  return *current;
}

void ProgramLowering::finishKernel() {
  if (!current)
    return;
  ++kernelsByOp[current->op()];
  if (encodeKernels)
    appendEncodedKernel(*current, kernels);
  current = nullptr;
}

void ProgramLowering::planFusionGroups() {
  fusion = planFusion(func);
  // A group's kernel runs at one of its members: its inputs live until then,
  // its outputs are born then (so the arena never overlaps the two).
  for (const FusionGroup &group : fusion.groups)
    for (Operation *member : group.members)
      position[member] = position.lookup(group.runsAt());
}

int32_t ProgramLowering::resultBuffer(Value result) {
  auto type = cast<RankedTensorType>(result.getType());
  auto slot = inPlace.find(result);
  int32_t buffer = slot != inPlace.end()
                       ? addBuffer(type, amprt::proto::Buffer::STATE, slot->second)
                       : addBuffer(type, amprt::proto::Buffer::ARENA, 0);
  values[result] = {buffer, result};
  return buffer;
}

LogicalResult ProgramLowering::emitGroup(const FusionGroup &group) {
  auto *kernel = &addKernel();
  Operation *head = group.members.front();
  kernel->set_node(planNodeName(head->getLoc()));
  kernel->set_launch_group(fusion.launchGroup.lookup(group.runsAt()));
  if (group.kind == FusionGroup::GradientStats ||
      group.kind == FusionGroup::UpdateWithLowCopy) {
    // The first member's kernel; the others' results are extra outputs.
    if (failed(describeKernel(head, *kernel)))
      return failure();
    if (group.kind == FusionGroup::GradientStats)
      kernel->set_op("gradient_stats");
    for (Value operand : head->getOperands())
      kernel->add_inputs(values.lookup(operand).buffer);
    for (Operation *member : group.members)
      for (Value result : member->getResults())
        kernel->add_outputs(resultBuffer(result));
    return success();
  }
  if (group.kind == FusionGroup::Epilogue) {
    auto matmul = cast<MatmulOp>(head);
    if (failed(describeKernel(matmul, *kernel)))
      return failure();
    (*kernel->mutable_attrs())["bias"] = 1;
    (*kernel->mutable_attrs())["relu"] = isa<ReluOp>(group.last());
    for (Value operand : {Value(matmul.getLhs()), Value(matmul.getRhs()), group.bias})
      kernel->add_inputs(values.lookup(operand).buffer);
    int32_t output = resultBuffer(group.last()->getResult(0));
    if (group.last()->getResult(0).getType() != matmul.getResult().getType()) {
      // A reshape between GEMM and add: the GEMM writes the group's result
      // bytes in its own [M, N] shape (an alias of them).
      const auto &bytes = program.buffers(output);
      int32_t view = addBuffer(cast<RankedTensorType>(matmul.getResult().getType()),
                               bytes.kind(), bytes.offset());
      values[matmul.getResult()] = {view, group.last()->getResult(0)};
      output = view;
    }
    kernel->add_outputs(output);
    return success();
  }
  // Registers: the chain's inputs first, then one per member.
  kernel->set_op("fused_elementwise");
  llvm::DenseMap<Value, int32_t> registers;
  for (Operation *member : group.members)
    for (Value operand : member->getOperands())
      if (!registers.count(operand) &&
          !llvm::is_contained(group.members, operand.getDefiningOp())) {
        registers[operand] = kernel->inputs_size();
        kernel->add_inputs(values.lookup(operand).buffer);
      }
  int32_t next = kernel->inputs_size();
  for (Operation *member : group.members) {
    auto *step = kernel->add_steps();
    step->set_op(member->getName().stripDialect().str());
    // The member's float attribute, if its kernel reads one, is the step's param.
    amprt::proto::Kernel single;
    if (failed(describeKernel(member, single)))
      return failure();
    for (const auto &[name, value] : single.attrs())
      step->set_param(static_cast<float>(value));
    for (Value operand : member->getOperands())
      step->add_args(registers.lookup(operand));
    Value result = member->getResult(0);
    step->set_dtype(
        *dtypeOf(cast<RankedTensorType>(result.getType()).getElementType()));
    registers[result] = next++;
    bool readOutside = llvm::any_of(result.getUsers(), [&](Operation *user) {
      return !llvm::is_contained(group.members, user);
    });
    if (readOutside || member == group.last()) {
      kernel->add_outputs(resultBuffer(result));
      kernel->add_output_registers(registers.lookup(result));
    }
  }
  return success();
}

LogicalResult ProgramLowering::checkStatic() {
  auto check = [&](Value v, Location loc) -> LogicalResult {
    auto type = dyn_cast<RankedTensorType>(v.getType());
    if (!type)
      return emitError(loc) << "expected a ranked tensor, got " << v.getType();
    if (!type.hasStaticShape())
      return emitError(loc) << "dynamic shape " << type
                            << " remains; fix the batch size with batch=N";
    if (failed(dtypeOf(type.getElementType())))
      return emitError(loc) << "unsupported element type " << type.getElementType();
    return success();
  };
  for (BlockArgument arg : func.getArguments())
    if (failed(check(arg, func.getLoc())))
      return failure();
  WalkResult result = func.walk([&](Operation *op) {
    for (Value r : op->getResults())
      if (failed(check(r, op->getLoc())))
        return WalkResult::interrupt();
    return WalkResult::advance();
  });
  return failure(result.wasInterrupted());
}

int32_t ProgramLowering::addBuffer(RankedTensorType type,
                                   amprt::proto::Buffer::Kind kind, int64_t offset) {
  auto *buffer = program.add_buffers();
  buffer->set_kind(kind);
  buffer->mutable_type()->set_dtype(*dtypeOf(type.getElementType()));
  for (int64_t d : type.getShape())
    buffer->mutable_type()->add_shape(d);
  buffer->set_offset(offset);
  return program.buffers_size() - 1;
}

LogicalResult ProgramLowering::assignArguments() {
  for (BlockArgument arg : func.getArguments()) {
    auto type = cast<RankedTensorType>(arg.getType());
    auto roleAttr = getRole(func.getArgAttrDict(arg.getArgNumber()));
    if (!roleAttr)
      return func.emitError() << "argument #" << arg.getArgNumber() << " has no role";
    auto [roleName, name] = *roleAttr;
    if (roleName == role::kParam || roleName == role::kState) {
      auto it = stateIndex.find(name);
      if (it == stateIndex.end())
        return func.emitError() << "state '" << name << "' is unknown";
      values[arg] = {addBuffer(type, amprt::proto::Buffer::STATE, it->second), arg};
      continue;
    }
    int32_t buffer = addBuffer(type, amprt::proto::Buffer::ARENA, 0);
    values[arg] = {buffer, arg};
    auto *binding = program.add_inputs();
    binding->set_name(name.str());
    binding->set_role(roleName.drop_front(4).str());
    binding->set_buffer(buffer);
  }
  return success();
}

LogicalResult ProgramLowering::addConstant(ConstantOp op) {
  auto elements = dyn_cast<DenseElementsAttr>(op.getValue());
  if (!elements)
    return op.emitError("only dense constants can be lowered");
  auto type = cast<RankedTensorType>(op.getType());
  std::string bytes;
  if (elements.isSplat()) {
    ArrayRef<char> raw = elements.getRawData();
    int64_t width = byteSize(type) / std::max<int64_t>(type.getNumElements(), 1);
    for (int64_t i = 0; i < type.getNumElements(); ++i)
      bytes.append(raw.data(), width);
  } else {
    bytes.assign(elements.getRawData().data(), elements.getRawData().size());
  }
  program.add_constants(bytes);
  values[op.getResult()] = {
      addBuffer(type, amprt::proto::Buffer::CONSTANT, program.constants_size() - 1),
      op.getResult()};
  return success();
}

void ProgramLowering::chooseInPlaceUpdates() {
  // The argument holding each state tensor (the last, if named twice).
  llvm::StringMap<BlockArgument> argumentOf;
  for (BlockArgument arg : func.getArguments())
    if (auto r = getRole(func.getArgAttrDict(arg.getArgNumber())))
      argumentOf[r->second] = arg;
  auto ret = cast<func::ReturnOp>(func.getBody().front().getTerminator());
  for (auto [i, value] : llvm::enumerate(ret.getOperands())) {
    auto roleAttr = getRole(func.getResultAttrDict(i));
    if (!roleAttr || (roleAttr->first != role::kParam && roleAttr->first != role::kState))
      continue;
    int slot = stateIndex.lookup(roleAttr->second);
    // The old value: the argument holding the same state tensor.
    BlockArgument old = argumentOf.lookup(roleAttr->second);
    if (value == old)
      continue; // unchanged
    Operation *def = value.getDefiningOp();
    // A view or a constant has no bytes of its own to write into the state.
    bool safe = def && !isa<ViewLikeOpInterface>(def) &&
                !def->hasTrait<OpTrait::ConstantLike>() && old &&
                !inPlace.count(value) &&
                llvm::all_of(readersThroughViews(old), [&](Operation *user) {
                  return position.lookup(user) <= position.lookup(def);
                });
    if (safe)
      inPlace[value] = slot;
    else
      copyBack.emplace_back(value, slot);
  }
}

LogicalResult ProgramLowering::emitKernels() {
  Block &body = func.getBody().front();
  for (Operation &op : body.without_terminator()) {
    if (auto constant = dyn_cast<ConstantOp>(op)) {
      if (failed(addConstant(constant)))
        return failure();
      continue;
    }
    if (auto view = dyn_cast<ViewLikeOpInterface>(op); view && !fusion.groupOf.count(&op)) {
      // Same bytes, new shape: an alias buffer of the source's kind/offset.
      ValueInfo source = values.lookup(view.getViewSource());
      const auto &sourceBuffer = program.buffers(source.buffer);
      Value result = view.getViewDest();
      int32_t buffer = addBuffer(cast<RankedTensorType>(result.getType()), sourceBuffer.kind(),
                                 sourceBuffer.offset());
      values[result] = {buffer, source.root};
      continue;
    }
    if (auto group = fusion.groupOf.find(&op); group != fusion.groupOf.end()) {
      const FusionGroup &fused = fusion.groups[group->second];
      if (&op == fused.runsAt() && failed(emitGroup(fused)))
        return failure();
      continue;
    }
    auto *kernel = &addKernel();
    if (failed(describeKernel(&op, *kernel)))
      return failure();
    kernel->set_node(planNodeName(op.getLoc()));
    for (Value operand : op.getOperands())
      kernel->add_inputs(values.lookup(operand).buffer);
    kernel->set_launch_group(fusion.launchGroup.lookup(&op));
    for (Value result : op.getResults())
      kernel->add_outputs(resultBuffer(result));
  }
  for (auto [value, slot] : copyBack) {
    auto *kernel = &addKernel();
    kernel->set_op("copy");
    kernel->add_inputs(values.lookup(value).buffer);
    kernel->add_outputs(
        addBuffer(cast<RankedTensorType>(value.getType()), amprt::proto::Buffer::STATE, slot));
  }
  finishKernel();
  return success();
}

void ProgramLowering::planArenaOffsets() {
  // Live range of each arena root: from its definition (inputs: the start)
  // to its last use through any alias; returned values live to the end.
  int64_t end = position.size() + 1;
  // One request per root, in the order roots first appear (so plans are
  // deterministic); a 100k-op step has as many, so no map keeps more.
  llvm::DenseMap<Value, int32_t> rootIndex;
  std::vector<ArenaRequest> requests;
  for (auto &[value, info] : values) {
    if (program.buffers(info.buffer).kind() != amprt::proto::Buffer::ARENA)
      continue;
    Value root = info.root;
    auto [it, inserted] = rootIndex.try_emplace(root, static_cast<int32_t>(requests.size()));
    if (inserted) {
      Operation *def = root.getDefiningOp();
      int64_t first = def ? position.lookup(def) : 0;
      requests.push_back({byteSize(cast<RankedTensorType>(root.getType())), first, first});
    }
    ArenaRequest &request = requests[it->second];
    for (Operation *user : value.getUsers())
      request.lastUse =
          std::max(request.lastUse, isa<func::ReturnOp>(user) ? end : position.lookup(user));
  }
  for (auto &[value, slot] : copyBack)
    if (auto it = rootIndex.find(values.lookup(value).root); it != rootIndex.end())
      requests[it->second].lastUse = end;
  int64_t arenaBytes = 0;
  std::vector<int64_t> offsets = planArena(requests, arenaBytes);
  for (auto &[value, info] : values)
    if (program.buffers(info.buffer).kind() == amprt::proto::Buffer::ARENA)
      program.mutable_buffers(info.buffer)->set_offset(offsets[rootIndex.lookup(info.root)]);
  program.set_arena_bytes(arenaBytes);
}

void ProgramLowering::bindResults() {
  auto ret = cast<func::ReturnOp>(func.getBody().front().getTerminator());
  for (auto [i, value] : llvm::enumerate(ret.getOperands())) {
    auto roleAttr = getRole(func.getResultAttrDict(i));
    if (!roleAttr || roleAttr->first == role::kParam || roleAttr->first == role::kState)
      continue;
    auto *binding = program.add_outputs();
    binding->set_name(roleAttr->second.str());
    binding->set_role(roleAttr->first.drop_front(4).str());
    binding->set_buffer(values.lookup(value).buffer);
  }
}

LogicalResult ProgramLowering::run(TimingScope &timing) {
  program.set_name(func.getName().str());
  int64_t index = 1, results = func.getNumArguments();
  for (Operation &op : func.getBody().front()) {
    position[&op] = index++;
    results += op.getNumResults();
  }
  values.reserve(results); // grown by doubling, it would hold up to twice as much
  if (failed(timed(timing, "checks and arguments",
                   [&] { return success(succeeded(checkStatic()) && succeeded(assignArguments())); })))
    return failure();
  timed(timing, "fusion groups", [&] { planFusionGroups(); });
  timed(timing, "in-place updates", [&] { chooseInPlaceUpdates(); });
  if (failed(timed(timing, "kernels", [&] { return emitKernels(); })))
    return failure();
  timed(timing, "arena offsets", [&] { planArenaOffsets(); });
  timed(timing, "result bindings", [&] { bindResults(); });
  return success();
}

/// Persistent tensors from the function's parameter and state arguments;
/// initial values come from @forward's `amp.init` attributes.
void collectStates(func::FuncOp func, func::FuncOp forward, amprt::proto::Plan &plan,
                   llvm::StringMap<int> &stateIndex) {
  // Initial values: parameters' from @forward (the ONNX initializers), other
  // state's (the loss scale) from the function's own arguments.
  llvm::StringMap<DenseElementsAttr> inits;
  for (func::FuncOp source : {forward, func})
    for (unsigned i = 0; i < source.getNumArguments(); ++i)
      if (auto r = getRole(source.getArgAttrDict(i)))
        if (auto init = source.getArgAttrOfType<DenseElementsAttr>(i, role::kInit))
          inits[r->second] = init;
  for (unsigned i = 0; i < func.getNumArguments(); ++i) {
    auto r = getRole(func.getArgAttrDict(i));
    if (!r || (r->first != role::kParam && r->first != role::kState))
      continue;
    auto type = cast<RankedTensorType>(func.getArgument(i).getType());
    auto *state = plan.add_states();
    state->set_name(r->second.str());
    state->set_role(r->first.drop_front(4).str());
    state->mutable_type()->set_dtype(*dtypeOf(type.getElementType()));
    for (int64_t d : type.getShape())
      state->mutable_type()->add_shape(d);
    if (auto init = inits.lookup(r->second)) {
      if (init.isSplat()) {
        ArrayRef<char> raw = init.getRawData();
        std::string bytes;
        for (int64_t e = 0; e < type.getNumElements(); ++e)
          bytes.append(raw.data(), raw.size());
        state->set_init(bytes);
      } else {
        state->set_init(std::string(init.getRawData().data(), init.getRawData().size()));
      }
    }
    stateIndex[r->second] = plan.states_size() - 1;
  }
}

} // namespace

LogicalResult mlir::amp::lowerToPlanInParts(ModuleOp module, StringRef source,
                                           const PlanPartSink &emit, TimingScope *timingScope,
                                           const PlanLoweringOptions &options) {
  TimingScope untimed;
  TimingScope &timing = timingScope ? *timingScope : untimed;
  auto forward = module.lookupSymbol<func::FuncOp>("forward");
  if (!forward)
    return module.emitError("no func.func @forward to lower");
  // Each part on an arena of its own, freed once written: a 100k-op step's
  // buffers are a few hundred thousand small messages, which an arena keeps
  // in 64 KB blocks without malloc's per-object header and rounding.
  google::protobuf::ArenaOptions arenaOptions;
  arenaOptions.start_block_size = 64 << 10;
  arenaOptions.max_block_size = 64 << 10;
  auto emitPart = [&](const PlanPart &part) {
    return timed(timing, "plan serialization", [&] { return emit(part); });
  };
  llvm::StringMap<int> stateIndex;
  // Without @train_step (no --amp-pipeline) the plan is for inference only:
  // its state is @forward's parameters and its train program stays empty.
  auto trainStep = module.lookupSymbol<func::FuncOp>("train_step");
  if (failed(checkNamesAreUtf8(forward)) || (trainStep && failed(checkNamesAreUtf8(trainStep))))
    return failure();
  {
    google::protobuf::Arena arena(arenaOptions);
    auto &part = *google::protobuf::Arena::CreateMessage<amprt::proto::Plan>(&arena);
    part.set_format_version(amprt::kPlanFormatVersion);
    part.set_source(source.str());
    auto precision = module->getAttrOfType<StringAttr>("amp.precision");
    part.set_precision(precision ? precision.str() : "fp32");
    timed(timing, "states",
          [&] { collectStates(trainStep ? trainStep : forward, forward, part, stateIndex); });
    if (failed(emitPart({part, {}, {}})))
      return failure();
  }
  auto lowerProgram = [&](func::FuncOp func, StringRef timerName,
                          amprt::proto::Program *(amprt::proto::Plan::*program)()) {
    google::protobuf::Arena arena(arenaOptions);
    auto &part = *google::protobuf::Arena::CreateMessage<amprt::proto::Plan>(&arena);
    std::string kernels;
    std::map<std::string, int> kernelsByOp;
    { // the lowering's own tables go before the part is written
      TimingScope scope = timing.nest(timerName);
      ProgramLowering lowering(func, stateIndex, *(part.*program)(), options.encodeKernels);
      if (failed(lowering.run(scope)))
        return failure();
      kernels = lowering.takeKernels();
      kernelsByOp = lowering.takeKernelsByOp();
    }
    return emitPart({part, kernels, kernelsByOp});
  };
  if (trainStep) {
    if (failed(lowerProgram(trainStep, "train_step program", &amprt::proto::Plan::mutable_train)))
      return failure();
    if (options.releaseTrainStep)
      trainStep.erase();
  }
  return lowerProgram(forward, "forward program", &amprt::proto::Plan::mutable_eval);
}

LogicalResult mlir::amp::lowerToPlan(ModuleOp module, StringRef source,
                                     amprt::proto::Plan &plan, TimingScope *timing) {
  return lowerToPlanInParts(
      module, source,
      [&](const PlanPart &part) {
        plan.MergeFrom(part.plan);
        return success();
      },
      timing);
}
