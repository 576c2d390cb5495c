#!/usr/bin/env bash
# cli_check_conventions.sh: `aim check` on small models built with onnx.helper, each breaking one
# convention (input names, dynamic shapes, output grammar, output types/shapes, opset 18,
# normalisation, chip): check exits 1 and names the right finding code; the conforming model
# exits 0. Also: `aim io --conform` fixes a model with vendor-style names and refuses an
# ambiguous one, and `aim inspect` finds HailoOp / AimProgram accelerator nodes.
set -u

AIM=${AIM:?AIM must name the aim binary}
PYTHON=${PYTHON:-/usr/bin/python3}
if ! "$PYTHON" -c 'import onnx' 2>/dev/null; then
    echo "SKIPPED: $PYTHON cannot import onnx (install python3-onnx)"
    exit 77
fi
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
failures=0
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }

"$PYTHON" - "$TMP" <<'PY' || { echo "FAIL: could not build the test models"; exit 1; }
import sys, onnx
from onnx import helper as h, TensorProto as T
out = sys.argv[1]
NORM = '{"means": [0, 0, 0], "vars": [1, 1, 1]}'
BOX = "bboxes-format:xyxysc;0:face"

def model(name, inputs=None, outputs=None, opset=17, doc=NORM, meta=None, extra_nodes=(),
          extra_opsets=(), out_values=None):
    inputs = inputs if inputs is not None else [
        ("image-", T.FLOAT, [1, 3, 8, 8]), ("nms_sensitivity-", T.FLOAT, [1])]
    outputs = outputs if outputs is not None else [(BOX, T.FLOAT, ["N", 6])]
    nodes = list(extra_nodes)
    for oname, otype, oshape in outputs:
        dims = [d if isinstance(d, int) else 2 for d in oshape] if oshape is not None else [2, 6]
        val = h.make_tensor("v", otype, dims, [0] * max(1, __import__("math").prod(dims)))
        nodes.append(h.make_node("Constant", [], [oname], value=val))
    g = h.make_graph(nodes, "g", [h.make_tensor_value_info(n, t, s) for n, t, s in inputs],
                     [h.make_tensor_value_info(n, t, s) for n, t, s in outputs], doc_string=doc)
    m = h.make_model(g, opset_imports=[h.make_opsetid("", opset)] + list(extra_opsets),
                     producer_name="aim-test")
    m.ir_version = 8
    for k, v in (meta or {}).items():
        m.metadata_props.add(key=k, value=v)
    onnx.checker.check_model(m)
    onnx.save(m, f"{out}/{name}.onnx")

model("good")
model("good_nhwc_gray", inputs=[("image-", T.FLOAT, [1, 16, 16, 1])], doc='{"means": [0], "vars": [255]}')
model("good_mask", inputs=[("image-", T.FLOAT, [1, 3, 8, 8]), ("mask-", T.BOOL, [8, 8])],
      outputs=[("scores-0:cat;1:dog", T.FLOAT, [1, 2]), ("alarm-0:fire", T.BOOL, [1, 1])])
model("wrong_input_name", inputs=[("input0", T.FLOAT, [1, 3, 8, 8])])
model("extra_input", inputs=[("image-", T.FLOAT, [1, 3, 8, 8]), ("scale", T.FLOAT, [1])])
model("dynamic", inputs=[("image-", T.FLOAT, ["N", 3, 8, 8])])
model("image_int", inputs=[("image-", T.UINT8, [1, 3, 8, 8])])
model("image_channels", inputs=[("image-", T.FLOAT, [1, 4, 8, 8])])
model("nms_shape", inputs=[("image-", T.FLOAT, [1, 3, 8, 8]), ("nms_sensitivity-", T.FLOAT, [2])])
model("bad_grammar", outputs=[("boxes", T.FLOAT, ["N", 6])])
model("bad_kind", outputs=[("detections-0:face", T.FLOAT, ["N", 6])])
model("bad_format", outputs=[("bboxes-0:face", T.FLOAT, ["N", 6])])
model("bad_format_value", outputs=[("bboxes-format:xywh;0:face", T.FLOAT, ["N", 6])])
model("dup_class", outputs=[("scores-0:cat;0:dog", T.FLOAT, [1, 2])])
model("neg_class", outputs=[("scores--1:cat", T.FLOAT, [1, 1])])
model("scores_count", outputs=[("scores-0:cat;1:dog", T.FLOAT, [1, 3])])
model("alarm_type", outputs=[("alarm-0:fire", T.FLOAT, [1, 1])])
model("bbox_width", outputs=[("bboxes-format:xyxy;0:face", T.FLOAT, ["N", 6])])
model("opset18", opset=18)
model("no_doc", doc="")
model("doc_not_json", doc="exported by torch")
model("vars_zero", doc='{"means": [0, 0, 0], "vars": [1, 0, 1]}')
model("means_count", doc='{"means": [0, 0], "vars": [1, 1, 1]}')
model("chip_wrong", meta={"chip": "hailo8"})
hef = h.make_node("HailoOp", ["image-"], ["hailo_out"], domain="ai.hailo", name="hailo0",
                  hef=b"\x01HEF" + b"\0" * 96)
