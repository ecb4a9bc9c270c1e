//===- OnnxImporter.cpp - ONNX ModelProto -> amp dialect ------------------===//
//
// One walk over the (checked) graph, then ONNX shape inference as a
// cross-check. Each node is dispatched on (domain, op_type) to an import
// rule; unsupported combinations, bad attributes and shape mismatches become
// diagnostics that name the file, the node and its op type. Result shapes are
// computed by the amp dialect's own shape rules, so the importer and the
// verifiers agree.
//
//===----------------------------------------------------------------------===//

#include "OnnxImporterImpl.h"
#include "ExternalData.h"
#include "NewerOpsetSchemas.h"

#include "amprt/PlanFormat.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/Builders.h"
#include "mlir/IR/Diagnostics.h"
#include "mlir/IR/Verifier.h"
#include "llvm/Support/JSON.h"
#include "llvm/ADT/StringMap.h"
#include "llvm/ADT/StringSet.h"
#include "llvm/Support/GlobPattern.h"
#include "llvm/Support/MemoryBuffer.h"

#include "onnx/checker.h"
#include "onnx/onnx_pb.h"
#include "onnx/shape_inference/implementation.h"

#include <cstring>

using namespace mlir;
using namespace mlir::amp;
using namespace mlir::amp::onnx_import;


//===----------------------------------------------------------------------===//
// Model-level steps
//===----------------------------------------------------------------------===//

LogicalResult OnnxImporter::checkOpset(const onnx::ModelProto &model) {
  for (const auto &opset : model.opset_import()) {
    if (!opset.domain().empty() && opset.domain() != "ai.onnx") {
      domainOpsets[opset.domain()] = opset.version();
      continue;
    }
    if (opset.version() < kMinOnnxOpset || opset.version() > kMaxOnnxOpset)
      return fileError() << "unsupported opset " << opset.version()
                         << " (supported: " << kMinOnnxOpset << " to " << kMaxOnnxOpset << ")";
    // One entry only: the checker and the rules must read the same op set.
    if (this->opset)
      return fileError() << "the model imports the default domain twice (op sets "
                         << this->opset << " and " << opset.version() << ")";
    this->opset = opset.version();
  }
  // A model of other domains' ops only (an optimizer node test) needs none.
  bool usesDefault = llvm::any_of(model.graph().node(), [](const onnx::NodeProto &node) {
    return node.domain().empty() || node.domain() == "ai.onnx";
  });
  if (!this->opset && usesDefault)
    return fileError() << "the model imports no default-domain opset";
  return success();
}

/// Every node input must come from a graph input, an initializer or an
/// earlier node. Checked before the ONNX checker to give a precise message.
LogicalResult OnnxImporter::checkDefinitions(const onnx::GraphProto &graph) {
  llvm::StringSet<> defined;
  for (const auto &input : graph.input())
    defined.insert(input.name());
  for (const auto &tensor : graph.initializer())
    defined.insert(tensor.name());
  nodeIndex = 0;
  for (const auto &node : graph.node()) {
    for (const auto &name : node.input())
      if (!name.empty() && !defined.contains(name))
        return nodeError(node) << "input '" << name
                               << "' is not defined by any graph input, initializer or "
                                  "earlier node (missing initializer?)";
    for (const auto &name : node.output())
      defined.insert(name);
    ++nodeIndex;
  }
  nodeIndex = 0;
  return success();
}

/// Every shape within the runtime's tensor limits (rank, element count:
/// PlanFormat.h), checked before the ONNX checker, shape inference or the
/// importer compute a size from it.
LogicalResult OnnxImporter::checkShapeLimits(const onnx::GraphProto &graph) {
  auto check = [&](StringRef what, const std::string &name,
                   ArrayRef<int64_t> dims) -> LogicalResult {
    for (int64_t d : dims)
      if (d < 0)
        return fileError() << what << " '" << name << "' has a negative dimension " << d;
    std::string beyond = amprt::beyondTensorLimits(dims.data(), dims.size());
    if (!beyond.empty())
      return fileError() << what << " '" << name << "' has " << beyond;
    return success();
  };
  auto checkTensor = [&](const onnx::TensorProto &tensor) {
    SmallVector<int64_t> dims(tensor.dims().begin(), tensor.dims().end());
    return check("tensor", tensor.name(), dims);
  };
  auto checkValue = [&](const onnx::ValueInfoProto &info) {
    if (!info.type().has_tensor_type() || !info.type().tensor_type().has_shape())
      return success(); // refused, if used, where its type is read
    SmallVector<int64_t> dims; // symbolic dimensions count as 1 here
    for (const auto &dim : info.type().tensor_type().shape().dim())
      dims.push_back(dim.has_dim_value() ? dim.dim_value() : 1);
    return check("value", info.name(), dims);
  };
  for (const auto &tensor : graph.initializer())
    if (failed(checkTensor(tensor)))
      return failure();
  for (const auto *infos : {&graph.input(), &graph.output(), &graph.value_info()})
    for (const auto &info : *infos)
      if (failed(checkValue(info)))
        return failure();
  for (const auto &node : graph.node())
    for (const auto &attribute : node.attribute())
      if (attribute.has_t() && failed(checkTensor(attribute.t())))
        return failure();
  return success();
}

