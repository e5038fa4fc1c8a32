//! Status codes, the thread's last error message, and the guard every exported function runs
//! its body in: arguments checked, failures turned into a status, panics caught.

use std::cell::RefCell;
use std::ffi::{c_char, CStr, CString};
use std::panic::{catch_unwind, AssertUnwindSafe};

use tessera_host::{Error, ErrorKind};

/// What a call did. Every value but `Ok` leaves a message for [`tessera_last_error`].
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TesseraStatus {
    /// Success.
    Ok = 0,
    /// A null pointer, text that is not UTF-8, or an option out of range.
    InvalidArgument = 1,
    /// A token that is malformed, tampered with, or fails authentication.
    Token = 2,
    /// A model that is malformed, unsupported, or that no adapter can read.
    Model = 3,
    /// Inputs or labels that are malformed or do not fit.
    Data = 4,
    /// A transfer refused or failed (knowledge that does not fit, a refused privacy budget,
    /// a diverged loss).
    Transfer = 5,
    /// The operating system refused a read or write.
    Io = 6,
    /// A defect inside the library; please report it with the message.
    Internal = 7,
}

/// A failed call: its status and message.
pub struct Failure {
    status: TesseraStatus,
    message: String,
}

impl Failure {
    /// A failure of the caller's arguments.
    pub fn argument(message: impl Into<String>) -> Self {
        Self {
            status: TesseraStatus::InvalidArgument,
            message: message.into(),
        }
    }
}

impl From<Error> for Failure {
    fn from(error: Error) -> Self {
        let status = match error.kind() {
            ErrorKind::InvalidArgument => TesseraStatus::InvalidArgument,
            ErrorKind::Token => TesseraStatus::Token,
            ErrorKind::Model => TesseraStatus::Model,
            ErrorKind::Data => TesseraStatus::Data,
            ErrorKind::Transfer | ErrorKind::Cancelled => TesseraStatus::Transfer,
            ErrorKind::Io => TesseraStatus::Io,
        };
        Self {
            status,
            message: error.to_string(),
        }
    }
}

impl From<tessera_host::tbf::TbfError> for Failure {
    fn from(error: tessera_host::tbf::TbfError) -> Self {
        Error::from(error).into()
    }
}

thread_local! {
    static LAST_ERROR: RefCell<Option<CString>> = const { RefCell::new(None) };
}

fn set_last_error(message: &str) {
    let text = CString::new(message.replace('\0', " ")).unwrap_or_default();
    LAST_ERROR.with(|last| *last.borrow_mut() = Some(text));
}

/// The message of the last failed call on this thread, or null if the last call succeeded.
/// The string belongs to the library and stays valid until the next call on this thread; do
/// not free it.
#[no_mangle]
pub extern "C" fn tessera_last_error() -> *const c_char {
    LAST_ERROR.with(|last| {
        last.borrow()
            .as_ref()
            .map_or(std::ptr::null(), |text| text.as_ptr())
    })
}

/// Runs `body` as an exported function's body: clears the last error, turns a failure into
/// its status and message, and a panic into [`TesseraStatus::Internal`].
pub fn guard(name: &str, body: impl FnOnce() -> Result<(), Failure>) -> TesseraStatus {
    LAST_ERROR.with(|last| *last.borrow_mut() = None);
    match catch_unwind(AssertUnwindSafe(body)) {
        Ok(Ok(())) => TesseraStatus::Ok,
        Ok(Err(failure)) => {
            set_last_error(&failure.message);
            failure.status
        }
        Err(_) => {
            set_last_error(&format!("internal error in {name}"));
            TesseraStatus::Internal
        }
    }
}

/// The text at `pointer`, named `name` in messages; null and non-UTF-8 text are refused.
///
/// # Safety
/// `pointer` is null or a NUL-terminated string that outlives the call.
pub unsafe fn text<'a>(pointer: *const c_char, name: &str) -> Result<&'a str, Failure> {
    // SAFETY: the caller's contract.
    unsafe { optional_text(pointer, name) }?
        .ok_or_else(|| Failure::argument(format!("{name} is null")))
}

/// [`text`] where null means "not given".
///
/// # Safety
/// As [`text`].
pub unsafe fn optional_text<'a>(
    pointer: *const c_char,
    name: &str,
) -> Result<Option<&'a str>, Failure> {
    if pointer.is_null() {
        return Ok(None);
    }
    // SAFETY: non-null, and NUL-terminated by the caller's contract.
    let text = unsafe { CStr::from_ptr(pointer) };
    text.to_str()
        .map(Some)
        .map_err(|_| Failure::argument(format!("{name} is not UTF-8")))
}

/// Hands `text` to the caller through `out` (the caller frees it with
/// `tessera_string_free`); a null `out` is refused.
///
/// # Safety
/// `out` is null or points to writable storage for a pointer.
pub unsafe fn give_string(out: *mut *mut c_char, text: String, name: &str) -> Result<(), Failure> {
    if out.is_null() {
        return Err(Failure::argument(format!("{name} is null")));
    }
    let text = CString::new(text).map_err(|_| Failure::argument("a string held a NUL byte"))?;
    // SAFETY: non-null and writable by the caller's contract.
    unsafe { *out = text.into_raw() };
    Ok(())
}
