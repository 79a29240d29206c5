/* ops_task.c -- tasks: spawn (into executors and caller storage, with valid
 * and invalid futures, flags and storage), block_on, wakes from the main
 * thread and the helper threads, cancel, status, id, release, error records,
 * names, and join futures (held and polled by the harness, or handed to
 * asyncrt inside a JOIN program). */
#include <string.h>

#include "ops.h"

/* ---- programs from the input ------------------------------------------------- */

static const int fail_statuses[] = {0, 1001, ASYNCRT_ETIMEDOUT, ASYNCRT_ECANCELLED, ASYNCRT_EINVAL, 2000};

int decode_prog(fz_input *in, int e, int depth) {
  uint8_t b = fz_byte(in), a = fz_byte(in);
  int kind = b % P_KINDS;
  if (kind == P_JOIN || (kind == P_SCOPE && depth >= 2)) kind = P_READY; /* joins: op_hjoin */
  if (kind == P_REENTER && e < 0) kind = P_YIELD;
  int test = e >= 0 && ex_test_clock(&W.ex[e]);
  int p = prog_new(kind, a, (b >> 4) & 1);
  if (p < 0) return -1;
  prog *g = &fz_progs[p];
  g->exec = e;
  g->with_cleanup = (b >> 5) & 1;
  g->cleanup_polls = (b >> 6) == 3 ? (test ? -1 : 3) : (b >> 6);
  switch (kind) {
  case P_FAIL:
    g->fail_status = fail_statuses[a % 6];
    g->fail_info = g->fail_status && ((a >> 3) & 1);
    break;
  case P_SLEEP: g->arg = test ? (a + 1u) * 1000u : (a % 20u) * 1000u; break;
  case P_SCOPE: {
    g->scope_mode = a % 3;
    g->scope_flags = (a >> 2) & 3;
    g->scope_timeout = (a >> 4) & 1 ? (test ? 500000 : 20000) : 0;
    int n = (a >> 5) % (MAX_CHILDREN + 1);
    for (int c = 0; c < n; c++) {
      int k = decode_prog(in, e, depth + 1);
      if (k < 0) break;
      g->children[g->nchildren++] = k;
    }
    break;
  }
  case P_CHAN:
    if (!chan_future(in, p)) g->kind = P_READY;
    break;
  case P_SYNC:
    if (!sync_future(in, p)) g->kind = P_READY;
    break;
  case P_COMB: {
    if (depth >= 2) {
      g->kind = P_READY;
      break;
    }
    g->select = a & 1;
    int n = 1 + (a >> 1) % MAX_CHILDREN;
    for (int c = 0; c < n; c++) {
      int k = decode_prog(in, e, depth + 1);
      if (k < 0) break;
      g->children[g->nchildren++] = k;
    }
    if (!g->nchildren) g->kind = P_READY;
    break;
  }
  case P_REENTER:
    g->reenter_call = a % 5;
    if (g->reenter_call == 2) {
      int k = prog_new(P_READY, 0, 0);
      if (k < 0) g->reenter_call = 0;
      else {
        g->children[0] = k;
        fz_progs[k].exec = e;
      }
    }
    break;
  default: break;
  }
  return p;
}

/* Its children (SCOPE, COMB, REENTER's block_on future) run where it runs. */
static void prog_place(int p, int e) {
  prog *g = &fz_progs[p];
  g->exec = e;
  if (g->kind == P_SCOPE || g->kind == P_REENTER || g->kind == P_COMB)
    for (int c = 0; c < MAX_CHILDREN; c++)
      if (g->children[c] >= 0) prog_place(g->children[c], e);
}

void prog_give(int p, int e) {
  prog_place(p, e);
  atomic_store(&fz_progs[p].given, 1);
}

static const unsigned flag_choices[] = {0, ASYNCRT_SPAWN_SEND, ASYNCRT_SPAWN_WORKER(0), ASYNCRT_SPAWN_WORKER(1),
                                        ASYNCRT_SPAWN_SEND | ASYNCRT_SPAWN_WORKER(1), ASYNCRT_SPAWN_WORKER(3),
                                        0x2, 1u << 30};

