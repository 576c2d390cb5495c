#!/usr/bin/env bash
# run_golden.sh: `aim run` on the shared face-locator model with its ONNX test data
# (test_data_set_0) reproduces ONNX Runtime's output_0.pb (same boxes, values within 1e-4);
# --json reports the same; missing inputs, wrong shapes and unreadable or malformed files give a
# clear error and exit 2. Fails (does not skip) when the model cannot run.
set -u

AIM=${AIM:?AIM must name the aim binary}
PYTHON=${PYTHON:-/usr/bin/python3}
HERE=$(cd "$(dirname "$0")" && pwd)
DIR=${AIM_SHARED:-../shared}/models/face-locator
MODEL=$DIR/model.onnx
DATA=$DIR/test_data_set_0
if [ ! -f "$MODEL" ] || [ ! -f "$DATA/output_0.pb" ]; then
    echo "SKIPPED: $MODEL or $DATA not found (set AIM_SHARED to the shared/ folder)"
    exit 77
fi
if ! "$PYTHON" -c 'import onnx, numpy' 2>/dev/null; then
    echo "SKIPPED: $PYTHON cannot import onnx and numpy"
    exit 77
fi

TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
failures=0
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }

# ---- golden output ----
"$AIM" run "$MODEL" --inputs-dir "$DATA" --output-dir "$TMP/out" >"$TMP/run.txt" 2>"$TMP/err"
rc=$?
if [ $rc -ne 0 ]; then
    fail "aim run exited $rc: $(cat "$TMP/err")"
else
    cat "$TMP/run.txt"
    grep -qF "bboxes-format:xyxysc;0:face" "$TMP/run.txt" || fail "output name not printed"
    grep -qF "[5,6]" "$TMP/run.txt" || fail "shape [5,6] not printed"
    grep -qE "^latency: [0-9.]+ ms" "$TMP/run.txt" || fail "latency not printed"
    "$PYTHON" "$HERE/compare_tensors.py" "$TMP/out/output_0.pb" "$DATA/output_0.pb" 1e-4 \
        || fail "output_0.pb differs from ONNX Runtime's"
fi

# ---- the same inputs by name, one thread, JSON ----
"$AIM" run "$MODEL" --input "image-=$DATA/input_0.pb" --input "nms_sensitivity-=$DATA/input_1.pb" \
    --threads 1 --json >"$TMP/run.json" 2>"$TMP/err" || fail "aim run --input --json exited $?: $(cat "$TMP/err")"
"$PYTHON" - "$TMP/run.json" <<'PY' || fail "run --json content"
import json, sys
d = json.load(open(sys.argv[1]))
o = d["outputs"]
assert len(o) == 1 and o[0]["name"] == "bboxes-format:xyxysc;0:face", o
assert o[0]["type"] == "float32" and o[0]["shape"] == [5, 6], o[0]
assert abs(o[0]["max"] - 0.997283) < 1e-4 and o[0]["min"] == 0, o[0]
assert len(o[0]["first"]) == 6 and abs(o[0]["first"][0] - 0.173798) < 1e-4, o[0]["first"]
assert d["latency_ms"] > 0
PY

# ---- errors: exit 2 with a clear message ----
expect_error() { # WHAT PATTERN ARGS...
    local what=$1 pattern=$2
    shift 2
    "$AIM" run "$@" >"$TMP/out.txt" 2>"$TMP/err.txt"
    local rc=$?
    [ $rc -eq 2 ] || fail "$what: exit $rc, expected 2 ($(cat "$TMP/err.txt"))"
    grep -qF -- "$pattern" "$TMP/err.txt" || fail "$what: '$pattern' not in: $(cat "$TMP/err.txt")"
}
expect_error "missing input" "'nms_sensitivity-' is not fed" "$MODEL" --input "image-=$DATA/input_0.pb"
expect_error "wrong shape" "expects [1,3,240,320]" "$MODEL" --input "image-=$DATA/input_1.pb" \
    --input "nms_sensitivity-=$DATA/input_1.pb"
expect_error "unknown input name" "no input named 'images'" "$MODEL" --input "images=$DATA/input_0.pb"
expect_error "unreadable file" "/nonexistent/x.pb" "$MODEL" --inputs-dir "$DATA" --input "image-=/nonexistent/x.pb"
head -c 1000 "$DATA/input_0.pb" >"$TMP/truncated.pb"
expect_error "truncated TensorProto" "truncated.pb" "$MODEL" --inputs-dir "$DATA" --input "image-=$TMP/truncated.pb"
mkdir -p "$TMP/empty_dir"
expect_error "empty inputs dir" "no input_0.pb" "$MODEL" --inputs-dir "$TMP/empty_dir"
expect_error "bad option" "unknown option" "$MODEL" --bogus
expect_error "missing model" "nonexistent.onnx" "$TMP/nonexistent.onnx" --inputs-dir "$DATA"
"$PYTHON" - "$TMP/f64.pb" <<'PY'
import sys, numpy as np
from onnx import numpy_helper
t = numpy_helper.from_array(np.zeros((1, 3, 240, 320), np.float64), "image-")
open(sys.argv[1], "wb").write(t.SerializeToString())
PY
expect_error "wrong type" "image-" "$MODEL" --inputs-dir "$DATA" --input "image-=$TMP/f64.pb"

if [ $failures -ne 0 ]; then
    echo "$failures check(s) failed"
    exit 1
fi
echo "PASS"
