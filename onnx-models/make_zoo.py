#!/usr/bin/env python3
"""Build Tessera's ONNX model zoo: datasets, trained transmitters, untrained receivers.

Run from anywhere (all paths are relative to this file's folder):

    pip install -r onnx-models/requirements.txt
    python3 onnx-models/make_zoo.py

Everything is deterministic: every random draw comes from a fixed seed, and PyTorch runs on one
CPU thread. The script

1. generates the two tasks' datasets and saves them as .npy;
2. builds, for every config, a transmitter (trained) and a receiver (untrained, other init seed);
3. exports every model twice (TorchScript exporter, opset 17; dynamo exporter, opset 18) with a
   symbolic batch dimension, keeping any external-data file the exporter writes;
4. checks every file with onnx.checker (by path) and with onnxruntime against PyTorch's logits
   (max |diff| <= 1e-4 on the validation inputs, plus batch sizes 1 and 3), failing loudly;
5. writes manifest.json (machine-readable index) and README.md (provenance, tables, op types).

Outputs (toy/, digits/, manifest.json, README.md) are regenerated from scratch on every run.

Other draws of the same zoo, for checking that a result does not hang on one set of weights,
go to another folder (the committed zoo is the run with no options):

    python3 onnx-models/make_zoo.py --out /tmp/zoo-7 --tasks toy --transmitter-seed 7 \
        --receiver-seed 1007
"""

from __future__ import annotations

import argparse
import collections
import hashlib
import json
import logging
import platform
import shutil
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

torch.set_num_threads(1)  # leave the other core free (the Rust build runs in parallel)
torch.set_num_interop_threads(1)
torch.use_deterministic_algorithms(True)
# The dynamo exporter logs one warning per torchvision op it cannot register; irrelevant here.
logging.getLogger("torch.onnx._internal.exporter._registration").setLevel(logging.ERROR)

import onnx  # noqa: E402
import onnxruntime as ort  # noqa: E402
import onnxscript  # noqa: E402
import onnx_ir  # noqa: E402
import sklearn  # noqa: E402
from sklearn.datasets import load_digits  # noqa: E402
from sklearn.model_selection import train_test_split  # noqa: E402

from zoo_models import TOY_SEQ_LEN, TOY_VOCAB, build_model  # noqa: E402

HERE = Path(__file__).resolve().parent
OUT = HERE  # where this run writes; --out
SCHEMA_VERSION = 1
TOLERANCE = 1e-4

GLOBAL_SEED = 42
TX_INIT_SEED = 42        # torch.manual_seed before constructing each transmitter
RX_INIT_SEED = 1042      # torch.manual_seed before constructing each receiver
SHUFFLE_SEED = 42        # torch.Generator seeding the per-epoch shuffles of each transmitter

TOY_TRAIN_N, TOY_TRAIN_SEED = 400, 42
TOY_VAL_N, TOY_VAL_SEED = 150, 43
TOY_TRAINING = dict(optimizer="Adam", lr=1e-3, epochs=12, batch_size=32, loss="cross_entropy")
TOY_CONFIGS = [  # (family, d, layers)
    ("transformer", 64, 2),
    ("transformer", 128, 4),
    ("mlp", 128, 4),
    ("conv", 64, 2),
    ("lstm", 64, 2),
]

DIGITS_SPLIT = dict(test_size=0.25, random_state=0, stratify="y")
DIGITS_TRAINING = dict(optimizer="Adam", lr=1e-3, epochs=60, batch_size=32, loss="cross_entropy")
DIGITS_CONFIGS = [
    ("transformer", 64, 2),
    ("mlp", 64, 2),
    ("conv", 64, 2),
    ("lstm", 64, 2),
]

EXPORTERS = {
    "torchscript": dict(dynamo=False, opset_version=17),
    "dynamo": dict(dynamo=True, opset_version=18),
}

FAMILY_DESCRIPTIONS = {
    "transformer": "stem [+ learned position embedding `position` (1, T, d), digits only] -> "
                   "nn.TransformerEncoderLayer(d, nhead=max(1, d//32), dim_feedforward=2d, "
                   "gelu, batch_first, dropout 0) x L -> mean over sequence -> Linear(d, classes)",
    "mlp": "stem -> flatten (T*d) -> Linear(T*d, d) -> L x [x + Linear(2d,d)(GELU(LayerNorm(2d)"
           "(Linear(d,2d)(x))))] -> Linear(d, classes)",
    "conv": "stem -> transpose to [B,d,T] -> L x [x + GELU(BatchNorm1d(d)(Conv1d(d,d,3,pad=1)(x)))] "
            "-> mean over T -> Linear(d, classes)",
    "lstm": "stem -> nn.LSTM(d, d//2, L, bidirectional, batch_first) -> mean over sequence "
            "-> Linear(d, classes)",
}


def param_count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


# --------------------------------------------------------------------------------------------
# Training / evaluation
# --------------------------------------------------------------------------------------------

