// RUN: amp-opt %s --amp-recognize-composites | FileCheck %s
// Decomposed GELUs (as exporters before opset 20 write them) become amp.gelu;
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
