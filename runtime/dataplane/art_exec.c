/* art_exec.c -- the executor core: run queues, the run loop, spawning,
 * signalling and parking, runnables of foreign executors, block_on, and
 * shutdown. A core is one thread's share of an executor: all of a local
 * executor, one worker of a thread-per-core executor (art_group.c), or the
 * bookkeeping of a foreign one.
 *
 * Two queues. The local queue is a ring of task pointers touched only by the
 * driver (the thread inside art_exec_run_ex). Every other thread pushes onto
 * the remote queue, a Treiber stack the driver takes whole and reverses. A
 * remote push signals the core's futex only when no driver is running, so a
 * busy executor takes cross-thread work without a syscall, and an idle one
 * is woken once.
 */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <linux/futex.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "art.h"
#include "art_timer.h"

__thread asyncrt_context *art_tls_cx __attribute__((tls_model("initial-exec")));
static __thread char thread_token;

uintptr_t art_thread_token(void) { return (uintptr_t)&thread_token; }
int art_in_poll(void) { return art_tls_cx != NULL; }

/* The core this thread drives right now, if any. */
static inline art_exec *driven_core(void) {
  asyncrt_context *cx = art_tls_cx;
  return cx ? cx->exec : NULL;
}

static void drain_remote(art_exec *e);
static void lw_remote(art_exec *e, art_task *t);

uint64_t art_now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

art_exec *art_exec_new(const asyncrt_allocator *hook, size_t memory_limit, int eventfd) {
  art_exec *e;
  if (posix_memalign((void **)&e, ART_CACHELINE, sizeof *e)) {
    art_fail(ASYNCRT_ENOMEM, "could not allocate an executor");
    return NULL;
  }
  memset(e, 0, sizeof *e);
  art_mem_init(&e->mem, hook, memory_limit);
  e->eventfd = eventfd;
  e->pollfd = -1;
  e->timerfd = -1;
  e->clock = &e->clock_store;
  e->budget_polls = 256;
  e->budget_ns = 1000000;
  atomic_init(&e->timer_next, UINT64_MAX);
  e->cx = (asyncrt_context){.waker = {NULL, &art_task_waker_vtable}, .exec = e};
  return e;
}

static void exec_destroy(art_exec *e) {
  if (e->cx.rich_err) art_error_unref(e->cx.rich_err);
  art_mem_destroy(&e->mem);
  free(e->ring);
  art_wheel_free(e->wheel);
  free(e->subs);
  if (e->eventfd >= 0) close(e->eventfd);
  if (e->timerfd >= 0) close(e->timerfd);
  if (e->is_foreign && e->foreign.finalize) e->foreign.finalize(e->foreign_user);
  art_group *g = e->group;
  if (!g) {
    art_subsys_free_dead(e);
    free(e);
    return;
  }
  /* A group's cores are freed together with the group: a late wake of a
   * Send task may still look at its siblings (unpark_one). */
  if (atomic_fetch_sub(&g->cores_left, 1) == 1) {
    for (unsigned i = 0; i < g->nworkers; i++) {
      art_subsys_free_dead(g->workers[i]);
      free(g->workers[i]);
    }
    free(g->workers);
    art_group_free_chunks(g);
    free(g);
  }
}

void art_exec_close(art_exec *e) {
  drain_remote(e); /* the workers are gone: wakes of finished tasks may be left */
  art_lock_acquire(&e->lock);
  for (unsigned i = 0; i < e->req_nslots; i++) art_mem_release(&e->mem, e->req_slots[i], ART_TASK_SLOT_BASE);
  e->headers -= e->req_nslots;
  e->req_nslots = 0;
  e->closed = 1;
  int last = !e->headers;
  art_lock_release(&e->lock);
  if (last) exec_destroy(e);
}

/* Under the lock. Returns nonzero when the core must now be destroyed. */
static inline int exec_uncount_header(art_exec *e, art_task *t) {
  if (ART_UNLIKELY(art_task_has_ext(t))) art_task_ext_release(e, t);
  if (!(t->flags & ART_TF_CALLER)) {
    size_t slot = art_task_slot_size(t->output_size);
    art_mem_release(&e->mem, t, slot);
    if (e->group && e->group->mem_limit) atomic_fetch_sub(&e->group->mem_in_use, slot);
  }
  return !--e->headers && e->closed;
}

/* Unlinks t from its home's live list; the home's lock is held. */
static inline void live_unlink(art_exec *home, art_task *t) {
  if (ART_UNLIKELY(home->dump_cursor == t)) home->dump_cursor = t->live_next;
  if (ART_UNLIKELY(home->walk_cursor == t)) home->walk_cursor = t->live_next;
  if (t->live_prev) t->live_prev->live_next = t->live_next;
  else home->live_head = t->live_next;
  if (t->live_next) t->live_next->live_prev = t->live_prev;
  home->live_count--;
  if (ART_UNLIKELY(t->status)) { /* the final status: the stats count the rest as completed */
    if (t->status == ASYNCRT_ECANCELLED) home->tasks_cancelled++;
    else home->tasks_failed++;
  }
}

/* A task its driver finished while the executor's reference was its only
 * one (art_task_finish's fast path) is freed without ever being COMPLETE.
 * But until it leaves the live list, a cancel walking that list
 * (art_exec_cancel_all) can take a reference to it and wake it: a
 * local-wake task then went onto the remote stack, was polled again and
 * its future dropped a second time, and any task's header could be reused
 * under the walker. A second reference seen under the lock that unlinks
 * it is such a walker: the task is completed as a shared one is instead
 * (COMPLETE turns the wake into nothing) and the last reference frees it.
 * Its status is final already. */
static void complete_late(art_task *t) {
  uint32_t s = atomic_load_explicit(&t->state, memory_order_relaxed);
  while (!atomic_compare_exchange_weak_explicit(&t->state, &s, (s | ART_COMPLETE) & ~(uint32_t)(ART_OWNED | ART_NOTIFIED),
                                                memory_order_acq_rel, memory_order_relaxed)) {
  }
  art_task_unref(t); /* the executor's */
}

static inline int shared_while_retired(art_task *t) {
  return ART_UNLIKELY(atomic_load_explicit(&t->refs, memory_order_acquire) != 1);
}

static inline void retire(art_task *t, int free_header) {
  art_exec *e = t->home;
  art_lock_acquire(&e->lock);
  live_unlink(e, t);
  if (free_header && shared_while_retired(t)) {
    art_lock_release(&e->lock);
    complete_late(t);
    return;
  }
  int last = free_header && exec_uncount_header(e, t);
  art_lock_release(&e->lock);
  if (last) exec_destroy(e);
}

