//! The PyTorch side of a benchmark: `onnx-models/bench_torch.py`, run with the user's Python.

use std::collections::HashMap;
use std::path::Path;
use std::process::Command;

/// One architecture as PyTorch measured it.
#[derive(Debug, Clone, PartialEq, serde::Deserialize, serde::Serialize)]
pub struct PyTorchResult {
    /// Samples per second capturing every block output with forward hooks (median pass).
    pub capture_samples_per_s: Option<f64>,
    /// Milliseconds per training step (median).
    pub train_step_ms: Option<f64>,
}

/// What `bench_torch.py --json` reports.
#[derive(Debug, Clone, PartialEq, serde::Deserialize, serde::Serialize)]
pub struct PyTorchBench {
    /// PyTorch's version.
    pub torch_version: String,
    /// Threads PyTorch used.
    pub threads: usize,
    /// Results by zoo `model_key`.
    pub results: HashMap<String, PyTorchResult>,
    /// Peak resident memory of the Python process, in MiB (PyTorch's libraries included).
    pub peak_rss_mib: f64,
}

/// Runs `bench_torch.py` from the zoo folder with `python` and the given arguments.
pub fn run_pytorch_bench(
    python: &str,
    zoo_dir: &Path,
    arguments: &[String],
) -> Result<PyTorchBench, String> {
    let script = zoo_dir.join("bench_torch.py");
    let output = Command::new(python)
        .arg(&script)
        .arg("--json")
        .args(arguments)
        .output()
        .map_err(|error| format!("cannot run {python}: {error}"))?;
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        return Err(format!(
            "{} failed: {}",
            script.display(),
            stderr.lines().last().unwrap_or("no message")
        ));
    }
    serde_json::from_slice(&output.stdout)
        .map_err(|error| format!("{} printed no report: {error}", script.display()))
}
