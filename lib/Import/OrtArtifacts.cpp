//===- OrtArtifacts.cpp - onnxruntime-training artifacts -> @train_step ----===//
//
// An artifact set of onnxruntime.training.artifacts.generate_artifacts is
// imported into the @train_step form amp-build-train-step makes, so that
// autocast, loss scaling and the runtime treat it like any other step:
//
//   checkpoint           trainable parameters (amp.param), frozen ones
//                        (constants, or step state where a rule reads them
//                        as running averages), the optimizer's saved state
//   training_model.onnx  forward, loss and gradient ops, imported by their
//                        rules (OrtGradientRules.cpp for com.microsoft's);
//                        each InPlaceAccumulatorV2 names a parameter's
//                        gradient: the accumulation itself is the pipeline's
//                        (accumulate=K), and ORT's buffers and
//                        lazy_reset_grad flag are dropped
//   optimizer_model.onnx AdamWOptimizer or SGDOptimizerV2: its attributes
//                        become one amp update per parameter
//
// Which values are parameters comes from the checkpoint, which are their
// gradients from the accumulators (their `value` operand; ORT binds an
// accumulator's buffer to its parameter as `<param>_grad.accumulation.buffer`),
// and the loss is the graph's one output that is neither. @forward (for
// evaluation and export) is the part of the step that computes what the loss
// reads: the model's output.
//
//===----------------------------------------------------------------------===//

#include "OnnxImporterImpl.h"
#include "OrtCheckpoint.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/IRMapping.h"
#include "mlir/IR/Verifier.h"
#include "mlir/Transforms/RegionUtils.h"
#include "llvm/ADT/SetVector.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/Path.h"

using namespace mlir;
using namespace mlir::amp;
using namespace mlir::amp::onnx_import;

