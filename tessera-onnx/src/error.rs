//! The error type of `tessera-onnx`.

/// What can go wrong reading, inspecting or editing an ONNX model.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The operating system refused a read or write.
    #[error(transparent)]
    Io(#[from] tessera_fs::IoError),

    /// A model file is malformed or uses something the host does not support.
    #[error("ONNX model {model}: {message}")]
    Model {
        /// The model's file name (or "<memory>").
        model: String,
        /// What is wrong and what to do.
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
}

/// Shorthand for results carrying this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
