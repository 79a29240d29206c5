/* progs.c -- the futures the fuzzer hands to asyncrt. Each is a small
 * program the input chose (ready, yield, fail, wait for a signal, sleep,
 * await a join, open a scope, misuse a driving call) that records what
 * asyncrt did to it: polls, cleanup polls, its drop, how it finished. The
 * records are the evidence the model checks; the checks that need no model
 * are made right here: never polled after its drop or after it finished,
 * never dropped twice. */
#include <stdio.h>
#include <string.h>

#include "fuzz.h"

prog fz_progs[MAX_PROGS];
int fz_nprogs;
_Atomic int fz_values_made, fz_values_freed;

static int index_of(const prog *p) { return (int)(p - fz_progs); }

static void spin_lock(_Atomic int *l) {
  while (atomic_exchange_explicit(l, 1, memory_order_acquire)) __builtin_ia32_pause();
}
static void spin_unlock(_Atomic int *l) { atomic_store_explicit(l, 0, memory_order_release); }

int prog_new(int kind, uint32_t arg, int out8) {
  if (fz_nprogs >= MAX_PROGS) return -1;
  int i = fz_nprogs++;
  prog *p = &fz_progs[i];
  memset(p, 0, sizeof *p);
  p->kind = kind;
  p->arg = arg;
  p->out8 = out8;
  p->value = 0x5eed0000u + (uint64_t)i;
  p->exec = p->task = -1;
  p->yields_left = (int)(arg >> 1) % 6;
  for (int c = 0; c < MAX_CHILDREN; c++) p->children[c] = -1;
  return i;
}

/* ---- the poll ---------------------------------------------------------------- */

static void value_free(void *v) {
  FZ_CHECK(v == &fz_values_made, "value_free got a pointer it was never given");
  atomic_fetch_add(&fz_values_freed, 1);
}

static int poll_fail(prog *p, asyncrt_context *cx) {
  if (p->fail_info) {
    atomic_fetch_add(&fz_values_made, 1);
    asyncrt_error_info info = {.size = sizeof info, .status = p->fail_status, .message = "fuzz failure",
                               .value = &fz_values_made, .value_free = value_free};
    asyncrt_context_fail_info(cx, &info);
  } else if (p->fail_status) {
    asyncrt_context_fail(cx, p->fail_status);
  }
  return ASYNCRT_POLL_ERROR;
}

static int poll_wait(prog *p, asyncrt_context *cx) {
  asyncrt_waker old = {0};
  spin_lock(&p->lock);
  int ready = atomic_load(&p->signalled);
  if (!ready) {
    old = p->waker;
    asyncrt_waker_clone(asyncrt_context_waker(cx), &p->waker);
  }
  spin_unlock(&p->lock);
  asyncrt_waker_drop(&old);
  return ready ? ASYNCRT_POLL_READY : ASYNCRT_POLL_PENDING;
}

/* Spawns the children of a SCOPE program into its fresh scope. */
static int spawn_children(prog *p) {
  int spawned = 0;
  for (int c = 0; c < p->nchildren; c++) {
    prog *k = &fz_progs[p->children[c]];
    asyncrt_future f = prog_future(p->children[c]);
    atomic_store(&k->given, 1);
    int rc = asyncrt_scope_spawn(p->scope, &f, k->arg & 1 ? ASYNCRT_SPAWN_SEND : 0, NULL);
    fz_expect(FN_SCOPE_SPAWN, rc,
              ST(ASYNCRT_OK) | ST(ASYNCRT_ECANCELLED) | ST(ASYNCRT_ESHUTDOWN) | ST(ASYNCRT_ENOMEM) |
                  ST(ASYNCRT_ELIMIT),
              "scope_spawn of a child from its owner's poll");
    if (rc) FZ_CHECK(atomic_load(&k->drops) == 1, "prog %d: a refused scope child was not dropped", index_of(k));
    else spawned++;
  }
  return spawned;
}

