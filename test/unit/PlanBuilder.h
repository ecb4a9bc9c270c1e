//===- PlanBuilder.h - hand-made plans for runtime unit tests ---*- C++ -*-===//
#ifndef AMP_TEST_PLANBUILDER_H
#define AMP_TEST_PLANBUILDER_H

#include "PlanLoader.h"

#include <cstring>
#include <map>

namespace amptest {

inline void setType(amprt::proto::TensorType *type, amprt::proto::DType dtype,
                    std::vector<int64_t> shape) {
  type->set_dtype(dtype);
  for (int64_t d : shape)
    type->add_shape(d);
}

inline int32_t addBuffer(amprt::proto::Program *program, amprt::proto::Buffer::Kind kind,
                         amprt::proto::DType dtype, std::vector<int64_t> shape,
                         int64_t offset) {
  auto *buffer = program->add_buffers();
  buffer->set_kind(kind);
  setType(buffer->mutable_type(), dtype, std::move(shape));
  buffer->set_offset(offset);
  return program->buffers_size() - 1;
}

/// Appends kernel `op` reading `inputs` and writing `outputs` to `program`.
inline amprt::proto::Kernel *addKernel(amprt::proto::Program *program, const char *op,
                                       std::vector<int32_t> inputs,
                                       std::vector<int32_t> outputs,
                                       std::map<std::string, double> attrs = {}) {
  auto *kernel = program->add_kernels();
  kernel->set_op(op);
  for (int32_t index : inputs)
    kernel->add_inputs(index);
  for (int32_t index : outputs)
    kernel->add_outputs(index);
  kernel->mutable_attrs()->insert(attrs.begin(), attrs.end());
  return kernel;
}

/// Binds `buffer` of `program` as an input (or an output) named `name`.
inline void addBinding(amprt::proto::Program *program, bool input, const char *name,
                       const char *role, int32_t buffer) {
  auto *binding = input ? program->add_inputs() : program->add_outputs();
  binding->set_name(name);
  binding->set_role(role);
  binding->set_buffer(buffer);
}

/// A valid plan: eval computes y = relu(x W^T) for x [4, 3] and a [2, 3]
/// parameter W; train only counts steps (increment in place).
inline amprt::proto::Plan tinyPlan() {
  using amprt::proto::Buffer;
  amprt::proto::Plan plan;
  plan.set_format_version(amprt::kPlanFormatVersion);
  auto *w = plan.add_states();
  w->set_name("w");
  w->set_role("param");
  setType(w->mutable_type(), amprt::proto::F32, {2, 3});
  float init[6] = {1, 0, -1, 0.5f, 0.5f, 0.5f};
  w->set_init(std::string(reinterpret_cast<char *>(init), sizeof(init)));
  auto *step = plan.add_states();
  step->set_name("step");
  step->set_role("state");
  setType(step->mutable_type(), amprt::proto::I64, {});

  auto *eval = plan.mutable_eval();
  eval->set_name("forward");
  int32_t wb = addBuffer(eval, Buffer::STATE, amprt::proto::F32, {2, 3}, 0);
  int32_t x = addBuffer(eval, Buffer::ARENA, amprt::proto::F32, {4, 3}, 0);
  int32_t h = addBuffer(eval, Buffer::ARENA, amprt::proto::F32, {4, 2}, 64);
  int32_t y = addBuffer(eval, Buffer::ARENA, amprt::proto::F32, {4, 2}, 128);
  eval->set_arena_bytes(192);
  addKernel(eval, "matmul", {x, wb}, {h}, {{"transpose_rhs", 1}});
  addKernel(eval, "relu", {h}, {y});
  addBinding(eval, true, "x", "input", x);
  addBinding(eval, false, "y", "output", y);

  auto *train = plan.mutable_train();
  train->set_name("train_step");
  int32_t s = addBuffer(train, Buffer::STATE, amprt::proto::I64, {}, 1);
  addKernel(train, "increment", {s}, {s});
  return plan;
}

inline std::string serialize(const amprt::proto::Plan &plan) {
  std::string bytes;
  plan.SerializeToString(&bytes);
  return bytes;
}

} // namespace amptest

#endif // AMP_TEST_PLANBUILDER_H
