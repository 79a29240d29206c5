/* ops_exec.c -- executors: create (valid and invalid configs), free, shut
 * down, query, drive, advance clocks, and the foreign executor's queue. */
#include <stdlib.h>
#include <string.h>

#include "ops.h"

/* ---- the allocator hook every executor gets: counts, and may fail ---------- */

static void *fz_alloc(size_t size, size_t align, void *user) {
  fz_exec *e = user;
  if (e->failing_alloc && atomic_fetch_sub(&e->alloc_countdown, 1) <= 0) {
    atomic_store(&e->alloc_countdown, e->failing_alloc);
    return NULL;
  }
  void *p = aligned_alloc(align, (size + align - 1) / align * align);
  if (p) atomic_fetch_add(&e->allocs_out, 1);
  return p;
}

static void fz_free(void *p, size_t size, void *user) {
  fz_exec *e = user;
  (void)size;
  atomic_fetch_sub(&e->allocs_out, 1);
  free(p);
}

/* ---- the foreign executor's queue -------------------------------------------- */

static void spin_lock(_Atomic int *l) {
  while (atomic_exchange_explicit(l, 1, memory_order_acquire)) __builtin_ia32_pause();
}
static void spin_unlock(_Atomic int *l) { atomic_store_explicit(l, 0, memory_order_release); }

static void foreign_schedule(void *user, asyncrt_runnable *r) {
  fz_exec *e = user;
  spin_lock(&e->qlock);
  FZ_CHECK(e->qtail - e->qhead < FOREIGN_QUEUE, "foreign queue overflow: more runnables than tasks");
  e->queue[e->qtail++ % FOREIGN_QUEUE] = r;
  spin_unlock(&e->qlock);
}

static void foreign_finalize(void *user) {
  fz_exec *e = user;
  FZ_CHECK(atomic_fetch_add(&e->finalized, 1) == 0, "a foreign executor was finalized twice");
}

int foreign_pop(fz_exec *e, asyncrt_runnable **r) {
  spin_lock(&e->qlock);
  int got = e->qhead != e->qtail;
  if (got) *r = e->queue[e->qhead++ % FOREIGN_QUEUE];
  spin_unlock(&e->qlock);
  return got;
}

static const asyncrt_foreign_vtable foreign_vt = {sizeof foreign_vt, foreign_schedule, foreign_finalize};

/* ---- create ------------------------------------------------------------------- */

/* An invalid config: each variant breaks one rule the header states. */
static int new_invalid(fz_input *in) {
  asyncrt_executor_config c;
  asyncrt_executor_config_init(&c);
  static const asyncrt_allocator bad_alloc = {sizeof bad_alloc, NULL, NULL, NULL};
  static const asyncrt_thread_hooks small_hooks = {1};
  asyncrt_executor *ex = (asyncrt_executor *)(uintptr_t)1;
  int rc;
  switch (fz_pick(in, 8)) {
  case 0: c.size = 8; break;
  case 1: c.kind = 7; break;
  case 2: c.flags = 0x40; break;
  case 3: c.clock = 9; break;
  case 4: c.subsystem_count = 2; c.subsystems = NULL; break;
  case 5: c.allocator = &bad_alloc; break;
  case 6: c.hooks = &small_hooks; break;
  default:
    rc = asyncrt_executor_new(&c, NULL);
    fz_expect(FN_EXEC_NEW, rc, ST(ASYNCRT_EINVAL), "executor_new with out NULL");
    return 0;
  }
  if (c.size == 8) c.kind = ASYNCRT_EXECUTOR_THREADS;
  rc = asyncrt_executor_new(&c, &ex);
  fz_expect(FN_EXEC_NEW, rc, ST(ASYNCRT_EINVAL), "executor_new with an invalid config");
  FZ_CHECK(!ex, "a failed executor_new left *out set");
  return 0;
}

