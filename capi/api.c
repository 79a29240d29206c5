/* api.c -- the public asyncrt_* functions.
 *
 * Each checks for a forked child first (before anything can enter Go), then
 * validates its arguments. Per-task work (spawn, wake, join, cancel, host
 * queues) runs in the C data plane right here; control calls (executor
 * lifetime, driving, parking) go to the Go control plane through the
 * art_go_* exports. See runtime/doc.go for the design.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "../runtime/dataplane/art.h"
#include "_cgo_export.h"

#define REFUSE_IN_CHILD()                                                                          \
  do {                                                                                             \
    if (art_is_forked()) return art_fail_forked();                                                 \
  } while (0)
#define REFUSE_IN_CHILD_VOID()                                                                     \
  do {                                                                                             \
    if (art_is_forked()) {                                                                         \
      art_fail_forked();                                                                           \
      return;                                                                                      \
    }                                                                                              \
  } while (0)

/* ---- versions and errors --------------------------------------------------- */

unsigned asyncrt_version(void) { return ASYNCRT_VERSION_HEX; }
const char *asyncrt_version_string(void) { return ASYNCRT_VERSION_STRING; }

int asyncrt_check_version(unsigned header_version) {
  REFUSE_IN_CHILD();
  unsigned major = header_version >> 16, minor = (header_version >> 8) & 0xff;
  if (major != ASYNCRT_VERSION_MAJOR || minor > ASYNCRT_VERSION_MINOR)
    return art_fail(ASYNCRT_EVERSION, "compiled against asyncrt %u.%u.%u, loaded library is %s", major, minor,
                    header_version & 0xff, ASYNCRT_VERSION_STRING);
  return ASYNCRT_OK;
}

const char *asyncrt_status_str(int status) { return art_status_str(status); }
const char *asyncrt_last_error(void) { return art_last_error(); }
int asyncrt_last_status(void) { return art_last_status(); }

/* ---- futures and wakers ---------------------------------------------------- */

/* A vtable must cover size, output_size, poll and drop. */
#define VTABLE_MIN_SIZE (offsetof(asyncrt_future_vtable, drop) + sizeof(void (*)(void *)))

/* Validates a future handed to the runtime. On failure the future is dropped
 * when it can be (the caller gave it away), and the error is recorded. */
static int take_future(const asyncrt_future *fut, const char *who) {
  if (!fut) return art_fail(ASYNCRT_EINVAL, "%s: future is NULL", who);
  const asyncrt_future_vtable *vt = fut->vtable;
  if (!vt) return art_fail(ASYNCRT_EINVAL, "%s: future has no vtable", who);
  if (vt->size < VTABLE_MIN_SIZE)
    return art_fail(ASYNCRT_EINVAL, "%s: vtable size %zu is smaller than the minimum %zu", who, vt->size,
                    (size_t)VTABLE_MIN_SIZE);
  int status = ASYNCRT_OK;
  if (!vt->poll) status = art_fail(ASYNCRT_EINVAL, "%s: vtable has no poll function", who);
  else if (vt->output_size > ASYNCRT_OUTPUT_MAX)
    status = art_fail(ASYNCRT_EINVAL, "%s: output_size %zu exceeds ASYNCRT_OUTPUT_MAX (%u)", who,
                      vt->output_size, ASYNCRT_OUTPUT_MAX);
  if (status) art_drop_future(fut);
  return status;
}

const asyncrt_waker *asyncrt_context_waker(const asyncrt_context *cx) { return cx ? &cx->waker : NULL; }

asyncrt_executor *asyncrt_context_executor(const asyncrt_context *cx) {
  return cx && cx->exec ? (asyncrt_executor *)(uintptr_t)cx->exec->handle : NULL;
}

void asyncrt_context_fail(asyncrt_context *cx, int status) {
  if (cx && status) cx->failure = status;
}

int asyncrt_context_failure(const asyncrt_context *cx) { return cx ? cx->failure : 0; }

void asyncrt_waker_clone(const asyncrt_waker *w, asyncrt_waker *out) {
  REFUSE_IN_CHILD_VOID();
  if (!out) return;
  if (!w) *out = (asyncrt_waker){0};
  else art_waker_clone(w, out);
}

void asyncrt_waker_wake(asyncrt_waker *w) {
  REFUSE_IN_CHILD_VOID();
  if (w) art_waker_wake(w);
}

