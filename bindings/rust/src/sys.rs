//! The C interface of libasyncrt, declared by hand from `include/asyncrt.h`
//! (the header is the manual: ownership, threads and errors of every
//! function are documented there). Only what the bindings and their users
//! need so far is declared; the structs keep the header's layout, checked by
//! `tests/layout.rs` against sizes and offsets taken from the C compiler.
//!
//! Everything here is `unsafe` to call; the rest of the crate wraps it.
#![allow(non_camel_case_types)]

use std::os::raw::{c_char, c_int, c_uint, c_void};

/// The header version these declarations follow (ASYNCRT_VERSION_HEX).
pub const ASYNCRT_VERSION_HEX: u32 = 0x00_05_00;

// ---- statuses (asyncrt_status) --------------------------------------------

pub const ASYNCRT_OK: c_int = 0;
pub const ASYNCRT_EINVAL: c_int = 1;
pub const ASYNCRT_EHANDLE: c_int = 2;
pub const ASYNCRT_ESHUTDOWN: c_int = 3;
pub const ASYNCRT_ENOMEM: c_int = 4;
pub const ASYNCRT_ELIMIT: c_int = 5;
pub const ASYNCRT_ECANCELLED: c_int = 6;
pub const ASYNCRT_EREENTRANT: c_int = 7;
pub const ASYNCRT_EBUSY: c_int = 8;
pub const ASYNCRT_ETIMEDOUT: c_int = 9;
pub const ASYNCRT_EFORKED: c_int = 10;
pub const ASYNCRT_EVERSION: c_int = 11;
pub const ASYNCRT_EINTERNAL: c_int = 12;
pub const ASYNCRT_EFAILED: c_int = 13;
pub const ASYNCRT_EAGAIN: c_int = 14;
pub const ASYNCRT_ENOTSUP: c_int = 15;
pub const ASYNCRT_ESCOPE: c_int = 16;
pub const ASYNCRT_ECLOSED: c_int = 17;
pub const ASYNCRT_ELAGGED: c_int = 18;

// ---- polls (asyncrt_poll) ---------------------------------------------------

pub const ASYNCRT_POLL_PENDING: c_int = 0;
pub const ASYNCRT_POLL_READY: c_int = 1;
pub const ASYNCRT_POLL_YIELDED: c_int = 2;
pub const ASYNCRT_POLL_ERROR: c_int = 3;

/// Largest output a future may declare.
pub const ASYNCRT_OUTPUT_MAX: usize = 4096;
/// Timeout meaning "no bound".
pub const ASYNCRT_NO_TIMEOUT: i64 = -1;

// ---- opaque handles ---------------------------------------------------------

macro_rules! opaque {
    ($($name:ident),*) => {$(
        #[repr(C)]
        pub struct $name {
            _private: [u8; 0],
        }
    )*};
}
opaque!(asyncrt_context, asyncrt_executor, asyncrt_task, asyncrt_scope, asyncrt_sender, asyncrt_receiver);

// ---- futures and wakers -----------------------------------------------------

pub type asyncrt_poll_fn = unsafe extern "C" fn(this: *mut c_void, cx: *mut asyncrt_context, out: *mut c_void) -> c_int;
pub type asyncrt_drop_fn = unsafe extern "C" fn(this: *mut c_void);
pub type asyncrt_cleanup_fn = unsafe extern "C" fn(this: *mut c_void, cx: *mut asyncrt_context) -> c_int;

#[repr(C)]
pub struct asyncrt_future_vtable {
    pub size: usize,
    pub output_size: usize,
    pub poll: Option<asyncrt_poll_fn>,
    pub drop: Option<asyncrt_drop_fn>,
    pub cleanup: Option<asyncrt_cleanup_fn>,
}

#[repr(C)]
#[derive(Clone, Copy)]
pub struct asyncrt_future {
    pub self_: *mut c_void,
    pub vtable: *const asyncrt_future_vtable,
}

impl asyncrt_future {
    /// The "no future" value that out-parameters start as.
    pub const NULL: asyncrt_future = asyncrt_future { self_: std::ptr::null_mut(), vtable: std::ptr::null() };
}

