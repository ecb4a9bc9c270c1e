"""The decision report on the exported Fashion-MNIST MLP (BF16).

`amp-opt --amp-report` must list every op of the training step with a
precision and a rule; the GEMMs are bf16, the loss and its gradient f32, the
optimizer updates f32, and each parameter that a GEMM reads is converted
exactly once per step (in the training step by its update, which writes the
low-precision copy for the next step). The Graphviz view must be a digraph with one node per op. Low-precision
activations halve their share of the plan's arena: at batch 1024 the BF16
training arena must be at most 0.65x the FP32 one (FP32 weight gradients,
the FP32 input batch and FP32 loss tensors remain). Both are compiled with
the non-finite skip (BF16's default), which holds every gradient until all
are checked: without it FP32's updates run as soon as their gradients are
ready (amp-schedule-updates) and the two arenas would differ in that too.
"""
import collections
import json
import os

from common import mlp, parse_args, run, workdir


def main():
    args = parse_args(__doc__)
    with workdir() as tmp:
        onnx_path = os.path.join(tmp, "mlp.onnx")
        mlp.export(mlp.make_mlp(seed=0), onnx_path)
        report, dot, ir = (os.path.join(tmp, name) for name in ("r.json", "r.dot", "ir.mlir"))
        run([os.path.join(args.bin, "amp-opt"), onnx_path,
             "--amp-pipeline=precision=bf16 batch=256", f"--amp-report={report}",
             f"--amp-report-dot={dot}", "-o", ir])
        with open(report) as f:
            data = json.load(f)
        with open(dot) as f:
            graph = f.read()
        with open(ir) as f:
            functions = f.read().split("func.func @")[1:]
        # Per function: how often each argument (parameter, input) is cast.
        casts_per_function = [collections.Counter(
            line.split("amp.cast ")[1].split()[0] for line in body.splitlines()
            if "amp.cast %arg" in line) for body in functions]
    ops = data["ops"]
    assert data["precision"] == "bf16" and data["function"] == "train_step"
    assert ops and all(op["precision"] in ("bf16", "f16", "f32") and op["rule"] for op in ops)
    by_kind = collections.defaultdict(set)
    for op in ops:
        by_kind[op["op"]].add(op["precision"])
    assert by_kind["amp.matmul"] == {"bf16"}, by_kind["amp.matmul"]
    for kind in ("amp.softmax_cross_entropy", "amp.softmax_cross_entropy_grad",
                 "amp.adamw_update", "amp.reduce_sum"):
        assert by_kind[kind] == {"f32"}, (kind, by_kind[kind])
    gemm_nodes = {op["node"] for op in ops if op["op"] == "amp.matmul"}
    assert gemm_nodes == {"/1/Gemm", "/3/Gemm", "/5/Gemm"}, gemm_nodes
    assert data["casts"] > 0
    assert graph.startswith('digraph "train_step"') and graph.count("fillcolor") >= len(ops)
    # @forward casts each parameter once; @train_step casts none: it reads the
    # low-precision copies its updates wrote last step (NAME.low state).
    assert len(casts_per_function) == 2 and casts_per_function[0], casts_per_function
    assert max(casts_per_function[0].values()) == 1, casts_per_function
    assert not casts_per_function[1], casts_per_function
    print(f"{len(ops)} ops reported, {data['casts']} casts; GEMMs bf16 at {sorted(gemm_nodes)}; "
          f"loss, reductions and updates f32")

    arena = {}
    with workdir() as tmp:
        onnx_path = os.path.join(tmp, "mlp.onnx")
        mlp.export(mlp.make_mlp(seed=0), onnx_path)
        for precision in ("fp32", "bf16"):
            plan = os.path.join(tmp, f"{precision}.ampplan")
            run([os.path.join(args.bin, "amp-opt"), onnx_path,
                 f"--amp-pipeline=precision={precision} batch=1024 skip-nonfinite=true",
                 "--emit=plan", "-o", plan])
            info = run([os.path.join(args.bin, "amp-run"), "info", plan])
            arena[precision] = int(info.split("arena bytes: train ")[1].split(",")[0])
    ratio = arena["bf16"] / arena["fp32"]
    print(f"training arena at batch 1024, both with the non-finite skip: fp32 {arena['fp32']} bytes, bf16 {arena['bf16']} "
          f"bytes ({ratio:.2f}x)")
    assert ratio <= 0.65, arena


if __name__ == "__main__":
    main()
