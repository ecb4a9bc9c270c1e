"""Training throughput on the CPU: AMP-MLIR's runtime against the strongest peers.

Every row trains --model (the Fashion-MNIST MLP 784-512-512-10 by default;
lenet_bn, LeNet-5 with batch norm; resnet18, torchvision's ResNet-18 on
3x32x32 images; causal_lm, the byte-level transformer LM of e2e.causal_lm,
2 layers, d_model 128, 4 heads, sequence 64; AdamW lr 1e-3, weight decay
0.01) on random batches of the same size, on the same cores, in one run:
W warm-up steps, then R repetitions of S steps, in a process of its own; a
cell is the median samples/s (tokens/s for causal_lm) over --rounds such
processes, run round-robin over all rows (so a slow minute of this shared
machine touches every row alike, not one). Rows:

  ours fp32 / bf16 / fp16   amp-run bench on plans amp-opt compiles from the
                            PyTorch export (precision=fp32, bf16, fp16)
  ours bf16 fastest         the bf16 plan with --cpu-gemms fastest: bf16 GEMMs
                            and large-map convolutions in f32 on widened
                            operands where native bf16 is slower here
  torch2 ...                PyTorch 2.x from bench/.venv: eager (foreach and
                            fused AdamW), torch.compile of the model and of
                            the whole step, eager BF16 autocast
  onnxruntime-training      ORT's training artifacts for the same ONNX export
  torch1.13 ...             Debian's python3-torch, eager FP32 and BF16

The machine must be otherwise idle: the CPU time that other processes use
while a cell's process runs (all of /proc/stat's busy and steal time less
the process's own) is measured, a process disturbed by more than
--idle-threshold cores on average is run again, up to --busy-retries times,
and its cell is marked BUSY if one never ran undisturbed. Our BF16/FP16 over
our FP32 is also measured in one process (amp-run bench --versus: the plans
timed in turn in each of --interleaved-repeat short repetitions, the median
of the per-repetition ratios), which the machine's drift cannot skew the way
it skews a ratio of two table cells. bench/run sets up the venv and runs this
with its python.
"""
import argparse
import json
import os
import platform
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time

import steprate  # beside this file

HERE = os.path.dirname(os.path.abspath(__file__))
DEBIAN_PYTHON = "/usr/bin/python3"
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def busy_seconds():
    """CPU seconds the whole machine has spent busy or stolen (all cores)."""
    with open("/proc/stat") as stat:
        fields = [int(x) for x in stat.readline().split()[1:]]
    user, nice, system, idle, iowait, irq, softirq, steal = fields[:8]
    return (user + nice + system + irq + softirq + steal) / CLOCK_TICKS


def children_seconds():
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def measure(command, threshold, retries):
    """Runs command (its last line JSON with the median samples/s); returns
    (rate, busy), or (error, False) when the command fails: a peer that cannot
    run on this CPU (PyTorch 1.13's BF16 without AVX-512) is a result too."""
    for _ in range(retries + 1):
        start_busy, start_children, start = busy_seconds(), children_seconds(), time.time()
        run = subprocess.run(command, capture_output=True, text=True)
        if run.returncode != 0:
            lines = (run.stderr.strip() or f"exit {run.returncode}").splitlines()
            return f"fails: {lines[-1][:100]}", False
        out = run.stdout
        other = (busy_seconds() - start_busy) - (children_seconds() - start_children)
        result = json.loads(out.strip().splitlines()[-1])
        rate = result.get("samples_per_s") or result["median_samples_per_s"]  # amp-run's
        if other / (time.time() - start) <= threshold:
            return rate, False
    return rate, True


def cpu_name():
    with open("/proc/cpuinfo") as cpuinfo:
        for line in cpuinfo:
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown CPU"


