/* art_scope.c -- structured concurrency: scopes, the task tree, cancellation
 * that reaches every descendant, cleanups, shields, deadlines, rich errors.
 *
 * The tree. A task that needs more than its 96-byte header (it owns a scope,
 * is a scope's child, has a name, a rich error or a cleanup deadline) gets an
 * ext record (art_task_ext), a slot of its home core's task memory, published
 * in the header's id word and freed with the header. A scope lists its live
 * children through their exts; an owner lists its scopes through the scopes.
 * A child holds a reference on its scope, a scope holds one on its owner, so
 * nothing a child can reach is freed before it.
 *
 * The guarantee. An owner's ext counts its scopes that have live children
 * (busy). A task whose future returns while busy is not finished: it is
 * marked completing, its waiting scopes are cancelled, and it parks with
 * CANCEL set. The last child of a scope decrements busy and, if the owner has
 * CANCEL, schedules it; the owner's next visit (art_task_cancel_slow) finishes
 * it once busy is 0 and every scope is closed. busy and CANCEL form a Dekker
 * pair (both sequentially consistent): either the child sees CANCEL and
 * schedules, or the owner sees busy fall to 0.
 *
 * Cancellation crosses threads one level per hop. Cancelling a scope sets
 * CANCEL on each child (walked in chunks of 256 under the scope's lock) and
 * schedules it on its own core; each child, on its own driver, cancels the
 * scopes it owns before it runs its cleanup and is dropped. So leaves finish
 * first, every future is dropped by the thread that owns it, and a chain of
 * any depth uses no stack.
 *
 * Locks: a core's lock, then an ext's lock, then a scope's lock. No user
 * code, waker or schedule runs under any of them.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "art.h"

#define WALK_CHUNK 256u

static inline uint64_t core_now(art_exec *e) { return art_clock_now(e->clock); }

static inline uint64_t add_sat(uint64_t a, uint64_t b) { return a + b < a ? UINT64_MAX - 1 : a + b; }

/* Lowers *p to v; returns the value it held before. */
static uint64_t atomic_min_u64(_Atomic uint64_t *p, uint64_t v) {
  uint64_t cur = atomic_load(p);
  while (v < cur && !atomic_compare_exchange_weak(p, &cur, v)) {
  }
  return cur;
}

/* ---- rich errors ---------------------------------------------------------- */

art_error *art_error_new(int status, uint64_t task_id, const char *message, void *value,
                         void (*value_free)(void *)) {
  size_t n = message ? strnlen(message, 1023) : 0;
  art_error *err = malloc(sizeof *err + n + 1);
  if (!err) return NULL;
  atomic_init(&err->refs, 1);
  err->status = status;
  err->task_id = task_id;
  err->value = value;
  err->value_free = value_free;
  if (n) memcpy(err->message, message, n);
  err->message[n] = 0;
  return err;
}

void art_error_ref(art_error *err) { atomic_fetch_add_explicit(&err->refs, 1, memory_order_relaxed); }

void art_error_unref(art_error *err) {
  if (atomic_fetch_sub_explicit(&err->refs, 1, memory_order_acq_rel) != 1) return;
  if (err->value_free) err->value_free(err->value);
  free(err);
}

void art_context_fail_info(asyncrt_context *cx, const asyncrt_error_info *info) {
  int status = info->status ? info->status : ASYNCRT_EFAILED;
  art_error *err = art_error_new(status, 0, info->message, info->value, info->value_free);
  if (!err && info->value_free) info->value_free(info->value); /* taken, whatever happens */
  if (cx->rich_err) art_error_unref(cx->rich_err);
  cx->rich_err = err;
  cx->rich_task = (void *)cx->waker.data;
  cx->failure = status;
  cx->rich = err != NULL;
}

/* Takes the rich error cx holds if it names t's failure `status`; drops a
 * stale one. Returns the record (owned by the caller) or NULL. */
static art_error *take_rich(asyncrt_context *cx, art_task *t, int status) {
  if (!cx || !cx->rich_err) return NULL;
  art_error *err = cx->rich_err;
  cx->rich_err = NULL;
  int mine = cx->rich && cx->rich_task == t && cx->failure == status;
  cx->rich = 0;
  if (mine) return err;
  art_error_unref(err);
  return NULL;
}

/* ---- the ext record --------------------------------------------------------- */

art_task_ext *art_task_ext_get(art_task *t) {
  art_task_ext *x = art_task_ext_of(t);
  if (x) return x;
  art_exec *home = t->home;
  int status = ASYNCRT_ENOMEM;
  if (home->group && art_group_charge(home->group, ART_EXT_SLOT)) return NULL;
  art_lock_acquire(&home->lock);
  x = art_mem_alloc(&home->mem, ART_EXT_SLOT, &status);
  art_lock_release(&home->lock);
  if (!x) {
    if (home->group) art_group_uncharge(home->group, ART_EXT_SLOT);
    art_fail(status, "no task memory for the task's scope record");
    return NULL;
  }
  memset(x, 0, sizeof *x);
  atomic_init(&x->cancel_deadline, UINT64_MAX);
  uintptr_t w = atomic_load(&t->idw);
  for (;;) {
    if (w & 1) { /* another thread published one first */
      art_lock_acquire(&home->lock);
      art_mem_release(&home->mem, x, ART_EXT_SLOT);
      art_lock_release(&home->lock);
      if (home->group) art_group_uncharge(home->group, ART_EXT_SLOT);
      return (art_task_ext *)(w & ~(uintptr_t)1);
    }
    x->id = (uint64_t)(w >> 1);
    if (atomic_compare_exchange_weak(&t->idw, &w, (uintptr_t)x | 1)) {
      atomic_fetch_or(&t->state, ART_EXT); /* after the pointer: a reader of the bit finds it */
      return x;
    }
  }
}

