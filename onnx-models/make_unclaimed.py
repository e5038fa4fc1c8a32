#!/usr/bin/env python3
"""Build onnx-models/unclaimed/: untrained digits receivers from families outside the zoo.

Run from anywhere (all paths are relative to this file's folder), after make_zoo.py has written
the digits datasets:

    pip install -r onnx-models/requirements.txt
    python3 onnx-models/make_unclaimed.py

The models are receivers from network families that Tessera's bundled adapter plugins were not
written for (2-D convolutions, a GRU, a plain MLP, a CLS-token transformer), to exercise the
built-in fallback adapter's plans and the plugins' refusals (the README says which plugins'
tests the GRU and the transformer still pass). They follow make_zoo.py's conventions and reuse its
helpers: importing make_zoo limits PyTorch to one thread and turns on deterministic algorithms;
every model is built right after `torch.manual_seed(INIT_SEED)`, exported with both exporters
(symbolic batch axis `batch`, external data kept as written), checked with onnx.checker (by
path) and against PyTorch's logits with ONNX Runtime (validation inputs, plus batch sizes 1 and
3), failing loudly. Only unclaimed/ is deleted and rewritten, README.md included.
"""

from __future__ import annotations

import platform
import shutil
import sys
import time
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import torch
import torch.nn as nn

import make_zoo as zoo  # also limits PyTorch to one thread and turns on deterministic algorithms

HERE = zoo.HERE
OUT = HERE / "unclaimed"
INIT_SEED = 2042          # torch.manual_seed before constructing each receiver
BN_WARMUP_BATCHES = 5     # train-mode forward passes that give BatchNorm non-trivial statistics
BN_WARMUP_BATCH_SIZE = 64
INPUT_NAME = "features"
CLASSES = 10


class Cnn2dGap(nn.Module):
    """Two 3x3 convolutions over the 8x8 image, global average pooling, linear head."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 32, 3, padding=1)
        self.conv2 = nn.Conv2d(32, 32, 3, padding=1)
        self.head = nn.Linear(32, CLASSES)

    def forward(self, x):
        h = torch.relu(self.conv1(x.unsqueeze(1)))
        h = torch.relu(self.conv2(h))
        return self.head(h.mean(dim=(2, 3)))


class Cnn2dFlatten(nn.Module):
    """LeNet-like: convolution, 2x2 max pooling, convolution, flatten, two linear layers."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 16, 3, padding=1)
        self.pool = nn.MaxPool2d(2)
        self.conv2 = nn.Conv2d(16, 32, 3, padding=1)
        self.fc = nn.Linear(32 * 4 * 4, 32)
        self.head = nn.Linear(32, CLASSES)

    def forward(self, x):
        h = self.pool(torch.relu(self.conv1(x.unsqueeze(1))))
        h = torch.relu(self.conv2(h)).flatten(1)
        return self.head(torch.relu(self.fc(h)))


class Cnn2dBn(nn.Module):
    """Two bias-free convolutions with BatchNorm2d, adaptive average pooling, linear head."""

    def __init__(self):
        super().__init__()
        self.blocks = nn.Sequential(*(
            nn.Sequential(nn.Conv2d(c_in, 32, 3, padding=1, bias=False), nn.BatchNorm2d(32),
                          nn.ReLU())
            for c_in in (1, 32)))
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.head = nn.Linear(32, CLASSES)

    def forward(self, x):
        return self.head(self.pool(self.blocks(x.unsqueeze(1))).flatten(1))


class Gru(nn.Module):
    """Two-layer GRU over the 8 image rows; the head reads the last time step."""

    def __init__(self):
        super().__init__()
        self.gru = nn.GRU(8, 32, num_layers=2, batch_first=True)
        self.head = nn.Linear(32, CLASSES)

    def forward(self, x):
        h, _ = self.gru(x)
        return self.head(h[:, -1])


class PlainMlp(nn.Module):
    """Flattened image through two hidden layers: no residuals, no normalisations."""

    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(64, 64)
        self.fc2 = nn.Linear(64, 64)
        self.head = nn.Linear(64, CLASSES)

    def forward(self, x):
        h = torch.relu(self.fc1(x.flatten(1)))
        return self.head(torch.relu(self.fc2(h)))


