/* art_task.c -- task references, wakes, cancellation, and join futures.
 *
 * A task's memory lives while anything refers to it: its executor (until the
 * task completes), a handle, a join future, and every waker clone. That is why
 * a wake after completion, or after the executor was freed, is harmless: it
 * finds COMPLETE in a header that is still there.
 */
#include <errno.h>
#include <linux/futex.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "art.h"

uint64_t art_task_id(const art_task *t) {
  uintptr_t w = atomic_load_explicit(&((art_task *)t)->idw, memory_order_acquire);
  return (w & 1) ? ((art_task_ext *)(w & ~(uintptr_t)1))->id : (uint64_t)(w >> 1);
}

void art_task_ref(art_task *t) { atomic_fetch_add_explicit(&t->refs, 1, memory_order_relaxed); }

/* Gives the header back: to the caller's release callback or the executor's
 * task memory. The executor core lives until its last task is gone. */
static void task_free(art_task *t) {
  art_task_ext *x = art_task_ext_of(t);
  if (x) { /* user code (a value_free) may run: before any lock */
    if (x->error) art_error_unref(x->error);
    x->error = NULL;
    free(x->name);
    x->name = NULL;
  }
  if (t->flags & ART_TF_CALLER) {
    art_task_caller *c = (art_task_caller *)t;
    void (*release)(void *, void *) = c->release;
    void *user_data = c->user_data;
    art_exec_release_header(t); /* before release: the memory is the caller's after */
    if (release) release(t, user_data);
  } else {
    art_exec_release_header(t);
  }
}

void art_task_unref(art_task *t) {
  if (atomic_fetch_sub_explicit(&t->refs, 1, memory_order_acq_rel) == 1) task_free(t);
}

void art_task_schedule(art_task *t) {
  art_exec *e = __atomic_load_n(&t->exec, __ATOMIC_RELAXED);
  if (art_task_lw(t, e)) { /* only Send tasks of a group move: this one stays on e */
    art_exec_wake_lw(e, t);
    return;
  }
  uint32_t s = atomic_load_explicit(&t->state, memory_order_acquire);
  for (;;) {
    if (s & ART_COMPLETE) return;
    if (s & ART_OWNED) {
      /* Queued or being polled: the executor looks at NOTIFIED after the poll. */
      if ((s & ART_NOTIFIED) ||
          atomic_compare_exchange_weak_explicit(&t->state, &s, s | ART_NOTIFIED, memory_order_acq_rel,
                                                memory_order_acquire))
        return;
      continue;
    }
    if (atomic_compare_exchange_weak_explicit(&t->state, &s, s | ART_OWNED, memory_order_acq_rel,
                                              memory_order_acquire)) {
      art_exec_push(t->exec, t);
      return;
    }
  }
}

/* ---- the task waker -------------------------------------------------------- */

static void waker_clone(const void *data, asyncrt_waker *out) {
  art_task_ref((art_task *)data);
  out->data = data;
  out->vtable = &art_task_waker_vtable;
}

static void waker_wake_by_ref(const void *data) {
  if (art_is_forked()) return;
  art_task_wake_by_ref((art_task *)data);
}

static void waker_drop(const void *data) {
  if (art_is_forked()) return;
  art_task_unref((art_task *)data);
}

static void waker_wake(const void *data) {
  waker_wake_by_ref(data);
  waker_drop(data);
}

const asyncrt_waker_vtable art_task_waker_vtable = {
    .clone = waker_clone, .wake = waker_wake, .wake_by_ref = waker_wake_by_ref, .drop = waker_drop};

/* ---- cancellation and status --------------------------------------------- */

int art_task_cancel(art_task *t) {
  art_task_ext *x = art_task_ext_of(t);
  if (x) { /* sync: no cleanup, whatever an earlier async cancel offered */
    uint64_t d = atomic_load(&x->cancel_deadline);
    while (d > 1 && !atomic_compare_exchange_weak(&x->cancel_deadline, &d, 1)) {
    }
  }
  uint32_t s = atomic_fetch_or_explicit(&t->state, ART_CANCEL, memory_order_acq_rel);
  /* A shielded task only records the cancel: it is not polled for it. The
   * shield's exit reads CANCEL in the same word, so one side sees the other. */
  if (!(s & (ART_COMPLETE | ART_SHIELD))) art_task_schedule(t);
  return ASYNCRT_OK;
}

void art_task_cancel_now(art_task *t) {
  uint32_t s = atomic_fetch_or_explicit(&t->state, ART_CANCEL, memory_order_acq_rel);
  if (!(s & ART_COMPLETE)) art_task_schedule(t);
}

int art_task_status(art_task *t) {
  if (!(atomic_load_explicit(&t->state, memory_order_acquire) & ART_COMPLETE)) return ASYNCRT_EAGAIN;
  return t->status;
}

