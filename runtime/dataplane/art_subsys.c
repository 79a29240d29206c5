/* art_subsys.c -- subsystems: registrations, operation requests, the tick
 * that polls them, and how an idle driver sleeps.
 *
 * A registration (art_subsys, the handle) has one instance per worker it
 * covers (art_subsys_inst, which is what callbacks see as their
 * asyncrt_subsystem_cx). An instance holds the in-flight list of the ops
 * submitted on its worker: each op is a waiter, holding its submitter's
 * waker until the subsystem completes it.
 *
 * The tick (art_core_tick) runs on the core's driver: at the start of each
 * run, every budget_polls polls or budget_ns of a busy run, and whenever the
 * run queues are empty. It fires due timers, sends the cancellations that
 * are pending, and polls ONE instance, chosen by smooth weighted round robin
 * over weight = priority x min(waiters, cap): each instance with waiters
 * gains its weight in credit, the richest is polled and pays the total. Over
 * any run of ticks each instance's share of polls is its share of the
 * weight, to within one poll; an instance without waiters has weight 0 and
 * is never polled.
 *
 * Locks. A core's subs_lock guards its list of instances and is held across
 * the tick's poll, so an unregister on another thread waits for a poll in
 * progress and no longer. An instance's lock guards its in-flight list and
 * serializes its callbacks. Order: subs_lock, then an instance's lock, then
 * (inside callbacks) anything a waker takes. Wakers are woken with the
 * instance lock held; a waker's code must not submit to the same subsystem
 * (no asyncrt waker does).
 */
#include <errno.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <time.h>
#include <unistd.h>

#include "art.h"
#include "art_timer.h"

__thread art_subsys_inst *art_tls_subsys;
/* The op of an art_op_submit_quiet in progress on this thread: completed
 * inside its own submit, it wakes nobody (its submitter looks at it next). */
static __thread asyncrt_op *tls_quiet_op;

/* The op's private words. */
typedef struct art_op_priv {
  asyncrt_op *next, *prev;
  /* NULL once complete. Atomic: art_op_complete and art_op_cancel read it
   * before they take the lock, while a completion may be clearing it. */
  art_subsys_inst *_Atomic inst;
  asyncrt_waker waker;
  art_task *task; /* the submitting task, whose ops count it holds */
  _Atomic uint32_t state;
  uint32_t reserved;
  uint64_t reserved2;
} art_op_priv;

_Static_assert(sizeof(art_op_priv) == sizeof(((asyncrt_op *)0)->opaque), "asyncrt_op private words");

enum { OP_INFLIGHT = 1u, OP_CANCEL_REQ = 2u, OP_CANCEL_SENT = 4u };

static inline art_op_priv *priv(const asyncrt_op *op) { return (art_op_priv *)(op->opaque); }

/* ---- configuration ------------------------------------------------------------ */

void art_core_configure(art_exec *e, art_clock *clock, int test_clock, uint64_t budget_polls, uint64_t budget_ns,
                        uint64_t spin_ns, int timerfd) {
  e->clock = clock ? clock : &e->clock_store;
  if (!clock) e->clock_store.test = test_clock;
  e->budget_polls = budget_polls ? budget_polls : 256;
  e->budget_ns = budget_ns ? budget_ns : 1000000;
  e->spin_ns = spin_ns;
  e->timerfd = timerfd;
  atomic_store(&e->tick_now, art_clock_now(e->clock));
}

/* ---- registrations ------------------------------------------------------------ */

art_subsys *art_subsys_new(const asyncrt_subsystem_config *cfg, art_exec **cores, unsigned n,
                           const unsigned *workers) {
  art_subsys *s = calloc(1, sizeof *s);
  art_subsys_inst *inst = s ? calloc(n, sizeof *inst) : NULL;
  if (!inst) {
    free(s);
    art_fail(ASYNCRT_ENOMEM, "no memory for a subsystem registration");
    return NULL;
  }
  size_t vsize = cfg->vtable->size < sizeof s->vt ? cfg->vtable->size : sizeof s->vt;
  memcpy(&s->vt, cfg->vtable, vsize);
  s->vt.size = sizeof s->vt;
  s->user = cfg->user_data;
  s->priority = cfg->priority;
  s->cap = cfg->waiter_cap;
  s->budget = cfg->poll_budget;
  s->fd = cfg->fd;
  strncpy(s->name, cfg->name ? cfg->name : "subsystem", sizeof s->name - 1);
  s->ninst = n;
  s->inst = inst;
  for (unsigned i = 0; i < n; i++) {
    inst[i].sub = s;
    inst[i].core = cores[i];
    inst[i].worker = workers[i];
  }
  return s;
}

