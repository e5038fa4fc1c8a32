#!/usr/bin/env python3
"""The predecessor's transfer time on the toy quick matrix, measured on this machine now: the
reference a Tessera run of the same matrix is compared with side by side.

    pip install --no-deps --target PREDECESSOR tessera-core==0.1.0
    pip install scipy safetensors msgpack
    TESSERA_CORE_PATH=PREDECESSOR python3 onnx-models/bench_predecessor.py [--threads 2] [--json]

tessera-core's import name is `tessera`, as is this project's Python package, so it is read
from its own folder (TESSERA_CORE_PATH, as `.ci/run` installs it). Its quick benchmark
(`../shared/reference/`): the five toy configs and their 20 ordered pairs, each transmitter
trained with its recipe (Adam 1e-3, 12 epochs, batch 32, cross-entropy, the zoo's seeds) on the
zoo's 400 training inputs, each receiver untrained, then `ModeATransfer.execute(uhs_epochs=5,
finetune_epochs=3, finetune_lr=5e-4, privacy_epsilon=8.0)` with data loaders of batch 32 over
the 400 training and 150 held-out inputs. Reported: the seconds of each `execute()` alone and
their mean.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, TensorDataset

import make_zoo as zoo
import zoo_models

HERE = Path(__file__).resolve().parent
BATCH_SIZE = 32


def main(argv) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    predecessor = os.environ.get("TESSERA_CORE_PATH")
    if predecessor:
        sys.path.insert(0, predecessor)
    try:
        from tessera.transfer import ModeATransfer
    except ImportError as error:
        raise SystemExit(f"tessera-core 0.1.0 is not importable ({error}); install it as the "
                         "docstring says and set TESSERA_CORE_PATH") from error
    logging.disable(logging.INFO)
    torch.set_num_threads(args.threads)

    folder = HERE / "toy"
    load = lambda name: torch.from_numpy(np.load(folder / name))
    x_train, y_train = load("train_inputs.npy"), load("train_labels.npy")
    x_val, y_val = load("val_inputs.npy"), load("val_labels.npy")
    loader = lambda x, y: DataLoader(TensorDataset(x, y), batch_size=BATCH_SIZE)

    def build(config, seed):
        family, d, layers = config
        return zoo_models.build_model("toy", family, d, layers, seed)

    name = lambda config: f"{config[0]}_{config[1]}d_{config[2]}L"
    transmitters = {}
    for config in zoo.TOY_CONFIGS:
        model = build(config, zoo.TX_INIT_SEED)
        zoo.train(model, x_train, y_train, x_val, y_val, zoo.TOY_TRAINING, zoo.SHUFFLE_SEED)
        transmitters[name(config)] = model

    pairs = []
    for tx_config in zoo.TOY_CONFIGS:
        for rx_config in zoo.TOY_CONFIGS:
            if rx_config == tx_config:
                continue
            receiver = build(rx_config, zoo.RX_INIT_SEED)
            transfer = ModeATransfer(transmitters[name(tx_config)], receiver,
                                     name(tx_config), name(rx_config))
            began = time.perf_counter()
            transfer.execute(loader(x_train, y_train), loader(x_val, y_val), uhs_epochs=5,
                             finetune_epochs=3, finetune_lr=5e-4, privacy_epsilon=8.0)
            seconds = time.perf_counter() - began
            pairs.append(dict(transmitter=name(tx_config), receiver=name(rx_config),
                              seconds=round(seconds, 2)))
            if not args.json:
                print(f"{name(tx_config):22s} -> {name(rx_config):22s} {seconds:6.2f} s",
                      flush=True)
    mean = sum(pair["seconds"] for pair in pairs) / len(pairs)
    into_deep = [p["seconds"] for p in pairs if p["receiver"] == "transformer_128d_4L"]
    result = dict(threads=args.threads, pairs=pairs, mean_seconds=round(mean, 2),
                  into_transformer_128d_4L=into_deep)
    if args.json:
        print(json.dumps(result))
    else:
        print(f"mean execute() per pair: {mean:.2f} s; into transformer_128d_4L: {into_deep}")


if __name__ == "__main__":
    main(sys.argv[1:])
