"""Gradients of transformer building blocks equal PyTorch's (FP32, <= 1e-5).

Each model is exported by PyTorch (opset 17, training mode), compiled with
optimizer=none and loss=cross-entropy, run once by amp-run on a random batch,
and its loss and parameter gradients compared with torch.autograd's on the
same weights and batch (check_cross_entropy of test_gradients.py):
- GELU in both forms (PyTorch exports the exact one through Erf, the tanh
  one through Pow and Tanh), and Sqrt;
"""
import numpy as np
import torch

from common import Checker, parse_args
from test_gradients import check_cross_entropy

BATCH = 16
FEATURES = 12


class GeluModel(torch.nn.Module):
    """fc3(sqrt(gelu_tanh(fc2(gelu(fc1(x))))^2 + 1))."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(11)
        self.fc1 = torch.nn.Linear(FEATURES, 24)
        self.fc2 = torch.nn.Linear(24, 16)
        self.fc3 = torch.nn.Linear(16, 10)

    def forward(self, x):
        h = torch.nn.functional.gelu(self.fc1(x))
        h = torch.nn.functional.gelu(self.fc2(h), approximate="tanh")
        return self.fc3(torch.sqrt(h * h + 1.0))


def export_features(model, path):
    torch.onnx.export(model, torch.zeros(BATCH, FEATURES), path, opset_version=17,
                      training=torch.onnx.TrainingMode.TRAINING, do_constant_folding=False,
                      input_names=["input"], output_names=["logits"])


def check_gelu(args, checker):
    x = np.random.default_rng(21).standard_normal((BATCH, FEATURES)).astype(np.float32) * 2
    check_cross_entropy(args, checker, "gelu", GeluModel(), x, export_features)


def main():
    args = parse_args(__doc__)
    checker = Checker()
    check_gelu(args, checker)
    checker.finish()


if __name__ == "__main__":
    main()