int art_subsys_attach(art_subsys *s) {
  for (unsigned i = 0; i < s->ninst; i++) {
    art_exec *e = s->inst[i].core;
    art_lock_acquire(&e->subs_lock);
    if (e->nsubs == e->subs_cap) {
      unsigned cap = e->subs_cap ? e->subs_cap * 2 : 4;
      art_subsys_inst **grown = realloc(e->subs, cap * sizeof *grown);
      if (!grown) {
        art_lock_release(&e->subs_lock);
        return art_fail(ASYNCRT_ENOMEM, "no memory to register a subsystem");
      }
      e->subs = grown;
      e->subs_cap = cap;
    }
    e->subs[e->nsubs++] = &s->inst[i];
    art_lock_release(&e->subs_lock);
  }
  return ASYNCRT_OK;
}

static void unlink_op(art_subsys_inst *inst, asyncrt_op *op) {
  art_op_priv *p = priv(op);
  if (inst->cursor == op) inst->cursor = p->next; /* a walk in cancel_ops goes on past it */
  if (p->prev) priv(p->prev)->next = p->next;
  else inst->head = p->next;
  if (p->next) priv(p->next)->prev = p->prev;
  else inst->tail = p->prev;
  p->next = p->prev = NULL;
}

/* Completes op; the instance's lock is held. */
static void complete_locked(art_subsys_inst *inst, asyncrt_op *op, int status, int64_t result) {
  art_op_priv *p = priv(op);
  unlink_op(inst, op);
  uint64_t left = atomic_fetch_sub_explicit(&inst->waiters, 1, memory_order_relaxed) - 1;
  atomic_fetch_sub_explicit(&inst->core->subs_waiters, 1, memory_order_relaxed);
  atomic_fetch_add_explicit(&inst->completions, 1, memory_order_relaxed);
  if (status != ASYNCRT_OK) atomic_fetch_add_explicit(&inst->failures, 1, memory_order_relaxed);
  op->status = status;
  op->result = result;
  asyncrt_waker w = p->waker;
  p->waker = (asyncrt_waker){0};
  art_task *task = p->task;
  p->task = NULL;
  atomic_store_explicit(&p->inst, NULL, memory_order_relaxed); /* ordered by the state's release */
  /* From here the op is its submitter's again: not touched after this. */
  atomic_store_explicit(&p->state, 0, memory_order_release);
  /* Only now may a cancelled task see its count reach zero and drop the
   * future (and the op with it). */
  if (task) atomic_fetch_sub_explicit(&task->state, ART_OPS_ONE, memory_order_acq_rel);
  if (inst->sub->vt.waiters_changed) {
    art_subsys_inst *outer = art_tls_subsys;
    art_tls_subsys = inst;
    inst->sub->vt.waiters_changed(inst->sub->user, (asyncrt_subsystem_cx *)inst, left);
    art_tls_subsys = outer;
  }
  if (ART_UNLIKELY(op == tls_quiet_op)) art_waker_drop(&w); /* no wake: see art_op_submit_quiet */
  else art_waker_wake(&w);
}

/* Sends op's cancellation to its subsystem (once); the lock is held. */
static void send_cancel(art_subsys_inst *inst, asyncrt_op *op) {
  art_op_priv *p = priv(op);
  uint32_t s = atomic_fetch_or_explicit(&p->state, OP_CANCEL_SENT, memory_order_acq_rel);
  if (s & OP_CANCEL_SENT) return;
  atomic_fetch_add_explicit(&inst->cancels, 1, memory_order_relaxed);
  if (!inst->sub->vt.cancel) {
    complete_locked(inst, op, ASYNCRT_ECANCELLED, 0);
    return;
  }
  art_subsys_inst *outer = art_tls_subsys;
  art_tls_subsys = inst;
  inst->sub->vt.cancel(inst->sub->user, (asyncrt_subsystem_cx *)inst, op);
  art_tls_subsys = outer;
}

