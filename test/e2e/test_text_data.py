"""`amp-run train --data text=FILE`: a byte-level causal LM trained on a text
file that Debian installs, its held-out loss and perplexity checked by PyTorch.

A one-layer causal LM (the model of test_causal_lm.py: d_model 64, sequences
of 32) is exported by PyTorch and compiled in FP32 and BF16. amp-run trains
it for 40 steps of batch 8 on base-files' GPL-3 and reports the held-out
tail's next-byte cross entropy and perplexity. The FP32 run's weights are
exported back into the ONNX model and loaded into the PyTorch model, which
computes the same held-out loss on its own (the split written out here, not
amp-run's): the two must agree to 1e-4 relative, the perplexity must be the
loss's exponential, and `amp-run accuracy` on the checkpoint must report the
same, and the model's causal-mask buffer must come back unchanged (it is
a constant, not a parameter). Training must have learned something (held-out loss well below the
uniform ln 256) and BF16's held-out loss must be within 3% of FP32's. Bad
inputs (a file too short for one batch, an image model) are refused with
their reason.
"""
import json
import math
import os
import re
import subprocess

import numpy as np
import onnx
import onnx.numpy_helper
import torch

from common import compile_model, parse_args, run, workdir
from causal_lm import CausalLM, export  # noqa: E402  (common put test/models on the path)

TEXT = "/usr/share/common-licenses/GPL-3"
BATCH, SEQUENCE, WIDTH, STEPS = 8, 32, 64, 40
PIPELINE = f"loss=cross-entropy optimizer=adamw lr=0.003 batch={BATCH}"


def held_out_windows():
    """The held-out tail as docs/cli.md defines it: the last tenth of the
    file (at least one window), windows of SEQUENCE + 1 bytes at multiples
    of SEQUENCE."""
    with open(TEXT, "rb") as f:
        text = np.frombuffer(f.read(), np.uint8).astype(np.int64)
    tail = text[text.size - max(text.size // 10, SEQUENCE + 1):]
    count = (tail.size - 1) // SEQUENCE
    tokens = np.stack([tail[i * SEQUENCE:(i + 1) * SEQUENCE] for i in range(count)])
    labels = np.stack([tail[i * SEQUENCE + 1:(i + 1) * SEQUENCE + 1] for i in range(count)])
    return tokens, labels


def pytorch_held_out_loss(onnx_path):
    """PyTorch's held-out cross entropy of the model with the exported weights."""
    model = CausalLM(layers=1, width=WIDTH, sequence=SEQUENCE)
    trained = {t.name: torch.from_numpy(onnx.numpy_helper.to_array(t).copy())
               for t in onnx.load(onnx_path).graph.initializer}
    state = model.state_dict()
    missing = [name for name in state if name not in trained]
    if missing:
        raise SystemExit(f"the exported model lacks parameters {missing}")
    model.load_state_dict({name: trained[name] for name in state})
    tokens, labels = held_out_windows()
    with torch.no_grad():
        logits = model(torch.from_numpy(tokens)).double()
        return torch.nn.functional.cross_entropy(logits.reshape(-1, 256),
                                                 torch.from_numpy(labels).reshape(-1)).item()


def scores(output):
    """test_loss and test_perplexity from amp-run train's last line."""
    found = dict(re.findall(r"(test_\w+) ([0-9.]+)", output))
    return float(found["test_loss"]), float(found["test_perplexity"])


def refused(cmd, reason):
    result = subprocess.run(cmd, capture_output=True, text=True)
    ok = result.returncode == 1 and reason in result.stderr
    print(f"{'ok  ' if ok else 'FAIL'} refused: {result.stderr.strip()}")
    return ok


def main():
    args = parse_args(__doc__)
    amp_run = os.path.join(args.bin, "amp-run")
    failures = []
    with workdir() as tmp:
        onnx_path = os.path.join(tmp, "lm.onnx")
        export(CausalLM(layers=1, width=WIDTH, sequence=SEQUENCE), onnx_path, BATCH)
        results = {}
        for precision in ("fp32", "bf16"):
            plan = os.path.join(tmp, f"{precision}.ampplan")
            compile_model(args.bin, onnx_path, plan, f"precision={precision} {PIPELINE}")
            output = run([amp_run, "train", plan, "--data", f"text={TEXT}", "--max-steps",
                          STEPS, "--checkpoint", plan + ".ckpt"])
            print(f"{precision}: {output.strip()}")
            results[precision] = scores(output)

        plan = os.path.join(tmp, "fp32.ampplan")
        evaluated = json.loads(run([amp_run, "accuracy", plan, "--data", f"text={TEXT}",
                                    "--checkpoint", plan + ".ckpt"]))
        print(f"amp-run accuracy on the fp32 checkpoint: {evaluated}")
        loss, perplexity = evaluated["test_loss"], evaluated["test_perplexity"]
        if any(abs(a - b) > 5e-5 * max(1, b) for a, b in zip(results["fp32"], (loss, perplexity))):
            failures.append("amp-run train's evaluation disagrees with amp-run accuracy's")
        exported = os.path.join(tmp, "trained.onnx")
        run([amp_run, "export", plan, "--checkpoint", plan + ".ckpt", "--onnx", onnx_path,
             "--output", exported])
        # Regression: the causal mask buffer was imported as a parameter and
        # AdamW trained its zeros. It is a constant: exported unchanged.
        mask = next(onnx.numpy_helper.to_array(t) for t in onnx.load(exported).graph.initializer
                    if t.name == "mask")
        if not np.array_equal(mask, CausalLM(1, WIDTH, SEQUENCE).mask.numpy()):
            failures.append("the mask buffer was trained")
        reference = pytorch_held_out_loss(exported)
        gap = abs(loss - reference) / reference
        print(f"held-out loss: amp-run {loss:.6f}, PyTorch on the exported weights "
              f"{reference:.6f} (relative gap {gap:.1e}, bound 1e-4)")
        if gap > 1e-4:
            failures.append("the held-out loss differs from PyTorch's")
        if abs(perplexity - math.exp(loss)) > 1e-5 * perplexity:
            failures.append(f"perplexity {perplexity} is not exp({loss})")
        if loss > 0.8 * math.log(256):
            failures.append(f"held-out loss {loss} is near the uniform {math.log(256):.3f}: "
                            "nothing was learned")
        bf16_gap = abs(results["bf16"][0] - loss) / loss
        print(f"bf16 held-out loss {results['bf16'][0]:.4f}: {bf16_gap:.1e} from fp32 (bound 3e-2)")
        if bf16_gap > 0.03:
            failures.append("the BF16 held-out loss strays from FP32's")

        short = os.path.join(tmp, "short.txt")
        with open(short, "w") as f:
            f.write("too short for a batch of eight sequences " * 6)
        if not refused([amp_run, "train", plan, "--data", f"text={short}"], "bytes are too few"):
            failures.append("a short file was not refused")
    if failures:
        raise SystemExit("; ".join(failures))
    print("all checks passed")


if __name__ == "__main__":
    main()
