"""make_malformed.py BASE OUT: writes the inputs of malformed_models.sh into OUT.

  OUT/truncate_offsets   offsets at which to cut BASE (0, 1, small ones, then every ~size/200),
                         leaving out the top-level field boundaries at which a cut model is still
                         a well-formed message
  OUT/bad/NAME/model.onnx  one malformed model per folder (external data resolves to the folder):
                         random bytes, a 1 KB model declaring 10^12 elements, nested-message bombs,
                         external data that escapes its folder or does not match its dims
  OUT/outside/secret.bin a file outside every model folder, the target of the escape attempts
  OUT/good/NAME/model.onnx valid models with external data, for the round-trip check
  OUT/external_escapes   names of the bad cases whose refusal must be about the folder
Deterministic (fixed random seed), so a failure can be reproduced.
"""
import os
import random
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper


def varint(n):
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        if n:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def field(number, payload):
    """A length-delimited protobuf field."""
    return varint(number << 3 | 2) + varint(len(payload)) + payload


def top_level_boundaries(data):
    """Offsets after each top-level field of a serialized message."""
    cuts, p = {0}, 0
    while p < len(data):
        key, p = read_varint(data, p)
        wire = key & 7
        if wire == 0:
            _, p = read_varint(data, p)
        elif wire == 1:
            p += 8
        elif wire == 5:
            p += 4
        elif wire == 2:
            n, p = read_varint(data, p)
            p += n
        else:
            raise ValueError("unexpected wire type")
        cuts.add(p)
    return cuts


def read_varint(data, p):
    value = shift = 0
    while True:
        byte = data[p]
        p += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            return value, p


def small_model(initializers, inputs=("X",)):
    """Y = X + W (or Identity) with the given initializers, opset 13."""
    w = initializers[0].name if initializers else None
    node = helper.make_node("Add", ["X", w], ["Y"]) if w else helper.make_node("Identity", ["X"], ["Y"])
    graph = helper.make_graph(
        [node], "g",
        [helper.make_tensor_value_info("X", TensorProto.FLOAT, [2, 3])],
        [helper.make_tensor_value_info("Y", TensorProto.FLOAT, [2, 3])],
        initializer=initializers)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])


def external_tensor(name, dims, location, offset=None, length=None):
    t = TensorProto(name=name, data_type=TensorProto.FLOAT, dims=dims,
                    data_location=TensorProto.EXTERNAL)
    for key, value in (("location", location), ("offset", offset), ("length", length)):
        if value is not None:
            entry = t.external_data.add()
            entry.key, entry.value = key, str(value)
    return t


def write(path, data):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)


