//! ModeAQ end to end through the CLI on zoo pairs: `tessera transfer --mode aq` writes an INT8
//! QDQ, an INT4 or an FP16 receiver as standard ONNX that tract runs as reported, the report
//! and the metadata carry the fidelity figures, `tessera absorb --mode aq` quantises from a
//! token, and contradictory options are refused before anything is written.

mod support;

use std::path::{Path, PathBuf};

use tessera_host::capture::{capture, CaptureOptions};
use tessera_host::dataset::Dataset;
use tessera_host::metrics::top1_agreement;
use tessera_host::onnx::proto::tensor_proto::DataType;
use tessera_host::onnx::OnnxModel;
use tessera_host::tbf::{self, LoadOptions};
use tessera_host::transfer::{Knowledge, FIDELITY_METADATA_KEY};
use tessera_host::zoo::ZooModel;

use support::{assert_success, tessera, zoo, zoo_file};

fn model(id: &str) -> ZooModel {
    zoo().model(id).unwrap().clone()
}

/// A small ModeAQ transfer through the CLI, writing the quantised receiver, the float one and
/// the token into `folder`.
fn transfer_aq(
    transmitter: &ZooModel,
    receiver: &ZooModel,
    folder: &Path,
    extra: &[&str],
) -> (std::process::Output, PathBuf, PathBuf) {
    let quantised = folder.join("quantised.onnx");
    let float = folder.join("float.onnx");
    let output = tessera()
        .args([
            "transfer",
            "--json",
            "--mode",
            "aq",
            "--hub-dim",
            "64",
            "--hub-epochs",
            "3",
        ])
        .args(["--epochs", "3", "--qat-epochs", "2", "--frozen-epochs", "1"])
        .arg("--transmitter")
        .arg(zoo_file(&transmitter.onnx))
        .arg("--receiver")
        .arg(zoo_file(&receiver.onnx))
        .arg("--inputs")
        .arg(zoo_file(&transmitter.datasets.train_inputs))
        .arg("--val-inputs")
        .arg(zoo_file(&transmitter.datasets.val_inputs))
        .arg("--val-labels")
        .arg(zoo_file(&transmitter.datasets.val_labels))
        .arg("--out")
        .arg(folder.join("token.tbf"))
        .arg("--receiver-out")
        .arg(&quantised)
        .arg("--float-out")
        .arg(&float)
        .args(extra)
        .output()
        .unwrap();
    (output, quantised, float)
}

fn succeeded(output: &std::process::Output) -> serde_json::Value {
    assert_success(output);
    serde_json::from_slice(&output.stdout).unwrap()
}

fn figure(value: &serde_json::Value) -> f64 {
    value
        .as_f64()
        .unwrap_or_else(|| panic!("not a number: {value}"))
}

/// The logits of `path` on the validation inputs of `entry`, run by tract.
fn logits(path: &Path, entry: &ZooModel) -> ndarray::Array2<f32> {
    let model = OnnxModel::load(path).unwrap();
    let validation = Dataset::load(&zoo_file(&entry.datasets.val_inputs), None).unwrap();
    let output = model.outputs()[0].name.clone();
    let captured = capture(
        &model,
        &validation,
        &[output],
        &CaptureOptions::default(),
        &mut |_| {},
    )
    .unwrap();
    captured.tensors[0]
        .as_f32()
        .unwrap()
        .clone()
        .into_dimensionality()
        .unwrap()
}

fn op_count(model: &OnnxModel, op: &str) -> usize {
    model
        .graph()
        .node
        .iter()
        .filter(|node| node.op_type == op)
        .count()
}

