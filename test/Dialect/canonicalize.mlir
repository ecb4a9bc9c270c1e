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
