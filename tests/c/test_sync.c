/* Synchronization: the mutex's FIFO order and its cancelled waiters, the
 * semaphore's FIFO (a large request is not starved), notify's permit
 * semantics, the barrier's one leader per round, the thread-safe forms
 * under a two-worker executor, the local forms on a local executor, and
 * misuse.
 *
 * The single-threaded tests poll the wait futures by hand with a counting
 * waker (asyncrt_poll_with_waker), so every outcome -- who was woken, who
 * holds the lock -- is exact. Every waker clone is released by the end of
 * each test (clones == drops). */
#include "check.h" /* first: it sets _POSIX_C_SOURCE */
#include "testfut.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* --- a counting waker ---------------------------------------------------------- */

typedef struct cw {
  int wakes, clones, drops; /* drops counts releases: wake and drop */
} cw;

static void cw_clone(const void *data, asyncrt_waker *out);
static void cw_wake(const void *data) {
  tf_add(&((cw *)data)->wakes, 1);
  tf_add(&((cw *)data)->drops, 1);
}
static void cw_wake_by_ref(const void *data) { tf_add(&((cw *)data)->wakes, 1); }
static void cw_drop(const void *data) { tf_add(&((cw *)data)->drops, 1); }
static const asyncrt_waker_vtable cw_vtable = {cw_clone, cw_wake, cw_wake_by_ref, cw_drop};
static void cw_clone(const void *data, asyncrt_waker *out) {
  tf_add(&((cw *)data)->clones, 1);
  out->data = data;
  out->vtable = &cw_vtable;
}

/* A waiter polled by hand: its future, its storage and its waker. */
typedef struct hw {
  asyncrt_wait w;
  asyncrt_future f;
  cw waker;
  int live; /* the future has not been dropped */
} hw;

static int hw_poll(hw *h, void *out, int *failure) {
  asyncrt_waker wk;
  wk.data = &h->waker;
  wk.vtable = &cw_vtable;
  return asyncrt_poll_with_waker(&h->f, &wk, out, failure);
}

static void hw_drop(hw *h) {
  if (h->live) {
    h->live = 0;
    h->f.vtable->drop(h->f.self);
  }
}

static int hw_balanced(const hw *h) { return h->waker.clones == h->waker.drops; }

/* --- mutex ------------------------------------------------------------------- */

static void test_mutex_fifo(void) {
  asyncrt_mutex *m = NULL;
  hw h[3];
  int i, k;
  memset(h, 0, sizeof h);
  CHECK_OK(asyncrt_mutex_new(0, &m));
  CHECK_OK(asyncrt_mutex_try_lock(m));
  for (i = 0; i < 3; i++) {
    CHECK_OK(asyncrt_mutex_lock(m, &h[i].w, &h[i].f));
    h[i].live = 1;
    CHECK_INT(h[i].f.vtable->output_size, 0);
    CHECK_INT(hw_poll(&h[i], NULL, NULL), ASYNCRT_POLL_PENDING);
  }
  CHECK_STATUS(asyncrt_mutex_try_lock(m), ASYNCRT_EAGAIN);
  CHECK_STATUS(asyncrt_mutex_free(m), ASYNCRT_EBUSY);
  /* Each unlock hands the lock to the longest waiter, and wakes only it. */
  for (i = 0; i < 3; i++) {
    CHECK_OK(asyncrt_mutex_unlock(m));
    for (k = 0; k < 3; k++) CHECK_INT(h[k].waker.wakes, k <= i ? 1 : 0);
    for (k = i + 1; k < 3; k++) CHECK_INT(hw_poll(&h[k], NULL, NULL), ASYNCRT_POLL_PENDING);
    CHECK_INT(hw_poll(&h[i], NULL, NULL), ASYNCRT_POLL_READY);
    CHECK_STATUS(asyncrt_mutex_try_lock(m), ASYNCRT_EAGAIN);
    hw_drop(&h[i]);
  }
  CHECK_OK(asyncrt_mutex_unlock(m));
  CHECK_STATUS(asyncrt_mutex_unlock(m), ASYNCRT_EINVAL);
  for (i = 0; i < 3; i++) CHECK(hw_balanced(&h[i]));
  CHECK_OK(asyncrt_mutex_free(m));
}

/* A free mutex is taken by the first poll, without a waker clone. */
static void test_mutex_uncontended(void) {
  asyncrt_mutex *m = NULL;
  hw h;
  memset(&h, 0, sizeof h);
  CHECK_OK(asyncrt_mutex_new(0, &m));
  CHECK_OK(asyncrt_mutex_lock(m, &h.w, &h.f));
  h.live = 1;
  CHECK_INT(hw_poll(&h, NULL, NULL), ASYNCRT_POLL_READY);
  CHECK_INT(h.waker.clones, 0);
  hw_drop(&h); /* completed: the drop gives nothing back */
  CHECK_STATUS(asyncrt_mutex_try_lock(m), ASYNCRT_EAGAIN);
  CHECK_OK(asyncrt_mutex_unlock(m));
  CHECK_OK(asyncrt_mutex_try_lock(m));
  CHECK_OK(asyncrt_mutex_unlock(m));
  CHECK_OK(asyncrt_mutex_free(m));
}

