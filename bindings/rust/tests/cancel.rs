//! A Rust future handed to asyncrt is dropped exactly once, however its
//! task ends.

mod support;

use asyncrt::{LocalExecutor, Status, ThreadExecutor};
use support::probe::Probe;
use support::{wait_until, TIMEOUT};

#[test]
fn a_task_cancelled_after_a_poll_is_dropped_once_and_its_join_says_cancelled() {
    let ex = LocalExecutor::new().unwrap();
    let probe = Probe::new();
    let task = ex.spawn(probe.pending_forever()).unwrap();
    ex.run_until_idle().unwrap();
    assert_eq!((probe.polls(), probe.drops()), (1, 0));
    task.cancel().unwrap();
    // The drop happens on the executor's thread when it next runs.
    ex.run_until_idle().unwrap();
    assert_eq!(probe.drops(), 1);
    assert_eq!(task.status().unwrap().unwrap_err().status(), Status::Cancelled);
    let joined = ex.block_on_timeout(task, TIMEOUT).unwrap();
    assert!(joined.unwrap_err().is_cancelled());
    drop(ex);
    assert_eq!((probe.polls(), probe.drops()), (1, 1), "the future was polled or dropped again");
}

#[test]
fn a_task_cancelled_before_its_first_poll_is_dropped_unpolled() {
    let ex = LocalExecutor::new().unwrap();
    let probe = Probe::new();
    let task = ex.spawn(probe.pending_forever()).unwrap();
    task.cancel().unwrap();
    ex.run_until_idle().unwrap();
    assert_eq!((probe.polls(), probe.drops()), (0, 1));
    task.cancel().unwrap(); // cancelling an ended task does nothing
    drop(task);
    drop(ex);
    assert_eq!(probe.drops(), 1);
}

#[test]
fn a_task_cancelled_from_inside_another_task_is_dropped_once() {
    let ex = LocalExecutor::new().unwrap();
    let probe = Probe::new();
    let victim = ex.spawn(probe.pending_forever()).unwrap();
    ex.run_until_idle().unwrap(); // the victim's first poll
    let err = ex
        .block_on_timeout(
            async move {
                victim.cancel().unwrap();
                victim.await.unwrap_err()
            },
            TIMEOUT,
        )
        .unwrap();
    assert!(err.is_cancelled());
    assert_eq!((probe.polls(), probe.drops()), (1, 1));
}

#[test]
fn freeing_the_executor_drops_every_unfinished_task_once() {
    let ex = LocalExecutor::new().unwrap();
    let probe = Probe::new();
    let kept = ex.spawn(probe.pending_forever()).unwrap();
    drop(ex.spawn(probe.pending_forever()).unwrap()); // detached
    ex.run_until_idle().unwrap();
    assert_eq!(probe.polls(), 2);
    drop(ex);
    assert_eq!(probe.drops(), 2);
    assert_eq!(kept.status().unwrap().unwrap_err().status(), Status::Cancelled);
}

#[test]
fn a_send_task_cancelled_on_a_thread_executor_is_dropped_once() {
    let ex = ThreadExecutor::new(2).unwrap();
    let probe = Probe::new();
    let task = ex.spawn(probe.pending_forever()).unwrap();
    assert!(wait_until(|| probe.polls() == 1), "the task was never polled");
    task.cancel().unwrap();
    assert!(wait_until(|| probe.drops() == 1), "the cancelled task was not dropped");
    let err = ex.block_on_timeout(task, TIMEOUT).unwrap().unwrap_err();
    assert!(err.is_cancelled());
    drop(ex);
    assert_eq!((probe.polls(), probe.drops()), (1, 1));
}
