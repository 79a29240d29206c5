/* Asynchronous cancellation: a future's cleanup runs until it finishes or
 * its deadline passes, children's cleanups end before their parent's starts,
 * a synchronous cancel or an immediate shutdown runs none, the strongest
 * cancel wins, and a shield holds a cancel back.
 *
 * Time is the test clock's (ASYNCRT_CLOCK_TEST): what has happened at each
 * instant follows from the clock alone, so every count is exact. */
#include "check.h" /* first: it sets _POSIX_C_SOURCE */
#include "scopefut.h"

#include <stdint.h>
#include <stdlib.h>

#define MS 1000000ull
#define SEC 1000000000ull

/* A parked node whose cleanup is `cleanup`, spawned on ex. */
static int spawn_parked(asyncrt_executor *ex, sf_node *n, int cleanup, asyncrt_task **task) {
  sf_node_init(n);
  n->cleanup = cleanup;
  return sf_spawn(ex, n, 0, task);
}

/* A cleanup that awaits a 1 s sleep is called twice: at the cancel, and when
 * the sleep's timer wakes it; the drop follows. */
static void test_cleanup_awaits_a_sleep(void) {
  asyncrt_executor *ex = sf_local_test_clock();
  sf_node n;
  asyncrt_task *task = NULL;
  CHECK(ex != NULL);
  CHECK_OK(spawn_parked(ex, &n, SF_CLEANUP_SLEEP, &task));
  n.cleanup_sleep_ns = 1 * SEC;
  CHECK_OK(asyncrt_run(ex, NULL));
  CHECK_INT(tf_get(&n.polls), 1);

  CHECK_OK(asyncrt_task_cancel_ex(task, 5 * SEC));
  CHECK_OK(asyncrt_run(ex, NULL));
  CHECK_INT(tf_get(&n.cleanup_calls), 1);
  CHECK_INT(tf_get(&n.cleanups_done), 0);
  CHECK_INT(tf_get(&n.drops), 0);
  CHECK_STATUS(asyncrt_task_status(task), ASYNCRT_EAGAIN);

  CHECK_OK(asyncrt_clock_advance(ex, 1 * SEC - 1));
  CHECK_OK(asyncrt_run(ex, NULL));
  CHECK_INT(tf_get(&n.cleanup_calls), 1);
  CHECK_INT(tf_get(&n.drops), 0);

  CHECK_OK(asyncrt_clock_advance(ex, 1));
  CHECK_OK(asyncrt_run(ex, NULL));
  CHECK_INT(tf_get(&n.cleanup_calls), 2);
  CHECK_INT(tf_get(&n.cleanups_done), 1);
  CHECK_INT(tf_get(&n.drops), 1);
  CHECK(tf_get(&n.cleanup_end_seq) < tf_get(&n.drop_seq));
  CHECK_INT(n.cleanup_start_clock, 0);
  CHECK_INT(n.cleanup_end_clock, 1 * SEC);
  CHECK_INT(tf_get(&n.polls), 1); /* never polled after the cancel */
  CHECK_INT(tf_get(&n.bad_polls), 0);
  CHECK_INT(tf_get(&n.bad_cleanups), 0);
  CHECK_STATUS(asyncrt_task_status(task), ASYNCRT_ECANCELLED);
  CHECK_OK(asyncrt_task_release(task));
  CHECK_OK(asyncrt_executor_free(ex));
  CHECK_INT(tf_get(&n.drops), 1);
}

/* A cleanup that never finishes is dropped once its deadline passes. */
static void test_cleanup_deadline_drops(void) {
  asyncrt_executor *ex = sf_local_test_clock();
  sf_node n;
  asyncrt_task *task = NULL;
  CHECK(ex != NULL);
  CHECK_OK(spawn_parked(ex, &n, SF_CLEANUP_FOREVER, &task));
  CHECK_OK(asyncrt_run(ex, NULL));
  CHECK_OK(asyncrt_task_cancel_ex(task, 2 * SEC));
  CHECK_OK(asyncrt_run(ex, NULL));
  CHECK_INT(tf_get(&n.cleanup_calls), 1);
  CHECK_OK(asyncrt_clock_advance(ex, 2 * SEC - 1));
  CHECK_OK(asyncrt_run(ex, NULL));
  CHECK_INT(tf_get(&n.drops), 0);
  CHECK_STATUS(asyncrt_task_status(task), ASYNCRT_EAGAIN);
  CHECK_OK(asyncrt_clock_advance(ex, 1));
  CHECK_OK(asyncrt_run(ex, NULL));
  CHECK_INT(tf_get(&n.drops), 1);
  CHECK_INT(tf_get(&n.cleanup_calls), 1); /* the deadline's wake finds it passed */
  CHECK_INT(tf_get(&n.cleanups_done), 0);
  CHECK_INT(tf_get(&n.bad_cleanups), 0);
  CHECK_STATUS(asyncrt_task_status(task), ASYNCRT_ECANCELLED);
  CHECK_OK(asyncrt_task_release(task));
  CHECK_OK(asyncrt_executor_free(ex));
}

