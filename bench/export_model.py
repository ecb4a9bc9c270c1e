"""Exports one of the benchmark's models to ONNX as the tests do (PyTorch in
training mode, opset 17): mlp, lenet_bn or resnet18 with a dynamic batch,
causal_lm (the LM of e2e.causal_lm: 2 layers, d_model 128, sequence 64) with
the batch given (its shape subgraphs fold at a fixed batch).
usage: export_model.py MODEL OUTPUT.onnx [BATCH]   (Debian's /usr/bin/python3)"""
import os
import sys

import torch

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "test", "models"))
import causal_lm  # noqa: E402
import lenet_bn  # noqa: E402
import mlp  # noqa: E402

name, path = sys.argv[1], sys.argv[2]
if name == "mlp":
    mlp.export(mlp.make_mlp(seed=0), path)
elif name == "lenet_bn":
    lenet_bn.export(lenet_bn.make_lenet_bn(seed=0), path)
elif name == "causal_lm":
    causal_lm.export(causal_lm.CausalLM(), path, int(sys.argv[3]))
else:
    import torchvision
    torch.manual_seed(0)
    torch.onnx.export(torchvision.models.resnet18(num_classes=10), torch.zeros(2, 3, 32, 32),
                      path, opset_version=17, training=torch.onnx.TrainingMode.TRAINING,
                      do_constant_folding=False, input_names=["input"],
                      output_names=["logits"],
                      dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}})
