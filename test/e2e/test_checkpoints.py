"""Checkpoints: atomic, checked, and resuming bit-identically.

1. Training 2 epochs equals training 1 epoch, then resuming for the second
   from its checkpoint: every state tensor (FP32 master weights, AdamW
   moments, step counter, FP16 loss scale and its growth tracker) is
   bit-identical. The same for 40 steps against 20 + 20 of a BF16 CNN with
   batch norm and dropout, whose running averages and dropout counter are
   checkpointed too (so the resumed run draws the same masks).
2. A truncated checkpoint, a corrupted one and one from another plan are
   refused with a clear error.
3. Killing amp-run with SIGKILL while it saves checkpoints (every step, of a
   model whose checkpoint is about 70 MB) always leaves a loadable one: 6
   kills at random points per run (AMP_CHECKPOINT_KILLS=N for more; the
   figure for 100 is in docs/reliability.md).
4. A full disk during a save (a file-size limit below the checkpoint's
   size) is an error naming the checkpoint; the previous checkpoint stays
   byte for byte, and no temporary file is left beside it.
"""
import os
import random
import resource
import signal
import subprocess
import time

import numpy as np

from common import Checker, compile_model, mlp, parse_args, run, workdir

DATA = "/usr/share/datasets/fashion-mnist"


def dump_state(args, plan, checkpoint, directory):
    os.makedirs(directory)
    run([os.path.join(args.bin, "amp-run"), "step", plan, "--steps", 0, "--resume", checkpoint,
         "--dump", directory])
    return {f: np.load(os.path.join(directory, f)) for f in os.listdir(directory)}


def train(args, plan, *extra):
    return run([os.path.join(args.bin, "amp-run"), "train", plan, "--data",
                f"fashion-mnist={DATA}", "--seed", 3, "--quiet", *extra])


def check_resume(args, checker, tmp):
    onnx_path = os.path.join(tmp, "mlp.onnx")
    plan = os.path.join(tmp, "mlp.ampplan")
    mlp.export(mlp.make_mlp(seed=0, hidden=128), onnx_path)
    compile_model(args.bin, onnx_path, plan, "precision=fp16 optimizer=adamw batch=256")
    straight, first, resumed = (os.path.join(tmp, n) for n in ("two.ckpt", "one.ckpt", "re.ckpt"))
    train(args, plan, "--epochs", 2, "--checkpoint", straight)
    train(args, plan, "--epochs", 1, "--checkpoint", first)
    train(args, plan, "--epochs", 2, "--resume", first, "--checkpoint", resumed)
    a = dump_state(args, plan, straight, os.path.join(tmp, "a"))
    b = dump_state(args, plan, resumed, os.path.join(tmp, "b"))
    different = [name for name in a if a[name].tobytes() != b[name].tobytes()]
    print(f"compared {len(a)} state tensors: {sorted(a)[:4]} ...")
    checker.check("resume: 2 epochs == 1 epoch + resume 1 epoch (bit-identical tensors)",
                  float(len(different) + (set(a) != set(b))), 0)
    checker.check("resume: the step counter is 468", abs(int(a["step.npy"]) - 468), 0)
    return plan, straight


def check_resume_batch_norm_dropout(args, checker, tmp):
    import torch
    torch.manual_seed(0)
    model = torch.nn.Sequential(
        torch.nn.Conv2d(1, 4, 3, padding=1), torch.nn.BatchNorm2d(4), torch.nn.ReLU(),
        torch.nn.MaxPool2d(2), torch.nn.Flatten(), torch.nn.Dropout(0.2),
        torch.nn.Linear(4 * 14 * 14, 10))
    onnx_path, plan = os.path.join(tmp, "cnn.onnx"), os.path.join(tmp, "cnn.ampplan")
    torch.onnx.export(model, torch.zeros(2, 1, 28, 28), onnx_path, opset_version=17,
                      training=torch.onnx.TrainingMode.TRAINING, do_constant_folding=False,
                      input_names=["input"], output_names=["logits"],
                      dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}})
    compile_model(args.bin, onnx_path, plan, "precision=bf16 optimizer=adamw batch=64")
    straight, first, resumed = (os.path.join(tmp, n) for n in ("s40.ckpt", "s20.ckpt", "r40.ckpt"))
    train(args, plan, "--max-steps", 40, "--checkpoint-every", 20, "--checkpoint", straight)
    train(args, plan, "--max-steps", 20, "--checkpoint-every", 20, "--checkpoint", first)
    train(args, plan, "--max-steps", 40, "--checkpoint-every", 20, "--resume", first,
          "--checkpoint", resumed)
    a = dump_state(args, plan, straight, os.path.join(tmp, "cnn-a"))
    b = dump_state(args, plan, resumed, os.path.join(tmp, "cnn-b"))
    different = [name for name in a if a[name].tobytes() != b[name].tobytes()]
    print(f"CNN: compared {len(a)} state tensors, running averages and dropout counter among "
          f"them: {[n for n in sorted(a) if 'running' in n or 'dropout' in n]}")
    checker.check("resume: CNN with batch norm and dropout, 40 == 20 + 20 steps (bit-identical)",
                  float(len(different) + (set(a) != set(b))), 0)
    checker.check("resume: the dropout counter is 40", abs(int(a["dropout.counter.npy"]) - 40), 0)


