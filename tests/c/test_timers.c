/* Timers: the test clock, asyncrt_timer_poll, the sleep and timeout futures,
 * timers on local, thread-per-core and foreign executors, the host's fd,
 * misuse, and executors freed while timers are armed.
 *
 * Time-dependent behaviour is checked on executors created with
 * ASYNCRT_CLOCK_TEST, whose clock moves only when asyncrt_clock_advance moves
 * it: what must have fired and what must not have yet follows from the clock
 * alone, so those checks are exact. The few tests on the monotonic clock
 * check what the runtime promises about real time -- nothing completes early
 * -- and never how long anything took.
 *
 * Workers of a thread-per-core executor poll futures while a test runs, so
 * the futures those tests hand over live on the heap and are leaked when a
 * CHECK fails. */
#include "check.h" /* first: it sets _POSIX_C_SOURCE */
#include "testfut.h"

#include <errno.h>
#include <poll.h>
#include <stdint.h>
#include <stdlib.h>
#include <time.h>

#define US 1000ull
#define MS 1000000ull
#define SEC 1000000000ull

/* --- helpers ----------------------------------------------------------------- */

/* xorshift64*: the same deadlines on every run. */
static uint64_t rng_state = 1;
static void rng_seed(uint64_t seed) { rng_state = seed ? seed : 1; }
static uint64_t rng_next(void) {
  uint64_t x = rng_state;
  x ^= x >> 12;
  x ^= x << 25;
  x ^= x >> 27;
  rng_state = x;
  return x * 2685821657736338717ull;
}
/* Uniform enough in [lo, hi]. */
static uint64_t rng_range(uint64_t lo, uint64_t hi) { return lo + rng_next() % (hi - lo + 1); }

/* A new executor, or NULL (message printed). */
static asyncrt_executor *tm_executor(unsigned kind, unsigned workers, unsigned clock,
                                     const asyncrt_allocator *alloc) {
  asyncrt_executor_config cfg;
  asyncrt_executor *ex = NULL;
  int rc;
  asyncrt_executor_config_init(&cfg);
  cfg.kind = kind;
  cfg.workers = workers;
  cfg.clock = clock;
  cfg.allocator = alloc;
  rc = asyncrt_executor_new(&cfg, &ex);
  if (rc != ASYNCRT_OK) {
    fprintf(stderr, "  asyncrt_executor_new(kind %u, %u workers, clock %u): got %s (%s)\n", kind,
            workers, clock, asyncrt_status_str(rc), asyncrt_last_error());
    return NULL;
  }
  return ex;
}

/* A local executor on the test clock. */
static asyncrt_executor *tm_local_test(void) {
  return tm_executor(ASYNCRT_EXECUTOR_LOCAL, 0, ASYNCRT_CLOCK_TEST, NULL);
}

/* The timer subsystem's counters; every field all-ones if the call failed. */
static asyncrt_subsystem_stats tm_tstats(asyncrt_executor *ex) {
  asyncrt_subsystem_stats s;
  memset(&s, 0xff, sizeof s);
  s.size = sizeof s;
  if (asyncrt_timer_stats_get(ex, &s) != ASYNCRT_OK) {
    memset(&s, 0xff, sizeof s);
  }
  return s;
}

/* The executor's clock; UINT64_MAX if the call failed. */
static uint64_t tm_now(asyncrt_executor *ex) {
  uint64_t now = UINT64_MAX;
  if (asyncrt_executor_now(ex, &now) != ASYNCRT_OK) {
    return UINT64_MAX;
  }
  return now;
}

/* Waits (at most timeout_ms) until the executor has `want` timers armed. */
static int tm_wait_waiters(asyncrt_executor *ex, uint64_t want, int timeout_ms) {
  int64_t deadline = tf_now_ns() + (int64_t)timeout_ms * TF_MS_NS;
  while (tm_tstats(ex).waiters != want) {
    if (tf_now_ns() >= deadline) {
      return 0;
    }
    tf_sleep_ms(1);
  }
  return 1;
}

/* A waker that does nothing: for polls outside any executor. */
static void nw_clone(const void *data, asyncrt_waker *out);
static void nw_noop(const void *data) { (void)data; }
static const asyncrt_waker_vtable nw_vtable = {nw_clone, nw_noop, nw_noop, nw_noop};
static void nw_clone(const void *data, asyncrt_waker *out) {
  out->data = data;
  out->vtable = &nw_vtable;
}
static const asyncrt_waker noop_waker = {NULL, &nw_vtable};

/* --- tw: a future that waits for one timer ------------------------------------- */

/* Polls its timer for `deadline` until it is ready. Records what it saw; its
 * drop disarms the timer unless keep_timer is set (then the timer outlives
 * the future: only the executor's free or the timer's firing disarms it). */
typedef struct tw {
  asyncrt_timer timer;
  uint64_t deadline;
  int keep_timer;
  int polls, drops, bad_polls, done, errors;
  int early;            /* READY while its executor's clock read before the deadline */
  int disarmed_pending; /* PENDING with the timer not armed */
  int armed_ready;      /* READY with the timer still armed */
  int failure;          /* the failure of an ERROR return */
  uint64_t seq;         /* 1 + how many tw futures completed before it */
  uint64_t done_clock;  /* asyncrt_context_now at completion */
} tw;

static uint64_t tw_seq;

static int tw_poll(void *self, asyncrt_context *cx, void *out) {
  tw *f = self;
  int r;
  (void)out;
  if (tf_get(&f->done) || tf_get(&f->drops)) {
    tf_add(&f->bad_polls, 1);
  }
  tf_add(&f->polls, 1);
  r = asyncrt_timer_poll(&f->timer, cx, f->deadline);
  if (r == ASYNCRT_POLL_PENDING) {
    if (!asyncrt_timer_armed(&f->timer)) {
      tf_add(&f->disarmed_pending, 1);
    }
    return r;
  }
  if (r == ASYNCRT_POLL_READY) {
    f->done_clock = asyncrt_context_now(cx);
    if (f->done_clock < f->deadline) {
      tf_add(&f->early, 1);
    }
    if (asyncrt_timer_armed(&f->timer)) {
      tf_add(&f->armed_ready, 1);
    }
    f->seq = __atomic_add_fetch(&tw_seq, 1, __ATOMIC_ACQ_REL);
    tf_set(&f->done, 1);
    return r;
  }
  f->failure = asyncrt_context_failure(cx);
  tf_add(&f->errors, 1);
  return r;
}

static void tw_drop(void *self) {
  tw *f = self;
  if (!f->keep_timer) {
    asyncrt_timer_cancel(&f->timer);
  }
  tf_add(&f->drops, 1);
}

static const asyncrt_future_vtable tw_vtable = {sizeof(asyncrt_future_vtable), 0, tw_poll, tw_drop,
                                                NULL};

static asyncrt_future tw_future(tw *f) {
  asyncrt_future fut;
  fut.self = f;
  fut.vtable = &tw_vtable;
  return fut;
}

/* --- tc: a future that follows a plan for its timer, poll by poll -------------- */

/** tc.plan entry: disarm the timer with asyncrt_timer_cancel and stay pending. */
#define TC_CANCEL 0ull
#define TC_MAX 8

/* Poll i does plan[i] (the last entry again past the end): polls the timer
 * for that deadline, or cancels it. It keeps a fresh clone of its waker in
 * `waker` so that the test can wake it. */
typedef struct tc {
  asyncrt_timer timer;
  uint64_t plan[TC_MAX];
  int nplan;
  int polls, drops, bad_polls, done;
  int result[TC_MAX]; /* what poll i returned */
  int armed[TC_MAX];  /* asyncrt_timer_armed after poll i */
  asyncrt_waker waker;
} tc;

static int tc_poll(void *self, asyncrt_context *cx, void *out) {
  tc *f = self;
  int i = f->polls, r;
  uint64_t step = f->plan[i < f->nplan ? i : f->nplan - 1];
  (void)out;
  if (f->done || f->drops) {
    f->bad_polls++;
  }
  f->polls++;
  if (step == TC_CANCEL) {
    asyncrt_timer_cancel(&f->timer);
    r = ASYNCRT_POLL_PENDING;
  } else {
    r = asyncrt_timer_poll(&f->timer, cx, step);
  }
  asyncrt_waker_drop(&f->waker);
  asyncrt_waker_clone(asyncrt_context_waker(cx), &f->waker);
  if (i < TC_MAX) {
    f->result[i] = r;
    f->armed[i] = asyncrt_timer_armed(&f->timer);
  }
  if (r == ASYNCRT_POLL_READY) {
    f->done = 1;
  }
  return r;
}

static void tc_drop(void *self) {
  tc *f = self;
  asyncrt_timer_cancel(&f->timer);
  asyncrt_waker_drop(&f->waker);
  f->drops++;
}

static const asyncrt_future_vtable tc_vtable = {sizeof(asyncrt_future_vtable), 0, tc_poll, tc_drop,
                                                NULL};

static asyncrt_future tc_future(tc *f) {
  asyncrt_future fut;
  fut.self = f;
  fut.vtable = &tc_vtable;
  return fut;
}

/* --- watch: wraps a future (a sleep, a timeout) and records how it ended ------- */

typedef struct watch {
  asyncrt_future_vtable vt; /* output_size: the inner future's */
  asyncrt_future inner;
  int inner_live;
  int polls, drops, bad_polls, done;
  int result;  /* the inner future's final asyncrt_poll value; -1 while running */
  int failure; /* asyncrt_context_failure after an ERROR */
  uint64_t done_clock; /* asyncrt_context_now at completion */
  int64_t done_real;   /* CLOCK_MONOTONIC at completion */
} watch;

static void watch_drop_inner(watch *w) {
  if (w->inner_live) {
    w->inner_live = 0;
    if (w->inner.vtable->drop != NULL) {
      w->inner.vtable->drop(w->inner.self);
    }
  }
}

static int watch_poll(void *self, asyncrt_context *cx, void *out) {
  watch *w = self;
  int r;
  if (tf_get(&w->done) || tf_get(&w->drops)) {
    tf_add(&w->bad_polls, 1);
  }
  tf_add(&w->polls, 1);
  r = w->inner.vtable->poll(w->inner.self, cx, out);
  if (r == ASYNCRT_POLL_READY || r == ASYNCRT_POLL_ERROR) {
    w->result = r;
    w->failure = r == ASYNCRT_POLL_ERROR ? asyncrt_context_failure(cx) : 0;
    w->done_clock = asyncrt_context_now(cx);
    w->done_real = tf_now_ns();
    watch_drop_inner(w);
    tf_set(&w->done, 1);
  }
  return r;
}

static void watch_drop(void *self) {
  watch *w = self;
  watch_drop_inner(w);
  tf_add(&w->drops, 1);
}

/* Makes *w own `inner` and returns the watching future. */
static asyncrt_future watch_init(watch *w, const asyncrt_future *inner) {
  asyncrt_future fut;
  memset(w, 0, sizeof *w);
  w->inner = *inner;
  w->inner_live = 1;
  w->result = -1;
  w->vt.size = sizeof w->vt;
  w->vt.output_size = inner->vtable->output_size;
  w->vt.poll = watch_poll;
  w->vt.drop = watch_drop;
  w->vt.cleanup = NULL;
  fut.self = w;
  fut.vtable = &w->vt;
  return fut;
}

