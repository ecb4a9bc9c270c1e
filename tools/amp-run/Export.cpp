//===- Export.cpp - trained weights back into the ONNX model --------------===//

#include "Export.h"
#include "amprt/AtomicFile.h"
#include "amprt/FloatConversions.h"

#include "onnx/checker.h"
#include "onnx/onnx_pb.h"
#include "onnx/shape_inference/implementation.h"

#include <map>

namespace amprun {

using amprt::Status;

namespace {

/// f32 values as raw little-endian bytes of the target type.
std::string encode(const std::vector<float> &values, int32_t dataType) {
  std::string bytes;
  if (dataType == onnx::TensorProto::FLOAT) {
    bytes.assign(reinterpret_cast<const char *>(values.data()), values.size() * 4);
    return bytes;
  }
  for (float v : values) {
    uint16_t half = dataType == onnx::TensorProto::FLOAT16 ? amprt::math::floatToF16(v)
                                                           : amprt::math::floatToBf16(v);
    bytes += static_cast<char>(half & 0xff);
    bytes += static_cast<char>(half >> 8);
  }
  return bytes;
}

void retypeFloatValues(google::protobuf::RepeatedPtrField<onnx::ValueInfoProto> *values,
                       int32_t dataType) {
  for (auto &value : *values)
    if (value.type().has_tensor_type() &&
        value.type().tensor_type().elem_type() == onnx::TensorProto::FLOAT)
      value.mutable_type()->mutable_tensor_type()->set_elem_type(dataType);
}

} // namespace

Status exportOnnx(const amprt::Session &session, const std::string &onnxPath,
                  const std::string &precision, const std::string &outPath) {
  int32_t dataType = precision == "fp32"   ? onnx::TensorProto::FLOAT
                     : precision == "fp16" ? onnx::TensorProto::FLOAT16
                     : precision == "bf16" ? onnx::TensorProto::BFLOAT16
                                           : -1;
  if (dataType < 0)
    return Status::error("--precision must be fp32, fp16 or bf16, not '" + precision + "'");
  std::string bytes;
  AMPRT_RETURN_IF_ERROR(amprt::readFile(onnxPath, &bytes));
  onnx::ModelProto model;
  if (!model.ParseFromString(bytes))
    return Status::error(onnxPath + ": not a valid ONNX model");

  // Parameters are written in the export's precision; step state that is
  // an initializer of the model (batch norm's running averages) stays f32,
  // as its FP32 statistics are.
  std::map<std::string, const amprt::TensorInfo *> params, states;
  for (const auto &info : session.states())
    if (info.role == "param")
      params[info.name] = &info;
    else if (info.dtype == amprt::DType::F32)
      states[info.name] = &info;
  // Parameters and state the model takes as graph inputs (an ORT eval
  // model's) become initializers, the inputs dropped.
  auto *graph = model.mutable_graph();
  google::protobuf::RepeatedPtrField<onnx::ValueInfoProto> inputs;
  std::map<std::string, bool> initializers;
  for (const auto &initializer : graph->initializer())
    initializers[initializer.name()] = true;
  for (auto &input : *graph->mutable_input()) {
    const std::string &name = input.name();
    bool trained = params.count(name) || states.count(name);
    if (!trained || initializers.count(name)) {
      inputs.Add(std::move(input));
      continue;
    }
    onnx::TensorProto *initializer = graph->add_initializer();
    initializer->set_name(name);
    initializer->set_data_type(onnx::TensorProto::FLOAT);
    for (int64_t dim : (params.count(name) ? params.at(name) : states.at(name))->shape)
      initializer->add_dims(dim);
  }
  graph->mutable_input()->Swap(&inputs);
  size_t replaced = 0;
  for (auto &initializer : *model.mutable_graph()->mutable_initializer()) {
    bool isParam = params.count(initializer.name()) != 0;
    if (!isParam && !states.count(initializer.name()))
      continue;
    const amprt::TensorInfo &info =
        *(isParam ? params.at(initializer.name()) : states.at(initializer.name()));
    if (!std::equal(info.shape.begin(), info.shape.end(), initializer.dims().begin(),
                    initializer.dims().end()))
      return Status::error(onnxPath + ": initializer '" + initializer.name() +
                           "' does not have the trained " + (isParam ? "parameter" : "state") +
                           "'s shape");
    std::vector<float> values(info.numElements());
    AMPRT_RETURN_IF_ERROR(session.readState(info.name, values.data(), values.size() * 4));
    int32_t type = isParam ? dataType : onnx::TensorProto::FLOAT;
    initializer.clear_float_data();
    initializer.clear_external_data(); // written inline, whatever the source did
    initializer.set_data_location(onnx::TensorProto::DEFAULT);
    initializer.set_data_type(type);
    initializer.set_raw_data(encode(values, type));
    replaced += isParam;
  }
  if (replaced != params.size())
    return Status::error(onnxPath + ": has " + std::to_string(replaced) + " of the plan's " +
                         std::to_string(params.size()) +
                         " parameters as initializers (is it the model the plan came from?)");
  // Other tensors' external files would be looked up next to the output.
  for (const auto &initializer : model.graph().initializer())
    if (initializer.data_location() == onnx::TensorProto::EXTERNAL)
      return Status::error(onnxPath + ": initializer '" + initializer.name() +
                           "' is not trained and keeps its data in an external file; export "
                           "writes trained tensors inline and does not copy external files");
  if (dataType != onnx::TensorProto::FLOAT) {
    retypeFloatValues(model.mutable_graph()->mutable_input(), dataType);
    retypeFloatValues(model.mutable_graph()->mutable_output(), dataType);
    model.mutable_graph()->clear_value_info(); // re-inferred below
  }
  try {
    onnx::checker::check_model(model);
    onnx::shape_inference::InferShapes(model, onnx::OpSchemaRegistry::Instance(),
                                       onnx::ShapeInferenceOptions(true, 1, false));
  } catch (const std::exception &e) {
    return Status::error("the exported model fails the ONNX checker: " + std::string(e.what()));
  }
  std::string out;
  if (!model.SerializeToString(&out))
    return Status::error("cannot serialize the exported model");
  return amprt::writeFileAtomically(outPath, out);
}

} // namespace amprun