/* Cancelling a parent with cleanup: its children's cleanups (500 ms sleeps)
 * run first, and its own cleanup (a 200 ms sleep) starts only once they are
 * dropped. */
static void test_children_cleanups_before_parent(void) {
  asyncrt_executor *ex = sf_local_test_clock();
  sf_node parent, kids[2], *kid_ptrs[2];
  asyncrt_task *task = NULL, *kid_tasks[2] = {NULL, NULL};
  int i;
  CHECK(ex != NULL);
  sf_node_init(&parent);
  parent.opens_scope = 1;
  parent.children = kid_ptrs;
  parent.nchildren = 2;
  parent.child_tasks = kid_tasks;
  parent.cleanup = SF_CLEANUP_SLEEP;
  parent.cleanup_sleep_ns = 200 * MS;
  for (i = 0; i < 2; i++) {
    sf_node_init(&kids[i]);
    kids[i].cleanup = SF_CLEANUP_SLEEP;
    kids[i].cleanup_sleep_ns = 500 * MS;
    kid_ptrs[i] = &kids[i];
  }
  CHECK_OK(sf_spawn(ex, &parent, 0, &task));
  CHECK_OK(asyncrt_run(ex, NULL));
  CHECK_INT(tf_get(&parent.spawned), 2);
  CHECK_INT(tf_get(&kids[0].polls), 1);
  CHECK_INT(tf_get(&kids[1].polls), 1);

  CHECK_OK(asyncrt_task_cancel_ex(task, 5 * SEC));
  CHECK_OK(asyncrt_run(ex, NULL));
  for (i = 0; i < 2; i++) {
    CHECK_INT(tf_get(&kids[i].cleanup_calls), 1);
    CHECK_INT(tf_get(&kids[i].drops), 0);
  }
  CHECK_INT(tf_get(&parent.cleanup_calls), 0);

  CHECK_OK(asyncrt_clock_advance(ex, 500 * MS));
  CHECK_OK(asyncrt_run(ex, NULL));
  for (i = 0; i < 2; i++) {
    CHECK_INT(tf_get(&kids[i].cleanups_done), 1);
    CHECK_INT(tf_get(&kids[i].drops), 1);
    CHECK_INT(kids[i].cleanup_start_clock, 0);
    CHECK(tf_get(&kids[i].cleanup_end_seq) < tf_get(&kids[i].drop_seq));
    CHECK(tf_get(&kids[i].drop_seq) < tf_get(&parent.cleanup_start_seq));
    CHECK_STATUS(asyncrt_task_status(kid_tasks[i]), ASYNCRT_ECANCELLED);
  }
  CHECK_INT(tf_get(&parent.cleanup_calls), 1);
  CHECK_INT(parent.cleanup_start_clock, 500 * MS);
  CHECK_INT(tf_get(&parent.drops), 0);

  CHECK_OK(asyncrt_clock_advance(ex, 200 * MS));
  CHECK_OK(asyncrt_run(ex, NULL));
  CHECK_INT(tf_get(&parent.cleanup_calls), 2);
  CHECK_INT(tf_get(&parent.cleanups_done), 1);
  CHECK_INT(tf_get(&parent.drops), 1);
  CHECK_INT(parent.cleanup_end_clock, 700 * MS);
  CHECK_INT(tf_get(&parent.polls), 1);
  CHECK_STATUS(asyncrt_task_status(task), ASYNCRT_ECANCELLED);
  for (i = 0; i < 2; i++) {
    CHECK_OK(asyncrt_task_release(kid_tasks[i]));
  }
  CHECK_OK(asyncrt_task_release(task));
  CHECK_INT(tf_stats(ex).tasks_live, 0);
  CHECK_OK(asyncrt_executor_free(ex));
}

/* A synchronous cancel (asyncrt_task_cancel, or cancel_ex with 0) drops the
 * future without calling its cleanup. */
