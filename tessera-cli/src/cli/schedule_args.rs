//! The fine-tuning schedule of a Mode A transfer, shared by `tessera transfer` and
//! `tessera bench cross-arch`.

use tessera_host::transfer::TransferOptions;

/// How long and how fast the hub and the receiver are trained.
#[derive(Debug, clap::Args)]
pub struct ScheduleArgs {
    /// Fine-tuning epochs.
    #[arg(long, default_value_t = TransferOptions::default().epochs)]
    epochs: usize,

    /// Hub training epochs.
    #[arg(long, default_value_t = TransferOptions::default().hub.epochs)]
    hub_epochs: usize,

    /// Fine-tuning batch size.
    #[arg(long, default_value_t = TransferOptions::default().batch_size)]
    batch_size: usize,

    /// Fine-tuning learning rate (Adam).
    #[arg(long, default_value_t = TransferOptions::default().learning_rate)]
    learning_rate: f64,

    /// Multiplier of the learning rate for the receiver's embedding tables (initializers read
    /// by Gather), whose rows start an order of magnitude larger than dense weights.
    #[arg(long, default_value_t = TransferOptions::default().embedding_rate_scale)]
    embedding_rate_scale: f64,

    /// Epochs over which the learning rate rises linearly to its value (a fraction is allowed;
    /// 0: none); keeps a from-scratch transformer student from collapsing in its first steps.
    #[arg(long, default_value_t = TransferOptions::default().warmup_epochs)]
    warmup_epochs: f64,

    /// Decay the learning rate to zero along a cosine instead of keeping it constant.
    #[arg(long)]
    cosine_decay: bool,

    /// Horizon of the running average of the receiver's weights, as a share of the fine-tuning
    /// steps; the receiver ends with the average instead of the last step's weights (0: off).
    #[arg(long, default_value_t = TransferOptions::default().weight_averaging)]
    weight_averaging: f64,

    /// Share of the training inputs set aside to choose the state fine-tuning ends with (the
    /// best on them, the start included; 0: the last state).
    #[arg(long, default_value_t = TransferOptions::default().selection_share)]
    selection_share: f64,

    /// Epochs without a better state on the selection inputs after which fine-tuning stops
    /// (0: run every epoch).
    #[arg(long, default_value_t = TransferOptions::default().patience)]
    patience: usize,
}

impl ScheduleArgs {
    /// Writes the schedule into `options`.
    pub fn apply(&self, options: &mut TransferOptions) {
        options.epochs = self.epochs;
        options.hub.epochs = self.hub_epochs;
        options.batch_size = self.batch_size;
        options.learning_rate = self.learning_rate;
        options.embedding_rate_scale = self.embedding_rate_scale;
        options.warmup_epochs = self.warmup_epochs;
        options.cosine_decay = self.cosine_decay;
        options.weight_averaging = self.weight_averaging;
        options.selection_share = self.selection_share;
        options.patience = self.patience;
    }
}
