"""toolchain_inputs.py: inputs and checks for tests/e2e/toolchain.sh.

  model OUT.onnx                   a small conventions CNN: `image-` [1,3,64,64] (doc_string
                                   means/vars), Conv-Relu-Conv-Relu-GlobalAveragePool-Flatten-
                                   Gemm-Softmax, output `scores-0:round;1:square` [1,2]
  archive OUT KIND NAME=SRC ...    a zip / tar / tar.gz (KIND) holding SRC files as NAME
                                   (NAME=@text writes the text itself)
  evil OUT KIND                    an archive with a `../evil` entry (tar.gz) or a symlink (link)
  check ORIG CONVERTED LOGS        the converted model keeps the original's input/output names,
                                   types and shapes, has chip=cpu-int8, and logs.json says ok
"""
import io
import json
import sys
import tarfile
import zipfile

import numpy as np


def make_model(path):
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(7)

    def init(name, *shape, scale=0.2):
        values = (rng.standard_normal(shape) * scale).astype(np.float32)
        return numpy_helper.from_array(values, name)

    inits = [init("w1", 8, 3, 3, 3), init("b1", 8, scale=0.05), init("w2", 8, 8, 3, 3),
             init("b2", 8, scale=0.05), init("wg", 2, 8), init("bg", 2, scale=0.05)]
    nodes = [
        helper.make_node("Conv", ["image-", "w1", "b1"], ["c1"], name="conv1", pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c1"], ["r1"], name="relu1"),
        helper.make_node("Conv", ["r1", "w2", "b2"], ["c2"], name="conv2", pads=[1, 1, 1, 1],
                         strides=[2, 2]),
        helper.make_node("Relu", ["c2"], ["r2"], name="relu2"),
        helper.make_node("GlobalAveragePool", ["r2"], ["gap"], name="gap"),
        helper.make_node("Flatten", ["gap"], ["flat"], name="flatten"),
        helper.make_node("Gemm", ["flat", "wg", "bg"], ["logits"], name="fc", transB=1),
        helper.make_node("Softmax", ["logits"], ["scores-0:round;1:square"], name="softmax",
                         axis=1),
    ]
    graph = helper.make_graph(
        nodes, "tiny_classifier",
        [helper.make_tensor_value_info("image-", TensorProto.FLOAT, [1, 3, 64, 64])],
        [helper.make_tensor_value_info("scores-0:round;1:square", TensorProto.FLOAT, [1, 2])],
        initializer=inits)
    graph.doc_string = json.dumps({"means": [123.7, 116.3, 103.5], "vars": [58.4, 57.1, 57.4]})
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)],
                              producer_name="aim-tests")
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, path)


def member_bytes(src):
    return src[1:].encode() if src.startswith("@") else open(src, "rb").read()


def make_archive(out, kind, members):
    items = [(m.split("=", 1)[0], member_bytes(m.split("=", 1)[1])) for m in members]
    if kind == "zip":
        with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
            for name, data in items:
                z.writestr(name, data)
        return
    mode = "w:gz" if kind == "tar.gz" else "w"
    with tarfile.open(out, mode, format=tarfile.PAX_FORMAT) as t:
        for name, data in items:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            t.addfile(info, io.BytesIO(data))


def make_evil(out, kind):
    with tarfile.open(out, "w:gz") as t:
        info = tarfile.TarInfo("model.onnx")
        info.size = 4
        t.addfile(info, io.BytesIO(b"onnx"))
        if kind == "link":
            link = tarfile.TarInfo("images")
            link.type = tarfile.SYMTYPE
            link.linkname = "/tmp"
            t.addfile(link)
            name = "images/escaped.png"
        else:
            name = "../evil"
        info = tarfile.TarInfo(name)
        info.size = 6
        t.addfile(info, io.BytesIO(b"gotcha"))


def io_summary(model):
    def one(v):
        t = v.type.tensor_type
        dims = [d.dim_value if d.HasField("dim_value") else d.dim_param for d in t.shape.dim]
        return (v.name, t.elem_type, dims)

    inits = {i.name for i in model.graph.initializer}
    return ([one(v) for v in model.graph.input if v.name not in inits],
            [one(v) for v in model.graph.output])


def check(orig_path, conv_path, logs_path):
    import onnx

    orig, conv = onnx.load(orig_path), onnx.load(conv_path)
    a, b = io_summary(orig), io_summary(conv)
    print(f"original  inputs {a[0]} outputs {a[1]}")
    print(f"converted inputs {b[0]} outputs {b[1]}")
    assert a == b, "input/output names, types or shapes changed"
    meta = {p.key: p.value for p in conv.metadata_props}
    assert meta.get("chip") == "cpu-int8", f"metadata chip is {meta.get('chip')!r}"
    ops = [(n.domain, n.op_type) for n in conv.graph.node]
    assert ("ai.aim", "AimProgram") in ops, f"no ai.aim AimProgram node: {ops}"
    logs = json.load(open(logs_path))
    assert logs["status"] == "ok" and logs["exit_code"] == 0, logs
    assert logs["output_model"] == conv_path.rsplit("/", 1)[-1], logs["output_model"]
    print(f"logs.json: status ok, {logs.get('images_used')} image(s) used, "
          f"method {logs.get('calib_method_used')}")


def main(argv):
    cmd = argv[1]
    if cmd == "model":
        make_model(argv[2])
    elif cmd == "archive":
        make_archive(argv[2], argv[3], argv[4:])
    elif cmd == "evil":
        make_evil(argv[2], argv[3])
    elif cmd == "check":
        check(argv[2], argv[3], argv[4])
    else:
        sys.exit(f"unknown command {cmd}")


if __name__ == "__main__":
    main(sys.argv)
