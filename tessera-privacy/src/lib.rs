//! Differentially private release of a summary vector computed from per-record vectors.
//!
//! **What.** [`release_mean`] publishes the mean of N per-record vectors (for example N hub
//! vectors of width H, one per input sample) with (ε, δ)-differential privacy: each record is
//! clipped to L2 norm C ([`clip_rows`]), the records are averaged, and Gaussian noise calibrated
//! by the analytic Gaussian mechanism ([`analytic_gaussian_sigma`], Balle & Wang 2018) is added to
//! every coordinate. A [`PrivacyAccountant`] adds up what successive releases spend.
//!
//! **Why.** A token carries knowledge learned from data; without noise, a summary vector can
//! reveal whether a particular sample was in that data. Clipping makes the sensitivity known,
//! the analytic calibration adds no more noise than the guarantee needs (the classical formula,
//! [`classical_gaussian_sigma`], adds more and is only valid for ε ≤ 1), and the accountant keeps
//! repeated releases within a budget.
//!
//! **Neighbouring relation.** The guarantee is stated for data sets that differ in one record,
//! either by replacing it ([`Neighbouring::ReplaceOne`], sensitivity 2C/N) or by adding or
//! removing it ([`Neighbouring::AddRemoveOne`], C/N, an approximation that treats N as public).
//! Every [`ReleaseReport`] names the relation it was made under.
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
mod mechanism;
mod release;

pub use accountant::{
    CompositionRule, CompositionSummary, PrivacyAccountant, PrivacyCost, RecordedRelease,
};
pub use clipping::{clip_rows, ClippedRecords};
pub use error::{Error, Result};
pub use mechanism::{analytic_gaussian_sigma, classical_gaussian_sigma, gaussian_mechanism_delta};
pub use release::{
    release_mean, secure_rng, seeded_rng, Neighbouring, Release, ReleaseOptions, ReleaseReport,
};