unsigned decode_flags(fz_input *in) {
  uint8_t b = fz_byte(in);
  return b < 128 ? (b & 1) : flag_choices[b % 8];
}

uint32_t flags_status(const fz_exec *e, unsigned flags) {
  if (flags & ~(ASYNCRT_SPAWN_SEND | 0xffff00u)) return ST(ASYNCRT_EINVAL);
  unsigned w = (flags >> 8) & 0xffffu;
  if (!w) return 0;
  if (ex_threads(e)) return w - 1 < e->workers ? 0 : ST(ASYNCRT_EINVAL);
  return w == 1 ? 0 : ST(ASYNCRT_EINVAL);
}

int task_add(asyncrt_task *h, int e, int p, int scope) {
  if (W.ntasks >= MAX_TASKS) return -1;
  int t = W.ntasks++;
  W.tasks[t] = (fz_task){.live = 1, .h = h, .exec = e, .prog = p, .scope = scope, .storage = -1};
  if (p >= 0) fz_progs[p].task = t;
  if (scope >= 0 && W.scopes[scope].nchildren < MAX_TASKS) W.scopes[scope].children[W.scopes[scope].nchildren++] = t;
  return t;
}

/* What a spawn of a valid future must return on live executor e. */
uint32_t spawn_status(const fz_exec *e) {
  if (e->shut) return ST(ASYNCRT_ESHUTDOWN);
  uint32_t want = ST(ASYNCRT_OK);
  if (e->limited) want |= ST(ASYNCRT_ELIMIT);
  if (e->failing_alloc) want |= ST(ASYNCRT_ENOMEM);
  return want;
}

/* ---- caller storage ------------------------------------------------------------ */

_Atomic int fz_storage_released[MAX_STORAGE];
int fz_storage_used[MAX_STORAGE];
static _Alignas(16) unsigned char storage_pool[MAX_STORAGE][256];

static void storage_release(void *memory, void *user) {
  int s = (int)(intptr_t)user;
  FZ_CHECK(memory == storage_pool[s], "storage %d released with another address", s);
  FZ_CHECK(atomic_fetch_add(&fz_storage_released[s], 1) == 0, "storage %d released twice", s);
}

/* A storage from the input: valid (returns its slot) or broken in one way
 * (returns -1 and sets *bad). */
static int storage_pick(fz_input *in, const prog *g, asyncrt_task_storage *st, int *bad) {
  uint8_t b = fz_byte(in);
  int s = -1;
  for (int i = 0; i < MAX_STORAGE && s < 0; i++)
    if (!fz_storage_used[i]) s = i;
  *bad = 0;
  unsigned how = b % 8;
  if (s < 0) s = 0, how = 7; /* none left: make it invalid */
  size_t need = asyncrt_task_storage_size(g->out8 ? 8 : 0);
  *st = (asyncrt_task_storage){sizeof *st, storage_pool[s], need + (b & 0x10), storage_release, (void *)(intptr_t)s};
  switch (how) {
  case 4: st->memory = storage_pool[s] + 8; *bad = 1; break;
  case 5: st->length = need - 16; *bad = 1; break;
  case 6: st->size = 8; *bad = 1; break;
  case 7: st->memory = NULL; *bad = 1; break;
  default: break;
  }
  return *bad ? -1 : s;
}

/* ---- spawn ------------------------------------------------------------------------ */

/* Spawns program p on the executor the input picks (h, idx), through
 * asyncrt_spawn or asyncrt_spawn_in, and checks the status and the drop. */
