/* art_dump.c -- a snapshot of an executor's task tree, as text or JSON.
 *
 * Taken without stopping the workers: records are copied under each core's
 * lock at most DUMP_CHUNK at a time, from a cursor that a task leaving the
 * live list (or a scope being freed) moves past itself. So the snapshot is
 * consistent per task, not as a whole: a task spawned during the dump may be
 * missing, and a parent may have finished since its child was copied (it is
 * then shown as finished). One dump runs at a time.
 *
 * "Waits on" edges are found from the other end: a join waker, a scope's
 * join waker or an operation's submitter names the task that waits.
 */
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "art.h"

#define DUMP_CHUNK 256u

enum { WAIT_NONE = 0, WAIT_TASK = 1, WAIT_SCOPE = 2, WAIT_OP = 3 };

typedef struct task_rec {
  uint64_t id, scope;
  uint64_t waits_id; /* task or scope id; opcode for an op */
  char waits_sub[32];
  int waits;
  unsigned worker;
  uint32_t state;
  uint8_t phase, completing, has_ext;
  char name[ART_NAME_MAX];
} task_rec;

typedef struct scope_rec {
  uint64_t id, owner, deadline, waiter;
  uint32_t flags, live, nerrors;
  int status;
  char name[ART_NAME_MAX];
} scope_rec;

typedef struct dump {
  task_rec *tasks;
  size_t ntasks, cap_tasks;
  scope_rec *scopes;
  size_t nscopes, cap_scopes;
  /* edges found from the waiting side's object: waiter -> (kind, id) */
  struct edge { uint64_t waiter, id; int kind; uint32_t opcode; char sub[32]; } *edges;
  size_t nedges, cap_edges;
  char *out;
  size_t len, cap;
  int oom;
} dump;

static void *grow(void *p, size_t *cap, size_t n, size_t elem, int *oom) {
  if (n < *cap) return p;
  size_t c = *cap ? *cap * 2 : 64;
  void *q = realloc(p, c * elem);
  if (!q) {
    *oom = 1;
    return NULL;
  }
  *cap = c;
  return q;
}

static void add_edge(dump *d, uint64_t waiter, int kind, uint64_t id, uint32_t opcode, const char *sub) {
  struct edge *e = grow(d->edges, &d->cap_edges, d->nedges, sizeof *e, &d->oom);
  if (!e) return;
  d->edges = e;
  struct edge *x = &d->edges[d->nedges++];
  x->waiter = waiter;
  x->kind = kind;
  x->id = id;
  x->opcode = opcode;
  snprintf(x->sub, sizeof x->sub, "%s", sub ? sub : "");
}

/* The id of the task a waker belongs to, if it is an asyncrt task waker. */
static uint64_t waker_task(const asyncrt_waker *w) {
  return w->vtable == &art_task_waker_vtable && w->data ? art_task_id((const art_task *)w->data) : 0;
}

static void copy_task(dump *d, art_task *t) {
  task_rec *r = grow(d->tasks, &d->cap_tasks, d->ntasks, sizeof *r, &d->oom);
  if (!r) return;
  d->tasks = r;
  r = &d->tasks[d->ntasks++];
  memset(r, 0, sizeof *r);
  r->id = art_task_id(t);
  r->state = atomic_load_explicit(&t->state, memory_order_acquire);
  art_exec *ex = __atomic_load_n(&t->exec, __ATOMIC_RELAXED); /* a steal may move it */
  r->worker = ex ? ex->index : 0;
  /* A local-wake task stays OWNED: whether it is queued is in its status. */
  if (ex && art_task_lw(t, ex) && !(r->state & ART_COMPLETE) && art_ls_get(t) == ART_LS_IDLE)
    r->state &= ~(uint32_t)ART_OWNED;
  art_task_ext *x = art_task_ext_of(t);
  if (x) {
    r->has_ext = 1;
    r->scope = x->scope_id;
    r->phase = atomic_load_explicit(&x->phase, memory_order_relaxed);
    r->completing = atomic_load_explicit(&x->completing, memory_order_relaxed);
    art_lock_acquire(&x->lock);
    if (x->name) snprintf(r->name, sizeof r->name, "%s", x->name);
    art_lock_release(&x->lock);
  }
  /* Who waits on this task's join: under the join lock bit. */
  if (r->state & ART_JOINED) {
    uint32_t s = atomic_load_explicit(&t->state, memory_order_relaxed);
    for (;;) {
      if (s & ART_JOIN_LOCK) {
        s = atomic_load_explicit(&t->state, memory_order_relaxed);
        continue;
      }
      if (atomic_compare_exchange_weak(&t->state, &s, s | ART_JOIN_LOCK)) break;
    }
    uint64_t waiter = waker_task(&t->join_waker);
    atomic_fetch_and(&t->state, ~(uint32_t)ART_JOIN_LOCK);
    if (waiter) add_edge(d, waiter, WAIT_TASK, r->id, 0, NULL);
  }
}

