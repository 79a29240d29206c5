//! The hand-written structs of `asyncrt::sys` keep the header's layout.
//! The expected sizes and offsets are what gcc gives for include/asyncrt.h
//! on LP64 Linux (x86_64, aarch64); a field added, dropped or retyped on
//! one side shows here.

use std::mem::{align_of, size_of, MaybeUninit};
use std::ptr::addr_of;

use asyncrt::sys;

/// The offset of a field, without offset_of! (Rust 1.77).
macro_rules! offset {
    ($type:ty, $field:ident) => {{
        let value = MaybeUninit::<$type>::uninit();
        let base = value.as_ptr();
        // SAFETY: addr_of! computes the address without reading.
        unsafe { (addr_of!((*base).$field) as usize) - (base as usize) }
    }};
}

#[test]
fn structs_match_the_header() {
    assert_eq!(size_of::<sys::asyncrt_future_vtable>(), 40);
    assert_eq!(size_of::<sys::asyncrt_future>(), 16);
    assert_eq!(size_of::<sys::asyncrt_waker>(), 16);
    assert_eq!(size_of::<sys::asyncrt_waker_vtable>(), 32);

    assert_eq!(size_of::<sys::asyncrt_executor_config>(), 112);
    assert_eq!(align_of::<sys::asyncrt_executor_config>(), 8);
    let executor_offsets = [
        offset!(sys::asyncrt_executor_config, kind),
        offset!(sys::asyncrt_executor_config, memory_limit),
        offset!(sys::asyncrt_executor_config, workers),
        offset!(sys::asyncrt_executor_config, spin_ns),
        offset!(sys::asyncrt_executor_config, budget_polls),
        offset!(sys::asyncrt_executor_config, budget_ns),
        offset!(sys::asyncrt_executor_config, hooks),
        offset!(sys::asyncrt_executor_config, shutdown_timeout_ns),
        offset!(sys::asyncrt_executor_config, clock),
        offset!(sys::asyncrt_executor_config, subsystems),
        offset!(sys::asyncrt_executor_config, subsystem_handles),
    ];
    assert_eq!(executor_offsets, [8, 16, 32, 40, 48, 56, 64, 72, 80, 88, 104]);

    assert_eq!(size_of::<sys::asyncrt_scope_config>(), 48);
    assert_eq!(
        [
            offset!(sys::asyncrt_scope_config, flags),
            offset!(sys::asyncrt_scope_config, deadline_ns),
            offset!(sys::asyncrt_scope_config, name)
        ],
        [8, 16, 40]
    );

    assert_eq!(size_of::<sys::asyncrt_error_info>(), 48);
    assert_eq!(
        [
            offset!(sys::asyncrt_error_info, status),
            offset!(sys::asyncrt_error_info, task_id),
            offset!(sys::asyncrt_error_info, message),
            offset!(sys::asyncrt_error_info, value_free)
        ],
        [8, 16, 24, 40]
    );

    assert_eq!(size_of::<sys::asyncrt_sleep>(), 88);
    assert_eq!(size_of::<sys::asyncrt_channel_config>(), 56);
    assert_eq!(
        [
            offset!(sys::asyncrt_channel_config, elem_size),
            offset!(sys::asyncrt_channel_config, value_drop),
            offset!(sys::asyncrt_channel_config, initial)
        ],
        [16, 32, 48]
    );
    assert_eq!(size_of::<sys::asyncrt_chan_op>(), 64);
    assert_eq!(size_of::<sys::asyncrt_executor_stats>(), 56);
}

#[test]
fn the_loaded_library_serves_the_header_these_bindings_follow() {
    asyncrt::check_version().unwrap();
    let v = unsafe { sys::asyncrt_version() };
    assert_eq!(asyncrt::version(), format!("{}.{}.{}", v >> 16, (v >> 8) & 0xff, v & 0xff));
}
