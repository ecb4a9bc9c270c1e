"""Data-parallel training on this machine: 1 rank against 2 ranks (mpirun),
and a paper estimate of the all-reduce at 8 and 64 GPUs.

For each model and precision, the same global batch G is trained as
  1 rank    one process, batch G, --threads 2 (both cores)
  2 ranks   mpirun -np 2, batch G/2 per rank, --threads 1 each
Each cell is the median over --rounds rounds (run round-robin over the
rows) of amp-run bench's median step time (--repeat repetitions of --steps
steps). A second, profiled run per 2-rank row (amp-run bench --profile,
which times every kernel alone) gives the share of the step spent in the
all_reduce kernels: the collective itself plus the wait for the slower rank,
since a rank that arrives first waits inside it.

The estimate: the bytes each step reduces (every parameter's gradient, in
FP32, or BF16 with grad-reduce=bf16) through NCCL's ring all-reduce, which
moves 2 (n - 1) / n times the buffer over each GPU's link, at published
bus bandwidths (see BANDWIDTHS), plus a per-bucket latency. No GPU ran
this: it is arithmetic, printed with its inputs.
usage: /usr/bin/python3 bench/data_parallel.py --bin build/bin [--models mlp,resnet18]"""
import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile

import onnx

HERE = os.path.dirname(os.path.abspath(__file__))
MPI_ENV = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1",
               OMPI_MCA_rmaps_base_oversubscribe="1")
GLOBAL_BATCH = {"mlp": 256, "lenet_bn": 256, "resnet18": 64}
# NCCL all-reduce bus bandwidth (GB/s) and per-collective latency (us) assumed for
# the estimate. 8 GPUs: one HGX H100 node, NVLink 4 + NVSwitch; nccl-tests report
# 460-480 GB/s busbw for large messages there. 64 GPUs: 8 such nodes, 8 x 400 Gb/s
# InfiniBand NDR each, i.e. at most 8 x 50 = 400 GB/s per node; we assume 350.
BANDWIDTHS = {8: (460.0, 20.0), 64: (350.0, 60.0)}


def cpu_name():
    with open("/proc/cpuinfo") as cpuinfo:
        for line in cpuinfo:
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return "unknown CPU"


def run(cmd, env=None):
    """stdout and stderr together (the profile table goes to stderr)."""
    result = subprocess.run([str(c) for c in cmd], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, env=env)
    if result.returncode != 0:
        sys.exit(f"failed: {' '.join(map(str, cmd))}\n{result.stdout}")
    return result.stdout


def mpirun(ranks, *cmd, tagged=False):
    """The ranks' output; with `tagged`, rank 0's lines only."""
    tag = ["--tag-output"] if tagged else []
    out = run(["mpirun", "-np", ranks, "--oversubscribe", "--bind-to", "none", *tag, *cmd],
              MPI_ENV)
    if not tagged:
        return out
    return "\n".join(re.sub(r"^\[\d+,0\]<std(out|err)>:", "", line)
                     for line in out.splitlines() if re.match(r"^\[\d+,0\]<", line))


def step_ms(output, batch):
    """Median step time from amp-run bench's JSON line (the first rank's)."""
    sps = float(re.search(r'"median_samples_per_s": ([0-9.]+)', output).group(1))
    return 1000.0 * batch / sps


def all_reduce_share(output):
    """(all_reduce ms/step, share of the step) from one rank's profile table."""
    rows = re.findall(r"^(\S+)\s+.*?\s([0-9.]+)\s+([0-9.]+)%$", output, re.M)
    ms = sum(float(r[1]) for r in rows if r[0] == "all_reduce")
    total = sum(float(r[1]) for r in rows)
    return ms, ms / total if total else 0.0


