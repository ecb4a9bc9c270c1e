// RUN: amp-opt %s --amp-build-train-step="optimizer=sgd lr=0.1" --amp-schedule-updates | FileCheck %s
// RUN: amp-opt %s --amp-build-train-step="optimizer=sgd" --amp-autocast="precision=bf16" --amp-fuse-weight-casts --amp-schedule-updates | FileCheck %s --check-prefix=LOW
// RUN: amp-opt %s --amp-build-train-step="optimizer=adamw" --amp-loss-scaling="mode=none" --amp-schedule-updates | FileCheck %s --check-prefix=SKIP
// Each optimizer update runs as soon as its gradient is ready, so that the
// gradient dies there, but never before an op that still reads the weights
// or state it overwrites in place.

func.func @forward(%x: tensor<4x3xf32> {amp.input = "x"},
                   %w1: tensor<5x3xf32> {amp.param = "w1", amp.init = dense<0.5> : tensor<5x3xf32>},
                   %w2: tensor<2x5xf32> {amp.param = "w2", amp.init = dense<0.25> : tensor<2x5xf32>})
    -> (tensor<4x2xf32> {amp.output = "logits"}) {
  %0 = amp.matmul %x, %w1 {transpose_rhs} : tensor<4x3xf32>, tensor<5x3xf32> -> tensor<4x5xf32>
  %1 = amp.relu %0 : tensor<4x5xf32>
  %2 = amp.matmul %1, %w2 {transpose_rhs} : tensor<4x5xf32>, tensor<2x5xf32> -> tensor<4x2xf32>
  return %2 : tensor<4x2xf32>
}

// w2's update follows its gradient and the backward GEMM that reads w2; it
// precedes the rest of the backward pass.
// CHECK-LABEL: func.func @train_step(
// CHECK-SAME: %[[W1:[a-z0-9]+]]: tensor<5x3xf32> {amp.param = "w1"}, %[[W2:[a-z0-9]+]]: tensor<2x5xf32> {amp.param = "w2"}
// CHECK: %[[DH:.*]] = amp.matmul %{{.*}}, %[[W2]] : tensor<4x2xf32>, tensor<2x5xf32> -> tensor<4x5xf32>
// CHECK-NEXT: %[[GW2:.*]] = amp.matmul %{{.*}} {transpose_lhs} : tensor<4x2xf32>, tensor<4x5xf32> -> tensor<2x5xf32>
// CHECK-NEXT: amp.sgd_update %[[W2]], %[[GW2]]
// CHECK-NEXT: amp.relu_grad %[[DH]]
// CHECK-NEXT: %[[GW1:.*]] = amp.matmul
// CHECK-NEXT: amp.sgd_update %[[W1]], %[[GW1]]
// CHECK-NEXT: return

// With the low-precision weight copies kept as state, an update moves with
// the cast that writes its copy, after the last reader of the old copy.
// LOW-LABEL: func.func @train_step(
// LOW-SAME: %[[W2LOW:[a-z0-9]+]]: tensor<2x5xbf16> {amp.init = {{.*}}, amp.state = "w2.low"}
// LOW: amp.matmul %{{.*}}, %[[W2LOW]] {{.*}}: tensor<4x2xbf16>, tensor<2x5xbf16> -> tensor<4x5xbf16>
// LOW-NEXT: %[[GW2:.*]] = amp.matmul
// LOW-NEXT: %[[NEW:.*]], %{{.*}} = amp.sgd_update %{{.*}}, %[[GW2]]
// LOW-NEXT: amp.cast %[[NEW]] {{.*}} to tensor<2x5xbf16>
// LOW-NEXT: amp.relu_grad

// A skip flag that checks every gradient keeps the updates after the check.
// SKIP-LABEL: func.func @train_step(
// SKIP: %[[BAD:.*]] = amp.found_nonfinite
// SKIP-NEXT: amp.adamw_update {{.*}} skip(%[[BAD]]
// SKIP-NEXT: amp.adamw_update {{.*}} skip(%[[BAD]]
