/* soak.c -- mixed load on libasyncrt.so for a set time, reporting throughput,
 * errors and RSS as it goes.
 *
 *   soak [SECONDS [RSS_TOLERANCE_PERCENT]]     (default 600 s, 5 %)
 *
 * Two executors run at once: a thread-per-core one (two workers) and a local
 * one driven by its own thread through asyncrt_block_on. A spawner thread
 * keeps them loaded with tasks that yield, park until another thread wakes
 * them, sleep on timers, open scopes with children and join them, await
 * other tasks' joins, linger until cancelled, pass bytes through a socket
 * pair with IO ops (each executor has an IO driver), or wait in a read that
 * never completes until they are cancelled (the op is cancelled in flight,
 * and the drop closes the fds with asyncrt_io_close_fd); it cancels tasks,
 * opens top scopes and cancels some of those too. A waker thread delivers
 * the wakes. Live tasks are bounded, so the load is steady.
 *
 * Errors: any status other than the one the header promises for the call, a
 * task ending other than its kind must (a cancel allows ECANCELLED), a
 * join's output or failure that does not match its task, a timer firing
 * early, an IO op that fails or returns other bytes than were sent, and at
 * the end any future not dropped exactly once (created != dropped after the
 * executors are freed) or an fd left open (the count of open fds must come
 * back to where it started).
 *
 * RSS: sampled every second; the mean over the last tenth of the run must
 * be within the tolerance of the mean over the second tenth (for 600 s: the
 * last minute against the second). Exit status 1 on any error or on RSS
 * growth past the tolerance.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "asyncrt.h"

/* ---- counters and errors --------------------------------------------------- */

static _Atomic uint64_t created, dropped, completed, errors, wakes_sent;

static void soak_error(const char *fmt, ...) {
  if (atomic_fetch_add(&errors, 1) >= 20) return; /* the first 20 are enough to see */
  va_list ap;
  va_start(ap, fmt);
  fprintf(stderr, "soak: ERROR: ");
  vfprintf(stderr, fmt, ap);
  fprintf(stderr, "\n");
  va_end(ap);
}

static void expect(int rc, int want, const char *what) {
  if (rc != want) soak_error("%s returned %d (%s), want %d", what, rc, asyncrt_status_str(rc), want);
}

static uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void sleep_ns(uint64_t ns) {
  struct timespec ts = {(time_t)(ns / 1000000000u), (long)(ns % 1000000000u)};
  nanosleep(&ts, NULL);
}

/* A xorshift per thread: cheap, and good enough to mix the load. */
static uint32_t rnd(uint32_t *s) {
  *s ^= *s << 13;
  *s ^= *s >> 17;
  *s ^= *s << 5;
  return *s;
}

/* ---- the waker thread's queue ------------------------------------------------- */

#define WAKE_RING 65536u
static pthread_mutex_t wq_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t wq_cv = PTHREAD_COND_INITIALIZER;
static asyncrt_waker wq[WAKE_RING];
static unsigned wq_head, wq_tail;
static int wq_stop;

/* Hands a clone of w to the waker thread; when the queue is full the poller
 * wakes it itself (still a wake, just not a cross-thread one). */
static void wake_later(const asyncrt_waker *w) {
  pthread_mutex_lock(&wq_mu);
  if (wq_tail - wq_head < WAKE_RING) {
    asyncrt_waker_clone(w, &wq[wq_tail++ % WAKE_RING]);
    pthread_cond_signal(&wq_cv);
    pthread_mutex_unlock(&wq_mu);
    return;
  }
  pthread_mutex_unlock(&wq_mu);
  asyncrt_waker_wake_by_ref(w);
}

static void *waker_main(void *arg) {
  (void)arg;
  asyncrt_waker batch[256];
  pthread_mutex_lock(&wq_mu);
  for (;;) {
    while (wq_head == wq_tail && !wq_stop) pthread_cond_wait(&wq_cv, &wq_mu);
    if (wq_head == wq_tail && wq_stop) break;
    unsigned n = 0;
    while (wq_head != wq_tail && n < 256) batch[n++] = wq[wq_head++ % WAKE_RING];
    pthread_mutex_unlock(&wq_mu);
    for (unsigned i = 0; i < n; i++) asyncrt_waker_wake(&batch[i]);
    atomic_fetch_add(&wakes_sent, n);
    pthread_mutex_lock(&wq_mu);
  }
  pthread_mutex_unlock(&wq_mu);
  return NULL;
}

/* ---- the futures ---------------------------------------------------------------- */

enum kind { K_YIELD, K_PARK, K_SLEEP, K_SCOPE, K_JOIN, K_LINGER, K_IO, K_IO_LINGER, K_KINDS };

