// RUN: amp-opt %s --amp-recognize-composites | FileCheck %s
// Decomposed GELUs (as exporters before opset 20 write them) become amp.gelu
// and written-out layer norms amp.layer_norm;
// look-alikes with other constants, or whose factors read other values, stay.

// PyTorch's exact form: ((x * (erf(x / sqrt 2) + 1)) * 0.5.
// CHECK-LABEL: func.func @exact
// CHECK-NEXT: %[[G:.*]] = amp.gelu %arg0 : tensor<4x8xf32>
// CHECK-NEXT: return %[[G]]
func.func @exact(%x: tensor<4x8xf32>) -> tensor<4x8xf32> {
  %sqrt2 = amp.constant dense<1.41421354> : tensor<f32>
  %one = amp.constant dense<1.0> : tensor<f32>
  %half = amp.constant dense<0.5> : tensor<f32>
  %0 = amp.div %x, %sqrt2 : (tensor<4x8xf32>, tensor<f32>) -> tensor<4x8xf32>
  %1 = amp.erf %0 : tensor<4x8xf32>
  %2 = amp.add %1, %one : (tensor<4x8xf32>, tensor<f32>) -> tensor<4x8xf32>
  %3 = amp.mul %x, %2 : (tensor<4x8xf32>, tensor<4x8xf32>) -> tensor<4x8xf32>
  %4 = amp.mul %3, %half : (tensor<4x8xf32>, tensor<f32>) -> tensor<4x8xf32>
  return %4 : tensor<4x8xf32>
}

// Another association and order: (0.5 * x) * (1 + erf(x * 0.7071...)).
// CHECK-LABEL: func.func @exact_reassociated
// CHECK-NEXT: %[[G:.*]] = amp.gelu %arg0 : tensor<8xbf16>
// CHECK-NEXT: return %[[G]]
func.func @exact_reassociated(%x: tensor<8xbf16>) -> tensor<8xbf16> {
  %rsqrt2 = amp.constant dense<0.707106769> : tensor<1xbf16>
  %one = amp.constant dense<1.0> : tensor<bf16>
  %half = amp.constant dense<0.5> : tensor<bf16>
  %h = amp.mul %half, %x : (tensor<bf16>, tensor<8xbf16>) -> tensor<8xbf16>
  %0 = amp.mul %x, %rsqrt2 : (tensor<8xbf16>, tensor<1xbf16>) -> tensor<8xbf16>
  %1 = amp.erf %0 : tensor<8xbf16>
  %2 = amp.add %one, %1 : (tensor<bf16>, tensor<8xbf16>) -> tensor<8xbf16>
  %3 = amp.mul %h, %2 : (tensor<8xbf16>, tensor<8xbf16>) -> tensor<8xbf16>
  return %3 : tensor<8xbf16>
}

// The tanh approximation as PyTorch exports gelu(x, approximate='tanh').
// CHECK-LABEL: func.func @tanh
// CHECK-NEXT: %[[G:.*]] = amp.gelu %arg0 {approximate_tanh} : tensor<4x8xf32>
// CHECK-NEXT: return %[[G]]
func.func @tanh(%x: tensor<4x8xf32>) -> tensor<4x8xf32> {
  %half = amp.constant dense<0.5> : tensor<f32>
  %c = amp.constant dense<0.797884583> : tensor<f32>
  %k = amp.constant dense<0.044715> : tensor<f32>
  %one = amp.constant dense<1.0> : tensor<f32>
  %h = amp.mul %x, %half : (tensor<4x8xf32>, tensor<f32>) -> tensor<4x8xf32>
  %cube = amp.pow %x {exponent = 3.0 : f32} : tensor<4x8xf32> -> tensor<4x8xf32>
  %0 = amp.mul %cube, %k : (tensor<4x8xf32>, tensor<f32>) -> tensor<4x8xf32>
  %1 = amp.add %x, %0 : (tensor<4x8xf32>, tensor<4x8xf32>) -> tensor<4x8xf32>
  %2 = amp.mul %1, %c : (tensor<4x8xf32>, tensor<f32>) -> tensor<4x8xf32>
  %3 = amp.tanh %2 : tensor<4x8xf32>
  %4 = amp.add %3, %one : (tensor<4x8xf32>, tensor<f32>) -> tensor<4x8xf32>
  %5 = amp.mul %h, %4 : (tensor<4x8xf32>, tensor<4x8xf32>) -> tensor<4x8xf32>
  return %5 : tensor<4x8xf32>
}

