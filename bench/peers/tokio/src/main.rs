//! tokio peer: current_thread (tokio_ct) for every workload but spawn_mt,
//! which runs on multi_thread with 2 workers (tokio_mt). Same protocol as
//! bench/common/bench.h:
//!   tokio_bench yield|spawn|spawn_mt|chain|ping_pong|wake|idle|timers <min_seconds> <size> [yields]
//!   tokio_bench serve echo (servers.rs)

mod servers;

use std::cell::Cell;
use std::future::Future;
use std::sync::atomic::{AtomicI64, AtomicU64, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use tokio::runtime::{Builder, Runtime};
use tokio::sync::mpsc as mpsc_async;
use tokio::sync::Notify;

/// The idiomatic "spawn n and wait": a shared counter, and a Notify that the
/// last task to finish signals.
struct Group {
    remaining: AtomicUsize,
    done: Notify,
}

/// Spawns `tasks` tasks and waits for all; `make(i)` makes task i's body
/// just before it is spawned. Returns the time spent spawning.
async fn fan_out<F, Fut>(tasks: usize, make: F) -> Duration
where
    F: Fn(usize) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let group = Arc::new(Group {
        remaining: AtomicUsize::new(tasks),
        done: Notify::new(),
    });
    let start = Instant::now();
    for i in 0..tasks {
        let group = group.clone();
        let body = make(i);
        tokio::spawn(async move {
            body.await;
            if group.remaining.fetch_sub(1, Ordering::AcqRel) == 1 {
                group.done.notify_one();
            }
        });
    }
    let spawning = start.elapsed();
    group.done.notified().await;
    spawning
}

/// A chain: each task spawns the next; the last one notifies `done`.
fn chain_link(left: usize, done: Arc<Notify>) {
    tokio::spawn(async move {
        if left == 1 {
            done.notify_one();
        } else {
            chain_link(left - 1, done);
        }
    });
}

/// ping_pong: two spawned tasks exchange a number through a pair of
/// `mpsc::channel(1)`, `rounds` round trips; the pinger sends i and waits for
/// i + 1, the ponger answers until its channel closes.
async fn ping_pong(rounds: usize) {
    let (ping_tx, mut ping_rx) = mpsc_async::channel::<u64>(1);
    let (pong_tx, mut pong_rx) = mpsc_async::channel::<u64>(1);
    let ponger = tokio::spawn(async move {
        while let Some(v) = ping_rx.recv().await {
            pong_tx.send(v + 1).await.unwrap();
        }
    });
    let pinger = tokio::spawn(async move {
        for i in 0..rounds as u64 {
            ping_tx.send(i).await.unwrap();
            assert_eq!(pong_rx.recv().await, Some(i + 1));
        }
    });
    pinger.await.unwrap();
    ponger.await.unwrap();
}

/// cross_thread_wake: a std thread wakes the task through a Notify and waits
/// for its acknowledgement on a std mpsc channel, `rounds` times.
fn wake_rounds(rt: &Runtime, rounds: usize) {
    let notify = Arc::new(Notify::new());
    let (ack_tx, ack_rx) = mpsc::channel::<()>();
    let waker = notify.clone();
    let thread = std::thread::spawn(move || {
        for _ in 0..rounds {
            waker.notify_one();
            ack_rx.recv().unwrap();
        }
    });
    rt.block_on(async {
        for _ in 0..rounds {
            notify.notified().await;
            ack_tx.send(()).unwrap();
        }
    });
    thread.join().unwrap();
}

/// Tasks each multi_thread worker ran, for the spawn_mt split. A worker is
/// the only writer of its own counter (padded to its own cache line), so a
/// plain load and store count without a locked instruction.
#[repr(align(128))]
struct RanCounter(AtomicU64);
static RAN: [RanCounter; 2] = [RanCounter(AtomicU64::new(0)), RanCounter(AtomicU64::new(0))];
static WORKERS_STARTED: AtomicUsize = AtomicUsize::new(0);
thread_local! {
    static WORKER: Cell<usize> = Cell::new(usize::MAX);
}

