/* art_group.c -- thread-per-core groups: placement, Send rings, the
 * injector, stealing, and the park/unpark handshake.
 *
 * Local tasks never leave their worker's local ring. Send tasks a worker
 * queues go to its Send ring (256 slots; the owner pushes, anyone pops with
 * a CAS on the head); when the ring is full, half of it moves to the group's
 * injector under one lock. An idle worker steals half of a sibling's ring,
 * or a batch from the injector, into its own local ring, and becomes the
 * tasks' core (t->exec); their memory and live-list entry stay with the core
 * that spawned them (t->home).
 *
 * Unparking: a worker about to sleep counts itself idle and then looks for
 * work once more; a worker that queues stealable work looks at the idle count
 * and wakes one sleeper. Both sides use sequentially consistent operations,
 * so at least one of them sees the other.
 */
#include <stdlib.h>

#include "art.h"

#define STEAL_BATCH 128u

art_group *art_group_new(art_exec **cores, unsigned n, size_t memory_limit) {
  art_group *g = calloc(1, sizeof *g);
  art_exec **workers = g ? calloc(n, sizeof *workers) : NULL;
  if (!workers) {
    free(g);
    art_fail(ASYNCRT_ENOMEM, "could not allocate a thread-per-core executor");
    return NULL;
  }
  g->nworkers = n;
  g->workers = workers;
  g->mem_limit = memory_limit;
  atomic_init(&g->cores_left, n);
  for (unsigned i = 0; i < n; i++) {
    workers[i] = cores[i];
    cores[i]->group = g;
    cores[i]->index = i;
  }
  return g;
}

art_exec *art_group_place(art_group *g, unsigned flags) {
  unsigned worker = (flags >> 8) & 0xffffu;
  if (worker) {
    if (worker > g->nworkers) {
      art_fail(ASYNCRT_EINVAL, "ASYNCRT_SPAWN_WORKER(%u): the executor has %u workers", worker - 1, g->nworkers);
      return NULL;
    }
    return g->workers[worker - 1];
  }
  asyncrt_context *cx = art_tls_cx;
  if (cx && cx->exec && cx->exec->group == g) return cx->exec;
  return g->workers[atomic_fetch_add_explicit(&g->next_worker, 1, memory_order_relaxed) % g->nworkers];
}

/* Wakes one parked worker other than `self`, if any is parked. Callers call
 * it when work appears where a parker looked and found none (a Send ring going
 * from empty to non-empty, the injector); the fence pairs with the one in
 * art_worker_prepare_park, so either the parker sees the work or this sees
 * the parker. */
static void unpark_one(art_group *g, art_exec *self) {
  atomic_thread_fence(memory_order_seq_cst);
  if (!atomic_load_explicit(&g->idle, memory_order_relaxed)) return;
  for (unsigned i = 0; i < g->nworkers; i++) {
    art_exec *w = g->workers[i];
    int parked = 1;
    if (w != self && atomic_compare_exchange_strong(&w->parked, &parked, 0)) {
      art_exec_wake_driver(w);
      return;
    }
  }
}

static void inject(art_group *g, art_task *first, art_task *last, uint64_t n) {
  last->next = NULL;
  art_lock_acquire(&g->inject_lock);
  if (g->inject_tail) g->inject_tail->next = first;
  else g->inject_head = first;
  g->inject_tail = last;
  atomic_fetch_add(&g->inject_len, n);
  art_lock_release(&g->inject_lock);
}

void art_group_inject(art_group *g, art_task *t) {
  inject(g, t, t, 1);
  unpark_one(g, NULL);
}

art_task *art_group_take_injected(art_group *g) {
  if (!atomic_load_explicit(&g->inject_len, memory_order_relaxed)) return NULL;
  art_lock_acquire(&g->inject_lock);
  art_task *t = g->inject_head;
  if (t) {
    if (!(g->inject_head = t->next)) g->inject_tail = NULL;
    atomic_fetch_sub(&g->inject_len, 1);
  }
  art_lock_release(&g->inject_lock);
  return t;
}

