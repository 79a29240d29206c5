/* bench.c -- see bench.h. */
#include "bench.h"

#include <linux/futex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static uint64_t clock_ns(clockid_t clock) {
  struct timespec ts;
  clock_gettime(clock, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

uint64_t bench_now_ns(void) { return clock_ns(CLOCK_MONOTONIC); }

uint64_t bench_cpu_ns(void) { return clock_ns(CLOCK_PROCESS_CPUTIME_ID); }

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

/* ---- futexes and the foreign thread of cross_thread_wake ----------------- */

void bench_futex_wait(uint32_t *word, uint32_t expected) {
  /* EAGAIN (the word changed already) and EINTR both mean: look again. */
  syscall(SYS_futex, word, FUTEX_WAIT_PRIVATE, expected, NULL, NULL, 0);
}

void bench_futex_wake(uint32_t *word) {
  syscall(SYS_futex, word, FUTEX_WAKE_PRIVATE, INT32_MAX, NULL, NULL, 0);
}

static void *pinger_main(void *arg) {
  bench_pinger *p = arg;
  for (uint32_t round = 1; round <= p->rounds; round++) {
    __atomic_store_n(&p->request, round, __ATOMIC_RELEASE);
    p->wake(p->arg);
    uint32_t seen;
    while ((seen = __atomic_load_n(&p->ack, __ATOMIC_ACQUIRE)) != round)
      bench_futex_wait(&p->ack, seen);
  }
  return NULL;
}

void bench_pinger_start(bench_pinger *p, size_t rounds, void (*wake)(void *arg), void *arg) {
  if (rounds > UINT32_MAX) bench_die("pinger", "too many rounds for a futex word");
  *p = (bench_pinger){0, 0, (uint32_t)rounds, wake, arg, 0};
  if (pthread_create(&p->thread, NULL, pinger_main, p) != 0)
    bench_die("pthread_create", "pinger");
}

uint32_t bench_pinger_request(bench_pinger *p) {
  return __atomic_load_n(&p->request, __ATOMIC_ACQUIRE);
}

void bench_pinger_ack(bench_pinger *p, uint32_t round) {
  __atomic_store_n(&p->ack, round, __ATOMIC_RELEASE);
  bench_futex_wake(&p->ack);
}

void bench_pinger_join(bench_pinger *p) {
  if (pthread_join(p->thread, NULL) != 0) bench_die("pthread_join", "pinger");
}

/* ---- the timing loop ------------------------------------------------------ */

static size_t parse_count(const char *s) {
  char *end;
  unsigned long long v = strtoull(s, &end, 10);
  if (*end != '\0' || v == 0) bench_die("bad count", s);
  return (size_t)v;
}

/* A timed mode: one size, or two for yield. */
typedef struct timed_mode {
  const char *name;
  void (*once)(size_t n);
  void (*once2)(size_t n, size_t m);
  int cpu; /* also print the process CPU time per operation */
} timed_mode;

static void run_once(const timed_mode *mode, size_t n, size_t m) {
  if (mode->once2)
    mode->once2(n, m);
  else
    mode->once(n);
}

/* One untimed warm-up iteration first: page faults cost ~12 us each on this
 * machine kind, so a cold first iteration would time the hypervisor rather
 * than the runtime. Then whole iterations repeat until min_ns have passed,
 * so that the fast runtimes are timed over a span clock reads and noise
 * cannot dominate; a slow runtime runs exactly one. */
static void time_iterations(const timed_mode *mode, uint64_t min_ns, size_t n, size_t m) {
  double ops_per_iter = (double)n * (double)(mode->once2 ? m : 1);
  run_once(mode, n, m);
  uint64_t start = bench_now_ns(), cpu_start = bench_cpu_ns(), elapsed = 0, iters = 0;
  while (iters == 0 || elapsed < min_ns) {
    run_once(mode, n, m);
    iters++;
    elapsed = bench_now_ns() - start;
  }
  double ops = (double)iters * ops_per_iter;
  uint64_t cpu = bench_cpu_ns() - cpu_start;
  printf("%.3f ns/op iters=%llu\n", (double)elapsed / ops, (unsigned long long)iters);
  if (mode->cpu) printf("cpu %.3f ns/op\n", (double)cpu / ops);
}

int bench_main(int argc, char **argv, const bench_ops *ops) {
  if (argc < 4) bench_die("usage", "prog <mode> <min_seconds> <size> [yields]");
  const char *kind = argv[1];
  uint64_t min_ns = (uint64_t)(atof(argv[2]) * 1e9);
  size_t n = parse_count(argv[3]);
  const timed_mode modes[] = {
      {"yield", NULL, ops->yield_once, 0},
      {"spawn", ops->spawn_once, NULL, 0},
      {"spawn_mt", ops->spawn_mt_once, NULL, 0},
      {"chain", ops->chain_once, NULL, 0},
      {"wake", ops->wake_once, NULL, 1},
      {"wake_threads", ops->wake_threads_once, NULL, 1},
  };

  if (strcmp(kind, "idle") == 0 && ops->idle_bytes != NULL) {
    printf("%.1f bytes/task\n", ops->idle_bytes(n) / (double)n);
    return 0;
  }
  for (size_t i = 0; i < sizeof modes / sizeof modes[0]; i++) {
    const timed_mode *mode = &modes[i];
    if (strcmp(kind, mode->name) != 0 || (mode->once == NULL && mode->once2 == NULL)) continue;
    if ((mode->once2 != NULL) != (argc == 5)) bench_die("wrong argument count for", kind);
    time_iterations(mode, min_ns, n, argc == 5 ? parse_count(argv[4]) : 0);
    fflush(stdout);
    if (ops->report) ops->report(kind);
    return 0;
  }
  bench_die("unsupported workload", kind);
  return 1;
}
