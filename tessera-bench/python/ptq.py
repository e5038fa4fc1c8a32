"""Post-training static quantisation with ONNX Runtime's own quantiser: the anchor of
`tessera bench quant`.

This is what a user who has a float model and some unlabelled inputs, and no Tessera, would
reach for: `onnxruntime.quantization.quantize_static` in the QDQ format, INT8 weights (symmetric,
one scale per output channel) and INT8 activations (asymmetric, one scale per tensor, ranges by
min/max over the calibration inputs), on the MatMul, Gemm and Conv nodes. The benchmark hands it
the float receiver of a ModeAQ transfer and the same inputs ModeAQ calibrated on, restricted to
the nodes ModeAQ quantises with their activations, and compares what comes out with ModeAQ's
quantised receiver.

How the benchmark calls it::

    python ptq.py FLOAT.onnx CALIB.npy OUT.onnx --nodes nodes.json

`nodes.json` is a JSON list of node names (the plan's compute nodes); without `--nodes` every
MatMul, Gemm and Conv is a candidate. The calibration inputs are fed in batches of 64 under the
model's first input name with their own dtype (int64 tokens, float32 features). The model first
goes through `quant_pre_process` (shape inference and ONNX Runtime's basic graph optimisations),
ONNX Runtime's recommended first step; when that raises (symbolic shape inference needs sympy)
or renames a requested node, lighter pre-processing is tried, then the model as given. On success one JSON line goes to standard
output: the ONNX Runtime version, which pre-processing was used, and how many nodes were
requested and quantised. Requirements: `tessera-bench/python/requirements.txt`.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile

import numpy as np
import onnx
import onnxruntime
from onnxruntime.quantization import (
    CalibrationDataReader,
    CalibrationMethod,
    QuantFormat,
    QuantType,
    quantize_static,
)
from onnxruntime.quantization.shape_inference import quant_pre_process

BATCH = 64
OP_TYPES = ["MatMul", "Gemm", "Conv"]


class NpyReader(CalibrationDataReader):
    """Feeds the rows of one array in batches of `BATCH` under one input name."""

    def __init__(self, input_name: str, inputs: np.ndarray):
        self.input_name = input_name
        self.inputs = inputs
        self.start = 0

    def get_next(self):
        if self.start >= len(self.inputs):
            return None
        batch = self.inputs[self.start : self.start + BATCH]
        self.start += BATCH
        return {self.input_name: np.ascontiguousarray(batch)}

    def rewind(self):
        self.start = 0


def node_names(path: str) -> set[str]:
    """Names of the nodes of the model at `path`."""
    return {node.name for node in onnx.load(path).graph.node}


def preprocess(source: str, folder: str, wanted: list[str] | None) -> tuple[str, str]:
    """The model to quantise and which pre-processing produced it. In order: the full
    `quant_pre_process` (symbolic shape inference, ONNX shape inference, basic graph
    optimisations); without symbolic shape inference (it needs sympy, which the requirements
    leave out); ONNX shape inference alone; none. A step that raises, or renames or removes a
    node in `wanted`, falls through to the next."""
    steps = (
        ("quant_pre_process", dict()),
        ("quant_pre_process without symbolic shapes", dict(skip_symbolic_shape=True)),
        (
            "shape inference only",
            dict(skip_symbolic_shape=True, skip_optimization=True),
        ),
    )
    for index, (label, options) in enumerate(steps):
        target = os.path.join(folder, f"pre-{index}.onnx")
        try:
            quant_pre_process(source, target, **options)
        except Exception as error:  # noqa: BLE001 - any failure falls through
            print(f"ptq.py: {label} failed ({error}); falling back", file=sys.stderr)
            continue
        if wanted is not None and not set(wanted) <= node_names(target):
            print(f"ptq.py: {label} renamed requested nodes; falling back", file=sys.stderr)
            continue
        return target, label
    return source, "none"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model", help="float ONNX model")
    parser.add_argument("calibration", help=".npy of calibration inputs [N, ...]")
    parser.add_argument("output", help="where the quantised QDQ model goes")
    parser.add_argument("--nodes", help="JSON file: list of node names to quantise")
    args = parser.parse_args()

    wanted = None
    if args.nodes:
        with open(args.nodes, encoding="utf-8") as handle:
            wanted = [str(name) for name in json.load(handle)]
        missing = sorted(set(wanted) - node_names(args.model))
        if missing:
            print(f"ptq.py: the model has no nodes named {missing}", file=sys.stderr)
            return 2

    inputs = np.load(args.calibration)
    with tempfile.TemporaryDirectory() as folder:
        model_path, pre = preprocess(args.model, folder, wanted)
        input_name = onnx.load(model_path).graph.input[0].name
        quantize_static(
            model_path,
            args.output,
            NpyReader(input_name, inputs),
            quant_format=QuantFormat.QDQ,
            per_channel=True,
            activation_type=QuantType.QInt8,
            weight_type=QuantType.QInt8,
            op_types_to_quantize=OP_TYPES,
            nodes_to_quantize=wanted,
            calibrate_method=CalibrationMethod.MinMax,
            extra_options={"ActivationSymmetric": False, "WeightSymmetric": True},
        )
    quantised = onnx.load(args.output)
    dequantised = {
        node.input[0]
        for node in quantised.graph.node
        if node.op_type == "DequantizeLinear"
    }
    initializers = {init.name for init in quantised.graph.initializer}
    # A compute node counts as quantised when one of its inputs is a dequantised stored weight.
    done = sum(
        1
        for node in quantised.graph.node
        if node.op_type in OP_TYPES
        and any(
            producer.op_type == "DequantizeLinear"
            and producer.input[0] in initializers
            and producer.output[0] in node.input
            for producer in quantised.graph.node
        )
    )
    print(
        json.dumps(
            {
                "onnxruntime": onnxruntime.__version__,
                "preprocess": pre,
                "calibration_rows": int(len(inputs)),
                "requested_nodes": None if wanted is None else len(wanted),
                "quantised_nodes": done,
                "dequantised_tensors": len(dequantised),
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
