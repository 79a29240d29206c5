/* Stall detection (asyncrt 0.6): a poll that runs past the threshold is
 * reported once, with its task, worker, duration and poll function; a busy
 * worker that keeps making polls is not; a tick that runs long is reported
 * with no task; the handler's user data is finalized once; a report cannot
 * free, re-watch or check its own executor.
 *
 * Nothing is timed. The executors run on ASYNCRT_CLOCK_TEST, so a poll
 * "runs long" when the test advances the clock between two
 * asyncrt_executor_check_stalls calls; a poll that must stay inside while
 * the test looks blocks on a gate (a condition variable) that the test
 * opens, and every wait is bounded. The program is linked with -rdynamic
 * (ENABLE_EXPORTS), so dladdr can name gate_poll. */
#include "check.h" /* first: it sets _POSIX_C_SOURCE */
#include "testfut.h"

#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <time.h>

#define THRESHOLD_NS TF_SECOND_NS
#define WAIT_MS 5000

/* ---- a gate: a poll (or subsystem poll) that holds its thread ------------ */

typedef struct gate {
  pthread_mutex_t mu;
  pthread_cond_t cv;
  int entered; /* polls that came in */
  int opened;  /* polls let through */
} gate;

static void gate_init(gate *g) {
  pthread_mutex_init(&g->mu, NULL);
  pthread_cond_init(&g->cv, NULL);
  g->entered = g->opened = 0;
}

static struct timespec deadline_in(int ms) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  ts.tv_sec += ms / 1000;
  ts.tv_nsec += (long)(ms % 1000) * 1000000L;
  if (ts.tv_nsec >= 1000000000L) {
    ts.tv_sec++;
    ts.tv_nsec -= 1000000000L;
  }
  return ts;
}

/* Inside: comes in (entered), then waits until the test let it through. */
static void gate_pass(gate *g) {
  struct timespec until = deadline_in(WAIT_MS);
  pthread_mutex_lock(&g->mu);
  int me = ++g->entered;
  pthread_cond_broadcast(&g->cv);
  while (g->opened < me && pthread_cond_timedwait(&g->cv, &g->mu, &until) == 0) {
  }
  pthread_mutex_unlock(&g->mu);
}

/* The test: waits until `n` have come in; returns 0 after WAIT_MS. */
static int gate_wait_entered(gate *g, int n) {
  struct timespec until = deadline_in(WAIT_MS);
  int ok = 1;
  pthread_mutex_lock(&g->mu);
  while (g->entered < n && ok) ok = pthread_cond_timedwait(&g->cv, &g->mu, &until) == 0;
  ok = g->entered >= n;
  pthread_mutex_unlock(&g->mu);
  return ok;
}

static void gate_open(gate *g, int n) {
  pthread_mutex_lock(&g->mu);
  g->opened = n;
  pthread_cond_broadcast(&g->cv);
  pthread_mutex_unlock(&g->mu);
}

/* A task that passes its gate `polls` times, waking itself in between, then
 * is ready. Not static: dladdr names it (see the top). */
typedef struct gated {
  gate *g;
  int polls;
} gated;

int gate_poll(void *self, asyncrt_context *cx, void *out);
int gate_poll(void *self, asyncrt_context *cx, void *out) {
  (void)out;
  gated *t = self;
  gate_pass(t->g);
  if (--t->polls == 0) return ASYNCRT_POLL_READY;
  asyncrt_waker_wake_by_ref(asyncrt_context_waker(cx));
  return ASYNCRT_POLL_PENDING;
}

static const asyncrt_future_vtable gate_vtable = {sizeof(asyncrt_future_vtable), 0, gate_poll, NULL, NULL};

/* ---- what the reports said ----------------------------------------------- */

typedef struct reports {
  pthread_mutex_t mu;
  pthread_cond_t cv;
  int n;
  asyncrt_stall_info last;
  char name[64];
  char symbol[128];
  pthread_t thread;
  int finalized;
  /* what the report tried on its own executor */
  int try_reentry;
  int reentry_check, reentry_watch, reentry_free, reentry_watch_finalized;
  asyncrt_executor *nested; /* checked from inside the report */
  int nested_status, nested_reports;
} reports;

static void reports_init(reports *r) {
  memset(r, 0, sizeof *r);
  pthread_mutex_init(&r->mu, NULL);
  pthread_cond_init(&r->cv, NULL);
}

