/*
 * echo_server.c -- a TCP echo server on asyncrt's IO driver.
 *
 * One task accepts; each connection is a task of its own that receives into
 * a buffer inside its future and sends the bytes back, until the peer
 * closes. Every wait is an IO op (asyncrt_io_prep_* + asyncrt_io_submit +
 * asyncrt_op_poll), written as a coroutine (bindings/c/asyncrt_coro.h), so
 * the same code runs on epoll and on io_uring.
 *
 *   echo_server [--backend auto|epoll|io_uring] [--port P]
 *       serves 127.0.0.1:P (default 7000) until killed;
 *   echo_server [--backend B] --self-test N
 *       serves port 0 (a free port) and runs N client tasks in the same
 *       executor: each connects, sends ROUNDS messages of different sizes
 *       and checks that every byte comes back; then the server stops and
 *       the program prints "echo_server: success" and the driver's counters.
 *       Exits 77 when the backend asked for is refused by the kernel (ctest
 *       reports a skip).
 *
 * Try it by hand:  echo_server --port 7000 &  then  nc 127.0.0.1 7000
 *
 * Buffers: each connection's buffer lives in its task's future, and a task
 * is dropped only after its in-flight ops are complete, so cancelling a
 * connection (or freeing the executor) never leaves the kernel writing into
 * freed memory.
 */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "asyncrt.h"
#include "asyncrt_coro.h"

#define ROUNDS 8
#define MAX_CLIENTS 1000
#define EXIT_SKIP 77

/* Submits `op`; a refused submit leaves the op complete with that status,
 * so the ARC_AWAIT_POLL that follows sees it at once. */
static void io_start(asyncrt_context *cx, asyncrt_io *io, asyncrt_op *op) {
  int rc = asyncrt_io_submit(cx, io, op);
  if (rc != ASYNCRT_OK) {
    op->status = rc;
    op->result = 0;
  }
}

static int op_failed(const asyncrt_op *op) { return op->status != ASYNCRT_OK; }

static const char *op_error(const asyncrt_op *op) {
  return op->status == ASYNCRT_EOS ? strerror((int)-op->result) : asyncrt_status_str(op->status);
}

/* ---- a connection: receive, send back, until end of stream ------------------ */

typedef struct connection {
  arc_state co;
  asyncrt_io *io;
  int fd;
  asyncrt_op op;
  size_t len, sent;
  char buf[16384];
} connection;

static int connection_poll(void *self, asyncrt_context *cx, void *out) {
  connection *c = self;
  (void)out;
  ARC_BEGIN(c->co);
  for (;;) {
    asyncrt_io_prep_recv(&c->op, c->fd, c->buf, sizeof c->buf, 0);
    io_start(cx, c->io, &c->op);
    ARC_AWAIT_POLL(c->co, asyncrt_op_poll(&c->op, cx));
    if (op_failed(&c->op) || c->op.result == 0) {
      break; /* reset, or the peer closed its side */
    }
    c->len = (size_t)c->op.result;
    for (c->sent = 0; c->sent < c->len; c->sent += (size_t)c->op.result) {
      asyncrt_io_prep_send(&c->op, c->fd, c->buf + c->sent, c->len - c->sent, 0);
      io_start(cx, c->io, &c->op);
      ARC_AWAIT_POLL(c->co, asyncrt_op_poll(&c->op, cx));
      if (op_failed(&c->op)) {
        break;
      }
    }
    if (op_failed(&c->op)) {
      break;
    }
  }
  asyncrt_io_prep_close(&c->op, c->fd);
  io_start(cx, c->io, &c->op);
  ARC_AWAIT_POLL(c->co, asyncrt_op_poll(&c->op, cx));
  c->fd = -1;
  ARC_END(c->co);
}

static void connection_drop(void *self) {
  connection *c = self;
  /* Cancelled before its CLOSE op: the driver forgets the fd before it is
   * closed (a plain close(2) could strand the next file with this number on
   * epoll). Once the driver is gone -- the executor's free -- close(2). */
  if (c->fd >= 0 && asyncrt_io_close_fd(c->io, c->fd) != ASYNCRT_OK) {
    close(c->fd);
  }
  free(c);
}

