// RUN: amp-opt %s --amp-build-train-step="optimizer=sgd lr=0.1" --amp-data-parallel="ranks=4 bucket-mb=0.000005" --amp-loss-scaling="mode=dynamic clip=1.0" --amp-check-gradient-scaling | FileCheck %s
// RUN: amp-opt %s --amp-build-train-step="optimizer=adamw" --amp-data-parallel="ranks=2 grad-reduce=bf16" --amp-loss-scaling="mode=none skip-nonfinite=false" | FileCheck %s --check-prefix=BF16
// RUN: not amp-opt %s --amp-build-train-step="optimizer=adamw" --amp-data-parallel="ranks=1" 2>&1 | FileCheck %s --check-prefix=ONE
// RUN: not amp-opt %s --amp-build-train-step="optimizer=none" --amp-data-parallel 2>&1 | FileCheck %s --check-prefix=NOUPDATE
// Data-parallel steps: each bucket of gradients (in the order the backward
// pass makes them) is averaged over the ranks before loss scaling reads it;
// the non-finite flag and the norm are reduced too (max), and so is the
// reported loss (mean).

func.func @forward(%x: tensor<4x3xf32> {amp.input = "x"},
                   %w: tensor<2x3xf32> {amp.param = "w"},
                   %b: tensor<2xf32> {amp.param = "b"}) -> (tensor<4x2xf32> {amp.output = "logits"}) {
  %0 = amp.matmul %x, %w {transpose_rhs} : tensor<4x3xf32>, tensor<2x3xf32> -> tensor<4x2xf32>
  %1 = amp.add %0, %b : (tensor<4x2xf32>, tensor<2xf32>) -> tensor<4x2xf32>
  return %1 : tensor<4x2xf32>
}

// CHECK-LABEL: func.func @train_step(
// CHECK: %[[LOSS:.*]] = amp.softmax_cross_entropy
// CHECK: amp.reduce_sum
// CHECK-NEXT: %[[GB:.*]] = amp.reshape
// CHECK-NEXT: %[[RB:.*]] = amp.all_reduce %[[GB]] {world_size = 4 : i64} : tensor<2xf32> -> tensor<2xf32>
// CHECK-NEXT: %[[GW:.*]] = amp.matmul
// CHECK-NEXT: %[[RW:.*]] = amp.all_reduce %[[GW]] {world_size = 4 : i64} : tensor<2x3xf32> -> tensor<2x3xf32>
// CHECK: %[[UW:.*]] = amp.unscale %[[RW]],
// CHECK: %[[UB:.*]] = amp.unscale %[[RB]],
// CHECK: %[[BAD:.*]] = amp.found_nonfinite %[[UW]], %[[UB]]
// CHECK: %[[NORM:.*]] = amp.global_norm %[[UW]], %[[UB]]
// CHECK: %[[STATS:.*]]:2 = amp.all_reduce %[[BAD]], %[[NORM]] {max, world_size = 4 : i64}
// CHECK: amp.clip_coefficient %[[STATS]]#1
// CHECK: amp.sgd_update {{.*}} skip(%[[STATS]]#0 : tensor<f32>)
// CHECK: %[[MEAN:.*]] = amp.all_reduce %[[LOSS]] {world_size = 4 : i64} : tensor<f32> -> tensor<f32>
// CHECK: amp.update_loss_scale %{{.*}}, %{{.*}}, %[[STATS]]#0
// CHECK: return {{.*}}, %[[MEAN]], {{.*}}, %[[STATS]]#0, %[[STATS]]#1 :

// With grad-reduce=bf16 one bucket (25 MB) travels as bf16 and comes back
// as f32.
// BF16-LABEL: func.func @train_step(
// BF16: %[[CB:.*]] = amp.cast %{{.*}} : tensor<2xf32> to tensor<2xbf16>
// BF16: %[[CW:.*]] = amp.cast %{{.*}} : tensor<2x3xf32> to tensor<2x3xbf16>
// BF16: %[[R:.*]]:2 = amp.all_reduce %[[CB]], %[[CW]] {world_size = 2 : i64} : tensor<2xbf16>, tensor<2x3xbf16> -> tensor<2xbf16>, tensor<2x3xbf16>
// BF16: amp.cast %[[R]]#0 : tensor<2xbf16> to tensor<2xf32>
// BF16: amp.cast %[[R]]#1 : tensor<2x3xbf16> to tensor<2x3xf32>
// BF16-NOT: max

// ONE: amp-data-parallel: needs ranks >= 2
// NOUPDATE: amp-data-parallel: @train_step has no optimizer update