/* A cancelled waiter never ends up holding the lock: queued and dropped;
 * granted and dropped before its next poll (the lock goes on to the next
 * waiter, or is released); made and dropped without a poll. */
static void test_mutex_cancelled_waiters(void) {
  asyncrt_mutex *m = NULL;
  hw a, b, c, d;
  memset(&a, 0, sizeof a);
  memset(&b, 0, sizeof b);
  memset(&c, 0, sizeof c);
  memset(&d, 0, sizeof d);
  CHECK_OK(asyncrt_mutex_new(0, &m));
  CHECK_OK(asyncrt_mutex_try_lock(m));
  CHECK_OK(asyncrt_mutex_lock(m, &a.w, &a.f));
  a.live = 1;
  CHECK_OK(asyncrt_mutex_lock(m, &b.w, &b.f));
  b.live = 1;
  CHECK_OK(asyncrt_mutex_lock(m, &c.w, &c.f));
  c.live = 1;
  CHECK_OK(asyncrt_mutex_lock(m, &d.w, &d.f));
  d.live = 1;
  CHECK_INT(hw_poll(&a, NULL, NULL), ASYNCRT_POLL_PENDING);
  CHECK_INT(hw_poll(&b, NULL, NULL), ASYNCRT_POLL_PENDING);
  CHECK_INT(hw_poll(&c, NULL, NULL), ASYNCRT_POLL_PENDING);
  hw_drop(&d); /* never polled */
  hw_drop(&a); /* queued, dropped: it leaves the queue */
  CHECK_INT(a.waker.wakes, 0);
  CHECK_OK(asyncrt_mutex_unlock(m)); /* b is next */
  CHECK_INT(b.waker.wakes, 1);
  CHECK_INT(c.waker.wakes, 0);
  hw_drop(&b); /* granted, never saw it: the lock goes on to c */
  CHECK_INT(c.waker.wakes, 1);
  CHECK_STATUS(asyncrt_mutex_try_lock(m), ASYNCRT_EAGAIN);
  CHECK_INT(hw_poll(&c, NULL, NULL), ASYNCRT_POLL_READY);
  hw_drop(&c);
  CHECK_OK(asyncrt_mutex_unlock(m));
  CHECK_STATUS(asyncrt_mutex_unlock(m), ASYNCRT_EINVAL); /* nobody holds it */

  /* Granted and dropped with nobody behind it: the lock is released. */
  memset(&a, 0, sizeof a);
  CHECK_OK(asyncrt_mutex_try_lock(m));
  CHECK_OK(asyncrt_mutex_lock(m, &a.w, &a.f));
  a.live = 1;
  CHECK_INT(hw_poll(&a, NULL, NULL), ASYNCRT_POLL_PENDING);
  CHECK_OK(asyncrt_mutex_unlock(m));
  CHECK_INT(a.waker.wakes, 1);
  hw_drop(&a);
  CHECK_OK(asyncrt_mutex_try_lock(m));
  CHECK_OK(asyncrt_mutex_unlock(m));
  CHECK(hw_balanced(&a) && hw_balanced(&b) && hw_balanced(&c) && hw_balanced(&d));
  CHECK_OK(asyncrt_mutex_free(m));
}

/* A second poll with another waker replaces the one held; the first is
 * released (and never woken). */
static void test_mutex_waker_refresh(void) {
  asyncrt_mutex *m = NULL;
  hw a;
  cw other;
  asyncrt_waker wk;
  memset(&a, 0, sizeof a);
  memset(&other, 0, sizeof other);
  CHECK_OK(asyncrt_mutex_new(0, &m));
  CHECK_OK(asyncrt_mutex_try_lock(m));
  CHECK_OK(asyncrt_mutex_lock(m, &a.w, &a.f));
  a.live = 1;
  CHECK_INT(hw_poll(&a, NULL, NULL), ASYNCRT_POLL_PENDING);
  CHECK_INT(hw_poll(&a, NULL, NULL), ASYNCRT_POLL_PENDING); /* same waker: no new clone */
  CHECK_INT(a.waker.clones, 1);
  wk.data = &other;
  wk.vtable = &cw_vtable;
  CHECK_INT(asyncrt_poll_with_waker(&a.f, &wk, NULL, NULL), ASYNCRT_POLL_PENDING);
  CHECK_INT(a.waker.drops, 1);
  CHECK_OK(asyncrt_mutex_unlock(m));
  CHECK_INT(a.waker.wakes, 0);
  CHECK_INT(other.wakes, 1);
  CHECK_INT(asyncrt_poll_with_waker(&a.f, &wk, NULL, NULL), ASYNCRT_POLL_READY);
  hw_drop(&a);
  CHECK(hw_balanced(&a));
  CHECK_INT(other.clones, other.drops);
  CHECK_OK(asyncrt_mutex_unlock(m));
  CHECK_OK(asyncrt_mutex_free(m));
}

