//! What a Mode A transfer can be told: the objective's terms, how unlabelled inputs are
//! enlarged, the hub and the fine-tuning schedule.

use serde::{Deserialize, Serialize};

use tessera_train::TrainingDevice;

use crate::backend::ExecutorOptions;
use crate::uhs::HubOptions;

use super::objective::Objective;

/// How the unlabelled training inputs are enlarged, epoch by epoch. The transmitter is asked
/// about every new input; no labels are involved.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Augmentation {
    /// The given inputs only, every epoch.
    None,
    /// From the second epoch on, each input has a random contiguous span along its second axis
    /// (positions of a sequence, rows of an image) replaced by the same span of another given
    /// input. Uses only the given inputs' values, nothing known about their domain.
    Mix,
    /// From the second epoch on, fresh inputs drawn uniformly from the given inputs' value range
    /// (integers: every value between the smallest and largest seen; floats: the interval).
    /// Matches the toy task's domain (uniform random tokens) exactly; most real data is not
    /// uniform, so this is off unless asked for.
    SampleDomain,
}

impl Augmentation {
    /// The name used on the command line and in reports.
    pub fn name(self) -> &'static str {
        match self {
            Augmentation::None => "none",
            Augmentation::Mix => "mix",
            Augmentation::SampleDomain => "sample-domain",
        }
    }

    /// Whether the epochs after the first train on inputs of another distribution than the
    /// given ones: fresh inputs drawn from the value range. The receiver's agreement on the
    /// given inputs then dips for epochs while it learns the drawn ones (digits MLP → MLP: 0.81,
    /// then 0.39, back to 0.81 after nine), so such a dip says nothing about a collapse.
    pub fn leaves_given_distribution(self) -> bool {
        self == Augmentation::SampleDomain
    }

    /// Every augmentation, for listing the choices.
    pub const ALL: [Augmentation; 3] = [
        Augmentation::None,
        Augmentation::Mix,
        Augmentation::SampleDomain,
    ];
}

impl std::str::FromStr for Augmentation {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|augmentation| augmentation.name() == text)
            .ok_or_else(|| {
                let names: Vec<&str> = Self::ALL.iter().map(|a| a.name()).collect();
                format!("unknown augmentation {text:?}; use {}", names.join(", "))
            })
    }
}

/// Everything a Mode A transfer is configured with. [`Default`] gives the settings the
/// benchmark's targets were measured at.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct TransferOptions {
    /// The hub space and its training.
    pub hub: HubOptions,
    /// The fine-tuning objective.
    pub objective: Objective,
    /// How the unlabelled inputs are enlarged.
    pub augmentation: Augmentation,
    /// Passes over the (possibly enlarged) inputs while fine-tuning the receiver.
    pub epochs: usize,
    /// Samples per fine-tuning step.
    pub batch_size: usize,
    /// Adam's learning rate for the receiver's weights and its hub encoder.
    pub learning_rate: f64,
    /// Multiplier of the learning rate for the receiver's embedding tables (initializers read
    /// by `Gather`). Adam moves every weight by about the rate per step whatever its size;
    /// embedding rows start near unit scale, dense weights near 1/√fan-in, so at one rate the
    /// embeddings barely move and a receiver that cannot re-shape its token features (an MLP
    /// over flattened embeddings) cannot follow the transmitter. The default, 10, is about
    /// √fan-in of the zoo's 64–128-wide layers: an embedding row then moves by about the same
    /// share of its size per step as a dense weight does.
    pub embedding_rate_scale: f64,
    /// Epochs (of the average epoch's steps; a fraction is allowed) over which the learning
    /// rate rises linearly from near zero to its value (0: none). Adam's first steps divide by moment estimates made from
    /// a handful of gradients, so they move every weight by about the full rate in whatever
    /// direction those few batches point; a normalised network trained from scratch at a
    /// rate it takes later (a post-norm transformer student such as DistilBERT's, whose
    /// weights start at 0.02) can collapse to one constant answer in those steps and never
    /// leave it. The default, one epoch, costs the zoo's receivers nothing measurable. Counted
    /// in epochs, not as a share of the steps, so that a long schedule (domain sampling's 60
    /// epochs) does not spend its first epochs, the only ones on the given inputs, warming up.
    #[serde(default)]
    pub warmup_epochs: f64,
    /// Decay the learning rate to zero over the fine-tuning steps along a cosine (otherwise
    /// it stays constant).
    pub cosine_decay: bool,
    /// Horizon of the running average of the receiver's weights, as a share of the
    /// fine-tuning steps; the receiver ends with that average instead of the last step's
    /// weights (0 turns averaging off). At a constant learning rate the last step lands
    /// somewhere in the noise around the minimum; the average of the last tenth of the steps
    /// lands nearer it.
    pub weight_averaging: f64,
    /// Share of the training inputs set aside to choose the state fine-tuning ends with: the
    /// receiver never trains on them; after each epoch it is scored on them against the
    /// transmitter, and the best state is kept, the start included (0 turns selection off and
    /// the receiver ends with the schedule's last state). At least 16 inputs are set aside,
    /// and none when that would take over half of them.
    #[serde(default = "default_selection_share")]
    pub selection_share: f64,
    /// Epochs without a better state on the selection inputs after which fine-tuning stops
    /// early (0: run every epoch).
    #[serde(default = "default_patience")]
    pub patience: usize,
    /// Seed of everything random: hub initialisation, batch order, augmentation.
    pub seed: u64,
    /// The executor that runs the transmitter.
    #[serde(skip)]
    pub executor: ExecutorOptions,
    /// Where the receiver fine-tunes and the hub trains (a local choice: knowledge does not
    /// carry it).
    #[serde(skip)]
    pub device: TrainingDevice,
}

impl Default for TransferOptions {
    fn default() -> Self {
        Self {
            hub: HubOptions::default(),
            objective: Objective::FULL,
            augmentation: Augmentation::Mix,
            epochs: 20,
            batch_size: 32,
            learning_rate: 3e-3,
            embedding_rate_scale: 10.0,
            warmup_epochs: 1.0,
            cosine_decay: false,
            weight_averaging: 0.1,
            selection_share: default_selection_share(),
            patience: default_patience(),
            seed: 0,
            executor: ExecutorOptions::default(),
            device: TrainingDevice::Cpu,
        }
    }
}

/// [`TransferOptions::selection_share`]'s default, also for recipes written before it existed.
fn default_selection_share() -> f64 {
    0.1
}

/// [`TransferOptions::patience`]'s default, also for recipes written before it existed.
fn default_patience() -> usize {
    0
}
