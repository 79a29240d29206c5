/* The blocking pool (see "Blocking calls and name lookups on the pool" in
 * asyncrt.h): ASYNCRT_IO_OP_BLOCKING runs fn(arg) off the workers, on both
 * backends; the pool grows to pool_threads, queues pool_queue more and
 * refuses the rest with ELIMIT; a queued job is cancelled, a running one
 * finishes; idle threads stop; a close fails the queued jobs and lets the
 * running ones finish; asyncrt_io_prep_getaddrinfo resolves on the pool. */
#include "io_batch.h"

#include <errno.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <sys/socket.h>

/* A job that waits (5 s at most) until the test opens the gate. */
typedef struct gate {
  int open;
  int entered; /* jobs inside fn now or before */
  int64_t value;
} gate;

static int64_t gate_fn(void *arg) {
  gate *g = arg;
  tf_add(&g->entered, 1);
  if (!tf_wait_flag(&g->open, 5000)) return -ETIMEDOUT;
  return g->value;
}

typedef struct where {
  pthread_t thread;
  int64_t ret;
} where;

static int64_t where_fn(void *arg) {
  where *w = arg;
  w->thread = pthread_self();
  return w->ret;
}

static void test_blocking_runs_off_the_worker(void) {
  size_t b;
  for (b = 0; b < IO_NBACKENDS; b++) {
    asyncrt_executor *ex = tf_executor();
    asyncrt_io *io;
    asyncrt_op op;
    where w;
    if (!ex) return;
    if (!io_open_backend(ex, io_backends[b], NULL, &io)) {
      CHECK_OK(asyncrt_executor_free(ex));
      continue;
    }
    /* A local executor runs its tasks on this thread: fn must not. */
    memset(&op, 0, sizeof op);
    w.ret = 42;
    w.thread = pthread_self();
    asyncrt_io_prep_blocking(&op, where_fn, &w);
    CHECK_OK(io_run_op(ex, io, &op));
    CHECK_INT(op.status, ASYNCRT_OK);
    CHECK_INT(op.result, 42);
    CHECK(!pthread_equal(w.thread, pthread_self()));

    /* A negative return is a failure with that result. */
    memset(&op, 0, sizeof op);
    w.ret = -EIO;
    asyncrt_io_prep_blocking(&op, where_fn, &w);
    CHECK_STATUS(io_run_op(ex, io, &op), ASYNCRT_EOS);
    CHECK_INT(op.status, ASYNCRT_EOS);
    CHECK_INT(op.result, -EIO);

    asyncrt_io_stats s = io_stats(io);
    CHECK_INT(s.pool_jobs, 2);
    CHECK_INT(s.pool_rejected, 0);
    CHECK_INT(s.pool_queued, 0);
    CHECK(s.pool_threads >= 1 && s.pool_threads <= 16);
    CHECK_OK(asyncrt_io_close(io));
    CHECK_OK(asyncrt_executor_free(ex));
  }
}

/* pool_threads 2, pool_queue 1: of four jobs two run, one waits and the
 * fourth is refused at once; the waiting one can be cancelled, a running one
 * cannot (its cancel comes too late: it keeps its result). */
static void test_bounds_and_cancel(void) {
  size_t b;
  int i;
  for (b = 0; b < IO_NBACKENDS; b++) {
    asyncrt_executor *ex = io_threads_executor();
    asyncrt_io_config cfg;
    asyncrt_io *io;
    io_batch batch;
    gate g;
    if (!ex) return;
    asyncrt_io_config_init(&cfg);
    cfg.pool_threads = 2;
    cfg.pool_queue = 1;
    if (!io_open_backend(ex, io_backends[b], &cfg, &io)) {
      CHECK_OK(asyncrt_executor_free(ex));
      continue;
    }
    memset(&g, 0, sizeof g);
    g.value = 7;
    io_batch_init(&batch, io, 4);
    for (i = 0; i < 4; i++) asyncrt_io_prep_blocking(&batch.ops[i], gate_fn, &g);
    CHECK_OK(io_batch_spawn(ex, &batch));
    CHECK(tf_wait_flag(&batch.submitted, 5000));
    for (i = 0; i < 4; i++) CHECK_OK(batch.submit_rc[i]);
    /* Refused inside its submit: complete already. */
    CHECK_INT(asyncrt_op_done(&batch.ops[3]), 1);
    CHECK_INT(batch.ops[3].status, ASYNCRT_ELIMIT);

    CHECK(tf_wait_at_least(&g.entered, 2, 5000));
    CHECK(IO_WAIT_STAT(io, pool_threads, 2));
    asyncrt_io_stats s = io_stats(io);
    CHECK_INT(s.pool_queued, 1);
    CHECK_INT(s.pool_rejected, 1);
    CHECK_INT(s.pool_jobs, 0);

    /* The queued one (the third) goes at once; the first runs on. */
    CHECK_OK(asyncrt_op_cancel(&batch.ops[2]));
    CHECK_OK(asyncrt_op_cancel(&batch.ops[0]));
    CHECK(io_op_wait(&batch.ops[2]));
    CHECK_INT(batch.ops[2].status, ASYNCRT_ECANCELLED);
    CHECK_INT(batch.ops[2].result, -ECANCELED);
    CHECK_INT(io_stats(io).pool_queued, 0);
    CHECK_INT(tf_get(&g.entered), 2); /* it never ran */

    tf_set(&g.open, 1);
    CHECK(io_batch_wait(&batch));
    CHECK_PASSED();
    for (i = 0; i < 2; i++) {
      CHECK_INT(batch.ops[i].status, ASYNCRT_OK);
      CHECK_INT(batch.ops[i].result, 7);
    }
    s = io_stats(io);
    CHECK_INT(s.pool_jobs, 2);
    CHECK_INT(s.pool_rejected, 1);
    CHECK_INT(s.in_flight, 0);
    CHECK_OK(asyncrt_io_close(io));
    CHECK_OK(asyncrt_executor_free(ex));
  }
}