static const asyncrt_future_vtable connection_vtable = {sizeof(asyncrt_future_vtable), 0, connection_poll,
                                                        connection_drop, NULL};

/* Spawns a detached connection task for `fd`; closes it if it cannot. */
static void spawn_connection(asyncrt_context *cx, asyncrt_io *io, int fd) {
  connection *c = calloc(1, sizeof *c);
  asyncrt_future fut;
  asyncrt_task *task = NULL;
  if (c == NULL) {
    close(fd);
    return;
  }
  c->io = io;
  c->fd = fd;
  fut.self = c;
  fut.vtable = &connection_vtable;
  if (asyncrt_spawn(asyncrt_context_executor(cx), &fut, ASYNCRT_SPAWN_LOCAL, &task) == ASYNCRT_OK) {
    asyncrt_task_release(task); /* detached: it ends when its client leaves */
  } /* else the spawn dropped the future, which closed the fd */
}

/* ---- the acceptor: one task, forever (until cancelled) ---------------------- */

typedef struct acceptor {
  arc_state co;
  asyncrt_io *io;
  int listen_fd;
  asyncrt_op op;
  uint64_t accepted;
} acceptor;

static int acceptor_poll(void *self, asyncrt_context *cx, void *out) {
  acceptor *a = self;
  (void)out;
  ARC_BEGIN(a->co);
  for (;;) {
    asyncrt_io_prep_accept(&a->op, a->listen_fd, NULL, NULL);
    io_start(cx, a->io, &a->op);
    ARC_AWAIT_POLL(a->co, asyncrt_op_poll(&a->op, cx));
    if (op_failed(&a->op)) {
      if (a->op.status != ASYNCRT_EOS) {
        break; /* the driver is closing */
      }
      /* EMFILE and friends: report and go on (a real server would back off) */
      fprintf(stderr, "echo_server: accept: %s\n", op_error(&a->op));
      continue;
    }
    a->accepted++;
    spawn_connection(cx, a->io, (int)a->op.result);
  }
  ARC_END(a->co);
}

static const asyncrt_future_vtable acceptor_vtable = {sizeof(asyncrt_future_vtable), 0, acceptor_poll, NULL,
                                                      NULL};

/* ---- the self-test's client ------------------------------------------------------ */

typedef struct client {
  arc_state co;
  asyncrt_io *io;
  int id, fd, round;
  uint16_t port;
  asyncrt_op op;
  unsigned char addr[128];
  uint32_t addrlen;
  size_t len, done;
  char msg[4096], got[4096];
  const char *failure; /* NULL while all is well */
} client;

static size_t message(client *c) {
  /* sizes from 1 byte to a few KiB, different for each client and round */
  size_t len = 1 + (size_t)((c->id * 131 + c->round * 977) % (int)(sizeof c->msg - 1));
  size_t i;
  for (i = 0; i < len; i++) {
    c->msg[i] = (char)('a' + (c->id + c->round + (int)i) % 26);
  }
  return len;
}

static int client_poll(void *self, asyncrt_context *cx, void *out) {
  client *c = self;
  (void)out;
  ARC_BEGIN(c->co);
  c->addrlen = sizeof c->addr;
  if (asyncrt_socket(AF_INET, SOCK_STREAM, &c->fd) != ASYNCRT_OK ||
      asyncrt_sockaddr("127.0.0.1", c->port, (struct sockaddr *)c->addr, &c->addrlen) != ASYNCRT_OK) {
    c->failure = "socket";
    ARC_FINISH(c->co, ASYNCRT_POLL_READY);
  }
  asyncrt_io_prep_connect(&c->op, c->fd, (struct sockaddr *)c->addr, c->addrlen);
  io_start(cx, c->io, &c->op);
  ARC_AWAIT_POLL(c->co, asyncrt_op_poll(&c->op, cx));
  if (op_failed(&c->op)) {
    c->failure = "connect";
  }
  for (c->round = 0; c->round < ROUNDS && c->failure == NULL; c->round++) {
    c->len = message(c);
    for (c->done = 0; c->done < c->len && c->failure == NULL; c->done += (size_t)c->op.result) {
      asyncrt_io_prep_send(&c->op, c->fd, c->msg + c->done, c->len - c->done, 0);
      io_start(cx, c->io, &c->op);
      ARC_AWAIT_POLL(c->co, asyncrt_op_poll(&c->op, cx));
      if (op_failed(&c->op)) {
        c->failure = "send";
      }
    }
    /* the echo may come back in pieces: read until it is all here */
    for (c->done = 0; c->done < c->len && c->failure == NULL; c->done += (size_t)c->op.result) {
      asyncrt_io_prep_recv(&c->op, c->fd, c->got + c->done, c->len - c->done, 0);
      io_start(cx, c->io, &c->op);
      ARC_AWAIT_POLL(c->co, asyncrt_op_poll(&c->op, cx));
      if (op_failed(&c->op) || c->op.result == 0) {
        c->failure = "recv";
      }
    }
    if (c->failure == NULL && memcmp(c->msg, c->got, c->len) != 0) {
      c->failure = "the echo differs from what was sent";
    }
  }
  if (c->fd >= 0) {
    asyncrt_io_prep_close(&c->op, c->fd);
    io_start(cx, c->io, &c->op);
    ARC_AWAIT_POLL(c->co, asyncrt_op_poll(&c->op, cx));
    c->fd = -1;
  }
  ARC_END(c->co);
}

