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

    /// An execution backend failed or is unavailable.
    #[error("{backend}: {message}")]
    Backend {
        /// Which backend ("tract", "ONNX Runtime").
        backend: &'static str,
        /// What went wrong and what to do.
        message: String,
    },
}

impl Error {
    /// Wraps a candle error of the hub or the transfer with what was being computed (as the
    /// trainable graph's [`tessera_train::Error::Compute`]).
    pub fn compute(context: &'static str) -> impl Fn(candle_core::Error) -> Error {
        let wrap = tessera_train::Error::compute(context);
        move |source| Error::Train(wrap(source))
    }
}

/// Shorthand for results carrying the host's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
