//! `tessera train MODEL.onnx --inputs X.npy --labels Y.npy --out TRAINED.onnx`: supervised
//! training of an exported model, written back as ONNX.

use std::path::PathBuf;

use tessera_host::backend::candle::{
    OptimizerKind, OptimizerOptions, Schedule, Trainable, TrainingDevice,
};
use tessera_host::dataset::Dataset;
use tessera_host::onnx::OnnxModel;
use tessera_host::training::{train_supervised, TrainOptions};

use super::output::{field, print_json, print_text};
use super::progress::progress_bar;

/// Arguments of `tessera train`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The model to train (.onnx).
    model: PathBuf,

    /// Training inputs (.npy).
    #[arg(long, value_name = "X.npy")]
    inputs: PathBuf,

    /// Training labels: one class index per sample (.npy, int64).
    #[arg(long, value_name = "Y.npy")]
    labels: PathBuf,

    /// Validation inputs, scored after every epoch.
    #[arg(long, value_name = "X.npy", requires = "val_labels")]
    val_inputs: Option<PathBuf>,

    /// Validation labels.
    #[arg(long, value_name = "Y.npy", requires = "val_inputs")]
    val_labels: Option<PathBuf>,

    /// Where the trained model is written (external weights, if the model had them, go to
    /// `<file>.data` beside it).
    #[arg(long, value_name = "TRAINED.onnx")]
    out: PathBuf,

    /// Passes over the training set.
    #[arg(long, default_value_t = 12)]
    epochs: usize,

    /// Samples per step.
    #[arg(long, default_value_t = 32)]
    batch_size: usize,

    /// Learning rate.
    #[arg(long, default_value_t = 1e-3)]
    lr: f64,

    /// Optimiser: adam, adamw (weight decay 0.01) or sgd (momentum 0.9).
    #[arg(long, default_value = "adam")]
    optimizer: String,

    /// Warm up linearly for this share of the steps, then decay along a cosine; 0 keeps the
    /// rate constant.
    #[arg(long, default_value_t = 0.0)]
    warmup: f64,

    /// Clip the global gradient norm to this.
    #[arg(long)]
    clip_norm: Option<f64>,

    /// Initializers to keep frozen, comma-separated.
    #[arg(long, value_delimiter = ',')]
    freeze: Vec<String>,

    /// Seed of the shuffling order.
    #[arg(long, default_value_t = 0)]
    seed: u64,

    /// Where to train: cpu, cuda (the first GPU) or cuda:N; a GPU needs a build with
    /// `--features cuda`.
    #[arg(long, default_value = "cpu")]
    device: TrainingDevice,
}

/// Runs `tessera train`.
pub fn run(args: &Args, json: bool) -> anyhow::Result<()> {
    let model = OnnxModel::load(&args.model)?;
    let train = Dataset::load(&args.inputs, Some(&args.labels))?;
    let validation = match (&args.val_inputs, &args.val_labels) {
        (Some(inputs), Some(labels)) => Some(Dataset::load(inputs, Some(labels))?),
        _ => None,
    };
    let kind = match args.optimizer.as_str() {
        "adam" => OptimizerKind::ADAM,
        "adamw" => OptimizerKind::AdamW {
            beta1: 0.9,
            beta2: 0.999,
            epsilon: 1e-8,
            weight_decay: 0.01,
        },
        "sgd" => OptimizerKind::Sgd {
            momentum: 0.9,
            weight_decay: 0.0,
        },
        other => anyhow::bail!("unknown optimiser {other:?}; use adam, adamw or sgd"),
    };
    let total_steps = args.epochs * train.len().div_ceil(args.batch_size.max(1));
    let schedule = if args.warmup > 0.0 {
        Schedule::WarmupCosine {
            warmup: (args.warmup * total_steps as f64).round() as usize,
            total: total_steps,
        }
    } else {
        Schedule::Constant
    };
    let options = TrainOptions {
        epochs: args.epochs,
        batch_size: args.batch_size,
        optimizer: OptimizerOptions {
            kind,
            learning_rate: args.lr,
            schedule,
            clip_norm: args.clip_norm,
        },
        seed: args.seed,
        trainable: if args.freeze.is_empty() {
            Trainable::All
        } else {
            Trainable::AllExcept(args.freeze.clone())
        },
        device: args.device,
    };
    let bar = progress_bar(args.epochs as u64, "training");
    let (trained, report) = train_supervised(
        &model,
        &train,
        validation.as_ref(),
        &options,
        &mut |epoch| {
            bar.set_position(epoch.epoch as u64);
        },
    )?;
    bar.finish_and_clear();
    trained.save(&args.out)?;
    if json {
        let mut value = serde_json::to_value(&report)?;
        value["out"] = args.out.display().to_string().into();
        return print_json(&value);
    }
    let mut lines = vec![format!(
        "trained {} for {} epochs ({} steps, {} parameters in {} initializers) in {:.1} s; wrote {}",
        args.model.display(),
        args.epochs,
        report.steps,
        report.parameters,
        report.variables,
        report.seconds,
        args.out.display()
    )];
    for epoch in &report.epochs {
        let accuracy = epoch
            .val_accuracy
            .map_or_else(String::new, |a| format!("  validation accuracy {a:.3}"));
        lines.push(field(
            &format!("epoch {}", epoch.epoch),
            format!("loss {:.4}{accuracy}", epoch.loss),
        ));
    }
    print_text(&lines.join("\n"))
}
