//===- CastUtils.h - one cast per value and type ----------------*- C++ -*-===//
#ifndef AMP_TRANSFORMS_CASTUTILS_H
#define AMP_TRANSFORMS_CASTUTILS_H

#include "dialects/Amp/AmpOps.h"

#include "llvm/ADT/DenseMap.h"

namespace mlir::amp {

/// True for ranked tensors of f32, bf16 or f16.
bool isFloatTensor(Type type);

/// Hands out casts of values to element types, creating each (value, type)
/// cast once so every use shares it (one cast per parameter per step, for
/// forward and backward alike). A cast is placed right before its first
/// user, which keeps the converted copy's live range (and the arena) short;
/// callers ask in program order, so it dominates every later user.
class CastCache {
public:
  /// `value` converted to `element` for `user` (the value itself if already
  /// that type). `rule` is recorded on a new cast as its `amp.rule`.
  Value get(Value value, Type element, Operation *user, StringRef rule);

private:
  llvm::DenseMap<std::pair<Value, Type>, Value> casts;
};

} // namespace mlir::amp

#endif // AMP_TRANSFORMS_CASTUTILS_H