/// The node count and every name within PlanFormat.h's limits, checked
/// before anything is built per node or a name is copied into a location or
/// a message (the refusal names the node by its index, not its name).
LogicalResult OnnxImporter::checkGraphLimits(const onnx::GraphProto &graph) {
  if (graph.node_size() > options.maxNodes)
    return fileError() << "the graph has " << graph.node_size() << " nodes, above the limit of "
                       << options.maxNodes << " (amp-opt --onnx-max-nodes)";
  auto check = [&](const std::string &name, const Twine &what) -> LogicalResult {
    std::string beyond = amprt::beyondNameLimit(name);
    if (!beyond.empty())
      return fileError() << what << " is " << beyond;
    // Names reach the plan, whose proto3 strings must be UTF-8 to parse
    // (ONNX's proto2 strings need not be).
    if (!llvm::json::isUTF8(name))
      return fileError() << what << " is not valid UTF-8";
    return success();
  };
  for (int i = 0; i < graph.node_size(); ++i) {
    const onnx::NodeProto &node = graph.node(i);
    std::string what = "node #" + std::to_string(i);
    if (failed(check(node.name(), what + "'s name")) ||
        failed(check(node.op_type(), what + "'s op type")) ||
        failed(check(node.domain(), what + "'s domain")))
      return failure();
    for (const auto *names : {&node.input(), &node.output()})
      for (const std::string &name : *names)
        if (failed(check(name, what + "'s value name")))
          return failure();
    for (const auto &attribute : node.attribute())
      if (failed(check(attribute.name(), what + "'s attribute name")))
        return failure();
  }
  for (const auto &tensor : graph.initializer())
    if (failed(check(tensor.name(), "an initializer's name")))
      return failure();
  for (const auto *infos : {&graph.input(), &graph.output(), &graph.value_info()})
    for (const auto &info : *infos)
      if (failed(check(info.name(), "a graph value's name")))
        return failure();
  return success();
}

FailureOr<Type> OnnxImporter::elementType(int32_t onnxType) {
  switch (onnxType) {
  case onnx::TensorProto::FLOAT:
    return builder.getF32Type();
  case onnx::TensorProto::FLOAT16:
    return builder.getF16Type();
  case onnx::TensorProto::BFLOAT16:
    return builder.getBF16Type();
  case onnx::TensorProto::INT64:
    return builder.getI64Type();
  case onnx::TensorProto::INT32:
    return builder.getI32Type();
  case onnx::TensorProto::BOOL:
    return builder.getI1Type();
  default:
    return failure();
  }
}

FailureOr<RankedTensorType> OnnxImporter::valueType(const onnx::ValueInfoProto &info) {
  if (!info.type().has_tensor_type() || !info.type().tensor_type().has_shape())
    return fileError() << "value '" << info.name() << "' has no ranked tensor type";
  const auto &tensor = info.type().tensor_type();
  auto element = elementType(tensor.elem_type());
  if (failed(element))
    return fileError() << "value '" << info.name() << "' has unsupported element type "
                       << onnx::TensorProto::DataType_Name(
                              static_cast<onnx::TensorProto::DataType>(tensor.elem_type()));
  SmallVector<int64_t> shape;
  for (const auto &dim : tensor.shape().dim())
    shape.push_back(dim.has_dim_value() ? dim.dim_value() : ShapedType::kDynamic);
  return RankedTensorType::get(shape, *element);
}