void asyncrt_waker_wake_by_ref(const asyncrt_waker *w) {
  REFUSE_IN_CHILD_VOID();
  if (!w) return;
  if (w->vtable == &art_task_waker_vtable) art_task_wake_by_ref((art_task *)w->data); /* skip a call */
  else art_waker_wake_by_ref(w);
}

void asyncrt_waker_drop(asyncrt_waker *w) {
  REFUSE_IN_CHILD_VOID();
  if (w) art_waker_drop(w);
}

int asyncrt_waker_will_wake(const asyncrt_waker *a, const asyncrt_waker *b) {
  return a && b && art_waker_will_wake(a, b);
}

int asyncrt_poll_with_waker(const asyncrt_future *fut, const asyncrt_waker *waker, void *out, int *failure) {
  REFUSE_IN_CHILD();
  if (!fut || !fut->vtable || !fut->vtable->poll || !waker) {
    art_fail(ASYNCRT_EINVAL, "asyncrt_poll_with_waker: future, its poll function and waker are required");
    return -ASYNCRT_EINVAL;
  }
  if (!out && fut->vtable->output_size) {
    art_fail(ASYNCRT_EINVAL, "asyncrt_poll_with_waker: out is NULL but the future has %zu bytes of output",
             fut->vtable->output_size);
    return -ASYNCRT_EINVAL;
  }
  asyncrt_context cx = {.waker = *waker, .exec = NULL, .failure = 0};
  int r = fut->vtable->poll(fut->self, &cx, out);
  if (r == ASYNCRT_POLL_ERROR && failure) *failure = cx.failure ? cx.failure : ASYNCRT_EFAILED;
  return r;
}

/* ---- executors ------------------------------------------------------------- */

void asyncrt_executor_config_init(asyncrt_executor_config *cfg) {
  if (cfg)
    *cfg = (asyncrt_executor_config){.size = sizeof *cfg, .kind = ASYNCRT_EXECUTOR_LOCAL, .spin_ns = 20000};
}

/* Copies the fields `size` covers over the defaults. */
static void config_read(const asyncrt_executor_config *cfg, asyncrt_executor_config *c) {
  size_t n = cfg->size < sizeof *c ? cfg->size : sizeof *c;
  memcpy((char *)c + sizeof c->size, (const char *)cfg + sizeof c->size, n - sizeof c->size);
  c->size = sizeof *c;
}

int asyncrt_executor_new(const asyncrt_executor_config *cfg, asyncrt_executor **out) {
  REFUSE_IN_CHILD();
  if (!out) return art_fail(ASYNCRT_EINVAL, "asyncrt_executor_new: out is NULL");
  *out = NULL;
  asyncrt_executor_config c;
  asyncrt_executor_config_init(&c);
  if (cfg) {
    if (cfg->size < offsetof(asyncrt_executor_config, allocator) + sizeof(void *))
      return art_fail(ASYNCRT_EINVAL, "asyncrt_executor_new: config size %zu is too small (set it to sizeof)",
                      cfg->size);
    config_read(cfg, &c);
  }
  if (c.allocator) {
    const asyncrt_allocator *a = c.allocator;
    if (a->size < sizeof(asyncrt_allocator) || !a->alloc || !a->free)
      return art_fail(ASYNCRT_EINVAL, "asyncrt_executor_new: allocator needs size, alloc and free");
  }
  if (c.flags & ~ASYNCRT_EXECUTOR_PIN)
    return art_fail(ASYNCRT_EINVAL, "asyncrt_executor_new: unknown flags %#x", c.flags);
  if (c.hooks && c.hooks->size < sizeof(asyncrt_thread_hooks))
    return art_fail(ASYNCRT_EINVAL, "asyncrt_executor_new: hooks size %zu is too small", c.hooks->size);
  uintptr_t h = 0;
  int rc = art_go_executor_new(&c, &h);
  if (!rc) *out = (asyncrt_executor *)h;
  return rc;
}

int asyncrt_executor_free(asyncrt_executor *ex) {
  REFUSE_IN_CHILD();
  return ex ? art_go_executor_free((uintptr_t)ex) : ASYNCRT_OK;
}

static int resolve_exec(asyncrt_executor *ex, art_exec **e) {
  return art_handle_resolve(ex, ART_H_EXEC, "executor", (void **)e);
}