/* Whether op should be cancelled now. */
static int wants_cancel(asyncrt_op *op) {
  art_op_priv *p = priv(op);
  uint32_t s = atomic_load_explicit(&p->state, memory_order_acquire);
  if (s & OP_CANCEL_SENT) return 0;
  if (s & OP_CANCEL_REQ) return 1;
  if (!p->task) return 0;
  /* A shielded task, or one running its cleanup, keeps its ops -- unless
   * an immediate shutdown is under way. */
  uint32_t ts = atomic_load_explicit(&p->task->state, memory_order_acquire);
  return (ts & ART_CANCEL) &&
         (!(ts & (ART_SHIELD | ART_CLEANUP)) || atomic_load_explicit(&p->task->exec->immediate, memory_order_relaxed));
}

/* Sends every cancellation that `all` or wants_cancel asks for. A cancel
 * callback may complete any ops, and a completed op is its submitter's at
 * once (maybe freed): the walk never reads an op after a callback, but
 * follows inst->cursor, which unlink_op moves past whatever it unlinks. */
static void cancel_ops(art_subsys_inst *inst, int all) {
  for (asyncrt_op *op = inst->head; op; op = inst->cursor) {
    inst->cursor = priv(op)->next;
    if (all ? !(atomic_load(&priv(op)->state) & OP_CANCEL_SENT) : wants_cancel(op)) send_cancel(inst, op);
  }
  inst->cursor = NULL;
}

void art_subsys_detach(art_subsys *s) {
  /* An unregister and an executor's free may race to detach one
   * registration: the first does it, the other waits until it is done (its
   * cancel callbacks may wait for a device; its ops must be reaped before
   * the free drops any future). */
  if (atomic_exchange(&s->claimed, 1)) {
    while (!atomic_load(&s->detached)) sched_yield();
    return;
  }
  for (unsigned i = 0; i < s->ninst; i++) atomic_fetch_add(&s->inst[i].core->detaching, 1);
  if (s->handle) art_handle_free(s->handle);
  for (unsigned i = 0; i < s->ninst; i++) {
    art_subsys_inst *inst = &s->inst[i];
    art_exec *e = inst->core;
    art_lock_acquire(&e->subs_lock);
    for (unsigned k = 0; k < e->nsubs; k++) {
      if (e->subs[k] == inst) {
        e->subs[k] = e->subs[--e->nsubs];
        break;
      }
    }
    if (inst->watched) { /* only where this registration added it: the same fd may be another's */
      epoll_ctl(e->pollfd, EPOLL_CTL_DEL, s->fd, NULL);
      inst->watched = 0;
      atomic_fetch_sub(&e->fd_watch, 1);
    }
    art_lock_release(&e->subs_lock);
    art_lock_acquire(&inst->lock);
    inst->dead = 1;
    /* The subsystem may finish what it can; without a cancel callback there
     * is nothing to offer, and everything left ends with ESHUTDOWN. */
    if (s->vt.cancel) cancel_ops(inst, 1);
    while (inst->head) complete_locked(inst, inst->head, ASYNCRT_ESHUTDOWN, 0);
    art_lock_release(&inst->lock);
  }
  if (s->vt.finalize) s->vt.finalize(s->user);
  for (unsigned i = 0; i < s->ninst; i++) atomic_fetch_sub(&s->inst[i].core->detaching, 1);
  /* Not freed yet: a call racing with the unregister (an op completed or
   * cancelled from another thread, a submit that resolved the handle just
   * before) may still read it. It is freed with its executor's core. */
  art_exec *keeper = s->inst[0].core;
  art_lock_acquire(&keeper->subs_lock);
  s->next_dead = keeper->dead_subs;
  keeper->dead_subs = s;
  art_lock_release(&keeper->subs_lock);
  atomic_store(&s->detached, 1);
}

