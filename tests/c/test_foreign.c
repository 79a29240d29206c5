/* Foreign executors: a round-robin executor written here in C runs asyncrt
 * tasks through asyncrt_runnable_run. Spawn, join and cancel through it,
 * wakes from other threads, each runnable run once, drops only where the
 * header allows them, finalize once, runnables of a freed executor.
 *
 * examples/c/round_robin.c shows the same executor without the bookkeeping. */
#include "check.h"
#include "testfut.h"

#include <stdlib.h>
#include <time.h>

/* --- fx: a FIFO of runnables, run by the test or by runner threads -------- */

#define FX_CAP 65536
#define FX_RUNNERS 2

typedef struct fx {
  pthread_mutex_t mu;
  pthread_cond_t cv;
  asyncrt_runnable *queue[FX_CAP];
  size_t head, len;
  int stop;
  pthread_t runners[FX_RUNNERS];
  int nrunners;
  /* what asyncrt did to it */
  int schedules, finalized;
  int handled;    /* runnables run or dropped */
  int run_errors; /* asyncrt_runnable_run or _drop did not return ASYNCRT_OK */
  int twice;    /* a task scheduled while a runnable of it was still queued */
  int overflow; /* the queue was full */
  int zero_ids; /* a runnable whose task id is 0 */
  asyncrt_executor *ex;
} fx;

/* Set while this thread is inside a call where asyncrt may drop a foreign
 * executor's futures: asyncrt_runnable_run, asyncrt_runnable_drop,
 * asyncrt_executor_free. */
static __thread int fx_inside;

static void fx_schedule(void *user_data, asyncrt_runnable *r) {
  fx *x = user_data;
  uint64_t id = asyncrt_runnable_task_id(r);
  size_t i;
  pthread_mutex_lock(&x->mu);
  x->schedules++;
  if (id == 0) {
    x->zero_ids++;
  }
  for (i = 0; i < x->len; i++) {
    if (asyncrt_runnable_task_id(x->queue[(x->head + i) % FX_CAP]) == id) {
      x->twice++;
    }
  }
  if (x->len == FX_CAP) {
    x->overflow++;
  } else {
    x->queue[(x->head + x->len) % FX_CAP] = r;
    x->len++;
  }
  pthread_cond_signal(&x->cv);
  pthread_mutex_unlock(&x->mu);
}

static void fx_finalize(void *user_data) { tf_add(&((fx *)user_data)->finalized, 1); }

static const asyncrt_foreign_vtable fx_vtable = {sizeof(asyncrt_foreign_vtable), fx_schedule,
                                                 fx_finalize};

/* Takes the oldest runnable, or NULL. */
static asyncrt_runnable *fx_pop(fx *x) {
  asyncrt_runnable *r = NULL;
  pthread_mutex_lock(&x->mu);
  if (x->len > 0) {
    r = x->queue[x->head];
    x->head = (x->head + 1) % FX_CAP;
    x->len--;
  }
  pthread_mutex_unlock(&x->mu);
  return r;
}

static int fx_get(fx *x, const int *counter) {
  int v;
  pthread_mutex_lock(&x->mu);
  v = *counter;
  pthread_mutex_unlock(&x->mu);
  return v;
}

static size_t fx_len(fx *x) {
  size_t n;
  pthread_mutex_lock(&x->mu);
  n = x->len;
  pthread_mutex_unlock(&x->mu);
  return n;
}

/* Runs (or with `drop`, discards) one runnable and counts it. */
static void fx_handle(fx *x, asyncrt_runnable *r, int drop) {
  int rc;
  fx_inside = 1;
  rc = drop ? asyncrt_runnable_drop(r) : asyncrt_runnable_run(r);
  fx_inside = 0;
  pthread_mutex_lock(&x->mu);
  x->handled++;
  x->run_errors += rc != ASYNCRT_OK;
  pthread_mutex_unlock(&x->mu);
}

static void fx_run(fx *x, asyncrt_runnable *r) { fx_handle(x, r, 0); }

/* Runs queued runnables until the queue is empty; returns how many. */
static int fx_run_all(fx *x) {
  asyncrt_runnable *r;
  int n = 0;
  while ((r = fx_pop(x)) != NULL && n < 10 * FX_CAP) {
    fx_run(x, r);
    n++;
  }
  return n;
}

