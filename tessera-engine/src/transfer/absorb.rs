//! The receiver's half of a transfer: learn from knowledge on the reference inputs the
//! receiver's owner holds, without ever running (or seeing) the transmitter.

use std::time::Instant;

use candle_core::{Device, Tensor as GraphTensor};
use ndarray::{Array2, ArrayView2, Axis};
use rand::rngs::ChaCha8Rng;
use rand::seq::SliceRandom;
use rand::SeedableRng;
use tessera_api::{AdapterPlan, TapPoint};

use super::emit::log_softmax_rows;
use super::knowledge::{synthetic_inputs, synthetic_partners, Knowledge, KnowledgeHeader};
use super::measure::{fidelity, Observed};
use super::objective::{Objective, Targets};
use super::options::Augmentation;
use super::options::TransferOptions;
use super::quantise::{self, Measurement, QatTeacher, QuantisationAware, QuantisationReport};
use super::report::{ModelSummary, Timings, TransferReport};
use super::selection::{
    set_aside, Candidate, RowSplit, SelectionReport, SelectionScore, Selector, Snapshot,
    MAX_BACK_OFFS,
};
use super::step::{self, StepBatch};
use super::{
    check_recipe, check_single_input, deepest, first_output, Participant, Phase, Progress,
    TransferOutcome, FINE_TUNING, OBSERVE_BATCH,
};
use crate::backend::ExecutorOptions;
use crate::pooling::pool_trainable;
use crate::uhs::{train_hub, HubReport, HubSide};
use crate::{Error, Result};
use tessera_metrics as metrics;
use tessera_onnx::OnnxModel;
use tessera_tensor::dataset::Dataset;
use tessera_tensor::tensor::Tensor;
use tessera_train::{to_matrix, BatchStatistics, Trainable, TrainableGraph, TrainingDevice};
use tessera_train::{Optimizer, OptimizerKind, OptimizerOptions, Schedule};

/// Mixed into the seed of the fine-tuning batch order.
const ORDER_SEED: u64 = 0x7e55_e2a0;

/// Absorbs knowledge into a receiver.
///
/// ```no_run
/// use tessera_engine::config::Config;
/// use tessera_engine::plugin::PluginRegistry;
/// use tessera_engine::transfer::{Absorber, Knowledge, Participant};
/// use tessera_onnx::OnnxModel;
/// use tessera_tensor::dataset::Dataset;
/// # fn main() -> tessera_engine::Result<()> {
/// let registry = PluginRegistry::discover(&Config::default(), Vec::new());
/// let knowledge = Knowledge::load("knowledge.tbf".as_ref(), &Default::default())?;
/// let receiver = OnnxModel::load("student.onnx".as_ref())?;
/// let plan = registry.choose_adapter(&receiver, None)?.plan;
/// let inputs = Dataset::load("reference.npy".as_ref(), None)?;
/// let (train, held_out) = knowledge.datasets(&inputs, None)?;
/// let outcome = Absorber::new(Participant::new(&receiver, plan)?).absorb(&knowledge, &train, &held_out)?;
/// println!("agreement {:?} -> {:?}", outcome.report.before.agreement, outcome.report.after.agreement);
/// outcome.receiver.save("student.tuned.onnx".as_ref())?;
/// # Ok(()) }
/// ```
pub struct Absorber<'m> {
    receiver: Participant<'m>,
    device: TrainingDevice,
    executor: ExecutorOptions,
    seed: Option<u64>,
    quantisation: Option<QuantisationAware>,
}

/// The receiver on the trainable graph.
pub(super) struct ReceiverGraph<'p> {
    pub(super) graph: TrainableGraph,
    plan: &'p AdapterPlan,
    output: String,
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

impl<'p> ReceiverGraph<'p> {
    pub(super) fn new(participant: &'p Participant, device: Device) -> Result<Self> {
        let graph = TrainableGraph::new(
            participant.model(),
            &trainable_of(participant.plan()),
            device,
        )?;
        Ok(Self {
            graph,
            plan: participant.plan(),
            output: first_output(participant.model())?,
        })
    }

    /// Where the graph computes.
    pub(super) fn device(&self) -> &Device {
        self.graph.device()
    }