static int resolve_task(asyncrt_task *task, art_task **t) {
  return art_handle_resolve(task, ART_H_TASK, "task", (void **)t);
}

static int is_local(const art_exec *e) { return !e->group && !e->is_foreign; }

static int not_supported(const char *what) {
  return art_fail(ASYNCRT_ENOTSUP, "%s is not supported by this kind of executor", what);
}

int asyncrt_executor_fd(asyncrt_executor *ex, int *fd) {
  REFUSE_IN_CHILD();
  art_exec *e;
  int rc = resolve_exec(ex, &e);
  if (rc) return rc;
  if (!fd) return art_fail(ASYNCRT_EINVAL, "asyncrt_executor_fd: fd is NULL");
  if (!is_local(e)) return not_supported("asyncrt_executor_fd");
  art_exec_use_fd(e);
  *fd = e->pollfd;
  return ASYNCRT_OK;
}

int asyncrt_executor_capabilities(asyncrt_executor *ex, unsigned *caps) {
  REFUSE_IN_CHILD();
  art_exec *e;
  int rc = resolve_exec(ex, &e);
  if (rc) return rc;
  if (!caps) return art_fail(ASYNCRT_EINVAL, "asyncrt_executor_capabilities: caps is NULL");
  unsigned common = ASYNCRT_CAP_SPAWN_LOCAL | ASYNCRT_CAP_SPAWN_SEND | ASYNCRT_CAP_TASK_REMOVAL;
  if (e->is_foreign) *caps = common;
  else if (e->group)
    *caps = common | ASYNCRT_CAP_BLOCK_ON | ASYNCRT_CAP_PLACEMENT | ASYNCRT_CAP_SHUTDOWN |
            (e->group->nworkers > 1 ? ASYNCRT_CAP_WORK_STEALING | ASYNCRT_CAP_MULTI_THREAD : 0);
  else *caps = common | ASYNCRT_CAP_STEPPED | ASYNCRT_CAP_BLOCK_ON | ASYNCRT_CAP_PLACEMENT;
  return ASYNCRT_OK;
}

int asyncrt_executor_shutdown(asyncrt_executor *ex, int mode, int64_t timeout_ns) {
  REFUSE_IN_CHILD();
  art_exec *e;
  int rc = resolve_exec(ex, &e);
  if (rc) return rc;
  if (!e->group) return not_supported("asyncrt_executor_shutdown");
  if (timeout_ns < 0 && timeout_ns != ASYNCRT_NO_TIMEOUT)
    return art_fail(ASYNCRT_EINVAL, "asyncrt_executor_shutdown: timeout %lld is negative", (long long)timeout_ns);
  return art_go_executor_shutdown((uintptr_t)ex, mode, timeout_ns);
}

int asyncrt_executor_stats_get(asyncrt_executor *ex, asyncrt_executor_stats *stats) {
  REFUSE_IN_CHILD();
  art_exec *e;
  int rc = resolve_exec(ex, &e);
  if (rc) return rc;
  if (!stats || stats->size < offsetof(asyncrt_executor_stats, workers))
    return art_fail(ASYNCRT_EINVAL, "asyncrt_executor_stats_get: stats is NULL or its size is too small");
  asyncrt_executor_stats sum = {0};
  unsigned n = e->group ? e->group->nworkers : 1;
  for (unsigned i = 0; i < n; i++) {
    asyncrt_executor_stats one;
    art_exec_stats(e->group ? e->group->workers[i] : e, &one);
    sum.tasks_spawned += one.tasks_spawned;
    sum.tasks_live += one.tasks_live;
    sum.polls += one.polls;
    sum.memory_in_use += one.memory_in_use;
    sum.memory_limit = one.memory_limit;
  }
  if (e->group) { /* the cap, and its count, live in the group */
    sum.memory_limit = e->group->mem_limit;
  }
  sum.workers = n;
  size_t size = stats->size < sizeof sum ? stats->size : sizeof sum;
  memcpy((char *)stats + sizeof sum.size, (char *)&sum + sizeof sum.size, size - sizeof sum.size);
  return ASYNCRT_OK;
}

