/* Cancelling trees: a wide tree on a thread-per-core executor cancelled from
 * a thread that is no worker, a deep chain on a local executor, and a
 * subtree whose child lives on another worker than its parent.
 *
 * What is checked is exact: every future dropped once, children before their
 * parents, cleanups run once where a vtable has one, no task left. Only the
 * waits are bounded by time. Futures that workers touch live on the heap and
 * are leaked when a CHECK fails. */
#include "check.h" /* first: it sets _POSIX_C_SOURCE */
#include "scopefut.h"

#include <stdint.h>
#include <stdlib.h>

#define WORKERS 4
#define MIDS 100
#define LEAVES_PER_MID 1000
#define LEAVES (MIDS * LEAVES_PER_MID)
#define CHAIN_DEPTH 10000
/* Every wait in this file; the whole program stays inside check.h's alarm. */
#define WAIT_MS 20000

/* --- worker threads, as the thread hooks saw them ------------------------------ */

static pthread_t worker_threads[WORKERS];
static int worker_started[WORKERS];

static void on_start(unsigned i, void *user_data) {
  (void)user_data;
  if (i < WORKERS) {
    worker_threads[i] = pthread_self();
    tf_set(&worker_started[i], 1);
  }
}

/* The worker index of thread t, or -1. */
static int worker_of(pthread_t t) {
  int i;
  for (i = 0; i < WORKERS; i++) {
    if (tf_get(&worker_started[i]) && pthread_equal(worker_threads[i], t)) {
      return i;
    }
  }
  return -1;
}

static asyncrt_executor *threads_executor(void) {
  asyncrt_executor_config cfg;
  asyncrt_thread_hooks hooks;
  asyncrt_executor *ex = NULL;
  int rc, i;
  for (i = 0; i < WORKERS; i++) {
    tf_set(&worker_started[i], 0);
  }
  memset(&hooks, 0, sizeof hooks);
  hooks.size = sizeof hooks;
  hooks.on_start = on_start;
  asyncrt_executor_config_init(&cfg);
  cfg.kind = ASYNCRT_EXECUTOR_THREADS;
  cfg.workers = WORKERS;
  cfg.hooks = &hooks;
  rc = asyncrt_executor_new(&cfg, &ex);
  if (rc != ASYNCRT_OK) {
    fprintf(stderr, "  asyncrt_executor_new(THREADS, %d workers): got %s (%s)\n", WORKERS,
            asyncrt_status_str(rc), asyncrt_last_error());
    return NULL;
  }
  return ex;
}

/* Waits until the executor's tasks_live and memory_in_use reach the given
 * values (ANY_MEMORY: memory_in_use is not looked at); returns 1 if they did. */
#define ANY_MEMORY UINT64_MAX
static int wait_stats(asyncrt_executor *ex, uint64_t live, uint64_t memory, int timeout_ms) {
  int64_t deadline = tf_now_ns() + (int64_t)timeout_ms * TF_MS_NS;
  asyncrt_executor_stats s;
  for (;;) {
    s = tf_stats(ex);
    if (s.tasks_live == live && (memory == ANY_MEMORY || s.memory_in_use == memory)) {
      return 1;
    }
    if (tf_now_ns() >= deadline) {
      fprintf(stderr, "  stats: tasks_live %llu (want %llu), memory_in_use %llu (want %llu)\n",
              (unsigned long long)s.tasks_live, (unsigned long long)live,
              (unsigned long long)s.memory_in_use, (unsigned long long)memory);
      return 0;
    }
    tf_sleep_ms(1);
  }
}

/* --- the wide tree ----------------------------------------------------------------- */

/* A leaf: pending forever (it keeps no waker: only a cancel moves it again). */
typedef struct leaf {
  int polls, drops, cleanups, bad; /* bad: polled or cleaned after the drop */
  int drop_seq;
} leaf;

/* A middle node: at its first poll it opens a scope on its worker and
 * spawns its LEAVES_PER_MID local leaves into it; then it waits forever. */
typedef struct mid {
  leaf *leaves;
  asyncrt_scope *scope;
  int open_rc, spawn_rc, spawned;
  int polls, drops, drop_seq;
  int first_worker, drop_worker;
} mid;

static int leaves_started;
static int tree_drops;

static int leaf_poll(void *self, asyncrt_context *cx, void *out) {
  leaf *l = self;
  (void)cx;
  (void)out;
  if (tf_get(&l->drops)) {
    tf_add(&l->bad, 1);
  }
  if (tf_add(&l->polls, 1) == 1) {
    tf_add(&leaves_started, 1);
  }
  return ASYNCRT_POLL_PENDING;
}

