/* Subsystems and operation requests (asyncrt 0.3): the scheduling policy
 * (smooth weighted round robin over priority x min(waiters, waiter_cap)),
 * ops (submit, complete, the in-flight walk, op_poll / op_done, the op
 * future), cancellation and the reaping of a cancelled task's ops,
 * unregistering with waiters, registration errors and reentrancy, static
 * registration, thread-per-core registrations, fd subsystems, and freeing an
 * executor with ops in flight.
 *
 * ss_sub is a hand-written subsystem whose callbacks count what they saw (in
 * its user data); ss_task is a task that submits one op at a time and records
 * what it observed. Time is never measured: the policy is checked over
 * counted ticks. Waits on other threads are bounded and fail with a message.
 * State that a worker thread may touch lives on the heap and is leaked when a
 * CHECK fails, as in test_threads.c. */
#include "check.h" /* first: it sets _POSIX_C_SOURCE */
#include "testfut.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <unistd.h>

#define WORKERS 2
#define SS_MAX_WORKERS 4
#define SS_WAIT_MS 5000
/** The result a cancel callback completes a cancelled op with. */
#define SS_CANCEL_RESULT (-77)

/* op.args: what the submitter puts there for the test subsystems. */
enum { SS_ARG_WORKER = 0, SS_ARG_TAG = 1, SS_ARG_STATUS = 2, SS_ARG_RESULT = 3 };

/* --- the world of a thread-per-core executor: its threads and parks ------- */

typedef struct ss_world {
  pthread_t threads[WORKERS]; /* written by on_start before started[i] is set */
  int started[WORKERS];
  int parks[WORKERS], unparks[WORKERS];
  int parked_waiting[WORKERS]; /* parks while *watch was nonzero */
  const int *watch;            /* the waiters of the fd test's registration */
  int finalized;
} ss_world;

static void ss_on_start(unsigned i, void *user_data) {
  ss_world *w = user_data;
  if (i < WORKERS) {
    w->threads[i] = pthread_self();
    tf_set(&w->started[i], 1);
  }
}

static void ss_on_park(unsigned i, void *user_data) {
  ss_world *w = user_data;
  if (i < WORKERS) {
    tf_add(&w->parks[i], 1);
    if (w->watch != NULL && tf_get(w->watch) > 0) {
      tf_add(&w->parked_waiting[i], 1);
    }
  }
}

static void ss_on_unpark(unsigned i, void *user_data) {
  ss_world *w = user_data;
  if (i < WORKERS) {
    tf_add(&w->unparks[i], 1);
  }
}

static void ss_world_finalize(void *user_data) {
  ss_world *w = user_data;
  tf_add(&w->finalized, 1);
}

/* A WORKERS-worker executor whose hooks record into w. */
static asyncrt_executor *ss_threads_executor(ss_world *w) {
  asyncrt_executor_config cfg;
  asyncrt_thread_hooks hooks;
  asyncrt_executor *ex = NULL;
  int rc;
  if (w == NULL) {
    return NULL;
  }
  memset(&hooks, 0, sizeof hooks);
  hooks.size = sizeof hooks;
  hooks.on_start = ss_on_start;
  hooks.on_park = ss_on_park;
  hooks.on_unpark = ss_on_unpark;
  hooks.finalize = ss_world_finalize;
  hooks.user_data = w;
  asyncrt_executor_config_init(&cfg);
  cfg.kind = ASYNCRT_EXECUTOR_THREADS;
  cfg.workers = WORKERS;
  cfg.hooks = &hooks;
  rc = asyncrt_executor_new(&cfg, &ex);
  if (rc != ASYNCRT_OK) {
    fprintf(stderr, "  asyncrt_executor_new(THREADS): got %s (%s)\n", asyncrt_status_str(rc),
            asyncrt_last_error());
    return NULL;
  }
  return ex;
}

/* Waits until every worker has started (so ss_world.threads is complete). */
static int ss_world_ready(ss_world *w) {
  int i;
  for (i = 0; i < WORKERS; i++) {
    if (!tf_wait_flag(&w->started[i], SS_WAIT_MS)) {
      return 0;
    }
  }
  return 1;
}

/* --- ss_sub: a subsystem that counts what its callbacks saw ---------------- */

enum ss_mode {
  SS_HOLD,    /* poll completes nothing until `release`: then every op (complete_all) */
  SS_ECHO,    /* poll completes each op with its SS_ARG_STATUS / SS_ARG_RESULT */
  SS_WALK,    /* poll records the in-flight order; see ss_walk */
  SS_FD,      /* poll reads the eventfd `fd`; a count completes every op with it */
  SS_REENTER  /* callbacks try what they must not, then complete every op */
};

enum ss_cancel_mode {
  SS_CANCEL_KEEP, /* the cancel callback marks the op; poll completes marked ops
                     (ECANCELLED, SS_CANCEL_RESULT) once `allow_cancel` is set */
  SS_CANCEL_NOW,  /* the cancel callback completes the op at once */
  SS_CANCEL_ODD   /* completes ops with an odd SS_ARG_TAG at once, keeps the rest */
};

static int ss_cancel_mark; /* its address marks an op whose cancel was asked */

typedef struct ss_sub {
  /* behaviour, set by the test */
  int mode, cancel_mode;
  int release;           /* SS_HOLD */
  int status;            /* SS_HOLD: what released ops complete with */
  int64_t result;        /* SS_HOLD: plus 100 x the worker if per_worker_result */
  int per_worker_result;
  int allow_cancel;      /* SS_CANCEL_KEEP */
  int complete_in_submit; /* the submit callback completes the op (as SS_ECHO) */
  int double_complete;   /* SS_ECHO: complete each op a second time (ignored) */
  int fd;                /* SS_FD and the registration's fd; -1 for none */
  ss_world *world;       /* thread-per-core: poll and submit must run on the worker */
  /* SS_REENTER */
  asyncrt_executor *ex;
  asyncrt_subsystem *self_handle, *other;
  struct ss_sub *victim; /* registered from inside a callback: must be refused */
  int reg_rc, unreg_self_rc, unreg_other_rc, tick_rc, reentries;
  /* what happened */
  int polls, submits, cancels, changes, finalized;
  int worker_polls[SS_MAX_WORKERS];
  int worker_waiters[SS_MAX_WORKERS]; /* the count waiters_changed last reported */
  int max_waiters;
  int waiters_mismatch;  /* waiters_changed's count != asyncrt_subsystem_cx_waiters */
  int wrong_worker;      /* an op's SS_ARG_WORKER != asyncrt_subsystem_cx_worker */
  int wrong_thread;      /* a poll or submit on a thread other than its worker's */
  int bad_worker_index;  /* asyncrt_subsystem_cx_worker past SS_MAX_WORKERS */
  int overlaps;          /* two threads inside callbacks of one worker registration */
  int after_finalize;    /* a callback after finalize */
  int depth[SS_MAX_WORKERS];
  pthread_t owner[SS_MAX_WORKERS];
  pthread_t cancel_thread;
  int complete_all_n;    /* what the last asyncrt_subsystem_cx_complete_all returned */
  /* SS_WALK */
  int walk_polls;
  int order[2][8], order_len[2];
  uint64_t walk_waiters[2];
} ss_sub;

static void ss_init(ss_sub *s, int mode) {
  memset(s, 0, sizeof *s);
  s->mode = mode;
  s->fd = -1;
}

static ss_sub *ss_new(int mode) {
  ss_sub *s = malloc(sizeof *s);
  if (s != NULL) {
    ss_init(s, mode);
  }
  return s;
}

static void ss_enter(ss_sub *s, asyncrt_subsystem_cx *scx) {
  unsigned w = asyncrt_subsystem_cx_worker(scx);
  if (tf_get(&s->finalized)) {
    tf_add(&s->after_finalize, 1);
  }
  if (w >= SS_MAX_WORKERS) {
    tf_add(&s->bad_worker_index, 1);
    return;
  }
  /* Callbacks may nest on one thread (a completion inside poll reports the
   * new count through waiters_changed); another thread inside is an overlap. */
  if (tf_add(&s->depth[w], 1) == 1) {
    s->owner[w] = pthread_self();
  } else if (!pthread_equal(s->owner[w], pthread_self())) {
    tf_add(&s->overlaps, 1);
  }
}

static void ss_leave(ss_sub *s, asyncrt_subsystem_cx *scx) {
  unsigned w = asyncrt_subsystem_cx_worker(scx);
  if (w < SS_MAX_WORKERS) {
    tf_add(&s->depth[w], -1);
  }
}

static void ss_check_thread(ss_sub *s, asyncrt_subsystem_cx *scx) {
  unsigned w = asyncrt_subsystem_cx_worker(scx);
  if (s->world == NULL) {
    return;
  }
  if (w >= WORKERS || !tf_get(&s->world->started[w]) ||
      !pthread_equal(s->world->threads[w], pthread_self())) {
    tf_add(&s->wrong_thread, 1);
  }
}

static void ss_check_op(ss_sub *s, asyncrt_subsystem_cx *scx, const asyncrt_op *op) {
  if (op->args[SS_ARG_WORKER] != (uint64_t)asyncrt_subsystem_cx_worker(scx)) {
    tf_add(&s->wrong_worker, 1);
  }
}

static int ss_echo(ss_sub *s, asyncrt_op *op) {
  asyncrt_op_complete(op, (int)op->args[SS_ARG_STATUS], (int64_t)op->args[SS_ARG_RESULT]);
  if (s->double_complete) {
    asyncrt_op_complete(op, ASYNCRT_EFAILED, -5); /* must be ignored */
  }
  return 1;
}

static int ss_config_of(ss_sub *s, asyncrt_subsystem_config *c);

/* SS_REENTER: what a callback must not do. Each attempt is refused. */
static void ss_reenter(ss_sub *s) {
  asyncrt_subsystem_config c;
  asyncrt_subsystem *h = NULL;
  tf_add(&s->reentries, 1);
  if (s->victim != NULL) {
    ss_config_of(s->victim, &c);
    s->reg_rc = asyncrt_subsystem_register(s->ex, &c, &h);
    if (s->reg_rc == ASYNCRT_OK) { /* wrong; do not leave it registered */
      s->reg_rc = -1000 - asyncrt_subsystem_unregister(h);
    }
  }
  s->unreg_self_rc = asyncrt_subsystem_unregister(s->self_handle);
  if (s->other != NULL) {
    s->unreg_other_rc = asyncrt_subsystem_unregister(s->other);
  }
  s->tick_rc = asyncrt_executor_tick(s->ex, NULL, NULL);
}

/* SS_WALK: the first poll records the order and completes the ops tagged 0
 * and 2; the second records the order of the rest and completes them all,
 * walking the list (fetching the next op before completing the current). */
static int ss_walk(ss_sub *s, asyncrt_subsystem_cx *scx) {
  int k = s->walk_polls++, done = 0;
  asyncrt_op *op, *next;
  if (k < 2) {
    s->order_len[k] = 0;
    s->walk_waiters[k] = asyncrt_subsystem_cx_waiters(scx);
    for (op = asyncrt_subsystem_cx_first_op(scx); op != NULL && s->order_len[k] < 8;
         op = asyncrt_op_next(op)) {
      s->order[k][s->order_len[k]++] = (int)op->args[SS_ARG_TAG];
    }
  }
  for (op = asyncrt_subsystem_cx_first_op(scx); op != NULL; op = next) {
    next = asyncrt_op_next(op);
    if (k >= 1 || op->args[SS_ARG_TAG] == 0 || op->args[SS_ARG_TAG] == 2) {
      asyncrt_op_complete(op, ASYNCRT_OK, (int64_t)op->args[SS_ARG_TAG] * 7);
      done++;
    }
  }
  return done;
}

static int ss_poll(void *user_data, asyncrt_subsystem_cx *scx, uint32_t budget) {
  ss_sub *s = user_data;
  unsigned w = asyncrt_subsystem_cx_worker(scx);
  asyncrt_op *op, *next;
  int done = 0;
  size_t n;
  (void)budget;
  ss_enter(s, scx);
  ss_check_thread(s, scx);
  tf_add(&s->polls, 1);
  if (w < SS_MAX_WORKERS) {
    tf_add(&s->worker_polls[w], 1);
  }
  for (op = asyncrt_subsystem_cx_first_op(scx); op != NULL; op = next) {
    next = asyncrt_op_next(op);
    ss_check_op(s, scx, op);
    if (op->subsystem_data[0] == &ss_cancel_mark && tf_get(&s->allow_cancel)) {
      asyncrt_op_complete(op, ASYNCRT_ECANCELLED, SS_CANCEL_RESULT);
      done++;
    }
  }
  switch (s->mode) {
  case SS_HOLD:
    if (tf_get(&s->release)) {
      n = asyncrt_subsystem_cx_complete_all(scx, s->status,
                                            s->result + (s->per_worker_result ? 100 * (int64_t)w : 0));
      s->complete_all_n = (int)n;
      done += (int)n;
    }
    break;
  case SS_ECHO:
    for (op = asyncrt_subsystem_cx_first_op(scx); op != NULL; op = next) {
      next = asyncrt_op_next(op);
      done += ss_echo(s, op);
    }
    break;
  case SS_WALK:
    done += ss_walk(s, scx);
    break;
  case SS_FD: {
    uint64_t count = 0;
    if (read(s->fd, &count, sizeof count) == (ssize_t)sizeof count && count > 0) {
      n = asyncrt_subsystem_cx_complete_all(scx, ASYNCRT_OK, (int64_t)count);
      s->complete_all_n = (int)n;
      done += (int)n;
    }
    break;
  }
  case SS_REENTER:
    ss_reenter(s);
    n = asyncrt_subsystem_cx_complete_all(scx, ASYNCRT_OK, 5);
    done += (int)n;
    break;
  default:
    break;
  }
  ss_leave(s, scx);
  return done;
}

static void ss_submit(void *user_data, asyncrt_subsystem_cx *scx, asyncrt_op *op) {
  ss_sub *s = user_data;
  ss_enter(s, scx);
  ss_check_thread(s, scx);
  ss_check_op(s, scx, op);
  tf_add(&s->submits, 1);
  op->subsystem_data[0] = NULL;
  if (s->mode == SS_REENTER) {
    ss_reenter(s);
  }
  if (s->complete_in_submit) {
    ss_echo(s, op);
  }
  ss_leave(s, scx);
}

