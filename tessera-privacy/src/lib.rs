//! Differentially private release of data computed from per-record vectors, with accounting
//! that keeps successive releases within a budget, in one run and across runs.
//!
//! **What.** [`release_mean`] publishes the mean of N per-record vectors (for example N hub
//! vectors of width H, one per input sample) with (ε, δ)-differential privacy: each record is
//! clipped to L2 norm C ([`clip_rows`]), the records are averaged, and Gaussian noise calibrated
//! by the analytic Gaussian mechanism ([`analytic_gaussian_sigma`], Balle & Wang 2018) is added to
//! every coordinate. [`release_rows`] publishes a whole matrix instead, one row per input (for
//! example a model's logits on each reference input): every row is clipped to C and every entry
//! gets noise, calibrated to the sensitivity √k·2C (or √k·C) of a matrix in which one record can
//! change up to k rows. Every release reports its zCDP cost ρ = Δ²/(2σ²) besides (ε, δ).
//!
//! A [`PrivacyAccountant`] adds up what successive releases spend under basic composition,
//! zCDP composition (Bun & Steinke 2016: ρ adds up, and ρ-zCDP is (ρ + 2√(ρ ln(1/δ)), δ)-DP) and
//! advanced composition, reports the tightest, and enforces a budget under the tightest rule it
//! can state within the budget's δ (basic or zCDP). A [`PrivacyLedger`] keeps the same accounting
//! in a JSON file per data set id, so that a budget holds across runs: [`PrivacyLedger::check`]
//! tells whether a release would fit before it is made, [`PrivacyLedger::charge`] records it or
//! refuses it.
//!
//! **Why.** A token carries knowledge learned from data; without noise, a summary vector can
//! reveal whether a particular sample was in that data. Clipping makes the sensitivity known,
//! the analytic calibration adds no more noise than the guarantee needs (the classical formula,
//! [`classical_gaussian_sigma`], adds more and is only valid for ε ≤ 1), zCDP accounting makes
//! many small releases cost far less than adding up their ε, and the accountant and ledger keep
//! repeated releases within a budget — a budget kept only in memory resets with every run.
//!
//! **Neighbouring relation.** The guarantee is stated for data sets that differ in one record,
//! either by replacing it ([`Neighbouring::ReplaceOne`], sensitivity 2C/N for a mean) or by
//! adding or removing it ([`Neighbouring::AddRemoveOne`], C/N, an approximation that treats N as
//! public; for rows, √k·2C and √k·C). Every [`ReleaseReport`] names the relation it was made
//! under.
//!
//! **Threat model.** The adversary sees the released vector and its report, and may know or
//! choose every record but one; the guarantee bounds what the output reveals about that one
//! record. The host that holds the records and computes the release is trusted, and the noise
//! must come from a cryptographically secure generator ([`secure_rng`]) that the adversary
//! cannot predict.
//!
//! **Known caveat.** Sampling Gaussian noise in floating point is not a perfect implementation
//! of the mechanism: the pattern of representable outputs can leak information (Mironov, "On
//! Significance of the Least Significant Bits for Differential Privacy", CCS 2012).
//!
//! `tessera-host` re-exports this crate as `tessera_host::privacy`.

mod accountant;
mod clipping;
mod error;
mod ledger;
mod mechanism;
mod release;

pub use accountant::{
    zcdp_to_dp, CompositionRule, CompositionSummary, PrivacyAccountant, PrivacyCost,
    RecordedRelease, ReleaseCost,
};
pub use clipping::{clip_rows, ClippedRecords};
pub use error::{Error, Result};
pub use ledger::{default_path, LedgerDataset, LedgerRelease, PrivacyLedger};
pub use mechanism::{analytic_gaussian_sigma, classical_gaussian_sigma, gaussian_mechanism_delta};
pub use release::{
    release_mean, release_rows, secure_rng, seeded_rng, Neighbouring, Release, ReleaseOptions,
    ReleaseReport, RowRelease,
};
