"""The zoo's model families, shared by make_zoo.py (which trains and exports them) and
bench_torch.py (which times them). Importing this module needs only PyTorch.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

TOY_SEQ_LEN = 16
TOY_VOCAB = 256


def make_stem(task: str, d: int) -> nn.Module:
    if task == "toy":
        return nn.Embedding(TOY_VOCAB, d)          # tokens int64 [B,16] -> [B,16,d]
    return nn.Linear(8, d)                           # features float32 [B,8,8] -> [B,8,d]


class TransformerNet(nn.Module):
    """With `positional`, a learned position embedding (ViT-style, initialised N(0, 0.02²)) is
    added to the stem's output; without it the family is invariant to the order of its
    sequence, as the predecessor's toy transformer is."""

    def __init__(self, stem: nn.Module, d: int, layers: int, seq_len: int, classes: int,
                 positional: bool = False):
        super().__init__()
        self.stem = stem
        self.blocks = nn.ModuleList(
            nn.TransformerEncoderLayer(d, nhead=max(1, d // 32), dim_feedforward=2 * d,
                                       dropout=0.0, activation="gelu", batch_first=True)
            for _ in range(layers))
        self.head = nn.Linear(d, classes)
        self.position = nn.Parameter(0.02 * torch.randn(1, seq_len, d)) if positional else None

    def forward(self, x):
        h = self.stem(x)
        if self.position is not None:
            h = h + self.position
        for block in self.blocks:
            h = block(h)
        return self.head(h.mean(dim=1))


class MLPBlock(nn.Module):
    def __init__(self, d: int):
        super().__init__()
        self.fc1 = nn.Linear(d, 2 * d)
        self.norm = nn.LayerNorm(2 * d)
        self.fc2 = nn.Linear(2 * d, d)

    def forward(self, x):
        return x + self.fc2(F.gelu(self.norm(self.fc1(x))))


class MLPNet(nn.Module):
    def __init__(self, stem: nn.Module, d: int, layers: int, seq_len: int, classes: int):
        super().__init__()
        self.stem = stem
        self.flat_proj = nn.Linear(seq_len * d, d)
        self.blocks = nn.ModuleList(MLPBlock(d) for _ in range(layers))
        self.head = nn.Linear(d, classes)

    def forward(self, x):
        h = self.stem(x)
        h = self.flat_proj(h.flatten(1))
        for block in self.blocks:
            h = block(h)
        return self.head(h)


class ConvBlock(nn.Module):
    def __init__(self, d: int):
        super().__init__()
        self.conv = nn.Conv1d(d, d, kernel_size=3, padding=1)
        self.bn = nn.BatchNorm1d(d)

    def forward(self, x):
        return x + F.gelu(self.bn(self.conv(x)))


class ConvNet(nn.Module):
    def __init__(self, stem: nn.Module, d: int, layers: int, seq_len: int, classes: int):
        super().__init__()
        self.stem = stem
        self.blocks = nn.ModuleList(ConvBlock(d) for _ in range(layers))
        self.head = nn.Linear(d, classes)

    def forward(self, x):
        h = self.stem(x).transpose(1, 2)             # [B, d, T]
        for block in self.blocks:
            h = block(h)
        return self.head(h.mean(dim=2))


class LSTMNet(nn.Module):
    def __init__(self, stem: nn.Module, d: int, layers: int, seq_len: int, classes: int):
        super().__init__()
        self.stem = stem
        self.lstm = nn.LSTM(d, d // 2, layers, bidirectional=True, batch_first=True)
        self.head = nn.Linear(d, classes)

    def forward(self, x):
        h, _ = self.lstm(self.stem(x))
        return self.head(h.mean(dim=1))


FAMILIES = {"transformer": TransformerNet, "mlp": MLPNet, "conv": ConvNet, "lstm": LSTMNet}


def build_model(task: str, family: str, d: int, layers: int, seed: int) -> nn.Module:
    torch.manual_seed(seed)
    seq_len, classes = (TOY_SEQ_LEN, 2) if task == "toy" else (8, 10)
    stem = make_stem(task, d)
    if family == "transformer":
        # The toy transformer is the predecessor's (no position information: its task, the mean
        # token, ignores order anyway); digits rows must be told apart to read an image.
        return TransformerNet(stem, d, layers, seq_len, classes, positional=task != "toy")
    return FAMILIES[family](stem, d, layers, seq_len, classes)
