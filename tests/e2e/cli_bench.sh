#!/usr/bin/env bash
# cli_bench.sh: `aim bench` on a small generated model (make_compile_model.py conv: Conv, Relu,
# Add, MaxPool, Reshape, Softmax): the JSON report is complete and consistent (percentiles in
# order, the iterations asked for), --profile accounts for every step of the plan (per-kind sums
# equal the per-step sums, kinds name the fast kernels, the steps' time fits
# in the measured latency), --top limits the listing, and bad arguments exit 2 with a message.
set -u

AIM=${AIM:?AIM must name the aim binary}
PYTHON=${PYTHON:-/usr/bin/python3}
HERE=$(cd "$(dirname "$0")" && pwd)
if ! "$PYTHON" -c 'import onnx, numpy' 2>/dev/null; then
    echo "SKIPPED: $PYTHON cannot import onnx and numpy (scripts/setup installs them)"
    exit 77
fi
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
failures=0
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }

"$PYTHON" "$HERE/make_compile_model.py" conv "$TMP/net.onnx" || { echo "FAIL: model"; exit 1; }

"$AIM" bench "$TMP/net.onnx" --threads 1 --iterations 7 --warmup 2 --profile --json \
    >"$TMP/p.json" 2>"$TMP/err" || fail "bench --profile --json: $(cat "$TMP/err")"
"$PYTHON" - "$TMP/p.json" <<'PY' || fail "bench --profile --json report is inconsistent"
import json, sys
r = json.load(open(sys.argv[1]))
lat = r["latency_ms"]
problems = []
if r["iterations"] != 7 or r["warmup"] != 2 or r["threads"] != 1:
    problems.append("iterations/warmup/threads not as asked")
if not (0 < lat["min"] <= lat["p50"] <= lat["p90"] <= lat["p99"] <= lat["max"]):
    problems.append(f"percentiles out of order: {lat}")
p = r["profile"]
steps, kinds = p["steps"], p["kinds"]
if not steps:
    problems.append("no steps")
total_steps = sum(s["ms_per_run"] for s in steps)
total_kinds = sum(k["ms_per_run"] for k in kinds)
if abs(total_steps - total_kinds) > 1e-9 * max(1.0, total_steps):
    problems.append(f"kinds sum {total_kinds} != steps sum {total_steps}")
if abs(p["step_ms_per_run"] - total_steps) > 1e-9 * max(1.0, total_steps):
    problems.append("step_ms_per_run is not the sum of the steps")
if sum(k["steps"] for k in kinds) != len(steps):
    problems.append("kinds do not count every step once")
if total_steps > lat["mean"] * 1.05 + 0.01:
    problems.append(f"steps take {total_steps} ms, more than a run ({lat['mean']} ms)")
names = {k["kind"] for k in kinds}
for want in ("maxpool", "softmax"):
    if want not in names:
        problems.append(f"no '{want}' step among {sorted(names)}")
if any(s["ms_per_run"] < 0 or not s["output"] for s in steps):
    problems.append("a step with negative time or no output name")
if [k["ms_per_run"] for k in kinds] != sorted((k["ms_per_run"] for k in kinds), reverse=True):
    problems.append("kinds not sorted by time")
for msg in problems:
    print("  " + msg)
sys.exit(1 if problems else 0)
PY

"$AIM" bench "$TMP/net.onnx" --threads 1 --iterations 3 --warmup 0 --profile --top 2 \
    >"$TMP/p.txt" 2>"$TMP/err" || fail "bench --profile: $(cat "$TMP/err")"
grep -q '^profile ' "$TMP/p.txt" || fail "bench --profile: no profile line"
listed=$(sed -n '/slowest 2 step/,$p' "$TMP/p.txt" | grep -c '%  ')
[ "$listed" = 2 ] || fail "bench --profile --top 2 listed $listed steps"
"$AIM" bench "$TMP/net.onnx" --iterations 2 --warmup 0 >"$TMP/plain.txt" 2>&1 || fail "bench"
grep -q '^profile' "$TMP/plain.txt" && fail "bench without --profile printed a profile"

for bad in "--top x" "--top -1" "--iterations 0" "--profile --bogus"; do
    # shellcheck disable=SC2086
    "$AIM" bench "$TMP/net.onnx" $bad >/dev/null 2>"$TMP/err"
    rc=$?
    [ $rc -eq 2 ] || fail "aim bench $bad exited $rc, expected 2"
    grep -q '^aim bench: ' "$TMP/err" || fail "aim bench $bad: no 'aim bench:' message"
done

if [ $failures -ne 0 ]; then
    echo "cli_bench: $failures failure(s)"
    exit 1
fi
echo "cli_bench: all checks passed"
