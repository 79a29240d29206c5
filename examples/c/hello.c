/*
 * hello.c -- a first asyncrt program.
 *
 * A future is a state machine: some state (`self`) plus a vtable whose
 * poll() advances it. poll() returns ASYNCRT_POLL_READY when it is done
 * (writing its output), or ASYNCRT_POLL_PENDING after arranging to be woken
 * through the waker in its context, and the next poll picks up where the
 * last one stopped.
 *
 * The polls here are written as coroutines with the macros of
 * bindings/c/asyncrt_coro.h: each reads top to bottom, and the macros keep
 * the place to resume in the future's struct (the README shows one future
 * both ways). Everything that must survive a wait lives in the struct too.
 *
 * Two "counter" futures each count to a target, yielding to the executor
 * after every step, then return a value. They run as tasks. A third future
 * joins both tasks and adds their results; asyncrt_block_on runs it (and the
 * counters meanwhile) on this thread.
 */
#include <stdint.h>
#include <stdio.h>

#include "asyncrt.h"
#include "asyncrt_coro.h"

/* --- the counter: yields `steps` times, then returns `result` ----------- */

typedef struct counter {
  arc_state co; /* where its poll resumes */
  const char *name;
  int step, steps;
  uint64_t result;
} counter;

static int counter_poll(void *self, asyncrt_context *cx, void *out) {
  counter *c = self;
  ARC_BEGIN(c->co);
  for (c->step = 1; c->step <= c->steps; c->step++) {
    printf("  %s: step %d of %d\n", c->name, c->step, c->steps);
    /* Yield: ask to be polled again, and let the other tasks run first. */
    ARC_PAUSE(c->co, cx);
  }
  printf("  %s: done, returning %llu\n", c->name, (unsigned long long)c->result);
  ARC_RETURN(c->co, *(uint64_t *)out = c->result);
  ARC_END(c->co);
}

/* Static and shared by every counter. drop is NULL: the state lives on
 * main's stack, so there is nothing to release. */
static const asyncrt_future_vtable counter_vtable = {
    sizeof(asyncrt_future_vtable), sizeof(uint64_t), counter_poll, NULL, NULL};

/* --- the sum: awaits two join futures and adds their outputs ------------ */

typedef struct sum {
  arc_state co;
  asyncrt_future joins[2]; /* owned: each dropped once it is done, or in sum_drop */
  uint64_t values[2];
  int i;
} sum;

static int sum_poll(void *self, asyncrt_context *cx, void *out) {
  sum *s = self;
  ARC_BEGIN(s->co);
  /* One join after the other: the counters run meanwhile as tasks of their
   * own. Each join is polled with our context, so while it is pending it has
   * arranged for our task to be woken, and a failure of a counter is ours. */
  for (s->i = 0; s->i < 2; s->i++) {
    ARC_AWAIT(s->co, cx, &s->joins[s->i], &s->values[s->i]);
    ARC_DROP_CHILD(&s->joins[s->i]);
  }
  ARC_RETURN(s->co, *(uint64_t *)out = s->values[0] + s->values[1]);
  ARC_END(s->co);
}

static void sum_drop(void *self) {
  sum *s = self;
  ARC_DROP_CHILD(&s->joins[0]); /* a no-op for a join already dropped */
  ARC_DROP_CHILD(&s->joins[1]);
}

static const asyncrt_future_vtable sum_vtable = {sizeof(asyncrt_future_vtable), sizeof(uint64_t),
                                                 sum_poll, sum_drop, NULL};

static int fail(const char *what, int status) {
  fprintf(stderr, "hello: %s failed: %s (%s)\n", what, asyncrt_status_str(status),
          asyncrt_last_error());
  return 1;
}

int main(void) {
  counter a = {ARC_STATE_INIT, "counter A", 0, 3, 10};
  counter b = {ARC_STATE_INIT, "counter B", 0, 5, 32};
  sum s = {ARC_STATE_INIT, {{NULL, NULL}, {NULL, NULL}}, {0, 0}, 0};
  asyncrt_executor *ex = NULL;
  asyncrt_task *ta = NULL, *tb = NULL;
  asyncrt_future fa = {&a, &counter_vtable}, fb = {&b, &counter_vtable};
  asyncrt_future fs = {&s, &sum_vtable};
  uint64_t total = 0;
  int rc;

  if ((rc = asyncrt_check_version(ASYNCRT_VERSION_HEX)) != ASYNCRT_OK) {
    return fail("asyncrt_check_version", rc);
  }
  printf("asyncrt %s: two counters and their sum\n", asyncrt_version_string());
  if ((rc = asyncrt_executor_new(NULL, &ex)) != ASYNCRT_OK) {
    return fail("asyncrt_executor_new", rc);
  }

  /* Spawn the counters. Nothing runs until the executor is driven. */
  if ((rc = asyncrt_spawn(ex, &fa, ASYNCRT_SPAWN_LOCAL, &ta)) != ASYNCRT_OK ||
      (rc = asyncrt_spawn(ex, &fb, ASYNCRT_SPAWN_LOCAL, &tb)) != ASYNCRT_OK) {
    return fail("asyncrt_spawn", rc);
  }
  /* A join future completes with its task's output. */
  if ((rc = asyncrt_task_join(ta, &s.joins[0])) != ASYNCRT_OK ||
      (rc = asyncrt_task_join(tb, &s.joins[1])) != ASYNCRT_OK) {
    return fail("asyncrt_task_join", rc);
  }
  /* The joins hold their own references: our handles can go now. */
  asyncrt_task_release(ta);
  asyncrt_task_release(tb);

  /* Run the sum to completion on this thread; the counters run meanwhile,
   * taking turns. block_on owns the sum future from here on. */
  rc = asyncrt_block_on(ex, &fs, &total, 5LL * 1000 * 1000 * 1000);
  if (rc != ASYNCRT_OK) {
    return fail("asyncrt_block_on", rc);
  }
  printf("sum: %llu + %llu = %llu\n", (unsigned long long)s.values[0],
         (unsigned long long)s.values[1], (unsigned long long)total);
  asyncrt_executor_free(ex);
  if (total != 42) {
    fprintf(stderr, "hello: expected 42\n");
    return 1;
  }
  printf("hello: success\n");
  return 0;
}