void art_task_ext_release(art_exec *home, art_task *t) {
  art_mem_release(&home->mem, art_task_ext_of(t), ART_EXT_SLOT);
  if (home->group) art_group_uncharge(home->group, ART_EXT_SLOT);
}

art_task *art_context_task(asyncrt_context *cx) {
  if (!cx || !cx->exec || cx->waker.vtable != &art_task_waker_vtable) return NULL;
  return (art_task *)cx->waker.data;
}

int art_task_set_name(art_task *t, const char *name) {
  art_task_ext *x = art_task_ext_get(t);
  if (!x) return art_last_status();
  char *copy = NULL;
  if (name && !(copy = strndup(name, ART_NAME_MAX - 1)))
    return art_fail(ASYNCRT_ENOMEM, "could not copy the task's name");
  art_lock_acquire(&x->lock);
  char *old = x->name;
  x->name = copy;
  art_lock_release(&x->lock);
  free(old);
  return ASYNCRT_OK;
}

int art_task_error_get(art_task *t, asyncrt_error_info *out) {
  int status = art_task_status(t);
  if (status == ASYNCRT_EAGAIN) return art_fail(ASYNCRT_EAGAIN, "task %llu has not completed",
                                                (unsigned long long)art_task_id(t));
  art_task_ext *x = art_task_ext_of(t);
  art_error *err = x ? x->error : NULL; /* fixed once COMPLETE */
  asyncrt_error_info info = {.size = sizeof info, .status = status, .task_id = art_task_id(t),
                             .message = err && err->message[0] ? err->message : NULL,
                             .value = err ? err->value : NULL, .value_free = err ? err->value_free : NULL};
  art_copy_sized(out, out->size, &info, sizeof info);
  return ASYNCRT_OK;
}

/* ---- shields --------------------------------------------------------------------- */

int art_shield_enter(asyncrt_context *cx) {
  art_task *t = art_context_task(cx);
  if (!t) return art_fail(ASYNCRT_ENOTSUP, "asyncrt_shield_enter: not inside the poll of an asyncrt task");
  art_task_ext *x = art_task_ext_get(t);
  if (!x) return art_last_status();
  /* Once its cancel is being carried out (or it returned), a shield has
   * nothing left to hold back: the section only counts. */
  if (x->shield++ == 0 && !x->cancel_seen && !atomic_load_explicit(&x->completing, memory_order_relaxed))
    atomic_fetch_or(&t->state, ART_SHIELD);
  return ASYNCRT_OK;
}

int art_shield_exit(asyncrt_context *cx) {
  art_task *t = art_context_task(cx);
  if (!t) return art_fail(ASYNCRT_ENOTSUP, "asyncrt_shield_exit: not inside the poll of an asyncrt task");
  art_task_ext *x = art_task_ext_of(t);
  if (!x || !x->shield) return art_fail(ASYNCRT_EINVAL, "asyncrt_shield_exit without asyncrt_shield_enter");
  if (--x->shield == 0) {
    uint32_t s = atomic_fetch_and(&t->state, ~(uint32_t)ART_SHIELD);
    if (s & ART_CANCEL) cx->notified = 1; /* the cancel that waited: when this poll returns */
  }
  return ASYNCRT_OK;
}

/* ---- scopes: references and the deadline waker ----------------------------- */

static void scope_destroy(art_scope *s) {
  art_exec *core = s->core;
  art_lock_acquire(&core->lock); /* first: a dump may be reading it */
  if (core->dump_scope_cursor == s) core->dump_scope_cursor = s->all_next;
  if (s->all_prev) s->all_prev->all_next = s->all_next;
  else core->scopes_head = s->all_next;
  if (s->all_next) s->all_next->all_prev = s->all_prev;
  art_lock_release(&core->lock);
  art_waker_drop(&s->join_waker);
  for (uint32_t i = 0; i < s->nerrors; i++) art_error_unref(s->errors[i]);
  free(s->errors);
  if (s->owner) art_task_unref(s->owner);
  free(s);
  art_exec_unhold(core);
}

static inline void scope_ref(art_scope *s) { atomic_fetch_add_explicit(&s->refs, 1, memory_order_relaxed); }

void art_scope_unref(art_scope *s) {
  if (atomic_fetch_sub_explicit(&s->refs, 1, memory_order_acq_rel) == 1) scope_destroy(s);
}

static const asyncrt_waker_vtable scope_waker_vtable;

static void sw_clone(const void *data, asyncrt_waker *out) {
  scope_ref((art_scope *)data);
  *out = (asyncrt_waker){data, &scope_waker_vtable};
}
static void sw_wake_by_ref(const void *data) {
  art_scope *s = (art_scope *)data;
  art_scope_cancel(s, add_sat(core_now(s->core), s->cleanup_ns), ART_CANCEL_DEADLINE);
}
static void sw_drop(const void *data) { art_scope_unref((art_scope *)data); }
static void sw_wake(const void *data) {
  sw_wake_by_ref(data);
  sw_drop(data);
}
static const asyncrt_waker_vtable scope_waker_vtable = {
    .clone = sw_clone, .wake = sw_wake, .wake_by_ref = sw_wake_by_ref, .drop = sw_drop};