/* Spawns a watched sleep_for (until: sleep_until) of `ns`. */
static int spawn_sleep(asyncrt_executor *ex, watch *w, asyncrt_sleep *s, int until, uint64_t ns,
                       unsigned flags, asyncrt_task **out) {
  asyncrt_future sf, wf;
  int rc = until ? asyncrt_sleep_until(s, ns, &sf) : asyncrt_sleep_for(s, ns, &sf);
  if (rc != ASYNCRT_OK) {
    return rc;
  }
  wf = watch_init(w, &sf);
  return asyncrt_spawn(ex, &wf, flags, out);
}

/* --- 1. the test clock: a thousand timers fire exactly when due, in order -------- */

#define T1_N 1000
#define T1_MAX_STEPS 5000

static void test_test_clock_fires_due_timers_in_order(void) {
  asyncrt_executor *ex = tm_local_test();
  tw *fs = calloc(T1_N, sizeof *fs);
  asyncrt_task **tasks = calloc(T1_N, sizeof *tasks);
  int *order = malloc(T1_N * sizeof *order);
  asyncrt_subsystem_stats st;
  asyncrt_future fut;
  uint64_t clock = 0, polls = 0, seq_base, delta, next;
  unsigned caps = 0;
  int i, step, done_total = 0, steps_fired = 0, fired;
  CHECK(ex != NULL && fs != NULL && tasks != NULL && order != NULL);
  CHECK_OK(asyncrt_executor_capabilities(ex, &caps));
  CHECK((caps & ASYNCRT_CAP_TIMERS) != 0);
  CHECK((caps & ASYNCRT_CAP_TEST_CLOCK) != 0);
  CHECK_INT(tm_now(ex), 0);
  st = tm_tstats(ex);
  CHECK_INT(st.waiters, 0);
  CHECK_INT(st.completions, 0);

  rng_seed(0x7133e5ull);
  seq_base = __atomic_load_n(&tw_seq, __ATOMIC_ACQUIRE);
  for (i = 0; i < T1_N; i++) {
    order[i] = -1;
    fs[i].deadline = rng_range(1 * US, 100 * MS);
    fut = tw_future(&fs[i]);
    CHECK_OK(asyncrt_spawn(ex, &fut, ASYNCRT_SPAWN_LOCAL, &tasks[i]));
  }
  CHECK_OK(asyncrt_run(ex, &polls));
  CHECK_INT(polls, T1_N);
  for (i = 0; i < T1_N; i++) {
    CHECK_INT(fs[i].polls, 1);
    CHECK_INT(fs[i].done, 0);
    CHECK_INT(asyncrt_timer_armed(&fs[i].timer), 1);
    CHECK_STATUS(asyncrt_task_status(tasks[i]), ASYNCRT_EAGAIN);
  }
  st = tm_tstats(ex);
  CHECK_INT(st.waiters, T1_N);
  CHECK_INT(st.completions, 0);

  /* Steps of three kinds, in turn: a random stride, a stop 1 ns short of the
   * next deadline, and a landing exactly on it. */
  for (step = 0; done_total < T1_N; step++) {
    CHECK(step < T1_MAX_STEPS);
    next = UINT64_MAX;
    for (i = 0; i < T1_N; i++) {
      if (!fs[i].done && fs[i].deadline < next) {
        next = fs[i].deadline;
      }
    }
    switch (step % 3) {
    case 0:
      delta = rng_range(1, 2 * MS);
      break;
    case 1:
      delta = next - 1 > clock ? next - 1 - clock : 1;
      break;
    default:
      delta = next > clock ? next - clock : 1;
      break;
    }
    CHECK_OK(asyncrt_clock_advance(ex, delta));
    clock += delta;
    CHECK_INT(tm_now(ex), clock);
    CHECK_OK(asyncrt_run(ex, &polls));
    fired = 0;
    for (i = 0; i < T1_N; i++) {
      int due = fs[i].deadline <= clock;
      if (fs[i].done != due) {
        fprintf(stderr, "  step %d: clock %llu, timer %d (deadline %llu) is %s\n", step,
                (unsigned long long)clock, i, (unsigned long long)fs[i].deadline,
                due ? "late: due but not complete" : "early: complete before its deadline");
      }
      CHECK_INT(fs[i].done, due);
      CHECK_INT(fs[i].polls, due ? 2 : 1); /* no wake before the deadline */
      CHECK_INT(fs[i].drops, due);
      CHECK_INT(asyncrt_timer_armed(&fs[i].timer), !due);
      CHECK(!due || (fs[i].seq > seq_base && fs[i].seq <= seq_base + T1_N));
      if (due && order[fs[i].seq - seq_base - 1] == -1) {
        /* Completed in this step: by the run right after this advance. */
        CHECK_INT(fs[i].done_clock, clock);
        order[fs[i].seq - seq_base - 1] = i;
        fired++;
      }
    }
    CHECK_INT(polls, fired); /* the run polled exactly the tasks that came due */
    done_total += fired;
    steps_fired += fired > 0;
    st = tm_tstats(ex);
    CHECK_INT(st.completions, done_total);
    CHECK_INT(st.waiters, T1_N - done_total);
    CHECK(st.polls >= (uint64_t)steps_fired);
    CHECK(st.empty_polls <= st.polls);
  }

  /* Completion order follows the deadlines (ties in any order). */
  for (i = 0; i < T1_N; i++) {
    CHECK(order[i] >= 0);
    if (i > 0 && fs[order[i - 1]].deadline > fs[order[i]].deadline) {
      fprintf(stderr, "  completion %d: timer %d (deadline %llu) after timer %d (deadline %llu)\n",
              i, order[i], (unsigned long long)fs[order[i]].deadline, order[i - 1],
              (unsigned long long)fs[order[i - 1]].deadline);
    }
    CHECK(i == 0 || fs[order[i - 1]].deadline <= fs[order[i]].deadline);
  }
  for (i = 0; i < T1_N; i++) {
    CHECK_INT(fs[i].early, 0);
    CHECK_INT(fs[i].bad_polls, 0);
    CHECK_INT(fs[i].disarmed_pending, 0);
    CHECK_INT(fs[i].armed_ready, 0);
    CHECK_INT(fs[i].errors, 0);
    CHECK_OK(asyncrt_task_status(tasks[i]));
    CHECK_OK(asyncrt_task_release(tasks[i]));
  }
  CHECK_INT(tf_stats(ex).tasks_live, 0);
  CHECK_OK(asyncrt_executor_free(ex));
  for (i = 0; i < T1_N; i++) {
    CHECK_INT(fs[i].drops, 1);
  }
  free(fs);
  free(tasks);
  free(order);
}

#define TB_N 300

/* More timers come due at one tick than the runtime wakes in one batch: they
 * still complete in deadline order. Spawned in a shuffled order, so that
 * neither spawn order nor its reverse is the answer. */
static void test_many_due_at_once_fire_in_order(void) {
  asyncrt_executor *ex = tm_local_test();
  tw *fs = calloc(TB_N, sizeof *fs);
  int *perm = malloc(TB_N * sizeof *perm);
  uint64_t polls = 0, seq_base, prev = 0;
  int *by_seq = malloc(TB_N * sizeof *by_seq);
  asyncrt_future fut;
  int i;
  CHECK(ex != NULL && fs != NULL && perm != NULL && by_seq != NULL);
  rng_seed(0xba7c4ull);
  for (i = 0; i < TB_N; i++) {
    perm[i] = i;
  }
  for (i = TB_N - 1; i > 0; i--) {
    int j = (int)(rng_next() % (uint64_t)(i + 1)), t = perm[i];
    perm[i] = perm[j];
    perm[j] = t;
  }
  for (i = 0; i < TB_N; i++) {
    fs[perm[i]].deadline = (uint64_t)(perm[i] + 1) * US; /* 1 us .. 300 us */
    fut = tw_future(&fs[perm[i]]);
    CHECK_OK(asyncrt_spawn(ex, &fut, ASYNCRT_SPAWN_LOCAL, NULL));
  }
  CHECK_OK(asyncrt_run(ex, NULL));
  CHECK_INT(tm_tstats(ex).waiters, TB_N);
  seq_base = __atomic_load_n(&tw_seq, __ATOMIC_ACQUIRE);
  CHECK_OK(asyncrt_clock_advance(ex, 1 * MS));
  CHECK_OK(asyncrt_run(ex, &polls));
  CHECK_INT(polls, TB_N);
  for (i = 0; i < TB_N; i++) {
    CHECK_INT(fs[i].done, 1);
    CHECK(fs[i].seq > seq_base && fs[i].seq <= seq_base + TB_N);
    by_seq[fs[i].seq - seq_base - 1] = i;
  }
  for (i = 0; i < TB_N; i++) {
    if (fs[by_seq[i]].deadline < prev) {
      fprintf(stderr, "  completion %d: deadline %llu us, after %llu us; order (us):", i,
              (unsigned long long)(fs[by_seq[i]].deadline / US), (unsigned long long)(prev / US));
      for (i = 0; i < TB_N; i += 16) {
        fprintf(stderr, " [%d] %llu", i, (unsigned long long)(fs[by_seq[i]].deadline / US));
      }
      fprintf(stderr, "\n");
      CHECK(!"completions out of deadline order");
    }
    prev = fs[by_seq[i]].deadline;
  }
  CHECK_INT(tm_tstats(ex).completions, TB_N);
  CHECK_OK(asyncrt_executor_free(ex));
  free(fs);
  free(perm);
  free(by_seq);
}

/* asyncrt_executor_tick on a local executor says when the next timer is due:
 * with the test clock, exactly. It fires due timers (waking their tasks) but
 * polls nothing. */
static void test_tick_reports_the_next_deadline(void) {
  asyncrt_executor *ex = tm_local_test();
  tw fs[3];
  asyncrt_future fut;
  uint64_t next = 0, polls = 0;
  int busy = -1, i;
  const uint64_t deadlines[3] = {5 * US, 7500, 1 * SEC};
  CHECK(ex != NULL);
  memset(fs, 0, sizeof fs);
  CHECK_OK(asyncrt_executor_tick(ex, &next, &busy));
  CHECK_INT(next, UINT64_MAX); /* no timer */
  CHECK_INT(busy, 0);
  for (i = 0; i < 3; i++) {
    fs[i].deadline = deadlines[i];
    fut = tw_future(&fs[i]);
    CHECK_OK(asyncrt_spawn(ex, &fut, ASYNCRT_SPAWN_LOCAL, NULL));
  }
  CHECK_OK(asyncrt_run(ex, NULL));
  CHECK_OK(asyncrt_executor_tick(ex, &next, &busy));
  CHECK_INT(next, 5 * US);
  CHECK_INT(busy, 0);

  CHECK_OK(asyncrt_clock_advance(ex, 5 * US));
  CHECK_OK(asyncrt_executor_tick(ex, &next, NULL));
  CHECK_INT(next, 7500);
  CHECK_INT(fs[0].polls, 1); /* woken, not polled: the tick runs no task */
  CHECK_INT(tm_tstats(ex).completions, 1);
  CHECK_OK(asyncrt_run(ex, &polls));
  CHECK_INT(polls, 1);
  CHECK_INT(fs[0].done, 1);

  CHECK_OK(asyncrt_clock_advance(ex, 1 * SEC));
  CHECK_OK(asyncrt_executor_tick(ex, &next, NULL));
  CHECK_INT(next, UINT64_MAX);
  CHECK_OK(asyncrt_run(ex, &polls));
  CHECK_INT(polls, 2);
  for (i = 0; i < 3; i++) {
    CHECK_INT(fs[i].done, 1);
    CHECK_INT(fs[i].early, 0);
  }
  CHECK_OK(asyncrt_executor_free(ex));
}

