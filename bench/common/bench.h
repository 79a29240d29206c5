/*
 * bench.h -- the one helper every C bench program (asyncrt, c_baseline,
 * libuv) shares: argument parsing, the timing loop and the output line.
 *
 * Protocol (the same for the Rust, Go and Python peers; bench/run.py is the
 * only caller):
 *
 *   prog yield <min_seconds> <tasks> <yields>   -> "<ns> ns/op iters=<k>"
 *   prog spawn <min_seconds> <tasks>            -> "<ns> ns/op iters=<k>"
 *   prog idle  <min_seconds> <tasks>            -> "<bytes> bytes/task ..."
 *
 * run.py owns the workload sizes, so no program hard-codes T, Y or N.
 */
#ifndef BENCH_H
#define BENCH_H

#include <stddef.h>
#include <stdint.h>

/* The workloads a program implements; NULL for one it cannot express. */
typedef struct bench_ops {
  /* One iteration: `tasks` tasks each yield `yields` times, then complete. */
  void (*yield_once)(size_t tasks, size_t yields);
  /* One iteration: spawn `tasks` trivial tasks and wait for all of them. */
  void (*spawn_once)(size_t tasks);
  /* Parks `tasks` tasks and returns the RSS growth they caused, in bytes,
   * with the future state the bench allocated already excluded. */
  double (*idle_bytes)(size_t tasks);
} bench_ops;

/* Parses argv, runs the requested workload and prints its line. */
int bench_main(int argc, char **argv, const bench_ops *ops);

uint64_t bench_now_ns(void);
/* Current resident set size of this process, from /proc/self/statm. */
size_t bench_rss_bytes(void);
/* Prints "bench: <what>: <detail>" to stderr and exits 1. */
void bench_die(const char *what, const char *detail);

#endif
