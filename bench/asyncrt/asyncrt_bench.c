/*
 * asyncrt side of the benchmarks, driven through the public header only:
 * default executor configuration, default allocator, and every wake goes
 * through the waker found in the poll context.
 *
 * yield and spawn both run a root future with asyncrt_block_on that spawns
 * its children (detached) from inside its first poll and stays pending until
 * the last child wakes it through a cloned waker. The timed span therefore
 * includes spawning and waiting, as it does for every peer (tokio block_on +
 * spawn + Notify, Go go + WaitGroup, asyncio create_task + a future).
 * chained_spawn is the same root with one child that spawns the next.
 *
 * spawn_many_mt runs on a 2-worker thread-per-core executor: the root is
 * placed on worker 0 and spawns Send children there, so worker 1 only gets
 * work by stealing; the main thread waits in asyncrt_block_on on the root's
 * join future. The split is read from the workers' poll counters.
 *
 * cross_thread_wake: the task stores a clone of its waker, starts a plain
 * pthread (bench_pinger) that wakes it through that clone, and acknowledges
 * each wake on a futex word the thread sleeps on. It runs under
 * asyncrt_block_on on the local executor (cross_thread_wake) and on a
 * 1-worker thread-per-core executor (wake_threads).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "asyncrt.h"
#include "bench.h"

static asyncrt_executor *executor;
static asyncrt_executor *threads; /* thread-per-core, made by the first mode that needs it */

static void check(int status, const char *what) {
  if (status != ASYNCRT_OK) bench_die(what, asyncrt_last_error());
}

/* ---- the root: spawn the children, wait for the last one ---------------- */

typedef struct fan_out {
  const asyncrt_future_vtable *child_vtable;
  char *child_states; /* child i's state is child_states + i * child_stride */
  size_t child_stride;
  unsigned child_flags;
  size_t children;
  /* Written by every child as it finishes, on any worker: on a cache line
   * of its own, so that the spawner's loop does not miss on the fields
   * above each time a child on another worker counts down (the peers'
   * counters are separate allocations too). */
  _Alignas(64) size_t remaining; /* atomic for Send children (child_done_send) */
  int done;         /* set by the last child once it no longer reads the group */
  int spawned;
  asyncrt_waker root; /* a clone, woken by the last child */
} fan_out;

static int fan_out_poll(void *self, asyncrt_context *cx, void *out) {
  (void)out;
  fan_out *f = self;
  if (!f->spawned) {
    f->spawned = 1;
    asyncrt_waker_clone(asyncrt_context_waker(cx), &f->root);
    asyncrt_executor *ex = asyncrt_context_executor(cx);
    const asyncrt_future_vtable *vt = f->child_vtable;
    char *states = f->child_states;
    size_t stride = f->child_stride, n = f->children;
    unsigned flags = f->child_flags;
    for (size_t i = 0; i < n; i++) {
      asyncrt_future child = {states + i * stride, vt};
      check(asyncrt_spawn(ex, &child, flags, NULL), "asyncrt_spawn");
    }
  }
  return __atomic_load_n(&f->done, __ATOMIC_ACQUIRE) ? ASYNCRT_POLL_READY : ASYNCRT_POLL_PENDING;
}

static const asyncrt_future_vtable fan_out_vtable = {
    sizeof(asyncrt_future_vtable), 0, fan_out_poll, NULL, NULL};

static void fan_out_run(fan_out *f) {
  asyncrt_future root = {f, &fan_out_vtable};
  check(asyncrt_block_on(executor, &root, NULL, ASYNCRT_NO_TIMEOUT), "asyncrt_block_on");
  if (f->remaining != 0) bench_die("fan_out", "root finished before its children");
}

static void child_done(fan_out *f) {
  if (--f->remaining == 0) {
    f->done = 1;
    asyncrt_waker_wake(&f->root);
  }
}

/* Children on other threads: the count is shared, and the group (on the
 * stack of the thread in block_on) may be gone as soon as `done` is seen, so
 * the last child takes the waker out first. */
