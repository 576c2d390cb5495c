#!/usr/bin/env bash
# toolchain.sh: `aim-toolchain <input-path> <output-directory>` (the OAAX toolchain program).
# Good inputs: a tar.gz with a small conventions CNN, a Hailo-style config and skimage photos in
# nested folders, and a zip without config: exit 0, <name>.cpu-int8.onnx + logs.json written,
# input/output names, types and shapes kept (checked with python onnx). Bad inputs: two models,
# no images, bad JSON, a wrongly typed config key, `..` and symlink entries, a bare .onnx, a
# non-archive, a missing input, an output path that is a file, wrong argument counts: each
# exits non-zero (< 128) with a message naming the problem, writes nothing outside the output
# folder, and leaves no temporary folder behind. Fails (does not skip) when compiling fails.
set -u

BUILD=${AIM_BUILD_DIR:?AIM_BUILD_DIR must name the build folder}
TC=${AIM_TOOLCHAIN:-$BUILD/aim-toolchain}
PYTHON=${PYTHON:-/usr/bin/python3}
HERE=$(cd "$(dirname "$0")" && pwd)
HELPER="$HERE/toolchain_inputs.py"
PHOTOS=/usr/lib/python3/dist-packages/skimage/data
if ! "$PYTHON" -c 'import onnx, numpy' 2>/dev/null; then
    echo "SKIPPED: $PYTHON cannot import onnx and numpy"
    exit 77
fi
if [ ! -f "$PHOTOS/astronaut.png" ]; then
    echo "SKIPPED: $PHOTOS has no photos (install python3-skimage: scripts/setup)"
    exit 77
fi
[ -x "$TC" ] || { echo "FAIL: $TC is not built"; exit 1; }

TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
export TMPDIR="$TMP/tmpdir" # aim-toolchain's own temporary folders land here
mkdir -p "$TMPDIR"
failures=0
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }

"$PYTHON" "$HELPER" model "$TMP/net.onnx" || { echo "FAIL: cannot build the test model"; exit 1; }
CONFIG='{"start_node_names": ["conv1"], "end_node_names": ["relu2"], "height": 64, "width": 64,
 "channels": 3, "nchw": true, "means": [123.7, 116.3, 103.5], "stds": [58.4, 57.1, 57.4],
 "calib_method": "minmax", "calib_size": 8, "hw_arch": "hailo8"}'
IMAGES=("calib/day/astronaut.png=$PHOTOS/astronaut.png" "calib/day/coffee.png=$PHOTOS/coffee.png"
        "calib/night/deep/chelsea.png=$PHOTOS/chelsea.png" "calib/camera.png=$PHOTOS/camera.png"
        "calib/hubble.jpg=$PHOTOS/hubble_deep_field.jpg")

# ---- good: tar.gz with config, images in nested folders ----
"$PYTHON" "$HELPER" archive "$TMP/good.tar.gz" tar.gz "models/net.onnx=$TMP/net.onnx" \
    "config.json=@$CONFIG" "${IMAGES[@]}" "README.txt=@hello" "__MACOSX/._x.png=@junk"
"$TC" "$TMP/good.tar.gz" "$TMP/out1/nested" >"$TMP/stdout" 2>"$TMP/stderr"
rc=$?
cat "$TMP/stdout" "$TMP/stderr"
if [ $rc -ne 0 ]; then
    fail "good tar.gz: exit $rc (aim compile/AimProgram missing or failing?)"
else
    [ -f "$TMP/out1/nested/net.cpu-int8.onnx" ] || fail "good tar.gz: no net.cpu-int8.onnx"
    "$PYTHON" "$HELPER" check "$TMP/net.onnx" "$TMP/out1/nested/net.cpu-int8.onnx" \
        "$TMP/out1/nested/logs.json" || fail "good tar.gz: converted model or logs.json wrong"
    grep -q "hw_arch" "$TMP/stderr" || fail "good tar.gz: no warning about the unused key"
fi

# ---- good: zip without config, into an existing folder ----
"$PYTHON" "$HELPER" archive "$TMP/good.zip" zip "net.onnx=$TMP/net.onnx" "${IMAGES[@]:0:3}"
mkdir -p "$TMP/out2"
"$TC" "$TMP/good.zip" "$TMP/out2" >"$TMP/stdout" 2>"$TMP/stderr"
rc=$?
if [ $rc -ne 0 ]; then
    fail "good zip: exit $rc: $(cat "$TMP/stderr")"
else
    "$PYTHON" "$HELPER" check "$TMP/net.onnx" "$TMP/out2/net.cpu-int8.onnx" "$TMP/out2/logs.json" \
        >/dev/null || fail "good zip: converted model or logs.json wrong"
fi

