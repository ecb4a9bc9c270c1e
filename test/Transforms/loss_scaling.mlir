// RUN: amp-opt %s --amp-build-train-step="optimizer=sgd lr=0.1" --amp-loss-scaling="mode=dynamic growth-interval=3 clip=1.0" --amp-check-gradient-scaling | FileCheck %s
// RUN: amp-opt %s --amp-build-train-step="optimizer=adamw" --amp-loss-scaling="mode=static init=128" | FileCheck %s --check-prefix=STATIC
// RUN: amp-opt %s --amp-build-train-step="optimizer=adamw" --amp-loss-scaling="mode=none" | FileCheck %s --check-prefix=NONE
// RUN: not amp-opt %s --amp-build-train-step="optimizer=none" --amp-loss-scaling 2>&1 | FileCheck %s --check-prefix=NOUPDATE
// RUN: amp-opt %s --amp-build-train-step="optimizer=adamw" --amp-loss-scaling="mode=dynamic accumulate=4" --amp-check-gradient-scaling | FileCheck %s --check-prefix=ACCUM
// RUN: amp-opt %s --amp-build-train-step="optimizer=adamw" --amp-loss-scaling="mode=none skip-nonfinite=false" | FileCheck %s --check-prefix=PLAIN
// RUN: amp-opt %s --amp-build-train-step="optimizer=adamw" --amp-loss-scaling="mode=static skip-nonfinite=false" | FileCheck %s --check-prefix=APPLIED
// Loss scaling: the backward pass is seeded with the scale; every gradient
// is unscaled in FP32, checked for inf/NaN in one fused op, measured, clipped;
// updates are skipped on a non-finite step; the scale is state.

func.func @forward(%x: tensor<4x3xf32> {amp.input = "x"},
                   %w: tensor<2x3xf32> {amp.param = "w"},
                   %b: tensor<2xf32> {amp.param = "b"}) -> (tensor<4x2xf32> {amp.output = "logits"}) {
  %0 = amp.matmul %x, %w {transpose_rhs} : tensor<4x3xf32>, tensor<2x3xf32> -> tensor<4x2xf32>
  %1 = amp.add %0, %b : (tensor<4x2xf32>, tensor<2xf32>) -> tensor<4x2xf32>
  return %1 : tensor<4x2xf32>
}

// CHECK-LABEL: func.func @train_step(
// CHECK-SAME: %[[W:[a-z0-9]+]]: tensor<2x3xf32> {amp.param = "w"}
// CHECK-SAME: %[[SCALE:[a-z0-9]+]]: tensor<f32> {amp.init = dense<6.553600e+04> : tensor<f32>, amp.state = "loss_scale"}
// CHECK-SAME: %[[TRACKER:[a-z0-9]+]]: tensor<i64> {amp.state = "loss_scale.growth_tracker"}
// CHECK-SAME: {amp.metric = "loss_scale"}, tensor<f32> {amp.metric = "skipped"}, tensor<f32> {amp.metric = "grad_norm"})
// CHECK-NOT: amp.loss_seed
// CHECK: amp.softmax_cross_entropy_grad %[[SCALE]],
// CHECK: %[[GW:.*]] = amp.unscale %{{.*}}, %[[SCALE]] : tensor<2x3xf32>, tensor<f32> -> tensor<2x3xf32>
// CHECK: %[[GB:.*]] = amp.unscale %{{.*}}, %[[SCALE]] : tensor<2xf32>, tensor<f32> -> tensor<2xf32>
// CHECK: %[[BAD:.*]] = amp.found_nonfinite %[[GW]], %[[GB]] : tensor<2x3xf32>, tensor<2xf32> -> tensor<f32>
// CHECK: %[[NORM:.*]] = amp.global_norm %[[GW]], %[[GB]] : tensor<2x3xf32>, tensor<2xf32> -> tensor<f32>
// CHECK: %[[COEF:.*]] = amp.clip_coefficient %[[NORM]] {max_norm = 1.000000e+00 : f64} : tensor<f32>
// CHECK: %[[CW:.*]] = amp.mul %[[GW]], %[[COEF]]
// CHECK: %[[CB:.*]] = amp.mul %[[GB]], %[[COEF]]
// CHECK: amp.sgd_update %[[W]], %[[CW]], %{{.*}} skip(%[[BAD]] : tensor<f32>)
// CHECK: amp.sgd_update %{{.*}}, %[[CB]], %{{.*}} skip(%[[BAD]] : tensor<f32>)
// CHECK: %[[NEW:.*]], %[[NEWT:.*]] = amp.update_loss_scale %[[SCALE]], %[[TRACKER]], %[[BAD]] {backoff_factor = 5.000000e-01 : f64, growth_factor = 2.000000e+00 : f64, growth_interval = 3 : i64}
// CHECK: return {{.*}}, %[[NEW]], %[[NEWT]], %[[NEW]], %[[BAD]], %[[NORM]]