@torch.no_grad()
def logits_of(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    model.eval()
    return model(x)


def accuracy(logits: torch.Tensor, y: torch.Tensor) -> float:
    return float((logits.argmax(dim=1) == y).float().mean().item())


def train(model, x, y, xv, yv, cfg, shuffle_seed):
    opt = torch.optim.Adam(model.parameters(), lr=cfg["lr"])
    g = torch.Generator().manual_seed(shuffle_seed)
    bs = cfg["batch_size"]
    history = []
    for _ in range(cfg["epochs"]):
        model.train()
        perm = torch.randperm(len(x), generator=g)
        for i in range(0, len(x), bs):
            idx = perm[i:i + bs]
            opt.zero_grad()
            loss = F.cross_entropy(model(x[idx]), y[idx])
            loss.backward()
            opt.step()
        history.append(round(accuracy(logits_of(model, xv), yv), 4))
    model.eval()
    return history


# --------------------------------------------------------------------------------------------
# ONNX helpers
# --------------------------------------------------------------------------------------------

def iter_nodes(graph):
    for node in graph.node:
        yield node
        for attr in node.attribute:
            if attr.type == onnx.AttributeProto.GRAPH:
                yield from iter_nodes(attr.g)
            elif attr.type == onnx.AttributeProto.GRAPHS:
                for sub in attr.graphs:
                    yield from iter_nodes(sub)


def op_key(node) -> str:
    return node.op_type if node.domain in ("", "ai.onnx") else f"{node.domain}::{node.op_type}"


def attr_repr(a) -> str:
    v = onnx.helper.get_attribute_value(a)
    if isinstance(v, onnx.TensorProto):
        return f"tensor<{onnx.helper.tensor_dtype_to_np_dtype(v.data_type).name}>"
    if isinstance(v, bytes):
        return v.decode()
    if isinstance(v, float):
        return f"{v:.6g}"
    if isinstance(v, (list, tuple)):
        return "[" + ",".join(str(x) for x in v) + "]"
    return str(v)


def op_usage(path: Path, usage: dict) -> None:
    """Accumulate, per op type: input arities (trailing-empty included) and attribute values."""
    m = onnx.load(str(path), load_external_data=False)
    for n in iter_nodes(m.graph):
        u = usage.setdefault(op_key(n), dict(arity=set(), outputs=set(), attrs={}))
        u["arity"].add(len(n.input) if all(n.input) else
                       f"{len(n.input)} ({','.join('_' if not i else 'x' for i in n.input)})")
        u["outputs"].add(len(n.output))
        for a in n.attribute:
            u["attrs"].setdefault(a.name, set()).add(attr_repr(a))


def inspect_onnx(path: Path, param_names: list[str]) -> dict:
    m = onnx.load(str(path), load_external_data=False)
    hist = collections.Counter(op_key(n) for n in iter_nodes(m.graph))
    for fn in m.functions:  # local functions (none expected once the exporters inline)
        hist.update(op_key(n) for n in iter_nodes(fn))
    ext = set()
    for init in m.graph.initializer:
        if init.data_location == onnx.TensorProto.EXTERNAL:
            for kv in init.external_data:
                if kv.key == "location":
                    ext.add(kv.value)
    lstm_attrs = []
    for n in iter_nodes(m.graph):
        if n.op_type == "LSTM":
            attrs = {a.name: onnx.helper.get_attribute_value(a) for a in n.attribute}
            attrs = {k: (v.decode() if isinstance(v, bytes) else v) for k, v in attrs.items()}
            lstm_attrs.append(attrs)

    def vi(v):
        t = v.type.tensor_type
        dims = [d.dim_value if d.HasField("dim_value") else None for d in t.shape.dim]
        syms = [d.dim_param if d.HasField("dim_param") else None for d in t.shape.dim]
        return dict(name=v.name, dtype=onnx.helper.tensor_dtype_to_np_dtype(t.elem_type).name,
                    shape=dims, symbolic_dims=syms)

    # The classification head: the node consuming the initializer head.weight (or a folded copy).
    init_names = {i.name for i in m.graph.initializer}
    head = None
    out_name = m.graph.output[0].name
    producers = {o: n for n in m.graph.node for o in n.output}
    node = producers.get(out_name)
    hops = 0
    while node is not None and node.op_type not in ("Gemm", "MatMul") and hops < 4:
        nxt = [producers[i] for i in node.input if i in producers]
        node = nxt[0] if nxt else None
        hops += 1
    if node is not None and node.op_type in ("Gemm", "MatMul"):
        data_in = [i for i in node.input if i not in init_names]
        head = dict(node=node.name, op_type=node.op_type,
                    input=data_in[0] if data_in else None,
                    weight=next((i for i in node.input if i in init_names), None))

    # Float weight initializers read by more than one node. PyTorch keeps these parameters
    # separate; the exporters merged them because their values were identical.
    consumers = collections.Counter(i for n in iter_nodes(m.graph) for i in set(n.input))
    shared = {}
    for init in m.graph.initializer:
        numel = int(np.prod(init.dims)) if len(init.dims) else 1
        if init.data_type == onnx.TensorProto.FLOAT and numel > 1 and consumers[init.name] > 1:
            shared[init.name] = consumers[init.name]
    float_inits = [i for i in m.graph.initializer if i.data_type == onnx.TensorProto.FLOAT
                   and len(i.dims) and int(np.prod(i.dims)) > 1]
    # The TorchScript exporter marks a merged parameter with Identity(initializer) -> param name.
    aliases = {n.output[0]: n.input[0] for n in m.graph.node
               if n.op_type == "Identity" and n.input[0] in init_names}

    return dict(
        opsets={(o.domain or "ai.onnx"): o.version for o in m.opset_import},
        ir_version=m.ir_version,
        producer=f"{m.producer_name} {m.producer_version}".strip(),
        op_types=dict(sorted(hist.items())),
        node_count=sum(hist.values()),
        initializer_count=len(m.graph.initializer),
        local_functions=len(m.functions),
        weight_initializers=dict(
            count=len(float_inits),
            elements=int(sum(int(np.prod(i.dims)) for i in float_inits)),
            shared=shared,
            pytorch_params_by_name=sorted(n for n in param_names if n in init_names),
            pytorch_params_by_alias={n: aliases[n] for n in sorted(param_names)
                                     if n not in init_names and n in aliases},
            pytorch_params_not_by_name=sorted(n for n in param_names
                                              if n not in init_names and n not in aliases),
        ),
        external_locations=sorted(ext),
        lstm_attributes=lstm_attrs,
        inputs=[vi(v) for v in m.graph.input if v.name not in init_names],
        outputs=[vi(v) for v in m.graph.output],
        head=head,
    )


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def export(model, example, path: Path, exporter: str, input_name: str,
           constant_folding: bool = True):
    kw = EXPORTERS[exporter]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if exporter == "torchscript":
            torch.onnx.export(model, (example,), str(path), input_names=[input_name],
                              output_names=["logits"],
                              dynamic_axes={input_name: {0: "batch"}, "logits": {0: "batch"}},
                              do_constant_folding=constant_folding, **kw)
        else:
            batch = torch.export.Dim("batch")
            torch.onnx.export(model, (example,), str(path), input_names=[input_name],
                              output_names=["logits"], dynamic_shapes=({0: batch},),
                              verbose=False, **kw)


def export_keeping_batchnorm(model, example, path: Path, exporter: str, input_name: str):
    """export, with every BatchNormalization kept as its own node: torchscript without constant
    folding; dynamo unoptimised, then the exporter's own optimizer (ONNXProgram.optimize, what
    optimize=True runs) without onnxscript's BatchNorm-fusion rules, then saved as
    torch.onnx.export saves (external data)."""
    import onnxscript.rewriter
    from onnxscript.rewriter.rules.common import (fuse_batchnorm_into_conv_rule,
                                                  fuse_batchnorm_into_conv_transpose_rule,
                                                  fuse_batchnorm_into_gemm_rule)

    if exporter == "torchscript":
        export(model, example, path, exporter, input_name, constant_folding=False)
        return
    kw = EXPORTERS[exporter]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        batch = torch.export.Dim("batch")
        program = torch.onnx.export(model, (example,), input_names=[input_name],
                                    output_names=["logits"], dynamic_shapes=({0: batch},),
                                    verbose=False, optimize=False, **kw)
        # onnxscript's optimize_ir takes no rule list; it reads this module attribute.
        bn_rules = {fuse_batchnorm_into_conv_rule, fuse_batchnorm_into_conv_transpose_rule,
                    fuse_batchnorm_into_gemm_rule}
        default_rules = getattr(onnxscript.rewriter, "_DEFAULT_REWRITE_RULES", None)
        if default_rules is None or not bn_rules <= set(default_rules):
            raise SystemExit("FAIL: onnxscript.rewriter._DEFAULT_REWRITE_RULES is gone or no "
                             "longer holds the BatchNorm-fusion rules; update "
                             "export_keeping_batchnorm()")
        onnxscript.rewriter._DEFAULT_REWRITE_RULES = tuple(
            r for r in default_rules if r not in bn_rules)
        try:
            program.optimize()
        finally:
            onnxscript.rewriter._DEFAULT_REWRITE_RULES = default_rules
        program.save(str(path), external_data=True)


def check_export(path: Path, info: dict, exporter: str, input_name: str) -> list[dict]:
    """Fail loudly unless the export at `path` (described by `info`, from inspect_onnx) has the
    exporter's opset, exactly the graph input `input_name` and output `logits`, both with a
    symbolic batch axis, and every external-data file beside it. Returns those files as
    {path (relative to this folder), bytes, sha256}."""
    ext_files = []
    for loc in info["external_locations"]:
        ep = path.parent / loc
        if not ep.is_file():
            raise SystemExit(f"FAIL {path}: external data {loc} missing")
        ext_files.append(dict(path=rel(ep), bytes=ep.stat().st_size, sha256=sha256(ep)))
    opset = EXPORTERS[exporter]["opset_version"]
    if info["opsets"].get("ai.onnx") != opset:
        raise SystemExit(f"FAIL {path}: opset {info['opsets']} != requested {opset}")
    if [i["name"] for i in info["inputs"]] != [input_name] or \
            [o["name"] for o in info["outputs"]] != ["logits"]:
        raise SystemExit(f"FAIL {path}: unexpected graph inputs/outputs "
                         f"{info['inputs']} {info['outputs']}")
    for v in info["inputs"] + info["outputs"]:
        if v["shape"][0] is not None or not v["symbolic_dims"][0]:
            raise SystemExit(f"FAIL {path}: batch dim of {v['name']} not symbolic")
    return ext_files


def ort_check(path: Path, input_name: str, x_val: np.ndarray, ref: np.ndarray) -> dict:
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.inter_op_num_threads = 1
    sess = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
    got = sess.run(["logits"], {input_name: x_val})[0]
    if got.shape != ref.shape:
        raise SystemExit(f"FAIL {path}: onnxruntime logits shape {got.shape}, expected {ref.shape}")
    diff = float(np.abs(got - ref).max())
    # The batch dimension must really be dynamic: run other batch sizes too.
    diff_small = 0.0
    for n in (1, 3):
        g = sess.run(["logits"], {input_name: x_val[:n]})[0]
        diff_small = max(diff_small, float(np.abs(g - ref[:n]).max()))
    worst = max(diff, diff_small)
    if not np.isfinite(worst) or worst > TOLERANCE:
        raise SystemExit(f"FAIL {path}: onnxruntime vs PyTorch max |diff| = {worst:.3g} "
                         f"> {TOLERANCE} (full batch {diff:.3g}, batches 1/3 {diff_small:.3g})")
    agree = float((got.argmax(1) == ref.argmax(1)).mean())
    if agree != 1.0:
        raise SystemExit(f"FAIL {path}: argmax agreement with PyTorch {agree}")
    return dict(max_abs_diff=diff, max_abs_diff_batch_1_3=diff_small)


# --------------------------------------------------------------------------------------------
# Datasets
# --------------------------------------------------------------------------------------------

def toy_dataset():
    def gen(n, seed):
        g = torch.Generator().manual_seed(seed)
        x = torch.randint(0, TOY_VOCAB, (n, TOY_SEQ_LEN), generator=g)
        y = (x.float().mean(dim=1) >= 128).long()
        return x, y
    xt, yt = gen(TOY_TRAIN_N, TOY_TRAIN_SEED)
    xv, yv = gen(TOY_VAL_N, TOY_VAL_SEED)
    return xt, yt, xv, yv


def digits_dataset():
    ds = load_digits()
    x = (ds.data.astype(np.float32) / 16.0).reshape(-1, 8, 8)
    y = ds.target.astype(np.int64)
    xt, xv, yt, yv = train_test_split(x, y, test_size=DIGITS_SPLIT["test_size"],
                                      random_state=DIGITS_SPLIT["random_state"], stratify=y)
    return (torch.from_numpy(np.ascontiguousarray(xt)), torch.from_numpy(yt),
            torch.from_numpy(np.ascontiguousarray(xv)), torch.from_numpy(yv))


# --------------------------------------------------------------------------------------------
# Main
# --------------------------------------------------------------------------------------------

def rel(p: Path) -> str:
    return p.relative_to(OUT).as_posix()


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=HERE,
                        help="folder to write the zoo to (default: this script's folder)")
    parser.add_argument("--tasks", default="toy,digits",
                        help="tasks to build, comma-separated (default: toy,digits)")
    parser.add_argument("--transmitter-seed", type=int, default=TX_INIT_SEED,
                        help="seed of each transmitter's initial weights and of its training "
                             f"shuffles (default: {TX_INIT_SEED})")
    parser.add_argument("--receiver-seed", type=int, default=RX_INIT_SEED,
                        help=f"seed of each receiver's initial weights (default: {RX_INIT_SEED})")
    args = parser.parse_args(argv)
    tasks = args.tasks.split(",")
    unknown = [t for t in tasks if t not in ("toy", "digits")]
    if unknown or not tasks:
        parser.error(f"unknown task(s) {unknown}: choose from toy, digits")
    if args.out.resolve() != HERE and args.out.exists() and any(args.out.iterdir()) \
            and not (args.out / "manifest.json").exists():
        parser.error(f"{args.out} is not empty and holds no zoo: choose an empty or new folder")
    args.tasks = tasks
    return args


