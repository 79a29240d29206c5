/* art_sync.c -- the async mutex, semaphore, notify and barrier.
 *
 * The four are one object (art_sync) with one FIFO queue of waiters and two
 * words of state whose meaning depends on the kind:
 *
 *   kind      count                           gen
 *   mutex     1 while held                    -
 *   semaphore permits available               -
 *   notify    1 while a permit is stored      notify_all calls
 *   barrier   waiters arrived this round      rounds released
 *
 * A waiter is an intrusive node in the caller's asyncrt_wait, the state of
 * the wait future. Its `state` goes IDLE (made, not queued) -> QUEUED (in
 * the queue, holding a clone of its poller's waker) -> GRANTED (taken off
 * the queue by whoever granted it: it now holds the lock, its permits, its
 * notification or its release) -> DONE (a poll returned READY). Only the
 * poller moves a waiter out of IDLE or into DONE; a granter moves it from
 * QUEUED to GRANTED, under the lock. The drop of a QUEUED waiter leaves the
 * queue; the drop of a GRANTED one gives back what it was granted and never
 * saw (a cancelled waiter ends up holding nothing).
 *
 * Every change of state is followed by pump(), which grants, from the head
 * of the queue, whatever the state now allows: the mutex to the first
 * waiter, permits to the waiters whose requests fit (in order: a large
 * request at the head holds back the small ones behind it), a notify_all or
 * a barrier round to every waiter queued before it (they carry the `gen`
 * they were queued under: the queue is sorted by it), a stored notify
 * permit to the first waiter.
 *
 * Threads: `lock` (an art_lock, skipped with ASYNCRT_SYNC_LOCAL) guards the
 * object and the fields of its waiters but `handle` and `kind`. No waker
 * and no user code runs under it: a granter moves the wakers it takes into
 * a batch and wakes them after the lock (in batches of WAKE_BATCH: a
 * notify_all of many waiters takes the lock again for each batch); a poll
 * clones its waker before taking the lock and drops the one it replaced
 * after. `waiters` counts the waiters QUEUED or GRANTED plus the calls
 * working on the object between batches, so that asyncrt_*_free refuses
 * (EBUSY) while anything may still touch the object, and a drop or a poll
 * never touches it after its last unlock.
 */
#include <stdlib.h>

#include "art.h"

enum { W_IDLE = 0, W_QUEUED = 1, W_GRANTED = 2, W_DONE = 3 };

/* What a granted notify waiter received: a notify_one is passed on if the
 * waiter is dropped before it sees it; a notify_all is not. */
enum { GRANT_NOTIFY_ONE = 1, GRANT_NOTIFY_ALL = 2 };

typedef struct art_sync_waiter art_sync_waiter;

struct art_sync {
  art_lock lock;
  uint8_t kind; /* ART_H_MUTEX .. ART_H_BARRIER */
  uint8_t local;
  uint32_t parties; /* barrier */
  uint64_t handle;
  art_sync_waiter *head, *tail;
  uint64_t waiters;
  uint64_t count, gen; /* see the table above */
};

struct art_sync_waiter {
  art_sync_waiter *prev, *next;
  asyncrt_waker waker; /* QUEUED: the poller's; taken by the granter */
  art_sync *obj;       /* set when queued; valid while QUEUED or GRANTED */
  uint64_t handle;     /* resolved by the first poll (the object may be gone) */
  /* Semaphore: permits wanted. Notify: gen when made, then what granted it.
   * Barrier: the round it was queued in. */
  uint64_t arg;
  _Atomic uint32_t state;
  uint32_t kind;
};

_Static_assert(sizeof(art_sync_waiter) <= sizeof(asyncrt_wait), "asyncrt_wait holds a waiter");
_Static_assert(_Alignof(art_sync_waiter) <= _Alignof(asyncrt_wait), "asyncrt_wait alignment");

#define WAKE_BATCH 32u

typedef struct wake_batch {
  unsigned n;
  asyncrt_waker w[WAKE_BATCH];
} wake_batch;

static inline void sync_lock(art_sync *s) {
  if (!s->local) art_lock_acquire(&s->lock);
}
static inline void sync_unlock(art_sync *s) {
  if (!s->local) art_lock_release(&s->lock);
}

