//! Quantisation for Tessera's quantisation-aware transfer (ModeAQ).
//!
//! - [`grid`]: the integer grid exactly as ONNX `QuantizeLinear` defines it (round half to
//!   even, saturation) and scales chosen as ONNX Runtime's quantiser chooses them;
//! - [`calibrate`]: activation ranges from observed values (min/max, percentile, MSE);
//! - [`plan`]: which weights, activations and biases of a graph are quantised, honouring the
//!   adapter's [`QuantisationChoices`](tessera_api::QuantisationChoices), and which compute
//!   layers are large enough for an integer kernel to pay for quantising their input;
//! - [`export`]: the quantised model as standard ONNX — INT8 in the QDQ layout ONNX Runtime's
//!   own quantiser writes, INT4 weight-only, FP16 weight storage.
//!
//! The trainable graph (`tessera-train`) simulates the same grid while the receiver
//! fine-tunes, so the exported model computes what training saw.

pub mod calibrate;
mod error;
pub mod export;
pub mod grid;
pub mod plan;
mod scheme;

pub use error::{Error, Result};
pub use scheme::{
    ActivationPrecision, Int4Storage, Precision, QuantisationOptions, RangeMethod,
    DEFAULT_MIN_INTEGER_MACS, MIN_CONV_INPUT_CHANNELS, MIN_INTEGER_DEPTH,
};
