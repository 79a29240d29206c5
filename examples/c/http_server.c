/*
 * http_server.c -- an HTTP/1.1 "hello world" server with keep-alive and
 * pipelining, on asyncrt's IO driver, with a small hand-written parser.
 *
 *   http_server [--backend auto|epoll|io_uring] [--port P] [--threads N]
 *
 * serves GET (and HEAD) of any path with "Hello, world!\n" on 127.0.0.1:P
 * (default 8080; 0 picks a free port) and prints the port it listens on
 * ("http_server: ... listening on 127.0.0.1:PORT") before it serves. With
 * --threads N (N > 1) it runs a thread-per-core executor of N workers, each
 * with its own SO_REUSEPORT listener and acceptor task placed on it; the
 * default is one local executor on the main thread. Exits 77 when the
 * backend asked for is refused by the kernel.
 *
 * Load it with wrk (https://github.com/wg/wrk; apt-get install wrk):
 *
 *     http_server --port 8080 --backend io_uring &
 *     wrk -t2 -c64 -d10s http://127.0.0.1:8080/
 *
 * Each connection is a task: it receives into its buffer, answers every
 * complete request found there in one send (so pipelined requests get their
 * responses in one write), keeps the connection open unless the request asks
 * otherwise (HTTP/1.0 without "Connection: keep-alive", or "Connection:
 * close"), and closes it at end of stream or on a malformed request (400).
 * Request bodies (Content-Length) are read and ignored; chunked uploads are
 * refused (501), as is anything that does not fit the buffer (431).
 */
#define _POSIX_C_SOURCE 200809L
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "asyncrt.h"
#include "asyncrt_coro.h"

#define EXIT_SKIP 77
#define IN_SIZE 8192
#define OUT_SIZE 65536
#define MAX_THREADS 64

static const char BODY[] = "Hello, world!\n";

static void io_start(asyncrt_context *cx, asyncrt_io *io, asyncrt_op *op) {
  int rc = asyncrt_io_submit(cx, io, op);
  if (rc != ASYNCRT_OK) { /* the op stays complete with that status */
    op->status = rc;
    op->result = 0;
  }
}

/* ---- the parser ------------------------------------------------------------------
 * A request is a request line and headers up to an empty line, then
 * Content-Length bytes of body. parse_request looks at in[0..len) and says
 * how many bytes the first request takes (0: not complete yet; -status: an
 * error to answer with that status code). */

typedef struct request {
  int head;       /* HEAD: no body in the response */
  int keep_alive; /* the connection stays open after the response */
  int http10;     /* an HTTP/1.0 request: keep-alive must be said in the response */
} request;

/* Case-insensitive "does the header value contain this token". */
static int has_token(const char *value, size_t len, const char *token) {
  size_t n = strlen(token), i;
  for (i = 0; i + n <= len; i++) {
    if (strncasecmp(value + i, token, n) == 0) {
      return 1;
    }
  }
  return 0;
}

static long parse_request(const char *in, size_t len, request *req) {
  const char *end = NULL, *line, *eol, *sp1, *sp2;
  size_t i;
  long body = 0;
  int http10;
  for (i = 0; i + 3 < len; i++) {
    if (in[i] == '\r' && in[i + 1] == '\n' && in[i + 2] == '\r' && in[i + 3] == '\n') {
      end = in + i + 4;
      break;
    }
  }
  if (end == NULL) {
    return len >= IN_SIZE ? -431 : 0;
  }
  /* request line: METHOD SP TARGET SP HTTP/1.x */
  eol = memchr(in, '\r', (size_t)(end - in));
  sp1 = memchr(in, ' ', (size_t)(eol - in));
  sp2 = sp1 ? memchr(sp1 + 1, ' ', (size_t)(eol - sp1 - 1)) : NULL;
  if (sp1 == NULL || sp2 == NULL || eol - sp2 - 1 != 8 || memcmp(sp2 + 1, "HTTP/1.", 7) != 0 ||
      (sp2[8] != '0' && sp2[8] != '1') || sp1 == in || sp2 == sp1 + 1) {
    return -400;
  }
  http10 = sp2[8] == '0';
  req->http10 = http10;
  req->head = (sp1 - in == 4 && memcmp(in, "HEAD", 4) == 0);
  req->keep_alive = !http10;
  /* headers: NAME ':' OWS VALUE CRLF */
  for (line = eol + 2; line < end - 2; line = eol + 2) {
    const char *colon, *value;
    eol = memchr(line, '\r', (size_t)(end - line));
    colon = memchr(line, ':', (size_t)(eol - line));
    if (colon == NULL || colon == line) {
      return -400;
    }
    for (value = colon + 1; value < eol && (*value == ' ' || *value == '\t'); value++) {
    }
    if (colon - line == 10 && strncasecmp(line, "Connection", 10) == 0) {
      if (has_token(value, (size_t)(eol - value), "close")) {
        req->keep_alive = 0;
      } else if (has_token(value, (size_t)(eol - value), "keep-alive")) {
        req->keep_alive = 1;
      }
    } else if (colon - line == 14 && strncasecmp(line, "Content-Length", 14) == 0) {
      char *stop;
      body = strtol(value, &stop, 10);
      if (stop == value || body < 0 || body > IN_SIZE) {
        return -400;
      }
    } else if (colon - line == 17 && strncasecmp(line, "Transfer-Encoding", 17) == 0) {
      return -501;
    }
  }
  if ((size_t)(end - in) + (size_t)body > len) {
    return (size_t)(end - in) + (size_t)body > IN_SIZE ? -431 : 0;
  }
  return (long)(end - in) + body;
}

