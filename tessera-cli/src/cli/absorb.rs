//! `tessera absorb`: the receiver's half of the protocol. Learns from a knowledge token on the
//! reference inputs, without the transmitter, and writes the tuned receiver.

use std::path::{Path, PathBuf};

use tessera_host::backend::{Backend, Device};
use tessera_host::dataset::Dataset;
use tessera_host::onnx::OnnxModel;
use tessera_host::tbf::{self, SignatureStatus, TrustStore};
use tessera_host::transfer::{Absorber, Knowledge, Participant};

use super::output::{field, print_json, print_text};
use super::progress::PhaseBars;
use super::quant_args::QuantArgs;
use super::read_args::ReadArgs;
use super::registry;
use super::transfer::{executor, receiver_lines, receiver_out, summary};

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
    let aware = args.quant.aware()?;
    let loaded = tbf::load(&args.token, &args.read.load_options()?)?;
    let signer = match &args.trust {
        Some(path) => Some(
            TrustStore::load(path)?
                .require(&loaded.signature)?
                .to_string(),
        ),
        None => match &loaded.signature {
            SignatureStatus::Valid { signer } => {
                Some(format!("key {signer} (not checked against a trust file)"))
            }
            _ => None,
        },
    };
    let knowledge = Knowledge::from_token(&loaded.token)?;
    let inputs = Dataset::load(&args.inputs, None)?;
    let validation = args
        .val_inputs
        .as_deref()
        .map(|path| Dataset::load(path, args.val_labels.as_deref()))
        .transpose()?;
    let (train, held_out) = knowledge.datasets(&inputs, validation.as_ref())?;
    let registry = registry(config_path)?;
    let receiver = OnnxModel::load(&args.receiver)?;
    let plan = registry
        .choose_adapter(&receiver, args.receiver_adapter.as_deref())?
        .plan;
    let mut absorber = Absorber::new(Participant::new(&receiver, plan)?)
        .device(args.device.training_device())
        .executor(executor(args.backend, args.device));
    if let Some(aware) = aware {
        absorber = absorber.quantisation(aware);
    }
    if let Some(seed) = args.seed {
        absorber = absorber.seed(seed);
    }
    let mut bars = PhaseBars::default();
    let outcome =
        absorber.absorb_with_progress(&knowledge, &train, &held_out, &mut |progress| {
            bars.update(progress)
        })?;
    bars.finish();
    super::transfer::warn_if_unchanged(&outcome.report);
    let receiver_path = receiver_out(args.receiver_out.as_deref(), &args.receiver);
    args.quant.save(&outcome, &receiver_path)?;
    if json {
        return print_json(&serde_json::json!({
            "token": args.token.display().to_string(),
            "receiver": args.receiver.display().to_string(),
            "receiver_out": receiver_path.display().to_string(),
            "float_receiver_out": args.quant.float_out().map(|path| path.display().to_string()),
            "signer": signer,
            "privacy": knowledge.header.privacy,
            "report": outcome.report,
        }));
    }
    let mut lines = summary(
        &outcome.report,
        &format!(
            "{} (from {})",
            knowledge.header.transmitter.name,
            args.token.display()
        ),
        &args.receiver.display().to_string(),
    );
    let (epsilon, delta) = knowledge.privacy_spent();
    lines.push(field(
        "knowledge privacy",
        if epsilon.is_finite() {
            format!("epsilon {epsilon}, delta {delta}")
        } else {
            "none (epsilon inf)".into()
        },
    ));
    if let Some(signer) = signer {
        lines.push(field("signed by", signer));
    }
    lines.extend(receiver_lines(
        &outcome.report,
        &receiver_path,
        args.quant.float_out(),
    ));
    print_text(&lines.join("\n"))
}
