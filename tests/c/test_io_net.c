/* IO drivers over sockets (asyncrt 0.7), on every backend: TCP echo round
 * trips over many connections on a local and on a 2-worker thread-per-core
 * executor, partial reads and writes through small socket buffers, a
 * connection reset, a refused connect, fd exhaustion, UDP with addresses,
 * Unix sockets and IPv6. The futures are state machines over io_step; a
 * failure records the state and the op's status and result. Nothing is
 * timed; every wait is bounded (IO_WAIT_NS). */
#define _GNU_SOURCE
#include "iotest.h" /* first: check.h sets the feature macros it needs */
#include "testfut.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdatomic.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/un.h>

#define CONNS 64
#define ROUNDS 4
#define MSG 200

/* ---- the echo server: an acceptor that spawns one echo task per connection ---- */

typedef struct echo_conn {
  asyncrt_io *io;
  int fd;
  int *closed; /* counts the connections that ended */
  int state; /* 0 read, 1 write, 2 close */
  size_t len, done;
  io_step st;
  io_fail fail;
  unsigned char buf[4096];
} echo_conn;

static int echo_conn_poll(void *self, asyncrt_context *cx, void *out) {
  echo_conn *c = self;
  int rc = 0, r;
  (void)out;
  for (;;) {
    switch (c->state) {
    case 0:
      if (!c->st.submitted) asyncrt_io_prep_recv(&c->st.op, c->fd, c->buf, sizeof c->buf, 0);
      break;
    case 1:
      if (!c->st.submitted) asyncrt_io_prep_send(&c->st.op, c->fd, c->buf + c->done, c->len - c->done, 0);
      break;
    default:
      if (!c->st.submitted) asyncrt_io_prep_close(&c->st.op, c->fd);
      break;
    }
    r = io_step_poll(&c->st, cx, c->io, &rc);
    if (r == 0) return ASYNCRT_POLL_PENDING;
    if (r < 0 || c->st.op.status != ASYNCRT_OK) {
      c->fail = (io_fail){c->state, r < 0 ? rc : c->st.op.status, c->st.op.result, "echo"};
      io_fail_print("echo connection", &c->fail);
      asyncrt_context_fail(cx, c->fail.status);
      return ASYNCRT_POLL_ERROR;
    }
    switch (c->state) {
    case 0:
      if (c->st.op.result == 0) c->state = 2; /* the client is done */
      else c->len = (size_t)c->st.op.result, c->done = 0, c->state = 1;
      break;
    case 1:
      c->done += (size_t)c->st.op.result;
      if (c->done == c->len) c->state = 0;
      break;
    default: __atomic_add_fetch(c->closed, 1, __ATOMIC_ACQ_REL); return ASYNCRT_POLL_READY;
    }
  }
}

static void free_self(void *self) { free(self); }

static const asyncrt_future_vtable echo_conn_vtable = {
    .size = sizeof(asyncrt_future_vtable), .poll = echo_conn_poll, .drop = free_self};

typedef struct acceptor {
  asyncrt_io *io;
  int fd, want, accepted;
  int closed; /* the echo connections' counter */
  io_step st;
  io_fail fail;
} acceptor;

static int acceptor_poll(void *self, asyncrt_context *cx, void *out) {
  acceptor *a = self;
  int rc = 0, r;
  (void)out;
  while (a->accepted < a->want) {
    if (!a->st.submitted) asyncrt_io_prep_accept(&a->st.op, a->fd, NULL, NULL);
    r = io_step_poll(&a->st, cx, a->io, &rc);
    if (r == 0) return ASYNCRT_POLL_PENDING;
    if (r < 0 || a->st.op.status != ASYNCRT_OK) {
      a->fail = (io_fail){0, r < 0 ? rc : a->st.op.status, a->st.op.result, "accept"};
      io_fail_print("acceptor", &a->fail);
      asyncrt_context_fail(cx, a->fail.status);
      return ASYNCRT_POLL_ERROR;
    }
    echo_conn *c = calloc(1, sizeof *c);
    if (!c) return ASYNCRT_POLL_ERROR;
    c->io = a->io;
    c->fd = (int)a->st.op.result;
    c->closed = &a->closed;
    asyncrt_future f = {c, &echo_conn_vtable};
    rc = asyncrt_spawn(asyncrt_context_executor(cx), &f, ASYNCRT_SPAWN_LOCAL, NULL);
    if (rc) {
      fprintf(stderr, "  acceptor: spawn: %s\n", asyncrt_last_error());
      return ASYNCRT_POLL_ERROR;
    }
    a->accepted++;
  }
  return ASYNCRT_POLL_READY;
}

