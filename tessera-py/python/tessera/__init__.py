"""Tessera: transfer what one trained neural network knows into another of a different
architecture, without its training data or labels, and read and write the TBF v1.1 knowledge
tokens that carry it (byte-compatible with tessera-core 0.1.0).

Every function wraps the same library the ``tessera`` program runs; reports are the dicts
``tessera ... --json`` prints. Plugins are found as the program finds them: ``[plugins] paths``
in ``tessera.toml`` in the working directory, then ``TESSERA_PLUGIN_PATH``; models no plugin
claims get the built-in fallback adapter.
"""

from __future__ import annotations

import json
import os
from typing import Any, Callable, Dict, Optional, Sequence, Union

import numpy as np

from . import _native
from ._native import (
    DataError,
    InvalidArgumentError,
    ModelError,
    TesseraError,
    TokenError,
    TransferError,
)

__version__ = _native.__version__

__all__ = [
    "DataError",
    "InvalidArgumentError",
    "ModelError",
    "TesseraError",
    "Token",
    "TokenError",
    "TransferError",
    "absorb",
    "capture",
    "emit",
    "inspect_model",
    "inspect_token",
    "load_token",
    "save_token",
    "transfer",
]

PathLike = Union[str, "os.PathLike[str]"]


def _samples(array: Any, name: str) -> np.ndarray:
    """``array`` as the engine takes it: float32 features or int64 token ids, C-contiguous."""
    array = np.asarray(array)
    if array.dtype.kind == "f":
        return np.ascontiguousarray(array, dtype=np.float32)
    if array.dtype.kind in "iu":
        return np.ascontiguousarray(array, dtype=np.int64)
    raise TypeError(f"{name} must hold floats or integers, not {array.dtype}")


def _optional_samples(array: Any, name: str) -> Optional[np.ndarray]:
    """:func:`_samples` of ``array``, or None."""
    return None if array is None else _samples(array, name)


def _optional_path(path: Optional[PathLike]) -> Optional[str]:
    """``path`` as a string, or None (the library's default)."""
    return None if path is None else os.fspath(path)


def _key(hmac_key: Optional[Union[bytes, str]]) -> Optional[bytes]:
    """An HMAC key given as bytes, or as hexadecimal digits."""
    if hmac_key is None or isinstance(hmac_key, bytes):
        return hmac_key
    return bytes.fromhex(hmac_key.strip())


def transfer(
    transmitter: PathLike,
    receiver: PathLike,
    inputs: Any,
    *,
    val_inputs: Any = None,
    val_labels: Any = None,
    receiver_out: Optional[PathLike] = None,
    token_out: Optional[PathLike] = None,
    epsilon: Union[float, str, None] = None,
    delta: Optional[float] = None,
    hub_dim: int = 2048,
    seed: int = 0,
    progress: Optional[Callable[[str, int, int], None]] = None,
    **schedule: Any,
) -> Dict[str, Any]:
    """Mode A: transfers the behaviour of the ONNX model ``transmitter`` into ``receiver``
    (another architecture) without labels, on the unlabelled ``inputs`` (float32 features or
    int64 token ids, one sample per row).

    Measures on ``val_inputs`` (default: a ``hold_out`` share of ``inputs``), with
    ``val_labels`` for accuracy only. Writes the tuned receiver to ``receiver_out`` (default
    ``<receiver stem>.tuned.onnx`` in the working directory) and the knowledge token to
    ``token_out`` (default ``transfer.tbf``), each atomically, released with differential
    privacy at ``epsilon`` (default 8, as ``tessera transfer``; ``"inf"`` for no noise) and
    ``delta`` (default 1e-5) and charged to the privacy ledger.

    ``schedule`` takes any other setting of ``tessera transfer`` by its flag's name in
    snake_case (``epochs``, ``learning_rate``, ``selection_share``, ``quant="int8"`` for
    ModeAQ, ...); an unknown name raises :class:`InvalidArgumentError`. ``progress``, if given,
    is called with (phase, done, total) as the transfer goes. The GIL is released while it
    runs, and Ctrl-C stops it with nothing written.

    Returns the report as a dict, with the keys ``tessera transfer --json`` prints.
    """
    settings = dict(schedule, hub_dim=hub_dim, seed=seed)
    if epsilon is not None:
        settings["epsilon"] = _epsilon(epsilon)
    if delta is not None:
        settings["delta"] = delta
    report = _native.transfer(
        os.fspath(transmitter),
        os.fspath(receiver),
        _samples(inputs, "inputs"),
        _optional_samples(val_inputs, "val_inputs"),
        _labels(val_labels),
        _optional_path(receiver_out),
        _optional_path(token_out),
        json.dumps(settings),
        progress,
    )
    return json.loads(report)


