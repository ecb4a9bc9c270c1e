"""Small ONNX models for the importer's lit tests, built with onnx.helper.

usage: onnx_models.py NAME OUTPUT.onnx
Values are deterministic so FileCheck can match them.
"""
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

FLOAT = TensorProto.FLOAT
INT64 = TensorProto.INT64


def tensor(name, shape, start=0.0):
    values = (np.arange(np.prod(shape), dtype=np.float32) * 0.25 + start).reshape(shape)
    return numpy_helper.from_array(values, name)


def ints(name, values):
    return numpy_helper.from_array(np.array(values, dtype=np.int64), name)


def model(nodes, inputs, outputs, initializers=(), opset=17):
    graph = helper.make_graph(nodes, "test", inputs, outputs, list(initializers))
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])


def value(name, elem, shape):
    return helper.make_tensor_value_info(name, elem, shape)


def gemm():
    return model(
        [helper.make_node("Gemm", ["x", "w", "b"], ["y"], name="fc", transB=1)],
        [value("x", FLOAT, ["batch", 4])],
        [value("y", FLOAT, ["batch", 3])],
        [tensor("w", [3, 4]), tensor("b", [3])])


def gemm_alpha_beta():
    return model(
        [helper.make_node("Gemm", ["x", "w", "b"], ["y"], name="scaled", transA=1,
                          alpha=0.5, beta=2.0)],
        [value("x", FLOAT, [4, 2])],
        [value("y", FLOAT, [2, 3])],
        [tensor("w", [4, 3]), tensor("b", [1, 3])])


def elementwise():
    return model(
        [helper.make_node("MatMul", ["x", "w"], ["h"], name="mm"),
         helper.make_node("Add", ["h", "b"], ["a"], name="add"),
         helper.make_node("Sub", ["a", "x2"], ["s"], name="sub"),
         helper.make_node("Mul", ["s", "scale"], ["m"], name="mul"),
         helper.make_node("Relu", ["m"], ["r"], name="relu"),
         helper.make_node("Identity", ["r"], ["y"], name="id")],
        [value("x", FLOAT, [2, 4]), value("x2", FLOAT, [2, 1])],
        [value("y", FLOAT, [2, 3])],
        [tensor("w", [4, 3]), tensor("b", [3]), tensor("scale", [])])


def activations():
    return model(
        [helper.make_node("Tanh", ["x"], ["t"], name="tanh"),
         helper.make_node("Sigmoid", ["t"], ["s"], name="sigmoid"),
         helper.make_node("LeakyRelu", ["s"], ["l"], name="leaky", alpha=0.2),
         helper.make_node("LeakyRelu", ["l"], ["y"], name="leaky_default")],
        [value("x", FLOAT, [2, 3])],
        [value("y", FLOAT, [2, 3])])


def conv():
    # stride 2 with pad 1 and a bias; dilation 2 with 2 groups; SAME_UPPER;
    # flattened into [N, C] logits, so it trains with cross-entropy.
    return model(
        [helper.make_node("Conv", ["x", "w1", "b1"], ["c1"], name="conv1", strides=[2, 2],
                          pads=[1, 1, 1, 1]),
         helper.make_node("Conv", ["c1", "w2"], ["c2"], name="conv2", dilations=[2, 2], group=2),
         helper.make_node("Conv", ["c2", "w3"], ["c3"], name="conv3", auto_pad="SAME_UPPER",
                          strides=[2, 2]),
         helper.make_node("Flatten", ["c3"], ["y"], name="flat")],
        [value("x", FLOAT, [2, 3, 9, 9])],
        [value("y", FLOAT, [2, 16])],
        [tensor("w1", [4, 3, 3, 3]), tensor("b1", [4]), tensor("w2", [4, 2, 2, 2]),
         tensor("w3", [4, 4, 2, 2])])


def conv_group_mismatch():
    return model(
        [helper.make_node("Conv", ["x", "w"], ["y"], name="conv", group=2)],
        [value("x", FLOAT, [1, 3, 4, 4])],
        [value("y", FLOAT, [1, 4, 2, 2])],
        [tensor("w", [4, 3, 3, 3])])


def batch_norm():
    """Training mode (running averages are initializers: step state) on a
    conv's output, then inference mode (training_mode 0) on [N, C]."""
    return model(
        [helper.make_node("BatchNormalization", ["x", "s1", "b1", "m1", "v1"],
                          ["y1", "m1_new", "v1_new"], name="bn1", training_mode=1,
                          momentum=0.8),
         helper.make_node("Flatten", ["y1"], ["f"], name="flat"),
         helper.make_node("BatchNormalization", ["f", "s2", "b2", "m2", "v2"], ["y"],
                          name="bn2", epsilon=1e-3)],
        [value("x", FLOAT, [2, 3, 1, 1])],
        [value("y", FLOAT, [2, 3])],
        [tensor("s1", [3], 1.0), tensor("b1", [3]), tensor("m1", [3]), tensor("v1", [3], 1.0),
         tensor("s2", [3], 1.0), tensor("b2", [3]), tensor("m2", [3]), tensor("v2", [3], 1.0)])


def batch_norm_f16_scale():
    return model(
        [helper.make_node("BatchNormalization", ["x", "s", "b", "m", "v"], ["y"], name="bn")],
        [value("x", TensorProto.FLOAT16, [2, 3])],
        [value("y", TensorProto.FLOAT16, [2, 3])],
        [numpy_helper.from_array(np.ones(3, np.float16), n) for n in "sbmv"])


def pad_concat():
    """Pad (constant value from a Constant node) and Concat on axis -1."""
    fill = numpy_helper.from_array(np.array(0.5, np.float32), "v")
    return model(
        [helper.make_node("Constant", [], ["v"], name="value", value=fill),
         helper.make_node("Pad", ["x", "pads", "v"], ["p"], name="pad"),
         helper.make_node("Concat", ["p", "x2"], ["y"], name="cat", axis=-1)],
        [value("x", FLOAT, [2, 3]), value("x2", FLOAT, [3, 2])],
        [value("y", FLOAT, [3, 6])],
        [ints("pads", [1, 0, 0, 1])])


