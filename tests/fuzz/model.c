/* model.c -- the reference model: what each task may report, and which
 * tasks must have finished once the world has settled.
 *
 * The model does not simulate the scheduler. It reasons from what the
 * harness did (cancels, frees, signals, scope operations) and from what
 * each future recorded about itself (prog.finished, prog.failure, drops):
 *
 *  - a task's status must agree with its future: OK only after READY, a
 *    failure only with the status the future named, ECANCELLED only if
 *    something could have cancelled it, ESCOPE only if it returned with a
 *    scope that could still have children; and a final status is final;
 *  - a reported completion implies the future was dropped (once);
 *  - after settling (every executor driven, every test clock advanced past
 *    every timer and cleanup deadline, every wake delivered), every task
 *    the model can prove finite has completed.
 * Where the model cannot tell (races on thread-per-core executors), it
 * allows every answer the header allows.
 */
#include "fuzz.h"

/* A model task of program p, or -1. */
static int task_of_prog(int p) { return p >= 0 ? fz_progs[p].task : -1; }

static int exec_gone(int e) { return e >= 0 && (W.ex[e].freed || W.ex[e].shut); }

int fz_cancel_possible(int t);
static int owns_scopes(int t);

static int prog_may_fail(const prog *p) {
  return p->kind == P_FAIL || p->kind == P_JOIN || p->kind == P_SCOPE || p->kind == P_SLEEP || p->kind == P_CHAN ||
         p->kind == P_COMB;
}

/* Whether the program (or a child it polls in the task's own context) opens
 * scopes owned by its task. */
static int prog_scoped(int i, int depth) {
  if (i < 0 || depth > 8) return 0;
  const prog *p = &fz_progs[i];
  if (p->kind == P_SCOPE) return 1;
  if (p->kind != P_COMB) return 0;
  for (int c = 0; c < p->nchildren; c++)
    if (prog_scoped(p->children[c], depth + 1)) return 1;
  return 0;
}

/* Could scope s have been cancelled (so its children see ECANCELLED)? */
int fz_scope_cancel_possible(int s) {
  const fz_scope *sc = &W.scopes[s];
  if (sc->cancelled || sc->deadline || exec_gone(sc->exec)) return 1;
  if (sc->owner >= 0) {
    const fz_task *o = &W.tasks[sc->owner];
    /* An owner whose future returns cancels the scope; a timeout or sleep
     * future (o->timeout) may return whatever its program does. */
    if (fz_cancel_possible(sc->owner) || o->timeout || o->prog < 0 || o->done_seen ||
        atomic_load(&fz_progs[o->prog].finished))
      return 1;
  }
  if (!sc->collect && sc->untracked) return 1;
  if (!sc->collect)
    for (int i = 0; i < sc->nchildren; i++) {
      const fz_task *c = &W.tasks[sc->children[i]];
      /* A child that owns scopes (opened for it from outside) fails with
       * ESCOPE if it returns while one still has children. */
      if (c->prog < 0 || prog_may_fail(&fz_progs[c->prog]) || c->cancelled || owns_scopes(sc->children[i]))
        return 1;
    }
  return 0;
}

int fz_cancel_possible(int t) {
  const fz_task *k = &W.tasks[t];
  if (k->cancelled || exec_gone(k->exec) || W.ex[k->exec].runnable_dropped) return 1;
  return k->scope >= 0 && fz_scope_cancel_possible(k->scope);
}

/* Scopes task t owns (opened for it from outside). */
static int owns_scopes(int t) {
  for (int s = 0; s < W.nscopes; s++)
    if (W.scopes[s].owner == t) return 1;
  return 0;
}

void fz_check_task_status(int t, int st) {
  fz_task *k = &W.tasks[t];
  const prog *p = k->prog >= 0 ? &fz_progs[k->prog] : NULL;
  if (st == ASYNCRT_EAGAIN) {
    FZ_CHECK(!k->done_seen, "task %d: status went back to EAGAIN after %d", t, k->last_status);
    FZ_CHECK(!exec_gone(k->exec), "task %d still runs after its executor was freed or shut down", t);
    return;
  }
  if (k->done_seen)
    FZ_CHECK(st == k->last_status, "task %d: status changed from %d to %d", t, k->last_status, st);
  k->done_seen = 1;
  k->last_status = st;
  if (!p) return; /* a sleep or timeout future asyncrt made: only its documented set */
  FZ_CHECK(atomic_load(&p->drops) == 1, "task %d reports %d but its future was dropped %d times", t, st,
           atomic_load(&p->drops));
  int fin = atomic_load(&p->finished), failure = atomic_load(&p->failure);
  int scoped = atomic_load(&p->early_children) > 0 || owns_scopes(t) || prog_scoped(k->prog, 0);
  switch (st) {
  case ASYNCRT_OK:
    FZ_CHECK(fin == ASYNCRT_POLL_READY, "task %d completed OK but its future never returned READY", t);
    break;
  case ASYNCRT_ECANCELLED:
    FZ_CHECK((fin == ASYNCRT_POLL_ERROR && failure == st) ||
                 (fz_cancel_possible(t) && (!fin || scoped || k->timeout)),
             "task %d: ECANCELLED, but nothing could cancel it (finished %d)", t, fin);
    break;
  case ASYNCRT_ESCOPE:
    FZ_CHECK((fin == ASYNCRT_POLL_ERROR && failure == st) || (fin == ASYNCRT_POLL_READY && scoped),
             "task %d: ESCOPE, but it never returned with a scope open (finished %d)", t, fin);
    break;
  case ASYNCRT_ETIMEDOUT:
    FZ_CHECK((fin == ASYNCRT_POLL_ERROR && failure == st) || k->timeout,
             "task %d: ETIMEDOUT, but it had no timeout and named no such failure", t);
    break;
  default:
    FZ_CHECK(fin == ASYNCRT_POLL_ERROR && failure == st,
             "task %d: failed with %d, but its future %s", t, st,
             fin == ASYNCRT_POLL_ERROR ? "named another failure" : "never failed");
  }
}

