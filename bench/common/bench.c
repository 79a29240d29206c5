/* bench.c -- see bench.h. */
#include "bench.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

uint64_t bench_now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

size_t bench_rss_bytes(void) {
  FILE *f = fopen("/proc/self/statm", "r");
  unsigned long size = 0, resident = 0;
  if (f == NULL || fscanf(f, "%lu %lu", &size, &resident) != 2)
    bench_die("/proc/self/statm", "unreadable");
  fclose(f);
  return (size_t)resident * (size_t)sysconf(_SC_PAGESIZE);
}

void bench_die(const char *what, const char *detail) {
  fprintf(stderr, "bench: %s: %s\n", what, detail);
  exit(1);
}

static size_t parse_count(const char *s) {
  char *end;
  unsigned long long v = strtoull(s, &end, 10);
  if (*end != '\0' || v == 0) bench_die("bad count", s);
  return (size_t)v;
}

static void run_once(const bench_ops *ops, size_t tasks, size_t yields) {
  if (yields)
    ops->yield_once(tasks, yields);
  else
    ops->spawn_once(tasks);
}

/* One untimed warm-up iteration first: page faults cost ~12 us each on this
 * machine kind, so a cold first iteration would time the hypervisor rather
 * than the runtime. Then whole iterations repeat until min_ns have passed,
 * so that the fast runtimes are timed over a span clock reads and noise
 * cannot dominate; a slow runtime runs exactly one. yields == 0 means spawn. */
static void time_iterations(const bench_ops *ops, uint64_t min_ns, size_t tasks, size_t yields) {
  double ops_per_iter = (double)tasks * (double)(yields ? yields : 1);
  run_once(ops, tasks, yields);
  uint64_t start = bench_now_ns(), elapsed = 0, iters = 0;
  while (iters == 0 || elapsed < min_ns) {
    run_once(ops, tasks, yields);
    iters++;
    elapsed = bench_now_ns() - start;
  }
  printf("%.3f ns/op iters=%llu\n", (double)elapsed / ((double)iters * ops_per_iter),
         (unsigned long long)iters);
}

int bench_main(int argc, char **argv, const bench_ops *ops) {
  if (argc < 4) bench_die("usage", "prog yield|spawn|idle <min_seconds> <tasks> [yields]");
  const char *kind = argv[1];
  uint64_t min_ns = (uint64_t)(atof(argv[2]) * 1e9);
  size_t tasks = parse_count(argv[3]);

  if (strcmp(kind, "yield") == 0 && ops->yield_once != NULL && argc == 5)
    time_iterations(ops, min_ns, tasks, parse_count(argv[4]));
  else if (strcmp(kind, "spawn") == 0 && ops->spawn_once != NULL)
    time_iterations(ops, min_ns, tasks, 0);
  else if (strcmp(kind, "idle") == 0 && ops->idle_bytes != NULL)
    printf("%.1f bytes/task\n", ops->idle_bytes(tasks) / (double)tasks);
  else
    bench_die("unsupported workload", kind);
  return 0;
}
