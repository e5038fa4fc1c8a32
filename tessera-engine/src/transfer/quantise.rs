//! ModeAQ: a quantisation-aware transfer. After Mode A's float fine-tuning the receiver keeps
//! fine-tuning with its weights (and, at INT8, the activations its compute nodes read and
//! write) rounded onto the grid they will be stored on — learning its own float counterpart's
//! outputs by default, or the transmitter's knowledge ([`QatTeacher`]); activation
//! ranges are calibrated on the reference inputs, recalibrated as the weights move, and frozen
//! for the last epochs. The result is exported as standard ONNX and measured, in the executor
//! the transfer runs models with, against the transmitter and against its own float
//! counterpart.

use std::collections::HashMap;
use std::time::Instant;

use ndarray::{Array2, ArrayView2};
use serde::{Deserialize, Serialize};
use tessera_api::AdapterPlan;
use tessera_onnx::OnnxModel;
use tessera_quant::calibrate::RangeObserver;
use tessera_quant::export::ActivationStorage;
use tessera_quant::grid::{Grid, QuantParams};
use tessera_quant::plan::{QuantisationPlan, SampleShapes};
use tessera_quant::{Precision, QuantisationOptions};
use tessera_tensor::dataset::Dataset;
use tessera_tensor::tensor::Tensor;
use tessera_train::{FakeQuantisation, TrainableGraph, WeightGrid};

use super::measure::{fidelity, Fidelity, Observed};
use super::selection::SelectionReport;
use super::{first_output, OBSERVE_BATCH};
use crate::backend::{self, ExecutorOptions};
use crate::capture::{CaptureOptions, Capturer};
use crate::pooling::pool;
use crate::{Error, Result};
use tessera_metrics as metrics;

/// How a quantisation-aware transfer quantises and how long it trains on the grid.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct QuantisationAware {
    /// What to quantise to, and how.
    pub quantisation: QuantisationOptions,
    /// Epochs of quantisation-aware fine-tuning after the float ones (0: quantise the float
    /// receiver as it is, with calibrated ranges). FP16 always uses 0.
    pub epochs: usize,
    /// Of those, the last this many train with frozen activation ranges; the earlier ones
    /// recalibrate at their start.
    pub frozen_epochs: usize,
    /// Multiplier of Mode A's learning rate while on the grid.
    pub learning_rate_scale: f64,
    /// Whose outputs the receiver learns while on the grid.
    pub teacher: QatTeacher,
    /// How INT8 activations are stored. Default `uint8`: the same grid as `int8` (every value
    /// and zero point plus 128), which ONNX Runtime's x86 kernels fuse into integer
    /// operators throughout (U8S8), where with `int8` activations it fused only some.
    pub activation_storage: ActivationStorage,
}

impl Default for QuantisationAware {
    fn default() -> Self {
        Self {
            quantisation: QuantisationOptions::default(),
            epochs: 6,
            frozen_epochs: 2,
            learning_rate_scale: 0.3,
            teacher: QatTeacher::Float,
            activation_storage: ActivationStorage::Uint8,
        }
    }
}

impl QuantisationAware {
    /// The defaults at `precision` (activations float unless INT8).
    pub fn at(precision: Precision) -> Self {
        Self {
            quantisation: QuantisationOptions::at(precision),
            ..Self::default()
        }
    }

    /// Quantisation-aware epochs actually run: none for FP16.
    pub fn training_epochs(&self) -> usize {
        if self.quantisation.precision.is_integer() {
            self.epochs
        } else {
            0
        }
    }

    /// Fails with the reason when the options contradict each other.
    pub fn check(&self) -> Result<()> {
        self.quantisation.check().map_err(Error::InvalidOption)?;
        if self.frozen_epochs > self.epochs {
            return Err(Error::InvalidOption(format!(
                "{} frozen epochs is more than the {} quantisation-aware epochs",
                self.frozen_epochs, self.epochs
            )));
        }
        let scale = self.learning_rate_scale;
        if !(scale.is_finite() && scale > 0.0) {
            return Err(Error::InvalidOption(format!(
                "the quantisation-aware learning-rate scale must be a positive number, not {scale}"
            )));
        }
        Ok(())
    }
}

