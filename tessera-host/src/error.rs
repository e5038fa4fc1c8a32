//! The error type of the `tessera-host` library.

use std::path::PathBuf;

use crate::tbf::TbfError;

/// Everything that can go wrong inside the host, one variant per kind of problem. Messages say
/// what was expected, what was found and, where there is a choice, what to do.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Reading, writing or validating a TBF token failed.
    #[error(transparent)]
    Tbf(#[from] TbfError),

    /// The operating system refused a read or write.
    #[error("cannot {action} {path}")]
    Io {
        /// What was being attempted.
        action: &'static str,
        /// The file concerned.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },

    /// An ONNX model file is malformed or uses something the host does not support.
    #[error("ONNX model {model}: {message}")]
    Model {
        /// The model's file name (or "<memory>").
        model: String,
        /// What is wrong.
        message: String,
    },

    /// A dataset file does not fit the model or is malformed.
    #[error("dataset {path}: {message}")]
    Dataset {
        /// The dataset file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },

    /// A tensor name that the model does not contain.
    #[error("the model has no tensor named {name:?}{hint}")]
    UnknownTensor {
        /// The requested name.
        name: String,
        /// Close matches, already formatted (may be empty).
        hint: String,
    },

    /// Tensors whose shapes or element types do not fit together.
    #[error("{0}")]
    Shape(String),

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

    /// A node of the trainable graph cannot be built or evaluated.
    #[error("node {node:?} ({op}): {message}")]
    Graph {
        /// The node's name.
        node: String,
        /// Its operator type.
        op: String,
        /// What went wrong.
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

    /// A differentially private release was asked for with invalid parameters or refused.
    #[error("privacy: {0}")]
    Privacy(String),
}

/// Shorthand for results carrying the host's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