static void count_finalize(void *user) { tf_add(user, 1); }

static void on_stall(const asyncrt_stall_info *info, void *user) {
  reports *r = user;
  if (r->try_reentry) {
    asyncrt_stall_config again;
    asyncrt_stall_config_init(&again);
    again.finalize = count_finalize;
    again.user_data = &r->reentry_watch_finalized;
    r->reentry_check = asyncrt_executor_check_stalls(info->executor, NULL);
    r->reentry_watch = asyncrt_executor_watch_stalls(info->executor, &again);
    r->reentry_free = asyncrt_executor_free(info->executor);
  }
  if (r->nested) {
    unsigned n = 0;
    r->nested_status = asyncrt_executor_check_stalls(r->nested, &n);
    r->nested_reports = (int)n;
  }
  pthread_mutex_lock(&r->mu);
  r->last = *info;
  snprintf(r->name, sizeof r->name, "%s", info->task_name ? info->task_name : "");
  snprintf(r->symbol, sizeof r->symbol, "%s", info->poll_symbol ? info->poll_symbol : "");
  r->thread = pthread_self();
  r->n++;
  pthread_cond_broadcast(&r->cv);
  pthread_mutex_unlock(&r->mu);
}

static void on_finalize(void *user) { tf_add(&((reports *)user)->finalized, 1); }

static int reports_wait(reports *r, int n) {
  struct timespec until = deadline_in(WAIT_MS);
  int ok = 1;
  pthread_mutex_lock(&r->mu);
  while (r->n < n && ok) ok = pthread_cond_timedwait(&r->cv, &r->mu, &until) == 0;
  ok = r->n >= n;
  pthread_mutex_unlock(&r->mu);
  return ok;
}

/* The last report, as it is now. */
static asyncrt_stall_info reports_last(reports *r, pthread_t *thread) {
  pthread_mutex_lock(&r->mu);
  asyncrt_stall_info last = r->last;
  *thread = r->thread;
  pthread_mutex_unlock(&r->mu);
  return last;
}

static int reports_count(reports *r) {
  pthread_mutex_lock(&r->mu);
  int n = r->n;
  pthread_mutex_unlock(&r->mu);
  return n;
}

/* ---- executors and their drivers -------------------------------------------- */

static asyncrt_executor *test_clock_executor(unsigned kind, unsigned workers) {
  asyncrt_executor_config cfg;
  asyncrt_executor_config_init(&cfg);
  cfg.kind = kind;
  cfg.workers = workers;
  cfg.clock = ASYNCRT_CLOCK_TEST;
  asyncrt_executor *ex = NULL;
  return asyncrt_executor_new(&cfg, &ex) == ASYNCRT_OK ? ex : NULL;
}

static int watch(asyncrt_executor *ex, reports *r, uint64_t period) {
  asyncrt_stall_config cfg;
  asyncrt_stall_config_init(&cfg);
  cfg.threshold_ns = THRESHOLD_NS;
  cfg.period_ns = period;
  cfg.report = r ? on_stall : NULL;
  cfg.user_data = r;
  cfg.finalize = r ? on_finalize : NULL;
  return asyncrt_executor_watch_stalls(ex, &cfg);
}

static unsigned check(asyncrt_executor *ex) {
  unsigned n = 99;
  if (asyncrt_executor_check_stalls(ex, &n) != ASYNCRT_OK) return 99;
  return n;
}

/* A local executor driven by a thread of its own (asyncrt_run). */
typedef struct driver {
  asyncrt_executor *ex;
  pthread_t thread;
  int status;
} driver;

static void *drive(void *p) {
  driver *d = p;
  d->status = asyncrt_run(d->ex, NULL);
  return NULL;
}

static void driver_start(driver *d, asyncrt_executor *ex) {
  d->ex = ex;
  d->status = -1;
  pthread_create(&d->thread, NULL, drive, d);
}

/* What other threads touch (the gate, the task's state, the reports, the
 * driver): on the heap, and leaked when a CHECK fails and returns early,
 * as the executor that still uses it is. */
typedef struct scene {
  gate g;
  gated t;
  reports r;
  driver d;
} scene;

