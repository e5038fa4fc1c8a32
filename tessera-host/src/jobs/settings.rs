//! A transfer's settings as one JSON object — the keyword arguments of the Python package, the
//! options string of the C API and the arguments of the MCP server's `transfer` tool. Every key
//! is optional and named as the `tessera transfer` flag is (`--hub-epochs` is `hub_epochs`);
//! an absent key takes the command line's default, an unknown one is refused.

use std::path::PathBuf;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use tessera_engine::backend::{Backend, Device, ExecutorOptions};
use tessera_engine::transfer::{
    hold_out, Augmentation, KnowledgePrivacy, Objective, QuantisationAware, TransferOptions,
    DEFAULT_HOLD_OUT,
};
use tessera_engine::uhs::HubOptions;
use tessera_engine::{Error, Result};
use tessera_privacy::{Neighbouring, PrivacyCost};
use tessera_quant::{Precision, QuantisationOptions};
use tessera_tbf::{HmacKey, LoadOptions};
use tessera_tensor::dataset::Dataset;

use super::absorb::AbsorbJob;
use super::emit::{emit_augmentation, EmitJob};
use super::release::KnowledgeRelease;
use super::transfer::TransferJob;

/// ε as JSON can give it: a number, or `"inf"` for a release without noise.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Epsilon {
    /// A finite ε.
    Value(f64),
    /// `"inf"`.
    Named(InfiniteEpsilon),
}

/// The one name ε may have instead of a number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum InfiniteEpsilon {
    /// No noise and no clipping, recorded as such.
    Inf,
}

impl Epsilon {
    fn value(self) -> f64 {
        match self {
            Epsilon::Value(value) => value,
            Epsilon::Named(InfiniteEpsilon::Inf) => f64::INFINITY,
        }
    }
}

/// The settings of a transfer; see [`SETTINGS`] for what each means.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[allow(missing_docs)]
pub struct TransferSettings {
    pub epochs: Option<usize>,
    pub hub_epochs: Option<usize>,
    pub batch_size: Option<usize>,
    pub learning_rate: Option<f64>,
    pub embedding_rate_scale: Option<f64>,
    pub warmup_epochs: Option<f64>,
    pub cosine_decay: Option<bool>,
    pub weight_averaging: Option<f64>,
    pub selection_share: Option<f64>,
    pub patience: Option<usize>,
    pub objective: Option<String>,
    pub augmentation: Option<String>,
    pub hub_dim: Option<usize>,
    pub seed: Option<u64>,
    pub hold_out: Option<f64>,
    pub backend: Option<String>,
    pub device: Option<String>,
    pub transmitter_adapter: Option<String>,
    pub receiver_adapter: Option<String>,
    pub hub_vectors: Option<bool>,
    pub epsilon: Option<Epsilon>,
    pub delta: Option<f64>,
    pub clip_norm: Option<f64>,
    pub neighbouring: Option<String>,
    pub ledger: Option<PathBuf>,
    pub dataset: Option<String>,
    pub budget_epsilon: Option<f64>,
    pub budget_delta: Option<f64>,
    pub token_quant: Option<String>,
    pub crc: Option<String>,
    pub sign_key: Option<PathBuf>,
    pub quant: Option<String>,
}

