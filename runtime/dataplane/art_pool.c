/* art_pool.c -- an IO driver's blocking pool: a bounded queue of ops in C
 * memory and the loop its threads run.
 *
 * Threads.  They are the Go control plane's (runtime/iodriver/pool.go): a
 * goroutine calls art_pool_run, which blocks here, in C, waiting for jobs,
 * and returns once the thread has been idle for idle_ns or the pool closes.
 * A submit never calls into Go: when no thread is idle and fewer than
 * max_threads exist, it puts the pool on a process-wide request list and
 * adds 1 to an eventfd that Go's one manager goroutine reads (it then takes
 * the requests with art_pool_take_request and starts the runners). So a
 * job costs a mutex and, when a thread is idle, a condvar signal; a thread
 * start costs an eventfd write and one goroutine.
 *
 * Hand-off (as tokio's blocking pool does it): a submitter that finds an
 * idle thread claims it (idle--, notified++) before signalling, so two
 * quick submits never count one idle thread twice; a waking thread knows it
 * was claimed by notified > 0, and any other wake-up is spurious or a
 * timeout.
 *
 * Queued ops are linked through subsystem_data[0] (a FIFO); [1] stays the
 * backend's (the epoll backend keeps its tag there).
 *
 * Close.  Queued jobs complete with ECANCELLED at once; running ones are
 * waited for up to the close's timeout. A job still running then is
 * orphaned: the driver completes its op (ESHUTDOWN, at unregister) and the
 * thread, when fn returns, must not touch the op, which may be freed by
 * then. The runner and the close settle each running job with one CAS on
 * the job's state (RUNNING -> COMPLETING by the runner, RUNNING -> ORPHANED
 * by the close); a close that loses waits for that completion to finish.
 *
 * Lifetime.  The pool is counted: one reference for its driver (dropped by
 * art_pool_release, at art_io_free), one per runner inside art_pool_run
 * and one per start asked of Go and not yet taken; the last one frees it,
 * so an orphaned job's thread may outlive the driver. */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "art.h"
#include "art_io.h"
#include "art_pool.h"

enum { JOB_RUNNING = 0, JOB_COMPLETING = 1, JOB_ORPHANED = 2 };

/* A running job: on its thread's stack, linked in the pool's `active`. */
typedef struct pool_job {
  struct pool_job *next, *prev;
  asyncrt_op *op;
  _Atomic int state;
} pool_job;

struct art_pool {
  pthread_mutex_t mu;
  pthread_cond_t work;    /* runners wait here for a job */
  pthread_cond_t drained; /* close waits here for running jobs */
  asyncrt_op *head, *tail; /* the queue, through subsystem_data[0] */
  uint32_t max_threads, max_queue;
  uint64_t idle_ns;
  /* Under mu. */
  pool_job *active;  /* running jobs */
  uint32_t threads;  /* runners inside art_pool_run */
  uint32_t starting; /* starts asked of Go, not yet arrived */
  uint32_t idle;     /* runners waiting and not claimed */
  uint32_t notified; /* claims not yet taken by a waking runner */
  uint32_t running;  /* jobs being run, orphans excluded */
  uint32_t queued;
  uint32_t refs;
  int closing;
  /* Under the request list's lock. */
  struct art_pool *req_next;
  uint32_t req_starts; /* starts asked and not yet taken by Go */
  int req_listed;
  /* Read without mu (stats). */
  _Atomic uint64_t jobs, rejected, threads_now, queued_now;
};

/* ---- the requests Go's manager takes -------------------------------------- */

static pthread_mutex_t req_mu = PTHREAD_MUTEX_INITIALIZER;
static art_pool *req_head;
static _Atomic int req_fd = -1;

void art_pool_set_wake_fd(int fd) { atomic_store(&req_fd, fd); }