static int new_foreign_invalid(fz_input *in) {
  asyncrt_foreign_vtable v = foreign_vt;
  asyncrt_executor *ex = (asyncrt_executor *)(uintptr_t)1;
  int rc;
  switch (fz_pick(in, 3)) {
  case 0: rc = asyncrt_executor_new_foreign(NULL, NULL, &ex); break;
  case 1: v.size = 8; rc = asyncrt_executor_new_foreign(&v, NULL, &ex); break;
  default: v.schedule = NULL; rc = asyncrt_executor_new_foreign(&v, NULL, &ex); break;
  }
  fz_expect(FN_EXEC_NEW_FOREIGN, rc, ST(ASYNCRT_EINVAL), "executor_new_foreign with an invalid vtable");
  FZ_CHECK(!ex, "a failed executor_new_foreign left *out set");
  return 0;
}

void op_exec_new(fz_input *in) {
  unsigned kind = fz_pick(in, EX_KINDS + 2);
  if (kind == EX_KINDS) {
    new_invalid(in);
    return;
  }
  if (kind == EX_KINDS + 1) {
    new_foreign_invalid(in);
    return;
  }
  int slot = -1;
  for (int i = 0; i < MAX_EXECS && slot < 0; i++)
    if (!W.ex[i].live) slot = i;
  if (slot < 0) return;
  fz_exec *e = &W.ex[slot];
  memset(e, 0, sizeof *e);
  e->kind = (int)kind;
  uint8_t opt = fz_byte(in);
  int rc;
  if (kind == EX_FOREIGN) {
    rc = asyncrt_executor_new_foreign(&foreign_vt, e, &e->h);
    fz_expect(FN_EXEC_NEW_FOREIGN, rc, ST(ASYNCRT_OK), "executor_new_foreign");
  } else {
    asyncrt_executor_config c;
    asyncrt_executor_config_init(&c);
    e->alloc = (asyncrt_allocator){sizeof e->alloc, fz_alloc, fz_free, e};
    c.allocator = &e->alloc;
    c.clock = ex_test_clock(e) ? ASYNCRT_CLOCK_TEST : ASYNCRT_CLOCK_MONOTONIC;
    if (opt & 1) { /* a cap a few tasks fill */
      c.memory_limit = 96u * (2u + (opt >> 4));
      e->limited = 1;
    }
    if (opt & 2) { /* an allocator that fails every so often */
      e->failing_alloc = 1 + ((opt >> 2) & 3);
      atomic_store(&e->alloc_countdown, e->failing_alloc);
    }
    if (ex_threads(e)) {
      c.kind = ASYNCRT_EXECUTOR_THREADS;
      c.workers = e->workers = 1 + ((opt >> 6) & 1);
      c.spin_ns = opt & 0x80 ? 2000 : 0;
      c.budget_polls = opt & 0x20 ? 3 : 0;
    } else {
      e->workers = 1;
    }
    rc = asyncrt_executor_new(&c, &e->h);
    fz_expect(FN_EXEC_NEW, rc, ST(ASYNCRT_OK), "executor_new with a valid config");
  }
  if (kind == EX_FOREIGN) e->workers = 1;
  e->live = 1;
  fz_trace("exec %d: kind %u h %p", slot, kind, (void *)e->h);
}

/* ---- free and shutdown ------------------------------------------------------------ */

void check_exec_dropped(int e) {
  for (int i = 0; i < fz_nprogs; i++) {
    prog *p = &fz_progs[i];
    if (p->exec == e && atomic_load(&p->given))
      FZ_CHECK(atomic_load(&p->drops) == 1, "exec %d is gone but prog %d (kind %d) was dropped %d times", e, i,
               p->kind, atomic_load(&p->drops));
  }
}

void check_exec_tasks_done(int e) {
  for (int t = 0; t < W.ntasks; t++) {
    fz_task *k = &W.tasks[t];
    if (k->exec != e || !k->h) continue;
    int st = asyncrt_task_status(k->h);
    fz_documented(FN_TASK_STATUS, st);
    FZ_CHECK(st != ASYNCRT_EAGAIN, "task %d of exec %d still runs after the executor is gone", t, e);
    fz_check_task_status(t, st);
  }
}

