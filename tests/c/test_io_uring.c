/* The io_uring backend's own behaviour (the common IO tests, test_io*.c,
 * run every operation on both backends):
 *  - a read waiting in the kernel on an empty socket is cancelled there
 *    (IORING_OP_ASYNC_CANCEL): the task's future is dropped once, after the
 *    op's completion, and the cancelled read consumes nothing;
 *  - more ops than the SQ (8 entries) holds, and more completions at once
 *    than the CQ (16) holds, all complete, in order where order is defined;
 *  - a CLOSE ends the ops still waiting on its fd with -EBADF, as on epoll;
 *  - TIMEOUT follows the executor's test clock, not the kernel's;
 *  - each worker of a thread-per-core executor owns a ring;
 *  - a refusal (ASYNCRT_IO_URING_REFUSE, a test hook read when the library
 *    loads, so ctest sets it: c_io_uring_refused) makes AUTO fall back to
 *    epoll and an explicit io_uring fail with ENOTSUP naming the errno.
 * On a kernel that refuses io_uring for real, the io_uring tests say SKIP
 * with the reason and the refusal test still runs.
 *
 * Waits are bounded and fail with a message; nothing is timed.
 */
#include "check.h" /* first: it sets _POSIX_C_SOURCE */
#include "testfut.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <sys/socket.h>
#include <unistd.h>

#define WAIT_MS 5000
#define MANY 100

static const char *refuse_env(void) {
  const char *v = getenv("ASYNCRT_IO_URING_REFUSE");
  return v && *v && strcmp(v, "0") != 0 ? v : NULL;
}

/* io_uring fds of this process (links to anon_inode:[io_uring]). */
static int count_rings(void) {
  DIR *d = opendir("/proc/self/fd");
  int n = 0;
  struct dirent *e;
  if (!d) return -1;
  while ((e = readdir(d)) != NULL) {
    char path[300], target[64];
    ssize_t len;
    snprintf(path, sizeof path, "/proc/self/fd/%s", e->d_name);
    len = readlink(path, target, sizeof target - 1);
    if (len <= 0) continue;
    target[len] = 0;
    if (strcmp(target, "anon_inode:[io_uring]") == 0) n++;
  }
  closedir(d);
  return n;
}

/* An io_uring driver on ex with `entries` SQ entries, or NULL: then `why`
 * says whether the kernel refused (the test skips) or it failed. */
static asyncrt_io *open_uring(asyncrt_executor *ex, uint32_t entries, int *refused) {
  asyncrt_io_config cfg;
  asyncrt_io *io = NULL;
  int rc;
  asyncrt_io_config_init(&cfg);
  cfg.backend = ASYNCRT_IO_URING;
  if (entries) cfg.ring_entries = entries;
  rc = asyncrt_io_open(ex, &cfg, &io);
  *refused = rc == ASYNCRT_ENOTSUP;
  if (rc == ASYNCRT_ENOTSUP) {
    printf("  SKIP %s: io_uring is refused here: %s\n", check_current_test, asyncrt_last_error());
  } else if (rc != ASYNCRT_OK) {
    fprintf(stderr, "  asyncrt_io_open(io_uring): %s (%s)\n", asyncrt_status_str(rc), asyncrt_last_error());
  }
  return rc == ASYNCRT_OK ? io : NULL;
}

static asyncrt_executor *threads_executor(unsigned workers) {
  asyncrt_executor_config cfg;
  asyncrt_executor *ex = NULL;
  int rc;
  asyncrt_executor_config_init(&cfg);
  cfg.kind = ASYNCRT_EXECUTOR_THREADS;
  cfg.workers = workers;
  rc = asyncrt_executor_new(&cfg, &ex);
  if (rc != ASYNCRT_OK) {
    fprintf(stderr, "  asyncrt_executor_new(THREADS): %s (%s)\n", asyncrt_status_str(rc), asyncrt_last_error());
    return NULL;
  }
  return ex;
}

static asyncrt_io_stats io_stats(asyncrt_io *io) {
  asyncrt_io_stats st;
  memset(&st, 0xff, sizeof st);
  st.size = sizeof st;
  if (asyncrt_io_stats_get(io, &st) != ASYNCRT_OK) memset(&st, 0xff, sizeof st);
  return st;
}

