/*
 * echo_load -- the one load generator of the `echo` workload, the same
 * program against every server (BENCHMARKS.md), run as its own process.
 *
 *   echo_load <port> <connections> <msg_bytes> <warmup_s> <seconds> [server_pid]
 *     -> "<req/s> req/s"
 *        "cpu <us> us"            (with server_pid: server CPU per request)
 *
 * Closed loop: each connection sends one message, waits until all of it has
 * come back, checks it byte for byte, and sends the next. A request is one
 * such round trip. The first `warmup_s` seconds are not counted; then the
 * program counts the round trips completed in the next `seconds` and, when
 * given the server's pid, reads the server's CPU time (utime + stime of
 * /proc/<pid>/stat: every thread, dead ones included) at both ends of that
 * span. Its own CPU share goes to stderr, so a run whose load generator was
 * the bottleneck says so.
 *
 * One thread, level-triggered epoll, one recv and one send per request: the
 * same minimal work per request as the fastest server, so it loads the
 * servers alike. A message is at most msg_bytes in flight on its connection,
 * far below any socket buffer, so a send never comes back short; a short
 * send, a wrong byte, a closed connection or 5 s without progress fails the
 * run (exit 1), so a broken server never yields a figure.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

typedef struct conn {
  int fd;
  uint32_t seq; /* the message in flight; its bytes derive from (index, seq) */
  size_t got;   /* bytes of its echo received so far */
  unsigned char *sent; /* the message in flight (msg_bytes) */
} conn;

static size_t msg_bytes;
static unsigned char *received;

static void die(const char *what, const char *detail) {
  fprintf(stderr, "echo_load: %s: %s\n", what, detail);
  exit(1);
}

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* The message of connection i, number seq: every byte depends on both, so
 * an echo sent to the wrong connection or repeated is caught. */
static void fill(unsigned char *buf, size_t i, uint32_t seq) {
  uint32_t x = (uint32_t)i * 2654435761u ^ seq * 40503u;
  for (size_t k = 0; k < msg_bytes; k++) {
    x = x * 1103515245u + 12345u;
    buf[k] = (unsigned char)(x >> 16);
  }
}

static void send_message(conn *c, size_t i) {
  fill(c->sent, i, c->seq);
  ssize_t n = send(c->fd, c->sent, msg_bytes, MSG_NOSIGNAL);
  if (n != (ssize_t)msg_bytes) die("send", n < 0 ? strerror(errno) : "short send");
  c->got = 0;
}

/* Server CPU time in seconds (utime + stime), or -1 if unreadable. */
static double server_cpu_s(const char *pid) {
  char path[64], buf[1024];
  snprintf(path, sizeof path, "/proc/%s/stat", pid);
  FILE *f = fopen(path, "r");
  if (f == NULL) return -1;
  size_t n = fread(buf, 1, sizeof buf - 1, f);
  fclose(f);
  buf[n] = 0;
  /* comm may hold spaces and parentheses: the fields start after the last ')'. */
  char *p = strrchr(buf, ')');
  if (p == NULL) return -1;
  unsigned long utime, stime;
  /* Fields 3..13 skipped, 14 utime, 15 stime (proc(5)). */
  if (sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &utime, &stime) != 2)
    return -1;
  return (double)(utime + stime) / (double)sysconf(_SC_CLK_TCK);
}

static double own_cpu_s(void) {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
         (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

static int connect_to(int port) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) die("socket", strerror(errno));
  struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, (struct sockaddr *)&addr, sizeof addr) != 0) die("connect", strerror(errno));
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  return fd;
}

int main(int argc, char **argv) {
  if (argc < 6) {
    fprintf(stderr, "usage: echo_load <port> <connections> <msg_bytes> <warmup_s> <seconds> [server_pid]\n");
    return 2;
  }
  int port = atoi(argv[1]);
  size_t nconn = (size_t)atol(argv[2]);
  msg_bytes = (size_t)atol(argv[3]);
  double warmup = atof(argv[4]), seconds = atof(argv[5]);
  const char *pid = argc > 6 ? argv[6] : NULL;
  if (port <= 0 || nconn == 0 || msg_bytes == 0 || seconds <= 0) die("usage", "bad argument");

  conn *conns = calloc(nconn, sizeof *conns);
  unsigned char *sent = malloc(nconn * msg_bytes);
  received = malloc(msg_bytes);
  struct epoll_event *events = calloc(nconn, sizeof *events);
  int ep = epoll_create1(EPOLL_CLOEXEC);
  if (conns == NULL || sent == NULL || received == NULL || events == NULL || ep < 0)
    die("setup", strerror(errno));
  for (size_t i = 0; i < nconn; i++) {
    conns[i].fd = connect_to(port);
    conns[i].sent = sent + i * msg_bytes;
    struct epoll_event ev = {.events = EPOLLIN, .data.u64 = i};
    if (epoll_ctl(ep, EPOLL_CTL_ADD, conns[i].fd, &ev) != 0) die("epoll_ctl", strerror(errno));
  }
  /* Blocking sockets: a recv is only made when epoll said readable. */
  for (size_t i = 0; i < nconn; i++) send_message(&conns[i], i);

  double start = now_s(), measure_from = start + warmup, end = measure_from + seconds;
  double last_progress = start, cpu0 = 0, own0 = 0, t0 = 0;
  uint64_t done = 0, done0 = 0;
  int measuring = 0;
  for (;;) {
    int n = epoll_wait(ep, events, (int)nconn, 1000);
    if (n < 0 && errno != EINTR) die("epoll_wait", strerror(errno));
    for (int e = 0; e < n; e++) {
      size_t i = (size_t)events[e].data.u64;
      conn *c = &conns[i];
      ssize_t r = recv(c->fd, received, msg_bytes - c->got, MSG_DONTWAIT);
      if (r == 0) die("recv", "the server closed a connection");
      if (r < 0) {
        if (errno == EAGAIN || errno == EINTR) continue;
        die("recv", strerror(errno));
      }
      /* Each piece is checked as it arrives, against the bytes sent at
       * its offset, so a partial echo needs no buffer of its own. */
      if (memcmp(received, c->sent + c->got, (size_t)r) != 0)
        die("echo", "a byte came back different from what was sent");
      c->got += (size_t)r;
      if (c->got < msg_bytes) continue;
      done++;
      c->seq++;
      send_message(c, i);
    }
    double t = now_s();
    if (n > 0) last_progress = t;
    else if (t - last_progress > 5) die("echo", "no echo for 5 s");
    if (!measuring && t >= measure_from) {
      measuring = 1;
      t0 = t;
      done0 = done;
      cpu0 = pid ? server_cpu_s(pid) : 0;
      own0 = own_cpu_s();
      if (pid && cpu0 < 0) die("server cpu", "cannot read /proc/<pid>/stat");
    } else if (measuring && t >= end) {
      double cpu1 = pid ? server_cpu_s(pid) : 0, span = t - t0;
      double requests = (double)(done - done0);
      printf("%.0f req/s\n", requests / span);
      if (pid) printf("cpu %.2f us\n", (cpu1 - cpu0) / requests * 1e6);
      fprintf(stderr, "load generator: %.0f%% of a CPU, server: %.0f%%\n",
              100 * (own_cpu_s() - own0) / span, pid ? 100 * (cpu1 - cpu0) / span : 0.0);
      return 0;
    }
  }
}