def parameter_count(onnx_path):
    model = onnx.load(onnx_path)
    count = 0
    for init in model.graph.initializer:
        if init.data_type == onnx.TensorProto.FLOAT and "running" not in init.name:
            size = 1
            for d in init.dims:
                size *= d
            count += size
    return count


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bin", default=os.path.join(HERE, "..", "build", "bin"))
    parser.add_argument("--models", default="mlp,resnet18")
    parser.add_argument("--precisions", default="fp32,bf16")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    amp_opt, amp_run = (os.path.join(args.bin, t) for t in ("amp-opt", "amp-run"))
    timing = ["--steps", args.steps, "--warmup", args.warmup, "--repeat", args.repeat]

    print(f"CPU: {cpu_name()}, {os.cpu_count()} cores")
    results, sizes = {}, {}
    with tempfile.TemporaryDirectory() as tmp:
        rows = []
        for model in args.models.split(","):
            onnx_path = os.path.join(tmp, f"{model}.onnx")
            run(["/usr/bin/python3", os.path.join(HERE, "export_model.py"), model, onnx_path])
            sizes[model] = parameter_count(onnx_path)
            g = GLOBAL_BATCH[model]
            for precision in args.precisions.split(","):
                common = f"precision={precision} optimizer=adamw lr=0.001"
                one, two = (os.path.join(tmp, f"{model}-{precision}-{k}.ampplan")
                            for k in ("1", "2"))
                run([amp_opt, onnx_path, f"--amp-pipeline={common} batch={g}", "--emit=plan",
                     "-o", one])
                run([amp_opt, onnx_path,
                     f"--amp-pipeline={common} batch={g // 2} data-parallel=2", "--emit=plan",
                     "-o", two])
                rows.append((model, precision, g, one, two))
        samples = {}
        for round_ in range(args.rounds):
            for model, precision, g, one, two in rows:
                key = (model, precision)
                single = step_ms(run([amp_run, "bench", one, "--threads", 2, *timing]), g)
                double = step_ms(mpirun(2, amp_run, "bench", two, "--threads", 1, *timing),
                                 g // 2)
                samples.setdefault(key, []).append((single, double))
                print(f"round {round_ + 1}: {model} {precision}: 1 rank {single:.2f} ms, "
                      f"2 ranks {double:.2f} ms", flush=True)
        for model, precision, g, one, two in rows:
            profile = mpirun(2, amp_run, "bench", two, "--threads", 1, "--profile", *timing,
                             tagged=True)
            key = (model, precision)
            results[key] = (statistics.median(s[0] for s in samples[key]),
                            statistics.median(s[1] for s in samples[key]),
                            *all_reduce_share(profile))

    print(f"\n| model, global batch | precision | 1 rank x 2 threads (ms/step) | "
          f"2 ranks x 1 thread (ms/step) | 2 ranks / 1 rank | all_reduce ms/step | "
          f"all_reduce share (profiled) |")
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: |")
    for (model, precision), (single, double, ar_ms, share) in results.items():
        print(f"| {model}, {GLOBAL_BATCH[model]} | {precision} | {single:.2f} | {double:.2f} | "
              f"{double / single:.2f} | {ar_ms:.2f} | {100 * share:.0f}% |")

    print("\nPaper estimate, NCCL ring all-reduce of every gradient per step "
          "(time = 2 (n-1)/n x bytes / busbw + buckets x latency):")
    print("| model | parameters | reduce type | bytes/step | buckets (25 MB) | "
          "8 GPUs (us) | 64 GPUs (us) |")
    print("| --- | ---: | --- | ---: | ---: | ---: | ---: |")
    for model, count in sizes.items():
        for kind, width in (("fp32", 4), ("bf16", 2)):
            size = count * width
            buckets = max(1, -(-size // (25 << 20)))
            cells = []
            for n in (8, 64):
                busbw, latency = BANDWIDTHS[n]
                cells.append(2 * (n - 1) / n * size / (busbw * 1e9) * 1e6 + buckets * latency)
            print(f"| {model} | {count / 1e6:.2f}M | {kind} | {size / 1e6:.1f} MB | {buckets} | "
                  f"{cells[0]:.0f} | {cells[1]:.0f} |")
    print("assumed: " + ", ".join(f"{n} GPUs {bw:.0f} GB/s busbw + {lat:.0f} us per bucket"
                                  for n, (bw, lat) in BANDWIDTHS.items()))


if __name__ == "__main__":
    main()
