"""Gradients of the compiled training step equal PyTorch's.

Two models are exported by PyTorch, compiled with optimizer=none (the step
returns the loss and every parameter's gradient), run once by amp-run on a
random batch, and compared with torch.autograd on the same weights and
batch: relative error at most 1e-5 in FP32.
- the Fashion-MNIST MLP with loss=cross-entropy;
- a model whose loss is computed in the graph (loss=output:loss) from
  Softmax, Exp, Div by a scalar parameter, ReduceSum and Log;
- an MLP with Tanh, Sigmoid and LeakyRelu (alpha 0.2 and the default 0.01)
  activations and loss=cross-entropy; one with Clip between trainable
  bounds, ReLU6, an elementwise Max with a broadcast parameter and a Min
  with a constant;
- convolutional nets: 2-D convs with stride 2 and pad 1 (with bias),
  dilation 2 with 2 groups, and depthwise; a 1-D conv; convs whose filter
  taps partly read only padding; global average
  pooling; max and average pooling with overlapping windows and with
  ceil_mode; average pooling that counts its (asymmetric) padding;
- batch normalization in training mode (2-D after a conv, 1-D after a
  linear layer) and a ResNet: torchvision's basic blocks, one with a
  strided 1x1 downsampling conv and its batch norm. The running averages
  after the step are checked too, against ONNX's rule (population
  variance; PyTorch's own running variance uses the unbiased one), and
  the evaluation program's logits against PyTorch's eval mode;
- constant padding and concatenation (written in MLIR: PyTorch exports
  F.pad through a shape subgraph);
- training-mode dropout, against PyTorch applying our counter-based mask
  (recomputed here in numpy from its definition).
"""
import os

import numpy as np
import torch

from common import (Checker, compile_and_step, compile_model, mlp, parse_args, relative_error,
                    run, workdir)

BATCH = 64


class LogSumModel(torch.nn.Module):
    """loss = sum(log(sum(exp(softmax(x W^T + b)) / scale, axis 1)))."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(3)
        self.fc = torch.nn.Linear(8, 5)
        self.scale = torch.nn.Parameter(torch.tensor(2.0))

    def forward(self, x):
        p = torch.softmax(self.fc(x), dim=-1)
        return torch.log((torch.exp(p) / self.scale).sum(dim=1)).sum()


class ActivationsModel(torch.nn.Module):
    """leaky_relu(sigmoid(tanh(x W1^T + b1) W2^T + b2) W3^T + b3, 0.2), then
    a default leaky_relu (alpha 0.01) into the logits."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(4)
        self.fc1 = torch.nn.Linear(12, 16)
        self.fc2 = torch.nn.Linear(16, 16)
        self.fc3 = torch.nn.Linear(16, 10)

    def forward(self, x):
        h = torch.sigmoid(self.fc2(torch.tanh(self.fc1(x))))
        return torch.nn.functional.leaky_relu(
            torch.nn.functional.leaky_relu(self.fc3(h), 0.2))


class ClipModel(torch.nn.Module):
    """linear -> clamp between trainable bounds (ONNX Clip) -> linear ->
    relu6 (Clip with float64 constants through Cast) -> max with a broadcast
    parameter and min with a constant (ONNX Max, Min)."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(11)
        self.fc1 = torch.nn.Linear(12, 16)
        self.fc2 = torch.nn.Linear(16, 10)
        self.low = torch.nn.Parameter(torch.tensor(-0.5))
        self.high = torch.nn.Parameter(torch.tensor(1.5))
        self.floor = torch.nn.Parameter(torch.randn(10) * 0.3)

    def forward(self, x):
        h = self.fc2(torch.clamp(self.fc1(x) * 3, self.low, self.high))
        h = torch.nn.functional.relu6(h * 8) / 8
        return torch.minimum(torch.maximum(h, self.floor), torch.tensor(0.5))


class ConvModel(torch.nn.Module):
    """conv(stride 2, pad 1, bias) -> conv(dilation 2, 2 groups) -> depthwise
    conv (pad 1) -> linear, relu between."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(5)
        self.c1 = torch.nn.Conv2d(3, 8, 3, stride=2, padding=1)
        self.c2 = torch.nn.Conv2d(8, 8, 3, dilation=2, groups=2, bias=False)
        self.c3 = torch.nn.Conv2d(8, 8, 3, padding=1, groups=8)
        self.fc = torch.nn.Linear(8 * 4 * 4, 10)

    def forward(self, x):
        h = torch.relu(self.c2(torch.relu(self.c1(x))))
        return self.fc(torch.relu(self.c3(h)).flatten(1))