static void ss_cancel(void *user_data, asyncrt_subsystem_cx *scx, asyncrt_op *op) {
  ss_sub *s = user_data;
  ss_enter(s, scx);
  ss_check_op(s, scx, op);
  s->cancel_thread = pthread_self();
  tf_add(&s->cancels, 1);
  switch (s->cancel_mode) {
  case SS_CANCEL_NOW:
    asyncrt_op_complete(op, ASYNCRT_ECANCELLED, SS_CANCEL_RESULT);
    break;
  case SS_CANCEL_ODD:
    if (op->args[SS_ARG_TAG] & 1) {
      asyncrt_op_complete(op, ASYNCRT_ECANCELLED, SS_CANCEL_RESULT);
    }
    break;
  default:
    op->subsystem_data[0] = &ss_cancel_mark;
    break;
  }
  ss_leave(s, scx);
}

static void ss_waiters_changed(void *user_data, asyncrt_subsystem_cx *scx, uint64_t waiters) {
  ss_sub *s = user_data;
  unsigned w = asyncrt_subsystem_cx_worker(scx);
  ss_enter(s, scx);
  tf_add(&s->changes, 1);
  if (asyncrt_subsystem_cx_waiters(scx) != waiters) {
    tf_add(&s->waiters_mismatch, 1);
  }
  if (w < SS_MAX_WORKERS) {
    tf_set(&s->worker_waiters[w], (int)waiters);
  }
  if ((int)waiters > s->max_waiters) {
    s->max_waiters = (int)waiters;
  }
  ss_leave(s, scx);
}

static void ss_finalize(void *user_data) {
  ss_sub *s = user_data;
  tf_add(&s->finalized, 1);
}

static const asyncrt_subsystem_vtable ss_vtable = {sizeof(asyncrt_subsystem_vtable), ss_poll, ss_submit,
                                                   ss_cancel, ss_waiters_changed, ss_finalize};
/* No cancel callback: asyncrt completes a cancelled op itself. */
static const asyncrt_subsystem_vtable ss_vtable_nocancel = {
    sizeof(asyncrt_subsystem_vtable), ss_poll, ss_submit, NULL, ss_waiters_changed, ss_finalize};

/* A config for s with ss_vtable (or ss_vtable_nocancel when s->cancel_mode is
 * -1), priority 1, the defaults otherwise, and s->fd. */
static int ss_config_of(ss_sub *s, asyncrt_subsystem_config *c) {
  asyncrt_subsystem_config_init(c);
  c->vtable = s->cancel_mode < 0 ? &ss_vtable_nocancel : &ss_vtable;
  c->user_data = s;
  c->fd = s->fd;
  c->name = "test_subsys";
  return 0;
}

static int ss_register(asyncrt_executor *ex, ss_sub *s, uint32_t priority, uint32_t cap, uint32_t worker,
                       asyncrt_subsystem **out) {
  asyncrt_subsystem_config c;
  int rc;
  ss_config_of(s, &c);
  c.priority = priority;
  if (cap != 0) {
    c.waiter_cap = cap;
  }
  c.worker = worker;
  rc = asyncrt_subsystem_register(ex, &c, out);
  if (rc == ASYNCRT_OK) {
    s->self_handle = *out;
  }
  return rc;
}

/* A subsystem's counters; every field all-ones if the call failed. */
static asyncrt_subsystem_stats ss_stats(asyncrt_subsystem *sub) {
  asyncrt_subsystem_stats st;
  memset(&st, 0xff, sizeof st);
  st.size = sizeof st;
  if (asyncrt_subsystem_stats_get(sub, &st) != ASYNCRT_OK) {
    memset(&st, 0xff, sizeof st);
  }
  return st;
}

/* Waits until the subsystem has seen `want` submits; 1 if it did. */
static int ss_wait_submits(asyncrt_subsystem *sub, uint64_t want) {
  int64_t deadline = tf_now_ns() + (int64_t)SS_WAIT_MS * TF_MS_NS;
  for (;;) {
    asyncrt_subsystem_stats st = ss_stats(sub);
    if (st.submits != UINT64_MAX && st.submits >= want) {
      return 1;
    }
    if (tf_now_ns() >= deadline) {
      fprintf(stderr, "  subsystem saw %llu submits in %d ms, want %llu\n",
              (unsigned long long)st.submits, SS_WAIT_MS, (unsigned long long)want);
      return 0;
    }
    tf_sleep_ms(1);
  }
}

/* --- ss_task: a task that submits one op at a time ------------------------ */

typedef struct ss_task {
  /* the script */
  asyncrt_subsystem *sub;
  ss_sub *state;       /* read right after asyncrt_op_cancel (cancel_in_poll) */
  unsigned worker;     /* SS_ARG_WORKER of its ops */
  uint64_t tag;        /* SS_ARG_TAG */
  int op_status;       /* SS_ARG_STATUS: what an echoing subsystem completes with */
  int64_t op_result;   /* SS_ARG_RESULT is op_result + the round (0, 1, ...) */
  int rounds;          /* ops submitted one after the other (0 means 1) */
  int cancel_in_poll;  /* asyncrt_op_cancel right after the first submit (2: twice) */
  int submit_twice;    /* submit the op again while it is in flight */
  asyncrt_op op;
  /* what happened */
  int polls, drops, bad_polls, finished;
  int in_flight, submits, submit_rc, resubmit_rc;
  int completions;
  int32_t status;
  int64_t result;
  int round_mismatch;    /* a round completed with other than its status/result (SS_ECHO) */
  int done_before;       /* asyncrt_op_done of the op before its first submit */
  int poll_before;       /* asyncrt_op_poll of it before its first submit */
  int fields_kept;       /* ... which left its status and result as they were */
  int first_poll;        /* asyncrt_op_poll right after the first submit */
  int done_after_submit; /* asyncrt_op_done right after the first submit */
  int cancels_after_cancel; /* state->cancels right after asyncrt_op_cancel returned */
  int cancel_poll;       /* asyncrt_op_poll right after asyncrt_op_cancel */
  int cancel_rc;         /* what asyncrt_op_cancel returned */
  int inflight_at_drop;  /* the op was still in flight when the future was dropped */
  int echo;              /* the subsystem echoes: check each round */
  pthread_t poll_thread;
} ss_task;

static void ss_task_init(ss_task *t, asyncrt_subsystem *sub, ss_sub *state, unsigned worker) {
  memset(t, 0, sizeof *t);
  t->sub = sub;
  t->state = state;
  t->worker = worker;
  t->first_poll = -1;
  t->cancel_poll = -1;
  t->poll_before = -1;
  t->status = -1;
}

static ss_task *ss_tasks(int n, asyncrt_subsystem *sub, ss_sub *state, unsigned worker) {
  ss_task *ts = calloc((size_t)n, sizeof *ts);
  int i;
  for (i = 0; ts != NULL && i < n; i++) {
    ss_task_init(&ts[i], sub, state, worker);
    ts[i].tag = (uint64_t)i;
  }
  return ts;
}

static int ss_task_finish(ss_task *t, int result) {
  tf_set(&t->finished, 1);
  return result;
}

static int ss_task_poll(void *self, asyncrt_context *cx, void *out) {
  ss_task *t = self;
  int rounds = t->rounds > 0 ? t->rounds : 1;
  int r, rc;
  (void)out;
  if (tf_get(&t->finished) || tf_get(&t->drops)) {
    tf_add(&t->bad_polls, 1);
  }
  tf_add(&t->polls, 1);
  t->poll_thread = pthread_self();
  for (;;) {
    if (t->in_flight) {
      r = asyncrt_op_poll(&t->op, cx);
      if (r == ASYNCRT_POLL_PENDING) {
        return ASYNCRT_POLL_PENDING;
      }
      if (r != ASYNCRT_POLL_READY) {
        t->submit_rc = -1000 - r;
        return ss_task_finish(t, ASYNCRT_POLL_READY);
      }
      t->in_flight = 0;
      t->status = t->op.status;
      t->result = t->op.result;
      if (t->echo && (t->op.status != t->op_status || t->op.result != t->op_result + t->completions)) {
        t->round_mismatch++;
      }
      tf_add(&t->completions, 1);
      if (t->completions >= rounds) {
        return ss_task_finish(t, ASYNCRT_POLL_READY);
      }
    }
    if (t->submits == 0) { /* an op never submitted is READY, untouched */
      t->done_before = asyncrt_op_done(&t->op);
      t->op.status = 1234;
      t->op.result = 99;
      t->poll_before = asyncrt_op_poll(&t->op, cx);
      t->fields_kept = t->op.status == 1234 && t->op.result == 99;
      t->op.status = 0;
      t->op.result = 0;
    }
    t->op.opcode = 7;
    t->op.args[SS_ARG_WORKER] = t->worker;
    t->op.args[SS_ARG_TAG] = t->tag;
    t->op.args[SS_ARG_STATUS] = (uint64_t)(int64_t)t->op_status;
    t->op.args[SS_ARG_RESULT] = (uint64_t)(t->op_result + t->submits);
    rc = asyncrt_op_submit(cx, t->sub, &t->op);
    t->submit_rc = rc;
    if (rc != ASYNCRT_OK) {
      return ss_task_finish(t, ASYNCRT_POLL_READY);
    }
    t->in_flight = 1;
    if (tf_add(&t->submits, 1) == 1) { /* read by other threads */
      t->done_after_submit = asyncrt_op_done(&t->op);
      t->first_poll = asyncrt_op_poll(&t->op, cx);
      if (t->submit_twice) {
        t->resubmit_rc = asyncrt_op_submit(cx, t->sub, &t->op);
      }
      if (t->cancel_in_poll) {
        t->cancel_rc = asyncrt_op_cancel(&t->op);
        if (t->cancel_in_poll == 2 && t->cancel_rc == ASYNCRT_OK) {
          t->cancel_rc = asyncrt_op_cancel(&t->op);
        }
        t->cancels_after_cancel = tf_get(&t->state->cancels);
        t->cancel_poll = asyncrt_op_poll(&t->op, cx);
      }
    }
  }
}

static void ss_task_drop(void *self) {
  ss_task *t = self;
  if (!asyncrt_op_done(&t->op)) {
    tf_add(&t->inflight_at_drop, 1);
  }
  tf_add(&t->drops, 1);
}

static const asyncrt_future_vtable ss_task_vtable = {sizeof(asyncrt_future_vtable), 0, ss_task_poll,
                                                     ss_task_drop, NULL};

static int ss_spawn(asyncrt_executor *ex, ss_task *t, unsigned flags, asyncrt_task **out) {
  asyncrt_future f;
  f.self = t;
  f.vtable = &ss_task_vtable;
  return asyncrt_spawn(ex, &f, flags, out);
}

/* Waits until the task has completed (or failed, or been cancelled). */
static int ss_wait_task(asyncrt_task *task) {
  int64_t deadline = tf_now_ns() + (int64_t)SS_WAIT_MS * TF_MS_NS;
  int rc;
  while ((rc = asyncrt_task_status(task)) == ASYNCRT_EAGAIN && tf_now_ns() < deadline) {
    tf_sleep_ms(1);
  }
  return rc;
}

/* A local executor with the given budget (0: defaults). */
static asyncrt_executor *ss_local(uint32_t budget_polls, uint64_t budget_ns) {
  asyncrt_executor_config cfg;
  asyncrt_executor *ex = NULL;
  int rc;
  asyncrt_executor_config_init(&cfg);
  cfg.budget_polls = budget_polls;
  cfg.budget_ns = budget_ns;
  rc = asyncrt_executor_new(&cfg, &ex);
  if (rc != ASYNCRT_OK) {
    fprintf(stderr, "  asyncrt_executor_new(LOCAL): got %s (%s)\n", asyncrt_status_str(rc),
            asyncrt_last_error());
    return NULL;
  }
  return ex;
}

/* Runs a local executor until every task of ts[0..n) has finished, at most
 * 100 runs; 1 if they did. */
static int ss_run_until_finished(asyncrt_executor *ex, ss_task *ts, int n) {
  int round, i, all = 0;
  for (round = 0; round < 100 && !all; round++) {
    if (asyncrt_run(ex, NULL) != ASYNCRT_OK) {
      return 0;
    }
    all = 1;
    for (i = 0; i < n; i++) {
      all = all && tf_get(&ts[i].finished);
    }
  }
  return all;
}

/* a / b within 10% of n / d */
static int ss_ratio_ok(uint64_t a, uint64_t b, uint64_t n, uint64_t d) {
  return b > 0 && 9 * n * b <= 10 * d * a && 10 * d * a <= 11 * n * b;
}

#define CHECK_RATIO(a, b, n, d)                                                 \
  do {                                                                          \
    uint64_t a_ = (uint64_t)(a), b_ = (uint64_t)(b);                            \
    if (!ss_ratio_ok(a_, b_, (n), (d))) {                                       \
      check_fail_at(__FILE__, __LINE__);                                        \
      fprintf(stderr, "%s : %s = %llu : %llu, want %d : %d within 10%%\n", #a, #b, \
              (unsigned long long)a_, (unsigned long long)b_, (int)(n), (int)(d)); \
      return;                                                                   \
    }                                                                           \
  } while (0)

/* ===========================================================================
 * 1. The scheduling policy
 * ======================================================================== */

#define SS_TICKS 3000

/* Spawns n detached tasks, each submitting one op to sub. */
static void ss_spawn_waiters(asyncrt_executor *ex, asyncrt_subsystem *sub, ss_sub *state, ss_task *ts,
                             int n) {
  int i;
  for (i = 0; i < n; i++) {
    ss_task_init(&ts[i], sub, state, 0);
    ts[i].tag = (uint64_t)i;
    CHECK_OK(ss_spawn(ex, &ts[i], 0, NULL));
  }
}

static void ss_check_all_ok(ss_task *ts, int n, int64_t want_result) {
  int i;
  for (i = 0; i < n; i++) {
    CHECK_INT(tf_get(&ts[i].finished), 1);
    CHECK_OK(ts[i].submit_rc);
    CHECK_OK(ts[i].status);
    CHECK_INT(ts[i].result, want_result);
    CHECK_INT(tf_get(&ts[i].drops), 1);
    CHECK_INT(ts[i].bad_polls, 0);
    CHECK_INT(ts[i].inflight_at_drop, 0);
  }
}