#[test]
fn int8_transfer_writes_a_qdq_receiver_that_keeps_what_the_float_one_learned() {
    let transmitter = model("digits/conv_64d_2L.tx.torchscript");
    let receiver = model("digits/mlp_64d_2L.rx.torchscript");
    let folder = tempfile::tempdir().unwrap();
    let (output, quantised_path, float_path) =
        transfer_aq(&transmitter, &receiver, folder.path(), &[]);
    let result = succeeded(&output);
    let report = &result["report"];
    assert_eq!(report["method"], "mode-aq");
    let quantisation = &report["quantisation"];
    assert_eq!(
        quantisation["label"],
        "int8 sym per-channel, act int8 (mse)"
    );
    let float_agreement = figure(&quantisation["float_fidelity"]["agreement"]);
    let agreement = figure(&quantisation["fidelity"]["agreement"]);
    assert!(
        float_agreement > 0.8,
        "the float transfer worked: {float_agreement}"
    );
    assert!(
        agreement >= float_agreement - 0.02,
        "{float_agreement} -> {agreement}"
    );
    assert!(figure(&quantisation["agreement_with_float"]) >= 0.95);
    // On the grid it learns its float counterpart's outputs: rounding is all that differs.
    assert_eq!(quantisation["teacher"], "float");
    assert!(
        figure(&quantisation["logits_sqnr_db"]) > 15.0,
        "{quantisation}"
    );
    assert!(
        figure(&quantisation["compression"]) >= 2.5,
        "{quantisation}"
    );
    assert!(figure(&quantisation["mean_clipping"]) < 0.01);
    assert_eq!(quantisation["epochs"], 2);
    assert!(figure(&quantisation["inference"]["ratio"]) > 0.0);
    assert_eq!(quantisation["measured_on"], "the exported file");

    // Standard QDQ where an integer kernel pays for quantising its input (the MLP's 512 → 64
    // projection): its int8 weight and int32 bias behind DequantizeLinear, its input through a
    // Q/DQ pair. The six narrower layers read float inputs, their int8 weights widened at load.
    let quantised = OnnxModel::load(&quantised_path).unwrap();
    assert_eq!(quantisation["quantised_activations"], 1, "{quantisation}");
    assert_eq!(op_count(&quantised, "QuantizeLinear"), 1);
    assert_eq!(op_count(&quantised, "DequantizeLinear"), 3);
    let weight_only = quantisation["weight_only"].as_array().unwrap();
    assert_eq!(weight_only.len(), 6, "{quantisation}");
    assert!(!weight_only.contains(&serde_json::json!("/flat_proj/Gemm")));
    assert_eq!(op_count(&quantised, "Cast"), 6);
    let int8_weights = quantised
        .graph()
        .initializer
        .iter()
        .filter(|init| init.data_type == DataType::Int8 as i32 && init.dims.len() == 2)
        .count();
    assert!(int8_weights >= 3, "{int8_weights} int8 weight matrices");
    let metadata = |key: &str| {
        quantised
            .proto()
            .metadata_props
            .iter()
            .find(|entry| entry.key == key)
            .map(|entry| entry.value.clone())
    };
    let fidelity: serde_json::Value =
        serde_json::from_str(&metadata(FIDELITY_METADATA_KEY).unwrap()).unwrap();
    assert_eq!(fidelity["agreement"], quantisation["fidelity"]["agreement"]);
    assert!(metadata("tessera.quantisation").is_some());

    // tract runs both files as the report says.
    let q = logits(&quantised_path, &transmitter);
    let f = logits(&float_path, &transmitter);
    let measured = top1_agreement(f.view(), q.view()).unwrap();
    assert!((measured - figure(&quantisation["agreement_with_float"])).abs() < 1e-9);

    // The token records what the quantised receiver achieved.
    let token = tbf::load(&folder.path().join("token.tbf"), &LoadOptions::default()).unwrap();
    let knowledge = Knowledge::from_token(&token.token).unwrap();
    let summary = knowledge.header.quantised_receiver.unwrap();
    assert_eq!(
        Some(summary.agreement_with_float),
        quantisation["agreement_with_float"].as_f64()
    );
}