// A static scale stays as it is; the step counter is skipped too.
// STATIC-LABEL: func.func @train_step(
// STATIC-SAME: %[[STEP:[a-z0-9]+]]: tensor<i64> {amp.state = "step"}
// STATIC-SAME: %[[SCALE:[a-z0-9]+]]: tensor<f32> {amp.init = dense<1.280000e+02> : tensor<f32>, amp.state = "loss_scale"}
// STATIC-NOT: update_loss_scale
// STATIC: amp.increment %[[STEP]] skip(%{{.*}} : tensor<f32>)
// STATIC: return {{.*}}, %[[SCALE]], %[[SCALE]], %{{.*}}, %{{.*}} :

// mode=none: no scale, no unscale; the non-finite skip and the metrics stay.
// NONE-LABEL: func.func @train_step(
// NONE-NOT: amp.unscale
// NONE-NOT: loss_scale.growth_tracker
// NONE: amp.found_nonfinite
// NONE: amp.adamw_update {{.*}} skip(

// NOUPDATE: error: amp-loss-scaling: @train_step has no optimizer update (optimizer=none returns raw gradients)

// Gradient accumulation: unscaled gradients are summed in FP32 buffers
// (state), their mean is applied every 4th micro-batch; other micro-batches
// skip the update, the step counter and the scale update; buffers reset.
// ACCUM-LABEL: func.func @train_step(
// ACCUM-SAME: %[[COUNT:[a-z0-9]+]]: tensor<i64> {amp.state = "accumulation.count"}
// ACCUM-SAME: %[[ACCW:[a-z0-9]+]]: tensor<2x3xf32> {amp.state = "w.grad_accum"}
// ACCUM: %[[GW:.*]] = amp.unscale
// ACCUM: %[[NEWCOUNT:.*]], %[[APPLY:.*]] = amp.accumulation_step %[[COUNT]] {micro_batches = 4 : i64}
// ACCUM: %[[NOT:.*]] = amp.sub %{{.*}}, %[[APPLY]]
// ACCUM: %[[SUM:.*]] = amp.add %[[ACCW]], %[[GW]]
// ACCUM: %[[MEAN:.*]] = amp.mul %[[SUM]], %{{.*}}
// ACCUM: %[[BAD:.*]] = amp.found_nonfinite %[[MEAN]]
// ACCUM: %[[SKIP:.*]] = amp.add %[[BAD]], %[[NOT]]
// ACCUM: amp.adamw_update %{{.*}}, %[[MEAN]], {{.*}} skip(%[[SKIP]] : tensor<f32>)
// ACCUM: amp.increment %{{.*}} skip(%[[SKIP]] : tensor<f32>)
// ACCUM: amp.zero_if %[[SUM]], %[[APPLY]]
// ACCUM: amp.update_loss_scale %{{.*}}, %{{.*}}, %[[BAD]] skip(%[[NOT]] : tensor<f32>)

// FP32's default (no scale, no skip, no clip): no checks and no metrics, so
// the step runs no gradient statistics.
// PLAIN-LABEL: func.func @train_step(
// PLAIN-NOT: amp.metric
// PLAIN-NOT: amp.found_nonfinite
// PLAIN-NOT: amp.global_norm
// PLAIN: return

// Checked but not skipped: the flag is "nonfinite", never "skipped".
// APPLIED-LABEL: func.func @train_step(
// APPLIED-SAME: {amp.metric = "loss_scale"}, tensor<f32> {amp.metric = "nonfinite"}, tensor<f32> {amp.metric = "grad_norm"})
// APPLIED-NOT: skip(
// APPLIED: return
