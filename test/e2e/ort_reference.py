"""onnxruntime-training's side of test_ort_artifacts.py, run by that test
under the python of its venv (onnxruntime-training from PyPI).

  ort_reference.py artifacts MODEL.onnx FOLDER [--optimizer adamw|sgd]
      generate_artifacts of the exported model: cross-entropy loss, every
      float initializer trainable except batch norm's running averages.
  ort_reference.py train FOLDER INPUTS.npy LABELS.npy STEPS BATCH OUT.npy
                   [--checkpoint FILE] [--first N]
      ORT's own training API on consecutive batches (lr 1e-3), from the
      folder's checkpoint or FILE, starting at batch N: the loss of every
      step, saved to OUT.npy.
  ort_reference.py eval MODEL.onnx INPUTS.npy LABELS.npy
      onnxruntime's inference session on an eval model: prints its loss.
"""
import argparse
import os

import numpy as np
import onnx
from onnxruntime.training import artifacts
from onnxruntime.training.api import CheckpointState, Module, Optimizer


def generate(model_path, folder, optimizer):
    model = onnx.load(model_path)
    running = {name for node in model.graph.node if node.op_type == "BatchNormalization"
               for name in node.input[3:5]}
    params = [init.name for init in model.graph.initializer
              if init.data_type == onnx.TensorProto.FLOAT and init.name not in running]
    os.makedirs(folder, exist_ok=True)
    artifacts.generate_artifacts(
        model, requires_grad=params,
        frozen_params=sorted(running & {init.name for init in model.graph.initializer}),
        loss=artifacts.LossType.CrossEntropyLoss,
        optimizer={"adamw": artifacts.OptimType.AdamW, "sgd": artifacts.OptimType.SGD}[optimizer],
        artifact_directory=folder)


def train(folder, inputs, labels, steps, batch, checkpoint, first):
    state = CheckpointState.load_checkpoint(checkpoint or os.path.join(folder, "checkpoint"))
    module = Module(os.path.join(folder, "training_model.onnx"), state)
    optimizer = Optimizer(os.path.join(folder, "optimizer_model.onnx"), module)
    optimizer.set_learning_rate(1e-3)
    module.train()
    losses = []
    for step in range(first, first + steps):
        rows = slice(step * batch, (step + 1) * batch)
        losses.append(float(module(inputs[rows], labels[rows])))
        optimizer.step()
        module.lazy_reset_grad()
    return np.array(losses)


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    make = commands.add_parser("artifacts")
    make.add_argument("model")
    make.add_argument("folder")
    make.add_argument("--optimizer", default="adamw")
    fit = commands.add_parser("train")
    for name in ("folder", "inputs", "labels"):
        fit.add_argument(name)
    fit.add_argument("steps", type=int)
    fit.add_argument("batch", type=int)
    fit.add_argument("out")
    fit.add_argument("--checkpoint")
    fit.add_argument("--first", type=int, default=0)
    evaluate = commands.add_parser("eval")
    for name in ("model", "inputs", "labels"):
        evaluate.add_argument(name)
    args = parser.parse_args()
    if args.command == "artifacts":
        generate(args.model, args.folder, args.optimizer)
    elif args.command == "eval":
        import onnxruntime
        session = onnxruntime.InferenceSession(args.model, providers=["CPUExecutionProvider"])
        loss = session.run(None, {"input": np.load(args.inputs), "labels": np.load(args.labels)})
        print(float(loss[0]))
    else:
        np.save(args.out, train(args.folder, np.load(args.inputs), np.load(args.labels),
                                args.steps, args.batch, args.checkpoint, args.first))


if __name__ == "__main__":
    main()
