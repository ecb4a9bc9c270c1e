// RUN: amp-opt %s -split-input-file -verify-diagnostics
// Each verifier rejects malformed IR with a message that says why.

func.func @matmul_inner_dims(%a: tensor<4x3xf32>, %b: tensor<4x5xf32>) -> tensor<4x5xf32> {
  // expected-error @+1 {{inner dimensions differ (3 vs 4)}}
  %0 = amp.matmul %a, %b : tensor<4x3xf32>, tensor<4x5xf32> -> tensor<4x5xf32>
  return %0 : tensor<4x5xf32>
}

// -----

func.func @matmul_rank(%a: tensor<2x4x3xf32>, %b: tensor<3x5xf32>) -> tensor<4x5xf32> {
  // expected-error @+1 {{expects operands of one rank, at least 2}}
  %0 = amp.matmul %a, %b : tensor<2x4x3xf32>, tensor<3x5xf32> -> tensor<4x5xf32>
  return %0 : tensor<4x5xf32>
}

// -----

func.func @matmul_result_shape(%a: tensor<4x3xf32>, %b: tensor<3x5xf32>) -> tensor<4x6xf32> {
  // expected-error @+1 {{result shape [4, 6] does not match the inferred shape [4, 5]}}
  %0 = amp.matmul %a, %b : tensor<4x3xf32>, tensor<3x5xf32> -> tensor<4x6xf32>
  return %0 : tensor<4x6xf32>
}

// -----

func.func @matmul_mixed_operands(%a: tensor<4x3xbf16>, %b: tensor<3x5xf32>) -> tensor<4x5xf32> {
  // expected-error @+1 {{operands must share an element type}}
  %0 = amp.matmul %a, %b : tensor<4x3xbf16>, tensor<3x5xf32> -> tensor<4x5xf32>
  return %0 : tensor<4x5xf32>
}

// -----

func.func @matmul_narrow_result(%a: tensor<4x3xf32>, %b: tensor<3x5xf32>) -> tensor<4x5xf16> {
  // expected-error @+1 {{result element type must equal the operands' or be f32}}
  %0 = amp.matmul %a, %b : tensor<4x3xf32>, tensor<3x5xf32> -> tensor<4x5xf16>
  return %0 : tensor<4x5xf16>
}

// -----

func.func @add_no_broadcast(%a: tensor<4x3xf32>, %b: tensor<4xf32>) -> tensor<4x3xf32> {
  // expected-error @+1 {{operand shapes do not broadcast}}
  %0 = amp.add %a, %b : (tensor<4x3xf32>, tensor<4xf32>) -> tensor<4x3xf32>
  return %0 : tensor<4x3xf32>
}

// -----

func.func @mul_element_types(%a: tensor<4xf32>, %b: tensor<4xbf16>) -> tensor<4xf32> {
  // expected-error @+1 {{operands and result must share an element type}}
  %0 = amp.mul %a, %b : (tensor<4xf32>, tensor<4xbf16>) -> tensor<4xf32>
  return %0 : tensor<4xf32>
}

// -----

func.func @sub_result_shape(%a: tensor<4x3xf32>, %b: tensor<3xf32>) -> tensor<3xf32> {
  // expected-error @+1 {{does not match the inferred shape}}
  %0 = amp.sub %a, %b : (tensor<4x3xf32>, tensor<3xf32>) -> tensor<3xf32>
  return %0 : tensor<3xf32>
}

// -----

func.func @relu_types(%a: tensor<4xf32>) -> tensor<4xbf16> {
  // expected-error @+1 {{requires the same type for all operands and results}}
  %0 = "amp.relu"(%a) : (tensor<4xf32>) -> tensor<4xbf16>
  return %0 : tensor<4xbf16>
}

// -----

func.func @relu_integer(%a: tensor<4xi64>) -> tensor<4xi64> {
  // expected-error @+1 {{must be ranked tensor of 32-bit float or bfloat16 type or 16-bit float values}}
  %0 = amp.relu %a : tensor<4xi64>
  return %0 : tensor<4xi64>
}

// -----

func.func @reshape_count(%a: tensor<4x3xf32>) -> tensor<5xf32> {
  // expected-error @+1 {{element count changes (12 vs 5)}}
  %0 = amp.reshape %a : tensor<4x3xf32> -> tensor<5xf32>
  return %0 : tensor<5xf32>
}

// -----

func.func @reshape_element_type(%a: tensor<4xf32>) -> tensor<4xbf16> {
  // expected-error @+1 {{must keep the element type}}
  %0 = amp.reshape %a : tensor<4xf32> -> tensor<4xbf16>
  return %0 : tensor<4xbf16>
}

// -----

func.func @cast_shape(%a: tensor<4xf32>) -> tensor<5xbf16> {
  // expected-error @+1 {{does not match the inferred shape [4]}}
  %0 = amp.cast %a : tensor<4xf32> to tensor<5xbf16>
  return %0 : tensor<5xbf16>
}

