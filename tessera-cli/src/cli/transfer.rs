//! `tessera transfer`: Mode A, label-free transfer from a transmitter into a receiver of
//! another architecture in one process (emit, then absorb); writes the tuned receiver (ONNX)
//! and the knowledge token `tessera emit` would have written, and prints what was measured.
//! With no models named it runs the bundled demo pair from the zoo.

use std::path::{Path, PathBuf};

use tessera_host::backend::{Backend, Device, ExecutorOptions};
use tessera_host::dataset::Dataset;
use tessera_host::jobs::{tuned_receiver_path, TransferJob, TRANSFER_TOKEN};
use tessera_host::transfer::{
    hold_out, Augmentation, Candidate, Fidelity, Objective, SelectionReport, SelectionScore,
    TransferOptions, TransferReport, DEFAULT_HOLD_OUT,
};
use tessera_host::uhs::HubOptions;
use tessera_host::zoo::Zoo;

use super::knowledge_args::{written_lines, KnowledgeArgs};
use super::output::{field, print_json, print_text};
use super::progress::PhaseBars;
use super::quant_args::{quantisation_lines, QuantArgs};
use super::registry;
use super::schedule_args::ScheduleArgs;

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
    #[arg(long, default_value_t = DEFAULT_HOLD_OUT)]
    hold_out: f64,

    /// Where the knowledge token is written (atomically), released through the privacy stage
    /// as `tessera emit` releases it.
    #[arg(long, value_name = "KNOWLEDGE.tbf", default_value = TRANSFER_TOKEN)]
    out: PathBuf,

    /// Where the tuned receiver is written (atomically) [default: <receiver>.tuned.onnx in the
    /// working directory].
    #[arg(long, value_name = "B.tuned.onnx")]
    receiver_out: Option<PathBuf>,

    /// Width of the hub space.
    #[arg(long, default_value_t = HubOptions::default().dim)]
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

    /// Also write the transmitter's hub vectors into the token (the transfer itself uses them
    /// whenever the objective has its hub term; in the token they cost hub width floats per
    /// input and, in the benchmark, did not improve what a receiver absorbs).
    #[arg(long)]
    hub_vectors: bool,

    #[command(flatten)]
    knowledge: KnowledgeArgs,

    #[command(flatten)]
    quant: QuantArgs,
}

/// The models and datasets of a run.
struct Job {
    transmitter: PathBuf,
    receiver: PathBuf,
    train: Dataset,
    validation: Dataset,
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
            _ => hold_out(&train, args.hold_out, args.seed)?,
        };
        Ok(Self {
            transmitter,
            receiver,
            train,
            validation,
        })
    }
}

/// Runs `tessera transfer`.
pub fn run(args: &Args, config_path: Option<&Path>, json: bool) -> anyhow::Result<()> {
    let quantisation = args.quant.aware()?;
    let files = Job::from_args(args)?;
    let mut options = TransferOptions {
        objective: match args.objective {
            ObjectiveChoice::Full => Objective::FULL,
            ObjectiveChoice::OutputOnly => Objective::OUTPUT_ONLY,
            ObjectiveChoice::HubOnly => Objective::HUB_ONLY,
        },
        augmentation: args.augmentation,
        executor: ExecutorOptions::of(args.backend, args.device),
        device: args.device.training_device(),
        ..TransferOptions::default()
    };
    args.schedule.apply(&mut options);
    let receiver_path = args
        .receiver_out
        .clone()
        .unwrap_or_else(|| tuned_receiver_path(&files.receiver));
    let job = TransferJob {
        transmitter: files.transmitter,
        receiver: files.receiver,
        train: files.train,
        validation: files.validation,
        options,
        hub_dim: args.hub_dim,
        seed: args.seed,
        transmitter_adapter: args.transmitter_adapter.clone(),
        receiver_adapter: args.receiver_adapter.clone(),
        quantisation,
        hub_vectors: args.hub_vectors,
        release: args.knowledge.release()?,
        token_out: args.out.clone(),
        receiver_out: receiver_path,
        float_out: args.quant.float_out().map(Path::to_path_buf),
    };
    let registry = registry(config_path)?;
    let mut bars = PhaseBars::default();
    let done = job.run(&registry, &mut |progress| {
        bars.update(progress);
        Ok(())
    })?;
    bars.finish();
    warn_if_unchanged(&done.report);
    if json {
        return print_json(&job.report_json(&done));
    }
    let mut lines = summary(
        &done.report,
        &job.transmitter.display().to_string(),
        &job.receiver.display().to_string(),
    );
    lines.push(field(
        "token",
        format!("{} ({} bytes)", job.token_out.display(), done.written.bytes),
    ));
    lines.extend(written_lines(&done.written));
    lines.extend(receiver_lines(
        &done.report,
        &job.receiver_out,
        job.float_out.as_deref(),
    ));
    print_text(&lines.join("\n"))
}