/// An int32 or bool tensor's values widened to an int64 constant (the
/// importer folds integers in int64; booleans are 0/1).
FailureOr<DenseElementsAttr> OnnxImporter::int32TensorAttr(const onnx::TensorProto &tensor,
                                                           ArrayRef<int64_t> shape) {
  auto type = RankedTensorType::get(shape, builder.getI64Type());
  int64_t count = type.getNumElements();
  size_t width = tensor.data_type() == onnx::TensorProto::BOOL ? 1 : 4;
  SmallVector<int64_t> values;
  if (tensor.has_raw_data()) {
    if (tensor.raw_data().size() != static_cast<size_t>(count) * width)
      return fileError() << "tensor '" << tensor.name() << "' holds " << tensor.raw_data().size()
                         << " bytes, expected " << count * width;
    for (int64_t i = 0; i < count; ++i) {
      int32_t v = 0;
      if (width == 1)
        v = tensor.raw_data()[i] != 0;
      else
        std::memcpy(&v, tensor.raw_data().data() + 4 * i, 4);
      values.push_back(v);
    }
  } else if (tensor.int32_data_size() == count) {
    for (int32_t v : tensor.int32_data())
      values.push_back(width == 1 ? v != 0 : v);
  } else {
    return fileError() << "tensor '" << tensor.name() << "' has no data of the expected size";
  }
  return DenseElementsAttr::get(type, ArrayRef<int64_t>(values));
}

FailureOr<DenseElementsAttr> OnnxImporter::tensorAttr(const onnx::TensorProto &tensor) {
  if (tensor.data_location() == onnx::TensorProto::EXTERNAL)
    return fileError() << "tensor '" << tensor.name()
                       << "' uses external data, which is not supported";
  auto element = elementType(tensor.data_type());
  if (failed(element))
    return fileError() << "tensor '" << tensor.name() << "' has unsupported element type";
  SmallVector<int64_t> shape(tensor.dims().begin(), tensor.dims().end());
  if (element->isInteger(32) || element->isInteger(1)) // compile-time integers, as int64
    return int32TensorAttr(tensor, shape);
  auto type = RankedTensorType::get(shape, *element);
  int64_t count = type.getNumElements();
  if (tensor.has_raw_data()) {
    size_t width = element->isF32() ? 4 : element->isInteger(64) ? 8 : 2;
    if (tensor.raw_data().size() != static_cast<size_t>(count) * width)
      return fileError() << "tensor '" << tensor.name() << "' holds "
                         << tensor.raw_data().size() << " bytes, expected "
                         << count * width;
    return DenseElementsAttr::getFromRawBuffer(
        type, ArrayRef<char>(tensor.raw_data().data(), tensor.raw_data().size()));
  }
  if (element->isF32() && tensor.float_data_size() == count)
    return DenseElementsAttr::get(
        type, ArrayRef<float>(tensor.float_data().data(), tensor.float_data_size()));
  if (element->isInteger(64) && tensor.int64_data_size() == count)
    return DenseElementsAttr::get(
        type, ArrayRef<int64_t>(tensor.int64_data().data(), tensor.int64_data_size()));
  return fileError() << "tensor '" << tensor.name() << "' has no data of the expected size";
}

//===----------------------------------------------------------------------===//
// Operands, attributes, helpers
//===----------------------------------------------------------------------===//

FailureOr<Value> OnnxImporter::input(const onnx::NodeProto &node, int index,
                                     bool allowTransposed) {
  if (!hasInput(node, index))
    return nodeError(node) << "missing input #" << index;
  auto it = values.find(node.input(index));
  if (it == values.end())
    return nodeError(node) << "input '" << node.input(index)
                           << "' is not defined by any graph input, initializer or "
                              "earlier node (missing initializer?)";
  if (!it->second.value)
    return nodeError(node) << "input '" << node.input(index)
                           << "' is an integer or float64 constant, which this op does not take";
  if (it->second.transposed && !allowTransposed)
    return materializeTranspose(it->second);
  return it->second.value;
}

const GraphValue *OnnxImporter::integerInput(const onnx::NodeProto &node, int index) {
  auto it = hasInput(node, index) ? values.find(node.input(index)) : values.end();
  return it != values.end() && it->second.integerTensor ? &it->second : nullptr;
}

void OnnxImporter::defineIntegers(const onnx::NodeProto &node, int index,
                                  ArrayRef<int64_t> data, ArrayRef<int64_t> shape) {
  if (node.output_size() <= index || node.output(index).empty())
    return;
  GraphValue constant{Value(), SmallVector<int64_t>(data)};
  constant.integerTensor =
      DenseElementsAttr::get(RankedTensorType::get(shape, builder.getI64Type()), data);
  values[node.output(index)] = constant;
}