fn count_ran() {
    let counter = &RAN[WORKER.with(|w| w.get())].0;
    counter.store(counter.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
}

fn ran() -> [u64; 2] {
    [
        RAN[0].0.load(Ordering::Relaxed),
        RAN[1].0.load(Ordering::Relaxed),
    ]
}

/// One spawn_mt iteration: the spawner is a task (on whichever worker takes
/// it from block_on). Returns how many tasks the spawner's worker ran and
/// how many the other did.
fn spawn_mt_once(rt: &Runtime, tasks: usize) -> [u64; 2] {
    let before = ran();
    let spawner = rt.block_on(async move {
        tokio::spawn(async move {
            let me = WORKER.with(|w| w.get());
            fan_out(tasks, |_| async {
                count_ran();
            })
            .await;
            me
        })
        .await
        .unwrap()
    });
    let after = ran();
    let (mine, other) = (
        after[spawner] - before[spawner],
        after[1 - spawner] - before[1 - spawner],
    );
    [mine, other]
}

/// Offset i of the timers workload, in [0, 100 ms): the splitmix64 sequence
/// and scaling of bench/common/bench.c, so every program waits the same times.
fn timer_offset(i: usize) -> Duration {
    let mut z = 0x7431u64.wrapping_add((i as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15));
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    Duration::from_nanos(((z >> 32) * 100_000_000) >> 32)
}

/// One timers iteration: a task per timer sleeps until its deadline
/// (creation time + offset) and stores how late it woke, in ns (negative if
/// early). Returns the time spent spawning them.
fn timers_once(rt: &Runtime, offsets: &[Duration], late: &Arc<Vec<AtomicI64>>) -> Duration {
    rt.block_on(fan_out(offsets.len(), |i| {
        let deadline = Instant::now() + offsets[i];
        let late = late.clone();
        async move {
            tokio::time::sleep_until(deadline.into()).await;
            let now = Instant::now();
            let ns = match now.checked_duration_since(deadline) {
                Some(after) => after.as_nanos() as i64,
                None => -((deadline - now).as_nanos() as i64),
            };
            late[i].store(ns, Ordering::Relaxed);
        }
    }))
}

/// The timers mode of bench/common/bench.c: one untimed warm-up iteration,
/// then whole iterations until min_seconds have passed, each checked (all
/// fired, none early); prints wall ms per iteration, creation ns per timer
/// and the p50/p99 lateness of every timer of the timed iterations.
fn time_timers(rt: &Runtime, min_seconds: f64, timers: usize) {
    let offsets: Vec<Duration> = (0..timers).map(timer_offset).collect();
    let late: Arc<Vec<AtomicI64>> = Arc::new((0..timers).map(|_| AtomicI64::new(0)).collect());
    let iteration = |pool: &mut Vec<i64>| -> (Duration, Duration) {
        for l in late.iter() {
            l.store(i64::MIN, Ordering::Relaxed);
        }
        let start = Instant::now();
        let create = timers_once(rt, &offsets, &late);
        let wall = start.elapsed();
        let got: Vec<i64> = late.iter().map(|l| l.load(Ordering::Relaxed)).collect();
        let unfired = got.iter().filter(|&&l| l == i64::MIN).count();
        let early = got.iter().filter(|&&l| l != i64::MIN && l < 0).count();
        if unfired > 0 || early > 0 {
            let earliest = got.iter().filter(|&&l| l != i64::MIN).min().unwrap_or(&0);
            eprintln!(
                "bench: timers: {unfired} of {timers} never fired, {early} fired early \
                 (earliest {} ns before its deadline)",
                -earliest.min(&0)
            );
            std::process::exit(1);
        }
        pool.extend(got);
        (wall, create)
    };
    iteration(&mut Vec::new());
    let (mut pool, mut wall, mut create, mut iters) =
        (Vec::new(), Duration::ZERO, Duration::ZERO, 0u64);
    let start = Instant::now();
    while iters == 0 || start.elapsed().as_secs_f64() < min_seconds {
        let (w, c) = iteration(&mut pool);
        wall += w;
        create += c;
        iters += 1;
    }
    pool.sort_unstable();
    let percentile_us = |pct: usize| {
        let rank = (pool.len() * pct + 99) / 100;
        pool[rank.max(1) - 1] as f64 / 1e3
    };
    println!(
        "{:.3} ms iters={iters}",
        wall.as_nanos() as f64 / 1e6 / iters as f64
    );
    println!(
        "create {:.1} ns",
        create.as_nanos() as f64 / pool.len() as f64
    );
    println!("p50_late {:.1} us", percentile_us(50));
    println!("p99_late {:.1} us", percentile_us(99));
}

fn cpu_ns() -> f64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec to a valid pointer.
    unsafe { libc::clock_gettime(libc::CLOCK_PROCESS_CPUTIME_ID, &mut ts) };
    ts.tv_sec as f64 * 1e9 + ts.tv_nsec as f64
}