/// `value` with three decimals, or `-`.
pub(super) fn number(value: Option<f64>) -> String {
    value.map_or_else(|| "-".into(), |value| format!("{value:.3}"))
}

/// Where the receivers went and, for ModeAQ, what quantising did.
pub(super) fn receiver_lines(
    report: &TransferReport,
    receiver_path: &Path,
    float_out: Option<&Path>,
) -> Vec<String> {
    let Some(quantisation) = &report.quantisation else {
        return vec![field("tuned receiver", receiver_path.display())];
    };
    let mut lines = quantisation_lines(quantisation);
    lines.push(field("quantised receiver", receiver_path.display()));
    if let Some(path) = float_out {
        lines.push(field("float receiver", path.display()));
    }
    lines
}

/// The readable summary table of a transfer or an absorption from `transmitter` into
/// `receiver` (as they should be named).
pub(super) fn summary(report: &TransferReport, transmitter: &str, receiver: &str) -> Vec<String> {
    let row = |label: &str, pick: &dyn Fn(&Fidelity) -> Option<f64>| {
        format!(
            "  {label:<24}{:>10}{:>10}",
            number(pick(&report.before)),
            number(pick(&report.after))
        )
    };
    let mut lines = vec![
        format!(
            "Mode A transfer: {transmitter} ({}) -> {receiver} ({})",
            report.transmitter.family, report.receiver.family
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
    if report.after.predecessor_drift.is_finite() {
        lines.push(row("predecessor drift", &|f| Some(f.predecessor_drift)));
    }
    lines.push(format!(
        "  {:<24}{:>20}",
        "transmitter accuracy",
        number(report.transmitter_accuracy)
    ));
    if let (Some(before), Some(round_trip)) = (
        report.hub_retrieval_before_fine_tuning,
        report.hub_round_trip_error,
    ) {
        lines.push(field(
            "hub retrieval",
            format!(
                "{before:.3} after hub training, {} after fine-tuning",
                number(report.hub_retrieval)
            ),
        ));
        lines.push(field(
            "hub round trip",
            format!("receiver {round_trip:.3} (relative error)"),
        ));
    }
    if let Some(selection) = &report.selection {
        lines.push(field("selection", selection_text(selection)));
    }
    let timings = &report.timings;
    lines.push(field(
        "time",
        format!(
            "{:.1} s (emit {:.1}, capture {:.1}, hub {:.1}, fine-tune {:.1}, measure {:.1})",
            timings.total,
            timings.emit,
            timings.capture,
            timings.hub,
            timings.fine_tune,
            timings.measure
        ),
    ));
    lines
}

/// Which state the selection kept, in words.
pub(super) fn selection_text(selection: &SelectionReport) -> String {
    let agreement = |score: &SelectionScore| number(score.agreement);
    let kept = match selection.chosen {
        Candidate::Start => "no improvement: the receiver is returned unchanged".to_string(),
        Candidate::Epoch(epoch) => format!("epoch {epoch}"),
        Candidate::Average => "the weight average".to_string(),
    };
    let ran = if selection.stopped_early {
        format!(
            ", stopped after {} of {} epochs",
            selection.epochs.len(),
            selection.epochs_planned
        )
    } else {
        String::new()
    };
    let backed_off = if selection.backed_off_after.is_empty() {
        String::new()
    } else {
        let epochs: Vec<String> = selection
            .backed_off_after
            .iter()
            .map(usize::to_string)
            .collect();
        format!(
            "; collapsed after epoch {}: the best state put back, the rate halved",
            epochs.join(", ")
        )
    };
    format!(
        "{kept} (agreement {} -> {}, loss {:.3} -> {:.3} on {} set-aside inputs{ran}{backed_off})",
        agreement(&selection.start),
        agreement(&selection.chosen_score),
        selection.start.loss,
        selection.chosen_score.loss,
        selection.inputs,
    )
}

/// Warns on standard error when fine-tuning found nothing better than the receiver it started
/// from, so the receiver written is the one given.
pub(super) fn warn_if_unchanged(report: &TransferReport) {
    if report.no_improvement() {
        eprintln!(
            "warning: no improvement: no fine-tuned state followed the transmitter more closely \
             than the receiver did before, on the inputs set aside for selection; the receiver \
             is written unchanged"
        );
    }
}