    /// Logits and the pooled deepest tap of a batch, differentiable, as at inference.
    pub(super) fn forward(&self, inputs: &Tensor) -> Result<(GraphTensor, GraphTensor)> {
        let (values, _) = self.forward_with(inputs, false)?;
        Ok(values)
    }

    /// [`forward`](Self::forward) as a training step runs it (batch normalisation with the
    /// batch's statistics), with the running statistics it measured.
    pub(super) fn forward_training(
        &self,
        inputs: &Tensor,
    ) -> Result<((GraphTensor, GraphTensor), BatchStatistics)> {
        self.forward_with(inputs, true)
    }

    fn forward_with(
        &self,
        inputs: &Tensor,
        training: bool,
    ) -> Result<((GraphTensor, GraphTensor), BatchStatistics)> {
        let tap = &self.plan.taps[self.plan.taps.len() - 1];
        let wanted = [self.output.clone(), tap.tensor.clone()];
        let inputs = std::slice::from_ref(inputs);
        let (mut values, statistics) = if training {
            self.graph.forward_training(inputs, &wanted)?
        } else {
            (
                self.graph.forward(inputs, &wanted)?,
                BatchStatistics::default(),
            )
        };
        let features = pool_trainable(&values[1], tap).map_err(Error::compute(FINE_TUNING))?;
        Ok(((values.swap_remove(0), features), statistics))
    }

    /// Moves the graph's running statistics to what the shards of a training step measured.
    pub(super) fn update_statistics(&self, measured: &[BatchStatistics]) -> Result<()> {
        Ok(self.graph.update_statistics(measured)?)
    }

    /// Logits and every pooled tap of `inputs`, without gradients.
    fn observe(&self, inputs: &Tensor) -> Result<Observed> {
        self.observe_taps(inputs, &self.plan.taps)
    }