static void *fx_runner(void *arg) {
  fx *x = arg;
  for (;;) {
    asyncrt_runnable *r = NULL;
    pthread_mutex_lock(&x->mu);
    while (x->len == 0 && !x->stop) {
      pthread_cond_wait(&x->cv, &x->mu);
    }
    if (x->len == 0) {
      pthread_mutex_unlock(&x->mu);
      return NULL;
    }
    r = x->queue[x->head];
    x->head = (x->head + 1) % FX_CAP;
    x->len--;
    pthread_mutex_unlock(&x->mu);
    fx_run(x, r);
  }
}

/* A new fx with its executor, or NULL (message printed). */
static fx *fx_new(void) {
  fx *x = calloc(1, sizeof *x);
  int rc;
  if (x == NULL) {
    return NULL;
  }
  pthread_mutex_init(&x->mu, NULL);
  pthread_cond_init(&x->cv, NULL);
  rc = asyncrt_executor_new_foreign(&fx_vtable, x, &x->ex);
  if (rc != ASYNCRT_OK) {
    fprintf(stderr, "  asyncrt_executor_new_foreign: got %s, want ASYNCRT_OK (%s)\n",
            asyncrt_status_str(rc), asyncrt_last_error());
    return NULL;
  }
  return x;
}

static int fx_start(fx *x, int runners) {
  int i;
  for (i = 0; i < runners; i++) {
    if (pthread_create(&x->runners[i], NULL, fx_runner, x) != 0) {
      return -1;
    }
    x->nrunners++;
  }
  return 0;
}

/* Stops the runner threads once the queue is empty. */
static void fx_stop(fx *x) {
  int i;
  pthread_mutex_lock(&x->mu);
  x->stop = 1;
  pthread_cond_broadcast(&x->cv);
  pthread_mutex_unlock(&x->mu);
  for (i = 0; i < x->nrunners; i++) {
    pthread_join(x->runners[i], NULL);
  }
  x->nrunners = 0;
}

static int fx_free_executor(fx *x) {
  int rc;
  fx_inside = 1;
  rc = asyncrt_executor_free(x->ex);
  fx_inside = 0;
  return rc;
}

/* Checks what every test of an fx must see at the end: each runnable run
 * once, no task scheduled twice, finalize called once (after the free). */
static void fx_check(fx *x) {
  CHECK_INT(fx_get(x, &x->twice), 0);
  CHECK_INT(fx_get(x, &x->overflow), 0);
  CHECK_INT(fx_get(x, &x->zero_ids), 0);
  CHECK_INT(fx_get(x, &x->run_errors), 0);
  CHECK_INT(fx_get(x, &x->handled), fx_get(x, &x->schedules));
  CHECK(tf_wait_at_least(&x->finalized, 1, 5000));
  tf_sleep_ms(1);
  CHECK_INT(tf_get(&x->finalized), 1);
}

/* --- ff: a future that checks where it is dropped ------------------------- */

enum { FF_SELF_WAKE, FF_PARK };

typedef struct ff {
  int mode, steps, step;
  const int *hold; /* if set: the first poll waits (at most 5 s) until *hold */
  int holding;     /* set while the first poll waits */
  uint64_t value;
  int polls, drops, bad_polls, finished;
  int drops_outside; /* drops outside run / drop / free */
  pthread_t poll_thread, drop_thread;
  asyncrt_executor *executor;
  int waker_flag;
  asyncrt_waker waker; /* FF_PARK: the test's clone, taken at the first poll */
} ff;

static int ff_poll(void *self, asyncrt_context *cx, void *out) {
  ff *f = self;
  if (tf_get(&f->finished) || tf_get(&f->drops)) {
    tf_add(&f->bad_polls, 1);
  }
  tf_add(&f->polls, 1);
  f->poll_thread = pthread_self();
  f->executor = asyncrt_context_executor(cx);
  if (f->hold != NULL && tf_get(&f->polls) == 1) {
    tf_set(&f->holding, 1);
    tf_wait_flag(f->hold, 5000);
    tf_set(&f->holding, 0);
  }
  if (f->step >= f->steps) {
    memcpy(out, &f->value, sizeof f->value);
    tf_set(&f->finished, 1);
    return ASYNCRT_POLL_READY;
  }
  f->step++;
  if (f->mode == FF_PARK) {
    if (!tf_get(&f->waker_flag)) {
      asyncrt_waker_clone(asyncrt_context_waker(cx), &f->waker);
      tf_set(&f->waker_flag, 1);
    }
  } else {
    asyncrt_waker_wake_by_ref(asyncrt_context_waker(cx));
  }
  return ASYNCRT_POLL_PENDING;
}

