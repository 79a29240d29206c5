/*
 * io_batch.h -- what the blocking-pool, file, process and signal tests share:
 * a loop over the IO backends, and a task that submits a batch of ops in its
 * first poll and finishes once every one is complete.
 *
 * io_batch is the data plane's way of using ops (asyncrt_io_submit from a
 * poll, asyncrt_op_poll until READY), so a test can hold several in flight,
 * look at the driver's counters meanwhile, and cancel one from its own
 * thread (asyncrt_op_cancel works from any thread).
 */
#ifndef ASYNCRT_TEST_IO_BATCH_H
#define ASYNCRT_TEST_IO_BATCH_H

#include "check.h"
#include "testfut.h"

#include <stdio.h>
#include <string.h>

#define IO_BATCH_MAX 16

typedef struct io_batch {
  asyncrt_io *io;
  asyncrt_op ops[IO_BATCH_MAX];
  int n;
  int submit_rc[IO_BATCH_MAX];
  int submitted; /* set (tf_set) once every op was submitted */
  int done;      /* set once every op is complete */
  int polls;
  pthread_t poll_thread;
} io_batch;

static inline void io_batch_init(io_batch *b, asyncrt_io *io, int n) {
  memset(b, 0, sizeof *b);
  b->io = io;
  b->n = n;
}

static inline int io_batch_poll(void *self, asyncrt_context *cx, void *out) {
  io_batch *b = (io_batch *)self;
  int i, all = 1;
  (void)out;
  b->poll_thread = pthread_self();
  tf_add(&b->polls, 1);
  if (!tf_get(&b->submitted)) {
    for (i = 0; i < b->n; i++) b->submit_rc[i] = asyncrt_io_submit(cx, b->io, &b->ops[i]);
    tf_set(&b->submitted, 1);
  }
  for (i = 0; i < b->n; i++)
    if (b->submit_rc[i] == ASYNCRT_OK && asyncrt_op_poll(&b->ops[i], cx) == ASYNCRT_POLL_PENDING) all = 0;
  if (!all) return ASYNCRT_POLL_PENDING;
  tf_set(&b->done, 1);
  return ASYNCRT_POLL_READY;
}

static inline void io_batch_drop(void *self) { (void)self; }

static const asyncrt_future_vtable io_batch_vtable = {sizeof(asyncrt_future_vtable), 0, io_batch_poll,
                                                      io_batch_drop, NULL};

static inline asyncrt_future io_batch_future(io_batch *b) {
  asyncrt_future f;
  f.self = b;
  f.vtable = &io_batch_vtable;
  return f;
}

/* Spawns the batch as a task of ex (detached). */
static inline int io_batch_spawn(asyncrt_executor *ex, io_batch *b) {
  asyncrt_future f = io_batch_future(b);
  return asyncrt_spawn(ex, &f, 0, NULL);
}

/* Waits (5 s at most) for a spawned batch to finish; 1 if it did. */
static inline int io_batch_wait(io_batch *b) {
  if (tf_wait_flag(&b->done, 5000)) return 1;
  fprintf(stderr, "  the batch did not finish within 5 s\n");
  return 0;
}

/* A thread-per-core executor with one worker: batches run there while the
 * test's thread looks on. */
static inline asyncrt_executor *io_threads_executor(void) {
  asyncrt_executor_config cfg;
  asyncrt_executor *ex = NULL;
  asyncrt_executor_config_init(&cfg);
  cfg.kind = ASYNCRT_EXECUTOR_THREADS;
  cfg.workers = 1;
  if (asyncrt_executor_new(&cfg, &ex) != ASYNCRT_OK) {
    fprintf(stderr, "  asyncrt_executor_new: %s\n", asyncrt_last_error());
    return NULL;
  }
  return ex;
}

/* Waits (5 s at most) for an op to be complete; 1 if it is. */
static inline int io_op_wait(const asyncrt_op *op) {
  int64_t until = tf_now_ns() + TF_TIMEOUT_NS;
  while (!asyncrt_op_done(op)) {
    if (tf_now_ns() > until) {
      fprintf(stderr, "  an op was not complete within 5 s\n");
      return 0;
    }
    tf_sleep_ms(1);
  }
  return 1;
}