def main(argv: list[str]) -> None:
    global OUT, TX_INIT_SEED, RX_INIT_SEED, SHUFFLE_SEED
    args = parse_args(argv)
    OUT = args.out.resolve()
    TX_INIT_SEED = SHUFFLE_SEED = args.transmitter_seed
    RX_INIT_SEED = args.receiver_seed
    t_start = time.time()
    torch.manual_seed(GLOBAL_SEED)
    np.random.seed(GLOBAL_SEED)
    OUT.mkdir(parents=True, exist_ok=True)
    for sub in ("toy", "digits"):
        if (OUT / sub).exists():
            shutil.rmtree(OUT / sub)
        if sub in args.tasks:
            (OUT / sub).mkdir()

    versions = dict(python=platform.python_version(), torch=torch.__version__, onnx=onnx.__version__,
                    onnxscript=onnxscript.__version__, onnx_ir=onnx_ir.__version__,
                    onnxruntime=ort.__version__, scikit_learn=sklearn.__version__,
                    numpy=np.__version__)

    tasks_meta = {}
    entries = []
    usage = {"torchscript": {}, "dynamo": {}}
    summary_models = []

    for task in args.tasks:
        if task == "toy":
            xt, yt, xv, yv = toy_dataset()
            configs, tcfg = TOY_CONFIGS, TOY_TRAINING
            input_name, classes, seq_len = "tokens", 2, TOY_SEQ_LEN
        else:
            xt, yt, xv, yv = digits_dataset()
            configs, tcfg = DIGITS_CONFIGS, DIGITS_TRAINING
            input_name, classes, seq_len = "features", 10, 8
        tdir = OUT / task
        files = {}
        for name, arr in (("train_inputs", xt), ("train_labels", yt),
                          ("val_inputs", xv), ("val_labels", yv)):
            p = tdir / f"{name}.npy"
            np.save(p, arr.numpy())
            files[name] = rel(p)
        in_dtype = "int64" if task == "toy" else "float32"
        in_shape = [None, TOY_SEQ_LEN] if task == "toy" else [None, 8, 8]
        if task == "toy":
            desc = ("Binary classification of 16-token sequences over a 256-token vocabulary; "
                    "label 1 when the mean token value is >= 128. Inputs drawn with "
                    "torch.randint(0, 256, (n, 16), generator=torch.Generator().manual_seed(seed)).")
            source = dict(train=dict(count=TOY_TRAIN_N, generator_seed=TOY_TRAIN_SEED),
                          val=dict(count=TOY_VAL_N, generator_seed=TOY_VAL_SEED))
        else:
            desc = ("scikit-learn load_digits(): 1797 8x8 grey-level images of digits 0-9, pixel "
                    "values 0..16 divided by 16 (float32), each image read as a sequence of 8 rows "
                    "of 8 features. Split with train_test_split(test_size=0.25, random_state=0, "
                    "stratify=y).")
            source = dict(loader="sklearn.datasets.load_digits", scale="x / 16", split=DIGITS_SPLIT,
                          train=dict(count=len(xt)), val=dict(count=len(xv)))
        tasks_meta[task] = dict(
            description=desc, classes=classes, seq_len=seq_len,
            stem="nn.Embedding(256, d)" if task == "toy" else "nn.Linear(8, d)",
            input=dict(name=input_name, dtype=in_dtype, shape=in_shape),
            output=dict(name="logits", dtype="float32", shape=[None, classes]),
            datasets={**files,
                      "train_count": len(xt), "val_count": len(xv),
                      "val_label_balance": np.bincount(yv.numpy(), minlength=classes).tolist()},
            source=source,
            training=tcfg,
        )
        x_val_np = xv.numpy()

        for family, d, layers in configs:
            config = f"{family}_{d}d_{layers}L"
            for role in ("transmitter", "receiver"):
                short = "tx" if role == "transmitter" else "rx"
                init_seed = TX_INIT_SEED if role == "transmitter" else RX_INIT_SEED
                t0 = time.time()
                model = build_model(task, family, d, layers, init_seed)
                history = None
                if role == "transmitter":
                    history = train(model, xt, yt, xv, yv, tcfg, SHUFFLE_SEED)
                model.eval()
                ref = logits_of(model, xv).numpy().astype(np.float32)
                acc = accuracy(torch.from_numpy(ref), yv)
                train_acc = accuracy(logits_of(model, xt), yt)
                train_s = time.time() - t0
                stem = f"{config}.{short}"
                logits_path = tdir / f"{stem}.val_logits.npy"
                np.save(logits_path, ref)
                summary = dict(task=task, config=config, family=family, role=role, d=d,
                               layers=layers, params=param_count(model), val_accuracy=acc,
                               train_accuracy=train_acc,
                               history=history, exports={})
                summary_models.append(summary)
                for exporter in EXPORTERS:
                    path = tdir / f"{stem}.{exporter}.onnx"
                    t1 = time.time()
                    try:
                        export(model, xv[:4], path, exporter, input_name)
                    except Exception as e:  # noqa: BLE001
                        raise SystemExit(f"FAIL export {task}/{stem} with {exporter}: "
                                         f"{type(e).__name__}: {e}") from e
                    # Any stray artefacts an exporter writes beside the model are reported.
                    onnx.checker.check_model(str(path), full_check=True)
                    info = inspect_onnx(path, [n for n, _ in model.named_parameters()])
                    op_usage(path, usage[exporter])
                    ext_files = check_export(path, info, exporter, input_name)
                    check = ort_check(path, input_name, x_val_np, ref)
                    onnx_bytes = path.stat().st_size
                    entry = dict(
                        id=f"{task}/{stem}.{exporter}",
                        model_key=f"{task}/{stem}",
                        task=task,
                        family=family,
                        config=config,
                        d=d,
                        layers=layers,
                        role=role,
                        exporter=exporter,
                        opset=info["opsets"]["ai.onnx"],
                        opsets=info["opsets"],
                        ir_version=info["ir_version"],
                        producer=info["producer"],
                        onnx=rel(path),
                        onnx_bytes=onnx_bytes,
                        onnx_sha256=sha256(path),
                        external_data=ext_files,
                        total_bytes=onnx_bytes + sum(e["bytes"] for e in ext_files),
                        input=info["inputs"][0],
                        output=info["outputs"][0],
                        classes=classes,
                        params=param_count(model),
                        val_accuracy=round(acc, 6),
                        train_accuracy=round(train_acc, 6),
                        val_logits=rel(logits_path),
                        datasets=files,
                        seeds=dict(global_seed=GLOBAL_SEED, init_seed=init_seed,
                                   shuffle_seed=SHUFFLE_SEED if role == "transmitter" else None,
                                   train_data_seed=TOY_TRAIN_SEED if task == "toy" else None,
                                   val_data_seed=TOY_VAL_SEED if task == "toy" else None,
                                   split_random_state=(DIGITS_SPLIT["random_state"]
                                                       if task == "digits" else None)),
                        trained=role == "transmitter",
                        training=(dict(tcfg, val_accuracy_per_epoch=history)
                                  if role == "transmitter" else None),
                        head=info["head"],
                        lstm_attributes=info["lstm_attributes"],
                        op_types=info["op_types"],
                        node_count=info["node_count"],
                        initializer_count=info["initializer_count"],
                        local_functions=info["local_functions"],
                        weight_initializers=info["weight_initializers"],
                        check=dict(onnx_checker="full_check", onnxruntime=ort.__version__,
                                   tolerance=TOLERANCE, **check),
                    )
                    entries.append(entry)
                    summary["exports"][exporter] = entry
                    print(f"{entry['id']:<45} params={entry['params']:>7} acc={acc:.4f} "
                          f"bytes={entry['total_bytes']:>8} ext={len(ext_files)} "
                          f"diff={check['max_abs_diff']:.2e} nodes={entry['node_count']:>4} "
                          f"export={time.time() - t1:5.1f}s", flush=True)
                print(f"  {task}/{stem}: built+trained in {train_s:.1f}s", flush=True)

    # Stray files written by the exporters (reports, artefacts) must not be left around.
    expected = {e["onnx"] for e in entries} | {x["path"] for e in entries for x in e["external_data"]}
    expected |= {e["val_logits"] for e in entries}
    expected |= {v for t in tasks_meta.values() for k, v in t["datasets"].items()
                 if isinstance(v, str)}
    stray = [rel(p) for sub in args.tasks for p in (OUT / sub).rglob("*")
             if p.is_file() and rel(p) not in expected]
    if stray:
        raise SystemExit(f"FAIL: unexpected files written: {stray}")

    manifest = dict(
        schema_version=SCHEMA_VERSION,
        description="Tessera ONNX model zoo. One entry in `models` per exported .onnx file; all "
                    "paths are relative to the folder holding this manifest. Schema: README.md, "
                    "section 'manifest.json'.",
        generator=dict(script="make_zoo.py",
                       command=" ".join(["python3 onnx-models/make_zoo.py", *argv]),
                       versions=versions, torch_threads=1, deterministic_algorithms=True),
        seeds=dict(global_seed=GLOBAL_SEED, transmitter_init_seed=TX_INIT_SEED,
                   receiver_init_seed=RX_INIT_SEED, shuffle_seed=SHUFFLE_SEED,
                   toy_train_data_seed=TOY_TRAIN_SEED, toy_val_data_seed=TOY_VAL_SEED,
                   digits_split_random_state=DIGITS_SPLIT["random_state"]),
        exporters={k: dict(v, **({"dynamic_axes": "batch (input and output axis 0)"}
                                 if k == "torchscript" else
                                 {"dynamic_shapes": "torch.export.Dim('batch') on input axis 0",
                                  "external_data": True, "optimize": True}))
                   for k, v in EXPORTERS.items()},
        tolerance=TOLERANCE,
        families=FAMILY_DESCRIPTIONS,
        tasks=tasks_meta,
        models=entries,
    )
    with open(OUT / "manifest.json", "w") as f:
        json.dump(manifest, f, indent=2)
        f.write("\n")

    if OUT == HERE:
        write_readme(manifest, summary_models, usage)
    else:  # the README describes the committed zoo; another draw is described by its manifest
        print(f"wrote {OUT / 'manifest.json'} (no README outside {HERE})")
    print(f"done: {len(entries)} ONNX files in {time.time() - t_start:.1f}s")


