#!/usr/bin/env bash
# detect_faces.sh: `aim detect` on the shared face-locator model and faces.jpg finds the five
# faces of ONNX Runtime's golden output (class "face", boxes in original-image pixels within a
# few pixels, scores close), text and JSON; --sensitivity filters; --draw writes valid PNGs of
# the original size (one per image, or OUT-N.png); malformed images (truncated JPEG, random
# bytes, empty file, a PNG declaring 100000x100000 pixels, a missing file) give a clear error and
# an exit code from 1 to 127. Fails (does not skip) when the model cannot run.
set -u

AIM=${AIM:?AIM must name the aim binary}
PYTHON=${PYTHON:-/usr/bin/python3}
DIR=${AIM_SHARED:-../shared}/models/face-locator
MODEL=$DIR/model.onnx
IMAGE=$DIR/faces.jpg
GOLDEN=$DIR/test_data_set_0/output_0.pb
if [ ! -f "$MODEL" ] || [ ! -f "$IMAGE" ] || [ ! -f "$GOLDEN" ]; then
    echo "SKIPPED: $DIR (model.onnx, faces.jpg, test_data_set_0) not found (set AIM_SHARED)"
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

# ---- JSON: the five golden faces ----
"$AIM" detect "$MODEL" "$IMAGE" --json --draw "$TMP/drawn.png" >"$TMP/det.json" 2>"$TMP/err"
rc=$?
[ $rc -eq 0 ] || fail "aim detect --json exited $rc: $(cat "$TMP/err")"
"$PYTHON" - "$TMP/det.json" "$GOLDEN" <<'PY' || fail "detections differ from the golden output"
import json, sys
import numpy as np, onnx
from onnx import numpy_helper
d = json.load(open(sys.argv[1]))
t = onnx.TensorProto(); t.ParseFromString(open(sys.argv[2], "rb").read())
gold = numpy_helper.to_array(t).astype(np.float64)
img = d["images"][0]
assert (img["width"], img["height"]) == (640, 420), img
dets = img["detections"]
print(f"{len(dets)} detections; golden has {len(gold)}")
assert len(dets) == 5 == len(gold), dets
assert all(x["class"] == "face" and x["class_index"] == 0 for x in dets), dets
# golden boxes are normalised 0..1; detect reports original pixels. The tolerance (4 px,
# 0.03 in score) covers a resize that differs slightly from the reference tooling's.
scale = np.array([640, 420, 640, 420])
for g in gold:
    gb = g[:4] * scale
    best = min(dets, key=lambda x: np.abs(np.array(x["box"]) - gb).max())
    err = np.abs(np.array(best["box"]) - gb).max()
    print(f"golden {np.round(gb, 1)} score {g[4]:.4f}: aim {np.round(best['box'], 1)} "
          f"score {best['score']:.4f} (max diff {err:.3f} px)")
    assert err <= 4.0, "box too far"
    assert abs(best["score"] - g[4]) <= 0.03, "score too far"
assert img["drawn"].endswith("drawn.png")
assert d["input"] == {"layout": "NCHW", "channels": 3, "height": 240, "width": 320}, d["input"]
PY

png_size() { # FILE -> "WxH" when FILE is a PNG
    "$PYTHON" - "$1" <<'PY'
import struct, sys, zlib
b = open(sys.argv[1], "rb").read()
assert b[:8] == b"\x89PNG\r\n\x1a\n" and b[12:16] == b"IHDR", "not a PNG"
assert zlib.crc32(b[12:29]) == struct.unpack(">I", b[29:33])[0], "bad IHDR CRC"
assert b[-8:-4] == b"IEND", "no IEND"
w, h = struct.unpack(">II", b[16:24])
print(f"{w}x{h}")
PY
}
[ "$(png_size "$TMP/drawn.png" 2>&1)" = "640x420" ] || fail "--draw: $(png_size "$TMP/drawn.png" 2>&1)"

# ---- text ----
"$AIM" detect "$MODEL" "$IMAGE" >"$TMP/det.txt" 2>"$TMP/err" || fail "aim detect exited $?: $(cat "$TMP/err")"
cat "$TMP/det.txt"
grep -qF "640x420, 5 box(es)" "$TMP/det.txt" || fail "text: no '640x420, 5 box(es)'"
[ "$(grep -c '^  face ' "$TMP/det.txt")" -eq 5 ] || fail "text: not five 'face' lines"
grep -qE "^  face +0\.997  x1=111\.[0-9] y1=240\.[0-9]" "$TMP/det.txt" || fail "text: first box"

# ---- sensitivity: the NMS score threshold ----
"$AIM" detect "$MODEL" "$IMAGE" --sensitivity 0.9 >"$TMP/det9.txt" 2>&1 || fail "--sensitivity 0.9 exited $?"
grep -qF "2 box(es)" "$TMP/det9.txt" || fail "--sensitivity 0.9: $(cat "$TMP/det9.txt")"