static void spawn_prog(fz_input *in, asyncrt_executor *h, int idx, int p) {
  prog *g = &fz_progs[p];
  uint8_t how = fz_byte(in);
  unsigned flags = decode_flags(in);
  int droppable = 1, bad = (how & 7) == 7 && !g->has_inner; /* a bad vtable would leak what it owns */
  asyncrt_future f = bad ? prog_bad_future(p, how >> 3, &droppable) : prog_future(p);
  int in_storage = (how & 0x30) == 0x30, storage_bad = 0, slot = -1, null_storage = 0;
  asyncrt_task_storage st;
  if (in_storage) {
    null_storage = (how & 0xc0) == 0xc0;
    slot = storage_pick(in, g, &st, &storage_bad);
  }
  uint32_t want;
  if (bad) want = ST(ASYNCRT_EINVAL);
  else if (in_storage && null_storage) want = ST(ASYNCRT_EINVAL);
  else if ((want = handle_status(h, idx))) {
  } else if ((want = flags_status(&W.ex[idx], flags))) {
  } else if (in_storage && storage_bad) want = ST(ASYNCRT_EINVAL);
  else {
    want = spawn_status(&W.ex[idx]);
    if (in_storage) want &= ~ST(ASYNCRT_ELIMIT);
  }
  if (droppable) prog_give(p, idx);
  asyncrt_task *t = NULL, **out = how & 8 ? NULL : &t;
  int rc = in_storage ? asyncrt_spawn_in(h, &f, flags, null_storage ? NULL : &st, out) : asyncrt_spawn(h, &f, flags, out);
  fz_expect(in_storage ? FN_SPAWN_IN : FN_SPAWN, rc, want, "spawn");
  fz_trace("spawn prog %d (kind %d) on exec %d flags %#x storage %d: %d", p, g->kind, idx, flags, slot, rc);
  if (rc) {
    FZ_CHECK(!t, "a failed spawn left *out set");
    FZ_CHECK(atomic_load(&g->drops) == (droppable ? 1 : 0), "a refused spawn dropped its future %d times",
             atomic_load(&g->drops));
    return;
  }
  if (slot >= 0) fz_storage_used[slot] = 1;
  if (out) FZ_CHECK(t, "spawn returned OK without a task handle");
  int k = task_add(t, idx, p, -1);
  if (k >= 0) W.tasks[k].storage = slot;
  else if (t) asyncrt_task_release(t);
}

void op_spawn(fz_input *in) {
  int idx;
  asyncrt_executor *h = pick_handle(in, HT_EXEC, &idx);
  int p = decode_prog(in, idx, 0);
  if (p >= 0) spawn_prog(in, h, idx, p);
}

/* ---- block_on ------------------------------------------------------------------------ */

static int completes_alone(const prog *g) {
  return g->kind == P_READY || g->kind == P_YIELD || g->kind == P_FAIL || g->kind == P_REENTER;
}

