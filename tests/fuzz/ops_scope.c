/* ops_scope.c -- scopes opened from outside any poll (at the top of an
 * executor, or for a task), their children, joins, cancels, status, error
 * records and frees; and the sleep and timeout futures asyncrt makes.
 * Scopes opened inside a poll are the SCOPE programs' (progs.c). */
#include <string.h>

#include "ops.h"

static int exec_gone(int e) { return W.ex[e].freed || W.ex[e].shut; }

/* A scope config from the input; *bad when it must be refused (EINVAL). */
static const asyncrt_scope_config *scope_cfg(fz_input *in, int e, asyncrt_scope_config *cfg, int *bad,
                                             int *collect, int *shield, int *deadline) {
  uint8_t b = fz_byte(in);
  int test = e >= 0 && ex_test_clock(&W.ex[e]);
  *bad = 0;
  asyncrt_scope_config_init(cfg);
  cfg->cleanup_timeout_ns = test && (b & 0x80) ? 0 : test ? 5000000 : 20000;
  switch (b & 7) {
  case 0:
    if (test) { /* the defaults: a 1 s cleanup, which a test clock passes at once */
      *collect = *shield = *deadline = 0;
      return NULL;
    }
    break;
  case 1: cfg->size = 8; *bad = 1; break;
  case 2: cfg->flags = 4; *bad = 1; break;
  default: break;
  }
  cfg->flags |= (b >> 3) & 3;
  if (b & 0x20) cfg->timeout_ns = test ? 300000 : 20000;
  if (b & 0x40) cfg->name = "a scope with a name longer than sixty-three bytes, which is cut to fit";
  *collect = (cfg->flags & ASYNCRT_SCOPE_COLLECT_ALL) != 0;
  *shield = (cfg->flags & ASYNCRT_SCOPE_SHIELD) != 0;
  *deadline = cfg->timeout_ns != 0;
  return cfg;
}

static int scope_add(asyncrt_scope *h, int e, int owner, int collect, int shield, int deadline) {
  if (W.nscopes >= MAX_SCOPES) {
    asyncrt_scope_free(h);
    return -1;
  }
  int s = W.nscopes++;
  W.scopes[s] = (fz_scope){.live = 1, .h = h, .exec = e, .owner = owner, .collect = collect, .shield = shield,
                           .deadline = deadline};
  return s;
}

static uint32_t mem_of(int e) {
  return (W.ex[e].limited ? ST(ASYNCRT_ELIMIT) : 0) | (W.ex[e].failing_alloc ? ST(ASYNCRT_ENOMEM) : 0);
}

void op_scope_open(fz_input *in) {
  uint8_t b = fz_byte(in);
  int idx, collect, shield, deadline, bad;
  asyncrt_scope_config cfg;
  asyncrt_scope *s = (asyncrt_scope *)(uintptr_t)1, **out = b & 0x10 ? NULL : &s;
  if (b & 1) { /* at the top of an executor */
    asyncrt_executor *h = pick_handle(in, HT_EXEC, &idx);
    const asyncrt_scope_config *c = scope_cfg(in, idx, &cfg, &bad, &collect, &shield, &deadline);
    int rc = asyncrt_scope_open_top(h, c, out);
    uint32_t want = handle_status(h, idx);
    if (!want) want = !out || bad ? ST(ASYNCRT_EINVAL) : exec_gone(idx) ? ST(ASYNCRT_ESHUTDOWN) : ST(ASYNCRT_OK);
    fz_expect(FN_SCOPE_OPEN_TOP, rc, want, "scope_open_top");
    if (rc) {
      if (out && idx >= 0 && !bad) FZ_CHECK(!s, "a failed scope_open_top left *out set");
      return;
    }
    int k = scope_add(s, idx, -1, collect, shield, deadline);
    fz_trace("scope %d: top of exec %d", k, idx);
    return;
  }
  /* for a task, from outside its poll */
  asyncrt_task *h = pick_handle(in, HT_TASK, &idx);
  int e = idx >= 0 ? W.tasks[idx].exec : -1;
  const asyncrt_scope_config *c = scope_cfg(in, e, &cfg, &bad, &collect, &shield, &deadline);
  int before = idx >= 0 ? asyncrt_task_status(h) : 0;
  int rc = asyncrt_scope_open_for(h, c, out);
  uint32_t want = handle_status(h, idx);
  if (!want) {
    const fz_task *k = &W.tasks[idx];
    const prog *g = k->prog >= 0 ? &fz_progs[k->prog] : NULL;
    if (!out || bad) want = ST(ASYNCRT_EINVAL);
    else if (exec_gone(e)) want = ST(ASYNCRT_ESHUTDOWN);
    else if (before != ASYNCRT_EAGAIN) want = ST(ASYNCRT_ESCOPE) | mem_of(e);
    else {
      want = ST(ASYNCRT_OK) | mem_of(e);
      /* A task whose future returned, or which is being cancelled and waits
       * for its children, takes no new scope. */
      if (ex_threads(&W.ex[e]) || !g || atomic_load(&g->finished) || fz_cancel_possible(idx))
        want |= ST(ASYNCRT_ESCOPE);
    }
  }
  fz_expect(FN_SCOPE_OPEN_FOR, rc, want, "scope_open_for");
  if (rc) return;
  int k = scope_add(s, e, idx, collect, shield, deadline);
  fz_trace("scope %d: for task %d", k, idx);
}