/* --- semaphore ----------------------------------------------------------------- */

static void test_semaphore_fifo(void) {
  asyncrt_semaphore *s = NULL;
  hw big, small;
  uint64_t avail = 99;
  memset(&big, 0, sizeof big);
  memset(&small, 0, sizeof small);
  CHECK_OK(asyncrt_semaphore_new(0, 1, &s));
  CHECK_OK(asyncrt_semaphore_acquire(s, 3, &big.w, &big.f));
  big.live = 1;
  CHECK_OK(asyncrt_semaphore_acquire(s, 1, &small.w, &small.f));
  small.live = 1;
  CHECK_INT(hw_poll(&big, NULL, NULL), ASYNCRT_POLL_PENDING);
  /* One permit is there, but the large request came first. */
  CHECK_INT(hw_poll(&small, NULL, NULL), ASYNCRT_POLL_PENDING);
  CHECK_STATUS(asyncrt_semaphore_try_acquire(s, 1), ASYNCRT_EAGAIN);
  CHECK_OK(asyncrt_semaphore_release(s, 1));
  CHECK_INT(big.waker.wakes + small.waker.wakes, 0);
  CHECK_OK(asyncrt_semaphore_available(s, &avail));
  CHECK_INT(avail, 2);
  CHECK_OK(asyncrt_semaphore_release(s, 1));
  CHECK_INT(big.waker.wakes, 1);
  CHECK_INT(small.waker.wakes, 0);
  CHECK_OK(asyncrt_semaphore_available(s, &avail));
  CHECK_INT(avail, 0);
  CHECK_INT(hw_poll(&big, NULL, NULL), ASYNCRT_POLL_READY);
  hw_drop(&big);
  CHECK_INT(hw_poll(&small, NULL, NULL), ASYNCRT_POLL_PENDING);
  CHECK_OK(asyncrt_semaphore_release(s, 3));
  CHECK_INT(small.waker.wakes, 1);
  CHECK_INT(hw_poll(&small, NULL, NULL), ASYNCRT_POLL_READY);
  hw_drop(&small);
  CHECK_OK(asyncrt_semaphore_available(s, &avail));
  CHECK_INT(avail, 2);
  CHECK_OK(asyncrt_semaphore_try_acquire(s, 2));
  CHECK_STATUS(asyncrt_semaphore_try_acquire(s, 1), ASYNCRT_EAGAIN);
  CHECK(hw_balanced(&big) && hw_balanced(&small));
  CHECK_OK(asyncrt_semaphore_free(s));
}

/* A dropped waiter at the head lets the ones behind it through; a granted
 * waiter dropped before it saw its permits gives them back. */
static void test_semaphore_cancelled_waiters(void) {
  asyncrt_semaphore *s = NULL;
  hw big, small;
  uint64_t avail = 99;
  memset(&big, 0, sizeof big);
  memset(&small, 0, sizeof small);
  CHECK_OK(asyncrt_semaphore_new(0, 1, &s));
  CHECK_OK(asyncrt_semaphore_acquire(s, 3, &big.w, &big.f));
  big.live = 1;
  CHECK_OK(asyncrt_semaphore_acquire(s, 1, &small.w, &small.f));
  small.live = 1;
  CHECK_INT(hw_poll(&big, NULL, NULL), ASYNCRT_POLL_PENDING);
  CHECK_INT(hw_poll(&small, NULL, NULL), ASYNCRT_POLL_PENDING);
  hw_drop(&big);
  CHECK_INT(small.waker.wakes, 1);
  CHECK_INT(hw_poll(&small, NULL, NULL), ASYNCRT_POLL_READY);
  hw_drop(&small);
  CHECK_OK(asyncrt_semaphore_available(s, &avail));
  CHECK_INT(avail, 0);

  memset(&big, 0, sizeof big);
  CHECK_OK(asyncrt_semaphore_acquire(s, 2, &big.w, &big.f));
  big.live = 1;
  CHECK_INT(hw_poll(&big, NULL, NULL), ASYNCRT_POLL_PENDING);
  CHECK_OK(asyncrt_semaphore_release(s, 2));
  CHECK_INT(big.waker.wakes, 1);
  CHECK_OK(asyncrt_semaphore_available(s, &avail));
  CHECK_INT(avail, 0); /* granted */
  hw_drop(&big);
  CHECK_OK(asyncrt_semaphore_available(s, &avail));
  CHECK_INT(avail, 2); /* given back */
  CHECK(hw_balanced(&big) && hw_balanced(&small));
  CHECK_OK(asyncrt_semaphore_free(s));
}

/* --- notify -------------------------------------------------------------------- */

