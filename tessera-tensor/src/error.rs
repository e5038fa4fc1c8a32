//! The error type of `tessera-tensor`.

use std::path::PathBuf;

/// What can go wrong with host tensors and the files they are stored in.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The operating system refused a read or write.
    #[error(transparent)]
    Io(#[from] tessera_fs::IoError),

    /// A dataset file is malformed or does not fit what it is used for.
    #[error("dataset {path}: {message}")]
    Dataset {
        /// The dataset file.
        path: PathBuf,
        /// What is wrong and what to do.
        message: String,
    },

    /// Tensors whose shapes or element types do not fit together.
    #[error("{0}")]
    Shape(String),
}

/// Shorthand for results carrying this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
