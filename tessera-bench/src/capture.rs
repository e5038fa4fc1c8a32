//! `tessera bench capture`: samples per second capturing the logits and every tap point of each
//! zoo transmitter (the block outputs its adapter names) at a fixed batch size, on each backend,
//! against PyTorch eager with forward hooks on every block.

use std::path::PathBuf;
use std::time::Instant;

use super::{median, pytorch_side, transmitters, PeakMemory, PyTorchBench};
use crate::{Error, Result};
use tessera_engine::backend::{Backend, Device, ExecutorOptions};
use tessera_engine::capture::{CaptureOptions, Capturer};
use tessera_engine::plugin::PluginRegistry;
use tessera_engine::zoo::Zoo;
use tessera_onnx::OnnxModel;
use tessera_tensor::dataset::Dataset;

/// What to measure.
#[derive(Debug, Clone)]
pub struct CaptureBenchOptions {
    /// The zoo folder (with `manifest.json` and `bench_torch.py`).
    pub zoo_dir: PathBuf,
    /// Samples per batch.
    pub batch_size: usize,
    /// Timed passes over the dataset, after one warm-up pass.
    pub repeats: usize,
    /// Backends to measure.
    pub backends: Vec<Backend>,
    /// Threads for ONNX Runtime and PyTorch (tract uses one).
    pub threads: usize,
    /// Python interpreter for the PyTorch side; `None` skips it.
    pub python: Option<String>,
    /// Only model keys containing this text.
    pub filter: Option<String>,
}

/// One model on one backend.
#[derive(Debug, Clone, serde::Serialize)]
pub struct CaptureBenchRow {
    /// Zoo model key, e.g. `toy/lstm_64d_2L.tx`.
    pub model_key: String,
    /// Which export was run.
    pub exporter: String,
    /// The executor, e.g. `tract (CPU)`.
    pub executor: String,
    /// Samples per pass (the task's training inputs).
    pub samples: usize,
    /// Tensors captured per sample: the logits and the adapter's tap points.
    pub tensors: usize,
    /// Median seconds per pass.
    pub median_s: f64,
    /// Samples per second from the median pass.
    pub samples_per_s: f64,
    /// Peak resident memory while loading, planning and running, in MiB.
    pub peak_rss_mib: Option<f64>,
    /// PyTorch eager's samples per second on the same architecture.
    pub pytorch_samples_per_s: Option<f64>,
    /// `samples_per_s / pytorch_samples_per_s`: above 1 is faster than PyTorch.
    pub ratio_vs_pytorch: Option<f64>,
}

/// The whole report.
#[derive(Debug, Clone, serde::Serialize)]
pub struct CaptureBenchReport {
    /// Samples per batch.
    pub batch_size: usize,
    /// Timed passes per row.
    pub repeats: usize,
    /// Threads given to ONNX Runtime and PyTorch.
    pub threads: usize,
    /// Logical CPUs of the machine.
    pub cpus: usize,
    /// One row per model, export and backend.
    pub rows: Vec<CaptureBenchRow>,
    /// PyTorch's own report, when measured.
    pub pytorch: Option<PyTorchBench>,
    /// Why PyTorch was not measured, if it was not.
    pub pytorch_note: Option<String>,
}

/// Runs the benchmark, capturing the tap points of the adapter `registry` chooses for each
/// model; `progress` is told what is being measured.
pub fn run(
    options: &CaptureBenchOptions,
    registry: &PluginRegistry,
    progress: &mut dyn FnMut(&str),
) -> Result<CaptureBenchReport> {
    if options.repeats == 0 {
        return Err(Error::InvalidOption(
            "at least one timed repeat is needed".into(),
        ));
    }
    let zoo = Zoo::load(&options.zoo_dir)?;
    let selected = transmitters(&zoo, options.filter.as_deref())?;
    let (pytorch, pytorch_note) = pytorch_side(
        options.python.as_deref(),
        &zoo,
        "capture",
        &[
            ("--batch-size", options.batch_size.to_string()),
            ("--repeats", options.repeats.to_string()),
            ("--threads", options.threads.to_string()),
        ],
        options.filter.as_deref(),
        progress,
    );

    let mut rows = Vec::new();
    for zoo_model in selected {
        let dataset = Dataset::load(&zoo.path(&zoo_model.datasets.train_inputs), None)?;
        for &backend in &options.backends {
            progress(&format!("{} on {backend}", zoo_model.id));
            let memory = PeakMemory::start();
            let model = OnnxModel::load(&zoo.path(&zoo_model.onnx))?;
            let plan = registry.choose_adapter(&model, None)?.plan;
            let mut names = vec!["logits".to_string()];
            names.extend(plan.taps.into_iter().map(|tap| tap.tensor));
            let capture_options = CaptureOptions {
                executor: ExecutorOptions {
                    backend,
                    device: Device::Cpu,
                    threads: Some(options.threads),
                },
                batch_size: options.batch_size,
            };
            let mut capturer = Capturer::new(&model, &names, &capture_options)?;
            let warm_up = capturer.run(&dataset, &mut |_| {})?;
            let mut seconds = Vec::with_capacity(options.repeats);
            for _ in 0..options.repeats {
                let started = Instant::now();
                capturer.run(&dataset, &mut |_| {})?;
                seconds.push(started.elapsed().as_secs_f64());
            }
            let median_s = median(&seconds).unwrap_or(f64::NAN);
            let samples_per_s = dataset.len() as f64 / median_s;
            let pytorch_samples_per_s = pytorch
                .as_ref()
                .and_then(|report| report.results.get(&zoo_model.model_key))
                .and_then(|result| result.capture_samples_per_s);
            rows.push(CaptureBenchRow {
                model_key: zoo_model.model_key.clone(),
                exporter: zoo_model.exporter.clone(),
                executor: warm_up.executor,
                samples: dataset.len(),
                tensors: names.len(),
                median_s,
                samples_per_s,
                peak_rss_mib: memory.peak_mib().filter(|_| memory.was_reset()),
                pytorch_samples_per_s,
                ratio_vs_pytorch: pytorch_samples_per_s.map(|torch| samples_per_s / torch),
            });
        }
    }
    Ok(CaptureBenchReport {
        batch_size: options.batch_size,
        repeats: options.repeats,
        threads: options.threads,
        cpus: std::thread::available_parallelism().map_or(1, usize::from),
        rows,
        pytorch,
        pytorch_note,
    })
}
