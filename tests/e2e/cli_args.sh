#!/usr/bin/env bash
# cli_args.sh: every model subcommand handles bad invocations cleanly: --help exits 0 and prints
# usage; missing arguments, unknown options, nonexistent, empty and garbage files exit non-zero
# with an "aim CMD: ..." message on stderr, and never crash (exit status below 128).
set -u

AIM=${AIM:?AIM must name the aim binary}
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
failures=0
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }

# run NAME EXPECT ARGS...: EXPECT is 0, 2, or "nonzero"; stderr must say "aim CMD:" on failure.
run() {
    local expect=$1
    shift
    (cd "$TMP" && "$AIM" "$@") >"$TMP/out" 2>"$TMP/err"
    local rc=$?
    if [ $rc -ge 128 ]; then
        fail "aim $* crashed (exit $rc)"
        return
    fi
    case $expect in
    0) [ $rc -eq 0 ] || fail "aim $* exited $rc, expected 0: $(cat "$TMP/err")" ;;
    nonzero) [ $rc -ne 0 ] || fail "aim $* exited 0, expected failure" ;;
    *) [ $rc -eq "$expect" ] || fail "aim $* exited $rc, expected $expect: $(cat "$TMP/err")" ;;
    esac
    if [ "$expect" != 0 ] && ! grep -q "^aim $1: " "$TMP/err"; then
        fail "aim $*: no 'aim $1: ...' message on stderr (got: $(head -c 300 "$TMP/err"))"
    fi
}

: >"$TMP/empty.onnx"
head -c 4096 /dev/urandom >"$TMP/garbage.onnx"
printf '\x0a\xff\xff\xff\xff\x0f' >"$TMP/truncated.onnx"
mkdir "$TMP/dir.onnx"

for cmd in inspect check io meta; do
    for h in --help -h; do
        run 0 $cmd $h
        grep -q "^usage: aim $cmd" "$TMP/out" || fail "aim $cmd $h: no usage on stdout"
    done
    run 2 $cmd
    run 2 $cmd --no-such-option
    run 2 $cmd /nonexistent/model.onnx
    for bad in empty.onnx garbage.onnx truncated.onnx dir.onnx; do
        case $cmd in
        io) run 2 io $bad -o out.onnx --conform ;;
        meta) run 2 meta $bad ;;
        *) run 2 $cmd $bad ;;
        esac
    done
done
[ -e "$TMP/out.onnx" ] && fail "io wrote out.onnx from a bad input"

# command-specific argument errors
run 2 inspect a.onnx b.onnx
run 2 check a.onnx --json extra.onnx
run 2 io model.onnx --conform                       # no -o
run 2 io model.onnx -o                              # -o without value
run 2 io model.onnx -o out.onnx                     # nothing to do
run 2 io model.onnx -o out.onnx --rename            # missing value
run 2 io model.onnx -o out.onnx --rename noequals
run 2 io model.onnx -o out.onnx --shape x=1x0x3
run 2 io model.onnx -o out.onnx --shape x=axb
run 2 io model.onnx -o out.onnx --shape x=
run 2 io model.onnx -o out.onnx --shape x=1x2x3x4x5x6x7x8x9
run 2 io model.onnx -o out.onnx --strip-prefix ''
run 2 meta model.onnx --set chip=hailo              # change without -o
run 2 meta model.onnx -o out.onnx                   # -o without change
run 2 meta model.onnx -o out.onnx --set noequals
run 2 meta model.onnx --unset
"$AIM" nosuchcommand >/dev/null 2>&1
rc=$?
[ $rc -ne 0 ] && [ $rc -lt 128 ] || fail "aim nosuchcommand exited $rc"

if [ -n "${AIM_SHARED:-}" ] && [ -f "$AIM_SHARED/models/face-locator/model.onnx" ]; then
    M=$AIM_SHARED/models/face-locator/model.onnx
    run 2 io "$M" -o out.onnx --rename nosuch=other      # unknown tensor
    run 2 io "$M" -o out.onnx --rename image-=nms_sensitivity-   # name taken
    run 2 io "$M" -o out.onnx --shape nosuch=1
    run 2 meta "$M" -o out.onnx --set chip=gpu
    run 2 meta "$M" -o out.onnx --unset absent
    [ -e "$TMP/out.onnx" ] && fail "a refused change still wrote out.onnx"
fi

if [ $failures -ne 0 ]; then
    echo "$failures check(s) failed"
    exit 1
fi
echo "PASS"
