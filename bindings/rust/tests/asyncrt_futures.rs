//! asyncrt futures awaited from Rust: inside asyncrt tasks (with the task's
//! own context) and from the test's own Rust executor (through
//! asyncrt_poll_with_waker, with the Rust waker lent as an asyncrt waker).

mod support;

use std::mem;
use std::ptr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use asyncrt::{sleep, sys, AsyncrtFuture, Error, LocalExecutor, Status};
use support::cfuture::{countdown, Counters, Outcome};
use support::{rust_executor, TIMEOUT};

fn c_countdown(steps: u32, from_thread: bool, outcome: Outcome, counters: &Counters) -> AsyncrtFuture<u64> {
    // SAFETY: a fresh future with a u64 output that may be polled anywhere.
    unsafe { AsyncrtFuture::from_raw(countdown(steps, from_thread, outcome, counters)) }.unwrap()
}

#[test]
fn a_c_future_inside_a_task_completes_with_its_output_and_is_dropped_once() {
    let ex = LocalExecutor::new().unwrap();
    for from_thread in [false, true] {
        let counters = Counters::default();
        let fut = c_countdown(3, from_thread, Outcome { value: 77, fail_code: 0 }, &counters);
        let got = ex.block_on_timeout(fut, TIMEOUT).unwrap().unwrap();
        assert_eq!(got, 77);
        assert_eq!(counters.polls.load(Ordering::SeqCst), 4, "from_thread={}", from_thread);
        assert_eq!(counters.drops.load(Ordering::SeqCst), 1, "from_thread={}", from_thread);
    }
}

#[test]
fn a_c_future_polled_by_a_rust_executor_wakes_it_through_the_lent_waker() {
    for from_thread in [false, true] {
        let counters = Counters::default();
        let fut = c_countdown(3, from_thread, Outcome { value: 5, fail_code: 0 }, &counters);
        let run = rust_executor::block_on(fut);
        assert_eq!(run.output.unwrap(), 5);
        assert_eq!(run.polls, 4);
        // Every pending poll woke the Rust waker once: by reference, or
        // through a clone woken on another thread.
        assert_eq!(run.wakes, 3, "from_thread={}", from_thread);
        assert_eq!(counters.drops.load(Ordering::SeqCst), 1);
        // Every clone asyncrt made of the Rust waker was released.
        assert!(
            support::wait_until(|| Arc::strong_count(&run.waker) == 1),
            "the Rust waker still has {} references",
            Arc::strong_count(&run.waker)
        );
    }
}

#[test]
fn a_c_future_failure_reaches_rust_with_its_status() {
    let ex = LocalExecutor::new().unwrap();
    let counters = Counters::default();
    let fut = c_countdown(1, false, Outcome { value: 0, fail_code: 1077 }, &counters);
    let err = ex.block_on_timeout(fut, TIMEOUT).unwrap().unwrap_err();
    assert_eq!(err.code(), 1077);

    let fut = c_countdown(0, false, Outcome { value: 0, fail_code: sys::ASYNCRT_ECLOSED }, &counters);
    let err = rust_executor::block_on(fut).output.unwrap_err();
    assert_eq!(err.status(), Status::Closed);
    assert_eq!(counters.drops.load(Ordering::SeqCst), 2);
}

#[test]
fn an_unpolled_c_future_is_dropped_with_its_rust_wrapper() {
    let counters = Counters::default();
    drop(c_countdown(1, false, Outcome { value: 0, fail_code: 0 }, &counters));
    assert_eq!(counters.polls.load(Ordering::SeqCst), 0);
    assert_eq!(counters.drops.load(Ordering::SeqCst), 1);
}

#[test]
fn a_future_of_the_wrong_output_size_is_refused_and_dropped() {
    let counters = Counters::default();
    let raw = countdown(0, false, Outcome { value: 0, fail_code: 0 }, &counters);
    // SAFETY: as in c_countdown; the size check refuses a u32.
    let err = unsafe { AsyncrtFuture::<u32>::from_raw(raw) }.err().expect("a u64 output was read as a u32");
    assert_eq!(err.status(), Status::Inval);
    assert_eq!(counters.drops.load(Ordering::SeqCst), 1);
}

#[test]
fn an_asyncrt_sleep_in_a_task_waits_on_the_executor_clock() {
    let ex = LocalExecutor::new().unwrap();
    let start = Instant::now();
    ex.block_on_timeout(sleep(Duration::from_millis(30)), TIMEOUT).unwrap().unwrap();
    assert!(start.elapsed() >= Duration::from_millis(30), "the sleep ended early: {:?}", start.elapsed());
}

