/*
 * asyncrt_servers -- asyncrt's servers for the IO workloads, through the
 * public header only, on a local executor (one thread, like c_baseline).
 *
 *   asyncrt_servers serve echo|http   -> "port <n>" once listening on
 *                                        127.0.0.1, then serves until killed
 *
 * The backend is the driver's default (ASYNCRT_IO_AUTO), so the variable
 * ASYNCRT_IO=epoll|io_uring that run.py sets picks it; the one that runs is
 * said on stderr, and a backend other than the one asked for fails the run.
 *
 * The accept task (under asyncrt_block_on) keeps one ACCEPT op in flight
 * and spawns a task per connection. A connection task is a hand-written
 * state machine future holding all its state -- the op, the buffers -- in
 * one allocation that its drop frees: RECV, then SEND of what the request
 * needs (a partial send sends the rest), then RECV again; end of stream or
 * an error goes to CLOSE. After each submit the op is polled at once: on
 * epoll a call that did not block is complete when asyncrt_io_submit
 * returns, and the task goes on without waiting for a wake. http answers
 * with bench/common/http_min.h, as c_baseline does.
 *
 * Diagnosis: with ASYNCRT_BENCH_STATS=1 a reporter task wakes every 100 ms
 * (a TIMEOUT op) and, once SIGTERM has come, prints the driver's counters
 * per request on stderr and exits -- what the IO path did per request
 * (syscalls, ticks, ops). run.py does not set it.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "asyncrt.h"
#include "http_min.h"

#define IN_CAP 4096
#define OUT_CAP 16384

static asyncrt_io *io;
static int http_mode;
static uint64_t requests; /* echoes, or http requests answered */

static void die(const char *what, const char *detail) {
  fprintf(stderr, "asyncrt_servers: %s: %s\n", what, detail);
  exit(1);
}

static void check(int status, const char *what) {
  if (status != ASYNCRT_OK) die(what, asyncrt_last_error());
}

/* ---- a connection ------------------------------------------------------ */

enum { RECV, SEND, CLOSE, DONE };

typedef struct conn {
  asyncrt_op op;
  int fd;
  int state;      /* what `op` is doing (or is to do next, before submit) */
  int in_flight;  /* op submitted and not yet seen complete */
  size_t in_len;  /* http: bytes of a request not answered yet */
  size_t out_len, out_sent;
  char in[IN_CAP];
  char out[OUT_CAP];
} conn;

/* The op was zeroed once with the connection (calloc): a completed op is
 * the submitter's again and is reused as it is, so no memset per request. */
static void submit(conn *c, asyncrt_context *cx) {
  switch (c->state) {
  case RECV:
    if (http_mode)
      asyncrt_io_prep_recv(&c->op, c->fd, c->in + c->in_len, IN_CAP - c->in_len, 0);
    else
      asyncrt_io_prep_recv(&c->op, c->fd, c->out, OUT_CAP, 0);
    break;
  case SEND:
    asyncrt_io_prep_send(&c->op, c->fd, c->out + c->out_sent, c->out_len - c->out_sent, 0);
    break;
  default:
    asyncrt_io_prep_close(&c->op, c->fd);
  }
  check(asyncrt_io_submit(cx, io, &c->op), "asyncrt_io_submit");
  c->in_flight = 1;
}

/* The state after `op` completed with `ok` (status OK) and `n` (result). */
static int next_state(conn *c, int ok, int64_t n) {
  switch (c->state) {
  case RECV:
    if (!ok || n <= 0) return CLOSE;
    if (http_mode) {
      c->in_len += (size_t)n;
      requests += http_min_answer(c->in, &c->in_len, c->out, &c->out_len, OUT_CAP);
      if (c->out_len == 0) return c->in_len == IN_CAP ? CLOSE : RECV; /* a partial head */
    } else {
      c->out_len = (size_t)n;
      requests++;
    }
    c->out_sent = 0;
    return SEND;
  case SEND:
    if (!ok) return CLOSE;
    c->out_sent += (size_t)n;
    if (c->out_sent < c->out_len) return SEND;
    c->out_len = c->out_sent = 0;
    /* Requests that waited for room in `out`. */
    if (http_mode) {
      size_t more = http_min_answer(c->in, &c->in_len, c->out, &c->out_len, OUT_CAP);
      requests += more;
      if (more) return SEND;
    }
    return RECV;
  default:
    return DONE;
  }
}

static int conn_poll(void *self, asyncrt_context *cx, void *out) {
  (void)out;
  conn *c = self;
  for (;;) {
    if (!c->in_flight) submit(c, cx);
    if (asyncrt_op_poll(&c->op, cx) == ASYNCRT_POLL_PENDING) return ASYNCRT_POLL_PENDING;
    c->in_flight = 0;
    c->state = next_state(c, c->op.status == ASYNCRT_OK, c->op.result);
    if (c->state == DONE) return ASYNCRT_POLL_READY;
  }
}

static void conn_drop(void *self) { free(self); }

static const asyncrt_future_vtable conn_vtable = {
    sizeof(asyncrt_future_vtable), 0, conn_poll, conn_drop, NULL};

/* ---- the accept task --------------------------------------------------- */

