//! `tessera._native`: the Tessera host's jobs for Python. The package around it
//! (`python/tessera`) turns keyword arguments into the settings JSON and JSON reports into
//! dicts; this module only converts arrays and errors, releases the GIL while work runs, and
//! stops a transfer cleanly on Ctrl-C.

use std::path::{Path, PathBuf};

use ndarray::Array1;
use numpy::{PyArrayDyn, PyReadonlyArray1, PyReadonlyArrayDyn};
use pyo3::exceptions::{PyException, PyTypeError};
use pyo3::prelude::*;
use pyo3::types::PyDict;
use tessera_host::capture::CaptureOptions;
use tessera_host::dataset::Dataset;
use tessera_host::jobs::{
    capture_tensors, inspect_token, plugin_registry, tuned_receiver_path, AbsorbSettings,
    CaptureRequest, JobFiles, ModelInspection, TransferSettings, EMITTED_TOKEN, TRANSFER_TOKEN,
};
use tessera_host::onnx::OnnxModel;
use tessera_host::tbf::{
    self, CrcVariant, HmacKey, KnowledgeType, LoadOptions, Metadata, QuantType, SaveOptions, Token,
};
use tessera_host::tensor::Tensor;
use tessera_host::transfer::Progress;
use tessera_host::{Error, ErrorKind};

pyo3::create_exception!(_native, TesseraError, PyException, "Every Tessera failure.");
pyo3::create_exception!(
    _native,
    TokenError,
    TesseraError,
    "A token that is malformed, tampered with, or fails authentication."
);
pyo3::create_exception!(
    _native,
    ModelError,
    TesseraError,
    "A model that is malformed, unsupported, or that no adapter can read."
);
pyo3::create_exception!(
    _native,
    DataError,
    TesseraError,
    "Inputs or labels that are malformed or do not fit."
);
pyo3::create_exception!(_native, TransferError, TesseraError, "A transfer refused or failed: knowledge that does not fit, a refused privacy budget, a diverged loss.");
pyo3::create_exception!(
    _native,
    InvalidArgumentError,
    TesseraError,
    "An option out of range, or options that contradict each other."
);

/// The Python exception of `error`.
fn raise(error: Error) -> PyErr {
    let message = error.to_string();
    match error.kind() {
        ErrorKind::Token => TokenError::new_err(message),
        ErrorKind::Model => ModelError::new_err(message),
        ErrorKind::Data => DataError::new_err(message),
        ErrorKind::Transfer | ErrorKind::Cancelled => TransferError::new_err(message),
        ErrorKind::InvalidArgument => InvalidArgumentError::new_err(message),
        ErrorKind::Io => TesseraError::new_err(message),
    }
}

/// A numpy array of float32 features or int64 token ids as a tensor.
fn tensor(array: &Bound<'_, PyAny>, name: &str) -> PyResult<Tensor> {
    if let Ok(floats) = array.extract::<PyReadonlyArrayDyn<f32>>() {
        return Ok(Tensor::F32(floats.as_array().to_owned()));
    }
    if let Ok(ids) = array.extract::<PyReadonlyArrayDyn<i64>>() {
        return Ok(Tensor::I64(ids.as_array().to_owned()));
    }
    Err(PyTypeError::new_err(format!(
        "{name} must be a numpy array of float32 or int64"
    )))
}

/// The dataset of `inputs` (and `labels`), named `name` in messages.
fn dataset(
    inputs: &Bound<'_, PyAny>,
    labels: Option<PyReadonlyArray1<i64>>,
    name: &str,
) -> PyResult<Dataset> {
    let labels: Option<Array1<i64>> = labels.map(|labels| labels.as_array().to_owned());
    Dataset::new(
        tensor(inputs, name)?,
        labels,
        PathBuf::from(format!("<{name}>")),
    )
    .map_err(|error| raise(error.into()))
}

/// A tensor as a numpy array.
fn array<'py>(py: Python<'py>, tensor: Tensor) -> Bound<'py, PyAny> {
    match tensor {
        Tensor::F32(values) => PyArrayDyn::from_owned_array(py, values).into_any(),
        Tensor::I64(values) => PyArrayDyn::from_owned_array(py, values).into_any(),
    }
}

