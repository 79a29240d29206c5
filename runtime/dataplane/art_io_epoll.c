/* art_io_epoll.c -- the epoll backend: readiness, made into completions.
 *
 * Per worker: one epoll set (made by the control plane, the registration's
 * fd, so the worker sleeps on it through its own epoll set) and a table of
 * the fds it has seen, indexed by fd, in C memory that grows only when a
 * larger fd shows up. An op is tried at once on its non-blocking fd; only
 * if the call would block is the fd added to the epoll set -- once, with
 * EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET, for the rest of its life on
 * this worker -- and the op queued on the fd's read, write or poll list.
 * The registration's poll takes the ready fds with epoll_wait(timeout 0)
 * and retries their queued ops in order until one would block again. So an
 * op that does not block costs its system call and nothing else, and one
 * that does costs one epoll_wait share and, the first time for an fd, one
 * epoll_ctl.
 *
 * Edge-triggered is safe because every op is tried before it waits: an
 * edge that came while nothing waited is not needed (the try sees the
 * data), and an edge after a try that would block comes to the epoll set
 * (epoll_ctl ADD reports readiness that is already there).
 *
 * TIMEOUT ops wait in a binary heap ordered by deadline, behind one
 * executor timer per worker armed for the earliest; its waker marks the
 * registration to be polled. CLOSE forgets the fd (this worker's table and
 * epoll set; other workers' tables through their forget lists), fails the
 * ops still queued on it with -EBADF, then closes it. Everything else that
 * cannot be made non-blocking goes to the blocking pool.
 *
 * All of it runs in the registration's callbacks, which the subsystem
 * layer serializes with the instance lock, mostly on the worker's thread.
 */
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "art_io.h"

/* Where an in-flight op is: the low bits of subsystem_data[1]. */
enum { AT_NONE = 0, AT_READ = 1, AT_WRITE = 2, AT_POLL = 3, AT_POOL = 4, AT_TIMER = 5, AT_SIGNAL = 6 };
#define AT_MASK 7u
#define AT_CONNECTING 8u /* CONNECT: connect(2) said EINPROGRESS; finish with SO_ERROR */

enum { KIND_UNKNOWN = 0, KIND_POLLABLE = 1, KIND_FILE = 2 };

typedef struct ep_list {
  asyncrt_op *head, *tail;
} ep_list;

/* One fd as this worker knows it. */
typedef struct ep_fd {
  ep_list lists[3]; /* AT_READ - 1, AT_WRITE - 1, AT_POLL - 1 */
  uint8_t registered; /* in the epoll set */
  uint8_t kind;       /* KIND_*: regular files cannot be waited for */
  /* Read readiness, as tokio keeps it: 1 once a read came back with
   * EAGAIN, or short on a byte stream (the receive queue was emptied),
   * and no read event has come since. A read submitted then waits for the
   * edge instead of trying a recv that would say EAGAIN: in a
   * request-response loop that try is one wasted system call per request.
   * Every new arrival of data raises an edge (EPOLLET), which clears it. */
  uint8_t rd_drained;
  /* An end was reported (EPOLLRDHUP, HUP or ERR): it is not raised again,
   * and a short read before it says nothing about it, so from then on
   * every read tries (and sees the end or the error). */
  uint8_t rd_closed;
  uint8_t stream; /* STREAM_*: whether a short read means drained */
} ep_fd;

enum { STREAM_UNKNOWN = 0, STREAM_YES = 1, STREAM_NO = 2 };

#define EP_EVENTS 64

typedef struct ep_worker {
  art_io_worker head;
  ep_fd *fds;
  uint32_t nfds;
  /* TIMEOUT ops: a min-heap by deadline (args[1]); each op's index is its
   * args[2]. One executor timer stands for the earliest. */
  asyncrt_op **heap;
  uint32_t nheap, heap_cap;
  asyncrt_timer timer;
  struct epoll_event evs[EP_EVENTS];
} ep_worker;