void op_scope_spawn(fz_input *in) {
  int idx;
  asyncrt_scope *h = pick_handle(in, HT_SCOPE, &idx);
  int e = idx >= 0 ? W.scopes[idx].exec : -1;
  int p = decode_prog(in, e, 0);
  if (p < 0) return;
  prog *g = &fz_progs[p];
  uint8_t how = fz_byte(in);
  unsigned flags = decode_flags(in);
  int droppable = 1, bad = (how & 7) == 7 && !g->has_inner;
  asyncrt_future f = bad ? prog_bad_future(p, how >> 3, &droppable) : prog_future(p);
  uint32_t want;
  if (bad) want = ST(ASYNCRT_EINVAL);
  else if ((want = handle_status(h, idx))) {
  } else if ((want = flags_status(&W.ex[e], flags))) {
  } else if (exec_gone(e)) {
    want = ST(ASYNCRT_ESHUTDOWN);
  } else {
    const fz_scope *sc = &W.scopes[idx];
    const fz_task *o = sc->owner >= 0 ? &W.tasks[sc->owner] : NULL;
    want = mem_of(e);
    if (sc->join_done || (o && o->done_seen)) want |= ST(ASYNCRT_ESCOPE); /* closed for certain */
    else if (sc->cancelled && !sc->joined && !o) want |= ST(ASYNCRT_ECANCELLED);
    else if (!sc->joined && !fz_scope_cancel_possible(idx) && !ex_threads(&W.ex[e])) want |= ST(ASYNCRT_OK);
    else want |= ST(ASYNCRT_OK) | ST(ASYNCRT_ESCOPE) | ST(ASYNCRT_ECANCELLED);
  }
  if (droppable) prog_give(p, e);
  asyncrt_task *t = NULL, **out = how & 8 ? NULL : &t;
  int rc = asyncrt_scope_spawn(h, &f, flags, out);
  fz_expect(FN_SCOPE_SPAWN, rc, want, "scope_spawn");
  fz_trace("scope_spawn prog %d (kind %d) into scope %d: %d", p, g->kind, idx, rc);
  if (rc) {
    FZ_CHECK(!t, "a failed scope_spawn left *out set");
    FZ_CHECK(atomic_load(&g->drops) == (droppable ? 1 : 0), "a refused scope_spawn dropped its future %d times",
             atomic_load(&g->drops));
    return;
  }
  if (task_add(t, e, p, idx) < 0) {
    /* The task table is full: the model cannot follow this child, whose
     * failure would cancel its siblings. */
    W.scopes[idx].untracked = 1;
    if (t) asyncrt_task_release(t);
  }
}