/// Every setting: its key, its JSON type and what it does — the source of the MCP tool's
/// input schema and of the Python package's documentation.
pub const SETTINGS: &[(&str, &str, &str)] = &[
    ("epochs", "integer", "fine-tuning epochs [20]"),
    ("hub_epochs", "integer", "hub training epochs"),
    ("batch_size", "integer", "fine-tuning batch size [32]"),
    (
        "learning_rate",
        "number",
        "fine-tuning learning rate (Adam)",
    ),
    (
        "embedding_rate_scale",
        "number",
        "learning-rate multiplier of embedding tables",
    ),
    (
        "warmup_epochs",
        "number",
        "epochs the learning rate warms up over [1]",
    ),
    (
        "cosine_decay",
        "boolean",
        "decay the learning rate along a cosine",
    ),
    (
        "weight_averaging",
        "number",
        "horizon of the weight average, share of the steps (0: off)",
    ),
    (
        "selection_share",
        "number",
        "share of the inputs set aside to choose the kept state [0.1]",
    ),
    (
        "patience",
        "integer",
        "stop after this many epochs without a better state (0: off)",
    ),
    ("objective", "string", "full, output-only or hub-only"),
    ("augmentation", "string", "mix, none or sample-domain"),
    ("hub_dim", "integer", "width of the hub space [2048]"),
    ("seed", "integer", "seed of everything random [0]"),
    (
        "hold_out",
        "number",
        "share of the inputs held out when no held-out inputs are given [0.2]",
    ),
    (
        "backend",
        "string",
        "executor of the transmitter: tract or ort",
    ),
    ("device", "string", "cpu, cuda, tensorrt or auto"),
    (
        "transmitter_adapter",
        "string",
        "adapter for the transmitter [best-scoring]",
    ),
    (
        "receiver_adapter",
        "string",
        "adapter for the receiver [best-scoring]",
    ),
    (
        "hub_vectors",
        "boolean",
        "also write the transmitter's hub vectors into the token",
    ),
    (
        "epsilon",
        "number|string",
        "ε of the token's release, or \"inf\" for no noise [8]",
    ),
    ("delta", "number", "δ of the release [1e-5]"),
    (
        "clip_norm",
        "number",
        "L2 clipping norm of each soft-target row [1]",
    ),
    ("neighbouring", "string", "replace-one or add-remove-one"),
    (
        "ledger",
        "string",
        "privacy ledger file [the user's default ledger]",
    ),
    (
        "dataset",
        "string",
        "id the release is charged to in the ledger",
    ),
    (
        "budget_epsilon",
        "number",
        "refuse a release past this ε on the data set",
    ),
    ("budget_delta", "number", "the δ of that budget"),
    (
        "token_quant",
        "string",
        "token payload: float32, float16, bfloat16 or int8 [float16]",
    ),
    ("crc", "string", "token CRC: crc32c or ieee [crc32c]"),
    (
        "sign_key",
        "string",
        "sign the token with this Ed25519 secret key file",
    ),
    (
        "quant",
        "string",
        "ModeAQ: write the receiver as int8, int4 or fp16 [float, Mode A]",
    ),
];

/// `text` parsed as the setting `key`.
fn parse<T: FromStr<Err = String>>(key: &str, text: &Option<String>) -> Result<Option<T>> {
    text.as_deref()
        .map(|text| {
            text.parse()
                .map_err(|message| Error::InvalidOption(format!("{key}: {message}")))
        })
        .transpose()
}

/// ModeAQ at the precision `quant` names, with its defaults; `None` for Mode A.
fn quantisation(quant: &Option<String>) -> Result<Option<QuantisationAware>> {
    Ok(
        parse::<Precision>("quant", quant)?.map(|precision| QuantisationAware {
            quantisation: QuantisationOptions::at(precision),
            ..QuantisationAware::default()
        }),
    )
}

/// The executor and device `backend` and `device` name [default: tract on the CPU].
fn executor(backend: &Option<String>, device: &Option<String>) -> Result<(Backend, Device)> {
    Ok((
        parse::<Backend>("backend", backend)?.unwrap_or(Backend::Tract),
        parse::<Device>("device", device)?.unwrap_or(Device::Cpu),
    ))
}

/// Settings from a JSON object (`null`: every default), refused by key when unknown; `what`
/// names the job in the message.
fn from_json<T: Default + serde::de::DeserializeOwned>(
    value: serde_json::Value,
    what: &str,
) -> Result<T> {
    if value.is_null() {
        return Ok(T::default());
    }
    serde_json::from_value(value).map_err(|error| {
        Error::InvalidOption(format!(
            "{what} settings: {error} (the keys are those of `tessera {what}`'s flags, in \
             snake_case)"
        ))
    })
}

impl TransferSettings {
    /// Settings from a JSON object (`null` or an empty object: every default).
    pub fn from_json(value: serde_json::Value) -> Result<Self> {
        from_json(value, "transfer")
    }

    /// The schedule, objective, executor and device.
    pub fn options(&self) -> Result<TransferOptions> {
        let mut options = TransferOptions::default();
        let set = |target: &mut usize, value: Option<usize>| *target = value.unwrap_or(*target);
        set(&mut options.epochs, self.epochs);
        set(&mut options.hub.epochs, self.hub_epochs);
        set(&mut options.batch_size, self.batch_size);
        set(&mut options.patience, self.patience);
        let set = |target: &mut f64, value: Option<f64>| *target = value.unwrap_or(*target);
        set(&mut options.learning_rate, self.learning_rate);
        set(&mut options.embedding_rate_scale, self.embedding_rate_scale);
        set(&mut options.warmup_epochs, self.warmup_epochs);
        set(&mut options.weight_averaging, self.weight_averaging);
        set(&mut options.selection_share, self.selection_share);
        options.cosine_decay = self.cosine_decay.unwrap_or(options.cosine_decay);
        options.objective = match self.objective.as_deref() {
            None | Some("full") => Objective::FULL,
            Some("output-only") => Objective::OUTPUT_ONLY,
            Some("hub-only") => Objective::HUB_ONLY,
            Some(other) => {
                return Err(Error::InvalidOption(format!(
                    "objective: {other:?} is not one of full, output-only, hub-only"
                )))
            }
        };
        if let Some(augmentation) = parse::<Augmentation>("augmentation", &self.augmentation)? {
            options.augmentation = augmentation;
        }
        let (backend, device) = executor(&self.backend, &self.device)?;
        options.executor = ExecutorOptions::of(backend, device);
        options.device = device.training_device();
        Ok(options)
    }

