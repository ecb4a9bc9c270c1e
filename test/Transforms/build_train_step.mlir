// RUN: amp-opt %s -split-input-file --amp-build-train-step="optimizer=sgd lr=0.1 momentum=0.9" | FileCheck %s --check-prefix=SGD
// RUN: amp-opt %s -split-input-file --amp-build-train-step="optimizer=adamw lr=0.001" | FileCheck %s --check-prefix=ADAMW
// RUN: amp-opt %s -split-input-file --amp-build-train-step="optimizer=none" | FileCheck %s --check-prefix=GRADS

// A one-layer classifier: logits = relu(x W^T + b).
func.func @forward(%x: tensor<4x3xf32> {amp.input = "x"},
                   %w: tensor<2x3xf32> {amp.param = "w"},
                   %b: tensor<2xf32> {amp.param = "b"}) -> (tensor<4x2xf32> {amp.output = "logits"}) {
  %0 = amp.matmul %x, %w {transpose_rhs} : tensor<4x3xf32>, tensor<2x3xf32> -> tensor<4x2xf32>
  %1 = amp.add %0, %b : (tensor<4x2xf32>, tensor<2xf32>) -> tensor<4x2xf32>
  %2 = amp.relu %1 : tensor<4x2xf32>
  return %2 : tensor<4x2xf32>
}

// @forward stays for evaluation.
// SGD-LABEL: func.func @forward(
// SGD-LABEL: func.func @train_step(
// SGD-SAME: %[[W:[a-z0-9]+]]: tensor<2x3xf32> {amp.param = "w"}, %[[B:[a-z0-9]+]]: tensor<2xf32> {amp.param = "b"},
// SGD-SAME: %[[WBUF:[a-z0-9]+]]: tensor<2x3xf32> {amp.state = "w.momentum_buffer"}, %[[BBUF:[a-z0-9]+]]: tensor<2xf32> {amp.state = "b.momentum_buffer"},
// SGD-SAME: %[[X:[a-z0-9]+]]: tensor<4x3xf32> {amp.input = "x"}, %[[L:[a-z0-9]+]]: tensor<4xi64> {amp.label = "labels"})
// SGD-SAME: -> (tensor<2x3xf32> {amp.param = "w"}, tensor<2x3xf32> {amp.state = "w.momentum_buffer"}, tensor<2xf32> {amp.param = "b"}, tensor<2xf32> {amp.state = "b.momentum_buffer"}, tensor<f32> {amp.loss = "loss"})
// Forward:
// SGD: %[[MM:.*]] = amp.matmul %[[X]], %[[W]] {transpose_rhs}
// SGD: %[[PRE:.*]] = amp.add %[[MM]], %[[B]]
// SGD: %[[ACT:.*]] = amp.relu %[[PRE]]
// SGD: %[[LOSS:.*]] = amp.softmax_cross_entropy %[[ACT]], %[[L]] {reduction = #amp<reduction mean>}
// Backward, seeded with dloss = 1:
// SGD: %[[ONE:.*]] = amp.constant {amp.loss_seed} dense<1.000000e+00> : tensor<f32>
// SGD: %[[DACT:.*]] = amp.softmax_cross_entropy_grad %[[ONE]], %[[ACT]], %[[L]]
// SGD: %[[DPRE:.*]] = amp.relu_grad %[[DACT]], %[[ACT]]
// Bias gradient: the broadcast over the batch is summed away.
// SGD: %[[DBSUM:.*]] = amp.reduce_sum %[[DPRE]] axes = [0] {keep_dims} : tensor<4x2xf32> -> tensor<1x2xf32>
// SGD: %[[DB:.*]] = amp.reshape %[[DBSUM]] : tensor<1x2xf32> -> tensor<2xf32>
// dW = dY^T X for y = x W^T; x needs no gradient.
// SGD: %[[DW:.*]] = amp.matmul %[[DPRE]], %[[X]] {transpose_lhs} : tensor<4x2xf32>, tensor<4x3xf32> -> tensor<2x3xf32>
// SGD-NOT: amp.matmul
// SGD: %{{.*}}, %{{.*}} = amp.sgd_update %[[W]], %[[DW]], %[[WBUF]] {lr = 1.000000e-01 : f64, momentum = 9.000000e-01 : f64, weight_decay = 0.000000e+00 : f64}
// SGD: %{{.*}}, %{{.*}} = amp.sgd_update %[[B]], %[[DB]], %[[BBUF]]
// SGD: return {{.*}}, %[[LOSS]]

