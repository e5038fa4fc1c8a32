//! A whole Mode A (or ModeAQ) transfer between two model files: the budget checked before any
//! work, the plans chosen, the transfer run, the token released and written, the receiver
//! written — each file atomically, and only once everything before it succeeded.

use std::path::{Path, PathBuf};

use tessera_engine::plugin::PluginRegistry;
use tessera_engine::transfer::{
    InputFingerprint, ModeATransfer, Participant, Progress, QuantisationAware, TransferOptions,
    TransferOutcome, TransferReport,
};
use tessera_engine::{Error, Result};
use tessera_onnx::OnnxModel;
use tessera_tensor::dataset::Dataset;

use super::release::{KnowledgeRelease, Written};

/// Everything a transfer between two model files needs.
#[derive(Debug, Clone)]
pub struct TransferJob {
    /// The trained model whose behaviour is transferred.
    pub transmitter: PathBuf,
    /// The model that learns it.
    pub receiver: PathBuf,
    /// Unlabelled training inputs.
    pub train: Dataset,
    /// Held-out inputs every figure is measured on (labels, if any, only score accuracy).
    pub validation: Dataset,
    /// The schedule, objective, executor and training device.
    pub options: TransferOptions,
    /// Width of the hub space.
    pub hub_dim: usize,
    /// Seed of everything random.
    pub seed: u64,
    /// Adapter for the transmitter [default: the best-scoring one].
    pub transmitter_adapter: Option<String>,
    /// Adapter for the receiver [default: the best-scoring one].
    pub receiver_adapter: Option<String>,
    /// ModeAQ: quantise the receiver as it fine-tunes and write it quantised.
    pub quantisation: Option<QuantisationAware>,
    /// Also carry the transmitter's hub vectors in the token.
    pub hub_vectors: bool,
    /// How the token is released and encoded.
    pub release: KnowledgeRelease,
    /// Where the knowledge token is written.
    pub token_out: PathBuf,
    /// Where the tuned (ModeAQ: quantised) receiver is written.
    pub receiver_out: PathBuf,
    /// ModeAQ: also write the float receiver here.
    pub float_out: Option<PathBuf>,
}

/// What a transfer job did.
#[derive(Debug, Clone)]
pub struct TransferSummary {
    /// The transfer's report.
    pub report: TransferReport,
    /// What writing the token did.
    pub written: Written,
}

/// Where a transfer writes its knowledge token unless told otherwise.
pub const TRANSFER_TOKEN: &str = "transfer.tbf";

/// Where a tuned receiver is written unless told otherwise: `<receiver stem>.tuned.onnx` in
/// the working directory.
pub fn tuned_receiver_path(receiver: &Path) -> PathBuf {
    let stem = receiver
        .file_stem()
        .map(|stem| stem.to_string_lossy().into_owned())
        .unwrap_or_else(|| "receiver".into());
    PathBuf::from(format!("{stem}.tuned.onnx"))
}

/// Writes the receivers of `outcome` (atomically): the quantised one (ModeAQ) or the float one
/// to `receiver_out`, and the float one of a ModeAQ transfer to `float_out` if given.
pub(super) fn save_receivers(
    outcome: &TransferOutcome,
    receiver_out: &Path,
    float_out: Option<&Path>,
) -> Result<()> {
    match &outcome.quantised {
        Some(quantised) => {
            if let Some(float_out) = float_out {
                outcome.receiver.save(float_out)?;
            }
            quantised.save(receiver_out)?;
        }
        None => outcome.receiver.save(receiver_out)?,
    }
    Ok(())
}

/// Refuses, before any work, a quantisation that cannot run and a path for the float receiver
/// of a transfer that is not ModeAQ.
pub(super) fn check_receivers(
    quantisation: Option<&QuantisationAware>,
    float_out: Option<&Path>,
) -> Result<()> {
    match quantisation {
        Some(aware) => aware.check(),
        None if float_out.is_some() => Err(Error::InvalidOption(
            "a path for the float receiver applies to ModeAQ only (quantise the receiver, or drop \
             the float receiver's path)"
                .into(),
        )),
        None => Ok(()),
    }
}

impl TransferJob {
    /// Runs the job, telling `progress` where it is (an error from `progress`, such as
    /// [`Error::Cancelled`](tessera_engine::Error::Cancelled), stops it with nothing written).
    pub fn run(
        &self,
        registry: &PluginRegistry,
        progress: &mut dyn FnMut(Progress) -> Result<()>,
    ) -> Result<TransferSummary> {
        check_receivers(self.quantisation.as_ref(), self.float_out.as_deref())?;
        let ledger = self.release.check_budget(
            &InputFingerprint::of(&self.train.inputs),
            Some(&InputFingerprint::of(&self.validation.inputs)),
        )?;
        let transmitter = OnnxModel::load(&self.transmitter)?;
        let receiver = OnnxModel::load(&self.receiver)?;
        let transmitter_plan = registry
            .choose_adapter(&transmitter, self.transmitter_adapter.as_deref())?
            .plan;
        let receiver_plan = registry
            .choose_adapter(&receiver, self.receiver_adapter.as_deref())?
            .plan;
        let mut transfer = ModeATransfer::with_plans(
            Participant::new(&transmitter, transmitter_plan)?,
            Participant::new(&receiver, receiver_plan)?,
        )
        .options(self.options)
        .hub_dim(self.hub_dim)
        .seed(self.seed);
        if let Some(aware) = self.quantisation {
            transfer = transfer.quantisation(aware);
        }
        let (outcome, mut knowledge) =
            transfer.execute_with_progress(&self.train, &self.validation, progress)?;
        if !self.hub_vectors {
            knowledge.hub = None;
        }
        let written = self.release.write(knowledge, ledger, &self.token_out)?;
        save_receivers(&outcome, &self.receiver_out, self.float_out.as_deref())?;
        Ok(TransferSummary {
            report: outcome.report,
            written,
        })
    }

    /// What `done`, this job's result, did, as JSON: what `tessera transfer --json` prints.
    pub fn report_json(&self, done: &TransferSummary) -> serde_json::Value {
        serde_json::json!({
            "transmitter": self.transmitter.display().to_string(),
            "receiver": self.receiver.display().to_string(),
            "receiver_out": self.receiver_out.display().to_string(),
            "float_receiver_out": self.float_out.as_ref().map(|path| path.display().to_string()),
            "token": self.token_out.display().to_string(),
            "written": done.written.to_json(),
            "report": done.report,
        })
    }
}
