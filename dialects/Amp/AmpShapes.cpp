//===- AmpShapes.cpp - shape rules shared by verifiers and inference ------===//
//
// One helper per shape rule (stablehlo style): the verifier, shape inference
// and the importer all call these, so the rules cannot drift apart.
//
//===----------------------------------------------------------------------===//

#include "dialects/Amp/AmpOps.h"

#include "llvm/ADT/STLExtras.h"
#include "llvm/Support/CheckedArithmetic.h"
#include <numeric>
#include <optional>

using namespace mlir;
using namespace mlir::amp;

static bool isDynamic(int64_t dim) { return ShapedType::isDynamic(dim); }

/// The padded input left over after a window of `taps` taps `dilation`
/// apart (its span: dilation * (taps - 1) + 1); none when the window
/// exceeds the padded input or the arithmetic leaves int64 (attributes of a
/// hostile model).
static std::optional<int64_t> roomAfterWindow(int64_t in, int64_t padBegin, int64_t padEnd,
                                              int64_t taps, int64_t dilation) {
  std::optional<int64_t> padded = llvm::checkedAdd(in, padBegin);
  if (padded)
    padded = llvm::checkedAdd(*padded, padEnd);
  std::optional<int64_t> span = llvm::checkedMul(dilation, taps - 1);
  if (taps < 1 || !padded || !span || *span >= *padded)
    return std::nullopt;
  return *padded - *span - 1;
}

FailureOr<SmallVector<int64_t>> mlir::amp::broadcastShapes(ArrayRef<int64_t> lhs,
                                                           ArrayRef<int64_t> rhs) {
  size_t rank = std::max(lhs.size(), rhs.size());
  SmallVector<int64_t> result(rank);
  for (size_t i = 0; i < rank; ++i) {
    int64_t l = i < rank - lhs.size() ? 1 : lhs[i - (rank - lhs.size())];
    int64_t r = i < rank - rhs.size() ? 1 : rhs[i - (rank - rhs.size())];
    if (l == 1)
      result[i] = r;
    else if (r == 1)
      result[i] = l;
    else if (isDynamic(l))
      result[i] = r;
    else if (isDynamic(r) || l == r)
      result[i] = l;
    else
      return failure();
  }
  return result;
}

FailureOr<SmallVector<int64_t>>
mlir::amp::matmulShape(ArrayRef<int64_t> lhs, ArrayRef<int64_t> rhs,
                       bool transposeLhs, bool transposeRhs, std::string &error) {
  size_t rank = lhs.size();
  if (rank < 2 || rhs.size() != rank) {
    error = "expects operands of one rank, at least 2 (batch dims, then the matrices)";
    return failure();
  }
  SmallVector<int64_t> result;
  for (size_t d = 0; d + 2 < rank; ++d) {
    if (!isDynamic(lhs[d]) && !isDynamic(rhs[d]) && lhs[d] != rhs[d]) {
      error = "batch dim " + std::to_string(d) + " differs (" + std::to_string(lhs[d]) +
              " vs " + std::to_string(rhs[d]) + ")";
      return failure();
    }
    result.push_back(isDynamic(lhs[d]) ? rhs[d] : lhs[d]);
  }
  lhs = lhs.take_back(2);
  rhs = rhs.take_back(2);
  int64_t m = transposeLhs ? lhs[1] : lhs[0];
  int64_t kl = transposeLhs ? lhs[0] : lhs[1];
  int64_t kr = transposeRhs ? rhs[1] : rhs[0];
  int64_t n = transposeRhs ? rhs[0] : rhs[1];
  if (!isDynamic(kl) && !isDynamic(kr) && kl != kr) {
    error = "inner dimensions differ (" + std::to_string(kl) + " vs " +
            std::to_string(kr) + ")";
    return failure();
  }
  result.append({m, n});
  return result;
}