static asyncrt_executor *execs[2]; /* thread-per-core, local */
static asyncrt_io *ios[2];          /* an IO driver on each */
#define IO_BYTES 256

#define JOB_MAGIC 0x50a4c0deu

typedef struct job {
  uint32_t magic;
  int kind;
  int steps;      /* YIELD: self-wakes; PARK: cross-thread wakes; SCOPE: children */
  int polls;
  uint64_t value; /* its output */
  /* SLEEP */
  asyncrt_sleep sleep;
  asyncrt_future sleep_fut;
  uint64_t sleep_ns, started;
  /* SCOPE */
  asyncrt_scope *scope;
  int cancel_own; /* cancels its scope after spawning: the join must say ECANCELLED */
  /* SCOPE and JOIN: the future it awaits */
  asyncrt_future inner;
  int inner_live;
  uint64_t want;  /* JOIN: the output it must see */
  int may_cancel; /* JOIN: its task may be cancelled (ECANCELLED allowed) */
  /* IO and IO_LINGER: their state, allocated for them only (so the other
   * kinds stay small: the soak's own heap counts in its RSS too) */
  struct io_state *ios;
} job;

/* A socket pair, written at [0] and read at [1]. */
typedef struct io_state {
  asyncrt_io *io;
  int fds[2];
  int io_step;
  size_t sent, got;
  asyncrt_op wop, rop, cop[2];
  unsigned char wbuf[IO_BYTES], rbuf[IO_BYTES];
} io_state;

static const asyncrt_future_vtable job_vt;

static job *job_new(int kind, uint64_t value) {
  job *j = calloc(1, sizeof *j);
  if (!j) abort();
  j->magic = JOB_MAGIC;
  j->kind = kind;
  j->value = value;
  if (kind == K_IO || kind == K_IO_LINGER) {
    if (!(j->ios = calloc(1, sizeof *j->ios))) abort();
    j->ios->fds[0] = j->ios->fds[1] = -1;
  }
  atomic_fetch_add(&created, 1);
  return j;
}

static asyncrt_future job_future(job *j) { return (asyncrt_future){j, &job_vt}; }

static job *child_job(uint32_t *seed);

static int poll_scope(job *j, asyncrt_context *cx, uint32_t *seed) {
  if (!j->scope) {
    asyncrt_scope_config cfg;
    asyncrt_scope_config_init(&cfg);
    cfg.flags = j->value & 1 ? ASYNCRT_SCOPE_COLLECT_ALL : ASYNCRT_SCOPE_FIRST_ERROR;
    cfg.cleanup_timeout_ns = 1000000;
    int rc = asyncrt_scope_open(cx, &cfg, &j->scope);
    if (rc) {
      soak_error("scope_open in a task returned %d", rc);
      asyncrt_context_fail(cx, rc);
      return ASYNCRT_POLL_ERROR;
    }
    for (int i = 0; i < j->steps; i++) {
      job *c = child_job(seed);
      asyncrt_future f = job_future(c);
      rc = asyncrt_scope_spawn(j->scope, &f, rnd(seed) & 1 ? ASYNCRT_SPAWN_SEND : 0, NULL);
      expect(rc, ASYNCRT_OK, "scope_spawn from the owner's poll");
    }
    if (j->cancel_own) expect(asyncrt_scope_cancel(j->scope), ASYNCRT_OK, "scope_cancel");
    expect(asyncrt_scope_join(j->scope, &j->inner), ASYNCRT_OK, "scope_join");
    j->inner_live = 1;
  }
  int r = j->inner.vtable->poll(j->inner.self, cx, NULL);
  if (r == ASYNCRT_POLL_ERROR) {
    int f = asyncrt_context_failure(cx);
    if (!(j->cancel_own && f == ASYNCRT_ECANCELLED)) soak_error("a scope's join failed with %d", f);
    return ASYNCRT_POLL_READY; /* what was expected; the task succeeds */
  }
  if (r == ASYNCRT_POLL_READY && j->cancel_own) soak_error("a cancelled scope's join was READY");
  return r;
}

static int poll_join(job *j, asyncrt_context *cx) {
  uint64_t got = 0;
  int r = j->inner.vtable->poll(j->inner.self, cx, j->inner.vtable->output_size ? &got : NULL);
  if (r == ASYNCRT_POLL_READY && j->inner.vtable->output_size && got != j->want)
    soak_error("a join gave %#llx, its task's output is %#llx", (unsigned long long)got, (unsigned long long)j->want);
  if (r == ASYNCRT_POLL_ERROR) {
    int f = asyncrt_context_failure(cx);
    if (!(j->may_cancel && f == ASYNCRT_ECANCELLED)) soak_error("a join failed with %d", f);
    return ASYNCRT_POLL_READY;
  }
  return r;
}

