/* IO drivers (asyncrt 0.7), on every backend: opening and closing (also by
 * the executor's free, with ops in flight), misuse (NULL, dead handles,
 * unknown opcodes, submits outside a poll), NOP, TIMEOUT (order, cancel),
 * POLL, pipes with READ/WRITE/READV/WRITEV, SHUTDOWN, CLOSE of an fd with
 * an op waiting on it, cancellation of an in-flight read (the task is
 * dropped once, after its op completed, and its buffer is not touched
 * afterwards), the counters, and the synchronous socket helpers. Nothing
 * is timed; every wait is bounded. */
#define _GNU_SOURCE
#include "iotest.h" /* first: check.h sets the feature macros it needs */
#include "testfut.h"

#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/uio.h>

/* ---- op_task: a task that awaits one op the test prepared ------------------------ */

typedef struct op_task {
  asyncrt_io *io;
  io_step st; /* st.op prepared by the test (zeroed first) */
  int submitted, polls, drops;
  int drop_done, drop_status;
  int64_t drop_result;
  int *log, *log_n, tag; /* optional: the order of completions */
} op_task;

static int op_task_poll(void *self, asyncrt_context *cx, void *out) {
  op_task *t = self;
  int rc = 0, r;
  (void)out;
  tf_add(&t->polls, 1);
  r = io_step_poll(&t->st, cx, t->io, &rc);
  if (r < 0) {
    asyncrt_context_fail(cx, rc);
    return ASYNCRT_POLL_ERROR;
  }
  if (r == 0) {
    tf_set(&t->submitted, 1);
    return ASYNCRT_POLL_PENDING;
  }
  if (t->log) t->log[(*t->log_n)++] = t->tag;
  if (t->st.op.status != ASYNCRT_OK) {
    asyncrt_context_fail(cx, t->st.op.status);
    return ASYNCRT_POLL_ERROR;
  }
  return ASYNCRT_POLL_READY;
}

static void op_task_drop(void *self) {
  op_task *t = self;
  t->drop_done = asyncrt_op_done(&t->st.op);
  t->drop_status = t->st.op.status;
  t->drop_result = t->st.op.result;
  tf_add(&t->drops, 1);
}

static const asyncrt_future_vtable op_task_vtable = {
    .size = sizeof(asyncrt_future_vtable), .poll = op_task_poll, .drop = op_task_drop};

static op_task *op_task_new(asyncrt_io *io) {
  op_task *t = calloc(1, sizeof *t);
  if (t) t->io = io;
  return t;
}

static int op_task_spawn(asyncrt_executor *ex, op_task *t, asyncrt_task **out) {
  asyncrt_future f = {t, &op_task_vtable};
  return asyncrt_spawn(ex, &f, ASYNCRT_SPAWN_LOCAL, out);
}

/* One prepared op awaited through asyncrt_io_future on v: the status, the
 * result in *res. */
static int one_op(io_env *v, asyncrt_op *op, int64_t *res) {
  asyncrt_io_future_state *st = calloc(1, sizeof *st);
  asyncrt_future f;
  int64_t out = -1;
  int rc;
  if (!st) return ASYNCRT_ENOMEM;
  if ((rc = asyncrt_io_future(st, v->io, op, &f))) return rc;
  rc = asyncrt_block_on(v->ex, &f, &out, IO_WAIT_NS);
  if (res) *res = rc == ASYNCRT_OK ? out : op->result;
  free(st);
  return rc;
}

/* Lets the executor run its tasks and ticks for a while. */
static int turn(io_env *v) { return yield_until(v, NULL, 300); }

/* Waits until the task t submitted its op (bounded). */
static int wait_submitted(io_env *v, op_task *t) {
  for (int i = 0; i < 1000 && !tf_get(&t->submitted); i++) {
    if (yield_until(v, &t->submitted, 1000) != ASYNCRT_OK) return 0;
    if (v->threads && !tf_get(&t->submitted)) tf_sleep_ms(1);
  }
  return tf_get(&t->submitted);
}

/* ---- opening, closing, misuse -------------------------------------------------------- */

