/* world.c -- one run's life: the dispatch of operations, settling the
 * executors, and the teardown that frees everything and checks what must
 * hold once nothing is left (every future dropped once, every storage
 * released once, every error value freed once, every executor's memory
 * given back and every foreign executor finalized). */
#include <sched.h>
#include <string.h>
#include <time.h>

#include "ops.h"

fz_world W;

void timers_reset(void);

void world_reset(void) {
  memset(&W, 0, sizeof W);
  fz_nprogs = 0;
  atomic_store(&fz_values_made, 0);
  atomic_store(&fz_values_freed, 0);
  atomic_store(&fz_hwaker_refs, 0);
  for (int i = 0; i < MAX_STORAGE; i++) {
    fz_storage_used[i] = 0;
    atomic_store(&fz_storage_released[i], 0);
  }
  timers_reset();
}

typedef void (*op_fn)(fz_input *);
static const op_fn ops[] = {
    op_exec_new, op_spawn,  op_spawn,      op_spawn,       op_wake,  op_wake,     op_task,     op_task,
    op_drive,    op_drive,  op_join,       op_hjoin,       op_hjoin, op_block_on, op_clock,    op_foreign,
    op_foreign,  op_scope_open, op_scope_spawn, op_scope_spawn, op_scope, op_scope, op_timers, op_chan_new,
    op_chan,     op_chan,   op_exec_query, op_exec_free,   op_exec_shutdown, op_sync_new, op_sync,
};
#define NOPS (sizeof ops / sizeof ops[0])

static void op_settle(fz_input *in) { settle_all(fz_byte(in) & 1); }

void ops_run(fz_input *in) {
  /* The first executor is made before any operation, so that short inputs
   * reach tasks at once; the input still picks its kind. */
  op_exec_new(in);
  for (int n = 0; n < MAX_OPS && in->p < in->end; n++) {
    uint8_t op = fz_byte(in);
    fz_trace("op %d: %u", n, op);
    if (op == 0xff) op_settle(in);
    else ops[op % NOPS](in);
  }
}

/* ---- settling -------------------------------------------------------------------- */

static uint64_t mono_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* One round over every live executor; returns the work it saw done. */
static uint64_t settle_round(void) {
  uint64_t work = 0;
  helpers_drain();
  for (int i = 0; i < MAX_EXECS; i++) {
    fz_exec *e = &W.ex[i];
    if (!e->live) continue;
    if (e->kind == EX_FOREIGN) {
      asyncrt_runnable *r;
      for (int n = 0; n < 4096 && foreign_pop(e, &r); n++, work++)
        fz_expect(FN_RUNNABLE_RUN, asyncrt_runnable_run(r), ST(ASYNCRT_OK), "runnable_run while settling");
      if (!e->freed) {
        uint64_t next;
        fz_expect(FN_EXEC_TICK, asyncrt_executor_tick(e->h, &next, NULL), ST(ASYNCRT_OK), "tick while settling");
      }
      continue;
    }
    if (e->freed) continue;
    if (ex_test_clock(e) && e->advanced < UINT64_MAX - 2000000000ull) {
      /* Past every sleep, scope deadline and cleanup deadline the input set. */
      fz_expect(FN_CLOCK_ADVANCE, asyncrt_clock_advance(e->h, 2000000000ull), ST(ASYNCRT_OK), "clock_advance");
      e->advanced += 2000000000ull;
    }
    if (ex_local(e)) {
      uint64_t polls = 0;
      fz_expect(FN_RUN, asyncrt_run(e->h, &polls), ST(ASYNCRT_OK), "run while settling");
      work += polls;
    }
  }
  return work;
}

/* The first task the model proves finite that has not finished, or -1. */
static int unfinished_finite(void) {
  for (int t = 0; t < W.ntasks; t++) {
    fz_task *k = &W.tasks[t];
    if (!fz_task_finite(t)) continue;
    if (k->h) {
      int st = asyncrt_task_status(k->h);
      fz_documented(FN_TASK_STATUS, st);
      fz_check_task_status(t, st);
      if (st == ASYNCRT_EAGAIN) return t;
    } else if (k->prog >= 0 && !atomic_load(&fz_progs[k->prog].drops)) {
      return t;
    }
  }
  return -1;
}

/* Whether settling may have to wait for something besides the main
 * thread's own runs: worker threads, or deadlines on a real clock
 * (monotonic and foreign executors). */
static int needs_real_time(void) {
  for (int i = 0; i < MAX_EXECS; i++) {
    const fz_exec *e = &W.ex[i];
    if (e->live && !e->freed && (ex_threads(e) || !ex_test_clock(e))) return 1;
  }
  return 0;
}

