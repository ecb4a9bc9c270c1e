// RUN: amp-opt %s -split-input-file --amp-autocast=precision=bf16 | FileCheck %s
// RUN: amp-opt %s -split-input-file --amp-autocast=precision=fp16 | FileCheck %s --check-prefix=F16
// RUN: amp-opt %s -split-input-file --amp-autocast=precision=fp32 | FileCheck %s --check-prefix=FP32
// Default precision rules of amp-autocast, one function per rule.

// GEMMs run in the low type with FP32 accumulation: operands are cast, the
// result is bf16 when a follow op reads it.
// CHECK-LABEL: func.func @gemm_low
// CHECK-SAME: (%[[X:.*]]: tensor<4x3xf32> {amp.input = "x"}, %[[W:.*]]: tensor<2x3xf32> {amp.param = "w"})
// CHECK-DAG: %[[XL:.*]] = amp.cast %[[X]] {{.*}}: tensor<4x3xf32> to tensor<4x3xbf16>
// CHECK-DAG: %[[WL:.*]] = amp.cast %[[W]] {{.*}}: tensor<2x3xf32> to tensor<2x3xbf16>
// CHECK: %[[Y:.*]] = amp.matmul %[[XL]], %[[WL]] {amp.rule = "compute-bound GEMM: low-precision operands, FP32 accumulation -> bf16", transpose_rhs} : tensor<4x3xbf16>, tensor<2x3xbf16> -> tensor<4x2xbf16>
// CHECK: amp.relu %[[Y]] {{.*}}: tensor<4x2xbf16>
// F16-LABEL: func.func @gemm_low
// F16: amp.matmul {{.*}} : tensor<4x3xf16>, tensor<2x3xf16> -> tensor<4x2xf16>
// With precision=fp32 autocast changes nothing.
// FP32-LABEL: func.func @gemm_low
// FP32-NOT: amp.cast
// FP32-NOT: amp.rule
// FP32: amp.matmul {{.*}} : tensor<4x3xf32>, tensor<2x3xf32> -> tensor<4x2xf32>
func.func @gemm_low(%x: tensor<4x3xf32> {amp.input = "x"}, %w: tensor<2x3xf32> {amp.param = "w"}) -> tensor<4x2xf32> {
  %0 = amp.matmul %x, %w {transpose_rhs} : tensor<4x3xf32>, tensor<2x3xf32> -> tensor<4x2xf32>
  %1 = amp.relu %0 : tensor<4x2xf32>
  %2 = amp.matmul %1, %w : tensor<4x2xf32>, tensor<2x3xf32> -> tensor<4x3xf32>
  %3 = amp.reshape %2 : tensor<4x3xf32> -> tensor<12xf32>
  %4 = amp.reshape %3 : tensor<12xf32> -> tensor<4x3xf32>
  %5 = amp.matmul %4, %w {transpose_rhs} : tensor<4x3xf32>, tensor<2x3xf32> -> tensor<4x2xf32>
  return %5 : tensor<4x2xf32>
}
// No ping-pong: follow ops between two GEMMs stay bf16, and the parameter
// is cast exactly once although three GEMMs read it.
// CHECK: %[[Y2:.*]] = amp.matmul {{.*}} -> tensor<4x3xbf16>
// CHECK: %[[R1:.*]] = amp.reshape %[[Y2]] {{.*}}: tensor<4x3xbf16> -> tensor<12xbf16>
// CHECK: %[[R2:.*]] = amp.reshape %[[R1]] {{.*}}: tensor<12xbf16> -> tensor<4x3xbf16>
// The last GEMM feeds only the (f32) function result: f32 output, no extra cast.
// CHECK: %[[OUT:.*]] = amp.matmul %[[R2]], %[[WL]] {{.*}}: tensor<4x3xbf16>, tensor<2x3xbf16> -> tensor<4x2xf32>
// CHECK: return %[[OUT]] : tensor<4x2xf32>

// -----

