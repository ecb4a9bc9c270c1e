"""LeNet-5 with batch norm on Fashion-MNIST: ours in FP32, BF16 and FP16
against PyTorch's own FP32 training run, which this script also runs.

The model (test/models/lenet_bn.py) is exported by PyTorch in training mode
at opset 17. Both sides train 2 epochs with AdamW lr 1e-3 (weight decay
0.01), batch 128 (the last partial batch dropped), from the same initial
weights; each shuffles with its own generator seeded 0. Accuracy is on the
10k test images with the running averages (evaluation mode). Checks: our
FP32 within 0.5 points of PyTorch's FP32; our BF16 and FP16 within 0.3
points of our FP32. The FP32 run's weights and running averages are then
exported into the ONNX model, which, compiled for inference, reproduces the
run's test accuracy (within 0.1 points).
"""
import gzip
import json
import os
import sys

import numpy as np
import torch

from common import parse_args, run, train_on_fashion_mnist, workdir

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "models"))
import lenet_bn  # noqa: E402

DATA = "/usr/share/datasets/fashion-mnist"
EPOCHS, BATCH = 2, 128


def read_idx(name):
    with gzip.open(os.path.join(DATA, name + ".gz")) as f:
        raw = f.read()
    if "images" in name:
        return np.frombuffer(raw, np.uint8, offset=16).reshape(-1, 1, 28, 28) / np.float32(255)
    return np.frombuffer(raw, np.uint8, offset=8).astype(np.int64)


def pytorch_accuracy():
    torch.manual_seed(0)
    torch.set_num_threads(os.cpu_count())
    model = lenet_bn.make_lenet_bn(seed=0)
    images = torch.from_numpy(read_idx("train-images-idx3-ubyte").astype(np.float32))
    labels = torch.from_numpy(read_idx("train-labels-idx1-ubyte"))
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    generator = torch.Generator().manual_seed(0)
    model.train()
    for _ in range(EPOCHS):
        order = torch.randperm(len(images), generator=generator)
        for step in range(len(images) // BATCH):
            batch = order[step * BATCH:(step + 1) * BATCH]
            optimizer.zero_grad()
            torch.nn.functional.cross_entropy(model(images[batch]), labels[batch]).backward()
            optimizer.step()
    model.eval()
    test_images = torch.from_numpy(read_idx("t10k-images-idx3-ubyte").astype(np.float32))
    test_labels = torch.from_numpy(read_idx("t10k-labels-idx1-ubyte"))
    with torch.no_grad():
        predicted = model(test_images).argmax(1)
    return float((predicted == test_labels).float().mean())


def train(args, tmp, onnx_path, precision):
    lines = train_on_fashion_mnist(args.bin, tmp, onnx_path, f"lenet-{precision}",
                                   f"precision={precision} loss=cross-entropy optimizer=adamw "
                                   f"lr=0.001 batch={BATCH}", EPOCHS)
    return [line for line in lines if "test_accuracy" in line][-1]["test_accuracy"]


def exported_accuracy(args, tmp, onnx_path):
    plan = os.path.join(tmp, "lenet-fp32.ampplan")
    exported = os.path.join(tmp, "exported.onnx")
    run([os.path.join(args.bin, "amp-run"), "export", plan, "--checkpoint", plan + ".ckpt",
         "--onnx", onnx_path, "--output", exported, "--precision", "fp32"])
    inference = exported + ".ampplan"
    # The graph is in training mode (batch statistics): --amp-eval-mode makes
    # it normalize with the exported running averages.
    run([os.path.join(args.bin, "amp-opt"), exported, "--amp-set-batch-size=batch=500",
         "--amp-eval-mode", "--emit=plan", "-o", inference])
    result = json.loads(run([os.path.join(args.bin, "amp-run"), "accuracy", inference,
                             "--data", f"fashion-mnist={DATA}"]))
    return result["test_accuracy"]


def main():
    args = parse_args(__doc__)
    failures = []
    with workdir() as tmp:
        onnx_path = os.path.join(tmp, "lenet_bn.onnx")
        lenet_bn.export(lenet_bn.make_lenet_bn(seed=0), onnx_path)
        ours = {p: train(args, tmp, onnx_path, p) for p in ("fp32", "bf16", "fp16")}
        exported = exported_accuracy(args, tmp, onnx_path)
    reference = pytorch_accuracy()
    print(f"test accuracy: PyTorch fp32 {reference * 100:.2f}%, " +
          ", ".join(f"ours {p} {a * 100:.2f}%" for p, a in ours.items()) +
          f", exported fp32 model {exported * 100:.2f}%")
    if abs(ours["fp32"] - reference) > 0.005:
        failures.append("our FP32 is more than 0.5 points from PyTorch's")
    for precision in ("bf16", "fp16"):
        if abs(ours[precision] - ours["fp32"]) > 0.003:
            failures.append(f"{precision} is more than 0.3 points from our FP32")
    if abs(exported - ours["fp32"]) > 0.001:
        failures.append("the exported model does not reproduce the run's accuracy")
    if failures:
        raise SystemExit("; ".join(failures))
    print("all checks passed")


if __name__ == "__main__":
    main()