static inline uint32_t wstate(const art_sync_waiter *w) {
  return atomic_load_explicit(&((art_sync_waiter *)w)->state, memory_order_relaxed);
}
static inline void wstate_set(art_sync_waiter *w, uint32_t st) {
  atomic_store_explicit(&w->state, st, memory_order_relaxed);
}

static const char *kind_name(int kind) {
  switch (kind) {
  case ART_H_MUTEX: return "mutex";
  case ART_H_SEMAPHORE: return "semaphore";
  case ART_H_NOTIFY: return "notify";
  default: return "barrier";
  }
}

/* ---- the queue (under the lock) -------------------------------------------- */

static void enqueue(art_sync *s, art_sync_waiter *w) {
  w->obj = s;
  w->next = NULL;
  w->prev = s->tail;
  if (s->tail) s->tail->next = w;
  else s->head = w;
  s->tail = w;
  wstate_set(w, W_QUEUED); /* its count was taken when the future was made */
}

static void unlink_waiter(art_sync *s, art_sync_waiter *w) {
  if (w->prev) w->prev->next = w->next;
  else s->head = w->next;
  if (w->next) w->next->prev = w->prev;
  else s->tail = w->prev;
  w->prev = w->next = NULL;
}

/* Takes the head off the queue as GRANTED, its waker into the batch. */
static void grant_head(art_sync *s, wake_batch *b) {
  art_sync_waiter *w = s->head;
  unlink_waiter(s, w);
  b->w[b->n++] = w->waker;
  w->waker = (asyncrt_waker){0};
  wstate_set(w, W_GRANTED);
}

/* Grants what the state allows (see the top of the file). Returns 1 if the
 * batch filled up and there may be more to grant. */
static int pump(art_sync *s, wake_batch *b) {
  for (; s->head; grant_head(s, b)) {
    if (b->n == WAKE_BATCH) return 1;
    art_sync_waiter *h = s->head;
    switch (s->kind) {
    case ART_H_MUTEX:
      if (s->count) return 0;
      s->count = 1;
      break;
    case ART_H_SEMAPHORE:
      if (h->arg > s->count) return 0;
      s->count -= h->arg;
      break;
    case ART_H_NOTIFY:
      if (h->arg < s->gen) h->arg = GRANT_NOTIFY_ALL;
      else if (s->count) s->count = 0, h->arg = GRANT_NOTIFY_ONE;
      else return 0;
      break;
    default: /* barrier */
      if (h->arg >= s->gen) return 0;
      break;
    }
  }
  return 0;
}

/* Pumps, releases the lock and wakes what was granted, in batches. The
 * caller holds one count of `waiters` (see the top of the file): it is given
 * back at the last unlock, after which the object is not touched. */
static void pump_and_unlock(art_sync *s) {
  wake_batch b;
  for (;;) {
    b.n = 0;
    int more = pump(s, &b);
    if (!more) s->waiters--;
    sync_unlock(s);
    for (unsigned i = 0; i < b.n; i++) art_waker_wake(&b.w[i]);
    if (!more) return;
    sync_lock(s);
  }
}

/* ---- objects ----------------------------------------------------------------- */

int art_sync_new(int kind, unsigned flags, uint64_t count, uint32_t parties, art_sync **out) {
  art_sync *s = calloc(1, sizeof *s);
  if (!s) return art_fail(ASYNCRT_ENOMEM, "asyncrt_%s_new: out of memory", kind_name(kind));
  s->kind = (uint8_t)kind;
  s->local = (flags & ASYNCRT_SYNC_LOCAL) != 0;
  s->count = count;
  s->parties = parties;
  s->handle = art_handle_new(kind, s);
  if (!s->handle) {
    free(s);
    return art_fail(ASYNCRT_ENOMEM, "asyncrt_%s_new: out of handles", kind_name(kind));
  }
  *out = s;
  return ASYNCRT_OK;
}

uint64_t art_sync_handle(const art_sync *s) { return s->handle; }

