//! Mode A: label-free transfer between two architectures. The transmitter's and receiver's
//! representations are aligned in the hub space, then the receiver's own weights are
//! fine-tuned until it behaves like the transmitter, measured on held-out inputs.
//!
//! ```no_run
//! use tessera_engine::config::Config;
//! use tessera_tensor::dataset::Dataset;
//! use tessera_onnx::OnnxModel;
//! use tessera_engine::plugin::PluginRegistry;
//! use tessera_engine::transfer::ModeATransfer;
//! # fn main() -> tessera_engine::Result<()> {
//! let registry = PluginRegistry::discover(&Config::default(), Vec::new());
//! let transmitter = OnnxModel::load("teacher.onnx".as_ref())?;
//! let receiver = OnnxModel::load("student.onnx".as_ref())?;
//! let inputs = Dataset::load("unlabelled.npy".as_ref(), None)?;
//! let held_out = Dataset::load("held_out.npy".as_ref(), None)?;
//! let outcome = ModeATransfer::new(&transmitter, &receiver, &registry)?
//!     .hub_dim(2048)
//!     .seed(7)
//!     .execute(&inputs, &held_out)?;
//! println!("agreement {:?}", outcome.report.after.agreement);
//! outcome.receiver.save("student.tuned.onnx".as_ref())?;
//! # Ok(()) }
//! ```

mod inputs;
mod measure;
mod objective;
mod options;
mod report;

use std::time::Instant;

use candle_core::{Device, Tensor as GraphTensor};
use ndarray::{Array2, Axis};
use rand::rngs::ChaCha8Rng;
use rand::seq::SliceRandom;
use rand::SeedableRng;
use tessera_api::{AdapterPlan, StageToken};

use tessera_api::Metadata;
use tessera_metrics as metrics;
use tessera_onnx::OnnxModel;
use tessera_tensor::dataset::Dataset;
use tessera_tensor::tensor::Tensor;
use tessera_train::{to_matrix, Trainable, TrainableGraph};
use tessera_train::{Optimizer, OptimizerKind, OptimizerOptions, Schedule};

use crate::capture::{CaptureOptions, Capturer};
use crate::plugin::PluginRegistry;
use crate::pooling::{pool, pool_trainable};
use crate::uhs::{self, Hub};
use crate::{Error, Result};

pub use inputs::{mix, sample_domain};
pub use measure::{fidelity, DepthCka, Fidelity, Observed};
pub use objective::Objective;
pub use options::{Augmentation, TransferOptions};
pub use report::{ModelSummary, Timings, TransferReport};

use objective::Targets;

/// Samples per batch when running a model only to observe it.
const OBSERVE_BATCH: usize = 64;

/// The phases a transfer goes through, for progress reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Running both models on the inputs and held-out inputs.
    Capture,
    /// Training the hub encoders (unit: epochs).
    Hub,
    /// Fine-tuning the receiver (unit: steps).
    FineTune,
    /// Measuring on held-out inputs.
    Measure,
}

/// Where a transfer is: `done` of `total` units of `phase`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    /// The current phase.
    pub phase: Phase,
    /// Units done.
    pub done: usize,
    /// Units in the phase.
    pub total: usize,
}

/// A model taking part in a transfer, with the adapter plan that says where to read it.
#[derive(Debug, Clone)]
pub struct Participant<'m> {
    model: &'m OnnxModel,
    plan: AdapterPlan,
}

impl<'m> Participant<'m> {
    /// `model` read through `plan`: its taps (the last is the representation the hub uses) and
    /// trainable initializers. Fails when the plan declares no tap point: a transfer reads at
    /// least one.
    pub fn new(model: &'m OnnxModel, plan: AdapterPlan) -> Result<Self> {
        if plan.taps.is_empty() {
            return Err(model
                .error(format!(
                    "adapter {} declared no tap points; a transfer needs at least one",
                    plan.family
                ))
                .into());
        }
        Ok(Self { model, plan })
    }

    /// The model.
    pub fn model(&self) -> &'m OnnxModel {
        self.model
    }

    /// Its adapter's plan.
    pub fn plan(&self) -> &AdapterPlan {
        &self.plan
    }
}

/// A Mode A transfer from a transmitter into a receiver, configured by builder methods.
pub struct ModeATransfer<'m> {
    transmitter: Participant<'m>,
    receiver: Participant<'m>,
    options: TransferOptions,
}

