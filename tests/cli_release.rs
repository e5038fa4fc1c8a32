//! `tessera release`: per-record vectors through the stage chain — the built-in privacy and TBF
//! export stages, a plugin's stage, and the chain named in `tessera.toml`.

mod support;

use std::path::Path;

use assert_cmd::Command;
use ndarray::{Array1, Array2, Axis};
use ndarray_npy::write_npy;
use tessera_host::tbf::{self, LoadOptions, QuantType};

use support::{plugin_library, plugins_dir};

fn tessera() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_tessera"));
    command.env("TESSERA_PLUGIN_PATH", plugins_dir());
    command
}

fn records(directory: &Path) -> (std::path::PathBuf, Array2<f32>) {
    let values = Array2::from_shape_fn((50, 8), |(row, column)| {
        ((row * 7 + column * 3) % 11) as f32 - 5.0
    });
    let path = directory.join("records.npy");
    write_npy(&path, &values).unwrap();
    (path, values)
}

fn clipped_mean(values: &Array2<f32>, clip_norm: f32) -> Array1<f32> {
    let mut clipped = values.clone();
    for mut row in clipped.axis_iter_mut(Axis(0)) {
        let norm = row.iter().map(|v| v * v).sum::<f32>().sqrt();
        if norm > clip_norm {
            row.mapv_inplace(|v| v * clip_norm / norm);
        }
    }
    clipped.mean_axis(Axis(0)).unwrap()
}

fn assert_close(actual: &[f32], expected: &[f32]) {
    assert_eq!(actual.len(), expected.len());
    for (a, e) in actual.iter().zip(expected) {
        assert!((a - e).abs() <= 1e-5, "{actual:?} vs {expected:?}");
    }
}

#[test]
fn default_chain_clips_averages_privatises_and_writes_a_token() {
    let directory = tempfile::tempdir().unwrap();
    let (path, values) = records(directory.path());
    let out = directory.path().join("token.tbf");
    let output = tessera()
        .args(["release", "--json", "--epsilon", "2", "--clip-norm", "3"])
        .arg(&path)
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(
        report["stages"],
        serde_json::json!(["privacy", "tbf-export"])
    );
    let privacy = &report["metadata"]["privacy"];
    assert_eq!(privacy["mechanism"], "analytic-gaussian");
    assert_eq!(privacy["sensitivity"], 2.0 * 3.0 / 50.0);

    let token = tbf::load(&out, &LoadOptions::default()).unwrap().token;
    assert_eq!(token.metadata.privacy_epsilon, 2.0);
    assert_eq!(token.metadata.privacy_delta, 1e-5);
    assert!(token.metadata.custom.contains_key("privacy"));
    let exact = clipped_mean(&values, 3.0);
    assert_eq!(token.vector().len(), 8);
    assert!(
        token.vector().iter().zip(&exact).any(|(a, e)| a != e),
        "noise was added"
    );

    // Without noise the released vector is exactly the clipped mean.
    tessera()
        .args(["release", "--epsilon", "inf", "--clip-norm", "3"])
        .arg(&path)
        .arg("--out")
        .arg(&out)
        .assert()
        .success();
    let token = tbf::load(&out, &LoadOptions::default()).unwrap().token;
    assert_close(token.vector(), exact.as_slice().unwrap());
}

#[test]
fn plugin_stages_join_the_chain_and_their_failures_are_reported() {
    let directory = tempfile::tempdir().unwrap();
    let (path, values) = records(directory.path());
    let out = directory.path().join("token.tbf");
    let with_test_plugin = format!(
        "{}:{}",
        plugin_library("tessera_testplugin_misbehaving").display(),
        plugins_dir().display()
    );
    tessera()
        .env("TESSERA_PLUGIN_PATH", &with_test_plugin)
        .args([
            "release",
            "--stages",
            "double,privacy,tbf-export",
            "--epsilon",
            "inf",
            "--clip-norm",
            "1000",
        ])
        .arg(&path)
        .arg("--out")
        .arg(&out)
        .assert()
        .success();
    let token = tbf::load(&out, &LoadOptions::default()).unwrap().token;
    let doubled: Vec<f32> = clipped_mean(&values, 1000.0)
        .iter()
        .map(|v| 2.0 * v)
        .collect();
    assert_close(token.vector(), &doubled);
    assert!(token.metadata.custom.contains_key("doubled"));

    let failed = directory.path().join("failed.tbf");
    let output = tessera()
        .env("TESSERA_PLUGIN_PATH", &with_test_plugin)
        .args(["release", "--stages", "explode,privacy,tbf-export"])
        .arg(&path)
        .arg("--out")
        .arg(&failed)
        .output()
        .unwrap();
    assert!(!output.status.success());
    let message = String::from_utf8_lossy(&output.stderr);
    assert!(
        message.contains("stage explode: panicked: deliberate panic inside a stage"),
        "{message}"
    );
    assert!(!failed.exists());

    for (stages, expected) in [
        ("tbf-export,privacy", "cannot follow stage tbf-export"),
        ("privacy,privacy,tbf-export", "cannot follow stage privacy"),
        ("nope", "no stage has this name"),
    ] {
        let output = tessera()
            .args(["release", "--stages", stages])
            .arg(&path)
            .arg("--out")
            .arg(&failed)
            .output()
            .unwrap();
        let message = String::from_utf8_lossy(&output.stderr);
        assert!(message.contains(expected), "{stages}: {message}");
    }
}

#[test]
fn the_chain_can_be_named_in_tessera_toml() {
    let directory = tempfile::tempdir().unwrap();
    let (path, _) = records(directory.path());
    let config = directory.path().join("tessera.toml");
    std::fs::write(
        &config,
        "[chain]\nstages = [\"tbf-export\"]\n\n[stages.tbf-export]\nquant = \"float16\"\nsource_model_id = \"teacher\"\n",
    )
    .unwrap();
    let out = directory.path().join("matrix.tbf");
    tessera()
        .arg("--config")
        .arg(&config)
        .arg("release")
        .arg(&path)
        .arg("--out")
        .arg(&out)
        .assert()
        .success();
    let loaded = tbf::load(&out, &LoadOptions::default()).unwrap();
    assert_eq!(loaded.quant, QuantType::Float16);
    assert_eq!(loaded.token.metadata.source_model_id, "teacher");
    assert_eq!(
        loaded.token.shape().unwrap(),
        vec![50, 8],
        "records travel as a matrix"
    );
    assert_eq!(
        loaded.token.metadata.privacy_epsilon,
        f64::INFINITY,
        "no privacy is claimed"
    );
}
