/* sync_test.c -- the mutex, semaphore, notify and barrier of art_sync.c
 * hammered from plain threads, without Go and without an executor, under
 * ThreadSanitizer and AddressSanitizer. Each thread polls its wait futures
 * by hand with a waker that counts, and spins (bounded) until it is woken;
 * some waiters are dropped while queued, some after they were granted and
 * before they saw it. At the end every count is exact, every object is
 * free of waiters (its free succeeds), and every waker clone was released.
 * Prints "PASS <name>" per test; exits 1 at the first failure. */
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "../art.h"

#include "check.h"

#define THREADS 4
#define WAIT_BOUND_NS 10000000000ull /* a lost wakeup fails the test after 10 s */

/* ---- a waker that counts ------------------------------------------------------ */

typedef struct counted {
  _Atomic int wakes, clones, releases;
} counted;

static void cw_clone(const void *data, asyncrt_waker *out);
static void cw_wake(const void *data) {
  counted *c = (counted *)data;
  atomic_fetch_add(&c->wakes, 1);
  atomic_fetch_add(&c->releases, 1);
}
static void cw_wake_by_ref(const void *data) { atomic_fetch_add(&((counted *)data)->wakes, 1); }
static void cw_drop(const void *data) { atomic_fetch_add(&((counted *)data)->releases, 1); }
static const asyncrt_waker_vtable cw_vt = {cw_clone, cw_wake, cw_wake_by_ref, cw_drop};
static void cw_clone(const void *data, asyncrt_waker *out) {
  atomic_fetch_add(&((counted *)data)->clones, 1);
  *out = (asyncrt_waker){data, &cw_vt};
}

/* A thread's waiting: its waker, and the wait in progress. */
typedef struct waiter {
  counted c;
  asyncrt_wait w;
  asyncrt_future f;
  int seen; /* wakes seen so far */
} waiter;

static int poll_wait(waiter *me, void *out) {
  asyncrt_context cx = {.waker = {&me->c, &cw_vt}};
  return me->f.vtable->poll(me->f.self, &cx, out);
}

/* Spins until the waker is woken again; fails the test after the bound. */
static void await_wake(waiter *me, const char *what) {
  uint64_t t0 = art_now_ns();
  while (atomic_load(&me->c.wakes) == me->seen) {
    CHECK(art_now_ns() - t0 < WAIT_BOUND_NS, "%s: no wake in 10 s (lost wakeup?)", what);
    sched_yield();
  }
  me->seen = atomic_load(&me->c.wakes);
}

/* Polls until ready, waiting for a wake between polls. */
static void poll_until_ready(waiter *me, void *out, const char *what) {
  int r;
  while ((r = poll_wait(me, out)) == ASYNCRT_POLL_PENDING) await_wake(me, what);
  CHECK(r == ASYNCRT_POLL_READY, "%s: poll returned %d (%s)", what, r, art_last_error());
}

/* One acquisition (mutex, semaphore): returns 1 if it took the object, 0
 * if it cancelled. `i` picks the path: fast, cancelled while queued,
 * cancelled after the grant arrived, or awaited. */
static int acquire(waiter *me, art_sync *s, uint64_t n, int i, const char *what) {
  art_sync_wait_init(s, n, &me->w, &me->f);
  int r = poll_wait(me, NULL);
  if (r == ASYNCRT_POLL_READY) {
    me->f.vtable->drop(me->f.self);
    return 1;
  }
  CHECK(r == ASYNCRT_POLL_PENDING, "%s: first poll %d", what, r);
  if (i % 7 == 3) { /* dropped while queued (or while the grant races in) */
    me->f.vtable->drop(me->f.self);
    return 0;
  }
  if (i % 7 == 5) { /* granted, dropped before the next poll */
    await_wake(me, what);
    me->f.vtable->drop(me->f.self);
    return 0;
  }
  await_wake(me, what);
  poll_until_ready(me, NULL, what);
  me->f.vtable->drop(me->f.self);
  return 1;
}

static void check_balanced(const waiter *me, const char *what) {
  int clones = atomic_load(&((waiter *)me)->c.clones), releases = atomic_load(&((waiter *)me)->c.releases);
  CHECK(clones == releases, "%s: %d waker clones, %d released", what, clones, releases);
}

typedef void *(*thread_fn)(void *);

static void run_threads(thread_fn fn, void *arg, int n) {
  pthread_t th[THREADS + 1];
  for (int i = 0; i < n; i++) CHECK(pthread_create(&th[i], NULL, fn, arg) == 0, "pthread_create");
  for (int i = 0; i < n; i++) pthread_join(th[i], NULL);
}

/* ---- mutex ------------------------------------------------------------------ */

enum { MUTEX_ITERS = 20000 };

typedef struct mutex_world {
  art_sync *m;
  long counter; /* plain: guarded by the mutex */
  _Atomic long taken;
  _Atomic int inside;
} mutex_world;

