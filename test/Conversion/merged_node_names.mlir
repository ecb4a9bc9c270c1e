// An op merged from several ONNX nodes (CSE, canonicalization) has a fused
// location. Regression: policies took the last name in it and plan kernels
// the first, so a node rule and the plan (and --check-numerics, profiles)
// named different nodes. One helper now names it after the first, everywhere.
// RUN: amp-opt %s --amp-autocast="precision=bf16 nodes=/first/*=f32" | FileCheck %s --check-prefix=POLICY
// RUN: amp-opt %s --emit=plan-text | FileCheck %s --check-prefix=PLAN

func.func @forward(%x: tensor<4x3xf32> {amp.input = "x"}) -> (tensor<4x3xf32> {amp.output = "y"}) {
  %0 = amp.neg %x : tensor<4x3xf32> loc(fused["/first/Neg", "/second/Neg"])
  return %0 : tensor<4x3xf32>
}

// POLICY: amp.neg {{.*}}node rule '/first/*'
// PLAN: op: "neg"
// PLAN: node: "/first/Neg"
