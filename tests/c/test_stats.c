/* Metrics (asyncrt 0.6): the counters of a worker, an executor and a
 * subsystem move as the workload says. Workloads are scripted (tf_state) and
 * run on executors whose order of events is fixed -- a local executor
 * driven by this thread, a one-worker thread-per-core executor read after
 * its shutdown -- so most counters are checked for exact values. Nothing is
 * timed; the one count that depends on the scheduler (parks) is checked for
 * a lower bound. */
#include "check.h" /* first: it sets _POSIX_C_SOURCE */
#include "testfut.h"

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

static asyncrt_worker_stats worker_stats(asyncrt_executor *ex, unsigned worker) {
  asyncrt_worker_stats s;
  memset(&s, 0xff, sizeof s);
  s.size = sizeof s;
  if (asyncrt_worker_stats_get(ex, worker, &s) != ASYNCRT_OK) memset(&s, 0xff, sizeof s);
  return s;
}

static asyncrt_executor *local_executor(unsigned clock, uint32_t budget_polls) {
  asyncrt_executor_config cfg;
  asyncrt_executor_config_init(&cfg);
  cfg.clock = clock;
  cfg.budget_polls = budget_polls;
  cfg.budget_ns = 3600 * TF_SECOND_NS; /* never the time budget: the polls decide */
  asyncrt_executor *ex = NULL;
  return asyncrt_executor_new(&cfg, &ex) == ASYNCRT_OK ? ex : NULL;
}

static void spawn_detached(asyncrt_executor *ex, tf_state *st) {
  asyncrt_future f = tf_future(st);
  if (asyncrt_spawn(ex, &f, ASYNCRT_SPAWN_LOCAL, NULL) != ASYNCRT_OK) abort();
}

/* Every way a task can end, through every path that ends one: detached
 * (the executor's reference is the last), with a handle, with a name (an
 * ext record), in a scope, in caller storage. The stats split them by final
 * status, and the split adds up at every reading. */
static void test_task_outcomes(void) {
  enum { N = 5 };
  asyncrt_executor *ex = tf_executor();
  CHECK(ex != NULL);
  tf_state ok[N], failed[N], cancelled[N];
  asyncrt_task *handles[N], *kept[N] = {0};
  static _Alignas(ASYNCRT_TASK_STORAGE_ALIGN) unsigned char storage[N][ASYNCRT_TASK_STORAGE_SIZE(8)];
  asyncrt_scope *scope = NULL;
  asyncrt_scope_config scfg;
  asyncrt_scope_config_init(&scfg);
  scfg.flags = ASYNCRT_SCOPE_COLLECT_ALL; /* the failing child does not cancel its sibling */
  CHECK_OK(asyncrt_scope_open_top(ex, &scfg, &scope));
  for (int i = 0; i < N; i++) {
    tf_init(&ok[i]);
    tf_init(&failed[i]);
    tf_init(&cancelled[i]);
    failed[i].fail = i % 2 ? ASYNCRT_EFAILED : 1234;
    cancelled[i].park = 1;
    cancelled[i].pendings = 1;
    asyncrt_future f = tf_future(&ok[i]), g = tf_future(&failed[i]), c = tf_future(&cancelled[i]);
    asyncrt_task_storage st = {sizeof st, storage[i], sizeof storage[i], NULL, NULL};
    switch (i) {
    case 0: /* detached */
      CHECK_OK(asyncrt_spawn(ex, &f, 0, NULL));
      CHECK_OK(asyncrt_spawn(ex, &g, 0, NULL));
      break;
    case 1: /* named: the task has an ext record */
    case 2: /* with a handle kept to the end */
      CHECK_OK(asyncrt_spawn(ex, &f, 0, &kept[i]));
      if (i == 1) CHECK_OK(asyncrt_task_set_name(kept[i], "named"));
      CHECK_OK(asyncrt_spawn(ex, &g, 0, NULL));
      break;
    case 3: /* children of a scope */
      CHECK_OK(asyncrt_scope_spawn(scope, &f, 0, NULL));
      CHECK_OK(asyncrt_scope_spawn(scope, &g, 0, NULL));
      break;
    default: /* caller storage */
      CHECK_OK(asyncrt_spawn_in(ex, &f, 0, &st, NULL));
      CHECK_OK(asyncrt_spawn(ex, &g, 0, NULL));
    }
    CHECK_OK(asyncrt_spawn(ex, &c, 0, &handles[i]));
  }
  /* Before anything ran: all live. */
  asyncrt_executor_stats s = tf_stats(ex);
  CHECK_INT(s.tasks_spawned, 3 * N);
  CHECK_INT(s.tasks_live, 3 * N);
  CHECK_INT(s.tasks_completed + s.tasks_failed + s.tasks_cancelled, 0);
  CHECK_OK(asyncrt_run(ex, NULL));
  s = tf_stats(ex);
  CHECK_INT(s.tasks_completed, N);
  CHECK_INT(s.tasks_failed, N);
  CHECK_INT(s.tasks_cancelled, 0);
  CHECK_INT(s.tasks_live, N); /* the parked ones */
  for (int i = 0; i < N; i++) {
    CHECK_OK(asyncrt_task_cancel(handles[i]));
    CHECK_OK(asyncrt_task_release(handles[i]));
    CHECK_OK(asyncrt_task_release(kept[i])); /* NULL for most: a no-op */
  }
  CHECK_OK(asyncrt_run(ex, NULL));
  s = tf_stats(ex);
  CHECK_INT(s.tasks_spawned, 3 * N);
  CHECK_INT(s.tasks_completed, N);
  CHECK_INT(s.tasks_failed, N);
  CHECK_INT(s.tasks_cancelled, N);
  CHECK_INT(s.tasks_live, 0);
  /* One worker: its counters are the executor's. */
  asyncrt_worker_stats w = worker_stats(ex, 0);
  CHECK_INT(w.tasks_spawned, s.tasks_spawned);
  CHECK_INT(w.tasks_completed, s.tasks_completed);
  CHECK_INT(w.tasks_failed, s.tasks_failed);
  CHECK_INT(w.tasks_cancelled, s.tasks_cancelled);
  CHECK_INT(w.polls, s.polls);
  CHECK_INT(s.polls, 3 * N); /* one each; a cancelled task's drop is not a poll */
  CHECK_OK(asyncrt_scope_free(scope));
  CHECK_OK(asyncrt_executor_free(ex));
}