static void test_notify_permit(void) {
  asyncrt_notify *n = NULL;
  hw a, b;
  memset(&a, 0, sizeof a);
  memset(&b, 0, sizeof b);
  CHECK_OK(asyncrt_notify_new(0, &n));
  /* Nobody waits: one permit is stored, however many notify_one calls. */
  CHECK_OK(asyncrt_notify_one(n));
  CHECK_OK(asyncrt_notify_one(n));
  CHECK_OK(asyncrt_notify_wait(n, &a.w, &a.f));
  a.live = 1;
  CHECK_OK(asyncrt_notify_wait(n, &b.w, &b.f));
  b.live = 1;
  CHECK_INT(hw_poll(&a, NULL, NULL), ASYNCRT_POLL_READY);
  CHECK_INT(hw_poll(&b, NULL, NULL), ASYNCRT_POLL_PENDING);
  hw_drop(&a);
  hw_drop(&b);
  /* notify_all stores nothing. */
  memset(&a, 0, sizeof a);
  CHECK_OK(asyncrt_notify_all(n));
  CHECK_OK(asyncrt_notify_wait(n, &a.w, &a.f));
  a.live = 1;
  CHECK_INT(hw_poll(&a, NULL, NULL), ASYNCRT_POLL_PENDING);
  hw_drop(&a);
  CHECK(hw_balanced(&a) && hw_balanced(&b));
  CHECK_OK(asyncrt_notify_free(n));
}

static void test_notify_waiters(void) {
  asyncrt_notify *n = NULL;
  hw a, b, c, late;
  memset(&a, 0, sizeof a);
  memset(&b, 0, sizeof b);
  memset(&c, 0, sizeof c);
  memset(&late, 0, sizeof late);
  CHECK_OK(asyncrt_notify_new(0, &n));
  CHECK_OK(asyncrt_notify_wait(n, &a.w, &a.f));
  a.live = 1;
  CHECK_OK(asyncrt_notify_wait(n, &b.w, &b.f));
  b.live = 1;
  CHECK_OK(asyncrt_notify_wait(n, &c.w, &c.f));
  c.live = 1;
  CHECK_INT(hw_poll(&a, NULL, NULL), ASYNCRT_POLL_PENDING);
  CHECK_INT(hw_poll(&b, NULL, NULL), ASYNCRT_POLL_PENDING);
  CHECK_INT(hw_poll(&c, NULL, NULL), ASYNCRT_POLL_PENDING);
  /* notify_one: the longest waiter only. */
  CHECK_OK(asyncrt_notify_one(n));
  CHECK_INT(a.waker.wakes, 1);
  CHECK_INT(b.waker.wakes + c.waker.wakes, 0);
  /* a drops its notification unseen: it goes on to b. */
  hw_drop(&a);
  CHECK_INT(b.waker.wakes, 1);
  CHECK_INT(c.waker.wakes, 0);
  /* A future made now but polled only after the notify_all completes too
   * (it was made before it); one made after it does not. */
  CHECK_OK(asyncrt_notify_wait(n, &late.w, &late.f));
  late.live = 1;
  CHECK_OK(asyncrt_notify_all(n));
  CHECK_INT(c.waker.wakes, 1);
  CHECK_INT(b.waker.wakes, 1);
  CHECK_INT(hw_poll(&b, NULL, NULL), ASYNCRT_POLL_READY);
  CHECK_INT(hw_poll(&c, NULL, NULL), ASYNCRT_POLL_READY);
  CHECK_INT(hw_poll(&late, NULL, NULL), ASYNCRT_POLL_READY);
  hw_drop(&b);
  hw_drop(&c);
  hw_drop(&late);
  memset(&a, 0, sizeof a);
  CHECK_OK(asyncrt_notify_wait(n, &a.w, &a.f));
  a.live = 1;
  CHECK_INT(hw_poll(&a, NULL, NULL), ASYNCRT_POLL_PENDING);
  /* A notify_all'ed waiter that is dropped unseen passes nothing on. */
  CHECK_OK(asyncrt_notify_all(n));
  hw_drop(&a);
  memset(&b, 0, sizeof b);
  CHECK_OK(asyncrt_notify_wait(n, &b.w, &b.f));
  b.live = 1;
  CHECK_INT(hw_poll(&b, NULL, NULL), ASYNCRT_POLL_PENDING);
  hw_drop(&b);
  /* notify_one with a dropped sole waiter: the permit is stored. */
  memset(&a, 0, sizeof a);
  CHECK_OK(asyncrt_notify_wait(n, &a.w, &a.f));
  a.live = 1;
  CHECK_INT(hw_poll(&a, NULL, NULL), ASYNCRT_POLL_PENDING);
  CHECK_OK(asyncrt_notify_one(n));
  hw_drop(&a);
  memset(&b, 0, sizeof b);
  CHECK_OK(asyncrt_notify_wait(n, &b.w, &b.f));
  b.live = 1;
  CHECK_INT(hw_poll(&b, NULL, NULL), ASYNCRT_POLL_READY);
  hw_drop(&b);
  CHECK(hw_balanced(&a) && hw_balanced(&b) && hw_balanced(&c) && hw_balanced(&late));
  CHECK_OK(asyncrt_notify_free(n));
}

