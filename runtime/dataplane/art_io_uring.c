/* art_io_uring.c -- the io_uring backend: one ring per worker, driven in C.
 *
 * The control plane (runtime/iodriver/uring_setup.go) creates each ring with
 * io_uring_setup and maps it; art_io_uring_worker_new reads its layout, and
 * the control plane unmaps and closes it once the registration is gone.
 * Everything per op is here, on the worker's thread: nothing crosses into
 * Go and nothing is allocated.
 *
 * Per op.  submit writes one submission entry (SQE) with user_data = the op
 * and publishes the SQ tail -- no syscall. The kernel sees it at the next
 * io_uring_enter. The worker's poll (once per tick, when the executor picks
 * this registration) makes at most ONE io_uring_enter, which submits every
 * SQE queued since the last one and runs the completions the kernel has
 * pending (IORING_ENTER_GETEVENTS with min_complete 0: never waits); then it
 * reaps the completion queue (CQEs) straight from shared memory and
 * completes each op with art_io_complete. A poll with nothing to submit and
 * no flag from the kernel (IORING_SQ_TASKRUN, IORING_SQ_CQ_OVERFLOW) makes
 * no syscall at all. An idle worker sleeps in its epoll set, where the ring
 * fd is readable while completions are waiting.
 *
 * A submission queued by submit must not sit unsent while the worker
 * sleeps: submit asks for a poll at the next tick (art_io_poll_again, as if
 * the ring fd had been reported), which also keeps the worker from sleeping
 * before that tick.
 *
 * SQ full.  submit first makes room with an io_uring_enter that only
 * submits; if the kernel still takes nothing (EBUSY, EAGAIN), the op waits
 * on the worker's overflow list (FIFO, linked through subsystem_data[1]) and
 * the next polls write it. Nothing is dropped. The CQ cannot lose entries
 * either: with IORING_FEAT_NODROP (required) the kernel keeps what did not
 * fit and sets IORING_SQ_CQ_OVERFLOW; poll then enters again to flush them.
 *
 * Cancel.  An op whose SQE the kernel has not taken yet is neutralized (its
 * SQE becomes a NOP whose completion is ignored) and completed with
 * -ECANCELED at once; one still on the overflow list is unlinked and
 * completed. One in the kernel gets an IORING_OP_ASYNC_CANCEL, and is
 * completed only by its own CQE (-ECANCELED, or its real result if the
 * cancel came too late): its buffers stay lent to the kernel until then.
 * When the registration is being torn down (unregister, the driver's close,
 * the executor's free), cancel also waits for that CQE, bounded, because
 * the executor completes whatever is left right after and the task's
 * future, holding the buffers, may then be dropped.
 *
 * Ops io_uring does not do go where the epoll backend sends them too:
 * BLOCKING to the blocking pool, SIGNAL to the signal watcher. WAITPID is a
 * POLL_ADD on the pidfd, then waitid (art_io_do_sync) at its CQE. TIMEOUT
 * is the kernel's IORING_OP_TIMEOUT (CLOCK_MONOTONIC, the executor's real
 * clock); its timespec lives in the op's own args[1..2], which art_io.h
 * lends the backend while the op is in flight. On an executor with a test
 * clock the kernel's time is not the executor's: there TIMEOUT ops wait in
 * a list sorted by deadline behind one executor timer, as on epoll.
 *
 * Private words of an op while it is in flight here:
 *   subsystem_data[0]: state bits | SQ position << 32
 *   subsystem_data[1]: the next op on the overflow list
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/io_uring.h>
#include <linux/time_types.h>
#include <poll.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "art.h"
#include "art_io.h"
#include "art_io_uring.h"

_Static_assert(sizeof(void *) == 8, "op private words hold 64-bit values");

/* Newer than some distributions' headers. */
#ifndef IORING_SQ_TASKRUN
#define IORING_SQ_TASKRUN (1U << 2)
#endif
#ifndef IORING_ENTER_EXT_ARG
#define IORING_ENTER_EXT_ARG (1U << 3)
#endif

/* user_data of SQEs that are not an op's own: their CQEs are ignored. Ops
 * are 8-byte aligned, so these never collide with one. */