/* --- 2. cancellation ----------------------------------------------------------- */

#define T2_N 64

/* Tasks cancelled while their timers are armed: dropped once, never polled
 * again, the waiters count goes down, and advancing past their deadlines
 * wakes only the tasks left. Every 16th future keeps its timer armed after
 * its drop: its firing wakes a cancelled task, which must do nothing. */
static void test_cancel_tasks_with_armed_timers(void) {
  asyncrt_executor *ex = tm_local_test();
  tw *fs = calloc(T2_N, sizeof *fs);
  asyncrt_task *tasks[T2_N];
  asyncrt_future fut;
  uint64_t polls = 0;
  int i, cancelled = 0, kept = 0;
  CHECK(ex != NULL && fs != NULL);
  rng_seed(0xca11ull);
  for (i = 0; i < T2_N; i++) {
    fs[i].deadline = rng_range(1 * MS, 50 * MS);
    fs[i].keep_timer = i % 16 == 15;
    fut = tw_future(&fs[i]);
    CHECK_OK(asyncrt_spawn(ex, &fut, ASYNCRT_SPAWN_LOCAL, &tasks[i]));
  }
  CHECK_OK(asyncrt_run(ex, NULL));
  CHECK_INT(tm_tstats(ex).waiters, T2_N);

  for (i = 1; i < T2_N; i += 2) {
    CHECK_OK(asyncrt_task_cancel(tasks[i]));
    cancelled++;
    kept += fs[i].keep_timer;
  }
  CHECK(kept > 0);
  CHECK_OK(asyncrt_run(ex, &polls));
  CHECK_INT(polls, 0);
  for (i = 0; i < T2_N; i++) {
    int c = i % 2 == 1;
    CHECK_INT(fs[i].polls, 1);
    CHECK_INT(fs[i].drops, c);
    CHECK_STATUS(asyncrt_task_status(tasks[i]), c ? ASYNCRT_ECANCELLED : ASYNCRT_EAGAIN);
    CHECK_INT(asyncrt_timer_armed(&fs[i].timer), !c || fs[i].keep_timer);
  }
  CHECK_INT(tm_tstats(ex).waiters, T2_N - cancelled + kept);
  CHECK_INT(tm_tstats(ex).completions, 0);

  /* Past every deadline: only the tasks left are polled. */
  CHECK_OK(asyncrt_clock_advance(ex, 100 * MS));
  CHECK_OK(asyncrt_run(ex, &polls));
  CHECK_INT(polls, T2_N - cancelled);
  for (i = 0; i < T2_N; i++) {
    int c = i % 2 == 1;
    CHECK_INT(fs[i].polls, c ? 1 : 2);
    CHECK_INT(fs[i].drops, 1);
    CHECK_INT(fs[i].bad_polls, 0);
    CHECK_INT(fs[i].done, !c);
    CHECK_INT(asyncrt_timer_armed(&fs[i].timer), 0);
    CHECK_STATUS(asyncrt_task_status(tasks[i]), c ? ASYNCRT_ECANCELLED : ASYNCRT_OK);
  }
  CHECK_INT(tm_tstats(ex).waiters, 0);
  /* The kept timers fired too (into cancelled tasks). */
  CHECK_INT(tm_tstats(ex).completions, T2_N - cancelled + kept);

  /* Cancelling a completed task changes nothing. */
  CHECK_OK(asyncrt_task_cancel(tasks[0]));
  CHECK_OK(asyncrt_run(ex, NULL));
  CHECK_OK(asyncrt_task_status(tasks[0]));
  CHECK_INT(fs[0].drops, 1);
  for (i = 0; i < T2_N; i++) {
    CHECK_OK(asyncrt_task_release(tasks[i]));
  }
  CHECK_OK(asyncrt_executor_free(ex));
  for (i = 0; i < T2_N; i++) {
    CHECK_INT(fs[i].drops, 1);
  }
  free(fs);
}

/* A task whose timer is already due (the clock passed its deadline, the
 * executor has not run since) is cancelled: it had not completed, so it
 * completes cancelled, without another poll. */
static void test_cancel_task_whose_timer_is_due(void) {
  asyncrt_executor *ex = tm_local_test();
  tw f;
  asyncrt_task *task = NULL;
  asyncrt_future fut;
  uint64_t polls = 0;
  CHECK(ex != NULL);
  memset(&f, 0, sizeof f);
  f.deadline = 1 * MS;
  fut = tw_future(&f);
  CHECK_OK(asyncrt_spawn(ex, &fut, ASYNCRT_SPAWN_LOCAL, &task));
  CHECK_OK(asyncrt_run(ex, NULL));
  CHECK_OK(asyncrt_clock_advance(ex, 2 * MS));
  CHECK_OK(asyncrt_task_cancel(task));
  CHECK_OK(asyncrt_run(ex, &polls));
  CHECK_INT(polls, 0);
  CHECK_INT(f.polls, 1);
  CHECK_INT(f.drops, 1);
  CHECK_INT(f.done, 0);
  CHECK_STATUS(asyncrt_task_status(task), ASYNCRT_ECANCELLED);
  CHECK_INT(asyncrt_timer_armed(&f.timer), 0);
  CHECK_INT(tm_tstats(ex).waiters, 0);
  CHECK_OK(asyncrt_task_release(task));
  CHECK_OK(asyncrt_executor_free(ex));
  CHECK_INT(f.drops, 1);
}

/* asyncrt_timer_cancel from inside the future's own poll, and from the
 * driver's thread between runs; timers moved to an earlier and a later
 * deadline by polling them again. A disarmed timer wakes nobody. */
static void test_timer_cancel_and_move(void) {
  asyncrt_executor *ex = tm_local_test();
  tc f;
  asyncrt_task *task = NULL;
  asyncrt_future fut;
  uint64_t base, polls = 0;
  CHECK(ex != NULL);

  /* A: arm (10 ms), cancel inside the poll, re-arm later (30 ms). */
  memset(&f, 0, sizeof f);
  base = tm_now(ex);
  f.plan[0] = base + 10 * MS;
  f.plan[1] = TC_CANCEL;
  f.plan[2] = base + 30 * MS;
  f.nplan = 3;
  fut = tc_future(&f);
  CHECK_OK(asyncrt_spawn(ex, &fut, ASYNCRT_SPAWN_LOCAL, &task));
  CHECK_OK(asyncrt_run(ex, NULL));
  CHECK_INT(f.polls, 1);
  CHECK_INT(f.result[0], ASYNCRT_POLL_PENDING);
  CHECK_INT(f.armed[0], 1);
  CHECK_INT(tm_tstats(ex).waiters, 1);
  asyncrt_waker_wake_by_ref(&f.waker);
  CHECK_OK(asyncrt_run(ex, NULL));
  CHECK_INT(f.polls, 2);
  CHECK_INT(f.armed[1], 0);
  CHECK_INT(tm_tstats(ex).waiters, 0);
  CHECK_OK(asyncrt_clock_advance(ex, 20 * MS)); /* past the cancelled deadline */
  CHECK_OK(asyncrt_run(ex, &polls));
  CHECK_INT(polls, 0);
  CHECK_INT(f.polls, 2);
  CHECK_INT(tm_tstats(ex).completions, 0);
  asyncrt_waker_wake_by_ref(&f.waker);
  CHECK_OK(asyncrt_run(ex, NULL));
  CHECK_INT(f.polls, 3);
  CHECK_INT(f.result[2], ASYNCRT_POLL_PENDING);
  CHECK_INT(f.armed[2], 1);
  CHECK_OK(asyncrt_clock_advance(ex, 10 * MS - 1));
  CHECK_OK(asyncrt_run(ex, &polls));
  CHECK_INT(polls, 0);
  CHECK_OK(asyncrt_clock_advance(ex, 1));
  CHECK_OK(asyncrt_run(ex, &polls));
  CHECK_INT(polls, 1);
  CHECK_INT(f.polls, 4);
  CHECK_INT(f.result[3], ASYNCRT_POLL_READY);
  CHECK_INT(f.armed[3], 0);
  CHECK_OK(asyncrt_task_status(task));
  CHECK_INT(f.drops, 1);
  CHECK_INT(f.bad_polls, 0);
  CHECK_OK(asyncrt_task_release(task));
  CHECK_INT(tm_tstats(ex).completions, 1);

  /* B: armed for 50 ms, then moved earlier, to 25 ms: one waiter, not two. */
  memset(&f, 0, sizeof f);
  base = tm_now(ex);
  f.plan[0] = base + 50 * MS;
  f.plan[1] = base + 25 * MS;
  f.nplan = 2;
  fut = tc_future(&f);
  CHECK_OK(asyncrt_spawn(ex, &fut, ASYNCRT_SPAWN_LOCAL, &task));
  CHECK_OK(asyncrt_run(ex, NULL));
  asyncrt_waker_wake_by_ref(&f.waker);
  CHECK_OK(asyncrt_run(ex, NULL));
  CHECK_INT(f.polls, 2);
  CHECK_INT(f.armed[1], 1);
  CHECK_INT(tm_tstats(ex).waiters, 1);
  CHECK_OK(asyncrt_clock_advance(ex, 25 * MS - 1));
  CHECK_OK(asyncrt_run(ex, &polls));
  CHECK_INT(polls, 0);
  CHECK_OK(asyncrt_clock_advance(ex, 1));
  CHECK_OK(asyncrt_run(ex, &polls));
  CHECK_INT(polls, 1);
  CHECK_INT(f.result[2], ASYNCRT_POLL_READY);
  CHECK_OK(asyncrt_task_status(task));
  CHECK_INT(tm_tstats(ex).waiters, 0);
  CHECK_OK(asyncrt_task_release(task));

  /* C: armed for 10 ms, then moved later, to 40 ms: 10 ms wakes nobody. */
  memset(&f, 0, sizeof f);
  base = tm_now(ex);
  f.plan[0] = base + 10 * MS;
  f.plan[1] = base + 40 * MS;
  f.nplan = 2;
  fut = tc_future(&f);
  CHECK_OK(asyncrt_spawn(ex, &fut, ASYNCRT_SPAWN_LOCAL, &task));
  CHECK_OK(asyncrt_run(ex, NULL));
  asyncrt_waker_wake_by_ref(&f.waker);
  CHECK_OK(asyncrt_run(ex, NULL));
  CHECK_INT(f.polls, 2);
  CHECK_INT(tm_tstats(ex).waiters, 1);
  CHECK_OK(asyncrt_clock_advance(ex, 39 * MS));
  CHECK_OK(asyncrt_run(ex, &polls));
  CHECK_INT(polls, 0);
  CHECK_INT(f.polls, 2);
  CHECK_OK(asyncrt_clock_advance(ex, 1 * MS));
  CHECK_OK(asyncrt_run(ex, &polls));
  CHECK_INT(polls, 1);
  CHECK_INT(f.result[2], ASYNCRT_POLL_READY);
  CHECK_OK(asyncrt_task_release(task));

  /* D: disarmed from the driver's thread, between runs. */
  memset(&f, 0, sizeof f);
  base = tm_now(ex);
  f.plan[0] = base + 5 * MS;
  f.nplan = 1;
  fut = tc_future(&f);
  CHECK_OK(asyncrt_spawn(ex, &fut, ASYNCRT_SPAWN_LOCAL, &task));
  CHECK_OK(asyncrt_run(ex, NULL));
  CHECK_INT(asyncrt_timer_armed(&f.timer), 1);
  asyncrt_timer_cancel(&f.timer);
  CHECK_INT(asyncrt_timer_armed(&f.timer), 0);
  asyncrt_timer_cancel(&f.timer); /* a second cancel is a no-op */
  CHECK_INT(tm_tstats(ex).waiters, 0);
  CHECK_OK(asyncrt_clock_advance(ex, 10 * MS));
  CHECK_OK(asyncrt_run(ex, &polls));
  CHECK_INT(polls, 0);
  CHECK_INT(f.polls, 1);
  CHECK_STATUS(asyncrt_task_status(task), ASYNCRT_EAGAIN);
  /* Polled again for its (past) deadline, it completes within the run. (Not
   * necessarily at that poll: the timer compares with the clock of the last
   * tick, which may predate the advance, so it may arm and fire at once.) */
  asyncrt_waker_wake_by_ref(&f.waker);
  CHECK_OK(asyncrt_run(ex, NULL));
  CHECK(f.polls >= 2);
  CHECK_INT(f.done, 1);
  CHECK_OK(asyncrt_task_status(task));
  CHECK_OK(asyncrt_task_release(task));
  CHECK_OK(asyncrt_executor_free(ex));
}

