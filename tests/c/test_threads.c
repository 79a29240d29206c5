/* Thread-per-core executors: placement, stealing, wakes from foreign threads,
 * the cooperative budget, block_on, shutdown and free, capabilities, thread
 * hooks and worker stats.
 *
 * Workers run while a test function runs, so everything a worker may touch
 * (future state, hook data) lives on the heap and is leaked when a CHECK
 * fails: a returning test must not leave a worker pointing into its stack.
 * Futures that would run forever give up at tt_give_up_ns, so a failed test
 * cannot keep a worker spinning for the tests after it. */
#include "check.h"
#include "testfut.h"

#include <sched.h>
#include <stdint.h>
#include <stdlib.h>
#include <time.h>

#define WORKERS 2
/** tt_fut.steps: never finish by itself (only through `stop` or give-up). */
#define TT_FOREVER (-1)

static int64_t tt_give_up_ns;

/* --- the world: what the thread hooks saw -------------------------------- */

typedef struct tt_world {
  pthread_t threads[WORKERS]; /* written by on_start before started[i] is set */
  int started[WORKERS], stopped[WORKERS];
  int parks[WORKERS], unparks[WORKERS], parked[WORKERS];
  int bad_index;     /* a hook got a worker index >= WORKERS */
  int wrong_thread;  /* a hook ran on a thread other than its worker's */
  int unpaired;      /* on_park twice in a row, or on_unpark without on_park */
  int after_stop;    /* a hook after on_stop */
  int twice_started; /* on_start twice for one worker */
  int finalized, finalized_early;
  int foreign_polls; /* futures polled on a thread that is no known worker */
  int dropped;       /* tt_fut drops, all futures of this world */
} tt_world;

static tt_world *tt_world_new(void) { return calloc(1, sizeof(tt_world)); }

static int tt_worker_of(tt_world *w, pthread_t t) {
  int i;
  for (i = 0; i < WORKERS; i++) {
    if (tf_get(&w->started[i]) && pthread_equal(w->threads[i], t)) {
      return i;
    }
  }
  return -1;
}

static int tt_hook_ok(tt_world *w, unsigned i) {
  if (i >= WORKERS) {
    tf_add(&w->bad_index, 1);
    return 0;
  }
  if (!tf_get(&w->started[i]) || !pthread_equal(w->threads[i], pthread_self())) {
    tf_add(&w->wrong_thread, 1);
  }
  if (tf_get(&w->stopped[i])) {
    tf_add(&w->after_stop, 1);
  }
  return 1;
}

static void tt_on_start(unsigned i, void *user_data) {
  tt_world *w = user_data;
  if (i >= WORKERS) {
    tf_add(&w->bad_index, 1);
    return;
  }
  if (tf_get(&w->started[i])) {
    tf_add(&w->twice_started, 1);
    return;
  }
  w->threads[i] = pthread_self();
  tf_set(&w->started[i], 1);
}

static void tt_on_stop(unsigned i, void *user_data) {
  tt_world *w = user_data;
  if (tt_hook_ok(w, i)) {
    tf_add(&w->stopped[i], 1);
  }
}

static void tt_on_park(unsigned i, void *user_data) {
  tt_world *w = user_data;
  if (tt_hook_ok(w, i)) {
    if (tf_get(&w->parked[i])) {
      tf_add(&w->unpaired, 1);
    }
    tf_set(&w->parked[i], 1);
    tf_add(&w->parks[i], 1);
  }
}

static void tt_on_unpark(unsigned i, void *user_data) {
  tt_world *w = user_data;
  if (tt_hook_ok(w, i)) {
    if (!tf_get(&w->parked[i])) {
      tf_add(&w->unpaired, 1);
    }
    tf_set(&w->parked[i], 0);
    tf_add(&w->unparks[i], 1);
  }
}

static void tt_finalize(void *user_data) {
  tt_world *w = user_data;
  int i;
  for (i = 0; i < WORKERS; i++) {
    if (!tf_get(&w->stopped[i])) {
      tf_add(&w->finalized_early, 1);
    }
  }
  tf_add(&w->finalized, 1);
}

/* Fails the current test if the hooks saw anything out of order, or if
 * finalize is not called exactly once (within a bound: it may come from a
 * worker thread just after the executor stopped). Call after the free. */
static void tt_check_world(tt_world *w) {
  CHECK(tf_wait_at_least(&w->finalized, 1, 5000));
  tf_sleep_ms(1);
  CHECK_INT(tf_get(&w->finalized), 1);
  CHECK_INT(tf_get(&w->bad_index), 0);
  CHECK_INT(tf_get(&w->wrong_thread), 0);
  CHECK_INT(tf_get(&w->unpaired), 0);
  CHECK_INT(tf_get(&w->after_stop), 0);
  CHECK_INT(tf_get(&w->twice_started), 0);
  CHECK_INT(tf_get(&w->finalized_early), 0);
  CHECK_INT(tf_get(&w->foreign_polls), 0);
}

/* A thread-per-core executor with WORKERS workers and the world's hooks. */
/* A WORKERS-worker executor whose hooks record into w; memory_limit 0: none. */
static asyncrt_executor *tt_executor_capped(tt_world *w, uint64_t shutdown_timeout_ns, uint64_t memory_limit) {
  asyncrt_executor_config cfg;
  asyncrt_thread_hooks hooks;
  asyncrt_executor *ex = NULL;
  int rc;
  if (w == NULL) {
    return NULL;
  }
  memset(&hooks, 0, sizeof hooks);
  hooks.size = sizeof hooks;
  hooks.on_start = tt_on_start;
  hooks.on_stop = tt_on_stop;
  hooks.on_park = tt_on_park;
  hooks.on_unpark = tt_on_unpark;
  hooks.user_data = w;
  hooks.finalize = tt_finalize;
  asyncrt_executor_config_init(&cfg);
  cfg.kind = ASYNCRT_EXECUTOR_THREADS;
  cfg.workers = WORKERS;
  cfg.hooks = &hooks;
  cfg.shutdown_timeout_ns = shutdown_timeout_ns;
  cfg.memory_limit = memory_limit;
  rc = asyncrt_executor_new(&cfg, &ex);
  if (rc != ASYNCRT_OK) {
    fprintf(stderr, "  asyncrt_executor_new(THREADS, %d workers): got %s, want ASYNCRT_OK (%s)\n",
            WORKERS, asyncrt_status_str(rc), asyncrt_last_error());
    return NULL;
  }
  return ex;
}

static asyncrt_executor *tt_executor(tt_world *w, uint64_t shutdown_timeout_ns) {
  return tt_executor_capped(w, shutdown_timeout_ns, 0);
}

/* --- tt_fut: a scripted future that records where it ran ------------------ */

enum { TT_SELF_WAKE, TT_YIELD, TT_PARK };

typedef struct tt_fut {
  /* the script */
  tt_world *world;
  int mode;           /* how it waits between steps (TT_SELF_WAKE, ...) */
  int steps;          /* pending (or yielded) returns before it finishes; TT_FOREVER */
  const int *stop;    /* if set: finish once *stop is nonzero */
  int busy_ms;        /* the first poll takes this long, or until *release */
  int spin_us;        /* every poll busy-waits this long: work worth stealing */
  const int *release;
  uint64_t value;
  int step;
  /* what happened */
  int polls, drops, bad_polls, finished;
  pthread_t first_thread;
  int first_worker; /* -1: polled on a thread that is no worker */
  int moved;        /* polls on a thread other than the first poll's */
  pthread_t drop_thread;
  int drop_worker; /* -1: dropped on a thread that is no worker */
  int64_t drop_ns;
  asyncrt_executor *executor; /* asyncrt_context_executor at the first poll */
  /* TT_PARK: a clone of the task's waker, taken at the first poll. It is the
   * test's: the future never drops it (tt_drop_waker does). */
  int waker_flag;
  asyncrt_waker waker;
} tt_fut;

static void tt_busy(tt_fut *f) {
  int64_t until = tf_now_ns() + (int64_t)f->busy_ms * TF_MS_NS;
  while (tf_now_ns() < until && !(f->release != NULL && tf_get(f->release))) {
    tf_sleep_ms(1); /* the worker is taken either way; leave the CPU to others */
  }
}

static int tt_finish(tt_fut *f, void *out) {
  memcpy(out, &f->value, sizeof f->value);
  tf_set(&f->finished, 1);
  return ASYNCRT_POLL_READY;
}

static int tt_poll(void *self, asyncrt_context *cx, void *out) {
  tt_fut *f = self;
  pthread_t me = pthread_self();
  uint64_t item;
  if (tf_get(&f->finished) || tf_get(&f->drops)) {
    tf_add(&f->bad_polls, 1);
  }
  if (tf_add(&f->polls, 1) == 1) {
    f->first_thread = me;
    f->first_worker = tt_worker_of(f->world, me);
    f->executor = asyncrt_context_executor(cx);
  } else if (!pthread_equal(me, f->first_thread)) {
    tf_add(&f->moved, 1);
  }
  if (tt_worker_of(f->world, me) < 0) {
    tf_add(&f->world->foreign_polls, 1);
  }
  if (f->busy_ms > 0 && tf_get(&f->polls) == 1) {
    tt_busy(f);
  }
  if (f->spin_us > 0) {
    int64_t until = tf_now_ns() + (int64_t)f->spin_us * 1000;
    while (tf_now_ns() < until) {
    }
  }
  if ((f->stop != NULL && tf_get(f->stop)) || (f->steps != TT_FOREVER && f->step >= f->steps) ||
      (f->steps == TT_FOREVER && tf_now_ns() > tt_give_up_ns)) {
    return tt_finish(f, out);
  }
  f->step++;
  switch (f->mode) {
  case TT_YIELD:
    item = (uint64_t)f->step;
    memcpy(out, &item, sizeof item);
    return ASYNCRT_POLL_YIELDED;
  case TT_PARK:
    if (!tf_get(&f->waker_flag)) {
      asyncrt_waker_clone(asyncrt_context_waker(cx), &f->waker);
      tf_set(&f->waker_flag, 1);
    }
    return ASYNCRT_POLL_PENDING;
  default:
    asyncrt_waker_wake_by_ref(asyncrt_context_waker(cx));
    return ASYNCRT_POLL_PENDING;
  }
}

static void tt_drop(void *self) {
  tt_fut *f = self;
  f->drop_thread = pthread_self();
  f->drop_worker = tt_worker_of(f->world, f->drop_thread);
  f->drop_ns = tf_now_ns();
  tf_add(&f->drops, 1);
  tf_add(&f->world->dropped, 1);
}

static const asyncrt_future_vtable tt_vtable = {sizeof(asyncrt_future_vtable), sizeof(uint64_t),
                                                tt_poll, tt_drop, NULL};

/* n zeroed futures of `world` with the given script. */
static tt_fut *tt_futs(tt_world *world, int n, int mode, int steps) {
  tt_fut *fs = calloc((size_t)n, sizeof *fs);
  int i;
  for (i = 0; fs != NULL && i < n; i++) {
    fs[i].world = world;
    fs[i].mode = mode;
    fs[i].steps = steps;
    fs[i].value = 1000u + (uint64_t)i;
    fs[i].first_worker = -2;
    fs[i].drop_worker = -2;
  }
  return fs;
}

static int tt_spawn(asyncrt_executor *ex, tt_fut *f, unsigned flags, asyncrt_task **out) {
  asyncrt_future fut;
  fut.self = f;
  fut.vtable = &tt_vtable;
  return asyncrt_spawn(ex, &fut, flags, out);
}

static void tt_drop_waker(tt_fut *f) {
  if (tf_get(&f->waker_flag)) {
    asyncrt_waker_drop(&f->waker);
  }
}

/* Waits until the task has completed (or failed, or been cancelled). */
static int tt_wait_task(asyncrt_task *task, int timeout_ms) {
  int64_t deadline = tf_now_ns() + (int64_t)timeout_ms * TF_MS_NS;
  int rc;
  while ((rc = asyncrt_task_status(task)) == ASYNCRT_EAGAIN && tf_now_ns() < deadline) {
    tf_sleep_ms(1);
  }
  return rc;
}

static asyncrt_worker_stats tt_worker_stats(asyncrt_executor *ex, unsigned worker) {
  asyncrt_worker_stats s;
  memset(&s, 0xff, sizeof s);
  s.size = sizeof s;
  if (asyncrt_worker_stats_get(ex, worker, &s) != ASYNCRT_OK) {
    memset(&s, 0xff, sizeof s);
  }
  return s;
}

/* A joiner run by block_on on a local executor: how a test reads a join. */
static int tt_join_status(asyncrt_task *task) {
  asyncrt_executor *local = tf_executor();
  asyncrt_future join;
  uint64_t out = 0;
  int rc;
  if (local == NULL) {
    return -1;
  }
  rc = asyncrt_task_join(task, &join);
  if (rc == ASYNCRT_OK) {
    rc = asyncrt_block_on(local, &join, &out, TF_TIMEOUT_NS);
  }
  asyncrt_executor_free(local);
  return rc;
}

/* --- capabilities and what each kind refuses ----------------------------- */

static int null_schedules;
static void null_schedule(void *user_data, asyncrt_runnable *r) {
  (void)user_data;
  (void)r;
  tf_add(&null_schedules, 1);
}
static const asyncrt_foreign_vtable null_foreign = {sizeof(asyncrt_foreign_vtable), null_schedule,
                                                    NULL};