static void test_open_close_misuse(void) {
  asyncrt_executor *ex;
  asyncrt_io *io = NULL, *io2 = NULL;
  asyncrt_io_config cfg;
  CHECK(asyncrt_io_backend_name(ASYNCRT_IO_EPOLL) && !strcmp(asyncrt_io_backend_name(ASYNCRT_IO_EPOLL), "epoll"));
  CHECK(!strcmp(asyncrt_io_backend_name(ASYNCRT_IO_URING), "io_uring"));
  CHECK(!strcmp(asyncrt_io_backend_name(ASYNCRT_IO_AUTO), "auto"));
  CHECK(asyncrt_io_backend_name(9) == NULL);
  ex = tf_executor();
  CHECK(ex != NULL);
  CHECK_STATUS(asyncrt_io_open(NULL, NULL, &io), ASYNCRT_EINVAL);
  CHECK_STATUS(asyncrt_io_open(ex, NULL, NULL), ASYNCRT_EINVAL);
  asyncrt_io_config_init(&cfg);
  CHECK_INT(cfg.size, sizeof cfg);
  CHECK_INT(cfg.backend, ASYNCRT_IO_AUTO);
  CHECK_INT(cfg.ring_entries, 256);
  cfg.backend = 7;
  CHECK_STATUS(asyncrt_io_open(ex, &cfg, &io), ASYNCRT_EINVAL);
  asyncrt_io_config_init(&cfg);
  cfg.ring_entries = 3;
  CHECK_STATUS(asyncrt_io_open(ex, &cfg, &io), ASYNCRT_EINVAL);
  asyncrt_io_config_init(&cfg);
  cfg.size = 8;
  CHECK_STATUS(asyncrt_io_open(ex, &cfg, &io), ASYNCRT_EINVAL);
  CHECK(io == NULL);
  /* ASYNCRT_IO decides for AUTO, and only for AUTO. */
  setenv("ASYNCRT_IO", "bogus", 1);
  CHECK_STATUS(asyncrt_io_open(ex, NULL, &io), ASYNCRT_EINVAL);
  setenv("ASYNCRT_IO", "epoll", 1);
  CHECK_OK(asyncrt_io_open(ex, NULL, &io));
  CHECK_INT(asyncrt_io_backend(io), ASYNCRT_IO_EPOLL);
  asyncrt_io_config_init(&cfg);
  cfg.backend = ASYNCRT_IO_EPOLL;
  setenv("ASYNCRT_IO", "io_uring", 1);
  CHECK_OK(asyncrt_io_open(ex, &cfg, &io2)); /* explicit: the variable does not apply */
  CHECK_INT(asyncrt_io_backend(io2), ASYNCRT_IO_EPOLL);
  unsetenv("ASYNCRT_IO");
  /* AUTO: io_uring, or epoll where it is refused; either way one that runs. */
  asyncrt_io *io3;
  CHECK_OK(asyncrt_io_open(ex, NULL, &io3));
  CHECK(asyncrt_io_backend(io3) == ASYNCRT_IO_EPOLL || asyncrt_io_backend(io3) == ASYNCRT_IO_URING);
  printf("  auto chose %s\n", asyncrt_io_backend_name((unsigned)asyncrt_io_backend(io3)));
  CHECK_OK(asyncrt_io_close(io3));
  int fd = -1;
  CHECK_OK(asyncrt_io_fd(io, &fd));
  CHECK(fd >= 0);
  CHECK_STATUS(asyncrt_io_fd(io, NULL), ASYNCRT_EINVAL);
  asyncrt_io_stats st = {.size = sizeof st};
  CHECK_OK(asyncrt_io_stats_get(io, &st));
  CHECK_INT(st.workers, 1);
  CHECK_INT(st.submits, 0);
  CHECK_STATUS(asyncrt_io_stats_get(io, NULL), ASYNCRT_EINVAL);
  st.size = 4;
  CHECK_STATUS(asyncrt_io_stats_get(io, &st), ASYNCRT_EINVAL);
  /* Closing: once; after that every use is EHANDLE. */
  CHECK_STATUS(asyncrt_io_close(NULL), ASYNCRT_EINVAL);
  CHECK_OK(asyncrt_io_close(io));
  CHECK_STATUS(asyncrt_io_close(io), ASYNCRT_EHANDLE);
  CHECK_INT(asyncrt_io_backend(io), -ASYNCRT_EHANDLE);
  CHECK_INT(asyncrt_io_backend(NULL), -ASYNCRT_EINVAL);
  CHECK_STATUS(asyncrt_io_stats_get(io, &st), ASYNCRT_EHANDLE);
  CHECK_STATUS(asyncrt_io_close((asyncrt_io *)(uintptr_t)0x12345678), ASYNCRT_EHANDLE);
  /* The executor's free closes the driver left open. */
  CHECK_OK(asyncrt_executor_free(ex));
  CHECK_INT(asyncrt_io_backend(io2), -ASYNCRT_EHANDLE);
  CHECK_STATUS(asyncrt_io_close(io2), ASYNCRT_EHANDLE);
}

/* A future whose poll makes one call of the API with its context, as a
 * task of `ex` would, and records the status. */
typedef struct probe {
  asyncrt_io *io;
  asyncrt_op op;
  int what; /* 0: submit; 1: close from inside a poll; 2: submit twice */
  int status, status2;
} probe;

static int probe_poll(void *self, asyncrt_context *cx, void *out) {
  probe *p = self;
  (void)out;
  if (p->what == 1) {
    p->status = asyncrt_io_close(p->io);
    return ASYNCRT_POLL_READY;
  }
  p->status = asyncrt_io_submit(cx, p->io, &p->op);
  if (p->what == 2 && p->status == ASYNCRT_OK) {
    p->status2 = asyncrt_io_submit(cx, p->io, &p->op);
    asyncrt_op_cancel(&p->op);
    if (!asyncrt_op_done(&p->op)) return ASYNCRT_POLL_PENDING; /* woken at its completion */
  }
  return ASYNCRT_POLL_READY;
}

static void probe_drop(void *self) { (void)self; }
static const asyncrt_future_vtable probe_vtable = {
    .size = sizeof(asyncrt_future_vtable), .poll = probe_poll, .drop = probe_drop};

static void noop_wake(const void *d) { (void)d; }
static void noop_clone(const void *d, asyncrt_waker *out);
static const asyncrt_waker_vtable noop_waker_vtable = {noop_clone, noop_wake, noop_wake, noop_wake};
static void noop_clone(const void *d, asyncrt_waker *out) { *out = (asyncrt_waker){d, &noop_waker_vtable}; }

