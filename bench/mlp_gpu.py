"""Training throughput on one GPU: AMP-MLIR's CUDA backend vs PyTorch.

Every row trains the Fashion-MNIST MLP (784-512-512-10, AdamW lr 1e-3, mean
cross-entropy) from the same initial weights on random batches of the same
size, in one run on the same GPU: W warm-up steps, then R repetitions of S
steps; each row gives the median samples/s, the peak device memory and the
GEMM TFLOP/s achieved over the whole step (the MLP's GEMM FLOPs per step x
steps/s). Rows:
  ours fp32 / bf16 / fp16   amp-run bench --device cuda (FP32: true FP32,
                            no TF32); memory: the plan's state + arena + the
                            32 MiB cuBLASLt workspace
  torch eager fp32          TF32 off, as ours
  torch eager amp bf16      torch.autocast("cuda", torch.bfloat16), fp32 master weights
  torch.compile amp bf16    the same step, the model under torch.compile
PyTorch's memory is torch.cuda.max_memory_allocated. Needs a machine with the
project's build (amp-opt, amp-run with the CUDA backend), a GPU and PyTorch
2.x with CUDA:

    python3 bench/mlp_gpu.py --bin build/bin --batch 4096
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

LAYERS = [(784, 512), (512, 512), (512, 10)]
WORKSPACE = 32 << 20  # cuBLASLt workspace of our CUDA backend


def gemm_flops(batch):
    """Forward, weight gradients, and input gradients of every layer but the first."""
    forward = sum(2 * batch * k * n for k, n in LAYERS)
    return forward + forward + sum(2 * batch * k * n for k, n in LAYERS[1:])


def bench_ours(args, onnx_path, precision, tmp):
    plan = os.path.join(tmp, f"mlp-{precision}.ampplan")
    subprocess.run([os.path.join(args.bin, "amp-opt"), onnx_path,
                    f"--amp-pipeline=precision={precision} optimizer=adamw lr=0.001 "
                    f"batch={args.batch}", "--emit=plan", "-o", plan], check=True)
    out = subprocess.run([os.path.join(args.bin, "amp-run"), "bench", plan, "--device", "cuda",
                          "--steps", str(args.steps), "--warmup", str(args.warmup),
                          "--repeat", str(args.repeat)],
                         check=True, capture_output=True, text=True).stdout
    result = json.loads(out)
    return result["median_samples_per_s"], result["plan_bytes"] + WORKSPACE, result["device"]


def bench_torch(args, mode):
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    torch.manual_seed(0)
    model = mlp.make_mlp(seed=0).cuda()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    forward = torch.compile(model) if mode == "compile" else model
    images = torch.rand(args.batch, 1, 28, 28, device="cuda")
    labels = torch.randint(0, 10, (args.batch,), device="cuda")

    def step():
        optimizer.zero_grad(set_to_none=True)
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=mode != "fp32"):
            loss = torch.nn.functional.cross_entropy(forward(images), labels)
        loss.backward()
        optimizer.step()

    for _ in range(args.warmup):
        step()
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    rates = []
    for _ in range(args.repeat):
        start = time.perf_counter()
        for _ in range(args.steps):
            step()
        torch.cuda.synchronize()
        rates.append(args.steps * args.batch / (time.perf_counter() - start))
    return statistics.median(rates), torch.cuda.max_memory_allocated()


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bin", default="build/bin")
    parser.add_argument("--batch", type=int, default=4096)
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    if not torch.cuda.is_available():
        raise SystemExit("no GPU visible to PyTorch: this benchmark needs one")
    rows = {}
    with tempfile.TemporaryDirectory() as tmp:
        onnx_path = os.path.join(tmp, "mlp.onnx")
        mlp.export(mlp.make_mlp(seed=0), onnx_path)
        device = None
        for precision in ("fp32", "bf16", "fp16"):
            rate, memory, device = bench_ours(args, onnx_path, precision, tmp)
            rows[f"ours {precision}"] = (rate, memory)
    for name, mode in (("torch eager fp32", "fp32"), ("torch eager amp bf16", "amp"),
                       ("torch.compile amp bf16", "compile")):
        rows[name] = bench_torch(args, mode)
    flops = gemm_flops(args.batch)
    print(f"device: {device}; batch {args.batch}; median of {args.repeat} x {args.steps} steps")
    print(f"| {'row':<24} | {'samples/s':>10} | {'peak MiB':>9} | {'GEMM TFLOP/s':>12} |")
    print(f"|{'-' * 26}|{'-' * 12}|{'-' * 11}|{'-' * 14}|")
    for name, (rate, memory) in rows.items():
        tflops = flops * rate / args.batch / 1e12
        print(f"| {name:<24} | {rate:>10.0f} | {memory / 2**20:>9.1f} | {tflops:>12.1f} |")
    ours = {p: rows[f"ours {p}"] for p in ("fp32", "bf16", "fp16")}
    print(f"ours bf16 / ours fp32: {ours['bf16'][0] / ours['fp32'][0]:.2f}x speed, "
          f"{ours['bf16'][1] / ours['fp32'][1]:.2f}x memory")
    print(f"ours bf16 / torch eager amp bf16: {ours['bf16'][0] / rows['torch eager amp bf16'][0]:.2f}x")
    print(f"ours bf16 / torch.compile amp bf16: "
          f"{ours['bf16'][0] / rows['torch.compile amp bf16'][0]:.2f}x")


if __name__ == "__main__":
    main()