// -----

func.func @reduce_axis_range(%a: tensor<4x3xf32>) -> tensor<4xf32> {
  // expected-error @+1 {{axis 2 is out of range}}
  %0 = amp.reduce_sum %a axes = [2] : tensor<4x3xf32> -> tensor<4xf32>
  return %0 : tensor<4xf32>
}

// -----

func.func @reduce_axes_order(%a: tensor<4x3xf32>) -> tensor<f32> {
  // expected-error @+1 {{axes must be sorted and unique}}
  %0 = amp.reduce_sum %a axes = [1, 0] : tensor<4x3xf32> -> tensor<f32>
  return %0 : tensor<f32>
}

// -----

func.func @loss_batch(%x: tensor<8x3xf32>, %y: tensor<4xi64>) -> tensor<f32> {
  // expected-error @+1 {{batch of logits (8) and labels (4) differ}}
  %0 = amp.softmax_cross_entropy %x, %y {reduction = #amp<reduction mean>} : tensor<8x3xf32>, tensor<4xi64> -> tensor<f32>
  return %0 : tensor<f32>
}

// -----

func.func @loss_rank(%x: tensor<8xf32>, %y: tensor<8xi64>) -> tensor<f32> {
  // expected-error @+1 {{expects [N, C] logits and [N] labels}}
  %0 = amp.softmax_cross_entropy %x, %y {reduction = #amp<reduction mean>} : tensor<8xf32>, tensor<8xi64> -> tensor<f32>
  return %0 : tensor<f32>
}

// -----

func.func @loss_labels_float(%x: tensor<8x3xf32>, %y: tensor<8xf32>) -> tensor<f32> {
  // expected-error @+1 {{must be ranked tensor of 64-bit signless integer values}}
  %0 = amp.softmax_cross_entropy %x, %y {reduction = #amp<reduction mean>} : tensor<8x3xf32>, tensor<8xf32> -> tensor<f32>
  return %0 : tensor<f32>
}

// -----

func.func @loss_grad_shape(%g: tensor<f32>, %x: tensor<8x3xf32>, %y: tensor<8xi64>) -> tensor<8x4xf32> {
  // expected-error @+1 {{result must have the logits' shape}}
  %0 = amp.softmax_cross_entropy_grad %g, %x, %y {reduction = #amp<reduction mean>} : tensor<f32>, tensor<8x3xf32>, tensor<8xi64> -> tensor<8x4xf32>
  return %0 : tensor<8x4xf32>
}

// -----

func.func @reduce_narrowing(%a: tensor<4x3xf32>) -> tensor<3xbf16> {
  // expected-error @+1 {{result element type must equal the input's or be f32}}
  %0 = amp.reduce_sum %a axes = [0] : tensor<4x3xf32> -> tensor<3xbf16>
  return %0 : tensor<3xbf16>
}

// -----

func.func @sgd_types(%p: tensor<4xf32>, %g: tensor<5xf32>) -> tensor<4xf32> {
  // expected-error @+1 {{all of {param, grad, momentum_buffer, new_param, new_momentum_buffer} have same type}}
  %p1, %b1 = "amp.sgd_update"(%p, %g, %p) {lr = 0.1 : f64, momentum = 0.9 : f64, weight_decay = 0.0 : f64} : (tensor<4xf32>, tensor<5xf32>, tensor<4xf32>) -> (tensor<4xf32>, tensor<4xf32>)
  return %p1 : tensor<4xf32>
}

// -----

func.func @sgd_negative_lr(%p: tensor<4xf32>) -> tensor<4xf32> {
  // expected-error @+1 {{learning rate and momentum must be non-negative}}
  %p1, %b1 = amp.sgd_update %p, %p, %p {lr = -0.1 : f64, momentum = 0.9 : f64, weight_decay = 0.0 : f64} : tensor<4xf32>
  return %p1 : tensor<4xf32>
}

// -----

func.func @adamw_betas(%p: tensor<4xf32>, %s: tensor<i64>) -> tensor<4xf32> {
  // expected-error @+1 {{betas must lie in [0, 1)}}
  %p1, %m1, %v1 = amp.adamw_update %p, %p, %p, %p, %s {lr = 1.0e-3 : f64, beta1 = 1.0 : f64, beta2 = 0.999 : f64, eps = 1.0e-8 : f64, weight_decay = 0.01 : f64} : tensor<4xf32>, tensor<i64>
  return %p1 : tensor<4xf32>
}

// -----

func.func @adamw_bf16_master(%p: tensor<4xbf16>, %s: tensor<i64>) -> tensor<4xbf16> {
  // expected-error @+1 {{must be ranked tensor of 32-bit float values}}
  %p1, %m1, %v1 = amp.adamw_update %p, %p, %p, %p, %s {lr = 1.0e-3 : f64, beta1 = 0.9 : f64, beta2 = 0.999 : f64, eps = 1.0e-8 : f64, weight_decay = 0.01 : f64} : tensor<4xbf16>, tensor<i64>
  return %p1 : tensor<4xbf16>
}

// -----

func.func @increment_type(%s: tensor<f32>) -> tensor<f32> {
  // expected-error @+1 {{must be 0D tensor of 64-bit signless integer values}}
  %0 = amp.increment %s : tensor<f32>
  return %0 : tensor<f32>
}

// -----

func.func @constant_type() -> tensor<3xf32> {
  // expected-error @+1 {{all of {value, output} have same type}}
  %0 = "amp.constant"() {value = dense<1.0> : tensor<2xf32>} : () -> tensor<3xf32>
  return %0 : tensor<3xf32>
}

// -----

func.func @neg_types(%a: tensor<4xf32>) -> tensor<4xf16> {
  // expected-error @+1 {{requires the same type for all operands and results}}
  %0 = "amp.neg"(%a) : (tensor<4xf32>) -> tensor<4xf16>
  return %0 : tensor<4xf16>
}

// -----

func.func @relu_grad_shapes(%g: tensor<4xf32>, %x: tensor<5xf32>) -> tensor<4xf32> {
  // expected-error @+1 {{requires the same type for all operands and results}}
  %0 = "amp.relu_grad"(%g, %x) : (tensor<4xf32>, tensor<5xf32>) -> tensor<4xf32>
  return %0 : tensor<4xf32>
}

// -----

func.func @reshape_shape_rank(%a: tensor<?x12xf32>) -> tensor<?x12xf32> {
  // expected-error @+1 {{shape must have the result's rank}}
  %0 = amp.reshape %a {shape = array<i64: 0, 3, 4>} : tensor<?x12xf32> -> tensor<?x12xf32>
  return %0 : tensor<?x12xf32>
}

// -----

func.func @exp_narrowing(%a: tensor<4xf32>) -> tensor<4xbf16> {
  // expected-error @+1 {{result element type must equal the input's or be f32}}
  %0 = amp.exp %a : tensor<4xf32> -> tensor<4xbf16>
  return %0 : tensor<4xbf16>
}

// -----

func.func @log_shape(%a: tensor<4xf32>) -> tensor<5xf32> {
  // expected-error @+1 {{requires the same shape for all operands and results}}
  %0 = amp.log %a : tensor<4xf32> -> tensor<5xf32>
  return %0 : tensor<5xf32>
}

// -----

func.func @softmax_scalar(%a: tensor<f32>) -> tensor<f32> {
  // expected-error @+1 {{needs at least one dimension}}
  %0 = amp.softmax %a : tensor<f32> -> tensor<f32>
  return %0 : tensor<f32>
}

// -----

func.func @div_types(%a: tensor<4xf32>, %b: tensor<4xf16>) -> tensor<4xf32> {
  // expected-error @+1 {{operands and result must share an element type}}
  %0 = amp.div %a, %b : (tensor<4xf32>, tensor<4xf16>) -> tensor<4xf32>
  return %0 : tensor<4xf32>
}

// -----

func.func @broadcast_shrink(%a: tensor<4x3xf32>) -> tensor<4x1xf32> {
  // expected-error @+1 {{cannot broadcast 'tensor<4x3xf32>' to 'tensor<4x1xf32>'}}
  %0 = amp.broadcast_to %a : tensor<4x3xf32> -> tensor<4x1xf32>
  return %0 : tensor<4x1xf32>
}

// -----

func.func @conv_result_shape(%x: tensor<1x3x8x8xf32>, %w: tensor<4x3x3x3xf32>) -> tensor<1x4x8x8xf32> {
  // expected-error @+1 {{result shape [1, 4, 8, 8] does not match the inferred shape [1, 4, 6, 6]}}
  %0 = amp.conv %x, %w {strides = array<i64: 1, 1>, pads = array<i64: 0, 0, 0, 0>, dilations = array<i64: 1, 1>} : tensor<1x3x8x8xf32>, tensor<4x3x3x3xf32> -> tensor<1x4x8x8xf32>
  return %0 : tensor<1x4x8x8xf32>
}

// -----

func.func @conv_groups(%x: tensor<1x3x8x8xf32>, %w: tensor<4x1x3x3xf32>) -> tensor<1x4x6x6xf32> {
  // expected-error @+1 {{4 output channels do not split into 3 groups}}
  %0 = amp.conv %x, %w {strides = array<i64: 1, 1>, pads = array<i64: 0, 0, 0, 0>, dilations = array<i64: 1, 1>, group = 3} : tensor<1x3x8x8xf32>, tensor<4x1x3x3xf32> -> tensor<1x4x6x6xf32>
  return %0 : tensor<1x4x6x6xf32>
}

// -----

func.func @cast_integers_to_bool(%x: tensor<4xi64>) -> tensor<4xi1> {
  // expected-error @+1 {{converts integers and booleans to float types only}}
  %0 = amp.cast %x : tensor<4xi64> to tensor<4xi1>
  return %0 : tensor<4xi1>
}
