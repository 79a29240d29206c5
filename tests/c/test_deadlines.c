/* Scope deadlines on the test clock: a timeout cancels the scope at its
 * instant and not a nanosecond before, the earliest of nested deadlines
 * wins, a deadline already passed cancels at once, and a cancelled scope
 * gives its children's cleanups cleanup_timeout_ns. */
#include "check.h" /* first: it sets _POSIX_C_SOURCE */
#include "scopefut.h"

#include <stdint.h>

#define MS 1000000ull
#define SEC 1000000000ull

static void check_deadline_record(asyncrt_scope *s) {
  asyncrt_error_info info;
  size_t count = 0;
  CHECK_OK(asyncrt_scope_error_count(s, &count));
  CHECK_INT(count, 1);
  memset(&info, 0, sizeof info);
  info.size = sizeof info;
  CHECK_OK(asyncrt_scope_error_get(s, 0, &info));
  CHECK_STATUS(info.status, ASYNCRT_ETIMEDOUT);
  CHECK_INT(info.task_id, 0); /* 0: the scope's deadline */
}

/* A top scope with a 1 s timeout: nothing happens at 1 s - 1 ns; at 1 s its
 * children are cancelled (the one with a cleanup through it) and the join
 * fails with ETIMEDOUT. */
static void test_scope_timeout(void) {
  asyncrt_executor *ex = sf_local_test_clock();
  asyncrt_scope *s = NULL;
  sf_node kids[3];
  asyncrt_task *tasks[3];
  int i;
  CHECK(ex != NULL);
  s = sf_top(ex, 0, 1 * SEC, NULL);
  CHECK(s != NULL);
  for (i = 0; i < 3; i++) {
    sf_node_init(&kids[i]);
  }
  kids[1].cleanup = SF_CLEANUP_READY;
  kids[2].then = SF_SLEEP;
  kids[2].sleep_ns = 10 * SEC;
  for (i = 0; i < 3; i++) {
    CHECK_OK(sf_scope_spawn(s, &kids[i], 0, &tasks[i]));
  }
  CHECK_OK(asyncrt_run(ex, NULL));
  CHECK_OK(asyncrt_clock_advance(ex, 1 * SEC - 1));
  CHECK_OK(asyncrt_run(ex, NULL));
  for (i = 0; i < 3; i++) {
    CHECK_INT(tf_get(&kids[i].polls), 1);
    CHECK_INT(tf_get(&kids[i].drops), 0);
  }
  CHECK_STATUS(asyncrt_scope_status(s), ASYNCRT_EAGAIN);

  CHECK_OK(asyncrt_clock_advance(ex, 1));
  CHECK_STATUS(sf_join(ex, s, 0), ASYNCRT_ETIMEDOUT);
  for (i = 0; i < 3; i++) {
    CHECK_INT(tf_get(&kids[i].drops), 1);
    CHECK_INT(tf_get(&kids[i].polls), 1);
    CHECK_STATUS(asyncrt_task_status(tasks[i]), ASYNCRT_ECANCELLED);
    CHECK_OK(asyncrt_task_release(tasks[i]));
  }
  CHECK_INT(tf_get(&kids[1].cleanup_calls), 1);
  CHECK_INT(kids[1].cleanup_start_clock, 1 * SEC);
  CHECK_STATUS(asyncrt_scope_status(s), ASYNCRT_ETIMEDOUT);
  check_deadline_record(s);
  CHECK_PASSED();
  CHECK_OK(asyncrt_scope_free(s));
  CHECK_OK(asyncrt_executor_free(ex));
}

/* A node that opens a scope with `timeout` and two parked children, then
 * awaits its join. */
static void nested_owner(sf_node *owner, sf_node *grandkids, sf_node **ptrs, uint64_t timeout) {
  int i;
  sf_node_init(owner);
  owner->opens_scope = 1;
  owner->cfg.timeout_ns = timeout;
  owner->children = ptrs;
  owner->nchildren = 2;
  owner->then = SF_JOIN;
  owner->keep_scope = 1;
  for (i = 0; i < 2; i++) {
    sf_node_init(&grandkids[i]);
    ptrs[i] = &grandkids[i];
  }
  grandkids[1].cleanup = SF_CLEANUP_READY;
}