/* ---- liveness ------------------------------------------------------------- */

/* Every predicate below is a proof of finishing: false when unsure. A
 * cancel reaches a whole subtree except through shielded scopes, whose
 * children run on; a task whose future returns cancels all its scopes,
 * shielded or not; cleanups end at their deadlines, which settling passes. */

static int prog_finite(int i, int depth);

/* Finishes once cancelled. */
static int prog_finite_cancelled(int i, int depth) {
  if (i < 0 || depth > 8) return 0;
  const prog *p = &fz_progs[i];
  if (p->kind == P_COMB) { /* dropped with the task; scopes its children opened are the task's */
    for (int c = 0; c < p->nchildren; c++)
      if (!prog_finite_cancelled(p->children[c], depth + 1)) return 0;
    return 1;
  }
  if (p->kind != P_SCOPE) return 1;
  for (int c = 0; c < p->nchildren; c++) {
    int k = p->children[c];
    if (!((p->scope_flags & ASYNCRT_SCOPE_SHIELD) ? prog_finite(k, depth + 1) : prog_finite_cancelled(k, depth + 1)))
      return 0;
  }
  return 1;
}

/* Finishes if left alone. */
static int prog_finite(int i, int depth) {
  if (i < 0 || depth > 8) return 0;
  const prog *p = &fz_progs[i];
  switch (p->kind) {
  case P_WAIT: return atomic_load(&p->signalled);
  case P_JOIN: {
    if (p->children[0] < 0) return 0; /* a scope's join: not followed */
    int t = task_of_prog(p->children[0]);
    return t >= 0 ? fz_task_finite(t) : prog_finite(p->children[0], depth + 1);
  }
  case P_SCOPE:
    for (int c = 0; c < p->nchildren; c++) {
      int k = p->children[c];
      if (!(p->scope_mode == SCOPE_AWAIT ? prog_finite(k, depth + 1) : prog_finite_cancelled(k, depth + 1)))
        return 0;
    }
    return 1;
  case P_COMB: /* select may end at its first child, but a scope that child opened may hold the task */
    for (int c = 0; c < p->nchildren; c++)
      if (!prog_finite(p->children[c], depth + 1)) return 0;
    return 1;
  case P_CHAN:
  case P_SYNC: return 0; /* up to the other side: not followed */
  default: return 1;
  }
}

static int task_finite_cancelled(int t, int depth);

/* The children of the scopes task t owns (opened for it from outside). */
static int owned_children_finite(int t, int cancelled, int depth) {
  for (int s = 0; s < W.nscopes; s++) {
    const fz_scope *sc = &W.scopes[s];
    if (sc->owner != t) continue;
    for (int i = 0; i < sc->nchildren; i++) {
      int c = sc->children[i];
      int ok = cancelled && sc->shield ? fz_task_finite(c) : task_finite_cancelled(c, depth + 1);
      if (!ok) return 0;
    }
  }
  return 1;
}

static int task_finite_cancelled(int t, int depth) {
  const fz_task *k = &W.tasks[t];
  if (depth > 8) return 0;
  if (exec_gone(k->exec)) return 1;
  return (k->prog < 0 || prog_finite_cancelled(k->prog, 0)) && owned_children_finite(t, 1, depth);
}

int fz_task_finite(int t) {
  const fz_task *k = &W.tasks[t];
  if (exec_gone(k->exec)) return 1;
  if (k->cancelled) return task_finite_cancelled(t, 0);
  if (!((k->prog < 0 ? !k->unknown : prog_finite(k->prog, 0)) && owned_children_finite(t, 0, 0))) return 0;
  /* A cancel may still come through its scope or its executor: then the
   * children of its shielded scopes must finish by themselves. */
  return !fz_cancel_possible(t) || task_finite_cancelled(t, 0);
}