Value OnnxImporter::materializeTranspose(GraphValue &pending) {
  if (!pending.transposed)
    return pending.value;
  if (!pending.materialized) {
    auto type = cast<RankedTensorType>(pending.value.getType());
    auto swapped = RankedTensorType::get({type.getDimSize(1), type.getDimSize(0)},
                                         type.getElementType());
    pending.materialized = TransposeOp::create(builder, *pending.transposeLoc, swapped,
                                               pending.value, builder.getDenseI64ArrayAttr({1, 0}));
  }
  return pending.materialized;
}

FailureOr<float> OnnxImporter::floatConstantInput(const onnx::NodeProto &node, int index,
                                                  float fallback, StringRef what) {
  if (!hasInput(node, index))
    return fallback;
  auto value = input(node, index);
  if (failed(value))
    return failure();
  auto constant = value->getDefiningOp<ConstantOp>();
  auto elements = constant ? dyn_cast<DenseElementsAttr>(constant.getValue()) : nullptr;
  if (!elements || elements.getNumElements() != 1 || !isa<FloatType>(elements.getElementType()))
    return nodeError(node) << what << " must be a float constant scalar";
  return static_cast<float>(elements.getSplatValue<APFloat>().convertToDouble());
}

bool OnnxImporter::isTransposed(const onnx::NodeProto &node, int index) {
  auto it = hasInput(node, index) ? values.find(node.input(index)) : values.end();
  return it != values.end() && it->second.transposed;
}

/// The node that writes `name`, or null (a graph input or initializer).
static const onnx::NodeProto *producerOf(const onnx::GraphProto &graph, const std::string &name) {
  for (const auto &node : graph.node())
    for (const auto &output : node.output())
      if (output == name)
        return &node;
  return nullptr;
}

LogicalResult OnnxImporter::checkGraphOutput(const onnx::GraphProto &graph,
                                             const onnx::ValueInfoProto &info,
                                             Value produced) {
  const onnx::NodeProto *producer = producerOf(graph, info.name());
  auto refuse = [&]() -> InFlightDiagnostic {
    if (producer)
      return nodeError(*producer);
    return fileError();
  };
  if (!info.has_type())
    return success();
  auto declared = valueType(info);
  if (failed(declared))
    return failure();
  auto actual = cast<RankedTensorType>(produced.getType());
  auto expected = cast<RankedTensorType>(*declared);
  bool same = actual.getElementType() == expected.getElementType() &&
              actual.getRank() == expected.getRank();
  for (int64_t d = 0; same && d < actual.getRank(); ++d)
    same = ShapedType::isDynamic(expected.getDimSize(d)) ||
           ShapedType::isDynamic(actual.getDimSize(d)) ||
           expected.getDimSize(d) == actual.getDimSize(d);
  if (!same)
    return refuse() << "produces " << actual << " but the graph declares output '"
                    << info.name() << "' as " << expected;
  return success();
}

FailureOr<const onnx::AttributeProto *>
OnnxImporter::attribute(const onnx::NodeProto &node, StringRef name,
                        onnx::AttributeProto::AttributeType type) {
  for (const auto &attr : node.attribute()) {
    if (attr.name() != name)
      continue;
    if (attr.type() != type) {
      nodeError(node) << "attribute '" << name << "' is "
                      << onnx::AttributeProto::AttributeType_Name(attr.type())
                      << ", the spec says " << onnx::AttributeProto::AttributeType_Name(type);
      return failure();
    }
    return &attr;
  }
  return static_cast<const onnx::AttributeProto *>(nullptr);
}

FailureOr<int64_t> OnnxImporter::intAttr(const onnx::NodeProto &node, StringRef name,
                                         int64_t fallback) {
  auto attr = attribute(node, name, onnx::AttributeProto::INT);
  if (failed(attr))
    return failure();
  return *attr ? (*attr)->i() : fallback;
}

FailureOr<float> OnnxImporter::floatAttr(const onnx::NodeProto &node, StringRef name,
                                         float fallback) {
  auto attr = attribute(node, name, onnx::AttributeProto::FLOAT);
  if (failed(attr))
    return failure();
  return *attr ? (*attr)->f() : fallback;
}

FailureOr<SmallVector<int64_t>> OnnxImporter::intsAttr(const onnx::NodeProto &node,
                                                       StringRef name,
                                                       ArrayRef<int64_t> fallback) {
  auto attr = attribute(node, name, onnx::AttributeProto::INTS);
  if (failed(attr))
    return failure();
  if (!*attr)
    return SmallVector<int64_t>(fallback);
  return SmallVector<int64_t>((*attr)->ints().begin(), (*attr)->ints().end());
}

