"""The importer and CPU kernels against ONNX's own backend node tests.

Every node test of the op types we import (libonnx-testdata) is compiled to an
inference plan by amp-opt and run by `amp-run forward` on the test's inputs; the
outputs must match ONNX's reference outputs (rtol 1e-5, atol 1e-6). Tests of
forms we do not support must be refused with the documented reason; any
other outcome fails. Operands the importer takes as constants (Reshape's
shape, axes, Pad's pads and value, Slice's bounds and the like: see
freeze_constant_operands), graph inputs in these tests, are frozen into
constants from the test data, as training graphs have them.
"""
import glob
import os
import re
import subprocess

import numpy as np
import onnx
from onnx import numpy_helper

from common import parse_args, workdir

NODE_TESTS = "/usr/include/onnx/backend/test/data/node"
OPS = re.compile(r"^test_(gemm|matmul|add|sub|mul|div|neg|relu|exp|log|softmax|logsoftmax|reduce_sum|"
                 r"tanh|sigmoid|leakyrelu|conv|basic_conv|convinteger|basic_convinteger|"
                 r"convtranspose|globalaveragepool|maxpool|averagepool|clip|max|min|batchnorm|"
                 r"concat|constant_pad|edge_pad|reflect_pad|dropout|training_dropout|"
                 r"flatten|reshape|transpose|identity|sce|erf|sqrt|pow|layer_normalization|squeeze|unsqueeze|gather|reduce_mean|reduce_max|reduce_min|slice|shape|expand|split|constantofshape|range|"
                 r"equal|less|greater|where|tril|triu|adam|adagrad|momentum|nesterov_momentum)(_|$)")

# Forms we refuse on purpose, and the reason the error must give (None: the
# test must pass, though a later, broader pattern names its type).
EXPECTED_REFUSALS = [
    # Folded at import (constant operands), their int32 outputs written as int32.
    (r"^test_constantofshape_int|^test_range_int32", None),
    (r"uint8", r"unsupported element type UINT8"),
    (r"identity_(opt|sequence)", r"has no ranked tensor type"),
    (r"matmulinteger|convinteger|convtranspose",
     r"unsupported op type|unsupported element type (UINT8|INT8)"),
    (r"allowzero", r"allowzero=1 is not supported"),
    (r"reduce_sum_square", r"unsupported op type"),
    (r"maxpool_with_argmax", r"the Indices output is supported only as the input of "
                             r"onnxruntime-training.s MaxPoolGrad|storage_order=1"),
    (r"^test_unsqueeze_axis_3$", r"unsupported op type at opset 11"),
    (r"^test_gather_elements|^test_gathernd", r"unsupported op type"),
    # Booleans are 0/1 masks inside a model (folded on compile-time integers,
    # mask ops on float tensors at run time; boolean graph inputs and outputs
    # convert at the boundary): run-time comparisons and selects take float
    # tensors, so test_equal's int32 inputs and an int64 Where are refused.
    (r"^test_equal|^test_where_long",
     r"comparisons and selects at run time take float tensors"),
    # Pow with a tensor exponent or an integer base.
    (r"^test_pow(_bcast_array|_example|_types_.*)?$",
     r"the exponent must be a float constant scalar|unsupported element type|"
     r"expects a float base"),
    (r"_(u?int(8|16|32|64)|float64)(_|$)", r"unsupported element type|expects float"),
    (r"_float16$", r"only float32, int64, int32 and bool arrays"),
    (r"dropout.*mask", r"the mask output is not supported"),
    (r"dropout_(default|random)_old", r"unsupported op type at opset"),
    (r"(edge|reflect)_pad", r"mode '(edge|reflect)' is not supported|unsupported element type"),
    (r"sce_.*((?<!no)_weight|none|3d|4d|NCd)",
     r"class weights are not supported|"
     r"reduction 'none' is not supported|expects \[N, C\] logits"),
]


# The CUDA backend refuses convolutions with asymmetric padding (cuDNN pads both sides alike); on
# the GPU those tests are reported as skipped, by name.
CUDA = os.environ.get("AMP_DEVICE", "cpu").startswith("cuda")
CUDA_LACKS = re.compile(r"asymmetric padding does not run on the CUDA backend")


# Test data that do not follow their own model: the attribute the expected
# outputs were computed with, which the model omits, is set before compiling
# (and the test is reported as patched, with the reason).
PATCHED_ATTRIBUTES = {
    # onnx/backend/test/case/node/adam.py computes the expected outputs with
    # epsilon=1e-2 but leaves it off the node (the default is 1e-6).
    "test_adam_multiple": {"epsilon": 1e-2},
}