static void ff_drop(void *self) {
  ff *f = self;
  f->drop_thread = pthread_self();
  if (!fx_inside) {
    tf_add(&f->drops_outside, 1);
  }
  tf_add(&f->drops, 1);
}

static const asyncrt_future_vtable ff_vtable = {sizeof(asyncrt_future_vtable), sizeof(uint64_t),
                                                ff_poll, ff_drop, NULL};

static ff *ff_new(int n, int mode, int steps) {
  ff *fs = calloc((size_t)n, sizeof *fs);
  int i;
  for (i = 0; fs != NULL && i < n; i++) {
    fs[i].mode = mode;
    fs[i].steps = steps;
    fs[i].value = 500u + (uint64_t)i;
  }
  return fs;
}

static int ff_spawn(asyncrt_executor *ex, ff *f, unsigned flags, asyncrt_task **out) {
  asyncrt_future fut;
  fut.self = f;
  fut.vtable = &ff_vtable;
  return asyncrt_spawn(ex, &fut, flags, out);
}

static void ff_drop_waker(ff *f) {
  if (tf_get(&f->waker_flag)) {
    asyncrt_waker_drop(&f->waker);
  }
}

/* The task's status once it is no longer EAGAIN (at most 5 s). */
static int ff_wait_status(asyncrt_task *task) {
  int64_t deadline = tf_now_ns() + 5 * TF_SECOND_NS;
  int rc;
  while ((rc = asyncrt_task_status(task)) == ASYNCRT_EAGAIN && tf_now_ns() < deadline) {
    tf_sleep_ms(1);
  }
  return rc;
}

/* A task's join, run to completion on a fresh local executor. */
static int join_on_local(asyncrt_task *task, uint64_t *out) {
  asyncrt_executor *local = tf_executor();
  asyncrt_future join;
  int rc;
  if (local == NULL) {
    return -1;
  }
  rc = asyncrt_task_join(task, &join);
  if (rc == ASYNCRT_OK) {
    rc = asyncrt_block_on(local, &join, out, TF_TIMEOUT_NS);
  }
  asyncrt_executor_free(local);
  return rc;
}

/* --- tests ----------------------------------------------------------------- */

static void test_new_foreign_validates(void) {
  static const asyncrt_foreign_vtable no_schedule = {sizeof(asyncrt_foreign_vtable), NULL, NULL};
  static const asyncrt_foreign_vtable too_small = {sizeof(size_t), fx_schedule, NULL};
  asyncrt_executor *ex = NULL;
  CHECK_STATUS(asyncrt_executor_new_foreign(NULL, NULL, &ex), ASYNCRT_EINVAL);
  CHECK_STATUS(asyncrt_executor_new_foreign(&no_schedule, NULL, &ex), ASYNCRT_EINVAL);
  CHECK_STATUS(asyncrt_executor_new_foreign(&too_small, NULL, &ex), ASYNCRT_EINVAL);
  CHECK_STATUS(asyncrt_executor_new_foreign(&fx_vtable, NULL, NULL), ASYNCRT_EINVAL);
  CHECK(ex == NULL);
  CHECK_STATUS(asyncrt_runnable_run(NULL), ASYNCRT_EINVAL);
  CHECK_STATUS(asyncrt_runnable_drop(NULL), ASYNCRT_EINVAL);
}

