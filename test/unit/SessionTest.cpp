//===- SessionTest.cpp - the embeddable Session API -----------------------===//

#include "Checkpoint.h"
#include "PlanBuilder.h"
#include "amprt/AtomicFile.h"

#include <gtest/gtest.h>
#include <omp.h>

#include <cmath>
#include <unistd.h>

using namespace amprt;
using amptest::serialize;
using amptest::tinyPlan;

namespace {

std::unique_ptr<Session> makeSession(const proto::Plan &plan) {
  std::unique_ptr<Session> session;
  Status status = Session::createFromBytes(serialize(plan), "tiny", {}, &session);
  EXPECT_TRUE(status.isOk()) << status.message();
  return session;
}

TEST(Session, EvaluatesAgainstHandComputedValues) {
  auto session = makeSession(tinyPlan());
  ASSERT_TRUE(session);
  float x[12] = {1, 2, 3, -1, -2, -3, 0, 0, 0, 2, 0, 1};
  ASSERT_TRUE(session->evaluate({{"x", x, sizeof(x)}}).isOk());
  float y[8];
  ASSERT_TRUE(session->readOutput(Program::Eval, "y", y, sizeof(y)).isOk());
  // W = [[1, 0, -1], [0.5, 0.5, 0.5]]; y = relu(x W^T).
  const float expected[8] = {0, 3, 2, 0, 0, 0, 1, 1.5f};
  for (int i = 0; i < 8; ++i)
    EXPECT_FLOAT_EQ(y[i], expected[i]) << i;
}

TEST(Session, StepUpdatesStateInPlaceAndStateRoundTrips) {
  auto session = makeSession(tinyPlan());
  ASSERT_TRUE(session);
  for (int i = 0; i < 3; ++i)
    ASSERT_TRUE(session->step({}).isOk());
  int64_t step = 0;
  ASSERT_TRUE(session->readState("step", &step, sizeof(step)).isOk());
  EXPECT_EQ(step, 3);
  float w[6] = {0, 0, 0, 0, 0, 2};
  ASSERT_TRUE(session->writeState("w", w, sizeof(w)).isOk());
  float back[6];
  ASSERT_TRUE(session->readState("w", back, sizeof(back)).isOk());
  EXPECT_EQ(back[5], 2.0f);
  ASSERT_EQ(session->states().size(), 2u);
  EXPECT_EQ(session->states()[0].name, "w");
  EXPECT_EQ(session->states()[0].role, "param");
  EXPECT_EQ(session->arenaBytes(Program::Eval), 192);
}

TEST(Session, ReportsMisuseWithoutCrashing) {
  auto session = makeSession(tinyPlan());
  ASSERT_TRUE(session);
  float x[12] = {};
  Status s = session->evaluate({{"images", x, sizeof(x)}});
  EXPECT_EQ(s.message(), "evaluate: no input named 'images'");
  s = session->evaluate({{"x", x, 8}});
  EXPECT_EQ(s.message(), "evaluate: input 'x' needs 48 bytes, got 8");
  s = session->evaluate({});
  EXPECT_EQ(s.message(), "evaluate: expects 1 inputs, got 0");
  float w[2];
  EXPECT_FALSE(session->readState("w", w, sizeof(w)).isOk());
  EXPECT_FALSE(session->readState("missing", w, sizeof(w)).isOk());
  EXPECT_FALSE(session->readOutput(Program::Eval, "z", w, sizeof(w)).isOk());
}

TEST(Session, RefusesKernelsThatDoNotFitTheirTensors) {
  auto plan = tinyPlan();
  // A relu whose output is smaller than its input.
  plan.mutable_eval()->mutable_buffers(3)->mutable_type()->set_shape(1, 1);
  std::unique_ptr<Session> session;
  Status status = Session::createFromBytes(serialize(plan), "tiny", {}, &session);
  ASSERT_FALSE(status.isOk());
  EXPECT_NE(status.message().find("kernel 'relu'"), std::string::npos) << status.message();
  EXPECT_FALSE(session);
}

// Found by fuzz-plan: a plan may ask for any arena up to 2^40 bytes, and the
// session allocated (and touched) 2.3 GB of it; an embedder can now cap it.
TEST(Session, RefusesPlansAboveTheMemoryLimitBeforeAllocating) {
  auto plan = tinyPlan();
  plan.mutable_eval()->set_arena_bytes(int64_t{1} << 39); // 512 GiB: never allocated
  SessionOptions options;
  options.memoryLimitBytes = 1 << 20;
  std::unique_ptr<Session> session;
  Status status = Session::createFromBytes(serialize(plan), "big", options, &session);
  ASSERT_FALSE(status.isOk());
  EXPECT_NE(status.message().find("big: the plan needs more than 1048576 bytes of device "
                                  "memory (the session's limit)"),
            std::string::npos)
      << status.message();
  options.memoryLimitBytes = 1 << 20; // the tiny plan itself fits
  EXPECT_TRUE(Session::createFromBytes(serialize(tinyPlan()), "tiny", options, &session).isOk());
}

// SessionOptions::numThreads was applied with omp_set_num_threads when the
// session was created: it leaked into the embedder's thread, and did not
// apply when another thread stepped the session. It now holds only around
// the session's own kernel builds and runs.
TEST(Session, ThreadCountStaysTheSessions) {
  omp_set_num_threads(3);
  SessionOptions options;
  options.numThreads = 1;
  std::unique_ptr<Session> session;
  ASSERT_TRUE(Session::createFromBytes(serialize(tinyPlan()), "tiny", options, &session).isOk());
  EXPECT_EQ(omp_get_max_threads(), 3);
  float x[12] = {};
  ASSERT_TRUE(session->evaluate({{"x", x, sizeof(x)}}).isOk());
  ASSERT_TRUE(session->step({}).isOk());
  EXPECT_EQ(omp_get_max_threads(), 3);
}

/// tinyPlan whose train step also computes a cross-entropy loss of x W^T
/// against int64 labels [4] (2 classes) and outputs it.
proto::Plan lossPlan() {
  using proto::Buffer;
  proto::Plan plan = tinyPlan();
  auto *train = plan.mutable_train();
  int32_t w = amptest::addBuffer(train, Buffer::STATE, proto::F32, {2, 3}, 0);
  int32_t x = amptest::addBuffer(train, Buffer::ARENA, proto::F32, {4, 3}, 0);
  int32_t labels = amptest::addBuffer(train, Buffer::ARENA, proto::I64, {4}, 64);
  int32_t logits = amptest::addBuffer(train, Buffer::ARENA, proto::F32, {4, 2}, 128);
  int32_t loss = amptest::addBuffer(train, Buffer::ARENA, proto::F32, {}, 192);
  train->set_arena_bytes(256);
  amptest::addKernel(train, "matmul", {x, w}, {logits}, {{"transpose_rhs", 1}});
  amptest::addKernel(train, "softmax_cross_entropy", {logits, labels}, {loss}, {{"mean", 1}});
  amptest::addBinding(train, true, "x", "input", x);
  amptest::addBinding(train, true, "labels", "label", labels);
  amptest::addBinding(train, false, "loss", "loss", loss);
  return plan;
}

int64_t stepsTaken(const Session &session) {
  int64_t step = -1;
  EXPECT_TRUE(session.readState("step", &step, sizeof(step)).isOk());
  return step;
}

// Issue 15: a NaN input or a label outside the classes is refused before
// the step runs, naming the input, and the session goes on as if the bad
// batch had never been fed.
TEST(Session, RefusesBadFeedsBeforeRunningAnything) {
  auto session = makeSession(lossPlan());
  ASSERT_TRUE(session);
  float x[12] = {1, 2, 3, -1, -2, -3, 0, 0, 0, 2, 0, 1};
  int64_t labels[4] = {0, 1, 1, 0};
  float bad[12];
  std::memcpy(bad, x, sizeof(x));
  bad[7] = std::nanf("");
  Status s = session->step({{"x", bad, sizeof(bad)}, {"labels", labels, sizeof(labels)}});
  EXPECT_EQ(s.message(), "step: input 'x': NaN at element 7");
  bad[7] = -INFINITY;
  s = session->step({{"x", bad, sizeof(bad)}, {"labels", labels, sizeof(labels)}});
  EXPECT_EQ(s.message(), "step: input 'x': inf at element 7");
  int64_t badLabels[4] = {0, 2, 1, 0};
  s = session->step({{"x", x, sizeof(x)}, {"labels", badLabels, sizeof(badLabels)}});
  EXPECT_EQ(s.message(), "step: input 'labels': label 2 at row 1 is outside [0, 2)");
  badLabels[1] = -1;
  s = session->step({{"x", x, sizeof(x)}, {"labels", badLabels, sizeof(badLabels)}});
  EXPECT_EQ(s.message(), "step: input 'labels': label -1 at row 1 is outside [0, 2)");
  s = session->step({{"x", x, sizeof(x)}, {"labels", labels, 8}});
  EXPECT_EQ(s.message(), "step: input 'labels' needs 32 bytes, got 8");
  EXPECT_EQ(stepsTaken(*session), 0);

  // Still usable: the next good step gives what a fresh session gives.
  ASSERT_TRUE(session->step({{"x", x, sizeof(x)}, {"labels", labels, sizeof(labels)}}).isOk());
  auto fresh = makeSession(lossPlan());
  ASSERT_TRUE(fresh->step({{"x", x, sizeof(x)}, {"labels", labels, sizeof(labels)}}).isOk());
  EXPECT_EQ(session->loss(), fresh->loss());
  EXPECT_EQ(stepsTaken(*session), 1);
  // Reference: rows of x W^T are (-2, 3), (2, -3), (0, 0), (1, 1.5).
  double expected = (std::log1p(std::exp(5.0)) + std::log1p(std::exp(5.0)) + std::log(2.0) +
                     std::log1p(std::exp(0.5))) / 4;
  EXPECT_NEAR(session->loss(), expected, 1e-6);
}

TEST(Session, NonFiniteInputsPassWhenAllowed) {
  SessionOptions options;
  options.allowNonFiniteInputs = true;
  std::unique_ptr<Session> session;
  ASSERT_TRUE(Session::createFromBytes(serialize(lossPlan()), "loss", options, &session).isOk());
  float x[12] = {std::nanf("")};
  int64_t labels[4] = {0, 1, 1, 0};
  EXPECT_FALSE(session->step({{"x", x, sizeof(x)}, {"labels", labels, 16}}).isOk());
  ASSERT_TRUE(session->step({{"x", x, sizeof(x)}, {"labels", labels, sizeof(labels)}}).isOk());
  EXPECT_TRUE(std::isnan(session->loss()));
  labels[0] = 5; // labels are always checked
  EXPECT_FALSE(session->step({{"x", x, sizeof(x)}, {"labels", labels, sizeof(labels)}}).isOk());
}

// Plans, checkpoints and feeds were read to the end whatever their size:
// `amp-run info /dev/zero` took memory until the allocation failed.
TEST(ReadFile, StopsAtTheLimit) {
  std::string contents;
  Status s = readFile("/dev/zero", &contents, 1 << 20);
  EXPECT_EQ(s.message(), "/dev/zero: larger than the limit of 1048576 bytes");
  char path[] = "/tmp/amp-read-test-XXXXXX";
  int fd = mkstemp(path);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(write(fd, "0123456789", 10), 10);
  close(fd);
  s = readFile(path, &contents, 9);
  EXPECT_EQ(s.message(), std::string(path) + ": larger than the limit of 9 bytes (10 bytes)");
  EXPECT_TRUE(readFile(path, &contents, 10).isOk());
  EXPECT_EQ(contents, "0123456789");
  unlink(path);
}

// A checkpoint above protobuf's 2 GiB (states of ~170M parameters with
// AdamW) failed to serialize unnoticed, and the file that replaced the last
// good checkpoint held a header without its payload. It is now an error
// before anything is written (the limit lowered here to 64 bytes).
TEST(Checkpoint, RefusesPayloadsAboveTheLimit) {
  proto::Checkpoint checkpoint;
  checkpoint.set_format_version(kCheckpointFormatVersion);
  checkpoint.add_tensors()->set_data(std::string(100, 'x'));
  std::string file;
  Status s = encodeCheckpoint(checkpoint, &file, 64);
  EXPECT_EQ(s.message(), "the checkpoint would be 106 bytes, above the format's limit of 64 "
                         "(one protobuf message)");
  EXPECT_TRUE(file.empty());
  ASSERT_TRUE(encodeCheckpoint(checkpoint, &file).isOk());
  proto::Checkpoint back;
  ASSERT_TRUE(decodeCheckpoint(file, "c", &back).isOk());
  EXPECT_EQ(back.tensors(0).data(), checkpoint.tensors(0).data());
}

TEST(Session, MissingFileIsAnError) {
  std::unique_ptr<Session> session;
  Status status = Session::create("/nonexistent/model.ampplan", {}, &session);
  EXPECT_EQ(status.message(), "/nonexistent/model.ampplan: cannot open");
}

} // namespace
