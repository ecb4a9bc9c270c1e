"""Gradients computed again at their updates train exactly like held ones.

With the non-finite skip on, amp-recompute-gradients checks a large weight
gradient where it is made and computes it again just before its update. On
a small CNN whose filter gradients are much larger than their inputs (3x3
filters on 2x2 and 1x1 maps), plans compiled with recompute-gradients=100
(every such gradient) and =0 (none) must train identically:
- BF16, 4 AdamW steps: loss, parameters, moments and step counter
  bit-identical;
- FP16 with dynamic loss scaling over a sequence with overflowing steps:
  the same steps skipped, the same scales, bit-identical state;
- the reported gradient norm, now the norm of per-gradient norms (as
  torch.nn.utils.clip_grad_norm_ forms it), within 1e-6 of the fused one;
- with clip=, the clipped update within 1e-5 of the held gradients' one.
The recomputing plans must show the extra filter-gradient kernels (so the
comparison is not of two equal plans), and their training arena must be
smaller.
"""
import json
import os
import re
import subprocess

import numpy as np
import torch

from common import Checker, parse_args, relative_error, run, workdir

BATCH, STEPS = 4, 4


class SmallCnn(torch.nn.Module):
    def __init__(self):
        super().__init__()
        torch.manual_seed(3)
        self.conv1 = torch.nn.Conv2d(3, 32, 3, stride=2, padding=1)
        self.conv2 = torch.nn.Conv2d(32, 64, 3, stride=2, padding=1)
        self.fc = torch.nn.Linear(64, 10)

    def forward(self, x):
        x = torch.relu(self.conv2(torch.relu(self.conv1(x))))
        return self.fc(x.flatten(1))


def compile_plan(args, onnx_path, plan, pipeline):
    """Compiles; returns the train step's kernel counts by op and its arena."""
    result = subprocess.run([os.path.join(args.bin, "amp-opt"), onnx_path,
                             f"--amp-pipeline={pipeline}", "--emit=plan", "-o", plan,
                             "--plan-stats"], capture_output=True, text=True)
    if result.returncode != 0:
        raise SystemExit(f"amp-opt failed: {result.stderr}")
    stats = result.stderr
    train = stats.split("train_step:", 1)[1].split("forward:", 1)[0]
    counts = {op: int(n) for op, n in re.findall(r"^\s+(\w+) (\d+)$", train, re.M)}
    arena = int(re.search(r"arena (\d+) bytes", train).group(1))
    return counts, arena


def train(args, plan, feeds, dump):
    arguments = sum((["--feed", f"{name}={path}"] for name, path in feeds.items()), [])
    metrics = dump + ".jsonl"
    run([os.path.join(args.bin, "amp-run"), "step", plan, "--steps", STEPS, *arguments,
         "--metrics", metrics, "--dump", dump])
    with open(metrics) as f:
        lines = [json.loads(line) for line in f]
    tensors = {f[:-4]: np.load(os.path.join(dump, f)) for f in os.listdir(dump)
               if f.endswith(".npy")}
    return lines, tensors


def main():
    args = parse_args(__doc__)
    checker = Checker()
    with workdir() as tmp:
        onnx_path = os.path.join(tmp, "cnn.onnx")
        torch.onnx.export(SmallCnn(), torch.zeros(BATCH, 3, 4, 4), onnx_path, opset_version=17,
                          training=torch.onnx.TrainingMode.TRAINING, do_constant_folding=False,
                          input_names=["input"], output_names=["logits"])
        rng = np.random.default_rng(11)
        images = rng.standard_normal((STEPS, BATCH, 3, 4, 4)).astype(np.float32)
        labels = rng.integers(0, 10, (STEPS, BATCH), dtype=np.int64)
        overflowing = images.copy()
        overflowing[1, 0, 0, 0, 0] = 1e6  # beyond f16: inf in the forward pass
        overflowing[2, 1, 2, 3, 3] = -1e6
        feeds = {}
        for tag, data in (("plain", images), ("overflow", overflowing)):
            feeds[tag] = {"input": os.path.join(tmp, f"{tag}-x.npy"),
                          "labels": os.path.join(tmp, "labels.npy")}
            np.save(feeds[tag]["input"], data)
        np.save(os.path.join(tmp, "labels.npy"), labels)

        cases = (("bf16", "precision=bf16", "plain"),
                 ("fp16", "precision=fp16 loss-scale-init=1024", "overflow"),
                 ("bf16 clip", "precision=bf16 clip=0.05", "plain"))
        for name, pipeline, data in cases:
            results = {}
            for percent in (0, 100):
                plan = os.path.join(tmp, f"{name.replace(' ', '-')}-{percent}.ampplan")
                counts, arena = compile_plan(
                    args, onnx_path, plan,
                    f"{pipeline} optimizer=adamw batch={BATCH} recompute-gradients={percent}")
                lines, tensors = train(args, plan, feeds[data], plan + ".dump")
                results[percent] = (counts, arena, lines, tensors)
            (counts0, arena0, lines0, held), (counts1, arena1, lines1, again) = (
                results[0], results[100])
            extra = counts1.get("conv_backward_filter", 0) - counts0.get("conv_backward_filter", 0)
            print(f"{name}: {extra} filter gradients computed again; training arena "
                  f"{arena0} -> {arena1} bytes")
            checker.check(f"{name}: both filter gradients computed again", float(extra != 2), 0)
            checker.check(f"{name}: smaller training arena", float(arena1 >= arena0), 0)
            norms0, norms1 = (np.array([line["grad_norm"] for line in lines], dtype=np.float64)
                              for lines in (lines0, lines1))
            finite = np.isfinite(norms0)
            checker.check(f"{name}: gradient norm of the norms equals the fused one",
                          relative_error(norms1[finite], norms0[finite]), 1e-6)
            for key in ("skipped", "loss_scale"):
                checker.check(f"{name}: same '{key}' every step",
                              float([line.get(key) for line in lines0] !=
                                    [line.get(key) for line in lines1]), 0)
            if data == "overflow":
                checker.check(f"{name}: the overflowing steps were skipped",
                              float([line["skipped"] for line in lines0] !=
                                    [False, True, True, False]), 0)
            state = sorted(n for n in held if n != "grad_norm")
            if "clip" in name:
                # The clip coefficient reads the norm, which differs by rounding.
                worst = max(relative_error(again[n], held[n]) for n in state)
                checker.check(f"{name}: {len(state)} tensors within 1e-5", worst, 1e-5)
            else:
                differing = [n for n in state if again[n].tobytes() != held[n].tobytes()]
                if differing:
                    print("differing:", differing)
                checker.check(f"{name}: {len(state)} tensors (loss, parameters, state) "
                              f"bit-identical", float(len(differing)), 0)
    checker.finish()


if __name__ == "__main__":
    main()
