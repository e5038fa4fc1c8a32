//! Shared helpers for the end-to-end tests in `tests/`: where the fixtures are and what they
//! contain. Each test file includes this module; not every file uses every helper.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use tessera_host::tensor::Tensor;
use tessera_host::zoo::{Zoo, ZooModel};

/// The repository root (the tests are compiled as part of `tessera-cli`, one folder down).
pub fn repo_root() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
}

/// The folder of TBF tokens written by `tessera-core` 0.1.0, with their `manifest.json`.
pub fn tbf_fixtures_dir() -> PathBuf {
    repo_root().join("tests/fixtures/tbf")
}

/// One fixture as `manifest.json` describes it.
#[derive(Debug, Clone, serde::Deserialize)]
pub struct TbfFixture {
    /// File name inside [`tbf_fixtures_dir`].
    pub file: String,
    /// `"crc32c"` or `"crc32-ieee"`.
    pub crc: String,
    /// Quantisation name, e.g. `"INT8"`.
    pub quant: String,
    /// The HMAC key in hex, for signed fixtures.
    pub hmac_key_hex: Option<String>,
    /// File length in bytes.
    pub bytes: u64,
    /// The vector handed to the reference writer.
    pub written_vector: Vec<f64>,
    /// The vector the reference reader decodes.
    pub decoded_vector: Vec<f64>,
    /// Every decoded token field except the vector, with the reference's field names.
    pub token: serde_json::Value,
}

impl TbfFixture {
    /// Full path of the fixture file.
    pub fn path(&self) -> PathBuf {
        tbf_fixtures_dir().join(&self.file)
    }
}

/// Every fixture listed in the manifest.
pub fn tbf_fixtures() -> Vec<TbfFixture> {
    let text = std::fs::read_to_string(tbf_fixtures_dir().join("manifest.json"))
        .expect("tests/fixtures/tbf/manifest.json is part of the repository");
    serde_json::from_str(&text).expect("the fixture manifest is valid JSON")
}

/// Panics with the command's standard error unless it succeeded.
pub fn assert_success(output: &std::process::Output) {
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// The bundled model zoo (`onnx-models/`).
pub fn zoo() -> Zoo {
    Zoo::load(&repo_root().join("onnx-models")).expect("onnx-models/manifest.json is readable")
}

/// Every model listed in the zoo manifest.
pub fn zoo_models() -> Vec<ZooModel> {
    zoo().models
}

/// The full path of a file the zoo manifest names.
pub fn zoo_file(relative: &str) -> PathBuf {
    zoo().path(relative)
}

/// The folder holding the bundled plugins and the test plugins, built for these tests (once per
/// test process, into their own target folder beside the one running the tests, so that
/// `cargo test` alone suffices).
pub fn plugins_dir() -> PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT
        .get_or_init(|| {
            let binary = Path::new(env!("CARGO_BIN_EXE_tessera"));
            let target = binary
                .parent()
                .and_then(Path::parent)
                .expect("the tessera binary lies in <target>/<profile>/")
                .join("plugin-tests");
            let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
            let output = Command::new(cargo)
                .current_dir(repo_root())
                .args(["build", "--quiet", "--target-dir"])
                .arg(&target)
                .args([
                    "-p",
                    "tessera-plugin-transformer",
                    "-p",
                    "tessera-plugin-mlp",
                    "-p",
                    "tessera-plugin-conv1d",
                    "-p",
                    "tessera-plugin-lstm",
                    "-p",
                    "tessera-testplugin-misbehaving",
                    "-p",
                    "tessera-testplugin-no-entry",
                    "-p",
                    "tessera-test-plugin-abi-1-0",
                ])
                .output()
                .expect("cargo runs");
            assert!(
                output.status.success(),
                "building the plugins failed:\n{}",
                String::from_utf8_lossy(&output.stderr)
            );
            target.join("debug")
        })
        .clone()
}

/// The library file of the plugin crate whose library is named `name` (e.g.
/// `tessera_plugin_lstm`), built by [`plugins_dir`].
pub fn plugin_library(name: &str) -> PathBuf {
    plugins_dir().join(format!(
        "{}{name}{}",
        std::env::consts::DLL_PREFIX,
        std::env::consts::DLL_SUFFIX
    ))
}

/// A privacy ledger file for this test process, so that tests never touch the user's own.
pub fn test_ledger() -> PathBuf {
    std::env::temp_dir().join(format!("tessera-test-ledger-{}.json", std::process::id()))
}

/// The `tessera` binary under test, finding the bundled plugins and keeping its privacy ledger
/// in [`test_ledger`].
pub fn tessera() -> assert_cmd::Command {
    let mut command = assert_cmd::Command::new(env!("CARGO_BIN_EXE_tessera"));
    command
        .env("TESSERA_PLUGIN_PATH", plugins_dir())
        .env("TESSERA_PRIVACY_LEDGER", test_ledger());
    command
}

/// The largest absolute difference between two float32 tensors of one shape.
pub fn max_difference(a: &Tensor, b: &Tensor) -> f32 {
    let (a, b) = (a.as_f32().expect("float32"), b.as_f32().expect("float32"));
    assert_eq!(a.shape(), b.shape());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

/// `tessera transfer` from `transmitter` into `receiver` on `inputs`, writing the knowledge
/// token and the tuned receiver as `token.tbf` and `tuned.onnx` in `folder`; options may be
/// added before it runs.
pub fn transfer_command(
    transmitter: &Path,
    receiver: &Path,
    inputs: &Path,
    folder: &Path,
) -> assert_cmd::Command {
    let mut command = tessera();
    command
        .arg("transfer")
        .arg("--transmitter")
        .arg(transmitter)
        .arg("--receiver")
        .arg(receiver)
        .arg("--inputs")
        .arg(inputs)
        .arg("--out")
        .arg(folder.join("token.tbf"))
        .arg("--receiver-out")
        .arg(folder.join("tuned.onnx"));
    command
}
