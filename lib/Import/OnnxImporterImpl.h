//===- OnnxImporterImpl.h - the importer, shared by its rule files -*- C++ -*-===//
//
// The importer's state and the helpers its rules use. Rules are free
// functions grouped by op family (LinearAlgebraRules.cpp, ElementwiseRules.cpp,
// ReductionRules.cpp, ShapeRules.cpp, ConvolutionRules.cpp,
// NormalizationRules.cpp, IntegerRules.cpp, TrainingRules.cpp,
// OrtGradientRules.cpp), each file
// with its registry rows;
// OnnxImporter.cpp walks the graph and picks a node's rule by (domain, op
// type, op set).
//
//===----------------------------------------------------------------------===//
#ifndef AMP_LIB_IMPORT_ONNXIMPORTERIMPL_H
#define AMP_LIB_IMPORT_ONNXIMPORTERIMPL_H

#include "amp/Import/OnnxImporter.h"
#include "dialects/Amp/AmpOps.h"

#include "mlir/IR/Builders.h"
#include "mlir/IR/Diagnostics.h"
#include "llvm/ADT/StringMap.h"
#include "llvm/ADT/StringSet.h"

#include "onnx/onnx_pb.h"

#include <optional>
#include <string>

namespace mlir::amp::onnx_import {

/// A value of the graph: an SSA value, or a compile-time integer tensor
/// (shape operands of Reshape) kept on the side.
struct GraphValue {
  Value value;
  std::optional<SmallVector<int64_t>> integers;
  /// A 2-D Transpose not materialised yet: a GEMM reads it as its transpose
  /// flag (exporters emit Transpose + MatMul for bias-free Linear); any other
  /// reader materialises it (an amp.transpose at `transposeLoc`, its node).
  bool transposed = false;
  /// A float64 constant (PyTorch writes number bounds so), kept aside until
  /// a Cast makes it a float constant of a supported type.
  DenseElementsAttr doubles = {};
  /// A compile-time integer tensor's values with their shape (`integers`
  /// flattened), for rules that take it as a tensor (Gather's indices).
  DenseElementsAttr integerTensor = {};
  /// A boolean of the model (a comparison's result): a 0/1 mask of the
  /// compared values' float type (the runtime has no boolean tensors).
  bool mask = false;
  /// A pending Transpose's node and its amp.transpose once one was needed.
  std::optional<Location> transposeLoc = std::nullopt;
  Value materialized = {};
  /// ORT's BatchNormInternal saved_inv_std output: the batch variance it
  /// derives from, which BatchNormalizationGrad reads (amp.batch_norm_grad
  /// takes the variance).
  Value batchVariance = {};
  /// A Shape whose dims are not all known at compile time (the batch): the
  /// tensor it measures, for a Reshape to that tensor's shape (ORT's
  /// Flatten gradient); anything else reading it is refused.
  Value shapeOf = {};
};

class OnnxImporter {
public:
  OnnxImporter(StringRef path, MLIRContext *context, const OnnxImportOptions &options)
      : path(path.str()), context(context), builder(context), options(options) {}

  OwningOpRef<ModuleOp> run();
  /// Parses the file at `path` (no checks beyond protobuf's).
  LogicalResult readModel(onnx::ModelProto &model);
  /// Imports a parsed model (run() after reading the file).
  OwningOpRef<ModuleOp> importModel(onnx::ModelProto &model);

  // What rules use (the rules are free functions in the family files) ------

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