static int socket_pair(int sv[2]) { return socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv); }

/* ---- a task that reads once ------------------------------------------------ */

typedef struct reader {
  asyncrt_io *io;
  int fd;
  asyncrt_op op;
  char buf[16];
  int submitted, submit_rc; /* submitted: a flag other threads read */
  int drops;
  /* at the drop */
  int done_at_drop;
  int32_t status_at_drop;
  int64_t result_at_drop;
} reader;

static int reader_poll(void *self, asyncrt_context *cx, void *out) {
  reader *r = self;
  (void)out;
  if (!r->submitted) {
    asyncrt_io_prep_read(&r->op, r->fd, r->buf, sizeof r->buf, -1);
    r->submit_rc = asyncrt_io_submit(cx, r->io, &r->op);
    tf_set(&r->submitted, 1);
    if (r->submit_rc != ASYNCRT_OK) return ASYNCRT_POLL_READY;
  }
  return asyncrt_op_poll(&r->op, cx);
}

static void reader_drop(void *self) {
  reader *r = self;
  r->done_at_drop = asyncrt_op_done(&r->op);
  r->status_at_drop = r->op.status;
  r->result_at_drop = r->op.result;
  tf_add(&r->drops, 1);
}

static const asyncrt_future_vtable reader_vtable = {
    .size = sizeof(asyncrt_future_vtable), .poll = reader_poll, .drop = reader_drop};

/* Waits until the driver has made at least `syscalls` io_uring_enter calls
 * with `in_flight` ops in flight. */
static int wait_stats(asyncrt_io *io, uint64_t in_flight, uint64_t syscalls) {
  int64_t deadline = tf_now_ns() + (int64_t)WAIT_MS * TF_MS_NS;
  while (tf_now_ns() < deadline) {
    asyncrt_io_stats st = io_stats(io);
    if (st.in_flight == in_flight && st.syscalls >= syscalls) return 1;
    tf_sleep_ms(1);
  }
  return 0;
}

/* A read on an empty socket is in the kernel (its SQE went out with the
 * worker's io_uring_enter); cancelling the task cancels it there, and the
 * future is dropped once, after the op completed with ECANCELLED. The data
 * written afterwards is still there: the kernel's read is really gone. */
static void test_cancel_inflight_read(void) {
  asyncrt_executor *ex = threads_executor(1);
  int refused, sv[2];
  asyncrt_io *io;
  asyncrt_task *task = NULL;
  asyncrt_future fut;
  reader *r = calloc(1, sizeof *r); /* leaked if a CHECK fails: a worker may still touch it */
  char got = 0;
  struct pollfd p;
  asyncrt_io_stats st;
  CHECK(ex != NULL && r != NULL);
  io = open_uring(ex, 0, &refused);
  if (refused) {
    asyncrt_executor_free(ex);
    free(r);
    return;
  }
  CHECK(io != NULL);
  CHECK_INT(socket_pair(sv), 0);
  r->io = io;
  r->fd = sv[0];
  fut.self = r;
  fut.vtable = &reader_vtable;
  CHECK_OK(asyncrt_spawn(ex, &fut, ASYNCRT_SPAWN_SEND, &task));
  CHECK(tf_wait_flag(&r->submitted, WAIT_MS));
  CHECK_OK(r->submit_rc);
  /* One io_uring_enter since the submit: the read is in the kernel. */
  if (!wait_stats(io, 1, 1)) {
    st = io_stats(io);
    fprintf(stderr, "  the read never reached the kernel: in_flight %llu, syscalls %llu\n",
            (unsigned long long)st.in_flight, (unsigned long long)st.syscalls);
    CHECK(0);
  }
  CHECK_INT(tf_get(&r->drops), 0);
  CHECK_OK(asyncrt_task_cancel(task));
  if (!tf_wait_at_least(&r->drops, 1, WAIT_MS)) {
    fprintf(stderr, "  the cancelled task was not dropped within %d ms\n", WAIT_MS);
    CHECK(0);
  }
  CHECK_INT(r->done_at_drop, 1);
  CHECK_STATUS(r->status_at_drop, ASYNCRT_ECANCELLED);
  CHECK_INT(r->result_at_drop, -ECANCELED);
  CHECK_STATUS(asyncrt_task_status(task), ASYNCRT_ECANCELLED);
  st = io_stats(io);
  CHECK_INT(st.cancels, 1);
  CHECK_INT(st.in_flight, 0);
  CHECK_INT(st.completions, 1);
  /* The kernel no longer reads sv[0]: a byte sent now stays for us. */
  CHECK_INT(send(sv[1], "x", 1, 0), 1);
  p.fd = sv[0];
  p.events = POLLIN;
  CHECK_INT(poll(&p, 1, WAIT_MS), 1);
  CHECK_INT(recv(sv[0], &got, 1, 0), 1);
  CHECK_INT(got, 'x');
  CHECK_OK(asyncrt_task_release(task));
  CHECK_OK(asyncrt_io_close(io));
  CHECK_OK(asyncrt_executor_free(ex));
  CHECK_INT(tf_get(&r->drops), 1);
  close(sv[0]);
  close(sv[1]);
  free(r);
}