static void scope_disarm(art_scope *s) {
  if (atomic_load(&s->flags) & ART_S_TIMER) art_timer_cancel(&s->timer);
}

/* Appends err (a reference taken) under the scope's lock. */
static void scope_add_error(art_scope *s, art_error *err) {
  if (s->nerrors == s->cap_errors) {
    uint32_t cap = s->cap_errors ? s->cap_errors * 2 : 4;
    art_error **grown = realloc(s->errors, cap * sizeof *grown);
    if (!grown) return; /* the status stays in s->status */
    s->errors = grown;
    s->cap_errors = cap;
  }
  art_error_ref(err);
  s->errors[s->nerrors++] = err;
}

/* ---- open ---------------------------------------------------------------------- */

int art_scope_open(art_exec *e, art_exec *top, art_task *owner, const asyncrt_scope_config *cfg,
                   art_scope **out) {
  if (atomic_load(&top->shutdown) || atomic_load(&e->shutdown))
    return art_fail(ASYNCRT_ESHUTDOWN, "the executor is shutting down");
  art_scope *s = calloc(1, sizeof *s);
  if (!s) return art_fail(ASYNCRT_ENOMEM, "could not allocate a scope");
  atomic_init(&s->refs, 1); /* the handle */
  uint32_t flags = 0;
  if (cfg->flags & ASYNCRT_SCOPE_COLLECT_ALL) flags |= ART_S_COLLECT;
  if (cfg->flags & ASYNCRT_SCOPE_SHIELD) flags |= ART_S_SHIELD;
  atomic_init(&s->flags, flags);
  s->cleanup_ns = cfg->cleanup_timeout_ns ? cfg->cleanup_timeout_ns : ASYNCRT_CLEANUP_DEFAULT_NS;
  atomic_init(&s->cancel_deadline, UINT64_MAX);
  if (cfg->name) snprintf(s->name, sizeof s->name, "%s", cfg->name);
  s->core = e;
  s->top = top;
  uint64_t now = core_now(e), own = UINT64_MAX, enclosing = UINT64_MAX;
  if (cfg->deadline_ns) own = cfg->deadline_ns;
  if (cfg->timeout_ns && add_sat(now, cfg->timeout_ns) < own) own = add_sat(now, cfg->timeout_ns);

  art_task_ext *ox = NULL;
  if (owner) {
    if (!(ox = art_task_ext_get(owner))) {
      free(s);
      return art_last_status();
    }
    art_lock_acquire(&ox->lock);
    if (ox->closed || (atomic_load(&owner->state) & ART_COMPLETE)) {
      art_lock_release(&ox->lock);
      free(s);
      return art_fail(ASYNCRT_ESCOPE, "task %llu has returned: it cannot open scopes", (unsigned long long)ox->id);
    }
    s->owner_next = ox->scopes;
    if (ox->scopes) ox->scopes->owner_prev = s;
    ox->scopes = s;
    s->owner_linked = 1;
    atomic_store_explicit(&ox->owns, 1, memory_order_relaxed);
    atomic_fetch_add(&s->refs, 1); /* the owner's link */
    art_task_ref(owner);
    s->owner = owner;
    s->owner_id = ox->id;
    /* Under the lock: the owner cannot have left its own scope yet. */
    if (!(flags & ART_S_SHIELD) && ox->scope) enclosing = ox->scope->deadline;
    art_lock_release(&ox->lock);
  }
  s->deadline = own < enclosing ? own : enclosing;

  art_lock_acquire(&e->lock);
  s->id = e->group ? (++e->next_id << 12 | e->index) : ++e->next_id;
  s->all_next = e->scopes_head;
  if (e->scopes_head) e->scopes_head->all_prev = s;
  e->scopes_head = s;
  e->headers++; /* the core outlives the scope */
  art_lock_release(&e->lock);

  if (!(s->handle = art_handle_new(ART_H_SCOPE, s))) {
    art_scope_free(s); /* unlinks and gives everything back */
    return art_fail(ASYNCRT_ENOMEM, "could not allocate a scope handle");
  }
  *out = s;

  /* An owner already cancelled (its scopes were cancelled before this one
   * existed) cancels this one now. */
  if (owner && !(flags & ART_S_SHIELD) && (atomic_load(&owner->state) & ART_CANCEL) &&
      atomic_load_explicit(&ox->cancel_flag, memory_order_acquire))
    art_scope_cancel(s, 1, ART_CANCEL_OWNER);

  /* Only a deadline earlier than the enclosing one needs a timer: the
   * enclosing scope's cancels this one through its owner otherwise. */
  if (own < enclosing) {
    if (own <= now) {
      art_scope_cancel(s, add_sat(now, s->cleanup_ns), ART_CANCEL_DEADLINE);
    } else {
      atomic_fetch_or(&s->flags, ART_S_TIMER);
      asyncrt_context cx = {.waker = {s, &scope_waker_vtable}, .exec = e};
      if (art_timer_poll(&s->timer, &cx, own) == ASYNCRT_POLL_READY)
        art_scope_cancel(s, add_sat(now, s->cleanup_ns), ART_CANCEL_DEADLINE);
      else if (atomic_load(&e->driver) != art_thread_token() && !e->is_foreign)
        art_exec_wake_driver(e); /* its sleep bound may be later than this deadline */
    }
  }
  return ASYNCRT_OK;
}