/* IO: the first poll makes the pair and submits a read at [1] and a write
 * of IO_BYTES at [0]; later polls reap them (reads and writes may be
 * partial: each is resubmitted for the rest) and check the bytes; then both
 * fds are closed with CLOSE ops. IO_LINGER: a read on an empty socket that
 * only a cancel ends. */
static int io_fail(job *j, asyncrt_context *cx, const char *what, const asyncrt_op *op) {
  soak_error("IO: %s: status %d (%s), result %lld", what, op ? op->status : -1,
             op ? asyncrt_status_str(op->status) : "-", op ? (long long)op->result : 0LL);
  (void)j;
  asyncrt_context_fail(cx, ASYNCRT_EFAILED);
  return ASYNCRT_POLL_ERROR;
}

static int io_submit(job *j, asyncrt_context *cx, asyncrt_op *op, const char *what) {
  int rc = asyncrt_io_submit(cx, j->ios->io, op);
  if (rc != ASYNCRT_OK) {
    soak_error("IO: submit of a %s returned %d (%s): %s", what, rc, asyncrt_status_str(rc), asyncrt_last_error());
    return 0;
  }
  return 1;
}

static int poll_io(job *j, asyncrt_context *cx) {
  if (j->ios->io_step == 0) {
    j->ios->io = ios[asyncrt_context_executor(cx) == execs[0] ? 0 : 1];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, j->ios->fds) < 0) {
      j->ios->fds[0] = j->ios->fds[1] = -1;
      return io_fail(j, cx, "socketpair", NULL);
    }
    for (int i = 0; i < IO_BYTES; i++) j->ios->wbuf[i] = (unsigned char)(j->value + (uint64_t)i * 7u);
    asyncrt_io_prep_read(&j->ios->rop, j->ios->fds[1], j->ios->rbuf, sizeof j->ios->rbuf, -1);
    if (!io_submit(j, cx, &j->ios->rop, "read")) return io_fail(j, cx, "submit", NULL);
    if (j->kind == K_IO_LINGER) {
      j->ios->io_step = 3;
      return ASYNCRT_POLL_PENDING;
    }
    asyncrt_io_prep_write(&j->ios->wop, j->ios->fds[0], j->ios->wbuf, sizeof j->ios->wbuf, -1);
    if (!io_submit(j, cx, &j->ios->wop, "write")) return io_fail(j, cx, "submit", NULL);
    j->ios->io_step = 1;
  }
  if (j->ios->io_step == 1) { /* the bytes, both ways */
    if (j->ios->sent < IO_BYTES && asyncrt_op_poll(&j->ios->wop, cx) == ASYNCRT_POLL_READY) {
      if (j->ios->wop.status != ASYNCRT_OK || j->ios->wop.result <= 0) return io_fail(j, cx, "write", &j->ios->wop);
      j->ios->sent += (size_t)j->ios->wop.result;
      if (j->ios->sent < IO_BYTES) {
        asyncrt_io_prep_write(&j->ios->wop, j->ios->fds[0], j->ios->wbuf + j->ios->sent, IO_BYTES - j->ios->sent, -1);
        if (!io_submit(j, cx, &j->ios->wop, "write")) return io_fail(j, cx, "submit", NULL);
      }
    }
    if (j->ios->got < IO_BYTES && asyncrt_op_poll(&j->ios->rop, cx) == ASYNCRT_POLL_READY) {
      if (j->ios->rop.status != ASYNCRT_OK || j->ios->rop.result <= 0) return io_fail(j, cx, "read", &j->ios->rop);
      size_t n = (size_t)j->ios->rop.result;
      if (memcmp(j->ios->rbuf, j->ios->wbuf + j->ios->got, n) != 0) return io_fail(j, cx, "read other bytes than were written", NULL);
      j->ios->got += n;
      if (j->ios->got < IO_BYTES) {
        asyncrt_io_prep_read(&j->ios->rop, j->ios->fds[1], j->ios->rbuf, IO_BYTES - j->ios->got, -1);
        if (!io_submit(j, cx, &j->ios->rop, "read")) return io_fail(j, cx, "submit", NULL);
      }
    }
    if (j->ios->sent < IO_BYTES || j->ios->got < IO_BYTES) return ASYNCRT_POLL_PENDING;
    for (int i = 0; i < 2; i++) {
      asyncrt_io_prep_close(&j->ios->cop[i], j->ios->fds[i]);
      if (!io_submit(j, cx, &j->ios->cop[i], "close")) return io_fail(j, cx, "submit", NULL);
    }
    j->ios->io_step = 2;
  }
  if (j->ios->io_step == 2) { /* the closes */
    int done = 1;
    for (int i = 0; i < 2; i++) {
      if (j->ios->fds[i] < 0) continue;
      if (asyncrt_op_poll(&j->ios->cop[i], cx) != ASYNCRT_POLL_READY) {
        done = 0;
        continue;
      }
      if (j->ios->cop[i].status != ASYNCRT_OK) return io_fail(j, cx, "close", &j->ios->cop[i]);
      j->ios->fds[i] = -1;
    }
    return done ? ASYNCRT_POLL_READY : ASYNCRT_POLL_PENDING;
  }
  /* IO_LINGER: the read must not complete; a cancel ends the task. */
  if (asyncrt_op_poll(&j->ios->rop, cx) == ASYNCRT_POLL_READY) return io_fail(j, cx, "a read of an empty socket completed", &j->ios->rop);
  return ASYNCRT_POLL_PENDING;
}