model("hailo", extra_nodes=[hef], extra_opsets=[h.make_opsetid("ai.hailo", 1)], meta={"chip": "hailo"})
prog = h.make_node("AimProgram", ["image-"], ["aim_out"], domain="ai.aim", name="aim0",
                   program=b"\0" * 1234, target="cpu-int8")
model("aimprog", extra_nodes=[prog], extra_opsets=[h.make_opsetid("ai.aim", 1)])
# vendor-style names, open shapes: --conform should fix all of it
model("vendor", inputs=[("input0", T.FLOAT, [1, 3, 8, 8]), ("post_nms", T.FLOAT, ["k"]),
                        ("mask-", T.BOOL, ["h", "w"])],
      outputs=[("post_scores-0:cat;1:dog", T.FLOAT, ["a", "b"])], meta={"chip": "hailo8l"})
model("two_images", inputs=[("a", T.FLOAT, [1, 3, 8, 8]), ("b", T.FLOAT, [1, 3, 8, 8])])
PY

# expect_check NAME EXIT CODE: check --json exits EXIT and (when CODE is given) reports CODE,
# as an error when EXIT is 1.
expect_check() {
    local name=$1 want=$2 code=${3:-}
    "$AIM" check "$TMP/$name.onnx" --json >"$TMP/$name.json" 2>"$TMP/err"
    local rc=$?
    if [ $rc -ne "$want" ]; then
        fail "check $name exited $rc, expected $want: $(cat "$TMP/$name.json" "$TMP/err")"
        return
    fi
    [ -n "$code" ] || return
    "$PYTHON" - "$TMP/$name.json" "$code" "$want" <<'PY' || fail "check $name: no '$code' finding: $(cat "$TMP/$name.json")"
import json, sys
d = json.load(open(sys.argv[1]))
sev = "error" if sys.argv[3] == "1" else "warning"
ok = any(f["code"] == sys.argv[2] and f["severity"] == sev and f["message"] for f in d["findings"])
ok = ok and d["conforms"] == (sys.argv[3] == "0")
sys.exit(0 if ok else 1)
PY
}

expect_check good 0
expect_check good_nhwc_gray 0
expect_check good_mask 0
expect_check wrong_input_name 1 input-name
expect_check wrong_input_name 1 input-missing
expect_check extra_input 1 input-name
expect_check dynamic 1 input-dynamic
expect_check image_int 1 input-type
expect_check image_channels 1 input-shape
expect_check nms_shape 1 input-shape
expect_check bad_grammar 1 output-name
expect_check bad_kind 1 output-kind
expect_check bad_format 1 output-format
expect_check bad_format_value 1 output-format
expect_check dup_class 1 output-classes
expect_check neg_class 1 output-classes
expect_check scores_count 1 output-shape
expect_check alarm_type 1 output-type
expect_check bbox_width 1 output-shape
expect_check opset18 1 opset
expect_check no_doc 1 normalisation
expect_check doc_not_json 1 normalisation
expect_check vars_zero 1 normalisation
expect_check means_count 1 normalisation
expect_check chip_wrong 1 chip
expect_check hailo 0
expect_check aimprog 0 chip   # accelerator node without chip metadata: a warning

# the text report carries code, message and a fix hint
"$AIM" check "$TMP/wrong_input_name.onnx" >"$TMP/text.txt"
grep -q "input-name" "$TMP/text.txt" && grep -q -- "--rename input0=image-" "$TMP/text.txt" \
    || fail "check text lacks the code or the rename hint: $(cat "$TMP/text.txt")"
"$AIM" check "$TMP/chip_wrong.onnx" | grep -q -- "--set chip=hailo" || fail "check chip hint"

