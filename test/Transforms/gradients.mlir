// RUN: amp-opt %s -split-input-file --amp-build-train-step="optimizer=none" | FileCheck %s

// The gradient rule of every differentiable op (AmpGradients.cpp) that
// build_train_step.mlir does not already show (matmul, add, relu, mul): each
// case builds the loss on a small graph and checks the reverse sweep that
// reaches the parameters. dL/dlogits is always the cross-entropy gradient G.

// sub with a broadcast right operand: d(x - w)/dw = -G, summed over the batch.
func.func @forward(%x: tensor<2x3xf32> {amp.input = "x"},
                   %w: tensor<3xf32> {amp.param = "w"}) -> (tensor<2x3xf32> {amp.output = "logits"}) {
  %0 = amp.sub %x, %w : (tensor<2x3xf32>, tensor<3xf32>) -> tensor<2x3xf32>
  return %0 : tensor<2x3xf32>
}
// CHECK-LABEL: func.func @train_step(
// CHECK: %[[G:.*]] = amp.softmax_cross_entropy_grad
// CHECK-NEXT: %[[NEG:.*]] = amp.neg %[[G]] : tensor<2x3xf32>
// CHECK-NEXT: %[[SUM:.*]] = amp.reduce_sum %[[NEG]] axes = [0] {keep_dims} : tensor<2x3xf32> -> tensor<1x3xf32>
// CHECK-NEXT: %[[DW:.*]] = amp.reshape %[[SUM]] : tensor<1x3xf32> -> tensor<3xf32>
// CHECK-NEXT: return %[[DW]],

// -----

// div then neg: q = x / w, y = -q; dq = -G, dw = -(dq * q) / w.
func.func @forward(%x: tensor<2x3xf32> {amp.input = "x"},
                   %w: tensor<2x3xf32> {amp.param = "w"}) -> (tensor<2x3xf32> {amp.output = "logits"}) {
  %0 = amp.div %x, %w : (tensor<2x3xf32>, tensor<2x3xf32>) -> tensor<2x3xf32>
  %1 = amp.neg %0 : tensor<2x3xf32>
  return %1 : tensor<2x3xf32>
}
// CHECK-LABEL: func.func @train_step(
// CHECK-SAME: %[[W:[a-z0-9]+]]: tensor<2x3xf32> {amp.param = "w"}
// CHECK: %[[Q:.*]] = amp.div %{{.*}}, %[[W]]
// CHECK: %[[G:.*]] = amp.softmax_cross_entropy_grad
// CHECK-NEXT: %[[DQ:.*]] = amp.neg %[[G]]
// CHECK-NEXT: %[[PROD:.*]] = amp.mul %[[DQ]], %[[Q]]
// CHECK-NEXT: %[[RATIO:.*]] = amp.div %[[PROD]], %[[W]]
// CHECK-NEXT: %[[DW:.*]] = amp.neg %[[RATIO]]
// CHECK-NEXT: return %[[DW]],

// -----

// exp, log, softmax: softmax's dx = y * (dy - sum(dy * y, last axis)); log's
// dx = dy / x; exp's dx = dy * exp(x).
func.func @forward(%w: tensor<2x3xf32> {amp.param = "w"}) -> (tensor<2x3xf32> {amp.output = "logits"}) {
  %0 = amp.exp %w : tensor<2x3xf32> -> tensor<2x3xf32>
  %1 = amp.log %0 : tensor<2x3xf32> -> tensor<2x3xf32>
  %2 = amp.softmax %1 : tensor<2x3xf32> -> tensor<2x3xf32>
  return %2 : tensor<2x3xf32>
}
// CHECK-LABEL: func.func @train_step(
// CHECK: %[[E:.*]] = amp.exp
// CHECK: %[[Y:.*]] = amp.softmax
// CHECK: %[[G:.*]] = amp.softmax_cross_entropy_grad
// CHECK-NEXT: %[[GY:.*]] = amp.mul %[[G]], %[[Y]]
// CHECK-NEXT: %[[S:.*]] = amp.reduce_sum %[[GY]] axes = [1] {keep_dims} : tensor<2x3xf32> -> tensor<2x1xf32>
// CHECK-NEXT: %[[C:.*]] = amp.sub %[[G]], %[[S]] : (tensor<2x3xf32>, tensor<2x1xf32>) -> tensor<2x3xf32>
// CHECK-NEXT: %[[DSOFT:.*]] = amp.mul %[[Y]], %[[C]]
// CHECK-NEXT: %[[DLOG:.*]] = amp.div %[[DSOFT]], %[[E]]
// CHECK-NEXT: %[[DEXP:.*]] = amp.mul %[[DLOG]], %[[E]]
// CHECK-NEXT: return %[[DEXP]],