def main():
    base_path, out = sys.argv[1], sys.argv[2]
    base = open(base_path, "rb").read()
    rng = random.Random(20240601)

    # Truncations.
    size = len(base)
    offsets = set(range(0, min(size, 17))) | {size - 1, size - 2, size // 2}
    offsets |= set(range(0, size, max(1, size // 200)))
    offsets = sorted(o for o in offsets - top_level_boundaries(base) if 0 <= o < size)
    offsets = [0] + offsets if 0 not in offsets else offsets  # empty file: no graph, must fail
    with open(os.path.join(out, "truncate_offsets"), "w") as f:
        f.write("\n".join(map(str, offsets)) + "\n")

    bad = lambda name: os.path.join(out, "bad", name, "model.onnx")

    # Random bytes, of sizes from 1 byte to 64 KB.
    for i in range(50):
        n = rng.choice([1, 2, 7, 64, 1000, 4096, 65536]) if i < 20 else rng.randint(1, 20000)
        write(bad(f"random_{i:02d}"), bytes(rng.getrandbits(8) for _ in range(n)))

    # A 1 KB model declaring a 10^12-element initializer (4 TB of float32) with 16 bytes of data.
    huge = TensorProto(name="W", data_type=TensorProto.FLOAT, dims=[1000000, 1000000],
                       raw_data=b"\0" * 16)
    write(bad("huge_initializer_raw"), small_model([huge]).SerializeToString())
    huge_typed = TensorProto(name="W", data_type=TensorProto.FLOAT, dims=[1000000, 1000000],
                             float_data=[0.0] * 4)
    write(bad("huge_initializer_typed"), small_model([huge_typed]).SerializeToString())
    overflow = TensorProto(name="W", data_type=TensorProto.FLOAT, dims=[2**62, 2**62, 16],
                           raw_data=b"\0" * 16)
    write(bad("dims_overflow"), small_model([overflow]).SerializeToString())
    negative = TensorProto(name="W", data_type=TensorProto.FLOAT, dims=[-1, 4], raw_data=b"\0" * 16)
    write(bad("dims_negative"), small_model([negative]).SerializeToString())
    # The same through external data: a 16-byte file for 10^12 elements.
    write(bad("huge_initializer_external"), small_model(
        [external_tensor("W", [1000000, 1000000], "w.bin")]).SerializeToString())
    write(os.path.join(out, "bad", "huge_initializer_external", "w.bin"), b"\0" * 16)

    # Nested-message bombs (past aim's 64-level limit; protobuf-c itself recurses without one).
    # Subgraphs: Model.graph(7) -> Graph.node(1) -> Node.attribute(5) -> Attribute.g(6) -> ...
    inner = b""
    for _ in range(2000):
        inner = field(1, field(5, field(6, inner)))
    write(bad("bomb_subgraphs"), field(7, inner))
    # Types: ValueInfo.type(2) -> Type.sequence_type(4) -> Sequence.elem_type(1) -> Type ...
    t = b""
    for _ in range(20000):
        t = field(4, field(1, t))
    write(bad("bomb_types"), field(7, field(11, field(2, t))))  # Graph.input(11)

    # External data that escapes the model's folder. The target exists and has the right size,
    # so the folder rule is the only reason to refuse.
    secret = os.path.join(os.path.abspath(out), "outside", "secret.bin")
    write(secret, np.arange(6, dtype=np.float32).tobytes())
    escapes = {
        "external_absolute": secret,
        "external_dotdot": "../../outside/secret.bin",
        "external_dotdot_inner": "sub/../../../outside/secret.bin",
        "external_symlink": "link.bin",
    }
    for name, location in escapes.items():
        write(bad(name), small_model([external_tensor("W", [2, 3], location)]).SerializeToString())
    os.symlink(secret, os.path.join(out, "bad", "external_symlink", "link.bin"))
    with open(os.path.join(out, "external_escapes"), "w") as f:
        f.write("\n".join(escapes) + "\n")

    # External data that stays inside but does not match the tensor.
    ok_bytes = np.arange(6, dtype=np.float32).tobytes()
    cases = {
        "external_missing_file": (external_tensor("W", [2, 3], "nope.bin"), None),
        "external_short_file": (external_tensor("W", [2, 3], "w.bin"), ok_bytes[:20]),
        "external_offset_past_end": (external_tensor("W", [2, 3], "w.bin", offset=4096), ok_bytes),
        "external_length_mismatch": (external_tensor("W", [2, 3], "w.bin", length=8), ok_bytes),
        "external_bad_offset": (external_tensor("W", [2, 3], "w.bin", offset="-1"), ok_bytes),
        "external_no_location": (external_tensor("W", [2, 3], None), ok_bytes),
        "external_is_folder": (external_tensor("W", [2, 3], "dir"), None),
    }
    for name, (tensor, data) in cases.items():
        write(bad(name), small_model([tensor]).SerializeToString())
        if data is not None:
            write(os.path.join(out, "bad", name, "w.bin"), data)
    os.makedirs(os.path.join(out, "bad", "external_is_folder", "dir"))

    # Valid external data, written by onnx itself: one shared file, and one file per tensor.
    for name, one_file in (("external_one_file", True), ("external_per_tensor", False)):
        w = numpy_helper.from_array(np.arange(6, dtype=np.float32).reshape(2, 3), "W")
        b = numpy_helper.from_array(np.full((2, 3), 0.5, dtype=np.float32), "B")
        model = small_model([w, b])
        model.graph.node.append(helper.make_node("Add", ["Y", "B"], ["Z"]))
        model.graph.output[0].name = "Z"
        path = os.path.join(out, "good", name, "model.onnx")
        os.makedirs(os.path.dirname(path))
        onnx.save_model(model, path, save_as_external_data=True, all_tensors_to_one_file=one_file,
                        location="weights.bin" if one_file else None, size_threshold=0)


if __name__ == "__main__":
    main()