int art_sync_free(art_sync *s) {
  /* Racing frees: the handle table picks one before anyone touches s. */
  int kind = s->kind;
  if (!art_handle_claim(s->handle, kind))
    return art_fail(ASYNCRT_EHANDLE, "asyncrt_%s_free: freed by another thread", kind_name(kind));
  sync_lock(s);
  if (s->waiters) {
    uint64_t n = s->waiters;
    sync_unlock(s);
    art_handle_unclaim(s->handle, kind);
    return art_fail(ASYNCRT_EBUSY, "asyncrt_%s_free: %llu wait future(s) still on it", kind_name(kind),
                    (unsigned long long)n);
  }
  art_handle_free(s->handle);
  sync_unlock(s);
  free(s);
  return ASYNCRT_OK;
}

/* ---- the operations without waiting ---------------------------------------- */

int art_mutex_try_lock(art_sync *s) {
  sync_lock(s);
  int took = !s->count && !s->head;
  if (took) s->count = 1;
  sync_unlock(s);
  return took ? ASYNCRT_OK : ASYNCRT_EAGAIN;
}

int art_mutex_unlock(art_sync *s) {
  sync_lock(s);
  if (!s->count) {
    sync_unlock(s);
    return art_fail(ASYNCRT_EINVAL, "asyncrt_mutex_unlock: the mutex is not held");
  }
  s->count = 0;
  s->waiters++;
  pump_and_unlock(s);
  return ASYNCRT_OK;
}

int art_semaphore_try_acquire(art_sync *s, uint64_t n) {
  sync_lock(s);
  int took = !s->head && s->count >= n;
  if (took) s->count -= n;
  sync_unlock(s);
  return took ? ASYNCRT_OK : ASYNCRT_EAGAIN;
}

int art_semaphore_release(art_sync *s, uint64_t n) {
  sync_lock(s);
  if (s->count > UINT64_MAX - n) {
    sync_unlock(s);
    return art_fail(ASYNCRT_EINVAL, "asyncrt_semaphore_release: %llu more permits would pass UINT64_MAX",
                    (unsigned long long)n);
  }
  s->count += n;
  s->waiters++;
  pump_and_unlock(s);
  return ASYNCRT_OK;
}

uint64_t art_semaphore_available(art_sync *s) {
  sync_lock(s);
  uint64_t n = s->count;
  sync_unlock(s);
  return n;
}

void art_notify_one(art_sync *s) {
  sync_lock(s);
  s->count = 1; /* granted to the first waiter by the pump, or stored */
  s->waiters++;
  pump_and_unlock(s);
}

void art_notify_all(art_sync *s) {
  sync_lock(s);
  s->gen++;
  s->waiters++;
  pump_and_unlock(s);
}

/* ---- the wait future ------------------------------------------------------- */

/* In an IDLE waiter's first poll, under the lock: completes it at once if
 * the state allows (1), else 0 and nothing changed. */
static int try_now(art_sync *s, art_sync_waiter *w, uint32_t *leader) {
  switch (s->kind) {
  case ART_H_MUTEX:
    if (s->count || s->head) return 0;
    s->count = 1;
    return 1;
  case ART_H_SEMAPHORE:
    if (s->head || s->count < w->arg) return 0;
    s->count -= w->arg;
    return 1;
  case ART_H_NOTIFY:
    if (w->arg != s->gen) return 1; /* a notify_all since the future was made */
    if (!s->count) return 0;
    s->count = 0;
    return 1;
  default: /* barrier: the last to arrive leads, and releases the round */
    if (s->count + 1 < s->parties) return 0;
    s->count = 0;
    s->gen++;
    *leader = 1;
    return 1;
  }
}

static void queue_waiter(art_sync *s, art_sync_waiter *w) {
  if (s->kind == ART_H_BARRIER) {
    s->count++;
    w->arg = s->gen;
  }
  enqueue(s, w);
}

static int wait_fail(asyncrt_context *cx, int status) {
  if (cx) cx->failure = status;
  return ASYNCRT_POLL_ERROR;
}