static void misuse(io_env *v) {
  probe p;
  asyncrt_future f = {&p, &probe_vtable};
  asyncrt_op op;
  memset(&op, 0, sizeof op);
  asyncrt_io_prep_nop(&op);
  CHECK_STATUS(asyncrt_io_submit(NULL, v->io, &op), ASYNCRT_EINVAL);
  /* From a poll outside any executor (asyncrt_poll_with_waker): ENOTSUP. */
  memset(&p, 0, sizeof p);
  p.io = v->io;
  asyncrt_io_prep_nop(&p.op);
  asyncrt_waker w = {NULL, &noop_waker_vtable};
  CHECK_INT(asyncrt_poll_with_waker(&f, &w, NULL, NULL), ASYNCRT_POLL_READY);
  CHECK_STATUS(p.status, ASYNCRT_ENOTSUP);
  /* Unknown opcodes. */
  memset(&p, 0, sizeof p);
  p.io = v->io;
  p.op.opcode = 0;
  CHECK_OK(io_run(v, f, NULL));
  CHECK_STATUS(p.status, ASYNCRT_EINVAL);
  memset(&p, 0, sizeof p);
  p.io = v->io;
  p.op.opcode = 99;
  CHECK_OK(io_run(v, f, NULL));
  CHECK_STATUS(p.status, ASYNCRT_EINVAL);
  /* An op already in flight (a read that waits) cannot be submitted again. */
  int fds[2];
  char b;
  CHECK_OK(asyncrt_pipe(fds));
  memset(&p, 0, sizeof p);
  p.io = v->io;
  p.what = 2;
  asyncrt_io_prep_read(&p.op, fds[0], &b, 1, -1);
  CHECK_OK(io_run(v, f, NULL));
  CHECK_OK(p.status);
  CHECK_STATUS(p.status2, ASYNCRT_EINVAL);
  CHECK_INT(p.op.status, ASYNCRT_ECANCELLED);
  CHECK_INT(p.op.result, -ECANCELED);
  close(fds[0]);
  close(fds[1]);
  /* Closing from inside a poll. */
  memset(&p, 0, sizeof p);
  p.io = v->io;
  p.what = 1;
  CHECK_OK(io_run(v, f, NULL));
  CHECK_STATUS(p.status, ASYNCRT_EREENTRANT);
  /* A task of another executor: ENOTSUP. */
  asyncrt_executor *other = tf_executor();
  CHECK(other != NULL);
  memset(&p, 0, sizeof p);
  p.io = v->io;
  asyncrt_io_prep_nop(&p.op);
  CHECK_OK(asyncrt_block_on(other, &f, NULL, IO_WAIT_NS));
  CHECK_STATUS(p.status, ASYNCRT_ENOTSUP);
  CHECK_OK(asyncrt_executor_free(other));
  /* A dead driver: EHANDLE. */
  asyncrt_io *dead;
  CHECK_OK(asyncrt_io_open(v->ex, NULL, &dead));
  CHECK_OK(asyncrt_io_close(dead));
  memset(&p, 0, sizeof p);
  p.io = dead;
  asyncrt_io_prep_nop(&p.op);
  CHECK_OK(io_run(v, f, NULL));
  CHECK_STATUS(p.status, ASYNCRT_EHANDLE);
  /* The io future: a failing submit fails the future with its status. */
  asyncrt_io_future_state st;
  asyncrt_future iof;
  CHECK_STATUS(asyncrt_io_future(NULL, v->io, &op, &iof), ASYNCRT_EINVAL);
  CHECK_OK(asyncrt_io_future(&st, dead, &op, &iof));
  CHECK_STATUS(asyncrt_block_on(v->ex, &iof, &(int64_t){0}, IO_WAIT_NS), ASYNCRT_EHANDLE);
}

static void test_misuse(void) {
  io_env v;
  FOR_EACH_BACKEND(v, 0, misuse);
  FOR_EACH_BACKEND(v, 2, misuse);
}

/* ---- simple ops ----------------------------------------------------------------------- */