#define UD_IGNORE 0u /* a neutralized SQE */
#define UD_CANCEL 1u /* an IORING_OP_ASYNC_CANCEL */

enum {
  ST_SQ = 1u,         /* its SQE is in the ring at its position (maybe taken by the kernel already) */
  ST_OVERFLOW = 2u,   /* waits on the overflow list for room in the SQ */
  ST_CANCEL_OVF = 4u, /* in the kernel; its ASYNC_CANCEL waits on the overflow list */
  ST_CANCELLING = 8u, /* its cancel was asked for (so an -ECANCELED is that, not a CLOSE's) */
  ST_TEST_TIMER = 16u, /* a TIMEOUT on a test clock: on the timeout list, not in the ring */
};

typedef struct uring_worker {
  art_io_worker base; /* io, index, fd (the ring), core, shared (syscalls) */
  unsigned features;
  int cancel_fd; /* the kernel has IORING_ASYNC_CANCEL_FD (5.19) */
  /* The submission queue: the kernel's head and tail, and our copy of the
   * tail (what we have written; published to *sq_ktail at once). */
  _Atomic uint32_t *sq_khead, *sq_ktail, *sq_kflags;
  uint32_t sq_mask, sq_entries, sq_tail;
  struct io_uring_sqe *sqes;
  /* The completion queue. */
  _Atomic uint32_t *cq_khead, *cq_ktail;
  uint32_t cq_mask;
  struct io_uring_cqe *cqes;
  /* Ops waiting for room in the SQ, or for room for their cancel (FIFO). */
  asyncrt_op *ovf_head, *ovf_tail;
  /* TIMEOUT ops of a test clock, by deadline (args[1]); linked through
   * subsystem_data[1]. One executor timer stands for the first. */
  asyncrt_op *tmo_head;
  asyncrt_timer timer;
  /* Teardown: the op whose CQE a dying registration's cancel waits for,
   * and whether it came. */
  asyncrt_op *awaited;
  int awaited_done;
  int dying; /* the registration is being torn down: the kernel may cancel ops on its own (a thread's exit) */
  uint64_t cancel_wait_ns;
} uring_worker;

/* ---- the op's private words ------------------------------------------------ */

static inline uint64_t op_word(const asyncrt_op *op) { return (uint64_t)(uintptr_t)op->subsystem_data[0]; }
static inline uint32_t op_state(const asyncrt_op *op) { return (uint32_t)op_word(op) & 0xffu; }
static inline uint32_t op_pos(const asyncrt_op *op) { return (uint32_t)(op_word(op) >> 32); }
static inline void op_set(asyncrt_op *op, uint32_t state, uint32_t pos) {
  op->subsystem_data[0] = (void *)(uintptr_t)((uint64_t)state | (uint64_t)pos << 32);
}
static inline asyncrt_op *op_next(const asyncrt_op *op) { return op->subsystem_data[1]; }
static inline void op_set_next(asyncrt_op *op, asyncrt_op *next) { op->subsystem_data[1] = next; }

/* ---- the ring ---------------------------------------------------------------- */

static int sys_enter(uring_worker *w, uint32_t to_submit, uint32_t min_complete, uint32_t flags, const void *arg,
                     size_t argsz) {
  art_count(&w->base.shared->syscalls, 1);
  long r = syscall(__NR_io_uring_enter, w->base.fd, to_submit, min_complete, flags, arg, argsz);
  return r < 0 ? -errno : (int)r;
}

/* SQEs written and not yet taken by the kernel. */
static inline uint32_t sq_pending(const uring_worker *w) {
  return w->sq_tail - atomic_load_explicit(w->sq_khead, memory_order_acquire);
}

/* The next free SQE, cleared, or NULL if the SQ is full. sqe_push
 * publishes it. */
static struct io_uring_sqe *sqe_get(uring_worker *w) {
  if (sq_pending(w) >= w->sq_entries) return NULL;
  struct io_uring_sqe *sqe = &w->sqes[w->sq_tail & w->sq_mask];
  memset(sqe, 0, sizeof *sqe);
  return sqe;
}

