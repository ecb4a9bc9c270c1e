//===- RecognizeComposites.cpp - written-out GELU and layer norm ----------===//
//
// Exporters before ONNX opset 20 write GELU as elementwise arithmetic:
//   x * 0.5 * (1 + erf(x / sqrt(2)))                                  (exact)
//   x * 0.5 * (1 + tanh(sqrt(2 / pi) * (x + 0.044715 * x^3)))         (tanh)
// in any association and operand order of the products and sums. As five to
// nine ops it runs as a fused kernel that saves several intermediates for
// the backward pass; as one amp.gelu it saves only x and its gradient is
// one op (beside GeluOp). Layer norms written out (ReduceMean, Sub, Pow,
// Add, Sqrt, Div, then the affine Mul and Add) become one amp.layer_norm
// likewise. Only the root's value is replaced, so a matched intermediate
// that something else reads stays where it is.
//
//===----------------------------------------------------------------------===//

#include "amp/Transforms/Passes.h"

#include "mlir/IR/Builders.h"
#include "mlir/IR/Matchers.h"
#include "llvm/ADT/SmallPtrSet.h"

#include <algorithm>
#include <cmath>

namespace mlir::amp {
#define GEN_PASS_DEF_AMPRECOGNIZECOMPOSITES
#include "amp/Transforms/Passes.h.inc"
} // namespace mlir::amp

using namespace mlir;
using namespace mlir::amp;