static void test_policy_ticks_follow_priority(void) {
  asyncrt_executor *ex = ss_local(0, 0);
  ss_sub a, b, c;
  asyncrt_subsystem *ha = NULL, *hb = NULL, *hc = NULL;
  ss_task ta[8], tb[8];
  asyncrt_subsystem_stats st;
  int a0, b0, i, busy = -1;
  uint64_t next = 0;
  CHECK(ex != NULL);
  ss_init(&a, SS_HOLD);
  ss_init(&b, SS_HOLD);
  ss_init(&c, SS_HOLD);
  CHECK_OK(ss_register(ex, &a, 2, 0, ASYNCRT_SUBSYSTEM_ALL_WORKERS, &ha));
  CHECK_OK(ss_register(ex, &b, 1, 0, ASYNCRT_SUBSYSTEM_ALL_WORKERS, &hb));
  CHECK_OK(ss_register(ex, &c, 5, 0, ASYNCRT_SUBSYSTEM_ALL_WORKERS, &hc)); /* never a waiter */
  ss_spawn_waiters(ex, ha, &a, ta, 8);
  ss_spawn_waiters(ex, hb, &b, tb, 8);
  CHECK_PASSED();
  CHECK_OK(asyncrt_run(ex, NULL));
  st = ss_stats(ha);
  CHECK_INT(st.submits, 8);
  CHECK_INT(st.waiters, 8);
  CHECK_INT(st.completions, 0);
  CHECK_INT(ss_stats(hb).waiters, 8);
  CHECK_INT(a.max_waiters, 8);
  CHECK_INT(tf_get(&a.worker_waiters[0]), 8);

  a0 = tf_get(&a.polls);
  b0 = tf_get(&b.polls);
  for (i = 0; i < SS_TICKS; i++) {
    CHECK_OK(asyncrt_executor_tick(ex, &next, &busy));
  }
  CHECK_INT(busy, 1);            /* fd-less subsystems have waiters */
  CHECK_INT(next, UINT64_MAX);   /* no timer */
  /* one subsystem per tick, 2 : 1 */
  CHECK_INT((tf_get(&a.polls) - a0) + (tf_get(&b.polls) - b0), SS_TICKS);
  CHECK_RATIO(tf_get(&a.polls) - a0, tf_get(&b.polls) - b0, 2, 1);
  CHECK_INT(tf_get(&c.polls), 0);
  for (i = 0; i < 8; i++) {
    CHECK_INT(tf_get(&ta[i].polls), 1); /* nobody was woken */
    CHECK_INT(tf_get(&tb[i].polls), 1);
  }

  /* the counters agree with what the callbacks saw */
  st = ss_stats(ha);
  CHECK_INT(st.polls, tf_get(&a.polls));
  CHECK_INT(st.empty_polls, st.polls);
  CHECK_INT(st.completions, 0);
  CHECK_INT(st.waiters, 8);
  CHECK_INT(st.submits, 8);

  /* release: one poll of each completes its 8 ops and wakes their tasks */
  tf_set(&a.release, 1);
  a.result = 11;
  tf_set(&b.release, 1);
  b.result = 22;
  CHECK(ss_run_until_finished(ex, ta, 8));
  CHECK(ss_run_until_finished(ex, tb, 8));
  ss_check_all_ok(ta, 8, 11);
  ss_check_all_ok(tb, 8, 22);
  CHECK_PASSED();
  CHECK_INT(a.complete_all_n, 8);
  st = ss_stats(ha);
  CHECK_INT(st.polls, tf_get(&a.polls));
  CHECK_INT(st.completions, 8);
  CHECK_INT(st.empty_polls, st.polls - 1);
  CHECK_INT(st.waiters, 0);
  CHECK_INT(st.submits, 8);
  st = ss_stats(hb);
  CHECK_INT(st.completions, 8);
  CHECK_INT(st.empty_polls, st.polls - 1);
  CHECK_INT(st.waiters, 0);
  st = ss_stats(hc);
  CHECK_INT(st.polls, 0);
  CHECK_INT(st.submits, 0);
  CHECK_INT(st.completions, 0);
  CHECK_INT(st.empty_polls, 0);
  CHECK_INT(st.waiters, 0);
  /* waiters_changed saw every change: 8 up, 8 down */
  CHECK_INT(tf_get(&a.changes), 16);
  CHECK_INT(tf_get(&a.worker_waiters[0]), 0);
  CHECK_INT(a.waiters_mismatch, 0);
  CHECK_INT(c.changes, 0);
  /* no waiters: a tick polls nothing and is not busy */
  CHECK_OK(asyncrt_executor_tick(ex, &next, &busy));
  CHECK_INT(busy, 0);

  CHECK_OK(asyncrt_executor_free(ex));
  CHECK_INT(a.finalized, 1);
  CHECK_INT(b.finalized, 1);
  CHECK_INT(c.finalized, 1);
  CHECK_INT(a.after_finalize + b.after_finalize + c.after_finalize, 0);
  CHECK_INT(a.overlaps + b.overlaps + a.wrong_worker + b.wrong_worker, 0);
}

/* The same shares when the ticks come from the poll budget of a block_on
 * whose root keeps yielding. */
static void test_policy_block_on_budget_ticks_follow_priority(void) {
  /* a huge budget_ns: the ticks come from the poll budget alone */
  asyncrt_executor *ex = ss_local(16, 60 * TF_SECOND_NS);
  ss_sub a, b, c;
  asyncrt_subsystem *ha = NULL, *hb = NULL, *hc = NULL;
  ss_task ta[8], tb[8];
  tf_state root;
  asyncrt_future rf;
  int pa, pb;
  CHECK(ex != NULL);
  ss_init(&a, SS_HOLD);
  ss_init(&b, SS_HOLD);
  ss_init(&c, SS_HOLD);
  CHECK_OK(ss_register(ex, &a, 2, 0, ASYNCRT_SUBSYSTEM_ALL_WORKERS, &ha));
  CHECK_OK(ss_register(ex, &b, 1, 0, ASYNCRT_SUBSYSTEM_ALL_WORKERS, &hb));
  CHECK_OK(ss_register(ex, &c, 5, 0, ASYNCRT_SUBSYSTEM_ALL_WORKERS, &hc));
  ss_spawn_waiters(ex, ha, &a, ta, 8);
  ss_spawn_waiters(ex, hb, &b, tb, 8);
  CHECK_PASSED();
  tf_init(&root);
  root.yields = 48000;
  rf = tf_future_void(&root);
  CHECK_OK(asyncrt_block_on(ex, &rf, NULL, TF_TIMEOUT_NS));
  CHECK_INT(tf_get(&root.polls), 48001);
  CHECK_INT(ss_stats(ha).waiters, 8);
  pa = tf_get(&a.polls);
  pb = tf_get(&b.polls);
  CHECK(pa + pb >= 300); /* enough ticks to judge a share by */
  CHECK_RATIO(pa, pb, 2, 1);
  CHECK_INT(tf_get(&c.polls), 0);
  CHECK_INT(ss_stats(hc).polls, 0);

  tf_set(&a.release, 1);
  tf_set(&b.release, 1);
  CHECK(ss_run_until_finished(ex, ta, 8));
  CHECK(ss_run_until_finished(ex, tb, 8));
  ss_check_all_ok(ta, 8, 0);
  ss_check_all_ok(tb, 8, 0);
  CHECK_PASSED();
  CHECK_OK(asyncrt_executor_free(ex));
  CHECK_INT(a.finalized + b.finalized + c.finalized, 3);
}

/* "A tick happens at least every budget_polls task polls": a root that
 * yields 48 x budget_polls times makes at least 48 ticks, so at least 48
 * polls of the only subsystem with a waiter. Every budget is tried before
 * the test fails, so the message shows which ones fall short. */
static void test_policy_block_on_ticks_every_budget_polls(void) {
  static const int budgets[] = {16, 100, 256};
  size_t k;
  int short_budgets = 0;
  for (k = 0; k < sizeof budgets / sizeof budgets[0]; k++) {
    int budget = budgets[k], yields = 48 * budget, want = yields / budget;
    asyncrt_executor *ex = ss_local((uint32_t)budget, 60 * TF_SECOND_NS);
    ss_sub a;
    asyncrt_subsystem *ha = NULL;
    ss_task ta[1];
    tf_state root;
    asyncrt_future rf;
    CHECK(ex != NULL);
    ss_init(&a, SS_HOLD);
    CHECK_OK(ss_register(ex, &a, 1, 0, ASYNCRT_SUBSYSTEM_ALL_WORKERS, &ha));
    ss_spawn_waiters(ex, ha, &a, ta, 1);
    CHECK_PASSED();
    tf_init(&root);
    root.yields = yields;
    rf = tf_future_void(&root);
    CHECK_OK(asyncrt_block_on(ex, &rf, NULL, TF_TIMEOUT_NS));
    if (tf_get(&a.polls) < want - 1) {
      fprintf(stderr, "  budget_polls %d: %d task polls made %d ticks (subsystem polls), want >= %d\n",
              budget, yields + 1, tf_get(&a.polls), want - 1);
      short_budgets++;
    }
    tf_set(&a.release, 1);
    CHECK(ss_run_until_finished(ex, ta, 1));
    CHECK_OK(asyncrt_executor_free(ex));
  }
  CHECK_INT(short_budgets, 0);
}

/* weight = priority x min(waiters, cap): with cap 1, 1 waiter and 8 waiters
 * weigh the same; with the default cap (64) they weigh 1 : 8. */
static void test_policy_waiter_cap(void) {
  uint32_t caps[2] = {1, 64};
  int k;
  for (k = 0; k < 2; k++) {
    asyncrt_executor *ex = ss_local(0, 0);
    ss_sub a, b;
    asyncrt_subsystem *ha = NULL, *hb = NULL;
    ss_task ta[1], tb[8];
    int i, a0, b0, da, db;
    CHECK(ex != NULL);
    ss_init(&a, SS_HOLD);
    ss_init(&b, SS_HOLD);
    CHECK_OK(ss_register(ex, &a, 1, caps[k], ASYNCRT_SUBSYSTEM_ALL_WORKERS, &ha));
    CHECK_OK(ss_register(ex, &b, 1, caps[k], ASYNCRT_SUBSYSTEM_ALL_WORKERS, &hb));
    ss_spawn_waiters(ex, ha, &a, ta, 1);
    ss_spawn_waiters(ex, hb, &b, tb, 8);
    CHECK_PASSED();
    CHECK_OK(asyncrt_run(ex, NULL));
    CHECK_INT(ss_stats(ha).waiters, 1);
    CHECK_INT(ss_stats(hb).waiters, 8);
    a0 = tf_get(&a.polls);
    b0 = tf_get(&b.polls);
    for (i = 0; i < SS_TICKS; i++) {
      CHECK_OK(asyncrt_executor_tick(ex, NULL, NULL));
    }
    da = tf_get(&a.polls) - a0;
    db = tf_get(&b.polls) - b0;
    CHECK_INT(da + db, SS_TICKS);
    if (caps[k] == 1) {
      CHECK_RATIO(da, db, 1, 1);
    } else {
      CHECK_RATIO(db, da, 8, 1);
    }
    tf_set(&a.release, 1);
    tf_set(&b.release, 1);
    CHECK(ss_run_until_finished(ex, ta, 1));
    CHECK(ss_run_until_finished(ex, tb, 8));
    CHECK_OK(asyncrt_executor_free(ex));
    CHECK_INT(a.finalized + b.finalized, 2);
  }
}

/* ===========================================================================
 * 2. Ops
 * ======================================================================== */

/* A "wake everyone" subsystem: one poll completes every op
 * (asyncrt_subsystem_cx_complete_all); each task is woken once and reads
 * its op's status and result. op_poll / op_done before, during, after. */
static void test_ops_complete_all_wakes_everyone(void) {
  asyncrt_executor *ex = ss_local(0, 0);
  ss_sub s;
  asyncrt_subsystem *h = NULL;
  ss_task ts[6];
  asyncrt_subsystem_stats st;
  int i;
  CHECK(ex != NULL);
  ss_init(&s, SS_HOLD);
  CHECK_OK(ss_register(ex, &s, 1, 0, ASYNCRT_SUBSYSTEM_ALL_WORKERS, &h));
  ss_spawn_waiters(ex, h, &s, ts, 6);
  CHECK_PASSED();
  CHECK_OK(asyncrt_run(ex, NULL));
  for (i = 0; i < 6; i++) {
    /* before the first submit: done, READY, fields untouched */
    CHECK_INT(ts[i].done_before, 1);
    CHECK_INT(ts[i].poll_before, ASYNCRT_POLL_READY);
    CHECK_INT(ts[i].fields_kept, 1);
    /* in flight */
    CHECK_OK(ts[i].submit_rc);
    CHECK_INT(ts[i].done_after_submit, 0);
    CHECK_INT(ts[i].first_poll, ASYNCRT_POLL_PENDING);
    CHECK_INT(asyncrt_op_done(&ts[i].op), 0); /* any thread */
    CHECK_INT(tf_get(&ts[i].finished), 0);
  }
  st = ss_stats(h);
  CHECK_INT(st.waiters, 6);
  CHECK_INT(st.submits, 6);
  CHECK_INT(st.completions, 0);
  CHECK_INT(st.empty_polls, st.polls);

  s.status = ASYNCRT_OK;
  s.result = 42;
  tf_set(&s.release, 1);
  CHECK(ss_run_until_finished(ex, ts, 6));
  CHECK_INT(s.complete_all_n, 6);
  for (i = 0; i < 6; i++) {
    CHECK_INT(asyncrt_op_done(&ts[i].op), 1);
    CHECK_OK(ts[i].status);
    CHECK_INT(ts[i].result, 42);
    CHECK_INT(tf_get(&ts[i].polls), 2); /* woken once, by the completion */
    CHECK_INT(tf_get(&ts[i].drops), 1);
  }
  st = ss_stats(h);
  CHECK_INT(st.polls, tf_get(&s.polls));
  CHECK_INT(st.completions, 6);
  CHECK_INT(st.empty_polls, st.polls - 1);
  CHECK_INT(st.waiters, 0);
  CHECK_INT(st.submits, 6);
  CHECK_INT(tf_get(&s.changes), 12);
  CHECK_INT(s.max_waiters, 6);
  CHECK_INT(tf_get(&s.worker_waiters[0]), 0);
  CHECK_INT(s.waiters_mismatch, 0);
  CHECK_OK(asyncrt_executor_free(ex));
  CHECK_INT(s.finalized, 1);
}

/* Each op completes with its own status and result; an op is reused after
 * completion; a second completion is ignored; the submit callback may
 * complete an op at once. */
