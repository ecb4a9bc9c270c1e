//===- AmpBase.td - amp dialect, enums and type constraints -*- tablegen -*-===//
//
// The amp dialect describes a training step over builtin tensors: f32, bf16 and
// f16 elements carry the precision, so mixed precision needs no new types.
//
//===----------------------------------------------------------------------===//

#ifndef AMP_BASE_TD
#define AMP_BASE_TD

include "mlir/IR/OpBase.td"
include "mlir/IR/EnumAttr.td"
include "mlir/IR/AttrTypeBase.td"

def Amp_Dialect : Dialect {
  let name = "amp";
  let cppNamespace = "::mlir::amp";
  let summary = "Mixed-precision training ops over builtin tensors";
  let description = [{
    The `amp` dialect holds the forward graph imported from ONNX, the
    gradient ops that autodiff adds, and the optimizer updates of a training
    step. Precision lives in the element types of builtin tensors (f32, bf16,
    f16), so passes change precision by changing types and inserting
    `amp.cast`.
  }];
  let hasConstantMaterializer = 1;
  let useDefaultAttributePrinterParser = 1;
}

//===----------------------------------------------------------------------===//
// Enums
//===----------------------------------------------------------------------===//

def Amp_LossReduction : I32EnumAttr<"LossReduction",
    "how a per-sample loss is reduced to a scalar", [
      I32EnumAttrCase<"Mean", 0, "mean">,
      I32EnumAttrCase<"Sum", 1, "sum">
    ]> {
  let cppNamespace = "::mlir::amp";
  let genSpecializedAttr = 0;
}
def Amp_LossReductionAttr : EnumAttr<Amp_Dialect, Amp_LossReduction, "reduction">;

def Amp_PrecisionClass : I32EnumAttr<"PrecisionClass",
    "how autocast chooses an op's precision", [
      I32EnumAttrCase<"Low", 0, "low">,       // compute-bound: the low type, f32 accumulation
      I32EnumAttrCase<"FP32", 1, "f32">,      // numerically sensitive: stays f32
      I32EnumAttrCase<"Follow", 2, "follow">  // data movement, simple elementwise
    ]> {
  let cppNamespace = "::mlir::amp";
  let genSpecializedAttr = 0;
}

//===----------------------------------------------------------------------===//
// Type constraints
//===----------------------------------------------------------------------===//

def Amp_FloatTensor : RankedTensorOf<[F32, BF16, F16]>;
def Amp_F32Tensor : RankedTensorOf<[F32]>;
def Amp_LabelTensor : RankedTensorOf<[I64]>;
// Gather's indices: token ids as exporters write them, int64 or int32.
def Amp_IndexTensor : RankedTensorOf<[I32, I64]>;
// What amp.cast reads: a float tensor, or integers or booleans (i1) made
// floats (ids, masks); and what it writes: a float tensor, or booleans.
def Amp_CastSourceTensor : RankedTensorOf<[F32, BF16, F16, I32, I64, I1]>;
def Amp_CastResultTensor : RankedTensorOf<[F32, BF16, F16, I1]>;
def Amp_StepTensor : 0DTensorOf<[I64]>;
def Amp_ScalarF32 : 0DTensorOf<[F32]>;

#endif // AMP_BASE_TD