// A matched intermediate read elsewhere stays for that reader.
// CHECK-LABEL: func.func @shared_intermediate
// CHECK: %[[E:.*]] = amp.erf
// CHECK: %[[G:.*]] = amp.gelu %arg0 : tensor<8xf32>
// CHECK: return %[[G]], %[[E]]
func.func @shared_intermediate(%x: tensor<8xf32>) -> (tensor<8xf32>, tensor<8xf32>) {
  %sqrt2 = amp.constant dense<1.41421354> : tensor<f32>
  %one = amp.constant dense<1.0> : tensor<f32>
  %half = amp.constant dense<0.5> : tensor<f32>
  %0 = amp.div %x, %sqrt2 : (tensor<8xf32>, tensor<f32>) -> tensor<8xf32>
  %1 = amp.erf %0 : tensor<8xf32>
  %2 = amp.add %1, %one : (tensor<8xf32>, tensor<f32>) -> tensor<8xf32>
  %3 = amp.mul %x, %2 : (tensor<8xf32>, tensor<8xf32>) -> tensor<8xf32>
  %4 = amp.mul %3, %half : (tensor<8xf32>, tensor<f32>) -> tensor<8xf32>
  return %4, %1 : tensor<8xf32>, tensor<8xf32>
}

// Not GELUs: a different constant; erf of another value than the factor.
// CHECK-LABEL: func.func @look_alikes
// CHECK-NOT: amp.gelu
// CHECK: return
func.func @look_alikes(%x: tensor<8xf32>, %y: tensor<8xf32>) -> (tensor<8xf32>, tensor<8xf32>) {
  %sqrt2 = amp.constant dense<1.41421354> : tensor<f32>
  %one = amp.constant dense<1.0> : tensor<f32>
  %half = amp.constant dense<0.5> : tensor<f32>
  %almost = amp.constant dense<0.49> : tensor<f32>
  %0 = amp.div %x, %sqrt2 : (tensor<8xf32>, tensor<f32>) -> tensor<8xf32>
  %1 = amp.erf %0 : tensor<8xf32>
  %2 = amp.add %1, %one : (tensor<8xf32>, tensor<f32>) -> tensor<8xf32>
  %3 = amp.mul %x, %2 : (tensor<8xf32>, tensor<8xf32>) -> tensor<8xf32>
  %4 = amp.mul %3, %almost : (tensor<8xf32>, tensor<f32>) -> tensor<8xf32>
  %5 = amp.mul %y, %2 : (tensor<8xf32>, tensor<8xf32>) -> tensor<8xf32>
  %6 = amp.mul %5, %half : (tensor<8xf32>, tensor<f32>) -> tensor<8xf32>
  return %4, %6 : tensor<8xf32>, tensor<8xf32>
}

// A layer norm written out with its scale and shift (ReduceMean imports as
// reduce_sum * 1/n): one amp.layer_norm that takes them.
// CHECK-LABEL: func.func @layer_norm
// CHECK-NEXT: %[[Y:.*]], %{{.*}}, %{{.*}} = amp.layer_norm %arg0, %arg1, %arg2 {axis = 1 : i64, epsilon = 9.99999974E-6 : f32} : tensor<4x16xf32>, tensor<16xf32>, tensor<16xf32> -> tensor<4x16xf32>, tensor<4x1xf32>, tensor<4x1xf32>
// CHECK-NEXT: return %[[Y]]
func.func @layer_norm(%x: tensor<4x16xf32>, %g: tensor<16xf32>, %b: tensor<16xf32>) -> tensor<4x16xf32> {
  %inv = amp.constant dense<0.0625> : tensor<f32>
  %eps = amp.constant dense<1.0e-5> : tensor<f32>
  %s = amp.reduce_sum %x axes = [1] {keep_dims} : tensor<4x16xf32> -> tensor<4x1xf32>
  %m = amp.mul %s, %inv : (tensor<4x1xf32>, tensor<f32>) -> tensor<4x1xf32>
  %c = amp.sub %x, %m : (tensor<4x16xf32>, tensor<4x1xf32>) -> tensor<4x16xf32>
  %sq = amp.pow %c {exponent = 2.0 : f32} : tensor<4x16xf32> -> tensor<4x16xf32>
  %vs = amp.reduce_sum %sq axes = [1] {keep_dims} : tensor<4x16xf32> -> tensor<4x1xf32>
  %v = amp.mul %inv, %vs : (tensor<f32>, tensor<4x1xf32>) -> tensor<4x1xf32>
  %ve = amp.add %v, %eps : (tensor<4x1xf32>, tensor<f32>) -> tensor<4x1xf32>
  %sd = amp.sqrt %ve : tensor<4x1xf32>
  %n = amp.div %c, %sd : (tensor<4x16xf32>, tensor<4x1xf32>) -> tensor<4x16xf32>
  %scaled = amp.mul %g, %n : (tensor<16xf32>, tensor<4x16xf32>) -> tensor<4x16xf32>
  %y = amp.add %scaled, %b : (tensor<4x16xf32>, tensor<16xf32>) -> tensor<4x16xf32>
  return %y : tensor<4x16xf32>
}