/* Runs the batch to its end on ex (block_on): ASYNCRT_OK or the failure. */
static inline int io_batch_run(asyncrt_executor *ex, io_batch *b) {
  asyncrt_future f = io_batch_future(b);
  return asyncrt_block_on(ex, &f, NULL, TF_TIMEOUT_NS);
}

/* One op, to its end: prepares nothing (the caller did), returns the
 * block_on status; op->status and op->result say how it went. */
static inline int io_run_op(asyncrt_executor *ex, asyncrt_io *io, asyncrt_op *op) {
  asyncrt_io_future_state st;
  asyncrt_future f;
  int64_t out = 0;
  int rc = asyncrt_io_future(&st, io, op, &f);
  if (rc != ASYNCRT_OK) return rc;
  return asyncrt_block_on(ex, &f, &out, TF_TIMEOUT_NS);
}

/* Counters of a driver; all-ones on failure. */
static inline asyncrt_io_stats io_stats(asyncrt_io *io) {
  asyncrt_io_stats s;
  memset(&s, 0, sizeof s);
  s.size = sizeof s;
  if (asyncrt_io_stats_get(io, &s) != ASYNCRT_OK) memset(&s, 0xff, sizeof s);
  return s;
}

/* Waits until field(io_stats(io)) == want, at most 5 s; 1 if it got there. */
#define IO_WAIT_STAT(io, field, want)                                                              \
  io_wait_stat((io), offsetof(asyncrt_io_stats, field), (uint64_t)(want))
static inline int io_wait_stat(asyncrt_io *io, size_t offset, uint64_t want) {
  int64_t until = tf_now_ns() + TF_TIMEOUT_NS;
  for (;;) {
    asyncrt_io_stats s = io_stats(io);
    uint64_t got;
    memcpy(&got, (const char *)&s + offset, sizeof got);
    if (got == want) return 1;
    if (tf_now_ns() > until) {
      fprintf(stderr, "  a counter at offset %zu is %llu, not %llu, after 5 s\n", offset,
              (unsigned long long)got, (unsigned long long)want);
      return 0;
    }
    tf_sleep_ms(1);
  }
}

/* The backends every IO test runs on. */
static const unsigned io_backends[] = {ASYNCRT_IO_EPOLL, ASYNCRT_IO_URING};
#define IO_NBACKENDS (sizeof io_backends / sizeof io_backends[0])

/* Opens a driver of `backend` on ex with cfg (NULL: defaults). Returns 1 with
 * *io set; 0 if the backend is refused here (io_uring not built in, or the
 * kernel says no: a message says so, the test goes on with the next); a
 * failure of anything else fails the test. */
static inline int io_open_backend(asyncrt_executor *ex, unsigned backend, asyncrt_io_config *cfg,
                                  asyncrt_io **io) {
  asyncrt_io_config c;
  int rc;
  if (!cfg) {
    asyncrt_io_config_init(&c);
    cfg = &c;
  }
  cfg->backend = backend;
  *io = NULL;
  rc = asyncrt_io_open(ex, cfg, io);
  if (rc == ASYNCRT_ENOTSUP && backend == ASYNCRT_IO_URING) {
    printf("       (skipping io_uring: %s)\n", asyncrt_last_error());
    return 0;
  }
  if (rc != ASYNCRT_OK) {
    check_fail_at(__FILE__, __LINE__);
    fprintf(stderr, "asyncrt_io_open(%s): %s\n", asyncrt_io_backend_name(backend), asyncrt_last_error());
    return 0;
  }
  return 1;
}

/* A failed check inside a helper that returns a value: the test fails, the
 * helper returns `ret`. */
#define CHECK_OR(cond, ret)                                                                        \
  do {                                                                                             \
    if (!(cond)) {                                                                                 \
      check_fail_at(__FILE__, __LINE__);                                                           \
      fprintf(stderr, "CHECK(%s) is false\n", #cond);                                              \
      return ret;                                                                                  \
    }                                                                                              \
  } while (0)

#endif /* ASYNCRT_TEST_IO_BATCH_H */
