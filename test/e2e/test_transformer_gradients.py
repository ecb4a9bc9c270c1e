"""Gradients of transformer building blocks equal PyTorch's (FP32, <= 1e-5).

Each model is exported by PyTorch (opset 17, training mode), compiled with
optimizer=none and loss=cross-entropy, run once by amp-run on a random batch,
and its loss and parameter gradients compared with torch.autograd's on the
same weights and batch (check_cross_entropy of test_gradients.py). Each
model is also compiled in BF16 and FP16: the loss of the same step must be
within 2% of PyTorch's FP32 loss (autocast placed the ops and casts so that
the step runs, and the low types cost only rounding):
- GELU in both forms (PyTorch exports the exact one through Erf, the tanh
  one through Pow and Tanh; amp-recognize-composites makes each one
  amp.gelu), and Sqrt;
- Softmax on axes 1 and -1 and LogSoftmax on axis 1 of a 3-D tensor;
- Transpose: an attention-style [N, S, H, D] -> [N, H, S, D] permutation;
- Slice with steps 2 and -1 (torch.flip) and a flipped slice of step -3;
- masks computed at run time (Greater, Equal, Not, And, Less, Or,
  LessOrEqual on the input and on activations), Where with a -1e4 fill and
  masked_fill with -inf (their gradients only where the value is kept), a
  mask cast to float;
- ReduceMax and ReduceMin (torch.amax, torch.amin) over the last and a
  middle axis, and over a parameter with three-way ties;
- LayerNormalization over the last dim and over the last two (PyTorch
  1.13 cannot export one without affine parameters);
- MatMul: a sequence times a weight, batched Q K^T and attention x V, and
  batch dims that broadcast on both sides ([N, 1, S, S] x [2, S, D]);
- Gather: an embedding of int64 token ids with repeated tokens (its
  gradient a scatter-add), the same with int32 token ids, and a constant
  position (a class token's); the int64 and int32 ids also cast to float
  at run time beside their embedding;
- a layer norm written out (ReduceMean, Sub, Pow 2, Add, Sqrt, Div), as
  older exporters write it (amp-recognize-composites makes it one
  amp.layer_norm with the model's scale and shift);
- a whole torch.nn.TransformerEncoderLayer (2 heads, GELU) with a causal
  mask, exported as PyTorch writes it: its shape computations (Shape,
  Gather, Add, Div, Unsqueeze, Concat on integers) fold at import and its
  packed Q/K/V projection is sliced;
- attention with a -1e9 additive mask (a graph constant) that masks one
  row entirely: the BF16 and FP16 steps must stay finite and close to
  FP32's (that row uniform, as in FP32);
- loss=cross-entropy over sequence logits [N, S, V] with labels [N, S] and
  ignore-index=-100 (some positions ignored), as
  torch.nn.functional.cross_entropy over the flattened positions.
"""
import os

import numpy as np
import torch

from common import Checker, compile_and_step, parse_args, relative_error, workdir
from test_gradients import check_against_torch, check_cross_entropy, step_gradients

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


class StridedSliceModel(torch.nn.Module):
    """fc2(cat(h[:, ::2], flip(h, 1)[:, 1:7:3])) with h = fc1(x): slices of
    steps 2, -1 and -3 (gathers at import; their gradients scatter-adds)."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(12)
        self.fc1 = torch.nn.Linear(FEATURES, 16)
        self.fc2 = torch.nn.Linear(8 + 2, 10)

    def forward(self, x):
        h = self.fc1(x)
        return self.fc2(torch.cat([h[:, ::2], torch.flip(h, [1])[:, 1:7:3]], dim=1))


class RunTimeMaskModel(torch.nn.Module):
    """Masks computed at run time from the input and from activations:
    fc2(softmax(where(keep, h, -1e4).masked_fill(far, -inf) + where(x0 <= 0, 1, 0)))
    with h = fc1(x), keep = (h > -0.3) & !(h == 0) and far = (x0 < -1.5) |
    (x1 >= 1.5) per row (a row never entirely masked: keep holds where h is
    large). Comparisons, Not, And, Or, Where with a -inf fill, and a Cast
    of a mask to float."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(13)
        self.fc1 = torch.nn.Linear(FEATURES, 16)
        self.fc2 = torch.nn.Linear(16, 10)

    def forward(self, x):
        h = self.fc1(x)
        keep = (h > -0.3) & ~(h == 0)
        far = (x[:, :1] < -1.5) | (x[:, 1:2] >= 1.5)
        s = torch.where(keep, h, torch.full_like(h, -1e4))
        s = s.masked_fill(far & (h < 0), float("-inf"))
        s = s + (x[:, 2:3] <= 0).float()
        return self.fc2(torch.softmax(s, dim=1))


