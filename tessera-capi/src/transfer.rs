//! Transfers and model inspection, through the library's jobs (the same code `tessera
//! transfer` and `tessera inspect-model` run).

use std::ffi::c_char;
use std::path::{Path, PathBuf};

use tessera_host::dataset::Dataset;
use tessera_host::jobs::{plugin_registry, JobFiles, ModelInspection, TransferSettings};
use tessera_host::Error;

use crate::failure::{give_string, guard, optional_text, text, Failure};
use crate::TesseraStatus;

/// Mode A: transfers the behaviour of the ONNX model `transmitter` into `receiver` without
/// labels, on the unlabelled inputs in the `.npy` file `inputs`; measures on `val_inputs`
/// (null: a share of `inputs` is held out) with `val_labels` for accuracy (null: none); writes
/// the tuned receiver to `receiver_out` and the knowledge token to `token_out`, each
/// atomically. `settings_json` (null: every default) is a JSON object whose keys are those of
/// `tessera transfer`'s flags in snake_case (`{"epochs": 5, "epsilon": "inf"}`). Plugins are
/// found as the `tessera` program finds them (`tessera.toml`, `TESSERA_PLUGIN_PATH`). If
/// `report_json` is not null, `*report_json` receives the report (what `tessera transfer
/// --json` prints), which the caller frees with `tessera_string_free`.
///
/// # Safety
/// Every string is null (where allowed) or NUL-terminated; `report_json` is null or writable.
#[no_mangle]
pub unsafe extern "C" fn tessera_transfer(
    transmitter: *const c_char,
    receiver: *const c_char,
    inputs: *const c_char,
    val_inputs: *const c_char,
    val_labels: *const c_char,
    receiver_out: *const c_char,
    token_out: *const c_char,
    settings_json: *const c_char,
    report_json: *mut *mut c_char,
) -> TesseraStatus {
    guard("tessera_transfer", || {
        // SAFETY: the caller's contract, for each pointer.
        let path = |pointer, name| unsafe { text(pointer, name) }.map(PathBuf::from);
        let files = JobFiles {
            transmitter: path(transmitter, "transmitter")?,
            receiver: path(receiver, "receiver")?,
            receiver_out: path(receiver_out, "receiver_out")?,
            token_out: path(token_out, "token_out")?,
        };
        let train = unsafe { dataset(inputs, std::ptr::null(), "inputs") }?;
        let validation = unsafe { validation(val_inputs, val_labels) }?;
        let settings = TransferSettings::from_json(unsafe { settings(settings_json) }?)?;
        let job = settings.job(files, train, validation)?;
        let summary = job.run(&plugin_registry(None)?, &mut |_| Ok(()))?;
        unsafe { give_report(report_json, job.report_json(&summary)) }
    })
}

/// The settings object `settings_json` holds (null: every default).
///
/// # Safety
/// `settings_json` is null or NUL-terminated.
pub(crate) unsafe fn settings(settings_json: *const c_char) -> Result<serde_json::Value, Failure> {
    // SAFETY: the caller's contract.
    match unsafe { optional_text(settings_json, "settings_json") }? {
        Some(json) => serde_json::from_str(json)
            .map_err(|error| Failure::argument(format!("settings_json is not JSON: {error}"))),
        None => Ok(serde_json::Value::Null),
    }
}

/// The samples in the `.npy` file `inputs` (named `name` in messages), labelled by the `.npy`
/// file `labels` when it is not null.
///
/// # Safety
/// `inputs` is NUL-terminated; `labels` is null or NUL-terminated.
pub(crate) unsafe fn dataset(
    inputs: *const c_char,
    labels: *const c_char,
    name: &str,
) -> Result<Dataset, Failure> {
    // SAFETY: the caller's contract, for each pointer.
    let inputs = Path::new(unsafe { text(inputs, name) }?);
    let labels = unsafe { optional_text(labels, "val_labels") }?;
    Ok(Dataset::load(inputs, labels.map(Path::new)).map_err(Error::from)?)
}

/// The held-out inputs `val_inputs` (null: none) labelled by `val_labels` (null: unlabelled).
///
/// # Safety
/// Each pointer is null or NUL-terminated.
pub(crate) unsafe fn validation(
    val_inputs: *const c_char,
    val_labels: *const c_char,
) -> Result<Option<Dataset>, Failure> {
    if val_inputs.is_null() {
        if !val_labels.is_null() {
            return Err(Failure::argument("val_labels needs val_inputs"));
        }
        return Ok(None);
    }
    // SAFETY: the caller's contract.
    unsafe { dataset(val_inputs, val_labels, "val_inputs") }.map(Some)
}

/// Gives `report` as a JSON string to `*report_json`, unless `report_json` is null.
///
/// # Safety
/// `report_json` is null or writable.
pub(crate) unsafe fn give_report(
    report_json: *mut *mut c_char,
    report: serde_json::Value,
) -> Result<(), Failure> {
    if report_json.is_null() {
        return Ok(());
    }
    // SAFETY: the caller's contract.
    unsafe { give_string(report_json, report.to_string(), "report_json") }
}

/// The ONNX model at `path` described as JSON (inputs, outputs, operators, and the adapter
/// that claims it with its tap points: what `tessera inspect-model --json` prints) in `*out`,
/// which the caller frees with `tessera_string_free`. `adapter` (null: the best-scoring one)
/// names the adapter to use.
///
/// # Safety
/// `path` is NUL-terminated; `adapter` is null or NUL-terminated; `out` is writable.
#[no_mangle]
pub unsafe extern "C" fn tessera_inspect_model(
    path: *const c_char,
    adapter: *const c_char,
    out: *mut *mut c_char,
) -> TesseraStatus {
    guard("tessera_inspect_model", || {
        if out.is_null() {
            return Err(Failure::argument("out is null"));
        }
        // SAFETY: the caller's contract, for each pointer.
        let path = Path::new(unsafe { text(path, "path") }?);
        let adapter = unsafe { optional_text(adapter, "adapter") }?;
        let inspection = ModelInspection::of(path, &plugin_registry(None)?, adapter)?;
        unsafe { give_string(out, inspection.to_json(path)?.to_string(), "out") }
    })
}
