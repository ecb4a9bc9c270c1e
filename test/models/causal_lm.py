"""The decoder-only causal transformer LM of the acceptance tests and the
benchmark, and its ONNX export.

Byte tokens and learned positions, `layers` torch.nn.TransformerEncoderLayer
(d_model `width`, 4 heads, feed-forward 4 x width, GELU, no dropout) under a
causal mask, a final LayerNorm and a linear head over the 256 bytes. The mask
is a buffer (register_buffer): the export writes it as an initializer holding
-inf, which amp-opt keeps constant. Exported by PyTorch in training mode at
opset 17 with a fixed batch (the shape subgraphs fold once it is known).
Run with Debian's /usr/bin/python3 (python3-torch, python3-onnx).
"""
import torch

VOCAB = 256


class CausalLM(torch.nn.Module):
    def __init__(self, layers=2, width=128, sequence=64, seed=0):
        super().__init__()
        torch.manual_seed(seed)
        self.embed = torch.nn.Embedding(VOCAB, width)
        self.position = torch.nn.Parameter(torch.randn(sequence, width) * 0.02)
        self.layers = torch.nn.ModuleList(
            torch.nn.TransformerEncoderLayer(d_model=width, nhead=4, dim_feedforward=4 * width,
                                             dropout=0.0, activation="gelu", batch_first=True)
            for _ in range(layers))
        self.norm = torch.nn.LayerNorm(width)
        self.head = torch.nn.Linear(width, VOCAB)
        self.register_buffer("mask",
                             torch.nn.Transformer.generate_square_subsequent_mask(sequence))

    def forward(self, tokens):
        h = self.embed(tokens) + self.position
        for layer in self.layers:
            h = layer(h, src_mask=self.mask)
        return self.head(self.norm(h))


def export(model: CausalLM, path: str, batch: int) -> None:
    sequence = model.position.shape[0]
    torch.onnx.export(model, torch.zeros(batch, sequence, dtype=torch.int64), path,
                      opset_version=17, training=torch.onnx.TrainingMode.TRAINING,
                      do_constant_folding=False, input_names=["input"],
                      output_names=["logits"])
