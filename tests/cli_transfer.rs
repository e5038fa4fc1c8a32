//! `tessera transfer` and the `ModeATransfer` builder end to end on real zoo models: the
//! receiver's agreement with the transmitter improves, the token and the tuned receiver load
//! back (the receiver runs in tract exactly as reported), results repeat for a seed, and bad
//! input is refused before anything is written.

mod support;

use std::path::{Path, PathBuf};

use tessera_host::backend::candle::{Trainable, TrainableGraph};
use tessera_host::backend::tract::TractExecutor;
use tessera_host::backend::Executor;
use tessera_host::dataset::Dataset;
use tessera_host::metrics::top1_agreement;
use tessera_host::onnx::OnnxModel;
use tessera_host::plugin::PluginRegistry;
use tessera_host::tbf::{self, KnowledgeType, LoadOptions, QuantType};
use tessera_host::transfer::{Augmentation, Knowledge, ModeATransfer};
use tessera_host::zoo::ZooModel;

use support::{
    assert_success, plugin_library, repo_root, tessera, transfer_command, zoo, zoo_file,
};

fn model(id: &str) -> ZooModel {
    zoo().model(id).unwrap().clone()
}

/// A small transfer (tiny hub, few epochs) between two zoo models through the CLI.
fn transfer(
    transmitter: &ZooModel,
    receiver: &ZooModel,
    folder: &Path,
    extra: &[&str],
) -> (std::process::Output, PathBuf, PathBuf) {
    let output = transfer_command(
        &zoo_file(&transmitter.onnx),
        &zoo_file(&receiver.onnx),
        &zoo_file(&transmitter.datasets.train_inputs),
        folder,
    )
    .args(["--json", "--hub-dim", "64", "--hub-epochs", "3"])
    .arg("--val-inputs")
    .arg(zoo_file(&transmitter.datasets.val_inputs))
    .arg("--val-labels")
    .arg(zoo_file(&transmitter.datasets.val_labels))
    .args(extra)
    .output()
    .unwrap();
    (output, folder.join("token.tbf"), folder.join("tuned.onnx"))
}

fn succeeded(output: &std::process::Output) -> serde_json::Value {
    assert_success(output);
    serde_json::from_slice(&output.stdout).unwrap()
}

/// Asserts that a transfer failed with `message` in its error and wrote neither output.
fn refused(output: &std::process::Output, token: &Path, tuned: &Path, message: &str) {
    assert!(!output.status.success());
    let error = String::from_utf8_lossy(&output.stderr);
    assert!(error.contains(message), "{error}");
    assert!(!token.exists() && !tuned.exists());
}

/// Asserts that a transfer with the `extra` options is [`refused`] with `message`.
fn refuses(transmitter: &ZooModel, receiver: &ZooModel, extra: &[&str], message: &str) {
    let folder = tempfile::tempdir().unwrap();
    let (output, token, tuned) = transfer(transmitter, receiver, folder.path(), extra);
    refused(&output, &token, &tuned, message);
}

fn logits(model: &OnnxModel, inputs: &Dataset) -> ndarray::Array2<f32> {
    let output = model.outputs()[0].name.clone();
    let mut executor = TractExecutor::new(model, &[output]).unwrap();
    executor.run(std::slice::from_ref(&inputs.inputs)).unwrap()[0]
        .as_f32()
        .unwrap()
        .clone()
        .into_dimensionality()
        .unwrap()
}

