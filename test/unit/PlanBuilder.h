//===- PlanBuilder.h - hand-made plans for runtime unit tests ---*- C++ -*-===//
#ifndef AMP_TEST_PLANBUILDER_H
#define AMP_TEST_PLANBUILDER_H

#include "PlanLoader.h"

#include <cstring>

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
  auto *mm = eval->add_kernels();
  mm->set_op("matmul");
  mm->add_inputs(x);
  mm->add_inputs(wb);
  mm->add_outputs(h);
  (*mm->mutable_attrs())["transpose_rhs"] = 1;
  auto *relu = eval->add_kernels();
  relu->set_op("relu");
  relu->add_inputs(h);
  relu->add_outputs(y);
  auto *in = eval->add_inputs();
  in->set_name("x");
  in->set_role("input");
  in->set_buffer(x);
  auto *out = eval->add_outputs();
  out->set_name("y");
  out->set_role("output");
  out->set_buffer(y);

  auto *train = plan.mutable_train();
  train->set_name("train_step");
  int32_t s = addBuffer(train, Buffer::STATE, amprt::proto::I64, {}, 1);
  auto *inc = train->add_kernels();
  inc->set_op("increment");
  inc->add_inputs(s);
  inc->add_outputs(s);
  return plan;
}

inline std::string serialize(const amprt::proto::Plan &plan) {
  std::string bytes;
  plan.SerializeToString(&bytes);
  return bytes;
}

} // namespace amptest

#endif // AMP_TEST_PLANBUILDER_H
