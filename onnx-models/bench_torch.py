#!/usr/bin/env python3
"""PyTorch reference timings for the model zoo, to compare Tessera's own numbers against.

    python3 onnx-models/bench_torch.py [--manifest PATH] [--batch-size 32] [--repeats 5]
        [--steps 20] [--threads 1] [--only capture|train_step] [--models SUBSTRING] [--json]
    python3 onnx-models/bench_torch.py --only recipe [--seeds 5] [--threads 1]
        [--models SUBSTRING] [--json]

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

--only recipe is a separate, slower part (not run otherwise): how well the zoo's own training
recipe does from each receiver's initial weights, the reference for any method that trains a
receiver. For each receiver (one per receiver `model_key`) the model is built by `build_model`
with the receiver's `seeds.init_seed`, and its eval-mode logits on the validation inputs are
checked against the exported `val_logits` (max |diff| <= the manifest's tolerance, else the run
fails), so the initial weights are exactly the exported receiver's. It is then trained as
make_zoo.py trains the transmitters: Adam, cross-entropy, the learning rate, epochs and batch size
of the task's `tasks.<task>.training` in the manifest (12 epochs for toy, 60 for digits), train
mode during the epochs, each epoch shuffled by `torch.randperm` with a `torch.Generator` seeded
once per run, last batch partial, deterministic algorithms on. One run per shuffle seed
0..--seeds-1, each from the same initial weights; reported per receiver: the eval-mode validation
accuracy after the last epoch for each seed, their mean, sample standard deviation, min and max,
and the wall time of all its runs. --batch-size, --repeats and --steps do not apply to it.

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


def load_recipe(manifest: dict, task: str) -> dict:
    """The task's training recipe: `tasks.<task>.training`, else a transmitter's `training`."""
    recipe = manifest.get("tasks", {}).get(task, {}).get("training")
    if recipe is None:
        recipe = next((e["training"] for e in manifest["models"]
                       if e["task"] == task and e["role"] == "transmitter" and e.get("training")),
                      None)
    if recipe is None:
        sys.exit(f"bench_torch.py: the manifest has no training recipe for task {task!r}")
    if (recipe.get("optimizer", "Adam"), recipe.get("loss", "cross_entropy")) != ("Adam",
                                                                                  "cross_entropy"):
        sys.exit(f"bench_torch.py: task {task!r}: recipe {recipe} is not Adam + cross-entropy")
    return recipe


def check_receiver_init(model, entry: dict, xv: torch.Tensor, root: Path,
                        tolerance: float) -> float:
    """Max |diff| between the built model's validation logits and the exported receiver's; exits
    when over `tolerance` (the built model would not start from the exported weights)."""
    model.eval()
    with torch.no_grad():
        logits = model(xv).numpy()
    ref = np.load(root / entry["val_logits"])
    if logits.shape != ref.shape:
        sys.exit(f"bench_torch.py: {entry['model_key']}: built logits {logits.shape}, exported "
                 f"{entry['val_logits']} {ref.shape}")
    diff = float(np.abs(logits - ref).max())
    if not diff <= tolerance:  # also catches NaN
        sys.exit(f"bench_torch.py: {entry['model_key']}: built receiver's validation logits differ "
                 f"from {entry['val_logits']} by {diff:.3g} > {tolerance:g}: zoo_models.py or "
                 "PyTorch changed since the zoo was exported, the init is not the exported one")
    return diff


def train_recipe(model, x, y, xv, yv, recipe: dict, shuffle_seed: int) -> float:
    """make_zoo.py's `train`: returns the eval-mode validation accuracy after the last epoch."""
    opt = torch.optim.Adam(model.parameters(), lr=recipe["lr"])
    g = torch.Generator().manual_seed(shuffle_seed)
    bs = recipe["batch_size"]
    for _ in range(recipe["epochs"]):
        model.train()
        perm = torch.randperm(len(x), generator=g)
        for i in range(0, len(x), bs):  # the last batch may be partial, as in make_zoo
            idx = perm[i:i + bs]
            opt.zero_grad()
            F.cross_entropy(model(x[idx]), y[idx]).backward()
            opt.step()
    model.eval()
    with torch.no_grad():
        return int((model(xv).argmax(dim=1) == yv).sum()) / len(yv)