void art_group_send_push(art_exec *e, art_task *t) {
  uint64_t tail = atomic_load_explicit(&e->send_tail, memory_order_relaxed);
  uint64_t head = atomic_load_explicit(&e->send_head, memory_order_acquire);
  if (ART_LIKELY(tail - head < ART_SEND_RING)) {
    atomic_store_explicit(&e->send_ring[tail % ART_SEND_RING], t, memory_order_relaxed);
    atomic_store_explicit(&e->send_tail, tail + 1, memory_order_release);
    /* A worker that parked saw this ring empty, so only the push that makes
     * it non-empty needs to look for one to wake. */
    if (tail == head) unpark_one(e->group, e);
    return;
  } else {
    /* Full: claim the older half and move it, with t, to the injector. */
    uint64_t half = ART_SEND_RING / 2;
    if (atomic_compare_exchange_strong(&e->send_head, &head, head + half)) {
      art_task *first = atomic_load_explicit(&e->send_ring[head % ART_SEND_RING], memory_order_relaxed);
      art_task *last = first;
      for (uint64_t i = 1; i < half; i++) {
        art_task *next = atomic_load_explicit(&e->send_ring[(head + i) % ART_SEND_RING], memory_order_relaxed);
        last->next = next;
        last = next;
      }
      last->next = t;
      inject(e->group, first, t, half + 1);
    } else {
      inject(e->group, t, t, 1); /* a thief just made room; keep it simple */
    }
  }
  unpark_one(e->group, e);
}

art_task *art_group_send_pop(art_exec *e) {
  uint64_t head = atomic_load_explicit(&e->send_head, memory_order_acquire);
  for (;;) {
    uint64_t tail = atomic_load_explicit(&e->send_tail, memory_order_acquire);
    if (head >= tail) return NULL;
    art_task *t = atomic_load_explicit(&e->send_ring[head % ART_SEND_RING], memory_order_relaxed);
    if (atomic_compare_exchange_weak_explicit(&e->send_head, &head, head + 1, memory_order_acq_rel,
                                              memory_order_acquire))
      return t;
  }
}

/* ---- spawn requests ---------------------------------------------------------- */

/* A worker that spawns many Send tasks in one poll would otherwise write
 * every header itself: slots that the thieves running those tasks freed a
 * moment ago, so each header is a cache line (two) pulled back from them,
 * while they run faster than it spawns. A request is three words in a ring
 * that thieves read in batches, and the header is written by the worker that
 * runs it, in memory its own cache holds. The task keeps the spawner's
 * memory and live list (its home), as a stolen Send task does. */

#define REQ_BATCH 64u

int art_group_requests_pending(art_exec *e) {
  return atomic_load(&e->req_head) != atomic_load(&e->req_tail);
}

/* Copies up to max requests from the head of victim's ring and claims them
 * with a CAS; returns how many (a failed CAS means another taker won them,
 * and the copies are stale: look again). */
static unsigned take_reqs(art_exec *victim, art_req *out, uint64_t max, int half) {
  uint64_t head = atomic_load_explicit(&victim->req_head, memory_order_acquire);
  for (;;) {
    uint64_t tail = atomic_load_explicit(&victim->req_tail, memory_order_acquire);
    if (head >= tail) return 0;
    uint64_t n = half ? (tail - head + 1) / 2 : tail - head;
    if (n > max) n = max;
    for (uint64_t i = 0; i < n; i++) {
      art_spawn_req *r = &victim->req_ring[(head + i) % ART_REQ_RING];
      out[i].self = atomic_load_explicit(&r->self, memory_order_relaxed);
      out[i].vtable = atomic_load_explicit(&r->vtable, memory_order_relaxed);
      out[i].slot = atomic_load_explicit(&r->slot, memory_order_relaxed);
      out[i].home = victim;
    }
    if (atomic_compare_exchange_weak_explicit(&victim->req_head, &head, head + n, memory_order_acq_rel,
                                              memory_order_acquire))
      return (unsigned)n;
  }
}