/* The pool grows to pool_threads and no further; the rest wait in turn. */
static void test_grows_to_the_bound(void) {
  size_t b;
  int i;
  for (b = 0; b < IO_NBACKENDS; b++) {
    asyncrt_executor *ex = io_threads_executor();
    asyncrt_io_config cfg;
    asyncrt_io *io;
    io_batch batch;
    gate g;
    if (!ex) return;
    asyncrt_io_config_init(&cfg);
    cfg.pool_threads = 3;
    cfg.pool_queue = 16;
    if (!io_open_backend(ex, io_backends[b], &cfg, &io)) {
      CHECK_OK(asyncrt_executor_free(ex));
      continue;
    }
    memset(&g, 0, sizeof g);
    g.value = 1;
    io_batch_init(&batch, io, 8);
    for (i = 0; i < 8; i++) asyncrt_io_prep_blocking(&batch.ops[i], gate_fn, &g);
    CHECK_OK(io_batch_spawn(ex, &batch));
    CHECK(tf_wait_at_least(&g.entered, 3, 5000));
    CHECK(IO_WAIT_STAT(io, pool_queued, 5));
    CHECK_INT(io_stats(io).pool_threads, 3);
    CHECK_INT(tf_get(&g.entered), 3);
    tf_set(&g.open, 1);
    CHECK(io_batch_wait(&batch));
    CHECK_PASSED();
    for (i = 0; i < 8; i++) CHECK_INT(batch.ops[i].result, 1);
    CHECK_INT(io_stats(io).pool_jobs, 8);
    CHECK_INT(tf_get(&g.entered), 8);
    CHECK_OK(asyncrt_io_close(io));
    CHECK_OK(asyncrt_executor_free(ex));
  }
}

/* Threads idle for pool_idle_ns stop; the next job starts one again. */
static void test_idle_threads_stop(void) {
  size_t b;
  for (b = 0; b < IO_NBACKENDS; b++) {
    asyncrt_executor *ex = tf_executor();
    asyncrt_io_config cfg;
    asyncrt_io *io;
    asyncrt_op op;
    where w;
    if (!ex) return;
    asyncrt_io_config_init(&cfg);
    cfg.pool_idle_ns = 1000000; /* 1 ms */
    if (!io_open_backend(ex, io_backends[b], &cfg, &io)) {
      CHECK_OK(asyncrt_executor_free(ex));
      continue;
    }
    memset(&op, 0, sizeof op);
    w.ret = 1;
    asyncrt_io_prep_blocking(&op, where_fn, &w);
    CHECK_OK(io_run_op(ex, io, &op));
    CHECK(IO_WAIT_STAT(io, pool_threads, 0));
    memset(&op, 0, sizeof op);
    w.ret = 2;
    asyncrt_io_prep_blocking(&op, where_fn, &w);
    CHECK_OK(io_run_op(ex, io, &op));
    CHECK_INT(op.result, 2);
    CHECK_INT(io_stats(io).pool_jobs, 2);
    CHECK_OK(asyncrt_io_close(io));
    CHECK_OK(asyncrt_executor_free(ex));
  }
}

typedef struct closer {
  asyncrt_io *io;
  int rc;
  int finished;
} closer;

static void *close_io(void *arg) {
  closer *c = arg;
  c->rc = asyncrt_io_close(c->io);
  tf_set(&c->finished, 1);
  return NULL;
}

/* A close fails the queued jobs with ECANCELLED at once, and waits for the
 * running one, whose op keeps its result. */