static void child_done_send(fan_out *f) {
  if (__atomic_sub_fetch(&f->remaining, 1, __ATOMIC_ACQ_REL) == 0) {
    asyncrt_waker root = f->root;
    __atomic_store_n(&f->done, 1, __ATOMIC_RELEASE);
    asyncrt_waker_wake(&root);
  }
}

/* A task's state: its group and the steps it has left (yields, or links of
 * a chain after it). */
typedef struct countdown {
  fan_out *group;
  size_t left;
} countdown;

/* ---- yield_many / yield_few: wake yourself, return pending ---------------- */

static int yielder_poll(void *self, asyncrt_context *cx, void *out) {
  (void)out;
  countdown *y = self;
  if (y->left-- == 0) {
    child_done(y->group);
    return ASYNCRT_POLL_READY;
  }
  asyncrt_waker_wake_by_ref(asyncrt_context_waker(cx));
  return ASYNCRT_POLL_PENDING;
}

static const asyncrt_future_vtable yielder_vtable = {
    sizeof(asyncrt_future_vtable), 0, yielder_poll, NULL, NULL};

static void yield_once(size_t tasks, size_t yields) {
  static countdown *states; /* the futures' state: the bench's memory, reused */
  if (states == NULL && (states = malloc(tasks * sizeof *states)) == NULL)
    bench_die("malloc", "yielder states");
  fan_out f = {.child_vtable = &yielder_vtable, .child_states = (char *)states,
               .child_stride = sizeof *states, .children = tasks, .remaining = tasks};
  for (size_t i = 0; i < tasks; i++) states[i] = (countdown){&f, yields};
  fan_out_run(&f);
}

/* ---- spawn_many: trivial children, ready on their first poll ------------- */

static int trivial_poll(void *self, asyncrt_context *cx, void *out) {
  (void)cx, (void)out;
  child_done(self);
  return ASYNCRT_POLL_READY;
}

static const asyncrt_future_vtable trivial_vtable = {
    sizeof(asyncrt_future_vtable), 0, trivial_poll, NULL, NULL};

static void spawn_once(size_t tasks) {
  /* Every child's state is the group itself (stride 0): nothing per task. */
  fan_out f = {.child_vtable = &trivial_vtable, .children = tasks, .remaining = tasks};
  f.child_states = (char *)&f;
  fan_out_run(&f);
}

/* ---- scope_spawn_many: the same children in a scope, joined -------------- */

typedef struct scoped_root {
  size_t children;
  asyncrt_scope *scope;
  asyncrt_future join;
  int state; /* 0: spawn, 1: joining */
} scoped_root;

static int scoped_child_poll(void *self, asyncrt_context *cx, void *out) {
  (void)self, (void)cx, (void)out;
  return ASYNCRT_POLL_READY;
}

static const asyncrt_future_vtable scoped_child_vtable = {
    sizeof(asyncrt_future_vtable), 0, scoped_child_poll, NULL, NULL};

static int scoped_root_poll(void *self, asyncrt_context *cx, void *out) {
  (void)out;
  scoped_root *r = self;
  if (r->state == 0) {
    r->state = 1;
    check(asyncrt_scope_open(cx, NULL, &r->scope), "asyncrt_scope_open");
    for (size_t i = 0; i < r->children; i++) {
      asyncrt_future child = {r, &scoped_child_vtable};
      check(asyncrt_scope_spawn(r->scope, &child, ASYNCRT_SPAWN_LOCAL, NULL), "asyncrt_scope_spawn");
    }
    check(asyncrt_scope_join(r->scope, &r->join), "asyncrt_scope_join");
  }
  int p = r->join.vtable->poll(r->join.self, cx, NULL);
  if (p == ASYNCRT_POLL_PENDING) return p;
  if (p != ASYNCRT_POLL_READY) bench_die("scope_spawn", "the scope's join failed");
  r->join.vtable->drop(r->join.self);
  check(asyncrt_scope_free(r->scope), "asyncrt_scope_free");
  return ASYNCRT_POLL_READY;
}