/* Appends the response to a request (or to an error) to out; returns its length. */
static size_t respond(char *out, int code, const request *req) {
  const char *reason = code == 200 ? "OK" : code == 400 ? "Bad Request" : code == 431 ? "Request Header Fields Too Large"
                                                                                        : "Not Implemented";
  int keep = code == 200 && req->keep_alive;
  const char *connection = !keep ? "Connection: close\r\n" : req->http10 ? "Connection: keep-alive\r\n" : "";
  int n = sprintf(out, "HTTP/1.1 %d %s\r\nServer: asyncrt\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n%s\r\n",
                  code, reason, code == 200 ? (int)(sizeof BODY - 1) : 0, connection);
  if (code == 200 && !req->head) {
    memcpy(out + n, BODY, sizeof BODY - 1);
    n += (int)(sizeof BODY - 1);
  }
  return (size_t)n;
}

/* ---- a connection ----------------------------------------------------------------- */

typedef struct connection {
  arc_state co;
  asyncrt_io *io;
  int fd;
  int closing; /* answer what is parsed, then close */
  asyncrt_op op;
  size_t in_len, out_len, sent;
  char in[IN_SIZE];
  char out[OUT_SIZE];
} connection;

/* Answers every complete request in c->in; leaves the rest at its start. */
static void answer(connection *c) {
  size_t used = 0;
  while (!c->closing && c->out_len + 512 <= OUT_SIZE) {
    request req = {0, 1, 0};
    long n = parse_request(c->in + used, c->in_len - used, &req);
    if (n == 0) {
      break;
    }
    if (n < 0) {
      c->out_len += respond(c->out + c->out_len, (int)-n, &req);
      c->closing = 1;
      break;
    }
    c->out_len += respond(c->out + c->out_len, 200, &req);
    used += (size_t)n;
    if (!req.keep_alive) {
      c->closing = 1;
    }
  }
  memmove(c->in, c->in + used, c->in_len - used);
  c->in_len -= used;
}

