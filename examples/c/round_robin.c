/*
 * round_robin.c -- asyncrt tasks run by an executor written in C.
 *
 * A "foreign executor" splits the work: asyncrt keeps the tasks (their
 * memory, wakers, joins, cancellation) and your code decides what runs, when
 * and on which thread. Whenever a task becomes runnable -- it was spawned, or
 * something woke it -- asyncrt calls your schedule() with an
 * asyncrt_runnable. You queue it, and later hand it to asyncrt_runnable_run,
 * which polls the task once (or drops it, if it was cancelled meanwhile).
 *
 * This executor is a round-robin FIFO: a mutex-protected list of runnables,
 * one thread that runs them one at a time, and a condition variable that
 * thread sleeps on while the list is empty. schedule() is called from any
 * thread (here: main, the runner itself, a timer thread), so it only locks,
 * appends and signals: it must never block for long.
 *
 * The tasks: two counters that take turns (each wakes itself after a step,
 * going to the back of the queue), a sleeper woken by a plain thread, and a
 * task that waits forever until main cancels it. main awaits the tasks'
 * joins with asyncrt_block_on on an ordinary local executor.
 */
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "asyncrt.h"

/* --- the executor ---------------------------------------------------------- */

typedef struct node {
  asyncrt_runnable *runnable;
  struct node *next;
} node;

typedef struct round_robin {
  pthread_mutex_t mu;
  pthread_cond_t nonempty;
  node *head, *tail; /* the FIFO */
  int stopping;      /* the runner exits once the FIFO is empty */
  int runs;
} round_robin;

/* asyncrt: "this task can make progress". Append it and wake the runner. */
static void rr_schedule(void *user_data, asyncrt_runnable *r) {
  round_robin *rr = user_data;
  node *n = malloc(sizeof *n);
  if (n == NULL) {
    asyncrt_runnable_drop(r); /* cannot queue it: cancel the task instead */
    return;
  }
  n->runnable = r;
  n->next = NULL;
  pthread_mutex_lock(&rr->mu);
  if (rr->tail != NULL) {
    rr->tail->next = n;
  } else {
    rr->head = n;
  }
  rr->tail = n;
  pthread_cond_signal(&rr->nonempty);
  pthread_mutex_unlock(&rr->mu);
}

/* asyncrt: "I will not call schedule again": after asyncrt_executor_free,
 * once no task is left. */
static void rr_finalize(void *user_data) {
  (void)user_data;
  printf("finalize: asyncrt is done with the executor\n");
}

static const asyncrt_foreign_vtable rr_vtable = {sizeof(asyncrt_foreign_vtable), rr_schedule,
                                                 rr_finalize};

/* The runner: take the oldest runnable, run it outside the lock (the poll may
 * schedule more), repeat; sleep while there is nothing to do. */
static void *rr_run(void *arg) {
  round_robin *rr = arg;
  for (;;) {
    node *n;
    pthread_mutex_lock(&rr->mu);
    while (rr->head == NULL && !rr->stopping) {
      pthread_cond_wait(&rr->nonempty, &rr->mu);
    }
    n = rr->head;
    if (n == NULL) { /* stopping, and nothing left */
      pthread_mutex_unlock(&rr->mu);
      return NULL;
    }
    rr->head = n->next;
    if (rr->head == NULL) {
      rr->tail = NULL;
    }
    rr->runs++;
    pthread_mutex_unlock(&rr->mu);
    asyncrt_runnable_run(n->runnable); /* consumes the runnable */
    free(n);
  }
}

/* --- the tasks --------------------------------------------------------------- */

/* A counter: one step per poll, then back to the end of the queue. */
typedef struct counter {
  const char *name;
  int step, steps;
} counter;

static int counter_poll(void *self, asyncrt_context *cx, void *out) {
  counter *c = self;
  if (c->step == c->steps) {
    *(uint64_t *)out = (uint64_t)c->steps;
    return ASYNCRT_POLL_READY;
  }
  printf("  %s: step %d of %d\n", c->name, ++c->step, c->steps);
  asyncrt_waker_wake_by_ref(asyncrt_context_waker(cx)); /* schedule() runs now */
  return ASYNCRT_POLL_PENDING;
}

/* A waiter: pending until someone wakes it through the waker it leaves in
 * `waker` (a clone it owns); with `forever`, it never finishes. */
typedef struct waiter {
  const char *name;
  int forever, polls;
  asyncrt_waker waker;
  pthread_mutex_t mu; /* guards `waker` against the thread that wakes it */
} waiter;

static int waiter_poll(void *self, asyncrt_context *cx, void *out) {
  waiter *w = self;
  if (w->polls++ > 0 && !w->forever) {
    printf("  %s: woken, done\n", w->name);
    *(uint64_t *)out = 0;
    return ASYNCRT_POLL_READY;
  }
  printf("  %s: waiting\n", w->name);
  pthread_mutex_lock(&w->mu);
  if (w->waker.vtable == NULL) {
    asyncrt_waker_clone(asyncrt_context_waker(cx), &w->waker);
  }
  pthread_mutex_unlock(&w->mu);
  return ASYNCRT_POLL_PENDING;
}

/* Drop is called once, on the thread that runs the runnable carrying the
 * task's end (or in asyncrt_executor_free). */