static void test_ops_status_result_and_reuse(void) {
  asyncrt_executor *ex = ss_local(0, 0);
  ss_sub echo, quick;
  asyncrt_subsystem *he = NULL, *hq = NULL;
  ss_task t[3];
  asyncrt_task *task[3] = {NULL, NULL, NULL};
  asyncrt_subsystem_stats st;
  CHECK(ex != NULL);
  ss_init(&echo, SS_ECHO);
  echo.double_complete = 1;
  ss_init(&quick, SS_HOLD);
  quick.complete_in_submit = 1;
  CHECK_OK(ss_register(ex, &echo, 1, 0, ASYNCRT_SUBSYSTEM_ALL_WORKERS, &he));
  CHECK_OK(ss_register(ex, &quick, 1, 0, ASYNCRT_SUBSYSTEM_ALL_WORKERS, &hq));

  /* three rounds on one op, each with its own result */
  ss_task_init(&t[0], he, &echo, 0);
  t[0].rounds = 3;
  t[0].echo = 1;
  t[0].op_status = ASYNCRT_OK;
  t[0].op_result = 100;
  /* a failure status is passed through as it is */
  ss_task_init(&t[1], he, &echo, 0);
  t[1].echo = 1;
  t[1].op_status = ASYNCRT_ELIMIT;
  t[1].op_result = -9;
  /* completed by the submit callback: ready in the submitting poll */
  ss_task_init(&t[2], hq, &quick, 0);
  t[2].echo = 1;
  t[2].op_status = ASYNCRT_OK;
  t[2].op_result = 55;
  CHECK_OK(ss_spawn(ex, &t[0], 0, &task[0]));
  CHECK_OK(ss_spawn(ex, &t[1], 0, &task[1]));
  CHECK_OK(ss_spawn(ex, &t[2], 0, &task[2]));
  CHECK(ss_run_until_finished(ex, t, 3));

  CHECK_INT(t[0].completions, 3);
  CHECK_INT(t[0].submits, 3);
  CHECK_INT(t[0].round_mismatch, 0); /* 100, 101, 102; the second completions ignored */
  CHECK_OK(t[0].status);
  CHECK_INT(t[0].result, 102);
  CHECK_INT(t[1].round_mismatch, 0);
  CHECK_INT(t[1].status, ASYNCRT_ELIMIT);
  CHECK_INT(t[1].result, -9);
  CHECK_OK(asyncrt_task_status(task[1])); /* the task itself finished ready */
  CHECK_INT(t[2].done_after_submit, 1);
  CHECK_INT(t[2].first_poll, ASYNCRT_POLL_READY);
  CHECK_INT(t[2].round_mismatch, 0);
  CHECK_INT(t[2].result, 55);
  CHECK_INT(tf_get(&t[2].polls), 1);
  st = ss_stats(he);
  CHECK_INT(st.submits, 4);
  CHECK_INT(st.completions, 4); /* the ignored second completions are not counted */
  CHECK_INT(st.waiters, 0);
  st = ss_stats(hq);
  CHECK_INT(st.submits, 1);
  CHECK_INT(st.completions, 1);
  CHECK_INT(st.waiters, 0);
  CHECK_INT(st.polls, 0); /* it never had a waiter at a tick */
  CHECK_INT(tf_get(&quick.polls), 0);
  CHECK_INT(tf_get(&quick.changes), 2); /* 0 -> 1 -> 0 */
  CHECK_OK(asyncrt_task_release(task[0]));
  CHECK_OK(asyncrt_task_release(task[1]));
  CHECK_OK(asyncrt_task_release(task[2]));
  CHECK_OK(asyncrt_executor_free(ex));
  CHECK_INT(echo.finalized + quick.finalized, 2);
}

/* Five ops submitted in one poll: the subsystem walks them in submission
 * order, completes two from the middle of the walk, and finds the rest in
 * order on its next poll. */
typedef struct ss_multi {
  asyncrt_subsystem *sub;
  asyncrt_op ops[5];
  int submitted, submit_rc, polls, drops, finished;
  int32_t status[5];
  int64_t result[5];
} ss_multi;

static int ss_multi_poll(void *self, asyncrt_context *cx, void *out) {
  ss_multi *m = self;
  int i;
  (void)out;
  m->polls++;
  if (!m->submitted) {
    m->submitted = 1;
    for (i = 0; i < 5; i++) {
      m->ops[i].args[SS_ARG_WORKER] = 0;
      m->ops[i].args[SS_ARG_TAG] = (uint64_t)i;
      m->submit_rc = asyncrt_op_submit(cx, m->sub, &m->ops[i]);
      if (m->submit_rc != ASYNCRT_OK) {
        m->finished = 1;
        return ASYNCRT_POLL_READY;
      }
    }
  }
  for (i = 0; i < 5; i++) {
    if (asyncrt_op_poll(&m->ops[i], cx) != ASYNCRT_POLL_READY) {
      return ASYNCRT_POLL_PENDING;
    }
  }
  for (i = 0; i < 5; i++) {
    m->status[i] = m->ops[i].status;
    m->result[i] = m->ops[i].result;
  }
  m->finished = 1;
  return ASYNCRT_POLL_READY;
}

static void ss_multi_drop(void *self) {
  ss_multi *m = self;
  m->drops++;
}

static const asyncrt_future_vtable ss_multi_vtable = {sizeof(asyncrt_future_vtable), 0, ss_multi_poll,
                                                      ss_multi_drop, NULL};

static void test_ops_walk_in_submission_order(void) {
  asyncrt_executor *ex = ss_local(0, 0);
  ss_sub s;
  asyncrt_subsystem *h = NULL;
  ss_multi m;
  asyncrt_future f;
  int i, round;
  CHECK(ex != NULL);
  ss_init(&s, SS_WALK);
  CHECK_OK(ss_register(ex, &s, 1, 0, ASYNCRT_SUBSYSTEM_ALL_WORKERS, &h));
  memset(&m, 0, sizeof m);
  m.sub = h;
  f.self = &m;
  f.vtable = &ss_multi_vtable;
  CHECK_OK(asyncrt_spawn(ex, &f, 0, NULL));
  for (round = 0; round < 100 && !m.finished; round++) {
    CHECK_OK(asyncrt_run(ex, NULL));
  }
  CHECK_OK(m.submit_rc);
  CHECK_INT(m.finished, 1);
  CHECK_INT(s.walk_polls >= 2, 1);
  CHECK_INT(s.walk_waiters[0], 5);
  CHECK_INT(s.order_len[0], 5);
  for (i = 0; i < 5; i++) {
    CHECK_INT(s.order[0][i], i);
  }
  CHECK_INT(s.walk_waiters[1], 3);
  CHECK_INT(s.order_len[1], 3);
  CHECK_INT(s.order[1][0], 1);
  CHECK_INT(s.order[1][1], 3);
  CHECK_INT(s.order[1][2], 4);
  for (i = 0; i < 5; i++) {
    CHECK_OK(m.status[i]);
    CHECK_INT(m.result[i], i * 7);
  }
  CHECK_INT(ss_stats(h).completions, 5);
  CHECK_INT(m.drops, 1);
  CHECK_OK(asyncrt_executor_free(ex));
  CHECK_INT(s.finalized, 1);
}

/* asyncrt_op_future: READY when the op completes with ASYNCRT_OK, ERROR
 * naming op->status otherwise (result kept); a failed submit fails it; its
 * drop while the op is in flight asks for the op's cancellation. */
typedef struct ss_dropper { /* polls an op future once, then drops it */
  asyncrt_future child;
  int child_poll, dropped_child, polls;
} ss_dropper;

static int ss_dropper_poll(void *self, asyncrt_context *cx, void *out) {
  ss_dropper *d = self;
  (void)out;
  d->polls++;
  if (!d->dropped_child) {
    d->child_poll = d->child.vtable->poll(d->child.self, cx, NULL);
    d->child.vtable->drop(d->child.self);
    d->dropped_child = 1;
  }
  return ASYNCRT_POLL_READY;
}

static void ss_dropper_drop(void *self) { (void)self; }

static const asyncrt_future_vtable ss_dropper_vtable = {sizeof(asyncrt_future_vtable), 0,
                                                        ss_dropper_poll, ss_dropper_drop, NULL};

static void test_op_future(void) {
  asyncrt_executor *ex = ss_local(0, 0);
  ss_sub echo, canceller, dead;
  asyncrt_subsystem *he = NULL, *hc = NULL, *hd = NULL;
  asyncrt_op_future_state st, st2;
  asyncrt_op op, op2;
  asyncrt_future f, jf;
  asyncrt_task *task = NULL;
  tf_joiner j;
  ss_dropper d;
  uint64_t out = 0;
  CHECK(ex != NULL);
  ss_init(&echo, SS_ECHO);
  ss_init(&canceller, SS_HOLD);
  canceller.cancel_mode = SS_CANCEL_NOW;
  ss_init(&dead, SS_HOLD);
  CHECK_OK(ss_register(ex, &echo, 1, 0, ASYNCRT_SUBSYSTEM_ALL_WORKERS, &he));
  CHECK_OK(ss_register(ex, &canceller, 1, 0, ASYNCRT_SUBSYSTEM_ALL_WORKERS, &hc));
  CHECK_OK(ss_register(ex, &dead, 1, 0, ASYNCRT_SUBSYSTEM_ALL_WORKERS, &hd));
  CHECK_OK(asyncrt_subsystem_unregister(hd));

  CHECK_STATUS(asyncrt_op_future(NULL, &op, he, &f), ASYNCRT_EINVAL);
  CHECK_STATUS(asyncrt_op_future(&st, NULL, he, &f), ASYNCRT_EINVAL);
  CHECK_STATUS(asyncrt_op_future(&st, &op, he, NULL), ASYNCRT_EINVAL);

  /* OK: READY */
  memset(&op, 0, sizeof op);
  op.args[SS_ARG_STATUS] = ASYNCRT_OK;
  op.args[SS_ARG_RESULT] = 5;
  CHECK_OK(asyncrt_op_future(&st, &op, he, &f));
  CHECK_INT(f.vtable->output_size, 0);
  CHECK_OK(asyncrt_block_on(ex, &f, NULL, TF_TIMEOUT_NS));
  CHECK_INT(asyncrt_op_done(&op), 1);
  CHECK_OK(op.status);
  CHECK_INT(op.result, 5);

  /* an error status: ERROR naming it, the result kept (the op is reused) */
  op.args[SS_ARG_STATUS] = ASYNCRT_ELIMIT;
  op.args[SS_ARG_RESULT] = (uint64_t)(int64_t)-3;
  CHECK_OK(asyncrt_op_future(&st, &op, he, &f));
  CHECK_STATUS(asyncrt_block_on(ex, &f, NULL, TF_TIMEOUT_NS), ASYNCRT_ELIMIT);
  CHECK_INT(op.status, ASYNCRT_ELIMIT);
  CHECK_INT(op.result, -3);

  /* awaited by a task that polls it with its own context: the task fails
   * with the op's status (a user value above 1000 too) */
  op.args[SS_ARG_STATUS] = 1001;
  op.args[SS_ARG_RESULT] = 8;
  CHECK_OK(asyncrt_op_future(&st, &op, he, &f));
  tf_joiner_init(&j, &f, 1);
  jf = tf_joiner_future(&j);
  CHECK_OK(asyncrt_spawn(ex, &jf, 0, &task));
  CHECK_OK(asyncrt_run(ex, NULL));
  CHECK_INT(asyncrt_task_status(task), 1001);
  CHECK_INT(j.child_result, ASYNCRT_POLL_ERROR);
  CHECK_INT(op.result, 8);
  CHECK_OK(asyncrt_task_release(task));
  task = NULL;
  /* ... and succeeds with it */
  op.args[SS_ARG_STATUS] = ASYNCRT_OK;
  CHECK_OK(asyncrt_op_future(&st, &op, he, &f));
  tf_joiner_init(&j, &f, 1);
  jf = tf_joiner_future(&j);
  CHECK_OK(asyncrt_block_on(ex, &jf, &out, TF_TIMEOUT_NS));
  CHECK_INT(j.child_result, ASYNCRT_POLL_READY);

  /* a submit that fails fails the future with its status */
  memset(&op2, 0, sizeof op2);
  CHECK_OK(asyncrt_op_future(&st2, &op2, hd, &f));
  CHECK_STATUS(asyncrt_block_on(ex, &f, NULL, TF_TIMEOUT_NS), ASYNCRT_EHANDLE);
  CHECK_INT(asyncrt_op_done(&op2), 1);

  /* dropped while in flight: its cancellation is asked for (the callback
   * completes it at once) */
  memset(&op2, 0, sizeof op2);
  CHECK_OK(asyncrt_op_future(&st2, &op2, hc, &d.child));
  d.polls = d.dropped_child = 0;
  d.child_poll = -1;
  f.self = &d;
  f.vtable = &ss_dropper_vtable;
  CHECK_OK(asyncrt_block_on(ex, &f, NULL, TF_TIMEOUT_NS));
  CHECK_INT(d.child_poll, ASYNCRT_POLL_PENDING);
  CHECK_INT(tf_get(&canceller.cancels), 1);
  CHECK_INT(asyncrt_op_done(&op2), 1);
  CHECK_INT(op2.status, ASYNCRT_ECANCELLED);
  CHECK_INT(op2.result, SS_CANCEL_RESULT);
  CHECK_INT(ss_stats(hc).waiters, 0);

  CHECK_OK(asyncrt_executor_free(ex));
  CHECK_INT(echo.finalized + canceller.finalized + dead.finalized, 3);
}

/* A task may register a subsystem from its poll and submit to it at once. */
typedef struct ss_registrar {
  asyncrt_executor *ex;
  ss_sub *sub;
  asyncrt_subsystem *handle;
  int reg_rc, submit_rc, done;
  asyncrt_op op;
} ss_registrar;

static int ss_registrar_poll(void *self, asyncrt_context *cx, void *out) {
  ss_registrar *r = self;
  (void)out;
  if (r->handle == NULL) {
    r->reg_rc = ss_register(asyncrt_context_executor(cx), r->sub, 1, 0, ASYNCRT_SUBSYSTEM_ALL_WORKERS,
                            &r->handle);
    if (r->reg_rc != ASYNCRT_OK) {
      return ASYNCRT_POLL_READY;
    }
    r->submit_rc = asyncrt_op_submit(cx, r->handle, &r->op);
    if (r->submit_rc != ASYNCRT_OK) {
      return ASYNCRT_POLL_READY;
    }
  }
  if (asyncrt_op_poll(&r->op, cx) == ASYNCRT_POLL_PENDING) {
    return ASYNCRT_POLL_PENDING;
  }
  r->done = 1;
  return ASYNCRT_POLL_READY;
}

static const asyncrt_future_vtable ss_registrar_vtable = {sizeof(asyncrt_future_vtable), 0,
                                                          ss_registrar_poll, NULL, NULL};