def pad_reflect():
    return model(
        [helper.make_node("Pad", ["x", "pads"], ["y"], name="pad", mode="reflect")],
        [value("x", FLOAT, [2, 3])], [value("y", FLOAT, [2, 5])], [ints("pads", [0, 1, 0, 1])])


def pad_negative():
    return model(
        [helper.make_node("Pad", ["x", "pads"], ["y"], name="pad")],
        [value("x", FLOAT, [2, 3])], [value("y", FLOAT, [2, 2])], [ints("pads", [0, -1, 0, 0])])


def dropout_training():
    """Two training-mode dropouts (ratio and training_mode from Constant
    nodes, a mask output nobody reads), and one in eval mode."""
    ratio = numpy_helper.from_array(np.array(0.25, np.float32), "r")
    train = numpy_helper.from_array(np.array(True), "t")
    return model(
        [helper.make_node("Constant", [], ["r"], name="ratio", value=ratio),
         helper.make_node("Constant", [], ["t"], name="train", value=train),
         helper.make_node("Dropout", ["x", "r", "t"], ["d1", "unread"], name="drop1", seed=5),
         helper.make_node("Dropout", ["d1", "r", "t"], ["d2"], name="drop2"),
         helper.make_node("Dropout", ["d2", "r"], ["y"], name="eval")],
        [value("x", FLOAT, [2, 3])], [value("y", FLOAT, [2, 3])])


def dropout_mask():
    return model(
        [helper.make_node("Dropout", ["x"], ["y", "mask"], name="drop")],
        [value("x", FLOAT, [2, 3])], [value("y", FLOAT, [2, 3]),
                                      value("mask", TensorProto.BOOL, [2, 3])])


def mlp2():
    """Two layers with a relu between: the shape every GEMM epilogue takes."""
    return model(
        [helper.make_node("Gemm", ["x", "w1", "b1"], ["h"], name="fc1", transB=1),
         helper.make_node("Relu", ["h"], ["r"], name="act"),
         helper.make_node("Gemm", ["r", "w2", "b2"], ["y"], name="fc2", transB=1)],
        [value("x", FLOAT, ["batch", 4])],
        [value("y", FLOAT, ["batch", 3])],
        [tensor("w1", [8, 4]), tensor("b1", [8]), tensor("w2", [3, 8]), tensor("b2", [3])])


def flatten_reshape():
    shape_node = helper.make_node(
        "Constant", [], ["shape"], name="shape_const",
        value=numpy_helper.from_array(np.array([0, -1], dtype=np.int64)))
    return model(
        [helper.make_node("Flatten", ["x"], ["f"], name="flatten", axis=2),
         shape_node,
         helper.make_node("Reshape", ["f", "shape"], ["r"], name="reshape"),
         helper.make_node("Reshape", ["r", "target"], ["y"], name="reshape_init")],
        [value("x", FLOAT, ["batch", 2, 3, 4])],
        [value("y", FLOAT, ["batch", 24])],
        [ints("target", [-1, 24])])


def loss_output():
    return model(
        [helper.make_node("Gemm", ["x", "w"], ["logits"], name="fc", transB=1),
         helper.make_node("SoftmaxCrossEntropyLoss", ["logits", "labels"], ["loss"],
                          name="xent", reduction="mean")],
        [value("x", FLOAT, [8, 4]), value("labels", INT64, [8])],
        [value("loss", FLOAT, [])],
        [tensor("w", [3, 4])])


def loss_log_prob():
    """An eval model's loss with its log_prob output (onnxruntime-training
    writes these)."""
    return model(
        [helper.make_node("Gemm", ["x", "w"], ["logits"], name="fc", transB=1),
         helper.make_node("SoftmaxCrossEntropyLoss", ["logits", "labels"], ["loss", "log_prob"],
                          name="xent", reduction="sum")],
        [value("x", FLOAT, [8, 4]), value("labels", INT64, [8])],
        [value("loss", FLOAT, []), value("log_prob", FLOAT, [8, 3])],
        [tensor("w", [3, 4])])


def constant_param():
    return model(
        [helper.make_node("Constant", [], ["c"], name="two", value_float=2.0),
         helper.make_node("Mul", ["x", "c"], ["y"], name="double")],
        [value("x", FLOAT, [2, 2])],
        [value("y", FLOAT, [2, 2])])


# Malformed models: each must be refused with a message naming file, node, reason.

def unsupported_op():
    return model(
        [helper.make_node("Hardmax", ["x"], ["y"], name="act")],
        [value("x", FLOAT, [2, 2])],
        [value("y", FLOAT, [2, 2])])


def old_opset():
    m = gemm()
    m.opset_import[0].version = 10
    return m


def opset12_gemm():
    m = gemm()
    m.opset_import[0].version = 12
    return m


def new_opset():
    m = gemm()
    m.opset_import[0].version = 22
    return m


def new_ir_version():
    m = gemm()
    m.ir_version = 11
    return m


def newer_opsets():
    """Op set 21, IR 10: Gelu-20 (both forms), ReduceMean-18 (axes an input)
    and Split-18 (num_outputs, the last part the remainder)."""
    m = model(
        [helper.make_node("Gelu", ["x"], ["g"], name="exact"),
         helper.make_node("Gelu", ["g"], ["t"], name="tanh", approximate="tanh"),
         helper.make_node("ReduceMean", ["t", "axes"], ["m"], name="mean"),
         helper.make_node("Split", ["m"], ["a", "b", "c"], name="split", axis=1,
                          num_outputs=3)],
        [value("x", FLOAT, [2, 7])],
        [value("a", FLOAT, [1, 3]), value("b", FLOAT, [1, 3]), value("c", FLOAT, [1, 1])],
        [ints("axes", [0])], opset=21)
    m.ir_version = 10
    return m


def pad_axes():
    """Pad-18's axes input, which the importer does not read: refused."""
    return model(
        [helper.make_node("Pad", ["x", "pads", "", "axes"], ["y"], name="pad")],
        [value("x", FLOAT, [2, 3])], [value("y", FLOAT, [2, 5])],
        [ints("pads", [1, 1]), ints("axes", [1])], opset=18)