/// What a transfer produced.
pub struct TransferOutcome {
    /// The receiver with its fine-tuned weights, ready to save as ONNX.
    pub receiver: OnnxModel,
    /// The transmitter's unit-norm hub vectors of the training inputs, one row per input: the
    /// per-record vectors whose clipped, noised mean the token carries.
    pub hub_records: Array2<f32>,
    /// Everything measured.
    pub report: TransferReport,
}

impl TransferOutcome {
    /// The token for the stage chain (privacy, then TBF export): the per-record hub vectors
    /// and, as metadata under `transfer`, the report.
    pub fn token(&self) -> Result<StageToken> {
        let mut metadata = Metadata::new();
        metadata.insert(
            "transfer".into(),
            serde_json::to_value(&self.report).map_err(|source| Error::Serialize {
                context: "the transfer report",
                source,
            })?,
        );
        Ok(StageToken::new(
            self.hub_records.iter().copied().collect(),
            self.hub_records.shape().iter().map(|&d| d as u64).collect(),
            metadata,
        ))
    }
}

/// What a candle error while fine-tuning is reported as.
const FINE_TUNING: &str = "fine-tuning failed";

fn first_output(model: &OnnxModel) -> Result<String> {
    Ok(model
        .outputs()
        .first()
        .map(|spec| spec.name.clone())
        .ok_or_else(|| model.error("the model declares no output"))?)
}

/// What an adapter's plan allows to learn: its `trainable` list (every floating-point
/// initializer when empty) less its `frozen` list.
fn trainable_of(plan: &AdapterPlan) -> Trainable {
    if plan.trainable.is_empty() {
        Trainable::AllExcept(plan.frozen.clone())
    } else {
        Trainable::Only(
            plan.trainable
                .iter()
                .filter(|name| !plan.frozen.contains(name))
                .cloned()
                .collect(),
        )
    }
}

/// Runs the transmitter through an executor, keeping its output and pooled taps.
struct TransmitterRunner<'p> {
    capturer: Capturer,
    plan: &'p AdapterPlan,
}

impl<'p> TransmitterRunner<'p> {
    fn new(participant: &'p Participant, options: &TransferOptions) -> Result<Self> {
        let mut names = vec![first_output(participant.model)?];
        names.extend(participant.plan.taps.iter().map(|tap| tap.tensor.clone()));
        let capturer = Capturer::new(
            participant.model,
            &names,
            &CaptureOptions {
                executor: options.executor,
                batch_size: OBSERVE_BATCH,
            },
        )?;
        Ok(Self {
            capturer,
            plan: &participant.plan,
        })
    }

    fn observe(&mut self, dataset: &Dataset) -> Result<Observed> {
        let captured = self.capturer.run(dataset, &mut |_| {})?;
        let float = |index: usize| {
            captured.tensors[index].as_f32().ok_or_else(|| {
                Error::Shape(format!(
                    "transmitter tensor {:?} is not float32",
                    captured.specs[index].name
                ))
            })
        };
        let logits = float(0)?
            .clone()
            .into_dimensionality()
            .map_err(|_| Error::Shape("the transmitter's output is not [batch, classes]".into()))?;
        let taps = self
            .plan
            .taps
            .iter()
            .enumerate()
            .map(|(index, tap)| Ok((tap.tensor.clone(), pool(float(index + 1)?, tap)?)))
            .collect::<Result<Vec<_>>>()?;
        Ok(Observed { logits, taps })
    }
}

/// What the receiver learns from: the transmitter, its view of the training inputs (outputs,
/// taps and hub vectors), and whether its outputs can be matched.
struct Teacher<'r, 'p> {
    runner: &'r mut TransmitterRunner<'p>,
    train: &'r Observed,
    train_hub: &'r Array2<f32>,
    outputs_agree: bool,
}

/// The receiver on the trainable graph.
struct ReceiverGraph<'p> {
    graph: TrainableGraph,
    plan: &'p AdapterPlan,
    output: String,
}

impl<'p> ReceiverGraph<'p> {
    fn new(participant: &'p Participant, device: Device) -> Result<Self> {
        let graph =
            TrainableGraph::new(participant.model, &trainable_of(&participant.plan), device)?;
        Ok(Self {
            graph,
            plan: &participant.plan,
            output: first_output(participant.model)?,
        })
    }