/// The JSON object `settings_json` as a value.
fn settings_value(settings_json: &str) -> PyResult<serde_json::Value> {
    serde_json::from_str(settings_json)
        .map_err(|error| InvalidArgumentError::new_err(format!("settings: {error}")))
}

/// The held-out dataset of `val_inputs` and `val_labels`, if given.
fn validation(
    val_inputs: Option<&Bound<'_, PyAny>>,
    val_labels: Option<PyReadonlyArray1<i64>>,
) -> PyResult<Option<Dataset>> {
    match (val_inputs, val_labels) {
        (Some(held_out), labels) => Ok(Some(dataset(held_out, labels, "val_inputs")?)),
        (None, Some(_)) => Err(InvalidArgumentError::new_err("val_labels needs val_inputs")),
        (None, None) => Ok(None),
    }
}

/// Runs `job` with the GIL released; between steps it checks for Ctrl-C and tells `progress`
/// (phase, done, total). Either one raising stops the job with nothing written, and that
/// exception is what the caller sees.
fn run_interruptible<T>(
    py: Python<'_>,
    progress: Option<Py<PyAny>>,
    job: impl FnOnce(&mut dyn FnMut(Progress) -> tessera_host::Result<()>) -> tessera_host::Result<T>
        + Send,
) -> PyResult<T>
where
    T: Send,
{
    let mut interrupted: Option<PyErr> = None;
    let outcome = py.detach(|| {
        job(&mut |step| {
            Python::attach(|py| {
                let checked = py.check_signals().and_then(|()| match &progress {
                    Some(callback) => callback
                        .call1(py, (step.phase.label(), step.done, step.total))
                        .map(drop),
                    None => Ok(()),
                });
                checked.map_err(|error| {
                    interrupted = Some(error);
                    Error::Cancelled("stopped from Python".into())
                })
            })
        })
    });
    match interrupted {
        Some(error) => Err(error),
        None => outcome.map_err(raise),
    }
}

/// Runs a whole transfer (see `tessera.transfer`); returns the report as JSON.
#[pyfunction]
#[pyo3(signature = (transmitter, receiver, inputs, val_inputs, val_labels, receiver_out, token_out, settings_json, progress))]
#[allow(clippy::too_many_arguments)]
fn transfer(
    py: Python<'_>,
    transmitter: PathBuf,
    receiver: PathBuf,
    inputs: &Bound<'_, PyAny>,
    val_inputs: Option<&Bound<'_, PyAny>>,
    val_labels: Option<PyReadonlyArray1<i64>>,
    receiver_out: Option<PathBuf>,
    token_out: Option<PathBuf>,
    settings_json: &str,
    progress: Option<Py<PyAny>>,
) -> PyResult<String> {
    let settings = TransferSettings::from_json(settings_value(settings_json)?).map_err(raise)?;
    let files = JobFiles {
        transmitter,
        receiver_out: receiver_out.unwrap_or_else(|| tuned_receiver_path(&receiver)),
        receiver,
        token_out: token_out.unwrap_or_else(|| TRANSFER_TOKEN.into()),
    };
    let job = settings
        .job(
            files,
            dataset(inputs, None, "inputs")?,
            validation(val_inputs, val_labels)?,
        )
        .map_err(raise)?;
    let done = run_interruptible(py, progress, |progress| {
        job.run(&plugin_registry(None)?, progress)
    })?;
    Ok(job.report_json(&done).to_string())
}

/// Emits a transmitter's knowledge as a token (see `tessera.emit`); returns the report as
/// JSON.
#[pyfunction]
#[pyo3(signature = (transmitter, inputs, val_inputs, token_out, settings_json))]
fn emit(
    py: Python<'_>,
    transmitter: PathBuf,
    inputs: &Bound<'_, PyAny>,
    val_inputs: Option<&Bound<'_, PyAny>>,
    token_out: Option<PathBuf>,
    settings_json: &str,
) -> PyResult<String> {
    let settings = TransferSettings::from_json(settings_value(settings_json)?).map_err(raise)?;
    let job = settings
        .emit_job(
            transmitter,
            token_out.unwrap_or_else(|| EMITTED_TOKEN.into()),
            dataset(inputs, None, "inputs")?,
            validation(val_inputs, None)?,
        )
        .map_err(raise)?;
    let done = py
        .detach(|| job.run(&plugin_registry(None)?))
        .map_err(raise)?;
    Ok(job.report_json(&done).to_string())
}

