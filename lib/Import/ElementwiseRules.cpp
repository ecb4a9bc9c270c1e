//===- ElementwiseRules.cpp - ONNX import: elementwise arithmetic and activations ===//
//
// Each rule imports one node; its registry row (at the end) says which op
// type, domain and op sets it handles and what it refuses.
//
//===----------------------------------------------------------------------===//

#include "OnnxImporterImpl.h"

using namespace mlir;
using namespace mlir::amp;
using namespace mlir::amp::onnx_import;

/// Add, Sub, Mul or Div of compile-time integers (a shape computation);
/// Div truncates, as ONNX's integer Div.
static LogicalResult foldIntegers(OnnxImporter &im, const onnx::NodeProto &node,
                                  const GraphValue &a, const GraphValue &b) {
  const std::string &op = node.op_type();
  return foldIntegerElementwise(
      im, node, {&a, &b}, [&](ArrayRef<int64_t> v, std::string &error) -> int64_t {
        if (op == "Div" && v[1] == 0) {
          error = "integer division by zero";
          return 0;
        }
        return op == "Add" ? v[0] + v[1] : op == "Sub" ? v[0] - v[1] : op == "Mul" ? v[0] * v[1]
                                                                                  : v[0] / v[1];
      });
}

template <typename OpTy>
static LogicalResult importBinary(OnnxImporter &im, const onnx::NodeProto &node) {
  const GraphValue *ia = im.integerInput(node, 0), *ib = im.integerInput(node, 1);
  if (ia && ib)
    return foldIntegers(im, node, *ia, *ib);
  auto a = im.input(node, 0), b = im.input(node, 1);
  if (failed(a) || failed(b))
    return failure();
  Type element = cast<RankedTensorType>(a->getType()).getElementType();
  if (element != cast<RankedTensorType>(b->getType()).getElementType())
    return im.nodeError(node) << "operands have different element types";
  auto result = buildBroadcast<OpTy>(im.builder, im.nodeLoc(node), *a, *b);
  if (failed(result))
    return im.nodeError(node) << "shapes " << a->getType() << " and " << b->getType()
                              << " do not broadcast";
  im.define(node, 0, *result);
  return success();
}

static LogicalResult importLeakyRelu(OnnxImporter &im, const onnx::NodeProto &node) {
  auto x = im.input(node, 0);
  auto alpha = im.floatAttr(node, "alpha", 0.01f);
  if (failed(x) || failed(alpha))
    return failure();
  im.define(node, 0,
            LeakyReluOp::create(im.builder, im.nodeLoc(node), x->getType(), *x,
                                im.builder.getF32FloatAttr(*alpha)));
  return success();
}

template <typename OpTy>
static LogicalResult importUnary(OnnxImporter &im, const onnx::NodeProto &node) {
  auto x = im.input(node, 0);
  if (failed(x))
    return failure();
  im.define(node, 0, OpTy::create(im.builder, im.nodeLoc(node), x->getType(), *x));
  return success();
}

/// Gelu (opset 20): exact (erf) or, with approximate="tanh", the tanh form.
static LogicalResult importGelu(OnnxImporter &im, const onnx::NodeProto &node) {
  auto x = im.input(node, 0);
  auto approximate = im.stringAttr(node, "approximate", "none");
  if (failed(x) || failed(approximate))
    return failure();
  if (*approximate != "none" && *approximate != "tanh")
    return im.nodeError(node) << "approximate '" << *approximate
                              << "' is not one of 'none' and 'tanh'";
  if (!isa<FloatType>(cast<RankedTensorType>(x->getType()).getElementType()))
    return im.nodeError(node) << "expects float inputs";
  im.define(node, 0,
            GeluOp::create(im.builder, im.nodeLoc(node), x->getType(), *x,
                           *approximate == "tanh"));
  return success();
}

/// Pow with a constant scalar exponent (x^2 of a decomposed layer norm, a
/// tanh-GELU's x^3), float or integer.
static LogicalResult importPow(OnnxImporter &im, const onnx::NodeProto &node) {
  auto x = im.input(node, 0);
  if (failed(x))
    return failure();
  if (!isa<FloatType>(cast<RankedTensorType>(x->getType()).getElementType()))
    return im.nodeError(node) << "expects a float base";
  float exponent;
  auto it = im.hasInput(node, 1) ? im.values.find(node.input(1)) : im.values.end();
  if (it != im.values.end() && it->second.integers) {
    if (it->second.integers->size() != 1)
      return im.nodeError(node) << "the exponent must be a constant scalar";
    exponent = static_cast<float>(it->second.integers->front());
  } else {
    auto value = im.floatConstantInput(node, 1, 1.0f, "the exponent");
    if (failed(value))
      return failure();
    exponent = *value;
  }
  im.define(node, 0,
            PowOp::create(im.builder, im.nodeLoc(node), x->getType(), *x,
                          im.builder.getF32FloatAttr(exponent)));
  return success();
}

