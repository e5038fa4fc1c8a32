//! The two-party protocol end to end: `tessera emit` and `tessera absorb` run as separate
//! processes in separate folders (the token and a copy of the reference inputs are all they
//! share); the receiver's agreement improves; tampered, truncated, wrongly signed, untrusted
//! and mismatched tokens are refused with nothing written; the privacy ledger refuses a
//! release past the budget across runs.

mod support;

use std::path::{Path, PathBuf};

use tessera_host::tbf::{self, LoadOptions, MetaValue, SaveOptions};
use tessera_host::transfer::Knowledge;
use tessera_host::zoo::ZooModel;

use support::{assert_success, tessera, zoo, zoo_file};

fn model(id: &str) -> ZooModel {
    zoo().model(id).unwrap().clone()
}

/// Copies the zoo file `relative` into `folder` as `name`, as a party's own copy.
fn own_copy(relative: &str, folder: &Path, name: &str) -> PathBuf {
    let path = folder.join(name);
    std::fs::copy(zoo_file(relative), &path).unwrap();
    path
}

/// `tessera emit --json` of `transmitter` on `inputs`, writing `out`.
fn emit(transmitter: &ZooModel, inputs: &Path, out: &Path, extra: &[&str]) -> std::process::Output {
    tessera()
        .args(["emit", "--json", "--transmitter"])
        .arg(zoo_file(&transmitter.onnx))
        .arg("--inputs")
        .arg(inputs)
        .arg("--out")
        .arg(out)
        .args(extra)
        .current_dir(inputs.parent().unwrap())
        .output()
        .unwrap()
}

/// `tessera absorb --json` of `token` into `receiver` on `inputs`, writing `tuned`.
fn absorb(
    token: &Path,
    receiver: &ZooModel,
    inputs: &Path,
    tuned: &Path,
    extra: &[&str],
) -> std::process::Output {
    tessera()
        .args(["absorb", "--json", "--token"])
        .arg(token)
        .arg("--receiver")
        .arg(zoo_file(&receiver.onnx))
        .arg("--inputs")
        .arg(inputs)
        .arg("--receiver-out")
        .arg(tuned)
        .args(extra)
        .current_dir(tuned.parent().unwrap())
        .output()
        .unwrap()
}

fn succeeded(output: &std::process::Output) -> serde_json::Value {
    assert_success(output);
    serde_json::from_slice(&output.stdout).unwrap()
}

/// Asserts that a command failed with `message` in its error and that `unwritten` is absent.
fn refused(output: &std::process::Output, unwritten: &Path, message: &str) {
    let error = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "succeeded: {error}");
    assert!(error.contains(message), "expected {message:?} in: {error}");
    assert!(!unwritten.exists(), "{} was written", unwritten.display());
}

#[test]
fn emit_then_absorb_in_two_folders_transfers_the_knowledge() {
    let transmitter = model("digits/conv_64d_2L.tx.torchscript");
    let receiver = model("digits/mlp_64d_2L.rx.torchscript");
    let sender = tempfile::tempdir().unwrap();
    let inputs = own_copy(&transmitter.datasets.train_inputs, sender.path(), "R.npy");
    let token = sender.path().join("knowledge.tbf");
    let emitted = succeeded(&emit(
        &transmitter,
        &inputs,
        &token,
        &["--epsilon", "inf", "--epochs", "3"],
    ));
    assert_eq!(emitted["synthetic_sets"], 2);
    assert_eq!(emitted["validation_inputs"], 269);

    // The receiver's side: its own folder, its own copy of the inputs, the token.
    let other = tempfile::tempdir().unwrap();
    let received = other.path().join("knowledge.tbf");
    std::fs::copy(&token, &received).unwrap();
    let inputs = own_copy(&transmitter.datasets.train_inputs, other.path(), "R.npy");
    let tuned = other.path().join("tuned.onnx");
    let result = succeeded(&absorb(&received, &receiver, &inputs, &tuned, &[]));
    let report = &result["report"];
    let before = report["before"]["agreement"].as_f64().unwrap();
    let after = report["after"]["agreement"].as_f64().unwrap();
    assert!(after > before + 0.3, "agreement {before} -> {after}");
    assert_eq!(report["validation_inputs"], 269);
    assert_eq!(report["train_inputs"], 1078);
    // A tenth of the inputs chooses the state kept; the rest train: all of them in the first
    // epoch, in the later ones the mixed inputs that copy nothing from a set-aside one.
    assert_eq!(report["selection"]["inputs"], 108);
    let first_epoch = (1078usize - 108).div_ceil(32);
    let steps = report["steps"].as_u64().unwrap() as usize;
    assert!(
        steps < 3 * first_epoch && steps > first_epoch + 2 * (first_epoch * 3 / 4),
        "{steps} steps"
    );
    assert!(report["after"]["cka"].as_array().unwrap().is_empty());
    assert!(tuned.exists());
}

