"""Fashion-MNIST MLP in FP32, BF16 and FP16: exported by PyTorch, compiled, trained.

AdamW lr 1e-3, batch 256, 2 epochs, seed 0 for each precision (same initial
weights, same data order). FP32 must reach at least 85% test accuracy; BF16
and FP16 (with dynamic loss scaling, the default) must each land within 0.5
percentage points of FP32. The metrics file has a JSON line per log interval
with epoch, step, loss and samples_per_s, and an end-of-epoch line with
test_accuracy too; FP16's lines also carry the loss-scale trajectory.
The FP16 run's trained weights are exported back into the ONNX model, in
FP32, FP16 and BF16; each passes the ONNX checker (Python's, independently)
and, compiled for inference and run by our runtime, reproduces the training
run's test accuracy (within 0.1 points; 0.3 for BF16, whose weights are
rounded to 8 bits of mantissa).
"""
import json
import os

import onnx

from common import compile_model, mlp, parse_args, run, workdir

DATA = "/usr/share/datasets/fashion-mnist"


def train(args, tmp, onnx_path, precision):
    plan = os.path.join(tmp, f"mlp-{precision}.ampplan")
    metrics = os.path.join(tmp, f"metrics-{precision}.jsonl")
    compile_model(args.bin, onnx_path, plan,
                  f"precision={precision} loss=cross-entropy optimizer=adamw lr=0.001 batch=256")
    print(run([os.path.join(args.bin, "amp-run"), "train", plan,
               "--data", f"fashion-mnist={DATA}", "--epochs", 2, "--seed", 0,
               "--metrics", metrics, "--checkpoint", plan + ".ckpt"]).strip())
    with open(metrics) as f:
        lines = [json.loads(line) for line in f]
    for line in lines:
        assert {"epoch", "step", "loss", "samples_per_s"} <= line.keys(), line
    epoch_ends = [line for line in lines if "test_accuracy" in line]
    assert [line["epoch"] for line in epoch_ends] == [1, 2], epoch_ends
    assert all(0.0 <= line["test_accuracy"] <= 1.0 for line in epoch_ends)
    assert epoch_ends[-1]["step"] == 2 * (60000 // 256), epoch_ends[-1]
    assert lines[0]["loss"] > lines[-1]["loss"], "the loss did not fall"
    if precision == "fp16":
        scales = [line["loss_scale"] for line in lines]
        print(f"fp16 loss-scale trajectory (per log line): {scales}")
        assert all(s > 0 for s in scales) and all("skipped_steps" in l for l in lines)
    return epoch_ends[-1]["test_accuracy"]


def check_export(args, tmp, onnx_path, expected):
    """Exports the FP16 run's weights and evaluates the exported models."""
    plan = os.path.join(tmp, "mlp-fp16.ampplan")
    for precision, tolerance in (("fp32", 0.001), ("fp16", 0.001), ("bf16", 0.003)):
        exported = os.path.join(tmp, f"exported-{precision}.onnx")
        run([os.path.join(args.bin, "amp-run"), "export", plan, "--checkpoint", plan + ".ckpt",
             "--onnx", onnx_path, "--output", exported, "--precision", precision])
        onnx.checker.check_model(onnx.load(exported), full_check=True)
        inference = exported + ".ampplan"
        run([os.path.join(args.bin, "amp-opt"), exported, "--amp-set-batch-size=batch=500",
             "--emit=plan", "-o", inference])
        result = json.loads(run([os.path.join(args.bin, "amp-run"), "accuracy", inference,
                                 "--data", f"fashion-mnist={DATA}"]))
        print(f"exported {precision} model: test accuracy {result['test_accuracy']:.4f} "
              f"(training run: {expected:.4f})")
        assert abs(result["test_accuracy"] - expected) <= tolerance, (precision, result, expected)


def main():
    args = parse_args(__doc__)
    with workdir() as tmp:
        onnx_path = os.path.join(tmp, "mlp.onnx")
        mlp.export(mlp.make_mlp(seed=0), onnx_path)
        accuracy = {p: train(args, tmp, onnx_path, p) for p in ("fp32", "bf16", "fp16")}
        check_export(args, tmp, onnx_path, accuracy["fp16"])
    print(f"{'precision':<10}{'test accuracy':>14}{'gap to fp32 (points)':>22}")
    for precision, value in accuracy.items():
        gap = 100 * (value - accuracy["fp32"])
        print(f"{precision:<10}{value:>14.4f}{gap:>22.2f}")
    assert accuracy["fp32"] >= 0.85, accuracy
    for precision in ("bf16", "fp16"):
        assert abs(accuracy[precision] - accuracy["fp32"]) <= 0.005, accuracy


if __name__ == "__main__":
    main()