/* Under p->mu: asks Go for one more runner (a reference for it). */
static void ask_for_thread(art_pool *p) {
  uint64_t one = 1;
  int fd = atomic_load(&req_fd);
  if (fd < 0) return; /* no control plane (the data plane's own tests): jobs wait */
  p->starting++;
  p->refs++;
  pthread_mutex_lock(&req_mu);
  p->req_starts++;
  if (!p->req_listed) {
    p->req_listed = 1;
    p->req_next = req_head;
    req_head = p;
  }
  pthread_mutex_unlock(&req_mu);
  /* Only fails when the counter would overflow (2^64 - 1 starts unread). */
  if (write(fd, &one, sizeof one) < 0) {
  }
}

art_pool *art_pool_take_request(uint32_t *starts) {
  pthread_mutex_lock(&req_mu);
  art_pool *p = req_head;
  if (p) {
    req_head = p->req_next;
    p->req_next = NULL;
    p->req_listed = 0;
    *starts = p->req_starts;
    p->req_starts = 0;
  }
  pthread_mutex_unlock(&req_mu);
  return p;
}

/* ---- the queue -------------------------------------------------------------- */

#define NEXT(op) ((asyncrt_op *)(op)->subsystem_data[0])

static void queue_push(art_pool *p, asyncrt_op *op) {
  op->subsystem_data[0] = NULL;
  if (p->tail) p->tail->subsystem_data[0] = op;
  else p->head = op;
  p->tail = op;
  p->queued++;
  atomic_store_explicit(&p->queued_now, p->queued, memory_order_relaxed);
}

static asyncrt_op *queue_pop(art_pool *p) {
  asyncrt_op *op = p->head;
  if (!op) return NULL;
  p->head = NEXT(op);
  if (!p->head) p->tail = NULL;
  op->subsystem_data[0] = NULL;
  p->queued--;
  atomic_store_explicit(&p->queued_now, p->queued, memory_order_relaxed);
  return op;
}

/* Takes op out of the queue if it is there (a cancel: rare, and the queue
 * is bounded, so a walk is fine). 1 if it was. */
static int queue_remove(art_pool *p, asyncrt_op *op) {
  asyncrt_op *prev = NULL;
  for (asyncrt_op *o = p->head; o; prev = o, o = NEXT(o)) {
    if (o != op) continue;
    if (prev) prev->subsystem_data[0] = NEXT(o);
    else p->head = NEXT(o);
    if (p->tail == o) p->tail = prev;
    op->subsystem_data[0] = NULL;
    p->queued--;
    atomic_store_explicit(&p->queued_now, p->queued, memory_order_relaxed);
    return 1;
  }
  return 0;
}

static uint64_t mono_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* now + ns, saturated (a huge idle time or timeout means "for ever"). */
static uint64_t mono_after(uint64_t ns) {
  uint64_t now = mono_now();
  return ns > UINT64_MAX / 2 - now ? UINT64_MAX / 2 : now + ns;
}

static struct timespec mono_at(uint64_t ns) {
  struct timespec ts = {.tv_sec = (time_t)(ns / 1000000000u), .tv_nsec = (long)(ns % 1000000000u)};
  return ts;
}

/* ---- a driver's pool --------------------------------------------------------- */

static art_pool *pool_new(uint32_t max_threads, uint32_t max_queue, uint64_t idle_ns) {
  art_pool *p = calloc(1, sizeof *p);
  pthread_condattr_t ca;
  if (!p) return NULL;
  p->max_threads = max_threads ? max_threads : 1;
  p->max_queue = max_queue;
  p->idle_ns = idle_ns;
  p->refs = 1;
  pthread_mutex_init(&p->mu, NULL);
  pthread_condattr_init(&ca);
  pthread_condattr_setclock(&ca, CLOCK_MONOTONIC); /* deadlines ignore wall-clock jumps */
  pthread_cond_init(&p->work, &ca);
  pthread_cond_init(&p->drained, &ca);
  pthread_condattr_destroy(&ca);
  return p;
}

/* What a driver closed before it ever needed a pool points to, so that a
 * submit racing with the close finds a closing pool, not a new one. */
static art_pool closed_pool = {
    .mu = PTHREAD_MUTEX_INITIALIZER,
    .work = PTHREAD_COND_INITIALIZER,
    .drained = PTHREAD_COND_INITIALIZER,
    .closing = 1,
};

/* The driver's pool, made on first use (from any worker: the first to
 * publish it wins). NULL: no memory. */
