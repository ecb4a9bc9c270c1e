"""Training throughput on the CPU: AMP-MLIR's runtime vs PyTorch, FP32 and BF16.

All rows train the Fashion-MNIST MLP (784-512-512-10, AdamW lr 1e-3) on
random batches of the same size, in the same run, on the same cores: W
warm-up steps, then R repetitions of S steps each; the table gives the median
samples/s of each and the ratios. Our rows use plans compiled with
precision=fp32, bf16 and fp16; PyTorch's rows are eager FP32 and eager
torch.autocast("cpu", dtype=torch.bfloat16). Run with Debian's
/usr/bin/python3 (PyTorch 1.13):

    /usr/bin/python3 bench/mlp_cpu.py --bin build/bin --batch 256 1024
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


def bench_ours(bin_dir, precision, batch, steps, warmup, repeat):
    with tempfile.TemporaryDirectory() as tmp:
        onnx_path = os.path.join(tmp, "mlp.onnx")
        plan = os.path.join(tmp, "mlp.ampplan")
        mlp.export(mlp.make_mlp(seed=0), onnx_path)
        subprocess.run([os.path.join(bin_dir, "amp-opt"), onnx_path,
                        f"--amp-pipeline=precision={precision} optimizer=adamw lr=0.001 "
                        f"batch={batch}", "--emit=plan", "-o", plan], check=True)
        out = subprocess.run([os.path.join(bin_dir, "amp-run"), "bench", plan,
                              "--steps", str(steps), "--warmup", str(warmup),
                              "--repeat", str(repeat)],
                             check=True, capture_output=True, text=True).stdout
    return json.loads(out)


def bench_torch(autocast, batch, steps, warmup, repeat):
    model = mlp.make_mlp(seed=0)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    images = torch.rand(batch, 1, 28, 28)
    labels = torch.randint(0, 10, (batch,))

    def step():
        optimizer.zero_grad(set_to_none=True)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
            loss = torch.nn.functional.cross_entropy(model(images), labels)
        loss.backward()
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
    header = ["batch", "ours fp32", "ours bf16", "ours fp16", "torch fp32", "torch bf16",
              "bf16/fp32 (ours)", "ours bf16/torch bf16", "ours fp32/torch fp32",
              "arena fp32 MiB", "arena bf16 MiB"]
    print(" | ".join(header))
    for batch in args.batch:
        ours = {p: bench_ours(args.bin, p, batch, args.steps, args.warmup, args.repeat)
                for p in ("fp32", "bf16", "fp16")}
        rate = {p: r["median_samples_per_s"] for p, r in ours.items()}
        torch32 = bench_torch(False, batch, args.steps, args.warmup, args.repeat)
        torch16 = bench_torch(True, batch, args.steps, args.warmup, args.repeat)
        row = [batch, f"{rate['fp32']:.0f}", f"{rate['bf16']:.0f}", f"{rate['fp16']:.0f}",
               f"{torch32:.0f}", f"{torch16:.0f}", f"{rate['bf16'] / rate['fp32']:.2f}",
               f"{rate['bf16'] / torch16:.2f}", f"{rate['fp32'] / torch32:.2f}",
               f"{ours['fp32']['arena_bytes'] / 2**20:.1f}",
               f"{ours['bf16']['arena_bytes'] / 2**20:.1f}"]
        print(" | ".join(str(x) for x in row), flush=True)

if __name__ == "__main__":
    main()