static void sqe_push(uring_worker *w) {
  w->sq_tail++;
  /* The kernel reads the tail (acquire) before the entries. */
  atomic_store_explicit(w->sq_ktail, w->sq_tail, memory_order_release);
}

/* Submits what is queued, never waiting. Returns what the kernel took, or
 * -errno (EBUSY, EAGAIN: it keeps the SQEs for the next try). */
static int flush(uring_worker *w, uint32_t flags) {
  return sys_enter(w, sq_pending(w), 0, flags, NULL, 0);
}

static inline int cq_empty(const uring_worker *w) {
  return atomic_load_explicit(w->cq_khead, memory_order_relaxed) ==
         atomic_load_explicit(w->cq_ktail, memory_order_acquire);
}

/* ---- writing SQEs ------------------------------------------------------------ */

static inline int is_native(uint32_t opcode) {
  return opcode != ASYNCRT_IO_OP_BLOCKING && opcode != ASYNCRT_IO_OP_SIGNAL;
}

static inline uint32_t io_len(uint64_t len) { return len > 0x7ffff000u ? 0x7ffff000u : (uint32_t)len; } /* read(2)'s cap */

/* Fills sqe for op (arguments as art_io.h lays them out). 0, or -EINVAL
 * for an opcode this backend does not write. */
static int prep_sqe(asyncrt_op *op, struct io_uring_sqe *sqe) {
  sqe->fd = art_io_fd(op);
  switch (op->opcode) {
  case ASYNCRT_IO_OP_NOP:
    sqe->opcode = IORING_OP_NOP;
    sqe->fd = -1;
    break;
  case ASYNCRT_IO_OP_READ:
  case ASYNCRT_IO_OP_WRITE:
    sqe->opcode = op->opcode == ASYNCRT_IO_OP_READ ? IORING_OP_READ : IORING_OP_WRITE;
    sqe->addr = op->args[1];
    sqe->len = io_len(op->args[2]);
    sqe->off = op->args[3]; /* -1: the file position, as read(2) (IORING_FEAT_RW_CUR_POS) */
    break;
  case ASYNCRT_IO_OP_READV:
  case ASYNCRT_IO_OP_WRITEV:
    sqe->opcode = op->opcode == ASYNCRT_IO_OP_READV ? IORING_OP_READV : IORING_OP_WRITEV;
    sqe->addr = op->args[1];
    sqe->len = (uint32_t)op->args[2]; /* iovcnt */
    sqe->off = op->args[3];
    break;
  case ASYNCRT_IO_OP_RECV:
    sqe->opcode = IORING_OP_RECV;
    sqe->addr = op->args[1];
    sqe->len = io_len(op->args[2]);
    sqe->msg_flags = op->flags;
    break;
  case ASYNCRT_IO_OP_SEND:
    sqe->opcode = IORING_OP_SEND;
    sqe->addr = op->args[1];
    sqe->len = io_len(op->args[2]);
    sqe->msg_flags = op->flags | MSG_NOSIGNAL;
    break;
  case ASYNCRT_IO_OP_RECVMSG:
  case ASYNCRT_IO_OP_SENDMSG:
    /* The msghdr is the submitter's and lives until completion: the kernel
     * writes msg_namelen, msg_controllen and msg_flags back into it. */
    sqe->opcode = op->opcode == ASYNCRT_IO_OP_RECVMSG ? IORING_OP_RECVMSG : IORING_OP_SENDMSG;
    sqe->addr = op->args[1];
    sqe->len = 1;
    sqe->msg_flags = op->flags | (op->opcode == ASYNCRT_IO_OP_SENDMSG ? (uint32_t)MSG_NOSIGNAL : 0u);
    break;
  case ASYNCRT_IO_OP_ACCEPT:
    sqe->opcode = IORING_OP_ACCEPT;
    sqe->addr = op->args[1];  /* sockaddr * or 0 */
    sqe->addr2 = op->args[2]; /* socklen_t *, in/out, or 0 */
    sqe->accept_flags = SOCK_NONBLOCK | SOCK_CLOEXEC;
    break;
  case ASYNCRT_IO_OP_CONNECT:
    sqe->opcode = IORING_OP_CONNECT;
    sqe->addr = op->args[1];
    sqe->off = op->args[2]; /* addrlen */
    break;
  case ASYNCRT_IO_OP_CLOSE:
    sqe->opcode = IORING_OP_CLOSE;
    break;
  case ASYNCRT_IO_OP_FSYNC:
    sqe->opcode = IORING_OP_FSYNC;
    sqe->fsync_flags = (op->flags & ASYNCRT_IO_FSYNC_DATASYNC) ? IORING_FSYNC_DATASYNC : 0;
    break;
  case ASYNCRT_IO_OP_POLL:
  case ASYNCRT_IO_OP_WAITPID:
    sqe->opcode = IORING_OP_POLL_ADD; /* one-shot */
    sqe->poll32_events = op->opcode == ASYNCRT_IO_OP_WAITPID ? (uint32_t)POLLIN : (uint32_t)op->args[1];
    break;
  case ASYNCRT_IO_OP_TIMEOUT: {
    /* The timespec must stay put until the kernel has read it (at
     * submission, IORING_FEAT_SUBMIT_STABLE): in the op's args[1..2]. */
    struct __kernel_timespec *ts = (struct __kernel_timespec *)&op->args[1];
    ts->tv_sec = (int64_t)(op->args[0] / 1000000000u);
    ts->tv_nsec = (long long)(op->args[0] % 1000000000u);
    sqe->opcode = IORING_OP_TIMEOUT;
    sqe->fd = -1;
    sqe->addr = (uint64_t)(uintptr_t)ts;
    sqe->len = 1;
    sqe->off = 0; /* no completion count: a pure timeout */
    break;
  }
  case ASYNCRT_IO_OP_OPENAT:
    sqe->opcode = IORING_OP_OPENAT;
    sqe->addr = op->args[1]; /* path */
    sqe->open_flags = (uint32_t)art_io_int(op->args[2]) | O_CLOEXEC;
    sqe->len = (uint32_t)op->args[3]; /* mode */
    break;
  case ASYNCRT_IO_OP_SHUTDOWN:
    sqe->opcode = IORING_OP_SHUTDOWN;
    sqe->len = (uint32_t)art_io_int(op->args[1]); /* how */
    break;
  default:
    return -EINVAL;
  }
  sqe->user_data = (uint64_t)(uintptr_t)op;
  return 0;
}