static int poll_scope(prog *p, asyncrt_context *cx) {
  if (!p->scope) {
    asyncrt_scope_config cfg;
    asyncrt_scope_config_init(&cfg);
    cfg.flags = (unsigned)p->scope_flags;
    cfg.timeout_ns = p->scope_timeout;
    cfg.cleanup_timeout_ns = 20000; /* short: monotonic executors must settle fast */
    cfg.name = "fuzz scope";
    int rc = asyncrt_scope_open(cx, &cfg, &p->scope);
    fz_expect(FN_SCOPE_OPEN, rc,
              ST(ASYNCRT_OK) | ST(ASYNCRT_ESHUTDOWN) | ST(ASYNCRT_ENOMEM) | ST(ASYNCRT_ELIMIT),
              "scope_open in a task's first poll");
    if (rc) {
      FZ_CHECK(!p->scope, "scope_open failed but wrote a handle");
      asyncrt_context_fail(cx, rc);
      return ASYNCRT_POLL_ERROR;
    }
    int spawned = spawn_children(p);
    if (p->scope_mode == SCOPE_EARLY_READY || p->scope_mode == SCOPE_EARLY_FAIL) {
      atomic_store(&p->early_children, spawned);
      if (p->scope_mode == SCOPE_EARLY_FAIL) asyncrt_context_fail(cx, 1001);
      return p->scope_mode == SCOPE_EARLY_READY ? ASYNCRT_POLL_READY : ASYNCRT_POLL_ERROR;
    }
    rc = asyncrt_scope_join(p->scope, &p->sjoin);
    fz_expect(FN_SCOPE_JOIN, rc, ST(ASYNCRT_OK), "the first join of a fresh scope");
    p->has_sjoin = 1;
  }
  return p->sjoin.vtable->poll(p->sjoin.self, cx, NULL);
}

/* Driving calls from inside a poll: each must refuse. */
static int poll_reenter(prog *p, asyncrt_context *cx) {
  asyncrt_executor *ex = asyncrt_context_executor(cx);
  FZ_CHECK(ex, "a task poll's context names no executor");
  const fz_exec *e = p->exec >= 0 ? &W.ex[p->exec] : NULL;
  int foreign = e && e->kind == EX_FOREIGN, threads = e && ex_threads(e);
  /* A worker may still poll while the main thread frees its executor: the
   * handle may be gone already (the header's race between a free and a
   * call using the handle). */
  uint32_t gone = threads ? ST(ASYNCRT_EHANDLE) : 0;
  int rc;
  switch (p->reenter_call) {
  case 0:
    rc = asyncrt_run(ex, NULL);
    fz_expect(FN_RUN, rc, gone | (foreign || threads ? ST(ASYNCRT_ENOTSUP) : ST(ASYNCRT_EREENTRANT)), "run inside a poll");
    break;
  case 1:
    rc = asyncrt_run_step(ex, 3, 0, NULL);
    fz_expect(FN_RUN_STEP, rc, gone | (foreign || threads ? ST(ASYNCRT_ENOTSUP) : ST(ASYNCRT_EREENTRANT)),
              "run_step inside a poll");
    break;
  case 2: {
    int k = p->children[0];
    asyncrt_future f = prog_future(k);
    atomic_store(&fz_progs[k].given, 1);
    rc = asyncrt_block_on(ex, &f, &fz_progs[k].value, ASYNCRT_NO_TIMEOUT);
    fz_expect(FN_BLOCK_ON, rc, gone | (foreign ? ST(ASYNCRT_ENOTSUP) : ST(ASYNCRT_EREENTRANT)), "block_on inside a poll");
    FZ_CHECK(atomic_load(&fz_progs[k].drops) == 1, "block_on refused inside a poll but did not drop its future");
    break;
  }
  case 3:
    rc = asyncrt_executor_free(ex);
    fz_expect(FN_EXEC_FREE, rc, gone | ST(ASYNCRT_EBUSY), "executor_free inside a poll");
    break;
  default:
    rc = asyncrt_executor_tick(ex, NULL, NULL);
    fz_expect(FN_EXEC_TICK, rc,
              gone | (foreign ? ST(ASYNCRT_OK) : threads ? ST(ASYNCRT_ENOTSUP) : ST(ASYNCRT_EREENTRANT)),
              "tick inside a poll");
    break;
  }
  return ASYNCRT_POLL_READY;
}

