//! How knowledge leaves the transmitter's side, shared by `tessera emit` and `tessera
//! transfer`: released through the privacy stage, charged to the privacy ledger, signed, and
//! written as a TBF token.

use std::path::{Path, PathBuf};

use anyhow::Context;
use tessera_host::privacy::{
    self, secure_rng, CompositionRule, CompositionSummary, Neighbouring, PrivacyCost,
    PrivacyLedger, ReleaseCost, ReleaseReport,
};
use tessera_host::tbf::{CrcVariant, QuantType, SaveOptions, SigningKey};
use tessera_host::transfer::{InputFingerprint, Knowledge, KnowledgePrivacy, Split};

/// The neighbouring relation of the release, as the command line names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum NeighbouringChoice {
    /// Neighbouring reference sets differ by one replaced input.
    ReplaceOne,
    /// Neighbouring reference sets differ by one added or removed input.
    AddRemoveOne,
}

/// Privacy, ledger, signing and encoding of a knowledge token.
#[derive(Debug, clap::Args)]
pub struct KnowledgeArgs {
    /// ε of the release of everything the token carries from the transmitter (`inf`: no noise
    /// and no clipping, recorded as such).
    #[arg(long, default_value = "8")]
    epsilon: String,

    /// δ of the release.
    #[arg(long, default_value_t = KnowledgePrivacy::default().delta)]
    delta: f64,

    /// Each soft-target row (centred logits at the objective's temperature) is clipped to this
    /// L2 norm; the noise grows with it.
    #[arg(long, default_value_t = KnowledgePrivacy::default().clip_norm)]
    clip_norm: f64,

    /// Which reference sets count as neighbours.
    #[arg(long, value_enum, default_value_t = NeighbouringChoice::ReplaceOne)]
    neighbouring: NeighbouringChoice,

    /// The privacy ledger file [default: $TESSERA_PRIVACY_LEDGER, else
    /// $XDG_DATA_HOME/tessera/privacy-ledger.json, else
    /// ~/.local/share/tessera/privacy-ledger.json].
    #[arg(long, value_name = "FILE")]
    ledger: Option<PathBuf>,

    /// The id the release is charged to in the ledger [default: `inputs-` and the reference
    /// inputs' fingerprint; separate held-out inputs are also charged to their own].
    #[arg(long, value_name = "ID")]
    dataset: Option<String>,

    /// Refuse the release if the spend on the data set would pass this ε (recorded in the
    /// ledger as the data set's budget; later runs without it keep it).
    #[arg(long, requires = "budget_delta")]
    budget_epsilon: Option<f64>,

    /// The δ of the budget.
    #[arg(long, requires = "budget_epsilon")]
    budget_delta: Option<f64>,

    /// The token payload's number format: float32, float16, bfloat16 or int8 (`--quant` of a
    /// transfer is the receiver's).
    #[arg(long, default_value = "float16")]
    token_quant: QuantType,

    /// CRC variant: crc32c, or ieee for peers running a default tessera-core install.
    #[arg(long, default_value = "crc32c")]
    crc: CrcVariant,

    /// Sign the token with this Ed25519 secret key file (from `tessera keygen`).
    #[arg(long, value_name = "KEY")]
    sign_key: Option<PathBuf>,
}

/// What writing a knowledge token did.
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
    /// The facts as JSON, for `--json` output.
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

    /// One line per fact, for text output.
    pub fn lines(&self) -> Vec<String> {
        let mut lines = Vec::new();
        for report in &self.releases {
            lines.push(super::output::field(
                "privacy",
                format!(
                    "epsilon {}, delta {}, clip norm {}, sigma {:.4}, {} rows per record ({})",
                    report.epsilon,
                    report.delta,
                    report.clip_norm,
                    report.sigma,
                    report.rows_per_record,
                    report.neighbouring
                ),
            ));
        }
        for (dataset, summary) in &self.spent {
            lines.push(super::output::field(
                "ledger",
                format!(
                    "{dataset}: spent epsilon {:.4}, delta {:.2e} ({} composition{}) in {}",
                    summary.total.epsilon,
                    summary.total.delta,
                    rule_name(summary.rule),
                    summary
                        .budget
                        .map(|b| format!("; budget epsilon {}, delta {}", b.epsilon, b.delta))
                        .unwrap_or_default(),
                    self.ledger.display()
                ),
            ));
        }
        if let Some(signer) = &self.signer {
            lines.push(super::output::field("signed by", signer));
        }
        lines
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
pub fn ledger_path(explicit: Option<&Path>) -> anyhow::Result<PathBuf> {
    explicit
        .map(Path::to_path_buf)
        .or_else(privacy::default_path)
        .context(
            "no privacy ledger location: set --ledger, $TESSERA_PRIVACY_LEDGER, $XDG_DATA_HOME or \
             $HOME",
        )
}

impl KnowledgeArgs {
    /// The release's privacy parameters.
    pub fn privacy(&self) -> anyhow::Result<KnowledgePrivacy> {
        let epsilon = if self.epsilon.eq_ignore_ascii_case("inf") {
            f64::INFINITY
        } else {
            self.epsilon.parse::<f64>().map_err(|_| {
                anyhow::anyhow!("--epsilon {:?} is not a number or inf", self.epsilon)
            })?
        };
        Ok(KnowledgePrivacy {
            epsilon,
            delta: self.delta,
            clip_norm: self.clip_norm,
            neighbouring: match self.neighbouring {
                NeighbouringChoice::ReplaceOne => Neighbouring::ReplaceOne,
                NeighbouringChoice::AddRemoveOne => Neighbouring::AddRemoveOne,
            },
        })
    }

    fn budget(&self) -> Option<PrivacyCost> {
        Some(PrivacyCost {
            epsilon: self.budget_epsilon?,
            delta: self.budget_delta?,
        })
    }

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
    ) -> anyhow::Result<PrivacyLedger> {
        let privacy = self.privacy()?;
        let ledger = PrivacyLedger::open(ledger_path(self.ledger.as_deref())?)?;
        let cost = if privacy.epsilon.is_finite() {
            ReleaseCost::gaussian(privacy.epsilon, privacy.delta)?
        } else {
            ReleaseCost::approximate(privacy.epsilon, privacy.delta)
        };
        for dataset in self.datasets(inputs, separate_validation) {
            ledger.check(&dataset, cost, self.budget())?;
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
    ) -> anyhow::Result<Written> {
        let privacy = self.privacy()?;
        let header = &knowledge.header;
        let separate = matches!(header.split, Split::Separate).then_some(&header.validation);
        let datasets = self.datasets(&header.inputs, separate);
        let (released, releases) = knowledge.release(&privacy, &mut secure_rng()?)?;
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
                    self.budget(),
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
