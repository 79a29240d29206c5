/* art_io.c -- what every IO backend shares: the driver object and its
 * registrations, the system call of each opcode, and how a raw result
 * becomes an op's status. See art_io.h for the contract.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#include "art_io.h"

#ifndef P_PIDFD
#define P_PIDFD 3
#endif

/* ---- the driver ------------------------------------------------------------------ */

art_io *art_io_new(art_exec *exec, unsigned backend, unsigned nworkers) {
  art_io *io = calloc(1, sizeof *io);
  if (io) {
    io->subs = calloc(nworkers, sizeof *io->subs);
    io->workers = calloc(nworkers, sizeof *io->workers);
    io->shared = aligned_alloc(ART_CACHELINE, nworkers * sizeof *io->shared);
  }
  if (!io || !io->subs || !io->workers || !io->shared) {
    if (io) {
      free(io->subs);
      free(io->workers);
      free(io->shared);
      free(io);
    }
    art_fail(ASYNCRT_ENOMEM, "asyncrt_io_open: no memory for a driver of %u workers", nworkers);
    return NULL;
  }
  memset(io->shared, 0, nworkers * sizeof *io->shared);
  io->exec = exec;
  io->backend = backend;
  io->nworkers = nworkers;
  return io;
}

int art_io_register_worker(art_io *io, unsigned index, art_io_worker *w, const asyncrt_subsystem_vtable *vt,
                           uint32_t priority) {
  asyncrt_subsystem_config cfg = {
      .size = sizeof cfg,
      .vtable = vt,
      .user_data = w,
      .priority = priority,
      .waiter_cap = 64,
      .poll_budget = 64,
      .worker = index,
      .fd = w->fd,
      .name = io->backend == ASYNCRT_IO_URING ? "io_uring" : "epoll",
  };
  w->io = io;
  w->index = index;
  w->shared = &io->shared[index];
  io->workers[index] = w;
  uint64_t h = 0;
  int rc = art_subsys_register(io->exec, &cfg, &h); /* on failure, finalize freed w */
  if (rc) {
    io->workers[index] = NULL;
    return rc;
  }
  art_subsys *s = art_handle_get(h, ART_H_SUBSYS);
  io->subs[index] = s;
  io->shared[index].inst = &s->inst[0];
  w->core = s->inst[0].core;
  return ASYNCRT_OK;
}

uint64_t art_io_publish(art_io *io) {
  io->handle = art_handle_new(ART_H_IO, io);
  if (!io->handle) art_fail(ASYNCRT_ENOMEM, "asyncrt_io_open: no memory for a handle");
  return io->handle;
}

int art_io_unpublish(art_io *io) {
  if (!io->handle || !art_handle_free(io->handle)) return 0;
  atomic_store(&io->closing, 1);
  return 1;
}

void art_io_detach(art_io *io) {
  atomic_store(&io->closing, 1);
  art_pool_close(io);
  for (unsigned i = 0; i < io->nworkers; i++) {
    art_subsys *s = io->subs[i];
    /* Its handle goes with the detach: nothing else could unregister it. */
    if (s) art_subsys_detach(s);
    io->workers[i] = NULL; /* finalized */
  }
}

void art_io_free(art_io *io) {
  if (!io) return;
  for (unsigned i = 0; i < io->nworkers; i++) free(io->shared[i].forget);
  free(io->subs);
  free(io->workers);
  free(io->shared);
  free(io);
}

art_subsys *art_io_sub_for(art_io *io, asyncrt_context *cx) {
  art_exec *e = cx->exec;
  unsigned i = e && e->group ? e->index : 0;
  art_subsys *s = e && i < io->nworkers ? io->subs[i] : NULL;
  if (!s || s->inst[0].core != e) {
    art_fail(ASYNCRT_ENOTSUP, "asyncrt_io_submit: not inside a poll of a task of the driver's executor");
    return NULL;
  }
  return s;
}

