//! The error type of `tessera-metrics`.

/// Why a measure could not be computed: its inputs do not fit (row counts, widths, non-finite
/// values), which is reported instead of a meaningless number.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Inputs whose shapes or values do not fit the measure.
    #[error("{0}")]
    Shape(String),
}

/// Shorthand for results carrying this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