# Training-mode dropout tests whose reference output comes from numpy's
# random generator: our counter-based mask (the same on every backend and in
# the backward pass) cannot reproduce it, so these check what a dropout must
# do instead: every element is dropped (0) or kept and scaled by
# 1 / (1 - ratio), and the kept fraction is within 4 standard deviations of
# 1 - ratio. The test's ratio is given here.
RANDOM_MASKS = {"test_training_dropout": 0.75, "test_training_dropout_default": 0.5}


def dropout_statistics(work, inputs, outputs, ratio):
    x = next(v for v in inputs.values() if v.dtype == np.float32)
    output_name = next(iter(outputs))
    ours = np.load(os.path.join(work, f"{output_name}.npy"))
    kept = ours != 0
    if not np.allclose(ours[kept], x[kept] / (1 - ratio), rtol=1e-6):
        return "mismatch", "a kept element is not scaled by 1 / (1 - ratio)"
    n, keep = x.size, 1 - ratio
    if abs(kept.mean() - keep) > 4 * np.sqrt(keep * ratio / n):
        return "mismatch", f"kept {kept.mean():.3f} of {n} elements, expected about {keep}"
    return "pass", (f"mask statistics: kept {kept.mean():.3f} of {n} (1 - ratio = {keep}), "
                    f"kept elements scaled exactly")


def expected_refusal(name):
    for pattern, reason in EXPECTED_REFUSALS:
        if re.search(pattern, name):
            return reason
    return None


def read_tensor(path):
    tensor = onnx.TensorProto()
    with open(path, "rb") as f:
        tensor.ParseFromString(f.read())
    return numpy_helper.to_array(tensor)


def freeze_constant_operands(model, inputs):
    """Turns graph inputs feeding Reshape's shape, the axes of ReduceSum,
    Squeeze and Unsqueeze, Slice's starts, ends, axes and steps, Expand's
    shape, Split's sizes, ConstantOfShape's shape, Range's and Trilu's
    operands (Trilu folds constant masks; its tests' data are int64) or Pad's
    pads into initializers, and Pad's constant_value into a Constant node:
    the importer takes those as constants."""
    integer_inputs = {node.input[1] for node in model.graph.node
                      if node.op_type in ("Reshape", "ReduceSum", "Pad", "Squeeze", "Unsqueeze")
                      and len(node.input) > 1}
    integer_inputs |= {name for node in model.graph.node
                       if node.op_type in ("Slice", "Range", "Expand", "Split", "Trilu")
                       for name in node.input[1 if node.op_type not in ("Range", "Trilu")
                                              else 0:]}
    integer_inputs |= {node.input[0] for node in model.graph.node
                       if node.op_type == "ConstantOfShape"}
    float_inputs = {node.input[2] for node in model.graph.node
                    if node.op_type == "Pad" and len(node.input) > 2}
    # Dropout's ratio and training_mode; a scalar exponent of Pow.
    float_inputs |= {name for node in model.graph.node if node.op_type == "Dropout"
                     for name in node.input[1:3]}
    float_inputs |= {node.input[1] for node in model.graph.node
                     if node.op_type == "Pow" and np.size(inputs.get(node.input[1], [0, 0])) == 1}
    # Range of float scalars: Constant nodes, as the float constants it folds.
    ranged = {name for node in model.graph.node if node.op_type == "Range" for name in node.input}
    float_inputs |= {name for name in ranged & inputs.keys()
                     if np.issubdtype(inputs[name].dtype, np.floating)}
    integer_inputs -= float_inputs
    for name in (integer_inputs | float_inputs) & inputs.keys():
        value = inputs.pop(name)
        if name in integer_inputs:
            model.graph.initializer.append(numpy_helper.from_array(value, name))
        else:
            model.graph.node.insert(0, onnx.helper.make_node(
                "Constant", [], [name], value=numpy_helper.from_array(value, name)))
        kept = [i for i in model.graph.input if i.name != name]
        del model.graph.input[:]
        model.graph.input.extend(kept)
    return model


