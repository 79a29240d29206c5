/*
 * bench.h -- the one helper every C bench program (asyncrt, c_baseline,
 * libuv) shares: argument parsing, the timing loop, the output lines, and
 * the foreign thread of cross_thread_wake.
 *
 * Protocol (the same for the Rust, Go and Python peers; bench/run.py is the
 * only caller):
 *
 *   prog yield <min_seconds> <tasks> <yields>       -> "<ns> ns/op iters=<k>"
 *   prog spawn <min_seconds> <tasks>                -> "<ns> ns/op iters=<k>"
 *   prog spawn_mt <min_seconds> <tasks>             -> "<ns> ns/op iters=<k>"
 *                                                      [+ "split <a>/<b> %"]
 *   prog chain <min_seconds> <depth>                -> "<ns> ns/op iters=<k>"
 *   prog ping_pong <min_seconds> <round_trips>      -> "<ns> ns/op iters=<k>"
 *   prog wake <min_seconds> <round_trips>           -> "<ns> ns/op iters=<k>"
 *                                                      + "cpu <ns> ns/op"
 *   prog wake_threads <min_seconds> <round_trips>   -> the same (asyncrt only)
 *   prog idle  <min_seconds> <tasks>                -> "<bytes> bytes/task ..."
 *   prog timers <min_seconds> <timers>              -> "<ms> ms iters=<k>" (wall)
 *                                                      + "create <ns> ns"
 *                                                      + "p50_late <us> us"
 *                                                      + "p99_late <us> us"
 *
 * The first line is the workload's figure; each further line is an extra
 * figure "<name> <value> <unit>", which run.py reports as <workload>_<name>.
 * A split is the share of the tasks each worker ran, the spawner's worker
 * first. run.py owns the workload sizes, so no program hard-codes them.
 *
 * timers: one task per timer, timer i due bench_timer_offset_ns(i) after
 * its own creation; every program (the Rust, Go and Python peers too) draws
 * the offsets from the same splitmix64 sequence, so all wait the same times.
 * Wall is the span from before the first timer is created until the last
 * one has fired, create the time spent creating them all (spawn + arm) per
 * timer, and the lateness percentiles pool every timer of the timed
 * iterations. A timer that fires early, or never, fails the run (exit 1).
 * A program without a mode says "unsupported workload <mode>" on stderr,
 * which run.py reports as n/a rather than as a failure.
 */
#ifndef BENCH_H
#define BENCH_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

/* One iteration of the timers workload, shared by bench.c and a program. */
typedef struct bench_timers {
  size_t count;
  /* Timer i is due offset_ns[i] after it is created: U[0, 100 ms), the same
   * sequence in every iteration and every program. */
  const uint64_t *offset_ns;
  /* Written by the program: for timer i, bench_now_ns() read by its task
   * when it ran, minus its deadline (creation time + offset_ns[i]). */
  int64_t *late_ns;
  /* Written by the program: the time it spent creating all of them. */
  uint64_t create_ns;
} bench_timers;

/* The workloads a program implements; NULL for one it cannot express. */
typedef struct bench_ops {
  /* One iteration: `tasks` tasks each yield `yields` times, then complete. */
  void (*yield_once)(size_t tasks, size_t yields);
  /* One iteration: spawn `tasks` trivial tasks and wait for all of them. */
  void (*spawn_once)(size_t tasks);
  /* spawn_once with the tasks as children of a scope the spawner opened and
   * joins (asyncrt only: what structured concurrency costs per task). */
  void (*scope_spawn_once)(size_t tasks);
  /* The same on 2 workers: the spawner is a task on one worker, the tasks
   * are Send and the other worker has to take its share. */
  void (*spawn_mt_once)(size_t tasks);
  /* One iteration: a chain of `depth` tasks, each spawning the next. */
  void (*chain_once)(size_t depth);
  /* One iteration: two tasks on one thread exchange a message `round_trips`
   * times through two thread-safe channels of capacity 1 (one each way). */
  void (*ping_pong_once)(size_t round_trips);
  /* One iteration: `round_trips` wakes of a task by a thread the runtime
   * never saw (bench_pinger), each acknowledged before the next. */
  void (*wake_once)(size_t round_trips);
  /* The same with the task on a thread-per-core executor (asyncrt only). */
  void (*wake_threads_once)(size_t round_trips);
  /* Parks `tasks` tasks and returns the RSS growth they caused, in bytes,
   * with the future state the bench allocated already excluded. */
  double (*idle_bytes)(size_t tasks);
  /* One timers iteration (see bench_timers). */
  void (*timers_once)(struct bench_timers *timers);
  /* Called after the timed iterations of `mode` to print extra figure
   * lines (the spawn_mt split). May be NULL. */
  void (*report)(const char *mode);
} bench_ops;

/* Parses argv, runs the requested workload and prints its lines. */
int bench_main(int argc, char **argv, const bench_ops *ops);

uint64_t bench_now_ns(void);
/* CPU time of the whole process (every thread), in nanoseconds. */
uint64_t bench_cpu_ns(void);
/* Current resident set size of this process, from /proc/self/statm. */
size_t bench_rss_bytes(void);
/* Offset i of the timers workload's sequence, in [0, 100 ms). */
uint64_t bench_timer_offset_ns(size_t i);
/* Prints "bench: <what>: <detail>" to stderr and exits 1. */
void bench_die(const char *what, const char *detail);

/* Sleeps in the kernel while *word == expected (no spinning). */
void bench_futex_wait(uint32_t *word, uint32_t expected);
/* Wakes every thread sleeping on word. */
void bench_futex_wake(uint32_t *word);

/*
 * The foreign side of cross_thread_wake: a plain pthread that, for each
 * round r = 1..rounds, publishes r in `request`, calls wake(arg), and sleeps
 * on the futex word `ack` until the task has written r there
 * (bench_pinger_ack). The task reads the request with bench_pinger_request.
 */
typedef struct bench_pinger {
  uint32_t request;
  uint32_t ack;
  uint32_t rounds;
  void (*wake)(void *arg);
  void *arg;
  pthread_t thread;
} bench_pinger;

void bench_pinger_start(bench_pinger *p, size_t rounds, void (*wake)(void *arg), void *arg);
/* The round the thread is waiting for (0 before the first). */
uint32_t bench_pinger_request(bench_pinger *p);
/* Acknowledges `round` and wakes the thread. */
void bench_pinger_ack(bench_pinger *p, uint32_t round);
void bench_pinger_join(bench_pinger *p);

#endif
