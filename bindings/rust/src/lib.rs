//! Rust bindings for libasyncrt, a structured async runtime with a C ABI.
//!
//! Both directions of the future boundary are here:
//!
//! - Rust futures run as asyncrt tasks: [`LocalExecutor`] and
//!   [`ThreadExecutor`] spawn them and `block_on` them, [`Scope`]s own them,
//!   and [`into_raw`] turns one into an `asyncrt_future` for any C API that
//!   takes futures. A Rust future that fails ([`fallible`]) reports its
//!   error's status and message to its join and its scope.
//! - asyncrt futures are Rust futures: [`AsyncrtFuture`] awaits any of them
//!   (a C future, a channel receive, a Python future), [`JoinHandle`] awaits
//!   a task, [`sleep`] waits on asyncrt's timers.
//!
//! Wakers cross both ways (see `waker.rs`): an asyncrt task's waker is a
//! Rust `Waker` inside the Rust future, and a Rust waker is an asyncrt waker
//! when a Rust executor polls an asyncrt future.
//!
//! The C declarations are written by hand in [`sys`] from
//! `include/asyncrt.h`, which documents every function's ownership, threads
//! and errors. The crate has no dependencies and builds with Rust 1.63.
//!
//! ```
//! let ex = asyncrt::LocalExecutor::new()?;
//! let task = ex.spawn(async { 6 * 7 })?;
//! assert_eq!(ex.block_on(task)??, 42);
//! # Ok::<(), asyncrt::Error>(())
//! ```

mod current;
mod error;
mod executor;
mod ffi_future;
mod output;
mod scope;
mod spawn;
pub mod sys;
mod task;
mod task_future;
mod time;
mod waker;

pub use error::{Error, Status};
pub use executor::{LocalExecutor, ThreadExecutor};
pub use ffi_future::AsyncrtFuture;
pub use scope::{spawn_in_scope, Scope, ScopeError, ScopeJoin, ScopeOptions};
pub use spawn::{spawn, spawn_local};
pub use task::JoinHandle;
pub use task_future::{fallible, into_raw, Fallible, TaskBody};
pub use time::{sleep, yield_now, Sleep, YieldNow};

/// Checks that the loaded library serves the header these bindings were
/// written from (same major version, at least the same minor);
/// ASYNCRT_EVERSION otherwise.
pub fn check_version() -> Result<(), Error> {
    // SAFETY: no arguments to get wrong.
    error::check(unsafe { sys::asyncrt_check_version(sys::ASYNCRT_VERSION_HEX) })
}

/// The loaded library's version string ("0.5.0").
pub fn version() -> String {
    // SAFETY: a static string, never NULL.
    unsafe { error::copy_c_str(sys::asyncrt_version_string()) }.unwrap_or_default()
}