/* --- barrier ------------------------------------------------------------------- */

static void test_barrier_rounds(void) {
  asyncrt_barrier *b = NULL;
  hw h[3];
  uint32_t leader;
  int round, i, leaders;
  CHECK_OK(asyncrt_barrier_new(0, 3, &b));
  for (round = 0; round < 3; round++) {
    memset(h, 0, sizeof h);
    leaders = 0;
    for (i = 0; i < 3; i++) {
      CHECK_OK(asyncrt_barrier_wait(b, &h[i].w, &h[i].f));
      h[i].live = 1;
      CHECK_INT(h[i].f.vtable->output_size, sizeof(uint32_t));
    }
    CHECK_INT(hw_poll(&h[0], &leader, NULL), ASYNCRT_POLL_PENDING);
    CHECK_INT(hw_poll(&h[1], &leader, NULL), ASYNCRT_POLL_PENDING);
    leader = 7;
    CHECK_INT(hw_poll(&h[2], &leader, NULL), ASYNCRT_POLL_READY);
    CHECK_INT(leader, 1); /* the last to arrive leads */
    leaders++;
    CHECK_INT(h[0].waker.wakes, 1);
    CHECK_INT(h[1].waker.wakes, 1);
    for (i = 0; i < 2; i++) {
      leader = 7;
      CHECK_INT(hw_poll(&h[i], &leader, NULL), ASYNCRT_POLL_READY);
      CHECK_INT(leader, 0);
    }
    CHECK_INT(leaders, 1);
    for (i = 0; i < 3; i++) {
      hw_drop(&h[i]);
      CHECK(hw_balanced(&h[i]));
    }
  }
  /* A dropped waiter leaves: it is not counted. */
  memset(h, 0, sizeof h);
  for (i = 0; i < 3; i++) {
    CHECK_OK(asyncrt_barrier_wait(b, &h[i].w, &h[i].f));
    h[i].live = 1;
  }
  CHECK_INT(hw_poll(&h[0], &leader, NULL), ASYNCRT_POLL_PENDING);
  CHECK_INT(hw_poll(&h[1], &leader, NULL), ASYNCRT_POLL_PENDING);
  hw_drop(&h[0]);
  CHECK_INT(hw_poll(&h[2], &leader, NULL), ASYNCRT_POLL_PENDING);
  CHECK_STATUS(asyncrt_barrier_free(b), ASYNCRT_EBUSY);
  hw_drop(&h[1]);
  hw_drop(&h[2]);
  for (i = 0; i < 3; i++) CHECK(hw_balanced(&h[i]));
  /* ... and the round starts over. */
  memset(h, 0, sizeof h);
  for (i = 0; i < 3; i++) {
    CHECK_OK(asyncrt_barrier_wait(b, &h[i].w, &h[i].f));
    h[i].live = 1;
    CHECK_INT(hw_poll(&h[i], &leader, NULL), i < 2 ? ASYNCRT_POLL_PENDING : ASYNCRT_POLL_READY);
  }
  for (i = 0; i < 3; i++) hw_drop(&h[i]);
  CHECK_OK(asyncrt_barrier_free(b));
  /* One party: everyone leads. */
  CHECK_OK(asyncrt_barrier_new(0, 1, &b));
  memset(h, 0, sizeof h);
  CHECK_OK(asyncrt_barrier_wait(b, &h[0].w, &h[0].f));
  h[0].live = 1;
  leader = 0;
  CHECK_INT(hw_poll(&h[0], &leader, NULL), ASYNCRT_POLL_READY);
  CHECK_INT(leader, 1);
  hw_drop(&h[0]);
  CHECK_OK(asyncrt_barrier_free(b));
}

/* --- tasks on executors ---------------------------------------------------------- */

#define STRESS_TASKS 4
#define STRESS_ITERS 10000
#define BARRIER_ROUNDS 300

/* A task that awaits one wait future at a time: `step` says what to make
 * next and what to do once it completes (it returns an asyncrt_poll value
 * to end the task, or -1 to go on). Every 8th completion holds on across a
 * yield, so that waiters really queue. */
typedef struct sync_task sync_task;
typedef int (*sync_make_fn)(sync_task *t);
typedef int (*sync_done_fn)(sync_task *t, uint32_t output);

struct sync_task {
  void *obj;
  sync_make_fn make;
  sync_done_fn done;
  int iters, count;
  int waiting, holding;
  uint64_t permits;
  asyncrt_wait w;
  asyncrt_future f;
  long *counter;     /* plain: guarded by the mutex under test */
  int *in_use;       /* semaphore: permits held now (atomic) */
  int *over;         /* semaphore: times in_use passed the permits */
  int *round_leaders; /* barrier: leaders per round (atomic) */
  int fails;
};