static void test_sync_cancel_runs_no_cleanup(void) {
  asyncrt_executor *ex = sf_local_test_clock();
  sf_node a, b;
  asyncrt_task *ta = NULL, *tb = NULL;
  CHECK(ex != NULL);
  CHECK_OK(spawn_parked(ex, &a, SF_CLEANUP_READY, &ta));
  CHECK_OK(spawn_parked(ex, &b, SF_CLEANUP_READY, &tb));
  CHECK_OK(asyncrt_run(ex, NULL));
  CHECK_OK(asyncrt_task_cancel(ta));
  CHECK_OK(asyncrt_task_cancel_ex(tb, 0));
  CHECK_OK(asyncrt_run(ex, NULL));
  CHECK_INT(tf_get(&a.drops), 1);
  CHECK_INT(tf_get(&b.drops), 1);
  CHECK_INT(tf_get(&a.cleanup_calls), 0);
  CHECK_INT(tf_get(&b.cleanup_calls), 0);
  CHECK_STATUS(asyncrt_task_status(ta), ASYNCRT_ECANCELLED);
  CHECK_STATUS(asyncrt_task_status(tb), ASYNCRT_ECANCELLED);
  CHECK_OK(asyncrt_task_release(ta));
  CHECK_OK(asyncrt_task_release(tb));
  CHECK_OK(asyncrt_executor_free(ex));
}

/* The strongest (earliest) cancel wins: a synchronous cancel cuts a running
 * cleanup short, and of several cleanup deadlines the earliest holds. */
static void test_strongest_cancel_wins(void) {
  asyncrt_executor *ex = sf_local_test_clock();
  sf_node a, b;
  asyncrt_task *ta = NULL, *tb = NULL;
  CHECK(ex != NULL);
  CHECK_OK(spawn_parked(ex, &a, SF_CLEANUP_FOREVER, &ta));
  CHECK_OK(spawn_parked(ex, &b, SF_CLEANUP_FOREVER, &tb));
  CHECK_OK(asyncrt_run(ex, NULL));

  CHECK_OK(asyncrt_task_cancel_ex(ta, 5 * SEC));
  CHECK_OK(asyncrt_run(ex, NULL));
  CHECK_INT(tf_get(&a.cleanup_calls), 1);
  CHECK_OK(asyncrt_task_cancel(ta));
  CHECK_OK(asyncrt_run(ex, NULL));
  CHECK_INT(tf_get(&a.drops), 1);
  CHECK_INT(tf_get(&a.cleanup_calls), 1);
  CHECK_STATUS(asyncrt_task_status(ta), ASYNCRT_ECANCELLED);

  CHECK_OK(asyncrt_task_cancel_ex(tb, 10 * SEC));
  CHECK_OK(asyncrt_run(ex, NULL));
  CHECK_OK(asyncrt_task_cancel_ex(tb, 1 * SEC));
  CHECK_OK(asyncrt_run(ex, NULL));
  CHECK_OK(asyncrt_task_cancel_ex(tb, 20 * SEC)); /* weaker: changes nothing */
  CHECK_OK(asyncrt_run(ex, NULL));
  CHECK(tf_get(&b.cleanup_calls) >= 1);
  CHECK_OK(asyncrt_clock_advance(ex, 1 * SEC - 1));
  CHECK_OK(asyncrt_run(ex, NULL));
  CHECK_INT(tf_get(&b.drops), 0);
  CHECK_OK(asyncrt_clock_advance(ex, 1));
  CHECK_OK(asyncrt_run(ex, NULL));
  CHECK_INT(tf_get(&b.drops), 1);
  CHECK_INT(tf_get(&b.bad_cleanups), 0);
  CHECK_STATUS(asyncrt_task_status(tb), ASYNCRT_ECANCELLED);
  CHECK_OK(asyncrt_task_release(ta));
  CHECK_OK(asyncrt_task_release(tb));
  CHECK_OK(asyncrt_executor_free(ex));
}

/* A failure the cleanup names is recorded as the task's error. */
static void test_cleanup_failure_is_the_task_error(void) {
  asyncrt_executor *ex = sf_local_test_clock();
  sf_node n;
  asyncrt_task *task = NULL;
  asyncrt_error_info info;
  CHECK(ex != NULL);
  CHECK_OK(spawn_parked(ex, &n, SF_CLEANUP_FAIL, &task));
  n.cleanup_fail_status = 1020;
  CHECK_OK(asyncrt_run(ex, NULL));
  CHECK_OK(asyncrt_task_cancel_ex(task, 1 * SEC));
  CHECK_OK(asyncrt_run(ex, NULL));
  CHECK_INT(tf_get(&n.cleanup_calls), 1);
  CHECK_INT(tf_get(&n.drops), 1);
  memset(&info, 0, sizeof info);
  info.size = sizeof info;
  CHECK_OK(asyncrt_task_error_get(task, &info));
  CHECK_STATUS(info.status, 1020);
  CHECK_INT(info.task_id, sf_task_id(task));
  CHECK_OK(asyncrt_task_release(task));
  CHECK_OK(asyncrt_executor_free(ex));
}

