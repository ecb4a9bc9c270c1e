"""compute-sanitizer memcheck over the CUDA backend: training steps (graph
replays included) and evaluation of the MLP in FP32, BF16 and FP16 must
report no memory error. Runs only as gpu.e2e.gpu_memcheck; skipped without a
GPU or without compute-sanitizer (part of the CUDA toolkit).
"""
import os
import shutil
import sys

import numpy as np

from common import SKIPPED, compile_model, mlp, parse_args, run, workdir


def main():
    args = parse_args(__doc__)
    sanitizer = shutil.which("compute-sanitizer") or "/usr/local/cuda/bin/compute-sanitizer"
    if not os.path.exists(sanitizer):
        print("SKIPPED: compute-sanitizer not found")
        sys.exit(SKIPPED)
    rng = np.random.default_rng(1)
    with workdir() as tmp:
        onnx_path = os.path.join(tmp, "mlp.onnx")
        mlp.export(mlp.make_mlp(seed=0), onnx_path)
        np.save(os.path.join(tmp, "x.npy"), rng.random((64, 1, 28, 28), dtype=np.float32))
        np.save(os.path.join(tmp, "labels.npy"), rng.integers(0, 10, 64).astype(np.int64))
        for precision in ("fp32", "bf16", "fp16"):
            plan = os.path.join(tmp, f"mlp-{precision}.ampplan")
            compile_model(args.bin, onnx_path, plan,
                          f"precision={precision} loss=cross-entropy optimizer=adamw batch=64")
            amp_run = os.path.join(args.bin, "amp-run")
            for command in (["bench", plan, "--steps", 3, "--warmup", 1, "--repeat", 1],
                            ["step", plan, "--steps", 2, "--dump", os.path.join(tmp, precision),
                             "--feed", f"input={tmp}/x.npy", "--feed", f"labels={tmp}/labels.npy"],
                            ["forward", plan, "--dump", os.path.join(tmp, precision + "-eval"),
                             "--feed", f"input={tmp}/x.npy"]):
                out = run([sanitizer, "--tool", "memcheck", "--error-exitcode", "1",
                           "--leak-check", "full", amp_run, *command, "--device", "cuda"])
                summary = [l for l in out.splitlines() if "ERROR SUMMARY" in l]
                print(f"{precision} {command[0]}: {summary[-1] if summary else out[-200:]}")
    print("memcheck clean")


if __name__ == "__main__":
    main()