// AdamW: two moments per parameter and one step counter, incremented last;
// torch.optim.AdamW's default weight decay.
// ADAMW-LABEL: func.func @train_step(
// ADAMW-SAME: {amp.state = "w.exp_avg"}
// ADAMW-SAME: {amp.state = "w.exp_avg_sq"}
// ADAMW-SAME: %[[STEP:[a-z0-9]+]]: tensor<i64> {amp.state = "step"}
// ADAMW: amp.adamw_update {{.*}}, %[[STEP]] {beta1 = 9.000000e-01 : f64, beta2 = 0.99899999999999999 : f64, eps = 1.000000e-08 : f64, lr = 1.000000e-03 : f64, weight_decay = 1.000000e-02 : f64}
// ADAMW: amp.adamw_update
// ADAMW: %[[NEXT:.*]] = amp.increment %[[STEP]]
// ADAMW: return {{.*}}, %[[NEXT]], %{{.*}} : {{.*}}, tensor<i64>, tensor<f32>

// optimizer=none returns the gradients, named after their parameters.
// GRADS-LABEL: func.func @train_step(
// GRADS-SAME: -> (tensor<2x3xf32> {amp.grad = "w"}, tensor<2xf32> {amp.grad = "b"}, tensor<f32> {amp.loss = "loss"})
// GRADS-NOT: _update

// -----

// A parameter used twice: its gradient is the sum of both uses' gradients.
func.func @forward(%x: tensor<2x2xf32> {amp.input = "x"},
                   %w: tensor<2x2xf32> {amp.param = "w"}) -> (tensor<2x2xf32> {amp.output = "y"}) {
  %0 = amp.matmul %x, %w : tensor<2x2xf32>, tensor<2x2xf32> -> tensor<2x2xf32>
  %1 = amp.mul %0, %w : (tensor<2x2xf32>, tensor<2x2xf32>) -> tensor<2x2xf32>
  return %1 : tensor<2x2xf32>
}
// GRADS-LABEL: func.func @train_step(
// GRADS: %[[MM:.*]] = amp.matmul
// GRADS: amp.mul %[[MM]], %arg0
// GRADS: amp.softmax_cross_entropy_grad
// GRADS: %[[DMUL_LHS:.*]] = amp.mul %{{.*}}, %arg0
// GRADS: %[[DMUL_RHS:.*]] = amp.mul %{{.*}}, %[[MM]]
// The gradient of x is not built: x is no parameter.
// GRADS-NOT: amp.matmul %[[DMUL_LHS]], %arg0
// GRADS: %[[DMM:.*]] = amp.matmul %arg1, %[[DMUL_LHS]] {transpose_lhs}
// GRADS: %[[SUM:.*]] = amp.add %[[DMUL_RHS]], %[[DMM]]
// GRADS: return %[[SUM]]

// -----

// A parameter that does not reach the loss gets a zero gradient.
func.func @forward(%x: tensor<2x2xf32> {amp.input = "x"},
                   %w: tensor<2x2xf32> {amp.param = "w"},
                   %unused: tensor<3xf32> {amp.param = "unused"}) -> (tensor<2x2xf32> {amp.output = "y"}) {
  %0 = amp.matmul %x, %w : tensor<2x2xf32>, tensor<2x2xf32> -> tensor<2x2xf32>
  return %0 : tensor<2x2xf32>
}
// GRADS-LABEL: func.func @train_step(
// GRADS: %[[ZERO:.*]] = amp.constant dense<0.000000e+00> : tensor<3xf32>
// GRADS: return %{{.*}}, %[[ZERO]], %{{.*}} : tensor<2x2xf32>, tensor<3xf32>, tensor<f32>
