"""FP32 training throughput on the CPU: AMP-MLIR's runtime vs PyTorch.

Both train the Fashion-MNIST MLP (784-512-512-10, AdamW lr 1e-3) on random
batches of the same size, in the same run, on the same cores: W warm-up steps,
then R repetitions of S steps each; the table gives the median samples/s and
the ratio. Run with Debian's /usr/bin/python3 (PyTorch 1.13):

    /usr/bin/python3 bench/mlp_cpu.py --bin build/bin --batch 256
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

import torch

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "test", "models"))
import mlp  # noqa: E402


def bench_ours(bin_dir, batch, steps, warmup, repeat):
    with tempfile.TemporaryDirectory() as tmp:
        onnx_path = os.path.join(tmp, "mlp.onnx")
        plan = os.path.join(tmp, "mlp.ampplan")
        mlp.export(mlp.make_mlp(seed=0), onnx_path)
        subprocess.run([os.path.join(bin_dir, "amp-opt"), onnx_path,
                        f"--amp-pipeline=precision=fp32 optimizer=adamw lr=0.001 batch={batch}",
                        "--emit=plan", "-o", plan], check=True)
        out = subprocess.run([os.path.join(bin_dir, "amp-run"), "bench", plan,
                              "--steps", str(steps), "--warmup", str(warmup),
                              "--repeat", str(repeat)],
                             check=True, capture_output=True, text=True).stdout
    return json.loads(out)


def bench_torch(batch, steps, warmup, repeat):
    model = mlp.make_mlp(seed=0)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    images = torch.rand(batch, 1, 28, 28)
    labels = torch.randint(0, 10, (batch,))

    def step():
        optimizer.zero_grad(set_to_none=True)
        torch.nn.functional.cross_entropy(model(images), labels).backward()
        optimizer.step()

    for _ in range(warmup):
        step()
    rates = []
    for _ in range(repeat):
        start = time.perf_counter()
        for _ in range(steps):
            step()
        rates.append(steps * batch / (time.perf_counter() - start))
    return statistics.median(rates)


def blas_library():
    """The BLAS that this PyTorch (Debian's, BLAS_INFO=generic) has loaded."""
    with open("/proc/self/maps") as maps:
        for line in maps:
            if "blas" in line.split("/")[-1]:
                return os.path.realpath(line.split()[-1])
    return "unknown"


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bin", default="build/bin")
    parser.add_argument("--batch", type=int, nargs="+", default=[256])
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    torch.set_num_threads(os.cpu_count())
    print(f"PyTorch's BLAS: {blas_library()}")
    print(f"CPU: {os.cpu_count()} cores; PyTorch {torch.__version__}; "
          f"median of {args.repeat} x {args.steps} steps after {args.warmup} warm-up steps")
    print(f"{'batch':>6} {'AMP-MLIR fp32 samples/s':>24} {'PyTorch fp32 samples/s':>23} {'ratio':>6}")
    for batch in args.batch:
        ours = bench_ours(args.bin, batch, args.steps, args.warmup, args.repeat)
        theirs = bench_torch(batch, args.steps, args.warmup, args.repeat)
        rate = ours["median_samples_per_s"]
        print(f"{batch:>6} {rate:>24.0f} {theirs:>23.0f} {rate / theirs:>6.2f}")


if __name__ == "__main__":
    main()