#[test]
fn the_knowledge_teacher_moves_the_receiver_further_from_its_float_counterpart() {
    let transmitter = model("toy/conv_64d_2L.tx.torchscript");
    let receiver = model("toy/mlp_128d_4L.rx.torchscript");
    let sqnr = |teacher: &str| {
        let folder = tempfile::tempdir().unwrap();
        let (output, _, _) = transfer_aq(
            &transmitter,
            &receiver,
            folder.path(),
            // No selection slice: both keep their trained state, the comparison is of teachers.
            &["--qat-teacher", teacher, "--selection-share", "0"],
        );
        let quantisation = succeeded(&output)["report"]["quantisation"].clone();
        assert_eq!(quantisation["teacher"], teacher);
        figure(&quantisation["logits_sqnr_db"])
    };
    // The float teacher only undoes what rounding changed; the transmitter's knowledge keeps
    // moving the receiver, so its logits end further from the float receiver's.
    let (own, knowledge) = (sqnr("float"), sqnr("knowledge"));
    assert!(
        own > knowledge + 3.0,
        "float {own} dB, knowledge {knowledge} dB"
    );
}

#[test]
fn int4_and_fp16_receivers_are_written_and_measured() {
    let transmitter = model("digits/conv_64d_2L.tx.torchscript");
    let receiver = model("digits/lstm_64d_2L.rx.torchscript");
    for (quant, extra, compression) in [
        ("int4", vec!["--int4-storage", "int8"], 2.5),
        ("int4", vec![], 4.0),
        ("int4", vec!["--int4-block", "32"], 3.5),
        ("fp16", vec![], 1.8),
    ] {
        let folder = tempfile::tempdir().unwrap();
        let mut args = vec!["--quant", quant];
        args.extend(extra.iter().copied());
        let (output, quantised_path, _) =
            transfer_aq(&transmitter, &receiver, folder.path(), &args);
        let result = succeeded(&output);
        let quantisation = &result["report"]["quantisation"];
        let label = quantisation["label"].as_str().unwrap().to_string();
        assert!(
            figure(&quantisation["compression"]) >= compression,
            "{label}: {quantisation}"
        );
        assert!(
            figure(&quantisation["agreement_with_float"]) > 0.8,
            "{label}"
        );
        assert_eq!(
            quantisation["quantised_activations"], 0,
            "{label} is weight-only"
        );
        let quantised = OnnxModel::load(&quantised_path).unwrap();
        let types: Vec<i32> = quantised
            .graph()
            .initializer
            .iter()
            .map(|i| i.data_type)
            .collect();
        match (quant, extra.as_slice()) {
            ("fp16", _) => {
                assert!(types.contains(&(DataType::Float16 as i32)));
                assert!(op_count(&quantised, "Cast") > 0);
                assert_eq!(
                    quantisation["epochs"], 0,
                    "fp16 needs no training on a grid"
                );
            }
            ("int4", ["--int4-storage", "int8"]) => {
                assert!(types.contains(&(DataType::Int8 as i32)));
            }
            _ => {
                assert!(types.contains(&(DataType::Int4 as i32)), "{label}");
                assert_eq!(quantised.opset(), Some(21));
                // tract has no 4-bit types: the figures come from the float twin.
                assert!(quantisation["measured_on"]
                    .as_str()
                    .unwrap()
                    .contains("twin"));
                assert!(quantisation["inference"].is_null());
            }
        }
    }
}