static scene *scene_new(void) {
  scene *sc = calloc(1, sizeof *sc);
  if (sc) {
    gate_init(&sc->g);
    reports_init(&sc->r);
  }
  return sc;
}

/* ---- tests -------------------------------------------------------------- */

/* The report names the task, its worker, the time on the test clock and
 * the poll function; it comes once per poll, and a later stuck poll gets
 * its own. */
static void test_a_stuck_poll_is_reported_once(void) {
  asyncrt_executor *ex = test_clock_executor(ASYNCRT_EXECUTOR_LOCAL, 0);
  CHECK(ex != NULL);
  scene *sc = scene_new();
  CHECK(sc != NULL);
  reports *r = &sc->r;
  CHECK_OK(watch(ex, r, ASYNCRT_STALL_MANUAL));
  gate *g = &sc->g;
  gated *t = &sc->t;
  *t = (gated){g, 2};
  asyncrt_future f = {t, &gate_vtable};
  asyncrt_task *task = NULL;
  uint64_t id = 0;
  CHECK_OK(asyncrt_spawn(ex, &f, 0, &task));
  CHECK_OK(asyncrt_task_set_name(task, "gated"));
  CHECK_OK(asyncrt_task_id(task, &id));
  driver *d = &sc->d;
  driver_start(d, ex);
  CHECK(gate_wait_entered(g, 1));
  CHECK_INT(check(ex), 0); /* the first sample of this poll */
  CHECK_OK(asyncrt_clock_advance(ex, THRESHOLD_NS - 1));
  CHECK_INT(check(ex), 0); /* not yet */
  CHECK_OK(asyncrt_clock_advance(ex, 1));
  CHECK_INT(check(ex), 1);
  CHECK_INT(reports_count(r), 1);
  CHECK(r->last.size >= sizeof(asyncrt_stall_info));
  CHECK(r->last.executor == ex);
  CHECK_INT(r->last.worker, 0);
  CHECK_INT(r->last.task_id, id);
  CHECK_STR(r->name, "gated");
  CHECK_INT(r->last.duration_ns, THRESHOLD_NS);
  CHECK(r->last.poll == gate_poll);
  CHECK_STR(r->symbol, "gate_poll");
  CHECK(pthread_equal(r->thread, pthread_self())); /* check_stalls reports on its caller's thread */
  CHECK_OK(asyncrt_clock_advance(ex, THRESHOLD_NS));
  CHECK_INT(check(ex), 0); /* once per poll */
  CHECK_INT(tf_stats(ex).stalls, 1);
  /* The next poll of the same task is another poll. */
  gate_open(g, 1);
  CHECK(gate_wait_entered(g, 2));
  CHECK_INT(check(ex), 0);
  CHECK_OK(asyncrt_clock_advance(ex, THRESHOLD_NS));
  CHECK_INT(check(ex), 1);
  CHECK_INT(r->last.task_id, id);
  gate_open(g, 2);
  pthread_join(d->thread, NULL);
  CHECK_OK(d->status);
  /* Idle: nothing to report however long it stays so. */
  CHECK_OK(asyncrt_clock_advance(ex, 10 * THRESHOLD_NS));
  CHECK_INT(check(ex), 0);
  CHECK_INT(check(ex), 0);
  asyncrt_worker_stats w = {.size = sizeof w};
  CHECK_OK(asyncrt_worker_stats_get(ex, 0, &w));
  CHECK_INT(w.stalls, 2);
  CHECK_OK(asyncrt_task_release(task));
  CHECK_INT(tf_get(&r->finalized), 0);
  CHECK_OK(asyncrt_executor_free(ex));
  CHECK_INT(tf_get(&r->finalized), 1);
  free(sc);
}

/* A worker that keeps making polls is not stuck, however far the clock
 * moves between two samples. */
