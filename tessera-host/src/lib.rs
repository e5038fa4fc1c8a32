//! The Tessera host: transfers what one trained neural network knows into another network of a
//! different architecture, and packages the result as a TBF v1.1 token.
//!
//! This crate is the one API over the crates that do each job; each module below is one of
//! them, re-exported under the name it has always had here:
//! - [`tbf`] — the TBF v1.1 token format (`tessera-tbf`; depends on no ML crate).
//! - [`atomic_file`] — writes that never leave a half-written file behind (`tessera-fs`).
//! - [`tensor`], [`array_io`], [`dataset`] — plain tensors, `.npy`/`.npz` files and datasets
//!   (`tessera-tensor`).
//! - [`onnx`] — reading, inspecting and editing ONNX models (`tessera-onnx`).
//! - [`backend`] — executors that run a model: tract (default) and ONNX Runtime (`ort`);
//!   [`backend::candle`] is the trainable graph (`tessera-train`).
//! - [`training`] — supervised training on the trainable graph (`tessera-train`).
//! - [`metrics`] — fidelity measures (`tessera-metrics`).
//! - [`privacy`] — differentially private release with a budget accountant
//!   (`tessera-privacy`).
//! - [`quant`] — the quantisation grid, calibration and INT8/INT4/FP16 ONNX export
//!   (`tessera-quant`).
//! - [`capture`], [`zoo`], [`config`], [`plugin`], [`pooling`], [`chain`], [`uhs`],
//!   [`transfer`] — the engine (`tessera-engine`): capture, plugins, the hub and Mode A.
//! - [`jobs`] — whole jobs as the CLI, the Python package, the C API and the MCP server run
//!   them: a transfer with its token, inspection, capture.
//! - `bench` — benchmark reports (`tessera-bench`, with the `bench` feature).
//!
//! Cargo features: `ort` (the ONNX Runtime executor), `cuda` (training on NVIDIA GPUs),
//! `bench` (the benchmarks).
//!
//! ```
//! use tessera_host::backend::candle::TrainingDevice;
//! use tessera_host::tbf::{self, KnowledgeType, LoadOptions, SaveOptions, Token};
//!
//! let bytes = tbf::encode(&Token::new(KnowledgeType::Activation, vec![0.5, -1.0]), &SaveOptions::default())?;
//! assert_eq!(tbf::decode(&bytes, &LoadOptions::default())?.token.vector(), &[0.5, -1.0]);
//! assert_eq!("cpu".parse::<TrainingDevice>().ok(), Some(TrainingDevice::Cpu));
//! # Ok::<(), tessera_host::Error>(())
//! ```

pub use tessera_engine::{capture, chain, config, plugin, pooling, transfer, uhs, zoo};
pub use tessera_fs as atomic_file;
pub use tessera_metrics as metrics;
pub use tessera_onnx as onnx;
pub use tessera_privacy as privacy;
pub use tessera_quant as quant;
pub use tessera_tbf as tbf;
pub use tessera_tensor::{array_io, dataset, tensor};
pub use tessera_train::training;

pub mod jobs;

#[cfg(feature = "bench")]
pub use tessera_bench as bench;

/// Executors that run a model, and the trainable graph that differentiates one.
pub mod backend {
    pub use tessera_engine::backend::*;
    pub use tessera_train as candle;
}

pub use tessera_engine::{Error, ErrorKind, Result};

/// The version of the plugin binary interface this host speaks.
pub use tessera_api::ABI_VERSION;
