//! The error type of the `tessera-host` library.

use crate::tbf::TbfError;

/// Everything that can go wrong inside the host, one variant per subsystem.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Reading, writing or validating a TBF token failed.
    #[error(transparent)]
    Tbf(#[from] TbfError),
}

/// Shorthand for results carrying the host's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