def average_pool_dilations():
    """AveragePool-19's dilations, which the importer does not read: refused."""
    return model(
        [helper.make_node("AveragePool", ["x"], ["y"], name="pool", kernel_shape=[2],
                          dilations=[2])],
        [value("x", FLOAT, [1, 1, 6])], [value("y", FLOAT, [1, 1, 4])], opset=19)


def pool_zero_stride():
    """MaxPool with auto_pad and a zero stride: divided by zero in the
    importer before it was refused."""
    return model(
        [helper.make_node("MaxPool", ["x"], ["y"], name="pool", kernel_shape=[3], strides=[0],
                          auto_pad="SAME_UPPER")],
        [value("x", FLOAT, [1, 1, 6])], [value("y", FLOAT, [1, 1, 6])])


def huge_window_pool(**attrs):
    """MaxPool with a window of 2^40 taps 2^40 apart: its span leaves int64
    (signed overflow in the importer before it was refused)."""
    return model(
        [helper.make_node("MaxPool", ["x"], ["y"], name="pool", kernel_shape=[2**40],
                          dilations=[2**40], **attrs)],
        [value("x", FLOAT, [1, 1, 6])], [value("y", FLOAT, [1, 1, 6])])


def pool_overflowing_window_pads():
    return huge_window_pool(pads=[0, 0])


def pool_overflowing_window_same():
    return huge_window_pool(auto_pad="SAME_UPPER")


def pool_same_pads_at_int64_max():
    """SAME_UPPER whose total padding, (out - 1) * stride + span - in, reaches
    int64's maximum before the last + 1 (signed overflow before it was
    refused)."""
    return model(
        [helper.make_node("MaxPool", ["x"], ["y"], name="pool", kernel_shape=[2**63 - 1],
                          auto_pad="SAME_UPPER")],
        [value("x", FLOAT, [1, 1, 2])], [value("y", FLOAT, [1, 1, 2])])


def gelu_bad_approximate():
    return model(
        [helper.make_node("Gelu", ["x"], ["y"], name="gelu", approximate="fast")],
        [value("x", FLOAT, [2, 3])], [value("y", FLOAT, [2, 3])], opset=20)


def reduce_mean_axes_attribute():
    """ReduceMean at op set 18 with op set 17's axes attribute: refused."""
    return model(
        [helper.make_node("ReduceMean", ["x"], ["y"], name="mean", axes=[1])],
        [value("x", FLOAT, [2, 3])], [value("y", FLOAT, [2, 1])], opset=18)


def split_without_parts():
    """Split-18 with neither sizes nor num_outputs: refused."""
    return model(
        [helper.make_node("Split", ["x"], ["a", "b"], name="split", axis=1)],
        [value("x", FLOAT, [2, 4])], [value("a", FLOAT, [2, 2]), value("b", FLOAT, [2, 2])],
        opset=18)


def missing_initializer():
    m = gemm()
    del m.graph.initializer[0]  # drops "w"
    return m


def negative_dim():
    m = gemm()
    m.graph.initializer[0].dims[1] = -4  # "w"
    return m


def overflowing_initializer():
    """A 2^62 x 4 initializer: the element count wraps to 0 in int64, so its
    empty data passed the size check and it imported as a tensor of 2^64."""
    w = TensorProto(name="w", data_type=FLOAT, dims=[1 << 62, 4], raw_data=b"")
    return model([helper.make_node("Relu", ["w"], ["y"], name="act")], [],
                 [value("y", FLOAT, [1 << 62, 4])], [w])


def conv_rank2_input():
    return model([helper.make_node("Conv", ["x", "w"], ["y"], name="conv", pads=[1, 1, 1, 1])],
                 [value("x", FLOAT, [2, 4])], [value("y", FLOAT, [2, 3])],
                 [tensor("w", [3, 2, 3, 3])])


def deep_rank_input():
    m = gemm()
    m.graph.input[0].CopyFrom(value("x", FLOAT, [1] * 17))
    return m


def shape_mismatch():
    return model(
        [helper.make_node("Gemm", ["x", "w"], ["y"], name="fc", transB=1)],
        [value("x", FLOAT, [2, 4])],
        [value("y", FLOAT, [2, 3])],
        [tensor("w", [3, 5])])


def broadcast_mismatch():
    return model(
        [helper.make_node("Add", ["x", "b"], ["y"], name="bias")],
        [value("x", FLOAT, [2, 4])],
        [value("y", FLOAT, [2, 4])],
        [tensor("b", [3])])


def unsupported_dtype():
    return model(
        [helper.make_node("Relu", ["x"], ["y"], name="act")],
        [value("x", TensorProto.DOUBLE, [2, 2])],
        [value("y", TensorProto.DOUBLE, [2, 2])])


def loss_weights():
    m = loss_output()
    m.graph.node[1].input.append("weights")
    m.graph.initializer.append(tensor("weights", [3]))
    return m


def transpose_output():
    """y = x^T as a graph output: the importer used to return x untransposed."""
    return model(
        [helper.make_node("Transpose", ["x"], ["y"], name="T", perm=[1, 0])],
        [value("x", FLOAT, [2, 3])],
        [value("y", FLOAT, [3, 2])])


def transposes():
    """A 4-D permutation, a 2-D swap that a MatMul folds and a Relu also
    reads, and two swaps in a row, which cancel."""
    return model(
        [helper.make_node("Transpose", ["x"], ["xt"], name="Permute", perm=[0, 2, 1, 3]),
         helper.make_node("Transpose", ["a"], ["at"], name="Swap"),
         helper.make_node("MatMul", ["at", "b"], ["ab"], name="MatMul"),
         helper.make_node("Relu", ["at"], ["ar"], name="Relu"),
         helper.make_node("Transpose", ["at"], ["att"], name="SwapBack"),
         helper.make_node("Relu", ["att"], ["back"], name="Relu2")],
        [value("x", FLOAT, [2, 3, 4, 5]), value("a", FLOAT, [3, 2]), value("b", FLOAT, [3, 4])],
        [value("xt", FLOAT, [2, 4, 3, 5]), value("ab", FLOAT, [2, 4]), value("ar", FLOAT, [2, 3]),
         value("back", FLOAT, [3, 2])])