/// Whose outputs a receiver learns while it fine-tunes on the integer grid.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum QatTeacher {
    /// Its own float counterpart's (the receiver Mode A tuned), at the transfer's temperature:
    /// the training recovers what rounding changed and nothing else, so the quantised receiver
    /// keeps the float one's agreement and accuracy.
    #[default]
    Float,
    /// The transmitter's knowledge, as in Mode A (its hub term included): the receiver may go
    /// on gaining on the transmitter, or drift from its float counterpart where the knowledge
    /// is noisy.
    Knowledge,
}

impl std::fmt::Display for QatTeacher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Float => "float",
            Self::Knowledge => "knowledge",
        })
    }
}

impl std::str::FromStr for QatTeacher {
    type Err = String;

    fn from_str(text: &str) -> std::result::Result<Self, String> {
        match text {
            "float" => Ok(Self::Float),
            "knowledge" => Ok(Self::Knowledge),
            other => Err(format!(
                "unknown quantisation-aware teacher {other:?}: expected float or knowledge"
            )),
        }
    }
}

/// Seconds to run the held-out inputs through a model.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct InferenceTiming {
    /// The executor, e.g. `tract (CPU)` or `ONNX Runtime (CPU)`.
    pub executor: String,
    /// The float receiver, its best pass ([`time_side_by_side`]).
    pub float_seconds: f64,
    /// The quantised receiver, its best pass.
    pub quantised_seconds: f64,
    /// `quantised / float`: below 1 the quantised receiver is faster.
    pub ratio: f64,
}

/// How often one quantised activation saturated on the held-out inputs.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Clipping {
    /// The activation.
    pub tensor: String,
    /// Share of its values outside the grid's range.
    pub share: f64,
}

/// Signal-to-quantisation-noise ratio of one tap, quantised against float receiver.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TapSqnr {
    /// The tap.
    pub tap: String,
    /// `10·log10(Σ float² / Σ (float − quantised)²)`, dB (pooled activations).
    pub sqnr_db: f64,
}

/// What quantising the receiver did, measured on the held-out inputs.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct QuantisationReport {
    /// The options.
    pub options: QuantisationOptions,
    /// Their short label.
    pub label: String,
    /// Quantisation-aware epochs run.
    pub epochs: usize,
    /// Whose outputs those epochs learned.
    pub teacher: QatTeacher,
    /// Optimiser steps they took.
    pub steps: usize,
    /// Weights stored on an integer grid.
    pub quantised_weights: usize,
    /// Activations quantised.
    pub quantised_activations: usize,
    /// Compute nodes the adapter's choices kept floating-point.
    pub kept_float: Vec<String>,
    /// Compute nodes with INT8 weights but float inputs: too small for an integer kernel to
    /// pay for quantising their input (`QuantisationOptions::min_integer_macs`).
    #[serde(default)]
    pub weight_only: Vec<String>,
    /// The quantised receiver against the transmitter (agreement, output KL, accuracy).
    pub fidelity: Fidelity,
    /// The float receiver of the same transfer against the transmitter, measured in the same
    /// executor.
    pub float_fidelity: Fidelity,
    /// Share of inputs where quantised and float receiver pick the same class.
    pub agreement_with_float: f64,
    /// Mean KL(float ‖ quantised) of the output distributions, nats.
    pub kl_from_float: f64,
    /// SQNR of the logits, dB.
    pub logits_sqnr_db: f64,
    /// SQNR of every tap, dB.
    pub tap_sqnr_db: Vec<TapSqnr>,
    /// Saturation of every quantised activation.
    pub clipping: Vec<Clipping>,
    /// Mean saturation share over the quantised activations (0 with none).
    pub mean_clipping: f64,
    /// Size of the float receiver's ONNX file, bytes.
    pub float_bytes: usize,
    /// Size of the quantised receiver's ONNX file, bytes.
    pub quantised_bytes: usize,
    /// `float_bytes / quantised_bytes`.
    pub compression: f64,
    /// Bytes of the float receiver's initializers (its weights, without the graph).
    pub float_weight_bytes: usize,
    /// Bytes of the quantised receiver's initializers (integers, scales, zero points, what
    /// stays float).
    pub quantised_weight_bytes: usize,
    /// `float_weight_bytes / quantised_weight_bytes`: the compression of the weights alone,
    /// which small models' graph structure (a fixed cost) hides in `compression`.
    pub weight_compression: f64,
    /// What the figures were measured on: `the exported file`, or, where the executor cannot
    /// read the file (tract and packed INT4), its float twin holding exactly the dequantised
    /// weights, which computes the same values.
    pub measured_on: String,
    /// Inference time, float against quantised (absent when the executor cannot run the file).
    pub inference: Option<InferenceTiming>,
    /// Which state of the fine-tuning on the grid was kept (with a selection slice).
    pub selection: Option<SelectionReport>,
    /// Seconds spent on the grid: calibration, fine-tuning, export and measurement.
    pub seconds: f64,
}

