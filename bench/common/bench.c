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

/* ---- the timers workload --------------------------------------------------- */

#define TIMER_SEED 0x7431u            /* any fixed value: the peers use the same */
#define TIMER_SPREAD_NS 100000000u    /* offsets are U[0, 100 ms) */

/* splitmix64's i-th output, scaled to [0, 100 ms) by a multiply-shift of its
 * high 32 bits (no modulo bias, and no 128-bit product the peers would need). */
uint64_t bench_timer_offset_ns(size_t i) {
  uint64_t z = TIMER_SEED + (uint64_t)(i + 1) * 0x9E3779B97F4A7C15u;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9u;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBu;
  z ^= z >> 31;
  return ((z >> 32) * TIMER_SPREAD_NS) >> 32;
}

static int compare_i64(const void *a, const void *b) {
  int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
  return (x > y) - (x < y);
}

/* Runs one iteration and checks it: every timer fired, none early. Returns
 * its wall time. */
static uint64_t timers_iteration(void (*once)(bench_timers *), bench_timers *t) {
  for (size_t i = 0; i < t->count; i++) t->late_ns[i] = INT64_MIN;
  uint64_t start = bench_now_ns();
  once(t);
  uint64_t wall = bench_now_ns() - start;
  size_t early = 0, unfired = 0;
  int64_t earliest = 0;
  for (size_t i = 0; i < t->count; i++) {
    if (t->late_ns[i] == INT64_MIN)
      unfired++;
    else if (t->late_ns[i] < 0) {
      early++;
      if (t->late_ns[i] < earliest) earliest = t->late_ns[i];
    }
  }
  if (unfired > 0 || early > 0) {
    fprintf(stderr, "bench: timers: %zu of %zu never fired, %zu fired early (earliest %lld ns "
            "before its deadline)\n", unfired, t->count, early, (long long)-earliest);
    exit(1);
  }
  return wall;
}

/* Nearest rank: the smallest sample with at least pct % of them at or below
 * it (integer arithmetic, as in the peers, so every program picks the same). */
static double percentile_us(const int64_t *sorted, size_t n, size_t pct) {
  size_t rank = (n * pct + 99) / 100;
  return (double)sorted[rank > 0 ? rank - 1 : 0] / 1e3;
}

/* One untimed warm-up iteration, then whole iterations until min_ns have
 * passed; the lateness of every timer they fired is pooled. */
static void time_timers(void (*once)(bench_timers *), uint64_t min_ns, size_t n) {
  uint64_t *offsets = malloc(n * sizeof *offsets);
  int64_t *pool = NULL;
  if (offsets == NULL) bench_die("malloc", "timer offsets");
  for (size_t i = 0; i < n; i++) offsets[i] = bench_timer_offset_ns(i);
  bench_timers t = {n, offsets, malloc(n * sizeof(int64_t)), 0};
  if (t.late_ns == NULL) bench_die("malloc", "timer lateness");
  timers_iteration(once, &t);
  uint64_t start = bench_now_ns(), wall = 0, create = 0, iters = 0;
  while (iters == 0 || bench_now_ns() - start < min_ns) {
    wall += timers_iteration(once, &t);
    create += t.create_ns;
    if ((pool = realloc(pool, (iters + 1) * n * sizeof *pool)) == NULL)
      bench_die("realloc", "timer lateness");
    memcpy(pool + iters * n, t.late_ns, n * sizeof *pool);
    iters++;
  }
  size_t samples = (size_t)iters * n;
  qsort(pool, samples, sizeof *pool, compare_i64);
  printf("%.3f ms iters=%llu\n", (double)wall / 1e6 / (double)iters, (unsigned long long)iters);
  printf("create %.1f ns\n", (double)create / (double)samples);
  printf("p50_late %.1f us\n", percentile_us(pool, samples, 50));
  printf("p99_late %.1f us\n", percentile_us(pool, samples, 99));
  free(pool);
  free(t.late_ns);
  free(offsets);
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
      {"scope_spawn", ops->scope_spawn_once, NULL, 0},
      {"spawn_mt", ops->spawn_mt_once, NULL, 0},
      {"chain", ops->chain_once, NULL, 0},
      {"ping_pong", ops->ping_pong_once, NULL, 0},
      {"wake", ops->wake_once, NULL, 1},
      {"wake_threads", ops->wake_threads_once, NULL, 1},
  };

  if (strcmp(kind, "idle") == 0 && ops->idle_bytes != NULL) {
    printf("%.1f bytes/task\n", ops->idle_bytes(n) / (double)n);
    return 0;
  }
  if (strcmp(kind, "timers") == 0 && ops->timers_once != NULL) {
    time_timers(ops->timers_once, min_ns, n);
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