static void *mutex_thread(void *arg) {
  mutex_world *mw = arg;
  waiter me = {0};
  long took = 0;
  for (int i = 0; i < MUTEX_ITERS; i++) {
    int held = (i % 5 == 0) ? art_mutex_try_lock(mw->m) == ASYNCRT_OK : acquire(&me, mw->m, 1, i, "mutex");
    if (!held) continue;
    CHECK(atomic_fetch_add(&mw->inside, 1) == 0, "two holders of the mutex");
    mw->counter++;
    if (i % 64 == 0) sched_yield(); /* hold it a while: let the others queue */
    atomic_fetch_sub(&mw->inside, 1);
    CHECK(art_mutex_unlock(mw->m) == ASYNCRT_OK, "unlock: %s", art_last_error());
    took++;
  }
  atomic_fetch_add(&mw->taken, took);
  check_balanced(&me, "mutex");
  return NULL;
}

static void test_mutex(void) {
  mutex_world mw = {0};
  CHECK(art_sync_new(ART_H_MUTEX, 0, 0, 0, &mw.m) == ASYNCRT_OK, "new");
  run_threads(mutex_thread, &mw, THREADS);
  CHECK(mw.counter == atomic_load(&mw.taken), "counter %ld, %ld acquisitions", mw.counter, atomic_load(&mw.taken));
  CHECK(mw.counter > MUTEX_ITERS, "only %ld acquisitions", mw.counter);
  CHECK(art_mutex_try_lock(mw.m) == ASYNCRT_OK, "a cancelled waiter kept the lock");
  CHECK(art_mutex_unlock(mw.m) == ASYNCRT_OK, "unlock");
  CHECK(art_sync_free(mw.m) == ASYNCRT_OK, "free: %s", art_last_error());
  printf("PASS mutex (%ld acquisitions)\n", mw.counter);
}

/* ---- semaphore ---------------------------------------------------------------- */

enum { SEM_ITERS = 10000, SEM_PERMITS = 3 };

typedef struct sem_world {
  art_sync *s;
  _Atomic int in_use, over;
  _Atomic long taken;
} sem_world;

static void *sem_thread(void *arg) {
  sem_world *sw = arg;
  waiter me = {0};
  long took = 0;
  for (int i = 0; i < SEM_ITERS; i++) {
    uint64_t n = 1 + (uint64_t)(i % SEM_PERMITS);
    int held = (i % 5 == 0) ? art_semaphore_try_acquire(sw->s, n) == ASYNCRT_OK : acquire(&me, sw->s, n, i, "sem");
    if (!held) continue;
    if (atomic_fetch_add(&sw->in_use, (int)n) + (int)n > SEM_PERMITS) atomic_fetch_add(&sw->over, 1);
    if (i % 64 == 0) sched_yield();
    atomic_fetch_sub(&sw->in_use, (int)n);
    CHECK(art_semaphore_release(sw->s, n) == ASYNCRT_OK, "release");
    took++;
  }
  atomic_fetch_add(&sw->taken, took);
  check_balanced(&me, "semaphore");
  return NULL;
}

static void test_semaphore(void) {
  sem_world sw = {0};
  CHECK(art_sync_new(ART_H_SEMAPHORE, 0, SEM_PERMITS, 0, &sw.s) == ASYNCRT_OK, "new");
  run_threads(sem_thread, &sw, THREADS);
  CHECK(atomic_load(&sw.over) == 0, "more than %d permits held %d times", SEM_PERMITS, atomic_load(&sw.over));
  CHECK(art_semaphore_available(sw.s) == SEM_PERMITS, "%llu permits left, want %d",
        (unsigned long long)art_semaphore_available(sw.s), SEM_PERMITS);
  CHECK(art_sync_free(sw.s) == ASYNCRT_OK, "free: %s", art_last_error());
  printf("PASS semaphore (%ld acquisitions)\n", atomic_load(&sw.taken));
}

/* ---- notify --------------------------------------------------------------------- */

enum { PING_ROUNDS = 20000, STORM_ROUNDS = 2000 };

/* Ping-pong: side 1 notifies side 0 and waits; side 0 waits and notifies
 * back. A notification that arrives before the wait is polled is a stored
 * permit; there is never more than one outstanding, so none is lost. */
typedef struct ping_world {
  art_sync *n[2];
  _Atomic int next_side;
  long rounds[2]; /* each side's own */
} ping_world;

static void *ping_thread(void *arg) {
  ping_world *pw = arg;
  int side = atomic_fetch_add(&pw->next_side, 1);
  waiter me = {0};
  for (int i = 0; i < PING_ROUNDS; i++) {
    if (side == 1) art_notify_one(pw->n[0]); /* side 1 serves, then waits for the return */
    art_sync_wait_init(pw->n[side], 0, &me.w, &me.f);
    poll_until_ready(&me, NULL, "ping");
    me.f.vtable->drop(me.f.self);
    if (side == 0) art_notify_one(pw->n[1]);
    pw->rounds[side]++;
  }
  check_balanced(&me, "ping");
  return NULL;
}

