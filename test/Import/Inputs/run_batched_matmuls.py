"""Runs the batched_matmuls plan (BF16, batch 8) with amp-run forward on random
inputs and checks both products against numpy's on the bf16-rounded inputs
(rtol 1e-2: the products are rounded to bf16 once)."""
import os
import subprocess
import sys

import numpy as np


def bf16(x):
    bits = x.astype(np.float32).view(np.uint32)
    rounded = (bits + 0x7FFF + ((bits >> 16) & 1)) & 0xFFFF0000
    return rounded.astype(np.uint32).view(np.float32)


amp_run, plan, work = sys.argv[1:4]
rng = np.random.default_rng(0)
inputs = {"x": rng.standard_normal((8, 4, 6)), "a": rng.standard_normal((2, 1, 4, 6)),
          "b": rng.standard_normal((3, 6, 5))}
feeds = []
for name, value in inputs.items():
    path = os.path.join(work, f"{name}.npy")
    np.save(path, value.astype(np.float32))
    feeds += ["--feed", f"{name}={path}"]
subprocess.run([amp_run, "forward", plan, *feeds, "--dump", work], check=True)
w = (np.arange(18, dtype=np.float32) * 0.25).reshape(6, 3)  # onnx_models.tensor("w", [6, 3])
expected = {"y": bf16(inputs["x"]) @ w, "c": bf16(inputs["a"]) @ bf16(inputs["b"])}
for name, reference in expected.items():
    ours = np.load(os.path.join(work, f"{name}.npy"))
    if ours.shape != reference.shape or not np.allclose(ours, reference, rtol=1e-2, atol=1e-2):
        sys.exit(f"{name}: shape {ours.shape}, max abs diff {np.abs(ours - reference).max()}")
    print(f"{name}: max abs diff {np.abs(ours - reference).max():.2e}")
