/*
 * subtree_cancel.c -- a parent on one worker cancels its children on another.
 *
 * On a thread-per-core executor a task stays on its worker, but a scope's
 * children may be placed anywhere (ASYNCRT_SPAWN_WORKER): they stay linked
 * to their scope, a subtree on another thread. Here a parent runs on worker
 * 0, opens a scope and spawns three "pollers" onto worker 1. Once all three
 * have started, the parent cancels the scope from its own poll and awaits
 * the join.
 *
 * The cancel crosses the threads by itself: each poller's cleanup runs on
 * worker 1, where the poller lives, then the poller is dropped there; the
 * join reports ASYNCRT_ECANCELLED to the parent back on worker 0. The
 * program prints which worker did what.
 */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "asyncrt.h"

#define WORKERS 2
#define POLLERS 3

/* --- which thread is which worker (recorded by the thread hooks) ------------- */

static pthread_t worker_threads[WORKERS];
static int worker_known[WORKERS];

static void on_start(unsigned worker, void *user_data) {
  (void)user_data;
  if (worker < WORKERS) {
    worker_threads[worker] = pthread_self();
    __atomic_store_n(&worker_known[worker], 1, __ATOMIC_RELEASE);
  }
}

static int this_worker(void) {
  int i;
  for (i = 0; i < WORKERS; i++) {
    if (__atomic_load_n(&worker_known[i], __ATOMIC_ACQUIRE) &&
        pthread_equal(worker_threads[i], pthread_self())) {
      return i;
    }
  }
  return -1;
}

/* --- the pollers: wait forever; their cleanup says where it runs ------------- */

typedef struct shared {
  asyncrt_waker parent; /* a clone of the parent's waker, made before the spawns */
  int started;          /* pollers that have run */
  int cleaned_on[POLLERS], dropped_on[POLLERS], polled_on[POLLERS];
  int drops;
} shared;

typedef struct poller {
  shared *sh;
  int index;
} poller;

static int poller_poll(void *self, asyncrt_context *cx, void *out) {
  poller *p = self;
  (void)cx;
  (void)out;
  p->sh->polled_on[p->index] = this_worker();
  printf("  poller %d: running on worker %d\n", p->index, this_worker());
  __atomic_add_fetch(&p->sh->started, 1, __ATOMIC_ACQ_REL);
  asyncrt_waker_wake_by_ref(&p->sh->parent);
  return ASYNCRT_POLL_PENDING; /* nothing will wake it: only a cancel ends it */
}

static int poller_cleanup(void *self, asyncrt_context *cx) {
  poller *p = self;
  (void)cx;
  p->sh->cleaned_on[p->index] = this_worker();
  printf("  poller %d: cancelled; cleanup on worker %d\n", p->index, this_worker());
  return ASYNCRT_POLL_READY;
}

static void poller_drop(void *self) {
  poller *p = self;
  p->sh->dropped_on[p->index] = this_worker();
  __atomic_add_fetch(&p->sh->drops, 1, __ATOMIC_ACQ_REL);
}

static const asyncrt_future_vtable poller_vtable = {sizeof(asyncrt_future_vtable), 0, poller_poll,
                                                    poller_drop, poller_cleanup};

/* --- the parent ----------------------------------------------------------------- */

typedef struct parent {
  shared sh;
  poller pollers[POLLERS];
  int step;
  asyncrt_scope *scope;
  asyncrt_future join;
  int join_status; /* what the join reported */
  int worker;
} parent;

