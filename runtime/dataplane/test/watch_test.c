/* watch_test.c -- the stall watchdog (art_watch.c) against a busy group,
 * under ThreadSanitizer and AddressSanitizer, without Go.
 *
 * Two threads drive the two cores of a group (a shared test clock) through
 * thousands of Send tasks, which the idle core steals and retires into its
 * home's live list; a checker thread samples the workers and moves the
 * clock a threshold at a time. Some tasks ("stallers") hold their first poll
 * until the checker has made three more checks: those are stalls, and must
 * be reported, each once, naming the task. Meanwhile the reports' lookups
 * walk live lists that the other core keeps changing. Prints "PASS <name>";
 * exits 1 at the first failure. Every wait is bounded. */
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>

#include "../art.h"

#include "check.h"

#define THRESHOLD 1000u
#define WAIT_BOUND_NS 20000000000ull

enum { TASKS = 4000, STALL_EVERY = 200, STALLERS = TASKS / STALL_EVERY };

typedef struct job {
  int index;
  int yields;
  _Atomic int done;
  _Atomic uint64_t id; /* a staller's id, known once it polls */
} job;

static job jobs[TASKS];
static _Atomic int jobs_done, checks, stop_checking;
static art_exec *cores[2];

/* What the reports said; written by the checker only (reports are made
 * under the watch's mutex, one at a time). */
static int reports, staller_reports, bad_reports;
static uint64_t reported_ids[STALLERS];

static int job_poll(void *self, asyncrt_context *cx, void *out) {
  (void)out;
  job *j = self;
  if (j->yields-- > 0) {
    art_task_wake_by_ref(art_context_task(cx));
    return ASYNCRT_POLL_PENDING;
  }
  atomic_store(&j->done, 1);
  atomic_fetch_add(&jobs_done, 1);
  return ASYNCRT_POLL_READY;
}
static const asyncrt_future_vtable job_vt = {sizeof(asyncrt_future_vtable), 0, job_poll, NULL, NULL};

/* A staller's one poll: it stays until three more checks have been made
 * (the watchdog's reports name this function). */
static int staller_poll(void *self, asyncrt_context *cx, void *out) {
  job *j = self;
  atomic_store(&j->id, art_task_id(art_context_task(cx)));
  int until = atomic_load(&checks) + 3;
  uint64_t t0 = art_now_ns();
  while (atomic_load(&checks) < until) {
    CHECK(art_now_ns() - t0 < WAIT_BOUND_NS, "the checker stopped checking");
    sched_yield();
  }
  return job_poll(self, cx, out);
}
static const asyncrt_future_vtable staller_vt = {sizeof(asyncrt_future_vtable), 0, staller_poll, NULL, NULL};

static int spawner_poll(void *self, asyncrt_context *cx, void *out) {
  (void)self, (void)out;
  for (int i = 0; i < TASKS; i++) {
    int staller = i % STALL_EVERY == 0;
    asyncrt_future f = {&jobs[i], staller ? &staller_vt : &job_vt};
    art_task *t = NULL;
    CHECK(art_exec_spawn(cx->exec, &f, ASYNCRT_SPAWN_SEND, NULL, &t) == 0, "spawn: %s", art_last_error());
    /* Named once it may already run (stolen): a report shows the name or none. */
    if (staller) CHECK(art_task_set_name(t, "staller") == 0, "name");
    art_task_unref(t);
  }
  return ASYNCRT_POLL_READY;
}
static const asyncrt_future_vtable spawner_vt = {sizeof(asyncrt_future_vtable), 0, spawner_poll, NULL, NULL};

static void on_stall(const asyncrt_stall_info *info, void *user) {
  (void)user;
  reports++;
  if (info->poll == staller_poll) {
    if (info->task_name && strcmp(info->task_name, "staller")) bad_reports++;
    for (int k = 0; k < staller_reports; k++)
      if (reported_ids[k] == info->task_id) bad_reports++; /* a poll is reported once */
    if (!info->task_id || staller_reports == STALLERS) bad_reports++;
    else reported_ids[staller_reports++] = info->task_id;
  } else if (info->poll && info->poll != job_poll && info->poll != spawner_poll) {
    bad_reports++; /* a task that is not ours */
  }
}

