#!/usr/bin/env python3
"""Plain knowledge distillation in PyTorch eager on the real-size tier: the reference a Tessera
transfer between the same two models is compared with.

    python3 onnx-models/bench_real.py --tier DIR --task images \\
        --transmitter resnet18.tx.dynamo --receiver mobilenet_v2 [--threads 2] [--json]

The receiver is rebuilt by make_real.py's own builder at the tier's size with the receiver seed,
and its eval-mode validation logits are checked against the exported receiver's (so it starts
from exactly the weights Tessera starts from). The transmitter's soft targets come from its
exported ONNX file run by ONNX Runtime. Training: Hinton distillation, KL(teacher_T || student_T)
· T² at T = 2 on the unlabelled training inputs, Adam at Tessera's default learning rate 3e-3
(or --learning-rate) after Tessera's default linear warm-up over the first epoch
(--warmup-epochs), 20 epochs of batches of 32 shuffled by a torch.Generator seeded 0, train mode (batch statistics
update). Reported: agreement with the transmitter and accuracy on the validation inputs after
the last epoch, the median training step (ms) over the run, the run's seconds and the process's
peak resident memory; the floating-point operations of one training step (forward and
backward, counted by `torch.utils.flop_counter`), the GFLOP/s the median step reaches, and the
machine's matrix-product peak at the same threads (the best of five 2048×2048 float32 products).
"""

from __future__ import annotations

import argparse
import copy
import json
import resource
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch
import torch.nn.functional as F
from torch.utils.flop_counter import FlopCounterMode

import make_real
import make_zoo as zoo

TEMPERATURE = 2.0
LEARNING_RATE = 3e-3
WARMUP_EPOCHS = 1.0
EPOCHS = 20
BATCH_SIZE = 32
PEAK_SIZE = 2048


def matmul_peak_gflops() -> float:
    """The best GFLOP/s of five square float32 matrix products at the current threads."""
    a, b = torch.randn(PEAK_SIZE, PEAK_SIZE), torch.randn(PEAK_SIZE, PEAK_SIZE)
    a @ b
    best = float("inf")
    for _ in range(5):
        began = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - began)
    return 2 * PEAK_SIZE ** 3 / best / 1e9


def step_flops(student, x, soft) -> int:
    """Floating-point operations of one distillation step's forward and backward on `x`."""
    counter = FlopCounterMode(display=False)
    with counter:
        log_student = F.log_softmax(student(x) / TEMPERATURE, dim=1)
        loss = F.kl_div(log_student, soft, reduction="batchmean") * TEMPERATURE ** 2
        loss.backward()
    student.zero_grad()
    return counter.get_total_flops()


def main(argv) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tier", type=Path, required=True, help="a folder make_real.py wrote")
    parser.add_argument("--task", choices=("images", "text"), required=True)
    parser.add_argument("--transmitter", required=True, help="file stem, e.g. resnet18.tx.dynamo")
    parser.add_argument("--receiver", required=True, choices=list(make_real.FAMILIES))
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--learning-rate", type=float, default=LEARNING_RATE,
                        help="Adam's learning rate (default Tessera's, 3e-3)")
    parser.add_argument("--warmup-epochs", type=float, default=WARMUP_EPOCHS,
                        help="epochs the rate warms up over (default Tessera's, 1)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    manifest = json.loads((args.tier / "manifest.json").read_text())
    folder = args.tier / args.task
    load = lambda name: torch.from_numpy(np.load(folder / name))
    x_train, x_val, y_val = load("train_inputs.npy"), load("val_inputs.npy"), load("val_labels.npy")

    options = ort.SessionOptions()
    options.intra_op_num_threads = args.threads
    teacher = ort.InferenceSession(str(folder / f"{args.transmitter}.onnx"), options,
                                   providers=["CPUExecutionProvider"])
    input_name = teacher.get_inputs()[0].name
    teach = lambda x: torch.from_numpy(teacher.run(["logits"], {input_name: x.numpy()})[0])
    targets_train, targets_val = teach(x_train), teach(x_val)

    torch.manual_seed(make_real.RX_SEED)
    student = make_real.FAMILIES[args.receiver][0](manifest["size"])
    exported = np.load(folder / f"{args.receiver}.rx.val_logits.npy")
    start = zoo.logits_of(student, x_val).numpy()
    if np.abs(start - exported).max() > 1e-4:
        raise SystemExit("FAIL: the rebuilt receiver is not the exported one "
                         f"(max |diff| {np.abs(start - exported).max():.3g})")

    optimiser = torch.optim.Adam(student.parameters(), lr=args.learning_rate)
    warmup = round(args.warmup_epochs * -(-len(x_train) // BATCH_SIZE))
    # Step k (from 0) at (k + 1) / warmup of the rate during the warm-up, as Tessera's schedule.
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimiser, lambda step: min(1.0, (step + 1) / warmup) if warmup else 1.0)
    generator = torch.Generator().manual_seed(0)
    soft = F.softmax(targets_train / TEMPERATURE, dim=1)
    # Counted on a copy: the step must not move the statistics of the student that trains.
    flops = step_flops(copy.deepcopy(student).train(), x_train[:BATCH_SIZE], soft[:BATCH_SIZE])
    steps, began = [], time.time()
    for _ in range(EPOCHS):
        student.train()
        order = torch.randperm(len(x_train), generator=generator)
        for first in range(0, len(x_train), BATCH_SIZE):
            rows = order[first:first + BATCH_SIZE]
            t0 = time.perf_counter()
            optimiser.zero_grad()
            log_student = F.log_softmax(student(x_train[rows]) / TEMPERATURE, dim=1)
            loss = F.kl_div(log_student, soft[rows], reduction="batchmean") * TEMPERATURE ** 2
            loss.backward()
            optimiser.step()
            schedule.step()
            steps.append((time.perf_counter() - t0) * 1e3)
    seconds = time.time() - began
    logits = zoo.logits_of(student, x_val)
    result = dict(
        transmitter=args.transmitter, receiver=args.receiver, size=manifest["size"],
        threads=args.threads, epochs=EPOCHS, steps=len(steps), learning_rate=args.learning_rate,
        warmup_epochs=args.warmup_epochs,
        agreement=float((logits.argmax(1) == targets_val.argmax(1)).float().mean()),
        accuracy=zoo.accuracy(logits, y_val),
        transmitter_accuracy=zoo.accuracy(targets_val, y_val),
        step_ms=statistics.median(steps), seconds=round(seconds, 1),
        step_gflop=round(flops / 1e9, 3),
        step_gflops_per_s=round(flops / 1e9 / (statistics.median(steps) / 1e3), 1),
        matmul_peak_gflops_per_s=round(matmul_peak_gflops(), 1),
        peak_rss_mib=round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        parameters=zoo.param_count(student),
    )
    if args.json:
        print(json.dumps(result))
    else:
        for key, value in result.items():
            print(f"{key:22s} {value}")


if __name__ == "__main__":
    main(sys.argv[1:])
