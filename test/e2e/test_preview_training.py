"""The ai.onnx.preview.training ops. Gradient: ONNX's own two node tests
(test_gradient_of_add and test_gradient_of_add_and_mul, which Debian's ONNX
1.12 test data predate, rebuilt here with their values) and the gradients of
a Gemm + Relu layer, of its scalar sum and of the non-scalar activation
(the sum's gradient), against PyTorch's autograd. The optimizers (Adagrad,
Momentum standard and Nesterov, Adam) against ONNX's own reference implementations
(onnx.backend.test.case.node: apply_adagrad, apply_momentum, apply_nesterov,
apply_adam), beyond the node tests' single case (T = 0, default or fixed
attributes): the step count T at -2, 0, 1 and 7, given at run time (an int64
input) and at compile time (an initializer), two tensors of different
shapes, every attribute set away from its default. Each model is compiled by
amp-opt to an inference plan and run by `amp-run forward`; outputs must
match to rtol 1e-5, atol 1e-6 (the node tests' tolerance)."""
import os
import subprocess
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper
from onnx.backend.test.case.node.adagrad import apply_adagrad
from onnx.backend.test.case.node.adam import apply_adam
from onnx.backend.test.case.node.momentum import apply_momentum, apply_nesterov

from common import parse_args, workdir

DOMAIN = "ai.onnx.preview.training"
SHAPES = [(3,), (2, 4)]


def build(op, groups, outputs, attributes, step, step_at_compile_time):
    inputs = [helper.make_tensor_value_info("R", TensorProto.FLOAT, [])]
    initializers = []
    if step_at_compile_time:
        initializers.append(numpy_helper.from_array(np.array(step, np.int64), "T"))
    else:
        inputs.append(helper.make_tensor_value_info("T", TensorProto.INT64, []))
    names = [f"{g}{i}" for g in groups for i in range(len(SHAPES))]
    inputs += [helper.make_tensor_value_info(n, TensorProto.FLOAT, list(SHAPES[int(n[1:])]))
               for n in names]
    out_names = [f"{g}{i}_new" for g in outputs for i in range(len(SHAPES))]
    out_infos = [helper.make_tensor_value_info(n, TensorProto.FLOAT, list(SHAPES[int(n[1:-4])]))
                 for n in out_names]
    node = helper.make_node(op, ["R", "T", *names], out_names, name=op.lower(), domain=DOMAIN,
                            **attributes)
    graph = helper.make_graph([node], "optimizer", inputs, out_infos, initializers)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17),
                                                    helper.make_opsetid(DOMAIN, 1)])
    onnx.checker.check_model(model)
    return model, out_names


def reference(op, mode, rate, step, tensors, attributes):
    """Per tensor, ONNX's reference update (float32 in, as its tests)."""
    results = []
    for i in range(len(SHAPES)):
        if op == "Adagrad":
            x, g, h = (tensors[k][i] for k in "XGH")
            results.append(apply_adagrad(rate, step, x, g, h, attributes["norm_coefficient"],
                                         attributes["epsilon"], attributes["decay_factor"]))
        elif op == "Momentum":
            x, g, v = (tensors[k][i] for k in "XGV")
            apply = apply_momentum if mode == "standard" else apply_nesterov
            results.append(apply(rate, step, x, g, v, attributes["norm_coefficient"],
                                 attributes["alpha"], attributes["beta"]))
        else:
            x, g, v, h = (tensors[k][i] for k in "XGVH")
            results.append(apply_adam(rate, step, x, g, v, h, attributes["norm_coefficient"],
                                      attributes["norm_coefficient_post"], attributes["alpha"],
                                      attributes["beta"], attributes["epsilon"]))
    # Outputs are grouped by kind: every X_new, then every V_new / H_new.
    return [np.asarray(results[i][k], np.float32)
            for k in range(len(results[0])) for i in range(len(SHAPES))]