    /// How the token is released and encoded.
    pub fn release(&self) -> Result<KnowledgeRelease> {
        let defaults = KnowledgePrivacy::default();
        let neighbouring = match self.neighbouring.as_deref() {
            None | Some("replace-one") => Neighbouring::ReplaceOne,
            Some("add-remove-one") => Neighbouring::AddRemoveOne,
            Some(other) => {
                return Err(Error::InvalidOption(format!(
                    "neighbouring: {other:?} is not one of replace-one, add-remove-one"
                )))
            }
        };
        let budget = match (self.budget_epsilon, self.budget_delta) {
            (Some(epsilon), Some(delta)) => Some(PrivacyCost { epsilon, delta }),
            (None, None) => None,
            _ => {
                return Err(Error::InvalidOption(
                    "budget_epsilon and budget_delta go together: give both or neither".into(),
                ))
            }
        };
        let fallback = KnowledgeRelease::default();
        Ok(KnowledgeRelease {
            privacy: KnowledgePrivacy {
                epsilon: self.epsilon.map_or(defaults.epsilon, Epsilon::value),
                delta: self.delta.unwrap_or(defaults.delta),
                clip_norm: self.clip_norm.unwrap_or(defaults.clip_norm),
                neighbouring,
            },
            ledger: self.ledger.clone(),
            dataset: self.dataset.clone(),
            budget,
            token_quant: parse("token_quant", &self.token_quant)?.unwrap_or(fallback.token_quant),
            crc: parse("crc", &self.crc)?.unwrap_or(fallback.crc),
            sign_key: self.sign_key.clone(),
        })
    }

    /// ModeAQ at the precision `quant` names, with its defaults; `None` for Mode A.
    pub fn quantisation(&self) -> Result<Option<QuantisationAware>> {
        quantisation(&self.quant)
    }

    /// The job these settings describe: `train` holds the unlabelled inputs; without
    /// `validation`, a `hold_out` share of them is held out to measure on.
    pub fn job(
        &self,
        files: JobFiles,
        train: Dataset,
        validation: Option<Dataset>,
    ) -> Result<TransferJob> {
        let seed = self.seed.unwrap_or(0);
        let (train, validation) = match validation {
            Some(validation) => (train, validation),
            None => hold_out(&train, self.hold_out.unwrap_or(DEFAULT_HOLD_OUT), seed)?,
        };
        Ok(TransferJob {
            transmitter: files.transmitter,
            receiver: files.receiver,
            train,
            validation,
            options: self.options()?,
            hub_dim: self.hub_dim.unwrap_or(HubOptions::default().dim),
            seed,
            transmitter_adapter: self.transmitter_adapter.clone(),
            receiver_adapter: self.receiver_adapter.clone(),
            quantisation: self.quantisation()?,
            hub_vectors: self.hub_vectors.unwrap_or(false),
            release: self.release()?,
            token_out: files.token_out,
            receiver_out: files.receiver_out,
            float_out: None,
        })
    }
}

impl TransferSettings {
    /// The emit job these settings describe (those of a transfer but the receiver's):
    /// `inputs` are the reference inputs; without `validation`, a `hold_out` share of them is
    /// held out. Without an `augmentation` key, the default depends on ε as `tessera emit`'s.
    pub fn emit_job(
        &self,
        transmitter: PathBuf,
        token_out: PathBuf,
        inputs: Dataset,
        validation: Option<Dataset>,
    ) -> Result<EmitJob> {
        for (key, given) in [
            ("receiver_adapter", self.receiver_adapter.is_some()),
            ("quant", self.quant.is_some()),
        ] {
            if given {
                return Err(Error::InvalidOption(format!(
                    "emit settings: {key} is the receiver's choice: give it to absorb"
                )));
            }
        }
        let release = self.release()?;
        let mut options = self.options()?;
        let chosen = self.augmentation.is_some().then_some(options.augmentation);
        options.augmentation = emit_augmentation(chosen, &release.privacy);
        Ok(EmitJob {
            transmitter,
            inputs,
            validation,
            hold_out: self.hold_out.unwrap_or(DEFAULT_HOLD_OUT),
            options,
            seed: self.seed.unwrap_or(0),
            hub_vectors: self.hub_vectors.unwrap_or(false),
            transmitter_adapter: self.transmitter_adapter.clone(),
            release,
            token_out,
        })
    }
}

