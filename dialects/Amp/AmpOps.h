//===- AmpOps.h - amp dialect and operations --------------------*- C++ -*-===//
#ifndef AMP_DIALECTS_AMP_AMPOPS_H
#define AMP_DIALECTS_AMP_AMPOPS_H

#include "mlir/Bytecode/BytecodeOpInterface.h"
#include "mlir/IR/BuiltinTypes.h"
#include "mlir/IR/Dialect.h"
#include "mlir/IR/OpDefinition.h"
#include "mlir/IR/OpImplementation.h"
#include "mlir/Interfaces/InferTypeOpInterface.h"
#include "mlir/Interfaces/SideEffectInterfaces.h"
#include "mlir/Interfaces/ViewLikeInterface.h"

#include "dialects/Amp/AmpDialect.h.inc"
#include "dialects/Amp/AmpEnums.h.inc"
#include "dialects/Amp/AmpInterfaces.h.inc"

#define GET_ATTRDEF_CLASSES
#include "dialects/Amp/AmpAttrs.h.inc"

namespace mlir::amp {
/// Marks ops whose precision is part of their definition (Amp_FixedPrecision
/// in AmpOps.td): autocast and precision policies leave them in f32.
template <typename ConcreteType>
class FixedPrecision : public OpTrait::TraitBase<ConcreteType, FixedPrecision> {};
/// Marks ops whose runtime kernels take f32 floats only (Amp_F32KernelsOnly
/// in AmpOps.td): amp-legalize-precision casts around them.
template <typename ConcreteType>
class F32KernelsOnly : public OpTrait::TraitBase<ConcreteType, F32KernelsOnly> {};
/// Marks ops whose runtime kernels read any float type but write f32 only
/// (Amp_F32ResultKernels in AmpOps.td): amp-legalize-precision computes a
/// low result in f32 and narrows it after the op, and leaves the inputs.
template <typename ConcreteType>
class F32ResultKernels : public OpTrait::TraitBase<ConcreteType, F32ResultKernels> {};
/// Marks elementwise ops that can be steps of a fused_elementwise kernel
/// (Amp_FusableElementwise in AmpOps.td).
template <typename ConcreteType>
class FusableElementwise : public OpTrait::TraitBase<ConcreteType, FusableElementwise> {};
/// Loss-scaling roles (Amp_RemovesLossScale, Amp_ReadsUnscaledGradients in
/// AmpOps.td), read by amp-check-gradient-scaling.
template <typename ConcreteType>
class RemovesLossScale : public OpTrait::TraitBase<ConcreteType, RemovesLossScale> {};
template <typename ConcreteType>
class ReadsUnscaledGradients : public OpTrait::TraitBase<ConcreteType, ReadsUnscaledGradients> {};
/// Whether the space-separated `list` names `backend` (ODS emulatesOn).
inline bool listsBackend(StringRef list, StringRef backend) {
  SmallVector<StringRef> names;
  list.split(names, ' ', -1, /*KeepEmpty=*/false);
  return llvm::is_contained(names, backend);
}
/// Shape inference where each result has the shape of the matching value
/// (AmpOps.td's Amp_ShapeOfFirstOperand uses it).
LogicalResult sameShapeComponents(ValueRange values,
                                  SmallVectorImpl<ShapedTypeComponents> &inferred);
} // namespace mlir::amp

#define GET_OP_CLASSES
#include "dialects/Amp/AmpOps.h.inc"

