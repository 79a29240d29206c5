/*
 * c_servers -- the limit for the IO workloads: a single-threaded epoll
 * server, no runtime, written the way a careful C programmer would.
 *
 *   c_servers serve echo|http   -> prints "port <n>" once listening on
 *                                  127.0.0.1 (an ephemeral port), then
 *                                  serves until killed
 *
 * Level-triggered epoll: each readiness costs one recv and one send, the
 * least a request can cost with readiness IO (edge-triggered would need a
 * second recv to see EAGAIN). A send that comes back short keeps the rest
 * in the connection's out buffer and trades read interest for write
 * interest until it has gone, so a slow reader never makes the server
 * buffer without bound. http answers with bench/common/http_min.h, the
 * parser and response asyncrt's server uses too.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "http_min.h"

#define IN_CAP 4096
#define OUT_CAP 16384

typedef struct conn {
  int fd;
  size_t in_len, out_len, out_sent;
  char in[IN_CAP];
  char out[OUT_CAP];
} conn;

static int http_mode;
static int ep;

static void die(const char *what) {
  fprintf(stderr, "c_servers: %s: %s\n", what, strerror(errno));
  exit(1);
}

static void set_interest(conn *c, unsigned events) {
  struct epoll_event ev = {.events = events, .data.ptr = c};
  if (epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev) != 0) die("epoll_ctl");
}

static void drop(conn *c) {
  close(c->fd); /* also leaves the epoll set */
  free(c);
}

/* Sends what is pending; returns 0 when it is all gone, 1 when the socket
 * is full (write interest armed), -1 when the connection is dead. */
static int flush(conn *c) {
  while (c->out_sent < c->out_len) {
    ssize_t n = send(c->fd, c->out + c->out_sent, c->out_len - c->out_sent, MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EAGAIN) {
        set_interest(c, EPOLLOUT);
        return 1;
      }
      return -1;
    }
    c->out_sent += (size_t)n;
  }
  c->out_len = c->out_sent = 0;
  return 0;
}

static void on_readable(conn *c) {
  ssize_t n;
  if (http_mode) {
    n = recv(c->fd, c->in + c->in_len, IN_CAP - c->in_len, 0);
    if (n <= 0) {
      if (n < 0 && errno == EAGAIN) return;
      drop(c);
      return;
    }
    c->in_len += (size_t)n;
    http_min_answer(c->in, &c->in_len, c->out, &c->out_len, OUT_CAP);
    /* A full buffer with no answer is a head larger than we take. */
    if (c->in_len == IN_CAP && c->out_len == 0) {
      drop(c);
      return;
    }
  } else {
    n = recv(c->fd, c->out, OUT_CAP, 0);
    if (n <= 0) {
      if (n < 0 && errno == EAGAIN) return;
      drop(c);
      return;
    }
    c->out_len = (size_t)n;
  }
  if (flush(c) < 0) drop(c);
}

static void on_writable(conn *c) {
  int r = flush(c);
  if (r < 0) {
    drop(c);
    return;
  }
  if (r == 0) {
    set_interest(c, EPOLLIN);
    /* Requests that waited for room in `out`. */
    if (http_mode && c->in_len) on_readable(c);
  }
}

static void accept_all(int lfd) {
  for (;;) {
    int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EAGAIN || errno == ECONNABORTED) return;
      die("accept4");
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    conn *c = calloc(1, sizeof *c);
    if (c == NULL) die("calloc");
    c->fd = fd;
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
    if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) != 0) die("epoll_ctl");
  }
}

int main(int argc, char **argv) {
  if (argc < 3 || strcmp(argv[1], "serve") != 0 ||
      (strcmp(argv[2], "echo") != 0 && strcmp(argv[2], "http") != 0)) {
    fprintf(stderr, "unsupported workload %s\nusage: c_servers serve echo|http\n",
            argc > 2 ? argv[2] : "?");
    return 2;
  }
  http_mode = strcmp(argv[2], "http") == 0;
  int lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (lfd < 0) die("socket");
  int one = 1;
  setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  struct sockaddr_in addr = {.sin_family = AF_INET};
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  if (bind(lfd, (struct sockaddr *)&addr, sizeof addr) != 0 || listen(lfd, 1024) != 0 ||
      getsockname(lfd, (struct sockaddr *)&addr, &len) != 0)
    die("listen");
  ep = epoll_create1(EPOLL_CLOEXEC);
  if (ep < 0) die("epoll_create1");
  /* The listener is told apart by a NULL pointer. */
  struct epoll_event lev = {.events = EPOLLIN, .data.ptr = NULL};
  if (epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &lev) != 0) die("epoll_ctl");
  printf("port %d\n", ntohs(addr.sin_port));
  fflush(stdout);

  struct epoll_event events[256];
  for (;;) {
    int n = epoll_wait(ep, events, 256, -1);
    if (n < 0) {
      if (errno == EINTR) continue;
      die("epoll_wait");
    }
    for (int i = 0; i < n; i++) {
      conn *c = events[i].data.ptr;
      if (c == NULL)
        accept_all(lfd);
      else if (events[i].events & EPOLLOUT)
        on_writable(c);
      else
        on_readable(c);
    }
  }
}