static void copy_scope(dump *d, art_scope *s) {
  scope_rec *r = grow(d->scopes, &d->cap_scopes, d->nscopes, sizeof *r, &d->oom);
  if (!r) return;
  d->scopes = r;
  r = &d->scopes[d->nscopes++];
  memset(r, 0, sizeof *r);
  r->id = s->id;
  r->owner = s->owner_id;
  snprintf(r->name, sizeof r->name, "%s", s->name);
  art_lock_acquire(&s->lock);
  r->flags = atomic_load(&s->flags);
  r->live = s->live;
  r->nerrors = s->nerrors;
  r->status = s->status;
  r->deadline = s->deadline;
  uint64_t waiter = waker_task(&s->join_waker);
  art_lock_release(&s->lock);
  if (waiter) add_edge(d, waiter, WAIT_SCOPE, r->id, 0, NULL);
}

static void op_edge(void *user, uint64_t task_id, const char *sub, uint32_t opcode) {
  add_edge(user, task_id, WAIT_OP, 0, opcode, sub);
}

static void snapshot_core(dump *d, art_exec *e) {
  art_lock_acquire(&e->lock);
  e->dump_cursor = e->live_head;
  while (e->dump_cursor && !d->oom) {
    for (unsigned n = 0; e->dump_cursor && n < DUMP_CHUNK; n++) {
      copy_task(d, e->dump_cursor);
      e->dump_cursor = e->dump_cursor->live_next;
    }
    art_lock_release(&e->lock); /* let the workers in */
    art_lock_acquire(&e->lock);
  }
  e->dump_cursor = NULL;
  e->dump_scope_cursor = e->scopes_head;
  while (e->dump_scope_cursor && !d->oom) {
    for (unsigned n = 0; e->dump_scope_cursor && n < DUMP_CHUNK; n++) {
      copy_scope(d, e->dump_scope_cursor);
      e->dump_scope_cursor = e->dump_scope_cursor->all_next;
    }
    art_lock_release(&e->lock);
    art_lock_acquire(&e->lock);
  }
  e->dump_scope_cursor = NULL;
  art_lock_release(&e->lock);
  if (!art_tls_subsys) art_subsys_dump_ops(e, op_edge, d, DUMP_CHUNK); /* subs_lock is held in callbacks */
}

/* ---- rendering --------------------------------------------------------------------- */

