//! TBF tokens behind an opaque handle: load (verifying checksums and an HMAC), read the
//! vector, shape and metadata, save (re-encoded), inspect and validate files.

use std::ffi::c_char;
use std::path::Path;

use tessera_host::jobs::{inspect_token, validate_token};
use tessera_host::tbf::{self, CrcVariant, HmacKey, LoadOptions, QuantType, SaveOptions, Token};

use crate::failure::{give_string, guard, optional_text, text, Failure};
use crate::TesseraStatus;

/// A token read from a file (opaque). Made by [`tessera_token_load`], freed by
/// [`tessera_token_free`].
pub struct TesseraToken {
    token: Token,
}

/// The HMAC key of `len` bytes at `key` (null: none).
///
/// # Safety
/// `key` is null or points to `len` readable bytes.
unsafe fn hmac_key(key: *const u8, len: usize) -> Result<Option<HmacKey>, Failure> {
    if key.is_null() {
        return Ok(None);
    }
    // SAFETY: the caller's contract.
    let bytes = unsafe { std::slice::from_raw_parts(key, len) };
    Ok(Some(HmacKey::new(bytes.to_vec())?))
}

/// The file and reader options of a call that reads the token at `path` with an optional
/// HMAC key.
///
/// # Safety
/// `path` is null or NUL-terminated; `key` is null or points to `len` readable bytes.
unsafe fn read_request<'a>(
    path: *const c_char,
    key: *const u8,
    len: usize,
) -> Result<(&'a Path, LoadOptions), Failure> {
    // SAFETY: the caller's contract.
    let path = Path::new(unsafe { text(path, "path") }?);
    let options = LoadOptions {
        hmac_key: unsafe { hmac_key(key, len) }?,
        ..LoadOptions::default()
    };
    Ok((path, options))
}

/// The token behind `token`, refusing null.
///
/// # Safety
/// `token` is null or a live handle from [`tessera_token_load`].
unsafe fn handle<'a>(token: *const TesseraToken) -> Result<&'a TesseraToken, Failure> {
    // SAFETY: the caller's contract.
    unsafe { token.as_ref() }.ok_or_else(|| Failure::argument("token is null"))
}

/// Reads the token at `path`, checking its structure and checksums; with a key (`hmac_key`,
/// `hmac_key_len` bytes; null for none) its HMAC must verify. On success `*out` holds a new
/// handle the caller frees with [`tessera_token_free`].
///
/// # Safety
/// `path` is a NUL-terminated string; `hmac_key` is null or `hmac_key_len` readable bytes;
/// `out` points to writable storage for a pointer.
#[no_mangle]
pub unsafe extern "C" fn tessera_token_load(
    path: *const c_char,
    hmac_key: *const u8,
    hmac_key_len: usize,
    out: *mut *mut TesseraToken,
) -> TesseraStatus {
    guard("tessera_token_load", || {
        if out.is_null() {
            return Err(Failure::argument("out is null"));
        }
        // SAFETY: the caller's contract.
        let (path, options) = unsafe { read_request(path, hmac_key, hmac_key_len) }?;
        let loaded = tbf::load(path, &options)?;
        let token = Box::new(TesseraToken {
            token: loaded.token,
        });
        // SAFETY: `out` is non-null and writable.
        unsafe { *out = Box::into_raw(token) };
        Ok(())
    })
}

/// Frees a token handle. Null is ignored.
///
/// # Safety
/// `token` is null or a handle from [`tessera_token_load`], not yet freed.
#[no_mangle]
pub unsafe extern "C" fn tessera_token_free(token: *mut TesseraToken) {
    if !token.is_null() {
        // SAFETY: made by `Box::into_raw` in `tessera_token_load`.
        drop(unsafe { Box::from_raw(token) });
    }
}

/// The token's decoded vector: its length goes to `*len` (if `len` is not null). The floats
/// belong to the token and stay valid until it is freed. Null if `token` is null.
///
/// # Safety
/// `token` is null or a live handle; `len` is null or writable.
#[no_mangle]
pub unsafe extern "C" fn tessera_token_vector(
    token: *const TesseraToken,
    len: *mut usize,
) -> *const f32 {
    let mut vector: *const f32 = std::ptr::null();
    let mut count = 0;
    guard("tessera_token_vector", || {
        // SAFETY: the caller's contract.
        let token = unsafe { handle(token) }?;
        vector = token.token.vector().as_ptr();
        count = token.token.vector().len();
        Ok(())
    });
    if !len.is_null() {
        // SAFETY: non-null and writable by the caller's contract.
        unsafe { *len = count };
    }
    vector
}

