/* art_io.h -- the IO drivers' data plane: what every backend provides, and
 * what the common code (art_io.c), the backends (art_io_epoll.c,
 * art_io_uring.c) and the blocking pool (art_pool.c) share. Written in the
 * spirit of Go's runtime/netpoll.go: the contract first, then each backend
 * keeps it.
 *
 * A driver (art_io) is one backend with one subsystem registration per
 * worker (art_subsys_register with cfg.worker = i and cfg.fd = that worker's
 * epoll fd or ring fd). The registration's user_data is the worker's state,
 * which begins with an art_io_worker. A worker's ops, its epoll set or ring,
 * and its completions are touched only inside that registration's
 * callbacks, which the subsystem layer serializes with the instance lock
 * (they run on the worker's thread, except the cancels of an unregister or
 * an executor's free, which run on the closing thread under the same lock).
 * The blocking pool and signal deliveries complete ops from their own
 * threads with art_io_complete (art_op_complete is thread-safe).
 *
 * The control plane (Go, runtime/iodriver) decides the backend, creates the
 * kernel objects with golang.org/x/sys (epoll_create1; io_uring_setup and
 * the mmaps of its rings), runs the pool's threads and the signal watcher,
 * and hands the results to art_io_new / art_io_worker_new below. Nothing
 * per op crosses into Go.
 *
 * What a backend must do (its asyncrt_subsystem_vtable, user_data = its
 * worker):
 *  - submit(op): start the op (epoll: try it now, else arm interest; uring:
 *    write an SQE, submitted by the next tick's io_uring_enter). It may
 *    complete it at once (art_io_complete). Opcodes were validated by
 *    asyncrt_io_submit (art_io_opcode_valid).
 *  - poll(budget): reap completions (epoll: epoll_wait with timeout 0 and
 *    retry the ready fds' ops; uring: one io_uring_enter that submits the
 *    queued SQEs and reaps CQEs) and complete their ops. If it stops with
 *    work left in the kernel object, it calls art_io_poll_again so the
 *    worker polls it again before it sleeps (the registration's fd is
 *    edge-triggered in the worker's epoll set).
 *  - cancel(op): complete the op with -ECANCELED now if the kernel has not
 *    got it (epoll: always, unless a pool job runs it; uring: if its SQE is
 *    not submitted yet), else ask the kernel (IORING_OP_ASYNC_CANCEL) and
 *    complete it when the CQE comes; its buffers stay lent until then.
 *  - finalize(worker): free the worker state (after the driver's close or
 *    the executor's free). The kernel object (fd) is the control plane's:
 *    it closes it after the registration is gone.
 * Ops the backend cannot do natively go to the pool with art_pool_submit
 * (epoll: art_io_op_needs_pool). SIGNAL ops go to art_io_signal_submit
 * (common, helper C). WAITPID is a wait for the pidfd's readability
 * followed by waitid(P_PIDFD) (art_io_do_sync does the waitid).
 */
#ifndef ART_IO_H
#define ART_IO_H

#include "art.h"

#pragma GCC visibility push(hidden)

/* ---- the ops' arguments ------------------------------------------------------
 * asyncrt_op.args and .flags as the asyncrt_io_prep_* functions write them.
 * Ints (fds, flags) are stored sign-extended: (uint64_t)(int64_t)fd, read
 * back with art_io_int. op->flags carries the MSG_* / fsync flags.
 *
 *   opcode     args[0]   args[1]         args[2]          args[3]      op->flags
 *   NOP        -         -               -                -            -
 *   READ       fd        buf             len              offset (-1: stream)
 *   WRITE      fd        buf             len              offset
 *   READV      fd        iov             iovcnt           offset
 *   WRITEV     fd        iov             iovcnt           offset
 *   RECV       fd        buf             len              -            MSG_* flags
 *   SEND       fd        buf             len              -            MSG_* flags (| MSG_NOSIGNAL at the call)
 *   RECVMSG    fd        msghdr*         -                -            MSG_* flags
 *   SENDMSG    fd        msghdr*         -                -            MSG_* flags (| MSG_NOSIGNAL at the call)
 *   ACCEPT     fd        sockaddr* (0)   socklen_t* (0)   -            -
 *   CONNECT    fd        sockaddr*       addrlen          -            -
 *   CLOSE      fd        -               -                -            -
 *   FSYNC      fd        -               -                -            ASYNCRT_IO_FSYNC_DATASYNC
 *   POLL       fd        poll events     -                -            -
 *   TIMEOUT    ns (rel)  -               -                -            -
 *   OPENAT     dirfd     path            open flags       mode
 *   SHUTDOWN   fd        how             -                -            -
 *   BLOCKING   fn        arg             -                -            -
 *   SIGNAL     signo     -               -                -            -
 *   WAITPID    pidfd     -               -                -            -
 *
 * While an op is in flight its args belong to the backend too: it may
 * rewrite args[1..3] of TIMEOUT (the absolute deadline) and of POLL, and
 * nothing else. subsystem_data[0..1] are the backend's (links). */