void art_drop_future(const asyncrt_future *f) {
  if (f && f->vtable && f->vtable->drop) f->vtable->drop(f->self);
}

/* ---- join futures ---------------------------------------------------------- */

/* join_waker is guarded by a lock bit in the state word, so completion (on the
 * task's driver) and a join poll (on any thread) agree on who wakes whom. */
static void join_lock(art_task *t) {
  uint32_t s = atomic_load_explicit(&t->state, memory_order_relaxed);
  for (;;) {
    if (s & ART_JOIN_LOCK) {
      __builtin_ia32_pause();
      s = atomic_load_explicit(&t->state, memory_order_relaxed);
    } else if (atomic_compare_exchange_weak_explicit(&t->state, &s, s | ART_JOIN_LOCK,
                                                     memory_order_acquire, memory_order_relaxed)) {
      return;
    }
  }
}

static void join_unlock(art_task *t) {
  atomic_fetch_and_explicit(&t->state, ~(uint32_t)ART_JOIN_LOCK, memory_order_release);
}

static asyncrt_waker join_take_waker(art_task *t) {
  join_lock(t);
  asyncrt_waker w = t->join_waker;
  t->join_waker = (asyncrt_waker){0};
  join_unlock(t);
  return w;
}

static int join_poll(void *self, asyncrt_context *cx, void *out) {
  art_task *t = self;
  if (!(atomic_load_explicit(&t->state, memory_order_acquire) & ART_COMPLETE)) {
    asyncrt_waker old = {0};
    join_lock(t);
    int done = atomic_load_explicit(&t->state, memory_order_acquire) & ART_COMPLETE;
    if (!done && !art_waker_will_wake(&t->join_waker, &cx->waker)) {
      old = t->join_waker;
      art_waker_clone(&cx->waker, &t->join_waker);
    }
    join_unlock(t);
    art_waker_drop(&old);
    if (!done) return ASYNCRT_POLL_PENDING;
  }
  if (t->status == ASYNCRT_OK) {
    if (t->output_size) memcpy(out, art_task_output(t), t->output_size);
    return ASYNCRT_POLL_READY;
  }
  cx->failure = t->status;
  return ASYNCRT_POLL_ERROR;
}

static void join_drop(void *self) {
  art_task *t = self;
  asyncrt_waker w = join_take_waker(t);
  art_waker_drop(&w);
  art_task_unref(t);
}

/* A join future's output_size is its task's, so there is one vtable per
 * output size, made on first use and kept for the life of the process. */
static asyncrt_future_vtable *_Atomic join_vtables[ASYNCRT_OUTPUT_MAX + 1];

static const asyncrt_future_vtable *join_vtable(size_t output_size) {
  asyncrt_future_vtable *vt = atomic_load_explicit(&join_vtables[output_size], memory_order_acquire);
  if (vt) return vt;
  asyncrt_future_vtable *made = malloc(sizeof *made);
  if (!made) return NULL;
  *made = (asyncrt_future_vtable){.size = sizeof *made, .output_size = output_size,
                                  .poll = join_poll, .drop = join_drop};
  if (atomic_compare_exchange_strong(&join_vtables[output_size], &vt, made)) return made;
  free(made);
  return vt;
}

int art_task_join(art_task *t, asyncrt_future *out) {
  const asyncrt_future_vtable *vt = join_vtable(t->output_size);
  if (!vt) return art_fail(ASYNCRT_ENOMEM, "could not allocate a join vtable");
  uint32_t s = atomic_fetch_or_explicit(&t->state, ART_JOINED, memory_order_acq_rel);
  if (s & ART_JOINED) return art_fail(ASYNCRT_EBUSY, "task %llu already has its join future",
                                      (unsigned long long)art_task_id(t));
  art_task_ref(t);
  out->self = t;
  out->vtable = vt;
  return ASYNCRT_OK;
}

void art_task_finish(art_exec *e, art_task *t, int status) {
  asyncrt_context *cx = art_tls_cx;
  if (cx) cx->waker.data = NULL; /* user code runs below: no task is being polled */
  art_drop_future(&t->fut);
  /* A rich error matters only to a failure; a stale one waits for the end
   * of the run. */
  if (ART_UNLIKELY(art_task_has_ext(t) || (status && cx && cx->rich_err))) {
    art_task_finish_ext(e, t, status);
    return;
  }
  /* The executor's reference is the only one: nobody else can see the task,
   * so it is unlinked and freed with no atomic read-modify-write at all. */
  /* (A JOINED task may hold a join waker -- art_task_wait's -- to drop.) */
  if (atomic_load_explicit(&t->refs, memory_order_acquire) == 1 && !(t->flags & ART_TF_CALLER) &&
      !(atomic_load_explicit(&t->state, memory_order_relaxed) & ART_JOINED)) {
    /* Read once more as it leaves the live list, where the stats count it;
     * a dump may read it meanwhile (art_ls_get). */
    __atomic_store_n(&t->status, status, __ATOMIC_RELAXED);
    art_exec_retire_from(e, t);
    return;
  }
  art_task_complete(t, status);
  art_task_unref(t);
}

