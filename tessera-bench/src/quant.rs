//! `tessera bench quant`: the quantisation-aware transfer (ModeAQ) over the zoo's pair matrices,
//! at each precision asked for, beside the anchor a user without Tessera would pick for INT8 —
//! ONNX Runtime's own post-training static quantiser (`quantize_static`, QDQ, per-channel
//! weights, min/max ranges) applied to the same float receiver, calibrated on the same inputs,
//! restricted to the same compute nodes (`tessera-bench/python/ptq.py`).
//!
//! For every pair and precision one ModeAQ transfer runs (its own float Mode A first, then the
//! epochs on the grid); its report gives the quantised receiver against the transmitter and
//! against its float counterpart. The float receiver of the INT8 run is then quantised by
//! `ptq.py`, and the result measured in the same executor. Every figure is on the task's
//! held-out inputs; agreements are top-1 shares, deltas are in points (hundredths).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use ndarray::Array2;
use serde::{Deserialize, Serialize};
use tessera_engine::backend::ExecutorOptions;
use tessera_engine::capture::{capture, CaptureOptions};
use tessera_engine::plugin::PluginRegistry;
use tessera_engine::transfer::{
    time_side_by_side, ModeATransfer, QatTeacher, QuantisationAware, QuantisationReport,
    TransferOptions, TransferReport,
};
use tessera_engine::zoo::Zoo;
use tessera_fs::{write_atomically, IoError};
use tessera_onnx::OnnxModel;
use tessera_quant::plan::WeightRole;
use tessera_quant::Precision;
use tessera_tensor::dataset::Dataset;

use crate::cross_arch::{Loaded, TaskMatrix};
use crate::PeakMemory;
use crate::{Error, Result};

/// The PTQ anchor's script (`tessera-bench/python/ptq.py`), compiled in so that the benchmark
/// runs from any folder; it is written next to the models it quantises.
pub const PTQ_SCRIPT: &str = include_str!("../python/ptq.py");

/// Where the anchor's Python requirements are, relative to the repository root.
pub const PTQ_REQUIREMENTS: &str = "tessera-bench/python/requirements.txt";

/// The ONNX Runtime version the anchor's requirements pin.
pub const PTQ_ONNXRUNTIME: &str = "1.32.0";

/// A deficit of at most this many points counts as "within one point".
const ONE_POINT: f64 = 1.0;

/// Rows per batch when the benchmark itself runs a model.
const BATCH: usize = 64;

/// How the PTQ anchor runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PtqOptions {
    /// The Python interpreter with `onnxruntime`, `onnx` and `numpy` ([`PTQ_REQUIREMENTS`]).
    pub python: String,
}

/// What to benchmark.
#[derive(Debug, Clone)]
pub struct QuantBenchOptions {
    /// The zoo folder.
    pub zoo_dir: PathBuf,
    /// Tasks to run (`toy`: ordered pairs of different configs; others: every ordered pair).
    pub tasks: Vec<String>,
    /// Precisions, one ModeAQ transfer per pair each, in this order.
    pub precisions: Vec<Precision>,
    /// Which export of each model to use.
    pub exporter: String,
    /// At most this many pairs per task (all when `None`).
    pub max_pairs: Option<usize>,
    /// Whose outputs every ModeAQ receiver learns on the grid.
    pub teacher: QatTeacher,
    /// Mode A settings shared by every transfer; its executor runs (and times) every exported
    /// model, the PTQ anchor's included.
    pub transfer: TransferOptions,
    /// The PTQ anchor for INT8 (`None`: not run).
    pub ptq: Option<PtqOptions>,
    /// Record a transfer or anchor that fails in its pair ([`QuantPair::failures`]) and go on,
    /// instead of ending the run with its error.
    pub keep_going: bool,
}

/// One ModeAQ transfer of one pair at one precision, on the held-out inputs.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PrecisionRun {
    /// `int8`, `int4` or `fp16`.
    pub precision: String,
    /// The quantisation's label, e.g. `int8 w8a8 per-channel symmetric, mse`.
    pub label: String,
    /// The float receiver of the same transfer: agreement with the transmitter.
    pub float_agreement: f64,
    /// The float receiver's accuracy.
    pub float_accuracy: f64,
    /// The quantised receiver: agreement with the transmitter.
    pub agreement: f64,
    /// The quantised receiver's accuracy.
    pub accuracy: f64,
    /// Agreement of the quantised receiver with its float counterpart.
    pub agreement_with_float: f64,
    /// Mean KL(transmitter ‖ quantised receiver), nats.
    pub output_kl: f64,
    /// Mean KL(float receiver ‖ quantised receiver), nats.
    pub kl_from_float: f64,
    /// SQNR of the logits against the float receiver, dB.
    pub logits_sqnr_db: f64,
    /// Mean saturation share of the quantised activations.
    pub mean_clipping: f64,
    /// Bytes of the float receiver's ONNX file.
    pub float_bytes: usize,
    /// Bytes of the quantised receiver's ONNX file.
    pub quantised_bytes: usize,
    /// `float_bytes / quantised_bytes`.
    pub compression: f64,
    /// Inference time quantised / float in the executor (absent when it cannot run the file).
    pub inference_ratio: Option<f64>,
    /// What the figures were measured on (the file, or its dequantised float twin).
    pub measured_on: String,
    /// Epochs on the grid.
    pub epochs: usize,
    /// Seconds of the whole transfer (float Mode A included).
    pub seconds: f64,
}

impl PrecisionRun {
    /// The figures of one ModeAQ transfer.
    pub fn from_report(precision: Precision, report: &TransferReport) -> Result<Self> {
        let quantised: &QuantisationReport = report.quantisation.as_ref().ok_or_else(|| {
            Error::InvalidOption("a ModeAQ transfer returned no quantisation report".into())
        })?;
        let figure = |value: Option<f64>| value.unwrap_or(f64::NAN);
        Ok(Self {
            precision: precision.name().to_string(),
            label: quantised.label.clone(),
            float_agreement: figure(quantised.float_fidelity.agreement),
            float_accuracy: figure(quantised.float_fidelity.accuracy),
            agreement: figure(quantised.fidelity.agreement),
            accuracy: figure(quantised.fidelity.accuracy),
            agreement_with_float: quantised.agreement_with_float,
            output_kl: figure(quantised.fidelity.output_kl),
            kl_from_float: quantised.kl_from_float,
            logits_sqnr_db: quantised.logits_sqnr_db,
            mean_clipping: quantised.mean_clipping,
            float_bytes: quantised.float_bytes,
            quantised_bytes: quantised.quantised_bytes,
            compression: quantised.compression,
            inference_ratio: quantised.inference.as_ref().map(|timing| timing.ratio),
            measured_on: quantised.measured_on.clone(),
            epochs: quantised.epochs,
            seconds: report.timings.total,
        })
    }

