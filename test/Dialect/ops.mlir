// RUN: amp-opt %s | amp-opt | FileCheck %s
// Round trip of every amp op in its custom assembly format.

// CHECK-LABEL: func.func @forward_ops
func.func @forward_ops(%x: tensor<8x1x2x2xf32>, %w: tensor<3x4xf32>, %b: tensor<3xf32>,
                       %labels: tensor<8xi64>) -> tensor<f32> {
  // CHECK: amp.constant dense<2.000000e+00> : tensor<f32>
  %c = amp.constant dense<2.0> : tensor<f32>
  // CHECK: amp.reshape %{{.*}} : tensor<8x1x2x2xf32> -> tensor<8x4xf32>
  %flat = amp.reshape %x : tensor<8x1x2x2xf32> -> tensor<8x4xf32>
  // CHECK: amp.matmul %{{.*}}, %{{.*}} {transpose_rhs} : tensor<8x4xf32>, tensor<3x4xf32> -> tensor<8x3xf32>
  %y = amp.matmul %flat, %w {transpose_rhs} : tensor<8x4xf32>, tensor<3x4xf32> -> tensor<8x3xf32>
  // CHECK: amp.add %{{.*}}, %{{.*}} : (tensor<8x3xf32>, tensor<3xf32>) -> tensor<8x3xf32>
  %z = amp.add %y, %b : (tensor<8x3xf32>, tensor<3xf32>) -> tensor<8x3xf32>
  // CHECK: amp.sub %{{.*}}, %{{.*}} : (tensor<8x3xf32>, tensor<f32>) -> tensor<8x3xf32>
  %s = amp.sub %z, %c : (tensor<8x3xf32>, tensor<f32>) -> tensor<8x3xf32>
  // CHECK: amp.mul %{{.*}}, %{{.*}} : (tensor<8x3xf32>, tensor<8x3xf32>) -> tensor<8x3xf32>
  %m = amp.mul %s, %z : (tensor<8x3xf32>, tensor<8x3xf32>) -> tensor<8x3xf32>
  // CHECK: amp.neg %{{.*}} : tensor<8x3xf32>
  %n = amp.neg %m : tensor<8x3xf32>
  // CHECK: amp.relu %{{.*}} : tensor<8x3xf32>
  %r = amp.relu %n : tensor<8x3xf32>
  // CHECK: amp.relu_grad %{{.*}}, %{{.*}} : tensor<8x3xf32>
  %g = amp.relu_grad %r, %n : tensor<8x3xf32>
  // CHECK: amp.reduce_sum %{{.*}} axes = [0] : tensor<8x3xf32> -> tensor<3xf32>
  %sum = amp.reduce_sum %g axes = [0] : tensor<8x3xf32> -> tensor<3xf32>
  // CHECK: amp.reduce_sum %{{.*}} axes = [1] {keep_dims} : tensor<8x3xf32> -> tensor<8x1xf32>
  %kept = amp.reduce_sum %g axes = [1] {keep_dims} : tensor<8x3xf32> -> tensor<8x1xf32>
  // CHECK: amp.cast %{{.*}} : tensor<8x3xf32> to tensor<8x3xbf16>
  %low = amp.cast %r : tensor<8x3xf32> to tensor<8x3xbf16>
  // CHECK: amp.matmul %{{.*}}, %{{.*}} {transpose_lhs} : tensor<8x3xbf16>, tensor<8x3xbf16> -> tensor<3x3xf32>
  %acc = amp.matmul %low, %low {transpose_lhs} : tensor<8x3xbf16>, tensor<8x3xbf16> -> tensor<3x3xf32>
  // CHECK: amp.softmax_cross_entropy %{{.*}}, %{{.*}} {reduction = #amp<reduction mean>} : tensor<8x3xf32>, tensor<8xi64> -> tensor<f32>
  %loss = amp.softmax_cross_entropy %r, %labels {reduction = #amp<reduction mean>} : tensor<8x3xf32>, tensor<8xi64> -> tensor<f32>
  // CHECK: amp.softmax_cross_entropy_grad %{{.*}}, %{{.*}}, %{{.*}} {reduction = #amp<reduction sum>} : tensor<f32>, tensor<8x3xf32>, tensor<8xi64> -> tensor<8x3xf32>
  %dl = amp.softmax_cross_entropy_grad %loss, %r, %labels {reduction = #amp<reduction sum>} : tensor<f32>, tensor<8x3xf32>, tensor<8xi64> -> tensor<8x3xf32>
  return %loss : tensor<f32>
}

// CHECK-LABEL: func.func @optimizer_ops
func.func @optimizer_ops(%p: tensor<4xf32>, %g: tensor<4xf32>, %m: tensor<4xf32>,
                         %v: tensor<4xf32>, %step: tensor<i64>)
    -> (tensor<4xf32>, tensor<4xf32>, tensor<i64>) {
  // CHECK: amp.sgd_update %{{.*}}, %{{.*}}, %{{.*}} {lr = 1.000000e-01 : f64, momentum = 9.000000e-01 : f64, nesterov, weight_decay = 0.000000e+00 : f64} : tensor<4xf32>
  %p1, %b1 = amp.sgd_update %p, %g, %m {lr = 0.1 : f64, momentum = 0.9 : f64, weight_decay = 0.0 : f64, nesterov} : tensor<4xf32>
  // CHECK: amp.adamw_update %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}} {beta1 = {{.*}}, beta2 = {{.*}}, eps = {{.*}}, lr = {{.*}}, weight_decay = {{.*}}} : tensor<4xf32>, tensor<i64>
  %p2, %m2, %v2 = amp.adamw_update %p1, %g, %m, %v, %step {lr = 1.0e-3 : f64, beta1 = 0.9 : f64, beta2 = 0.999 : f64, eps = 1.0e-8 : f64, weight_decay = 0.01 : f64} : tensor<4xf32>, tensor<i64>
  // CHECK: amp.increment %{{.*}} : tensor<i64>
  %s1 = amp.increment %step : tensor<i64>
  return %p2, %b1, %s1 : tensor<4xf32>, tensor<4xf32>, tensor<i64>
}

// CHECK-LABEL: func.func @sensitive_ops
func.func @sensitive_ops(%x: tensor<4x3xbf16>, %y: tensor<4x3xf32>, %c: tensor<4x1xf32>)
    -> (tensor<4x3xf32>, tensor<4x3xf32>, tensor<4x3xf32>, tensor<4x3xf32>, tensor<4x3xf32>) {
  // CHECK: amp.exp %{{.*}} : tensor<4x3xbf16> -> tensor<4x3xf32>
  %0 = amp.exp %x : tensor<4x3xbf16> -> tensor<4x3xf32>
  // CHECK: amp.log %{{.*}} : tensor<4x3xf32> -> tensor<4x3xf32>
  %1 = amp.log %y : tensor<4x3xf32> -> tensor<4x3xf32>
  // CHECK: amp.softmax %{{.*}} : tensor<4x3xbf16> -> tensor<4x3xf32>
  %2 = amp.softmax %x : tensor<4x3xbf16> -> tensor<4x3xf32>
  // CHECK: amp.div %{{.*}}, %{{.*}} : (tensor<4x3xf32>, tensor<4x1xf32>) -> tensor<4x3xf32>
  %3 = amp.div %y, %c : (tensor<4x3xf32>, tensor<4x1xf32>) -> tensor<4x3xf32>
  // CHECK: amp.broadcast_to %{{.*}} : tensor<4x1xf32> -> tensor<4x3xf32>
  %4 = amp.broadcast_to %c : tensor<4x1xf32> -> tensor<4x3xf32>
  return %0, %1, %2, %3, %4 : tensor<4x3xf32>, tensor<4x3xf32>, tensor<4x3xf32>, tensor<4x3xf32>, tensor<4x3xf32>
}