void art_exec_retire(art_task *t, int free_header) { retire(t, free_header); }

#define RETIRE_BATCH 64u

static void retire_flush(art_exec *e) {
  art_exec *home = e->retire_home;
  if (!home) return;
  int last = 0;
  art_task *late = NULL; /* taken by a cancel walk meanwhile: see complete_late */
  art_lock_acquire(&home->lock);
  for (art_task *t = e->retire_head, *next; t; t = next) {
    next = t->next;
    live_unlink(home, t);
    if (shared_while_retired(t)) {
      t->next = late;
      late = t;
      continue;
    }
    last = exec_uncount_header(home, t);
  }
  art_lock_release(&home->lock);
  e->retire_home = NULL;
  e->retire_head = NULL;
  e->retire_len = 0;
  while (late) { /* the home lives on: these headers are still counted */
    art_task *next = late->next;
    complete_late(late);
    late = next;
  }
  if (last) exec_destroy(home);
}

void art_exec_retire_from(art_exec *e, art_task *t) {
  /* A worker of a group batches its own Send tasks too: a sibling
   * returning a batch holds this lock, and one lock per task here would
   * queue behind it each time. Not a local-wake task: until the flush it is
   * on the live list, and a cancel walking that list wakes it through the
   * remote stack, whose link is t->next, the batch's. A lone core gives its
   * own back at once (its lock is never contended, and the slot is reused
   * while it is still in the cache). */
  if (!e->batching || (t->home == e && (!e->group || art_task_lw(t, e)))) {
    retire(t, 1);
    return;
  }
  if (e->retire_home != t->home || e->retire_len == RETIRE_BATCH) retire_flush(e);
  e->retire_home = t->home;
  t->next = e->retire_head;
  e->retire_head = t;
  e->retire_len++;
}

void art_exec_unhold(art_exec *e) {
  art_lock_acquire(&e->lock);
  int last = !--e->headers && e->closed;
  art_lock_release(&e->lock);
  if (last) exec_destroy(e);
}

void art_exec_release_header(art_task *t) {
  art_exec *e = t->home;
  art_lock_acquire(&e->lock);
  int last = exec_uncount_header(e, t);
  art_lock_release(&e->lock);
  if (last) exec_destroy(e);
}

/* ---- spawn requests (see art_group.c) ------------------------------------------- */

static inline void local_push(art_exec *e, art_task *t);

unsigned art_exec_slots_refill(art_exec *e) {
  int status = ASYNCRT_OK;
  unsigned n = 0;
  art_lock_acquire(&e->lock);
  while (e->req_nslots < ART_REQ_SLOTS) {
    art_task *t = art_mem_alloc_cold(&e->mem, ART_TASK_SLOT_BASE, &status);
    if (!t) break;
    e->req_slots[e->req_nslots++] = t;
    n++;
  }
  e->headers += n; /* the core outlives them, as it does its tasks' headers */
  art_lock_release(&e->lock);
  return e->req_nslots;
}

void art_exec_release_slots(art_exec *home, art_task *const *slots, unsigned n, int requests) {
  art_lock_acquire(&home->lock);
  for (unsigned i = 0; i < n; i++) art_mem_release(&home->mem, slots[i], ART_TASK_SLOT_BASE);
  home->headers -= n;
  if (requests) { /* dropped requests: tasks that were spawned, and cancelled */
    home->req_done += n;
    home->spawned += n;
    home->tasks_cancelled += n;
  }
  int last = !home->headers && home->closed;
  art_lock_release(&home->lock);
  if (last) exec_destroy(home);
}

/* Writes the headers of r[0..n) (one home) whole, chained, then puts the
 * chain on home's live list in one lock hold (a shutdown walking it may
 * cancel them at once). The slots were last freed by a worker, most often
 * this one, so the writes stay in this cache. */
static void adopt_run(art_exec *runner, art_exec *home, const art_req *r, unsigned n) {
  art_task *first = NULL, *last = NULL;
  /* Ask for every header's lines at once (for writing): when a burst
   * outran the memory cache, each one is a miss, and these overlap. */
  for (unsigned i = 0; i < n; i++) {
    ART_PREFETCH_W(r[i].slot);
    ART_PREFETCH_W((char *)r[i].slot + 64);
  }
  for (unsigned i = 0; i < n; i++) {
    art_task *t = r[i].slot;
    atomic_init(&t->state, ART_OWNED);
    atomic_init(&t->refs, 1);
    t->fut = (asyncrt_future){r[i].self, r[i].vtable};
    t->exec = runner;
    t->home = home;
    t->join_waker = (asyncrt_waker){0};
    t->status = ART_LS_QUEUED;
    t->output_size = 0;
    t->flags = ART_TF_SEND;
    t->live_prev = last;
    t->live_next = NULL;
    if (last) last->live_next = t;
    else first = t;
    last = t;
  }
  art_lock_acquire(&home->lock);
  /* An immediate stop that began after the look in art_exec_adopt_requests
   * set `immediate` before its walk took this lock: these tasks are not on
   * the list it walks, so they start cancelled (dropped unpolled). */
  uint32_t cancel = atomic_load(&home->immediate) ? ART_CANCEL : 0;
  for (art_task *t = first; t; t = t->live_next) {
    atomic_init(&t->idw, (uintptr_t)(++home->next_id << 12 | home->index) << 1);
    if (cancel) atomic_store_explicit(&t->state, ART_OWNED | cancel, memory_order_relaxed);
  }
  home->req_done += n;
  last->live_next = home->live_head;
  if (home->live_head) home->live_head->live_prev = last;
  home->live_head = first;
  home->live_count += n;
  home->spawned += n;
  art_lock_release(&home->lock);
  for (unsigned i = 0; i < n; i++) local_push(runner, r[i].slot);
}

void art_exec_adopt_requests(art_exec *runner, const art_req *r, unsigned n) {
  for (unsigned i = 0, j; i < n; i = j) {
    art_exec *home = r[i].home;
    for (j = i + 1; j < n && r[j].home == home; j++) {}
    if (ART_UNLIKELY(atomic_load(&home->immediate) || atomic_load(&runner->immediate))) {
      /* Cancelled before they were tasks: the futures are dropped here,
       * once, "inside" the executor (a steal runs outside the run loop). */
      art_task *slots[ART_REQ_RING];
      asyncrt_context *outer = art_tls_cx;
      if (!outer) art_tls_cx = &runner->cx;
      for (unsigned k = i; k < j; k++) {
        art_drop_future(&(asyncrt_future){r[k].self, r[k].vtable});
        slots[k - i] = r[k].slot;
      }
      art_tls_cx = outer;
      art_exec_release_slots(home, slots, j - i, 1);
    } else {
      adopt_run(runner, home, r + i, j - i);
    }
  }
}