static void check_scope_outcome(int s, int st) {
  asyncrt_scope *h = W.scopes[s].h;
  size_t n = 0;
  fz_expect(FN_SCOPE_ERROR_COUNT, asyncrt_scope_error_count(h, &n), ST(ASYNCRT_OK), "scope_error_count");
  if (st == ASYNCRT_OK) FZ_CHECK(n == 0, "scope %d: status OK with %zu errors", s, n);
  if (st == ASYNCRT_OK || st == ASYNCRT_ECANCELLED || !n) {
    FZ_CHECK(st == ASYNCRT_OK || st == ASYNCRT_ECANCELLED, "scope %d: status %d with no error recorded", s, st);
    return;
  }
  asyncrt_error_info info = {.size = sizeof info};
  fz_expect(FN_SCOPE_ERROR_GET, asyncrt_scope_error_get(h, 0, &info), ST(ASYNCRT_OK), "scope_error_get(0)");
  FZ_CHECK(info.status == st, "scope %d: status %d, its first error %d", s, st, info.status);
}

void op_scope(fz_input *in) {
  int idx;
  asyncrt_scope *h = pick_handle(in, HT_SCOPE, &idx);
  uint32_t hs = handle_status(h, idx);
  fz_scope *sc = idx >= 0 ? &W.scopes[idx] : NULL;
  uint8_t b = fz_byte(in);
  int rc;
  switch (b % 6) {
  case 0: {
    asyncrt_future f = {0};
    rc = asyncrt_scope_join(h, b & 8 ? NULL : &f);
    fz_expect(FN_SCOPE_JOIN, rc, hs ? hs : b & 8 ? ST(ASYNCRT_EINVAL) : sc->joined ? ST(ASYNCRT_EBUSY) : ST(ASYNCRT_OK),
              "scope_join");
    if (rc) return;
    FZ_CHECK(f.vtable && f.vtable->output_size == 0, "a scope's join has output");
    sc->joined = 1;
    hjoin_keep(f, -1, idx);
    return;
  }
  case 1:
    rc = asyncrt_scope_cancel(h);
    fz_expect(FN_SCOPE_CANCEL, rc, hs ? hs : ST(ASYNCRT_OK), "scope_cancel");
    if (sc) sc->cancelled = 1;
    return;
  case 2:
    rc = asyncrt_scope_status(h);
    fz_documented(FN_SCOPE_STATUS, rc);
    if (hs) {
      fz_expect(FN_SCOPE_STATUS, rc, hs, "scope_status of a dead handle");
      return;
    }
    if (!sc->joined && !fz_scope_cancel_possible(idx))
      FZ_CHECK(rc == ASYNCRT_EAGAIN, "scope %d is open, not joined, nothing cancelled it, but reports %d", idx, rc);
    if (rc != ASYNCRT_EAGAIN) check_scope_outcome(idx, rc);
    return;
  case 3:
    rc = asyncrt_scope_free(h);
    fz_expect(FN_SCOPE_FREE, rc, !h ? ST(ASYNCRT_OK) : hs ? hs : ST(ASYNCRT_OK), "scope_free");
    if (sc && !rc) {
      if (!sc->join_done) sc->cancelled = 1;
      stale_add(h);
      sc->h = NULL;
    }
    return;
  case 4: {
    size_t n = 0;
    rc = asyncrt_scope_error_count(h, b & 8 ? NULL : &n);
    fz_expect(FN_SCOPE_ERROR_COUNT, rc, hs ? hs : b & 8 ? ST(ASYNCRT_EINVAL) : ST(ASYNCRT_OK), "scope_error_count");
    if (rc) return;
    asyncrt_error_info info = {.size = b & 0x10 ? 8 : sizeof info};
    size_t at = (b >> 5) % 3;
    rc = asyncrt_scope_error_get(h, at, &info);
    /* On a thread-per-core executor a child may fail on a worker between
     * the count and the get: an index past the count may exist by then. */
    uint32_t past = ex_threads(&W.ex[sc->exec]) ? ST(ASYNCRT_EINVAL) | ST(ASYNCRT_OK) : ST(ASYNCRT_EINVAL);
    fz_expect(FN_SCOPE_ERROR_GET, rc, (b & 0x10) ? ST(ASYNCRT_EINVAL) : at >= n ? past : ST(ASYNCRT_OK), "scope_error_get");
    if (!rc) FZ_CHECK(info.status != 0, "scope %d: error %zu has status 0", idx, at);
    return;
  }
  default: {
    uint64_t id = 0;
    rc = asyncrt_scope_id(h, b & 8 ? NULL : &id);
    fz_expect(FN_SCOPE_ID, rc, hs ? hs : b & 8 ? ST(ASYNCRT_EINVAL) : ST(ASYNCRT_OK), "scope_id");
    if (!rc) FZ_CHECK(id != 0, "scope %d has id 0", idx);
    return;
  }
  }
}