// -----

// reshape and cast: the gradient goes back through the inverse reshape and a
// cast to the operand's type; the input x gets no gradient.
func.func @forward(%w: tensor<6xf32> {amp.param = "w"}, %x: tensor<2x3x4xf32> {amp.input = "x"}) -> (tensor<2x3xf32> {amp.output = "logits"}) {
  %0 = amp.reshape %w : tensor<6xf32> -> tensor<2x3xf32>
  %1 = amp.cast %0 : tensor<2x3xf32> to tensor<2x3xbf16>
  %2 = amp.cast %1 : tensor<2x3xbf16> to tensor<2x3xf32>
  %3 = amp.reduce_sum %x axes = [2] : tensor<2x3x4xf32> -> tensor<2x3xf32>
  %4 = amp.mul %2, %3 : (tensor<2x3xf32>, tensor<2x3xf32>) -> tensor<2x3xf32>
  return %4 : tensor<2x3xf32>
}
// CHECK-LABEL: func.func @train_step(
// CHECK: %[[X3:.*]] = amp.reduce_sum %{{.*}} axes = [2]
// CHECK: %[[G:.*]] = amp.softmax_cross_entropy_grad
// CHECK-NEXT: %[[D2:.*]] = amp.mul %[[G]], %[[X3]]
// CHECK-NEXT: %[[D1:.*]] = amp.cast %[[D2]] : tensor<2x3xf32> to tensor<2x3xbf16>
// CHECK-NEXT: %[[D0:.*]] = amp.cast %[[D1]] : tensor<2x3xbf16> to tensor<2x3xf32>
// CHECK-NEXT: %[[DW:.*]] = amp.reshape %[[D0]] : tensor<2x3xf32> -> tensor<6xf32>
// CHECK-NEXT: return %[[DW]],

// -----

// broadcast_to sums the gradient back over the broadcast dims; reduce_sum
// spreads it over the reduced axis again.
func.func @forward(%w: tensor<3xf32> {amp.param = "w"}, %v: tensor<2x4x3xf32> {amp.param = "v"}) -> (tensor<2x3xf32> {amp.output = "logits"}) {
  %0 = amp.broadcast_to %w : tensor<3xf32> -> tensor<2x3xf32>
  %1 = amp.reduce_sum %v axes = [1] : tensor<2x4x3xf32> -> tensor<2x3xf32>
  %2 = amp.add %0, %1 : (tensor<2x3xf32>, tensor<2x3xf32>) -> tensor<2x3xf32>
  return %2 : tensor<2x3xf32>
}
// CHECK-LABEL: func.func @train_step(
// CHECK: %[[G:.*]] = amp.softmax_cross_entropy_grad
// CHECK-NEXT: %[[KEPT:.*]] = amp.reshape %[[G]] : tensor<2x3xf32> -> tensor<2x1x3xf32>
// CHECK-NEXT: %[[DV:.*]] = amp.broadcast_to %[[KEPT]] : tensor<2x1x3xf32> -> tensor<2x4x3xf32>
// CHECK-NEXT: %[[SUM:.*]] = amp.reduce_sum %[[G]] axes = [0] {keep_dims} : tensor<2x3xf32> -> tensor<1x3xf32>
// CHECK-NEXT: %[[DW:.*]] = amp.reshape %[[SUM]] : tensor<1x3xf32> -> tensor<3xf32>
// CHECK-NEXT: return %[[DW]], %[[DV]],