/// The token's shape: its rank goes to `*rank`, and its dimensions to `dims` if `capacity`
/// (the room in `dims`) holds them; a smaller `capacity` is an `InvalidArgument` that still
/// reports the rank.
///
/// # Safety
/// `token` is a live handle; `dims` is null or has room for `capacity` values; `rank` is
/// writable.
#[no_mangle]
pub unsafe extern "C" fn tessera_token_shape(
    token: *const TesseraToken,
    dims: *mut u64,
    capacity: usize,
    rank: *mut usize,
) -> TesseraStatus {
    guard("tessera_token_shape", || {
        // SAFETY: the caller's contract.
        let token = unsafe { handle(token) }?;
        if rank.is_null() {
            return Err(Failure::argument("rank is null"));
        }
        let shape = token.token.shape()?;
        // SAFETY: non-null and writable.
        unsafe { *rank = shape.len() };
        if dims.is_null() || capacity < shape.len() {
            return Err(Failure::argument(format!(
                "the shape has {} dimensions; dims has room for {capacity}",
                shape.len()
            )));
        }
        // SAFETY: `dims` has room for `capacity >= shape.len()` values.
        unsafe { std::ptr::copy_nonoverlapping(shape.as_ptr(), dims, shape.len()) };
        Ok(())
    })
}

/// The token's metadata as a JSON object (knowledge type, privacy, model ids, custom keys)
/// in `*out`, which the caller frees with `tessera_string_free`.
///
/// # Safety
/// `token` is a live handle; `out` is writable.
#[no_mangle]
pub unsafe extern "C" fn tessera_token_metadata(
    token: *const TesseraToken,
    out: *mut *mut c_char,
) -> TesseraStatus {
    guard("tessera_token_metadata", || {
        // SAFETY: the caller's contract.
        let token = unsafe { handle(token) }?;
        let json = token.token.metadata.to_json().to_string();
        // SAFETY: the caller's contract.
        unsafe { give_string(out, json, "out") }
    })
}

/// Writes the token to `path` atomically, byte-compatible with `tessera-core` 0.1.0:
/// `quant` is `"float32"` (null: the default), `"float16"`, `"bfloat16"` or `"int8"`; `crc`
/// is `"crc32c"` (null: the default) or `"ieee"`; with `hmac_key` the file carries an
/// HMAC-SHA256. The bytes written go to `*bytes` if it is not null.
///
/// # Safety
/// `token` is a live handle; the strings are null or NUL-terminated; `hmac_key` is null or
/// `hmac_key_len` readable bytes; `bytes` is null or writable.
#[no_mangle]
pub unsafe extern "C" fn tessera_token_save(
    token: *const TesseraToken,
    path: *const c_char,
    quant: *const c_char,
    crc: *const c_char,
    hmac_key: *const u8,
    hmac_key_len: usize,
    bytes: *mut u64,
) -> TesseraStatus {
    guard("tessera_token_save", || {
        // SAFETY: the caller's contract, for each pointer.
        let token = unsafe { handle(token) }?;
        let path = unsafe { text(path, "path") }?;
        let quant = unsafe { optional_text(quant, "quant") }?
            .map(|value| value.parse::<QuantType>())
            .transpose()
            .map_err(|message| Failure::argument(format!("quant: {message}")))?;
        let crc = unsafe { optional_text(crc, "crc") }?
            .map(|value| value.parse::<CrcVariant>())
            .transpose()
            .map_err(|message| Failure::argument(format!("crc: {message}")))?;
        let options = SaveOptions {
            quant: quant.unwrap_or_default(),
            crc: crc.unwrap_or_default(),
            hmac_key: unsafe { self::hmac_key(hmac_key, hmac_key_len) }?,
            ..SaveOptions::default()
        };
        let written = tbf::save(Path::new(path), &token.token, &options)?;
        if !bytes.is_null() {
            // SAFETY: non-null and writable.
            unsafe { *bytes = written };
        }
        Ok(())
    })
}

/// The token file at `path` described as JSON (header, metadata, statistics: what `tessera
/// inspect --json` prints) in `*out`, which the caller frees with `tessera_string_free`.
///
/// # Safety
/// As [`tessera_token_load`], with `out` writable.
#[no_mangle]
pub unsafe extern "C" fn tessera_token_inspect(
    path: *const c_char,
    hmac_key: *const u8,
    hmac_key_len: usize,
    out: *mut *mut c_char,
) -> TesseraStatus {
    guard("tessera_token_inspect", || {
        // SAFETY: the caller's contract.
        let (path, options) = unsafe { read_request(path, hmac_key, hmac_key_len) }?;
        let report = inspect_token(path, &options, false)?;
        unsafe { give_string(out, report.to_string(), "out") }
    })
}

/// Validates the token file at `path` (structure, checksums, with a key its HMAC): `Ok` with
/// the verdict as JSON in `*out` (the caller frees it with `tessera_string_free`), or `Token`
/// with the reason in [`tessera_last_error`](crate::tessera_last_error).
///
/// # Safety
/// As [`tessera_token_inspect`].
#[no_mangle]
pub unsafe extern "C" fn tessera_token_validate(
    path: *const c_char,
    hmac_key: *const u8,
    hmac_key_len: usize,
    out: *mut *mut c_char,
) -> TesseraStatus {
    guard("tessera_token_validate", || {
        if out.is_null() {
            return Err(Failure::argument("out is null"));
        }
        // SAFETY: the caller's contract.
        let (path, options) = unsafe { read_request(path, hmac_key, hmac_key_len) }?;
        let (verdict, _) = validate_token(path, &options)?;
        unsafe { give_string(out, verdict.to_string(), "out") }
    })
}