static void test_capabilities_and_refusals(void) {
  /* the header's lists; every kind has timers and subsystems (none of these
   * was made with a test clock) */
  const unsigned every = ASYNCRT_CAP_TIMERS | ASYNCRT_CAP_SUBSYSTEMS | ASYNCRT_CAP_SCOPES;
  const unsigned local_want = ASYNCRT_CAP_SPAWN_LOCAL | ASYNCRT_CAP_SPAWN_SEND |
                              ASYNCRT_CAP_TASK_REMOVAL | ASYNCRT_CAP_STEPPED |
                              ASYNCRT_CAP_BLOCK_ON | ASYNCRT_CAP_PLACEMENT | every;
  const unsigned one_worker_want = ASYNCRT_CAP_SPAWN_LOCAL | ASYNCRT_CAP_SPAWN_SEND |
                                   ASYNCRT_CAP_TASK_REMOVAL | ASYNCRT_CAP_BLOCK_ON |
                                   ASYNCRT_CAP_PLACEMENT | ASYNCRT_CAP_SHUTDOWN | every;
  const unsigned threads_want =
      one_worker_want | ASYNCRT_CAP_WORK_STEALING | ASYNCRT_CAP_MULTI_THREAD;
  const unsigned foreign_want = ASYNCRT_CAP_SPAWN_LOCAL | ASYNCRT_CAP_SPAWN_SEND |
                                ASYNCRT_CAP_TASK_REMOVAL | every;
  tt_world *w = tt_world_new();
  asyncrt_executor *local = tf_executor(), *threads = tt_executor(w, 0), *foreign = NULL;
  asyncrt_executor_config cfg;
  asyncrt_thread_hooks hooks;
  asyncrt_executor *bad = NULL;
  asyncrt_worker_stats ws;
  asyncrt_executor *one = NULL;
  asyncrt_hostq *q = NULL;
  asyncrt_allocator small_allocator;
  tt_world *unused = tt_world_new();
  tt_fut *f = tt_futs(w, 4, TT_SELF_WAKE, 0);
  unsigned caps = 0;
  uint64_t polls = 0, out = 0;
  int fd = -1;
  CHECK(local != NULL && threads != NULL && f != NULL && unused != NULL);
  CHECK_OK(asyncrt_executor_new_foreign(&null_foreign, NULL, &foreign));

  CHECK_OK(asyncrt_executor_capabilities(local, &caps));
  CHECK_INT(caps, local_want);
  CHECK_OK(asyncrt_executor_capabilities(threads, &caps));
  CHECK_INT(caps, threads_want);
  CHECK_OK(asyncrt_executor_capabilities(foreign, &caps));
  CHECK_INT(caps, foreign_want);
  asyncrt_executor_config_init(&cfg);
  cfg.kind = ASYNCRT_EXECUTOR_THREADS;
  cfg.workers = 1;
  CHECK_OK(asyncrt_executor_new(&cfg, &one));
  CHECK_OK(asyncrt_executor_capabilities(one, &caps));
  CHECK_INT(caps, one_worker_want);
  CHECK_INT(tf_stats(one).workers, 1);
  CHECK_OK(asyncrt_executor_free(one));
  CHECK_STATUS(asyncrt_executor_capabilities(threads, NULL), ASYNCRT_EINVAL);

  /* a host cannot step a thread-per-core or a foreign executor */
  CHECK_STATUS(asyncrt_run(threads, &polls), ASYNCRT_ENOTSUP);
  CHECK_STATUS(asyncrt_run_step(threads, 10, 0, &polls), ASYNCRT_ENOTSUP);
  CHECK_STATUS(asyncrt_executor_fd(threads, &fd), ASYNCRT_ENOTSUP);
  CHECK_STATUS(asyncrt_run(foreign, &polls), ASYNCRT_ENOTSUP);
  CHECK_STATUS(asyncrt_run_step(foreign, 10, 0, &polls), ASYNCRT_ENOTSUP);
  CHECK_STATUS(asyncrt_executor_fd(foreign, &fd), ASYNCRT_ENOTSUP);
  /* nor block_on a foreign one; the future is taken, so dropped at once */
  {
    asyncrt_future fut = {&f[0], &tt_vtable};
    CHECK_STATUS(asyncrt_block_on(foreign, &fut, &out, TF_TIMEOUT_NS), ASYNCRT_ENOTSUP);
    CHECK_INT(tf_get(&f[0].drops), 1);
    CHECK_INT(tf_get(&f[0].polls), 0);
  }
  CHECK_INT(tf_get(&null_schedules), 0);
  /* only thread-per-core executors shut down */
  CHECK_STATUS(asyncrt_executor_shutdown(local, ASYNCRT_SHUTDOWN_IMMEDIATE, TF_TIMEOUT_NS),
               ASYNCRT_ENOTSUP);
  CHECK_STATUS(asyncrt_executor_shutdown(foreign, ASYNCRT_SHUTDOWN_IMMEDIATE, TF_TIMEOUT_NS),
               ASYNCRT_ENOTSUP);
  CHECK_STATUS(asyncrt_executor_shutdown(threads, 7, TF_TIMEOUT_NS), ASYNCRT_EINVAL);

  /* host queues would have workers poll host futures */
  CHECK_STATUS(asyncrt_hostq_new(threads, &q), ASYNCRT_ENOTSUP);

  /* workers: two on threads, one (index 0) on local and foreign */
  CHECK_INT(tf_stats(threads).workers, WORKERS);
  CHECK_INT(tf_stats(local).workers, 1);
  CHECK_INT(tf_stats(foreign).workers, 1);
  ws.size = sizeof ws;
  CHECK_OK(asyncrt_worker_stats_get(threads, 0, &ws));
  CHECK_OK(asyncrt_worker_stats_get(threads, WORKERS - 1, &ws));
  CHECK_STATUS(asyncrt_worker_stats_get(threads, WORKERS, &ws), ASYNCRT_EINVAL);
  CHECK_OK(asyncrt_worker_stats_get(local, 0, &ws));
  CHECK_STATUS(asyncrt_worker_stats_get(local, 1, &ws), ASYNCRT_EINVAL);
  ws.size = 8;
  CHECK_STATUS(asyncrt_worker_stats_get(threads, 0, &ws), ASYNCRT_EINVAL);

  /* placement past the last worker is refused, and the future dropped */
  CHECK_STATUS(tt_spawn(threads, &f[1], ASYNCRT_SPAWN_WORKER(WORKERS), NULL), ASYNCRT_EINVAL);
  CHECK_INT(tf_get(&f[1].drops), 1);
  CHECK_STATUS(tt_spawn(threads, &f[2], ASYNCRT_SPAWN_SEND | ASYNCRT_SPAWN_WORKER(WORKERS), NULL),
               ASYNCRT_EINVAL);
  CHECK_INT(tf_get(&f[2].drops), 1);
  CHECK_INT(tf_get(&f[1].polls) + tf_get(&f[2].polls), 0);
  CHECK_STATUS(tt_spawn(threads, &f[3], 0x4u, NULL), ASYNCRT_EINVAL); /* an unknown flag */
  CHECK_INT(tf_get(&f[3].drops), 1);

  /* a hooks struct older than asyncrt 0.1's is refused */
  memset(&hooks, 0, sizeof hooks);
  hooks.size = sizeof(size_t);
  asyncrt_executor_config_init(&cfg);
  cfg.kind = ASYNCRT_EXECUTOR_THREADS;
  cfg.workers = WORKERS;
  cfg.hooks = &hooks;
  CHECK_STATUS(asyncrt_executor_new(&cfg, &bad), ASYNCRT_EINVAL);
  /* a config refused before the workers start: finalize is not called */
  memset(&hooks, 0, sizeof hooks);
  hooks.size = sizeof hooks;
  hooks.on_start = tt_on_start;
  hooks.user_data = unused;
  hooks.finalize = tt_finalize;
  memset(&small_allocator, 0, sizeof small_allocator);
  small_allocator.size = sizeof(size_t);
  cfg.allocator = &small_allocator;
  CHECK_STATUS(asyncrt_executor_new(&cfg, &bad), ASYNCRT_EINVAL);
  tf_sleep_ms(5);
  CHECK_INT(tf_get(&unused->finalized) + tf_get(&unused->started[0]), 0);

  CHECK_OK(asyncrt_executor_free(foreign));
  CHECK_OK(asyncrt_executor_free(local));
  CHECK_OK(asyncrt_executor_free(threads));
  tt_check_world(w);
  CHECK_PASSED();
  free(f);
  free(w);
  free(unused);
}

/* --- the context ---------------------------------------------------------- */

/* asyncrt_context_executor names the executor on every worker, for local and
 * Send tasks alike, and spawning through it works (a task lands on the
 * worker that spawned it). */
typedef struct ctx_probe {
  tt_world *world;
  asyncrt_executor *seen;
  int worker;   /* where it ran */
  int spawn_rc; /* spawning a child through the context */
  tt_fut child;
  int done;
} ctx_probe;

static int ctx_probe_poll(void *self, asyncrt_context *cx, void *out) {
  ctx_probe *p = self;
  asyncrt_future f;
  (void)out;
  p->seen = asyncrt_context_executor(cx);
  p->worker = tt_worker_of(p->world, pthread_self());
  f.self = &p->child;
  f.vtable = &tt_vtable;
  p->spawn_rc = asyncrt_spawn(p->seen, &f, ASYNCRT_SPAWN_LOCAL, NULL);
  tf_set(&p->done, 1);
  return ASYNCRT_POLL_READY;
}

static const asyncrt_future_vtable ctx_probe_vtable = {sizeof(asyncrt_future_vtable), 0,
                                                       ctx_probe_poll, NULL, NULL};

static void test_context_names_the_executor_on_every_worker(void) {
  static const unsigned flags[4] = {ASYNCRT_SPAWN_WORKER(0), ASYNCRT_SPAWN_WORKER(1),
                                    ASYNCRT_SPAWN_SEND | ASYNCRT_SPAWN_WORKER(0),
                                    ASYNCRT_SPAWN_SEND | ASYNCRT_SPAWN_WORKER(1)};
  tt_world *w = tt_world_new();
  asyncrt_executor *ex = tt_executor(w, 0);
  ctx_probe *ps = calloc(4, sizeof *ps);
  int i;
  CHECK(ex != NULL && ps != NULL);
  for (i = 0; i < 4; i++) {
    asyncrt_future f;
    ps[i].world = ps[i].child.world = w;
    f.self = &ps[i];
    f.vtable = &ctx_probe_vtable;
    CHECK_OK(asyncrt_spawn(ex, &f, flags[i], NULL));
    CHECK(tf_wait_flag(&ps[i].done, 5000));
    CHECK(tf_wait_at_least(&ps[i].child.drops, ps[i].spawn_rc == ASYNCRT_OK ? 1 : 0, 5000));
  }
  for (i = 0; i < 4; i++) {
    if (ps[i].seen != ex) {
      fprintf(stderr, "  a %s task on worker %d: asyncrt_context_executor gave %p, want %p\n",
              i < 2 ? "local" : "Send", ps[i].worker, (void *)ps[i].seen, (void *)ex);
    }
  }
  for (i = 0; i < 4; i++) {
    CHECK(ps[i].seen == ex);
    CHECK_OK(ps[i].spawn_rc);
    CHECK_INT(ps[i].child.first_worker, ps[i].worker);
    CHECK(ps[i].child.executor == ex);
  }
  CHECK_INT(ps[0].worker, 0);
  CHECK_INT(ps[1].worker, 1);
  CHECK_OK(asyncrt_executor_free(ex));
  tt_check_world(w);
  CHECK_PASSED();
  free(ps);
  free(w);
}

/* --- a million tasks ------------------------------------------------------ */

#define MILLION 1000000
#define MAIN_SPAWNS 200000 /* spawned from the main thread; the rest from tasks */
#define SPAWN_BATCH 4096

/* One byte of counters per task, so a million fit in 4 MB. */
typedef struct m_slot {
  unsigned char polls, drops, pendings, bad;
} m_slot;

static m_slot *m_slots;
static int m_completed, m_dropped, m_spawn_failures;
static int m_first_failure; /* the status of the first failed spawn from a task */
static int m_null_executor; /* polls that found no executor in their context */

static int m_poll(void *self, asyncrt_context *cx, void *out) {
  m_slot *s = self;
  unsigned char n = __atomic_add_fetch(&s->polls, 1, __ATOMIC_ACQ_REL);
  (void)out;
  if (__atomic_load_n(&s->drops, __ATOMIC_ACQUIRE) || n > s->pendings + 1) {
    __atomic_store_n(&s->bad, 1, __ATOMIC_RELEASE);
  }
  if (n <= s->pendings) {
    asyncrt_waker_wake_by_ref(asyncrt_context_waker(cx));
    return ASYNCRT_POLL_PENDING;
  }
  tf_add(&m_completed, 1);
  return ASYNCRT_POLL_READY;
}

static void m_drop(void *self) {
  m_slot *s = self;
  __atomic_add_fetch(&s->drops, 1, __ATOMIC_ACQ_REL);
  tf_add(&m_dropped, 1);
}

static const asyncrt_future_vtable m_vtable = {sizeof(asyncrt_future_vtable), 0, m_poll, m_drop,
                                               NULL};

/* Slots [next, end) spawned from a task, SPAWN_BATCH per poll, alternating
 * local and Send; every third task returns pending once first. */
