"""The Fashion-MNIST MLP of the acceptance tests, and its ONNX export.

Flatten -> Linear(784, 512) -> ReLU -> Linear(512, 512) -> ReLU -> Linear(512, 10),
exported by PyTorch in training mode at opset 17 with a dynamic batch.
Run with Debian's /usr/bin/python3 (python3-torch, python3-onnx).
"""
import argparse

import torch
from torch import nn


def make_mlp(seed: int = 0, hidden: int = 512) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Flatten(),
        nn.Linear(784, hidden),
        nn.ReLU(),
        nn.Linear(hidden, hidden),
        nn.ReLU(),
        nn.Linear(hidden, 10),
    )


def export(model: nn.Module, path: str) -> None:
    example = torch.zeros(2, 1, 28, 28)
    torch.onnx.export(
        model,
        example,
        path,
        opset_version=17,
        training=torch.onnx.TrainingMode.TRAINING,
        do_constant_folding=False,
        input_names=["input"],
        output_names=["logits"],
        dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}},
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("output", help="where to write the .onnx model")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--hidden", type=int, default=512)
    args = parser.parse_args()
    export(make_mlp(args.seed, args.hidden), args.output)