static inline uintptr_t tag_of(const asyncrt_op *op) { return (uintptr_t)op->subsystem_data[1]; }
static inline void tag_set(asyncrt_op *op, uintptr_t t) { op->subsystem_data[1] = (void *)t; }
static inline asyncrt_op *next_of(const asyncrt_op *op) { return op->subsystem_data[0]; }

static inline void count_syscall(ep_worker *w) { art_count(&w->head.shared->syscalls, 1); }

/* ---- the fd table ------------------------------------------------------------------ */

/* The fd's entry, the table grown to hold it (rarely: doubling). NULL on
 * ENOMEM. */
static ep_fd *fd_entry(ep_worker *w, int fd) {
  if (ART_LIKELY((uint32_t)fd < w->nfds)) return &w->fds[fd];
  uint32_t n = w->nfds ? w->nfds : 64;
  while (n <= (uint32_t)fd) n *= 2;
  ep_fd *grown = realloc(w->fds, n * sizeof *grown);
  if (!grown) return NULL;
  /* The lists hold ops, not pointers into the table: moving is fine. */
  memset(grown + w->nfds, 0, (n - w->nfds) * sizeof *grown);
  w->fds = grown;
  w->nfds = n;
  return &w->fds[fd];
}

static void list_push(ep_list *l, asyncrt_op *op) {
  op->subsystem_data[0] = NULL;
  if (l->tail) l->tail->subsystem_data[0] = op;
  else l->head = op;
  l->tail = op;
}

static asyncrt_op *list_pop(ep_list *l) {
  asyncrt_op *op = l->head;
  if (op && !(l->head = next_of(op))) l->tail = NULL;
  return op;
}

static int list_remove(ep_list *l, asyncrt_op *op) {
  asyncrt_op *prev = NULL;
  for (asyncrt_op *o = l->head; o; prev = o, o = next_of(o)) {
    if (o != op) continue;
    if (prev) prev->subsystem_data[0] = next_of(o);
    else l->head = next_of(o);
    if (l->tail == o) l->tail = prev;
    return 1;
  }
  return 0;
}

static void finish(asyncrt_op *op, int64_t res) {
  tag_set(op, AT_NONE);
  art_io_complete(op, res);
}

/* Fails every op queued on the fd and forgets it. */
static void forget_fd(ep_worker *w, int fd, int unregister) {
  if ((uint32_t)fd >= w->nfds) return;
  ep_fd *ent = &w->fds[fd];
  if (ent->registered && unregister) {
    epoll_ctl(w->head.fd, EPOLL_CTL_DEL, fd, NULL);
    count_syscall(w);
  }
  ep_fd gone = *ent;
  memset(ent, 0, sizeof *ent);
  for (int k = 0; k < 3; k++)
    for (asyncrt_op *op; (op = list_pop(&gone.lists[k]));) finish(op, -EBADF);
}

/* fds other workers closed: forget them here too (the file is gone, and so
 * is its epoll registration; a new file may get the number). */
static void take_forgets(ep_worker *w) {
  art_io_shared *sh = w->head.shared;
  if (ART_LIKELY(!atomic_load_explicit(&sh->forget_pending, memory_order_acquire))) return;
  art_lock_acquire(&sh->forget_lock);
  atomic_store_explicit(&sh->forget_pending, 0, memory_order_relaxed);
  for (uint32_t i = 0; i < sh->nforget; i++) forget_fd(w, sh->forget[i], 0);
  sh->nforget = 0;
  art_lock_release(&sh->forget_lock);
}

/* Puts fd on worker i's forget list and wakes it. A submit or poll there
 * takes the list before anything else, so once fd is closed no op there can
 * find its stale entry. */