/* The group's overflow for requests: chunks of copies. A chunk is a few
 * pages' worth of the heap, and an emptied one is kept for the next burst
 * (up to REQ_FREE_MAX of them), so a burst of spawns does not page-fault
 * its way through fresh memory each time. */
#define REQ_CHUNK (ART_REQ_RING / 2)
#define REQ_FREE_MAX 1024u

typedef struct art_req_chunk {
  struct art_req_chunk *next;
  unsigned first, n;
  art_req r[REQ_CHUNK];
} art_req_chunk;

void art_group_free_chunks(art_group *g) {
  for (art_req_chunk *c = g->req_head, *next; c; c = next) {
    next = c->next;
    free(c);
  }
  for (art_req_chunk *c = g->req_free, *next; c; c = next) {
    next = c->next;
    free(c);
  }
  g->req_head = g->req_tail = g->req_free = NULL;
}

/* Moves the older half of e's full ring to the group's overflow, so the
 * driver can go on queueing while thieves take from there. Returns 0 if
 * there was no memory for it (the caller spawns the ordinary way). */
static int req_spill(art_exec *e) {
  art_group *g = e->group;
  art_lock_acquire(&g->req_lock);
  art_req_chunk *c = g->req_free;
  if (c) {
    g->req_free = c->next;
    g->req_nfree--;
  } else if (!(c = malloc(sizeof *c))) {
    art_lock_release(&g->req_lock);
    return 0;
  }
  c->next = NULL;
  c->first = 0;
  c->n = take_reqs(e, c->r, REQ_CHUNK, 0);
  if (!c->n) { /* thieves emptied the ring meanwhile: room enough */
    c->next = g->req_free;
    g->req_free = c;
    g->req_nfree++;
    art_lock_release(&g->req_lock);
    return 1;
  }
  if (g->req_tail) g->req_tail->next = c;
  else g->req_head = c;
  g->req_tail = c;
  atomic_fetch_add(&g->req_len, c->n);
  art_lock_release(&g->req_lock);
  unpark_one(g, e);
  return 1;
}

/* Takes a fair share of the overflow (at most max), from its oldest chunk. */
static unsigned take_spilled(art_group *g, art_req *out, uint64_t max) {
  if (!atomic_load_explicit(&g->req_len, memory_order_relaxed)) return 0;
  art_req_chunk *done = NULL;
  art_lock_acquire(&g->req_lock);
  art_req_chunk *c = g->req_head;
  unsigned n = 0;
  if (c) {
    uint64_t want = atomic_load_explicit(&g->req_len, memory_order_relaxed) / g->nworkers + 1;
    if (want > max) want = max;
    if (want > c->n) want = c->n;
    for (; n < want; n++) out[n] = c->r[c->first + n];
    c->first += n;
    c->n -= n;
    if (!c->n) {
      if (!(g->req_head = c->next)) g->req_tail = NULL;
      if (g->req_nfree < REQ_FREE_MAX) {
        c->next = g->req_free;
        g->req_free = c;
        g->req_nfree++;
      } else {
        done = c;
      }
    }
    atomic_fetch_sub(&g->req_len, n);
  }
  art_lock_release(&g->req_lock);
  free(done);
  return n;
}

