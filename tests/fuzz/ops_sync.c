/* ops_sync.c -- mutexes, semaphores, notifies and barriers: made with valid
 * and invalid arguments, their non-waiting calls checked against an exact
 * model while no wait future has touched them (then against the header's
 * statuses only), wait futures handed to SYNC programs, and frees, which
 * must say EBUSY while a wait future pins the object. */
#include "ops.h"

static const char *const kind_names[SY_KINDS] = {"mutex", "semaphore", "notify", "barrier"};

void op_sync_new(fz_input *in) {
  int s = -1;
  for (int i = 0; i < MAX_SYNCS && s < 0; i++)
    if (!W.syncs[i].live) s = i;
  uint8_t b = fz_byte(in);
  int kind = b % SY_KINDS, bad = (b >> 2) % 8 == 7;
  unsigned flags = bad && (b & 0x40) ? 4u : (b >> 5) & 1 ? ASYNCRT_SYNC_LOCAL : 0;
  uint64_t permits = (b >> 6) & 3;
  uint32_t parties = bad && !(b & 0x40) && kind == SY_BARRIER ? 0 : 1 + (b >> 6) % 3;
  int refused = flags == 4u || parties == 0;
  if (s < 0 && !refused) return;
  void *h = (void *)(uintptr_t)1;
  int rc;
  switch (kind) {
  case SY_MUTEX: rc = asyncrt_mutex_new(flags, (asyncrt_mutex **)&h); break;
  case SY_SEMAPHORE: rc = asyncrt_semaphore_new(flags, permits, (asyncrt_semaphore **)&h); break;
  case SY_NOTIFY: rc = asyncrt_notify_new(flags, (asyncrt_notify **)&h); break;
  default: rc = asyncrt_barrier_new(flags, parties, (asyncrt_barrier **)&h); break;
  }
  fz_expect(FN_SYNC_NEW, rc, refused ? ST(ASYNCRT_EINVAL) : ST(ASYNCRT_OK), "sync object new");
  if (rc) {
    FZ_CHECK(!h, "a refused %s_new left *out set", kind_names[kind]);
    return;
  }
  W.syncs[s] = (fz_sync){.live = 1, .kind = kind, .h = h, .permits = permits, .local = flags == ASYNCRT_SYNC_LOCAL};
  fz_trace("sync %d: %s", s, kind_names[kind]);
}

/* Programs that still hold a wait future on object s (made, not dropped);
 * *racy when one of them runs on a thread-per-core executor. */
static int waiters(int s, int *busy, int *racy) {
  int n = 0;
  *busy = *racy = 0;
  for (int i = 0; i < fz_nprogs; i++) {
    const prog *p = &fz_progs[i];
    if (p->kind != P_SYNC || p->sync != s || !p->has_inner || atomic_load(&p->drops)) continue;
    n++;
    if (!atomic_load(&p->finished)) *busy = 1;
    if (p->exec >= 0 && ex_threads(&W.ex[p->exec])) *racy = 1;
  }
  return n;
}

static int sync_free_one(int s, uint32_t want) {
  fz_sync *o = &W.syncs[s];
  int rc;
  switch (o->kind) {
  case SY_MUTEX: rc = asyncrt_mutex_free(o->h); break;
  case SY_SEMAPHORE: rc = asyncrt_semaphore_free(o->h); break;
  case SY_NOTIFY: rc = asyncrt_notify_free(o->h); break;
  default: rc = asyncrt_barrier_free(o->h); break;
  }
  if (!(ST(rc) & want))
    for (int i = 0; i < fz_nprogs; i++) {
      const prog *p = &fz_progs[i];
      if (p->kind == P_SYNC && p->sync == s)
        fz_trace("  waiter prog %d: exec %d given %d drops %d inner %d finished %d polls %d", i, p->exec,
                 atomic_load(&p->given), atomic_load(&p->drops), p->has_inner, atomic_load(&p->finished),
                 atomic_load(&p->polls));
    }
  fz_expect(FN_SYNC_FREE, rc, want, "sync object free");
  if (!rc) {
    stale_add(o->h);
    o->live = 0;
  }
  return rc;
}

void sync_free_all(void) {
  for (int s = 0; s < MAX_SYNCS; s++)
    if (W.syncs[s].live) sync_free_one(s, ST(ASYNCRT_OK));
}

