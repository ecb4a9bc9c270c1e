// RUN: amp-opt %s --amp-legalize-precision | FileCheck %s --check-prefixes=CHECK,NATIVE
// RUN: amp-opt %s --amp-legalize-precision=backend=cpu | FileCheck %s --check-prefixes=CHECK,CPU,EMUF16
// RUN: amp-opt %s --amp-legalize-precision=backend=cpu-bf16 | FileCheck %s --check-prefixes=CHECK,CPUBF16,EMUF16
// RUN: amp-opt %s --amp-legalize-precision=backend=cuda | FileCheck %s --check-prefixes=CHECK,NATIVE
// RUN: not amp-opt %s --amp-legalize-precision=backend=tpu 2>&1 | FileCheck %s --check-prefix=BACKEND
// The policy lets the loss and reductions read bf16. Every backend's
// kernels for the loss are f32-only, so legality widens its input, once per
// value; the reductions' kernels read bf16 themselves and keep it.
// Elementwise ops run in bf16 everywhere and are left alone.

// CHECK-LABEL: func.func @cpu
// CHECK: %[[LOW:.*]] = amp.relu %arg0 : tensor<4x3xbf16>
// CHECK: %[[WIDE:.*]] = amp.cast %[[LOW]] {amp.rule = "legality: every backend runs 'amp.softmax_cross_entropy' in f32"} : tensor<4x3xbf16> to tensor<4x3xf32>
// CHECK: amp.softmax_cross_entropy %[[WIDE]], %arg1
// CHECK-NOT: amp.cast
// CHECK: amp.softmax_cross_entropy_grad %{{.*}}, %[[WIDE]], %arg1
// CHECK: amp.reduce_sum %[[LOW]] axes = [0] : tensor<4x3xbf16> -> tensor<3xf32>
// BACKEND: error: amp-legalize-precision: unknown backend 'tpu' (expected any, cpu, cpu-bf16 or cuda)
func.func @cpu(%x: tensor<4x3xbf16>, %y: tensor<4xi64>) -> (tensor<f32>, tensor<4x3xf32>, tensor<3xf32>) {
  %0 = amp.relu %x : tensor<4x3xbf16>
  %1 = amp.softmax_cross_entropy %0, %y {reduction = #amp<reduction mean>} : tensor<4x3xbf16>, tensor<4xi64> -> tensor<f32>
  %2 = amp.softmax_cross_entropy_grad %1, %0, %y {reduction = #amp<reduction mean>} : tensor<f32>, tensor<4x3xbf16>, tensor<4xi64> -> tensor<4x3xf32>
  %3 = amp.reduce_sum %0 axes = [0] : tensor<4x3xbf16> -> tensor<3xf32>
  return %1, %2, %3 : tensor<f32>, tensor<4x3xf32>, tensor<3xf32>
}

// GEMMs: a backend that only emulates a low type computes in f32 (what its
// runtime does anyway), and the IR says so; the plan for any backend, and
// backends with native kernels, keep the low GEMM. A GEMM whose result is
// already f32 (FP32 accumulation written out) needs no narrowing cast.
// CHECK-LABEL: func.func @gemms
// NATIVE: amp.matmul %arg0, %arg1 {amp.rule = "autocast: low"} : tensor<4x8xbf16>, tensor<8x2xbf16> -> tensor<4x2xbf16>
// NATIVE: amp.matmul %arg2, %arg3 : tensor<4x8xf16>, tensor<8x2xf16> -> tensor<4x2xf32>
// NATIVE-NOT: amp.cast
// CPUBF16: amp.matmul %arg0, %arg1 {amp.rule = "autocast: low"} : tensor<4x8xbf16>, tensor<8x2xbf16> -> tensor<4x2xbf16>
// CPU-DAG: %[[A:.*]] = amp.cast %arg0 {amp.rule = "legality: backend 'cpu' emulates 'amp.matmul' on bf16 (computes in f32)"} : tensor<4x8xbf16> to tensor<4x8xf32>
// CPU-DAG: %[[B:.*]] = amp.cast %arg1 {{.*}} : tensor<8x2xbf16> to tensor<8x2xf32>
// The op's decision record says so too.
// CPU: %[[P:.*]] = amp.matmul %[[A]], %[[B]] {amp.rule = "autocast: low; legality: backend 'cpu' emulates 'amp.matmul' on bf16 (computes in f32)"} : tensor<4x8xf32>, tensor<8x2xf32> -> tensor<4x2xf32>
// CPU: amp.cast %[[P]] {{.*}} : tensor<4x2xf32> to tensor<4x2xbf16>
// EMUF16: %[[C:.*]] = amp.cast %arg2 {amp.rule = "legality: backend '{{cpu|cpu-bf16}}' emulates 'amp.matmul' on f16 (computes in f32)"} : tensor<4x8xf16> to tensor<4x8xf32>
func.func @gemms(%a: tensor<4x8xbf16>, %b: tensor<8x2xbf16>, %c: tensor<4x8xf16>, %d: tensor<8x2xf16>)
    -> (tensor<4x2xbf16>, tensor<4x2xf32>) {
  %0 = amp.matmul %a, %b {amp.rule = "autocast: low"} : tensor<4x8xbf16>, tensor<8x2xbf16> -> tensor<4x2xbf16>
  %1 = amp.matmul %c, %d : tensor<4x8xf16>, tensor<8x2xf16> -> tensor<4x2xf32>
  return %0, %1 : tensor<4x2xbf16>, tensor<4x2xf32>
}