static void test_spawn_run_join(void) {
  fx *x = fx_new();
  ff *f = ff_new(3, FF_SELF_WAKE, 3);
  tf_joiner *joiner = calloc(1, sizeof *joiner);
  asyncrt_task *task = NULL, *send = NULL, *jt = NULL;
  asyncrt_future join, jf;
  uint64_t id = 0, out = 0;
  CHECK(x != NULL && f != NULL && joiner != NULL);

  /* spawn schedules, never polls */
  CHECK_OK(ff_spawn(x->ex, &f[0], ASYNCRT_SPAWN_LOCAL, &task));
  CHECK_INT(fx_get(x, &x->schedules), 1);
  CHECK_INT(tf_get(&f[0].polls), 0);
  CHECK_OK(asyncrt_task_id(task, &id));
  CHECK_INT(asyncrt_runnable_task_id(x->queue[x->head]), id);
  CHECK_STATUS(asyncrt_task_status(task), ASYNCRT_EAGAIN);

  /* one run, one poll; a self-wake schedules it again */
  fx_run(x, fx_pop(x));
  CHECK_INT(tf_get(&f[0].polls), 1);
  CHECK_INT(fx_get(x, &x->schedules), 2);
  CHECK_INT(fx_run_all(x), 3);
  CHECK_INT(tf_get(&f[0].polls), 4);
  CHECK_INT(tf_get(&f[0].drops), 1);
  CHECK_INT(tf_get(&f[0].drops_outside), 0);
  CHECK(pthread_equal(f[0].poll_thread, pthread_self()));
  CHECK(pthread_equal(f[0].drop_thread, pthread_self()));
  CHECK(f[0].executor == x->ex);
  CHECK_OK(asyncrt_task_status(task));
  CHECK_OK(join_on_local(task, &out));
  CHECK_INT(out, f[0].value);

  /* a Send task, and a task of the same executor awaiting it */
  CHECK_OK(ff_spawn(x->ex, &f[1], ASYNCRT_SPAWN_SEND, &send));
  CHECK_OK(asyncrt_task_join(send, &join));
  tf_joiner_init(joiner, &join, 1);
  jf = tf_joiner_future(joiner);
  CHECK_OK(asyncrt_spawn(x->ex, &jf, ASYNCRT_SPAWN_LOCAL, &jt));
  fx_run_all(x);
  CHECK_OK(asyncrt_task_status(send));
  CHECK_OK(asyncrt_task_status(jt));
  CHECK_INT(joiner->got, f[1].value);
  CHECK_INT(joiner->drops, 1);
  CHECK_INT(tf_get(&f[1].drops), 1);
  CHECK_OK(join_on_local(jt, &out));
  CHECK_INT(out, f[1].value);

  CHECK_OK(asyncrt_task_release(task));
  CHECK_OK(asyncrt_task_release(send));
  CHECK_OK(asyncrt_task_release(jt));
  CHECK_INT(tf_get(&x->finalized), 0);
  CHECK_OK(fx_free_executor(x));
  CHECK_INT(fx_len(x), 0);
  fx_check(x);
  CHECK_PASSED();
  free(f);
  free(joiner);
  free(x);
}

#define FOREIGN_PINGERS 4
#define FOREIGN_ROUNDS 200

/* Threads asyncrt never saw wake tasks; the wakes reach the runner thread
 * through schedule. */
static void test_wakes_from_other_threads(void) {
  fx *x = fx_new();
  tf_ping *ps = calloc(FOREIGN_PINGERS, sizeof *ps);
  pthread_t th[FOREIGN_PINGERS];
  asyncrt_task *tasks[FOREIGN_PINGERS];
  int i;
  CHECK(x != NULL && ps != NULL);
  CHECK_INT(fx_start(x, 1), 0);
  for (i = 0; i < FOREIGN_PINGERS; i++) {
    asyncrt_future f;
    tf_ping_init(&ps[i], FOREIGN_ROUNDS);
    f = tf_ping_future(&ps[i]);
    CHECK_OK(asyncrt_spawn(x->ex, &f, i % 2 ? ASYNCRT_SPAWN_SEND : ASYNCRT_SPAWN_LOCAL,
                           &tasks[i]));
    CHECK_INT(pthread_create(&th[i], NULL, tf_ping_thread, &ps[i]), 0);
  }
  for (i = 0; i < FOREIGN_PINGERS; i++) {
    CHECK_INT(pthread_join(th[i], NULL), 0);
  }
  for (i = 0; i < FOREIGN_PINGERS; i++) {
    if (ps[i].failed_round != -1) {
      fprintf(stderr, "  pinger %d: round %d was not acknowledged within 5 s (0: never ran)\n",
              i, ps[i].failed_round);
    }
    CHECK_INT(ps[i].failed_round, -1);
    CHECK(tf_wait_at_least(&ps[i].drops, 1, 5000));
    CHECK(pthread_equal(ps[i].first_thread, x->runners[0]));
    CHECK_INT(tf_get(&ps[i].moved), 0);
    CHECK(pthread_equal(ps[i].drop_thread, x->runners[0]));
    CHECK_OK(asyncrt_task_status(tasks[i]));
    CHECK_OK(asyncrt_task_release(tasks[i]));
  }
  fx_stop(x);
  CHECK_OK(fx_free_executor(x));
  for (i = 0; i < FOREIGN_PINGERS; i++) {
    CHECK_INT(tf_get(&ps[i].drops), 1);
  }
  fx_check(x);
  CHECK_PASSED();
  free(ps);
  free(x);
}

