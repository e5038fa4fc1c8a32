//! The Tessera engine: transfers what one trained neural network knows into another network of a
//! different architecture, and packages the result as a TBF v1.1 token.
//!
//! Modules, bottom-up:
//! - [`tbf`] — the TBF v1.1 token format (reader, writer, zero-copy view), byte-compatible with
//!   `tessera-core` 0.1.0.
//! - [`atomic_file`] — writes that never leave a half-written file behind.
//! - [`tensor`] — plain tensors and tensor descriptions shared by every layer.
//! - [`onnx`] — reading, inspecting and editing ONNX models.
//! - [`array_io`], [`dataset`] — `.npy`/`.npz` files and the datasets made of them.
//! - [`backend`] — executors that run a model: tract (default) and ONNX Runtime (`ort`).
//! - [`capture`] — a dataset through a model, keeping outputs and tap-point activations.
//! - [`zoo`] — the bundled models and datasets (`onnx-models/`).
//! - [`config`] — `tessera.toml`.
//! - [`plugin`] — architecture adapters as dynamic plugins, and choosing one for a model.
//! - [`pooling`] — tap activations reduced to one vector per sample, as a plan says.
//! - [`chain`] — the stages a token passes through before it is written (privacy, TBF export,
//!   plugin stages).
//! - [`bench`] — benchmark reports against PyTorch eager.
//! - [`training`] — supervised training of ONNX models on the trainable graph
//!   ([`backend::candle`]).
//! - [`uhs`] — the Universal Hub Space: aligned encoders for two models' representations.
//! - [`transfer`] — Mode A: label-free transfer into a receiver of another architecture.
//! - [`privacy`] — differentially private release of summary vectors, with a budget accountant.
//! - [`metrics`] — fidelity measures: agreement, output KL, debiased CKA, retrieval, drift.
//!
//! The `tessera` command-line program is a thin layer over this library.

pub mod array_io;
pub mod atomic_file;
pub mod backend;
pub mod bench;
pub mod capture;
pub mod chain;
pub mod config;
pub mod dataset;
pub mod error;
pub mod metrics;
pub mod onnx;
pub mod plugin;
pub mod pooling;
pub mod privacy;
pub mod tbf;
pub mod tensor;
pub mod training;
pub mod transfer;
pub mod uhs;
pub mod zoo;

pub use error::{Error, Result};

/// The version of the plugin binary interface this host speaks.
pub use tessera_api::ABI_VERSION;
