//===- TrainingInfo.cpp - a model's TrainingInfoProto -> @train_step -------===//
//
// ONNX's own training description: a model's `training_info` holds an
// `algorithm` graph (loss, Gradient and optimizer nodes of
// ai.onnx.preview.training, whose training step is the inference graph and
// the algorithm concatenated), `update_binding`s (each initializer the step
// updates, and the algorithm output that is its new value) and an
// `initialization` graph with its bindings (initial values).
//
// The combined graph is imported into @train_step by the ordinary rules:
// the initializers the bindings update are its step state (amp.state, or
// amp.param for those a Gradient node differentiates with respect to), the
// other initializers constants; its results are the bound values, then the
// loss (what the Gradient node differentiates). @forward is the inference
// graph alone. Initial values must be constants (initializers of the
// initialization graph, or its Constant nodes): random initializers are
// refused, naming the node.
//
//===----------------------------------------------------------------------===//

#include "OnnxImporterImpl.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/Verifier.h"

using namespace mlir;
using namespace mlir::amp;
using namespace mlir::amp::onnx_import;

namespace {

const onnx::TensorProto *findInitializer(onnx::GraphProto &graph, const std::string &name) {
  for (const onnx::TensorProto &tensor : graph.initializer())
    if (tensor.name() == name)
      return &tensor;
  return nullptr;
}

/// The initial values the initialization graph gives, into the inference
/// or algorithm graph's initializers.
LogicalResult applyInitialization(OnnxImporter &im, onnx::ModelProto &model,
                                  onnx::TrainingInfoProto &info) {
  onnx::GraphProto &init = *info.mutable_initialization();
  for (const onnx::StringStringEntryProto &binding : info.initialization_binding()) {
    onnx::TensorProto value;
    if (const onnx::TensorProto *tensor = findInitializer(init, binding.value())) {
      value = *tensor;
    } else {
      const onnx::NodeProto *producer = nullptr;
      for (const onnx::NodeProto &node : init.node())
        for (const std::string &output : node.output())
          if (output == binding.value())
            producer = &node;
      if (!producer)
        return im.fileError() << "initialization_binding of '" << binding.key()
                              << "': the initialization graph computes no '"
                              << binding.value() << "'";
      const onnx::AttributeProto *constant = nullptr;
      for (const onnx::AttributeProto &attr : producer->attribute())
        if (attr.name() == "value" && attr.type() == onnx::AttributeProto::TENSOR)
          constant = &attr;
      if (producer->op_type() != "Constant" || !constant)
        return im.nodeError(*producer)
               << "computes the initial value of '" << binding.key()
               << "': only constant initial values (initializers or Constant nodes with a "
                  "tensor value) are supported";
      value = constant->t();
    }
    onnx::TensorProto *target = nullptr;
    for (onnx::GraphProto *graph : {model.mutable_graph(), info.mutable_algorithm()})
      for (onnx::TensorProto &tensor : *graph->mutable_initializer())
        if (tensor.name() == binding.key())
          target = &tensor;
    if (!target)
      return im.fileError() << "initialization_binding names '" << binding.key()
                            << "', which is no initializer of the model or its algorithm";
    bool sameShape = std::equal(value.dims().begin(), value.dims().end(),
                                target->dims().begin(), target->dims().end());
    if (value.data_type() != target->data_type() || !sameShape)
      return im.fileError() << "initialization_binding of '" << binding.key()
                            << "': the initial value's type or shape is not the initializer's";
    value.set_name(binding.key());
    *target = value;
  }
  return success();
}

/// The combined graph the algorithm trains with; `roles` receives the role
/// of each updated initializer, `outputs` the step's results in order
/// (update bindings, then the loss).
FailureOr<onnx::ModelProto> combinedModel(OnnxImporter &im, const onnx::ModelProto &model,
                                          const onnx::TrainingInfoProto &info,
                                          llvm::StringMap<StringRef> &roles,
                                          SmallVectorImpl<std::string> &updated,
                                          std::string &loss) {
  onnx::ModelProto combined = model;
  combined.clear_training_info();
  onnx::GraphProto &graph = *combined.mutable_graph();
  const onnx::GraphProto &algorithm = info.algorithm();
  for (const auto &input : algorithm.input())
    *graph.add_input() = input;
  for (const auto &tensor : algorithm.initializer())
    *graph.add_initializer() = tensor;
  for (const auto &node : algorithm.node())
    *graph.add_node() = node;
  for (const auto &value : algorithm.value_info())
    *graph.add_value_info() = value;

  // What a Gradient node differentiates with respect to is trained; its y
  // is the loss.
  llvm::StringSet<> differentiated;
  for (const onnx::NodeProto &node : algorithm.node()) {
    if (node.op_type() != "Gradient" || node.domain() != "ai.onnx.preview.training")
      continue;
    if (!loss.empty())
      return im.nodeError(node) << "a second Gradient node: one loss per training algorithm "
                                   "is supported";
    for (const onnx::AttributeProto &attr : node.attribute()) {
      if (attr.name() == "xs")
        for (const std::string &x : attr.strings())
          differentiated.insert(x);
      if (attr.name() == "y" && loss.empty())
        loss = attr.s();
    }
  }
  if (loss.empty())
    return im.fileError() << "the training algorithm has no ai.onnx.preview.training Gradient "
                             "node (its y is the step's loss)";

  llvm::StringSet<> initializers;
  for (const auto &tensor : graph.initializer())
    initializers.insert(tensor.name());
  graph.clear_output();
  auto declare = [&](const std::string &name) {
    for (const auto *list : {&algorithm.output(), &algorithm.value_info(), &model.graph().output()})
      for (const onnx::ValueInfoProto &value : *list)
        if (value.name() == name) {
          *graph.add_output() = value;
          return;
        }
    // Undeclared (the loss, usually): an f32 scalar, which the step's loss
    // must be.
    onnx::ValueInfoProto *output = graph.add_output();
    output->set_name(name);
    output->mutable_type()->mutable_tensor_type()->set_elem_type(onnx::TensorProto::FLOAT);
    output->mutable_type()->mutable_tensor_type()->mutable_shape();
  };
  for (const onnx::StringStringEntryProto &binding : info.update_binding()) {
    if (!initializers.contains(binding.key()))
      return im.fileError() << "update_binding names '" << binding.key()
                            << "', which is no initializer of the model or its algorithm";
    if (roles.count(binding.key()))
      return im.fileError() << "update_binding updates '" << binding.key() << "' twice";
    roles[binding.key()] = differentiated.contains(binding.key()) ? role::kParam : role::kState;
    updated.push_back(binding.key());
    declare(binding.value());
  }
  if (updated.empty())
    return im.fileError() << "the training algorithm has no update_binding: it trains nothing";
  declare(loss);
  return combined;
}

/// The imported combined graph as @train_step: the bound results take their
/// initializer's role and name, then comes the loss, then the state the
/// importer adds (running averages, a dropout counter); integer inputs a
/// loss reads as labels are the step's labels.
LogicalResult finishTrainStep(OnnxImporter &im, func::FuncOp func,
                              const llvm::StringMap<StringRef> &roles,
                              ArrayRef<std::string> updated) {
  Builder b(func.getContext());
  auto ret = cast<func::ReturnOp>(func.getBody().front().getTerminator());
  unsigned count = updated.size();
  Value loss = ret.getOperand(count);
  auto lossType = cast<RankedTensorType>(loss.getType());
  if (lossType.getRank() != 0 || !lossType.getElementType().isF32())
    return im.fileError() << "the loss the Gradient node differentiates must be an f32 scalar, "
                             "got "
                          << lossType;
  SmallVector<DictionaryAttr> resultAttrs;
  for (auto [i, name] : llvm::enumerate(updated)) {
    BlockArgument arg;
    for (BlockArgument candidate : func.getArguments())
      if (auto role = getRole(func.getArgAttrDict(candidate.getArgNumber()));
          role && role->second == name)
        arg = candidate;
    if (!arg || arg.getType() != ret.getOperand(i).getType())
      return im.fileError() << "the update of '" << name << "' has type "
                            << ret.getOperand(i).getType() << ", not the initializer's";
    resultAttrs.push_back(roleAttrs(b, roles.lookup(name), name));
  }
  resultAttrs.push_back(roleAttrs(b, role::kLoss, "loss"));
  for (unsigned i = count + 1; i < ret.getNumOperands(); ++i)
    resultAttrs.push_back(func.getResultAttrDict(i));
  func.setAllResultAttrs(resultAttrs);
  for (BlockArgument arg : func.getArguments()) {
    auto role = getRole(func.getArgAttrDict(arg.getArgNumber()));
    bool isLabel = role && role->first == role::kInput &&
                   llvm::any_of(arg.getUsers(), [](Operation *user) {
                     return isa<SoftmaxCrossEntropyOp>(user);
                   });
    if (isLabel)
      func.setArgAttrs(arg.getArgNumber(), roleAttrs(b, role::kLabel, role->second));
  }
  func.setSymName("train_step");
  return success();
}

} // namespace