/* A task's wakes of itself are local, once per poll; spawns and wakes from
 * a thread that does not drive the executor are remote. */
static void test_wakes(void) {
  asyncrt_executor *ex = tf_executor();
  CHECK(ex != NULL);
  tf_state self, parked;
  tf_init(&self);
  self.yields = 3;   /* three items: queued again like a self-wake */
  self.pendings = 4; /* four self-wakes */
  tf_init(&parked);
  parked.park = 1;
  parked.pendings = 2;
  spawn_detached(ex, &self);
  spawn_detached(ex, &parked); /* two spawns from a thread that does not drive it */
  CHECK_OK(asyncrt_run(ex, NULL));
  asyncrt_worker_stats w = worker_stats(ex, 0);
  CHECK_INT(w.wakes_local, 7);
  CHECK_INT(w.wakes, 2);
  CHECK_INT(tf_get(&parked.parked_flag), 1);
  asyncrt_waker_wake_by_ref(&parked.parked); /* from this thread, nobody driving: remote */
  asyncrt_waker_wake_by_ref(&parked.parked); /* already queued: no second queueing */
  CHECK_OK(asyncrt_run(ex, NULL));
  w = worker_stats(ex, 0);
  CHECK_INT(w.wakes, 3);
  CHECK_INT(w.wakes_local, 7);
  CHECK_INT(w.polls, 8 + 2);
  asyncrt_executor_stats s = tf_stats(ex);
  CHECK_INT(s.wakes_local, 7);
  CHECK_INT(s.wakes_remote, 3);
  asyncrt_waker_wake_by_ref(&parked.parked);
  CHECK_OK(asyncrt_run(ex, NULL));
  CHECK_INT(tf_stats(ex).tasks_completed, 2);
  CHECK_OK(asyncrt_executor_free(ex));
}

/* A task woken by another task on the same thread: a local wake. */
typedef struct waker_task {
  tf_state *target;
  int done;
} waker_task;

static int waker_task_poll(void *self, asyncrt_context *cx, void *out) {
  (void)cx;
  (void)out;
  waker_task *w = self;
  asyncrt_waker_wake_by_ref(&w->target->parked);
  asyncrt_waker_wake_by_ref(&w->target->parked); /* queued already: not counted again */
  w->done = 1;
  return ASYNCRT_POLL_READY;
}

