//===- OnnxImporter.cpp - ONNX ModelProto -> amp dialect ------------------===//
//
// One walk over the (checked, shape-inferred) graph. Each node is dispatched
// on (domain, op_type) to an import rule; unsupported combinations, bad
// attributes and shape mismatches become diagnostics that name the file, the
// node and its op type. Result shapes are computed by the amp dialect's own
// shape rules, so the importer and the verifiers agree.
//
//===----------------------------------------------------------------------===//

#include "amp/Import/OnnxImporter.h"
#include "dialects/Amp/AmpOps.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/Builders.h"
#include "mlir/IR/Diagnostics.h"
#include "mlir/IR/Verifier.h"
#include "llvm/ADT/StringMap.h"
#include "llvm/ADT/StringSet.h"
#include "llvm/Support/MemoryBuffer.h"

#include "onnx/checker.h"
#include "onnx/onnx_pb.h"
#include "onnx/shape_inference/implementation.h"

using namespace mlir;
using namespace mlir::amp;

namespace {

/// A value of the graph: an SSA value, or a compile-time integer tensor
/// (shape operands of Reshape) kept on the side.
struct GraphValue {
  Value value;
  std::optional<SmallVector<int64_t>> integers;
  /// A 2-D Transpose not materialised: only a GEMM may read it, as its
  /// transpose flag (exporters emit Transpose + MatMul for bias-free Linear).
  bool transposed = false;
};

class OnnxImporter {
public:
  OnnxImporter(StringRef path, MLIRContext *context)
      : path(path.str()), context(context), builder(context) {}

  OwningOpRef<ModuleOp> run();

private:
  using Rule = LogicalResult (OnnxImporter::*)(const onnx::NodeProto &);

  // Diagnostics ---------------------------------------------------------------
  Location fileLoc() { return FileLineColLoc::get(context, path, 0, 0); }
  // The location names the file; the message names the node and op type.
  InFlightDiagnostic fileError() { return emitError(fileLoc()); }
  InFlightDiagnostic nodeError(const onnx::NodeProto &node) {
    return emitError(nodeLoc(node)) << "node '" << nodeName(node) << "' ("
                                    << node.op_type() << "): ";
  }
  std::string nodeName(const onnx::NodeProto &node) {
    return node.name().empty() ? node.op_type() + "_" + std::to_string(nodeIndex)
                               : node.name();
  }
  Location nodeLoc(const onnx::NodeProto &node) {
    return NameLoc::get(builder.getStringAttr(nodeName(node)), fileLoc());
  }

  // Model-level steps ---------------------------------------------------------
  LogicalResult checkOpset(const onnx::ModelProto &model);
  LogicalResult checkDefinitions(const onnx::GraphProto &graph);
  FailureOr<Type> elementType(int32_t onnxType);
  FailureOr<RankedTensorType> valueType(const onnx::ValueInfoProto &info);
  FailureOr<DenseElementsAttr> tensorAttr(const onnx::TensorProto &tensor);
  LogicalResult importGraph(const onnx::GraphProto &graph);

  // Operands and results ------------------------------------------------------
  /// The node's index-th input; a pending Transpose only where the caller
  /// folds it (`allowTransposed`: GEMM operands, Transpose itself).
  FailureOr<Value> input(const onnx::NodeProto &node, int index,
                         bool allowTransposed = false);
  bool hasInput(const onnx::NodeProto &node, int index) {
    return node.input_size() > index && !node.input(index).empty();
  }
  void define(const onnx::NodeProto &node, int index, Value value) {
    if (node.output_size() > index && !node.output(index).empty())
      values[node.output(index)] = GraphValue{value, std::nullopt};
  }
  /// Typed attribute reads: the node's attribute `name`, null when absent;
  /// one of another type than the spec's is an error naming node and
  /// attribute. The value readers return `fallback` (the spec's default)
  /// for an absent attribute.
  FailureOr<const onnx::AttributeProto *> attribute(const onnx::NodeProto &node, StringRef name,
                                                    onnx::AttributeProto::AttributeType type);
  FailureOr<int64_t> intAttr(const onnx::NodeProto &node, StringRef name, int64_t fallback);
  FailureOr<float> floatAttr(const onnx::NodeProto &node, StringRef name, float fallback);
  FailureOr<std::string> stringAttr(const onnx::NodeProto &node, StringRef name,
                                    StringRef fallback);
  Value scalarLike(Value like, float value, Location loc);
  /// Reports a verifier failure of a freshly built op as the node's error.
  LogicalResult verifyBuilt(const onnx::NodeProto &node, Operation *op);

