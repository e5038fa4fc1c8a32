#!/usr/bin/env python3
"""PyTorch reference timings for the model zoo, to compare Tessera's own numbers against.

    python3 onnx-models/bench_torch.py [--manifest PATH] [--batch-size 32] [--repeats 5]
        [--steps 20] [--threads 1] [--only capture|train_step] [--models SUBSTRING] [--json]

For each architecture in manifest.json (one per transmitter `model_key`; weights do not affect
speed), the model is built by zoo_models.py's `build_model`, the one make_zoo.py exports, so it is exactly the exported
architecture, and measured on CPU:

- capture: eager forward passes over the task's training inputs in batches of --batch-size,
  under torch.inference_mode(), with a forward hook on every block (`blocks.{i}`, or `lstm`)
  that copies the block's output (`.detach().clone()`, appended to a list), the logits kept
  likewise. One warm-up pass, then --repeats timed passes; median and minimum pass time.
  Note: PyTorch skips nn.TransformerEncoderLayer's fused inference path when hooks are attached
  to it, so the transformer numbers are those of its unfused path, as for any hooking user
  (no measurable difference at these sizes when checked).
- train_step: one Adam (lr 1e-3) step on cross-entropy against the training labels at batch
  --batch-size, model in train mode as make_zoo trains it; 3 warm-up steps, then the median
  (and minimum) of --steps timed steps.
- peak_rss_mib: the process's peak resident memory (ru_maxrss) at the end. Most of it is
  PyTorch's own libraries: `rss_after_imports_mib` is the peak before any model was built.

With --json, stdout holds exactly one JSON object; progress and warnings go to stderr.
"""

from __future__ import annotations

import argparse
import gc
import json
import resource
import statistics
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent

try:
    import numpy as np
    import torch
    import torch.nn.functional as F

    import zoo_models
except ImportError as e:
    sys.exit(f"bench_torch.py: {e}; install onnx-models/requirements.txt "
             "(pip install -r onnx-models/requirements.txt)")


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def tap_modules(model) -> list:
    """The model's blocks: `blocks` (transformer layers, MLP / conv residual blocks) or `lstm`."""
    blocks = getattr(model, "blocks", None)
    return list(blocks) if blocks is not None else [model.lstm]


def build(entry: dict):
    """The entry's architecture with transmitter initial weights (untrained: speed is the same)."""
    model = zoo_models.build_model(entry["task"], entry["family"], entry["d"], entry["layers"],
                                   seed=0)
    params = sum(p.numel() for p in model.parameters())
    if params != entry["params"]:
        print(f"warning: {entry['model_key']}: built {params} parameters, manifest says "
              f"{entry['params']}; zoo_models.py changed since the zoo was exported?", file=sys.stderr)
    return model


def bench_capture(model, x: torch.Tensor, batch_size: int, repeats: int) -> dict:
    model.eval()
    captured: list = []

    def hook(_module, _inputs, output):
        # nn.LSTM returns (output, (h_n, c_n)); the tap is the sequence output.
        out = output[0] if isinstance(output, tuple) else output
        captured.append(out.detach().clone())

    handles = [m.register_forward_hook(hook) for m in tap_modules(model)]
    times = []
    try:
        with torch.inference_mode():
            for i in range(1 + repeats):  # pass 0 is the warm-up
                captured.clear()
                gc.collect()
                t0 = time.perf_counter()
                for start in range(0, len(x), batch_size):
                    captured.append(model(x[start:start + batch_size]))
                elapsed = time.perf_counter() - t0
                if i > 0:
                    times.append(elapsed)
    finally:
        for h in handles:
            h.remove()
    captured.clear()
    median = statistics.median(times)
    return dict(samples=len(x), taps=len(handles), capture_samples_per_s=len(x) / median,
                capture_median_s=median, capture_min_s=min(times))