static const asyncrt_future_vtable waker_task_vtable = {sizeof(asyncrt_future_vtable), 0, waker_task_poll,
                                                        NULL, NULL};

static void test_wakes_between_tasks(void) {
  asyncrt_executor *ex = tf_executor();
  CHECK(ex != NULL);
  tf_state parked;
  tf_init(&parked);
  parked.park = 1;
  parked.pendings = 1;
  spawn_detached(ex, &parked);
  CHECK_OK(asyncrt_run(ex, NULL)); /* parked now */
  waker_task w = {&parked, 0};
  asyncrt_future f = {&w, &waker_task_vtable};
  CHECK_OK(asyncrt_spawn(ex, &f, 0, NULL));
  CHECK_OK(asyncrt_run(ex, NULL));
  CHECK_INT(w.done, 1);
  CHECK_INT(tf_get(&parked.finished), 1);
  asyncrt_worker_stats s = worker_stats(ex, 0);
  CHECK_INT(s.wakes_local, 1);
  CHECK_INT(s.wakes, 2); /* the two spawns */
  CHECK_OK(asyncrt_executor_free(ex));
}

/* With a timer armed, a busy run ticks every budget_polls polls: each such
 * tick is a budget yield. The test clock keeps the timer from firing. */
static void test_budget_and_timers(void) {
  enum { BUDGET = 10, PENDINGS = 95 };
  asyncrt_executor *ex = local_executor(ASYNCRT_CLOCK_TEST, BUDGET);
  CHECK(ex != NULL);
  asyncrt_sleep sleep;
  asyncrt_future sleeper;
  CHECK_OK(asyncrt_sleep_for(&sleep, TF_SECOND_NS, &sleeper));
  CHECK_OK(asyncrt_spawn(ex, &sleeper, 0, NULL));
  tf_state busy;
  tf_init(&busy);
  busy.pendings = PENDINGS;
  spawn_detached(ex, &busy);
  uint64_t polls = 0;
  CHECK_OK(asyncrt_run(ex, &polls));
  CHECK_INT(polls, 1 + PENDINGS + 1);
  asyncrt_worker_stats w = worker_stats(ex, 0);
  CHECK_INT(w.budget_yields, polls / BUDGET);
  CHECK_INT(w.timers_armed, 1);
  CHECK_INT(w.timers_fired, 0);
  CHECK(w.ticks >= w.budget_yields);
  CHECK_OK(asyncrt_clock_advance(ex, TF_SECOND_NS));
  CHECK_OK(asyncrt_run(ex, NULL));
  w = worker_stats(ex, 0);
  CHECK_INT(w.timers_armed, 0);
  CHECK_INT(w.timers_fired, 1);
  CHECK_INT(w.budget_yields, polls / BUDGET); /* the sleeper's last poll did not make a busy run */
  asyncrt_executor_stats s = tf_stats(ex);
  CHECK_INT(s.timers_fired, 1);
  CHECK_INT(s.budget_yields, w.budget_yields);
  CHECK_INT(s.tasks_completed, 2);
  CHECK_OK(asyncrt_executor_free(ex));
}

/* block_on sleeps in the kernel for a real timer: a park. */
/* A future pending until another thread wakes it, 100 ms after its first
 * poll: the driver has nothing else to do meanwhile, so it parks (the park
 * counter moves when the park ends; the margin is for a loaded machine). */
typedef struct park_gate {
  asyncrt_executor *ex;
  asyncrt_waker waker;
  int has_waker, open;
} park_gate;

static int park_gate_poll(void *self, asyncrt_context *cx, void *out) {
  (void)out;
  park_gate *g = self;
  if (__atomic_load_n(&g->open, __ATOMIC_ACQUIRE)) return ASYNCRT_POLL_READY;
  if (!__atomic_load_n(&g->has_waker, __ATOMIC_ACQUIRE)) {
    asyncrt_waker_clone(asyncrt_context_waker(cx), &g->waker);
    __atomic_store_n(&g->has_waker, 1, __ATOMIC_RELEASE);
  }
  return ASYNCRT_POLL_PENDING;
}
static const asyncrt_future_vtable park_gate_vtable = {sizeof(asyncrt_future_vtable), 0, park_gate_poll, NULL, NULL};