def _epsilon(epsilon: Union[float, str]) -> Union[float, str]:
    """ε as the settings take it: a number, or ``"inf"``."""
    return "inf" if epsilon in ("inf", float("inf")) else float(epsilon)


def _labels(val_labels: Any) -> Optional[np.ndarray]:
    """Labels as the engine takes them: int64, C-contiguous."""
    if val_labels is None:
        return None
    return np.ascontiguousarray(np.asarray(val_labels), dtype=np.int64)


def emit(
    transmitter: PathLike,
    inputs: Any,
    *,
    val_inputs: Any = None,
    token_out: Optional[PathLike] = None,
    epsilon: Union[float, str, None] = None,
    delta: Optional[float] = None,
    hub_vectors: bool = False,
    seed: int = 0,
    **settings: Any,
) -> Dict[str, Any]:
    """The transmitter's half of two-party transfer: runs only the ONNX model ``transmitter``
    on the reference ``inputs`` (which the receiver's side holds too) and writes what a
    receiver needs to learn from it as a knowledge token to ``token_out`` (default
    ``knowledge.tbf``), atomically.

    ``val_inputs`` are separate held-out inputs the receiver will measure on (default: a
    ``hold_out`` share of ``inputs``). Everything the token carries is released with
    differential privacy at ``epsilon`` (default 8, as ``tessera emit``; ``"inf"`` for no
    noise) and ``delta`` (default 1e-5), and charged to the privacy ledger. ``hub_vectors``
    also carries the transmitter's hub vectors. ``settings`` takes any other setting of
    ``tessera emit`` by its flag's name in snake_case (``epochs``, ``augmentation``,
    ``sign_key``, ``token_quant``, ...); the receiver's choices (``quant``,
    ``receiver_adapter``) belong to :func:`absorb`. The GIL is released while it runs.

    Returns what ``tessera emit --json`` prints, as a dict.
    """
    settings = dict(settings, seed=seed, hub_vectors=hub_vectors)
    if epsilon is not None:
        settings["epsilon"] = _epsilon(epsilon)
    if delta is not None:
        settings["delta"] = delta
    report = _native.emit(
        os.fspath(transmitter),
        _samples(inputs, "inputs"),
        _optional_samples(val_inputs, "val_inputs"),
        _optional_path(token_out),
        json.dumps(settings),
    )
    return json.loads(report)


def absorb(
    token: PathLike,
    receiver: PathLike,
    inputs: Any,
    *,
    val_inputs: Any = None,
    val_labels: Any = None,
    receiver_out: Optional[PathLike] = None,
    hmac_key: Optional[Union[bytes, str]] = None,
    trust: Optional[PathLike] = None,
    seed: Optional[int] = None,
    quant: Optional[str] = None,
    progress: Optional[Callable[[str, int, int], None]] = None,
    **settings: Any,
) -> Dict[str, Any]:
    """The receiver's half of two-party transfer: fine-tunes the ONNX model ``receiver`` from
    the knowledge token ``token`` alone (no transmitter), on the reference ``inputs`` it was
    emitted for (checked by fingerprint).

    ``val_inputs`` are the separate held-out inputs, when the token was emitted with them;
    ``val_labels`` score accuracy only. Writes the tuned receiver to ``receiver_out`` (default
    ``<receiver stem>.tuned.onnx`` in the working directory) atomically. ``hmac_key`` (bytes,
    or hexadecimal digits) must verify the token's HMAC; with ``trust`` (a trust file of
    signers' public keys) the token must be signed by one of them. ``seed`` defaults to the
    knowledge's; ``quant`` (``"int8"``, ``"int4"``, ``"fp16"``) runs ModeAQ and writes the
    receiver quantised. ``settings`` takes the other settings of ``tessera absorb``
    (``receiver_adapter``, ``backend``, ``device``, ``allow_unauthenticated``,
    ``max_file_mib``). ``progress``, if given, is called with (phase, done, total). The GIL is
    released while it runs, and Ctrl-C stops it with nothing written.

    Returns what ``tessera absorb --json`` prints, as a dict.
    """
    key = _key(hmac_key)
    if key is not None:
        settings["hmac_key_hex"] = key.hex()
    if trust is not None:
        settings["trust"] = os.fspath(trust)
    if seed is not None:
        settings["seed"] = seed
    if quant is not None:
        settings["quant"] = quant
    report = _native.absorb(
        os.fspath(token),
        os.fspath(receiver),
        _samples(inputs, "inputs"),
        _optional_samples(val_inputs, "val_inputs"),
        _labels(val_labels),
        _optional_path(receiver_out),
        json.dumps(settings),
        progress,
    )
    return json.loads(report)


