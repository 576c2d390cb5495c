#!/usr/bin/python3
"""bench/make_models.py: writes the two synthetic benchmark models of bench/run into bench/assets/:
yolov4-tiny-416.onnx and yolov8n-640.onnx. Same layer structure (operators, channel counts,
kernel sizes, strides, tensor shapes) as the public detectors, random weights from a fixed seed,
so the files are byte-identical on every run and no weights need to be downloaded.

Run with Debian's Python (python3-onnx, python3-numpy):

    /usr/bin/python3 bench/make_models.py [--out bench/assets] [--seed 1]

Also writes the benchmark inputs: --inputs MODEL DIR writes one TensorProto file DIR/NAME.pb per
graph input of MODEL (float: uniform 0..255 for an input named image-*, else 0..1; integers
0..9), so aim bench and bench/ort_bench.js are fed the very same bytes.

Sources of the structures (written from memory of the public files, not copied from them):

* YOLOv4-tiny: darknet's cfg/yolov4-tiny.cfg (AlexeyAB/darknet), 416x416x3. Every
  [convolutional] with batch_normalize=1 is Conv (no bias) -> BatchNormalization -> LeakyRelu(0.1),
  with padding size/2, as a darknet->ONNX exporter writes it (BN kept as a separate node). Three
  CSP stages, each: conv3x3, [route groups=2 group_id=1] (a Split of the channels, second half),
  conv3x3, conv3x3, [route -1,-2] (Concat), conv1x1, [route -6,-1] (Concat), [maxpool 2/2].
  Then conv3x3 512, conv1x1 256, conv3x3 512, conv1x1 255 (linear, with bias) -> head 13x13;
  [route -4], conv1x1 128, [upsample 2] (Resize nearest), [route -1,23] (Concat with the last
  CSP's conv1x1 256 output), conv3x3 256, conv1x1 255 (linear) -> head 26x26. The [yolo] layers
  (box decoding) are not part of the graph: outputs are the raw head convolutions
  [1,255,13,13] and [1,255,26,26], as in the common darknet exports.

* YOLOv8n: ultralytics/cfg/models/v8/yolov8.yaml at scale n (depth 0.33, width 0.25,
  max_channels 1024), 640x640x3, as `yolo export format=onnx opset=13` writes it: BatchNorm fused
  into the convolutions (Conv with bias), SiLU written as x * Sigmoid(x).
  backbone: Conv 16 3/2, Conv 32 3/2, C2f 32 n=1 shortcut, Conv 64 3/2, C2f 64 n=2 shortcut,
  Conv 128 3/2, C2f 128 n=2 shortcut, Conv 256 3/2, C2f 256 n=1 shortcut, SPPF 256 k=5.
  neck: Upsample x2 (Resize nearest), Concat P4, C2f 128 n=1; Upsample, Concat P3, C2f 64 n=1
  (P3 out); Conv 64 3/2, Concat, C2f 128 n=1 (P4 out); Conv 128 3/2, Concat SPPF, C2f 256 n=1
  (P5 out). C2f(c2, n): cv1 1x1 to 2c (c = c2/2), Split in two, n Bottlenecks (3x3, 3x3, residual
  add when shortcut) on the last chunk, Concat of all chunks, cv2 1x1 to c2. SPPF: cv1 1x1 to
  c1/2, three MaxPool 5/1 pad 2, Concat of 4, cv2 1x1.
  Detect (nc=80, reg_max=16): per level a box branch (Conv 64 3, Conv 64 3, Conv2d 64 1x1) and a
  class branch (Conv 80 3, Conv 80 3, Conv2d 80 1x1), concatenated to 144 channels, reshaped to
  [1,144,HW] and concatenated over the levels to [1,144,8400]; then DFL (Reshape [1,4,16,8400],
  Transpose, Softmax, 1x1 Conv with weights 0..15), dist2bbox with the anchor points and strides
  (xywh), Sigmoid of the classes, output0 [1,84,8400].
"""
import argparse
import os
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OPSET = 13