/* Poll 1 enters a shield; the first poll after `release` leaves it. Parks. */
static int shield_until_release(sf_node *n, asyncrt_context *cx) {
  int *rc = n->hook_data;
  if (tf_get(&n->polls) == 1) {
    rc[0] = asyncrt_shield_enter(cx);
  } else if (tf_get(&n->release) && rc[1] < 0) {
    rc[1] = asyncrt_shield_exit(cx);
  }
  if (!tf_get(&n->waker_flag)) {
    asyncrt_waker_clone(asyncrt_context_waker(cx), &n->waker);
    tf_set(&n->waker_flag, 1);
  }
  return ASYNCRT_POLL_PENDING;
}

/* An asynchronous cancel inside a shield waits for its end; then the
 * cleanup runs, until its deadline. Polls caused by the cancel itself (the
 * header: it "only records itself") are counted in `extra`, checked last. */
static void test_shield_defers_cleanup(void) {
  asyncrt_executor *ex = sf_local_test_clock();
  sf_node n;
  asyncrt_task *task = NULL;
  int rc[2] = {-1, -1};
  int extra;
  CHECK(ex != NULL);
  sf_node_init(&n);
  n.hook = shield_until_release;
  n.hook_data = rc;
  n.cleanup = SF_CLEANUP_FOREVER;
  CHECK_OK(sf_spawn(ex, &n, 0, &task));
  CHECK_OK(asyncrt_run(ex, NULL));
  CHECK_OK(rc[0]);
  CHECK_OK(asyncrt_task_cancel_ex(task, 3 * SEC));
  CHECK_OK(asyncrt_run(ex, NULL));
  CHECK_INT(tf_get(&n.cleanup_calls), 0);
  extra = tf_get(&n.polls) - 1;
  CHECK_OK(asyncrt_clock_advance(ex, 1 * SEC));
  CHECK_OK(asyncrt_run(ex, NULL));
  CHECK_INT(tf_get(&n.cleanup_calls), 0);

  sf_release(&n); /* poll 2 leaves the shield: the cleanup starts when it returns */
  CHECK_OK(asyncrt_run(ex, NULL));
  CHECK_OK(rc[1]);
  CHECK_INT(tf_get(&n.polls), 2 + extra);
  CHECK_INT(tf_get(&n.cleanup_calls), 1);
  CHECK_INT(n.cleanup_start_clock, 1 * SEC);
  CHECK_INT(tf_get(&n.drops), 0);
  /* 3 s from the cancel, or from the cleanup's start: 4 s passes both */
  CHECK_OK(asyncrt_clock_advance(ex, 3 * SEC));
  CHECK_OK(asyncrt_run(ex, NULL));
  CHECK_INT(tf_get(&n.drops), 1);
  CHECK_INT(tf_get(&n.bad_polls), 0);
  CHECK_STATUS(asyncrt_task_status(task), ASYNCRT_ECANCELLED);
  CHECK_OK(asyncrt_task_release(task));
  CHECK_OK(asyncrt_executor_free(ex));
  CHECK_INT(extra, 0); /* polls caused by the cancel itself */
}

/* An immediate shutdown of a thread-per-core executor drops every future:
 * a shielded one, one inside its cleanup, ones whose cleanup never started,
 * the child of a shield scope; children before their parents. */
