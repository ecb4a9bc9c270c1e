// RUN: amp-opt %s -canonicalize -split-input-file | FileCheck %s
// Cast folders: no-op casts and lossless round trips disappear.

// CHECK-LABEL: func.func @noop_cast
// CHECK-NOT: amp.cast
// CHECK: return %arg0
func.func @noop_cast(%a: tensor<4xf32>) -> tensor<4xf32> {
  %0 = amp.cast %a : tensor<4xf32> to tensor<4xf32>
  return %0 : tensor<4xf32>
}

// -----

// bf16 -> f32 -> bf16 is exact, so it folds.
// CHECK-LABEL: func.func @widen_then_narrow
// CHECK-NOT: amp.cast
// CHECK: return %arg0
func.func @widen_then_narrow(%a: tensor<4xbf16>) -> tensor<4xbf16> {
  %0 = amp.cast %a : tensor<4xbf16> to tensor<4xf32>
  %1 = amp.cast %0 : tensor<4xf32> to tensor<4xbf16>
  return %1 : tensor<4xbf16>
}

// -----

// f32 -> bf16 -> f32 rounds, so both casts stay.
// CHECK-LABEL: func.func @narrow_then_widen
// CHECK: amp.cast %arg0 : tensor<4xf32> to tensor<4xbf16>
// CHECK: amp.cast %{{.*}} : tensor<4xbf16> to tensor<4xf32>
func.func @narrow_then_widen(%a: tensor<4xf32>) -> tensor<4xf32> {
  %0 = amp.cast %a : tensor<4xf32> to tensor<4xbf16>
  %1 = amp.cast %0 : tensor<4xbf16> to tensor<4xf32>
  return %1 : tensor<4xf32>
}

// -----

// The gradient of a packed Q/K/V projection: three zero-padded parts of the
// last axis summed (as autodiff writes slice gradients) become one concat.
// CHECK-LABEL: func.func @adjacent_pads_concat
// CHECK-NOT: amp.pad
// CHECK-NOT: amp.add
// CHECK: %[[KV:.+]] = amp.concat %arg1, %arg2 {axis = 2 : i64} : (tensor<2x3x4xbf16>, tensor<2x3x4xbf16>) -> tensor<2x3x8xbf16>
// CHECK: %[[QKV:.+]] = amp.concat %arg0, %[[KV]] {axis = 2 : i64} : (tensor<2x3x4xbf16>, tensor<2x3x8xbf16>) -> tensor<2x3x12xbf16>
// CHECK: return %[[QKV]]
func.func @adjacent_pads_concat(%q: tensor<2x3x4xbf16>, %k: tensor<2x3x4xbf16>, %v: tensor<2x3x4xbf16>) -> tensor<2x3x12xbf16> {
  %pv = amp.pad %v {pads = array<i64: 0, 0, 8, 0, 0, 0>} : tensor<2x3x4xbf16> -> tensor<2x3x12xbf16>
  %pk = amp.pad %k {pads = array<i64: 0, 0, 4, 0, 0, 4>} : tensor<2x3x4xbf16> -> tensor<2x3x12xbf16>
  %kv = amp.add %pv, %pk : (tensor<2x3x12xbf16>, tensor<2x3x12xbf16>) -> tensor<2x3x12xbf16>
  %pq = amp.pad %q {pads = array<i64: 0, 0, 0, 0, 0, 8>} : tensor<2x3x4xbf16> -> tensor<2x3x12xbf16>
  %qkv = amp.add %kv, %pq : (tensor<2x3x12xbf16>, tensor<2x3x12xbf16>) -> tensor<2x3x12xbf16>
  return %qkv : tensor<2x3x12xbf16>
}

// -----

