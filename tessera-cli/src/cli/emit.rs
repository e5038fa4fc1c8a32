//! `tessera emit`: the transmitter's half of the protocol. Runs only the transmitter on the
//! reference inputs and writes what a receiver needs to learn from it as a token.

use std::path::{Path, PathBuf};

use tessera_host::backend::{Backend, Device, ExecutorOptions};
use tessera_host::dataset::Dataset;
use tessera_host::jobs::{emit_augmentation, EmitJob, EMITTED_TOKEN};
use tessera_host::transfer::{Augmentation, TransferOptions, DEFAULT_HOLD_OUT};
use tessera_host::uhs::HubOptions;

use super::knowledge_args::{written_lines, KnowledgeArgs};
use super::output::{field, print_json, print_text};
use super::registry;
use super::schedule_args::ScheduleArgs;

/// Arguments of `tessera emit`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The trained model whose knowledge is emitted (ONNX).
    #[arg(long, value_name = "A.onnx")]
    transmitter: PathBuf,

    /// Reference inputs both sides hold (.npy, one sample per row; unlabelled).
    #[arg(long, value_name = "R.npy")]
    inputs: PathBuf,

    /// Separate held-out inputs the receiver will measure on [default: a share of --inputs,
    /// see --hold-out].
    #[arg(long, value_name = "V.npy")]
    val_inputs: Option<PathBuf>,

    /// Share of --inputs held out for measurement when no --val-inputs are given.
    #[arg(long, default_value_t = DEFAULT_HOLD_OUT)]
    hold_out: f64,

    /// Where the token is written (atomically).
    #[arg(long, value_name = "KNOWLEDGE.tbf", default_value = EMITTED_TOKEN)]
    out: PathBuf,

    /// Also carry the transmitter's hub vectors (hub width floats per input), so that the
    /// receiver can align its representation too, or learn from a transmitter whose output
    /// width differs from its own.
    #[arg(long)]
    hub_vectors: bool,

    /// Width of the hub space (with --hub-vectors).
    #[arg(long, default_value_t = HubOptions::default().dim)]
    hub_dim: usize,

    /// Seed of the split, the synthetic inputs and the hub encoder.
    #[arg(long, default_value_t = 0)]
    seed: u64,

    #[command(flatten)]
    schedule: ScheduleArgs,

    /// How the receiver's inputs are enlarged: mix (the transmitter answers one mixed set per
    /// epoch after the first, rebuilt by the receiver from the seed), none, or sample-domain
    /// (only with --epsilon inf) [default: mix with --epsilon inf, none with a finite epsilon,
    /// where every mixed set multiplies the noise (see docs/benchmarks/protocol.md)].
    #[arg(long)]
    augmentation: Option<Augmentation>,

    /// Adapter for the transmitter [default: the best-scoring one].
    #[arg(long)]
    transmitter_adapter: Option<String>,

    /// Executor that runs the transmitter: tract (CPU, built in) or ort (ONNX Runtime).
    #[arg(long, default_value = "tract")]
    backend: Backend,

    /// Device ONNX Runtime runs the transmitter on: cpu, cuda, tensorrt or auto.
    #[arg(long, default_value = "cpu")]
    device: Device,

    #[command(flatten)]
    knowledge: KnowledgeArgs,
}

/// Runs `tessera emit`.
pub fn run(args: &Args, config_path: Option<&Path>, json: bool) -> anyhow::Result<()> {
    let release = args.knowledge.release()?;
    let mut options = TransferOptions {
        augmentation: emit_augmentation(args.augmentation, &release.privacy),
        executor: ExecutorOptions::of(args.backend, args.device),
        ..TransferOptions::default()
    };
    args.schedule.apply(&mut options);
    options.hub.dim = args.hub_dim;
    let job = EmitJob {
        transmitter: args.transmitter.clone(),
        inputs: Dataset::load(&args.inputs, None)?,
        validation: args
            .val_inputs
            .as_deref()
            .map(|path| Dataset::load(path, None))
            .transpose()?,
        hold_out: args.hold_out,
        options,
        seed: args.seed,
        hub_vectors: args.hub_vectors,
        transmitter_adapter: args.transmitter_adapter.clone(),
        release,
        token_out: args.out.clone(),
    };
    let done = job.run(&registry(config_path)?)?;
    if json {
        return print_json(&job.report_json(&done));
    }
    let header = &done.header;
    let mut lines = vec![
        format!(
            "emitted the knowledge of {} ({}) to {}",
            args.transmitter.display(),
            header.transmitter.family,
            args.out.display()
        ),
        field(
            "soft targets",
            format!(
                "{} classes at temperature {} on {} training and {} held-out inputs, {} synthetic \
                 sets ({})",
                header.transmitter.output_width,
                header.recipe.objective.temperature,
                header.train.rows,
                header.validation.rows,
                header.synthetic_sets,
                header.recipe.augmentation.name()
            ),
        ),
        field(
            "hub vectors",
            if args.hub_vectors {
                format!("width {}", header.recipe.hub.dim)
            } else {
                "none".into()
            },
        ),
        field("inputs", format!("fingerprint {}", header.inputs.sha256)),
        field("token", format!("{} bytes", done.written.bytes)),
    ];
    lines.extend(written_lines(&done.written));
    lines.push(field("time", format!("{:.1} s", done.seconds)));
    print_text(&lines.join("\n"))
}