_Static_assert(sizeof(struct __kernel_timespec) == 2 * sizeof(uint64_t), "a timespec fits args[1..2]");

/* Writes op's SQE if there is room: 1 if written, 0 if the SQ is full, -1
 * if op was completed (with an error) instead. */
static int write_op(uring_worker *w, asyncrt_op *op) {
  if (op->opcode == ASYNCRT_IO_OP_CLOSE && w->cancel_fd) {
    /* Ops still waiting on the fd hold its file open, and closing the fd
     * would not end them: cancel them first (same batch, in order), and
     * they complete with -EBADF as they do on epoll. */
    if (w->sq_entries - sq_pending(w) < 2) return 0;
    struct io_uring_sqe *c = sqe_get(w);
    c->opcode = IORING_OP_ASYNC_CANCEL;
    c->fd = art_io_fd(op);
    c->cancel_flags = IORING_ASYNC_CANCEL_FD | IORING_ASYNC_CANCEL_ALL;
    c->user_data = UD_CANCEL;
    sqe_push(w);
  }
  struct io_uring_sqe *sqe = sqe_get(w);
  if (!sqe) return 0;
  int e = prep_sqe(op, sqe);
  if (e) {
    op_set(op, 0, 0);
    art_io_complete(op, e);
    return -1;
  }
  op_set(op, ST_SQ, w->sq_tail);
  sqe_push(w);
  return 1;
}

/* An IORING_OP_ASYNC_CANCEL for op (in the kernel); 0 if the SQ is full. */
static int write_cancel(uring_worker *w, asyncrt_op *op) {
  struct io_uring_sqe *sqe = sqe_get(w);
  if (!sqe) return 0;
  sqe->opcode = IORING_OP_ASYNC_CANCEL;
  sqe->fd = -1;
  sqe->addr = (uint64_t)(uintptr_t)op; /* matched against the op's user_data */
  sqe->user_data = UD_CANCEL;
  sqe_push(w);
  return 1;
}