def refused(args, plan, checkpoint, message):
    result = subprocess.run([os.path.join(args.bin, "amp-run"), "info", plan, "--checkpoint",
                             checkpoint], capture_output=True, text=True, errors="replace")
    ok = result.returncode == 1 and message in result.stderr
    print(f"{'refused' if ok else 'NOT REFUSED'}: {result.stderr.strip()}")
    return ok


def check_bad_files(args, checker, tmp, plan, good):
    with open(good, "rb") as f:
        data = f.read()
    truncated, corrupted = os.path.join(tmp, "truncated.ckpt"), os.path.join(tmp, "bad.ckpt")
    with open(truncated, "wb") as f:
        f.write(data[: len(data) // 2])
    with open(corrupted, "wb") as f:
        f.write(data[:1000] + bytes([data[1000] ^ 0xFF]) + data[1001:])
    checker.check("a truncated checkpoint is refused",
                  float(not refused(args, plan, truncated, "truncated or padded checkpoint")), 0)
    checker.check("a corrupted checkpoint is refused",
                  float(not refused(args, plan, corrupted, "corrupted checkpoint (CRC-32 mismatch)")), 0)
    other = os.path.join(tmp, "other.ampplan")
    onnx_path = os.path.join(tmp, "other.onnx")
    mlp.export(mlp.make_mlp(seed=0, hidden=32), onnx_path)
    compile_model(args.bin, onnx_path, other, "precision=fp16 optimizer=adamw batch=256")
    checker.check("a checkpoint of another plan is refused",
                  float(not refused(args, other, good, "does not match the plan")), 0)


def check_disk_full(args, checker, tmp, plan, good):
    folder = os.path.join(tmp, "full")
    os.makedirs(folder)
    checkpoint = os.path.join(folder, "latest.ckpt")
    with open(good, "rb") as f:
        previous = f.read()
    with open(checkpoint, "wb") as f:
        f.write(previous)
    limit = len(previous) // 2

    def full_disk():  # writes past `limit` bytes fail with EFBIG, as on a full disk
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    result = subprocess.run(
        [os.path.join(args.bin, "amp-run"), "step", plan, "--steps", "0", "--resume", good,
         "--checkpoint", checkpoint, "--dump", os.path.join(tmp, "full-dump")],
        capture_output=True, text=True, errors="replace", preexec_fn=full_disk)
    print(f"full disk during a save: exit code {result.returncode}: {result.stderr.strip()}")
    with open(checkpoint, "rb") as f:
        kept = f.read() == previous
    leftovers = sorted(set(os.listdir(folder)) - {"latest.ckpt"})
    checker.check("a save on a full disk fails naming the checkpoint and the reason",
                  float(not (result.returncode == 1 and "latest.ckpt: write failed: File too large"
                             in result.stderr)), 0)
    checker.check("a save on a full disk keeps the previous checkpoint", float(not kept), 0)
    checker.check("a save on a full disk leaves no temporary file", float(len(leftovers)), 0)


def check_kill(args, checker, tmp):
    onnx_path = os.path.join(tmp, "big.onnx")
    plan = os.path.join(tmp, "big.ampplan")
    mlp.export(mlp.make_mlp(seed=0, hidden=2048), onnx_path)
    compile_model(args.bin, onnx_path, plan, "precision=fp32 optimizer=adamw batch=64")
    checkpoint = os.path.join(tmp, "big.ckpt")
    rng = random.Random(0)
    loadable = saves = size = 0
    trials = int(os.environ.get("AMP_CHECKPOINT_KILLS", "6"))
    for trial in range(trials):
        process = subprocess.Popen(
            [os.path.join(args.bin, "amp-run"), "train", plan, "--data", f"fashion-mnist={DATA}",
             "--epochs", "1", "--checkpoint", checkpoint, "--checkpoint-every", "1", "--quiet"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.time() + 120
        while not os.path.exists(checkpoint) and time.time() < deadline:
            time.sleep(0.05)
        time.sleep(rng.uniform(0.1, 1.5))  # somewhere in the middle of a save
        process.send_signal(signal.SIGKILL)
        process.wait()
        info = subprocess.run(
            [os.path.join(args.bin, "amp-run"), "info", plan, "--checkpoint", checkpoint],
            capture_output=True, text=True)
        loadable += info.returncode == 0
        # One save per step: the step the kept checkpoint holds counts the saves.
        saved = [int(w.split()[1]) for w in info.stdout.split(";") if "global_step" in w]
        saves += saved[0] if saved else 0
        if os.path.exists(checkpoint):
            size = os.path.getsize(checkpoint) / 2**20
            os.remove(checkpoint)  # the next run's first save starts from nothing
    print(f"SIGKILL during checkpointing ({size:.0f} MB each): {loadable}/{trials} kills left "
          f"a loadable checkpoint, over {saves} saves")
    checker.check("SIGKILL during a save leaves the previous checkpoint loadable",
                  float(trials - loadable), 0)


def main():
    args = parse_args(__doc__)
    checker = Checker()
    with workdir() as tmp:
        plan, good = check_resume(args, checker, tmp)
        check_resume_batch_norm_dropout(args, checker, tmp)
        check_bad_files(args, checker, tmp, plan, good)
        check_disk_full(args, checker, tmp, plan, good)
        check_kill(args, checker, tmp)
    checker.finish()


if __name__ == "__main__":
    main()