typedef struct m_spawner {
  int next, end;
} m_spawner;

static unsigned m_flags(int i) { return (i & 1) ? ASYNCRT_SPAWN_SEND : ASYNCRT_SPAWN_LOCAL; }

static int m_spawn_one(asyncrt_executor *ex, int i, unsigned placement) {
  asyncrt_future f;
  m_slots[i].pendings = (unsigned char)(i % 3 == 0);
  f.self = &m_slots[i];
  f.vtable = &m_vtable;
  return asyncrt_spawn(ex, &f, m_flags(i) | placement, NULL);
}

static int m_spawner_poll(void *self, asyncrt_context *cx, void *out) {
  m_spawner *sp = self;
  int stop = sp->next + SPAWN_BATCH < sp->end ? sp->next + SPAWN_BATCH : sp->end;
  (void)out;
  asyncrt_executor *ex = asyncrt_context_executor(cx);
  int rc;
  if (ex == NULL) {
    tf_add(&m_null_executor, 1);
  }
  for (; sp->next < stop; sp->next++) {
    if ((rc = m_spawn_one(ex, sp->next, 0)) != ASYNCRT_OK &&
        tf_add(&m_spawn_failures, 1) == 1) {
      tf_set(&m_first_failure, rc);
    }
  }
  if (sp->next < sp->end) {
    asyncrt_waker_wake_by_ref(asyncrt_context_waker(cx));
    return ASYNCRT_POLL_PENDING;
  }
  return ASYNCRT_POLL_READY;
}

static const asyncrt_future_vtable m_spawner_vtable = {sizeof(asyncrt_future_vtable), 0,
                                                       m_spawner_poll, NULL, NULL};

static void test_million_tasks_complete_once(void) {
  tt_world *w = tt_world_new();
  asyncrt_executor *ex = tt_executor(w, 0);
  m_spawner *spawners = calloc(WORKERS, sizeof *spawners);
  asyncrt_worker_stats ws;
  uint64_t polls_sum = 0, want_polls = MILLION;
  int64_t t0 = tf_now_ns();
  int i, per = (MILLION - MAIN_SPAWNS) / WORKERS, bad = 0, first_bad = -1;
  CHECK(ex != NULL && spawners != NULL);
  m_slots = calloc(MILLION, sizeof *m_slots);
  CHECK(m_slots != NULL);
  for (i = 0; i < WORKERS; i++) {
    asyncrt_future f;
    spawners[i].next = MAIN_SPAWNS + i * per;
    spawners[i].end = MAIN_SPAWNS + (i + 1) * per;
    f.self = &spawners[i];
    f.vtable = &m_spawner_vtable;
    CHECK_OK(asyncrt_spawn(ex, &f, ASYNCRT_SPAWN_WORKER(i), NULL));
  }
  for (i = 0; i < MAIN_SPAWNS; i++) {
    int rc = m_spawn_one(ex, i, 0);
    if (rc != ASYNCRT_OK) {
      CHECK_OK(rc);
    }
  }
  if (!tf_wait_at_least(&m_dropped, MILLION, 20000)) {
    fprintf(stderr, "  after 20 s: %d of %d tasks completed, %d dropped\n", tf_get(&m_completed),
            MILLION, tf_get(&m_dropped));
    CHECK(0);
  }
  printf("       %d tasks (local and Send, 2 workers) in %lld ms\n", MILLION,
         (long long)((tf_now_ns() - t0) / TF_MS_NS));
  if (tf_get(&m_spawn_failures)) {
    fprintf(stderr, "  %d spawns from inside polls failed, the first with %s; %d spawner polls "
            "found asyncrt_context_executor(cx) == NULL\n", tf_get(&m_spawn_failures),
            asyncrt_status_str(tf_get(&m_first_failure)), tf_get(&m_null_executor));
  }
  CHECK_INT(tf_get(&m_spawn_failures), 0);
  CHECK_INT(tf_get(&m_completed), MILLION);
  for (i = 0; i < MILLION; i++) {
    m_slot *s = &m_slots[i];
    if (__atomic_load_n(&s->polls, __ATOMIC_ACQUIRE) != s->pendings + 1 ||
        __atomic_load_n(&s->drops, __ATOMIC_ACQUIRE) != 1 || s->bad) {
      if (first_bad < 0) {
        first_bad = i;
      }
      bad++;
    }
    want_polls += s->pendings;
  }
  if (bad) {
    fprintf(stderr, "  %d tasks polled or dropped the wrong number of times; task %d: polls %d "
            "(want %d), drops %d\n", bad, first_bad, m_slots[first_bad].polls,
            m_slots[first_bad].pendings + 1, m_slots[first_bad].drops);
  }
  CHECK_INT(bad, 0);
  CHECK_OK(asyncrt_executor_shutdown(ex, ASYNCRT_SHUTDOWN_GRACEFUL, TF_TIMEOUT_NS));
  for (i = 0; i < WORKERS; i++) {
    ws = tt_worker_stats(ex, (unsigned)i);
    CHECK(ws.polls > 0 && ws.polls != UINT64_MAX); /* both workers ran tasks */
    polls_sum += ws.polls;
  }
  CHECK(polls_sum >= want_polls);
  CHECK_INT(tf_stats(ex).tasks_live, 0);
  CHECK_INT(tf_stats(ex).memory_in_use, 0);
  CHECK(tf_stats(ex).tasks_spawned >= MILLION + WORKERS);
  CHECK_INT(tf_get(&m_dropped), MILLION);
  CHECK_OK(asyncrt_executor_free(ex));
  CHECK_INT(tf_get(&m_dropped), MILLION);
  tt_check_world(w);
  CHECK_PASSED();
  free(m_slots);
  m_slots = NULL;
  free(spawners);
  free(w);
}

/* --- wakes from threads the runtime never saw ----------------------------- */

#define PINGERS 8
#define PING_ROUNDS 400

static void test_wakes_from_foreign_threads(void) {
  tt_world *w = tt_world_new();
  asyncrt_executor *ex = tt_executor(w, 0);
  tf_ping *ps = calloc(PINGERS, sizeof *ps);
  asyncrt_task *tasks[PINGERS];
  pthread_t th[PINGERS];
  int i;
  CHECK(ex != NULL && ps != NULL);
  for (i = 0; i < PINGERS; i++) {
    asyncrt_future f;
    tf_ping_init(&ps[i], PING_ROUNDS);
    f = tf_ping_future(&ps[i]);
    CHECK_OK(asyncrt_spawn(ex, &f, i < PINGERS / 2 ? ASYNCRT_SPAWN_LOCAL : ASYNCRT_SPAWN_SEND,
                           &tasks[i]));
  }
  for (i = 0; i < PINGERS; i++) {
    CHECK_INT(pthread_create(&th[i], NULL, tf_ping_thread, &ps[i]), 0);
  }
  for (i = 0; i < PINGERS; i++) {
    CHECK_INT(pthread_join(th[i], NULL), 0);
  }
  for (i = 0; i < PINGERS; i++) {
    if (ps[i].failed_round != -1) {
      fprintf(stderr, "  pinger %d (%s): round %d was not acknowledged within 5 s "
              "(0: the task never ran)\n", i, i < PINGERS / 2 ? "local" : "Send",
              ps[i].failed_round);
    }
    CHECK_INT(ps[i].failed_round, -1);
  }
  for (i = 0; i < PINGERS; i++) {
    CHECK_OK(tt_wait_task(tasks[i], 5000));
    CHECK(tf_wait_at_least(&ps[i].drops, 1, 5000));
    CHECK_INT(tf_get(&ps[i].drops), 1);
    if (i < PINGERS / 2) {
      CHECK_INT(tf_get(&ps[i].moved), 0);
    }
    CHECK(tt_worker_of(w, ps[i].first_thread) >= 0);
    CHECK(tt_worker_of(w, ps[i].drop_thread) >= 0);
    CHECK_OK(asyncrt_task_release(tasks[i]));
  }
  CHECK_OK(asyncrt_executor_shutdown(ex, ASYNCRT_SHUTDOWN_GRACEFUL, TF_TIMEOUT_NS));
  CHECK_OK(asyncrt_executor_free(ex));
  for (i = 0; i < PINGERS; i++) {
    CHECK_INT(tf_get(&ps[i].drops), 1);
  }
  tt_check_world(w);
  CHECK_PASSED();
  free(ps);
  free(w);
}

/* --- placement and stealing ----------------------------------------------- */

#define LOCAL_ON_0 48
#define LOCAL_ON_1 16
#define LOCAL_STEPS 1000
#define SENDS 1000
#define SEND_STEPS 10
#define SEND_SPIN_US 20 /* 1000 x 11 polls x 20 us: ~0.2 s of work on worker 0 */

/* Local tasks that yield many times never change threads, while Send tasks
 * placed on the same worker are stolen around them by the other one. */
static void test_local_tasks_never_move(void) {
  tt_world *w = tt_world_new();
  asyncrt_executor *ex = tt_executor(w, 0);
  tt_fut *locals = tt_futs(w, LOCAL_ON_0 + LOCAL_ON_1, TT_SELF_WAKE, LOCAL_STEPS);
  tt_fut *sends = tt_futs(w, SENDS, TT_SELF_WAKE, SEND_STEPS);
  int i, stolen = 0, total = LOCAL_ON_0 + LOCAL_ON_1 + SENDS;
  CHECK(ex != NULL && locals != NULL && sends != NULL);
  for (i = 0; i < SENDS; i++) {
    sends[i].spin_us = SEND_SPIN_US;
  }
  for (i = 0; i < LOCAL_ON_0 + LOCAL_ON_1; i++) {
    if (i % 2) {
      locals[i].mode = TT_YIELD;
    }
  }
  /* interleaved: local tasks on worker 0, Send tasks placed on worker 0 */
  for (i = 0; i < LOCAL_ON_0; i++) {
    int k;
    CHECK_OK(tt_spawn(ex, &locals[i], ASYNCRT_SPAWN_WORKER(0), NULL));
    for (k = i * SENDS / LOCAL_ON_0; k < (i + 1) * SENDS / LOCAL_ON_0; k++) {
      CHECK_OK(tt_spawn(ex, &sends[k], ASYNCRT_SPAWN_SEND | ASYNCRT_SPAWN_WORKER(0), NULL));
    }
  }
  for (i = LOCAL_ON_0; i < LOCAL_ON_0 + LOCAL_ON_1; i++) {
    CHECK_OK(tt_spawn(ex, &locals[i], ASYNCRT_SPAWN_WORKER(1), NULL));
  }
  if (!tf_wait_at_least(&w->dropped, total, 10000)) {
    fprintf(stderr, "  after 10 s: %d of %d futures dropped\n", tf_get(&w->dropped), total);
    CHECK(0);
  }
  for (i = 0; i < LOCAL_ON_0 + LOCAL_ON_1; i++) {
    tt_fut *f = &locals[i];
    int want_worker = i < LOCAL_ON_0 ? 0 : 1;
    if (tf_get(&f->moved) != 0 || f->first_worker != want_worker) {
      fprintf(stderr, "  local task %d placed on worker %d: first polled on worker %d, then "
              "%d polls on another thread\n", i, want_worker, f->first_worker, f->moved);
    }
    CHECK_INT(tf_get(&f->moved), 0);
    CHECK_INT(f->first_worker, want_worker);
    CHECK_INT(f->drop_worker, want_worker);
    CHECK_INT(tf_get(&f->polls), LOCAL_STEPS + 1);
    CHECK_INT(tf_get(&f->drops), 1);
    CHECK_INT(tf_get(&f->bad_polls), 0);
  }
  for (i = 0; i < SENDS; i++) {
    tt_fut *f = &sends[i];
    CHECK_INT(tf_get(&f->polls), SEND_STEPS + 1);
    CHECK_INT(tf_get(&f->drops), 1);
    CHECK_INT(tf_get(&f->bad_polls), 0);
    CHECK(f->first_worker >= 0 && f->drop_worker >= 0);
    stolen += f->first_worker == 1 || tf_get(&f->moved) > 0;
  }
  printf("       %d of %d Send tasks placed on worker 0 ran on worker 1 (steals: %llu by worker "
         "1, %llu by worker 0)\n", stolen, SENDS, (unsigned long long)tt_worker_stats(ex, 1).steals,
         (unsigned long long)tt_worker_stats(ex, 0).steals);
  CHECK(stolen > 0);
  CHECK(tt_worker_stats(ex, 1).steals > 0);
  CHECK_OK(asyncrt_executor_shutdown(ex, ASYNCRT_SHUTDOWN_GRACEFUL, TF_TIMEOUT_NS));
  CHECK_OK(asyncrt_executor_free(ex));
  tt_check_world(w);
  CHECK_PASSED();
  free(locals);
  free(sends);
  free(w);
}

#define STOLEN 100

/* Worker 0 is stuck in one long poll: the Send tasks placed on it can only
 * run if worker 1 steals them. */