FailureOr<std::string> OnnxImporter::stringAttr(const onnx::NodeProto &node, StringRef name,
                                                StringRef fallback) {
  auto attr = attribute(node, name, onnx::AttributeProto::STRING);
  if (failed(attr))
    return failure();
  return *attr ? (*attr)->s() : fallback.str();
}

Value OnnxImporter::scalarLike(Value like, float value, Location loc) {
  auto element = cast<RankedTensorType>(like.getType()).getElementType();
  auto type = RankedTensorType::get({}, element);
  return ConstantOp::create(builder, loc,
                            DenseElementsAttr::get(type, builder.getFloatAttr(element, value)));
}

/// Runs `check`, turning the first diagnostic it emits into the node's error.
template <typename Check>
static LogicalResult asNodeError(OnnxImporter &im, const onnx::NodeProto &node, Check check) {
  std::string message;
  LogicalResult result = success();
  {
    ScopedDiagnosticHandler capture(im.context, [&](Diagnostic &diag) {
      if (message.empty())
        message = diag.str();
      return success();
    });
    result = check();
  }
  if (failed(result))
    return im.nodeError(node) << message;
  return success();
}

LogicalResult OnnxImporter::verifyBuilt(const onnx::NodeProto &node, Operation *op) {
  return asNodeError(*this, node, [&] { return mlir::verify(op); });
}

LogicalResult OnnxImporter::inferResultTypes(const onnx::NodeProto &node, Operation *op) {
  SmallVector<ShapedTypeComponents> components;
  LogicalResult inferred = asNodeError(*this, node, [&] {
    return cast<InferShapedTypeOpInterface>(op).inferReturnTypeComponents(
        context, op->getLoc(), op->getOperands(), op->getAttrDictionary(),
        op->getPropertiesStorage(), op->getRegions(), components);
  });
  if (failed(inferred)) {
    op->erase();
    return failure();
  }
  for (auto [result, shape] : llvm::zip(op->getResults(), components))
    result.setType(RankedTensorType::get(
        shape.getDims(), cast<RankedTensorType>(result.getType()).getElementType()));
  return verifyBuilt(node, op);
}

//===----------------------------------------------------------------------===//
// Rules
//===----------------------------------------------------------------------===//

//===----------------------------------------------------------------------===//
// Rule registry
//===----------------------------------------------------------------------===//

/// Every family's rows, in a fixed order (the unsupported-op error lists
/// them so).
ArrayRef<OnnxImporter::Registration> OnnxImporter::registry() {
  static const std::vector<Registration> rules = [] {
    std::vector<Registration> all;
    for (auto family : {linearAlgebraRules, convolutionRules, normalizationRules,
                        elementwiseRules, shapeRules, reductionRules, integerRules,
                        trainingRules, ortGradientRules})
      llvm::append_range(all, family());
    return all;
  }();
  return rules;
}

const OnnxImporter::Registration *OnnxImporter::ruleFor(const onnx::NodeProto &node) {
  if (node.domain().empty() || node.domain() == "ai.onnx")
    return findRule("", node.op_type(), opset);
  auto version = domainOpsets.find(node.domain());
  return version == domainOpsets.end() ? nullptr
                                       : findRule(node.domain(), node.op_type(), version->second);
}

/// Whether a rule handles nodes of this op set.
static bool handlesOpset(const OnnxOpSupport &support, int64_t opset) {
  return support.sinceVersion <= opset && (!support.untilVersion || opset <= support.untilVersion);
}

const OnnxImporter::Registration *OnnxImporter::findRule(StringRef domain, StringRef opType,
                                                         int64_t opset) {
  for (const Registration &r : registry())
    if (r.support.domain == domain && r.support.opType == opType &&
        handlesOpset(r.support, opset))
      return &r;
  return nullptr;
}

//===----------------------------------------------------------------------===//
// Graph
//===----------------------------------------------------------------------===//

bool OnnxImporter::readOnlyBy(const std::string &name,
                              llvm::function_ref<bool(const onnx::NodeProto &, int)> allowed) {
  for (const auto &reader : graph->node())
    for (int i = 0; i < reader.input_size(); ++i)
      if (reader.input(i) == name && !allowed(reader, i))
        return false;
  for (const auto &output : graph->output())
    if (output.name() == name)
      return false;
  return true;
}

