//! Errors: an asyncrt status code with the message that came with it.

use std::ffi::CStr;
use std::fmt;
use std::os::raw::{c_char, c_int};

use crate::sys;

/// The asyncrt statuses, by name (`asyncrt_status` in the header). A user
/// failure code (above 1000, see [`Error::with_code`]) or a status newer than
/// these bindings is `Other`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Status {
    Inval,
    Handle,
    Shutdown,
    NoMem,
    Limit,
    Cancelled,
    Reentrant,
    Busy,
    TimedOut,
    Forked,
    Version,
    Internal,
    Failed,
    Again,
    NotSup,
    Scope,
    Closed,
    Lagged,
    Other(i32),
}

impl Status {
    /// The status of a nonzero code.
    pub fn from_code(code: i32) -> Status {
        match code {
            sys::ASYNCRT_EINVAL => Status::Inval,
            sys::ASYNCRT_EHANDLE => Status::Handle,
            sys::ASYNCRT_ESHUTDOWN => Status::Shutdown,
            sys::ASYNCRT_ENOMEM => Status::NoMem,
            sys::ASYNCRT_ELIMIT => Status::Limit,
            sys::ASYNCRT_ECANCELLED => Status::Cancelled,
            sys::ASYNCRT_EREENTRANT => Status::Reentrant,
            sys::ASYNCRT_EBUSY => Status::Busy,
            sys::ASYNCRT_ETIMEDOUT => Status::TimedOut,
            sys::ASYNCRT_EFORKED => Status::Forked,
            sys::ASYNCRT_EVERSION => Status::Version,
            sys::ASYNCRT_EINTERNAL => Status::Internal,
            sys::ASYNCRT_EFAILED => Status::Failed,
            sys::ASYNCRT_EAGAIN => Status::Again,
            sys::ASYNCRT_ENOTSUP => Status::NotSup,
            sys::ASYNCRT_ESCOPE => Status::Scope,
            sys::ASYNCRT_ECLOSED => Status::Closed,
            sys::ASYNCRT_ELAGGED => Status::Lagged,
            other => Status::Other(other),
        }
    }

    /// The numeric code, as the C API uses it.
    pub fn code(self) -> i32 {
        match self {
            Status::Inval => sys::ASYNCRT_EINVAL,
            Status::Handle => sys::ASYNCRT_EHANDLE,
            Status::Shutdown => sys::ASYNCRT_ESHUTDOWN,
            Status::NoMem => sys::ASYNCRT_ENOMEM,
            Status::Limit => sys::ASYNCRT_ELIMIT,
            Status::Cancelled => sys::ASYNCRT_ECANCELLED,
            Status::Reentrant => sys::ASYNCRT_EREENTRANT,
            Status::Busy => sys::ASYNCRT_EBUSY,
            Status::TimedOut => sys::ASYNCRT_ETIMEDOUT,
            Status::Forked => sys::ASYNCRT_EFORKED,
            Status::Version => sys::ASYNCRT_EVERSION,
            Status::Internal => sys::ASYNCRT_EINTERNAL,
            Status::Failed => sys::ASYNCRT_EFAILED,
            Status::Again => sys::ASYNCRT_EAGAIN,
            Status::NotSup => sys::ASYNCRT_ENOTSUP,
            Status::Scope => sys::ASYNCRT_ESCOPE,
            Status::Closed => sys::ASYNCRT_ECLOSED,
            Status::Lagged => sys::ASYNCRT_ELAGGED,
            Status::Other(code) => code,
        }
    }
}

/// A failure: its status code and a message (the runtime's detailed
/// message when there is one, else the status's name).
#[derive(Clone, PartialEq, Eq)]
pub struct Error {
    code: i32,
    message: String,
}

/// Codes above this are the user's own failure codes (asyncrt_context_fail).
const USER_CODE_MIN: i32 = 1001;

impl Error {
    /// A failure of a Rust future, reported as ASYNCRT_EFAILED.
    pub fn new(message: impl Into<String>) -> Error {
        Error { code: sys::ASYNCRT_EFAILED, message: message.into() }
    }

    /// A failure with a code of its own: an asyncrt status (nonzero) or a
    /// user value above 1000. Other values become ASYNCRT_EFAILED, since the
    /// runtime accepts no others as a failure.
    pub fn with_code(code: i32, message: impl Into<String>) -> Error {
        let known = !matches!(Status::from_code(code), Status::Other(_));
        let valid = code >= USER_CODE_MIN || (code > 0 && known);
        Error { code: if valid { code } else { sys::ASYNCRT_EFAILED }, message: message.into() }
    }

    /// The error of a failed call made just now on this thread: `code` with
    /// asyncrt_last_error's message.
    pub(crate) fn last(code: c_int) -> Error {
        // SAFETY: asyncrt_last_error never returns NULL; the string stays
        // valid until the next failing call on this thread, and is copied.
        let message = unsafe { copy_c_str(sys::asyncrt_last_error()) };
        Error::from_status(code, message)
    }

    /// An error with `code` and `message`, or the status's name when the
    /// message is empty.
    pub(crate) fn from_status(code: c_int, message: Option<String>) -> Error {
        let message = match message {
            Some(m) if !m.is_empty() => m,
            // SAFETY: asyncrt_status_str returns a static string, never NULL.
            _ => unsafe { copy_c_str(sys::asyncrt_status_str(code)) }.unwrap_or_default(),
        };
        Error { code, message }
    }

    /// The status code (an asyncrt_status, or a user code above 1000).
    pub fn code(&self) -> i32 {
        self.code
    }

    /// The status by name.
    pub fn status(&self) -> Status {
        Status::from_code(self.code)
    }

    /// The message.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// True for a cancellation (ASYNCRT_ECANCELLED).
    pub fn is_cancelled(&self) -> bool {
        self.code == sys::ASYNCRT_ECANCELLED
    }
}

/// Turns a status returned by a call into a Result, reading the message of
/// a failure at once (before another call can overwrite it).
pub(crate) fn check(code: c_int) -> Result<(), Error> {
    if code == sys::ASYNCRT_OK {
        Ok(())
    } else {
        Err(Error::last(code))
    }
}

/// Copies a C string the runtime owns; None for NULL.
///
/// # Safety
/// `s` is NULL or points to a NUL-terminated string valid for the call.
pub(crate) unsafe fn copy_c_str(s: *const c_char) -> Option<String> {
    if s.is_null() {
        None
    } else {
        Some(CStr::from_ptr(s).to_string_lossy().into_owned())
    }
}

impl From<&str> for Error {
    fn from(message: &str) -> Error {
        Error::new(message)
    }
}

impl From<String> for Error {
    fn from(message: String) -> Error {
        Error::new(message)
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Error").field("status", &self.status()).field("message", &self.message).finish()
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "asyncrt: {} (status {})", self.message, self.code)
    }
}

impl std::error::Error for Error {}