static void test_send_tasks_stolen_from_busy_worker(void) {
  tt_world *w = tt_world_new();
  asyncrt_executor *ex = tt_executor(w, 0);
  tt_fut *busy = tt_futs(w, 1, TT_SELF_WAKE, 0);
  tt_fut *sends = tt_futs(w, STOLEN, TT_SELF_WAKE, 0);
  int *release = calloc(1, sizeof *release);
  asyncrt_worker_stats s0, s1;
  int i;
  CHECK(ex != NULL && busy != NULL && sends != NULL && release != NULL);
  busy->busy_ms = 5000;
  busy->release = release;
  CHECK_OK(tt_spawn(ex, busy, ASYNCRT_SPAWN_WORKER(0), NULL));
  CHECK(tf_wait_at_least(&busy->polls, 1, 5000));
  for (i = 0; i < STOLEN; i++) {
    CHECK_OK(tt_spawn(ex, &sends[i], ASYNCRT_SPAWN_SEND | ASYNCRT_SPAWN_WORKER(0), NULL));
  }
  if (!tf_wait_at_least(&w->dropped, STOLEN, 3000)) {
    fprintf(stderr, "  %d of %d Send tasks ran while worker 0 was busy: worker 1 did not steal "
            "them\n", tf_get(&w->dropped), STOLEN);
    tf_set(release, 1);
    CHECK(0);
  }
  CHECK_INT(tf_get(&busy->drops), 0); /* still in its poll */
  for (i = 0; i < STOLEN; i++) {
    CHECK_INT(sends[i].first_worker, 1);
    CHECK_INT(tf_get(&sends[i].polls), 1);
    CHECK_INT(tf_get(&sends[i].drops), 1);
  }
  s1 = tt_worker_stats(ex, 1);
  CHECK(s1.steals >= STOLEN && s1.steals != UINT64_MAX);
  tf_set(release, 1);
  CHECK(tf_wait_at_least(&busy->drops, 1, 5000));
  CHECK_INT(busy->first_worker, 0);
  CHECK_INT(busy->drop_worker, 0);
  CHECK_OK(asyncrt_executor_shutdown(ex, ASYNCRT_SHUTDOWN_GRACEFUL, TF_TIMEOUT_NS));
  s0 = tt_worker_stats(ex, 0);
  s1 = tt_worker_stats(ex, 1);
  CHECK(s0.polls >= 1 && s1.polls >= STOLEN);
  CHECK_OK(asyncrt_executor_free(ex));
  tt_check_world(w);
  CHECK_PASSED();
  free(busy);
  free(sends);
  free(release);
  free(w);
}

/* --- the cooperative budget ----------------------------------------------- */

#define BUDGET_ROUNDS 20

/* Tasks on worker 0 that wake themselves (or yield) forever must not starve a
 * wake or a spawn that reaches worker 0 from another thread. */
static void test_budget_keeps_foreign_wakes_flowing(void) {
  tt_world *w = tt_world_new();
  asyncrt_executor *ex = tt_executor(w, 0);
  tt_fut *hogs = tt_futs(w, 2, TT_SELF_WAKE, TT_FOREVER);
  tt_fut *victim = tt_futs(w, 1, TT_PARK, TT_FOREVER);
  tt_fut *late = tt_futs(w, 1, TT_SELF_WAKE, 0);
  int *stop = calloc(1, sizeof *stop);
  int r, hog_polls;
  CHECK(ex != NULL && hogs != NULL && victim != NULL && late != NULL && stop != NULL);
  hogs[1].mode = TT_YIELD;
  hogs[0].stop = hogs[1].stop = victim->stop = stop;
  CHECK_OK(tt_spawn(ex, victim, ASYNCRT_SPAWN_WORKER(0), NULL));
  CHECK(tf_wait_flag(&victim->waker_flag, 5000));
  CHECK_OK(tt_spawn(ex, &hogs[0], ASYNCRT_SPAWN_WORKER(0), NULL));
  CHECK_OK(tt_spawn(ex, &hogs[1], ASYNCRT_SPAWN_WORKER(0), NULL));
  CHECK(tf_wait_at_least(&hogs[0].polls, 1000, 5000));
  CHECK(tf_wait_at_least(&hogs[1].polls, 1000, 5000));
  for (r = 1; r <= BUDGET_ROUNDS; r++) {
    int before = tf_get(&victim->polls);
    asyncrt_waker_wake_by_ref(&victim->waker);
    if (!tf_wait_at_least(&victim->polls, before + 1, 2000)) {
      fprintf(stderr, "  round %d: a wake of a task on worker 0 from the main thread was not "
              "served within 2 s while two tasks there kept waking themselves\n", r);
      tf_set(stop, 1);
      CHECK(0);
    }
  }
  CHECK_OK(tt_spawn(ex, late, ASYNCRT_SPAWN_WORKER(0), NULL));
  if (!tf_wait_at_least(&late->drops, 1, 2000)) {
    tf_set(stop, 1);
    CHECK(0);
  }
  hog_polls = tf_get(&hogs[0].polls);
  CHECK(tf_wait_at_least(&hogs[0].polls, hog_polls + 1, 2000)); /* the hogs still run too */
  tf_set(stop, 1);
  asyncrt_waker_wake_by_ref(&victim->waker);
  CHECK(tf_wait_at_least(&w->dropped, 4, 5000));
  CHECK_INT(victim->first_worker, 0);
  CHECK_INT(hogs[0].first_worker, 0);
  CHECK_INT(hogs[1].first_worker, 0);
  CHECK_INT(late->first_worker, 0);
  CHECK_INT(tf_get(&hogs[0].moved) + tf_get(&hogs[1].moved) + tf_get(&victim->moved), 0);
  tt_drop_waker(victim);
  CHECK_OK(asyncrt_executor_shutdown(ex, ASYNCRT_SHUTDOWN_GRACEFUL, TF_TIMEOUT_NS));
  CHECK_OK(asyncrt_executor_free(ex));
  tt_check_world(w);
  CHECK_PASSED();
  free(hogs);
  free(victim);
  free(late);
  free(stop);
  free(w);
}

/* --- block_on -------------------------------------------------------------- */

#define BLOCKERS 4
#define BLOCKS_EACH 50

typedef struct blocker {
  tt_world *world;
  asyncrt_executor *ex;
  int fails; /* block_on calls that went wrong */
  int first_rc;
} blocker;

static void *block_on_many(void *arg) {
  blocker *b = arg;
  int i;
  for (i = 0; i < BLOCKS_EACH; i++) {
    tt_fut *f = tt_futs(b->world, 1, TT_SELF_WAKE, 2);
    asyncrt_future fut;
    uint64_t out = 0;
    int rc;
    if (f == NULL) {
      b->fails++;
      continue;
    }
    f->value = (uint64_t)i * 3 + 1;
    fut.self = f;
    fut.vtable = &tt_vtable;
    rc = asyncrt_block_on(b->ex, &fut, &out, TF_TIMEOUT_NS);
    if (rc != ASYNCRT_OK || out != f->value || tf_get(&f->polls) != 3 || tf_get(&f->drops) != 1) {
      if (b->fails++ == 0) {
        b->first_rc = rc;
      }
      continue; /* leaked: a worker may still hold it */
    }
    free(f);
  }
  return NULL;
}

static void test_block_on_from_other_threads(void) {
  tt_world *w = tt_world_new();
  asyncrt_executor *ex = tt_executor(w, 0);
  tt_fut *f = tt_futs(w, 2, TT_SELF_WAKE, 3);
  blocker *bs = calloc(BLOCKERS, sizeof *bs);
  pthread_t th[BLOCKERS];
  asyncrt_future fut;
  uint64_t out = 0;
  int64_t t0, took;
  int i;
  CHECK(ex != NULL && f != NULL && bs != NULL);

  /* from the main thread: the future runs on a worker; it is dropped by the
   * time block_on returns */
  f[0].value = 99;
  fut.self = &f[0];
  fut.vtable = &tt_vtable;
  CHECK_OK(asyncrt_block_on(ex, &fut, &out, TF_TIMEOUT_NS));
  CHECK_INT(out, 99);
  CHECK_INT(tf_get(&f[0].polls), 4);
  CHECK_INT(tf_get(&f[0].drops), 1);
  CHECK(f[0].first_worker >= 0);
  CHECK(f[0].drop_worker >= 0);

  /* from several threads at once */
  for (i = 0; i < BLOCKERS; i++) {
    bs[i].world = w;
    bs[i].ex = ex;
    CHECK_INT(pthread_create(&th[i], NULL, block_on_many, &bs[i]), 0);
  }
  for (i = 0; i < BLOCKERS; i++) {
    CHECK_INT(pthread_join(th[i], NULL), 0);
  }
  for (i = 0; i < BLOCKERS; i++) {
    if (bs[i].fails) {
      fprintf(stderr, "  thread %d: %d of %d block_on calls went wrong; the first returned %s\n",
              i, bs[i].fails, BLOCKS_EACH, asyncrt_status_str(bs[i].first_rc));
    }
    CHECK_INT(bs[i].fails, 0);
  }

  /* a future that never finishes: cancelled at the timeout */
  f[1].mode = TT_PARK;
  f[1].steps = TT_FOREVER;
  fut.self = &f[1];
  t0 = tf_now_ns();
  CHECK_STATUS(asyncrt_block_on(ex, &fut, &out, 50 * TF_MS_NS), ASYNCRT_ETIMEDOUT);
  took = tf_now_ns() - t0;
  CHECK(took >= 45 * TF_MS_NS && took < 2 * TF_SECOND_NS);
  CHECK(tf_wait_at_least(&f[1].drops, 1, 5000));
  CHECK_INT(tf_get(&f[1].drops), 1);
  CHECK(f[1].drop_worker >= 0);
  tt_drop_waker(&f[1]);

  CHECK_OK(asyncrt_executor_shutdown(ex, ASYNCRT_SHUTDOWN_GRACEFUL, TF_TIMEOUT_NS));
  CHECK_OK(asyncrt_executor_free(ex));
  tt_check_world(w);
  CHECK_PASSED();
  free(f);
  free(bs);
  free(w);
}

/* A task on worker 0 awaits a task that lives on worker 1. */
static void test_join_across_workers(void) {
  tt_world *w = tt_world_new();
  asyncrt_executor *ex = tt_executor(w, 0);
  tt_fut *producer = tt_futs(w, 1, TT_PARK, 1);
  tf_joiner *joiner = calloc(1, sizeof *joiner);
  asyncrt_task *pt = NULL, *jt = NULL;
  asyncrt_future join, jf, jjoin;
  uint64_t out = 0;
  CHECK(ex != NULL && producer != NULL && joiner != NULL);
  producer->value = 4242;
  CHECK_OK(tt_spawn(ex, producer, ASYNCRT_SPAWN_WORKER(1), &pt));
  CHECK(tf_wait_flag(&producer->waker_flag, 5000));
  CHECK_OK(asyncrt_task_join(pt, &join));
  tf_joiner_init(joiner, &join, 1);
  jf = tf_joiner_future(joiner);
  CHECK_OK(asyncrt_spawn(ex, &jf, ASYNCRT_SPAWN_WORKER(0), &jt));
  CHECK_OK(asyncrt_task_join(jt, &jjoin));
  CHECK(tf_wait_at_least(&joiner->polls, 1, 5000)); /* the joiner waits */
  asyncrt_waker_wake_by_ref(&producer->waker);
  CHECK_OK(asyncrt_block_on(ex, &jjoin, &out, TF_TIMEOUT_NS));
  CHECK_INT(out, 4242);
  CHECK_INT(joiner->child_result, ASYNCRT_POLL_READY);
  CHECK_INT(joiner->got, 4242);
  CHECK_INT(tt_worker_of(w, joiner->poll_thread), 0);
  CHECK_INT(producer->first_worker, 1);
  CHECK_INT(tf_get(&producer->moved), 0);
  CHECK_INT(producer->drop_worker, 1);
  CHECK_OK(asyncrt_task_status(pt));
  CHECK_OK(asyncrt_task_release(pt));
  CHECK_OK(asyncrt_task_release(jt));
  tt_drop_waker(producer);
  CHECK_OK(asyncrt_executor_shutdown(ex, ASYNCRT_SHUTDOWN_GRACEFUL, TF_TIMEOUT_NS));
  CHECK_OK(asyncrt_executor_free(ex));
  CHECK_INT(joiner->drops, 1);
  tt_check_world(w);
  CHECK_PASSED();
  free(producer);
  free(joiner);
  free(w);
}

/* --- driving from a worker ------------------------------------------------- */

typedef struct reentry {
  tt_world *world;
  asyncrt_executor *ex, *local;
  tt_fut inner[2];
  int block_on, block_on_local, free, shutdown;
  int inner_drops; /* drops of the inner futures right after the calls */
  int done;
} reentry;

static int reentry_poll(void *self, asyncrt_context *cx, void *out) {
  reentry *r = self;
  asyncrt_future f;
  uint64_t inner_out = 0;
  (void)cx;
  (void)out;
  f.vtable = &tt_vtable;
  f.self = &r->inner[0];
  r->block_on = asyncrt_block_on(r->ex, &f, &inner_out, TF_TIMEOUT_NS);
  f.self = &r->inner[1];
  r->block_on_local = asyncrt_block_on(r->local, &f, &inner_out, TF_TIMEOUT_NS);
  r->inner_drops = tf_get(&r->inner[0].drops) + tf_get(&r->inner[1].drops);
  r->free = asyncrt_executor_free(r->ex);
  r->shutdown = asyncrt_executor_shutdown(r->ex, ASYNCRT_SHUTDOWN_IMMEDIATE, TF_TIMEOUT_NS);
  tf_set(&r->done, 1);
  return ASYNCRT_POLL_READY;
}

