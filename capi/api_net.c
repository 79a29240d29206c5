/* api_net.c -- the synchronous socket and pipe helpers of "IO" in
 * asyncrt.h: thin wrappers over the system calls that make every new fd
 * non-blocking and close-on-exec, and report a refusal as ASYNCRT_EOS with
 * the errno (art_fail_os). None of them blocks, so any thread may call
 * them, a task's poll included.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "../runtime/dataplane/art.h"

#define REFUSE_IN_CHILD()                                                                          \
  do {                                                                                             \
    if (art_is_forked()) return art_fail_forked();                                                 \
  } while (0)

int asyncrt_last_errno(void) { return art_last_errno(); }

/* Closes fd without disturbing errno (the caller reports the first error). */
static void close_quietly(int fd) {
  int saved = errno;
  close(fd);
  errno = saved;
}

static int parse_addr(const char *who, const char *host, uint16_t port, struct sockaddr_storage *ss,
                      socklen_t *len) {
  memset(ss, 0, sizeof *ss);
  if (!host || !*host) host = "0.0.0.0";
  else if (!strcmp(host, "localhost")) host = "127.0.0.1";
  struct sockaddr_in *v4 = (struct sockaddr_in *)ss;
  if (inet_pton(AF_INET, host, &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
    v4->sin_port = htons(port);
    *len = sizeof *v4;
    return ASYNCRT_OK;
  }
  /* IPv6, with or without brackets ("[::1]"). */
  char buf[INET6_ADDRSTRLEN + 2];
  size_t n = strlen(host);
  if (n >= 2 && host[0] == '[' && host[n - 1] == ']' && n - 2 < sizeof buf) {
    memcpy(buf, host + 1, n - 2);
    buf[n - 2] = 0;
    host = buf;
  }
  struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)ss;
  if (inet_pton(AF_INET6, host, &v6->sin6_addr) == 1) {
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons(port);
    *len = sizeof *v6;
    return ASYNCRT_OK;
  }
  return art_fail(ASYNCRT_EINVAL, "%s: \"%s\" is not a numeric IPv4 or IPv6 address (nor localhost)", who, host);
}

int asyncrt_sockaddr(const char *host, uint16_t port, struct sockaddr *addr, uint32_t *addrlen) {
  REFUSE_IN_CHILD();
  if (!addr || !addrlen) return art_fail(ASYNCRT_EINVAL, "asyncrt_sockaddr: addr or addrlen is NULL");
  struct sockaddr_storage ss;
  socklen_t len;
  int rc = parse_addr("asyncrt_sockaddr", host, port, &ss, &len);
  if (rc) return rc;
  memcpy(addr, &ss, len);
  *addrlen = len;
  return ASYNCRT_OK;
}

int asyncrt_unix_sockaddr(const char *path, struct sockaddr *addr, uint32_t *addrlen) {
  REFUSE_IN_CHILD();
  struct sockaddr_un un = {.sun_family = AF_UNIX};
  if (!path || !addr || !addrlen) return art_fail(ASYNCRT_EINVAL, "asyncrt_unix_sockaddr: an argument is NULL");
  size_t n = strlen(path);
  if (!n || n >= sizeof un.sun_path)
    return art_fail(ASYNCRT_EINVAL, "asyncrt_unix_sockaddr: the path is empty or longer than %zu bytes",
                    sizeof un.sun_path - 1);
  memcpy(un.sun_path, path, n);
  if (path[0] == '@') un.sun_path[0] = 0; /* abstract: no file, no NUL at the end */
  socklen_t len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n + (path[0] == '@' ? 0 : 1));
  memcpy(addr, &un, len);
  *addrlen = len;
  return ASYNCRT_OK;
}