/* --- 3. a hundred thousand timers ---------------------------------------------- */

#define T3_N 100000
#define T3_STEPS 16

static int cmp_u64(const void *a, const void *b) {
  uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
  return x < y ? -1 : x > y;
}

/* 100,000 timers from a microsecond to three hours, all armed at once, then
 * fired by T3_STEPS advances, each landing exactly on a deadline (so about
 * T3_N / T3_STEPS come due at each). */
static void test_hundred_thousand_timers(void) {
  asyncrt_executor *ex = tm_local_test();
  tw *fs = calloc(T3_N, sizeof *fs);
  uint64_t *sorted = malloc(T3_N * sizeof *sorted);
  uint64_t *by_seq = calloc(T3_N, sizeof *by_seq);
  asyncrt_future fut;
  asyncrt_subsystem_stats st;
  uint64_t polls = 0, clock = 0, target, seq_base;
  int i, s, done_total = 0;
  CHECK(ex != NULL && fs != NULL && sorted != NULL && by_seq != NULL);
  rng_seed(0x100000ull);
  for (i = 0; i < T3_N; i++) {
    switch (i % 4) {
    case 0:
    case 1:
      fs[i].deadline = rng_range(1 * US, 100 * MS);
      break;
    case 2:
      fs[i].deadline = rng_range(100 * MS, 10 * SEC);
      break;
    default:
      fs[i].deadline = rng_range(10 * SEC, 3 * 3600 * SEC);
      break;
    }
    sorted[i] = fs[i].deadline;
    fut = tw_future(&fs[i]);
    CHECK_OK(asyncrt_spawn(ex, &fut, ASYNCRT_SPAWN_LOCAL, NULL));
  }
  qsort(sorted, T3_N, sizeof *sorted, cmp_u64);
  CHECK_OK(asyncrt_run(ex, &polls));
  CHECK_INT(polls, T3_N);
  st = tm_tstats(ex);
  CHECK_INT(st.waiters, T3_N);
  CHECK_INT(st.completions, 0);
  CHECK_INT(tf_stats(ex).tasks_live, T3_N);
  for (i = 0; i < T3_N; i++) {
    CHECK_INT(asyncrt_timer_armed(&fs[i].timer), 1);
  }
  seq_base = __atomic_load_n(&tw_seq, __ATOMIC_ACQUIRE);
  for (s = 1; s <= T3_STEPS; s++) {
    int fired = 0;
    target = sorted[(size_t)s * T3_N / T3_STEPS - 1];
    CHECK(target >= clock);
    CHECK_OK(asyncrt_clock_advance(ex, target - clock));
    clock = target;
    CHECK_OK(asyncrt_run(ex, &polls));
    for (i = 0; i < T3_N; i++) {
      int due = fs[i].deadline <= clock;
      CHECK_INT(fs[i].done, due);
      CHECK_INT(asyncrt_timer_armed(&fs[i].timer), !due);
      if (due && fs[i].done_clock == clock) {
        fired++;
      }
    }
    CHECK_INT(polls, fired);
    done_total += fired;
    st = tm_tstats(ex);
    CHECK_INT(st.completions, done_total);
    CHECK_INT(st.waiters, T3_N - done_total);
  }
  CHECK_INT(done_total, T3_N);
  /* In deadline order across the whole run. */
  for (i = 0; i < T3_N; i++) {
    CHECK(fs[i].seq > seq_base && fs[i].seq <= seq_base + T3_N);
    by_seq[fs[i].seq - seq_base - 1] = fs[i].deadline;
  }
  for (i = 1; i < T3_N; i++) {
    if (by_seq[i] < by_seq[i - 1]) {
      int k, inversions = 0;
      for (k = 1; k < T3_N; k++) {
        inversions += by_seq[k] < by_seq[k - 1];
      }
      fprintf(stderr,
              "  completion %d has deadline %llu, after one with deadline %llu "
              "(%d completions came after a later deadline)\n",
              i, (unsigned long long)by_seq[i], (unsigned long long)by_seq[i - 1], inversions);
    }
    CHECK(by_seq[i] >= by_seq[i - 1]);
  }
  for (i = 0; i < T3_N; i++) {
    CHECK_INT(fs[i].polls, 2);
    CHECK_INT(fs[i].drops, 1);
    CHECK_INT(fs[i].early, 0);
    CHECK_INT(fs[i].bad_polls, 0);
  }
  CHECK_INT(tf_stats(ex).tasks_live, 0);
  CHECK_INT(tf_stats(ex).memory_in_use, 0);
  CHECK_OK(asyncrt_executor_free(ex));
  free(by_seq);
  free(sorted);
  free(fs);
}

/* --- 4. sleeps and timeouts on the test clock ------------------------------------ */

/* A relative sleep counts from its first poll, not from its creation. */
static void test_sleep_for_counts_from_first_poll(void) {
  asyncrt_executor *ex = tm_local_test();
  asyncrt_sleep s;
  watch w;
  asyncrt_future sf, wf;
  asyncrt_task *task = NULL;
  uint64_t polls = 0;
  CHECK(ex != NULL);
  CHECK_OK(asyncrt_sleep_for(&s, 5 * MS, &sf)); /* made at clock 0 */
  CHECK_INT(sf.vtable->output_size, 0);
  CHECK_INT(asyncrt_timer_armed(&s.timer), 0);
  CHECK_OK(asyncrt_clock_advance(ex, 10 * MS));
  wf = watch_init(&w, &sf);
  CHECK_OK(asyncrt_spawn(ex, &wf, ASYNCRT_SPAWN_LOCAL, &task));
  CHECK_OK(asyncrt_run(ex, NULL)); /* first poll at 10 ms: due at 15 ms */
  CHECK_INT(w.polls, 1);
  CHECK_INT(asyncrt_timer_armed(&s.timer), 1);
  CHECK_INT(tm_tstats(ex).waiters, 1);
  CHECK_OK(asyncrt_clock_advance(ex, 5 * MS - 1));
  CHECK_OK(asyncrt_run(ex, &polls));
  CHECK_INT(polls, 0);
  CHECK_INT(w.done, 0);
  CHECK_STATUS(asyncrt_task_status(task), ASYNCRT_EAGAIN);
  CHECK_OK(asyncrt_clock_advance(ex, 1));
  CHECK_OK(asyncrt_run(ex, &polls));
  CHECK_INT(polls, 1);
  CHECK_INT(w.done, 1);
  CHECK_INT(w.result, ASYNCRT_POLL_READY);
  CHECK_INT(w.done_clock, 15 * MS);
  CHECK_INT(w.polls, 2);
  CHECK_INT(w.drops, 1);
  CHECK_INT(asyncrt_timer_armed(&s.timer), 0);
  CHECK_OK(asyncrt_task_status(task));
  CHECK_OK(asyncrt_task_release(task));
  CHECK_INT(tm_tstats(ex).waiters, 0);
  CHECK_INT(tm_tstats(ex).completions, 1);
  CHECK_OK(asyncrt_executor_free(ex));
}

static void test_sleep_until_and_zero_sleeps(void) {
  asyncrt_executor *ex = tm_local_test();
  asyncrt_sleep s[4];
  watch w[4];
  asyncrt_task *task[4];
  uint64_t polls = 0;
  int i;
  CHECK(ex != NULL);
  CHECK_OK(asyncrt_clock_advance(ex, 1 * SEC));
  /* 0: due in 3 ms; 1: in the past; 2: now; 3: a zero sleep_for */
  CHECK_OK(spawn_sleep(ex, &w[0], &s[0], 1, 1 * SEC + 3 * MS, ASYNCRT_SPAWN_LOCAL, &task[0]));
  CHECK_OK(spawn_sleep(ex, &w[1], &s[1], 1, 1 * SEC - 1, ASYNCRT_SPAWN_LOCAL, &task[1]));
  CHECK_OK(spawn_sleep(ex, &w[2], &s[2], 1, 1 * SEC, ASYNCRT_SPAWN_LOCAL, &task[2]));
  CHECK_OK(spawn_sleep(ex, &w[3], &s[3], 0, 0, ASYNCRT_SPAWN_LOCAL, &task[3]));
  CHECK_OK(asyncrt_run(ex, NULL));
  CHECK_INT(w[0].done, 0);
  for (i = 1; i < 4; i++) { /* at once: no advance needed */
    CHECK_INT(w[i].done, 1);
    CHECK_INT(w[i].result, ASYNCRT_POLL_READY);
    CHECK_OK(asyncrt_task_status(task[i]));
    CHECK_INT(asyncrt_timer_armed(&s[i].timer), 0);
  }
  CHECK_INT(tm_tstats(ex).waiters, 1);
  CHECK_OK(asyncrt_clock_advance(ex, 3 * MS - 1));
  CHECK_OK(asyncrt_run(ex, &polls));
  CHECK_INT(polls, 0);
  CHECK_OK(asyncrt_clock_advance(ex, 1));
  CHECK_OK(asyncrt_run(ex, &polls));
  CHECK_INT(polls, 1);
  CHECK_INT(w[0].done, 1);
  CHECK_INT(w[0].done_clock, 1 * SEC + 3 * MS);
  for (i = 0; i < 4; i++) {
    CHECK_INT(w[i].drops, 1);
    CHECK_INT(w[i].bad_polls, 0);
    CHECK_OK(asyncrt_task_release(task[i]));
  }
  CHECK_INT(tm_tstats(ex).waiters, 0);
  CHECK_OK(asyncrt_executor_free(ex));
}