/* A send or a receive made at decode time. A received value must be one
 * of its channel's (each carries the channel's tag); EAGAIN (a ONESHOT that
 * had its value) is passed on as a user status: a task failing with EAGAIN
 * would look running to asyncrt_task_status. */
static int poll_chan(prog *p, asyncrt_context *cx) {
  uint64_t got[2] = {0, 0};
  int r = p->inner.vtable->poll(p->inner.self, cx, p->is_send ? NULL : got);
  const fz_endpoint *ep = &W.eps[p->ep];
  if (r == ASYNCRT_POLL_READY && !p->is_send) {
    FZ_CHECK((got[0] >> 32) == 0xc4a0u + (unsigned)ep->chan, "prog %d received %#llx, not a value of channel %d",
             index_of(p), (unsigned long long)got[0], ep->chan);
    if (p->inner.vtable->output_size == 16) FZ_CHECK(got[1] == ~got[0], "prog %d received a torn value", index_of(p));
  }
  if (r == ASYNCRT_POLL_ERROR) {
    int f = asyncrt_context_failure(cx);
    FZ_CHECK(f == ASYNCRT_ECLOSED || f == ASYNCRT_ELAGGED || f == ASYNCRT_EAGAIN,
             "prog %d: a channel future failed with %d", index_of(p), f);
    if (f == ASYNCRT_EAGAIN) asyncrt_context_fail(cx, 1003);
  }
  return r;
}

/* A wait on a synchronization object: what it got is given back at once. */
static int poll_sync(prog *p, asyncrt_context *cx) {
  uint64_t leader = 0;
  int r = p->inner.vtable->poll(p->inner.self, cx, p->inner.vtable->output_size ? &leader : NULL);
  if (r != ASYNCRT_POLL_READY) {
    FZ_CHECK(r == ASYNCRT_POLL_PENDING, "prog %d: a wait future returned %d (failure %d)", index_of(p), r,
             asyncrt_context_failure(cx));
    return r;
  }
  const fz_sync *o = &W.syncs[p->sync];
  if (o->kind == SY_MUTEX)
    fz_expect(FN_MUTEX_UNLOCK, asyncrt_mutex_unlock(o->h), ST(ASYNCRT_OK), "unlock by the waiter that got the lock");
  else if (o->kind == SY_SEMAPHORE)
    fz_expect(FN_SEM_RELEASE, asyncrt_semaphore_release(o->h, p->permits), ST(ASYNCRT_OK), "release of acquired permits");
  else if (o->kind == SY_BARRIER)
    FZ_CHECK(leader <= 1, "a barrier wait gave %llu", (unsigned long long)leader);
  return r;
}

/* join_all or select over the children, made at the first poll. */
static int poll_comb(prog *p, asyncrt_context *cx) {
  if (!p->has_comb) {
    asyncrt_future futs[MAX_CHILDREN];
    for (int c = 0; c < p->nchildren; c++) {
      futs[c] = prog_future(p->children[c]);
      atomic_store(&fz_progs[p->children[c]].given, 1);
    }
    size_t need = p->select ? asyncrt_select_size((size_t)p->nchildren) : asyncrt_join_all_size((size_t)p->nchildren);
    FZ_CHECK(need <= sizeof p->comb_state, "combinator state of %zu bytes", need);
    int rc = p->select ? asyncrt_select(p->comb_state, futs, (size_t)p->nchildren, p->comb_out, &p->comb)
                       : asyncrt_join_all(p->comb_state, futs, (size_t)p->nchildren, p->comb_out, &p->comb);
    fz_expect(FN_COMB, rc, ST(ASYNCRT_OK), "join_all / select");
    p->has_comb = 1;
  }
  int r = p->comb.vtable->poll(p->comb.self, cx, NULL);
  if (r == ASYNCRT_POLL_PENDING) return r;
  size_t at = p->select ? asyncrt_select_index(p->comb_state) : asyncrt_join_all_index(p->comb_state);
  if (p->select) {
    FZ_CHECK(at < (size_t)p->nchildren, "select's index %zu of %d", at, p->nchildren);
    const prog *w = &fz_progs[p->children[at]];
    FZ_CHECK(atomic_load(&w->finished) == r, "select: the winner %zu returned %d, select %d", at,
             atomic_load(&w->finished), r);
    if (r == ASYNCRT_POLL_READY && w->out8)
      FZ_CHECK(p->comb_out[0] == w->value, "select's output is not its winner's");
  } else if (r == ASYNCRT_POLL_READY) {
    for (int c = 0, o = 0; c < p->nchildren; c++) {
      const prog *k = &fz_progs[p->children[c]];
      FZ_CHECK(atomic_load(&k->finished) == ASYNCRT_POLL_READY, "join_all was READY before child %d", c);
      if (k->out8) FZ_CHECK(p->comb_out[o++] == k->value, "join_all's output %d is not its child's", c);
    }
  } else {
    FZ_CHECK(at < (size_t)p->nchildren && atomic_load(&fz_progs[p->children[at]].finished) == ASYNCRT_POLL_ERROR,
             "join_all failed naming child %zu, which did not fail", at);
  }
  return r;
}