    /// Agreement with the transmitter, quantised minus float, in points.
    pub fn delta_agreement(&self) -> f64 {
        points(self.agreement - self.float_agreement)
    }

    /// Accuracy, quantised minus float, in points.
    pub fn delta_accuracy(&self) -> f64 {
        points(self.accuracy - self.float_accuracy)
    }
}

/// Inference times of the PTQ model against its float receiver (same executor, each its best
/// pass over the held-out inputs, timed side by side in blocks: `time_side_by_side`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PtqTiming {
    /// The float receiver, seconds.
    pub float_seconds: f64,
    /// The PTQ model, seconds.
    pub ptq_seconds: f64,
    /// `ptq / float`: below 1 the PTQ model is faster.
    pub ratio: f64,
}

/// The PTQ anchor on one pair: ONNX Runtime's `quantize_static` applied to the float receiver
/// of the INT8 ModeAQ transfer, on the held-out inputs.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PtqRun {
    /// The float receiver's agreement with the transmitter, as the benchmark measured it.
    pub float_agreement: f64,
    /// The float receiver's accuracy, as the benchmark measured it.
    pub float_accuracy: f64,
    /// The PTQ model's agreement with the transmitter.
    pub agreement: f64,
    /// The PTQ model's accuracy.
    pub accuracy: f64,
    /// Agreement of the PTQ model with the float receiver.
    pub agreement_with_float: f64,
    /// Mean KL(transmitter ‖ PTQ model), nats.
    pub output_kl: f64,
    /// Bytes of the float receiver's ONNX file.
    pub float_bytes: usize,
    /// Bytes of the PTQ model's ONNX file.
    pub bytes: usize,
    /// `float_bytes / bytes`.
    pub compression: f64,
    /// Inference time against the float receiver.
    pub inference: Option<PtqTiming>,
    /// Which pre-processing `ptq.py` used (`quant_pre_process`, lighter steps, or `none`).
    pub preprocess: String,
    /// Compute nodes asked for (the ModeAQ plan's).
    pub requested_nodes: usize,
    /// Compute nodes the quantiser actually quantised.
    pub quantised_nodes: usize,
    /// Seconds: quantisation and measurement.
    pub seconds: f64,
}

impl PtqRun {
    /// Agreement with the transmitter, PTQ minus float, in points.
    pub fn delta_agreement(&self) -> f64 {
        points(self.agreement - self.float_agreement)
    }

    /// Accuracy, PTQ minus float, in points.
    pub fn delta_accuracy(&self) -> f64 {
        points(self.accuracy - self.float_accuracy)
    }
}

/// One pair of a task's matrix.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct QuantPair {
    /// Transmitter config.
    pub transmitter: String,
    /// Receiver config.
    pub receiver: String,
    /// The transmitter's accuracy on the held-out inputs.
    pub tx_accuracy: f64,
    /// "The float receiver" (of the INT8 run, else of the first): agreement with the
    /// transmitter.
    pub float_agreement: f64,
    /// Its accuracy.
    pub float_accuracy: f64,
    /// One ModeAQ transfer per precision, in the order asked.
    pub runs: Vec<PrecisionRun>,
    /// The PTQ anchor (INT8 runs only, when it ran).
    pub ptq: Option<PtqRun>,
    /// Transfers and anchors of this pair that failed (with `keep_going`).
    pub failures: Vec<Failure>,
}

/// A transfer or anchor that failed, recorded instead of ending the run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Failure {
    /// The precision's name, or `ptq-int8` for the anchor.
    pub method: String,
    /// The error and each cause under it, `: `-separated.
    pub error: String,
}

impl Failure {
    /// The failure of `method` with `error`.
    pub fn new(method: &str, error: &(dyn std::error::Error + 'static)) -> Self {
        let mut text = error.to_string();
        let mut cause = error.source();
        while let Some(inner) = cause {
            text.push_str(": ");
            text.push_str(&inner.to_string());
            cause = inner.source();
        }
        Self {
            method: method.to_string(),
            error: text,
        }
    }
}

impl QuantPair {
    /// The run at `precision` (its name), if measured.
    pub fn run(&self, precision: &str) -> Option<&PrecisionRun> {
        self.runs.iter().find(|run| run.precision == precision)
    }
}

/// A task's pairs summarised at one precision.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PrecisionSummary {
    /// `int8`, `int4` or `fp16`, or `ptq-int8` for the anchor.
    pub method: String,
    /// Pairs measured.
    pub pairs: usize,
    /// Pairs where this method failed (recorded with `keep_going`; not in the figures).
    pub failed: usize,
    /// Mean agreement of the float receivers with the transmitter.
    pub mean_float_agreement: Option<f64>,
    /// Mean agreement of the quantised receivers with the transmitter.
    pub mean_agreement: Option<f64>,
    /// Mean of quantised − float agreement, points.
    pub mean_delta_agreement: Option<f64>,
    /// The lowest quantised − float agreement, points.
    pub worst_delta_agreement: Option<f64>,
    /// Mean of quantised − float accuracy, points.
    pub mean_delta_accuracy: Option<f64>,
    /// The lowest quantised − float accuracy, points.
    pub worst_delta_accuracy: Option<f64>,
    /// Pairs whose agreement lost at most one point.
    pub within_one_point_agreement: usize,
    /// Pairs whose accuracy lost at most one point.
    pub within_one_point_accuracy: usize,
    /// Mean `float bytes / quantised bytes`.
    pub mean_compression: Option<f64>,
    /// Mean inference time quantised / float, over the pairs timed.
    pub mean_inference_ratio: Option<f64>,
}

/// The PTQ anchor of a task summarised, and ModeAQ INT8 where the anchor falls short.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PtqSummary {
    /// The anchor's figures, as for a precision (`method` is `ptq-int8`).
    pub summary: PrecisionSummary,
    /// Pairs where PTQ loses more than one point of agreement.
    pub losing_pairs: usize,
    /// ModeAQ INT8's mean Δ agreement on those pairs, points.
    pub modeaq_mean_delta_there: Option<f64>,
    /// ModeAQ INT8's lowest Δ agreement on those pairs, points.
    pub modeaq_worst_delta_there: Option<f64>,
    /// Of those pairs, how many ModeAQ INT8 keeps within one point.
    pub modeaq_within_one_point_there: usize,
}

