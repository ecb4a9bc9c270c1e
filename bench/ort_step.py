"""The onnxruntime-training row of bench/mlp_cpu.py: builds ORT's training
artifacts (training graph with cross-entropy loss, AdamW lr 1e-3, weight decay
0.01) from the same ONNX export of the model that our rows compile, trains on
random batches and prints {"samples_per_s": median, "onnxruntime": version}.
Runs under bench/.venv's python.
"""
import json
import os
import tempfile

import numpy as np
import onnx
import onnx.helper
import onnx.numpy_helper
import onnxruntime
from onnxruntime.training import artifacts
from onnxruntime.training.api import CheckpointState, Module, Optimizer

import steprate  # beside this file


def flatten_sequence_logits(model):
    """ORT's cross-entropy (SoftmaxCrossEntropyLoss) reads the classes on axis
    1: a sequence model's [batch, sequence, classes] logits become
    [batch * sequence, classes] through one Reshape, its labels [batch * sequence]."""
    logits = model.graph.output[0]
    classes = logits.type.tensor_type.shape.dim[-1].dim_value
    shape = onnx.numpy_helper.from_array(np.array([-1, classes], np.int64), "flat_logits_shape")
    model.graph.initializer.append(shape)
    model.graph.node.append(onnx.helper.make_node("Reshape", [logits.name, shape.name],
                                                  ["flat_logits"]))
    model.graph.output.pop()
    model.graph.output.append(onnx.helper.make_tensor_value_info(
        "flat_logits", onnx.TensorProto.FLOAT, [None, classes]))


def name_saved_statistics(model):
    """ORT's LayerNormalization gradient reads the forward's saved mean and
    inverse standard deviation (outputs 1 and 2), which PyTorch's export
    leaves unnamed: without them ORT cannot build the training graph."""
    for index, node in enumerate(model.graph.node):
        if node.op_type == "LayerNormalization":
            while len(node.output) < 3:
                node.output.append(f"layer_norm_{index}_saved_{len(node.output)}")


def build_artifacts(model_path, directory):
    model = onnx.load(model_path)
    name_saved_statistics(model)
    if len(model.graph.output[0].type.tensor_type.shape.dim) == 3:
        flatten_sequence_logits(model)
    # Batch norm's running averages are state, not trainable parameters.
    running = {name for node in model.graph.node if node.op_type == "BatchNormalization"
               for name in node.input[3:5]}
    params = [init.name for init in model.graph.initializer
              if init.data_type == onnx.TensorProto.FLOAT and init.name not in running]
    artifacts.generate_artifacts(model, requires_grad=params,
                                 frozen_params=sorted(running & {i.name for i in model.graph.initializer}),
                                 loss=artifacts.LossType.CrossEntropyLoss,
                                 optimizer=artifacts.OptimType.AdamW,
                                 artifact_directory=directory)


def main():
    parser = steprate.parser(__doc__)
    parser.add_argument("onnx", help="the model's ONNX export (as our rows compile it)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as directory:
        build_artifacts(args.onnx, directory)
        state = CheckpointState.load_checkpoint(os.path.join(directory, "checkpoint"))
        # No eval model: ORT's, generated from a training-mode batch norm,
        # fails its own shape inference; the benchmark only trains.
        module = Module(os.path.join(directory, "training_model.onnx"), state)
        optimizer = Optimizer(os.path.join(directory, "optimizer_model.onnx"), module)
        optimizer.set_learning_rate(1e-3)
        module.train()
        rng = np.random.default_rng(0)
        shape, classes = steprate.INPUT_SHAPES[args.model], steprate.CLASSES[args.model]
        if args.model == "causal_lm":  # tokens and their next-token labels, flattened
            images = rng.integers(0, classes, (args.batch, *shape), dtype=np.int64)
            labels = rng.integers(0, classes, images.size, dtype=np.int64)
        else:
            images = rng.random((args.batch, *shape), dtype=np.float32)
            labels = rng.integers(0, classes, args.batch, dtype=np.int64)

        def step():
            module(images, labels)
            optimizer.step()
            module.lazy_reset_grad()

        rate = steprate.median_samples_per_s(step, args)
    print(json.dumps({"samples_per_s": rate, "onnxruntime": onnxruntime.__version__}))


if __name__ == "__main__":
    main()
