#!/usr/bin/env bash
# compile_convex.sh: the automatic region of `aim compile` on a YOLO-style route, conv0 -> relu0
# -> X -> conv1 -> Concat(relu0, conv1) -> conv2:
#   - X a Mul by a constant (not quantizable): the largest connected group of quantizable nodes
#     is not convex (relu0 -> Mul -> conv1 leaves it and comes back), so compile must take the
#     nodes after the Mul out of the region instead of failing: it exits 0, the region is exactly
#     conv0 and relu0, the text says why the Concat is not in it, the model holds one AimProgram
#     node and agrees with fp32 on a photo; the same with --gptq (both roundings tried, the
#     choice logged);
#   - X a Split into halves (a SLICE op per part in the program): the whole graph is the region
#     and agrees with fp32.
set -u

AIM=${AIM:?AIM must name the aim binary}
PYTHON=${PYTHON:-/usr/bin/python3}
HERE=$(cd "$(dirname "$0")" && pwd)
PHOTOS=/usr/lib/python3/dist-packages/skimage/data
if ! "$PYTHON" -c 'import onnx, numpy, PIL' 2>/dev/null; then
    echo "SKIPPED: $PYTHON cannot import onnx, numpy and PIL"
    exit 77
fi
if [ ! -f "$PHOTOS/astronaut.png" ]; then
    echo "SKIPPED: $PHOTOS/astronaut.png not found (install python3-skimage)"
    exit 77
fi
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
failures=0
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }

"$PYTHON" "$HERE/make_compile_model.py" route "$TMP/route.onnx" || { echo "FAIL: model"; exit 1; }
"$PYTHON" "$HERE/make_compile_model.py" split "$TMP/split.onnx" || { echo "FAIL: model"; exit 1; }
mkdir "$TMP/calib"
for f in astronaut.png coffee.png chelsea.png camera.png coins.png; do
    cp "$PHOTOS/$f" "$TMP/calib/"
done

"$AIM" compile "$TMP/route.onnx" --calib "$TMP/calib" -o "$TMP/out" --min-snr 0 \
    >"$TMP/log" 2>&1 || fail "compile exited $?: $(grep -v '\[#' "$TMP/log" | tail -3)"
grep -q '^region: 2 of 6 nodes (1 Conv)' "$TMP/log" ||
    fail "region is not conv0 + relu0: $(grep '^region' "$TMP/log")"
grep -q "stops before 'scale' (Mul): operands are not two 4-D activations" "$TMP/log" ||
    fail "no reason given for the Mul"
grep -q "stops before 'concat' (Concat): reads a region output through a node outside" \
    "$TMP/log" || fail "no reason given for the Concat: $(grep 'stops before' "$TMP/log")"

INT8=$TMP/out/route.cpu-int8.onnx
"$PYTHON" - "$INT8" <<'PY' || fail "compiled model structure"
import sys, onnx
m = onnx.load(sys.argv[1])
ops = [n.op_type for n in m.graph.node]
assert ops.count("AimProgram") == 1, ops
assert "Mul" in ops and "Concat" in ops and ops.count("Conv") == 2, ops
PY

# rocket.jpg (not a calibration image) prepared as aim does: 32x32 bilinear, (x - 127.5) / 64
"$PYTHON" - "$TMP/in.pb" "$PHOTOS/rocket.jpg" <<'PY' || fail "input tensor"
import sys, numpy as np
from PIL import Image
from onnx import numpy_helper
img = Image.open(sys.argv[2]).convert("RGB").resize((32, 32), Image.BILINEAR)
x = ((np.asarray(img, np.float32) - 127.5) / 64).transpose(2, 0, 1)[None]
open(sys.argv[1], "wb").write(numpy_helper.from_array(x, "image-").SerializeToString())
PY
"$AIM" compile "$TMP/route.onnx" --calib "$TMP/calib" -o "$TMP/gptq" --min-snr 0 --gptq \
    >"$TMP/glog" 2>&1 || fail "compile --gptq exited $?: $(grep -v '\[#' "$TMP/glog" | tail -3)"
grep -Eq 'weights rounded (by GPTQ|to nearest): mean cosine of the region outputs 0\.9' \
    "$TMP/glog" || fail "compile --gptq logged no rounding choice: $(grep -i weight "$TMP/glog")"
grep -q 'weights rounded' "$TMP/log" && fail "compile without --gptq tried GPTQ"
"$AIM" compile "$TMP/split.onnx" --calib "$TMP/calib" -o "$TMP/split" --min-snr 0 \
    >"$TMP/slog" 2>&1 || fail "compile (Split) exited $?: $(grep -v '\[#' "$TMP/slog" | tail -3)"
grep -q '^region: 6 of 6 nodes (3 Conv)' "$TMP/slog" ||
    fail "the Split route is not one region: $(grep '^region' "$TMP/slog")"

for kind in fp32 int8 gptq split-fp32 split; do
    model=$TMP/route.onnx
    [ $kind = int8 ] && model=$INT8
    [ $kind = gptq ] && model=$TMP/gptq/route.cpu-int8.onnx
    [ $kind = split-fp32 ] && model=$TMP/split.onnx
    [ $kind = split ] && model=$TMP/split/split.cpu-int8.onnx
    "$AIM" run "$model" --input "image-=$TMP/in.pb" --output-dir "$TMP/$kind" >/dev/null \
        2>"$TMP/err" || fail "aim run $kind: $(cat "$TMP/err")"
done
for kind in int8 gptq split; do
ref=$TMP/fp32
[ $kind = split ] && ref=$TMP/split-fp32
"$PYTHON" - "$ref" "$TMP/$kind" "$kind" <<'PY' || fail "$kind output disagrees with fp32"
import glob, sys, numpy as np
from onnx import TensorProto, numpy_helper
def load(d):
    t = TensorProto()
    t.ParseFromString(open(glob.glob(d + "/output_*.pb")[0], "rb").read())
    return numpy_helper.to_array(t).ravel().astype(np.float64)
a, b = load(sys.argv[1]), load(sys.argv[2])
cos = a @ b / (np.linalg.norm(a) * np.linalg.norm(b))
print(f"compile_convex: {sys.argv[3]} vs fp32 cosine {cos:.5f}")
sys.exit(0 if cos > 0.999 else 1)
PY
done

if [ $failures -ne 0 ]; then
    echo "compile_convex: $failures failure(s)"
    exit 1
fi
echo "compile_convex: all checks passed"
