//===- TrainingRules.cpp - ONNX import: ai.onnx.preview.training optimizers ===//
//
// Gradient, Adagrad, Momentum (standard and Nesterov) and Adam of the
// ai.onnx.preview.training domain. Gradient is reverse-mode autodiff of the
// ops imported so far, with the amp ops' own gradient rules. The optimizers
// are as ONNX defines them (the formulas of
// its reference implementation, which differ from the amp optimizer ops:
// no decoupled weight decay, Adam's epsilon outside the bias correction),
// built from amp elementwise ops over f32 tensors, so that each node's
// outputs are exactly the spec's. The step count T is a compile-time
// integer (an initializer) or a run-time int64 scalar; the learning rate R
// an f32 scalar tensor.
//
//===----------------------------------------------------------------------===//

#include "OnnxImporterImpl.h"

#include <cmath>

using namespace mlir;
using namespace mlir::amp;
using namespace mlir::amp::onnx_import;

namespace {

/// f32 arithmetic at one node's location; rank-0 operands broadcast.
struct Arithmetic {
  OnnxImporter &im;
  Location loc;

  Value constant(double value) {
    auto type = RankedTensorType::get({}, im.builder.getF32Type());
    return ConstantOp::create(im.builder, loc,
                              DenseElementsAttr::get(type, static_cast<float>(value)));
  }
  template <typename OpTy> Value binary(Value a, Value b) {
    return *buildBroadcast<OpTy>(im.builder, loc, a, b); // shapes checked by the rule
  }
  Value add(Value a, Value b) { return binary<AddOp>(a, b); }
  Value sub(Value a, Value b) { return binary<SubOp>(a, b); }
  Value mul(Value a, Value b) { return binary<MulOp>(a, b); }
  Value div(Value a, Value b) { return binary<DivOp>(a, b); }
  Value scale(double factor, Value a) { return factor == 1.0 ? a : mul(constant(factor), a); }
  Value sqrt(Value a) { return SqrtOp::create(im.builder, loc, a.getType(), a); }
  Value exp(Value a) { return ExpOp::create(im.builder, loc, a.getType(), a); }
};

/// The optimizer's step count T: known at compile time, or an f32 copy of
/// the run-time value with a 0/1 mask of T > 0.
struct StepCount {
  std::optional<int64_t> known;
  Value asFloat, positive;

