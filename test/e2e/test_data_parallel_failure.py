"""What happens when a rank of a data-parallel run fails (issue 16).

  - Killed (SIGKILL) mid-epoch: the job ends non-zero within 60 s, with a
    message naming the rank that died, and the last checkpoint rank 0 wrote
    resumes (2 ranks, a few more steps).
  - Stopped (SIGSTOP: alive but silent, as a hung or cut-off rank): the
    other rank's all-reduce gives up after --collective-timeout, it reports
    which rank and why, and the job ends non-zero within the bound.
Skipped (exit 77) where mpirun is missing."""
import os
import shutil
import signal
import subprocess
import sys
import time

from common import MPI_ENV, SKIPPED, compile_model, mpirun_command, parse_args, run, workdir

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "models"))
import mlp  # noqa: E402

DATA = "/usr/share/datasets/fashion-mnist"
BOUND_S = 60
TIMEOUT_S = 5


def wait_for(predicate, seconds, what):
    deadline = time.monotonic() + seconds
    while not predicate():
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out waiting for {what}")
        time.sleep(0.05)


def fail_one_rank(amp_run, plan, tmp, tag, sig, extra):
    """Starts 2 ranks training, sends `sig` to rank 1 once rank 0 has written
    its first checkpoint; returns (exit code, seconds to exit, output)."""
    checkpoint = os.path.join(tmp, f"{tag}.ckpt")
    # Each rank writes its pid, so the test can pick rank 1 out.
    launch = ("echo $$ > " + os.path.join(tmp, tag) + ".pid.$OMPI_COMM_WORLD_RANK; exec "
              + " ".join(map(str, [amp_run, "train", plan, "--data", f"fashion-mnist={DATA}",
                                   "--epochs", 50, "--seed", 0, "--threads", 1, "--quiet",
                                   "--checkpoint", checkpoint, "--checkpoint-every", 5,
                                   *extra])))
    job = subprocess.Popen(mpirun_command(2, "sh", "-c", launch), env=MPI_ENV,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                           errors="replace")
    rank1 = os.path.join(tmp, f"{tag}.pid.1")
    victim = None
    try:
        wait_for(lambda: os.path.exists(checkpoint) and os.path.exists(rank1), 120,
                 "the first checkpoint")
        with open(rank1) as f:
            victim = int(f.read())
        os.kill(victim, sig)
        sent = time.monotonic()
        try:
            output, _ = job.communicate(timeout=BOUND_S + 30)
        except subprocess.TimeoutExpired:
            job.kill()
            output, _ = job.communicate()
            return None, None, output
        return job.returncode, time.monotonic() - sent, output
    finally:
        if job.poll() is None:
            job.kill()
        if victim is not None:  # a stopped rank mpirun did not reap
            for s in (signal.SIGCONT, signal.SIGKILL):
                try:
                    os.kill(victim, s)
                except ProcessLookupError:
                    pass


def main():
    args = parse_args(__doc__)
    if shutil.which("mpirun") is None:
        print("SKIPPED: mpirun not found (scripts/setup installs openmpi-bin)")
        return SKIPPED
    failures = []
    with workdir() as tmp:
        amp_run = os.path.join(args.bin, "amp-run")
        onnx = os.path.join(tmp, "mlp.onnx")
        mlp.export(mlp.make_mlp(seed=0), onnx)
        plan = os.path.join(tmp, "mlp.ampplan")
        compile_model(args.bin, onnx, plan,
                      "precision=bf16 optimizer=adamw lr=0.001 batch=128 data-parallel=2")

        cases = [("killed", signal.SIGKILL, [], ["rank 1", "signal 9"]),
                 ("stopped", signal.SIGSTOP, ["--collective-timeout", TIMEOUT_S],
                  ["rank 0 of 2", f"did not complete within {TIMEOUT_S} s"])]
        for tag, sig, extra, expected in cases:
            code, seconds, output = fail_one_rank(amp_run, plan, tmp, tag, sig, extra)
            lines = [l for l in output.splitlines() if l.strip()]
            said = [l for l in lines if any(e in l for e in expected)]
            print(f"rank 1 {tag}: exit {code} after "
                  f"{'-' if seconds is None else f'{seconds:.1f}'} s; said: {said[:2]}")
            if code is None or code == 0 or seconds > BOUND_S:
                failures.append(f"{tag}: the job did not end non-zero within {BOUND_S} s")
            missing = [e for e in expected if not any(e in l for l in lines)]
            if missing:
                failures.append(f"{tag}: no message with {missing}:\n" + "\n".join(lines[-15:]))

            # The last checkpoint (written atomically by rank 0) resumes.
            checkpoint = os.path.join(tmp, f"{tag}.ckpt")
            resumed = subprocess.run(
                mpirun_command(2, amp_run, "train", plan, "--data", f"fashion-mnist={DATA}",
                               "--seed", 0, "--threads", 1, "--quiet", "--resume", checkpoint,
                               "--max-steps", 1000, "--checkpoint", checkpoint + ".next",
                               "--metrics", checkpoint + ".jsonl"),
                env=MPI_ENV, capture_output=True, text=True, errors="replace")
            with open(checkpoint + ".jsonl") if os.path.exists(checkpoint + ".jsonl") else \
                    open(os.devnull) as f:
                steps = [line for line in f if line.strip()]
            print(f"rank 1 {tag}: the last checkpoint resumed: exit {resumed.returncode}, "
                  f"{len(steps)} more steps logged")
            if resumed.returncode != 0 or not steps:
                failures.append(f"{tag}: the last checkpoint did not resume:\n"
                                + resumed.stdout + resumed.stderr)
    for failure in failures:
        print("FAIL:", failure)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
