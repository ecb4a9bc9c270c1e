"""Fashion-MNIST MLP: exported by PyTorch, compiled, trained by amp-run.

AdamW lr 1e-3, batch 256, 2 epochs, seed 0 must reach at least 85% test
accuracy; the metrics file has a JSON line per log interval with epoch, step,
loss and samples_per_s, and an end-of-epoch line with test_accuracy.
"""
import json
import os

from common import compile_model, mlp, parse_args, run, workdir

DATA = "/usr/share/datasets/fashion-mnist"


def main():
    args = parse_args(__doc__)
    with workdir() as tmp:
        onnx_path = os.path.join(tmp, "mlp.onnx")
        plan = os.path.join(tmp, "mlp.ampplan")
        metrics = os.path.join(tmp, "metrics.jsonl")
        mlp.export(mlp.make_mlp(seed=0), onnx_path)
        compile_model(args.bin, onnx_path, plan,
                      "precision=fp32 loss=cross-entropy optimizer=adamw lr=0.001 batch=256")
        print(run([os.path.join(args.bin, "amp-run"), "train", plan,
                   "--data", f"fashion-mnist={DATA}", "--epochs", 2, "--seed", 0,
                   "--metrics", metrics]).strip())
        with open(metrics) as f:
            lines = [json.loads(line) for line in f]
    for line in lines:
        assert {"epoch", "step", "loss", "samples_per_s"} <= line.keys(), line
    epoch_ends = [line for line in lines if "test_accuracy" in line]
    assert [line["epoch"] for line in epoch_ends] == [1, 2], epoch_ends
    assert all(0.0 <= line["test_accuracy"] <= 1.0 for line in epoch_ends)
    assert epoch_ends[-1]["step"] == 2 * (60000 // 256), epoch_ends[-1]
    assert lines[0]["loss"] > lines[-1]["loss"], "the loss did not fall"
    accuracy = epoch_ends[-1]["test_accuracy"]
    print(f"test accuracy after 2 epochs: {accuracy:.4f} (needs >= 0.85)")
    assert accuracy >= 0.85, accuracy


if __name__ == "__main__":
    main()
