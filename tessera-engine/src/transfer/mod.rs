//! Mode A: label-free transfer between two architectures, in two halves. The transmitter's
//! owner **emits** knowledge ([`Emitter`]): the transmitter's soft targets on reference inputs
//! (and on synthetic inputs made from them by a seeded recipe), optionally its hub vectors,
//! and the recipe. The receiver's owner **absorbs** it ([`Absorber`]) on the same inputs:
//! aligns the receiver's hub side with the transmitter's vectors, fine-tunes the receiver's
//! own weights until it behaves like the transmitter, and measures on held-out inputs. The
//! knowledge travels as a TBF token ([`Knowledge::save`] / [`Knowledge::load`]);
//! [`ModeATransfer`] runs both halves in one process, through the same code.
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

mod absorb;
mod emit;
mod inputs;
mod knowledge;
mod measure;
mod objective;
mod options;
mod quantise;
mod release;
mod report;
mod selection;
mod step;
mod token;

use ndarray::ArrayView2;
use tessera_api::AdapterPlan;

use tessera_onnx::OnnxModel;
use tessera_tensor::dataset::Dataset;
use tessera_tensor::tensor::{Dim, TensorSpec};

use crate::plugin::PluginRegistry;
use crate::{Error, Result};

pub use absorb::Absorber;
pub use emit::{Emitter, Reference};
pub use inputs::{mix, mix_partners, sample_domain};
pub use knowledge::{
    hold_out, synthetic_inputs, synthetic_partners, HubVectors, InputFingerprint, Knowledge,
    KnowledgeHeader, Split, TransmitterSummary, DEFAULT_HOLD_OUT,
};
pub use measure::{fidelity, DepthCka, Fidelity, Observed};
pub use objective::Objective;
pub use options::{Augmentation, TransferOptions};
pub use quantise::{
    time_side_by_side, Clipping, InferenceTiming, QatTeacher, QuantisationAware,
    QuantisationReport, QuantisedSummary, TapSqnr, FIDELITY_METADATA_KEY,
};
pub use release::KnowledgePrivacy;
pub use report::{ModelSummary, Timings, TransferReport};
pub use selection::{
    Candidate, SelectionOutcome, SelectionReport, SelectionScore, MIN_SELECTION_INPUTS,
};
pub use token::{KNOWLEDGE_FORMAT, KNOWLEDGE_KEY};

/// Samples per batch when running a model only to observe it.
const OBSERVE_BATCH: usize = 64;

/// The phases a transfer goes through, for progress reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Running the models on the inputs and held-out inputs.
    Capture,
    /// Training the receiver's hub side (unit: epochs).
    Hub,
    /// Fine-tuning the receiver (unit: steps).
    FineTune,
    /// Fine-tuning the receiver on its integer grid, ModeAQ (unit: steps).
    QuantisationAware,
    /// Measuring on held-out inputs.
    Measure,
}

impl Phase {
    /// The phase in a word or two, for progress displays.
    pub fn label(self) -> &'static str {
        match self {
            Phase::Capture => "capture",
            Phase::Hub => "hub",
            Phase::FineTune => "fine-tune",
            Phase::QuantisationAware => "on the grid",
            Phase::Measure => "measure",
        }
    }
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

/// A Mode A transfer from a transmitter into a receiver in one process (emit, then absorb),
/// configured by builder methods.
pub struct ModeATransfer<'m> {
    transmitter: Participant<'m>,
    receiver: Participant<'m>,
    options: TransferOptions,
    quantisation: Option<QuantisationAware>,
}

/// What a transfer or an absorption produced.
pub struct TransferOutcome {
    /// The receiver with its fine-tuned weights, ready to save as ONNX (the float one, for a
    /// quantisation-aware transfer).
    pub receiver: OnnxModel,
    /// The quantised receiver as standard ONNX (ModeAQ only); its measurements are in
    /// [`TransferReport::quantisation`].
    pub quantised: Option<OnnxModel>,
    /// Everything measured.
    pub report: TransferReport,
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

fn deepest(observed: &Observed) -> ArrayView2<'_, f32> {
    observed.taps[observed.taps.len() - 1].1.view()
}

/// Refuses a participant that does not take exactly one input, or that `datasets` do not fit.
fn check_single_input(participant: &Participant, datasets: &[&Dataset]) -> Result<()> {
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
    for dataset in datasets {
        dataset.check_fits(input)?;
    }
    Ok(())
}