static void simple_ops(io_env *v) {
  asyncrt_op op;
  int64_t res = -1;
  int fds[2];
  /* NOP */
  memset(&op, 0, sizeof op);
  asyncrt_io_prep_nop(&op);
  CHECK_OK(one_op(v, &op, &res));
  CHECK_INT(res, 0);
  CHECK_INT(op.status, ASYNCRT_OK);
  /* A bad fd: EOS with -EBADF. */
  memset(&op, 0, sizeof op);
  char c;
  asyncrt_io_prep_read(&op, -1, &c, 1, -1);
  CHECK_STATUS(one_op(v, &op, &res), ASYNCRT_EOS);
  CHECK_INT(res, -EBADF);
  memset(&op, 0, sizeof op);
  asyncrt_io_prep_recv(&op, 1 << 20, &c, 1, 0);
  CHECK_STATUS(one_op(v, &op, &res), ASYNCRT_EOS);
  CHECK_INT(res, -EBADF);
  /* Pipes: the read waits for the write. */
  CHECK_OK(asyncrt_pipe(fds));
  char in[8] = {0};
  op_task *r = op_task_new(v->io);
  CHECK(r);
  asyncrt_io_prep_read(&r->st.op, fds[0], in, sizeof in, -1);
  asyncrt_task *rt;
  CHECK_OK(op_task_spawn(v->ex, r, &rt));
  CHECK(wait_submitted(v, r));
  memset(&op, 0, sizeof op);
  asyncrt_io_prep_write(&op, fds[1], "pipe", 4, -1);
  CHECK_OK(one_op(v, &op, &res));
  CHECK_INT(res, 4);
  CHECK_OK(io_join(v, rt));
  CHECK_INT(r->st.op.result, 4);
  CHECK(memcmp(in, "pipe", 4) == 0);
  CHECK_INT(r->drops, 1);
  /* READV / WRITEV */
  char a[3] = "ab", b2[4] = "cde", x[2], y[5];
  struct iovec wv[2] = {{a, 2}, {b2, 3}}, rv[2] = {{x, 2}, {y, 5}};
  memset(&op, 0, sizeof op);
  asyncrt_io_prep_writev(&op, fds[1], wv, 2, -1);
  CHECK_OK(one_op(v, &op, &res));
  CHECK_INT(res, 5);
  memset(&op, 0, sizeof op);
  asyncrt_io_prep_readv(&op, fds[0], rv, 2, -1);
  CHECK_OK(one_op(v, &op, &res));
  CHECK_INT(res, 5);
  CHECK(memcmp(x, "ab", 2) == 0 && memcmp(y, "cde", 3) == 0);
  /* POLL: waits for readability, says what is ready. */
  op_task *p = op_task_new(v->io);
  CHECK(p);
  asyncrt_io_prep_poll(&p->st.op, fds[0], POLLIN);
  asyncrt_task *pt;
  CHECK_OK(op_task_spawn(v->ex, p, &pt));
  CHECK(wait_submitted(v, p));
  CHECK_INT(tf_get(&p->drops), 0);
  CHECK(write(fds[1], "z", 1) == 1);
  CHECK_OK(io_join(v, pt));
  CHECK((p->st.op.result & POLLIN) != 0);
  /* POLL for writability of the write end: ready at once. */
  memset(&op, 0, sizeof op);
  asyncrt_io_prep_poll(&op, fds[1], POLLOUT);
  CHECK_OK(one_op(v, &op, &res));
  CHECK(res & POLLOUT);
  /* End of stream: the writer closes (through CLOSE), the reader gets 0
   * (after the byte still in the pipe). */
  memset(&op, 0, sizeof op);
  asyncrt_io_prep_close(&op, fds[1]);
  CHECK_OK(one_op(v, &op, &res));
  CHECK_INT(res, 0);
  memset(&op, 0, sizeof op);
  asyncrt_io_prep_read(&op, fds[0], in, sizeof in, -1);
  CHECK_OK(one_op(v, &op, &res));
  CHECK_INT(res, 1);
  memset(&op, 0, sizeof op);
  asyncrt_io_prep_read(&op, fds[0], in, sizeof in, -1);
  CHECK_OK(one_op(v, &op, &res));
  CHECK_INT(res, 0);
  close(fds[0]);
  free(r);
  free(p);
}

static void test_simple_ops(void) {
  io_env v;
  FOR_EACH_BACKEND(v, 0, simple_ops);
  FOR_EACH_BACKEND(v, 2, simple_ops);
}

/* ---- SHUTDOWN, and CLOSE of an fd an op waits on ------------------------------------- */

static void shutdown_and_close(io_env *v) {
  int sv[2];
  asyncrt_op op;
  int64_t res = 0;
  char buf[4];
  CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) == 0);
  /* A read waits on sv[0]; SHUTDOWN of sv[1]'s writing ends it with 0. */
  op_task *r = op_task_new(v->io);
  CHECK(r);
  asyncrt_io_prep_recv(&r->st.op, sv[0], buf, sizeof buf, 0);
  asyncrt_task *rt;
  CHECK_OK(op_task_spawn(v->ex, r, &rt));
  CHECK(wait_submitted(v, r));
  memset(&op, 0, sizeof op);
  asyncrt_io_prep_shutdown(&op, sv[1], SHUT_WR);
  CHECK_OK(one_op(v, &op, &res));
  CHECK_INT(res, 0);
  CHECK_OK(io_join(v, rt));
  CHECK_INT(r->st.op.result, 0);
  free(r);
  /* A read waits on sv[1]; CLOSE of sv[1] on the same driver ends it with
   * -EBADF (epoll forgets the fd; io_uring cancels or fails the read). */
  if (!v->threads) {
    r = op_task_new(v->io);
    CHECK(r);
    asyncrt_io_prep_recv(&r->st.op, sv[1], buf, sizeof buf, 0);
    CHECK_OK(op_task_spawn(v->ex, r, &rt));
    CHECK(wait_submitted(v, r));
    memset(&op, 0, sizeof op);
    asyncrt_io_prep_close(&op, sv[1]);
    CHECK_OK(one_op(v, &op, &res));
    int st = io_join(v, rt);
    CHECK(st == ASYNCRT_EOS || st == ASYNCRT_ECANCELLED);
    CHECK(r->st.op.result == -EBADF || r->st.op.result == -ECANCELED);
    free(r);
  } else {
    close(sv[1]);
  }
  close(sv[0]);
}

static void test_shutdown_and_close(void) {
  io_env v;
  FOR_EACH_BACKEND(v, 0, shutdown_and_close);
  FOR_EACH_BACKEND(v, 2, shutdown_and_close);
}

/* ---- timeouts ----------------------------------------------------------------------------- */

