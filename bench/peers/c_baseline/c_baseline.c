/*
 * c_baseline -- the limit: the same work as the asyncrt programs with no
 * runtime at all. A task is a function pointer plus its argument; "waking"
 * one pushes it on a power-of-two ring; the loop pops and calls until the
 * ring is empty. Task states mirror bench/asyncrt/asyncrt_bench.c so the two
 * do the same number of calls. cross_thread_wake has no loop at all: two
 * threads wait for each other on futexes, both ways.
 */
#include <stdlib.h>

#include "bench.h"

typedef struct task {
  void (*run)(void *arg);
  void *arg;
} task;

static task *ring;
static size_t ring_mask, ring_head, ring_tail;

/* Sized once per process to hold every task that can be runnable at once. */
static void ring_reserve(size_t tasks) {
  size_t cap = 1;
  while (cap < tasks) cap <<= 1;
  if (cap - 1 <= ring_mask && ring != NULL) return;
  free(ring);
  ring = malloc(cap * sizeof *ring);
  if (ring == NULL) bench_die("malloc", "ring");
  ring_mask = cap - 1;
}

static void wake(void (*run)(void *), void *arg) {
  ring[ring_tail++ & ring_mask] = (task){run, arg};
}

static void run_until_idle(void) {
  while (ring_head != ring_tail) {
    task t = ring[ring_head++ & ring_mask];
    t.run(t.arg);
  }
}

/* The waiting side of "spawn n and wait": the root parks until the last
 * child wakes it, like the asyncrt root future. */
typedef struct group {
  size_t remaining;
  int done;
} group;

static void root_run(void *arg) {
  group *g = arg;
  if (g->remaining == 0) g->done = 1;
}

static void child_done(group *g) {
  if (--g->remaining == 0) wake(root_run, g);
}

typedef struct yielder {
  group *group;
  size_t left;
} yielder;

static void yielder_run(void *arg) {
  yielder *y = arg;
  if (y->left-- == 0)
    child_done(y->group);
  else
    wake(yielder_run, y);
}

static void yield_once(size_t tasks, size_t yields) {
  static yielder *states;
  if (states == NULL && (states = malloc(tasks * sizeof *states)) == NULL)
    bench_die("malloc", "states");
  ring_reserve(tasks + 1);
  group g = {tasks, 0};
  for (size_t i = 0; i < tasks; i++) {
    states[i] = (yielder){&g, yields};
    wake(yielder_run, &states[i]);
  }
  run_until_idle();
  if (!g.done) bench_die("yield", "root never completed");
}

static void trivial_run(void *arg) { child_done(arg); }

/* The root spawns every child from inside its first run, as the asyncrt
 * root does from inside its first poll. */
static void spawner_run(void *arg) {
  group *g = arg;
  for (size_t i = g->remaining; i > 0; i--) wake(trivial_run, g);
}

static void spawn_once(size_t tasks) {
  ring_reserve(tasks + 1);
  group g = {tasks, 0};
  wake(spawner_run, &g);
  run_until_idle();
  if (!g.done) bench_die("spawn", "root never completed");
}

/* Each link of the chain spawns the next one before it returns; the last
 * wakes the root, which spawned the first. */
typedef struct chain {
  group group;
  size_t left;
} chain;

static void link_run(void *arg) {
  chain *c = arg;
  if (--c->left == 0)
    child_done(&c->group);
  else
    wake(link_run, c);
}

static void chain_root_run(void *arg) { wake(link_run, arg); }

static void chain_once(size_t depth) {
  ring_reserve(2);
  chain c = {{1, 0}, depth};
  wake(chain_root_run, &c);
  run_until_idle();
  if (!c.group.done) bench_die("chain", "root never completed");
}

/* The "task" is this thread: it sleeps on the request word until the
 * pinger asks for the next round, then acknowledges it. */
static void wake_request(void *arg) { bench_futex_wake(arg); }

static void wake_once(size_t round_trips) {
  bench_pinger p;
  bench_pinger_start(&p, round_trips, wake_request, &p.request);
  for (uint32_t done = 0; done < round_trips;) {
    uint32_t asked = bench_pinger_request(&p);
    if (asked == done) {
      bench_futex_wait(&p.request, asked);
      continue;
    }
    bench_pinger_ack(&p, done = asked);
  }
  bench_pinger_join(&p);
}

int main(int argc, char **argv) {
  /* idle_task_memory has no c_baseline: a parked callback here is only the
   * state its waker points to, so the runtime's share is 0 bytes. No
   * spawn_mt: there is no C limit for work stealing in BENCHMARKS.md. */
  static const bench_ops ops = {
      .yield_once = yield_once,
      .spawn_once = spawn_once,
      .chain_once = chain_once,
      .wake_once = wake_once,
  };
  return bench_main(argc, argv, &ops);
}
