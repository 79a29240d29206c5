//! Rust futures as children of scopes: failures reach the scope and cancel
//! the siblings, and a Rust future joins a scope that C code opened, next
//! to a C future.

mod support;

use std::mem;
use std::ptr;
use std::thread;
use std::time::Duration;

use asyncrt::{fallible, sleep, spawn_in_scope, sys, AsyncrtFuture, Error, LocalExecutor, Scope, ScopeOptions, Status};
use support::cfuture::{countdown, Counters, Outcome};
use support::probe::Probe;
use support::TIMEOUT;

#[test]
fn a_failing_rust_child_fails_the_scope_and_its_siblings_are_cancelled() {
    let ex = LocalExecutor::new().unwrap();
    let sibling = Probe::new();
    let sleeper = Probe::new();
    let (joined, errors, sibling_end, sleeper_end) = ex
        .block_on_timeout(
            async {
                let scope = Scope::open(&ScopeOptions::default()).unwrap();
                let forever = scope.spawn_local(sibling.pending_forever()).unwrap();
                let guard = sleeper.drop_guard();
                let napping = scope
                    .spawn(async move {
                        let _guard = guard;
                        sleep(Duration::from_secs(60)).await
                    })
                    .unwrap();
                let failing = scope
                    .spawn(fallible(async {
                        asyncrt::yield_now().await;
                        Err::<(), _>(Error::with_code(1234, "the child gave up"))
                    }))
                    .unwrap();
                let joined = scope.join().await;
                let errors = scope.errors().unwrap();
                assert_eq!(failing.await.unwrap_err().code(), 1234);
                (joined, errors, forever.await, napping.await)
            },
            TIMEOUT,
        )
        .unwrap();
    let err = joined.unwrap_err();
    assert_eq!(err.code(), 1234);
    assert_eq!(err.message(), "the child gave up");
    assert_eq!(errors.len(), 1);
    assert_eq!(errors[0].error.code(), 1234);
    assert_eq!(errors[0].error.message(), "the child gave up");
    assert!(errors[0].task_id != 0);
    // Both siblings were cancelled and dropped once, the pending one after
    // its first poll.
    assert!(sibling_end.unwrap_err().is_cancelled());
    assert!(sleeper_end.unwrap_err().is_cancelled());
    assert_eq!((sibling.polls(), sibling.drops()), (1, 1));
    assert_eq!(sleeper.drops(), 1);
}

#[test]
fn a_panicking_child_fails_its_scope_like_an_error() {
    let ex = LocalExecutor::new().unwrap();
    let err = ex
        .block_on_timeout(
            async {
                let scope = Scope::open(&ScopeOptions::default()).unwrap();
                scope
                    .spawn(async {
                        if std::env::var_os("ASYNCRT_TEST_NEVER_SET").is_none() {
                            panic!("child panic");
                        }
                    })
                    .unwrap();
                scope.join().await.unwrap_err()
            },
            TIMEOUT,
        )
        .unwrap();
    assert_eq!(err.status(), Status::Failed);
    assert!(err.message().contains("child panic"), "message: {}", err.message());
}

#[test]
fn a_scope_whose_children_succeed_joins_ok_and_then_closes() {
    let ex = LocalExecutor::new().unwrap();
    let scope = ex.scope(&ScopeOptions { name: Some("workers".into()), ..Default::default() }).unwrap();
    let children: Vec<_> = (0..3).map(|i| scope.spawn_local(async move { i * 2 }).unwrap()).collect();
    assert!(scope.status().is_none(), "an open scope reported an end");
    ex.block_on_timeout(scope.join(), TIMEOUT).unwrap().unwrap();
    assert!(scope.status().unwrap().is_ok());
    for (i, child) in children.into_iter().enumerate() {
        assert_eq!(ex.block_on_timeout(child, TIMEOUT).unwrap().unwrap(), i * 2);
    }
    let late = scope.spawn(async {}).err().expect("a joined scope took a child");
    assert_eq!(late.status(), Status::Scope);
}

#[test]
fn a_scope_timeout_cancels_its_children_and_fails_the_join() {
    let ex = LocalExecutor::new().unwrap();
    let probe = Probe::new();
    let options = ScopeOptions { timeout: Some(Duration::from_millis(20)), ..Default::default() };
    let scope = ex.scope(&options).unwrap();
    scope.spawn_local(probe.pending_forever()).unwrap();
    let err = ex.block_on_timeout(scope.join(), TIMEOUT).unwrap().unwrap_err();
    assert_eq!(err.status(), Status::TimedOut);
    assert_eq!(probe.drops(), 1);
}

#[test]
fn collect_all_keeps_siblings_running_and_records_every_failure() {
    let ex = LocalExecutor::new().unwrap();
    let scope = ex.scope(&ScopeOptions { collect_all: true, ..Default::default() }).unwrap();
    for i in 0..2 {
        scope.spawn_local(fallible(async move { Err::<(), _>(Error::new(format!("failure {}", i))) })).unwrap();
    }
    let survivor = scope
        .spawn_local(async {
            sleep(Duration::from_millis(5)).await.unwrap();
            "survived"
        })
        .unwrap();
    let err = ex.block_on_timeout(scope.join(), TIMEOUT).unwrap().unwrap_err();
    assert_eq!(err.message(), "failure 0");
    let messages: Vec<String> = scope.errors().unwrap().into_iter().map(|e| e.error.message().to_string()).collect();
    assert_eq!(messages, vec!["failure 0", "failure 1"]);
    assert_eq!(ex.block_on_timeout(survivor, TIMEOUT).unwrap().unwrap(), "survived");
}