static const asyncrt_future_vtable reentry_vtable = {sizeof(asyncrt_future_vtable), 0,
                                                     reentry_poll, NULL, NULL};

/* block_on from inside a poll on a worker is EREENTRANT; free and shutdown
 * from a worker are EBUSY; the executor carries on. */
static void test_driving_from_a_worker(void) {
  static const unsigned flags[2] = {ASYNCRT_SPAWN_WORKER(0), ASYNCRT_SPAWN_SEND};
  tt_world *w = tt_world_new();
  asyncrt_executor *ex = tt_executor(w, 0), *local = tf_executor();
  reentry *rs = calloc(2, sizeof *rs);
  tt_fut *after = tt_futs(w, 1, TT_SELF_WAKE, 2);
  asyncrt_future f;
  uint64_t out = 0;
  int i;
  CHECK(ex != NULL && local != NULL && rs != NULL && after != NULL);
  for (i = 0; i < 2; i++) {
    reentry *r = &rs[i];
    r->world = w;
    r->ex = ex;
    r->local = local;
    r->inner[0].world = r->inner[1].world = w;
    f.self = r;
    f.vtable = &reentry_vtable;
    CHECK_OK(asyncrt_spawn(ex, &f, flags[i], NULL));
    CHECK(tf_wait_flag(&r->done, 5000));
    CHECK_STATUS(r->block_on, ASYNCRT_EREENTRANT);
    CHECK_STATUS(r->block_on_local, ASYNCRT_EREENTRANT);
    CHECK_INT(r->inner_drops, 2); /* taken, so dropped at once */
    CHECK_INT(tf_get(&r->inner[0].polls) + tf_get(&r->inner[1].polls), 0);
    CHECK_STATUS(r->free, ASYNCRT_EBUSY);
    CHECK_STATUS(r->shutdown, ASYNCRT_EBUSY);
  }
  after->value = 5;
  f.self = after;
  f.vtable = &tt_vtable;
  CHECK_OK(asyncrt_block_on(ex, &f, &out, TF_TIMEOUT_NS));
  CHECK_INT(out, 5);
  CHECK_OK(asyncrt_executor_free(ex));
  CHECK_OK(asyncrt_executor_free(local));
  tt_check_world(w);
  CHECK_PASSED();
  free(rs);
  free(after);
  free(w);
}

/* --- cancellation, ids, caller storage ----------------------------------- */

/* asyncrt_task_cancel from a thread that is no worker: each future is dropped
 * once, on the worker that owns it; a task cancelled inside its poll is
 * dropped when that poll returns, and a queued one without being polled. */
static void test_cancel_from_another_thread(void) {
  enum { PARK1, BUSY1, QUEUED1, SPIN0, SEND_PARK, INPOLL0, COUNT };
  tt_world *w = tt_world_new();
  asyncrt_executor *ex = tt_executor(w, 0);
  tt_fut *f = tt_futs(w, COUNT, TT_PARK, TT_FOREVER);
  asyncrt_task *tasks[COUNT];
  int *release = calloc(2, sizeof *release);
  int i;
  CHECK(ex != NULL && f != NULL && release != NULL);
  f[BUSY1].mode = TT_SELF_WAKE;
  f[BUSY1].steps = 0;
  f[BUSY1].busy_ms = 5000;
  f[BUSY1].release = &release[0];
  f[SPIN0].mode = TT_SELF_WAKE;
  f[INPOLL0].busy_ms = 5000;
  f[INPOLL0].release = &release[1];
  CHECK_OK(tt_spawn(ex, &f[PARK1], ASYNCRT_SPAWN_WORKER(1), &tasks[PARK1]));
  CHECK(tf_wait_flag(&f[PARK1].waker_flag, 5000));
  CHECK_OK(tt_spawn(ex, &f[BUSY1], ASYNCRT_SPAWN_WORKER(1), &tasks[BUSY1]));
  CHECK(tf_wait_at_least(&f[BUSY1].polls, 1, 5000));
  CHECK_OK(tt_spawn(ex, &f[QUEUED1], ASYNCRT_SPAWN_WORKER(1), &tasks[QUEUED1]));
  CHECK_OK(tt_spawn(ex, &f[SPIN0], ASYNCRT_SPAWN_WORKER(0), &tasks[SPIN0]));
  CHECK_OK(tt_spawn(ex, &f[SEND_PARK], ASYNCRT_SPAWN_SEND, &tasks[SEND_PARK]));
  CHECK(tf_wait_at_least(&f[SPIN0].polls, 1, 5000));
  CHECK(tf_wait_flag(&f[SEND_PARK].waker_flag, 5000));
  CHECK_OK(tt_spawn(ex, &f[INPOLL0], ASYNCRT_SPAWN_WORKER(0), &tasks[INPOLL0]));
  CHECK(tf_wait_at_least(&f[INPOLL0].polls, 1, 5000));

  for (i = 0; i < COUNT; i++) {
    if (i != BUSY1) {
      CHECK_OK(asyncrt_task_cancel(tasks[i]));
    }
  }
  /* both workers are inside long polls: nothing can be dropped yet */
  tf_sleep_ms(5);
  CHECK_INT(tf_get(&w->dropped), 0);
  tf_set(&release[0], 1); /* worker 1 carries out its cancellations */
  CHECK(tf_wait_at_least(&f[PARK1].drops, 1, 5000));
  CHECK(tf_wait_at_least(&f[QUEUED1].drops, 1, 5000));
  CHECK_INT(tf_get(&f[INPOLL0].drops), 0); /* still inside its poll */
  tf_set(&release[1], 1);
  CHECK(tf_wait_at_least(&f[INPOLL0].drops, 1, 5000));
  CHECK(tf_wait_at_least(&f[SPIN0].drops, 1, 5000));
  CHECK(tf_wait_at_least(&f[SEND_PARK].drops, 1, 5000));
  CHECK_OK(tt_wait_task(tasks[BUSY1], 5000));
  for (i = 0; i < COUNT; i++) {
    if (i == BUSY1) {
      continue;
    }
    CHECK_STATUS(asyncrt_task_status(tasks[i]), ASYNCRT_ECANCELLED);
    CHECK_INT(tf_get(&f[i].drops), 1);
    CHECK_INT(tf_get(&f[i].bad_polls), 0);
  }
  CHECK_INT(f[PARK1].drop_worker, 1);
  CHECK_INT(f[QUEUED1].drop_worker, 1);
  CHECK_INT(tf_get(&f[QUEUED1].polls), 0);
  CHECK_INT(f[SPIN0].drop_worker, 0);
  CHECK_INT(f[INPOLL0].drop_worker, 0);
  CHECK_INT(tf_get(&f[INPOLL0].polls), 1); /* the cancel took effect when the poll returned */
  CHECK(f[SEND_PARK].drop_worker >= 0);
  CHECK_STATUS(tt_join_status(tasks[PARK1]), ASYNCRT_ECANCELLED);
  for (i = 0; i < COUNT; i++) {
    tt_drop_waker(&f[i]);
    CHECK_OK(asyncrt_task_release(tasks[i]));
  }
  CHECK_OK(asyncrt_executor_shutdown(ex, ASYNCRT_SHUTDOWN_GRACEFUL, TF_TIMEOUT_NS));
  CHECK_OK(asyncrt_executor_free(ex));
  tt_check_world(w);
  CHECK_PASSED();
  free(f);
  free(release);
  free(w);
}

#define ID_TASKS 64

static int compare_u64(const void *a, const void *b) {
  uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
  return x < y ? -1 : x > y;
}

/* Task ids are unique within the executor, whichever worker a task is on. */
static void test_task_ids_unique_across_workers(void) {
  tt_world *w = tt_world_new();
  asyncrt_executor *ex = tt_executor(w, 0);
  tt_fut *f = tt_futs(w, 2 * ID_TASKS, TT_SELF_WAKE, 0);
  asyncrt_task *tasks[2 * ID_TASKS];
  uint64_t ids[2 * ID_TASKS];
  int i;
  CHECK(ex != NULL && f != NULL);
  for (i = 0; i < 2 * ID_TASKS; i++) {
    unsigned flags = ASYNCRT_SPAWN_WORKER(i % WORKERS) | (i % 4 < 2 ? 0 : ASYNCRT_SPAWN_SEND);
    CHECK_OK(tt_spawn(ex, &f[i], flags, &tasks[i]));
    CHECK_OK(asyncrt_task_id(tasks[i], &ids[i]));
    CHECK(ids[i] != 0);
  }
  qsort(ids, 2 * ID_TASKS, sizeof ids[0], compare_u64);
  for (i = 1; i < 2 * ID_TASKS; i++) {
    if (ids[i] == ids[i - 1]) {
      fprintf(stderr, "  two tasks (placed on different workers) share the id %llu\n",
              (unsigned long long)ids[i]);
    }
    CHECK(ids[i] != ids[i - 1]);
  }
  for (i = 0; i < 2 * ID_TASKS; i++) {
    CHECK_OK(asyncrt_task_release(tasks[i]));
  }
  CHECK_OK(asyncrt_executor_shutdown(ex, ASYNCRT_SHUTDOWN_GRACEFUL, TF_TIMEOUT_NS));
  CHECK_OK(asyncrt_executor_free(ex));
  tt_check_world(w);
  CHECK_PASSED();
  free(f);
  free(w);
}

static void storage_release_counter(void *memory, void *user_data) {
  (void)memory;
  tf_add((int *)user_data, 1);
}

/* Task headers in caller storage, on workers: released exactly once, after
 * the last reference (handle, join, completion) is gone. */
static void test_caller_storage_on_workers(void) {
  enum { ON1, SEND, DETACHED, COUNT };
  tt_world *w = tt_world_new();
  asyncrt_executor *ex = tt_executor(w, 0);
  tt_fut *f = tt_futs(w, COUNT, TT_SELF_WAKE, 5);
  int *released = calloc(COUNT, sizeof *released);
  void *memory[COUNT] = {NULL, NULL, NULL};
  asyncrt_task *tasks[COUNT] = {NULL, NULL, NULL};
  size_t need = asyncrt_task_storage_size(sizeof(uint64_t));
  static const unsigned flags[COUNT] = {ASYNCRT_SPAWN_WORKER(1), ASYNCRT_SPAWN_SEND,
                                        ASYNCRT_SPAWN_WORKER(0)};
  int i;
  CHECK(ex != NULL && f != NULL && released != NULL);
  for (i = 0; i < COUNT; i++) {
    asyncrt_task_storage st;
    asyncrt_future fut;
    CHECK_INT(posix_memalign(&memory[i], ASYNCRT_TASK_STORAGE_ALIGN, need), 0);
    memset(&st, 0, sizeof st);
    st.size = sizeof st;
    st.memory = memory[i];
    st.length = need;
    st.release = storage_release_counter;
    st.user_data = &released[i];
    fut.self = &f[i];
    fut.vtable = &tt_vtable;
    CHECK_OK(asyncrt_spawn_in(ex, &fut, flags[i], &st, i == DETACHED ? NULL : &tasks[i]));
  }
  CHECK(tf_wait_at_least(&w->dropped, COUNT, 5000));
  CHECK(tf_wait_at_least(&released[DETACHED], 1, 5000));
  CHECK_INT(tf_get(&released[ON1]) + tf_get(&released[SEND]), 0); /* handles still held */
  CHECK_OK(asyncrt_task_status(tasks[ON1]));
  CHECK_INT(f[ON1].first_worker, 1);
  CHECK_OK(asyncrt_task_release(tasks[ON1]));
  CHECK_OK(asyncrt_task_release(tasks[SEND]));
  for (i = 0; i < COUNT; i++) {
    CHECK(tf_wait_at_least(&released[i], 1, 5000));
  }
  CHECK_OK(asyncrt_executor_shutdown(ex, ASYNCRT_SHUTDOWN_GRACEFUL, TF_TIMEOUT_NS));
  CHECK_OK(asyncrt_executor_free(ex));
  tt_check_world(w);
  CHECK_PASSED();
  for (i = 0; i < COUNT; i++) {
    CHECK_INT(tf_get(&released[i]), 1);
    free(memory[i]);
  }
  free(f);
  free(released);
  free(w);
}

#define LIMIT_TASKS 50

/* config.memory_limit caps the task memory of the whole executor, not of
 * each worker; and memory comes back once the tasks are gone. */
