// RUN: amp-opt %s --amp-build-train-step="optimizer=adamw" --amp-autocast=precision=bf16 --amp-legalize-precision --amp-cast-cleanup | FileCheck %s
// RUN: amp-opt %s --amp-build-train-step="optimizer=adamw" --amp-autocast=precision=bf16 --amp-legalize-precision --amp-cast-cleanup --amp-fuse-weight-casts | FileCheck %s --check-prefix=FUSED
// The whole training step, forward and backward, in bf16: FP32 master
// weights, exactly one cast per parameter per step (shared by forward and
// backward GEMMs), FP32 gradients into the optimizer.

func.func @forward(%x: tensor<8x4xf32> {amp.input = "x"},
                   %w1: tensor<6x4xf32> {amp.param = "w1", amp.init = dense<0.5> : tensor<6x4xf32>},
                   %b1: tensor<6xf32> {amp.param = "b1", amp.init = dense<0.25> : tensor<6xf32>},
                   %w2: tensor<3x6xf32> {amp.param = "w2", amp.init = dense<1.0> : tensor<3x6xf32>}) -> (tensor<8x3xf32> {amp.output = "logits"}) {
  %0 = amp.matmul %x, %w1 {transpose_rhs} : tensor<8x4xf32>, tensor<6x4xf32> -> tensor<8x6xf32>
  %1 = amp.add %0, %b1 : (tensor<8x6xf32>, tensor<6xf32>) -> tensor<8x6xf32>
  %2 = amp.relu %1 : tensor<8x6xf32>
  %3 = amp.matmul %2, %w2 {transpose_rhs} : tensor<8x6xf32>, tensor<3x6xf32> -> tensor<8x3xf32>
  return %3 : tensor<8x3xf32>
}

// CHECK-LABEL: func.func @train_step(
// CHECK-SAME: %[[W1:[a-z0-9]+]]: tensor<6x4xf32> {amp.param = "w1"}, %[[B1:[a-z0-9]+]]: tensor<6xf32> {amp.param = "b1"}, %[[W2:[a-z0-9]+]]: tensor<3x6xf32> {amp.param = "w2"}
// One cast per parameter (b1 and w1 once each, w2 once for both GEMMs):
// CHECK-COUNT-1: amp.cast %[[W1]] {{.*}} to tensor<6x4xbf16>
// CHECK-NOT: amp.cast %[[W1]]
// CHECK: %[[W2L:.*]] = amp.cast %[[W2]] {{.*}}: tensor<3x6xf32> to tensor<3x6xbf16>
// CHECK-NOT: amp.cast %[[W2]]
// CHECK: %[[LOGITS:.*]] = amp.matmul {{.*}}, %[[W2L]] {{.*}} -> tensor<8x3xf32>
// CHECK: %[[DLOGITS:.*]] = amp.softmax_cross_entropy_grad {{.*}} -> tensor<8x3xf32>
// CHECK: %[[DLOW:.*]] = amp.cast %[[DLOGITS]] {{.*}} to tensor<8x3xbf16>
// Backward GEMMs reuse the same bf16 weight; weight gradients come out in
// f32 (FP32 accumulation, read only by the optimizer).
// CHECK-DAG: amp.matmul %[[DLOW]], %[[W2L]] {{.*}} -> tensor<8x6xbf16>
// CHECK-DAG: %[[DW2:.*]] = amp.matmul %[[DLOW]], %{{.*}} {{.*}}transpose_lhs{{.*}} -> tensor<3x6xf32>
// The bias gradient is summed in f32 by a kernel that reads the bf16
// gradient itself: no cast before it.
// CHECK-NOT: amp.cast {{.*}} to tensor<8x6xf32>
// CHECK: amp.reduce_sum %{{.*}} axes = [0] {{.*}}: tensor<8x6xbf16> -> tensor<1x6xf32>
// CHECK: %[[DW1:.*]] = amp.matmul {{.*}} -> tensor<6x4xf32>
// Master weights and optimizer state stay f32.
// CHECK: amp.adamw_update %[[W1]], %[[DW1]], {{.*}} : tensor<6x4xf32>, tensor<i64>
// CHECK: amp.adamw_update %[[B1]], {{.*}} : tensor<6xf32>, tensor<i64>
// CHECK: amp.adamw_update %[[W2]], %[[DW2]], {{.*}} : tensor<3x6xf32>, tensor<i64>

// With amp-fuse-weight-casts the bf16 copy of each weight is state, read by
// the GEMMs and written right after the weight's update (the lowering fuses
// that cast into the update kernel).
// FUSED-LABEL: func.func @train_step(
// FUSED-SAME: %[[W1L:[a-z0-9]+]]: tensor<6x4xbf16> {amp.init = dense<5.000000e-01> : tensor<6x4xbf16>, amp.state = "w1.low"}
// FUSED-NOT: amp.cast %arg0
// FUSED: amp.matmul %{{.*}}, %[[W1L]] {{.*}}transpose_rhs
// FUSED: %[[NEW:.*]], %{{.*}}, %{{.*}} = amp.adamw_update %arg0,
// FUSED-NEXT: %[[COPY:.*]] = amp.cast %[[NEW]] {amp.rule = "low-precision weight copy, written by the update"} : tensor<6x4xf32> to tensor<6x4xbf16>
// FUSED: return {{.*}}%[[COPY]]{{.*}} : {{.*}}