/// One task.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct QuantTask {
    /// `toy` or `digits`.
    pub task: String,
    /// Unlabelled inputs the transfers (and the calibrations) used.
    pub train_inputs: usize,
    /// Held-out inputs every figure is measured on.
    pub val_inputs: usize,
    /// Pair by pair.
    pub pairs: Vec<QuantPair>,
    /// One summary per precision, in the order asked.
    pub summaries: Vec<PrecisionSummary>,
    /// The PTQ anchor's summary, when it ran.
    pub ptq: Option<PtqSummary>,
}

/// The PTQ anchor as it ran.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PtqInfo {
    /// The interpreter.
    pub python: String,
    /// Its ONNX Runtime version.
    pub onnxruntime: String,
    /// The quantiser's settings, in words.
    pub settings: String,
}

/// Everything measured.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct QuantResults {
    /// When the run started (RFC 3339).
    pub started: String,
    /// The machine.
    pub machine: String,
    /// The exporter of the zoo models.
    pub exporter: String,
    /// The executor that ran the exported models, e.g. `tract (CPU)`.
    pub executor: String,
    /// ModeAQ's settings, one per precision, in the order run.
    pub settings: Vec<QuantisationAware>,
    /// Mode A's fine-tuning epochs, batch size and learning rate.
    pub schedule: String,
    /// The PTQ anchor (absent when not run).
    pub ptq: Option<PtqInfo>,
    /// Why the anchor did not run, when it did not.
    pub ptq_note: Option<String>,
    /// Task by task.
    pub tasks: Vec<QuantTask>,
    /// Peak resident memory, MiB.
    pub peak_rss_mib: f64,
    /// Seconds of the whole run.
    pub total_seconds: f64,
}

/// A share as points.
fn points(share: f64) -> f64 {
    100.0 * share
}

/// The mean of the finite values; `None` without any.
fn mean(values: impl IntoIterator<Item = f64>) -> Option<f64> {
    let (sum, count) = values
        .into_iter()
        .filter(|value| value.is_finite())
        .fold((0.0, 0usize), |(sum, count), value| {
            (sum + value, count + 1)
        });
    (count > 0).then(|| sum / count as f64)
}

/// The lowest finite value; `None` without any.
fn worst(values: impl IntoIterator<Item = f64>) -> Option<f64> {
    values
        .into_iter()
        .filter(|value| value.is_finite())
        .min_by(f64::total_cmp)
}

/// Whether a delta in points loses at most one point (NaN never does).
fn within_one_point(delta: f64) -> bool {
    delta >= -ONE_POINT - 1e-9
}

/// The figures one summary needs from one pair, ModeAQ's or the anchor's.
struct Figures {
    float_agreement: f64,
    agreement: f64,
    delta_agreement: f64,
    delta_accuracy: f64,
    compression: f64,
    inference_ratio: Option<f64>,
}

impl From<&PrecisionRun> for Figures {
    fn from(run: &PrecisionRun) -> Self {
        Self {
            float_agreement: run.float_agreement,
            agreement: run.agreement,
            delta_agreement: run.delta_agreement(),
            delta_accuracy: run.delta_accuracy(),
            compression: run.compression,
            inference_ratio: run.inference_ratio,
        }
    }
}

impl From<&PtqRun> for Figures {
    fn from(run: &PtqRun) -> Self {
        Self {
            float_agreement: run.float_agreement,
            agreement: run.agreement,
            delta_agreement: run.delta_agreement(),
            delta_accuracy: run.delta_accuracy(),
            compression: run.compression,
            inference_ratio: run.inference.as_ref().map(|timing| timing.ratio),
        }
    }
}

fn summary_of(method: &str, figures: &[Figures], pairs: &[QuantPair]) -> PrecisionSummary {
    PrecisionSummary {
        method: method.to_string(),
        pairs: figures.len(),
        failed: pairs
            .iter()
            .filter(|pair| pair.failures.iter().any(|f| f.method == method))
            .count(),
        mean_float_agreement: mean(figures.iter().map(|f| f.float_agreement)),
        mean_agreement: mean(figures.iter().map(|f| f.agreement)),
        mean_delta_agreement: mean(figures.iter().map(|f| f.delta_agreement)),
        worst_delta_agreement: worst(figures.iter().map(|f| f.delta_agreement)),
        mean_delta_accuracy: mean(figures.iter().map(|f| f.delta_accuracy)),
        worst_delta_accuracy: worst(figures.iter().map(|f| f.delta_accuracy)),
        within_one_point_agreement: figures
            .iter()
            .filter(|f| within_one_point(f.delta_agreement))
            .count(),
        within_one_point_accuracy: figures
            .iter()
            .filter(|f| within_one_point(f.delta_accuracy))
            .count(),
        mean_compression: mean(figures.iter().map(|f| f.compression)),
        mean_inference_ratio: mean(figures.iter().filter_map(|f| f.inference_ratio)),
    }
}

/// The summary of `pairs` at `precision` (its name).
pub fn summarise(pairs: &[QuantPair], precision: &str) -> PrecisionSummary {
    let figures: Vec<Figures> = pairs
        .iter()
        .filter_map(|pair| pair.run(precision))
        .map(Figures::from)
        .collect();
    summary_of(precision, &figures, pairs)
}

/// The PTQ anchor's summary over `pairs`, and ModeAQ INT8's deltas on the pairs where the
/// anchor loses more than one point of agreement; `None` when the anchor neither ran nor
/// failed on any pair.
pub fn summarise_ptq(pairs: &[QuantPair]) -> Option<PtqSummary> {
    let measured: Vec<(&QuantPair, &PtqRun)> = pairs
        .iter()
        .filter_map(|pair| pair.ptq.as_ref().map(|ptq| (pair, ptq)))
        .collect();
    let failed = pairs
        .iter()
        .any(|pair| pair.failures.iter().any(|f| f.method == PTQ_METHOD));
    if measured.is_empty() && !failed {
        return None;
    }
    let figures: Vec<Figures> = measured
        .iter()
        .map(|(_, ptq)| Figures::from(*ptq))
        .collect();
    let losing: Vec<&QuantPair> = measured
        .iter()
        .filter(|(_, ptq)| !within_one_point(ptq.delta_agreement()))
        .map(|(pair, _)| *pair)
        .collect();
    let modeaq: Vec<f64> = losing
        .iter()
        .filter_map(|pair| pair.run(Precision::Int8.name()))
        .map(PrecisionRun::delta_agreement)
        .collect();
    Some(PtqSummary {
        summary: summary_of(PTQ_METHOD, &figures, pairs),
        losing_pairs: losing.len(),
        modeaq_mean_delta_there: mean(modeaq.iter().copied()),
        modeaq_worst_delta_there: worst(modeaq.iter().copied()),
        modeaq_within_one_point_there: modeaq.iter().filter(|d| within_one_point(**d)).count(),
    })
}