/* A cancelled task's future is dropped by the runnable that carries the
 * cancellation: in asyncrt_runnable_run or asyncrt_runnable_drop, never
 * inside asyncrt_task_cancel. */
static void test_cancel(void) {
  enum { QUEUED, PARKED, WOKEN, DROPPED, COUNT };
  fx *x = fx_new();
  ff *f = ff_new(COUNT, FF_PARK, 1000);
  asyncrt_task *tasks[COUNT];
  asyncrt_runnable *r;
  uint64_t out = 0;
  int i, before;
  CHECK(x != NULL && f != NULL);
  f[WOKEN].mode = FF_SELF_WAKE;

  /* queued, never run: the cancel is carried out by the run of its runnable */
  CHECK_OK(ff_spawn(x->ex, &f[QUEUED], ASYNCRT_SPAWN_LOCAL, &tasks[QUEUED]));
  CHECK_OK(asyncrt_task_cancel(tasks[QUEUED]));
  CHECK_INT(tf_get(&f[QUEUED].drops), 0);
  fx_run_all(x);
  CHECK_INT(tf_get(&f[QUEUED].polls), 0);
  CHECK_INT(tf_get(&f[QUEUED].drops), 1);
  CHECK_STATUS(asyncrt_task_status(tasks[QUEUED]), ASYNCRT_ECANCELLED);

  /* parked, no runnable outstanding: the cancel schedules it */
  CHECK_OK(ff_spawn(x->ex, &f[PARKED], ASYNCRT_SPAWN_LOCAL, &tasks[PARKED]));
  fx_run_all(x);
  CHECK_INT(tf_get(&f[PARKED].polls), 1);
  before = fx_get(x, &x->schedules);
  CHECK_OK(asyncrt_task_cancel(tasks[PARKED]));
  CHECK_INT(tf_get(&f[PARKED].drops), 0);
  CHECK_INT(fx_get(x, &x->schedules), before + 1);
  CHECK_INT(fx_run_all(x), 1);
  CHECK_INT(tf_get(&f[PARKED].polls), 1);
  CHECK_INT(tf_get(&f[PARKED].drops), 1);
  CHECK_STATUS(asyncrt_task_status(tasks[PARKED]), ASYNCRT_ECANCELLED);

  /* polled, woke itself, runnable queued: cancelled instead of polled */
  CHECK_OK(ff_spawn(x->ex, &f[WOKEN], ASYNCRT_SPAWN_SEND, &tasks[WOKEN]));
  fx_run(x, fx_pop(x));
  CHECK_INT(fx_len(x), 1);
  CHECK_OK(asyncrt_task_cancel(tasks[WOKEN]));
  CHECK_OK(asyncrt_task_cancel(tasks[WOKEN])); /* twice: nothing more */
  fx_run_all(x);
  CHECK_INT(tf_get(&f[WOKEN].polls), 1);
  CHECK_INT(tf_get(&f[WOKEN].drops), 1);
  CHECK_STATUS(asyncrt_task_status(tasks[WOKEN]), ASYNCRT_ECANCELLED);

  /* asyncrt_runnable_drop: cancelled and dropped right there */
  CHECK_OK(ff_spawn(x->ex, &f[DROPPED], ASYNCRT_SPAWN_LOCAL, &tasks[DROPPED]));
  r = fx_pop(x);
  CHECK(r != NULL);
  fx_handle(x, r, 1);
  CHECK_INT(fx_get(x, &x->run_errors), 0);
  CHECK_INT(tf_get(&f[DROPPED].drops), 1);
  CHECK(pthread_equal(f[DROPPED].drop_thread, pthread_self()));
  CHECK_INT(tf_get(&f[DROPPED].polls), 0);
  CHECK_STATUS(asyncrt_task_status(tasks[DROPPED]), ASYNCRT_ECANCELLED);
  CHECK_INT(fx_len(x), 0);

  for (i = 0; i < COUNT; i++) {
    CHECK_STATUS(join_on_local(tasks[i], &out), ASYNCRT_ECANCELLED);
    CHECK_INT(tf_get(&f[i].drops), 1);
    CHECK_INT(tf_get(&f[i].drops_outside), 0);
    CHECK_INT(tf_get(&f[i].bad_polls), 0);
    CHECK_OK(asyncrt_task_release(tasks[i]));
  }
  CHECK_OK(fx_free_executor(x));
  for (i = 0; i < COUNT; i++) {
    ff_drop_waker(&f[i]); /* a waker keeps its task's memory: finalize waits for it */
  }
  fx_check(x);
  CHECK_PASSED();
  free(f);
  free(x);
}

