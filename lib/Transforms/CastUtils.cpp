//===- CastUtils.cpp - one cast per value and type ------------------------===//

#include "amp/Transforms/CastUtils.h"

#include "mlir/IR/Builders.h"

using namespace mlir;
using namespace mlir::amp;

bool mlir::amp::isFloatTensor(Type type) {
  auto tensor = dyn_cast<RankedTensorType>(type);
  return tensor && isa<Float32Type, BFloat16Type, Float16Type>(tensor.getElementType());
}

Value CastCache::get(Value value, Type element, Operation *user, StringRef rule) {
  auto type = cast<RankedTensorType>(value.getType());
  if (type.getElementType() == element)
    return value;
  Value &cached = casts[{value, element}];
  if (cached)
    return cached;
  OpBuilder builder(user);
  auto castOp = CastOp::create(builder, value.getLoc(),
                               RankedTensorType::get(type.getShape(), element), value);
  castOp->setAttr("amp.rule", builder.getStringAttr(rule));
  cached = castOp.getResult();
  return cached;
}