static const asyncrt_future_vtable client_vtable = {sizeof(asyncrt_future_vtable), 0, client_poll, NULL, NULL};

/* ---- the self-test: N clients, then stop the acceptor ------------------------ */

typedef struct self_test {
  arc_state co;
  int n, i;
  asyncrt_future *joins; /* one per client, owned */
} self_test;

static int self_test_poll(void *self, asyncrt_context *cx, void *out) {
  self_test *t = self;
  (void)out;
  ARC_BEGIN(t->co);
  for (t->i = 0; t->i < t->n; t->i++) {
    ARC_AWAIT(t->co, cx, &t->joins[t->i], NULL);
    ARC_DROP_CHILD(&t->joins[t->i]);
  }
  ARC_END(t->co);
}

static void self_test_drop(void *self) {
  self_test *t = self;
  int i;
  for (i = 0; i < t->n; i++) {
    ARC_DROP_CHILD(&t->joins[i]);
  }
}

static const asyncrt_future_vtable self_test_vtable = {sizeof(asyncrt_future_vtable), 0, self_test_poll,
                                                       self_test_drop, NULL};

/* ---- main ------------------------------------------------------------------------ */

static int fail(const char *what, int status) {
  fprintf(stderr, "echo_server: %s failed: %s (%s)\n", what, asyncrt_status_str(status), asyncrt_last_error());
  return 1;
}

static int parse_backend(const char *name, unsigned *backend) {
  unsigned b;
  for (b = ASYNCRT_IO_AUTO; b <= ASYNCRT_IO_URING; b++) {
    if (strcmp(name, asyncrt_io_backend_name(b)) == 0) {
      *backend = b;
      return 0;
    }
  }
  return -1;
}

