//! How knowledge leaves the transmitter's side: released through the privacy stage, charged
//! to the privacy ledger, signed, and written as a TBF token.

use std::path::{Path, PathBuf};

use tessera_engine::transfer::{InputFingerprint, Knowledge, KnowledgePrivacy, Split};
use tessera_engine::{Error, Result};
use tessera_privacy::{
    self as privacy, secure_rng, CompositionRule, CompositionSummary, PrivacyCost, PrivacyLedger,
    ReleaseCost, ReleaseReport,
};
use tessera_tbf::{CrcVariant, QuantType, SaveOptions, SigningKey};

/// Privacy, ledger, signing and encoding of a knowledge token.
#[derive(Debug, Clone)]
pub struct KnowledgeRelease {
    /// ε, δ, clipping and the neighbouring relation of the release.
    pub privacy: KnowledgePrivacy,
    /// The privacy ledger file [default: [`privacy::default_path`]].
    pub ledger: Option<PathBuf>,
    /// The id the release is charged to [default: `inputs-` and the reference inputs'
    /// fingerprint; separate held-out inputs are also charged to their own].
    pub dataset: Option<String>,
    /// Refuse a release that would take the data set's spend past this budget.
    pub budget: Option<PrivacyCost>,
    /// The token payload's number format.
    pub token_quant: QuantType,
    /// The token's CRC variant.
    pub crc: CrcVariant,
    /// Sign the token with the Ed25519 secret key in this file.
    pub sign_key: Option<PathBuf>,
}

impl Default for KnowledgeRelease {
    fn default() -> Self {
        Self {
            privacy: KnowledgePrivacy::default(),
            ledger: None,
            dataset: None,
            budget: None,
            token_quant: QuantType::Float16,
            crc: CrcVariant::Crc32c,
            sign_key: None,
        }
    }
}

/// What writing a knowledge token did.
#[derive(Debug, Clone)]
pub struct Written {
    /// Bytes written.
    pub bytes: u64,
    /// One report per released matrix.
    pub releases: Vec<ReleaseReport>,
    /// The ledger file.
    pub ledger: PathBuf,
    /// The totals spent after this release, by data set id.
    pub spent: Vec<(String, CompositionSummary)>,
    /// The signer's public key, hex.
    pub signer: Option<String>,
}

impl Written {
    /// The facts as JSON (`written` in `tessera transfer --json`).
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "bytes": self.bytes,
            "privacy": self.releases,
            "ledger": self.ledger.display().to_string(),
            "spent": self.spent.iter().map(|(dataset, summary)| serde_json::json!({
                "dataset": dataset,
                "total": summary.total,
                "rule": summary.rule,
                "budget": summary.budget,
            })).collect::<Vec<_>>(),
            "signer": self.signer,
        })
    }
}

/// A composition rule as reports name it: `basic`, `advanced` or `zcdp`.
pub fn rule_name(rule: CompositionRule) -> String {
    serde_json::to_value(rule)
        .ok()
        .and_then(|name| name.as_str().map(String::from))
        .unwrap_or_default()
}

/// The ledger file `explicit` names, or the default one.
pub fn ledger_path(explicit: Option<&Path>) -> Result<PathBuf> {
    explicit
        .map(Path::to_path_buf)
        .or_else(privacy::default_path)
        .ok_or_else(|| {
            Error::InvalidOption(
                "no privacy ledger location: name a ledger file, or set \
                 $TESSERA_PRIVACY_LEDGER, $XDG_DATA_HOME or $HOME"
                    .into(),
            )
        })
}

impl KnowledgeRelease {
    /// The data set ids a release is charged to: the named one (or one derived from the
    /// fingerprint of the reference `inputs`), and separate held-out inputs' own.
    fn datasets(
        &self,
        inputs: &InputFingerprint,
        separate_validation: Option<&InputFingerprint>,
    ) -> Vec<String> {
        let mut ids = vec![self
            .dataset
            .clone()
            .unwrap_or_else(|| format!("inputs-{}", inputs.sha256))];
        ids.extend(separate_validation.map(|held_out| format!("inputs-{}", held_out.sha256)));
        ids
    }

    /// Refuses, before any work, a release over `inputs` (and separate held-out inputs) that
    /// the ledger's budget cannot take. Returns the ledger.
    pub fn check_budget(
        &self,
        inputs: &InputFingerprint,
        separate_validation: Option<&InputFingerprint>,
    ) -> Result<PrivacyLedger> {
        let privacy = &self.privacy;
        let ledger = PrivacyLedger::open(ledger_path(self.ledger.as_deref())?)?;
        let cost = if privacy.epsilon.is_finite() {
            ReleaseCost::gaussian(privacy.epsilon, privacy.delta)?
        } else {
            ReleaseCost::approximate(privacy.epsilon, privacy.delta)
        };
        for dataset in self.datasets(inputs, separate_validation) {
            ledger.check(&dataset, cost, self.budget)?;
        }
        Ok(ledger)
    }

    /// Releases `knowledge` through the privacy stage, charges the ledger, and writes the
    /// token to `out` (atomically; nothing is written when the ledger refuses).
    pub fn write(
        &self,
        knowledge: Knowledge,
        mut ledger: PrivacyLedger,
        out: &Path,
    ) -> Result<Written> {
        let header = &knowledge.header;
        let separate = matches!(header.split, Split::Separate).then_some(&header.validation);
        let datasets = self.datasets(&header.inputs, separate);
        let (released, releases) = knowledge.release(&self.privacy, &mut secure_rng()?)?;
        let mut spent = Vec::new();
        for dataset in &datasets {
            let mut summary = None;
            for report in &releases {
                summary = Some(ledger.charge(
                    dataset,
                    report,
                    format!(
                        "knowledge of {} ({})",
                        released.header.transmitter.name, report.released
                    ),
                    self.budget,
                )?);
            }
            if let Some(summary) = summary {
                spent.push((dataset.clone(), summary));
            }
        }
        let signing_key = self.sign_key.as_deref().map(SigningKey::load).transpose()?;
        let signer = signing_key.as_ref().map(|key| key.verifying_key().to_hex());
        let bytes = released.save(
            out,
            &SaveOptions {
                quant: self.token_quant,
                crc: self.crc,
                signing_key,
                ..SaveOptions::default()
            },
        )?;
        Ok(Written {
            bytes,
            releases,
            ledger: ledger.path().to_path_buf(),
            spent,
            signer,
        })
    }
}