bool OnnxImporter::isRead(const onnx::NodeProto &node, int index) {
  return node.output_size() > index && !node.output(index).empty() &&
         !readOnlyBy(node.output(index), [](const onnx::NodeProto &, int) { return false; });
}

/// Whether every value of a float tensor is finite.
static bool isFinite(DenseElementsAttr values) {
  return llvm::all_of(values.getValues<APFloat>(),
                      [](const APFloat &v) { return v.isFinite(); });
}

LogicalResult OnnxImporter::importGraph(const onnx::GraphProto &graph) {
  this->graph = &graph;
  // Initializers: floats are trainable parameters, integers compile-time
  // data; frozen floats (buffers) are constants.
  SmallVector<std::pair<std::string, DenseElementsAttr>> params, constants;
  llvm::StringMap<bool> isInitializer;
  SmallVector<llvm::GlobPattern> frozen;
  for (const std::string &pattern : options.frozen) {
    auto glob = llvm::GlobPattern::create(pattern);
    if (!glob)
      return fileError() << "--onnx-frozen: bad pattern '" << pattern
                         << "': " << llvm::toString(glob.takeError());
    frozen.push_back(std::move(*glob));
  }
  SmallVector<bool> frozenUsed(frozen.size(), false);
  // Initializers a rule reads as step state (running averages) are state,
  // not parameters: no gradient, no optimizer; never frozen.
  for (const auto &node : graph.node())
    if (const Registration *rule = ruleFor(node))
      for (int i = 0; i < node.input_size(); ++i)
        if (rule->stateInputs >> i & 1)
          stateNames[node.input(i)] = true;
  for (const auto &tensor : graph.initializer()) {
    auto attr = tensorAttr(tensor);
    if (failed(attr))
      return failure();
    isInitializer[tensor.name()] = true;
    // With assigned roles: "" for an initializer without one (a constant).
    std::optional<StringRef> assigned;
    if (initializerRoles)
      assigned = initializerRoles->lookup(tensor.name());
    if (assigned && !assigned->empty() && attr->getElementType().isInteger(64)) {
      params.emplace_back(tensor.name(), *attr); // run-time step state (a counter)
      continue;
    }
    if (attr->getElementType().isInteger(64)) {
      GraphValue constant{Value(), llvm::to_vector(attr->getValues<int64_t>())};
      constant.integerTensor = *attr;
      values[tensor.name()] = constant;
      continue;
    }
    // An assigned role wins over the heuristics (a diverged checkpoint is
    // still trained); an initializer the roles leave out is a constant.
    bool hasRole = assigned && !assigned->empty();
    bool isFrozen = !hasRole && (assigned || !isFinite(*attr));
    if (stateNames.count(tensor.name()))
      isFrozen = false;
    for (auto [i, glob] : llvm::enumerate(frozen)) {
      if (!glob.match(tensor.name()))
        continue;
      if (hasRole)
        return fileError() << "--onnx-frozen: '" << options.frozen[i] << "' names '"
                           << tensor.name() << "', which the training graph updates";
      // Frozen running averages are constants too, as asked.
      stateNames.erase(tensor.name());
      isFrozen = frozenUsed[i] = true;
    }
    (isFrozen ? constants : params).emplace_back(tensor.name(), *attr);
  }
  SmallVector<std::string> inputsReadAsState; // graph inputs: not state
  for (const auto &entry : stateNames)
    if (!isInitializer.count(entry.getKey()))
      inputsReadAsState.push_back(entry.getKey().str());
  for (const std::string &name : inputsReadAsState)
    stateNames.erase(name);
  for (auto [i, used] : llvm::enumerate(frozenUsed))
    if (!used)
      return fileError() << "--onnx-frozen: '" << options.frozen[i]
                         << "' names no float initializer";

  SmallVector<Type> argTypes;
  SmallVector<std::pair<StringLiteral, std::string>> argRoles;
  SmallVector<Attribute> argInits;
  for (const auto &info : graph.input()) {
    if (isInitializer.count(info.name()))
      continue; // Older exporters list initializers as inputs too.
    auto type = valueType(info);
    if (failed(type))
      return failure();
    argTypes.push_back(*type);
    argRoles.emplace_back(role::kInput, info.name());
    argInits.push_back(nullptr);
  }
  for (auto &[name, init] : params) {
    argTypes.push_back(init.getType());
    bool isState = stateNames.count(name) ||
                   (initializerRoles && initializerRoles->lookup(name) == role::kState);
    argRoles.emplace_back(isState ? role::kState : role::kParam, name);
    argInits.push_back(init);
  }

  builder.setInsertionPointToEnd(module->getBody());
  auto func = func::FuncOp::create(builder, fileLoc(), "forward",
                                   builder.getFunctionType(argTypes, {}));
  Block *body = func.addEntryBlock();
  // The attributes all at once: setting them per argument rebuilds the whole
  // attribute array each time (quadratic in the number of initializers).
  SmallVector<DictionaryAttr> argAttrs;
  for (auto [i, arg] : llvm::enumerate(body->getArguments())) {
    auto &[roleName, name] = argRoles[i];
    argAttrs.push_back(roleAttrs(builder, roleName, name, argInits[i]));
    values[name] = GraphValue{arg, std::nullopt};
  }
  func.setAllArgAttrs(argAttrs);

  builder.setInsertionPointToEnd(body);
  // A boolean graph input is read as a 0/1 f32 mask, as the model's
  // computed booleans are (GraphValue::mask).
  for (auto [i, arg] : llvm::enumerate(body->getArguments()))
    if (cast<RankedTensorType>(arg.getType()).getElementType().isInteger(1)) {
      auto type = cast<RankedTensorType>(arg.getType()).clone(builder.getF32Type());
      GraphValue mask{CastOp::create(builder, arg.getLoc(), type, arg), std::nullopt};
      mask.mask = true;
      values[argRoles[i].second] = mask;
    }
  for (auto &[name, init] : constants)
    values[name] = GraphValue{
        ConstantOp::create(builder, NameLoc::get(builder.getStringAttr(name), fileLoc()), init),
        std::nullopt};
  for (const auto &node : graph.node()) {
    const Registration *rule = ruleFor(node);
    if (!rule) {
      bool isDefault = node.domain().empty() || node.domain() == "ai.onnx";
      StringRef domain = isDefault ? StringRef() : StringRef(node.domain());
      int64_t domainOpset = isDefault ? opset : domainOpsets.lookup(domain);
      std::string supported;
      for (const Registration &r : registry())
        if (r.support.domain == domain && handlesOpset(r.support, domainOpset))
          supported += (supported.empty() ? "" : ", ") + r.support.opType.str();
      if (!isDefault && supported.empty())
        return nodeError(node) << "unsupported domain '" << node.domain()
                               << "' (op sets of domains other than the default one the "
                                  "importer reads: ai.onnx.preview.training 1, com.microsoft 1)";
      return nodeError(node) << "unsupported op type"
                             << (isDefault ? "" : " of domain '" + node.domain() + "'")
                             << " at opset " << domainOpset << " (supported: " << supported
                             << "; amp-opt --list-onnx-ops lists them with their limits)";
    }
    if (failed(rule->rule(*this, node)))
      return failure();
    ++nodeIndex;
  }

  if (counter) {
    stateUpdates.emplace_back(
        "dropout.counter",
        IncrementOp::create(builder, fileLoc(), counter.getType(), counter, Value()));
  }

  SmallVector<Value> results;
  for (const auto &info : graph.output()) {
    auto it = values.find(info.name());
    if (it != values.end() && !it->second.value && it->second.integerTensor) { // folded
      DenseElementsAttr integers = it->second.integerTensor;
      // Folded in int64; an output the graph declares int32 is written so.
      if (info.type().tensor_type().elem_type() == onnx::TensorProto::INT32 &&
          llvm::all_of(integers.getValues<APInt>(),
                       [](const APInt &v) { return v.isSignedIntN(32); }))
        integers = integers.mapValues(builder.getI32Type(),
                                      [](const APInt &v) { return v.trunc(32); });
      it->second.value = ConstantOp::create(builder, fileLoc(), integers);
    }
    if (it == values.end() || !it->second.value)
      return fileError() << "graph output '" << info.name()
                         << "' is not produced by any node";
    Value result = materializeTranspose(it->second);
    // A boolean output the model computed (a mask) is written as booleans.
    if (it->second.mask && info.type().tensor_type().elem_type() == onnx::TensorProto::BOOL)
      result = CastOp::create(builder, fileLoc(),
                              cast<RankedTensorType>(result.getType()).clone(builder.getI1Type()),
                              result);
    if (failed(checkGraphOutput(graph, info, result)))
      return failure();
    results.push_back(result);
  }
  for (auto &[name, value] : stateUpdates) // after the outputs
    results.push_back(value);
  func::ReturnOp::create(builder, fileLoc(), results);
  func.setType(builder.getFunctionType(body->getArgumentTypes(), ValueRange(results).getTypes()));
  SmallVector<DictionaryAttr> resultAttrs;
  for (const auto &info : graph.output())
    resultAttrs.push_back(roleAttrs(builder, role::kOutput, info.name()));
  for (auto &[name, update] : stateUpdates)
    resultAttrs.push_back(roleAttrs(builder, role::kState, name));
  func.setAllResultAttrs(resultAttrs);
  return success();
}

