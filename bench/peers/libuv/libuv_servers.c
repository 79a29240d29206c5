/*
 * libuv_servers -- libuv's echo server for the `echo` workload (Node's
 * `http` is libuv's peer for http): one loop, a uv_tcp_t per connection
 * with its own read buffer.
 *
 *   libuv_servers serve echo   -> "port <n>" once listening on 127.0.0.1,
 *                                 then serves until killed
 *
 * The read callback answers with uv_try_write, which on a socket with room
 * (always, in a closed-loop echo) writes at once with no request; only what
 * it could not write is copied into a uv_write_t that owns its bytes. A
 * plain uv_write of the read buffer would need the read stopped until its
 * callback, which libuv runs an iteration later: an epoll_ctl pair per echo.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#define BUF_CAP 4096

typedef struct conn {
  uv_tcp_t tcp;
  char buf[BUF_CAP];
} conn;

typedef struct pending_write {
  uv_write_t req;
  char bytes[];
} pending_write;

static uv_loop_t *loop;

static void on_closed(uv_handle_t *h) { free(h); }

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
  (void)suggested;
  conn *c = (conn *)h;
  *buf = uv_buf_init(c->buf, BUF_CAP);
}

static void on_written(uv_write_t *req, int status) {
  if (status < 0) uv_close((uv_handle_t *)req->handle, on_closed);
  free(req);
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf) {
  if (nread < 0) {
    uv_close((uv_handle_t *)s, on_closed);
    return;
  }
  if (nread == 0) return;
  uv_buf_t out = uv_buf_init(buf->base, (unsigned)nread);
  int wrote = uv_try_write(s, &out, 1);
  if (wrote == nread) return;
  if (wrote < 0 && wrote != UV_EAGAIN) {
    uv_close((uv_handle_t *)s, on_closed);
    return;
  }
  size_t done = wrote > 0 ? (size_t)wrote : 0, rest = (size_t)nread - done;
  pending_write *w = malloc(sizeof *w + rest);
  if (w == NULL) abort();
  memcpy(w->bytes, buf->base + done, rest);
  uv_buf_t left = uv_buf_init(w->bytes, (unsigned)rest);
  if (uv_write(&w->req, s, &left, 1, on_written) != 0) {
    free(w);
    uv_close((uv_handle_t *)s, on_closed);
  }
}

static void on_connection(uv_stream_t *server, int status) {
  if (status < 0) return;
  conn *c = malloc(sizeof *c);
  if (c == NULL) abort();
  uv_tcp_init(loop, &c->tcp);
  if (uv_accept(server, (uv_stream_t *)&c->tcp) != 0) {
    uv_close((uv_handle_t *)&c->tcp, on_closed);
    return;
  }
  uv_tcp_nodelay(&c->tcp, 1);
  uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
}

int main(int argc, char **argv) {
  if (argc < 3 || strcmp(argv[1], "serve") != 0 || strcmp(argv[2], "echo") != 0) {
    fprintf(stderr, "unsupported workload %s\n", argc > 2 ? argv[2] : "?");
    return 2;
  }
  loop = uv_default_loop();
  uv_tcp_t server;
  struct sockaddr_in addr;
  uv_tcp_init(loop, &server);
  uv_ip4_addr("127.0.0.1", 0, &addr);
  int r = uv_tcp_bind(&server, (const struct sockaddr *)&addr, 0);
  if (r == 0) r = uv_listen((uv_stream_t *)&server, 1024, on_connection);
  int len = sizeof addr;
  if (r == 0) r = uv_tcp_getsockname(&server, (struct sockaddr *)&addr, &len);
  if (r != 0) {
    fprintf(stderr, "libuv_servers: listen: %s\n", uv_strerror(r));
    return 1;
  }
  printf("port %d\n", ntohs(addr.sin_port));
  fflush(stdout);
  return uv_run(loop, UV_RUN_DEFAULT);
}
