// RUN: amp-opt %s --amp-build-train-step="optimizer=adamw" --amp-loss-scaling="mode=none" --amp-recompute-gradients="percent=100" | FileCheck %s
// RUN: amp-opt %s --amp-build-train-step="optimizer=adamw" --amp-loss-scaling="mode=none" --amp-recompute-gradients="percent=46" | FileCheck %s --check-prefix=BIG
// RUN: amp-opt %s --amp-build-train-step="optimizer=adamw" --amp-loss-scaling="mode=none" --amp-recompute-gradients="percent=10" | FileCheck %s --check-prefix=SMALL
// RUN: amp-opt %s --amp-build-train-step="optimizer=adamw" --amp-loss-scaling="mode=none" --amp-recompute-gradients="percent=0" | FileCheck %s --check-prefix=NONE
// RUN: amp-opt %s --amp-build-train-step="optimizer=adamw" --amp-loss-scaling="mode=static init=8 skip-nonfinite=false" --amp-recompute-gradients="percent=100" | FileCheck %s --check-prefix=NONE
// RUN: amp-opt %s --amp-build-train-step="optimizer=adamw" --amp-loss-scaling="mode=static init=8 skip-nonfinite=false clip=1" --amp-recompute-gradients="percent=100" | FileCheck %s --check-prefix=CLIP
// With the non-finite skip, a gradient larger than its inputs is computed
// and checked after the backward pass and again just before its update. Step FLOPs:
// 16384 + 1024 forward, 1024 + 1024 + 16384 backward (35840). w1's gradient
// (16 KB from 512 bytes of activation gradient; x is an input, not in the
// arena; 16384 FLOPs) saves the most per FLOP; w2's (1 KB from 544 bytes)
// costs 1024.

func.func @forward(%x: tensor<2x64xf32> {amp.input = "x"},
                   %w1: tensor<64x64xf32> {amp.param = "w1", amp.init = dense<0.5> : tensor<64x64xf32>},
                   %w2: tensor<4x64xf32> {amp.param = "w2", amp.init = dense<0.25> : tensor<4x64xf32>})
    -> (tensor<2x4xf32> {amp.output = "logits"}) {
  %0 = amp.matmul %x, %w1 {transpose_rhs} : tensor<2x64xf32>, tensor<64x64xf32> -> tensor<2x64xf32>
  %1 = amp.relu %0 : tensor<2x64xf32>
  %2 = amp.matmul %1, %w2 {transpose_rhs} : tensor<2x64xf32>, tensor<4x64xf32> -> tensor<2x4xf32>
  return %2 : tensor<2x4xf32>
}

// Both gradients are computed and checked after the backward pass (where
// the step's check was), w1's first, then made again for their updates.
// CHECK-LABEL: func.func @train_step(
// CHECK-SAME: %[[W1:[a-z0-9]+]]: tensor<64x64xf32> {amp.param = "w1"}, %[[W2:[a-z0-9]+]]: tensor<4x64xf32> {amp.param = "w2"}
// CHECK: %[[DH:.*]] = amp.relu_grad
// CHECK-NEXT: %[[G1:.*]] = amp.matmul %[[DH]], %[[X:[a-z0-9]+]] {transpose_lhs} : tensor<2x64xf32>, tensor<2x64xf32> -> tensor<64x64xf32>
// CHECK-NEXT: %[[F1:.*]] = amp.found_nonfinite %[[G1]] : tensor<64x64xf32>
// CHECK-NEXT: %[[N1:.*]] = amp.global_norm %[[G1]] : tensor<64x64xf32>
// CHECK-NEXT: %[[G2:.*]] = amp.matmul %[[DY:[0-9]+]], %[[H:[0-9]+]] {transpose_lhs} : tensor<2x4xf32>, tensor<2x64xf32> -> tensor<4x64xf32>
// CHECK-NEXT: %[[F2:.*]] = amp.found_nonfinite %[[G2]] : tensor<4x64xf32>
// CHECK-NEXT: %[[N2:.*]] = amp.global_norm %[[G2]] : tensor<4x64xf32>
// CHECK-NEXT: %[[ANY:.*]] = amp.maximum %[[F1]], %[[F2]]
// CHECK-NEXT: %[[NORM:.*]] = amp.global_norm %[[N1]], %[[N2]] : tensor<f32>, tensor<f32>
// CHECK-NEXT: %[[AGAIN1:.*]] = amp.matmul %[[DH]], %[[X]] {transpose_lhs}
// CHECK-NEXT: amp.adamw_update %[[W1]], %[[AGAIN1]], {{.*}} skip(%[[ANY]]
// CHECK-NEXT: %[[AGAIN2:.*]] = amp.matmul %[[DY]], %[[H]] {transpose_lhs}
// CHECK-NEXT: amp.adamw_update %[[W2]], %[[AGAIN2]], {{.*}} skip(%[[ANY]]
// CHECK-NEXT: amp.increment {{.*}} skip(%[[ANY]]
// CHECK-NEXT: return {{.*}}, %[[ANY]], %[[NORM]] :

