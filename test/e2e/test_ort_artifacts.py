"""onnxruntime-training artifact sets imported, rewritten into mixed precision
and trained, against onnxruntime-training itself.

onnxruntime-training 1.19 comes from PyPI into a venv beside the build
(build/ort-venv, with Debian's python and its torch, which ORT's artifact
tools import); where pip cannot install it the suite is skipped (exit 77)
with the reason. For each model (the Fashion-MNIST MLP and LeNet-BN, both
exported by PyTorch) ORT generates its artifacts (cross-entropy, AdamW) and
trains 20 steps of batch 64 on the first Fashion-MNIST images with its own
training API (lr 1e-3). amp-opt compiles the same artifact folder in FP32,
BF16 and FP16 and amp-run steps through the same batches:
- FP32 losses equal ORT's within 1e-4 relative at every step;
- BF16 and FP16 losses stay within 3% of our FP32;
- the BF16 decision report puts every GEMM (forward and backward) in bf16
  and the loss and its gradient in f32.
Then the MLP trains 2 epochs on Fashion-MNIST (batch 256, seed 0) from its
artifacts and from its forward export (AdamW lr 1e-3, eps 1e-6, no weight
decay, as the artifacts, but PyTorch's AdamW where ORT's is HuggingFace's): FP32 test accuracies within 0.5 points of each other, BF16
and FP16 from the artifacts within 0.5 points of that FP32.
"""
import fcntl
import gzip
import json
import os
import subprocess
import sys

import numpy as np

from common import (SKIPPED, Checker, compile_model, mlp, parse_args, run,
                    train_on_fashion_mnist, workdir)

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "models"))
import lenet_bn  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
DATA = "/usr/share/datasets/fashion-mnist"
STEPS, RESUMED, BATCH = 20, 5, 64
FEEDS = {"first": {}, "next": {}}  # name -> .npy of the first 20 and the next 5 batches