    /// Logits and the pooled deepest tap of a batch, differentiable.
    fn forward(&self, inputs: &Tensor) -> Result<(GraphTensor, GraphTensor)> {
        let tap = &self.plan.taps[self.plan.taps.len() - 1];
        let mut values = self.graph.forward(
            std::slice::from_ref(inputs),
            &[self.output.clone(), tap.tensor.clone()],
        )?;
        let features = pool_trainable(&values[1], tap).map_err(Error::compute(FINE_TUNING))?;
        Ok((values.swap_remove(0), features))
    }

    /// Logits and every pooled tap of `inputs`, without gradients.
    fn observe(&self, inputs: &Tensor) -> Result<Observed> {
        let mut names = vec![self.output.clone()];
        names.extend(self.plan.taps.iter().map(|tap| tap.tensor.clone()));
        let mut logits = Vec::new();
        let mut taps: Vec<Vec<Array2<f32>>> = vec![Vec::new(); self.plan.taps.len()];
        let rows = inputs.shape()[0];
        for start in (0..rows).step_by(OBSERVE_BATCH) {
            let batch = inputs.slice_axis(0, start..(start + OBSERVE_BATCH).min(rows));
            let values = self.graph.forward(&[batch], &names)?;
            logits.push(to_matrix(&values[0].detach())?);
            for ((collected, tap), value) in taps.iter_mut().zip(&self.plan.taps).zip(&values[1..])
            {
                collected.push(to_matrix(
                    &pool_trainable(&value.detach(), tap).map_err(Error::compute(FINE_TUNING))?,
                )?);
            }
        }
        let join = |parts: &[Array2<f32>]| {
            let views: Vec<_> = parts.iter().map(|part| part.view()).collect();
            ndarray::concatenate(Axis(0), &views).map_err(|error| Error::Shape(error.to_string()))
        };
        Ok(Observed {
            logits: join(&logits)?,
            taps: self
                .plan
                .taps
                .iter()
                .zip(&taps)
                .map(|(tap, parts)| Ok((tap.tensor.clone(), join(parts)?)))
                .collect::<Result<Vec<_>>>()?,
        })
    }
}

/// The decay per step and the first averaged step of a running weight average whose horizon
/// is `share` of `total` steps, or `None` when averaging is off. Steps more than five horizons
/// before the end would weigh under 1 % of the average, so it starts there.
fn averaging(share: f64, total: usize) -> Option<(f64, usize)> {
    (share > 0.0).then(|| {
        let horizon = (share * total as f64).max(1.0);
        let from_step = total.saturating_sub((5.0 * horizon).ceil() as usize);
        (1.0 - 1.0 / horizon, from_step)
    })
}

fn deepest(observed: &Observed) -> ndarray::ArrayView2<'_, f32> {
    observed.taps[observed.taps.len() - 1].1.view()
}

impl<'m> ModeATransfer<'m> {
    /// A transfer from `transmitter` into `receiver`, each read through the adapter `registry`
    /// chooses for it, with default options.
    pub fn new(
        transmitter: &'m OnnxModel,
        receiver: &'m OnnxModel,
        registry: &PluginRegistry,
    ) -> Result<Self> {
        let transmitter_plan = registry.choose_adapter(transmitter, None)?.plan;
        let receiver_plan = registry.choose_adapter(receiver, None)?.plan;
        Ok(Self::with_plans(
            Participant::new(transmitter, transmitter_plan)?,
            Participant::new(receiver, receiver_plan)?,
        ))
    }

    /// A transfer between participants whose adapter plans are already known.
    pub fn with_plans(transmitter: Participant<'m>, receiver: Participant<'m>) -> Self {
        Self {
            transmitter,
            receiver,
            options: TransferOptions::default(),
        }
    }

    /// Replaces every option at once.
    pub fn options(mut self, options: TransferOptions) -> Self {
        self.options = options;
        self
    }

    /// The width of the hub space.
    pub fn hub_dim(mut self, dim: usize) -> Self {
        self.options.hub.dim = dim;
        self
    }

    /// The seed of everything random (the hub's seed follows it).
    pub fn seed(mut self, seed: u64) -> Self {
        self.options.seed = seed;
        self.options.hub.seed = seed;
        self
    }

    /// The fine-tuning objective.
    pub fn objective(mut self, objective: Objective) -> Self {
        self.options.objective = objective;
        self
    }

