"""Loss scaling and step safety, end to end, against PyTorch and GradScaler's rule.

1. Overflow: a step whose gradients are not finite is skipped (parameters,
   AdamW moments and step counter bit-identical before and after it), the
   scale halves, training goes on; over a fixed sequence of overflowing steps
   the scale trajectory equals torch.amp.GradScaler's update rule with the
   same settings. (PyTorch 1.13 disables GradScaler without CUDA, so the rule
   of its _amp_update_scale_ kernel is transcribed below.)
2. Underflow: an FP16 model whose gradients are below f16's smallest
   subnormal gets exactly zero gradients without scaling (the loss stalls)
   and trains with dynamic scaling.
3. Clipping sees unscaled gradients: in FP32 the clipped SGD step equals
   PyTorch's clip_grad_norm_ + SGD; in FP16 with dynamic scaling the reported
   gradient norm is PyTorch's (not 65536 times it).
4. --check-numerics names the first op (and its ONNX node) that produced a
   non-finite value: the cast of the overflowing input at /0/Flatten.
5. log(sum(x)) of tiny values under FP16 stays finite because the policy
   keeps the sum and the log in FP32; forcing the product into f16 by policy
   gives -inf, the textbook pitfall.
6. Metrics say what happened to a NaN batch without the skip (FP32's
   default): never "skipped", the update applied (weights NaN, step counted),
   "nonfinite" where the plan checks; a plain FP32 step checks nothing.
"""
import json
import os
import subprocess

import numpy as np
import torch

from common import Checker, compile_model, mlp, parse_args, relative_error, run, workdir

BATCH = 32


def amp_run_step(args, plan, feeds, steps, dump, metrics=None, extra=()):
    os.makedirs(dump, exist_ok=True)
    command = [os.path.join(args.bin, "amp-run"), "step", plan, "--steps", steps, "--dump", dump,
               *extra]
    for name, path in feeds.items():
        command += ["--feed", f"{name}={path}"]
    if metrics:
        command += ["--metrics", metrics]
    run(command)
    if metrics:
        with open(metrics) as f:
            return [json.loads(line) for line in f]
    return None


def gradscaler_trajectory(init, growth, backoff, interval, found):
    """torch.amp.GradScaler.update() (its _amp_update_scale_ kernel), step by step."""
    scale, tracker, trajectory = np.float32(init), 0, []
    for bad in found:
        if bad:
            scale, tracker = np.float32(scale * backoff), 0
        elif tracker + 1 == interval:
            grown = np.float32(scale * growth)
            scale = grown if np.isfinite(grown) else scale
            tracker = 0
        else:
            tracker += 1
        trajectory.append(float(scale))
    return trajectory