int asyncrt_worker_stats_get(asyncrt_executor *ex, unsigned worker, asyncrt_worker_stats *stats) {
  REFUSE_IN_CHILD();
  art_exec *e;
  int rc = resolve_exec(ex, &e);
  if (rc) return rc;
  if (!stats || stats->size < sizeof *stats)
    return art_fail(ASYNCRT_EINVAL, "asyncrt_worker_stats_get: stats is NULL or its size is too small");
  unsigned n = e->group ? e->group->nworkers : 1;
  if (worker >= n) return art_fail(ASYNCRT_EINVAL, "worker %u: the executor has %u", worker, n);
  art_worker_stats(e->group ? e->group->workers[worker] : e, stats);
  return ASYNCRT_OK;
}

/* ---- tasks ----------------------------------------------------------------- */

size_t asyncrt_task_storage_size(size_t output_size) { return ASYNCRT_TASK_STORAGE_SIZE(output_size); }

/* Publishes a handle for a task spawned with a caller reference. */
static int publish_task(art_task *t, asyncrt_task **out) {
  uint64_t h = art_handle_new(ART_H_TASK, t);
  if (!h) {
    art_task_cancel(t); /* nobody could observe it: undo the spawn */
    art_task_unref(t);
    return art_fail(ASYNCRT_ENOMEM, "no memory for a task handle; the task was cancelled");
  }
  *out = (asyncrt_task *)(uintptr_t)h;
  return ASYNCRT_OK;
}

static int spawn_common(asyncrt_executor *ex, const asyncrt_future *fut, unsigned flags,
                        const asyncrt_task_storage *storage, asyncrt_task **out) {
  if (out) *out = NULL;
  int rc = take_future(fut, "asyncrt_spawn");
  if (rc) return rc;
  art_exec *e;
  if (!rc) rc = resolve_exec(ex, &e);
  if (!rc && (flags & ~(ASYNCRT_SPAWN_SEND | 0xffff00u)))
    rc = art_fail(ASYNCRT_EINVAL, "asyncrt_spawn: unknown flags %#x", flags);
  if (!rc && e->group && !(e = art_group_place(e->group, flags))) rc = ASYNCRT_EINVAL;
  if (!rc && !e->group && (flags & 0xffff00u) && (flags & 0xffff00u) != ASYNCRT_SPAWN_WORKER(0))
    rc = art_fail(ASYNCRT_EINVAL, "asyncrt_spawn: this executor has one worker (index 0)");
  if (!rc && storage) {
    size_t need = asyncrt_task_storage_size(fut->vtable->output_size);
    if (storage->size < sizeof *storage || !storage->memory || storage->length < need ||
        ((uintptr_t)storage->memory & (ASYNCRT_TASK_STORAGE_ALIGN - 1)))
      rc = art_fail(ASYNCRT_EINVAL,
                    "asyncrt_spawn_in: storage must be %u-aligned with at least %zu bytes (got %zu at %p)",
                    ASYNCRT_TASK_STORAGE_ALIGN, need, storage->length, storage->memory);
  }
  if (rc) {
    art_drop_future(fut);
    return rc;
  }
  art_task *t;
  rc = art_exec_spawn(e, fut, flags, storage, out ? &t : NULL);
  if (rc || !out) return rc;
  return publish_task(t, out);
}

int asyncrt_spawn(asyncrt_executor *ex, const asyncrt_future *fut, unsigned flags, asyncrt_task **out) {
  REFUSE_IN_CHILD();
  return spawn_common(ex, fut, flags, NULL, out);
}

int asyncrt_spawn_in(asyncrt_executor *ex, const asyncrt_future *fut, unsigned flags,
                     const asyncrt_task_storage *storage, asyncrt_task **out) {
  REFUSE_IN_CHILD();
  if (!storage) {
    if (out) *out = NULL;
    if (!take_future(fut, "asyncrt_spawn_in")) art_drop_future(fut);
    return art_fail(ASYNCRT_EINVAL, "asyncrt_spawn_in: storage is NULL");
  }
  return spawn_common(ex, fut, flags, storage, out);
}

int asyncrt_task_join(asyncrt_task *task, asyncrt_future *out) {
  REFUSE_IN_CHILD();
  art_task *t;
  int rc = resolve_task(task, &t);
  if (rc) return rc;
  if (!out) return art_fail(ASYNCRT_EINVAL, "asyncrt_task_join: out is NULL");
  return art_task_join(t, out);
}

