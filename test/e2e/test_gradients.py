"""Gradients of the compiled training step equal PyTorch's.

The Fashion-MNIST MLP is exported by PyTorch, compiled with optimizer=none
(the step returns the loss and every parameter's gradient), run once by
amp-run on a random batch, and compared with torch.autograd on the same
weights and batch: relative error at most 1e-5 in FP32.
"""
import os

import numpy as np
import torch

from common import Checker, compile_model, mlp, parse_args, relative_error, run, workdir

BATCH = 64


def main():
    args = parse_args(__doc__)
    model = mlp.make_mlp(seed=0)
    rng = np.random.default_rng(1)
    images = rng.random((BATCH, 1, 28, 28), dtype=np.float32)
    labels = rng.integers(0, 10, BATCH, dtype=np.int64)

    with workdir() as tmp:
        onnx_path = os.path.join(tmp, "mlp.onnx")
        plan = os.path.join(tmp, "mlp.ampplan")
        mlp.export(model, onnx_path)
        compile_model(args.bin, onnx_path, plan,
                      f"precision=fp32 loss=cross-entropy optimizer=none batch={BATCH}")
        np.save(os.path.join(tmp, "images.npy"), images)
        np.save(os.path.join(tmp, "labels.npy"), labels)
        run([os.path.join(args.bin, "amp-run"), "step", plan,
             "--feed", f"input={tmp}/images.npy", "--feed", f"labels={tmp}/labels.npy",
             "--dump", tmp])
        ours = {name: np.load(os.path.join(tmp, f"{name}.grad.npy"))
                for name, _ in model.named_parameters()}
        our_loss = float(np.load(os.path.join(tmp, "loss.npy")))

    loss = torch.nn.functional.cross_entropy(model(torch.from_numpy(images)),
                                             torch.from_numpy(labels))
    loss.backward()
    checker = Checker()
    checker.check("loss", relative_error(our_loss, loss.item()), 1e-5)
    for name, param in model.named_parameters():
        checker.check(f"grad {name}", relative_error(ours[name], param.grad.numpy()), 1e-5)
    checker.finish()


if __name__ == "__main__":
    main()
