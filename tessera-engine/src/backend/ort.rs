//! The ONNX Runtime executor (cargo feature `ort`), on the CPU, CUDA or TensorRT execution
//! provider. `libonnxruntime` is loaded at run time, found in this order:
//!
//! 1. the file named by `ORT_DYLIB_PATH`;
//! 2. the `onnxruntime` or `onnxruntime-gpu` Python package importable by `python3` (or by the
//!    interpreter named in `TESSERA_PYTHON`): its `capi/libonnxruntime.so.*`;
//! 3. `libonnxruntime.so` on the system's library search path.

use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;

use ort::environment::Environment;
use ort::ep::{self, ExecutionProvider};
use ort::session::Session;
use ort::value::{TensorElementType, ValueType};

use super::{Device, Executor, ExecutorOptions};
use crate::{Error, Result};
use tessera_onnx::OnnxModel;
use tessera_tensor::tensor::Tensor;

fn ort_error(message: impl Into<String>) -> Error {
    Error::Backend {
        backend: "ONNX Runtime",
        message: message.into(),
    }
}

/// Runs a model with ONNX Runtime.
pub struct OrtExecutor {
    session: Session,
    input_names: Vec<String>,
    output_names: Vec<String>,
    description: String,
}

impl OrtExecutor {
    /// Prepares `model` to return `outputs` on the device and with the threads `options` name.
    pub fn new(model: &OnnxModel, outputs: &[String], options: ExecutorOptions) -> Result<Self> {
        let device = options.device;
        let environment = environment()?;
        let mut declared: Vec<String> = model.outputs().into_iter().map(|spec| spec.name).collect();
        // A graph input asked for as an output is answered with the input itself (ONNX Runtime
        // cannot return an input as an output).
        declared.extend(model.inputs().into_iter().map(|spec| spec.name));
        let extra: Vec<String> = outputs
            .iter()
            .filter(|name| !declared.contains(name))
            .cloned()
            .collect();
        // ONNX Runtime returns only declared graph outputs: declare the intermediate tensors
        // too, with the types and shapes shape analysis finds for them.
        let runnable = if extra.is_empty() {
            model.clone()
        } else {
            model.with_extra_outputs(&super::tract::analyse_shapes(model, &extra)?)
        };
        let (provider, note) = choose_provider(device)?;
        let mut builder = Session::builder(environment)
            .map_err(|error| ort_error(format!("cannot create a session: {error}")))?;
        if let Some(threads) = options.threads {
            builder = builder
                .with_intra_threads(threads)
                .map_err(|error| ort_error(format!("cannot use {threads} threads: {error}")))?;
        }
        if let Some(provider) = provider {
            builder = builder
                .with_execution_providers([provider])
                .map_err(|error| {
                    ort_error(format!(
                        "the {device} execution provider failed to register: {error}"
                    ))
                })?;
        }
        let session = builder
            .commit_from_memory(&runnable.to_bytes())
            .map_err(|error| ort_error(format!("cannot load {}: {error}", model.name())))?;
        let input_names = session
            .inputs()
            .iter()
            .map(|input| input.name().to_string())
            .collect();
        Ok(Self {
            session,
            input_names,
            output_names: outputs.to_vec(),
            description: format!("ONNX Runtime ({note})"),
        })
    }
}

impl Executor for OrtExecutor {
    fn description(&self) -> String {
        self.description.clone()
    }

    fn run(&mut self, inputs: &[Tensor]) -> Result<Vec<Tensor>> {
        if inputs.len() != self.input_names.len() {
            return Err(Error::Shape(format!(
                "the model takes {} inputs, {} were given",
                self.input_names.len(),
                inputs.len()
            )));
        }
        let values = self
            .input_names
            .iter()
            .zip(inputs)
            .map(|(name, tensor)| {
                let value: ort::session::SessionInputValue<'_> = match tensor {
                    Tensor::F32(array) => {
                        ort::value::Tensor::from_array(array.clone()).map(Into::into)
                    }
                    Tensor::I64(array) => {
                        ort::value::Tensor::from_array(array.clone()).map(Into::into)
                    }
                }
                .map_err(|error| ort_error(format!("cannot pass input {name}: {error}")))?;
                Ok((name.clone(), value))
            })
            .collect::<Result<Vec<_>>>()?;
        let outputs = self
            .session
            .run(values)
            .map_err(|error| ort_error(format!("running the model failed: {error}")))?;
        self.output_names
            .iter()
            .map(|name| {
                if let Some(index) = self.input_names.iter().position(|input| input == name) {
                    return Ok(inputs[index].clone());
                }
                let value = outputs
                    .get(name.as_str())
                    .ok_or_else(|| ort_error(format!("no output named {name}")))?;
                let element = match value.dtype() {
                    ValueType::Tensor { ty, .. } => *ty,
                    other => {
                        return Err(ort_error(format!(
                            "output {name} is a {other}, not a tensor"
                        )))
                    }
                };
                let extract =
                    |error: ort::Error| ort_error(format!("reading output {name}: {error}"));
                match element {
                    TensorElementType::Float32 => value
                        .try_extract_array::<f32>()
                        .map(|array| Tensor::F32(array.to_owned()))
                        .map_err(extract),
                    TensorElementType::Int64 => value
                        .try_extract_array::<i64>()
                        .map(|array| Tensor::I64(array.to_owned()))
                        .map_err(extract),
                    other => Err(ort_error(format!(
                        "output {name} has element type {other}; float32 and int64 are supported"
                    ))),
                }
            })
            .collect()
    }
}