namespace {

constexpr llvm::StringLiteral kTrainingModel = "training_model.onnx",
                              kOptimizerModel = "optimizer_model.onnx",
                              kCheckpoint = "checkpoint",
                              kBufferSuffix = "_grad.accumulation.buffer";

/// ORT's default learning rate, used when the checkpoint saved none
/// (onnxruntime-training's GroupOptimizerState).
constexpr float kDefaultLearningRate = 1e-3f;

std::string join(StringRef folder, StringRef file) {
  SmallString<256> path(folder);
  llvm::sys::path::append(path, file);
  return std::string(path);
}

/// The optimizer model's one update node, as amp update attributes.
struct OptimizerSpec {
  bool adamw = true;
  double beta1 = 0.9, beta2 = 0.999, eps = 1e-8, weightDecay = 0;
  bool huggingface = false;
};

bool isDomain(const onnx::NodeProto &node, StringRef domain) { return node.domain() == domain; }

FailureOr<OptimizerSpec> readOptimizer(OnnxImporter &im, const onnx::ModelProto &model) {
  const onnx::GraphProto &graph = model.graph();
  if (graph.node_size() != 1)
    return im.fileError() << "expects one optimizer node (com.microsoft AdamWOptimizer or "
                             "SGDOptimizerV2), found "
                          << graph.node_size() << " nodes";
  const onnx::NodeProto &node = graph.node(0);
  OptimizerSpec spec;
  if (isDomain(node, "com.microsoft") && node.op_type() == "SGDOptimizerV2") {
    spec.adamw = false;
    return spec;
  }
  if (!isDomain(node, "com.microsoft") || node.op_type() != "AdamWOptimizer")
    return im.nodeError(node) << "unsupported optimizer op '" << node.op_type()
                              << "' of domain '" << node.domain()
                              << "' (supported: com.microsoft AdamWOptimizer, SGDOptimizerV2)";
  auto alpha = im.floatAttr(node, "alpha", 0.9f), beta = im.floatAttr(node, "beta", 0.999f),
       epsilon = im.floatAttr(node, "epsilon", 1e-8f),
       decay = im.floatAttr(node, "weight_decay", 0.0f);
  auto mode = im.intAttr(node, "adam_mode", 0), correct = im.intAttr(node, "correct_bias", 1);
  if (failed(alpha) || failed(beta) || failed(epsilon) || failed(decay) || failed(mode) ||
      failed(correct))
    return failure();
  if (*mode != 0 && *mode != 1)
    return im.nodeError(node) << "adam_mode " << *mode << " is not 0 or 1";
  if (*correct != 1)
    return im.nodeError(node) << "correct_bias 0 (no bias correction) is not supported";
  if (node.input_size() > 6 && !node.input(6).empty())
    return im.nodeError(node) << "the update_signal input is not supported";
  spec.beta1 = *alpha;
  spec.beta2 = *beta;
  spec.eps = *epsilon;
  spec.weightDecay = *decay;
  spec.huggingface = *mode == 1;
  return spec;
}

/// A checkpoint tensor as an ONNX initializer.
void addInitializer(onnx::GraphProto &graph, const ort::CheckpointTensor &tensor) {
  onnx::TensorProto *init = graph.add_initializer();
  init->set_name(tensor.name);
  init->set_data_type(onnx::TensorProto::FLOAT);
  for (int64_t dim : tensor.dims)
    init->add_dims(dim);
  init->set_raw_data(tensor.bytes.str());
}

/// What the rewritten training graph computes: the loss, then the gradient
/// of each trainable parameter in the checkpoint's order.
struct TrainingGraph {
  std::string loss, modelOutput; // modelOutput: what the loss node reads first
};

/// Makes the training graph a plain ONNX graph of parameters, forward and
/// gradient ops: the checkpoint's tensors as initializers, the accumulators
/// and their buffers and flag gone, the gradients graph outputs.
FailureOr<TrainingGraph> rewriteTrainingGraph(OnnxImporter &im, onnx::GraphProto &graph,
                                              const ort::Checkpoint &checkpoint) {
  llvm::StringSet<> initializers, trainable;
  for (const auto &init : graph.initializer())
    initializers.insert(init.name());
  for (const auto *tensors : {&checkpoint.trainable, &checkpoint.frozen})
    for (const ort::CheckpointTensor &tensor : *tensors) {
      if (!initializers.insert(tensor.name).second)
        return im.fileError() << "the checkpoint's parameter '" << tensor.name
                              << "' is also an initializer of the training graph";
      addInitializer(graph, tensor);
    }
  for (const ort::CheckpointTensor &tensor : checkpoint.trainable)
    trainable.insert(tensor.name);

  // Accumulators: each names a parameter's gradient.
  llvm::StringMap<std::string> gradientOf;
  llvm::StringSet<> dropped; // the accumulators' buffers, flags and outputs
  google::protobuf::RepeatedPtrField<onnx::NodeProto> kept;
  for (onnx::NodeProto &node : *graph.mutable_node()) {
    if (!(isDomain(node, "com.microsoft") && node.op_type() == "InPlaceAccumulatorV2")) {
      kept.Add(std::move(node));
      continue;
    }
    StringRef buffer = node.input_size() > 1 ? StringRef(node.input(0)) : StringRef();
    if (!buffer.ends_with(kBufferSuffix))
      return im.nodeError(node) << "accumulates into '" << buffer
                                << "', which is not a gradient buffer (<parameter>"
                                << kBufferSuffix << ")";
    StringRef param = buffer.drop_back(kBufferSuffix.size());
    if (!trainable.contains(param))
      return im.nodeError(node) << "accumulates the gradient of '" << param
                                << "', which is not a trainable parameter of the checkpoint";
    if (!gradientOf.try_emplace(param, node.input(1)).second)
      return im.nodeError(node) << "accumulates a second gradient of '" << param << "'";
    for (const std::string &name : node.input())
      if (&name != &node.input(1))
        dropped.insert(name);
    for (const std::string &name : node.output())
      dropped.insert(name);
  }
  graph.mutable_node()->Swap(&kept);
  for (const onnx::NodeProto &node : graph.node())
    for (const std::string &name : node.input())
      if (dropped.contains(name))
        return im.nodeError(node) << "reads '" << name
                                  << "', an accumulator's buffer, flag or result";
  for (const ort::CheckpointTensor &tensor : checkpoint.trainable)
    if (!gradientOf.count(tensor.name))
      return im.fileError() << "the training graph accumulates no gradient of the trainable "
                               "parameter '"
                            << tensor.name << "'";

  // Inputs: the batch only (parameters are initializers now).
  google::protobuf::RepeatedPtrField<onnx::ValueInfoProto> inputs;
  for (onnx::ValueInfoProto &input : *graph.mutable_input())
    if (!dropped.contains(input.name()) && !initializers.contains(input.name()))
      inputs.Add(std::move(input));
  graph.mutable_input()->Swap(&inputs);

  // Outputs: the loss (the one that is no accumulator's), then the gradients.
  TrainingGraph result;
  onnx::ValueInfoProto loss;
  for (const onnx::ValueInfoProto &output : graph.output()) {
    if (dropped.contains(output.name()))
      continue;
    if (!result.loss.empty())
      return im.fileError() << "the training graph has outputs '" << result.loss << "' and '"
                            << output.name() << "'; one loss is expected";
    result.loss = output.name();
    loss = output;
  }
  if (result.loss.empty())
    return im.fileError() << "the training graph outputs no loss";
  graph.clear_output();
  *graph.add_output() = loss;
  for (const ort::CheckpointTensor &tensor : checkpoint.trainable) {
    onnx::ValueInfoProto *output = graph.add_output();
    output->set_name(gradientOf[tensor.name]);
    auto *type = output->mutable_type()->mutable_tensor_type();
    type->set_elem_type(onnx::TensorProto::FLOAT);
    for (int64_t dim : tensor.dims)
      type->mutable_shape()->add_dim()->set_dim_value(dim);
  }
  for (const onnx::NodeProto &node : graph.node())
    for (const std::string &name : node.output())
      if (name == result.loss && node.input_size() > 0)
        result.modelOutput = node.input(0);
  if (result.modelOutput.empty())
    return im.fileError() << "the loss '" << result.loss << "' is computed by no node";
  return result;
}

/// The step's arguments and results, assembled (as amp-build-train-step's).
struct Signature {
  SmallVector<Type> argTypes;
  SmallVector<DictionaryAttr> argAttrs;
  SmallVector<Value> results;
  SmallVector<DictionaryAttr> resultAttrs;
};

/// The checkpoint's saved moment `index` of `param` as an initial value.
FailureOr<Attribute> savedMoment(OnnxImporter &im, const ort::Checkpoint &checkpoint,
                                 StringRef param, size_t index, RankedTensorType type) {
  if (!checkpoint.optimizer)
    return Attribute();
  auto found = checkpoint.optimizer->moments.find(param);
  if (found == checkpoint.optimizer->moments.end() || found->second.size() <= index)
    return im.fileError() << "the checkpoint's optimizer state has no moment " << index
                          << " of '" << param << "'";
  const ort::CheckpointTensor &moment = found->second[index];
  if (static_cast<int64_t>(moment.bytes.size()) != type.getNumElements() * 4)
    return im.fileError() << "the checkpoint's moment " << index << " of '" << param
                          << "' does not have the parameter's shape";
  return Attribute(DenseElementsAttr::getFromRawBuffer(
      type, ArrayRef<char>(moment.bytes.data(), moment.bytes.size())));
}

/// Turns the imported @forward (loss, gradients, running averages) into
/// @train_step: labels, optimizer state and one update per parameter.
LogicalResult buildTrainStep(OnnxImporter &im, func::FuncOp func,
                             const ort::Checkpoint &checkpoint, const OptimizerSpec &optimizer) {
  OpBuilder b(func.getContext());
  Block &body = func.getBody().front();
  auto ret = cast<func::ReturnOp>(body.getTerminator());
  size_t params = checkpoint.trainable.size();
  Value loss = ret.getOperand(0);
  auto lossType = cast<RankedTensorType>(loss.getType());
  if (lossType.getRank() != 0 || !lossType.getElementType().isF32())
    return im.fileError() << "the training graph's loss must be an f32 scalar, got " << lossType;
  int seeds = 0;
  func.walk([&](ConstantOp op) { seeds += op->hasAttr(kLossSeedAttr); });
  if (seeds != 1)
    return im.fileError() << "the training graph's loss gradient must be seeded by one constant "
                             "1 (found "
                          << seeds << ")";

  Signature sig;
  llvm::StringMap<BlockArgument> paramArgs;
  for (BlockArgument arg : body.getArguments()) {
    DictionaryAttr attrs = func.getArgAttrDict(arg.getArgNumber());
    auto role = getRole(attrs);
    // Integer batch inputs read as a loss's labels are the step's labels.
    bool isLabel = role && role->first == role::kInput &&
                   llvm::any_of(arg.getUsers(), [](Operation *user) {
                     return isa<SoftmaxCrossEntropyOp, SoftmaxCrossEntropyGradOp>(user);
                   });
    if (isLabel)
      attrs = roleAttrs(b, role::kLabel, role->second);
    if (role && role->first == role::kParam)
      paramArgs[role->second] = arg;
    sig.argTypes.push_back(arg.getType());
    sig.argAttrs.push_back(attrs);
  }
  unsigned next = body.getNumArguments();
  llvm::StringSet<> taken;
  for (DictionaryAttr attrs : sig.argAttrs)
    if (auto role = getRole(attrs))
      taken.insert(role->second);
  bool collision = false;
  auto addState = [&](Type type, StringRef name, Attribute init) {
    collision |= !taken.insert(name).second;
    sig.argTypes.push_back(type);
    sig.argAttrs.push_back(roleAttrs(b, role::kState, name, init));
    return next++;
  };

  // Optimizer state: AdamW's moments and step, SGD's (unused) momentum
  // buffer, initialised from the checkpoint where ORT saved them.
  struct Update {
    std::string name;
    BlockArgument param;
    Value grad;
    SmallVector<unsigned> states;
  };
  SmallVector<Update> updates;
  for (auto [i, tensor] : llvm::enumerate(checkpoint.trainable)) {
    BlockArgument param = paramArgs.lookup(tensor.name);
    if (!param)
      return im.fileError() << "the trainable parameter '" << tensor.name
                            << "' is not read by the training graph";
    Update update{tensor.name, param, ret.getOperand(1 + i), {}};
    auto type = cast<RankedTensorType>(param.getType());
    if (update.grad.getType() != type)
      return im.fileError() << "the gradient of '" << tensor.name << "' has type "
                            << update.grad.getType() << ", not the parameter's " << type;
    SmallVector<StringRef, 2> names =
        optimizer.adamw ? SmallVector<StringRef, 2>{".exp_avg", ".exp_avg_sq"}
                        : SmallVector<StringRef, 2>{".momentum_buffer"};
    for (auto [k, suffix] : llvm::enumerate(names)) {
      auto init = optimizer.adamw ? savedMoment(im, checkpoint, tensor.name, k, type)
                                  : FailureOr<Attribute>(Attribute());
      if (failed(init))
        return failure();
      update.states.push_back(addState(type, tensor.name + suffix.str(), *init));
    }
    updates.push_back(std::move(update));
  }
  auto stepType = RankedTensorType::get({}, b.getI64Type());
  int64_t savedStep = checkpoint.optimizer ? checkpoint.optimizer->step : 0;
  unsigned stepIndex = addState(stepType, "step", DenseElementsAttr::get(stepType, savedStep));
  if (collision)
    return im.fileError() << "a parameter's name is one the optimizer's state takes (step, or "
                             "<parameter>.exp_avg, .exp_avg_sq, .momentum_buffer)";
  SmallVector<unsigned> indices(sig.argTypes.size() - body.getNumArguments(),
                                body.getNumArguments());
  SmallVector<Type> newTypes(ArrayRef<Type>(sig.argTypes).drop_front(body.getNumArguments()));
  SmallVector<DictionaryAttr> newAttrs(
      ArrayRef<DictionaryAttr>(sig.argAttrs).drop_front(body.getNumArguments()));
  SmallVector<Location> locs(newTypes.size(), func.getLoc());
  if (failed(func.insertArguments(indices, newTypes, newAttrs, locs)))
    return failure();
  func.setAllArgAttrs(sig.argAttrs);

  b.setInsertionPoint(ret);
  double lr = checkpoint.optimizer ? checkpoint.optimizer->learningRate : kDefaultLearningRate;
  Value step = body.getArgument(stepIndex);
  for (Update &update : updates) {
    Location loc = NameLoc::get(b.getStringAttr(update.name + ".update"), func.getLoc());
    Value param = update.param, state0 = body.getArgument(update.states[0]);
    Type type = param.getType();
    if (optimizer.adamw) {
      auto op = AdamWUpdateOp::create(
          b, loc, type, type, type, param, update.grad, state0,
          body.getArgument(update.states[1]), step, /*skip=*/Value(), b.getF64FloatAttr(lr),
          b.getF64FloatAttr(optimizer.beta1), b.getF64FloatAttr(optimizer.beta2),
          b.getF64FloatAttr(optimizer.eps), b.getF64FloatAttr(optimizer.weightDecay),
          optimizer.huggingface ? b.getUnitAttr() : UnitAttr());
      sig.results.append({Value(op.getNewParam()), op.getNewExpAvg(), op.getNewExpAvgSq()});
      sig.resultAttrs.append({roleAttrs(b, role::kParam, update.name),
                              roleAttrs(b, role::kState, update.name + ".exp_avg"),
                              roleAttrs(b, role::kState, update.name + ".exp_avg_sq")});
    } else { // ORT's SGD: no momentum, no weight decay
      auto op = SgdUpdateOp::create(b, loc, type, type, param, update.grad, state0,
                                    /*skip=*/Value(), b.getF64FloatAttr(lr),
                                    b.getF64FloatAttr(0.0), b.getF64FloatAttr(0.0), UnitAttr());
      sig.results.append({Value(op.getNewParam()), op.getNewMomentumBuffer()});
      sig.resultAttrs.append({roleAttrs(b, role::kParam, update.name),
                              roleAttrs(b, role::kState, update.name + ".momentum_buffer")});
    }
  }
  // The running averages the forward ops update (the importer's state
  // results, after the loss and gradients), then the step and the loss.
  for (unsigned i = 1 + params; i < ret.getNumOperands(); ++i) {
    sig.results.push_back(ret.getOperand(i));
    sig.resultAttrs.push_back(func.getResultAttrDict(i));
  }
  sig.results.push_back(IncrementOp::create(b, func.getLoc(), stepType, step, Value()));
  sig.resultAttrs.push_back(roleAttrs(b, role::kState, "step"));
  sig.results.push_back(loss);
  sig.resultAttrs.push_back(roleAttrs(b, role::kLoss, "loss"));
  func::ReturnOp::create(b, ret.getLoc(), sig.results);
  ret.erase();
  func.setType(b.getFunctionType(body.getArgumentTypes(), ValueRange(sig.results).getTypes()));
  func.setAllResultAttrs(sig.resultAttrs);
  func.setSymName("train_step");
  // What nothing reads any more (the log_prob the loss gradient bypasses).
  for (Operation &op : llvm::make_early_inc_range(llvm::reverse(body)))
    if (isOpTriviallyDead(&op))
      op.erase();
  return success();
}

/// @forward: the ops of the step that compute the model's output (what the
/// loss reads), over the arguments they read.
LogicalResult buildForward(OnnxImporter &im, func::FuncOp step, StringRef outputName) {
  Block &body = step.getBody().front();
  auto ret = cast<func::ReturnOp>(body.getTerminator());
  Value loss;
  for (unsigned i = 0; i < ret.getNumOperands(); ++i)
    if (auto role = getRole(step.getResultAttrDict(i)); role && role->first == role::kLoss)
      loss = ret.getOperand(i);
  // The model's output is what the cross-entropy reads (its logits); other
  // losses do not say which of their inputs the model computed.
  auto lossOp = loss ? loss.getDefiningOp<SoftmaxCrossEntropyOp>() : nullptr;
  if (!lossOp)
    return im.fileError() << "the training graph's loss is not a SoftmaxCrossEntropyLoss: only "
                             "cross-entropy artifact sets are supported";
  Value output = lossOp.getLogits();

  llvm::SetVector<Operation *> slice;
  SmallVector<Value> worklist = {output};
  llvm::SmallPtrSet<Value, 16> seen;
  llvm::SetVector<BlockArgument> args;
  while (!worklist.empty()) {
    Value value = worklist.pop_back_val();
    if (!seen.insert(value).second)
      continue;
    if (auto arg = dyn_cast<BlockArgument>(value)) {
      args.insert(arg);
      continue;
    }
    Operation *op = value.getDefiningOp();
    if (slice.insert(op))
      llvm::append_range(worklist, op->getOperands());
  }

  OpBuilder b(step);
  auto forward = func::FuncOp::create(b, step.getLoc(), "forward", b.getFunctionType({}, {}));
  Block *forwardBody = forward.addEntryBlock();
  IRMapping mapping;
  SmallVector<DictionaryAttr> argAttrs;
  for (BlockArgument arg : body.getArguments()) // in the step's order
    if (args.contains(arg)) {
      mapping.map(arg, forwardBody->addArgument(arg.getType(), arg.getLoc()));
      argAttrs.push_back(step.getArgAttrDict(arg.getArgNumber()));
    }
  b.setInsertionPointToEnd(forwardBody);
  for (Operation &op : body.without_terminator())
    if (slice.contains(&op))
      b.clone(op, mapping);
  func::ReturnOp::create(b, step.getLoc(), ValueRange{mapping.lookup(output)});
  forward.setType(b.getFunctionType(forwardBody->getArgumentTypes(), {output.getType()}));
  forward.setAllArgAttrs(argAttrs);
  forward.setResultAttrs(0, roleAttrs(b, role::kOutput, outputName));
  return success();
}

} // namespace