  /// b^max(T, 0) for a constant b in [0, 1] (1 for T <= 0, also for b = 0):
  /// Adam's corrections, which ONNX applies for T > 0 only.
  Value power(Arithmetic &a, double base) {
    if (base == 0.0)
      return a.sub(a.constant(1.0), positive);
    return a.exp(a.mul(a.mul(asFloat, positive), a.constant(std::log(base))));
  }
};

/// R and T, and the tensor operands grouped per kind (X, G, then V and/or
/// H): `kinds` groups of n tensors each, every one of X_i's shape.
struct OptimizerOperands {
  Value rate;
  StepCount step;
  SmallVector<SmallVector<Value>> groups; // [kind][i]
};

FailureOr<OptimizerOperands> readOperands(OnnxImporter &im, const onnx::NodeProto &node,
                                          int kinds, Arithmetic &a) {
  OptimizerOperands operands;
  int tensors = node.input_size() - 2;
  if (tensors <= 0 || tensors % kinds != 0)
    return im.nodeError(node) << "expects R, T and " << kinds << " groups of equally many "
                              << "tensors, got " << node.input_size() << " inputs";
  int n = tensors / kinds;
  if (node.output_size() != n * (kinds - 1)) // every kind but G is updated
    return im.nodeError(node) << "expects " << n * (kinds - 1) << " outputs, got "
                              << node.output_size();
  auto rate = im.input(node, 0);
  if (failed(rate))
    return failure();
  auto rateType = cast<RankedTensorType>(rate->getType());
  if (rateType.getRank() != 0 || !rateType.getElementType().isF32())
    return im.nodeError(node) << "the learning rate R must be an f32 scalar, got " << rateType;
  operands.rate = *rate;

  if (const GraphValue *known = im.integerInput(node, 1)) {
    if (known->integers->size() != 1)
      return im.nodeError(node) << "the step count T must be a scalar";
    operands.step.known = known->integers->front();
  } else {
    auto t = im.input(node, 1);
    if (failed(t))
      return failure();
    auto type = cast<RankedTensorType>(t->getType());
    if (type.getRank() != 0 || !type.getElementType().isInteger(64))
      return im.nodeError(node) << "the step count T must be an int64 scalar, got " << type;
    operands.step.asFloat = CastOp::create(im.builder, a.loc,
                                           type.clone(im.builder.getF32Type()), *t);
    operands.step.positive = GreaterMaskOp::create(im.builder, a.loc,
                                                   operands.step.asFloat.getType(),
                                                   operands.step.asFloat, a.constant(0.0));
  }

  operands.groups.resize(kinds);
  for (int k = 0; k < kinds; ++k)
    for (int i = 0; i < n; ++i) {
      auto value = im.input(node, 2 + k * n + i);
      if (failed(value))
        return failure();
      auto type = cast<RankedTensorType>(value->getType());
      if (!type.getElementType().isF32())
        return im.nodeError(node) << "input '" << node.input(2 + k * n + i)
                                  << "' must be an f32 tensor, got " << type;
      Type expected = operands.groups[0].size() > static_cast<size_t>(i)
                          ? operands.groups[0][i].getType()
                          : Type(type);
      if (type != expected)
        return im.nodeError(node) << "input '" << node.input(2 + k * n + i) << "' has type "
                                  << type << ", but the tensor it updates has " << expected;
      operands.groups[k].push_back(*value);
    }
  return operands;
}

/// Reads an attribute in [0, 1] (a decay rate).
FailureOr<float> unitAttr(OnnxImporter &im, const onnx::NodeProto &node, StringRef name,
                          std::optional<float> fallback) {
  if (!fallback) {
    auto present = im.attribute(node, name, onnx::AttributeProto::FLOAT);
    if (failed(present))
      return failure();
    if (!*present)
      return im.nodeError(node) << "the attribute '" << name << "' is required";
  }
  auto value = im.floatAttr(node, name, fallback.value_or(0.0f));
  if (failed(value))
    return failure();
  if (!(*value >= 0.0f && *value <= 1.0f))
    return im.nodeError(node) << "the attribute '" << name << "' must be in [0, 1], got "
                              << *value;
  return *value;
}

/// G + norm_coefficient * X: the gradient of the L2 term added.
Value regularized(Arithmetic &a, float normCoefficient, Value x, Value g) {
  return normCoefficient == 0.0f ? g : a.add(a.scale(normCoefficient, x), g);
}

} // namespace

/// Adagrad: r = R / (1 + T decay); H' = H + G_r^2; X' = X - r G_r / (sqrt(H') + eps).
static LogicalResult importAdagrad(OnnxImporter &im, const onnx::NodeProto &node) {
  Arithmetic a{im, im.nodeLoc(node)};
  auto decay = im.floatAttr(node, "decay_factor", 0.0f);
  auto epsilon = im.floatAttr(node, "epsilon", 1e-6f);
  auto norm = im.floatAttr(node, "norm_coefficient", 0.0f);
  if (failed(decay) || failed(epsilon) || failed(norm))
    return failure();
  auto ops = readOperands(im, node, 3, a);
  if (failed(ops))
    return failure();
  Value rate = ops->step.known
                   ? a.scale(1.0 / (1.0 + static_cast<double>(*ops->step.known) * *decay),
                             ops->rate)
                   : a.div(ops->rate, a.add(a.constant(1.0), a.scale(*decay, ops->step.asFloat)));
  size_t n = ops->groups[0].size();
  for (size_t i = 0; i < n; ++i) {
    Value x = ops->groups[0][i], g = ops->groups[1][i], h = ops->groups[2][i];
    Value gr = regularized(a, *norm, x, g);
    Value hNew = a.add(h, a.mul(gr, gr));
    Value step = a.div(a.mul(rate, gr), a.add(a.sqrt(hNew), a.constant(*epsilon)));
    im.define(node, i, a.sub(x, step));
    im.define(node, n + i, hNew);
  }
  return success();
}