  // Operands and results ------------------------------------------------------
  /// The node's index-th input; a pending Transpose only where the caller
  /// folds it (`allowTransposed`: GEMM operands, Transpose itself), else
  /// materialised.
  /// The node's index-th input if it is a compile-time integer tensor (an
  /// integer initializer or constant, or a folded shape computation), else
  /// null.
  const GraphValue *integerInput(const onnx::NodeProto &node, int index);
  /// Defines the node's index-th output as a compile-time int64 tensor.
  void defineIntegers(const onnx::NodeProto &node, int index, ArrayRef<int64_t> values,
                      ArrayRef<int64_t> shape);
  FailureOr<Value> input(const onnx::NodeProto &node, int index,
                         bool allowTransposed = false);
  /// The value itself, or a pending 2-D Transpose made an amp.transpose
  /// (once; later readers share it, and GEMMs may still fold the swap).
  Value materializeTranspose(GraphValue &value);
  /// Whether a node or a graph output reads the node's index-th output
  /// (exporters write outputs nobody reads, such as Dropout's mask).
  bool isRead(const onnx::NodeProto &node, int index);
  /// Whether every node input that reads the value `name` is one `allowed`
  /// accepts (the reader and the input's index), and no graph output is it.
  bool readOnlyBy(const std::string &name,
                  llvm::function_ref<bool(const onnx::NodeProto &, int)> allowed);
  bool hasInput(const onnx::NodeProto &node, int index) {
    return node.input_size() > index && !node.input(index).empty();
  }
  void define(const onnx::NodeProto &node, int index, Value value) {
    if (node.output_size() > index && !node.output(index).empty())
      values[node.output(index)] = GraphValue{value, std::nullopt};
  }
  /// Defines a boolean output as a 0/1 mask (GraphValue::mask).
  void defineMask(const onnx::NodeProto &node, int index, Value value) {
    define(node, index, value);
    if (node.output_size() > index && !node.output(index).empty())
      values[node.output(index)].mask = true;
  }
  /// Whether the node's index-th input is a run-time boolean (a mask).
  bool isMask(const onnx::NodeProto &node, int index) {
    auto it = hasInput(node, index) ? values.find(node.input(index)) : values.end();
    return it != values.end() && it->second.mask;
  }
  /// Typed attribute reads: the node's attribute `name`, null when absent;
  /// one of another type than the spec's is an error naming node and
  /// attribute. The value readers return `fallback` (the spec's default)
  /// for an absent attribute.
  FailureOr<const onnx::AttributeProto *> attribute(const onnx::NodeProto &node, StringRef name,
                                                    onnx::AttributeProto::AttributeType type);
  FailureOr<int64_t> intAttr(const onnx::NodeProto &node, StringRef name, int64_t fallback);
  FailureOr<float> floatAttr(const onnx::NodeProto &node, StringRef name, float fallback);
  FailureOr<SmallVector<int64_t>> intsAttr(const onnx::NodeProto &node, StringRef name,
                                           ArrayRef<int64_t> fallback);
  FailureOr<std::string> stringAttr(const onnx::NodeProto &node, StringRef name,
                                    StringRef fallback);
  Value scalarLike(Value like, float value, Location loc);
  /// The 0/1 mask `value == 0` (a boolean's negation; of a float, the
  /// negation of `value != 0`).
  Value zeroMask(Value value, Location loc) {
    return EqualMaskOp::create(builder, loc, value.getType(), value,
                               scalarLike(value, 0.0f, loc));
  }
  /// The node's index-th input as a float constant scalar (Pad's value,
  /// Dropout's ratio), or `fallback` when it is absent; anything else is an
  /// error naming the node and `what`.
  FailureOr<float> floatConstantInput(const onnx::NodeProto &node, int index, float fallback,
                                      StringRef what);
  /// The MLIR element type of an ONNX one (float, float16, bfloat16,
  /// int64, int32, bool as i1), or failure for the types the importer does
  /// not read.
  FailureOr<Type> elementType(int32_t onnxType);
  /// An initializer's or attribute's tensor as constant data (int32 data
  /// widened to int64).
  FailureOr<DenseElementsAttr> tensorAttr(const onnx::TensorProto &tensor);
  FailureOr<DenseElementsAttr> int32TensorAttr(const onnx::TensorProto &tensor,
                                               ArrayRef<int64_t> shape);
  /// Reports a verifier failure of a freshly built op as the node's error.
  LogicalResult verifyBuilt(const onnx::NodeProto &node, Operation *op);
  /// Gives a freshly built op (results typed with placeholders) the result
  /// shapes its own shape rule infers, keeping their element types, then
  /// verifies it; a failure is the node's error and the op is erased.
  LogicalResult inferResultTypes(const onnx::NodeProto &node, Operation *op);

  /// Whether the node's index-th input is a pending (unmaterialised) Transpose.
  bool isTransposed(const onnx::NodeProto &node, int index);

  /// Gives the step state read as the node's index-th input (an initializer
  /// its rule's row lists in `stateInputs`, such as a running mean) its new
  /// value; @forward returns it as an `amp.state` result. Inputs that are
  /// not state (graph inputs) are left alone.
  void updateState(const onnx::NodeProto &node, int index, Value value);
  /// The step counter random ops (dropout) draw with: an i64 `amp.state`
  /// argument "dropout.counter", made on first use and advanced once per
  /// step (its increment is @forward's last op).
  Value stepCounter();

  std::string path;
  MLIRContext *context;
  OpBuilder builder;
  OnnxImportOptions options;
  llvm::StringMap<GraphValue> values;
  /// Initializers that are step state, and their new values in update order.
  llvm::StringMap<bool> stateNames;
  SmallVector<std::pair<std::string, Value>> stateUpdates;
  Value counter;
  const onnx::GraphProto *graph = nullptr;
  OwningOpRef<ModuleOp> module;
  int nodeIndex = 0;
  /// The model's default-domain op set (checkOpset); rules are chosen by it.
  int64_t opset = 0;
  /// The op sets the model imports of the other domains it may use
  /// (ai.onnx.preview.training), by domain.
  llvm::StringMap<int64_t> domainOpsets;
  /// When set, the initializers it names are arguments with that role
  /// (amp.param or amp.state, int64 ones too) and the other float ones
  /// constants, except step state a rule reads (an ORT artifact set lists
  /// its trainable parameters; a TrainingInfoProto's update bindings name
  /// what its algorithm updates).
  const llvm::StringMap<StringRef> *initializerRoles = nullptr;
  /// A training algorithm's Gradient node seeds the backward pass with the
  /// marked constant 1 (kLossSeedAttr) and unscales what it computes by it,
  /// so that loss scaling only replaces the seed (TrainingInfo.cpp).
  bool seedsLoss = false;