// -----

// tanh, sigmoid and leaky_relu in a chain on a parameter: tanh and sigmoid
// read their outputs (T, S), leaky_relu its input (S) and keeps its alpha.
func.func @forward(%w: tensor<2x3xf32> {amp.param = "w"}) -> (tensor<2x3xf32> {amp.output = "logits"}) {
  %0 = amp.tanh %w : tensor<2x3xf32>
  %1 = amp.sigmoid %0 : tensor<2x3xf32>
  %2 = amp.leaky_relu %1 {alpha = 2.000000e-01 : f32} : tensor<2x3xf32>
  return %2 : tensor<2x3xf32>
}
// CHECK-LABEL: func.func @train_step(
// CHECK: %[[T:.*]] = amp.tanh %{{.*}} : tensor<2x3xf32>
// CHECK-NEXT: %[[S:.*]] = amp.sigmoid %[[T]] : tensor<2x3xf32>
// CHECK: %[[G:.*]] = amp.softmax_cross_entropy_grad
// CHECK-NEXT: %[[DS:.*]] = amp.leaky_relu_grad %[[G]], %[[S]] {alpha = 2.000000e-01 : f32} : tensor<2x3xf32>
// CHECK-NEXT: %[[DT:.*]] = amp.sigmoid_grad %[[DS]], %[[S]] : tensor<2x3xf32>
// CHECK-NEXT: %[[DW:.*]] = amp.tanh_grad %[[DT]], %[[T]] : tensor<2x3xf32>
// CHECK-NEXT: return %[[DW]],

// -----

// conv: an input's gradient is conv_backward_data(G, W), a filter's
// conv_backward_filter(X, G), each with its conv's geometry; the graph
// input x gets none.
func.func @forward(%x: tensor<2x3x5x5xf32> {amp.input = "x"},
                   %w: tensor<4x3x3x3xf32> {amp.param = "w"},
                   %v: tensor<4x2x3x3xf32> {amp.param = "v"}) -> (tensor<2x36xf32> {amp.output = "logits"}) {
  %0 = amp.conv %x, %w {strides = array<i64: 2, 2>, pads = array<i64: 1, 1, 1, 1>, dilations = array<i64: 1, 1>} : tensor<2x3x5x5xf32>, tensor<4x3x3x3xf32> -> tensor<2x4x3x3xf32>
  %1 = amp.conv %0, %v {strides = array<i64: 1, 1>, pads = array<i64: 1, 1, 1, 1>, dilations = array<i64: 1, 1>, group = 2} : tensor<2x4x3x3xf32>, tensor<4x2x3x3xf32> -> tensor<2x4x3x3xf32>
  %2 = amp.reshape %1 : tensor<2x4x3x3xf32> -> tensor<2x36xf32>
  return %2 : tensor<2x36xf32>
}
// CHECK-LABEL: func.func @train_step(
// CHECK-SAME: %[[W:[a-z0-9]+]]: tensor<4x3x3x3xf32> {amp.param = "w"}
// CHECK-SAME: %[[V:[a-z0-9]+]]: tensor<4x2x3x3xf32> {amp.param = "v"}
// CHECK-SAME: %[[X:[a-z0-9]+]]: tensor<2x3x5x5xf32> {amp.input = "x"}
// CHECK: %[[Y:.*]] = amp.conv %[[X]], %[[W]]
// CHECK: %[[G0:.*]] = amp.softmax_cross_entropy_grad
// CHECK-NEXT: %[[G:.*]] = amp.reshape %[[G0]] : tensor<2x36xf32> -> tensor<2x4x3x3xf32>
// CHECK-NEXT: %[[DY:.*]] = amp.conv_backward_data %[[G]], %[[V]] {dilations = array<i64: 1, 1>, group = 2 : i64, pads = array<i64: 1, 1, 1, 1>, strides = array<i64: 1, 1>} : tensor<2x4x3x3xf32>, tensor<4x2x3x3xf32> -> tensor<2x4x3x3xf32>
// CHECK-NEXT: %[[DV:.*]] = amp.conv_backward_filter %[[Y]], %[[G]] {dilations = array<i64: 1, 1>, group = 2 : i64, pads = array<i64: 1, 1, 1, 1>, strides = array<i64: 1, 1>} : tensor<2x4x3x3xf32>, tensor<2x4x3x3xf32> -> tensor<4x2x3x3xf32>
// CHECK-NOT: conv_backward_data
// CHECK: %[[DW:.*]] = amp.conv_backward_filter %[[X]], %[[DY]] {dilations = array<i64: 1, 1>, pads = array<i64: 1, 1, 1, 1>, strides = array<i64: 2, 2>} : tensor<2x3x5x5xf32>, tensor<2x4x3x3xf32> -> tensor<4x3x3x3xf32>
// CHECK: return %[[DW]], %[[DV]],