static int job_poll(void *self, asyncrt_context *cx, void *out) {
  job *j = self;
  static _Thread_local uint32_t seed;
  if (!seed) seed = (uint32_t)(uintptr_t)&seed | 1;
  if (j->magic != JOB_MAGIC) {
    soak_error("a future was polled after its drop");
    return ASYNCRT_POLL_PENDING;
  }
  int n = ++j->polls, r = ASYNCRT_POLL_READY;
  switch (j->kind) {
  case K_YIELD:
    if (n <= j->steps) {
      asyncrt_waker_wake_by_ref(asyncrt_context_waker(cx));
      r = ASYNCRT_POLL_PENDING;
    }
    break;
  case K_PARK:
    if (n <= j->steps) {
      wake_later(asyncrt_context_waker(cx));
      r = ASYNCRT_POLL_PENDING;
    }
    break;
  case K_SLEEP:
    if (n == 1) {
      j->started = asyncrt_context_now(cx);
      expect(asyncrt_sleep_for(&j->sleep, j->sleep_ns, &j->sleep_fut), ASYNCRT_OK, "sleep_for");
    }
    r = j->sleep_fut.vtable->poll(j->sleep_fut.self, cx, NULL);
    if (r == ASYNCRT_POLL_READY && asyncrt_context_now(cx) - j->started < j->sleep_ns)
      soak_error("a %llu ns sleep ended after %llu ns", (unsigned long long)j->sleep_ns,
                 (unsigned long long)(asyncrt_context_now(cx) - j->started));
    break;
  case K_SCOPE: r = poll_scope(j, cx, &seed); break;
  case K_JOIN: r = poll_join(j, cx); break;
  case K_IO:
  case K_IO_LINGER: r = poll_io(j, cx); break;
  default: r = ASYNCRT_POLL_PENDING; break; /* K_LINGER: until cancelled */
  }
  if (r == ASYNCRT_POLL_READY) {
    memcpy(out, &j->value, sizeof j->value);
    atomic_fetch_add(&completed, 1);
  }
  return r;
}

static void job_drop(void *self) {
  job *j = self;
  if (j->magic != JOB_MAGIC) {
    soak_error("a future was dropped twice");
    return;
  }
  j->magic = 0;
  if (j->kind == K_SLEEP && j->polls) j->sleep_fut.vtable->drop(j->sleep_fut.self);
  if (j->inner_live) j->inner.vtable->drop(j->inner.self);
  if (j->scope) expect(asyncrt_scope_free(j->scope), ASYNCRT_OK, "scope_free in a drop");
  /* A cancelled IO task: its ops have completed (asyncrt drops a task only
   * after that), and the fds its CLOSE ops did not close are closed here.
   * After an executor's free the driver is gone and close(2) does it. */
  io_state *io = j->ios;
  if (io) {
    if (!asyncrt_op_done(&io->rop) || !asyncrt_op_done(&io->wop) || !asyncrt_op_done(&io->cop[0]) ||
        !asyncrt_op_done(&io->cop[1]))
      soak_error("IO: dropped with an op in flight");
    for (int i = 0; i < 2; i++) {
      if (io->fds[i] < 0) continue;
      /* A CLOSE that completed before the cancel took effect closed it: the
       * number may be another task's now. */
      if (io->io_step == 2 && io->cop[i].status == ASYNCRT_OK) continue;
      if (asyncrt_io_close_fd(io->io, io->fds[i]) != ASYNCRT_OK) close(io->fds[i]);
    }
    free(io);
  }
  free(j);
  atomic_fetch_add(&dropped, 1);
}

static const asyncrt_future_vtable job_vt = {sizeof job_vt, sizeof(uint64_t), job_poll, job_drop, NULL};

