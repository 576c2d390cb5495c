#!/usr/bin/env bash
# run_fuzz.sh FUZZER: runs one libFuzzer target for FUZZ_SECONDS (default 60) on its corpus in
# $AIM_BUILD_DIR/corpus/NAME (seeded by seed_corpus.sh on first use), with bounded input size,
# memory and per-input time. Crash, leak and timeout inputs are written to
# $AIM_BUILD_DIR/fuzz-artifacts/; reproduce one with `FUZZER FILE`. Exits non-zero on any finding.
set -euo pipefail

fuzzer=${1:?usage: run_fuzz.sh FUZZER}
name=$(basename "$fuzzer")
build=${AIM_BUILD_DIR:?AIM_BUILD_DIR must name the fuzz build folder}
seconds=${FUZZ_SECONDS:-60}
corpus=$build/corpus/$name
artifacts=$build/fuzz-artifacts
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

mkdir -p "$artifacts"
[ -d "$corpus" ] || bash "$here/seed_corpus.sh" "$name" "$corpus"
echo "run_fuzz: $name for ${seconds}s on $corpus ($(find "$corpus" -type f | wc -l) files)"
# -max_len: testdata models are under 8 KB; 64 KB leaves room to grow without slowing the search.
exec "$fuzzer" -max_total_time="$seconds" -max_len=65536 -rss_limit_mb=2048 -timeout=10 \
    -print_final_stats=1 -artifact_prefix="$artifacts/$name-" "$corpus"
