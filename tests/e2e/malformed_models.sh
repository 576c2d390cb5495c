#!/usr/bin/env bash
# malformed_models.sh: aim must refuse broken and hostile models cleanly: exit 1 or 2 (never 0,
# never a signal), a message on stderr, and no output file (nor temporary) left behind.
# Inputs (see make_malformed.py): a real model cut at ~200 offsets, 50 random-byte files, a tiny
# model declaring 10^12 elements, nested-message bombs, external data escaping its folder
# (absolute path, '..', symbolic link) or not matching its tensor. Each goes through
# `aim convert`, and through `aim inspect` and `aim check` where those commands exist.
# Valid external data (written by onnx itself) must round-trip through `aim convert`, file
# contents included.
# Environment (set by ctest): AIM, PYTHON, AIM_SHARED.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
: "${AIM:?AIM must name the aim binary}"
PYTHON=${PYTHON:-/usr/bin/python3}
data=${AIM_TESTDATA:-/usr/share/libonnx-testdata/data}

base=${AIM_SHARED:-}/models/face-locator/model.onnx
[ -f "$base" ] || base=$data/node/test_conv_with_strides_padding/model.onnx
if [ ! -f "$base" ]; then
    echo "SKIP: neither ../shared/models/face-locator nor libonnx-testdata is present"
    exit 77
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/aim-malformed.XXXXXX")
trap 'rm -rf "$work"' EXIT
"$PYTHON" "$here/make_malformed.py" "$base" "$work"

# Commands to try on each bad model; inspect and check only once they are built.
commands=(convert)
for cmd in inspect check; do
    if "$AIM" "$cmd" --help >/dev/null 2>&1; then commands+=("$cmd"); fi
done
echo "base model: $base; commands: ${commands[*]}"

passed=0
failed=0
fail() {
    failed=$((failed + 1))
    echo "FAIL $*"
}

# expect_refusal NAME MODEL [STDERR_PATTERN]: every command must refuse MODEL cleanly.
expect_refusal() {
    local name=$1 model=$2 pattern=${3:-} cmd rc ok
    for cmd in "${commands[@]}"; do
        rm -rf "$work/out" && mkdir "$work/out"
        rc=0
        if [ "$cmd" = convert ]; then
            "$AIM" convert "$model" -o "$work/out/model.onnx" >"$work/stdout" 2>"$work/stderr" || rc=$?
        else
            "$AIM" "$cmd" "$model" >"$work/stdout" 2>"$work/stderr" || rc=$?
        fi
        ok=1
        if [ "$rc" -ne 1 ] && [ "$rc" -ne 2 ]; then
            fail "$cmd $name: exit code $rc (expected 1 or 2$([ "$rc" -ge 128 ] && echo ", got a signal"))"
            ok=0
        elif [ ! -s "$work/stderr" ]; then
            fail "$cmd $name: exit $rc with nothing on stderr"
            ok=0
        elif [ -n "$pattern" ] && ! grep -qiE "$pattern" "$work/stderr"; then
            fail "$cmd $name: stderr does not match /$pattern/: $(head -c 300 "$work/stderr")"
            ok=0
        fi
        if [ -n "$(ls -A "$work/out")" ]; then
            fail "$cmd $name: left files behind: $(ls -A "$work/out" | tr '\n' ' ')"
            ok=0
        fi
        [ "$ok" -eq 0 ] || passed=$((passed + 1))
    done
}

# 1. Truncations of the base model.
mkdir -p "$work/cut"
while read -r offset; do
    head -c "$offset" "$base" >"$work/cut/model.onnx"
    expect_refusal "truncated@$offset" "$work/cut/model.onnx"
done <"$work/truncate_offsets"
echo "truncations: $(wc -l <"$work/truncate_offsets") offsets of $(stat -c %s "$base") bytes"

# 2. Random bytes, huge declarations, bombs, bad external data.
for dir in "$work"/bad/*/; do
    name=$(basename "$dir")
    pattern=
    grep -qx "$name" "$work/external_escapes" && pattern="absolute|'\.\.'|outside"
    expect_refusal "$name" "$dir/model.onnx" "$pattern"
done

# 3. Valid external data round-trips, file contents included.
: >"$work/pairs"
for dir in "$work"/good/*/; do
    name=$(basename "$dir")
    mkdir -p "$work/good-out/$name"
    if "$AIM" convert "$dir/model.onnx" -o "$work/good-out/$name/model.onnx" 2>"$work/stderr"; then
        printf '%s\t%s\n' "$dir/model.onnx" "$work/good-out/$name/model.onnx" >>"$work/pairs"
        # every external file onnx wrote must be written beside the output too
        for f in "$dir"/*; do
            [ "$(basename "$f")" = model.onnx ] && continue
            cmp -s "$f" "$work/good-out/$name/$(basename "$f")" ||
                fail "convert $name: external file $(basename "$f") missing or different"
        done
    else
        fail "convert $name (valid external data): $(head -c 300 "$work/stderr")"
    fi
done
if "$PYTHON" "$here/compare_models.py" "$work/pairs"; then
    passed=$((passed + $(wc -l <"$work/pairs")))
else
    fail "external data round trip (see above)"
fi

echo "malformed models: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
