//! The transmitter's half of the two-party protocol as a whole job: the budget checked before
//! any work, the transmitter run on the reference inputs, the knowledge released and written
//! as a token (atomically).

use std::path::PathBuf;

use tessera_engine::plugin::PluginRegistry;
use tessera_engine::transfer::{
    Augmentation, Emitter, InputFingerprint, KnowledgeHeader, KnowledgePrivacy, Participant,
    Reference, TransferOptions,
};
use tessera_engine::Result;
use tessera_onnx::OnnxModel;
use tessera_tensor::dataset::Dataset;

use super::release::{KnowledgeRelease, Written};

/// Where an emission writes its knowledge token unless told otherwise.
pub const EMITTED_TOKEN: &str = "knowledge.tbf";

/// How an emitted token's inputs are enlarged: the `chosen` augmentation, else mixing without
/// noise and none with a finite ε, where every mixed set is another release that multiplies
/// the noise.
pub fn emit_augmentation(chosen: Option<Augmentation>, privacy: &KnowledgePrivacy) -> Augmentation {
    match chosen {
        Some(chosen) => chosen,
        None if privacy.epsilon.is_finite() => Augmentation::None,
        None => Augmentation::Mix,
    }
}

/// Everything emitting a transmitter's knowledge needs.
#[derive(Debug, Clone)]
pub struct EmitJob {
    /// The trained model whose knowledge is emitted.
    pub transmitter: PathBuf,
    /// The reference inputs both sides hold (unlabelled).
    pub inputs: Dataset,
    /// Separate held-out inputs the receiver will measure on; without them a `hold_out`
    /// share of `inputs` is.
    pub validation: Option<Dataset>,
    /// The share of `inputs` held out when there is no `validation`.
    pub hold_out: f64,
    /// The recipe the receiver follows (schedule, objective, augmentation, hub) and the
    /// executor that runs the transmitter.
    pub options: TransferOptions,
    /// Seed of the split, the synthetic inputs and the hub encoder.
    pub seed: u64,
    /// Also carry the transmitter's hub vectors.
    pub hub_vectors: bool,
    /// Adapter for the transmitter [default: the best-scoring one].
    pub transmitter_adapter: Option<String>,
    /// How the token is released and encoded.
    pub release: KnowledgeRelease,
    /// Where the token is written.
    pub token_out: PathBuf,
}

/// What an emit job did.
#[derive(Debug, Clone)]
pub struct EmitSummary {
    /// What the token's knowledge records (the transmitter, the recipe, the inputs).
    pub header: KnowledgeHeader,
    /// What writing the token did.
    pub written: Written,
    /// Seconds the whole job took.
    pub seconds: f64,
}

impl EmitJob {
    /// Runs the job; nothing is written unless every step before writing succeeded.
    pub fn run(&self, registry: &PluginRegistry) -> Result<EmitSummary> {
        let started = std::time::Instant::now();
        let ledger = self.release.check_budget(
            &InputFingerprint::of(&self.inputs.inputs),
            self.validation
                .as_ref()
                .map(|held_out| InputFingerprint::of(&held_out.inputs))
                .as_ref(),
        )?;
        let transmitter = OnnxModel::load(&self.transmitter)?;
        let plan = registry
            .choose_adapter(&transmitter, self.transmitter_adapter.as_deref())?
            .plan;
        let reference = match &self.validation {
            Some(validation) => Reference::Separate {
                train: &self.inputs,
                validation,
            },
            None => Reference::HoldOut {
                inputs: &self.inputs,
                share: self.hold_out,
            },
        };
        let knowledge = Emitter::new(Participant::new(&transmitter, plan)?)
            .options(self.options)
            .seed(self.seed)
            .hub_vectors(self.hub_vectors)
            .emit(reference)?;
        let header = knowledge.header.clone();
        let written = self.release.write(knowledge, ledger, &self.token_out)?;
        Ok(EmitSummary {
            header,
            written,
            seconds: started.elapsed().as_secs_f64(),
        })
    }

    /// What `done`, this job's result, did, as JSON: what `tessera emit --json` prints.
    pub fn report_json(&self, done: &EmitSummary) -> serde_json::Value {
        let header = &done.header;
        serde_json::json!({
            "token": self.token_out.display().to_string(),
            "transmitter": header.transmitter,
            "inputs": header.inputs,
            "train_inputs": header.train.rows,
            "validation_inputs": header.validation.rows,
            "synthetic_sets": header.synthetic_sets,
            "hub_vectors": self.hub_vectors,
            "written": done.written.to_json(),
            "seconds": done.seconds,
        })
    }
}