/* ---- many ops at once ---------------------------------------------------------- */

typedef struct batch {
  asyncrt_io *io;
  int kind; /* 0: MANY one-byte writes into one pipe; 1: MANY reads, one per socket pair */
  int fds[MANY];
  unsigned char bytes[MANY];
  asyncrt_op ops[MANY];
  int submitted, submit_rc;
} batch;

static int batch_poll(void *self, asyncrt_context *cx, void *out) {
  batch *b = self;
  int i;
  (void)out;
  if (!b->submitted) {
    for (i = 0; i < MANY; i++) {
      if (b->kind == 0) asyncrt_io_prep_write(&b->ops[i], b->fds[i], &b->bytes[i], 1, -1);
      else asyncrt_io_prep_read(&b->ops[i], b->fds[i], &b->bytes[i], 1, -1);
      b->submit_rc = asyncrt_io_submit(cx, b->io, &b->ops[i]);
      if (b->submit_rc != ASYNCRT_OK) return ASYNCRT_POLL_READY; /* the ops before it still complete */
    }
    tf_set(&b->submitted, 1);
  }
  for (i = 0; i < MANY; i++)
    if (asyncrt_op_poll(&b->ops[i], cx) != ASYNCRT_POLL_READY) return ASYNCRT_POLL_PENDING;
  return ASYNCRT_POLL_READY;
}

static const asyncrt_future_vtable batch_vtable = {.size = sizeof(asyncrt_future_vtable), .poll = batch_poll};

/* MANY writes submitted in one poll to a ring of 8 entries: every one is
 * submitted (the SQ is flushed when full, never dropped) and they reach the
 * pipe in submission order. */
static void test_more_ops_than_sq(void) {
  asyncrt_executor *ex = tf_executor();
  int refused, pfd[2], i;
  asyncrt_io *io;
  asyncrt_future fut;
  unsigned char got[MANY + 1];
  asyncrt_io_stats st;
  batch *b = calloc(1, sizeof *b);
  CHECK(ex != NULL && b != NULL);
  io = open_uring(ex, 8, &refused);
  if (refused) {
    asyncrt_executor_free(ex);
    free(b);
    return;
  }
  CHECK(io != NULL);
  CHECK_OK(asyncrt_pipe(pfd));
  b->io = io;
  for (i = 0; i < MANY; i++) {
    b->fds[i] = pfd[1];
    b->bytes[i] = (unsigned char)i;
  }
  fut.self = b;
  fut.vtable = &batch_vtable;
  CHECK_OK(asyncrt_block_on(ex, &fut, NULL, 10 * TF_SECOND_NS));
  CHECK_OK(b->submit_rc);
  for (i = 0; i < MANY; i++) {
    CHECK_STATUS(b->ops[i].status, ASYNCRT_OK);
    CHECK_INT(b->ops[i].result, 1);
  }
  CHECK_INT(read(pfd[0], got, sizeof got), MANY);
  for (i = 0; i < MANY; i++) CHECK_INT(got[i], i);
  st = io_stats(io);
  CHECK_INT(st.submits, MANY);
  CHECK_INT(st.completions, MANY);
  /* 8 entries at a time: at least MANY / 8 io_uring_enter calls. */
  CHECK(st.syscalls >= (MANY + 7) / 8);
  CHECK_OK(asyncrt_io_close(io));
  CHECK_OK(asyncrt_executor_free(ex));
  close(pfd[0]);
  close(pfd[1]);
  free(b);
}