def check_overflow(args, checker, tmp):
    steps, overflow_at = 10, {2, 5, 6}
    onnx_path = os.path.join(tmp, "small.onnx")
    plan = os.path.join(tmp, "overflow.ampplan")
    mlp.export(mlp.make_mlp(seed=0, hidden=64), onnx_path)
    compile_model(args.bin, onnx_path, plan,
                  f"precision=fp16 loss-scale=dynamic loss-scale-init=1024 growth-interval=2 "
                  f"optimizer=adamw batch={BATCH}")
    rng = np.random.default_rng(7)
    images = rng.random((steps, BATCH, 1, 28, 28), dtype=np.float32)
    labels = rng.integers(0, 10, (steps, BATCH), dtype=np.int64)
    for step in overflow_at:
        images[step, 0, 0, 0, 0] = 1e6  # beyond f16: inf in the forward pass
    paths = {}
    for count in (2, 3, steps):
        paths[count] = {"input": os.path.join(tmp, f"images{count}.npy"),
                        "labels": os.path.join(tmp, f"labels{count}.npy")}
        np.save(paths[count]["input"], images[:count])
        np.save(paths[count]["labels"], labels[:count])
    lines = amp_run_step(args, plan, paths[steps], steps, os.path.join(tmp, "all"),
                         os.path.join(tmp, "all.jsonl"))
    skipped = [line["skipped"] for line in lines]
    checker.check("overflow: skipped exactly the overflowing steps",
                  float(skipped != [s in overflow_at for s in range(steps)]), 0)
    expected = gradscaler_trajectory(1024, 2.0, 0.5, 2, [s in overflow_at for s in range(steps)])
    ours = [line["loss_scale"] for line in lines]
    print("scale trajectory (ours):       ", ours)
    print("scale trajectory (GradScaler): ", expected)
    checker.check("overflow: scale trajectory equals GradScaler's", float(ours != expected), 0)
    checker.check("overflow: training goes on (final loss finite)",
                  float(not np.isfinite(lines[-1]["loss"])), 0)

    before, after = os.path.join(tmp, "before"), os.path.join(tmp, "after")
    amp_run_step(args, plan, paths[2], 2, before)
    amp_run_step(args, plan, paths[3], 3, after)  # step 3 (index 2) overflows
    names = [f[:-4] for f in os.listdir(before) if f.endswith(".npy") and "loss" not in f
             and not f.startswith(("skipped", "grad_norm"))]
    changed = [n for n in names if n != "loss_scale" and n != "loss_scale.growth_tracker" and
               np.load(os.path.join(before, n + ".npy")).tobytes() !=
               np.load(os.path.join(after, n + ".npy")).tobytes()]
    checker.check(f"overflow: {len(names) - 2} state tensors bit-identical across the skip",
                  float(len(changed)), 0)
    scale_before = float(np.load(os.path.join(before, "loss_scale.npy")))
    scale_after = float(np.load(os.path.join(after, "loss_scale.npy")))
    checker.check("overflow: the scale halves", abs(scale_after - scale_before / 2), 0)

    # The fp16 copies of the weights, written by the updates, equal the
    # master weights rounded to nearest even (numpy's float16 conversion).
    copies = [f[:-8] for f in os.listdir(after) if f.endswith(".low.npy")]
    mismatched = [n for n in copies
                  if np.load(os.path.join(after, n + ".low.npy")).tobytes() !=
                  np.load(os.path.join(after, n + ".npy")).astype(np.float16).tobytes()]
    checker.check(f"fused weight copies: {len(copies)} fp16 copies equal fp16(master)",
                  float(len(mismatched) + (len(copies) == 0)), 0)

    result = subprocess.run([os.path.join(args.bin, "amp-run"), "step", plan, "--steps", "3",
                             "--check-numerics", "--dump", os.path.join(tmp, "numerics")]
                            + sum((["--feed", f"{k}={v}"] for k, v in paths[3].items()), []),
                            capture_output=True, text=True)
    print(result.stderr.strip())
    checker.check("--check-numerics names the first non-finite op and its node",
                  float("step 3: first non-finite value from cast at node '/0/Flatten'"
                        not in result.stderr), 0)


def check_nan_without_skip(args, checker, tmp):
    """Regression: with skip-nonfinite off, a NaN batch was reported as
    "skipped": true while its update was applied."""
    onnx_path = os.path.join(tmp, "nan.onnx")
    mlp.export(mlp.make_mlp(seed=0, hidden=16), onnx_path)
    rng = np.random.default_rng(3)
    images = rng.random((1, BATCH, 1, 28, 28), dtype=np.float32)
    images[0, 0, 0, 0, 0] = np.nan
    feeds = {"input": os.path.join(tmp, "nan_images.npy"),
             "labels": os.path.join(tmp, "nan_labels.npy")}
    np.save(feeds["input"], images)
    np.save(feeds["labels"], rng.integers(0, 10, (1, BATCH), dtype=np.int64))
    # By default the NaN batch is refused before the step runs, naming the input.
    refused_plan = os.path.join(tmp, "refused.ampplan")
    compile_model(args.bin, onnx_path, refused_plan, f"precision=fp32 optimizer=adamw batch={BATCH}")
    result = subprocess.run([os.path.join(args.bin, "amp-run"), "step", refused_plan, "--dump",
                             os.path.join(tmp, "refused")] +
                            [f"--feed={name}={path}" for name, path in feeds.items()],
                            capture_output=True, text=True)
    print(result.stderr.strip())
    checker.check("a NaN batch is refused, naming the input and the element",
                  float(result.returncode != 1 or "step: input 'input': NaN at element 0 (step 1 of 1)"
                        not in result.stderr), 0)
    for name, options, flag in [("fp32-default", "", None),
                                ("fp32-clip-no-skip", "clip=1.0", "nonfinite"),
                                ("fp32-skip", "skip-nonfinite=true", "skipped")]:
        plan = os.path.join(tmp, name + ".ampplan")
        compile_model(args.bin, onnx_path, plan,
                      f"precision=fp32 optimizer=adamw batch={BATCH} {options}")
        dump = os.path.join(tmp, name)
        line = amp_run_step(args, plan, feeds, 1, dump, dump + ".jsonl",
                            ["--allow-nonfinite-inputs"])[0]
        weight = np.load(os.path.join(dump, "1.weight.npy"))
        step = int(np.load(os.path.join(dump, "step.npy")))
        print(f"{name}: metrics {line}; weights finite: {bool(np.isfinite(weight).all())}, "
              f"step {step}")
        applied = flag != "skipped"
        checker.check(f"{name}: the update {'was applied' if applied else 'was skipped'}",
                      float(bool(np.isfinite(weight).all()) == applied or step != int(applied)),
                      0)
        says = {key for key in ("skipped", "nonfinite") if line.get(key)}
        checker.check(f"{name}: metrics report {flag or 'no flag'} and nothing else",
                      float(says != ({flag} if flag else set())), 0)
        if flag is None:
            checker.check(f"{name}: no gradient statistics in a plain FP32 step",
                          float("grad_norm" in line or "loss_scale" in line), 0)