// Over the last two dims, c * c, no scale or shift: unit scale, zero bias.
// CHECK-LABEL: func.func @layer_norm_plain
// CHECK-DAG: %[[ONE:.*]] = amp.constant dense<1.000000e+00> : tensor<3x4xf32>
// CHECK-DAG: %[[ZERO:.*]] = amp.constant dense<0.000000e+00> : tensor<3x4xf32>
// CHECK: %[[Y:.*]], %{{.*}}, %{{.*}} = amp.layer_norm %arg0, %[[ONE]], %[[ZERO]] {axis = 1 : i64, epsilon = 1.000000e-03 : f32}
// CHECK-NEXT: return %[[Y]]
func.func @layer_norm_plain(%x: tensor<2x3x4xf32>) -> tensor<2x3x4xf32> {
  %inv = amp.constant dense<0.0833333358> : tensor<f32>
  %eps = amp.constant dense<1.0e-3> : tensor<f32>
  %s = amp.reduce_sum %x axes = [1, 2] {keep_dims} : tensor<2x3x4xf32> -> tensor<2x1x1xf32>
  %m = amp.mul %s, %inv : (tensor<2x1x1xf32>, tensor<f32>) -> tensor<2x1x1xf32>
  %c = amp.sub %x, %m : (tensor<2x3x4xf32>, tensor<2x1x1xf32>) -> tensor<2x3x4xf32>
  %sq = amp.mul %c, %c : (tensor<2x3x4xf32>, tensor<2x3x4xf32>) -> tensor<2x3x4xf32>
  %vs = amp.reduce_sum %sq axes = [1, 2] {keep_dims} : tensor<2x3x4xf32> -> tensor<2x1x1xf32>
  %v = amp.mul %vs, %inv : (tensor<2x1x1xf32>, tensor<f32>) -> tensor<2x1x1xf32>
  %ve = amp.add %eps, %v : (tensor<f32>, tensor<2x1x1xf32>) -> tensor<2x1x1xf32>
  %sd = amp.sqrt %ve : tensor<2x1x1xf32>
  %n = amp.div %c, %sd : (tensor<2x3x4xf32>, tensor<2x1x1xf32>) -> tensor<2x3x4xf32>
  return %n : tensor<2x3x4xf32>
}

// Not layer norms: the mean over a leading axis; a mean scaled by 1/(n-1).
// CHECK-LABEL: func.func @layer_norm_look_alikes
// CHECK-NOT: amp.layer_norm
// CHECK: return
func.func @layer_norm_look_alikes(%x: tensor<4x16xf32>) -> (tensor<4x16xf32>, tensor<4x16xf32>) {
  %inv4 = amp.constant dense<0.25> : tensor<f32>
  %inv = amp.constant dense<0.0625> : tensor<f32>
  %inv15 = amp.constant dense<0.0666666701> : tensor<f32>
  %eps = amp.constant dense<1.0e-5> : tensor<f32>
  %s0 = amp.reduce_sum %x axes = [0] {keep_dims} : tensor<4x16xf32> -> tensor<1x16xf32>
  %m0 = amp.mul %s0, %inv4 : (tensor<1x16xf32>, tensor<f32>) -> tensor<1x16xf32>
  %c0 = amp.sub %x, %m0 : (tensor<4x16xf32>, tensor<1x16xf32>) -> tensor<4x16xf32>
  %q0 = amp.pow %c0 {exponent = 2.0 : f32} : tensor<4x16xf32> -> tensor<4x16xf32>
  %w0 = amp.reduce_sum %q0 axes = [0] {keep_dims} : tensor<4x16xf32> -> tensor<1x16xf32>
  %v0 = amp.mul %w0, %inv4 : (tensor<1x16xf32>, tensor<f32>) -> tensor<1x16xf32>
  %e0 = amp.add %v0, %eps : (tensor<1x16xf32>, tensor<f32>) -> tensor<1x16xf32>
  %d0 = amp.sqrt %e0 : tensor<1x16xf32>
  %n0 = amp.div %c0, %d0 : (tensor<4x16xf32>, tensor<1x16xf32>) -> tensor<4x16xf32>
  %s1 = amp.reduce_sum %x axes = [1] {keep_dims} : tensor<4x16xf32> -> tensor<4x1xf32>
  %m1 = amp.mul %s1, %inv : (tensor<4x1xf32>, tensor<f32>) -> tensor<4x1xf32>
  %c1 = amp.sub %x, %m1 : (tensor<4x16xf32>, tensor<4x1xf32>) -> tensor<4x16xf32>
  %q1 = amp.pow %c1 {exponent = 2.0 : f32} : tensor<4x16xf32> -> tensor<4x16xf32>
  %w1 = amp.reduce_sum %q1 axes = [1] {keep_dims} : tensor<4x16xf32> -> tensor<4x1xf32>
  %v1 = amp.mul %w1, %inv15 : (tensor<4x1xf32>, tensor<f32>) -> tensor<4x1xf32>
  %e1 = amp.add %v1, %eps : (tensor<4x1xf32>, tensor<f32>) -> tensor<4x1xf32>
  %d1 = amp.sqrt %e1 : tensor<4x1xf32>
  %n1 = amp.div %c1, %d1 : (tensor<4x16xf32>, tensor<4x1xf32>) -> tensor<4x16xf32>
  return %n0, %n1 : tensor<4x16xf32>, tensor<4x16xf32>
}