/* ---- sleep and timeout futures ----------------------------------------------------- */

static asyncrt_sleep sleeps[MAX_TIMER_FUTS];
static asyncrt_timeout timeouts[MAX_TIMER_FUTS];
static int nsleeps, ntimeouts;

void timers_reset(void) { nsleeps = ntimeouts = 0; }

/* Spawns an asyncrt-made future (no program of ours) on the picked executor. */
static void spawn_made(fz_input *in, asyncrt_future f, int p) {
  int idx;
  asyncrt_executor *h = pick_handle(in, HT_EXEC, &idx);
  if (p >= 0) prog_give(p, idx);
  asyncrt_task *t = NULL;
  int rc = asyncrt_spawn(h, &f, 0, &t);
  uint32_t want = handle_status(h, idx);
  fz_expect(FN_SPAWN, rc, want ? want : spawn_status(&W.ex[idx]), "spawn of a sleep or timeout future");
  if (rc) {
    if (p >= 0) FZ_CHECK(atomic_load(&fz_progs[p].drops) == 1, "a refused timeout future did not drop its inner one");
    return;
  }
  int k = task_add(t, idx, p, -1);
  if (k < 0) {
    asyncrt_task_release(t);
    return;
  }
  W.tasks[k].timeout = 1;
}

void op_timers(fz_input *in) {
  uint8_t b = fz_byte(in);
  asyncrt_future f;
  int rc;
  if (b & 1) { /* sleep_for / sleep_until */
    if (nsleeps >= MAX_TIMER_FUTS) return;
    asyncrt_sleep *s = &sleeps[nsleeps];
    uint64_t ns = (uint64_t)(b >> 3) * 1000u;
    if (b & 2) {
      rc = b & 4 ? asyncrt_sleep_until(NULL, ns, &f) : asyncrt_sleep_for(s, ns, NULL);
      fz_expect(FN_SLEEP_FOR, rc, ST(ASYNCRT_EINVAL), "sleep with a NULL argument");
      return;
    }
    rc = b & 4 ? asyncrt_sleep_until(s, ns, &f) : asyncrt_sleep_for(s, ns, &f);
    fz_expect(FN_SLEEP_FOR, rc, ST(ASYNCRT_OK), "sleep_for / sleep_until");
    nsleeps++;
    spawn_made(in, f, -1);
    return;
  }
  if (ntimeouts >= MAX_TIMER_FUTS) return;
  int p = decode_prog(in, -1, 1);
  if (p < 0) return;
  int droppable = 1, bad = (b & 6) == 6 && !fz_progs[p].has_inner;
  asyncrt_future inner = bad ? prog_bad_future(p, b >> 3, &droppable) : prog_future(p);
  if (droppable) atomic_store(&fz_progs[p].given, 1);
  if (bad || (b & 6) == 4) {
    rc = bad ? asyncrt_timeout_for(&timeouts[ntimeouts], &inner, 1000, &f)
             : asyncrt_timeout_for(b & 8 ? NULL : &timeouts[ntimeouts], &inner, 1000, b & 8 ? &f : NULL);
    fz_expect(FN_TIMEOUT_FOR, rc, ST(ASYNCRT_EINVAL), "timeout_for with an invalid argument");
    FZ_CHECK(atomic_load(&fz_progs[p].drops) == (droppable ? 1 : 0), "a refused timeout_for dropped its inner %d times",
             atomic_load(&fz_progs[p].drops));
    return;
  }
  rc = asyncrt_timeout_for(&timeouts[ntimeouts], &inner, (uint64_t)(b >> 3) * 1000u, &f);
  fz_expect(FN_TIMEOUT_FOR, rc, ST(ASYNCRT_OK), "timeout_for");
  ntimeouts++;
  spawn_made(in, f, p);
}