#[test]
fn knowledge_for_separate_held_out_inputs_needs_them() {
    let transmitter = model("toy/conv_64d_2L.tx.torchscript");
    let receiver = model("toy/lstm_64d_2L.rx.torchscript");
    let folder = tempfile::tempdir().unwrap();
    let inputs = own_copy(&transmitter.datasets.train_inputs, folder.path(), "R.npy");
    let held_out = own_copy(&transmitter.datasets.val_inputs, folder.path(), "V.npy");
    let labels = own_copy(&transmitter.datasets.val_labels, folder.path(), "L.npy");
    let token = folder.path().join("knowledge.tbf");
    let extra = ["--epsilon", "inf", "--epochs", "1", "--val-inputs"];
    let mut extra: Vec<&str> = extra.to_vec();
    extra.push(held_out.to_str().unwrap());
    succeeded(&emit(&transmitter, &inputs, &token, &extra));
    let tuned = folder.path().join("tuned.onnx");
    refused(
        &absorb(&token, &receiver, &inputs, &tuned, &[]),
        &tuned,
        "give them too",
    );
    let result = succeeded(&absorb(
        &token,
        &receiver,
        &inputs,
        &tuned,
        &[
            "--val-inputs",
            held_out.to_str().unwrap(),
            "--val-labels",
            labels.to_str().unwrap(),
        ],
    ));
    let report = &result["report"];
    assert_eq!(report["validation_inputs"], 150);
    assert!(report["after"]["accuracy"].as_f64().is_some());
    assert!(report["transmitter_accuracy"].as_f64().unwrap() > 0.5);
}

/// The secret and public key files `tessera keygen` writes under `base`.
fn keygen(base: &Path) -> (PathBuf, String) {
    let output = tessera()
        .args(["keygen", "--json", "--out"])
        .arg(base)
        .output()
        .unwrap();
    let result = succeeded(&output);
    (
        PathBuf::from(result["secret_key"].as_str().unwrap()),
        result["public_key_hex"].as_str().unwrap().to_string(),
    )
}