CASES = [
    ("Adagrad", "XGH", "XH", None,
     {"decay_factor": 0.25, "epsilon": 1e-3, "norm_coefficient": 0.01}),
    ("Momentum", "XGV", "XV", "standard",
     {"alpha": 0.8, "beta": 0.3, "mode": "standard", "norm_coefficient": 0.02}),
    ("Momentum", "XGV", "XV", "nesterov",
     {"alpha": 0.7, "beta": 0.9, "mode": "nesterov", "norm_coefficient": 0.05}),
    ("Adam", "XGVH", "XVH", None,
     {"alpha": 0.85, "beta": 0.95, "epsilon": 1e-4, "norm_coefficient": 0.01,
      "norm_coefficient_post": 0.1}),
]


def run_model(bin_dir, tmp, tag, model, feeds):
    """Compiles `model` to an inference plan, runs it on `feeds` (name ->
    array) and returns its outputs (name -> array)."""
    onnx.checker.check_model(model)
    path, plan, dump = (os.path.join(tmp, tag + ext) for ext in (".onnx", ".ampplan", ""))
    onnx.save(model, path)
    subprocess.run([os.path.join(bin_dir, "amp-opt"), path, "--emit=plan", "-o", plan],
                   check=True)
    arguments = []
    for name, value in feeds.items():
        np.save(os.path.join(tmp, f"{tag}-{name}.npy"), value)
        arguments += ["--feed", f"{name}={os.path.join(tmp, f'{tag}-{name}.npy')}"]
    subprocess.run([os.path.join(bin_dir, "amp-run"), "forward", plan, *arguments, "--dump",
                    dump], check=True, stdout=subprocess.DEVNULL)
    return {o.name: np.load(os.path.join(dump, f"{o.name}.npy")) for o in model.graph.output}


def gradient_model(nodes, inputs, outputs, initializers=()):
    f32 = TensorProto.FLOAT
    graph = helper.make_graph(
        nodes, "gradient", [helper.make_tensor_value_info(n, f32, s) for n, s in inputs],
        [helper.make_tensor_value_info(n, f32, s) for n, s in outputs], list(initializers))
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17),
                                                   helper.make_opsetid(DOMAIN, 1)])


def check_gradients(bin_dir, tmp):
    """Returns the number of failed comparisons."""
    import torch
    failures = 0

    def report(what, outputs, expected):
        nonlocal failures
        ok = all(outputs[k].shape == np.shape(v) and np.allclose(outputs[k], v, rtol=1e-5,
                                                                 atol=1e-6)
                 for k, v in expected.items())
        worst = max(float(np.abs(outputs[k] - v).max()) for k, v in expected.items())
        print(f"{'pass' if ok else 'FAIL'}  Gradient {what}: max abs diff {worst:.1e}")
        failures += not ok

    # ONNX's test_gradient_of_add: c = a + b, dc/da = dc/db = 1.
    add = gradient_model(
        [helper.make_node("Add", ["a", "b"], ["c"], name="my_add"),
         helper.make_node("Gradient", ["a", "b"], ["dc_da", "dc_db"], name="my_gradient",
                          domain=DOMAIN, xs=["a", "b"], y="c")],
        [("a", []), ("b", [])], [("c", []), ("dc_da", []), ("dc_db", [])])
    a, b = np.array(1.0, np.float32), np.array(2.0, np.float32)
    report("of Add (test_gradient_of_add)", run_model(bin_dir, tmp, "grad-add", add,
                                                      {"a": a, "b": b}),
           {"c": a + b, "dc_da": 1.0, "dc_db": 1.0})

    # ONNX's test_gradient_of_add_and_mul: d = a (a + b); dd/da = 2a + b, dd/db = a.
    add_mul = gradient_model(
        [helper.make_node("Add", ["a", "b"], ["c"], name="my_add"),
         helper.make_node("Mul", ["c", "a"], ["d"], name="my_mul"),
         helper.make_node("Gradient", ["a", "b"], ["dd_da", "dd_db"], name="my_gradient",
                          domain=DOMAIN, xs=["a", "b"], y="d")],
        [("a", []), ("b", [])], [("d", []), ("dd_da", []), ("dd_db", [])])
    report("of Add and Mul (test_gradient_of_add_and_mul)",
           run_model(bin_dir, tmp, "grad-add-mul", add_mul, {"a": a, "b": b}),
           {"d": a * (a + b), "dd_da": 2 * a + b, "dd_db": a})

    # A layer: h = relu(x W^T + b), s = sum(h); gradients of s and of h
    # (non-scalar: that of its sum) w.r.t. W and b, x given as zs.
    rng = np.random.default_rng(1)
    x = rng.standard_normal((4, 5)).astype(np.float32)
    w = rng.standard_normal((3, 5)).astype(np.float32)
    bias = rng.standard_normal(3).astype(np.float32)
    for y, tag in (("s", "of a layer's summed output"), ("h", "of a layer's output (non-scalar)")):
        layer = gradient_model(
            [helper.make_node("Gemm", ["x", "W", "B"], ["z"], name="fc", transB=1),
             helper.make_node("Relu", ["z"], ["h"], name="act"),
             helper.make_node("ReduceSum", ["h"], ["s"], name="sum", keepdims=0),
             helper.make_node("Gradient", ["W", "B", "x"], ["dW", "dB"], name="grad",
                              domain=DOMAIN, xs=["W", "B"], zs=["x"], y=y)],
            [("x", [4, 5]), ("W", [3, 5]), ("B", [3])], [("dW", [3, 5]), ("dB", [3])])
        tw = torch.tensor(w, requires_grad=True)
        tb = torch.tensor(bias, requires_grad=True)
        torch.relu(torch.tensor(x) @ tw.T + tb).sum().backward()
        report(tag, run_model(bin_dir, tmp, f"grad-layer-{y}", layer,
                              {"x": x, "W": w, "B": bias}),
               {"dW": tw.grad.numpy(), "dB": tb.grad.numpy()})
    return failures


