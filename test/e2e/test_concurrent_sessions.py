"""Separate sessions trained at once from separate threads give bit for bit
what each gives alone (the Session's thread-safety contract,
docs/runtime-api.md).

Three jobs, each a session on a thread of its own: the MLP in BF16 with
dynamic loss scaling and AdamW, a second session of that same plan, and
LeNet-BN (convolution, batch norm, max-pool) in FP16 with SGD momentum.
amp-concurrent-sessions trains each alone, then all three at once (creation,
steps, a checkpoint saved and reloaded, evaluation), and compares losses,
states and outputs bit for bit. scripts/check --sanitize-thread runs it under
ThreadSanitizer with one OpenMP thread per session (AMP_SESSION_THREADS=1:
Debian's OpenMP runtimes are not instrumented, so the threads of one
session's parallel loops would be reported as races).
"""
import os
import sys

from common import compile_model, parse_args, run, workdir

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "models"))
import lenet_bn  # noqa: E402
import mlp  # noqa: E402

BATCH = 16


def main():
    args = parse_args(__doc__)
    with workdir() as tmp:
        mlp_onnx, lenet_onnx = os.path.join(tmp, "mlp.onnx"), os.path.join(tmp, "lenet.onnx")
        mlp.export(mlp.make_mlp(seed=0), mlp_onnx)
        lenet_bn.export(lenet_bn.make_lenet_bn(seed=0), lenet_onnx)
        mlp_plan, lenet_plan = mlp_onnx + ".ampplan", lenet_onnx + ".ampplan"
        compile_model(args.bin, mlp_onnx, mlp_plan,
                      f"precision=bf16 loss-scale=dynamic loss=cross-entropy optimizer=adamw "
                      f"lr=0.001 batch={BATCH}")
        compile_model(args.bin, lenet_onnx, lenet_plan,
                      f"precision=fp16 loss=cross-entropy optimizer=sgd lr=0.01 momentum=0.9 "
                      f"batch={BATCH}")
        threads = os.environ.get("AMP_SESSION_THREADS", "0")
        print(run([os.path.join(args.bin, "amp-concurrent-sessions"), "--threads", threads,
                   "--steps", 6, "--checkpoints", tmp, mlp_plan, mlp_plan, lenet_plan]).strip())


if __name__ == "__main__":
    main()
