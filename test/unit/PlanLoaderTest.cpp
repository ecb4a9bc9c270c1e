//===- PlanLoaderTest.cpp - malformed plans are refused with reasons ------===//

#include "PlanBuilder.h"

#include <gtest/gtest.h>

#include <cmath>

using namespace amprt;
using amptest::serialize;
using amptest::tinyPlan;

namespace {

std::string loadError(const proto::Plan &plan) {
  proto::Plan loaded;
  Status status = loadPlan(serialize(plan), "p.ampplan", &loaded);
  return status.isOk() ? "" : status.message();
}

TEST(PlanLoader, AcceptsAValidPlan) { EXPECT_EQ(loadError(tinyPlan()), ""); }

TEST(PlanLoader, RefusesGarbage) {
  proto::Plan loaded;
  Status status = loadPlan("\x0a\xff\xff\xff\xff garbage", "p.ampplan", &loaded);
  ASSERT_FALSE(status.isOk());
  EXPECT_EQ(status.message(), "p.ampplan: not a valid plan (protobuf parse failed)");
}

TEST(PlanLoader, RefusesOtherFormatVersions) {
  auto plan = tinyPlan();
  plan.set_format_version(99);
  EXPECT_NE(loadError(plan).find("plan format version 99 is not supported"), std::string::npos);
}

TEST(PlanLoader, RefusesBuffersOutsideTheArena) {
  auto plan = tinyPlan();
  plan.mutable_eval()->mutable_buffers(3)->set_offset(4096);
  EXPECT_NE(loadError(plan).find("eval program buffer #3 lies outside the arena"),
            std::string::npos)
      << loadError(plan);
}

TEST(PlanLoader, RefusesMisalignedArenaOffsets) {
  auto plan = tinyPlan();
  plan.mutable_eval()->mutable_buffers(2)->set_offset(8);
  EXPECT_NE(loadError(plan).find("lies outside the arena"), std::string::npos);
}

TEST(PlanLoader, RefusesUnknownStateAndMismatchedSizes) {
  auto plan = tinyPlan();
  plan.mutable_eval()->mutable_buffers(0)->set_offset(7);
  EXPECT_NE(loadError(plan).find("names an invalid state tensor"), std::string::npos);
  plan = tinyPlan();
  plan.mutable_eval()->mutable_buffers(0)->mutable_type()->set_shape(0, 3);
  EXPECT_NE(loadError(plan).find("names an invalid state tensor"), std::string::npos);
}

TEST(PlanLoader, RefusesKernelsReferringToMissingBuffers) {
  auto plan = tinyPlan();
  plan.mutable_eval()->mutable_kernels(1)->set_inputs(0, 42);
  EXPECT_NE(loadError(plan).find("kernel #1 (relu) refers to buffer 42, which does not exist"),
            std::string::npos)
      << loadError(plan);
}

TEST(PlanLoader, RefusesInitialValuesOfTheWrongSize) {
  auto plan = tinyPlan();
  plan.mutable_states(0)->set_init("abc");
  EXPECT_NE(loadError(plan).find("initial value of 'w' has the wrong size"), std::string::npos);
}

TEST(PlanLoader, RefusesInvalidTypes) {
  auto plan = tinyPlan();
  plan.mutable_states(0)->mutable_type()->set_shape(0, -2);
  EXPECT_NE(loadError(plan).find("invalid dimension -2"), std::string::npos);
}

// Each dimension within bounds but their product past int64: the element
// count wrapped to 0 and the buffer passed as an empty one in the arena.
TEST(PlanLoader, RefusesElementCountsPastTheLimitWithoutOverflowing) {
  auto plan = tinyPlan();
  auto *type = plan.mutable_eval()->mutable_buffers(3)->mutable_type();
  type->clear_shape();
  for (int i = 0; i < 3; ++i)
    type->add_shape(int64_t{1} << 40);
  EXPECT_NE(loadError(plan).find("eval program buffer #3 has more elements than the limit of "
                                 "1099511627776"),
            std::string::npos)
      << loadError(plan);
  type->clear_shape();
  type->add_shape(0);
  type->add_shape(int64_t{1} << 41); // empty, but a dimension past the limit
  EXPECT_NE(loadError(plan).find("more elements than the limit"), std::string::npos);
}

// Found by fuzz-plan: a pooling window of -3.1e231 converted to int64.
TEST(PlanLoader, RefusesAttributesThatAreNotFiniteOrPastTwoToThe62) {
  for (double bad : {-3.10522e231, std::nan(""), HUGE_VAL, 1e19}) {
    auto plan = tinyPlan();
    (*plan.mutable_eval()->mutable_kernels(1)->mutable_attrs())["kernel_shape.0"] = bad;
    EXPECT_NE(loadError(plan).find("kernel #1 (relu) has attribute 'kernel_shape.0'"),
              std::string::npos)
        << bad << ": " << loadError(plan);
  }
}

TEST(PlanLoader, RefusesRanksPastTheLimit) {
  auto plan = tinyPlan();
  auto *type = plan.mutable_states(0)->mutable_type();
  for (int i = 0; i < 20; ++i)
    type->add_shape(1);
  EXPECT_NE(loadError(plan).find("state 'w' has rank 22, above the limit of 16"), std::string::npos)
      << loadError(plan);
}

TEST(PlanLoader, RefusesNamesPastTheLimitWithoutQuotingThem) {
  std::string longName(kMaxNameLength + 1, 'n');
  auto plan = tinyPlan();
  plan.mutable_states(1)->set_name(longName);
  EXPECT_EQ(loadError(plan), "p.ampplan: state #1's name is 4097 bytes, above the limit of "
                             "4096");
  plan = tinyPlan();
  plan.mutable_eval()->mutable_kernels(0)->set_node(longName);
  EXPECT_EQ(loadError(plan), "p.ampplan: eval program kernel #0's node name is 4097 bytes, "
                             "above the limit of 4096");
  plan = tinyPlan();
  plan.mutable_eval()->mutable_inputs(0)->set_name(longName);
  EXPECT_EQ(loadError(plan), "p.ampplan: eval program binding's name is 4097 bytes, above the "
                             "limit of 4096");
  plan = tinyPlan();
  plan.mutable_eval()->mutable_kernels(0)->set_node(std::string(kMaxNameLength, 'n'));
  EXPECT_EQ(loadError(plan), "");
}

TEST(PlanLoader, RefusesProgramsWithMoreKernelsThanTheLimit) {
  // The limit lowered to 4: the eval program's 2 kernels and 4 buffers
  // pass, 5 kernels do not.
  auto plan = tinyPlan();
  proto::Plan loaded;
  EXPECT_TRUE(loadPlan(serialize(plan), "p.ampplan", &loaded, 4).isOk());
  for (int i = 0; i < 3; ++i)
    plan.mutable_eval()->add_kernels()->set_op("relu");
  EXPECT_EQ(loadPlan(serialize(plan), "p.ampplan", &loaded, 4).message(),
            "p.ampplan: eval program has 5 kernels or buffers, above the limit of 4");
}

} // namespace