FailureOr<SmallVector<int64_t>> mlir::amp::convShape(ArrayRef<int64_t> input,
                                                     ArrayRef<int64_t> filter,
                                                     const ConvGeometry &g, std::string &error) {
  size_t rank = input.size();
  if (rank < 3 || filter.size() != rank) {
    error = "expects input [N, C, spatial...] and filter [M, C/group, kernel...] of one rank, "
            "at least 3";
    return failure();
  }
  size_t spatial = rank - 2;
  if (g.strides.size() != spatial || g.dilations.size() != spatial ||
      g.pads.size() != 2 * spatial) {
    error = "expects " + std::to_string(spatial) + " strides and dilations and " +
            std::to_string(2 * spatial) + " pads";
    return failure();
  }
  if (g.group < 1 || llvm::any_of(g.strides, [](int64_t v) { return v < 1; }) ||
      llvm::any_of(g.dilations, [](int64_t v) { return v < 1; }) ||
      llvm::any_of(g.pads, [](int64_t v) { return v < 0; })) {
    error = "strides, dilations and group must be positive, pads non-negative";
    return failure();
  }
  int64_t channels = input[1], outChannels = filter[0];
  if (!isDynamic(outChannels) && outChannels % g.group != 0) {
    error = std::to_string(outChannels) + " output channels do not split into " +
            std::to_string(g.group) + " groups";
    return failure();
  }
  if (!isDynamic(channels) && !isDynamic(filter[1]) && filter[1] * g.group != channels) {
    error = "the filter takes " + std::to_string(filter[1]) + " channels per group, " +
            std::to_string(g.group) + " groups, but the input has " + std::to_string(channels);
    return failure();
  }
  SmallVector<int64_t> result = {input[0], outChannels};
  for (size_t d = 0; d < spatial; ++d) {
    int64_t in = input[d + 2], kernel = filter[d + 2];
    if (isDynamic(in) || isDynamic(kernel)) {
      result.push_back(ShapedType::kDynamic);
      continue;
    }
    std::optional<int64_t> room =
        roomAfterWindow(in, g.pads[d], g.pads[d + spatial], kernel, g.dilations[d]);
    if (!room) {
      error = "the kernel (" + std::to_string(kernel) + " taps, dilation " +
              std::to_string(g.dilations[d]) + ") exceeds the padded input in spatial dim " +
              std::to_string(d);
      return failure();
    }
    result.push_back(*room / g.strides[d] + 1);
  }
  return result;
}

FailureOr<SmallVector<int64_t>> mlir::amp::poolShape(ArrayRef<int64_t> input,
                                                     ArrayRef<int64_t> kernel,
                                                     const ConvGeometry &g, bool ceilMode,
                                                     std::string &error) {
  size_t spatial = kernel.size();
  if (input.size() != spatial + 2 || spatial == 0) {
    error = "expects input [N, C, spatial...] with one kernel size per spatial dim";
    return failure();
  }
  if (g.strides.size() != spatial || g.dilations.size() != spatial ||
      g.pads.size() != 2 * spatial || llvm::any_of(kernel, [](int64_t k) { return k < 1; }) ||
      llvm::any_of(g.strides, [](int64_t v) { return v < 1; }) ||
      llvm::any_of(g.dilations, [](int64_t v) { return v < 1; }) ||
      llvm::any_of(g.pads, [](int64_t v) { return v < 0; })) {
    error = "expects positive kernel sizes, strides and dilations, non-negative pads, one "
            "per spatial dim (pads: begins, then ends)";
    return failure();
  }
  SmallVector<int64_t> result = {input[0], input[1]};
  for (size_t d = 0; d < spatial; ++d) {
    if (isDynamic(input[d + 2])) {
      result.push_back(ShapedType::kDynamic);
      continue;
    }
    std::optional<int64_t> room =
        roomAfterWindow(input[d + 2], g.pads[d], g.pads[d + spatial], kernel[d], g.dilations[d]);
    if (!room || !llvm::checkedAdd(*room, g.strides[d])) { // the kernels step past room
      error = "the window exceeds the padded input (or its positions int64) in spatial dim " +
              std::to_string(d);
      return failure();
    }
    bool roundUp = ceilMode && *room % g.strides[d] != 0;
    result.push_back(*room / g.strides[d] + 1 + roundUp);
  }
  return result;
}

int64_t mlir::amp::staticTensorBytes(Value value) {
  auto type = cast<ShapedType>(value.getType());
  return type.getNumElements() * ((type.getElementTypeBitWidth() + 7) / 8);
}

static int64_t staticProduct(ArrayRef<int64_t> shape) {
  return std::accumulate(shape.begin(), shape.end(), int64_t{1},
                         [](int64_t a, int64_t b) { return a * b; });
}

FailureOr<SmallVector<int64_t>> mlir::amp::reshapeShape(ArrayRef<int64_t> input,
                                                        ArrayRef<int64_t> target,
                                                        std::string &error) {
  SmallVector<int64_t> result(target);
  bool inputStatic = llvm::none_of(input, isDynamic);
  int64_t dynamicCount = llvm::count_if(target, isDynamic);
  if (!inputStatic)
    return result;
  int64_t inputCount = staticProduct(input);
  if (dynamicCount == 0) {
    if (staticProduct(target) != inputCount) {
      error = "element count changes (" + std::to_string(inputCount) +
              " vs " + std::to_string(staticProduct(target)) + ")";
      return failure();
    }
    return result;
  }
  if (dynamicCount > 1)
    return result;
  int64_t known = 1;
  for (int64_t d : target)
    if (!isDynamic(d))
      known *= d;
  if (known == 0 || inputCount % known != 0) {
    error = "element count " + std::to_string(inputCount) +
            " is not divisible by the static dims' product " +
            std::to_string(known);
    return failure();
  }
  for (int64_t &d : result)
    if (isDynamic(d))
      d = inputCount / known;
  return result;
}

