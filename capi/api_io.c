/* api_io.c -- the public IO driver functions (see "IO" in asyncrt.h):
 * argument checks here; opening and closing go to the Go control plane
 * (runtime/iodriver, through art_go_io_*), everything per op stays in C
 * (runtime/dataplane/art_io*.c).
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../runtime/dataplane/art_io.h"
#include "_cgo_export.h"

#define REFUSE_IN_CHILD()                                                                          \
  do {                                                                                             \
    if (art_is_forked()) return art_fail_forked();                                                 \
  } while (0)

/* Inline for the live handle: every submit looks its driver up. */
static inline int resolve_io(asyncrt_io *h, art_io **io) {
  void *o = art_handle_get((uint64_t)(uintptr_t)h, ART_H_IO);
  if (ART_LIKELY(o)) {
    *io = o;
    return ASYNCRT_OK;
  }
  return art_handle_resolve(h, ART_H_IO, "IO driver", (void **)io);
}

/* ---- drivers --------------------------------------------------------------------- */

void asyncrt_io_config_init_size(asyncrt_io_config *cfg, size_t size) {
  if (!cfg || size < sizeof(size_t)) return;
  asyncrt_io_config d = {
      .size = sizeof d,
      .backend = ASYNCRT_IO_AUTO,
      .ring_entries = 256,
      .priority = 1,
      .pool_threads = 16,
      .pool_queue = 1024,
      .pool_idle_ns = 10000000000ull,
  };
  memcpy(cfg, &d, size < sizeof d ? size : sizeof d);
  cfg->size = size < sizeof d ? size : sizeof d;
}

int asyncrt_io_open(asyncrt_executor *ex, const asyncrt_io_config *cfg, asyncrt_io **out) {
  REFUSE_IN_CHILD();
  if (!out) return art_fail(ASYNCRT_EINVAL, "asyncrt_io_open: out is NULL");
  *out = NULL;
  asyncrt_io_config c;
  asyncrt_io_config_init(&c);
  if (cfg) {
    if (cfg->size < sizeof c) /* 0.7's struct is the first */
      return art_fail(ASYNCRT_EINVAL, "asyncrt_io_open: config size %zu is too small (set it to sizeof)",
                      cfg->size);
    art_copy_sized(&c, sizeof c, cfg, cfg->size);
  }
  if (c.backend > ASYNCRT_IO_URING) return art_fail(ASYNCRT_EINVAL, "asyncrt_io_open: unknown backend %u", c.backend);
  /* Read here, not in Go: Go keeps the environment it saw at load time,
   * and a host may set the variable later (a test, an embedding app). */
  const char *env = c.backend == ASYNCRT_IO_AUTO ? getenv("ASYNCRT_IO") : NULL;
  if (env && *env && strcmp(env, "auto") != 0) {
    if (!strcmp(env, "epoll")) c.backend = ASYNCRT_IO_EPOLL;
    else if (!strcmp(env, "io_uring")) c.backend = ASYNCRT_IO_URING;
    else return art_fail(ASYNCRT_EINVAL, "asyncrt_io_open: ASYNCRT_IO=\"%s\": want epoll, io_uring or auto", env);
  }
  if (!c.ring_entries || c.ring_entries > 32768 || (c.ring_entries & (c.ring_entries - 1)))
    return art_fail(ASYNCRT_EINVAL, "asyncrt_io_open: ring_entries %u is not a power of 2 in 1..32768",
                    c.ring_entries);
  if (c.priority < 1 || c.priority > 1000)
    return art_fail(ASYNCRT_EINVAL, "asyncrt_io_open: priority %u is outside 1..1000", c.priority);
  if (c.pool_threads < 1 || c.pool_threads > 1024)
    return art_fail(ASYNCRT_EINVAL, "asyncrt_io_open: pool_threads %u is outside 1..1024", c.pool_threads);
  if (art_tls_subsys) return art_fail(ASYNCRT_EREENTRANT, "asyncrt_io_open: called from a subsystem callback");
  uintptr_t h = 0;
  int rc = art_go_io_open((uintptr_t)ex, &c, &h);
  if (!rc) *out = (asyncrt_io *)h;
  return rc;
}

int asyncrt_io_close(asyncrt_io *io) {
  REFUSE_IN_CHILD();
  art_io *d;
  int rc = resolve_io(io, &d);
  if (rc) return rc;
  if (art_tls_subsys || art_in_poll())
    return art_fail(ASYNCRT_EREENTRANT, "asyncrt_io_close: called from inside a poll or a subsystem callback");
  return art_go_io_close((uintptr_t)io);
}

int asyncrt_io_backend(asyncrt_io *io) {
  if (art_is_forked()) return -art_fail_forked();
  art_io *d;
  int rc = resolve_io(io, &d);
  return rc ? -rc : (int)d->backend;
}

