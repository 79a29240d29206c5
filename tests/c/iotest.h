/*
 * iotest.h -- what the IO tests share: an environment (an executor and a
 * driver on one backend), a loop over the backends, an op step for futures
 * written as state machines, and a task runner with a bounded wait.
 *
 * Every test runs once per backend: FOR_EACH_BACKEND opens a driver on
 * ASYNCRT_IO_EPOLL, then on ASYNCRT_IO_URING; a backend the library or the
 * kernel refuses (ENOTSUP) is skipped with a message, never counted as a
 * pass of something that did not run.
 */
#ifndef ASYNCRT_TEST_IOTEST_H
#define ASYNCRT_TEST_IOTEST_H

#include "check.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define IO_WAIT_NS (20ll * 1000 * 1000 * 1000) /* every block_on's bound */

typedef struct io_env {
  asyncrt_executor *ex;
  asyncrt_io *io;
  unsigned backend;
  int threads; /* workers of a thread-per-core executor; 0: local */
} io_env;

static const unsigned io_backends[] = {ASYNCRT_IO_EPOLL, ASYNCRT_IO_URING};

/* Opens an executor (local, or `threads` workers) with a driver on
 * `backend`: 1 on success; 0 if the backend is refused (ENOTSUP; the
 * message says so and the caller skips); -1 on any other failure (printed). */
static inline int io_env_open(io_env *v, unsigned backend, int threads) {
  asyncrt_executor_config cfg;
  asyncrt_io_config icfg;
  int rc;
  memset(v, 0, sizeof *v);
  v->backend = backend;
  v->threads = threads;
  asyncrt_executor_config_init(&cfg);
  if (threads) {
    cfg.kind = ASYNCRT_EXECUTOR_THREADS;
    cfg.workers = (unsigned)threads;
  }
  rc = asyncrt_executor_new(&cfg, &v->ex);
  if (rc) {
    fprintf(stderr, "  asyncrt_executor_new: %s\n", asyncrt_last_error());
    return -1;
  }
  asyncrt_io_config_init(&icfg);
  icfg.backend = backend;
  rc = asyncrt_io_open(v->ex, &icfg, &v->io);
  if (rc == ASYNCRT_ENOTSUP) {
    printf("  skip %s: %s\n", asyncrt_io_backend_name(backend), asyncrt_last_error());
    asyncrt_executor_free(v->ex);
    v->ex = NULL;
    return 0;
  }
  if (rc) {
    fprintf(stderr, "  asyncrt_io_open(%s): %s\n", asyncrt_io_backend_name(backend), asyncrt_last_error());
    return -1;
  }
  if (asyncrt_io_backend(v->io) != (int)backend) {
    fprintf(stderr, "  asyncrt_io_backend: got %d, want %u\n", asyncrt_io_backend(v->io), backend);
    return -1;
  }
  return 1;
}

/* Closes the driver, then frees the executor: 1 if both said OK. */
static inline int io_env_close(io_env *v) {
  int rc = asyncrt_io_close(v->io);
  if (rc) {
    fprintf(stderr, "  asyncrt_io_close: %s\n", asyncrt_last_error());
    return 0;
  }
  rc = asyncrt_executor_free(v->ex);
  if (rc) {
    fprintf(stderr, "  asyncrt_executor_free: %s\n", asyncrt_last_error());
    return 0;
  }
  return 1;
}

/* Runs body(v) on each backend, local and (threads > 0) on a thread-per-
 * core executor: `body` is a static void function of an io_env that
 * CHECKs. */
#define FOR_EACH_BACKEND(v, threads, body)                                     \
  do {                                                                          \
    size_t bi_;                                                                 \
    for (bi_ = 0; bi_ < sizeof io_backends / sizeof io_backends[0]; bi_++) {    \
      int r_ = io_env_open(&(v), io_backends[bi_], (threads));                  \
      CHECK(r_ >= 0);                                                           \
      if (r_ == 0) continue;                                                    \
      body(&(v));                                                               \
      CHECK_PASSED();                                                           \
      CHECK(io_env_close(&(v)));                                                \
    }                                                                           \
  } while (0)