/// The anchor's method name in summaries and failures.
pub const PTQ_METHOD: &str = "ptq-int8";

/// What the quantiser's settings are, in words.
const PTQ_SETTINGS: &str = "onnxruntime.quantization.quantize_static: QDQ, INT8 weights \
    (symmetric, per channel) and INT8 activations (asymmetric, per tensor), min/max \
    calibration, MatMul/Gemm/Conv restricted to ModeAQ's compute nodes, after quant_pre_process \
    where it succeeds (each pair records the pre-processing used)";

/// Checks that `python` runs and imports ONNX Runtime's quantiser; returns its ONNX Runtime
/// version, or the error telling how to provide one.
pub fn check_python(python: &str) -> Result<String> {
    let refuse = |why: String| {
        Error::InvalidOption(format!(
            "the PTQ anchor (ONNX Runtime's quantize_static) needs a Python with onnxruntime, \
             onnx and numpy, and {python} {why}; pass --python (or set TESSERA_PYTHON) \
             pointing at a virtual environment made with `pip install -r {PTQ_REQUIREMENTS}`, \
             or skip the anchor with --no-ptq"
        ))
    };
    let output = Command::new(python)
        .args([
            "-c",
            "import numpy, onnx, onnxruntime, onnxruntime.quantization; \
             print(onnxruntime.__version__)",
        ])
        .output()
        .map_err(|error| refuse(format!("cannot run: {error}")))?;
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        return Err(refuse(format!(
            "failed to import them ({})",
            stderr.lines().last().unwrap_or("no message").trim()
        )));
    }
    Ok(String::from_utf8_lossy(&output.stdout).trim().to_string())
}

/// What `ptq.py` reports on its last line of standard output.
#[derive(Debug, Deserialize)]
struct ScriptReport {
    preprocess: String,
    requested_nodes: Option<usize>,
    quantised_nodes: usize,
}

fn io<'p>(action: &'static str, path: &'p Path) -> impl FnOnce(std::io::Error) -> Error + 'p {
    move |source| {
        Error::from(tessera_engine::Error::from(IoError::of(action, path)(
            source,
        )))
    }
}

fn quantiser_error(message: String) -> Error {
    Error::from(tessera_engine::Error::Backend {
        backend: "ONNX Runtime's quantiser (ptq.py)",
        message,
    })
}

/// Runs `ptq.py` on `float` in `folder` (which holds the script), calibrated on the `.npy` at
/// `calibration`, quantising `nodes`.
fn quantise_with_ptq(
    python: &str,
    folder: &Path,
    float: &OnnxModel,
    calibration: &Path,
    nodes: &[String],
) -> Result<(OnnxModel, ScriptReport)> {
    let float_path = folder.join("float.onnx");
    let nodes_path = folder.join("nodes.json");
    let out_path = folder.join("ptq.onnx");
    float.save(&float_path)?;
    let nodes_json = serde_json::to_string(nodes)
        .map_err(|error| quantiser_error(format!("cannot write the node list: {error}")))?;
    std::fs::write(&nodes_path, nodes_json).map_err(io("write", &nodes_path))?;
    let script = folder.join("ptq.py");
    let output = Command::new(python)
        .arg(&script)
        .arg(&float_path)
        .arg(calibration)
        .arg(&out_path)
        .arg("--nodes")
        .arg(&nodes_path)
        .output()
        .map_err(|error| quantiser_error(format!("cannot run {python}: {error}")))?;
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        let tail: Vec<&str> = stderr.lines().rev().take(3).collect();
        let tail: Vec<&str> = tail.into_iter().rev().collect();
        return Err(quantiser_error(format!(
            "{} failed: {}",
            script.display(),
            tail.join(" | ")
        )));
    }
    let stdout = String::from_utf8_lossy(&output.stdout);
    let report: ScriptReport = stdout
        .lines()
        .rev()
        .find(|line| line.trim_start().starts_with('{'))
        .and_then(|line| serde_json::from_str(line).ok())
        .ok_or_else(|| quantiser_error("ptq.py printed no report".into()))?;
    Ok((OnnxModel::load(&out_path)?, report))
}

/// `model`'s first output on `dataset`, as `[N, classes]`, and the executor's description.
fn logits(
    model: &OnnxModel,
    dataset: &Dataset,
    executor: ExecutorOptions,
) -> Result<(Array2<f32>, String)> {
    let output = first_output(model)?;
    let options = CaptureOptions {
        executor,
        batch_size: BATCH,
    };
    let captured = capture(model, dataset, &[output], &options, &mut |_| {})?;
    let values = captured.tensors[0]
        .as_f32()
        .and_then(|values| values.clone().into_dimensionality().ok())
        .ok_or_else(|| {
            Error::from(tessera_engine::Error::Shape(
                "the model's output is not [N, classes] floats".into(),
            ))
        })?;
    Ok((values, captured.executor))
}

fn first_output(model: &OnnxModel) -> Result<String> {
    model
        .outputs()
        .first()
        .map(|spec| spec.name.clone())
        .ok_or_else(|| Error::from(model.error("the model declares no output")))
}

fn metric<T>(result: tessera_metrics::Result<T>) -> Result<T> {
    result.map_err(|error| Error::from(tessera_engine::Error::from(error)))
}

/// What the anchor of one pair needs.
struct Anchor<'a> {
    python: &'a str,
    folder: &'a Path,
    calibration: &'a Path,
    validation: &'a Dataset,
    transmitter: &'a Array2<f32>,
    executor: ExecutorOptions,
}

