//===- FuseWeightCasts.cpp - keep the low-precision weights as state ------===//
//
// After autocast, each parameter read in low precision is cast once at the
// start of every step. This pass keeps that low copy as state instead
// (`NAME.low`, initialised from the initial weights) and produces the next
// step's copy from the updated master weights at the end of this step; the
// lowering fuses that cast into the optimizer update, which then writes the
// master weights and their low copy in one pass.
//
//===----------------------------------------------------------------------===//

#include "amp/Transforms/Passes.h"

#include "mlir/IR/Builders.h"

namespace mlir::amp {
#define GEN_PASS_DEF_AMPFUSEWEIGHTCASTS
#include "amp/Transforms/Passes.h.inc"
} // namespace mlir::amp

using namespace mlir;
using namespace mlir::amp;

namespace {

/// `init` converted to `element` (round to nearest even).
DenseElementsAttr convertInit(DenseElementsAttr init, Type element) {
  auto semantics = &cast<FloatType>(element).getFloatSemantics();
  return cast<DenseFPElementsAttr>(init).mapValues(element, [&](const APFloat &value) {
    APFloat converted = value;
    bool losesInfo;
    converted.convert(*semantics, APFloat::rmNearestTiesToEven, &losesInfo);
    return converted.bitcastToAPInt();
  });
}

struct FuseWeightCastsPass : public amp::impl::AmpFuseWeightCastsBase<FuseWeightCastsPass> {
  void runOnOperation() override {
    ModuleOp module = getOperation();
    auto step = module.lookupSymbol<func::FuncOp>("train_step");
    auto forward = module.lookupSymbol<func::FuncOp>("forward");
    if (!step || !forward)
      return;
    // Initial parameter values live on @forward's arguments.
    llvm::StringMap<DenseElementsAttr> inits;
    for (unsigned i = 0; i < forward.getNumArguments(); ++i)
      if (auto r = getRole(forward.getArgAttrDict(i)); r && r->first == role::kParam)
        if (auto init = forward.getArgAttrOfType<DenseElementsAttr>(i, role::kInit))
          inits[r->second] = init;

    auto ret = cast<func::ReturnOp>(step.getBody().front().getTerminator());
    SmallVector<Value> results(ret.getOperands());
    SmallVector<DictionaryAttr> resultAttrs;
    for (unsigned i = 0; i < results.size(); ++i)
      resultAttrs.push_back(step.getResultAttrDict(i) ? step.getResultAttrDict(i)
                                                      : DictionaryAttr::get(&getContext()));
    bool changed = false;
    unsigned oldArguments = step.getNumArguments();
    SmallVector<DictionaryAttr> newArgAttrs; // of the low copies, appended
    for (unsigned a = 0; a < oldArguments; ++a) {
      BlockArgument param = step.getArgument(a);
      auto r = getRole(step.getArgAttrDict(a));
      if (!r || r->first != role::kParam || !inits.count(r->second))
        continue;
      // Exactly one cast to a low type, and one optimizer update.
      CastOp lowCast;
      OptimizerUpdateOpInterface update;
      bool fusable = true;
      for (Operation *user : param.getUsers()) {
        if (auto c = dyn_cast<CastOp>(user); c && !c.getType().getElementType().isF32()) {
          fusable = fusable && !lowCast;
          lowCast = c;
        } else if (auto u = dyn_cast<OptimizerUpdateOpInterface>(user);
                   u && u.getParam() == param) {
          fusable = fusable && !update;
          update = u;
        }
      }
      if (!fusable || !lowCast || !update)
        continue;
      Type element = lowCast.getType().getElementType();
      std::string name = (r->second + ".low").str();
      Builder b(&getContext());
      // The signature is set once below: inserting arguments one by one
      // rebuilds the function type and attributes each time (quadratic).
      BlockArgument copy = step.getBody().front().addArgument(lowCast.getType(),
                                                              lowCast.getLoc());
      newArgAttrs.push_back(
          roleAttrs(b, role::kState, name, convertInit(inits.lookup(r->second), element)));
      lowCast.getResult().replaceAllUsesWith(copy);
      lowCast.erase();
      // The next step's copy, cast from the updated master weights.
      OpBuilder after(update->getBlock(), std::next(update->getIterator()));
      Value next = CastOp::create(after, update->getLoc(), copy.getType(),
                                  update.getNewParam());
      next.getDefiningOp()->setAttr(
          "amp.rule", b.getStringAttr("low-precision weight copy, written by the update"));
      results.push_back(next);
      resultAttrs.push_back(roleAttrs(b, role::kState, name));
      changed = true;
    }
    if (!changed)
      return;
    OpBuilder b(ret);
    func::ReturnOp::create(b, ret.getLoc(), results);
    ret.erase();
    SmallVector<DictionaryAttr> argAttrs;
    step.getAllArgAttrs(argAttrs);
    argAttrs.resize(oldArguments);
    llvm::append_range(argAttrs, newArgAttrs);
    step.setType(FunctionType::get(&getContext(), step.getBody().front().getArgumentTypes(),
                                   ValueRange(results).getTypes()));
    step.setAllArgAttrs(argAttrs);
    step.setAllResultAttrs(resultAttrs);
  }
};

} // namespace