static void no_drop(void *self) { (void)self; }

/* Freed by the test: its echo tasks count into it. */
static const asyncrt_future_vtable acceptor_vtable = {
    .size = sizeof(asyncrt_future_vtable), .poll = acceptor_poll, .drop = no_drop};

/* ---- the client: connect, ROUNDS round trips of `len` bytes, close ---------- */

enum { CL_CONNECT, CL_WRITE, CL_READ, CL_CLOSE };

typedef struct client {
  asyncrt_io *io;
  int fd, id, state, round, rounds;
  struct sockaddr_storage addr;
  uint32_t addrlen;
  size_t len, done;
  io_step st;
  io_fail fail;
  int finished;
  unsigned char *out, *in;
} client;

static void client_fill(client *c) {
  for (size_t i = 0; i < c->len; i++) c->out[i] = (unsigned char)(c->id * 31 + c->round * 7 + i);
}

static int client_poll(void *self, asyncrt_context *cx, void *out) {
  client *c = self;
  int rc = 0, r;
  (void)out;
  for (;;) {
    if (!c->st.submitted) {
      switch (c->state) {
      case CL_CONNECT:
        asyncrt_io_prep_connect(&c->st.op, c->fd, (struct sockaddr *)&c->addr, c->addrlen);
        break;
      case CL_WRITE: asyncrt_io_prep_write(&c->st.op, c->fd, c->out + c->done, c->len - c->done, -1); break;
      case CL_READ: asyncrt_io_prep_read(&c->st.op, c->fd, c->in + c->done, c->len - c->done, -1); break;
      default: asyncrt_io_prep_close(&c->st.op, c->fd); break;
      }
    }
    r = io_step_poll(&c->st, cx, c->io, &rc);
    if (r == 0) return ASYNCRT_POLL_PENDING;
    if (r < 0 || c->st.op.status != ASYNCRT_OK || (c->state == CL_READ && c->st.op.result == 0)) {
      c->fail = (io_fail){c->state, r < 0 ? rc : c->st.op.status, c->st.op.result, "client"};
      if (c->fail.status == ASYNCRT_OK) c->fail.status = ASYNCRT_EFAILED, c->fail.what = "early end of stream";
      io_fail_print("client", &c->fail);
      asyncrt_context_fail(cx, c->fail.status);
      return ASYNCRT_POLL_ERROR;
    }
    switch (c->state) {
    case CL_CONNECT:
      c->state = CL_WRITE;
      c->done = 0;
      client_fill(c);
      break;
    case CL_WRITE:
      c->done += (size_t)c->st.op.result;
      if (c->done == c->len) c->state = CL_READ, c->done = 0;
      break;
    case CL_READ:
      c->done += (size_t)c->st.op.result;
      if (c->done < c->len) break;
      if (memcmp(c->in, c->out, c->len) != 0) {
        c->fail = (io_fail){CL_READ, ASYNCRT_EFAILED, 0, "echo differs"};
        io_fail_print("client", &c->fail);
        asyncrt_context_fail(cx, ASYNCRT_EFAILED);
        return ASYNCRT_POLL_ERROR;
      }
      if (++c->round < c->rounds) {
        c->state = CL_WRITE;
        c->done = 0;
        client_fill(c);
      } else {
        c->state = CL_CLOSE;
      }
      break;
    default: c->finished = 1; return ASYNCRT_POLL_READY;
    }
  }
}

static void client_drop(void *self) {
  client *c = self;
  free(c->out);
  free(c->in);
  free(c);
}

static const asyncrt_future_vtable client_vtable = {
    .size = sizeof(asyncrt_future_vtable), .poll = client_poll, .drop = client_drop};

static client *client_new(asyncrt_io *io, int id, const struct sockaddr *addr, uint32_t addrlen, size_t len,
                          int rounds) {
  client *c = calloc(1, sizeof *c);
  if (!c) return NULL;
  c->io = io;
  c->id = id;
  c->len = len;
  c->rounds = rounds;
  c->out = malloc(len);
  c->in = malloc(len);
  memcpy(&c->addr, addr, addrlen);
  c->addrlen = addrlen;
  if (!c->out || !c->in || asyncrt_socket(addr->sa_family, SOCK_STREAM, &c->fd) != ASYNCRT_OK) {
    fprintf(stderr, "  client_new: %s\n", asyncrt_last_error());
    client_drop(c);
    return NULL;
  }
  return c;
}