/* Outer timeout 1 s, inner (opened by a child task) 5 s: at 1 s the outer
 * join fails with ETIMEDOUT, and the inner scope's children are cancelled
 * first, with their owner. */
static void test_outer_deadline_reaches_inner_scope(void) {
  asyncrt_executor *ex = sf_local_test_clock();
  asyncrt_scope *outer = NULL;
  sf_node owner, grandkids[2], *ptrs[2];
  asyncrt_task *owner_task = NULL;
  int i, inner;
  CHECK(ex != NULL);
  outer = sf_top(ex, 0, 1 * SEC, "outer");
  CHECK(outer != NULL);
  nested_owner(&owner, grandkids, ptrs, 5 * SEC);
  CHECK_OK(sf_scope_spawn(outer, &owner, 0, &owner_task));
  CHECK_OK(asyncrt_run(ex, NULL));
  CHECK_OK(tf_get(&owner.open_rc));
  CHECK_INT(tf_get(&owner.spawned), 2);
  CHECK_OK(asyncrt_clock_advance(ex, 1 * SEC - 1));
  CHECK_OK(asyncrt_run(ex, NULL));
  CHECK_INT(tf_get(&grandkids[0].drops) + tf_get(&grandkids[1].drops) + tf_get(&owner.drops), 0);

  CHECK_OK(asyncrt_clock_advance(ex, 1));
  CHECK_STATUS(sf_join(ex, outer, 0), ASYNCRT_ETIMEDOUT);
  for (i = 0; i < 2; i++) {
    CHECK_INT(tf_get(&grandkids[i].drops), 1);
    CHECK_INT(tf_get(&grandkids[i].polls), 1);
    CHECK(tf_get(&grandkids[i].drop_seq) < tf_get(&owner.drop_seq));
  }
  CHECK_INT(tf_get(&grandkids[1].cleanup_calls), 1);
  CHECK_INT(tf_get(&owner.drops), 1);
  CHECK_INT(tf_get(&owner.polls), 1); /* cancelled: never polled again */
  CHECK_STATUS(asyncrt_task_status(owner_task), ASYNCRT_ECANCELLED);
  /* the inner scope ended by the outer deadline: cancelled or timed out,
   * as the header leaves it, but ended */
  inner = asyncrt_scope_status(owner.scope);
  CHECK(inner == ASYNCRT_ECANCELLED || inner == ASYNCRT_ETIMEDOUT);
  CHECK_STATUS(asyncrt_scope_status(outer), ASYNCRT_ETIMEDOUT);
  check_deadline_record(outer);
  CHECK_PASSED();
  CHECK_OK(asyncrt_scope_free(owner.scope));
  CHECK_OK(asyncrt_task_release(owner_task));
  CHECK_OK(asyncrt_scope_free(outer));
  CHECK_OK(asyncrt_executor_free(ex));
}

/* Inner 1 s, outer 5 s: at 1 s only the inner scope times out. Its owner
 * sees ETIMEDOUT from the join and completes; the outer scope's other child
 * goes on running until it finishes, and the outer join is READY. */
