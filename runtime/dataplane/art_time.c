/* art_time.c -- timers: each core's timing wheel (art_timer.c) as the
 * built-in timer subsystem, the asyncrt_timer entries that tasks arm, and
 * the sleep and timeout futures built on them.
 *
 * A timer entry lives in the caller's memory (usually the waiting future's
 * state) and is linked into the wheel of the core whose driver polled it.
 * The wheel is guarded by its core's timer_lock, taken for a few
 * instructions by arm and disarm and once per firing batch by the driver: a
 * Send task that moved to another core disarms its timer from there, so the
 * wheel cannot be driver-only. Fired wakers are collected under the lock and
 * woken after it, so a waker's code never runs with the lock held.
 *
 * Never early: asyncrt_timer_poll answers READY only when the clock the core
 * read at its last tick (tick_now) has reached the deadline, and tick_now
 * is never ahead of the clock.
 */
#include <errno.h>
#include <stddef.h>
#include <string.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "art.h"
#include "art_timer.h"

typedef struct art_timer_entry {
  art_timer link;                /* the wheel's, while linked */
  art_exec *_Atomic core;        /* whose wheel holds it; NULL while disarmed */
  asyncrt_waker waker;           /* woken when it fires; under core's timer_lock */
  uint64_t reserved;             /* the deadline is link.deadline_ns */
} art_timer_entry;

_Static_assert(sizeof(art_timer_entry) == sizeof(asyncrt_timer), "asyncrt_timer is the entry's size");
_Static_assert(_Alignof(art_timer_entry) <= _Alignof(asyncrt_timer), "asyncrt_timer alignment");

#define FIRE_BATCH 128u

/* timers_armed changes only under the core's timer_lock, so a plain load
 * and store do (no locked instruction); other threads only read it. */
static inline void armed_add(art_exec *e, int64_t delta) {
  uint64_t v = atomic_load_explicit(&e->timers_armed, memory_order_relaxed);
  atomic_store_explicit(&e->timers_armed, v + (uint64_t)delta, memory_order_relaxed);
}

typedef struct fire_batch {
  unsigned n;
  asyncrt_waker wakers[FIRE_BATCH];
} fire_batch;

/* Called by the wheel for each due entry (at most FIRE_BATCH per advance),
 * with the core's timer_lock held. The waker moves to the batch, woken
 * after the lock. */
static void fire_one(art_timer *link, void *user) {
  fire_batch *b = user;
  art_timer_entry *te = (art_timer_entry *)link;
  b->wakers[b->n++] = te->waker;
  te->waker = (asyncrt_waker){0};
  /* Release: a poll on another core that reads NULL here takes no lock of
   * this core's, yet writes the entry next (arms it in its own wheel). */
  atomic_store_explicit(&te->core, NULL, memory_order_release);
}

/* Fires (wake) or forgets (!wake) every entry due at `now`. */
static uint64_t timers_advance(art_exec *e, uint64_t now, int wake) {
  uint64_t total = 0;
  fire_batch b;
  for (;;) {
    art_lock_acquire(&e->timer_lock);
    if (!e->wheel) {
      art_lock_release(&e->timer_lock);
      return total;
    }
    b.n = 0;
    art_wheel_advance_max(e->wheel, now, fire_one, &b, FIRE_BATCH);
    armed_add(e, -(int64_t)b.n);
    atomic_store_explicit(&e->timer_next, art_wheel_next_expiry(e->wheel), memory_order_relaxed);
    art_lock_release(&e->timer_lock);
    /* In deadline order: the tasks queue (and run) in the order they fell due. */
    for (unsigned i = 0; i < b.n; i++) {
      if (wake) art_waker_wake(&b.wakers[i]);
      else art_waker_drop(&b.wakers[i]);
    }
    total += b.n;
    if (b.n < FIRE_BATCH) return total;
  }
}

uint64_t art_timers_fire(art_exec *e, uint64_t now) {
  if (atomic_load_explicit(&e->timer_next, memory_order_relaxed) > now) return 0;
  uint64_t fired = timers_advance(e, now, 1);
  atomic_fetch_add_explicit(&e->timer_polls, 1, memory_order_relaxed);
  atomic_fetch_add_explicit(&e->timer_fired, fired, memory_order_relaxed);
  if (!fired) atomic_fetch_add_explicit(&e->timer_empty, 1, memory_order_relaxed);
  return fired;
}

void art_timers_orphan(art_exec *e) { timers_advance(e, UINT64_MAX, 0); }

/* ---- asyncrt_timer --------------------------------------------------------- */