void art_subsys_free_dead(art_exec *e) {
  for (art_subsys *s = e->dead_subs, *next; s; s = next) {
    next = s->next_dead;
    free(s->inst);
    free(s);
  }
  e->dead_subs = NULL;
}

int art_subsys_stats(art_subsys *s, asyncrt_subsystem_stats *out) {
  asyncrt_subsystem_stats sum = {.size = sizeof sum};
  for (unsigned i = 0; i < s->ninst; i++) {
    art_subsys_inst *inst = &s->inst[i];
    sum.polls += atomic_load_explicit(&inst->polls, memory_order_relaxed);
    sum.completions += atomic_load_explicit(&inst->completions, memory_order_relaxed);
    sum.empty_polls += atomic_load_explicit(&inst->empty_polls, memory_order_relaxed);
    sum.waiters += atomic_load_explicit(&inst->waiters, memory_order_relaxed);
    sum.submits += atomic_load_explicit(&inst->submits, memory_order_relaxed);
    sum.cancels += atomic_load_explicit(&inst->cancels, memory_order_relaxed);
    sum.failures += atomic_load_explicit(&inst->failures, memory_order_relaxed);
  }
  sum.workers = s->ninst;
  art_copy_sized(out, out->size, &sum, sizeof sum);
  return ASYNCRT_OK;
}

/* ---- operations ------------------------------------------------------------------ */

static art_subsys_inst *inst_for(art_subsys *s, art_exec *e) {
  for (unsigned i = 0; i < s->ninst; i++)
    if (s->inst[i].core == e) return &s->inst[i];
  return NULL;
}

int art_op_submit(asyncrt_context *cx, art_subsys *s, asyncrt_op *op) {
  art_exec *e = cx->exec;
  if (!e) return art_fail(ASYNCRT_ENOTSUP, "asyncrt_op_submit: not inside an executor's poll");
  art_subsys_inst *inst = inst_for(s, e);
  if (!inst)
    return art_fail(ASYNCRT_ENOTSUP, "asyncrt_op_submit: subsystem '%s' is not registered on this worker", s->name);
  art_op_priv *p = priv(op);
  if (atomic_load_explicit(&p->state, memory_order_acquire))
    return art_fail(ASYNCRT_EINVAL, "asyncrt_op_submit: the op is already in flight");
  art_lock_acquire(&inst->lock);
  if (inst->dead) {
    art_lock_release(&inst->lock);
    return art_fail(ASYNCRT_ESHUTDOWN, "asyncrt_op_submit: subsystem '%s' is being unregistered", s->name);
  }
  memset(p, 0, sizeof *p);
  atomic_store_explicit(&p->inst, inst, memory_order_relaxed);
  art_waker_clone(&cx->waker, &p->waker);
  if (cx->waker.vtable == &art_task_waker_vtable && cx->waker.data) {
    p->task = (art_task *)cx->waker.data;
    atomic_fetch_add_explicit(&p->task->state, ART_OPS_ONE, memory_order_acq_rel);
  }
  op->status = ASYNCRT_EAGAIN;
  op->result = 0;
  atomic_store_explicit(&p->state, OP_INFLIGHT, memory_order_relaxed);
  p->prev = inst->tail;
  if (inst->tail) priv(inst->tail)->next = op;
  else inst->head = op;
  inst->tail = op;
  uint64_t waiters = atomic_fetch_add_explicit(&inst->waiters, 1, memory_order_relaxed) + 1;
  atomic_fetch_add_explicit(&e->subs_waiters, 1, memory_order_relaxed);
  atomic_fetch_add_explicit(&inst->submits, 1, memory_order_relaxed);
  art_subsys_inst *outer = art_tls_subsys;
  art_tls_subsys = inst;
  if (s->vt.waiters_changed) s->vt.waiters_changed(s->user, (asyncrt_subsystem_cx *)inst, waiters);
  if (s->vt.submit && (atomic_load_explicit(&p->state, memory_order_relaxed) & OP_INFLIGHT))
    s->vt.submit(s->user, (asyncrt_subsystem_cx *)inst, op);
  art_tls_subsys = outer;
  art_lock_release(&inst->lock);
  return ASYNCRT_OK;
}