/* A cancel that arrives while the runner is inside the task's poll takes
 * effect when the poll returns: the future is dropped once, by a runnable. */
static void test_cancel_during_poll(void) {
  fx *x = fx_new();
  ff *f = ff_new(1, FF_PARK, 1000);
  int *hold = calloc(1, sizeof *hold);
  asyncrt_task *task = NULL;
  CHECK(x != NULL && f != NULL && hold != NULL);
  f->hold = hold;
  CHECK_INT(fx_start(x, 1), 0);
  CHECK_OK(ff_spawn(x->ex, f, ASYNCRT_SPAWN_LOCAL, &task));
  CHECK(tf_wait_flag(&f->holding, 5000));
  CHECK_OK(asyncrt_task_cancel(task));
  CHECK_INT(tf_get(&f->drops), 0);
  tf_set(hold, 1);
  CHECK(tf_wait_at_least(&f->drops, 1, 5000));
  CHECK_STATUS(ff_wait_status(task), ASYNCRT_ECANCELLED);
  fx_stop(x);
  CHECK_INT(tf_get(&f->drops), 1);
  CHECK_INT(tf_get(&f->polls), 1);
  CHECK_INT(tf_get(&f->drops_outside), 0);
  CHECK(pthread_equal(f->drop_thread, x->runners[0]));
  CHECK_OK(asyncrt_task_release(task));
  CHECK_OK(fx_free_executor(x));
  ff_drop_waker(f);
  fx_check(x);
  CHECK_PASSED();
  free(f);
  free(hold);
  free(x);
}

/* Freeing the executor drops every future on the calling thread; runnables
 * it still holds do nothing afterwards, wakes schedule nothing, and finalize
 * comes once, after the free. */
static void test_free_with_held_runnables(void) {
  enum { PARKED, QUEUED, WOKEN, COUNT };
  fx *x = fx_new();
  ff *f = ff_new(COUNT, FF_PARK, 1000);
  asyncrt_task *queued = NULL;
  asyncrt_runnable *held[2];
  int i, schedules;
  CHECK(x != NULL && f != NULL);
  CHECK_OK(ff_spawn(x->ex, &f[PARKED], ASYNCRT_SPAWN_LOCAL, NULL));
  CHECK_OK(ff_spawn(x->ex, &f[WOKEN], ASYNCRT_SPAWN_SEND, NULL));
  fx_run_all(x);
  CHECK(tf_get(&f[PARKED].waker_flag) && tf_get(&f[WOKEN].waker_flag));
  asyncrt_waker_wake_by_ref(&f[WOKEN].waker);
  CHECK_OK(ff_spawn(x->ex, &f[QUEUED], ASYNCRT_SPAWN_LOCAL, &queued));
  CHECK_INT(fx_len(x), 2);
  held[0] = fx_pop(x);
  held[1] = fx_pop(x);

  CHECK_INT(tf_get(&x->finalized), 0);
  CHECK_OK(fx_free_executor(x));
  for (i = 0; i < COUNT; i++) {
    CHECK_INT(tf_get(&f[i].drops), 1);
    CHECK(pthread_equal(f[i].drop_thread, pthread_self()));
  }
  CHECK_STATUS(asyncrt_task_status(queued), ASYNCRT_ECANCELLED);
  schedules = fx_get(x, &x->schedules);

  /* the held runnables: nothing is polled or dropped again */
  fx_handle(x, held[0], 0);
  fx_handle(x, held[1], 1);
  CHECK_INT(fx_get(x, &x->run_errors), 0);
  /* wakes schedule nothing */
  asyncrt_waker_wake_by_ref(&f[PARKED].waker);
  asyncrt_waker_wake_by_ref(&f[WOKEN].waker);
  tf_sleep_ms(5);
  CHECK_INT(fx_get(x, &x->schedules), schedules);
  CHECK_INT(fx_len(x), 0);
  for (i = 0; i < COUNT; i++) {
    CHECK_INT(tf_get(&f[i].drops), 1);
    CHECK_INT(tf_get(&f[i].drops_outside), 0);
    CHECK_INT(tf_get(&f[i].bad_polls), 0);
    CHECK_INT(tf_get(&f[i].polls), i == QUEUED ? 0 : 1);
    ff_drop_waker(&f[i]);
  }
  CHECK_OK(asyncrt_task_release(queued));
  fx_check(x);
  CHECK_PASSED();
  free(f);
  free(x);
}