/// One untimed warm-up iteration (page faults are costly on this machine
/// kind), then whole iterations until min_seconds have passed. With
/// `with_cpu`, also prints the process CPU time per operation.
fn time_iterations(min_seconds: f64, ops_per_iter: usize, with_cpu: bool, mut once: impl FnMut()) {
    once();
    let (start, cpu_start) = (Instant::now(), cpu_ns());
    let mut iters = 0u64;
    while iters == 0 || start.elapsed().as_secs_f64() < min_seconds {
        once();
        iters += 1;
    }
    let ops = iters as f64 * ops_per_iter as f64;
    println!(
        "{:.3} ns/op iters={iters}",
        start.elapsed().as_nanos() as f64 / ops
    );
    if with_cpu {
        println!("cpu {:.3} ns/op", (cpu_ns() - cpu_start) / ops);
    }
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
    if args.get(1).map(String::as_str) == Some("serve") {
        servers::serve(args.get(2).map_or("", String::as_str));
        return;
    }
    let count = |i: usize| -> usize { args.get(i).and_then(|s| s.parse().ok()).expect("usage") };
    let min_seconds: f64 = args.get(2).and_then(|s| s.parse().ok()).expect("usage");
    let tasks = count(3);
    // No IO or time driver but for timers: the other workloads use neither,
    // so both sides run a bare scheduler (enable_all() measured ~35% slower on
    // yield_many here).
    if args[1] == "spawn_mt" {
        let rt = Builder::new_multi_thread()
            .worker_threads(2)
            .on_thread_start(|| {
                WORKER.with(|w| w.set(WORKERS_STARTED.fetch_add(1, Ordering::Relaxed)))
            })
            .build()
            .unwrap();
        let mut split = [0u64; 2];
        time_iterations(min_seconds, tasks, false, || {
            let [mine, other] = spawn_mt_once(&rt, tasks);
            split[0] += mine;
            split[1] += other;
        });
        let all = (split[0] + split[1]) as f64;
        println!(
            "split {:.1}/{:.1} %",
            100.0 * split[0] as f64 / all,
            100.0 * split[1] as f64 / all
        );
        return;
    }
    if args[1] == "timers" {
        let rt = Builder::new_current_thread().enable_time().build().unwrap();
        time_timers(&rt, min_seconds, tasks);
        return;
    }
    let rt = Builder::new_current_thread().build().unwrap();
    match args[1].as_str() {
        "yield" => {
            let yields = count(4);
            time_iterations(min_seconds, tasks * yields, false, || {
                rt.block_on(fan_out(tasks, |_| async move {
                    for _ in 0..yields {
                        tokio::task::yield_now().await;
                    }
                }));
            })
        }
        "spawn" => time_iterations(min_seconds, tasks, false, || {
            rt.block_on(fan_out(tasks, |_| async {}));
        }),
        "chain" => time_iterations(min_seconds, tasks, false, || {
            rt.block_on(async {
                let done = Arc::new(Notify::new());
                chain_link(tasks, done.clone());
                done.notified().await;
            })
        }),
        "ping_pong" => time_iterations(min_seconds, tasks, false, || rt.block_on(ping_pong(tasks))),
        "wake" => time_iterations(min_seconds, tasks, true, || wake_rounds(&rt, tasks)),
        "idle" => println!("{:.1} bytes/task", idle_bytes_per_task(&rt, tasks)),
        other => panic!("unsupported workload {other}"),
    }
}
