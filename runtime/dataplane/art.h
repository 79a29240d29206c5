/*
 * art.h -- the C data plane's internal interface.
 *
 * Everything asyncrt touches per task lives here, in C memory, worked by C
 * code: task headers, run queues, wakers, join futures, task memory, handles.
 * The Go control plane (runtime/executor) creates and frees executors, parks
 * their drivers and reports errors; it enters this code once per batch of
 * polls, never per task. See doc.go for the design and its invariants.
 *
 * These files build on their own (see test/Makefile) so that sanitizers and
 * fuzzers can work on the data plane without Go.
 */
#ifndef ART_H
#define ART_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "../../include/asyncrt.h"

/* Everything declared below is internal to the library: hidden, so that
 * references between the data plane's files bind directly instead of
 * through the GOT (the public asyncrt_* functions keep their explicit
 * default visibility from asyncrt.h). */
#pragma GCC visibility push(hidden)

#define ART_LIKELY(x) __builtin_expect(!!(x), 1)
#define ART_UNLIKELY(x) __builtin_expect(!!(x), 0)

/* Prefetch for writing: a line another core wrote last arrives owned, not
 * shared and then upgraded with a second round trip at the store. gcc emits
 * PREFETCHW for __builtin_prefetch(p, 1) only with -mprfchw, which cgo
 * refuses in #cgo CFLAGS, hence the asm. x86-64 CPUs without PRFCHW run it
 * as a NOP. */
#if defined(__x86_64__)
#define ART_PREFETCH_W(p) __asm__ volatile("prefetchw (%0)" : : "r"((const void *)(p)))
#else
#define ART_PREFETCH_W(p) __builtin_prefetch((p), 1)
#endif
#define ART_CACHELINE 64

/* ---- errors (art_error.c) ------------------------------------------------ */

/* Records status and a printf-style message as this thread's last error and
 * returns status, so callers can write `return art_fail(...)`. */