/* A sleep whose task is cancelled disarms its timer in its drop. */
static void test_cancelled_sleep_disarms(void) {
  asyncrt_executor *ex = tm_local_test();
  asyncrt_sleep s;
  watch w;
  asyncrt_task *task = NULL;
  uint64_t polls = 0;
  CHECK(ex != NULL);
  CHECK_OK(spawn_sleep(ex, &w, &s, 0, 1 * SEC, ASYNCRT_SPAWN_LOCAL, &task));
  CHECK_OK(asyncrt_run(ex, NULL));
  CHECK_INT(asyncrt_timer_armed(&s.timer), 1);
  CHECK_OK(asyncrt_task_cancel(task));
  CHECK_OK(asyncrt_run(ex, NULL));
  CHECK_INT(w.drops, 1);
  CHECK_INT(asyncrt_timer_armed(&s.timer), 0);
  CHECK_INT(tm_tstats(ex).waiters, 0);
  CHECK_OK(asyncrt_clock_advance(ex, 2 * SEC));
  CHECK_OK(asyncrt_run(ex, &polls));
  CHECK_INT(polls, 0);
  CHECK_INT(w.polls, 1);
  CHECK_INT(tm_tstats(ex).completions, 0);
  CHECK_STATUS(asyncrt_task_status(task), ASYNCRT_ECANCELLED);
  CHECK_OK(asyncrt_task_release(task));
  CHECK_OK(asyncrt_executor_free(ex));
}

/* Inner completes first: its output passes through, the timer is disarmed. */
static void test_timeout_inner_completes_first(void) {
  asyncrt_executor *ex = tm_local_test();
  asyncrt_timeout to, to2;
  tf_state inner, inner2;
  asyncrt_future f, tf;
  asyncrt_task *task = NULL;
  uint64_t out = 0, polls = 0;
  CHECK(ex != NULL);

  /* As a task: the inner waits for the test's wake. */
  tf_init(&inner);
  inner.park = 1;
  inner.pendings = 1;
  inner.value = 77;
  f = tf_future(&inner);
  CHECK_OK(asyncrt_timeout_for(&to, &f, 10 * MS, &tf));
  CHECK_INT(tf.vtable->output_size, sizeof(uint64_t));
  CHECK_OK(asyncrt_spawn(ex, &tf, ASYNCRT_SPAWN_LOCAL, &task));
  CHECK_OK(asyncrt_run(ex, NULL));
  CHECK_INT(inner.polls, 1);
  CHECK_INT(tf_get(&inner.parked_flag), 1);
  CHECK_INT(tm_tstats(ex).waiters, 1);
  CHECK_OK(asyncrt_clock_advance(ex, 10 * MS - 1));
  CHECK_OK(asyncrt_run(ex, &polls));
  CHECK_INT(polls, 0);
  asyncrt_waker_wake_by_ref(&inner.parked);
  CHECK_OK(asyncrt_run(ex, NULL));
  CHECK_OK(asyncrt_task_status(task));
  CHECK_INT(inner.polls, 2);
  CHECK_INT(inner.drops, 1);
  CHECK_INT(tm_tstats(ex).waiters, 0);
  {
    asyncrt_future join;
    CHECK_OK(asyncrt_task_join(task, &join));
    CHECK_OK(asyncrt_block_on(ex, &join, &out, TF_TIMEOUT_NS));
    CHECK_INT(out, 77);
  }
  CHECK_OK(asyncrt_clock_advance(ex, 1 * SEC));
  CHECK_OK(asyncrt_run(ex, &polls));
  CHECK_INT(polls, 0);
  CHECK_INT(inner.drops, 1);
  CHECK_INT(inner.bad_polls, 0);
  CHECK_OK(asyncrt_task_release(task));

  /* Through block_on: an inner that finishes by itself after three polls. */
  tf_init(&inner2);
  inner2.pendings = 3;
  inner2.value = 88;
  f = tf_future(&inner2);
  CHECK_OK(asyncrt_timeout_for(&to2, &f, 10 * MS, &tf));
  out = 0;
  CHECK_OK(asyncrt_block_on(ex, &tf, &out, TF_TIMEOUT_NS));
  CHECK_INT(out, 88);
  CHECK_INT(inner2.polls, 4);
  CHECK_INT(inner2.drops, 1);
  CHECK_INT(tm_tstats(ex).waiters, 0);

  /* A zero timeout still polls the inner first: ready at once wins. */
  tf_init(&inner2);
  inner2.value = 99;
  f = tf_future(&inner2);
  CHECK_OK(asyncrt_timeout_for(&to2, &f, 0, &tf));
  out = 0;
  CHECK_OK(asyncrt_block_on(ex, &tf, &out, TF_TIMEOUT_NS));
  CHECK_INT(out, 99);
  CHECK_INT(inner2.drops, 1);
  CHECK_OK(asyncrt_executor_free(ex));
}

typedef struct advancer {
  asyncrt_executor *ex;
  uint64_t waiters; /* advance once this many timers are armed */
  uint64_t delta;
  int status;       /* asyncrt_clock_advance's; -1: the timers never armed */
} advancer;

static void *advance_when_armed(void *arg) {
  advancer *a = arg;
  a->status = -1;
  if (tm_wait_waiters(a->ex, a->waiters, 5000)) {
    a->status = asyncrt_clock_advance(a->ex, a->delta);
  }
  return NULL;
}

/* The timer first: the inner is dropped (once) and the future fails with
 * ETIMEDOUT -- as a task's status, and through block_on while another
 * thread moves the clock. */
static void test_timeout_timer_first(void) {
  asyncrt_executor *ex = tm_local_test();
  asyncrt_timeout to;
  tf_state inner;
  watch w;
  asyncrt_future f, tf, wf;
  asyncrt_task *task = NULL;
  advancer adv;
  pthread_t th;
  uint64_t out = 0, polls = 0;
  CHECK(ex != NULL);

  tf_init(&inner);
  inner.park = 1;
  inner.pendings = 1000000;
  f = tf_future(&inner);
  CHECK_OK(asyncrt_timeout_for(&to, &f, 10 * MS, &tf));
  CHECK_OK(asyncrt_spawn(ex, &tf, ASYNCRT_SPAWN_LOCAL, &task));
  CHECK_OK(asyncrt_run(ex, NULL));
  CHECK_INT(tm_tstats(ex).waiters, 1);
  CHECK_OK(asyncrt_clock_advance(ex, 10 * MS - 1));
  CHECK_OK(asyncrt_run(ex, &polls));
  CHECK_INT(polls, 0);
  CHECK_STATUS(asyncrt_task_status(task), ASYNCRT_EAGAIN);
  CHECK_INT(inner.drops, 0);
  CHECK_OK(asyncrt_clock_advance(ex, 1));
  CHECK_OK(asyncrt_run(ex, NULL));
  CHECK_STATUS(asyncrt_task_status(task), ASYNCRT_ETIMEDOUT);
  CHECK_INT(inner.drops, 1);
  CHECK_INT(inner.bad_polls, 0);
  CHECK_INT(inner.finished, 0);
  CHECK_INT(tm_tstats(ex).waiters, 0);
  CHECK_OK(asyncrt_task_release(task));
  CHECK_INT(inner.drops, 1);

  /* block_on sleeps; another thread advances the clock once the timer is
   * armed. The watch tells the timeout's ETIMEDOUT from block_on's own. */
  tf_init(&inner);
  inner.park = 1;
  inner.pendings = 1000000;
  f = tf_future(&inner);
  CHECK_OK(asyncrt_timeout_for(&to, &f, 10 * MS, &tf));
  wf = watch_init(&w, &tf);
  adv.ex = ex;
  adv.waiters = 1;
  adv.delta = 10 * MS;
  adv.status = -2;
  CHECK(pthread_create(&th, NULL, advance_when_armed, &adv) == 0);
  CHECK_STATUS(asyncrt_block_on(ex, &wf, &out, TF_TIMEOUT_NS), ASYNCRT_ETIMEDOUT);
  pthread_join(th, NULL);
  CHECK_OK(adv.status);
  CHECK_INT(w.done, 1);
  CHECK_INT(w.result, ASYNCRT_POLL_ERROR);
  CHECK_STATUS(w.failure, ASYNCRT_ETIMEDOUT);
  CHECK(w.done_clock >= 20 * MS);
  CHECK_INT(w.drops, 1);
  CHECK_INT(inner.drops, 1);
  CHECK_INT(inner.bad_polls, 0);
  CHECK_INT(tm_tstats(ex).waiters, 0);
  CHECK_OK(asyncrt_executor_free(ex));
}

/* A failure of the inner future passes through, named or not; the timer is
 * disarmed. Cancelling a pending timeout drops the inner once. */
static void test_timeout_inner_fails(void) {
  asyncrt_executor *ex = tm_local_test();
  asyncrt_timeout to[3];
  tf_state inner[3];
  asyncrt_future f, tf;
  asyncrt_task *task[3];
  int i;
  CHECK(ex != NULL);
  for (i = 0; i < 3; i++) {
    tf_init(&inner[i]);
  }
  inner[0].pendings = 1; /* fails on its second poll, after the timer is armed */
  inner[0].fail = 1234;
  inner[1].fail = TF_FAIL_UNNAMED; /* fails at once, unnamed */
  inner[2].park = 1;               /* waits; its task is cancelled */
  inner[2].pendings = 1000000;
  for (i = 0; i < 3; i++) {
    f = tf_future(&inner[i]);
    CHECK_OK(asyncrt_timeout_for(&to[i], &f, 10 * MS, &tf));
    CHECK_OK(asyncrt_spawn(ex, &tf, ASYNCRT_SPAWN_LOCAL, &task[i]));
  }
  CHECK_OK(asyncrt_run(ex, NULL));
  CHECK_STATUS(asyncrt_task_status(task[0]), 1234);
  CHECK_STATUS(asyncrt_task_status(task[1]), ASYNCRT_EFAILED);
  CHECK_STATUS(asyncrt_task_status(task[2]), ASYNCRT_EAGAIN);
  CHECK_INT(inner[0].drops, 1);
  CHECK_INT(inner[1].drops, 1);
  CHECK_INT(inner[2].drops, 0);
  CHECK_INT(tm_tstats(ex).waiters, 1);
  CHECK_OK(asyncrt_task_cancel(task[2]));
  CHECK_OK(asyncrt_run(ex, NULL));
  CHECK_STATUS(asyncrt_task_status(task[2]), ASYNCRT_ECANCELLED);
  CHECK_INT(inner[2].drops, 1);
  CHECK_INT(tm_tstats(ex).waiters, 0);
  CHECK_OK(asyncrt_clock_advance(ex, 1 * SEC));
  CHECK_OK(asyncrt_run(ex, NULL));
  for (i = 0; i < 3; i++) {
    CHECK_INT(inner[i].drops, 1);
    CHECK_INT(inner[i].bad_polls, 0);
    CHECK_OK(asyncrt_task_release(task[i]));
  }
  CHECK_INT(tm_tstats(ex).completions, 0);
  CHECK_OK(asyncrt_executor_free(ex));
}

