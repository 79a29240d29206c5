/* fuzz.h -- the API fuzzer's world: the objects one input creates, what the
 * reference model knows about each, and the futures the fuzzer hands to
 * asyncrt (programs whose behaviour the input chooses).
 *
 * One input is one run: a sequence of operations decoded from the bytes
 * (ops.c), each a call into the public API whose status the model predicts
 * (model.c), then a teardown that settles and frees everything and checks
 * the invariants: every future dropped exactly once, every storage released
 * once, every error value freed once, every executor finalized, no task
 * memory left. Any violation aborts with a message (a libFuzzer finding).
 */
#ifndef ART_FUZZ_H
#define ART_FUZZ_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "../../include/asyncrt.h"

/* Sizes of the world: small, so that operations meet each other often. */
#define MAX_EXECS 3
#define MAX_TASKS 48
#define MAX_PROGS 128
#define MAX_SCOPES 12
#define MAX_HJOINS 12
#define MAX_WAKERS 16
#define MAX_CHANS 4
#define MAX_ENDPOINTS 8
#define MAX_STALE 16
#define MAX_TIMER_FUTS 8
#define MAX_OPS 160
#define MAX_CHILDREN 3
#define FOREIGN_QUEUE 512

/* ---- failures -------------------------------------------------------------- */

/* A broken invariant: prints the run's trace and aborts (a finding). */
void fz_fail(const char *fmt, ...) __attribute__((noreturn, format(printf, 1, 2)));
#define FZ_CHECK(cond, ...)                                                                        \
  do {                                                                                             \
    if (!(cond)) fz_fail(__VA_ARGS__);                                                             \
  } while (0)
/* Records a line of the run's trace (printed by fz_fail; off unless
 * ASYNCRT_FUZZ_TRACE is set or a failure is being reported). */