void op_block_on(fz_input *in) {
  int idx;
  asyncrt_executor *h = pick_handle(in, HT_EXEC, &idx);
  int p = decode_prog(in, idx, 0);
  if (p < 0) return;
  prog *g = &fz_progs[p];
  uint8_t b = fz_byte(in);
  int droppable = 1, bad = (b & 15) == 15 && !g->has_inner;
  asyncrt_future f = bad ? prog_bad_future(p, b >> 4, &droppable) : prog_future(p);
  int64_t timeout = (b & 15) == 14 ? -7 : completes_alone(g) && (b & 1) ? ASYNCRT_NO_TIMEOUT : (int64_t)(b >> 4) * 100000;
  uint64_t out = 0;
  int no_out = (b & 15) == 13 && g->out8;
  uint32_t want;
  if (bad || timeout == -7 || no_out) want = ST(ASYNCRT_EINVAL);
  else if ((want = handle_status(h, idx))) {
  } else if (W.ex[idx].kind == EX_FOREIGN) want = ST(ASYNCRT_ENOTSUP);
  else if (ex_threads(&W.ex[idx]) && W.ex[idx].shut) want = ST(ASYNCRT_ESHUTDOWN);
  else want = ~0u; /* an outcome: checked against the program below */
  if (droppable) prog_give(p, idx);
  int rc = asyncrt_block_on(h, &f, no_out ? NULL : &out, timeout);
  fz_expect(FN_BLOCK_ON, rc, want, "block_on");
  fz_trace("block_on prog %d (kind %d) on exec %d timeout %lld: %d", p, g->kind, idx, (long long)timeout, rc);
  /* A root that timed out and still waits (for a shielded scope's child)
   * stays a task of the executor: its drop comes later, checked at the
   * teardown with every other future handed over. */
  int drops = atomic_load(&g->drops), unfinished = rc == ASYNCRT_ETIMEDOUT && want == ~0u && !drops;
  FZ_CHECK(drops == (droppable && !unfinished ? 1 : 0), "block_on returned %d with its future dropped %d times", rc,
           drops);
  if (want != ~0u) return;
  int fin = atomic_load(&g->finished), failure = atomic_load(&g->failure);
  switch (rc) {
  case ASYNCRT_OK:
    FZ_CHECK(fin == ASYNCRT_POLL_READY, "block_on OK but its future never returned READY");
    if (g->out8) FZ_CHECK(out == g->value, "block_on gave %#llx, want %#llx", (unsigned long long)out,
                          (unsigned long long)g->value);
    break;
  case ASYNCRT_ETIMEDOUT:
    FZ_CHECK(timeout >= 0 || (fin == ASYNCRT_POLL_ERROR && failure == rc), "block_on timed out without a timeout");
    break;
  case ASYNCRT_ENOMEM:
  case ASYNCRT_ELIMIT:
    FZ_CHECK((W.ex[idx].limited || W.ex[idx].failing_alloc) || (fin == ASYNCRT_POLL_ERROR && failure == rc),
             "block_on: %d without a cap or a failing allocator", rc);
    break;
  case ASYNCRT_ESCOPE:
    FZ_CHECK(g->kind == P_SCOPE || (fin == ASYNCRT_POLL_ERROR && failure == rc), "block_on: ESCOPE from a future with no scope");
    break;
  default:
    FZ_CHECK(fin == ASYNCRT_POLL_ERROR && failure == rc, "block_on returned %d; its future %s", rc,
             fin == ASYNCRT_POLL_ERROR ? "named another failure" : "never failed");
  }
}

/* ---- wakes ---------------------------------------------------------------------------- */

static int pick_prog_of_kind(fz_input *in, int kind) {
  int n = 0, found[MAX_PROGS];
  for (int i = 0; i < fz_nprogs; i++)
    if (fz_progs[i].kind == kind) found[n++] = i;
  return n ? found[fz_byte(in) % n] : -1;
}

void op_wake(fz_input *in) {
  uint8_t b = fz_byte(in);
  switch (b % 6) {
  case 0:
  case 1:
  case 2: { /* signal a waiting program: here, or from a helper thread */
    int p = pick_prog_of_kind(in, P_WAIT);
    if (p < 0) return;
    if (b % 3 == 0) prog_signal(p);
    else helpers_post(b % 3 - 1, JOB_SIGNAL, p, (asyncrt_waker){0});
    fz_trace("signal prog %d (%s)", p, b % 3 ? "helper" : "main");
    return;
  }
  case 3: { /* keep a clone of a program's waker */
    int p = pick_prog_of_kind(in, P_WAIT);
    if (p < 0) return;
    for (int i = 0; i < MAX_WAKERS; i++)
      if (!W.wakers[i].vtable) {
        W.wakers[i] = prog_waker_clone(p);
        return;
      }
    return;
  }
  case 4: { /* use a kept clone, possibly long after its task finished */
    int i = fz_pick(in, MAX_WAKERS);
    asyncrt_waker w = W.wakers[i];
    if (!w.vtable) return;
    uint8_t how = fz_byte(in);
    switch (how % 6) {
    case 0: asyncrt_waker_wake(&W.wakers[i]); FZ_CHECK(!W.wakers[i].vtable, "waker_wake did not zero the waker"); return;
    case 1: asyncrt_waker_wake_by_ref(&W.wakers[i]); return; /* kept */
    case 2: asyncrt_waker_drop(&W.wakers[i]); FZ_CHECK(!W.wakers[i].vtable, "waker_drop did not zero the waker"); return;
    default:
      W.wakers[i] = (asyncrt_waker){0};
      helpers_post(how & 1, how % 6 == 3 ? JOB_WAKE : how % 6 == 4 ? JOB_WAKE_BY_REF_DROP : JOB_DROP, -1, w);
      return;
    }
  }
  default: { /* the waker functions' edge cases */
    asyncrt_waker z = {0}, c = {(void *)1, NULL};
    asyncrt_waker_wake(NULL);
    asyncrt_waker_wake_by_ref(NULL);
    asyncrt_waker_drop(NULL);
    asyncrt_waker_clone(NULL, &c);
    FZ_CHECK(!c.vtable && !c.data, "waker_clone(NULL) did not zero its output");
    asyncrt_waker_clone(&z, NULL);
    asyncrt_waker_wake(&z);
    asyncrt_waker_wake_by_ref(&z);
    asyncrt_waker_drop(&z);
    FZ_CHECK(!asyncrt_waker_will_wake(&z, &z), "a zeroed waker will_wake itself");
    FZ_CHECK(!asyncrt_waker_will_wake(NULL, &z), "will_wake(NULL, ...) is not 0");
    for (int i = 0; i < MAX_WAKERS; i++)
      if (W.wakers[i].vtable) {
        FZ_CHECK(asyncrt_waker_will_wake(&W.wakers[i], &W.wakers[i]), "a waker does not will_wake itself");
        break;
      }
    return;
  }
  }
}