// Within 46% of the step's arithmetic only w1's gradient is made again;
// the step's own check keeps w2's.
// BIG-LABEL: func.func @train_step(
// BIG: %[[G1:.*]] = amp.matmul {{.*}} -> tensor<64x64xf32>
// BIG-NEXT: %[[F1:.*]] = amp.found_nonfinite %[[G1]] : tensor<64x64xf32>
// BIG-NEXT: %[[N1:.*]] = amp.global_norm %[[G1]]
// BIG-NEXT: %[[F:.*]] = amp.found_nonfinite %{{.*}} : tensor<4x64xf32>
// BIG-NEXT: %[[N:.*]] = amp.global_norm %{{.*}} : tensor<4x64xf32>
// BIG-NEXT: %[[ANY:.*]] = amp.maximum %[[F]], %[[F1]]
// BIG-NEXT: amp.global_norm %[[N]], %[[N1]] : tensor<f32>, tensor<f32>
// BIG-NEXT: amp.matmul {{.*}} -> tensor<64x64xf32>
// BIG-NEXT: amp.adamw_update
// BIG-NEXT: amp.adamw_update
// BIG-NOT: amp.matmul

// Within 10%, only w2's.
// SMALL-LABEL: func.func @train_step(
// SMALL: %[[G2:.*]] = amp.matmul {{.*}} -> tensor<4x64xf32>
// SMALL-NEXT: amp.found_nonfinite %[[G2]] : tensor<4x64xf32>
// SMALL-NEXT: amp.global_norm %[[G2]] : tensor<4x64xf32>
// SMALL-NEXT: amp.found_nonfinite %{{.*}} : tensor<64x64xf32>
// SMALL-NEXT: amp.global_norm %{{.*}} : tensor<64x64xf32>
// SMALL-NEXT: amp.maximum
// SMALL-NEXT: amp.global_norm
// SMALL-NEXT: amp.adamw_update
// SMALL-NEXT: amp.matmul {{.*}} -> tensor<4x64xf32>
// SMALL-NEXT: amp.adamw_update

// With no budget, or when no update waits for the check, nothing changes.
// NONE-LABEL: func.func @train_step(
// NONE-NOT: amp.maximum
// NONE: amp.found_nonfinite {{.*}} : tensor<64x64xf32>, tensor<4x64xf32>
// NONE-NOT: amp.maximum

// Clipping makes the updates wait: the gradient's unscale moves with it,
// and the clip's multiply is made again with it.
// CLIP-LABEL: func.func @train_step(
// CLIP: %[[G1:.*]] = amp.matmul {{.*}} -> tensor<64x64xf32>
// CLIP-NEXT: %[[U1:.*]] = amp.unscale %[[G1]]
// CLIP-NEXT: amp.found_nonfinite %[[U1]]
// CLIP: %[[COEF:.*]] = amp.clip_coefficient
// CLIP: %[[AGAIN:.*]] = amp.matmul {{.*}} -> tensor<64x64xf32>
// CLIP-NEXT: %[[UA:.*]] = amp.unscale %[[AGAIN]]
// CLIP-NEXT: %[[CA:.*]] = amp.mul %[[UA]], %[[COEF]]
// CLIP-NEXT: amp.adamw_update %{{.*}}, %[[CA]]
