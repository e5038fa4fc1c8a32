//! `tessera bench train`: time of one supervised training step (forward, cross-entropy,
//! backward, Adam) at a fixed batch size on the trainable graph, for each zoo transmitter
//! architecture, against PyTorch eager — with the time split into its three parts.

use std::path::PathBuf;
use std::time::Instant;

use candle_core::Device;

use super::{median, pytorch_side, transmitters, PyTorchBench};
use crate::{Error, Result};
use tessera_engine::zoo::Zoo;
use tessera_onnx::OnnxModel;
use tessera_tensor::dataset::Dataset;
use tessera_train::training::cross_entropy;
use tessera_train::{
    Optimizer, OptimizerKind, OptimizerOptions, Schedule, Trainable, TrainableGraph,
};

/// What to measure.
#[derive(Debug, Clone)]
pub struct TrainBenchOptions {
    /// The zoo folder (with `manifest.json` and `bench_torch.py`).
    pub zoo_dir: PathBuf,
    /// Samples per step.
    pub batch_size: usize,
    /// Timed steps, after three warm-up steps.
    pub steps: usize,
    /// Threads for PyTorch.
    pub threads: usize,
    /// Python interpreter for the PyTorch side; `None` skips it.
    pub python: Option<String>,
    /// Only model keys containing this text.
    pub filter: Option<String>,
}

/// One model file.
#[derive(Debug, Clone, serde::Serialize)]
pub struct TrainBenchRow {
    /// Zoo model key.
    pub model_key: String,
    /// Which export was trained.
    pub exporter: String,
    /// Median milliseconds per step.
    pub step_ms: f64,
    /// Of which the forward pass and loss.
    pub forward_ms: f64,
    /// Of which backpropagation.
    pub backward_ms: f64,
    /// Of which the optimiser update.
    pub update_ms: f64,
    /// PyTorch eager's median milliseconds per step on the same architecture.
    pub pytorch_step_ms: Option<f64>,
    /// `pytorch_step_ms / step_ms`: above 1 is faster than PyTorch.
    pub speedup_vs_pytorch: Option<f64>,
}

/// The whole report.
#[derive(Debug, Clone, serde::Serialize)]
pub struct TrainBenchReport {
    /// Samples per step.
    pub batch_size: usize,
    /// Timed steps per row.
    pub steps: usize,
    /// One row per model file.
    pub rows: Vec<TrainBenchRow>,
    /// PyTorch's own report, when measured.
    pub pytorch: Option<PyTorchBench>,
    /// Why PyTorch was not measured, if it was not.
    pub pytorch_note: Option<String>,
}

/// Runs the benchmark; `progress` is told what is being measured.
pub fn run(
    options: &TrainBenchOptions,
    progress: &mut dyn FnMut(&str),
) -> Result<TrainBenchReport> {
    if options.steps == 0 || options.batch_size == 0 {
        return Err(Error::InvalidOption(
            "steps and batch size must be at least 1".into(),
        ));
    }
    let zoo = Zoo::load(&options.zoo_dir)?;
    let selected = transmitters(&zoo, options.filter.as_deref())?;
    let (pytorch, pytorch_note) = pytorch_side(
        options.python.as_deref(),
        &zoo,
        "train_step",
        &[
            ("--batch-size", options.batch_size.to_string()),
            ("--steps", options.steps.to_string()),
            ("--threads", options.threads.to_string()),
        ],
        options.filter.as_deref(),
        progress,
    );
    let mut rows = Vec::new();
    for zoo_model in selected {
        progress(&zoo_model.id);
        let model = OnnxModel::load(&zoo.path(&zoo_model.onnx))?;
        let dataset = Dataset::load(
            &zoo.path(&zoo_model.datasets.train_inputs),
            Some(&zoo.path(&zoo_model.datasets.train_labels)),
        )?;
        let labels = dataset.labels.clone().unwrap_or_default();
        let graph = TrainableGraph::new(&model, &Trainable::All, Device::Cpu)?;
        let variables = graph
            .variables()
            .iter()
            .map(|(_, var)| var.clone())
            .collect();
        let mut optimizer = Optimizer::new(
            variables,
            OptimizerOptions {
                kind: OptimizerKind::ADAM,
                learning_rate: 1e-3,
                schedule: Schedule::Constant,
                clip_norm: None,
            },
        );
        let output = vec!["logits".to_string()];
        let batches = (dataset.len() / options.batch_size).max(1);
        let (mut forward, mut backward, mut update) = (Vec::new(), Vec::new(), Vec::new());
        for step in 0..options.steps + 3 {
            let start = (step % batches) * options.batch_size;
            let rows_taken: Vec<usize> =
                (start..(start + options.batch_size).min(dataset.len())).collect();
            let inputs = dataset.inputs.select_rows(&rows_taken);
            let targets: Vec<i64> = rows_taken.iter().map(|&row| labels[row]).collect();
            let started = Instant::now();
            let (mut values, statistics) = graph.forward_training(&[inputs], &output)?;
            graph.update_statistics(&[statistics])?;
            let logits = values.remove(0);
            let failed = tessera_train::Error::compute("training step failed");
            let loss = cross_entropy(&logits, &targets).map_err(&failed)?;
            let after_forward = Instant::now();
            let gradients = loss.backward().map_err(&failed)?;
            let after_backward = Instant::now();
            optimizer.step(&gradients)?;
            let after_update = Instant::now();
            if step >= 3 {
                forward.push((after_forward - started).as_secs_f64() * 1e3);
                backward.push((after_backward - after_forward).as_secs_f64() * 1e3);
                update.push((after_update - after_backward).as_secs_f64() * 1e3);
            }
        }
        let totals: Vec<f64> = (0..forward.len())
            .map(|i| forward[i] + backward[i] + update[i])
            .collect();
        let step_ms = median(&totals).unwrap_or(f64::NAN);
        let pytorch_step_ms = pytorch
            .as_ref()
            .and_then(|report| report.results.get(&zoo_model.model_key))
            .and_then(|result| result.train_step_ms);
        rows.push(TrainBenchRow {
            model_key: zoo_model.model_key.clone(),
            exporter: zoo_model.exporter.clone(),
            step_ms,
            forward_ms: median(&forward).unwrap_or(f64::NAN),
            backward_ms: median(&backward).unwrap_or(f64::NAN),
            update_ms: median(&update).unwrap_or(f64::NAN),
            pytorch_step_ms,
            speedup_vs_pytorch: pytorch_step_ms.map(|torch| torch / step_ms),
        });
    }
    Ok(TrainBenchReport {
        batch_size: options.batch_size,
        steps: options.steps,
        rows,
        pytorch,
        pytorch_note,
    })
}
