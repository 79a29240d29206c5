//! A minimal Rust executor of the test's own (one future, the thread parks
//! between polls), to poll asyncrt futures from outside any asyncrt
//! executor: they then see a Rust waker lent to them as an asyncrt waker.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::thread::{self, Thread};
use std::time::Instant;

use super::TIMEOUT;

pub struct ThreadWaker {
    thread: Thread,
    wakes: AtomicUsize,
}

impl Wake for ThreadWaker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.wakes.fetch_add(1, Ordering::SeqCst);
        self.thread.unpark();
    }
}

/// What block_on saw: the output, and how the waker was used.
pub struct Run<T> {
    pub output: T,
    pub polls: usize,
    pub wakes: usize,
    /// The waker's owner: compare its strong count with 1 once everything
    /// that could hold a clone is gone.
    pub waker: Arc<ThreadWaker>,
}

/// Polls `future` on this thread until it is ready; panics after TIMEOUT.
pub fn block_on<F: Future>(future: F) -> Run<F::Output> {
    let mut future = Box::pin(future);
    let owner = Arc::new(ThreadWaker { thread: thread::current(), wakes: AtomicUsize::new(0) });
    let waker = Waker::from(Arc::clone(&owner));
    let deadline = Instant::now() + TIMEOUT;
    let mut polls = 0;
    loop {
        polls += 1;
        if let Poll::Ready(output) = Pin::as_mut(&mut future).poll(&mut Context::from_waker(&waker)) {
            drop(future);
            drop(waker);
            let wakes = owner.wakes.load(Ordering::SeqCst);
            return Run { output, polls, wakes, waker: owner };
        }
        let now = Instant::now();
        assert!(now < deadline, "the future was not ready within {:?} ({} polls)", TIMEOUT, polls);
        // A wake that came before the park makes it return at once.
        thread::park_timeout(deadline - now);
    }
}