Value OnnxImporter::stepCounter() {
  if (!counter) {
    auto func = cast<func::FuncOp>(builder.getInsertionBlock()->getParentOp());
    auto type = RankedTensorType::get({}, builder.getI64Type());
    unsigned index = func.getNumArguments();
    auto attrs = roleAttrs(builder, role::kState, "dropout.counter",
                           DenseElementsAttr::get(type, int64_t{0}));
    if (failed(func.insertArgument(index, type, attrs, fileLoc())))
      return Value();
    counter = func.getArgument(index);
  }
  return counter;
}

void OnnxImporter::updateState(const onnx::NodeProto &node, int index, Value value) {
  if (!hasInput(node, index) || !stateNames.count(node.input(index)))
    return;
  for (auto &[name, update] : stateUpdates)
    if (name == node.input(index)) {
      update = value; // a later node updates it again: the last value is the state
      return;
    }
  stateUpdates.emplace_back(node.input(index), value);
}

LogicalResult OnnxImporter::readModel(onnx::ModelProto &model) {
  auto buffer = llvm::MemoryBuffer::getFile(path);
  if (!buffer)
    return fileError() << "cannot read: " << buffer.getError().message();
  if ((*buffer)->getBufferSize() > static_cast<size_t>(INT_MAX))
    return fileError() << "the model file is " << (*buffer)->getBufferSize()
                       << " bytes, above protobuf's limit of 2 GiB (keep large tensors as "
                          "external data)";
  if (!model.ParseFromArray((*buffer)->getBufferStart(),
                            static_cast<int>((*buffer)->getBufferSize())))
    return fileError() << "not a valid ONNX model (protobuf parse failed)";
  return success();
}