int art_group_request(art_exec *e, const asyncrt_future *fut) {
  uint64_t tail = atomic_load_explicit(&e->req_tail, memory_order_relaxed);
  uint64_t head = atomic_load_explicit(&e->req_head, memory_order_acquire);
  if (ART_UNLIKELY(tail - head >= ART_REQ_RING)) {
    if (!req_spill(e)) return 0;
    head = atomic_load_explicit(&e->req_head, memory_order_acquire);
    if (tail - head >= ART_REQ_RING) return 0;
  }
  if (!e->req_nslots && !art_exec_slots_refill(e)) return 0;
  art_spawn_req *r = &e->req_ring[tail % ART_REQ_RING];
  atomic_store_explicit(&r->self, fut->self, memory_order_relaxed);
  atomic_store_explicit(&r->vtable, fut->vtable, memory_order_relaxed);
  atomic_store_explicit(&r->slot, e->req_slots[--e->req_nslots], memory_order_relaxed);
  /* Counted before it can be taken (the tail's release publishes both). */
  atomic_store_explicit(&e->req_pushed, atomic_load_explicit(&e->req_pushed, memory_order_relaxed) + 1,
                        memory_order_relaxed);
  atomic_store_explicit(&e->req_tail, tail + 1, memory_order_release);
  /* As for the Send ring: a parked worker saw this ring empty. */
  if (tail == head) unpark_one(e->group, e);
  return 1;
}

unsigned art_group_take_requests(art_exec *e) {
  art_req got[REQ_BATCH];
  unsigned n = take_reqs(e, got, REQ_BATCH, 0);
  if (!n) n = take_spilled(e->group, got, REQ_BATCH);
  art_exec_adopt_requests(e, got, n);
  return n;
}

/* Takes from the overflow, else half of a sibling's requests (at most a
 * batch); 0 if there are none. */
static unsigned steal_requests(art_exec *thief) {
  art_group *g = thief->group;
  art_req got[REQ_BATCH];
  unsigned n = take_spilled(g, got, REQ_BATCH);
  for (unsigned k = 1; !n && k < g->nworkers; k++)
    n = take_reqs(g->workers[(thief->index + k) % g->nworkers], got, REQ_BATCH, 1);
  if (!n) return 0;
  art_exec_adopt_requests(thief, got, n);
  atomic_fetch_add_explicit(&thief->steals, n, memory_order_relaxed);
  if (n > 1) unpark_one(g, thief); /* there may be more for others */
  return n;
}

/* Takes up to half of victim's Send ring; returns how many. */
static unsigned steal_ring(art_exec *victim, art_task **out) {
  uint64_t head = atomic_load_explicit(&victim->send_head, memory_order_acquire);
  for (;;) {
    uint64_t tail = atomic_load_explicit(&victim->send_tail, memory_order_acquire);
    if (head >= tail) return 0;
    uint64_t n = (tail - head + 1) / 2;
    if (n > STEAL_BATCH) n = STEAL_BATCH;
    for (uint64_t i = 0; i < n; i++)
      out[i] = atomic_load_explicit(&victim->send_ring[(head + i) % ART_SEND_RING], memory_order_relaxed);
    if (atomic_compare_exchange_weak_explicit(&victim->send_head, &head, head + n, memory_order_acq_rel,
                                              memory_order_acquire))
      return (unsigned)n;
  }
}

/* Takes a fair share of the injector (at most STEAL_BATCH). The list is
 * detached whole under the lock and walked outside it: walking it under the
 * lock would take a cache miss per task (the headers were written by the
 * worker that injected them) while the injecting worker waits. What is not
 * taken goes back to the front. */
static unsigned take_injected(art_group *g, art_task **out) {
  if (!atomic_load_explicit(&g->inject_len, memory_order_relaxed)) return 0;
  art_lock_acquire(&g->inject_lock);
  art_task *list = g->inject_head, *tail = g->inject_tail;
  uint64_t len = atomic_load(&g->inject_len);
  g->inject_head = g->inject_tail = NULL;
  atomic_store(&g->inject_len, 0);
  art_lock_release(&g->inject_lock);
  if (!list) return 0;
  uint64_t want = len / g->nworkers + 1;
  if (want > STEAL_BATCH) want = STEAL_BATCH;
  unsigned n = 0;
  while (n < want && list) {
    out[n++] = list;
    list = list->next;
  }
  if (list) {
    art_lock_acquire(&g->inject_lock);
    tail->next = g->inject_head;
    g->inject_head = list;
    if (!g->inject_tail) g->inject_tail = tail;
    atomic_fetch_add(&g->inject_len, len - n);
    art_lock_release(&g->inject_lock);
  }
  return n;
}