def main():
    args = parse_args(__doc__)
    rng = np.random.default_rng(0)
    failures = 0
    with workdir() as tmp:
        failures += check_gradients(args.bin, tmp)
        for op, groups, outputs, mode, attributes in CASES:
            for step in (-2, 0, 1, 7):  # T <= 0: no bias correction, beta adjusted
                for compile_time in (False, True):
                    model, out_names = build(op, groups, outputs, attributes, step, compile_time)
                    tag = f"{op}-{mode or ''}-{step}-{'constant' if compile_time else 'input'}"
                    path = os.path.join(tmp, tag + ".onnx")
                    plan = os.path.join(tmp, tag + ".ampplan")
                    onnx.save(model, path)
                    subprocess.run([os.path.join(args.bin, "amp-opt"), path, "--emit=plan",
                                    "-o", plan], check=True)
                    rate = np.array(0.05, np.float32)
                    tensors = {k: [rng.standard_normal(s).astype(np.float32) for s in SHAPES]
                               for k in groups}
                    for k in "H":  # accumulated squares are non-negative
                        if k in tensors:
                            tensors[k] = [np.abs(t) for t in tensors[k]]
                    feeds = {"R": rate, **{f"{k}{i}": tensors[k][i] for k in groups
                                           for i in range(len(SHAPES))}}
                    if not compile_time:
                        feeds["T"] = np.array(step, np.int64)
                    arguments = []
                    for name, value in feeds.items():
                        np.save(os.path.join(tmp, f"{tag}-{name}.npy"), value)
                        arguments += ["--feed", f"{name}={os.path.join(tmp, f'{tag}-{name}.npy')}"]
                    dump = os.path.join(tmp, tag)
                    subprocess.run([os.path.join(args.bin, "amp-run"), "forward", plan,
                                    *arguments, "--dump", dump], check=True,
                                   stdout=subprocess.DEVNULL)
                    expected = reference(op, mode, rate, step, tensors, attributes)
                    worst = 0.0
                    ok = True
                    for name, want in zip(out_names, expected):
                        got = np.load(os.path.join(dump, f"{name}.npy"))
                        ok &= got.shape == want.shape and np.allclose(got, want, rtol=1e-5,
                                                                      atol=1e-6)
                        worst = max(worst, float(np.abs(got - want).max()))
                    print(f"{'pass' if ok else 'FAIL'}  {op:8} {mode or '':9} T={step} "
                          f"({'initializer' if compile_time else 'run-time input'}): "
                          f"max abs diff {worst:.1e}")
                    failures += not ok
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