    /// How unlabelled inputs are enlarged.
    pub fn augmentation(mut self, augmentation: Augmentation) -> Self {
        self.options.augmentation = augmentation;
        self
    }

    /// Fine-tuning epochs.
    pub fn epochs(mut self, epochs: usize) -> Self {
        self.options.epochs = epochs;
        self
    }

    /// The options as configured so far.
    pub fn configured(&self) -> &TransferOptions {
        &self.options
    }

    /// Runs the transfer: `train` holds the unlabelled inputs (labels, if any, are ignored),
    /// `validation` the held-out inputs every figure is measured on (its labels only score).
    pub fn execute(&self, train: &Dataset, validation: &Dataset) -> Result<TransferOutcome> {
        self.execute_with_progress(train, validation, &mut |_| {})
    }

    /// [`execute`](Self::execute), telling `progress` where it is.
    pub fn execute_with_progress(
        &self,
        train: &Dataset,
        validation: &Dataset,
        progress: &mut dyn FnMut(Progress),
    ) -> Result<TransferOutcome> {
        let started = Instant::now();
        let options = &self.options;
        self.check(train, validation)?;
        let report_phase = |progress: &mut dyn FnMut(Progress), phase, done, total| {
            progress(Progress { phase, done, total })
        };

        report_phase(progress, Phase::Capture, 0, 4);
        let mut transmitter = TransmitterRunner::new(&self.transmitter, options)?;
        let tx_train = transmitter.observe(train)?;
        report_phase(progress, Phase::Capture, 1, 4);
        let tx_validation = transmitter.observe(validation)?;
        report_phase(progress, Phase::Capture, 2, 4);
        let receiver = ReceiverGraph::new(&self.receiver, options.device.open()?)?;
        let rx_train = receiver.observe(&train.inputs)?;
        report_phase(progress, Phase::Capture, 3, 4);
        let rx_validation_before = receiver.observe(&validation.inputs)?;
        report_phase(progress, Phase::Capture, 4, 4);
        let capture_seconds = started.elapsed().as_secs_f64();

        let hub_started = Instant::now();
        let (hub, hub_report) = uhs::train_hub(
            deepest(&tx_train),
            deepest(&rx_train),
            &options.hub,
            receiver.graph.device(),
            &mut |epoch| report_phase(progress, Phase::Hub, epoch, options.hub.epochs),
        )?;
        let tx_train_hub = hub.transmitter.embed_array(deepest(&tx_train))?;
        let tx_validation_hub = hub.transmitter.embed_array(deepest(&tx_validation))?;
        let retrieval_before = self.retrieval(&hub, &tx_validation_hub, &rx_validation_before)?;
        let round_trip_error = [
            hub.transmitter.round_trip_error(deepest(&tx_validation))?,
            hub.receiver
                .round_trip_error(deepest(&rx_validation_before))?,
        ];
        let hub_seconds = hub_started.elapsed().as_secs_f64();

        let tune_started = Instant::now();
        let outputs_agree = tx_train.logits.ncols() == rx_train.logits.ncols();
        let mut teacher = Teacher {
            runner: &mut transmitter,
            train: &tx_train,
            train_hub: &tx_train_hub,
            outputs_agree,
        };
        let steps = self.fine_tune(&receiver, &hub, &mut teacher, train, &mut |done, total| {
            report_phase(progress, Phase::FineTune, done, total)
        })?;
        let fine_tune_seconds = tune_started.elapsed().as_secs_f64();

        let measure_started = Instant::now();
        report_phase(progress, Phase::Measure, 0, 1);
        let rx_validation_after = receiver.observe(&validation.inputs)?;
        let labels = validation.labels.as_ref();
        let before = fidelity(&tx_validation, &rx_validation_before, labels)?;
        let after = fidelity(&tx_validation, &rx_validation_after, labels)?;
        // Without the hub term the receiver's encoder does not follow its changing
        // representation, so retrieval after fine-tuning would measure nothing.
        let retrieval_after = (options.objective.hub_weight > 0.0)
            .then(|| self.retrieval(&hub, &tx_validation_hub, &rx_validation_after))
            .transpose()?;
        let transmitter_accuracy = labels
            .map(|labels| metrics::accuracy(tx_validation.logits.view(), labels.view()))
            .transpose()?;
        let tuned = receiver.graph.trained_model()?;
        report_phase(progress, Phase::Measure, 1, 1);
        let measure_seconds = measure_started.elapsed().as_secs_f64();

        let report = TransferReport {
            method: "mode-a".into(),
            transmitter: ModelSummary::of(&self.transmitter),
            receiver: ModelSummary::of(&self.receiver),
            objective: options.objective,
            objective_name: options.objective.name(),
            output_matching: outputs_agree && options.objective.output_weight > 0.0,
            augmentation: options.augmentation,
            hub: options.hub,
            epochs: options.epochs,
            batch_size: options.batch_size,
            learning_rate: options.learning_rate,
            embedding_rate_scale: options.embedding_rate_scale,
            cosine_decay: options.cosine_decay,
            weight_averaging: options.weight_averaging,
            device: options.device,
            steps,
            seed: options.seed,
            train_inputs: train.len(),
            validation_inputs: validation.len(),
            transmitter_accuracy,
            before,
            after,
            hub_training: hub_report,
            hub_retrieval_before_fine_tuning: retrieval_before,
            hub_retrieval: retrieval_after,
            hub_round_trip_error: round_trip_error,
            timings: Timings {
                capture: capture_seconds,
                hub: hub_seconds,
                fine_tune: fine_tune_seconds,
                measure: measure_seconds,
                total: started.elapsed().as_secs_f64(),
            },
        };
        Ok(TransferOutcome {
            receiver: tuned,
            hub_records: tx_train_hub,
            report,
        })
    }

