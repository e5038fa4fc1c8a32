//! The Tessera host as a C library. Every function returns a [`TesseraStatus`] (or a pointer
//! that is null on failure), never unwinds into C, checks every pointer it is given, and
//! leaves the failure's message for [`tessera_last_error`]. Ownership is stated per function:
//! strings the library returns are freed with [`tessera_string_free`], tokens with
//! [`tessera_token_free`]; pointers the caller passes stay the caller's.
//!
//! The header `include/tessera.h` is generated from this crate by cbindgen.

#![allow(clippy::missing_safety_doc)]

mod failure;
mod protocol;
mod token;
mod transfer;

pub use failure::{tessera_last_error, TesseraStatus};
pub use protocol::{tessera_absorb, tessera_emit};
pub use token::{
    tessera_token_free, tessera_token_inspect, tessera_token_load, tessera_token_metadata,
    tessera_token_save, tessera_token_shape, tessera_token_validate, tessera_token_vector,
    TesseraToken,
};
pub use transfer::{tessera_inspect_model, tessera_transfer};

use std::ffi::{c_char, CString};

/// Frees a string this library returned. Null is ignored.
///
/// # Safety
/// `text` is null or a string returned by this library, not yet freed.
#[no_mangle]
pub unsafe extern "C" fn tessera_string_free(text: *mut c_char) {
    if !text.is_null() {
        // SAFETY: the caller passes a string this library made with `CString::into_raw`.
        drop(unsafe { CString::from_raw(text) });
    }
}

/// The library's version, e.g. `"0.1.0"`: a static string, never freed.
#[no_mangle]
pub extern "C" fn tessera_version() -> *const c_char {
    concat!(env!("CARGO_PKG_VERSION"), "\0").as_ptr().cast()
}