static int leaf_cleanup(void *self, asyncrt_context *cx) {
  leaf *l = self;
  (void)cx;
  if (tf_get(&l->drops)) {
    tf_add(&l->bad, 1);
  }
  tf_add(&l->cleanups, 1);
  return ASYNCRT_POLL_READY;
}

static void leaf_drop(void *self) {
  leaf *l = self;
  tf_set(&l->drop_seq, sf_seq());
  tf_add(&l->drops, 1);
  tf_add(&tree_drops, 1);
}

static const asyncrt_future_vtable leaf_vtable = {sizeof(asyncrt_future_vtable), 0, leaf_poll,
                                                  leaf_drop, NULL};
static const asyncrt_future_vtable leaf_cleanup_vtable = {sizeof(asyncrt_future_vtable), 0,
                                                          leaf_poll, leaf_drop, leaf_cleanup};

/* Every third leaf has a cleanup that completes at once. */
static int leaf_has_cleanup(int j) { return j % 3 == 0; }

static int mid_poll(void *self, asyncrt_context *cx, void *out) {
  mid *m = self;
  asyncrt_future f;
  int j, rc;
  (void)out;
  if (tf_add(&m->polls, 1) > 1) {
    return ASYNCRT_POLL_PENDING;
  }
  m->first_worker = worker_of(pthread_self());
  rc = asyncrt_scope_open(cx, NULL, &m->scope);
  tf_set(&m->open_rc, rc);
  if (rc != ASYNCRT_OK) {
    return ASYNCRT_POLL_PENDING;
  }
  for (j = 0; j < LEAVES_PER_MID; j++) {
    f.self = &m->leaves[j];
    f.vtable = leaf_has_cleanup(j) ? &leaf_cleanup_vtable : &leaf_vtable;
    rc = asyncrt_scope_spawn(m->scope, &f, ASYNCRT_SPAWN_LOCAL, NULL);
    if (rc == ASYNCRT_OK) {
      tf_add(&m->spawned, 1);
    } else if (tf_get(&m->spawn_rc) == ASYNCRT_OK) {
      tf_set(&m->spawn_rc, rc);
    }
  }
  return ASYNCRT_POLL_PENDING;
}

static void mid_drop(void *self) {
  mid *m = self;
  m->drop_worker = worker_of(pthread_self());
  asyncrt_scope_free(m->scope);
  tf_set(&m->drop_seq, sf_seq());
  tf_add(&m->drops, 1);
  tf_add(&tree_drops, 1);
}

static const asyncrt_future_vtable mid_vtable = {sizeof(asyncrt_future_vtable), 0, mid_poll,
                                                 mid_drop, NULL};

/* 100 Send children placed round-robin on 4 workers, each with a scope of
 * 1000 local children that wait forever; cancelling the top scope from this
 * thread (no worker) reaches all 100,100 futures: each dropped once, leaves
 * before their parent, every cleanup run once. */
