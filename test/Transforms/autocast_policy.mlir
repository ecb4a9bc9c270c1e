// Overrides: per-node rules (globs over ONNX node names), per-op-type rules,
// policy files in YAML and JSON, and the same controls as inline options.
// RUN: amp-opt %s --amp-autocast="precision=bf16 nodes=/head/*=f32" | FileCheck %s --check-prefix=NODE
// RUN: amp-opt %s --amp-autocast="precision=bf16 ops=amp.relu=f32" | FileCheck %s --check-prefix=OP
// RUN: amp-opt %s --amp-autocast="policy=%S/Inputs/policy.yaml" | FileCheck %s --check-prefix=YAML
// RUN: amp-opt %s --amp-autocast="policy=%S/Inputs/policy.json" | FileCheck %s --check-prefix=JSON
// RUN: amp-opt %s --amp-autocast="policy=%S/Inputs/policy.json precision=fp16 ops=amp.relu=f32" | FileCheck %s --check-prefix=MERGED

func.func @model(%x: tensor<4x3xf32> {amp.input = "x"}, %w: tensor<3x3xf32> {amp.param = "w"},
                 %h: tensor<2x3xf32> {amp.param = "h"}) -> tensor<4x2xf32> {
  %0 = amp.matmul %x, %w : tensor<4x3xf32>, tensor<3x3xf32> -> tensor<4x3xf32> loc("/body/MatMul")
  %1 = amp.relu %0 : tensor<4x3xf32> loc("/body/Relu")
  %2 = amp.matmul %1, %h {transpose_rhs} : tensor<4x3xf32>, tensor<2x3xf32> -> tensor<4x2xf32> loc("/head/Gemm")
  %3 = amp.relu %2 : tensor<4x2xf32> loc("/head/Relu")
  return %3 : tensor<4x2xf32>
}

// The body GEMM stays bf16; everything leading into the f32 head stays f32.
// NODE: amp.matmul {{.*}}: tensor<4x3xbf16>, tensor<3x3xbf16> -> tensor<4x3xf32>
// NODE: %[[R:.*]] = amp.relu {{.*}}leads into FP32-only ops -> f32"} : tensor<4x3xf32>
// NODE: amp.matmul %[[R]], %arg2 {amp.rule = "node rule '/head/*': inline node rule -> f32"{{.*}}: tensor<4x3xf32>, tensor<2x3xf32> -> tensor<4x2xf32>

// OP: %[[MM:.*]] = amp.matmul {{.*}} -> tensor<4x3xf32>
// OP: amp.relu %[[MM]] {amp.rule = "op rule 'amp.relu': inline op rule -> f32"} : tensor<4x3xf32>

// The file's default (fp16) applies when the pass option gives none.
// YAML: amp.matmul {{.*}}: tensor<4x3xf16>, tensor<3x3xf16> -> tensor<4x3xf32>
// YAML: amp.relu {{.*}}"op rule 'amp.relu': relu kept wide for this test{{.*}}: tensor<4x3xf32>
// YAML: amp.matmul {{.*}}"node rule '/head/*': the classifier head is sensitive -> f32"{{.*}}: tensor<4x3xf32>, tensor<2x3xf32> -> tensor<4x2xf32>

// JSON-NOT: amp.cast
// JSON: amp.matmul {{.*}}"op rule 'amp.matmul': exact GEMMs for a numerics study -> f32"{{.*}}: tensor<4x3xf32>, tensor<3x3xf32> -> tensor<4x3xf32>

// Inline rules add to the file's; the explicit precision option wins.
// MERGED: amp.matmul {{.*}}"op rule 'amp.matmul': exact GEMMs{{.*}}: tensor<4x3xf32>, tensor<3x3xf32> -> tensor<4x3xf32>
// MERGED: amp.relu {{.*}}"op rule 'amp.relu': inline op rule -> f32"} : tensor<4x3xf32>
// MERGED-NOT: bf16