OwningOpRef<ModuleOp> OnnxImporter::run() {
  onnx::ModelProto model;
  if (failed(readModel(model)))
    return nullptr;
  if (model.training_info_size() > 0)
    return importTrainingInfo(*this, model);
  return importModel(model);
}

OwningOpRef<ModuleOp> OnnxImporter::importModel(onnx::ModelProto &model) {
  if (failed(checkOpset(model)) || failed(checkGraphLimits(model.graph())) ||
      failed(checkShapeLimits(model.graph())))
    return nullptr;
  if (llvm::Error error = inlineExternalData(model, path)) {
    fileError() << llvm::toString(std::move(error));
    return nullptr;
  }
  if (failed(checkDefinitions(model.graph())))
    return nullptr;
  auto checked = [&](auto check) {
    try {
      check();
      return true;
    } catch (const std::exception &e) {
      fileError() << "rejected by the ONNX checker: " << e.what();
      return false;
    }
  };
  if (!checked([&] { checkModel(model); }))
    return nullptr;
  context->loadDialect<AmpDialect, func::FuncDialect>();
  module = ModuleOp::create(fileLoc());
  if (failed(importGraph(model.graph())))
    return nullptr;
  // ONNX's strict shape inference cross-checks the graph, after the import
  // rules (with the amp dialect's own shape rules) accepted it: ONNX 1.12's
  // Conv and pooling inference reads past a data input of too low a rank
  // (a segfault, found by fuzz-onnx), which the rules refuse first.
  if (!checked([&] {
        onnx::shape_inference::InferShapes(model, &schemasThroughOpset21(),
                                           onnx::ShapeInferenceOptions(true, 1, false));
      }))
    return nullptr;
  if (failed(mlir::verify(*module))) {
    fileError() << "imported IR failed verification";
    return nullptr;
  }
  return std::move(module);
}

OwningOpRef<ModuleOp> mlir::amp::importOnnxFile(StringRef path, MLIRContext *context,
                                                const OnnxImportOptions &options) {
  return OnnxImporter(path, context, options).run();
}

std::vector<OnnxOpSupport> mlir::amp::supportedOnnxOps() {
  std::vector<OnnxOpSupport> ops;
  for (const auto &registration : OnnxImporter::registry())
    ops.push_back(registration.support);
  return ops;
}