/* n clients against an echo server on listen socket lfd (address addr):
 * every client's join must be OK. */
static void echo_clients(io_env *v, int lfd, const struct sockaddr *addr, uint32_t addrlen, int n, size_t len,
                         int rounds) {
  acceptor *a = calloc(1, sizeof *a);
  asyncrt_task *at = NULL, *ct[CONNS];
  int i;
  CHECK(a != NULL && n <= CONNS);
  a->io = v->io;
  a->fd = lfd;
  a->want = n;
  asyncrt_future af = {a, &acceptor_vtable};
  CHECK_OK(asyncrt_spawn(v->ex, &af, ASYNCRT_SPAWN_LOCAL, &at));
  for (i = 0; i < n; i++) {
    client *c = client_new(v->io, i, addr, addrlen, len, rounds);
    CHECK(c != NULL);
    asyncrt_future cf = {c, &client_vtable};
    CHECK_OK(asyncrt_spawn(v->ex, &cf, ASYNCRT_SPAWN_LOCAL, &ct[i]));
  }
  for (i = 0; i < n; i++) CHECK_OK(io_join(v, ct[i]));
  CHECK_OK(io_join(v, at));
  /* Every echo task saw its client's end and closed its side. */
  CHECK(io_wait_count(v, &a->closed, n));
  free(a);
}

static void echo_tcp(io_env *v) {
  int lfd;
  uint16_t port;
  struct sockaddr_storage ss;
  uint32_t len;
  CHECK_OK(asyncrt_tcp_listen("127.0.0.1", 0, 128, 0, &lfd));
  CHECK_OK(asyncrt_local_port(lfd, &port));
  CHECK(port != 0);
  CHECK_OK(asyncrt_sockaddr("127.0.0.1", port, (struct sockaddr *)&ss, &len));
  echo_clients(v, lfd, (struct sockaddr *)&ss, len, CONNS, MSG, ROUNDS);
  CHECK_PASSED();
  asyncrt_io_stats st = {.size = sizeof st};
  CHECK_OK(asyncrt_io_stats_get(v->io, &st));
  /* Each client: connect + ROUNDS x (write + read) + close, at least. */
  CHECK(st.submits >= (uint64_t)CONNS * (2 + 2 * ROUNDS));
  CHECK_INT(st.in_flight, 0);
  CHECK_INT(st.completions, st.submits);
  CHECK_INT(st.workers, v->threads ? (unsigned)v->threads : 1u);
  CHECK_INT(st.backend, v->backend);
  close(lfd);
}

static void test_echo_local(void) {
  io_env v;
  FOR_EACH_BACKEND(v, 0, echo_tcp);
}

static void test_echo_threads(void) {
  io_env v;
  FOR_EACH_BACKEND(v, 2, echo_tcp);
}

/* ---- partial reads and writes: 1 MiB through small socket buffers ------------ */

typedef struct bulk {
  asyncrt_io *io;
  int fd, writer, state;
  unsigned char *buf;
  size_t len, done;
  int ops, partial; /* ops made; results shorter than asked */
  io_step st;
  io_fail fail;
} bulk;

static int bulk_poll(void *self, asyncrt_context *cx, void *out) {
  bulk *b = self;
  int rc = 0, r;
  (void)out;
  while (b->done < b->len) {
    if (!b->st.submitted) {
      if (b->writer) asyncrt_io_prep_write(&b->st.op, b->fd, b->buf + b->done, b->len - b->done, -1);
      else asyncrt_io_prep_read(&b->st.op, b->fd, b->buf + b->done, b->len - b->done, -1);
    }
    r = io_step_poll(&b->st, cx, b->io, &rc);
    if (r == 0) return ASYNCRT_POLL_PENDING;
    if (r < 0 || b->st.op.status != ASYNCRT_OK || b->st.op.result == 0) {
      b->fail = (io_fail){b->writer, r < 0 ? rc : b->st.op.status, b->st.op.result, "bulk"};
      io_fail_print(b->writer ? "bulk writer" : "bulk reader", &b->fail);
      asyncrt_context_fail(cx, b->fail.status ? b->fail.status : ASYNCRT_EFAILED);
      return ASYNCRT_POLL_ERROR;
    }
    b->ops++;
    if ((size_t)b->st.op.result < b->len - b->done) b->partial++;
    b->done += (size_t)b->st.op.result;
  }
  return ASYNCRT_POLL_READY;
}