#define MANY 4000
#define CHILDREN 1000

/* A task that spawns CHILDREN Send tasks through its context. */
typedef struct spawner {
  ff *children;
  int failures;
} spawner;

static int spawner_poll(void *self, asyncrt_context *cx, void *out) {
  spawner *s = self;
  int i;
  (void)out;
  for (i = 0; i < CHILDREN; i++) {
    if (ff_spawn(asyncrt_context_executor(cx), &s->children[i], ASYNCRT_SPAWN_SEND, NULL) !=
        ASYNCRT_OK) {
      s->failures++;
    }
  }
  return ASYNCRT_POLL_READY;
}

static const asyncrt_future_vtable spawner_vtable = {sizeof(asyncrt_future_vtable), 0,
                                                     spawner_poll, NULL, NULL};

static int ff_all_dropped(ff *f, int n, int timeout_ms) {
  int i;
  for (i = 0; i < n; i++) {
    if (!tf_wait_at_least(&f[i].drops, 1, timeout_ms)) {
      return 0;
    }
  }
  return 1;
}

/* Two runner threads, thousands of Send tasks that wake themselves, and
 * spawns from inside polls (schedule called from inside runnable_run). */
static void test_many_tasks_two_runners(void) {
  fx *x = fx_new();
  ff *f = ff_new(MANY + CHILDREN, FF_SELF_WAKE, 4);
  spawner *s = calloc(1, sizeof *s);
  asyncrt_future sf;
  int i;
  CHECK(x != NULL && f != NULL && s != NULL);
  CHECK_INT(fx_start(x, FX_RUNNERS), 0);
  s->children = f + MANY;
  sf.self = s;
  sf.vtable = &spawner_vtable;
  CHECK_OK(asyncrt_spawn(x->ex, &sf, ASYNCRT_SPAWN_SEND, NULL));
  for (i = 0; i < MANY; i++) {
    CHECK_OK(ff_spawn(x->ex, &f[i], ASYNCRT_SPAWN_SEND, NULL));
  }
  CHECK(ff_all_dropped(f, MANY + CHILDREN, 10000));
  fx_stop(x);
  CHECK_INT(s->failures, 0);
  for (i = 0; i < MANY + CHILDREN; i++) {
    CHECK_INT(tf_get(&f[i].polls), 5);
    CHECK_INT(tf_get(&f[i].drops), 1);
    CHECK_INT(tf_get(&f[i].bad_polls), 0);
    CHECK_INT(tf_get(&f[i].drops_outside), 0);
  }
  CHECK_INT(fx_get(x, &x->handled), 5 * (MANY + CHILDREN) + 1);
  CHECK_OK(fx_free_executor(x));
  fx_check(x);
  CHECK_PASSED();
  free(f);
  free(s);
  free(x);
}

/* A local executor's block_on awaits a task of the foreign executor, woken
 * by a thread of neither. */
static void *wake_after_a_while(void *arg) {
  ff *f = arg;
  if (tf_wait_flag(&f->waker_flag, 5000)) {
    tf_sleep_ms(20);
    asyncrt_waker_wake_by_ref(&f->waker);
  }
  return NULL;
}

static void test_join_from_another_executor(void) {
  fx *x = fx_new();
  ff *f = ff_new(1, FF_PARK, 1);
  asyncrt_task *task = NULL;
  pthread_t th;
  uint64_t out = 0;
  CHECK(x != NULL && f != NULL);
  CHECK_INT(fx_start(x, 1), 0);
  CHECK_OK(ff_spawn(x->ex, f, ASYNCRT_SPAWN_LOCAL, &task));
  CHECK_INT(pthread_create(&th, NULL, wake_after_a_while, f), 0);
  CHECK_OK(join_on_local(task, &out));
  CHECK_INT(pthread_join(th, NULL), 0);
  CHECK_INT(out, f->value);
  CHECK_INT(tf_get(&f->polls), 2);
  CHECK(tf_wait_at_least(&f->drops, 1, 5000));
  CHECK(pthread_equal(f->poll_thread, x->runners[0]));
  CHECK_OK(asyncrt_task_release(task));
  fx_stop(x);
  CHECK_OK(fx_free_executor(x));
  ff_drop_waker(f);
  fx_check(x);
  CHECK_PASSED();
  free(f);
  free(x);
}

/* Scopes on a foreign executor: children are the host's runnables; a
 * scope's cancel reaches them through schedule, and each is dropped once by
 * the host's run of its runnable. The scope's join, awaited on a local
 * executor, reports the cancel; a task that opens a scope and returns while
 * it has children completes with ESCOPE after them. */
