//! The real-size tier at its tiny configs (`onnx-models/real/`, written by
//! `onnx-models/make_real.py`): torchvision's ResNet-18 and MobileNetV2 and transformers' BERT
//! and DistilBERT, built by the libraries' own code at reduced width and exported with both
//! PyTorch exporters. Every model runs in tract and in the trainable graph as it ran in
//! PyTorch; its batch normalisations learn and measure per layer, whatever the exporter
//! merged; transfers between the families gain agreement; an image model and a token model are
//! refused as a pair.

mod support;

use std::path::PathBuf;

use tessera_host::array_io::read_npy;
use tessera_host::backend::candle::{Trainable, TrainableGraph};
use tessera_host::backend::{Backend, ExecutorOptions};
use tessera_host::capture::{capture, CaptureOptions};
use tessera_host::dataset::Dataset;
use tessera_host::onnx::OnnxModel;
use tessera_host::tensor::Tensor;

use candle_core::Device;
use support::{assert_success, max_difference, repo_root, transfer_command};

/// Every family, with its task folder.
const FAMILIES: [(&str, &str); 4] = [
    ("images", "resnet18"),
    ("images", "mobilenet_v2"),
    ("text", "bert"),
    ("text", "distilbert"),
];
const EXPORTERS: [&str; 2] = ["torchscript", "dynamo"];

fn real(relative: &str) -> PathBuf {
    repo_root().join("onnx-models/real").join(relative)
}

/// Every model of the tier: (task, file stem such as `resnet18.tx.dynamo`).
fn models() -> Vec<(&'static str, String)> {
    let mut all = Vec::new();
    for (task, family) in FAMILIES {
        for role in ["tx", "rx"] {
            for exporter in EXPORTERS {
                all.push((task, format!("{family}.{role}.{exporter}")));
            }
        }
    }
    all
}

/// PyTorch's validation logits of a model (shared by both exports of its weights).
fn pytorch_logits(task: &str, stem: &str) -> Tensor {
    let weights = stem.rsplit_once('.').map_or(stem, |(weights, _)| weights);
    read_npy(&real(&format!("{task}/{weights}.val_logits.npy"))).unwrap()
}

#[test]
fn every_real_model_runs_in_tract_as_in_pytorch() {
    for (task, stem) in models() {
        let model = OnnxModel::load(&real(&format!("{task}/{stem}.onnx"))).unwrap();
        let inputs = Dataset::load(&real(&format!("{task}/val_inputs.npy")), None).unwrap();
        let options = CaptureOptions {
            executor: ExecutorOptions {
                backend: Backend::Tract,
                ..ExecutorOptions::default()
            },
            batch_size: 64,
        };
        let captured = capture(&model, &inputs, &["logits".into()], &options, &mut |_| {})
            .unwrap_or_else(|error| panic!("{stem}: {error}"));
        let difference = max_difference(&captured.tensors[0], &pytorch_logits(task, &stem));
        assert!(difference <= 1e-4, "{stem}: tract differs by {difference}");
    }
}

#[test]
fn the_trainable_graph_runs_every_real_model_as_pytorch_did() {
    for (task, stem) in models() {
        let model = OnnxModel::load(&real(&format!("{task}/{stem}.onnx"))).unwrap();
        let graph = TrainableGraph::new(&model, &Trainable::All, Device::Cpu)
            .unwrap_or_else(|error| panic!("{stem}: {error}"));
        let inputs = Dataset::load(&real(&format!("{task}/val_inputs.npy")), None)
            .unwrap()
            .inputs
            .slice_axis(0, 0..64);
        let logits = graph.forward(&[inputs], &["logits".into()]).unwrap();
        let logits = tessera_host::backend::candle::to_host(&logits[0]).unwrap();
        let expected = pytorch_logits(task, &stem).slice_axis(0, 0..64);
        let difference = max_difference(&logits, &expected);
        assert!(
            difference <= 1e-3,
            "{stem}: the graph differs by {difference}"
        );
    }
}

/// The running mean and variance of each batch normalisation, by initializer name.
fn statistics(graph: &TrainableGraph) -> Vec<(String, Vec<f32>)> {
    graph
        .statistics()
        .iter()
        .map(|(name, var)| {
            let values = var.as_tensor().flatten_all().unwrap().to_vec1().unwrap();
            (name.clone(), values)
        })
        .collect()
}