    fn check(&self, train: &Dataset, validation: &Dataset) -> Result<()> {
        for participant in [&self.transmitter, &self.receiver] {
            let inputs = participant.model.inputs();
            let [input] = inputs.as_slice() else {
                return Err(participant
                    .model
                    .error(format!(
                        "it takes {} inputs; a transfer feeds models with exactly one input",
                        inputs.len()
                    ))
                    .into());
            };
            train.check_fits(input)?;
            validation.check_fits(input)?;
        }
        if self.options.epochs == 0 || self.options.batch_size == 0 {
            return Err(Error::InvalidOption(
                "fine-tuning needs at least one epoch and a batch size of at least 1".into(),
            ));
        }
        let share = self.options.weight_averaging;
        if !(0.0..=1.0).contains(&share) {
            return Err(Error::InvalidOption(format!(
                "the weight-averaging horizon is a share of the fine-tuning steps between 0 \
                 (off) and 1, not {share}"
            )));
        }
        let scale = self.options.embedding_rate_scale;
        if !(scale.is_finite() && scale > 0.0) {
            return Err(Error::InvalidOption(format!(
                "the embedding learning-rate scale must be a positive number, not {scale}"
            )));
        }
        if self.options.objective.output_weight <= 0.0 && self.options.objective.hub_weight <= 0.0 {
            return Err(Error::InvalidOption(
                "the objective has no term: give output matching or hub alignment a positive weight"
                    .into(),
            ));
        }
        Ok(())
    }

    /// Held-out retrieval accuracy of the receiver's hub vectors among the transmitter's
    /// (`transmitter_hub`, already embedded).
    fn retrieval(
        &self,
        hub: &Hub,
        transmitter_hub: &Array2<f32>,
        receiver: &Observed,
    ) -> Result<f64> {
        Ok(metrics::retrieval_accuracy(
            hub.receiver.embed_array(deepest(receiver))?.view(),
            transmitter_hub.view(),
            self.options.hub.batch_size,
        )?)
    }

    /// The epoch's inputs and the transmitter's view of them: the given inputs first, then
    /// (with augmentation) new ones the transmitter is asked about.
    fn epoch_inputs(
        &self,
        epoch: usize,
        train: &Dataset,
        transmitter: &mut TransmitterRunner,
        rng: &mut ChaCha8Rng,
    ) -> Result<Option<(Dataset, Observed)>> {
        let inputs = match (epoch, self.options.augmentation) {
            (0, _) | (_, Augmentation::None) => return Ok(None),
            (_, Augmentation::Mix) => mix(&train.inputs, rng)?,
            (_, Augmentation::SampleDomain) => sample_domain(&train.inputs, rng)?,
        };
        let dataset = Dataset::new(inputs, None, train.source.clone())?;
        let observed = transmitter.observe(&dataset)?;
        Ok(Some((dataset, observed)))
    }

