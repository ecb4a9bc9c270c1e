"""Gradients of the compiled training step equal PyTorch's.

Two models are exported by PyTorch, compiled with optimizer=none (the step
returns the loss and every parameter's gradient), run once by amp-run on a
random batch, and compared with torch.autograd on the same weights and
batch: relative error at most 1e-5 in FP32.
- the Fashion-MNIST MLP with loss=cross-entropy;
- a model whose loss is computed in the graph (loss=output:loss) from
  Softmax, Exp, Div by a scalar parameter, ReduceSum and Log.
"""
import os

import numpy as np
import torch

from common import Checker, compile_model, mlp, parse_args, relative_error, run, workdir

BATCH = 64


class LogSumModel(torch.nn.Module):
    """loss = sum(log(sum(exp(softmax(x W^T + b)) / scale, axis 1)))."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(3)
        self.fc = torch.nn.Linear(8, 5)
        self.scale = torch.nn.Parameter(torch.tensor(2.0))

    def forward(self, x):
        p = torch.softmax(self.fc(x), dim=-1)
        return torch.log((torch.exp(p) / self.scale).sum(dim=1)).sum()


def check_mlp(args, checker):
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
    checker.check("mlp loss", relative_error(our_loss, loss.item()), 1e-5)
    for name, param in model.named_parameters():
        checker.check(f"mlp grad {name}", relative_error(ours[name], param.grad.numpy()), 1e-5)


def check_log_sum(args, checker):
    model = LogSumModel()
    x = np.random.default_rng(5).standard_normal((16, 8)).astype(np.float32)
    with workdir() as tmp:
        onnx_path = os.path.join(tmp, "logsum.onnx")
        plan = os.path.join(tmp, "logsum.ampplan")
        torch.onnx.export(model, torch.from_numpy(x), onnx_path, opset_version=17,
                          training=torch.onnx.TrainingMode.TRAINING, do_constant_folding=False,
                          input_names=["x"], output_names=["loss"])
        compile_model(args.bin, onnx_path, plan, "loss=output:loss optimizer=none")
        np.save(os.path.join(tmp, "x.npy"), x)
        run([os.path.join(args.bin, "amp-run"), "step", plan, "--feed", f"x={tmp}/x.npy",
             "--dump", tmp])
        ours = {name: np.load(os.path.join(tmp, f"{name}.grad.npy"))
                for name, _ in model.named_parameters()}
        our_loss = float(np.load(os.path.join(tmp, "loss.npy")))
    loss = model(torch.from_numpy(x))
    loss.backward()
    checker.check("log-sum loss", relative_error(our_loss, loss.item()), 1e-5)
    for name, param in model.named_parameters():
        checker.check(f"log-sum grad {name}", relative_error(ours[name], param.grad.numpy()),
                      1e-5)


def main():
    args = parse_args(__doc__)
    checker = Checker()
    check_mlp(args, checker)
    check_log_sum(args, checker)
    checker.finish()


if __name__ == "__main__":
    main()