static void forget_on(art_io *io, unsigned i, int fd) {
  art_io_shared *sh = &io->shared[i];
  if (!sh->inst) return;
  art_lock_acquire(&sh->forget_lock);
  if (sh->nforget == sh->forget_cap) {
    uint32_t cap = sh->forget_cap ? sh->forget_cap * 2 : 16;
    int *grown = realloc(sh->forget, cap * sizeof *grown);
    if (grown) {
      sh->forget = grown;
      sh->forget_cap = cap;
    }
  }
  /* Out of memory: that worker keeps the stale entry; an op there on a
   * new file with this number may wait for an edge that never comes. */
  if (sh->nforget < sh->forget_cap) sh->forget[sh->nforget++] = fd;
  atomic_store_explicit(&sh->forget_pending, 1, memory_order_release);
  art_lock_release(&sh->forget_lock);
  art_exec_wake_driver(sh->inst->core);
}

/* Tells the other workers to forget fd, before it is closed: a new file
 * with its number can only appear after the close. */
static void broadcast_forget(ep_worker *w, int fd) {
  art_io *io = w->head.io;
  for (unsigned i = 0; i < io->nworkers; i++)
    if (i != w->head.index) forget_on(io, i, fd);
}

void art_io_epoll_forget(art_io *io, int fd) {
  for (unsigned i = 0; i < io->nworkers; i++) forget_on(io, i, fd);
}

/* ---- timeouts ------------------------------------------------------------------------ */

static inline uint64_t deadline_of(const asyncrt_op *op) { return op->args[1]; }

static void heap_place(ep_worker *w, uint32_t i, asyncrt_op *op) {
  w->heap[i] = op;
  op->args[2] = i;
}

static void heap_up(ep_worker *w, uint32_t i) {
  asyncrt_op *op = w->heap[i];
  while (i > 0) {
    uint32_t parent = (i - 1) / 2;
    if (deadline_of(w->heap[parent]) <= deadline_of(op)) break;
    heap_place(w, i, w->heap[parent]);
    i = parent;
  }
  heap_place(w, i, op);
}

static void heap_down(ep_worker *w, uint32_t i) {
  asyncrt_op *op = w->heap[i];
  for (;;) {
    uint32_t c = 2 * i + 1;
    if (c >= w->nheap) break;
    if (c + 1 < w->nheap && deadline_of(w->heap[c + 1]) < deadline_of(w->heap[c])) c++;
    if (deadline_of(op) <= deadline_of(w->heap[c])) break;
    heap_place(w, i, w->heap[c]);
    i = c;
  }
  heap_place(w, i, op);
}

static void heap_remove(ep_worker *w, asyncrt_op *op) {
  uint32_t i = (uint32_t)op->args[2];
  if (i >= w->nheap || w->heap[i] != op) return;
  asyncrt_op *last = w->heap[--w->nheap];
  if (i < w->nheap) {
    heap_place(w, i, last);
    heap_up(w, i);
    heap_down(w, (uint32_t)last->args[2]);
  }
}

/* The timer's waker: its data is the worker's shared struct, which
 * outlives the worker (a firing may race with a close). */
static void timer_wake(const void *data) {
  art_io_shared *sh = (art_io_shared *)data;
  atomic_store_explicit(&sh->timer_fired, 1, memory_order_release);
  if (sh->inst) art_io_poll_again((asyncrt_subsystem_cx *)sh->inst);
}
static void timer_clone(const void *data, asyncrt_waker *out);
static void timer_wake_owned(const void *data) { timer_wake(data); }
static void timer_drop(const void *data) { (void)data; }
static const asyncrt_waker_vtable timer_waker_vtable = {
    .clone = timer_clone, .wake = timer_wake_owned, .wake_by_ref = timer_wake, .drop = timer_drop};
static void timer_clone(const void *data, asyncrt_waker *out) {
  *out = (asyncrt_waker){.data = data, .vtable = &timer_waker_vtable};
}

static uint64_t clock_now(ep_worker *w) { return art_clock_now(w->head.core->clock); }