/// Momentum: V' = alpha V + beta_T G_r (beta_T = 1 at T = 0); X' = X - R V'
/// (standard) or X - R (G_r + alpha V') (nesterov).
static LogicalResult importMomentum(OnnxImporter &im, const onnx::NodeProto &node) {
  Arithmetic a{im, im.nodeLoc(node)};
  auto alpha = unitAttr(im, node, "alpha", std::nullopt);
  if (failed(alpha))
    return failure();
  auto beta = im.attribute(node, "beta", onnx::AttributeProto::FLOAT);
  auto norm = im.attribute(node, "norm_coefficient", onnx::AttributeProto::FLOAT);
  auto mode = im.attribute(node, "mode", onnx::AttributeProto::STRING);
  if (failed(beta) || failed(norm) || failed(mode))
    return failure();
  if (!*beta || !*norm || !*mode)
    return im.nodeError(node) << "alpha, beta, mode and norm_coefficient are required";
  const std::string &modeName = (*mode)->s();
  if (modeName != "standard" && modeName != "nesterov")
    return im.nodeError(node) << "mode '" << modeName << "' is not 'standard' or 'nesterov'";
  auto ops = readOperands(im, node, 3, a);
  if (failed(ops))
    return failure();
  float betaValue = (*beta)->f();
  Value betaT = ops->step.known
                    ? a.constant(*ops->step.known > 0 ? betaValue : 1.0)
                    : a.add(a.constant(1.0), a.scale(betaValue - 1.0, ops->step.positive));
  size_t n = ops->groups[0].size();
  for (size_t i = 0; i < n; ++i) {
    Value x = ops->groups[0][i], g = ops->groups[1][i], v = ops->groups[2][i];
    Value gr = regularized(a, (*norm)->f(), x, g);
    Value vNew = a.add(a.scale(*alpha, v), a.mul(betaT, gr));
    Value direction = modeName == "standard" ? vNew : a.add(gr, a.scale(*alpha, vNew));
    im.define(node, i, a.sub(x, a.mul(ops->rate, direction)));
    im.define(node, n + i, vNew);
  }
  return success();
}

/// Adam: V' = alpha V + (1 - alpha) G_r; H' = beta H + (1 - beta) G_r^2;
/// X' = (1 - post) (X - r_T V' / (sqrt(H') + eps)), r_T = R sqrt(1 - beta^T)
/// / (1 - alpha^T) for T > 0, else R.
static LogicalResult importAdam(OnnxImporter &im, const onnx::NodeProto &node) {
  Arithmetic a{im, im.nodeLoc(node)};
  auto alpha = unitAttr(im, node, "alpha", 0.9f);
  auto beta = unitAttr(im, node, "beta", 0.999f);
  auto epsilon = im.floatAttr(node, "epsilon", 1e-6f);
  auto norm = im.floatAttr(node, "norm_coefficient", 0.0f);
  auto post = im.floatAttr(node, "norm_coefficient_post", 0.0f);
  if (failed(alpha) || failed(beta) || failed(epsilon) || failed(norm) || failed(post))
    return failure();
  auto ops = readOperands(im, node, 4, a);
  if (failed(ops))
    return failure();
  Value rate;
  if (ops->step.known) {
    double t = static_cast<double>(*ops->step.known);
    rate = t > 0 ? a.scale(std::sqrt(1.0 - std::pow(static_cast<double>(*beta), t)) /
                               (1.0 - std::pow(static_cast<double>(*alpha), t)),
                           ops->rate)
                 : ops->rate;
  } else {
    // At T = 0 both corrections are 1: (1 - mask) makes numerator and
    // denominator 1 there instead of 0 / 0, and adds 0 elsewhere.
    Value atZero = a.sub(a.constant(1.0), ops->step.positive);
    Value numerator = a.add(a.sqrt(a.sub(a.constant(1.0), ops->step.power(a, *beta))), atZero);
    Value denominator = a.add(a.sub(a.constant(1.0), ops->step.power(a, *alpha)), atZero);
    rate = a.mul(ops->rate, a.div(numerator, denominator));
  }
  size_t n = ops->groups[0].size();
  for (size_t i = 0; i < n; ++i) {
    Value x = ops->groups[0][i], g = ops->groups[1][i], v = ops->groups[2][i],
          h = ops->groups[3][i];
    Value gr = regularized(a, *norm, x, g);
    Value vNew = a.add(a.scale(*alpha, v), a.scale(1.0 - *alpha, gr));
    Value hNew = a.add(a.scale(*beta, h), a.scale(1.0 - *beta, a.mul(gr, gr)));
    Value hSqrt = a.add(a.sqrt(hNew), a.constant(*epsilon));
    Value xNew = a.sub(x, a.mul(rate, a.div(vNew, hSqrt)));
    im.define(node, i, a.scale(1.0 - *post, xNew));
    im.define(node, n + i, vNew);
    im.define(node, 2 * n + i, hNew);
  }
  return success();
}