static void test_wide_tree_cancelled_from_outside(void) {
  asyncrt_executor *ex = threads_executor();
  mid *mids = calloc(MIDS, sizeof *mids);
  leaf *leaves = calloc(LEAVES, sizeof *leaves);
  asyncrt_scope *top = NULL;
  uint64_t memory_before;
  int i, j, cleanups_wanted = 0;
  CHECK(ex != NULL && mids != NULL && leaves != NULL);
  tf_set(&leaves_started, 0);
  tf_set(&tree_drops, 0);
  memory_before = tf_stats(ex).memory_in_use;
  top = sf_top(ex, 0, 0, "top");
  CHECK(top != NULL);
  for (i = 0; i < MIDS; i++) {
    asyncrt_future f;
    mids[i].leaves = &leaves[i * LEAVES_PER_MID];
    mids[i].first_worker = -2;
    mids[i].drop_worker = -2;
    f.self = &mids[i];
    f.vtable = &mid_vtable;
    CHECK_OK(asyncrt_scope_spawn(top, &f, ASYNCRT_SPAWN_SEND | ASYNCRT_SPAWN_WORKER(i % WORKERS),
                                 NULL));
  }
  CHECK(tf_wait_at_least(&leaves_started, LEAVES, WAIT_MS));
  for (i = 0; i < MIDS; i++) {
    CHECK_OK(tf_get(&mids[i].open_rc));
    CHECK_OK(tf_get(&mids[i].spawn_rc));
    CHECK_INT(tf_get(&mids[i].spawned), LEAVES_PER_MID);
    CHECK(mids[i].first_worker >= 0);
  }
  CHECK_INT(tf_get(&tree_drops), 0);
  CHECK_INT(tf_stats(ex).tasks_live, MIDS + LEAVES);

  CHECK_OK(asyncrt_scope_cancel(top));
  CHECK_STATUS(sf_join(ex, top, (int64_t)WAIT_MS * TF_MS_NS), ASYNCRT_ECANCELLED);
  CHECK_INT(tf_get(&tree_drops), MIDS + LEAVES);
  for (i = 0; i < MIDS; i++) {
    int last_leaf_seq = 0;
    CHECK_INT(tf_get(&mids[i].polls), 1);
    CHECK_INT(tf_get(&mids[i].drops), 1);
    CHECK(mids[i].drop_worker >= 0); /* Send: any worker, but a worker */
    for (j = 0; j < LEAVES_PER_MID; j++) {
      leaf *l = &mids[i].leaves[j];
      CHECK_INT(tf_get(&l->polls), 1);
      CHECK_INT(tf_get(&l->drops), 1);
      CHECK_INT(tf_get(&l->bad), 0);
      CHECK_INT(tf_get(&l->cleanups), leaf_has_cleanup(j) ? 1 : 0);
      if (tf_get(&l->drop_seq) > last_leaf_seq) {
        last_leaf_seq = tf_get(&l->drop_seq);
      }
      cleanups_wanted += leaf_has_cleanup(j);
    }
    CHECK(last_leaf_seq < tf_get(&mids[i].drop_seq));
  }
  CHECK_INT(cleanups_wanted, MIDS * 334);
  CHECK_STATUS(asyncrt_scope_status(top), ASYNCRT_ECANCELLED);
  CHECK_OK(asyncrt_scope_free(top));
  CHECK(wait_stats(ex, 0, memory_before, WAIT_MS));
  CHECK_OK(asyncrt_executor_free(ex));
  CHECK_INT(tf_get(&tree_drops), MIDS + LEAVES);
  free(mids);
  free(leaves);
}

/* --- the deep chain ------------------------------------------------------------------ */

/* Each of 10,000 tasks opens a scope and spawns the next; the last waits.
 * Cancelling the root drops every future once, each child before its
 * parent. */
static void test_deep_chain(void) {
  asyncrt_executor *ex = sf_executor(ASYNCRT_EXECUTOR_LOCAL, 0, ASYNCRT_CLOCK_MONOTONIC);
  sf_node *chain = calloc(CHAIN_DEPTH, sizeof *chain);
  sf_node **ptrs = calloc(CHAIN_DEPTH, sizeof *ptrs);
  asyncrt_task *root = NULL;
  asyncrt_future join;
  int i;
  CHECK(ex != NULL && chain != NULL && ptrs != NULL);
  for (i = 0; i < CHAIN_DEPTH; i++) {
    sf_node_init(&chain[i]);
    ptrs[i] = &chain[i];
  }
  for (i = 0; i + 1 < CHAIN_DEPTH; i++) {
    chain[i].opens_scope = 1;
    chain[i].children = &ptrs[i + 1];
    chain[i].nchildren = 1;
  }
  CHECK_OK(sf_spawn(ex, &chain[0], 0, &root));
  CHECK_OK(asyncrt_run(ex, NULL));
  for (i = 0; i < CHAIN_DEPTH; i++) {
    CHECK_INT(tf_get(&chain[i].polls), 1);
    CHECK_OK(tf_get(&chain[i].open_rc));
    CHECK_OK(tf_get(&chain[i].spawn_rc));
  }
  CHECK_INT(tf_stats(ex).tasks_live, CHAIN_DEPTH);
  CHECK_OK(asyncrt_task_cancel(root));
  CHECK_OK(asyncrt_task_join(root, &join));
  CHECK_STATUS(asyncrt_block_on(ex, &join, NULL, (int64_t)WAIT_MS * TF_MS_NS), ASYNCRT_ECANCELLED);
  for (i = 0; i < CHAIN_DEPTH; i++) {
    CHECK_INT(tf_get(&chain[i].drops), 1);
    CHECK_INT(tf_get(&chain[i].polls), 1);
    CHECK_INT(tf_get(&chain[i].bad_polls), 0);
    if (i + 1 < CHAIN_DEPTH) {
      CHECK(tf_get(&chain[i + 1].drop_seq) < tf_get(&chain[i].drop_seq));
    }
  }
  CHECK_STATUS(asyncrt_task_status(root), ASYNCRT_ECANCELLED);
  CHECK_OK(asyncrt_task_release(root));
  CHECK_INT(tf_stats(ex).tasks_live, 0);
  CHECK_OK(asyncrt_executor_free(ex));
  free(chain);
  free(ptrs);
}

