//! `tessera transfer`: Mode A, label-free transfer from a transmitter into a receiver of
//! another architecture; writes the tuned receiver (ONNX) and a TBF token, and prints what was
//! measured. With no models named it runs the bundled demo pair from the zoo.

use std::path::{Path, PathBuf};

use indicatif::ProgressBar;
use rand::seq::SliceRandom;
use rand::SeedableRng;
use tessera_host::backend::{Backend, Device, ExecutorOptions};
use tessera_host::config::Config;
use tessera_host::dataset::Dataset;
use tessera_host::onnx::OnnxModel;
use tessera_host::transfer::{
    Augmentation, Fidelity, ModeATransfer, Objective, Participant, Phase, TransferOptions,
    TransferReport,
};
use tessera_host::zoo::Zoo;

use super::output::{field, print_json, print_text};
use super::progress::progress_bar;
use super::registry;
use super::schedule_args::ScheduleArgs;
use super::token_args::TokenArgs;

/// The demo pair run when no models are named: zoo ids of the transmitter and the receiver.
const DEMO_PAIR: (&str, &str) = (
    "digits/conv_64d_2L.tx.torchscript",
    "digits/mlp_64d_2L.rx.torchscript",
);

/// Which terms the objective has.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum ObjectiveChoice {
    /// Output matching and hub alignment.
    Full,
    /// Output matching alone.
    OutputOnly,
    /// Hub alignment alone.
    HubOnly,
}

/// Arguments of `tessera transfer`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The trained model whose behaviour is transferred (ONNX) [default: the zoo's demo pair].
    #[arg(long, value_name = "A.onnx", requires = "receiver")]
    transmitter: Option<PathBuf>,

    /// The model that learns it (ONNX) [default: the zoo's demo pair].
    #[arg(long, value_name = "B.onnx", requires = "transmitter")]
    receiver: Option<PathBuf>,

    /// Unlabelled inputs (.npy, one sample per row) [default with the demo pair: its training
    /// inputs; required otherwise].
    #[arg(long, value_name = "X.npy")]
    inputs: Option<PathBuf>,

    /// Held-out inputs to measure on [default: a share of --inputs, see --hold-out].
    #[arg(long, value_name = "V.npy")]
    val_inputs: Option<PathBuf>,

    /// Labels of the held-out inputs, used only to report accuracy.
    #[arg(long, value_name = "L.npy", requires = "val_inputs")]
    val_labels: Option<PathBuf>,

    /// Share of --inputs held out for measurement when no --val-inputs are given.
    #[arg(long, default_value_t = 0.2)]
    hold_out: f64,

    /// Where the token is written (atomically).
    #[arg(long, value_name = "TOKEN.tbf", default_value = "transfer.tbf")]
    out: PathBuf,

    /// Where the tuned receiver is written (atomically) [default: <receiver>.tuned.onnx in the
    /// working directory].
    #[arg(long, value_name = "B.tuned.onnx")]
    receiver_out: Option<PathBuf>,

    /// Width of the hub space.
    #[arg(long, default_value_t = 2048)]
    hub_dim: usize,

    /// Seed of everything random; the same seed gives the same result on the CPU.
    #[arg(long, default_value_t = 0)]
    seed: u64,

    #[command(flatten)]
    schedule: ScheduleArgs,

    /// The objective's terms.
    #[arg(long, value_enum, default_value_t = ObjectiveChoice::Full)]
    objective: ObjectiveChoice,

    /// How the unlabelled inputs are enlarged each epoch: none, mix (recombine spans of the
    /// given inputs) or sample-domain (uniform over their value range).
    #[arg(long, default_value = TransferOptions::default().augmentation.name())]
    augmentation: Augmentation,

    /// Adapter for the transmitter [default: the best-scoring one].
    #[arg(long)]
    transmitter_adapter: Option<String>,

    /// Adapter for the receiver [default: the best-scoring one].
    #[arg(long)]
    receiver_adapter: Option<String>,

    /// Executor that runs the transmitter: tract (CPU, built in) or ort (ONNX Runtime; needs
    /// the `ort` feature).
    #[arg(long, default_value = "tract")]
    backend: Backend,

    /// Device: cpu, cuda, tensorrt or auto. The receiver fine-tunes and the hub trains there
    /// (any GPU choice trains on the first CUDA GPU, which needs a build with `--features
    /// cuda`; auto falls back to the CPU). ONNX Runtime runs the transmitter there too; tract
    /// runs it on the CPU.
    #[arg(long, default_value = "cpu")]
    device: Device,

    /// The model zoo folder (for the demo pair).
    #[arg(long, default_value = "onnx-models")]
    zoo: PathBuf,

    #[command(flatten)]
    token: TokenArgs,
}