/* Makes `thief` the core of n taken tasks and queues them on its ring. */
static unsigned adopt(art_exec *thief, art_task **got, unsigned n) {
  if (!n) return 0;
  /* The thief becomes the tasks' core; run them from its local ring. The
   * write to exec happens before this worker polls them, and every later
   * waker reads it after winning the task's OWNED bit from that poll. */
  for (unsigned i = 0; i < n; i++) {
    __atomic_store_n(&got[i]->exec, thief, __ATOMIC_RELAXED); /* the dump and wakers read it */
    art_exec_push_local(thief, got[i]); /* not its Send ring: no stealing back */
  }
  atomic_fetch_add_explicit(&thief->steals, n, memory_order_relaxed);
  if (n > 1) unpark_one(thief->group, thief); /* there may be more for others */
  return n;
}

unsigned art_group_refill(art_exec *e) {
  art_task *got[STEAL_BATCH];
  return adopt(e, got, take_injected(e->group, got));
}

unsigned art_group_steal(art_exec *thief) {
  art_group *g = thief->group;
  art_task *got[STEAL_BATCH];
  unsigned n = take_injected(g, got);
  for (unsigned k = 1; !n && k < g->nworkers; k++)
    n = steal_ring(g->workers[(thief->index + k) % g->nworkers], got);
  if (!n) return steal_requests(thief);
  return adopt(thief, got, n);
}

int art_group_stealable(art_group *g, art_exec *except) {
  if (atomic_load(&g->inject_len) || atomic_load(&g->req_len)) return 1;
  for (unsigned i = 0; i < g->nworkers; i++) {
    art_exec *w = g->workers[i];
    if (w != except && (atomic_load(&w->send_head) != atomic_load(&w->send_tail) || art_group_requests_pending(w)))
      return 1;
  }
  return 0;
}

int art_worker_prepare_park(art_exec *e) {
  atomic_store(&e->parked, 1);
  atomic_fetch_add(&e->group->idle, 1);
  atomic_thread_fence(memory_order_seq_cst);
  if (art_exec_has_work(e) || art_group_stealable(e->group, e)) {
    art_worker_unparked(e);
    return 0;
  }
  atomic_fetch_add_explicit(&e->parks, 1, memory_order_relaxed);
  return 1;
}

void art_worker_unparked(art_exec *e) {
  atomic_store(&e->parked, 0);
  atomic_fetch_sub(&e->group->idle, 1);
}

uint64_t art_group_live(art_group *g) {
  uint64_t live = 0; /* injected tasks count on the core that spawned them */
  for (unsigned i = 0; i < g->nworkers; i++) {
    art_exec *w = g->workers[i];
    art_lock_acquire(&w->lock);
    /* Requests are tasks to be, wherever they are (ring, overflow, a
     * taker's hands): a task leaves that count in the lock hold that puts
     * it on this list. */
    live += w->live_count + (atomic_load_explicit(&w->req_pushed, memory_order_acquire) - w->req_done);
    art_lock_release(&w->lock);
  }
  return live;
}