def bench_train_step(model, x: torch.Tensor, y: torch.Tensor, batch_size: int, steps: int) -> dict:
    model.train()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    n_batches = len(x) // batch_size  # full batches only, so every step has the same shape
    if n_batches == 0:
        raise SystemExit(f"bench_torch.py: --batch-size {batch_size} exceeds the {len(x)} "
                         "training samples")
    times = []
    for i in range(3 + steps):  # steps 0..2 are warm-ups
        s = (i % n_batches) * batch_size
        xb, yb = x[s:s + batch_size], y[s:s + batch_size]
        t0 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        F.cross_entropy(model(xb), yb).backward()
        opt.step()
        elapsed = time.perf_counter() - t0
        if i >= 3:
            times.append(elapsed)
    return dict(train_step_ms=statistics.median(times) * 1e3, train_step_min_ms=min(times) * 1e3)


def print_table(report: dict) -> None:
    print(f"PyTorch {report['torch_version']}, {report['threads']} thread(s), "
          f"batch {report['batch_size']}")
    header = (f"{'model_key':<30} {'family':<12} {'samples':>7} {'taps':>4} {'capture/s':>10} "
              f"{'median s':>9} {'min s':>9} {'train ms':>9} {'min ms':>8}")
    print(header)
    print("-" * len(header))

    def cell(r, key, width, fmt):
        return format(r[key], fmt).rjust(width) if key in r else "-".rjust(width)

    for key, r in report["results"].items():
        print(f"{key:<30} {r['family']:<12} {cell(r, 'samples', 7, 'd')} {cell(r, 'taps', 4, 'd')} "
              f"{cell(r, 'capture_samples_per_s', 10, '.0f')} "
              f"{cell(r, 'capture_median_s', 9, '.4f')} {cell(r, 'capture_min_s', 9, '.4f')} "
              f"{cell(r, 'train_step_ms', 9, '.2f')} {cell(r, 'train_step_min_ms', 8, '.2f')}")
    print(f"peak RSS {report['peak_rss_mib']:.1f} MiB "
          f"({report['rss_after_imports_mib']:.1f} MiB after imports)")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--manifest", type=Path, default=HERE / "manifest.json")
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--repeats", type=int, default=5, help="timed capture passes")
    ap.add_argument("--steps", type=int, default=20, help="timed training steps")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--only", choices=["capture", "train_step"])
    ap.add_argument("--models", default="", help="keep model keys containing this substring")
    ap.add_argument("--json", action="store_true", help="print one JSON object to stdout")
    args = ap.parse_args()
    if args.batch_size < 1 or args.repeats < 1 or args.steps < 1 or args.threads < 1:
        ap.error("--batch-size, --repeats, --steps and --threads must be >= 1")

    try:
        manifest = json.loads(args.manifest.read_text())
    except (OSError, json.JSONDecodeError) as e:
        sys.exit(f"bench_torch.py: cannot read manifest {args.manifest}: {e}")
    root = args.manifest.resolve().parent  # manifest paths are relative to its folder

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    rss_after_imports = peak_rss_mib()

    # One architecture per transmitter model_key (the manifest lists each twice, one per exporter).
    archs = {}
    for e in manifest["models"]:
        if e["role"] == "transmitter" and args.models in e["model_key"]:
            archs.setdefault(e["model_key"], e)
    if not archs:
        sys.exit(f"bench_torch.py: no transmitter model_key in {args.manifest} contains "
                 f"{args.models!r}")

    data = {}
    results = {}
    for key, e in archs.items():
        print(f"{key} ...", file=sys.stderr, flush=True)
        ds = e["datasets"]
        if e["task"] not in data:
            data[e["task"]] = (torch.from_numpy(np.load(root / ds["train_inputs"])),
                               torch.from_numpy(np.load(root / ds["train_labels"])))
        x, y = data[e["task"]]
        r = dict(task=e["task"], family=e["family"], config=e["config"])
        # A fresh model per part, so the training steps cannot change what capture runs.
        if args.only in (None, "capture"):
            r.update(bench_capture(build(e), x, args.batch_size, args.repeats))
        if args.only in (None, "train_step"):
            r.update(bench_train_step(build(e), x, y, args.batch_size, args.steps))
        results[key] = r

    report = dict(torch_version=torch.__version__, threads=torch.get_num_threads(),
                  batch_size=args.batch_size, results=results,
                  rss_after_imports_mib=rss_after_imports, peak_rss_mib=peak_rss_mib())
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print_table(report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