static void waiter_drop(void *self) {
  waiter *w = self;
  printf("  %s: dropped\n", w->name);
  pthread_mutex_lock(&w->mu);
  asyncrt_waker_drop(&w->waker);
  pthread_mutex_unlock(&w->mu);
}

static const asyncrt_future_vtable counter_vtable = {sizeof(asyncrt_future_vtable),
                                                     sizeof(uint64_t), counter_poll, NULL, NULL};
static const asyncrt_future_vtable waiter_vtable = {sizeof(asyncrt_future_vtable),
                                                    sizeof(uint64_t), waiter_poll, waiter_drop,
                                                    NULL};

/* A plain thread that asyncrt never saw: sleeps, then wakes the sleeper. */
static void *timer_thread(void *arg) {
  waiter *w = arg;
  struct timespec pause = {0, 50 * 1000 * 1000};
  nanosleep(&pause, NULL);
  printf("timer thread: waking %s\n", w->name);
  pthread_mutex_lock(&w->mu);
  asyncrt_waker_wake_by_ref(&w->waker); /* reaches rr_schedule */
  pthread_mutex_unlock(&w->mu);
  return NULL;
}

/* --- main -------------------------------------------------------------------- */

static int fail(const char *what, int status) {
  fprintf(stderr, "round_robin: %s failed: %s (%s)\n", what, asyncrt_status_str(status),
          asyncrt_last_error());
  return 1;
}

/* Waits for a task on `local` through its join future; returns its status. */
static int await_task(asyncrt_executor *local, asyncrt_task *task) {
  asyncrt_future join;
  uint64_t out = 0;
  int rc = asyncrt_task_join(task, &join);
  return rc != ASYNCRT_OK ? rc : asyncrt_block_on(local, &join, &out, 5LL * 1000 * 1000 * 1000);
}

int main(void) {
  static round_robin rr = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, NULL, NULL, 0, 0};
  static counter a = {"counter A", 0, 3}, b = {"counter B", 0, 3};
  static waiter sleeper = {"sleeper", 0, 0, {NULL, NULL}, PTHREAD_MUTEX_INITIALIZER};
  static waiter forever = {"forever", 1, 0, {NULL, NULL}, PTHREAD_MUTEX_INITIALIZER};
  asyncrt_future fa = {&a, &counter_vtable}, fb = {&b, &counter_vtable};
  asyncrt_future fs = {&sleeper, &waiter_vtable}, ff = {&forever, &waiter_vtable};
  asyncrt_task *ta = NULL, *tb = NULL, *ts = NULL, *tf = NULL;
  asyncrt_executor *ex = NULL, *local = NULL;
  pthread_t runner, timer;
  int rc;

  if ((rc = asyncrt_executor_new_foreign(&rr_vtable, &rr, &ex)) != ASYNCRT_OK) {
    return fail("asyncrt_executor_new_foreign", rc);
  }
  if ((rc = asyncrt_executor_new(NULL, &local)) != ASYNCRT_OK) {
    return fail("asyncrt_executor_new", rc);
  }
  /* Each spawn calls rr_schedule at once: four runnables wait in the FIFO. */
  if ((rc = asyncrt_spawn(ex, &fa, ASYNCRT_SPAWN_LOCAL, &ta)) != ASYNCRT_OK ||
      (rc = asyncrt_spawn(ex, &fb, ASYNCRT_SPAWN_LOCAL, &tb)) != ASYNCRT_OK ||
      (rc = asyncrt_spawn(ex, &fs, ASYNCRT_SPAWN_LOCAL, &ts)) != ASYNCRT_OK ||
      (rc = asyncrt_spawn(ex, &ff, ASYNCRT_SPAWN_LOCAL, &tf)) != ASYNCRT_OK) {
    return fail("asyncrt_spawn", rc);
  }
  printf("spawned 4 tasks; starting the runner thread\n");
  pthread_create(&runner, NULL, rr_run, &rr);
  pthread_create(&timer, NULL, timer_thread, &sleeper);

  if ((rc = await_task(local, ta)) != ASYNCRT_OK || (rc = await_task(local, tb)) != ASYNCRT_OK ||
      (rc = await_task(local, ts)) != ASYNCRT_OK) {
    return fail("awaiting the tasks", rc);
  }
  pthread_join(timer, NULL);
  printf("main: the counters and the sleeper are done; cancelling \"forever\"\n");

  /* Cancelling schedules the task one last time: its runnable drops it. */
  asyncrt_task_cancel(tf);
  if ((rc = await_task(local, tf)) != ASYNCRT_ECANCELLED) {
    return fail("cancelling", rc);
  }

  /* Stop the runner once the FIFO is empty, then free the executor. */
  pthread_mutex_lock(&rr.mu);
  rr.stopping = 1;
  pthread_cond_signal(&rr.nonempty);
  pthread_mutex_unlock(&rr.mu);
  pthread_join(runner, NULL);
  printf("main: the runner ran %d runnables\n", rr.runs);
  asyncrt_task_release(ta);
  asyncrt_task_release(tb);
  asyncrt_task_release(ts);
  asyncrt_task_release(tf);
  asyncrt_executor_free(ex);
  asyncrt_executor_free(local);
  printf("round_robin: success\n");
  return 0;
}
