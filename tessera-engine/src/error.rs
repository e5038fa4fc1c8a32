//! The error type of the engine, and of `tessera-host`'s API: one variant per kind of problem,
//! the errors of the crates underneath kept whole as sources. Messages say what was expected,
//! what was found and, where there is a choice, what to do.

use std::path::PathBuf;

/// Everything that can go wrong inside the host.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Reading, writing or validating a TBF token failed.
    #[error(transparent)]
    Tbf(#[from] tessera_tbf::TbfError),

    /// An ONNX model is malformed, uses something unsupported, or lacks a named tensor.
    #[error(transparent)]
    Model(#[from] tessera_onnx::Error),

    /// A tensor or dataset file does not fit or is malformed.
    #[error(transparent)]
    Data(#[from] tessera_tensor::Error),

    /// The trainable graph or its optimiser failed.
    #[error(transparent)]
    Train(#[from] tessera_train::Error),

    /// A fidelity measure was given inputs that do not fit.
    #[error(transparent)]
    Metrics(#[from] tessera_metrics::Error),

    /// A differentially private release was asked for with invalid parameters or refused.
    #[error(transparent)]
    Privacy(#[from] tessera_privacy::Error),

    /// The operating system refused a read or write.
    #[error(transparent)]
    Io(#[from] tessera_fs::IoError),

    /// Tensors whose shapes or element types do not fit together.
    #[error("{0}")]
    Shape(String),

    /// An option outside its valid range, or options that contradict each other.
    #[error("invalid option: {0}")]
    InvalidOption(String),

    /// Non-finite values where training needs finite ones: a diverged loss, a representation
    /// holding NaN or infinity.
    #[error("{0}")]
    Diverged(String),

    /// A receiver that cannot be quantised as asked (ModeAQ).
    #[error(transparent)]
    Quantisation(#[from] tessera_quant::Error),

    /// Knowledge that does not fit what it is used with: inputs whose fingerprint differs
    /// from the one it was emitted for, a receiver whose outputs cannot match its soft
    /// targets, or a token whose knowledge is malformed.
    #[error("knowledge: {0}")]
    KnowledgeMismatch(String),

    /// A report or token metadata could not be serialised.
    #[error("cannot serialise {context}")]
    Serialize {
        /// What was being serialised.
        context: &'static str,
        /// The underlying error.
        #[source]
        source: serde_json::Error,
    },

    /// The bundled model zoo's manifest is missing, malformed, or lacks what was asked for.
    #[error("model zoo {path}: {message}")]
    Zoo {
        /// The manifest.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },

    /// A plugin could not be loaded, or one of its adapters or stages failed.
    #[error("{subject}: {message}")]
    Plugin {
        /// What failed, with its kind: `plugin <file>`, `adapter <name>`, `stage <name>`.
        subject: String,
        /// What went wrong and what to do.
        message: String,
    },

    /// The configuration file is malformed.
    #[error("configuration {path}: {message}")]
    Config {
        /// The configuration file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },

    /// The caller stopped the work from its progress callback (an interrupt, a closed
    /// client); nothing was written.
    #[error("cancelled: {0}")]
    Cancelled(String),

    /// An execution backend failed or is unavailable.
    #[error("{backend}: {message}")]
    Backend {
        /// Which backend ("tract", "ONNX Runtime").
        backend: &'static str,
        /// What went wrong and what to do.
        message: String,
    },
}

/// What kind of failure an [`Error`] is, for callers that branch on it: the Python package's
/// exception classes and the C API's status codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// An option out of range, or options that contradict each other.
    InvalidArgument,
    /// A token that is malformed, tampered with, or fails authentication.
    Token,
    /// A model that is malformed, unsupported, or that no adapter can read.
    Model,
    /// Inputs, labels or tensors that are malformed or do not fit.
    Data,
    /// A transfer refused or failed: knowledge that does not fit, a diverged loss, a refused
    /// privacy budget, a failed backend.
    Transfer,
    /// The operating system refused a read or write.
    Io,
    /// The caller stopped the work.
    Cancelled,
}

impl Error {
    /// The kind of this failure.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::Tbf(_) => ErrorKind::Token,
            Error::Model(_) | Error::Plugin { .. } | Error::Quantisation(_) => ErrorKind::Model,
            Error::Data(_) | Error::Shape(_) => ErrorKind::Data,
            Error::InvalidOption(_) | Error::Config { .. } | Error::Zoo { .. } => {
                ErrorKind::InvalidArgument
            }
            Error::Io(_) => ErrorKind::Io,
            Error::Cancelled(_) => ErrorKind::Cancelled,
            Error::Train(_)
            | Error::Metrics(_)
            | Error::Privacy(_)
            | Error::Diverged(_)
            | Error::KnowledgeMismatch(_)
            | Error::Serialize { .. }
            | Error::Backend { .. } => ErrorKind::Transfer,
        }
    }

    /// Wraps a candle error of the hub or the transfer with what was being computed (as the
    /// trainable graph's [`tessera_train::Error::Compute`]).
    pub fn compute(context: &'static str) -> impl Fn(candle_core::Error) -> Error {
        let wrap = tessera_train::Error::compute(context);
        move |source| Error::Train(wrap(source))
    }
}

/// Shorthand for results carrying the host's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
