//! Plain tensors that cross between datasets, executors and the rest of Tessera, the
//! descriptions of tensors a model declares, and the files they are stored in.
//!
//! - [`tensor`] — [`Tensor`](tensor::Tensor) (an `ndarray` array of one element type),
//!   [`DType`](tensor::DType), [`TensorSpec`](tensor::TensorSpec).
//! - [`array_io`] — `.npy` and `.npz` files, written atomically.
//! - [`dataset`] — a model's inputs (and optional labels) read from such files.
//!
//! `tessera-host` re-exports these modules under the same names.

pub mod array_io;
pub mod dataset;
mod error;
pub mod tensor;

pub use error::{Error, Result};
