"""The Python package end to end: a small transfer on zoo models, the two-party protocol (emit,
then absorb from the token alone), tokens round-tripped against
tessera-core 0.1.0 in the same environment, capture and inspection, and bad input raising the
right exception."""

import os
import signal
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

import tessera

REPO = Path(__file__).resolve().parents[2]
DIGITS = REPO / "onnx-models" / "digits"
TX = DIGITS / "conv_64d_2L.tx.torchscript.onnx"
RX = DIGITS / "mlp_64d_2L.rx.torchscript.onnx"
FIXTURES = REPO / "tests" / "fixtures" / "tbf"
SMALL = dict(epochs=2, hub_epochs=2, hub_dim=64)


@pytest.fixture(autouse=True)
def private_ledger(tmp_path, monkeypatch):
    monkeypatch.setenv("TESSERA_PRIVACY_LEDGER", str(tmp_path / "ledger.json"))


def test_a_transfer_reports_what_the_cli_reports_and_writes_both_files(tmp_path):
    phases = []
    report = tessera.transfer(
        TX,
        RX,
        np.load(DIGITS / "train_inputs.npy"),
        val_inputs=np.load(DIGITS / "val_inputs.npy"),
        val_labels=np.load(DIGITS / "val_labels.npy"),
        receiver_out=tmp_path / "tuned.onnx",
        token_out=tmp_path / "knowledge.tbf",
        seed=3,
        progress=lambda phase, done, total: phases.append(phase),
        **SMALL,
    )
    assert set(report) >= {"transmitter", "receiver", "receiver_out", "token", "written", "report"}
    after = report["report"]["after"]
    assert 0.0 <= after["agreement"] <= 1.0 and after["accuracy"] is not None
    assert report["report"]["hub"]["dim"] == 64
    assert {"capture", "fine-tune", "measure"} <= set(phases)
    assert (tmp_path / "tuned.onnx").is_file()
    token = tessera.load_token(tmp_path / "knowledge.tbf")
    assert token.knowledge_type == "BEHAVIOUR"  # the soft targets
    assert token.vector.size == int(np.prod(token.shape))
    model = tessera.inspect_model(tmp_path / "tuned.onnx")
    assert model["adapter"]["plan"]["taps"]


def test_two_parties_emit_and_absorb_through_the_token_alone(tmp_path):
    inputs = np.load(DIGITS / "train_inputs.npy")
    val_inputs = np.load(DIGITS / "val_inputs.npy")
    emitted = tessera.emit(
        TX, inputs, val_inputs=val_inputs, token_out=tmp_path / "knowledge.tbf",
        epsilon="inf", seed=2, **SMALL,
    )
    assert emitted["train_inputs"] == len(inputs)
    assert emitted["validation_inputs"] == len(val_inputs)
    assert emitted["written"]["bytes"] == (tmp_path / "knowledge.tbf").stat().st_size
    phases = []
    absorbed = tessera.absorb(
        tmp_path / "knowledge.tbf", RX, inputs, val_inputs=val_inputs,
        val_labels=np.load(DIGITS / "val_labels.npy"), receiver_out=tmp_path / "absorbed.onnx",
        progress=lambda phase, done, total: phases.append(phase),
    )
    report = absorbed["report"]
    assert report["after"]["agreement"] >= report["before"]["agreement"]
    assert report["after"]["accuracy"] is not None and "fine-tune" in phases
    assert (tmp_path / "absorbed.onnx").is_file()
    with pytest.raises(tessera.TransferError, match="fingerprint"):
        tessera.absorb(tmp_path / "knowledge.tbf", RX, val_inputs, receiver_out=tmp_path / "x.onnx")
    with pytest.raises(tessera.TransferError, match="held-out"):
        tessera.absorb(tmp_path / "knowledge.tbf", RX, inputs, receiver_out=tmp_path / "x.onnx")
    with pytest.raises(tessera.InvalidArgumentError, match="quant"):
        tessera.emit(TX, inputs, token_out=tmp_path / "y.tbf", quant="int8")
    with pytest.raises(tessera.TokenError):
        tessera.absorb(TX, RX, inputs, receiver_out=tmp_path / "x.onnx")
    assert not (tmp_path / "x.onnx").exists() and not (tmp_path / "y.tbf").exists()


def test_an_interrupt_stops_a_transfer_cleanly_with_nothing_written(tmp_path):
    # A process started in the background without job control inherits SIGINT ignored, and
    # Python then raises no KeyboardInterrupt: Python's own handler is put back for this test.
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    timer = threading.Timer(0.5, lambda: os.kill(os.getpid(), signal.SIGINT))
    timer.start()
    try:
        with pytest.raises(KeyboardInterrupt):
            tessera.transfer(
                TX, RX, np.load(DIGITS / "train_inputs.npy"),
                receiver_out=tmp_path / "tuned.onnx", token_out=tmp_path / "knowledge.tbf",
                epochs=200, hub_epochs=2, hub_dim=64,
            )
    finally:
        timer.cancel()
        signal.signal(signal.SIGINT, previous)
    assert not (tmp_path / "tuned.onnx").exists() and not (tmp_path / "knowledge.tbf").exists()


