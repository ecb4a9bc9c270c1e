"""LeNet-5 with batch normalization for Fashion-MNIST, and its ONNX export.

conv 5x5 (1 -> 6, pad 2) -> BN -> ReLU -> max pool 2 -> conv 5x5 (6 -> 16)
-> BN -> ReLU -> max pool 2 -> Linear(400, 120) -> BN -> ReLU ->
Linear(120, 84) -> ReLU -> Linear(84, 10), exported by PyTorch in training
mode at opset 17 with a dynamic batch (BatchNormalization with
training_mode 1: batch statistics, running averages updated).
Run with Debian's /usr/bin/python3 (python3-torch, python3-onnx).
"""
import argparse

import torch
from torch import nn


def make_lenet_bn(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Conv2d(1, 6, 5, padding=2, bias=False), nn.BatchNorm2d(6), nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(6, 16, 5, bias=False), nn.BatchNorm2d(16), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(400, 120, bias=False), nn.BatchNorm1d(120), nn.ReLU(),
        nn.Linear(120, 84), nn.ReLU(),
        nn.Linear(84, 10),
    )


def export(model: nn.Module, path: str) -> None:
    # Tracing in training mode runs the model once and would move the running
    # averages; export a copy so the caller's model keeps its initial state.
    state = {k: v.clone() for k, v in model.state_dict().items()}
    model.train()
    torch.onnx.export(
        model,
        torch.zeros(2, 1, 28, 28),
        path,
        opset_version=17,
        training=torch.onnx.TrainingMode.TRAINING,
        do_constant_folding=False,
        input_names=["input"],
        output_names=["logits"],
        dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}},
    )
    model.load_state_dict(state)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("output", help="path of the .onnx file to write")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    export(make_lenet_bn(args.seed), args.output)
