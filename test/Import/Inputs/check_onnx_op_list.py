"""Checks amp-opt --list-onnx-ops (read from stdin) against ONNX's own
operator schemas: every listed op exists in its domain at every op set of
its range (so a misspelt op type, or a range reaching an op set that lacks
the op, fails). Exits non-zero naming the first row that is wrong.

Debian's ONNX 1.12 knows op sets up to 17: past it, an op must exist at 17
(amp-opt reads ops unchanged since then, or declares their newer signature
in lib/Import/NewerOpsetSchemas.cpp), or be one of the ops new after 17
whose schema amp-opt declares there (NEWER_OPS, with their first op set).
onnxruntime-training's ops (com.microsoft's, and its MaxPoolGrad in the
default domain) have no ONNX schema: they are
counted apart (their imports are checked by test/Import/ort_artifacts.test)."""
import sys

from onnx import defs

ONNX_1_12_MAX_OPSET = 17
NEWER_OPS = {"Gelu": 20}
# onnxruntime-training's ops that it registers in the default domain.
ONNXRUNTIME_DEFAULT_DOMAIN_OPS = {"MaxPoolGrad"}

rows = [line.split(None, 3) for line in sys.stdin.read().splitlines()[1:] if line.strip()]
if not rows:
    sys.exit("no ops listed")
checked = 0
onnxruntime_ops = [row[0] for row in rows
                   if row[1] == "com.microsoft" or row[0] in ONNXRUNTIME_DEFAULT_DOMAIN_OPS]
for row in rows:
    op, domain, opsets = row[0], row[1], row[2]
    if domain == "com.microsoft" or op in ONNXRUNTIME_DEFAULT_DOMAIN_OPS:
        continue
    checked += 1
    since, until = (int(v) for v in opsets.split("-"))
    schema_domain = "" if domain == "ai.onnx" else domain
    if op in NEWER_OPS:
        if since != NEWER_OPS[op]:
            sys.exit(f"{op}: listed from opset {since}, ONNX defines it from {NEWER_OPS[op]}")
        continue
    for opset in range(since, min(until, ONNX_1_12_MAX_OPSET) + 1):
        try:
            defs.get_schema(op, opset, schema_domain)
        except Exception as error:  # onnx raises SchemaError
            sys.exit(f"{op}: no ONNX schema at opset {opset}: {error}")
print(f"{checked} ops checked; onnxruntime's: {', '.join(sorted(onnxruntime_ops))}")
