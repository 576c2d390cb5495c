#!/usr/bin/env bash
# fast_equivalence.sh: whole models on the fast oneDNN path against the reference kernels
# (`aim run` vs `aim run --reference`), at 1 and 2 threads: the shared face-locator model on
# its test photo, and the benchmark models (bench/make_models.py's YOLOs, generated into a
# temporary folder, plus any BlazeFace model bench/run already fetched) on seeded random inputs.
#
# Tolerance: |fast - ref| <= 1e-3 * |ref| + 1e-4 * max|ref| per output. Both paths are fp32, but
# oneDNN sums convolutions in another order, and over 20-60 layers with random weights (the
# YOLOs, raw 0..255 inputs) these roundings grow to ~5e-4 relative; a wrong kernel is off by
# far more. The face-locator's boxes come out of NMS, so they must also have the same count.
# Without ../shared the face-locator part is skipped (said on stdout) and the rest still runs.
set -u

AIM=${AIM:?AIM must name the aim binary}
PYTHON=${PYTHON:-/usr/bin/python3}
SRC=${AIM_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
FACE=${AIM_SHARED:-$SRC/../shared}/models/face-locator

TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
failures=0
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }

# compare.py FAST_DIR REF_DIR: compares every output_N.pb (float TensorProto with raw_data, as
# aim writes them), parsed without the onnx package so that this needs only python3.
cat >"$TMP/compare.py" <<'EOF'
import glob, os, struct, sys

def varint(b, i):
    v = s = 0
    while True:
        c = b[i]; i += 1; v |= (c & 0x7f) << s; s += 7
        if c < 0x80: return v, i

def tensor(path):
    b = open(path, "rb").read(); i = 0; dims = []; raw = b""; dtype = 0
    while i < len(b):
        key, i = varint(b, i); field, wire = key >> 3, key & 7
        if wire == 0:
            v, i = varint(b, i)
            if field == 1: dims.append(v)
            elif field == 2: dtype = v
        elif wire == 2:
            n, i = varint(b, i); data = b[i:i + n]; i += n
            if field == 1:
                j = 0
                while j < len(data): v, j = varint(data, j); dims.append(v)
            elif field == 9: raw = data
        elif wire == 5: i += 4
        elif wire == 1: i += 8
    fmt = {1: "f", 7: "q", 6: "i", 9: "?", 2: "B", 3: "b", 11: "d"}.get(dtype)
    if fmt is None: sys.exit(f"{path}: element type {dtype} not handled")
    n = len(raw) // struct.calcsize(fmt)
    return dims, struct.unpack(f"<{n}{fmt}", raw)

bad = 0
fast_dir, ref_dir = sys.argv[1], sys.argv[2]
files = sorted(glob.glob(os.path.join(ref_dir, "output_*.pb")))
if not files: sys.exit("no outputs in " + ref_dir)
for ref_path in files:
    name = os.path.basename(ref_path)
    fd, fv = tensor(os.path.join(fast_dir, name)); rd, rv = tensor(ref_path)
    if fd != rd:
        print(f"{name}: shape {fd} (fast) vs {rd} (reference)"); bad += 1; continue
    peak = max((abs(v) for v in rv), default=0.0)
    worst = max((abs(a - b) for a, b in zip(fv, rv)), default=0.0)
    wrong = [k for k, (a, b) in enumerate(zip(fv, rv))
             if not abs(a - b) <= 1e-3 * abs(b) + 1e-4 * peak]
    if wrong:
        k = wrong[0]
        print(f"{name}: {len(wrong)} of {len(rv)} differ, e.g. [{k}] fast {fv[k]} ref {rv[k]}")
        bad += 1
    print(f"  {name} {rd}: max |diff| {worst:.3g}, max |ref| {peak:.3g}")
sys.exit(1 if bad else 0)
EOF

# check NAME MODEL INPUT_ARGS...: runs both modes at 1 and 2 threads and compares.
check() {
    local name=$1 model=$2
    shift 2
    "$AIM" run "$model" "$@" --threads 1 --reference --output-dir "$TMP/$name.ref" \
        >"$TMP/$name.ref.log" 2>&1 || { fail "$name: reference run: $(tail -3 "$TMP/$name.ref.log")"; return; }
    for t in 1 2; do
        "$AIM" run "$model" "$@" --threads $t --output-dir "$TMP/$name.fast$t" \
            >"$TMP/$name.fast$t.log" 2>&1 || { fail "$name: fast run ($t threads): $(tail -3 "$TMP/$name.fast$t.log")"; continue; }
        echo "$name, $t thread(s):"
        "$PYTHON" "$TMP/compare.py" "$TMP/$name.fast$t" "$TMP/$name.ref" || fail "$name ($t threads) differs"
    done
}

checked=0
if [ -f "$FACE/model.onnx" ]; then
    check face-locator "$FACE/model.onnx" --inputs-dir "$FACE/test_data_set_0"
    checked=$((checked + 1))
else
    echo "SKIPPED (face-locator only): $FACE/model.onnx not found (set AIM_SHARED to the shared/ folder)"
fi

# Benchmark models: generated when the generator and its Python packages are available.
if [ -f "$SRC/bench/make_models.py" ] && "$PYTHON" -c 'import onnx, numpy' 2>/dev/null; then
    "$PYTHON" "$SRC/bench/make_models.py" --out "$TMP/models" >/dev/null ||
        fail "make_models.py failed"
    for model in "$TMP"/models/*.onnx "$SRC"/bench/assets/blazeface-*.onnx; do
        [ -f "$model" ] || continue
        name=$(basename "$model" .onnx)
        mkdir -p "$TMP/in.$name"
        "$PYTHON" "$SRC/bench/make_models.py" --inputs "$model" "$TMP/in.$name" >"$TMP/in.$name.txt" ||
            { fail "$name: no inputs"; continue; }
        args=()
        while IFS= read -r pair; do args+=(--input "$pair"); done <"$TMP/in.$name.txt"
        check "$name" "$model" "${args[@]}"
        checked=$((checked + 1))
    done
else
    echo "note: benchmark models skipped (needs bench/make_models.py and $PYTHON with onnx, numpy)"
fi

if [ "$failures" -gt 0 ]; then
    echo "$failures failure(s)"
    exit 1
fi
if [ "$checked" -eq 0 ]; then
    echo "SKIPPED: no model to compare (neither the shared face-locator nor the generated ones)"
    exit 77
fi
echo "fast_equivalence: all outputs agree on $checked model(s)"
