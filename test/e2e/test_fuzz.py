"""Fuzzing the parsers of untrusted input: ONNX models, onnxruntime-training
checkpoints and runtime plans.

Deterministic mutations (byte flips, truncations, splices) of a valid model
go through amp-opt, of an artifact set's checkpoint (the tiny MLP's, with
saved optimizer state) through amp-opt's artifact import, and of a valid
plan through amp-run; each run must end
with exit code 0 or 1 and, on failure, an error message; never a crash or
hang. Bounded: a fixed number of cases, each with a timeout.
"""
import os
import random
import resource
import shutil
import subprocess

from common import compile_model, mlp, parse_args, workdir

CASES = int(os.environ.get("AMP_FUZZ_CASES", "150"))


def mutate(data: bytes, rng: random.Random) -> bytes:
    data = bytearray(data)
    kind = rng.randrange(4)
    if kind == 0:  # flip bytes
        for _ in range(rng.randint(1, 16)):
            data[rng.randrange(len(data))] = rng.randrange(256)
    elif kind == 1:  # truncate
        del data[rng.randrange(1, len(data)):]
    elif kind == 2:  # splice a copied range elsewhere
        start = rng.randrange(len(data))
        chunk = data[start:start + rng.randint(1, 64)]
        at = rng.randrange(len(data))
        data[at:at] = chunk
    else:  # overwrite a varint-looking byte with a huge length
        at = rng.randrange(len(data))
        data[at:at + 5] = b"\xff\xff\xff\xff\x0f"
    return bytes(data)


def limit_memory():
    # A mutated size may ask for terabytes: it must be refused, not swap.
    # Under AddressSanitizer (scripts/check --sanitize sets ASAN_OPTIONS)
    # the address space holds ASan's shadow memory, so its own limits
    # (max_allocation_size_mb, hard_rss_limit_mb) stand in for this one.
    if "ASAN_OPTIONS" in os.environ:
        return
    limit = 4 << 30
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


def fuzz(label, seed_bytes, path, command, rng):
    """`command` is a list, or a function of the case number giving one."""
    outcomes = {0: 0, 1: 0}
    for case in range(CASES):
        with open(path, "wb") as f:
            f.write(mutate(seed_bytes, rng))
        argv = command(case) if callable(command) else command
        result = subprocess.run(argv, capture_output=True, text=True, errors="replace",
                                timeout=60, preexec_fn=limit_memory)
        if result.returncode not in (0, 1):
            raise SystemExit(f"{label} case {case}: exit code {result.returncode}\n{result.stderr}")
        if result.returncode == 1 and "error" not in result.stderr:
            raise SystemExit(f"{label} case {case}: failed without an error message")
        outcomes[result.returncode] += 1
    print(f"{label}: {CASES} mutated inputs, {outcomes[1]} refused with an error, "
          f"{outcomes[0]} accepted, no crash")


def main():
    args = parse_args(__doc__)
    rng = random.Random(0)
    with workdir() as tmp:
        onnx_path = os.path.join(tmp, "small.onnx")
        plan = os.path.join(tmp, "small.ampplan")
        # A small MLP keeps each case fast while covering every node kind.
        mlp.export(mlp.make_mlp(seed=0, hidden=16), onnx_path)
        compile_model(args.bin, onnx_path, plan, "optimizer=adamw batch=4")
        mutant = os.path.join(tmp, "mutant")
        with open(onnx_path, "rb") as f:
            model_bytes = f.read()
        # Each precision in turn, so autocast and loss scaling see the mutants too.
        fuzz("amp-opt", model_bytes, mutant + ".onnx",
             lambda case: [os.path.join(args.bin, "amp-opt"), mutant + ".onnx",
                           f"--amp-pipeline=batch=4 precision={('fp32', 'bf16', 'fp16')[case % 3]}",
                           "--emit=plan", "-o", os.path.join(tmp, "out.plan")],
             rng)
        # An artifact set whose checkpoint is the mutant.
        artifacts = os.path.join(tmp, "artifacts")
        source = os.path.join(os.path.dirname(__file__), "..", "Inputs")
        shutil.copytree(os.path.join(source, "ort_tiny_mlp"), artifacts)
        with open(os.path.join(source, "ort_tiny_mlp_trained.ckpt"), "rb") as f:
            checkpoint_bytes = f.read()
        fuzz("amp-opt (ORT checkpoint)", checkpoint_bytes, os.path.join(artifacts, "checkpoint"),
             [os.path.join(args.bin, "amp-opt"), artifacts, "--amp-pipeline=batch=4 precision=bf16",
              "--emit=plan", "-o", os.path.join(tmp, "out.plan")], rng)
        with open(plan, "rb") as f:
            plan_bytes = f.read()
        # bench feeds random batches of the plan's own shapes and runs a step,
        # so the kernels see whatever the mutated plan describes.
        fuzz("amp-run", plan_bytes, mutant + ".plan",
             [os.path.join(args.bin, "amp-run"), "bench", mutant + ".plan",
              "--steps", "1", "--warmup", "0", "--repeat", "1"], rng)


if __name__ == "__main__":
    main()