#[test]
fn an_asyncrt_sleep_outside_an_executor_fails_with_notsup() {
    // Nothing advances a timer outside an asyncrt executor: asyncrt says so.
    let err = rust_executor::block_on(sleep(Duration::from_millis(1))).output.unwrap_err();
    assert_eq!(err.status(), Status::NotSup);
}

/// An MPSC channel of u64s (raw C API).
struct Channel {
    tx: *mut sys::asyncrt_sender,
    rx: *mut sys::asyncrt_receiver,
}

unsafe impl Send for Channel {}
unsafe impl Sync for Channel {}

impl Channel {
    fn new() -> Channel {
        unsafe {
            let mut config: sys::asyncrt_channel_config = mem::zeroed();
            sys::asyncrt_channel_config_init_size(&mut config, mem::size_of::<sys::asyncrt_channel_config>());
            config.kind = sys::ASYNCRT_CHANNEL_MPSC;
            config.elem_size = mem::size_of::<u64>();
            let (mut tx, mut rx) = (ptr::null_mut(), ptr::null_mut());
            assert_eq!(sys::asyncrt_channel_new(&config, &mut tx, &mut rx), sys::ASYNCRT_OK);
            Channel { tx, rx }
        }
    }

    fn try_send(&self, value: u64) {
        assert_eq!(unsafe { sys::asyncrt_try_send(self.tx, &value as *const u64 as *const _) }, sys::ASYNCRT_OK);
    }

    /// A receive future: an asyncrt future awaited from Rust. Its op must
    /// stay in place while the receive is pending: it lives in a box the
    /// returned future owns.
    async fn recv(&self) -> Result<u64, Error> {
        let mut op = Box::new(sys::asyncrt_chan_op { opaque: [0; 8] });
        let mut raw = sys::asyncrt_future::NULL;
        assert_eq!(unsafe { sys::asyncrt_recv(self.rx, &mut *op, &mut raw) }, sys::ASYNCRT_OK);
        // SAFETY: the output is a u64; the op outlives the future (dropped
        // at the end of this block, after the await).
        let fut = unsafe { AsyncrtFuture::<u64>::from_raw(raw) }.unwrap();
        let value = fut.await;
        drop(op);
        value
    }
}

impl Drop for Channel {
    fn drop(&mut self) {
        unsafe {
            sys::asyncrt_sender_free(self.tx);
            sys::asyncrt_receiver_free(self.rx);
        }
    }
}

#[test]
fn a_channel_receive_in_a_task_is_woken_by_a_send_from_another_thread() {
    let ex = LocalExecutor::new().unwrap();
    let channel = Arc::new(Channel::new());
    let sender = {
        let channel = Arc::clone(&channel);
        thread::spawn(move || {
            for value in [10, 20, 30] {
                thread::sleep(Duration::from_millis(5));
                channel.try_send(value);
            }
        })
    };
    let received = ex
        .block_on_timeout(
            async {
                let mut got = Vec::new();
                for _ in 0..3 {
                    got.push(channel.recv().await.unwrap());
                }
                got
            },
            TIMEOUT,
        )
        .unwrap();
    sender.join().unwrap();
    assert_eq!(received, vec![10, 20, 30]);
}

#[test]
fn a_channel_receive_polled_by_a_rust_executor_is_woken_from_another_thread() {
    let channel = Arc::new(Channel::new());
    let sender = {
        let channel = Arc::clone(&channel);
        thread::spawn(move || {
            thread::sleep(Duration::from_millis(10));
            channel.try_send(99);
        })
    };
    let run = rust_executor::block_on(channel.recv());
    sender.join().unwrap();
    assert_eq!(run.output.unwrap(), 99);
    assert!(run.wakes >= 1, "the receive completed without a wake");
    drop(channel);
    assert!(support::wait_until(|| Arc::strong_count(&run.waker) == 1), "the channel kept a clone of the Rust waker");
}

#[test]
fn a_task_join_is_awaited_from_a_rust_executor() {
    // The join of an asyncrt task, polled outside asyncrt: a thread drives
    // the executor while this thread's Rust executor waits on the join.
    let ex = asyncrt::ThreadExecutor::new(1).unwrap();
    let task = ex
        .spawn(async {
            sleep(Duration::from_millis(10)).await.unwrap();
            String::from("joined")
        })
        .unwrap();
    let run = rust_executor::block_on(task);
    assert_eq!(run.output.unwrap(), "joined");
    assert!(run.wakes >= 1);
}