def bad_transpose():
    """perm names a dim twice."""
    return model(
        [helper.make_node("Transpose", ["x"], ["y"], name="T", perm=[0, 0, 1])],
        [value("x", FLOAT, [2, 3, 4])],
        [value("y", FLOAT, [2, 2, 3])])


def shape_subgraph():
    """PyTorch's `cls.expand(x.shape[0], -1, -1)` (Shape, Gather, Unsqueeze,
    Concat, Reshape, ConstantOfShape, Mul, Equal, Where, Expand) joined to x,
    plus folded integers as outputs: the shape reversed by a Slice with step
    -1, and Less and Greater of the shape cast to int64."""
    n = helper.make_node
    return model(
        [n("Shape", ["x"], ["s"], name="Shape"),
         n("Gather", ["s", "zero"], ["batch"], name="Gather", axis=0),
         n("Unsqueeze", ["batch", "zero1"], ["batch1"], name="Unsqueeze"),
         n("Concat", ["batch1", "minus1", "minus1"], ["target0"], name="Concat", axis=0),
         n("Reshape", ["target0", "minus1"], ["target"], name="Reshape"),
         n("Shape", ["target"], ["target_shape"], name="Shape2"),
         n("ConstantOfShape", ["target_shape"], ["ones"], name="Ones",
           value=numpy_helper.from_array(np.array([1], dtype=np.int64))),
         n("Mul", ["ones", "minus1"], ["minus_ones"], name="Mul"),
         n("Equal", ["target", "minus_ones"], ["keep"], name="Equal"),
         n("Where", ["keep", "ones", "target"], ["expand_to"], name="Where"),
         n("Expand", ["cls", "expand_to"], ["tokens"], name="Expand"),
         n("Concat", ["tokens", "x"], ["y"], name="Join", axis=1),
         n("Slice", ["s", "minus1", "minus4", "zero1", "minus1"], ["reversed"], name="Reverse"),
         n("Less", ["s", "four"], ["lt"], name="Less"),
         n("Cast", ["lt"], ["less"], name="CastLess", to=INT64),
         n("Greater", ["s", "four"], ["gt"], name="Greater"),
         n("Cast", ["gt"], ["greater"], name="CastGreater", to=INT64)],
        [value("x", FLOAT, [4, 3, 5])],
        [value("y", FLOAT, [4, 4, 5]), value("expand_to", INT64, [3]),
         value("reversed", INT64, [3]), value("less", INT64, [3]),
         value("greater", INT64, [3])],
        [tensor("cls", [1, 1, 5]), ints("zero", 0), ints("zero1", [0]), ints("minus1", [-1]),
         ints("minus4", [-4]), ints("four", [4])])


def int_compare():
    """Equal of int64 tensors at run time: refused (comparisons at run time
    take float tensors)."""
    return model(
        [helper.make_node("Equal", ["a", "b"], ["e"], name="Same"),
         helper.make_node("Where", ["e", "x", "x"], ["y"], name="Select")],
        [value("a", INT64, [4]), value("b", INT64, [4]), value("x", FLOAT, [4])],
        [value("y", FLOAT, [4])])


def int_mask_compare():
    """An int64 padding mask compared with 0 at run time (exact in f32 against
    a small constant) selecting -1e4."""
    fill = numpy_helper.from_array(np.array(-1e4, np.float32), "fill")
    return model(
        [helper.make_node("Constant", [], ["fill"], name="Fill", value=fill),
         helper.make_node("Equal", ["mask", "zero"], ["pad"], name="Pad"),
         helper.make_node("Where", ["pad", "fill", "x"], ["y"], name="Select")],
        [value("mask", INT64, [4]), value("x", FLOAT, [4])],
        [value("y", FLOAT, [4])], [ints("zero", 0)])


def two_default_opsets():
    """The default domain imported twice (17 and 18): refused, so the checker
    and the rules cannot read different op sets."""
    m = gemm()
    m.opset_import.append(helper.make_opsetid("", 18))
    return m


def extreme_slices():
    """Float slices with a step of INT64_MAX (one element, x[:, 1]), of step
    -1 from a start far below 0 (clamped to 0, as the spec has it: x[:, 0]),
    and an empty one of step -1."""
    big = 2**63 - 1
    return model(
        [helper.make_node("Slice", ["x", "s1", "e1", "a", "huge"], ["one"], name="Huge"),
         helper.make_node("Slice", ["x", "s2", "e2", "a", "back"], ["first"], name="Back"),
         helper.make_node("Slice", ["x", "s3", "s3", "a", "back"], ["none"], name="Empty")],
        [value("x", FLOAT, [2, 4])],
        [value("one", FLOAT, [2, 1]), value("first", FLOAT, [2, 1]),
         value("none", FLOAT, [2, 0])],
        [ints("s1", [1]), ints("e1", [4]), ints("a", [1]), ints("huge", [big]),
         ints("s2", [-100]), ints("e2", [-200]), ints("back", [-1]), ints("s3", [0])])


def bool_int32_data():
    """A boolean constant stored in int32_data with a 2 (true), And-ed with a
    run-time comparison and cast to float: 0/1."""
    flags = helper.make_tensor("flags", TensorProto.BOOL, [4], [2, 0, 1, 0])
    return model(
        [helper.make_node("Constant", [], ["flags"], name="Flags", value=flags),
         helper.make_node("Greater", ["x", "zero"], ["positive"], name="Positive"),
         helper.make_node("And", ["flags", "positive"], ["both"], name="Both"),
         helper.make_node("Cast", ["both"], ["y"], name="AsFloat", to=TensorProto.FLOAT)],
        [value("x", FLOAT, [4])], [value("y", FLOAT, [4])],
        [numpy_helper.from_array(np.array(0.0, np.float32), "zero")])


def bool_io():
    """A boolean graph input (a padding mask) selecting -inf, and a boolean
    graph output (a comparison)."""
    fill = numpy_helper.from_array(np.array(-np.inf, np.float32), "fill")
    return model(
        [helper.make_node("Constant", [], ["fill"], name="Fill", value=fill),
         helper.make_node("Not", ["pad"], ["keep"], name="Keep"),
         helper.make_node("Where", ["keep", "x", "fill"], ["y"], name="Select"),
         helper.make_node("Greater", ["x", "fill"], ["finite"], name="Finite")],
        [value("pad", TensorProto.BOOL, [4]), value("x", FLOAT, [4])],
        [value("y", FLOAT, [4]), value("finite", TensorProto.BOOL, [4])])