class ClsTransformer(nn.Module):
    """Pre-norm transformer over the 8 rows plus a learned CLS token; the head reads the CLS
    position after a final LayerNorm. CLS token and position embedding start N(0, 0.02²)."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Linear(8, 32)
        self.cls = nn.Parameter(0.02 * torch.randn(1, 1, 32))
        self.position = nn.Parameter(0.02 * torch.randn(1, 9, 32))
        self.blocks = nn.ModuleList(
            nn.TransformerEncoderLayer(32, nhead=2, dim_feedforward=64, dropout=0.0,
                                       activation="gelu", batch_first=True, norm_first=True)
            for _ in range(2))
        self.norm = nn.LayerNorm(32)
        self.head = nn.Linear(32, CLASSES)

    def forward(self, x):
        h = self.stem(x)
        h = torch.cat((self.cls.expand(h.shape[0], -1, -1), h), dim=1) + self.position
        for block in self.blocks:
            h = block(h)
        return self.head(self.norm(h)[:, 0])


FAMILIES = {  # name -> (module, description for the README)
    "cnn2d_gap": (Cnn2dGap, "x.unsqueeze(1) -> Conv2d(1,32,3,pad=1) -> ReLU -> "
                            "Conv2d(32,32,3,pad=1) -> ReLU -> mean over H, W -> Linear(32,10)"),
    "cnn2d_flatten": (Cnn2dFlatten, "x.unsqueeze(1) -> Conv2d(1,16,3,pad=1) -> ReLU -> "
                                    "MaxPool2d(2) -> Conv2d(16,32,3,pad=1) -> ReLU -> flatten "
                                    "(512) -> Linear(512,32) -> ReLU -> Linear(32,10)"),
    "cnn2d_bn": (Cnn2dBn, "x.unsqueeze(1) -> 2 x [Conv2d(c_in,32,3,pad=1,bias=False) -> "
                          "BatchNorm2d(32) -> ReLU] -> AdaptiveAvgPool2d(1) -> flatten -> "
                          "Linear(32,10); BatchNorm running statistics from "
                          f"{BN_WARMUP_BATCHES} train-mode forward passes over the first "
                          f"{BN_WARMUP_BATCHES * BN_WARMUP_BATCH_SIZE} training inputs "
                          f"(batches of {BN_WARMUP_BATCH_SIZE}, momentum 0.1); exported "
                          "with its BatchNormalization nodes kept (see below)"),
    "gru": (Gru, "nn.GRU(8, 32, num_layers=2, batch_first) over the 8 rows -> last time step "
                 "-> Linear(32,10)"),
    "plain_mlp": (PlainMlp, "flatten (64) -> Linear(64,64) -> ReLU -> Linear(64,64) -> ReLU -> "
                            "Linear(64,10)"),
    "cls_transformer": (ClsTransformer, "Linear(8,32) -> prepend learned CLS token (1,1,32) -> "
                                        "+ learned position embedding (1,9,32) -> 2 x "
                                        "nn.TransformerEncoderLayer(32, nhead=2, "
                                        "dim_feedforward=64, gelu, batch_first, norm_first, "
                                        "dropout 0) -> LayerNorm(32) -> position 0 (CLS) -> "
                                        "Linear(32,10)"),
}


# Families exported with their BatchNormalization nodes kept (inference form: running statistics
# as initializers). By default both exporters fold an eval-mode BatchNorm into the Conv before it:
# the torchscript exporter in its constant-folding step (the eval peephole pass, which runs only
# with do_constant_folding), the dynamo exporter in onnxscript's optimizer (the rewrite rules
# fuse_batchnorm_into_{conv,conv_transpose,gemm}).
KEEP_BATCHNORM = {"cnn2d_bn"}


def export(name: str, model: nn.Module, example: torch.Tensor, path: Path, exporter: str) -> None:
    """zoo.export, except for the families in KEEP_BATCHNORM: zoo.export_keeping_batchnorm."""
    if name in KEEP_BATCHNORM:
        zoo.export_keeping_batchnorm(model, example, path, exporter, INPUT_NAME)
    else:
        zoo.export(model, example, path, exporter, INPUT_NAME)


def check_batchnorm(path: Path, model: nn.Module) -> None:
    """Fail loudly unless the export at `path` has one inference-form BatchNormalization node
    (training_mode 0, one output) per nn.BatchNorm2d of `model`, reading its input_mean and
    input_var from initializers and its scale and B from initializers or from Identity nodes on
    initializers (the torchscript exporter's marks for merged parameters)."""
    m = onnx.load(str(path), load_external_data=False)
    inits = {i.name for i in m.graph.initializer}
    aliases = {n.output[0] for n in m.graph.node
               if n.op_type == "Identity" and n.input[0] in inits}
    nodes = [n for n in m.graph.node if n.op_type == "BatchNormalization"]
    expected = sum(isinstance(mod, nn.BatchNorm2d) for mod in model.modules())
    if len(nodes) != expected:
        raise SystemExit(f"FAIL {path}: {len(nodes)} BatchNormalization nodes, "
                         f"expected {expected}")
    for n in nodes:
        attrs = {a.name: onnx.helper.get_attribute_value(a) for a in n.attribute}
        if attrs.get("training_mode", 0) != 0 or len(n.output) != 1 or len(n.input) != 5 or \
                not all(i in inits for i in n.input[3:]) or \
                not all(i in inits or i in aliases for i in n.input[1:3]):
            raise SystemExit(f"FAIL {path}: BatchNormalization {n.name} is not in inference "
                             f"form on initializers: inputs {list(n.input)}, attributes {attrs}")


def build(name: str, x_train: torch.Tensor) -> nn.Module:
    """The untrained receiver of family `name`, in eval mode. Models with BatchNorm first run
    forward passes in train mode (no gradients) so that their running statistics are not the
    identity."""
    torch.manual_seed(INIT_SEED)
    model = FAMILIES[name][0]()
    if any(isinstance(m, nn.BatchNorm2d) for m in model.modules()):
        model.train()
        with torch.no_grad():
            for i in range(BN_WARMUP_BATCHES):
                model(x_train[i * BN_WARMUP_BATCH_SIZE:(i + 1) * BN_WARMUP_BATCH_SIZE])
    return model.eval()


def main() -> None:
    """Export, check and describe every family; rewrite unclaimed/ from scratch."""
    t_start = time.time()
    digits = HERE / "digits"
    x_train = torch.from_numpy(np.load(digits / "train_inputs.npy"))
    x_val = torch.from_numpy(np.load(digits / "val_inputs.npy"))
    y_val = torch.from_numpy(np.load(digits / "val_labels.npy"))
    if OUT.exists():
        shutil.rmtree(OUT)
    OUT.mkdir()

    rows = []
    for name in FAMILIES:
        model = build(name, x_train)
        ref = zoo.logits_of(model, x_val).numpy().astype(np.float32)
        logits_path = OUT / f"{name}.val_logits.npy"
        np.save(logits_path, ref)
        for exporter, ekw in zoo.EXPORTERS.items():
            path = OUT / f"{name}.{exporter}.onnx"
            t0 = time.time()
            try:
                export(name, model, x_val[:4], path, exporter)
            except Exception as e:  # noqa: BLE001
                raise SystemExit(f"FAIL export {name} with {exporter}: "
                                 f"{type(e).__name__}: {e}") from e
            onnx.checker.check_model(str(path), full_check=True)
            info = zoo.inspect_onnx(path, [n for n, _ in model.named_parameters()])
            ext_files = zoo.check_export(path, info, exporter, INPUT_NAME)
            if name in KEEP_BATCHNORM:
                check_batchnorm(path, model)
            check = zoo.ort_check(path, INPUT_NAME, x_val.numpy(), ref)
            row = dict(family=name, exporter=exporter, opset=ekw["opset_version"],
                       params=zoo.param_count(model),
                       val_accuracy=zoo.accuracy(torch.from_numpy(ref), y_val),
                       onnx=path, onnx_bytes=path.stat().st_size, external_data=ext_files,
                       total_bytes=path.stat().st_size + sum(e["bytes"] for e in ext_files),
                       op_types=info["op_types"], node_count=info["node_count"], **check)
            rows.append(row)
            print(f"unclaimed/{path.name:<38} params={row['params']:>6} "
                  f"bytes={row['total_bytes']:>7} ext={len(ext_files)} "
                  f"diff={check['max_abs_diff']:.2e} nodes={row['node_count']:>4} "
                  f"export={time.time() - t0:5.1f}s", flush=True)

    # Stray files written by the exporters (reports, artefacts) must not be left around.
    expected = {r["onnx"].name for r in rows} | {f"{n}.val_logits.npy" for n in FAMILIES}
    expected |= {Path(e["path"]).name for r in rows for e in r["external_data"]}
    stray = sorted(p.name for p in OUT.iterdir() if p.name not in expected)
    if stray:
        raise SystemExit(f"FAIL: unexpected files written in unclaimed/: {stray}")

    write_readme(rows)
    print(f"done: {len(rows)} ONNX files in {time.time() - t_start:.1f}s")


def write_readme(rows: list[dict]) -> None:
    """Write unclaimed/README.md: purpose, re-creation, families, files and op types."""
    versions = dict(python=platform.python_version(), torch=torch.__version__,
                    onnx=onnx.__version__, onnxruntime=ort.__version__, numpy=np.__version__)
    L = []
    w = L.append
    w("# onnx-models/unclaimed — receivers from families outside the zoo")
    w("")
    w("Untrained digits receivers whose architectures lie outside the zoo's four families "
      "(transformer, residual MLP, residual 1-D conv, bidirectional LSTM), the ones Tessera's "
      "bundled adapter plugins were written for. They exercise adapter selection on graphs "
      "nobody tailored a plugin to: above all the built-in fallback adapter's plans, and the "
      "plugins' refusals or generalisations.")
    w("")
    w("- `cnn2d_gap`, `cnn2d_flatten`, `cnn2d_bn` (2-D convolutions) and `plain_mlp` (no "
      "residual additions, no normalisations) fail every bundled plugin's test as the plugins "
      "stand at this writing: the conv1d plugin wants 1-D convolution weights ([out, in, k]), "
      "the mlp plugin residual additions, the transformer plugin Softmax, the lstm plugin a "
      "recurrent node. Only the fallback adapter can plan them.")
    w("- `gru` and `cls_transformer` do pass tests of bundled plugins: the lstm plugin takes "
      "any ONNX `LSTM`, `GRU` or `RNN` node, and the transformer plugin any graph with one "
      "Softmax and two residual additions per layer. They check that those plugins cope with "
      "variants they were not written for (a unidirectional GRU read at its last step; a "
      "pre-norm encoder with a final LayerNorm whose head reads the CLS position, not a mean).")
    w("")
    w("Everything in this folder, this README included, is written by "
      "`onnx-models/make_unclaimed.py` (edit its template in the script, then re-run it).")
    w("")
    w("## Re-creating")
    w("")
    w("```sh")
    w("pip install -r onnx-models/requirements.txt && python3 onnx-models/make_unclaimed.py")
    w("```")
    w("")
    w("The script reads the digits inputs that `make_zoo.py` wrote, and deletes and rewrites "
      "`unclaimed/` only. Like `make_zoo.py`, whose helpers it imports, it is deterministic "
      "(fixed seed, one PyTorch thread, `torch.use_deterministic_algorithms(True)`) and fails "
      "loudly when a model does not export, does not pass `onnx.checker.check_model(path, "
      "full_check=True)`, or when ONNX Runtime's logits differ from PyTorch's by more than "
      f"{zoo.TOLERANCE:g} (validation set, and batch sizes 1 and 3 to prove the batch axis is "
      "dynamic). It takes well under a minute on one CPU core.")
    w("")
    w("Versions used: " + ", ".join(f"{k} {v}" for k, v in versions.items()) + ".")
    w("")
    w("## Inputs and outputs")
    w("")
    w("The zoo's digits task (see `../README.md`): input `features` float32 [N, 8, 8] (an 8x8 "
      "image as 8 rows of 8 features, values 0..1), output `logits` float32 [N, 10]. Validation "
      "inputs: `../digits/val_inputs.npy`; training inputs: `../digits/train_inputs.npy`.")
    w("")
    w("## Families")
    w("")
    w(f"Each model is constructed right after `torch.manual_seed({INIT_SEED})` (PyTorch's "
      "default initialisation), never trained, and put in eval mode before export.")
    w("")
    for name, (_, desc) in FAMILIES.items():
        w(f"- **{name}**: {desc}")
    w("")
    w("## Files")
    w("")
    w("For each family `<name>`:")
    w("")
    w("- `<name>.torchscript.onnx` — `torch.onnx.export(dynamo=False, opset_version=17)`, "
      "`dynamic_axes` naming the batch axis `batch`;")
    w("- `<name>.dynamo.onnx` — `torch.onnx.export(dynamo=True, opset_version=18)`, "
      "`dynamic_shapes` with `torch.export.Dim('batch')`; plus `<name>.dynamo.onnx.data` where "
      "the exporter wrote the weights as external data (kept as written, as in the zoo);")
    w("- `<name>.val_logits.npy` — PyTorch's float32 logits on the validation inputs (shared by "
      "both exports: same weights).")
    w("")
    keep = ", ".join(f"`{n}`" for n in FAMILIES if n in KEEP_BATCHNORM)
    w(f"Exceptions, so that BatchNorm is not folded into the convolutions ({keep}): the "
      "torchscript export adds `do_constant_folding=False`; the dynamo export adds "
      "`optimize=False`, then runs the exporter's own optimizer (`ONNXProgram.optimize()`, what "
      "`optimize=True` would run) without onnxscript's BatchNorm-fusion rewrite rules "
      "(`fuse_batchnorm_into_conv_rule`, `..._conv_transpose_rule`, `..._gemm_rule`) and saves "
      "as `torch.onnx.export` does. Both files are checked to hold one inference-form "
      "BatchNormalization node per `nn.BatchNorm2d`.")
    w("")
    w("Validation accuracy is PyTorch's (untrained: chance is about 0.1). Sizes are the `.onnx` "
      "file plus its external data, if any; max abs diff is the largest absolute difference "
      "between ONNX Runtime's and PyTorch's logits over the validation set and batch sizes 1 and 3.")
    w("")
    w("| family | exporter | opset | params | val acc | size (.onnx + .data) | nodes | max abs diff |")
    w("|---|---|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        size = zoo.fmt_bytes(r["onnx_bytes"])
        if r["external_data"]:
            size += " + " + " + ".join(zoo.fmt_bytes(e["bytes"]) for e in r["external_data"])
        diff = max(r["max_abs_diff"], r["max_abs_diff_batch_1_3"])
        w(f"| {r['family']} | {r['exporter']} | {r['opset']} | {r['params']:,} | "
          f"{r['val_accuracy']:.4f} | {size} | {r['node_count']} | {diff:.1e} |")
    w("")
    total = sum(r["total_bytes"] for r in rows)
    w(f"{len(rows)} ONNX files, {zoo.fmt_bytes(total)} of models in all (with external data).")
    w("")
    w("## Operator types")
    w("")
    w("Node counts per op type (main graph and any subgraphs), counted with the `onnx` package "
      "from the files themselves.")
    w("")
    for exporter in zoo.EXPORTERS:
        cols = [r for r in rows if r["exporter"] == exporter]
        ops = sorted({op for r in cols for op in r["op_types"]})
        w(f"### {exporter} (opset {cols[0]['opset']}): {len(ops)} op types")
        w("")
        w("| op | " + " | ".join(r["family"] for r in cols) + " |")
        w("|---|" + "---:|" * len(cols))
        for op in ops:
            w(f"| {op} | " + " | ".join(str(r["op_types"].get(op, "")) for r in cols) + " |")
        w("")
    w("## What the exporters made of these families")
    w("")
    w("- **BatchNorm is kept** in both exports of `cnn2d_bn` (left to themselves, both exporters "
      "fold an eval-mode BatchNorm into the Conv before it; see Files): each bias-free Conv "
      "(two inputs, weight `blocks.{i}.0.weight`) feeds a BatchNormalization node in inference "
      "form (one output; `training_mode=0` written out by torchscript, left at its default 0 by "
      "dynamo; epsilon 1e-5) whose inputs scale, B, input_mean, input_var are "
      "`blocks.{i}.1.weight`, `.bias`, `.running_mean`, `.running_var`. The running statistics "
      "are separate initializers per block; the untrained scales (all 1) and shifts (all 0) are "
      "equal in both blocks, so, as in the zoo, each exporter keeps one copy: torchscript feeds "
      "the second node `blocks.1.1.weight` / `.bias` through Identity nodes on "
      "`blocks.0.1.weight` / `.bias` (the file's only Identity nodes), dynamo feeds both nodes "
      "`blocks.0.1.weight` / `.bias` directly.")
    w("- **Global pooling differs**: `nn.AdaptiveAvgPool2d(1)` becomes GlobalAveragePool "
      "(then Flatten) in torchscript and ReduceMean over axes -1, -2 with keepdims=1 (then "
      "Reshape) in dynamo; `x.mean(dim=(2, 3))` is ReduceMean over axes 2, 3 in both (an "
      "attribute in opset 17, an input in opset 18).")
    w("- **GRU**: each `nn.GRU` layer is one ONNX GRU node (`hidden_size=32`, "
      "`linear_before_reset=1`, weights repacked under generated names); torchscript GRU nodes "
      "have 2 outputs (Y, Y_h), dynamo ones only Y. The initial state is built from the "
      "batch size, as for the zoo's LSTMs.")
    w("- **CLS token**: `cls.expand(batch, -1, -1)` is an Expand on a shape computed from the "
      "input (torchscript adds ConstantOfShape, Equal and Where to build it); the head reads "
      "position 0 through a Gather.")
    w("- As in the zoo, dynamo exports keep their larger initializers in `<file>.onnx.data`; "
      "torchscript exports are self-contained.")
    w("")
    (OUT / "README.md").write_text("\n".join(L))


if __name__ == "__main__":
    sys.exit(main())
