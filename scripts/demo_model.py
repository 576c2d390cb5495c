"""demo_model.py OUT: writes a small model that follows the manager's conventions, for
scripts/demo when ../shared/models is not there. A two-class classifier on a 1x3x64x64 image:
GlobalAveragePool -> Flatten -> Gemm -> Softmax, output `scores-0:Cat;1:Dog`, normalisation
JSON in graph.doc_string, opset 13. Deterministic weights; only onnx and numpy are needed.
"""
import os
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper


def main():
    out = sys.argv[1]
    w = numpy_helper.from_array(np.array([[0.01, -0.01], [0.02, 0.0], [-0.01, 0.02]], np.float32), "W")
    b = numpy_helper.from_array(np.zeros(2, np.float32), "B")
    nodes = [
        helper.make_node("GlobalAveragePool", ["image-"], ["pooled"], name="pool"),
        helper.make_node("Flatten", ["pooled"], ["flat"], name="flatten"),
        helper.make_node("Gemm", ["flat", "W", "B"], ["logits"], name="fc"),
        helper.make_node("Softmax", ["logits"], ["scores-0:Cat;1:Dog"], name="softmax", axis=1),
    ]
    graph = helper.make_graph(
        nodes, "demo-classifier",
        [helper.make_tensor_value_info("image-", TensorProto.FLOAT, [1, 3, 64, 64])],
        [helper.make_tensor_value_info("scores-0:Cat;1:Dog", TensorProto.FLOAT, [1, 2])],
        initializer=[w, b],
        doc_string='{"means": [0, 0, 0], "vars": [255, 255, 255]}')
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)],
                              producer_name="aim-demo", producer_version="1")
    model.ir_version = 8
    onnx.checker.check_model(model, full_check=True)
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    onnx.save(model, out)


if __name__ == "__main__":
    main()