// The loss stays f32 and reads low-precision logits itself; the follow op
// that only leads into it stays f32 (no bf16 round trip before the loss).
// CHECK-LABEL: func.func @loss_f32
func.func @loss_f32(%x: tensor<4x3xf32> {amp.input = "x"}, %w: tensor<2x3xf32> {amp.param = "w"},
                    %b: tensor<2xf32> {amp.param = "b"}, %y: tensor<4xi64> {amp.label = "labels"}) -> tensor<f32> {
  %0 = amp.matmul %x, %w {transpose_rhs} : tensor<4x3xf32>, tensor<2x3xf32> -> tensor<4x2xf32>
  %1 = amp.add %0, %b : (tensor<4x2xf32>, tensor<2xf32>) -> tensor<4x2xf32>
  %2 = amp.softmax_cross_entropy %1, %y {reduction = #amp<reduction mean>} : tensor<4x2xf32>, tensor<4xi64> -> tensor<f32>
  return %2 : tensor<f32>
}
// CHECK: %[[MM:.*]] = amp.matmul {{.*}} -> tensor<4x2xf32>
// CHECK-NOT: amp.cast %arg2
// CHECK: %[[LOGITS:.*]] = amp.add %[[MM]], %arg2 {amp.rule = "{{.*}}leads into FP32-only ops -> f32"} : (tensor<4x2xf32>, tensor<2xf32>) -> tensor<4x2xf32>
// CHECK: amp.softmax_cross_entropy %[[LOGITS]], %arg3 {amp.rule = "loss: log-softmax (exp, log, sum) in FP32 -> f32", {{.*}}} : tensor<4x2xf32>, tensor<4xi64> -> tensor<f32>

// -----

// Reductions sum in f32 and may read bf16 directly; on the CPU the legality
// pass (tested separately) widens their input.
// CHECK-LABEL: func.func @reduction_f32
// CHECK: %[[MM:.*]] = amp.matmul {{.*}} -> tensor<4x2xbf16>
// CHECK: %[[ACT:.*]] = amp.relu %[[MM]] {{.*}}: tensor<4x2xbf16>
// CHECK: amp.reduce_sum %[[ACT]] axes = [0] {amp.rule = "reduction: accumulates and stores in FP32 -> f32"} : tensor<4x2xbf16> -> tensor<2xf32>
func.func @reduction_f32(%x: tensor<4x3xf32> {amp.input = "x"}, %w: tensor<2x3xf32> {amp.param = "w"}) -> tensor<2xf32> {
  %0 = amp.matmul %x, %w {transpose_rhs} : tensor<4x3xf32>, tensor<2x3xf32> -> tensor<4x2xf32>
  %1 = amp.relu %0 : tensor<4x2xf32>
  %2 = amp.reduce_sum %1 axes = [0] : tensor<4x2xf32> -> tensor<2xf32>
  %3 = amp.matmul %1, %w : tensor<4x2xf32>, tensor<2x3xf32> -> tensor<4x3xf32>
  return %2 : tensor<2xf32>
}

// -----

// Mixed inputs: the widest type wins, so a follow op reading an f32
// activation and a bf16 one is f32 (the bf16 input is widened).
// CHECK-LABEL: func.func @widest_wins
// CHECK: %[[LOW:.*]] = amp.matmul {{.*}} -> tensor<4x2xbf16>
// CHECK: %[[WIDE:.*]] = amp.cast %[[LOW]] {{.*}}: tensor<4x2xbf16> to tensor<4x2xf32>
// CHECK: amp.add %[[WIDE]], %arg2 {amp.rule = "{{.*}}an input is f32 (the widest wins) -> f32"} : (tensor<4x2xf32>, tensor<4x2xf32>) -> tensor<4x2xf32>
func.func @widest_wins(%x: tensor<4x3xf32> {amp.input = "x"}, %w: tensor<2x3xf32> {amp.param = "w"},
                       %z: tensor<4x2xf32> {amp.input = "z"}) -> tensor<4x2xf32> {
  %0 = amp.matmul %x, %w {transpose_rhs} : tensor<4x3xf32>, tensor<2x3xf32> -> tensor<4x2xf32>
  %1 = amp.add %0, %z : (tensor<4x2xf32>, tensor<4x2xf32>) -> tensor<4x2xf32>
  %2 = amp.matmul %1, %w : tensor<4x2xf32>, tensor<2x3xf32> -> tensor<4x3xf32>
  %3 = amp.relu %2 : tensor<4x3xf32>
  %4 = amp.matmul %3, %w {transpose_rhs} : tensor<4x3xf32>, tensor<2x3xf32> -> tensor<4x2xf32>
  %5 = amp.relu %4 : tensor<4x2xf32>
  return %5 : tensor<4x2xf32>
}

// -----

// softmax, log and exp stay f32; the GEMM feeding only FP32 ops writes its
// FP32 accumulator directly (no bf16 round trip).
// CHECK-LABEL: func.func @sensitive_f32
// CHECK: %[[MM:.*]] = amp.matmul {{.*}} : tensor<4x3xbf16>, tensor<3x3xbf16> -> tensor<4x3xf32>
// CHECK: %[[P:.*]] = amp.softmax %[[MM]] {amp.rule = "softmax: exp and sum in FP32 -> f32"} : tensor<4x3xf32> -> tensor<4x3xf32>
// CHECK: %[[E:.*]] = amp.exp %[[P]] {amp.rule = "exp: overflows low precision; FP32 -> f32"} : tensor<4x3xf32> -> tensor<4x3xf32>
// CHECK: %[[S:.*]] = amp.reduce_sum %[[E]] {{.*}} -> tensor<4xf32>
// CHECK: amp.log %[[S]] {amp.rule = "log: tiny inputs underflow in low precision; FP32 -> f32"} : tensor<4xf32> -> tensor<4xf32>
func.func @sensitive_f32(%x: tensor<4x3xf32> {amp.input = "x"}, %w: tensor<3x3xf32> {amp.param = "w"}) -> tensor<4xf32> {
  %0 = amp.matmul %x, %w : tensor<4x3xf32>, tensor<3x3xf32> -> tensor<4x3xf32>
  %1 = amp.softmax %0 : tensor<4x3xf32> -> tensor<4x3xf32>
  %2 = amp.exp %1 : tensor<4x3xf32> -> tensor<4x3xf32>
  %3 = amp.reduce_sum %2 axes = [1] : tensor<4x3xf32> -> tensor<4xf32>
  %4 = amp.log %3 : tensor<4xf32> -> tensor<4xf32>
  return %4 : tensor<4xf32>
}

// -----

// A conv bias reshaped to [1, C, 1, 1] is still a parameter: the bias add
// follows the bf16 conv (before, the reshape made it f32 and with it
// everything after). Batch norm and its gradient follow their input but
// keep scale, shift, running averages and batch statistics f32.
// CHECK-LABEL: func.func @conv_bias_batch_norm
// CHECK: %[[C:.*]] = amp.conv {{.*}} -> tensor<2x4x3x3xbf16>
// CHECK: %[[B:.*]] = amp.reshape %{{.*}} : tensor<4xf32> -> tensor<1x4x1x1xf32>
// CHECK: %[[BL:.*]] = amp.cast %[[B]] {{.*}}: tensor<1x4x1x1xf32> to tensor<1x4x1x1xbf16>
// CHECK: %[[A:.*]] = amp.add %[[C]], %[[BL]] {{.*}}: (tensor<2x4x3x3xbf16>, tensor<1x4x1x1xbf16>) -> tensor<2x4x3x3xbf16>
// CHECK: amp.batch_norm %[[A]], %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}} {amp.rule = "batch norm: FP32 statistics, scale/shift and running averages; reads and writes its input's type; inputs are bf16 -> bf16"
// CHECK-SAME: : tensor<2x4x3x3xbf16>, tensor<4xf32>, tensor<4xf32>, tensor<4xf32>, tensor<4xf32> -> tensor<2x4x3x3xbf16>, tensor<4xf32>, tensor<4xf32>, tensor<4xf32>, tensor<4xf32>
// CHECK: amp.batch_norm_grad {{.*}} : tensor<2x4x3x3xbf16>, tensor<2x4x3x3xbf16>, tensor<4xf32>, tensor<4xf32>, tensor<4xf32> -> tensor<2x4x3x3xbf16>, tensor<4xf32>, tensor<4xf32>
func.func @conv_bias_batch_norm(%x: tensor<2x3x3x3xf32> {amp.input = "x"},
    %w: tensor<4x3x1x1xf32> {amp.param = "w"}, %b: tensor<4xf32> {amp.param = "b"},
    %s: tensor<4xf32> {amp.param = "s"}, %t: tensor<4xf32> {amp.param = "t"},
    %m: tensor<4xf32> {amp.state = "m"}, %v: tensor<4xf32> {amp.state = "v"},
    %w2: tensor<4x4x1x1xf32> {amp.param = "w2"})
    -> (tensor<2x4x3x3xf32>, tensor<4xf32>, tensor<4xf32>, tensor<2x4x3x3xf32>) {
  %c = amp.conv %x, %w {strides = array<i64: 1, 1>, pads = array<i64: 0, 0, 0, 0>, dilations = array<i64: 1, 1>}
      : tensor<2x3x3x3xf32>, tensor<4x3x1x1xf32> -> tensor<2x4x3x3xf32>
  %br = amp.reshape %b : tensor<4xf32> -> tensor<1x4x1x1xf32>
  %a = amp.add %c, %br : (tensor<2x4x3x3xf32>, tensor<1x4x1x1xf32>) -> tensor<2x4x3x3xf32>
  %y, %rm, %rv, %sm, %sv = amp.batch_norm %a, %s, %t, %m, %v {epsilon = 1.0e-05 : f32, momentum = 0.9 : f32}
      : tensor<2x4x3x3xf32>, tensor<4xf32>, tensor<4xf32>, tensor<4xf32>, tensor<4xf32>
      -> tensor<2x4x3x3xf32>, tensor<4xf32>, tensor<4xf32>, tensor<4xf32>, tensor<4xf32>
  %r = amp.relu %y : tensor<2x4x3x3xf32>
  %o = amp.conv %r, %w2 {strides = array<i64: 1, 1>, pads = array<i64: 0, 0, 0, 0>, dilations = array<i64: 1, 1>}
      : tensor<2x4x3x3xf32>, tensor<4x4x1x1xf32> -> tensor<2x4x3x3xf32>
  %dx, %ds, %db = amp.batch_norm_grad %r, %a, %s, %sm, %sv {epsilon = 1.0e-05 : f32}
      : tensor<2x4x3x3xf32>, tensor<2x4x3x3xf32>, tensor<4xf32>, tensor<4xf32>, tensor<4xf32>
      -> tensor<2x4x3x3xf32>, tensor<4xf32>, tensor<4xf32>
  %g = amp.conv %dx, %w2 {strides = array<i64: 1, 1>, pads = array<i64: 0, 0, 0, 0>, dilations = array<i64: 1, 1>}
      : tensor<2x4x3x3xf32>, tensor<4x4x1x1xf32> -> tensor<2x4x3x3xf32>
  return %o, %rm, %rv, %g : tensor<2x4x3x3xf32>, tensor<4xf32>, tensor<4xf32>, tensor<2x4x3x3xf32>
}