#[test]
fn scope_cancel_cancels_rust_children() {
    let ex = LocalExecutor::new().unwrap();
    let probe = Probe::new();
    let scope = ex.scope(&ScopeOptions::default()).unwrap();
    let child = scope.spawn_local(probe.pending_forever()).unwrap();
    ex.run_until_idle().unwrap();
    scope.cancel().unwrap();
    let err = ex.block_on_timeout(scope.join(), TIMEOUT).unwrap().unwrap_err();
    assert!(err.is_cancelled());
    assert!(ex.block_on_timeout(child, TIMEOUT).unwrap().unwrap_err().is_cancelled());
    assert_eq!((probe.polls(), probe.drops()), (1, 1));
    assert_eq!(scope.spawn(async {}).err().unwrap().status(), Status::Scope);
}

#[test]
fn spawn_local_into_a_scope_from_another_thread_is_refused() {
    let ex = LocalExecutor::new().unwrap();
    let scope = ex.scope(&ScopeOptions::default()).unwrap();
    let refused = thread::scope(|s| s.spawn(|| scope.spawn_local(async {}).err()).join().unwrap());
    assert_eq!(refused.expect("a local child was spawned from another thread").status(), Status::Inval);
    scope.cancel().unwrap();
}

/// A scope opened by C code (the raw API): a C future and a Rust future are
/// its children, side by side; the Rust one fails, the C one is cancelled.
#[test]
fn a_rust_future_joins_a_scope_opened_by_c_next_to_a_c_future() {
    let ex = LocalExecutor::new().unwrap();
    // SAFETY: plain C API use; every handle is freed below, and the sleep's
    // state outlives the executor that might poll it.
    unsafe {
        let mut scope = ptr::null_mut();
        assert_eq!(sys::asyncrt_scope_open_top(ex.as_raw(), ptr::null(), &mut scope), sys::ASYNCRT_OK);

        // The C child: asyncrt's own sleep future, for a minute.
        let mut sleep_state: Box<sys::asyncrt_sleep> = Box::new(mem::zeroed());
        let mut c_sleep = sys::asyncrt_future::NULL;
        assert_eq!(sys::asyncrt_sleep_for(&mut *sleep_state, 60_000_000_000, &mut c_sleep), sys::ASYNCRT_OK);
        let mut c_task = ptr::null_mut();
        assert_eq!(sys::asyncrt_scope_spawn(scope, &c_sleep, sys::ASYNCRT_SPAWN_LOCAL, &mut c_task), sys::ASYNCRT_OK);

        // A hand-written C future that succeeds, and the Rust child that fails.
        let counters = Counters::default();
        let c_ok = countdown(2, false, Outcome { value: 1, fail_code: 0 }, &counters);
        assert_eq!(sys::asyncrt_scope_spawn(scope, &c_ok, sys::ASYNCRT_SPAWN_SEND, ptr::null_mut()), sys::ASYNCRT_OK);
        let rust_child = spawn_in_scope(
            scope,
            fallible(async {
                sleep(Duration::from_millis(5)).await?;
                Err::<(), _>(Error::new("rust child failed"))
            }),
            sys::ASYNCRT_SPAWN_SEND,
        )
        .unwrap();

        let mut join = sys::asyncrt_future::NULL;
        assert_eq!(sys::asyncrt_scope_join(scope, &mut join), sys::ASYNCRT_OK);
        let joined = ex.block_on_timeout(AsyncrtFuture::<()>::from_raw(join).unwrap(), TIMEOUT).unwrap();
        assert_eq!(joined.unwrap_err().status(), Status::Failed);

        // The C scope recorded the Rust child's message.
        let mut info: sys::asyncrt_error_info = mem::zeroed();
        info.size = mem::size_of::<sys::asyncrt_error_info>();
        assert_eq!(sys::asyncrt_scope_error_get(scope, 0, &mut info), sys::ASYNCRT_OK);
        assert_eq!(info.status, sys::ASYNCRT_EFAILED);
        assert_eq!(std::ffi::CStr::from_ptr(info.message).to_str().unwrap(), "rust child failed");
        assert_eq!(info.task_id, rust_child.id().unwrap());

        // The C sibling was cancelled; the C future that finished first is done.
        assert_eq!(sys::asyncrt_task_status(c_task), sys::ASYNCRT_ECANCELLED);
        assert_eq!(counters.drops.load(std::sync::atomic::Ordering::SeqCst), 1);
        assert!(ex.block_on_timeout(rust_child, TIMEOUT).unwrap().unwrap_err().code() == sys::ASYNCRT_EFAILED);

        sys::asyncrt_task_release(c_task);
        sys::asyncrt_scope_free(scope);
        drop(ex);
        drop(sleep_state);
    }
}

/// The same, with the safe wrapper taking over the C scope's handle.
#[test]
fn a_c_scope_handle_can_be_wrapped_as_a_scope() {
    let ex = LocalExecutor::new().unwrap();
    let mut raw = ptr::null_mut();
    // SAFETY: a fresh scope handle, handed to the Scope, which frees it.
    let scope = unsafe {
        assert_eq!(sys::asyncrt_scope_open_top(ex.as_raw(), ptr::null(), &mut raw), sys::ASYNCRT_OK);
        Scope::from_raw(raw)
    };
    let child = scope.spawn(async { 7 }).unwrap();
    ex.block_on_timeout(scope.join(), TIMEOUT).unwrap().unwrap();
    assert_eq!(ex.block_on_timeout(child, TIMEOUT).unwrap().unwrap(), 7);
    // Its local children's thread is not known: spawn_local is refused.
    assert_eq!(scope.spawn_local(async {}).err().unwrap().status(), Status::Inval);
}