static job *simple_job(int kind, uint32_t *seed) {
  job *j = job_new(kind, rnd(seed));
  switch (kind) {
  case K_YIELD: j->steps = (int)(rnd(seed) % 16); break;
  case K_PARK: j->steps = 1 + (int)(rnd(seed) % 3); break;
  case K_SLEEP: j->sleep_ns = 10000u + rnd(seed) % 2000000u; break;
  default: break;
  }
  return j;
}

static job *child_job(uint32_t *seed) {
  static const int kinds[] = {K_YIELD, K_YIELD, K_PARK, K_SLEEP};
  return simple_job(kinds[rnd(seed) % 4], seed);
}

/* ---- the spawner ----------------------------------------------------------------- */

#define RING 512
#define MAX_LIVE 4096u

typedef struct kept {
  asyncrt_task *task;
  int kind, cancelled, joined;
  uint64_t value;
} kept;

static _Atomic int stop_spawning;

/* Checks a kept task's outcome and releases its handle. A lingering task
 * that is still there is cancelled first (it would never end otherwise). */
static void settle_kept(kept *k) {
  if (!k->task) return;
  int st = asyncrt_task_status(k->task);
  if (st == ASYNCRT_EAGAIN && (k->kind == K_LINGER || k->kind == K_IO_LINGER) && !k->cancelled) {
    expect(asyncrt_task_cancel(k->task), ASYNCRT_OK, "task_cancel");
  } else if (st != ASYNCRT_EAGAIN) {
    int ok = st == ASYNCRT_OK ? k->kind != K_LINGER && k->kind != K_IO_LINGER : st == ASYNCRT_ECANCELLED ? k->cancelled : 0;
    if (!ok) soak_error("a task of kind %d ended with %d (cancelled: %d)", k->kind, st, k->cancelled);
  }
  expect(asyncrt_task_release(k->task), ASYNCRT_OK, "task_release");
  k->task = NULL;
}

static void spawn_kept(kept *ring, unsigned *next, asyncrt_executor *ex, job *j, uint32_t *seed) {
  kept *k = &ring[(*next)++ % RING];
  settle_kept(k);
  asyncrt_future f = job_future(j);
  int kind = j->kind;
  uint64_t value = j->value;
  int rc = asyncrt_spawn(ex, &f, rnd(seed) & 1 ? ASYNCRT_SPAWN_SEND : 0, &k->task);
  expect(rc, ASYNCRT_OK, "spawn");
  if (rc) return;
  *k = (kept){.task = k->task, .kind = kind, .value = value};
}

/* A task that awaits another's join, or a top scope's (then it owns the
 * scope's handle and frees it in its drop: freeing it before the join
 * completes would cancel the scope). */
static void spawn_joiner(asyncrt_executor *ex, asyncrt_future inner, uint64_t want, int may_cancel,
                         asyncrt_scope *scope) {
  job *j = job_new(K_JOIN, want);
  j->scope = scope;
  j->inner = inner;
  j->inner_live = 1;
  j->want = want;
  j->may_cancel = may_cancel;
  asyncrt_future f = job_future(j);
  expect(asyncrt_spawn(ex, &f, ASYNCRT_SPAWN_SEND, NULL), ASYNCRT_OK, "spawn of a joiner");
}

static void top_scope(asyncrt_executor *ex, uint32_t *seed) {
  asyncrt_scope_config cfg;
  asyncrt_scope *s = NULL;
  asyncrt_scope_config_init(&cfg);
  cfg.cleanup_timeout_ns = 1000000;
  if (asyncrt_scope_open_top(ex, &cfg, &s) != ASYNCRT_OK) {
    soak_error("scope_open_top failed");
    return;
  }
  int n = 1 + (int)(rnd(seed) % 6), cancel = rnd(seed) % 4 == 0;
  for (int i = 0; i < n; i++) {
    asyncrt_future f = job_future(child_job(seed));
    expect(asyncrt_scope_spawn(s, &f, rnd(seed) & 1 ? ASYNCRT_SPAWN_SEND : 0, NULL), ASYNCRT_OK, "scope_spawn");
  }
  asyncrt_future join;
  expect(asyncrt_scope_join(s, &join), ASYNCRT_OK, "scope_join");
  if (cancel) expect(asyncrt_scope_cancel(s), ASYNCRT_OK, "scope_cancel");
  spawn_joiner(ex, join, 0, cancel, s);
}

