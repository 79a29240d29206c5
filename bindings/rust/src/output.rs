//! How a Rust value crosses asyncrt as a future's output.
//!
//! asyncrt copies outputs as bytes (at most ASYNCRT_OUTPUT_MAX): a value
//! that fits travels as itself, moved bit for bit (a Rust move is a copy
//! that forgets the source, and asyncrt never reads an output twice: a task
//! has one join); a larger one travels as a pointer to a box. An output
//! nobody takes (a detached task's) is leaked, not dropped: asyncrt does not
//! know how to drop it.

use std::marker::PhantomData;
use std::mem::{self, ManuallyDrop};
use std::os::raw::c_void;
use std::ptr::{self, NonNull};

use crate::sys;

pub(crate) struct Output<T>(PhantomData<T>);

impl<T> Output<T> {
    const INLINE: bool = mem::size_of::<T>() <= sys::ASYNCRT_OUTPUT_MAX;

    /// The output_size of a future whose output is a T.
    pub(crate) const SIZE: usize = if Self::INLINE { mem::size_of::<T>() } else { mem::size_of::<*mut T>() };

    /// Moves `value` to the output at `out`.
    ///
    /// # Safety
    /// `out` has SIZE writable bytes (it may be NULL when SIZE is 0).
    pub(crate) unsafe fn write(out: *mut c_void, value: T) {
        if Self::SIZE == 0 {
            mem::forget(value);
        } else if Self::INLINE {
            ptr::write_unaligned(out as *mut T, value);
        } else {
            ptr::write_unaligned(out as *mut *mut T, Box::into_raw(Box::new(value)));
        }
    }

    /// Moves the output at `src` out.
    ///
    /// # Safety
    /// `src` holds an output written by `write` and not read since.
    pub(crate) unsafe fn read(src: *const c_void) -> T {
        if Self::SIZE == 0 {
            // A zero-sized value has no bytes: any aligned non-null address reads it.
            ptr::read(NonNull::<T>::dangling().as_ptr())
        } else if Self::INLINE {
            ptr::read_unaligned(src as *const T)
        } else {
            *Box::from_raw(ptr::read_unaligned(src as *const *mut T))
        }
    }
}

/// Room for one output of a T, to hand to asyncrt as `out`.
pub(crate) union Slot<T> {
    _inline: ManuallyDrop<T>,
    _boxed: *mut T,
}