int art_op_submit_quiet(asyncrt_context *cx, art_subsys *s, asyncrt_op *op) {
  asyncrt_op *outer = tls_quiet_op;
  tls_quiet_op = op;
  int rc = art_op_submit(cx, s, op);
  tls_quiet_op = outer;
  return rc;
}

asyncrt_op *art_op_next(asyncrt_op *op) { return priv(op)->next; }

int art_op_done(const asyncrt_op *op) { return atomic_load_explicit(&priv(op)->state, memory_order_acquire) == 0; }

void art_op_complete(asyncrt_op *op, int status, int64_t result) {
  art_op_priv *p = priv(op);
  /* The instance before the state: a completion on another thread clears
   * it first, so a non-NULL instance with the op still in flight is the
   * op's (NULL would also match art_tls_subsys outside every callback). */
  art_subsys_inst *inst = atomic_load_explicit(&p->inst, memory_order_acquire);
  if (!inst || !(atomic_load_explicit(&p->state, memory_order_acquire) & OP_INFLIGHT)) return;
  if (art_tls_subsys == inst) { /* inside one of its callbacks: the lock is held */
    complete_locked(inst, op, status, result);
    return;
  }
  art_lock_acquire(&inst->lock);
  if (atomic_load_explicit(&p->inst, memory_order_relaxed) == inst &&
      (atomic_load_explicit(&p->state, memory_order_acquire) & OP_INFLIGHT))
    complete_locked(inst, op, status, result);
  art_lock_release(&inst->lock);
}

int art_op_cancel(asyncrt_op *op) {
  art_op_priv *p = priv(op);
  /* As in art_op_complete: a completion may race with this call. The
   * request is set only while the op is still in flight, so that a
   * completion in between leaves the state 0 (done), not a request on an
   * op that nothing will complete again. */
  art_subsys_inst *inst = atomic_load_explicit(&p->inst, memory_order_acquire);
  uint32_t s = atomic_load_explicit(&p->state, memory_order_acquire);
  do {
    if (!inst || !(s & OP_INFLIGHT) || (s & (OP_CANCEL_REQ | OP_CANCEL_SENT))) return ASYNCRT_OK;
  } while (!atomic_compare_exchange_weak_explicit(&p->state, &s, s | OP_CANCEL_REQ, memory_order_acq_rel,
                                                  memory_order_acquire));
  art_exec *e = inst->core;
  asyncrt_context *cx = art_tls_cx;
  if (cx && cx->exec == e && !e->is_foreign && art_tls_subsys != inst) {
    /* On the worker's own thread: cancel now. */
    art_lock_acquire(&inst->lock);
    if (atomic_load_explicit(&p->inst, memory_order_relaxed) == inst &&
        (atomic_load_explicit(&p->state, memory_order_acquire) & OP_INFLIGHT))
      send_cancel(inst, op);
    art_lock_release(&inst->lock);
    return ASYNCRT_OK;
  }
  atomic_store(&e->cancel_scan, 1);
  if (!e->is_foreign) art_exec_wake_driver(e);
  return ASYNCRT_OK;
}

void art_ops_cancel_task(art_exec *e, art_task *t) {
  (void)t;
  /* The ops may sit on any core the task ran on: ask them all to look. */
  if (e->group) {
    for (unsigned i = 0; i < e->group->nworkers; i++) {
      art_exec *w = e->group->workers[i];
      if (!atomic_exchange(&w->cancel_scan, 1) && w != e) art_exec_wake_driver(w);
    }
  } else {
    atomic_store(&e->cancel_scan, 1);
  }
}

/* ---- the tick -------------------------------------------------------------------- */

static void scan_cancels(art_exec *e) {
  art_lock_acquire(&e->subs_lock);
  for (unsigned i = 0; i < e->nsubs; i++) {
    art_subsys_inst *inst = e->subs[i];
    if (!atomic_load_explicit(&inst->waiters, memory_order_relaxed)) continue;
    art_lock_acquire(&inst->lock);
    cancel_ops(inst, 0);
    art_lock_release(&inst->lock);
  }
  art_lock_release(&e->subs_lock);
}

