"""One PyTorch row of bench/mlp_cpu.py: trains --model (the MLP, LeNet-BN,
torchvision's ResNet-18 or the causal LM) on random batches and
prints {"samples_per_s": median, "torch": version} as JSON.

Variants (the strongest ways PyTorch offers to run this step on a CPU):
  eager          FP32, torch.optim.AdamW with its default (foreach) kernels
  eager-fused    FP32, AdamW(fused=True) (PyTorch >= 2.4)
  compile-model  FP32, torch.compile(model), eager backward and optimizer
  compile-step   FP32, torch.compile of the whole step (forward, backward,
                 optimizer.step)
  bf16           eager under torch.autocast("cpu", dtype=torch.bfloat16)
Runs under bench/.venv's python (PyTorch 2.x) or Debian's /usr/bin/python3
(PyTorch 1.13, variants eager and bf16 only).
"""
import json
import os
import sys

import torch

import steprate  # noqa: E402  (beside this file)

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "test", "models"))
import causal_lm  # noqa: E402
import lenet_bn  # noqa: E402
import mlp  # noqa: E402


def make_model(name):
    if name == "mlp":
        return mlp.make_mlp(seed=0)
    if name == "lenet_bn":
        return lenet_bn.make_lenet_bn(seed=0)
    if name == "causal_lm":
        return causal_lm.CausalLM()
    import resnet18  # beside this file: torchvision's architecture without torchvision
    torch.manual_seed(0)
    return resnet18.resnet18(num_classes=10)


def make_step(variant, batch, name):
    model = make_model(name)
    model.train()
    fused = {"fused": True} if variant == "eager-fused" else {}
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.01, **fused)
    forward = torch.compile(model) if variant == "compile-model" else model
    classes = steprate.CLASSES[name]
    if name == "causal_lm":  # tokens and next-token labels, one per position
        images = torch.randint(0, classes, (batch, *steprate.INPUT_SHAPES[name]))
        labels = torch.randint(0, classes, images.shape)
    else:
        images = torch.rand(batch, *steprate.INPUT_SHAPES[name])
        labels = torch.randint(0, classes, (batch,))
    autocast = variant == "bf16"

    def step():
        optimizer.zero_grad(set_to_none=True)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
            logits = forward(images)
            loss = torch.nn.functional.cross_entropy(logits.reshape(-1, classes),
                                                     labels.reshape(-1))
        loss.backward()
        optimizer.step()

    return torch.compile(step) if variant == "compile-step" else step


def main():
    parser = steprate.parser(__doc__)
    parser.add_argument("variant", choices=["eager", "eager-fused", "compile-model",
                                            "compile-step", "bf16"])
    args = parser.parse_args()
    torch.set_num_threads(os.cpu_count())
    rate = steprate.median_samples_per_s(make_step(args.variant, args.batch, args.model), args)
    print(json.dumps({"samples_per_s": rate, "torch": torch.__version__}))


if __name__ == "__main__":
    main()
