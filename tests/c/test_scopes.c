/* Scopes: joins, closing and cancelling, the guarantee that a task never
 * completes before its children, early frees, the two error policies and
 * their records, shields, names, and misuse.
 *
 * Everything here runs on local executors driven by this thread, so each
 * outcome -- which child ran how often, what was dropped when -- follows
 * from the header alone and is checked exactly. */
#include "check.h" /* first: it sets _POSIX_C_SOURCE */
#include "scopefut.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* --- user values with a counted value_free ------------------------------------ */

#define VALUES 8
static int values[VALUES];
static int value_frees[VALUES];

static void value_free(void *v) {
  int *p = v;
  if (p >= values && p < values + VALUES) {
    tf_add(&value_frees[p - values], 1);
  }
}

static void values_reset(void) {
  int i;
  for (i = 0; i < VALUES; i++) {
    values[i] = 100 + i;
    tf_set(&value_frees[i], 0);
  }
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

static asyncrt_executor *local(void) {
  return sf_executor(ASYNCRT_EXECUTOR_LOCAL, 0, ASYNCRT_CLOCK_MONOTONIC);
}

/* --- joins --------------------------------------------------------------------- */

#define JOIN_CHILDREN 5

/* Child 0's hook: at its first poll it spawns a sibling into a scope while
 * the scope's join waits. */
typedef struct sibling_spawn {
  asyncrt_scope *scope;
  sf_node *sibling;
  int rc;
} sibling_spawn;

static int spawn_sibling_hook(sf_node *n, asyncrt_context *cx) {
  sibling_spawn *sp = n->hook_data;
  (void)cx;
  if (tf_get(&n->polls) == 1) {
    sp->rc = sf_scope_spawn(sp->scope, sp->sibling, 0, NULL);
  }
  return SF_CONTINUE;
}

/* A top scope with N children that finish after different numbers of polls
 * (and one that spawns a sibling while the join waits): the join is READY once
 * all are gone; a second join is EBUSY; a spawn after the join is ESCOPE. */
static void test_join_waits_for_every_child(void) {
  asyncrt_executor *ex = local();
  asyncrt_scope *s = NULL;
  sf_node kids[JOIN_CHILDREN], sibling, late;
  sibling_spawn sp;
  asyncrt_task *tasks[JOIN_CHILDREN];
  asyncrt_future join;
  uint64_t sid;
  size_t count = 99;
  int i;
  CHECK(ex != NULL);
  s = sf_top(ex, 0, 0, NULL);
  CHECK(s != NULL);
  sf_node_init(&sibling);
  sibling.steps = 3;
  sibling.then = SF_READY;
  sp.scope = s;
  sp.sibling = &sibling;
  sp.rc = -1;
  for (i = 0; i < JOIN_CHILDREN; i++) {
    sf_node_init(&kids[i]);
    kids[i].steps = i;
    kids[i].then = SF_READY;
  }
  kids[0].hook = spawn_sibling_hook;
  kids[0].hook_data = &sp;
  for (i = 0; i < JOIN_CHILDREN; i++) {
    CHECK_OK(sf_scope_spawn(s, &kids[i], 0, &tasks[i]));
  }
  CHECK_STATUS(asyncrt_scope_status(s), ASYNCRT_EAGAIN);
  CHECK_OK(sf_join(ex, s, 0));
  CHECK_OK(sp.rc);
  CHECK_INT(tf_get(&sibling.polls), 4);
  CHECK_INT(tf_get(&sibling.drops), 1);
  for (i = 0; i < JOIN_CHILDREN; i++) {
    CHECK_INT(tf_get(&kids[i].polls), i + 1);
    CHECK_INT(tf_get(&kids[i].drops), 1);
    CHECK_INT(tf_get(&kids[i].bad_polls), 0);
    CHECK_OK(asyncrt_task_status(tasks[i]));
  }
  CHECK_OK(asyncrt_scope_status(s));
  CHECK_OK(asyncrt_scope_error_count(s, &count));
  CHECK_INT(count, 0);

  /* one join per scope */
  CHECK_STATUS(asyncrt_scope_join(s, &join), ASYNCRT_EBUSY);
  /* the join closed the scope: a late spawn is refused and its future dropped at once */
  sf_node_init(&late);
  CHECK_STATUS(sf_scope_spawn(s, &late, 0, NULL), ASYNCRT_ESCOPE);
  CHECK_STATUS(asyncrt_last_status(), ASYNCRT_ESCOPE);
  CHECK_INT(tf_get(&late.drops), 1);
  CHECK_INT(tf_get(&late.polls), 0);

  /* scope ids are unique together with task ids */
  sid = sf_scope_id(s);
  CHECK(sid != 0);
  for (i = 0; i < JOIN_CHILDREN; i++) {
    CHECK(sf_task_id(tasks[i]) != 0);
    CHECK(sf_task_id(tasks[i]) != sid);
    CHECK_OK(asyncrt_task_release(tasks[i]));
  }
  CHECK_OK(asyncrt_scope_free(s));
  CHECK_INT(tf_stats(ex).tasks_live, 0);
  CHECK_OK(asyncrt_executor_free(ex));
  CHECK_INT(tf_get(&late.drops), 1);
  CHECK_INT(tf_get(&sibling.drops), 1);
}

/* A task opens a scope, spawns children and awaits the join inside its poll:
 * it completes after them, and the join it awaited was READY. */
static void test_task_awaits_its_scope(void) {
  asyncrt_executor *ex = local();
  sf_node parent, kids[3], *kid_ptrs[3];
  asyncrt_task *task = NULL;
  asyncrt_future join;
  int i;
  CHECK(ex != NULL);
  sf_node_init(&parent);
  parent.opens_scope = 1;
  parent.then = SF_JOIN;
  parent.children = kid_ptrs;
  parent.nchildren = 3;
  for (i = 0; i < 3; i++) {
    sf_node_init(&kids[i]);
    kids[i].steps = i + 1;
    kids[i].then = SF_READY;
    kid_ptrs[i] = &kids[i];
  }
  CHECK_OK(sf_spawn(ex, &parent, 0, &task));
  CHECK_OK(asyncrt_task_join(task, &join));
  CHECK_OK(asyncrt_block_on(ex, &join, NULL, TF_TIMEOUT_NS));
  CHECK_OK(tf_get(&parent.open_rc));
  CHECK_INT(tf_get(&parent.spawned), 3);
  CHECK_OK(tf_get(&parent.join_rc));
  CHECK_INT(tf_get(&parent.join_result), ASYNCRT_POLL_READY);
  CHECK_INT(tf_get(&parent.drops), 1);
  for (i = 0; i < 3; i++) {
    CHECK_INT(tf_get(&kids[i].polls), i + 2);
    CHECK_INT(tf_get(&kids[i].drops), 1);
    CHECK(tf_get(&kids[i].drop_seq) < tf_get(&parent.drop_seq));
  }
  CHECK_OK(asyncrt_task_status(task));
  CHECK_OK(asyncrt_task_release(task));
  CHECK_INT(tf_stats(ex).tasks_live, 0);
  CHECK_OK(asyncrt_executor_free(ex));
}

/* A cancelled scope refuses spawns with ECANCELLED (dropping the future at
 * once); its pending child is cancelled and its join reports ECANCELLED. */
static void test_spawn_into_cancelled_scope(void) {
  asyncrt_executor *ex = local();
  asyncrt_scope *s = NULL;
  sf_node kid, late;
  asyncrt_task *task = NULL;
  CHECK(ex != NULL);
  s = sf_top(ex, 0, 0, NULL);
  CHECK(s != NULL);
  sf_node_init(&kid);
  CHECK_OK(sf_scope_spawn(s, &kid, 0, &task));
  CHECK_OK(asyncrt_run(ex, NULL));
  CHECK_INT(tf_get(&kid.polls), 1);
  CHECK_OK(asyncrt_scope_cancel(s));
  CHECK_OK(asyncrt_scope_cancel(s)); /* a second cancel does nothing */
  sf_node_init(&late);
  CHECK_STATUS(sf_scope_spawn(s, &late, 0, NULL), ASYNCRT_ECANCELLED);
  CHECK_INT(tf_get(&late.drops), 1);
  CHECK_INT(tf_get(&late.polls), 0);
  CHECK_STATUS(sf_join(ex, s, 0), ASYNCRT_ECANCELLED);
  CHECK_INT(tf_get(&kid.polls), 1);
  CHECK_INT(tf_get(&kid.drops), 1);
  CHECK_STATUS(asyncrt_task_status(task), ASYNCRT_ECANCELLED);
  CHECK_STATUS(asyncrt_scope_status(s), ASYNCRT_ECANCELLED);
  CHECK_OK(asyncrt_task_release(task));
  CHECK_OK(asyncrt_scope_free(s));
  CHECK_OK(asyncrt_executor_free(ex));
  CHECK_INT(tf_get(&late.drops), 1);
  CHECK_INT(tf_get(&kid.drops), 1);
}

/* --- a task never completes before its children -------------------------------- */

/* Cancels the node's own scope at its second poll, then lets the script go on. */
static int cancel_own_scope_hook(sf_node *n, asyncrt_context *cx) {
  (void)cx;
  if (tf_get(&n->polls) == 2 && n->scope != NULL) {
    asyncrt_scope_cancel(n->scope);
  }
  return SF_CONTINUE;
}

enum { RETURNS_READY, RETURNS_ERROR, CANCELS_THEN_READY };

/* A parent whose future finishes (how: `mode`) at its second poll, once the
 * three children it spawned into its scope at the first have run and
 * parked. Checks the children are dropped once, before the parent, and
 * returns the parent's status through *status. */
static void parent_finishing_early(int mode, int *status, sf_node *parent, uint64_t *parent_id) {
  asyncrt_executor *ex = local();
  sf_node kids[3], *kid_ptrs[3];
  asyncrt_task *kid_tasks[3] = {NULL, NULL, NULL};
  asyncrt_task *task = NULL;
  asyncrt_future join;
  int i;
  CHECK(ex != NULL);
  sf_node_init(parent);
  parent->opens_scope = 1;
  parent->children = kid_ptrs;
  parent->nchildren = 3;
  parent->child_tasks = kid_tasks;
  parent->then = mode == RETURNS_ERROR ? SF_FAIL : SF_READY;
  parent->fail_status = 1009;
  parent->steps = 1; /* the children, queued first, run before its second poll */
  if (mode == CANCELS_THEN_READY) {
    parent->hook = cancel_own_scope_hook;
  }
  for (i = 0; i < 3; i++) {
    sf_node_init(&kids[i]);
    kid_ptrs[i] = &kids[i];
  }
  CHECK_OK(sf_spawn(ex, parent, 0, &task));
  *parent_id = sf_task_id(task);
  CHECK_OK(asyncrt_task_join(task, &join));
  *status = asyncrt_block_on(ex, &join, NULL, TF_TIMEOUT_NS);
  CHECK_INT(tf_get(&parent->spawned), 3);
  CHECK_INT(tf_get(&parent->polls), 2); /* never polled again */
  CHECK_INT(tf_get(&parent->drops), 1);
  CHECK_INT(tf_get(&parent->bad_polls), 0);
  for (i = 0; i < 3; i++) {
    CHECK_INT(tf_get(&kids[i].polls), 1);
    CHECK_INT(tf_get(&kids[i].drops), 1);
    CHECK(tf_get(&kids[i].drop_seq) < tf_get(&parent->drop_seq));
    CHECK_STATUS(asyncrt_task_status(kid_tasks[i]), ASYNCRT_ECANCELLED);
    CHECK_OK(asyncrt_task_release(kid_tasks[i]));
  }
  CHECK_STATUS(asyncrt_task_status(task), *status);
  if (mode == RETURNS_READY) {
    asyncrt_error_info info;
    char want[160];
    memset(&info, 0, sizeof info);
    info.size = sizeof info;
    CHECK_OK(asyncrt_task_error_get(task, &info));
    CHECK_STATUS(info.status, ASYNCRT_ESCOPE);
    CHECK_INT(info.task_id, *parent_id);
    snprintf(want, sizeof want, "task %llu returned while scope %llu had 3 live children",
             (unsigned long long)*parent_id, (unsigned long long)parent->scope_id);
    CHECK_STR(info.message, want);
  }
  CHECK_OK(asyncrt_task_release(task));
  CHECK_INT(tf_stats(ex).tasks_live, 0);
  CHECK_OK(asyncrt_executor_free(ex));
  CHECK_INT(tf_get(&parent->drops), 1);
}

static void test_parent_returning_with_live_children_is_escope(void) {
  sf_node parent;
  uint64_t id = 0;
  int status = -1;
  parent_finishing_early(RETURNS_READY, &status, &parent, &id);
  CHECK_PASSED();
  CHECK_STATUS(status, ASYNCRT_ESCOPE);
}

/* A parent that fails with live children keeps its own failure. */
static void test_parent_failing_with_live_children_keeps_its_status(void) {
  sf_node parent;
  uint64_t id = 0;
  int status = -1;
  parent_finishing_early(RETURNS_ERROR, &status, &parent, &id);
  CHECK_PASSED();
  CHECK_STATUS(status, 1009);
}

/* A parent that cancelled its scope itself may return at once: not ESCOPE. */
static void test_parent_returning_after_cancelling_its_scope(void) {
  sf_node parent;
  uint64_t id = 0;
  int status = -1;
  parent_finishing_early(CANCELS_THEN_READY, &status, &parent, &id);
  CHECK_PASSED();
  CHECK_OK(status);
}

/* A scope opened for a task from outside its poll (asyncrt_scope_open_for)
 * binds the task the same way; once the owner finished, the scope refuses
 * spawns (ESCOPE) and open_for refuses the task (ESCOPE, then EHANDLE once
 * released). */
static void test_scope_open_for(void) {
  asyncrt_executor *ex = local();
  sf_node owner, kid, owner2, late;
  asyncrt_task *task = NULL, *task2 = NULL;
  asyncrt_scope *s = NULL, *s2 = NULL, *dead = NULL;
  CHECK(ex != NULL);
  sf_node_init(&owner);
  sf_node_init(&kid);
  CHECK_OK(sf_spawn(ex, &owner, 0, &task));
  CHECK_OK(asyncrt_run(ex, NULL));
  CHECK_OK(asyncrt_scope_open_for(task, NULL, &s));
  CHECK_OK(sf_scope_spawn(s, &kid, 0, NULL));
  CHECK_OK(asyncrt_run(ex, NULL));
  CHECK_INT(tf_get(&kid.polls), 1);
  sf_release(&owner); /* the owner returns READY while kid lives */
  CHECK_OK(asyncrt_run(ex, NULL));
  CHECK_INT(tf_get(&kid.drops), 1);
  CHECK_INT(tf_get(&owner.drops), 1);
  CHECK(tf_get(&kid.drop_seq) < tf_get(&owner.drop_seq));
  CHECK_STATUS(asyncrt_task_status(task), ASYNCRT_ESCOPE);
  CHECK_STATUS(asyncrt_scope_open_for(task, NULL, &dead), ASYNCRT_ESCOPE);
  CHECK_OK(asyncrt_scope_free(s));

  /* an owner that finished with an empty scope completes normally; the
   * scope it leaves behind is closed */
  sf_node_init(&owner2);
  CHECK_OK(sf_spawn(ex, &owner2, 0, &task2));
  CHECK_OK(asyncrt_run(ex, NULL));
  CHECK_OK(asyncrt_scope_open_for(task2, NULL, &s2));
  sf_release(&owner2);
  CHECK_OK(asyncrt_run(ex, NULL));
  CHECK_OK(asyncrt_task_status(task2));
  sf_node_init(&late);
  CHECK_STATUS(sf_scope_spawn(s2, &late, 0, NULL), ASYNCRT_ESCOPE);
  CHECK_INT(tf_get(&late.drops), 1);
  CHECK_OK(asyncrt_scope_free(s2));
  CHECK_OK(asyncrt_task_release(task2));
  CHECK_STATUS(asyncrt_scope_open_for(task2, NULL, &dead), ASYNCRT_EHANDLE);
  CHECK(dead == NULL);
  CHECK_OK(asyncrt_task_release(task));
  CHECK_INT(tf_stats(ex).tasks_live, 0);
  CHECK_OK(asyncrt_executor_free(ex));
}

/* Freeing a scope handle before its join never blocks: the scope is
 * cancelled, its children dropped once when the executor runs. */
static void test_free_early_cancels(void) {
  asyncrt_executor *ex = local();
  asyncrt_scope *s = NULL;
  sf_node kids[3];
  asyncrt_task *tasks[3];
  int i;
  CHECK(ex != NULL);
  s = sf_top(ex, 0, 0, NULL);
  CHECK(s != NULL);
  for (i = 0; i < 3; i++) {
    sf_node_init(&kids[i]);
    CHECK_OK(sf_scope_spawn(s, &kids[i], 0, &tasks[i]));
  }
  CHECK_OK(asyncrt_run(ex, NULL));
  for (i = 0; i < 3; i++) {
    CHECK_INT(tf_get(&kids[i].polls), 1);
  }
  CHECK_OK(asyncrt_scope_free(s)); /* this thread drives ex: blocking here would hang */
  CHECK_OK(asyncrt_run(ex, NULL));
  for (i = 0; i < 3; i++) {
    CHECK_INT(tf_get(&kids[i].drops), 1);
    CHECK_INT(tf_get(&kids[i].polls), 1);
    CHECK_STATUS(asyncrt_task_status(tasks[i]), ASYNCRT_ECANCELLED);
    CHECK_OK(asyncrt_task_release(tasks[i]));
  }
  CHECK_INT(tf_stats(ex).tasks_live, 0);
  CHECK_OK(asyncrt_executor_free(ex));
  for (i = 0; i < 3; i++) {
    CHECK_INT(tf_get(&kids[i].drops), 1);
  }
}

/* The same with a cleanup: the scope's cancel is asynchronous, so it runs
 * once, before the drop. */
static void test_free_early_runs_cleanups(void) {
  asyncrt_executor *ex = local();
  asyncrt_scope *s = NULL;
  sf_node kid;
  CHECK(ex != NULL);
  s = sf_top(ex, 0, 0, NULL);
  CHECK(s != NULL);
  sf_node_init(&kid);
  kid.cleanup = SF_CLEANUP_READY;
  CHECK_OK(sf_scope_spawn(s, &kid, 0, NULL));
  CHECK_OK(asyncrt_run(ex, NULL));
  CHECK_OK(asyncrt_scope_free(s));
  CHECK_OK(asyncrt_run(ex, NULL));
  CHECK_INT(tf_get(&kid.cleanup_calls), 1);
  CHECK_INT(tf_get(&kid.cleanups_done), 1);
  CHECK_INT(tf_get(&kid.drops), 1);
  CHECK(tf_get(&kid.cleanup_end_seq) < tf_get(&kid.drop_seq));
  CHECK_INT(tf_get(&kid.bad_polls), 0);
  CHECK_INT(tf_get(&kid.bad_cleanups), 0);
  CHECK_OK(asyncrt_executor_free(ex));
}

/* --- caller storage ---------------------------------------------------------------- */

static int storage_releases;

static void storage_release(void *memory, void *user_data) {
  (void)user_data;
  tf_add(&storage_releases, 1);
  free(memory);
}

/* A child whose header lives in caller storage: the release callback runs
 * once, after the child completed and its handle was released; a refused
 * spawn_in gives the storage back without calling it. */
static void test_scope_spawn_in_caller_storage(void) {
  asyncrt_executor *ex = local();
  asyncrt_scope *s = NULL;
  asyncrt_task_storage st;
  asyncrt_task *task = NULL;
  sf_node kid, late;
  void *memory = NULL;
  CHECK(ex != NULL);
  tf_set(&storage_releases, 0);
  s = sf_top(ex, 0, 0, NULL);
  CHECK(s != NULL);
  CHECK_INT(posix_memalign(&memory, ASYNCRT_TASK_STORAGE_ALIGN, asyncrt_task_storage_size(0)), 0);
  memset(&st, 0, sizeof st);
  st.size = sizeof st;
  st.memory = memory;
  st.length = asyncrt_task_storage_size(0);
  st.release = storage_release;
  sf_node_init(&kid);
  kid.steps = 2;
  kid.then = SF_READY;
  {
    asyncrt_future f = sf_future(&kid);
    CHECK_OK(asyncrt_scope_spawn_in(s, &f, 0, &st, &task));
  }
  CHECK_OK(sf_join(ex, s, 0));
  CHECK_INT(tf_get(&kid.polls), 3);
  CHECK_INT(tf_get(&kid.drops), 1);
  CHECK_OK(asyncrt_task_status(task));
  CHECK_OK(asyncrt_task_release(task));
  CHECK_INT(tf_get(&storage_releases), 1);

  /* the scope is closed now: the storage stays the caller's */
  CHECK_INT(posix_memalign(&memory, ASYNCRT_TASK_STORAGE_ALIGN, asyncrt_task_storage_size(0)), 0);
  st.memory = memory;
  sf_node_init(&late);
  {
    asyncrt_future f = sf_future(&late);
    CHECK_STATUS(asyncrt_scope_spawn_in(s, &f, 0, &st, NULL), ASYNCRT_ESCOPE);
  }
  CHECK_INT(tf_get(&late.drops), 1);
  CHECK_INT(tf_get(&storage_releases), 1);
  free(memory);
  CHECK_OK(asyncrt_scope_free(s));
  CHECK_OK(asyncrt_executor_free(ex));
  CHECK_INT(tf_get(&storage_releases), 1);
}

/* --- errors -------------------------------------------------------------------- */

static const char *const fail_messages[3] = {"child 0: disk full", "child 1: no route",
                                             "child 2: bad checksum"};

/* COLLECT_ALL: three children fail (one per round) while two siblings go on
 * to finish; the join fails with the first status and every record is
 * readable; each value is freed once, when the task and the scope are gone. */
static void test_collect_all(void) {
  asyncrt_executor *ex = local();
  asyncrt_scope *s = NULL;
  sf_node failing[3], fine[2];
  asyncrt_task *ftasks[3], *oktasks[2];
  asyncrt_error_info info;
  size_t count = 0;
  int i;
  CHECK(ex != NULL);
  values_reset();
  s = sf_top(ex, ASYNCRT_SCOPE_COLLECT_ALL, 0, NULL);
  CHECK(s != NULL);
  for (i = 0; i < 3; i++) {
    sf_node_init(&failing[i]);
    failing[i].steps = i; /* fails in round i+1 */
    failing[i].then = SF_FAIL;
    failing[i].fail_status = 1001 + i;
    failing[i].fail_message = fail_messages[i];
    failing[i].fail_value = &values[i];
    failing[i].fail_value_free = value_free;
    CHECK_OK(sf_scope_spawn(s, &failing[i], 0, &ftasks[i]));
  }
  for (i = 0; i < 2; i++) {
    sf_node_init(&fine[i]);
    fine[i].steps = 5; /* still running after every failure */
    fine[i].then = SF_READY;
    fine[i].cleanup = SF_CLEANUP_READY;
    CHECK_OK(sf_scope_spawn(s, &fine[i], 0, &oktasks[i]));
  }
  CHECK_STATUS(sf_join(ex, s, 0), 1001);
  CHECK_STATUS(asyncrt_scope_status(s), 1001);
  for (i = 0; i < 2; i++) {
    CHECK_INT(tf_get(&fine[i].polls), 6);
    CHECK_INT(tf_get(&fine[i].cleanup_calls), 0);
    CHECK_OK(asyncrt_task_status(oktasks[i]));
    CHECK_OK(asyncrt_task_release(oktasks[i]));
  }
  CHECK_OK(asyncrt_scope_error_count(s, &count));
  CHECK_INT(count, 3);
  for (i = 0; i < 3; i++) {
    CHECK_INT(tf_get(&failing[i].polls), i + 1);
    CHECK_INT(tf_get(&failing[i].drops), 1);
    CHECK_STATUS(asyncrt_task_status(ftasks[i]), 1001 + i);
    memset(&info, 0, sizeof info);
    info.size = sizeof info;
    CHECK_OK(asyncrt_scope_error_get(s, (size_t)i, &info));
    CHECK_STATUS(info.status, 1001 + i);
    CHECK_INT(info.task_id, sf_task_id(ftasks[i]));
    CHECK_STR(info.message, fail_messages[i]);
    CHECK(info.value == &values[i]);
    CHECK(info.value_free == value_free);
    /* the task's own record says the same */
    memset(&info, 0, sizeof info);
    info.size = sizeof info;
    CHECK_OK(asyncrt_task_error_get(ftasks[i], &info));
    CHECK_STATUS(info.status, 1001 + i);
    CHECK_STR(info.message, fail_messages[i]);
    CHECK(info.value == &values[i]);
  }
  memset(&info, 0, sizeof info);
  info.size = sizeof info;
  CHECK_STATUS(asyncrt_scope_error_get(s, 3, &info), ASYNCRT_EINVAL);
  for (i = 0; i < 3; i++) {
    CHECK_OK(asyncrt_task_release(ftasks[i]));
  }
  for (i = 0; i < 3; i++) {
    CHECK_INT(tf_get(&value_frees[i]), 0); /* the scope still holds every record */
  }
  CHECK_OK(asyncrt_scope_free(s));
  for (i = 0; i < 3; i++) {
    CHECK_INT(tf_get(&value_frees[i]), 1);
  }
  CHECK_OK(asyncrt_executor_free(ex));
  for (i = 0; i < VALUES; i++) {
    CHECK_INT(tf_get(&value_frees[i]), i < 3 ? 1 : 0);
  }
}

/* FIRST_ERROR (the default): the first failure cancels the siblings still
 * pending -- through their cleanup when they have one -- and the join fails
 * with its status. Cancelled siblings are not errors. */
static void test_first_error_cancels_siblings(void) {
  enum { FAILS, CLEAN_A, PLAIN, CLEAN_B, ABSENT, KIDS };
  asyncrt_executor *ex = local();
  asyncrt_scope *s = NULL;
  sf_node kids[KIDS];
  asyncrt_task *tasks[KIDS];
  asyncrt_error_info info;
  size_t count = 0;
  int i;
  CHECK(ex != NULL);
  s = sf_top(ex, ASYNCRT_SCOPE_FIRST_ERROR, 0, NULL);
  CHECK(s != NULL);
  for (i = 0; i < KIDS; i++) {
    sf_node_init(&kids[i]);
  }
  kids[FAILS].steps = 1;
  kids[FAILS].then = SF_FAIL;
  kids[FAILS].fail_status = 1007;
  kids[FAILS].fail_message = "upstream refused";
  kids[CLEAN_A].cleanup = SF_CLEANUP_READY;
  kids[CLEAN_B].cleanup = SF_CLEANUP_READY;
  kids[ABSENT].cleanup = SF_CLEANUP_ABSENT;
  for (i = 0; i < KIDS; i++) {
    CHECK_OK(sf_scope_spawn(s, &kids[i], 0, &tasks[i]));
  }
  CHECK_STATUS(sf_join(ex, s, 0), 1007);
  CHECK_STATUS(asyncrt_task_status(tasks[FAILS]), 1007);
  CHECK_INT(tf_get(&kids[FAILS].polls), 2);
  for (i = 0; i < KIDS; i++) {
    CHECK_INT(tf_get(&kids[i].drops), 1);
    CHECK_INT(tf_get(&kids[i].bad_polls), 0);
    if (i == FAILS) {
      continue;
    }
    CHECK_INT(tf_get(&kids[i].polls), 1);
    CHECK_STATUS(asyncrt_task_status(tasks[i]), ASYNCRT_ECANCELLED);
    CHECK_INT(tf_get(&kids[i].cleanup_calls), i == CLEAN_A || i == CLEAN_B ? 1 : 0);
    if (i == CLEAN_A || i == CLEAN_B) {
      CHECK(tf_get(&kids[i].cleanup_end_seq) < tf_get(&kids[i].drop_seq));
    }
  }
  CHECK_OK(asyncrt_scope_error_count(s, &count));
  CHECK_INT(count, 1);
  memset(&info, 0, sizeof info);
  info.size = sizeof info;
  CHECK_OK(asyncrt_scope_error_get(s, 0, &info));
  CHECK_STATUS(info.status, 1007);
  CHECK_INT(info.task_id, sf_task_id(tasks[FAILS]));
  CHECK_STR(info.message, "upstream refused");
  CHECK(info.value == NULL);
  for (i = 0; i < KIDS; i++) {
    CHECK_OK(asyncrt_task_release(tasks[i]));
  }
  CHECK_OK(asyncrt_scope_free(s));
  CHECK_OK(asyncrt_executor_free(ex));
}

/* Named failures that do not end the task free their value at once; of two
 * in one poll the last wins. */
static int fail_info_hook(sf_node *n, asyncrt_context *cx) {
  asyncrt_error_info info;
  memset(&info, 0, sizeof info);
  info.size = sizeof info;
  info.value_free = value_free;
  if (tf_get(&n->polls) == 1) { /* named, then pending: forgotten */
    info.status = 1011;
    info.message = "forgotten";
    info.value = &values[0];
    asyncrt_context_fail_info(cx, &info);
    asyncrt_waker_wake_by_ref(asyncrt_context_waker(cx));
    return ASYNCRT_POLL_PENDING;
  }
  info.status = 1012; /* overridden by the next call */
  info.message = "overridden";
  info.value = &values[1];
  asyncrt_context_fail_info(cx, &info);
  info.status = 1013;
  info.message = "the last call wins";
  info.value = &values[2];
  asyncrt_context_fail_info(cx, &info);
  return ASYNCRT_POLL_ERROR;
}

static void test_fail_info_values(void) {
  asyncrt_executor *ex = local();
  asyncrt_scope *s = NULL;
  sf_node kid, lone;
  asyncrt_task *task = NULL, *lone_task = NULL;
  asyncrt_error_info info;
  CHECK(ex != NULL);
  values_reset();
  s = sf_top(ex, ASYNCRT_SCOPE_COLLECT_ALL, 0, NULL);
  CHECK(s != NULL);
  sf_node_init(&kid);
  kid.hook = fail_info_hook;
  CHECK_OK(sf_scope_spawn(s, &kid, 0, &task));
  CHECK_STATUS(sf_join(ex, s, 0), 1013);
  CHECK_INT(tf_get(&kid.polls), 2);
  CHECK_INT(tf_get(&value_frees[0]), 1);
  CHECK_INT(tf_get(&value_frees[1]), 1);
  CHECK_INT(tf_get(&value_frees[2]), 0);
  memset(&info, 0, sizeof info);
  info.size = sizeof info;
  CHECK_OK(asyncrt_scope_error_get(s, 0, &info));
  CHECK_STATUS(info.status, 1013);
  CHECK_STR(info.message, "the last call wins");
  CHECK(info.value == &values[2]);
  CHECK_OK(asyncrt_scope_free(s));
  CHECK_INT(tf_get(&value_frees[2]), 0); /* the task's handle still holds it */
  CHECK_OK(asyncrt_task_release(task));
  CHECK_INT(tf_get(&value_frees[2]), 1);

  /* a task in no scope: its handle alone holds the record */
  sf_node_init(&lone);
  lone.then = SF_FAIL;
  lone.fail_status = 1014;
  lone.fail_message = "lonely failure";
  lone.fail_value = &values[3];
  lone.fail_value_free = value_free;
  CHECK_OK(sf_spawn(ex, &lone, 0, &lone_task));
  memset(&info, 0, sizeof info);
  info.size = sizeof info;
  CHECK_STATUS(asyncrt_task_error_get(lone_task, &info), ASYNCRT_EAGAIN);
  CHECK_OK(asyncrt_run(ex, NULL));
  memset(&info, 0, sizeof info);
  info.size = sizeof info;
  CHECK_OK(asyncrt_task_error_get(lone_task, &info));
  CHECK_STATUS(info.status, 1014);
  CHECK_INT(info.task_id, sf_task_id(lone_task));
  CHECK_STR(info.message, "lonely failure");
  CHECK(info.value == &values[3]);
  CHECK_INT(tf_get(&value_frees[3]), 0);
  CHECK_OK(asyncrt_task_release(lone_task));
  CHECK_INT(tf_get(&value_frees[3]), 1);
  CHECK_OK(asyncrt_executor_free(ex));
  CHECK_INT(tf_get(&value_frees[0]) + tf_get(&value_frees[1]) + tf_get(&value_frees[2]) +
                tf_get(&value_frees[3]),
            4);
}

/* A task that succeeded has an error record of status 0. */
static void test_task_error_get_of_a_success(void) {
  asyncrt_executor *ex = local();
  sf_node n;
  asyncrt_task *task = NULL;
  asyncrt_error_info info;
  CHECK(ex != NULL);
  sf_node_init(&n);
  n.then = SF_READY;
  CHECK_OK(sf_spawn(ex, &n, 0, &task));
  CHECK_OK(asyncrt_run(ex, NULL));
  memset(&info, 0xab, sizeof info);
  info.size = sizeof info;
  CHECK_OK(asyncrt_task_error_get(task, &info));
  CHECK_INT(info.status, 0);
  CHECK_OK(asyncrt_task_release(task));
  CHECK_OK(asyncrt_executor_free(ex));
}

/* --- shields ------------------------------------------------------------------- */

/* Poll 1 enters two shield sections; the poll after `release` leaves one,
 * the poll after the second release leaves the other. Records each call's
 * status; parks between polls. */
typedef struct shield_log {
  int enter_rc[2], exit_rc[2];
  int exits;
} shield_log;

static int shield_hook(sf_node *n, asyncrt_context *cx) {
  shield_log *log = n->hook_data;
  if (tf_get(&n->polls) == 1) {
    log->enter_rc[0] = asyncrt_shield_enter(cx);
    log->enter_rc[1] = asyncrt_shield_enter(cx);
  }
  if (tf_get(&n->release) > log->exits && log->exits < 2) {
    log->exit_rc[log->exits] = asyncrt_shield_exit(cx);
    log->exits++;
  }
  if (!tf_get(&n->waker_flag)) {
    asyncrt_waker_clone(asyncrt_context_waker(cx), &n->waker);
    tf_set(&n->waker_flag, 1);
  }
  return ASYNCRT_POLL_PENDING;
}

/* A task cancelled inside a shield is polled as usual (only when woken)
 * until it leaves the outermost section; then the cancel takes effect.
 *
 * The header says such a cancel "only records itself": the cancel alone
 * must not poll the task. Any poll it causes is counted in `extra` and
 * checked last, so the rest of the sequence is checked either way. */
static void test_shield_defers_cancel(void) {
  asyncrt_executor *ex = local();
  sf_node n;
  shield_log log;
  asyncrt_task *task = NULL;
  int extra;
  CHECK(ex != NULL);
  memset(&log, 0, sizeof log);
  sf_node_init(&n);
  n.hook = shield_hook;
  n.hook_data = &log;
  CHECK_OK(sf_spawn(ex, &n, 0, &task));
  CHECK_OK(asyncrt_run(ex, NULL));
  CHECK_OK(log.enter_rc[0]);
  CHECK_OK(log.enter_rc[1]);
  CHECK_INT(tf_get(&n.polls), 1);

  CHECK_OK(asyncrt_task_cancel(task));
  CHECK_OK(asyncrt_run(ex, NULL));
  CHECK_INT(tf_get(&n.drops), 0); /* the cancel only recorded itself */
  extra = tf_get(&n.polls) - 1;
  CHECK_STATUS(asyncrt_task_status(task), ASYNCRT_EAGAIN);

  sf_wake(&n); /* still shielded: polled as usual */
  CHECK_OK(asyncrt_run(ex, NULL));
  CHECK_INT(tf_get(&n.polls), 2 + extra);
  CHECK_INT(tf_get(&n.drops), 0);

  tf_set(&n.release, 1); /* leave the inner section: still shielded */
  sf_wake(&n);
  CHECK_OK(asyncrt_run(ex, NULL));
  CHECK_INT(tf_get(&n.polls), 3 + extra);
  CHECK_INT(log.exits, 1);
  CHECK_OK(log.exit_rc[0]);
  CHECK_INT(tf_get(&n.drops), 0);
  CHECK_STATUS(asyncrt_task_status(task), ASYNCRT_EAGAIN);

  tf_set(&n.release, 2); /* leave the outer section: the cancel takes effect */
  sf_wake(&n);
  CHECK_OK(asyncrt_run(ex, NULL));
  CHECK_INT(tf_get(&n.polls), 4 + extra);
  CHECK_INT(log.exits, 2);
  CHECK_OK(log.exit_rc[1]);
  CHECK_INT(tf_get(&n.drops), 1);
  CHECK_INT(tf_get(&n.bad_polls), 0);
  CHECK_STATUS(asyncrt_task_status(task), ASYNCRT_ECANCELLED);
  CHECK_OK(asyncrt_task_release(task));
  CHECK_OK(asyncrt_executor_free(ex));
  CHECK_INT(tf_get(&n.drops), 1);
  CHECK_INT(extra, 0); /* polls caused by the cancel itself */
}

/* A SHIELD scope ignores the cancel of its owner: its child runs on, and the
 * owner (cancelled, never polled again) waits for it before completing. */
static void test_shield_scope_ignores_owner_cancel(void) {
  asyncrt_executor *ex = local();
  asyncrt_scope *top = NULL;
  sf_node owner, kid, *kid_ptr = &kid;
  asyncrt_task *owner_task = NULL, *kid_task = NULL;
  CHECK(ex != NULL);
  top = sf_top(ex, 0, 0, NULL);
  CHECK(top != NULL);
  sf_node_init(&owner);
  owner.opens_scope = 1;
  owner.cfg.flags = ASYNCRT_SCOPE_SHIELD;
  owner.children = &kid_ptr;
  owner.nchildren = 1;
  owner.child_tasks = &kid_task;
  sf_node_init(&kid);
  CHECK_OK(sf_scope_spawn(top, &owner, 0, &owner_task));
  CHECK_OK(asyncrt_run(ex, NULL));
  CHECK_OK(tf_get(&owner.open_rc));
  CHECK_INT(tf_get(&kid.polls), 1);

  CHECK_OK(asyncrt_scope_cancel(top));
  CHECK_OK(asyncrt_run(ex, NULL));
  CHECK_INT(tf_get(&kid.drops), 0);
  CHECK_STATUS(asyncrt_task_status(kid_task), ASYNCRT_EAGAIN);
  CHECK_INT(tf_get(&owner.drops), 0);
  CHECK_INT(tf_get(&owner.polls), 1);
  CHECK_STATUS(asyncrt_scope_status(top), ASYNCRT_EAGAIN);

  sf_release(&kid);
  CHECK_STATUS(sf_join(ex, top, 0), ASYNCRT_ECANCELLED);
  CHECK_INT(tf_get(&kid.polls), 2);
  CHECK_INT(tf_get(&kid.drops), 1);
  CHECK_OK(asyncrt_task_status(kid_task));
  CHECK_INT(tf_get(&owner.drops), 1);
  CHECK_INT(tf_get(&owner.polls), 1);
  CHECK(tf_get(&kid.drop_seq) < tf_get(&owner.drop_seq));
  CHECK_STATUS(asyncrt_task_status(owner_task), ASYNCRT_ECANCELLED);
  CHECK_OK(asyncrt_task_release(owner_task));
  CHECK_OK(asyncrt_task_release(kid_task));
  CHECK_OK(asyncrt_scope_free(top));
  CHECK_OK(asyncrt_executor_free(ex));
}

/* --- names ---------------------------------------------------------------------- */

static void test_names_appear_in_the_dump(void) {
  asyncrt_executor *ex = local();
  asyncrt_scope *s = NULL;
  sf_node by_handle, by_context;
  asyncrt_task *t1 = NULL, *t2 = NULL;
  sf_text text;
  char long_name[101], prefix[65];
  CHECK(ex != NULL);
  memset(&text, 0, sizeof text);
  s = sf_top(ex, 0, 0, "scope-named-by-cfg");
  CHECK(s != NULL);
  sf_node_init(&by_handle);
  sf_node_init(&by_context);
  by_context.name = "named-by-context";
  CHECK_OK(sf_scope_spawn(s, &by_handle, 0, &t1));
  CHECK_OK(sf_scope_spawn(s, &by_context, 0, &t2));
  CHECK_OK(asyncrt_task_set_name(t1, "named-by-handle"));
  CHECK_OK(asyncrt_run(ex, NULL));
  CHECK_OK(sf_dump(ex, ASYNCRT_DUMP_TEXT, &text));
  CHECK(text.data != NULL);
  CHECK(strstr(text.data, "named-by-handle") != NULL);
  CHECK(strstr(text.data, "named-by-context") != NULL);
  CHECK(strstr(text.data, "scope-named-by-cfg") != NULL);

  /* at most 63 bytes are kept */
  memset(long_name, 'x', 100);
  long_name[100] = '\0';
  memcpy(long_name, "long-", 5);
  CHECK_OK(asyncrt_task_set_name(t1, long_name));
  CHECK_OK(sf_dump(ex, ASYNCRT_DUMP_TEXT, &text));
  memcpy(prefix, long_name, 63);
  prefix[63] = '\0';
  CHECK(strstr(text.data, prefix) != NULL);
  prefix[63] = 'x';
  prefix[64] = '\0';
  CHECK(strstr(text.data, prefix) == NULL);
  CHECK(strstr(text.data, "named-by-handle") == NULL);

  /* NULL clears */
  CHECK_OK(asyncrt_task_set_name(t1, NULL));
  CHECK_OK(sf_dump(ex, ASYNCRT_DUMP_TEXT, &text));
  CHECK(strstr(text.data, "long-") == NULL);
  CHECK(strstr(text.data, "named-by-context") != NULL);

  CHECK_STATUS(asyncrt_task_set_name(NULL, "x"), ASYNCRT_EINVAL);
  CHECK_OK(asyncrt_scope_cancel(s));
  CHECK_STATUS(sf_join(ex, s, 0), ASYNCRT_ECANCELLED);
  CHECK_OK(asyncrt_task_release(t1));
  CHECK_STATUS(asyncrt_task_set_name(t1, "x"), ASYNCRT_EHANDLE);
  CHECK_OK(asyncrt_task_release(t2));
  CHECK_OK(asyncrt_scope_free(s));
  CHECK_OK(asyncrt_executor_free(ex));
  sf_text_free(&text);
}

/* --- misuse --------------------------------------------------------------------- */

/* What the context calls return outside an executor's task poll. */
typedef struct cx_calls {
  int open_null_out, open, open_bad_flags, open_small_cfg, enter, exit_unmatched, set_name;
  int exit_after_enter;
} cx_calls;

static int record_cx_calls(cx_calls *c, asyncrt_context *cx) {
  asyncrt_scope_config cfg;
  asyncrt_scope *s = NULL;
  c->open_null_out = asyncrt_scope_open(cx, NULL, NULL);
  asyncrt_scope_config_init(&cfg);
  cfg.flags = 1u << 7;
  c->open_bad_flags = asyncrt_scope_open(cx, &cfg, &s);
  asyncrt_scope_config_init(&cfg);
  cfg.size = 4;
  c->open_small_cfg = asyncrt_scope_open(cx, &cfg, &s);
  c->exit_unmatched = asyncrt_shield_exit(cx);
  c->enter = asyncrt_shield_enter(cx);
  c->exit_after_enter = c->enter == ASYNCRT_OK ? asyncrt_shield_exit(cx) : -1;
  c->set_name = asyncrt_context_set_name(cx, "cx-name");
  c->open = asyncrt_scope_open(cx, NULL, &s);
  if (c->open == ASYNCRT_OK) {
    asyncrt_scope_free(s);
  }
  return ASYNCRT_POLL_READY;
}

static int cx_calls_poll(void *self, asyncrt_context *cx, void *out) {
  (void)out;
  return record_cx_calls(self, cx);
}
static const asyncrt_future_vtable cx_calls_vtable = {sizeof(asyncrt_future_vtable), 0,
                                                      cx_calls_poll, NULL, NULL};

static void test_context_calls_outside_and_inside_a_task(void) {
  asyncrt_executor *ex = local();
  asyncrt_scope *s = (asyncrt_scope *)0x1;
  cx_calls outside, inside;
  asyncrt_future f;
  int failure = 0;
  CHECK(ex != NULL);
  memset(&outside, 0x7f, sizeof outside);
  memset(&inside, 0x7f, sizeof inside);

  CHECK_STATUS(asyncrt_scope_open(NULL, NULL, &s), ASYNCRT_EINVAL);
  CHECK_STATUS(asyncrt_shield_enter(NULL), ASYNCRT_EINVAL);
  CHECK_STATUS(asyncrt_shield_exit(NULL), ASYNCRT_EINVAL);
  CHECK_STATUS(asyncrt_context_set_name(NULL, "x"), ASYNCRT_EINVAL);
  asyncrt_context_fail_info(NULL, NULL); /* void: does nothing */

  /* a context that is no asyncrt task's: asyncrt_poll_with_waker */
  f.self = &outside;
  f.vtable = &cx_calls_vtable;
  CHECK_INT(asyncrt_poll_with_waker(&f, &noop_waker, NULL, &failure), ASYNCRT_POLL_READY);
  CHECK_STATUS(outside.open, ASYNCRT_ENOTSUP);
  CHECK_STATUS(outside.enter, ASYNCRT_ENOTSUP);
  CHECK_STATUS(outside.set_name, ASYNCRT_ENOTSUP);

  /* inside a task's poll */
  f.self = &inside;
  CHECK_OK(asyncrt_spawn(ex, &f, 0, NULL));
  CHECK_OK(asyncrt_run(ex, NULL));
  CHECK_STATUS(inside.open_null_out, ASYNCRT_EINVAL);
  CHECK_STATUS(inside.open_bad_flags, ASYNCRT_EINVAL);
  CHECK_STATUS(inside.open_small_cfg, ASYNCRT_EINVAL);
  CHECK_STATUS(inside.exit_unmatched, ASYNCRT_EINVAL);
  CHECK_OK(inside.enter);
  CHECK_OK(inside.exit_after_enter);
  CHECK_OK(inside.set_name);
  CHECK_OK(inside.open);
  CHECK_OK(asyncrt_executor_free(ex));
}

static void test_misuse(void) {
  asyncrt_executor *ex = local(), *freed = NULL;
  asyncrt_scope *s = NULL, *out = NULL;
  asyncrt_scope *made_up = (asyncrt_scope *)0x12345;
  asyncrt_scope_config cfg;
  asyncrt_future join;
  asyncrt_error_info info;
  asyncrt_task *task = NULL;
  sf_node n, parked;
  size_t count = 0;
  uint64_t id = 0;
  CHECK(ex != NULL);
  memset(&info, 0, sizeof info);
  info.size = sizeof info;

  /* config defaults */
  memset(&cfg, 0x5a, sizeof cfg);
  asyncrt_scope_config_init(&cfg);
  CHECK_INT(cfg.size, sizeof cfg);
  CHECK_INT(cfg.flags, ASYNCRT_SCOPE_FIRST_ERROR);
  CHECK_INT(cfg.deadline_ns, 0);
  CHECK_INT(cfg.timeout_ns, 0);
  CHECK_INT(cfg.cleanup_timeout_ns, 0);
  CHECK(cfg.name == NULL);
  asyncrt_scope_config_init_size(NULL, sizeof cfg); /* a no-op */

  /* NULL arguments */
  CHECK_STATUS(asyncrt_scope_open_top(NULL, NULL, &out), ASYNCRT_EINVAL);
  CHECK_STATUS(asyncrt_scope_open_top(ex, NULL, NULL), ASYNCRT_EINVAL);
  CHECK_STATUS(asyncrt_scope_open_for(NULL, NULL, &out), ASYNCRT_EINVAL);
  cfg.flags = 1u << 9;
  CHECK_STATUS(asyncrt_scope_open_top(ex, &cfg, &out), ASYNCRT_EINVAL);
  asyncrt_scope_config_init(&cfg);
  cfg.size = 4;
  CHECK_STATUS(asyncrt_scope_open_top(ex, &cfg, &out), ASYNCRT_EINVAL);
  CHECK(out == NULL);
  CHECK_OK(asyncrt_scope_open_top(ex, NULL, &s));
  sf_node_init(&n);
  CHECK_STATUS(sf_scope_spawn(NULL, &n, 0, NULL), ASYNCRT_EINVAL);
  CHECK_INT(tf_get(&n.drops), 1);
  CHECK_STATUS(asyncrt_scope_spawn(s, NULL, 0, NULL), ASYNCRT_EINVAL);
  sf_node_init(&n);
  CHECK_STATUS(sf_scope_spawn(s, &n, 2u, NULL), ASYNCRT_EINVAL); /* unknown flag */
  CHECK_INT(tf_get(&n.drops), 1);
  sf_node_init(&n);
  CHECK_STATUS(sf_scope_spawn(s, &n, ASYNCRT_SPAWN_WORKER(3), NULL), ASYNCRT_EINVAL);
  CHECK_INT(tf_get(&n.drops), 1);
  CHECK_STATUS(asyncrt_scope_join(NULL, &join), ASYNCRT_EINVAL);
  CHECK_STATUS(asyncrt_scope_join(s, NULL), ASYNCRT_EINVAL);
  CHECK_STATUS(asyncrt_scope_cancel(NULL), ASYNCRT_EINVAL);
  CHECK_STATUS(asyncrt_scope_status(NULL), ASYNCRT_EINVAL);
  CHECK_STATUS(asyncrt_scope_id(NULL, &id), ASYNCRT_EINVAL);
  CHECK_STATUS(asyncrt_scope_id(s, NULL), ASYNCRT_EINVAL);
  CHECK_STATUS(asyncrt_scope_error_count(NULL, &count), ASYNCRT_EINVAL);
  CHECK_STATUS(asyncrt_scope_error_count(s, NULL), ASYNCRT_EINVAL);
  CHECK_STATUS(asyncrt_scope_error_get(NULL, 0, &info), ASYNCRT_EINVAL);
  CHECK_STATUS(asyncrt_scope_error_get(s, 0, NULL), ASYNCRT_EINVAL);
  CHECK_STATUS(asyncrt_scope_error_get(s, 0, &info), ASYNCRT_EINVAL); /* no error yet */
  CHECK_STATUS(asyncrt_task_error_get(NULL, &info), ASYNCRT_EINVAL);
  CHECK_STATUS(asyncrt_task_cancel_ex(NULL, TF_SECOND_NS), ASYNCRT_EINVAL);
  CHECK_STATUS(asyncrt_executor_dump(NULL, ASYNCRT_DUMP_TEXT, sf_text_write, NULL), ASYNCRT_EINVAL);
  CHECK_OK(asyncrt_scope_free(NULL));
  /* the failed calls used nothing up: the join is still to be had */
  CHECK_OK(asyncrt_scope_join(s, &join));
  join.vtable->drop(join.self);
  CHECK_STATUS(asyncrt_scope_join(s, &join), ASYNCRT_EBUSY);

  /* made-up handles, and handles of another type */
  sf_node_init(&parked);
  CHECK_OK(sf_spawn(ex, &parked, 0, &task));
  sf_node_init(&n);
  CHECK_STATUS(sf_scope_spawn(made_up, &n, 0, NULL), ASYNCRT_EHANDLE);
  CHECK_INT(tf_get(&n.drops), 1);
  sf_node_init(&n);
  CHECK_STATUS(sf_scope_spawn((asyncrt_scope *)task, &n, 0, NULL), ASYNCRT_EHANDLE);
  CHECK_INT(tf_get(&n.drops), 1);
  CHECK_STATUS(asyncrt_scope_cancel(made_up), ASYNCRT_EHANDLE);
  CHECK_STATUS(asyncrt_scope_status((asyncrt_scope *)task), ASYNCRT_EHANDLE);
  CHECK_STATUS(asyncrt_scope_free((asyncrt_scope *)ex), ASYNCRT_EHANDLE);
  CHECK_STATUS(asyncrt_scope_open_for((asyncrt_task *)s, NULL, &out), ASYNCRT_EHANDLE);
  CHECK_STATUS(asyncrt_task_cancel_ex((asyncrt_task *)s, TF_SECOND_NS), ASYNCRT_EHANDLE);
  CHECK_STATUS(asyncrt_scope_open_top((asyncrt_executor *)s, NULL, &out), ASYNCRT_EHANDLE);

  /* a freed scope handle */
  CHECK_OK(asyncrt_scope_free(s));
  CHECK_STATUS(asyncrt_scope_free(s), ASYNCRT_EHANDLE);
  sf_node_init(&n);
  CHECK_STATUS(sf_scope_spawn(s, &n, 0, NULL), ASYNCRT_EHANDLE);
  CHECK_INT(tf_get(&n.drops), 1);
  CHECK_STATUS(asyncrt_scope_join(s, &join), ASYNCRT_EHANDLE);
  CHECK_STATUS(asyncrt_scope_cancel(s), ASYNCRT_EHANDLE);
  CHECK_STATUS(asyncrt_scope_status(s), ASYNCRT_EHANDLE);
  CHECK_STATUS(asyncrt_scope_id(s, &id), ASYNCRT_EHANDLE);
  CHECK_STATUS(asyncrt_scope_error_count(s, &count), ASYNCRT_EHANDLE);
  CHECK_STATUS(asyncrt_scope_error_get(s, 0, &info), ASYNCRT_EHANDLE);
  CHECK_STATUS(asyncrt_last_status(), ASYNCRT_EHANDLE);

  /* a freed executor */
  CHECK_OK(asyncrt_executor_new(NULL, &freed));
  CHECK_OK(asyncrt_executor_free(freed));
  CHECK_STATUS(asyncrt_scope_open_top(freed, NULL, &out), ASYNCRT_EHANDLE);
  CHECK_STATUS(asyncrt_executor_dump(freed, ASYNCRT_DUMP_TEXT, sf_text_write, NULL),
               ASYNCRT_EHANDLE);

  CHECK_OK(asyncrt_task_cancel(task));
  CHECK_OK(asyncrt_run(ex, NULL));
  CHECK_INT(tf_get(&parked.drops), 1);
  CHECK_OK(asyncrt_task_release(task));
  CHECK_OK(asyncrt_executor_free(ex));
}

/* Freeing the executor cancels a top scope's children like any task. What
 * the scope's handle says afterwards the header leaves open: its free must
 * only not crash. */
static void test_executor_free_cancels_top_scope(void) {
  asyncrt_executor *ex = local();
  asyncrt_scope *s = NULL;
  sf_node kids[2];
  int i, rc;
  CHECK(ex != NULL);
  s = sf_top(ex, 0, 0, NULL);
  CHECK(s != NULL);
  for (i = 0; i < 2; i++) {
    sf_node_init(&kids[i]);
    CHECK_OK(sf_scope_spawn(s, &kids[i], 0, NULL));
  }
  CHECK_OK(asyncrt_run(ex, NULL));
  CHECK_OK(asyncrt_executor_free(ex));
  for (i = 0; i < 2; i++) {
    CHECK_INT(tf_get(&kids[i].drops), 1);
  }
  rc = asyncrt_scope_free(s);
  CHECK(rc == ASYNCRT_OK || rc == ASYNCRT_EHANDLE);
}

/* block_on reports the message a failing future named (on both kinds of
 * executor), not only its status. */
static void test_block_on_reports_the_failure_message(void) {
  asyncrt_executor *exs[2];
  asyncrt_executor_config cfg;
  int k;
  exs[0] = local();
  asyncrt_executor_config_init(&cfg);
  cfg.kind = ASYNCRT_EXECUTOR_THREADS;
  cfg.workers = 1;
  CHECK_OK(asyncrt_executor_new(&cfg, &exs[1]));
  for (k = 0; k < 2; k++) {
    sf_node n;
    asyncrt_future f;
    sf_node_init(&n);
    n.then = SF_FAIL;
    n.fail_status = 1021;
    n.fail_message = "the disk is on fire";
    f = sf_future(&n);
    CHECK_STATUS(asyncrt_block_on(exs[k], &f, NULL, 5000000000), 1021);
    if (!strstr(asyncrt_last_error(), "the disk is on fire")) {
      fprintf(stderr, "  executor %d: last error \"%s\" lacks the future's message\n", k, asyncrt_last_error());
      CHECK(0);
    }
    CHECK_OK(asyncrt_executor_free(exs[k]));
  }
}

/* A parent whose future returned while its child was still there is
 * completing: the child was cancelled with its scope's cleanup time (1 s,
 * which a test clock never reaches by itself). A synchronous cancel of the
 * parent asks for less -- no cleanup at all -- and the strongest cancel
 * wins: the child is dropped at once and the parent completes. So does a
 * block_on whose timeout passes on such a root (found by the fuzzer: it
 * waited for the test clock forever). */
static void test_sync_cancel_of_a_completing_parent(void) {
  asyncrt_executor *ex = sf_local_test_clock();
  sf_node parent, kid, root, root_kid;
  sf_node *kid_ptr = &kid, *root_kid_ptr = &root_kid;
  asyncrt_task *task = NULL;
  asyncrt_future f;
  CHECK(ex != NULL);
  sf_node_init(&parent);
  sf_node_init(&kid);
  parent.opens_scope = 1;
  parent.children = &kid_ptr;
  parent.nchildren = 1;
  parent.then = SF_READY;
  kid.cleanup = SF_CLEANUP_FOREVER;
  CHECK_OK(sf_spawn(ex, &parent, 0, &task));
  CHECK_OK(asyncrt_run(ex, NULL));
  CHECK_INT(tf_get(&parent.drops), 0); /* completing: waits for the child */
  CHECK_INT(tf_get(&kid.cleanup_calls), 1);
  CHECK_INT(tf_get(&kid.drops), 0);
  CHECK_STATUS(asyncrt_task_status(task), ASYNCRT_EAGAIN);
  CHECK_OK(asyncrt_task_cancel(task));
  CHECK_OK(asyncrt_run(ex, NULL));
  CHECK_INT(tf_get(&kid.drops), 1);
  CHECK_INT(tf_get(&kid.cleanup_calls), 1);
  CHECK_INT(tf_get(&parent.drops), 1);
  CHECK(tf_get(&kid.drop_seq) < tf_get(&parent.drop_seq));
  CHECK_STATUS(asyncrt_task_status(task), ASYNCRT_ESCOPE); /* it had returned with a live child */
  CHECK_OK(asyncrt_task_release(task));

  sf_node_init(&root);
  sf_node_init(&root_kid);
  root.opens_scope = 1;
  root.children = &root_kid_ptr;
  root.nchildren = 1;
  root.then = SF_READY;
  root_kid.cleanup = SF_CLEANUP_FOREVER;
  f = sf_future(&root);
  CHECK_STATUS(asyncrt_block_on(ex, &f, NULL, 1000000), ASYNCRT_ESCOPE);
  CHECK_INT(tf_get(&root_kid.drops), 1);
  CHECK_INT(tf_get(&root.drops), 1);
  CHECK_OK(asyncrt_executor_free(ex));
}

/* A cancel reaches children that were cancelled already, when it asks for
 * less time: the strongest cancel wins. (1) A grandchild in its cleanup
 * (its parent returned with it alive, so it got its scope's 1 s) is dropped
 * at once when the grandparent is cancelled synchronously. (2) A child in a
 * 10 s cleanup (asyncrt_task_cancel_ex) is dropped once its scope's cancel,
 * with a 1 ms cleanup time, has its 1 ms. Found by the fuzzer. */
static void test_stronger_cancel_reaches_cancelled_children(void) {
  asyncrt_executor *ex = sf_local_test_clock();
  sf_node root, mid, leaf, kid;
  sf_node *mid_ptr = &mid, *leaf_ptr = &leaf;
  asyncrt_task *task = NULL, *kid_task = NULL;
  asyncrt_scope_config cfg;
  asyncrt_scope *top = NULL;
  CHECK(ex != NULL);
  sf_node_init(&root);
  sf_node_init(&mid);
  sf_node_init(&leaf);
  root.opens_scope = 1;
  root.children = &mid_ptr;
  root.nchildren = 1;
  mid.opens_scope = 1;
  mid.children = &leaf_ptr;
  mid.nchildren = 1;
  mid.then = SF_READY;
  leaf.cleanup = SF_CLEANUP_FOREVER;
  CHECK_OK(sf_spawn(ex, &root, 0, &task));
  CHECK_OK(asyncrt_run(ex, NULL));
  CHECK_INT(tf_get(&leaf.cleanup_calls), 1);
  CHECK_INT(tf_get(&leaf.drops), 0);
  CHECK_OK(asyncrt_task_cancel(task));
  CHECK_OK(asyncrt_run(ex, NULL));
  CHECK_INT(tf_get(&leaf.drops), 1);
  CHECK_INT(tf_get(&mid.drops), 1);
  CHECK_INT(tf_get(&root.drops), 1);
  CHECK(tf_get(&leaf.drop_seq) < tf_get(&mid.drop_seq));
  CHECK(tf_get(&mid.drop_seq) < tf_get(&root.drop_seq));
  CHECK_STATUS(asyncrt_task_status(task), ASYNCRT_ECANCELLED);
  CHECK_OK(asyncrt_task_release(task));

  asyncrt_scope_config_init(&cfg);
  cfg.cleanup_timeout_ns = 1000000;
  CHECK_OK(asyncrt_scope_open_top(ex, &cfg, &top));
  sf_node_init(&kid);
  kid.cleanup = SF_CLEANUP_FOREVER;
  CHECK_OK(sf_scope_spawn(top, &kid, 0, &kid_task));
  CHECK_OK(asyncrt_run(ex, NULL));
  CHECK_OK(asyncrt_task_cancel_ex(kid_task, 10 * TF_SECOND_NS));
  CHECK_OK(asyncrt_run(ex, NULL));
  CHECK_INT(tf_get(&kid.cleanup_calls), 1);
  CHECK_OK(asyncrt_scope_cancel(top));
  CHECK_OK(asyncrt_run(ex, NULL));
  CHECK_OK(asyncrt_clock_advance(ex, 2000000));
  CHECK_OK(asyncrt_run(ex, NULL));
  CHECK_INT(tf_get(&kid.drops), 1);
  CHECK_STATUS(asyncrt_task_status(kid_task), ASYNCRT_ECANCELLED);
  CHECK_OK(asyncrt_task_release(kid_task));
  CHECK_OK(asyncrt_scope_free(top));
  CHECK_OK(asyncrt_executor_free(ex));
}

/* A scope whose handle was freed early still belongs to its owner while
 * its children live: a synchronous cancel of the owner reaches the child
 * left in its cleanup (1 s on a test clock: never by itself), and the owner
 * completes. Found by the fuzzer (it waited for ever). */
static void test_owner_cancel_reaches_freed_scope(void) {
  asyncrt_executor *ex = sf_local_test_clock();
  sf_node parent, kid;
  sf_node *kid_ptr = &kid;
  asyncrt_task *task = NULL;
  CHECK(ex != NULL);
  sf_node_init(&parent);
  sf_node_init(&kid);
  parent.opens_scope = 1;
  parent.children = &kid_ptr;
  parent.nchildren = 1;
  parent.keep_scope = 1;
  kid.cleanup = SF_CLEANUP_FOREVER;
  CHECK_OK(sf_spawn(ex, &parent, 0, &task));
  CHECK_OK(asyncrt_run(ex, NULL));
  CHECK_OK(asyncrt_scope_free(parent.scope)); /* cancels the kid: into its cleanup */
  CHECK_OK(asyncrt_run(ex, NULL));
  CHECK_INT(tf_get(&kid.cleanup_calls), 1);
  CHECK_INT(tf_get(&kid.drops), 0);
  CHECK_OK(asyncrt_task_cancel(task));
  CHECK_OK(asyncrt_run(ex, NULL));
  CHECK_INT(tf_get(&kid.drops), 1);
  CHECK_INT(tf_get(&parent.drops), 1);
  CHECK(tf_get(&kid.drop_seq) < tf_get(&parent.drop_seq));
  CHECK_STATUS(asyncrt_task_status(task), ASYNCRT_ECANCELLED);
  CHECK_OK(asyncrt_task_release(task));
  CHECK_OK(asyncrt_executor_free(ex));
}

/* A synchronous cancel that comes during the poll in which the task opens
 * its first scope (before the task has the record that keeps cancel
 * deadlines), and a return with a live child: the cancel still asks for no
 * cleanup, so the child left in its cleanup is dropped at once. (Found by
 * the fuzzer as a race on a thread-per-core executor; here the task
 * cancels itself at the start of that poll.) */
static asyncrt_task *self_cancel_task;
static asyncrt_scope *self_cancel_scope;
static sf_node self_cancel_kid;

static int self_cancel_poll(void *self, asyncrt_context *cx, void *out) {
  asyncrt_future f;
  (void)self;
  (void)out;
  asyncrt_task_cancel(self_cancel_task);
  if (asyncrt_scope_open(cx, NULL, &self_cancel_scope) != ASYNCRT_OK) {
    return ASYNCRT_POLL_ERROR;
  }
  f = sf_future(&self_cancel_kid);
  if (asyncrt_scope_spawn(self_cancel_scope, &f, 0, NULL) != ASYNCRT_OK) {
    return ASYNCRT_POLL_ERROR;
  }
  return ASYNCRT_POLL_READY;
}

static int self_cancel_drops;
static void self_cancel_drop(void *self) {
  (void)self;
  tf_add(&self_cancel_drops, 1);
  asyncrt_scope_free(self_cancel_scope);
}

static const asyncrt_future_vtable self_cancel_vt = {sizeof self_cancel_vt, 0, self_cancel_poll, self_cancel_drop,
                                                     NULL};

static void test_sync_cancel_during_the_poll_that_opens_a_scope(void) {
  asyncrt_executor *ex = sf_local_test_clock();
  asyncrt_future f = {NULL, &self_cancel_vt};
  CHECK(ex != NULL);
  sf_node_init(&self_cancel_kid);
  self_cancel_kid.cleanup = SF_CLEANUP_FOREVER;
  CHECK_OK(asyncrt_spawn(ex, &f, 0, &self_cancel_task));
  CHECK_OK(asyncrt_run(ex, NULL));
  CHECK_INT(tf_get(&self_cancel_kid.drops), 1);
  CHECK_INT(tf_get(&self_cancel_drops), 1);
  CHECK(asyncrt_task_status(self_cancel_task) != ASYNCRT_EAGAIN);
  CHECK_OK(asyncrt_task_release(self_cancel_task));
  CHECK_OK(asyncrt_executor_free(ex));
}

/* asyncrt_block_on is bounded by its timeout even when its root owns a
 * shielded scope whose child does not finish: the timeout's cancel is an
 * owner cancel, which the shield keeps from the child, so the root cannot
 * end. block_on returns ETIMEDOUT well before the executor's 5 s shutdown
 * timeout; the root stays a task of the executor, cancelled, and is dropped
 * exactly once -- when its child ends (then, on a local executor, at the
 * next run), or at the executor's free. It once waited for the child
 * forever on a local executor, and for the whole shutdown timeout on a
 * thread-per-core one (the fuzzer found it). */
enum { CHILD_ENDS, FREED };

static void block_on_with_a_shielded_child(unsigned kind, int ending) {
  asyncrt_executor *ex = sf_executor(kind, 2, ASYNCRT_CLOCK_MONOTONIC);
  sf_node *nodes = calloc(2, sizeof *nodes), *root = &nodes[0], *child = &nodes[1];
  sf_node **kids = calloc(1, sizeof *kids);
  uint64_t out = 0;
  int64_t t0, took;
  asyncrt_future f;
  CHECK(ex != NULL && nodes != NULL && kids != NULL);
  sf_node_init(root);
  sf_node_init(child);
  kids[0] = child;
  root->opens_scope = 1;
  root->cfg.flags = ASYNCRT_SCOPE_SHIELD;
  root->children = kids;
  root->nchildren = 1;
  f = sf_future(root);
  t0 = tf_now_ns();
  CHECK_STATUS(asyncrt_block_on(ex, &f, &out, 20 * TF_MS_NS), ASYNCRT_ETIMEDOUT);
  took = tf_now_ns() - t0;
  CHECK(took < 2 * TF_SECOND_NS);
  CHECK(tf_wait_at_least(&child->waker_flag, 1, 5000)); /* the child runs on */
  CHECK_INT(tf_get(&root->drops), 0);
  CHECK_INT(tf_get(&child->drops), 0);
  if (ending == CHILD_ENDS) {
    sf_release(child);
    if (kind == ASYNCRT_EXECUTOR_LOCAL) {
      CHECK_OK(asyncrt_run(ex, NULL));
    }
    CHECK(tf_wait_at_least(&root->drops, 1, 5000));
    CHECK_INT(tf_get(&child->drops), 1);
    CHECK_INT(tf_get(&child->finished), 1);
  }
  CHECK_OK(asyncrt_executor_free(ex));
  CHECK_INT(tf_get(&root->drops), 1);
  CHECK_INT(tf_get(&child->drops), 1);
  CHECK_INT(tf_get(&root->bad_polls), 0);
  CHECK_INT(tf_get(&child->bad_polls), 0);
  CHECK_INT(tf_get(&root->finished), 0); /* cancelled: its future never returned */
  free(nodes);
  free(kids);
}

static void test_block_on_timeout_with_a_shielded_child(void) {
  block_on_with_a_shielded_child(ASYNCRT_EXECUTOR_LOCAL, CHILD_ENDS);
  block_on_with_a_shielded_child(ASYNCRT_EXECUTOR_LOCAL, FREED);
  block_on_with_a_shielded_child(ASYNCRT_EXECUTOR_THREADS, CHILD_ENDS);
  block_on_with_a_shielded_child(ASYNCRT_EXECUTOR_THREADS, FREED);
}

int main(void) {
  CHECK_BEGIN();
  RUN(test_join_waits_for_every_child);
  RUN(test_task_awaits_its_scope);
  RUN(test_spawn_into_cancelled_scope);
  RUN(test_parent_returning_with_live_children_is_escope);
  RUN(test_parent_failing_with_live_children_keeps_its_status);
  RUN(test_parent_returning_after_cancelling_its_scope);
  RUN(test_scope_open_for);
  RUN(test_free_early_cancels);
  RUN(test_free_early_runs_cleanups);
  RUN(test_scope_spawn_in_caller_storage);
  RUN(test_collect_all);
  RUN(test_first_error_cancels_siblings);
  RUN(test_fail_info_values);
  RUN(test_task_error_get_of_a_success);
  RUN(test_shield_defers_cancel);
  RUN(test_shield_scope_ignores_owner_cancel);
  RUN(test_names_appear_in_the_dump);
  RUN(test_context_calls_outside_and_inside_a_task);
  RUN(test_misuse);
  RUN(test_executor_free_cancels_top_scope);
  RUN(test_block_on_reports_the_failure_message);
  RUN(test_sync_cancel_of_a_completing_parent);
  RUN(test_stronger_cancel_reaches_cancelled_children);
  RUN(test_owner_cancel_reaches_freed_scope);
  RUN(test_sync_cancel_during_the_poll_that_opens_a_scope);
  RUN(test_block_on_timeout_with_a_shielded_child);
  return CHECK_END("test_scopes");
}