static void timeouts(io_env *v) {
  int log[3], n = 0;
  static const uint64_t ms[3] = {30, 10, 20};
  op_task *t[3];
  asyncrt_task *h[3];
  /* Spawned in the order 30, 10, 20 ms; complete in the order of their
   * deadlines. Local executor only: the log is not shared across threads. */
  for (int i = 0; i < 3; i++) {
    t[i] = op_task_new(v->io);
    CHECK(t[i]);
    t[i]->log = log;
    t[i]->log_n = &n;
    t[i]->tag = (int)ms[i];
    asyncrt_io_prep_timeout(&t[i]->st.op, ms[i] * 1000000u);
    CHECK_OK(op_task_spawn(v->ex, t[i], &h[i]));
  }
  for (int i = 0; i < 3; i++) CHECK_OK(io_join(v, h[i]));
  CHECK_INT(n, 3);
  CHECK_INT(log[0], 10);
  CHECK_INT(log[1], 20);
  CHECK_INT(log[2], 30);
  for (int i = 0; i < 3; i++) {
    CHECK_INT(t[i]->st.op.result, 0);
    free(t[i]);
  }
  /* A timeout far away, cancelled with its task. */
  op_task *c = op_task_new(v->io);
  CHECK(c);
  asyncrt_io_prep_timeout(&c->st.op, 3600ull * 1000000000ull);
  asyncrt_task *ch;
  CHECK_OK(op_task_spawn(v->ex, c, &ch));
  CHECK(wait_submitted(v, c));
  CHECK_OK(asyncrt_task_cancel(ch));
  CHECK_STATUS(io_join(v, ch), ASYNCRT_ECANCELLED);
  CHECK_INT(c->drops, 1);
  CHECK_INT(c->drop_done, 1);
  CHECK_INT(c->drop_status, ASYNCRT_ECANCELLED);
  free(c);
}

static void test_timeouts(void) {
  io_env v;
  FOR_EACH_BACKEND(v, 0, timeouts);
}

/* ---- cancelling an in-flight read --------------------------------------------------------- */

#define CANCEL_BUF 64

static void cancel_read(io_env *v) {
  int fds[2];
  unsigned char *buf = malloc(CANCEL_BUF);
  CHECK(buf);
  memset(buf, 0xAA, CANCEL_BUF);
  CHECK_OK(asyncrt_pipe(fds));
  op_task *r = op_task_new(v->io);
  CHECK(r);
  asyncrt_io_prep_read(&r->st.op, fds[0], buf, CANCEL_BUF, -1);
  asyncrt_task *rt;
  CHECK_OK(op_task_spawn(v->ex, r, &rt));
  CHECK(wait_submitted(v, r));
  CHECK_OK(asyncrt_task_cancel(rt));
  CHECK_STATUS(io_join(v, rt), ASYNCRT_ECANCELLED);
  /* Dropped once, after its op had completed as cancelled. */
  CHECK_INT(tf_get(&r->drops), 1);
  CHECK_INT(r->drop_done, 1);
  CHECK_INT(r->drop_status, ASYNCRT_ECANCELLED);
  CHECK_INT(r->drop_result, -ECANCELED);
  /* Data that comes later stays in the pipe: the cancelled read took
   * nothing and wrote nothing into the buffer. */
  CHECK(write(fds[1], "late", 4) == 4);
  CHECK_OK(turn(v));
  char got[8];
  CHECK(read(fds[0], got, sizeof got) == 4);
  CHECK(memcmp(got, "late", 4) == 0);
  for (int i = 0; i < CANCEL_BUF; i++) CHECK_INT(buf[i], 0xAA);
  asyncrt_io_stats st = {.size = sizeof st};
  CHECK_OK(asyncrt_io_stats_get(v->io, &st));
  CHECK(st.cancels >= 1);
  CHECK(st.failures >= 1);
  CHECK_INT(st.in_flight, 0);
  free(r);
  free(buf);
  close(fds[0]);
  close(fds[1]);
}

static void test_cancel_read(void) {
  io_env v;
  FOR_EACH_BACKEND(v, 0, cancel_read);
  FOR_EACH_BACKEND(v, 2, cancel_read);
}

/* ---- the end of a stream after a short read --------------------------------------- */

/* A read waits on an empty pipe; the writer writes 3 bytes and closes
 * before the worker looks again, so epoll reports data and the end in one
 * edge. The read takes the 3 bytes -- short, so on epoll the pipe counts as
 * drained -- and the next read must still see the end of stream at once:
 * no further edge will come for it. */
static void end_after_short_read(io_env *v) {
  int fds[2];
  char buf[64];
  CHECK_OK(asyncrt_pipe(fds));
  op_task *r1 = op_task_new(v->io), *r2 = op_task_new(v->io);
  CHECK(r1 && r2);
  asyncrt_io_prep_read(&r1->st.op, fds[0], buf, sizeof buf, -1);
  asyncrt_task *t1, *t2;
  CHECK_OK(op_task_spawn(v->ex, r1, &t1));
  CHECK(wait_submitted(v, r1));
  CHECK(write(fds[1], "abc", 3) == 3);
  close(fds[1]);
  CHECK_OK(io_join(v, t1));
  CHECK_INT(r1->st.op.result, 3);
  asyncrt_io_prep_read(&r2->st.op, fds[0], buf, sizeof buf, -1);
  CHECK_OK(op_task_spawn(v->ex, r2, &t2));
  CHECK_OK(io_join(v, t2));
  CHECK_INT(r2->st.op.result, 0);
  CHECK_OK(asyncrt_io_close_fd(v->io, fds[0]));
  free(r1);
  free(r2);
}