/// The models and datasets of a run.
struct Job {
    transmitter: PathBuf,
    receiver: PathBuf,
    train: Dataset,
    validation: Dataset,
}

fn held_out(inputs: &Dataset, share: f64, seed: u64) -> anyhow::Result<(Dataset, Dataset)> {
    if !(share > 0.0 && share < 1.0) {
        anyhow::bail!("--hold-out must lie strictly between 0 and 1, got {share}");
    }
    let rows = inputs.len();
    if rows < 2 {
        anyhow::bail!(
            "{}: {rows} input(s) cannot be split into training and held-out inputs; give \
             --val-inputs",
            inputs.source.display()
        );
    }
    let held = ((rows as f64 * share).round() as usize).clamp(1, rows - 1);
    let mut order: Vec<usize> = (0..rows).collect();
    order.shuffle(&mut rand::rngs::ChaCha8Rng::seed_from_u64(seed));
    let (validation, train) = order.split_at(held);
    let part =
        |rows: &[usize]| Dataset::new(inputs.inputs.select_rows(rows), None, inputs.source.clone());
    Ok((part(train)?, part(validation)?))
}

impl Job {
    fn from_args(args: &Args) -> anyhow::Result<Self> {
        let (transmitter, receiver, demo) = match (&args.transmitter, &args.receiver) {
            (Some(transmitter), Some(receiver)) => (transmitter.clone(), receiver.clone(), None),
            _ => {
                let zoo = Zoo::load(&args.zoo)?;
                let transmitter = zoo.model(DEMO_PAIR.0)?;
                let receiver = zoo.model(DEMO_PAIR.1)?;
                (
                    zoo.path(&transmitter.onnx),
                    zoo.path(&receiver.onnx),
                    Some((zoo.clone(), transmitter.datasets.clone())),
                )
            }
        };
        let inputs = match (&args.inputs, &demo) {
            (Some(path), _) => path.clone(),
            (None, Some((zoo, datasets))) => zoo.path(&datasets.train_inputs),
            (None, None) => anyhow::bail!("--inputs is required when models are named"),
        };
        let train = Dataset::load(&inputs, None)?;
        let (train, validation) = match (&args.val_inputs, &demo) {
            (Some(path), _) => (train, Dataset::load(path, args.val_labels.as_deref())?),
            (None, Some((zoo, datasets))) if args.inputs.is_none() => (
                train,
                Dataset::load(
                    &zoo.path(&datasets.val_inputs),
                    Some(&zoo.path(&datasets.val_labels)),
                )?,
            ),
            _ => held_out(&train, args.hold_out, args.seed)?,
        };
        Ok(Self {
            transmitter,
            receiver,
            train,
            validation,
        })
    }
}

fn receiver_out(args: &Args, receiver: &Path) -> PathBuf {
    args.receiver_out.clone().unwrap_or_else(|| {
        let stem = receiver
            .file_stem()
            .map(|stem| stem.to_string_lossy().into_owned())
            .unwrap_or_else(|| "receiver".into());
        PathBuf::from(format!("{stem}.tuned.onnx"))
    })
}