static int new_socket(const char *who, int domain, int type, int *fd) {
  int s = socket(domain, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (s < 0) return art_fail_os(errno, "%s: socket", who);
  *fd = s;
  return ASYNCRT_OK;
}

int asyncrt_socket(int domain, int type, int *fd) {
  REFUSE_IN_CHILD();
  if (!fd) return art_fail(ASYNCRT_EINVAL, "asyncrt_socket: fd is NULL");
  if (domain != AF_INET && domain != AF_INET6 && domain != AF_UNIX)
    return art_fail(ASYNCRT_EINVAL, "asyncrt_socket: domain %d is not AF_INET, AF_INET6 or AF_UNIX", domain);
  if (type != SOCK_STREAM && type != SOCK_DGRAM)
    return art_fail(ASYNCRT_EINVAL, "asyncrt_socket: type %d is not SOCK_STREAM or SOCK_DGRAM", type);
  return new_socket("asyncrt_socket", domain, type, fd);
}

/* A socket of addr's family, bound to it (and listening if backlog > 0). */
static int bound_socket(const char *who, int type, const struct sockaddr *addr, socklen_t len, unsigned flags,
                        int backlog, int *fd) {
  int s = -1, rc = new_socket(who, addr->sa_family, type, &s);
  if (rc) return rc;
  int one = 1;
  const char *step = "setsockopt";
  if (addr->sa_family != AF_UNIX && type == SOCK_STREAM &&
      setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0)
    goto fail;
  if ((flags & 1u) && setsockopt(s, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) < 0) goto fail;
  if (addr->sa_family == AF_INET6) {
    int v6only = (flags & 2u) != 0;
    if (setsockopt(s, IPPROTO_IPV6, IPV6_V6ONLY, &v6only, sizeof v6only) < 0) goto fail;
  }
  step = "bind";
  if (bind(s, addr, len) < 0) goto fail;
  step = "listen";
  if (backlog > 0 && listen(s, backlog) < 0) goto fail;
  *fd = s;
  return ASYNCRT_OK;
fail:;
  int err = errno;
  close_quietly(s);
  return art_fail_os(err, "%s: %s", who, step);
}

int asyncrt_tcp_listen(const char *host, uint16_t port, int backlog, unsigned flags, int *fd) {
  REFUSE_IN_CHILD();
  if (!fd) return art_fail(ASYNCRT_EINVAL, "asyncrt_tcp_listen: fd is NULL");
  if (flags & ~(ASYNCRT_LISTEN_REUSEPORT | ASYNCRT_LISTEN_V6ONLY))
    return art_fail(ASYNCRT_EINVAL, "asyncrt_tcp_listen: unknown flags %#x", flags);
  struct sockaddr_storage ss;
  socklen_t len;
  int rc = parse_addr("asyncrt_tcp_listen", host, port, &ss, &len);
  if (rc) return rc;
  return bound_socket("asyncrt_tcp_listen", SOCK_STREAM, (struct sockaddr *)&ss, len, flags,
                      backlog > 0 ? backlog : 1024, fd);
}

int asyncrt_udp_bind(const char *host, uint16_t port, int *fd) {
  REFUSE_IN_CHILD();
  if (!fd) return art_fail(ASYNCRT_EINVAL, "asyncrt_udp_bind: fd is NULL");
  struct sockaddr_storage ss;
  socklen_t len;
  int rc = parse_addr("asyncrt_udp_bind", host, port, &ss, &len);
  if (rc) return rc;
  return bound_socket("asyncrt_udp_bind", SOCK_DGRAM, (struct sockaddr *)&ss, len, 0, 0, fd);
}

int asyncrt_unix_listen(const char *path, int backlog, int *fd) {
  REFUSE_IN_CHILD();
  if (!fd) return art_fail(ASYNCRT_EINVAL, "asyncrt_unix_listen: fd is NULL");
  struct sockaddr_storage ss;
  uint32_t len;
  int rc = asyncrt_unix_sockaddr(path, (struct sockaddr *)&ss, &len);
  if (rc) return rc;
  struct stat st;
  if (path[0] != '@' && lstat(path, &st) == 0 && S_ISSOCK(st.st_mode) && unlink(path) < 0)
    return art_fail_os(errno, "asyncrt_unix_listen: unlink %s", path);
  return bound_socket("asyncrt_unix_listen", SOCK_STREAM, (struct sockaddr *)&ss, len, 0,
                      backlog > 0 ? backlog : 1024, fd);
}

int asyncrt_local_port(int fd, uint16_t *port) {
  REFUSE_IN_CHILD();
  if (!port) return art_fail(ASYNCRT_EINVAL, "asyncrt_local_port: port is NULL");
  struct sockaddr_storage ss;
  socklen_t len = sizeof ss;
  if (getsockname(fd, (struct sockaddr *)&ss, &len) < 0) return art_fail_os(errno, "asyncrt_local_port: getsockname");
  if (ss.ss_family == AF_INET) *port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
  else if (ss.ss_family == AF_INET6) *port = ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
  else return art_fail(ASYNCRT_EINVAL, "asyncrt_local_port: fd %d is not an IPv4 or IPv6 socket", fd);
  return ASYNCRT_OK;
}

/* The level and name of an ASYNCRT_SOCKOPT_* option (0: unknown). */
static int sockopt_of(int option, int *level, int *name) {
  switch (option) {
  case ASYNCRT_SOCKOPT_NODELAY: *level = IPPROTO_TCP, *name = TCP_NODELAY; return 1;
  case ASYNCRT_SOCKOPT_KEEPALIVE: *level = SOL_SOCKET, *name = SO_KEEPALIVE; return 1;
  case ASYNCRT_SOCKOPT_REUSEADDR: *level = SOL_SOCKET, *name = SO_REUSEADDR; return 1;
  case ASYNCRT_SOCKOPT_RCVBUF: *level = SOL_SOCKET, *name = SO_RCVBUF; return 1;
  case ASYNCRT_SOCKOPT_SNDBUF: *level = SOL_SOCKET, *name = SO_SNDBUF; return 1;
  case ASYNCRT_SOCKOPT_LINGER: *level = SOL_SOCKET, *name = SO_LINGER; return 1;
  case ASYNCRT_SOCKOPT_REUSEPORT: *level = SOL_SOCKET, *name = SO_REUSEPORT; return 1;
  case ASYNCRT_SOCKOPT_ERROR: *level = SOL_SOCKET, *name = SO_ERROR; return 1;
  default: return 0;
  }
}

int asyncrt_socket_set_option(int fd, int option, int value) {
  REFUSE_IN_CHILD();
  int level, name;
  if (!sockopt_of(option, &level, &name) || option == ASYNCRT_SOCKOPT_ERROR)
    return art_fail(ASYNCRT_EINVAL, "asyncrt_socket_set_option: option %d cannot be set", option);
  int r;
  if (option == ASYNCRT_SOCKOPT_LINGER) {
    struct linger l = {.l_onoff = value >= 0, .l_linger = value >= 0 ? value : 0};
    r = setsockopt(fd, level, name, &l, sizeof l);
  } else {
    r = setsockopt(fd, level, name, &value, sizeof value);
  }
  if (r < 0) return art_fail_os(errno, "asyncrt_socket_set_option: option %d on fd %d", option, fd);
  return ASYNCRT_OK;
}

int asyncrt_socket_get_option(int fd, int option, int *value) {
  REFUSE_IN_CHILD();
  int level, name;
  if (!value) return art_fail(ASYNCRT_EINVAL, "asyncrt_socket_get_option: value is NULL");
  if (!sockopt_of(option, &level, &name))
    return art_fail(ASYNCRT_EINVAL, "asyncrt_socket_get_option: unknown option %d", option);
  int r;
  if (option == ASYNCRT_SOCKOPT_LINGER) {
    struct linger l;
    socklen_t len = sizeof l;
    r = getsockopt(fd, level, name, &l, &len);
    if (r == 0) *value = l.l_onoff ? l.l_linger : -1;
  } else {
    socklen_t len = sizeof *value;
    r = getsockopt(fd, level, name, value, &len);
  }
  if (r < 0) return art_fail_os(errno, "asyncrt_socket_get_option: option %d on fd %d", option, fd);
  return ASYNCRT_OK;
}

int asyncrt_pipe(int fds[2]) {
  REFUSE_IN_CHILD();
  if (!fds) return art_fail(ASYNCRT_EINVAL, "asyncrt_pipe: fds is NULL");
  if (pipe2(fds, O_NONBLOCK | O_CLOEXEC) < 0) return art_fail_os(errno, "asyncrt_pipe: pipe2");
  return ASYNCRT_OK;
}

int asyncrt_fd_set_nonblock(int fd) {
  REFUSE_IN_CHILD();
  int fl = fcntl(fd, F_GETFL);
  if (fl < 0 || (!(fl & O_NONBLOCK) && fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0))
    return art_fail_os(errno, "asyncrt_fd_set_nonblock: fcntl on fd %d", fd);
  return ASYNCRT_OK;
}