static int wait_poll(void *self, asyncrt_context *cx, void *out) {
  art_sync_waiter *w = self;
  uint32_t st = wstate(w), leader = 0;
  if (!cx) return wait_fail(cx, art_fail(ASYNCRT_EINVAL, "asyncrt_wait: polled without a context"));
  if (st == W_DONE)
    return wait_fail(cx, art_fail(ASYNCRT_EINVAL, "asyncrt_wait: the %s wait was polled after it completed",
                                  kind_name((int)w->kind)));
  art_sync *s = w->obj; /* pinned: the future counts in `waiters` from its making */
  asyncrt_waker fresh = {0}, stale = {0};
  int ready = 0;
  sync_lock(s);
  s->waiters++; /* this poll's count, given back by pump_and_unlock */
  for (;;) {
    st = wstate(w);
    if (st == W_GRANTED) {
      s->waiters--; /* the waiter's own count */
      ready = 1;
      break;
    }
    if (st == W_IDLE && try_now(s, w, &leader)) {
      s->waiters--; /* the waiter's own count */
      ready = 1;
      break;
    }
    if (st == W_QUEUED && art_waker_will_wake(&w->waker, &cx->waker)) break;
    if (fresh.vtable || !cx->waker.vtable) { /* a clone of the waker in hand */
      stale = w->waker;
      w->waker = fresh;
      fresh = (asyncrt_waker){0};
      if (st == W_IDLE) queue_waiter(s, w);
      break;
    }
    /* Clone outside the lock, then look again: the state may have moved. */
    sync_unlock(s);
    art_waker_clone(&cx->waker, &fresh);
    sync_lock(s);
  }
  if (ready) wstate_set(w, W_DONE);
  pump_and_unlock(s);
  art_waker_drop(&fresh);
  art_waker_drop(&stale);
  if (!ready) return ASYNCRT_POLL_PENDING;
  if (w->kind == ART_H_BARRIER && out) *(uint32_t *)out = leader;
  return ASYNCRT_POLL_READY;
}

static void wait_drop(void *self) {
  art_sync_waiter *w = self;
  uint32_t st = wstate(w);
  if (st == W_DONE) return; /* completed: its count was given back */
  art_sync *s = w->obj;
  asyncrt_waker mine = {0};
  sync_lock(s);
  st = wstate(w);
  if (st == W_IDLE) {
    /* Never polled into the queue: nothing held; the count goes back below. */
  } else if (st == W_QUEUED) {
    unlink_waiter(s, w);
    mine = w->waker;
    w->waker = (asyncrt_waker){0};
    /* A barrier waiter leaves its round uncounted -- unless the round was
     * released already and only its grant had not come yet. */
    if (s->kind == ART_H_BARRIER && w->arg == s->gen) s->count--;
  } else { /* GRANTED and never observed: give it back */
    switch (s->kind) {
    case ART_H_MUTEX: s->count = 0; break;
    case ART_H_SEMAPHORE: s->count += w->arg; break;
    case ART_H_NOTIFY:
      if (w->arg == GRANT_NOTIFY_ONE) s->count = 1;
      break;
    default: break; /* a barrier's round was released whoever sees it */
    }
  }
  wstate_set(w, W_DONE);
  /* The waiter's count becomes this call's, given back at the last unlock. */
  pump_and_unlock(s);
  art_waker_drop(&mine);
}

static const asyncrt_future_vtable wait_vtable = {
    .size = sizeof(asyncrt_future_vtable), .output_size = 0, .poll = wait_poll, .drop = wait_drop};
static const asyncrt_future_vtable barrier_wait_vtable = {
    .size = sizeof(asyncrt_future_vtable), .output_size = sizeof(uint32_t), .poll = wait_poll, .drop = wait_drop};

void art_sync_wait_init(art_sync *s, uint64_t permits, asyncrt_wait *storage, asyncrt_future *out) {
  art_sync_waiter *w = (art_sync_waiter *)storage;
  *w = (art_sync_waiter){.handle = s->handle, .kind = s->kind, .arg = permits, .obj = s};
  /* The future pins the object: it counts in `waiters` (free gives EBUSY)
   * until it completes or is dropped, so no poll meets a freed object. */
  sync_lock(s);
  s->waiters++;
  if (s->kind == ART_H_NOTIFY) w->arg = s->gen; /* a notify_all from now on completes it */
  sync_unlock(s);
  *out = (asyncrt_future){w, s->kind == ART_H_BARRIER ? &barrier_wait_vtable : &wait_vtable};
}