static void test_memory_limit_covers_all_workers(void) {
  const uint64_t per_task = 96 + 16; /* the header's formula for an 8-byte output */
  tt_world *w = tt_world_new();
  tt_fut *f = tt_futs(w, 4 * LIMIT_TASKS, TT_PARK, TT_FOREVER);
  asyncrt_task **tasks = calloc(4 * LIMIT_TASKS, sizeof *tasks);
  asyncrt_executor *ex = NULL;
  asyncrt_executor_stats st;
  int i, n = 0, rc = ASYNCRT_OK;
  CHECK(w != NULL && f != NULL && tasks != NULL);
  ex = tt_executor_capped(w, 0, LIMIT_TASKS * per_task);
  CHECK(ex != NULL);
  while (n < 4 * LIMIT_TASKS &&
         (rc = tt_spawn(ex, &f[n], ASYNCRT_SPAWN_WORKER(n % WORKERS), &tasks[n])) == ASYNCRT_OK) {
    n++;
  }
  CHECK_STATUS(rc, ASYNCRT_ELIMIT);
  CHECK_INT(tf_get(&f[n].drops), 1); /* the refused future */
  if (n != LIMIT_TASKS) {
    fprintf(stderr, "  a cap of %d tasks' memory let %d tasks spread over %d workers in\n",
            LIMIT_TASKS, n, WORKERS);
  }
  CHECK_INT(n, LIMIT_TASKS);
  st = tf_stats(ex);
  CHECK_INT(st.memory_limit, LIMIT_TASKS * per_task);
  CHECK_INT(st.memory_in_use, LIMIT_TASKS * per_task);
  /* cancel them all: their memory comes back and spawns work again */
  for (i = 0; i < n; i++) {
    CHECK_OK(asyncrt_task_cancel(tasks[i]));
    CHECK_OK(asyncrt_task_release(tasks[i]));
  }
  CHECK(tf_wait_at_least(&w->dropped, n + 1, 5000));
  for (i = 0; i < n; i++) {
    tt_drop_waker(&f[i]);
  }
  {
    int64_t deadline = tf_now_ns() + 2 * TF_SECOND_NS;
    while (tf_stats(ex).memory_in_use != 0 && tf_now_ns() < deadline) {
      tf_sleep_ms(1);
    }
  }
  CHECK_INT(tf_stats(ex).memory_in_use, 0);
  f[n + 1].steps = 0;
  CHECK_OK(tt_spawn(ex, &f[n + 1], ASYNCRT_SPAWN_WORKER(1), NULL));
  CHECK_OK(asyncrt_executor_shutdown(ex, ASYNCRT_SHUTDOWN_GRACEFUL, TF_TIMEOUT_NS));
  CHECK_INT(tf_stats(ex).memory_in_use, 0);
  CHECK_OK(asyncrt_executor_free(ex));
  tt_check_world(w);
  CHECK_PASSED();
  free(f);
  free(tasks);
  free(w);
}

/* --- shutdown -------------------------------------------------------------- */

#define FINISHERS 40 /* per kind */

typedef struct late_waker {
  tt_fut *f;
  int delay_ms;
} late_waker;

static void *wake_later(void *arg) {
  late_waker *lw = arg;
  tf_sleep_ms(lw->delay_ms);
  asyncrt_waker_wake_by_ref(&lw->f->waker);
  return NULL;
}

/* Graceful: every task runs to completion, including one that a foreign
 * thread wakes while the shutdown waits. Nothing is cancelled. */
static void test_shutdown_graceful_lets_tasks_finish(void) {
  tt_world *w = tt_world_new();
  asyncrt_executor *ex = tt_executor(w, 0);
  tt_fut *f = tt_futs(w, 2 * FINISHERS + 1, TT_SELF_WAKE, 200);
  asyncrt_task **tasks = calloc(2 * FINISHERS + 1, sizeof *tasks);
  tt_fut *parked = f + 2 * FINISHERS;
  late_waker lw;
  pthread_t th;
  int i, n = 2 * FINISHERS + 1;
  CHECK(ex != NULL && f != NULL && tasks != NULL);
  parked->mode = TT_PARK;
  parked->steps = 1;
  for (i = 0; i < FINISHERS; i++) {
    CHECK_OK(tt_spawn(ex, &f[i], ASYNCRT_SPAWN_WORKER(i % WORKERS), &tasks[i]));
    CHECK_OK(tt_spawn(ex, &f[FINISHERS + i], ASYNCRT_SPAWN_SEND, &tasks[FINISHERS + i]));
  }
  CHECK_OK(tt_spawn(ex, parked, ASYNCRT_SPAWN_WORKER(1), &tasks[n - 1]));
  CHECK(tf_wait_flag(&parked->waker_flag, 5000));
  lw.f = parked;
  lw.delay_ms = 100;
  CHECK_INT(pthread_create(&th, NULL, wake_later, &lw), 0);
  CHECK_OK(asyncrt_executor_shutdown(ex, ASYNCRT_SHUTDOWN_GRACEFUL, 3 * TF_SECOND_NS));
  CHECK_INT(pthread_join(th, NULL), 0);
  for (i = 0; i < n; i++) {
    CHECK_INT(tf_get(&f[i].finished), 1);
    CHECK_INT(tf_get(&f[i].polls), f[i].steps + 1);
    CHECK_INT(tf_get(&f[i].drops), 1);
    CHECK_OK(asyncrt_task_status(tasks[i]));
    if (i < FINISHERS) {
      CHECK_INT(f[i].first_worker, i % WORKERS);
      CHECK_INT(f[i].drop_worker, i % WORKERS);
    }
  }
  CHECK_INT(parked->drop_worker, 1);
  CHECK_INT(tf_get(&w->stopped[0]) + tf_get(&w->stopped[1]), WORKERS);
  for (i = 0; i < n; i++) {
    CHECK_OK(asyncrt_task_release(tasks[i]));
  }
  tt_drop_waker(parked);
  CHECK_OK(asyncrt_executor_free(ex));
  tt_check_world(w);
  CHECK_PASSED();
  free(f);
  free(tasks);
  free(w);
}

#define DEADLINE_MS 300

/* Graceful with a deadline: tasks that never finish keep running until the
 * deadline, then are cancelled and dropped once, each on its own worker. */
static void test_shutdown_graceful_deadline_cancels_the_rest(void) {
  enum { SPIN0, SPIN1, PARK0, PARK1, SEND_SPIN, SEND_PARK, QUICK, KINDS };
  static const unsigned flags[KINDS] = {
      ASYNCRT_SPAWN_WORKER(0), ASYNCRT_SPAWN_WORKER(1), ASYNCRT_SPAWN_WORKER(0),
      ASYNCRT_SPAWN_WORKER(1), ASYNCRT_SPAWN_SEND,      ASYNCRT_SPAWN_SEND,
      ASYNCRT_SPAWN_LOCAL};
  const int each = 3, n = KINDS * each;
  tt_world *w = tt_world_new();
  asyncrt_executor *ex = tt_executor(w, 0);
  tt_fut *f = tt_futs(w, n, TT_SELF_WAKE, TT_FOREVER);
  asyncrt_task **tasks = calloc((size_t)n, sizeof *tasks);
  int *polls_before = calloc((size_t)n, sizeof *polls_before);
  int64_t t0, took;
  int i, rc;
  CHECK(ex != NULL && f != NULL && tasks != NULL && polls_before != NULL);
  for (i = 0; i < n; i++) {
    int kind = i / each;
    if (kind == PARK0 || kind == PARK1 || kind == SEND_PARK) {
      f[i].mode = TT_PARK;
    }
    if (kind == QUICK) {
      f[i].steps = 10;
    }
    CHECK_OK(tt_spawn(ex, &f[i], flags[kind], &tasks[i]));
  }
  for (i = 0; i < n; i++) {
    CHECK(tf_wait_at_least(&f[i].polls, 1, 5000));
  }
  for (i = 0; i < n; i++) {
    polls_before[i] = tf_get(&f[i].polls);
  }
  t0 = tf_now_ns();
  rc = asyncrt_executor_shutdown(ex, ASYNCRT_SHUTDOWN_GRACEFUL, DEADLINE_MS * TF_MS_NS);
  took = tf_now_ns() - t0;
  /* OK: no worker is stuck in a poll, so at the deadline the rest are
   * cancelled, and the call returns once they are dropped */
  CHECK_OK(rc);
  CHECK(took >= (DEADLINE_MS - 5) * TF_MS_NS);
  CHECK(took < (DEADLINE_MS + 2000) * TF_MS_NS);
  CHECK_INT(tf_get(&w->dropped), n);
  for (i = 0; i < n; i++) {
    int kind = i / each;
    tt_fut *x = &f[i];
    CHECK_INT(tf_get(&x->drops), 1);
    CHECK_INT(tf_get(&x->bad_polls), 0);
    if (kind == QUICK) {
      CHECK_OK(asyncrt_task_status(tasks[i]));
      continue;
    }
    CHECK_STATUS(asyncrt_task_status(tasks[i]), ASYNCRT_ECANCELLED);
    if (x->drop_ns < t0 + (DEADLINE_MS - 5) * TF_MS_NS) {
      fprintf(stderr, "  task %d (kind %d) dropped %lld ms into a %d ms grace period\n", i, kind,
              (long long)((x->drop_ns - t0) / TF_MS_NS), DEADLINE_MS);
    }
    CHECK(x->drop_ns >= t0 + (DEADLINE_MS - 5) * TF_MS_NS);
    if (kind == SPIN0 || kind == SPIN1 || kind == SEND_SPIN) {
      CHECK(tf_get(&x->polls) > polls_before[i]); /* it kept running until the deadline */
    }
    if (kind == SEND_SPIN || kind == SEND_PARK) {
      CHECK(x->drop_worker >= 0);
    } else {
      CHECK_INT(x->first_worker, kind == SPIN0 || kind == PARK0 ? 0 : 1);
      CHECK_INT(x->drop_worker, x->first_worker); /* on its own worker */
    }
  }
  for (i = 0; i < n; i++) {
    tt_drop_waker(&f[i]);
    CHECK_OK(asyncrt_task_release(tasks[i]));
  }
  CHECK_OK(asyncrt_executor_free(ex));
  tt_check_world(w);
  CHECK_PASSED();
  free(f);
  free(tasks);
  free(polls_before);
  free(w);
}

typedef struct shutdown_call {
  asyncrt_executor *ex;
  int mode;
  int64_t timeout_ns;
  int rc;
} shutdown_call;

static void *shutdown_on_thread(void *arg) {
  shutdown_call *c = arg;
  c->rc = asyncrt_executor_shutdown(c->ex, c->mode, c->timeout_ns);
  return NULL;
}

/* Immediate: every task is cancelled and dropped once; local tasks on their
 * own worker, even those never polled (queued behind a long poll). */
static void test_shutdown_immediate(void) {
  enum { BUSY1, QUEUED1, SEND1, PARK0, SPIN0, KINDS };
  const int each = 5, n = 1 + (KINDS - 1) * each;
  tt_world *w = tt_world_new();
  asyncrt_executor *ex = tt_executor(w, 0);
  tt_fut *f = tt_futs(w, n, TT_PARK, TT_FOREVER);
  asyncrt_task **tasks = calloc((size_t)n, sizeof *tasks);
  int *release = calloc(1, sizeof *release);
  shutdown_call call;
  pthread_t th;
  int i;
  CHECK(ex != NULL && f != NULL && tasks != NULL && release != NULL);
  f[0].busy_ms = 5000; /* BUSY1: takes worker 1 until released, then parks */
  f[0].release = release;
  CHECK_OK(tt_spawn(ex, &f[0], ASYNCRT_SPAWN_WORKER(1), &tasks[0]));
  CHECK(tf_wait_at_least(&f[0].polls, 1, 5000));
  for (i = 1; i < n; i++) {
    int kind = 1 + (i - 1) / each;
    unsigned flags = kind == QUEUED1 ? ASYNCRT_SPAWN_WORKER(1)
                     : kind == SEND1 ? ASYNCRT_SPAWN_SEND | ASYNCRT_SPAWN_WORKER(1)
                                     : ASYNCRT_SPAWN_WORKER(0);
    if (kind == SPIN0) {
      f[i].mode = TT_SELF_WAKE;
    }
    CHECK_OK(tt_spawn(ex, &f[i], flags, &tasks[i]));
  }
  for (i = 1; i < n; i++) {
    int kind = 1 + (i - 1) / each;
    if (kind == PARK0 || kind == SPIN0) {
      CHECK(tf_wait_at_least(&f[i].polls, 1, 5000));
    }
  }
  /* worker 1 is still busy: its local tasks are queued, not polled */
  call.ex = ex;
  call.mode = ASYNCRT_SHUTDOWN_IMMEDIATE;
  call.timeout_ns = 5 * TF_SECOND_NS;
  call.rc = -1;
  CHECK_INT(pthread_create(&th, NULL, shutdown_on_thread, &call), 0);
  tf_sleep_ms(50);
  tf_set(release, 1);
  CHECK_INT(pthread_join(th, NULL), 0);
  CHECK_OK(call.rc);
  for (i = 0; i < n; i++) {
    int kind = i == 0 ? BUSY1 : 1 + (i - 1) / each;
    CHECK_INT(tf_get(&f[i].drops), 1);
    CHECK_INT(tf_get(&f[i].bad_polls), 0);
    CHECK_STATUS(asyncrt_task_status(tasks[i]), ASYNCRT_ECANCELLED);
    if (kind == SEND1) {
      CHECK(f[i].drop_worker >= 0);
    } else {
      CHECK_INT(f[i].drop_worker, kind == BUSY1 || kind == QUEUED1 ? 1 : 0);
    }
  }
  /* a join made before the shutdown reports the cancellation */
  CHECK_STATUS(tt_join_status(tasks[1]), ASYNCRT_ECANCELLED);
  for (i = 0; i < n; i++) {
    tt_drop_waker(&f[i]);
    CHECK_OK(asyncrt_task_release(tasks[i]));
  }
  CHECK_OK(asyncrt_executor_free(ex));
  tt_check_world(w);
  CHECK_PASSED();
  free(f);
  free(tasks);
  free(release);
  free(w);
}

/* --- an immediate shutdown racing tasks that finish ----------------------- */

/* A future that wakes itself `left` times, then returns READY; it counts its
 * drops and any poll after its drop. Heap-allocated in arrays: workers may
 * still touch them when a CHECK fails. */