/* Polls one instance by smooth weighted round robin; records what the
 * sleeping driver must watch. Returns the completions it made. */
/* Polls inst (subs_lock held); returns the completions. */
static uint64_t poll_inst(art_subsys_inst *inst) {
  art_subsys *s = inst->sub;
  art_lock_acquire(&inst->lock);
  uint64_t before = atomic_load_explicit(&inst->completions, memory_order_relaxed);
  art_subsys_inst *outer = art_tls_subsys;
  art_tls_subsys = inst;
  int r = s->vt.poll(s->user, (asyncrt_subsystem_cx *)inst, s->budget);
  art_tls_subsys = outer;
  uint64_t done = atomic_load_explicit(&inst->completions, memory_order_relaxed) - before;
  art_lock_release(&inst->lock);
  atomic_fetch_add_explicit(&inst->polls, 1, memory_order_relaxed);
  if (r <= 0 && !done) atomic_fetch_add_explicit(&inst->empty_polls, 1, memory_order_relaxed);
  return done;
}

static uint64_t poll_one(art_exec *e) {
  art_lock_acquire(&e->subs_lock);
  uint64_t done = 0;
  if (e->fd_ready) {
    /* Subsystems whose fd reported readiness go first, each once: their
     * edge will not come again, and the round robin might not pick them
     * before the driver sleeps. None is polled without waiters. */
    e->fd_ready = 0;
    for (unsigned i = 0; i < e->nsubs; i++) {
      art_subsys_inst *inst = e->subs[i];
      if (atomic_exchange_explicit(&inst->fd_ready, 0, memory_order_relaxed) &&
          atomic_load_explicit(&inst->waiters, memory_order_relaxed))
        done += poll_inst(inst);
    }
  }
  art_subsys_inst *best = NULL;
  int64_t total = 0;
  int busy = 0, fdw = 0;
  for (unsigned i = 0; i < e->nsubs; i++) {
    art_subsys_inst *inst = e->subs[i];
    uint64_t w = atomic_load_explicit(&inst->waiters, memory_order_relaxed);
    if (!w) {
      inst->credit = 0;
      continue;
    }
    if (inst->sub->fd >= 0 && e->pollfd >= 0) fdw = 1;
    else busy = 1;
    int64_t weight = (int64_t)inst->sub->priority * (int64_t)(w < inst->sub->cap ? w : inst->sub->cap);
    inst->credit += weight;
    total += weight;
    if (!best || inst->credit > best->credit) best = inst;
  }
  e->busy_nofd = busy;
  e->sleep_fd = fdw;
  if (best) {
    best->credit -= total;
    done += poll_inst(best);
  }
  art_lock_release(&e->subs_lock);
  return done;
}

uint64_t art_core_tick(art_exec *e) {
  asyncrt_context *outer = art_tls_cx;
  art_tls_cx = &e->cx; /* wakes from here queue locally */
  e->cx.waker.data = NULL; /* no task is being polled: a wake is a wake */
  art_watch_enter(e, NULL, NULL); /* timers' wakers and subsystems' callbacks run: no task's poll */
  uint64_t real = art_now_ns();
  uint64_t now = e->clock->test ? atomic_load_explicit(&e->clock->now, memory_order_acquire) : real;
  if (now > atomic_load_explicit(&e->tick_now, memory_order_relaxed))
    atomic_store_explicit(&e->tick_now, now, memory_order_relaxed);
  e->next_tick_ns = real + e->budget_ns;
  atomic_store_explicit(&e->ticks, atomic_load_explicit(&e->ticks, memory_order_relaxed) + 1,
                        memory_order_relaxed); /* the driver is the only writer */
  uint64_t progress = 0;
  if (atomic_load_explicit(&e->timers_armed, memory_order_relaxed)) progress += art_timers_fire(e, now);
  if (ART_UNLIKELY(atomic_load_explicit(&e->cancel_scan, memory_order_relaxed))) {
    atomic_store(&e->cancel_scan, 0);
    scan_cancels(e);
  }
  if (atomic_load_explicit(&e->subs_waiters, memory_order_relaxed)) progress += poll_one(e);
  else e->busy_nofd = e->sleep_fd = e->fd_ready = 0;
  if (progress) e->backoff_ns = 0;
  art_tls_cx = outer;
  return progress;
}

