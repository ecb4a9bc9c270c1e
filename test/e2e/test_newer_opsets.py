"""Ops whose ONNX signature is newer than ONNX 1.12 (op sets 18 to 21), against PyTorch.

Debian's ONNX 1.12 has no node tests for op sets past 17, so this suite
writes its own in the node tests' layout (model.onnx, test_data_set_0 with
input_*.pb and output_*.pb), with PyTorch computing the reference outputs,
and runs them as test_onnx_node_tests runs ONNX's: amp-opt compiles each to an
inference plan, `amp-run forward` runs it, outputs must match within
rtol 1e-5, atol 1e-6. The models are IR version 10, as ONNX writes op set 21.
"""
import os

import numpy as np
import onnx
import torch
from onnx import TensorProto, helper, numpy_helper

from common import parse_args, workdir
from test_onnx_node_tests import run_test

FLOAT = TensorProto.FLOAT


def node_test(opset, nodes, inputs, outputs, initializers=()):
    """A model of `nodes` at `opset` with its inputs and PyTorch's outputs
    (dicts of name -> array)."""
    graph = helper.make_graph(
        nodes, "test",
        [helper.make_tensor_value_info(n, FLOAT, v.shape) for n, v in inputs.items()],
        [helper.make_tensor_value_info(n, FLOAT, v.shape) for n, v in outputs.items()],
        [numpy_helper.from_array(np.array(v, dtype=np.int64), n) for n, v in initializers])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)],
                              ir_version=10)
    return model, inputs, outputs


def cases(rng):
    x = rng.standard_normal((3, 4, 5)).astype(np.float32) * 3
    t = torch.from_numpy(x)
    f = torch.nn.functional

    def out(tensor):
        return tensor.numpy().astype(np.float32)
    yield "gelu_default", node_test(
        20, [helper.make_node("Gelu", ["x"], ["y"])], {"x": x}, {"y": out(f.gelu(t))})
    yield "gelu_tanh", node_test(
        20, [helper.make_node("Gelu", ["x"], ["y"], approximate="tanh")], {"x": x},
        {"y": out(f.gelu(t, approximate="tanh"))})
    yield "gelu_opset21", node_test(
        21, [helper.make_node("Gelu", ["x"], ["y"], approximate="none")], {"x": x},
        {"y": out(f.gelu(t))})
    yield "reduce_mean_axes_input", node_test(
        18, [helper.make_node("ReduceMean", ["x", "axes"], ["y"])], {"x": x},
        {"y": out(t.mean(dim=(0, 2), keepdim=True))}, [("axes", [0, -1])])
    yield "reduce_mean_all_axes", node_test(
        18, [helper.make_node("ReduceMean", ["x"], ["y"], keepdims=0)], {"x": x},
        {"y": out(t.mean())})
    yield "reduce_max_axes_input", node_test(
        18, [helper.make_node("ReduceMax", ["x", "axes"], ["y"], keepdims=0)], {"x": x},
        {"y": out(t.amax(dim=1))}, [("axes", [1])])
    yield "reduce_min_axes_input", node_test(
        20, [helper.make_node("ReduceMin", ["x", "axes"], ["y"])], {"x": x},
        {"y": out(t.amin(dim=2, keepdim=True))}, [("axes", [2])])
    yield "reduce_max_noop_empty_axes", node_test(
        18, [helper.make_node("ReduceMax", ["x"], ["y"], noop_with_empty_axes=1)], {"x": x},
        {"y": x})
    parts = torch.chunk(t, 2, dim=2)  # 5 into 3 and 2: the last part is the remainder
    yield "split_num_outputs_uneven", node_test(
        18, [helper.make_node("Split", ["x"], ["a", "b"], axis=-1, num_outputs=2)], {"x": x},
        {"a": out(parts[0]), "b": out(parts[1])})
    parts = torch.split(t, [1, 3], dim=1)
    yield "split_sizes_input", node_test(
        18, [helper.make_node("Split", ["x", "sizes"], ["a", "b"], axis=1)], {"x": x},
        {"a": out(parts[0]), "b": out(parts[1])}, [("sizes", [1, 3])])


def write(case_dir, model, inputs, outputs):
    data = os.path.join(case_dir, "test_data_set_0")
    os.makedirs(data)
    onnx.save(model, os.path.join(case_dir, "model.onnx"))
    for kind, values in (("input", inputs), ("output", outputs)):
        for i, (name, array) in enumerate(values.items()):
            with open(os.path.join(data, f"{kind}_{i}.pb"), "wb") as f:
                f.write(numpy_helper.from_array(array, name).SerializeToString())


def main():
    args = parse_args(__doc__)
    failures = []
    with workdir() as tmp:
        for name, (model, inputs, outputs) in cases(np.random.default_rng(7)):
            case_dir = os.path.join(tmp, "cases", f"test_{name}")
            write(case_dir, model, inputs, outputs)
            outcome, detail = run_test(args.bin, case_dir, tmp)
            print(f"{'pass' if outcome == 'pass' else 'FAIL':8} {name}: {outcome}: {detail}")
            if outcome != "pass":
                failures.append(name)
    if failures:
        raise SystemExit(f"failed: {', '.join(failures)}")
    print("every newer-op-set node test matches PyTorch")


if __name__ == "__main__":
    main()