# --------------------------------------------------------------------------------------------
# README
# --------------------------------------------------------------------------------------------

def fmt_bytes(n: int) -> str:
    return f"{n / 1024:.1f} KiB" if n < 1024 * 1024 else f"{n / 1024 / 1024:.2f} MiB"


def write_readme(manifest: dict, models: list, usage: dict) -> None:
    v = manifest["generator"]["versions"]
    L = []
    w = L.append
    w("# onnx-models — Tessera's model zoo")
    w("")
    w("Exported ONNX models, their datasets, and the scripts that made them. Everything in this "
      "folder except the sources — `make_zoo.py`, `zoo_models.py` (the model families), "
      "`bench_torch.py`, `make_unclaimed.py`, `make_real.py`, `bench_real.py`, "
      "`bench_predecessor.py` and `requirements.txt` — and `unclaimed/` and `real/` is written by `make_zoo.py`, this "
      "README included (edit its template in the script, then re-run it).")
    w("")
    w("`unclaimed/` holds untrained digits receivers from families outside the zoo (2-D CNNs, a "
      "GRU, a plain MLP, a CLS-token transformer) for testing adapter selection and the "
      "fallback adapter; `python3 onnx-models/make_unclaimed.py` writes it, with its own "
      "README.")
    w("")
    w("`real/` is the real-size tier at tiny configs: torchvision's ResNet-18 and MobileNetV2 "
      "and transformers' BERT and DistilBERT, built by the libraries' own code at reduced width "
      "(transmitters trained, receivers untrained, both exporters, BatchNorm kept as its own "
      "node); `python3 onnx-models/make_real.py` writes it, with its own README, and `--size "
      "full --out DIR` the full-size models. `bench_real.py` runs plain distillation in "
      "PyTorch eager between two of them, the reference the real-size report compares with.")
    w("")
    w("`bench_torch.py` times the same architectures in PyTorch eager (capture with forward "
      "hooks on every block, and one training step) for `tessera bench`, which reports Tessera's "
      "speed as ratios against it: `python3 onnx-models/bench_torch.py [--json] [--threads N]`.")
    w("")
    w("`bench_predecessor.py` times the predecessor's (`tessera-core` 0.1.0) `execute()` on the "
      "toy quick matrix built from the same model code, so that a Tessera run can be compared "
      "with it the same hour (`docs/benchmarks/speed.md`; its docstring says how to install it "
      "beside this project's own `tessera` package).")
    w("")
    w("## Re-creating")
    w("")
    w("```sh")
    w("pip install -r onnx-models/requirements.txt && python3 onnx-models/make_zoo.py")
    w("```")
    w("")
    w("The script deletes and rewrites `toy/`, `digits/`, `manifest.json` and `README.md`. It is "
      "deterministic (fixed seeds, one PyTorch thread, `torch.use_deterministic_algorithms(True)`) "
      "and fails loudly when a model does not export, does not pass `onnx.checker.check_model(path, "
      "full_check=True)`, or when ONNX Runtime's logits differ from PyTorch's by more than "
      f"{TOLERANCE:g} (validation set, and batch sizes 1 and 3 to prove the batch axis is dynamic). "
      "It takes about 1–2 minutes on one CPU core (PyTorch and ONNX Runtime are limited to one "
      "thread).")
    w("")
    w("Other draws of the same zoo, to check that a result does not hang on one set of weights, "
      "go to another folder: `python3 onnx-models/make_zoo.py --out DIR --tasks toy "
      "--transmitter-seed 7 --receiver-seed 1007` builds the toy models with transmitters "
      "initialised and shuffled from seed 7 and receivers from seed 1007 (same data and recipe), "
      "and writes only `DIR/toy/` and `DIR/manifest.json`; `tessera bench cross-arch --zoo DIR` "
      "runs on it.")
    w("")
    w("Versions used: " + ", ".join(f"{k.replace('_', '-')} {val}" for k, val in v.items()) + ".")
    w("")
    w("## Tasks and datasets")
    w("")
    for task, t in manifest["tasks"].items():
        ds = t["datasets"]
        w(f"### `{task}`")
        w("")
        w(t["description"])
        w("")
        shape = "[N, " + ", ".join(str(s) for s in t["input"]["shape"][1:]) + "]"
        w(f"- input `{t['input']['name']}`: {t['input']['dtype']} {shape}; output `logits`: "
          f"float32 [N, {t['classes']}]; stem `{t['stem']}`.")
        w(f"- `{ds['train_inputs']}` / `{ds['train_labels']}`: {ds['train_count']} training "
          f"examples; `{ds['val_inputs']}` / `{ds['val_labels']}`: {ds['val_count']} validation "
          f"examples (labels int64; validation class counts {ds['val_label_balance']}).")
        tc = t["training"]
        w(f"- transmitters: {tc['optimizer']} lr {tc['lr']:g}, {tc['epochs']} epochs, batch "
          f"{tc['batch_size']}, cross-entropy, shuffled by `torch.randperm` with a "
          f"`torch.Generator` seeded {SHUFFLE_SEED}; receivers: untrained.")
        w("")
    txs = [m for m in models if m["role"] == "transmitter"]
    toy_tx = sorted((m["val_accuracy"], m["config"]) for m in txs if m["task"] == "toy")
    dig_tr = [m["val_accuracy"] for m in txs if m["task"] == "digits" and m["family"] == "transformer"]
    dig_other = [m["val_accuracy"] for m in txs if m["task"] == "digits" and m["family"] != "transformer"]
    toy_train = sorted({round(m["train_accuracy"], 4) for m in txs if m["task"] == "toy"})
    w("The toy task reproduces the predecessor's (tessera-core 0.1.0) quick cross-architecture "
      "benchmark: same data, families, configs and training recipe (its own runs report "
      "transmitters at 51–77 %; it retrains the transmitter for every pair, so single runs "
      "differ). With 400 examples the transmitters fit the training set (train accuracy "
      f"{'/'.join(f'{x:g}' for x in toy_train)}) and "
      f"generalise little: here they reach {toy_tx[0][0]:.3f} ({toy_tx[0][1]}) to "
      f"{toy_tx[-1][0]:.3f} ({toy_tx[-1][1]}) on validation, which is normal for this task. "
      "The digits task is a second, learnable task whose transmitters are trained to a plateau "
      "(see `training.val_accuracy_per_epoch` in the manifest): the transformer reaches "
      f"{dig_tr[0]:.3f} and the other families {min(dig_other):.3f}–{max(dig_other):.3f}. The "
      "digits transformer adds a learned position embedding to its stem; without one, mean "
      "pooling makes it blind to the order of the 8 image rows (trained the same way, it "
      "plateaued at 0.911).")
    w("")
    w("## Families")
    w("")
    w("All families end in a linear head `head` (d → classes); the stem is `stem` "
      "(`nn.Embedding(256, d)` for toy, `nn.Linear(8, d)` for digits); T is the sequence length "
      "(16 for toy, 8 for digits).")
    w("")
    for fam, desc in manifest["families"].items():
        w(f"- **{fam}**: {desc}")
    w("")
    w("PyTorch module names (and so the dynamo export's initializer names): `stem`, "
      "`blocks.{i}.…` (transformer: `self_attn`, `linear1`, `linear2`, `norm1`, `norm2`; mlp: "
      "`fc1`, `norm`, `fc2`, plus `flat_proj`; conv: `conv`, `bn`), `lstm`, `head`.")
    w("")
    w(f"Seeds: global `torch.manual_seed({GLOBAL_SEED})`; each transmitter is constructed right "
      f"after `torch.manual_seed({TX_INIT_SEED})`, each receiver after "
      f"`torch.manual_seed({RX_INIT_SEED})`. Models are put in eval mode before export "
      "(BatchNorm uses running statistics).")
    w("")
    w("## Files")
    w("")
    w("For each model `<task>/<config>.<tx|rx>`:")
    w("")
    w("- `<config>.<tx|rx>.torchscript.onnx` — `torch.onnx.export(dynamo=False, opset_version=17)`, "
      "`dynamic_axes` naming the batch axis `batch`;")
    w("- `<config>.<tx|rx>.dynamo.onnx` — `torch.onnx.export(dynamo=True, opset_version=18)`, "
      "`dynamic_shapes` with `torch.export.Dim('batch')`; plus `<config>.<tx|rx>.dynamo.onnx.data` "
      "where the exporter wrote the weights as external data (kept as written; the manifest lists "
      "it under `external_data`);")
    w("- `<config>.<tx|rx>.val_logits.npy` — PyTorch's float32 logits on the validation inputs "
      "(shared by both exports: same weights).")
    w("")

    # ---- model table
    w("## Models")
    w("")
    w("Validation accuracy measured in PyTorch (ONNX Runtime agrees on every argmax). Sizes are "
      "the `.onnx` file plus its external data, if any.")
    w("")
    w("| task | config | role | params | train acc | val acc | torchscript | dynamo (.onnx + .data) |")
    w("|---|---|---|---:|---:|---:|---:|---:|")
    for s in models:
        ts, dy = s["exports"]["torchscript"], s["exports"]["dynamo"]
        dsz = fmt_bytes(dy["onnx_bytes"])
        if dy["external_data"]:
            dsz += " + " + " + ".join(fmt_bytes(e["bytes"]) for e in dy["external_data"])
        w(f"| {s['task']} | {s['config']} | {s['role']} | {s['params']:,} | "
          f"{s['train_accuracy']:.4f} | {s['val_accuracy']:.4f} | {fmt_bytes(ts['total_bytes'])} | "
          f"{dsz} |")
    w("")
    w("Transmitter validation accuracy per epoch:")
    w("")
    for s in models:
        if s["history"]:
            h = s["history"]
            if len(h) > 12:
                shown = ", ".join(f"{a:.3f}" for a in h[:3]) + ", …, " + \
                        ", ".join(f"{a:.3f}" for a in h[-5:])
            else:
                shown = ", ".join(f"{a:.3f}" for a in h)
            w(f"- {s['task']}/{s['config']}: {shown}")
    w("")

    # ---- op types
    w("## Operator types")
    w("")
    w("Node counts per op type (main graph and any subgraphs; the exports contain no local "
      "functions unless noted). Counted with the `onnx` package from the files themselves; the "
      "same histogram is in each manifest entry's `op_types`.")
    w("")
    per = collections.OrderedDict()
    for e in manifest["models"]:
        key = (e["task"], e["family"], e["exporter"])
        per.setdefault(key, collections.Counter())
        # One config per key is enough for the op set; keep the largest counts seen.
        for op, c in e["op_types"].items():
            per[key][op] = max(per[key][op], c)
    all_ops = sorted({op for c in per.values() for op in c})
    for task in manifest["tasks"]:
        w(f"### `{task}`")
        w("")
        fams = [k for k in per if k[0] == task]
        w("| op | " + " | ".join(f"{f} {x}" for _, f, x in fams) + " |")
        w("|---|" + "---:|" * len(fams))
        for op in all_ops:
            if any(per[k][op] for k in fams):
                w(f"| {op} | " + " | ".join(str(per[k][op]) if per[k][op] else "" for k in fams) + " |")
        w("")
        w("(max over the configs of that family; node counts grow with the number of layers.)")
        w("")
    union = collections.defaultdict(set)
    for (task, fam, x), c in per.items():
        union[x].update(c)
    w("Union of op types, by exporter:")
    w("")
    for x, ops in union.items():
        w(f"- {x} ({len(ops)}): " + ", ".join(sorted(ops)))
    both = union["torchscript"] | union["dynamo"]
    w(f"- all ({len(both)}): " + ", ".join(sorted(both)))
    w("")
    lstm = {}
    for e in manifest["models"]:
        if e["lstm_attributes"]:
            lstm.setdefault(e["exporter"], e["lstm_attributes"][0])
    if lstm:
        w("LSTM node attributes (first LSTM node of an lstm export): " + "; ".join(
            f"{x}: " + ", ".join(f"{k}={val}" for k, val in sorted(a.items())) for x, a in lstm.items()))
        w("")

    w("### Attributes and arities seen")
    w("")
    w("Per op type and exporter: number of inputs (`_` marks an empty optional input), number "
      "of outputs, and every attribute value that occurs (all models of the zoo).")
    w("")
    w("| op | exporter | inputs | outputs | attributes |")
    w("|---|---|---|---|---|")
    for op in sorted(set(usage["torchscript"]) | set(usage["dynamo"])):
        for x in ("torchscript", "dynamo"):
            u = usage[x].get(op)
            if not u:
                continue
            ar = ", ".join(str(a) for a in sorted(u["arity"], key=str))
            outs = ", ".join(str(a) for a in sorted(u["outputs"]))
            attrs = "; ".join(f"{k} ∈ {{{', '.join(sorted(vs))}}}" for k, vs in sorted(u["attrs"].items()))
            w(f"| {op} | {x} | {ar} | {outs} | {attrs} |")
    w("")

    # ---- notes
    w("## What the exporters do to the weights (read before fine-tuning an export)")
    w("")
    w("Both exporters optimise with the initializer values in hand, so the graph of an export "
      "depends on the weights, not only on the architecture:")
    w("")
    w("- **Identical initializers are merged.** In an untrained receiver many parameters are "
      "equal (LayerNorm weights = 1, LayerNorm biases = 0, the attention biases = 0); each exporter "
      "keeps one copy. E.g. in `toy/transformer_64d_2L.rx` all 4 LayerNormalization nodes read "
      "one weight tensor, `blocks.0.norm1.weight`. Torchscript keeps the other parameter names "
      "as the outputs of Identity nodes (`Identity(blocks.0.norm1.weight) -> "
      "blocks.1.norm2.weight`; these Identity nodes occur only for this reason); dynamo feeds the "
      "one initializer to every consumer directly. Training that tensor as one parameter ties "
      "those PyTorch parameters together; to fine-tune as PyTorch would, give each consumer its "
      "own copy. Trained transmitters have no merged weights. The manifest lists merged tensors "
      "per export under `weight_initializers.shared` (and the Identity aliases under "
      "`pytorch_params_by_alias`).")
    w("- **Zero biases can disappear (dynamo).** The dynamo exporter drops an all-zero Gemm "
      "bias: in the receivers' attention output projection the Gemm has two inputs and "
      "`self_attn.out_proj.bias` is not in the graph at all. Torchscript keeps it (merged with "
      "other zero tensors).")
    w("- **Transposed and renamed weights.** Linear layers feeding MatMul (attention in-projection, "
      "the transformer's feed-forward, a Linear applied to a 3-D tensor) are stored pre-transposed "
      "([in, out]) under generated names (`onnx::MatMul_NNN` in torchscript, `val_NNN` in dynamo); "
      "Gemm keeps the PyTorch name and layout with `transB=1`. The embedding is a Gather on "
      "`stem.weight` in both.")
    w("- **BatchNorm is folded into Conv.** Neither export contains BatchNormalization: eval-mode "
      "BatchNorm1d is folded into the preceding Conv's weight and bias (torchscript renames them "
      "`onnx::Conv_NNN`; dynamo keeps the names `blocks.{i}.conv.weight` / `.bias` but stores the "
      "folded values). The `bn.*` parameters and running statistics are not in the files.")
    w("- **LSTM weights are repacked.** Each `nn.LSTM` layer becomes one ONNX LSTM node "
      "(`direction=bidirectional`, `hidden_size=d/2`, default activations) with W [2, 4h, in], "
      "R [2, 4h, h], B [2, 8h] in ONNX gate order (i, o, f, c), under generated names. Torchscript "
      "LSTM nodes have 3 outputs (Y, Y_h, Y_c), dynamo ones only Y. Initial states are zeros "
      "built from the batch size (ConstantOfShape in torchscript, Expand in dynamo), so they "
      "depend on the symbolic batch dimension.")
    w("- **Opset differences.** In the opset-18 (dynamo) files ReduceMean takes `axes` as a second "
      "input; in the opset-17 (torchscript) files it is an attribute. GELU (exact, erf form) is "
      "decomposed in both: `x * 0.5 * (1 + Erf(x / sqrt(2)))` — Div, Erf, Add, Mul, Mul. "
      "LayerNorm is a single LayerNormalization node (axis -1, epsilon 1e-5) in both. Torchscript "
      "computes the attention scale at run time from the shape (Shape, Slice, Cast, Sqrt, Div, "
      "Cast, Sqrt, then Mul on q and on k) and does its reshapes with shape arithmetic (Shape, "
      "Gather, Div, Cast, Mod on constants, Unsqueeze, Concat, Slice); dynamo folds the scale "
      "into a constant Mul on q and on k and most shapes into constants.")
    w("- **External data.** Every dynamo export stores its larger initializers in "
      "`<file>.onnx.data` beside the .onnx (location recorded relative to the .onnx); small ones "
      "(biases, shape constants) stay inline. Torchscript exports are self-contained.")
    w("")

    # ---- manifest
    w("## manifest.json")
    w("")
    w("Machine-readable index; all paths relative to this folder. Top level:")
    w("")
    w("- `schema_version` (int, currently 1), `description`, `generator` (script, command, "
      "`versions`), `seeds`, `exporters` (the export arguments), `tolerance` (1e-4), `families` "
      "(architecture descriptions);")
    w("- `tasks.<toy|digits>`: `description`, `classes`, `seq_len`, `stem`, `input` / `output` "
      "(`name`, `dtype`, `shape` with `null` for the batch axis), `datasets` (`train_inputs`, "
      "`train_labels`, `val_inputs`, `val_labels` paths, `train_count`, `val_count`, "
      "`val_label_balance`), `source`, `training`;")
    w("- `models`: one object per `.onnx` file:")
    w("")
    w("| key | type | meaning |")
    w("|---|---|---|")
    rows = [
        ("id", "string", "`<task>/<config>.<tx|rx>.<exporter>` — unique"),
        ("model_key", "string", "`<task>/<config>.<tx|rx>` — shared by the two exports of one model"),
        ("task", "string", "`toy` or `digits`"),
        ("family", "string", "`transformer`, `mlp`, `conv`, `lstm`"),
        ("config", "string", "e.g. `transformer_64d_2L`"),
        ("d, layers", "int", "width and depth"),
        ("role", "string", "`transmitter` (trained) or `receiver` (untrained)"),
        ("exporter", "string", "`torchscript` or `dynamo`"),
        ("opset", "int", "default-domain opset of the file (17 or 18)"),
        ("opsets", "object", "every opset import, domain → version"),
        ("ir_version, producer", "int, string", "from the file"),
        ("onnx", "string", "path of the .onnx file"),
        ("onnx_bytes, onnx_sha256", "int, string", "size and hash of the .onnx file"),
        ("external_data", "array", "`{path, bytes, sha256}` per external-data file the model "
                                   "references (empty when weights are inline)"),
        ("total_bytes", "int", ".onnx plus external data"),
        ("input, output", "object", "`name`, `dtype` (`int64`/`float32`), `shape` (`null` = "
                                    "symbolic), `symbolic_dims` (dim_param names, `null` = fixed)"),
        ("classes", "int", "2 (toy) or 10 (digits)"),
        ("params", "int", "PyTorch parameter count (BatchNorm running stats excluded)"),
        ("val_accuracy", "float", "PyTorch accuracy on the validation set, 0..1"),
        ("train_accuracy", "float", "PyTorch accuracy on the training set, 0..1"),
        ("val_logits", "string", "float32 .npy [N_val, classes]: PyTorch's logits for the "
                                 "validation inputs (ONNX Runtime matches within `tolerance`)"),
        ("datasets", "object", "`train_inputs`, `train_labels`, `val_inputs`, `val_labels` paths"),
        ("seeds", "object", "`global_seed`, `init_seed`, `shuffle_seed` (null for receivers), "
                            "`train_data_seed` / `val_data_seed` (toy; null for digits), "
                            "`split_random_state` (digits; null for toy) — every key always present"),
        ("trained, training", "bool, object|null", "training recipe and "
                                                   "`val_accuracy_per_epoch` (transmitters only)"),
        ("head", "object|null", "the classification-head node: `node`, `op_type`, `input` (the "
                                "pooled representation tensor, a natural tap), `weight` initializer"),
        ("lstm_attributes", "array", "attributes of each LSTM node (lstm family)"),
        ("op_types", "object", "op type → node count (non-default domains as `domain::Op`)"),
        ("node_count, initializer_count, local_functions", "int", "graph statistics"),
        ("weight_initializers", "object", "float initializers with more than one element: `count`, "
                                          "`elements`, `shared` (name → number of consuming nodes, "
                                          "for those read by more than one node), "
                                          "`pytorch_params_by_name` (PyTorch parameter names that "
                                          "are initializer names), `pytorch_params_by_alias` "
                                          "(parameter name → initializer, where an Identity node "
                                          "outputs the parameter name from a merged initializer; "
                                          "torchscript only), `pytorch_params_not_by_name` (the "
                                          "rest: folded, transposed, repacked or dropped)"),
        ("check", "object", "`max_abs_diff` (full validation batch) and `max_abs_diff_batch_1_3` "
                            "between ONNX Runtime and PyTorch, `tolerance`, ORT version"),
    ]
    for k, t, m in rows:
        w(f"| `{k}` | {t.replace('|', chr(92) + '|')} | {m.replace('|', chr(92) + '|')} |")
    w("")
    total = sum(e["total_bytes"] for e in manifest["models"])
    w(f"{len(manifest['models'])} ONNX files, {fmt_bytes(total)} of models in all (with external "
      "data).")
    w("")
    (OUT / "README.md").write_text("\n".join(L))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
