//! The Tessera engine: transfers what one trained neural network knows into another network of
//! a different architecture, and packages the result for the token stage chain.
//!
//! Modules, bottom-up (the crates underneath: `tessera-tbf`, `tessera-tensor`, `tessera-onnx`,
//! `tessera-train`, `tessera-metrics`, `tessera-privacy`):
//! - [`backend`] — executors that run a model: tract (default) and ONNX Runtime (`ort`).
//! - [`capture`] — a dataset through a model, keeping outputs and tap-point activations.
//! - [`zoo`] — the bundled models and datasets (`onnx-models/`).
//! - [`config`] — `tessera.toml`.
//! - [`plugin`] — architecture adapters as dynamic plugins, and choosing one for a model.
//! - [`pooling`] — tap activations reduced to one vector per sample, as a plan says.
//! - [`chain`] — the stages a token passes through before it is written (privacy, TBF export,
//!   plugin stages).
//! - [`uhs`] — the Universal Hub Space: aligned encoders for two models' representations.
//! - [`transfer`] — Mode A: label-free transfer into a receiver of another architecture.
//!
//! Most programs use it through `tessera-host`, which re-exports it with the crates underneath.

pub mod backend;
pub mod capture;
pub mod chain;
pub mod config;
mod error;
mod parallel;
pub mod plugin;
pub mod pooling;
pub mod transfer;
pub mod uhs;
pub mod zoo;

pub use error::{Error, ErrorKind, Result};