#[test]
fn absorb_quantises_from_a_token() {
    let transmitter = model("digits/conv_64d_2L.tx.torchscript");
    let receiver = model("digits/mlp_64d_2L.rx.torchscript");
    let folder = tempfile::tempdir().unwrap();
    let dir = folder.path();
    let token = dir.join("knowledge.tbf");
    let inputs = zoo_file(&transmitter.datasets.train_inputs);
    assert_success(
        &tessera()
            .args([
                "emit",
                "--json",
                "--epsilon",
                "inf",
                "--epochs",
                "3",
                "--transmitter",
            ])
            .arg(zoo_file(&transmitter.onnx))
            .arg("--inputs")
            .arg(&inputs)
            .arg("--out")
            .arg(&token)
            .output()
            .unwrap(),
    );
    let quantised = dir.join("quantised.onnx");
    let output = tessera()
        .args([
            "absorb",
            "--json",
            "--mode",
            "aq",
            "--qat-epochs",
            "1",
            "--frozen-epochs",
            "0",
        ])
        .arg("--token")
        .arg(&token)
        .arg("--receiver")
        .arg(zoo_file(&receiver.onnx))
        .arg("--inputs")
        .arg(&inputs)
        .arg("--receiver-out")
        .arg(&quantised)
        .output()
        .unwrap();
    let result = succeeded(&output);
    let quantisation = &result["report"]["quantisation"];
    assert!(figure(&quantisation["agreement_with_float"]) > 0.9);
    assert!(figure(&quantisation["fidelity"]["agreement"]) > 0.8);
    assert!(op_count(&OnnxModel::load(&quantised).unwrap(), "QuantizeLinear") > 0);
}

#[test]
fn contradictory_quantisation_options_are_refused_before_anything_is_written() {
    let transmitter = model("digits/conv_64d_2L.tx.torchscript");
    let receiver = model("digits/mlp_64d_2L.rx.torchscript");
    for (args, message) in [
        (
            vec!["--mode", "a", "--float-out", "f.onnx"],
            "--float-out applies to --mode aq only",
        ),
        (
            vec!["--quant", "int4", "--activations", "int8"],
            "weight-only",
        ),
        (
            vec!["--quant", "int4", "--int4-block", "24"],
            "power of two",
        ),
        (
            vec!["--quant", "int8", "--int4-block", "32"],
            "int4 weights only",
        ),
        (vec!["--frozen-epochs", "9"], "frozen epochs"),
        (vec!["--calibration", "percentile:20"], "percentile"),
        (vec!["--quant", "int3"], "int8, int4, fp16"),
    ] {
        let folder = tempfile::tempdir().unwrap();
        let mut all = vec!["--mode", "aq"];
        all.extend(args.iter().copied());
        if args[..2] == ["--mode", "a"] {
            all = args.clone();
        }
        let output = tessera()
            .arg("transfer")
            .arg("--transmitter")
            .arg(zoo_file(&transmitter.onnx))
            .arg("--receiver")
            .arg(zoo_file(&receiver.onnx))
            .arg("--inputs")
            .arg(zoo_file(&transmitter.datasets.train_inputs))
            .args(&all)
            .current_dir(folder.path())
            .output()
            .unwrap();
        let error = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "{args:?} succeeded");
        assert!(
            error.contains(message),
            "{args:?}: expected {message:?} in {error}"
        );
        let written: Vec<_> = std::fs::read_dir(folder.path()).unwrap().collect();
        assert!(written.is_empty(), "{args:?} wrote {written:?}");
    }
}

/// With `--backend ort` both receivers are measured and timed in ONNX Runtime, which reads
/// packed INT4 itself.
#[cfg(feature = "ort")]
#[test]
fn modeaq_measures_in_onnx_runtime() {
    let transmitter = model("digits/conv_64d_2L.tx.torchscript");
    let receiver = model("digits/mlp_64d_2L.rx.torchscript");
    for quant in ["int8", "int4"] {
        let folder = tempfile::tempdir().unwrap();
        let (output, _, _) = transfer_aq(
            &transmitter,
            &receiver,
            folder.path(),
            &["--backend", "ort", "--quant", quant],
        );
        let result = succeeded(&output);
        let quantisation = &result["report"]["quantisation"];
        assert_eq!(quantisation["measured_on"], "the exported file", "{quant}");
        let inference = &quantisation["inference"];
        assert!(inference["executor"]
            .as_str()
            .unwrap()
            .starts_with("ONNX Runtime"));
        assert!(figure(&inference["ratio"]) > 0.0);
        assert!(
            figure(&quantisation["agreement_with_float"]) > 0.8,
            "{quant}"
        );
    }
}
