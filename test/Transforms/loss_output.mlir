// RUN: amp-opt %s --amp-build-train-step="loss=output:loss optimizer=none" | FileCheck %s
// loss=output:NAME trains on a scalar the model computes itself; its labels
// stay ordinary batch inputs.

func.func @forward(%x: tensor<4x3xf32> {amp.input = "x"}, %y: tensor<4xi64> {amp.input = "y"},
                   %w: tensor<2x3xf32> {amp.param = "w"})
    -> (tensor<4x2xf32> {amp.output = "logits"}, tensor<f32> {amp.output = "loss"}) {
  %0 = amp.matmul %x, %w {transpose_rhs} : tensor<4x3xf32>, tensor<2x3xf32> -> tensor<4x2xf32>
  %1 = amp.softmax_cross_entropy %0, %y {reduction = #amp<reduction sum>} : tensor<4x2xf32>, tensor<4xi64> -> tensor<f32>
  return %0, %1 : tensor<4x2xf32>, tensor<f32>
}
// CHECK-LABEL: func.func @train_step(
// CHECK-SAME: %[[W:[a-z0-9]+]]: tensor<2x3xf32> {amp.param = "w"}, %[[X:[a-z0-9]+]]: tensor<4x3xf32> {amp.input = "x"}, %[[Y:[a-z0-9]+]]: tensor<4xi64> {amp.input = "y"})
// CHECK-NOT: amp.label
// CHECK: %[[LOGITS:.*]] = amp.matmul %[[X]], %[[W]]
// CHECK: %[[LOSS:.*]] = amp.softmax_cross_entropy %[[LOGITS]], %[[Y]] {reduction = #amp<reduction sum>}
// CHECK: amp.softmax_cross_entropy_grad %{{.*}}, %[[LOGITS]], %[[Y]] {reduction = #amp<reduction sum>}
// CHECK: return %{{.*}}, %[[LOSS]] : tensor<2x3xf32>, tensor<f32>