// -----

// max_pool: only the pooled values carry a gradient, scattered through the
// indices of the maxima.
func.func @forward(%w: tensor<2x3x4x4xf32> {amp.param = "w"}) -> (tensor<2x12xf32> {amp.output = "logits"}) {
  %y, %i = amp.max_pool %w {kernel = array<i64: 2, 2>, strides = array<i64: 2, 2>, pads = array<i64: 0, 0, 0, 0>, dilations = array<i64: 1, 1>} : tensor<2x3x4x4xf32> -> tensor<2x3x2x2xf32>, tensor<2x3x2x2xi64>
  %0 = amp.reshape %y : tensor<2x3x2x2xf32> -> tensor<2x12xf32>
  return %0 : tensor<2x12xf32>
}
// CHECK-LABEL: func.func @train_step(
// CHECK: %{{.*}}, %[[I:.*]] = amp.max_pool
// CHECK: %[[G0:.*]] = amp.softmax_cross_entropy_grad
// CHECK-NEXT: %[[G:.*]] = amp.reshape %[[G0]] : tensor<2x12xf32> -> tensor<2x3x2x2xf32>
// CHECK-NEXT: %[[DW:.*]] = amp.max_pool_grad %[[G]], %[[I]] : tensor<2x3x2x2xf32>, tensor<2x3x2x2xi64> -> tensor<2x3x4x4xf32>
// CHECK-NEXT: return %[[DW]],

// -----

// avg_pool: the gradient spreads over the windows with the same attributes.
func.func @forward(%w: tensor<2x3x4x4xf32> {amp.param = "w"}) -> (tensor<2x12xf32> {amp.output = "logits"}) {
  %0 = amp.avg_pool %w {kernel = array<i64: 3, 3>, strides = array<i64: 2, 2>, pads = array<i64: 1, 1, 0, 0>, count_include_pad} : tensor<2x3x4x4xf32> -> tensor<2x3x2x2xf32>
  %1 = amp.reshape %0 : tensor<2x3x2x2xf32> -> tensor<2x12xf32>
  return %1 : tensor<2x12xf32>
}
// CHECK-LABEL: func.func @train_step(
// CHECK: %[[G0:.*]] = amp.softmax_cross_entropy_grad
// CHECK-NEXT: %[[G:.*]] = amp.reshape %[[G0]] : tensor<2x12xf32> -> tensor<2x3x2x2xf32>
// CHECK-NEXT: %[[DW:.*]] = amp.avg_pool_grad %[[G]] {count_include_pad, kernel = array<i64: 3, 3>, pads = array<i64: 1, 1, 0, 0>, strides = array<i64: 2, 2>} : tensor<2x3x2x2xf32> -> tensor<2x3x4x4xf32>
// CHECK-NEXT: return %[[DW]],