/// The process-wide ONNX Runtime environment, created on first use from the library found.
fn environment() -> Result<&'static Environment> {
    static ENVIRONMENT: OnceLock<std::result::Result<Environment, String>> = OnceLock::new();
    ENVIRONMENT
        .get_or_init(|| {
            let library = locate_library()?;
            ort::init_from(&library)
                .map_err(|error| format!("cannot load {}: {error}", library.display()))?
                .with_name("tessera")
                .build()
                .map_err(|error| {
                    format!(
                        "cannot start ONNX Runtime from {}: {error}",
                        library.display()
                    )
                })
        })
        .as_ref()
        .map_err(|message| ort_error(message.clone()))
}

/// Finds `libonnxruntime`; see the module documentation for the order.
pub fn locate_library() -> std::result::Result<PathBuf, String> {
    if let Some(path) = std::env::var_os("ORT_DYLIB_PATH") {
        let path = PathBuf::from(path);
        return if path.is_file() {
            Ok(path)
        } else {
            Err(format!(
                "ORT_DYLIB_PATH names {}, which is not a file",
                path.display()
            ))
        };
    }
    if let Some(path) = python_package_library() {
        return Ok(path);
    }
    Ok(PathBuf::from("libonnxruntime.so"))
}

fn python_package_library() -> Option<PathBuf> {
    let python = std::env::var_os("TESSERA_PYTHON").unwrap_or_else(|| "python3".into());
    let output = Command::new(python)
        .args([
            "-c",
            "import os, onnxruntime; print(os.path.dirname(onnxruntime.__file__))",
        ])
        .output()
        .ok()
        .filter(|output| output.status.success())?;
    let package = PathBuf::from(String::from_utf8(output.stdout).ok()?.trim());
    let mut candidates: Vec<PathBuf> = std::fs::read_dir(package.join("capi"))
        .ok()?
        .filter_map(|entry| entry.ok().map(|entry| entry.path()))
        .filter(|path| {
            path.file_name()
                .and_then(|name| name.to_str())
                .is_some_and(|name| name.starts_with("libonnxruntime.so"))
        })
        .collect();
    candidates.sort();
    candidates.pop()
}

/// The execution provider for `device`, with a note saying what was chosen and why.
fn choose_provider(device: Device) -> Result<(Option<ep::ExecutionProviderDispatch>, String)> {
    let available = |name: &str, check: ort::Result<bool>| -> Result<bool> {
        check.map_err(|error| {
            ort_error(format!(
                "cannot query the {name} execution provider: {error}"
            ))
        })
    };
    let cuda = || ep::CUDA::default().build().error_on_failure();
    let tensorrt = || ep::TensorRT::default().build().error_on_failure();
    let missing = |name: &str| {
        ort_error(format!(
            "the {name} execution provider is not available in the loaded ONNX Runtime \
             (available: {}); install onnxruntime-gpu with a matching CUDA/TensorRT, or use \
             --device auto to fall back",
            available_providers()
        ))
    };
    match device {
        Device::Cpu => Ok((None, "CPU".into())),
        Device::Cuda => {
            if !available("CUDA", ep::CUDA::is_available())? {
                return Err(missing("CUDA"));
            }
            Ok((Some(cuda()), "CUDA".into()))
        }
        Device::TensorRt => {
            if !available("TensorRT", ep::TensorRT::is_available())? {
                return Err(missing("TensorRT"));
            }
            Ok((Some(tensorrt()), "TensorRT".into()))
        }
        Device::Auto => {
            if available("TensorRT", ep::TensorRT::is_available())? {
                Ok((Some(tensorrt()), "TensorRT, chosen by auto".into()))
            } else if available("CUDA", ep::CUDA::is_available())? {
                Ok((
                    Some(cuda()),
                    "CUDA, chosen by auto: TensorRT unavailable".into(),
                ))
            } else {
                Ok((
                    None,
                    "CPU, chosen by auto: TensorRT and CUDA unavailable".into(),
                ))
            }
        }
    }
}

fn available_providers() -> String {
    let names = [
        ("CPU", ep::CPU::is_available()),
        ("CUDA", ep::CUDA::is_available()),
        ("TensorRT", ep::TensorRT::is_available()),
    ];
    names
        .into_iter()
        .filter(|(_, available)| matches!(available, Ok(true)))
        .map(|(name, _)| name)
        .collect::<Vec<_>>()
        .join(", ")
}