static void test_close_with_jobs(void) {
  size_t b;
  int i;
  for (b = 0; b < IO_NBACKENDS; b++) {
    asyncrt_executor *ex = io_threads_executor();
    asyncrt_io_config cfg;
    io_batch batch;
    closer c;
    pthread_t th;
    gate g;
    if (!ex) return;
    asyncrt_io_config_init(&cfg);
    cfg.pool_threads = 1;
    memset(&c, 0, sizeof c);
    if (!io_open_backend(ex, io_backends[b], &cfg, &c.io)) {
      CHECK_OK(asyncrt_executor_free(ex));
      continue;
    }
    memset(&g, 0, sizeof g);
    g.value = 5;
    io_batch_init(&batch, c.io, 3);
    for (i = 0; i < 3; i++) asyncrt_io_prep_blocking(&batch.ops[i], gate_fn, &g);
    CHECK_OK(io_batch_spawn(ex, &batch));
    CHECK(tf_wait_at_least(&g.entered, 1, 5000));
    CHECK(IO_WAIT_STAT(c.io, pool_queued, 2));
    CHECK_INT(pthread_create(&th, NULL, close_io, &c), 0);
    CHECK(io_op_wait(&batch.ops[1]));
    CHECK(io_op_wait(&batch.ops[2]));
    CHECK_INT(batch.ops[1].status, ASYNCRT_ECANCELLED);
    CHECK_INT(batch.ops[2].status, ASYNCRT_ECANCELLED);
    CHECK_INT(tf_get(&c.finished), 0); /* still waiting for the running job */
    tf_set(&g.open, 1);
    CHECK_INT(pthread_join(th, NULL), 0);
    CHECK_OK(c.rc);
    CHECK(io_batch_wait(&batch));
    CHECK_INT(batch.ops[0].status, ASYNCRT_OK);
    CHECK_INT(batch.ops[0].result, 5);
    CHECK_INT(tf_get(&g.entered), 1);
    CHECK_OK(asyncrt_executor_free(ex));
  }
}

static void test_getaddrinfo(void) {
  size_t b;
  for (b = 0; b < IO_NBACKENDS; b++) {
    asyncrt_executor *ex = tf_executor();
    asyncrt_io *io;
    asyncrt_io_addrinfo req;
    asyncrt_op op;
    if (!ex) return;
    if (!io_open_backend(ex, io_backends[b], NULL, &io)) {
      CHECK_OK(asyncrt_executor_free(ex));
      continue;
    }
    /* A numeric address: no name service involved. */
    memset(&req, 0, sizeof req);
    memset(&op, 0, sizeof op);
    req.host = "127.0.0.1";
    req.port = 8080;
    req.family = AF_INET;
    asyncrt_io_prep_getaddrinfo(&op, &req);
    CHECK_OK(io_run_op(ex, io, &op));
    CHECK_INT(op.result, (int64_t)sizeof(struct sockaddr_in));
    CHECK_INT(req.addrlen, sizeof(struct sockaddr_in));
    {
      const struct sockaddr_in *sin = (const struct sockaddr_in *)(const void *)req.addr;
      CHECK_INT(sin->sin_family, AF_INET);
      CHECK_INT(ntohs(sin->sin_port), 8080);
      CHECK_INT(ntohl(sin->sin_addr.s_addr), INADDR_LOOPBACK);
    }

    /* "localhost" comes from /etc/hosts: a loopback address of either family. */
    memset(&req, 0, sizeof req);
    memset(&op, 0, sizeof op);
    req.host = "localhost";
    req.port = 53;
    asyncrt_io_prep_getaddrinfo(&op, &req);
    CHECK_OK(io_run_op(ex, io, &op));
    CHECK(op.result > 0 && (uint32_t)op.result == req.addrlen);
    {
      const struct sockaddr *sa = (const struct sockaddr *)(const void *)req.addr;
      if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *sin = (const struct sockaddr_in *)(const void *)req.addr;
        CHECK_INT(ntohs(sin->sin_port), 53);
        CHECK_INT(ntohl(sin->sin_addr.s_addr) >> 24, 127);
      } else {
        const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)(const void *)req.addr;
        CHECK_INT(sa->sa_family, AF_INET6);
        CHECK_INT(ntohs(sin6->sin6_port), 53);
        CHECK(IN6_IS_ADDR_LOOPBACK(&sin6->sin6_addr));
      }
    }

    /* A family getaddrinfo does not know: EAI_FAMILY, as -EINVAL. */
    memset(&req, 0, sizeof req);
    memset(&op, 0, sizeof op);
    req.host = "127.0.0.1";
    req.family = 12345;
    asyncrt_io_prep_getaddrinfo(&op, &req);
    CHECK_STATUS(io_run_op(ex, io, &op), ASYNCRT_EOS);
    CHECK_INT(op.result, -EINVAL);
    CHECK_INT(io_stats(io).pool_jobs, 3);
    CHECK_OK(asyncrt_io_close(io));
    CHECK_OK(asyncrt_executor_free(ex));
  }
}

int main(void) {
  CHECK_BEGIN();
  RUN(test_blocking_runs_off_the_worker);
  RUN(test_bounds_and_cancel);
  RUN(test_grows_to_the_bound);
  RUN(test_idle_threads_stop);
  RUN(test_close_with_jobs);
  RUN(test_getaddrinfo);
  return CHECK_END("io_pool");
}