static const asyncrt_future_vtable bulk_vtable = {.size = sizeof(asyncrt_future_vtable), .poll = bulk_poll,
                                                  .drop = no_drop};

#define BULK (1u << 20)

/* A connected TCP pair over loopback: *a connected to *b. */
static int tcp_pair(int *a, int *b) {
  int lfd, rc;
  uint16_t port;
  struct sockaddr_storage ss;
  uint32_t len;
  if (asyncrt_tcp_listen("127.0.0.1", 0, 8, 0, &lfd) || asyncrt_local_port(lfd, &port) ||
      asyncrt_sockaddr("127.0.0.1", port, (struct sockaddr *)&ss, &len) ||
      asyncrt_socket(AF_INET, SOCK_STREAM, a))
    return -1;
  rc = connect(*a, (struct sockaddr *)&ss, len);
  if (rc < 0 && errno != EINPROGRESS) return -1;
  for (int i = 0; i < 5000; i++) { /* the connection is in the backlog almost at once */
    *b = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (*b >= 0) break;
    tf_sleep_ms(1);
  }
  close(lfd);
  return *b >= 0 ? 0 : -1;
}

static void partial(io_env *v) {
  int a, b;
  CHECK(tcp_pair(&a, &b) == 0);
  CHECK_OK(asyncrt_socket_set_option(a, ASYNCRT_SOCKOPT_SNDBUF, 4096));
  /* Not below the loopback MSS (64 KiB): a window smaller than a segment
   * makes TCP crawl on zero-window probes. */
  CHECK_OK(asyncrt_socket_set_option(b, ASYNCRT_SOCKOPT_RCVBUF, 128 * 1024));
  bulk *w = calloc(1, sizeof *w), *r = calloc(1, sizeof *r);
  CHECK(w && r);
  w->io = r->io = v->io;
  w->fd = a, r->fd = b;
  w->writer = 1;
  w->len = r->len = BULK;
  w->buf = malloc(BULK);
  r->buf = calloc(1, BULK);
  CHECK(w->buf && r->buf);
  for (size_t i = 0; i < BULK; i++) w->buf[i] = (unsigned char)(i * 2654435761u >> 13);
  asyncrt_task *wt, *rt;
  asyncrt_future wf = {w, &bulk_vtable}, rf = {r, &bulk_vtable};
  CHECK_OK(asyncrt_spawn(v->ex, &wf, ASYNCRT_SPAWN_LOCAL, &wt));
  CHECK_OK(asyncrt_spawn(v->ex, &rf, ASYNCRT_SPAWN_LOCAL, &rt));
  CHECK_OK(io_join(v, wt));
  CHECK_OK(io_join(v, rt));
  CHECK(memcmp(w->buf, r->buf, BULK) == 0);
  /* 1 MiB cannot pass 4 KiB buffers in one call: the results were partial. */
  CHECK(w->partial >= 1);
  CHECK(r->ops >= 2);
  close(a);
  close(b);
  free(w->buf);
  free(r->buf);
  free(w);
  free(r);
}

static void test_partial(void) {
  io_env v;
  FOR_EACH_BACKEND(v, 0, partial);
  FOR_EACH_BACKEND(v, 2, partial);
}

/* ---- single ops awaited by a one-op future --------------------------------- */

/* Runs one prepared op through asyncrt_io_future: the status block_on gave
 * (the op's status if it failed), the op's result in *res. */
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

static void reset(io_env *v) {
  int a, b;
  char buf[16];
  asyncrt_op op;
  int64_t res = 0;
  CHECK(tcp_pair(&a, &b) == 0);
  /* b closes with SO_LINGER 0: a reset, not a FIN. */
  CHECK_OK(asyncrt_socket_set_option(b, ASYNCRT_SOCKOPT_LINGER, 0));
  int lin;
  CHECK_OK(asyncrt_socket_get_option(b, ASYNCRT_SOCKOPT_LINGER, &lin));
  CHECK_INT(lin, 0);
  memset(&op, 0, sizeof op);
  asyncrt_io_prep_close(&op, b);
  CHECK_OK(one_op(v, &op, &res));
  CHECK_INT(res, 0);
  memset(&op, 0, sizeof op);
  asyncrt_io_prep_recv(&op, a, buf, sizeof buf, 0);
  CHECK_STATUS(one_op(v, &op, &res), ASYNCRT_EOS);
  CHECK_INT(op.status, ASYNCRT_EOS);
  CHECK_INT(res, -ECONNRESET);
  close(a);
}