int asyncrt_task_cancel(asyncrt_task *task) {
  REFUSE_IN_CHILD();
  art_task *t;
  int rc = resolve_task(task, &t);
  return rc ? rc : art_task_cancel(t);
}

int asyncrt_task_status(asyncrt_task *task) {
  REFUSE_IN_CHILD();
  art_task *t;
  int rc = resolve_task(task, &t);
  return rc ? rc : art_task_status(t);
}

int asyncrt_task_id(asyncrt_task *task, uint64_t *id) {
  REFUSE_IN_CHILD();
  art_task *t;
  int rc = resolve_task(task, &t);
  if (rc) return rc;
  if (!id) return art_fail(ASYNCRT_EINVAL, "asyncrt_task_id: id is NULL");
  *id = t->id;
  return ASYNCRT_OK;
}

int asyncrt_task_release(asyncrt_task *task) {
  REFUSE_IN_CHILD();
  if (!task) return ASYNCRT_OK;
  art_task *t;
  int rc = resolve_task(task, &t);
  if (rc) return rc;
  if (!art_handle_free((uint64_t)(uintptr_t)task))
    return art_fail(ASYNCRT_EHANDLE, "task %p was released by another thread meanwhile", (void *)task);
  art_task_unref(t);
  return ASYNCRT_OK;
}

/* ---- driving ---------------------------------------------------------------- */

int asyncrt_block_on(asyncrt_executor *ex, const asyncrt_future *fut, void *out, int64_t timeout_ns) {
  REFUSE_IN_CHILD();
  int rc = take_future(fut, "asyncrt_block_on");
  if (rc) return rc;
  if (timeout_ns < 0 && timeout_ns != ASYNCRT_NO_TIMEOUT) {
    art_drop_future(fut);
    return art_fail(ASYNCRT_EINVAL, "asyncrt_block_on: timeout %lld is negative (ASYNCRT_NO_TIMEOUT is -1)",
                    (long long)timeout_ns);
  }
  if (!out && fut->vtable->output_size) {
    art_drop_future(fut);
    return art_fail(ASYNCRT_EINVAL, "asyncrt_block_on: out is NULL but the future has %zu bytes of output",
                    fut->vtable->output_size);
  }
  art_exec *e;
  if ((rc = resolve_exec(ex, &e))) {
    art_drop_future(fut);
    return rc;
  }
  if (e->is_foreign) {
    art_drop_future(fut);
    return not_supported("asyncrt_block_on");
  }
  return art_go_block_on((uintptr_t)ex, (asyncrt_future *)fut, out, timeout_ns);
}

int asyncrt_run(asyncrt_executor *ex, uint64_t *polls) {
  REFUSE_IN_CHILD();
  if (polls) *polls = 0;
  if (!ex) return art_fail(ASYNCRT_EINVAL, "executor is NULL");
  return art_go_run((uintptr_t)ex, 0, 0, polls);
}

int asyncrt_run_step(asyncrt_executor *ex, uint32_t max_polls, uint64_t max_ns, uint64_t *polls) {
  REFUSE_IN_CHILD();
  if (polls) *polls = 0;
  if (!ex) return art_fail(ASYNCRT_EINVAL, "executor is NULL");
  if (!max_polls) return ASYNCRT_OK;
  return art_go_run((uintptr_t)ex, max_polls, max_ns, polls);
}

/* ---- host queues ------------------------------------------------------------ */

static int resolve_hostq(asyncrt_hostq *q, art_hostq **out) {
  return art_handle_resolve(q, ART_H_HOSTQ, "host queue", (void **)out);
}

int asyncrt_hostq_new(asyncrt_executor *ex, asyncrt_hostq **out) {
  REFUSE_IN_CHILD();
  art_exec *e;
  int rc = resolve_exec(ex, &e);
  if (rc) return rc;
  if (!out) return art_fail(ASYNCRT_EINVAL, "asyncrt_hostq_new: out is NULL");
  if (e->group) return not_supported("a host queue (its futures would be polled on worker threads)");
  art_hostq *q = art_hostq_new();
  uint64_t h = q ? art_handle_new(ART_H_HOSTQ, q) : 0;
  if (!h) {
    if (q) art_hostq_close(q);
    return art_fail(ASYNCRT_ENOMEM, "could not allocate a host queue");
  }
  *out = (asyncrt_hostq *)(uintptr_t)h;
  return ASYNCRT_OK;
}

