//! The fallback adapter on models from families the bundled plugins do not claim
//! (`onnx-models/unclaimed/`, each from both exporters): it plans every one, its plans pass the
//! host's checks and read activations of the declared width, the registry falls back to it
//! for the plain CNNs and the MLP, and transfers into a plain CNN, an MLP and a CNN with
//! BatchNorm through it gain agreement.

mod support;

use std::path::PathBuf;

use tessera_api::{ArchitectureAdapter, TapLayout};
use tessera_host::capture::{capture, CaptureOptions};
use tessera_host::dataset::Dataset;
use tessera_host::onnx::OnnxModel;
use tessera_host::plugin::{check_plan, summarise, FallbackAdapter};
use tessera_host::pooling::pool;

use support::{assert_success, repo_root, tessera, transfer_command, zoo_file};

/// Every family in `onnx-models/unclaimed/`, and whether the bundled plugins leave it to the
/// fallback (the GRU is read by the `lstm` plugin, the CLS transformer by `transformer`).
const FAMILIES: [(&str, bool); 6] = [
    ("cnn2d_gap", true),
    ("cnn2d_flatten", true),
    ("cnn2d_bn", true),
    ("plain_mlp", true),
    ("gru", false),
    ("cls_transformer", false),
];
const EXPORTERS: [&str; 2] = ["torchscript", "dynamo"];

fn unclaimed(family: &str, exporter: &str) -> PathBuf {
    repo_root()
        .join("onnx-models/unclaimed")
        .join(format!("{family}.{exporter}.onnx"))
}

#[test]
fn the_fallback_plans_every_unclaimed_family_from_both_exporters() {
    let inputs = Dataset::load(&zoo_file("digits/val_inputs.npy"), None).unwrap();
    for (family, _) in FAMILIES {
        for exporter in EXPORTERS {
            let what = format!("{family}.{exporter}");
            let model = OnnxModel::load(&unclaimed(family, exporter)).unwrap();
            let summary = summarise(&model);
            let plan = FallbackAdapter
                .analyse(&summary)
                .unwrap()
                .unwrap_or_else(|| panic!("{what}: no plan"));
            check_plan(&summary, &plan).unwrap_or_else(|error| panic!("{what}: {error}"));
            assert!(plan.taps.len() >= 2, "{what}: {:?}", plan.taps);
            // The deepest tap is what the classifier head reads: one vector per input.
            assert_eq!(
                plan.taps.last().unwrap().layout,
                TapLayout::BatchFeature,
                "{what}"
            );
            if family.starts_with("cnn2d") {
                assert!(
                    plan.taps
                        .iter()
                        .any(|tap| tap.layout == TapLayout::BatchFeatureHeightWidth),
                    "{what}: no convolution tap in {:?}",
                    plan.taps
                );
            }
            let names: Vec<String> = plan.taps.iter().map(|tap| tap.tensor.clone()).collect();
            let captured = capture(
                &model,
                &inputs,
                &names,
                &CaptureOptions::default(),
                &mut |_| {},
            )
            .unwrap_or_else(|error| panic!("{what}: {error}"));
            for (tensor, tap) in captured.tensors.iter().zip(&plan.taps) {
                let pooled = pool(tensor.as_f32().unwrap(), tap).unwrap();
                assert_eq!(
                    pooled.dim(),
                    (inputs.len(), plan.width as usize),
                    "{what} {}",
                    tap.tensor
                );
                assert!(pooled.iter().all(|value| value.is_finite()), "{what}");
            }
        }
    }
}

#[test]
fn the_registry_leaves_the_unclaimed_families_to_the_fallback() {
    for (family, unclaimed_by_plugins) in FAMILIES {
        for exporter in EXPORTERS {
            let output = tessera()
                .args(["inspect-model", "--json"])
                .arg(unclaimed(family, exporter))
                .output()
                .unwrap();
            assert_success(&output);
            let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
            let adapter = &report["adapter"]["adapter"];
            assert_eq!(
                adapter == "fallback",
                unclaimed_by_plugins,
                "{family}.{exporter} went to {adapter}"
            );
        }
    }
}

#[test]
fn transfers_into_plain_networks_through_the_fallback_gain_agreement() {
    // A CNN without residuals or norms from both exporters, an MLP without either, and a CNN
    // with BatchNorm, whose normalisations fine-tune with batch statistics. (`cnn2d_gap`, which
    // averages its feature maps globally, starts with outputs that hardly depend on the input
    // and passes 0.8 after 10 to 14 epochs; its plan is checked above.)
    for (family, exporter) in [
        ("cnn2d_flatten", "dynamo"),
        ("cnn2d_flatten", "torchscript"),
        ("plain_mlp", "torchscript"),
        ("cnn2d_bn", "torchscript"),
    ] {
        let folder = tempfile::tempdir().unwrap();
        let output = transfer_command(
            &zoo_file("digits/conv_64d_2L.tx.torchscript.onnx"),
            &unclaimed(family, exporter),
            &zoo_file("digits/train_inputs.npy"),
            folder.path(),
        )
        .args([
            "--json",
            "--hub-dim",
            "64",
            "--hub-epochs",
            "2",
            "--epochs",
            "4",
        ])
        .arg("--val-inputs")
        .arg(zoo_file("digits/val_inputs.npy"))
        .arg("--val-labels")
        .arg(zoo_file("digits/val_labels.npy"))
        .output()
        .unwrap();
        assert_success(&output);
        let result: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
        let report = &result["report"];
        assert_eq!(report["receiver"]["family"], "unknown");
        let before = report["before"]["agreement"].as_f64().unwrap();
        let after = report["after"]["agreement"].as_f64().unwrap();
        assert!(
            after > before + 0.4,
            "{family}.{exporter}: agreement {before} -> {after}"
        );
        assert_eq!(report["selection"]["outcome"], "improved");
        OnnxModel::load(&folder.path().join("tuned.onnx")).unwrap();
    }
}