typedef struct feeder {
  asyncrt_io *io;
  int *peers;
  int ok; /* 1: wrote every byte; -1: the reads never were all in flight */
} feeder;

static void *feeder_thread(void *arg) {
  feeder *f = arg;
  int i;
  if (!wait_stats(f->io, MANY, 1)) {
    tf_set(&f->ok, -1);
    return NULL;
  }
  for (i = 0; i < MANY; i++) {
    unsigned char c = (unsigned char)(MANY - i);
    if (write(f->peers[i], &c, 1) != 1) {
      tf_set(&f->ok, -2);
      return NULL;
    }
  }
  tf_set(&f->ok, 1);
  return NULL;
}

/* MANY reads in flight at once (12x the SQ, 6x the CQ), then MANY
 * completions at once: the CQ overflows into the kernel's list
 * (IORING_FEAT_NODROP) and every completion still arrives. */
static void test_more_completions_than_cq(void) {
  asyncrt_executor *ex = tf_executor();
  int refused, i, sv[MANY][2], peers[MANY];
  asyncrt_io *io;
  asyncrt_future fut;
  pthread_t th;
  feeder f;
  asyncrt_io_stats st;
  batch *b = calloc(1, sizeof *b);
  CHECK(ex != NULL && b != NULL);
  io = open_uring(ex, 8, &refused);
  if (refused) {
    asyncrt_executor_free(ex);
    free(b);
    return;
  }
  CHECK(io != NULL);
  b->io = io;
  b->kind = 1;
  for (i = 0; i < MANY; i++) {
    CHECK_INT(socket_pair(sv[i]), 0);
    b->fds[i] = sv[i][0];
    peers[i] = sv[i][1];
  }
  f.io = io;
  f.peers = peers;
  f.ok = 0;
  CHECK_INT(pthread_create(&th, NULL, feeder_thread, &f), 0);
  fut.self = b;
  fut.vtable = &batch_vtable;
  CHECK_OK(asyncrt_block_on(ex, &fut, NULL, 10 * TF_SECOND_NS));
  CHECK_INT(pthread_join(th, NULL), 0);
  CHECK_INT(tf_get(&f.ok), 1);
  for (i = 0; i < MANY; i++) {
    CHECK_STATUS(b->ops[i].status, ASYNCRT_OK);
    CHECK_INT(b->ops[i].result, 1);
    CHECK_INT(b->bytes[i], MANY - i);
  }
  st = io_stats(io);
  CHECK_INT(st.completions, MANY);
  CHECK_INT(st.in_flight, 0);
  CHECK_OK(asyncrt_io_close(io));
  CHECK_OK(asyncrt_executor_free(ex));
  for (i = 0; i < MANY; i++) {
    close(sv[i][0]);
    close(sv[i][1]);
  }
  free(b);
}

/* ---- CLOSE with ops waiting on the fd ------------------------------------------- */

typedef struct closer {
  asyncrt_io *io;
  int fd;
  asyncrt_op read_op, close_op;
  char buf[4];
  int stage;
  int rc;
} closer;