/* ---- task handle operations ------------------------------------------------------------- */

static void check_id(int t, uint64_t id) {
  fz_task *k = &W.tasks[t];
  FZ_CHECK(id != 0, "task %d has id 0", t);
  if (k->id) FZ_CHECK(k->id == id, "task %d: id changed from %llu to %llu", t, (unsigned long long)k->id,
                      (unsigned long long)id);
  k->id = id;
  for (int o = 0; o < W.ntasks; o++)
    if (o != t && W.tasks[o].exec == k->exec && W.tasks[o].id == id)
      FZ_CHECK(0, "tasks %d and %d of exec %d share id %llu", t, o, k->exec, (unsigned long long)id);
}

void op_task(fz_input *in) {
  int idx;
  asyncrt_task *h = pick_handle(in, HT_TASK, &idx);
  uint32_t hs = handle_status(h, idx);
  fz_task *k = idx >= 0 ? &W.tasks[idx] : NULL;
  uint8_t b = fz_byte(in);
  int rc;
  switch (b % 7) {
  case 0:
    rc = asyncrt_task_cancel(h);
    fz_expect(FN_TASK_CANCEL, rc, hs ? hs : ST(ASYNCRT_OK), "task_cancel");
    if (k) k->cancelled = 1;
    if (k) fz_trace("cancel task %d", idx);
    return;
  case 1: {
    int test = k && ex_test_clock(&W.ex[k->exec]);
    uint64_t timeout = (uint64_t)(b >> 3) * (test ? 1000000u : 1000u);
    rc = asyncrt_task_cancel_ex(h, timeout);
    fz_expect(FN_TASK_CANCEL_EX, rc, hs ? hs : ST(ASYNCRT_OK), "task_cancel_ex");
    if (k) k->cancelled = 1;
    if (k) fz_trace("cancel_ex task %d timeout %llu", idx, (unsigned long long)timeout);
    return;
  }
  case 2:
    rc = asyncrt_task_status(h);
    fz_documented(FN_TASK_STATUS, rc);
    if (hs) fz_expect(FN_TASK_STATUS, rc, hs, "task_status of a dead handle");
    else fz_check_task_status(idx, rc);
    return;
  case 3: {
    uint64_t id = 0;
    rc = asyncrt_task_id(h, b & 8 ? NULL : &id);
    fz_expect(FN_TASK_ID, rc, hs ? hs : b & 8 ? ST(ASYNCRT_EINVAL) : ST(ASYNCRT_OK), "task_id");
    if (!rc) check_id(idx, id);
    return;
  }
  case 4:
    rc = asyncrt_task_release(h);
    fz_expect(FN_TASK_RELEASE, rc, !h ? ST(ASYNCRT_OK) : hs ? hs : ST(ASYNCRT_OK), "task_release");
    if (k && !rc) {
      stale_add(h);
      k->h = NULL;
    }
    return;
  case 5: {
    asyncrt_error_info info = {.size = b & 8 ? 8 : sizeof info};
    int before = hs ? 0 : asyncrt_task_status(h);
    rc = asyncrt_task_error_get(h, b & 0x10 ? NULL : &info);
    uint32_t want = hs;
    if (!want) {
      if ((b & 0x10) || (b & 8)) want = ST(ASYNCRT_EINVAL);
      else if (before != ASYNCRT_EAGAIN) want = ST(ASYNCRT_OK);
      else want = ST(ASYNCRT_EAGAIN) | (ex_threads(&W.ex[k->exec]) ? ST(ASYNCRT_OK) : 0);
    }
    fz_expect(FN_TASK_ERROR_GET, rc, want, "task_error_get");
    if (!rc && before != ASYNCRT_EAGAIN)
      FZ_CHECK(info.status == before, "task %d: error record says %d, status %d", idx, info.status, before);
    return;
  }
  default: {
    static const char long_name[] = "a name longer than the sixty-three bytes a task keeps for the dump, cut";
    const char *name = b & 8 ? NULL : b & 0x10 ? long_name : "t";
    rc = asyncrt_task_set_name(h, name);
    uint32_t want = hs;
    if (!want) {
      const fz_exec *e = &W.ex[k->exec];
      want = ST(ASYNCRT_OK) | (e->limited ? ST(ASYNCRT_ELIMIT) : 0) | (e->failing_alloc ? ST(ASYNCRT_ENOMEM) : 0);
    }
    fz_expect(FN_TASK_SET_NAME, rc, want, "task_set_name");
    return;
  }
  }
}

