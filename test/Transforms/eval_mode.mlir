// RUN: amp-opt %s -split-input-file --amp-eval-mode | FileCheck %s
// amp-eval-mode turns @forward into the evaluation program: batch norm
// normalizes with the running averages (batch_norm_inference), which it
// returns unchanged. Other functions (the training step) keep training mode.

// CHECK-LABEL: func.func @forward(
// CHECK-SAME: %[[X:[^:]*]]: tensor<2x3xf32> {amp.input = "x"}, %[[S:[^:]*]]: tensor<3xf32> {amp.param = "s"}, %[[B:[^:]*]]: tensor<3xf32> {amp.param = "b"}, %[[M:[^:]*]]: tensor<3xf32> {amp.state = "m"}, %[[V:[^:]*]]: tensor<3xf32> {amp.state = "v"}
// CHECK-NEXT: %[[Y:.*]] = amp.batch_norm_inference %[[X]], %[[S]], %[[B]], %[[M]], %[[V]] {epsilon = 9.99999974E-6 : f32} : tensor<2x3xf32>, tensor<3xf32>, tensor<3xf32>, tensor<3xf32>, tensor<3xf32> -> tensor<2x3xf32>
// CHECK-NEXT: return %[[Y]], %[[M]], %[[V]]
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
// CHECK: amp.batch_norm %
func.func @train_step(%x: tensor<2x3xf32> {amp.input = "x"}, %s: tensor<3xf32> {amp.param = "s"},
                      %b: tensor<3xf32> {amp.param = "b"}, %m: tensor<3xf32> {amp.state = "m"},
                      %v: tensor<3xf32> {amp.state = "v"}) -> tensor<2x3xf32> {
  %y, %rm, %rv, %sm, %sv = amp.batch_norm %x, %s, %b, %m, %v {epsilon = 1.0e-05 : f32, momentum = 0.9 : f32}
      : tensor<2x3xf32>, tensor<3xf32>, tensor<3xf32>, tensor<3xf32>, tensor<3xf32>
      -> tensor<2x3xf32>, tensor<3xf32>, tensor<3xf32>, tensor<3xf32>, tensor<3xf32>
  return %y : tensor<2x3xf32>
}

// -----

// Dropout is the identity in evaluation, and evaluation advances no step
// state: the counter is returned unchanged and its increment goes.
// CHECK-LABEL: func.func @forward(
// CHECK-SAME: %[[X:[^:]*]]: tensor<2x3xf32> {amp.input = "x"}, %[[C:[^:]*]]: tensor<i64> {amp.state = "dropout.counter"}
// CHECK-NEXT: return %[[X]], %[[C]]
func.func @forward(%x: tensor<2x3xf32> {amp.input = "x"}, %c: tensor<i64> {amp.state = "dropout.counter"})
    -> (tensor<2x3xf32> {amp.output = "y"}, tensor<i64> {amp.state = "dropout.counter"}) {
  %y = amp.dropout %x, %c {ratio = 0.5 : f32, seed = 7 : i64} : tensor<2x3xf32>, tensor<i64>
  %n = amp.increment %c : tensor<i64>
  return %y, %n : tensor<2x3xf32>, tensor<i64>
}
