#!/usr/bin/env bash
# cli_face_locator.sh: aim inspect/check/io/meta on the shared face-locator model (a real model
# in the manager's conventions): what inspect shows (text and JSON), that check accepts it, that
# io renames/reshapes and --conform restores the conventions, and that every file io and meta
# write is accepted by onnx.checker and reads back as expected.
set -u

AIM=${AIM:?AIM must name the aim binary}
PYTHON=${PYTHON:-/usr/bin/python3}
MODEL=${AIM_SHARED:-../shared}/models/face-locator/model.onnx
if [ ! -f "$MODEL" ]; then
    echo "SKIPPED: $MODEL not found (set AIM_SHARED to the shared/ folder)"
    exit 77
fi
if ! "$PYTHON" -c 'import onnx' 2>/dev/null; then
    echo "SKIPPED: $PYTHON cannot import onnx (install python3-onnx)"
    exit 77
fi

TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
failures=0
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }
expect_grep() { # PATTERN FILE WHAT
    grep -qF -- "$1" "$2" || fail "$3: '$1' not in output: $(head -c 2000 "$2")"
}

# ---- inspect (text) ----
"$AIM" inspect "$MODEL" >"$TMP/inspect.txt" 2>"$TMP/err" || fail "inspect exited $?: $(cat "$TMP/err")"
expect_grep "image-" "$TMP/inspect.txt" "inspect"
expect_grep "[1,3,240,320]" "$TMP/inspect.txt" "inspect image shape"
expect_grep "nms_sensitivity-" "$TMP/inspect.txt" "inspect nms input"
expect_grep "bboxes-format:xyxysc;0:face" "$TMP/inspect.txt" "inspect output"
expect_grep "[20,6]" "$TMP/inspect.txt" "inspect output shape"
expect_grep "means" "$TMP/inspect.txt" "inspect normalisation"
expect_grep "vars" "$TMP/inspect.txt" "inspect normalisation"
grep -qE "Conv +42" "$TMP/inspect.txt" || fail "inspect histogram lacks 'Conv 42'"
expect_grep "ai.onnx 12" "$TMP/inspect.txt" "inspect opset"

# ---- inspect --json ----
"$AIM" inspect "$MODEL" --json >"$TMP/inspect.json" || fail "inspect --json exited $?"
"$PYTHON" - "$TMP/inspect.json" <<'PY' || fail "inspect --json content"
import json, sys
d = json.load(open(sys.argv[1]))
def need(cond, what):
    if not cond:
        print("inspect --json:", what); sys.exit(1)
need(d["ir_version"] == 8, "ir_version")
need(d["producer_name"] == "sclblonnx", "producer_name")
need({"domain": "", "version": 12} in d["opsets"], "opsets")
ins = {i["name"]: i for i in d["inputs"]}
need(ins["image-"]["shape"] == [1, 3, 240, 320] and ins["image-"]["type"] == "float32", "image-")
need(ins["nms_sensitivity-"]["shape"] == [1], "nms_sensitivity-")
need([o["name"] for o in d["outputs"]] == ["bboxes-format:xyxysc;0:face"], "outputs")
need(d["outputs"][0]["shape"] == [20, 6], "output shape")
n = d["normalisation"]
need(n["means"] == [0, 0, 0] and n["vars"] == [1, 1, 1], "normalisation means/vars")
need(n["channels"] == 3 and n["height"] == 240 and n["width"] == 320, "normalisation dims")
ops = {o["op_type"]: o["count"] for o in d["operators"]}
need(ops.get("Conv") == 42 and d["node_count"] == 122, "operators")
counts = [o["count"] for o in d["operators"]]
need(counts == sorted(counts, reverse=True), "histogram sorted")
need(d["parameters"]["count"] > 0 and d["parameters"]["bytes"] >= 4 * d["parameters"]["count"] - 4096, "parameters")
need(d["accelerators"] == [], "accelerators")
need(d["metadata"] == {}, "metadata")
PY

# ---- check ----
"$AIM" check "$MODEL" >"$TMP/check.txt" 2>&1
rc=$?
[ $rc -eq 0 ] || fail "check exited $rc on the conforming model: $(cat "$TMP/check.txt")"
expect_grep "conforms" "$TMP/check.txt" "check"
"$AIM" check "$MODEL" --json >"$TMP/check.json" || fail "check --json exited $?"
"$PYTHON" -c 'import json,sys; d=json.load(open(sys.argv[1])); sys.exit(0 if d["conforms"] and d["errors"]==0 else 1)' \
    "$TMP/check.json" || fail "check --json does not say conforms"