static const asyncrt_future_vtable scoped_root_vtable = {
    sizeof(asyncrt_future_vtable), 0, scoped_root_poll, NULL, NULL};

static void scope_spawn_once(size_t tasks) {
  scoped_root r = {.children = tasks};
  asyncrt_future root = {&r, &scoped_root_vtable};
  check(asyncrt_block_on(executor, &root, NULL, ASYNCRT_NO_TIMEOUT), "asyncrt_block_on");
}

/* ---- ping_pong: two tasks, two thread-safe channels of capacity 1 --------- */

/* Each side is a hand-written future over the _poll calls: the ping sends,
 * then receives the answer; the pong receives, then answers. The channels
 * are made once and reused by every iteration. */
typedef struct ping_side {
  asyncrt_sender *tx;
  asyncrt_receiver *rx;
  size_t left; /* ping: round trips to go */
  int receiving;
  uint64_t value;
  asyncrt_chan_op send_op, recv_op;
} ping_side;

static asyncrt_sender *ping_tx[2];
static asyncrt_receiver *ping_rx[2];

static int ping_poll(void *self, asyncrt_context *cx, void *out) {
  (void)out;
  ping_side *p = self;
  for (;;) {
    if (!p->receiving) {
      if (p->left == 0) return ASYNCRT_POLL_READY;
      int r = asyncrt_send_poll(p->tx, &p->value, cx, &p->send_op);
      if (r != ASYNCRT_POLL_READY) return r;
      p->receiving = 1;
    }
    int r = asyncrt_recv_poll(p->rx, &p->value, cx, &p->recv_op);
    if (r != ASYNCRT_POLL_READY) return r;
    p->receiving = 0;
    p->left--;
    p->value++;
  }
}

static const asyncrt_future_vtable ping_vtable = {sizeof(asyncrt_future_vtable), 0, ping_poll, NULL, NULL};

/* The pong ends when the ping sends its round-trip count (a sentinel). */
static int pong_poll(void *self, asyncrt_context *cx, void *out) {
  (void)out;
  ping_side *p = self;
  for (;;) {
    if (!p->receiving) {
      int r = asyncrt_recv_poll(p->rx, &p->value, cx, &p->recv_op);
      if (r != ASYNCRT_POLL_READY) return r;
      if (p->value == UINT64_MAX) return ASYNCRT_POLL_READY;
      p->receiving = 1;
    }
    int r = asyncrt_send_poll(p->tx, &p->value, cx, &p->send_op);
    if (r != ASYNCRT_POLL_READY) return r;
    p->receiving = 0;
  }
}

static const asyncrt_future_vtable pong_vtable = {sizeof(asyncrt_future_vtable), 0, pong_poll, NULL, NULL};

static void ping_pong_once(size_t round_trips) {
  if (!ping_tx[0]) {
    asyncrt_channel_config cfg;
    asyncrt_channel_config_init(&cfg);
    cfg.capacity = 1; /* thread-safe: no ASYNCRT_CHANNEL_LOCAL */
    for (int i = 0; i < 2; i++) check(asyncrt_channel_new(&cfg, &ping_tx[i], &ping_rx[i]), "asyncrt_channel_new");
  }
  ping_side ping = {.tx = ping_tx[0], .rx = ping_rx[1], .left = round_trips};
  ping_side pong = {.tx = ping_tx[1], .rx = ping_rx[0]};
  asyncrt_future pong_fut = {&pong, &pong_vtable}, ping_fut = {&ping, &ping_vtable};
  asyncrt_task *pong_task;
  check(asyncrt_spawn(executor, &pong_fut, ASYNCRT_SPAWN_LOCAL, &pong_task), "asyncrt_spawn(pong)");
  check(asyncrt_block_on(executor, &ping_fut, NULL, ASYNCRT_NO_TIMEOUT), "asyncrt_block_on(ping)");
  if (ping.value != round_trips) bench_die("ping_pong", "a message was lost or duplicated");
  uint64_t stop = UINT64_MAX;
  check(asyncrt_try_send(ping_tx[0], &stop), "asyncrt_try_send(stop)");
  asyncrt_future join;
  check(asyncrt_task_join(pong_task, &join), "asyncrt_task_join");
  check(asyncrt_block_on(executor, &join, NULL, ASYNCRT_NO_TIMEOUT), "asyncrt_block_on(pong)");
  check(asyncrt_task_release(pong_task), "asyncrt_task_release");
}