/* --- a subtree on another worker ------------------------------------------------------ */

/* A parent on worker 0 whose scope's child was placed on worker 1:
 * cancelling the parent (synchronously, or with a cleanup deadline) cancels
 * the child on its own worker, first. */
static void subtree_on_another_worker(int async) {
  asyncrt_executor *ex = threads_executor();
  sf_node *parent = calloc(1, sizeof *parent);
  sf_node *kid = calloc(1, sizeof *kid);
  sf_node **kid_ptr = calloc(1, sizeof *kid_ptr);
  asyncrt_task **kid_task = calloc(1, sizeof *kid_task);
  asyncrt_task *task = NULL;
  CHECK(ex != NULL && parent != NULL && kid != NULL && kid_ptr != NULL && kid_task != NULL);
  sf_node_init(parent);
  sf_node_init(kid);
  *kid_ptr = kid;
  parent->opens_scope = 1;
  parent->children = kid_ptr;
  parent->nchildren = 1;
  parent->child_flags = ASYNCRT_SPAWN_WORKER(1);
  parent->child_tasks = kid_task;
  if (async) {
    parent->cleanup = SF_CLEANUP_READY;
    kid->cleanup = SF_CLEANUP_READY;
  }
  CHECK_OK(sf_spawn(ex, parent, ASYNCRT_SPAWN_WORKER(0), &task));
  CHECK(tf_wait_at_least(&kid->polls, 1, WAIT_MS));
  CHECK(tf_wait_flag(&kid->waker_flag, WAIT_MS));
  CHECK_INT(worker_of(parent->first_thread), 0);
  CHECK_INT(worker_of(kid->first_thread), 1);
  CHECK_OK(tf_get(&parent->spawn_rc));

  if (async) {
    CHECK_OK(asyncrt_task_cancel_ex(task, 10 * TF_SECOND_NS));
  } else {
    CHECK_OK(asyncrt_task_cancel(task));
  }
  CHECK_STATUS(sf_wait_task(task, WAIT_MS), ASYNCRT_ECANCELLED);
  CHECK_INT(tf_get(&kid->drops), 1);
  CHECK_INT(tf_get(&parent->drops), 1);
  CHECK_STATUS(asyncrt_task_status(*kid_task), ASYNCRT_ECANCELLED);
  CHECK(tf_get(&kid->drop_seq) < tf_get(&parent->drop_seq));
  CHECK_INT(worker_of(kid->drop_thread), 1);
  CHECK_INT(worker_of(parent->drop_thread), 0);
  CHECK_INT(tf_get(&kid->polls), 1);
  CHECK_INT(tf_get(&parent->polls), 1);
  CHECK_INT(tf_get(&kid->bad_polls), 0);
  CHECK_INT(tf_get(&parent->bad_polls), 0);
  if (async) {
    /* leaves first: the child's cleanup ended before the parent's began */
    CHECK_INT(tf_get(&kid->cleanup_calls), 1);
    CHECK_INT(tf_get(&parent->cleanup_calls), 1);
    CHECK(tf_get(&kid->cleanup_end_seq) < tf_get(&kid->drop_seq));
    CHECK(tf_get(&kid->drop_seq) < tf_get(&parent->cleanup_start_seq));
    CHECK(tf_get(&parent->cleanup_end_seq) < tf_get(&parent->drop_seq));
  } else {
    CHECK_INT(tf_get(&parent->cleanup_calls), 0);
  }
  CHECK_OK(asyncrt_task_release(*kid_task));
  CHECK_OK(asyncrt_task_release(task));
  CHECK(wait_stats(ex, 0, ANY_MEMORY, WAIT_MS));
  CHECK_OK(asyncrt_executor_shutdown(ex, ASYNCRT_SHUTDOWN_GRACEFUL, TF_TIMEOUT_NS));
  CHECK_OK(asyncrt_executor_free(ex));
  free(parent);
  free(kid);
  free(kid_ptr);
  free(kid_task);
}

static void test_cancel_parent_cancels_child_on_another_worker(void) {
  subtree_on_another_worker(0);
}

static void test_cancel_ex_parent_runs_child_cleanup_first(void) { subtree_on_another_worker(1); }

int main(void) {
  CHECK_BEGIN();
  RUN(test_wide_tree_cancelled_from_outside);
  RUN(test_deep_chain);
  RUN(test_cancel_parent_cancels_child_on_another_worker);
  RUN(test_cancel_ex_parent_runs_child_cleanup_first);
  return CHECK_END("test_cancel_tree");
}
