#!/usr/bin/env bash
# roundtrip_testdata.sh: every model.onnx of Debian's libonnx-testdata goes through
# `aim convert`, and compare_models.py checks that each output is the same protobuf message as
# its input (onnx.load on both, ==). All must pass. Skipped (77) only when the package is absent.
# Environment (set by ctest): AIM (the aim binary), PYTHON (a python3 with onnx).
set -euo pipefail

data=${AIM_TESTDATA:-/usr/share/libonnx-testdata/data}
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
: "${AIM:?AIM must name the aim binary}"
PYTHON=${PYTHON:-/usr/bin/python3}
if [ ! -d "$data" ]; then
    echo "SKIP: $data not found (install Debian's libonnx-testdata)"
    exit 77
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/aim-roundtrip.XXXXXX")
trap 'rm -rf "$work"' EXIT

mapfile -t models < <(find "$data" -name model.onnx | sort)
[ ${#models[@]} -gt 0 ] || { echo "FAIL: no model.onnx under $data"; exit 1; }

converted=0
convert_failed=0
: >"$work/pairs"
for model in "${models[@]}"; do
    rel=${model#"$data"/}
    out=$work/out/${rel%/model.onnx}/model.onnx
    mkdir -p "$(dirname "$out")"
    if "$AIM" convert "$model" -o "$out" 2>"$work/stderr"; then
        converted=$((converted + 1))
        printf '%s\t%s\n' "$model" "$out" >>"$work/pairs"
    else
        convert_failed=$((convert_failed + 1))
        echo "FAIL convert $rel: $(head -c 300 "$work/stderr")"
    fi
done
echo "convert: $converted passed, $convert_failed failed (of ${#models[@]} models)"

compare_ok=0
"$PYTHON" "$here/compare_models.py" "$work/pairs" || compare_ok=$?
[ "$convert_failed" -eq 0 ] && [ "$compare_ok" -eq 0 ]