/* ---- spawn_many_mt: Send children, two workers --------------------------- */

static void threads_new(unsigned workers) {
  if (threads != NULL) return;
  asyncrt_executor_config cfg;
  asyncrt_executor_config_init(&cfg);
  cfg.kind = ASYNCRT_EXECUTOR_THREADS;
  cfg.workers = workers;
  check(asyncrt_executor_new(&cfg, &threads), "asyncrt_executor_new(THREADS)");
}

static int trivial_send_poll(void *self, asyncrt_context *cx, void *out) {
  (void)cx, (void)out;
  child_done_send(self);
  return ASYNCRT_POLL_READY;
}

static const asyncrt_future_vtable trivial_send_vtable = {
    sizeof(asyncrt_future_vtable), 0, trivial_send_poll, NULL, NULL};

static void spawn_mt_once(size_t tasks) {
  threads_new(2);
  fan_out f = {.child_vtable = &trivial_send_vtable, .child_flags = ASYNCRT_SPAWN_SEND,
               .children = tasks, .remaining = tasks};
  f.child_states = (char *)&f;
  /* The root is a local task on worker 0, so its children (spawned there)
   * start on worker 0 too; block_on takes the join future to a worker. */
  asyncrt_future root = {&f, &fan_out_vtable}, join;
  asyncrt_task *task;
  check(asyncrt_spawn(threads, &root, ASYNCRT_SPAWN_LOCAL | ASYNCRT_SPAWN_WORKER(0), &task),
        "asyncrt_spawn(root)");
  check(asyncrt_task_join(task, &join), "asyncrt_task_join");
  check(asyncrt_task_release(task), "asyncrt_task_release");
  check(asyncrt_block_on(threads, &join, NULL, ASYNCRT_NO_TIMEOUT), "asyncrt_block_on(join)");
  if (__atomic_load_n(&f.remaining, __ATOMIC_ACQUIRE) != 0)
    bench_die("spawn_mt", "root finished before its children");
}

/* The split of every poll since the executor started (warm-up included):
 * the counters are exact once the executor is shut down. */
static void spawn_mt_report(void) {
  check(asyncrt_executor_shutdown(threads, ASYNCRT_SHUTDOWN_GRACEFUL, 5000000000),
        "asyncrt_executor_shutdown");
  asyncrt_worker_stats w[2];
  for (unsigned i = 0; i < 2; i++) {
    w[i] = (asyncrt_worker_stats){.size = sizeof w[i]};
    check(asyncrt_worker_stats_get(threads, i, &w[i]), "asyncrt_worker_stats_get");
  }
  double all = (double)(w[0].polls + w[1].polls);
  printf("split %.1f/%.1f %%\n", 100.0 * (double)w[0].polls / all,
         100.0 * (double)w[1].polls / all);
  fprintf(stderr, "worker 1 stole %llu tasks; parks %llu/%llu\n",
          (unsigned long long)w[1].steals, (unsigned long long)w[0].parks,
          (unsigned long long)w[1].parks);
}

static void report(const char *mode) {
  if (strcmp(mode, "spawn_mt") == 0) spawn_mt_report();
}

/* ---- chained_spawn: each link spawns the next ---------------------------- */

static int link_poll(void *self, asyncrt_context *cx, void *out) {
  (void)out;
  countdown *c = self;
  if (--c->left == 0) {
    child_done(c->group);
  } else {
    asyncrt_future next = {c, c->group->child_vtable};
    check(asyncrt_spawn(asyncrt_context_executor(cx), &next, ASYNCRT_SPAWN_LOCAL, NULL),
          "asyncrt_spawn");
  }
  return ASYNCRT_POLL_READY;
}