typedef struct race_fut {
  int left, drops, late_polls;
} race_fut;

static int race_poll(void *self, asyncrt_context *cx, void *out) {
  race_fut *f = self;
  (void)out;
  if (tf_get(&f->drops)) {
    tf_add(&f->late_polls, 1);
  }
  if (f->left > 0) {
    f->left--;
    asyncrt_waker_wake_by_ref(asyncrt_context_waker(cx));
    return ASYNCRT_POLL_PENDING;
  }
  return ASYNCRT_POLL_READY;
}

static void race_drop(void *self) { tf_add(&((race_fut *)self)->drops, 1); }

static const asyncrt_future_vtable race_vtable = {sizeof race_vtable, 0, race_poll, race_drop, NULL};

/* A task nobody else holds (no handle, join or waker) is freed by its
 * worker as it finishes, without ever being marked complete, but it stays
 * on its core's live list until then, where an immediate shutdown's cancel
 * walk takes a reference to it and wakes it. That wake once queued a local
 * task again after its end: polled and dropped a second time (the fuzzer
 * found it), or, its freed header on the core's queues, a worker that never
 * stopped (the shutdown's ETIMEDOUT). Many tasks finish while the walk runs,
 * round after round; the shutdown must end in time and every future must be
 * dropped exactly once and never polled after. */
static void test_shutdown_immediate_while_tasks_finish(void) {
  enum { ROUNDS = 40, TASKS = 600 };
  static const unsigned flags[] = {0, ASYNCRT_SPAWN_WORKER(0), ASYNCRT_SPAWN_WORKER(1), ASYNCRT_SPAWN_SEND};
  int round, i, twice = 0, late = 0, lost = 0;
  for (round = 0; round < ROUNDS && !twice && !late && !lost; round++) {
    tt_world *w = tt_world_new();
    asyncrt_executor *ex = tt_executor(w, 0);
    race_fut *f = calloc(TASKS, sizeof *f);
    CHECK(ex != NULL && f != NULL);
    for (i = 0; i < TASKS; i++) {
      asyncrt_future fut = {&f[i], &race_vtable};
      f[i].left = i % 7;
      CHECK_OK(asyncrt_spawn(ex, &fut, flags[i % 4], NULL));
    }
    CHECK_OK(asyncrt_executor_shutdown(ex, ASYNCRT_SHUTDOWN_IMMEDIATE, 5 * TF_SECOND_NS));
    CHECK_OK(asyncrt_executor_free(ex));
    tt_check_world(w);
    for (i = 0; i < TASKS; i++) {
      int d = tf_get(&f[i].drops);
      twice += d > 1;
      lost += d == 0;
      late += tf_get(&f[i].late_polls) > 0;
    }
    free(f);
    free(w);
  }
  if (twice || late || lost) {
    check_fail_at(__FILE__, __LINE__);
    fprintf(stderr, "  round %d: %d futures dropped twice, %d polled after their drop, %d never dropped\n", round,
            twice, late, lost);
    return;
  }
  CHECK_PASSED();
}

typedef struct blocked_call {
  asyncrt_executor *ex;
  tt_fut *f;
  int rc;
  int64_t took_ns;
} blocked_call;

static void *block_on_thread(void *arg) {
  blocked_call *c = arg;
  asyncrt_future fut;
  uint64_t out = 0;
  int64_t t0 = tf_now_ns();
  fut.self = c->f;
  fut.vtable = &tt_vtable;
  c->rc = asyncrt_block_on(c->ex, &fut, &out, TF_TIMEOUT_NS);
  c->took_ns = tf_now_ns() - t0;
  return NULL;
}

/* An immediate shutdown cancels the future a thread is blocked on: block_on
 * returns ECANCELLED at once, not at its timeout. */
static void test_shutdown_ends_block_on(void) {
  tt_world *w = tt_world_new();
  asyncrt_executor *ex = tt_executor(w, 0);
  tt_fut *f = tt_futs(w, 1, TT_PARK, TT_FOREVER);
  blocked_call *c = calloc(1, sizeof *c);
  pthread_t th;
  CHECK(ex != NULL && f != NULL && c != NULL);
  c->ex = ex;
  c->f = f;
  c->rc = -1;
  CHECK_INT(pthread_create(&th, NULL, block_on_thread, c), 0);
  CHECK(tf_wait_flag(&f->waker_flag, 5000));
  CHECK_OK(asyncrt_executor_shutdown(ex, ASYNCRT_SHUTDOWN_IMMEDIATE, TF_TIMEOUT_NS));
  CHECK_INT(pthread_join(th, NULL), 0);
  CHECK_STATUS(c->rc, ASYNCRT_ECANCELLED);
  CHECK(c->took_ns < 2 * TF_SECOND_NS);
  CHECK_INT(tf_get(&f->drops), 1);
  CHECK(f->drop_worker >= 0);
  tt_drop_waker(f);
  CHECK_OK(asyncrt_executor_free(ex));
  tt_check_world(w);
  CHECK_PASSED();
  free(f);
  free(c);
  free(w);
}

/* After a shutdown: spawns fail and drop their futures at once, wakes do
 * nothing, a second shutdown is fine, the handle still answers. */
static void test_after_shutdown(void) {
  tt_world *w = tt_world_new();
  asyncrt_executor *ex = tt_executor(w, 0);
  tt_fut *parked = tt_futs(w, 1, TT_PARK, TT_FOREVER);
  tt_fut *late = tt_futs(w, 4, TT_SELF_WAKE, 0);
  void *memory = NULL;
  int *released = calloc(1, sizeof *released);
  asyncrt_task_storage storage;
  asyncrt_waker copy;
  asyncrt_future fut;
  asyncrt_worker_stats ws;
  uint64_t out = 0;
  unsigned caps = 0;
  int64_t t0;
  int i, polls;
  CHECK_INT(posix_memalign(&memory, ASYNCRT_TASK_STORAGE_ALIGN, 4096), 0);
  CHECK(ex != NULL && parked != NULL && late != NULL && released != NULL);
  CHECK_OK(tt_spawn(ex, parked, ASYNCRT_SPAWN_WORKER(0), NULL));
  CHECK(tf_wait_flag(&parked->waker_flag, 5000));
  CHECK_OK(asyncrt_executor_shutdown(ex, ASYNCRT_SHUTDOWN_IMMEDIATE, TF_TIMEOUT_NS));
  CHECK_INT(tf_get(&parked->drops), 1);
  CHECK_INT(parked->drop_worker, 0);
  polls = tf_get(&parked->polls);

  /* spawns: ESHUTDOWN, the future dropped before the call returns */
  CHECK_STATUS(tt_spawn(ex, &late[0], ASYNCRT_SPAWN_LOCAL, NULL), ASYNCRT_ESHUTDOWN);
  CHECK_STATUS(tt_spawn(ex, &late[1], ASYNCRT_SPAWN_SEND | ASYNCRT_SPAWN_WORKER(1), NULL),
               ASYNCRT_ESHUTDOWN);
  memset(&storage, 0, sizeof storage);
  storage.size = sizeof storage;
  storage.memory = memory;
  storage.length = 4096;
  storage.release = storage_release_counter;
  storage.user_data = released;
  fut.self = &late[2];
  fut.vtable = &tt_vtable;
  CHECK_STATUS(asyncrt_spawn_in(ex, &fut, ASYNCRT_SPAWN_LOCAL, &storage, NULL), ASYNCRT_ESHUTDOWN);
  CHECK_INT(tf_get(released), 0); /* the storage is the caller's again */
  fut.self = &late[3];
  CHECK_STATUS(asyncrt_block_on(ex, &fut, &out, TF_TIMEOUT_NS), ASYNCRT_ESHUTDOWN);
  for (i = 0; i < 4; i++) {
    CHECK_INT(tf_get(&late[i].drops), 1);
    CHECK_INT(tf_get(&late[i].polls), 0);
    CHECK(pthread_equal(late[i].drop_thread, pthread_self()));
  }

  /* wakes of a task of a shut-down executor are ignored */
  asyncrt_waker_wake_by_ref(&parked->waker);
  asyncrt_waker_clone(&parked->waker, &copy);
  asyncrt_waker_wake(&copy);
  tf_sleep_ms(10);
  CHECK_INT(tf_get(&parked->polls), polls);
  CHECK_INT(tf_get(&parked->drops), 1);
  tt_drop_waker(parked);

  /* again, in either mode: already done, so at once */
  t0 = tf_now_ns();
  CHECK_OK(asyncrt_executor_shutdown(ex, ASYNCRT_SHUTDOWN_IMMEDIATE, TF_TIMEOUT_NS));
  CHECK_OK(asyncrt_executor_shutdown(ex, ASYNCRT_SHUTDOWN_GRACEFUL, TF_TIMEOUT_NS));
  CHECK(tf_now_ns() - t0 < 100 * TF_MS_NS);
  /* the handle still answers */
  CHECK_OK(asyncrt_executor_capabilities(ex, &caps));
  CHECK_INT(tf_stats(ex).tasks_live, 0);
  ws.size = sizeof ws;
  CHECK_OK(asyncrt_worker_stats_get(ex, 1, &ws));
  CHECK_INT(tf_get(&w->stopped[0]) + tf_get(&w->stopped[1]), WORKERS);
  CHECK_OK(asyncrt_executor_free(ex));
  CHECK_STATUS(asyncrt_executor_shutdown(ex, ASYNCRT_SHUTDOWN_IMMEDIATE, TF_TIMEOUT_NS),
               ASYNCRT_EHANDLE);
  CHECK_STATUS(asyncrt_executor_free(ex), ASYNCRT_EHANDLE);
  tt_check_world(w);
  CHECK_PASSED();
  free(parked);
  free(late);
  free(memory);
  free(released);
  free(w);
}

/* asyncrt_executor_free without a shutdown: an immediate shutdown. */
static void test_free_without_shutdown(void) {
  enum { PARK0, PARK1, SPIN0, SPIN1, SEND_PARK, SEND_SPIN, KINDS };
  static const unsigned flags[KINDS] = {ASYNCRT_SPAWN_WORKER(0), ASYNCRT_SPAWN_WORKER(1),
                                        ASYNCRT_SPAWN_WORKER(0), ASYNCRT_SPAWN_WORKER(1),
                                        ASYNCRT_SPAWN_SEND,      ASYNCRT_SPAWN_SEND};
  const int each = 4, n = KINDS * each;
  tt_world *w = tt_world_new();
  asyncrt_executor *ex = tt_executor(w, 0);
  tt_fut *f = tt_futs(w, n, TT_PARK, TT_FOREVER);
  asyncrt_task **tasks = calloc((size_t)n, sizeof *tasks);
  asyncrt_future join;
  asyncrt_executor *local = tf_executor();
  uint64_t out = 0;
  int i;
  CHECK(ex != NULL && f != NULL && tasks != NULL && local != NULL);
  for (i = 0; i < n; i++) {
    int kind = i / each;
    if (kind == SPIN0 || kind == SPIN1 || kind == SEND_SPIN) {
      f[i].mode = TT_SELF_WAKE;
    }
    CHECK_OK(tt_spawn(ex, &f[i], flags[kind], &tasks[i]));
  }
  for (i = 0; i < n; i++) {
    CHECK(tf_wait_at_least(&f[i].polls, 1, 5000));
  }
  CHECK_OK(asyncrt_task_join(tasks[0], &join));
  CHECK_OK(asyncrt_executor_free(ex));
  for (i = 0; i < n; i++) {
    int kind = i / each;
    CHECK_INT(tf_get(&f[i].drops), 1);
    CHECK_STATUS(asyncrt_task_status(tasks[i]), ASYNCRT_ECANCELLED);
    if (kind == SEND_PARK || kind == SEND_SPIN) {
      CHECK(f[i].drop_worker >= 0);
    } else {
      CHECK_INT(f[i].drop_worker, kind == PARK0 || kind == SPIN0 ? 0 : 1);
    }
  }
  CHECK_STATUS(asyncrt_block_on(local, &join, &out, TF_TIMEOUT_NS), ASYNCRT_ECANCELLED);
  {
    asyncrt_executor_stats s;
    s.size = sizeof s;
    CHECK_STATUS(asyncrt_executor_stats_get(ex, &s), ASYNCRT_EHANDLE);
  }
  tf_sleep_ms(10);
  for (i = 0; i < n; i++) {
    CHECK_INT(tf_get(&f[i].drops), 1);
    tt_drop_waker(&f[i]);
    CHECK_OK(asyncrt_task_release(tasks[i]));
  }
  CHECK_OK(asyncrt_executor_free(local));
  tt_check_world(w);
  CHECK_PASSED();
  free(f);
  free(tasks);
  free(w);
}

enum { VIA_IMMEDIATE, VIA_GRACEFUL, VIA_FREE };

/* A worker stuck in a long poll cannot stop: the call returns ETIMEDOUT, the
 * other worker's tasks are dropped, and the stuck worker drops its own once
 * the poll returns -- exactly once. `how`: an immediate shutdown bounded by
 * its timeout; a graceful one, whose cancellation after its deadline is
 * bounded by config.shutdown_timeout_ns; asyncrt_executor_free, bounded by
 * config.shutdown_timeout_ns too. */