#define ART_IO_OP_MAX ASYNCRT_IO_OP_SENDMSG

static inline int art_io_int(uint64_t arg) { return (int)(int64_t)arg; }
static inline int art_io_fd(const asyncrt_op *op) { return art_io_int(op->args[0]); }
static inline int art_io_opcode_valid(uint32_t opcode) { return opcode >= 1 && opcode <= ART_IO_OP_MAX; }

/* ---- a driver ------------------------------------------------------------------ */

typedef struct art_io art_io;
typedef struct art_pool art_pool;

/* The head of every backend's per-worker state (the registration's
 * user_data): the backend's struct begins with it. */
typedef struct art_io_worker {
  art_io *io;
  unsigned index;  /* the worker */
  int fd;          /* the kernel object: epoll fd or ring fd (the control plane's) */
  art_exec *core;  /* the worker's core */
  struct art_io_shared *shared; /* io->shared[index] */
} art_io_worker;

/* What other threads may touch of a worker: kept by the driver (freed with
 * it, at the executor's free), so it outlives the worker's state. One cache
 * line each. */
typedef struct art_io_shared {
  /* Syscalls made by the worker's callbacks: written only under the
   * registration's lock (art_count), read by the stats. */
  _Alignas(ART_CACHELINE) _Atomic uint64_t syscalls;
  art_subsys_inst *inst;    /* the registration's instance (set before the handle is published) */
  _Atomic int timer_fired;  /* epoll: the TIMEOUT timer fired (its waker's data is this struct) */
  /* epoll: fds another worker closed with ASYNCRT_IO_OP_CLOSE, for this
   * worker to forget (under forget_lock; pending says there are some). */
  _Atomic int forget_pending;
  art_lock forget_lock;
  int *forget;
  uint32_t nforget, forget_cap;
} art_io_shared;

struct art_io {
  uint64_t handle;         /* ART_H_IO, generation-tagged; 0 once closed */
  unsigned backend;        /* ASYNCRT_IO_EPOLL or ASYNCRT_IO_URING */
  unsigned nworkers;
  art_exec *exec;          /* the executor's first core */
  /* Per worker: the registration (kept by its core until the core is
   * destroyed, so a submit racing with a close reads live memory) and its
   * state (valid until the registration's finalize). */
  art_subsys **subs;
  art_io_worker **workers;
  art_io_shared *shared;   /* per worker */
  art_pool *pool;          /* NULL until the first op that needs it (helper C's) */
  /* The blocking pool's configuration (asyncrt_io_config), validated. */
  uint32_t pool_threads, pool_queue;
  uint64_t pool_idle_ns;
  _Atomic int closing;     /* submits fail with ESHUTDOWN */
  uintptr_t go_ref;        /* the control plane's object (a cgo.Handle) */
};

/* A driver for `nworkers` workers of executor core `exec` (its first
 * core), with no registrations yet. NULL: ENOMEM recorded. */
art_io *art_io_new(art_exec *exec, unsigned backend, unsigned nworkers);
/* The worker state of a backend: epoll needs only the epoll fd; io_uring's
 * `params` is the control plane's description of the mapped rings
 * (art_io_uring_params, art_io_uring.c). NULL: the error is recorded
 * (ENOTSUP for a backend not built in). */
art_io_worker *art_io_epoll_worker_new(art_io *io, unsigned index, int epfd);
struct art_io_uring_params;
art_io_worker *art_io_uring_worker_new(art_io *io, unsigned index, int ringfd,
                                       const struct art_io_uring_params *params);
/* (art_io_uring_default.c holds weak stand-ins for the two io_uring symbols
 * until art_io_uring.c defines them: ENOTSUP.) */
/* The vtable each backend registers with (user_data: its worker). */
extern const asyncrt_subsystem_vtable art_io_epoll_vtable;
extern const asyncrt_subsystem_vtable art_io_uring_vtable;
/* Registers worker w (made above) on worker `index` of io's executor with
 * fd = w->fd and the given priority; records the registration in
 * io->subs[index]. On failure w was finalized (freed). */
int art_io_register_worker(art_io *io, unsigned index, art_io_worker *w, const asyncrt_subsystem_vtable *vt,
                           uint32_t priority);