/// Clip: max(x, min) then min(., max), each bound optional (an empty or
/// absent input); ReLU6 exports as Clip(x, 0, 6).
static LogicalResult importClip(OnnxImporter &im, const onnx::NodeProto &node) {
  auto x = im.input(node, 0);
  if (failed(x))
    return failure();
  if (!isa<FloatType>(cast<RankedTensorType>(x->getType()).getElementType()))
    return im.nodeError(node) << "expects float inputs";
  Value result = *x;
  for (int bound : {1, 2}) {
    if (!im.hasInput(node, bound))
      continue;
    auto limit = im.input(node, bound);
    if (failed(limit))
      return failure();
    if (cast<RankedTensorType>(limit->getType()).getRank() != 0)
      return im.nodeError(node) << "min and max must be scalars";
    if (cast<RankedTensorType>(limit->getType()).getElementType() !=
        cast<RankedTensorType>(result.getType()).getElementType())
      return im.nodeError(node) << "min and max must have the input's element type";
    Location loc = im.nodeLoc(node);
    result = bound == 1 ? MaximumOp::create(im.builder, loc, result.getType(), result, *limit)
                              .getResult()
                        : MinimumOp::create(im.builder, loc, result.getType(), result, *limit)
                              .getResult();
  }
  im.define(node, 0, result);
  return success();
}

/// Cast between float types (PyTorch writes one around the bounds of
/// clamp and relu6): amp.cast, or nothing when the type does not change; a
/// float64 constant is folded into a constant of the target type. Other
/// casts are refused.
static LogicalResult importCast(OnnxImporter &im, const onnx::NodeProto &node) {
  auto to = im.intAttr(node, "to", 0);
  if (failed(to))
    return failure();
  auto target = im.elementType(*to);
  // Compile-time integers (a shape computation, a bool flag) stay integers
  // for an int64 target and become a float constant for a float one.
  if (const GraphValue *integers = im.integerInput(node, 0)) {
    auto shape = integerShape(*integers);
    if (succeeded(target) && target->isInteger(64)) {
      im.defineIntegers(node, 0, *integers->integers, shape);
      return success();
    }
    if (*to == onnx::TensorProto::BOOL) { // 0/1
      SmallVector<int64_t> flags;
      for (int64_t v : *integers->integers)
        flags.push_back(v != 0);
      im.defineIntegers(node, 0, flags, shape);
      return success();
    }
    if (succeeded(target) && target->isInteger(32)) { // kept as int64 values
      for (int64_t v : *integers->integers)
        if (v < INT32_MIN || v > INT32_MAX)
          return im.nodeError(node) << "the value " << v << " does not fit int32";
      im.defineIntegers(node, 0, *integers->integers, shape);
      return success();
    }
    if (succeeded(target) && isa<FloatType>(*target)) {
      SmallVector<APFloat> converted;
      for (int64_t v : *integers->integers) {
        APFloat f(static_cast<double>(v));
        bool lost;
        f.convert(cast<FloatType>(*target).getFloatSemantics(), APFloat::rmNearestTiesToEven,
                  &lost);
        converted.push_back(f);
      }
      im.define(node, 0,
                ConstantOp::create(im.builder, im.nodeLoc(node),
                                   DenseElementsAttr::get(
                                       RankedTensorType::get(shape, *target), converted)));
      return success();
    }
  }
  // Booleans at run time are 0/1 masks (GraphValue::mask): a cast to bool
  // of a mask keeps it, of a float makes x != 0 one; a cast of a mask to a
  // float type is a float 0/1 tensor.
  if (*to == onnx::TensorProto::BOOL) {
    auto x = im.input(node, 0);
    if (failed(x))
      return failure();
    if (!isa<FloatType>(cast<RankedTensorType>(x->getType()).getElementType()))
      return im.nodeError(node) << "casts to bool only float tensors at run time";
    Location loc = im.nodeLoc(node);
    im.defineMask(node, 0, im.isMask(node, 0) ? *x : im.zeroMask(im.zeroMask(*x, loc), loc));
    return success();
  }
  if (failed(target) || !isa<FloatType>(*target))
    return im.nodeError(node) << "only casts to float types (of float, int64 or int32 tensors "
                                 "and booleans) and to bool are supported";
  // A float64 constant becomes a constant of the target type (rounded to
  // nearest even), as ONNX's Cast computes it.
  if (auto it = im.hasInput(node, 0) ? im.values.find(node.input(0)) : im.values.end();
      it != im.values.end() && it->second.doubles) {
    const auto &semantics = cast<FloatType>(*target).getFloatSemantics();
    SmallVector<APFloat> converted;
    for (APFloat v : it->second.doubles.getValues<APFloat>()) {
      bool lost;
      v.convert(semantics, APFloat::rmNearestTiesToEven, &lost);
      converted.push_back(v);
    }
    auto type = it->second.doubles.getType().clone(*target);
    im.define(node, 0,
              ConstantOp::create(im.builder, im.nodeLoc(node),
                                 DenseElementsAttr::get(type, converted)));
    return success();
  }
  auto x = im.input(node, 0);
  if (failed(x))
    return failure();
  auto type = cast<RankedTensorType>(x->getType());
  Value result = *x; // int64 or int32 values (ids, a mask input) convert too
  if (type.getElementType() != *target)
    result = CastOp::create(im.builder, im.nodeLoc(node), type.clone(*target), *x);
  im.define(node, 0, result);
  return success();
}