static art_pool *pool_get(art_io *io) {
  art_pool *p = __atomic_load_n(&io->pool, __ATOMIC_ACQUIRE);
  if (p) return p;
  art_pool *n = pool_new(io->pool_threads, io->pool_queue, io->pool_idle_ns);
  if (!n) return NULL;
  if (!__atomic_compare_exchange_n(&io->pool, &p, n, 0, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) {
    pthread_mutex_destroy(&n->mu);
    pthread_cond_destroy(&n->work);
    pthread_cond_destroy(&n->drained);
    free(n);
    return p;
  }
  return n;
}

static void pool_free(art_pool *p) {
  pthread_cond_destroy(&p->work);
  pthread_cond_destroy(&p->drained);
  pthread_mutex_destroy(&p->mu);
  free(p);
}

/* Under mu; returns 1 if the caller must free p (after unlocking). */
static int unref_locked(art_pool *p) { return --p->refs == 0; }

void art_pool_release(art_io *io) {
  art_pool *p = __atomic_exchange_n(&io->pool, NULL, __ATOMIC_ACQ_REL);
  if (!p || p == &closed_pool) return;
  pthread_mutex_lock(&p->mu);
  int last = unref_locked(p);
  pthread_mutex_unlock(&p->mu);
  if (last) pool_free(p);
}

void art_pool_submit(art_io *io, asyncrt_op *op) {
  art_pool *p = pool_get(io);
  if (!p) {
    art_op_complete(op, ASYNCRT_ENOMEM, -ENOMEM);
    return;
  }
  pthread_mutex_lock(&p->mu);
  if (p->closing) {
    pthread_mutex_unlock(&p->mu);
    art_io_complete(op, -ECANCELED);
    return;
  }
  /* The bound is on jobs that wait with no thread for them: queued jobs
   * not covered by a claimed idle thread or a thread being started. */
  int can_grow = p->threads + p->starting < p->max_threads;
  uint32_t covered = p->notified + p->starting;
  uint32_t waiting = p->queued > covered ? p->queued - covered : 0;
  if (p->idle == 0 && !can_grow && waiting >= p->max_queue) {
    pthread_mutex_unlock(&p->mu);
    atomic_fetch_add_explicit(&p->rejected, 1, memory_order_relaxed);
    art_op_complete(op, ASYNCRT_ELIMIT, -EAGAIN);
    return;
  }
  queue_push(p, op);
  if (p->idle > 0) {
    p->idle--;
    p->notified++;
    pthread_cond_signal(&p->work);
  } else if (can_grow) {
    ask_for_thread(p);
  }
  pthread_mutex_unlock(&p->mu);
}

int art_pool_cancel(art_io *io, asyncrt_op *op) {
  art_pool *p = __atomic_load_n(&io->pool, __ATOMIC_ACQUIRE);
  int removed = 0;
  if (!p) return 0;
  pthread_mutex_lock(&p->mu);
  removed = queue_remove(p, op);
  pthread_mutex_unlock(&p->mu);
  /* A running job cannot be interrupted: its op completes when it returns. */
  if (removed) art_io_complete(op, -ECANCELED);
  return removed;
}

/* Waits to be claimed. 1: claimed; 0: leave (idle for idle_ns, or the pool
 * is closing). Under mu. */
static int wait_for_claim(art_pool *p) {
  struct timespec at = mono_at(mono_after(p->idle_ns));
  p->idle++;
  for (;;) {
    int rc = pthread_cond_timedwait(&p->work, &p->mu, &at);
    if (p->notified > 0) { /* the claimer already took us off idle */
      p->notified--;
      return 1;
    }
    if (p->closing || rc == ETIMEDOUT) {
      p->idle--;
      return 0;
    }
  }
}

static void run_job(art_pool *p, asyncrt_op *op) {
  pool_job job = {.op = op};
  atomic_init(&job.state, JOB_RUNNING);
  job.next = p->active;
  if (p->active) p->active->prev = &job;
  p->active = &job;
  p->running++;
  pthread_mutex_unlock(&p->mu);

  int64_t res = art_io_do_sync(op); /* blocking here: fn(arg), pread, fsync, ... */
  /* Counted before the completion, so a task woken by it sees the count. */
  atomic_fetch_add_explicit(&p->jobs, 1, memory_order_relaxed);
  int expect = JOB_RUNNING;
  int mine = atomic_compare_exchange_strong(&job.state, &expect, JOB_COMPLETING);
  /* After this the op is its submitter's: nothing below touches it. */
  if (mine) art_io_complete(op, res);

  pthread_mutex_lock(&p->mu);
  if (job.prev) job.prev->next = job.next;
  else p->active = job.next;
  if (job.next) job.next->prev = job.prev;
  if (mine && --p->running == 0 && p->closing) pthread_cond_broadcast(&p->drained);
}

void art_pool_run(art_pool *p) {
  pthread_mutex_lock(&p->mu);
  if (p->starting) p->starting--;
  p->threads++;
  atomic_store_explicit(&p->threads_now, p->threads, memory_order_relaxed);
  for (;;) {
    asyncrt_op *op;
    while (!p->closing && (op = queue_pop(p)) != NULL) run_job(p, op);
    if (p->closing || !wait_for_claim(p)) break;
  }
  p->threads--;
  atomic_store_explicit(&p->threads_now, p->threads, memory_order_relaxed);
  int last = unref_locked(p);
  pthread_mutex_unlock(&p->mu);
  if (last) pool_free(p);
}

void art_pool_start_failed(art_pool *p) {
  pthread_mutex_lock(&p->mu);
  if (p->starting) p->starting--;
  int last = unref_locked(p);
  pthread_mutex_unlock(&p->mu);
  if (last) pool_free(p);
}

uint32_t art_pool_close(art_io *io, uint64_t timeout_ns) {
  art_pool *p = NULL;
  asyncrt_op *op, *cancelled = NULL;
  uint32_t orphans = 0;
  if (__atomic_compare_exchange_n(&io->pool, &p, &closed_pool, 0, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
    return 0; /* it never had one, and will not get one now */
  pthread_mutex_lock(&p->mu);
  if (p->closing) {
    pthread_mutex_unlock(&p->mu);
    return 0;
  }
  p->closing = 1;
  /* Collected first, completed outside mu: a completion takes the
   * registration's lock, which a cancel holds while it takes mu. */
  while ((op = queue_pop(p)) != NULL) {
    op->subsystem_data[0] = cancelled;
    cancelled = op;
  }
  pthread_cond_broadcast(&p->work);
  pthread_mutex_unlock(&p->mu);
  while ((op = cancelled) != NULL) {
    cancelled = op->subsystem_data[0];
    op->subsystem_data[0] = NULL;
    art_io_complete(op, -ECANCELED);
  }

  struct timespec at = mono_at(mono_after(timeout_ns));
  pthread_mutex_lock(&p->mu);
  while (p->running > 0 && pthread_cond_timedwait(&p->drained, &p->mu, &at) != ETIMEDOUT) {
  }
  for (pool_job *j = p->active; j; j = j->next) {
    int expect = JOB_RUNNING;
    if (atomic_compare_exchange_strong(&j->state, &expect, JOB_ORPHANED)) {
      p->running--;
      orphans++;
    }
  }
  /* Jobs that won the race are completing their ops right now: their
   * completion must be over before the driver lets go of its registrations. */
  while (p->running > 0) pthread_cond_wait(&p->drained, &p->mu);
  pthread_mutex_unlock(&p->mu);
  return orphans;
}

void art_pool_stats(art_io *io, asyncrt_io_stats *out) {
  art_pool *p = __atomic_load_n(&io->pool, __ATOMIC_ACQUIRE);
  if (!p) return;
  out->pool_threads = atomic_load_explicit(&p->threads_now, memory_order_relaxed);
  out->pool_queued = atomic_load_explicit(&p->queued_now, memory_order_relaxed);
  out->pool_jobs = atomic_load_explicit(&p->jobs, memory_order_relaxed);
  out->pool_rejected = atomic_load_explicit(&p->rejected, memory_order_relaxed);
}