static void test_notify_ping_pong(void) {
  ping_world pw = {0};
  for (int i = 0; i < 2; i++) CHECK(art_sync_new(ART_H_NOTIFY, 0, 0, 0, &pw.n[i]) == ASYNCRT_OK, "new");
  run_threads(ping_thread, &pw, 2);
  CHECK(pw.rounds[0] == PING_ROUNDS && pw.rounds[1] == PING_ROUNDS, "rounds %ld %ld", pw.rounds[0], pw.rounds[1]);
  for (int i = 0; i < 2; i++) CHECK(art_sync_free(pw.n[i]) == ASYNCRT_OK, "free: %s", art_last_error());
  puts("PASS notify ping-pong");
}

/* A storm: waiters wait STORM_ROUNDS times, some dropping their wait
 * (queued, or notified and unseen); a notifier alternates notify_all and
 * notify_one until every waiter is done. */
typedef struct storm_world {
  art_sync *n;
  _Atomic int done, completed;
} storm_world;

static void *storm_waiter(void *arg) {
  storm_world *sw = arg;
  waiter me = {0};
  for (int i = 0; i < STORM_ROUNDS; i++) {
    art_sync_wait_init(sw->n, 0, &me.w, &me.f);
    int r = poll_wait(&me, NULL);
    if (r == ASYNCRT_POLL_PENDING && i % 5 == 1) {
      me.f.vtable->drop(me.f.self);
      continue;
    }
    if (r == ASYNCRT_POLL_PENDING && i % 5 == 3) {
      await_wake(&me, "storm");
      me.f.vtable->drop(me.f.self);
      continue;
    }
    if (r == ASYNCRT_POLL_PENDING) {
      await_wake(&me, "storm");
      poll_until_ready(&me, NULL, "storm");
    }
    me.f.vtable->drop(me.f.self);
    atomic_fetch_add(&sw->completed, 1);
  }
  atomic_fetch_add(&sw->done, 1);
  check_balanced(&me, "storm");
  return NULL;
}

static void *storm_notifier(void *arg) {
  storm_world *sw = arg;
  uint64_t t0 = art_now_ns();
  for (unsigned i = 0; atomic_load(&sw->done) < THREADS; i++) {
    if (i & 1) art_notify_all(sw->n);
    else art_notify_one(sw->n);
    CHECK(art_now_ns() - t0 < 6 * WAIT_BOUND_NS, "storm: waiters not done");
    if (i % 16 == 0) sched_yield();
  }
  return NULL;
}

static void test_notify_storm(void) {
  storm_world sw = {0};
  pthread_t th[THREADS + 1];
  CHECK(art_sync_new(ART_H_NOTIFY, 0, 0, 0, &sw.n) == ASYNCRT_OK, "new");
  for (int i = 0; i < THREADS; i++) pthread_create(&th[i], NULL, storm_waiter, &sw);
  pthread_create(&th[THREADS], NULL, storm_notifier, &sw);
  for (int i = 0; i <= THREADS; i++) pthread_join(th[i], NULL);
  CHECK(art_sync_free(sw.n) == ASYNCRT_OK, "free: %s", art_last_error());
  printf("PASS notify storm (%d waits completed)\n", atomic_load(&sw.completed));
}

/* ---- barrier --------------------------------------------------------------------- */

enum { BARRIER_ROUNDS = 3000 };

typedef struct barrier_world {
  art_sync *b;
  _Atomic int leaders[BARRIER_ROUNDS];
} barrier_world;

static void *barrier_thread(void *arg) {
  barrier_world *bw = arg;
  waiter me = {0};
  for (int i = 0; i < BARRIER_ROUNDS; i++) {
    uint32_t leader = 7;
    art_sync_wait_init(bw->b, 0, &me.w, &me.f);
    poll_until_ready(&me, &leader, "barrier");
    me.f.vtable->drop(me.f.self);
    CHECK(leader <= 1, "leader flag %u", leader);
    if (leader) atomic_fetch_add(&bw->leaders[i], 1);
  }
  check_balanced(&me, "barrier");
  return NULL;
}

static void test_barrier(void) {
  static barrier_world bw;
  CHECK(art_sync_new(ART_H_BARRIER, 0, 0, THREADS, &bw.b) == ASYNCRT_OK, "new");
  run_threads(barrier_thread, &bw, THREADS);
  for (int i = 0; i < BARRIER_ROUNDS; i++)
    CHECK(atomic_load(&bw.leaders[i]) == 1, "round %d had %d leaders", i, atomic_load(&bw.leaders[i]));
  CHECK(art_sync_free(bw.b) == ASYNCRT_OK, "free: %s", art_last_error());
  puts("PASS barrier");
}

int main(void) {
  setvbuf(stdout, NULL, _IOLBF, 0);
  alarm(300);
  test_mutex();
  test_semaphore();
  test_notify_ping_pong();
  test_notify_storm();
  test_barrier();
  return 0;
}