static void test_inner_deadline_leaves_outer_running(void) {
  asyncrt_executor *ex = sf_local_test_clock();
  asyncrt_scope *outer = NULL;
  sf_node owner, grandkids[2], *ptrs[2], sibling;
  asyncrt_task *owner_task = NULL, *sibling_task = NULL;
  size_t count = 99;
  int i;
  CHECK(ex != NULL);
  outer = sf_top(ex, 0, 5 * SEC, "outer");
  CHECK(outer != NULL);
  nested_owner(&owner, grandkids, ptrs, 1 * SEC);
  sf_node_init(&sibling);
  CHECK_OK(sf_scope_spawn(outer, &owner, 0, &owner_task));
  CHECK_OK(sf_scope_spawn(outer, &sibling, 0, &sibling_task));
  CHECK_OK(asyncrt_run(ex, NULL));
  CHECK_OK(asyncrt_clock_advance(ex, 1 * SEC - 1));
  CHECK_OK(asyncrt_run(ex, NULL));
  CHECK_INT(tf_get(&grandkids[0].drops) + tf_get(&grandkids[1].drops), 0);
  CHECK_INT(tf_get(&owner.join_result), -1);

  CHECK_OK(asyncrt_clock_advance(ex, 1));
  CHECK_OK(asyncrt_run(ex, NULL));
  for (i = 0; i < 2; i++) {
    CHECK_INT(tf_get(&grandkids[i].drops), 1);
  }
  CHECK_INT(tf_get(&grandkids[1].cleanup_calls), 1);
  CHECK_INT(tf_get(&owner.join_result), ASYNCRT_POLL_ERROR);
  CHECK_STATUS(tf_get(&owner.join_failure), ASYNCRT_ETIMEDOUT);
  CHECK_INT(tf_get(&owner.drops), 1);
  CHECK_OK(asyncrt_task_status(owner_task));
  CHECK_STATUS(asyncrt_scope_status(owner.scope), ASYNCRT_ETIMEDOUT);
  check_deadline_record(owner.scope);
  CHECK_PASSED();
  /* the outer scope and its other child are untouched */
  CHECK_INT(tf_get(&sibling.drops), 0);
  CHECK_INT(tf_get(&sibling.polls), 1);
  CHECK_STATUS(asyncrt_task_status(sibling_task), ASYNCRT_EAGAIN);
  CHECK_STATUS(asyncrt_scope_status(outer), ASYNCRT_EAGAIN);

  sf_release(&sibling);
  CHECK_OK(sf_join(ex, outer, 0));
  CHECK_INT(tf_get(&sibling.polls), 2);
  CHECK_INT(tf_get(&sibling.drops), 1);
  CHECK_OK(asyncrt_task_status(sibling_task));
  CHECK_OK(asyncrt_scope_error_count(outer, &count));
  CHECK_INT(count, 0);
  CHECK_OK(asyncrt_scope_free(owner.scope));
  CHECK_OK(asyncrt_task_release(owner_task));
  CHECK_OK(asyncrt_task_release(sibling_task));
  CHECK_OK(asyncrt_scope_free(outer));
  CHECK_OK(asyncrt_executor_free(ex));
}

/* "At the deadline the scope is cancelled": a deadline that has passed when
 * a top scope opens cancels it at once, so a spawn gets ECANCELLED and the
 * join fails with ETIMEDOUT. */
static void test_deadline_passed_at_open_top(void) {
  asyncrt_executor *ex = sf_local_test_clock();
  asyncrt_scope_config cfg;
  asyncrt_scope *s = NULL;
  sf_node late;
  CHECK(ex != NULL);
  CHECK_OK(asyncrt_clock_advance(ex, 10 * SEC));
  asyncrt_scope_config_init(&cfg);
  cfg.deadline_ns = 5 * SEC;
  CHECK_OK(asyncrt_scope_open_top(ex, &cfg, &s));
  sf_node_init(&late);
  CHECK_STATUS(sf_scope_spawn(s, &late, 0, NULL), ASYNCRT_ECANCELLED);
  CHECK_INT(tf_get(&late.drops), 1);
  CHECK_INT(tf_get(&late.polls), 0);
  CHECK_STATUS(sf_join(ex, s, 0), ASYNCRT_ETIMEDOUT);
  CHECK_STATUS(asyncrt_scope_status(s), ASYNCRT_ETIMEDOUT);
  CHECK_OK(asyncrt_scope_free(s));
  CHECK_OK(asyncrt_executor_free(ex));
}