static int prog_poll(void *self, asyncrt_context *cx, void *out) {
  prog *p = self;
  FZ_CHECK(atomic_load(&p->given), "prog %d polled but never handed to asyncrt", index_of(p));
  FZ_CHECK(!atomic_load(&p->drops), "prog %d polled after its drop", index_of(p));
  FZ_CHECK(!atomic_load(&p->finished), "prog %d polled after it returned %d", index_of(p), atomic_load(&p->finished));
  FZ_CHECK(!p->out8 || out, "prog %d polled with a NULL out", index_of(p));
  atomic_fetch_add(&p->polls, 1);
  int r = ASYNCRT_POLL_READY;
  uint64_t got = p->value;
  switch (p->kind) {
  case P_READY: break;
  case P_YIELD:
    if (p->yields_left > 0) {
      p->yields_left--;
      if (p->arg & 1) {
        if (p->out8) memcpy(out, &got, 8);
        r = ASYNCRT_POLL_YIELDED;
      } else {
        asyncrt_waker_wake_by_ref(asyncrt_context_waker(cx));
        r = ASYNCRT_POLL_PENDING;
      }
    }
    break;
  case P_FAIL: r = poll_fail(p, cx); break;
  case P_WAIT: r = poll_wait(p, cx); break;
  case P_SLEEP:
    if (!p->started) {
      p->deadline = asyncrt_context_now(cx) + p->arg;
      p->started = 1;
    }
    r = asyncrt_timer_poll(&p->timer, cx, p->deadline);
    break;
  case P_JOIN:
    r = p->inner.vtable->poll(p->inner.self, cx, p->out8 ? &got : NULL);
    break;
  case P_SCOPE: r = poll_scope(p, cx); break;
  case P_CHAN: r = poll_chan(p, cx); break;
  case P_SYNC: r = poll_sync(p, cx); break;
  case P_COMB: r = poll_comb(p, cx); break;
  default: r = poll_reenter(p, cx); break;
  }
  if (r == ASYNCRT_POLL_READY) {
    if (p->out8) memcpy(out, &got, 8);
    if (p->kind == P_JOIN && p->out8 && p->children[0] >= 0)
      FZ_CHECK(got == fz_progs[p->children[0]].value, "prog %d: a join gave %#llx, its task's output is %#llx",
               index_of(p), (unsigned long long)got, (unsigned long long)fz_progs[p->children[0]].value);
    atomic_store(&p->finished, r);
  } else if (r == ASYNCRT_POLL_ERROR) {
    int f = asyncrt_context_failure(cx);
    atomic_store(&p->failure, f ? f : ASYNCRT_EFAILED);
    atomic_store(&p->finished, r);
  }
  return r;
}

static int prog_cleanup(void *self, asyncrt_context *cx) {
  prog *p = self;
  FZ_CHECK(!atomic_load(&p->drops), "prog %d: cleanup after its drop", index_of(p));
  int n = atomic_fetch_add(&p->cleanups, 1) + 1;
  if (p->cleanup_polls < 0) return ASYNCRT_POLL_PENDING; /* until the cleanup deadline */
  if (n <= p->cleanup_polls) {
    asyncrt_waker_wake_by_ref(asyncrt_context_waker(cx));
    return ASYNCRT_POLL_PENDING;
  }
  return ASYNCRT_POLL_READY;
}