#[test]
fn bad_tokens_and_inputs_are_refused_and_nothing_is_written() {
    let transmitter = model("toy/conv_64d_2L.tx.torchscript");
    let receiver = model("toy/lstm_64d_2L.rx.torchscript");
    let folder = tempfile::tempdir().unwrap();
    let dir = folder.path();
    let inputs = own_copy(&transmitter.datasets.train_inputs, dir, "R.npy");
    let (alice_key, alice) = keygen(&dir.join("alice"));
    let (_, bob) = keygen(&dir.join("bob"));
    let trust_alice = dir.join("trust-alice.toml");
    std::fs::write(&trust_alice, format!("[signers]\nalice = \"{alice}\"\n")).unwrap();
    let trust_bob = dir.join("trust-bob.toml");
    std::fs::write(&trust_bob, format!("[signers]\nbob = \"{bob}\"\n")).unwrap();
    let token = dir.join("signed.tbf");
    succeeded(&emit(
        &transmitter,
        &inputs,
        &token,
        &[
            "--epochs",
            "1",
            "--epsilon",
            "inf",
            "--sign-key",
            alice_key.to_str().unwrap(),
        ],
    ));
    let tuned = dir.join("tuned.onnx");
    let trusted = ["--trust", trust_alice.to_str().unwrap()];

    // Signed by a trusted key: absorbed.
    let result = succeeded(&absorb(&token, &receiver, &inputs, &tuned, &trusted));
    assert_eq!(result["signer"], "alice");
    std::fs::remove_file(&tuned).unwrap();

    let bytes = std::fs::read(&token).unwrap();
    let variant = |name: &str, bytes: &[u8]| {
        let path = dir.join(name);
        std::fs::write(&path, bytes).unwrap();
        path
    };
    // One flipped byte in the payload.
    let mut flipped = bytes.clone();
    let middle = flipped.len() - 100;
    flipped[middle] ^= 0x10;
    let flipped = variant("flipped.tbf", &flipped);
    refused(
        &absorb(&flipped, &receiver, &inputs, &tuned, &[]),
        &tuned,
        "checksum mismatch",
    );
    // Truncated.
    let truncated = variant("truncated.tbf", &bytes[..bytes.len() / 2]);
    refused(
        &absorb(&truncated, &receiver, &inputs, &tuned, &[]),
        &tuned,
        "truncated",
    );
    // A signer the trust file does not name.
    refused(
        &absorb(
            &token,
            &receiver,
            &inputs,
            &tuned,
            &["--trust", trust_bob.to_str().unwrap()],
        ),
        &tuned,
        "not in",
    );
    // A signature that does not verify: the token claims bob's key (CRCs recomputed, so
    // only the signature can tell).
    let mut loaded = tbf::load(&token, &LoadOptions::default()).unwrap();
    let Some(MetaValue::Map(signature)) = loaded.token.metadata.custom.get_mut("signature") else {
        panic!("the token carries no signature")
    };
    for (key, value) in signature.iter_mut() {
        if key.as_str() == Some("key") {
            *value = MetaValue::Binary(hex_bytes(&bob));
        }
    }
    let forged = dir.join("forged.tbf");
    tbf::save(
        &forged,
        &loaded.token,
        &SaveOptions {
            quant: loaded.quant,
            ..SaveOptions::default()
        },
    )
    .unwrap();
    refused(
        &absorb(&forged, &receiver, &inputs, &tuned, &[]),
        &tuned,
        "signature",
    );
    // An unsigned token where a trust file requires a signature.
    let unsigned = dir.join("unsigned.tbf");
    succeeded(&emit(
        &transmitter,
        &inputs,
        &unsigned,
        &["--epochs", "1", "--epsilon", "inf"],
    ));
    refused(
        &absorb(&unsigned, &receiver, &inputs, &tuned, &trusted),
        &tuned,
        "not signed",
    );
    // Other inputs than the token's: one element changed.
    let other = dir.join("other.npy");
    let mut array: ndarray::ArrayD<i64> = ndarray_npy::read_npy(&inputs).unwrap();
    array[[0, 0]] = (array[[0, 0]] + 1) % 256;
    ndarray_npy::write_npy(&other, &array).unwrap();
    refused(
        &absorb(&unsigned, &receiver, &other, &tuned, &[]),
        &tuned,
        "fingerprint",
    );
    // Soft targets the receiver's outputs cannot match (three classes, the receiver has two).
    let mut knowledge = Knowledge::load(&unsigned, &LoadOptions::default()).unwrap();
    let widen = |targets: &ndarray::Array2<f32>| {
        ndarray::concatenate(
            ndarray::Axis(1),
            &[
                targets.view(),
                ndarray::Array2::from_elem((targets.nrows(), 1), -30.0).view(),
            ],
        )
        .unwrap()
    };
    knowledge.header.transmitter.output_width = 3;
    knowledge.train_targets = widen(&knowledge.train_targets);
    knowledge.validation_targets = widen(&knowledge.validation_targets);
    knowledge.synthetic_targets = widen(&knowledge.synthetic_targets);
    let wide = dir.join("wide.tbf");
    knowledge.save(&wide, &SaveOptions::default()).unwrap();
    refused(
        &absorb(&wide, &receiver, &inputs, &tuned, &[]),
        &tuned,
        "3 classes",
    );
}

fn hex_bytes(hex: &str) -> Vec<u8> {
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
        .collect()
}

#[test]
fn the_ledger_refuses_a_release_past_the_budget_across_runs() {
    let transmitter = model("toy/mlp_128d_4L.tx.torchscript");
    let folder = tempfile::tempdir().unwrap();
    let dir = folder.path();
    let inputs = own_copy(&transmitter.datasets.train_inputs, dir, "R.npy");
    let ledger = dir.join("ledger.json");
    let run = |out: &str, epsilon: &str| {
        emit(
            &transmitter,
            &inputs,
            &dir.join(out),
            &[
                "--epochs",
                "3",
                "--epsilon",
                epsilon,
                "--ledger",
                ledger.to_str().unwrap(),
                "--dataset",
                "toy-reference",
                "--budget-epsilon",
                "10",
                "--budget-delta",
                "1e-4",
            ],
        )
    };
    // No noise is never within a finite budget.
    refused(&run("exact.tbf", "inf"), &dir.join("exact.tbf"), "budget");
    let first = succeeded(&run("first.tbf", "8"));
    assert_eq!(first["written"]["spent"][0]["dataset"], "toy-reference");
    // With a finite epsilon no mixed sets are released unless asked for: each would multiply
    // the noise.
    assert_eq!(first["synthetic_sets"], 0);
    assert_eq!(first["written"]["privacy"][0]["rows_per_record"], 1);
    // A second release of 8 would pass 10 under every composition rule.
    let second = run("second.tbf", "8");
    refused(&second, &dir.join("second.tbf"), "already spent");
    let shown = succeeded(
        &tessera()
            .args(["privacy", "ledger", "show", "--json", "--ledger"])
            .arg(&ledger)
            .output()
            .unwrap(),
    );
    let entry = &shown["datasets"][0];
    assert_eq!(entry["dataset"], "toy-reference");
    assert_eq!(entry["releases"].as_array().unwrap().len(), 1);
    assert_eq!(entry["budget"]["epsilon"], 10.0);
}