void settle_all(int liveness) {
  uint64_t start = mono_ns();
  for (int round = 0, quiet = 0;; round++) {
    quiet = settle_round() ? 0 : quiet + 1;
    /* Two rounds with nothing to run: every test clock is past every
     * deadline the input can set, every wake delivered. What is left may
     * need workers or real time: wait only for tasks that must finish. */
    if (quiet < 2 && round < 200) continue;
    if (!liveness) return;
    int t = unfinished_finite();
    if (t < 0) return;
    int real = needs_real_time();
    if (mono_ns() - start > 5000000000ull || (!real && round >= 200))
      fz_fail("task %d (prog %d, kind %d, exec %d) should have finished but is still running after settling (%s)",
              t, W.tasks[t].prog, W.tasks[t].prog >= 0 ? fz_progs[W.tasks[t].prog].kind : -1, W.tasks[t].exec,
              real ? "5 s" : "nothing is left to run it");
    if (real) {
      uint64_t until = mono_ns() + 20000;
      while (mono_ns() < until) sched_yield();
    }
  }
}

/* ---- teardown ----------------------------------------------------------------------- */

void world_teardown(void) {
  settle_all(1);
  for (int i = 0; i < MAX_HJOINS; i++)
    if (W.hjoins[i].live) W.hjoins[i].f.vtable->drop(W.hjoins[i].f.self);
  for (int i = 0; i < MAX_WAKERS; i++) asyncrt_waker_drop(&W.wakers[i]);
  for (int t = 0; t < W.ntasks; t++)
    if (W.tasks[t].h) fz_expect(FN_TASK_RELEASE, asyncrt_task_release(W.tasks[t].h), ST(ASYNCRT_OK), "task_release");
  for (int s = 0; s < W.nscopes; s++)
    if (W.scopes[s].h) fz_expect(FN_SCOPE_FREE, asyncrt_scope_free(W.scopes[s].h), ST(ASYNCRT_OK), "scope_free");
  for (int i = 0; i < MAX_EXECS; i++) {
    fz_exec *e = &W.ex[i];
    if (!e->live || e->freed) continue;
    fz_expect(FN_EXEC_FREE, asyncrt_executor_free(e->h), ST(ASYNCRT_OK), "executor_free at teardown");
    e->freed = 1;
    check_exec_dropped(i);
  }
  /* Programs never handed over (children of a scope that did not open, of
   * a combinator never polled) still own the futures made at decode. */
  for (int i = 0; i < fz_nprogs; i++) {
    prog *p = &fz_progs[i];
    if (atomic_load(&p->given) || !p->has_inner) continue;
    p->inner.vtable->drop(p->inner.self);
    p->has_inner = 0;
    if (p->kind == P_CHAN) atomic_fetch_sub(&W.eps[p->ep].pins, 1);
  }
  /* After the executors: their futures on channels and objects are gone. */
  for (int i = 0; i < MAX_ENDPOINTS; i++)
    if (W.eps[i].live) chan_endpoint_free(i, 1);
  sync_free_all();
  /* Runnables a freed foreign executor still had: running them is a no-op
   * that gives their task references back. */
  for (int i = 0; i < MAX_EXECS; i++) {
    asyncrt_runnable *r;
    if (W.ex[i].live && W.ex[i].kind == EX_FOREIGN)
      while (foreign_pop(&W.ex[i], &r)) fz_expect(FN_RUNNABLE_RUN, asyncrt_runnable_run(r), ST(ASYNCRT_OK), "runnable_run");
  }
  helpers_drain();

  for (int i = 0; i < fz_nprogs; i++) {
    prog *p = &fz_progs[i];
    int given = atomic_load(&p->given), drops = atomic_load(&p->drops);
    FZ_CHECK(drops == (given ? 1 : 0), "prog %d (kind %d, exec %d, %s) was dropped %d times", i, p->kind, p->exec,
             given ? "handed to asyncrt" : "never handed over", drops);
  }
  for (int i = 0; i < MAX_STORAGE; i++)
    FZ_CHECK(atomic_load(&fz_storage_released[i]) == fz_storage_used[i], "storage %d: used %d, released %d times", i,
             fz_storage_used[i], atomic_load(&fz_storage_released[i]));
  FZ_CHECK(atomic_load(&fz_values_freed) == atomic_load(&fz_values_made), "error values: %d handed over, %d freed",
           atomic_load(&fz_values_made), atomic_load(&fz_values_freed));
  FZ_CHECK(atomic_load(&fz_hwaker_refs) == 0, "%d clones of the harness's waker were never dropped",
           atomic_load(&fz_hwaker_refs));
  for (int i = 0; i < MAX_EXECS; i++) {
    fz_exec *e = &W.ex[i];
    if (!e->live) continue;
    if (e->kind == EX_FOREIGN)
      FZ_CHECK(atomic_load(&e->finalized) == 1, "foreign exec %d was finalized %d times after everything was released",
               i, atomic_load(&e->finalized));
    else
      FZ_CHECK(atomic_load(&e->allocs_out) == 0, "exec %d still holds %ld allocations after everything was released",
               i, atomic_load(&e->allocs_out));
  }
}
