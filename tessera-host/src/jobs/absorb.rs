//! The receiver's half of the two-party protocol as a whole job: the token read and its
//! signer checked, the receiver tuned on the reference inputs from the token's knowledge alone,
//! the tuned receiver written (atomically).

use std::path::PathBuf;

use tessera_engine::backend::{Backend, Device, ExecutorOptions};
use tessera_engine::plugin::PluginRegistry;
use tessera_engine::transfer::{
    Absorber, Knowledge, KnowledgeHeader, Participant, Progress, QuantisationAware, TransferReport,
};
use tessera_engine::Result;
use tessera_onnx::OnnxModel;
use tessera_tbf::{self as tbf, LoadOptions, SignatureStatus, TrustStore};
use tessera_tensor::dataset::Dataset;

use super::transfer::{check_receivers, save_receivers};

/// Everything absorbing a knowledge token needs.
#[derive(Debug, Clone)]
pub struct AbsorbJob {
    /// The knowledge token (from an emit job or `tessera emit`).
    pub token: PathBuf,
    /// How the token is read and authenticated.
    pub load: LoadOptions,
    /// A trust file of signers' public keys: the token must be signed by one of them.
    pub trust: Option<PathBuf>,
    /// The model that learns.
    pub receiver: PathBuf,
    /// The reference inputs the knowledge was emitted for (checked by fingerprint).
    pub inputs: Dataset,
    /// The separate held-out inputs, when the knowledge was emitted with them (their labels,
    /// if any, only score accuracy).
    pub validation: Option<Dataset>,
    /// Seed of the receiver's hub encoder and batch order [default: the knowledge's].
    pub seed: Option<u64>,
    /// Adapter for the receiver [default: the best-scoring one].
    pub receiver_adapter: Option<String>,
    /// Where the receiver fine-tunes, and where ONNX Runtime measures it.
    pub device: Device,
    /// The executor that measures the quantised and float receivers (ModeAQ).
    pub backend: Backend,
    /// ModeAQ: quantise the receiver as it fine-tunes and write it quantised.
    pub quantisation: Option<QuantisationAware>,
    /// Where the tuned (ModeAQ: quantised) receiver is written.
    pub receiver_out: PathBuf,
    /// ModeAQ: also write the float receiver here.
    pub float_out: Option<PathBuf>,
}

/// What an absorb job did.
#[derive(Debug, Clone)]
pub struct AbsorbSummary {
    /// The absorption's report.
    pub report: TransferReport,
    /// What the token's knowledge records (the transmitter, its release).
    pub header: KnowledgeHeader,
    /// The (ε, δ) the token's knowledge was released at, (+∞, 0) without noise.
    pub privacy_spent: (f64, f64),
    /// Who signed the token: the trust file's name for the key, or the key itself when no
    /// trust file was given; `None` for an unsigned token.
    pub signer: Option<String>,
}

impl AbsorbJob {
    /// Runs the job, telling `progress` where it is (an error from `progress`, such as
    /// [`Error::Cancelled`](tessera_engine::Error::Cancelled), stops it with nothing written).
    pub fn run(
        &self,
        registry: &PluginRegistry,
        progress: &mut dyn FnMut(Progress) -> Result<()>,
    ) -> Result<AbsorbSummary> {
        check_receivers(self.quantisation.as_ref(), self.float_out.as_deref())?;
        let loaded = tbf::load(&self.token, &self.load)?;
        let signer = match &self.trust {
            Some(path) => Some(
                TrustStore::load(path)?
                    .require(&loaded.signature)?
                    .to_string(),
            ),
            None => match &loaded.signature {
                SignatureStatus::Valid { signer } => {
                    Some(format!("key {signer} (not checked against a trust file)"))
                }
                SignatureStatus::Unsigned => None,
            },
        };
        let knowledge = Knowledge::from_token(&loaded.token)?;
        let (train, held_out) = knowledge.datasets(&self.inputs, self.validation.as_ref())?;
        let receiver = OnnxModel::load(&self.receiver)?;
        let plan = registry
            .choose_adapter(&receiver, self.receiver_adapter.as_deref())?
            .plan;
        let mut absorber = Absorber::new(Participant::new(&receiver, plan)?)
            .device(self.device.training_device())
            .executor(ExecutorOptions::of(self.backend, self.device));
        if let Some(aware) = self.quantisation {
            absorber = absorber.quantisation(aware);
        }
        if let Some(seed) = self.seed {
            absorber = absorber.seed(seed);
        }
        let outcome = absorber.absorb_with_progress(&knowledge, &train, &held_out, progress)?;
        save_receivers(&outcome, &self.receiver_out, self.float_out.as_deref())?;
        Ok(AbsorbSummary {
            report: outcome.report,
            privacy_spent: knowledge.privacy_spent(),
            header: knowledge.header,
            signer,
        })
    }

    /// What `done`, this job's result, did, as JSON: what `tessera absorb --json` prints.
    pub fn report_json(&self, done: &AbsorbSummary) -> serde_json::Value {
        serde_json::json!({
            "token": self.token.display().to_string(),
            "receiver": self.receiver.display().to_string(),
            "receiver_out": self.receiver_out.display().to_string(),
            "float_receiver_out": self.float_out.as_ref().map(|path| path.display().to_string()),
            "signer": done.signer,
            "privacy": done.header.privacy,
            "report": done.report,
        })
    }
}
