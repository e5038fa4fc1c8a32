//! How knowledge leaves the transmitter's side, shared by `tessera emit` and `tessera
//! transfer`: released through the privacy stage, charged to the privacy ledger, signed, and
//! written as a TBF token.

use std::path::PathBuf;

use tessera_host::jobs::{rule_name, KnowledgeRelease, Written};
use tessera_host::privacy::{Neighbouring, PrivacyCost};
use tessera_host::tbf::{CrcVariant, QuantType};
use tessera_host::transfer::KnowledgePrivacy;

use super::output::field;

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

/// The readable lines of what writing a token did.
pub fn written_lines(written: &Written) -> Vec<String> {
    let mut lines = Vec::new();
    for report in &written.releases {
        lines.push(field(
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
    for (dataset, summary) in &written.spent {
        lines.push(field(
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
                written.ledger.display()
            ),
        ));
    }
    if let Some(signer) = &written.signer {
        lines.push(field("signed by", signer));
    }
    lines
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

    /// How the token is released, signed and encoded.
    pub fn release(&self) -> anyhow::Result<KnowledgeRelease> {
        Ok(KnowledgeRelease {
            privacy: self.privacy()?,
            ledger: self.ledger.clone(),
            dataset: self.dataset.clone(),
            budget: self
                .budget_epsilon
                .zip(self.budget_delta)
                .map(|(epsilon, delta)| PrivacyCost { epsilon, delta }),
            token_quant: self.token_quant,
            crc: self.crc,
            sign_key: self.sign_key.clone(),
        })
    }
}
