/*
 * c_baseline -- the limit: the same work as the asyncrt programs with no
 * runtime at all. A task is a function pointer plus its argument; "waking"
 * one pushes it on a power-of-two ring; the loop pops and calls until the
 * ring is empty. Task states mirror bench/asyncrt/asyncrt_bench.c so the two
 * do the same number of calls. cross_thread_wake has no loop at all: two
 * threads wait for each other on futexes, both ways. timers keep the armed
 * tasks in an array min-heap by deadline and sleep with clock_nanosleep
 * until the earliest is due. ping_pong's channels are a one-value slot with
 * a parked sender and a parked receiver each: what a capacity-1 channel
 * must do at least, with no lock or atomic (one thread owns both tasks).
 */
#include <stdlib.h>
#include <time.h>

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

/* ping_pong: a capacity-1 channel. A side that cannot go on parks itself
 * in the channel (its run function and state) and returns; the other side
 * wakes it onto the ring when it has filled or emptied the slot. */
typedef struct channel {
  int full;
  uint64_t value;
  task parked_sender, parked_receiver; /* run == NULL: none */
} channel;

static void unpark(task *t) {
  if (t->run == NULL) return;
  wake(t->run, t->arg);
  t->run = NULL;
}

/* 1 if the value went in; 0 if the caller parked and must return. */
static int chan_send(channel *c, uint64_t value, void (*run)(void *), void *arg) {
  if (c->full) {
    c->parked_sender = (task){run, arg};
    return 0;
  }
  c->full = 1;
  c->value = value;
  unpark(&c->parked_receiver);
  return 1;
}

/* 1 if *out got a value; 0 if the caller parked and must return. */
static int chan_recv(channel *c, uint64_t *out, void (*run)(void *), void *arg) {
  if (!c->full) {
    c->parked_receiver = (task){run, arg};
    return 0;
  }
  c->full = 0;
  *out = c->value;
  unpark(&c->parked_sender);
  return 1;
}

/* Each side alternates: the pinger sends i and waits for i + 1, the ponger
 * waits for a value and sends it back plus one. `sending` is where a side
 * resumes when it is run again. */
typedef struct ping_pong {
  channel ping, pong;
  size_t rounds, pinger_done, ponger_done;
  uint64_t pinger_value, ponger_value;
  int pinger_sending, ponger_sending;
} ping_pong;

static void pinger_run(void *arg) {
  ping_pong *p = arg;
  while (p->pinger_done < p->rounds) {
    if (p->pinger_sending) {
      if (!chan_send(&p->ping, p->pinger_value, pinger_run, p)) return;
      p->pinger_sending = 0;
    }
    uint64_t got;
    if (!chan_recv(&p->pong, &got, pinger_run, p)) return;
    if (got != p->pinger_value + 1) bench_die("ping_pong", "the pinger got a wrong reply");
    p->pinger_value = got;
    p->pinger_done++;
    p->pinger_sending = 1;
  }
}

static void ponger_run(void *arg) {
  ping_pong *p = arg;
  while (p->ponger_done < p->rounds) {
    if (!p->ponger_sending) {
      if (!chan_recv(&p->ping, &p->ponger_value, ponger_run, p)) return;
      p->ponger_sending = 1;
    }
    if (!chan_send(&p->pong, p->ponger_value + 1, ponger_run, p)) return;
    p->ponger_sending = 0;
    p->ponger_done++;
  }
}

static void ping_pong_once(size_t round_trips) {
  ring_reserve(2);
  ping_pong p = {.rounds = round_trips, .pinger_sending = 1};
  wake(pinger_run, &p);
  wake(ponger_run, &p);
  run_until_idle();
  if (p.pinger_done != round_trips || p.ponger_done != round_trips)
    bench_die("ping_pong", "the loop ended before the last round trip");
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

/* timers: a timer is a task that records how late it ran; the heap holds the
 * armed ones. The loop sleeps until the earliest deadline, wakes every due
 * task onto the ring and runs them. */
typedef struct timer_task {
  uint64_t deadline;
  int64_t *late;
  group *group;
} timer_task;

typedef struct heap_entry {
  uint64_t deadline;
  timer_task *task;
} heap_entry;

static heap_entry *heap;
static size_t heap_len;

static void heap_push(heap_entry e) {
  size_t i = heap_len++;
  while (i > 0 && heap[(i - 1) / 2].deadline > e.deadline) {
    heap[i] = heap[(i - 1) / 2];
    i = (i - 1) / 2;
  }
  heap[i] = e;
}

static void heap_pop(void) {
  heap_entry last = heap[--heap_len];
  size_t i = 0;
  for (;;) {
    size_t child = 2 * i + 1;
    if (child >= heap_len) break;
    if (child + 1 < heap_len && heap[child + 1].deadline < heap[child].deadline) child++;
    if (heap[child].deadline >= last.deadline) break;
    heap[i] = heap[child];
    i = child;
  }
  heap[i] = last;
}

static void timer_run(void *arg) {
  timer_task *t = arg;
  *t->late = (int64_t)(bench_now_ns() - t->deadline);
  child_done(t->group);
}

static void timers_once(bench_timers *b) {
  static timer_task *tasks;
  if (tasks == NULL && ((tasks = malloc(b->count * sizeof *tasks)) == NULL ||
                        (heap = malloc(b->count * sizeof *heap)) == NULL))
    bench_die("malloc", "timers");
  ring_reserve(b->count + 1);
  group g = {b->count, 0};
  uint64_t start = bench_now_ns();
  for (size_t i = 0; i < b->count; i++) {
    tasks[i] = (timer_task){bench_now_ns() + b->offset_ns[i], &b->late_ns[i], &g};
    heap_push((heap_entry){tasks[i].deadline, &tasks[i]});
  }
  b->create_ns = bench_now_ns() - start;
  while (heap_len > 0) {
    uint64_t now = bench_now_ns(), due = heap[0].deadline;
    if (due > now) {
      /* EINTR or not, the loop looks at the clock again. */
      struct timespec ts = {(time_t)(due / 1000000000u), (long)(due % 1000000000u)};
      clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL);
      continue;
    }
    while (heap_len > 0 && heap[0].deadline <= now) {
      wake(timer_run, heap[0].task);
      heap_pop();
    }
    run_until_idle();
  }
  if (!g.done) bench_die("timers", "root never completed");
}

int main(int argc, char **argv) {
  /* idle_task_memory has no c_baseline: a parked callback here is only the
   * state its waker points to, so the runtime's share is 0 bytes. No
   * spawn_mt: there is no C limit for work stealing in BENCHMARKS.md. */
  static const bench_ops ops = {
      .yield_once = yield_once,
      .spawn_once = spawn_once,
      .chain_once = chain_once,
      .ping_pong_once = ping_pong_once,
      .wake_once = wake_once,
      .timers_once = timers_once,
  };
  return bench_main(argc, argv, &ops);
}