/* --- 5. the monotonic clock ------------------------------------------------------ */

static void test_block_on_sleep_monotonic(void) {
  asyncrt_executor *ex = tf_executor();
  asyncrt_sleep s;
  asyncrt_future sf;
  unsigned caps = 0;
  int64_t before, t0, t1;
  uint64_t c0 = 0, c1 = 0;
  CHECK(ex != NULL);
  CHECK_OK(asyncrt_executor_capabilities(ex, &caps));
  CHECK((caps & ASYNCRT_CAP_TIMERS) != 0);
  CHECK((caps & ASYNCRT_CAP_TEST_CLOCK) == 0);
  /* The monotonic clock is CLOCK_MONOTONIC, read now. */
  before = tf_now_ns();
  CHECK_OK(asyncrt_executor_now(ex, &c0));
  t0 = tf_now_ns();
  CHECK(c0 >= (uint64_t)before && c0 <= (uint64_t)t0);
  CHECK_OK(asyncrt_sleep_for(&s, 2 * MS, &sf));
  CHECK_OK(asyncrt_block_on(ex, &sf, NULL, TF_TIMEOUT_NS));
  t1 = tf_now_ns();
  CHECK_OK(asyncrt_executor_now(ex, &c1));
  /* Never early (no upper bound: that would be a timing assertion). */
  CHECK(t1 - t0 >= (int64_t)(2 * MS));
  CHECK(c1 - c0 >= 2 * MS);
  CHECK_INT(asyncrt_timer_armed(&s.timer), 0);
  CHECK_INT(tm_tstats(ex).completions, 1);
  CHECK_INT(tm_tstats(ex).waiters, 0);
  CHECK_OK(asyncrt_executor_free(ex));
}

/* --- 6. a thread-per-core executor on the test clock ----------------------------- */

#define T6_WORKERS 2
#define T6_PER_WORKER 50
#define T6_SEND 50
#define T6_N (T6_WORKERS * T6_PER_WORKER + T6_SEND)
#define T6_DUE (10 * MS)

/* Local tasks on each worker and Send tasks sleep for T6_DUE. A probe on each
 * worker sleeps until T6_DUE - 1: once both probes completed after the clock
 * reached T6_DUE - 1, every worker has ticked at that time, and none of the
 * others may have completed. Then 1 ns more completes them all. */
static void test_threads_test_clock(void) {
  asyncrt_executor *ex = tm_executor(ASYNCRT_EXECUTOR_THREADS, T6_WORKERS, ASYNCRT_CLOCK_TEST, NULL);
  watch *ws = calloc(T6_N + T6_WORKERS, sizeof *ws);
  asyncrt_sleep *ss = calloc(T6_N + T6_WORKERS, sizeof *ss);
  asyncrt_task **tasks = calloc(T6_N + T6_WORKERS, sizeof *tasks);
  unsigned caps = 0;
  int i, n = 0;
  int64_t deadline;
  CHECK(ex != NULL && ws != NULL && ss != NULL && tasks != NULL);
  CHECK_OK(asyncrt_executor_capabilities(ex, &caps));
  CHECK((caps & ASYNCRT_CAP_TEST_CLOCK) != 0);
  CHECK((caps & ASYNCRT_CAP_TIMERS) != 0);
  for (i = 0; i < T6_WORKERS * T6_PER_WORKER; i++, n++) {
    CHECK_OK(spawn_sleep(ex, &ws[n], &ss[n], i % 2, T6_DUE,
                         ASYNCRT_SPAWN_LOCAL | ASYNCRT_SPAWN_WORKER(i % T6_WORKERS), &tasks[n]));
  }
  for (i = 0; i < T6_SEND; i++, n++) {
    CHECK_OK(spawn_sleep(ex, &ws[n], &ss[n], i % 2, T6_DUE, ASYNCRT_SPAWN_SEND, &tasks[n]));
  }
  for (i = 0; i < T6_WORKERS; i++) {
    CHECK_OK(spawn_sleep(ex, &ws[T6_N + i], &ss[T6_N + i], 1, T6_DUE - 1,
                         ASYNCRT_SPAWN_LOCAL | ASYNCRT_SPAWN_WORKER(i), &tasks[T6_N + i]));
  }
  if (!tm_wait_waiters(ex, T6_N + T6_WORKERS, 5000)) {
    fprintf(stderr, "  %llu timers armed after 5 s, want %d\n",
            (unsigned long long)tm_tstats(ex).waiters, T6_N + T6_WORKERS);
  }
  CHECK_INT(tm_tstats(ex).waiters, T6_N + T6_WORKERS);
  for (i = 0; i < T6_N + T6_WORKERS; i++) {
    CHECK_INT(tf_get(&ws[i].done), 0);
    CHECK_STATUS(asyncrt_task_status(tasks[i]), ASYNCRT_EAGAIN);
  }
  CHECK_INT(tm_now(ex), 0);

  CHECK_OK(asyncrt_clock_advance(ex, T6_DUE - 1));
  for (i = 0; i < T6_WORKERS; i++) {
    if (!tf_wait_flag(&ws[T6_N + i].done, 5000)) {
      fprintf(stderr, "  the probe on worker %d did not complete within 5 s\n", i);
    }
    CHECK_INT(tf_get(&ws[T6_N + i].done), 1);
  }
  for (i = 0; i < T6_N; i++) {
    CHECK_INT(tf_get(&ws[i].done), 0);
    CHECK_STATUS(asyncrt_task_status(tasks[i]), ASYNCRT_EAGAIN);
  }
  CHECK_INT(tm_tstats(ex).completions, T6_WORKERS);
  CHECK_INT(tm_tstats(ex).waiters, T6_N);

  CHECK_OK(asyncrt_clock_advance(ex, 1));
  deadline = tf_now_ns() + 5 * TF_SECOND_NS;
  for (i = 0; i < T6_N; i++) {
    int64_t left = deadline - tf_now_ns();
    if (!tf_wait_flag(&ws[i].done, left > 0 ? (int)(left / TF_MS_NS) : 0)) {
      fprintf(stderr, "  task %d did not complete within 5 s of the advance\n", i);
    }
    CHECK_INT(tf_get(&ws[i].done), 1);
  }
  for (i = 0; i < T6_N + T6_WORKERS; i++) {
    int64_t until = tf_now_ns() + 5 * TF_SECOND_NS;
    int rc;
    while ((rc = asyncrt_task_status(tasks[i])) == ASYNCRT_EAGAIN && tf_now_ns() < until) {
      tf_sleep_ms(1);
    }
    CHECK_OK(rc);
    CHECK_INT(ws[i].result, ASYNCRT_POLL_READY);
    CHECK(ws[i].done_clock >= (i < T6_N ? T6_DUE : T6_DUE - 1));
    CHECK_INT(tf_get(&ws[i].polls), 2);
    CHECK_INT(tf_get(&ws[i].bad_polls), 0);
    CHECK_INT(asyncrt_timer_armed(&ss[i].timer), 0);
    CHECK_OK(asyncrt_task_release(tasks[i]));
  }
  CHECK_INT(tm_tstats(ex).completions, T6_N + T6_WORKERS);
  CHECK_INT(tm_tstats(ex).waiters, 0);
  CHECK_STATUS(asyncrt_executor_tick(ex, NULL, NULL), ASYNCRT_ENOTSUP);
  CHECK_OK(asyncrt_executor_free(ex));
  for (i = 0; i < T6_N + T6_WORKERS; i++) {
    CHECK_INT(tf_get(&ws[i].drops), 1);
  }
  free(ws);
  free(ss);
  free(tasks);
}

/* --- 7. a foreign executor whose host ticks the timers ---------------------------- */

#define FQ_CAP 256

typedef struct fq {
  pthread_mutex_t mu;
  asyncrt_runnable *queue[FQ_CAP];
  size_t head, len;
  int overflow, finalized;
} fq;

static void fq_schedule(void *user_data, asyncrt_runnable *r) {
  fq *q = user_data;
  pthread_mutex_lock(&q->mu);
  if (q->len == FQ_CAP) {
    q->overflow++;
  } else {
    q->queue[(q->head + q->len) % FQ_CAP] = r;
    q->len++;
  }
  pthread_mutex_unlock(&q->mu);
}

static void fq_finalize(void *user_data) { tf_add(&((fq *)user_data)->finalized, 1); }

static const asyncrt_foreign_vtable fq_vtable = {sizeof(asyncrt_foreign_vtable), fq_schedule,
                                                 fq_finalize};

static asyncrt_runnable *fq_pop(fq *q) {
  asyncrt_runnable *r = NULL;
  pthread_mutex_lock(&q->mu);
  if (q->len > 0) {
    r = q->queue[q->head];
    q->head = (q->head + 1) % FQ_CAP;
    q->len--;
  }
  pthread_mutex_unlock(&q->mu);
  return r;
}

/* Runs what is queued (at most `max`); returns how many ran, -1 on an error. */
static int fq_run_all(fq *q, int max) {
  asyncrt_runnable *r;
  int n = 0;
  while (n < max && (r = fq_pop(q)) != NULL) {
    if (asyncrt_runnable_run(r) != ASYNCRT_OK) {
      return -1;
    }
    n++;
  }
  return n;
}

static fq *fq_new(asyncrt_executor **ex) {
  fq *q = calloc(1, sizeof *q);
  int rc;
  if (q == NULL) {
    return NULL;
  }
  pthread_mutex_init(&q->mu, NULL);
  rc = asyncrt_executor_new_foreign(&fq_vtable, q, ex);
  if (rc != ASYNCRT_OK) {
    fprintf(stderr, "  asyncrt_executor_new_foreign: got %s (%s)\n", asyncrt_status_str(rc),
            asyncrt_last_error());
    free(q);
    return NULL;
  }
  return q;
}

#define T7_SLEEP (3 * MS)
#define T7_MAX_ITERATIONS 1000