static void prog_drop(void *self) {
  prog *p = self;
  FZ_CHECK(atomic_load(&p->given), "prog %d dropped but never handed to asyncrt", index_of(p));
  int d = atomic_fetch_add(&p->drops, 1);
  FZ_CHECK(d == 0, "prog %d dropped %d times", index_of(p), d + 1);
  asyncrt_waker w = {0};
  spin_lock(&p->lock);
  w = p->waker;
  p->waker = (asyncrt_waker){0};
  spin_unlock(&p->lock);
  asyncrt_waker_drop(&w);
  if (p->kind == P_SLEEP) asyncrt_timer_cancel(&p->timer);
  if (p->has_inner) p->inner.vtable->drop(p->inner.self);
  if (p->kind == P_CHAN && p->has_inner) atomic_fetch_sub(&W.eps[p->ep].pins, 1);
  if (p->has_comb) p->comb.vtable->drop(p->comb.self);
  if (p->has_sjoin) p->sjoin.vtable->drop(p->sjoin.self);
  if (p->scope) {
    int rc = asyncrt_scope_free(p->scope);
    fz_expect(FN_SCOPE_FREE, rc, ST(ASYNCRT_OK), "a SCOPE program frees its scope in its drop");
  }
  /* Children never handed over (the scope did not open) stay ours: mark
   * them settled so the teardown does not wait for their drop. */
}

/* Four vtables: output 0 or 8, with or without a cleanup. */
static const asyncrt_future_vtable vt[2][2] = {
    {{sizeof(asyncrt_future_vtable), 0, prog_poll, prog_drop, NULL},
     {sizeof(asyncrt_future_vtable), 0, prog_poll, prog_drop, prog_cleanup}},
    {{sizeof(asyncrt_future_vtable), 8, prog_poll, prog_drop, NULL},
     {sizeof(asyncrt_future_vtable), 8, prog_poll, prog_drop, prog_cleanup}},
};

asyncrt_future prog_future(int i) {
  prog *p = &fz_progs[i];
  return (asyncrt_future){p, &vt[p->out8 ? 1 : 0][p->with_cleanup ? 1 : 0]};
}

/* ---- invalid futures, for argument checks -------------------------------------- */

/* A vtable that stops short of `drop` (asyncrt cannot drop it), one with no
 * poll, one whose output is too large (both droppable), and none at all. */
static const asyncrt_future_vtable vt_short = {offsetof(asyncrt_future_vtable, drop), 0, prog_poll, prog_drop, NULL};
static const asyncrt_future_vtable vt_nopoll = {sizeof(asyncrt_future_vtable), 0, NULL, prog_drop, NULL};
static const asyncrt_future_vtable vt_huge = {sizeof(asyncrt_future_vtable), ASYNCRT_OUTPUT_MAX + 1, prog_poll,
                                              prog_drop, NULL};

asyncrt_future prog_bad_future(int i, unsigned how, int *droppable) {
  prog *p = &fz_progs[i];
  switch (how % 4) {
  case 0: *droppable = 0; return (asyncrt_future){p, NULL};
  case 1: *droppable = 0; return (asyncrt_future){p, &vt_short};
  case 2: *droppable = 1; return (asyncrt_future){p, &vt_nopoll};
  default: *droppable = 1; return (asyncrt_future){p, &vt_huge};
  }
}

/* ---- signals and wakers from outside ---------------------------------------------- */

void prog_signal(int i) {
  prog *p = &fz_progs[i];
  atomic_store(&p->signalled, 1);
  asyncrt_waker w = {0};
  spin_lock(&p->lock);
  asyncrt_waker_clone(&p->waker, &w);
  spin_unlock(&p->lock);
  asyncrt_waker_wake(&w);
}

asyncrt_waker prog_waker_clone(int i) {
  prog *p = &fz_progs[i];
  asyncrt_waker w = {0};
  spin_lock(&p->lock);
  asyncrt_waker_clone(&p->waker, &w);
  spin_unlock(&p->lock);
  return w;
}