static const asyncrt_future_vtable link_vtable = {
    sizeof(asyncrt_future_vtable), 0, link_poll, NULL, NULL};

static void chain_once(size_t depth) {
  /* The root's one child is the first link; every link shares one state. */
  countdown state;
  fan_out f = {.child_vtable = &link_vtable, .child_states = (char *)&state, .children = 1,
               .remaining = 1};
  state = (countdown){&f, depth};
  fan_out_run(&f);
}

/* ---- cross_thread_wake: a foreign thread wakes, the task acknowledges ----- */

typedef struct acker {
  bench_pinger pinger;
  asyncrt_waker waker; /* the clone the pinger wakes */
  size_t rounds;
  uint32_t acked;
  int started;
} acker;

static void wake_task(void *waker) { asyncrt_waker_wake_by_ref(waker); }

static int acker_poll(void *self, asyncrt_context *cx, void *out) {
  (void)out;
  acker *a = self;
  if (!a->started) {
    a->started = 1;
    asyncrt_waker_clone(asyncrt_context_waker(cx), &a->waker);
    bench_pinger_start(&a->pinger, a->rounds, wake_task, &a->waker);
  }
  uint32_t asked = bench_pinger_request(&a->pinger);
  if (asked != a->acked) bench_pinger_ack(&a->pinger, a->acked = asked);
  return a->acked == a->rounds ? ASYNCRT_POLL_READY : ASYNCRT_POLL_PENDING;
}

static const asyncrt_future_vtable acker_vtable = {
    sizeof(asyncrt_future_vtable), 0, acker_poll, NULL, NULL};

static void wake_on(asyncrt_executor *ex, size_t round_trips) {
  acker a = {.rounds = round_trips};
  asyncrt_future fut = {&a, &acker_vtable};
  check(asyncrt_block_on(ex, &fut, NULL, ASYNCRT_NO_TIMEOUT), "asyncrt_block_on");
  bench_pinger_join(&a.pinger);
  asyncrt_waker_drop(&a.waker);
}

static void wake_once(size_t round_trips) { wake_on(executor, round_trips); }

/* block_on on a thread-per-core executor runs the future as a Send task on
 * its one worker, while this thread sleeps until it completes. */
static void wake_threads_once(size_t round_trips) {
  threads_new(1);
  wake_on(threads, round_trips);
}

/* ---- idle_task_memory: pending forever, never woken ---------------------- */

typedef struct parked {
  uint64_t polls;
} parked;

static int parked_poll(void *self, asyncrt_context *cx, void *out) {
  (void)cx, (void)out;
  ((parked *)self)->polls++;
  return ASYNCRT_POLL_PENDING;
}

static const asyncrt_future_vtable parked_vtable = {
    sizeof(asyncrt_future_vtable), 0, parked_poll, NULL, NULL};

/* The futures' state is one array allocated and touched before the first
 * RSS reading, so only the runtime's own memory is in the growth. Each task
 * is polled once (the poll is where a runtime may register a waker) before
 * the second reading. */
static double idle_bytes(size_t tasks) {
  parked *states = malloc(tasks * sizeof *states);
  if (states == NULL) bench_die("malloc", "parked states");
  for (size_t i = 0; i < tasks; i++) states[i].polls = 0;
  size_t before = bench_rss_bytes();
  for (size_t i = 0; i < tasks; i++) {
    asyncrt_future fut = {&states[i], &parked_vtable};
    check(asyncrt_spawn(executor, &fut, ASYNCRT_SPAWN_LOCAL, NULL), "asyncrt_spawn");
  }
  uint64_t polls = 0;
  check(asyncrt_run(executor, &polls), "asyncrt_run");
  size_t after = bench_rss_bytes();
  if (polls != tasks) bench_die("idle", "not every task was polled exactly once");

  asyncrt_executor_stats stats = {.size = sizeof stats};
  check(asyncrt_executor_stats_get(executor, &stats), "asyncrt_executor_stats_get");
  fprintf(stderr, "future state %zu bytes/task excluded; executor stats: %.1f bytes/task in use\n",
          sizeof *states, (double)stats.memory_in_use / (double)tasks);
  return (double)(after - before);
}