/* One op of a state-machine future: submit it once, then poll it. */
typedef struct io_step {
  asyncrt_op op;
  int submitted;
} io_step;

/* 1: complete (op.status and op.result are valid, the op is free again);
 * 0: pending; -1: the submit failed (*rc is its status). Prepare the op
 * only while !s->submitted. */
static inline int io_step_poll(io_step *s, asyncrt_context *cx, asyncrt_io *io, int *rc) {
  if (!s->submitted) {
    int r = asyncrt_io_submit(cx, io, &s->op);
    if (r) {
      *rc = r;
      return -1;
    }
    s->submitted = 1;
  }
  if (asyncrt_op_poll(&s->op, cx) == ASYNCRT_POLL_PENDING) return 0;
  s->submitted = 0;
  return 1;
}

/* Runs a future to completion on v's executor within IO_WAIT_NS. */
static inline int io_run(io_env *v, asyncrt_future fut, void *out) {
  int rc = asyncrt_block_on(v->ex, &fut, out, IO_WAIT_NS);
  if (rc) fprintf(stderr, "  asyncrt_block_on: %s\n", asyncrt_last_error());
  return rc;
}

/* Waits (within IO_WAIT_NS) for a task to complete and releases it: its
 * status. */
static inline int io_join(io_env *v, asyncrt_task *t) {
  asyncrt_future j;
  _Alignas(16) unsigned char out[ASYNCRT_OUTPUT_MAX]; /* whatever the task's output */
  int rc = asyncrt_task_join(t, &j);
  if (rc == ASYNCRT_OK) rc = asyncrt_block_on(v->ex, &j, out, IO_WAIT_NS);
  asyncrt_task_release(t);
  return rc;
}

/* A future that yields (wakes itself) until *flag is set or it has
 * yielded `left` times: block_on of it lets the executor run the other
 * tasks (a local executor runs only while driven, and takes tasks spawned
 * from outside between its own polls). */
typedef struct yielder {
  const int *flag;
  int left;
} yielder;

static inline int yield_poll(void *self, asyncrt_context *cx, void *out) {
  yielder *y = self;
  (void)out;
  if ((y->flag && __atomic_load_n(y->flag, __ATOMIC_ACQUIRE)) || y->left-- <= 0) return ASYNCRT_POLL_READY;
  asyncrt_waker_wake_by_ref(asyncrt_context_waker(cx));
  return ASYNCRT_POLL_PENDING;
}
static inline void yield_drop(void *self) { (void)self; }
static const asyncrt_future_vtable yield_vtable = {
    .size = sizeof(asyncrt_future_vtable), .poll = yield_poll, .drop = yield_drop};

static inline int yield_until(io_env *v, const int *flag, int polls) {
  yielder y = {flag, polls};
  asyncrt_future f = {&y, &yield_vtable};
  return asyncrt_block_on(v->ex, &f, NULL, IO_WAIT_NS);
}

/* Waits (bounded) until *counter >= want, driving the executor. */
static inline int io_wait_count(io_env *v, const int *counter, int want) {
  for (int i = 0; i < 2000 && __atomic_load_n(counter, __ATOMIC_ACQUIRE) < want; i++) {
    if (yield_until(v, NULL, 100) != ASYNCRT_OK) return 0;
    if (v->threads && __atomic_load_n(counter, __ATOMIC_ACQUIRE) < want) usleep(1000);
  }
  return __atomic_load_n(counter, __ATOMIC_ACQUIRE) >= want;
}

/* A recorded failure of a state machine: the state it was in and what the
 * op said. */
typedef struct io_fail {
  int state, status;
  int64_t result;
  const char *what;
} io_fail;

static inline void io_fail_print(const char *who, const io_fail *f) {
  fprintf(stderr, "  %s failed in state %d (%s): status %s, result %lld\n", who, f->state,
          f->what ? f->what : "", asyncrt_status_str(f->status), (long long)f->result);
}

#endif
