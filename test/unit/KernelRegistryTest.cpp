// The kernel registry: what the plan checks of every kernel before a backend
// builds it.
#include "amprt/KernelRegistry.h"

#include <gtest/gtest.h>

using namespace amprt;

namespace {

proto::Kernel kernel(const std::string &op, std::map<std::string, double> attrs = {}) {
  proto::Kernel k;
  k.set_op(op);
  for (const auto &[name, value] : attrs)
    (*k.mutable_attrs())[name] = value;
  return k;
}

TEST(KernelRegistry, EveryIdHasOneRowUnderItsName) {
  int rows = 0;
  for (int id = 0; id <= static_cast<int>(KernelId::FusedElementwise); ++id) {
    int named = 0;
    for (const char *op : {"matmul", "add", "sub", "mul", "div", "neg", "relu", "relu_grad",
                           "exp", "log", "softmax", "reduce_sum", "broadcast_to", "cast",
                           "copy", "softmax_cross_entropy", "softmax_cross_entropy_grad",
                           "adamw_update", "sgd_update", "increment", "unscale",
                           "found_nonfinite", "global_norm", "gradient_stats",
                           "clip_coefficient", "update_loss_scale", "accumulation_step",
                           "zero_if", "fused_elementwise"})
      if (const KernelSpec *spec = findKernel(op); spec && static_cast<int>(spec->id) == id)
        ++named;
    EXPECT_EQ(named, 1) << "KernelId " << id;
    rows += named;
  }
  EXPECT_EQ(rows, 29);
}

TEST(KernelRegistry, ChecksCountsAndAttributeNames) {
  const KernelSpec *spec = nullptr;
  EXPECT_TRUE(checkKernel(kernel("adamw_update", {{"lr", 1e-3}}), 5, 4, &spec).isOk());
  ASSERT_NE(spec, nullptr);
  EXPECT_EQ(spec->id, KernelId::AdamWUpdate);
  EXPECT_EQ(checkKernel(kernel("adamw_update"), 4, 3, &spec).message(),
            "expects 5 to 6 inputs and 3 to 4 outputs, got 4 and 3");
  EXPECT_EQ(checkKernel(kernel("found_nonfinite"), 1, 2, &spec).message(),
            "expects 1 or more inputs and 1 outputs, got 1 and 2");
  EXPECT_EQ(checkKernel(kernel("matmul", {{"transpose_rsh", 1}}), 2, 1, &spec).message(),
            "unknown attribute 'transpose_rsh'");
  EXPECT_EQ(checkKernel(kernel("conv"), 2, 1, &spec).message(), "unknown kernel");
}

} // namespace
