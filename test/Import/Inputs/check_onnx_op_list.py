"""Checks amp-opt --list-onnx-ops (read from stdin) against ONNX's own
operator schemas: every listed op exists in its domain at every op set of
its range (so a misspelt op type, or a range reaching an op set that lacks
the op, fails). Exits non-zero naming the first row that is wrong."""
import sys

from onnx import defs

rows = [line.split(None, 3) for line in sys.stdin.read().splitlines()[1:] if line.strip()]
if not rows:
    sys.exit("no ops listed")
for row in rows:
    op, domain, opsets = row[0], row[1], row[2]
    since, until = (int(v) for v in opsets.split("-"))
    schema_domain = "" if domain == "ai.onnx" else domain
    for opset in range(since, until + 1):
        try:
            defs.get_schema(op, opset, schema_domain)
        except Exception as error:  # onnx raises SchemaError
            sys.exit(f"{op}: no ONNX schema at opset {opset}: {error}")
print(f"{len(rows)} ops checked")