static void *park_gate_opener(void *arg) {
  park_gate *g = arg;
  int polled = tf_wait_flag(&g->has_waker, 10000);
  if (polled) tf_sleep_ms(100);
  __atomic_store_n(&g->open, 1, __ATOMIC_RELEASE);
  if (polled) asyncrt_waker_wake(&g->waker);
  return NULL;
}

static void test_local_parks(void) {
  asyncrt_executor *ex = tf_executor();
  CHECK(ex != NULL);
  park_gate gate = {.ex = ex};
  asyncrt_future fut = {&gate, &park_gate_vtable};
  pthread_t opener;
  CHECK(pthread_create(&opener, NULL, park_gate_opener, &gate) == 0);
  CHECK_OK(asyncrt_block_on(ex, &fut, NULL, TF_TIMEOUT_NS));
  pthread_join(opener, NULL);
  asyncrt_worker_stats w = worker_stats(ex, 0);
  CHECK(w.parks >= 1);
  CHECK(w.parked_ns > 0);
  asyncrt_executor_stats s = tf_stats(ex);
  CHECK_INT(s.parks, w.parks);
  CHECK_INT(s.parked_ns, w.parked_ns);
  CHECK_OK(asyncrt_executor_free(ex));
}

/* A thread-per-core worker's counters are final after the shutdown: every
 * spawn from this thread was a remote queueing, every task one poll, and
 * the parked tasks the shutdown found were cancelled. */
static void test_threads_after_shutdown(void) {
  enum { READY = 20, PARKED = 3 };
  asyncrt_executor_config cfg;
  asyncrt_executor_config_init(&cfg);
  cfg.kind = ASYNCRT_EXECUTOR_THREADS;
  cfg.workers = 1;
  asyncrt_executor *ex = NULL;
  CHECK_OK(asyncrt_executor_new(&cfg, &ex));
  tf_state *st = calloc(READY + PARKED, sizeof *st); /* leaked if a CHECK fails: a worker may touch it */
  CHECK(st != NULL);
  for (int i = 0; i < READY + PARKED; i++) {
    tf_init(&st[i]);
    if (i >= READY) {
      st[i].park = 1;
      st[i].pendings = 1;
    }
    asyncrt_future f = tf_future(&st[i]);
    CHECK_OK(asyncrt_spawn(ex, &f, i % 2 ? ASYNCRT_SPAWN_SEND : 0, NULL));
  }
  for (int i = 0; i < READY + PARKED; i++)
    CHECK(tf_wait_flag(i < READY ? &st[i].finished : &st[i].parked_flag, 5000));
  CHECK_OK(asyncrt_executor_shutdown(ex, ASYNCRT_SHUTDOWN_IMMEDIATE, TF_TIMEOUT_NS));
  asyncrt_worker_stats w = worker_stats(ex, 0);
  CHECK_INT(w.wakes, READY + PARKED + PARKED); /* the spawns, and the shutdown's cancels of the parked */
  CHECK_INT(w.polls, READY + PARKED);
  CHECK_INT(w.tasks_spawned, READY + PARKED);
  CHECK_INT(w.tasks_completed, READY);
  CHECK_INT(w.tasks_cancelled, PARKED);
  CHECK_INT(w.tasks_live, 0);
  CHECK_INT(w.memory_in_use, 0);
  asyncrt_executor_stats s = tf_stats(ex);
  CHECK_INT(s.workers, 1);
  CHECK_INT(s.wakes_remote, w.wakes);
  CHECK_INT(s.tasks_cancelled, PARKED);
  CHECK_OK(asyncrt_executor_free(ex));
  free(st);
}

/* A program built against an older header passes a smaller struct: it gets
 * the fields it knows, and nothing past them is written. */