def run_test(bin_dir, test_dir, tmp):
    """Returns ("pass", detail), ("refused", message) or ("mismatch", detail)."""
    name = os.path.basename(test_dir)
    model = onnx.load(os.path.join(test_dir, "model.onnx"))
    data = os.path.join(test_dir, "test_data_set_0")
    try:
        inputs = {model.graph.input[i].name: read_tensor(p) for i, p in
                  enumerate(sorted(glob.glob(os.path.join(data, "input_*.pb"))))}
        outputs = {model.graph.output[i].name: read_tensor(p) for i, p in
                   enumerate(sorted(glob.glob(os.path.join(data, "output_*.pb"))))}
    except ValueError:  # optional or sequence values, which are no tensors
        inputs, outputs = {}, None
    model = freeze_constant_operands(model, inputs)
    for attribute, value in PATCHED_ATTRIBUTES.get(name, {}).items():
        model.graph.node[0].attribute.append(onnx.helper.make_attribute(attribute, value))
    work = os.path.join(tmp, name)
    os.makedirs(work)
    model_path = os.path.join(work, "model.onnx")
    onnx.save(model, model_path)
    plan = os.path.join(work, "model.ampplan")
    compiled = subprocess.run([os.path.join(bin_dir, "amp-opt"), model_path, "--emit=plan",
                               "-o", plan], capture_output=True, text=True, errors="replace")
    if compiled.returncode != 0:
        if compiled.returncode != 1 or os.path.exists(plan):
            return "mismatch", f"amp-opt exit {compiled.returncode}: {compiled.stderr}"
        return "refused", compiled.stderr.strip()
    if outputs is None:
        return "mismatch", "compiled a model whose test data are no tensors"
    feeds = []
    for input_name, value in inputs.items():
        path = os.path.join(work, f"in{len(feeds)}.npy")
        np.save(path, value)
        feeds += ["--feed", f"{input_name}={path}"]
    ran = subprocess.run([os.path.join(bin_dir, "amp-run"), "forward", plan, *feeds,
                          "--dump", work], capture_output=True, text=True, errors="replace")
    if ran.returncode != 0:
        # amp-run's --feed reads float32, int64, int32 and bool .npy only: a refusal, named.
        outcome = ("refused" if "only float32, int64, int32 and bool arrays" in ran.stderr
                   else "mismatch")
        return outcome, f"amp-run failed: {ran.stderr}"
    if name in RANDOM_MASKS:
        return dropout_statistics(work, inputs, outputs, RANDOM_MASKS[name])
    worst = 0.0
    for output_name, expected in outputs.items():
        ours = np.load(os.path.join(work, f"{output_name}.npy"))
        if ours.shape != expected.shape:
            return "mismatch", f"{output_name}: shape {ours.shape} vs {expected.shape}"
        if expected.dtype == np.bool_:  # compared exactly, as 0/1
            if ours.dtype != np.bool_:
                return "mismatch", f"{output_name}: {ours.dtype} where bool was expected"
            ours, expected = ours.astype(np.float32), expected.astype(np.float32)
        if not np.allclose(ours, expected, rtol=1e-5, atol=1e-6):
            return "mismatch", f"{output_name}: max abs diff {np.abs(ours - expected).max(initial=0.0)}"
        worst = max(worst, float(np.abs(ours - expected).max(initial=0.0)))
    patched = PATCHED_ATTRIBUTES.get(name)
    return "pass", f"max abs diff {worst:.1e}" + (f" (patched {patched})" if patched else "")


def main():
    args = parse_args(__doc__)
    tests = sorted(d for d in glob.glob(os.path.join(NODE_TESTS, "test_*"))
                   if OPS.match(os.path.basename(d)) and "expanded" not in d)
    assert len(tests) > 40, f"only {len(tests)} node tests found in {NODE_TESTS}"
    failures, passed, refused, statistical = [], 0, 0, 0
    with workdir() as tmp:
        for test in tests:
            name = os.path.basename(test)
            outcome, detail = run_test(args.bin, test, tmp)
            reason = expected_refusal(name)
            if outcome == "pass" and reason is None:
                statistical += detail.startswith("mask statistics")
                passed += not detail.startswith("mask statistics")
                print(f"pass     {name}: {detail}")
            elif outcome == "refused" and reason and re.search(reason, detail):
                refused += 1
                print(f"refused  {name}: {detail.splitlines()[0]}")
            elif outcome == "mismatch" and CUDA and CUDA_LACKS.search(detail):
                refused += 1  # named, so the GPU run shows what it skipped
                print(f"skipped  {name}: asymmetric padding, which cuDNN does not have")
            else:
                failures.append(name)
                expected = f"refusal matching /{reason}/" if reason else "a pass"
                print(f"FAIL     {name}: expected {expected}, got {outcome}: {detail}")
    print(f"{passed} node tests match ONNX's reference outputs, {statistical} random-mask "
          f"dropout tests pass the mask checks, {refused} refused as expected, "
          f"{len(failures)} failed")
    if failures:
        raise SystemExit(f"failed: {', '.join(failures)}")


if __name__ == "__main__":
    main()
