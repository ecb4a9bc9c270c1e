"""A decoder-only causal transformer LM for 50 steps against PyTorch, from the
same initial weights on the same batches.

The model (byte tokens, learned positions, 2 torch.nn.TransformerEncoderLayer
with d_model 128, 4 heads, GELU and a causal mask, a final LayerNorm and a
linear head over the 256 bytes) is exported by PyTorch in training mode at
opset 17 and compiled in FP32, BF16 and FP16 (AdamW, batch 8, sequences of
64). The batches are consecutive 65-byte windows of a text file that Debian
installs (base-files' GPL-3): 64 input bytes, and the next byte of each as
its label, written as .npy files and fed to `amp-run step`. PyTorch trains
the same model on the same batches, twice: with all threads (the reference)
and with one, which sums in another order.

Checks: our FP32 loss within 1e-3 relative of PyTorch's at every step (or
three times PyTorch's own thread gap, if larger); our BF16 and FP16 losses
within 3% of our FP32 at every step; the FP16 run (dynamic loss scaling,
the causal mask's -inf in its scores) never has a non-finite loss and skips
no step after the loss scale first settles.
"""
import os

import numpy as np
import torch

from common import (compare_loss_curves, compile_and_step, parse_args, pytorch_adamw_losses,
                    workdir)
from causal_lm import CausalLM, export  # noqa: E402  (common put test/models on the path)

TEXT = "/usr/share/common-licenses/GPL-3"
STEPS, BATCH, SEQUENCE, LR = 50, 8, 64, 1e-4


def batches():
    """STEPS * BATCH windows of the text: input bytes and next-byte labels."""
    with open(TEXT, "rb") as f:
        text = np.frombuffer(f.read(), np.uint8).astype(np.int64)
    n = STEPS * BATCH
    starts = np.arange(n) * SEQUENCE
    if starts[-1] + SEQUENCE + 1 > text.size:
        raise SystemExit(f"{TEXT} is shorter than {n} windows of {SEQUENCE + 1} bytes")
    tokens = np.stack([text[s:s + SEQUENCE] for s in starts])
    labels = np.stack([text[s + 1:s + SEQUENCE + 1] for s in starts])
    return tokens, labels


def pytorch_losses(state, tokens, labels, threads):
    torch.set_num_threads(threads)
    model = CausalLM()
    model.load_state_dict(state)
    return pytorch_adamw_losses(model, tokens, labels, STEPS, BATCH, LR)


def main():
    args = parse_args(__doc__)
    tokens, labels = batches()
    model = CausalLM()
    state = {k: v.clone() for k, v in model.state_dict().items()}
    with workdir() as tmp:
        onnx_path = os.path.join(tmp, "lm.onnx")
        export(model, onnx_path, BATCH)
        runs = {p: compile_and_step(args.bin, tmp, onnx_path,
                                    f"precision={p} loss=cross-entropy optimizer=adamw lr={LR} "
                                    f"batch={BATCH}", {"input": tokens, "labels": labels}, p,
                                    STEPS)[1]
                for p in ("fp32", "bf16", "fp16")}
    ours = {p: np.array([m["loss"] if m["loss"] is not None else np.nan for m in r])
            for p, r in runs.items()}
    reference = pytorch_losses(state, tokens, labels, os.cpu_count())
    noise = np.abs(pytorch_losses(state, tokens, labels, 1) - reference) / np.abs(reference)
    failures = compare_loss_curves(ours, reference, noise,
                                   list(range(5)) + list(range(9, STEPS, 10)))
    skipped = [m.get("skipped", 0) for m in runs["fp16"]]
    settled = next((i for i, s in enumerate(skipped) if not s), len(skipped))
    late = [i + 1 for i, s in enumerate(skipped) if s and i >= settled]
    print(f"fp16: {settled} step(s) skipped while the loss scale settled, "
          f"{len(late)} skipped after ({late})")
    if late:
        failures.append("FP16 skipped steps after the loss scale settled")
    if failures:
        raise SystemExit("; ".join(failures))
    print("all checks passed")


if __name__ == "__main__":
    main()