void op_exec_free(fz_input *in) {
  int idx;
  asyncrt_executor *h = pick_handle(in, HT_EXEC, &idx);
  int rc = asyncrt_executor_free(h);
  if (!h) {
    fz_expect(FN_EXEC_FREE, rc, ST(ASYNCRT_OK), "executor_free(NULL)");
    return;
  }
  fz_expect(FN_EXEC_FREE, rc, idx < 0 ? ST(ASYNCRT_EHANDLE) : ST(ASYNCRT_OK), "executor_free");
  if (idx < 0) return;
  W.ex[idx].freed = 1;
  stale_add(h);
  fz_trace("exec %d freed", idx);
  check_exec_dropped(idx);
  check_exec_tasks_done(idx);
}

void op_exec_shutdown(fz_input *in) {
  int idx;
  asyncrt_executor *h = pick_handle(in, HT_EXEC, &idx);
  uint8_t b = fz_byte(in);
  int mode = b % 3; /* 2: not a mode */
  /* Immediate: no bound, or one no healthy shutdown needs (the workers
   * are never stuck in a poll here). Graceful: a short grace period (the
   * cancellation that may follow has the config's 5 s bound). */
  int64_t timeout = (b >> 2) % 4 == 0 ? ASYNCRT_NO_TIMEOUT : (b >> 2) % 4 == 1 ? -5 : 5000000000ll;
  if (mode == ASYNCRT_SHUTDOWN_GRACEFUL && timeout != -5) timeout = (b >> 4) * 100000ll;
  int rc = asyncrt_executor_shutdown(h, mode, timeout);
  uint32_t want = handle_status(h, idx);
  if (!want) {
    const fz_exec *e = &W.ex[idx];
    if (!ex_threads(e)) want = ST(ASYNCRT_ENOTSUP);
    else if (timeout == -5 || mode == 2) want = ST(ASYNCRT_EINVAL);
    else want = ST(ASYNCRT_OK);
  }
  fz_expect(FN_EXEC_SHUTDOWN, rc, want, "executor_shutdown");
  if (rc == ASYNCRT_OK) {
    W.ex[idx].shut = 1;
    fz_trace("exec %d shut down (mode %d)", idx, mode);
    check_exec_dropped(idx);
    check_exec_tasks_done(idx);
  }
}

/* ---- queries ------------------------------------------------------------------------ */

static unsigned caps_of(const fz_exec *e) {
  unsigned common = ASYNCRT_CAP_SPAWN_LOCAL | ASYNCRT_CAP_SPAWN_SEND | ASYNCRT_CAP_TASK_REMOVAL |
                    ASYNCRT_CAP_TIMERS | ASYNCRT_CAP_SUBSYSTEMS | ASYNCRT_CAP_SCOPES;
  if (ex_test_clock(e)) common |= ASYNCRT_CAP_TEST_CLOCK;
  if (e->kind == EX_FOREIGN) return common;
  if (ex_threads(e))
    return common | ASYNCRT_CAP_BLOCK_ON | ASYNCRT_CAP_PLACEMENT | ASYNCRT_CAP_SHUTDOWN |
           (e->workers > 1 ? ASYNCRT_CAP_WORK_STEALING | ASYNCRT_CAP_MULTI_THREAD : 0);
  return common | ASYNCRT_CAP_STEPPED | ASYNCRT_CAP_BLOCK_ON | ASYNCRT_CAP_PLACEMENT;
}

static void dump_write(const char *data, size_t len, void *user) {
  FZ_CHECK(data || !len, "dump wrote NULL data");
  *(size_t *)user += len;
}

