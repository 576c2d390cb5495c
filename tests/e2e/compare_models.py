"""compare_models.py PAIRS: checks that each converted model equals its original.

PAIRS is a file of lines "ORIGINAL<TAB>CONVERTED". Both files are read with onnx.load and
compared as protobuf messages (==): first as stored (external data references included), then
with external data loaded, so the bytes of external tensors are compared too. Prints one line per
mismatch and a final "N passed, M failed"; exits 1 if any failed. One process for all pairs, as
importing onnx costs more than comparing a model.
"""
import sys

import onnx


def compare(original, converted):
    """Returns None when the models are equal, else a short reason."""
    a = onnx.load(original, load_external_data=False)
    b = onnx.load(converted, load_external_data=False)
    if a != b:
        return "messages differ"
    uses_external = any(
        t.data_location == onnx.TensorProto.EXTERNAL
        for t in onnx.external_data_helper._get_all_tensors(a))
    if uses_external:
        a = onnx.load(original, load_external_data=True)
        b = onnx.load(converted, load_external_data=True)
        if a != b:
            return "external data differs"
    return None


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: compare_models.py PAIRS")
    passed = failed = 0
    with open(sys.argv[1], encoding="utf-8") as pairs:
        for line in pairs:
            original, converted = line.rstrip("\n").split("\t")
            try:
                reason = compare(original, converted)
            except Exception as e:  # a file that does not parse is a failure, not a crash
                reason = f"{type(e).__name__}: {e}"
            if reason:
                failed += 1
                print(f"FAIL {original}: {reason}")
            else:
                passed += 1
    print(f"compare: {passed} passed, {failed} failed")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