static void test_register_from_a_task_poll(void) {
  asyncrt_executor *ex = ss_local(0, 0);
  ss_sub s;
  ss_registrar r;
  asyncrt_future f;
  CHECK(ex != NULL);
  ss_init(&s, SS_HOLD);
  s.release = 1;
  s.result = 3;
  memset(&r, 0, sizeof r);
  r.sub = &s;
  f.self = &r;
  f.vtable = &ss_registrar_vtable;
  CHECK_OK(asyncrt_block_on(ex, &f, NULL, TF_TIMEOUT_NS));
  CHECK_OK(r.reg_rc);
  CHECK_OK(r.submit_rc);
  CHECK_INT(r.done, 1);
  CHECK_INT(r.op.result, 3);
  CHECK_INT(ss_stats(r.handle).completions, 1);
  CHECK_OK(asyncrt_subsystem_unregister(r.handle));
  CHECK_INT(s.finalized, 1);
  CHECK_OK(asyncrt_executor_free(ex));
  CHECK_INT(s.finalized, 1);
}

/* ===========================================================================
 * 3. Cancellation and reaping
 * ======================================================================== */

/* The cancel callback runs once and leaves the op in flight: the future is
 * not dropped until the subsystem completes the op at a later poll. */
static void test_cancel_task_waits_for_the_op(void) {
  asyncrt_executor *ex = ss_local(0, 0);
  ss_sub s;
  asyncrt_subsystem *h = NULL;
  ss_task t;
  asyncrt_task *task = NULL;
  int i, polls;
  CHECK(ex != NULL);
  ss_init(&s, SS_HOLD);
  s.cancel_mode = SS_CANCEL_KEEP;
  CHECK_OK(ss_register(ex, &s, 1, 0, ASYNCRT_SUBSYSTEM_ALL_WORKERS, &h));
  ss_task_init(&t, h, &s, 0);
  CHECK_OK(ss_spawn(ex, &t, 0, &task));
  CHECK_OK(asyncrt_run(ex, NULL));
  CHECK_INT(t.in_flight, 1);
  polls = tf_get(&t.polls);

  CHECK_OK(asyncrt_task_cancel(task));
  CHECK_OK(asyncrt_task_cancel(task)); /* twice: still one cancellation */
  for (i = 0; i < 10; i++) {
    CHECK_OK(asyncrt_run(ex, NULL));
    CHECK_OK(asyncrt_executor_tick(ex, NULL, NULL));
  }
  CHECK_INT(tf_get(&s.cancels), 1);
  CHECK_INT(tf_get(&t.drops), 0); /* the op is in flight: the future stays */
  CHECK_STATUS(asyncrt_task_status(task), ASYNCRT_EAGAIN);
  CHECK_INT(asyncrt_op_done(&t.op), 0);
  CHECK_INT(ss_stats(h).waiters, 1);

  tf_set(&s.allow_cancel, 1); /* the next poll completes it */
  for (i = 0; i < 10 && asyncrt_task_status(task) == ASYNCRT_EAGAIN; i++) {
    CHECK_OK(asyncrt_run(ex, NULL));
  }
  CHECK_STATUS(asyncrt_task_status(task), ASYNCRT_ECANCELLED);
  CHECK_INT(tf_get(&t.drops), 1);
  CHECK_INT(t.inflight_at_drop, 0);
  CHECK_INT(t.op.status, ASYNCRT_ECANCELLED);
  CHECK_INT(t.op.result, SS_CANCEL_RESULT);
  CHECK_INT(tf_get(&t.polls), polls); /* not polled after the cancel */
  CHECK_INT(tf_get(&s.cancels), 1);
  CHECK_INT(ss_stats(h).waiters, 0);
  CHECK_INT(ss_stats(h).completions, 1);
  CHECK_OK(asyncrt_executor_tick(ex, NULL, NULL));
  CHECK_INT(tf_get(&t.drops), 1);
  CHECK_OK(asyncrt_task_release(task));
  CHECK_OK(asyncrt_executor_free(ex));
  CHECK_INT(s.finalized, 1);
  CHECK_INT(tf_get(&t.drops), 1);
}

/* Without a cancel callback asyncrt completes the op at once with
 * ECANCELLED, and the task is reaped. */
static void test_cancel_task_without_cancel_callback(void) {
  asyncrt_executor *ex = ss_local(0, 0);
  ss_sub s;
  asyncrt_subsystem *h = NULL;
  ss_task t;
  asyncrt_task *task = NULL;
  int i;
  CHECK(ex != NULL);
  ss_init(&s, SS_HOLD);
  s.cancel_mode = -1;
  CHECK_OK(ss_register(ex, &s, 1, 0, ASYNCRT_SUBSYSTEM_ALL_WORKERS, &h));
  ss_task_init(&t, h, &s, 0);
  CHECK_OK(ss_spawn(ex, &t, 0, &task));
  CHECK_OK(asyncrt_run(ex, NULL));
  CHECK_INT(t.in_flight, 1);
  CHECK_OK(asyncrt_task_cancel(task));
  for (i = 0; i < 10 && asyncrt_task_status(task) == ASYNCRT_EAGAIN; i++) {
    CHECK_OK(asyncrt_run(ex, NULL));
  }
  CHECK_STATUS(asyncrt_task_status(task), ASYNCRT_ECANCELLED);
  CHECK_INT(tf_get(&t.drops), 1);
  CHECK_INT(t.inflight_at_drop, 0);
  CHECK_INT(t.op.status, ASYNCRT_ECANCELLED);
  CHECK_INT(ss_stats(h).waiters, 0);
  CHECK_INT(ss_stats(h).completions, 1);
  CHECK_OK(asyncrt_task_release(task));
  CHECK_OK(asyncrt_executor_free(ex));
  CHECK_INT(s.finalized, 1);
}

/* asyncrt_op_cancel from the submitter's poll runs the cancel callback at
 * once, at most once per submission. */
static void test_op_cancel_in_poll(void) {
  asyncrt_executor *ex = ss_local(0, 0);
  ss_sub now, keep, bare;
  asyncrt_subsystem *hn = NULL, *hk = NULL, *hb = NULL;
  ss_task t[3];
  CHECK(ex != NULL);
  ss_init(&now, SS_HOLD);
  now.cancel_mode = SS_CANCEL_NOW;
  ss_init(&keep, SS_HOLD);
  keep.cancel_mode = SS_CANCEL_KEEP;
  keep.allow_cancel = 1;
  ss_init(&bare, SS_HOLD);
  bare.cancel_mode = -1;
  CHECK_OK(ss_register(ex, &now, 1, 0, ASYNCRT_SUBSYSTEM_ALL_WORKERS, &hn));
  CHECK_OK(ss_register(ex, &keep, 1, 0, ASYNCRT_SUBSYSTEM_ALL_WORKERS, &hk));
  CHECK_OK(ss_register(ex, &bare, 1, 0, ASYNCRT_SUBSYSTEM_ALL_WORKERS, &hb));
  ss_task_init(&t[0], hn, &now, 0);
  t[0].cancel_in_poll = 2;
  ss_task_init(&t[1], hk, &keep, 0);
  t[1].cancel_in_poll = 2;
  ss_task_init(&t[2], hb, &bare, 0);
  t[2].cancel_in_poll = 1;
  CHECK_OK(ss_spawn(ex, &t[0], 0, NULL));
  CHECK_OK(ss_spawn(ex, &t[1], 0, NULL));
  CHECK_OK(ss_spawn(ex, &t[2], 0, NULL));
  CHECK(ss_run_until_finished(ex, t, 3));
  /* completed by the callback inside asyncrt_op_cancel: READY in that poll */
  CHECK_INT(t[0].cancels_after_cancel, 1);
  CHECK_INT(t[0].cancel_poll, ASYNCRT_POLL_READY);
  CHECK_INT(t[0].status, ASYNCRT_ECANCELLED);
  CHECK_INT(t[0].result, SS_CANCEL_RESULT);
  CHECK_INT(tf_get(&t[0].polls), 1);
  CHECK_INT(tf_get(&now.cancels), 1);
  /* marked by the callback, completed by the next poll */
  CHECK_INT(t[1].cancels_after_cancel, 1);
  CHECK_INT(t[1].cancel_poll, ASYNCRT_POLL_PENDING);
  CHECK_INT(t[1].status, ASYNCRT_ECANCELLED);
  CHECK_INT(t[1].result, SS_CANCEL_RESULT);
  CHECK_INT(tf_get(&keep.cancels), 1);
  /* no callback: completed with ECANCELLED at once */
  CHECK_INT(t[2].cancel_poll, ASYNCRT_POLL_READY);
  CHECK_INT(t[2].status, ASYNCRT_ECANCELLED);
  /* a done op: cancelling it is a no-op */
  CHECK_OK(asyncrt_op_cancel(&t[0].op));
  CHECK_OK(asyncrt_op_cancel(&t[1].op));
  CHECK_OK(asyncrt_run(ex, NULL));
  CHECK_INT(tf_get(&now.cancels) + tf_get(&keep.cancels), 2);
  CHECK_STATUS(asyncrt_op_cancel(NULL), ASYNCRT_EINVAL);
  CHECK_OK(asyncrt_executor_free(ex));
  CHECK_INT(now.finalized + keep.finalized + bare.finalized, 3);
}

/* asyncrt_op_cancel from another thread: the callback runs on the driver's
 * thread at its next tick, not on the caller's. */
typedef struct ss_canceller {
  asyncrt_op *op;
  int rc, cancels_seen;
  ss_sub *sub;
} ss_canceller;

static void *ss_cancel_thread(void *arg) {
  ss_canceller *c = arg;
  c->rc = asyncrt_op_cancel(c->op);
  c->rc = c->rc ? c->rc : asyncrt_op_cancel(c->op);
  c->cancels_seen = tf_get(&c->sub->cancels);
  return NULL;
}

static void test_op_cancel_from_another_thread(void) {
  asyncrt_executor *ex = ss_local(0, 0);
  ss_sub s;
  asyncrt_subsystem *h = NULL;
  ss_task t;
  ss_canceller c;
  pthread_t th;
  int i;
  CHECK(ex != NULL);
  ss_init(&s, SS_HOLD);
  s.cancel_mode = SS_CANCEL_NOW;
  CHECK_OK(ss_register(ex, &s, 1, 0, ASYNCRT_SUBSYSTEM_ALL_WORKERS, &h));
  ss_task_init(&t, h, &s, 0);
  CHECK_OK(ss_spawn(ex, &t, 0, NULL));
  CHECK_OK(asyncrt_run(ex, NULL));
  CHECK_INT(t.in_flight, 1);
  c.op = &t.op;
  c.rc = -1;
  c.cancels_seen = -1;
  c.sub = &s;
  CHECK_INT(pthread_create(&th, NULL, ss_cancel_thread, &c), 0);
  CHECK_INT(pthread_join(th, NULL), 0);
  CHECK_OK(c.rc);
  CHECK_INT(c.cancels_seen, 0); /* not on the caller's thread */
  CHECK_INT(asyncrt_op_done(&t.op), 0);
  for (i = 0; i < 10 && !tf_get(&t.finished); i++) {
    CHECK_OK(asyncrt_run(ex, NULL));
  }
  CHECK_INT(tf_get(&t.finished), 1);
  CHECK_INT(tf_get(&s.cancels), 1);
  CHECK(pthread_equal(s.cancel_thread, pthread_self()));
  CHECK_INT(t.status, ASYNCRT_ECANCELLED);
  CHECK_INT(t.result, SS_CANCEL_RESULT);
  CHECK_OK(asyncrt_executor_free(ex));
  CHECK_INT(s.finalized, 1);
}

/* ===========================================================================
 * 4. Unregistering with waiters
 * ======================================================================== */

static void test_unregister_with_waiters(void) {
  asyncrt_executor *ex = ss_local(0, 0);
  ss_sub s;
  asyncrt_subsystem *h = NULL;
  ss_task t[4], late;
  asyncrt_subsystem_stats st;
  int i, polls, changes;
  CHECK(ex != NULL);
  ss_init(&s, SS_HOLD);
  s.cancel_mode = SS_CANCEL_ODD; /* completes the odd tags itself */
  CHECK_OK(ss_register(ex, &s, 1, 0, ASYNCRT_SUBSYSTEM_ALL_WORKERS, &h));
  ss_spawn_waiters(ex, h, &s, t, 4);
  CHECK_PASSED();
  CHECK_OK(asyncrt_run(ex, NULL));
  CHECK_INT(ss_stats(h).waiters, 4);

  CHECK_OK(asyncrt_subsystem_unregister(h));
  CHECK_INT(tf_get(&s.finalized), 1);
  CHECK_INT(tf_get(&s.cancels), 4); /* each op offered to the callback first */
  for (i = 0; i < 4; i++) {
    CHECK_INT(asyncrt_op_done(&t[i].op), 1);
  }
  CHECK_INT(tf_get(&s.worker_waiters[0]), 0);
  CHECK_INT(s.after_finalize, 0);
  polls = tf_get(&s.polls);
  changes = tf_get(&s.changes);
  CHECK(ss_run_until_finished(ex, t, 4));
  for (i = 0; i < 4; i++) {
    if (i & 1) { /* completed by the cancel callback */
      CHECK_INT(t[i].status, ASYNCRT_ECANCELLED);
      CHECK_INT(t[i].result, SS_CANCEL_RESULT);
    } else { /* the rest by asyncrt */
      CHECK_INT(t[i].status, ASYNCRT_ESHUTDOWN);
    }
    CHECK_INT(tf_get(&t[i].polls), 2); /* woken by the completion */
    CHECK_INT(tf_get(&t[i].drops), 1);
  }
  /* the handle is dead */
  st.size = sizeof st;
  CHECK_STATUS(asyncrt_subsystem_stats_get(h, &st), ASYNCRT_EHANDLE);
  CHECK_STATUS(asyncrt_subsystem_unregister(h), ASYNCRT_EHANDLE);
  ss_task_init(&late, h, &s, 0);
  CHECK_OK(ss_spawn(ex, &late, 0, NULL));
  CHECK_OK(asyncrt_run(ex, NULL));
  CHECK_STATUS(late.submit_rc, ASYNCRT_EHANDLE);
  CHECK_INT(late.submits, 0);
  CHECK_INT(asyncrt_op_done(&late.op), 1);
  /* no callback after the finalizer */
  CHECK_INT(tf_get(&s.polls), polls);
  CHECK_INT(tf_get(&s.changes), changes);
  CHECK_INT(tf_get(&s.submits), 4);
  CHECK_OK(asyncrt_executor_free(ex));
  CHECK_INT(tf_get(&s.finalized), 1);
  CHECK_INT(s.after_finalize, 0);
}

