//! Time: asyncrt's sleep future, and durations as the nanoseconds the C API
//! counts in.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use crate::error::Error;
use crate::ffi_future::AsyncrtFuture;
use crate::sys;

/// A duration in nanoseconds, saturated at u64::MAX (about 584 years).
pub(crate) fn duration_ns(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// A future that completes once `duration` has passed on its executor's
/// clock, counted from its first poll (asyncrt_sleep_for). It needs an
/// asyncrt executor to advance its timer: await it inside a task that an
/// asyncrt executor runs (elsewhere it fails with ASYNCRT_ENOTSUP).
pub fn sleep(duration: Duration) -> Sleep {
    let mut state = Box::new(sys::asyncrt_sleep {
        timer: sys::asyncrt_timer { opaque: [0; 8] },
        deadline_ns: 0,
        duration_ns: 0,
        flags: 0,
        reserved: 0,
    });
    let mut raw = sys::asyncrt_future::NULL;
    // SAFETY: both pointers are valid; the state is boxed, so it stays in
    // place for the future's life, and it outlives the future (field order).
    let future = unsafe {
        let code = sys::asyncrt_sleep_for(&mut *state, duration_ns(duration), &mut raw);
        assert_eq!(code, sys::ASYNCRT_OK, "asyncrt_sleep_for fails only for NULL arguments");
        AsyncrtFuture::from_raw(raw).expect("asyncrt's sleep future is valid")
    };
    Sleep { future, _state: state }
}

/// The future of [`sleep`].
pub struct Sleep {
    // Dropped first: its drop disarms the timer inside the state.
    future: AsyncrtFuture<()>,
    _state: Box<sys::asyncrt_sleep>,
}

impl Future for Sleep {
    type Output = Result<(), Error>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        Pin::new(&mut self.future).poll(cx)
    }
}

/// A future that returns pending once, waking itself: the task goes to the
/// back of its executor's run queue and lets the others run.
pub fn yield_now() -> YieldNow {
    YieldNow { yielded: false }
}

/// The future of [`yield_now`].
pub struct YieldNow {
    yielded: bool,
}

impl Future for YieldNow {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.yielded {
            Poll::Ready(())
        } else {
            self.yielded = true;
            cx.waker().wake_by_ref();
            Poll::Pending
        }
    }
}