void art_io_stats(art_io *io, asyncrt_io_stats *out) {
  asyncrt_io_stats st = {.size = sizeof st, .backend = io->backend, .workers = io->nworkers};
  for (unsigned i = 0; i < io->nworkers; i++) {
    st.syscalls += atomic_load_explicit(&io->shared[i].syscalls, memory_order_relaxed);
    art_subsys *s = io->subs[i];
    if (!s) continue;
    art_subsys_inst *inst = &s->inst[0];
    st.submits += atomic_load_explicit(&inst->submits, memory_order_relaxed);
    st.completions += atomic_load_explicit(&inst->completions, memory_order_relaxed);
    st.failures += atomic_load_explicit(&inst->failures, memory_order_relaxed);
    st.cancels += atomic_load_explicit(&inst->cancels, memory_order_relaxed);
    st.in_flight += atomic_load_explicit(&inst->waiters, memory_order_relaxed);
    st.ticks += atomic_load_explicit(&inst->polls, memory_order_relaxed);
  }
  art_pool_stats(io, &st);
  *out = st;
}

void art_io_poll_again(asyncrt_subsystem_cx *scx) {
  art_subsys_inst *inst = (art_subsys_inst *)scx;
  atomic_store_explicit(&inst->fd_ready, 1, memory_order_relaxed);
  /* Only the worker's driver polls, so it is the one calling. */
  if (art_tls_cx && art_tls_cx->exec == inst->core) inst->core->fd_ready = 1;
}

/* ---- completion -------------------------------------------------------------------- */

void art_io_complete(asyncrt_op *op, int64_t res) {
  int status = res >= 0 ? ASYNCRT_OK : res == -ECANCELED ? ASYNCRT_ECANCELLED : ASYNCRT_EOS;
  art_op_complete(op, status, res);
}

/* ---- the system calls ------------------------------------------------------------- */

int64_t art_io_connect_result(int fd) {
  int err = 0;
  socklen_t len = sizeof err;
  if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0) return -errno;
  if (err) return -err;
  /* No error pending: connected, or still connecting (a wake-up for
   * another reason). Writable means connected. */
  struct pollfd p = {.fd = fd, .events = POLLOUT};
  int n = poll(&p, 1, 0);
  if (n < 0) return -errno;
  if (n == 0 || !(p.revents & (POLLOUT | POLLERR | POLLHUP))) return -EAGAIN;
  if (p.revents & (POLLERR | POLLHUP)) {
    len = sizeof err;
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) == 0 && err) return -err;
    if (p.revents & POLLHUP) return -ECONNREFUSED; /* a reset before the error was read */
  }
  return 0;
}

/* The wait status waitpid(2) would give for a waitid(2) answer. */
static int64_t wait_status(const siginfo_t *info) {
  switch (info->si_code) {
  case CLD_EXITED: return (int64_t)((info->si_status & 0xff) << 8);
  case CLD_KILLED: return info->si_status & 0x7f;
  case CLD_DUMPED: return (info->si_status & 0x7f) | 0x80;
  default: return 0;
  }
}