  bool isTransposed(const onnx::NodeProto &node, int index);
  LogicalResult importTranspose(const onnx::NodeProto &node);
  /// Refuses a graph output whose value is not what the model declares (a
  /// pending Transpose, or a type the importer got wrong), naming its node.
  LogicalResult checkGraphOutput(const onnx::GraphProto &graph,
                                 const onnx::ValueInfoProto &info, const GraphValue &produced);

  /// op(A) x op(B) of the node's first two inputs, shape-checked.
  FailureOr<Value> buildMatmul(const onnx::NodeProto &node, bool transA, bool transB);

  // Rules, one per ONNX op type ------------------------------------------------
  LogicalResult importGemm(const onnx::NodeProto &node);
  LogicalResult importMatMul(const onnx::NodeProto &node);
  template <typename OpTy> LogicalResult importBinary(const onnx::NodeProto &node);
  LogicalResult importLeakyRelu(const onnx::NodeProto &node);
  template <typename OpTy> LogicalResult importUnary(const onnx::NodeProto &node);
  LogicalResult importSoftmax(const onnx::NodeProto &node);
  LogicalResult importReduceSum(const onnx::NodeProto &node);
  LogicalResult importFlatten(const onnx::NodeProto &node);
  LogicalResult importReshape(const onnx::NodeProto &node);
  LogicalResult importConstant(const onnx::NodeProto &node);
  LogicalResult importIdentity(const onnx::NodeProto &node);
  LogicalResult importSoftmaxCrossEntropyLoss(const onnx::NodeProto &node);