// -----

// maximum and minimum: the gradient goes to the operand taken (a 0/1 mask;
// ties to the left), summed over broadcast dims.
func.func @forward(%x: tensor<2x3xf32> {amp.input = "x"},
                   %w: tensor<3xf32> {amp.param = "w"}) -> (tensor<2x3xf32> {amp.output = "logits"}) {
  %0 = amp.maximum %x, %w : (tensor<2x3xf32>, tensor<3xf32>) -> tensor<2x3xf32>
  %1 = amp.minimum %0, %w : (tensor<2x3xf32>, tensor<3xf32>) -> tensor<2x3xf32>
  return %1 : tensor<2x3xf32>
}
// CHECK-LABEL: func.func @train_step(
// CHECK: %[[MAX:.*]] = amp.maximum
// CHECK: %[[G:.*]] = amp.softmax_cross_entropy_grad
// CHECK-NEXT: %[[LE:.*]] = amp.le_mask %[[MAX]], %{{.*}} : (tensor<2x3xf32>, tensor<3xf32>) -> tensor<2x3xf32>
// CHECK-NEXT: %[[TOMAX:.*]] = amp.mul %[[G]], %[[LE]]
// CHECK-NEXT: %[[TOW1:.*]] = amp.sub %[[G]], %[[TOMAX]]
// CHECK: amp.ge_mask
// CHECK: amp.reduce_sum

// -----

// batch_norm (training): one batch_norm_grad from the batch statistics the
// forward saved gives the input's, scale's and bias's gradients; the
// running averages are step state (arguments after the parameters, new
// values returned as amp.state) and get none.
func.func @forward(%x: tensor<2x3xf32> {amp.input = "x"}, %s: tensor<3xf32> {amp.param = "s"},
                   %b: tensor<3xf32> {amp.param = "b"}, %m: tensor<3xf32> {amp.state = "m"},
                   %v: tensor<3xf32> {amp.state = "v"})
    -> (tensor<2x3xf32> {amp.output = "logits"}, tensor<3xf32> {amp.state = "m"},
        tensor<3xf32> {amp.state = "v"}) {
  %y, %rm, %rv, %sm, %sv = amp.batch_norm %x, %s, %b, %m, %v {epsilon = 1.0e-05 : f32, momentum = 0.9 : f32}
      : tensor<2x3xf32>, tensor<3xf32>, tensor<3xf32>, tensor<3xf32>, tensor<3xf32>
      -> tensor<2x3xf32>, tensor<3xf32>, tensor<3xf32>, tensor<3xf32>, tensor<3xf32>
  return %y, %rm, %rv : tensor<2x3xf32>, tensor<3xf32>, tensor<3xf32>
}
// CHECK-LABEL: func.func @train_step(
// CHECK-SAME: %[[S:[^:]*]]: tensor<3xf32> {amp.param = "s"}, %[[B:[^:]*]]: tensor<3xf32> {amp.param = "b"}, %[[M:[^:]*]]: tensor<3xf32> {amp.state = "m"}, %[[V:[^:]*]]: tensor<3xf32> {amp.state = "v"}, %[[X:[^:]*]]: tensor<2x3xf32> {amp.input = "x"}
// CHECK-SAME: -> (tensor<3xf32> {amp.grad = "s"}, tensor<3xf32> {amp.grad = "b"}, tensor<3xf32> {amp.state = "m"}, tensor<3xf32> {amp.state = "v"}, tensor<f32> {amp.loss = "loss"})
// CHECK: %{{.*}}, %[[RM:.*]], %[[RV:.*]], %[[SM:.*]], %[[SV:.*]] = amp.batch_norm %[[X]], %[[S]], %[[B]], %[[M]], %[[V]]
// CHECK: %[[G:.*]] = amp.softmax_cross_entropy_grad
// CHECK-NEXT: %{{.*}}, %[[DS:.*]], %[[DB:.*]] = amp.batch_norm_grad %[[G]], %[[X]], %[[S]], %[[SM]], %[[SV]] {epsilon = 9.99999974E-6 : f32}
// CHECK-NEXT: return %[[DS]], %[[DB]], %[[RM]], %[[RV]], %{{.*}} :

