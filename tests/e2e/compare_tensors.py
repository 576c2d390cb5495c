#!/usr/bin/env python3
"""compare_tensors.py: compares two serialized TensorProto files (used by run_golden.sh):
same name, dtype and shape, and values within an absolute tolerance.

usage: compare_tensors.py GOT.pb EXPECTED.pb [ATOL]
"""
import sys

import numpy as np
import onnx
from onnx import numpy_helper


def load(path):
    t = onnx.TensorProto()
    with open(path, "rb") as f:
        t.ParseFromString(f.read())
    return t.name, numpy_helper.to_array(t)


def main():
    got_path, exp_path = sys.argv[1], sys.argv[2]
    atol = float(sys.argv[3]) if len(sys.argv) > 3 else 1e-4
    got_name, got = load(got_path)
    exp_name, exp = load(exp_path)
    problems = []
    if got_name != exp_name:
        problems.append(f"name {got_name!r} != {exp_name!r}")
    if got.dtype != exp.dtype:
        problems.append(f"dtype {got.dtype} != {exp.dtype}")
    if got.shape != exp.shape:
        problems.append(f"shape {got.shape} != {exp.shape} (number of boxes differs?)")
    elif got.size:
        diff = np.abs(got.astype(np.float64) - exp.astype(np.float64))
        print(f"{got_path}: max abs diff {diff.max():.3g} (tolerance {atol})")
        if not diff.max() <= atol:
            problems.append(f"values differ by up to {diff.max():.6g}:\n got {got}\n expected {exp}")
    for p in problems:
        print(f"{got_path}: {p}")
    sys.exit(1 if problems else 0)


if __name__ == "__main__":
    main()
