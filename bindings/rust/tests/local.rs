//! Rust futures as tasks of a local executor.

mod support;

use std::cell::RefCell;
use std::rc::Rc;

use asyncrt::{fallible, yield_now, Error, LocalExecutor, Status};
use support::probe::Probe;
use support::TIMEOUT;

#[test]
fn block_on_returns_the_output_of_a_rust_future() {
    let ex = LocalExecutor::new().unwrap();
    let got = ex.block_on_timeout(async { 6 * 7 }, TIMEOUT).unwrap();
    assert_eq!(got, 42);
}

#[test]
fn outputs_of_every_size_cross_intact() {
    let ex = LocalExecutor::new().unwrap();
    // Zero-sized, owning (moved through asyncrt as bytes, dropped once by
    // Rust), and larger than ASYNCRT_OUTPUT_MAX (boxed on the way).
    ex.block_on_timeout(async {}, TIMEOUT).unwrap();
    let text = ex.block_on_timeout(async { String::from("through C and back") }, TIMEOUT).unwrap();
    assert_eq!(text, "through C and back");
    let big = ex.block_on_timeout(async { [7u8; 10_000] }, TIMEOUT).unwrap();
    assert!(big.iter().all(|&b| b == 7), "a 10000-byte output came back changed");
    let joined = ex
        .block_on_timeout(
            async {
                let task = asyncrt::spawn_local(async { (vec![1u64, 2, 3], [9u16; 3000]) }).unwrap();
                task.await
            },
            TIMEOUT,
        )
        .unwrap()
        .unwrap();
    assert_eq!(joined.0, vec![1, 2, 3]);
    assert!(joined.1.iter().all(|&v| v == 9));
}

#[test]
fn spawned_tasks_run_when_the_executor_is_driven_and_their_joins_give_outputs() {
    let ex = LocalExecutor::new().unwrap();
    let log = Rc::new(RefCell::new(Vec::new()));
    let tasks: Vec<_> = (0..3)
        .map(|i| {
            let log = Rc::clone(&log);
            ex.spawn(async move {
                log.borrow_mut().push(i);
                i * 10
            })
            .unwrap()
        })
        .collect();
    assert!(log.borrow().is_empty(), "a task ran before the executor was driven");
    let polls = ex.run_until_idle().unwrap();
    assert_eq!(polls, 3);
    assert_eq!(*log.borrow(), vec![0, 1, 2]);
    for (i, task) in tasks.into_iter().enumerate() {
        assert!(task.is_finished());
        assert_eq!(ex.block_on_timeout(task, TIMEOUT).unwrap().unwrap(), i * 10);
    }
}

#[test]
fn block_on_may_borrow_from_its_caller() {
    let ex = LocalExecutor::new().unwrap();
    let mut total = 0;
    let numbers = vec![1, 2, 3];
    ex.block_on_timeout(
        async {
            for n in &numbers {
                yield_now().await;
                total += n;
            }
        },
        TIMEOUT,
    )
    .unwrap();
    assert_eq!(total, 6);
}

#[test]
fn tasks_that_yield_take_turns() {
    let ex = LocalExecutor::new().unwrap();
    let log = Rc::new(RefCell::new(Vec::new()));
    let tasks: Vec<_> = ["a", "b"]
        .iter()
        .map(|&name| {
            let log = Rc::clone(&log);
            ex.spawn(async move {
                for i in 0..3 {
                    log.borrow_mut().push((name, i));
                    yield_now().await;
                }
            })
            .unwrap()
        })
        .collect();
    for task in tasks {
        ex.block_on_timeout(task, TIMEOUT).unwrap().unwrap();
    }
    // A yield sends the task to the back of the run queue.
    assert_eq!(*log.borrow(), vec![("a", 0), ("b", 0), ("a", 1), ("b", 1), ("a", 2), ("b", 2)]);
}

#[test]
fn a_fallible_future_fails_its_task_with_its_code_and_message() {
    let ex = LocalExecutor::new().unwrap();
    let task = ex.spawn(fallible(async { Err::<u32, _>(Error::with_code(1042, "no luck")) })).unwrap();
    let err = ex.block_on_timeout(task, TIMEOUT).unwrap().unwrap_err();
    assert_eq!(err.code(), 1042);
    assert_eq!(err.message(), "no luck");

    let err = ex.block_on_timeout(fallible(async { Err::<(), _>(Error::new("plain")) }), TIMEOUT).unwrap_err();
    assert_eq!(err.status(), Status::Failed);
    assert!(err.message().contains("plain"), "block_on's error lost the message: {:?}", err);

    let ok = ex.block_on_timeout(fallible(async { Ok::<_, Error>(5) }), TIMEOUT).unwrap();
    assert_eq!(ok, 5);
}

#[test]
fn a_panicking_future_fails_its_task_instead_of_unwinding_into_c() {
    let ex = LocalExecutor::new().unwrap();
    let probe = Probe::new();
    let guard = probe.drop_guard();
    let task = ex
        .spawn(async move {
            let _guard = guard;
            if probe_never_false() {
                panic!("deliberate panic in a task");
            }
        })
        .unwrap();
    let err = ex.block_on_timeout(task, TIMEOUT).unwrap().unwrap_err();
    assert_eq!(err.status(), Status::Failed);
    assert!(err.message().contains("deliberate panic in a task"), "message: {:?}", err.message());
    // The task's state was unwound by the panic (the guard dropped once);
    // the runtime then dropped the rest of the future.
    assert_eq!(probe.drops(), 1);
    // The executor goes on working.
    assert_eq!(ex.block_on_timeout(async { 1 }, TIMEOUT).unwrap(), 1);
}

fn probe_never_false() -> bool {
    std::env::var_os("ASYNCRT_TEST_NEVER_SET").is_none()
}

#[test]
fn block_on_inside_a_task_is_refused_not_deadlocked() {
    let ex = LocalExecutor::new().unwrap();
    let inner = LocalExecutor::new().unwrap();
    let err = ex.block_on_timeout(async { inner.block_on(async { 1 }).unwrap_err() }, TIMEOUT).unwrap();
    assert_eq!(err.status(), Status::Reentrant);
}

#[test]
fn block_on_timeout_gives_up_and_drops_the_future() {
    let ex = LocalExecutor::new().unwrap();
    let probe = Probe::new();
    let err = ex.block_on_timeout(probe.pending_forever(), std::time::Duration::from_millis(20)).unwrap_err();
    assert_eq!(err.status(), Status::TimedOut);
    assert_eq!(probe.polls(), 1);
    assert_eq!(probe.drops(), 1, "the timed-out future was not dropped exactly once");
}

#[test]
fn spawn_outside_a_task_is_an_error() {
    let err = asyncrt::spawn_local(async {}).err().expect("spawn_local outside a task succeeded");
    assert_eq!(err.status(), Status::NotSup);
    let err = asyncrt::Scope::open(&Default::default()).err().expect("Scope::open outside a task succeeded");
    assert_eq!(err.status(), Status::NotSup);
}