static void test_reset(void) {
  io_env v;
  FOR_EACH_BACKEND(v, 0, reset);
}

static void refused(io_env *v) {
  int lfd, fd;
  uint16_t port;
  struct sockaddr_storage ss;
  uint32_t len;
  asyncrt_op op;
  int64_t res = 0;
  /* A port that was just listened on and closed: nobody listens there. */
  CHECK_OK(asyncrt_tcp_listen("127.0.0.1", 0, 1, 0, &lfd));
  CHECK_OK(asyncrt_local_port(lfd, &port));
  close(lfd);
  CHECK_OK(asyncrt_sockaddr("127.0.0.1", port, (struct sockaddr *)&ss, &len));
  CHECK_OK(asyncrt_socket(AF_INET, SOCK_STREAM, &fd));
  memset(&op, 0, sizeof op);
  asyncrt_io_prep_connect(&op, fd, (struct sockaddr *)&ss, len);
  CHECK_STATUS(one_op(v, &op, &res), ASYNCRT_EOS);
  CHECK_INT(res, -ECONNREFUSED);
  close(fd);
}

static void test_refused(void) {
  io_env v;
  FOR_EACH_BACKEND(v, 0, refused);
  FOR_EACH_BACKEND(v, 2, refused);
}

/* ---- fd exhaustion ------------------------------------------------------------- */

static void emfile(io_env *v) {
  int lfd, cfd, fd, rc;
  uint16_t port;
  struct sockaddr_storage ss;
  uint32_t len;
  struct rlimit old, low;
  int fills[256], nfill = 0;
  asyncrt_op op;
  int64_t res = 0;
  CHECK_OK(asyncrt_tcp_listen("127.0.0.1", 0, 8, 0, &lfd));
  CHECK_OK(asyncrt_local_port(lfd, &port));
  CHECK_OK(asyncrt_sockaddr("127.0.0.1", port, (struct sockaddr *)&ss, &len));
  CHECK_OK(asyncrt_socket(AF_INET, SOCK_STREAM, &cfd));
  rc = connect(cfd, (struct sockaddr *)&ss, len); /* lands in lfd's backlog */
  CHECK(rc == 0 || errno == EINPROGRESS);
  /* The limit just above the highest fd in use, then fill what is left. */
  CHECK(getrlimit(RLIMIT_NOFILE, &old) == 0);
  int top = open("/dev/null", O_RDONLY | O_CLOEXEC);
  CHECK(top >= 0);
  close(top);
  low = old;
  low.rlim_cur = (rlim_t)top + 8;
  CHECK(setrlimit(RLIMIT_NOFILE, &low) == 0);
  while (nfill < 256 && (fd = open("/dev/null", O_RDONLY | O_CLOEXEC)) >= 0) fills[nfill++] = fd;
  /* No fd left: asyncrt_socket says so, and so does ACCEPT, as -EMFILE. */
  rc = asyncrt_socket(AF_INET, SOCK_STREAM, &fd);
  int err = asyncrt_last_errno();
  memset(&op, 0, sizeof op);
  asyncrt_io_prep_accept(&op, lfd, NULL, NULL);
  int arc = one_op(v, &op, &res);
  while (nfill > 0) close(fills[--nfill]);
  setrlimit(RLIMIT_NOFILE, &old);
  CHECK_STATUS(rc, ASYNCRT_EOS);
  CHECK_INT(err, EMFILE);
  CHECK_STATUS(arc, ASYNCRT_EOS);
  CHECK_INT(res, -EMFILE);
  /* With fds back, the same connection is accepted. */
  memset(&op, 0, sizeof op);
  asyncrt_io_prep_accept(&op, lfd, NULL, NULL);
  CHECK_OK(one_op(v, &op, &res));
  CHECK(res >= 0);
  close((int)res);
  close(cfd);
  close(lfd);
}

static void test_emfile(void) {
  io_env v;
  FOR_EACH_BACKEND(v, 0, emfile);
}

/* ---- UDP with addresses: SENDMSG / RECVMSG --------------------------------------- */