/* ---- the overflow list -------------------------------------------------------- */

static void ovf_push(uring_worker *w, asyncrt_op *op) {
  op_set_next(op, NULL);
  if (w->ovf_tail) op_set_next(w->ovf_tail, op);
  else w->ovf_head = op;
  w->ovf_tail = op;
}

static void ovf_unlink(uring_worker *w, asyncrt_op *op) {
  asyncrt_op *prev = NULL;
  for (asyncrt_op *o = w->ovf_head; o; prev = o, o = op_next(o)) {
    if (o != op) continue;
    if (prev) op_set_next(prev, op_next(op));
    else w->ovf_head = op_next(op);
    if (w->ovf_tail == op) w->ovf_tail = prev;
    op_set_next(op, NULL);
    return;
  }
}

/* Moves what waits on the overflow list into the SQ, in order, while there
 * is room. */
static void ovf_drain(uring_worker *w) {
  asyncrt_op *op;
  while ((op = w->ovf_head) && sq_pending(w) < w->sq_entries) {
    /* Unlinked first: write_op may complete it, and then it is its
     * submitter's. */
    w->ovf_head = op_next(op);
    if (!w->ovf_head) w->ovf_tail = NULL;
    op_set_next(op, NULL);
    if (op_state(op) & ST_CANCEL_OVF) {
      write_cancel(w, op);
      op_set(op, op_state(op) & ~ST_CANCEL_OVF, op_pos(op));
    } else {
      write_op(w, op);
    }
  }
}

/* Queues op's SQE: in the SQ if there is room (after handing the kernel a
 * full SQ), else on the overflow list. Never drops it. */
static void queue_op(uring_worker *w, asyncrt_op *op) {
  if (!w->ovf_head) { /* nothing waits ahead of it */
    int r = write_op(w, op);
    if (!r) {
      flush(w, 0);
      r = write_op(w, op);
    }
    if (r) return;
  }
  op_set(op, ST_OVERFLOW, 0);
  ovf_push(w, op);
}

/* ---- completions ---------------------------------------------------------------- */

/* Completes the op of one CQE. */
static void finish_op(uring_worker *w, asyncrt_op *op, int32_t res) {
  uint32_t st = op_state(op);
  if (st & ST_CANCEL_OVF) ovf_unlink(w, op); /* done before its cancel went out */
  op_set(op, 0, 0);
  if (w->awaited == op) w->awaited_done = 1;
  int64_t r = res;
  switch (op->opcode) {
  case ASYNCRT_IO_OP_NOP:
    break;
  case ASYNCRT_IO_OP_TIMEOUT:
    if (res == -ETIME) r = 0; /* it expired: that is its success */
    break;
  case ASYNCRT_IO_OP_WAITPID:
    if (res < 0) break;
    r = art_io_do_sync(op); /* the pidfd is readable: reap the child */
    if (r == -EAGAIN && !w->awaited) { /* not yet after all: wait again */
      queue_op(w, op);
      return;
    }
    break;
  default:
    /* Cancelled without being asked: a CLOSE of its fd did it. */
    if (res == -ECANCELED && !(st & ST_CANCELLING) && !w->dying) r = -EBADF;
    break;
  }
  art_io_complete(op, r);
}

/* Reaps at most `max` CQEs; returns how many ops they completed. */
static int reap(uring_worker *w, uint32_t max) {
  uint32_t head = atomic_load_explicit(w->cq_khead, memory_order_relaxed);
  uint32_t tail = atomic_load_explicit(w->cq_ktail, memory_order_acquire);
  int done = 0;
  for (uint32_t n = 0; n < max; n++) {
    if (head == tail) break;
    struct io_uring_cqe *cqe = &w->cqes[head & w->cq_mask];
    uint64_t ud = cqe->user_data;
    int32_t res = cqe->res;
    head++;
    if (ud == UD_IGNORE || ud == UD_CANCEL) continue;
    finish_op(w, (asyncrt_op *)(uintptr_t)ud, res);
    done++;
  }
  /* One store gives the reaped entries back to the kernel. */
  atomic_store_explicit(w->cq_khead, head, memory_order_release);
  return done;
}

