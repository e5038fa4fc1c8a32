//! The figures `tessera bench cross-arch` records: one row per transfer (an ordered pair of zoo
//! models under one objective variant), the predecessor's numbers for the same pairs, and the
//! run's context. Serialised as the benchmark's JSON and rendered to HTML and PNG charts.

use serde::{Deserialize, Serialize};

/// Everything one `tessera bench cross-arch` run measured.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CrossArchResults {
    /// When the run started (RFC 3339).
    pub started: String,
    /// The machine, in words (cores, memory).
    pub machine: String,
    /// `quick` (the predecessor's five toy configs) or `full` (every exported config).
    pub mode: String,
    /// Hub width used by every transfer.
    pub hub_dim: usize,
    /// Peak resident memory of the whole run, MiB.
    pub peak_rss_mib: f64,
    /// Wall-clock seconds of the whole run.
    pub total_seconds: f64,
    /// One entry per task (zoo dataset) benchmarked, e.g. `toy` and `digits`.
    pub tasks: Vec<TaskResults>,
}

/// The pair matrix of one task.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskResults {
    /// Zoo task name, e.g. `toy`.
    pub task: String,
    /// Unlabelled training inputs given to every transfer.
    pub train_inputs: usize,
    /// Held-out inputs every figure is measured on.
    pub val_inputs: usize,
    /// The objective variants run, in order; the first is the default (full) objective.
    pub variants: Vec<VariantInfo>,
    /// One row per (variant, ordered pair).
    pub rows: Vec<PairResult>,
    /// The predecessor's numbers for the same pairs (toy quick set only), if available.
    pub predecessor: Vec<PredecessorPair>,
}

/// One objective variant (the full objective, or an ablation).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VariantInfo {
    /// Short name, e.g. `full`, `output-only`, `hub-only`, `full+domain-sampling`.
    pub name: String,
    /// What it changes, in words.
    pub description: String,
}

/// One transfer: a transmitter's knowledge into a receiver, under one variant.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PairResult {
    /// Variant name (see [`VariantInfo::name`]).
    pub variant: String,
    /// Transmitter config, e.g. `transformer_64d_2L`.
    pub transmitter: String,
    /// Receiver config.
    pub receiver: String,
    /// Transmitter's validation accuracy.
    pub tx_accuracy: f64,
    /// Receiver's validation accuracy before transfer.
    pub rx_accuracy_before: f64,
    /// Receiver's validation accuracy after transfer.
    pub rx_accuracy_after: f64,
    /// Top-1 agreement with the transmitter on validation inputs, before.
    pub agreement_before: f64,
    /// Top-1 agreement with the transmitter on validation inputs, after.
    pub agreement_after: f64,
    /// Mean KL(transmitter ‖ receiver) of the output distributions, before.
    pub kl_before: f64,
    /// Mean KL(transmitter ‖ receiver) of the output distributions, after.
    pub kl_after: f64,
    /// Debiased linear CKA between the two models' last tap representations, after.
    pub cka_after: f64,
    /// Held-out retrieval accuracy of matching inputs in the hub space.
    pub hub_retrieval: f64,
    /// Hub round-trip (encode, decode) relative error of the receiver's representation.
    pub round_trip_error: f64,
    /// The predecessor's drift (diagonal-Gaussian KL, neuron i vs neuron i), after.
    pub drift: f64,
    /// Wall-clock seconds of the transfer (capture, hub, fine-tuning, measurement, packaging).
    pub seconds: f64,
}

/// The predecessor's figures for one ordered pair of the toy quick set.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PredecessorPair {
    /// Transmitter config.
    pub transmitter: String,
    /// Receiver config.
    pub receiver: String,
    /// Accuracy change it publishes (points), if the pair is in its published table.
    pub published_accuracy_change: Option<f64>,
    /// Its validation agreement after transfer, re-measured on this machine.
    pub agreement_after: Option<f64>,
    /// Its receiver validation accuracy after transfer, re-measured.
    pub rx_accuracy_after: Option<f64>,
    /// Its transmitter's validation accuracy, re-measured.
    pub tx_accuracy: Option<f64>,
    /// Seconds of its `ModeATransfer.execute()`, re-measured.
    pub seconds: Option<f64>,
}
