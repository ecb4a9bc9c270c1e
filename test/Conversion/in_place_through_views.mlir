// RUN: amp-opt %s --emit=plan-text | FileCheck %s
// An update may overwrite the weights in place only after every reader of
// their bytes, including a reader through a view: here the add reads a
// reshape of w after w's update, so the update writes a new buffer that a
// final copy moves into the state slot (writing in place made the add read
// the updated weights).

func.func @forward(%x: tensor<2x2xf32> {amp.input = "x"}, %w: tensor<4xf32> {amp.param = "w"})
    -> (tensor<2x2xf32> {amp.output = "y"}) {
  %view = amp.reshape %w : tensor<4xf32> -> tensor<2x2xf32>
  %y = amp.add %view, %x : (tensor<2x2xf32>, tensor<2x2xf32>) -> tensor<2x2xf32>
  return %y : tensor<2x2xf32>
}

func.func @train_step(%w: tensor<4xf32> {amp.param = "w"},
                      %m: tensor<4xf32> {amp.state = "w.momentum_buffer"},
                      %x: tensor<2x2xf32> {amp.input = "x"})
    -> (tensor<4xf32> {amp.param = "w"}, tensor<4xf32> {amp.state = "w.momentum_buffer"},
        tensor<2x2xf32> {amp.output = "y"}) {
  %flat = amp.reshape %x : tensor<2x2xf32> -> tensor<4xf32>
  %g = amp.mul %flat, %flat : (tensor<4xf32>, tensor<4xf32>) -> tensor<4xf32>
  %view = amp.reshape %w : tensor<4xf32> -> tensor<2x2xf32>
  %p, %b = amp.sgd_update %w, %g, %m {lr = 0.1 : f64, momentum = 0.9 : f64, weight_decay = 0.0 : f64} : tensor<4xf32>
  %late = amp.add %view, %x : (tensor<2x2xf32>, tensor<2x2xf32>) -> tensor<2x2xf32>
  return %p, %b, %late : tensor<4xf32>, tensor<4xf32>, tensor<2x2xf32>
}

// CHECK-LABEL: train {
// CHECK: op: "sgd_update"
// CHECK: op: "add"
// CHECK: op: "copy"
// CHECK-LABEL: eval {
