//===- NewerOpsetSchemas.cpp - ONNX checks for op sets 18 to 21 -----------===//
//
// The signatures below are those of the ONNX operator specification
// (docs/Changelog.md of ONNX 1.16) for the op sets that introduced them,
// and of onnxruntime-training's default-domain MaxPoolGrad.
//
//===----------------------------------------------------------------------===//

#include "NewerOpsetSchemas.h"

#include "onnx/checker.h"
#include "onnx/defs/shape_inference.h"

#include <unordered_set>
#include <vector>

using namespace onnx;

namespace mlir::amp::onnx_import {
namespace {

const std::vector<std::string> kFloatTypes = {"tensor(float16)", "tensor(float)",
                                              "tensor(double)", "tensor(bfloat16)"};
const std::vector<std::string> kNumericTypes = {
    "tensor(uint8)",  "tensor(uint32)", "tensor(uint64)", "tensor(int8)",
    "tensor(int32)",  "tensor(int64)",  "tensor(float16)", "tensor(float)",
    "tensor(double)", "tensor(bfloat16)"};

/// Gelu-20: new in op set 20.
OpSchema gelu20() {
  OpSchema schema;
  schema.SetName("Gelu")
      .SinceVersion(20)
      .Input(0, "X", "", "T")
      .Output(0, "Y", "", "T")
      .Attr("approximate", "none or tanh", AttributeProto::STRING, std::string("none"))
      .TypeConstraint("T", kFloatTypes, "")
      .TypeAndShapeInferenceFunction(propagateShapeAndTypeFromFirstInput);
  return schema;
}

/// ReduceMean-18, ReduceMax-18 and ReduceMin-18: the axes an optional int64
/// input, as ReduceSum-13 has them (so its shape inference applies).
OpSchema reduction18(const char *name, std::vector<std::string> types) {
  OpSchema schema;
  schema.SetName(name)
      .SinceVersion(18)
      .Input(0, "data", "", "T")
      .Input(1, "axes", "", "tensor(int64)", OpSchema::Optional)
      .Output(0, "reduced", "", "T")
      .Attr("keepdims", "", AttributeProto::INT, static_cast<int64_t>(1))
      .Attr("noop_with_empty_axes", "", AttributeProto::INT, static_cast<int64_t>(0))
      .TypeConstraint("T", std::move(types), "")
      .TypeAndShapeInferenceFunction(
          OpSchemaRegistry::Schema("ReduceSum", 13)->GetTypeAndShapeInferenceFunction());
  return schema;
}

/// Split-18: equal parts may be asked by `num_outputs` (the last part the
/// remainder). Inferred: the element type and every dimension but the axis.
OpSchema split18() {
  OpSchema schema;
  schema.SetName("Split")
      .SinceVersion(18)
      .Input(0, "input", "", "T")
      .Input(1, "split", "", "tensor(int64)", OpSchema::Optional)
      .Output(0, "outputs", "", "T", OpSchema::Variadic)
      .Attr("axis", "", AttributeProto::INT, static_cast<int64_t>(0))
      .Attr("num_outputs", "", AttributeProto::INT, false)
      .TypeConstraint("T", kNumericTypes, "")
      .TypeAndShapeInferenceFunction([](InferenceContext &ctx) {
        for (size_t i = 0; i < ctx.getNumOutputs(); ++i)
          propagateElemTypeFromInputToOutput(ctx, 0, i);
        if (!hasInputShape(ctx, 0))
          return;
        const TensorShapeProto &shape = getInputShape(ctx, 0);
        int64_t rank = shape.dim_size(), axis = getAttribute(ctx, "axis", 0);
        if (axis < -rank || axis >= rank)
          fail_shape_inference("axis ", axis, " is out of range for rank ", rank);
        axis = axis < 0 ? axis + rank : axis;
        for (size_t i = 0; i < ctx.getNumOutputs(); ++i) {
          TensorShapeProto *out = getOutputShape(ctx, i);
          for (int64_t d = 0; d < rank; ++d)
            *out->add_dim() = d == axis ? TensorShapeProto_Dimension() : shape.dim(d);
        }
      });
  return schema;
}

/// onnxruntime-training's MaxPoolGrad, which its gradient builder writes in
/// the default domain (registered there since op set 9): dY and MaxPool's
/// Indices in, dX (the pooled input's shape) out. Not inferred here.
OpSchema maxPoolGrad() {
  OpSchema schema;
  schema.SetName("MaxPoolGrad")
      .SinceVersion(9)
      .Input(0, "dY", "", "T")
      .Input(1, "Indices", "", "tensor(int64)")
      .Output(0, "dX", "", "T")
      .Attr("auto_pad", "", AttributeProto::STRING, std::string("NOTSET"))
      .Attr("ceil_mode", "", AttributeProto::INT, static_cast<int64_t>(0))
      .Attr("dilations", "", AttributeProto::INTS, false)
      .Attr("kernel_shape", "", AttributeProto::INTS, true)
      .Attr("pads", "", AttributeProto::INTS, false)
      .Attr("storage_order", "", AttributeProto::INT, static_cast<int64_t>(0))
      .Attr("strides", "", AttributeProto::INTS, false)
      .TypeConstraint("T", kFloatTypes, "")
      .TypeAndShapeInferenceFunction([](InferenceContext &ctx) {
        propagateElemTypeFromInputToOutput(ctx, 0, 0);
      });
  return schema;
}

class SchemasThroughOpset21 final : public ISchemaRegistry {
public:
  SchemasThroughOpset21() {
    newer = {gelu20(), reduction18("ReduceMean", kNumericTypes),
             reduction18("ReduceMax", kNumericTypes), reduction18("ReduceMin", kNumericTypes),
             split18(), maxPoolGrad()};
    for (OpSchema &schema : newer)
      schema.Finalize();
  }