/* ---- spawn, children's end ------------------------------------------------------ */

int art_scope_spawn(art_scope *s, const asyncrt_future *fut, unsigned flags,
                    const asyncrt_task_storage *storage, art_task **out) {
  art_exec *target = s->core;
  unsigned placed = flags & (ASYNCRT_SPAWN_SEND | ~0xffu);
  if (s->top->group && (placed || !s->owner)) {
    target = art_group_place(s->top->group, flags);
    if (!target) {
      art_drop_future(fut);
      return art_last_status();
    }
  }
  return art_exec_spawn_scoped(target, fut, flags, storage, out, s);
}

static void owner_unlink(art_scope *s);

/* Child t (ext x) of s finished with status, after its drop. */
static void scope_child_done(art_scope *s, art_task *t, art_task_ext *x, int status) {
  art_error *err = NULL;
  if (status != ASYNCRT_OK && status != ASYNCRT_ECANCELLED) {
    if (x->error) {
      err = x->error;
      art_error_ref(err);
    } else {
      err = art_error_new(status, x->id, NULL, NULL, NULL);
    }
  }
  int first = 0;
  asyncrt_waker w = {0};
  art_lock_acquire(&s->lock);
  if (status != ASYNCRT_OK && status != ASYNCRT_ECANCELLED) {
    if (err) scope_add_error(s, err);
    if (!s->status) {
      s->status = status;
      first = 1;
    }
  }
  if (x->sib_prev) art_task_ext_of(x->sib_prev)->sib_next = x->sib_next;
  else s->children = x->sib_next;
  if (x->sib_next) art_task_ext_of(x->sib_next)->sib_prev = x->sib_prev;
  if (s->cursor == t) s->cursor = x->sib_next;
  int last = --s->live == 0;
  if (last) {
    w = s->join_waker;
    s->join_waker = (asyncrt_waker){0};
  }
  /* After the unlock, only the last child owns a reference (the children's);
   * the first error's cancel needs one of its own. */
  int cancel = first && !(atomic_load(&s->flags) & ART_S_COLLECT);
  if (cancel && !last) scope_ref(s);
  art_task *owner = s->owner;
  art_lock_release(&s->lock);
  if (err) art_error_unref(err);
  art_waker_wake(&w);
  if (cancel) {
    art_scope_cancel(s, add_sat(core_now(s->core), s->cleanup_ns), ART_CANCEL_ERROR);
    if (!last) art_scope_unref(s);
  }
  if (last) {
    /* A freed scope stayed in its owner's list for its children: the last
     * one takes it out (after the live count it read under the lock). */
    if (owner && (atomic_load(&s->flags) & ART_S_FREED)) owner_unlink(s);
    if (owner) {
      art_task_ext *ox = art_task_ext_of(owner);
      if (atomic_fetch_sub(&ox->busy, 1) == 1 && (atomic_load(&owner->state) & ART_CANCEL))
        art_task_schedule(owner);
    }
    art_scope_unref(s); /* the children's reference */
  }
}

/* ---- join ---------------------------------------------------------------------------- */

/* The outcome of a scope whose children are gone (under its lock). */
static int scope_outcome(art_scope *s) {
  if (s->status) return s->status;
  if (atomic_load(&s->flags) & ART_S_CANCELLED) return ASYNCRT_ECANCELLED;
  return ASYNCRT_OK;
}

static int join_poll(void *self, asyncrt_context *cx, void *out) {
  (void)out;
  art_scope *s = self;
  asyncrt_waker mine = {0};
  for (;;) {
    art_lock_acquire(&s->lock);
    if (!s->live) break;
    if (art_waker_will_wake(&s->join_waker, &cx->waker)) {
      art_lock_release(&s->lock);
      art_waker_drop(&mine);
      return ASYNCRT_POLL_PENDING;
    }
    if (mine.vtable) { /* swap in the clone made outside the lock */
      asyncrt_waker old = s->join_waker;
      s->join_waker = mine;
      art_lock_release(&s->lock);
      art_waker_drop(&old);
      return ASYNCRT_POLL_PENDING;
    }
    /* A clone runs the caller's code: never under the lock. */
    art_lock_release(&s->lock);
    art_waker_clone(&cx->waker, &mine);
  }
  atomic_fetch_or(&s->flags, ART_S_CLOSED);
  int status = scope_outcome(s);
  art_lock_release(&s->lock);
  art_waker_drop(&mine);
  scope_disarm(s);
  if (status == ASYNCRT_OK) return ASYNCRT_POLL_READY;
  cx->failure = status;
  return ASYNCRT_POLL_ERROR;
}

static void join_drop(void *self) {
  art_scope *s = self;
  art_lock_acquire(&s->lock);
  asyncrt_waker w = s->join_waker;
  s->join_waker = (asyncrt_waker){0};
  art_lock_release(&s->lock);
  art_waker_drop(&w);
  art_scope_unref(s);
}

static const asyncrt_future_vtable join_vtable = {
    .size = sizeof join_vtable, .output_size = 0, .poll = join_poll, .drop = join_drop};