    /// Fine-tunes the receiver (and its hub encoder) on the objective; returns the steps taken.
    fn fine_tune(
        &self,
        receiver: &ReceiverGraph,
        hub: &Hub,
        teacher: &mut Teacher,
        train: &Dataset,
        progress: &mut dyn FnMut(usize, usize),
    ) -> Result<usize> {
        let options = &self.options;
        let objective = &options.objective;
        let (mut variables, mut rate_scales): (Vec<_>, Vec<_>) = receiver
            .graph
            .variables()
            .iter()
            .map(|(name, var)| {
                let scale = if receiver.graph.is_lookup_table(name) {
                    options.embedding_rate_scale
                } else {
                    1.0
                };
                (var.clone(), scale)
            })
            .unzip();
        if objective.hub_weight > 0.0 {
            let encoder = hub.receiver.encoder_variables();
            rate_scales.extend(std::iter::repeat_n(1.0, encoder.len()));
            variables.extend(encoder);
        }
        let rows = train.len();
        let total = options.epochs * rows.div_ceil(options.batch_size);
        let optimizer = Optimizer::new(
            variables,
            OptimizerOptions {
                kind: OptimizerKind::ADAM,
                learning_rate: options.learning_rate,
                schedule: if options.cosine_decay {
                    Schedule::WarmupCosine { warmup: 0, total }
                } else {
                    Schedule::Constant
                },
                clip_norm: None,
            },
        )
        .with_rate_scales(rate_scales)?;
        let mut optimizer = match averaging(options.weight_averaging, total) {
            Some((decay, from_step)) => optimizer.with_averaging(decay, from_step)?,
            None => optimizer,
        };
        let mut rng = ChaCha8Rng::seed_from_u64(options.seed ^ 0x7e55_e2a0);
        let mut order: Vec<usize> = (0..rows).collect();
        let mut steps = 0;
        for epoch in 0..options.epochs {
            let enlarged = self.epoch_inputs(epoch, train, teacher.runner, &mut rng)?;
            let (inputs, observed) = match &enlarged {
                Some((dataset, observed)) => (dataset, observed),
                None => (train, teacher.train),
            };
            // The transmitter's hub vectors of this epoch's inputs, when the hub term is on.
            let enlarged_hub = match &enlarged {
                Some((_, observed)) if objective.hub_weight > 0.0 => {
                    Some(hub.transmitter.embed_array(deepest(observed))?)
                }
                _ => None,
            };
            let tx_hub = match (&enlarged, &enlarged_hub) {
                (Some(_), hub_vectors) => hub_vectors.as_ref(),
                (None, _) => (objective.hub_weight > 0.0).then_some(teacher.train_hub),
            };
            order.shuffle(&mut rng);
            for batch in order.chunks(options.batch_size) {
                let hub_rows = tx_hub.map(|vectors| vectors.select(Axis(0), batch));
                let targets = Targets::new(
                    objective,
                    observed.logits.select(Axis(0), batch).view(),
                    hub_rows.as_ref().map(|rows| rows.view()),
                    teacher.outputs_agree,
                    receiver.graph.device(),
                )?;
                let (logits, features) = receiver.forward(&inputs.inputs.select_rows(batch))?;
                let loss = objective
                    .loss(&logits, &features, &hub.receiver, &targets)
                    .map_err(Error::compute(FINE_TUNING))?;
                let value = loss
                    .to_scalar::<f32>()
                    .map_err(Error::compute(FINE_TUNING))?;
                if !value.is_finite() {
                    return Err(Error::Diverged(format!(
                        "fine-tuning diverged at step {steps} (loss {value}); lower the learning \
                         rate"
                    )));
                }
                optimizer.step(&loss.backward().map_err(Error::compute(FINE_TUNING))?)?;
                steps += 1;
                progress(steps, total);
            }
        }
        optimizer.use_averages()?;
        Ok(steps)
    }
}

#[cfg(test)]
mod tests {
    use super::averaging;

    #[test]
    fn the_weight_average_spans_the_last_five_horizons() {
        assert_eq!(averaging(0.0, 860), None);
        let (decay, from_step) = averaging(0.1, 860).unwrap();
        assert!((decay - (1.0 - 1.0 / 86.0)).abs() < 1e-12);
        assert_eq!(from_step, 860 - 430);
        // A horizon longer than the run averages every step; one shorter than a step, the last.
        assert_eq!(averaging(1.0, 100).unwrap().1, 0);
        assert_eq!(averaging(0.001, 100).unwrap(), (0.0, 95));
    }
}
