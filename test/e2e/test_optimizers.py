"""AdamW and SGD-momentum steps of the compiled training step equal torch.optim's.

For each optimizer the MLP is compiled, trained for one step and for three
steps on fixed batches by amp-run, and compared with torch.optim on the same
weights and batches: parameter updates (new - old) and optimizer state, FP32.
Gradient accumulation (accumulate=2, micro-batches of 16) must equal
PyTorch stepping once per batch of 32 (mean loss): after 4 micro-batches,
2 AdamW steps, with the accumulation buffers reset.
Updates get a looser bound (1e-4) than state (1e-5): AdamW's first steps
divide g by |g| + eps, which turns the FP32 rounding noise of gradients near
eps (about 1e-8 here) into visible update differences, and new - old cancels.
"""
import os

import numpy as np
import torch

from common import Checker, compile_model, mlp, parse_args, relative_error, run, workdir

BATCH = 32
CASES = [
    # (name, pipeline options, torch optimizer factory, state names)
    ("adamw", "optimizer=adamw lr=0.001",
     lambda p: torch.optim.AdamW(p, lr=1e-3), ["exp_avg", "exp_avg_sq"]),
    ("adamw-no-decay", "optimizer=adamw lr=0.01 beta1=0.8 beta2=0.99 eps=1e-6 weight-decay=0",
     lambda p: torch.optim.AdamW(p, lr=1e-2, betas=(0.8, 0.99), eps=1e-6, weight_decay=0),
     ["exp_avg", "exp_avg_sq"]),
    ("sgd-momentum", "optimizer=sgd lr=0.1 momentum=0.9",
     lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9), ["momentum_buffer"]),
    ("sgd-nesterov-decay", "optimizer=sgd lr=0.05 momentum=0.9 nesterov=true weight-decay=0.001",
     lambda p: torch.optim.SGD(p, lr=0.05, momentum=0.9, nesterov=True, weight_decay=1e-3),
     ["momentum_buffer"]),
]


def torch_steps(make_optimizer, images, labels, steps):
    model = mlp.make_mlp(seed=0)
    optimizer = make_optimizer(model.parameters())
    for _ in range(steps):
        optimizer.zero_grad()
        torch.nn.functional.cross_entropy(model(torch.from_numpy(images)),
                                          torch.from_numpy(labels)).backward()
        optimizer.step()
    return model, optimizer


def check_accumulation(args, checker, tmp, initial):
    rng = np.random.default_rng(9)
    micro = 16
    images = rng.random((4, micro, 1, 28, 28), dtype=np.float32)
    labels = rng.integers(0, 10, (4, micro), dtype=np.int64)
    np.save(os.path.join(tmp, "acc-images.npy"), images)
    np.save(os.path.join(tmp, "acc-labels.npy"), labels)
    plan = os.path.join(tmp, "accumulate.ampplan")
    compile_model(args.bin, os.path.join(tmp, "mlp.onnx"), plan,
                  f"optimizer=adamw lr=0.001 accumulate=2 batch={micro}")
    dump = os.path.join(tmp, "accumulate")
    run([os.path.join(args.bin, "amp-run"), "step", plan, "--steps", 4,
         "--feed", f"input={tmp}/acc-images.npy", "--feed", f"labels={tmp}/acc-labels.npy",
         "--dump", dump])
    model = mlp.make_mlp(seed=0)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    for step in range(2):  # one PyTorch step per pair of micro-batches
        x = torch.from_numpy(images[2 * step:2 * step + 2].reshape(2 * micro, 1, 28, 28))
        y = torch.from_numpy(labels[2 * step:2 * step + 2].reshape(2 * micro))
        optimizer.zero_grad()
        torch.nn.functional.cross_entropy(model(x), y).backward()
        optimizer.step()
    for name, param in model.named_parameters():
        ours = np.load(os.path.join(dump, f"{name}.npy"))
        checker.check(f"accumulate=2 x4 update {name}",
                      relative_error(ours - initial[name], param.detach().numpy() - initial[name]),
                      1e-4)
        checker.check(f"accumulate=2 x4 {name}.exp_avg",
                      relative_error(np.load(os.path.join(dump, f"{name}.exp_avg.npy")),
                                     optimizer.state[param]["exp_avg"].numpy()), 1e-5)
        checker.check(f"accumulate=2 x4 {name} buffer reset",
                      float(np.abs(np.load(os.path.join(dump, f"{name}.grad_accum.npy"))).max()),
                      0)
    checker.check("accumulate=2 x4 step counter",
                  abs(int(np.load(os.path.join(dump, "step.npy"))) - 2), 0)


def main():
    args = parse_args(__doc__)
    rng = np.random.default_rng(2)
    images = rng.random((BATCH, 1, 28, 28), dtype=np.float32)
    labels = rng.integers(0, 10, BATCH, dtype=np.int64)
    initial = {n: p.detach().numpy().copy() for n, p in mlp.make_mlp(seed=0).named_parameters()}
    checker = Checker()
    with workdir() as tmp:
        onnx_path = os.path.join(tmp, "mlp.onnx")
        mlp.export(mlp.make_mlp(seed=0), onnx_path)
        np.save(os.path.join(tmp, "images.npy"), images)
        np.save(os.path.join(tmp, "labels.npy"), labels)
        for name, options, make_optimizer, state_names in CASES:
            plan = os.path.join(tmp, f"{name}.ampplan")
            compile_model(args.bin, onnx_path, plan, f"{options} batch={BATCH}")
            for steps in (1, 3):
                dump = os.path.join(tmp, f"{name}-{steps}")
                os.makedirs(dump)
                run([os.path.join(args.bin, "amp-run"), "step", plan, "--steps", steps,
                     "--feed", f"input={tmp}/images.npy", "--feed", f"labels={tmp}/labels.npy",
                     "--dump", dump])
                model, optimizer = torch_steps(make_optimizer, images, labels, steps)
                for pname, param in model.named_parameters():
                    ours = np.load(os.path.join(dump, f"{pname}.npy"))
                    checker.check(f"{name} x{steps} update {pname}",
                                  relative_error(ours - initial[pname],
                                                 param.detach().numpy() - initial[pname]), 1e-4)
                    for state in state_names:
                        ours = np.load(os.path.join(dump, f"{pname}.{state}.npy"))
                        reference = optimizer.state[param][state].numpy()
                        checker.check(f"{name} x{steps} {pname}.{state}",
                                      relative_error(ours, reference), 1e-5)
                if "adamw" in name:
                    step = int(np.load(os.path.join(dump, "step.npy")))
                    checker.check(f"{name} x{steps} step counter", abs(step - steps), 0)
        check_accumulation(args, checker, tmp, initial)
    checker.finish()


if __name__ == "__main__":
    main()