static void test_older_struct_sizes(void) {
  asyncrt_executor *ex = tf_executor();
  CHECK(ex != NULL);
  tf_state t;
  tf_init(&t);
  t.pendings = 2;
  spawn_detached(ex, &t);
  CHECK_OK(asyncrt_run(ex, NULL));
  asyncrt_executor_stats s;
  memset(&s, 0xab, sizeof s);
  s.size = offsetof(asyncrt_executor_stats, tasks_completed); /* the 0.5 struct */
  CHECK_OK(asyncrt_executor_stats_get(ex, &s));
  CHECK_INT(s.polls, 3);
  CHECK_INT(s.workers, 1);
  CHECK_INT(s.tasks_completed, 0xababababababababull);
  CHECK_INT(s.stalls, 0xababababababababull);
  asyncrt_worker_stats w;
  memset(&w, 0xab, sizeof w);
  w.size = offsetof(asyncrt_worker_stats, ticks); /* the 0.2 struct */
  CHECK_OK(asyncrt_worker_stats_get(ex, 0, &w));
  CHECK_INT(w.polls, 3);
  CHECK_INT(w.ticks, 0xababababababababull);
  w.size = offsetof(asyncrt_worker_stats, parked_ns);
  CHECK_STATUS(asyncrt_worker_stats_get(ex, 0, &w), ASYNCRT_EINVAL);
  s.size = offsetof(asyncrt_executor_stats, memory_limit);
  CHECK_STATUS(asyncrt_executor_stats_get(ex, &s), ASYNCRT_EINVAL);
  /* A newer header's bigger struct: the fields past this library's stay. */
  struct {
    asyncrt_executor_stats known;
    uint64_t later;
  } big;
  memset(&big, 0xcd, sizeof big);
  big.known.size = sizeof big;
  CHECK_OK(asyncrt_executor_stats_get(ex, &big.known));
  CHECK_INT(big.known.size, sizeof big);
  CHECK_INT(big.known.tasks_completed, 1);
  CHECK_INT(big.later, 0xcdcdcdcdcdcdcdcdull);
  CHECK_OK(asyncrt_executor_free(ex));
}

/* ---- a subsystem: operations complete, fail, and are cancelled ---------- */

typedef struct st_sub {
  int cancels_seen;
} st_sub;

static int st_sub_poll(void *user, asyncrt_subsystem_cx *scx, uint32_t budget) {
  (void)user;
  (void)budget;
  /* Completes every op with the status its submitter put in args[0], but
   * those that args[1] holds: they end only by their cancellation. */
  int n = 0;
  for (asyncrt_op *op = asyncrt_subsystem_cx_first_op(scx), *next; op; op = next) {
    next = asyncrt_op_next(op);
    if (op->args[1]) continue;
    asyncrt_op_complete(op, (int)op->args[0], 0);
    n++;
  }
  return n;
}

static void st_sub_cancel(void *user, asyncrt_subsystem_cx *scx, asyncrt_op *op) {
  (void)scx;
  ((st_sub *)user)->cancels_seen++;
  asyncrt_op_complete(op, ASYNCRT_ECANCELLED, 0);
}

static const asyncrt_subsystem_vtable st_sub_vtable = {sizeof(asyncrt_subsystem_vtable), st_sub_poll, NULL,
                                                       st_sub_cancel, NULL, NULL};

typedef struct st_op_task {
  asyncrt_op op;
  asyncrt_op_future_state state;
  asyncrt_future fut;
  asyncrt_subsystem *sub;
  int status; /* what the subsystem completes it with */
  int hold;   /* the subsystem never completes it: only its cancellation does */
  int started;
} st_op_task;

static int st_op_task_poll(void *self, asyncrt_context *cx, void *out) {
  (void)out;
  st_op_task *t = self;
  if (!t->started) {
    memset(&t->op, 0, sizeof t->op);
    t->op.args[0] = (uint64_t)t->status;
    t->op.args[1] = (uint64_t)t->hold;
    if (asyncrt_op_future(&t->state, &t->op, t->sub, &t->fut) != ASYNCRT_OK) return ASYNCRT_POLL_ERROR;
    t->started = 1;
  }
  return t->fut.vtable->poll(t->fut.self, cx, NULL);
}

static void st_op_task_drop(void *self) {
  st_op_task *t = self;
  if (t->started) t->fut.vtable->drop(t->fut.self);
}

static const asyncrt_future_vtable st_op_task_vtable = {sizeof(asyncrt_future_vtable), 0, st_op_task_poll,
                                                        st_op_task_drop, NULL};