static void test_end_after_short_read(void) {
  io_env v;
  FOR_EACH_BACKEND(v, 0, end_after_short_read);
  FOR_EACH_BACKEND(v, 2, end_after_short_read);
}

/* ---- asyncrt_io_close_fd: a drop closes an fd whose number comes back --------------- */

/* A read waits on fd N (registered in the epoll set), its task is cancelled
 * and N is closed with asyncrt_io_close_fd, as a drop would; a new pipe's
 * read end is put at N, and a read there must see the data written to it.
 * With a plain close(2) the epoll worker would still think N registered and
 * the second read would wait for an edge that never comes. */
static void close_fd_reuse(io_env *v) {
  int a[2], b[2];
  CHECK_OK(asyncrt_pipe(a));
  int n = a[0];
  op_task *r1 = op_task_new(v->io), *r2 = op_task_new(v->io);
  CHECK(r1 && r2);
  char buf1[8], buf2[8];
  asyncrt_io_prep_read(&r1->st.op, n, buf1, sizeof buf1, -1);
  asyncrt_task *t1, *t2;
  CHECK_OK(op_task_spawn(v->ex, r1, &t1));
  CHECK(wait_submitted(v, r1));
  CHECK_OK(asyncrt_task_cancel(t1));
  CHECK_STATUS(io_join(v, t1), ASYNCRT_ECANCELLED);
  CHECK_OK(asyncrt_io_close_fd(v->io, n));
  close(a[1]);
  CHECK_OK(asyncrt_pipe(b));
  if (b[0] != n) {
    CHECK(dup2(b[0], n) == n);
    close(b[0]);
    b[0] = n;
  }
  asyncrt_io_prep_read(&r2->st.op, n, buf2, sizeof buf2, -1);
  CHECK_OK(op_task_spawn(v->ex, r2, &t2));
  CHECK(wait_submitted(v, r2));
  CHECK(write(b[1], "new", 3) == 3);
  CHECK_OK(io_join(v, t2));
  CHECK_INT(r2->st.op.result, 3);
  CHECK(memcmp(buf2, "new", 3) == 0);
  /* Misuse: a negative fd, a closed one, no driver. */
  CHECK_STATUS(asyncrt_io_close_fd(v->io, -1), ASYNCRT_EINVAL);
  CHECK_OK(asyncrt_io_close_fd(v->io, b[1]));
  CHECK_STATUS(asyncrt_io_close_fd(v->io, b[1]), ASYNCRT_EOS);
  CHECK_INT(asyncrt_last_errno(), EBADF);
  CHECK_STATUS(asyncrt_io_close_fd(NULL, 0), ASYNCRT_EINVAL);
  CHECK_OK(asyncrt_io_close_fd(v->io, n));
  free(r1);
  free(r2);
}

static void test_close_fd_reuse(void) {
  io_env v;
  FOR_EACH_BACKEND(v, 0, close_fd_reuse);
  FOR_EACH_BACKEND(v, 2, close_fd_reuse);
}

/* ---- closing a driver, or freeing its executor, with ops in flight ----------------------- */

static void close_with_ops(io_env *v) {
  int fds[2];
  char b;
  CHECK_OK(asyncrt_pipe(fds));
  op_task *r = op_task_new(v->io);
  CHECK(r);
  asyncrt_io_prep_read(&r->st.op, fds[0], &b, 1, -1);
  asyncrt_task *rt;
  CHECK_OK(op_task_spawn(v->ex, r, &rt));
  CHECK(wait_submitted(v, r));
  /* asyncrt_io_close completes the read (cancelled) and wakes its task. */
  CHECK_OK(asyncrt_io_close(v->io));
  int st = io_join(v, rt);
  CHECK(st == ASYNCRT_ECANCELLED || st == ASYNCRT_ESHUTDOWN);
  CHECK_INT(r->drops, 1);
  CHECK_INT(r->drop_done, 1);
  free(r);
  /* A new driver on the same executor (the env closes it). */
  CHECK_OK(asyncrt_io_open(v->ex, &(asyncrt_io_config){.size = sizeof(asyncrt_io_config), .backend = v->backend,
                                                         .ring_entries = 64, .priority = 1, .pool_threads = 1},
                           &v->io));
  /* The executor's free, with a driver left open and a read in flight:
   * the read completes, the task is dropped once. */
  io_env w;
  CHECK(io_env_open(&w, v->backend, v->threads) == 1);
  r = op_task_new(w.io);
  CHECK(r);
  asyncrt_io_prep_read(&r->st.op, fds[0], &b, 1, -1);
  CHECK_OK(op_task_spawn(w.ex, r, NULL));
  CHECK(wait_submitted(&w, r));
  CHECK_OK(asyncrt_executor_free(w.ex));
  CHECK_INT(tf_get(&r->drops), 1);
  CHECK_INT(r->drop_done, 1);
  CHECK(r->drop_status == ASYNCRT_ECANCELLED || r->drop_status == ASYNCRT_ESHUTDOWN);
  CHECK_STATUS(asyncrt_io_close(w.io), ASYNCRT_EHANDLE);
  free(r);
  close(fds[0]);
  close(fds[1]);
}

