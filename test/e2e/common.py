"""Shared helpers of the end-to-end tests: tools, model export, comparisons."""
import argparse
import json
import os
import subprocess
import sys
import tempfile

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "models"))
import mlp  # noqa: E402  (the model of the acceptance tests)


SKIPPED = 77  # ctest's SKIP_RETURN_CODE for the GPU variants


def parse_args(description):
    """The suite's arguments. Under AMP_DEVICE=cuda (the gpu.* variants of the
    suites) every amp-run call runs on the GPU; without one the suite exits
    with SKIPPED, which ctest reports as skipped, not passed."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--bin", required=True, help="folder holding amp-opt and amp-run")
    args = parser.parse_args()
    device = os.environ.get("AMP_DEVICE", "cpu")
    if device.startswith("cuda"):
        listed = run([os.path.join(args.bin, "amp-run"), "devices"])
        if "cuda:" not in listed:
            print(f"SKIPPED: AMP_DEVICE={device} but this machine has no usable GPU\n{listed}")
            sys.exit(SKIPPED)
        print(f"device: {[l for l in listed.splitlines() if l.startswith('cuda:')][0]}")
    if os.environ.get("AMP_CPU_GEMMS") == "fastest" and not device.startswith("cuda"):
        # The gemms.fastest.* variants: bf16 GEMMs and convolutions widened by
        # choice, on CPUs where --cpu-gemms fastest widens them; elsewhere it
        # runs what the plain run does.
        listed = run([os.path.join(args.bin, "amp-run"), "devices"])
        if "bf16 with --cpu-gemms fastest: GEMMs" not in listed:
            print(f"SKIPPED: --cpu-gemms fastest widens nothing here\n{listed}")
            sys.exit(SKIPPED)
    return args


def run(cmd, **kwargs):
    """Runs a tool; on failure prints its output and raises."""
    result = subprocess.run([str(c) for c in cmd], capture_output=True, text=True,
                            errors="replace", **kwargs)
    if result.returncode != 0:
        sys.stderr.write(result.stdout + result.stderr)
        raise SystemExit(f"command failed ({result.returncode}): {' '.join(map(str, cmd))}")
    return result.stdout


def compile_model(bin_dir, onnx_path, plan_path, pipeline):
    run([os.path.join(bin_dir, "amp-opt"), onnx_path, f"--amp-pipeline={pipeline}",
         "--emit=plan", "-o", plan_path])


def compile_and_step(bin_dir, tmp, onnx_path, pipeline, feeds, tag, steps=1):
    """Compiles the model with `pipeline` and runs `amp-run step` on `feeds`
    (name -> array, saved as .npy; with several steps each holds them all,
    the rows of one step after another). Returns the dump folder (loss,
    gradients, state) and the per-step metrics (dicts)."""
    plan = os.path.join(tmp, f"{tag}.ampplan")
    compile_model(bin_dir, onnx_path, plan, pipeline)
    arguments = []
    for name, value in feeds.items():
        path = os.path.join(tmp, f"{tag}-{name}.npy")
        np.save(path, value)
        arguments += ["--feed", f"{name}={path}"]
    dump, metrics = os.path.join(tmp, tag), os.path.join(tmp, f"{tag}-metrics.jsonl")
    run([os.path.join(bin_dir, "amp-run"), "step", plan, "--steps", steps, *arguments,
         "--metrics", metrics, "--dump", dump])
    with open(metrics) as f:
        return dump, [json.loads(line) for line in f]


def pytorch_adamw_losses(model, inputs, labels, steps, batch, lr):
    """PyTorch's losses over `steps` AdamW steps of `model` (in its current
    mode) on consecutive batches of `inputs` and `labels`: cross-entropy
    over the logits' last dim, every other dim flattened (images' [N, C] as
    a sequence model's [N, S, V])."""
    import torch
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr)
    losses = []
    for step in range(steps):
        rows = slice(step * batch, (step + 1) * batch)
        optimizer.zero_grad()
        logits = model(torch.from_numpy(inputs[rows]))
        loss = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]),
                                                 torch.from_numpy(labels[rows]).reshape(-1))
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return np.array(losses)