def float_where():
    """Where between float tensors at a run-time comparison."""
    n = helper.make_node
    return model(
        [n("Greater", ["x", "y"], ["gt"], name="Greater"),
         n("Where", ["gt", "x", "y"], ["z"], name="Select")],
        [value("x", FLOAT, [4]), value("y", FLOAT, [4])],
        [value("z", FLOAT, [4])])


def trilu_mask():
    """A causal mask built in the graph: Trilu (upper, k 1) of a constant
    full of -inf, added to x; and a Trilu of x itself (refused)."""
    n = helper.make_node
    full = numpy_helper.from_array(np.full((3, 3), -np.inf, np.float32))
    return model(
        [n("Constant", [], ["full"], name="Full", value=full),
         n("Trilu", ["full", "one"], ["mask"], name="Mask", upper=1),
         n("Add", ["x", "mask"], ["y"], name="Masked")],
        [value("x", FLOAT, [2, 3, 3])],
        [value("y", FLOAT, [2, 3, 3])],
        [ints("one", 1)], opset=14)


def trilu_of_input():
    n = helper.make_node
    return model([n("Trilu", ["x"], ["y"], name="Lower", upper=0)],
                 [value("x", FLOAT, [3, 3])], [value("y", FLOAT, [3, 3])], opset=14)


def buffers():
    """y = x W^T + mask + shift: a -inf mask and a finite shift, both
    initializers (as PyTorch exports buffers), and the weight W."""
    n = helper.make_node
    mask = np.where(np.arange(3)[None, :] > np.arange(2)[:, None], -np.inf, 0).astype(np.float32)
    return model(
        [n("Gemm", ["x", "w"], ["xw"], name="fc", transB=1),
         n("Add", ["xw", "mask"], ["masked"], name="Mask"),
         n("Add", ["masked", "shift"], ["y"], name="Shift")],
        [value("x", FLOAT, [2, 4])], [value("y", FLOAT, [2, 3])],
        [tensor("w", [3, 4]), numpy_helper.from_array(mask, "mask"), tensor("shift", [3])])


def layer_norm():
    """LayerNormalization over [4, 6] without a bias between two MatMuls, its
    Mean and InvStdDev read as outputs, and the sum of the means as a loss."""
    return model(
        [helper.make_node("MatMul", ["x", "w"], ["h"], name="MatMul"),
         helper.make_node("Reshape", ["h", "shape"], ["h3"], name="Reshape"),
         helper.make_node("LayerNormalization", ["h3", "s"], ["y", "m", "r"], name="LN", axis=1,
                          epsilon=1e-3),
         helper.make_node("ReduceSum", ["m"], ["msum"], name="Sum", keepdims=0),
         helper.make_node("Reshape", ["y", "flat"], ["y2"], name="Flatten"),
         helper.make_node("MatMul", ["y2", "w"], ["z"], name="MatMul2")],
        [value("x", FLOAT, [8, 24])],
        [value("z", FLOAT, [8, 24]), value("m", FLOAT, [8, 1, 1]),
         value("r", FLOAT, [8, 1, 1]), value("msum", FLOAT, [])],
        [tensor("w", [24, 24]), ints("shape", [8, 4, 6]), tensor("s", [4, 6]),
         ints("flat", [8, 24])])


def reductions():
    """ReduceMax over the last axis (kept) and ReduceMin over the middle one
    (dropped) of x W as [2, 3, 4], and a ReduceMax over every axis of h minus
    its row maxima (axes negative and repeated) as a scalar loss."""
    return model(
        [helper.make_node("MatMul", ["x", "w"], ["h"], name="MatMul"),
         helper.make_node("Reshape", ["h", "shape"], ["h3"], name="Reshape"),
         helper.make_node("ReduceMax", ["h3"], ["mx"], name="Max", axes=[-1]),
         helper.make_node("ReduceMin", ["h3"], ["mn"], name="Min", axes=[1], keepdims=0),
         helper.make_node("Sub", ["h3", "mx"], ["centred"], name="Sub"),
         helper.make_node("ReduceMax", ["centred"], ["y"], name="All", axes=[-1, 2, 0, 1],
                          keepdims=0)],
        [value("x", FLOAT, [2, 4])],
        [value("y", FLOAT, []), value("mn", FLOAT, [2, 4])],
        [tensor("w", [4, 12]), ints("shape", [2, 3, 4])])


def gather_int32():
    """An embedding of int32 token ids (a graph input), and a pick at an int32
    constant index (widened to an int64 constant)."""
    ids = numpy_helper.from_array(np.array([2, 0], dtype=np.int32), "picks")
    return model(
        [helper.make_node("Gather", ["table", "tokens"], ["e"], name="embed"),
         helper.make_node("Gather", ["e", "picks"], ["y"], name="pick", axis=1)],
        [value("tokens", TensorProto.INT32, [2, 3])],
        [value("y", FLOAT, [2, 2, 4])],
        [tensor("table", [5, 4]), ids])


def layer_norm_stash():
    """LayerNormalization asking for float16 statistics (stash_type 10)."""
    return model(
        [helper.make_node("LayerNormalization", ["x", "s", "b"], ["y"], name="LN", stash_type=10)],
        [value("x", FLOAT, [2, 6])], [value("y", FLOAT, [2, 6])],
        [tensor("s", [6]), tensor("b", [6])])


def layer_norm_broadcast_scale():
    """A scale of shape [1] for normalized dims [6] (broadcastable in ONNX)."""
    return model(
        [helper.make_node("LayerNormalization", ["x", "s"], ["y"], name="LN")],
        [value("x", FLOAT, [2, 6])], [value("y", FLOAT, [2, 6])], [tensor("s", [1])])