typedef struct acceptor {
  asyncrt_op op;
  int fd;
  int in_flight;
} acceptor;

static void start_conn(asyncrt_context *cx, int fd) {
  asyncrt_socket_set_option(fd, ASYNCRT_SOCKOPT_NODELAY, 1);
  conn *c = calloc(1, sizeof *c);
  if (c == NULL) die("calloc", "conn");
  c->fd = fd;
  c->state = RECV;
  asyncrt_future f = {c, &conn_vtable};
  check(asyncrt_spawn(asyncrt_context_executor(cx), &f, ASYNCRT_SPAWN_LOCAL, NULL), "asyncrt_spawn");
}

static int acceptor_poll(void *self, asyncrt_context *cx, void *out) {
  (void)out;
  acceptor *a = self;
  for (;;) {
    if (!a->in_flight) {
      asyncrt_io_prep_accept(&a->op, a->fd, NULL, NULL);
      check(asyncrt_io_submit(cx, io, &a->op), "asyncrt_io_submit(accept)");
      a->in_flight = 1;
    }
    if (asyncrt_op_poll(&a->op, cx) == ASYNCRT_POLL_PENDING) return ASYNCRT_POLL_PENDING;
    a->in_flight = 0;
    if (a->op.status == ASYNCRT_OK)
      start_conn(cx, (int)a->op.result);
    else if (a->op.result != -ECONNABORTED)
      die("accept", strerror((int)-a->op.result));
  }
}

static const asyncrt_future_vtable acceptor_vtable = {
    sizeof(asyncrt_future_vtable), 0, acceptor_poll, NULL, NULL};

/* ---- the reporter (ASYNCRT_BENCH_STATS=1) -------------------------------- */

static volatile sig_atomic_t terminated;

static void on_sigterm(int signo) {
  (void)signo;
  terminated = 1;
}

static void report_stats(void) {
  asyncrt_io_stats st = {.size = sizeof st};
  check(asyncrt_io_stats_get(io, &st), "asyncrt_io_stats_get");
  double r = requests ? (double)requests : 1;
  fprintf(stderr,
          "stats: %s, %llu requests; per request: %.2f submits, %.2f completions, "
          "%.3f syscalls (driver's), %.3f ticks\n",
          asyncrt_io_backend_name(st.backend), (unsigned long long)requests, st.submits / r,
          st.completions / r, st.syscalls / r, st.ticks / r);
}

static int reporter_poll(void *self, asyncrt_context *cx, void *out) {
  (void)out;
  asyncrt_op *op = self;
  for (;;) {
    if (asyncrt_op_done(op)) {
      if (terminated) {
        report_stats();
        exit(0);
      }
      asyncrt_io_prep_timeout(op, 100 * 1000 * 1000);
      check(asyncrt_io_submit(cx, io, op), "asyncrt_io_submit(timeout)");
    }
    if (asyncrt_op_poll(op, cx) == ASYNCRT_POLL_PENDING) return ASYNCRT_POLL_PENDING;
  }
}

static const asyncrt_future_vtable reporter_vtable = {
    sizeof(asyncrt_future_vtable), 0, reporter_poll, NULL, NULL};

int main(int argc, char **argv) {
  if (argc < 3 || strcmp(argv[1], "serve") != 0 ||
      (strcmp(argv[2], "echo") != 0 && strcmp(argv[2], "http") != 0)) {
    fprintf(stderr, "unsupported workload %s\nusage: asyncrt_servers serve echo|http\n",
            argc > 2 ? argv[2] : "?");
    return 2;
  }
  http_mode = strcmp(argv[2], "http") == 0;
  asyncrt_executor *ex;
  check(asyncrt_executor_new(NULL, &ex), "asyncrt_executor_new");
  check(asyncrt_io_open(ex, NULL, &io), "asyncrt_io_open");
  const char *backend = asyncrt_io_backend_name((unsigned)asyncrt_io_backend(io));
  const char *asked = getenv("ASYNCRT_IO");
  if (asked != NULL && strcmp(asked, "auto") != 0 && strcmp(asked, backend) != 0)
    die("backend", "ASYNCRT_IO asked for another backend than the one that runs");
  fprintf(stderr, "backend %s\n", backend);

  acceptor a = {0};
  uint16_t port;
  check(asyncrt_tcp_listen("127.0.0.1", 0, 1024, 0, &a.fd), "asyncrt_tcp_listen");
  check(asyncrt_local_port(a.fd, &port), "asyncrt_local_port");
  static asyncrt_op reporter_op; /* zero: done, so the first poll submits */
  if (getenv("ASYNCRT_BENCH_STATS") != NULL) {
    signal(SIGTERM, on_sigterm);
    asyncrt_future f = {&reporter_op, &reporter_vtable};
    check(asyncrt_spawn(ex, &f, ASYNCRT_SPAWN_LOCAL, NULL), "asyncrt_spawn(reporter)");
  }
  printf("port %u\n", port);
  fflush(stdout);
  asyncrt_future root = {&a, &acceptor_vtable};
  check(asyncrt_block_on(ex, &root, NULL, ASYNCRT_NO_TIMEOUT), "asyncrt_block_on");
  return 0;
}