/* ---- timers: one task per timer --------------------------------------------- */

typedef struct timer_task {
  asyncrt_timer timer;
  uint64_t deadline;
  int64_t *late;
  fan_out *group;
} timer_task;

static int timer_poll(void *self, asyncrt_context *cx, void *out) {
  (void)out;
  timer_task *t = self;
  int r = asyncrt_timer_poll(&t->timer, cx, t->deadline);
  if (r != ASYNCRT_POLL_READY) return r;
  *t->late = (int64_t)(bench_now_ns() - t->deadline);
  child_done(t->group);
  return ASYNCRT_POLL_READY;
}

static const asyncrt_future_vtable timer_vtable = {
    sizeof(asyncrt_future_vtable), 0, timer_poll, NULL, NULL};

/* The root creates every timer task (deadline = its creation + offset),
 * then yields once: it runs again after each task's first poll, which armed
 * its timer, so creation = spawn + arm. */
typedef struct timers_root {
  fan_out group;
  bench_timers *b;
  timer_task *tasks;
  uint64_t start;
  int created;
} timers_root;

static int timers_root_poll(void *self, asyncrt_context *cx, void *out) {
  (void)out;
  timers_root *r = self;
  if (!r->group.spawned) {
    r->group.spawned = 1;
    asyncrt_waker_clone(asyncrt_context_waker(cx), &r->group.root);
    asyncrt_executor *ex = asyncrt_context_executor(cx);
    r->start = bench_now_ns();
    for (size_t i = 0; i < r->b->count; i++) {
      r->tasks[i] = (timer_task){.deadline = bench_now_ns() + r->b->offset_ns[i],
                                 .late = &r->b->late_ns[i],
                                 .group = &r->group};
      asyncrt_future f = {&r->tasks[i], &timer_vtable};
      check(asyncrt_spawn(ex, &f, 0, NULL), "asyncrt_spawn");
    }
    asyncrt_waker_wake_by_ref(asyncrt_context_waker(cx)); /* behind the tasks' first polls */
    return ASYNCRT_POLL_PENDING;
  }
  if (!r->created) {
    r->created = 1;
    r->b->create_ns = bench_now_ns() - r->start;
  }
  return r->group.done ? ASYNCRT_POLL_READY : ASYNCRT_POLL_PENDING;
}

static const asyncrt_future_vtable timers_root_vtable = {
    sizeof(asyncrt_future_vtable), 0, timers_root_poll, NULL, NULL};

static void timers_once(bench_timers *b) {
  static timer_task *tasks;
  if (!tasks && !(tasks = calloc(b->count, sizeof *tasks))) bench_die("calloc", "timers");
  timers_root r = {.group = {.remaining = b->count}, .b = b, .tasks = tasks};
  asyncrt_future root = {&r, &timers_root_vtable};
  check(asyncrt_block_on(executor, &root, NULL, ASYNCRT_NO_TIMEOUT), "asyncrt_block_on");
  if (r.group.remaining) bench_die("timers", "root finished before its timers");
}

int main(int argc, char **argv) {
  check(asyncrt_check_version(ASYNCRT_VERSION_HEX), "asyncrt_check_version");
  check(asyncrt_executor_new(NULL, &executor), "asyncrt_executor_new");
  static const bench_ops ops = {
      .yield_once = yield_once,
      .spawn_once = spawn_once,
      .scope_spawn_once = scope_spawn_once,
      .ping_pong_once = ping_pong_once,
      .spawn_mt_once = spawn_mt_once,
      .chain_once = chain_once,
      .wake_once = wake_once,
      .wake_threads_once = wake_threads_once,
      .idle_bytes = idle_bytes,
      .timers_once = timers_once,
      .report = report,
  };
  int rc = bench_main(argc, argv, &ops);
  check(asyncrt_executor_free(threads), "asyncrt_executor_free(THREADS)");
  check(asyncrt_executor_free(executor), "asyncrt_executor_free");
  return rc;
}