class Builder:
    """Accumulates nodes and initializers with unique names."""

    def __init__(self, seed):
        self.rng = np.random.default_rng(seed)
        self.nodes = []
        self.inits = []
        self.count = {}

    def name(self, prefix):
        n = self.count.get(prefix, 0)
        self.count[prefix] = n + 1
        return f"{prefix}_{n}"

    def const(self, prefix, array):
        name = self.name(prefix)
        self.inits.append(numpy_helper.from_array(np.asarray(array), name))
        return name

    def node(self, op, inputs, n_out=1, out=None, **attrs):
        base = self.name(op.lower())
        outs = [f"{base}_out{i}" if n_out > 1 else f"{base}_out" for i in range(n_out)]
        if out:
            outs = [out]
        self.nodes.append(helper.make_node(op, inputs, outs, name=base, **attrs))
        return outs if n_out > 1 else outs[0]

    def conv(self, x, c_in, c_out, k, s=1, bias=True, out=None):
        # He-normal weights keep activations in a sane range through the depth of the network.
        w = self.rng.normal(0.0, np.sqrt(2.0 / (c_in * k * k)), (c_out, c_in, k, k))
        ins = [x, self.const("w", w.astype(np.float32))]
        if bias:
            ins.append(self.const("b", self.rng.normal(0.0, 0.01, c_out).astype(np.float32)))
        p = k // 2
        return self.node("Conv", ins, out=out, kernel_shape=[k, k], strides=[s, s],
                         pads=[p, p, p, p])

    def batchnorm(self, x, c):
        scale = self.rng.uniform(0.5, 1.5, c).astype(np.float32)
        bias = self.rng.normal(0.0, 0.05, c).astype(np.float32)
        mean = self.rng.normal(0.0, 0.05, c).astype(np.float32)
        var = self.rng.uniform(0.5, 1.5, c).astype(np.float32)
        ins = [x] + [self.const(p, a) for p, a in
                     (("bn_scale", scale), ("bn_bias", bias), ("bn_mean", mean), ("bn_var", var))]
        return self.node("BatchNormalization", ins, epsilon=1e-5)

    def resize2x(self, x):
        scales = self.const("scales", np.array([1, 1, 2, 2], dtype=np.float32))
        return self.node("Resize", [x, "", scales], mode="nearest",
                         coordinate_transformation_mode="asymmetric", nearest_mode="floor")

    def model(self, graph_name, inputs, outputs):
        graph = helper.make_graph(self.nodes, graph_name, inputs, outputs, self.inits)
        m = helper.make_model(graph, producer_name="aim-bench-make_models",
                              opset_imports=[helper.make_opsetid("", OPSET)])
        m.ir_version = 7
        onnx.checker.check_model(m)
        return onnx.shape_inference.infer_shapes(m, strict_mode=True)


# ---- YOLOv4-tiny ------------------------------------------------------------------------------