/* ---- join futures ---------------------------------------------------------------------------- */

_Atomic int fz_hwaker_refs;
static void hw_clone(const void *d, asyncrt_waker *out) {
  atomic_fetch_add(&fz_hwaker_refs, 1);
  *out = (asyncrt_waker){d, fz_hwaker.vtable};
}
static void hw_wake_by_ref(const void *d) { (void)d; }
static void hw_drop(const void *d) {
  (void)d;
  FZ_CHECK(atomic_fetch_sub(&fz_hwaker_refs, 1) > 0, "the harness's waker was dropped more often than cloned");
}
static void hw_wake(const void *d) { hw_drop(d); }
static const asyncrt_waker_vtable hw_vt = {hw_clone, hw_wake, hw_wake_by_ref, hw_drop};
const asyncrt_waker fz_hwaker = {&fz_hwaker_refs, &hw_vt};

static int hjoin_slot(void) {
  for (int i = 0; i < MAX_HJOINS; i++)
    if (!W.hjoins[i].live) return i;
  return -1;
}

void hjoin_keep(asyncrt_future f, int task, int scope) {
  int s = hjoin_slot();
  if (s < 0) {
    f.vtable->drop(f.self);
    return;
  }
  W.hjoins[s] = (fz_hjoin){.live = 1, .f = f, .task = task, .scope = scope};
}

void op_join(fz_input *in) {
  int idx;
  asyncrt_task *h = pick_handle(in, HT_TASK, &idx);
  uint32_t hs = handle_status(h, idx);
  uint8_t b = fz_byte(in);
  asyncrt_future f = {0};
  int rc = asyncrt_task_join(h, b & 1 ? NULL : &f);
  uint32_t want = hs ? hs : b & 1 ? ST(ASYNCRT_EINVAL) : W.tasks[idx].joined ? ST(ASYNCRT_EBUSY) : ST(ASYNCRT_OK);
  fz_expect(FN_TASK_JOIN, rc, want, "task_join");
  if (rc) return;
  W.tasks[idx].joined = 1;
  const prog *g = W.tasks[idx].prog >= 0 ? &fz_progs[W.tasks[idx].prog] : NULL;
  FZ_CHECK(f.vtable && f.vtable->output_size == (g && g->out8 ? 8u : 0u) + (g ? 0u : f.vtable->output_size),
           "task %d's join future has output_size %zu", idx, f.vtable ? f.vtable->output_size : 0);
  hjoin_keep(f, idx, -1);
}

