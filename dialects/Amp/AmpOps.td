//===- AmpOps.td - amp dialect operations ------------------*- tablegen -*-===//
//
// Forward ops (imported from ONNX), gradient helper ops (added by autodiff),
// precision ops and optimizer updates. Shape rules live in AmpShapes.cpp and
// are shared by verifiers and shape inference; gradient rules live in
// AmpGradients.cpp behind GradientOpInterface.
//
//===----------------------------------------------------------------------===//

#ifndef AMP_OPS_TD
#define AMP_OPS_TD

include "AmpBase.td"
include "AmpInterfaces.td"
include "mlir/Interfaces/SideEffectInterfaces.td"
include "mlir/Interfaces/InferTypeOpInterface.td"
include "mlir/Interfaces/ViewLikeInterface.td"
include "mlir/IR/BuiltinAttributeInterfaces.td"

/// Every amp op; Amp_Op below adds Pure, which all but the collectives are.
class Amp_OpBase<string mnemonic, list<Trait> traits = []>
    : Op<Amp_Dialect, mnemonic, traits> {
  // Precision facts, the one place they are stated. Autocast reads them
  // through Amp_PrecisionOpInterface (listed in the op's traits):
  // `precision` is "Low" (compute-bound: low operands, FP32 accumulation) or
  // "FP32" (numerically sensitive), empty for ops that follow their inputs
  // (the interface's default); `precisionReason` is shown in reports;
  // `readsLowPrecision`: an FP32 op widens low-precision inputs itself;
  // `widensResult`: a low op can write its FP32 accumulator as the result.
  // `bf16EmulatedOn`/`f16EmulatedOn`: the backends (space separated: cpu,
  // cpu-bf16, cuda) whose kernels take that type only by emulation.
  // `f32Operands`/`f32Results`: indices ("1, 2") of operands and results
  // that are f32 by definition (statistics, running averages) whatever the
  // op's class: autocast neither casts nor counts them.
  string precision = "";
  string precisionReason = "";
  bit readsLowPrecision = 0;
  bit widensResult = 0;
  string bf16EmulatedOn = "";
  string f16EmulatedOn = "";
  string f32Operands = "";
  string f32Results = "";
  let extraClassDeclaration =
      !if(!empty(precision), "",
          "::mlir::amp::PrecisionClass getPrecisionClass() {\n"
          "  return ::mlir::amp::PrecisionClass::" # precision # ";\n}\n"
          "::llvm::StringRef getPrecisionReason() { return \"" # precisionReason # "\"; }\n")
      # !if(readsLowPrecision, "bool acceptsLowPrecisionInputs() { return true; }\n", "")
      # !if(widensResult, "bool canWidenResult() { return true; }\n", "")
      # !if(!and(!empty(bf16EmulatedOn), !empty(f16EmulatedOn)), "",
          "bool emulatesOn(::mlir::Type element, ::llvm::StringRef backend) {\n"
          "  return ::mlir::amp::listsBackend(element.isBF16() ? \"" # bf16EmulatedOn # "\""
          " : element.isF16() ? \"" # f16EmulatedOn # "\" : \"\", backend);\n}\n")
      # !if(!empty(f32Operands), "",
          "bool isF32Operand(unsigned index) {\n"
          "  static constexpr unsigned kF32[] = {" # f32Operands # "};\n"
          "  return ::llvm::is_contained(kF32, index);\n}\n")
      # !if(!empty(f32Results), "",
          "bool isF32Result(unsigned index) {\n"
          "  static constexpr unsigned kF32[] = {" # f32Results # "};\n"
          "  return ::llvm::is_contained(kF32, index);\n}\n");
}

class Amp_Op<string mnemonic, list<Trait> traits = []>
    : Amp_OpBase<mnemonic, !listconcat([Pure], traits)>;



/// Ops whose f32 operand and result types are part of their definition
/// (losses, loss-scale state and gradient checks, optimizer updates and
/// counters): autocast leaves them alone and precision policies cannot
/// override them (a rule naming one is refused when the policy loads).
def Amp_FixedPrecision : NativeOpTrait<"FixedPrecision"> {
  let cppNamespace = "::mlir::amp";
}

/// Ops whose runtime kernels (CPU and CUDA) read and write f32 floats only:
/// amp-legalize-precision widens their low-precision inputs and computes a
/// low result in f32, rounded once after the op. A plan runs on either
/// backend, so this is what both can run.
def Amp_F32KernelsOnly : NativeOpTrait<"F32KernelsOnly"> {
  let cppNamespace = "::mlir::amp";
}

/// Ops whose runtime kernels (CPU and CUDA) read bf16/f16/f32 inputs,
/// widening them as they load (exact), but write f32 results only:
/// amp-legalize-precision leaves their inputs alone (no cast kernel and no
/// f32 copy in memory) and computes a low result in f32, rounded once after
/// the op.
def Amp_F32ResultKernels : NativeOpTrait<"F32ResultKernels"> {
  let cppNamespace = "::mlir::amp";
}

/// Elementwise ops the runtime can run as steps of one fused_elementwise
/// kernel (FusedElementwise.h has each one's per-element math): the plan's
/// fusion groups chains of them.
def Amp_FusableElementwise : NativeOpTrait<"FusableElementwise"> {
  let cppNamespace = "::mlir::amp";
}

/// Loss-scaling roles, read by amp-check-gradient-scaling: ops whose
/// results are free of the loss scale even when their operands carry it
/// (unscale, the loss-scale update), and ops that must read unscaled
/// gradients (the norm and clipping factor; optimizer updates say so through
/// OptimizerUpdateOpInterface's gradient).
def Amp_RemovesLossScale : NativeOpTrait<"RemovesLossScale"> {
  let cppNamespace = "::mlir::amp";
}
def Amp_ReadsUnscaledGradients : NativeOpTrait<"ReadsUnscaledGradients"> {
  let cppNamespace = "::mlir::amp";
}

/// Ops whose result shape follows from their operands: the batch-size pass
/// re-runs this inference after it fixes a dynamic batch dimension.
class Amp_ShapedOp<string mnemonic, list<Trait> traits = []>
    : Amp_Op<mnemonic, !listconcat([InferShapedTypeOpAdaptor], traits)> {
  let hasVerifier = 1;
}

//===----------------------------------------------------------------------===//
// ConstantOp
//===----------------------------------------------------------------------===//

def Amp_ConstantOp : Amp_Op<"constant",
    [ConstantLike, Amp_PrecisionOpInterface, AllTypesMatch<["value", "output"]>]> {
  let summary = "a constant tensor";
  let description = [{
    A tensor known at compile time (ONNX Constant nodes and non-trainable
    initializers).

    Example:
    ```mlir
    %c = amp.constant dense<1.0> : tensor<2xf32>
    ```
  }];
  let arguments = (ins ElementsAttr:$value);
  let results = (outs AnyRankedTensor:$output);
  let assemblyFormat = "attr-dict $value";
  let hasFolder = 1;
}

//===----------------------------------------------------------------------===//
// MatmulOp
//===----------------------------------------------------------------------===//

def Amp_MatmulOp : Amp_ShapedOp<"matmul",
    [DeclareOpInterfaceMethods<Amp_GradientOpInterface>, Amp_PrecisionOpInterface,
     DeclareOpInterfaceMethods<Amp_ArithmeticOpInterface>]> {
  let precision = "Low";
  let precisionReason = "compute-bound GEMM: low-precision operands, FP32 accumulation";
  let widensResult = 1;
  // oneDNN 2.6 runs BF16 GEMMs natively with AVX-512 BF16 or AMX and FP16
  // with AVX-512 FP16 only; the CPU backend emulates the rest exactly.
  let bf16EmulatedOn = "cpu";
  let f16EmulatedOn = "cpu cpu-bf16";
  let summary = "matrix product with transpose flags, batched over leading dims";
  let description = [{
    `result = op(lhs) x op(rhs)` where `op` transposes the last two dims when
    the flag is set. Operands `[batch..., rows, cols]` have one rank and the
    same batch dims (the importer broadcasts them first); each batch index
    is one GEMM. Operands share an element type; the result may be wider
    (bf16 operands, f32 result means FP32 accumulation and output).

    Example:
    ```mlir
    %y = amp.matmul %x, %w {transpose_rhs} : tensor<8x784xf32>, tensor<512x784xf32> -> tensor<8x512xf32>
    ```
  }];
  let arguments = (ins Amp_FloatTensor:$lhs, Amp_FloatTensor:$rhs,
                       UnitAttr:$transpose_lhs, UnitAttr:$transpose_rhs);
  let results = (outs Amp_FloatTensor:$result);
  let assemblyFormat = [{
    $lhs `,` $rhs attr-dict `:` type($lhs) `,` type($rhs) `->` type($result)
  }];
}