/* Unlinks te from the wheel it is in, if any; returns the waker it held. */
static asyncrt_waker timer_disarm(art_timer_entry *te) {
  asyncrt_waker w = {0};
  art_exec *e = atomic_load_explicit(&te->core, memory_order_acquire);
  if (!e) return w;
  art_lock_acquire(&e->timer_lock);
  /* Still e's? A fire may have taken it between the load and the lock (it
   * cannot have moved elsewhere: only its own poller arms it, and that is
   * this thread or one ordered before it). */
  if (atomic_load_explicit(&te->core, memory_order_relaxed) == e) {
    art_wheel_remove(e->wheel, &te->link);
    armed_add(e, -1);
    w = te->waker;
    te->waker = (asyncrt_waker){0};
    atomic_store_explicit(&te->core, NULL, memory_order_release); /* as in fire_one */
  }
  art_lock_release(&e->timer_lock);
  return w;
}

void art_timer_cancel(asyncrt_timer *t) {
  asyncrt_waker w = timer_disarm((art_timer_entry *)t);
  art_waker_drop(&w);
}

int art_timer_armed(const asyncrt_timer *t) {
  return atomic_load_explicit(&((const art_timer_entry *)t)->core, memory_order_acquire) != NULL;
}

static int timer_error(asyncrt_context *cx, int status) {
  if (cx) cx->failure = status;
  return ASYNCRT_POLL_ERROR;
}

int art_timer_poll(asyncrt_timer *t, asyncrt_context *cx, uint64_t deadline) {
  if (!t || !cx) {
    art_fail(ASYNCRT_EINVAL, "asyncrt_timer_poll: %s is NULL", t ? "cx" : "timer");
    return timer_error(cx, ASYNCRT_EINVAL);
  }
  art_exec *e = cx->exec;
  if (!e) {
    art_fail(ASYNCRT_ENOTSUP, "asyncrt_timer_poll: the poll runs outside an asyncrt executor; nothing would advance the timer");
    return timer_error(cx, ASYNCRT_ENOTSUP);
  }
  art_timer_entry *te = (art_timer_entry *)t;
  if (deadline <= atomic_load_explicit(&e->tick_now, memory_order_relaxed)) {
    art_timer_cancel(t);
    return ASYNCRT_POLL_READY;
  }
  art_exec *cur = atomic_load_explicit(&te->core, memory_order_acquire);
  asyncrt_waker old = {0};
  if (cur && cur != e) old = timer_disarm(te); /* armed on another core: move it here */
  art_lock_acquire(&e->timer_lock);
  if (ART_UNLIKELY(!e->wheel)) {
    e->wheel = art_wheel_new(atomic_load_explicit(&e->tick_now, memory_order_relaxed));
    if (!e->wheel) {
      art_lock_release(&e->timer_lock);
      art_waker_drop(&old);
      art_fail(ASYNCRT_ENOMEM, "asyncrt_timer_poll: no memory for the timer wheel");
      return timer_error(cx, ASYNCRT_ENOMEM);
    }
  }
  if (atomic_load_explicit(&te->core, memory_order_relaxed) == e) {
    /* Armed here already: move it if the deadline changed, keep the
     * newest waker. */
    if (te->link.deadline_ns != deadline) art_wheel_insert(e->wheel, &te->link, deadline);
  } else {
    art_wheel_insert(e->wheel, &te->link, deadline);
    armed_add(e, 1);
    atomic_store_explicit(&te->core, e, memory_order_relaxed);
  }
  asyncrt_waker replaced = {0};
  if (!art_waker_will_wake(&te->waker, &cx->waker)) {
    replaced = te->waker; /* dropped after the lock: its code may be anyone's */
    art_waker_clone(&cx->waker, &te->waker);
  }
  if (deadline < atomic_load_explicit(&e->timer_next, memory_order_relaxed))
    atomic_store_explicit(&e->timer_next, deadline, memory_order_relaxed);
  art_lock_release(&e->timer_lock);
  art_waker_drop(&old);
  art_waker_drop(&replaced);
  return ASYNCRT_POLL_PENDING;
}

/* ---- the host's fd --------------------------------------------------------- */

/* In host fd mode (asyncrt_executor_fd), timerfd in the core's epoll set is
 * kept armed for the earliest timer, so the host wakes for it. Only the
 * monotonic clock: a test clock's advance signals the core instead. */