/// The settings of an absorption; see [`ABSORB_SETTINGS`] for what each means.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[allow(missing_docs)]
pub struct AbsorbSettings {
    pub seed: Option<u64>,
    pub receiver_adapter: Option<String>,
    pub backend: Option<String>,
    pub device: Option<String>,
    pub quant: Option<String>,
    pub trust: Option<PathBuf>,
    pub hmac_key_hex: Option<String>,
    pub allow_unauthenticated: Option<bool>,
    pub max_file_mib: Option<u64>,
}

/// Every absorb setting: its key, its JSON type and what it does.
pub const ABSORB_SETTINGS: &[(&str, &str, &str)] = &[
    (
        "seed",
        "integer",
        "seed of the receiver's hub encoder and batch order [the knowledge's]",
    ),
    (
        "receiver_adapter",
        "string",
        "adapter for the receiver [best-scoring]",
    ),
    (
        "backend",
        "string",
        "executor that measures quantised receivers: tract or ort",
    ),
    ("device", "string", "cpu, cuda or cuda:N"),
    (
        "quant",
        "string",
        "ModeAQ: write the receiver as int8, int4 or fp16 [float, Mode A]",
    ),
    (
        "trust",
        "string",
        "trust file of signers' public keys: the token must be signed by one",
    ),
    (
        "hmac_key_hex",
        "string",
        "verify the token's HMAC-SHA256 with this key (hex)",
    ),
    (
        "allow_unauthenticated",
        "boolean",
        "accept a token without HMAC although a key was given",
    ),
    (
        "max_file_mib",
        "integer",
        "largest token accepted, in MiB [256]",
    ),
];

impl AbsorbSettings {
    /// Settings from a JSON object (`null` or an empty object: every default).
    pub fn from_json(value: serde_json::Value) -> Result<Self> {
        from_json(value, "absorb")
    }

    /// How the token is read and authenticated.
    pub fn load_options(&self) -> Result<LoadOptions> {
        let defaults = LoadOptions::default();
        Ok(LoadOptions {
            hmac_key: self
                .hmac_key_hex
                .as_deref()
                .map(HmacKey::from_hex)
                .transpose()?,
            allow_unauthenticated: self.allow_unauthenticated.unwrap_or(false),
            max_file_bytes: self
                .max_file_mib
                .map_or(defaults.max_file_bytes, |mib| mib.saturating_mul(1 << 20)),
        })
    }

    /// The absorb job these settings describe: `inputs` are the reference inputs the token
    /// was emitted for, `validation` its separate held-out inputs if it was emitted with them.
    pub fn job(
        &self,
        token: PathBuf,
        receiver: PathBuf,
        receiver_out: PathBuf,
        inputs: Dataset,
        validation: Option<Dataset>,
    ) -> Result<AbsorbJob> {
        let (backend, device) = executor(&self.backend, &self.device)?;
        Ok(AbsorbJob {
            token,
            load: self.load_options()?,
            trust: self.trust.clone(),
            receiver,
            inputs,
            validation,
            seed: self.seed,
            receiver_adapter: self.receiver_adapter.clone(),
            device,
            backend,
            quantisation: quantisation(&self.quant)?,
            receiver_out,
            float_out: None,
        })
    }
}

/// The files a transfer job reads and writes.
#[derive(Debug, Clone)]
pub struct JobFiles {
    /// The trained model whose behaviour is transferred.
    pub transmitter: PathBuf,
    /// The model that learns it.
    pub receiver: PathBuf,
    /// Where the tuned receiver is written.
    pub receiver_out: PathBuf,
    /// Where the knowledge token is written.
    pub token_out: PathBuf,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_setting_is_documented_and_every_documented_key_exists() {
        let all: serde_json::Map<String, serde_json::Value> = SETTINGS
            .iter()
            .map(|(key, kind, _)| {
                let sample = match *kind {
                    "integer" => serde_json::json!(1),
                    "number" | "number|string" => serde_json::json!(0.5),
                    "boolean" => serde_json::json!(true),
                    _ => serde_json::json!("x"),
                };
                (key.to_string(), sample)
            })
            .collect();
        let settings = TransferSettings::from_json(all.clone().into()).unwrap();
        let serialised = serde_json::to_value(&settings).unwrap();
        let keys: Vec<&String> = serialised.as_object().unwrap().keys().collect();
        assert_eq!(keys, all.keys().collect::<Vec<_>>());
        assert!(serialised
            .as_object()
            .unwrap()
            .values()
            .all(|value| !value.is_null()));
    }

