"""A model with ONNX's own TrainingInfoProto, trained in FP32, BF16 and FP16
against PyTorch.

The model (test/Inputs/onnx_models.py training_info_mlp: a 784-64-10 MLP)
carries its training algorithm: cross-entropy, a Gradient node and
ai.onnx.preview.training's Momentum (lr 0.05, alpha 0.9, beta 1), update bindings
for every weight and accumulator, and an initialization graph that sets the
last bias. amp-opt imports it into @train_step and the pipeline applies
autocast and loss scaling as to any step. 20 steps of batch 64 on the first
Fashion-MNIST images:
- FP32 losses equal PyTorch's (torch.optim.SGD, momentum 0.9, same initial weights
  and data) within 1e-4 relative at every step;
- BF16 and FP16 (dynamic loss scaling) within 3% of our FP32;
- an FP16 step fed an inf is skipped: every weight and accumulator keeps
  its value and the loss scale halves.
"""
import gzip
import json
import os
import sys

import numpy as np
import onnx
import torch
from onnx import numpy_helper

from common import Checker, compile_model, parse_args, run, workdir

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "Inputs"))
import onnx_models  # noqa: E402

DATA = "/usr/share/datasets/fashion-mnist"
STEPS, BATCH, LR = 20, 64, 0.05


def read_idx(name, rows):
    with gzip.open(os.path.join(DATA, name + ".gz")) as f:
        raw = f.read()
    if "images" in name:
        return (np.frombuffer(raw, np.uint8, offset=16).reshape(-1, 784)[:rows]
                / np.float32(255)).astype(np.float32)
    return np.frombuffer(raw, np.uint8, offset=8)[:rows].astype(np.int64)


def pytorch_losses(model, images, labels):
    """torch.optim.SGD with momentum on the model's initial weights (the
    last bias from its initialization graph)."""
    weights = {t.name: torch.tensor(numpy_helper.to_array(t)) for t in model.graph.initializer}
    init = model.training_info[0].initialization.node[0]
    weights["b2"] = torch.tensor(numpy_helper.to_array(init.attribute[0].t))
    params = [weights[n].clone().requires_grad_() for n in ("W1", "b1", "W2", "b2")]
    optimizer = torch.optim.SGD(params, lr=LR, momentum=0.9)
    losses = []
    for step in range(STEPS):
        rows = slice(step * BATCH, (step + 1) * BATCH)
        w1, b1, w2, b2 = params
        hidden = torch.relu(torch.from_numpy(images[rows]) @ w1.T + b1)
        loss = torch.nn.functional.cross_entropy(hidden @ w2.T + b2,
                                                 torch.from_numpy(labels[rows]))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return np.array(losses)


def step(args, plan, feeds, steps, dump, *flags):
    metrics = dump + ".jsonl"
    run([os.path.join(args.bin, "amp-run"), "step", plan, "--steps", steps,
         *sum((["--feed", f"{name}={path}"] for name, path in feeds.items()), []),
         "--metrics", metrics, "--dump", dump, *flags])
    with open(metrics) as f:
        return [json.loads(line) for line in f]


def main():
    args = parse_args(__doc__)
    checker = Checker()
    torch.manual_seed(0)
    with workdir() as tmp:
        model = onnx_models.training_info_mlp(features=784, hidden=64, classes=10, lr=LR,
                                              optimizer="momentum")
        model_path = os.path.join(tmp, "mlp.onnx")
        onnx.save(model, model_path)
        images = read_idx("train-images-idx3-ubyte", STEPS * BATCH)
        labels = read_idx("train-labels-idx1-ubyte", STEPS * BATCH)
        feeds = {"X": os.path.join(tmp, "x.npy"), "labels": os.path.join(tmp, "labels.npy")}
        np.save(feeds["X"], images)
        np.save(feeds["labels"], labels)
        reference = pytorch_losses(model, images, labels)
        ours = {}
        for precision in ("fp32", "bf16", "fp16"):
            plan = os.path.join(tmp, f"{precision}.ampplan")
            compile_model(args.bin, model_path, plan, f"precision={precision} batch={BATCH}")
            lines = step(args, plan, feeds, STEPS, os.path.join(tmp, precision))
            ours[precision] = np.array([line["loss"] for line in lines])
        print(f"{'step':>4} {'PyTorch':>9} {'fp32':>9} {'bf16':>9} {'fp16':>9}")
        for i in (0, 1, 4, 9, 14, 19):
            print(f"{i + 1:>4} {reference[i]:>9.5f} {ours['fp32'][i]:>9.5f} "
                  f"{ours['bf16'][i]:>9.5f} {ours['fp16'][i]:>9.5f}")
        checker.check("fp32 loss vs PyTorch's, every step",
                      np.max(np.abs(ours["fp32"] - reference) / reference), 1e-4)
        for precision in ("bf16", "fp16"):
            gap = np.max(np.abs(ours[precision] - ours["fp32"]) / ours["fp32"])
            checker.check(f"{precision} loss vs our fp32",
                          gap if np.all(np.isfinite(ours[precision])) else np.inf, 0.03)

        # An inf in the batch: the FP16 step is skipped, nothing it updates
        # changes, and the loss scale halves.
        bad = {"X": os.path.join(tmp, "bad.npy"), "labels": os.path.join(tmp, "bad-labels.npy")}
        poisoned = images[:BATCH].copy()
        poisoned[3, 100] = np.inf
        np.save(bad["X"], poisoned)
        np.save(bad["labels"], labels[:BATCH])
        dump = os.path.join(tmp, "skipped")
        line = step(args, os.path.join(tmp, "fp16.ampplan"), bad, 1, dump,
                    "--allow-nonfinite-inputs")[0]
        initial = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
        initial["b2"] = np.full(10, 0.25, np.float32)
        changed = [name for name in ("W1", "b1", "W2", "b2")
                   if not np.array_equal(np.load(os.path.join(dump, f"{name}.npy")), initial[name])]
        changed += [f"H_{name}" for name in ("W1", "b1", "W2", "b2")
                    if np.any(np.load(os.path.join(dump, f"H_{name}.npy")))]
        print(f"fp16 step with an inf: {line}; changed state: {changed or 'none'}")
        checker.require("the poisoned fp16 step is skipped, no state changes",
                        line.get("skipped") == 1 and not changed)
        checker.require("the loss scale halves (65536 -> 32768)", line.get("loss_scale") == 32768)
    checker.finish()


if __name__ == "__main__":
    main()