# ---- io: rename and reshape ----
"$AIM" io "$MODEL" -o "$TMP/renamed.onnx" --rename image-=input0 --shape input0=1x3x480x640 \
    --rename nms_sensitivity-=post_nms_sensitivity- >"$TMP/io.txt" 2>&1 || fail "io exited $?: $(cat "$TMP/io.txt")"
expect_grep "renamed 'image-' -> 'input0'" "$TMP/io.txt" "io change log"
"$PYTHON" - "$TMP/renamed.onnx" <<'PY' || fail "renamed model content"
import onnx, sys
m = onnx.load(sys.argv[1]); onnx.checker.check_model(m)
g = m.graph
names = [i.name for i in g.input]
assert names == ["input0", "post_nms_sensitivity-"], names
dims = [d.dim_value for d in g.input[0].type.tensor_type.shape.dim]
assert dims == [1, 3, 480, 640], dims
used = {x for n in g.node for x in n.input}
assert "input0" in used and "image-" not in used, "node references not rewired"
PY
"$AIM" check "$TMP/renamed.onnx" >"$TMP/check2.txt" 2>&1
rc=$?
[ $rc -eq 1 ] || fail "check on the renamed model exited $rc, expected 1"
expect_grep "input-missing" "$TMP/check2.txt" "check on renamed"
expect_grep "--rename input0=image-" "$TMP/check2.txt" "check hint"

# ---- io --conform restores the conventions ----
"$AIM" io "$TMP/renamed.onnx" -o "$TMP/conformed.onnx" --conform >"$TMP/conform.txt" 2>&1 \
    || fail "io --conform exited $?: $(cat "$TMP/conform.txt")"
expect_grep "'input0' -> 'image-'" "$TMP/conform.txt" "conform log"
expect_grep "'post_nms_sensitivity-' -> 'nms_sensitivity-'" "$TMP/conform.txt" "conform log"
"$PYTHON" - "$TMP/conformed.onnx" <<'PY' || fail "conformed model content"
import onnx, sys
m = onnx.load(sys.argv[1]); onnx.checker.check_model(m)
names = [i.name for i in m.graph.input]
assert names == ["image-", "nms_sensitivity-"], names
assert [o.name for o in m.graph.output] == ["bboxes-format:xyxysc;0:face"]
PY
"$AIM" check "$TMP/conformed.onnx" >/dev/null 2>&1 || fail "check rejects the conformed model"

# ---- meta ----
"$AIM" meta "$TMP/conformed.onnx" -o "$TMP/meta.onnx" --set chip=hailo-8l --set author=aim >"$TMP/meta.txt" 2>&1 \
    || fail "meta --set exited $?: $(cat "$TMP/meta.txt")"
"$AIM" meta "$TMP/meta.onnx" >"$TMP/meta_list.txt" || fail "meta list exited $?"
grep -qE "^chip +hailo-8l$" "$TMP/meta_list.txt" || fail "meta list: $(cat "$TMP/meta_list.txt")"
"$AIM" meta "$TMP/meta.onnx" -o "$TMP/meta2.onnx" --unset author >/dev/null || fail "meta --unset exited $?"
"$PYTHON" - "$TMP/meta.onnx" "$TMP/meta2.onnx" <<'PY' || fail "meta files"
import onnx, sys
a = onnx.load(sys.argv[1]); onnx.checker.check_model(a)
b = onnx.load(sys.argv[2]); onnx.checker.check_model(b)
assert {p.key: p.value for p in a.metadata_props} == {"chip": "hailo-8l", "author": "aim"}
assert {p.key: p.value for p in b.metadata_props} == {"chip": "hailo-8l"}
PY
"$AIM" meta "$TMP/meta.onnx" -o "$TMP/bad.onnx" --set chip=hailo8 >"$TMP/out" 2>"$TMP/err"
rc=$?
[ $rc -eq 2 ] || fail "meta --set chip=hailo8 exited $rc, expected 2"
expect_grep "use 'hailo'" "$TMP/err" "meta wrong-spelling hint"
expect_grep "cpu-int8" "$TMP/err" "meta target list"
[ ! -e "$TMP/bad.onnx" ] || fail "meta wrote a file after refusing"

if [ $failures -ne 0 ]; then
    echo "$failures check(s) failed"
    exit 1
fi
echo "PASS"