static int sync_task_poll(void *self, asyncrt_context *cx, void *out) {
  sync_task *t = self;
  uint32_t output = 0;
  int r;
  (void)out;
  while (t->count < t->iters) {
    if (t->holding) {
      t->holding = 0;
      r = t->done(t, 0);
      if (r >= 0) return r;
      continue;
    }
    if (!t->waiting) {
      if (t->make(t) != ASYNCRT_OK) {
        t->fails++;
        return ASYNCRT_POLL_ERROR;
      }
      t->waiting = 1;
    }
    r = t->f.vtable->poll(t->f.self, cx, t->f.vtable->output_size ? &output : NULL);
    if (r == ASYNCRT_POLL_PENDING) return r;
    t->f.vtable->drop(t->f.self);
    t->waiting = 0;
    if (r != ASYNCRT_POLL_READY) {
      t->fails++;
      return r;
    }
    if (t->count % 8 == 7 && !t->round_leaders) { /* hold it across a yield */
      t->holding = 1;
      asyncrt_waker_wake_by_ref(asyncrt_context_waker(cx));
      return ASYNCRT_POLL_PENDING;
    }
    r = t->done(t, output);
    if (r >= 0) return r;
  }
  return ASYNCRT_POLL_READY;
}

static void sync_task_drop(void *self) {
  sync_task *t = self;
  if (t->waiting) t->f.vtable->drop(t->f.self);
  t->waiting = 0;
}

static const asyncrt_future_vtable sync_task_vtable = {sizeof(asyncrt_future_vtable), 0, sync_task_poll,
                                                       sync_task_drop, NULL};

static int mutex_make(sync_task *t) { return asyncrt_mutex_lock(t->obj, &t->w, &t->f); }
static int mutex_done(sync_task *t, uint32_t output) {
  (void)output;
  (*t->counter)++;
  t->count++;
  if (asyncrt_mutex_unlock(t->obj) != ASYNCRT_OK) {
    t->fails++;
    return ASYNCRT_POLL_ERROR;
  }
  return -1;
}

static int sem_make(sync_task *t) {
  t->permits = (uint64_t)(t->count % 2) + 1;
  return asyncrt_semaphore_acquire(t->obj, t->permits, &t->w, &t->f);
}
static int sem_done(sync_task *t, uint32_t output) {
  (void)output;
  if (tf_add(t->in_use, (int)t->permits) > 2) tf_add(t->over, 1);
  tf_add(t->in_use, -(int)t->permits);
  t->count++;
  if (asyncrt_semaphore_release(t->obj, t->permits) != ASYNCRT_OK) {
    t->fails++;
    return ASYNCRT_POLL_ERROR;
  }
  return -1;
}

static int barrier_make(sync_task *t) { return asyncrt_barrier_wait(t->obj, &t->w, &t->f); }
static int barrier_done(sync_task *t, uint32_t leader) {
  if (leader) tf_add(&t->round_leaders[t->count], 1);
  t->count++;
  return -1;
}

/* Spawns one sync_task per entry on ex and waits (bounded) for each. */
static void run_tasks(asyncrt_executor *ex, sync_task *tasks, int n, unsigned flags) {
  asyncrt_task *handles[STRESS_TASKS];
  int i;
  for (i = 0; i < n; i++) {
    asyncrt_future f;
    f.self = &tasks[i];
    f.vtable = &sync_task_vtable;
    CHECK_OK(asyncrt_spawn(ex, &f, flags, &handles[i]));
  }
  for (i = 0; i < n; i++) {
    asyncrt_future join;
    CHECK_OK(asyncrt_task_join(handles[i], &join));
    CHECK_OK(asyncrt_block_on(ex, &join, NULL, 20 * TF_SECOND_NS));
    CHECK_OK(asyncrt_task_release(handles[i]));
    CHECK_INT(tasks[i].fails, 0);
    CHECK_INT(tasks[i].count, tasks[i].iters);
  }
}

static asyncrt_executor *threads_executor(void) {
  asyncrt_executor_config cfg;
  asyncrt_executor *ex = NULL;
  asyncrt_executor_config_init(&cfg);
  cfg.kind = ASYNCRT_EXECUTOR_THREADS;
  cfg.workers = 2;
  if (asyncrt_executor_new(&cfg, &ex) != ASYNCRT_OK) {
    fprintf(stderr, "  asyncrt_executor_new(THREADS): %s\n", asyncrt_last_error());
    return NULL;
  }
  return ex;
}

/* Everything the workers touch lives on the heap (leaked if a CHECK fails:
 * a returning test must not leave a worker pointing into its stack). */
typedef struct stress_world {
  sync_task tasks[STRESS_TASKS];
  long counter;
  int in_use, over;
  int round_leaders[BARRIER_ROUNDS];
} stress_world;

static void stress_setup(stress_world *sw, void *obj, sync_make_fn make, sync_done_fn done, int iters) {
  int i;
  memset(sw, 0, sizeof *sw);
  for (i = 0; i < STRESS_TASKS; i++) {
    sw->tasks[i].obj = obj;
    sw->tasks[i].make = make;
    sw->tasks[i].done = done;
    sw->tasks[i].iters = iters;
    sw->tasks[i].counter = &sw->counter;
    sw->tasks[i].in_use = &sw->in_use;
    sw->tasks[i].over = &sw->over;
  }
}