const char *asyncrt_io_backend_name(unsigned backend) {
  switch (backend) {
  case ASYNCRT_IO_AUTO: return "auto";
  case ASYNCRT_IO_EPOLL: return "epoll";
  case ASYNCRT_IO_URING: return "io_uring";
  default: return NULL;
  }
}

int asyncrt_io_fd(asyncrt_io *io, int *fd) {
  REFUSE_IN_CHILD();
  art_io *d;
  int rc = resolve_io(io, &d);
  if (rc) return rc;
  if (!fd) return art_fail(ASYNCRT_EINVAL, "asyncrt_io_fd: fd is NULL");
  art_io_worker *w = d->workers[0];
  if (!w) return art_fail(ASYNCRT_EHANDLE, "asyncrt_io_fd: the driver is closing");
  *fd = w->fd;
  return ASYNCRT_OK;
}

int asyncrt_io_submit(asyncrt_context *cx, asyncrt_io *io, asyncrt_op *op) {
  REFUSE_IN_CHILD();
  art_io *d;
  int rc = resolve_io(io, &d);
  if (ART_UNLIKELY(rc)) return rc;
  if (ART_UNLIKELY(!cx || !op)) return art_fail(ASYNCRT_EINVAL, "asyncrt_io_submit: %s is NULL", cx ? "op" : "cx");
  if (ART_UNLIKELY(!art_io_opcode_valid(op->opcode)))
    return art_fail(ASYNCRT_EINVAL, "asyncrt_io_submit: unknown opcode %u", op->opcode);
  if (ART_UNLIKELY(atomic_load_explicit(&d->closing, memory_order_relaxed)))
    return art_fail(ASYNCRT_ESHUTDOWN, "asyncrt_io_submit: the driver is closing");
  art_subsys *s = art_io_sub_for(d, cx);
  if (ART_UNLIKELY(!s)) return ASYNCRT_ENOTSUP;
  return art_op_submit_quiet(cx, s, op);
}

int asyncrt_io_stats_get(asyncrt_io *io, asyncrt_io_stats *stats) {
  REFUSE_IN_CHILD();
  art_io *d;
  int rc = resolve_io(io, &d);
  if (rc) return rc;
  if (!stats || stats->size < offsetof(asyncrt_io_stats, completions))
    return art_fail(ASYNCRT_EINVAL, "asyncrt_io_stats_get: stats is NULL or its size is too small");
  asyncrt_io_stats sum;
  art_io_stats(d, &sum);
  art_copy_sized(stats, stats->size, &sum, sizeof sum);
  return ASYNCRT_OK;
}

/* ---- the op future ------------------------------------------------------------------ */

enum { IOF_SUBMITTED = 1u };

static int io_future_poll(void *self, asyncrt_context *cx, void *out) {
  asyncrt_io_future_state *st = self;
  if (!(st->flags & IOF_SUBMITTED)) {
    int rc = asyncrt_io_submit(cx, st->io, st->op);
    if (rc) {
      if (cx) cx->failure = rc;
      return ASYNCRT_POLL_ERROR;
    }
    st->flags |= IOF_SUBMITTED;
  }
  if (!art_op_done(st->op)) return ASYNCRT_POLL_PENDING;
  if (st->op->status == ASYNCRT_OK) {
    memcpy(out, &st->op->result, sizeof(int64_t));
    return ASYNCRT_POLL_READY;
  }
  if (cx) cx->failure = st->op->status;
  return ASYNCRT_POLL_ERROR;
}

static void io_future_drop(void *self) {
  asyncrt_io_future_state *st = self;
  if ((st->flags & IOF_SUBMITTED) && !art_op_done(st->op)) art_op_cancel(st->op);
}

static const asyncrt_future_vtable io_future_vtable = {
    .size = sizeof(asyncrt_future_vtable), .output_size = sizeof(int64_t), .poll = io_future_poll,
    .drop = io_future_drop};

int asyncrt_io_future(asyncrt_io_future_state *st, asyncrt_io *io, asyncrt_op *op, asyncrt_future *out) {
  REFUSE_IN_CHILD();
  if (!st || !op || !out) return art_fail(ASYNCRT_EINVAL, "asyncrt_io_future: an argument is NULL");
  *st = (asyncrt_io_future_state){.op = op, .io = io};
  *out = (asyncrt_future){st, &io_future_vtable};
  return ASYNCRT_OK;
}

/* ---- prep functions: the args layout of art_io.h ------------------------------------- */

static inline void prep(asyncrt_op *op, uint32_t opcode, uint32_t flags, uint64_t a0, uint64_t a1, uint64_t a2,
                        uint64_t a3) {
  op->opcode = opcode;
  op->flags = flags;
  op->args[0] = a0;
  op->args[1] = a1;
  op->args[2] = a2;
  op->args[3] = a3;
}
#define I(x) ((uint64_t)(int64_t)(x))
#define P(x) ((uint64_t)(uintptr_t)(x))
#define PREP(...)                                                                                  \
  do {                                                                                             \
    if (op) prep(op, __VA_ARGS__);                                                                 \
  } while (0)