static void test_progress_is_not_a_stall(void) {
  enum { POLLS = 5 };
  asyncrt_executor *ex = test_clock_executor(ASYNCRT_EXECUTOR_LOCAL, 0);
  CHECK(ex != NULL);
  scene *sc = scene_new();
  CHECK(sc != NULL);
  reports *r = &sc->r;
  CHECK_OK(watch(ex, r, ASYNCRT_STALL_MANUAL));
  gate *g = &sc->g;
  gated *t = &sc->t;
  *t = (gated){g, POLLS};
  asyncrt_future f = {t, &gate_vtable};
  CHECK_OK(asyncrt_spawn(ex, &f, 0, NULL));
  driver *d = &sc->d;
  driver_start(d, ex);
  for (int i = 1; i <= POLLS; i++) {
    CHECK(gate_wait_entered(g, i));
    CHECK_INT(check(ex), 0);
    CHECK_OK(asyncrt_clock_advance(ex, THRESHOLD_NS - 1)); /* short of the threshold per poll... */
    CHECK_INT(check(ex), 0);
    gate_open(g, i); /* ...and the polls add up to more */
  }
  pthread_join(d->thread, NULL);
  CHECK_INT(reports_count(r), 0);
  CHECK_INT(tf_stats(ex).stalls, 0);
  CHECK_OK(asyncrt_executor_free(ex));
  free(sc);
}

/* Without a callback the report is one line on standard error. */
static void test_the_log(void) {
  asyncrt_executor *ex = test_clock_executor(ASYNCRT_EXECUTOR_LOCAL, 0);
  CHECK(ex != NULL);
  scene *sc = scene_new();
  CHECK(sc != NULL);
  CHECK_OK(watch(ex, NULL, ASYNCRT_STALL_MANUAL));
  gate *g = &sc->g;
  gated *t = &sc->t;
  *t = (gated){g, 1};
  asyncrt_future f = {t, &gate_vtable};
  asyncrt_task *task = NULL;
  uint64_t id = 0;
  CHECK_OK(asyncrt_spawn(ex, &f, 0, &task));
  CHECK_OK(asyncrt_task_set_name(task, "logged"));
  CHECK_OK(asyncrt_task_id(task, &id));
  driver *d = &sc->d;
  driver_start(d, ex);
  CHECK(gate_wait_entered(g, 1));
  CHECK_INT(check(ex), 0);
  CHECK_OK(asyncrt_clock_advance(ex, 3 * THRESHOLD_NS / 2));
  /* Standard error goes to a file for the check. */
  char path[] = "/tmp/asyncrt_stall_log_XXXXXX";
  int fd = mkstemp(path), saved = dup(2);
  CHECK(fd >= 0 && saved >= 0);
  unlink(path);
  dup2(fd, 2);
  unsigned n = check(ex);
  dup2(saved, 2);
  close(saved);
  char line[600] = {0};
  ssize_t got = pread(fd, line, sizeof line - 1, 0);
  close(fd);
  gate_open(g, 1);
  pthread_join(d->thread, NULL);
  CHECK_INT(n, 1);
  CHECK(got > 0);
  char want[128];
  snprintf(want, sizeof want, "worker 0: task %llu \"logged\" has been in its poll for 1500.0 ms",
           (unsigned long long)id);
  if (!strstr(line, want) || !strstr(line, "poll function gate_poll (") || strncmp(line, "asyncrt: stall: ", 16) ||
      line[got - 1] != '\n' || strchr(line, '\n') != line + got - 1) {
    fprintf(stderr, "the log line: %s", line);
    CHECK(!"the log line says what it should, on one line");
  }
  CHECK_OK(asyncrt_task_release(task));
  CHECK_OK(asyncrt_executor_free(ex));
  free(sc);
}

/* The watchdog's own thread: on the real clock, a poll that stays inside
 * until the test has seen its report is reported, from neither the test's
 * thread nor the worker's, naming the worker it holds. */
static asyncrt_executor *real_clock_executor(unsigned kind, unsigned workers) {
  asyncrt_executor_config cfg;
  asyncrt_executor_config_init(&cfg);
  cfg.kind = kind;
  cfg.workers = workers;
  asyncrt_executor *ex = NULL;
  return asyncrt_executor_new(&cfg, &ex) == ASYNCRT_OK ? ex : NULL;
}

static int watch_ms(asyncrt_executor *ex, reports *r) {
  asyncrt_stall_config cfg;
  asyncrt_stall_config_init(&cfg);
  cfg.threshold_ns = TF_MS_NS; /* the period is then 1 ms too */
  cfg.report = on_stall;
  cfg.user_data = r;
  cfg.finalize = on_finalize;
  return asyncrt_executor_watch_stalls(ex, &cfg);
}