// Boxes that leave a gap, overlap, sit on two axes or pad with a non-zero
// value stay pads and adds.
// CHECK-LABEL: func.func @pads_that_stay
// CHECK-COUNT-4: amp.add
// CHECK-NOT: amp.concat
func.func @pads_that_stay(%a: tensor<4x2xf32>, %b: tensor<4x2xf32>, %c: tensor<2x4xf32>) -> (tensor<4x6xf32>, tensor<4x6xf32>, tensor<4x6xf32>, tensor<4x6xf32>) {
  %gap0 = amp.pad %a {pads = array<i64: 0, 0, 0, 4>} : tensor<4x2xf32> -> tensor<4x6xf32>
  %gap1 = amp.pad %b {pads = array<i64: 0, 3, 0, 1>} : tensor<4x2xf32> -> tensor<4x6xf32>
  %gap = amp.add %gap0, %gap1 : (tensor<4x6xf32>, tensor<4x6xf32>) -> tensor<4x6xf32>
  %over1 = amp.pad %b {pads = array<i64: 0, 1, 0, 3>} : tensor<4x2xf32> -> tensor<4x6xf32>
  %over = amp.add %gap0, %over1 : (tensor<4x6xf32>, tensor<4x6xf32>) -> tensor<4x6xf32>
  %two0 = amp.pad %c {pads = array<i64: 2, 0, 0, 2>} : tensor<2x4xf32> -> tensor<4x6xf32>
  %two = amp.add %gap0, %two0 : (tensor<4x6xf32>, tensor<4x6xf32>) -> tensor<4x6xf32>
  %ones = amp.pad %b {pads = array<i64: 0, 2, 0, 2>, value = 1.0 : f32} : tensor<4x2xf32> -> tensor<4x6xf32>
  %one = amp.add %gap0, %ones : (tensor<4x6xf32>, tensor<4x6xf32>) -> tensor<4x6xf32>
  return %gap, %over, %two, %one : tensor<4x6xf32>, tensor<4x6xf32>, tensor<4x6xf32>, tensor<4x6xf32>
}

// -----

// x * 1 is x in any float type; a 1 that broadcasts x to a larger result
// stays a mul, and so does any other constant.
// CHECK-LABEL: func.func @mul_by_one
// CHECK-NEXT: %[[ONES:.*]] = amp.constant dense<1.000000e+00> : tensor<3x4xbf16>
// CHECK-NEXT: %[[TWO:.*]] = amp.constant dense<2.000000e+00>
// CHECK-NEXT: %[[WIDER:.*]] = amp.mul %arg1, %[[ONES]] : (tensor<4xbf16>, tensor<3x4xbf16>) -> tensor<3x4xbf16>
// CHECK-NEXT: %[[DOUBLED:.*]] = amp.mul %arg0, %[[TWO]]
// CHECK-NEXT: return %arg0, %arg1, %[[WIDER]], %[[DOUBLED]]
func.func @mul_by_one(%a: tensor<3x4xf32>, %b: tensor<4xbf16>) -> (tensor<3x4xf32>, tensor<4xbf16>, tensor<3x4xbf16>, tensor<3x4xf32>) {
  %one = amp.constant dense<1.0> : tensor<f32>
  %oneLow = amp.constant dense<1.0> : tensor<bf16>
  %ones = amp.constant dense<1.0> : tensor<3x4xbf16>
  %two = amp.constant dense<2.0> : tensor<f32>
  %0 = amp.mul %a, %one : (tensor<3x4xf32>, tensor<f32>) -> tensor<3x4xf32>
  %1 = amp.mul %oneLow, %b : (tensor<bf16>, tensor<4xbf16>) -> tensor<4xbf16>
  %2 = amp.mul %b, %ones : (tensor<4xbf16>, tensor<3x4xbf16>) -> tensor<3x4xbf16>
  %3 = amp.mul %a, %two : (tensor<3x4xf32>, tensor<f32>) -> tensor<3x4xf32>
  return %0, %1, %2, %3 : tensor<3x4xf32>, tensor<4xbf16>, tensor<3x4xbf16>, tensor<3x4xf32>
}