def batched_matmuls():
    """A sequence times a weight ([batch, 4, 6] x [6, 3]) and batch dims that
    broadcast on both sides ([2, 1, 4, 6] x [3, 6, 5])."""
    return model(
        [helper.make_node("MatMul", ["x", "w"], ["y"], name="Linear"),
         helper.make_node("MatMul", ["a", "b"], ["c"], name="Batched")],
        [value("x", FLOAT, ["batch", 4, 6]), value("a", FLOAT, [2, 1, 4, 6]),
         value("b", FLOAT, [3, 6, 5])],
        [value("y", FLOAT, ["batch", 4, 3]), value("c", FLOAT, [2, 3, 4, 5])],
        [tensor("w", [6, 3])])


def sequence_linear():
    """relu(x W + b) over a sequence ([batch, 4, 6] x [6, 3]): the GEMM runs on
    [batch * 4, 6] between two reshapes, and its epilogue takes the bias
    and relu through the reshape."""
    return model(
        [helper.make_node("MatMul", ["x", "w"], ["xw"], name="proj"),
         helper.make_node("Add", ["xw", "b"], ["h"], name="bias"),
         helper.make_node("Relu", ["h"], ["y"], name="act")],
        [value("x", FLOAT, ["batch", 4, 6])],
        [value("y", FLOAT, ["batch", 4, 3])],
        [tensor("w", [6, 3]), tensor("b", [3], start=-0.5)])


def deep_mlp():
    """Six blocks of Gemm 4x4 + Relu: the plan-lowering golden tests' MLP."""
    nodes, inits, x = [], [], "x"
    for i in range(6):
        nodes += [helper.make_node("Gemm", [x, f"w{i}", f"b{i}"], [f"g{i}"], name=f"/blk{i}/Gemm",
                                   transB=1),
                  helper.make_node("Relu", [f"g{i}"], [f"r{i}"], name=f"/blk{i}/Relu")]
        inits += [tensor(f"w{i}", [4, 4], -1.0 + 0.1 * i), tensor(f"b{i}", [4], 0.1 * i)]
        x = f"r{i}"
    return model(nodes, [value("x", FLOAT, ["batch", 4])], [value(x, FLOAT, ["batch", 4])],
                 inits)


def small_cnn():
    """Conv -> BatchNormalization (training) -> Relu -> MaxPool -> Flatten ->
    Gemm: the plan-lowering golden tests' CNN."""
    return model(
        [helper.make_node("Conv", ["x", "w"], ["c"], name="conv", pads=[1, 1, 1, 1]),
         helper.make_node("BatchNormalization", ["c", "s", "b", "m", "v"], ["n", "m_new", "v_new"],
                          name="bn", training_mode=1),
         helper.make_node("Relu", ["n"], ["r"], name="relu"),
         helper.make_node("MaxPool", ["r"], ["p"], name="pool", kernel_shape=[2, 2],
                          strides=[2, 2]),
         helper.make_node("Flatten", ["p"], ["f"], name="flat"),
         helper.make_node("Gemm", ["f", "fc_w", "fc_b"], ["y"], name="fc", transB=1)],
        [value("x", FLOAT, ["batch", 2, 4, 4])],
        [value("y", FLOAT, ["batch", 3])],
        [tensor("w", [3, 2, 3, 3], -1.0), tensor("s", [3], 1.0), tensor("b", [3]),
         tensor("m", [3]), tensor("v", [3], 1.0), tensor("fc_w", [3, 12], -0.5),
         tensor("fc_b", [3])])


def linear784():
    """One Gemm from 784 pixels to 10 classes: trains on Fashion-MNIST."""
    return model(
        [helper.make_node("Gemm", ["x", "w", "b"], ["y"], name="fc", transB=1)],
        [value("x", FLOAT, ["batch", 784])],
        [value("y", FLOAT, ["batch", 10])],
        [numpy_helper.from_array(
            np.random.default_rng(0).normal(0, 0.01, (10, 784)).astype(np.float32), "w"),
         tensor("b", [10])])


def long_node_name():
    m = gemm()
    m.graph.node[0].name = "n" * 5000
    return m


def long_value_name():
    m = gemm()
    m.graph.node[0].output[0] = "y" * 4097
    m.graph.output[0].name = "y" * 4097
    return m


PREVIEW_TRAINING = "ai.onnx.preview.training"


def preview_model(nodes, inputs, outputs, initializers=()):
    """A model of ai.onnx.preview.training nodes (beside op set 17)."""
    nodes = nodes if isinstance(nodes, list) else [nodes]
    graph = helper.make_graph(nodes, "test", inputs, outputs, list(initializers))
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17),
                                                   helper.make_opsetid(PREVIEW_TRAINING, 1)])


def preview_inputs(groups, shapes=((2,), (3,))):
    """R, T and per group (X, G, ...) one f32 input per shape."""
    return ([value("R", FLOAT, []), value("T", TensorProto.INT64, [])] +
            [value(f"{g}{i}", FLOAT, list(s)) for g in groups for i, s in enumerate(shapes)])


def preview_outputs(groups, shapes=((2,), (3,))):
    return [value(f"{g}{i}_new", FLOAT, list(s)) for g in groups for i, s in enumerate(shapes)]


def preview_adam():
    """Adam over two tensors, T a graph input (run-time)."""
    names = [f"{g}{i}" for g in "XGVH" for i in range(2)]
    return preview_model(
        helper.make_node("Adam", ["R", "T", *names], [f"{g}{i}_new" for g in "XVH" for i in range(2)],
                         name="adam", domain=PREVIEW_TRAINING, alpha=0.9, beta=0.99, epsilon=1e-3,
                         norm_coefficient=0.01, norm_coefficient_post=0.5),
        preview_inputs("XGVH"), preview_outputs("XVH"))


def preview_adagrad():
    """Adagrad over one tensor, T a constant (an initializer)."""
    return preview_model(
        helper.make_node("Adagrad", ["R", "T", "X0", "G0", "H0"], ["X0_new", "H0_new"],
                         name="adagrad", domain=PREVIEW_TRAINING, decay_factor=0.5, epsilon=1e-4),
        [value("R", FLOAT, []), value("X0", FLOAT, [2]), value("G0", FLOAT, [2]),
         value("H0", FLOAT, [2])], preview_outputs("XH", shapes=((2,),)),
        [numpy_helper.from_array(np.array(3, np.int64), "T")])