static void test_the_watchdog_thread_on_a_worker(void) {
  asyncrt_executor *ex = real_clock_executor(ASYNCRT_EXECUTOR_THREADS, 2);
  CHECK(ex != NULL);
  scene *sc = scene_new();
  CHECK(sc != NULL);
  reports *r = &sc->r;
  CHECK_OK(watch_ms(ex, r));
  gate *g = &sc->g;
  gated *t = &sc->t;
  *t = (gated){g, 1};
  asyncrt_future f = {t, &gate_vtable};
  asyncrt_task *task = NULL;
  uint64_t id = 0;
  CHECK_OK(asyncrt_spawn(ex, &f, ASYNCRT_SPAWN_WORKER(1), &task));
  CHECK_OK(asyncrt_task_id(task, &id));
  CHECK(gate_wait_entered(g, 1));
  int reported = reports_wait(r, 1);
  pthread_t thread;
  asyncrt_stall_info seen = reports_last(r, &thread); /* while the poll is still inside */
  gate_open(g, 1);
  CHECK(reported);
  CHECK_INT(seen.worker, 1);
  CHECK_INT(seen.task_id, id);
  CHECK(seen.duration_ns >= TF_MS_NS);
  CHECK(!pthread_equal(thread, pthread_self()));
  CHECK_OK(asyncrt_executor_shutdown(ex, ASYNCRT_SHUTDOWN_GRACEFUL, TF_TIMEOUT_NS));
  asyncrt_worker_stats w = {.size = sizeof w};
  CHECK_OK(asyncrt_worker_stats_get(ex, 0, &w));
  CHECK_INT(w.stalls, 0);
  CHECK_OK(asyncrt_worker_stats_get(ex, 1, &w));
  /* Once per poll; on the real clock a worker preempted for a millisecond
   * elsewhere in a run is a stall too, so there may be more. */
  CHECK_INT(w.stalls, (uint64_t)reports_count(r));
  CHECK_OK(asyncrt_task_release(task));
  CHECK_OK(asyncrt_executor_free(ex));
  CHECK_INT(tf_get(&r->finalized), 1);
  free(sc);
}

static void test_the_watchdog_thread_on_a_local_executor(void) {
  asyncrt_executor *ex = real_clock_executor(ASYNCRT_EXECUTOR_LOCAL, 0);
  CHECK(ex != NULL);
  scene *sc = scene_new();
  CHECK(sc != NULL);
  reports *r = &sc->r;
  CHECK_OK(watch_ms(ex, r));
  gate *g = &sc->g;
  gated *t = &sc->t;
  *t = (gated){g, 1};
  asyncrt_future f = {t, &gate_vtable};
  CHECK_OK(asyncrt_spawn(ex, &f, 0, NULL));
  driver *d = &sc->d;
  driver_start(d, ex);
  CHECK(gate_wait_entered(g, 1));
  int reported = reports_wait(r, 1);
  pthread_t thread;
  asyncrt_stall_info seen = reports_last(r, &thread);
  gate_open(g, 1);
  pthread_join(d->thread, NULL);
  CHECK(reported);
  CHECK(!pthread_equal(thread, pthread_self()));
  CHECK(!pthread_equal(thread, d->thread));
  CHECK(seen.poll == gate_poll);
  CHECK_OK(asyncrt_executor_free(ex));
  free(sc);
}

/* A tick stuck in a subsystem's poll is reported with no task. */
static int sub_poll(void *user, asyncrt_subsystem_cx *scx, uint32_t budget) {
  (void)budget;
  gate_pass(user);
  return (int)asyncrt_subsystem_cx_complete_all(scx, ASYNCRT_OK, 0);
}

static const asyncrt_subsystem_vtable sub_vtable = {sizeof(asyncrt_subsystem_vtable), sub_poll, NULL, NULL, NULL,
                                                    NULL};