/* "Every operation still in flight is first offered to the cancel callback,
 * and whatever it did not complete is then completed by asyncrt with
 * ASYNCRT_ESHUTDOWN": a subsystem without a cancel callback completes
 * nothing, so its waiters learn ESHUTDOWN (the subsystem went away), not
 * ECANCELLED (which nobody asked for). */
static void test_unregister_without_cancel_callback_is_eshutdown(void) {
  asyncrt_executor *ex = ss_local(0, 0);
  ss_sub s;
  asyncrt_subsystem *h = NULL;
  ss_task t[2];
  int i;
  CHECK(ex != NULL);
  ss_init(&s, SS_HOLD);
  s.cancel_mode = -1;
  CHECK_OK(ss_register(ex, &s, 1, 0, ASYNCRT_SUBSYSTEM_ALL_WORKERS, &h));
  ss_spawn_waiters(ex, h, &s, t, 2);
  CHECK_PASSED();
  CHECK_OK(asyncrt_run(ex, NULL));
  CHECK_OK(asyncrt_subsystem_unregister(h));
  CHECK_INT(tf_get(&s.finalized), 1);
  CHECK(ss_run_until_finished(ex, t, 2));
  for (i = 0; i < 2; i++) {
    CHECK_STATUS(t[i].status, ASYNCRT_ESHUTDOWN);
  }
  CHECK_OK(asyncrt_executor_free(ex));
}

/* ===========================================================================
 * 5. Registration errors and reentrancy
 * ======================================================================== */

static int ss_nopoll_finalized;
static void ss_nopoll_finalize(void *user_data) {
  (void)user_data;
  ss_nopoll_finalized++;
}

static void test_register_errors(void) {
  asyncrt_executor *ex = ss_local(0, 0), *freed = ss_local(0, 0);
  ss_sub s;
  asyncrt_subsystem_config c;
  asyncrt_subsystem_vtable nopoll;
  asyncrt_subsystem *h = NULL;
  int fin = 0;
  CHECK(ex != NULL && freed != NULL);
  CHECK_OK(asyncrt_executor_free(freed));
  ss_init(&s, SS_HOLD);

  /* defaults */
  asyncrt_subsystem_config_init(&c);
  CHECK_INT(c.size, sizeof c);
  CHECK(c.vtable == NULL);
  CHECK_INT(c.priority, 1);
  CHECK_INT(c.waiter_cap, 64);
  CHECK_INT(c.poll_budget, 64);
  CHECK_INT(c.worker, ASYNCRT_SUBSYSTEM_ALL_WORKERS);
  CHECK_INT(c.fd, -1);

#define SS_REFUSED(expr, status)                                                \
  do {                                                                          \
    CHECK_STATUS(expr, status);                                                 \
    CHECK_INT(tf_get(&s.finalized), ++fin); /* handed over even on failure */   \
    ss_config_of(&s, &c);                                                       \
  } while (0)

  CHECK_STATUS(asyncrt_subsystem_register(ex, NULL, &h), ASYNCRT_EINVAL);
  CHECK_INT(tf_get(&s.finalized), 0);
  ss_config_of(&s, &c);
  SS_REFUSED(asyncrt_subsystem_register(ex, &c, NULL), ASYNCRT_EINVAL);
  c.priority = 0;
  SS_REFUSED(asyncrt_subsystem_register(ex, &c, &h), ASYNCRT_EINVAL);
  c.priority = 1001;
  SS_REFUSED(asyncrt_subsystem_register(ex, &c, &h), ASYNCRT_EINVAL);
  c.waiter_cap = 0;
  SS_REFUSED(asyncrt_subsystem_register(ex, &c, &h), ASYNCRT_EINVAL);
  c.waiter_cap = (1u << 31) + 1u;
  SS_REFUSED(asyncrt_subsystem_register(ex, &c, &h), ASYNCRT_EINVAL);
  c.poll_budget = 0;
  SS_REFUSED(asyncrt_subsystem_register(ex, &c, &h), ASYNCRT_EINVAL);
  c.fd = -2;
  SS_REFUSED(asyncrt_subsystem_register(ex, &c, &h), ASYNCRT_EINVAL);
  SS_REFUSED(asyncrt_subsystem_register(freed, &c, &h), ASYNCRT_EHANDLE);
  SS_REFUSED(asyncrt_subsystem_register(NULL, &c, &h), ASYNCRT_EINVAL); /* "EINVAL (NULL, ...)" */
  /* a vtable without poll: its own finalizer is called */
  nopoll = ss_vtable;
  nopoll.poll = NULL;
  nopoll.finalize = ss_nopoll_finalize;
  c.vtable = &nopoll;
  CHECK_STATUS(asyncrt_subsystem_register(ex, &c, &h), ASYNCRT_EINVAL);
  CHECK_INT(ss_nopoll_finalized, 1);
  CHECK_INT(tf_get(&s.finalized), fin);
  ss_config_of(&s, &c);
  c.vtable = NULL;
  CHECK_STATUS(asyncrt_subsystem_register(ex, &c, &h), ASYNCRT_EINVAL);
  CHECK_INT(tf_get(&s.finalized), fin); /* no vtable: nothing to call */

  /* the edges that are accepted */
  ss_config_of(&s, &c);
  c.priority = 1000;
  c.waiter_cap = 1u << 31;
  c.poll_budget = 1;
  c.worker = 0;
  CHECK_OK(asyncrt_subsystem_register(ex, &c, &h));
  CHECK(h != NULL);
  CHECK_OK(asyncrt_subsystem_unregister(h));
  CHECK_INT(tf_get(&s.finalized), ++fin);
  CHECK_STATUS(asyncrt_subsystem_unregister(h), ASYNCRT_EHANDLE);
  CHECK_INT(tf_get(&s.finalized), fin);
  CHECK_STATUS(asyncrt_subsystem_unregister(NULL), ASYNCRT_EINVAL); /* NULL, as for other handles */
  CHECK_STATUS(asyncrt_subsystem_unregister((asyncrt_subsystem *)ex), ASYNCRT_EHANDLE);
  CHECK_STATUS(asyncrt_subsystem_stats_get((asyncrt_subsystem *)ex, NULL), ASYNCRT_EHANDLE);
  CHECK_OK(asyncrt_executor_free(ex));
  CHECK_INT(tf_get(&s.finalized), fin);
#undef SS_REFUSED
}

/* "no such worker" is EINVAL, and like every refusal it calls the
 * finalizer: on a local executor (worker 0 only) and on a thread-per-core
 * one (workers 0..WORKERS-1). */
static void test_register_bad_worker_finalizes(void) {
  asyncrt_executor *local = ss_local(0, 0);
  ss_world *w = calloc(1, sizeof *w);
  asyncrt_executor *threads = ss_threads_executor(w);
  ss_sub *s = ss_new(SS_HOLD);
  asyncrt_subsystem *h = NULL;
  CHECK(local != NULL && threads != NULL && s != NULL);
  CHECK_STATUS(ss_register(local, s, 1, 0, 1, &h), ASYNCRT_EINVAL);
  CHECK_STATUS(ss_register(threads, s, 1, 0, WORKERS, &h), ASYNCRT_EINVAL);
  if (tf_get(&s->finalized) != 2) {
    fprintf(stderr, "  finalize ran %d times for 2 registrations refused for their worker\n",
            tf_get(&s->finalized));
  }
  CHECK_INT(tf_get(&s->finalized), 2);
  CHECK_OK(asyncrt_executor_free(local));
  CHECK_OK(asyncrt_executor_free(threads));
  CHECK_INT(tf_get(&s->finalized), 2);
  free(s);
  free(w);
}

/* A config whose size covers vtable and user_data but not the rest is
 * refused; the finalizer is still called ("If the call fails, the finalizer
 * (if any) has been called"). */
static void test_register_small_config_still_finalizes(void) {
  asyncrt_executor *ex = ss_local(0, 0);
  ss_sub s;
  asyncrt_subsystem_config c;
  asyncrt_subsystem *h = NULL;
  CHECK(ex != NULL);
  ss_init(&s, SS_HOLD);
  ss_config_of(&s, &c);
  c.size = offsetof(asyncrt_subsystem_config, priority);
  CHECK_STATUS(asyncrt_subsystem_register(ex, &c, &h), ASYNCRT_EINVAL);
  CHECK_INT(tf_get(&s.finalized), 1);
  CHECK_OK(asyncrt_executor_free(ex));
}

/* A vtable whose size stops after poll: the callbacks past its size are
 * never called, even though the struct behind it has them. */
static int ss_past_size_calls;
static void ss_past_submit(void *u, asyncrt_subsystem_cx *scx, asyncrt_op *op) {
  (void)u, (void)scx, (void)op;
  ss_past_size_calls++;
}
static void ss_past_cancel(void *u, asyncrt_subsystem_cx *scx, asyncrt_op *op) {
  (void)u, (void)scx, (void)op;
  ss_past_size_calls++;
}
static void ss_past_changed(void *u, asyncrt_subsystem_cx *scx, uint64_t w) {
  (void)u, (void)scx, (void)w;
  ss_past_size_calls++;
}
static void ss_past_finalize(void *u) {
  (void)u;
  ss_past_size_calls++;
}

static void test_vtable_size_is_respected(void) {
  static const asyncrt_subsystem_vtable short_vt = {offsetof(asyncrt_subsystem_vtable, submit), ss_poll,
                                                    ss_past_submit, ss_past_cancel, ss_past_changed,
                                                    ss_past_finalize};
  asyncrt_executor *ex = ss_local(0, 0);
  ss_sub s;
  asyncrt_subsystem_config c;
  asyncrt_subsystem *h = NULL;
  ss_task t[2];
  asyncrt_task *task = NULL;
  int i;
  CHECK(ex != NULL);
  ss_init(&s, SS_HOLD);
  ss_config_of(&s, &c);
  c.vtable = &short_vt;
  CHECK_OK(asyncrt_subsystem_register(ex, &c, &h));
  ss_task_init(&t[0], h, &s, 0);
  ss_task_init(&t[1], h, &s, 0);
  CHECK_OK(ss_spawn(ex, &t[0], 0, NULL));
  CHECK_OK(ss_spawn(ex, &t[1], 0, &task));
  CHECK_OK(asyncrt_run(ex, NULL));
  CHECK(tf_get(&s.polls) > 0);
  /* cancel: no callback within the size, so asyncrt completes it */
  CHECK_OK(asyncrt_task_cancel(task));
  for (i = 0; i < 10 && asyncrt_task_status(task) == ASYNCRT_EAGAIN; i++) {
    CHECK_OK(asyncrt_run(ex, NULL));
  }
  CHECK_STATUS(asyncrt_task_status(task), ASYNCRT_ECANCELLED);
  CHECK_INT(t[1].op.status, ASYNCRT_ECANCELLED);
  s.release = 1;
  CHECK(ss_run_until_finished(ex, t, 1));
  CHECK_OK(asyncrt_subsystem_unregister(h));
  CHECK_OK(asyncrt_task_release(task));
  CHECK_OK(asyncrt_executor_free(ex));
  CHECK_INT(ss_past_size_calls, 0);
}

/* From inside a subsystem callback: register, unregister (itself or
 * another) and tick are refused with EREENTRANT; the refused registration's
 * finalizer is called. */
static void test_reentrancy_refused(void) {
  asyncrt_executor *ex = ss_local(0, 0);
  ss_sub s, other, victim;
  asyncrt_subsystem *h = NULL, *ho = NULL;
  ss_task t;
  CHECK(ex != NULL);
  ss_init(&s, SS_REENTER);
  ss_init(&other, SS_HOLD);
  ss_init(&victim, SS_HOLD);
  CHECK_OK(ss_register(ex, &other, 1, 0, ASYNCRT_SUBSYSTEM_ALL_WORKERS, &ho));
  s.ex = ex;
  s.other = ho;
  s.victim = &victim;
  s.reg_rc = s.unreg_self_rc = s.unreg_other_rc = s.tick_rc = -1;
  CHECK_OK(ss_register(ex, &s, 1, 0, ASYNCRT_SUBSYSTEM_ALL_WORKERS, &h));
  ss_task_init(&t, h, &s, 0);
  CHECK_OK(ss_spawn(ex, &t, 0, NULL));
  CHECK(ss_run_until_finished(ex, &t, 1));
  CHECK_OK(t.status);
  CHECK_INT(t.result, 5);
  CHECK_INT(s.reentries, 2); /* from submit and from poll */
  CHECK_STATUS(s.reg_rc, ASYNCRT_EREENTRANT);
  CHECK_INT(tf_get(&victim.finalized), 2);
  CHECK_STATUS(s.unreg_self_rc, ASYNCRT_EREENTRANT);
  CHECK_STATUS(s.unreg_other_rc, ASYNCRT_EREENTRANT);
  CHECK_STATUS(s.tick_rc, ASYNCRT_EREENTRANT);
  /* both still registered */
  CHECK_INT(ss_stats(h).submits, 1);
  CHECK_INT(ss_stats(ho).submits, 0);
  CHECK_INT(s.finalized + other.finalized, 0);
  CHECK_OK(asyncrt_executor_free(ex));
  CHECK_INT(s.finalized + other.finalized, 2);
  CHECK_INT(tf_get(&victim.finalized), 2);
}

/* asyncrt_op_submit outside an executor's poll (ENOTSUP), with NULL
 * arguments or a dead handle, and with the op already in flight (EINVAL). */
static void ss_noop_waker_fn(const void *data) { (void)data; }
static void ss_noop_clone(const void *data, asyncrt_waker *out) {
  out->data = data;
  out->vtable = NULL;
}
static const asyncrt_waker_vtable ss_noop_waker_vtable = {ss_noop_clone, ss_noop_waker_fn, ss_noop_waker_fn,
                                                          ss_noop_waker_fn};