def preview_momentum():
    return preview_model(
        helper.make_node("Momentum", ["R", "T", "X0", "G0", "V0"], ["X0_new", "V0_new"],
                         name="nesterov", domain=PREVIEW_TRAINING, alpha=0.9, beta=0.5,
                         mode="nesterov", norm_coefficient=0.0),
        preview_inputs("XGV", shapes=((2,),)), preview_outputs("XV", shapes=((2,),)))


def preview_gradient():
    """d = a (a + b) and its Gradient w.r.t. a and b (ONNX's
    test_gradient_of_add_and_mul)."""
    return preview_model(
        [helper.make_node("Add", ["a", "b"], ["c"], name="add"),
         helper.make_node("Mul", ["c", "a"], ["d"], name="mul"),
         helper.make_node("Gradient", ["a", "b"], ["dd_da", "dd_db"], name="grad",
                          domain=PREVIEW_TRAINING, xs=["a", "b"], y="d")],
        [value("a", FLOAT, [2]), value("b", FLOAT, [2])],
        [value("dd_da", FLOAT, [2]), value("dd_db", FLOAT, [2])])


def preview_gradient_elsewhere():
    """A Gradient asked at another value than the tensor it names."""
    return preview_model(
        [helper.make_node("Add", ["a", "b"], ["c"], name="add"),
         helper.make_node("Gradient", ["a", "b2"], ["dc_da", "dc_db"], name="grad",
                          domain=PREVIEW_TRAINING, xs=["a", "b"], y="c")],
        [value("a", FLOAT, [2]), value("b", FLOAT, [2]), value("b2", FLOAT, [2])],
        [value("dc_da", FLOAT, [2])])


def preview_gradient_unrelated():
    """Gradient w.r.t. an f16 tensor y does not depend on: zeros of its type."""
    return preview_model(
        [helper.make_node("Add", ["a", "a"], ["c"], name="add"),
         helper.make_node("Gradient", ["a", "h"], ["dc_da", "dc_dh"], name="grad",
                          domain=PREVIEW_TRAINING, xs=["a", "h"], y="c")],
        [value("a", FLOAT, [2]), value("h", TensorProto.FLOAT16, [2])],
        [value("dc_da", FLOAT, [2]), value("dc_dh", TensorProto.FLOAT16, [2])])


def preview_gradient_transposed():
    """Gradient w.r.t. a Transpose that the MatMul reading it folds."""
    return preview_model(
        [helper.make_node("Transpose", ["w"], ["wt"], name="t", perm=[1, 0]),
         helper.make_node("MatMul", ["x", "wt"], ["y"], name="mm"),
         helper.make_node("Gradient", ["wt"], ["dy_dwt"], name="grad",
                          domain=PREVIEW_TRAINING, xs=["wt"], y="y")],
        [value("x", FLOAT, [2, 4]), value("w", FLOAT, [3, 4])],
        [value("dy_dwt", FLOAT, [4, 3])])


def microsoft_op():
    """A com.microsoft op the importer has no rule for."""
    graph = helper.make_graph(
        [helper.make_node("FusedMatMul", ["a", "b"], ["c"], name="fused",
                          domain="com.microsoft")],
        "test", [value("a", FLOAT, [2, 2]), value("b", FLOAT, [2, 2])],
        [value("c", FLOAT, [2, 2])])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17),
                                                   helper.make_opsetid("com.microsoft", 1)])


def training_info_mlp(features=4, hidden=3, classes=2, lr=0.05, seed=0, initialization=True,
                      optimizer="adagrad"):
    """An MLP (Gemm, Relu, Gemm) whose TrainingInfoProto trains it with
    cross-entropy and ai.onnx.preview.training's Adagrad (epsilon 1e-6, no
    decay) or Momentum (standard, alpha 0.9, beta 1: torch.optim.SGD's):
    the algorithm differentiates the loss with a Gradient node and binds
    each weight and accumulator to the optimizer's new value. With
    `initialization`, the second bias's initial value comes from a Constant
    node of the initialization graph."""
    rng = np.random.default_rng(seed)
    shapes = {"W1": [hidden, features], "b1": [hidden], "W2": [classes, hidden], "b2": [classes]}
    params = {name: (rng.standard_normal(shape) / np.sqrt(shape[-1])).astype(np.float32)
              for name, shape in shapes.items()}
    inference = helper.make_graph(
        [helper.make_node("Gemm", ["X", "W1", "b1"], ["H"], name="fc1", transB=1),
         helper.make_node("Relu", ["H"], ["A"], name="relu"),
         helper.make_node("Gemm", ["A", "W2", "b2"], ["logits"], name="fc2", transB=1)],
        "mlp", [value("X", FLOAT, ["batch", features])], [value("logits", FLOAT, ["batch", classes])],
        [numpy_helper.from_array(v, k) for k, v in params.items()])
    names = list(shapes)
    algorithm = helper.make_graph(
        [helper.make_node("SoftmaxCrossEntropyLoss", ["logits", "labels"], ["loss"], name="loss"),
         helper.make_node("Gradient", names, [f"G_{n}" for n in names], name="gradient",
                          domain="ai.onnx.preview.training", xs=names, y="loss"),
         helper.make_node("Adagrad", ["R", "T", *names, *[f"G_{n}" for n in names],
                                      *[f"H_{n}" for n in names]],
                          [f"{n}_new" for n in names] + [f"H_{n}_new" for n in names],
                          name="adagrad", domain="ai.onnx.preview.training", epsilon=1e-6,
                          decay_factor=0.0, norm_coefficient=0.0) if optimizer == "adagrad" else
         helper.make_node("Momentum", ["R", "T", *names, *[f"G_{n}" for n in names],
                                       *[f"H_{n}" for n in names]],
                          [f"{n}_new" for n in names] + [f"H_{n}_new" for n in names],
                          name="momentum", domain="ai.onnx.preview.training", alpha=0.9,
                          beta=1.0, mode="standard", norm_coefficient=0.0)],
        "algorithm", [value("labels", INT64, ["batch"])],
        [value(f"{n}_new", FLOAT, shapes[n]) for n in names]
        + [value(f"H_{n}_new", FLOAT, shapes[n]) for n in names],
        [numpy_helper.from_array(np.array(lr, np.float32), "R"),
         numpy_helper.from_array(np.array(0, np.int64), "T")]
        + [numpy_helper.from_array(np.zeros(shapes[n], np.float32), f"H_{n}") for n in names])
    info = onnx.TrainingInfoProto()
    info.algorithm.CopyFrom(algorithm)
    for n in names:
        info.update_binding.add(key=n, value=f"{n}_new")
        info.update_binding.add(key=f"H_{n}", value=f"H_{n}_new")
    if initialization:
        info.initialization.CopyFrom(helper.make_graph(
            [helper.make_node("Constant", [], ["b2_init"], name="b2_init",
                              value=numpy_helper.from_array(np.full([classes], 0.25, np.float32)))],
            "initialization", [], [value("b2_init", FLOAT, [classes])]))
        info.initialization_binding.add(key="b2", value="b2_init")
    model = helper.make_model(inference, opset_imports=[
        helper.make_opsetid("", 17), helper.make_opsetid("ai.onnx.preview.training", 1)])
    model.training_info.append(info)
    return model