static void test_a_stuck_subsystem(void) {
  asyncrt_executor *ex = test_clock_executor(ASYNCRT_EXECUTOR_LOCAL, 0);
  CHECK(ex != NULL);
  scene *sc = scene_new();
  CHECK(sc != NULL);
  reports *r = &sc->r;
  CHECK_OK(watch(ex, r, ASYNCRT_STALL_MANUAL));
  gate *g = &sc->g;
  asyncrt_subsystem_config cfg;
  asyncrt_subsystem_config_init(&cfg);
  cfg.vtable = &sub_vtable;
  cfg.user_data = g;
  asyncrt_subsystem *sub = NULL;
  CHECK_OK(asyncrt_subsystem_register(ex, &cfg, &sub));
  asyncrt_op op;
  memset(&op, 0, sizeof op);
  asyncrt_op_future_state st;
  asyncrt_future f;
  CHECK_OK(asyncrt_op_future(&st, &op, sub, &f));
  CHECK_OK(asyncrt_spawn(ex, &f, 0, NULL));
  driver *d = &sc->d;
  driver_start(d, ex); /* the task submits; the tick that follows polls the subsystem */
  CHECK(gate_wait_entered(g, 1));
  CHECK_INT(check(ex), 0);
  CHECK_OK(asyncrt_clock_advance(ex, THRESHOLD_NS));
  CHECK_INT(check(ex), 1);
  gate_open(g, 1);
  pthread_join(d->thread, NULL);
  CHECK_INT(r->last.task_id, 0);
  CHECK(r->last.poll == NULL);
  CHECK(r->last.task_name == NULL);
  CHECK_INT(r->last.duration_ns, THRESHOLD_NS);
  CHECK_OK(asyncrt_executor_free(ex));
  free(sc);
}

/* Replacing the handler finalizes the old one; so does turning the watchdog
 * off, and the executor's free; a refused call finalizes what it was given. */
static void test_handlers_are_finalized(void) {
  asyncrt_executor *ex = test_clock_executor(ASYNCRT_EXECUTOR_LOCAL, 0);
  CHECK(ex != NULL);
  int a = 0, b = 0, c = 0, refused = 0;
  asyncrt_stall_config cfg;
  asyncrt_stall_config_init(&cfg);
  CHECK_INT(cfg.size, sizeof cfg);
  CHECK_INT(cfg.threshold_ns, 100 * TF_MS_NS);
  CHECK_INT(cfg.period_ns, 0);
  CHECK(cfg.report == NULL && cfg.finalize == NULL);
  cfg.finalize = count_finalize;
  cfg.user_data = &a;
  CHECK_OK(asyncrt_executor_watch_stalls(ex, &cfg));
  cfg.user_data = &b;
  CHECK_OK(asyncrt_executor_watch_stalls(ex, &cfg));
  CHECK_INT(a, 1);
  cfg.threshold_ns = 0; /* off */
  cfg.user_data = &c;
  CHECK_OK(asyncrt_executor_watch_stalls(ex, &cfg));
  CHECK_INT(b, 1);
  CHECK_INT(check(ex), 0);
  /* Refused: the finalizer runs all the same. */
  cfg.user_data = &refused;
  CHECK_STATUS(asyncrt_executor_watch_stalls(NULL, &cfg), ASYNCRT_EINVAL);
  CHECK_INT(refused, 1);
  CHECK_STATUS(asyncrt_executor_watch_stalls(ex, NULL), ASYNCRT_EINVAL);
  cfg.size = offsetof(asyncrt_stall_config, finalize);
  CHECK_STATUS(asyncrt_executor_watch_stalls(ex, &cfg), ASYNCRT_EINVAL);
  CHECK_INT(refused, 1); /* too small to find finalize in */
  CHECK_INT(c, 0);
  CHECK_OK(asyncrt_executor_free(ex));
  CHECK_INT(c, 1);
  CHECK_INT(a, 1);
  CHECK_INT(b, 1);
}

static void schedule_nothing(void *user, asyncrt_runnable *r) {
  (void)user;
  asyncrt_runnable_drop(r);
}

static void test_foreign_executors_are_not_watched(void) {
  asyncrt_foreign_vtable fv = {sizeof fv, schedule_nothing, NULL};
  asyncrt_executor *ex = NULL;
  CHECK_OK(asyncrt_executor_new_foreign(&fv, NULL, &ex));
  int finalized = 0;
  asyncrt_stall_config cfg;
  asyncrt_stall_config_init(&cfg);
  cfg.finalize = count_finalize;
  cfg.user_data = &finalized;
  CHECK_STATUS(asyncrt_executor_watch_stalls(ex, &cfg), ASYNCRT_ENOTSUP);
  CHECK_INT(finalized, 1);
  CHECK_STATUS(asyncrt_executor_check_stalls(ex, NULL), ASYNCRT_ENOTSUP);
  CHECK_OK(asyncrt_executor_free(ex));
}