    #[test]
    fn unknown_keys_and_bad_values_are_refused_by_name() {
        let error = TransferSettings::from_json(serde_json::json!({"epoch": 3})).unwrap_err();
        assert!(error.to_string().contains("epoch"), "{error}");
        let settings =
            TransferSettings::from_json(serde_json::json!({"objective": "most"})).unwrap();
        assert!(settings
            .options()
            .unwrap_err()
            .to_string()
            .contains("objective"));
        let settings = TransferSettings::from_json(serde_json::json!({"quant": "int3"})).unwrap();
        assert!(settings
            .quantisation()
            .unwrap_err()
            .to_string()
            .contains("quant"));
        let settings =
            TransferSettings::from_json(serde_json::json!({"budget_epsilon": 1.0})).unwrap();
        assert!(settings.release().is_err());
    }

    #[test]
    fn absorb_settings_are_documented_and_read_the_token_as_told() {
        let all: serde_json::Map<String, serde_json::Value> = ABSORB_SETTINGS
            .iter()
            .map(|(key, kind, _)| {
                let sample = match *kind {
                    "integer" => serde_json::json!(1),
                    "boolean" => serde_json::json!(true),
                    _ => serde_json::json!("x"),
                };
                (key.to_string(), sample)
            })
            .collect();
        let settings = AbsorbSettings::from_json(all.clone().into()).unwrap();
        let serialised = serde_json::to_value(&settings).unwrap();
        let keys: Vec<&String> = serialised.as_object().unwrap().keys().collect();
        assert_eq!(keys, all.keys().collect::<Vec<_>>());
        let error = settings.load_options().unwrap_err();
        assert!(error.to_string().to_lowercase().contains("hex"), "{error}");
        let settings = AbsorbSettings::from_json(
            serde_json::json!({"hmac_key_hex": "0a0b", "max_file_mib": 2}),
        )
        .unwrap();
        let load = settings.load_options().unwrap();
        assert_eq!(load.max_file_bytes, 2 << 20);
        assert_eq!(load.hmac_key, Some(HmacKey::from_hex("0a0b").unwrap()));
        let error = AbsorbSettings::from_json(serde_json::json!({"epochs": 3})).unwrap_err();
        assert!(error.to_string().contains("epochs"), "{error}");
    }

    #[test]
    fn emit_refuses_the_receivers_choices_and_picks_augmentation_by_epsilon() {
        let inputs = Dataset::new(
            tessera_tensor::tensor::Tensor::F32(ndarray::ArrayD::zeros(vec![10, 3])),
            None,
            "inputs.npy".into(),
        )
        .unwrap();
        let emit = |settings: serde_json::Value| {
            TransferSettings::from_json(settings).unwrap().emit_job(
                "tx.onnx".into(),
                "k.tbf".into(),
                inputs.clone(),
                None,
            )
        };
        let error = emit(serde_json::json!({"quant": "int8"})).unwrap_err();
        assert!(error.to_string().contains("quant"), "{error}");
        assert!(emit(serde_json::json!({"receiver_adapter": "mlp"})).is_err());
        let private = emit(serde_json::Value::Null).unwrap();
        assert_eq!(private.options.augmentation, Augmentation::None);
        let open = emit(serde_json::json!({"epsilon": "inf"})).unwrap();
        assert_eq!(open.options.augmentation, Augmentation::Mix);
        let chosen = emit(serde_json::json!({"augmentation": "mix", "epsilon": 4})).unwrap();
        assert_eq!(chosen.options.augmentation, Augmentation::Mix);
    }

    #[test]
    fn absent_keys_take_the_command_line_defaults() {
        let settings = TransferSettings::from_json(serde_json::Value::Null).unwrap();
        assert_eq!(settings.options().unwrap(), TransferOptions::default());
        assert_eq!(
            settings.release().unwrap().privacy,
            KnowledgePrivacy::default()
        );
        assert_eq!(settings.quantisation().unwrap(), None);
        let settings = TransferSettings::from_json(
            serde_json::json!({"epsilon": "inf", "epochs": 3, "quant": "int8"}),
        )
        .unwrap();
        assert!(settings.release().unwrap().privacy.epsilon.is_infinite());
        assert_eq!(settings.options().unwrap().epochs, 3);
        assert_eq!(
            settings
                .quantisation()
                .unwrap()
                .unwrap()
                .quantisation
                .precision,
            Precision::Int8
        );
    }
}