static void stuck_worker(int how) {
  const int use_free = how == VIA_FREE;
  const int64_t want_ns = (how == VIA_GRACEFUL ? 200 : 100) * TF_MS_NS;
  const int queued = 3, on1 = 3, n = 1 + queued + on1;
  tt_world *w = tt_world_new();
  asyncrt_executor *ex = tt_executor(w, how == VIA_IMMEDIATE ? 0 : 100 * TF_MS_NS);
  tt_fut *f = tt_futs(w, n, TT_PARK, TT_FOREVER);
  int *release = calloc(1, sizeof *release);
  int64_t t0, took;
  int i, rc;
  CHECK(ex != NULL && f != NULL && release != NULL);
  f[0].busy_ms = 10000;
  f[0].release = release;
  CHECK_OK(tt_spawn(ex, &f[0], ASYNCRT_SPAWN_WORKER(0), NULL));
  CHECK(tf_wait_at_least(&f[0].polls, 1, 5000));
  for (i = 1; i <= queued; i++) {
    CHECK_OK(tt_spawn(ex, &f[i], ASYNCRT_SPAWN_WORKER(0), NULL));
  }
  for (; i < n; i++) {
    CHECK_OK(tt_spawn(ex, &f[i], ASYNCRT_SPAWN_WORKER(1), NULL));
    CHECK(tf_wait_flag(&f[i].waker_flag, 5000));
  }
  t0 = tf_now_ns();
  rc = use_free ? asyncrt_executor_free(ex)
                : asyncrt_executor_shutdown(ex, how == VIA_GRACEFUL ? ASYNCRT_SHUTDOWN_GRACEFUL
                                                                    : ASYNCRT_SHUTDOWN_IMMEDIATE,
                                            100 * TF_MS_NS);
  took = tf_now_ns() - t0;
  if (rc != ASYNCRT_ETIMEDOUT) {
    tf_set(release, 1);
  }
  CHECK_STATUS(rc, ASYNCRT_ETIMEDOUT);
  if (took < want_ns - 10 * TF_MS_NS || took > want_ns + 2 * TF_SECOND_NS) {
    tf_set(release, 1);
    fprintf(stderr, "  the call took %lld ms, want about %lld\n", (long long)(took / TF_MS_NS),
            (long long)(want_ns / TF_MS_NS));
    CHECK(0);
  }
  /* worker 1 was free to stop; worker 0 is still inside the poll */
  if (!tf_wait_at_least(&w->dropped, on1, 5000)) {
    tf_set(release, 1);
    CHECK(0);
  }
  CHECK_INT(tf_get(&f[0].drops), 0);
  for (i = 1 + queued; i < n; i++) {
    CHECK_INT(tf_get(&f[i].drops), 1);
    CHECK_INT(f[i].drop_worker, 1);
  }
  if (use_free) {
    asyncrt_executor_stats s;
    s.size = sizeof s;
    CHECK_STATUS(asyncrt_executor_stats_get(ex, &s), ASYNCRT_EHANDLE); /* freed anyway */
  }
  tf_set(release, 1);
  CHECK(tf_wait_at_least(&w->dropped, n, 5000));
  tf_sleep_ms(20);
  for (i = 0; i < n; i++) {
    CHECK_INT(tf_get(&f[i].drops), 1);
    CHECK_INT(tf_get(&f[i].bad_polls), 0);
    CHECK_INT(f[i].drop_worker, i <= queued ? 0 : 1);
  }
  CHECK_INT(tf_get(&f[0].polls), 1);
  if (!use_free) {
    CHECK_OK(asyncrt_executor_shutdown(ex, ASYNCRT_SHUTDOWN_IMMEDIATE, TF_TIMEOUT_NS));
    CHECK_OK(asyncrt_executor_free(ex));
  }
  CHECK_INT(tf_get(&w->dropped), n);
  for (i = 0; i < n; i++) {
    tt_drop_waker(&f[i]);
  }
  tt_check_world(w);
  CHECK_PASSED();
  free(f);
  free(release);
  free(w);
}

static void test_shutdown_with_a_stuck_worker(void) { stuck_worker(VIA_IMMEDIATE); }
static void test_graceful_shutdown_with_a_stuck_worker(void) { stuck_worker(VIA_GRACEFUL); }
static void test_free_with_a_stuck_worker(void) { stuck_worker(VIA_FREE); }

/* --- thread hooks and worker stats ----------------------------------------- */

static void test_thread_hooks(void) {
  tt_world *w = tt_world_new();
  asyncrt_executor *ex = tt_executor(w, 0);
  tt_fut *f = tt_futs(w, 2 * WORKERS, TT_SELF_WAKE, 100);
  tt_fut *parked = f + WORKERS;
  int i;
  CHECK(ex != NULL && f != NULL);
  for (i = 0; i < WORKERS; i++) {
    CHECK_OK(tt_spawn(ex, &f[i], ASYNCRT_SPAWN_WORKER(i), NULL));
    parked[i].mode = TT_PARK;
    parked[i].steps = 1;
    CHECK_OK(tt_spawn(ex, &parked[i], ASYNCRT_SPAWN_WORKER(i), NULL));
  }
  for (i = 0; i < WORKERS; i++) {
    CHECK(tf_wait_flag(&parked[i].waker_flag, 5000));
    CHECK(tf_wait_at_least(&f[i].drops, 1, 5000));
  }
  /* idle: each worker parks; a wake unparks it */
  for (i = 0; i < WORKERS; i++) {
    CHECK(tf_wait_at_least(&w->parks[i], 1, 2000));
  }
  for (i = 0; i < WORKERS; i++) {
    asyncrt_waker_wake_by_ref(&parked[i].waker);
    CHECK(tf_wait_at_least(&parked[i].drops, 1, 5000));
    CHECK(tf_wait_at_least(&w->unparks[i], 1, 2000));
  }
  for (i = 0; i < WORKERS; i++) {
    CHECK_INT(tf_get(&w->started[i]), 1);
    CHECK_INT(tf_get(&w->stopped[i]), 0);
    CHECK(!pthread_equal(w->threads[i], pthread_self()));
    CHECK_INT(f[i].first_worker, i);
    CHECK_INT(parked[i].first_worker, i);
  }
  CHECK(!pthread_equal(w->threads[0], w->threads[1]));
  CHECK_INT(tf_get(&w->finalized), 0);
  CHECK_OK(asyncrt_executor_shutdown(ex, ASYNCRT_SHUTDOWN_GRACEFUL, TF_TIMEOUT_NS));
  for (i = 0; i < WORKERS; i++) {
    CHECK_INT(tf_get(&w->started[i]), 1);
    CHECK_INT(tf_get(&w->stopped[i]), 1);
    CHECK_INT(tf_get(&w->parks[i]), tf_get(&w->unparks[i]));
  }
  CHECK(tf_get(&w->finalized) <= 1);
  CHECK_OK(asyncrt_executor_free(ex));
  for (i = 0; i < WORKERS; i++) {
    CHECK_INT(tf_get(&w->stopped[i]), 1);
    tt_drop_waker(&parked[i]);
  }
  tt_check_world(w);
  CHECK_PASSED();
  free(f);
  free(w);
}

/* Reads every worker's counters in a loop while the workers run; counters
 * only grow. */
typedef struct stats_reader {
  asyncrt_executor *ex;
  int stop, reads, errors, shrank;
} stats_reader;

static void *read_stats(void *arg) {
  stats_reader *r = arg;
  asyncrt_worker_stats last[WORKERS], s;
  asyncrt_executor_stats es;
  unsigned i;
  memset(last, 0, sizeof last);
  while (!tf_get(&r->stop)) {
    for (i = 0; i < WORKERS; i++) {
      s.size = sizeof s;
      if (asyncrt_worker_stats_get(r->ex, i, &s) != ASYNCRT_OK) {
        r->errors++;
        continue;
      }
      if (s.polls < last[i].polls || s.wakes < last[i].wakes || s.steals < last[i].steals ||
          s.parks < last[i].parks || s.parked_ns < last[i].parked_ns) {
        r->shrank++;
      }
      last[i] = s;
    }
    es.size = sizeof es;
    if (asyncrt_executor_stats_get(r->ex, &es) != ASYNCRT_OK) {
      r->errors++;
    }
    r->reads++;
    sched_yield();
  }
  return NULL;
}

#define STAT_TASKS 100
#define STAT_STEPS 999
#define STAT_PARKED 4
#define STAT_WAKES 25

static void test_worker_stats(void) {
  tt_world *w = tt_world_new();
  asyncrt_executor *ex = tt_executor(w, 0);
  tt_fut *f = tt_futs(w, STAT_TASKS + STAT_PARKED, TT_SELF_WAKE, STAT_STEPS);
  tt_fut *parked = f + STAT_TASKS;
  stats_reader *reader = calloc(1, sizeof *reader);
  asyncrt_worker_stats s[WORKERS];
  pthread_t th;
  uint64_t polls = 0, wakes = 0;
  int i, r, caused = STAT_TASKS * (STAT_STEPS + 1) + STAT_PARKED * (STAT_WAKES + 1);
  CHECK(ex != NULL && f != NULL && reader != NULL);
  reader->ex = ex;
  CHECK_INT(pthread_create(&th, NULL, read_stats, reader), 0);
  for (i = 0; i < STAT_PARKED; i++) {
    parked[i].mode = TT_PARK;
    parked[i].steps = STAT_WAKES;
    CHECK_OK(tt_spawn(ex, &parked[i], ASYNCRT_SPAWN_WORKER(i % WORKERS), NULL));
  }
  for (i = 0; i < STAT_TASKS; i++) {
    CHECK_OK(tt_spawn(ex, &f[i], i % 2 ? ASYNCRT_SPAWN_SEND : ASYNCRT_SPAWN_LOCAL, NULL));
  }
  /* wakes from this thread, each on a parked task */
  for (r = 1; r <= STAT_WAKES; r++) {
    for (i = 0; i < STAT_PARKED; i++) {
      CHECK(tf_wait_at_least(&parked[i].polls, r, 5000));
      tf_sleep_ms(1); /* let the poll return: the wake finds the task asleep */
      asyncrt_waker_wake_by_ref(&parked[i].waker);
    }
  }
  CHECK(tf_wait_at_least(&w->dropped, STAT_TASKS + STAT_PARKED, 10000));
  /* idle now: each worker parks */
  for (i = 0; i < WORKERS; i++) {
    int64_t deadline = tf_now_ns() + 2 * TF_SECOND_NS;
    while (tt_worker_stats(ex, (unsigned)i).parks == 0 && tf_now_ns() < deadline) {
      tf_sleep_ms(1);
    }
    s[i] = tt_worker_stats(ex, (unsigned)i);
    CHECK(s[i].parks > 0 && s[i].parks != UINT64_MAX);
    polls += s[i].polls;
    wakes += s[i].wakes;
  }
  CHECK(polls >= (uint64_t)caused);
  /* each wake found its task asleep, barring a poll preempted for over 1 ms */
  CHECK(wakes >= STAT_PARKED * STAT_WAKES / 2);
  tf_set(&reader->stop, 1);
  CHECK_INT(pthread_join(th, NULL), 0);
  CHECK(reader->reads > 0);
  CHECK_INT(reader->errors, 0);
  CHECK_INT(reader->shrank, 0);
  /* exact once the workers stopped */
  CHECK_OK(asyncrt_executor_shutdown(ex, ASYNCRT_SHUTDOWN_GRACEFUL, TF_TIMEOUT_NS));
  polls = 0;
  for (i = 0; i < WORKERS; i++) {
    s[i] = tt_worker_stats(ex, (unsigned)i);
    polls += s[i].polls;
    CHECK(s[i].parks > 0 && s[i].parked_ns > 0);
  }
  CHECK_INT(polls, tf_stats(ex).polls);
  CHECK_OK(asyncrt_executor_free(ex));
  for (i = 0; i < STAT_PARKED; i++) {
    tt_drop_waker(&parked[i]);
  }
  tt_check_world(w);
  CHECK_PASSED();
  free(f);
  free(reader);
  free(w);
}

int main(void) {
  CHECK_BEGIN();
  tt_give_up_ns = tf_now_ns() + 25 * TF_SECOND_NS;
  RUN(test_capabilities_and_refusals);
  RUN(test_context_names_the_executor_on_every_worker);
  RUN(test_million_tasks_complete_once);
  RUN(test_wakes_from_foreign_threads);
  RUN(test_local_tasks_never_move);
  RUN(test_send_tasks_stolen_from_busy_worker);
  RUN(test_budget_keeps_foreign_wakes_flowing);
  RUN(test_block_on_from_other_threads);
  RUN(test_join_across_workers);
  RUN(test_driving_from_a_worker);
  RUN(test_cancel_from_another_thread);
  RUN(test_task_ids_unique_across_workers);
  RUN(test_caller_storage_on_workers);
  RUN(test_memory_limit_covers_all_workers);
  RUN(test_shutdown_graceful_lets_tasks_finish);
  RUN(test_shutdown_graceful_deadline_cancels_the_rest);
  RUN(test_shutdown_immediate);
  RUN(test_shutdown_immediate_while_tasks_finish);
  RUN(test_shutdown_ends_block_on);
  RUN(test_after_shutdown);
  RUN(test_free_without_shutdown);
  RUN(test_shutdown_with_a_stuck_worker);
  RUN(test_graceful_shutdown_with_a_stuck_worker);
  RUN(test_free_with_a_stuck_worker);
  RUN(test_thread_hooks);
  RUN(test_worker_stats);
  return CHECK_END("threads");
}