static void test_close_with_ops(void) {
  io_env v;
  FOR_EACH_BACKEND(v, 0, close_with_ops);
  FOR_EACH_BACKEND(v, 2, close_with_ops);
}

/* ---- an op complete within its submit wakes nobody --------------------------------------- */

typedef struct quiet {
  asyncrt_io *io;
  asyncrt_op nop, rd;
  int fd, polls;
  int uring; /* io_uring completes nothing inside a submit: its NOP comes from the next tick */
  char buf[4];
} quiet;

static int quiet_poll(void *self, asyncrt_context *cx, void *out) {
  quiet *q = self;
  (void)out;
  if (tf_add(&q->polls, 1) == 1) {
    /* On epoll a NOP completes inside the submit; the read waits. */
    if (asyncrt_io_submit(cx, q->io, &q->nop) || asyncrt_op_done(&q->nop) == q->uring ||
        asyncrt_io_submit(cx, q->io, &q->rd)) {
      asyncrt_context_fail(cx, ASYNCRT_EFAILED);
      return ASYNCRT_POLL_ERROR;
    }
  }
  return asyncrt_op_poll(&q->rd, cx);
}

static const asyncrt_future_vtable quiet_vtable = {
    .size = sizeof(asyncrt_future_vtable), .poll = quiet_poll, .drop = yield_drop};

static void quiet_submit(io_env *v) {
  int fds[2];
  quiet *q = calloc(1, sizeof *q);
  CHECK(q);
  CHECK_OK(asyncrt_pipe(fds));
  q->io = v->io;
  q->uring = v->backend == ASYNCRT_IO_URING;
  asyncrt_io_prep_nop(&q->nop);
  asyncrt_io_prep_read(&q->rd, fds[0], q->buf, sizeof q->buf, -1);
  asyncrt_future f = {q, &quiet_vtable};
  asyncrt_task *t;
  CHECK_OK(asyncrt_spawn(v->ex, &f, ASYNCRT_SPAWN_LOCAL, &t));
  CHECK_OK(yield_until(v, &q->polls, 100000));
  CHECK_OK(turn(v));
  /* epoll: the NOP's completion did not wake the task: one poll until the
   * data. io_uring: the NOP completed at the tick, which woke it once. */
  CHECK_INT(tf_get(&q->polls), 1 + q->uring);
  CHECK_INT(asyncrt_op_done(&q->nop), 1);
  CHECK(write(fds[1], "q", 1) == 1);
  CHECK_OK(io_join(v, t));
  CHECK_INT(tf_get(&q->polls), 2 + q->uring);
  CHECK_INT(q->rd.result, 1);
  close(fds[0]);
  close(fds[1]);
  free(q);
}

static void test_quiet_submit(void) {
  io_env v;
  FOR_EACH_BACKEND(v, 0, quiet_submit);
}

/* ---- the synchronous helpers ---------------------------------------------------------------- */