def Amp_ConvOp : Amp_ShapedOp<"conv", [Amp_PrecisionOpInterface,
    DeclareOpInterfaceMethods<Amp_GradientOpInterface>,
    DeclareOpInterfaceMethods<Amp_ArithmeticOpInterface>]> {
  let precision = "Low";
  let precisionReason = "compute-bound convolution: low-precision operands, FP32 accumulation";
  let widensResult = 1;
  // oneDNN 2.6 as for GEMMs: BF16 native with AVX-512 BF16 or AMX.
  let bf16EmulatedOn = "cpu";
  let f16EmulatedOn = "cpu cpu-bf16";
  let summary = "N-d convolution (cross-correlation) with strides, pads, dilations and groups";
  let description = [{
    Input `[N, C, spatial...]`, filter `[M, C / group, kernel...]`, result
    `[N, M, out...]` with `out = (in + pad_begin + pad_end - dilation *
    (kernel - 1) - 1) / stride + 1` (rounded down), as ONNX Conv and
    torch.nn.functional.conv2d compute it. `pads` lists the begin pads of
    every spatial dim, then the end pads. Operands share an element type;
    the result may be f32 (FP32 accumulation written out). A bias is a
    separate broadcast add.

    Example:
    ```mlir
    %y = amp.conv %x, %w {strides = array<i64: 2, 2>, pads = array<i64: 1, 1, 1, 1>,
                          dilations = array<i64: 1, 1>}
        : tensor<8x3x32x32xbf16>, tensor<16x3x3x3xbf16> -> tensor<8x16x16x16xbf16>
    ```
  }];
  let arguments = (ins Amp_FloatTensor:$input, Amp_FloatTensor:$filter,
                       DenseI64ArrayAttr:$strides, DenseI64ArrayAttr:$pads,
                       DenseI64ArrayAttr:$dilations, DefaultValuedAttr<I64Attr, "1">:$group);
  let results = (outs Amp_FloatTensor:$result);
  let assemblyFormat = [{
    $input `,` $filter attr-dict `:` type($input) `,` type($filter) `->` type($result)
  }];
}

/// A convolution's gradient: the same geometry, its result type given (the
/// forward's input or filter type; the output size rounds down, so it does
/// not follow from the gradient's shape), checked against the forward rule.
class Amp_ConvGradientOp<string mnemonic, string summaryText>
    : Amp_Op<mnemonic, [Amp_PrecisionOpInterface,
                        DeclareOpInterfaceMethods<Amp_ArithmeticOpInterface>]> {
  let precision = "Low";
  let precisionReason = "compute-bound convolution gradient: low-precision operands, FP32 accumulation";
  let widensResult = 1;
  let bf16EmulatedOn = "cpu";
  let f16EmulatedOn = "cpu cpu-bf16";
  let hasVerifier = 1;
  let summary = summaryText;
  let arguments = !con((ins Amp_FloatTensor:$first, Amp_FloatTensor:$second),
                       (ins DenseI64ArrayAttr:$strides, DenseI64ArrayAttr:$pads,
                            DenseI64ArrayAttr:$dilations, DefaultValuedAttr<I64Attr, "1">:$group));
  let results = (outs Amp_FloatTensor:$result);
  let assemblyFormat = [{
    $first `,` $second attr-dict `:` type($first) `,` type($second) `->` type($result)
  }];
}

def Amp_ConvBackwardDataOp : Amp_ConvGradientOp<"conv_backward_data",
    "gradient of a convolution with respect to its input: (grad, filter) -> input type"> {
  let description = [{
    `first` is the gradient of the convolution's result, `second` its filter.

    Example:
    ```mlir
    %dx = amp.conv_backward_data %dy, %w {strides = array<i64: 1, 1>, pads = array<i64: 1, 1, 1, 1>,
                                         dilations = array<i64: 1, 1>}
        : tensor<8x16x32x32xbf16>, tensor<16x3x3x3xbf16> -> tensor<8x3x32x32xbf16>
    ```
  }];
}

def Amp_ConvBackwardFilterOp : Amp_ConvGradientOp<"conv_backward_filter",
    "gradient of a convolution with respect to its filter: (input, grad) -> filter type"> {
  let description = [{
    `first` is the convolution's input, `second` the gradient of its result.

    Example:
    ```mlir
    %dw = amp.conv_backward_filter %x, %dy {strides = array<i64: 1, 1>, pads = array<i64: 1, 1, 1, 1>,
                                           dilations = array<i64: 1, 1>}
        : tensor<8x3x32x32xbf16>, tensor<8x16x32x32xbf16> -> tensor<16x3x3x3xf32>
    ```
  }];
}