def train_on_fashion_mnist(bin_dir, tmp, onnx_path, tag, pipeline, epochs):
    """Compiles the model with `pipeline` and trains it with `amp-run train`
    on Fashion-MNIST (seed 0); prints amp-run's summary line and returns the
    metrics lines (dicts)."""
    plan = os.path.join(tmp, f"{tag}.ampplan")
    metrics = os.path.join(tmp, f"{tag}-metrics.jsonl")
    compile_model(bin_dir, onnx_path, plan, pipeline)
    print(f"{tag}: " + run([os.path.join(bin_dir, "amp-run"), "train", plan, "--data",
                            "fashion-mnist=/usr/share/datasets/fashion-mnist", "--epochs",
                            epochs, "--seed", 0, "--metrics", metrics, "--checkpoint",
                            plan + ".ckpt"]).strip())
    with open(metrics) as f:
        return [json.loads(line) for line in f]


def compare_loss_curves(ours, reference, noise, shown, early=0):
    """Prints our FP32/BF16/FP16 loss curves (`ours`: precision -> losses)
    beside PyTorch's FP32 `reference` at the `shown` steps and returns the
    failures: our FP32 more than 1e-3 relative from PyTorch's (or three times
    `noise`, PyTorch's own gap between thread counts, if larger; within 1e-3
    regardless over the first `early` steps), BF16 or FP16 more than 3% from
    our FP32 or not finite."""
    print(f"{'step':>4} {'pytorch fp32':>13} {'ours fp32':>10} {'ours bf16':>10} {'ours fp16':>10}")
    for step in shown:
        print(f"{step + 1:>4} {reference[step]:>13.5f} {ours['fp32'][step]:>10.5f} "
              f"{ours['bf16'][step]:>10.5f} {ours['fp16'][step]:>10.5f}")
    gap = np.abs(ours["fp32"] - reference) / np.abs(reference)
    first = gap[:early].max(initial=0.0)
    bound = max(1e-3, 3 * noise.max())
    print(f"fp32 vs PyTorch: max relative gap {first:.2e} over the first {early} steps (bound "
          f"1e-3), {gap.max():.2e} over all {gap.size} (bound {bound:.2e}: 1e-3, or three times "
          f"PyTorch's own gap between thread counts, {noise.max():.2e})")
    failures = [] if first <= 1e-3 and gap.max() <= bound else [
        "our FP32 loss strays from PyTorch's"]
    for precision in ("bf16", "fp16"):
        gap = np.abs(ours[precision] - ours["fp32"]) / np.abs(ours["fp32"])
        print(f"{precision} vs our fp32: max relative gap {gap.max():.2e} (bound 3e-2)")
        if not np.all(np.isfinite(ours[precision])) or gap.max() > 0.03:
            failures.append(f"the {precision} loss curve strays from FP32's")
    return failures


def relative_error(ours, reference):
    ours = np.asarray(ours, dtype=np.float64)
    reference = np.asarray(reference, dtype=np.float64)
    return np.linalg.norm(ours - reference) / max(np.linalg.norm(reference), 1e-30)


class Checker:
    """Collects comparisons, prints a table, and fails the test at the end."""

    def __init__(self):
        self.failures = 0

    def check(self, what, error, bound):
        ok = error <= bound
        self.failures += not ok
        print(f"{'ok  ' if ok else 'FAIL'} {what:<40} rel.err {error:.3e} (bound {bound:.0e})")

    def require(self, what, ok):
        """A condition without a number (a precision the report shows)."""
        self.failures += not ok
        print(f"{'ok  ' if ok else 'FAIL'} {what}")

    def finish(self):
        if self.failures:
            raise SystemExit(f"{self.failures} comparison(s) out of bounds")
        print("all comparisons within bounds")


def workdir():
    return tempfile.TemporaryDirectory(prefix="amp-e2e-")


# Open MPI as root needs its consent; 2 ranks on 2 cores need oversubscribing.
MPI_ENV = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1",
               OMPI_MCA_rmaps_base_oversubscribe="1")


def mpirun_command(ranks, *cmd):
    return ["mpirun", "-np", str(ranks), "--oversubscribe", "--bind-to", "none",
            *[str(c) for c in cmd]]


def gpu_count(bin_dir):
    """The usable GPUs amp-run lists (0 on a CPU-only machine)."""
    listed = subprocess.run([os.path.join(bin_dir, "amp-run"), "devices"], capture_output=True,
                            text=True).stdout
    return sum(line.startswith("cuda:") for line in listed.splitlines())