#[test]
fn transfer_improves_agreement_and_its_outputs_load_back() {
    let transmitter = model("digits/conv_64d_2L.tx.torchscript");
    let receiver = model("digits/mlp_64d_2L.rx.torchscript");
    let folder = tempfile::tempdir().unwrap();
    let (output, token_path, tuned_path) = transfer(
        &transmitter,
        &receiver,
        folder.path(),
        &["--epochs", "3", "--hub-vectors"],
    );
    let result = succeeded(&output);
    let report = &result["report"];
    let before = report["before"]["agreement"].as_f64().unwrap();
    let after = report["after"]["agreement"].as_f64().unwrap();
    assert!(after > before + 0.3, "agreement {before} -> {after}");
    assert!(report["after"]["accuracy"].as_f64().unwrap() > 0.5);
    assert_eq!(report["hub"]["dim"], 64);
    assert_eq!(report["transmitter"]["family"], "conv1d");
    assert_eq!(report["receiver"]["family"], "mlp");
    // A tenth of the inputs was set aside to choose the state kept; a trained one won.
    let selection = &report["selection"];
    assert_eq!(selection["inputs"], 135);
    assert_eq!(report["train_inputs"], 1347);
    assert_eq!(selection["outcome"], "improved");
    assert_eq!(selection["epochs"].as_array().unwrap().len(), 3);
    assert!(selection["chosen_score"]["agreement"].as_f64().unwrap() > 0.5);

    // The tuned receiver, run by tract, agrees with the transmitter as reported.
    let validation = Dataset::load(&zoo_file(&transmitter.datasets.val_inputs), None).unwrap();
    let tuned = OnnxModel::load(&tuned_path).unwrap();
    let teacher = OnnxModel::load(&zoo_file(&transmitter.onnx)).unwrap();
    let measured = top1_agreement(
        logits(&teacher, &validation).view(),
        logits(&tuned, &validation).view(),
    )
    .unwrap();
    assert!(
        (measured - after).abs() <= 2.0 / validation.len() as f64,
        "tract measures {measured}, the transfer reported {after}"
    );

    // The token: the transmitter's knowledge, released with the default privacy (ε split
    // between the soft targets and the hub vectors, which the full objective uses).
    let loaded = tbf::load(&token_path, &LoadOptions::default()).unwrap();
    assert_eq!(loaded.quant, QuantType::Float16);
    let metadata = &loaded.token.metadata;
    assert_eq!(metadata.knowledge_type, KnowledgeType::Behaviour);
    assert!((metadata.privacy_epsilon - 8.0).abs() < 1e-9);
    assert!((metadata.privacy_delta - 1e-5).abs() < 1e-15);
    assert!(metadata
        .source_model_id
        .ends_with("conv_64d_2L.tx.torchscript.onnx"));
    let knowledge = Knowledge::from_token(&loaded.token).unwrap();
    let header = &knowledge.header;
    assert_eq!(header.transmitter.family, "conv1d");
    assert_eq!(header.transmitter.output_width, 10);
    assert_eq!(header.train.rows, 1347);
    assert_eq!(header.validation.rows, 450);
    assert_eq!(header.synthetic_sets, 2);
    assert_eq!(header.privacy.len(), 2);
    let hub = knowledge
        .hub
        .as_ref()
        .expect("the full objective ships hub vectors");
    assert_eq!(hub.train.dim(), (1347, 64));
}

#[test]
fn a_receiver_fine_tuning_cannot_improve_is_returned_unchanged() {
    // The receiver already is the transmitter: every step can only move it away.
    let model = model("digits/mlp_64d_2L.tx.torchscript");
    let folder = tempfile::tempdir().unwrap();
    let (output, _, tuned) = transfer(
        &model,
        &model,
        folder.path(),
        &["--epochs", "2", "--objective", "output-only"],
    );
    let result = succeeded(&output);
    let warning = String::from_utf8_lossy(&output.stderr);
    assert!(warning.contains("warning: no improvement"), "{warning}");
    let report = &result["report"];
    let selection = &report["selection"];
    assert_eq!(selection["outcome"], "no improvement");
    assert_eq!(selection["chosen"], "start");
    assert_eq!(selection["start"]["agreement"], 1.0);
    assert_eq!(report["after"], report["before"]);
    assert_eq!(
        std::fs::read(&tuned).unwrap(),
        std::fs::read(zoo_file(&model.onnx)).unwrap(),
        "the receiver written is the one given"
    );
}

