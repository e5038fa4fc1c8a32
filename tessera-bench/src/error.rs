//! The error type of `tessera-bench`.

/// Why a benchmark could not run or its report could not be written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The engine failed on a model of the benchmark (boxed: it is the largest of the
    /// errors underneath).
    #[error(transparent)]
    Engine(Box<tessera_engine::Error>),

    /// A model of the benchmark is malformed.
    #[error(transparent)]
    Model(#[from] tessera_onnx::Error),

    /// A dataset of the benchmark is malformed.
    #[error(transparent)]
    Data(#[from] tessera_tensor::Error),

    /// The trainable graph failed.
    #[error(transparent)]
    Train(#[from] tessera_train::Error),

    /// A token of the benchmark could not be encoded or read.
    #[error(transparent)]
    Tbf(#[from] tessera_tbf::TbfError),

    /// A `tessera` process the benchmark ran as one party failed or could not start.
    #[error("{0}")]
    Party(String),

    /// A benchmark option is out of range, or selects nothing.
    #[error("invalid option: {0}")]
    InvalidOption(String),

    /// A chart or report could not be drawn or encoded.
    #[error("cannot draw {context}: {message}")]
    Render {
        /// What was being drawn.
        context: String,
        /// What went wrong.
        message: String,
    },
}

impl From<tessera_engine::Error> for Error {
    fn from(error: tessera_engine::Error) -> Self {
        Error::Engine(Box::new(error))
    }
}

/// Shorthand for results carrying this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