# ---- several images ----
cp "$IMAGE" "$TMP/copy.jpg"
"$AIM" detect "$MODEL" "$IMAGE" "$TMP/copy.jpg" --draw "$TMP/multi.png" >"$TMP/multi.txt" 2>&1 \
    || fail "two images exited $?: $(cat "$TMP/multi.txt")"
for k in 0 1; do
    [ "$(png_size "$TMP/multi-$k.png" 2>&1)" = "640x420" ] || fail "multi-$k.png missing or wrong"
done
[ "$(grep -c '5 box(es)' "$TMP/multi.txt")" -eq 2 ] || fail "two images: $(cat "$TMP/multi.txt")"
"$AIM" detect "$MODEL" "$IMAGE" "$TMP/copy.jpg" --draw "$TMP/a.png" --draw "$TMP/b.png" >/dev/null 2>&1 \
    || fail "one --draw per image exited $?"
[ -f "$TMP/a.png" ] && [ -f "$TMP/b.png" ] || fail "one --draw per image: files missing"

# ---- errors: clear message, exit 1..127 ----
expect_error() { # WHAT PATTERN ARGS...
    local what=$1 pattern=$2
    shift 2
    "$AIM" detect "$@" >"$TMP/out.txt" 2>"$TMP/err.txt"
    local rc=$?
    { [ $rc -ge 1 ] && [ $rc -lt 128 ]; } || fail "$what: exit $rc, expected 1..127"
    grep -qF "aim detect: " "$TMP/err.txt" || fail "$what: no 'aim detect:' message"
    grep -qiF -- "$pattern" "$TMP/err.txt" || fail "$what: '$pattern' not in: $(cat "$TMP/err.txt")"
}
head -c 6000 "$IMAGE" >"$TMP/truncated.jpg"
expect_error "truncated JPEG" "truncated JPEG" "$MODEL" "$TMP/truncated.jpg"
# --json with a good and a bad image: exit 2, and stdout is still one complete JSON document
# that holds the good image's result and names the one that failed.
rc=0
"$AIM" detect "$MODEL" "$IMAGE" "$TMP/truncated.jpg" --json >"$TMP/partial.json" 2>/dev/null || rc=$?
[ $rc -eq 2 ] || fail "--json with a bad image: exit $rc, expected 2"
"$PYTHON" - "$TMP/partial.json" "$TMP/truncated.jpg" <<'PY' || fail "--json output after a failure"
import json, sys
doc = json.load(open(sys.argv[1]))
assert len(doc["images"]) == 1, doc["images"]
assert doc["failed_image"] == sys.argv[2], doc.get("failed_image")
PY
head -c 4096 /dev/urandom >"$TMP/random.jpg"
expect_error "random bytes" "not a JPEG or PNG" "$MODEL" "$TMP/random.jpg"
: >"$TMP/empty.png"
expect_error "empty file" "empty" "$MODEL" "$TMP/empty.png"
"$PYTHON" - "$TMP/huge.png" <<'PY'
import struct, sys, zlib
ihdr = b"IHDR" + struct.pack(">IIBBBBB", 100000, 100000, 8, 2, 0, 0, 0)
idat = b"IDAT" + zlib.compress(b"\0" * 1000)
chunk = lambda c: struct.pack(">I", len(c) - 4) + c + struct.pack(">I", zlib.crc32(c))
open(sys.argv[1], "wb").write(b"\x89PNG\r\n\x1a\n" + chunk(ihdr) + chunk(idat) + chunk(b"IEND"))
PY
expect_error "huge PNG" "100000x100000" "$MODEL" "$TMP/huge.png"
expect_error "missing image" "cannot open" "$MODEL" "$TMP/nonexistent.jpg"
expect_error "no image" "at least one IMAGE" "$MODEL"
expect_error "bad sensitivity" "--sensitivity needs" "$MODEL" "$IMAGE" --sensitivity 2
expect_error "draw count" "--draw" "$MODEL" "$IMAGE" "$TMP/copy.jpg" "$TMP/copy.jpg" \
    --draw "$TMP/x.png" --draw "$TMP/y.png"
expect_error "missing model" "cannot open" "$TMP/nonexistent.onnx" "$IMAGE"
if "$AIM" io "$MODEL" -o "$TMP/renamed.onnx" --rename image-=input0 >/dev/null 2>&1; then
    expect_error "model without image-" "no input named 'image-'" \
        "$TMP/renamed.onnx" "$IMAGE"
else
    fail "aim io --rename could not make the test model"
fi

if [ $failures -ne 0 ]; then
    echo "$failures check(s) failed"
    exit 1
fi
echo "PASS"