int art_exec_acquire_driver(art_exec *e) {
  uintptr_t none = 0;
  return atomic_compare_exchange_strong(&e->driver, &none, art_thread_token());
}

void art_exec_release_driver(art_exec *e) { atomic_store(&e->driver, 0); }

/* Waking a sleeping driver. `signaled` is a futex word: the first signaller
 * since the last drain sets it and wakes the futex; later ones see it set and
 * skip. A driver sleeps on it (art_exec_park) only after storing running=0
 * and finding its queues empty, so a wake between the two makes the futex
 * wait return at once.
 *
 * Once a host has asked for the pollable fd (fd_mode), signals also write the
 * eventfd, and a run drains it when the flag was set. A signaller can sit
 * between taking the flag and writing while a drain passes, leaving the fd
 * readable with the flag clear; the run that such a readiness causes finds no
 * work, and a run that finds no work always reads the eventfd. That read
 * cannot eat a wake: a signaller only signals after seeing no driver running,
 * so its task was queued before this run began and this run would have found
 * it. */
static void exec_signal(art_exec *e) {
  if (atomic_exchange(&e->signaled, 1)) return;
  if (atomic_load_explicit(&e->fd_mode, memory_order_relaxed)) {
    uint64_t one = 1;
    while (write(e->eventfd, &one, sizeof one) < 0 && errno == EINTR) {
    }
  }
  syscall(SYS_futex, &e->signaled, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
}

void art_exec_wake_driver(art_exec *e) { exec_signal(e); }

void art_exec_use_fd(art_exec *e) {
  if (atomic_exchange(&e->fd_mode, 1)) return;
  /* A signal taken before fd_mode wrote no eventfd: make it readable now. */
  if (atomic_load(&e->signaled)) {
    uint64_t one = 1;
    while (write(e->eventfd, &one, sizeof one) < 0 && errno == EINTR) {
    }
  }
}

void art_exec_park(art_exec *e, int64_t timeout_ns) {
  struct timespec ts = {(time_t)(timeout_ns / 1000000000), (long)(timeout_ns % 1000000000)};
  syscall(SYS_futex, &e->signaled, FUTEX_WAIT_PRIVATE, 0, timeout_ns < 0 ? NULL : &ts, NULL, 0);
}

static void exec_read_eventfd(art_exec *e) {
  if (!atomic_load_explicit(&e->fd_mode, memory_order_relaxed)) return;
  uint64_t count;
  while (read(e->eventfd, &count, sizeof count) < 0 && errno == EINTR) {
  }
}

static void exec_drain_signal(art_exec *e) {
  if (!atomic_load(&e->signaled)) return;
  atomic_exchange(&e->signaled, 0); /* a read-modify-write: later loads stay after it on any CPU */
  exec_read_eventfd(e);
}

#define RING_MIN 256u

/* Room is the ring's capacity while overflow is empty and 0 otherwise, so the
 * push fast path is one comparison. */
static int ring_grow(art_exec *e) {
  uint64_t cap = e->ring ? (e->ring_mask + 1) * 2 : RING_MIN, len = e->ring_tail - e->ring_head;
  art_task **ring = malloc(cap * sizeof *ring);
  if (!ring) return 0;
  for (uint64_t i = 0; i < len; i++) ring[i] = e->ring[(e->ring_head + i) & e->ring_mask];
  free(e->ring);
  e->ring = ring;
  e->ring_mask = cap - 1;
  e->ring_head = 0;
  e->ring_tail = len;
  e->ring_room = cap;
  return 1;
}

/* The ring only: 0 if it is full and cannot grow. */
static inline int ring_push(art_exec *e, art_task *t) {
  if (ART_UNLIKELY(e->ring_tail - e->ring_head >= e->ring_room)) {
    if (e->overflow_head || !ring_grow(e)) return 0;
  }
  e->ring[e->ring_tail++ & e->ring_mask] = t;
  return 1;
}

static inline void local_push(art_exec *e, art_task *t) {
  if (ART_LIKELY(ring_push(e, t))) return;
  /* A local-wake task's link may be the remote stack's (art.h): it goes
   * that way, not on the overflow list. */
  if (art_task_lw(t, e)) {
    art_ls_set(t, ART_LS_IDLE);
    lw_remote(e, t);
    return;
  }
  t->next = NULL;
  if (e->overflow_tail) e->overflow_tail->next = t;
  else e->overflow_head = t;
  e->overflow_tail = t;
  e->ring_room = 0;
}

static art_task *local_pop(art_exec *e) {
  if (ART_LIKELY(e->ring_head != e->ring_tail)) {
    art_task *t = e->ring[e->ring_head++ & e->ring_mask];
    /* The ring names the tasks to come: fetch the header two ahead, and the
     * future state of the next (its header came in on the last turn). Past
     * the tail a slot holds a stale pointer; prefetches never fault, and the
     * one header read here is of a task that is still alive. */
    __builtin_prefetch(e->ring[(e->ring_head + 1) & e->ring_mask], 1);
    /* Only a long queue outgrows the cache; a short one would only pay for
     * the extra loads. Then a header (96 bytes: two lines) is asked for
     * four pops ahead, and the state of the next-but-one, whose header came
     * in three pops ago, two. */
    if (e->ring_tail - e->ring_head > 16) {
      char *h = (char *)e->ring[(e->ring_head + 4) & e->ring_mask];
      __builtin_prefetch(h, 1);
      __builtin_prefetch(h + 64, 1);
      char *st = e->ring[(e->ring_head + 1) & e->ring_mask]->fut.self;
      __builtin_prefetch(st, 1);
      __builtin_prefetch(st + 64, 1);
    }
    return t;
  }
  art_task *t = e->overflow_head;
  if (t && !(e->overflow_head = t->next)) {
    e->overflow_tail = NULL;
    e->ring_room = e->ring ? e->ring_mask + 1 : 0;
  }
  return t;
}

void art_exec_push_local(art_exec *e, art_task *t) { local_push(e, t); }

static int local_pending(const art_exec *e) { return e->ring_head != e->ring_tail || e->overflow_head; }

static int send_pending(art_exec *e) {
  return atomic_load(&e->send_head) != atomic_load(&e->send_tail);
}

int art_exec_has_work(art_exec *e) {
  return local_pending(e) || atomic_load(&e->remote_head) || send_pending(e) ||
         (e->group && art_group_requests_pending(e));
}

/* A task the driver queues itself: Send tasks of a group go where idle
 * workers can take them, everything else to the local ring. */
static inline void driver_push(art_exec *e, art_task *t) {
  if (ART_UNLIKELY(e->group && (t->flags & ART_TF_SEND))) art_group_send_push(e, t);
  else local_push(e, t);
}

/* Pushes t on e's remote stack and signals the core if no driver runs. */
static void remote_stack_push(art_exec *e, art_task *t) {
  art_task *head = atomic_load_explicit(&e->remote_head, memory_order_relaxed);
  do {
    t->next = head;
  } while (!atomic_compare_exchange_weak(&e->remote_head, &head, t));
  /* Pairs with the driver's store of running=0 then its look at remote_head:
   * one of the two sides sees the other (both are sequentially consistent). */
  if (!atomic_load(&e->running)) exec_signal(e);
}

void art_exec_push(art_exec *e, art_task *t) {
  if (ART_UNLIKELY(e->is_foreign)) {
    art_foreign_schedule(e, t);
    return;
  }
  if (driven_core() == e) {
    art_count(&e->wakes_local, 1);
    driver_push(e, t);
    return;
  }
  atomic_fetch_add_explicit(&e->wakes, 1, memory_order_relaxed);
  if (e->group && (t->flags & ART_TF_SEND)) {
    /* Any worker may run it: do not make it wait for this one. */
    art_group_inject(e->group, t);
    return;
  }
  remote_stack_push(e, t);
}

/* ---- local wakes (see art.h) ------------------------------------------------ */

/* A wake from a thread that is not e's driver: NOTIFIED, and the task on
 * the remote stack (with a reference) if that was news. */
static void lw_remote(art_exec *e, art_task *t) {
  uint32_t old = atomic_fetch_or_explicit(&t->state, ART_NOTIFIED, memory_order_acq_rel);
  if (old & (ART_NOTIFIED | ART_COMPLETE)) return;
  art_task_ref(t);
  atomic_fetch_add_explicit(&e->wakes, 1, memory_order_relaxed);
  remote_stack_push(e, t);
}

/* A wake on e's driver: plain stores. */
static inline void lw_local(art_exec *e, art_task *t) {
  int ls = art_ls_get(t);
  if (ls == ART_LS_IDLE) {
    if (ART_LIKELY(ring_push(e, t))) art_ls_set(t, ART_LS_QUEUED);
    else lw_remote(e, t); /* no memory for the ring: taken again later */
  } else if (!(ls & ART_LS_NOTIFIED)) {
    art_ls_set(t, ls | ART_LS_NOTIFIED); /* queued or being polled: once more */
  }
}

void art_exec_wake_lw(art_exec *e, art_task *t) {
  if (atomic_load_explicit(&t->state, memory_order_acquire) & ART_COMPLETE) return;
  if (driven_core() == e) {
    if (art_ls_get(t) == ART_LS_IDLE) art_count(&e->wakes_local, 1);
    lw_local(e, t);
  } else {
    lw_remote(e, t);
  }
}

void art_exec_park_lw(art_exec *e, art_task *t) {
  int notified = art_ls_get(t) & ART_LS_NOTIFIED;
  art_ls_set(t, ART_LS_IDLE);
  if (notified) lw_local(e, t); /* woken while polled: queued again */
}

/* Moves the remote stack, reversed into arrival order, to the local queue. */
static int exec_take_remote(art_exec *e) {
  /* Look before the exchange: the run loop asks often, and an empty stack
   * should cost a load, not a locked instruction. */
  if (!atomic_load_explicit(&e->remote_head, memory_order_relaxed)) return 0;
  art_task *t = atomic_exchange_explicit(&e->remote_head, NULL, memory_order_acquire);
  if (!t) return 0;
  art_task *fifo = NULL;
  while (t) {
    art_task *next = t->next;
    t->next = fifo;
    fifo = t;
    t = next;
  }
  while (fifo) {
    art_task *next = fifo->next;
    if (art_task_lw(fifo, e)) {
      uint32_t s = atomic_fetch_and_explicit(&fifo->state, ~(uint32_t)ART_NOTIFIED, memory_order_acq_rel);
      if (!(s & ART_COMPLETE)) lw_local(e, fifo);
      art_task_unref(fifo); /* the remote stack's reference */
    } else {
      driver_push(e, fifo);
    }
    fifo = next;
  }
  return 1;
}

/* Gives back the references of local-wake tasks left on the remote stack
 * (their tasks are complete: the core is shutting down). */
static void drain_remote(art_exec *e) {
  art_task *t = atomic_exchange(&e->remote_head, NULL);
  while (t) {
    art_task *next = t->next;
    if (art_task_lw(t, e)) {
      atomic_fetch_and(&t->state, ~(uint32_t)ART_NOTIFIED);
      art_task_unref(t);
    }
    t = next;
  }
}


/* Whether a task spawned on e with these flags is a local-wake task. */
static inline int art_task_lw_spawn(const art_exec *e, unsigned flags) {
  return !e->is_foreign && (!e->group || !(flags & ASYNCRT_SPAWN_SEND));
}

/* Links child t into scope s (both locks held by the caller: the core's,
 * then the scope's). Returns 0 or the refusal. */
static int scope_link(art_scope *s, art_task *t, art_task_ext *x) {
  uint32_t f = atomic_load_explicit(&s->flags, memory_order_relaxed);
  if (f & ART_S_CLOSED)
    return art_fail(ASYNCRT_ESCOPE, "scope %llu is closed (joined, or its owner returned); the future was dropped",
                    (unsigned long long)s->id);
  if (f & ART_S_CANCELLED)
    return art_fail(ASYNCRT_ECANCELLED, "scope %llu was cancelled; the future was dropped",
                    (unsigned long long)s->id);
  x->scope = s;
  x->scope_id = s->id;
  x->sib_prev = NULL;
  x->sib_next = s->children;
  if (s->children) art_task_ext_of(s->children)->sib_prev = t;
  s->children = t;
  /* The live children hold one reference together, from the first to the
   * last: one atomic per busy period instead of two per child. */
  if (!s->live++) {
    atomic_fetch_add_explicit(&s->refs, 1, memory_order_relaxed);
    if (s->owner) atomic_fetch_add(&art_task_ext_of(s->owner)->busy, 1); /* seq_cst: pairs with CANCEL */
  }
  return ASYNCRT_OK;
}

/* Both spawns share this body; inlined into each, the plain one loses every
 * scope test. */
static inline __attribute__((always_inline)) int spawn_impl(art_exec *e, const asyncrt_future *fut, unsigned flags,
                                                            const asyncrt_task_storage *storage, art_task **out,
                                                            art_scope *scope) {
  int on_driver = driven_core() == e, status = ASYNCRT_OK;
  if (!on_driver) atomic_fetch_add(&e->remote_spawners, 1);
  if (atomic_load(&e->shutdown)) {
    status = art_fail(ASYNCRT_ESHUTDOWN, "the executor is shutting down; the future was dropped");
    goto refused;
  }
  size_t output_size = fut->vtable->output_size, slot = art_task_slot_size(output_size);
  art_group *g = e->group;
  /* A Send task nobody holds, spawned by a worker: a request instead of a
   * header (art_group.c), so the worker that runs it writes the header.
   * The future is the request's now: it is dropped once, as a task's is. */
  if (on_driver && g && (flags & ASYNCRT_SPAWN_SEND) && !out && !scope && !storage && !g->mem_limit &&
      !output_size && art_group_request(e, fut))
    return ASYNCRT_OK;
  /* The executor-wide cap of a group: the header (unless in caller
   * storage) and a scope child's ext record. */
  size_t charge = (storage ? 0 : slot) + (scope ? ART_EXT_SLOT : 0);
  if (g && (status = art_group_charge(g, charge))) goto refused;
  art_task *t;
  art_lock_acquire(&e->lock);
  t = storage ? storage->memory : art_mem_alloc(&e->mem, slot, &status);
  if (!t) {
    art_lock_release(&e->lock);
    if (g) art_group_uncharge(g, charge);
    goto refused;
  }
  /* The header is whole before it joins the live list or a scope: a
   * shutdown walking the one, or a cancel walking the other, may cancel (and
   * so schedule) it at once. */
  /* A local-wake task spawned from another thread reaches its driver the
   * way its wakes do: NOTIFIED, on the remote stack, with a reference. */
  int lw_remote_spawn = art_task_lw_spawn(e, flags) && !on_driver;
  atomic_init(&t->state, (scope ? ART_OWNED | ART_EXT : ART_OWNED) | (lw_remote_spawn ? ART_NOTIFIED : 0));
  atomic_init(&t->refs, (out ? 2 : 1) + lw_remote_spawn);
  t->fut = *fut;
  t->exec = e;
  t->home = e;
  t->join_waker = (asyncrt_waker){0};
  t->status = lw_remote_spawn ? ART_LS_IDLE : ART_LS_QUEUED; /* a local-wake task's state while it lives */
  t->output_size = (uint16_t)output_size;
  t->flags = (flags & ASYNCRT_SPAWN_SEND) ? ART_TF_SEND : 0;
  if (storage) {
    art_task_caller *c = (art_task_caller *)t;
    t->flags |= ART_TF_CALLER;
    c->release = storage->release;
    c->user_data = storage->user_data;
  }
  /* Unique within the executor without a shared counter: a worker's own
   * count, with its index (below 4096) in the low bits. */
  uint64_t id = e->group ? (++e->next_id << 12 | e->index) : ++e->next_id;
  art_task_ext *x = NULL;
  if (scope) { /* the child's ext and its link, in this lock hold */
    x = art_mem_alloc(&e->mem, ART_EXT_SLOT, &status);
    if (x) {
      memset(x, 0, sizeof *x);
      atomic_init(&x->cancel_deadline, UINT64_MAX);
      x->id = id;
      /* Published before the link: siblings reach it through the list. */
      atomic_store_explicit(&t->idw, (uintptr_t)x | 1, memory_order_release);
      art_lock_acquire(&scope->lock);
      status = scope_link(scope, t, x);
      art_lock_release(&scope->lock);
      if (status) {
        art_mem_release(&e->mem, x, ART_EXT_SLOT);
        x = NULL;
      }
    }
    if (!x) {
      if (!storage) art_mem_release(&e->mem, t, slot);
      art_lock_release(&e->lock);
      if (g) art_group_uncharge(g, charge);
      goto refused;
    }
  }
  if (!x) atomic_init(&t->idw, (uintptr_t)id << 1);
  t->live_prev = NULL;
  t->live_next = e->live_head;
  if (e->live_head) e->live_head->live_prev = t;
  e->live_head = t;
  e->live_count++;
  e->spawned++;
  e->headers++;
  art_lock_release(&e->lock);

  if (out) *out = t;
  if (on_driver && !e->is_foreign) {
    driver_push(e, t);
    return ASYNCRT_OK;
  }
  art_exec_push(e, t);
  if (!on_driver) atomic_fetch_sub(&e->remote_spawners, 1);
  return ASYNCRT_OK;

refused:
  if (!on_driver) atomic_fetch_sub(&e->remote_spawners, 1);
  art_drop_future(fut);
  return status;
}

int art_exec_spawn(art_exec *e, const asyncrt_future *fut, unsigned flags,
                   const asyncrt_task_storage *storage, art_task **out) {
  return spawn_impl(e, fut, flags, storage, out, NULL);
}

int art_exec_spawn_scoped(art_exec *e, const asyncrt_future *fut, unsigned flags,
                          const asyncrt_task_storage *storage, art_task **out, art_scope *scope) {
  return spawn_impl(e, fut, flags, storage, out, scope);
}

int art_exec_spawn_driven(art_exec *e, const asyncrt_future *fut, art_task **out) {
  asyncrt_context *outer = art_tls_cx;
  art_tls_cx = &e->cx;
  int status = art_exec_spawn(e, fut, 0, NULL, out);
  art_tls_cx = outer;
  return status;
}

/* A cancelled task with operations in flight: their subsystems are asked to
 * cancel them, and the task sleeps until the last completion wakes it (the
 * completion lowers the count before it wakes), so its future -- and the
 * buffers in it -- outlive every operation. Returns 0 (not a poll). */
int art_task_park_cancelled(art_exec *e, art_task *t, int status) {
  art_ops_cancel_task(e, t);
  uint32_t s = atomic_load_explicit(&t->state, memory_order_acquire);
  if (art_task_lw(t, e)) {
    /* The last completion lowers the count, then wakes the task: if it
     * came after this look, its wake queues the task again. */
    if (!ART_OPS(s)) {
      art_task_finish(e, t, status);
      return 0;
    }
    art_exec_park_lw(e, t);
    return 0;
  }
  for (;;) {
    if (!ART_OPS(s)) {
      art_task_finish(e, t, status);
      return 0;
    }
    /* Wakes do not matter now, only the count: NOTIFIED goes with OWNED
     * (a foreign host dropping the runnable never clears it, and requeueing
     * on it would loop). The count shares the word, so a completion racing
     * with this CAS makes it fail, and the loop finishes the task. */
    if (atomic_compare_exchange_weak_explicit(&t->state, &s, s & ~(uint32_t)(ART_OWNED | ART_NOTIFIED),
                                              memory_order_acq_rel, memory_order_acquire))
      return 0;
  }
}

/* Polls t once with context cx and settles what the poll asked for: done,
 * queued again (through `requeue`), or parked. Returns 0 if the task was
 * only dropped (cancelled), 1 if it was polled, 2 if it also completed, 3
 * if it was polled and queued again because it woke itself (or yielded).
 * Always inlined, so each caller gets its own copy with `requeue` fixed. */
static inline __attribute__((always_inline)) int poll_task(art_exec *e, art_task *t, asyncrt_context *cx,
                                                           void (*requeue)(art_exec *, art_task *)) {
  /* Local wakes (art.h): only the run loop's copy (requeue is a constant
   * here) has them; for those tasks NOTIFIED belongs to the remote stack.
   * Worked out only off the yield loop's path. */
#define LW() (requeue == driver_push && art_task_lw(t, e))
  /* The run loop says which poll (or drop) it is in, for the watchdog. The
   * poll function is loaded once: the stores would make it a reload. */
  int (*const poll)(void *, asyncrt_context *, void *) = t->fut.vtable->poll;
  if (requeue == driver_push) art_watch_enter(e, t, poll);
  uint32_t s = atomic_load_explicit(&t->state, memory_order_acquire);
  if (ART_UNLIKELY(s & (ART_NOTIFIED | ART_CANCEL))) {
    const int lw = LW();
    /* Clear NOTIFIED before the poll so a wake during it is not lost. */
    if ((s & ART_NOTIFIED) && !lw)
      s = atomic_fetch_and_explicit(&t->state, ~(uint32_t)ART_NOTIFIED, memory_order_acq_rel);
    if ((s & ART_CANCEL) && !art_shielded(e, s)) {
      if (lw) art_ls_set(t, ART_LS_QUEUED);
      if (ART_LIKELY(!(s & (ART_EXT | ART_HANDLED)) && !ART_OPS(s))) {
        art_task_finish(e, t, ASYNCRT_ECANCELLED);
        return 0;
      }
      return art_task_cancel_slow(e, t, cx, requeue);
    }
  }
  cx->waker.data = t;
  cx->poll_flags = 0;
  int r = poll(t->fut.self, cx, t->output_size ? art_task_output(t) : NULL);
  if (ART_LIKELY(r == ASYNCRT_POLL_PENDING)) {
    if (cx->notified) { /* woke itself: the yield loop's whole cost */
      requeue(e, t);
      return 3;
    }
  } else if (r == ASYNCRT_POLL_YIELDED) {
    requeue(e, t);
    return 3;
  } else {
    int status = r == ASYNCRT_POLL_READY ? ASYNCRT_OK
                 : r == ASYNCRT_POLL_ERROR ? (cx->failure ? cx->failure : ASYNCRT_EFAILED)
                                           : ASYNCRT_EINVAL; /* a poll result outside the enum */
    /* A task with scopes completes only after their children. */
    if (ART_UNLIKELY(art_task_needs_slow_end(t)) && art_task_before_finish(e, t, status, requeue)) return 1;
    art_task_finish(e, t, status);
    return 2;
  }
  if (LW()) { /* no atomic operation: a plain flag, unless a cancel waits */
    s = atomic_load_explicit(&t->state, memory_order_acquire);
    if (ART_UNLIKELY(s & ART_CANCEL) && !art_shielded(e, s)) requeue(e, t);
    else art_exec_park_lw(e, t);
    return 1;
  }
  s = atomic_load_explicit(&t->state, memory_order_acquire);
  for (;;) {
    if (ART_UNLIKELY(s & (ART_NOTIFIED | ART_CANCEL)) && ((s & ART_NOTIFIED) || !art_shielded(e, s))) {
      requeue(e, t); /* stays OWNED; NOTIFIED is cleared at the next poll */
      return 1;
    }
    if (atomic_compare_exchange_weak_explicit(&t->state, &s, s & ~(uint32_t)ART_OWNED,
                                              memory_order_acq_rel, memory_order_acquire))
      return 1;
  }
}
#undef LW

/* ---- foreign executors ---------------------------------------------------- */

/* A runnable is a task the foreign executor holds, with a reference of its
 * own, so a runnable that outlives its executor stays safe to run. */
void art_foreign_schedule(art_exec *e, art_task *t) {
  art_task_ref(t);
  e->foreign.schedule(e->foreign_user, (asyncrt_runnable *)t);
}

int art_runnable_run(art_task *t) {
  art_exec *e = t->exec;
  if (!(atomic_load_explicit(&t->state, memory_order_acquire) & ART_COMPLETE)) {
    /* Foreign threads run runnables concurrently: each gets its own context. */
    asyncrt_context cx = {.waker = {t, &art_task_waker_vtable}, .exec = e};
    asyncrt_context *outer = art_tls_cx;
    art_tls_cx = &cx;
    poll_task(e, t, &cx, art_foreign_schedule);
    if (cx.rich_err) art_error_unref(cx.rich_err);
    art_tls_cx = outer;
  }
  art_task_unref(t);
  return ASYNCRT_OK;
}

void art_runnable_drop(art_task *t) {
  if (!(atomic_load_explicit(&t->state, memory_order_acquire) & ART_COMPLETE)) {
    asyncrt_context cx = {.waker = {NULL, &art_task_waker_vtable}, .exec = t->exec};
    asyncrt_context *outer = art_tls_cx;
    art_tls_cx = &cx;
    uint32_t s = atomic_fetch_or(&t->state, ART_CANCEL);
    if (art_task_needs_slow_end(t)) art_task_cancel_slow(t->exec, t, &cx, art_foreign_schedule);
    else if (ART_OPS(s)) art_task_park_cancelled(t->exec, t, ASYNCRT_ECANCELLED);
    else art_task_finish(t->exec, t, ASYNCRT_ECANCELLED);
    art_tls_cx = outer;
  }
  art_task_unref(t);
}

uint64_t art_exec_run(art_exec *e, uint64_t max_polls, uint64_t deadline_ns, art_task *until) {
  uint64_t polls;
  art_exec_run_ex(e, max_polls, deadline_ns, until, &polls);
  return polls;
}

int art_exec_run_ex(art_exec *e, uint64_t max_polls, uint64_t deadline_ns, art_task *until, uint64_t *polls) {
  int exit = ART_RUN_BUDGET;
  asyncrt_context *outer = art_tls_cx;
  art_tls_cx = &e->cx;
  e->batching = 1;
  /* A new run: not the poll the last one ended in (before `running`, which
   * the watchdog reads first). */
  art_watch_enter(e, NULL, NULL);
  atomic_store(&e->running, 1);
  exec_drain_signal(e);
  uint64_t n = 0, tick_n = 0, self_wakes = 0;
  /* A turn: every 64 polls, or every budget_polls if that is fewer, and
   * sooner when a tick falls due inside one (below). */
  const unsigned turn_len = e->budget_polls < 64 ? (unsigned)e->budget_polls : 64;
  unsigned turn = turn_len;
  int idle = 1;
  /* Timers due and subsystems ready while the driver was away. */
  if (ART_UNLIKELY(art_core_waiting(e))) art_core_tick(e);
  while (n < max_polls) {
    art_task *t = local_pop(e);
    if (ART_UNLIKELY(!t)) {
      if (e->group && (t = art_group_send_pop(e))) goto poll;
      if (e->group && art_group_take_requests(e)) continue;
      if (e->group && art_group_refill(e)) continue;
      if (!exec_take_remote(e)) {
        /* Out of tasks: a tick before giving up, and on if it woke some
         * (a completion, or a cancellation it sent that completed at once).
         * Subsystem fds first: their edges are consumed here when a host,
         * not this driver, waits on the epoll set. */
        if (ART_UNLIKELY(atomic_load_explicit(&e->fd_watch, memory_order_relaxed))) art_core_harvest_fds(e);
        if (art_core_waiting(e)) {
          art_core_tick(e);
          tick_n = n;
          if (art_exec_has_work(e)) continue;
        }
        exit = ART_RUN_DRAINED;
        break;
      }
      continue;
    }
  poll:
    idle = 0;
    int polled = poll_task(e, t, &e->cx, driver_push);
    n += polled != 0;
    self_wakes += polled == 3;
    if (ART_UNLIKELY(polled == 2) && t == until) { /* `until` is alive: its caller holds a reference */
      exit = ART_RUN_UNTIL;
      break;
    }
    if (ART_UNLIKELY(!--turn)) {
      turn = turn_len;
      int waiting = art_core_waiting(e);
      exec_take_remote(e); /* remote wakes are not starved by a busy local queue */
      /* Nor are Send tasks (this core's, or injected) by local tasks that
       * keep yielding. */
      if (e->group) {
        if ((t = art_group_take_injected(e->group))) {
          __atomic_store_n(&t->exec, e, __ATOMIC_RELAXED); /* the dump and wakers read it */
          atomic_fetch_add_explicit(&e->steals, 1, memory_order_relaxed);
          local_push(e, t);
        }
        if ((t = art_group_send_pop(e))) local_push(e, t);
        if (art_group_requests_pending(e)) art_group_take_requests(e);
      }
      if (ART_UNLIKELY(waiting)) {
        if (n - tick_n >= e->budget_polls || art_now_ns() >= e->next_tick_ns) {
          art_core_tick(e); /* the budget: timers and subsystems are not starved */
          art_count(&e->budget_yields, 1);
          tick_n = n;
        }
        /* The next look falls on the poll the budget names. */
        uint64_t left = tick_n + e->budget_polls - n;
        if (left < turn) turn = left ? (unsigned)left : 1;
      }
      if (deadline_ns && art_now_ns() >= deadline_ns) break;
    }
  }
  atomic_store_explicit(&e->polls, atomic_load_explicit(&e->polls, memory_order_relaxed) + n,
                        memory_order_relaxed);
  art_count(&e->wakes_local, self_wakes);
  e->cx.waker.data = NULL;
  if (ART_UNLIKELY(e->cx.rich_err)) { /* named by a poll that did not end its task */
    art_error_unref(e->cx.rich_err);
    e->cx.rich_err = NULL;
  }
  e->batching = 0;
  retire_flush(e);
  if (idle) exec_read_eventfd(e); /* see exec_signal */
  if (ART_UNLIKELY(e->timerfd >= 0 && atomic_load_explicit(&e->fd_mode, memory_order_relaxed)))
    art_core_sync_timerfd(e);
  atomic_store(&e->running, 0);
  /* Work left (a bounded step, or a wake that raced with the exit) keeps the
   * pollable fd readable for a host loop. */
  if (local_pending(e) || atomic_load(&e->remote_head)) exec_signal(e);
  art_tls_cx = outer;
  *polls = n;
  return exit;
}

void art_exec_refuse_spawns(art_exec *e) {
  atomic_store(&e->shutdown, 1);
  while (atomic_load(&e->remote_spawners)) sched_yield();
}

void art_exec_shutdown(art_exec *e) {
  art_exec_refuse_spawns(e);
  asyncrt_context *outer = art_tls_cx;
  art_tls_cx = &e->cx; /* drops run "inside" the executor: driving calls are refused */
  atomic_store(&e->immediate, 1);
  for (;;) {
    /* Children before their parents: a task whose scopes still have live
     * children waits for a later pass (children are newer, so the list's
     * newest-first order usually needs one). A child on another core that
     * never finishes would leave its parent here: then the parent goes too,
     * its scope kept alive by the child's reference. */
    art_lock_acquire(&e->lock);
    art_task *t = e->live_head, *pick = NULL;
    for (unsigned seen = 0; t && seen < 4096; t = t->live_next, seen++) {
      art_task_ext *x = art_task_ext_of(t);
      if (!x || !atomic_load(&x->busy)) {
        pick = t;
        break;
      }
    }
    if (!pick) pick = e->live_head;
    art_lock_release(&e->lock);
    if (!pick) break;
    atomic_fetch_or(&pick->state, ART_CANCEL);
    art_task_finish(e, pick, ASYNCRT_ECANCELLED);
  }
  /* Every task is COMPLETE now, so no wake can queue one again. */
  e->ring_head = e->ring_tail = 0;
  e->ring_room = e->ring ? e->ring_mask + 1 : 0;
  e->overflow_head = e->overflow_tail = NULL;
  drain_remote(e);
  e->cx.waker.data = NULL;
  art_tls_cx = outer;
}

/* The tasks are taken 256 at a time (with a reference each) from a cursor
 * that leaving the live list moves along, and cancelled after the lock:
 * queueing a task (a foreign host's callback, a futex wake) never runs
 * under the core's lock. One walk at a time. */
void art_exec_cancel_all(art_exec *e) {
  static pthread_mutex_t one_walk = PTHREAD_MUTEX_INITIALIZER;
  atomic_store(&e->immediate, 1);
  art_exec_refuse_spawns(e);
  pthread_mutex_lock(&one_walk);
  art_task *batch[256];
  art_lock_acquire(&e->lock);
  e->walk_cursor = e->live_head;
  while (e->walk_cursor) {
    unsigned n = 0;
    for (art_task *t = e->walk_cursor; t && n < 256; t = t->live_next) {
      art_task_ref(t);
      batch[n++] = t;
      e->walk_cursor = t->live_next;
    }
    art_lock_release(&e->lock);
    for (unsigned i = 0; i < n; i++) {
      art_task_cancel_now(batch[i]);
      art_task_unref(batch[i]);
    }
    art_lock_acquire(&e->lock);
  }
  art_lock_release(&e->lock);
  pthread_mutex_unlock(&one_walk);
}

/* ---- block_on on a local executor ------------------------------------------ */

/* The caller's thread runs the executor until the root completes, parking on
 * the core's futex when nothing is runnable. The control plane enters this
 * once per block_on, so the whole wait is one cgo call. A Go loop of
 * run/park calls looked to Go's sysmon like a goroutine that never yields,
 * and after 10 ms Go handed its P to a fresh thread at every park: a third
 * thread woke on every cross-thread wake. Being one call from Go also keeps
 * a crash in a poll reported with Go's symbolized traceback. */
int art_exec_block_on(art_exec *e, const asyncrt_future *fut, void *out, int64_t timeout_ns, uint64_t grace_ns) {
  if (art_in_poll()) {
    art_drop_future(fut);
    return art_fail(ASYNCRT_EREENTRANT, "cannot drive an executor from inside a poll");
  }
  if (!art_exec_acquire_driver(e)) {
    art_drop_future(fut);
    return art_fail(ASYNCRT_EBUSY, "executor is already driven by another thread");
  }
  art_task *root;
  int status = art_exec_spawn_driven(e, fut, &root);
  if (status) {
    art_exec_release_driver(e);
    return status;
  }
  uint64_t deadline = timeout_ns >= 0 ? art_now_ns() + (uint64_t)timeout_ns : 0, spin_until = 0;
  long saved_slack = -1;
  int timed_out = 0;
  for (;;) {
    uint64_t polls;
    int why = art_exec_run_ex(e, 1u << 16, deadline, root, &polls);
    if (why == ART_RUN_UNTIL || (atomic_load_explicit(&root->state, memory_order_acquire) & ART_COMPLETE)) break;
    uint64_t now = deadline || e->busy_nofd ? art_now_ns() : 0;
    if (timed_out) {
      /* The cancel and what it made runnable have run. A root still
       * unfinished waits for something (a shielded scope's child, a
       * cleanup's timer) that the bound does not wait for: it stays a task
       * of the core, cancelled, finished by a later run or the free. */
      if (why == ART_RUN_DRAINED || now >= deadline) break;
      continue;
    }
    if (deadline && now >= deadline) {
      timed_out = 1;
      art_task_cancel(root); /* processed by the next run */
      deadline = now + grace_ns > now ? now + grace_ns : UINT64_MAX; /* bounds the runs after it */
      continue;
    }
    if (polls) spin_until = 0;
    if (why != ART_RUN_DRAINED) continue;
    if (e->busy_nofd) { /* a subsystem without an fd waits: tick for the spin time first */
      if (!spin_until) spin_until = now + e->spin_ns;
      if (now < spin_until) {
        __builtin_ia32_pause();
        continue;
      }
    }
    if (ART_UNLIKELY(saved_slack < 0 && atomic_load_explicit(&e->timers_armed, memory_order_relaxed))) {
      /* Sleeping for a timer: ask for 1 us of timer slack, not the
       * kernel's default 50 us. The caller's thread gets its own slack back
       * when block_on returns. */
      saved_slack = prctl(PR_GET_TIMERSLACK, 0, 0, 0, 0);
      if (saved_slack >= 0) prctl(PR_SET_TIMERSLACK, 1000UL, 0, 0, 0);
      else saved_slack = 0; /* cannot read it: leave it alone */
    }
    int64_t bound = art_core_sleep_bound(e, deadline && !timed_out ? (int64_t)(deadline - now) : -1);
    uint64_t parked_at = art_now_ns();
    art_core_park(e, bound);
    atomic_fetch_add_explicit(&e->parks, 1, memory_order_relaxed); /* as a worker counts its parks */
    atomic_fetch_add_explicit(&e->parked_ns, art_now_ns() - parked_at, memory_order_relaxed);
  }
  if (saved_slack > 0) prctl(PR_SET_TIMERSLACK, (unsigned long)saved_slack, 0, 0, 0);
  /* Unfinished, its status field is still the driver's queue state. */
  int complete = (atomic_load_explicit(&root->state, memory_order_acquire) & ART_COMPLETE) != 0;
  status = complete ? root->status : ASYNCRT_ETIMEDOUT;
  if (!complete) {
    art_fail(ASYNCRT_ETIMEDOUT,
                      "block_on: the future did not complete within %lld ns; it was cancelled and is still "
                      "finishing on the executor",
                      (long long)timeout_ns);
  } else if (status == ASYNCRT_OK) {
    if (root->output_size && out) memcpy(out, art_task_output(root), root->output_size);
  } else if (timed_out && status == ASYNCRT_ECANCELLED) {
    status = art_fail(ASYNCRT_ETIMEDOUT, "block_on: the future did not complete within %lld ns; it was cancelled",
                      (long long)timeout_ns);
  } else {
    /* The message the future named its failure with, if it did. */
    asyncrt_error_info info = {.size = sizeof info};
    if (!art_task_error_get(root, &info) && info.message && info.message[0])
      art_fail(status, "block_on: %s", info.message);
    else
      art_fail(status, "block_on: the future %s", status == ASYNCRT_ECANCELLED ? "was cancelled" : "failed");
  }
  art_task_unref(root);
  art_exec_release_driver(e);
  return status;
}
