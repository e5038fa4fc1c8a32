//! The error type of `tessera-privacy`.

/// Why a differentially private release could not be made.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A privacy parameter (ε, δ, a clipping norm, a scale) is outside its valid range.
    #[error("privacy: {0}")]
    InvalidParameter(String),

    /// The release would spend more than the budget allows.
    #[error("privacy: {0}")]
    BudgetExceeded(String),

    /// The mechanism cannot be calibrated for these parameters in floating point.
    #[error("privacy: {0}")]
    Calibration(String),

    /// The operating system's random number source failed.
    #[error("privacy: {0}")]
    Entropy(String),

    /// A privacy ledger file is not a valid ledger (its message names the file and what to do).
    #[error("privacy: {0}")]
    Ledger(String),

    /// The operating system refused a read or write of a privacy ledger file.
    #[error(transparent)]
    Io(#[from] tessera_fs::IoError),
}

/// Shorthand for results carrying this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