/// The PTQ anchor on `float` (quantising the compute nodes of its INT8 plan), and the
/// executor's description.
fn anchor(
    what: &Anchor,
    float: &OnnxModel,
    receiver: &Loaded,
    aware: &QuantisationAware,
) -> Result<(PtqRun, String)> {
    let started = Instant::now();
    // The anchor quantises every compute layer whose weights ModeAQ stores on the grid: which of
    // them get integer kernels does not change which weights those are.
    let plan = tessera_quant::plan::plan(
        float,
        &aware.quantisation,
        &receiver.plan.quantisation,
        &Default::default(),
    );
    let mut nodes: Vec<String> = Vec::new();
    for site in plan
        .weights
        .iter()
        .filter(|s| s.role == WeightRole::Compute)
    {
        if !nodes.contains(&site.node) {
            nodes.push(site.node.clone());
        }
    }
    if nodes.is_empty() {
        return Err(Error::InvalidOption(format!(
            "the INT8 plan of receiver {} has no MatMul, Gemm or Conv to quantise",
            receiver.entry.config
        )));
    }
    let (ptq, script) =
        quantise_with_ptq(what.python, what.folder, float, what.calibration, &nodes)?;
    let labels = what.validation.labels.as_ref();
    let (float_logits, executor) = logits(float, what.validation, what.executor)?;
    let (ptq_logits, _) = logits(&ptq, what.validation, what.executor)?;
    let accuracy = |values: &Array2<f32>| match labels {
        Some(labels) => metric(tessera_metrics::accuracy(values.view(), labels.view())),
        None => Ok(f64::NAN),
    };
    let agreement = |a: &Array2<f32>, b: &Array2<f32>| {
        metric(tessera_metrics::top1_agreement(a.view(), b.view()))
    };
    let timing = time_side_by_side(float, &ptq, what.validation, what.executor)?;
    let float_bytes = float.to_bytes().len();
    let bytes = ptq.to_bytes().len();
    let run = PtqRun {
        float_agreement: agreement(what.transmitter, &float_logits)?,
        float_accuracy: accuracy(&float_logits)?,
        agreement: agreement(what.transmitter, &ptq_logits)?,
        accuracy: accuracy(&ptq_logits)?,
        agreement_with_float: agreement(&float_logits, &ptq_logits)?,
        output_kl: metric(tessera_metrics::output_kl(
            what.transmitter.view(),
            ptq_logits.view(),
            1.0,
        ))?,
        float_bytes,
        bytes,
        compression: float_bytes as f64 / bytes.max(1) as f64,
        inference: Some(PtqTiming {
            float_seconds: timing.float_seconds,
            ptq_seconds: timing.quantised_seconds,
            ratio: timing.ratio,
        }),
        preprocess: script.preprocess,
        requested_nodes: script.requested_nodes.unwrap_or(nodes.len()),
        quantised_nodes: script.quantised_nodes,
        seconds: started.elapsed().as_secs_f64(),
    };
    Ok((run, executor))
}

/// Runs the benchmark; `progress` is told which transfer runs. Checks the anchor's Python
/// first, so that a missing quantiser fails before any transfer.
pub fn run(
    options: &QuantBenchOptions,
    registry: &PluginRegistry,
    progress: &mut dyn FnMut(&str),
) -> Result<QuantResults> {
    let started = Instant::now();
    let memory = PeakMemory::start();
    let started_at = chrono::Local::now().to_rfc3339();
    if options.precisions.is_empty() {
        return Err(Error::InvalidOption("no precision to run".into()));
    }
    let settings: Vec<QuantisationAware> = options
        .precisions
        .iter()
        .map(|&precision| QuantisationAware {
            teacher: options.teacher,
            ..QuantisationAware::at(precision)
        })
        .collect();
    for aware in &settings {
        aware.check()?;
    }
    let has_int8 = options.precisions.contains(&Precision::Int8);
    let (ptq_info, ptq_note) = match (&options.ptq, has_int8) {
        (None, _) => (None, Some("not requested".to_string())),
        (Some(_), false) => (
            None,
            Some("the anchor is INT8: int8 is not among the precisions".into()),
        ),
        (Some(ptq), true) => {
            let version = check_python(&ptq.python)?;
            let note = (version != PTQ_ONNXRUNTIME)
                .then(|| format!("ONNX Runtime {version}; the requirements pin {PTQ_ONNXRUNTIME}"));
            let info = PtqInfo {
                python: ptq.python.clone(),
                onnxruntime: version,
                settings: PTQ_SETTINGS.into(),
            };
            (Some(info), note)
        }
    };
    let folder = tempfile::tempdir()
        .map_err(|error| quantiser_error(format!("cannot create a temporary folder: {error}")))?;
    let script = folder.path().join("ptq.py");
    if ptq_info.is_some() {
        std::fs::write(&script, PTQ_SCRIPT).map_err(io("write", &script))?;
    }
    let zoo = Zoo::load(&options.zoo_dir)?;
    let mut executor_description: Option<String> = None;
    let mut tasks = Vec::new();
    for task in &options.tasks {
        let task_matrix = TaskMatrix::load(&zoo, registry, task, &options.exporter)?;
        let (train, validation) = (&task_matrix.train, &task_matrix.validation);
        let calibration = &task_matrix.train_path;
        let mut matrix = task_matrix.pairs(task);
        if let Some(limit) = options.max_pairs {
            matrix.truncate(limit);
        }
        let mut pairs = Vec::new();
        let mut transmitter_logits: HashMap<String, Array2<f32>> = HashMap::new();
        for (transmitter, receiver) in matrix {
            let (tx_config, rx_config) = (&transmitter.entry.config, &receiver.entry.config);
            let mut runs = Vec::new();
            let mut ptq = None;
            let mut tx_accuracy = f64::NAN;
            let mut failures = Vec::new();
            for (precision, aware) in options.precisions.iter().zip(&settings) {
                progress(&format!(
                    "{task} {}: {tx_config} -> {rx_config}",
                    precision.name()
                ));
                let attempt = (|| -> Result<_> {
                    let outcome = ModeATransfer::with_plans(
                        transmitter.participant()?,
                        receiver.participant()?,
                    )
                    .options(options.transfer)
                    .quantisation(*aware)
                    .execute(train, validation)?;
                    let run = PrecisionRun::from_report(*precision, &outcome.report)?;
                    Ok((outcome, run))
                })();
                let outcome = match attempt {
                    Ok((outcome, run)) => {
                        let report = &outcome.report;
                        tx_accuracy = report.transmitter_accuracy.unwrap_or(f64::NAN);
                        if executor_description.is_none() {
                            executor_description = report
                                .quantisation
                                .as_ref()
                                .and_then(|q| q.inference.as_ref())
                                .map(|timing| timing.executor.clone());
                        }
                        runs.push(run);
                        outcome
                    }
                    Err(error) if options.keep_going => {
                        failures.push(Failure::new(precision.name(), &error));
                        continue;
                    }
                    Err(error) => return Err(error),
                };
                let (Some(info), Precision::Int8) = (&ptq_info, precision) else {
                    continue;
                };
                progress(&format!("{task} PTQ int8: {tx_config} -> {rx_config}"));
                let attempt = (|| -> Result<_> {
                    // The transmitter's logits, run by tract, once per transmitter.
                    if !transmitter_logits.contains_key(tx_config) {
                        let (values, _) =
                            logits(&transmitter.model, validation, ExecutorOptions::default())?;
                        transmitter_logits.insert(tx_config.clone(), values);
                    }
                    let what = Anchor {
                        python: &info.python,
                        folder: folder.path(),
                        calibration,
                        validation,
                        transmitter: &transmitter_logits[tx_config],
                        executor: options.transfer.executor,
                    };
                    anchor(&what, &outcome.receiver, receiver, aware)
                })();
                match attempt {
                    Ok((run, executor)) => {
                        executor_description.get_or_insert(executor);
                        ptq = Some(run);
                    }
                    Err(error) if options.keep_going => {
                        failures.push(Failure::new(PTQ_METHOD, &error));
                    }
                    Err(error) => return Err(error),
                }
            }
            let float = runs
                .iter()
                .find(|run| run.precision == Precision::Int8.name())
                .or(runs.first());
            pairs.push(QuantPair {
                transmitter: tx_config.clone(),
                receiver: rx_config.clone(),
                tx_accuracy,
                float_agreement: float.map_or(f64::NAN, |run| run.float_agreement),
                float_accuracy: float.map_or(f64::NAN, |run| run.float_accuracy),
                runs,
                ptq,
                failures,
            });
        }
        let summaries = options
            .precisions
            .iter()
            .map(|precision| summarise(&pairs, precision.name()))
            .collect();
        tasks.push(QuantTask {
            task: task.clone(),
            train_inputs: train.len(),
            val_inputs: validation.len(),
            ptq: summarise_ptq(&pairs),
            pairs,
            summaries,
        });
    }
    let transfer = &options.transfer;
    Ok(QuantResults {
        started: started_at,
        machine: format!(
            "{} logical CPUs, {}",
            std::thread::available_parallelism().map_or(1, usize::from),
            std::env::consts::ARCH
        ),
        exporter: options.exporter.clone(),
        executor: executor_description.unwrap_or_else(|| {
            format!(
                "{} ({})",
                transfer.executor.backend, transfer.executor.device
            )
        }),
        settings,
        schedule: format!(
            "{} epochs, batch {}, learning rate {}, hub width {}, seed {}",
            transfer.epochs,
            transfer.batch_size,
            transfer.learning_rate,
            transfer.hub.dim,
            transfer.seed
        ),
        ptq: ptq_info,
        ptq_note,
        tasks,
        peak_rss_mib: memory.peak_mib().unwrap_or(f64::NAN),
        total_seconds: started.elapsed().as_secs_f64(),
    })
}