static void *checker(void *arg) {
  (void)arg;
  while (!atomic_load(&stop_checking)) {
    art_watch_check(cores[0]);
    atomic_fetch_add(&cores[0]->clock->now, THRESHOLD);
    atomic_fetch_add(&checks, 1);
    sched_yield();
  }
  return NULL;
}

typedef struct { art_exec *core; } drive_arg;

static void *drive(void *arg) {
  art_exec *e = ((drive_arg *)arg)->core;
  CHECK(art_exec_acquire_driver(e), "driver");
  uint64_t t0 = art_now_ns();
  while (atomic_load(&jobs_done) < TASKS) {
    CHECK(art_now_ns() - t0 < WAIT_BOUND_NS, "no progress in 20 s (%d done)", atomic_load(&jobs_done));
    if (art_exec_run(e, 256, 0, NULL)) continue;
    if (art_group_steal(e)) continue;
    if (art_worker_prepare_park(e)) {
      art_exec_park(e, 1000000);
      art_worker_unparked(e);
    }
  }
  art_exec_release_driver(e);
  return NULL;
}

static void test_stalls_in_a_busy_group(void) {
  for (int i = 0; i < TASKS; i++) jobs[i] = (job){.index = i, .yields = i % STALL_EVERY ? i % 4 : 0};
  for (int i = 0; i < 2; i++) {
    int efd = -1;
    cores[i] = art_exec_new(NULL, 0, efd);
    CHECK(cores[i], "core: %s", art_last_error());
  }
  art_core_configure(cores[0], NULL, 1, 256, 1000000, 0, -1);
  art_core_configure(cores[1], cores[0]->clock, 1, 256, 1000000, 0, -1);
  CHECK(art_group_new(cores, 2, 0), "group");
  CHECK(art_watch_set(cores[0], THRESHOLD, on_stall, NULL, NULL) == 0, "watch");
  asyncrt_future f = {NULL, &spawner_vt};
  CHECK(art_exec_spawn(cores[0], &f, 0, NULL, NULL) == 0, "spawner");
  pthread_t drivers[2], check_thread;
  drive_arg args[2] = {{cores[0]}, {cores[1]}};
  CHECK(pthread_create(&check_thread, NULL, checker, NULL) == 0, "checker");
  for (int i = 0; i < 2; i++) CHECK(pthread_create(&drivers[i], NULL, drive, &args[i]) == 0, "driver");
  for (int i = 0; i < 2; i++) pthread_join(drivers[i], NULL);
  atomic_store(&stop_checking, 1);
  pthread_join(check_thread, NULL);
  CHECK(bad_reports == 0, "%d reports named the wrong task, or a poll twice", bad_reports);
  CHECK(staller_reports == STALLERS, "%d of the %d stalled polls were reported", staller_reports, STALLERS);
  for (int k = 0; k < staller_reports; k++) { /* each the id of a staller */
    int known = 0;
    for (int i = 0; i < TASKS; i += STALL_EVERY) known |= atomic_load(&jobs[i].id) == reported_ids[k];
    CHECK(known, "report %d named task %llu, no staller", k, (unsigned long long)reported_ids[k]);
  }
  uint64_t stalls = atomic_load(&cores[0]->stalls) + atomic_load(&cores[1]->stalls);
  CHECK(stalls == (uint64_t)reports, "stalls counted %llu, reports %d", (unsigned long long)stalls, reports);
  art_watch_free(cores[0]);
  for (int i = 0; i < 2; i++) {
    CHECK(art_exec_acquire_driver(cores[i]), "driver at free");
    art_exec_shutdown(cores[i]);
    art_exec_release_driver(cores[i]);
    art_exec_close(cores[i]);
  }
  printf("PASS stalls_in_a_busy_group (%d reports, %d checks)\n", reports, atomic_load(&checks));
}

int main(void) {
  test_stalls_in_a_busy_group();
  return 0;
}
