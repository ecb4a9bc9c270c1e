// RUN: amp-opt %s -split-input-file --amp-build-train-step -verify-diagnostics
// RUN: not amp-opt %s -split-input-file --amp-build-train-step="loss=output:missing" 2>&1 | FileCheck %s --check-prefix=MISSING
// RUN: not amp-opt %s -split-input-file --amp-build-train-step="optimizer=lamb" 2>&1 | FileCheck %s --check-prefix=OPTIMIZER
// RUN: not amp-opt %s -split-input-file --amp-build-train-step="loss=hinge" 2>&1 | FileCheck %s --check-prefix=LOSS

// MISSING: error: loss=output:missing names no output of the model
// OPTIMIZER: error: unknown optimizer 'lamb' (expected adamw, sgd or none)
// LOSS: error: unknown loss 'hinge' (expected cross-entropy or output:NAME)

// An op without a gradient rule on a parameter's path is reported at its
// (ONNX node) location.
func.func @forward(%x: tensor<4x3xf32> {amp.input = "x"},
                   %w: tensor<4x3xf32> {amp.param = "w"}) -> (tensor<4x3xf32> {amp.output = "y"}) {
  %0 = amp.mul %x, %w : (tensor<4x3xf32>, tensor<4x3xf32>) -> tensor<4x3xf32>
  // relu_grad is itself a gradient op: it has no second-order rule.
  // expected-error @+1 {{'amp.relu_grad' has no gradient rule, but a parameter's gradient flows through it}}
  %1 = amp.relu_grad %0, %x : tensor<4x3xf32>
  %2 = amp.reshape %1 : tensor<4x3xf32> -> tensor<2x6xf32>
  %3 = amp.reshape %2 : tensor<2x6xf32> -> tensor<4x3xf32>
  return %3 : tensor<4x3xf32>
}

// -----

// Cross-entropy needs exactly one output.
// expected-error @+1 {{loss=cross-entropy needs exactly one model output (the logits), found 2}}
func.func @forward(%x: tensor<4x3xf32> {amp.input = "x"},
                   %w: tensor<4x3xf32> {amp.param = "w"}) -> (tensor<4x3xf32> {amp.output = "a"}, tensor<4x3xf32> {amp.output = "b"}) {
  %0 = amp.mul %x, %w : (tensor<4x3xf32>, tensor<4x3xf32>) -> tensor<4x3xf32>
  return %0, %0 : tensor<4x3xf32>, tensor<4x3xf32>
}

// -----

// expected-error @+1 {{the model has no trainable parameters (float initializers)}}
func.func @forward(%x: tensor<4x3xf32> {amp.input = "x"}) -> (tensor<4x3xf32> {amp.output = "y"}) {
  return %x : tensor<4x3xf32>
}

// -----

// expected-error @+1 {{amp-build-train-step: no func.func @forward to train}}
module {
  func.func @model(%x: tensor<4x3xf32>) -> tensor<4x3xf32> {
    return %x : tensor<4x3xf32>
  }
}