class SoftmaxAxesModel(torch.nn.Module):
    """fc2(flatten(softmax(h, 1) * scale + softmax(h, -1) + log_softmax(h, 1)))
    with h = fc1(x) viewed as [N, 4, 6]."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(12)
        self.fc1 = torch.nn.Linear(FEATURES, 24)
        self.scale = torch.nn.Parameter(torch.randn(4, 6))
        self.fc2 = torch.nn.Linear(24, 10)

    def forward(self, x):
        h = self.fc1(x).reshape(-1, 4, 6) * 3.0
        mixed = (torch.softmax(h, dim=1) * self.scale + torch.softmax(h, dim=-1)
                 + torch.log_softmax(h, dim=1))
        return self.fc2(mixed.reshape(-1, 24))


class PermuteModel(torch.nn.Module):
    """fc2(flatten(permute(fc1(x) as [N, 2, 3, 4], (0, 2, 1, 3)) * w))."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(13)
        self.fc1 = torch.nn.Linear(FEATURES, 24)
        self.w = torch.nn.Parameter(torch.randn(3, 2, 4))
        self.fc2 = torch.nn.Linear(24, 10)

    def forward(self, x):
        h = self.fc1(x).reshape(-1, 2, 3, 4).permute(0, 2, 1, 3) * self.w
        return self.fc2(torch.relu(h).reshape(-1, 24))


class MaxReductionModel(torch.nn.Module):
    """fc2(flatten(h - amax(h, -1) + amin(h, 1) * amax(w, 1))) with h = fc1(x)
    as [N, 4, 6] and w a parameter whose rows tie three ways at their maximum
    (torch.amax splits the gradient evenly between ties)."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(14)
        self.fc1 = torch.nn.Linear(FEATURES, 24)
        self.w = torch.nn.Parameter(torch.tensor([[0.5, 0.5, 0.1, -0.2, 0.5, 0.3]] * 4))
        self.fc2 = torch.nn.Linear(24, 10)

    def forward(self, x):
        h = self.fc1(x).reshape(-1, 4, 6)
        mixed = (h - torch.amax(h, dim=-1, keepdim=True)
                 + torch.amin(h, dim=1, keepdim=True) * torch.amax(self.w, dim=1, keepdim=True))
        return self.fc2(mixed.reshape(-1, 24))


class LayerNormModel(torch.nn.Module):
    """fc2(relu(ln2(relu(ln1(fc1(x) as [N, 4, 6]))))): ln1 over the last dim,
    ln2 over the last two."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(14)
        self.fc1 = torch.nn.Linear(FEATURES, 24)
        self.ln1 = torch.nn.LayerNorm(6)
        self.ln2 = torch.nn.LayerNorm([4, 6], eps=1e-3)
        for ln in (self.ln1, self.ln2):  # not the initial ones and zeros
            torch.nn.init.normal_(ln.weight, 1.0, 0.3)
            torch.nn.init.normal_(ln.bias, 0.0, 0.3)
        self.fc2 = torch.nn.Linear(24, 10)

    def forward(self, x):
        h = self.fc1(x).reshape(-1, 4, 6) * 2.0 + 1.0
        h = torch.relu(self.ln2(torch.relu(self.ln1(h))))
        return self.fc2(h.reshape(-1, 24))


class AttentionModel(torch.nn.Module):
    """One attention head over S = 4 positions of D = 6 features, then the
    attention weights times a parameter with broadcast batch dims."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(15)
        self.fc1 = torch.nn.Linear(FEATURES, 24)
        self.wq = torch.nn.Parameter(torch.randn(6, 6) * 0.5)
        self.wk = torch.nn.Parameter(torch.randn(6, 6) * 0.5)
        self.wv = torch.nn.Parameter(torch.randn(6, 6) * 0.5)
        self.g = torch.nn.Parameter(torch.randn(2, 4, 6) * 0.5)
        self.fc2 = torch.nn.Linear(24 + 48, 10)

    def forward(self, x):
        h = self.fc1(x).reshape(-1, 4, 6)
        q, k, v = h @ self.wq, h @ self.wk, h @ self.wv
        attention = torch.softmax(q @ k.transpose(1, 2) * 0.4, dim=-1)
        mixed = (attention @ v).reshape(-1, 24)
        spread = (attention.unsqueeze(1) @ self.g).reshape(-1, 48)
        return self.fc2(torch.cat([mixed, spread], dim=1))


# An additive mask of -1e9 (beyond fp16's range): row 0 masked entirely,
# the others causally.
ROW_MASKED = [[-1e9] * 4] + [[0.0 if k <= q else -1e9 for k in range(4)] for q in range(1, 4)]


class MaskedAttentionModel(torch.nn.Module):
    """Attention over 4 positions with the -1e9 mask built in the graph (a
    Constant): in FP32 the masked-out row is uniform, and in BF16 and FP16
    too (autocast adds the mask in FP32, as the add leads into the softmax;
    a mask narrowed to fp16 would saturate to -65504, cast_cleanup.mlir)."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(29)
        self.fc1 = torch.nn.Linear(FEATURES, 24)
        self.wq = torch.nn.Parameter(torch.randn(6, 6) * 0.5)
        self.wk = torch.nn.Parameter(torch.randn(6, 6) * 0.5)
        self.fc2 = torch.nn.Linear(24, 10)

    def forward(self, x):
        h = self.fc1(x).reshape(-1, 4, 6)
        scores = (h @ self.wq) @ (h @ self.wk).transpose(1, 2) * 0.4 + torch.tensor(ROW_MASKED)
        return self.fc2((torch.softmax(scores, dim=-1) @ h).reshape(-1, 24))