/* ---- sleeping ---------------------------------------------------------------------- */

void art_core_note_ready(art_exec *e, const struct epoll_event *ev, int n) {
  for (int i = 0; i < n; i++) {
    /* The eventfd and the timerfd carry their (small) fd number; instances
     * their address. A detached instance's memory is kept (dead_subs). */
    if (ev[i].data.u64 <= 0xffffffffu) continue;
    art_subsys_inst *inst = ev[i].data.ptr;
    atomic_store_explicit(&inst->fd_ready, 1, memory_order_relaxed);
    if (inst->core == e) e->fd_ready = 1;
  }
}

void art_core_harvest_fds(art_exec *e) {
  if (!atomic_load_explicit(&e->fd_watch, memory_order_relaxed) || e->pollfd < 0) return;
  struct epoll_event ev[8];
  int n;
  while ((n = epoll_wait(e->pollfd, ev, 8, 0)) > 0) {
    art_core_note_ready(e, ev, n);
    if (n < 8) break;
  }
}

#define BACKOFF_MIN_NS 50000u
#define BACKOFF_MAX_NS 1000000u

int64_t art_core_sleep_bound(art_exec *e, int64_t bound) {
  if (e->fd_ready) return 0; /* a reported fd is still to be polled */
  int64_t t = bound;
  if (atomic_load_explicit(&e->timers_armed, memory_order_relaxed) && !e->clock->test) {
    uint64_t next = atomic_load_explicit(&e->timer_next, memory_order_relaxed), now = art_now_ns();
    /* A deadline too far to fit (UINT64_MAX: "never") bounds nothing. */
    if (next - now <= (uint64_t)INT64_MAX || next <= now) {
      int64_t d = next > now ? (int64_t)(next - now) : 0;
      if (t < 0 || d < t) t = d;
    }
  }
  if (e->busy_nofd) {
    e->backoff_ns = e->backoff_ns ? (e->backoff_ns * 2 > BACKOFF_MAX_NS ? BACKOFF_MAX_NS : e->backoff_ns * 2)
                                  : BACKOFF_MIN_NS;
    if (t < 0 || (int64_t)e->backoff_ns < t) t = (int64_t)e->backoff_ns;
  } else {
    e->backoff_ns = 0;
  }
  return t;
}

void art_core_park(art_exec *e, int64_t timeout_ns) {
  if (!e->sleep_fd || e->pollfd < 0) {
    art_exec_park(e, timeout_ns);
    return;
  }
  /* A subsystem's fd is in the core's epoll set, beside the eventfd that
   * signals write in fd mode: one wait covers both. */
  struct epoll_event ev[8];
  struct timespec ts = {(time_t)(timeout_ns / 1000000000), (long)(timeout_ns % 1000000000)};
  if (atomic_load(&e->signaled)) return;
  static _Atomic int no_pwait2; /* the kernel (< 5.11) or a seccomp profile refuses it */
  int n = -1;
  if (!atomic_load_explicit(&no_pwait2, memory_order_relaxed)) {
    n = epoll_pwait2(e->pollfd, ev, 8, timeout_ns < 0 ? NULL : &ts, NULL);
    if (n < 0 && (errno == ENOSYS || errno == EPERM)) atomic_store(&no_pwait2, 1);
  }
  if (atomic_load_explicit(&no_pwait2, memory_order_relaxed) && n < 0) {
    /* Milliseconds, rounded up: never early. */
    int ms = timeout_ns < 0 ? -1 : (int)((timeout_ns + 999999) / 1000000 > INT32_MAX ? INT32_MAX : (timeout_ns + 999999) / 1000000);
    n = epoll_wait(e->pollfd, ev, 8, ms);
  }
  art_core_note_ready(e, ev, n);
}

/* ---- registering from the API ------------------------------------------------------ */

