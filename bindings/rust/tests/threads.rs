//! Rust futures on the thread-per-core executor: Send futures anywhere on
//! its workers, local ones (not Send) pinned to the worker that spawned them.

mod support;

use std::cell::Cell;
use std::collections::HashSet;
use std::rc::Rc;
use std::thread::{self, ThreadId};
use std::time::Duration;

use asyncrt::{sleep, spawn_local, yield_now, ScopeOptions, ThreadExecutor};
use support::TIMEOUT;

#[test]
fn send_futures_run_on_the_workers_and_return_their_outputs() {
    let ex = ThreadExecutor::new(2).unwrap();
    let main = thread::current().id();
    let tasks: Vec<_> = (0..8u64)
        .map(|i| {
            ex.spawn(async move {
                sleep(Duration::from_millis(2)).await.unwrap();
                (i * i, thread::current().id())
            })
            .unwrap()
        })
        .collect();
    let mut workers = HashSet::new();
    for (i, task) in tasks.into_iter().enumerate() {
        let (square, ran_on) = ex.block_on_timeout(task, TIMEOUT).unwrap().unwrap();
        assert_eq!(square, (i * i) as u64);
        assert_ne!(ran_on, main, "a task ran on the spawning thread");
        workers.insert(ran_on);
    }
    assert!(!workers.is_empty() && workers.len() <= 2, "tasks ran on {} threads", workers.len());
}

#[test]
fn block_on_runs_a_send_future_on_a_worker() {
    let ex = ThreadExecutor::new(2).unwrap();
    let main = thread::current().id();
    let (value, ran_on) = ex
        .block_on_timeout(
            async {
                yield_now().await;
                (String::from("done"), thread::current().id())
            },
            TIMEOUT,
        )
        .unwrap();
    assert_eq!(value, "done");
    assert_ne!(ran_on, main);
}

#[test]
fn a_local_future_spawned_on_a_worker_stays_on_that_worker() {
    let ex = ThreadExecutor::new(2).unwrap();
    let (spawner, children) = ex
        .block_on_timeout(
            async {
                let here = thread::current().id();
                let mut handles = Vec::new();
                for _ in 0..4 {
                    handles.push(
                        spawn_local(async {
                            // Held across awaits, an Rc makes this future
                            // not Send: it must never leave this thread.
                            let suspensions = Rc::new(Cell::new(0));
                            for _ in 0..3 {
                                // Each suspension is a chance to be moved.
                                yield_now().await;
                                sleep(Duration::from_millis(1)).await.unwrap();
                                suspensions.set(suspensions.get() + 1);
                            }
                            (suspensions.get(), thread::current().id())
                        })
                        .unwrap(),
                    );
                }
                let mut threads: Vec<ThreadId> = Vec::new();
                for handle in handles {
                    let (suspensions, thread) = handle.await.unwrap();
                    assert_eq!(suspensions, 3);
                    threads.push(thread);
                }
                (here, threads)
            },
            TIMEOUT,
        )
        .unwrap();
    assert_eq!(children.len(), 4);
    assert!(children.iter().all(|&t| t == spawner), "a local task left its worker: {:?} vs {:?}", children, spawner);
}

#[test]
fn a_top_scope_of_a_thread_executor_takes_send_children_only() {
    let ex = ThreadExecutor::new(2).unwrap();
    let scope = ex.scope(&ScopeOptions::default()).unwrap();
    let children: Vec<_> = (0..4u32).map(|i| scope.spawn(async move { i + 100 }).unwrap()).collect();
    // Its local children would go to the workers: not from here.
    let refused = scope.spawn_local(async {}).err().expect("a local child was accepted from a non-worker thread");
    assert_eq!(refused.status(), asyncrt::Status::Inval);
    let scope_id = scope.id().unwrap();
    let outcome = ex
        .block_on_timeout(
            // The join future borrows the scope: the task owns both.
            async move {
                let joined = scope.join().await;
                let mut outputs = Vec::new();
                for child in children {
                    outputs.push(child.await.unwrap());
                }
                (joined, outputs)
            },
            TIMEOUT,
        )
        .unwrap();
    assert!(scope_id != 0);
    outcome.0.unwrap();
    assert_eq!(outcome.1, vec![100, 101, 102, 103]);
}