FailureOr<SmallVector<int64_t>>
mlir::amp::onnxReshapeTarget(ArrayRef<int64_t> input, ArrayRef<int64_t> spec,
                             std::string &error) {
  SmallVector<int64_t> target;
  if (llvm::count(spec, -1) > 1) {
    error = "at most one target dimension may be -1";
    return failure();
  }
  for (auto [i, dim] : llvm::enumerate(spec)) {
    if (dim == 0 && i < input.size())
      target.push_back(input[i]);
    else if (dim == -1)
      target.push_back(ShapedType::kDynamic);
    else if (dim > 0)
      target.push_back(dim);
    else {
      error = "invalid target dimension " + std::to_string(dim);
      return failure();
    }
  }
  return reshapeShape(input, target, error);
}

FailureOr<SmallVector<int64_t>> mlir::amp::reduceShape(ArrayRef<int64_t> input,
                                                       ArrayRef<int64_t> axes,
                                                       bool keepDims,
                                                       std::string &error) {
  for (size_t i = 0; i < axes.size(); ++i) {
    if (axes[i] < 0 || axes[i] >= static_cast<int64_t>(input.size())) {
      error = "axis " + std::to_string(axes[i]) + " is out of range";
      return failure();
    }
    if (i > 0 && axes[i] <= axes[i - 1]) {
      error = "axes must be sorted and unique";
      return failure();
    }
  }
  SmallVector<int64_t> result;
  for (int64_t i = 0, e = input.size(); i < e; ++i) {
    if (!llvm::is_contained(axes, i))
      result.push_back(input[i]);
    else if (keepDims)
      result.push_back(1);
  }
  return result;
}

Value mlir::amp::sumToShape(OpBuilder &builder, Location loc, Value grad,
                            RankedTensorType targetType) {
  auto gradType = cast<RankedTensorType>(grad.getType());
  if (gradType.getShape() == targetType.getShape())
    return grad;
  // Broadcasting aligned trailing dims: leading extra dims and dims that were
  // stretched from 1 are summed away.
  int64_t lead = gradType.getRank() - targetType.getRank();
  SmallVector<int64_t> axes;
  for (int64_t i = 0; i < gradType.getRank(); ++i)
    if (i < lead || (targetType.getDimSize(i - lead) == 1 &&
                     gradType.getDimSize(i) != 1))
      axes.push_back(i);
  std::string error;
  auto reducedShape = reduceShape(gradType.getShape(), axes, /*keepDims=*/true, error);
  auto reducedType = RankedTensorType::get(*reducedShape, gradType.getElementType());
  Value reduced = ReduceSumOp::create(builder, loc, reducedType, grad,
                                      builder.getDenseI64ArrayAttr(axes),
                                      /*keep_dims=*/true);
  auto resultType = RankedTensorType::get(targetType.getShape(),
                                          gradType.getElementType());
  if (reducedType == resultType)
    return reduced;
  return ReshapeOp::create(builder, loc, resultType, reduced);
}

std::optional<std::pair<StringRef, StringRef>>
mlir::amp::getRole(DictionaryAttr attrs) {
  if (!attrs)
    return std::nullopt;
  for (StringRef role : role::kAll)
    if (auto name = attrs.getAs<StringAttr>(role))
      return std::make_pair(role, name.getValue());
  return std::nullopt;
}

DictionaryAttr mlir::amp::roleAttrs(Builder &b, StringRef role, StringRef name,
                                   Attribute init) {
  SmallVector<NamedAttribute, 2> attrs = {b.getNamedAttr(role, b.getStringAttr(name))};
  if (init)
    attrs.push_back(b.getNamedAttr(role::kInit, init));
  return b.getDictionaryAttr(attrs);
}

SmallVector<Operation *> mlir::amp::readersThroughViews(Value value) {
  SmallVector<Operation *> readers;
  SmallVector<Value> pending = {value};
  while (!pending.empty())
    for (Operation *user : pending.pop_back_val().getUsers()) {
      readers.push_back(user);
      if (isa<ViewLikeOpInterface>(user))
        llvm::append_range(pending, user->getResults());
    }
  return readers;
}