  const OpSchema *GetSchema(const std::string &key, const int maxInclusiveVersion,
                            const std::string &domain) const override {
    if (domain.empty() || domain == "ai.onnx")
      for (const OpSchema &schema : newer) // one version of each op here
        if (schema.Name() == key && schema.SinceVersion() <= maxInclusiveVersion)
          return &schema;
    return OpSchemaRegistry::Schema(key, maxInclusiveVersion, domain);
  }

private:
  std::vector<OpSchema> newer;
};

} // namespace

const ISchemaRegistry &schemasThroughOpset21() {
  static const SchemasThroughOpset21 registry; // immutable once built
  return registry;
}

void checkModel(const ModelProto &model) {
  using checker::ValidationError;
  if (model.ir_version() <= 0)
    throw ValidationError("the model does not set its ir_version");
  if (model.ir_version() > kMaxIrVersion)
    throw ValidationError("IR version " + std::to_string(model.ir_version()) +
                          " is newer than the newest this importer reads (" +
                          std::to_string(kMaxIrVersion) + ")");
  std::unordered_set<std::string> keys;
  for (const StringStringEntryProto &entry : model.metadata_props())
    if (!keys.insert(entry.key()).second)
      throw ValidationError("duplicate key '" + entry.key() + "' in metadata_props");
  std::unordered_map<std::string, int> opsets;
  for (const OperatorSetIdProto &opset : model.opset_import())
    opsets[opset.domain()] = static_cast<int>(opset.version());
  if (opsets.empty())
    throw ValidationError("the model imports no op set");
  checker::CheckerContext context;
  context.set_ir_version(static_cast<int>(model.ir_version()));
  context.set_opset_imports(std::move(opsets));
  context.set_schema_registry(&schemasThroughOpset21());
  checker::check_graph(model.graph(), context, checker::LexicalScopeContext());
}

} // namespace mlir::amp::onnx_import