static void test_foreign_host_ticks_timers(void) {
  asyncrt_executor *ex = NULL;
  fq *q = fq_new(&ex);
  asyncrt_sleep s;
  watch w;
  asyncrt_task *task = NULL;
  uint64_t next = 0, first_next = 0;
  int busy = -1, iter, ran;
  int64_t t0, t1 = 0;
  CHECK(q != NULL);
  CHECK_OK(spawn_sleep(ex, &w, &s, 0, T7_SLEEP, ASYNCRT_SPAWN_LOCAL, &task));
  t0 = tf_now_ns();
  for (iter = 0; iter < T7_MAX_ITERATIONS; iter++) {
    struct timespec until;
    uint64_t cap;
    ran = fq_run_all(q, 1000);
    CHECK(ran >= 0);
    if (iter == 0) {
      t1 = tf_now_ns();
      CHECK_INT(ran, 1);
    }
    CHECK_OK(asyncrt_executor_tick(ex, &next, &busy));
    CHECK_INT(busy, 0);
    if (iter == 0) {
      /* Armed at the first poll, T7_SLEEP after it: the host is told so. */
      CHECK_INT(tf_get(&w.done), 0);
      CHECK_INT(tm_tstats(ex).waiters, 1);
      CHECK(next >= (uint64_t)t0 + T7_SLEEP);
      CHECK(next <= (uint64_t)t1 + T7_SLEEP);
      first_next = next;
    }
    if (tf_get(&w.done)) {
      break;
    }
    pthread_mutex_lock(&q->mu);
    ran = (int)q->len;
    pthread_mutex_unlock(&q->mu);
    if (ran > 0) {
      continue; /* the tick woke the task: run it before sleeping */
    }
    /* Nothing to run: sleep until the next timer (at most 100 ms a turn). */
    CHECK(next != UINT64_MAX);
    CHECK(tf_now_ns() - t0 < 2 * TF_SECOND_NS);
    cap = (uint64_t)tf_now_ns() + 100 * MS;
    if (next > cap) {
      next = cap;
    }
    until.tv_sec = (time_t)(next / SEC);
    until.tv_nsec = (long)(next % SEC);
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &until, NULL) == EINTR) {
    }
  }
  CHECK(iter < T7_MAX_ITERATIONS);
  CHECK_INT(tf_get(&w.done), 1);
  CHECK_INT(w.result, ASYNCRT_POLL_READY);
  /* Never early: not before its deadline, not before T7_SLEEP after the spawn. */
  CHECK(w.done_clock >= first_next);
  CHECK(w.done_real - t0 >= (int64_t)T7_SLEEP);
  CHECK_INT(w.polls, 2);
  CHECK_OK(asyncrt_task_status(task));
  CHECK_INT(asyncrt_timer_armed(&s.timer), 0);
  CHECK_OK(asyncrt_executor_tick(ex, &next, NULL));
  CHECK_INT(next, UINT64_MAX);
  CHECK_INT(tm_tstats(ex).completions, 1);
  CHECK_INT(tm_tstats(ex).waiters, 0);
  CHECK_STATUS(asyncrt_clock_advance(ex, 1), ASYNCRT_EINVAL); /* not a test clock */
  CHECK_OK(asyncrt_task_release(task));
  CHECK_OK(asyncrt_executor_free(ex));
  CHECK_INT(w.drops, 1);
  CHECK_INT(q->overflow, 0);
  CHECK(tf_wait_at_least(&q->finalized, 1, 5000));
  free(q);
}

/* --- 8. the host's fd wakes for a timer -------------------------------------------- */

#define T8_SLEEP (5 * MS)

static void test_host_fd_wakes_for_timer(void) {
  asyncrt_executor *ex = tf_executor();
  asyncrt_sleep s;
  watch w;
  asyncrt_task *task = NULL;
  uint64_t polls = 0;
  int fd = -1, turns = 0, idle = 0;
  int64_t t0, limit;
  CHECK(ex != NULL);
  CHECK_OK(asyncrt_executor_fd(ex, &fd));
  CHECK(fd >= 0);
  CHECK_OK(spawn_sleep(ex, &w, &s, 0, T8_SLEEP, ASYNCRT_SPAWN_LOCAL, &task));
  t0 = tf_now_ns();
  CHECK_OK(asyncrt_run_step(ex, 64, 0, &polls));
  CHECK_INT(polls, 1);
  CHECK_INT(tf_get(&w.done), 0);
  CHECK_INT(asyncrt_timer_armed(&s.timer), 1);
  limit = t0 + 2 * TF_SECOND_NS;
  while (!tf_get(&w.done) && turns < 100) {
    struct pollfd p;
    int r;
    int64_t left = limit - tf_now_ns();
    if (left <= 0) {
      break;
    }
    p.fd = fd;
    p.events = POLLIN;
    p.revents = 0;
    do {
      r = poll(&p, 1, (int)(left / TF_MS_NS) + 1);
    } while (r < 0 && errno == EINTR);
    CHECK(r >= 0);
    if (r == 0) {
      break; /* not readable in time */
    }
    turns++;
    CHECK_OK(asyncrt_run_step(ex, 64, 0, &polls));
    idle += polls == 0;
  }
  if (!tf_get(&w.done)) {
    fprintf(stderr, "  the sleep did not complete: fd readable %d times in 2 s\n", turns);
  }
  CHECK_INT(tf_get(&w.done), 1);
  /* Readable for the timer, not all along: at most the documented spurious
   * wake-up besides (a busy loop would count thousands). */
  CHECK(idle <= 2);
  CHECK(w.done_real - t0 >= (int64_t)T8_SLEEP);
  CHECK_OK(asyncrt_task_status(task));
  CHECK_INT(asyncrt_timer_armed(&s.timer), 0);
  CHECK_OK(asyncrt_task_release(task));
  CHECK_OK(asyncrt_executor_free(ex));
  CHECK_INT(w.drops, 1);
}

/* --- 9. misuse -------------------------------------------------------------------- */

/* Polls asyncrt_timer_poll with a NULL timer and records what it saw. */
typedef struct nullpoll {
  int result, failure, last_status, tick_status;
  asyncrt_executor *ex;
} nullpoll;

static int nullpoll_poll(void *self, asyncrt_context *cx, void *out) {
  nullpoll *n = self;
  (void)out;
  n->tick_status = asyncrt_executor_tick(n->ex, NULL, NULL);
  n->result = asyncrt_timer_poll(NULL, cx, 1);
  n->failure = asyncrt_context_failure(cx);
  n->last_status = asyncrt_last_status();
  return n->result;
}

/* Drops of a tf_state through a vtable of the test's own. */
static void tfs_drop(void *self) { tf_add(&((tf_state *)self)->drops, 1); }
static int ready_poll(void *self, asyncrt_context *cx, void *out) {
  (void)self;
  (void)cx;
  (void)out;
  return ASYNCRT_POLL_READY;
}

static const asyncrt_future_vtable nullpoll_vtable = {sizeof(asyncrt_future_vtable), 0,
                                                      nullpoll_poll, NULL, NULL};

static void test_misuse(void) {
  asyncrt_executor *ex = tm_local_test();
  asyncrt_executor *mono = tf_executor();
  asyncrt_timer t = ASYNCRT_TIMER_INIT;
  asyncrt_timeout to;
  asyncrt_sleep s;
  asyncrt_future f, out;
  asyncrt_subsystem_stats st;
  asyncrt_executor_config cfg;
  asyncrt_executor *bad = NULL;
  asyncrt_task *task = NULL;
  nullpoll np;
  tw w;
  tf_state inner;
  uint64_t now = 0;
  static const asyncrt_future_vtable no_poll = {sizeof(asyncrt_future_vtable), 0, NULL,
                                                tfs_drop, NULL};
  static const asyncrt_future_vtable too_big = {sizeof(asyncrt_future_vtable),
                                                ASYNCRT_OUTPUT_MAX + 1, ready_poll, tfs_drop, NULL};
  CHECK(ex != NULL && mono != NULL);

  /* Timer polls without a timer, without a context, without an executor. */
  CHECK_INT(asyncrt_timer_poll(&t, NULL, 5), ASYNCRT_POLL_ERROR);
  CHECK_STATUS(asyncrt_last_status(), ASYNCRT_EINVAL);
  CHECK_INT(asyncrt_timer_armed(&t), 0);
  memset(&np, 0, sizeof np);
  np.ex = ex;
  f.self = &np;
  f.vtable = &nullpoll_vtable;
  CHECK_OK(asyncrt_spawn(ex, &f, ASYNCRT_SPAWN_LOCAL, &task));
  CHECK_OK(asyncrt_run(ex, NULL));
  CHECK_INT(np.result, ASYNCRT_POLL_ERROR);
  CHECK_STATUS(np.failure, ASYNCRT_EINVAL);
  CHECK_STATUS(np.last_status, ASYNCRT_EINVAL);
  CHECK_STATUS(np.tick_status, ASYNCRT_EREENTRANT); /* a tick inside a poll */
  CHECK_STATUS(asyncrt_task_status(task), ASYNCRT_EINVAL);
  CHECK_OK(asyncrt_task_release(task));

  memset(&w, 0, sizeof w);
  w.deadline = 1;
  f = tw_future(&w);
  {
    int failure = 0;
    CHECK_INT(asyncrt_poll_with_waker(&f, &noop_waker, NULL, &failure), ASYNCRT_POLL_ERROR);
    CHECK_STATUS(failure, ASYNCRT_ENOTSUP);
    CHECK_STATUS(w.failure, ASYNCRT_ENOTSUP);
    CHECK_STATUS(asyncrt_last_status(), ASYNCRT_ENOTSUP);
  }
  CHECK_INT(asyncrt_timer_armed(&w.timer), 0);
  f.vtable->drop(f.self);

  /* Timers: NULL is a no-op for cancel and "not armed". */
  asyncrt_timer_cancel(NULL);
  asyncrt_timer_cancel(&t);
  CHECK_INT(asyncrt_timer_armed(NULL), 0);
  CHECK_INT(asyncrt_timer_armed(&t), 0);

  /* The clock. */
  CHECK_STATUS(asyncrt_clock_advance(mono, 1), ASYNCRT_EINVAL);
  CHECK_STATUS(asyncrt_clock_advance(NULL, 1), ASYNCRT_EINVAL); /* NULL: EINVAL, as elsewhere */
  CHECK_STATUS(asyncrt_executor_now(ex, NULL), ASYNCRT_EINVAL);
  CHECK_STATUS(asyncrt_executor_now(NULL, &now), ASYNCRT_EINVAL);
  CHECK_INT(tm_now(ex), 0);
  CHECK_OK(asyncrt_clock_advance(ex, 0));
  CHECK_INT(tm_now(ex), 0);
  CHECK_OK(asyncrt_clock_advance(ex, 10));
  CHECK_STATUS(asyncrt_clock_advance(ex, UINT64_MAX), ASYNCRT_EINVAL);
  CHECK_STATUS(asyncrt_clock_advance(ex, UINT64_MAX - 9), ASYNCRT_EINVAL);
  CHECK_INT(tm_now(ex), 10); /* a refused advance leaves the clock alone */
  /* A timer due at the end of time fires when the clock gets there. */
  {
    watch sw;
    asyncrt_sleep ss;
    uint64_t polls = 0;
    CHECK_OK(spawn_sleep(ex, &sw, &ss, 1, UINT64_MAX, ASYNCRT_SPAWN_LOCAL, NULL));
    CHECK_OK(asyncrt_run(ex, NULL));
    CHECK_INT(asyncrt_timer_armed(&ss.timer), 1);
    CHECK_OK(asyncrt_clock_advance(ex, UINT64_MAX - 11));
    CHECK_OK(asyncrt_run(ex, &polls));
    CHECK_INT(polls, 0);
    CHECK_OK(asyncrt_clock_advance(ex, 1));
    CHECK_INT(tm_now(ex), UINT64_MAX);
    CHECK_STATUS(asyncrt_clock_advance(ex, 1), ASYNCRT_EINVAL);
    CHECK_OK(asyncrt_run(ex, &polls));
    CHECK_INT(polls, 1);
    CHECK_INT(sw.done, 1);
    CHECK_INT(sw.result, ASYNCRT_POLL_READY);
    CHECK_INT(asyncrt_timer_armed(&ss.timer), 0);
    CHECK_INT(sw.drops, 1);
  }

  /* Sleeps and timeouts with NULL arguments; the inner future is dropped
   * exactly once whatever the timeout call returns. */
  CHECK_STATUS(asyncrt_sleep_for(NULL, 1, &out), ASYNCRT_EINVAL);
  CHECK_STATUS(asyncrt_sleep_for(&s, 1, NULL), ASYNCRT_EINVAL);
  CHECK_STATUS(asyncrt_sleep_until(NULL, 1, &out), ASYNCRT_EINVAL);
  CHECK_STATUS(asyncrt_sleep_until(&s, 1, NULL), ASYNCRT_EINVAL);
  tf_init(&inner);
  f = tf_future(&inner);
  CHECK_STATUS(asyncrt_timeout_for(NULL, &f, 1, &out), ASYNCRT_EINVAL);
  CHECK_INT(inner.drops, 1);
  tf_init(&inner);
  f = tf_future(&inner);
  CHECK_STATUS(asyncrt_timeout_for(&to, &f, 1, NULL), ASYNCRT_EINVAL);
  CHECK_INT(inner.drops, 1);
  CHECK_STATUS(asyncrt_timeout_for(&to, NULL, 1, &out), ASYNCRT_EINVAL);
  tf_init(&inner);
  f.self = &inner;
  f.vtable = &no_poll;
  CHECK_STATUS(asyncrt_timeout_for(&to, &f, 1, &out), ASYNCRT_EINVAL);
  CHECK_INT(inner.drops, 1);
  tf_init(&inner);
  f.vtable = &too_big;
  CHECK_STATUS(asyncrt_timeout_for(&to, &f, 1, &out), ASYNCRT_EINVAL);
  CHECK_INT(inner.drops, 1);
  tf_init(&inner);
  f.vtable = NULL; /* nothing asyncrt could drop it with */
  CHECK_STATUS(asyncrt_timeout_for(&to, &f, 1, &out), ASYNCRT_EINVAL);
  CHECK_INT(inner.drops, 0);
  /* A timeout made but never handed over: its drop drops the inner once. */
  tf_init(&inner);
  f = tf_future(&inner);
  CHECK_OK(asyncrt_timeout_for(&to, &f, 1, &out));
  CHECK_INT(out.vtable->output_size, sizeof(uint64_t));
  out.vtable->drop(out.self);
  CHECK_INT(inner.drops, 1);
  CHECK_INT(inner.polls, 0);

  /* Stats and ticks. */
  CHECK_STATUS(asyncrt_timer_stats_get(ex, NULL), ASYNCRT_EINVAL);
  memset(&st, 0, sizeof st);
  st.size = 1;
  CHECK_STATUS(asyncrt_timer_stats_get(ex, &st), ASYNCRT_EINVAL);
  st.size = sizeof st;
  CHECK_STATUS(asyncrt_timer_stats_get(NULL, &st), ASYNCRT_EINVAL);
  CHECK_STATUS(asyncrt_executor_tick(NULL, NULL, NULL), ASYNCRT_EINVAL);
  CHECK_OK(asyncrt_executor_tick(ex, NULL, NULL));

  /* An unknown clock. */
  asyncrt_executor_config_init(&cfg);
  cfg.clock = 7;
  CHECK_STATUS(asyncrt_executor_new(&cfg, &bad), ASYNCRT_EINVAL);
  CHECK(bad == NULL);

  CHECK_OK(asyncrt_executor_free(ex));
  CHECK_OK(asyncrt_executor_free(mono));
  CHECK_STATUS(asyncrt_clock_advance(ex, 1), ASYNCRT_EHANDLE);
  CHECK_STATUS(asyncrt_executor_now(ex, &now), ASYNCRT_EHANDLE);
  CHECK_STATUS(asyncrt_timer_stats_get(ex, &st), ASYNCRT_EHANDLE);
  CHECK_STATUS(asyncrt_executor_tick(ex, NULL, NULL), ASYNCRT_EHANDLE);
}