def bench_recipe(entry: dict, recipe: dict, data: tuple, root: Path, tolerance: float,
                 seeds: int) -> dict:
    """Trains the receiver once per shuffle seed 0..seeds-1, each time from its exported init."""
    x, y, xv, yv = data
    init_seed = entry["seeds"]["init_seed"]
    init_diff = None
    accs = []
    t0 = time.perf_counter()
    for shuffle_seed in range(seeds):
        model = zoo_models.build_model(entry["task"], entry["family"], entry["d"],
                                       entry["layers"], seed=init_seed)
        if init_diff is None:  # the build is seeded: one check covers every run
            init_diff = check_receiver_init(model, entry, xv, root, tolerance)
        accs.append(train_recipe(model, x, y, xv, yv, recipe, shuffle_seed))
        print(f"  shuffle seed {shuffle_seed}: val accuracy {accs[-1]:.4f}", file=sys.stderr,
              flush=True)
    seconds = time.perf_counter() - t0
    return dict(task=entry["task"], family=entry["family"], config=entry["config"],
                init_seed=init_seed, init_max_abs_diff=init_diff, epochs=recipe["epochs"],
                batch_size=recipe["batch_size"], lr=recipe["lr"], seeds=list(range(seeds)),
                val_accuracy=accs, mean=statistics.fmean(accs),
                std=statistics.stdev(accs) if len(accs) > 1 else 0.0,
                min=min(accs), max=max(accs), seconds=seconds)


def print_recipe_table(report: dict) -> None:
    print(f"PyTorch {report['torch_version']}, {report['threads']} thread(s): zoo recipe from "
          "each receiver's init, validation accuracy after the last epoch per shuffle seed")
    header = (f"{'receiver':<30} {'epochs':>6} {'seeds':>5} {'mean':>7} {'std':>7} {'min':>7} "
              f"{'max':>7} {'seconds':>8}  per seed")
    print(header)
    print("-" * len(header))
    for key, r in report["recipe"].items():
        print(f"{key:<30} {r['epochs']:>6d} {len(r['seeds']):>5d} {r['mean']:>7.4f} "
              f"{r['std']:>7.4f} {r['min']:>7.4f} {r['max']:>7.4f} {r['seconds']:>8.1f}  "
              + " ".join(f"{a:.4f}" for a in r["val_accuracy"]))
    print(f"peak RSS {report['peak_rss_mib']:.1f} MiB "
          f"({report['rss_after_imports_mib']:.1f} MiB after imports)")


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
    ap.add_argument("--only", choices=["capture", "train_step", "recipe"],
                    help="one part; `recipe` (not run otherwise) trains the receivers")
    ap.add_argument("--seeds", type=int, default=5,
                    help="recipe: shuffle seeds 0..N-1, one training run each")
    ap.add_argument("--models", default="", help="keep model keys containing this substring")
    ap.add_argument("--json", action="store_true", help="print one JSON object to stdout")
    args = ap.parse_args()
    if min(args.batch_size, args.repeats, args.steps, args.threads, args.seeds) < 1:
        ap.error("--batch-size, --repeats, --steps, --threads and --seeds must be >= 1")

    try:
        manifest = json.loads(args.manifest.read_text())
    except (OSError, json.JSONDecodeError) as e:
        sys.exit(f"bench_torch.py: cannot read manifest {args.manifest}: {e}")
    root = args.manifest.resolve().parent  # manifest paths are relative to its folder

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    rss_after_imports = peak_rss_mib()

    if args.only == "recipe":
        return run_recipe(args, manifest, root, rss_after_imports)

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


def run_recipe(args, manifest: dict, root: Path, rss_after_imports: float) -> int:
    """The `--only recipe` part: train every receiver with the zoo recipe, --seeds times."""
    torch.use_deterministic_algorithms(True)  # as make_zoo.py trains
    # One receiver per receiver model_key (the manifest lists each twice, one per exporter).
    receivers = {}
    for e in manifest["models"]:
        if e["role"] == "receiver" and args.models in e["model_key"]:
            receivers.setdefault(e["model_key"], e)
    if not receivers:
        sys.exit(f"bench_torch.py: no receiver model_key in {args.manifest} contains "
                 f"{args.models!r}")
    tolerance = manifest.get("tolerance", 1e-4)

    data = {}
    recipe = {}
    for key, e in receivers.items():
        print(f"{key} ...", file=sys.stderr, flush=True)
        ds = e["datasets"]
        if e["task"] not in data:
            data[e["task"]] = tuple(torch.from_numpy(np.load(root / ds[k])) for k in
                                    ("train_inputs", "train_labels", "val_inputs", "val_labels"))
        recipe[key] = bench_recipe(e, load_recipe(manifest, e["task"]), data[e["task"]], root,
                                   tolerance, args.seeds)

    report = dict(torch_version=torch.__version__, threads=torch.get_num_threads(),
                  recipe=recipe, rss_after_imports_mib=rss_after_imports,
                  peak_rss_mib=peak_rss_mib())
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print_recipe_table(report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