void fz_trace(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* ---- input ------------------------------------------------------------------ */

typedef struct fz_input {
  const uint8_t *p, *end;
} fz_input;
/* The next byte (0 once the input is exhausted). */
static inline uint8_t fz_byte(fz_input *in) { return in->p < in->end ? *in->p++ : 0; }
static inline unsigned fz_pick(fz_input *in, unsigned n) { return n ? fz_byte(in) % n : 0; }
static inline uint32_t fz_u16(fz_input *in) {
  uint32_t v = fz_byte(in);
  return v | (uint32_t)fz_byte(in) << 8;
}

/* ---- statuses the header documents per function ------------------------------- */

enum fz_fn {
  FN_SEND, FN_RECV, FN_SYNC_NEW, FN_SYNC_WAIT, FN_SYNC_FREE, FN_MUTEX_TRY, FN_MUTEX_UNLOCK, FN_SEM_TRY,
  FN_SEM_RELEASE, FN_SEM_AVAILABLE, FN_NOTIFY, FN_COMB,
  FN_EXEC_NEW, FN_EXEC_NEW_FOREIGN, FN_EXEC_FREE, FN_EXEC_SHUTDOWN, FN_EXEC_CAPS, FN_EXEC_STATS,
  FN_WORKER_STATS, FN_EXEC_FD, FN_SPAWN, FN_SPAWN_IN, FN_TASK_JOIN, FN_TASK_CANCEL, FN_TASK_CANCEL_EX,
  FN_TASK_STATUS, FN_TASK_ID, FN_TASK_RELEASE, FN_TASK_ERROR_GET, FN_TASK_SET_NAME, FN_BLOCK_ON, FN_RUN,
  FN_RUN_STEP, FN_EXEC_NOW, FN_CLOCK_ADVANCE, FN_EXEC_TICK, FN_RUNNABLE_RUN, FN_RUNNABLE_DROP,
  FN_SCOPE_OPEN, FN_SCOPE_OPEN_FOR, FN_SCOPE_OPEN_TOP, FN_SCOPE_SPAWN, FN_SCOPE_JOIN, FN_SCOPE_CANCEL,
  FN_SCOPE_STATUS, FN_SCOPE_FREE, FN_SCOPE_ERROR_COUNT, FN_SCOPE_ERROR_GET, FN_SCOPE_ID, FN_EXEC_DUMP,
  FN_SLEEP_FOR, FN_TIMEOUT_FOR, FN_CHANNEL_NEW, FN_SENDER_CLONE, FN_SENDER_SUBSCRIBE, FN_ENDPOINT_FREE,
  FN_TRY_SEND, FN_TRY_RECV, FN_CHANNEL_LEN, FN_SHIELD, FN_COUNT
};
/* Aborts unless status is one the header lists for fn, and unless a
 * failure was recorded for asyncrt_last_status / asyncrt_last_error. */
int fz_documented(enum fz_fn fn, int status);
/* Aborts unless status is in the mask of allowed statuses (bit s). */
int fz_expect(enum fz_fn fn, int status, uint32_t allowed, const char *what);
#define ST(s) (1u << (s))

/* ---- programs: the futures the fuzzer hands to asyncrt ------------------------- */

enum prog_kind {
  P_READY,   /* ready at the first poll with `value` */
  P_YIELD,   /* wakes itself (or yields) `arg` times, then ready */
  P_FAIL,    /* fails with a status (and maybe a message and a value) */
  P_WAIT,    /* pending until signalled, from any thread */
  P_SLEEP,   /* a timer `arg` ns after its first poll */
  P_JOIN,    /* awaits a join future it owns (a task's or a scope's) */
  P_SCOPE,   /* opens a scope in its poll, spawns children, then returns or joins */
  P_REENTER, /* calls a driving function from inside its poll (misuse) */
  P_CHAN,    /* awaits a send or receive future on a channel */
  P_SYNC,    /* awaits a mutex, semaphore, notify or barrier; gives back what it got */
  P_COMB,    /* awaits join_all or select over its children */
  P_KINDS
};

/* Where a SCOPE program goes after spawning its children. */
enum { SCOPE_EARLY_READY, SCOPE_EARLY_FAIL, SCOPE_AWAIT };

typedef struct prog {
  /* Fixed before it is handed over (main thread). */
  int kind;
  uint32_t arg;
  uint64_t value;
  int out8;          /* output_size 8, else 0 */
  int cleanup_polls; /* with a vtable->cleanup: ready after this many (-1: never ready) */
  int with_cleanup;
  int exec;          /* where it runs (-1: unknown) */
  int task;          /* the model's task, or -1 (detached, a child, a block_on root) */
  int fail_status;   /* P_FAIL */
  int fail_info;     /* P_FAIL: names it with a message and a value */
  int scope_mode, scope_flags, nchildren, children[MAX_CHILDREN]; /* SCOPE, COMB */
  uint64_t scope_timeout;
  int reenter_call;
  /* What happened to it (any thread). */
  _Atomic int given;    /* asyncrt owns it */
  _Atomic int polls, drops, cleanups;
  _Atomic int finished; /* the asyncrt_poll value its last poll returned, if READY or ERROR */
  _Atomic int failure;  /* with ERROR: the status it named (or EFAILED) */
  _Atomic int early_children; /* SCOPE: returned early after spawning this many */
  /* P_WAIT: the waker of its last poll, under lock. */
  _Atomic int lock;
  asyncrt_waker waker;
  _Atomic int signalled;
  /* P_SLEEP */
  asyncrt_timer timer;
  uint64_t deadline;
  int started;
  /* P_JOIN */
  asyncrt_future inner;
  int has_inner;
  /* P_CHAN: the endpoint (the model's), the future made at decode time */
  int ep, is_send;
  asyncrt_chan_op chan_op;
  uint64_t chan_val[2];
  /* P_SYNC: the object (the model's) and what it waits for */
  int sync;
  uint64_t permits;
  asyncrt_wait wait;
  /* P_COMB: select (else join_all), its state and outputs */
  int select;
  _Alignas(16) unsigned char comb_state[512];
  uint64_t comb_out[MAX_CHILDREN];
  asyncrt_future comb;
  int has_comb;
  /* P_SCOPE */
  asyncrt_scope *scope;
  asyncrt_future sjoin;
  int has_sjoin;
  int yields_left;
} prog;

extern prog fz_progs[MAX_PROGS];
extern int fz_nprogs;
/* A program with an output of 0 or 8 bytes; -1 when the pool is full. */
int prog_new(int kind, uint32_t arg, int out8);
asyncrt_future prog_future(int p);
void prog_signal(int p); /* sets its signal and wakes its waker (any thread) */
/* A clone of the waker it holds (zeroed if none). */
asyncrt_waker prog_waker_clone(int p);
/* Error values handed to asyncrt with fail_info, and how many were freed. */
extern _Atomic int fz_values_made, fz_values_freed;
/* Futures with invalid vtables, for argument checks; `how` picks which. */
asyncrt_future prog_bad_future(int p, unsigned how, int *droppable);

/* ---- the model's objects ------------------------------------------------------ */

enum { EX_LOCAL_TEST, EX_LOCAL_MONO, EX_THREADS_TEST, EX_THREADS_MONO, EX_FOREIGN, EX_KINDS };

typedef struct fz_exec {
  int live;
  int kind;           /* EX_* */
  unsigned workers;
  asyncrt_executor *h;
  int freed, shut;    /* freed, or shut down (thread-per-core) */
  int limited;        /* a memory cap: spawns may give ELIMIT */
  int failing_alloc;  /* an allocator hook that fails: spawns may give ENOMEM */
  uint64_t advanced;  /* test clock */
  asyncrt_allocator alloc;    /* counts what the executor holds (failing_alloc: fails too) */
  _Atomic long allocs_out;
  /* foreign: runnables waiting to be run, pushed from any thread */
  _Atomic int qlock;
  asyncrt_runnable *queue[FOREIGN_QUEUE];
  unsigned qhead, qtail;
  int runnable_dropped;        /* a runnable was dropped: its task was cancelled */
  _Atomic int finalized;
  _Atomic int alloc_countdown; /* failing_alloc: allocations left before one fails */
} fz_exec;

static inline int ex_threads(const fz_exec *e) { return e->kind == EX_THREADS_TEST || e->kind == EX_THREADS_MONO; }
static inline int ex_test_clock(const fz_exec *e) { return e->kind == EX_LOCAL_TEST || e->kind == EX_THREADS_TEST; }
static inline int ex_local(const fz_exec *e) { return e->kind == EX_LOCAL_TEST || e->kind == EX_LOCAL_MONO; }

typedef struct fz_task {
  int live;
  asyncrt_task *h;    /* NULL once released */
  int exec, prog, scope;
  int joined;         /* its join future was made */
  int cancelled;      /* a cancel was asked of it directly */
  int storage;        /* in caller storage (fz_storage index) */
  uint64_t id;
  int timeout;        /* its future is a timeout around the program: ETIMEDOUT is possible */
  int unknown;        /* no program (a sleep future asyncrt made): liveness unknown */
  int done_seen;      /* a status other than EAGAIN was observed */
  int last_status;
} fz_task;

typedef struct fz_scope {
  int live;
  asyncrt_scope *h;   /* NULL once freed */
  int exec, owner;    /* owner: the model's task, -1 at the top */
  int joined;         /* its join future was made */
  int cancelled;      /* cancelled, freed before its join completed, or past a deadline */
  int deadline;       /* opened with a deadline or timeout */
  int collect, shield;
  int join_done;      /* its join future completed (the scope is closed) */
  int children[MAX_TASKS];
  int nchildren;
  int untracked;      /* it has a child the task table had no room for */
} fz_scope;

/* A join future the harness holds (not handed to asyncrt). */
typedef struct fz_hjoin {
  int live;
  asyncrt_future f;
  int task;  /* the model's task, or -1 for a scope's join */
  int scope;
  int done;  /* it returned READY or ERROR: only a drop is left */
  uint64_t out;
} fz_hjoin;

/* A channel as the model sees it: every value ever sent (unique), how far
 * the MPSC queue has been read, and each receiver's position. */
#define CHAN_VALUES 256
typedef struct fz_chan {
  int live;
  int async;              /* futures used it: the exact model is off, statuses still checked */
  int local;              /* ASYNCRT_CHANNEL_LOCAL: used from the main thread only */
  unsigned kind, cap, elem;
  int senders, receivers; /* live endpoints */
  uint64_t values[CHAN_VALUES];
  unsigned seq;           /* values sent */
  unsigned head;          /* MPSC: values received */
  int taken;              /* ONESHOT */
} fz_chan;

typedef struct fz_endpoint {
  int live;
  void *h;
  int chan, is_rx;
  unsigned pos;           /* BROADCAST, WATCH: the next value it reads */
  _Atomic int pins;       /* futures made on it and not yet dropped: not freed meanwhile */
} fz_endpoint;

/* A mutex, semaphore, notify or barrier. */
enum { SY_MUTEX, SY_SEMAPHORE, SY_NOTIFY, SY_BARRIER, SY_KINDS };
#define MAX_SYNCS 4
typedef struct fz_sync {
  int live, kind;
  void *h;
  int async;       /* wait futures used it: the exact model is off */
  int local;       /* ASYNCRT_SYNC_LOCAL: used from the main thread only */
  int held;        /* mutex, exact model: held by the harness */
  uint64_t permits; /* semaphore, exact model */
} fz_sync;

typedef struct fz_world {
  fz_exec ex[MAX_EXECS];
  fz_task tasks[MAX_TASKS];
  int ntasks;
  fz_scope scopes[MAX_SCOPES];
  int nscopes;
  fz_hjoin hjoins[MAX_HJOINS];
  asyncrt_waker wakers[MAX_WAKERS]; /* clones the harness holds */
  fz_chan chans[MAX_CHANS];
  fz_endpoint eps[MAX_ENDPOINTS];
  fz_sync syncs[MAX_SYNCS];
  void *stale[MAX_STALE]; /* freed handles of any type */
  int nstale;
  uint64_t next_value;
} fz_world;

extern fz_world W;

/* ---- caller storage for spawn_in ------------------------------------------------ */

#define MAX_STORAGE 8
extern _Atomic int fz_storage_released[MAX_STORAGE];
extern int fz_storage_used[MAX_STORAGE];

/* ---- helper threads: wakes from threads asyncrt never saw --------------------------- */

enum { JOB_SIGNAL, JOB_WAKE, JOB_WAKE_BY_REF_DROP, JOB_DROP };
void helpers_start(void);
/* Queues a job on helper thread `which` (0 or 1); runs it inline when full. */
void helpers_post(int which, int job, int prog, asyncrt_waker w);
/* Waits (bounded) until both helpers are idle; a hang is a finding. */
void helpers_drain(void);

/* ---- the operations and the teardown -------------------------------------------------- */

int fz_cancel_possible(int t);
int fz_scope_cancel_possible(int s);
void fz_check_task_status(int t, int st);
int fz_task_finite(int t);

void ops_run(fz_input *in);
void world_reset(void);
void world_teardown(void);
/* The executor's queued runnables (foreign). */
int foreign_pop(fz_exec *e, asyncrt_runnable **r);

#endif