int main(int argc, char **argv) {
  asyncrt_io_config cfg;
  asyncrt_executor *ex = NULL;
  asyncrt_io *io = NULL;
  acceptor acc;
  asyncrt_future acc_fut = {&acc, &acceptor_vtable};
  asyncrt_task *acc_task = NULL;
  uint16_t port = 7000;
  int clients = 0, i, rc, failures = 0;
  asyncrt_io_stats stats;

  asyncrt_io_config_init(&cfg);
  for (i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--backend") == 0 && i + 1 < argc && parse_backend(argv[i + 1], &cfg.backend) == 0) {
      i++;
    } else if (strcmp(argv[i], "--port") == 0 && i + 1 < argc) {
      port = (uint16_t)atoi(argv[++i]);
    } else if (strcmp(argv[i], "--self-test") == 0 && i + 1 < argc) {
      clients = atoi(argv[++i]);
      port = 0;
    } else {
      fprintf(stderr, "usage: %s [--backend auto|epoll|io_uring] [--port P | --self-test N]\n", argv[0]);
      return 2;
    }
  }
  if (clients < 0 || clients > MAX_CLIENTS) {
    fprintf(stderr, "echo_server: --self-test takes 1..%d clients\n", MAX_CLIENTS);
    return 2;
  }

  if ((rc = asyncrt_executor_new(NULL, &ex)) != ASYNCRT_OK) {
    return fail("asyncrt_executor_new", rc);
  }
  rc = asyncrt_io_open(ex, &cfg, &io);
  if (rc == ASYNCRT_ENOTSUP) {
    printf("echo_server: backend %s refused by this kernel: skipped (%s)\n", asyncrt_io_backend_name(cfg.backend),
           asyncrt_last_error());
    asyncrt_executor_free(ex);
    return EXIT_SKIP;
  }
  if (rc != ASYNCRT_OK) {
    return fail("asyncrt_io_open", rc);
  }
  memset(&acc, 0, sizeof acc);
  acc.io = io;
  if ((rc = asyncrt_tcp_listen("127.0.0.1", port, 0, 0, &acc.listen_fd)) != ASYNCRT_OK ||
      (rc = asyncrt_local_port(acc.listen_fd, &port)) != ASYNCRT_OK) {
    return fail("listen", rc);
  }
  printf("echo_server: %s backend, listening on 127.0.0.1:%u\n", asyncrt_io_backend_name((unsigned)asyncrt_io_backend(io)),
         (unsigned)port);
  fflush(stdout);
  if ((rc = asyncrt_spawn(ex, &acc_fut, ASYNCRT_SPAWN_LOCAL, &acc_task)) != ASYNCRT_OK) {
    return fail("asyncrt_spawn", rc);
  }

  if (clients == 0) { /* serve until killed */
    asyncrt_future join;
    if ((rc = asyncrt_task_join(acc_task, &join)) != ASYNCRT_OK) {
      return fail("asyncrt_task_join", rc);
    }
    rc = asyncrt_block_on(ex, &join, NULL, ASYNCRT_NO_TIMEOUT);
    return fail("serving", rc);
  }

  {
    client *cs = calloc((size_t)clients, sizeof *cs);
    asyncrt_future *joins = calloc((size_t)clients, sizeof *joins);
    self_test t;
    asyncrt_future t_fut = {&t, &self_test_vtable};
    if (cs == NULL || joins == NULL) {
      return fail("calloc", ASYNCRT_ENOMEM);
    }
    for (i = 0; i < clients; i++) {
      asyncrt_future f = {&cs[i], &client_vtable};
      asyncrt_task *task = NULL;
      cs[i].io = io;
      cs[i].id = i;
      cs[i].fd = -1;
      cs[i].port = port;
      if ((rc = asyncrt_spawn(ex, &f, ASYNCRT_SPAWN_LOCAL, &task)) != ASYNCRT_OK ||
          (rc = asyncrt_task_join(task, &joins[i])) != ASYNCRT_OK) {
        return fail("spawning a client", rc);
      }
      asyncrt_task_release(task);
    }
    memset(&t, 0, sizeof t);
    t.n = clients;
    t.joins = joins;
    /* bounded: a hang fails with a message instead */
    rc = asyncrt_block_on(ex, &t_fut, NULL, 60LL * 1000 * 1000 * 1000);
    if (rc != ASYNCRT_OK) {
      return fail("the self-test", rc);
    }
    for (i = 0; i < clients; i++) {
      if (cs[i].failure != NULL) {
        fprintf(stderr, "echo_server: client %d failed in round %d: %s\n", i, cs[i].round, cs[i].failure);
        failures++;
      }
    }
    stats.size = sizeof stats;
    asyncrt_io_stats_get(io, &stats);
    asyncrt_task_cancel(acc_task); /* its accept op is cancelled and reaped */
    asyncrt_task_release(acc_task);
    if ((rc = asyncrt_io_close(io)) != ASYNCRT_OK) {
      return fail("asyncrt_io_close", rc);
    }
    close(acc.listen_fd);
    asyncrt_executor_free(ex);
    free(cs);
    free(joins);
    printf("echo_server: %d clients x %d rounds, %llu connections accepted, %llu ops, %llu syscalls\n", clients,
           ROUNDS, (unsigned long long)acc.accepted, (unsigned long long)stats.submits,
           (unsigned long long)stats.syscalls);
    if (failures != 0 || acc.accepted != (uint64_t)clients) {
      fprintf(stderr, "echo_server: FAILED (%d clients failed)\n", failures);
      return 1;
    }
    printf("echo_server: success\n");
    return 0;
  }
}