namespace mlir::amp {

//===----------------------------------------------------------------------===//
// Shape rules shared by verifiers, shape inference and the importer
//===----------------------------------------------------------------------===//

/// Numpy broadcasting of two shapes; fails when a pair of static dims differs
/// and neither is 1.
FailureOr<SmallVector<int64_t>> broadcastShapes(ArrayRef<int64_t> lhs,
                                                ArrayRef<int64_t> rhs);

/// Shape of op(lhs) x op(rhs) for operands [batch..., rows, cols] of one
/// rank with equal batch dims (op transposes the last two); fails on rank,
/// batch or inner-dim mismatch. `error` receives the reason.
FailureOr<SmallVector<int64_t>> matmulShape(ArrayRef<int64_t> lhs,
                                            ArrayRef<int64_t> rhs,
                                            bool transposeLhs, bool transposeRhs,
                                            std::string &error);

/// The geometry of a convolution over the spatial dims (NCHW-style layout:
/// input [N, C, spatial...], filter [M, C / group, kernel...]); `pads` holds
/// the begin pads of every spatial dim, then the end pads.
struct ConvGeometry {
  ArrayRef<int64_t> strides, pads, dilations;
  int64_t group = 1;
};

/// The result shape [N, M, out...] of a convolution, out = floor((in + pad
/// begin + pad end - dilation * (kernel - 1) - 1) / stride) + 1; fails on
/// ranks, channel counts or groups that do not fit, with the reason.
FailureOr<SmallVector<int64_t>> convShape(ArrayRef<int64_t> input, ArrayRef<int64_t> filter,
                                          const ConvGeometry &geometry, std::string &error);

/// The result shape [N, C, out...] of a pooling window over input [N, C,
/// spatial...]: out = floor, or with `ceilMode` ceil, of (in + pad begin +
/// pad end - dilation * (kernel - 1) - 1) / stride, plus 1 (ONNX's rule).
FailureOr<SmallVector<int64_t>> poolShape(ArrayRef<int64_t> input, ArrayRef<int64_t> kernel,
                                          const ConvGeometry &geometry, bool ceilMode,
                                          std::string &error);

/// Resolves at most one dynamic dim of `target` from `input`'s element count;
/// fails when both are static and their counts differ.
FailureOr<SmallVector<int64_t>> reshapeShape(ArrayRef<int64_t> input,
                                             ArrayRef<int64_t> target,
                                             std::string &error);

/// Resolves an ONNX Reshape target against `input`: 0 copies the input's
/// dim, -1 becomes dynamic (then resolved by reshapeShape when possible).
FailureOr<SmallVector<int64_t>> onnxReshapeTarget(ArrayRef<int64_t> input,
                                                  ArrayRef<int64_t> spec,
                                                  std::string &error);

/// Shape after summing `axes` away (or to 1 with keepDims).
FailureOr<SmallVector<int64_t>> reduceShape(ArrayRef<int64_t> input,
                                            ArrayRef<int64_t> axes,
                                            bool keepDims, std::string &error);

/// The bytes of a statically shaped tensor value's elements (each rounded
/// up to whole bytes): what it takes in the arena or on the wire.
int64_t staticTensorBytes(Value value);

/// The ONNX node name an op came from: the first NameLoc in its location,
/// depth first (an op merged from several keeps the first one's name), or "".
/// Policies, reports and plan kernels all name ops through this one helper.
std::string nodeNameOf(Location loc);
inline std::string nodeNameOf(Operation *op) { return nodeNameOf(op->getLoc()); }

/// Builds a tensor of `grad`'s values summed down to `targetType`'s shape,
/// undoing numpy broadcasting (reduce_sum with kept dims, then reshape).
Value sumToShape(OpBuilder &builder, Location loc, Value grad,
                 RankedTensorType targetType);

} // namespace mlir::amp


namespace mlir::amp {

/// Roles of function arguments and results, as attribute names whose value
/// is the tensor's user-facing name (ONNX value name, or derived from it).
namespace role {
inline constexpr llvm::StringLiteral kInput = "amp.input";   // batch input
inline constexpr llvm::StringLiteral kLabel = "amp.label";   // int64 labels
inline constexpr llvm::StringLiteral kParam = "amp.param";   // trainable parameter
inline constexpr llvm::StringLiteral kState = "amp.state";   // optimizer state, step
inline constexpr llvm::StringLiteral kOutput = "amp.output"; // forward output
inline constexpr llvm::StringLiteral kLoss = "amp.loss";     // scalar loss
inline constexpr llvm::StringLiteral kGrad = "amp.grad";     // gradient of a parameter
inline constexpr llvm::StringLiteral kMetric = "amp.metric"; // per-step scalar (loss scale, ...)
/// Initial value of a parameter (dense elements); absent means zeros.
inline constexpr llvm::StringLiteral kInit = "amp.init";
inline constexpr llvm::StringLiteral kAll[] = {kInput, kLabel, kParam, kState,
                                               kOutput, kLoss, kGrad, kMetric};
} // namespace role

/// Marks the constant 1 that seeds the backward pass (d loss / d loss).
inline constexpr llvm::StringLiteral kLossSeedAttr = "amp.loss_seed";
/// On a module whose @train_step was imported (an onnxruntime-training
/// artifact set): amp-build-train-step keeps it.
inline constexpr llvm::StringLiteral kImportedStepAttr = "amp.imported_step";

/// Reverse-mode differentiation of `output` over the ops of `body` (in
/// their order, as they are when called), seeded with d output / d output =
/// `seed`: the gradient of each value of `wrt` (arguments or results of
/// those ops), zero for one `output` does not depend on, built at `b`'s
/// insertion point. Fails, at the op, where a gradient would have to flow
/// through an op that has no gradient rule. Used by the training-step
/// builder and by the importer's ONNX Gradient rule.
LogicalResult buildReverseGradients(Block &body, Value output, Value seed, ArrayRef<Value> wrt,
                                    OpBuilder &b, SmallVectorImpl<Value> &grads);

/// The role attribute (one of role::kAll) in `attrs`, with its name.
std::optional<std::pair<StringRef, StringRef>> getRole(DictionaryAttr attrs);

/// The attributes of a signature entry with `role` and `name`, and its
/// initial value `init` (role::kInit) when given: getRole's inverse.
DictionaryAttr roleAttrs(Builder &b, StringRef role, StringRef name, Attribute init = {});

/// The ops that read `value`'s bytes: its users and, through views
/// (reshapes alias their operand's bytes), the users of those views. An op
/// overwriting `value` in place must come after all of them.
SmallVector<Operation *> readersThroughViews(Value value);

} // namespace mlir::amp

#endif // AMP_DIALECTS_AMP_AMPOPS_H