void art_task_complete(art_task *t, int status) {
  /* A dump may read it meanwhile (art_ls_get): a relaxed store, as the
   * retiring path's; the CAS below publishes it to joiners. */
  __atomic_store_n(&t->status, status, __ATOMIC_RELAXED);
  uint32_t s = atomic_load_explicit(&t->state, memory_order_relaxed);
  while (!atomic_compare_exchange_weak_explicit(&t->state, &s,
                                                (s | ART_COMPLETE) & ~(uint32_t)(ART_OWNED | ART_NOTIFIED),
                                                memory_order_acq_rel, memory_order_relaxed)) {
  }
  if (s & ART_JOINED) {
    asyncrt_waker w = join_take_waker(t);
    art_waker_wake(&w);
  }
  art_exec_retire(t, 0);
}

/* ---- blocking waits ---------------------------------------------------------- */

/* A waker that sets a futex word: how a thread that drives nothing (block_on
 * onto a thread-per-core executor) sleeps until a task completes. */
typedef struct blocker {
  _Atomic uint32_t woken;
  _Atomic uint32_t refs;
} blocker;

static void blocker_unref(const void *data) {
  blocker *b = (blocker *)data;
  if (atomic_fetch_sub(&b->refs, 1) == 1) free(b);
}

static void blocker_wake_by_ref(const void *data) {
  blocker *b = (blocker *)data;
  atomic_store(&b->woken, 1);
  syscall(SYS_futex, &b->woken, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
}

static void blocker_wake(const void *data) {
  blocker_wake_by_ref(data);
  blocker_unref(data);
}

static const asyncrt_waker_vtable blocker_vtable;

static void blocker_clone(const void *data, asyncrt_waker *out) {
  atomic_fetch_add(&((blocker *)data)->refs, 1);
  *out = (asyncrt_waker){data, &blocker_vtable};
}

static const asyncrt_waker_vtable blocker_vtable = {
    .clone = blocker_clone, .wake = blocker_wake, .wake_by_ref = blocker_wake_by_ref, .drop = blocker_unref};

int art_task_wait(art_task *t, uint64_t deadline_ns) {
  if (atomic_load_explicit(&t->state, memory_order_acquire) & ART_COMPLETE) return 1;
  blocker *b = malloc(sizeof *b);
  if (!b) return 0;
  atomic_init(&b->woken, 0);
  atomic_init(&b->refs, 1);
  /* Register the blocker as the join waker (the task has no other joiner:
   * callers use this on tasks they spawned and never hand out). */
  asyncrt_waker w = {b, &blocker_vtable}, old = {0};
  atomic_fetch_or(&t->state, ART_JOINED);
  join_lock(t);
  int done = atomic_load_explicit(&t->state, memory_order_acquire) & ART_COMPLETE;
  if (!done) {
    old = t->join_waker;
    art_waker_clone(&w, &t->join_waker);
  }
  join_unlock(t);
  art_waker_drop(&old);
  while (!done) {
    struct timespec ts, *timeout = NULL;
    if (deadline_ns) {
      uint64_t now = art_now_ns();
      if (now >= deadline_ns) break;
      ts.tv_sec = (time_t)((deadline_ns - now) / 1000000000u);
      ts.tv_nsec = (long)((deadline_ns - now) % 1000000000u);
      timeout = &ts;
    }
    syscall(SYS_futex, &b->woken, FUTEX_WAIT_PRIVATE, 0, timeout, NULL, 0);
    done = atomic_load_explicit(&t->state, memory_order_acquire) & ART_COMPLETE;
    atomic_store(&b->woken, 0);
    done = done || (atomic_load_explicit(&t->state, memory_order_acquire) & ART_COMPLETE);
  }
  blocker_unref(b);
  return done != 0;
}

/* Nothing tells a waiter that a task was set aside (parked, no longer
 * OWNED), so this looks every millisecond: it runs only after a timeout. */
int art_task_wait_cancelled(art_task *t, uint64_t deadline_ns) {
  for (;;) {
    uint32_t s = atomic_load_explicit(&t->state, memory_order_acquire);
    if (s & ART_COMPLETE) return 1;
    if (!(s & (ART_OWNED | ART_NOTIFIED))) return 0;
    uint64_t now = art_now_ns();
    if (now >= deadline_ns) return 0;
    if (art_task_wait(t, deadline_ns - now > 1000000u ? now + 1000000u : deadline_ns)) return 1;
  }
}