/* ---- TIMEOUT on a test clock ------------------------------------------------------ */

/* The timer's waker: its data is the worker's shared struct, which
 * outlives the worker (a firing may race with a close). */
static void tmo_wake(const void *data) {
  art_io_shared *sh = (art_io_shared *)data;
  atomic_store_explicit(&sh->timer_fired, 1, memory_order_release);
  if (sh->inst) art_io_poll_again((asyncrt_subsystem_cx *)sh->inst);
}
static void tmo_clone(const void *data, asyncrt_waker *out);
static void tmo_drop(const void *data) { (void)data; }
static const asyncrt_waker_vtable tmo_waker_vtable = {
    .clone = tmo_clone, .wake = tmo_wake, .wake_by_ref = tmo_wake, .drop = tmo_drop};
static void tmo_clone(const void *data, asyncrt_waker *out) {
  *out = (asyncrt_waker){.data = data, .vtable = &tmo_waker_vtable};
}

static inline int test_clock(const uring_worker *w) { return w->base.core && w->base.core->clock->test; }

/* Completes the due timeouts and arms the timer for the next. */
static int tmo_run(uring_worker *w) {
  int done = 0;
  atomic_store_explicit(&w->base.shared->timer_fired, 0, memory_order_relaxed);
  asyncrt_op *op;
  while ((op = w->tmo_head)) {
    if (op->args[1] > art_clock_now(w->base.core->clock)) {
      asyncrt_context cx = {.waker = {.data = w->base.shared, .vtable = &tmo_waker_vtable}, .exec = w->base.core};
      if (art_timer_poll(&w->timer, &cx, op->args[1]) == ASYNCRT_POLL_PENDING) break;
      /* due by the executor's tick clock: take it */
    }
    w->tmo_head = op_next(op);
    op_set(op, 0, 0);
    art_io_complete(op, 0);
    done++;
  }
  if (!w->tmo_head) art_timer_cancel(&w->timer);
  return done;
}

static void tmo_add(uring_worker *w, asyncrt_op *op) {
  uint64_t now = art_clock_now(w->base.core->clock), ns = op->args[0];
  op->args[1] = ns > UINT64_MAX - now ? UINT64_MAX : now + ns;
  op_set(op, ST_TEST_TIMER, 0);
  asyncrt_op **at = &w->tmo_head;
  while (*at && (*at)->args[1] <= op->args[1]) at = (asyncrt_op **)&(*at)->subsystem_data[1];
  op_set_next(op, *at);
  *at = op;
  if (w->tmo_head == op) tmo_run(w); /* a new first: (re)arm, or complete it now */
}

static void tmo_remove(uring_worker *w, asyncrt_op *op) {
  for (asyncrt_op **at = &w->tmo_head; *at; at = (asyncrt_op **)&(*at)->subsystem_data[1]) {
    if (*at != op) continue;
    *at = op_next(op);
    break;
  }
  if (w->tmo_head) tmo_run(w);
  else art_timer_cancel(&w->timer);
}

/* ---- the subsystem ------------------------------------------------------------------ */

static int uring_poll(void *user, asyncrt_subsystem_cx *scx, uint32_t budget) {
  uring_worker *w = user;
  int done = 0;
  if (w->tmo_head && (atomic_load_explicit(&w->base.shared->timer_fired, memory_order_acquire) ||
                      w->tmo_head->args[1] <= art_clock_now(w->base.core->clock)))
    done += tmo_run(w);
  ovf_drain(w);
  if (sq_pending(w) ||
      (atomic_load_explicit(w->sq_kflags, memory_order_relaxed) & (IORING_SQ_TASKRUN | IORING_SQ_CQ_OVERFLOW))) {
    /* The tick's one syscall: submit, and have the kernel post what it has
     * pending (completions to run, CQEs that overflowed) -- min_complete 0,
     * so it never waits. */
    flush(w, IORING_ENTER_GETEVENTS);
  }
  done += reap(w, budget ? budget : 64);
  /* Left over -- CQEs past the budget, CQEs the kernel holds back
   * (IORING_SQ_CQ_OVERFLOW), SQEs it would not take, ops waiting for room:
   * poll again before sleeping (the ring fd's edge will not come again). */
  if (!cq_empty(w) || sq_pending(w) || w->ovf_head ||
      (atomic_load_explicit(w->sq_kflags, memory_order_relaxed) & (IORING_SQ_TASKRUN | IORING_SQ_CQ_OVERFLOW)))
    art_io_poll_again(scx);
  return done;
}

