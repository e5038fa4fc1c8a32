//! Executors: run an ONNX model on a batch of inputs and return the requested tensors.
//!
//! - [`tract`](self::tract) — pure Rust, CPU, always available (the default).
//! - `ort` — ONNX Runtime with the CPU, CUDA or TensorRT execution provider (cargo feature
//!   `ort`), loading `libonnxruntime` at run time.

#[cfg(feature = "ort")]
pub mod ort;
pub mod tract;

use crate::{Error, Result};
use tessera_onnx::OnnxModel;
use tessera_tensor::tensor::Tensor;
use tessera_train::TrainingDevice;

/// Which engine runs the model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    /// tract: pure Rust, CPU.
    #[default]
    Tract,
    /// ONNX Runtime through `ort` (requires the `ort` cargo feature).
    Ort,
}

impl std::str::FromStr for Backend {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text.to_ascii_lowercase().as_str() {
            "tract" => Ok(Backend::Tract),
            "ort" | "onnxruntime" => Ok(Backend::Ort),
            other => Err(format!("unknown backend {other:?}; use tract or ort")),
        }
    }
}

impl std::fmt::Display for Backend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Backend::Tract => "tract",
            Backend::Ort => "ort",
        })
    }
}

/// Where ONNX Runtime runs the model. tract always runs on the CPU.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Device {
    /// The CPU.
    #[default]
    Cpu,
    /// An NVIDIA GPU through the CUDA execution provider; an error if it cannot register.
    Cuda,
    /// An NVIDIA GPU through the TensorRT execution provider; an error if it cannot register.
    TensorRt,
    /// TensorRT, else CUDA, else CPU — whichever registers first, saying which.
    Auto,
}

impl std::str::FromStr for Device {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text.to_ascii_lowercase().as_str() {
            "cpu" => Ok(Device::Cpu),
            "cuda" | "gpu" => Ok(Device::Cuda),
            "tensorrt" | "trt" => Ok(Device::TensorRt),
            "auto" => Ok(Device::Auto),
            other => Err(format!(
                "unknown device {other:?}; use cpu, cuda, tensorrt or auto"
            )),
        }
    }
}

impl Device {
    /// Where training runs when the user asked for this device: the CPU for `cpu`, the first
    /// CUDA GPU for `cuda` and `tensorrt`, and for `auto` the first CUDA GPU if this build and
    /// machine can open one, else the CPU.
    pub fn training_device(self) -> TrainingDevice {
        match self {
            Device::Cpu => TrainingDevice::Cpu,
            Device::Cuda | Device::TensorRt => TrainingDevice::Cuda(0),
            Device::Auto if TrainingDevice::Cuda(0).open().is_ok() => TrainingDevice::Cuda(0),
            Device::Auto => TrainingDevice::Cpu,
        }
    }
}

impl std::fmt::Display for Device {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Device::Cpu => "cpu",
            Device::Cuda => "cuda",
            Device::TensorRt => "tensorrt",
            Device::Auto => "auto",
        })
    }
}

/// How to build an executor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ExecutorOptions {
    /// The engine.
    pub backend: Backend,
    /// The device (ONNX Runtime only; tract requires `Cpu` or `Auto`).
    pub device: Device,
    /// Threads ONNX Runtime may use within one operator (`None`: its default, one per core).
    /// tract runs on the calling thread.
    pub threads: Option<usize>,
}

impl ExecutorOptions {
    /// `backend` on `device`, with the runtime's own thread count; tract always runs on the
    /// CPU, so it ignores `device`.
    pub fn of(backend: Backend, device: Device) -> Self {
        Self {
            backend,
            device: match backend {
                Backend::Tract => Device::Cpu,
                _ => device,
            },
            threads: None,
        }
    }
}

/// A model ready to run: one input batch in, the requested tensors out.
pub trait Executor {
    /// The engine and device, e.g. `tract (CPU)`.
    fn description(&self) -> String;

    /// Runs one batch. `inputs` holds one tensor per model input, in declaration order; the
    /// result holds the tensors named when the executor was built, in that order.
    fn run(&mut self, inputs: &[Tensor]) -> Result<Vec<Tensor>>;
}

/// Builds an executor for `model` that returns the tensors named in `outputs` (model outputs
/// or any intermediate tensor).
pub fn open(
    model: &OnnxModel,
    outputs: &[String],
    options: ExecutorOptions,
) -> Result<Box<dyn Executor>> {
    model.check_tensor_names(outputs)?;
    match options.backend {
        Backend::Tract => {
            if matches!(options.device, Device::Cuda | Device::TensorRt) {
                return Err(Error::Backend {
                    backend: "tract",
                    message: format!(
                        "tract runs on the CPU only; use --backend ort for --device {}",
                        options.device
                    ),
                });
            }
            Ok(Box::new(tract::TractExecutor::new(model, outputs)?))
        }
        #[cfg(feature = "ort")]
        Backend::Ort => Ok(Box::new(ort::OrtExecutor::new(model, outputs, options)?)),
        #[cfg(not(feature = "ort"))]
        Backend::Ort => Err(Error::Backend {
            backend: "ONNX Runtime",
            message: "this build has no ONNX Runtime support; rebuild with `--features ort`".into(),
        }),
    }
}