/* Completes the due timeouts and arms the timer for the next. */
static unsigned timeouts_run(ep_worker *w) {
  unsigned done = 0;
  atomic_store_explicit(&w->head.shared->timer_fired, 0, memory_order_relaxed);
  while (w->nheap) {
    uint64_t now = clock_now(w);
    asyncrt_op *op = w->heap[0];
    if (deadline_of(op) > now) {
      asyncrt_context cx = {.waker = {.data = w->head.shared, .vtable = &timer_waker_vtable},
                            .exec = w->head.core};
      if (art_timer_poll(&w->timer, &cx, deadline_of(op)) == ASYNCRT_POLL_PENDING) break;
      continue; /* due by the executor's tick clock after all: take it */
    }
    heap_remove(w, op);
    finish(op, 0);
    done++;
  }
  if (!w->nheap) art_timer_cancel(&w->timer);
  return done;
}

static void timeout_add(ep_worker *w, asyncrt_op *op) {
  if (w->nheap == w->heap_cap) {
    uint32_t cap = w->heap_cap ? w->heap_cap * 2 : 16;
    asyncrt_op **grown = realloc(w->heap, cap * sizeof *grown);
    if (!grown) {
      art_io_complete(op, -ENOMEM);
      return;
    }
    w->heap = grown;
    w->heap_cap = cap;
  }
  uint64_t now = clock_now(w), ns = op->args[0];
  op->args[1] = ns > UINT64_MAX - now ? UINT64_MAX : now + ns;
  tag_set(op, AT_TIMER);
  w->nheap++;
  heap_place(w, w->nheap - 1, op);
  heap_up(w, w->nheap - 1);
  if (w->heap[0] == op) timeouts_run(w); /* a new earliest: (re)arm, or complete it now */
}

/* ---- trying an op --------------------------------------------------------------------- */

static int64_t attempt(asyncrt_op *op) {
  if (op->opcode != ASYNCRT_IO_OP_CONNECT) return art_io_do_sync(op);
  if (tag_of(op) & AT_CONNECTING) return art_io_connect_result(art_io_fd(op));
  int64_t r = art_io_do_sync(op);
  if (r == -EINPROGRESS || r == -EALREADY) {
    tag_set(op, tag_of(op) | AT_CONNECTING);
    return -EAGAIN;
  }
  return r == -EISCONN ? 0 : r;
}

static int list_of(const asyncrt_op *op) {
  if (op->opcode == ASYNCRT_IO_OP_POLL) return AT_POLL;
  return art_io_op_events(op) == EPOLLOUT ? AT_WRITE : AT_READ;
}

/* Whether fd is a byte stream whose short read means an emptied receive
 * queue: a stream socket or a pipe. Not a tty (a canonical-mode read ends
 * at each line) nor a datagram socket (a read ends at each message).
 * Learned once per fd, on its first short read. */
static int is_stream(ep_worker *w, ep_fd *ent, int fd) {
  if (ent->stream == STREAM_UNKNOWN) {
    struct stat st;
    int type = 0;
    socklen_t len = sizeof type;
    count_syscall(w);
    if (fstat(fd, &st) < 0) ent->stream = STREAM_NO; /* not knowing, never wait on a guess */
    else if (S_ISFIFO(st.st_mode)) ent->stream = STREAM_YES;
    else if (S_ISSOCK(st.st_mode) && getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) == 0 && type == SOCK_STREAM)
      ent->stream = STREAM_YES;
    else ent->stream = STREAM_NO;
  }
  return ent->stream == STREAM_YES;
}

/* After a read-side attempt on fd with result r: whether the receive queue
 * is known to be empty now (see ep_fd.rd_drained). */
static void note_read(ep_worker *w, ep_fd *ent, int fd, const asyncrt_op *op, int64_t r) {
  if (r == -EAGAIN) {
    ent->rd_drained = 1;
  } else if (r > 0 && (op->opcode == ASYNCRT_IO_OP_RECV || op->opcode == ASYNCRT_IO_OP_READ) &&
             (uint64_t)r < op->args[2] && !(op->flags & MSG_PEEK)) {
    ent->rd_drained = (uint8_t)is_stream(w, ent, fd);
  } else {
    ent->rd_drained = 0;
  }
}