static void *spawner_main(void *arg) {
  (void)arg;
  static kept ring[RING];
  unsigned next = 0;
  uint32_t seed = 0x9e3779b9u;
  while (!atomic_load(&stop_spawning)) {
    if (atomic_load(&created) - atomic_load(&dropped) > MAX_LIVE) {
      sleep_ns(50000);
      continue;
    }
    asyncrt_executor *ex = execs[rnd(&seed) & 1];
    uint32_t r = rnd(&seed) % 100;
    if (r < 35) spawn_kept(ring, &next, ex, simple_job(K_YIELD, &seed), &seed);
    else if (r < 50) spawn_kept(ring, &next, ex, simple_job(K_PARK, &seed), &seed);
    else if (r < 65) spawn_kept(ring, &next, ex, simple_job(K_SLEEP, &seed), &seed);
    else if (r < 75) {
      job *j = job_new(K_SCOPE, rnd(&seed));
      j->steps = 1 + (int)(rnd(&seed) % 6);
      j->cancel_own = rnd(&seed) % 5 == 0;
      spawn_kept(ring, &next, ex, j, &seed);
    } else if (r < 78) {
      spawn_kept(ring, &next, ex, job_new(K_LINGER, 0), &seed);
    } else if (r < 82) {
      spawn_kept(ring, &next, ex, job_new(rnd(&seed) % 4 ? K_IO : K_IO_LINGER, rnd(&seed)), &seed);
    } else if (r < 88) { /* cancel a kept task: lingering ones must end by it */
      kept *k = &ring[rnd(&seed) % RING];
      if (k->task && !k->joined) { /* its joiner was told whether to expect a cancel */
        int rc = rnd(&seed) & 1 ? asyncrt_task_cancel(k->task) : asyncrt_task_cancel_ex(k->task, 100000);
        expect(rc, ASYNCRT_OK, "task_cancel");
        k->cancelled = 1;
      }
    } else if (r < 95) { /* await a kept task's join from another task */
      kept *k = &ring[rnd(&seed) % RING];
      if (k->task && !k->joined) {
        asyncrt_future join;
        expect(asyncrt_task_join(k->task, &join), ASYNCRT_OK, "task_join");
        k->joined = 1;
        /* A lingering task ends only by a cancel, which may come later. */
        int lingers = k->kind == K_LINGER || k->kind == K_IO_LINGER;
        spawn_joiner(ex, join, k->value, k->cancelled || lingers, NULL);
        if (lingers && !k->cancelled) {
          expect(asyncrt_task_cancel(k->task), ASYNCRT_OK, "task_cancel");
          k->cancelled = 1;
        }
      }
    } else {
      top_scope(ex, &seed);
    }
  }
  for (unsigned i = 0; i < RING; i++) {
    if (ring[i].task && (ring[i].kind == K_LINGER || ring[i].kind == K_IO_LINGER) && !ring[i].cancelled) {
      expect(asyncrt_task_cancel(ring[i].task), ASYNCRT_OK, "task_cancel");
      ring[i].cancelled = 1;
    }
  }
  /* Let what runs finish before the handles are checked: bounded. */
  uint64_t until = now_ns() + 5000000000ull;
  while (now_ns() < until) {
    int running = 0;
    for (unsigned i = 0; i < RING; i++) running += ring[i].task && asyncrt_task_status(ring[i].task) == ASYNCRT_EAGAIN;
    if (!running) break;
    sleep_ns(1000000);
  }
  for (unsigned i = 0; i < RING; i++) settle_kept(&ring[i]);
  return NULL;
}

/* ---- the local executor's driver -------------------------------------------------- */

/* A future that is pending until the soak ends. */
static _Atomic int stop_flag;
static asyncrt_waker stop_waker;
static pthread_mutex_t stop_mu = PTHREAD_MUTEX_INITIALIZER;

static int stop_poll(void *self, asyncrt_context *cx, void *out) {
  (void)self;
  (void)out;
  pthread_mutex_lock(&stop_mu);
  int done = atomic_load(&stop_flag);
  if (!done) {
    asyncrt_waker_drop(&stop_waker);
    asyncrt_waker_clone(asyncrt_context_waker(cx), &stop_waker);
  }
  pthread_mutex_unlock(&stop_mu);
  return done ? ASYNCRT_POLL_READY : ASYNCRT_POLL_PENDING;
}
static void stop_drop(void *self) {
  (void)self;
  pthread_mutex_lock(&stop_mu);
  asyncrt_waker_drop(&stop_waker);
  pthread_mutex_unlock(&stop_mu);
}
static const asyncrt_future_vtable stop_vt = {sizeof stop_vt, 0, stop_poll, stop_drop, NULL};

static void *driver_main(void *arg) {
  (void)arg;
  asyncrt_future f = {NULL, &stop_vt};
  expect(asyncrt_block_on(execs[1], &f, NULL, ASYNCRT_NO_TIMEOUT), ASYNCRT_OK, "block_on of the local executor");
  return NULL;
}