static int parent_poll(void *self, asyncrt_context *cx, void *out) {
  parent *pa = self;
  int i, r;
  (void)out;
  switch (pa->step) {
  case 0:
    pa->worker = this_worker();
    printf("parent: on worker %d, spawning %d pollers onto worker 1\n", pa->worker, POLLERS);
    asyncrt_waker_clone(asyncrt_context_waker(cx), &pa->sh.parent);
    if (asyncrt_scope_open(cx, NULL, &pa->scope) != ASYNCRT_OK) {
      return ASYNCRT_POLL_ERROR;
    }
    for (i = 0; i < POLLERS; i++) {
      asyncrt_future f = {&pa->pollers[i], &poller_vtable};
      pa->pollers[i].sh = &pa->sh;
      pa->pollers[i].index = i;
      if (asyncrt_scope_spawn(pa->scope, &f, ASYNCRT_SPAWN_WORKER(1), NULL) != ASYNCRT_OK) {
        return ASYNCRT_POLL_ERROR; /* returning cancels the pollers already spawned */
      }
    }
    pa->step = 1;
    /* fall through */
  case 1:
    if (__atomic_load_n(&pa->sh.started, __ATOMIC_ACQUIRE) < POLLERS) {
      return ASYNCRT_POLL_PENDING; /* each poller wakes us when it starts */
    }
    printf("parent: all pollers started; cancelling their scope from worker %d\n", this_worker());
    asyncrt_scope_cancel(pa->scope);
    if (asyncrt_scope_join(pa->scope, &pa->join) != ASYNCRT_OK) {
      return ASYNCRT_POLL_ERROR;
    }
    pa->step = 2;
    /* fall through */
  default:
    r = asyncrt_poll_with_waker(&pa->join, asyncrt_context_waker(cx), NULL, &pa->join_status);
    if (r == ASYNCRT_POLL_PENDING) {
      return r;
    }
    printf("parent: the join reported %s\n", asyncrt_status_str(pa->join_status));
    return ASYNCRT_POLL_READY;
  }
}

static void parent_drop(void *self) {
  parent *pa = self;
  if (pa->step == 2) {
    pa->join.vtable->drop(pa->join.self);
  }
  asyncrt_scope_free(pa->scope);
  asyncrt_waker_drop(&pa->sh.parent);
}

static const asyncrt_future_vtable parent_vtable = {sizeof(asyncrt_future_vtable), 0, parent_poll,
                                                    parent_drop, NULL};

static int fail(const char *what, int status) {
  fprintf(stderr, "subtree_cancel: %s failed: %s (%s)\n", what, asyncrt_status_str(status),
          asyncrt_last_error());
  return 1;
}

int main(void) {
  static parent pa;
  asyncrt_executor_config cfg;
  asyncrt_thread_hooks hooks;
  asyncrt_executor *ex = NULL;
  asyncrt_task *task = NULL;
  asyncrt_future f = {&pa, &parent_vtable}, join;
  int i, rc, ok;

  setvbuf(stdout, NULL, _IOLBF, 0);
  memset(&hooks, 0, sizeof hooks);
  hooks.size = sizeof hooks;
  hooks.on_start = on_start;
  asyncrt_executor_config_init(&cfg);
  cfg.kind = ASYNCRT_EXECUTOR_THREADS;
  cfg.workers = WORKERS;
  cfg.hooks = &hooks;
  if ((rc = asyncrt_executor_new(&cfg, &ex)) != ASYNCRT_OK) {
    return fail("asyncrt_executor_new", rc);
  }
  if ((rc = asyncrt_spawn(ex, &f, ASYNCRT_SPAWN_WORKER(0), &task)) != ASYNCRT_OK) {
    return fail("asyncrt_spawn", rc);
  }
  if ((rc = asyncrt_task_join(task, &join)) != ASYNCRT_OK) {
    return fail("asyncrt_task_join", rc);
  }
  asyncrt_task_release(task);
  /* main is no worker: it may wait here while the workers run */
  if ((rc = asyncrt_block_on(ex, &join, NULL, 10LL * 1000 * 1000 * 1000)) != ASYNCRT_OK) {
    return fail("asyncrt_block_on", rc);
  }
  ok = pa.worker == 0 && pa.join_status == ASYNCRT_ECANCELLED &&
       __atomic_load_n(&pa.sh.drops, __ATOMIC_ACQUIRE) == POLLERS;
  for (i = 0; i < POLLERS; i++) {
    ok = ok && pa.sh.polled_on[i] == 1 && pa.sh.cleaned_on[i] == 1 && pa.sh.dropped_on[i] == 1;
  }
  printf("subtree_cancel: %d pollers cancelled on worker 1, cleanups and drops there\n",
         __atomic_load_n(&pa.sh.drops, __ATOMIC_ACQUIRE));
  asyncrt_executor_shutdown(ex, ASYNCRT_SHUTDOWN_GRACEFUL, 5LL * 1000 * 1000 * 1000);
  asyncrt_executor_free(ex);
  if (!ok) {
    fprintf(stderr, "subtree_cancel: expected the parent on worker 0 and every poller polled, "
                    "cleaned up and dropped on worker 1\n");
    return 1;
  }
  printf("subtree_cancel: success\n");
  return 0;
}
