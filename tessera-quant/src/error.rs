//! What can go wrong while quantising a model.

/// A quantisation failure.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The model cannot be quantised as asked; the message says why and what to do.
    #[error("cannot quantise {model}: {message}")]
    Model {
        /// The model's name.
        model: String,
        /// Why.
        message: String,
    },
    /// The options contradict each other.
    #[error("quantisation options: {0}")]
    Options(String),
}

/// A quantisation result.
pub type Result<T> = std::result::Result<T, Error>;