/// Max and Min of any number of inputs, folded pairwise with broadcasting.
template <typename OpTy>
static LogicalResult importVariadic(OnnxImporter &im, const onnx::NodeProto &node) {
  auto first = im.input(node, 0);
  if (failed(first))
    return failure();
  if (!isa<FloatType>(cast<RankedTensorType>(first->getType()).getElementType()))
    return im.nodeError(node) << "expects float inputs";
  Value result = *first;
  for (int i = 1; i < node.input_size(); ++i) {
    auto next = im.input(node, i);
    if (failed(next))
      return failure();
    auto folded = buildBroadcast<OpTy>(im.builder, im.nodeLoc(node), result, *next);
    if (failed(folded))
      return im.nodeError(node) << "inputs do not broadcast";
    result = *folded;
  }
  im.define(node, 0, result);
  return success();
}

/// Dropout (op set 13: ratio and training_mode are inputs, which must be
/// constants). In training mode with a ratio above 0 it is amp.dropout on
/// the model's step counter, seeded by the node's `seed` or, without one,
/// a hash of its name (so each dropout draws its own mask); otherwise the
/// identity. The mask output (bool) is not supported.
static LogicalResult importDropout(OnnxImporter &im, const onnx::NodeProto &node) {
  auto x = im.input(node, 0);
  if (failed(x))
    return failure();
  if (im.isRead(node, 1))
    return im.nodeError(node) << "the mask output is not supported";
  auto ratioValue = im.floatConstantInput(node, 1, 0.5f, "ratio");
  if (failed(ratioValue))
    return failure();
  float ratio = *ratioValue;
  bool training = false;
  if (im.hasInput(node, 2)) {
    auto it = im.values.find(node.input(2));
    if (it == im.values.end() || !it->second.integers || it->second.integers->size() != 1)
      return im.nodeError(node) << "training_mode must be a constant bool scalar";
    training = it->second.integers->front() != 0;
  }
  if (!(ratio >= 0.0f && ratio < 1.0f))
    return im.nodeError(node) << "ratio " << ratio << " is outside [0, 1)";
  if (!training || ratio == 0.0f) {
    im.define(node, 0, *x); // evaluation, or nothing to drop
    return success();
  }
  uint32_t nameHash = 2166136261u; // FNV-1a of the node's name
  for (char c : im.nodeName(node))
    nameHash = (nameHash ^ static_cast<uint8_t>(c)) * 16777619u;
  auto seed = im.intAttr(node, "seed", nameHash);
  if (failed(seed))
    return failure();
  im.define(node, 0,
            DropoutOp::create(im.builder, im.nodeLoc(node), x->getType(), *x, im.stepCounter(),
                              im.builder.getF32FloatAttr(ratio),
                              im.builder.getI64IntegerAttr(*seed)));
  return success();
}

ArrayRef<OnnxImporter::Registration> mlir::amp::onnx_import::elementwiseRules() {
  static const OnnxImporter::Registration rules[] = {
      {{"", "Add", 13, 0, "broadcasting"}, &importBinary<AddOp>},
      {{"", "Sub", 13, 0, "broadcasting"}, &importBinary<SubOp>},
      {{"", "Mul", 13, 0, "broadcasting"}, &importBinary<MulOp>},
      {{"", "Div", 13, 0, "broadcasting"}, &importBinary<DivOp>},
      {{"", "Exp", 13, 0, ""}, &importUnary<ExpOp>},
      {{"", "Log", 13, 0, ""}, &importUnary<LogOp>},
      {{"", "Neg", 13, 0, ""}, &importUnary<NegOp>},
      {{"", "Relu", 13, 0, ""}, &importUnary<ReluOp>},
      {{"", "LeakyRelu", 13, 0, ""}, &importLeakyRelu},
      {{"", "Dropout", 13, 0, "constant ratio and training_mode, no mask output"}, &importDropout},
      {{"", "Tanh", 13, 0, ""}, &importUnary<TanhOp>},
      {{"", "Sigmoid", 13, 0, ""}, &importUnary<SigmoidOp>},
      {{"", "Sqrt", 13, 0, ""}, &importUnary<SqrtOp>},
      {{"", "Erf", 13, 0, ""}, &importUnary<ErfOp>},
      {{"", "Gelu", 20, 0, "approximate none or tanh"}, &importGelu},
      {{"", "Pow", 7, 0, "a constant scalar exponent"}, &importPow},
      // Clip-11 takes min and max as inputs; 12 and 13 only added types.
      {{"", "Clip", 11, 0, "scalar bounds"}, &importClip},
      {{"", "Max", 12, 0, "broadcasting"}, &importVariadic<MaximumOp>},
      {{"", "Cast", 13, 0, "to float types (of floats, int64, int32) or to bool (a mask)"}, &importCast},
      {{"", "Min", 12, 0, "broadcasting"}, &importVariadic<MinimumOp>},
  };
  return rules;
}
