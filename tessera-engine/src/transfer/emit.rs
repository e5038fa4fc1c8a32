//! The transmitter's half of a transfer: run only the transmitter on the reference inputs (and
//! the synthetic sets made from them) and keep what a receiver needs to learn from it.

use std::time::Instant;

use candle_core::Device;
use ndarray::{Array2, ArrayView2, Axis};

use super::knowledge::{
    hold_out, synthetic_inputs, HubVectors, InputFingerprint, Knowledge, KnowledgeHeader, Split,
    TransmitterSummary,
};
use super::measure::Observed;
use super::options::{Augmentation, TransferOptions};
use super::report::ModelSummary;
use super::{check_single_input, deepest, first_output, Participant, OBSERVE_BATCH};
use crate::backend::Backend;
use crate::capture::{CaptureOptions, Capturer};
use crate::parallel::in_parallel;
use crate::pooling::pool;
use crate::uhs::HubEncoder;
use crate::{Error, Result};
use tessera_api::AdapterPlan;
use tessera_tensor::dataset::Dataset;

/// The reference inputs knowledge is emitted for.
#[derive(Debug, Clone, Copy)]
pub enum Reference<'d> {
    /// One set of inputs; a seeded share of it is held out for measurement.
    HoldOut {
        /// The inputs.
        inputs: &'d Dataset,
        /// The share held out, strictly between 0 and 1.
        share: f64,
    },
    /// Inputs to learn from and separate inputs to measure on.
    Separate {
        /// The inputs the receiver learns from.
        train: &'d Dataset,
        /// The held-out inputs.
        validation: &'d Dataset,
    },
}

/// Emits a transmitter's knowledge, configured by builder methods.
///
/// ```no_run
/// use tessera_engine::config::Config;
/// use tessera_engine::plugin::PluginRegistry;
/// use tessera_engine::transfer::{Emitter, Participant, Reference};
/// use tessera_onnx::OnnxModel;
/// use tessera_tensor::dataset::Dataset;
/// # fn main() -> tessera_engine::Result<()> {
/// let registry = PluginRegistry::discover(&Config::default(), Vec::new());
/// let transmitter = OnnxModel::load("teacher.onnx".as_ref())?;
/// let plan = registry.choose_adapter(&transmitter, None)?.plan;
/// let inputs = Dataset::load("reference.npy".as_ref(), None)?;
/// let knowledge = Emitter::new(Participant::new(&transmitter, plan)?)
///     .seed(7)
///     .emit(Reference::HoldOut { inputs: &inputs, share: 0.2 })?;
/// knowledge.save("knowledge.tbf".as_ref(), &Default::default())?;
/// # Ok(()) }
/// ```
pub struct Emitter<'m> {
    transmitter: Participant<'m>,
    options: TransferOptions,
    hub_vectors: bool,
}

/// Knowledge, and what the transmitter showed of itself on the held-out inputs (its logits
/// and taps): the latter never leaves the process, but lets a one-process transfer compare
/// representations.
pub(super) struct Emission {
    pub knowledge: Knowledge,
    pub validation_view: Observed,
    pub seconds: f64,
}

/// Runs the transmitter through an executor, keeping its output and pooled taps.
struct TransmitterRunner<'p> {
    capturer: Capturer,
    plan: &'p AdapterPlan,
}