/* Retries the ops queued on one list, in order, until one would block. */
static unsigned retry(ep_worker *w, ep_fd *ent, int fd, int which) {
  ep_list *l = &ent->lists[which - 1];
  unsigned done = 0;
  for (asyncrt_op *op; (op = l->head);) {
    int64_t r = attempt(op);
    if (which == AT_READ) note_read(w, ent, fd, op, r);
    if (r == -EAGAIN) break;
    list_pop(l);
    finish(op, r);
    done++;
  }
  return done;
}

/* Regular files (and directories, block devices) never report readiness
 * and cannot join an epoll set: their reads and writes block, so they go
 * to the pool. Learned once per fd. */
static int classify(ep_worker *w, ep_fd *ent, int fd) {
  if (ent->kind != KIND_UNKNOWN) return ent->kind;
  struct stat st;
  count_syscall(w);
  if (fstat(fd, &st) < 0) return -errno;
  ent->kind = S_ISREG(st.st_mode) || S_ISDIR(st.st_mode) || S_ISBLK(st.st_mode) ? KIND_FILE : KIND_POLLABLE;
  return ent->kind;
}

static void do_close(ep_worker *w, asyncrt_op *op) {
  int fd = art_io_fd(op);
  if (fd >= 0) {
    forget_fd(w, fd, 1);
    if (w->head.io->nworkers > 1) broadcast_forget(w, fd);
  }
  finish(op, art_io_do_sync(op));
}

static void submit_fd_op(ep_worker *w, asyncrt_op *op) {
  int fd = art_io_fd(op);
  if (fd < 0) {
    finish(op, -EBADF);
    return;
  }
  ep_fd *ent = fd_entry(w, fd);
  if (!ent) {
    finish(op, -ENOMEM);
    return;
  }
  switch (op->opcode) {
  case ASYNCRT_IO_OP_READ:
  case ASYNCRT_IO_OP_WRITE:
  case ASYNCRT_IO_OP_READV:
  case ASYNCRT_IO_OP_WRITEV:
  case ASYNCRT_IO_OP_POLL: {
    int kind = classify(w, ent, fd);
    if (kind < 0) {
      finish(op, kind);
      return;
    }
    if (kind == KIND_FILE) {
      if (op->opcode == ASYNCRT_IO_OP_POLL) { /* always ready, as poll(2) says */
        finish(op, (int64_t)(op->args[1] & (POLLIN | POLLOUT | POLLRDNORM | POLLWRNORM)));
      } else {
        tag_set(op, AT_POOL);
        art_pool_submit(w->head.io, op);
      }
      return;
    }
    break;
  }
  default: break;
  }
  int which = list_of(op);
  ep_list *l = &ent->lists[which - 1];
  tag_set(op, AT_NONE);
  /* Nothing queued ahead of it: try it now -- unless it is a read and
   * the fd is known drained, with its edge still to come. */
  if (!l->head && !(which == AT_READ && ent->rd_drained && !ent->rd_closed && ent->registered)) {
    int64_t r = attempt(op);
    if (which == AT_READ) note_read(w, ent, fd, op, r);
    if (r != -EAGAIN) {
      finish(op, r);
      return;
    }
    if (!ent->registered) {
      struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET, .data.fd = fd};
      count_syscall(w);
      if (epoll_ctl(w->head.fd, EPOLL_CTL_ADD, fd, &ev) < 0 && errno != EEXIST) {
        finish(op, -errno);
        return;
      }
      ent->registered = 1;
    }
  }
  tag_set(op, (tag_of(op) & ~(uintptr_t)AT_MASK) | (uintptr_t)which);
  list_push(l, op);
}

/* ---- the subsystem callbacks ------------------------------------------------------------ */