void op_exec_query(fz_input *in) {
  int idx;
  asyncrt_executor *h = pick_handle(in, HT_EXEC, &idx);
  uint32_t hs = handle_status(h, idx);
  const fz_exec *e = idx >= 0 ? &W.ex[idx] : NULL;
  uint8_t what = fz_byte(in);
  int rc;
  switch (what % 6) {
  case 0: {
    unsigned caps = 0;
    rc = asyncrt_executor_capabilities(h, what & 8 ? NULL : &caps);
    fz_expect(FN_EXEC_CAPS, rc, hs ? hs : what & 8 ? ST(ASYNCRT_EINVAL) : ST(ASYNCRT_OK), "capabilities");
    if (!rc) FZ_CHECK(caps == caps_of(e), "exec %d (kind %d) reports caps %#x, the header says %#x", idx, e->kind, caps, caps_of(e));
    break;
  }
  case 1: {
    asyncrt_executor_stats st = {.size = what & 8 ? 8 : sizeof st};
    rc = asyncrt_executor_stats_get(h, &st);
    fz_expect(FN_EXEC_STATS, rc, hs ? hs : what & 8 ? ST(ASYNCRT_EINVAL) : ST(ASYNCRT_OK), "stats_get");
    if (!rc) {
      FZ_CHECK(st.workers == e->workers, "stats: %llu workers, want %u", (unsigned long long)st.workers, e->workers);
      FZ_CHECK(st.tasks_live <= st.tasks_spawned, "stats: %llu live of %llu spawned",
               (unsigned long long)st.tasks_live, (unsigned long long)st.tasks_spawned);
      if (e->limited)
        FZ_CHECK(st.memory_in_use <= st.memory_limit, "stats: %llu bytes in use past the cap %llu",
                 (unsigned long long)st.memory_in_use, (unsigned long long)st.memory_limit);
    }
    break;
  }
  case 2: {
    asyncrt_worker_stats ws = {.size = sizeof ws};
    unsigned w = (what >> 3) % 3;
    rc = asyncrt_worker_stats_get(h, w, &ws);
    fz_expect(FN_WORKER_STATS, rc, hs ? hs : w < e->workers ? ST(ASYNCRT_OK) : ST(ASYNCRT_EINVAL), "worker_stats_get");
    break;
  }
  case 3: {
    uint64_t now = 0;
    rc = asyncrt_executor_now(h, what & 8 ? NULL : &now);
    fz_expect(FN_EXEC_NOW, rc, hs ? hs : what & 8 ? ST(ASYNCRT_EINVAL) : ST(ASYNCRT_OK), "executor_now");
    if (!rc && ex_test_clock(e))
      FZ_CHECK(now == e->advanced, "test clock reads %llu, advanced by %llu", (unsigned long long)now,
               (unsigned long long)e->advanced);
    break;
  }
  case 4: {
    size_t bytes = 0;
    unsigned format = (what >> 3) % 3;
    rc = asyncrt_executor_dump(h, format, what & 0x40 ? NULL : dump_write, &bytes);
    fz_expect(FN_EXEC_DUMP, rc, hs ? hs : format > 1 || (what & 0x40) ? ST(ASYNCRT_EINVAL) : ST(ASYNCRT_OK), "dump");
    if (!rc) FZ_CHECK(bytes > 0, "a dump wrote nothing");
    break;
  }
  default: {
    int fd = -1;
    rc = asyncrt_executor_fd(h, &fd);
    fz_expect(FN_EXEC_FD, rc, hs ? hs : ex_local(e) ? ST(ASYNCRT_OK) : ST(ASYNCRT_ENOTSUP), "executor_fd");
    if (!rc) FZ_CHECK(fd >= 0, "executor_fd gave %d", fd);
    break;
  }
  }
}

/* ---- driving ------------------------------------------------------------------------- */

void op_drive(fz_input *in) {
  int idx;
  asyncrt_executor *h = pick_handle(in, HT_EXEC, &idx);
  uint32_t hs = handle_status(h, idx);
  uint8_t b = fz_byte(in);
  uint64_t polls = 99;
  int rc;
  if (b & 1) {
    rc = asyncrt_run(h, &polls);
    fz_expect(FN_RUN, rc, hs ? hs : ex_local(&W.ex[idx]) ? ST(ASYNCRT_OK) : ST(ASYNCRT_ENOTSUP), "run");
  } else {
    uint32_t max = b >> 1;
    rc = asyncrt_run_step(h, max, b & 2 ? 1000000 : 0, &polls);
    uint32_t want = hs ? hs : ex_local(&W.ex[idx]) ? ST(ASYNCRT_OK) : ST(ASYNCRT_ENOTSUP);
    if (!max && h) want = ST(ASYNCRT_OK); /* does nothing, not even look at the handle */
    fz_expect(FN_RUN_STEP, rc, want, "run_step");
    if (!rc) FZ_CHECK(polls <= max, "run_step made %llu polls, max %u", (unsigned long long)polls, max);
  }
  if (rc) FZ_CHECK(polls == 0, "a failed run reports %llu polls", (unsigned long long)polls);
}