static int closer_poll(void *self, asyncrt_context *cx, void *out) {
  closer *c = self;
  (void)out;
  switch (c->stage) {
  case 0:
    asyncrt_io_prep_read(&c->read_op, c->fd, c->buf, sizeof c->buf, -1);
    if ((c->rc = asyncrt_io_submit(cx, c->io, &c->read_op)) != ASYNCRT_OK) return ASYNCRT_POLL_READY;
    c->stage = 1;
    asyncrt_waker_wake_by_ref(asyncrt_context_waker(cx)); /* once more, so the read goes out before the close */
    return ASYNCRT_POLL_PENDING;
  case 1:
    asyncrt_io_prep_close(&c->close_op, c->fd);
    if ((c->rc = asyncrt_io_submit(cx, c->io, &c->close_op)) != ASYNCRT_OK) return ASYNCRT_POLL_READY;
    c->stage = 2;
    /* fall through */
  default:
    if (asyncrt_op_poll(&c->close_op, cx) != ASYNCRT_POLL_READY) return ASYNCRT_POLL_PENDING;
    return asyncrt_op_poll(&c->read_op, cx);
  }
}

static const asyncrt_future_vtable closer_vtable = {.size = sizeof(asyncrt_future_vtable), .poll = closer_poll};

/* A read waits on an empty socket; a CLOSE of that fd closes it and ends
 * the read with -EBADF (an in-kernel read would otherwise hold the file
 * open and wait on). */
static void test_close_ends_waiting_ops(void) {
  asyncrt_executor *ex = tf_executor();
  int refused, sv[2];
  asyncrt_io *io;
  asyncrt_future fut;
  closer c;
  CHECK(ex != NULL);
  io = open_uring(ex, 0, &refused);
  if (refused) {
    asyncrt_executor_free(ex);
    return;
  }
  CHECK(io != NULL);
  CHECK_INT(socket_pair(sv), 0);
  memset(&c, 0, sizeof c);
  c.io = io;
  c.fd = sv[0];
  fut.self = &c;
  fut.vtable = &closer_vtable;
  CHECK_OK(asyncrt_block_on(ex, &fut, NULL, 10 * TF_SECOND_NS));
  CHECK_OK(c.rc);
  CHECK_STATUS(c.close_op.status, ASYNCRT_OK);
  CHECK_STATUS(c.read_op.status, ASYNCRT_EOS);
  CHECK_INT(c.read_op.result, -EBADF);
  /* The fd is closed: the peer sees end of stream. */
  CHECK_INT(fcntl(sv[0], F_GETFD), -1);
  CHECK_OK(asyncrt_io_close(io));
  CHECK_OK(asyncrt_executor_free(ex));
  close(sv[1]);
}

/* ---- TIMEOUT on a test clock ------------------------------------------------------ */

typedef struct sleeper {
  asyncrt_io *io;
  asyncrt_op op;
  uint64_t ns;
  int submitted, rc;
} sleeper;

static int sleeper_poll(void *self, asyncrt_context *cx, void *out) {
  sleeper *z = self;
  (void)out;
  if (!z->submitted) {
    z->submitted = 1;
    asyncrt_io_prep_timeout(&z->op, z->ns);
    if ((z->rc = asyncrt_io_submit(cx, z->io, &z->op)) != ASYNCRT_OK) return ASYNCRT_POLL_READY;
  }
  return asyncrt_op_poll(&z->op, cx);
}

static const asyncrt_future_vtable sleeper_vtable = {.size = sizeof(asyncrt_future_vtable), .poll = sleeper_poll};

/* The kernel's timeouts run on CLOCK_MONOTONIC; an executor with a test
 * clock gets its TIMEOUTs on its own clock instead: done exactly when the
 * clock reaches the deadline, however long that takes in real time. A
 * second, later one is cancelled before it fires. */
