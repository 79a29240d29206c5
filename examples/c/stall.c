/* stall.c -- a poll that blocks its worker, caught by the stall watchdog,
 * and the executor's counters afterwards.
 *
 * `slow_poll` makes the classic mistake: it blocks inside a poll (here in
 * short sleeps, as a blocking read would), so nothing else on its worker
 * runs. The watchdog, set to 10 ms, reports it while it is still inside:
 * task id, name, worker, how long, and the poll function's symbol (this
 * program is linked with -rdynamic, so dladdr can name it). To make the
 * example's output independent of timing, the poll stays until the report
 * has come (at most 5 s).
 *
 *   $ ./stall
 *   report: worker 0 task 2 "slow" in slow_poll for 12.6 ms or more
 *   tasks: 2 spawned, 2 completed; polls: 12; local wakes: 10; stalls: 1
 *   stall: success
 */
#define _POSIX_C_SOURCE 200809L
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "asyncrt.h"

static atomic_int reported;

static void on_stall(const asyncrt_stall_info *info, void *user) {
  (void)user;
  printf("report: worker %u task %llu \"%s\" in %s for %.1f ms or more\n", info->worker,
         (unsigned long long)info->task_id, info->task_name ? info->task_name : "",
         info->poll_symbol ? info->poll_symbol : "?", (double)info->duration_ns / 1e6);
  atomic_store(&reported, 1);
}

/* Blocks its worker: what a poll must never do. */
int slow_poll(void *self, asyncrt_context *cx, void *out);
int slow_poll(void *self, asyncrt_context *cx, void *out) {
  (void)self, (void)cx, (void)out;
  struct timespec step = {0, 1000000};
  for (int ms = 0; ms < 5000 && !atomic_load(&reported); ms++) nanosleep(&step, NULL);
  return ASYNCRT_POLL_READY;
}

/* Yields ten times: well-behaved, and never reported. */
static int yield_poll(void *self, asyncrt_context *cx, void *out) {
  (void)out;
  int *left = self;
  if ((*left)-- == 0) return ASYNCRT_POLL_READY;
  asyncrt_waker_wake_by_ref(asyncrt_context_waker(cx));
  return ASYNCRT_POLL_PENDING;
}

static const asyncrt_future_vtable slow_vtable = {sizeof(asyncrt_future_vtable), 0, slow_poll, NULL, NULL};
static const asyncrt_future_vtable yield_vtable = {sizeof(asyncrt_future_vtable), 0, yield_poll, NULL, NULL};

static int fail(const char *what) {
  printf("stall: %s failed: %s\n", what, asyncrt_last_error());
  return 1;
}

int main(void) {
  asyncrt_executor *ex = NULL;
  if (asyncrt_executor_new(NULL, &ex)) return fail("asyncrt_executor_new");

  asyncrt_stall_config watch;
  asyncrt_stall_config_init(&watch);
  watch.threshold_ns = 10 * 1000 * 1000; /* a poll over 10 ms is a stall */
  watch.report = on_stall;               /* NULL would log a line to stderr instead */
  if (asyncrt_executor_watch_stalls(ex, &watch)) return fail("asyncrt_executor_watch_stalls");

  int left = 10;
  asyncrt_future yielder = {&left, &yield_vtable}, slow = {NULL, &slow_vtable};
  asyncrt_task *task = NULL;
  if (asyncrt_spawn(ex, &yielder, 0, NULL) || asyncrt_spawn(ex, &slow, 0, &task)) return fail("asyncrt_spawn");
  asyncrt_task_set_name(task, "slow");
  asyncrt_task_release(task);
  if (asyncrt_run(ex, NULL)) return fail("asyncrt_run");

  asyncrt_executor_stats s;
  memset(&s, 0, sizeof s);
  s.size = sizeof s;
  if (asyncrt_executor_stats_get(ex, &s)) return fail("asyncrt_executor_stats_get");
  printf("tasks: %llu spawned, %llu completed; polls: %llu; local wakes: %llu; stalls: %llu\n",
         (unsigned long long)s.tasks_spawned, (unsigned long long)s.tasks_completed, (unsigned long long)s.polls,
         (unsigned long long)s.wakes_local, (unsigned long long)s.stalls);
  /* More than one stall only if the machine itself held this thread 10 ms. */
  int ok = atomic_load(&reported) && s.stalls >= 1 && s.tasks_completed == 2;
  asyncrt_executor_free(ex);
  puts(ok ? "stall: success" : "stall: FAILED");
  return ok ? 0 : 1;
}