def Amp_MaxPoolOp : Amp_ShapedOp<"max_pool", [Amp_PrecisionOpInterface,
    DeclareOpInterfaceMethods<Amp_GradientOpInterface>]> {
  let summary = "max pooling; also returns where each maximum came from";
  let description = [{
    Windows of `kernel` over the spatial dims of `[N, C, spatial...]`, with
    strides, begin/end pads (padding never wins) and dilations; the result
    size rounds down, or up with `ceil_mode` (ONNX's rule). `indices` holds,
    for every result element, the flat index of its maximum within its
    `[spatial...]` plane of the input; the gradient scatters through it. A
    NaN in a window is the window's maximum, as in PyTorch. Follows its
    input's precision (a maximum is exact in any type).

    Example:
    ```mlir
    %y, %i = amp.max_pool %x {kernel = array<i64: 2, 2>, strides = array<i64: 2, 2>,
                              pads = array<i64: 0, 0, 0, 0>, dilations = array<i64: 1, 1>}
        : tensor<8x6x28x28xbf16> -> tensor<8x6x14x14xbf16>, tensor<8x6x14x14xi64>
    ```
  }];
  let arguments = (ins Amp_FloatTensor:$input, DenseI64ArrayAttr:$kernel,
                       DenseI64ArrayAttr:$strides, DenseI64ArrayAttr:$pads,
                       DenseI64ArrayAttr:$dilations, UnitAttr:$ceil_mode);
  let results = (outs Amp_FloatTensor:$result, Amp_LabelTensor:$indices);
  let assemblyFormat = [{
    $input attr-dict `:` type($input) `->` type($result) `,` type($indices)
  }];
}

def Amp_AvgPoolOp : Amp_ShapedOp<"avg_pool", [Amp_PrecisionOpInterface,
    DeclareOpInterfaceMethods<Amp_GradientOpInterface>]> {
  let summary = "average pooling";
  let description = [{
    Windows of `kernel` over the spatial dims of `[N, C, spatial...]` with
    strides and begin/end pads; the result size rounds down, or up with
    `ceil_mode`. Each result is the window's sum over the input positions
    it covers divided by their count, or with `count_include_pad` by the
    count of positions inside the padded input (ONNX's and PyTorch's rule).
    Summed in float, rounded once; follows its input's precision.

    Example:
    ```mlir
    %y = amp.avg_pool %x {kernel = array<i64: 2, 2>, strides = array<i64: 2, 2>,
                          pads = array<i64: 0, 0, 0, 0>}
        : tensor<8x6x28x28xbf16> -> tensor<8x6x14x14xbf16>
    ```
  }];
  let arguments = (ins Amp_FloatTensor:$input, DenseI64ArrayAttr:$kernel,
                       DenseI64ArrayAttr:$strides, DenseI64ArrayAttr:$pads,
                       UnitAttr:$ceil_mode, UnitAttr:$count_include_pad);
  let results = (outs Amp_FloatTensor:$result);
  let assemblyFormat = "$input attr-dict `:` type($input) `->` type($result)";
}

def Amp_AvgPoolGradOp : Amp_Op<"avg_pool_grad", [Amp_PrecisionOpInterface]> {
  let hasVerifier = 1;
  let summary = "gradient of avg_pool: each gradient spread evenly over its window";
  let description = [{
    The same window attributes as the avg_pool; `result` has its input's
    shape (given: the pooled size rounds). Sums in FP32, rounds once.

    Example:
    ```mlir
    %dx = amp.avg_pool_grad %dy {kernel = array<i64: 2, 2>, strides = array<i64: 2, 2>,
                                 pads = array<i64: 0, 0, 0, 0>}
        : tensor<8x6x14x14xf32> -> tensor<8x6x28x28xf32>
    ```
  }];
  let arguments = (ins Amp_FloatTensor:$grad, DenseI64ArrayAttr:$kernel,
                       DenseI64ArrayAttr:$strides, DenseI64ArrayAttr:$pads,
                       UnitAttr:$ceil_mode, UnitAttr:$count_include_pad);
  let results = (outs Amp_FloatTensor:$result);
  let assemblyFormat = "$grad attr-dict `:` type($grad) `->` type($result)";
}

def Amp_MaxPoolGradOp : Amp_Op<"max_pool_grad", [Amp_PrecisionOpInterface]> {
  let hasVerifier = 1;
  let summary = "gradient of max_pool: each gradient added to the input its maximum came from";
  let description = [{
    `result` has the pooled input's shape and `grad`'s element type; it is
    zero except where `indices` (from the max_pool) point, which receive the
    sum of their gradients (computed in FP32, rounded once).

    Example:
    ```mlir
    %dx = amp.max_pool_grad %dy, %i : tensor<8x6x14x14xf32>, tensor<8x6x14x14xi64> -> tensor<8x6x28x28xf32>
    ```
  }];
  let arguments = (ins Amp_FloatTensor:$grad, Amp_LabelTensor:$indices);
  let results = (outs Amp_FloatTensor:$result);
  let assemblyFormat = [{
    $grad `,` $indices attr-dict `:` type($grad) `,` type($indices) `->` type($result)
  }];
}

//===----------------------------------------------------------------------===//
// Data movement: pad, slice, concat
//===----------------------------------------------------------------------===//

def Amp_PadOp : Amp_ShapedOp<"pad", [Amp_PrecisionOpInterface,
    DeclareOpInterfaceMethods<Amp_GradientOpInterface>]> {
  let summary = "pads every dim with a constant";
  let description = [{
    `pads` lists the begin pads of every dim, then the end pads (ONNX Pad's
    order, constant mode); the new elements hold `value` (in the result's
    type). The gradient is the slice of the result's gradient.

    Example:
    ```mlir
    %y = amp.pad %x {pads = array<i64: 0, 0, 1, 2, 0, 0, 1, 2>, value = 0.0 : f32}
        : tensor<8x3x28x28xf32> -> tensor<8x3x30x32xf32>
    ```
  }];
  let arguments = (ins Amp_FloatTensor:$input, DenseI64ArrayAttr:$pads,
                       DefaultValuedAttr<F32Attr, "0.0f">:$value);
  let results = (outs Amp_FloatTensor:$result);
  let assemblyFormat = "$input attr-dict `:` type($input) `->` type($result)";
}

def Amp_SliceOp : Amp_ShapedOp<"slice", [Amp_PrecisionOpInterface,
    DeclareOpInterfaceMethods<Amp_GradientOpInterface>]> {
  let summary = "a static box of the input: `sizes` elements from `offsets`";
  let description = [{
    `result[i] = input[i + offsets]`, of shape `sizes`. The gradient pads
    the result's gradient with zeros back to the input's shape.

    Example:
    ```mlir
    %y = amp.slice %x {offsets = array<i64: 0, 2>, sizes = array<i64: 8, 3>}
        : tensor<8x6xf32> -> tensor<8x3xf32>
    ```
  }];
  let arguments = (ins Amp_FloatTensor:$input, DenseI64ArrayAttr:$offsets,
                       DenseI64ArrayAttr:$sizes);
  let results = (outs Amp_FloatTensor:$result);
  let assemblyFormat = "$input attr-dict `:` type($input) `->` type($result)";
}

def Amp_ConcatOp : Amp_ShapedOp<"concat", [Amp_PrecisionOpInterface,
    DeclareOpInterfaceMethods<Amp_GradientOpInterface>]> {
  let summary = "joins tensors along `axis`";
  let description = [{
    The inputs share their type but for the size of `axis` (ONNX Concat;
    a negative axis counts from the end). Each input's gradient is its
    slice of the result's gradient.

    Example:
    ```mlir
    %y = amp.concat %a, %b {axis = 1 : i64} : (tensor<8x3xf32>, tensor<8x5xf32>) -> tensor<8x8xf32>
    ```
  }];
  let arguments = (ins Variadic<Amp_FloatTensor>:$inputs, I64Attr:$axis);
  let results = (outs Amp_FloatTensor:$result);
  let assemblyFormat = "$inputs attr-dict `:` functional-type($inputs, $result)";
}

def Amp_TransposeOp : Amp_ShapedOp<"transpose", [Amp_PrecisionOpInterface,
    DeclareOpInterfaceMethods<Amp_GradientOpInterface>]> {
  let summary = "permutes the dims of a tensor";
  let description = [{
    Result dim `d` is input dim `permutation[d]` (ONNX Transpose,
    torch.permute). Materialised only where no GEMM can take it as a
    transpose flag; its gradient is the inverse permutation. Follows its
    input's precision (a copy).

    Example:
    ```mlir
    %y = amp.transpose %x {permutation = array<i64: 0, 2, 1, 3>}
        : tensor<8x64x4x32xbf16> -> tensor<8x4x64x32xbf16>
    ```
  }];
  let arguments = (ins Amp_FloatTensor:$input, DenseI64ArrayAttr:$permutation);
  let results = (outs Amp_FloatTensor:$result);
  let assemblyFormat = "$input attr-dict `:` type($input) `->` type($result)";
}

def Amp_GatherOp : Amp_ShapedOp<"gather", [Amp_PrecisionOpInterface,
    DeclareOpInterfaceMethods<Amp_GradientOpInterface>]> {
  let summary = "slices of `input` along `axis` picked by `indices` (embedding lookup)";
  let description = [{
    `result[o..., i..., r...] = input[o..., indices[i...], r...]` where `o`
    indexes the dims before `axis` and `r` those after (ONNX Gather;
    torch.nn.Embedding is axis 0). Negative indices count from the end; one
    outside `[-size, size)` is an error of the run naming the node. Follows
    the table's precision, as PyTorch autocast: an FP32 table is gathered
    in FP32, and only the rows read are cast by the ops that follow.

    Example:
    ```mlir
    %e = amp.gather %table, %tokens {axis = 0 : i64} : (tensor<256x128xf32>, tensor<8x64xi64>) -> tensor<8x64x128xf32>
    ```
  }];
  let arguments = (ins Amp_FloatTensor:$input, Amp_IndexTensor:$indices, I64Attr:$axis);
  let results = (outs Amp_FloatTensor:$result);
  let assemblyFormat = "$input `,` $indices attr-dict `:` functional-type(operands, results)";
}

def Amp_GatherGradOp : Amp_Op<"gather_grad", [Amp_PrecisionOpInterface, Amp_F32KernelsOnly]> {
  let precision = "FP32";
  let precisionReason = "gather gradient: a scatter-add, accumulated in FP32 (repeated indices)";
  let readsLowPrecision = 1;
  let hasVerifier = 1;
  let summary = "gradient of gather: each gradient slice added to the row it was read from";
  let description = [{
    The result has the gathered input's shape (given) and is zero except at
    the picked rows, which receive the sum of their gradients: a row picked
    twice (a repeated token) gets both, summed in FP32.

    Example:
    ```mlir
    %dt = amp.gather_grad %de, %tokens {axis = 0 : i64} : (tensor<8x64x128xf32>, tensor<8x64xi64>) -> tensor<256x128xf32>
    ```
  }];
  let arguments = (ins Amp_FloatTensor:$grad, Amp_IndexTensor:$indices, I64Attr:$axis);
  let results = (outs Amp_F32Tensor:$result);
  let assemblyFormat = "$grad `,` $indices attr-dict `:` functional-type(operands, results)";
}

//===----------------------------------------------------------------------===//
// Dropout
//===----------------------------------------------------------------------===//

def Amp_DropoutOp : Amp_ShapedOp<"dropout", [Amp_PrecisionOpInterface,
    AllTypesMatch<["input", "result"]>,
    DeclareOpInterfaceMethods<Amp_GradientOpInterface>,
    DeclareOpInterfaceMethods<Amp_TrainingModeOpInterface>]> {
  let summary = "training-mode dropout with a counter-based mask";
  let description = [{
    `result = input * keep / (1 - ratio)`, where element i is kept when a
    hash of (`seed`, `counter`, i) clears `ratio` (KernelMath.h's
    dropoutKeeps): the mask depends on nothing else, so every backend, the
    gradient (the same dropout of the result's gradient) and a resumed run
    draw it alike. `counter` is step state advanced once per step. In
    evaluation it is the identity. Follows its input's precision.

    Example:
    ```mlir
    %y = amp.dropout %x, %step {ratio = 0.5 : f32, seed = 7 : i64} : tensor<8x512xbf16>, tensor<i64>
    ```
  }];
  let arguments = (ins Amp_FloatTensor:$input, Amp_StepTensor:$counter, F32Attr:$ratio,
                       I64Attr:$seed);
  let results = (outs Amp_FloatTensor:$result);
  let assemblyFormat = "$input `,` $counter attr-dict `:` type($input) `,` type($counter)";
}

//===----------------------------------------------------------------------===//
// Batch normalization
//===----------------------------------------------------------------------===//

/// Precision facts of the batch-norm ops: the statistics, scale and shift
/// and running averages are f32; the activation follows its producer.
class Amp_BatchNormBase<string mnemonic, list<Trait> traits = []>
    : Amp_ShapedOp<mnemonic, !listconcat([Amp_PrecisionOpInterface], traits)> {
  let precision = "Follow";
  let precisionReason = "batch norm: FP32 statistics, scale/shift and running averages; "
                        "reads and writes its input's type";
  // The CPU backend computes in f32 from low-precision activations (f16
  // through f32 staging) and rounds once; so does the CUDA backend, whose
  // loads and stores convert per element (not listed: no staging copy).
  let bf16EmulatedOn = "cpu cpu-bf16";
  let f16EmulatedOn = "cpu cpu-bf16";
}

def Amp_BatchNormOp : Amp_BatchNormBase<"batch_norm", [
    DeclareOpInterfaceMethods<Amp_GradientOpInterface>,
    DeclareOpInterfaceMethods<Amp_TrainingModeOpInterface>]> {
  let f32Operands = "1, 2, 3, 4";
  let f32Results = "1, 2, 3, 4";
  let summary = "batch normalization in training mode, updating the running averages";
  let description = [{
    Over `input` `[N, C, spatial...]`: per channel, the batch mean and the
    population variance (divided by the count, as ONNX specifies; PyTorch's
    running variance uses the unbiased one), `result = (input - mean) /
    sqrt(var + epsilon) * scale + bias`, and the running averages
    `new = running * momentum + batch * (1 - momentum)` (ONNX's momentum:
    PyTorch's 0.1 exports as 0.9). `saved_mean` and `saved_var` are the batch
    statistics, kept for the gradient. Statistics are computed in f32;
    `result` has the input's type. `amp-eval-mode` turns it into
    `batch_norm_inference` on the running averages.

    Example:
    ```mlir
    %y, %rm, %rv, %m, %v = amp.batch_norm %x, %s, %b, %mean, %var {epsilon = 1.0e-05 : f32, momentum = 0.9 : f32}
        : tensor<8x6x28x28xbf16>, tensor<6xf32>, tensor<6xf32>, tensor<6xf32>, tensor<6xf32>
        -> tensor<8x6x28x28xbf16>, tensor<6xf32>, tensor<6xf32>, tensor<6xf32>, tensor<6xf32>
    ```
  }];
  let arguments = (ins Amp_FloatTensor:$input, Amp_F32Tensor:$scale, Amp_F32Tensor:$bias,
                       Amp_F32Tensor:$running_mean, Amp_F32Tensor:$running_var,
                       F32Attr:$epsilon, F32Attr:$momentum);
  let results = (outs Amp_FloatTensor:$result, Amp_F32Tensor:$new_running_mean,
                      Amp_F32Tensor:$new_running_var, Amp_F32Tensor:$saved_mean,
                      Amp_F32Tensor:$saved_var);
  let assemblyFormat = [{
    $input `,` $scale `,` $bias `,` $running_mean `,` $running_var attr-dict `:`
    type($input) `,` type($scale) `,` type($bias) `,` type($running_mean) `,` type($running_var)
    `->` type(results)
  }];
}

def Amp_BatchNormInferenceOp : Amp_BatchNormBase<"batch_norm_inference", [
    DeclareOpInterfaceMethods<Amp_GradientOpInterface>]> {
  let f32Operands = "1, 2, 3, 4";
  let summary = "batch normalization with given statistics (evaluation)";
  let description = [{
    `result = (input - mean) / sqrt(var + epsilon) * scale + bias` per
    channel of `[N, C, spatial...]`, with the running averages (ONNX
    BatchNormalization with training_mode 0, and evaluation).

    Example:
    ```mlir
    %y = amp.batch_norm_inference %x, %s, %b, %mean, %var {epsilon = 1.0e-05 : f32}
        : tensor<8x6x28x28xf32>, tensor<6xf32>, tensor<6xf32>, tensor<6xf32>, tensor<6xf32>
        -> tensor<8x6x28x28xf32>
    ```
  }];
  let arguments = (ins Amp_FloatTensor:$input, Amp_F32Tensor:$scale, Amp_F32Tensor:$bias,
                       Amp_F32Tensor:$mean, Amp_F32Tensor:$var, F32Attr:$epsilon);
  let results = (outs Amp_FloatTensor:$result);
  let assemblyFormat = [{
    $input `,` $scale `,` $bias `,` $mean `,` $var attr-dict `:`
    type($input) `,` type($scale) `,` type($bias) `,` type($mean) `,` type($var)
    `->` type($result)
  }];
}

def Amp_BatchNormGradOp : Amp_BatchNormBase<"batch_norm_grad"> {
  let f32Operands = "2, 3, 4";
  let f32Results = "1, 2";
  let summary = "gradient of batch normalization: input, scale and bias gradients";
  let description = [{
    From the result's gradient `grad`, the forward's `input` and `scale` and
    the statistics it normalized with (`mean`, `var`): the batch's, whose
    own dependence on the input is part of the input gradient, or with
    `use_global_stats` given constants (batch_norm_inference). Sums in f32;
    `input_grad` has the input's type, the others are f32.

    Example:
    ```mlir
    %dx, %ds, %db = amp.batch_norm_grad %dy, %x, %s, %m, %v {epsilon = 1.0e-05 : f32}
        : tensor<8x6x28x28xf32>, tensor<8x6x28x28xf32>, tensor<6xf32>, tensor<6xf32>, tensor<6xf32>
        -> tensor<8x6x28x28xf32>, tensor<6xf32>, tensor<6xf32>
    ```
  }];
  let arguments = (ins Amp_FloatTensor:$grad, Amp_FloatTensor:$input, Amp_F32Tensor:$scale,
                       Amp_F32Tensor:$mean, Amp_F32Tensor:$var, F32Attr:$epsilon,
                       UnitAttr:$use_global_stats);
  let results = (outs Amp_FloatTensor:$input_grad, Amp_F32Tensor:$scale_grad,
                      Amp_F32Tensor:$bias_grad);
  let assemblyFormat = [{
    $grad `,` $input `,` $scale `,` $mean `,` $var attr-dict `:`
    type($grad) `,` type($input) `,` type($scale) `,` type($mean) `,` type($var)
    `->` type(results)
  }];
}

/// Layer normalization: statistics, scale and shift in FP32; the activation
/// keeps its type (as batch norm). PyTorch autocast returns an f32 result
/// instead; the GEMM that reads it rounds it to the low type anyway, so
/// writing the low type at once rounds the same values one copy earlier.
class Amp_LayerNormBase<string mnemonic, list<Trait> traits = []>
    : Amp_ShapedOp<mnemonic, !listconcat([Amp_PrecisionOpInterface], traits)> {
  let precision = "Follow";
  let precisionReason = "layer norm: FP32 statistics, scale and shift; "
                        "reads and writes its input's type";
}

def Amp_LayerNormOp : Amp_LayerNormBase<"layer_norm", [
    DeclareOpInterfaceMethods<Amp_GradientOpInterface>]> {
  let f32Operands = "1, 2";
  let f32Results = "1, 2";
  let summary = "layer normalization over the dims from `axis` on";
  let description = [{
    Each row (the dims before `axis` index the rows, the others are one
    row's values) is normalized: `result = (input - mean) * inv_std * scale
    + bias` with the row's mean, `inv_std = 1 / sqrt(var + epsilon)` and
    the population variance, as ONNX LayerNormalization (opset 17) and
    torch.nn.LayerNorm. `scale` and `bias` have the normalized dims' shape;
    `mean` and `inv_std` the input's shape with those dims 1 (ONNX's Mean
    and InvStdDev outputs), kept for the gradient. Statistics are
    computed in f32 (two passes, sums in double across lanes).

    Example:
    ```mlir
    %y, %m, %r = amp.layer_norm %x, %s, %b {axis = 2 : i64, epsilon = 1.0e-05 : f32}
        : tensor<8x64x128xbf16>, tensor<128xf32>, tensor<128xf32>
        -> tensor<8x64x128xbf16>, tensor<8x64x1xf32>, tensor<8x64x1xf32>
    ```
  }];
  let arguments = (ins Amp_FloatTensor:$input, Amp_F32Tensor:$scale, Amp_F32Tensor:$bias,
                       I64Attr:$axis, F32Attr:$epsilon);
  let results = (outs Amp_FloatTensor:$result, Amp_F32Tensor:$mean, Amp_F32Tensor:$inv_std);
  let assemblyFormat = [{
    $input `,` $scale `,` $bias attr-dict `:` type($input) `,` type($scale) `,` type($bias)
    `->` type(results)
  }];
}

def Amp_LayerNormGradOp : Amp_LayerNormBase<"layer_norm_grad"> {
  let f32Operands = "2, 3, 4";
  let f32Results = "1, 2";
  let summary = "gradient of layer normalization: input, scale and bias gradients";
  let description = [{
    From the result's gradient `grad`, the forward's `input` and `scale` and
    its saved `mean` and `inv_std`: with `xhat = (input - mean) * inv_std`
    and `g = grad * scale`, per row `input_grad = inv_std * (g - mean(g) -
    xhat * mean(g * xhat))`; over the rows `scale_grad = sum(grad * xhat)`
    and `bias_grad = sum(grad)`. Sums in f32 and double; `input_grad` has
    the input's type.

    Example:
    ```mlir
    %dx, %ds, %db = amp.layer_norm_grad %dy, %x, %s, %m, %r {axis = 2 : i64}
        : tensor<8x64x128xf32>, tensor<8x64x128xf32>, tensor<128xf32>, tensor<8x64x1xf32>,
          tensor<8x64x1xf32> -> tensor<8x64x128xf32>, tensor<128xf32>, tensor<128xf32>
    ```
  }];
  let arguments = (ins Amp_FloatTensor:$grad, Amp_FloatTensor:$input, Amp_F32Tensor:$scale,
                       Amp_F32Tensor:$mean, Amp_F32Tensor:$inv_std, I64Attr:$axis);
  let results = (outs Amp_FloatTensor:$input_grad, Amp_F32Tensor:$scale_grad,
                      Amp_F32Tensor:$bias_grad);
  let assemblyFormat = [{
    $grad `,` $input `,` $scale `,` $mean `,` $inv_std attr-dict `:`
    type($grad) `,` type($input) `,` type($scale) `,` type($mean) `,` type($inv_std)
    `->` type(results)
  }];
}

//===----------------------------------------------------------------------===//
// Elementwise ops
//===----------------------------------------------------------------------===//

class Amp_BroadcastBinaryOp<string mnemonic, string formula>
    : Amp_ShapedOp<mnemonic, [DeclareOpInterfaceMethods<Amp_GradientOpInterface>,
                              Amp_PrecisionOpInterface, Amp_FusableElementwise]> {
  let summary = "elementwise " # formula # " with numpy broadcasting";
  let description = [{
    Elementwise `}] # formula # [{` with numpy-style (ONNX multidirectional)
    broadcasting. Operands and result share an element type.

    Example:
    ```mlir
    %c = amp.}] # mnemonic # [{ %a, %b : (tensor<8x4xf32>, tensor<4xf32>) -> tensor<8x4xf32>
    ```
  }];
  let arguments = (ins Amp_FloatTensor:$lhs, Amp_FloatTensor:$rhs);
  let results = (outs Amp_FloatTensor:$result);
  let assemblyFormat = "$lhs `,` $rhs attr-dict `:` functional-type(operands, results)";
}

def Amp_AddOp : Amp_BroadcastBinaryOp<"add", "lhs + rhs"> {
  let hasCanonicalizer = 1; // sums of adjacent zero pads become a concat
}
def Amp_SubOp : Amp_BroadcastBinaryOp<"sub", "lhs - rhs">;
def Amp_MulOp : Amp_BroadcastBinaryOp<"mul", "lhs * rhs"> {
  let hasFolder = 1; // x * 1 is x
}
def Amp_DivOp : Amp_BroadcastBinaryOp<"div", "lhs / rhs">;
def Amp_MaximumOp : Amp_BroadcastBinaryOp<"maximum", "max(lhs, rhs) (a NaN operand wins)">;
def Amp_MinimumOp : Amp_BroadcastBinaryOp<"minimum", "min(lhs, rhs) (a NaN operand wins)">;

/// A 0/1 comparison with broadcasting: piecewise constant, so its gradient
/// is zero (its rule gives its operands none).
class Amp_BroadcastMaskOp<string mnemonic, string formula>
    : Amp_ShapedOp<mnemonic, [Amp_PrecisionOpInterface, Amp_FusableElementwise,
                              DeclareOpInterfaceMethods<Amp_GradientOpInterface>]> {
  let summary = formula # ", elementwise with numpy broadcasting";
  let description = [{
    Example:
    ```mlir
    %m = amp.}] # mnemonic # [{ %a, %b : (tensor<8x4xf32>, tensor<f32>) -> tensor<8x4xf32>
    ```
  }];
  let arguments = (ins Amp_FloatTensor:$lhs, Amp_FloatTensor:$rhs);
  let results = (outs Amp_FloatTensor:$result);
  let assemblyFormat = "$lhs `,` $rhs attr-dict `:` functional-type(operands, results)";
}

def Amp_GreaterEqualMaskOp : Amp_BroadcastMaskOp<"ge_mask", "1 where lhs >= rhs, else 0">;
def Amp_LessEqualMaskOp : Amp_BroadcastMaskOp<"le_mask", "1 where lhs <= rhs, else 0">;
// ONNX's Equal, Less and Greater at run time (the importer keeps a model's
// booleans as such 0/1 masks in its float type).
def Amp_EqualMaskOp : Amp_BroadcastMaskOp<"eq_mask", "1 where lhs == rhs, else 0">;
def Amp_LessMaskOp : Amp_BroadcastMaskOp<"lt_mask", "1 where lhs < rhs, else 0">;
def Amp_GreaterMaskOp : Amp_BroadcastMaskOp<"gt_mask", "1 where lhs > rhs, else 0">;

def Amp_MaskedOp : Amp_BroadcastBinaryOp<"masked",
    "lhs where the mask rhs is not 0, else 0 (no gradient to the mask)"> {
  let description = [{
    Elementwise `rhs != 0 ? lhs : 0` with numpy broadcasting: a masked-out
    inf or NaN gives 0, so ONNX Where(c, x, y) is
    `masked(x, c) + masked(y, eq_mask(c, 0))` even where the value not
    picked is -inf (an attention mask's fill). Its gradient reaches `lhs`
    only where the mask is not 0; the mask gets none.

    Example:
    ```mlir
    %c = amp.masked %a, %m : (tensor<8x4xf32>, tensor<8x1xf32>) -> tensor<8x4xf32>
    ```
  }];
}

/// Shape inference of an op whose result has its first operand's shape.
defvar Amp_ShapeOfFirstOperand = [{
  ::mlir::LogicalResult $cppClass::inferReturnTypeComponents(::mlir::MLIRContext *,
      ::std::optional<::mlir::Location>, Adaptor adaptor,
      ::llvm::SmallVectorImpl<::mlir::ShapedTypeComponents> &inferred) {
    return sameShapeComponents(adaptor.getOperands().take_front(), inferred);
  }
}];

/// An elementwise op of one operand, computed in float and rounded to its
/// type (the kernels are rows of runtime/include/amprt/ElementwiseKernels.def).
class Amp_UnaryOp<string mnemonic, list<Trait> traits = []>
    : Amp_ShapedOp<mnemonic, !listconcat([SameOperandsAndResultType, Amp_PrecisionOpInterface,
                                          Amp_FusableElementwise], traits)> {
  let hasVerifier = 0; // the type constraints say it all
  let arguments = (ins Amp_FloatTensor:$input);
  let results = (outs Amp_FloatTensor:$result);
  let assemblyFormat = "$input attr-dict `:` type($input)";
  let extraClassDefinition = Amp_ShapeOfFirstOperand;
}

def Amp_NegOp : Amp_UnaryOp<"neg", [DeclareOpInterfaceMethods<Amp_GradientOpInterface>]> {
  let summary = "elementwise negation";
  let description = [{
    Example:
    ```mlir
    %y = amp.neg %x : tensor<4xf32>
    ```
  }];
}

def Amp_ReluOp : Amp_UnaryOp<"relu", [DeclareOpInterfaceMethods<Amp_GradientOpInterface>]> {
  let summary = "rectified linear unit, max(x, 0)";
  let description = [{
    Example:
    ```mlir
    %y = amp.relu %x : tensor<8x512xf32>
    ```
  }];
}

/// The gradient of an activation: `grad` times its derivative, which reads
/// `input` (the activation's input or output, as its summary says).
class Amp_ActivationGradOp<string mnemonic, string formula>
    : Amp_ShapedOp<mnemonic, [SameOperandsAndResultType, Amp_PrecisionOpInterface,
                              Amp_FusableElementwise]> {
  let hasVerifier = 0; // the type constraints say it all
  let summary = formula;
  let description = [{
    Example:
    ```mlir
    %dx = amp.}] # mnemonic # [{ %dy, %x : tensor<8x512xf32>
    ```
  }];
  let arguments = (ins Amp_FloatTensor:$grad, Amp_FloatTensor:$input);
  let results = (outs Amp_FloatTensor:$result);
  let assemblyFormat = "$grad `,` $input attr-dict `:` type($grad)";
  let extraClassDefinition = Amp_ShapeOfFirstOperand;
}

def Amp_ReluGradOp : Amp_ActivationGradOp<"relu_grad",
    "gradient of relu: grad where x > 0, else 0 (x: the relu's input or output)">;

def Amp_TanhOp : Amp_UnaryOp<"tanh", [DeclareOpInterfaceMethods<Amp_GradientOpInterface>]> {
  let summary = "hyperbolic tangent, computed in float and rounded to its type";
  let description = [{
    Follows its input's precision, as in PyTorch autocast: its result lies
    in [-1, 1], which every type holds.

    Example:
    ```mlir
    %y = amp.tanh %x : tensor<8x16xbf16>
    ```
  }];
}
def Amp_TanhGradOp : Amp_ActivationGradOp<"tanh_grad",
    "gradient of tanh: grad * (1 - y * y) (y: the tanh's output)">;

def Amp_SigmoidOp : Amp_UnaryOp<"sigmoid", [DeclareOpInterfaceMethods<Amp_GradientOpInterface>]> {
  let summary = "logistic sigmoid 1 / (1 + exp(-x)), computed in float and rounded to its type";
  let description = [{
    Follows its input's precision, as in PyTorch autocast: its result lies
    in [0, 1], and the exp inside runs in float, so it cannot overflow.

    Example:
    ```mlir
    %y = amp.sigmoid %x : tensor<8x16xf16>
    ```
  }];
}
def Amp_SigmoidGradOp : Amp_ActivationGradOp<"sigmoid_grad",
    "gradient of sigmoid: grad * y * (1 - y) (y: the sigmoid's output)">;

def Amp_LeakyReluOp : Amp_UnaryOp<"leaky_relu", [DeclareOpInterfaceMethods<Amp_GradientOpInterface>]> {
  let summary = "x where x >= 0, alpha * x elsewhere";
  let description = [{
    Follows its input's precision (one product, rounded once).

    Example:
    ```mlir
    %y = amp.leaky_relu %x {alpha = 2.000000e-01 : f32} : tensor<8x16xf32>
    ```
  }];
  let arguments = (ins Amp_FloatTensor:$input, DefaultValuedAttr<F32Attr, "0.01f">:$alpha);
}
def Amp_LeakyReluGradOp : Amp_ActivationGradOp<"leaky_relu_grad",
    "gradient of leaky_relu: grad where x > 0, alpha * grad elsewhere (x: its input)"> {
  let arguments = (ins Amp_FloatTensor:$grad, Amp_FloatTensor:$input,
                       DefaultValuedAttr<F32Attr, "0.01f">:$alpha);
}

def Amp_SqrtOp : Amp_UnaryOp<"sqrt", [DeclareOpInterfaceMethods<Amp_GradientOpInterface>]> {
  let summary = "square root, computed in float and rounded to its type";
  let description = [{
    Follows its input's precision, as in PyTorch autocast: a square root
    halves the exponent, so it cannot overflow any type.

    Example:
    ```mlir
    %y = amp.sqrt %x : tensor<8x1xf32>
    ```
  }];
}
def Amp_SqrtGradOp : Amp_ActivationGradOp<"sqrt_grad",
    "gradient of sqrt: grad / (2 y) (y: the sqrt's output)">;

def Amp_ErfOp : Amp_UnaryOp<"erf", [DeclareOpInterfaceMethods<Amp_GradientOpInterface>]> {
  let summary = "error function, computed in float and rounded to its type";
  let description = [{
    Follows its input's precision: its result lies in [-1, 1].

    Example:
    ```mlir
    %y = amp.erf %x : tensor<8x16xbf16>
    ```
  }];
}
def Amp_ErfGradOp : Amp_ActivationGradOp<"erf_grad",
    "gradient of erf: grad * 2 / sqrt(pi) * exp(-x * x) (x: the erf's input)">;

def Amp_GeluOp : Amp_UnaryOp<"gelu", [DeclareOpInterfaceMethods<Amp_GradientOpInterface>]> {
  let summary = "Gaussian error linear unit, exact or with the tanh approximation";
  let description = [{
    `x * Phi(x)`: `0.5 x (1 + erf(x / sqrt(2)))`, or with `approximate_tanh`
    `0.5 x (1 + tanh(sqrt(2 / pi) (x + 0.044715 x^3)))`, as ONNX Gelu
    (opset 20) and torch.nn.functional.gelu define them. Computed in float
    and stored in its input's type (it follows, as in PyTorch autocast).

    Example:
    ```mlir
    %y = amp.gelu %x {approximate_tanh} : tensor<8x64xbf16>
    ```
  }];
  let arguments = (ins Amp_FloatTensor:$input, UnitAttr:$approximate_tanh);
}
def Amp_GeluGradOp : Amp_ActivationGradOp<"gelu_grad",
    "gradient of gelu: grad * gelu'(x) (x: the gelu's input)"> {
  let arguments = (ins Amp_FloatTensor:$grad, Amp_FloatTensor:$input,
                       UnitAttr:$approximate_tanh);
}

//===----------------------------------------------------------------------===//
// Numerically sensitive elementwise ops
//===----------------------------------------------------------------------===//

class Amp_SensitiveUnaryOp<string mnemonic, string formula>
    : Amp_ShapedOp<mnemonic, [SameOperandsAndResultShape, Amp_PrecisionOpInterface,
                              Amp_FusableElementwise,
                              DeclareOpInterfaceMethods<Amp_GradientOpInterface>]> {
  let precision = "FP32";
  let readsLowPrecision = 1;
  let summary = formula # ", computed in FP32";
  let description = [{
    Elementwise `}] # formula # [{`. Autocast keeps it FP32 (its result is
    f32; it may read low-precision input and widen it).

    Example:
    ```mlir
    %y = amp.}] # mnemonic # [{ %x : tensor<4xbf16> -> tensor<4xf32>
    ```
  }];
  let arguments = (ins Amp_FloatTensor:$input);
  let results = (outs Amp_FloatTensor:$result);
  let assemblyFormat = "$input attr-dict `:` type($input) `->` type($result)";
}

def Amp_ExpOp : Amp_SensitiveUnaryOp<"exp", "exp(x)"> {
  let precisionReason = "exp: overflows low precision; FP32";
}
def Amp_LogOp : Amp_SensitiveUnaryOp<"log", "log(x)"> {
  let precisionReason = "log: tiny inputs underflow in low precision; FP32";
}

def Amp_PowOp : Amp_SensitiveUnaryOp<"pow", "pow(x, exponent)"> {
  let precisionReason = "pow: powers overflow or underflow low precision; FP32";
  let arguments = (ins Amp_FloatTensor:$input, F32Attr:$exponent);
}
/// Kept f32 like the pow it differentiates (its gradient is widened first).
def Amp_PowGradOp : Amp_ActivationGradOp<"pow_grad",
    "gradient of pow: grad * exponent * x^(exponent - 1) (x: the pow's input)"> {
  let arguments = (ins Amp_FloatTensor:$grad, Amp_FloatTensor:$input, F32Attr:$exponent);
}

/// Softmax and log-softmax along one axis, computed in FP32.
class Amp_SoftmaxBase<string mnemonic, string formula>
    : Amp_ShapedOp<mnemonic, [SameOperandsAndResultShape, Amp_PrecisionOpInterface,
                              Amp_F32KernelsOnly,
                              DeclareOpInterfaceMethods<Amp_GradientOpInterface>]> {
  let precision = "FP32";
  let readsLowPrecision = 1;
  let summary = formula # " along `axis`, computed in FP32";
  let description = [{
    `}] # formula # [{` along `axis` (negative counts from the end; -1, the
    default, is the last axis), formed relative to the maximum so that large
    inputs neither overflow nor round away. A NaN anywhere along the axis
    makes that whole slice NaN.

    Example:
    ```mlir
    %p = amp.}] # mnemonic # [{ %x {axis = 1 : i64} : tensor<8x10x4xf32> -> tensor<8x10x4xf32>
    ```
  }];
  let arguments = (ins Amp_FloatTensor:$input, DefaultValuedAttr<I64Attr, "-1">:$axis);
  let results = (outs Amp_FloatTensor:$result);
  let assemblyFormat = "$input attr-dict `:` type($input) `->` type($result)";
}

def Amp_SoftmaxOp : Amp_SoftmaxBase<"softmax", "exp(x - max) / sum(exp(x - max))"> {
  let precisionReason = "softmax: exp and sum in FP32";
}
def Amp_LogSoftmaxOp : Amp_SoftmaxBase<"log_softmax", "x - max - log(sum(exp(x - max)))"> {
  let precisionReason = "log-softmax: exp, sum and log in FP32";
}

def Amp_BroadcastToOp : Amp_Op<"broadcast_to", [Amp_PrecisionOpInterface, Amp_FusableElementwise,
    DeclareOpInterfaceMethods<Amp_GradientOpInterface>]> {
  let summary = "broadcasts a tensor to a larger shape (numpy rules)";
  let description = [{
    Example:
    ```mlir
    %y = amp.broadcast_to %x : tensor<8x1xf32> -> tensor<8x10xf32>
    ```
  }];
  let arguments = (ins Amp_FloatTensor:$input);
  let results = (outs Amp_FloatTensor:$result);
  let assemblyFormat = "$input attr-dict `:` type($input) `->` type($result)";
  let hasVerifier = 1;
}

//===----------------------------------------------------------------------===//
// Data movement
//===----------------------------------------------------------------------===//

// The result shape is part of the op (not a function of the operand), so
// reshape verifies with reshapeShape instead of shape inference.
def Amp_ReshapeOp : Amp_Op<"reshape",
    [DeclareOpInterfaceMethods<Amp_GradientOpInterface>, Amp_PrecisionOpInterface,
     DeclareOpInterfaceMethods<ViewLikeOpInterface>]> {
  let hasVerifier = 1;
  let summary = "reinterprets a tensor with a new shape of equal size";
  let description = [{
    The result has the same element type and element count. While shapes
    are dynamic, the optional `shape` keeps the ONNX target (0 copies the
    input's dim, -1 is inferred from the element count) so that the
    batch-size pass can resolve every dynamic result dim once the input is
    static; without it, at most one dynamic result dim is resolved.

    Example:
    ```mlir
    %y = amp.reshape %x : tensor<8x1x28x28xf32> -> tensor<8x784xf32>
    ```
  }];
  let arguments = (ins AnyRankedTensor:$input, OptionalAttr<DenseI64ArrayAttr>:$shape);
  let results = (outs AnyRankedTensor:$result);
  let assemblyFormat = "$input attr-dict `:` type($input) `->` type($result)";
  let builders = [
    OpBuilder<(ins "::mlir::Type":$result, "::mlir::Value":$input), [{
      build($_builder, $_state, result, input, ::mlir::DenseI64ArrayAttr());
    }]>
  ];
}

def Amp_CastOp : Amp_ShapedOp<"cast",
    [DeclareOpInterfaceMethods<Amp_GradientOpInterface>, Amp_PrecisionOpInterface,
     Amp_FusableElementwise]> {
  let summary = "converts a tensor to another float element type";
  let description = [{
    Round-to-nearest-even conversion between f32, bf16 and f16, or from
    int64, int32 or i1 values (an integer or boolean mask, ids a model
    casts: ONNX Cast at run time) to one of them; and float to i1 (x != 0),
    for a boolean graph output. No gradient reaches integers or booleans.

    Example:
    ```mlir
    %y = amp.cast %x : tensor<4xf32> to tensor<4xbf16>
    ```
  }];
  let arguments = (ins Amp_CastSourceTensor:$input);
  let results = (outs Amp_CastResultTensor:$result);
  let assemblyFormat = "$input attr-dict `:` type($input) `to` type($result)";
  let hasFolder = 1;
}

//===----------------------------------------------------------------------===//
// Reductions
//===----------------------------------------------------------------------===//

def Amp_ReduceSumOp : Amp_ShapedOp<"reduce_sum", [Amp_PrecisionOpInterface, Amp_F32ResultKernels,
    DeclareOpInterfaceMethods<Amp_GradientOpInterface>]> {
  let precision = "FP32";
  let precisionReason = "reduction: accumulates and stores in FP32";
  let readsLowPrecision = 1;
  let summary = "sums over the given axes";
  let description = [{
    Sums `input` over `axes` (sorted, unique, in range). With `keep_dims` the
    reduced axes stay with size 1. Autodiff uses it to undo broadcasting.

    Example:
    ```mlir
    %b = amp.reduce_sum %g axes = [0] : tensor<8x4xf32> -> tensor<4xf32>
    ```
  }];
  let arguments = (ins Amp_FloatTensor:$input, DenseI64ArrayAttr:$axes,
                       UnitAttr:$keep_dims);
  let results = (outs Amp_FloatTensor:$result);
  let assemblyFormat = [{
    $input `axes` `=` $axes attr-dict `:` type($input) `->` type($result)
  }];
}

def Amp_ReduceMaxOp : Amp_ShapedOp<"reduce_max", [Amp_PrecisionOpInterface, Amp_F32ResultKernels,
    DeclareOpInterfaceMethods<Amp_GradientOpInterface>]> {
  let precision = "FP32";
  let precisionReason = "reduction: a maximum is exact in any type, computed on f32 kernels";
  let readsLowPrecision = 1;
  let summary = "maximum over the given axes";
  let description = [{
    The maximum of `input` over `axes` (sorted, unique, in range); NaN if
    any reduced element is NaN. With `keep_dims` the reduced axes stay with
    size 1. Its gradient goes to the elements equal to the maximum, split
    evenly between ties (as torch.amax). ONNX's ReduceMin imports as
    -reduce_max(-x).

    Example:
    ```mlir
    %m = amp.reduce_max %x axes = [1] {keep_dims} : tensor<8x4xf32> -> tensor<8x1xf32>
    ```
  }];
  let arguments = (ins Amp_FloatTensor:$input, DenseI64ArrayAttr:$axes,
                       UnitAttr:$keep_dims);
  let results = (outs Amp_FloatTensor:$result);
  let assemblyFormat = [{
    $input `axes` `=` $axes attr-dict `:` type($input) `->` type($result)
  }];
}

//===----------------------------------------------------------------------===//
// Loss
//===----------------------------------------------------------------------===//

def Amp_SoftmaxCrossEntropyOp : Amp_ShapedOp<"softmax_cross_entropy",
    [Amp_FixedPrecision, Amp_F32KernelsOnly, DeclareOpInterfaceMethods<Amp_GradientOpInterface>,
     Amp_PrecisionOpInterface]> {
  let precision = "FP32";
  let precisionReason = "loss: log-softmax (exp, log, sum) in FP32";
  let readsLowPrecision = 1;
  let summary = "softmax cross-entropy of logits against integer labels";
  let description = [{
    `loss = reduce_n(-log_softmax(logits)[n, labels[n]])` over a batch of
    `[N, C]` logits and `[N]` int64 labels; `reduction` is mean or sum. Rows
    whose label equals `ignore_index` count for nothing (the mean is over the
    other rows), as in ONNX and PyTorch.

    Example:
    ```mlir
    %l = amp.softmax_cross_entropy %logits, %labels {reduction = #amp<reduction mean>} : tensor<8x10xf32>, tensor<8xi64> -> tensor<f32>
    ```
  }];
  let arguments = (ins Amp_FloatTensor:$logits, Amp_LabelTensor:$labels,
                       Amp_LossReductionAttr:$reduction, OptionalAttr<I64Attr>:$ignore_index);
  let results = (outs Amp_ScalarF32:$loss);
  let assemblyFormat = [{
    $logits `,` $labels attr-dict `:` type($logits) `,` type($labels) `->` type($loss)
  }];
}

def Amp_SoftmaxCrossEntropyGradOp : Amp_ShapedOp<"softmax_cross_entropy_grad",
    [Amp_FixedPrecision, Amp_F32KernelsOnly, Amp_PrecisionOpInterface]> {
  let precision = "FP32";
  let precisionReason = "loss gradient: softmax in FP32";
  let readsLowPrecision = 1;
  let summary = "gradient of softmax cross-entropy with respect to the logits";
  let description = [{
    `dlogits[n, c] = scale * grad * (softmax(logits)[n, c] - (c == labels[n]))`
    with `scale = 1/N` for mean reduction and 1 for sum.

    Example:
    ```mlir
    %d = amp.softmax_cross_entropy_grad %g, %logits, %labels {reduction = #amp<reduction mean>} : tensor<f32>, tensor<8x10xf32>, tensor<8xi64> -> tensor<8x10xf32>
    ```
  }];
  let arguments = (ins Amp_ScalarF32:$grad, Amp_FloatTensor:$logits,
                       Amp_LabelTensor:$labels, Amp_LossReductionAttr:$reduction,
                       OptionalAttr<I64Attr>:$ignore_index);
  let results = (outs Amp_FloatTensor:$result);
  let assemblyFormat = [{
    $grad `,` $logits `,` $labels attr-dict `:` type($grad) `,` type($logits) `,` type($labels) `->` type($result)
  }];
}

//===----------------------------------------------------------------------===//
// Optimizer updates
//===----------------------------------------------------------------------===//

def Amp_SgdUpdateOp : Amp_ShapedOp<"sgd_update", [Amp_FixedPrecision, Amp_F32KernelsOnly,
    Amp_OptimizerUpdateOpInterface, Amp_PrecisionOpInterface, AllTypesMatch<["param", "grad",
    "momentum_buffer", "new_param", "new_momentum_buffer"]>]> {
  let precision = "FP32";
  let precisionReason = "optimizer update: FP32 master weights and state";
  let summary = "one SGD step with momentum and weight decay (torch.optim.SGD)";
  let description = [{
    `g' = grad + weight_decay * param; buf' = momentum * buf + g';`
    `param' = param - lr * (nesterov ? g' + momentum * buf' : buf')`.
    Parameters, gradients and the momentum buffer are f32 master values.
    With `skip` non-zero (a non-finite gradient was found) nothing changes.

    Example:
    ```mlir
    %p1, %b1 = amp.sgd_update %p, %g, %b {lr = 0.01 : f64, momentum = 0.9 : f64, weight_decay = 0.0 : f64} : tensor<4xf32>
    ```
  }];
  let arguments = (ins Amp_F32Tensor:$param, Amp_F32Tensor:$grad,
                       Amp_F32Tensor:$momentum_buffer, Optional<Amp_ScalarF32>:$skip,
                       F64Attr:$lr, F64Attr:$momentum, F64Attr:$weight_decay,
                       UnitAttr:$nesterov);
  let results = (outs Amp_F32Tensor:$new_param, Amp_F32Tensor:$new_momentum_buffer);
  let assemblyFormat = [{
    $param `,` $grad `,` $momentum_buffer (`skip` `(` $skip^ `:` type($skip) `)`)? attr-dict `:` type($param)
  }];
}

def Amp_AdamWUpdateOp : Amp_ShapedOp<"adamw_update", [Amp_FixedPrecision, Amp_F32KernelsOnly,
    Amp_OptimizerUpdateOpInterface, Amp_PrecisionOpInterface, AllTypesMatch<["param", "grad",
    "exp_avg", "exp_avg_sq", "new_param", "new_exp_avg", "new_exp_avg_sq"]>]> {
  let precision = "FP32";
  let precisionReason = "optimizer update: FP32 master weights and state";
  let summary = "one AdamW step with decoupled weight decay (torch.optim.AdamW)";
  let description = [{
    With `t = step + 1`: `param *= 1 - lr * weight_decay;`
    `m' = beta1 m + (1 - beta1) g; v' = beta2 v + (1 - beta2) g^2;`
    `param' = param - lr / (1 - beta1^t) * m' / (sqrt(v') / sqrt(1 - beta2^t) + eps)`.
    With `huggingface` the step is HuggingFace transformers' AdamW (what
    onnxruntime-training's AdamWOptimizer computes with adam_mode 1):
    `param' = param - lr sqrt(1 - beta2^t) / (1 - beta1^t) * m' / (sqrt(v') + eps)`,
    epsilon on the uncorrected root, and the weight decay after the update.
    With `skip` non-zero (a non-finite gradient was found) nothing changes.

    Example:
    ```mlir
    %p1, %m1, %v1 = amp.adamw_update %p, %g, %m, %v, %step {lr = 1.0e-03 : f64, beta1 = 0.9 : f64, beta2 = 0.999 : f64, eps = 1.0e-08 : f64, weight_decay = 0.01 : f64} : tensor<4xf32>, tensor<i64>
    ```
  }];
  let arguments = (ins Amp_F32Tensor:$param, Amp_F32Tensor:$grad,
                       Amp_F32Tensor:$exp_avg, Amp_F32Tensor:$exp_avg_sq,
                       Amp_StepTensor:$step, Optional<Amp_ScalarF32>:$skip,
                       F64Attr:$lr, F64Attr:$beta1, F64Attr:$beta2, F64Attr:$eps,
                       F64Attr:$weight_decay, UnitAttr:$huggingface);
  let results = (outs Amp_F32Tensor:$new_param, Amp_F32Tensor:$new_exp_avg,
                      Amp_F32Tensor:$new_exp_avg_sq);
  let assemblyFormat = [{
    $param `,` $grad `,` $exp_avg `,` $exp_avg_sq `,` $step (`skip` `(` $skip^ `:` type($skip) `)`)? attr-dict
    `:` type($param) `,` type($step)
  }];
}

def Amp_IncrementOp : Amp_Op<"increment", [Amp_FixedPrecision, AllTypesMatch<["input", "result"]>, Amp_PrecisionOpInterface]> {
  let precision = "FP32";
  let precisionReason = "step counter (the optimizer's, dropout's)";
  let summary = "adds one to the optimizer step counter, unless skip is non-zero";
  let description = [{
    Example:
    ```mlir
    %s1 = amp.increment %s : tensor<i64>
    ```
  }];
  let arguments = (ins Amp_StepTensor:$input, Optional<Amp_ScalarF32>:$skip);
  let results = (outs Amp_StepTensor:$result);
  let assemblyFormat = "$input (`skip` `(` $skip^ `:` type($skip) `)`)? attr-dict `:` type($input)";
}

//===----------------------------------------------------------------------===//
// Loss scaling and gradient safety
//===----------------------------------------------------------------------===//

def Amp_UnscaleOp : Amp_ShapedOp<"unscale", [Amp_FixedPrecision, Amp_PrecisionOpInterface,
    Amp_RemovesLossScale]> {
  let precision = "FP32";
  let precisionReason = "loss scaling: gradients are unscaled in FP32";
  let readsLowPrecision = 1;
  let summary = "divides a scaled gradient by the loss scale, in FP32";
  let description = [{
    `grad * (1 / scale)` computed in f32 (as torch.amp.GradScaler does); the
    result is an unscaled FP32 gradient. Only its result may reach clipping
    or an optimizer update (amp-check-gradient-scaling).

    Example:
    ```mlir
    %g = amp.unscale %scaled, %scale : tensor<4xbf16>, tensor<f32> -> tensor<4xf32>
    ```
  }];
  let arguments = (ins Amp_FloatTensor:$grad, Amp_ScalarF32:$scale);
  let results = (outs Amp_F32Tensor:$result);
  let assemblyFormat = [{
    $grad `,` $scale attr-dict `:` type($grad) `,` type($scale) `->` type($result)
  }];
}

def Amp_FoundNonFiniteOp : Amp_ShapedOp<"found_nonfinite", [Amp_FixedPrecision, Amp_PrecisionOpInterface]> {
  let precision = "FP32";
  let precisionReason = "loss scaling: one fused inf/NaN check over all gradients";
  let readsLowPrecision = 1;
  let summary = "1 when any element of the tensors is inf or NaN, else 0";
  let description = [{
    One fused pass over all gradients of a step.

    Example:
    ```mlir
    %found = amp.found_nonfinite %g1, %g2 : tensor<4xf32>, tensor<2x4xf32> -> tensor<f32>
    ```
  }];
  let arguments = (ins Variadic<Amp_FloatTensor>:$tensors);
  let results = (outs Amp_ScalarF32:$found);
  let assemblyFormat = "$tensors attr-dict `:` type($tensors) `->` type($found)";
}

def Amp_GlobalNormOp : Amp_ShapedOp<"global_norm", [Amp_FixedPrecision, Amp_PrecisionOpInterface,
    Amp_ReadsUnscaledGradients]> {
  let precision = "FP32";
  let precisionReason = "gradient norm: a long sum, in FP32";
  let readsLowPrecision = 1;
  let summary = "the L2 norm of all tensors taken together";
  let description = [{
    `sqrt(sum_i sum(t_i^2))`, accumulated in double, as the total norm of
    torch.nn.utils.clip_grad_norm_.

    Example:
    ```mlir
    %norm = amp.global_norm %g1, %g2 : tensor<4xf32>, tensor<2x4xf32> -> tensor<f32>
    ```
  }];
  let arguments = (ins Variadic<Amp_FloatTensor>:$tensors);
  let results = (outs Amp_ScalarF32:$norm);
  let assemblyFormat = "$tensors attr-dict `:` type($tensors) `->` type($norm)";
}

def Amp_ClipCoefficientOp : Amp_ShapedOp<"clip_coefficient", [Amp_FixedPrecision, Amp_PrecisionOpInterface,
    Amp_ReadsUnscaledGradients, AllTypesMatch<["norm", "coefficient"]>]> {
  let precision = "FP32";
  let precisionReason = "gradient clipping factor";
  let summary = "min(1, max_norm / (norm + 1e-6)), as clip_grad_norm_";
  let description = [{
    Example:
    ```mlir
    %c = amp.clip_coefficient %norm {max_norm = 1.0 : f64} : tensor<f32>
    ```
  }];
  let arguments = (ins Amp_ScalarF32:$norm, F64Attr:$max_norm);
  let results = (outs Amp_ScalarF32:$coefficient);
  let assemblyFormat = "$norm attr-dict `:` type($norm)";
}

def Amp_UpdateLossScaleOp : Amp_ShapedOp<"update_loss_scale", [Amp_FixedPrecision, Amp_PrecisionOpInterface,
    Amp_RemovesLossScale, AllTypesMatch<["scale", "new_scale", "found_nonfinite"]>, AllTypesMatch<["growth_tracker", "new_growth_tracker"]>]> {
  let precision = "FP32";
  let precisionReason = "loss-scale state";
  let summary = "dynamic loss-scale update of torch.amp.GradScaler";
  let description = [{
    On a non-finite step the scale is multiplied by `backoff_factor` and the
    growth tracker reset; otherwise the tracker counts up, and after
    `growth_interval` finite steps the scale grows by `growth_factor` (if the
    result is finite) and the tracker resets. With `skip` non-zero (a
    micro-batch that completes no optimizer step) nothing changes.

    Example:
    ```mlir
    %s1, %t1 = amp.update_loss_scale %s, %t, %found {backoff_factor = 5.0e-01 : f64, growth_factor = 2.0 : f64, growth_interval = 2000 : i64} : tensor<f32>, tensor<i64>
    ```
  }];
  let arguments = (ins Amp_ScalarF32:$scale, Amp_StepTensor:$growth_tracker,
                       Amp_ScalarF32:$found_nonfinite, Optional<Amp_ScalarF32>:$skip,
                       F64Attr:$growth_factor, F64Attr:$backoff_factor,
                       I64Attr:$growth_interval);
  let results = (outs Amp_ScalarF32:$new_scale, Amp_StepTensor:$new_growth_tracker);
  let assemblyFormat = [{
    $scale `,` $growth_tracker `,` $found_nonfinite (`skip` `(` $skip^ `:` type($skip) `)`)?
    attr-dict `:` type($scale) `,` type($growth_tracker)
  }];
}

//===----------------------------------------------------------------------===//
// Gradient accumulation
//===----------------------------------------------------------------------===//

def Amp_AccumulationStepOp : Amp_ShapedOp<"accumulation_step", [Amp_FixedPrecision, Amp_PrecisionOpInterface,
    AllTypesMatch<["count", "new_count"]>]> {
  let precision = "FP32";
  let precisionReason = "micro-batch counter";
  let summary = "counts micro-batches; says when an optimizer step completes";
  let description = [{
    `new_count = (count + 1) % micro_batches`; `apply` is 1 when this
    micro-batch completes an optimizer step, else 0.

    Example:
    ```mlir
    %c1, %apply = amp.accumulation_step %c {micro_batches = 4 : i64} : tensor<i64>, tensor<f32>
    ```
  }];
  let arguments = (ins Amp_StepTensor:$count, I64Attr:$micro_batches);
  let results = (outs Amp_StepTensor:$new_count, Amp_ScalarF32:$apply);
  let assemblyFormat = "$count attr-dict `:` type($count) `,` type($apply)";
}

def Amp_ZeroIfOp : Amp_ShapedOp<"zero_if", [Amp_FixedPrecision, Amp_PrecisionOpInterface,
    AllTypesMatch<["input", "result"]>]> {
  let precision = "FP32";
  let precisionReason = "FP32 state: gradient accumulation buffers, state a skipped step keeps";
  let hasVerifier = 0; // the type constraints say it all
  let summary = "zeros where the flag is non-zero, else the input";
  let description = [{
    Resets gradient accumulation buffers after an optimizer step, and keeps
    the state of a step whose optimizer is its own arithmetic when loss
    scaling skips it (a select, so an inf in the input does not become NaN).

    Example:
    ```mlir
    %acc1 = amp.zero_if %sum, %apply : tensor<4xf32>, tensor<f32>
    ```
  }];
  let arguments = (ins Amp_F32Tensor:$input, Amp_ScalarF32:$flag);
  let results = (outs Amp_F32Tensor:$result);
  let assemblyFormat = "$input `,` $flag attr-dict `:` type($input) `,` type($flag)";
}

//===----------------------------------------------------------------------===//
// Data-parallel training
//===----------------------------------------------------------------------===//

def Amp_AllReduceOp : Amp_OpBase<"all_reduce", [Amp_FixedPrecision, Amp_PrecisionOpInterface,
    MemoryEffects<[MemRead, MemWrite]>]> {
  let precision = "FP32";
  let precisionReason = "data-parallel gradient reduction: FP32 by default; grad-reduce=bf16 "
                        "or fp16 sends the low type, accumulated in FP32 per combine";
  let summary = "the mean (or maximum) of each tensor over the data-parallel ranks";
  let description = [{
    One bucket of tensors reduced across the `world_size` ranks of a
    data-parallel step (amp-data-parallel): each result is the mean of its
    operand over the ranks or, with `max`, the maximum (NaN wins). Not pure:
    it communicates, so every rank must run the same all-reduces in the same
    order, and none may be merged, dropped or moved across another.

    Example:
    ```mlir
    %r:2 = amp.all_reduce %g1, %g2 {world_size = 2 : i64}
        : tensor<4xf32>, tensor<2x4xf32> -> tensor<4xf32>, tensor<2x4xf32>
    ```
  }];
  let arguments = (ins Variadic<Amp_FloatTensor>:$tensors, I64Attr:$world_size, UnitAttr:$max);
  let results = (outs Variadic<Amp_FloatTensor>:$results);
  let hasVerifier = 1;
  let assemblyFormat = "$tensors attr-dict `:` type($tensors) `->` type($results)";
  let builders = [
    OpBuilder<(ins "::mlir::ValueRange":$tensors, "int64_t":$worldSize, "bool":$max), [{
      build($_builder, $_state, tensors.getTypes(), tensors, worldSize, max);
    }]>
  ];
}

#endif // AMP_OPS_TD