// -----

// batch_norm_inference (an eval-mode export trained as it is): the
// statistics are constants of the step, so the gradient takes them as given.
func.func @forward(%x: tensor<2x3xf32> {amp.input = "x"}, %s: tensor<3xf32> {amp.param = "s"},
                   %b: tensor<3xf32> {amp.param = "b"}, %m: tensor<3xf32> {amp.state = "m"},
                   %v: tensor<3xf32> {amp.state = "v"}) -> (tensor<2x3xf32> {amp.output = "logits"}) {
  %y = amp.batch_norm_inference %x, %s, %b, %m, %v {epsilon = 1.0e-05 : f32}
      : tensor<2x3xf32>, tensor<3xf32>, tensor<3xf32>, tensor<3xf32>, tensor<3xf32> -> tensor<2x3xf32>
  return %y : tensor<2x3xf32>
}
// CHECK-LABEL: func.func @train_step(
// CHECK: %[[G:.*]] = amp.softmax_cross_entropy_grad
// CHECK-NEXT: %{{.*}}, %[[DS:.*]], %[[DB:.*]] = amp.batch_norm_grad %[[G]], %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}} {epsilon = 9.99999974E-6 : f32, use_global_stats}
// CHECK-NEXT: return %[[DS]], %[[DB]], %{{.*}} :

// -----

// pad, concat and slice: the gradient of a pad is the slice of the result's
// gradient at the begin pads; each concat input's is its slice along the
// axis; a slice's is the gradient padded back with zeros.
func.func @forward(%a: tensor<2x3xf32> {amp.param = "a"}, %b: tensor<2x4xf32> {amp.param = "b"})
    -> (tensor<2x6xf32> {amp.output = "logits"}) {
  %p = amp.pad %a {pads = array<i64: 0, 1, 0, 0>, value = 2.0 : f32} : tensor<2x3xf32> -> tensor<2x4xf32>
  %c = amp.concat %p, %b {axis = 1 : i64} : (tensor<2x4xf32>, tensor<2x4xf32>) -> tensor<2x8xf32>
  %s = amp.slice %c {offsets = array<i64: 0, 1>, sizes = array<i64: 2, 6>} : tensor<2x8xf32> -> tensor<2x6xf32>
  return %s : tensor<2x6xf32>
}
// CHECK-LABEL: func.func @train_step(
// CHECK: %[[G:.*]] = amp.softmax_cross_entropy_grad
// CHECK-NEXT: %[[GC:.*]] = amp.pad %[[G]] {pads = array<i64: 0, 1, 0, 1>} : tensor<2x6xf32> -> tensor<2x8xf32>
// CHECK-NEXT: %[[GP:.*]] = amp.slice %[[GC]] {offsets = array<i64: 0, 0>, sizes = array<i64: 2, 4>} : tensor<2x8xf32> -> tensor<2x4xf32>
// CHECK-NEXT: %[[GB:.*]] = amp.slice %[[GC]] {offsets = array<i64: 0, 4>, sizes = array<i64: 2, 4>} : tensor<2x8xf32> -> tensor<2x4xf32>
// CHECK-NEXT: %[[GA:.*]] = amp.slice %[[GP]] {offsets = array<i64: 0, 1>, sizes = array<i64: 2, 3>} : tensor<2x4xf32> -> tensor<2x3xf32>
// CHECK-NEXT: return %[[GA]], %[[GB]],