static void test_submit_misuse(void) {
  asyncrt_executor *ex = ss_local(0, 0);
  ss_sub s;
  asyncrt_subsystem *h = NULL;
  ss_task t, twice, bogus;
  asyncrt_future f;
  asyncrt_waker w;
  asyncrt_op op;
  int failure = -1, r;
  CHECK(ex != NULL);
  ss_init(&s, SS_HOLD);
  CHECK_OK(ss_register(ex, &s, 1, 0, ASYNCRT_SUBSYSTEM_ALL_WORKERS, &h));

  /* polled outside any executor */
  ss_task_init(&t, h, &s, 0);
  f.self = &t;
  f.vtable = &ss_task_vtable;
  w.data = &t;
  w.vtable = &ss_noop_waker_vtable;
  r = asyncrt_poll_with_waker(&f, &w, NULL, &failure);
  CHECK_INT(r, ASYNCRT_POLL_READY);
  CHECK_STATUS(t.submit_rc, ASYNCRT_ENOTSUP);
  CHECK_INT(asyncrt_op_done(&t.op), 1);
  CHECK_INT(tf_get(&s.submits), 0);
  CHECK_INT(ss_stats(h).submits, 0);

  memset(&op, 0, sizeof op);
  CHECK_STATUS(asyncrt_op_submit(NULL, h, &op), ASYNCRT_EINVAL);

  /* in flight already: the second submit is refused, the first stands */
  ss_task_init(&twice, h, &s, 0);
  twice.submit_twice = 1;
  twice.resubmit_rc = -1;
  CHECK_OK(ss_spawn(ex, &twice, 0, NULL));
  /* a handle that is no subsystem */
  ss_task_init(&bogus, (asyncrt_subsystem *)ex, &s, 0);
  CHECK_OK(ss_spawn(ex, &bogus, 0, NULL));
  CHECK_OK(asyncrt_run(ex, NULL));
  CHECK_OK(twice.submit_rc);
  CHECK_STATUS(twice.resubmit_rc, ASYNCRT_EINVAL);
  CHECK_INT(ss_stats(h).submits, 1);
  CHECK_INT(ss_stats(h).waiters, 1);
  CHECK_STATUS(bogus.submit_rc, ASYNCRT_EHANDLE);
  s.release = 1;
  CHECK(ss_run_until_finished(ex, &twice, 1));
  CHECK_INT(twice.completions, 1);
  CHECK_INT(ss_stats(h).completions, 1);
  CHECK_OK(asyncrt_executor_free(ex));
  CHECK_INT(s.finalized, 1);
}

/* asyncrt_executor_tick: EHANDLE for a dead handle, ENOTSUP on a
 * thread-per-core executor, EREENTRANT from inside a poll. */
static int ss_tick_in_poll(tf_state *st, asyncrt_context *cx, void *out) {
  (void)out;
  st->value = (uint64_t)asyncrt_executor_tick(asyncrt_context_executor(cx), NULL, NULL);
  return ASYNCRT_POLL_READY;
}

static void test_tick_refusals(void) {
  asyncrt_executor *ex = ss_local(0, 0), *dead = ss_local(0, 0), *threads = NULL;
  asyncrt_executor_config cfg;
  tf_state st;
  asyncrt_future f;
  CHECK(ex != NULL && dead != NULL);
  CHECK_OK(asyncrt_executor_free(dead));
  CHECK_STATUS(asyncrt_executor_tick(dead, NULL, NULL), ASYNCRT_EHANDLE);
  asyncrt_executor_config_init(&cfg);
  cfg.kind = ASYNCRT_EXECUTOR_THREADS;
  cfg.workers = 1;
  CHECK_OK(asyncrt_executor_new(&cfg, &threads));
  CHECK_STATUS(asyncrt_executor_tick(threads, NULL, NULL), ASYNCRT_ENOTSUP);
  CHECK_OK(asyncrt_executor_free(threads));
  tf_init(&st);
  st.hook = ss_tick_in_poll;
  f = tf_future_void(&st);
  CHECK_OK(asyncrt_block_on(ex, &f, NULL, TF_TIMEOUT_NS));
  CHECK_INT(st.value, ASYNCRT_EREENTRANT);
  CHECK_OK(asyncrt_executor_free(ex));
}

/* ===========================================================================
 * 6. Static registration
 * ======================================================================== */

static void test_static_registration(void) {
  asyncrt_executor_config cfg;
  asyncrt_subsystem_config cs[3];
  asyncrt_subsystem *hs[3] = {NULL, NULL, NULL};
  asyncrt_executor *ex = NULL;
  ss_sub s[3];
  ss_task t[3];
  int i;
  for (i = 0; i < 3; i++) {
    ss_init(&s[i], SS_HOLD);
    s[i].release = 1;
    s[i].result = 10 + i;
    ss_config_of(&s[i], &cs[i]);
    cs[i].priority = (uint32_t)(i + 1);
  }
  asyncrt_executor_config_init(&cfg);
  cfg.subsystems = cs;
  cfg.subsystem_count = 3;
  cfg.subsystem_handles = hs;
  CHECK_OK(asyncrt_executor_new(&cfg, &ex));
  CHECK(hs[0] != NULL && hs[1] != NULL && hs[2] != NULL);
  CHECK(hs[0] != hs[1] && hs[1] != hs[2] && hs[0] != hs[2]);
  for (i = 0; i < 3; i++) {
    ss_task_init(&t[i], hs[i], &s[i], 0);
    CHECK_OK(ss_spawn(ex, &t[i], 0, NULL));
  }
  CHECK(ss_run_until_finished(ex, t, 3));
  for (i = 0; i < 3; i++) {
    CHECK_OK(t[i].status);
    CHECK_INT(t[i].result, 10 + i);
    CHECK_INT(ss_stats(hs[i]).completions, 1);
    CHECK_INT(s[i].finalized, 0);
  }
  CHECK_OK(asyncrt_executor_free(ex));
  for (i = 0; i < 3; i++) {
    CHECK_INT(s[i].finalized, 1);
  }
  /* subsystem_count without subsystems */
  cfg.subsystems = NULL;
  CHECK_STATUS(asyncrt_executor_new(&cfg, &ex), ASYNCRT_EINVAL);
}

/* One refused registration fails asyncrt_executor_new, and every finalizer
 * runs exactly once: those taken (by the undo), the refused one, and those
 * after it. */
static void test_static_registration_failure(void) {
  unsigned kinds[2] = {ASYNCRT_EXECUTOR_LOCAL, ASYNCRT_EXECUTOR_THREADS};
  int k, i;
  for (k = 0; k < 2; k++) {
    asyncrt_executor_config cfg;
    asyncrt_subsystem_config cs[4];
    asyncrt_subsystem *hs[4] = {NULL, NULL, NULL, NULL};
    asyncrt_executor *ex = NULL;
    ss_sub *s = calloc(4, sizeof *s);
    CHECK(s != NULL);
    for (i = 0; i < 4; i++) {
      ss_init(&s[i], SS_HOLD);
      ss_config_of(&s[i], &cs[i]);
    }
    cs[2].priority = 0;
    asyncrt_executor_config_init(&cfg);
    cfg.kind = kinds[k];
    cfg.workers = WORKERS;
    cfg.subsystems = cs;
    cfg.subsystem_count = 4;
    cfg.subsystem_handles = hs;
    CHECK_STATUS(asyncrt_executor_new(&cfg, &ex), ASYNCRT_EINVAL);
    for (i = 0; i < 4; i++) {
      CHECK(tf_wait_at_least(&s[i].finalized, 1, SS_WAIT_MS));
    }
    tf_sleep_ms(1);
    for (i = 0; i < 4; i++) {
      CHECK_INT(tf_get(&s[i].finalized), 1);
    }
    free(s);
  }
}

/* ===========================================================================
 * 7. Thread-per-core
 * ======================================================================== */

static void ss_wait_all(ss_task *ts, asyncrt_task **tasks, int n) {
  int i;
  for (i = 0; i < n; i++) {
    int rc = ss_wait_task(tasks[i]);
    if (rc == ASYNCRT_EAGAIN) {
      fprintf(stderr, "  task %d did not finish in %d ms (polls %d, submits %d)\n", i, SS_WAIT_MS,
              tf_get(&ts[i].polls), ts[i].submits);
    }
    CHECK_OK(rc);
  }
}

static void test_threads_all_workers(void) {
  ss_world *w = calloc(1, sizeof *w);
  asyncrt_executor *ex = ss_threads_executor(w);
  ss_sub *s = ss_new(SS_HOLD);
  asyncrt_subsystem *h = NULL;
  ss_task *t1 = ss_tasks(8, NULL, s, 0), *t2 = ss_tasks(8, NULL, s, 0), *late = ss_tasks(1, NULL, s, 0);
  asyncrt_task *k1[8], *k2[8], *kl = NULL;
  int i;
  CHECK(ex != NULL && s != NULL && t1 != NULL && t2 != NULL && late != NULL);
  CHECK(ss_world_ready(w));
  s->world = w;
  s->cancel_mode = SS_CANCEL_KEEP;
  s->per_worker_result = 1;
  s->result = 7;
  CHECK_OK(ss_register(ex, s, 1, 0, ASYNCRT_SUBSYSTEM_ALL_WORKERS, &h));

  /* four tasks on each worker */
  for (i = 0; i < 8; i++) {
    t1[i].sub = h;
    t1[i].worker = (unsigned)(i % WORKERS);
    CHECK_OK(ss_spawn(ex, &t1[i], ASYNCRT_SPAWN_WORKER(t1[i].worker), &k1[i]));
  }
  CHECK(ss_wait_submits(h, 8));
  CHECK(tf_wait_at_least(&s->worker_polls[0], 1, SS_WAIT_MS));
  CHECK(tf_wait_at_least(&s->worker_polls[1], 1, SS_WAIT_MS));
  CHECK_INT(ss_stats(h).waiters, 8);
  tf_set(&s->release, 1);
  ss_wait_all(t1, k1, 8);
  CHECK_PASSED();
  for (i = 0; i < 8; i++) {
    CHECK_OK(t1[i].status);
    CHECK_INT(t1[i].result, 7 + 100 * (int64_t)t1[i].worker); /* completed on its own worker */
    CHECK(pthread_equal(t1[i].poll_thread, w->threads[t1[i].worker]));
    CHECK_INT(tf_get(&t1[i].drops), 1);
    CHECK_OK(asyncrt_task_release(k1[i]));
  }
  CHECK_INT(ss_stats(h).completions, 8);

  /* again, and this time unregister from this thread while they wait */
  tf_set(&s->release, 0);
  for (i = 0; i < 8; i++) {
    t2[i].sub = h;
    t2[i].worker = (unsigned)(i % WORKERS);
    CHECK_OK(ss_spawn(ex, &t2[i], ASYNCRT_SPAWN_WORKER(t2[i].worker), &k2[i]));
  }
  CHECK(ss_wait_submits(h, 16));
  /* a cancel asked from this thread runs on the op's worker (worker 1) */
  CHECK_OK(asyncrt_op_cancel(&t2[1].op));
  CHECK(tf_wait_at_least(&s->cancels, 1, SS_WAIT_MS));
  CHECK(pthread_equal(s->cancel_thread, w->threads[1]));
  CHECK_OK(asyncrt_subsystem_unregister(h));
  CHECK_INT(tf_get(&s->finalized), 1);
  CHECK_INT(tf_get(&s->cancels), 8); /* one asked before, seven at the unregister */
  ss_wait_all(t2, k2, 8);
  CHECK_PASSED();
  for (i = 0; i < 8; i++) {
    CHECK_INT(t2[i].status, ASYNCRT_ESHUTDOWN);
    CHECK_INT(tf_get(&t2[i].drops), 1);
    CHECK_INT(t2[i].inflight_at_drop, 0);
    CHECK_OK(asyncrt_task_release(k2[i]));
  }
  /* the handle is dead for later submits */
  late[0].sub = h;
  CHECK_OK(ss_spawn(ex, &late[0], ASYNCRT_SPAWN_WORKER(0), &kl));
  CHECK_OK(ss_wait_task(kl));
  CHECK_STATUS(late[0].submit_rc, ASYNCRT_EHANDLE);
  CHECK_OK(asyncrt_task_release(kl));

  CHECK_INT(tf_get(&s->wrong_worker), 0);
  CHECK_INT(tf_get(&s->wrong_thread), 0);
  CHECK_INT(tf_get(&s->overlaps), 0);
  CHECK_INT(tf_get(&s->bad_worker_index), 0);
  CHECK_INT(tf_get(&s->after_finalize), 0);
  CHECK_OK(asyncrt_executor_free(ex));
  CHECK_INT(tf_get(&s->finalized), 1);
  CHECK(tf_wait_at_least(&w->finalized, 1, SS_WAIT_MS));
  free(t1);
  free(t2);
  free(late);
  free(s);
  free(w);
}

/* Registered on worker 1 only: a submit from worker 0 is ENOTSUP; one from
 * worker 1 works and every callback runs for worker 1. */
static void test_threads_one_worker(void) {
  ss_world *w = calloc(1, sizeof *w);
  asyncrt_executor *ex = ss_threads_executor(w);
  ss_sub *s = ss_new(SS_HOLD);
  asyncrt_subsystem *h = NULL;
  ss_task *t = ss_tasks(2, NULL, s, 0);
  asyncrt_task *k[2] = {NULL, NULL};
  asyncrt_subsystem_stats st;
  CHECK(ex != NULL && s != NULL && t != NULL);
  CHECK(ss_world_ready(w));
  s->world = w;
  s->release = 1;
  s->per_worker_result = 1;
  CHECK_OK(ss_register(ex, s, 1, 0, 1, &h));
  t[0].sub = h;
  t[0].worker = 0;
  t[1].sub = h;
  t[1].worker = 1;
  CHECK_OK(ss_spawn(ex, &t[0], ASYNCRT_SPAWN_WORKER(0), &k[0]));
  CHECK_OK(ss_spawn(ex, &t[1], ASYNCRT_SPAWN_WORKER(1), &k[1]));
  ss_wait_all(t, k, 2);
  CHECK_PASSED();
  CHECK_STATUS(t[0].submit_rc, ASYNCRT_ENOTSUP);
  CHECK_INT(t[0].submits, 0);
  CHECK_OK(t[1].submit_rc);
  CHECK_OK(t[1].status);
  CHECK_INT(t[1].result, 100);
  CHECK_INT(tf_get(&s->worker_polls[0]), 0);
  CHECK(tf_get(&s->worker_polls[1]) >= 1);
  st = ss_stats(h);
  CHECK_INT(st.submits, 1);
  CHECK_INT(st.completions, 1);
  CHECK_INT(tf_get(&s->wrong_worker), 0);
  CHECK_INT(tf_get(&s->wrong_thread), 0);
  CHECK_OK(asyncrt_task_release(k[0]));
  CHECK_OK(asyncrt_task_release(k[1]));
  CHECK_OK(asyncrt_executor_free(ex));
  CHECK_INT(tf_get(&s->finalized), 1);
  CHECK(tf_wait_at_least(&w->finalized, 1, SS_WAIT_MS));
  free(t);
  free(s);
  free(w);
}