class TinyLossMLP(torch.nn.Module):
    """A bias-free MLP whose loss is scaled by 1e-7: FP16 gradients underflow."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(1)
        self.net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(784, 64, bias=False),
                                       torch.nn.ReLU(), torch.nn.Linear(64, 10, bias=False))

    def forward(self, x, y):
        return torch.nn.functional.cross_entropy(self.net(x), y) * 1e-7


def check_underflow(args, checker, tmp):
    onnx_path = os.path.join(tmp, "tiny.onnx")
    rng = np.random.default_rng(3)
    x = rng.random((BATCH, 1, 28, 28), dtype=np.float32)
    y = rng.integers(0, 10, BATCH, dtype=np.int64)
    torch.onnx.export(TinyLossMLP(), (torch.from_numpy(x), torch.from_numpy(y)), onnx_path,
                      opset_version=17, training=torch.onnx.TrainingMode.TRAINING,
                      do_constant_folding=False, input_names=["x", "y"], output_names=["loss"])
    np.save(os.path.join(tmp, "x.npy"), x)
    np.save(os.path.join(tmp, "y.npy"), y)
    feeds = {"x": os.path.join(tmp, "x.npy"), "y": os.path.join(tmp, "y.npy")}
    result = {}
    for mode in ("none", "dynamic"):
        plan = os.path.join(tmp, f"tiny-{mode}.ampplan")
        compile_model(args.bin, onnx_path, plan,
                      f"precision=fp16 loss=output:loss loss-scale={mode} optimizer=adamw lr=0.01")
        lines = amp_run_step(args, plan, feeds, 30, os.path.join(tmp, f"tiny-{mode}"),
                             os.path.join(tmp, f"tiny-{mode}.jsonl"))
        fall = 1 - lines[-1]["loss"] / lines[0]["loss"]
        result[mode] = (max(line["grad_norm"] for line in lines), fall)
        print(f"fp16, loss-scale={mode}: max gradient norm {result[mode][0]:.3e}, "
              f"loss fell by {100 * fall:.2f}% in 30 steps")
    checker.check("underflow: unscaled FP16 gradients flush to zero", result["none"][0], 0)
    checker.check("underflow: without scaling the loss stalls (< 0.5% change)",
                  float(abs(result["none"][1]) > 0.005), 0)
    checker.check("underflow: with dynamic scaling the loss falls (> 10%)",
                  float(result["dynamic"][1] < 0.10), 0)


def check_clipping(args, checker, tmp):
    onnx_path = os.path.join(tmp, "clip.onnx")
    model = mlp.make_mlp(seed=0, hidden=64)
    initial = {n: p.detach().numpy().copy() for n, p in model.named_parameters()}
    mlp.export(model, onnx_path)
    rng = np.random.default_rng(4)
    images = rng.random((BATCH, 1, 28, 28), dtype=np.float32)
    labels = rng.integers(0, 10, BATCH, dtype=np.int64)
    feeds = {"input": os.path.join(tmp, "ci.npy"), "labels": os.path.join(tmp, "cl.npy")}
    np.save(feeds["input"], images)
    np.save(feeds["labels"], labels)
    # PyTorch: backward, clip_grad_norm_(0.5), SGD step.
    loss = torch.nn.functional.cross_entropy(model(torch.from_numpy(images)),
                                             torch.from_numpy(labels))
    loss.backward()
    total_norm = float(torch.nn.utils.clip_grad_norm_(model.parameters(), 0.5))
    torch.optim.SGD(model.parameters(), lr=0.1).step()
    for precision, bound in (("fp32", 1e-5), ("fp16", 1e-2)):
        plan = os.path.join(tmp, f"clip-{precision}.ampplan")
        compile_model(args.bin, onnx_path, plan,
                      f"precision={precision} optimizer=sgd lr=0.1 clip=0.5 batch={BATCH}")
        dump = os.path.join(tmp, f"clip-{precision}")
        lines = amp_run_step(args, plan, feeds, 1, dump, dump + ".jsonl")
        checker.check(f"clipping {precision}: gradient norm is PyTorch's (unscaled)",
                      relative_error(lines[0]["grad_norm"], total_norm), bound)
        update = {n: np.load(os.path.join(dump, f"{n}.npy")) - initial[n] for n in initial}
        for name, param in model.named_parameters():
            checker.check(f"clipping {precision}: clipped SGD update of {name}",
                          relative_error(update[name], param.detach().numpy() - initial[name]),
                          bound if precision == "fp16" else 1e-4)


class TinySumModel(torch.nn.Module):
    """loss = -sum(log(sum(softmax(x W^T) * 1e-8))): tiny values under the log."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(2)
        self.fc = torch.nn.Linear(16, 8)

    def forward(self, x):
        tiny = torch.softmax(self.fc(x), dim=-1) * 1e-8
        return -torch.log(tiny.sum(dim=1)).sum()