static void stop_driver(void) {
  pthread_mutex_lock(&stop_mu);
  atomic_store(&stop_flag, 1);
  asyncrt_waker w = stop_waker;
  stop_waker = (asyncrt_waker){0};
  pthread_mutex_unlock(&stop_mu);
  asyncrt_waker_wake(&w);
}

/* ---- RSS ------------------------------------------------------------------------------ */

static double rss_mib(void) {
  long pages = 0, resident = 0;
  FILE *f = fopen("/proc/self/statm", "r");
  if (f) {
    if (fscanf(f, "%ld %ld", &pages, &resident) != 2) resident = 0;
    fclose(f);
  }
  return (double)resident * (double)sysconf(_SC_PAGESIZE) / (1024.0 * 1024.0);
}

static int open_fds(void) {
  int n = 0;
  DIR *d = opendir("/proc/self/fd");
  if (!d) return -1;
  for (struct dirent *e; (e = readdir(d));) n += e->d_name[0] != '.';
  closedir(d);
  return n - 1; /* the directory's own fd */
}

/* The open fds once the count settles: a freed executor's workers close
 * their cores' fds as they exit, a moment after the free returned. Bounded
 * (2 s). */
static int settled_fds(void) {
  int last = open_fds();
  for (int i = 0; i < 40; i++) {
    sleep_ns(50000000);
    int n = open_fds();
    if (n == last) return n;
    last = n;
  }
  return last;
}

/* Lists the open fds (on an fd-count error, to say which ones). */
static void list_fds(void) {
  DIR *d = opendir("/proc/self/fd");
  if (!d) return;
  for (struct dirent *e; (e = readdir(d));) {
    if (e->d_name[0] == '.') continue;
    char path[300], target[256];
    snprintf(path, sizeof path, "/proc/self/fd/%s", e->d_name);
    ssize_t n = readlink(path, target, sizeof target - 1);
    target[n > 0 ? n : 0] = 0;
    fprintf(stderr, "soak:   fd %s -> %s\n", e->d_name, target);
  }
  closedir(d);
}

static double mean(const double *v, int from, int to) {
  double s = 0;
  for (int i = from; i < to; i++) s += v[i];
  return to > from ? s / (to - from) : 0;
}