/* The same for a scope a task opens with a deadline equal to the clock. */
static void test_deadline_passed_at_open_in_a_task(void) {
  asyncrt_executor *ex = sf_local_test_clock();
  sf_node owner, kid, *kid_ptr = &kid;
  asyncrt_task *owner_task = NULL;
  CHECK(ex != NULL);
  CHECK_OK(asyncrt_clock_advance(ex, 10 * SEC));
  sf_node_init(&owner);
  sf_node_init(&kid);
  owner.opens_scope = 1;
  owner.cfg.deadline_ns = 10 * SEC; /* the clock reads 10 s: reached */
  owner.children = &kid_ptr;
  owner.nchildren = 1;
  owner.then = SF_JOIN;
  CHECK_OK(sf_spawn(ex, &owner, 0, &owner_task));
  CHECK_OK(asyncrt_run(ex, NULL));
  CHECK_OK(tf_get(&owner.open_rc));
  CHECK_STATUS(tf_get(&owner.spawn_rc), ASYNCRT_ECANCELLED);
  CHECK_INT(tf_get(&owner.spawned), 0);
  CHECK_INT(tf_get(&kid.drops), 1);
  CHECK_INT(tf_get(&kid.polls), 0);
  CHECK_INT(tf_get(&owner.join_result), ASYNCRT_POLL_ERROR);
  CHECK_STATUS(tf_get(&owner.join_failure), ASYNCRT_ETIMEDOUT);
  CHECK_OK(asyncrt_task_status(owner_task));
  CHECK_OK(asyncrt_task_release(owner_task));
  CHECK_OK(asyncrt_executor_free(ex));
}

/* A deadline that passes while the scope has no child yet still cancels
 * it: a later spawn gets ECANCELLED, the join ETIMEDOUT. */
static void test_deadline_passing_while_empty(void) {
  asyncrt_executor *ex = sf_local_test_clock();
  asyncrt_scope *s = NULL;
  sf_node late;
  CHECK(ex != NULL);
  s = sf_top(ex, 0, 1 * SEC, NULL);
  CHECK(s != NULL);
  CHECK_OK(asyncrt_clock_advance(ex, 1 * SEC));
  CHECK_OK(asyncrt_run(ex, NULL));
  sf_node_init(&late);
  CHECK_STATUS(sf_scope_spawn(s, &late, 0, NULL), ASYNCRT_ECANCELLED);
  CHECK_INT(tf_get(&late.drops), 1);
  CHECK_STATUS(sf_join(ex, s, 0), ASYNCRT_ETIMEDOUT);
  CHECK_OK(asyncrt_scope_free(s));
  CHECK_OK(asyncrt_executor_free(ex));
}

/* A timeout counts from the opening; with both a timeout and an absolute
 * deadline, the earlier wins. */
static void test_timeout_and_deadline_earliest_wins(void) {
  asyncrt_executor *ex = sf_local_test_clock();
  asyncrt_scope_config cfg;
  asyncrt_scope *a = NULL, *b = NULL;
  sf_node ka, kb;
  CHECK(ex != NULL);
  CHECK_OK(asyncrt_clock_advance(ex, 3 * SEC));
  asyncrt_scope_config_init(&cfg);
  cfg.timeout_ns = 1 * SEC; /* 4 s */
  cfg.deadline_ns = 10 * SEC;
  CHECK_OK(asyncrt_scope_open_top(ex, &cfg, &a));
  asyncrt_scope_config_init(&cfg);
  cfg.timeout_ns = 5 * SEC;
  cfg.deadline_ns = 3500 * MS; /* 3.5 s */
  CHECK_OK(asyncrt_scope_open_top(ex, &cfg, &b));
  sf_node_init(&ka);
  sf_node_init(&kb);
  CHECK_OK(sf_scope_spawn(a, &ka, 0, NULL));
  CHECK_OK(sf_scope_spawn(b, &kb, 0, NULL));
  CHECK_OK(asyncrt_run(ex, NULL));

  CHECK_OK(asyncrt_clock_advance(ex, 500 * MS - 1));
  CHECK_OK(asyncrt_run(ex, NULL));
  CHECK_INT(tf_get(&kb.drops), 0);
  CHECK_OK(asyncrt_clock_advance(ex, 1)); /* 3.5 s */
  CHECK_OK(asyncrt_run(ex, NULL));
  CHECK_INT(tf_get(&kb.drops), 1);
  CHECK_INT(tf_get(&ka.drops), 0);
  CHECK_STATUS(asyncrt_scope_status(b), ASYNCRT_ETIMEDOUT);
  CHECK_OK(asyncrt_clock_advance(ex, 500 * MS - 1));
  CHECK_OK(asyncrt_run(ex, NULL));
  CHECK_INT(tf_get(&ka.drops), 0);
  CHECK_OK(asyncrt_clock_advance(ex, 1)); /* 4 s */
  CHECK_STATUS(sf_join(ex, a, 0), ASYNCRT_ETIMEDOUT);
  CHECK_INT(tf_get(&ka.drops), 1);
  CHECK_STATUS(sf_join(ex, b, 0), ASYNCRT_ETIMEDOUT);
  CHECK_OK(asyncrt_scope_free(a));
  CHECK_OK(asyncrt_scope_free(b));
  CHECK_OK(asyncrt_executor_free(ex));
}