int art_scope_join(art_scope *s, asyncrt_future *out) {
  if (atomic_fetch_or(&s->flags, ART_S_JOINED) & ART_S_JOINED)
    return art_fail(ASYNCRT_EBUSY, "scope %llu already has its join future", (unsigned long long)s->id);
  scope_ref(s);
  out->self = s;
  out->vtable = &join_vtable;
  return ASYNCRT_OK;
}

int art_scope_status(art_scope *s) {
  art_lock_acquire(&s->lock);
  uint32_t f = atomic_load(&s->flags);
  int status = s->live || !(f & (ART_S_CLOSED | ART_S_CANCELLED)) ? ASYNCRT_EAGAIN : scope_outcome(s);
  art_lock_release(&s->lock);
  return status;
}

/* ---- cancel ---------------------------------------------------------------------- */

void art_scope_cancel(art_scope *s, uint64_t deadline, int reason) {
  scope_ref(s);
  /* A scope whose deadline was inherited from an enclosing one is
   * cancelled through its owner when that one fires: it timed out too. */
  if (reason == ART_CANCEL_OWNER && s->deadline != UINT64_MAX && core_now(s->core) >= s->deadline)
    reason = ART_CANCEL_DEADLINE;
  int lowered = deadline < atomic_min_u64(&s->cancel_deadline, deadline);
  art_error *dl = NULL;
  if (reason == ART_CANCEL_DEADLINE) {
    char msg[96];
    snprintf(msg, sizeof msg, "the deadline of scope %llu passed", (unsigned long long)s->id);
    dl = art_error_new(ASYNCRT_ETIMEDOUT, 0, msg, NULL, NULL);
  }
  art_lock_acquire(&s->lock);
  uint32_t f = atomic_load(&s->flags);
  int rewalk = 0;
  if (f & ART_S_CANCELLED) {
    /* Cancelled already: only a stronger (earlier) cleanup deadline has
     * anything to add, and its children must look again. One walk at a
     * time: a walk under way is told to go round once more. */
    if (!lowered || !s->live || (f & ART_S_AGAIN)) goto out_locked;
    if (f & ART_S_WALKING) {
      atomic_fetch_or(&s->flags, ART_S_AGAIN);
      goto out_locked;
    }
    rewalk = 1;
  } else if ((f & ART_S_CLOSED) && !s->live) {
    /* Nothing left to cancel once closed (joined) with no child. A deadline
     * that finds an open scope empty still cancels it: later spawns are
     * refused and the join reports ETIMEDOUT, as the header says. */
    goto out_locked;
  } else {
    atomic_fetch_or(&s->flags, ART_S_CANCELLED | (reason == ART_CANCEL_DEADLINE ? ART_S_DEADLINE : 0));
    if (dl) {
      scope_add_error(s, dl);
      if (!s->status) s->status = ASYNCRT_ETIMEDOUT;
    }
  }
  atomic_fetch_or(&s->flags, ART_S_WALKING);
  /* Each child gets CANCEL here, and is queued on its own core after the
   * lock: a bounded number per hold, the rest from the cursor, which a
   * finishing child moves past itself. A shielded child is not queued (its
   * shield's exit looks at CANCEL). Children that had CANCEL already (a
   * cancel of their own, or their future returned with live children) are
   * queued again when this cancel lowered the deadline: each looks at it
   * only when it runs, and one parked in a cleanup or waiting for its own
   * children would otherwise keep the weaker one. */
  art_task *cursor = s->children;
  for (;;) {
    art_task *batch = NULL;
    for (unsigned n = 0; cursor && n < WALK_CHUNK; n++) {
      art_task *c = cursor;
      art_task_ext *cxt = art_task_ext_of(c);
      cursor = cxt->sib_next;
      uint32_t old = atomic_fetch_or(&c->state, ART_CANCEL);
      if (!(old & (ART_COMPLETE | ART_SHIELD)) && (rewalk || lowered || !(old & ART_CANCEL))) {
        art_task_ref(c);
        cxt->cancel_next = batch;
        batch = c;
      }
    }
    s->cursor = cursor;
    art_lock_release(&s->lock);
    while (batch) {
      art_task *next = art_task_ext_of(batch)->cancel_next;
      art_task_schedule(batch);
      art_task_unref(batch);
      batch = next;
    }
    art_lock_acquire(&s->lock);
    cursor = s->cursor;
    if (!cursor) {
      if (!(atomic_load(&s->flags) & ART_S_AGAIN)) break;
      atomic_fetch_and(&s->flags, ~(uint32_t)ART_S_AGAIN);
      rewalk = 1;
      cursor = s->children;
      if (!cursor) break;
    }
  }
  atomic_fetch_and(&s->flags, ~(uint32_t)ART_S_WALKING);
  art_lock_release(&s->lock);
  if (dl) art_error_unref(dl);
  if (reason != ART_CANCEL_DEADLINE) scope_disarm(s);
  art_scope_unref(s);
  return;

out_locked:
  art_lock_release(&s->lock);
  if (dl) art_error_unref(dl);
  art_scope_unref(s);
}

/* ---- free --------------------------------------------------------------------------- */

/* Takes s out of its owner's list, dropping the link's reference, unless it
 * has live children: a scope stays in the list even after its handle is
 * freed while they live, for they are the owner's subtree, which the
 * owner's cancels must reach. */