impl<'p> TransmitterRunner<'p> {
    fn new(participant: &'p Participant, options: &TransferOptions) -> Result<Self> {
        let mut names = vec![first_output(participant.model())?];
        names.extend(participant.plan().taps.iter().map(|tap| tap.tensor.clone()));
        let capturer = Capturer::new(
            participant.model(),
            &names,
            &CaptureOptions {
                executor: options.executor,
                batch_size: OBSERVE_BATCH,
            },
        )?;
        Ok(Self {
            capturer,
            plan: participant.plan(),
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

/// Row-wise log-softmax of `logits / temperature`, computed in f64.
pub(super) fn log_softmax_rows(logits: ArrayView2<f32>, temperature: f64) -> Array2<f32> {
    let mut out = Array2::zeros(logits.dim());
    for (row, mut target) in logits.outer_iter().zip(out.outer_iter_mut()) {
        let scaled: Vec<f64> = row.iter().map(|&v| f64::from(v) / temperature).collect();
        let max = scaled.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let log_sum = max + scaled.iter().map(|v| (v - max).exp()).sum::<f64>().ln();
        for (slot, value) in target.iter_mut().zip(&scaled) {
            *slot = (value - log_sum) as f32;
        }
    }
    out
}

/// The transmitter's soft targets on synthetic sets `0..sets` of `train`. tract runs on the
/// calling thread, so with tract the sets are shared among one executor per core; ONNX
/// Runtime spreads each operator over the cores itself.
fn synthetic_targets(
    transmitter: &Participant,
    options: &TransferOptions,
    train: &Dataset,
    sets: usize,
) -> Result<Vec<Array2<f32>>> {
    let workers = match options.executor.backend {
        Backend::Tract => std::thread::available_parallelism().map_or(1, |cores| cores.get()),
        _ => 1,
    }
    .clamp(1, sets.max(1));
    let work = |worker: usize| -> Result<Vec<(usize, Array2<f32>)>> {
        let output = vec![first_output(transmitter.model())?];
        let mut capturer = Capturer::new(
            transmitter.model(),
            &output,
            &CaptureOptions {
                executor: options.executor,
                batch_size: OBSERVE_BATCH,
            },
        )?;
        (worker..sets)
            .step_by(workers)
            .map(|set| {
                let made =
                    synthetic_inputs(options.augmentation, options.seed, set, &train.inputs)?
                        .ok_or_else(|| Error::InvalidOption("no synthetic inputs".into()))?;
                let dataset = Dataset::new(made, None, train.source.clone())?;
                let captured = capturer.run(&dataset, &mut |_| {})?;
                let logits = captured.tensors[0]
                    .as_f32()
                    .and_then(|logits| logits.view().into_dimensionality().ok())
                    .ok_or_else(|| {
                        Error::Shape(
                            "the transmitter's output is not float32 [batch, classes]".into(),
                        )
                    })?;
                Ok((set, log_softmax_rows(logits, options.objective.temperature)))
            })
            .collect()
    };
    let worker_ids: Vec<usize> = (0..workers).collect();
    let mut targets: Vec<(usize, Array2<f32>)> = in_parallel(&worker_ids, |&worker| work(worker))?
        .into_iter()
        .flatten()
        .collect();
    targets.sort_by_key(|(set, _)| *set);
    Ok(targets.into_iter().map(|(_, set)| set).collect())
}

impl<'m> Emitter<'m> {
    /// An emitter for `transmitter` with the default recipe and no hub vectors.
    pub fn new(transmitter: Participant<'m>) -> Self {
        Self {
            transmitter,
            options: TransferOptions::default(),
            hub_vectors: false,
        }
    }

    /// The recipe (and the executor that runs the transmitter).
    pub fn options(mut self, options: TransferOptions) -> Self {
        self.options = options;
        self
    }

    /// The seed of the split, the synthetic sets and the hub encoder.
    pub fn seed(mut self, seed: u64) -> Self {
        self.options.seed = seed;
        self.options.hub.seed = seed;
        self
    }

    /// Whether the knowledge carries the transmitter's hub vectors (the hub term of the
    /// objective needs them; they are `hub width` floats per input).
    pub fn hub_vectors(mut self, include: bool) -> Self {
        self.hub_vectors = include;
        self
    }

    /// Runs the transmitter on `reference` and returns its knowledge.
    pub fn emit(&self, reference: Reference) -> Result<Knowledge> {
        Ok(self.emission(reference)?.knowledge)
    }

    pub(super) fn emission(&self, reference: Reference) -> Result<Emission> {
        let started = Instant::now();
        let options = &self.options;
        let (train, validation, split, inputs) = match reference {
            Reference::HoldOut { inputs, share } => {
                let (train, validation) = hold_out(inputs, share, options.seed)?;
                let split = Split::HoldOut {
                    share,
                    seed: options.seed,
                };
                (
                    train,
                    validation,
                    split,
                    InputFingerprint::of(&inputs.inputs),
                )
            }
            Reference::Separate { train, validation } => (
                train.clone(),
                validation.clone(),
                Split::Separate,
                InputFingerprint::of(&train.inputs),
            ),
        };
        check_single_input(&self.transmitter, &[&train, &validation])?;
        if options.objective.temperature.is_nan() || options.objective.temperature <= 0.0 {
            return Err(Error::InvalidOption(format!(
                "the softening temperature must be positive, not {}",
                options.objective.temperature
            )));
        }
        let temperature = options.objective.temperature;
        let mut runner = TransmitterRunner::new(&self.transmitter, options)?;
        let tx_train = runner.observe(&train)?;
        let tx_validation = runner.observe(&validation)?;
        let synthetic_sets = match options.augmentation {
            Augmentation::None => 0,
            _ => options.epochs.saturating_sub(1),
        };
        let synthetic = synthetic_targets(&self.transmitter, options, &train, synthetic_sets)?;
        let classes = tx_train.logits.ncols();
        let synthetic_targets = if synthetic.is_empty() {
            Array2::zeros((0, classes))
        } else {
            let views: Vec<_> = synthetic.iter().map(|set| set.view()).collect();
            ndarray::concatenate(Axis(0), &views).map_err(|e| Error::Shape(e.to_string()))?
        };
        let hub = self
            .hub_vectors
            .then(|| -> Result<HubVectors> {
                let encoder =
                    HubEncoder::transmitter(deepest(&tx_train), &options.hub, &Device::Cpu)?;
                Ok(HubVectors {
                    train: encoder.embed_array(deepest(&tx_train))?,
                    validation: encoder.embed_array(deepest(&tx_validation))?,
                })
            })
            .transpose()?;
        let knowledge = Knowledge {
            header: KnowledgeHeader {
                transmitter: TransmitterSummary::new(ModelSummary::of(&self.transmitter), classes),
                recipe: *options,
                inputs,
                train: InputFingerprint::of(&train.inputs),
                validation: InputFingerprint::of(&validation.inputs),
                split,
                synthetic_sets,
                privacy: Vec::new(),
                quantised_receiver: None,
            },
            train_targets: log_softmax_rows(tx_train.logits.view(), temperature),
            validation_targets: log_softmax_rows(tx_validation.logits.view(), temperature),
            synthetic_targets,
            hub,
        };
        knowledge.validate()?;
        Ok(Emission {
            knowledge,
            validation_view: tx_validation,
            seconds: started.elapsed().as_secs_f64(),
        })
    }
}
