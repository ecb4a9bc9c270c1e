"""The CUDA backend against the CPU backend on the Fashion-MNIST MLP and on
LeNet-BN (cuDNN convolutions, batch norm, max pooling).

The same plan, initial weights and batches run for 1, 2 and 3 steps on both
backends; after each, the loss, every parameter, every optimizer state and
the running statistics must agree: FP32 to 1e-5 relative error for the MLP
(true FP32 GEMMs, no TF32) and 1e-4 for LeNet-BN (convolution algorithms
sum in other orders), BF16 and FP16 to 1e-2 (cuDNN rounds a low-precision
filter gradient once to the operands' type, as PyTorch autocast does). Also
checks that a label out of range is reported by the GPU run as an error
naming the kernel.
Runs only as gpu.e2e.gpu_parity (AMP_DEVICE=cuda); skipped without a GPU.
"""
import os
import subprocess

import numpy as np

from common import Checker, compile_model, mlp, parse_args, run, workdir
import lenet_bn  # noqa: E402  (common put test/models on the path)

BOUNDS = {"mlp": {"fp32": 1e-5, "bf16": 1e-2, "fp16": 1e-2},
          "lenet_bn": {"fp32": 1e-4, "bf16": 1e-2, "fp16": 1e-2}}
MODELS = {"mlp": (mlp.make_mlp, mlp.export, 256), "lenet_bn": (lenet_bn.make_lenet_bn,
                                                               lenet_bn.export, 64)}


def step(args, plan, feeds, steps, device, dump):
    run([os.path.join(args.bin, "amp-run"), "step", plan, "--steps", steps, "--dump", dump,
         "--device", device, *feeds])
    return {name: np.load(os.path.join(dump, name)) for name in os.listdir(dump)}


def main():
    args = parse_args(__doc__)
    checker = Checker()
    rng = np.random.default_rng(0)
    with workdir() as tmp:
        for model, (make, export, batch) in MODELS.items():
            onnx_path = os.path.join(tmp, f"{model}.onnx")
            export(make(seed=0), onnx_path)
            x = rng.random((3 * batch, 1, 28, 28), dtype=np.float32)
            labels = rng.integers(0, 10, 3 * batch).astype(np.int64)
            np.save(os.path.join(tmp, f"{model}-x.npy"), x)
            np.save(os.path.join(tmp, f"{model}-labels.npy"), labels)
            for steps in (1, 2, 3):  # one batch per step: batch s at step s
                np.save(os.path.join(tmp, f"{model}-x{steps}.npy"), x[:steps * batch])
                np.save(os.path.join(tmp, f"{model}-labels{steps}.npy"), labels[:steps * batch])
            for precision, bound in BOUNDS[model].items():
                plan = os.path.join(tmp, f"{model}-{precision}.ampplan")
                compile_model(args.bin, onnx_path, plan,
                              f"precision={precision} loss=cross-entropy optimizer=adamw "
                              f"lr=0.001 batch={batch}")
                for steps in (1, 2, 3):
                    feeds = ["--feed", f"input={tmp}/{model}-x{steps}.npy",
                             "--feed", f"labels={tmp}/{model}-labels{steps}.npy"]
                    tag = f"{model}{precision}{steps}"
                    cpu = step(args, plan, feeds, steps, "cpu", os.path.join(tmp, "c" + tag))
                    gpu = step(args, plan, feeds, steps, "cuda", os.path.join(tmp, "g" + tag))
                    assert cpu.keys() == gpu.keys(), (cpu.keys(), gpu.keys())
                    worst = max(cpu, key=lambda n: _error(gpu[n], cpu[n]))
                    checker.check(f"{model} {precision} step {steps}: worst tensor {worst}",
                                  _error(gpu[worst], cpu[worst]), bound)
        # A label out of range: the GPU run fails with the node's name.
        labels = np.load(os.path.join(tmp, "mlp-labels.npy"))
        labels[5] = 10
        np.save(os.path.join(tmp, "bad.npy"), labels)
        plan = os.path.join(tmp, "mlp-fp32.ampplan")
        result = subprocess.run([os.path.join(args.bin, "amp-run"), "step", plan, "--steps", "3",
                                 "--dump", os.path.join(tmp, "bad"), "--device", "cuda",
                                 "--feed", f"input={tmp}/mlp-x.npy",
                                 "--feed", f"labels={tmp}/bad.npy"],
                                capture_output=True, text=True)
        print(result.stderr.strip())
        checker.check("a bad label fails the GPU run, naming the loss",
                      0.0 if result.returncode != 0 and "softmax_cross_entropy" in result.stderr
                      and "outside [0, 10)" in result.stderr else 1.0, 0.0)
    checker.finish()


def _error(ours, reference):
    ours = np.asarray(ours, dtype=np.float64)
    reference = np.asarray(reference, dtype=np.float64)
    if ours.dtype.kind in "iu" or reference.size == 0:
        return float(np.any(ours != reference))
    return float(np.linalg.norm(ours - reference) / max(np.linalg.norm(reference), 1e-30))


if __name__ == "__main__":
    main()