/// Writes `results.json` (pretty) and `summary.md` ([`markdown`]) into `out_dir`, each
/// atomically, creating the folder.
pub fn write_report(results: &QuantResults, out_dir: &Path) -> Result<()> {
    std::fs::create_dir_all(out_dir).map_err(io("create", out_dir))?;
    let json = serde_json::to_string_pretty(results).map_err(|source| {
        Error::from(tessera_engine::Error::Serialize {
            context: "the quantisation benchmark's results",
            source,
        })
    })?;
    let path = out_dir.join("results.json");
    write_atomically(&path, json.as_bytes()).map_err(io("write", &path))?;
    let path = out_dir.join("summary.md");
    write_atomically(&path, markdown(results).as_bytes()).map_err(io("write", &path))?;
    Ok(())
}

/// A share as a percentage with one decimal, `-` when missing.
fn percent(value: Option<f64>) -> String {
    value.map_or_else(|| "-".into(), |v| format!("{:.1}", points(v)))
}

/// Points with a sign and one decimal, `-` when missing.
fn signed(value: Option<f64>) -> String {
    value.map_or_else(|| "-".into(), |v| format!("{v:+.1}"))
}

/// `mean (worst)` of a delta in points.
fn mean_worst(mean: Option<f64>, worst: Option<f64>) -> String {
    format!("{} ({})", signed(mean), signed(worst))
}

/// A ratio with two decimals and a ×, `-` when missing.
fn times(value: Option<f64>) -> String {
    value.map_or_else(|| "-".into(), |v| format!("{v:.2}×"))
}

/// What a summary's method is called in the tables.
pub fn method_name(method: &str) -> String {
    match method {
        PTQ_METHOD => "INT8 PTQ (ONNX Runtime)".into(),
        precision => format!("ModeAQ {}", precision.to_uppercase()),
    }
}