static void test_helpers(void) {
  struct sockaddr_storage ss;
  uint32_t len;
  int fd, v, fds[2];
  CHECK_OK(asyncrt_sockaddr("127.0.0.1", 80, (struct sockaddr *)&ss, &len));
  CHECK_INT(ss.ss_family, AF_INET);
  CHECK_INT(len, sizeof(struct sockaddr_in));
  CHECK_INT(ntohs(((struct sockaddr_in *)&ss)->sin_port), 80);
  CHECK_OK(asyncrt_sockaddr("localhost", 1, (struct sockaddr *)&ss, &len));
  CHECK_INT(((struct sockaddr_in *)&ss)->sin_addr.s_addr, htonl(INADDR_LOOPBACK));
  CHECK_OK(asyncrt_sockaddr("", 1, (struct sockaddr *)&ss, &len));
  CHECK_INT(((struct sockaddr_in *)&ss)->sin_addr.s_addr, htonl(INADDR_ANY));
  CHECK_OK(asyncrt_sockaddr("[::1]", 443, (struct sockaddr *)&ss, &len));
  CHECK_INT(ss.ss_family, AF_INET6);
  CHECK_INT(len, sizeof(struct sockaddr_in6));
  CHECK_OK(asyncrt_sockaddr("::", 443, (struct sockaddr *)&ss, &len));
  CHECK_STATUS(asyncrt_sockaddr("example.com", 1, (struct sockaddr *)&ss, &len), ASYNCRT_EINVAL);
  CHECK_STATUS(asyncrt_sockaddr("1.2.3.4", 1, NULL, &len), ASYNCRT_EINVAL);
  char longpath[200];
  memset(longpath, 'x', sizeof longpath - 1);
  longpath[sizeof longpath - 1] = 0;
  CHECK_STATUS(asyncrt_unix_sockaddr(longpath, (struct sockaddr *)&ss, &len), ASYNCRT_EINVAL);
  CHECK_OK(asyncrt_unix_sockaddr("@asyncrt-abstract", (struct sockaddr *)&ss, &len));
  CHECK_INT(ss.ss_family, AF_UNIX);
  CHECK_STATUS(asyncrt_socket(12345, SOCK_STREAM, &fd), ASYNCRT_EINVAL);
  CHECK_STATUS(asyncrt_socket(AF_INET, SOCK_RAW, &fd), ASYNCRT_EINVAL);
  CHECK_OK(asyncrt_socket(AF_INET, SOCK_STREAM, &fd));
  CHECK((fcntl(fd, F_GETFL) & O_NONBLOCK) != 0);
  CHECK((fcntl(fd, F_GETFD) & FD_CLOEXEC) != 0);
  CHECK_OK(asyncrt_socket_set_option(fd, ASYNCRT_SOCKOPT_NODELAY, 1));
  CHECK_OK(asyncrt_socket_get_option(fd, ASYNCRT_SOCKOPT_NODELAY, &v));
  CHECK_INT(v, 1);
  CHECK_OK(asyncrt_socket_set_option(fd, ASYNCRT_SOCKOPT_LINGER, 5));
  CHECK_OK(asyncrt_socket_get_option(fd, ASYNCRT_SOCKOPT_LINGER, &v));
  CHECK_INT(v, 5);
  CHECK_OK(asyncrt_socket_set_option(fd, ASYNCRT_SOCKOPT_LINGER, -1));
  CHECK_OK(asyncrt_socket_get_option(fd, ASYNCRT_SOCKOPT_LINGER, &v));
  CHECK_INT(v, -1);
  CHECK_OK(asyncrt_socket_get_option(fd, ASYNCRT_SOCKOPT_ERROR, &v));
  CHECK_INT(v, 0);
  CHECK_STATUS(asyncrt_socket_set_option(fd, ASYNCRT_SOCKOPT_ERROR, 1), ASYNCRT_EINVAL);
  CHECK_STATUS(asyncrt_socket_set_option(fd, 999, 1), ASYNCRT_EINVAL);
  CHECK_STATUS(asyncrt_socket_get_option(fd, ASYNCRT_SOCKOPT_NODELAY, NULL), ASYNCRT_EINVAL);
  close(fd);
  /* A refusal of the system is EOS, with its errno. */
  CHECK_STATUS(asyncrt_socket_set_option(fd, ASYNCRT_SOCKOPT_NODELAY, 1), ASYNCRT_EOS);
  CHECK_INT(asyncrt_last_errno(), EBADF);
  CHECK(strstr(asyncrt_last_error(), "errno 9") != NULL);
  CHECK_STATUS(asyncrt_local_port(fd, &(uint16_t){0}), ASYNCRT_EOS);
  CHECK_INT(asyncrt_last_errno(), EBADF);
  CHECK_STATUS(asyncrt_sockaddr("bad", 1, (struct sockaddr *)&ss, &len), ASYNCRT_EINVAL);
  CHECK_INT(asyncrt_last_errno(), 0); /* the last failure was not EOS */
  /* Two listeners on one port need REUSEPORT. */
  int l1, l2;
  uint16_t port;
  CHECK_OK(asyncrt_tcp_listen("127.0.0.1", 0, 0, ASYNCRT_LISTEN_REUSEPORT, &l1));
  CHECK_OK(asyncrt_local_port(l1, &port));
  CHECK_OK(asyncrt_tcp_listen("127.0.0.1", port, 0, ASYNCRT_LISTEN_REUSEPORT, &l2));
  close(l2);
  CHECK_STATUS(asyncrt_tcp_listen("127.0.0.1", port, 0, 0, &l2), ASYNCRT_EOS);
  CHECK_INT(asyncrt_last_errno(), EADDRINUSE);
  CHECK_STATUS(asyncrt_tcp_listen("127.0.0.1", 0, 0, 64, &l2), ASYNCRT_EINVAL);
  close(l1);
  /* Pipes: non-blocking and close-on-exec both ends. */
  CHECK_STATUS(asyncrt_pipe(NULL), ASYNCRT_EINVAL);
  CHECK_OK(asyncrt_pipe(fds));
  for (int i = 0; i < 2; i++) {
    CHECK((fcntl(fds[i], F_GETFL) & O_NONBLOCK) != 0);
    CHECK((fcntl(fds[i], F_GETFD) & FD_CLOEXEC) != 0);
  }
  close(fds[0]);
  close(fds[1]);
  CHECK(pipe(fds) == 0);
  CHECK((fcntl(fds[0], F_GETFL) & O_NONBLOCK) == 0);
  CHECK_OK(asyncrt_fd_set_nonblock(fds[0]));
  CHECK((fcntl(fds[0], F_GETFL) & O_NONBLOCK) != 0);
  close(fds[0]);
  close(fds[1]);
  CHECK_STATUS(asyncrt_fd_set_nonblock(fds[0]), ASYNCRT_EOS);
  /* Unix listeners replace a stale socket file. */
  char path[64];
  snprintf(path, sizeof path, "/tmp/asyncrt_io_helpers_%d.sock", (int)getpid());
  CHECK_OK(asyncrt_unix_listen(path, 0, &l1));
  close(l1);
  CHECK_OK(asyncrt_unix_listen(path, 0, &l1));
  close(l1);
  unlink(path);
}

int main(void) {
  CHECK_BEGIN();
  RUN(test_open_close_misuse);
  RUN(test_misuse);
  RUN(test_simple_ops);
  RUN(test_shutdown_and_close);
  RUN(test_timeouts);
  RUN(test_cancel_read);
  RUN(test_close_with_ops);
  RUN(test_close_fd_reuse);
  RUN(test_end_after_short_read);
  RUN(test_quiet_submit);
  RUN(test_helpers);
  CHECK_END("test_io");
}