OwningOpRef<ModuleOp> mlir::amp::onnx_import::importTrainingInfo(OnnxImporter &im,
                                                                 onnx::ModelProto &model) {
  if (model.training_info_size() != 1) {
    im.fileError() << "the model has " << model.training_info_size()
                   << " TrainingInfoProtos; one is supported";
    return nullptr;
  }
  onnx::TrainingInfoProto &info = *model.mutable_training_info(0);
  if (failed(applyInitialization(im, model, info)))
    return nullptr;
  llvm::StringMap<StringRef> roles;
  SmallVector<std::string> updated;
  std::string loss;
  auto combined = combinedModel(im, model, info, roles, updated, loss);
  if (failed(combined))
    return nullptr;

  OnnxImporter stepImporter(im.path, im.context, im.options);
  stepImporter.initializerRoles = &roles;
  stepImporter.seedsLoss = true;
  OwningOpRef<ModuleOp> module = stepImporter.importModel(*combined);
  if (!module)
    return nullptr;
  auto step = module->lookupSymbol<func::FuncOp>("forward");
  if (failed(finishTrainStep(im, step, roles, updated)))
    return nullptr;

  // The inference graph alone, with the same parameters.
  onnx::ModelProto inference = model;
  inference.clear_training_info();
  for (const onnx::TensorProto &tensor : info.algorithm().initializer())
    if (roles.count(tensor.name()))
      roles.erase(tensor.name()); // not in the inference graph
  OnnxImporter forwardImporter(im.path, im.context, im.options);
  forwardImporter.initializerRoles = &roles;
  OwningOpRef<ModuleOp> forwardModule = forwardImporter.importModel(inference);
  if (!forwardModule)
    return nullptr;
  auto forward = forwardModule->lookupSymbol<func::FuncOp>("forward");
  forward->moveBefore(step);
  (*module)->setAttr(kImportedStepAttr, UnitAttr::get(im.context));
  if (failed(mlir::verify(*module))) {
    im.fileError() << "the imported training step failed verification";
    return nullptr;
  }
  return module;
}