static void uring_submit(void *user, asyncrt_subsystem_cx *scx, asyncrt_op *op) {
  uring_worker *w = user;
  switch (op->opcode) {
  case ASYNCRT_IO_OP_BLOCKING:
    art_pool_submit(w->base.io, op);
    return;
  case ASYNCRT_IO_OP_SIGNAL:
    art_io_signal_submit(w->base.io, op);
    return;
  case ASYNCRT_IO_OP_TIMEOUT:
    if (test_clock(w)) {
      tmo_add(w, op);
      return;
    }
    break;
  }
  queue_op(w, op);
  /* Sent by the next tick's io_uring_enter, which must come before the
   * worker sleeps. */
  art_io_poll_again(scx);
}

static void neutralize(struct io_uring_sqe *sqe) {
  memset(sqe, 0, sizeof *sqe);
  sqe->opcode = IORING_OP_NOP;
  sqe->fd = -1;
  sqe->user_data = UD_IGNORE;
}

/* Whether op's SQE is still in the ring, not yet taken by the kernel. */
static int sqe_unsent(uring_worker *w, asyncrt_op *op) {
  uint32_t pos = op_pos(op), head = atomic_load_explicit(w->sq_khead, memory_order_acquire);
  if ((uint32_t)(pos - head) >= (uint32_t)(w->sq_tail - head)) return 0;
  /* The entry at pos was written for this very position; it is op's only
   * if it carries op (after 2^32 submissions an old position comes back). */
  return w->sqes[pos & w->sq_mask].user_data == (uint64_t)(uintptr_t)op;
}

/* A dying registration: waits (bounded) for op's own CQE, completing what
 * comes meanwhile. Runs on the closing thread, under the registration's
 * lock, when no worker callback can. */
static void await_cqe(uring_worker *w, asyncrt_op *op) {
  w->awaited = op;
  w->awaited_done = 0;
  uint64_t deadline = art_now_ns() + w->cancel_wait_ns;
  while (!w->awaited_done) {
    uint64_t now = art_now_ns();
    if (now >= deadline) break;
    ovf_drain(w);
    if (cq_empty(w)) {
      uint64_t step = deadline - now < 50000000u ? deadline - now : 50000000u;
      struct __kernel_timespec ts = {(int64_t)(step / 1000000000u), (long long)(step % 1000000000u)};
      struct io_uring_getevents_arg arg = {.ts = (uint64_t)(uintptr_t)&ts};
      int r = sys_enter(w, sq_pending(w), 1, IORING_ENTER_GETEVENTS | IORING_ENTER_EXT_ARG, &arg, sizeof arg);
      if (r == -EINVAL) { /* before Linux 5.11 there is no bounded wait: do not wait */
        flush(w, IORING_ENTER_GETEVENTS);
        sched_yield();
      }
    }
    reap(w, UINT32_MAX);
  }
  w->awaited = NULL;
}

