//! What a transfer reports: the models, the settings, the measurements before and after, and
//! where the time went. Printed by the CLI and written by the benchmarks.

use serde::Serialize;

use super::measure::Fidelity;
use super::objective::Objective;
use super::options::Augmentation;
use super::quantise::QuantisationReport;
use super::selection::{SelectionOutcome, SelectionReport};
use super::Participant;
use crate::uhs::{HubOptions, HubReport};
use tessera_train::TrainingDevice;

/// One model of the pair, as its adapter read it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ModelSummary {
    /// The model's name (its file name).
    pub name: String,
    /// The family its adapter recognised.
    pub family: String,
    /// The width of its pooled representation.
    pub width: u64,
    /// Tap points read (one per block for the bundled adapters: the layer count).
    pub layers: usize,
}

impl ModelSummary {
    /// The summary of `participant`.
    pub(super) fn of(participant: &Participant) -> Self {
        Self {
            name: participant.model.name().to_string(),
            family: participant.plan.family.clone(),
            width: participant.plan.width,
            layers: participant.plan.taps.len(),
        }
    }
}

/// Seconds spent in each phase.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Timings {
    /// Emitting the transmitter's knowledge (0 when the knowledge came in a token).
    pub emit: f64,
    /// Running the receiver on the inputs and held-out inputs.
    pub capture: f64,
    /// Training the hub.
    pub hub: f64,
    /// Fine-tuning the receiver.
    pub fine_tune: f64,
    /// Measuring and packaging.
    pub measure: f64,
    /// The whole transfer.
    pub total: f64,
}

/// Everything a transfer measured, with the settings that produced it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TransferReport {
    /// `mode-a`, or `mode-aq` for a quantisation-aware transfer.
    pub method: String,
    /// The transmitter.
    pub transmitter: ModelSummary,
    /// The receiver.
    pub receiver: ModelSummary,
    /// The objective's weights.
    pub objective: Objective,
    /// The objective's short name.
    pub objective_name: String,
    /// Whether output matching was used (the output spaces agree and its weight is positive).
    pub output_matching: bool,
    /// How the inputs were enlarged.
    pub augmentation: Augmentation,
    /// The hub's settings (its width is `hub.dim`).
    pub hub: HubOptions,
    /// Fine-tuning epochs.
    pub epochs: usize,
    /// Fine-tuning batch size.
    pub batch_size: usize,
    /// Fine-tuning learning rate (the peak, with cosine decay).
    pub learning_rate: f64,
    /// Multiplier of the learning rate for the receiver's embedding tables.
    pub embedding_rate_scale: f64,
    /// Epochs the learning rate warmed up over.
    #[serde(default)]
    pub warmup_epochs: f64,
    /// Whether the learning rate decayed along a cosine.
    pub cosine_decay: bool,
    /// Horizon of the receiver's weight average as a share of the steps (0: off).
    pub weight_averaging: f64,
    /// Where the receiver fine-tuned and the hub trained.
    pub device: TrainingDevice,
    /// Fine-tuning steps taken.
    pub steps: usize,
    /// The seed.
    pub seed: u64,
    /// Unlabelled inputs used.
    pub train_inputs: usize,
    /// Held-out inputs measured on.
    pub validation_inputs: usize,
    /// Synthetic input sets the transmitter answered (one per epoch after the first, with
    /// augmentation).
    pub synthetic_sets: usize,
    /// The transmitter's held-out accuracy, when labels were given.
    pub transmitter_accuracy: Option<f64>,
    /// Fidelity of the receiver before the transfer.
    pub before: Fidelity,
    /// Fidelity of the receiver after the transfer.
    pub after: Fidelity,
    /// How training the receiver's hub side went (with the hub term only).
    pub hub_training: Option<HubReport>,
    /// Held-out retrieval accuracy in the hub right after hub training.
    pub hub_retrieval_before_fine_tuning: Option<f64>,
    /// Held-out retrieval accuracy in the hub after fine-tuning.
    pub hub_retrieval: Option<f64>,
    /// Held-out round-trip error of the receiver's hub side after hub training.
    pub hub_round_trip_error: Option<f64>,
    /// Which state of the fine-tuning was kept, and whether it improved on the start (with a
    /// selection slice).
    pub selection: Option<SelectionReport>,
    /// What quantising the receiver did (ModeAQ only).
    pub quantisation: Option<QuantisationReport>,
    /// Where the time went.
    pub timings: Timings,
}

impl TransferReport {
    /// Whether fine-tuning found nothing better than the start on the selection inputs, so
    /// the receiver returned is the one given.
    pub fn no_improvement(&self) -> bool {
        self.selection
            .as_ref()
            .is_some_and(|selection| selection.outcome == SelectionOutcome::NoImprovement)
    }
}
