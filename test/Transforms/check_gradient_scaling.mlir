// RUN: amp-opt %s -split-input-file --amp-check-gradient-scaling -verify-diagnostics
// Updates and clipping must only see unscaled gradients.

func.func @train_step(%p: tensor<4xf32> {amp.param = "p"}, %b: tensor<4xf32> {amp.state = "p.momentum_buffer"},
                      %scale: tensor<f32> {amp.state = "loss_scale"}, %g: tensor<4xf32> {amp.input = "g"}) -> tensor<4xf32> {
  // A gradient multiplied by the scale and never unscaled:
  %scaled = amp.mul %g, %scale : (tensor<4xf32>, tensor<f32>) -> tensor<4xf32>
  // expected-error @+1 {{'amp.sgd_update' reads a gradient that is still multiplied by the loss scale; unscale it first (amp.unscale)}}
  %p1, %b1 = amp.sgd_update %p, %scaled, %b {lr = 0.1 : f64, momentum = 0.0 : f64, weight_decay = 0.0 : f64} : tensor<4xf32>
  return %p1 : tensor<4xf32>
}

// -----

func.func @train_step(%scale: tensor<f32> {amp.state = "loss_scale"}, %g: tensor<4xf32> {amp.input = "g"}) -> tensor<f32> {
  %scaled = amp.mul %g, %scale : (tensor<4xf32>, tensor<f32>) -> tensor<4xf32>
  // expected-error @+1 {{'amp.global_norm' reads a gradient that is still multiplied by the loss scale}}
  %norm = amp.global_norm %scaled : tensor<4xf32> -> tensor<f32>
  return %norm : tensor<f32>
}

// -----

// Unscaled first: accepted.
func.func @train_step(%p: tensor<4xf32> {amp.param = "p"}, %b: tensor<4xf32> {amp.state = "p.momentum_buffer"},
                      %scale: tensor<f32> {amp.state = "loss_scale"}, %g: tensor<4xf32> {amp.input = "g"}) -> tensor<4xf32> {
  %scaled = amp.mul %g, %scale : (tensor<4xf32>, tensor<f32>) -> tensor<4xf32>
  %unscaled = amp.unscale %scaled, %scale : tensor<4xf32>, tensor<f32> -> tensor<4xf32>
  %norm = amp.global_norm %unscaled : tensor<4xf32> -> tensor<f32>
  %c = amp.clip_coefficient %norm {max_norm = 1.0 : f64} : tensor<f32>
  %clipped = amp.mul %unscaled, %c : (tensor<4xf32>, tensor<f32>) -> tensor<4xf32>
  %p1, %b1 = amp.sgd_update %p, %clipped, %b {lr = 0.1 : f64, momentum = 0.0 : f64, weight_decay = 0.0 : f64} : tensor<4xf32>
  return %p1 : tensor<4xf32>
}