/// The summary as a Markdown table, one row per task and method (ModeAQ at each precision,
/// then the PTQ anchor), with a line per task on the pairs where the anchor loses more than a
/// point; for the benchmark's report to paste.
pub fn markdown(results: &QuantResults) -> String {
    let mut lines = vec![
        "| task | method | pairs | float agreement, % | quantised agreement, % | \
         Δ agreement, mean (worst), pts | Δ accuracy, mean (worst), pts | \
         within 1 pt, agreement / accuracy | compression | inference time vs float |"
            .to_string(),
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|".to_string(),
    ];
    let mut notes = Vec::new();
    for task in &results.tasks {
        let rows = task
            .summaries
            .iter()
            .chain(task.ptq.as_ref().map(|ptq| &ptq.summary));
        for summary in rows {
            lines.push(format!(
                "| {} | {} | {} | {} | {} | {} | {} | {} / {} | {} | {} |",
                task.task,
                method_name(&summary.method),
                match summary.failed {
                    0 => summary.pairs.to_string(),
                    failed => format!("{} ({failed} failed)", summary.pairs),
                },
                percent(summary.mean_float_agreement),
                percent(summary.mean_agreement),
                mean_worst(summary.mean_delta_agreement, summary.worst_delta_agreement),
                mean_worst(summary.mean_delta_accuracy, summary.worst_delta_accuracy),
                summary.within_one_point_agreement,
                summary.within_one_point_accuracy,
                times(summary.mean_compression),
                times(summary.mean_inference_ratio),
            ));
        }
        for pair in &task.pairs {
            for failure in &pair.failures {
                notes.push(format!(
                    "- {}: {} failed on {} → {}: {}",
                    task.task,
                    method_name(&failure.method),
                    pair.transmitter,
                    pair.receiver,
                    failure.error
                ));
            }
        }
        if let Some(ptq) = task.ptq.as_ref().filter(|ptq| ptq.summary.pairs > 0) {
            notes.push(if ptq.losing_pairs == 0 {
                format!(
                    "- {}: PTQ keeps all {} pairs within one point of agreement.",
                    task.task, ptq.summary.pairs
                )
            } else {
                format!(
                    "- {}: PTQ loses more than one point of agreement on {} of {} pairs; \
                     ModeAQ INT8 on those pairs: Δ {} points on average, worst {}, {} of them \
                     within one point.",
                    task.task,
                    ptq.losing_pairs,
                    ptq.summary.pairs,
                    signed(ptq.modeaq_mean_delta_there),
                    signed(ptq.modeaq_worst_delta_there),
                    ptq.modeaq_within_one_point_there
                )
            });
        }
    }
    let mut text = lines.join("\n");
    text.push('\n');
    if !notes.is_empty() {
        text.push('\n');
        text.push_str(&notes.join("\n"));
        text.push('\n');
    }
    text.push_str(&format!(
        "\nΔ: quantised minus the float receiver of the same transfer, in points, on the held-out \
         inputs; \"within 1 pt\": pairs losing at most one point. Executor: {}.{}\n",
        results.executor,
        match &results.ptq {
            Some(ptq) => format!(" PTQ: ONNX Runtime {} ({}).", ptq.onnxruntime, ptq.settings),
            None => String::new(),
        }
    ));
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(precision: &str, float: (f64, f64), quantised: (f64, f64)) -> PrecisionRun {
        PrecisionRun {
            precision: precision.into(),
            label: precision.into(),
            float_agreement: float.0,
            float_accuracy: float.1,
            agreement: quantised.0,
            accuracy: quantised.1,
            agreement_with_float: 0.99,
            output_kl: 0.01,
            kl_from_float: 0.001,
            logits_sqnr_db: 30.0,
            mean_clipping: 0.0,
            float_bytes: 400,
            quantised_bytes: 100,
            compression: 4.0,
            inference_ratio: Some(0.5),
            measured_on: "the exported file".into(),
            epochs: 6,
            seconds: 1.0,
        }
    }

    fn ptq(float: (f64, f64), quantised: (f64, f64)) -> PtqRun {
        PtqRun {
            float_agreement: float.0,
            float_accuracy: float.1,
            agreement: quantised.0,
            accuracy: quantised.1,
            agreement_with_float: 0.95,
            output_kl: 0.02,
            float_bytes: 400,
            bytes: 200,
            compression: 2.0,
            inference: None,
            preprocess: "none".into(),
            requested_nodes: 3,
            quantised_nodes: 3,
            seconds: 0.5,
        }
    }

    fn pair(name: &str, runs: Vec<PrecisionRun>, anchor: Option<PtqRun>) -> QuantPair {
        QuantPair {
            transmitter: name.into(),
            receiver: "rx".into(),
            tx_accuracy: 0.9,
            float_agreement: runs[0].float_agreement,
            float_accuracy: runs[0].float_accuracy,
            runs,
            ptq: anchor,
            failures: Vec::new(),
        }
    }

    fn close(a: Option<f64>, b: f64) {
        let a = a.expect("a value");
        assert!((a - b).abs() < 1e-9, "{a} != {b}");
    }

    fn pairs() -> Vec<QuantPair> {
        vec![
            // INT8 loses 0.5 agreement points and 2 accuracy points; PTQ loses 4 points.
            pair(
                "a",
                vec![
                    run("int8", (0.90, 0.80), (0.895, 0.78)),
                    run("fp16", (0.90, 0.80), (0.90, 0.80)),
                ],
                Some(ptq((0.90, 0.80), (0.86, 0.79))),
            ),
            // INT8 gains a point; PTQ loses exactly one (within).
            pair(
                "b",
                vec![
                    run("int8", (0.70, 0.60), (0.71, 0.60)),
                    run("fp16", (0.70, 0.60), (0.70, 0.60)),
                ],
                Some(ptq((0.70, 0.60), (0.69, 0.61))),
            ),
            // INT8 loses 3 points, and its inference was not timed.
            pair(
                "c",
                vec![
                    PrecisionRun {
                        inference_ratio: None,
                        ..run("int8", (0.80, 0.70), (0.77, 0.70))
                    },
                    run("fp16", (0.80, 0.70), (0.80, 0.70)),
                ],
                None,
            ),
        ]
    }

    #[test]
    fn a_precision_is_summarised_in_points() {
        let summary = summarise(&pairs(), "int8");
        assert_eq!(summary.method, "int8");
        assert_eq!(summary.pairs, 3);
        close(summary.mean_float_agreement, 0.8);
        close(summary.mean_agreement, (0.895 + 0.71 + 0.77) / 3.0);
        close(summary.mean_delta_agreement, (-0.5 + 1.0 - 3.0) / 3.0);
        close(summary.worst_delta_agreement, -3.0);
        close(summary.mean_delta_accuracy, -2.0 / 3.0);
        close(summary.worst_delta_accuracy, -2.0);
        assert_eq!(summary.within_one_point_agreement, 2);
        assert_eq!(summary.within_one_point_accuracy, 2);
        close(summary.mean_compression, 4.0);
        // Only the two timed pairs count.
        close(summary.mean_inference_ratio, 0.5);

        let fp16 = summarise(&pairs(), "fp16");
        close(fp16.worst_delta_agreement, 0.0);
        assert_eq!(fp16.within_one_point_agreement, 3);
        let none = summarise(&pairs(), "int4");
        assert_eq!(none.pairs, 0);
        assert_eq!(none.mean_agreement, None);
        assert_eq!(none.within_one_point_agreement, 0);
    }

    #[test]
    fn the_anchor_is_summarised_with_modeaq_where_it_loses() {
        let summary = summarise_ptq(&pairs()).expect("two pairs ran the anchor");
        assert_eq!(summary.summary.method, "ptq-int8");
        assert_eq!(summary.summary.pairs, 2);
        close(summary.summary.mean_delta_agreement, (-4.0 - 1.0) / 2.0);
        close(summary.summary.worst_delta_agreement, -4.0);
        close(summary.summary.mean_delta_accuracy, 0.0);
        assert_eq!(summary.summary.within_one_point_agreement, 1);
        assert_eq!(summary.summary.mean_inference_ratio, None);
        // Only pair a loses more than a point under PTQ; ModeAQ INT8 lost 0.5 there.
        assert_eq!(summary.losing_pairs, 1);
        close(summary.modeaq_mean_delta_there, -0.5);
        close(summary.modeaq_worst_delta_there, -0.5);
        assert_eq!(summary.modeaq_within_one_point_there, 1);

        let without: Vec<QuantPair> = pairs()
            .into_iter()
            .map(|pair| QuantPair { ptq: None, ..pair })
            .collect();
        assert_eq!(summarise_ptq(&without), None);
    }

    #[test]
    fn missing_figures_are_left_out_and_nan_is_never_within_a_point() {
        assert_eq!(mean([f64::NAN, 1.0, 3.0]), Some(2.0));
        assert_eq!(mean([f64::NAN]), None);
        assert_eq!(worst([2.0, f64::NAN, -1.0]), Some(-1.0));
        assert!(within_one_point(-1.0));
        assert!(within_one_point(0.3));
        assert!(!within_one_point(-1.01));
        assert!(!within_one_point(f64::NAN));
    }

    fn results() -> QuantResults {
        let pairs = pairs();
        QuantResults {
            started: "2026-01-01T00:00:00+00:00".into(),
            machine: "2 logical CPUs, x86_64".into(),
            exporter: "torchscript".into(),
            executor: "tract (CPU)".into(),
            settings: vec![QuantisationAware::at(Precision::Int8)],
            schedule: "4 epochs".into(),
            ptq: Some(PtqInfo {
                python: "python3".into(),
                onnxruntime: "1.32.0".into(),
                settings: "quantize_static".into(),
            }),
            ptq_note: None,
            tasks: vec![QuantTask {
                task: "digits".into(),
                train_inputs: 1347,
                val_inputs: 450,
                summaries: vec![summarise(&pairs, "int8"), summarise(&pairs, "fp16")],
                ptq: summarise_ptq(&pairs),
                pairs,
            }],
            peak_rss_mib: 100.0,
            total_seconds: 10.0,
        }
    }

    #[test]
    fn the_markdown_table_has_a_row_per_method_and_a_note_on_the_anchor() {
        let text = markdown(&results());
        let rows: Vec<&str> = text
            .lines()
            .filter(|line| line.starts_with("| digits"))
            .collect();
        assert_eq!(rows.len(), 3, "{text}");
        assert_eq!(
            rows[0],
            "| digits | ModeAQ INT8 | 3 | 80.0 | 79.2 | -0.8 (-3.0) | -0.7 (-2.0) | 2 / 2 | \
             4.00× | 0.50× |"
        );
        assert!(rows[1].starts_with("| digits | ModeAQ FP16 | 3 | 80.0 | 80.0 | +0.0 (+0.0)"));
        assert!(rows[2]
            .starts_with("| digits | INT8 PTQ (ONNX Runtime) | 2 | 80.0 | 77.5 | -2.5 (-4.0)"));
        assert!(rows[2].ends_with("| 1 / 2 | 2.00× | - |"), "{}", rows[2]);
        // Header, separator and rows have the same number of columns.
        let columns = |line: &str| line.matches('|').count();
        for line in text.lines().filter(|line| line.starts_with('|')) {
            assert_eq!(columns(line), 11, "{line}");
        }
        assert!(text.contains(
            "- digits: PTQ loses more than one point of agreement on 1 of 2 pairs; ModeAQ INT8 \
             on those pairs: Δ -0.5 points on average, worst -0.5, 1 of them within one point."
        ));
        assert!(text.contains("Executor: tract (CPU). PTQ: ONNX Runtime 1.32.0"));
    }

    #[test]
    fn failures_are_counted_apart_and_noted() {
        let mut results = results();
        let task = &mut results.tasks[0];
        let error = Error::InvalidOption("boom".into());
        task.pairs[2]
            .failures
            .push(Failure::new(PTQ_METHOD, &error));
        task.pairs[1].runs.retain(|run| run.precision != "int8");
        task.pairs[1].ptq = None;
        task.pairs[1].failures.push(Failure::new("int8", &error));
        task.summaries = vec![summarise(&task.pairs, "int8")];
        task.ptq = summarise_ptq(&task.pairs);
        let int8 = &task.summaries[0];
        assert_eq!((int8.pairs, int8.failed), (2, 1));
        close(int8.mean_delta_agreement, (-0.5 - 3.0) / 2.0);
        let anchor = task.ptq.as_ref().unwrap();
        assert_eq!((anchor.summary.pairs, anchor.summary.failed), (1, 1));
        let text = markdown(&results);
        assert!(
            text.contains("| digits | ModeAQ INT8 | 2 (1 failed) |"),
            "{text}"
        );
        assert!(text.contains("- digits: ModeAQ INT8 failed on b → rx: invalid option: boom"));
        assert!(text.contains("- digits: INT8 PTQ (ONNX Runtime) failed on c → rx"));

        // An anchor that failed everywhere still has its summary row, with no figures.
        let pairs = vec![QuantPair {
            ptq: None,
            failures: vec![Failure::new(PTQ_METHOD, &error)],
            ..pairs().remove(0)
        }];
        let only_failed = summarise_ptq(&pairs).unwrap();
        assert_eq!(
            (only_failed.summary.pairs, only_failed.summary.failed),
            (0, 1)
        );
        assert_eq!(only_failed.summary.mean_agreement, None);
    }

    #[test]
    fn missing_figures_are_null_in_json() {
        let mut results = results();
        results.tasks[0].pairs[0].tx_accuracy = f64::NAN;
        let json = serde_json::to_value(&results).unwrap();
        assert!(json["tasks"][0]["pairs"][0]["tx_accuracy"].is_null());
        assert_eq!(
            json["tasks"][0]["summaries"][0]["within_one_point_agreement"],
            2
        );
    }

    #[test]
    fn the_report_is_written_whole() {
        let folder = tempfile::tempdir().unwrap();
        let out = folder.path().join("quant");
        write_report(&results(), &out).unwrap();
        let json: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(out.join("results.json")).unwrap())
                .unwrap();
        assert_eq!(json["tasks"][0]["ptq"]["losing_pairs"], 1);
        assert!(std::fs::read_to_string(out.join("summary.md"))
            .unwrap()
            .starts_with("| task | method |"));
    }

    #[test]
    fn a_missing_python_is_refused_with_the_way_out() {
        let error = check_python("/nonexistent/python").unwrap_err().to_string();
        assert!(error.contains("--python"), "{error}");
        assert!(error.contains(PTQ_REQUIREMENTS), "{error}");
        assert!(error.contains("--no-ptq"), "{error}");
    }

    #[test]
    fn the_script_is_compiled_in() {
        assert!(PTQ_SCRIPT.contains("quantize_static"));
        assert!(PTQ_SCRIPT.contains("--nodes"));
    }
}
