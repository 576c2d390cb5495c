#!/usr/bin/env python3
"""make_compile_model.py: small models for compile_basic.sh.

make_compile_model.py conv OUT.onnx     conv-relu-conv-add-maxpool on `image-` [1,3,64,64] with a
                                        doc_string normalisation, then Reshape + Softmax
                                        (post-processing that must stay ONNX)
make_compile_model.py pair OUT.onnx     conv (3->8, 3x3, no activation) -> conv (1x1) -> Relu on
                                        `image-` [1,3,64,64], output `y`; channel 0 between the
                                        convs is scaled up 100x and read 100x weaker, so the
                                        function is ordinary but that channel's range dwarfs the
                                        others (what equalization is for)
make_compile_model.py split OUT.onnx    a YOLO-style route on `image-` [1,3,32,32]: conv0 -> relu0
                                        -> Split into halves; conv1 on one half;
                                        Concat(relu0, conv1) -> conv2 -> `y`
make_compile_model.py route OUT.onnx    the same with the Split replaced by a Mul with a constant
                                        (not quantizable): the quantizable nodes are connected,
                                        but a path leaves them and comes back
make_compile_model.py noquant OUT.onnx  only Reshape + Softmax: nothing to quantize
make_compile_model.py input IN.pb       a random `image-` tensor (normalised range) as TensorProto
make_compile_model.py image IN.pb PHOTO OUT.onnx OUT2.onnx
                                        PHOTO prepared like aim does (Pillow bilinear resize to
                                        64x64, (pixel - 127.5) / 64, NCHW) as the `image-`
                                        TensorProto; OUT.onnx (and OUT2.onnx) are rewritten with
                                        the region output `p1` (the logits before Reshape +
                                        Softmax) as an extra graph output
"""
import json
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper


def conv_model(path):
    rng = np.random.default_rng(3)
    w1 = rng.normal(0, 0.3, (8, 3, 3, 3)).astype(np.float32)
    b1 = rng.normal(0, 0.1, 8).astype(np.float32)
    w2 = rng.normal(0, 0.2, (8, 8, 3, 3)).astype(np.float32)
    b2 = rng.normal(0, 0.1, 8).astype(np.float32)
    inits = [numpy_helper.from_array(w1, "w1"), numpy_helper.from_array(b1, "b1"),
             numpy_helper.from_array(w2, "w2"), numpy_helper.from_array(b2, "b2"),
             numpy_helper.from_array(np.array([1, -1], np.int64), "flat")]
    nodes = [
        helper.make_node("Conv", ["image-", "w1", "b1"], ["c1"], name="conv1", pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c1"], ["r1"], name="relu1"),
        helper.make_node("Conv", ["r1", "w2", "b2"], ["c2"], name="conv2", pads=[1, 1, 1, 1]),
        helper.make_node("Add", ["c2", "r1"], ["a1"], name="add1"),
        helper.make_node("MaxPool", ["a1"], ["p1"], name="pool1", kernel_shape=[2, 2],
                         strides=[2, 2]),
        helper.make_node("Reshape", ["p1", "flat"], ["f1"], name="flatten"),
        helper.make_node("Softmax", ["f1"], ["scores-0:a"], name="softmax", axis=1),
    ]
    graph = helper.make_graph(
        nodes, "compile_basic",
        [helper.make_tensor_value_info("image-", TensorProto.FLOAT, [1, 3, 64, 64])],
        [helper.make_tensor_value_info("scores-0:a", TensorProto.FLOAT, [1, 8 * 32 * 32])],
        inits)
    graph.doc_string = json.dumps({"means": [127.5, 127.5, 127.5], "vars": [64, 64, 64]})
    save(graph, path)


def route_model(path, through="mul"):
    """conv0 -> relu0 -> (Split halves | Mul by a constant) -> conv1 -> Concat(relu0, conv1)
    -> conv2 -> y."""
    rng = np.random.default_rng(11)
    half = through == "split"
    w0 = rng.normal(0, 0.3, (8, 3, 3, 3)).astype(np.float32)
    w1 = rng.normal(0, 0.3, (4, 4 if half else 8, 3, 3)).astype(np.float32)
    w2 = rng.normal(0, 0.2, (6, 12, 1, 1)).astype(np.float32)
    inits = [numpy_helper.from_array(w0, "w0"), numpy_helper.from_array(w1, "w1"),
             numpy_helper.from_array(w2, "w2"),
             numpy_helper.from_array(np.array([4, 4], np.int64), "halves"),
             numpy_helper.from_array(np.full((1, 8, 1, 1), 0.5, np.float32), "k")]
    mid = (helper.make_node("Split", ["r0", "halves"], ["s0", "s1"], name="split", axis=1)
           if half else helper.make_node("Mul", ["r0", "k"], ["s1"], name="scale"))
    nodes = [
        helper.make_node("Conv", ["image-", "w0"], ["c0"], name="conv0", pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c0"], ["r0"], name="relu0"),
        mid,
        helper.make_node("Conv", ["s1", "w1"], ["c1"], name="conv1", pads=[1, 1, 1, 1]),
        helper.make_node("Concat", ["r0", "c1"], ["cat"], name="concat", axis=1),
        helper.make_node("Conv", ["cat", "w2"], ["y"], name="conv2"),
    ]
    graph = helper.make_graph(
        nodes, "route",
        [helper.make_tensor_value_info("image-", TensorProto.FLOAT, [1, 3, 32, 32])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 6, 32, 32])], inits)
    graph.doc_string = json.dumps({"means": [127.5, 127.5, 127.5], "vars": [64, 64, 64]})
    save(graph, path)


