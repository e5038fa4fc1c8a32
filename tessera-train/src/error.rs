//! The error type of `tessera-train`.

/// What can go wrong building, evaluating or training the trainable graph.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The model cannot be interpreted (an unsupported operator, a missing tensor).
    #[error(transparent)]
    Model(#[from] tessera_onnx::Error),

    /// A dataset does not fit the model or lacks what training needs.
    #[error(transparent)]
    Data(#[from] tessera_tensor::Error),

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

    /// A tensor computation failed; `context` says which step.
    #[error("{context}")]
    Compute {
        /// What was being computed.
        context: String,
        /// candle's error.
        #[source]
        source: Box<candle_core::Error>,
    },

    /// Tensors whose shapes or element types do not fit together.
    #[error("{0}")]
    Shape(String),

    /// An option outside its valid range.
    #[error("invalid option: {0}")]
    InvalidOption(String),

    /// Training produced a non-finite loss or gradient.
    #[error("training diverged: {0}")]
    Diverged(String),

    /// The device asked for is not available in this build or on this machine.
    #[error("device {device}: {message}")]
    Device {
        /// The device asked for.
        device: String,
        /// Why it cannot be used and what to do.
        message: String,
    },
}

impl Error {
    /// Wraps a candle error with what was being computed.
    pub fn compute(context: impl Into<String>) -> impl Fn(candle_core::Error) -> Error {
        let context = context.into();
        move |source| Error::Compute {
            context: context.clone(),
            source: Box::new(source),
        }
    }
}

/// Shorthand for results carrying this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
