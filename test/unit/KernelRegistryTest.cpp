// The kernel registry: what the plan checks of every kernel before a backend
// builds it.
#include "amprt/KernelRegistry.h"

#include <gtest/gtest.h>

#include <set>

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
  // Row i is KernelId i (the backends' switches and the table agree), every
  // id up to the last has a row, and each name finds its own row.
  ASSERT_EQ(kernelCount, static_cast<size_t>(KernelId::FusedElementwise) + 1);
  std::set<std::string> names;
  for (size_t i = 0; i < kernelCount; ++i) {
    const KernelSpec &row = kernelTable()[i];
    EXPECT_EQ(static_cast<size_t>(row.id), i) << row.op;
    EXPECT_TRUE(names.insert(row.op).second) << "two rows named " << row.op;
    EXPECT_EQ(findKernel(row.op), &row) << row.op;
  }
  // Spot checks against the plan names the compiler emits.
  EXPECT_EQ(findKernel("relu_grad")->id, KernelId::ReluGrad);
  EXPECT_EQ(findKernel("matmul")->id, KernelId::Matmul);
  EXPECT_EQ(findKernel("fused_elementwise")->id, KernelId::FusedElementwise);
  EXPECT_EQ(findKernel("no_such_kernel"), nullptr);
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
  EXPECT_EQ(checkKernel(kernel("conv_transpose"), 2, 1, &spec).message(), "unknown kernel");
}

TEST(KernelRegistry, ListAttributesAreNumberedElements) {
  // A list attribute NAME is stored as NAME.0, NAME.1, ...; nothing else
  // passes under its name.
  const KernelSpec *spec = nullptr;
  EXPECT_TRUE(
      checkKernel(kernel("conv", {{"strides.0", 2}, {"strides.1", 2}, {"group", 1}}), 2, 1, &spec)
          .isOk());
  EXPECT_EQ(checkKernel(kernel("conv", {{"strides.x", 2}}), 2, 1, &spec).message(),
            "unknown attribute 'strides.x'");
  EXPECT_EQ(checkKernel(kernel("conv", {{"stride.0", 2}}), 2, 1, &spec).message(),
            "unknown attribute 'stride.0'");
  EXPECT_EQ(checkKernel(kernel("conv", {{"strides.", 2}}), 2, 1, &spec).message(),
            "unknown attribute 'strides.'");
}

} // namespace