int main(int argc, char **argv) {
  int seconds = argc > 1 ? atoi(argv[1]) : 600;
  double tolerance = argc > 2 ? atof(argv[2]) : 5.0;
  if (seconds < 10) seconds = 10;
  if (asyncrt_check_version(ASYNCRT_VERSION_HEX) != ASYNCRT_OK) {
    fprintf(stderr, "soak: %s\n", asyncrt_last_error());
    return 1;
  }
  /* IO tasks hold two fds each: room for every live task. */
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max && rl.rlim_cur < 65536) {
    rl.rlim_cur = rl.rlim_max < 65536 ? rl.rlim_max : 65536;
    setrlimit(RLIMIT_NOFILE, &rl);
  }
  /* The Go runtime keeps a few fds of its own once it runs (its netpoller,
   * cgroup files): a first executor with a driver, made and freed, lets
   * them appear before the count that must come back. */
  {
    asyncrt_executor_config wcfg;
    asyncrt_executor_config_init(&wcfg);
    wcfg.kind = ASYNCRT_EXECUTOR_THREADS;
    wcfg.workers = 2;
    asyncrt_executor *wex = NULL;
    asyncrt_io *wio = NULL;
    expect(asyncrt_executor_new(&wcfg, &wex), ASYNCRT_OK, "executor_new (warm-up)");
    expect(asyncrt_io_open(wex, NULL, &wio), ASYNCRT_OK, "io_open (warm-up)");
    expect(asyncrt_io_close(wio), ASYNCRT_OK, "io_close (warm-up)");
    expect(asyncrt_executor_free(wex), ASYNCRT_OK, "executor_free (warm-up)");
  }
  int fds_before = settled_fds();
  asyncrt_executor_config cfg;
  asyncrt_executor_config_init(&cfg);
  cfg.kind = ASYNCRT_EXECUTOR_THREADS;
  cfg.workers = 2;
  expect(asyncrt_executor_new(&cfg, &execs[0]), ASYNCRT_OK, "executor_new (thread-per-core)");
  expect(asyncrt_executor_new(NULL, &execs[1]), ASYNCRT_OK, "executor_new (local)");
  if (!execs[0] || !execs[1]) return 1;
  /* The thread-per-core executor gets the default backend (io_uring where
   * the kernel allows it), the local one epoll: both carry the load. */
  asyncrt_io_config iocfg;
  asyncrt_io_config_init(&iocfg);
  expect(asyncrt_io_open(execs[0], &iocfg, &ios[0]), ASYNCRT_OK, "io_open");
  iocfg.backend = ASYNCRT_IO_EPOLL;
  expect(asyncrt_io_open(execs[1], &iocfg, &ios[1]), ASYNCRT_OK, "io_open");
  if (!ios[0] || !ios[1]) return 1;
  printf("soak: IO backends: %s (thread-per-core), %s (local)\n",
         asyncrt_io_backend_name((unsigned)asyncrt_io_backend(ios[0])),
         asyncrt_io_backend_name((unsigned)asyncrt_io_backend(ios[1])));

  pthread_t waker, driver, spawner;
  pthread_create(&waker, NULL, waker_main, NULL);
  pthread_create(&driver, NULL, driver_main, NULL);
  pthread_create(&spawner, NULL, spawner_main, NULL);

  int interval = seconds >= 120 ? 10 : 5;
  double *rss = calloc((size_t)seconds + 1, sizeof *rss);
  uint64_t start = now_ns(), last_done = 0;
  printf("soak: %d s of mixed load on a thread-per-core executor (2 workers) and a local one\n", seconds);
  for (int t = 1; t <= seconds; t++) {
    uint64_t at = start + (uint64_t)t * 1000000000u, now = now_ns();
    if (at > now) sleep_ns(at - now);
    rss[t - 1] = rss_mib();
    if (t % interval == 0) {
      uint64_t done = atomic_load(&completed);
      printf("soak: t=%4ds  tasks/s %9.0f  completed %11llu  live %5llu  wakes %11llu  errors %llu  rss %6.1f MiB\n",
             t, (double)(done - last_done) / interval, (unsigned long long)done,
             (unsigned long long)(atomic_load(&created) - atomic_load(&dropped)),
             (unsigned long long)atomic_load(&wakes_sent), (unsigned long long)atomic_load(&errors), rss[t - 1]);
      fflush(stdout);
      last_done = done;
    }
  }
  atomic_store(&stop_spawning, 1);
  pthread_join(spawner, NULL);
  stop_driver();
  pthread_join(driver, NULL);
  asyncrt_io_stats ios_stats[2];
  for (int i = 0; i < 2; i++) {
    ios_stats[i] = (asyncrt_io_stats){.size = sizeof ios_stats[i]};
    expect(asyncrt_io_stats_get(ios[i], &ios_stats[i]), ASYNCRT_OK, "io_stats_get");
    expect(asyncrt_io_close(ios[i]), ASYNCRT_OK, "io_close");
  }
  expect(asyncrt_executor_free(execs[0]), ASYNCRT_OK, "executor_free (thread-per-core)");
  expect(asyncrt_executor_free(execs[1]), ASYNCRT_OK, "executor_free (local)");
  pthread_mutex_lock(&wq_mu);
  wq_stop = 1;
  pthread_cond_signal(&wq_cv);
  pthread_mutex_unlock(&wq_mu);
  pthread_join(waker, NULL);
  if (atomic_load(&created) != atomic_load(&dropped))
    soak_error("%llu futures were made, %llu dropped", (unsigned long long)atomic_load(&created),
               (unsigned long long)atomic_load(&dropped));

  int fds_after = settled_fds();
  if (fds_after != fds_before) {
    soak_error("%d fds were open before, %d after", fds_before, fds_after);
    list_fds();
  }
  printf("soak: IO ops %llu submitted, %llu failed (cancelled included), %llu cancels\n",
         (unsigned long long)(ios_stats[0].submits + ios_stats[1].submits),
         (unsigned long long)(ios_stats[0].failures + ios_stats[1].failures),
         (unsigned long long)(ios_stats[0].cancels + ios_stats[1].cancels));

  int w = seconds / 10;
  double early = mean(rss, w, 2 * w), late = mean(rss, seconds - w, seconds);
  double growth = early > 0 ? (late - early) / early * 100.0 : 0;
  uint64_t done = atomic_load(&completed), errs = atomic_load(&errors);
  int pass = !errs && growth <= tolerance;
  printf("soak: %d s, %llu tasks completed (%.0f/s), %llu errors; RSS %.1f MiB over [%d s, %d s), %.1f MiB over "
         "[%d s, %d s): %+.1f%% (limit %.1f%%): %s\n",
         seconds, (unsigned long long)done, (double)done / seconds, (unsigned long long)errs, early, w, 2 * w, late,
         seconds - w, seconds, growth, tolerance, pass ? "PASS" : "FAIL");
  free(rss);
  return pass ? 0 : 1;
}