static void owner_unlink(art_scope *s) {
  art_task_ext *ox = art_task_ext_of(s->owner);
  int unlinked = 0;
  art_lock_acquire(&ox->lock);
  if (s->owner_linked) {
    art_lock_acquire(&s->lock);
    int empty = !s->live;
    art_lock_release(&s->lock);
    if (empty) {
      if (s->owner_prev) s->owner_prev->owner_next = s->owner_next;
      else ox->scopes = s->owner_next;
      if (s->owner_next) s->owner_next->owner_prev = s->owner_prev;
      s->owner_linked = 0;
      unlinked = 1;
    }
  }
  art_lock_release(&ox->lock);
  if (unlinked) art_scope_unref(s);
}

void art_scope_free(art_scope *s) {
  uint32_t f = atomic_fetch_or(&s->flags, ART_S_FREED);
  if (!(f & ART_S_CLOSED)) art_scope_cancel(s, add_sat(core_now(s->core), s->cleanup_ns), ART_CANCEL_USER);
  /* With live children it stays linked; the last one unlinks it
   * (scope_child_done). */
  if (s->owner) owner_unlink(s);
  scope_disarm(s);
  art_scope_unref(s); /* the handle's */
}

/* ---- errors ------------------------------------------------------------------------ */

size_t art_scope_error_count(art_scope *s) {
  art_lock_acquire(&s->lock);
  size_t n = s->nerrors;
  art_lock_release(&s->lock);
  return n;
}

int art_scope_error_get(art_scope *s, size_t index, asyncrt_error_info *out) {
  art_lock_acquire(&s->lock);
  if (index >= s->nerrors) {
    size_t n = s->nerrors;
    art_lock_release(&s->lock);
    return art_fail(ASYNCRT_EINVAL, "scope %llu has %zu errors; there is no error %zu", (unsigned long long)s->id,
                    n, index);
  }
  art_error *err = s->errors[index];
  art_lock_release(&s->lock);
  asyncrt_error_info info = {.size = sizeof info, .status = err->status, .task_id = err->task_id,
                             .message = err->message[0] ? err->message : NULL, .value = err->value,
                             .value_free = err->value_free};
  art_copy_sized(out, out->size, &info, sizeof info);
  return ASYNCRT_OK;
}

/* ---- the owner's side: waiting for its scopes, its cancel, its cleanup ---------- */

/* Closes x's scopes that have no live child (with `all`, every scope: the
 * owner returned); returns how many still have live children. */
static unsigned close_scopes(art_task_ext *x, int all, art_scope **misuse, uint32_t *misuse_live) {
  unsigned waiting = 0;
  art_lock_acquire(&x->lock);
  x->closed = 1;
  for (art_scope *s = x->scopes; s; s = s->owner_next) {
    art_lock_acquire(&s->lock);
    uint32_t f = atomic_load(&s->flags);
    if (!s->live || all) atomic_fetch_or(&s->flags, ART_S_CLOSED);
    if (s->live) {
      waiting++;
      if (misuse && !*misuse && !(f & (ART_S_CANCELLED | ART_S_FREED))) {
        *misuse = s;
        *misuse_live = s->live;
      }
    }
    art_lock_release(&s->lock);
  }
  art_lock_release(&x->lock);
  return waiting;
}

/* Cancels x's scopes (not shielded ones unless `all`) with the cleanup
 * deadline given, or (deadline 0) each with its own cleanup time. */
static void cancel_scopes(art_task_ext *x, uint64_t deadline, int all) {
  art_scope *list = NULL;
  art_lock_acquire(&x->lock);
  for (art_scope *s = x->scopes; s; s = s->owner_next) {
    if (!all && (atomic_load(&s->flags) & ART_S_SHIELD)) continue;
    scope_ref(s);
    s->all_tmp = list;
    list = s;
  }
  art_lock_release(&x->lock);
  while (list) {
    art_scope *next = list->all_tmp;
    art_scope_cancel(list, deadline ? deadline : add_sat(core_now(list->core), list->cleanup_ns), ART_CANCEL_OWNER);
    art_scope_unref(list);
    list = next;
  }
}

/* Leaves t parked (OWNED cleared), or queued again if a wake came. */
static void park_or_requeue(art_exec *e, art_task *t, art_requeue_fn requeue) {
  if (art_task_lw(t, e)) { /* its driver: a plain flag (art.h, local wakes) */
    art_exec_park_lw(e, t);
    return;
  }
  uint32_t s = atomic_load_explicit(&t->state, memory_order_acquire);
  for (;;) {
    if (s & ART_NOTIFIED) {
      requeue(e, t);
      return;
    }
    if (atomic_compare_exchange_weak_explicit(&t->state, &s, s & ~(uint32_t)ART_OWNED, memory_order_acq_rel,
                                              memory_order_acquire))
      return;
  }
}

/* A task someone else holds (a handle, a join, a waker, a runnable) may get
 * a scope opened from another thread (asyncrt_scope_open_for) until its
 * driver closes its ext: so its driver closes it, under the ext's lock,
 * before the future's end is final. Plain tasks that never owned a scope
 * and that nobody else can reach skip all of this. */
static inline int may_gain_scopes(art_task *t, art_task_ext *x) {
  return (x && atomic_load_explicit(&x->owns, memory_order_relaxed)) ||
         (atomic_load_explicit(&t->state, memory_order_acquire) & ART_HANDLED);
}