/// Gradient(xs, zs, y): d y / d x for each x of xs, y differentiated through
/// the ops imported so far, the gradient of a non-scalar y being that of the
/// sum of its elements (a seed of ones). The node's inputs must be the
/// tensors xs and zs name (the values the graph computes): the gradient at
/// other values would need the graph recomputed, which is refused.
static LogicalResult importGradient(OnnxImporter &im, const onnx::NodeProto &node) {
  auto xs = im.attribute(node, "xs", onnx::AttributeProto::STRINGS);
  auto zs = im.attribute(node, "zs", onnx::AttributeProto::STRINGS);
  auto y = im.attribute(node, "y", onnx::AttributeProto::STRING);
  if (failed(xs) || failed(zs) || failed(y))
    return failure();
  if (!*xs || !*y)
    return im.nodeError(node) << "the attributes 'xs' and 'y' are required";
  SmallVector<std::string> named((*xs)->strings().begin(), (*xs)->strings().end());
  if (*zs)
    named.append((*zs)->strings().begin(), (*zs)->strings().end());
  if (node.input_size() != static_cast<int>(named.size()))
    return im.nodeError(node) << "expects one input per name of xs and zs (" << named.size()
                              << "), got " << node.input_size();
  for (int i = 0; i < node.input_size(); ++i)
    if (node.input(i) != named[i])
      return im.nodeError(node) << "input " << i << " is '" << node.input(i)
                                << "', not the tensor '" << named[i]
                                << "' it names: gradients at other values than the graph's "
                                   "own are not supported";
  int count = (*xs)->strings_size();
  if (node.output_size() > count)
    return im.nodeError(node) << "has " << node.output_size() << " outputs for " << count
                              << " tensors in xs";
  auto target = im.values.find((*y)->s());
  if (target == im.values.end() || !target->second.value)
    return im.nodeError(node) << "y names '" << (*y)->s()
                              << "', which no earlier node, input or initializer computes as "
                                 "a float tensor";
  Value output = target->second.value;
  auto outputType = cast<RankedTensorType>(output.getType());
  if (!isa<FloatType>(outputType.getElementType()))
    return im.nodeError(node) << "y must be a float tensor, got " << outputType;
  SmallVector<Value> wrt;
  for (int i = 0; i < count; ++i) {
    // A Transpose that GEMMs read as a flag has no value of its own that y
    // depends on: its gradient would come out zero.
    if (im.isTransposed(node, i))
      return im.nodeError(node) << "xs names '" << node.input(i)
                                << "', a Transpose that GEMMs fold: differentiate with "
                                   "respect to its input instead";
    auto x = im.input(node, i);
    if (failed(x))
      return failure();
    if (!isa<FloatType>(cast<RankedTensorType>(x->getType()).getElementType()))
      return im.nodeError(node) << "xs names '" << node.input(i)
                                << "', which is not a float tensor";
    wrt.push_back(*x);
  }
  Location loc = im.nodeLoc(node);
  Value seed = ConstantOp::create(
      im.builder, loc,
      DenseElementsAttr::get(outputType, im.builder.getFloatAttr(outputType.getElementType(), 1.0)));
  // In a training algorithm, the scalar loss's seed is what loss scaling
  // replaces by the scale; the gradients are unscaled by it (by 1 until then).
  bool scaled = im.seedsLoss && outputType.getRank() == 0 && outputType.getElementType().isF32();
  if (scaled)
    seed.getDefiningOp()->setAttr(kLossSeedAttr, im.builder.getUnitAttr());
  SmallVector<Value> grads;
  if (failed(buildReverseGradients(*im.builder.getInsertionBlock(), output, seed, wrt, im.builder,
                                   grads)))
    return im.nodeError(node) << "cannot differentiate '" << (*y)->s() << "' (see above)";
  for (int i = 0; i < node.output_size(); ++i)
    im.define(node, i,
              scaled && cast<RankedTensorType>(grads[i].getType()).getElementType().isF32()
                  ? UnscaleOp::create(im.builder, loc, grads[i].getType(), grads[i], seed)
                        .getResult()
                  : grads[i]);
  return success();
}

ArrayRef<OnnxImporter::Registration> mlir::amp::onnx_import::trainingRules() {
  static const OnnxImporter::Registration rules[] = {
      {{"ai.onnx.preview.training", "Gradient", 1, 1,
        "inputs are the tensors xs and zs name; y differentiable through amp ops"},
       &importGradient},
      {{"ai.onnx.preview.training", "Adagrad", 1, 1, "f32 tensors, T an int64 scalar"},
       &importAdagrad},
      {{"ai.onnx.preview.training", "Momentum", 1, 1, "f32 tensors, T an int64 scalar"},
       &importMomentum},
      {{"ai.onnx.preview.training", "Adam", 1, 1, "f32 tensors, T an int64 scalar"},
       &importAdam},
  };
  return rules;
}
