//===- PrecisionReport.cpp - autocast's decisions for people --------------===//

#include "amp/Transforms/PrecisionReport.h"
#include "amp/Transforms/CastUtils.h"
#include "amp/Transforms/PrecisionPolicy.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "llvm/Support/JSON.h"

using namespace mlir;
using namespace mlir::amp;

namespace {

func::FuncOp reportedFunction(ModuleOp module) {
  if (auto step = module.lookupSymbol<func::FuncOp>("train_step"))
    return step;
  return module.lookupSymbol<func::FuncOp>("forward");
}

std::string elementName(Type element) {
  if (element.isBF16())
    return "bf16";
  if (element.isF16())
    return "f16";
  return "f32";
}

/// The precision an op computes in: the operand type of an op that may
/// widen its result (a GEMM or convolution accumulating in FP32), else the
/// type of its first float result (or operand); ops on integers only count
/// as f32.
std::string precisionOf(Operation *op) {
  auto precision = dyn_cast<PrecisionOpInterface>(op);
  if (precision && precision.canWidenResult())
    for (Type type : op->getOperandTypes())
      if (isFloatTensor(type))
        return elementName(cast<RankedTensorType>(type).getElementType());
  for (Type type : op->getResultTypes())
    if (isFloatTensor(type))
      return elementName(cast<RankedTensorType>(type).getElementType());
  for (Type type : op->getOperandTypes())
    if (isFloatTensor(type))
      return elementName(cast<RankedTensorType>(type).getElementType());
  return "f32";
}

/// A string made safe inside a double-quoted Graphviz label.
std::string escapeLabel(StringRef text) {
  std::string escaped;
  for (char c : text) {
    if (c == '"' || c == '\\')
      escaped += '\\';
    escaped += c;
  }
  return escaped;
}

std::string ruleOf(Operation *op) {
  if (auto rule = op->getAttrOfType<StringAttr>("amp.rule"))
    return rule.str();
  return "not typed by autocast (precision=fp32 or no autocast run): f32";
}

} // namespace

LogicalResult mlir::amp::writePrecisionReport(ModuleOp module, llvm::raw_ostream &os) {
  func::FuncOp func = reportedFunction(module);
  if (!func)
    return mlir::emitError(module.getLoc(), "no @train_step or @forward to report on");
  int64_t casts = 0;
  llvm::json::OStream json(os, 2);
  json.object([&] {
    auto precision = module->getAttrOfType<StringAttr>("amp.precision");
    json.attribute("function", func.getName());
    json.attribute("precision", precision ? precision.str() : "fp32");
    json.attributeArray("ops", [&] {
      func.walk([&](Operation *op) {
        if (isa<CastOp>(op)) {
          ++casts;
          return;
        }
        if (op->getDialect() != op->getContext()->getLoadedDialect<AmpDialect>())
          return;
        json.object([&] {
          json.attribute("op", op->getName().getStringRef());
          std::string node = nodeNameOf(op);
          if (node.empty())
            json.attribute("node", nullptr);
          else
            json.attribute("node", node);
          json.attribute("precision", precisionOf(op));
          json.attribute("rule", ruleOf(op));
        });
      });
    });
    json.attribute("casts", casts);
  });
  os << "\n";
  return success();
}

LogicalResult mlir::amp::writePrecisionDot(ModuleOp module, llvm::raw_ostream &os) {
  func::FuncOp func = reportedFunction(module);
  if (!func)
    return mlir::emitError(module.getLoc(), "no @train_step or @forward to report on");
  llvm::DenseMap<Operation *, int> ids;
  os << "digraph \"" << func.getName() << "\" {\n  rankdir=TB;\n"
     << "  node [shape=box, style=filled, fontname=\"Helvetica\"];\n";
  auto colour = [](StringRef precision) {
    return precision == "bf16" ? "#8ecae6" : precision == "f16" ? "#b7e4c7" : "#ffd6a5";
  };
  func.walk([&](Operation *op) {
    if (isa<func::FuncOp, func::ReturnOp>(op))
      return;
    int id = ids.size();
    ids[op] = id;
    std::string precision = precisionOf(op), node = nodeNameOf(op);
    os << "  op" << id << " [label=\"" << op->getName().getStringRef() << "\\n" << precision;
    if (!node.empty())
      os << "\\n" << escapeLabel(node);
    os << "\", fillcolor=\"" << colour(precision) << "\""
       << (isa<CastOp>(op) ? ", shape=ellipse" : "") << "];\n";
    for (Value operand : op->getOperands())
      if (Operation *def = operand.getDefiningOp(); def && ids.count(def))
        os << "  op" << ids[def] << " -> op" << id << ";\n";
  });
  os << "  legend [shape=note, fillcolor=white, label=\"bf16: blue, f16: green, f32: "
        "orange; ellipses are casts\"];\n}\n";
  return success();
}
