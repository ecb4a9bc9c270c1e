//===- RecognizeComposites.cpp - decomposed GELU becomes amp.gelu ---------===//
//
// Exporters before ONNX opset 20 write GELU as elementwise arithmetic:
//   x * 0.5 * (1 + erf(x / sqrt(2)))                                  (exact)
//   x * 0.5 * (1 + tanh(sqrt(2 / pi) * (x + 0.044715 * x^3)))         (tanh)
// in any association and operand order of the products and sums. As five to
// nine ops it runs as a fused kernel that saves several intermediates for
// the backward pass; as one amp.gelu it saves only x and its gradient is
// one op (beside GeluOp). Only the root's value is replaced, so a matched
// intermediate that something else reads stays where it is.
//
//===----------------------------------------------------------------------===//

#include "amp/Transforms/Passes.h"

#include "mlir/IR/Builders.h"
#include "mlir/IR/Matchers.h"

#include <algorithm>
#include <cmath>

namespace mlir::amp {
#define GEN_PASS_DEF_AMPRECOGNIZECOMPOSITES
#include "amp/Transforms/Passes.h.inc"
} // namespace mlir::amp

using namespace mlir;
using namespace mlir::amp;

namespace {

/// Whether `value` is a one-element float constant equal to `expected` to
/// its type's rounding (exporters write float32 or, for low-precision
/// models, bf16/f16 constants).
bool isScalar(Value value, double expected) {
  DenseElementsAttr attr;
  if (!matchPattern(value, m_Constant(&attr)) || attr.getNumElements() != 1 ||
      !isa<FloatType>(attr.getElementType()))
    return false;
  APFloat actual = *attr.getValues<APFloat>().begin();
  double ulp = std::ldexp(1.0, 1 - static_cast<int>(APFloat::semanticsPrecision(
                                      actual.getSemantics())));
  return std::abs(actual.convertToDouble() - expected) <=
         std::max(ulp, 1e-6) * std::abs(expected);
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
std::optional<bool> gelusFactor(Value factor, Value x) {
  Value inner = otherAddend(factor, 1.0);
  if (!inner)
    return std::nullopt;
  if (auto erf = inner.getDefiningOp<ErfOp>(); erf && isScaledForErf(erf.getInput(), x))
    return false;
  if (auto tanh = inner.getDefiningOp<TanhOp>(); tanh && isScaledForTanh(tanh.getInput(), x))
    return true;
  return std::nullopt;
}

/// Erases `op` if nothing reads it, then the arithmetic that fed only it.
void eraseIfDead(Operation *op) {
  if (!op || !op->use_empty() ||
      !isa<MulOp, AddOp, DivOp, ErfOp, TanhOp, PowOp, ConstantOp>(op))
    return;
  SmallVector<Operation *> operands;
  for (Value operand : op->getOperands())
    operands.push_back(operand.getDefiningOp());
  op->erase();
  for (Operation *operand : operands)
    eraseIfDead(operand);
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
      std::optional<bool> approximateTanh = gelusFactor(factors[3 - half - xi], x);
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

struct RecognizeCompositesPass
    : public amp::impl::AmpRecognizeCompositesBase<RecognizeCompositesPass> {
  void runOnOperation() override {
    SmallVector<MulOp> products;
    getOperation().walk([&](MulOp op) { products.push_back(op); });
    // In program order: when a GELU's last Mul comes, the ops inside it (all
    // earlier) are intact; the ones its replacement erases are all earlier
    // than it, so never visited again.
    for (MulOp op : products)
      recognizeGelu(op);
  }
};

} // namespace