static void test_timeout_on_test_clock(void) {
  asyncrt_executor_config cfg;
  asyncrt_executor *ex = NULL;
  asyncrt_io *io;
  asyncrt_task *tasks[2];
  sleeper z[2];
  uint64_t polls;
  int refused, i;
  asyncrt_executor_config_init(&cfg);
  cfg.clock = ASYNCRT_CLOCK_TEST;
  CHECK_OK(asyncrt_executor_new(&cfg, &ex));
  io = open_uring(ex, 0, &refused);
  if (refused) {
    asyncrt_executor_free(ex);
    return;
  }
  CHECK(io != NULL);
  memset(z, 0, sizeof z);
  for (i = 0; i < 2; i++) {
    asyncrt_future fut;
    z[i].io = io;
    z[i].ns = (uint64_t)(i + 1) * TF_SECOND_NS;
    fut.self = &z[i];
    fut.vtable = &sleeper_vtable;
    CHECK_OK(asyncrt_spawn(ex, &fut, ASYNCRT_SPAWN_LOCAL, &tasks[i]));
  }
  CHECK_OK(asyncrt_run(ex, &polls));
  CHECK_OK(z[0].rc);
  CHECK_OK(z[1].rc);
  CHECK_INT(asyncrt_op_done(&z[0].op), 0);
  CHECK_OK(asyncrt_clock_advance(ex, TF_SECOND_NS - 1));
  CHECK_OK(asyncrt_run(ex, &polls));
  CHECK_INT(asyncrt_op_done(&z[0].op), 0);
  CHECK_OK(asyncrt_clock_advance(ex, 1));
  CHECK_OK(asyncrt_run(ex, &polls));
  CHECK_INT(asyncrt_op_done(&z[0].op), 1);
  CHECK_STATUS(z[0].op.status, ASYNCRT_OK);
  CHECK_INT(z[0].op.result, 0);
  CHECK_STATUS(asyncrt_task_status(tasks[0]), ASYNCRT_OK);
  CHECK_INT(asyncrt_op_done(&z[1].op), 0);
  CHECK_OK(asyncrt_task_cancel(tasks[1]));
  CHECK_OK(asyncrt_run(ex, &polls));
  CHECK_STATUS(asyncrt_task_status(tasks[1]), ASYNCRT_ECANCELLED);
  CHECK_INT(asyncrt_op_done(&z[1].op), 1);
  CHECK_STATUS(z[1].op.status, ASYNCRT_ECANCELLED);
  for (i = 0; i < 2; i++) CHECK_OK(asyncrt_task_release(tasks[i]));
  CHECK_OK(asyncrt_io_close(io));
  CHECK_OK(asyncrt_executor_free(ex));
}

/* On the real clock TIMEOUT is the kernel's IORING_OP_TIMEOUT: a short one
 * completes with 0 (its -ETIME is success); a long one whose task is
 * cancelled (block_on's bound) is cancelled in the kernel, and the future
 * goes only after. */
static void test_timeout_in_kernel(void) {
  asyncrt_executor *ex = tf_executor();
  asyncrt_io *io;
  asyncrt_future fut;
  sleeper z;
  int refused;
  CHECK(ex != NULL);
  io = open_uring(ex, 0, &refused);
  if (refused) {
    asyncrt_executor_free(ex);
    return;
  }
  CHECK(io != NULL);
  memset(&z, 0, sizeof z);
  z.io = io;
  z.ns = TF_MS_NS;
  fut.self = &z;
  fut.vtable = &sleeper_vtable;
  CHECK_OK(asyncrt_block_on(ex, &fut, NULL, 10 * TF_SECOND_NS));
  CHECK_OK(z.rc);
  CHECK_STATUS(z.op.status, ASYNCRT_OK);
  CHECK_INT(z.op.result, 0);
  memset(&z, 0, sizeof z);
  z.io = io;
  z.ns = 3600 * TF_SECOND_NS;
  fut.self = &z;
  fut.vtable = &sleeper_vtable;
  CHECK_STATUS(asyncrt_block_on(ex, &fut, NULL, 20 * TF_MS_NS), ASYNCRT_ETIMEDOUT);
  CHECK_INT(asyncrt_op_done(&z.op), 1);
  CHECK_STATUS(z.op.status, ASYNCRT_ECANCELLED);
  CHECK_INT(z.op.result, -ECANCELED);
  CHECK_OK(asyncrt_io_close(io));
  CHECK_OK(asyncrt_executor_free(ex));
}

/* ---- thread-per-core: a ring per worker ----------------------------------------- */

#define ROUNDS 50

typedef struct echo {
  asyncrt_io *io;
  int out_fd, in_fd;
  asyncrt_op op;
  char msg[8], buf[8];
  int round, writing, failed;
  pthread_t thread;
  int threads; /* polls on a thread other than the first */
  int polls;
} echo;