/// Runs `tessera transfer`.
pub fn run(args: &Args, config_path: Option<&Path>, json: bool) -> anyhow::Result<()> {
    let job = Job::from_args(args)?;
    let config = Config::discover(config_path)?;
    let registry = registry(config_path)?;
    let transmitter = OnnxModel::load(&job.transmitter)?;
    let receiver = OnnxModel::load(&job.receiver)?;
    let transmitter_plan = registry
        .choose_adapter(&transmitter, args.transmitter_adapter.as_deref())?
        .plan;
    let receiver_plan = registry
        .choose_adapter(&receiver, args.receiver_adapter.as_deref())?
        .plan;
    let mut options = TransferOptions {
        objective: match args.objective {
            ObjectiveChoice::Full => Objective::FULL,
            ObjectiveChoice::OutputOnly => Objective::OUTPUT_ONLY,
            ObjectiveChoice::HubOnly => Objective::HUB_ONLY,
        },
        augmentation: args.augmentation,
        executor: ExecutorOptions {
            backend: args.backend,
            device: match args.backend {
                Backend::Tract => Device::Cpu,
                _ => args.device,
            },
            threads: None,
        },
        device: args.device.training_device(),
        ..TransferOptions::default()
    };
    args.schedule.apply(&mut options);
    let transfer = ModeATransfer::with_plans(
        Participant::new(&transmitter, transmitter_plan)?,
        Participant::new(&receiver, receiver_plan)?,
    )
    .options(options)
    .hub_dim(args.hub_dim)
    .seed(args.seed);

    let mut bar: Option<(Phase, ProgressBar)> = None;
    let outcome = transfer.execute_with_progress(&job.train, &job.validation, &mut |progress| {
        if bar.as_ref().map(|(phase, _)| *phase) != Some(progress.phase) {
            if let Some((_, finished)) = bar.take() {
                finished.finish_and_clear();
            }
            let label = match progress.phase {
                Phase::Capture => "capture",
                Phase::Hub => "hub",
                Phase::FineTune => "fine-tune",
                Phase::Measure => "measure",
            };
            bar = Some((progress.phase, progress_bar(progress.total as u64, label)));
        }
        if let Some((_, current)) = &bar {
            current.set_position(progress.done as u64);
        }
    })?;
    if let Some((_, finished)) = bar.take() {
        finished.finish_and_clear();
    }
    let receiver_path = receiver_out(args, &job.receiver);
    outcome.receiver.save(&receiver_path)?;
    let models = (
        outcome.report.transmitter.name.as_str(),
        outcome.report.receiver.name.as_str(),
    );
    let (stages, released) = args.token.release(
        outcome.token()?,
        &registry,
        &config,
        &args.out,
        Some(models),
    )?;
    let privacy = released.metadata.get("privacy").cloned();
    if json {
        return print_json(&serde_json::json!({
            "transmitter": job.transmitter.display().to_string(),
            "receiver": job.receiver.display().to_string(),
            "receiver_out": receiver_path.display().to_string(),
            "token": args.out.display().to_string(),
            "stages": stages,
            "privacy": privacy,
            "report": outcome.report,
        }));
    }
    let mut lines = summary(&outcome.report, &job);
    lines.push(field(
        "token",
        format!(
            "{} ({}{})",
            args.out.display(),
            stages.join(" -> "),
            privacy
                .map(|p| format!("; privacy {p}"))
                .unwrap_or_default()
        ),
    ));
    lines.push(field("tuned receiver", receiver_path.display()));
    print_text(&lines.join("\n"))
}

fn number(value: Option<f64>) -> String {
    value.map_or_else(|| "-".into(), |value| format!("{value:.3}"))
}

/// The readable summary table of a transfer.
fn summary(report: &TransferReport, job: &Job) -> Vec<String> {
    let row = |label: &str, pick: &dyn Fn(&Fidelity) -> Option<f64>| {
        format!(
            "  {label:<24}{:>10}{:>10}",
            number(pick(&report.before)),
            number(pick(&report.after))
        )
    };
    let mut lines = vec![
        format!(
            "Mode A transfer: {} ({}) -> {} ({})",
            job.transmitter.display(),
            report.transmitter.family,
            job.receiver.display(),
            report.receiver.family
        ),
        format!(
            "  objective {}, augmentation {}, hub width {}, {} epochs ({} steps), seed {}; \
             measured on {} held-out inputs",
            report.objective_name,
            report.augmentation.name(),
            report.hub.dim,
            report.epochs,
            report.steps,
            report.seed,
            report.validation_inputs
        ),
        format!("  {:<24}{:>10}{:>10}", "", "before", "after"),
        row("agreement", &|f| f.agreement),
        row("output KL (nats)", &|f| f.output_kl),
        row("accuracy", &|f| f.accuracy),
    ];
    for index in 0..report.after.cka.len() {
        let label = format!("CKA depth {}", index + 1);
        lines.push(row(&label, &|f| f.cka.get(index).map(|c| c.cka)));
    }
    lines.push(row("predecessor drift", &|f| Some(f.predecessor_drift)));
    lines.push(format!(
        "  {:<24}{:>20}",
        "transmitter accuracy",
        number(report.transmitter_accuracy)
    ));
    lines.push(field(
        "hub retrieval",
        format!(
            "{:.3} after hub training, {} after fine-tuning",
            report.hub_retrieval_before_fine_tuning,
            number(report.hub_retrieval)
        ),
    ));
    lines.push(field(
        "hub round trip",
        format!(
            "transmitter {:.3}, receiver {:.3} (relative error)",
            report.hub_round_trip_error[0], report.hub_round_trip_error[1]
        ),
    ));
    let timings = &report.timings;
    lines.push(field(
        "time",
        format!(
            "{:.1} s (capture {:.1}, hub {:.1}, fine-tune {:.1}, measure {:.1})",
            timings.total, timings.capture, timings.hub, timings.fine_tune, timings.measure
        ),
    ));
    lines
}
