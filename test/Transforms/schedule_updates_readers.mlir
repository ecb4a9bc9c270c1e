// RUN: amp-opt %s --amp-schedule-updates | FileCheck %s
// RUN: amp-opt %s --amp-schedule-updates --emit=plan-text | FileCheck %s --check-prefix=PLAN
// An update whose gradient is ready early still waits for every reader of
// the weights it overwrites in place, also a reader through a view (a
// reshape aliases the weights' bytes); the lowering then writes in place,
// with no copy.

func.func @forward(%x: tensor<2x2xf32> {amp.input = "x"}, %w: tensor<4xf32> {amp.param = "w"})
    -> (tensor<2x2xf32> {amp.output = "y"}) {
  %view = amp.reshape %w : tensor<4xf32> -> tensor<2x2xf32>
  %y = amp.add %view, %x : (tensor<2x2xf32>, tensor<2x2xf32>) -> tensor<2x2xf32>
  return %y : tensor<2x2xf32>
}

// CHECK-LABEL: func.func @train_step(
func.func @train_step(%w: tensor<4xf32> {amp.param = "w"},
                      %m: tensor<4xf32> {amp.state = "w.momentum_buffer"},
                      %x: tensor<2x2xf32> {amp.input = "x"})
    -> (tensor<4xf32> {amp.param = "w"}, tensor<4xf32> {amp.state = "w.momentum_buffer"},
        tensor<2x2xf32> {amp.output = "y"}) {
  %flat = amp.reshape %x : tensor<2x2xf32> -> tensor<4xf32>
  // CHECK: %[[G:.*]] = amp.mul
  %g = amp.mul %flat, %flat : (tensor<4xf32>, tensor<4xf32>) -> tensor<4xf32>
  // CHECK-NEXT: %[[VIEW:.*]] = amp.reshape %arg0
  %view = amp.reshape %w : tensor<4xf32> -> tensor<2x2xf32>
  // CHECK-NEXT: %[[LATE:.*]] = amp.add %[[VIEW]], %arg2
  %late = amp.add %view, %x : (tensor<2x2xf32>, tensor<2x2xf32>) -> tensor<2x2xf32>
  // CHECK-NEXT: amp.sgd_update %arg0, %[[G]], %arg1
  %p, %b = amp.sgd_update %w, %g, %m {lr = 0.1 : f64, momentum = 0.9 : f64, weight_decay = 0.0 : f64} : tensor<4xf32>
  return %p, %b, %late : tensor<4xf32>, tensor<4xf32>, tensor<2x2xf32>
}

// PLAN: op: "add"
// PLAN: op: "sgd_update"
// PLAN-NOT: op: "copy"
// PLAN: eval