static void test_immediate_shutdown_overrides_shields_and_cleanups(void) {
  enum { SHIELDED, IN_CLEANUP, UNCANCELLED, PARENT, KID, SHIELD_OWNER, SHIELD_KID, NODES };
  asyncrt_executor *ex = sf_executor(ASYNCRT_EXECUTOR_THREADS, 2, ASYNCRT_CLOCK_MONOTONIC);
  sf_node *n = calloc(NODES, sizeof *n);
  sf_node **ptrs = calloc(NODES, sizeof *ptrs);
  int *rc = calloc(2, sizeof *rc);
  asyncrt_task *tasks[NODES];
  int i;
  CHECK(ex != NULL && n != NULL && ptrs != NULL && rc != NULL);
  rc[0] = rc[1] = -1;
  for (i = 0; i < NODES; i++) {
    sf_node_init(&n[i]);
    n[i].cleanup = SF_CLEANUP_READY;
    ptrs[i] = &n[i];
    tasks[i] = NULL;
  }
  n[SHIELDED].hook = shield_until_release;
  n[SHIELDED].hook_data = rc;
  n[IN_CLEANUP].cleanup = SF_CLEANUP_FOREVER;
  n[PARENT].opens_scope = 1;
  n[PARENT].children = &ptrs[KID];
  n[PARENT].nchildren = 1;
  n[PARENT].child_flags = ASYNCRT_SPAWN_WORKER(1);
  n[SHIELD_OWNER].opens_scope = 1;
  n[SHIELD_OWNER].cfg.flags = ASYNCRT_SCOPE_SHIELD;
  n[SHIELD_OWNER].children = &ptrs[SHIELD_KID];
  n[SHIELD_OWNER].nchildren = 1;
  CHECK_OK(sf_spawn(ex, &n[SHIELDED], ASYNCRT_SPAWN_WORKER(0), &tasks[SHIELDED]));
  CHECK_OK(sf_spawn(ex, &n[IN_CLEANUP], ASYNCRT_SPAWN_WORKER(1), &tasks[IN_CLEANUP]));
  CHECK_OK(sf_spawn(ex, &n[UNCANCELLED], ASYNCRT_SPAWN_WORKER(0), &tasks[UNCANCELLED]));
  CHECK_OK(sf_spawn(ex, &n[PARENT], ASYNCRT_SPAWN_WORKER(0), &tasks[PARENT]));
  CHECK_OK(sf_spawn(ex, &n[SHIELD_OWNER], ASYNCRT_SPAWN_WORKER(1), &tasks[SHIELD_OWNER]));
  for (i = 0; i < NODES; i++) {
    CHECK(tf_wait_flag(&n[i].waker_flag, 5000));
  }
  CHECK_OK(rc[0]);

  CHECK_OK(asyncrt_task_cancel(tasks[SHIELDED]));
  CHECK_OK(asyncrt_task_cancel_ex(tasks[IN_CLEANUP], 60 * SEC));
  CHECK_OK(asyncrt_task_cancel(tasks[SHIELD_OWNER])); /* its shield scope keeps SHIELD_KID */
  CHECK(tf_wait_at_least(&n[IN_CLEANUP].cleanup_calls, 1, 5000));
  tf_sleep_ms(5);
  for (i = 0; i < NODES; i++) {
    CHECK_INT(tf_get(&n[i].drops), 0);
  }

  CHECK_OK(asyncrt_executor_shutdown(ex, ASYNCRT_SHUTDOWN_IMMEDIATE, TF_TIMEOUT_NS));
  for (i = 0; i < NODES; i++) {
    CHECK_INT(tf_get(&n[i].drops), 1);
    if (i != SHIELDED) { /* checked last: see test_shield_defers_cleanup */
      CHECK_INT(tf_get(&n[i].polls), 1);
    }
    CHECK_INT(tf_get(&n[i].bad_polls), 0);
    CHECK_INT(tf_get(&n[i].cleanup_calls), i == IN_CLEANUP ? 1 : 0);
    if (tasks[i] != NULL) {
      CHECK_STATUS(asyncrt_task_status(tasks[i]), ASYNCRT_ECANCELLED);
    }
  }
  CHECK(tf_get(&n[KID].drop_seq) < tf_get(&n[PARENT].drop_seq));
  CHECK(tf_get(&n[SHIELD_KID].drop_seq) < tf_get(&n[SHIELD_OWNER].drop_seq));
  CHECK_INT(rc[1], -1); /* the shield was never left */
  for (i = 0; i < NODES; i++) {
    CHECK_OK(asyncrt_task_release(tasks[i]));
  }
  CHECK_OK(asyncrt_executor_free(ex));
  CHECK_INT(tf_get(&n[SHIELDED].polls), 1); /* no poll from the cancel itself */
  free(n);
  free(ptrs);
  free(rc);
}

int main(void) {
  CHECK_BEGIN();
  RUN(test_cleanup_awaits_a_sleep);
  RUN(test_cleanup_deadline_drops);
  RUN(test_children_cleanups_before_parent);
  RUN(test_sync_cancel_runs_no_cleanup);
  RUN(test_strongest_cancel_wins);
  RUN(test_cleanup_failure_is_the_task_error);
  RUN(test_shield_defers_cleanup);
  RUN(test_immediate_shutdown_overrides_shields_and_cleanups);
  return CHECK_END("test_cleanup");
}