static int opener_poll(void *self, asyncrt_context *cx, void *out) {
  ff *kids = self;
  asyncrt_scope *s = NULL;
  int i, rc;
  (void)out;
  if ((rc = asyncrt_scope_open(cx, NULL, &s)) != ASYNCRT_OK) {
    asyncrt_context_fail(cx, rc);
    return ASYNCRT_POLL_ERROR;
  }
  for (i = 0; i < 2; i++) {
    asyncrt_future fut = {&kids[i], &ff_vtable};
    if ((rc = asyncrt_scope_spawn(s, &fut, ASYNCRT_SPAWN_LOCAL, NULL)) != ASYNCRT_OK) {
      asyncrt_context_fail(cx, rc);
      return ASYNCRT_POLL_ERROR; /* the test sees the status */
    }
  }
  asyncrt_scope_free(s); /* early: cancels the children, never blocks */
  return ASYNCRT_POLL_READY;
}

static const asyncrt_future_vtable opener_vtable = {sizeof(asyncrt_future_vtable), 0, opener_poll, NULL,
                                                    NULL};

static void test_scopes_on_foreign(void) {
  fx *x = fx_new();
  ff *f = ff_new(3, FF_PARK, 1000);
  ff *kids = ff_new(2, FF_PARK, 1000);
  asyncrt_scope *s = NULL;
  asyncrt_executor *local = tf_executor();
  asyncrt_future join;
  asyncrt_task *opener = NULL;
  unsigned caps = 0;
  int i;
  CHECK(x != NULL && f != NULL && kids != NULL && local != NULL);
  CHECK_OK(asyncrt_executor_capabilities(x->ex, &caps));
  CHECK((caps & ASYNCRT_CAP_SCOPES) != 0);

  CHECK_OK(asyncrt_scope_open_top(x->ex, NULL, &s));
  for (i = 0; i < 3; i++) {
    asyncrt_future fut = {&f[i], &ff_vtable};
    CHECK_OK(asyncrt_scope_spawn(s, &fut, ASYNCRT_SPAWN_LOCAL, NULL));
  }
  CHECK_INT(fx_run_all(x), 3); /* each polled once, parked */
  CHECK_STATUS(asyncrt_scope_status(s), ASYNCRT_EAGAIN);
  CHECK_OK(asyncrt_scope_cancel(s));
  CHECK_INT(fx_run_all(x), 3); /* the cancel scheduled each: the runs drop them */
  for (i = 0; i < 3; i++) {
    CHECK_INT(tf_get(&f[i].polls), 1);
    CHECK_INT(tf_get(&f[i].drops), 1);
    CHECK_INT(tf_get(&f[i].drops_outside), 0);
  }
  CHECK_OK(asyncrt_scope_join(s, &join));
  CHECK_STATUS(asyncrt_block_on(local, &join, NULL, TF_TIMEOUT_NS), ASYNCRT_ECANCELLED);
  CHECK_OK(asyncrt_scope_free(s));

  {
    asyncrt_future fut = {kids, &opener_vtable};
    CHECK_OK(asyncrt_spawn(x->ex, &fut, ASYNCRT_SPAWN_LOCAL, &opener));
  }
  fx_run_all(x);
  CHECK_STATUS(asyncrt_task_status(opener), ASYNCRT_OK); /* it freed its scope: not a misuse */
  for (i = 0; i < 2; i++) {
    CHECK_INT(tf_get(&kids[i].drops), 1);
    CHECK_INT(tf_get(&kids[i].polls), 0); /* cancelled before their first poll */
  }
  CHECK_OK(asyncrt_task_release(opener));
  asyncrt_executor_free(local);
  CHECK_OK(fx_free_executor(x));
  for (i = 0; i < 3; i++) ff_drop_waker(&f[i]);
  fx_check(x);
  CHECK_PASSED();
  free(kids);
  free(f);
  free(x);
}

int main(void) {
  CHECK_BEGIN();
  RUN(test_new_foreign_validates);
  RUN(test_spawn_run_join);
  RUN(test_wakes_from_other_threads);
  RUN(test_cancel);
  RUN(test_cancel_during_poll);
  RUN(test_free_with_held_runnables);
  RUN(test_many_tasks_two_runners);
  RUN(test_join_from_another_executor);
  RUN(test_scopes_on_foreign);
  return CHECK_END("foreign");
}