/// The headline figures of a quantised receiver, for the metadata of its ONNX file and of the
/// knowledge token of the transfer that made it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QuantisedSummary {
    /// The options' label.
    pub label: String,
    /// Agreement with the transmitter on the held-out inputs.
    pub agreement: Option<f64>,
    /// Agreement with the float receiver of the same transfer.
    pub agreement_with_float: f64,
    /// Accuracy, when labels were given.
    pub accuracy: Option<f64>,
    /// SQNR of the logits against the float receiver, dB.
    pub logits_sqnr_db: f64,
    /// Size of the quantised ONNX file, bytes.
    pub bytes: usize,
    /// How many times smaller than the float file it is.
    pub compression: f64,
}

impl QuantisationReport {
    /// The headline figures.
    pub fn summary(&self) -> QuantisedSummary {
        QuantisedSummary {
            label: self.label.clone(),
            agreement: self.fidelity.agreement,
            agreement_with_float: self.agreement_with_float,
            accuracy: self.fidelity.accuracy,
            logits_sqnr_db: self.logits_sqnr_db,
            bytes: self.quantised_bytes,
            compression: self.compression,
        }
    }
}

/// The key of the quantised receiver's figures in its ONNX metadata.
pub const FIDELITY_METADATA_KEY: &str = "tessera.fidelity";

/// `model` with `summary` (JSON) in its metadata under [`FIDELITY_METADATA_KEY`].
pub(super) fn with_summary(model: &OnnxModel, summary: &QuantisedSummary) -> Result<OnnxModel> {
    let mut proto = model.proto().clone();
    proto
        .metadata_props
        .retain(|entry| entry.key != FIDELITY_METADATA_KEY);
    proto
        .metadata_props
        .push(tessera_onnx::proto::StringStringEntryProto {
            key: FIDELITY_METADATA_KEY.into(),
            value: serde_json::to_string(summary).map_err(|source| Error::Serialize {
                context: "the quantised receiver's figures",
                source,
            })?,
        });
    Ok(model.with_proto(proto)?)
}

/// The plan's weights as the trainable graph rounds them.
fn weight_grids(plan: &QuantisationPlan) -> HashMap<String, WeightGrid> {
    plan.weights
        .iter()
        .map(|site| {
            (
                site.initializer.clone(),
                WeightGrid {
                    granularity: site.granularity,
                    grid: site.grid,
                    symmetric: site.symmetric,
                },
            )
        })
        .collect()
}

