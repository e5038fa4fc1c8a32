"""Where ONNX Runtime's integer kernels pay for quantising their input.

Times one `Gemm` layer (after a `Relu`, as in a real graph) in float against the same layer in
the QDQ layout ModeAQ writes (`QuantizeLinear` -> `DequantizeLinear` on the input, an int8
weight with per-channel scales, an int32 bias), for reduction depths K, output widths N and
rows per run; then a 3-wide (1-D) or 3 x 3 (2-D) `Conv` with padding 1 the same way (its output
quantised too, as ModeAQ writes it), for channel counts and positions, on a batch of 64. Each
timing is the best of several blocks, the two models alternating. The rule that
`--min-integer-macs` applies (an integer kernel only where a layer does at least 16 384
multiply-accumulates per sample and sums over at least 32 values; a `Conv` only over at least
64 input channels) comes from these tables.

    python integer_kernels.py [ROWS,...]   # default 8,64,512; prints Markdown tables

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


def quantised_operands(weight, bias):
    """The initializers and nodes that give `xd` (input `r` through Q/DQ), `w` and `b` in
    ModeAQ's QDQ layout: int8 weights with one scale per output channel (axis 0), int32 bias."""
    channels = weight.shape[0]
    weight_scale = np.abs(weight.reshape(channels, -1)).max(1) / 127
    broadcast = weight_scale.reshape([-1] + [1] * (weight.ndim - 1))
    input_scale = np.float32(4 / 255)
    initializers = [
        numpy_helper.from_array(
            np.clip(np.round(weight / broadcast), -127, 127).astype(np.int8), "wq"
        ),
        numpy_helper.from_array(weight_scale.astype(np.float32), "ws"),
        numpy_helper.from_array(np.zeros(channels, np.int8), "wz"),
        numpy_helper.from_array(np.array(input_scale, np.float32), "xs"),
        numpy_helper.from_array(np.array(0, np.uint8), "xz"),
        numpy_helper.from_array(np.round(bias / (input_scale * weight_scale)).astype(np.int32), "bq"),
        numpy_helper.from_array((input_scale * weight_scale).astype(np.float32), "bs"),
    ]
    nodes = [
        helper.make_node("QuantizeLinear", ["r", "xs", "xz"], ["xq"]),
        helper.make_node("DequantizeLinear", ["xq", "xs", "xz"], ["xd"]),
        helper.make_node("DequantizeLinear", ["wq", "ws", "wz"], ["w"], axis=0),
        helper.make_node("DequantizeLinear", ["bq", "bs"], ["b"], axis=0),
    ]
    return initializers, nodes


def operands(weight, bias, quantised):
    """Relu -> the operands of the layer: the name its input goes by, initializers, nodes."""
    nodes = [helper.make_node("Relu", ["x"], ["r"])]
    if not quantised:
        return "r", [numpy_helper.from_array(weight, "w"), numpy_helper.from_array(bias, "b")], nodes
    initializers, more = quantised_operands(weight, bias)
    return "xd", initializers, nodes + more


def session(nodes, initializers, input_shape, output_shape):
    """An ONNX Runtime CPU session for the graph `x` -> nodes -> `y`."""
    graph = helper.make_graph(
        nodes,
        "layer",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, input_shape)],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, output_shape)],
        initializers,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 9
    return ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])


def layer(depth, width, quantised):
    """A session running Relu -> Gemm, in float or in the QDQ layout."""
    weight = RNG.standard_normal((width, depth)).astype(np.float32) * 0.1
    bias = RNG.standard_normal(width).astype(np.float32) * 0.1
    source, initializers, nodes = operands(weight, bias, quantised)
    nodes.append(helper.make_node("Gemm", [source, "w", "b"], ["y"], transB=1))
    return session(nodes, initializers, ["rows", depth], ["rows", width])


def convolution(in_channels, out_channels, positions, quantised):
    """A session running Relu -> Conv (kernel 3 per spatial axis, padding 1), in float or in
    the QDQ layout with the output quantised as well."""
    kernel = [3] * len(positions)
    weight = RNG.standard_normal([out_channels, in_channels] + kernel).astype(np.float32) * 0.1
    bias = RNG.standard_normal(out_channels).astype(np.float32) * 0.1
    source, initializers, nodes = operands(weight, bias, quantised)
    output = "c" if quantised else "y"
    pads = [1] * (2 * len(positions))
    nodes.append(helper.make_node("Conv", [source, "w", "b"], [output], pads=pads))
    if quantised:
        initializers += [
            numpy_helper.from_array(np.array(8 / 255, np.float32), "ys"),
            numpy_helper.from_array(np.array(128, np.uint8), "yz"),
        ]
        nodes += [
            helper.make_node("QuantizeLinear", ["c", "ys", "yz"], ["cq"]),
            helper.make_node("DequantizeLinear", ["cq", "ys", "yz"], ["y"]),
        ]
    return session(
        nodes, initializers, ["n", in_channels] + positions, ["n", out_channels] + positions
    )


def best_pair(sessions, inputs, runs, blocks):
    """The best block time of each session, the sessions alternating."""
    best = [float("inf")] * len(sessions)
    for _ in range(blocks):
        for index, session in enumerate(sessions):
            block(session, inputs, 3)
            best[index] = min(best[index], block(session, inputs, runs))
    return best


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
        runs = max(20, int(4e7 / (rows * depth * width + 20000)))
        best = best_pair([layer(depth, width, False), layer(depth, width, True)], inputs, runs, 7)
        print(
            f"| {rows} | {depth} | {width} | {depth * width} | {best[0] * 1e6:.1f} | "
            f"{best[1] * 1e6:.1f} | {best[1] / best[0]:.2f} |",
            flush=True,
        )
    batch = 64
    print(f"\n`Conv`, a batch of {batch}:\n")
    print("| dims | channels in → out | positions | MACs per sample | float, µs | QDQ, µs | QDQ / float |")
    print("|---|---|---|---:|---:|---:|---:|")
    shapes = [[8], [32], [4, 4], [8, 8], [16, 16]]
    for positions, (channels_in, channels_out) in itertools.product(
        shapes, [(16, 32), (32, 32), (64, 64)]
    ):
        inputs = RNG.standard_normal([batch, channels_in] + positions).astype(np.float32)
        macs = int(np.prod(positions)) * channels_in * 3 ** len(positions) * channels_out
        runs = max(5, int(3e8 / (batch * macs + 1e5)))
        best = best_pair(
            [
                convolution(channels_in, channels_out, positions, False),
                convolution(channels_in, channels_out, positions, True),
            ],
            inputs,
            runs,
            5,
        )
        print(
            f"| {len(positions)}-D | {channels_in} → {channels_out} | "
            f"{' × '.join(map(str, positions))} | {macs} | {best[0] * 1e6:.0f} | "
            f"{best[1] * 1e6:.0f} | {best[1] / best[0]:.2f} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