void op_sync(fz_input *in) {
  int idx;
  void *h = pick_handle(in, HT_SYNC, &idx);
  uint8_t b = fz_byte(in);
  int kind = b % SY_KINDS; /* the call's kind: another than the object's is a foreign handle */
  fz_sync *o = idx >= 0 ? &W.syncs[idx] : NULL;
  uint32_t hs = handle_status(h, idx);
  if (!hs && o->kind != kind) hs = ST(ASYNCRT_EHANDLE);
  int exact = o && !o->async, rc;
  switch ((b >> 2) % 4) {
  case 0: { /* free */
    if (!h) {
      rc = kind == SY_MUTEX ? asyncrt_mutex_free(NULL) : kind == SY_SEMAPHORE ? asyncrt_semaphore_free(NULL)
                              : kind == SY_NOTIFY ? asyncrt_notify_free(NULL) : asyncrt_barrier_free(NULL);
      fz_expect(FN_SYNC_FREE, rc, ST(ASYNCRT_OK), "sync free(NULL)");
      return;
    }
    if (hs) {
      rc = kind == SY_MUTEX ? asyncrt_mutex_free(h) : kind == SY_SEMAPHORE ? asyncrt_semaphore_free(h)
                              : kind == SY_NOTIFY ? asyncrt_notify_free(h) : asyncrt_barrier_free(h);
      fz_expect(FN_SYNC_FREE, rc, hs, "sync free of a dead or foreign handle");
      return;
    }
    int busy, racy;
    if (waiters(idx, &busy, &racy) && racy) return; /* a worker may be using it: the caller's race */
    sync_free_one(idx, busy ? ST(ASYNCRT_EBUSY) : ST(ASYNCRT_OK));
    return;
  }
  case 1: /* try_lock / try_acquire */
    if (kind == SY_MUTEX) {
      rc = asyncrt_mutex_try_lock(h);
      uint32_t want = hs ? hs : !exact ? ST(ASYNCRT_OK) | ST(ASYNCRT_EAGAIN) : o->held ? ST(ASYNCRT_EAGAIN) : ST(ASYNCRT_OK);
      fz_expect(FN_MUTEX_TRY, rc, want, "mutex_try_lock");
      if (!rc) o->held = 1;
    } else if (kind == SY_SEMAPHORE) {
      uint64_t n = (b >> 4) % 4;
      rc = asyncrt_semaphore_try_acquire(h, n);
      uint32_t want = hs ? hs : !n ? ST(ASYNCRT_EINVAL) : !exact ? ST(ASYNCRT_OK) | ST(ASYNCRT_EAGAIN)
                                : o->permits >= n ? ST(ASYNCRT_OK) : ST(ASYNCRT_EAGAIN);
      fz_expect(FN_SEM_TRY, rc, want, "semaphore_try_acquire");
      if (!rc && exact) o->permits -= n;
    } else if (kind == SY_NOTIFY) {
      rc = b & 0x10 ? asyncrt_notify_all(h) : asyncrt_notify_one(h);
      fz_expect(FN_NOTIFY, rc, hs ? hs : ST(ASYNCRT_OK), "notify");
    }
    return;
  case 2: /* unlock / release / available */
    if (kind == SY_MUTEX) {
      /* Unlocking what a waiter holds would break its own unlock: only
       * the harness's hold, or (exact model) an unheld mutex, EINVAL. */
      if (!hs && !o->held && !exact) return;
      rc = asyncrt_mutex_unlock(h);
      fz_expect(FN_MUTEX_UNLOCK, rc, hs ? hs : o->held ? ST(ASYNCRT_OK) : ST(ASYNCRT_EINVAL), "mutex_unlock");
      if (!rc) o->held = 0;
    } else if (kind == SY_SEMAPHORE) {
      uint64_t n = (b >> 4) % 3, got = 99;
      if (b & 0x40) {
        rc = asyncrt_semaphore_available(h, b & 0x80 ? NULL : &got);
        fz_expect(FN_SEM_AVAILABLE, rc, hs ? hs : b & 0x80 ? ST(ASYNCRT_EINVAL) : ST(ASYNCRT_OK), "semaphore_available");
        if (!rc && exact) FZ_CHECK(got == o->permits, "semaphore has %llu permits, the model %llu",
                                   (unsigned long long)got, (unsigned long long)o->permits);
        return;
      }
      rc = asyncrt_semaphore_release(h, n);
      fz_expect(FN_SEM_RELEASE, rc, hs ? hs : ST(ASYNCRT_OK), "semaphore_release");
      if (!rc && exact) o->permits += n;
    }
    return;
  default: { /* a wait with a NULL argument */
    asyncrt_wait w;
    asyncrt_future f;
    rc = kind == SY_MUTEX ? asyncrt_mutex_lock(h, b & 0x10 ? NULL : &w, b & 0x10 ? &f : NULL)
         : kind == SY_SEMAPHORE ? asyncrt_semaphore_acquire(h, 1, NULL, &f)
         : kind == SY_NOTIFY ? asyncrt_notify_wait(h, &w, NULL) : asyncrt_barrier_wait(h, NULL, &f);
    fz_expect(FN_SYNC_WAIT, rc, hs ? hs : ST(ASYNCRT_EINVAL), "a wait with a NULL argument");
    return;
  }
  }
}

/* Whether futures of executor e are polled on the main thread only, as
 * ASYNCRT_SYNC_LOCAL and ASYNCRT_CHANNEL_LOCAL objects require. */
int main_thread_only(int e) { return e >= 0 && !ex_threads(&W.ex[e]); }

int sync_future(fz_input *in, int p) {
  prog *g = &fz_progs[p];
  int idx;
  void *h = pick_handle(in, HT_SYNC, &idx);
  if (idx >= 0 && W.syncs[idx].local && !main_thread_only(g->exec)) return 0;
  uint8_t b = fz_byte(in);
  uint32_t hs = handle_status(h, idx);
  int kind = idx >= 0 ? W.syncs[idx].kind : b % SY_KINDS;
  g->permits = kind == SY_SEMAPHORE ? (b >> 2) % 3 : 0; /* 0: EINVAL */
  int rc;
  switch (kind) {
  case SY_MUTEX: rc = asyncrt_mutex_lock(h, &g->wait, &g->inner); break;
  case SY_SEMAPHORE: rc = asyncrt_semaphore_acquire(h, g->permits, &g->wait, &g->inner); break;
  case SY_NOTIFY: rc = asyncrt_notify_wait(h, &g->wait, &g->inner); break;
  default: rc = asyncrt_barrier_wait(h, &g->wait, &g->inner); break;
  }
  /* acquire checks n before the handle */
  uint32_t want = kind == SY_SEMAPHORE && !g->permits ? ST(ASYNCRT_EINVAL) : hs ? hs : ST(ASYNCRT_OK);
  fz_expect(FN_SYNC_WAIT, rc, want, "a wait future");
  if (rc) return 0;
  g->sync = idx;
  g->has_inner = 1;
  W.syncs[idx].async = 1;
  return 1;
}