/// Refuses a pair whose models read different inputs (an image model and a token model): both
/// are fed the same samples, so their single inputs must agree in type and in every fixed
/// dimension after the batch.
fn check_same_inputs(transmitter: &Participant, receiver: &Participant) -> Result<()> {
    let (sent, received) = (transmitter.model.inputs(), receiver.model.inputs());
    let ([sent], [received]) = (sent.as_slice(), received.as_slice()) else {
        return Ok(());
    };
    let fixed = |spec: &TensorSpec| -> Vec<Option<usize>> {
        spec.shape
            .iter()
            .skip(1)
            .map(|dim| match dim {
                Dim::Fixed(len) => Some(*len),
                Dim::Symbolic(_) => None,
            })
            .collect()
    };
    let (a, b) = (fixed(sent), fixed(received));
    let dims_agree = a.len() == b.len()
        && a.iter()
            .zip(&b)
            .all(|(x, y)| x.is_none() || y.is_none() || x == y);
    if sent.dtype == received.dtype && dims_agree {
        return Ok(());
    }
    Err(Error::InvalidOption(format!(
        "the transmitter reads {:?} as {} {} but the receiver reads {:?} as {} {}: both models \
         are fed the same inputs, so they must take the same kind of input (type and every \
         dimension after the batch); pair models of one modality",
        sent.name,
        sent.dtype,
        sent.shape_text(),
        received.name,
        received.dtype,
        received.shape_text()
    )))
}

/// Refuses a recipe that cannot fine-tune.
fn check_recipe(options: &TransferOptions) -> Result<()> {
    if options.epochs == 0 || options.batch_size == 0 {
        return Err(Error::InvalidOption(
            "fine-tuning needs at least one epoch and a batch size of at least 1".into(),
        ));
    }
    let share = options.weight_averaging;
    if !(0.0..=1.0).contains(&share) {
        return Err(Error::InvalidOption(format!(
            "the weight-averaging horizon is a share of the fine-tuning steps between 0 (off) \
             and 1, not {share}"
        )));
    }
    let warmup = options.warmup_epochs;
    if !(0.0..=options.epochs as f64).contains(&warmup) {
        return Err(Error::InvalidOption(format!(
            "the warm-up lasts between 0 (none) and the {} fine-tuning epochs, not {warmup}",
            options.epochs
        )));
    }
    let selection = options.selection_share;
    if !(0.0..0.5).contains(&selection) {
        return Err(Error::InvalidOption(format!(
            "the selection share is the share of the training inputs set aside to choose the \
             best state, from 0 (off) up to 0.5, not {selection}"
        )));
    }
    let scale = options.embedding_rate_scale;
    if !(scale.is_finite() && scale > 0.0) {
        return Err(Error::InvalidOption(format!(
            "the embedding learning-rate scale must be a positive number, not {scale}"
        )));
    }
    if options.objective.output_weight <= 0.0 && options.objective.hub_weight <= 0.0 {
        return Err(Error::InvalidOption(
            "the objective has no term: give output matching or hub alignment a positive weight"
                .into(),
        ));
    }
    Ok(())
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
            quantisation: None,
        }
    }

    /// Makes the transfer quantisation-aware (ModeAQ): the receiver ends on an INT8, INT4 or
    /// FP16 grid and is exported quantised, measured against its float counterpart.
    pub fn quantisation(mut self, aware: QuantisationAware) -> Self {
        self.quantisation = Some(aware);
        self
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
        Ok(self
            .execute_with_progress(train, validation, &mut |_| Ok(()))?
            .0)
    }

    /// [`execute`](Self::execute), telling `progress` where it is; also returns the knowledge
    /// the transmitter emitted (what a token of this transfer carries).
    pub fn execute_with_progress(
        &self,
        train: &Dataset,
        validation: &Dataset,
        progress: &mut dyn FnMut(Progress) -> Result<()>,
    ) -> Result<(TransferOutcome, Knowledge)> {
        check_recipe(&self.options)?;
        check_same_inputs(&self.transmitter, &self.receiver)?;
        check_single_input(&self.receiver, &[train, validation])?;
        progress(Progress {
            phase: Phase::Capture,
            done: 0,
            total: 2,
        })?;
        let emission = Emitter::new(self.transmitter.clone())
            .options(self.options)
            .hub_vectors(self.options.objective.hub_weight > 0.0)
            .emission(Reference::Separate { train, validation })?;
        let mut absorber = Absorber::new(self.receiver.clone())
            .device(self.options.device)
            .executor(self.options.executor);
        if let Some(aware) = self.quantisation {
            absorber = absorber.quantisation(aware);
        }
        let mut outcome = absorber.absorb_with(
            &emission.knowledge,
            train,
            validation,
            Some(emission.validation_view),
            progress,
        )?;
        let timings = &mut outcome.report.timings;
        timings.emit = emission.seconds;
        timings.total += emission.seconds;
        let mut knowledge = emission.knowledge;
        knowledge.header.quantised_receiver = outcome
            .report
            .quantisation
            .as_ref()
            .map(QuantisationReport::summary);
        Ok((outcome, knowledge))
    }
}