@pytest.fixture(scope="module")
def tessera_core():
    """tessera-core 0.1.0's TBF module, installed beside (not over) this package."""
    sys.path.insert(0, str(REPO / "tests" / "interop"))
    from tessera_core_reference import load_binary_module

    return load_binary_module()


@pytest.mark.parametrize("quant", ["FLOAT32", "FLOAT16", "BFLOAT16", "INT8"])
def test_tokens_round_trip_byte_for_byte_with_tessera_core(tmp_path, tessera_core, quant):
    values = np.random.default_rng(7).normal(size=40).astype(np.float32)
    reference = tessera_core.TesseraToken(
        knowledge_type=tessera_core.KnowledgeType.ACTIVATION,
        uhs_vector=values.tolist(),
        modality_weights={"A": 1.0},
        correlation_map={"f0": 0.5},
        lineage_dag={"nodes": [], "root": None},
        custom_metadata={"case": quant},
    )
    theirs = tmp_path / "theirs.tbf"
    tessera_core.TBFSerializer.save(theirs, reference, quant=tessera_core.QuantType[quant])
    token = tessera.load_token(theirs)
    assert token.quant == quant
    decoded = np.asarray(tessera_core.TBFSerializer.load(theirs).uhs_vector, dtype=np.float32)
    assert np.array_equal(token.vector, decoded)
    ours = tmp_path / "ours.tbf"
    tessera.save_token(ours, token, quant=quant.lower())
    if quant != "INT8":  # INT8 keeps the codes; tessera-core would quantise a second time
        assert ours.read_bytes() == theirs.read_bytes()
    again = np.asarray(tessera_core.TBFSerializer.load(ours).uhs_vector, dtype=np.float32)
    assert np.array_equal(again, token.vector)


def test_fixtures_written_by_tessera_core_re_encode_to_the_same_bytes(tmp_path):
    for name in ["mode_a_float16.tbf", "mode_a_float32.tbf", "mode_a_bfloat16.tbf"]:
        fixture = FIXTURES / name
        token = tessera.load_token(fixture)
        written = tmp_path / name
        tessera.save_token(written, token, quant=token.quant.lower())
        assert written.read_bytes() == fixture.read_bytes(), name


def test_hmac_keys_protect_tokens(tmp_path):
    token = tessera.Token(np.arange(6, dtype=np.float32), metadata={"note": "hi"})
    path = tmp_path / "signed.tbf"
    tessera.save_token(path, token, hmac_key=b"secret")
    assert np.array_equal(tessera.load_token(path, hmac_key="736563726574").vector, np.arange(6))
    with pytest.raises(tessera.TokenError):
        tessera.load_token(path, hmac_key=b"wrong")
    assert tessera.load_token(path).metadata["custom_metadata"]["note"] == "hi"


def test_capture_returns_outputs_and_pooled_taps():
    inputs = np.load(DIGITS / "val_inputs.npy")[:10]
    arrays = tessera.capture(RX, inputs, pool=True)
    assert all(array.shape[0] == 10 for array in arrays.values())
    assert any(array.ndim == 2 for array in arrays.values())


def test_bad_input_raises_the_right_exception(tmp_path):
    tampered = tmp_path / "tampered.tbf"
    data = bytearray((FIXTURES / "mode_a_float16.tbf").read_bytes())
    data[-1] ^= 0xFF
    tampered.write_bytes(bytes(data))
    with pytest.raises(tessera.TokenError):
        tessera.load_token(tampered)
    with pytest.raises(tessera.TokenError):
        tessera.load_token(TX)
    not_a_model = tmp_path / "model.onnx"
    not_a_model.write_bytes(b"not onnx")
    with pytest.raises(tessera.ModelError):
        tessera.inspect_model(not_a_model)
    inputs = np.load(DIGITS / "train_inputs.npy")
    with pytest.raises(tessera.InvalidArgumentError, match="epoch"):
        tessera.transfer(TX, RX, inputs, epoch=3, token_out=tmp_path / "t.tbf")
    with pytest.raises(tessera.DataError):
        tessera.transfer(TX, RX, inputs[:, :5], token_out=tmp_path / "t.tbf", **SMALL)
    nan = inputs.astype(np.float32).copy()
    nan[0, 0] = np.nan
    with pytest.raises(tessera.DataError):
        tessera.transfer(TX, RX, nan, token_out=tmp_path / "t.tbf", **SMALL)
    with pytest.raises(TypeError):
        tessera.transfer(TX, RX, np.array(["a", "b"]), token_out=tmp_path / "t.tbf")
    assert issubclass(tessera.TransferError, tessera.TesseraError)
    assert not (tmp_path / "t.tbf").exists()
