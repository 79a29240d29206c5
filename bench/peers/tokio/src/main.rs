//! tokio peer (current_thread). Same protocol as bench/common/bench.h:
//!   tokio_bench yield|spawn|idle <min_seconds> <tasks> [yields]

use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

use tokio::runtime::Runtime;
use tokio::sync::Notify;

/// The idiomatic "spawn n and wait": a shared counter, and a Notify that the
/// last task to finish signals.
struct Group {
    remaining: AtomicUsize,
    done: Notify,
}

async fn fan_out<F, Fut>(tasks: usize, make: F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let group = Arc::new(Group {
        remaining: AtomicUsize::new(tasks),
        done: Notify::new(),
    });
    for _ in 0..tasks {
        let group = group.clone();
        let body = make();
        tokio::spawn(async move {
            body.await;
            if group.remaining.fetch_sub(1, Ordering::AcqRel) == 1 {
                group.done.notify_one();
            }
        });
    }
    group.done.notified().await;
}

/// One untimed warm-up iteration (page faults are costly on this machine
/// kind), then whole iterations until min_seconds have passed.
fn time_iterations(min_seconds: f64, ops_per_iter: usize, mut once: impl FnMut()) {
    once();
    let start = Instant::now();
    let mut iters = 0u64;
    while iters == 0 || start.elapsed().as_secs_f64() < min_seconds {
        once();
        iters += 1;
    }
    let ns = start.elapsed().as_nanos() as f64 / (iters as f64 * ops_per_iter as f64);
    println!("{ns:.3} ns/op iters={iters}");
}

fn rss_bytes() -> usize {
    let statm = std::fs::read_to_string("/proc/self/statm").expect("/proc/self/statm");
    let resident: usize = statm.split_whitespace().nth(1).unwrap().parse().unwrap();
    resident * 4096
}

/// Parks `tasks` tasks on a Notify that is never notified and returns the
/// runtime bytes per task: RSS growth minus the future each task holds
/// (tokio stores the future inside the task, so its size is subtracted).
fn idle_bytes_per_task(rt: &Runtime, tasks: usize) -> f64 {
    struct Park {
        parked: AtomicUsize,
        never: Notify,
    }
    rt.block_on(async {
        let park = Arc::new(Park {
            parked: AtomicUsize::new(0),
            never: Notify::new(),
        });
        let before = rss_bytes();
        let mut future_size = 0;
        for _ in 0..tasks {
            let park = park.clone();
            let fut = async move {
                park.parked.fetch_add(1, Ordering::Relaxed);
                park.never.notified().await;
            };
            future_size = std::mem::size_of_val(&fut);
            tokio::spawn(fut);
        }
        // Every task must have been polled once (and so registered its waiter).
        while park.parked.load(Ordering::Relaxed) < tasks {
            tokio::task::yield_now().await;
        }
        let grown = (rss_bytes() - before) as f64 / tasks as f64;
        eprintln!("future state {future_size} bytes/task subtracted");
        grown - future_size as f64
    })
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let count = |i: usize| -> usize { args.get(i).and_then(|s| s.parse().ok()).expect("usage") };
    let min_seconds: f64 = args.get(2).and_then(|s| s.parse().ok()).expect("usage");
    let tasks = count(3);
    // No IO or time driver: none of these workloads uses one, and asyncrt 0.1
    // has neither, so both sides run a bare scheduler (enable_all() measured
    // ~35% slower on yield_many here).
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    match args[1].as_str() {
        "yield" => {
            let yields = count(4);
            time_iterations(min_seconds, tasks * yields, || {
                rt.block_on(fan_out(tasks, || async move {
                    for _ in 0..yields {
                        tokio::task::yield_now().await;
                    }
                }))
            })
        }
        "spawn" => time_iterations(min_seconds, tasks, || {
            rt.block_on(fan_out(tasks, || async {}))
        }),
        "idle" => println!("{:.1} bytes/task", idle_bytes_per_task(&rt, tasks)),
        other => panic!("unsupported workload {other}"),
    }
}