/// The plan for `model` under `aware`, refusing a quantisation that would touch nothing; its
/// compute layers are sized by the shapes `graph` (the trainable `model`) gives one of `inputs`.
pub(super) fn plan_for(
    model: &OnnxModel,
    graph: &TrainableGraph,
    inputs: &Tensor,
    adapter: &AdapterPlan,
    aware: &QuantisationAware,
) -> Result<QuantisationPlan> {
    let shapes = sample_shapes(model, graph, inputs);
    let plan =
        tessera_quant::plan::plan(model, &aware.quantisation, &adapter.quantisation, &shapes);
    if aware.quantisation.precision.is_integer() && plan.is_empty() {
        return Err(model
            .error(format!(
                "nothing to quantise: no MatMul, Gemm, Conv, LSTM, GRU or Gather reads a stored \
                 float weight{}; use --quant fp16, or an adapter that quantises these layers",
                if plan.kept_float.is_empty() {
                    String::new()
                } else {
                    format!(" outside the layers adapter {} keeps float", adapter.family)
                }
            ))
            .into());
    }
    Ok(plan)
}

/// The shapes of the tensors the plan sizes compute layers by, from a forward pass of `graph`
/// on the first of `inputs` alone; none where the graph cannot run one sample (a batch size
/// fixed in the graph), so that every layer is counted at one row or position per sample.
fn sample_shapes(model: &OnnxModel, graph: &TrainableGraph, inputs: &Tensor) -> SampleShapes {
    let probes = tessera_quant::plan::shape_probes(model);
    if probes.is_empty() || inputs.shape().first().is_none_or(|&rows| rows == 0) {
        return SampleShapes::new();
    }
    match graph.forward(&[inputs.slice_axis(0, 0..1)], &probes) {
        Ok(values) => probes
            .into_iter()
            .zip(values)
            .map(|(name, value)| (name, value.dims().to_vec()))
            .collect(),
        Err(_) => SampleShapes::new(),
    }
}

/// Rounds the plan's weights onto their grids in `graph` (activations float).
pub(super) fn quantise_weights(graph: &mut TrainableGraph, plan: &QuantisationPlan) -> Result<()> {
    graph.set_fake_quantisation(FakeQuantisation {
        weights: weight_grids(plan),
        activations: HashMap::new(),
    })?;
    Ok(())
}

/// Calibrates the plan's activations on `inputs` with the weights on their grids (and the
/// activations themselves float, so that each range is the one the values really take), then
/// rounds them onto those grids in later forward passes. Returns the grids.
pub(super) fn calibrate(
    graph: &mut TrainableGraph,
    plan: &QuantisationPlan,
    options: &QuantisationOptions,
    inputs: &Tensor,
) -> Result<HashMap<String, QuantParams>> {
    quantise_weights(graph, plan)?;
    if plan.activations.is_empty() {
        return Ok(HashMap::new());
    }
    let mut observers: Vec<RangeObserver> = plan
        .activations
        .iter()
        .map(|_| RangeObserver::new())
        .collect();
    let rows = inputs.shape()[0];
    for start in (0..rows).step_by(OBSERVE_BATCH) {
        let batch = inputs.slice_axis(0, start..(start + OBSERVE_BATCH).min(rows));
        let values = graph.forward(&[batch], &plan.activations)?;
        for (observer, value) in observers.iter_mut().zip(values) {
            let host = tessera_train::to_host(&value.detach())?;
            if let Tensor::F32(array) = host {
                observer.observe(array.iter().copied());
            }
        }
    }
    let mut grids = HashMap::new();
    for (tensor, observer) in plan.activations.iter().zip(&observers) {
        let params = observer
            .params(options.calibration, Grid::INT8, false)
            .ok_or_else(|| {
                Error::Diverged(format!(
                    "activation {tensor:?} took no finite value during calibration; the receiver \
                     produces NaN or infinity — lower the learning rate"
                ))
            })?;
        grids.insert(tensor.clone(), params);
    }
    graph.set_fake_quantisation(FakeQuantisation {
        weights: weight_grids(plan),
        activations: grids.clone(),
    })?;
    Ok(grids)
}

/// Bytes of `model`'s initializer data.
fn weight_bytes(model: &OnnxModel) -> usize {
    model
        .graph()
        .initializer
        .iter()
        .map(|init| {
            init.raw_data.len()
                + 4 * (init.float_data.len() + init.int32_data.len())
                + 8 * (init.int64_data.len() + init.double_data.len())
        })
        .sum()
}

