// RUN: amp-opt %s --amp-build-train-step="optimizer=adamw" --amp-loss-scaling="mode=none" --amp-recompute-gradients="percent=100" | FileCheck %s
// A step of dynamic shapes (the pass run on its own, before the batch is
// fixed) has no gradient it can weigh: nothing is recomputed.

func.func @forward(%x: tensor<?x64xf32> {amp.input = "x"},
                   %w1: tensor<64x64xf32> {amp.param = "w1", amp.init = dense<0.5> : tensor<64x64xf32>},
                   %w2: tensor<4x64xf32> {amp.param = "w2", amp.init = dense<0.25> : tensor<4x64xf32>})
    -> (tensor<?x4xf32> {amp.output = "logits"}) {
  %0 = amp.matmul %x, %w1 {transpose_rhs} : tensor<?x64xf32>, tensor<64x64xf32> -> tensor<?x64xf32>
  %1 = amp.relu %0 : tensor<?x64xf32>
  %2 = amp.matmul %1, %w2 {transpose_rhs} : tensor<?x64xf32>, tensor<4x64xf32> -> tensor<?x4xf32>
  return %2 : tensor<?x4xf32>
}

// CHECK-LABEL: func.func @train_step(
// CHECK: amp.found_nonfinite {{.*}} : tensor<64x64xf32>, tensor<4x64xf32>
// CHECK-NOT: amp.maximum
