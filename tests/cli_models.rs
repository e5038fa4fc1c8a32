//! `tessera inspect-model` and `tessera capture` on the bundled models, and the clear errors
//! bad models and datasets get.

mod support;

use std::path::Path;

use assert_cmd::Command;
use ndarray::{ArrayD, IxDyn};
use ndarray_npy::write_npy;
use tessera_host::array_io::{read_npy, read_npz};

use support::{max_difference, plugins_dir, tbf_fixtures, zoo_file, zoo_models};
use tessera_host::zoo::ZooModel;

fn tessera() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_tessera"));
    command.env("TESSERA_PLUGIN_PATH", plugins_dir());
    command
}

fn failure(command: &mut Command) -> String {
    let output = command.output().unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(stderr.starts_with("error: "), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    stderr
}

fn zoo(id: &str) -> ZooModel {
    zoo_models()
        .into_iter()
        .find(|model| model.id == id)
        .unwrap_or_else(|| panic!("{id} is in the zoo"))
}

#[test]
fn inspect_model_describes_every_zoo_model() {
    for model in zoo_models() {
        let output = tessera()
            .args(["inspect-model", "--json"])
            .arg(zoo_file(&model.onnx))
            .output()
            .unwrap();
        assert!(output.status.success(), "{}", model.id);
        let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
        let input = &report["inputs"][0];
        assert_eq!(input["shape"][0], "batch", "{}", model.id);
        assert_eq!(report["outputs"][0]["name"], "logits");
        assert_eq!(report["outputs"][0]["shape"][1], model.classes);
        assert!(
            report["parameter_count"].as_u64().unwrap() > 10_000,
            "{}",
            model.id
        );
        assert!(report["op_histogram"].as_object().unwrap().len() > 5);
        let plan = &report["adapter"]["plan"];
        assert_eq!(plan["width"], model.d, "{}", model.id);
        let taps = plan["taps"].as_array().unwrap();
        assert!(!taps.is_empty(), "{}", model.id);
        for tap in taps {
            let shape = tap["shape"].as_array().unwrap();
            assert!(shape.contains(&"batch".into()), "{}: {tap}", model.id);
        }
    }
}

#[test]
fn inspect_model_prints_the_graph_summary_adapters_receive() {
    let model = zoo("toy/lstm_64d_2L.tx.dynamo");
    let output = tessera()
        .args(["inspect-model", "--graph-summary"])
        .arg(zoo_file(&model.onnx))
        .output()
        .unwrap();
    let summary: tessera_api::GraphSummary = serde_json::from_slice(&output.stdout).unwrap();
    let lstm = summary.nodes_of("LSTM").next().unwrap();
    assert_eq!(lstm.int_attribute("hidden_size"), Some(32));
    assert_eq!(lstm.string_attribute("direction"), Some("bidirectional"));
    assert_eq!(summary.shapes[&lstm.outputs[0]].len(), 4);
}

#[test]
fn capture_writes_outputs_and_taps_to_npz() {
    let directory = tempfile::tempdir().unwrap();
    for id in [
        "toy/lstm_64d_2L.tx.dynamo",
        "digits/conv_64d_2L.rx.torchscript",
    ] {
        let model = zoo(id);
        let out = directory.path().join("acts.npz");
        let output = tessera()
            .args(["capture", "--json", "--batch-size", "7", "--inputs"])
            .arg(zoo_file(&model.datasets.val_inputs))
            .arg("--out")
            .arg(&out)
            .arg(zoo_file(&model.onnx))
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "{id}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let captured = read_npz(&out).unwrap();
        let expected_logits = read_npy(&zoo_file(&model.val_logits)).unwrap();
        let samples = expected_logits.shape()[0];
        assert_eq!(captured[0].0, "logits");
        assert!(
            max_difference(&captured[0].1, &expected_logits) <= 1e-4,
            "{id}"
        );
        assert_eq!(
            captured.len(),
            1 + model.layers,
            "{id}: logits and one tap per block"
        );
        for (name, tensor) in &captured[1..] {
            assert!(
                tensor.shape().contains(&samples),
                "{id}: {name} {:?}",
                tensor.shape()
            );
        }
    }
}

fn write_f32(path: &Path, shape: &[usize], value: f32) {
    write_npy(path, &ArrayD::from_elem(IxDyn(shape), value)).unwrap();
}

#[test]
fn bad_models_and_datasets_get_clear_errors() {
    let directory = tempfile::tempdir().unwrap();
    let digits = zoo("digits/mlp_64d_2L.tx.dynamo");
    let toy = zoo("toy/mlp_128d_4L.tx.torchscript");
    let out = directory.path().join("out.npz");
    let capture = |model: &Path, inputs: &Path| {
        let mut command = tessera();
        command
            .arg("capture")
            .arg(model)
            .arg("--inputs")
            .arg(inputs)
            .arg("--out")
            .arg(&out);
        command
    };

    let message = failure(&mut capture(
        &zoo_file(&digits.onnx),
        &zoo_file(&toy.datasets.val_inputs),
    ));
    assert!(
        message.contains("int64") && message.contains("float32"),
        "{message}"
    );

    let narrow = directory.path().join("narrow.npy");
    write_f32(&narrow, &[5, 8, 7], 0.5);
    let message = failure(&mut capture(&zoo_file(&digits.onnx), &narrow));
    assert!(message.contains("dimension 2"), "{message}");

    let not_finite = directory.path().join("nan.npy");
    write_f32(&not_finite, &[3, 8, 8], f32::NAN);
    let message = failure(&mut capture(&zoo_file(&digits.onnx), &not_finite));
    assert!(message.contains("NaN"), "{message}");

    let empty = directory.path().join("empty.npy");
    write_f32(&empty, &[0, 8, 8], 0.0);
    let message = failure(&mut capture(&zoo_file(&digits.onnx), &empty));
    assert!(message.contains("no samples"), "{message}");

    let garbage = directory.path().join("garbage.npy");
    std::fs::write(
        &garbage,
        b"\x93NUMPY\x01\x00\xff\xff{'descr': '<f4', 'shape': (99999999999,)}",
    )
    .unwrap();
    let message = failure(&mut capture(&zoo_file(&digits.onnx), &garbage));
    assert!(message.contains("garbage.npy"), "{message}");

    let message = failure(&mut capture(&tbf_fixtures()[0].path(), &narrow));
    assert!(message.contains("not a valid ONNX"), "{message}");

    // A dynamo export without the external data file written beside it.
    let orphan = directory.path().join("orphan.onnx");
    std::fs::copy(zoo_file(&digits.onnx), &orphan).unwrap();
    let message = failure(&mut capture(&orphan, &narrow));
    assert!(message.contains("external data"), "{message}");

    let message = failure(
        capture(&zoo_file(&toy.onnx), &zoo_file(&toy.datasets.val_inputs))
            .args(["--taps", "blocks.9"]),
    );
    assert!(
        message.contains("no tensor named \"blocks.9\""),
        "{message}"
    );

    let message = failure(
        capture(&zoo_file(&toy.onnx), &zoo_file(&toy.datasets.val_inputs))
            .args(["--device", "cuda"]),
    );
    assert!(message.contains("CPU only"), "{message}");

    #[cfg(not(feature = "ort"))]
    {
        let message = failure(
            capture(&zoo_file(&toy.onnx), &zoo_file(&toy.datasets.val_inputs))
                .args(["--backend", "ort"]),
        );
        assert!(message.contains("--features ort"), "{message}");
    }
    assert!(!out.exists(), "failed captures leave no output");
}

#[test]
fn models_load_from_bytes_unless_their_weights_live_in_external_files() {
    use tessera_host::onnx::OnnxModel;
    let inline = zoo("toy/conv_64d_2L.tx.torchscript");
    let bytes = std::fs::read(zoo_file(&inline.onnx)).unwrap();
    let from_bytes = OnnxModel::from_bytes(&bytes).unwrap();
    let from_path = OnnxModel::load(&zoo_file(&inline.onnx)).unwrap();
    assert_eq!(from_bytes.proto(), from_path.proto());

    let external = zoo("toy/conv_64d_2L.tx.dynamo");
    let bytes = std::fs::read(zoo_file(&external.onnx)).unwrap();
    let message = OnnxModel::from_bytes(&bytes).unwrap_err().to_string();
    assert!(message.contains("external data"), "{message}");
    // Loaded from its path, the external weights are read in and the model is self-contained.
    let loaded = OnnxModel::load(&zoo_file(&external.onnx)).unwrap();
    assert!(OnnxModel::from_bytes(&loaded.to_bytes()).is_ok());
}