void op_clock(fz_input *in) {
  int idx;
  asyncrt_executor *h = pick_handle(in, HT_EXEC, &idx);
  uint32_t hs = handle_status(h, idx);
  uint8_t b = fz_byte(in);
  if (b == 0xff) { /* past UINT64_MAX */
    int rc = asyncrt_clock_advance(h, UINT64_MAX);
    uint32_t want = hs ? hs : ST(ASYNCRT_EINVAL);
    if (!hs && ex_test_clock(&W.ex[idx]) && W.ex[idx].advanced == 0) want = ST(ASYNCRT_OK);
    fz_expect(FN_CLOCK_ADVANCE, rc, want, "clock_advance(UINT64_MAX)");
    if (!rc) W.ex[idx].advanced = UINT64_MAX;
    return;
  }
  uint64_t delta = (uint64_t)b * (b & 1 ? 1000000u : 1000u);
  if (!hs && W.ex[idx].advanced > UINT64_MAX - delta) delta = 0;
  int rc = asyncrt_clock_advance(h, delta);
  fz_expect(FN_CLOCK_ADVANCE, rc, hs ? hs : ex_test_clock(&W.ex[idx]) ? ST(ASYNCRT_OK) : ST(ASYNCRT_EINVAL),
            "clock_advance");
  if (!rc) W.ex[idx].advanced += delta;
  if (!hs && !rc) fz_trace("exec %d clock +%llu", idx, (unsigned long long)delta);
}

/* ---- the foreign executor's host ---------------------------------------------------------- */

void op_foreign(fz_input *in) {
  uint8_t b = fz_byte(in);
  fz_exec *e = &W.ex[(b >> 2) % MAX_EXECS];
  int rc;
  switch (b & 3) {
  case 0: /* run the next runnable, even of a freed executor (a no-op then) */
  case 1: {
    asyncrt_runnable *r;
    if (!e->live || e->kind != EX_FOREIGN || !foreign_pop(e, &r)) {
      rc = b & 1 ? asyncrt_runnable_drop(NULL) : asyncrt_runnable_run(NULL);
      fz_expect(b & 1 ? FN_RUNNABLE_DROP : FN_RUNNABLE_RUN, rc, ST(ASYNCRT_EINVAL), "runnable NULL");
      return;
    }
    FZ_CHECK(asyncrt_runnable_task_id(r) != 0, "a runnable's task id is 0");
    if (b & 1) {
      e->runnable_dropped = 1;
      rc = asyncrt_runnable_drop(r);
      fz_expect(FN_RUNNABLE_DROP, rc, ST(ASYNCRT_OK), "runnable_drop");
    } else {
      rc = asyncrt_runnable_run(r);
      fz_expect(FN_RUNNABLE_RUN, rc, ST(ASYNCRT_OK), "runnable_run");
    }
    return;
  }
  default: {
    int idx;
    asyncrt_executor *h = pick_handle(in, HT_EXEC, &idx);
    uint64_t next = 0;
    int busy = -1;
    rc = asyncrt_executor_tick(h, &next, &busy);
    uint32_t hs = handle_status(h, idx);
    fz_expect(FN_EXEC_TICK, rc, hs ? hs : ex_threads(&W.ex[idx]) ? ST(ASYNCRT_ENOTSUP) : ST(ASYNCRT_OK), "tick");
    if (!rc) FZ_CHECK(busy == 0, "tick reports a busy subsystem, but none is registered");
  }
  }
}
