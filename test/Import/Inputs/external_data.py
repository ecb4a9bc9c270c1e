"""ONNX models whose initializers live in external files, and ones whose
external data tries to escape the model's folder or its file.

usage: external_data.py OUTDIR
Writes OUTDIR/inline.onnx (weights inline), OUTDIR/outside.bin, and in
OUTDIR/model/: ext.onnx + weights.bin (every initializer external), and one
model per case, named after it: inner_symlink.onnx is accepted (a link that
stays inside the folder), the others are refused.
"""
import copy
import os
import sys

import onnx
from onnx.external_data_helper import convert_model_to_external_data

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "Inputs"))
from onnx_models import mlp2  # noqa: E402


def with_entries(model, tensor_name, entries):
    """A copy of `model` whose tensor `tensor_name` has these external entries."""
    changed = copy.deepcopy(model)
    for tensor in changed.graph.initializer:
        if tensor.name == tensor_name:
            del tensor.external_data[:]
            for key, value in entries.items():
                tensor.external_data.add(key=key, value=value)
    return changed


def main(out):
    folder = os.path.join(out, "model")
    os.makedirs(folder, exist_ok=True)
    onnx.save(mlp2(), os.path.join(out, "inline.onnx"))
    with open(os.path.join(out, "outside.bin"), "wb") as f:
        f.write(bytes(4096))

    ext = mlp2()
    convert_model_to_external_data(ext, all_tensors_to_one_file=True, location="weights.bin",
                                   size_threshold=0)
    onnx.save(ext, os.path.join(folder, "ext.onnx"))  # writes model/weights.bin too
    # The metadata as written, without the data (w1: 8x4 floats, 128 bytes).
    ext = onnx.load(os.path.join(folder, "ext.onnx"), load_external_data=False)
    w1 = {e.key: e.value for t in ext.graph.initializer if t.name == "w1"
          for e in t.external_data}
    size = os.path.getsize(os.path.join(folder, "weights.bin"))

    os.symlink(os.path.join("..", "outside.bin"), os.path.join(folder, "link.bin"))
    os.symlink("weights.bin", os.path.join(folder, "inner_link.bin"))
    # A sibling folder whose name starts with the model folder's.
    os.makedirs(folder + "2", exist_ok=True)
    with open(os.path.join(folder + "2", "weights.bin"), "wb") as f:
        f.write(bytes(4096))
    os.symlink(os.path.join("..", "model2", "weights.bin"), os.path.join(folder, "sibling.bin"))
    cases = {
        "absolute": {"location": os.path.abspath(os.path.join(out, "outside.bin"))},
        "dotdot": {"location": "../outside.bin"},
        "dotdot_inner": {"location": "sub/../../outside.bin"},
        "symlink": {"location": "link.bin", "offset": "0", "length": "128"},
        "sibling_symlink": {"location": "sibling.bin", "offset": "0", "length": "128"},
        "inner_symlink": {**w1, "location": "inner_link.bin"},
        "missing": {"location": "absent.bin"},
        "folder": {"location": "."},
        "past_end": {**w1, "offset": str(size + 64)},
        "long": {**w1, "length": str(size + 1)},
        "short": {**w1, "length": "64"},
        "bad_offset": {**w1, "offset": "-64"},
        "unknown_key": {**w1, "basepath": "/"},
    }
    for name, entries in cases.items():
        onnx.save(with_entries(ext, "w1", entries), os.path.join(folder, name + ".onnx"))


if __name__ == "__main__":
    main(sys.argv[1])