static int connection_poll(void *self, asyncrt_context *cx, void *out) {
  connection *c = self;
  (void)out;
  ARC_BEGIN(c->co);
  while (!c->closing) {
    asyncrt_io_prep_recv(&c->op, c->fd, c->in + c->in_len, IN_SIZE - c->in_len, 0);
    io_start(cx, c->io, &c->op);
    ARC_AWAIT_POLL(c->co, asyncrt_op_poll(&c->op, cx));
    if (c->op.status != ASYNCRT_OK || c->op.result == 0) {
      break; /* reset, or end of stream */
    }
    c->in_len += (size_t)c->op.result;
    answer(c);
    for (c->sent = 0; c->sent < c->out_len; c->sent += (size_t)c->op.result) {
      asyncrt_io_prep_send(&c->op, c->fd, c->out + c->sent, c->out_len - c->sent, 0);
      io_start(cx, c->io, &c->op);
      ARC_AWAIT_POLL(c->co, asyncrt_op_poll(&c->op, cx));
      if (c->op.status != ASYNCRT_OK) {
        c->closing = 1;
        break;
      }
    }
    c->out_len = 0;
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

/* ---- the acceptor (one per worker) ---------------------------------------------- */

typedef struct acceptor {
  arc_state co;
  asyncrt_io *io;
  int listen_fd;
  unsigned worker;
  asyncrt_op op;
} acceptor;

static void spawn_connection(asyncrt_context *cx, acceptor *a, int fd) {
  connection *c = malloc(sizeof *c);
  asyncrt_future fut;
  asyncrt_task *task = NULL;
  if (c == NULL) {
    close(fd);
    return;
  }
  memset(c, 0, offsetof(connection, in)); /* the buffers need no zeroing */
  c->io = a->io;
  c->fd = fd;
  asyncrt_socket_set_option(fd, ASYNCRT_SOCKOPT_NODELAY, 1);
  fut.self = c;
  fut.vtable = &connection_vtable;
  /* on the acceptor's own worker: the connection's ops go to that worker's ring or epoll set */
  if (asyncrt_spawn(asyncrt_context_executor(cx), &fut, ASYNCRT_SPAWN_LOCAL | ASYNCRT_SPAWN_WORKER(a->worker),
                    &task) == ASYNCRT_OK) {
    asyncrt_task_release(task);
  }
}

static int acceptor_poll(void *self, asyncrt_context *cx, void *out) {
  acceptor *a = self;
  (void)out;
  ARC_BEGIN(a->co);
  for (;;) {
    asyncrt_io_prep_accept(&a->op, a->listen_fd, NULL, NULL);
    io_start(cx, a->io, &a->op);
    ARC_AWAIT_POLL(a->co, asyncrt_op_poll(&a->op, cx));
    if (a->op.status == ASYNCRT_OK) {
      spawn_connection(cx, a, (int)a->op.result);
    } else if (a->op.status != ASYNCRT_EOS) {
      break; /* the driver is closing */
    }
  }
  ARC_END(a->co);
}

static const asyncrt_future_vtable acceptor_vtable = {sizeof(asyncrt_future_vtable), 0, acceptor_poll, NULL,
                                                      NULL};

/* ---- main ------------------------------------------------------------------------- */

static int fail(const char *what, int status) {
  fprintf(stderr, "http_server: %s failed: %s (%s)\n", what, asyncrt_status_str(status), asyncrt_last_error());
  return 1;
}

int main(int argc, char **argv) {
  asyncrt_executor_config ecfg;
  asyncrt_io_config cfg;
  asyncrt_executor *ex = NULL;
  asyncrt_io *io = NULL;
  acceptor acceptors[MAX_THREADS];
  asyncrt_future joins[MAX_THREADS];
  uint16_t port = 8080;
  int threads = 1, i, rc;
  unsigned b;

  asyncrt_io_config_init(&cfg);
  for (i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--backend") == 0 && i + 1 < argc) {
      for (b = ASYNCRT_IO_AUTO; b <= ASYNCRT_IO_URING && strcmp(argv[i + 1], asyncrt_io_backend_name(b)) != 0; b++) {
      }
      cfg.backend = b;
      i++;
    } else if (strcmp(argv[i], "--port") == 0 && i + 1 < argc) {
      port = (uint16_t)atoi(argv[++i]);
    } else if (strcmp(argv[i], "--threads") == 0 && i + 1 < argc) {
      threads = atoi(argv[++i]);
    } else {
      b = ASYNCRT_IO_URING + 1;
    }
    if (b > ASYNCRT_IO_URING || threads < 1 || threads > MAX_THREADS) {
      fprintf(stderr, "usage: %s [--backend auto|epoll|io_uring] [--port P] [--threads 1..%d]\n", argv[0],
              MAX_THREADS);
      return 2;
    }
  }

  asyncrt_executor_config_init(&ecfg);
  if (threads > 1) {
    ecfg.kind = ASYNCRT_EXECUTOR_THREADS;
    ecfg.workers = (uint32_t)threads;
  }
  if ((rc = asyncrt_executor_new(&ecfg, &ex)) != ASYNCRT_OK) {
    return fail("asyncrt_executor_new", rc);
  }
  rc = asyncrt_io_open(ex, &cfg, &io);
  if (rc == ASYNCRT_ENOTSUP) {
    printf("http_server: backend %s refused by this kernel: skipped (%s)\n", asyncrt_io_backend_name(cfg.backend),
           asyncrt_last_error());
    return EXIT_SKIP;
  }
  if (rc != ASYNCRT_OK) {
    return fail("asyncrt_io_open", rc);
  }
  /* one listener per worker on one port (SO_REUSEPORT): the kernel spreads the connections */
  for (i = 0; i < threads; i++) {
    memset(&acceptors[i], 0, sizeof acceptors[i]);
    acceptors[i].io = io;
    acceptors[i].worker = (unsigned)i;
    rc = asyncrt_tcp_listen("127.0.0.1", port, 1024, threads > 1 ? ASYNCRT_LISTEN_REUSEPORT : 0,
                            &acceptors[i].listen_fd);
    if (rc == ASYNCRT_OK && i == 0) {
      rc = asyncrt_local_port(acceptors[0].listen_fd, &port);
    }
    if (rc != ASYNCRT_OK) {
      return fail("listen", rc);
    }
  }
  printf("http_server: %s backend, %d thread%s, listening on 127.0.0.1:%u\n",
         asyncrt_io_backend_name((unsigned)asyncrt_io_backend(io)), threads, threads > 1 ? "s" : "", (unsigned)port);
  fflush(stdout);
  for (i = 0; i < threads; i++) {
    asyncrt_future fut = {&acceptors[i], &acceptor_vtable};
    asyncrt_task *task = NULL;
    unsigned flags = threads > 1 ? ASYNCRT_SPAWN_SEND | ASYNCRT_SPAWN_WORKER(i) : ASYNCRT_SPAWN_LOCAL;
    if ((rc = asyncrt_spawn(ex, &fut, flags, &task)) != ASYNCRT_OK ||
        (rc = asyncrt_task_join(task, &joins[i])) != ASYNCRT_OK) {
      return fail("asyncrt_spawn", rc);
    }
    asyncrt_task_release(task);
  }
  /* serve until killed: wait for the first acceptor (it never ends unless the driver fails) */
  rc = asyncrt_block_on(ex, &joins[0], NULL, ASYNCRT_NO_TIMEOUT);
  return fail("serving", rc);
}