#[test]
fn the_same_seed_gives_the_same_receiver_and_token() {
    let transmitter = model("toy/conv_64d_2L.tx.torchscript");
    let receiver = model("toy/lstm_64d_2L.rx.torchscript");
    let run = |folder: &Path| {
        let (output, token, tuned) = transfer(
            &transmitter,
            &receiver,
            folder,
            &["--epochs", "2", "--seed", "5", "--epsilon", "inf"],
        );
        let mut report = succeeded(&output)["report"].clone();
        report.as_object_mut().unwrap().remove("timings");
        report["hub_training"]
            .as_object_mut()
            .unwrap()
            .remove("seconds");
        let vector = tbf::load(&token, &LoadOptions::default())
            .unwrap()
            .token
            .vector()
            .to_vec();
        (report, vector, std::fs::read(tuned).unwrap())
    };
    let first = tempfile::tempdir().unwrap();
    let second = tempfile::tempdir().unwrap();
    let (report_a, vector_a, model_a) = run(first.path());
    let (report_b, vector_b, model_b) = run(second.path());
    assert_eq!(report_a, report_b);
    assert_eq!(vector_a, vector_b);
    assert!(model_a == model_b, "the tuned receivers differ");
}

#[test]
fn bad_input_is_refused_and_nothing_is_written() {
    let transmitter = model("digits/conv_64d_2L.tx.torchscript");
    let receiver = model("digits/mlp_64d_2L.rx.torchscript");
    let folder = tempfile::tempdir().unwrap();
    // Toy tokens fed to digits models.
    let (output, token, tuned) = tessera_transfer_with_inputs(
        &transmitter,
        &receiver,
        folder.path(),
        &zoo_file("toy/train_inputs.npy"),
    );
    refused(&output, &token, &tuned, "train_inputs.npy");

    // No fine-tuning epochs.
    refuses(
        &transmitter,
        &receiver,
        &["--epochs", "0"],
        "at least one epoch",
    );

    // Named models need inputs.
    let output = tessera()
        .args(["transfer", "--transmitter"])
        .arg(zoo_file(&transmitter.onnx))
        .arg("--receiver")
        .arg(zoo_file(&receiver.onnx))
        .current_dir(folder.path())
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("--inputs is required"));
}

fn tessera_transfer_with_inputs(
    transmitter: &ZooModel,
    receiver: &ZooModel,
    folder: &Path,
    inputs: &Path,
) -> (std::process::Output, PathBuf, PathBuf) {
    let output = transfer_command(
        &zoo_file(&transmitter.onnx),
        &zoo_file(&receiver.onnx),
        inputs,
        folder,
    )
    .output()
    .unwrap();
    (output, folder.join("token.tbf"), folder.join("tuned.onnx"))
}

#[test]
fn without_held_out_inputs_a_share_of_the_inputs_is_held_out() {
    let transmitter = model("digits/mlp_64d_2L.tx.torchscript");
    let receiver = model("digits/lstm_64d_2L.rx.torchscript");
    let folder = tempfile::tempdir().unwrap();
    let output = tessera()
        .args(["transfer", "--json", "--epochs", "1", "--hub-epochs", "1"])
        .args(["--hub-dim", "16", "--hold-out", "0.25", "--epsilon", "inf"])
        .arg("--transmitter")
        .arg(zoo_file(&transmitter.onnx))
        .arg("--receiver")
        .arg(zoo_file(&receiver.onnx))
        .arg("--inputs")
        .arg(zoo_file(&transmitter.datasets.val_inputs))
        .arg("--out")
        .arg(folder.path().join("token.tbf"))
        .arg("--receiver-out")
        .arg(folder.path().join("tuned.onnx"))
        .output()
        .unwrap();
    let result = succeeded(&output);
    let report = &result["report"];
    // 450 inputs: a quarter held out, no labels, so no accuracy.
    assert_eq!(report["validation_inputs"], 113);
    assert_eq!(report["train_inputs"], 337);
    assert!(report["after"]["accuracy"].is_null());
    let token = tbf::load(&folder.path().join("token.tbf"), &LoadOptions::default())
        .unwrap()
        .token;
    assert_eq!(token.metadata.privacy_epsilon, f64::INFINITY);
}