class Token:
    """A TBF v1.1 token: a float vector with its shape and metadata."""

    def __init__(
        self,
        vector: Any,
        knowledge_type: str = "ACTIVATION",
        metadata: Optional[Dict[str, Any]] = None,
    ) -> None:
        """A new token of ``knowledge_type`` (ACTIVATION, WEIGHT, DATASET, BEHAVIOUR or SWARM,
        any case) holding ``vector``; ``metadata`` goes into the token's custom metadata
        (JSON-compatible values)."""
        values = np.ascontiguousarray(np.asarray(vector, dtype=np.float32).reshape(-1))
        self._native = _native.NativeToken(
            values, knowledge_type.upper(), json.dumps(metadata or {})
        )

    @classmethod
    def _wrap(cls, native: Any) -> "Token":
        token = cls.__new__(cls)
        token._native = native
        return token

    @property
    def vector(self) -> np.ndarray:
        """The decoded vector (float32, flat)."""
        return self._native.vector()

    @property
    def shape(self) -> tuple:
        """The vector's shape as the metadata gives it."""
        return tuple(self._native.shape())

    @property
    def metadata(self) -> Dict[str, Any]:
        """Every metadata field, as ``tessera inspect --json`` shows it."""
        return json.loads(self._native.metadata_json())

    @property
    def knowledge_type(self) -> str:
        """``ACTIVATION``, ``WEIGHT``, ``DATASET``, ``BEHAVIOUR`` (a transfer's soft targets) or
        ``SWARM``."""
        return self._native.knowledge_type()

    @property
    def quant(self) -> Optional[str]:
        """The payload quantisation the token was read with (None for a new token)."""
        return self._native.quant()

    def __repr__(self) -> str:
        return f"Token({self.knowledge_type}, shape={self.shape})"


def load_token(path: PathLike, hmac_key: Optional[Union[bytes, str]] = None) -> Token:
    """Reads the token at ``path``, checking structure and checksums; with ``hmac_key``
    (bytes, or hexadecimal digits) its HMAC must verify. Raises :class:`TokenError`."""
    return Token._wrap(_native.load_token(os.fspath(path), _key(hmac_key)))


def save_token(
    path: PathLike,
    token: Token,
    quant: str = "float32",
    crc: str = "crc32c",
    hmac_key: Optional[Union[bytes, str]] = None,
) -> int:
    """Writes ``token`` to ``path`` atomically, byte-compatible with tessera-core 0.1.0:
    ``quant`` float32, float16, bfloat16 or int8; ``crc`` crc32c or ieee; with ``hmac_key``
    an HMAC-SHA256. Returns the bytes written."""
    return _native.save_token(os.fspath(path), token._native, quant, crc, _key(hmac_key))


def inspect_token(path: PathLike, hmac_key: Optional[Union[bytes, str]] = None) -> Dict[str, Any]:
    """A token file's header, metadata and statistics (``tessera inspect --json``)."""
    return json.loads(_native.inspect_token_json(os.fspath(path), _key(hmac_key)))


def inspect_model(path: PathLike, adapter: Optional[str] = None) -> Dict[str, Any]:
    """An ONNX model's inputs, outputs, operators, parameters, and the adapter that claims it
    with its tap points (``tessera inspect-model --json``); its plan is under
    ``["adapter"]["plan"]``, the adapter's name under ``["adapter"]["adapter"]``."""
    return json.loads(_native.inspect_model_json(os.fspath(path), adapter))


def capture(
    model: PathLike,
    inputs: Any,
    taps: Optional[Sequence[str]] = None,
    pool: bool = False,
    batch_size: int = 32,
) -> Dict[str, np.ndarray]:
    """Runs ``inputs`` through ``model`` and returns its outputs and tap activations by tensor
    name: ``taps`` names tensors to capture besides the outputs (default: the tap points of
    the adapter that claims the model); ``pool`` pools each adapter tap to one vector per
    sample."""
    return _native.capture(
        os.fspath(model),
        _samples(inputs, "inputs"),
        None if taps is None else list(taps),
        pool,
        batch_size,
    )