static void test_threads_mutex(void) {
  asyncrt_executor *ex = threads_executor();
  stress_world *sw = malloc(sizeof *sw);
  asyncrt_mutex *m = NULL;
  CHECK(ex && sw);
  CHECK_OK(asyncrt_mutex_new(0, &m));
  stress_setup(sw, m, mutex_make, mutex_done, STRESS_ITERS);
  run_tasks(ex, sw->tasks, STRESS_TASKS, ASYNCRT_SPAWN_SEND);
  CHECK_PASSED();
  CHECK_INT(sw->counter, (long)STRESS_TASKS * STRESS_ITERS);
  CHECK_OK(asyncrt_executor_free(ex));
  CHECK_OK(asyncrt_mutex_try_lock(m)); /* nobody holds it */
  CHECK_OK(asyncrt_mutex_unlock(m));
  CHECK_OK(asyncrt_mutex_free(m));
  free(sw);
}

static void test_threads_semaphore(void) {
  asyncrt_executor *ex = threads_executor();
  stress_world *sw = malloc(sizeof *sw);
  asyncrt_semaphore *s = NULL;
  uint64_t avail = 0;
  CHECK(ex && sw);
  CHECK_OK(asyncrt_semaphore_new(0, 2, &s));
  stress_setup(sw, s, sem_make, sem_done, STRESS_ITERS / 2);
  run_tasks(ex, sw->tasks, STRESS_TASKS, ASYNCRT_SPAWN_SEND);
  CHECK_PASSED();
  CHECK_INT(sw->over, 0);
  CHECK_INT(sw->in_use, 0);
  CHECK_OK(asyncrt_executor_free(ex));
  CHECK_OK(asyncrt_semaphore_available(s, &avail));
  CHECK_INT(avail, 2);
  CHECK_OK(asyncrt_semaphore_free(s));
  free(sw);
}

static void test_threads_barrier(void) {
  asyncrt_executor *ex = threads_executor();
  stress_world *sw = malloc(sizeof *sw);
  asyncrt_barrier *b = NULL;
  int i;
  CHECK(ex && sw);
  CHECK_OK(asyncrt_barrier_new(0, STRESS_TASKS, &b));
  stress_setup(sw, b, barrier_make, barrier_done, BARRIER_ROUNDS);
  for (i = 0; i < STRESS_TASKS; i++) sw->tasks[i].round_leaders = sw->round_leaders;
  run_tasks(ex, sw->tasks, STRESS_TASKS, ASYNCRT_SPAWN_SEND);
  CHECK_PASSED();
  for (i = 0; i < BARRIER_ROUNDS; i++) CHECK_INT(sw->round_leaders[i], 1);
  CHECK_OK(asyncrt_executor_free(ex));
  CHECK_OK(asyncrt_barrier_free(b));
  free(sw);
}

/* The local forms, on a local executor: the same counting, no lock. */
static void test_local_mutex(void) {
  asyncrt_executor *ex = tf_executor();
  stress_world *sw = malloc(sizeof *sw);
  asyncrt_mutex *m = NULL;
  CHECK(ex && sw);
  CHECK_OK(asyncrt_mutex_new(ASYNCRT_SYNC_LOCAL, &m));
  stress_setup(sw, m, mutex_make, mutex_done, 1000);
  run_tasks(ex, sw->tasks, STRESS_TASKS, ASYNCRT_SPAWN_LOCAL);
  CHECK_PASSED();
  CHECK_INT(sw->counter, (long)STRESS_TASKS * 1000);
  CHECK_OK(asyncrt_executor_free(ex));
  CHECK_OK(asyncrt_mutex_free(m));
  free(sw);
}

/* --- misuse ------------------------------------------------------------------------ */