/* What a task's join must report, from the task's status (-1: unknown). */
static int join_target_status(const fz_hjoin *j) {
  if (j->task >= 0 && W.tasks[j->task].h) {
    int st = asyncrt_task_status(W.tasks[j->task].h);
    fz_check_task_status(j->task, st);
    return st;
  }
  if (j->scope >= 0 && W.scopes[j->scope].h) return asyncrt_scope_status(W.scopes[j->scope].h);
  return -1;
}

void op_hjoin(fz_input *in) {
  int s = fz_pick(in, MAX_HJOINS);
  fz_hjoin *j = &W.hjoins[s];
  if (!j->live) return;
  uint8_t b = fz_byte(in);
  int target_prog = j->task >= 0 ? W.tasks[j->task].prog : -1;
  int target_exec = j->task >= 0 ? W.tasks[j->task].exec : j->scope >= 0 ? W.scopes[j->scope].exec : -1;
  switch (b % 4) {
  case 0:
  case 1: { /* poll it from here, with a waker of the harness's */
    if (j->done) return;
    if (b & 4) {
      int r = asyncrt_poll_with_waker(&j->f, NULL, &j->out, NULL);
      FZ_CHECK(r == -ASYNCRT_EINVAL, "poll_with_waker with a NULL waker returned %d", r);
      return;
    }
    int failure = 0;
    int r = asyncrt_poll_with_waker(&j->f, &fz_hwaker, &j->out, &failure);
    int st = join_target_status(j);
    fz_trace("hjoin %d poll: %d (failure %d), target status %d", s, r, failure, st);
    if (r == ASYNCRT_POLL_READY) {
      j->done = 1;
      if (st >= 0) FZ_CHECK(st == ASYNCRT_OK, "a join was READY, its task or scope reports %d", st);
      if (target_prog >= 0 && fz_progs[target_prog].out8)
        FZ_CHECK(j->out == fz_progs[target_prog].value, "a join gave %#llx, want %#llx",
                 (unsigned long long)j->out, (unsigned long long)fz_progs[target_prog].value);
      if (j->scope >= 0) W.scopes[j->scope].join_done = 1;
    } else if (r == ASYNCRT_POLL_ERROR) {
      j->done = 1;
      FZ_CHECK(failure != 0, "a join failed with status 0");
      if (st >= 0) FZ_CHECK(st == failure, "a join failed with %d, its task or scope reports %d", failure, st);
      if (j->scope >= 0) W.scopes[j->scope].join_done = 1;
    } else {
      FZ_CHECK(r == ASYNCRT_POLL_PENDING, "a join poll returned %d", r);
      if (st >= 0 && target_exec >= 0 && !ex_threads(&W.ex[target_exec]))
        FZ_CHECK(st == ASYNCRT_EAGAIN, "a join was pending, its task or scope reports %d", st);
    }
    return;
  }
  case 2: /* drop it */
    j->f.vtable->drop(j->f.self);
    j->live = 0;
    return;
  default: { /* hand it to asyncrt inside a JOIN program */
    if (j->done) return;
    int idx;
    asyncrt_executor *h = pick_handle(in, HT_EXEC, &idx);
    int p = prog_new(P_JOIN, 0, target_prog >= 0 ? fz_progs[target_prog].out8 : 0);
    if (p < 0) return;
    if (j->scope >= 0 || (j->task >= 0 && W.tasks[j->task].prog < 0))
      fz_progs[p].out8 = (int)(j->f.vtable->output_size == 8);
    fz_progs[p].inner = j->f;
    fz_progs[p].has_inner = 1;
    fz_progs[p].children[0] = target_prog;
    if (target_prog >= 0) fz_progs[p].value = fz_progs[target_prog].value; /* a join passes its output on */
    j->live = 0;
    spawn_prog(in, h, idx, p);
    return;
  }
  }
}