static void uring_cancel(void *user, asyncrt_subsystem_cx *scx, asyncrt_op *op) {
  uring_worker *w = user;
  switch (op->opcode) {
  case ASYNCRT_IO_OP_BLOCKING:
    art_pool_cancel(w->base.io, op); /* a running job completes when it returns */
    return;
  case ASYNCRT_IO_OP_SIGNAL:
    art_io_signal_cancel(w->base.io, op);
    return;
  }
  uint32_t st = op_state(op);
  if (st & ST_TEST_TIMER) {
    tmo_remove(w, op);
    op_set(op, 0, 0);
    art_io_complete(op, -ECANCELED);
    return;
  }
  if (st & ST_OVERFLOW) { /* the kernel never saw it */
    ovf_unlink(w, op);
    op_set(op, 0, 0);
    art_io_complete(op, -ECANCELED);
    return;
  }
  if (st & ST_CANCELLING) return; /* asked already */
  if (sqe_unsent(w, op)) {
    /* Written but not submitted: it becomes a NOP whose CQE is ignored --
     * and so does a CLOSE's cancel of its fd's ops, written just before. */
    uint32_t pos = op_pos(op);
    neutralize(&w->sqes[pos & w->sq_mask]);
    struct io_uring_sqe *prev = &w->sqes[(pos - 1) & w->sq_mask];
    if (op->opcode == ASYNCRT_IO_OP_CLOSE && w->cancel_fd && pos != atomic_load(w->sq_khead) &&
        prev->opcode == IORING_OP_ASYNC_CANCEL && prev->user_data == UD_CANCEL && (prev->cancel_flags & IORING_ASYNC_CANCEL_FD))
      neutralize(prev);
    op_set(op, 0, 0);
    art_io_complete(op, -ECANCELED);
    return;
  }
  /* In the kernel: ask it; the op completes at its own CQE. */
  op_set(op, st | ST_CANCELLING, op_pos(op));
  if (!write_cancel(w, op)) {
    flush(w, 0);
    if (!write_cancel(w, op)) {
      op_set(op, st | ST_CANCELLING | ST_CANCEL_OVF, op_pos(op));
      ovf_push(w, op);
    }
  }
  if (((art_subsys_inst *)scx)->dead) { /* the executor completes what is left next */
    w->dying = 1;
    await_cqe(w, op);
  }
  else art_io_poll_again(scx);
}

static void uring_finalize(void *user) {
  uring_worker *w = user;
  art_timer_cancel(&w->timer);
  free(w); /* the ring is the control plane's to unmap and close */
}

const asyncrt_subsystem_vtable art_io_uring_vtable = {
    .size = sizeof(asyncrt_subsystem_vtable),
    .poll = uring_poll,
    .submit = uring_submit,
    .cancel = uring_cancel,
    .finalize = uring_finalize,
};

art_io_worker *art_io_uring_worker_new(art_io *io, unsigned index, int ringfd, const art_io_uring_params *params) {
  uring_worker *w = calloc(1, sizeof *w);
  if (!w) {
    art_fail(ASYNCRT_ENOMEM, "no memory for an io_uring worker");
    return NULL;
  }
  const struct io_uring_params *p = params->kernel;
  char *ring = params->ring;
  w->base.io = io;
  w->base.index = index;
  w->base.fd = ringfd;
  w->base.shared = &io->shared[index];
  w->features = p->features;
  w->sq_khead = (_Atomic uint32_t *)(ring + p->sq_off.head);
  w->sq_ktail = (_Atomic uint32_t *)(ring + p->sq_off.tail);
  w->sq_kflags = (_Atomic uint32_t *)(ring + p->sq_off.flags);
  w->sq_mask = *(uint32_t *)(ring + p->sq_off.ring_mask);
  w->sq_entries = *(uint32_t *)(ring + p->sq_off.ring_entries);
  w->sq_tail = atomic_load_explicit(w->sq_ktail, memory_order_relaxed);
  w->sqes = params->sqes;
  w->cq_khead = (_Atomic uint32_t *)(ring + p->cq_off.head);
  w->cq_ktail = (_Atomic uint32_t *)(ring + p->cq_off.tail);
  w->cq_mask = *(uint32_t *)(ring + p->cq_off.ring_mask);
  w->cqes = (struct io_uring_cqe *)(ring + p->cq_off.cqes);
  w->cancel_wait_ns = params->cancel_wait_ns ? params->cancel_wait_ns : 5000000000u;
  w->cancel_fd = params->cancel_fd;
  /* The SQ's index array maps slot i to SQE i, once and for all. */
  uint32_t *array = (uint32_t *)(ring + p->sq_off.array);
  for (uint32_t i = 0; i < w->sq_entries; i++) array[i] = i;
  return &w->base;
}