/// Absorbs a knowledge token into a receiver (see `tessera.absorb`); returns the report as
/// JSON.
#[pyfunction]
#[pyo3(signature = (token, receiver, inputs, val_inputs, val_labels, receiver_out, settings_json, progress))]
#[allow(clippy::too_many_arguments)]
fn absorb(
    py: Python<'_>,
    token: PathBuf,
    receiver: PathBuf,
    inputs: &Bound<'_, PyAny>,
    val_inputs: Option<&Bound<'_, PyAny>>,
    val_labels: Option<PyReadonlyArray1<i64>>,
    receiver_out: Option<PathBuf>,
    settings_json: &str,
    progress: Option<Py<PyAny>>,
) -> PyResult<String> {
    let settings = AbsorbSettings::from_json(settings_value(settings_json)?).map_err(raise)?;
    let receiver_out = receiver_out.unwrap_or_else(|| tuned_receiver_path(&receiver));
    let job = settings
        .job(
            token,
            receiver,
            receiver_out,
            dataset(inputs, None, "inputs")?,
            validation(val_inputs, val_labels)?,
        )
        .map_err(raise)?;
    let done = run_interruptible(py, progress, |progress| {
        job.run(&plugin_registry(None)?, progress)
    })?;
    Ok(job.report_json(&done).to_string())
}

/// A TBF token: its vector, shape and metadata.
#[pyclass(module = "tessera._native")]
struct NativeToken {
    token: Token,
    quant: Option<QuantType>,
}

#[pymethods]
impl NativeToken {
    /// A new token of `knowledge_type` holding `vector` (float32), with custom metadata given
    /// as JSON.
    #[new]
    #[pyo3(signature = (vector, knowledge_type, custom_json))]
    fn new(
        vector: PyReadonlyArrayDyn<f32>,
        knowledge_type: &str,
        custom_json: &str,
    ) -> PyResult<Self> {
        let knowledge_type: KnowledgeType = knowledge_type
            .parse()
            .map_err(|message: String| InvalidArgumentError::new_err(message))?;
        let custom: serde_json::Map<String, serde_json::Value> = serde_json::from_str(custom_json)
            .map_err(|error| InvalidArgumentError::new_err(format!("metadata: {error}")))?;
        let mut metadata = Metadata::new(knowledge_type);
        for (key, value) in &custom {
            metadata
                .custom
                .insert(key.clone(), tbf::json_to_meta_value(value));
        }
        let values = vector.as_array().iter().copied().collect();
        Ok(Self {
            token: Token::with_metadata(metadata, values),
            quant: None,
        })
    }

    /// The decoded vector, as float32.
    fn vector<'py>(&self, py: Python<'py>) -> Bound<'py, PyAny> {
        let values = Array1::from_vec(self.token.vector().to_vec()).into_dyn();
        array(py, Tensor::F32(values))
    }

    /// The shape the metadata gives the vector.
    fn shape(&self) -> PyResult<Vec<u64>> {
        self.token.shape().map_err(|error| raise(error.into()))
    }

    /// The metadata as JSON.
    fn metadata_json(&self) -> String {
        self.token.metadata.to_json().to_string()
    }

    /// The knowledge type's name.
    fn knowledge_type(&self) -> &'static str {
        self.token.metadata.knowledge_type.as_str()
    }

    /// The payload quantisation the token was read with (`None` for a new token).
    fn quant(&self) -> Option<String> {
        self.quant.map(|quant| quant.to_string())
    }
}

fn hmac(key: Option<Vec<u8>>) -> PyResult<Option<HmacKey>> {
    key.map(HmacKey::new)
        .transpose()
        .map_err(|error| raise(error.into()))
}

/// Reads and checks the token at `path` (with a key, its HMAC must verify).
#[pyfunction]
#[pyo3(signature = (path, hmac_key=None))]
fn load_token(py: Python<'_>, path: PathBuf, hmac_key: Option<Vec<u8>>) -> PyResult<NativeToken> {
    let options = LoadOptions {
        hmac_key: hmac(hmac_key)?,
        ..LoadOptions::default()
    };
    let loaded = py
        .detach(|| tbf::load(&path, &options))
        .map_err(|error| raise(error.into()))?;
    Ok(NativeToken {
        token: loaded.token,
        quant: Some(loaded.quant),
    })
}