/* --- 10. executors freed with timers armed ---------------------------------------- */

typedef struct counting_alloc {
  int allocs, frees;
} counting_alloc;

static void *ca_alloc(size_t size, size_t align, void *user_data) {
  void *p = NULL;
  if (posix_memalign(&p, align < sizeof(void *) ? sizeof(void *) : align, size) != 0) {
    return NULL;
  }
  tf_add(&((counting_alloc *)user_data)->allocs, 1);
  return p;
}

static void ca_free(void *p, size_t size, void *user_data) {
  (void)size;
  free(p);
  tf_add(&((counting_alloc *)user_data)->frees, 1);
}

#define T10_SLEEPS 10
#define T10_KEPT 5

typedef struct t10 {
  counting_alloc ca;
  asyncrt_allocator alloc;
  watch ws[T10_SLEEPS];
  asyncrt_sleep ss[T10_SLEEPS];
  tw kept[T10_KEPT]; /* their drop leaves the timer armed */
} t10;

/* Sleeping tasks, and futures whose timers outlive them, on an executor that
 * is then freed: every future dropped once, every timer disarmed, and no
 * task memory left behind (the wakers the timers held are released). */
static void free_with_armed_timers(unsigned kind, unsigned clock) {
  t10 *x = calloc(1, sizeof *x);
  asyncrt_executor *ex = NULL;
  asyncrt_future fut;
  int i, n = T10_SLEEPS + T10_KEPT;
  CHECK(x != NULL);
  x->alloc.size = sizeof x->alloc;
  x->alloc.alloc = ca_alloc;
  x->alloc.free = ca_free;
  x->alloc.user_data = &x->ca;
  ex = tm_executor(kind, kind == ASYNCRT_EXECUTOR_THREADS ? 2 : 0, clock, &x->alloc);
  CHECK(ex != NULL);
  for (i = 0; i < T10_SLEEPS; i++) {
    CHECK_OK(spawn_sleep(ex, &x->ws[i], &x->ss[i], 0, 3600 * SEC + (uint64_t)i, ASYNCRT_SPAWN_SEND,
                         NULL));
  }
  for (i = 0; i < T10_KEPT; i++) {
    x->kept[i].keep_timer = 1;
    x->kept[i].deadline = UINT64_MAX - 1 - (uint64_t)i; /* far on either clock */
    fut = tw_future(&x->kept[i]);
    CHECK_OK(asyncrt_spawn(ex, &fut, ASYNCRT_SPAWN_SEND, NULL));
  }
  if (kind == ASYNCRT_EXECUTOR_LOCAL) {
    CHECK_OK(asyncrt_run(ex, NULL));
  }
  CHECK(tm_wait_waiters(ex, (uint64_t)n, 5000));
  CHECK_OK(asyncrt_executor_free(ex));
  for (i = 0; i < T10_SLEEPS; i++) {
    CHECK_INT(tf_get(&x->ws[i].drops), 1);
    CHECK_INT(tf_get(&x->ws[i].polls), 1);
    CHECK_INT(tf_get(&x->ws[i].bad_polls), 0);
    CHECK_INT(asyncrt_timer_armed(&x->ss[i].timer), 0);
  }
  for (i = 0; i < T10_KEPT; i++) {
    CHECK_INT(tf_get(&x->kept[i].drops), 1);
    CHECK_INT(tf_get(&x->kept[i].polls), 1);
    CHECK_INT(asyncrt_timer_armed(&x->kept[i].timer), 0);
  }
  /* Every task header went back to the allocator (a worker may finish the
   * release just after the free returns). */
  if (!tf_wait_at_least(&x->ca.frees, tf_get(&x->ca.allocs), 5000)) {
    fprintf(stderr, "  %d of %d task allocations freed\n", tf_get(&x->ca.frees),
            tf_get(&x->ca.allocs));
  }
  CHECK(tf_get(&x->ca.allocs) > 0); /* task memory came from the hook (in slabs, maybe) */
  CHECK_INT(tf_get(&x->ca.frees), tf_get(&x->ca.allocs));
  free(x);
}

static void test_free_local_with_armed_timers(void) {
  free_with_armed_timers(ASYNCRT_EXECUTOR_LOCAL, ASYNCRT_CLOCK_TEST);
  CHECK_PASSED();
  free_with_armed_timers(ASYNCRT_EXECUTOR_LOCAL, ASYNCRT_CLOCK_MONOTONIC);
}

static void test_free_threads_with_armed_timers(void) {
  free_with_armed_timers(ASYNCRT_EXECUTOR_THREADS, ASYNCRT_CLOCK_TEST);
  CHECK_PASSED();
  free_with_armed_timers(ASYNCRT_EXECUTOR_THREADS, ASYNCRT_CLOCK_MONOTONIC);
}

/* A foreign executor freed with a sleeping task and a kept timer. */
static void test_free_foreign_with_armed_timers(void) {
  asyncrt_executor *ex = NULL;
  fq *q = fq_new(&ex);
  asyncrt_sleep s;
  watch w;
  tw kept;
  asyncrt_future fut;
  CHECK(q != NULL);
  memset(&kept, 0, sizeof kept);
  kept.keep_timer = 1;
  kept.deadline = UINT64_MAX - 1;
  CHECK_OK(spawn_sleep(ex, &w, &s, 0, 3600 * SEC, ASYNCRT_SPAWN_LOCAL, NULL));
  fut = tw_future(&kept);
  CHECK_OK(asyncrt_spawn(ex, &fut, ASYNCRT_SPAWN_LOCAL, NULL));
  CHECK_INT(fq_run_all(q, 100), 2);
  CHECK_INT(tm_tstats(ex).waiters, 2);
  CHECK_OK(asyncrt_executor_free(ex));
  CHECK_INT(w.drops, 1);
  CHECK_INT(kept.drops, 1);
  CHECK_INT(asyncrt_timer_armed(&s.timer), 0);
  CHECK_INT(asyncrt_timer_armed(&kept.timer), 0);
  CHECK(tf_wait_at_least(&q->finalized, 1, 5000));
  CHECK_INT(q->len, 0);
  free(q);
}

int main(void) {
  CHECK_BEGIN();
  RUN(test_test_clock_fires_due_timers_in_order);
  RUN(test_many_due_at_once_fire_in_order);
  RUN(test_tick_reports_the_next_deadline);
  RUN(test_cancel_tasks_with_armed_timers);
  RUN(test_cancel_task_whose_timer_is_due);
  RUN(test_timer_cancel_and_move);
  RUN(test_hundred_thousand_timers);
  RUN(test_sleep_for_counts_from_first_poll);
  RUN(test_sleep_until_and_zero_sleeps);
  RUN(test_cancelled_sleep_disarms);
  RUN(test_timeout_inner_completes_first);
  RUN(test_timeout_timer_first);
  RUN(test_timeout_inner_fails);
  RUN(test_block_on_sleep_monotonic);
  RUN(test_threads_test_clock);
  RUN(test_foreign_host_ticks_timers);
  RUN(test_host_fd_wakes_for_timer);
  RUN(test_misuse);
  RUN(test_free_local_with_armed_timers);
  RUN(test_free_threads_with_armed_timers);
  RUN(test_free_foreign_with_armed_timers);
  return CHECK_END("timers");
}