void art_group_drain_injector(art_group *g) {
  /* Requests left once the workers are gone (none in a normal stop: the
   * workers wait for them) are dropped here. */
  for (unsigned i = 0; i < g->nworkers; i++) {
    art_exec *w = g->workers[i];
    art_req got[REQ_BATCH];
    unsigned n;
    asyncrt_context *outer = art_tls_cx;
    art_tls_cx = &w->cx;
    atomic_store(&w->immediate, 1);
    while ((n = take_reqs(w, got, REQ_BATCH, 0)) || (n = take_spilled(g, got, REQ_BATCH)))
      art_exec_adopt_requests(w, got, n);
    art_tls_cx = outer;
  }
  for (;;) {
    art_lock_acquire(&g->inject_lock);
    art_task *t = g->inject_head;
    if (t) {
      g->inject_head = t->next;
      if (!g->inject_head) g->inject_tail = NULL;
      atomic_fetch_sub(&g->inject_len, 1);
    }
    art_lock_release(&g->inject_lock);
    if (!t) return;
    art_exec *e = t->exec;
    asyncrt_context *outer = art_tls_cx;
    art_tls_cx = &e->cx;
    atomic_fetch_or(&t->state, ART_CANCEL);
    art_task_finish(e, t, ASYNCRT_ECANCELLED);
    art_tls_cx = outer;
  }
}

/* ---- a worker's life --------------------------------------------------------- */

static int spin_for_work(art_exec *e, uint64_t spin_ns) {
  if (!spin_ns) return 0;
  uint64_t deadline = art_now_ns() + spin_ns;
  for (unsigned i = 0;; i++) {
    if (art_exec_has_work(e) || art_group_stealable(e->group, e)) return 1;
    /* A subsystem without an fd is busy-polled while the worker spins. */
    if (e->busy_nofd && art_core_tick(e) && art_exec_has_work(e)) return 1;
    if (!(i & 15) && art_now_ns() >= deadline) return 0;
    __builtin_ia32_pause();
  }
}

static void call_hook(void (*hook)(unsigned, void *), const asyncrt_thread_hooks *h, unsigned worker) {
  if (h && hook) hook(worker, h->user_data);
}

/* The whole loop is one call from the control plane, which starts it on a
 * thread of its own and sees it return when the group is stopping and no
 * task is left. It calls the worker's start and stop hooks around itself. A Go loop of run/park calls looked to Go's sysmon like a
 * goroutine that never yields, and Go then handed its P to a fresh thread at
 * every park. */
void art_worker_loop(art_exec *e, const art_worker_config *cfg) {
  art_group *g = e->group;
  const asyncrt_thread_hooks *h = cfg->hooks;
  call_hook(h ? h->on_start : NULL, h, e->index);
  for (;;) {
    uint64_t polls;
    int why = art_exec_run_ex(e, cfg->budget_polls, art_now_ns() + cfg->budget_ns, NULL, &polls);
    if (polls) e->backoff_ns = 0;
    if (why != ART_RUN_DRAINED) continue;
    if (art_group_steal(e)) continue;
    /* The slots kept for spawn requests go back while the worker is idle,
     * so an idle executor holds no task memory it does not use. */
    if (e->req_nslots) {
      art_exec_release_slots(e, e->req_slots, e->req_nslots, 0);
      e->req_nslots = 0;
    }
    if (atomic_load(&g->stopping) && art_group_live(g) == 0) {
      call_hook(h ? h->on_stop : NULL, h, e->index);
      return;
    }
    /* Spin, unless a busy-polled subsystem has the worker backing off. */
    if (!e->backoff_ns && spin_for_work(e, cfg->spin_ns)) continue;
    if (art_worker_prepare_park(e)) {
      call_hook(h ? h->on_park : NULL, h, e->index);
      uint64_t t0 = art_now_ns();
      /* Bounded: shutdown is seen even without a wake. The bound shrinks
       * to the next timer, and to the back-off of a busy subsystem. */
      art_core_park(e, art_core_sleep_bound(e, (int64_t)cfg->park_bound_ns));
      atomic_fetch_add_explicit(&e->parked_ns, art_now_ns() - t0, memory_order_relaxed);
      art_worker_unparked(e);
      call_hook(h ? h->on_unpark : NULL, h, e->index);
    }
  }
}