/* A cancelled task on a worker keeps its future until the subsystem
 * completes the cancelled op. */
static void test_threads_cancel_waits_for_the_op(void) {
  ss_world *w = calloc(1, sizeof *w);
  asyncrt_executor *ex = ss_threads_executor(w);
  ss_sub *s = ss_new(SS_HOLD);
  asyncrt_subsystem *h = NULL;
  ss_task *t = ss_tasks(1, NULL, s, 1);
  asyncrt_task *k = NULL;
  CHECK(ex != NULL && s != NULL && t != NULL);
  CHECK(ss_world_ready(w));
  s->world = w;
  s->cancel_mode = SS_CANCEL_KEEP;
  CHECK_OK(ss_register(ex, s, 1, 0, ASYNCRT_SUBSYSTEM_ALL_WORKERS, &h));
  t[0].sub = h;
  CHECK_OK(ss_spawn(ex, &t[0], ASYNCRT_SPAWN_WORKER(1), &k));
  CHECK(ss_wait_submits(h, 1));
  CHECK_OK(asyncrt_task_cancel(k));
  CHECK(tf_wait_at_least(&s->cancels, 1, SS_WAIT_MS));
  CHECK(pthread_equal(s->cancel_thread, w->threads[1]));
  tf_sleep_ms(20); /* room for a wrong early drop to show */
  CHECK_INT(tf_get(&t[0].drops), 0);
  CHECK_STATUS(asyncrt_task_status(k), ASYNCRT_EAGAIN);
  CHECK_INT(ss_stats(h).waiters, 1);
  tf_set(&s->allow_cancel, 1);
  CHECK_STATUS(ss_wait_task(k), ASYNCRT_ECANCELLED);
  CHECK(tf_wait_at_least(&t[0].drops, 1, SS_WAIT_MS));
  CHECK_INT(t[0].inflight_at_drop, 0);
  CHECK_INT(t[0].op.status, ASYNCRT_ECANCELLED);
  CHECK_INT(tf_get(&s->cancels), 1);
  CHECK_OK(asyncrt_task_release(k));
  CHECK_OK(asyncrt_executor_free(ex));
  CHECK_INT(tf_get(&t[0].drops), 1);
  CHECK_INT(tf_get(&s->finalized), 1);
  CHECK_INT(tf_get(&s->overlaps), 0);
  CHECK(tf_wait_at_least(&w->finalized, 1, SS_WAIT_MS));
  free(t);
  free(s);
  free(w);
}

/* ===========================================================================
 * 8. fd subsystems
 * ======================================================================== */

static int ss_eventfd(void) { return eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC); }

static int ss_write_eventfd(int fd, uint64_t v) {
  return write(fd, &v, sizeof v) == (ssize_t)sizeof v;
}

/* A worker whose only waiter is an fd subsystem's sleeps, and a write to
 * the fd from this thread wakes it; a readable fd without waiters is never
 * polled. */
static void test_fd_wakes_a_sleeping_worker(void) {
  ss_world *w = calloc(1, sizeof *w);
  ss_sub *s = ss_new(SS_FD), *idle = ss_new(SS_FD);
  asyncrt_executor *ex = NULL;
  asyncrt_subsystem *h = NULL, *hi = NULL;
  ss_task *t = ss_tasks(1, NULL, s, 0);
  asyncrt_task *k = NULL;
  int polls_asleep;
  CHECK(w != NULL && s != NULL && idle != NULL && t != NULL);
  w->watch = &s->worker_waiters[0]; /* read by the park hook */
  ex = ss_threads_executor(w);
  CHECK(ex != NULL);
  CHECK(ss_world_ready(w));
  s->world = w;
  s->fd = ss_eventfd();
  idle->fd = ss_eventfd();
  CHECK(s->fd >= 0 && idle->fd >= 0);
  CHECK(ss_write_eventfd(idle->fd, 1)); /* readable from the start */
  CHECK_OK(ss_register(ex, s, 1, 0, 0, &h));
  CHECK_OK(ss_register(ex, idle, 1, 0, ASYNCRT_SUBSYSTEM_ALL_WORKERS, &hi));
  t[0].sub = h;
  CHECK_OK(ss_spawn(ex, &t[0], ASYNCRT_SPAWN_WORKER(0), &k));
  CHECK(ss_wait_submits(h, 1));
  /* worker 0 goes to sleep with the waiter */
  CHECK(tf_wait_at_least(&w->parked_waiting[0], 1, SS_WAIT_MS));
  tf_sleep_ms(50); /* room for a wrong busy-poll to show */
  polls_asleep = tf_get(&s->polls);
  if (polls_asleep > 8) {
    fprintf(stderr, "  %d polls of an fd subsystem whose fd never became readable\n", polls_asleep);
  }
  CHECK(polls_asleep <= 8);
  CHECK_INT(tf_get(&t[0].finished), 0);
  CHECK(ss_write_eventfd(s->fd, 3));
  CHECK_OK(ss_wait_task(k));
  CHECK_OK(t[0].status);
  CHECK_INT(t[0].result, 3);
  CHECK_INT(s->complete_all_n, 1);
  CHECK_INT(tf_get(&idle->polls), 0);
  CHECK_INT(ss_stats(hi).polls, 0);
  CHECK_INT(tf_get(&s->wrong_thread), 0);
  CHECK_OK(asyncrt_task_release(k));
  CHECK_OK(asyncrt_executor_free(ex));
  CHECK_INT(tf_get(&s->finalized) + tf_get(&idle->finalized), 2);
  CHECK(tf_wait_at_least(&w->finalized, 1, SS_WAIT_MS));
  close(s->fd);
  close(idle->fd);
  free(t);
  free(s);
  free(idle);
  free(w);
}

/* The same on a local executor: block_on sleeps on the fd and a write from
 * another thread ends the wait. */
typedef struct ss_writer {
  ss_task *task;
  ss_sub *sub;
  int fd, wrote, polls_before;
} ss_writer;

static void *ss_writer_thread(void *arg) {
  ss_writer *wr = arg;
  if (!tf_wait_at_least(&wr->task->submits, 1, SS_WAIT_MS)) {
    return NULL;
  }
  tf_sleep_ms(50); /* room for a wrong busy-poll to show */
  wr->polls_before = tf_get(&wr->sub->polls);
  tf_set(&wr->wrote, ss_write_eventfd(wr->fd, 9));
  return NULL;
}

static void test_fd_wakes_block_on(void) {
  asyncrt_executor *ex = ss_local(0, 0);
  ss_sub s, idle;
  asyncrt_subsystem *h = NULL, *hi = NULL;
  ss_task t;
  ss_writer wr;
  asyncrt_future f;
  pthread_t th;
  int rc;
  CHECK(ex != NULL);
  ss_init(&s, SS_FD);
  ss_init(&idle, SS_FD);
  s.fd = ss_eventfd();
  idle.fd = ss_eventfd();
  CHECK(s.fd >= 0 && idle.fd >= 0);
  CHECK(ss_write_eventfd(idle.fd, 1));
  CHECK_OK(ss_register(ex, &s, 1, 0, ASYNCRT_SUBSYSTEM_ALL_WORKERS, &h));
  CHECK_OK(ss_register(ex, &idle, 1, 0, ASYNCRT_SUBSYSTEM_ALL_WORKERS, &hi));
  ss_task_init(&t, h, &s, 0);
  memset(&wr, 0, sizeof wr);
  wr.task = &t;
  wr.sub = &s;
  wr.fd = s.fd;
  wr.polls_before = -1;
  CHECK_INT(pthread_create(&th, NULL, ss_writer_thread, &wr), 0);
  f.self = &t;
  f.vtable = &ss_task_vtable;
  rc = asyncrt_block_on(ex, &f, NULL, TF_TIMEOUT_NS);
  CHECK_INT(pthread_join(th, NULL), 0);
  CHECK_OK(rc);
  CHECK_INT(tf_get(&wr.wrote), 1);
  CHECK_OK(t.status);
  CHECK_INT(t.result, 9);
  CHECK(wr.polls_before >= 0 && wr.polls_before <= 8);
  CHECK_INT(tf_get(&idle.polls), 0);
  CHECK_OK(asyncrt_executor_free(ex));
  CHECK_INT(s.finalized + idle.finalized, 2);
  close(s.fd);
  close(idle.fd);
}

/* ===========================================================================
 * 9. Freeing an executor with ops in flight
 * ======================================================================== */

static void test_free_local_with_ops_in_flight(void) {
  asyncrt_executor *ex = ss_local(0, 0);
  ss_sub a, b;
  asyncrt_subsystem *ha = NULL, *hb = NULL;
  ss_task ta[3], tb[2];
  asyncrt_task *cancelled = NULL;
  int i;
  CHECK(ex != NULL);
  ss_init(&a, SS_HOLD);
  a.cancel_mode = SS_CANCEL_KEEP; /* never completes a cancellation */
  ss_init(&b, SS_HOLD);
  b.cancel_mode = SS_CANCEL_KEEP;
  CHECK_OK(ss_register(ex, &a, 1, 0, ASYNCRT_SUBSYSTEM_ALL_WORKERS, &ha));
  CHECK_OK(ss_register(ex, &b, 3, 0, ASYNCRT_SUBSYSTEM_ALL_WORKERS, &hb));
  ss_spawn_waiters(ex, ha, &a, ta, 3);
  ss_spawn_waiters(ex, hb, &b, tb, 1);
  ss_task_init(&tb[1], hb, &b, 0);
  CHECK_OK(ss_spawn(ex, &tb[1], 0, &cancelled));
  CHECK_PASSED();
  CHECK_OK(asyncrt_run(ex, NULL));
  CHECK_OK(asyncrt_task_cancel(cancelled)); /* cancelled, waiting for its op */
  CHECK_OK(asyncrt_run(ex, NULL));
  CHECK_INT(tf_get(&b.cancels), 1);
  CHECK_INT(tf_get(&tb[1].drops), 0);

  CHECK_OK(asyncrt_executor_free(ex));
  CHECK_INT(tf_get(&a.finalized), 1);
  CHECK_INT(tf_get(&b.finalized), 1);
  CHECK_INT(tf_get(&a.cancels), 3);
  for (i = 0; i < 3; i++) {
    CHECK_INT(tf_get(&ta[i].drops), 1);
    CHECK_INT(ta[i].inflight_at_drop, 0);
    CHECK_INT(ta[i].op.status, ASYNCRT_ESHUTDOWN);
    CHECK_INT(ta[i].bad_polls, 0);
  }
  for (i = 0; i < 2; i++) {
    CHECK_INT(tf_get(&tb[i].drops), 1);
    CHECK_INT(tb[i].inflight_at_drop, 0);
    CHECK_INT(tb[i].op.status, ASYNCRT_ESHUTDOWN);
  }
  CHECK_STATUS(asyncrt_task_status(cancelled), ASYNCRT_ECANCELLED);
  CHECK_OK(asyncrt_task_release(cancelled));
  CHECK_INT(a.after_finalize + b.after_finalize, 0);
}

static void test_free_threads_with_ops_in_flight(void) {
  ss_world *w = calloc(1, sizeof *w);
  asyncrt_executor *ex = ss_threads_executor(w);
  ss_sub *s = ss_new(SS_HOLD);
  asyncrt_subsystem *h = NULL;
  ss_task *t = ss_tasks(6, NULL, s, 0);
  int i;
  CHECK(ex != NULL && s != NULL && t != NULL);
  CHECK(ss_world_ready(w));
  s->world = w;
  s->cancel_mode = SS_CANCEL_KEEP;
  CHECK_OK(ss_register(ex, s, 1, 0, ASYNCRT_SUBSYSTEM_ALL_WORKERS, &h));
  for (i = 0; i < 6; i++) {
    t[i].sub = h;
    t[i].worker = (unsigned)(i % WORKERS);
    CHECK_OK(ss_spawn(ex, &t[i], ASYNCRT_SPAWN_WORKER(t[i].worker), NULL));
  }
  CHECK(ss_wait_submits(h, 6));
  CHECK_OK(asyncrt_executor_free(ex));
  CHECK_INT(tf_get(&s->finalized), 1);
  for (i = 0; i < 6; i++) {
    CHECK_INT(tf_get(&t[i].drops), 1);
    CHECK_INT(t[i].inflight_at_drop, 0);
    CHECK_INT(t[i].op.status, ASYNCRT_ESHUTDOWN);
    CHECK_INT(t[i].bad_polls, 0);
  }
  CHECK_INT(tf_get(&s->cancels), 6);
  CHECK_INT(tf_get(&s->overlaps), 0);
  CHECK_INT(tf_get(&s->after_finalize), 0);
  CHECK(tf_wait_at_least(&w->finalized, 1, SS_WAIT_MS));
  free(t);
  free(s);
  free(w);
}

int main(void) {
  CHECK_BEGIN();
  /* 1 */
  RUN(test_policy_ticks_follow_priority);
  RUN(test_policy_block_on_budget_ticks_follow_priority);
  RUN(test_policy_block_on_ticks_every_budget_polls);
  RUN(test_policy_waiter_cap);
  /* 2 */
  RUN(test_ops_complete_all_wakes_everyone);
  RUN(test_ops_status_result_and_reuse);
  RUN(test_ops_walk_in_submission_order);
  RUN(test_op_future);
  RUN(test_register_from_a_task_poll);
  /* 3 */
  RUN(test_cancel_task_waits_for_the_op);
  RUN(test_cancel_task_without_cancel_callback);
  RUN(test_op_cancel_in_poll);
  RUN(test_op_cancel_from_another_thread);
  /* 4 */
  RUN(test_unregister_with_waiters);
  RUN(test_unregister_without_cancel_callback_is_eshutdown);
  /* 5 */
  RUN(test_register_errors);
  RUN(test_register_bad_worker_finalizes);
  RUN(test_register_small_config_still_finalizes);
  RUN(test_vtable_size_is_respected);
  RUN(test_reentrancy_refused);
  RUN(test_submit_misuse);
  RUN(test_tick_refusals);
  /* 6 */
  RUN(test_static_registration);
  RUN(test_static_registration_failure);
  /* 7 */
  RUN(test_threads_all_workers);
  RUN(test_threads_one_worker);
  RUN(test_threads_cancel_waits_for_the_op);
  /* 8 */
  RUN(test_fd_wakes_a_sleeping_worker);
  RUN(test_fd_wakes_block_on);
  /* 9 */
  RUN(test_free_local_with_ops_in_flight);
  RUN(test_free_threads_with_ops_in_flight);
  return CHECK_END("subsys");
}