def ort_python(bin_dir):
    """The venv's python with onnxruntime-training, made on first use (under
    a lock: the ISA-capped variant of this suite may run alongside)."""
    venv = os.path.join(bin_dir, "..", "ort-venv")
    with open(venv + ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        return make_venv(venv)


def make_venv(venv):
    python = os.path.join(venv, "bin", "python")
    requirements = os.path.join(HERE, "ort-requirements.txt")
    stamp = os.path.join(venv, "requirements.txt")
    with open(requirements) as f:
        wanted = f.read()
    if os.path.exists(stamp) and open(stamp).read() == wanted:
        return python
    steps = [["/usr/bin/python3", "-m", "venv", "--system-site-packages", venv],
             [python, "-m", "pip", "install", "-q", "-r", requirements]]
    for step in steps:
        result = subprocess.run(step, capture_output=True, text=True)
        if result.returncode != 0:
            print(f"SKIPPED: onnxruntime-training cannot be installed ({' '.join(step)}):\n"
                  f"{result.stdout[-2000:]}{result.stderr[-2000:]}")
            sys.exit(SKIPPED)
    with open(stamp, "w") as f:
        f.write(wanted)
    return python


def read_idx(name, rows=None):
    with gzip.open(os.path.join(DATA, name + ".gz")) as f:
        raw = f.read()
    if "images" in name:
        data = np.frombuffer(raw, np.uint8, offset=16).reshape(-1, 1, 28, 28)
        return (data[:rows] / np.float32(255)).astype(np.float32)
    return np.frombuffer(raw, np.uint8, offset=8)[:rows].astype(np.int64)


def our_losses(bin_dir, plan, feeds, steps, *flags):
    """amp-run step's loss at each of `steps` steps on `feeds` (name -> .npy)."""
    metrics, dump = plan + ".jsonl", plan + ".dump"
    run([os.path.join(bin_dir, "amp-run"), "step", plan, "--steps", steps,
         *sum((["--feed", f"{name}={path}"] for name, path in feeds.items()), []),
         "--metrics", metrics, "--dump", dump, *flags])
    with open(metrics) as f:
        return np.array([json.loads(line)["loss"] for line in f])


def check_report(bin_dir, tmp, folder, checker, name):
    report = os.path.join(tmp, f"{name}-report.json")
    run([os.path.join(bin_dir, "amp-opt"), folder, f"--amp-pipeline=precision=bf16 batch={BATCH}",
         f"--amp-report={report}", "-o", os.path.join(tmp, f"{name}-bf16.mlir")])
    with open(report) as f:
        ops = json.load(f)["ops"]
    by_kind = {}
    for op in ops:
        by_kind.setdefault(op["op"], set()).add(op["precision"])
    gemms = set().union(*(by_kind.get(kind, set()) for kind in (
        "amp.matmul", "amp.conv", "amp.conv_backward_data", "amp.conv_backward_filter")))
    print(f"{name} bf16 report: GEMMs {sorted(gemms)}, loss "
          f"{sorted(by_kind['amp.softmax_cross_entropy'])}, loss gradient "
          f"{sorted(by_kind['amp.softmax_cross_entropy_grad'])}")
    checker.require(f"{name}: every GEMM bf16", gemms == {"bf16"})
    checker.require(f"{name}: loss and loss gradient f32",
                  by_kind["amp.softmax_cross_entropy"] == {"f32"} and
                  by_kind["amp.softmax_cross_entropy_grad"] == {"f32"})


def ort_losses(python, tmp, folder, steps, *flags):
    out = os.path.join(tmp, "ort-losses.npy")
    run([python, os.path.join(HERE, "ort_reference.py"), "train", folder,
         os.path.join(tmp, "input.npy"), os.path.join(tmp, "labels.npy"), steps, BATCH, out,
         *flags])
    return np.load(out)


def compare_with_ort(args, tmp, python, name, onnx_path, checker):
    folder = os.path.join(tmp, f"{name}-artifacts")
    run([python, os.path.join(HERE, "ort_reference.py"), "artifacts", onnx_path, folder])
    ort = ort_losses(python, tmp, folder, STEPS)
    ours, plans = {}, {}
    for p in ("fp32", "bf16", "fp16"):
        plans[p] = os.path.join(tmp, f"{name}-{p}.ampplan")
        compile_model(args.bin, folder, plans[p], f"precision={p} batch={BATCH}")
        ours[p] = our_losses(args.bin, plans[p], FEEDS["first"], STEPS,
                             "--checkpoint", plans[p] + ".ckpt")
    print(f"{name}: {'step':>4} {'ORT fp32':>9} {'ours fp32':>10} {'bf16':>9} {'fp16':>9}")
    for step in (0, 1, 4, 9, 14, 19):
        print(f"{name}: {step + 1:>4} {ort[step]:>9.5f} {ours['fp32'][step]:>10.5f} "
              f"{ours['bf16'][step]:>9.5f} {ours['fp16'][step]:>9.5f}")
    checker.check(f"{name}: fp32 loss vs ORT's, every step",
                  np.max(np.abs(ours["fp32"] - ort) / np.abs(ort)), 1e-4)
    for precision in ("bf16", "fp16"):
        gap = np.max(np.abs(ours[precision] - ours["fp32"]) / np.abs(ours["fp32"]))
        checker.check(f"{name}: {precision} loss vs our fp32",
                      gap if np.all(np.isfinite(ours[precision])) else np.inf, 0.03)
    check_report(args.bin, tmp, folder, checker, name)

    # Our FP32 state after 20 steps, exported into ORT's checkpoint format:
    # ORT resumes from it as we resume from ours (the same parameters,
    # moments and step, or the next losses would differ).
    plan, exported = plans["fp32"], os.path.join(tmp, f"{name}-exported.ckpt")
    run([os.path.join(args.bin, "amp-run"), "export", plan, "--checkpoint", plan + ".ckpt",
         "--ort-checkpoint", os.path.join(folder, "checkpoint"), "--output", exported])
    ort_resumed = ort_losses(python, tmp, folder, RESUMED, "--checkpoint", exported,
                             "--first", STEPS)
    ours_resumed = our_losses(args.bin, plan, FEEDS["next"], RESUMED, "--resume", plan + ".ckpt")
    print(f"{name}: steps 21-25 resumed, ORT from our exported checkpoint "
          f"{np.round(ort_resumed, 5)}, ours {np.round(ours_resumed, 5)}")
    checker.check(f"{name}: ORT resumed from our checkpoint",
                  np.max(np.abs(ours_resumed - ort_resumed) / np.abs(ort_resumed)), 1e-4)
    return folder, plan, ours_resumed[0]


def check_eval_export(args, tmp, python, folder, plan, loss, checker):
    """The trained parameters written into the artifacts' eval model (which
    takes them as graph inputs): onnxruntime computes our next loss."""
    model = os.path.join(tmp, "trained-eval.onnx")
    run([os.path.join(args.bin, "amp-run"), "export", plan, "--checkpoint", plan + ".ckpt",
         "--onnx", os.path.join(folder, "eval_model.onnx"), "--output", model])
    batch = {name: np.load(path)[:BATCH] for name, path in FEEDS["next"].items()}
    for name, value in batch.items():
        np.save(os.path.join(tmp, f"eval-{name}.npy"), value)
    ort = float(run([python, os.path.join(HERE, "ort_reference.py"), "eval", model,
                     os.path.join(tmp, "eval-input.npy"), os.path.join(tmp, "eval-labels.npy")]))
    print(f"exported eval model: onnxruntime's loss {ort:.6f}, ours {loss:.6f}")
    checker.check("exported eval model's loss vs ours", abs(ort - loss) / abs(loss), 1e-5)


def main():
    args = parse_args(__doc__)
    python = ort_python(args.bin)
    checker = Checker()
    with workdir() as tmp:
        rows = (STEPS + RESUMED) * BATCH
        data = {"input": read_idx("train-images-idx3-ubyte", rows),
                "labels": read_idx("train-labels-idx1-ubyte", rows)}
        for name, value in data.items():
            np.save(os.path.join(tmp, f"{name}.npy"), value)
            for part, span in (("first", slice(0, STEPS * BATCH)), ("next", slice(STEPS * BATCH, rows))):
                FEEDS[part][name] = os.path.join(tmp, f"{name}-{part}.npy")
                np.save(FEEDS[part][name], value[span])
        mlp_path, lenet_path = os.path.join(tmp, "mlp.onnx"), os.path.join(tmp, "lenet.onnx")
        mlp.export(mlp.make_mlp(seed=0), mlp_path)
        lenet_bn.export(lenet_bn.make_lenet_bn(seed=0), lenet_path)
        mlp_folder, mlp_plan, next_loss = compare_with_ort(args, tmp, python, "mlp", mlp_path,
                                                           checker)
        check_eval_export(args, tmp, python, mlp_folder, mlp_plan, next_loss, checker)
        compare_with_ort(args, tmp, python, "lenet-bn", lenet_path, checker)

        def accuracy(source, tag, pipeline):
            lines = train_on_fashion_mnist(args.bin, tmp, source, tag, pipeline, 2)
            return [line for line in lines if "test_accuracy" in line][-1]["test_accuracy"]

        export = accuracy(mlp_path, "export-fp32", "precision=fp32 loss=cross-entropy "
                          "optimizer=adamw lr=0.001 eps=0.000001 weight-decay=0 batch=256")
        ours = {p: accuracy(mlp_folder, f"artifacts-{p}", f"precision={p} batch=256")
                for p in ("fp32", "bf16", "fp16")}
        print(f"Fashion-MNIST test accuracy after 2 epochs: forward export fp32 {export:.4f}; "
              + ", ".join(f"artifacts {p} {a:.4f}" for p, a in ours.items()))
        # Accuracy gaps as fractions (0.005: half a point).
        checker.check("accuracy: artifacts fp32 vs forward export", abs(ours["fp32"] - export),
                      0.005)
        for precision in ("bf16", "fp16"):
            checker.check(f"accuracy: artifacts {precision} vs fp32",
                          abs(ours[precision] - ours["fp32"]), 0.005)
    checker.finish()


if __name__ == "__main__":
    main()
