// RUN: amp-opt %s -split-input-file --amp-cast-cleanup | FileCheck %s
// Cast cleanup: duplicate casts of one value merge, exact round trips and
// no-op casts fold away, casts of constants become constants, unused casts go.

// CHECK-LABEL: func.func @merge_duplicates
// CHECK: %[[C:.*]] = amp.cast %arg0 : tensor<4xf32> to tensor<4xbf16>
// CHECK-NOT: amp.cast
// CHECK: amp.add %[[C]], %[[C]]
func.func @merge_duplicates(%a: tensor<4xf32>) -> tensor<4xbf16> {
  %0 = amp.cast %a : tensor<4xf32> to tensor<4xbf16>
  %1 = amp.cast %a : tensor<4xf32> to tensor<4xbf16>
  %2 = amp.add %0, %1 : (tensor<4xbf16>, tensor<4xbf16>) -> tensor<4xbf16>
  return %2 : tensor<4xbf16>
}

// -----

// CHECK-LABEL: func.func @fold_pairs
// CHECK-NOT: amp.cast
// CHECK: return %arg0, %arg0
func.func @fold_pairs(%a: tensor<4xf16>) -> (tensor<4xf16>, tensor<4xf16>) {
  %0 = amp.cast %a : tensor<4xf16> to tensor<4xf32>
  %1 = amp.cast %0 : tensor<4xf32> to tensor<4xf16>
  %2 = amp.cast %a : tensor<4xf16> to tensor<4xf16>
  %unused = amp.cast %a : tensor<4xf16> to tensor<4xbf16>
  return %1, %2 : tensor<4xf16>, tensor<4xf16>
}

// -----

// A constant cast to bf16 is a bf16 constant, rounded to nearest even.
// CHECK-LABEL: func.func @fold_constant
// CHECK: %[[C:.*]] = amp.constant dense<[1.000000e+00, 1.007810e+00]> : tensor<2xbf16>
// CHECK-NOT: amp.cast
func.func @fold_constant(%a: tensor<2xbf16>) -> tensor<2xbf16> {
  %c = amp.constant dense<[1.0, 1.005]> : tensor<2xf32> // 1.005 rounds up to 1 + 2^-7
  %0 = amp.cast %c : tensor<2xf32> to tensor<2xbf16>
  %1 = amp.mul %a, %0 : (tensor<2xbf16>, tensor<2xbf16>) -> tensor<2xbf16>
  return %1 : tensor<2xbf16>
}

// -----

// Regression: a mask constant beyond fp16's range overflowed to -inf when it
// was narrowed, so a row masked entirely became NaN in the softmax. Finite
// values saturate to the type's finite extreme; infinities and NaN stay.
// CHECK-LABEL: func.func @saturate_constant
// CHECK: amp.constant dense<[-6.550400e+04, 6.550400e+04, 0xFC00, 0x7C00, 0x7E00, 6.550400e+04, 3.000000e+00]> : tensor<7xf16>
// CHECK-NOT: amp.cast
func.func @saturate_constant(%a: tensor<7xf16>) -> tensor<7xf16> {
  %c = amp.constant dense<[-1.0e9, 1.0e9, 0xFF800000, 0x7F800000, 0x7FC00000, 65519.0, 3.0]> : tensor<7xf32>
  %0 = amp.cast %c : tensor<7xf32> to tensor<7xf16>
  %1 = amp.add %a, %0 : (tensor<7xf16>, tensor<7xf16>) -> tensor<7xf16>
  return %1 : tensor<7xf16>
}

// -----

// A lossy round trip (f32 -> bf16 -> f32) is kept: it changes values.
// CHECK-LABEL: func.func @keep_lossy
// CHECK: amp.cast %arg0 : tensor<4xf32> to tensor<4xbf16>
// CHECK: amp.cast %{{.*}} : tensor<4xbf16> to tensor<4xf32>
func.func @keep_lossy(%a: tensor<4xf32>) -> tensor<4xf32> {
  %0 = amp.cast %a : tensor<4xf32> to tensor<4xbf16>
  %1 = amp.cast %0 : tensor<4xbf16> to tensor<4xf32>
  return %1 : tensor<4xf32>
}

// -----

// A GEMM whose every reader widens its bf16 result writes its f32
// accumulator instead (as autocast does for FP32-only readers; here the
// readers are follow-ops that turned f32): no rounding, no widening pass.
// CHECK-LABEL: func.func @gemm_for_f32_readers
// CHECK: %[[P:.*]] = amp.matmul %arg0, %arg1 {amp.rule = "low; f32 result (every reader widens it)"} : tensor<2x3xbf16>, tensor<3x4xbf16> -> tensor<2x4xf32>
// CHECK-NOT: amp.cast
// CHECK: amp.mul %[[P]], %arg2
// CHECK: amp.sub %[[P]], %arg2
func.func @gemm_for_f32_readers(%a: tensor<2x3xbf16>, %b: tensor<3x4xbf16>, %c: tensor<2x4xf32>) -> (tensor<2x4xf32>, tensor<2x4xf32>) {
  %0 = amp.matmul %a, %b {amp.rule = "low"} : tensor<2x3xbf16>, tensor<3x4xbf16> -> tensor<2x4xbf16>
  %1 = amp.cast %0 : tensor<2x4xbf16> to tensor<2x4xf32>
  %2 = amp.cast %0 : tensor<2x4xbf16> to tensor<2x4xf32>
  %3 = amp.mul %1, %c : (tensor<2x4xf32>, tensor<2x4xf32>) -> tensor<2x4xf32>
  %4 = amp.sub %2, %c : (tensor<2x4xf32>, tensor<2x4xf32>) -> tensor<2x4xf32>
  return %3, %4 : tensor<2x4xf32>, tensor<2x4xf32>
}

// -----

// One reader that wants the bf16 result (here another GEMM) keeps it low.
// CHECK-LABEL: func.func @gemm_with_a_low_reader
// CHECK: amp.matmul %arg0, %arg1 {{.*}} -> tensor<2x2xbf16>
// CHECK: amp.cast
func.func @gemm_with_a_low_reader(%a: tensor<2x3xbf16>, %b: tensor<3x2xbf16>) -> (tensor<2x2xf32>, tensor<2x2xbf16>) {
  %0 = amp.matmul %a, %b : tensor<2x3xbf16>, tensor<3x2xbf16> -> tensor<2x2xbf16>
  %1 = amp.cast %0 : tensor<2x2xbf16> to tensor<2x2xf32>
  %2 = amp.matmul %0, %0 : tensor<2x2xbf16>, tensor<2x2xbf16> -> tensor<2x2xbf16>
  return %1, %2 : tensor<2x2xf32>, tensor<2x2xbf16>
}