#[repr(C)]
pub struct asyncrt_waker_vtable {
    pub clone: unsafe extern "C" fn(data: *const c_void, out: *mut asyncrt_waker),
    pub wake: unsafe extern "C" fn(data: *const c_void),
    pub wake_by_ref: unsafe extern "C" fn(data: *const c_void),
    pub drop: unsafe extern "C" fn(data: *const c_void),
}

#[repr(C)]
pub struct asyncrt_waker {
    pub data: *const c_void,
    pub vtable: *const asyncrt_waker_vtable,
}

impl asyncrt_waker {
    /// The zeroed waker: "no waker"; every asyncrt_waker_* call ignores it.
    pub const NONE: asyncrt_waker = asyncrt_waker { data: std::ptr::null(), vtable: std::ptr::null() };
}

// ---- executors --------------------------------------------------------------

pub const ASYNCRT_EXECUTOR_LOCAL: c_uint = 0;
pub const ASYNCRT_EXECUTOR_THREADS: c_uint = 1;

pub const ASYNCRT_SHUTDOWN_GRACEFUL: c_int = 0;
pub const ASYNCRT_SHUTDOWN_IMMEDIATE: c_int = 1;

pub const ASYNCRT_CAP_SPAWN_LOCAL: c_uint = 1 << 0;
pub const ASYNCRT_CAP_SPAWN_SEND: c_uint = 1 << 1;
pub const ASYNCRT_CAP_STEPPED: c_uint = 1 << 4;
pub const ASYNCRT_CAP_BLOCK_ON: c_uint = 1 << 5;
pub const ASYNCRT_CAP_MULTI_THREAD: c_uint = 1 << 6;
pub const ASYNCRT_CAP_SCOPES: c_uint = 1 << 12;

/// asyncrt_executor_config. Fill it with asyncrt_executor_config_init_size.
#[repr(C)]
pub struct asyncrt_executor_config {
    pub size: usize,
    pub kind: c_uint,
    pub memory_limit: usize,
    pub allocator: *const c_void,
    pub workers: c_uint,
    pub flags: c_uint,
    pub spin_ns: u64,
    pub budget_polls: u32,
    pub budget_ns: u64,
    pub hooks: *const c_void,
    pub shutdown_timeout_ns: u64,
    pub clock: c_uint,
    pub subsystems: *const c_void,
    pub subsystem_count: usize,
    pub subsystem_handles: *mut c_void,
}

#[repr(C)]
pub struct asyncrt_executor_stats {
    pub size: usize,
    pub tasks_spawned: u64,
    pub tasks_live: u64,
    pub polls: u64,
    pub memory_in_use: u64,
    pub memory_limit: u64,
    pub workers: u64,
}

// ---- tasks --------------------------------------------------------------------

pub const ASYNCRT_SPAWN_LOCAL: c_uint = 0;
pub const ASYNCRT_SPAWN_SEND: c_uint = 1;

// ---- time ---------------------------------------------------------------------

#[repr(C)]
pub struct asyncrt_timer {
    pub opaque: [u64; 8],
}

#[repr(C)]
pub struct asyncrt_sleep {
    pub timer: asyncrt_timer,
    pub deadline_ns: u64,
    pub duration_ns: u64,
    pub flags: u32,
    pub reserved: u32,
}

// ---- scopes -------------------------------------------------------------------

pub const ASYNCRT_SCOPE_FIRST_ERROR: c_uint = 0;
pub const ASYNCRT_SCOPE_COLLECT_ALL: c_uint = 1 << 0;
pub const ASYNCRT_SCOPE_SHIELD: c_uint = 1 << 1;

#[repr(C)]
pub struct asyncrt_scope_config {
    pub size: usize,
    pub flags: c_uint,
    pub deadline_ns: u64,
    pub timeout_ns: u64,
    pub cleanup_timeout_ns: u64,
    pub name: *const c_char,
}