static void test_subsystem_counters(void) {
  asyncrt_executor *ex = tf_executor();
  CHECK(ex != NULL);
  st_sub user = {0};
  asyncrt_subsystem_config cfg;
  asyncrt_subsystem_config_init(&cfg);
  cfg.vtable = &st_sub_vtable;
  cfg.user_data = &user;
  asyncrt_subsystem *sub = NULL;
  CHECK_OK(asyncrt_subsystem_register(ex, &cfg, &sub));
  st_op_task ok = {.sub = sub, .status = ASYNCRT_OK}, bad = {.sub = sub, .status = ASYNCRT_EFAILED},
             gone = {.sub = sub, .hold = 1};
  asyncrt_future fo = {&ok, &st_op_task_vtable}, fb = {&bad, &st_op_task_vtable}, fg = {&gone, &st_op_task_vtable};
  asyncrt_task *gone_task = NULL;
  CHECK_OK(asyncrt_spawn(ex, &fg, 0, &gone_task));
  CHECK_OK(asyncrt_run_step(ex, 1, 0, NULL)); /* submitted, in flight */
  CHECK_INT(tf_stats(ex).ops_in_flight, 1);
  CHECK_INT(worker_stats(ex, 0).ops_in_flight, 1);
  CHECK_OK(asyncrt_task_cancel(gone_task)); /* its op's cancellation goes to the subsystem */
  CHECK_OK(asyncrt_task_release(gone_task));
  CHECK_OK(asyncrt_spawn(ex, &fo, 0, NULL));
  CHECK_OK(asyncrt_spawn(ex, &fb, 0, NULL));
  CHECK_OK(asyncrt_run(ex, NULL));
  CHECK_INT(user.cancels_seen, 1);
  asyncrt_subsystem_stats ss = {.size = sizeof ss};
  CHECK_OK(asyncrt_subsystem_stats_get(sub, &ss));
  CHECK_INT(ss.submits, 3);
  CHECK_INT(ss.completions, 3);
  CHECK_INT(ss.cancels, 1);
  CHECK_INT(ss.failures, 2); /* EFAILED, and the cancelled one's ECANCELLED */
  CHECK_INT(ss.waiters, 0);
  CHECK_INT(ss.workers, 1);
  asyncrt_executor_stats s = tf_stats(ex);
  CHECK_INT(s.ops_in_flight, 0);
  CHECK_INT(s.tasks_completed, 1);
  CHECK_INT(s.tasks_failed, 1);
  CHECK_INT(s.tasks_cancelled, 1);
  /* The timers' counters use the same struct. */
  CHECK_OK(asyncrt_timer_stats_get(ex, &ss));
  CHECK_INT(ss.workers, 1);
  CHECK_INT(ss.cancels, 0);
  CHECK_OK(asyncrt_executor_free(ex));
}

/* A foreign executor: its host queues and runs the tasks, so only the task
 * counts move. */
typedef struct fifo {
  asyncrt_runnable *queue[64];
  int head, tail;
} fifo;

static void fifo_schedule(void *user, asyncrt_runnable *r) {
  fifo *q = user;
  q->queue[q->tail++ % 64] = r;
}

static void test_foreign_counts_tasks_only(void) {
  fifo q = {.head = 0};
  asyncrt_foreign_vtable vt = {sizeof vt, fifo_schedule, NULL};
  asyncrt_executor *ex = NULL;
  CHECK_OK(asyncrt_executor_new_foreign(&vt, &q, &ex));
  tf_state ok, bad;
  tf_init(&ok);
  ok.pendings = 3;
  tf_init(&bad);
  bad.fail = ASYNCRT_EFAILED;
  spawn_detached(ex, &ok);
  spawn_detached(ex, &bad);
  while (q.head < q.tail) CHECK_OK(asyncrt_runnable_run(q.queue[q.head++ % 64]));
  CHECK_INT(tf_get(&ok.polls), 4);
  asyncrt_worker_stats w = worker_stats(ex, 0);
  CHECK_INT(w.tasks_spawned, 2);
  CHECK_INT(w.tasks_completed, 1);
  CHECK_INT(w.tasks_failed, 1);
  CHECK_INT(w.tasks_live, 0);
  CHECK_INT(w.polls, 0);
  CHECK_INT(w.wakes, 0);
  CHECK_INT(w.wakes_local, 0);
  CHECK_INT(tf_stats(ex).workers, 1);
  CHECK_OK(asyncrt_executor_free(ex));
}

int main(void) {
  CHECK_BEGIN();
  RUN(test_task_outcomes);
  RUN(test_wakes);
  RUN(test_wakes_between_tasks);
  RUN(test_budget_and_timers);
  RUN(test_local_parks);
  RUN(test_threads_after_shutdown);
  RUN(test_older_struct_sizes);
  RUN(test_subsystem_counters);
  RUN(test_foreign_counts_tasks_only);
  return CHECK_END("test_stats");
}