void art_core_sync_timerfd(art_exec *e) {
  if (e->timerfd < 0 || e->clock->test || !atomic_load_explicit(&e->fd_mode, memory_order_relaxed)) return;
  uint64_t want = atomic_load_explicit(&e->timers_armed, memory_order_relaxed)
                      ? atomic_load_explicit(&e->timer_next, memory_order_relaxed)
                      : 0;
  if (want == UINT64_MAX) want = 0;
  if (e->timerfd_at && e->timerfd_at <= art_now_ns()) { /* expired: clear its readiness */
    uint64_t count;
    while (read(e->timerfd, &count, sizeof count) < 0 && errno == EINTR) {
    }
    e->timerfd_at = 0;
  }
  if (want == e->timerfd_at) return;
  struct itimerspec its = {.it_value = {(time_t)(want / 1000000000u), (long)(want % 1000000000u)}};
  if (want && !its.it_value.tv_sec && !its.it_value.tv_nsec) its.it_value.tv_nsec = 1;
  timerfd_settime(e->timerfd, TFD_TIMER_ABSTIME, &its, NULL);
  e->timerfd_at = want;
}

/* ---- sleep ----------------------------------------------------------------- */

enum { SLEEP_RELATIVE = 1u, SLEEP_STARTED = 2u };

static int sleep_poll(void *self, asyncrt_context *cx, void *out) {
  asyncrt_sleep *s = self;
  if (!(s->flags & SLEEP_STARTED)) {
    s->flags |= SLEEP_STARTED;
    if (s->flags & SLEEP_RELATIVE) {
      uint64_t now = cx && cx->exec ? art_clock_now(cx->exec->clock) : art_now_ns();
      s->deadline_ns = UINT64_MAX - now < s->duration_ns ? UINT64_MAX : now + s->duration_ns;
    }
  }
  return art_timer_poll(&s->timer, cx, s->deadline_ns);
}

static void sleep_drop(void *self) { art_timer_cancel(&((asyncrt_sleep *)self)->timer); }

static const asyncrt_future_vtable sleep_vtable = {
    .size = sizeof(asyncrt_future_vtable), .output_size = 0, .poll = sleep_poll, .drop = sleep_drop};

void art_sleep_init(asyncrt_sleep *s, uint64_t ns, int relative, asyncrt_future *out) {
  memset(s, 0, sizeof *s);
  if (relative) s->duration_ns = ns;
  else s->deadline_ns = ns;
  s->flags = relative ? SLEEP_RELATIVE : 0;
  *out = (asyncrt_future){s, &sleep_vtable};
}

/* ---- timeout --------------------------------------------------------------- */

enum { TIMEOUT_INNER_DROPPED = 1u };

static asyncrt_timeout *timeout_of(void *self) { return self; }

static void timeout_drop_inner(asyncrt_timeout *s) {
  if (s->flags & TIMEOUT_INNER_DROPPED) return;
  s->flags |= TIMEOUT_INNER_DROPPED;
  art_drop_future(&s->inner);
}

static int timeout_poll(void *self, asyncrt_context *cx, void *out) {
  asyncrt_timeout *s = timeout_of(self);
  if (s->flags & TIMEOUT_INNER_DROPPED) { /* polled after it finished */
    if (cx) cx->failure = ASYNCRT_EINVAL;
    return ASYNCRT_POLL_ERROR;
  }
  int r = s->inner.vtable->poll(s->inner.self, cx, out);
  if (r != ASYNCRT_POLL_PENDING) {
    if (r == ASYNCRT_POLL_READY || r == ASYNCRT_POLL_ERROR) {
      art_timer_cancel(&s->sleep.timer);
      timeout_drop_inner(s);
    }
    return r;
  }
  int t = sleep_poll(&s->sleep, cx, NULL);
  if (t == ASYNCRT_POLL_PENDING) return ASYNCRT_POLL_PENDING;
  timeout_drop_inner(s);
  if (t == ASYNCRT_POLL_READY && cx) cx->failure = ASYNCRT_ETIMEDOUT;
  return ASYNCRT_POLL_ERROR; /* timed out, or the timer failed (cx names why) */
}

static void timeout_drop(void *self) {
  asyncrt_timeout *s = timeout_of(self);
  art_timer_cancel(&s->sleep.timer);
  timeout_drop_inner(s);
}

void art_timeout_init(asyncrt_timeout *s, const asyncrt_future *inner, uint64_t ns, asyncrt_future *out) {
  memset(s, 0, sizeof *s);
  s->inner = *inner;
  s->vtable = (asyncrt_future_vtable){.size = sizeof(asyncrt_future_vtable),
                                      .output_size = inner->vtable->output_size,
                                      .poll = timeout_poll,
                                      .drop = timeout_drop};
  asyncrt_future ignored;
  art_sleep_init(&s->sleep, ns, 1, &ignored);
  *out = (asyncrt_future){s, &s->vtable};
}