# inspect finds accelerator nodes
"$AIM" inspect "$TMP/hailo.onnx" --json >"$TMP/hailo.json" || fail "inspect hailo exited $?"
"$AIM" inspect "$TMP/aimprog.onnx" --json >"$TMP/aimprog.json" || fail "inspect aimprog exited $?"
"$PYTHON" - "$TMP/hailo.json" "$TMP/aimprog.json" <<'PY' || fail "inspect accelerators"
import json, sys
a = json.load(open(sys.argv[1]))["accelerators"]
assert len(a) == 1 and a[0]["op_type"] == "HailoOp" and a[0]["domain"] == "ai.hailo", a
assert a[0]["target"] == "hailo" and a[0]["payload_bytes"] == 100 and a[0]["payload_valid"], a
b = json.load(open(sys.argv[2]))["accelerators"]
assert len(b) == 1 and b[0]["op_type"] == "AimProgram" and b[0]["target"] == "cpu-int8", b
assert b[0]["payload_bytes"] == 1234, b
PY
"$AIM" inspect "$TMP/hailo.onnx" | grep -q "payload 100 bytes" || fail "inspect text accelerator"
"$AIM" inspect "$TMP/doc_not_json.onnx" | grep -q "not normalisation JSON" || fail "inspect non-JSON doc"

# io --conform on vendor-style names
"$AIM" io "$TMP/vendor.onnx" -o "$TMP/vendor.fixed.onnx" --conform >"$TMP/conform.txt" 2>&1 \
    || fail "conform vendor exited $?: $(cat "$TMP/conform.txt")"
"$PYTHON" - "$TMP/vendor.fixed.onnx" <<'PY' || fail "conformed vendor model: $(cat "$TMP/conform.txt")"
import onnx, sys
m = onnx.load(sys.argv[1]); onnx.checker.check_model(m)
shape = lambda v: [d.dim_value if d.HasField("dim_value") else d.dim_param for d in v.type.tensor_type.shape.dim]
ins = {i.name: shape(i) for i in m.graph.input}
assert ins == {"image-": [1, 3, 8, 8], "nms_sensitivity-": [1], "mask-": [8, 8]}, ins
outs = {o.name: shape(o) for o in m.graph.output}
assert outs == {"scores-0:cat;1:dog": [1, 2]}, outs
assert {p.key: p.value for p in m.metadata_props}["chip"] == "hailo-8l"
assert m.graph.node[0].output[0] == "scores-0:cat;1:dog"
PY
"$AIM" check "$TMP/vendor.fixed.onnx" >/dev/null || fail "check rejects the conformed vendor model"

# ambiguous: two image-like inputs; nothing written, the message names the option
"$AIM" io "$TMP/two_images.onnx" -o "$TMP/two.out.onnx" --conform >/dev/null 2>"$TMP/err"
rc=$?
[ $rc -eq 2 ] || fail "conform two_images exited $rc, expected 2"
grep -q -- "--rename a=image-" "$TMP/err" || fail "conform two_images message: $(cat "$TMP/err")"
[ ! -e "$TMP/two.out.onnx" ] || fail "conform wrote a file although ambiguous"
"$AIM" io "$TMP/two_images.onnx" -o "$TMP/two.out.onnx" --conform --rename a=image- >/dev/null 2>"$TMP/err"
rc=$?
[ $rc -eq 2 ] || fail "conform two_images with one rename exited $rc, expected 2 (b is left over)"
grep -q "'b'" "$TMP/err" || fail "conform leftover message: $(cat "$TMP/err")"
"$AIM" io "$TMP/bad_grammar.onnx" -o "$TMP/g.out.onnx" --conform >/dev/null 2>"$TMP/err"
rc=$?
[ $rc -eq 2 ] && grep -q -- "--rename 'boxes=bboxes-format" "$TMP/err" \
    || fail "conform bad_grammar exited $rc: $(cat "$TMP/err")"
"$AIM" io "$TMP/dynamic.onnx" -o "$TMP/d.out.onnx" --conform >"$TMP/out" 2>&1 || fail "conform dynamic batch exited $?"
"$AIM" check "$TMP/d.out.onnx" >/dev/null || fail "conform did not fix the dynamic batch"

if [ $failures -ne 0 ]; then
    echo "$failures check(s) failed"
    exit 1
fi
echo "PASS"