# ---- bad inputs: non-zero (< 128) and a message holding the expected words ----
expect_error() { # NAME EXPECTED-TEXT ARGS...
    local name=$1 want=$2
    shift 2
    "$TC" "$@" >"$TMP/stdout" 2>"$TMP/stderr"
    local rc=$?
    local msg
    msg=$(head -c 300 "$TMP/stderr" | tr '\n' ' ')
    echo "$name: exit $rc: $msg"
    if [ $rc -eq 0 ] || [ $rc -ge 128 ]; then
        fail "$name: exit $rc, expected 1..127"
    elif ! grep -qF -- "$want" "$TMP/stderr"; then
        fail "$name: stderr lacks '$want'"
    fi
}

"$PYTHON" "$HELPER" archive "$TMP/two.zip" zip "a.onnx=$TMP/net.onnx" "sub/b.onnx=$TMP/net.onnx" \
    "${IMAGES[@]:0:1}"
expect_error "two models" "2 .onnx models (a.onnx, sub/b.onnx)" "$TMP/two.zip" "$TMP/o"
"$PYTHON" "$HELPER" archive "$TMP/noimg.tar" tar "net.onnx=$TMP/net.onnx" "config.json=@{}"
expect_error "no images" "no calibration images" "$TMP/noimg.tar" "$TMP/o"
"$PYTHON" "$HELPER" archive "$TMP/badjson.tar.gz" tar.gz "net.onnx=$TMP/net.onnx" \
    "config.json=@{\"height\": 64,}" "${IMAGES[@]:0:1}"
expect_error "bad JSON" "is not valid JSON" "$TMP/badjson.tar.gz" "$TMP/o"
"$PYTHON" "$HELPER" archive "$TMP/badkey.tar.gz" tar.gz "net.onnx=$TMP/net.onnx" \
    "config.json=@{\"height\": \"tall\"}" "${IMAGES[@]:0:1}"
expect_error "bad config key" "'height' must be an integer" "$TMP/badkey.tar.gz" "$TMP/o"
"$PYTHON" "$HELPER" archive "$TMP/twocfg.zip" zip "net.onnx=$TMP/net.onnx" "a.json=@{}" \
    "b.json=@{}" "${IMAGES[@]:0:1}"
expect_error "two configs" "at most one config" "$TMP/twocfg.zip" "$TMP/o"
"$PYTHON" "$HELPER" evil "$TMP/evil.tar.gz" dotdot
mkdir -p "$TMP/deep/er"
(cd "$TMP/deep/er" && expect_error "path traversal" "'..' component" "$TMP/evil.tar.gz" "$TMP/o")
[ ! -e "$TMP/evil" ] && [ ! -e "$TMP/tmpdir/evil" ] && [ ! -e "$TMP/deep/evil" ] ||
    fail "path traversal: a file was written outside"
"$PYTHON" "$HELPER" evil "$TMP/link.tar.gz" link
expect_error "symlink" "symbolic link" "$TMP/link.tar.gz" "$TMP/o"
[ ! -e /tmp/escaped.png ] || fail "symlink: /tmp/escaped.png exists"
expect_error "bare onnx" "needs calibration images" "$TMP/net.onnx" "$TMP/o"
head -c 5000 /dev/urandom >"$TMP/noise.bin"
printf '\x00\x00' | dd of="$TMP/noise.bin" conv=notrunc 2>/dev/null
expect_error "not an archive" "neither an .onnx model nor a zip" "$TMP/noise.bin" "$TMP/o"
expect_error "missing input" "No such file" "$TMP/missing.tar.gz" "$TMP/o"
touch "$TMP/afile"
expect_error "output is a file" "not a folder" "$TMP/good.zip" "$TMP/afile"
expect_error "no arguments" "expected exactly two arguments"
expect_error "one argument" "expected exactly two arguments" "$TMP/good.zip"
expect_error "three arguments" "expected exactly two arguments" "$TMP/good.zip" "$TMP/o" extra

# A failure still leaves a logs.json saying why.
"$PYTHON" - "$TMP/o/logs.json" <<'PY' || fail "logs.json after a failure"
import json, sys
d = json.load(open(sys.argv[1]))
assert d["status"] == "failed" and d["exit_code"] == 2 and d["error"], d
print("failure logs.json:", d["error"][:60].replace("\n", " "))
PY
"$TC" --help | grep -q "usage: aim-toolchain" || fail "--help"
"$TC" --version | grep -qE "^aim-toolchain [0-9]" || fail "--version"
leftover=$(ls -A "$TMPDIR")
[ -z "$leftover" ] || fail "temporary folders left behind: $leftover"

if [ $failures -ne 0 ]; then
    echo "toolchain: $failures failure(s)"
    exit 1
fi
echo "toolchain: all checks passed"