def training_info_two_gradients():
    """A TrainingInfoProto algorithm with a second Gradient node."""
    model = training_info_mlp()
    algorithm = model.training_info[0].algorithm
    algorithm.node.insert(2, helper.make_node("Gradient", ["W1"], ["G2_W1"], name="gradient2",
                                              domain="ai.onnx.preview.training", xs=["W1"],
                                              y="loss"))
    return model


def training_info_bad_init():
    """An initialization value of another shape than its initializer's."""
    model = training_info_mlp()
    model.training_info[0].initialization.node[0].attribute[0].t.CopyFrom(
        numpy_helper.from_array(np.zeros(3, np.float32)))
    return model


def training_info_random_init():
    """A TrainingInfoProto whose initialization draws random values."""
    model = training_info_mlp()
    init = model.training_info[0].initialization
    del init.node[:]
    init.node.append(helper.make_node("RandomNormal", [], ["b2_init"], name="b2_random",
                                      shape=[2], dtype=FLOAT))
    return model


MODELS = {f.__name__: f for f in [deep_mlp, sequence_linear, small_cnn, negative_dim, overflowing_initializer,
    deep_rank_input, conv_rank2_input, long_node_name, long_value_name, linear784,
    gemm, gemm_alpha_beta, elementwise, activations, conv, conv_group_mismatch, batch_norm,
    batch_norm_f16_scale, pad_concat, pad_reflect, pad_negative,
    dropout_training, dropout_mask, mlp2, flatten_reshape, loss_output, constant_param,
    unsupported_op, old_opset, opset12_gemm, new_opset, new_ir_version, newer_opsets, pad_axes,
    average_pool_dilations, pool_zero_stride, pool_overflowing_window_pads,
    pool_overflowing_window_same, pool_same_pads_at_int64_max, gelu_bad_approximate, reduce_mean_axes_attribute,
    split_without_parts, missing_initializer, shape_mismatch,
    broadcast_mismatch, unsupported_dtype, loss_weights, transpose_output, transposes,
    bad_transpose, layer_norm, layer_norm_stash, layer_norm_broadcast_scale,
    batched_matmuls, gather_int32, int_compare, int_mask_compare, bool_io, two_default_opsets,
    extreme_slices, bool_int32_data, reductions, shape_subgraph, float_where, trilu_mask, trilu_of_input, buffers,
    preview_adam, preview_adagrad, preview_momentum, preview_gradient,
    preview_gradient_elsewhere, microsoft_op, loss_log_prob,
    preview_gradient_unrelated, preview_gradient_transposed, training_info_mlp,
    training_info_random_init, training_info_two_gradients, training_info_bad_init]}

def ort_artifacts(source, folder, edit):
    """A copy of the onnxruntime-training artifact set in `source` (made by
    test/e2e/ort_reference.py) with one file edited: `edit` is
    unknown_gradient (ReluGrad renamed GeluGrad, an op without a rule),
    shared_seed (another node reads the loss gradient's seed),
    default_training_mode (BatchNormInternal without attributes),
    truncated_checkpoint or foreign_checkpoint (not a FlatBuffer of ORT's)."""
    import shutil
    shutil.rmtree(folder, ignore_errors=True)
    shutil.copytree(source, folder)
    if edit in ("unknown_gradient", "shared_seed", "default_training_mode"):
        training = onnx.load(f"{folder}/training_model.onnx")
        for node in training.graph.node:
            if node.op_type == "ReluGrad" and edit == "unknown_gradient":
                node.op_type = "GeluGrad"
            if node.op_type == "BatchNormInternal" and edit == "default_training_mode":
                del node.attribute[:]  # training_mode defaults to 1 there
            if node.op_type == "SoftmaxCrossEntropyLossGrad" and edit == "shared_seed":
                seed = node.input[0]
        if edit == "shared_seed":  # a second reader of the loss gradient's seed
            training.graph.node.append(helper.make_node("Identity", [seed], ["seed_copy"],
                                                        name="seed_reader"))
        onnx.save(training, f"{folder}/training_model.onnx")
        return
    with open(f"{folder}/checkpoint", "rb") as f:
        data = f.read()
    with open(f"{folder}/checkpoint", "wb") as f:
        f.write(data[:len(data) // 2] if edit == "truncated_checkpoint" else b"\x0c\0\0\0ONNX" + data[8:])


if __name__ == "__main__":
    name, path = sys.argv[1], sys.argv[2]
    if name == "ort_artifacts":
        ort_artifacts(sys.argv[3], path, sys.argv[4])
    elif name == "garbage":
        with open(path, "wb") as f:
            f.write(b"\x08\x07this is not an onnx model\xff\xff\xff")
    elif name == "non_utf8_node_name":
        # ONNX's strings are proto2 (no UTF-8 check), Python's are text: the
        # name is written as "nXnnn" and its byte patched to 0xff.
        m = gemm()
        m.graph.node[0].name = "nXnnn"
        data = m.SerializeToString()
        assert data.count(b"nXnnn") == 1
        with open(path, "wb") as f:
            f.write(data.replace(b"nXnnn", b"n\xffnnn"))
    else:
        onnx.save(MODELS[name](), path)