/// `10·log10(Σ reference² / Σ (reference − test)²)`, dB; infinite when they are equal.
fn sqnr_db(reference: ArrayView2<f32>, test: ArrayView2<f32>) -> f64 {
    let (mut signal, mut noise) = (0.0f64, 0.0f64);
    for (&r, &t) in reference.iter().zip(test.iter()) {
        signal += f64::from(r) * f64::from(r);
        noise += f64::from(r - t) * f64::from(r - t);
    }
    if noise == 0.0 {
        f64::INFINITY
    } else {
        10.0 * (signal / noise).log10()
    }
}

/// `model`'s logits and pooled taps on `dataset`, in `executor`; tract infers the tensors'
/// shapes on `shapes`.
fn observe_exported(
    model: &OnnxModel,
    shapes: &OnnxModel,
    adapter: &AdapterPlan,
    dataset: &Dataset,
    executor: ExecutorOptions,
) -> Result<Observed> {
    let mut names = vec![first_output(model)?];
    names.extend(adapter.taps.iter().map(|tap| tap.tensor.clone()));
    let options = CaptureOptions {
        executor,
        batch_size: OBSERVE_BATCH,
    };
    let captured =
        Capturer::with_shapes_of(model, shapes, &names, &options)?.run(dataset, &mut |_| {})?;
    let as_f32 = |tensor: &Tensor| {
        tensor
            .as_f32()
            .cloned()
            .ok_or_else(|| Error::Shape("expected a floating-point tensor".into()))
    };
    let logits: Array2<f32> = as_f32(&captured.tensors[0])?
        .into_dimensionality()
        .map_err(|_| Error::Shape("the model's output is not [N, classes]".into()))?;
    let taps = adapter
        .taps
        .iter()
        .zip(&captured.tensors[1..])
        .map(|(tap, tensor)| Ok((tap.tensor.clone(), pool(&as_f32(tensor)?, tap)?)))
        .collect::<Result<Vec<_>>>()?;
    Ok(Observed { logits, taps })
}

/// How often each quantised activation of `model` (as its producer computes it, before its
/// `QuantizeLinear`) falls outside its grid's range on `dataset`. Counted batch by batch, so
/// that tensors laid out without a batch axis (an attention reshape to `[B·T, D]`) count too.
fn clipping(
    model: &OnnxModel,
    plan: &QuantisationPlan,
    grids: &HashMap<String, QuantParams>,
    dataset: &Dataset,
    executor: ExecutorOptions,
) -> Result<Vec<Clipping>> {
    if plan.activations.is_empty() {
        return Ok(Vec::new());
    }
    let mut runner = backend::open(model, &plan.activations, executor)?;
    let mut counts = vec![(0usize, 0usize); plan.activations.len()];
    let rows = dataset.len();
    for start in (0..rows).step_by(OBSERVE_BATCH) {
        let batch = dataset
            .inputs
            .slice_axis(0, start..(start + OBSERVE_BATCH).min(rows));
        let values = runner.run(&[batch])?;
        for ((tensor, values), count) in plan.activations.iter().zip(values).zip(&mut counts) {
            let params = &grids[tensor];
            if let Some(values) = values.as_f32() {
                count.0 += values.iter().filter(|&&v| params.clips(v)).count();
                count.1 += values.len();
            }
        }
    }
    Ok(plan
        .activations
        .iter()
        .zip(counts)
        .map(|(tensor, (clipped, total))| Clipping {
            tensor: tensor.clone(),
            share: clipped as f64 / total.max(1) as f64,
        })
        .collect())
}

/// Rounds of [`time_side_by_side`]: each times a block of passes of each model in turn.
const TIMING_ROUNDS: usize = 3;

/// Timed passes of the held-out inputs in each block, after one untimed pass.
const PASSES_PER_BLOCK: usize = 10;