class DecomposedLayerNormModel(torch.nn.Module):
    """fc2(relu(layer norm of fc1(x) written out, with scale and shift))."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(17)
        self.fc1 = torch.nn.Linear(FEATURES, 16)
        self.scale = torch.nn.Parameter(torch.randn(16) * 0.3 + 1.0)
        self.shift = torch.nn.Parameter(torch.randn(16) * 0.3)
        self.fc2 = torch.nn.Linear(16, 10)

    def forward(self, x):
        h = self.fc1(x) * 3.0
        centered = h - h.mean(dim=-1, keepdim=True)
        variance = centered.pow(2).mean(dim=-1, keepdim=True)
        normalized = centered / torch.sqrt(variance + 1e-5)
        return self.fc2(torch.relu(normalized * self.scale + self.shift))


SEQUENCE, WIDTH = 8, 16


class EncoderLayerModel(torch.nn.Module):
    """fc(flatten(TransformerEncoderLayer(x, causal mask)))."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(18)
        self.layer = torch.nn.TransformerEncoderLayer(
            d_model=WIDTH, nhead=2, dim_feedforward=32, dropout=0.0, activation="gelu",
            batch_first=True)
        self.register_buffer("mask",
                             torch.nn.Transformer.generate_square_subsequent_mask(SEQUENCE))
        self.fc = torch.nn.Linear(SEQUENCE * WIDTH, 10)

    def forward(self, x):
        return self.fc(self.layer(x, src_mask=self.mask).reshape(-1, SEQUENCE * WIDTH))


def export_sequences(model, path):
    torch.onnx.export(model, torch.zeros(BATCH, SEQUENCE, WIDTH), path, opset_version=17,
                      training=torch.onnx.TrainingMode.TRAINING, do_constant_folding=False,
                      input_names=["input"], output_names=["logits"])


TOKENS, VOCAB = 5, 7


class EmbeddingModel(torch.nn.Module):
    """fc(concat(flatten(embed(tokens)), embed(tokens)[:, 0]))."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(16)
        self.embed = torch.nn.Embedding(VOCAB, 6)
        self.fc = torch.nn.Linear(TOKENS * 6 + 6, 10)

    def forward(self, tokens):
        e = self.embed(tokens)
        return self.fc(torch.cat([e.reshape(-1, TOKENS * 6), e[:, 0]], dim=1))


class TokenValuesModel(torch.nn.Module):
    """fc(concat(flatten(embed(tokens)), tokens / VOCAB)):
    the ids themselves cast to float at run time (ONNX Cast of int64, as a
    model casts an integer attention mask), beside the embedding."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(17)
        self.embed = torch.nn.Embedding(VOCAB, 6)
        self.fc = torch.nn.Linear(TOKENS * 6 + TOKENS, 10)

    def forward(self, tokens):
        e = self.embed(tokens).reshape(-1, TOKENS * 6)
        return self.fc(torch.cat([e, tokens.float() / VOCAB], dim=1))


def export_tokens(model, path, dtype=torch.int64):
    torch.onnx.export(model, torch.zeros(BATCH, TOKENS, dtype=dtype), path,
                      opset_version=17, training=torch.onnx.TrainingMode.TRAINING,
                      do_constant_folding=False, input_names=["input"], output_names=["logits"])


def export_int32_tokens(model, path):
    export_tokens(model, path, torch.int32)


def export_features(model, path):
    torch.onnx.export(model, torch.zeros(BATCH, FEATURES), path, opset_version=17,
                      training=torch.onnx.TrainingMode.TRAINING, do_constant_folding=False,
                      input_names=["input"], output_names=["logits"])