def gemm_modes(bin_dir):
    """{'bf16': 'native' or 'emulated', ..., 'bf16_fastest': 'widened' where
    --cpu-gemms fastest widens bf16 GEMMs} from amp-run devices, and its output."""
    out = subprocess.run([os.path.join(bin_dir, "amp-run"), "devices"], check=True,
                         capture_output=True, text=True).stdout
    modes = dict(re.findall(r"(fp32|bf16|fp16) GEMMs: (native|emulated)", out))
    if "bf16 with --cpu-gemms fastest: GEMMs" in out:
        modes["bf16_fastest"] = "widened"
    return modes, out


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bin", default="build/bin")
    parser.add_argument("--model", choices=["mlp", "lenet_bn", "resnet18", "causal_lm"],
                        default="mlp",
                        help="the MLP (default), LeNet-5 with batch norm, torchvision's "
                             "ResNet-18 (3x32x32, 10 classes) or the causal LM")
    parser.add_argument("--batch", type=int, nargs="+", default=[256, 1024])
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--interleaved-repeat", type=int, default=40,
                        help="repetitions of the one-process low/fp32 ratio (bench --versus)")
    parser.add_argument("--rows", default="all",
                        help="comma-separated row names to run (default: all)")
    parser.add_argument("--idle-threshold", type=float, default=0.1,
                        help="cores' worth of other load tolerated during a cell")
    parser.add_argument("--busy-retries", type=int, default=2)
    args = parser.parse_args()
    timing = ["--steps", str(args.steps), "--warmup", str(args.warmup),
              "--repeat", str(args.repeat)]
    venv_python = sys.executable
    torch_step = os.path.join(HERE, "torch_step.py")

    # The LM's rate counts tokens: samples times its sequence length.
    unit, per_sample = (("tokens/s", steprate.INPUT_SHAPES[args.model][0])
                        if args.model == "causal_lm" else ("samples/s", 1))

    with tempfile.TemporaryDirectory() as tmp:
        def onnx_path(batch):
            """The export: one with a dynamic batch, or the LM's at this batch."""
            fixed = args.model == "causal_lm"
            path = os.path.join(tmp, f"{args.model}-{batch if fixed else 'any'}.onnx")
            if not os.path.exists(path):
                subprocess.run([DEBIAN_PYTHON, os.path.join(HERE, "export_model.py"),
                                args.model, path] + ([str(batch)] if fixed else []),
                               check=True, stderr=subprocess.DEVNULL)
            return path

        def plan_path(precision, batch):
            plan = os.path.join(tmp, f"{args.model}-{precision}-{batch}.ampplan")
            if not os.path.exists(plan):
                subprocess.run([os.path.join(args.bin, "amp-opt"), onnx_path(batch),
                                f"--amp-pipeline=precision={precision} optimizer=adamw "
                                f"lr=0.001 batch={batch}", "--emit=plan", "-o", plan],
                               check=True)
            return plan

        def ours(precision, *flags):
            return lambda batch: [os.path.join(args.bin, "amp-run"), "bench",
                                  plan_path(precision, batch), *timing, *flags]

        def interleaved_ratios(batch, lows, *flags):
            """ours low / ours fp32 measured in one amp-run process that times the
            plans in turn in each of many short repetitions (bench --versus): the
            machine's drift, tens of percent within minutes on a shared machine,
            then cancels in each repetition's ratio; the median of those."""
            command = [os.path.join(args.bin, "amp-run"), "bench", plan_path("fp32", batch)]
            for low in lows:
                command += ["--versus", plan_path(low, batch)]
            command += ["--steps", "4", "--warmup", str(args.warmup),
                        "--repeat", str(args.interleaved_repeat), *flags]
            out = subprocess.run(command, check=True, capture_output=True, text=True).stdout
            lines = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
            return {low: line["median_ratio_to_first"] for low, line in zip(lows, lines[1:])}

        def torch_row(python, variant):
            return lambda batch: [python, torch_step, variant, "--batch", str(batch),
                                  "--model", args.model, *timing]

        rows = {
            "ours fp32": ("fp32", ours("fp32")),
            "ours bf16": ("bf16", ours("bf16")),
            "ours fp16": ("fp16", ours("fp16")),
            "ours bf16 fastest": ("bf16", ours("bf16", "--cpu-gemms", "fastest")),
            "torch2 eager fp32": ("fp32", torch_row(venv_python, "eager")),
            "torch2 eager fp32 fused-adamw": ("fp32", torch_row(venv_python, "eager-fused")),
            "torch2 compile(model) fp32": ("fp32", torch_row(venv_python, "compile-model")),
            "torch2 compile(step) fp32": ("fp32", torch_row(venv_python, "compile-step")),
            "onnxruntime-training fp32": ("fp32", lambda batch: [
                venv_python, os.path.join(HERE, "ort_step.py"), onnx_path(batch),
                "--batch", str(batch), "--model", args.model, *timing]),
            "torch2 eager bf16 autocast": ("bf16", torch_row(venv_python, "bf16")),
            "torch1.13 eager fp32": ("fp32", torch_row(DEBIAN_PYTHON, "eager")),
            "torch1.13 eager bf16 autocast": ("bf16", torch_row(DEBIAN_PYTHON, "bf16")),
        }
        if args.rows != "all":
            wanted = args.rows.split(",")
            unknown = [name for name in wanted if name not in rows]
            if unknown:
                parser.error(f"unknown rows {unknown}; rows: {list(rows)}")
            rows = {name: rows[name] for name in wanted}

        modes, devices = gemm_modes(args.bin)
        print(f"model: {args.model}; CPU: {cpu_name()}, {os.cpu_count()} cores")
        print("amp-run devices:\n  " + devices.strip().replace("\n", "\n  "))
        print(f"{unit}: median over {args.rounds} processes of the median of "
              f"{args.repeat} x {args.steps} steps after {args.warmup} warm-up steps; "
              f"idle threshold {args.idle_threshold} cores\n", flush=True)
        samples = {}
        for _ in range(args.rounds):
            for name, (_, command) in rows.items():
                for batch in args.batch:
                    samples.setdefault((name, batch), []).append(
                        measure(command(batch), args.idle_threshold, args.busy_retries))
        results = {}
        for key, runs in samples.items():
            rates = [rate for rate, _ in runs if not isinstance(rate, str)]
            results[key] = statistics.median(rates) * per_sample if rates else runs[0][0]
        print("| row | " + " | ".join(f"batch {b}" for b in args.batch) + " |")
        print("| --- |" + " ---: |" * len(args.batch))
        for name, (precision, _) in rows.items():
            cells = []
            for batch in args.batch:
                busy = any(busy for _, busy in samples[name, batch])
                rate = results[name, batch]
                cells.append(rate if isinstance(rate, str) else
                             f"{rate:.0f}" + (" BUSY" if busy else ""))
            label = name
            if name == "ours bf16 fastest":
                label += f" ({modes.get('bf16_fastest', 'native')} GEMMs)"
            elif name.startswith("ours ") and precision != "fp32":
                label += f" ({modes.get(precision, '?')} GEMMs)"
            print(f"| {label} | " + " | ".join(cells) + " |", flush=True)

        print()
        for batch in args.batch:
            rate = {name: r for (name, b), r in results.items()
                    if b == batch and not isinstance(r, str)}
            ratios = []

            def against_best_peer(precision):
                peers = {n: r for n, r in rate.items()
                         if rows[n][0] == precision and not n.startswith("ours")}
                if f"ours {precision}" in rate and peers:
                    best = max(peers, key=peers.get)
                    ratios.append(f"ours {precision} / best peer {precision} ({best}) = "
                                  f"{rate[f'ours {precision}'] / peers[best]:.2f}")

            against_best_peer("fp32")
            lows = [low for low in ("bf16", "fp16")
                    if f"ours {low}" in rate and "ours fp32" in rate]
            together = interleaved_ratios(batch, lows) if lows else {}
            for low in lows:
                ratios.append(f"ours {low} / ours fp32 = "
                              f"{rate[f'ours {low}'] / rate['ours fp32']:.2f} from the table, "
                              f"{together[low]:.2f} interleaved in one process")
            if "ours bf16 fastest" in rate and "ours fp32" in rate:
                fastest = interleaved_ratios(batch, ["bf16"], "--cpu-gemms", "fastest")
                ratios.append(f"ours bf16 fastest / ours fp32 = "
                              f"{rate['ours bf16 fastest'] / rate['ours fp32']:.2f} from the "
                              f"table, {fastest['bf16']:.2f} interleaved in one process")
            against_best_peer("bf16")
            print(f"batch {batch}: " + "; ".join(ratios))


if __name__ == "__main__":
    main()