/// The held-out inputs through `float` and through `other` (a quantised receiver), in
/// `executor`: [`TIMING_ROUNDS`] rounds, each a block of [`PASSES_PER_BLOCK`] timed passes
/// through one model and then through the other, so that a machine whose speed drifts slows
/// both alike; each model's best pass counts. Each block starts with an untimed pass, which
/// absorbs what switching from the other model costs (ONNX Runtime's threads of the idle
/// session still spinning, cold caches).
pub fn time_side_by_side(
    float: &OnnxModel,
    other: &OnnxModel,
    dataset: &Dataset,
    executor: ExecutorOptions,
) -> Result<InferenceTiming> {
    let mut runners = [float, other]
        .into_iter()
        .map(|model| {
            let output = first_output(model)?;
            backend::open(model, std::slice::from_ref(&output), executor)
        })
        .collect::<Result<Vec<_>>>()?;
    let rows = dataset.len();
    let mut best = [f64::INFINITY; 2];
    for _ in 0..TIMING_ROUNDS {
        for (runner, best) in runners.iter_mut().zip(&mut best) {
            for pass in 0..=PASSES_PER_BLOCK {
                let started = Instant::now();
                for start in (0..rows).step_by(OBSERVE_BATCH) {
                    runner.run(&[dataset
                        .inputs
                        .slice_axis(0, start..(start + OBSERVE_BATCH).min(rows))])?;
                }
                if pass > 0 {
                    *best = best.min(started.elapsed().as_secs_f64());
                }
            }
        }
    }
    Ok(InferenceTiming {
        executor: runners[0].description(),
        float_seconds: best[0],
        quantised_seconds: best[1],
        ratio: best[1] / best[0].max(f64::MIN_POSITIVE),
    })
}

/// What the measurement of a quantised receiver needs.
pub(super) struct Measurement<'a> {
    /// The receiver's adapter plan (its taps).
    pub adapter: &'a AdapterPlan,
    /// The transmitter on the held-out inputs.
    pub transmitter: &'a Observed,
    /// The held-out inputs.
    pub validation: &'a Dataset,
    /// The executor that runs both receivers.
    pub executor: ExecutorOptions,
}

/// The model whose every quantised weight is replaced by its dequantised values, in float:
/// what a weight-only quantised file computes, for executors that cannot read the file.
pub(super) fn dequantised_twin(latent: &OnnxModel, plan: &QuantisationPlan) -> Result<OnnxModel> {
    let mut values = HashMap::new();
    for site in &plan.weights {
        let initializer = latent
            .graph()
            .initializer
            .iter()
            .find(|init| init.name == site.initializer)
            .and_then(tessera_onnx::float_values)
            .ok_or_else(|| latent.error(format!("{:?} is not a float weight", site.initializer)))?;
        let weight = tessera_quant::grid::quantize_weight(
            &initializer,
            &site.shape,
            site.granularity,
            site.grid,
            site.symmetric,
        );
        values.insert(site.initializer.clone(), weight.dequantized(&site.shape));
    }
    Ok(latent.with_initializer_values(&values))
}

/// Whether `executor` reads `options`' files: tract has no 4-bit types.
pub(super) fn executor_reads(executor: ExecutorOptions, options: &QuantisationOptions) -> bool {
    let packed_int4 = options.precision == Precision::Int4
        && options.int4_storage == tessera_quant::Int4Storage::Packed;
    !(packed_int4 && executor.backend == backend::Backend::Tract)
}