#[test]
fn each_normalisation_learns_and_measures_its_own_statistics() {
    let images = Dataset::load(&real("images/train_inputs.npy"), None)
        .unwrap()
        .inputs
        .slice_axis(0, 0..32);
    for exporter in EXPORTERS {
        let path = real(&format!("images/resnet18.rx.{exporter}.onnx"));
        let model = OnnxModel::load(&path).unwrap();
        let layers = model
            .graph()
            .node
            .iter()
            .filter(|node| node.op_type == "BatchNormalization")
            .count();
        let graph = TrainableGraph::new(&model, &Trainable::All, Device::Cpu).unwrap();
        // Every layer has its own scale, bias, mean and variance, though the untrained
        // network's were equal and the exporters merged them.
        let before = statistics(&graph);
        assert_eq!(before.len(), 2 * layers, "{exporter}");
        let names: std::collections::HashSet<&str> =
            before.iter().map(|(name, _)| name.as_str()).collect();
        assert_eq!(names.len(), 2 * layers, "{exporter}: shared statistics");
        assert!(graph
            .variables()
            .iter()
            .all(|(name, _)| !names.contains(name.as_str())));
        // A training pass measures the batch; the statistics move by momentum 0.1 of it.
        let eval_before = graph
            .forward(std::slice::from_ref(&images), &["logits".into()])
            .unwrap();
        let (_, measured) = graph
            .forward_training(std::slice::from_ref(&images), &["logits".into()])
            .unwrap();
        graph.update_statistics(&[measured]).unwrap();
        let after = statistics(&graph);
        let moved = before
            .iter()
            .zip(&after)
            .filter(|((_, old), (_, new))| old != new)
            .count();
        assert_eq!(moved, 2 * layers, "{exporter}: every statistic moves");
        let eval_after = graph
            .forward(std::slice::from_ref(&images), &["logits".into()])
            .unwrap();
        let shift = (&eval_after[0] - &eval_before[0])
            .unwrap()
            .abs()
            .unwrap()
            .max_all()
            .unwrap()
            .to_scalar::<f32>()
            .unwrap();
        assert!(shift > 0.0, "{exporter}: inference uses the new statistics");
        // The trained model carries them.
        let trained = graph.trained_model().unwrap();
        let reloaded = TrainableGraph::new(&trained, &Trainable::All, Device::Cpu).unwrap();
        assert_eq!(statistics(&reloaded), after, "{exporter}");
    }
}

/// The first `rows` of a dataset file, written to `folder`.
fn first_rows(task: &str, file: &str, rows: usize, folder: &std::path::Path) -> PathBuf {
    let path = folder.join(format!("{task}_{file}"));
    match read_npy(&real(&format!("{task}/{file}")))
        .unwrap()
        .slice_axis(0, 0..rows)
    {
        Tensor::F32(values) => ndarray_npy::write_npy(&path, &values),
        Tensor::I64(values) => ndarray_npy::write_npy(&path, &values),
    }
    .unwrap();
    path
}

#[test]
fn transfers_between_real_families_gain_agreement() {
    let folder = tempfile::tempdir().unwrap();
    // The text student learns slowly at first, and its first epoch warms up: eight epochs.
    for (task, transmitter, receiver, epochs) in [
        (
            "images",
            "resnet18.tx.dynamo",
            "mobilenet_v2.rx.torchscript",
            "4",
        ),
        ("text", "bert.tx.torchscript", "distilbert.rx.dynamo", "8"),
    ] {
        let output = transfer_command(
            &real(&format!("{task}/{transmitter}.onnx")),
            &real(&format!("{task}/{receiver}.onnx")),
            &real(&format!("{task}/train_inputs.npy")),
            folder.path(),
        )
        .args(["--json", "--hub-dim", "64", "--epochs", epochs])
        .arg("--val-inputs")
        .arg(first_rows(task, "val_inputs.npy", 200, folder.path()))
        .arg("--val-labels")
        .arg(first_rows(task, "val_labels.npy", 200, folder.path()))
        .output()
        .unwrap();
        assert_success(&output);
        let result: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
        let report = &result["report"];
        let before = report["before"]["agreement"].as_f64().unwrap();
        let after = report["after"]["agreement"].as_f64().unwrap();
        assert!(
            after > before + 0.3,
            "{transmitter} -> {receiver}: agreement {before} -> {after}"
        );
        assert_eq!(report["selection"]["outcome"], "improved");
        OnnxModel::load(&folder.path().join("tuned.onnx")).unwrap();
    }
}

#[test]
fn an_image_model_and_a_token_model_do_not_pair() {
    let folder = tempfile::tempdir().unwrap();
    let output = transfer_command(
        &real("text/bert.tx.dynamo.onnx"),
        &real("images/resnet18.rx.dynamo.onnx"),
        &real("text/train_inputs.npy"),
        folder.path(),
    )
    .output()
    .unwrap();
    assert!(!output.status.success());
    let message = String::from_utf8_lossy(&output.stderr);
    assert!(
        message.contains("the transmitter reads \"tokens\" as int64")
            && message.contains("the receiver reads \"images\" as float32"),
        "{message}"
    );
    assert!(!folder.path().join("tuned.onnx").exists());
}