#[repr(C)]
pub struct asyncrt_error_info {
    pub size: usize,
    pub status: c_int,
    pub task_id: u64,
    pub message: *const c_char,
    pub value: *mut c_void,
    pub value_free: Option<unsafe extern "C" fn(value: *mut c_void)>,
}

// ---- channels -----------------------------------------------------------------

pub const ASYNCRT_CHANNEL_ONESHOT: c_uint = 0;
pub const ASYNCRT_CHANNEL_MPSC: c_uint = 1;
pub const ASYNCRT_CHANNEL_BROADCAST: c_uint = 2;
pub const ASYNCRT_CHANNEL_WATCH: c_uint = 3;
pub const ASYNCRT_CHANNEL_LOCAL: c_uint = 1 << 0;

#[repr(C)]
pub struct asyncrt_channel_config {
    pub size: usize,
    pub kind: c_uint,
    pub flags: c_uint,
    pub elem_size: usize,
    pub capacity: usize,
    pub value_drop: Option<unsafe extern "C" fn(value: *mut c_void, user: *mut c_void)>,
    pub user: *mut c_void,
    pub initial: *const c_void,
}

#[repr(C)]
pub struct asyncrt_chan_op {
    pub opaque: [u64; 8],
}

extern "C" {
    // versions and errors
    pub fn asyncrt_version() -> c_uint;
    pub fn asyncrt_version_string() -> *const c_char;
    pub fn asyncrt_check_version(header_version: c_uint) -> c_int;
    pub fn asyncrt_status_str(status: c_int) -> *const c_char;
    pub fn asyncrt_last_error() -> *const c_char;
    pub fn asyncrt_last_status() -> c_int;

    // contexts and wakers
    pub fn asyncrt_context_waker(cx: *const asyncrt_context) -> *const asyncrt_waker;
    pub fn asyncrt_context_executor(cx: *const asyncrt_context) -> *mut asyncrt_executor;
    pub fn asyncrt_context_fail(cx: *mut asyncrt_context, status: c_int);
    pub fn asyncrt_context_failure(cx: *const asyncrt_context) -> c_int;
    pub fn asyncrt_context_fail_info(cx: *mut asyncrt_context, info: *const asyncrt_error_info);
    pub fn asyncrt_waker_clone(w: *const asyncrt_waker, out: *mut asyncrt_waker);
    pub fn asyncrt_waker_wake(w: *mut asyncrt_waker);
    pub fn asyncrt_waker_wake_by_ref(w: *const asyncrt_waker);
    pub fn asyncrt_waker_drop(w: *mut asyncrt_waker);
    pub fn asyncrt_waker_will_wake(a: *const asyncrt_waker, b: *const asyncrt_waker) -> c_int;
    pub fn asyncrt_poll_with_waker(
        fut: *const asyncrt_future,
        waker: *const asyncrt_waker,
        out: *mut c_void,
        failure: *mut c_int,
    ) -> c_int;

    // executors
    pub fn asyncrt_executor_config_init_size(cfg: *mut asyncrt_executor_config, size: usize);
    pub fn asyncrt_executor_new(cfg: *const asyncrt_executor_config, out: *mut *mut asyncrt_executor) -> c_int;
    pub fn asyncrt_executor_free(ex: *mut asyncrt_executor) -> c_int;
    pub fn asyncrt_executor_shutdown(ex: *mut asyncrt_executor, mode: c_int, timeout_ns: i64) -> c_int;
    pub fn asyncrt_executor_capabilities(ex: *mut asyncrt_executor, caps: *mut c_uint) -> c_int;
    pub fn asyncrt_executor_stats_get(ex: *mut asyncrt_executor, stats: *mut asyncrt_executor_stats) -> c_int;

    // tasks
    pub fn asyncrt_spawn(
        ex: *mut asyncrt_executor,
        fut: *const asyncrt_future,
        flags: c_uint,
        out: *mut *mut asyncrt_task,
    ) -> c_int;
    pub fn asyncrt_task_join(task: *mut asyncrt_task, out: *mut asyncrt_future) -> c_int;
    pub fn asyncrt_task_cancel(task: *mut asyncrt_task) -> c_int;
    pub fn asyncrt_task_cancel_ex(task: *mut asyncrt_task, cleanup_timeout_ns: u64) -> c_int;
    pub fn asyncrt_task_status(task: *mut asyncrt_task) -> c_int;
    pub fn asyncrt_task_id(task: *mut asyncrt_task, id: *mut u64) -> c_int;
    pub fn asyncrt_task_release(task: *mut asyncrt_task) -> c_int;
    pub fn asyncrt_task_error_get(task: *mut asyncrt_task, out: *mut asyncrt_error_info) -> c_int;

    // driving
    pub fn asyncrt_block_on(
        ex: *mut asyncrt_executor,
        fut: *const asyncrt_future,
        out: *mut c_void,
        timeout_ns: i64,
    ) -> c_int;
    pub fn asyncrt_run(ex: *mut asyncrt_executor, polls: *mut u64) -> c_int;

    // time
    pub fn asyncrt_executor_now(ex: *mut asyncrt_executor, now_ns: *mut u64) -> c_int;
    pub fn asyncrt_sleep_for(s: *mut asyncrt_sleep, duration_ns: u64, out: *mut asyncrt_future) -> c_int;

    // scopes
    pub fn asyncrt_scope_config_init_size(cfg: *mut asyncrt_scope_config, size: usize);
    pub fn asyncrt_scope_open(
        cx: *mut asyncrt_context,
        cfg: *const asyncrt_scope_config,
        out: *mut *mut asyncrt_scope,
    ) -> c_int;
    pub fn asyncrt_scope_open_for(
        owner: *mut asyncrt_task,
        cfg: *const asyncrt_scope_config,
        out: *mut *mut asyncrt_scope,
    ) -> c_int;
    pub fn asyncrt_scope_open_top(
        ex: *mut asyncrt_executor,
        cfg: *const asyncrt_scope_config,
        out: *mut *mut asyncrt_scope,
    ) -> c_int;
    pub fn asyncrt_scope_spawn(
        scope: *mut asyncrt_scope,
        fut: *const asyncrt_future,
        flags: c_uint,
        out: *mut *mut asyncrt_task,
    ) -> c_int;
    pub fn asyncrt_scope_join(scope: *mut asyncrt_scope, out: *mut asyncrt_future) -> c_int;
    pub fn asyncrt_scope_cancel(scope: *mut asyncrt_scope) -> c_int;
    pub fn asyncrt_scope_status(scope: *mut asyncrt_scope) -> c_int;
    pub fn asyncrt_scope_free(scope: *mut asyncrt_scope) -> c_int;
    pub fn asyncrt_scope_id(scope: *mut asyncrt_scope, id: *mut u64) -> c_int;
    pub fn asyncrt_scope_error_count(scope: *mut asyncrt_scope, count: *mut usize) -> c_int;
    pub fn asyncrt_scope_error_get(scope: *mut asyncrt_scope, index: usize, out: *mut asyncrt_error_info) -> c_int;

    // channels
    pub fn asyncrt_channel_config_init_size(cfg: *mut asyncrt_channel_config, size: usize);
    pub fn asyncrt_channel_new(
        cfg: *const asyncrt_channel_config,
        tx: *mut *mut asyncrt_sender,
        rx: *mut *mut asyncrt_receiver,
    ) -> c_int;
    pub fn asyncrt_sender_free(tx: *mut asyncrt_sender) -> c_int;
    pub fn asyncrt_receiver_free(rx: *mut asyncrt_receiver) -> c_int;
    pub fn asyncrt_try_send(tx: *mut asyncrt_sender, value: *const c_void) -> c_int;
    pub fn asyncrt_try_recv(rx: *mut asyncrt_receiver, out: *mut c_void) -> c_int;
    pub fn asyncrt_send(
        tx: *mut asyncrt_sender,
        value: *const c_void,
        op: *mut asyncrt_chan_op,
        out: *mut asyncrt_future,
    ) -> c_int;
    pub fn asyncrt_recv(rx: *mut asyncrt_receiver, op: *mut asyncrt_chan_op, out: *mut asyncrt_future) -> c_int;
}