static void put(dump *d, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(dump *d, const char *fmt, ...) {
  for (;;) {
    va_list ap;
    va_start(ap, fmt);
    size_t room = d->cap - d->len;
    int n = vsnprintf(d->out ? d->out + d->len : NULL, d->out ? room : 0, fmt, ap);
    va_end(ap);
    if (n < 0) return;
    if (d->out && (size_t)n < room) {
      d->len += (size_t)n;
      return;
    }
    size_t cap = d->cap ? d->cap : 4096;
    while (cap - d->len <= (size_t)n) cap *= 2;
    char *o = realloc(d->out, cap);
    if (!o) {
      d->oom = 1;
      return;
    }
    d->out = o;
    d->cap = cap;
  }
}

static void put_json_str(dump *d, const char *s) {
  put(d, "\"");
  for (; *s; s++) {
    unsigned char c = (unsigned char)*s;
    if (c == '"' || c == '\\') put(d, "\\%c", c);
    else if (c < 0x20) put(d, "\\u%04x", c);
    else put(d, "%c", c);
  }
  put(d, "\"");
}

static const char *task_state(const task_rec *r) {
  if (r->completing) return "completing";
  if (r->phase == ART_PHASE_CLEANUP) return "cleanup";
  if (r->state & ART_CANCEL) return "cancelling";
  if (r->state & ART_OWNED) return "running";
  return "waiting";
}

static const char *scope_state(const scope_rec *r) {
  if (r->flags & ART_S_CANCELLED) return r->live ? "cancelling" : "cancelled";
  if (r->flags & ART_S_CLOSED) return "closed";
  return "open";
}

static int by_waiter(const void *a, const void *b) {
  uint64_t x = ((const struct edge *)a)->waiter, y = ((const struct edge *)b)->waiter;
  return x < y ? -1 : x > y;
}

/* Edges are sorted by waiter before rendering. */
static struct edge *edge_of(dump *d, uint64_t task) {
  size_t lo = 0, hi = d->nedges;
  while (lo < hi) {
    size_t mid = (lo + hi) / 2;
    if (d->edges[mid].waiter < task) lo = mid + 1;
    else hi = mid;
  }
  return lo < d->nedges && d->edges[lo].waiter == task ? &d->edges[lo] : NULL;
}

static int by_scope(const void *a, const void *b) {
  uint64_t x = ((const task_rec *)a)->scope, y = ((const task_rec *)b)->scope;
  return x < y ? -1 : x > y;
}
static int by_owner(const void *a, const void *b) {
  uint64_t x = ((const scope_rec *)a)->owner, y = ((const scope_rec *)b)->owner;
  return x < y ? -1 : x > y;
}

static void render_json(dump *d) {
  put(d, "{\"tasks\":[");
  for (size_t i = 0; i < d->ntasks; i++) {
    task_rec *r = &d->tasks[i];
    put(d, "%s{\"id\":%llu,\"name\":", i ? "," : "", (unsigned long long)r->id);
    if (r->name[0]) put_json_str(d, r->name);
    else put(d, "null");
    put(d, ",\"state\":\"%s\",\"worker\":%u,\"scope\":", task_state(r), r->worker);
    if (r->scope) put(d, "%llu", (unsigned long long)r->scope);
    else put(d, "null");
    struct edge *e = edge_of(d, r->id);
    if (!e) put(d, ",\"waits_on\":null}");
    else if (e->kind == WAIT_OP) {
      put(d, ",\"waits_on\":{\"kind\":\"op\",\"subsystem\":");
      put_json_str(d, e->sub);
      put(d, ",\"opcode\":%u}}", e->opcode);
    } else {
      put(d, ",\"waits_on\":{\"kind\":\"%s\",\"id\":%llu}}", e->kind == WAIT_TASK ? "task" : "scope",
          (unsigned long long)e->id);
    }
  }
  put(d, "],\"scopes\":[");
  for (size_t i = 0; i < d->nscopes; i++) {
    scope_rec *r = &d->scopes[i];
    put(d, "%s{\"id\":%llu,\"name\":", i ? "," : "", (unsigned long long)r->id);
    if (r->name[0]) put_json_str(d, r->name);
    else put(d, "null");
    put(d, ",\"owner\":");
    if (r->owner) put(d, "%llu", (unsigned long long)r->owner);
    else put(d, "null");
    put(d, ",\"policy\":\"%s\",\"shield\":%s,\"state\":\"%s\",\"live\":%u,\"errors\":%u,\"deadline_ns\":",
        (r->flags & ART_S_COLLECT) ? "collect_all" : "first_error", (r->flags & ART_S_SHIELD) ? "true" : "false",
        scope_state(r), r->live, r->nerrors);
    if (r->deadline != UINT64_MAX && r->deadline) put(d, "%llu", (unsigned long long)r->deadline);
    else put(d, "null");
    put(d, "}");
  }
  put(d, "]}\n");
}

/* Text: each root (a task without a scope, a scope without a known owner)
 * and below it what it owns, depth-first with an explicit stack. */
typedef struct node { int is_scope; size_t index; unsigned depth; } node;

static void text_task(dump *d, const task_rec *r, unsigned depth) {
  put(d, "%*stask %llu", (int)(depth * 2), "", (unsigned long long)r->id);
  if (r->name[0]) put(d, " \"%s\"", r->name);
  put(d, " w%u %s", r->worker, task_state(r));
  struct edge *e = edge_of(d, r->id);
  if (e && e->kind == WAIT_OP) put(d, ", waits on an op (opcode %u) of \"%s\"", e->opcode, e->sub);
  else if (e) put(d, ", waits on %s %llu", e->kind == WAIT_TASK ? "task" : "scope", (unsigned long long)e->id);
  put(d, "\n");
}

static void text_scope(dump *d, const scope_rec *r, unsigned depth, int orphan) {
  put(d, "%*sscope %llu", (int)(depth * 2), "", (unsigned long long)r->id);
  if (r->name[0]) put(d, " \"%s\"", r->name);
  put(d, " %s live=%u %s", (r->flags & ART_S_COLLECT) ? "collect_all" : "first_error", r->live, scope_state(r));
  if (r->flags & ART_S_SHIELD) put(d, " shield");
  if (r->deadline != UINT64_MAX && r->deadline)
    put(d, " deadline=%llu.%09llu", (unsigned long long)(r->deadline / 1000000000u),
        (unsigned long long)(r->deadline % 1000000000u));
  if (r->nerrors) put(d, " errors=%u", r->nerrors);
  if (orphan) put(d, " (owner task %llu finished)", (unsigned long long)r->owner);
  put(d, "\n");
}

static int find_task(dump *d, uint64_t id) {
  for (size_t i = 0; i < d->ntasks; i++)
    if (d->tasks[i].id == id) return 1;
  return 0;
}
static int find_scope(dump *d, uint64_t id) {
  for (size_t i = 0; i < d->nscopes; i++)
    if (d->scopes[i].id == id) return 1;
  return 0;
}

static void render_text(dump *d) {
  /* Sorted by parent, so each parent's children are one run. */
  if (d->ntasks) qsort(d->tasks, d->ntasks, sizeof *d->tasks, by_scope);
  if (d->nscopes) qsort(d->scopes, d->nscopes, sizeof *d->scopes, by_owner);
  node *stack = malloc((d->ntasks + d->nscopes + 1) * sizeof *stack);
  if (!stack) {
    d->oom = 1;
    return;
  }
  /* Each record prints once, so no snapshot can make the walk loop (ids
   * are unique in an executor, but a torn snapshot is not a tree). */
  uint8_t *seen = calloc(d->ntasks + d->nscopes + 1, 1);
  if (!seen) {
    free(stack);
    d->oom = 1;
    return;
  }
  put(d, "executor: %zu tasks, %zu scopes\n", d->ntasks, d->nscopes);
  /* Roots, pushed in reverse so they print in order. */
  size_t top = 0;
  /* A node is marked when pushed, so none is pushed twice. */
#define PUSH(scope, i, depth)                                                                      \
  do {                                                                                             \
    size_t key_ = (scope) ? d->ntasks + (i) : (i);                                                \
    if (!seen[key_]) {                                                                             \
      seen[key_] = 1;                                                                              \
      stack[top++] = (node){(scope), (i), (depth)};                                                \
    }                                                                                              \
  } while (0)
  for (size_t i = d->nscopes; i-- > 0;)
    if (!d->scopes[i].owner || !find_task(d, d->scopes[i].owner)) PUSH(1, i, 0);
  for (size_t i = d->ntasks; i-- > 0;)
    if (!d->tasks[i].scope || !find_scope(d, d->tasks[i].scope)) PUSH(0, i, 0);
  while (top) {
    node n = stack[--top];
    if (n.is_scope) {
      scope_rec *r = &d->scopes[n.index];
      text_scope(d, r, n.depth, r->owner && n.depth == 0);
      size_t lo = 0, hi = d->ntasks; /* the first task of this scope */
      while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (d->tasks[mid].scope < r->id) lo = mid + 1;
        else hi = mid;
      }
      size_t end = lo;
      while (end < d->ntasks && d->tasks[end].scope == r->id) end++;
      for (size_t i = end; i-- > lo;) PUSH(0, i, n.depth + 1);
    } else {
      task_rec *r = &d->tasks[n.index];
      if (n.depth == 0 && r->scope) put(d, "(scope %llu: finished or not seen)\n", (unsigned long long)r->scope);
      text_task(d, r, n.depth);
      size_t lo = 0, hi = d->nscopes;
      while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (d->scopes[mid].owner < r->id) lo = mid + 1;
        else hi = mid;
      }
      size_t end = lo;
      while (end < d->nscopes && d->scopes[end].owner == r->id) end++;
      for (size_t i = end; i-- > lo;) PUSH(1, i, n.depth + 1);
    }
  }
