//! `tessera absorb`: the receiver's half of the protocol. Learns from a knowledge token on the
//! reference inputs, without the transmitter, and writes the tuned receiver.

use std::path::{Path, PathBuf};

use tessera_host::backend::{Backend, Device};
use tessera_host::dataset::Dataset;
use tessera_host::jobs::{tuned_receiver_path, AbsorbJob};

use super::output::{field, print_json, print_text};
use super::progress::PhaseBars;
use super::quant_args::QuantArgs;
use super::read_args::ReadArgs;
use super::registry;
use super::transfer::{receiver_lines, summary};

/// Arguments of `tessera absorb`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The knowledge token (from `tessera emit`).
    #[arg(long, value_name = "KNOWLEDGE.tbf")]
    token: PathBuf,

    /// The model that learns (ONNX).
    #[arg(long, value_name = "B.onnx")]
    receiver: PathBuf,

    /// The reference inputs the knowledge was emitted for (.npy); checked by fingerprint.
    #[arg(long, value_name = "R.npy")]
    inputs: PathBuf,

    /// The separate held-out inputs, when the knowledge was emitted with them.
    #[arg(long, value_name = "V.npy")]
    val_inputs: Option<PathBuf>,

    /// Labels of the held-out inputs, used only to report accuracy.
    #[arg(long, value_name = "L.npy", requires = "val_inputs")]
    val_labels: Option<PathBuf>,

    /// Where the tuned receiver is written (atomically) [default: <receiver>.tuned.onnx in the
    /// working directory].
    #[arg(long, value_name = "B.tuned.onnx")]
    receiver_out: Option<PathBuf>,

    /// Seed of the receiver's hub encoder and batch order [default: the knowledge's].
    #[arg(long)]
    seed: Option<u64>,

    /// Trust file of signers' public keys (TOML, `[signers] name = "hex"`): the token must be
    /// signed by one of them.
    #[arg(long, value_name = "keys.toml")]
    trust: Option<PathBuf>,

    #[command(flatten)]
    read: ReadArgs,

    /// Adapter for the receiver [default: the best-scoring one].
    #[arg(long)]
    receiver_adapter: Option<String>,

    /// Where the receiver fine-tunes: cpu, cuda or cuda:N (a GPU needs a build with
    /// `--features cuda`).
    #[arg(long, default_value = "cpu")]
    device: Device,

    /// Executor that runs the quantised and float receivers when measuring them (ModeAQ):
    /// tract or ort.
    #[arg(long, default_value = "tract")]
    backend: Backend,

    #[command(flatten)]
    quant: QuantArgs,
}

/// Runs `tessera absorb`.
pub fn run(args: &Args, config_path: Option<&Path>, json: bool) -> anyhow::Result<()> {
    let job = AbsorbJob {
        token: args.token.clone(),
        load: args.read.load_options()?,
        trust: args.trust.clone(),
        receiver: args.receiver.clone(),
        inputs: Dataset::load(&args.inputs, None)?,
        validation: args
            .val_inputs
            .as_deref()
            .map(|path| Dataset::load(path, args.val_labels.as_deref()))
            .transpose()?,
        seed: args.seed,
        receiver_adapter: args.receiver_adapter.clone(),
        device: args.device,
        backend: args.backend,
        quantisation: args.quant.aware()?,
        receiver_out: args
            .receiver_out
            .clone()
            .unwrap_or_else(|| tuned_receiver_path(&args.receiver)),
        float_out: args.quant.float_out().map(Path::to_path_buf),
    };
    let registry = registry(config_path)?;
    let mut bars = PhaseBars::default();
    let done = job.run(&registry, &mut |progress| {
        bars.update(progress);
        Ok(())
    })?;
    bars.finish();
    super::transfer::warn_if_unchanged(&done.report);
    if json {
        return print_json(&job.report_json(&done));
    }
    let mut lines = summary(
        &done.report,
        &format!(
            "{} (from {})",
            done.header.transmitter.name,
            args.token.display()
        ),
        &args.receiver.display().to_string(),
    );
    let (epsilon, delta) = done.privacy_spent;
    lines.push(field(
        "knowledge privacy",
        if epsilon.is_finite() {
            format!("epsilon {epsilon}, delta {delta}")
        } else {
            "none (epsilon inf)".into()
        },
    ));
    if let Some(signer) = &done.signer {
        lines.push(field("signed by", signer));
    }
    lines.extend(receiver_lines(
        &done.report,
        &job.receiver_out,
        job.float_out.as_deref(),
    ));
    print_text(&lines.join("\n"))
}
