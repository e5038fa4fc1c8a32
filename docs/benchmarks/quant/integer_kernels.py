"""Where ONNX Runtime's integer kernels pay for quantising their input.

Times one `Gemm` layer (after a `Relu`, as in a real graph) in float against the same layer in
the QDQ layout ModeAQ writes (`QuantizeLinear` -> `DequantizeLinear` on the input, an int8
weight with per-channel scales, an int32 bias), for reduction depths K, output widths N and
rows per run; each timing is the best of 7 blocks, the two models alternating. The rule that
`--min-integer-macs` applies (an integer kernel only where a layer does at least 16 384
multiply-accumulates per sample and sums over at least 32 values) comes from this table.

    python integer_kernels.py [ROWS,...]   # default 8,64,512; prints a Markdown table

Needs numpy, onnx and onnxruntime (tessera-bench/python/requirements.txt).
"""

import itertools
import sys
import time

import numpy as np
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

RNG = np.random.default_rng(0)
DEPTHS = [8, 64, 128, 512]
WIDTHS = [10, 64, 128, 256, 512]


def layer(depth, width, quantised):
    """A session running Relu -> Gemm, in float or in the QDQ layout."""
    weight = RNG.standard_normal((width, depth)).astype(np.float32) * 0.1
    bias = RNG.standard_normal(width).astype(np.float32) * 0.1
    nodes = [helper.make_node("Relu", ["x"], ["r"])]
    initializers = []
    source = "r"
    if quantised:
        weight_scale = np.abs(weight).max(1) / 127
        input_scale = np.float32(4 / 255)
        initializers = [
            numpy_helper.from_array(
                np.clip(np.round(weight / weight_scale[:, None]), -127, 127).astype(np.int8), "wq"
            ),
            numpy_helper.from_array(weight_scale.astype(np.float32), "ws"),
            numpy_helper.from_array(np.zeros(width, np.int8), "wz"),
            numpy_helper.from_array(np.array(input_scale, np.float32), "xs"),
            numpy_helper.from_array(np.array(0, np.uint8), "xz"),
            numpy_helper.from_array(
                np.round(bias / (input_scale * weight_scale)).astype(np.int32), "bq"
            ),
            numpy_helper.from_array((input_scale * weight_scale).astype(np.float32), "bs"),
        ]
        nodes += [
            helper.make_node("QuantizeLinear", ["r", "xs", "xz"], ["xq"]),
            helper.make_node("DequantizeLinear", ["xq", "xs", "xz"], ["xd"]),
            helper.make_node("DequantizeLinear", ["wq", "ws", "wz"], ["w"], axis=0),
            helper.make_node("DequantizeLinear", ["bq", "bs"], ["b"], axis=0),
        ]
        source = "xd"
    else:
        initializers = [numpy_helper.from_array(weight, "w"), numpy_helper.from_array(bias, "b")]
    nodes.append(helper.make_node("Gemm", [source, "w", "b"], ["y"], transB=1))
    graph = helper.make_graph(
        nodes,
        "layer",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["rows", depth])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["rows", width])],
        initializers,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 9
    return ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])


def block(session, inputs, runs):
    started = time.perf_counter()
    for _ in range(runs):
        session.run(None, {"x": inputs})
    return (time.perf_counter() - started) / runs


def main():
    rows_list = [int(r) for r in (sys.argv[1] if len(sys.argv) > 1 else "8,64,512").split(",")]
    print(f"ONNX Runtime {ort.__version__}, CPU, default threads\n")
    print("| rows | K | N | MACs per row | float, µs | QDQ, µs | QDQ / float |")
    print("|---:|---:|---:|---:|---:|---:|---:|")
    for rows, depth, width in itertools.product(rows_list, DEPTHS, WIDTHS):
        inputs = RNG.standard_normal((rows, depth)).astype(np.float32)
        float_layer, quantised_layer = layer(depth, width, False), layer(depth, width, True)
        runs = max(20, int(4e7 / (rows * depth * width + 20000)))
        best = [float("inf"), float("inf")]
        for _ in range(7):
            for index, session in enumerate([float_layer, quantised_layer]):
                block(session, inputs, 3)
                best[index] = min(best[index], block(session, inputs, runs))
        print(
            f"| {rows} | {depth} | {width} | {depth * width} | {best[0] * 1e6:.1f} | "
            f"{best[1] * 1e6:.1f} | {best[1] / best[0]:.2f} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
