"""A vision transformer on Fashion-MNIST in FP32, BF16 and FP16.

The model: 7x7 patches embedded by a strided Conv (16 tokens of width 64), a
class token (PyTorch exports its `expand` to the batch as a
Shape/Equal/Where subgraph, folded at import), learned positions, 4 pre-norm
nn.TransformerEncoderLayer (4 heads, GELU, feed-forward 256), a final
LayerNorm and a linear head on the class token. PyTorch exports it in
training mode at opset 17.

Checks:
- the compiled FP32 step against PyTorch: 3 AdamW steps from the same
  weights on the same batches, losses within 1e-4 relative;
- `amp-run train` for 2 epochs (batch 128, AdamW lr 1e-3, seed 0) in FP32,
  BF16 and FP16: BF16's and FP16's test accuracy within 0.5 points of
  FP32's, and FP32's at least 80% (the model learned).
"""
import gzip
import os

import numpy as np
import torch

from common import (compile_and_step, parse_args, pytorch_adamw_losses, train_on_fashion_mnist,
                    workdir)

DATA = "/usr/share/datasets/fashion-mnist"
EPOCHS, BATCH, LR, PATCH, WIDTH, LAYERS = 2, 128, 1e-3, 7, 64, 4
CHECKED_STEPS = 3


class ViT(torch.nn.Module):
    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.patches = torch.nn.Conv2d(1, WIDTH, PATCH, stride=PATCH)
        tokens = (28 // PATCH) ** 2 + 1
        self.cls = torch.nn.Parameter(torch.zeros(1, 1, WIDTH))
        self.position = torch.nn.Parameter(torch.randn(1, tokens, WIDTH) * 0.02)
        self.layers = torch.nn.ModuleList(
            torch.nn.TransformerEncoderLayer(WIDTH, 4, 4 * WIDTH, dropout=0.0, activation="gelu",
                                             batch_first=True, norm_first=True)
            for _ in range(LAYERS))
        self.norm = torch.nn.LayerNorm(WIDTH)
        self.head = torch.nn.Linear(WIDTH, 10)

    def forward(self, images):
        x = self.patches(images).flatten(2).transpose(1, 2)
        x = torch.cat([self.cls.expand(x.shape[0], -1, -1), x], 1) + self.position
        for layer in self.layers:
            x = layer(x)
        return self.head(self.norm(x[:, 0]))


def first_batches():
    """The first CHECKED_STEPS * BATCH training images and labels, in order."""
    with gzip.open(os.path.join(DATA, "train-images-idx3-ubyte.gz")) as f:
        images = np.frombuffer(f.read(), np.uint8, offset=16)
    with gzip.open(os.path.join(DATA, "train-labels-idx1-ubyte.gz")) as f:
        labels = np.frombuffer(f.read(), np.uint8, offset=8)
    n = CHECKED_STEPS * BATCH
    return (images[:n * 784].reshape(n, 1, 28, 28).astype(np.float32) / 255,
            labels[:n].astype(np.int64))


def train(args, tmp, onnx_path, precision):
    """Test accuracy after the last epoch and the FP16 steps skipped."""
    lines = train_on_fashion_mnist(args.bin, tmp, onnx_path, f"vit-{precision}",
                                   f"precision={precision} loss=cross-entropy optimizer=adamw "
                                   f"lr={LR} batch={BATCH}", EPOCHS)
    skipped = sum(line.get("skipped_steps", 0) for line in lines)
    return [line for line in lines if "test_accuracy" in line][-1]["test_accuracy"], skipped


def main():
    args = parse_args(__doc__)
    failures = []
    images, labels = first_batches()
    with workdir() as tmp:
        onnx_path = os.path.join(tmp, "vit.onnx")
        torch.onnx.export(ViT(), torch.zeros(BATCH, 1, 28, 28), onnx_path, opset_version=17,
                          training=torch.onnx.TrainingMode.TRAINING, do_constant_folding=False,
                          input_names=["input"], output_names=["logits"])
        _, steps = compile_and_step(args.bin, tmp, onnx_path,
                                    f"precision=fp32 loss=cross-entropy optimizer=adamw lr={LR} "
                                    f"batch={BATCH}", {"input": images, "labels": labels},
                                    "steps", CHECKED_STEPS)
        ours = np.array([s["loss"] for s in steps])
        reference = pytorch_adamw_losses(ViT(), images, labels, CHECKED_STEPS, BATCH, LR)
        gap = np.abs(ours - reference) / reference
        print(f"first {CHECKED_STEPS} fp32 losses: ours {ours}, PyTorch {reference} "
              f"(max relative gap {gap.max():.1e}, bound 1e-4)")
        if gap.max() > 1e-4:
            failures.append("the FP32 step strays from PyTorch's")
        results = {p: train(args, tmp, onnx_path, p) for p in ("fp32", "bf16", "fp16")}
    accuracy = {p: a for p, (a, _) in results.items()}
    print("test accuracy after 2 epochs: " +
          ", ".join(f"{p} {a * 100:.2f}%" for p, a in accuracy.items()) +
          f"; fp16 skipped {results['fp16'][1]} step(s)")
    if accuracy["fp32"] < 0.80:
        failures.append(f"FP32 reached only {accuracy['fp32']:.4f}")
    for precision in ("bf16", "fp16"):
        if abs(accuracy[precision] - accuracy["fp32"]) > 0.005:
            failures.append(f"{precision} is more than 0.5 points from FP32")
    if failures:
        raise SystemExit("; ".join(failures))
    print("all checks passed")


if __name__ == "__main__":
    main()
