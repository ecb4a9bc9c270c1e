"""What every peer row of bench/mlp_cpu.py shares: its timing flags and the
measurement (warm-up, then the median samples/s of repeated runs of steps).
Standard library only: Debian's python and bench/.venv's both import it."""
import argparse
import statistics
import time


# The benchmark's models: the per-sample input shape each is exported with
# (causal_lm: 64 byte tokens, int64, with the next byte of each as labels).
INPUT_SHAPES = {"mlp": (1, 28, 28), "lenet_bn": (1, 28, 28), "resnet18": (3, 32, 32),
                "causal_lm": (64,)}
# The classes of the labels (causal_lm: its 256 bytes, also its vocabulary).
CLASSES = {"mlp": 10, "lenet_bn": 10, "resnet18": 10, "causal_lm": 256}


def parser(description):
    result = argparse.ArgumentParser(description=description,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    result.add_argument("--batch", type=int, required=True)
    result.add_argument("--model", choices=sorted(INPUT_SHAPES), default="mlp")
    result.add_argument("--steps", type=int, default=20)
    result.add_argument("--warmup", type=int, default=5)
    result.add_argument("--repeat", type=int, default=7)
    return result


def median_samples_per_s(step, args):
    for _ in range(args.warmup):
        step()
    rates = []
    for _ in range(args.repeat):
        start = time.perf_counter()
        for _ in range(args.steps):
            step()
        rates.append(args.steps * args.batch / (time.perf_counter() - start))
    return statistics.median(rates)