/// Measures the exported `quantised` receiver (quantised by `plan` with activation `grids`,
/// after `epochs` on the grid that took `steps`) against the transmitter and the `float` one;
/// `twin` is what runs instead of it when the executor cannot read it.
#[allow(clippy::too_many_arguments)]
pub(super) fn measure(
    float: &OnnxModel,
    quantised: &OnnxModel,
    twin: Option<&OnnxModel>,
    aware: &QuantisationAware,
    what: &Measurement,
    (plan, grids): (&QuantisationPlan, &HashMap<String, QuantParams>),
    (epochs, steps): (usize, usize),
    started: Instant,
) -> Result<QuantisationReport> {
    let labels = what.validation.labels.as_ref();
    let float_view = observe_exported(float, float, what.adapter, what.validation, what.executor)?;
    let measured = twin.unwrap_or(quantised);
    // The float receiver has the same tensors, and tract reads it whatever the precision.
    let quantised_view = observe_exported(
        measured,
        float,
        what.adapter,
        what.validation,
        what.executor,
    )?;
    let clipping = clipping(measured, plan, grids, what.validation, what.executor)?;
    let mean_clipping = if clipping.is_empty() {
        0.0
    } else {
        clipping.iter().map(|c| c.share).sum::<f64>() / clipping.len() as f64
    };
    let inference = match twin {
        Some(_) => None,
        None => Some(time_side_by_side(
            float,
            quantised,
            what.validation,
            what.executor,
        )?),
    };
    let float_bytes = float.to_bytes().len();
    let quantised_bytes = quantised.to_bytes().len();
    Ok(QuantisationReport {
        options: aware.quantisation,
        label: aware.quantisation.label(),
        epochs,
        teacher: aware.teacher,
        steps,
        quantised_weights: plan.weights.len(),
        quantised_activations: plan.activations.len(),
        kept_float: plan.kept_float.clone(),
        weight_only: plan.weight_only.clone(),
        fidelity: fidelity(what.transmitter, &quantised_view, labels)?,
        float_fidelity: fidelity(what.transmitter, &float_view, labels)?,
        agreement_with_float: metrics::top1_agreement(
            float_view.logits.view(),
            quantised_view.logits.view(),
        )?,
        kl_from_float: metrics::output_kl(
            float_view.logits.view(),
            quantised_view.logits.view(),
            1.0,
        )?,
        logits_sqnr_db: sqnr_db(float_view.logits.view(), quantised_view.logits.view()),
        tap_sqnr_db: float_view
            .taps
            .iter()
            .zip(&quantised_view.taps)
            .map(|((tap, float), (_, quantised))| TapSqnr {
                tap: tap.clone(),
                sqnr_db: sqnr_db(float.view(), quantised.view()),
            })
            .collect(),
        clipping,
        mean_clipping,
        float_bytes,
        quantised_bytes,
        compression: float_bytes as f64 / quantised_bytes.max(1) as f64,
        float_weight_bytes: weight_bytes(float),
        quantised_weight_bytes: weight_bytes(quantised),
        weight_compression: weight_bytes(float) as f64 / weight_bytes(quantised).max(1) as f64,
        measured_on: match twin {
            Some(_) => "its float twin with the dequantised weights (the executor cannot read \
                        4-bit types)"
                .into(),
            None => "the exported file".into(),
        },
        selection: None,
        inference,
        seconds: started.elapsed().as_secs_f64(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqnr_is_signal_over_noise_in_decibels() {
        let reference = ndarray::array![[1.0f32, -1.0], [2.0, 0.0]];
        let test = ndarray::array![[1.1f32, -1.0], [2.0, 0.0]];
        // signal 6, noise 0.01 → 10·log10(600).
        assert!((sqnr_db(reference.view(), test.view()) - 10.0 * 600f64.log10()).abs() < 1e-3);
        assert!(sqnr_db(reference.view(), reference.view()).is_infinite());
    }

    #[test]
    fn contradictory_options_are_refused() {
        QuantisationAware::default().check().unwrap();
        QuantisationAware::at(Precision::Int4).check().unwrap();
        let fp16 = QuantisationAware::at(Precision::Fp16);
        fp16.check().unwrap();
        assert_eq!(fp16.training_epochs(), 0);
        let too_frozen = QuantisationAware {
            frozen_epochs: 7,
            ..QuantisationAware::default()
        };
        assert!(too_frozen.check().is_err());
        let mut int4_acts = QuantisationAware::at(Precision::Int4);
        int4_acts.quantisation.activations = tessera_quant::ActivationPrecision::Int8;
        assert!(int4_acts.check().is_err());
    }
}