static int echo_poll(void *self, asyncrt_context *cx, void *out) {
  echo *e = self;
  (void)out;
  if (e->polls++ == 0) e->thread = pthread_self();
  else if (!pthread_equal(e->thread, pthread_self())) e->threads++;
  for (;;) {
    if (asyncrt_op_poll(&e->op, cx) != ASYNCRT_POLL_READY) return ASYNCRT_POLL_PENDING;
    if (e->writing == 1 && (e->op.status != ASYNCRT_OK || e->op.result != 8)) e->failed = 1;
    if (e->writing == 2 && (e->op.status != ASYNCRT_OK || e->op.result != 8 || memcmp(e->msg, e->buf, 8) != 0))
      e->failed = 1;
    if (e->failed) return ASYNCRT_POLL_READY;
    if (e->writing == 2 || e->writing == 0) {
      if (e->round == ROUNDS) return ASYNCRT_POLL_READY;
      snprintf(e->msg, sizeof e->msg, "r%06d", e->round++);
      asyncrt_io_prep_write(&e->op, e->out_fd, e->msg, 8, -1);
      e->writing = 1;
    } else {
      asyncrt_io_prep_read(&e->op, e->in_fd, e->buf, 8, -1);
      e->writing = 2;
    }
    if (asyncrt_io_submit(cx, e->io, &e->op) != ASYNCRT_OK) {
      e->failed = 2;
      return ASYNCRT_POLL_READY;
    }
  }
}

static const asyncrt_future_vtable echo_vtable = {.size = sizeof(asyncrt_future_vtable), .poll = echo_poll};

/* Two workers, two rings (two more io_uring fds), and a task placed on each
 * worker doing ROUNDS write/read round trips through its own ring. */
static void test_ring_per_worker(void) {
  asyncrt_executor *ex = threads_executor(2);
  int refused, i, before, sv[2][2];
  asyncrt_io *io;
  asyncrt_task *tasks[2];
  echo *e = calloc(2, sizeof *e);
  asyncrt_io_stats st;
  CHECK(ex != NULL && e != NULL);
  before = count_rings();
  io = open_uring(ex, 0, &refused);
  if (refused) {
    asyncrt_executor_free(ex);
    free(e);
    return;
  }
  CHECK(io != NULL);
  CHECK_INT(count_rings(), before + 2);
  st = io_stats(io);
  CHECK_INT(st.workers, 2);
  CHECK_INT(st.backend, ASYNCRT_IO_URING);
  CHECK_INT(asyncrt_io_backend(io), ASYNCRT_IO_URING);
  for (i = 0; i < 2; i++) {
    asyncrt_future fut;
    CHECK_INT(socket_pair(sv[i]), 0);
    e[i].io = io;
    e[i].out_fd = sv[i][0];
    e[i].in_fd = sv[i][1];
    fut.self = &e[i];
    fut.vtable = &echo_vtable;
    CHECK_OK(asyncrt_spawn(ex, &fut, ASYNCRT_SPAWN_LOCAL | ASYNCRT_SPAWN_WORKER(i), &tasks[i]));
  }
  for (i = 0; i < 2; i++) {
    asyncrt_future join;
    CHECK_OK(asyncrt_task_join(tasks[i], &join));
    CHECK_OK(asyncrt_block_on(ex, &join, NULL, 10 * TF_SECOND_NS));
    CHECK_OK(asyncrt_task_release(tasks[i]));
    CHECK_INT(e[i].failed, 0);
    CHECK_INT(e[i].round, ROUNDS);
    CHECK_INT(e[i].threads, 0); /* placed: every poll on its worker */
  }
  CHECK(!pthread_equal(e[0].thread, e[1].thread));
  st = io_stats(io);
  CHECK_INT(st.completions, 2 * 2 * ROUNDS);
  CHECK(st.syscalls > 0);
  CHECK_OK(asyncrt_io_close(io));
  CHECK_INT(count_rings(), before); /* closed with the driver */
  CHECK_OK(asyncrt_executor_free(ex));
  for (i = 0; i < 2; i++) {
    close(sv[i][0]);
    close(sv[i][1]);
  }
  free(e);
}