def check_low_precision(args, checker, label, model, x, export):
    labels = np.random.default_rng(1).integers(0, 10, x.shape[0], dtype=np.int64)
    reference = torch.nn.functional.cross_entropy(model(torch.from_numpy(x)),
                                                  torch.from_numpy(labels)).item()
    with workdir() as tmp:
        onnx_path = os.path.join(tmp, "model.onnx")
        export(model, onnx_path)
        for precision in ("bf16", "fp16"):
            dump, _ = compile_and_step(args.bin, tmp, onnx_path, f"precision={precision} "
                                       f"loss=cross-entropy optimizer=none batch={x.shape[0]}",
                                       {"input": x, "labels": labels}, precision)
            loss = float(np.load(os.path.join(dump, "loss.npy")))
            checker.check(f"{label} {precision} loss vs fp32", relative_error(loss, reference),
                          2e-2)


def check_embedding(args, checker):
    # 16 x 5 draws from 7 tokens: every token repeats.
    tokens = np.random.default_rng(26).integers(0, VOCAB, (BATCH, TOKENS), dtype=np.int64)
    check_cross_entropy(args, checker, "embedding", EmbeddingModel(), tokens, export_tokens)
    check_low_precision(args, checker, "embedding", EmbeddingModel(), tokens, export_tokens)
    check_cross_entropy(args, checker, "token values", TokenValuesModel(), tokens, export_tokens)
    check_low_precision(args, checker, "token values", TokenValuesModel(), tokens, export_tokens)
    check_cross_entropy(args, checker, "token values int32", TokenValuesModel(),
                        tokens.astype(np.int32), export_int32_tokens)
    # The same embedding exported with int32 token ids (fed as int32).
    check_cross_entropy(args, checker, "embedding int32 ids", EmbeddingModel(),
                        tokens.astype(np.int32), export_int32_tokens)


def check_encoder_layer(args, checker):
    x = np.random.default_rng(28).standard_normal((BATCH, SEQUENCE, WIDTH)).astype(np.float32)
    check_cross_entropy(args, checker, "encoder layer", EncoderLayerModel(), x,
                        export_sequences)
    check_low_precision(args, checker, "encoder layer", EncoderLayerModel(), x,
                        export_sequences)


class TokenLogitsModel(torch.nn.Module):
    """Per-position logits over the vocabulary: fc(relu(embed(tokens)))."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(19)
        self.embed = torch.nn.Embedding(VOCAB, 6)
        self.fc = torch.nn.Linear(6, VOCAB)

    def forward(self, tokens):
        return self.fc(torch.relu(self.embed(tokens)))


def check_sequence_loss(args, checker):
    model = TokenLogitsModel()
    rng = np.random.default_rng(29)
    tokens = rng.integers(0, VOCAB, (BATCH, TOKENS), dtype=np.int64)
    labels = rng.integers(0, VOCAB, (BATCH, TOKENS), dtype=np.int64)
    labels[rng.random((BATCH, TOKENS)) < 0.25] = -100
    with workdir() as tmp:
        onnx_path = os.path.join(tmp, "model.onnx")
        export_tokens(model, onnx_path)
        dump, _ = compile_and_step(args.bin, tmp, onnx_path, f"precision=fp32 loss=cross-entropy "
                                   f"ignore-index=-100 optimizer=none batch={BATCH}",
                                   {"input": tokens, "labels": labels}, "fp32")
        ours, our_loss = step_gradients(dump, model)
    logits = model(torch.from_numpy(tokens))
    loss = torch.nn.functional.cross_entropy(logits.reshape(-1, VOCAB),
                                             torch.from_numpy(labels).reshape(-1),
                                             ignore_index=-100)
    loss.backward()
    check_against_torch(checker, "sequence loss", our_loss, ours, loss, model)


# Models of [BATCH, FEATURES] inputs: label, class, input seed and scale.
FEATURE_MODELS = [
    ("gelu", GeluModel, 21, 2.0),
    ("softmax axes", SoftmaxAxesModel, 22, 1.0),
    ("permute", PermuteModel, 23, 1.0),
    ("max reductions", MaxReductionModel, 31, 1.0),
    ("strided slices", StridedSliceModel, 32, 1.0),
    ("run-time masks", RunTimeMaskModel, 33, 1.0),
    ("layer norm", LayerNormModel, 24, 1.0),
    ("attention", AttentionModel, 25, 1.0),
    ("decomposed layer norm", DecomposedLayerNormModel, 27, 1.0),
    ("row-masked attention", MaskedAttentionModel, 30, 1.0),
]


def main():
    args = parse_args(__doc__)
    checker = Checker()
    for label, model, seed, scale in FEATURE_MODELS:
        x = np.random.default_rng(seed).standard_normal((BATCH, FEATURES)).astype(np.float32)
        check_cross_entropy(args, checker, label, model(), x * scale, export_features)
        check_low_precision(args, checker, label, model(), x * scale, export_features)
    check_embedding(args, checker)
    check_encoder_layer(args, checker)
    check_sequence_loss(args, checker)
    checker.finish()


if __name__ == "__main__":
    main()