def yolov4_tiny(seed):
    b = Builder(seed)
    layers = []  # output of each darknet layer, for the route indices
    ch = []

    def conv(x, c_in, c_out, k, s=1):  # [convolutional] batch_normalize=1 activation=leaky
        y = b.conv(x, c_in, c_out, k, s, bias=False)
        y = b.batchnorm(y, c_out)
        y = b.node("LeakyRelu", [y], alpha=0.1)
        layers.append(y)
        ch.append(c_out)
        return y

    def route_half(i):  # [route] layers=i groups=2 group_id=1
        halves = b.node("Split", [layers[i]], n_out=2, axis=1)
        layers.append(halves[1])
        ch.append(ch[i] // 2)
        return halves[1]

    def route(*idx):  # [route] layers=a,b (concat)
        y = b.node("Concat", [layers[i] for i in idx], axis=1)
        layers.append(y)
        ch.append(sum(ch[i] for i in idx))
        return y

    def maxpool():  # [maxpool] size=2 stride=2
        y = b.node("MaxPool", [layers[-1]], kernel_shape=[2, 2], strides=[2, 2])
        layers.append(y)
        ch.append(ch[-1])
        return y

    conv("image-", 3, 32, 3, 2)   # 0: 208x208
    conv(layers[-1], 32, 64, 3, 2)  # 1: 104x104
    for c in (64, 128, 256):      # the three CSP stages: 2..9, 10..17, 18..25
        conv(layers[-1], ch[-1], c, 3)             # conv 3x3 c
        base = len(layers) - 1
        route_half(base)                           # route -1 groups=2 group_id=1
        conv(layers[-1], c // 2, c // 2, 3)        # conv 3x3 c/2
        conv(layers[-1], c // 2, c // 2, 3)        # conv 3x3 c/2
        route(len(layers) - 1, len(layers) - 2)    # route -1,-2
        conv(layers[-1], c, c, 1)                  # conv 1x1 c
        route(len(layers) - 6, len(layers) - 1)    # route -6,-1
        maxpool()                                  # maxpool 2/2
    assert len(layers) == 26 and ch[23] == 256
    conv(layers[-1], 512, 512, 3)                  # 26
    conv(layers[-1], 512, 256, 1)                  # 27
    conv(layers[-1], 256, 512, 3)                  # 28
    head13 = b.conv(layers[-1], 512, 255, 1, out="output_13")  # 29 linear, bias; 30 [yolo]
    layers += [head13, head13]
    ch += [255, 255]
    layers.append(layers[27])                      # 31 route -4
    ch.append(256)
    conv(layers[-1], 256, 128, 1)                  # 32
    up = b.resize2x(layers[-1])                    # 33 upsample 2
    layers.append(up)
    ch.append(128)
    route(34 - 1, 23)                              # 34 route -1,23: 384 channels
    conv(layers[-1], 384, 256, 3)                  # 35
    b.conv(layers[-1], 256, 255, 1, out="output_26")  # 36 linear; 37 [yolo]
    inputs = [helper.make_tensor_value_info("image-", TensorProto.FLOAT, [1, 3, 416, 416])]
    outputs = [helper.make_tensor_value_info("output_13", TensorProto.FLOAT, [1, 255, 13, 13]),
               helper.make_tensor_value_info("output_26", TensorProto.FLOAT, [1, 255, 26, 26])]
    return b.model("yolov4-tiny-416", inputs, outputs)


# ---- YOLOv8n ----------------------------------------------------------------------------------

def yolov8n(seed):
    b = Builder(seed)

    def conv(x, c1, c2, k=1, s=1):  # ultralytics Conv, BN fused, SiLU = x * sigmoid(x)
        y = b.conv(x, c1, c2, k, s, bias=True)
        return b.node("Mul", [y, b.node("Sigmoid", [y])])

    def bottleneck(x, c, shortcut):
        y = conv(conv(x, c, c, 3), c, c, 3)
        return b.node("Add", [x, y]) if shortcut else y

    def c2f(x, c1, c2, n, shortcut):
        c = c2 // 2
        y = conv(x, c1, 2 * c, 1)
        split = b.const("split", np.array([c, c], dtype=np.int64))
        chunks = list(b.node("Split", [y, split], n_out=2, axis=1))
        for _ in range(n):
            chunks.append(bottleneck(chunks[-1], c, shortcut))
        return conv(b.node("Concat", chunks, axis=1), (2 + n) * c, c2, 1)

    def sppf(x, c1, c2):
        c = c1 // 2
        y = [conv(x, c1, c, 1)]
        for _ in range(3):
            y.append(b.node("MaxPool", [y[-1]], kernel_shape=[5, 5], strides=[1, 1],
                            pads=[2, 2, 2, 2]))
        return conv(b.node("Concat", y, axis=1), 4 * c, c2, 1)

    x = conv("images", 3, 16, 3, 2)        # 0 P1/2
    x = conv(x, 16, 32, 3, 2)              # 1 P2/4
    x = c2f(x, 32, 32, 1, True)            # 2
    x = conv(x, 32, 64, 3, 2)              # 3 P3/8
    p3 = c2f(x, 64, 64, 2, True)           # 4
    x = conv(p3, 64, 128, 3, 2)            # 5 P4/16
    p4 = c2f(x, 128, 128, 2, True)         # 6
    x = conv(p4, 128, 256, 3, 2)           # 7 P5/32
    x = c2f(x, 256, 256, 1, True)          # 8
    p5 = sppf(x, 256, 256)                 # 9
    x = b.node("Concat", [b.resize2x(p5), p4], axis=1)   # 10, 11
    h12 = c2f(x, 384, 128, 1, False)                     # 12
    x = b.node("Concat", [b.resize2x(h12), p3], axis=1)  # 13, 14
    out3 = c2f(x, 192, 64, 1, False)                     # 15 (P3/8-small)
    x = b.node("Concat", [conv(out3, 64, 64, 3, 2), h12], axis=1)   # 16, 17
    out4 = c2f(x, 192, 128, 1, False)                    # 18 (P4/16-medium)
    x = b.node("Concat", [conv(out4, 128, 128, 3, 2), p5], axis=1)  # 19, 20
    out5 = c2f(x, 384, 256, 1, False)                    # 21 (P5/32-large)

    # 22 Detect
    nc, reg_max = 80, 16
    c2, c3 = max(16, 64 // 4, reg_max * 4), max(64, min(nc, 100))
    no = nc + 4 * reg_max
    flat = []
    for feat, ch_in in ((out3, 64), (out4, 128), (out5, 256)):
        box = b.conv(conv(conv(feat, ch_in, c2, 3), c2, c2, 3), c2, 4 * reg_max, 1)
        cls = b.conv(conv(conv(feat, ch_in, c3, 3), c3, c3, 3), c3, nc, 1)
        level = b.node("Concat", [box, cls], axis=1)
        shape = b.const("shape", np.array([1, no, -1], dtype=np.int64))
        flat.append(b.node("Reshape", [level, shape]))
    x = b.node("Concat", flat, axis=2)  # [1, 144, 8400]
    split = b.const("split", np.array([4 * reg_max, nc], dtype=np.int64))
    box, cls = b.node("Split", [x, split], n_out=2, axis=1)
    # DFL
    a = 8400
    y = b.node("Reshape", [box, b.const("shape", np.array([1, 4, reg_max, a], dtype=np.int64))])
    y = b.node("Transpose", [y], perm=[0, 2, 1, 3])
    y = b.node("Softmax", [y], axis=1)
    dfl_w = np.arange(reg_max, dtype=np.float32).reshape(1, reg_max, 1, 1)
    y = b.node("Conv", [y, b.const("dfl_w", dfl_w)], kernel_shape=[1, 1])
    dist = b.node("Reshape", [y, b.const("shape", np.array([1, 4, a], dtype=np.int64))])
    # dist2bbox with anchor points (cell centres) and strides
    anchors, strides = [], []
    for size, stride in ((80, 8), (40, 16), (20, 32)):
        sy, sx = np.meshgrid(np.arange(size) + 0.5, np.arange(size) + 0.5, indexing="ij")
        anchors.append(np.stack([sx.ravel(), sy.ravel()]))
        strides.append(np.full(size * size, stride))
    anchor = b.const("anchors", np.concatenate(anchors, 1)[None].astype(np.float32))
    stride = b.const("strides", np.concatenate(strides)[None, None].astype(np.float32))
    half = b.const("split", np.array([2, 2], dtype=np.int64))
    lt, rb = b.node("Split", [dist, half], n_out=2, axis=1)
    x1y1 = b.node("Sub", [anchor, lt])
    x2y2 = b.node("Add", [anchor, rb])
    c_xy = b.node("Div", [b.node("Add", [x1y1, x2y2]), b.const("two", np.array(2, np.float32))])
    wh = b.node("Sub", [x2y2, x1y1])
    dbox = b.node("Mul", [b.node("Concat", [c_xy, wh], axis=1), stride])
    b.node("Concat", [dbox, b.node("Sigmoid", [cls])], out="output0", axis=1)
    inputs = [helper.make_tensor_value_info("images", TensorProto.FLOAT, [1, 3, 640, 640])]
    outputs = [helper.make_tensor_value_info("output0", TensorProto.FLOAT, [1, 4 + nc, a])]
    return b.model("yolov8n-640", inputs, outputs)


# ---- Inputs -----------------------------------------------------------------------------------

def write_inputs(model_path, out_dir, seed):
    """One NAME.pb per graph input, deterministic; prints NAME=PATH lines."""
    m = onnx.load(model_path, load_external_data=False)
    inits = {t.name for t in m.graph.initializer}
    rng = np.random.default_rng(seed)
    os.makedirs(out_dir, exist_ok=True)
    for vi in m.graph.input:
        if vi.name in inits:
            continue
        tt = vi.type.tensor_type
        dims = [d.dim_value if d.HasField("dim_value") else -1 for d in tt.shape.dim]
        if any(d < 0 for d in dims):
            sys.exit(f"make_models: input '{vi.name}' of {model_path} has symbolic dims")
        dtype = np.dtype(onnx.mapping.TENSOR_TYPE_TO_NP_TYPE[tt.elem_type])
        if np.issubdtype(dtype, np.floating):
            scale = 255.0 if vi.name.startswith("image-") else 1.0
            data = (rng.random(dims) * scale).astype(dtype)
        elif dtype == np.bool_:
            data = rng.integers(0, 2, dims).astype(dtype)
        else:
            data = rng.integers(0, 10, dims).astype(dtype)
        safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in vi.name)
        path = os.path.join(out_dir, safe + ".pb")
        with open(path, "wb") as f:
            f.write(numpy_helper.from_array(data, vi.name).SerializeToString())
        print(f"{vi.name}={path}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default=os.path.join(os.path.dirname(__file__) or ".", "assets"))
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--inputs", nargs=2, metavar=("MODEL", "DIR"),
                    help="write the benchmark inputs of MODEL into DIR instead")
    args = ap.parse_args()
    if args.inputs:
        write_inputs(args.inputs[0], args.inputs[1], args.seed)
        return
    os.makedirs(args.out, exist_ok=True)
    for name, make in (("yolov4-tiny-416", yolov4_tiny), ("yolov8n-640", yolov8n)):
        path = os.path.join(args.out, name + ".onnx")
        tmp = path + ".tmp"
        onnx.save(make(args.seed), tmp)
        os.replace(tmp, path)
        print(f"make_models: wrote {path}")


if __name__ == "__main__":
    main()