int art_fail(int status, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* art_fail with ASYNCRT_EOS: the message ends with strerror(err), and err
 * is this thread's asyncrt_last_errno(). */
int art_fail_os(int err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int art_last_errno(void);
const char *art_status_str(int status);
const char *art_last_error(void);
int art_last_status(void);

/* Nonzero when every entry point refuses: ART_REFUSE_FORKED, set in the
 * child by a pthread_atfork handler, or ART_REFUSE_COPY, set at load by a
 * second copy of the library in one process (capi/copies.c), with
 * art_copy_refusal saying why. art_fail_forked records the matching error. */
#define ART_REFUSE_FORKED 1
#define ART_REFUSE_COPY 2
extern _Atomic int art_forked;
extern char art_copy_refusal[512];
static inline int art_is_forked(void) {
  return ART_UNLIKELY(atomic_load_explicit(&art_forked, memory_order_relaxed));
}
int art_fail_forked(void);

/* ---- structs that grow ------------------------------------------------------ */

/* Copies the fields after the leading `size_t size` of a struct that grows
 * (see the header's ABI note), as many as both sides have: from the
 * library's struct to the caller's, or the caller's to the library's. The
 * destination's `size` is left alone. */
static inline void art_copy_sized(void *dst, size_t dst_size, const void *src, size_t src_size) {
  size_t n = dst_size < src_size ? dst_size : src_size;
  if (n > sizeof(size_t))
    __builtin_memcpy((char *)dst + sizeof(size_t), (const char *)src + sizeof(size_t), n - sizeof(size_t));
}

/* ---- a short spin lock ---------------------------------------------------- */

/* Guards a few instructions at a time (a free-list pop, a list unlink), so a
 * spinning waiter is cheaper than a futex round trip; it yields the CPU if the
 * holder was preempted. */
typedef struct { _Atomic int held; } art_lock;
void art_lock_slow(art_lock *l);
static inline void art_lock_acquire(art_lock *l) {
  if (ART_LIKELY(!atomic_exchange_explicit(&l->held, 1, memory_order_acquire))) return;
  art_lock_slow(l);
}
static inline void art_lock_release(art_lock *l) {
  atomic_store_explicit(&l->held, 0, memory_order_release);
}

/* ---- wakers, through their vtables ---------------------------------------- */

/* A zeroed waker (vtable NULL) is "no waker": every operation is a no-op. */
static inline void art_waker_clone(const asyncrt_waker *w, asyncrt_waker *out) {
  if (w->vtable) w->vtable->clone(w->data, out);
  else *out = (asyncrt_waker){0};
}
static inline void art_waker_wake(asyncrt_waker *w) {
  asyncrt_waker taken = *w;
  *w = (asyncrt_waker){0};
  if (taken.vtable) taken.vtable->wake(taken.data);
}
static inline void art_waker_wake_by_ref(const asyncrt_waker *w) {
  if (w->vtable) w->vtable->wake_by_ref(w->data);
}
static inline void art_waker_drop(asyncrt_waker *w) {
  asyncrt_waker taken = *w;
  *w = (asyncrt_waker){0};
  if (taken.vtable) taken.vtable->drop(taken.data);
}
static inline int art_waker_will_wake(const asyncrt_waker *a, const asyncrt_waker *b) {
  return a->vtable && a->data == b->data && a->vtable == b->vtable;
}

/* ---- generation-tagged handles (art_handle.c) ---------------------------- */

enum art_handle_type {
  ART_H_EXEC = 1, ART_H_TASK = 2, ART_H_HOSTQ = 3, ART_H_SUBSYS = 4, ART_H_SCOPE = 5,
  ART_H_SENDER = 6, ART_H_RECEIVER = 7,
  ART_H_MUTEX = 10, ART_H_SEMAPHORE = 11, ART_H_NOTIFY = 12, ART_H_BARRIER = 13,
  ART_H_IO = 14,
};

/* A handle is (generation << 32) | (slot index + 1). Slots live in chunks that
 * are never freed, so checking a stale handle reads only live table memory. */
uint64_t art_handle_new(int type, void *obj); /* 0 when out of memory */
#define ART_HANDLE_CHUNK_BITS 12u
#define ART_HANDLE_MAX_CHUNKS 4096u
typedef struct art_handle_slot {
  _Atomic uint32_t gen;
  _Atomic uint32_t next_free; /* index + 1, while free */
  _Atomic int type;
  void *_Atomic obj;
} art_handle_slot;
extern art_handle_slot *_Atomic art_handle_chunks[ART_HANDLE_MAX_CHUNKS];
/* NULL unless live and of type. Reads only the table, whose chunks are
 * never freed. */
static inline void *art_handle_get(uint64_t handle, int type) {
  uint32_t i1 = (uint32_t)handle, gen = (uint32_t)(handle >> 32);
  if (!i1 || !gen || i1 - 1 >= ART_HANDLE_MAX_CHUNKS << ART_HANDLE_CHUNK_BITS) return NULL;
  art_handle_slot *c = atomic_load_explicit(&art_handle_chunks[(i1 - 1) >> ART_HANDLE_CHUNK_BITS], memory_order_acquire);
  if (!c) return NULL;
  art_handle_slot *s = &c[(i1 - 1) & ((1u << ART_HANDLE_CHUNK_BITS) - 1)];
  if (atomic_load_explicit(&s->gen, memory_order_acquire) != gen) return NULL;
  if (atomic_load_explicit(&s->type, memory_order_relaxed) != type) return NULL;
  return atomic_load_explicit(&s->obj, memory_order_relaxed);
}
/* Returns 1 if this call freed it, 0 if it was not live (a racing free won). */
int art_handle_free(uint64_t handle);
/* Makes a live handle of `type` look dead to everyone else (1), so that one
 * free among racing ones goes on; art_handle_unclaim makes it live again
 * (a free that found the object busy). */
int art_handle_claim(uint64_t handle, int type);
void art_handle_unclaim(uint64_t handle, int type);
/* art_handle_get that records EINVAL/EHANDLE naming `what` on failure. */
int art_handle_resolve(const void *handle, int type, const char *what, void **obj);

/* ---- task memory (art_mem.c) --------------------------------------------- */

/* Size classes of task slots: the header plus the output rounded to 16. */
#define ART_TASK_SLOT_BASE 96u
#define ART_MEM_CLASSES 17u /* outputs 0..256 bytes; larger go to the hook */

typedef struct art_mem_chunk art_mem_chunk;
typedef struct art_mem_free { struct art_mem_free *next; } art_mem_free;

/* Freed slots of one class, as an array of pointers. Tasks finish in any
 * order, so a list threaded through the slots themselves would make every
 * allocation a dependent cache miss (the next link lives in a cold slot);
 * popping an array reads memory in order and touches the slot only to fill
 * it. Slots that find the array full and cannot grow it go to free_lists. */
typedef struct art_mem_stack {
  void **slots;
  uint32_t len, cap;
} art_mem_stack;

typedef struct art_mem {
  asyncrt_allocator hook; /* alloc == NULL: malloc */
  size_t limit;           /* 0: no cap */
  size_t in_use;          /* bytes of live slots */
  art_mem_stack stacks[ART_MEM_CLASSES];
  art_mem_free *free_lists[ART_MEM_CLASSES];
  art_mem_chunk *chunks;
  char *bump, *bump_end;
} art_mem;

void art_mem_init(art_mem *m, const asyncrt_allocator *hook, size_t limit);
void art_mem_destroy(art_mem *m);
/* Both must be called with the executor's lock held. */
void *art_mem_alloc_slow(art_mem *m, size_t size, int *status);
void art_mem_release_slow(art_mem *m, void *slot, size_t size);

/* A slot the caller will not write itself (a spawn request's, written by
 * whichever worker takes the request): no prefetch, which would pull the
 * slot's lines into this core's cache only to lose them again. */
static inline void *art_mem_alloc_cold(art_mem *m, size_t size, int *status) {
  size_t cls = (size - ART_TASK_SLOT_BASE) / 16u;
  art_mem_stack *st;
  if (ART_LIKELY(cls < ART_MEM_CLASSES && !m->limit && (st = &m->stacks[cls])->len)) {
    m->in_use += size;
    return st->slots[--st->len];
  }
  return art_mem_alloc_slow(m, size, status);
}

/* The common cases inline: a slot from its class's free list, and a slot
 * back onto it. Everything else (caps, new chunks, large outputs) is slow. */
static inline void *art_mem_alloc(art_mem *m, size_t size, int *status) {
  size_t cls = (size - ART_TASK_SLOT_BASE) / 16u;
  art_mem_free *f;
  art_mem_stack *st;
  if (ART_LIKELY(cls < ART_MEM_CLASSES && !m->limit && (st = &m->stacks[cls])->len)) {
    void *slot = st->slots[--st->len];
    /* The caller writes the slot: ask for the ones a few spawns ahead now. */
    if (st->len > 10) {
      __builtin_prefetch(st->slots[st->len - 10], 1);
      __builtin_prefetch((char *)st->slots[st->len - 10] + 64, 1);
    }
    m->in_use += size;
    return slot;
  }
  if (ART_LIKELY(cls < ART_MEM_CLASSES && !m->limit && (f = m->free_lists[cls]))) {
    art_mem_free *next = f->next;
    m->free_lists[cls] = next;
    /* A freed slot is often warm in another worker's cache: fetch the ones
     * after it now, while the caller fills this one (the next came in on
     * the previous allocation, so reading its link is cheap). */
    if (next) {
      __builtin_prefetch(next, 1);
      if (next->next) __builtin_prefetch(next->next, 1);
    }
    m->in_use += size;
    return f;
  }
  return art_mem_alloc_slow(m, size, status);
}

static inline void art_mem_release(art_mem *m, void *slot, size_t size) {
  size_t cls = (size - ART_TASK_SLOT_BASE) / 16u;
  if (ART_UNLIKELY(cls >= ART_MEM_CLASSES)) {
    art_mem_release_slow(m, slot, size);
    return;
  }
  art_mem_stack *st = &m->stacks[cls];
  if (ART_UNLIKELY(st->len == st->cap)) {
    art_mem_release_slow(m, slot, size);
    return;
  }
  m->in_use -= size;
  st->slots[st->len++] = slot;
}

/* ---- tasks (art_task.c) --------------------------------------------------- */

/* Task state bits. OWNED means the executor holds the right to poll: the task
 * is in a run queue or being polled. A wake of an OWNED task only sets
 * NOTIFIED; a wake of a parked task sets OWNED and queues it. */
enum {
  ART_OWNED = 1u << 0,
  ART_NOTIFIED = 1u << 1,
  ART_COMPLETE = 1u << 2,
  ART_CANCEL = 1u << 3,
  ART_JOIN_LOCK = 1u << 4, /* guards join_waker */
  ART_JOINED = 1u << 5,    /* a join future exists (or existed) */
  ART_SHIELD = 1u << 6,    /* inside a shield section: a cancel waits (art_scope.c) */
  ART_CLEANUP = 1u << 7,   /* its cleanup runs: its ops are not cancelled */
  /* It has an ext record (idw holds its address). Set once the ext is
   * published, and kept here, in the word a poll reads anyway, so that a
   * task finishing on another core than its spawner's does not read the
   * header's second cache line to learn it has none. */
  ART_EXT = 1u << 8,
  /* A handle was published for it: another thread may open a scope for it
   * (asyncrt_scope_open_for), so its driver closes its ext before it ends. */
  ART_HANDLED = 1u << 9,
};
/* The upper bits of the state count the task's operations in flight
 * (art_subsys.c): a cancelled task is dropped only once they are reaped. */
#define ART_OPS_ONE (1u << 10)
#define ART_OPS(s) ((s) >> 10)

/* Task flags (fixed at spawn). */
enum {
  ART_TF_CALLER = 1u << 0, /* header in caller storage */
  ART_TF_SEND = 1u << 1,   /* may run on any worker of a group */
};

struct art_task_ext;

struct art_exec;

typedef struct art_task {
  /* Hot: the first 32 bytes are all a poll touches (slots are 32-aligned). */
  _Atomic uint32_t state;
  uint16_t flags;
  uint16_t output_size;
  struct art_task *next; /* run-queue link; a task is in one queue at most */
  asyncrt_future fut;
  /* Cold: spawn, completion, joins and wakes from elsewhere. */
  struct art_exec *exec; /* the core whose queues the task uses */
  struct art_exec *home; /* the core it was spawned on: its memory and live list */
  _Atomic uint32_t refs; /* executor (until complete) + handle + join + wakers */
  int32_t status;        /* completion status, valid once COMPLETE */
  struct art_task *live_prev, *live_next; /* home's live list, under its lock */
  asyncrt_waker join_waker; /* under ART_JOIN_LOCK */
  /* The id, as id << 1; or, once the task has an ext record (art_scope.c:
   * scopes, names, rich errors, cleanups), the ext's address | 1, and the id
   * lives there. Published with a release store; the ext dies with the
   * header, so whoever can read the header can read the ext. */
  _Atomic uintptr_t idw;
} art_task;

/* Caller storage adds the release callback after the header. */
typedef struct art_task_caller {
  art_task task;
  void (*release)(void *memory, void *user_data);
  void *user_data;
} art_task_caller;

_Static_assert(sizeof(art_task) == ART_TASK_SLOT_BASE, "task header outgrew its slot");
_Static_assert(sizeof(art_task_caller) == ASYNCRT_TASK_HEADER_SIZE, "header size is ABI");

static inline size_t art_task_slot_size(size_t output_size) {
  return ART_TASK_SLOT_BASE + ((output_size + 15u) & ~(size_t)15u);
}

static inline void *art_task_output(art_task *t) {
  return (char *)t + ((t->flags & ART_TF_CALLER) ? ASYNCRT_TASK_HEADER_SIZE : ART_TASK_SLOT_BASE);
}

extern const asyncrt_waker_vtable art_task_waker_vtable;

static inline struct art_task_ext *art_task_ext_of(const art_task *t) {
  uintptr_t w = atomic_load_explicit(&((art_task *)t)->idw, memory_order_acquire);
  return (w & 1) ? (struct art_task_ext *)(w & ~(uintptr_t)1) : NULL;
}
static inline int art_task_has_ext(const art_task *t) {
  return (atomic_load_explicit(&((art_task *)t)->state, memory_order_relaxed) & ART_EXT) != 0;
}
uint64_t art_task_id(const art_task *t);

/* The context a poll receives. Opaque to users; grows freely. `failure`
 * and `notified` share one word so a poll's start clears both in one store. */
struct asyncrt_context {
  asyncrt_waker waker;
  struct art_exec *exec; /* NULL outside an executor */
  union {
    struct {
      int failure;       /* asyncrt_context_fail */
      uint16_t notified; /* the polled task woke itself (executor contexts only) */
      uint16_t rich;     /* `failure` came with fail_info: rich_err is this poll's */
    };
    uint64_t poll_flags;
  };
  struct art_error *rich_err; /* asyncrt_context_fail_info's record; stale unless `rich` */
  void *rich_task;            /* the task polled when it was made */
};

void art_task_ref(art_task *t);
void art_task_unref(art_task *t);
void art_task_schedule(art_task *t);
int art_task_cancel(art_task *t);
/* art_task_cancel that also queues a shielded task (an immediate shutdown). */
void art_task_cancel_now(art_task *t);
int art_task_status(art_task *t);
int art_task_join(art_task *t, asyncrt_future *out);
void art_drop_future(const asyncrt_future *f);

/* ---- executors (art_exec.c) ----------------------------------------------- */

typedef struct art_group art_group;
typedef struct art_subsys_inst art_subsys_inst;
struct art_wheel;

#define ART_SEND_RING 256u
#define ART_REQ_RING 256u
#define ART_REQ_SLOTS 256u

/* A request as taken: a plain copy. */
typedef struct art_req {
  void *self;
  const asyncrt_future_vtable *vtable;
  struct art_task *slot;
  struct art_exec *home; /* the core whose memory the slot is */
} art_req;

/* A spawn request on a ring: the future and the slot its header will live
 * in. The fields are atomics (relaxed) because a thief copies them before
 * its CAS on the head tells it whether they were still its to take. */
typedef struct art_spawn_req {
  _Atomic(void *) self;
  _Atomic(const asyncrt_future_vtable *) vtable;
  _Atomic(struct art_task *) slot;
  uint64_t pad;
} art_spawn_req;

/* An executor's clock: CLOCK_MONOTONIC, or a test clock moved by hand. The
 * cores of a group share their first core's. */
typedef struct art_clock {
  int test;
  _Atomic uint64_t now; /* the test clock's reading */
} art_clock;

/* An executor core: one thread's queues. A local executor is one core; a
 * thread-per-core executor is a group of cores, one per worker; a foreign
 * executor is a core whose queue is the foreign vtable. */
typedef struct art_exec {
  /* Driver-only: touched by the thread inside art_exec_run. The local queue
   * is a ring of task pointers, so the next task's address is known without
   * waiting on the current header; if the ring cannot grow, tasks queue on
   * an intrusive overflow list instead (a wake can never fail). */
  art_task **ring;
  uint64_t ring_head, ring_tail, ring_mask;
  uint64_t ring_room; /* capacity, or 0 while overflow holds tasks */
  art_task *overflow_head, *overflow_tail;
  /* The context every poll on this core receives: waker.data is the task
   * being polled, so a self-wake is recognized by comparing it. It is
   * cleared before anything but a poll runs user code (art_task_finish). */
  asyncrt_context cx;
  _Atomic uint64_t polls; /* written by the driver, read by stats */
  /* Finished tasks spawned on another core, given back to it in one batch
   * (one lock instead of one per task). Only while the driver runs. */
  int batching;
  struct art_exec *retire_home;
  art_task *retire_head;
  unsigned retire_len;

  /* Shared with wakers and spawners on other threads. */
  _Alignas(ART_CACHELINE) _Atomic(art_task *) remote_head; /* Treiber stack */
  _Atomic int running;  /* a driver is inside art_exec_run */
  _Atomic int signaled; /* futex word: a wake arrived since the last drain */
  _Atomic int fd_mode;  /* a host polls pollfd: signals also write eventfd */
  _Atomic int shutdown; /* spawns are refused */
  _Atomic int parked;   /* a worker sleeps (or is about to): a target to unpark */
  _Atomic uint32_t remote_spawners; /* spawns in flight from non-drivers */
  _Atomic uintptr_t driver;         /* token of the driving thread, 0 if none */
  _Atomic uint64_t wakes, steals, parks, parked_ns; /* worker counters */
  int eventfd; /* written to wake the driver; owned by the core */
  int pollfd;  /* the epoll set the driver sleeps on; owned by Go */

  /* Send tasks of a group's core: the owner pushes at the tail; the owner
   * and idle workers take at the head with a CAS (single producer, many
   * consumers). When it fills, half of it moves to the group's injector. */
  _Alignas(ART_CACHELINE) _Atomic uint64_t send_head;
  _Atomic uint64_t send_tail;
  art_task *_Atomic send_ring[ART_SEND_RING];

  /* Spawn requests (art_group.c): a Send task spawned by this core's driver
   * without a handle or scope is queued as its future plus a slot of this
   * core's memory, and whichever worker runs it writes the header -- in
   * its own cache, since it freed that slot last. Owner pushes at the
   * tail; the owner and idle workers take at the head with a CAS. */
  _Alignas(ART_CACHELINE) _Atomic uint64_t req_head;
  _Atomic uint64_t req_tail;
  art_spawn_req req_ring[ART_REQ_RING];
  /* Driver only: slots taken from mem in one lock hold for requests
   * (counted in `headers`), so a request costs no atomic operation. */
  art_task *req_slots[ART_REQ_SLOTS];
  unsigned req_nslots;
  /* Requests ever queued here (stored by the driver, no atomic operation)
   * and, under `lock`, those made tasks or dropped (req_done, below): their
   * difference counts the requests on a ring, in the overflow or in a
   * taker's hands, and a task leaves that count in the lock hold that puts
   * it on the live list, so a task to be is never counted nowhere. */
  _Atomic uint64_t req_pushed;

  /* Under lock: task memory and the live list of the tasks spawned here
   * (a stolen Send task stays on its spawning core's list and memory). */
  _Alignas(ART_CACHELINE) art_lock lock;
  art_mem mem;
  art_task *live_head;
  uint64_t live_count, spawned, next_id;
  uint64_t req_done; /* requests of this core made tasks or dropped */
  uint64_t headers; /* task headers not yet given back; the core outlives them */
  int closed;       /* the control plane let go of the core */

  /* Time and subsystems (art_time.c, art_subsys.c). The wheel is touched
   * under timer_lock: the driver fires it, and a task that moved to another
   * core may disarm its timer from there. */
  _Alignas(ART_CACHELINE) art_lock timer_lock;
  struct art_wheel *wheel;         /* allocated at the first timer */
  _Atomic uint64_t timer_next;     /* earliest expiry (UINT64_MAX: none); may be early */
  _Atomic uint64_t timers_armed;   /* the timer subsystem's waiters */
  _Atomic uint64_t tick_now;       /* the clock at the last tick: never ahead of it */
  _Atomic uint64_t timer_polls, timer_fired, timer_empty, ticks;
  art_clock *clock;
  art_clock clock_store;
  art_lock subs_lock;              /* the registrations list (callbacks run under it) */
  art_subsys_inst **subs;
  unsigned nsubs, subs_cap;
  _Atomic uint64_t subs_waiters;   /* in-flight ops over every registration here */
  _Atomic int cancel_scan;         /* a cancelled task has ops in flight: look for them */
  struct art_subsys *dead_subs;    /* unregistered here, freed with the core */
  _Atomic int detaching;           /* detaches in progress with an instance here */
  /* Driver only: the tick schedule and what the last tick saw. */
  uint64_t budget_polls, budget_ns, spin_ns;
  uint64_t next_tick_ns, backoff_ns;
  int busy_nofd;                   /* a registration without fd has waiters */
  int fd_ready;                    /* some instance here has fd_ready set */
  _Atomic int fd_watch;            /* instances whose fd is in pollfd */
  int sleep_fd;                    /* a registration with an fd has waiters */
  int timerfd;                     /* host fd mode: readable at timer_next (-1: none) */
  uint64_t timerfd_at;             /* what timerfd is armed for (0: disarmed) */

  art_group *group; /* NULL unless a worker of a thread-per-core executor */
  unsigned index;   /* worker index within the group */
  int is_foreign;
  asyncrt_foreign_vtable foreign;
  void *foreign_user;

  /* Scopes (art_scope.c): an immediate shutdown or cancel_all disables
   * shields and cleanups; scopes opened here, for the dump (under lock). */
  _Atomic int immediate;
  struct art_scope *scopes_head;
  art_task *dump_cursor;            /* the next live task of a dump in progress (under lock) */
  art_task *walk_cursor;            /* the next live task of a cancel_all in progress (under lock) */
  struct art_scope *dump_scope_cursor;

  uint64_t handle;  /* this executor's asyncrt_executor value (first core) */
  uintptr_t go_ref; /* the Go control plane's object (a cgo.Handle) */

  /* Counters for the stats (asyncrt_worker_stats), and stall detection
   * (art_watch.c). At the end, so the lines above keep their layout. */
  /* Under lock: tasks homed here that ended failed or cancelled, counted as
   * they leave the live list (the others that left it completed). */
  _Alignas(ART_CACHELINE) uint64_t tasks_failed, tasks_cancelled;
  _Atomic uint64_t stalls;         /* polls here that the watchdog reported */
  struct art_watch *_Atomic watch; /* first core: the stall watchdog, NULL until set up */
  /* Written by the driver, read by the watchdog and the stats. watch_seq
   * changes at every poll (and drop) the run loop makes, at the start of a
   * run and at every tick; watch_task and watch_fn say which poll (NULL for
   * a run's start or a tick). See art_watch_enter. */
  _Alignas(ART_CACHELINE) _Atomic uint64_t watch_seq;
  const art_task *_Atomic watch_task;
  int (*_Atomic watch_fn)(void *, asyncrt_context *, void *);
  _Atomic uint64_t wakes_local;   /* tasks queued by a wake on the driver's thread */
  _Atomic uint64_t budget_yields; /* ticks forced by the budget in a busy run */
} art_exec;

/* What the run loop is in, for the watchdog: plain stores (a release store
 * is a plain one on x86), no clock, no read-modify-write. The sequence
 * number goes first and the rest with release, so a watchdog that reads the
 * rest (acquire) and then the same number again knows the rest is not from
 * a later poll (art_watch.c). */
static inline void art_watch_enter(art_exec *e, const art_task *t, int (*fn)(void *, asyncrt_context *, void *)) {
  /* e opaque to the optimizer: otherwise GCC hoists the three words'
   * addresses out of the run loop, which has no registers to spare, and
   * reloads them from the stack at every poll. Now each store addresses
   * them from e (spawn_many: +4.5% against +6.5%, min of 25 runs). */
  __asm__("" : "+r"(e));
  atomic_store_explicit(&e->watch_seq, atomic_load_explicit(&e->watch_seq, memory_order_relaxed) + 1,
                        memory_order_relaxed);
  atomic_store_explicit(&e->watch_task, t, memory_order_release);
  atomic_store_explicit(&e->watch_fn, fn, memory_order_release);
}

/* Adds n to a counter that only the driver writes (readers see it whole). */
static inline void art_count(_Atomic uint64_t *c, uint64_t n) {
  atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + n, memory_order_relaxed);
}

/* Creates the core. Takes ownership of eventfd (closed when the last task
 * memory is gone). Returns NULL and records the error on failure. */
art_exec *art_exec_new(const asyncrt_allocator *hook, size_t memory_limit, int eventfd);
/* The control plane lets go of the core; it is destroyed now or when its last
 * task header is given back. */
void art_exec_close(art_exec *e);
/* Unlinks a finished task from its home's live list; with free_header, also
 * gives its header back (the executor held the only reference). */
void art_exec_retire(art_task *t, int free_header);
/* art_exec_retire(t, 1) from core e's driver: batched (one lock per batch)
 * when t came from another core, or is a Send task of e's own group. */
void art_exec_retire_from(art_exec *e, art_task *t);
/* Gives a task header back (caller storage: just uncounts it). Takes the lock. */
void art_exec_release_header(art_task *t);
/* Spawn requests (art_group.c). Driver of e: fills e->req_slots from e's
 * memory in one lock hold; returns how many it holds now. */
unsigned art_exec_slots_refill(art_exec *e);
/* Makes n requests into tasks of their homes (memory, live list) queued on
 * runner's local ring, runner's driver calling; after an immediate shutdown
 * began, drops their futures and frees their slots instead. */
void art_exec_adopt_requests(art_exec *runner, const art_req *r, unsigned n);
/* Gives slots of home's memory back (never written): cached ones, or with
 * `requests`, those of dropped requests (counted done). */
void art_exec_release_slots(art_exec *home, art_task *const *slots, unsigned n, int requests);

/* Takes the future (dropped on failure). `out`, if not NULL, receives the
 * task with a reference for the caller. flags: ASYNCRT_SPAWN_SEND. */
int art_exec_spawn(art_exec *e, const asyncrt_future *fut, unsigned flags,
                   const asyncrt_task_storage *storage, art_task **out);
struct art_scope;
/* art_exec_spawn into a scope (NULL: none): the child is linked to the scope
 * in the same lock hold that makes it, or refused (ESCOPE, ECANCELLED). */
int art_exec_spawn_scoped(art_exec *e, const asyncrt_future *fut, unsigned flags,
                          const asyncrt_task_storage *storage, art_task **out, struct art_scope *scope);
/* Gives back a count of `headers` taken under the core's lock for an object
 * (a scope) that keeps the core's memory alive; may destroy a closed core. */
void art_exec_unhold(art_exec *e);
/* art_exec_spawn for the driver outside a run (block_on's root): the task
 * goes straight to the local queue, with no signal to wake anyone. */
int art_exec_spawn_driven(art_exec *e, const asyncrt_future *fut, art_task **out);

/* The thread token of the caller, for the driver field. */
uintptr_t art_thread_token(void);
int art_exec_acquire_driver(art_exec *e);
void art_exec_release_driver(art_exec *e);
/* Nonzero while this thread is inside a poll or an executor's run loop. */
int art_in_poll(void);

/* Runs up to max_polls polls, until deadline_ns (CLOCK_MONOTONIC, 0: none),
 * or until `until` completes; returns the polls done. Caller is the driver. */
uint64_t art_exec_run(art_exec *e, uint64_t max_polls, uint64_t deadline_ns, art_task *until);
/* Why a run returned: a budget (polls or time) ran out, the queues were
 * empty, or `until` completed. The caller parks only after a drained run,
 * and learns of `until` without another call into C. */
enum { ART_RUN_BUDGET = 0, ART_RUN_DRAINED = 1, ART_RUN_UNTIL = 2 };
int art_exec_run_ex(art_exec *e, uint64_t max_polls, uint64_t deadline_ns, art_task *until, uint64_t *polls);

/* asyncrt_block_on for a local core: runs it on the calling thread until fut
 * completes; takes the future (dropped on every error path). */
int art_exec_block_on(art_exec *e, const asyncrt_future *fut, void *out, int64_t timeout_ns);

/* Cancels every live task (drops every future on this thread) and refuses
 * new spawns. Caller is the driver. */
void art_exec_shutdown(art_exec *e);
/* New spawns on this core fail with ESHUTDOWN (waits out spawns in flight). */
void art_exec_refuse_spawns(art_exec *e);
/* Refuses new spawns, then asks every live task spawned on this core to
 * cancel; the cores that own them drop them as they run. Any thread. */
void art_exec_cancel_all(art_exec *e);
uint64_t art_now_ns(void);

/* The executor's workers: a group's cores, or the one core (art_stats.c). */
unsigned art_exec_workers(const art_exec *e);
art_exec *art_exec_worker(art_exec *e, unsigned i);
/* Counters as the public structs, whole (their size set to the library's):
 * one core's, the executor's sums (e: any core of it), its timers'. */
void art_core_stats(art_exec *e, asyncrt_worker_stats *out);
void art_executor_stats(art_exec *e, asyncrt_executor_stats *out);
void art_timer_stats(art_exec *e, asyncrt_subsystem_stats *out);

/* Queues a task whose OWNED bit the caller just set. */
void art_exec_push(art_exec *e, art_task *t);
/* Driver only: queues t on the local ring, whatever its flags. */
void art_exec_push_local(art_exec *e, art_task *t);
/* Signals the core (once until its next drain): its driver wakes. */
void art_exec_wake_driver(art_exec *e);
/* Sleeps until the core is signaled or timeout_ns passes (< 0: no bound).
 * Called by the driver after a run that found no work. */
void art_exec_park(art_exec *e, int64_t timeout_ns);
/* From now on signals also make pollfd readable (a host loop polls it). */
void art_exec_use_fd(art_exec *e);
/* Nonzero if the core has a task queued for its driver. */
int art_exec_has_work(art_exec *e);
/* Drops the future, publishes the status, wakes the joiner, and gives up the
 * executor's reference. On the thread that polls the task; once per task. */
void art_task_finish(art_exec *e, art_task *t, int status);

/* Sends the cancellations of t's ops and parks it until they are reaped;
 * then finishes it with status. Returns 0. */
int art_task_park_cancelled(art_exec *e, art_task *t, int status);

/* The context of the poll running on this thread, or the executor context of
 * the run loop this thread is in; NULL otherwise. */
extern __thread asyncrt_context *art_tls_cx __attribute__((tls_model("initial-exec")));

/* wake_by_ref of a task waker. A task waking itself during its own poll
 * only sets a plain flag in the context, which the poller reads afterwards:
 * yield loops cost no atomic operation. Inline so the public
 * asyncrt_waker_wake_by_ref can take it without a second call. */
static inline void art_task_wake_by_ref(art_task *t) {
  asyncrt_context *cx = art_tls_cx;
  if (cx && cx->waker.data == t) {
    cx->notified = 1;
    return;
  }
  art_task_schedule(t);
}

/* ---- time, subsystems and ticks (art_time.c, art_subsys.c) ---------------- */

static inline uint64_t art_clock_now(const art_clock *c) {
  return c->test ? atomic_load_explicit(&c->now, memory_order_acquire) : art_now_ns();
}
/* Sets the core up: clock (NULL: its own), tick budget and spin. */
void art_core_configure(art_exec *e, art_clock *clock, int test_clock, uint64_t budget_polls,
                        uint64_t budget_ns, uint64_t spin_ns, int timerfd);
/* Nonzero if timers or subsystems have waiters on the core. */
static inline int art_core_waiting(art_exec *e) {
  return (atomic_load_explicit(&e->timers_armed, memory_order_relaxed) |
          atomic_load_explicit(&e->subs_waiters, memory_order_relaxed)) != 0 ||
         atomic_load_explicit(&e->cancel_scan, memory_order_relaxed);
}
/* One tick (driver): fires due timers, runs pending op cancellations, polls
 * one subsystem by smooth weighted round robin. Returns the completions. */
uint64_t art_core_tick(art_exec *e);
/* Fires the due timers of e at `now`; returns how many fired. */
uint64_t art_timers_fire(art_exec *e, uint64_t now);
/* Disarms every timer on e (their wakers are dropped), at an executor's
 * free, after its tasks are gone. */
void art_timers_orphan(art_exec *e);
/* How long the driver may sleep (ns, < 0: no bound) given its timers and
 * busy subsystems, at most `bound`. Updates the back-off. */
int64_t art_core_sleep_bound(art_exec *e, int64_t bound);
/* Sleeps (driver, after a drained run): on the core's epoll set if a
 * subsystem with an fd waits, else on the futex. */
void art_core_park(art_exec *e, int64_t timeout_ns);
/* Records which subsystem fds epoll reported (driver), so the next tick
 * polls them: the fds are edge-triggered, and an edge is seen once. */
struct epoll_event;
void art_core_note_ready(art_exec *e, const struct epoll_event *ev, int n);
/* Takes the readiness waiting in the core's epoll set without sleeping
 * (driver; only when subsystem fds are watched): a host polling the set
 * from outside never consumes the edges itself. */
void art_core_harvest_fds(art_exec *e);
/* Keeps timerfd (host fd mode) armed for the earliest timer. */
void art_core_sync_timerfd(art_exec *e);
/* A cancelled task t with ops in flight: ask every core that may hold them. */
void art_ops_cancel_task(art_exec *e, art_task *t);

/* asyncrt_timer entries and the futures on them (art_time.c). */
int art_timer_poll(asyncrt_timer *t, asyncrt_context *cx, uint64_t deadline);
void art_timer_cancel(asyncrt_timer *t);
int art_timer_armed(const asyncrt_timer *t);
void art_sleep_init(asyncrt_sleep *s, uint64_t ns, int relative, asyncrt_future *out);
void art_timeout_init(asyncrt_timeout *s, const asyncrt_future *inner, uint64_t ns, asyncrt_future *out);

/* Subsystem registrations (art_subsys.c). */
typedef struct art_subsys art_subsys;
struct art_subsys_inst {
  art_subsys *sub;
  art_exec *core;
  unsigned worker;
  art_lock lock; /* callbacks and the in-flight list */
  asyncrt_op *head, *tail;
  asyncrt_op *cursor; /* the next op of a walk in progress (cancel_ops) */
  _Atomic uint64_t waiters;
  int64_t credit; /* smooth weighted round robin; driver only */
  int dead;       /* unregistered: submits fail */
  int watched;    /* its fd is in the core's epoll set (under the core's subs_lock) */
  _Atomic int fd_ready; /* epoll reported its fd: poll it at the next tick */
  _Atomic uint64_t polls, completions, empty_polls, submits;
  _Atomic uint64_t cancels, failures; /* cancellations sent; completions that were not OK */
};
struct art_subsys {
  asyncrt_subsystem_vtable vt;
  void *user;
  uint32_t priority, cap, budget;
  int fd;
  char name[32];
  unsigned ninst;
  art_subsys_inst *inst; /* ninst of them */
  uint64_t handle;
  art_subsys *next_dead; /* unregistered, kept until the core is destroyed */
  _Atomic int claimed, detached; /* one detach does the work; a racing one waits for it */
};
/* Builds a registration with one instance per core in `cores` (validated
 * config). NULL on ENOMEM (recorded). */
art_subsys *art_subsys_new(const asyncrt_subsystem_config *cfg, art_exec **cores, unsigned n,
                           const unsigned *workers);
/* Links every instance into its core's list (and publishes the handle). */
int art_subsys_attach(art_subsys *s);
/* Unlinks the instances, cancels and completes every op, finalizes and
 * frees. Any thread but a callback's. */
void art_subsys_detach(art_subsys *s);
int art_subsys_stats(art_subsys *s, asyncrt_subsystem_stats *out);
/* Validated config: builds, watches the fd, attaches and publishes. On
 * failure the finalizer has run. */
int art_subsys_register(art_exec *e, const asyncrt_subsystem_config *cfg, uint64_t *handle);
/* Unregisters every subsystem with an instance on e (executor free). */
void art_exec_detach_subsystems(art_exec *e);
/* Frees the registrations kept after their unregister (core destruction). */
void art_subsys_free_dead(art_exec *e);
int art_op_submit(asyncrt_context *cx, art_subsys *s, asyncrt_op *op);
/* art_op_submit whose op, if the submit callback completes it at once,
 * does not wake its submitter: the caller promises to look at the op
 * before its poll returns (asyncrt_io_submit's contract). Saves the poll a
 * self-wake would cost each call that did not block. */
int art_op_submit_quiet(asyncrt_context *cx, art_subsys *s, asyncrt_op *op);
int art_op_done(const asyncrt_op *op);
asyncrt_op *art_op_next(asyncrt_op *op);
void art_op_complete(asyncrt_op *op, int status, int64_t result);
int art_op_cancel(asyncrt_op *op);
extern __thread art_subsys_inst *art_tls_subsys;

/* ---- scopes, ext records, rich errors, the dump (art_scope.c, art_dump.c) -- */

/* A recorded failure, shared (refcounted) by the task and its scope. */
typedef struct art_error {
  _Atomic uint32_t refs;
  int status;
  uint64_t task_id;
  void *value;
  void (*value_free)(void *);
  char message[]; /* NUL-terminated; empty for none */
} art_error;
art_error *art_error_new(int status, uint64_t task_id, const char *message, void *value,
                         void (*value_free)(void *));
void art_error_ref(art_error *err);
void art_error_unref(art_error *err);

#define ART_NAME_MAX 64u
#define ART_EXT_SLOT 128u /* the ext's task-memory size class */

/* What a task has beyond its 96-byte header once it needs it. */
typedef struct art_task_ext {
  uint64_t id;
  struct art_scope *scope;         /* its parent scope, NULL if none; fixed at spawn; valid until
                                      the child leaves it (the dump reads scope_id instead) */
  uint64_t scope_id;
  art_task *sib_prev, *sib_next;   /* scope->children, under scope->lock */
  art_task *cancel_next;           /* a cancel walk's batch */
  struct art_scope *scopes;        /* scopes it owns, under lock */
  art_error *error;                /* its failure, once finished (or marked completing) */
  asyncrt_timer *cleanup_timer;    /* armed at the cleanup deadline, while a cleanup runs */
  _Atomic uint64_t cancel_deadline; /* UINT64_MAX: none asked; 1: drop now; else cleanup until */
  _Atomic uint32_t busy;           /* owned scopes with live children */
  art_lock lock;                   /* scopes, name, closed */
  uint16_t shield;                 /* shield depth (driver) */
  uint8_t closed;                  /* no scopes may be opened any more */
  uint8_t cancel_seen;             /* its scopes were cancelled (driver) */
  uint8_t cleanup_done;            /* driver */
  _Atomic uint8_t owns;            /* it has opened a scope (set once, under lock) */
  _Atomic uint8_t completing;      /* returned with live children; final_status waits */
  _Atomic uint8_t phase;           /* ART_PHASE_*, for the dump (written by the driver) */
  int32_t final_status;
  char *name;                      /* malloc'd; under lock */
  uint64_t sent_deadline;          /* the cleanup deadline its scopes were last cancelled with (driver) */
  int32_t cleanup_status;          /* a failing cleanup's status (driver; 0: none) */
  _Atomic uint8_t cancel_flag;     /* cancel_seen, for other threads to read */
} art_task_ext;
_Static_assert(sizeof(art_task_ext) <= ART_EXT_SLOT, "ext outgrew its slot");

enum { ART_PHASE_RUN = 0, ART_PHASE_WAIT = 1, ART_PHASE_CLEANUP = 2, ART_PHASE_COMPLETING = 3 };

/* Scope flags. */
enum {
  ART_S_CLOSED = 1u << 0,    /* joined, or its owner finished: no spawns */
  ART_S_CANCELLED = 1u << 1,
  ART_S_DEADLINE = 1u << 2,  /* its deadline fired */
  ART_S_JOINED = 1u << 3,    /* a join future was made */
  ART_S_FREED = 1u << 4,     /* the handle is gone */
  ART_S_COLLECT = 1u << 5,   /* ASYNCRT_SCOPE_COLLECT_ALL */
  ART_S_SHIELD = 1u << 6,    /* ASYNCRT_SCOPE_SHIELD */
  ART_S_TIMER = 1u << 7,     /* its deadline timer is armed */
  ART_S_WALKING = 1u << 8,   /* a cancel walk is under way (under the lock) */
  ART_S_AGAIN = 1u << 9,     /* a stronger cancel came during the walk: walk again */
};

typedef struct art_scope {
  art_lock lock; /* children, cursor, live, join_waker, errors, flags' changes */
  _Atomic uint32_t flags;
  _Atomic uint32_t refs; /* handle, join future, the live children (one), owner link, timer waker, walks */
  uint32_t live;
  art_task *owner;  /* a task ref for the scope's life; NULL at the top */
  art_exec *core;   /* where local children go; memory, wheel, dump list */
  art_exec *top;    /* the executor's first core (placement of top children) */
  struct art_scope *owner_next, *owner_prev; /* the owner's ext->scopes, under its lock */
  int owner_linked;
  struct art_scope *all_next, *all_prev;     /* core->scopes_head, under core->lock */
  struct art_scope *all_tmp;                 /* a batch of the owner's driver (cancel_scopes) */
  art_task *children, *cursor;
  asyncrt_waker join_waker;
  art_error **errors;
  uint32_t nerrors, cap_errors;
  int32_t status;   /* the first error's, or ETIMEDOUT */
  uint64_t deadline; /* effective, absolute (UINT64_MAX: none) */
  uint64_t cleanup_ns;
  _Atomic uint64_t cancel_deadline; /* what its children's cleanups get */
  asyncrt_timer timer;
  uint64_t id, handle, owner_id;
  char name[ART_NAME_MAX];
} art_scope;

/* Opens a scope: owner (NULL at the top) on core e. Validated config. */
int art_scope_open(art_exec *e, art_exec *top, art_task *owner, const asyncrt_scope_config *cfg,
                   art_scope **out);
int art_scope_spawn(art_scope *s, const asyncrt_future *fut, unsigned flags,
                    const asyncrt_task_storage *storage, art_task **out);
int art_scope_join(art_scope *s, asyncrt_future *out);
/* deadline: the cleanup deadline children get (1: none); reason ART_CANCEL_*. */
enum { ART_CANCEL_USER = 0, ART_CANCEL_DEADLINE = 1, ART_CANCEL_ERROR = 2, ART_CANCEL_OWNER = 3 };
void art_scope_cancel(art_scope *s, uint64_t deadline, int reason);
int art_scope_status(art_scope *s);
void art_scope_free(art_scope *s);
void art_scope_unref(art_scope *s);
int art_scope_error_get(art_scope *s, size_t index, asyncrt_error_info *out);
size_t art_scope_error_count(art_scope *s);
/* The task's ext, made if it has none (any thread). NULL: ENOMEM recorded. */
art_task_ext *art_task_ext_get(art_task *t);
/* Frees the ext with the header (home lock held). */
void art_task_ext_release(art_exec *home, art_task *t);
/* A cancel with a cleanup deadline (1: sync). */
int art_task_cancel_deadline(art_task *t, uint64_t deadline);
/* The poll path's slow branches (art_scope.c). */
typedef void (*art_requeue_fn)(art_exec *, art_task *);
/* t (OWNED, CANCEL seen, not shielded): its subtree, its cleanup, its drop.
 * Returns 1 if it polled a cleanup, 0 otherwise. */
int art_task_cancel_slow(art_exec *e, art_task *t, asyncrt_context *cx, art_requeue_fn requeue);
/* t's future just returned (status): returns 1 if t must wait for the
 * children of its scopes (it was parked or queued), 0 to finish now. */
int art_task_before_finish(art_exec *e, art_task *t, int status, art_requeue_fn requeue);
/* Publishes t's status and COMPLETE, wakes its joiner, unlinks it from the
 * live list; the executor's reference is the caller's to drop. */
void art_task_complete(art_task *t, int status);
/* art_task_finish for a task with an ext (after the drop). */
void art_task_finish_ext(art_exec *e, art_task *t, int status);
/* Local wakes. A task that only its core's driver ever polls (every task
 * of a local core, a non-Send task of a group's core; never a foreign
 * core's) is woken from that driver without an atomic operation: the
 * driver keeps its queued/parked state in `status` (which holds the final
 * status only once COMPLETE), and OWNED stays set for its whole life. Any
 * other thread wakes it by setting NOTIFIED (one fetch-or) and, if that was
 * news, pushing it, with a reference, on the core's remote stack; the
 * driver clears NOTIFIED when it takes it from there. So a task is on the
 * remote stack at most once, and a wake is never lost. */
enum { ART_LS_IDLE = 0, ART_LS_QUEUED = 1, ART_LS_NOTIFIED = 2 };
static inline int art_task_lw(const art_task *t, const art_exec *e) {
  return !e->is_foreign && (!e->group || !(t->flags & ART_TF_SEND));
}
static inline int art_ls_get(const art_task *t) { return __atomic_load_n(&t->status, __ATOMIC_RELAXED); }
static inline void art_ls_set(art_task *t, int v) { __atomic_store_n(&t->status, v, __ATOMIC_RELAXED); }
/* Wakes a local-wake task (art_task_schedule's path for them). */
void art_exec_wake_lw(art_exec *e, art_task *t);
/* Parks a local-wake task after a pending poll, or queues it again if a
 * wake came meanwhile (its driver). */
void art_exec_park_lw(art_exec *e, art_task *t);

/* Whether t's end must go through art_task_before_finish /
 * art_task_cancel_slow: it has an ext, or a handle through which a scope
 * could be opened for it from another thread. */
static inline int art_task_needs_slow_end(const art_task *t) {
  return (atomic_load_explicit(&((art_task *)t)->state, memory_order_relaxed) & (ART_EXT | ART_HANDLED)) != 0;
}
/* Whether the shield of a task holds against this core's cancels. */
static inline int art_shielded(art_exec *e, uint32_t s) {
  return (s & ART_SHIELD) && !atomic_load_explicit(&e->immediate, memory_order_relaxed);
}
void art_context_fail_info(asyncrt_context *cx, const asyncrt_error_info *info);
int art_shield_enter(asyncrt_context *cx);
int art_shield_exit(asyncrt_context *cx);
int art_task_set_name(art_task *t, const char *name);
int art_task_error_get(art_task *t, asyncrt_error_info *out);
/* The task polled with cx, or NULL (not a task poll of an asyncrt core). */
art_task *art_context_task(asyncrt_context *cx);
/* Calls fn for at most max_per_inst in-flight ops of each subsystem
 * instance of e (under its lock): the submitting task's id, the subsystem's
 * name and the opcode. Not from inside a subsystem callback. */
void art_subsys_dump_ops(art_exec *e, void (*fn)(void *, uint64_t, const char *, uint32_t), void *user,
                         unsigned max_per_inst);
/* Finds a live task of executor e (any of its cores) by address: 1 with its
 * id and name (cap bytes, "" for none) if it is on a live list, else 0. */
int art_exec_find_task(art_exec *e, const art_task *want, uint64_t *id, char *name, size_t cap);
/* Writes the dump of the cores through write. */
int art_exec_dump(art_exec **cores, unsigned n, unsigned format,
                  void (*write)(const char *, size_t, void *), void *user);

/* ---- channels (art_chan.c) ------------------------------------------------ */

/* Validated config; *tx and *rx receive handles. */
int art_channel_new(const asyncrt_channel_config *cfg, uint64_t *tx, uint64_t *rx);
/* A new sender (subscribe 0) or receiver (subscribe 1) of tx's channel. */
int art_sender_clone(void *tx, int subscribe, uint64_t *out);
int art_endpoint_free(uint64_t handle, void *ep);
int art_try_send(void *tx, const void *value);
int art_try_recv(void *rx, void *out);
int art_send_poll(void *tx, const void *value, asyncrt_context *cx, asyncrt_chan_op *op);
int art_recv_poll(void *rx, void *out, asyncrt_context *cx, asyncrt_chan_op *op);
void art_chan_op_cancel(asyncrt_chan_op *op);
size_t art_channel_len(void *rx);
int art_send_future(void *tx, const void *value, asyncrt_chan_op *op, asyncrt_future *out);
int art_recv_future(void *rx, asyncrt_chan_op *op, asyncrt_future *out);

/* ---- thread-per-core groups (art_group.c) --------------------------------- */

struct art_group {
  unsigned nworkers;
  art_exec **workers;
  _Atomic unsigned next_worker; /* placement of spawns from other threads */
  _Atomic unsigned idle;        /* workers parked or about to park */
  _Atomic int stopping;         /* shutdown began */
  _Atomic unsigned cores_left;  /* cores not yet destroyed; the last frees the group */
  size_t mem_limit;             /* the executor's cap over all cores (0: none) */
  _Atomic size_t mem_in_use;    /* counted only when there is a cap */
  art_lock inject_lock;         /* the injector: Send tasks that overflowed */
  art_task *inject_head, *inject_tail;
  _Atomic uint64_t inject_len;
  /* Spawn requests that overflowed a worker's ring: a list of chunks of
   * copies under req_lock, with emptied chunks kept for reuse. */
  art_lock req_lock;
  struct art_req_chunk *req_head, *req_tail, *req_free;
  unsigned req_nfree;
  _Atomic uint64_t req_len;
};

/* The executor-wide cap of a group covers every slot its cores take from
 * task memory: headers, and the ext records of tasks with scopes or names.
 * Charging `bytes` fails with ELIMIT (recorded) past the cap; no cap, no
 * count. */
static inline int art_group_charge(art_group *g, size_t bytes) {
  if (!g->mem_limit || !bytes) return ASYNCRT_OK;
  size_t before = atomic_fetch_add(&g->mem_in_use, bytes);
  if (before + bytes <= g->mem_limit) return ASYNCRT_OK;
  atomic_fetch_sub(&g->mem_in_use, bytes);
  return art_fail(ASYNCRT_ELIMIT, "task memory limit of %zu bytes reached (%zu in use, %zu asked)", g->mem_limit,
                  before, bytes);
}
static inline void art_group_uncharge(art_group *g, size_t bytes) {
  if (g->mem_limit && bytes) atomic_fetch_sub(&g->mem_in_use, bytes);
}

/* Links n cores into a group (core i becomes worker i); memory_limit caps
 * the task memory of all of them together. */
art_group *art_group_new(art_exec **cores, unsigned n, size_t memory_limit);
/* The core a spawn with these flags lands on: ASYNCRT_SPAWN_WORKER(i), else
 * the calling worker, else the next in turn. NULL (EINVAL) for a bad index. */
art_exec *art_group_place(art_group *g, unsigned flags);
/* Owner side: queue a Send task where idle workers can take it. */
void art_group_send_push(art_exec *e, art_task *t);
/* From a thread that drives none of the group's cores: queue a Send task
 * where any worker can take it, and wake an idle one. */
void art_group_inject(art_group *g, art_task *t);
/* Driver of e: moves a batch from the injector to e's local ring. */
unsigned art_group_refill(art_exec *e);
/* One task from the injector (NULL if empty), for a worker's fairness tick;
 * the caller makes itself the task's core. */
art_task *art_group_take_injected(art_group *g);
/* The owner takes one of its own Send tasks. */
art_task *art_group_send_pop(art_exec *e);
/* Driver of e: queues a spawn request for a Send future with no output, if
 * it can (a slot of e's memory and room in the ring); 0 to take the
 * ordinary path. */
int art_group_request(art_exec *e, const asyncrt_future *fut);
/* Driver of e: turns up to a batch of its own requests into tasks on its
 * local ring; returns how many. */
unsigned art_group_take_requests(art_exec *e);
/* Frees the group's request chunks (the group is being destroyed). */
void art_group_free_chunks(art_group *g);
/* Nonzero if e has requests queued. */
int art_group_requests_pending(art_exec *e);
/* An idle worker takes work from its siblings' Send rings or the injector
 * into its local queue; returns how many tasks it took. */
unsigned art_group_steal(art_exec *thief);
/* Nonzero if any worker could take a Send task now. */
int art_group_stealable(art_group *g, art_exec *except);
/* Park protocol: returns 1 if the worker may sleep now (nothing to do, and
 * it is counted idle so pushes will unpark it), 0 if work appeared. */
int art_worker_prepare_park(art_exec *e);
void art_worker_unparked(art_exec *e);
/* How a worker runs (art_worker_loop). */
typedef struct art_worker_config {
  uint64_t budget_polls, budget_ns, spin_ns, park_bound_ns;
  const asyncrt_thread_hooks *hooks; /* may be NULL */
} art_worker_config;
/* Runs worker e until its group is stopping and has no live task: runs in
 * budgets, steals, spins up to spin_ns, then parks. Caller is the driver. */
void art_worker_loop(art_exec *e, const art_worker_config *cfg);
/* Live tasks over every core of the group. */
uint64_t art_group_live(art_group *g);
/* Drops every task left in the injector (after the workers stopped). */
void art_group_drain_injector(art_group *g);

/* ---- foreign executors (art_exec.c) and blocking waits (art_task.c) ------- */

/* Hands a queued task to the foreign executor as a runnable (with a ref). */
void art_foreign_schedule(art_exec *e, art_task *t);
int art_runnable_run(art_task *t);
void art_runnable_drop(art_task *t);
/* Waits on the calling thread (not a driver) until t completes or
 * deadline_ns passes (0: no bound). Returns 1 if it completed. */
int art_task_wait(art_task *t, uint64_t deadline_ns);

/* ---- host queues (art_hostq.c) ------------------------------------------- */

typedef struct art_hostq art_hostq;
art_hostq *art_hostq_new(void);
void art_hostq_close(art_hostq *q);
int art_hostq_future(art_hostq *q, uint64_t *tag, asyncrt_future *out);
size_t art_hostq_take(art_hostq *q, uint64_t *events, size_t cap);
void art_hostq_complete(art_hostq *q, const uint64_t *tags, const int *statuses, size_t n);
void art_hostq_wake(art_hostq *q, const uint64_t *tags, size_t n);
int art_hostq_waker(art_hostq *q, uint64_t tag, asyncrt_waker *out);

/* ---- the stall watchdog (art_watch.c) ------------------------------------ */

typedef struct art_watch art_watch;
/* Sets the watchdog of executor e (its first core) up or changes it; the
 * previous handler is finalized. On failure (ENOMEM, recorded) finalize has
 * run. threshold 0: off. */
int art_watch_set(art_exec *e, uint64_t threshold, asyncrt_stall_fn report, void *user,
                  void (*finalize)(void *));
/* One sample of every worker of e, and the reports that are due; returns
 * how many. Any thread; one check at a time. */
unsigned art_watch_check(art_exec *e);
/* Whether this thread is inside a report of e's watchdog. */
int art_watch_reporting(art_exec *e);
/* Finalizes the handler and frees the watchdog (the executor's free, after
 * the last check). */
void art_watch_free(art_exec *e);

/* ==== synchronization and combinators (art_sync.c, art_comb.c) ============ */

/* A mutex, semaphore, notify or barrier: one object, `kind` its handle type
 * (ART_H_MUTEX .. ART_H_BARRIER). Arguments are validated by the caller. */
typedef struct art_sync art_sync;
/* count: the semaphore's permits; parties: the barrier's. */
int art_sync_new(int kind, unsigned flags, uint64_t count, uint32_t parties, art_sync **out);
uint64_t art_sync_handle(const art_sync *s);
/* EBUSY while a waiter is queued or holds a grant it has not seen. */
int art_sync_free(art_sync *s);
/* Makes *out the wait future of s in `w` (permits: the semaphore's request). */
void art_sync_wait_init(art_sync *s, uint64_t permits, asyncrt_wait *w, asyncrt_future *out);
/* OK or EAGAIN (not recorded: an answer, not a failure). */
int art_mutex_try_lock(art_sync *s);
int art_mutex_unlock(art_sync *s);
int art_semaphore_try_acquire(art_sync *s, uint64_t n);
int art_semaphore_release(art_sync *s, uint64_t n);
uint64_t art_semaphore_available(art_sync *s);
void art_notify_one(art_sync *s);
void art_notify_all(art_sync *s);

/* Combinators over validated futures (taken; n >= 1 for select). */
size_t art_join_all_size(size_t n);
void art_join_all_init(void *state, const asyncrt_future *futs, size_t n, void *outputs, asyncrt_future *out);
size_t art_join_all_index(const void *state);
size_t art_select_size(size_t n);
void art_select_init(void *state, const asyncrt_future *futs, size_t n, void *winner_output,
                     asyncrt_future *out);
size_t art_select_index(const void *state);
void art_stream_next_init(asyncrt_stream_next_state *st, const asyncrt_future *stream, void *item,
                          asyncrt_future *out);

/* ==== end of synchronization and combinators ================================ */

#pragma GCC visibility pop

#endif