  /// A rule: imports one node (with the importer's helpers).
  using Rule = LogicalResult (*)(OnnxImporter &, const onnx::NodeProto &);
  /// An import rule: the ops and op-set versions it handles, and the inputs
  /// (bit i: input i) that are step state rather than trainable parameters
  /// when they are initializers (running averages).
  struct Registration {
    OnnxOpSupport support;
    Rule rule;
    unsigned stateInputs = 0;
  };
  /// Every family's rules.
  static ArrayRef<Registration> registry();
  /// The rule for a node of this model's op set, or null.
  static const Registration *findRule(StringRef domain, StringRef opType, int64_t opset);
  /// The rule for `node` by its domain and that domain's op set, or null.
  const Registration *ruleFor(const onnx::NodeProto &node);

private:
  // Model-level steps ---------------------------------------------------------
  LogicalResult checkOpset(const onnx::ModelProto &model);
  LogicalResult checkDefinitions(const onnx::GraphProto &graph);
  LogicalResult checkShapeLimits(const onnx::GraphProto &graph);
  LogicalResult checkGraphLimits(const onnx::GraphProto &graph);
  FailureOr<RankedTensorType> valueType(const onnx::ValueInfoProto &info);
  LogicalResult importGraph(const onnx::GraphProto &graph);
  /// Refuses a graph output whose value is not what the model declares (a
  /// pending Transpose, or a type the importer got wrong), naming its node.
  LogicalResult checkGraphOutput(const onnx::GraphProto &graph,
                                 const onnx::ValueInfoProto &info, Value produced);
};

/// A model with a TrainingInfoProto: @train_step from its algorithm and
/// update bindings, @forward from its inference graph (TrainingInfo.cpp).
OwningOpRef<ModuleOp> importTrainingInfo(OnnxImporter &im, onnx::ModelProto &model);

/// The rules of each op family (one file each, *Rules.cpp).
ArrayRef<OnnxImporter::Registration> linearAlgebraRules();
ArrayRef<OnnxImporter::Registration> elementwiseRules();
ArrayRef<OnnxImporter::Registration> reductionRules();
ArrayRef<OnnxImporter::Registration> shapeRules();
ArrayRef<OnnxImporter::Registration> convolutionRules();
ArrayRef<OnnxImporter::Registration> normalizationRules();
ArrayRef<OnnxImporter::Registration> integerRules();
ArrayRef<OnnxImporter::Registration> trainingRules();
ArrayRef<OnnxImporter::Registration> ortGradientRules();

/// A Conv node's geometry over input `xType` [N, C, spatial...] and weights
/// `wType` [M, C/group, kernel...] (strides, pads with auto_pad resolved,
/// dilations, group) and its result type; ConvGrad reads the same
/// attributes (ConvolutionRules.cpp).
struct ConvWindow {
  DenseI64ArrayAttr strides, pads, dilations;
  int64_t group;
  RankedTensorType result;
};
FailureOr<ConvWindow> readConvWindow(OnnxImporter &im, const onnx::NodeProto &node,
                                     RankedTensorType xType, RankedTensorType wType);

// Compile-time integer tensors (IntegerRules.cpp) ---------------------------
/// The shape of a compile-time integer tensor.
ArrayRef<int64_t> integerShape(const GraphValue &value);
/// Defines the node's output as `compute` applied elementwise to integer
/// operands with numpy broadcasting; `compute` refuses by setting `error`.
LogicalResult
foldIntegerElementwise(OnnxImporter &im, const onnx::NodeProto &node,
                       ArrayRef<const GraphValue *> operands,
                       llvm::function_ref<int64_t(ArrayRef<int64_t>, std::string &)> compute);
/// One sliced axis: `count` elements from `first`, `step` apart.
struct SliceAxis {
  int64_t axis, first, count, step;
};
/// ONNX Slice's bounds on an axis of `size` (negative and out-of-range
/// starts and ends, negative steps).
SliceAxis sliceAxis(int64_t axis, int64_t size, int64_t start, int64_t end, int64_t step);
/// Defines the node's output as a slice of a compile-time integer tensor.
LogicalResult foldIntegerSlice(OnnxImporter &im, const onnx::NodeProto &node,
                               const GraphValue &data, ArrayRef<SliceAxis> axes);

/// Builds a broadcasting binary op with the shape the dialect's broadcast
/// rule gives; fails when the operand shapes do not broadcast.
template <typename OpTy>
inline FailureOr<Value> buildBroadcast(OpBuilder &b, Location loc, Value lhs, Value rhs) {
  auto lhsType = cast<RankedTensorType>(lhs.getType());
  auto shape = broadcastShapes(lhsType.getShape(),
                               cast<RankedTensorType>(rhs.getType()).getShape());
  if (failed(shape))
    return failure();
  auto type = RankedTensorType::get(*shape, lhsType.getElementType());
  return OpTy::create(b, loc, type, lhs, rhs).getResult();
}

} // namespace mlir::amp::onnx_import

#endif // AMP_LIB_IMPORT_ONNXIMPORTERIMPL_H
