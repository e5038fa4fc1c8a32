#!/usr/bin/env python3
"""Interoperability of the `tessera` CLI with tessera-core 0.1.0, the Python implementation.

tessera-core's TBF module is loaded as tessera_core_reference.py describes. Then, for every
fixture in
tests/fixtures/tbf and for tokens tessera-core writes here from random vectors:

- `tessera inspect --json` reports the same facts as tessera-core's `TBFSerializer.info`, and
  decodes the same vector bit for bit;
- `tessera convert` to every quantisation and CRC variant (signed when the input is) writes the
  very bytes tessera-core's own writer produces for the token it loads, and tessera-core loads
  the result. Two documented exceptions: INT8 -> INT8 keeps the original codes (tessera-core
  would quantise the decoded values a second time), so there the decoded values must equal the
  input's; and an all-zero vector is stored with scale 0.0 rather than tessera-core's 1.0, which
  decodes to ones.

Usage: tessera_core_interop.py PATH/TO/tessera
Requires: tests/python-requirements.txt, and tessera-core==0.1.0 under $TESSERA_CORE_PATH
Prints 'N passed, M failed' and exits non-zero on any failure.
"""

import json
import subprocess
import sys
import tempfile
import zlib
from pathlib import Path

import crc32c
import numpy as np

REPO = Path(__file__).resolve().parents[2]
FIXTURES = REPO / "tests" / "fixtures" / "tbf"
QUANTS = ["FLOAT32", "FLOAT16", "BFLOAT16", "INT8"]
CRCS = {"crc32c": crc32c.crc32c, "ieee": lambda data: zlib.crc32(data) & 0xFFFFFFFF}


sys.path.insert(0, str(Path(__file__).resolve().parent))
from tessera_core_reference import load_binary_module  # noqa: E402

binary = load_binary_module()
results = {"passed": 0, "failed": 0}


def check(condition, description):
    if condition:
        results["passed"] += 1
    else:
        results["failed"] += 1
        print(f"FAIL: {description}")


def use_crc(variant):
    binary._crc32c = CRCS[variant]


def crc_of(path):
    data = Path(path).read_bytes()
    stored = int.from_bytes(data[20:24], "little")
    return next(name for name, fn in CRCS.items() if fn(data[:20]) == stored)


def tessera(cli, *args):
    return subprocess.run([str(cli), *map(str, args)], capture_output=True, text=True)


def reference_load(path, key=None):
    use_crc(crc_of(path))
    return binary.TBFSerializer.load(path, hmac_key=key)


def reference_bytes(token, quant, crc, key, scratch):
    use_crc(crc)
    target = Path(scratch) / "reference.tbf"
    binary.TBFSerializer.save(target, token, quant=binary.QuantType[quant], hmac_key=key)
    return target.read_bytes()


def f32_bits(values):
    return np.asarray(values, dtype=np.float32).view(np.uint32).tolist()


def check_inspect(cli, path, key_file):
    use_crc(crc_of(path))
    expected = binary.TBFSerializer.info(path)
    args = ["inspect", "--json", "--full", path]
    if key_file:
        args += ["--hmac-key-file", key_file]
    run = tessera(cli, *args)
    check(run.returncode == 0, f"inspect {path.name}: {run.stderr.strip()}")
    if run.returncode != 0:
        return
    report = json.loads(run.stdout)
    for field, value in expected.items():
        check(report.get(field) == value, f"inspect {path.name}: {field} {report.get(field)!r} != {value!r}")
    key = bytes.fromhex(key_file.read_text()) if key_file else None
    decoded = reference_load(path, key).uhs_vector
    check(f32_bits(report["vector"]) == f32_bits(decoded), f"inspect {path.name}: vector differs")


def check_conversions(cli, path, key_file, scratch):
    key = bytes.fromhex(key_file.read_text()) if key_file else None
    source_quant = binary.TBFSerializer.info(path)["quantisation"]
    token = reference_load(path, key)
    for quant in QUANTS:
        for crc in CRCS:
            out = Path(scratch) / f"converted-{quant}-{crc}.tbf"
            args = ["convert", path, out, "--quant", quant.lower(), "--crc", crc]
            if key_file:
                args += ["--hmac-key-file", key_file]
            run = tessera(cli, *args)
            name = f"convert {path.name} -> {quant}/{crc}"
            check(run.returncode == 0, f"{name}: {run.stderr.strip()}")
            if run.returncode != 0:
                continue
            ours = out.read_bytes()
            try:
                loaded = reference_load(out, key)
            except Exception as error:  # any refusal by the reference is a failure
                check(False, f"{name}: tessera-core cannot load it: {error}")
                continue
            check(crc_of(out) == crc, f"{name}: CRC variant")
            constant_zero = quant == "INT8" and not any(token.uhs_vector)
            if quant == "INT8" and source_quant == "INT8":
                check(f32_bits(loaded.uhs_vector) == f32_bits(token.uhs_vector), f"{name}: values changed")
            elif constant_zero:
                check(all(v == 0.0 for v in loaded.uhs_vector), f"{name}: zero vector not decoded as zeros")
            else:
                expected = reference_bytes(token, quant, crc, key, scratch)
                check(ours == expected, f"{name}: bytes differ from tessera-core's writer")


def random_tokens(scratch):
    """FLOAT32 tokens tessera-core writes from vectors that stress the quantisers."""
    rng = np.random.default_rng(7)
    vectors = {
        "normal": rng.normal(0, 0.05, 2048),
        "wide": rng.normal(0, 1e4, 512),
        "positive_offset": rng.uniform(1000.0, 1000.5, 300),
        "tiny": rng.normal(0, 1e-30, 64),
        "halfway_ties": np.arange(-64, 64, dtype=np.float64) * 0.5,
        "constant": np.full(33, -2.5),
        "zeros": np.zeros(16),
        "single": np.array([3.0]),
    }
    paths = []
    for name, values in vectors.items():
        token = binary.TesseraToken(
            knowledge_type=binary.KnowledgeType.ACTIVATION,
            uhs_vector=np.asarray(values, dtype=np.float32).tolist(),
            modality_weights={"A": 1.0},
            correlation_map={"f0": 0.5},
            lineage_dag={"nodes": [], "root": None},
            custom_metadata={"case": name, "shape": [len(values)]},
        )
        for quant in QUANTS:
            use_crc("ieee")
            path = Path(scratch) / f"reference-{name}-{quant}.tbf"
            binary.TBFSerializer.save(path, token, quant=binary.QuantType[quant])
            paths.append(path)
    return paths


def main():
    cli = Path(sys.argv[1]).resolve()
    manifest = json.loads((FIXTURES / "manifest.json").read_text())
    with tempfile.TemporaryDirectory() as scratch:
        for entry in manifest:
            path = FIXTURES / entry["file"]
            key_file = None
            if entry["hmac_key_hex"]:
                key_file = Path(scratch) / "key.hex"
                key_file.write_text(entry["hmac_key_hex"])
            check_inspect(cli, path, key_file)
            check_conversions(cli, path, key_file, scratch)
        with tempfile.TemporaryDirectory() as written:
            for path in random_tokens(written):
                check_inspect(cli, path, None)
                check_conversions(cli, path, None, scratch)
    print(f"interop: {results['passed']} passed, {results['failed']} failed")
    sys.exit(1 if results["failed"] else 0)


if __name__ == "__main__":
    main()