int art_subsys_register(art_exec *e, const asyncrt_subsystem_config *cfg, uint64_t *handle) {
  art_group *g = e->group;
  unsigned nworkers = g ? g->nworkers : 1, n = cfg->worker == ASYNCRT_SUBSYSTEM_ALL_WORKERS ? nworkers : 1;
  if (cfg->worker != ASYNCRT_SUBSYSTEM_ALL_WORKERS && cfg->worker >= nworkers) {
    if (cfg->vtable->finalize) cfg->vtable->finalize(cfg->user_data); /* the user data is ours either way */
    return art_fail(ASYNCRT_EINVAL, "asyncrt_subsystem_register: worker %u: the executor has %u", cfg->worker,
                    nworkers);
  }
  art_exec *cores[n ? n : 1];
  unsigned workers[n ? n : 1];
  for (unsigned i = 0; i < n; i++) {
    unsigned w = n == 1 && cfg->worker != ASYNCRT_SUBSYSTEM_ALL_WORKERS ? cfg->worker : i;
    cores[i] = g ? g->workers[w] : e;
    workers[i] = w;
  }
  art_subsys *s = art_subsys_new(cfg, cores, n, workers);
  if (!s) {
    if (cfg->vtable->finalize) cfg->vtable->finalize(cfg->user_data);
    return ASYNCRT_ENOMEM;
  }
  int status = ASYNCRT_OK;
  unsigned watched = 0;
  if (cfg->fd >= 0) {
    for (; watched < n; watched++) {
      art_exec *c = cores[watched];
      if (c->pollfd < 0) continue; /* a foreign executor's host does the sleeping */
      /* data names the instance, so a wake-up knows which subsystem is ready. */
      struct epoll_event ev = {.events = EPOLLIN | EPOLLET, .data.ptr = &s->inst[watched]};
      if (epoll_ctl(c->pollfd, EPOLL_CTL_ADD, cfg->fd, &ev) < 0) {
        status = art_fail(ASYNCRT_EINVAL, "asyncrt_subsystem_register: fd %d cannot be watched: %s", cfg->fd,
                          strerror(errno));
        break;
      }
      art_lock_acquire(&c->subs_lock);
      s->inst[watched].watched = 1;
      art_lock_release(&c->subs_lock);
      atomic_fetch_add(&c->fd_watch, 1);
      art_exec_use_fd(c); /* wakes now write the eventfd beside it */
    }
  }
  if (!status) status = art_subsys_attach(s);
  if (!status && !(s->handle = art_handle_new(ART_H_SUBSYS, s)))
    status = art_fail(ASYNCRT_ENOMEM, "no memory for a subsystem handle");
  if (status) {
    art_subsys_detach(s); /* unwatches, unlinks what was linked, finalizes */
    return status;
  }
  *handle = s->handle;
  return ASYNCRT_OK;
}

void art_exec_detach_subsystems(art_exec *e) {
  for (;;) {
    art_lock_acquire(&e->subs_lock);
    art_subsys *s = e->nsubs ? e->subs[0]->sub : NULL;
    art_lock_release(&e->subs_lock);
    if (!s) break;
    art_subsys_detach(s);
  }
  /* An unregister on another thread may have taken a registration off the
   * list and still be completing its ops: the tasks' drops wait for it. */
  while (atomic_load(&e->detaching)) sched_yield();
}

/* ---- the dump ------------------------------------------------------------------- */

void art_subsys_dump_ops(art_exec *e, void (*fn)(void *, uint64_t, const char *, uint32_t), void *user,
                         unsigned max_per_inst) {
  art_lock_acquire(&e->subs_lock);
  for (unsigned i = 0; i < e->nsubs; i++) {
    art_subsys_inst *inst = e->subs[i];
    art_lock_acquire(&inst->lock);
    unsigned n = 0;
    for (asyncrt_op *op = inst->head; op && n < max_per_inst; op = priv(op)->next, n++)
      if (priv(op)->task) fn(user, art_task_id(priv(op)->task), inst->sub->name, op->opcode);
    art_lock_release(&inst->lock);
  }
  art_lock_release(&e->subs_lock);
}