void asyncrt_io_prep_nop(asyncrt_op *op) { PREP(ASYNCRT_IO_OP_NOP, 0, 0, 0, 0, 0); }
void asyncrt_io_prep_read(asyncrt_op *op, int fd, void *buf, size_t len, int64_t offset) {
  PREP(ASYNCRT_IO_OP_READ, 0, I(fd), P(buf), len, I(offset));
}
void asyncrt_io_prep_write(asyncrt_op *op, int fd, const void *buf, size_t len, int64_t offset) {
  PREP(ASYNCRT_IO_OP_WRITE, 0, I(fd), P(buf), len, I(offset));
}
void asyncrt_io_prep_readv(asyncrt_op *op, int fd, const struct iovec *iov, int iovcnt, int64_t offset) {
  PREP(ASYNCRT_IO_OP_READV, 0, I(fd), P(iov), I(iovcnt), I(offset));
}
void asyncrt_io_prep_writev(asyncrt_op *op, int fd, const struct iovec *iov, int iovcnt, int64_t offset) {
  PREP(ASYNCRT_IO_OP_WRITEV, 0, I(fd), P(iov), I(iovcnt), I(offset));
}
void asyncrt_io_prep_recv(asyncrt_op *op, int fd, void *buf, size_t len, int flags) {
  PREP(ASYNCRT_IO_OP_RECV, (uint32_t)flags, I(fd), P(buf), len, 0);
}
void asyncrt_io_prep_send(asyncrt_op *op, int fd, const void *buf, size_t len, int flags) {
  PREP(ASYNCRT_IO_OP_SEND, (uint32_t)flags, I(fd), P(buf), len, 0);
}
void asyncrt_io_prep_recvmsg(asyncrt_op *op, int fd, struct msghdr *msg, int flags) {
  PREP(ASYNCRT_IO_OP_RECVMSG, (uint32_t)flags, I(fd), P(msg), 0, 0);
}
void asyncrt_io_prep_sendmsg(asyncrt_op *op, int fd, const struct msghdr *msg, int flags) {
  PREP(ASYNCRT_IO_OP_SENDMSG, (uint32_t)flags, I(fd), P(msg), 0, 0);
}
void asyncrt_io_prep_accept(asyncrt_op *op, int fd, struct sockaddr *addr, uint32_t *addrlen) {
  PREP(ASYNCRT_IO_OP_ACCEPT, 0, I(fd), P(addr), P(addrlen), 0);
}
void asyncrt_io_prep_connect(asyncrt_op *op, int fd, const struct sockaddr *addr, uint32_t addrlen) {
  PREP(ASYNCRT_IO_OP_CONNECT, 0, I(fd), P(addr), addrlen, 0);
}
void asyncrt_io_prep_close(asyncrt_op *op, int fd) { PREP(ASYNCRT_IO_OP_CLOSE, 0, I(fd), 0, 0, 0); }
void asyncrt_io_prep_fsync(asyncrt_op *op, int fd, unsigned flags) {
  PREP(ASYNCRT_IO_OP_FSYNC, flags, I(fd), 0, 0, 0);
}
void asyncrt_io_prep_poll(asyncrt_op *op, int fd, unsigned events) {
  PREP(ASYNCRT_IO_OP_POLL, 0, I(fd), events, 0, 0);
}
void asyncrt_io_prep_timeout(asyncrt_op *op, uint64_t ns) { PREP(ASYNCRT_IO_OP_TIMEOUT, 0, ns, 0, 0, 0); }
void asyncrt_io_prep_openat(asyncrt_op *op, int dirfd, const char *path, int flags, unsigned mode) {
  PREP(ASYNCRT_IO_OP_OPENAT, 0, I(dirfd), P(path), I(flags), mode);
}
void asyncrt_io_prep_shutdown(asyncrt_op *op, int fd, int how) {
  PREP(ASYNCRT_IO_OP_SHUTDOWN, 0, I(fd), I(how), 0, 0);
}
void asyncrt_io_prep_blocking(asyncrt_op *op, asyncrt_blocking_fn fn, void *arg) {
  PREP(ASYNCRT_IO_OP_BLOCKING, 0, P(fn), P(arg), 0, 0);
}
void asyncrt_io_prep_signal(asyncrt_op *op, int signo) { PREP(ASYNCRT_IO_OP_SIGNAL, 0, I(signo), 0, 0, 0); }
void asyncrt_io_prep_waitpid(asyncrt_op *op, int pidfd) { PREP(ASYNCRT_IO_OP_WAITPID, 0, I(pidfd), 0, 0, 0); }