static void ep_submit(void *user, asyncrt_subsystem_cx *scx, asyncrt_op *op) {
  ep_worker *w = user;
  (void)scx;
  take_forgets(w);
  tag_set(op, AT_NONE);
  switch (op->opcode) {
  case ASYNCRT_IO_OP_NOP: finish(op, 0); return;
  case ASYNCRT_IO_OP_TIMEOUT: timeout_add(w, op); return;
  case ASYNCRT_IO_OP_CLOSE: do_close(w, op); return;
  /* shutdown(2) never waits; queued behind a pending recv on the fd's read
   * list it would wait for that recv, which waits for the shutdown. */
  case ASYNCRT_IO_OP_SHUTDOWN: finish(op, attempt(op)); return;
  case ASYNCRT_IO_OP_SIGNAL:
    tag_set(op, AT_SIGNAL);
    art_io_signal_submit(w->head.io, op);
    return;
  default: break;
  }
  if (art_io_op_needs_pool(op)) {
    tag_set(op, AT_POOL);
    art_pool_submit(w->head.io, op);
    return;
  }
  submit_fd_op(w, op);
}

static int ep_poll(void *user, asyncrt_subsystem_cx *scx, uint32_t budget) {
  ep_worker *w = user;
  (void)budget;
  take_forgets(w);
  unsigned done = 0;
  if (w->nheap && (atomic_load_explicit(&w->head.shared->timer_fired, memory_order_acquire) ||
                   deadline_of(w->heap[0]) <= clock_now(w)))
    done += timeouts_run(w);
  count_syscall(w);
  int n = epoll_wait(w->head.fd, w->evs, EP_EVENTS, 0);
  for (int i = 0; i < n; i++) {
    uint32_t fd = (uint32_t)w->evs[i].data.fd, ev = w->evs[i].events;
    if (fd >= w->nfds) continue;
    ep_fd *ent = &w->fds[fd];
    if (ev & (EPOLLIN | EPOLLPRI | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) {
      ent->rd_drained = 0; /* new data (or an end): the next read tries */
      if (ev & (EPOLLRDHUP | EPOLLHUP | EPOLLERR)) ent->rd_closed = 1;
      done += retry(w, ent, (int)fd, AT_READ);
    }
    if (ev & (EPOLLOUT | EPOLLHUP | EPOLLERR)) done += retry(w, ent, (int)fd, AT_WRITE);
    if (ent->lists[AT_POLL - 1].head) done += retry(w, ent, (int)fd, AT_POLL);
  }
  if (n == EP_EVENTS) art_io_poll_again(scx); /* more may be ready: before the worker sleeps */
  return (int)done;
}

static void ep_cancel(void *user, asyncrt_subsystem_cx *scx, asyncrt_op *op) {
  ep_worker *w = user;
  (void)scx;
  uintptr_t at = tag_of(op) & AT_MASK;
  switch (at) {
  case AT_READ:
  case AT_WRITE:
  case AT_POLL: {
    int fd = art_io_fd(op);
    if ((uint32_t)fd < w->nfds && list_remove(&w->fds[fd].lists[at - 1], op)) finish(op, -ECANCELED);
    return;
  }
  case AT_TIMER:
    heap_remove(w, op);
    finish(op, -ECANCELED);
    if (w->nheap) timeouts_run(w); /* re-arm for the earliest left */
    else art_timer_cancel(&w->timer);
    return;
  case AT_POOL: art_pool_cancel(w->head.io, op); return; /* it completes it, now or when it returns */
  case AT_SIGNAL: art_io_signal_cancel(w->head.io, op); return;
  default: return; /* not waiting here */
  }
}

static void ep_finalize(void *user) {
  ep_worker *w = user;
  art_timer_cancel(&w->timer);
  free(w->fds);
  free(w->heap);
  free(w);
}

const asyncrt_subsystem_vtable art_io_epoll_vtable = {
    .size = sizeof(asyncrt_subsystem_vtable),
    .poll = ep_poll,
    .submit = ep_submit,
    .cancel = ep_cancel,
    .finalize = ep_finalize,
};

art_io_worker *art_io_epoll_worker_new(art_io *io, unsigned index, int epfd) {
  ep_worker *w = calloc(1, sizeof *w);
  if (!w) {
    art_fail(ASYNCRT_ENOMEM, "asyncrt_io_open: no memory for worker %u's epoll state", index);
    return NULL;
  }
  w->head.io = io;
  w->head.index = index;
  w->head.fd = epfd;
  return &w->head;
}