    /// Logits and the pooled `taps` of `inputs`, without gradients.
    fn observe_taps(&self, inputs: &Tensor, taps_wanted: &[TapPoint]) -> Result<Observed> {
        let mut names = vec![self.output.clone()];
        names.extend(taps_wanted.iter().map(|tap| tap.tensor.clone()));
        let mut logits = Vec::new();
        let mut taps: Vec<Vec<Array2<f32>>> = vec![Vec::new(); taps_wanted.len()];
        let rows = inputs.shape()[0];
        for start in (0..rows).step_by(OBSERVE_BATCH) {
            let batch = inputs.slice_axis(0, start..(start + OBSERVE_BATCH).min(rows));
            let values = self.graph.forward(&[batch], &names)?;
            logits.push(to_matrix(&values[0].detach())?);
            for ((collected, tap), value) in taps.iter_mut().zip(taps_wanted).zip(&values[1..]) {
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
            taps: taps_wanted
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

/// The receiver's hub side, trained on the knowledge's hub vectors, and what training it did.
struct ReceiverHub {
    side: HubSide,
    report: HubReport,
    retrieval_before: f64,
    round_trip_error: f64,
}

/// The transmitter as the receiver sees it on the held-out inputs: logits recovered from the
/// soft targets (T · log p, equal to the transmitter's logits up to a per-row constant), and
/// the taps only when the transmitter ran in the same process.
fn transmitter_view(knowledge: &Knowledge, local: Option<Observed>) -> Observed {
    let temperature = knowledge.header.recipe.objective.temperature as f32;
    Observed {
        logits: knowledge
            .validation_targets
            .mapv(|value| value * temperature),
        taps: local.map(|observed| observed.taps).unwrap_or_default(),
    }
}

impl<'m> Absorber<'m> {
    /// An absorber for `receiver`, training on the CPU.
    pub fn new(receiver: Participant<'m>) -> Self {
        Self {
            receiver,
            device: TrainingDevice::Cpu,
            executor: ExecutorOptions::default(),
            seed: None,
            quantisation: None,
        }
    }

    /// Makes the absorption quantisation-aware (ModeAQ): after the float fine-tuning the
    /// receiver trains on its integer grid and is exported quantised
    /// ([`TransferOutcome::quantised`]), measured against the float one.
    pub fn quantisation(mut self, aware: QuantisationAware) -> Self {
        self.quantisation = Some(aware);
        self
    }

    /// The executor that runs exported receivers when measuring them (ModeAQ) [default: tract
    /// on the CPU].
    pub fn executor(mut self, executor: ExecutorOptions) -> Self {
        self.executor = executor;
        self
    }

    /// The seed of the receiver's side: its hub encoder and the batch order [default: the
    /// recipe's]. The split and the synthetic sets always follow the knowledge.
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = Some(seed);
        self
    }

    /// Where the receiver fine-tunes and its hub side trains.
    pub fn device(mut self, device: TrainingDevice) -> Self {
        self.device = device;
        self
    }

    /// Fine-tunes the receiver on `knowledge`: `train` and `validation` are the inputs
    /// [`Knowledge::datasets`] gives (labels of `validation`, if any, only score).
    pub fn absorb(
        &self,
        knowledge: &Knowledge,
        train: &Dataset,
        validation: &Dataset,
    ) -> Result<TransferOutcome> {
        self.absorb_with(knowledge, train, validation, None, &mut |_| Ok(()))
    }

    /// [`absorb`](Self::absorb), telling `progress` where it is.
    pub fn absorb_with_progress(
        &self,
        knowledge: &Knowledge,
        train: &Dataset,
        validation: &Dataset,
        progress: &mut dyn FnMut(Progress) -> Result<()>,
    ) -> Result<TransferOutcome> {
        self.absorb_with(knowledge, train, validation, None, progress)
    }

    /// The absorption; `local_view` is the transmitter's own view of the held-out inputs when
    /// it ran in this process (for comparing representations).
    pub(super) fn absorb_with(
        &self,
        knowledge: &Knowledge,
        train: &Dataset,
        validation: &Dataset,
        local_view: Option<Observed>,
        progress: &mut dyn FnMut(Progress) -> Result<()>,
    ) -> Result<TransferOutcome> {
        let started = Instant::now();
        knowledge.validate()?;
        let header = &knowledge.header;
        header.train.check(train, "training inputs")?;
        header.validation.check(validation, "held-out inputs")?;
        check_single_input(&self.receiver, &[train, validation])?;
        let mut options = TransferOptions {
            device: self.device,
            executor: self.executor,
            ..header.recipe
        };
        if let Some(aware) = &self.quantisation {
            aware.check()?;
        }
        if let Some(seed) = self.seed {
            options.seed = seed;
            options.hub.seed = seed;
        }
        check_recipe(&options)?;
        let report_phase =
            |progress: &mut dyn FnMut(Progress) -> Result<()>, phase, done, total| {
                progress(Progress { phase, done, total })
            };

        report_phase(progress, Phase::Capture, 0, 2)?;
        let mut receiver = ReceiverGraph::new(&self.receiver, options.device.open()?)?;
        let rx_train = receiver.observe(&train.inputs)?;
        report_phase(progress, Phase::Capture, 1, 2)?;
        let rx_validation_before = receiver.observe(&validation.inputs)?;
        report_phase(progress, Phase::Capture, 2, 2)?;
        let capture_seconds = started.elapsed().as_secs_f64();

        let outputs_agree = rx_train.logits.ncols() == header.transmitter.output_width;
        let hub_vectors = knowledge
            .hub
            .as_ref()
            .filter(|_| options.objective.hub_weight > 0.0);
        if hub_vectors.is_none() {
            options.objective.hub_weight = 0.0;
        }
        if !outputs_agree && hub_vectors.is_none() {
            return Err(Error::KnowledgeMismatch(format!(
                "the knowledge's soft targets have {} classes but the receiver {} outputs {}, \
                 and the knowledge carries no hub vectors to learn from instead; give a receiver \
                 with {} outputs, or ask for knowledge emitted with hub vectors",
                header.transmitter.output_width,
                self.receiver.model().name(),
                rx_train.logits.ncols(),
                header.transmitter.output_width
            )));
        }
        if !outputs_agree {
            options.objective.output_weight = 0.0;
        }

        let rows = TrainingRows::new(&options, knowledge, train, hub_vectors.is_some());
        let hub_started = Instant::now();
        let hub = hub_vectors
            .map(|vectors| -> Result<ReceiverHub> {
                let (side, report) = train_hub(
                    vectors.train.select(Axis(0), &rows.split.train).view(),
                    deepest(&rx_train).select(Axis(0), &rows.split.train).view(),
                    &options.hub,
                    receiver.graph.device(),
                    &mut |epoch| report_phase(progress, Phase::Hub, epoch, options.hub.epochs),
                )?;
                let retrieval_before = retrieval(
                    &side,
                    &options,
                    vectors.validation.view(),
                    &rx_validation_before,
                )?;
                let round_trip_error = side.round_trip_error(deepest(&rx_validation_before))?;
                Ok(ReceiverHub {
                    side,
                    report,
                    retrieval_before,
                    round_trip_error,
                })
            })
            .transpose()?;
        let hub_seconds = hub_started.elapsed().as_secs_f64();

        let tune_started = Instant::now();
        let (steps, selection) = fine_tune(
            &options,
            &mut receiver,
            hub.as_ref().map(|hub| &hub.side),
            knowledge,
            train,
            &rows,
            outputs_agree,
            &mut |_, _| Ok(()),
            &mut |done, total| report_phase(progress, Phase::FineTune, done, total),
        )?;
        let fine_tune_seconds = tune_started.elapsed().as_secs_f64();

        let measure_started = Instant::now();
        report_phase(progress, Phase::Measure, 0, 1)?;
        let rx_validation_after = receiver.observe(&validation.inputs)?;
        let tx_validation = transmitter_view(knowledge, local_view);
        let labels = validation.labels.as_ref();
        let before = fidelity(&tx_validation, &rx_validation_before, labels)?;
        let after = fidelity(&tx_validation, &rx_validation_after, labels)?;
        let retrieval_after = match (&hub, hub_vectors) {
            (Some(hub), Some(vectors)) => Some(retrieval(
                &hub.side,
                &options,
                vectors.validation.view(),
                &rx_validation_after,
            )?),
            _ => None,
        };
        let transmitter_accuracy = labels
            .map(|labels| metrics::accuracy(tx_validation.logits.view(), labels.view()))
            .transpose()?;
        let unchanged = selection
            .as_ref()
            .is_some_and(|selection| selection.chosen == Candidate::Start);
        let tuned = if unchanged {
            self.receiver.model().clone()
        } else {
            receiver.graph.trained_model()?
        };
        report_phase(progress, Phase::Measure, 1, 1)?;
        let measure_seconds = measure_started.elapsed().as_secs_f64();

        let quantised = self
            .quantisation
            .map(|aware| {
                let tuning = Tuning {
                    options: &options,
                    hub: hub.as_ref().map(|hub| &hub.side),
                    knowledge,
                    train,
                    rows: &rows,
                    outputs_agree,
                };
                let what = Measurement {
                    adapter: self.receiver.plan(),
                    transmitter: &tx_validation,
                    validation,
                    executor: options.executor,
                };
                quantise_receiver(&mut receiver, &tuned, &aware, &tuning, &what, progress)
            })
            .transpose()?;

        let (quantised, quantisation) = quantised.unzip();
        let report = TransferReport {
            method: if quantisation.is_some() {
                "mode-aq"
            } else {
                "mode-a"
            }
            .into(),
            transmitter: header.transmitter.model(),
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
            warmup_epochs: options.warmup_epochs,
            cosine_decay: options.cosine_decay,
            weight_averaging: options.weight_averaging,
            device: options.device,
            steps,
            seed: options.seed,
            train_inputs: train.len(),
            validation_inputs: validation.len(),
            synthetic_sets: header.synthetic_sets,
            transmitter_accuracy,
            before,
            after,
            hub_training: hub.as_ref().map(|hub| hub.report.clone()),
            hub_retrieval_before_fine_tuning: hub.as_ref().map(|hub| hub.retrieval_before),
            hub_retrieval: retrieval_after,
            hub_round_trip_error: hub.as_ref().map(|hub| hub.round_trip_error),
            selection,
            quantisation,
            timings: Timings {
                emit: 0.0,
                capture: capture_seconds,
                hub: hub_seconds,
                fine_tune: fine_tune_seconds,
                measure: measure_seconds,
                total: started.elapsed().as_secs_f64(),
            },
        };
        Ok(TransferOutcome {
            receiver: tuned,
            quantised,
            report,
        })
    }
}

/// Held-out retrieval accuracy of the receiver's hub vectors among the transmitter's.
fn retrieval(
    side: &HubSide,
    options: &TransferOptions,
    transmitter_hub: ArrayView2<f32>,
    receiver: &Observed,
) -> Result<f64> {
    Ok(metrics::retrieval_accuracy(
        side.embed_array(deepest(receiver))?.view(),
        transmitter_hub,
        options.hub.batch_size,
    )?)
}

/// The learning-rate schedule of `total` fine-tuning steps: the warm-up's epochs of them (at
/// the average epoch's steps), then constant or a cosine decay.
fn schedule(options: &TransferOptions, total: usize) -> Schedule {
    let per_epoch = total as f64 / options.epochs as f64;
    let warmup = (options.warmup_epochs * per_epoch).round() as usize;
    match (options.cosine_decay, warmup) {
        (true, _) => Schedule::WarmupCosine { warmup, total },
        (false, 0) => Schedule::Constant,
        (false, _) => Schedule::Warmup { warmup },
    }
}

/// Fine-tunes the receiver (and its hub encoder) on the objective; returns the steps taken.
/// Epoch 0 learns from the training inputs (with the hub term, when on); each later epoch
/// from the next synthetic set, or the training inputs again when there is none.
///
/// It trains on `rows.train` only; with a selection slice, it scores the receiver on it after
/// every epoch, stops after `options.patience` epochs without a better state, and ends with
/// the best state seen (the start included), reporting what it chose.
#[allow(clippy::too_many_arguments)]
fn fine_tune(
    options: &TransferOptions,
    receiver: &mut ReceiverGraph,
    hub: Option<&HubSide>,
    knowledge: &Knowledge,
    train: &Dataset,
    rows: &TrainingRows,
    outputs_agree: bool,
    before_epoch: &mut dyn FnMut(&mut TrainableGraph, usize) -> Result<()>,
    progress: &mut dyn FnMut(usize, usize) -> Result<()>,
) -> Result<(usize, Option<SelectionReport>)> {
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
    if let Some(hub) = hub {
        let encoder = hub.encoder_variables();
        rate_scales.extend(std::iter::repeat_n(1.0, encoder.len()));
        variables.extend(encoder);
    }
    let sets = knowledge.header.synthetic_sets;
    let epoch_rows: Vec<Vec<usize>> = (0..options.epochs)
        .map(|epoch| {
            let set = (epoch > 0 && sets > 0).then(|| (epoch - 1) % sets);
            rows.trained_in(set, options.augmentation, knowledge.header.recipe.seed)
        })
        .collect();
    let total = epoch_rows
        .iter()
        .map(|rows| rows.len().div_ceil(options.batch_size))
        .sum();
    let optimizer = Optimizer::new(
        variables,
        OptimizerOptions {
            kind: OptimizerKind::ADAM,
            learning_rate: options.learning_rate,
            schedule: schedule(options, total),
            clip_norm: None,
        },
    )
    .with_rate_scales(rate_scales)?;
    let averaged_from = averaging(options.weight_averaging, total);
    let mut optimizer = match averaged_from {
        Some((decay, from_step)) => optimizer.with_averaging(decay, from_step)?,
        None => optimizer,
    };
    let score = |receiver: &ReceiverGraph, slice: &SelectionInputs| {
        slice.score(receiver, objective, hub, outputs_agree)
    };
    let mut selection = rows
        .selection
        .as_ref()
        .map(|slice| -> Result<_> {
            let start = Snapshot::take(&receiver.graph)?;
            let back_offs = if options.augmentation.leaves_given_distribution() {
                0
            } else {
                MAX_BACK_OFFS
            };
            let selector = Selector::new(slice.len(), score(receiver, slice)?, options.patience)
                .with_back_offs(back_offs);
            Ok((slice, selector, start, None::<Snapshot>))
        })
        .transpose()?;
    let mut rng = ChaCha8Rng::seed_from_u64(options.seed ^ ORDER_SEED);
    let mut steps = 0;
    for (epoch, mut order) in epoch_rows.into_iter().enumerate() {
        before_epoch(&mut receiver.graph, epoch)?;
        let synthetic = if epoch == 0 || sets == 0 {
            None
        } else {
            let set = (epoch - 1) % sets;
            let seed = knowledge.header.recipe.seed;
            synthetic_inputs(options.augmentation, seed, set, &train.inputs)?
                .map(|inputs| (inputs, knowledge.synthetic_set(set)))
        };
        let (inputs, targets, hub_targets) = match &synthetic {
            Some((inputs, targets)) => (inputs, targets.view(), None),
            None => (
                &train.inputs,
                knowledge.train_targets.view(),
                hub.and(knowledge.hub.as_ref())
                    .map(|vectors| &vectors.train),
            ),
        };
        order.shuffle(&mut rng);
        for batch in order.chunks(options.batch_size) {
            let (value, gradients) = step::gradients(
                receiver,
                objective,
                hub,
                &StepBatch {
                    inputs,
                    targets,
                    hub_targets,
                    batch,
                    outputs_agree,
                },
            )?;
            if !value.is_finite() {
                return Err(Error::Diverged(format!(
                    "fine-tuning diverged at step {steps} (loss {value}); lower the learning rate"
                )));
            }
            optimizer.step(&gradients)?;
            steps += 1;
            progress(steps, total)?;
        }
        if let Some((slice, selector, _, best)) = &mut selection {
            if selector.offer(Candidate::Epoch(epoch + 1), score(receiver, slice)?) {
                *best = Some(Snapshot::take(&receiver.graph)?);
            }
            if selector.back_off() {
                best.as_ref()
                    .expect("a state improved on the start, so it was kept")
                    .restore(&mut receiver.graph)?;
                optimizer.back_off(0.5);
            }
            if selector.should_stop() {
                break;
            }
        }
    }
    optimizer.use_averages()?;
    let Some((slice, mut selector, start, best)) = selection else {
        return Ok((steps, None));
    };
    let averaged = averaged_from.is_some_and(|(_, from_step)| steps > from_step);
    if averaged {
        selector.offer(Candidate::Average, score(receiver, slice)?);
    }
    // The graph holds the end state; another choice is put back.
    if selector.chosen() == Candidate::Start {
        start.restore(&mut receiver.graph)?;
    } else if !selector.keeps_end() {
        best.expect("a trained state was chosen, so it was kept")
            .restore(&mut receiver.graph)?;
    }
    Ok((steps, Some(selector.report(options.epochs))))
}

/// The training rows fine-tuning learns from, and the set-aside slice it chooses on.
struct TrainingRows {
    split: RowSplit,
    selection: Option<SelectionInputs>,
}

impl TrainingRows {
    /// Sets aside `options.selection_share` of `train` (seeded by `options.seed`) with the
    /// knowledge's targets for those rows.
    /// The rows trained on in an epoch on synthetic set `set` (`None`: the given inputs),
    /// leaving out the synthetic inputs that copy values from a set-aside input: the receiver
    /// never sees what it is chosen on.
    fn trained_in(&self, set: Option<usize>, augmentation: Augmentation, seed: u64) -> Vec<usize> {
        let rows = self.split.train.len() + self.split.selection.len();
        let partners = set
            .filter(|_| !self.split.selection.is_empty())
            .and_then(|set| synthetic_partners(augmentation, seed, set, rows));
        let Some(partners) = partners else {
            return self.split.train.clone();
        };
        let mut set_aside = vec![false; rows];
        for &row in &self.split.selection {
            set_aside[row] = true;
        }
        self.split
            .train
            .iter()
            .copied()
            .filter(|&row| !set_aside[partners[row]])
            .collect()
    }

    fn new(
        options: &TransferOptions,
        knowledge: &Knowledge,
        train: &Dataset,
        with_hub: bool,
    ) -> Self {
        let split = set_aside(train.len(), options.selection_share, options.seed);
        let selection = (!split.selection.is_empty()).then(|| SelectionInputs {
            inputs: train.inputs.select_rows(&split.selection),
            targets: knowledge.train_targets.select(Axis(0), &split.selection),
            hub: knowledge
                .hub
                .as_ref()
                .filter(|_| with_hub)
                .map(|vectors| vectors.train.select(Axis(0), &split.selection)),
        });
        Self { split, selection }
    }
}

/// Set-aside inputs with the transmitter's soft targets and (with the hub term) hub vectors.
struct SelectionInputs {
    inputs: Tensor,
    targets: Array2<f32>,
    hub: Option<Array2<f32>>,
}

impl SelectionInputs {
    /// Rows scored on: the hub term compares every row with the others of its group, so the
    /// groups stay large.
    const GROUP: usize = 256;

    fn len(&self) -> usize {
        self.targets.nrows()
    }

    /// How closely `receiver` follows the transmitter here: agreement of the top-1 classes
    /// and the objective's loss (mean over groups of rows, weighted by their size).
    fn score(
        &self,
        receiver: &ReceiverGraph,
        objective: &Objective,
        hub: Option<&HubSide>,
        outputs_agree: bool,
    ) -> Result<SelectionScore> {
        let rows = self.len();
        let mut logits = Vec::new();
        let mut loss = 0.0;
        for start in (0..rows).step_by(Self::GROUP) {
            let group: Vec<usize> = (start..(start + Self::GROUP).min(rows)).collect();
            let hub_rows = self.hub.as_ref().map(|hub| hub.select(Axis(0), &group));
            let targets = Targets::new(
                objective,
                self.targets.select(Axis(0), &group).view(),
                hub_rows.as_ref().map(|rows| rows.view()),
                outputs_agree,
                receiver.graph.device(),
            )?;
            let (group_logits, features) = receiver.forward(&self.inputs.select_rows(&group))?;
            let group_loss = objective
                .loss(&group_logits.detach(), &features.detach(), hub, &targets)
                .and_then(|loss| loss.to_scalar::<f32>())
                .map_err(Error::compute(FINE_TUNING))?;
            loss += f64::from(group_loss) * group.len() as f64 / rows as f64;
            logits.push(to_matrix(&group_logits.detach())?);
        }
        let agreement = if outputs_agree {
            let views: Vec<_> = logits.iter().map(|part| part.view()).collect();
            let logits = ndarray::concatenate(Axis(0), &views)
                .map_err(|error| Error::Shape(error.to_string()))?;
            Some(metrics::top1_agreement(self.targets.view(), logits.view())?)
        } else {
            None
        };
        Ok(SelectionScore { agreement, loss })
    }
}

/// What fine-tuning on the grid shares with the float fine-tuning before it.
struct Tuning<'a> {
    options: &'a TransferOptions,
    hub: Option<&'a HubSide>,
    knowledge: &'a Knowledge,
    train: &'a Dataset,
    rows: &'a TrainingRows,
    outputs_agree: bool,
}

/// The knowledge a receiver learns on the grid from its float counterpart (the state `receiver`
/// holds before calibration): the soft targets of its own float outputs on the training inputs
/// and on the synthetic sets `epochs` epochs of fine-tuning use, with no hub vectors.
fn float_teacher(
    receiver: &ReceiverGraph,
    knowledge: &Knowledge,
    train: &Dataset,
    options: &TransferOptions,
    epochs: usize,
) -> Result<Knowledge> {
    let temperature = options.objective.temperature;
    let soft_targets = |inputs: &Tensor| -> Result<Array2<f32>> {
        Ok(log_softmax_rows(
            receiver.observe_taps(inputs, &[])?.logits.view(),
            temperature,
        ))
    };
    let train_targets = soft_targets(&train.inputs)?;
    let seed = knowledge.header.recipe.seed;
    let mut sets = Vec::new();
    for set in 0..knowledge
        .header
        .synthetic_sets
        .min(epochs.saturating_sub(1))
    {
        if let Some(inputs) = synthetic_inputs(options.augmentation, seed, set, &train.inputs)? {
            sets.push(soft_targets(&inputs)?);
        }
    }
    let classes = train_targets.ncols();
    let views: Vec<_> = sets.iter().map(|targets| targets.view()).collect();
    let synthetic_targets = if views.is_empty() {
        Array2::zeros((0, classes))
    } else {
        ndarray::concatenate(Axis(0), &views).map_err(|error| Error::Shape(error.to_string()))?
    };
    Ok(Knowledge {
        header: KnowledgeHeader {
            synthetic_sets: sets.len(),
            ..knowledge.header.clone()
        },
        train_targets,
        validation_targets: Array2::zeros((0, classes)),
        synthetic_targets,
        hub: None,
    })
}

/// ModeAQ after the float fine-tuning: calibrates, fine-tunes on the grid (recalibrating the
/// activation ranges at the start of each epoch but the frozen last ones) toward the teacher
/// `aware` names, exports the quantised receiver and measures it against `float`.
fn quantise_receiver(
    receiver: &mut ReceiverGraph,
    float: &OnnxModel,
    aware: &QuantisationAware,
    tuning: &Tuning,
    what: &Measurement,
    progress: &mut dyn FnMut(Progress) -> Result<()>,
) -> Result<(OnnxModel, QuantisationReport)> {
    let started = Instant::now();
    let plan = quantise::plan_for(
        float,
        &receiver.graph,
        &tuning.train.inputs,
        receiver.plan,
        aware,
    )?;
    let epochs = aware.training_epochs();
    // The float teacher's targets come from the state before any rounding.
    let own = match aware.teacher {
        QatTeacher::Float if epochs > 0 => {
            let knowledge = float_teacher(
                receiver,
                tuning.knowledge,
                tuning.train,
                tuning.options,
                epochs,
            )?;
            let rows = TrainingRows::new(tuning.options, &knowledge, tuning.train, false);
            Some((knowledge, rows))
        }
        _ => None,
    };
    if aware.quantisation.precision.is_integer() {
        quantise::calibrate(
            &mut receiver.graph,
            &plan,
            &aware.quantisation,
            &tuning.train.inputs,
        )?;
    }
    let (steps, selection) = if epochs == 0 {
        (0, None)
    } else {
        // What the receiver learns: its float outputs alone, or everything Mode A learned.
        let (knowledge, rows, hub, objective, outputs_agree) = match &own {
            Some((knowledge, rows)) => (
                knowledge,
                rows,
                None,
                Objective {
                    temperature: tuning.options.objective.temperature,
                    ..Objective::OUTPUT_ONLY
                },
                true,
            ),
            None => (
                tuning.knowledge,
                tuning.rows,
                tuning.hub,
                tuning.options.objective,
                tuning.outputs_agree,
            ),
        };
        let options = TransferOptions {
            epochs,
            learning_rate: tuning.options.learning_rate * aware.learning_rate_scale,
            objective,
            ..*tuning.options
        };
        let calibrating = epochs - aware.frozen_epochs;
        fine_tune(
            &options,
            receiver,
            hub,
            knowledge,
            tuning.train,
            rows,
            outputs_agree,
            &mut |graph, epoch| {
                if epoch > 0 && epoch < calibrating {
                    quantise::calibrate(graph, &plan, &aware.quantisation, &tuning.train.inputs)?;
                }
                Ok(())
            },
            &mut |done, total| {
                progress(Progress {
                    phase: Phase::QuantisationAware,
                    done,
                    total,
                })
            },
        )?
    };
    let latent = receiver.graph.trained_model()?;
    let grids = receiver.graph.fake_quantisation().activations.clone();
    receiver.graph.set_fake_quantisation(Default::default())?;
    let quantised = tessera_quant::export::export_with(
        &latent,
        &plan,
        &grids,
        &aware.quantisation,
        aware.activation_storage,
    )?;
    let twin = if quantise::executor_reads(what.executor, &aware.quantisation) {
        None
    } else {
        Some(quantise::dequantised_twin(&latent, &plan)?)
    };
    let mut report = quantise::measure(
        float,
        &quantised,
        twin.as_ref(),
        aware,
        what,
        (&plan, &grids),
        (epochs, steps),
        started,
    )?;
    report.selection = selection;
    let quantised = quantise::with_summary(&quantised, &report.summary())?;
    Ok((quantised, report))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_input_trained_on_copies_from_the_set_aside_ones() {
        let rows = TrainingRows {
            split: set_aside(200, 0.1, 3),
            selection: None,
        };
        let selection = &rows.split.selection;
        assert_eq!(
            rows.trained_in(None, Augmentation::Mix, 7),
            rows.split.train
        );
        let partners = synthetic_partners(Augmentation::Mix, 7, 2, 200).unwrap();
        let trained = rows.trained_in(Some(2), Augmentation::Mix, 7);
        assert!(trained.iter().all(|row| !selection.contains(row)));
        assert!(trained
            .iter()
            .all(|row| !selection.contains(&partners[*row])));
        // Only the rows that copy from a set-aside one are left out.
        let copying = rows
            .split
            .train
            .iter()
            .filter(|row| selection.contains(&partners[**row]))
            .count();
        assert!(copying > 0);
        assert_eq!(trained.len() + copying, rows.split.train.len());
        // Fresh samples copy nothing.
        assert_eq!(
            rows.trained_in(Some(2), Augmentation::SampleDomain, 7),
            rows.split.train
        );
    }

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