def pair_model(path):
    rng = np.random.default_rng(7)
    w1 = rng.normal(0, 0.3, (8, 3, 3, 3)).astype(np.float32)
    b1 = rng.normal(0, 0.1, 8).astype(np.float32)
    w2 = rng.normal(0, 0.3, (8, 8, 1, 1)).astype(np.float32)
    b2 = rng.normal(0, 0.1, 8).astype(np.float32)
    w1[0] *= 100
    b1[0] *= 100
    w2[:, 0] /= 100
    inits = [numpy_helper.from_array(w1, "w1"), numpy_helper.from_array(b1, "b1"),
             numpy_helper.from_array(w2, "w2"), numpy_helper.from_array(b2, "b2")]
    nodes = [
        helper.make_node("Conv", ["image-", "w1", "b1"], ["c1"], name="conv1", pads=[1, 1, 1, 1]),
        helper.make_node("Conv", ["c1", "w2", "b2"], ["c2"], name="conv2"),
        helper.make_node("Relu", ["c2"], ["y"], name="relu2"),
    ]
    graph = helper.make_graph(
        nodes, "pair",
        [helper.make_tensor_value_info("image-", TensorProto.FLOAT, [1, 3, 64, 64])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 8, 64, 64])], inits)
    graph.doc_string = json.dumps({"means": [127.5, 127.5, 127.5], "vars": [64, 64, 64]})
    save(graph, path)


def noquant_model(path):
    inits = [numpy_helper.from_array(np.array([1, -1], np.int64), "flat")]
    nodes = [helper.make_node("Reshape", ["image-", "flat"], ["f1"], name="flatten"),
             helper.make_node("Softmax", ["f1"], ["scores-0:a"], name="softmax", axis=1)]
    graph = helper.make_graph(
        nodes, "noquant",
        [helper.make_tensor_value_info("image-", TensorProto.FLOAT, [1, 3, 64, 64])],
        [helper.make_tensor_value_info("scores-0:a", TensorProto.FLOAT, [1, 3 * 64 * 64])],
        inits)
    save(graph, path)


def save(graph, path):
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, path)


def input_pb(path):
    rng = np.random.default_rng(5)
    x = ((rng.integers(0, 256, (1, 3, 64, 64)) - 127.5) / 64).astype(np.float32)
    with open(path, "wb") as f:
        f.write(numpy_helper.from_array(x, "image-").SerializeToString())


def image_pb(path, photo, *models):
    from PIL import Image
    img = Image.open(photo).convert("RGB").resize((64, 64), Image.BILINEAR)
    x = ((np.asarray(img, dtype=np.float32) - 127.5) / 64).transpose(2, 0, 1)[None]
    with open(path, "wb") as f:
        f.write(numpy_helper.from_array(np.ascontiguousarray(x), "image-").SerializeToString())
    for m_path in models:
        m = onnx.load(m_path)
        m.graph.output.append(helper.make_tensor_value_info("p1", TensorProto.FLOAT, None))
        onnx.save(m, m_path)


if __name__ == "__main__":
    {"conv": conv_model, "pair": pair_model, "noquant": noquant_model, "input": input_pb,
     "image": image_pb, "route": route_model,
     "split": lambda path: route_model(path, "split")}[sys.argv[1]](*sys.argv[2:])