#undef PUSH
  free(seen);
  free(stack);
}

static pthread_mutex_t dump_mutex = PTHREAD_MUTEX_INITIALIZER;

/* Looks for `want` on the live lists of e's workers with a dump's cursor (so
 * each lock is held for at most DUMP_CHUNK tasks): found there, under the
 * lock, its header is alive, and its id and name are read. */
int art_exec_find_task(art_exec *e, const art_task *want, uint64_t *id, char *name, size_t cap) {
  int found = 0;
  pthread_mutex_lock(&dump_mutex); /* the cursors are one walk's */
  for (unsigned i = 0, n = art_exec_workers(e); i < n && !found; i++) {
    art_exec *c = art_exec_worker(e, i);
    art_lock_acquire(&c->lock);
    c->dump_cursor = c->live_head;
    while (c->dump_cursor && !found) {
      for (unsigned k = 0; c->dump_cursor && k < DUMP_CHUNK; k++) {
        art_task *t = c->dump_cursor;
        if (t == want) {
          found = 1;
          *id = art_task_id(t);
          art_task_ext *x = art_task_ext_of(t);
          if (x) {
            art_lock_acquire(&x->lock);
            if (x->name) snprintf(name, cap, "%s", x->name);
            art_lock_release(&x->lock);
          }
          break;
        }
        c->dump_cursor = t->live_next;
      }
      art_lock_release(&c->lock); /* let the workers in */
      art_lock_acquire(&c->lock);
    }
    c->dump_cursor = NULL;
    art_lock_release(&c->lock);
  }
  pthread_mutex_unlock(&dump_mutex);
  return found;
}

int art_exec_dump(art_exec **cores, unsigned n, unsigned format,
                  void (*write)(const char *, size_t, void *), void *user) {
  dump d = {0};
  pthread_mutex_lock(&dump_mutex); /* the cores' cursors are one dump's */
  for (unsigned i = 0; i < n; i++) snapshot_core(&d, cores[i]);
  pthread_mutex_unlock(&dump_mutex);
  if (!d.oom) {
    if (d.nedges) qsort(d.edges, d.nedges, sizeof *d.edges, by_waiter);
    if (format == ASYNCRT_DUMP_JSON) render_json(&d);
    else render_text(&d);
  }
  int status = ASYNCRT_OK;
  if (d.oom) status = art_fail(ASYNCRT_ENOMEM, "no memory for the dump");
  else write(d.out, d.len, user);
  free(d.tasks);
  free(d.scopes);
  free(d.edges);
  free(d.out);
  return status;
}