/* From inside its report, the executor cannot be checked, re-watched or
 * freed (the watchdog waits for the report). */
static void test_a_report_cannot_reenter(void) {
  asyncrt_executor *ex = test_clock_executor(ASYNCRT_EXECUTOR_LOCAL, 0);
  CHECK(ex != NULL);
  scene *sc = scene_new();
  CHECK(sc != NULL);
  reports *r = &sc->r;
  r->try_reentry = 1;
  CHECK_OK(watch(ex, r, ASYNCRT_STALL_MANUAL));
  gate *g = &sc->g;
  gated *t = &sc->t;
  *t = (gated){g, 1};
  asyncrt_future f = {t, &gate_vtable};
  CHECK_OK(asyncrt_spawn(ex, &f, 0, NULL));
  driver *d = &sc->d;
  driver_start(d, ex);
  CHECK(gate_wait_entered(g, 1));
  CHECK_INT(check(ex), 0);
  CHECK_OK(asyncrt_clock_advance(ex, THRESHOLD_NS));
  CHECK_INT(check(ex), 1);
  gate_open(g, 1);
  pthread_join(d->thread, NULL);
  CHECK_STATUS(r->reentry_check, ASYNCRT_EREENTRANT);
  CHECK_STATUS(r->reentry_watch, ASYNCRT_EREENTRANT);
  CHECK_STATUS(r->reentry_free, ASYNCRT_EREENTRANT);
  CHECK_INT(r->reentry_watch_finalized, 1);
  CHECK_OK(asyncrt_executor_free(ex));
  CHECK_INT(tf_get(&r->finalized), 1);
  free(sc);
}

/* A report may check another executor, whose report may not come back to
 * the first: it is still inside its report. */
static void test_nested_reports(void) {
  asyncrt_executor *a = test_clock_executor(ASYNCRT_EXECUTOR_LOCAL, 0);
  asyncrt_executor *b = test_clock_executor(ASYNCRT_EXECUTOR_LOCAL, 0);
  CHECK(a != NULL && b != NULL);
  scene *sa = scene_new(), *sb = scene_new();
  CHECK(sa != NULL && sb != NULL);
  sa->r.nested = b;
  sb->r.nested = a;
  CHECK_OK(watch(a, &sa->r, ASYNCRT_STALL_MANUAL));
  CHECK_OK(watch(b, &sb->r, ASYNCRT_STALL_MANUAL));
  scene *scenes[2] = {sa, sb};
  asyncrt_executor *exs[2] = {a, b};
  for (int i = 0; i < 2; i++) {
    scenes[i]->t = (gated){&scenes[i]->g, 1};
    asyncrt_future f = {&scenes[i]->t, &gate_vtable};
    CHECK_OK(asyncrt_spawn(exs[i], &f, 0, NULL));
    driver_start(&scenes[i]->d, exs[i]);
    CHECK(gate_wait_entered(&scenes[i]->g, 1));
    CHECK_INT(check(exs[i]), 0);
    CHECK_OK(asyncrt_clock_advance(exs[i], THRESHOLD_NS));
  }
  CHECK_INT(check(a), 1); /* a's report checks b: b's report checks a, refused */
  for (int i = 0; i < 2; i++) {
    gate_open(&scenes[i]->g, 1);
    pthread_join(scenes[i]->d.thread, NULL);
  }
  CHECK_OK(sa->r.nested_status);
  CHECK_INT(sa->r.nested_reports, 1);
  CHECK_STATUS(sb->r.nested_status, ASYNCRT_EREENTRANT);
  CHECK_OK(asyncrt_executor_free(a));
  CHECK_OK(asyncrt_executor_free(b));
  free(sa);
  free(sb);
}

int main(void) {
  CHECK_BEGIN();
  RUN(test_a_stuck_poll_is_reported_once);
  RUN(test_progress_is_not_a_stall);
  RUN(test_the_log);
  RUN(test_the_watchdog_thread_on_a_worker);
  RUN(test_the_watchdog_thread_on_a_local_executor);
  RUN(test_a_stuck_subsystem);
  RUN(test_handlers_are_finalized);
  RUN(test_foreign_executors_are_not_watched);
  RUN(test_a_report_cannot_reenter);
  RUN(test_nested_reports);
  return CHECK_END("test_stall");
}