static void test_misuse(void) {
  asyncrt_mutex *m = NULL;
  asyncrt_semaphore *s = NULL;
  asyncrt_notify *n = NULL;
  asyncrt_barrier *b = NULL;
  hw h;
  int failure = 0;
  uint64_t avail;
  memset(&h, 0, sizeof h);

  CHECK_STATUS(asyncrt_mutex_new(0, NULL), ASYNCRT_EINVAL);
  CHECK_STATUS(asyncrt_mutex_new(2u, &m), ASYNCRT_EINVAL);
  CHECK(m == NULL);
  CHECK(strstr(asyncrt_last_error(), "flags") != NULL);
  CHECK_STATUS(asyncrt_semaphore_new(~0u, 1, &s), ASYNCRT_EINVAL);
  CHECK_STATUS(asyncrt_notify_new(4u, &n), ASYNCRT_EINVAL);
  CHECK_STATUS(asyncrt_barrier_new(0, 0, &b), ASYNCRT_EINVAL);
  CHECK(b == NULL);
  CHECK_STATUS(asyncrt_mutex_lock(NULL, &h.w, &h.f), ASYNCRT_EINVAL);
  CHECK_STATUS(asyncrt_mutex_unlock(NULL), ASYNCRT_EINVAL);
  CHECK_STATUS(asyncrt_notify_one(NULL), ASYNCRT_EINVAL);

  CHECK_OK(asyncrt_mutex_new(0, &m));
  CHECK_OK(asyncrt_semaphore_new(0, 1, &s));
  CHECK_STATUS(asyncrt_mutex_lock(m, NULL, &h.f), ASYNCRT_EINVAL);
  CHECK_STATUS(asyncrt_mutex_lock(m, &h.w, NULL), ASYNCRT_EINVAL);
  CHECK_STATUS(asyncrt_mutex_unlock(m), ASYNCRT_EINVAL);
  CHECK(strstr(asyncrt_last_error(), "not held") != NULL);
  /* A handle of another type. */
  CHECK_STATUS(asyncrt_semaphore_release((asyncrt_semaphore *)m, 1), ASYNCRT_EHANDLE);
  CHECK_STATUS(asyncrt_mutex_try_lock((asyncrt_mutex *)s), ASYNCRT_EHANDLE);
  CHECK_STATUS(asyncrt_semaphore_acquire(s, 0, &h.w, &h.f), ASYNCRT_EINVAL);
  CHECK_STATUS(asyncrt_semaphore_try_acquire(s, 0), ASYNCRT_EINVAL);
  CHECK_STATUS(asyncrt_semaphore_available(s, NULL), ASYNCRT_EINVAL);
  CHECK_STATUS(asyncrt_semaphore_release(s, UINT64_MAX), ASYNCRT_EINVAL);
  CHECK_OK(asyncrt_semaphore_available(s, &avail));
  CHECK_INT(avail, 1);

  /* A wait future pins its mutex: freeing it is EBUSY until the future is
   * dropped, even before its first poll (no poll can meet a freed object). */
  CHECK_OK(asyncrt_mutex_lock(m, &h.w, &h.f));
  h.live = 1;
  CHECK_STATUS(asyncrt_mutex_free(m), ASYNCRT_EBUSY);
  CHECK_OK(asyncrt_mutex_try_lock(m)); /* the handle is live again after the refused free */
  CHECK_OK(asyncrt_mutex_unlock(m));
  hw_drop(&h);
  CHECK_OK(asyncrt_mutex_free(m));
  /* Every call on a freed handle. */
  CHECK_STATUS(asyncrt_mutex_try_lock(m), ASYNCRT_EHANDLE);
  CHECK_STATUS(asyncrt_mutex_unlock(m), ASYNCRT_EHANDLE);
  CHECK_STATUS(asyncrt_mutex_lock(m, &h.w, &h.f), ASYNCRT_EHANDLE);
  CHECK_STATUS(asyncrt_mutex_free(m), ASYNCRT_EHANDLE);
  CHECK_OK(asyncrt_semaphore_free(s));
  CHECK_STATUS(asyncrt_semaphore_try_acquire(s, 1), ASYNCRT_EHANDLE);
  CHECK_OK(asyncrt_mutex_free(NULL));
  CHECK_OK(asyncrt_semaphore_free(NULL));
  CHECK_OK(asyncrt_notify_free(NULL));
  CHECK_OK(asyncrt_barrier_free(NULL));

  /* A wait polled again after it completed. */
  CHECK_OK(asyncrt_notify_new(ASYNCRT_SYNC_LOCAL, &n));
  CHECK_OK(asyncrt_notify_one(n));
  memset(&h, 0, sizeof h);
  CHECK_OK(asyncrt_notify_wait(n, &h.w, &h.f));
  h.live = 1;
  CHECK_INT(hw_poll(&h, NULL, NULL), ASYNCRT_POLL_READY);
  CHECK_INT(hw_poll(&h, NULL, &failure), ASYNCRT_POLL_ERROR);
  CHECK_INT(failure, ASYNCRT_EINVAL);
  hw_drop(&h);
  CHECK_OK(asyncrt_notify_free(n));
  CHECK_STATUS(asyncrt_notify_all(n), ASYNCRT_EHANDLE);
  CHECK_STATUS(asyncrt_notify_wait(n, &h.w, &h.f), ASYNCRT_EHANDLE);
}

int main(void) {
  CHECK_BEGIN();
  RUN(test_mutex_fifo);
  RUN(test_mutex_uncontended);
  RUN(test_mutex_cancelled_waiters);
  RUN(test_mutex_waker_refresh);
  RUN(test_semaphore_fifo);
  RUN(test_semaphore_cancelled_waiters);
  RUN(test_notify_permit);
  RUN(test_notify_waiters);
  RUN(test_barrier_rounds);
  RUN(test_threads_mutex);
  RUN(test_threads_semaphore);
  RUN(test_threads_barrier);
  RUN(test_local_mutex);
  RUN(test_misuse);
  return CHECK_END("test_sync");
}
