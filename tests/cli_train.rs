//! `tessera train`: supervised training on the trainable graph, written back as ONNX that tract
//! runs exactly as the trainable graph does; unsupported operators are refused before training.

mod support;

use std::path::Path;

use assert_cmd::Command;
use tessera_host::backend::candle::{to_host, Trainable, TrainableGraph};
use tessera_host::backend::tract::TractExecutor;
use tessera_host::backend::Executor;
use tessera_host::dataset::Dataset;
use tessera_host::onnx::OnnxModel;
use tessera_host::zoo::ZooModel;

use support::{zoo_file, zoo_models};

fn zoo(id: &str) -> ZooModel {
    zoo_models()
        .into_iter()
        .find(|model| model.id == id)
        .unwrap()
}

fn train(model: &ZooModel, out: &Path, epochs: usize) -> serde_json::Value {
    let output = Command::new(env!("CARGO_BIN_EXE_tessera"))
        .args([
            "train",
            "--json",
            "--epochs",
            &epochs.to_string(),
            "--seed",
            "7",
        ])
        .arg(zoo_file(&model.onnx))
        .arg("--inputs")
        .arg(zoo_file(&model.datasets.train_inputs))
        .arg("--labels")
        .arg(zoo_file(&model.datasets.train_labels))
        .arg("--val-inputs")
        .arg(zoo_file(&model.datasets.val_inputs))
        .arg("--val-labels")
        .arg(zoo_file(&model.datasets.val_labels))
        .arg("--out")
        .arg(out)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

#[test]
fn trained_weights_round_trip_through_onnx_with_external_data() {
    let model = zoo("digits/lstm_64d_2L.rx.dynamo");
    let directory = tempfile::tempdir().unwrap();
    let out = directory.path().join("trained.onnx");
    train(&model, &out, 1);
    assert!(
        directory.path().join("trained.onnx.data").is_file(),
        "external weights stay external"
    );

    // Only initializer data changes: the exporter's node metadata, which this version's
    // protobuf schema does not even know, is kept byte for byte.
    let count =
        |bytes: &[u8], needle: &[u8]| bytes.windows(needle.len()).filter(|w| w == &needle).count();
    let (before_bytes, after_bytes) = (
        std::fs::read(zoo_file(&model.onnx)).unwrap(),
        std::fs::read(&out).unwrap(),
    );
    let needle = b"pkg.torch.onnx.name_scopes";
    assert!(count(&before_bytes, needle) > 0);
    assert_eq!(count(&after_bytes, needle), count(&before_bytes, needle));

    // The same seed gives the same bytes.
    let elsewhere = tempfile::tempdir().unwrap();
    let again = elsewhere.path().join("trained.onnx");
    train(&model, &again, 1);
    assert!(
        std::fs::read(&again).unwrap() == after_bytes,
        "training is deterministic for a seed"
    );
    assert!(
        std::fs::read(elsewhere.path().join("trained.onnx.data")).unwrap()
            == std::fs::read(directory.path().join("trained.onnx.data")).unwrap()
    );

    let original = OnnxModel::load(&zoo_file(&model.onnx)).unwrap();
    let trained = OnnxModel::load(&out).unwrap();
    assert_eq!(
        trained.graph().node,
        original.graph().node,
        "the graph is unchanged"
    );
    assert_eq!(trained.proto().opset_import, original.proto().opset_import);

    let dataset = Dataset::load(&zoo_file(&model.datasets.val_inputs), None).unwrap();
    let batch = dataset.inputs.slice_axis(0, 0..16);
    let outputs = ["logits".to_string()];
    let by_tract = TractExecutor::new(&trained, &outputs)
        .unwrap()
        .run(std::slice::from_ref(&batch))
        .unwrap();
    let graph = TrainableGraph::new(&trained, &Trainable::All, candle_core::Device::Cpu).unwrap();
    let by_graph = to_host(
        &graph
            .forward(std::slice::from_ref(&batch), &outputs)
            .unwrap()[0],
    )
    .unwrap();
    let before = TractExecutor::new(&original, &outputs)
        .unwrap()
        .run(&[batch])
        .unwrap();
    let (a, b, c) = (
        by_tract[0].as_f32().unwrap(),
        by_graph.as_f32().unwrap(),
        before[0].as_f32().unwrap(),
    );
    let difference = a
        .iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max);
    assert!(
        difference <= 1e-4,
        "tract and the trainable graph differ by {difference}"
    );
    assert!(
        a.iter().zip(c).any(|(x, y)| (x - y).abs() > 1e-3),
        "training changed the model"
    );
}

#[test]
fn training_an_untrained_receiver_learns_the_task() {
    // PyTorch's recipe reaches 0.978 (MLP) and 0.987 (Conv1D) after 60 epochs; after 10, the
    // loss must have fallen well and the receivers must be far above chance (0.1).
    for (id, minimum_accuracy) in [
        ("digits/mlp_64d_2L.rx.torchscript", 0.93),
        ("digits/conv_64d_2L.rx.torchscript", 0.75),
    ] {
        let model = zoo(id);
        let directory = tempfile::tempdir().unwrap();
        let report = train(&model, &directory.path().join("trained.onnx"), 10);
        let epochs = report["epochs"].as_array().unwrap();
        let first = epochs.first().unwrap()["loss"].as_f64().unwrap();
        let last = epochs.last().unwrap();
        assert!(
            last["loss"].as_f64().unwrap() < first / 2.0,
            "{id}: {report}"
        );
        let accuracy = last["val_accuracy"].as_f64().unwrap();
        assert!(
            accuracy >= minimum_accuracy,
            "{id}: validation accuracy {accuracy}"
        );
    }
}

#[test]
fn unsupported_operators_are_refused_before_training() {
    let mut model = OnnxModel::load(&zoo_file(&zoo("toy/conv_64d_2L.rx.torchscript").onnx))
        .unwrap()
        .proto()
        .clone();
    let graph = model.graph.as_mut().unwrap();
    graph.node[3].op_type = "NonMaxSuppression".into();
    let name = graph.node[3].name.clone();
    let directory = tempfile::tempdir().unwrap();
    let path = directory.path().join("odd.onnx");
    std::fs::write(&path, prost::Message::encode_to_vec(&model)).unwrap();
    let model = OnnxModel::load(&path).unwrap();
    let message = TrainableGraph::new(&model, &Trainable::All, candle_core::Device::Cpu)
        .err()
        .unwrap()
        .to_string();
    assert!(
        message.contains("NonMaxSuppression") && message.contains(&name),
        "{message}"
    );
}