int art_task_before_finish(art_exec *e, art_task *t, int status, art_requeue_fn requeue) {
  art_task_ext *x = art_task_ext_of(t);
  if (!may_gain_scopes(t, x)) return 0;
  if (!x && !(x = art_task_ext_get(t))) return 0; /* no memory for the ext: no scope could be opened either */
  art_scope *misuse = NULL;
  uint32_t misuse_live = 0;
  unsigned waiting = close_scopes(x, 1, &misuse, &misuse_live);
  if (!waiting && !atomic_load(&x->busy)) return 0;
  asyncrt_context *cx = art_tls_cx;
  art_error *err = take_rich(cx, t, status);
  if (status == ASYNCRT_OK && misuse) {
    char msg[160];
    snprintf(msg, sizeof msg, "task %llu returned while scope %llu had %u live children", (unsigned long long)x->id,
             (unsigned long long)misuse->id, misuse_live);
    art_fail(ASYNCRT_ESCOPE, "%s", msg);
    status = ASYNCRT_ESCOPE;
    if (err) art_error_unref(err);
    err = art_error_new(status, x->id, msg, NULL, NULL);
  }
  if (err) {
    err->task_id = x->id;
    if (x->error) art_error_unref(x->error);
    x->error = err;
  }
  x->final_status = status;
  x->completing = 1;
  x->phase = ART_PHASE_COMPLETING;
  /* Its children get their scopes' own cleanup time below; a cancel of the
   * task that comes later and asks for less (a synchronous one: none) is
   * still sent to them (art_task_cancel_slow). */
  if (!x->cancel_seen) x->sent_deadline = UINT64_MAX;
  x->cancel_seen = 1;
  atomic_store_explicit(&x->cancel_flag, 1, memory_order_release);
  /* Its future has returned: a shield section left open has nothing to
   * shield any more, and must not get the future polled again. */
  x->shield = 0;
  atomic_fetch_and(&t->state, ~(uint32_t)ART_SHIELD);
  uint32_t before = atomic_fetch_or(&t->state, ART_CANCEL); /* seq_cst: pairs with busy */
  /* A synchronous cancel that came during the poll, while the task had no
   * ext yet, left only CANCEL (the ext was made with no deadline asked):
   * it asked for no cleanup, and its subtree must learn so below. Any other
   * cancel sets a deadline first (its own, or its scope's). */
  if ((before & ART_CANCEL) && atomic_load(&x->cancel_deadline) == UINT64_MAX &&
      (!x->scope || atomic_load(&x->scope->cancel_deadline) == UINT64_MAX))
    atomic_store(&x->cancel_deadline, 1);
  cancel_scopes(x, 0, 1); /* each scope's children get its own cleanup time */
  art_task_cancel_slow(e, t, cx, requeue);
  return 1;
}

int art_task_cancel_slow(art_exec *e, art_task *t, asyncrt_context *cx, art_requeue_fn requeue) {
  art_task_ext *x = art_task_ext_of(t);
  if (!x && may_gain_scopes(t, x)) x = art_task_ext_get(t);
  if (!x) {
    if (ART_OPS(atomic_load(&t->state))) return art_task_park_cancelled(e, t, ASYNCRT_ECANCELLED);
    art_task_finish(e, t, ASYNCRT_ECANCELLED);
    return 0;
  }
  int imm = atomic_load_explicit(&e->immediate, memory_order_relaxed);
  uint64_t d = atomic_load(&x->cancel_deadline);
  if (x->scope) {
    uint64_t sd = atomic_load(&x->scope->cancel_deadline);
    if (sd < d) d = sd;
  }
  /* Nobody offered time: drop now. A task completing (its future returned
   * with live children) carries CANCEL for its own sake, so there only a
   * cancel someone asked for counts. */
  if (imm || (d == UINT64_MAX && !x->completing)) d = 1;
  if (!x->cancel_seen) {
    x->cancel_seen = 1;
    atomic_store_explicit(&x->cancel_flag, 1, memory_order_release);
    x->sent_deadline = d;
    cancel_scopes(x, d, imm);
  } else if (imm || d < x->sent_deadline) {
    /* A stronger cancel came: its subtree learns the earlier deadline. */
    x->sent_deadline = d;
    cancel_scopes(x, d, imm); /* with imm, shielded scopes too */
  }
  /* The subtree first: wait until every scope has lost its last child (the
   * last one schedules this task), and close them so none gains another. */
  if ((may_gain_scopes(t, x) && close_scopes(x, x->completing, NULL, NULL)) || atomic_load(&x->busy)) {
    if (!x->completing) x->phase = ART_PHASE_WAIT;
    park_or_requeue(e, t, requeue);
    return 0;
  }
  int status = x->completing ? x->final_status : x->cleanup_status ? x->cleanup_status : ASYNCRT_ECANCELLED;
  const asyncrt_future_vtable *vt = t->fut.vtable;
  if (!x->completing && !x->cleanup_done && d > 1 &&
      vt->size >= offsetof(asyncrt_future_vtable, cleanup) + sizeof vt->cleanup && vt->cleanup) {
    if (core_now(e) < d) {
      if (x->phase != ART_PHASE_CLEANUP) {
        x->phase = ART_PHASE_CLEANUP;
        atomic_fetch_or(&t->state, ART_CLEANUP); /* its ops are left alone */
      }
      cx->waker.data = t;
      cx->poll_flags = 0;
      int r = vt->cleanup(t->fut.self, cx);
      if (r == ASYNCRT_POLL_PENDING || r == ASYNCRT_POLL_YIELDED) {
        if (!x->cleanup_timer) x->cleanup_timer = calloc(1, sizeof *x->cleanup_timer);
        if (x->cleanup_timer && art_timer_poll(x->cleanup_timer, cx, d) == ASYNCRT_POLL_PENDING) {
          if (cx->notified || r == ASYNCRT_POLL_YIELDED) requeue(e, t);
          else park_or_requeue(e, t, requeue);
          return 1;
        }
        /* The deadline passed (or no timer could be had): drop it now. */
      } else if (r == ASYNCRT_POLL_ERROR) {
        int f = cx->failure ? cx->failure : ASYNCRT_EFAILED;
        if (f != ASYNCRT_ECANCELLED) {
          /* Kept in the ext: ops still in flight may park the task first. */
          status = x->cleanup_status = f;
          art_error *err = take_rich(cx, t, f);
          if (err) {
            err->task_id = x->id;
            if (x->error) art_error_unref(x->error);
            x->error = err;
          }
        }
      }
    }
    x->cleanup_done = 1;
  }
  if (x->cleanup_timer) {
    art_timer_cancel(x->cleanup_timer);
    free(x->cleanup_timer);
    x->cleanup_timer = NULL;
  }
  if (atomic_load(&t->state) & ART_CLEANUP) atomic_fetch_and(&t->state, ~(uint32_t)ART_CLEANUP);
  if (ART_OPS(atomic_load(&t->state))) return art_task_park_cancelled(e, t, status);
  art_task_finish(e, t, status);
  return 0;
}