#[test]
fn with_no_models_named_the_demo_pair_runs() {
    let folder = tempfile::tempdir().unwrap();
    let output = tessera()
        .args([
            "transfer",
            "--epochs",
            "1",
            "--hub-epochs",
            "1",
            "--hub-dim",
            "32",
        ])
        .arg("--zoo")
        .arg(repo_root().join("onnx-models"))
        .current_dir(folder.path())
        .output()
        .unwrap();
    assert_success(&output);
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(text.contains("agreement"), "{text}");
    assert!(folder.path().join("transfer.tbf").exists());
    assert!(folder
        .path()
        .join("mlp_64d_2L.rx.torchscript.tuned.onnx")
        .exists());
}

#[test]
fn the_builder_transfers_between_dynamo_exports_with_external_weights() {
    let mut registry = PluginRegistry::default();
    for library in ["tessera_plugin_transformer", "tessera_plugin_lstm"] {
        registry.add_library(plugin_library(library));
    }
    let transmitter = model("toy/transformer_64d_2L.tx.dynamo");
    let receiver = model("toy/lstm_64d_2L.rx.dynamo");
    let teacher = OnnxModel::load(&zoo_file(&transmitter.onnx)).unwrap();
    let student = OnnxModel::load(&zoo_file(&receiver.onnx)).unwrap();
    let train = Dataset::load(&zoo_file(&transmitter.datasets.train_inputs), None).unwrap();
    let validation = Dataset::load(
        &zoo_file(&transmitter.datasets.val_inputs),
        Some(&zoo_file(&transmitter.datasets.val_labels)),
    )
    .unwrap();
    let (outcome, knowledge) = ModeATransfer::new(&teacher, &student, &registry)
        .unwrap()
        .hub_dim(32)
        .epochs(2)
        .augmentation(Augmentation::SampleDomain)
        .seed(3)
        .execute_with_progress(&train, &validation, &mut |_| Ok(()))
        .unwrap();
    let report = &outcome.report;
    assert_eq!(report.receiver.family, "lstm");
    let set_aside = report.selection.as_ref().unwrap().inputs;
    assert_eq!(set_aside, 40);
    assert_eq!(
        report.steps,
        2 * (train.len() - set_aside).div_ceil(report.batch_size)
    );
    assert!(report.after.accuracy.is_some() && report.transmitter_accuracy.is_some());
    assert_eq!(knowledge.header.synthetic_sets, 1);
    let hub = knowledge.hub.as_ref().unwrap();
    assert_eq!(hub.train.dim(), (train.len(), 32));
    for row in hub.train.rows() {
        let norm = row.dot(&row).sqrt();
        assert!((norm - 1.0).abs() < 1e-4, "hub record norm {norm}");
    }
    let folder = tempfile::tempdir().unwrap();
    let path = folder.path().join("student.onnx");
    outcome.receiver.save(&path).unwrap();
    assert!(folder.path().join("student.onnx.data").exists());
    let reloaded = OnnxModel::load(&path).unwrap();
    let agreement = top1_agreement(
        logits(&teacher, &validation).view(),
        logits(&reloaded, &validation).view(),
    )
    .unwrap();
    let reported = report.after.agreement.unwrap();
    assert!(
        (agreement - reported).abs() <= 2.0 / validation.len() as f64,
        "tract {agreement}, reported {reported}"
    );
}

/// The largest absolute change of each named initializer from `original` to `tuned`.
fn largest_changes(original: &OnnxModel, tuned: &OnnxModel, names: &[&str]) -> Vec<f32> {
    let values = |model: &OnnxModel, name: &str| -> Vec<f32> {
        let graph = TrainableGraph::new(model, &Trainable::All, candle_core::Device::Cpu).unwrap();
        let (_, var) = graph
            .variables()
            .iter()
            .find(|(variable, _)| variable == name)
            .unwrap_or_else(|| panic!("{name} is not an initializer"));
        var.as_tensor().flatten_all().unwrap().to_vec1().unwrap()
    };
    names
        .iter()
        .map(|name| {
            values(original, name)
                .iter()
                .zip(values(tuned, name))
                .map(|(a, b)| (a - b).abs())
                .fold(0.0, f32::max)
        })
        .collect()
}

