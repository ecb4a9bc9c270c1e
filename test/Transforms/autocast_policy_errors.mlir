// Bad policies are refused with a message naming the file and the reason.
// RUN: not amp-opt %s --amp-autocast="policy=%S/Inputs/unknown_op.yaml" 2>&1 | FileCheck %s --check-prefix=UNKNOWN
// UNKNOWN: error: {{.*}}unknown_op.yaml: op rule: unknown op 'amp.convolution' (expected an amp op such as amp.matmul)
// RUN: not amp-opt %s --amp-autocast="policy=%S/Inputs/contradiction.yaml" 2>&1 | FileCheck %s --check-prefix=CONTRA
// CONTRA: error: {{.*}}contradiction.yaml: node rules for '/fc*' contradict each other (f32 vs low)
// RUN: not amp-opt %s --amp-autocast="policy=%S/Inputs/bad_precision.yaml" 2>&1 | FileCheck %s --check-prefix=PRECISION
// PRECISION: error: {{.*}}bad_precision.yaml: op rule 'amp.matmul': unknown precision 'fp8' (expected low, f32 or follow)
// RUN: not amp-opt %s --amp-autocast="policy=%S/Inputs/malformed.yaml" 2>&1 | FileCheck %s --check-prefix=MALFORMED
// MALFORMED: error: {{.*}}malformed.yaml: malformed policy: line {{[0-9]+}}, column {{[0-9]+}}:
// RUN: not amp-opt %s --amp-autocast="policy=%S/Inputs/unknown_key.yaml" 2>&1 | FileCheck %s --check-prefix=KEY
// KEY: error: {{.*}}unknown_key.yaml: malformed policy: line 2, column 5: missing required key 'precision'
// RUN: not amp-opt %s --amp-autocast="policy=%S/Inputs/optimizer.yaml" 2>&1 | FileCheck %s --check-prefix=MASTER
// MASTER: error: {{.*}}optimizer.yaml: op rule 'amp.adamw_update': its precision is fixed (f32 by definition: losses, loss scaling, optimizer updates and FP32 master weights); no policy can change it
// Regression: rules for loss-scale state (and every op whose f32 types are
// part of its definition) made invalid IR after autocast; they are refused
// when the policy loads, naming the rule.
// RUN: not amp-opt %s --amp-autocast="ops=amp.update_loss_scale=low" 2>&1 | FileCheck %s --check-prefix=FIXED
// FIXED: error: op rule 'amp.update_loss_scale': its precision is fixed
// RUN: not amp-opt %s --amp-autocast="ops=amp.softmax_cross_entropy=low" 2>&1 | FileCheck %s --check-prefix=LOSS
// LOSS: error: op rule 'amp.softmax_cross_entropy': its precision is fixed
// RUN: not amp-opt %s --amp-autocast="policy=%S/Inputs/missing.yaml" 2>&1 | FileCheck %s --check-prefix=MISSING
// MISSING: error: {{.*}}missing.yaml: cannot read: No such file or directory
// RUN: not amp-opt %s --amp-autocast="policy=%S/Inputs/policy.json ops=amp.matmul=low" 2>&1 | FileCheck %s --check-prefix=INLINE
// INLINE: error: op rules for 'amp.matmul' contradict each other (f32 vs low)
// RUN: not amp-opt %s --amp-autocast="ops=matmul" 2>&1 | FileCheck %s --check-prefix=SYNTAX
// SYNTAX: error: op rule 'matmul' is not PATTERN=PRECISION
// RUN: not amp-opt %s --amp-autocast="precision=int8" 2>&1 | FileCheck %s --check-prefix=TYPE
// TYPE: error: amp-autocast: precision must be bf16, fp16 or fp32, not 'int8'

func.func @model(%x: tensor<4x3xf32> {amp.input = "x"}) -> tensor<4x3xf32> {
  %0 = amp.relu %x : tensor<4x3xf32>
  return %0 : tensor<4x3xf32>
}