static void udp(io_env *v) {
  int a, b;
  uint16_t pa, pb;
  struct sockaddr_storage to, from;
  uint32_t tolen;
  char out[] = "datagram", in[32] = {0};
  struct iovec oiov = {out, sizeof out}, iiov = {in, sizeof in};
  struct msghdr smsg, rmsg;
  asyncrt_op op;
  int64_t res = 0;
  CHECK_OK(asyncrt_udp_bind("127.0.0.1", 0, &a));
  CHECK_OK(asyncrt_udp_bind("127.0.0.1", 0, &b));
  CHECK_OK(asyncrt_local_port(a, &pa));
  CHECK_OK(asyncrt_local_port(b, &pb));
  CHECK_OK(asyncrt_sockaddr("127.0.0.1", pb, (struct sockaddr *)&to, &tolen));
  /* The receive first: it waits for the datagram. */
  memset(&rmsg, 0, sizeof rmsg);
  rmsg.msg_name = &from;
  rmsg.msg_namelen = sizeof from;
  rmsg.msg_iov = &iiov;
  rmsg.msg_iovlen = 1;
  asyncrt_op *rop = calloc(1, sizeof *rop);
  asyncrt_io_future_state *rst = calloc(1, sizeof *rst);
  CHECK(rop && rst);
  asyncrt_io_prep_recvmsg(rop, b, &rmsg, 0);
  asyncrt_future rf;
  CHECK_OK(asyncrt_io_future(rst, v->io, rop, &rf));
  asyncrt_task *rt;
  CHECK_OK(asyncrt_spawn(v->ex, &rf, ASYNCRT_SPAWN_LOCAL, &rt));
  memset(&smsg, 0, sizeof smsg);
  smsg.msg_name = &to;
  smsg.msg_namelen = tolen;
  smsg.msg_iov = &oiov;
  smsg.msg_iovlen = 1;
  memset(&op, 0, sizeof op);
  asyncrt_io_prep_sendmsg(&op, a, &smsg, 0);
  CHECK_OK(one_op(v, &op, &res));
  CHECK_INT(res, sizeof out);
  CHECK_OK(io_join(v, rt));
  CHECK_INT(rop->status, ASYNCRT_OK);
  CHECK_INT(rop->result, sizeof out);
  CHECK(strcmp(in, "datagram") == 0);
  CHECK_INT(rmsg.msg_namelen, sizeof(struct sockaddr_in));
  CHECK_INT(ntohs(((struct sockaddr_in *)&from)->sin_port), pa);
  free(rop);
  free(rst);
  close(a);
  close(b);
}

static void test_udp(void) {
  io_env v;
  FOR_EACH_BACKEND(v, 0, udp);
  FOR_EACH_BACKEND(v, 2, udp);
}

/* ---- Unix sockets and IPv6: the echo over other families ---------------------------- */

static void unix_echo(io_env *v) {
  char path[64];
  int lfd;
  struct sockaddr_storage ss;
  uint32_t len;
  snprintf(path, sizeof path, "/tmp/asyncrt_io_test_%d.sock", (int)getpid());
  CHECK_OK(asyncrt_unix_listen(path, 16, &lfd));
  CHECK_OK(asyncrt_unix_sockaddr(path, (struct sockaddr *)&ss, &len));
  echo_clients(v, lfd, (struct sockaddr *)&ss, len, 8, MSG, 2);
  close(lfd);
  unlink(path);
}

static void test_unix(void) {
  io_env v;
  FOR_EACH_BACKEND(v, 0, unix_echo);
}

static void ipv6_echo(io_env *v) {
  int lfd;
  uint16_t port;
  struct sockaddr_storage ss;
  uint32_t len;
  int rc = asyncrt_tcp_listen("::1", 0, 16, ASYNCRT_LISTEN_V6ONLY, &lfd);
  if (rc == ASYNCRT_EOS) {
    printf("  skip IPv6: ::1 is not available here (%s)\n", asyncrt_last_error());
    return;
  }
  CHECK_OK(rc);
  CHECK_OK(asyncrt_local_port(lfd, &port));
  CHECK_OK(asyncrt_sockaddr("::1", port, (struct sockaddr *)&ss, &len));
  CHECK_INT(ss.ss_family, AF_INET6);
  echo_clients(v, lfd, (struct sockaddr *)&ss, len, 8, MSG, 2);
  close(lfd);
}

static void test_ipv6(void) {
  io_env v;
  FOR_EACH_BACKEND(v, 0, ipv6_echo);
}

int main(void) {
  CHECK_BEGIN();
  RUN(test_echo_local);
  RUN(test_echo_threads);
  RUN(test_partial);
  RUN(test_reset);
  RUN(test_refused);
  RUN(test_emfile);
  RUN(test_udp);
  RUN(test_unix);
  RUN(test_ipv6);
  CHECK_END("test_io_net");
}