int asyncrt_hostq_free(asyncrt_hostq *q) {
  REFUSE_IN_CHILD();
  if (!q) return ASYNCRT_OK;
  art_hostq *hq;
  int rc = resolve_hostq(q, &hq);
  if (rc) return rc;
  if (art_handle_free((uint64_t)(uintptr_t)q)) art_hostq_close(hq);
  return ASYNCRT_OK;
}

int asyncrt_hostq_future(asyncrt_hostq *q, uint64_t *tag, asyncrt_future *out) {
  REFUSE_IN_CHILD();
  art_hostq *hq;
  int rc = resolve_hostq(q, &hq);
  if (rc) return rc;
  if (!tag || !out) return art_fail(ASYNCRT_EINVAL, "asyncrt_hostq_future: tag and out are required");
  return art_hostq_future(hq, tag, out);
}

int asyncrt_hostq_take(asyncrt_hostq *q, uint64_t *events, size_t cap, size_t *count) {
  REFUSE_IN_CHILD();
  art_hostq *hq;
  int rc = resolve_hostq(q, &hq);
  if (rc) return rc;
  if (!count || (!events && cap)) return art_fail(ASYNCRT_EINVAL, "asyncrt_hostq_take: events and count are required");
  *count = art_hostq_take(hq, events, cap);
  return ASYNCRT_OK;
}

int asyncrt_hostq_complete(asyncrt_hostq *q, const uint64_t *tags, const int *statuses, size_t n) {
  REFUSE_IN_CHILD();
  art_hostq *hq;
  int rc = resolve_hostq(q, &hq);
  if (rc) return rc;
  if (!tags && n) return art_fail(ASYNCRT_EINVAL, "asyncrt_hostq_complete: tags is NULL");
  art_hostq_complete(hq, tags, statuses, n);
  return ASYNCRT_OK;
}

int asyncrt_hostq_wake(asyncrt_hostq *q, const uint64_t *tags, size_t n) {
  REFUSE_IN_CHILD();
  art_hostq *hq;
  int rc = resolve_hostq(q, &hq);
  if (rc) return rc;
  if (!tags && n) return art_fail(ASYNCRT_EINVAL, "asyncrt_hostq_wake: tags is NULL");
  art_hostq_wake(hq, tags, n);
  return ASYNCRT_OK;
}

int asyncrt_hostq_waker(asyncrt_hostq *q, uint64_t tag, asyncrt_waker *out) {
  REFUSE_IN_CHILD();
  art_hostq *hq;
  int rc = resolve_hostq(q, &hq);
  if (rc) return rc;
  if (!out) return art_fail(ASYNCRT_EINVAL, "asyncrt_hostq_waker: out is NULL");
  return art_hostq_waker(hq, tag, out);
}

/* ---- foreign executors -------------------------------------------------------- */

int asyncrt_executor_new_foreign(const asyncrt_foreign_vtable *vtable, void *user_data, asyncrt_executor **out) {
  REFUSE_IN_CHILD();
  if (!out) return art_fail(ASYNCRT_EINVAL, "asyncrt_executor_new_foreign: out is NULL");
  *out = NULL;
  if (!vtable || vtable->size < offsetof(asyncrt_foreign_vtable, finalize) + sizeof(void *) || !vtable->schedule)
    return art_fail(ASYNCRT_EINVAL, "asyncrt_executor_new_foreign: the vtable needs size and schedule");
  uintptr_t h = 0;
  int rc = art_go_executor_new_foreign((asyncrt_foreign_vtable *)vtable, user_data, &h);
  if (!rc) *out = (asyncrt_executor *)h;
  return rc;
}

int asyncrt_runnable_run(asyncrt_runnable *r) {
  REFUSE_IN_CHILD();
  if (!r) return art_fail(ASYNCRT_EINVAL, "asyncrt_runnable_run: runnable is NULL");
  return art_runnable_run((art_task *)r);
}

int asyncrt_runnable_drop(asyncrt_runnable *r) {
  REFUSE_IN_CHILD();
  if (!r) return art_fail(ASYNCRT_EINVAL, "asyncrt_runnable_drop: runnable is NULL");
  art_runnable_drop((art_task *)r);
  return ASYNCRT_OK;
}

uint64_t asyncrt_runnable_task_id(const asyncrt_runnable *r) { return r ? ((const art_task *)r)->id : 0; }
