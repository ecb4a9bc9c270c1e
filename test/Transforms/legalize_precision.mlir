// RUN: amp-opt %s --amp-legalize-precision=backend=cpu | FileCheck %s
// RUN: not amp-opt %s --amp-legalize-precision=backend=tpu 2>&1 | FileCheck %s --check-prefix=BACKEND
// The policy lets the loss and reductions read bf16; the CPU backend's
// kernels for them are f32-only, so legality widens their inputs, once per
// value. Ops the CPU runs in bf16 are left alone.

// CHECK-LABEL: func.func @cpu
// CHECK: %[[LOW:.*]] = amp.relu %arg0 : tensor<4x3xbf16>
// CHECK: %[[WIDE:.*]] = amp.cast %[[LOW]] {amp.rule = "legality: the CPU backend runs 'amp.softmax_cross_entropy' in f32"} : tensor<4x3xbf16> to tensor<4x3xf32>
// CHECK: amp.softmax_cross_entropy %[[WIDE]], %arg1
// CHECK-NOT: amp.cast
// CHECK: amp.softmax_cross_entropy_grad %{{.*}}, %[[WIDE]], %arg1
// CHECK: amp.reduce_sum %[[WIDE]]
// BACKEND: error: amp-legalize-precision: unknown backend 'tpu' (expected cpu)
func.func @cpu(%x: tensor<4x3xbf16>, %y: tensor<4xi64>) -> (tensor<f32>, tensor<4x3xf32>, tensor<3xf32>) {
  %0 = amp.relu %x : tensor<4x3xbf16>
  %1 = amp.softmax_cross_entropy %0, %y {reduction = #amp<reduction mean>} : tensor<4x3xbf16>, tensor<4xi64> -> tensor<f32>
  %2 = amp.softmax_cross_entropy_grad %1, %0, %y {reduction = #amp<reduction mean>} : tensor<f32>, tensor<4x3xbf16>, tensor<4xi64> -> tensor<4x3xf32>
  %3 = amp.reduce_sum %0 axes = [0] : tensor<4x3xbf16> -> tensor<3xf32>
  return %1, %2, %3 : tensor<f32>, tensor<4x3xf32>, tensor<3xf32>
}
