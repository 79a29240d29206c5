//! A Rust future in an asyncrt task keeps the task's waker (as a Rust
//! Waker) and is woken through it from other threads.

mod support;

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::thread;
use std::time::Duration;

use asyncrt::{LocalExecutor, ThreadExecutor};
use support::TIMEOUT;

/// A one-shot signal between a thread and a future: the future waits
/// until the thread sets it.
#[derive(Clone, Default)]
struct Signal {
    state: Arc<Mutex<SignalState>>,
}

#[derive(Default)]
struct SignalState {
    set: bool,
    waker: Option<Waker>,
    polls: usize,
}

impl Signal {
    /// Sets the signal and wakes the waiter: `by_ref` wakes through a
    /// reference and drops the stored waker, otherwise the stored waker is
    /// consumed by wake().
    fn set(&self, by_ref: bool) {
        let waker = {
            let mut state = self.state.lock().unwrap();
            state.set = true;
            state.waker.take()
        };
        if let Some(waker) = waker {
            if by_ref {
                waker.wake_by_ref();
            } else {
                waker.wake();
            }
        }
    }

    fn polls(&self) -> usize {
        self.state.lock().unwrap().polls
    }
}

impl Future for Signal {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let mut state = self.state.lock().unwrap();
        state.polls += 1;
        if state.set {
            return Poll::Ready(());
        }
        // Replace an older waker only when it would wake something else.
        match &state.waker {
            Some(w) if w.will_wake(cx.waker()) => {}
            _ => state.waker = Some(cx.waker().clone()),
        }
        Poll::Pending
    }
}

fn set_later(signal: &Signal, by_ref: bool) -> thread::JoinHandle<()> {
    let signal = signal.clone();
    thread::spawn(move || {
        thread::sleep(Duration::from_millis(10));
        signal.set(by_ref);
    })
}

#[test]
fn a_local_task_is_woken_from_another_thread_through_its_cloned_waker() {
    let ex = LocalExecutor::new().unwrap();
    for by_ref in [false, true] {
        let signal = Signal::default();
        let setter = set_later(&signal, by_ref);
        ex.block_on_timeout(signal.clone(), TIMEOUT).unwrap();
        setter.join().unwrap();
        // Pending once, then ready after the wake: no busy polling.
        assert_eq!(signal.polls(), 2, "by_ref={}", by_ref);
    }
}

#[test]
fn many_wakes_from_another_thread_each_reach_the_task() {
    let ex = LocalExecutor::new().unwrap();
    let signals: Vec<Signal> = (0..50).map(|_| Signal::default()).collect();
    let setter = {
        let signals = signals.clone();
        thread::spawn(move || {
            for (i, signal) in signals.iter().enumerate() {
                // Waits until the task is parked on this signal, so every
                // wake finds a stored waker.
                while signal.state.lock().unwrap().waker.is_none() {
                    thread::sleep(Duration::from_micros(100));
                }
                signal.set(i % 2 == 0);
            }
        })
    };
    let waited = ex
        .block_on_timeout(
            async {
                for signal in &signals {
                    signal.clone().await;
                }
                signals.len()
            },
            TIMEOUT,
        )
        .unwrap();
    setter.join().unwrap();
    assert_eq!(waited, 50);
}

#[test]
fn a_send_task_on_a_thread_executor_is_woken_from_a_plain_thread() {
    let ex = ThreadExecutor::new(2).unwrap();
    let signal = Signal::default();
    let task = ex.spawn(signal.clone()).unwrap();
    let setter = set_later(&signal, false);
    ex.block_on_timeout(task, TIMEOUT).unwrap().unwrap();
    setter.join().unwrap();
    assert_eq!(signal.polls(), 2);
}

#[test]
fn a_waker_kept_after_its_task_ended_is_harmless() {
    let ex = LocalExecutor::new().unwrap();
    let kept: Arc<Mutex<Option<Waker>>> = Arc::default();
    ex.block_on_timeout(KeepWaker(Arc::clone(&kept)), TIMEOUT).unwrap();
    let waker = kept.lock().unwrap().take().unwrap();
    // Woken from another thread after its task finished, and after its
    // executor was freed: asyncrt wakers then do nothing.
    thread::spawn({
        let waker = waker.clone();
        move || waker.wake_by_ref()
    })
    .join()
    .unwrap();
    drop(ex);
    waker.wake();
}

/// Keeps a clone of its waker, and is ready at once.
struct KeepWaker(Arc<Mutex<Option<Waker>>>);

impl Future for KeepWaker {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        *self.0.lock().unwrap() = Some(cx.waker().clone());
        Poll::Ready(())
    }
}