#[test]
fn receivers_learn_their_embeddings_at_the_scaled_rate() {
    let transmitter = model("toy/conv_64d_2L.tx.torchscript");
    let receiver = model("toy/mlp_128d_4L.rx.torchscript");
    let original = OnnxModel::load(&zoo_file(&receiver.onnx)).unwrap();
    let changes = |scale: &str| {
        let folder = tempfile::tempdir().unwrap();
        let (output, _, tuned) = transfer(
            &transmitter,
            &receiver,
            folder.path(),
            // Every weight as the step left it: no average, no choice of an earlier state.
            &[
                "--epochs",
                "1",
                "--weight-averaging",
                "0",
                "--selection-share",
                "0",
                "--embedding-rate-scale",
                scale,
            ],
        );
        assert_eq!(
            succeeded(&output)["report"]["embedding_rate_scale"].as_f64(),
            scale.parse().ok()
        );
        let tuned = OnnxModel::load(&tuned).unwrap();
        largest_changes(&original, &tuned, &["stem.weight", "head.weight"])
    };
    let (plain, scaled) = (changes("1"), changes("30"));
    // Adam moves a weight by about the learning rate per step: the embedding moves about 30
    // times as far with the scale, the dense head about as far either way.
    assert!(plain[0] > 0.0, "the embedding did not learn: {plain:?}");
    assert!(scaled[0] > 10.0 * plain[0], "{plain:?} vs {scaled:?}");
    assert!(scaled[1] < 3.0 * plain[1], "{plain:?} vs {scaled:?}");

    refuses(
        &transmitter,
        &receiver,
        &["--embedding-rate-scale", "0"],
        "embedding learning-rate scale",
    );
}

#[test]
fn receivers_end_with_their_averaged_weights() {
    let transmitter = model("toy/conv_64d_2L.tx.torchscript");
    let receiver = model("toy/mlp_128d_4L.rx.torchscript");
    let tuned = |share: &str| {
        let folder = tempfile::tempdir().unwrap();
        let (output, _, tuned) = transfer(
            &transmitter,
            &receiver,
            folder.path(),
            &[
                "--epochs",
                "2",
                "--weight-averaging",
                share,
                "--selection-share",
                "0",
            ],
        );
        let report = &succeeded(&output)["report"];
        assert_eq!(report["weight_averaging"].as_f64(), share.parse().ok());
        assert_eq!(
            report["warmup_epochs"].as_f64(),
            Some(1.0),
            "the default warm-up"
        );
        assert_eq!(report["device"], "cpu");
        OnnxModel::load(&tuned).unwrap()
    };
    let moved = largest_changes(&tuned("0"), &tuned("0.1"), &["head.weight"])[0];
    assert!(moved > 0.0, "the averaged receiver equals the last step's");

    refuses(
        &transmitter,
        &receiver,
        &["--weight-averaging", "1.5"],
        "weight-averaging horizon",
    );
    refuses(
        &transmitter,
        &receiver,
        &["--epochs", "2", "--warmup-epochs", "3"],
        "warm-up lasts between 0 (none) and the 2 fine-tuning epochs",
    );
}

/// `--device` places the receiver's fine-tuning and the hub; a build without the `cuda`
/// feature refuses a GPU, naming the feature, and writes nothing.
#[test]
fn the_training_device_is_a_parameter() {
    let transmitter = model("toy/conv_64d_2L.tx.torchscript");
    let receiver = model("toy/mlp_128d_4L.rx.torchscript");
    if cfg!(not(feature = "cuda")) {
        for device in ["cuda", "tensorrt"] {
            refuses(
                &transmitter,
                &receiver,
                &["--epochs", "1", "--device", device],
                "--features cuda",
            );
        }
    }
    refuses(
        &transmitter,
        &receiver,
        &["--device", "tpu"],
        "use cpu, cuda, tensorrt or auto",
    );
}