def check_log_sum(args, checker, tmp):
    onnx_path = os.path.join(tmp, "logsum.onnx")
    x = np.random.default_rng(5).standard_normal((BATCH, 16)).astype(np.float32)
    torch.onnx.export(TinySumModel(), torch.from_numpy(x), onnx_path, opset_version=17,
                      training=torch.onnx.TrainingMode.TRAINING, do_constant_folding=False,
                      input_names=["x"], output_names=["loss"])
    np.save(os.path.join(tmp, "lx.npy"), x)
    reference = float(TinySumModel()(torch.from_numpy(x)))
    for policy, expect_finite in (("", True), (" policy=" + os.path.join(tmp, "low.yaml"), False)):
        with open(os.path.join(tmp, "low.yaml"), "w") as f:
            f.write("ops:\n  - op: amp.mul\n    precision: low\n    reason: the pitfall\n")
        plan = os.path.join(tmp, "logsum.ampplan")
        compile_model(args.bin, onnx_path, plan,
                      f"precision=fp16 loss=output:loss optimizer=sgd lr=0.01{policy}")
        lines = amp_run_step(args, plan, {"x": os.path.join(tmp, "lx.npy")}, 1,
                             os.path.join(tmp, "logsum"), os.path.join(tmp, "logsum.jsonl"))
        loss = lines[0]["loss"]
        if expect_finite:
            checker.check("log(sum(tiny)) in FP16 with the default policy matches PyTorch FP32",
                          relative_error(loss, reference), 1e-3)
        else:
            print(f"with amp.mul forced to f16 the loss is {loss} (1e-8 flushes to zero)")
            checker.check("log(sum(tiny)) with the product forced to f16 is not finite",
                          float(loss is not None and bool(np.isfinite(loss))), 0)


def main():
    args = parse_args(__doc__)
    checker = Checker()
    with workdir() as tmp:
        check_overflow(args, checker, tmp)
        check_underflow(args, checker, tmp)
        check_clipping(args, checker, tmp)
        check_log_sum(args, checker, tmp)
        check_nan_without_skip(args, checker, tmp)
    checker.finish()


if __name__ == "__main__":
    main()