int art_task_cancel_deadline(art_task *t, uint64_t timeout_ns) {
  if (!timeout_ns) return art_task_cancel(t);
  art_task_ext *x = art_task_ext_get(t);
  if (!x) return art_task_cancel(t); /* no room for a deadline: the sync cancel still works */
  atomic_min_u64(&x->cancel_deadline, add_sat(core_now(t->exec), timeout_ns));
  uint32_t s = atomic_fetch_or(&t->state, ART_CANCEL);
  if (!(s & (ART_COMPLETE | ART_SHIELD))) art_task_schedule(t);
  return ASYNCRT_OK;
}

/* ---- finish -------------------------------------------------------------------------- */

void art_task_finish_ext(art_exec *e, art_task *t, int status) {
  asyncrt_context *cx = art_tls_cx;
  art_task_ext *x = art_task_ext_of(t);
  art_error *rich = take_rich(cx, t, status);
  if (rich && !x && !(x = art_task_ext_get(t))) {
    art_error_unref(rich);
    rich = NULL;
  }
  if (x) {
    if (rich) {
      rich->task_id = x->id;
      if (x->error) art_error_unref(x->error);
      x->error = rich;
    } else if (status != ASYNCRT_OK && status != ASYNCRT_ECANCELLED && !x->error) {
      x->error = art_error_new(status, x->id, NULL, NULL, NULL);
    }
    if (x->cleanup_timer) {
      art_timer_cancel(x->cleanup_timer);
      free(x->cleanup_timer);
      x->cleanup_timer = NULL;
    }
    /* Its scopes lose their owner: closed (an owner finishing with live
     * children happens only in an executor's shutdown), and unlinked. */
    /* A task that never opened a scope and has no handle (through which
     * asyncrt_scope_open_for could open one now) skips the lock. */
    art_scope *list = NULL;
    if (!atomic_load_explicit(&x->owns, memory_order_relaxed) &&
        atomic_load_explicit(&t->refs, memory_order_acquire) == 1)
      goto unowned;
    art_lock_acquire(&x->lock);
    x->closed = 1;
    list = x->scopes;
    x->scopes = NULL;
    for (art_scope *s = list; s; s = s->owner_next) {
      s->owner_linked = 0;
      atomic_fetch_or(&s->flags, ART_S_CLOSED);
    }
    art_lock_release(&x->lock);
    while (list) {
      art_scope *next = list->owner_next;
      list->owner_next = list->owner_prev = NULL;
      art_scope_unref(list);
      list = next;
    }
  unowned:;
  }
  /* A child that someone can ask about (a handle, a join) is complete
   * before its scope learns it is gone: whoever the scope's join wakes sees
   * its status. */
  if (x && x->scope && (atomic_load_explicit(&t->state, memory_order_relaxed) & (ART_HANDLED | ART_JOINED))) {
    art_task_complete(t, status);
    scope_child_done(x->scope, t, x, status);
    art_task_unref(t);
    return;
  }
  if (x && x->scope) {
    scope_child_done(x->scope, t, x, status);
    /* Unlinked, nothing can reach the child but its own references: with
     * only the executor's left (no handle, join or waker), it is freed
     * without a CAS or an atomic decrement, as plain tasks are. */
    if (atomic_load_explicit(&t->refs, memory_order_acquire) == 1 && !(t->flags & ART_TF_CALLER) &&
        !(atomic_load_explicit(&t->state, memory_order_relaxed) & ART_JOINED)) {
      if (x->error) art_error_unref(x->error);
      x->error = NULL;
      if (x->name) { /* only this driver writes it now; a dump may read it */
        art_lock_acquire(&x->lock);
        char *name = x->name;
        x->name = NULL;
        art_lock_release(&x->lock);
        free(name);
      }
      __atomic_store_n(&t->status, status, __ATOMIC_RELAXED); /* for the stats, as in art_task_finish */
      art_exec_retire_from(e, t);
      return;
    }
  }
  art_task_complete(t, status);
  art_task_unref(t);
}
