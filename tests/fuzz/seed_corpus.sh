#!/usr/bin/env bash
# seed_corpus.sh TARGET DIR: fills DIR with a small seed corpus for a fuzz target, taken from
# Debian's libonnx-testdata: a few hand-picked models (subgraphs, tensor attributes, strings,
# optional/sequence types) plus every 25th model, or the test-data tensors (input_N.pb /
# output_N.pb) of the same cases for fuzz_tensor_load. Existing files in DIR are kept, so the
# corpus grows across runs. Does nothing (but warn) when the testdata package is absent.
set -euo pipefail

target=${1:?usage: seed_corpus.sh TARGET DIR}
dir=${2:?usage: seed_corpus.sh TARGET DIR}
data=${AIM_TESTDATA:-/usr/share/libonnx-testdata/data}
mkdir -p "$dir"
if [ ! -d "$data" ]; then
    echo "seed_corpus: $data is missing (package libonnx-testdata); starting from an empty corpus" >&2
    exit 0
fi

picked=(node/test_if node/test_if_seq node/test_loop11 node/test_loop13_seq node/test_scan9_sum
        node/test_constant node/test_constantofshape_int_zeros node/test_cast_STRING_to_FLOAT
        node/test_optional_get_element_sequence node/test_conv_with_strides_padding)
mapfile -t all < <(cd "$data" && find . -name model.onnx -printf '%h\n' | sed 's|^\./||' | sort)
for ((i = 0; i < ${#all[@]}; i += 25)); do picked+=("${all[i]}"); done

n=0
for case in "${picked[@]}"; do
    [ -d "$data/$case" ] || continue
    tag=${case//\//_}
    if [ "$target" = fuzz_tensor_load ]; then
        for pb in "$data/$case"/test_data_set_0/*.pb; do
            # only what fits run_fuzz.sh's -max_len
            [ -f "$pb" ] && [ "$(stat -c %s "$pb")" -le 65536 ] || continue
            cp "$pb" "$dir/seed_${tag}_$(basename "$pb")"
            n=$((n + 1))
        done
    else
        cp "$data/$case/model.onnx" "$dir/seed_$tag.onnx"
        n=$((n + 1))
    fi
done
echo "seed_corpus: $n seed files for $target in $dir"