  std::string path;
  MLIRContext *context;
  OpBuilder builder;
  llvm::StringMap<GraphValue> values;
  OwningOpRef<ModuleOp> module;
  int nodeIndex = 0;
  /// The model's default-domain op set (checkOpset); rules are chosen by it.
  int64_t opset = 0;

public:
  /// An import rule: the ops and op-set versions it handles.
  struct Registration {
    OnnxOpSupport support;
    Rule rule;
  };
  static ArrayRef<Registration> registry();
  /// The rule for a node of this model's op set, or null.
  static const Registration *findRule(StringRef domain, StringRef opType, int64_t opset);
};

//===----------------------------------------------------------------------===//
// Model-level steps
//===----------------------------------------------------------------------===//

LogicalResult OnnxImporter::checkOpset(const onnx::ModelProto &model) {
  for (const auto &opset : model.opset_import()) {
    if (!opset.domain().empty() && opset.domain() != "ai.onnx")
      continue;
    if (opset.version() < kMinOnnxOpset || opset.version() > kMaxOnnxOpset)
      return fileError() << "unsupported opset " << opset.version()
                         << " (supported: " << kMinOnnxOpset << " to " << kMaxOnnxOpset << ")";
    this->opset = opset.version();
    return success();
  }
  return fileError() << "the model imports no default-domain opset";
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

FailureOr<DenseElementsAttr> OnnxImporter::tensorAttr(const onnx::TensorProto &tensor) {
  if (tensor.data_location() == onnx::TensorProto::EXTERNAL)
    return fileError() << "tensor '" << tensor.name()
                       << "' uses external data, which is not supported";
  auto element = elementType(tensor.data_type());
  if (failed(element))
    return fileError() << "tensor '" << tensor.name() << "' has unsupported element type";
  SmallVector<int64_t> shape(tensor.dims().begin(), tensor.dims().end());
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
                           << "' is an integer constant, which this op does not take";
  if (it->second.transposed && !allowTransposed)
    return nodeError(node) << "input '" << node.input(index)
                           << "' is a Transpose, supported only as an operand of MatMul or Gemm";
  return it->second.value;
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
                                             const GraphValue &produced) {
  const onnx::NodeProto *producer = producerOf(graph, info.name());
  auto refuse = [&]() -> InFlightDiagnostic {
    if (producer)
      return nodeError(*producer);
    return fileError();
  };
  // A pending Transpose is only a GEMM's flag: its value is still untransposed.
  if (produced.transposed)
    return refuse() << "its result '" << info.name()
                    << "' is a graph output; a Transpose is supported only as an operand "
                       "of MatMul or Gemm";
  if (!info.has_type())
    return success();
  auto declared = valueType(info);
  if (failed(declared))
    return failure();
  auto actual = cast<RankedTensorType>(produced.value.getType());
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

LogicalResult OnnxImporter::importTranspose(const onnx::NodeProto &node) {
  auto x = input(node, 0, /*allowTransposed=*/true);
  if (failed(x))
    return failure();
  auto rank = cast<RankedTensorType>(x->getType()).getRank();
  auto permAttr = attribute(node, "perm", onnx::AttributeProto::INTS);
  if (failed(permAttr))
    return failure();
  const onnx::AttributeProto *perm = *permAttr;
  bool swap = rank == 2 && (!perm || (perm->ints_size() == 2 && perm->ints(0) == 1 &&
                                      perm->ints(1) == 0));
  if (!swap)
    return nodeError(node) << "only 2-D transposes (perm [1, 0]) are supported";
  if (node.output_size() > 0)
    values[node.output(0)] = GraphValue{*x, std::nullopt, !isTransposed(node, 0)};
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

LogicalResult OnnxImporter::verifyBuilt(const onnx::NodeProto &node, Operation *op) {
  std::string message;
  LogicalResult result = success();
  {
    ScopedDiagnosticHandler capture(context, [&](Diagnostic &diag) {
      if (message.empty())
        message = diag.str();
      return success();
    });
    result = mlir::verify(op);
  }
  if (failed(result))
    return nodeError(node) << message;
  return success();
}

//===----------------------------------------------------------------------===//
// Rules
//===----------------------------------------------------------------------===//

/// Builds a broadcasting binary op with the shape the dialect's broadcast
/// rule gives; fails when the operand shapes do not broadcast.
template <typename OpTy>
static FailureOr<Value> buildBroadcast(OpBuilder &b, Location loc, Value lhs, Value rhs) {
  auto lhsType = cast<RankedTensorType>(lhs.getType());
  auto shape = broadcastShapes(lhsType.getShape(),
                               cast<RankedTensorType>(rhs.getType()).getShape());
  if (failed(shape))
    return failure();
  auto type = RankedTensorType::get(*shape, lhsType.getElementType());
  return OpTy::create(b, loc, type, lhs, rhs).getResult();
}

FailureOr<Value> OnnxImporter::buildMatmul(const onnx::NodeProto &node, bool transA,
                                           bool transB) {
  // A Transpose feeding the GEMM flips its transpose flag.
  transA ^= isTransposed(node, 0);
  transB ^= isTransposed(node, 1);
  auto a = input(node, 0, /*allowTransposed=*/true), b = input(node, 1, true);
  if (failed(a) || failed(b))
    return failure();
  auto aType = cast<RankedTensorType>(a->getType());
  std::string error;
  auto shape = matmulShape(aType.getShape(),
                           cast<RankedTensorType>(b->getType()).getShape(), transA,
                           transB, error);
  if (failed(shape))
    return nodeError(node) << error;
  auto matmul = MatmulOp::create(builder, nodeLoc(node),
                                 RankedTensorType::get(*shape, aType.getElementType()),
                                 *a, *b, transA, transB);
  if (failed(verifyBuilt(node, matmul)))
    return failure();
  return matmul.getResult();
}

LogicalResult OnnxImporter::importGemm(const onnx::NodeProto &node) {
  auto transA = intAttr(node, "transA", 0), transB = intAttr(node, "transB", 0);
  auto alphaAttr = floatAttr(node, "alpha", 1.0f), betaAttr = floatAttr(node, "beta", 1.0f);
  if (failed(transA) || failed(transB) || failed(alphaAttr) || failed(betaAttr))
    return failure();
  auto product = buildMatmul(node, *transA, *transB);
  if (failed(product))
    return failure();
  float alpha = *alphaAttr, beta = *betaAttr;
  Location loc = nodeLoc(node);
  Value result = *product;
  if (alpha != 1.0f)
    result = MulOp::create(builder, loc, result.getType(), result,
                           scalarLike(result, alpha, loc));
  if (hasInput(node, 2)) {
    auto c = input(node, 2);
    if (failed(c))
      return failure();
    Value bias = *c;
    if (beta != 1.0f)
      bias = MulOp::create(builder, loc, bias.getType(), bias, scalarLike(bias, beta, loc));
    auto sum = buildBroadcast<AddOp>(builder, loc, result, bias);
    if (failed(sum))
      return nodeError(node) << "bias C of type " << bias.getType()
                             << " does not broadcast to the product " << result.getType();
    result = *sum;
  }
  define(node, 0, result);
  return success();
}

LogicalResult OnnxImporter::importMatMul(const onnx::NodeProto &node) {
  auto product = buildMatmul(node, false, false);
  if (failed(product))
    return failure();
  define(node, 0, *product);
  return success();
}

template <typename OpTy>
LogicalResult OnnxImporter::importBinary(const onnx::NodeProto &node) {
  auto a = input(node, 0), b = input(node, 1);
  if (failed(a) || failed(b))
    return failure();
  Type element = cast<RankedTensorType>(a->getType()).getElementType();
  if (element != cast<RankedTensorType>(b->getType()).getElementType())
    return nodeError(node) << "operands have different element types";
  auto result = buildBroadcast<OpTy>(builder, nodeLoc(node), *a, *b);
  if (failed(result))
    return nodeError(node) << "shapes " << a->getType() << " and " << b->getType()
                           << " do not broadcast";
  define(node, 0, *result);
  return success();
}

LogicalResult OnnxImporter::importLeakyRelu(const onnx::NodeProto &node) {
  auto x = input(node, 0);
  auto alpha = floatAttr(node, "alpha", 0.01f);
  if (failed(x) || failed(alpha))
    return failure();
  define(node, 0,
         LeakyReluOp::create(builder, nodeLoc(node), x->getType(), *x,
                             builder.getF32FloatAttr(*alpha)));
  return success();
}

template <typename OpTy>
LogicalResult OnnxImporter::importUnary(const onnx::NodeProto &node) {
  auto x = input(node, 0);
  if (failed(x))
    return failure();
  define(node, 0, OpTy::create(builder, nodeLoc(node), x->getType(), *x));
  return success();
}

LogicalResult OnnxImporter::importSoftmax(const onnx::NodeProto &node) {
  auto x = input(node, 0);
  if (failed(x))
    return failure();
  int64_t rank = cast<RankedTensorType>(x->getType()).getRank();
  auto axisAttr = intAttr(node, "axis", -1);
  if (failed(axisAttr))
    return failure();
  int64_t axis = *axisAttr;
  if (rank == 0 || (axis != -1 && axis != rank - 1))
    return nodeError(node) << "only softmax over the last axis is supported (axis " << axis
                           << ", rank " << rank << ")";
  define(node, 0, SoftmaxOp::create(builder, nodeLoc(node), x->getType(), *x));
  return success();
}

LogicalResult OnnxImporter::importReduceSum(const onnx::NodeProto &node) {
  auto x = input(node, 0);
  if (failed(x))
    return failure();
  auto type = cast<RankedTensorType>(x->getType());
  int64_t rank = type.getRank();
  auto noopWithEmptyAxes = intAttr(node, "noop_with_empty_axes", 0);
  auto keepDimsAttr = intAttr(node, "keepdims", 1);
  if (failed(noopWithEmptyAxes) || failed(keepDimsAttr))
    return failure();
  SmallVector<int64_t> axes;
  if (hasInput(node, 1)) {
    auto it = values.find(node.input(1));
    if (it == values.end() || !it->second.integers)
      return nodeError(node) << "the axes operand must be a constant int64 tensor";
    axes = *it->second.integers;
  }
  if (axes.empty()) {
    if (*noopWithEmptyAxes) {
      define(node, 0, *x);
      return success();
    }
    for (int64_t i = 0; i < rank; ++i)
      axes.push_back(i);
  }
  for (int64_t &axis : axes) {
    if (axis < -rank || axis >= rank)
      return nodeError(node) << "axis " << axis << " is out of range for rank " << rank;
    axis = axis < 0 ? axis + rank : axis;
  }
  llvm::sort(axes);
  axes.erase(std::unique(axes.begin(), axes.end()), axes.end());
  bool keepDims = *keepDimsAttr != 0;
  std::string error;
  auto shape = reduceShape(type.getShape(), axes, keepDims, error);
  if (failed(shape))
    return nodeError(node) << error;
  define(node, 0,
         ReduceSumOp::create(builder, nodeLoc(node),
                             RankedTensorType::get(*shape, type.getElementType()), *x,
                             builder.getDenseI64ArrayAttr(axes), keepDims));
  return success();
}

/// Reshape to `target` (which may hold one dynamic dim), resolved by the
/// dialect's reshape rule.
static FailureOr<Value> buildReshape(OpBuilder &b, Location loc, Value input,
                                     ArrayRef<int64_t> target, std::string &error) {
  auto type = cast<RankedTensorType>(input.getType());
  auto shape = reshapeShape(type.getShape(), target, error);
  if (failed(shape))
    return failure();
  return ReshapeOp::create(b, loc, RankedTensorType::get(*shape, type.getElementType()),
                           input)
      .getResult();
}

LogicalResult OnnxImporter::importFlatten(const onnx::NodeProto &node) {
  auto x = input(node, 0);
  if (failed(x))
    return failure();
  auto shape = cast<RankedTensorType>(x->getType()).getShape();
  int64_t rank = shape.size();
  auto axisAttr = intAttr(node, "axis", 1);
  if (failed(axisAttr))
    return failure();
  int64_t axis = *axisAttr < 0 ? *axisAttr + rank : *axisAttr;
  if (axis < 0 || axis > rank)
    return nodeError(node) << "axis " << *axisAttr << " is out of range for rank " << rank;
  auto product = [&](int64_t begin, int64_t end) {
    int64_t p = 1;
    for (int64_t i = begin; i < end; ++i) {
      if (ShapedType::isDynamic(shape[i]))
        return ShapedType::kDynamic;
      p *= shape[i];
    }
    return p;
  };
  std::string error;
  auto result = buildReshape(builder, nodeLoc(node), *x,
                             {product(0, axis), product(axis, rank)}, error);
  if (failed(result))
    return nodeError(node) << error;
  define(node, 0, *result);
  return success();
}

LogicalResult OnnxImporter::importReshape(const onnx::NodeProto &node) {
  auto x = input(node, 0);
  if (failed(x))
    return failure();
  auto it = hasInput(node, 1) ? values.find(node.input(1)) : values.end();
  if (it == values.end() || !it->second.integers)
    return nodeError(node) << "the shape operand must be a constant int64 tensor";
  auto allowZero = intAttr(node, "allowzero", 0);
  if (failed(allowZero))
    return failure();
  if (*allowZero != 0)
    return nodeError(node) << "allowzero=1 is not supported";
  auto inputType = cast<RankedTensorType>(x->getType());
  std::string error;
  auto shape = onnxReshapeTarget(inputType.getShape(), *it->second.integers, error);
  if (failed(shape))
    return nodeError(node) << "cannot reshape " << inputType << ": " << error;
  auto resultType = RankedTensorType::get(*shape, inputType.getElementType());
  // Keep the ONNX target while shapes are dynamic, so the batch size can
  // resolve "0" (copy) dims later.
  DenseI64ArrayAttr spec;
  if (!resultType.hasStaticShape())
    spec = builder.getDenseI64ArrayAttr(*it->second.integers);
  Value result = ReshapeOp::create(builder, nodeLoc(node), resultType, *x, spec);
  define(node, 0, result);
  return success();
}

LogicalResult OnnxImporter::importConstant(const onnx::NodeProto &node) {
  auto tensor = attribute(node, "value", onnx::AttributeProto::TENSOR);
  auto scalar = attribute(node, "value_float", onnx::AttributeProto::FLOAT);
  auto list = attribute(node, "value_ints", onnx::AttributeProto::INTS);
  if (failed(tensor) || failed(scalar) || failed(list))
    return failure();
  DenseElementsAttr value;
  if (*tensor) {
    auto parsed = tensorAttr((*tensor)->t());
    if (failed(parsed))
      return nodeError(node) << "cannot read its value tensor";
    value = *parsed;
  } else if (*scalar) {
    value = DenseElementsAttr::get(RankedTensorType::get({}, builder.getF32Type()),
                                   (*scalar)->f());
  } else if (*list) {
    SmallVector<int64_t> ints((*list)->ints().begin(), (*list)->ints().end());
    value = DenseElementsAttr::get(
        RankedTensorType::get({static_cast<int64_t>(ints.size())}, builder.getI64Type()),
        ArrayRef<int64_t>(ints));
  } else {
    return nodeError(node) << "only value, value_float and value_ints are supported";
  }
  if (node.output_size() < 1)
    return success();
  if (value.getElementType().isInteger(64)) {
    auto ints = llvm::to_vector(value.getValues<int64_t>());
    values[node.output(0)] = GraphValue{Value(), SmallVector<int64_t>(ints)};
    return success();
  }
  define(node, 0, ConstantOp::create(builder, nodeLoc(node), value));
  return success();
}

LogicalResult OnnxImporter::importIdentity(const onnx::NodeProto &node) {
  auto it = hasInput(node, 0) ? values.find(node.input(0)) : values.end();
  if (it == values.end())
    return nodeError(node) << "missing input #0";
  if (node.output_size() > 0)
    values[node.output(0)] = it->second;
  return success();
}

LogicalResult OnnxImporter::importSoftmaxCrossEntropyLoss(const onnx::NodeProto &node) {
  auto scores = input(node, 0), labels = input(node, 1);
  if (failed(scores) || failed(labels))
    return failure();
  if (hasInput(node, 2))
    return nodeError(node) << "class weights are not supported";
  auto reductionAttr = stringAttr(node, "reduction", "mean");
  auto ignoreIndex = attribute(node, "ignore_index", onnx::AttributeProto::INT);
  if (failed(reductionAttr) || failed(ignoreIndex))
    return failure();
  std::string reduction = *reductionAttr;
  if (reduction != "mean" && reduction != "sum")
    return nodeError(node) << "reduction '" << reduction
                           << "' is not supported (mean or sum)";
  if (node.output_size() > 1 && !node.output(1).empty())
    return nodeError(node) << "the log_prob output is not supported";
  auto labelsType = cast<RankedTensorType>(labels->getType());
  if (!labelsType.getElementType().isInteger(64))
    return nodeError(node) << "labels must be int64";
  auto op = SoftmaxCrossEntropyOp::create(
      builder, nodeLoc(node), RankedTensorType::get({}, builder.getF32Type()), *scores,
      *labels,
      LossReductionAttr::get(context, reduction == "mean" ? LossReduction::Mean
                                                          : LossReduction::Sum),
      *ignoreIndex ? builder.getI64IntegerAttr((*ignoreIndex)->i()) : IntegerAttr());
  if (failed(verifyBuilt(node, op)))
    return failure();
  define(node, 0, op.getLoss());
  return success();
}

//===----------------------------------------------------------------------===//
// Rule registry
//===----------------------------------------------------------------------===//

/// One row per rule: domain ("" = ai.onnx), op type, the op-set versions it
/// handles (since, until; 0 = no upper bound) and what it refuses. A rule
/// for a newer version of an op is a new row, with its own function.
ArrayRef<OnnxImporter::Registration> OnnxImporter::registry() {
  static const Registration rules[] = {
      {{"", "Gemm", 13, 0, "2-D operands"}, &OnnxImporter::importGemm},
      {{"", "MatMul", 13, 0, "2-D operands"}, &OnnxImporter::importMatMul},
      {{"", "Add", 13, 0, "broadcasting"}, &OnnxImporter::importBinary<AddOp>},
      {{"", "Sub", 13, 0, "broadcasting"}, &OnnxImporter::importBinary<SubOp>},
      {{"", "Mul", 13, 0, "broadcasting"}, &OnnxImporter::importBinary<MulOp>},
      {{"", "Div", 13, 0, "broadcasting"}, &OnnxImporter::importBinary<DivOp>},
      {{"", "Exp", 13, 0, ""}, &OnnxImporter::importUnary<ExpOp>},
      {{"", "Log", 13, 0, ""}, &OnnxImporter::importUnary<LogOp>},
      {{"", "Neg", 13, 0, ""}, &OnnxImporter::importUnary<NegOp>},
      {{"", "Softmax", 13, 0, "last axis only"}, &OnnxImporter::importSoftmax},
      {{"", "Transpose", 13, 0, "2-D, folded into the GEMM that reads it"},
       &OnnxImporter::importTranspose},
      {{"", "ReduceSum", 13, 0, "constant axes"}, &OnnxImporter::importReduceSum},
      {{"", "Relu", 13, 0, ""}, &OnnxImporter::importUnary<ReluOp>},
      {{"", "LeakyRelu", 13, 0, ""}, &OnnxImporter::importLeakyRelu},
      {{"", "Tanh", 13, 0, ""}, &OnnxImporter::importUnary<TanhOp>},
      {{"", "Sigmoid", 13, 0, ""}, &OnnxImporter::importUnary<SigmoidOp>},
      {{"", "Flatten", 13, 0, ""}, &OnnxImporter::importFlatten},
      {{"", "Reshape", 13, 0, "constant shape, allowzero=0"}, &OnnxImporter::importReshape},
      {{"", "Constant", 13, 0, "value, value_float, value_ints"},
       &OnnxImporter::importConstant},
      {{"", "Identity", 13, 0, "tensors"}, &OnnxImporter::importIdentity},
      {{"", "SoftmaxCrossEntropyLoss", 13, 0,
        "mean or sum reduction, no class weights, no log_prob output"},
       &OnnxImporter::importSoftmaxCrossEntropyLoss},
  };
  return rules;
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

LogicalResult OnnxImporter::importGraph(const onnx::GraphProto &graph) {
  // Initializers: floats are trainable parameters, integers compile-time data.
  SmallVector<std::pair<std::string, DenseElementsAttr>> params;
  llvm::StringMap<bool> isInitializer;
  for (const auto &tensor : graph.initializer()) {
    auto attr = tensorAttr(tensor);
    if (failed(attr))
      return failure();
    isInitializer[tensor.name()] = true;
    if (attr->getElementType().isInteger(64))
      values[tensor.name()] =
          GraphValue{Value(), llvm::to_vector(attr->getValues<int64_t>())};
    else
      params.emplace_back(tensor.name(), *attr);
  }

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
    argRoles.emplace_back(role::kParam, name);
    argInits.push_back(init);
  }

  builder.setInsertionPointToEnd(module->getBody());
  auto func = func::FuncOp::create(builder, fileLoc(), "forward",
                                   builder.getFunctionType(argTypes, {}));
  Block *body = func.addEntryBlock();
  for (auto [i, arg] : llvm::enumerate(body->getArguments())) {
    auto &[roleName, name] = argRoles[i];
    func.setArgAttr(i, roleName, builder.getStringAttr(name));
    if (argInits[i])
      func.setArgAttr(i, role::kInit, argInits[i]);
    values[name] = GraphValue{arg, std::nullopt};
  }

  builder.setInsertionPointToEnd(body);
  for (const auto &node : graph.node()) {
    if (!node.domain().empty() && node.domain() != "ai.onnx")
      return nodeError(node) << "unsupported domain '" << node.domain() << "'";
    const Registration *rule = findRule("", node.op_type(), opset);
    if (!rule) {
      std::string supported;
      for (const Registration &r : registry())
        if (handlesOpset(r.support, opset))
          supported += (supported.empty() ? "" : ", ") + r.support.opType.str();
      return nodeError(node) << "unsupported op type at opset " << opset
                             << " (supported: " << supported
                             << "; amp-opt --list-onnx-ops lists them with their limits)";
    }
    if (failed((this->*(rule->rule))(node)))
      return failure();
    ++nodeIndex;
  }

  SmallVector<Value> results;
  for (const auto &info : graph.output()) {
    auto it = values.find(info.name());
    if (it == values.end() || !it->second.value)
      return fileError() << "graph output '" << info.name()
                         << "' is not produced by any node";
    if (failed(checkGraphOutput(graph, info, it->second)))
      return failure();
    results.push_back(it->second.value);
  }
  func::ReturnOp::create(builder, fileLoc(), results);
  func.setType(builder.getFunctionType(argTypes, ValueRange(results).getTypes()));
  for (auto [i, info] : llvm::enumerate(graph.output()))
    func.setResultAttr(i, role::kOutput, builder.getStringAttr(info.name()));
  return success();
}

OwningOpRef<ModuleOp> OnnxImporter::run() {
  auto buffer = llvm::MemoryBuffer::getFile(path);
  if (!buffer) {
    fileError() << "cannot read: " << buffer.getError().message();
    return nullptr;
  }
  onnx::ModelProto model;
  if (!model.ParseFromArray((*buffer)->getBufferStart(),
                            static_cast<int>((*buffer)->getBufferSize()))) {
    fileError() << "not a valid ONNX model (protobuf parse failed)";
    return nullptr;
  }
  if (failed(checkOpset(model)) || failed(checkDefinitions(model.graph())))
    return nullptr;
  try {
    onnx::checker::check_model(model);
    onnx::shape_inference::InferShapes(model, onnx::OpSchemaRegistry::Instance(),
                                       onnx::ShapeInferenceOptions(true, 1, false));
  } catch (const std::exception &e) {
    fileError() << "rejected by the ONNX checker: " << e.what();
    return nullptr;
  }
  context->loadDialect<AmpDialect, func::FuncDialect>();
  module = ModuleOp::create(fileLoc());
  if (failed(importGraph(model.graph())))
    return nullptr;
  if (failed(mlir::verify(*module))) {
    fileError() << "imported IR failed verification";
    return nullptr;
  }
  return std::move(module);
}

} // namespace

OwningOpRef<ModuleOp> mlir::amp::importOnnxFile(StringRef path, MLIRContext *context) {
  return OnnxImporter(path, context).run();
}

std::vector<OnnxOpSupport> mlir::amp::supportedOnnxOps() {
  std::vector<OnnxOpSupport> ops;
  for (const auto &registration : OnnxImporter::registry())
    ops.push_back(registration.support);
  return ops;
}