bool mlir::amp::findOrtArtifactSet(StringRef path, std::string &folder) {
  std::string candidate = llvm::sys::fs::is_directory(path)
                              ? path.str()
                              : std::string(llvm::sys::path::parent_path(path));
  if (!llvm::sys::fs::is_directory(path) &&
      llvm::sys::path::filename(path) != kTrainingModel)
    return false;
  if (candidate.empty())
    candidate = ".";
  for (StringRef file : {kTrainingModel, kOptimizerModel, kCheckpoint})
    if (!llvm::sys::fs::is_regular_file(join(candidate, file)))
      return false;
  folder = candidate;
  return true;
}

OwningOpRef<ModuleOp> mlir::amp::importOrtArtifacts(StringRef folder, MLIRContext *context,
                                                    const OnnxImportOptions &options) {
  std::string trainingPath = join(folder, kTrainingModel);
  OnnxImporter im(trainingPath, context, options);
  auto checkpoint = ort::readCheckpoint(join(folder, kCheckpoint));
  if (!checkpoint) {
    emitError(FileLineColLoc::get(context, join(folder, kCheckpoint), 0, 0))
        << llvm::toString(checkpoint.takeError());
    return nullptr;
  }
  OnnxImporter optimizerReader(join(folder, kOptimizerModel), context, options);
  onnx::ModelProto optimizerModel;
  if (failed(optimizerReader.readModel(optimizerModel)))
    return nullptr;
  auto optimizer = readOptimizer(optimizerReader, optimizerModel);
  if (failed(optimizer))
    return nullptr;

  onnx::ModelProto model;
  if (failed(im.readModel(model)))
    return nullptr;
  auto graph = rewriteTrainingGraph(im, *model.mutable_graph(), *checkpoint);
  if (failed(graph))
    return nullptr;
  llvm::StringMap<StringRef> trainable;
  for (const ort::CheckpointTensor &tensor : checkpoint->trainable)
    trainable[tensor.name] = role::kParam;
  im.initializerRoles = &trainable;
  OwningOpRef<ModuleOp> module = im.importModel(model);
  if (!module)
    return nullptr;
  auto func = module->lookupSymbol<func::FuncOp>("forward");
  if (failed(buildTrainStep(im, func, *checkpoint, *optimizer)) ||
      failed(buildForward(im, func, graph->modelOutput)))
    return nullptr;
  // amp-build-train-step leaves an imported step as it is.
  (*module)->setAttr(kImportedStepAttr, UnitAttr::get(context));
  if (failed(mlir::verify(*module))) {
    im.fileError() << "the imported training step failed verification";
    return nullptr;
  }
  return module;
}