/* A cancelled scope gives its children's cleanups cleanup_timeout_ns, or
 * ASYNCRT_CLEANUP_DEFAULT_NS when it is 0. */
static void test_scope_cleanup_timeout(void) {
  asyncrt_executor *ex = sf_local_test_clock();
  asyncrt_scope_config cfg;
  asyncrt_scope *given = NULL, *dflt = NULL;
  sf_node kg, kd;
  CHECK(ex != NULL);
  asyncrt_scope_config_init(&cfg);
  cfg.cleanup_timeout_ns = 2 * SEC;
  CHECK_OK(asyncrt_scope_open_top(ex, &cfg, &given));
  CHECK_OK(asyncrt_scope_open_top(ex, NULL, &dflt));
  sf_node_init(&kg);
  sf_node_init(&kd);
  kg.cleanup = SF_CLEANUP_FOREVER;
  kd.cleanup = SF_CLEANUP_FOREVER;
  CHECK_OK(sf_scope_spawn(given, &kg, 0, NULL));
  CHECK_OK(sf_scope_spawn(dflt, &kd, 0, NULL));
  CHECK_OK(asyncrt_run(ex, NULL));
  CHECK_OK(asyncrt_scope_cancel(given));
  CHECK_OK(asyncrt_scope_cancel(dflt));
  CHECK_OK(asyncrt_run(ex, NULL));
  CHECK_INT(tf_get(&kg.cleanup_calls), 1);
  CHECK_INT(tf_get(&kd.cleanup_calls), 1);

  CHECK_OK(asyncrt_clock_advance(ex, ASYNCRT_CLEANUP_DEFAULT_NS - 1));
  CHECK_OK(asyncrt_run(ex, NULL));
  CHECK_INT(tf_get(&kd.drops), 0);
  CHECK_OK(asyncrt_clock_advance(ex, 1));
  CHECK_OK(asyncrt_run(ex, NULL));
  CHECK_INT(tf_get(&kd.drops), 1);
  CHECK_INT(tf_get(&kg.drops), 0);
  CHECK_OK(asyncrt_clock_advance(ex, 2 * SEC - ASYNCRT_CLEANUP_DEFAULT_NS - 1));
  CHECK_OK(asyncrt_run(ex, NULL));
  CHECK_INT(tf_get(&kg.drops), 0);
  CHECK_OK(asyncrt_clock_advance(ex, 1));
  CHECK_OK(asyncrt_run(ex, NULL));
  CHECK_INT(tf_get(&kg.drops), 1);
  CHECK_STATUS(sf_join(ex, given, 0), ASYNCRT_ECANCELLED);
  CHECK_STATUS(sf_join(ex, dflt, 0), ASYNCRT_ECANCELLED);
  CHECK_OK(asyncrt_scope_free(given));
  CHECK_OK(asyncrt_scope_free(dflt));
  CHECK_OK(asyncrt_executor_free(ex));
}

int main(void) {
  CHECK_BEGIN();
  RUN(test_scope_timeout);
  RUN(test_outer_deadline_reaches_inner_scope);
  RUN(test_inner_deadline_leaves_outer_running);
  RUN(test_deadline_passed_at_open_top);
  RUN(test_deadline_passed_at_open_in_a_task);
  RUN(test_deadline_passing_while_empty);
  RUN(test_timeout_and_deadline_earliest_wins);
  RUN(test_scope_cleanup_timeout);
  return CHECK_END("test_deadlines");
}