/// Writes `token` to `path` atomically; returns the bytes written.
#[pyfunction]
#[pyo3(signature = (path, token, quant, crc, hmac_key=None))]
fn save_token(
    py: Python<'_>,
    path: PathBuf,
    token: &NativeToken,
    quant: &str,
    crc: &str,
    hmac_key: Option<Vec<u8>>,
) -> PyResult<u64> {
    let options = SaveOptions {
        quant: quant
            .parse()
            .map_err(|m: String| InvalidArgumentError::new_err(m))?,
        crc: crc
            .parse::<CrcVariant>()
            .map_err(InvalidArgumentError::new_err)?,
        hmac_key: hmac(hmac_key)?,
        ..SaveOptions::default()
    };
    py.detach(|| tbf::save(&path, &token.token, &options))
        .map_err(|error| raise(error.into()))
}

/// The token file at `path` described as JSON (what `tessera inspect --json` prints).
#[pyfunction]
#[pyo3(signature = (path, hmac_key=None))]
fn inspect_token_json(path: PathBuf, hmac_key: Option<Vec<u8>>) -> PyResult<String> {
    let options = LoadOptions {
        hmac_key: hmac(hmac_key)?,
        ..LoadOptions::default()
    };
    Ok(inspect_token(&path, &options, false)
        .map_err(raise)?
        .to_string())
}

/// The model at `path` described as JSON (what `tessera inspect-model --json` prints).
#[pyfunction]
#[pyo3(signature = (path, adapter=None))]
fn inspect_model_json(py: Python<'_>, path: PathBuf, adapter: Option<String>) -> PyResult<String> {
    py.detach(|| {
        let inspection = ModelInspection::of(&path, &plugin_registry(None)?, adapter.as_deref())?;
        Ok(inspection.to_json(&path)?.to_string())
    })
    .map_err(raise)
}

/// The model's outputs and tap activations over `inputs`, by tensor name.
#[pyfunction]
#[pyo3(signature = (model, inputs, taps=None, pool=false, batch_size=32))]
fn capture<'py>(
    py: Python<'py>,
    model: PathBuf,
    inputs: &Bound<'py, PyAny>,
    taps: Option<Vec<String>>,
    pool: bool,
    batch_size: usize,
) -> PyResult<Bound<'py, PyDict>> {
    let inputs = dataset(inputs, None, "inputs")?;
    let request = CaptureRequest {
        taps,
        adapter: None,
        pool,
        options: CaptureOptions {
            batch_size,
            ..CaptureOptions::default()
        },
    };
    let captured = py
        .detach(|| {
            let model = OnnxModel::load(Path::new(&model))?;
            capture_tensors(
                &model,
                &inputs,
                &request,
                &plugin_registry(None)?,
                &mut |_| {},
            )
        })
        .map_err(raise)?;
    let arrays = PyDict::new(py);
    for (name, tensor) in captured.arrays {
        arrays.set_item(name, array(py, tensor))?;
    }
    Ok(arrays)
}

/// The extension module.
#[pymodule]
fn _native(module: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = module.py();
    module.add("TesseraError", py.get_type::<TesseraError>())?;
    module.add("TokenError", py.get_type::<TokenError>())?;
    module.add("ModelError", py.get_type::<ModelError>())?;
    module.add("DataError", py.get_type::<DataError>())?;
    module.add("TransferError", py.get_type::<TransferError>())?;
    module.add(
        "InvalidArgumentError",
        py.get_type::<InvalidArgumentError>(),
    )?;
    module.add_class::<NativeToken>()?;
    module.add_function(wrap_pyfunction!(transfer, module)?)?;
    module.add_function(wrap_pyfunction!(emit, module)?)?;
    module.add_function(wrap_pyfunction!(absorb, module)?)?;
    module.add_function(wrap_pyfunction!(load_token, module)?)?;
    module.add_function(wrap_pyfunction!(save_token, module)?)?;
    module.add_function(wrap_pyfunction!(inspect_token_json, module)?)?;
    module.add_function(wrap_pyfunction!(inspect_model_json, module)?)?;
    module.add_function(wrap_pyfunction!(capture, module)?)?;
    module.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