/* ---- refusal and fallback ------------------------------------------------------- */

typedef struct nop_task {
  asyncrt_io *io;
  asyncrt_op op;
  int submitted, rc;
} nop_task;

static int nop_poll(void *self, asyncrt_context *cx, void *out) {
  nop_task *n = self;
  (void)out;
  if (!n->submitted) {
    n->submitted = 1;
    asyncrt_io_prep_nop(&n->op);
    if ((n->rc = asyncrt_io_submit(cx, n->io, &n->op)) != ASYNCRT_OK) return ASYNCRT_POLL_READY;
  }
  return asyncrt_op_poll(&n->op, cx);
}

static const asyncrt_future_vtable nop_vtable = {.size = sizeof(asyncrt_future_vtable), .poll = nop_poll};

/* With ASYNCRT_IO_URING_REFUSE set (c_io_uring_refused): AUTO runs on epoll
 * and works; an explicit io_uring fails with ENOTSUP naming the errno.
 * Without it: AUTO picks io_uring wherever an explicit io_uring opens. */
static void test_refusal_falls_back(void) {
  asyncrt_executor *ex = tf_executor();
  asyncrt_io_config cfg;
  asyncrt_io *io = NULL, *auto_io = NULL;
  const char *refuse = refuse_env();
  const char *env_backend = getenv("ASYNCRT_IO");
  nop_task n;
  asyncrt_future fut;
  int rc;
  CHECK(ex != NULL);
  if (env_backend && *env_backend && strcmp(env_backend, "auto") != 0) {
    printf("  SKIP %s: ASYNCRT_IO=%s overrides AUTO\n", check_current_test, env_backend);
    asyncrt_executor_free(ex);
    return;
  }
  asyncrt_io_config_init(&cfg);
  cfg.backend = ASYNCRT_IO_URING;
  rc = asyncrt_io_open(ex, &cfg, &io);
  if (refuse) {
    CHECK_STATUS(rc, ASYNCRT_ENOTSUP);
    CHECK(io == NULL);
    if (strstr(asyncrt_last_error(), refuse) == NULL) {
      fprintf(stderr, "  the message does not name %s: \"%s\"\n", refuse, asyncrt_last_error());
      CHECK(0);
    }
  } else if (rc == ASYNCRT_OK) {
    CHECK_OK(asyncrt_io_close(io));
  } else {
    CHECK_STATUS(rc, ASYNCRT_ENOTSUP); /* a real refusal */
  }
  asyncrt_io_config_init(&cfg);
  CHECK_OK(asyncrt_io_open(ex, &cfg, &auto_io));
  CHECK_INT(asyncrt_io_backend(auto_io), refuse || rc != ASYNCRT_OK ? ASYNCRT_IO_EPOLL : ASYNCRT_IO_URING);
  memset(&n, 0, sizeof n);
  n.io = auto_io;
  fut.self = &n;
  fut.vtable = &nop_vtable;
  CHECK_OK(asyncrt_block_on(ex, &fut, NULL, 10 * TF_SECOND_NS));
  CHECK_OK(n.rc);
  CHECK_STATUS(n.op.status, ASYNCRT_OK);
  CHECK_INT(n.op.result, 0);
  CHECK_OK(asyncrt_io_close(auto_io));
  CHECK_OK(asyncrt_executor_free(ex));
}

int main(void) {
  CHECK_BEGIN();
  if (refuse_env()) {
    printf("  ASYNCRT_IO_URING_REFUSE=%s: only the fallback test runs\n", refuse_env());
    RUN(test_refusal_falls_back);
    return CHECK_END("io_uring_refused");
  }
  RUN(test_cancel_inflight_read);
  RUN(test_more_ops_than_sq);
  RUN(test_more_completions_than_cq);
  RUN(test_close_ends_waiting_ops);
  RUN(test_timeout_on_test_clock);
  RUN(test_timeout_in_kernel);
  RUN(test_ring_per_worker);
  RUN(test_refusal_falls_back);
  return CHECK_END("io_uring");
}