static int64_t sync_once(asyncrt_op *op) {
  int fd = art_io_fd(op);
  int64_t off = (int64_t)op->args[3];
  ssize_t r;
  switch (op->opcode) {
  case ASYNCRT_IO_OP_NOP: return 0;
  case ASYNCRT_IO_OP_READ:
    r = off < 0 ? read(fd, (void *)(uintptr_t)op->args[1], (size_t)op->args[2])
                : pread(fd, (void *)(uintptr_t)op->args[1], (size_t)op->args[2], (off_t)off);
    break;
  case ASYNCRT_IO_OP_WRITE:
    r = off < 0 ? write(fd, (const void *)(uintptr_t)op->args[1], (size_t)op->args[2])
                : pwrite(fd, (const void *)(uintptr_t)op->args[1], (size_t)op->args[2], (off_t)off);
    break;
  case ASYNCRT_IO_OP_READV:
    r = off < 0 ? readv(fd, (const struct iovec *)(uintptr_t)op->args[1], art_io_int(op->args[2]))
                : preadv(fd, (const struct iovec *)(uintptr_t)op->args[1], art_io_int(op->args[2]), (off_t)off);
    break;
  case ASYNCRT_IO_OP_WRITEV:
    r = off < 0 ? writev(fd, (const struct iovec *)(uintptr_t)op->args[1], art_io_int(op->args[2]))
                : pwritev(fd, (const struct iovec *)(uintptr_t)op->args[1], art_io_int(op->args[2]), (off_t)off);
    break;
  case ASYNCRT_IO_OP_RECV:
    r = recv(fd, (void *)(uintptr_t)op->args[1], (size_t)op->args[2], (int)op->flags);
    break;
  case ASYNCRT_IO_OP_SEND:
    r = send(fd, (const void *)(uintptr_t)op->args[1], (size_t)op->args[2], (int)op->flags | MSG_NOSIGNAL);
    break;
  case ASYNCRT_IO_OP_RECVMSG: r = recvmsg(fd, (struct msghdr *)(uintptr_t)op->args[1], (int)op->flags); break;
  case ASYNCRT_IO_OP_SENDMSG:
    r = sendmsg(fd, (const struct msghdr *)(uintptr_t)op->args[1], (int)op->flags | MSG_NOSIGNAL);
    break;
  case ASYNCRT_IO_OP_ACCEPT:
    r = accept4(fd, (struct sockaddr *)(uintptr_t)op->args[1], (socklen_t *)(uintptr_t)op->args[2],
                SOCK_NONBLOCK | SOCK_CLOEXEC);
    break;
  case ASYNCRT_IO_OP_CONNECT:
    r = connect(fd, (const struct sockaddr *)(uintptr_t)op->args[1], (socklen_t)op->args[2]);
    break;
  case ASYNCRT_IO_OP_CLOSE:
    /* Not retried on EINTR: the fd is gone either way (Linux). */
    return close(fd) < 0 && errno != EINTR ? -errno : 0;
  case ASYNCRT_IO_OP_FSYNC: r = (op->flags & ASYNCRT_IO_FSYNC_DATASYNC) ? fdatasync(fd) : fsync(fd); break;
  case ASYNCRT_IO_OP_POLL: {
    struct pollfd p = {.fd = fd, .events = (short)op->args[1]};
    r = poll(&p, 1, 0);
    if (r == 0) return -EAGAIN;
    if (r > 0) return p.revents;
    break;
  }
  case ASYNCRT_IO_OP_OPENAT:
    r = openat(fd, (const char *)(uintptr_t)op->args[1], art_io_int(op->args[2]) | O_CLOEXEC, (mode_t)op->args[3]);
    break;
  case ASYNCRT_IO_OP_SHUTDOWN: r = shutdown(fd, art_io_int(op->args[1])); break;
  case ASYNCRT_IO_OP_BLOCKING: {
    int64_t (*fn)(void *) = (int64_t(*)(void *))(uintptr_t)op->args[0];
    return fn((void *)(uintptr_t)op->args[1]);
  }
  case ASYNCRT_IO_OP_WAITPID: {
    siginfo_t info;
    memset(&info, 0, sizeof info);
    r = syscall(SYS_waitid, P_PIDFD, fd, &info, WEXITED | WNOHANG, NULL);
    if (r == 0) return info.si_pid ? wait_status(&info) : -EAGAIN;
    break;
  }
  default: return -EINVAL; /* TIMEOUT, SIGNAL: not system calls */
  }
  return r < 0 ? -errno : (int64_t)r;
}

int64_t art_io_do_sync(asyncrt_op *op) {
  int64_t r;
  do r = sync_once(op);
  while (r == -EINTR && op->opcode != ASYNCRT_IO_OP_CLOSE);
  if (r == -EWOULDBLOCK) r = -EAGAIN;
  return r;
}

uint32_t art_io_op_events(const asyncrt_op *op) {
  switch (op->opcode) {
  case ASYNCRT_IO_OP_WRITE:
  case ASYNCRT_IO_OP_WRITEV:
  case ASYNCRT_IO_OP_SEND:
  case ASYNCRT_IO_OP_SENDMSG:
  case ASYNCRT_IO_OP_CONNECT: return EPOLLOUT;
  case ASYNCRT_IO_OP_POLL: /* the poll(2) bits are epoll's */
    return (uint32_t)op->args[1] & (EPOLLIN | EPOLLPRI | EPOLLOUT | EPOLLRDHUP);
  default: return EPOLLIN;
  }
}

int art_io_op_needs_pool(const asyncrt_op *op) {
  switch (op->opcode) {
  case ASYNCRT_IO_OP_FSYNC:
  case ASYNCRT_IO_OP_OPENAT:
  case ASYNCRT_IO_OP_BLOCKING: return 1;
  case ASYNCRT_IO_OP_READ:
  case ASYNCRT_IO_OP_WRITE:
  case ASYNCRT_IO_OP_READV:
  case ASYNCRT_IO_OP_WRITEV: return (int64_t)op->args[3] >= 0;
  default: return 0;
  }
}
