//! The two halves of two-party transfer, through the library's jobs (the same code `tessera
//! emit` and `tessera absorb` run): the transmitter's side writes a knowledge token, the
//! receiver's side learns from it alone.

use std::ffi::c_char;
use std::path::PathBuf;

use tessera_host::jobs::{plugin_registry, AbsorbSettings, TransferSettings};

use crate::failure::{guard, text};
use crate::transfer::{dataset, give_report, settings, validation};
use crate::TesseraStatus;

/// The transmitter's half: runs only the ONNX model `transmitter` on the reference inputs in
/// the `.npy` file `inputs` and writes what a receiver needs to learn from it as a knowledge
/// token to `token_out` (atomically), released with differential privacy and charged to the
/// privacy ledger. `val_inputs` (null: a share of `inputs` is held out) are separate held-out
/// inputs the receiver will measure on. `settings_json` (null: every default) is a JSON object
/// whose keys are those of `tessera emit`'s flags in snake_case (`{"epsilon": 4}`). If
/// `report_json` is not null, `*report_json` receives what `tessera emit --json` prints, which
/// the caller frees with `tessera_string_free`.
///
/// # Safety
/// Every string is null (where allowed) or NUL-terminated; `report_json` is null or writable.
#[no_mangle]
pub unsafe extern "C" fn tessera_emit(
    transmitter: *const c_char,
    inputs: *const c_char,
    val_inputs: *const c_char,
    token_out: *const c_char,
    settings_json: *const c_char,
    report_json: *mut *mut c_char,
) -> TesseraStatus {
    guard("tessera_emit", || {
        // SAFETY: the caller's contract, for each pointer.
        let path = |pointer, name| unsafe { text(pointer, name) }.map(PathBuf::from);
        let transmitter = path(transmitter, "transmitter")?;
        let token_out = path(token_out, "token_out")?;
        let inputs = unsafe { dataset(inputs, std::ptr::null(), "inputs") }?;
        let validation = unsafe { validation(val_inputs, std::ptr::null()) }?;
        let settings = TransferSettings::from_json(unsafe { settings(settings_json) }?)?;
        let job = settings.emit_job(transmitter, token_out, inputs, validation)?;
        let summary = job.run(&plugin_registry(None)?)?;
        unsafe { give_report(report_json, job.report_json(&summary)) }
    })
}

/// The receiver's half: fine-tunes the ONNX model `receiver` on the reference inputs in the
/// `.npy` file `inputs` from the knowledge token `token` alone (no transmitter) and writes the
/// tuned receiver to `receiver_out` (atomically). `val_inputs` are the separate held-out
/// inputs, when the token was emitted with them (null otherwise), labelled by `val_labels`
/// for accuracy (null: none). `settings_json` (null: every default) is a JSON object with the
/// keys `seed`, `receiver_adapter`, `backend`, `device`, `quant`, `trust` (a trust file the
/// signer must be in), `hmac_key_hex`, `allow_unauthenticated` and `max_file_mib`, as the
/// flags of `tessera absorb`. If `report_json` is not null, `*report_json` receives what
/// `tessera absorb --json` prints, which the caller frees with `tessera_string_free`.
///
/// # Safety
/// Every string is null (where allowed) or NUL-terminated; `report_json` is null or writable.
#[no_mangle]
pub unsafe extern "C" fn tessera_absorb(
    token: *const c_char,
    receiver: *const c_char,
    inputs: *const c_char,
    val_inputs: *const c_char,
    val_labels: *const c_char,
    receiver_out: *const c_char,
    settings_json: *const c_char,
    report_json: *mut *mut c_char,
) -> TesseraStatus {
    guard("tessera_absorb", || {
        // SAFETY: the caller's contract, for each pointer.
        let path = |pointer, name| unsafe { text(pointer, name) }.map(PathBuf::from);
        let token = path(token, "token")?;
        let receiver = path(receiver, "receiver")?;
        let receiver_out = path(receiver_out, "receiver_out")?;
        let inputs = unsafe { dataset(inputs, std::ptr::null(), "inputs") }?;
        let validation = unsafe { validation(val_inputs, val_labels) }?;
        let settings = AbsorbSettings::from_json(unsafe { settings(settings_json) }?)?;
        let job = settings.job(token, receiver, receiver_out, inputs, validation)?;
        let summary = job.run(&plugin_registry(None)?, &mut |_| Ok(()))?;
        unsafe { give_report(report_json, job.report_json(&summary)) }
    })
}