class Conv1dModel(torch.nn.Module):
    """conv1d(stride 2, pad 1) -> relu -> linear."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(6)
        self.c = torch.nn.Conv1d(4, 6, 3, stride=2, padding=1)
        self.fc = torch.nn.Linear(6 * 8, 10)

    def forward(self, x):
        return self.fc(torch.relu(self.c(x)).flatten(1))


class DeadTapModel(torch.nn.Module):
    """Convolutions with filter taps that only ever read padding (the CPU
    runs them on the live taps): 3x3 stride 2 pad 1 on a 2x2 map (the first
    row and column are dead), then 3x3 pad 1 with bias on the 1x1 result
    (only the centre is live, as in ResNet-18's last stage at 32x32), and a
    1-D conv, kernel 11, pad 5, on a length-5 signal (one dead tap at each
    end). The dead taps' gradients must be zeros. The first two filter
    gradients take the GEMM path of small maps, the third oneDNN's."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(11)
        self.c1 = torch.nn.Conv2d(3, 8, 3, stride=2, padding=1, bias=False)
        self.c2 = torch.nn.Conv2d(8, 8, 3, padding=1)
        self.c3 = torch.nn.Conv1d(8, 4, 11, padding=5)
        self.fc = torch.nn.Linear(4 * 5, 10)

    def forward(self, x):
        h = torch.relu(self.c2(torch.relu(self.c1(x))))  # [N, 8, 1, 1]
        h = h.reshape(-1, 8, 1)
        h = torch.cat([h, -h, h * 2, h * 0.5, h * -3], 2)  # [N, 8, 5]
        return self.fc(torch.relu(self.c3(h)).reshape(-1, 20))


class GlobalPoolModel(torch.nn.Module):
    """conv(pad 1) -> relu -> global average pool -> linear."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(8)
        self.c = torch.nn.Conv2d(3, 8, 3, padding=1)
        self.fc = torch.nn.Linear(8, 10)

    def forward(self, x):
        pooled = torch.nn.functional.adaptive_avg_pool2d(torch.relu(self.c(x)), 1)
        return self.fc(pooled.flatten(1))


class MaxPoolModel(torch.nn.Module):
    """conv -> relu -> max pool (3x3, stride 2, pad 1: overlapping windows)
    -> max pool (2x2, stride 2, ceil_mode) -> linear."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(9)
        self.c = torch.nn.Conv2d(3, 4, 3, padding=1)
        self.fc = torch.nn.Linear(4 * 3 * 3, 10)

    def forward(self, x):
        h = torch.nn.functional.max_pool2d(torch.relu(self.c(x)), 3, stride=2, padding=1)
        h = torch.nn.functional.max_pool2d(h, 2, stride=2, ceil_mode=True)
        return self.fc(h.flatten(1))


class AvgPoolModel(torch.nn.Module):
    """conv -> avg pool (3x3, stride 2, pad 1) -> avg pool (2x2, stride 2,
    ceil_mode) -> linear, padding not counted. (PyTorch exports a counted
    padding as a Pad node; the ONNX node tests cover count_include_pad.)"""

    def __init__(self):
        super().__init__()
        torch.manual_seed(10)
        self.c = torch.nn.Conv2d(3, 4, 3, padding=1)
        self.fc = torch.nn.Linear(4 * 3 * 3, 10)

    def forward(self, x):
        h = torch.nn.functional.avg_pool2d(self.c(x), 3, stride=2, padding=1,
                                           count_include_pad=False)
        h = torch.nn.functional.avg_pool2d(h, 2, stride=2, ceil_mode=True,
                                           count_include_pad=False)
        return self.fc(h.flatten(1))


class BatchNormModel(torch.nn.Module):
    """conv -> BatchNorm2d -> relu -> linear -> BatchNorm1d -> relu -> linear,
    with non-trivial affine parameters and running averages."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(5)
        # No bias before a batch norm: it cancels (its gradient is 0 up to
        # rounding, which a relative error cannot judge).
        self.conv = torch.nn.Conv2d(3, 6, 3, padding=1, bias=False)
        self.bn2d = torch.nn.BatchNorm2d(6)
        self.fc1 = torch.nn.Linear(6 * 8 * 8, 16, bias=False)
        self.bn1d = torch.nn.BatchNorm1d(16)
        self.fc2 = torch.nn.Linear(16, 10)
        randomize_batch_norms(self)

    def forward(self, x):
        h = torch.relu(self.bn2d(self.conv(x)))
        return self.fc2(torch.relu(self.bn1d(self.fc1(h.flatten(1)))))


class ResNetModel(torch.nn.Module):
    """A small ResNet from torchvision's BasicBlock: stem conv + BN + relu,
    one identity block, one strided block with a 1x1 conv + BN downsample,
    global average pooling, linear."""

    def __init__(self):
        super().__init__()
        from torchvision.models.resnet import BasicBlock
        torch.manual_seed(6)
        self.stem = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, padding=1, bias=False),
                                        torch.nn.BatchNorm2d(8), torch.nn.ReLU())
        downsample = torch.nn.Sequential(torch.nn.Conv2d(8, 16, 1, stride=2, bias=False),
                                         torch.nn.BatchNorm2d(16))
        self.blocks = torch.nn.Sequential(BasicBlock(8, 8), BasicBlock(8, 16, 2, downsample))
        self.fc = torch.nn.Linear(16, 10)
        randomize_batch_norms(self)

    def forward(self, x):
        h = self.blocks(self.stem(x))
        return self.fc(torch.nn.functional.adaptive_avg_pool2d(h, 1).flatten(1))


def randomize_batch_norms(model):
    """Scale, shift and running averages away from their initial 1 and 0."""
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.3, 0.3)
                m.running_mean.uniform_(-0.1, 0.1)
                m.running_var.uniform_(0.8, 1.2)


def expected_running_stats(model, images):
    """The running averages after one training step by ONNX's rule:
    running * momentum + batch statistic * (1 - momentum), where ONNX's
    momentum is 1 - PyTorch's and the variance is the population one."""
    inputs, expected = {}, {}
    hooks = [m.register_forward_hook(lambda m, args, out: inputs.__setitem__(m, args[0]))
             for m in model.modules()
             if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    old = {name: buf.clone() for name, buf in model.named_buffers()}
    with torch.no_grad():
        model(torch.from_numpy(images))
    for h in hooks:
        h.remove()
    for name, m in model.named_modules():
        if m not in inputs:
            continue
        x = inputs[m].transpose(0, 1).reshape(inputs[m].shape[1], -1).double()
        for stat, batch in (("running_mean", x.mean(1)), ("running_var", x.var(1, unbiased=False))):
            key = f"{name}.{stat}"
            expected[key] = (old[key].double() * (1 - m.momentum) + batch * m.momentum).numpy()
    # Put the buffers back: the gradient reference runs from the same state.
    with torch.no_grad():
        for name, buf in model.named_buffers():
            buf.copy_(old[name])
    return expected


def exporter(shape):
    def export(model, path):
        torch.onnx.export(model, torch.zeros(*shape), path, opset_version=17,
                          training=torch.onnx.TrainingMode.TRAINING,
                          do_constant_folding=False, input_names=["input"],
                          output_names=["logits"])
    return export


def check_conv(args, checker):
    rng = np.random.default_rng(7)
    images = rng.standard_normal((16, 3, 16, 16)).astype(np.float32)
    check_cross_entropy(args, checker, "conv2d", ConvModel(), images, exporter(images.shape))
    signals = rng.standard_normal((16, 4, 16)).astype(np.float32)
    check_cross_entropy(args, checker, "conv1d", Conv1dModel(), signals,
                        exporter(signals.shape))
    # 8x8: the bias gradient sums 1024 terms of both signs; float32 sums in
    # two orders (ours, PyTorch's) differ by about 1e-6 of that.
    small = rng.standard_normal((16, 3, 8, 8)).astype(np.float32)
    check_cross_entropy(args, checker, "global-pool", GlobalPoolModel(), small,
                        exporter(small.shape))
    tiny = rng.standard_normal((16, 3, 2, 2)).astype(np.float32)
    check_cross_entropy(args, checker, "dead-taps", DeadTapModel(), tiny, exporter(tiny.shape))
    odd = rng.standard_normal((16, 3, 9, 9)).astype(np.float32)  # 9 -> 5 -> 3 (ceil)
    check_cross_entropy(args, checker, "max-pool", MaxPoolModel(), odd, exporter(odd.shape))
    check_cross_entropy(args, checker, "avg-pool", AvgPoolModel(), odd, exporter(odd.shape))


def check_batch_norm(args, checker):
    rng = np.random.default_rng(8)
    images = rng.standard_normal((16, 3, 8, 8)).astype(np.float32)
    for label, model in (("batch-norm", BatchNormModel()), ("resnet", ResNetModel())):
        model.train()
        check_cross_entropy(args, checker, label, model, images, exporter(images.shape),
                            lambda: expected_running_stats(model, images))
        check_evaluation(args, checker, label, model, images)


def check_evaluation(args, checker, label, model, images):
    """The plan's evaluation program normalizes with the running averages:
    its logits equal PyTorch's in eval mode."""
    with workdir() as tmp:
        onnx_path, plan = os.path.join(tmp, "model.onnx"), os.path.join(tmp, "model.ampplan")
        exporter(images.shape)(model, onnx_path)  # traced in training mode: buffers as exported
        compile_model(args.bin, onnx_path, plan,
                      f"precision=fp32 loss=cross-entropy batch={images.shape[0]}")
        np.save(os.path.join(tmp, "images.npy"), images)
        run([os.path.join(args.bin, "amp-run"), "forward", plan,
             "--feed", f"input={tmp}/images.npy", "--dump", tmp])
        ours = np.load(os.path.join(tmp, "logits.npy"))
    model.eval()
    with torch.no_grad():
        reference = model(torch.from_numpy(images)).numpy()
    model.train()
    checker.check(f"{label} eval-mode logits", relative_error(ours, reference), 1e-5)


def mlir_step_gradients(args, mlir, labels, params):
    """Compiles a @forward written in MLIR (optimizer=none), runs one step on
    `labels` and returns the gradients of `params`."""
    with workdir() as tmp:
        source, plan = os.path.join(tmp, "step.mlir"), os.path.join(tmp, "step.ampplan")
        with open(source, "w") as f:
            f.write(mlir)
        compile_model(args.bin, source, plan, "optimizer=none")
        np.save(os.path.join(tmp, "labels.npy"), labels)
        run([os.path.join(args.bin, "amp-run"), "step", plan,
             "--feed", f"labels={tmp}/labels.npy", "--dump", tmp])
        return [np.load(os.path.join(tmp, f"{name}.grad.npy")) for name in params]


def check_counted_padding(args, checker):
    """avg_pool with count_include_pad and asymmetric pads (which PyTorch
    exports as a Pad node, so the step is written in MLIR here): the
    gradient of a parameter pooled straight into the logits."""
    w = np.random.default_rng(3).standard_normal((2, 3, 5, 5)).astype(np.float32)
    labels = np.array([3, 7], dtype=np.int64)
    values = ", ".join(f"{v:.9e}" for v in w.ravel())
    pool = ('{kernel = array<i64: 3, 3>, strides = array<i64: 2, 2>, '
            'pads = array<i64: 1, 1, 0, 0>, count_include_pad}')
    mlir = (f'func.func @forward(%w: tensor<2x3x5x5xf32> {{amp.param = "w", amp.init = '
            f'dense<[{values}]> : tensor<150xf32>}}) -> (tensor<2x12xf32> '
            f'{{amp.output = "logits"}}) {{\n'
            f'  %0 = amp.avg_pool %w {pool} : tensor<2x3x5x5xf32> -> tensor<2x3x2x2xf32>\n'
            f'  %1 = amp.reshape %0 : tensor<2x3x2x2xf32> -> tensor<2x12xf32>\n'
            f'  return %1 : tensor<2x12xf32>\n}}\n')
    ours = mlir_step_gradients(args, mlir, labels, ["w"])[0].reshape(w.shape)
    t = torch.tensor(w, requires_grad=True)
    # Zero padding counted as inputs = PyTorch's count_include_pad on a padded tensor.
    pooled = torch.nn.functional.avg_pool2d(torch.nn.functional.pad(t, (1, 0, 1, 0)), 3,
                                            stride=2, count_include_pad=True)
    torch.nn.functional.cross_entropy(pooled.reshape(2, 12), torch.from_numpy(labels)).backward()
    checker.check("counted-padding avg_pool grad", relative_error(ours, t.grad.numpy()), 1e-5)


class DropoutModel(torch.nn.Module):
    """linear -> relu -> dropout(0.3) -> linear; the reference applies our
    mask (dropout_mask) where PyTorch would draw its own."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(12)
        self.fc1 = torch.nn.Linear(12, 32)
        self.drop = torch.nn.Dropout(0.3)
        self.fc2 = torch.nn.Linear(32, 10)
        self.mask = None

    def forward(self, x):
        h = torch.relu(self.fc1(x))
        h = self.drop(h) if self.mask is None else h * self.mask / 0.7
        return self.fc2(h)


def dropout_mask(seed, counter, shape, ratio):
    """KernelMath.h's dropoutKeeps, independently in numpy: element i is kept
    when the top 32 bits of splitmix64(seed ^ counter * C1 ^ i * C2) are at
    least ratio * 2^32."""
    with np.errstate(over="ignore"):
        i = np.arange(int(np.prod(shape)), dtype=np.uint64)
        z = np.uint64(seed) ^ (np.uint64(counter) * np.uint64(0x9E3779B97F4A7C15)) ^ \
            (i * np.uint64(0xD1B54A32D192ED03))
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        z ^= z >> np.uint64(31)
    return ((z >> np.uint64(32)) >= np.uint64(int(ratio * 2**32))).reshape(shape)


def check_dropout(args, checker):
    """Training-mode dropout: the loss and gradients of a step against
    PyTorch's with our mask (the seed is the FNV-1a hash of the node's name,
    the counter 0 on the first step), and the counter advanced by the step."""
    import onnx
    model = DropoutModel()
    images = np.random.default_rng(6).standard_normal((BATCH, 12)).astype(np.float32)
    labels = np.random.default_rng(1).integers(0, 10, BATCH, dtype=np.int64)
    with workdir() as tmp:
        onnx_path, plan = os.path.join(tmp, "model.onnx"), os.path.join(tmp, "model.ampplan")
        exporter(images.shape)(model, onnx_path)
        name = next(n.name for n in onnx.load(onnx_path).graph.node if n.op_type == "Dropout")
        compile_model(args.bin, onnx_path, plan,
                      f"precision=fp32 loss=cross-entropy optimizer=none batch={BATCH}")
        np.save(os.path.join(tmp, "images.npy"), images)
        np.save(os.path.join(tmp, "labels.npy"), labels)
        run([os.path.join(args.bin, "amp-run"), "step", plan, "--feed",
             f"input={tmp}/images.npy", "--feed", f"labels={tmp}/labels.npy", "--dump", tmp])
        ours = {n: np.load(os.path.join(tmp, f"{n}.grad.npy")) for n, _ in model.named_parameters()}
        our_loss = float(np.load(os.path.join(tmp, "loss.npy")))
        counter = int(np.load(os.path.join(tmp, "dropout.counter.npy")))
    seed = 2166136261
    for c in name.encode():
        seed = ((seed ^ c) * 16777619) % 2**32
    mask = dropout_mask(seed, 0, (BATCH, 32), 0.3)
    model.mask = torch.from_numpy(mask.astype(np.float32))
    loss = torch.nn.functional.cross_entropy(model(torch.from_numpy(images)),
                                             torch.from_numpy(labels))
    loss.backward()
    print(f"dropout kept {mask.mean():.3f} of the activations (1 - ratio = 0.7); "
          f"counter after one step: {counter}")
    checker.check("dropout loss", relative_error(our_loss, loss.item()), 1e-5)
    for n, param in model.named_parameters():
        checker.check(f"dropout grad {n}", relative_error(ours[n], param.grad.numpy()), 1e-5)
    checker.check("dropout counter advanced to 1", abs(counter - 1), 0)


def check_pad_concat(args, checker):
    """pad (asymmetric, value 0.5) and concat along the channels, squared
    into the logits, written in MLIR (PyTorch exports F.pad through a shape
    subgraph): the two parameters' gradients against PyTorch's."""
    rng = np.random.default_rng(4)
    w1 = rng.standard_normal((2, 3, 4, 5)).astype(np.float32)
    w2 = rng.standard_normal((2, 2, 5, 7)).astype(np.float32)
    labels = np.array([3, 170], dtype=np.int64)

    def init(w):
        return ", ".join(f"{v:.9e}" for v in w.ravel())
    mlir = (f'func.func @forward(%w1: tensor<2x3x4x5xf32> {{amp.param = "w1", amp.init = '
            f'dense<[{init(w1)}]> : tensor<120xf32>}}, %w2: tensor<2x2x5x7xf32> '
            f'{{amp.param = "w2", amp.init = dense<[{init(w2)}]> : tensor<140xf32>}}) -> '
            f'(tensor<2x175xf32> {{amp.output = "logits"}}) {{\n'
            f'  %p = amp.pad %w1 {{pads = array<i64: 0, 0, 1, 0, 0, 0, 0, 2>, value = 0.5 : f32}}'
            f' : tensor<2x3x4x5xf32> -> tensor<2x3x5x7xf32>\n'
            f'  %c = amp.concat %p, %w2 {{axis = 1 : i64}} : (tensor<2x3x5x7xf32>, '
            f'tensor<2x2x5x7xf32>) -> tensor<2x5x5x7xf32>\n'
            f'  %s = amp.mul %c, %c : (tensor<2x5x5x7xf32>, tensor<2x5x5x7xf32>) -> '
            f'tensor<2x5x5x7xf32>\n'
            f'  %r = amp.reshape %s : tensor<2x5x5x7xf32> -> tensor<2x175xf32>\n'
            f'  return %r : tensor<2x175xf32>\n}}\n')
    ours = mlir_step_gradients(args, mlir, labels, ["w1", "w2"])
    t1, t2 = (torch.tensor(w, requires_grad=True) for w in (w1, w2))
    c = torch.cat([torch.nn.functional.pad(t1, (0, 2, 1, 0), value=0.5), t2], dim=1)
    torch.nn.functional.cross_entropy((c * c).reshape(2, 175),
                                      torch.from_numpy(labels)).backward()
    checker.check("pad-concat grad w1", relative_error(ours[0], t1.grad.numpy()), 1e-5)
    checker.check("pad-concat grad w2", relative_error(ours[1], t2.grad.numpy()), 1e-5)


def step_gradients(dump, model):
    """The parameter gradients (name -> array) and the loss a step dumped."""
    grads = {name: np.load(os.path.join(dump, f"{name}.grad.npy"))
             for name, _ in model.named_parameters()}
    return grads, float(np.load(os.path.join(dump, "loss.npy")))


def check_against_torch(checker, label, our_loss, our_grads, loss, model):
    """Our loss and gradients against PyTorch's `loss` (after its backward)."""
    checker.check(f"{label} loss", relative_error(our_loss, loss.item()), 1e-5)
    for name, param in model.named_parameters():
        checker.check(f"{label} grad {name}", relative_error(our_grads[name], param.grad.numpy()),
                      1e-5)


def check_cross_entropy(args, checker, label, model, images, export, states=None):
    """Our loss and parameter gradients against torch.autograd's, and, if
    `states` is given, the step state it returns (name -> value after the
    step; called after the export, whose tracing runs the model once)."""
    labels = np.random.default_rng(1).integers(0, 10, images.shape[0], dtype=np.int64)
    with workdir() as tmp:
        onnx_path = os.path.join(tmp, "model.onnx")
        export(model, onnx_path)
        states = states() if states else {}
        dump, _ = compile_and_step(
            args.bin, tmp, onnx_path,
            f"precision=fp32 loss=cross-entropy optimizer=none batch={images.shape[0]}",
            {"input": images, "labels": labels}, "fp32")
        ours, our_loss = step_gradients(dump, model)
        our_states = {name: np.load(os.path.join(dump, f"{name}.npy")) for name in states}

    for name, value in states.items():
        checker.check(f"{label} {name}", relative_error(our_states[name], value), 1e-5)
    loss = torch.nn.functional.cross_entropy(model(torch.from_numpy(images)),
                                             torch.from_numpy(labels))
    loss.backward()
    check_against_torch(checker, label, our_loss, ours, loss, model)


def check_mlp(args, checker):
    images = np.random.default_rng(1).random((BATCH, 1, 28, 28), dtype=np.float32)
    check_cross_entropy(args, checker, "mlp", mlp.make_mlp(seed=0), images, mlp.export)


def check_activations(args, checker):
    model = ActivationsModel()
    images = np.random.default_rng(2).standard_normal((BATCH, 12)).astype(np.float32)

    def export(model, path):
        torch.onnx.export(model, torch.zeros(BATCH, 12), path, opset_version=17,
                          training=torch.onnx.TrainingMode.TRAINING,
                          do_constant_folding=False, input_names=["input"],
                          output_names=["logits"])

    check_cross_entropy(args, checker, "activations", model, images, export)
    check_cross_entropy(args, checker, "clip-max-min", ClipModel(), images, export)


def check_log_sum(args, checker):
    model = LogSumModel()
    x = np.random.default_rng(5).standard_normal((16, 8)).astype(np.float32)
    with workdir() as tmp:
        onnx_path = os.path.join(tmp, "logsum.onnx")
        torch.onnx.export(model, torch.from_numpy(x), onnx_path, opset_version=17,
                          training=torch.onnx.TrainingMode.TRAINING, do_constant_folding=False,
                          input_names=["x"], output_names=["loss"])
        dump, _ = compile_and_step(args.bin, tmp, onnx_path, "loss=output:loss optimizer=none",
                                   {"x": x}, "fp32")
        ours, our_loss = step_gradients(dump, model)
    loss = model(torch.from_numpy(x))
    loss.backward()
    check_against_torch(checker, "log-sum", our_loss, ours, loss, model)


def main():
    args = parse_args(__doc__)
    checker = Checker()
    check_mlp(args, checker)
    check_log_sum(args, checker)
    check_activations(args, checker)
    check_conv(args, checker)
    check_batch_norm(args, checker)
    check_counted_padding(args, checker)
    check_pad_concat(args, checker)
    check_dropout(args, checker)
    checker.finish()


if __name__ == "__main__":
    main()
