//! The Tessera engine: transfers what one trained neural network knows into another network of a
//! different architecture, and packages the result as a TBF v1.1 token.
//!
//! Modules, bottom-up:
//! - [`tbf`] — the TBF v1.1 token format (reader, writer, zero-copy view), byte-compatible with
//!   `tessera-core` 0.1.0.
//! - [`atomic_file`] — writes that never leave a half-written file behind.
//!
//! The `tessera` command-line program is a thin layer over this library.

pub mod atomic_file;
pub mod error;
pub mod tbf;

pub use error::{Error, Result};

/// The version of the plugin binary interface this host speaks.
pub use tessera_api::ABI_VERSION;