/* Publishes the handle (ART_H_IO). 0: ENOMEM recorded. */
uint64_t art_io_publish(art_io *io);
/* Frees the handle (1 if this call did: the caller goes on closing), so
 * every later call fails with EHANDLE; submits in flight fail with
 * ESHUTDOWN. */
int art_io_unpublish(art_io *io);
/* Unregisters every worker: ops are offered to the cancel callback, the
 * rest complete with ESHUTDOWN, the workers are finalized. Any thread but
 * a callback's; after art_io_unpublish. The kernel objects are then the
 * control plane's to close. */
void art_io_detach(art_io *io);
/* Frees the struct (the control plane, once nothing can reach it: the
 * executor's free, after every worker stopped). */
void art_io_free(art_io *io);
/* The registration of the worker running cx's poll, or NULL (ENOTSUP
 * recorded: not inside a poll of io's executor). */
art_subsys *art_io_sub_for(art_io *io, asyncrt_context *cx);
/* Counters summed over the workers (syscalls, and the registrations'). */
void art_io_stats(art_io *io, asyncrt_io_stats *out);

/* ---- what the backends share ------------------------------------------------ */

/* Maps a raw result (>= 0, or -errno) to a status and completes the op:
 * >= 0: ASYNCRT_OK; -ECANCELED: ASYNCRT_ECANCELLED; else ASYNCRT_EOS. Any
 * thread (art_op_complete's rules). */
void art_io_complete(asyncrt_op *op, int64_t res);
/* Performs the op's syscall once on this thread, as it is: non-blocking
 * for the worker's sockets, blocking in a pool thread. Returns the result
 * or -errno (-EAGAIN: not ready). NOP: 0. POLL: poll(2) with timeout 0
 * (-EAGAIN if nothing is ready). CONNECT: a connect whose first call gave
 * EINPROGRESS is finished with SO_ERROR by art_io_connect_result. WAITPID:
 * waitid(P_PIDFD, WNOHANG): -EAGAIN while the child runs. TIMEOUT,
 * SIGNAL: -EINVAL (not syscalls). */
int64_t art_io_do_sync(asyncrt_op *op);
/* SO_ERROR of a connecting socket: 0 when connected, -errno else. */
int64_t art_io_connect_result(int fd);
/* Which readiness an op waits for on epoll: EPOLLIN, EPOLLOUT, or for POLL
 * the epoll bits of its poll events. */
uint32_t art_io_op_events(const asyncrt_op *op);
/* 1 if the epoll backend must hand this op to the pool (files at an offset,
 * FSYNC, OPENAT, BLOCKING). */
int art_io_op_needs_pool(const asyncrt_op *op);
/* Inside a poll callback that left work in its kernel object: makes the
 * worker poll this registration again at its next tick, before it sleeps
 * (scx: the callback's asyncrt_subsystem_cx). */
void art_io_poll_again(asyncrt_subsystem_cx *scx);

/* ---- the blocking pool (art_pool.c, helper C) ------------------------------------
 * A bounded queue in C memory; Go starts threads that call art_pool_run
 * (blocks in C until a job or art_pool_stop). Until art_pool.c is merged a
 * weak default (art_io_pool_default.c) completes every op it gets with
 * ASYNCRT_ENOTSUP; art_pool.c's strong definitions replace it. */
/* Queues op (a worker's callback, under its registration's lock) to run
 * art_io_do_sync (blocking) on a pool thread and complete with
 * art_io_complete; completes it with ASYNCRT_ELIMIT if the queue is full.
 * io->pool may be NULL (made on first use). Must not block. */
void art_pool_submit(art_io *io, asyncrt_op *op);
/* From the backend's cancel: 1 if op was still queued and is now completed
 * with -ECANCELED; 0 if a thread runs it (it completes when it returns). */
int art_pool_cancel(art_io *io, asyncrt_op *op);
/* At close (art_io_detach, before the registrations go): fails the queued
 * jobs with ECANCELLED; running ones complete when they return. */
void art_pool_close(art_io *io);
/* Fills the pool_* fields of the driver's stats (any thread). */
void art_pool_stats(art_io *io, asyncrt_io_stats *st);

/* ---- signals (helper C) -------------------------------------------------------- */
/* Starts waiting for op's signal (a worker's callback); a weak default
 * completes it with ASYNCRT_ENOTSUP. */
void art_io_signal_submit(art_io *io, asyncrt_op *op);
/* From the backend's cancel: 1 if it took the op off the wait (completed
 * with -ECANCELED), 0 if it is not there. */
int art_io_signal_cancel(art_io *io, asyncrt_op *op);

#pragma GCC visibility pop

#endif