namespace {

/// The value of a one-element float constant, with its type's relative
/// rounding step (exporters write float32 or, for low-precision models,
/// bf16/f16 constants).
std::optional<std::pair<double, double>> scalarValue(Value value) {
  DenseElementsAttr attr;
  if (!matchPattern(value, m_Constant(&attr)) || attr.getNumElements() != 1 ||
      !isa<FloatType>(attr.getElementType()))
    return std::nullopt;
  APFloat actual = *attr.getValues<APFloat>().begin();
  double ulp = std::ldexp(1.0, 1 - static_cast<int>(APFloat::semanticsPrecision(
                                      actual.getSemantics())));
  return std::make_pair(actual.convertToDouble(), std::max(ulp, 1e-6));
}

/// Whether `value` is a one-element float constant equal to `expected` to
/// its type's rounding.
bool isScalar(Value value, double expected) {
  auto scalar = scalarValue(value);
  return scalar && std::abs(scalar->first - expected) <= scalar->second * std::abs(expected);
}

/// The factors of a product of Muls (at most `limit` of them), in order.
void collectFactors(Value value, SmallVectorImpl<Value> &factors, unsigned limit) {
  auto mul = value.getDefiningOp<MulOp>();
  if (!mul || factors.size() + 2 > limit) {
    factors.push_back(value);
    return;
  }
  collectFactors(mul.getLhs(), factors, limit);
  collectFactors(mul.getRhs(), factors, limit);
}

/// For `sum` = a + b with one side a constant `constant`, the other side.
Value otherAddend(Value sum, double constant) {
  auto add = sum.getDefiningOp<AddOp>();
  if (!add)
    return {};
  if (isScalar(add.getRhs(), constant))
    return add.getLhs();
  if (isScalar(add.getLhs(), constant))
    return add.getRhs();
  return {};
}

/// Whether `value` is x / sqrt(2) (or x * (1 / sqrt(2))).
bool isScaledForErf(Value value, Value x) {
  if (auto div = value.getDefiningOp<DivOp>())
    return div.getLhs() == x && isScalar(div.getRhs(), std::sqrt(2.0));
  SmallVector<Value> factors;
  collectFactors(value, factors, 2);
  return factors.size() == 2 &&
         ((factors[0] == x && isScalar(factors[1], std::sqrt(0.5))) ||
          (factors[1] == x && isScalar(factors[0], std::sqrt(0.5))));
}

/// Whether `value` is x^3 (a Pow with exponent 3, or x * x * x).
bool isCube(Value value, Value x) {
  if (auto pow = value.getDefiningOp<PowOp>())
    return pow.getInput() == x && pow.getExponent().convertToFloat() == 3.0f;
  SmallVector<Value> factors;
  collectFactors(value, factors, 3);
  return factors.size() == 3 && llvm::all_of(factors, [&](Value f) { return f == x; });
}

/// Whether `value` is sqrt(2 / pi) * (x + 0.044715 * x^3).
bool isScaledForTanh(Value value, Value x) {
  SmallVector<Value> outer;
  collectFactors(value, outer, 2);
  if (outer.size() != 2)
    return false;
  for (int i = 0; i < 2; ++i) {
    if (!isScalar(outer[i], std::sqrt(2.0 / M_PI)))
      continue;
    auto add = outer[1 - i].getDefiningOp<AddOp>();
    if (!add)
      return false;
    Value cubic = add.getLhs() == x ? add.getRhs() : add.getRhs() == x ? add.getLhs() : Value();
    SmallVector<Value> terms;
    if (cubic)
      collectFactors(cubic, terms, 2);
    return terms.size() == 2 && ((isScalar(terms[0], 0.044715) && isCube(terms[1], x)) ||
                                 (isScalar(terms[1], 0.044715) && isCube(terms[0], x)));
  }
  return false;
}

/// Whether `factor` is 1 + erf(x / sqrt 2) (exact) or 1 + tanh(...) (tanh).
std::optional<bool> geluFactor(Value factor, Value x) {
  Value inner = otherAddend(factor, 1.0);
  if (!inner)
    return std::nullopt;
  if (auto erf = inner.getDefiningOp<ErfOp>(); erf && isScaledForErf(erf.getInput(), x))
    return false;
  if (auto tanh = inner.getDefiningOp<TanhOp>(); tanh && isScaledForTanh(tanh.getInput(), x))
    return true;
  return std::nullopt;
}

/// Erases `root` if nothing reads it, then the arithmetic that fed only it.
/// A worklist with the erased ops remembered: an op can feed another twice
/// (c * c) or feed both an op and that op's operand, so it may come up again
/// after it is gone.
void eraseIfDead(Operation *root) {
  SmallVector<Operation *> worklist = {root};
  llvm::SmallPtrSet<Operation *, 16> erased;
  while (!worklist.empty()) {
    Operation *op = worklist.pop_back_val();
    if (!op || erased.contains(op) || !op->use_empty() ||
        !isa<MulOp, AddOp, SubOp, DivOp, ErfOp, TanhOp, PowOp, SqrtOp, ReduceSumOp, ConstantOp>(
            op))
      continue;
    for (Value operand : op->getOperands())
      worklist.push_back(operand.getDefiningOp());
    erased.insert(op);
    op->erase();
  }
}

/// Replaces `root` by an amp.gelu if it is a decomposed GELU's last product.
bool recognizeGelu(MulOp root) {
  SmallVector<Value> factors;
  collectFactors(root.getResult(), factors, 3);
  if (factors.size() != 3)
    return false;
  for (int half = 0; half < 3; ++half) {
    if (!isScalar(factors[half], 0.5))
      continue;
    for (int xi = 0; xi < 3; ++xi) {
      if (xi == half)
        continue;
      Value x = factors[xi];
      std::optional<bool> approximateTanh = geluFactor(factors[3 - half - xi], x);
      if (!approximateTanh || x.getType() != root.getType())
        continue;
      OpBuilder builder(root);
      auto gelu = GeluOp::create(builder, root.getLoc(), root.getType(), x, *approximateTanh);
      root.getResult().replaceAllUsesWith(gelu.getResult());
      eraseIfDead(root);
      return true;
    }
  }
  return false;
}

/// For `mean` = reduce_sum(x, trailing axes from `axis`, keep_dims) * 1/n
/// (ONNX ReduceMean as imported), x; `axis` must match when it is set.
Value meanInput(Value mean, std::optional<int64_t> &axis) {
  auto mul = mean.getDefiningOp<MulOp>();
  if (!mul)
    return {};
  for (int i = 0; i < 2; ++i) {
    auto sum = mul->getOperand(i).getDefiningOp<ReduceSumOp>();
    if (!sum || !sum.getKeepDims())
      continue;
    auto type = cast<RankedTensorType>(sum.getInput().getType());
    ArrayRef<int64_t> axes = sum.getAxes();
    if (axes.empty() || axes.back() != type.getRank() - 1 ||
        axes.back() - axes.front() + 1 != static_cast<int64_t>(axes.size()) ||
        (axis && *axis != axes.front()) || !type.hasStaticShape())
      continue;
    int64_t count = ShapedType::getNumElements(type.getShape().drop_front(axes.front()));
    if (!isScalar(mul->getOperand(1 - i), 1.0 / static_cast<double>(count)))
      continue;
    axis = axes.front();
    return sum.getInput();
  }
  return {};
}

/// The one reader of `value` if it is an `OpTy` whose other operand has
/// type `type`, with that operand.
template <typename OpTy>
std::pair<OpTy, Value> affineUser(Value value, Type type) {
  if (!value.hasOneUse())
    return {};
  auto op = dyn_cast<OpTy>(*value.getUsers().begin());
  if (!op || op.getType() != value.getType())
    return {};
  Value other = op.getLhs() == value ? op.getRhs() : op.getLhs();
  return other.getType() == type ? std::make_pair(op, other) : std::pair<OpTy, Value>();
}

/// Replaces a layer norm written out, as older exporters write it,
///   c = x - mean(x);  c / sqrt(mean(c^2) + eps)  [* scale] [+ bias]
/// (means over the trailing dims from `axis`, c^2 as Pow 2 or c * c; scale
/// and bias of the normalized dims' f32 shape) by one amp.layer_norm,
/// whose statistics are f32 and whose gradient is LayerNormOp's.
void recognizeLayerNorm(DivOp root) {
  auto centered = root.getLhs().getDefiningOp<SubOp>();
  auto sqrt = root.getRhs().getDefiningOp<SqrtOp>();
  auto shifted = sqrt ? sqrt.getInput().getDefiningOp<AddOp>() : AddOp();
  if (!centered || !shifted)
    return;
  std::optional<int64_t> axis;
  Value x = centered.getLhs();
  if (meanInput(centered.getRhs(), axis) != x || x.getType() != root.getType())
    return;
  for (int i = 0; i < 2; ++i) {
    auto epsilon = scalarValue(shifted->getOperand(1 - i));
    Value square = meanInput(shifted->getOperand(i), axis);
    auto pow = square ? square.getDefiningOp<PowOp>() : PowOp();
    auto mul = square ? square.getDefiningOp<MulOp>() : MulOp();
    bool squares = (pow && pow.getInput() == centered && pow.getExponent().convertToFloat() == 2) ||
                   (mul && mul.getLhs() == centered && mul.getRhs() == centered);
    if (!epsilon || epsilon->first < 0 || !squares)
      continue;
    auto type = cast<RankedTensorType>(x.getType());
    auto normalized = RankedTensorType::get(type.getShape().drop_front(*axis),
                                            Float32Type::get(root.getContext()));
    Operation *last = root;
    Value scale, bias;
    if (auto [scaling, factor] = affineUser<MulOp>(root.getResult(), normalized); scaling) {
      last = scaling;
      scale = factor;
    }
    if (auto [adding, addend] = affineUser<AddOp>(last->getResult(0), normalized); adding) {
      last = adding;
      bias = addend;
    }
    OpBuilder builder(last);
    Location loc = root.getLoc();
    if (!scale)
      scale = ConstantOp::create(builder, loc, DenseElementsAttr::get(normalized, 1.0f));
    if (!bias)
      bias = ConstantOp::create(builder, loc, DenseElementsAttr::get(normalized, 0.0f));
    SmallVector<int64_t> statsShape(type.getShape());
    std::fill(statsShape.begin() + *axis, statsShape.end(), 1);
    auto stats = RankedTensorType::get(statsShape, builder.getF32Type());
    auto norm = LayerNormOp::create(builder, loc, type, stats, stats, x, scale, bias,
                                    builder.getI64IntegerAttr(*axis),
                                    builder.getF32FloatAttr(static_cast<float>(epsilon->first)));
    last->getResult(0).replaceAllUsesWith(norm.getResult());
    eraseIfDead(last);
    return;
  }
}

struct RecognizeCompositesPass
    : public amp::impl::AmpRecognizeCompositesBase<RecognizeCompositesPass> {
  void runOnOperation() override {
    // In program order: when a composite's last op comes, the ops inside it
    // (all earlier) are intact. A replacement erases the chain, all earlier
    // than its root, and a layer norm's affine Mul and Add, which are not
    // Divs: no op erased is visited again.
    SmallVector<MulOp> products;
    getOperation().walk([&](MulOp op) { products.push_back(op); });
    for (MulOp op : products)
      recognizeGelu(op);
    SmallVector<DivOp> quotients;
    getOperation().walk([&](DivOp op) { quotients.push_back(op); });
    for (DivOp op : quotients)
      recognizeLayerNorm(op);
  }
};

} // namespace
