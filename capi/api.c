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
  if (cx && status) {
    cx->failure = status;
    cx->rich = 0; /* the last call wins: a record from fail_info no longer applies */
  }
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
  if (cx.rich_err) art_error_unref(cx.rich_err); /* no task to keep it */
  return r;
}

/* ---- executors ------------------------------------------------------------- */

void asyncrt_executor_config_init_size(asyncrt_executor_config *cfg, size_t size) {
  if (!cfg || size < offsetof(asyncrt_executor_config, allocator) + sizeof(void *)) return;
  asyncrt_executor_config d = {.size = sizeof d, .kind = ASYNCRT_EXECUTOR_LOCAL, .spin_ns = 20000};
  memcpy(cfg, &d, size < sizeof d ? size : sizeof d);
  cfg->size = size < sizeof d ? size : sizeof d;
}

/* The 0.2 struct ended after shutdown_timeout_ns. The parentheses keep the
 * header's macro of the same name from expanding here. */
void(asyncrt_executor_config_init)(asyncrt_executor_config *cfg) {
  asyncrt_executor_config_init_size(cfg, offsetof(asyncrt_executor_config, clock));
}

/* Copies the fields `size` covers over the defaults. */
static void config_read(const asyncrt_executor_config *cfg, asyncrt_executor_config *c) {
  art_copy_sized(c, sizeof *c, cfg, cfg->size);
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
  if (c.clock != ASYNCRT_CLOCK_MONOTONIC && c.clock != ASYNCRT_CLOCK_TEST)
    return art_fail(ASYNCRT_EINVAL, "asyncrt_executor_new: unknown clock %u", c.clock);
  if (c.subsystem_count && !c.subsystems)
    return art_fail(ASYNCRT_EINVAL, "asyncrt_executor_new: subsystem_count is %zu but subsystems is NULL",
                    c.subsystem_count);
  uintptr_t h = 0;
  int rc = art_go_executor_new(&c, &h);
  if (rc) return rc;
  /* Static subsystems: registered in order; a refusal undoes the executor
   * (whose free finalizes those taken) and finalizes the rest. */
  for (size_t i = 0; i < c.subsystem_count; i++) {
    asyncrt_subsystem *sub = NULL;
    rc = asyncrt_subsystem_register((asyncrt_executor *)h, &c.subsystems[i], &sub);
    if (rc) {
      const char *why = art_last_error();
      char msg[256];
      strncpy(msg, why, sizeof msg - 1);
      msg[sizeof msg - 1] = 0;
      for (size_t k = i + 1; k < c.subsystem_count; k++)
        if (c.subsystems[k].vtable && c.subsystems[k].vtable->finalize)
          c.subsystems[k].vtable->finalize(c.subsystems[k].user_data);
      art_go_executor_free(h);
      if (c.subsystem_handles)
        for (size_t k = 0; k < c.subsystem_count; k++) c.subsystem_handles[k] = NULL;
      return art_fail(rc, "asyncrt_executor_new: subsystem %zu: %s", i, msg);
    }
    if (c.subsystem_handles) c.subsystem_handles[i] = sub;
  }
  *out = (asyncrt_executor *)h;
  return ASYNCRT_OK;
}

int asyncrt_executor_free(asyncrt_executor *ex) {
  REFUSE_IN_CHILD();
  if (!ex) return ASYNCRT_OK;
  /* The watchdog's free waits for its thread, which would be this one. */
  art_exec *e = art_handle_get((uint64_t)(uintptr_t)ex, ART_H_EXEC);
  if (e && art_watch_reporting(e))
    return art_fail(ASYNCRT_EREENTRANT, "asyncrt_executor_free: called from a stall report of the same executor");
  return art_go_executor_free((uintptr_t)ex);
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
  *caps |= ASYNCRT_CAP_TIMERS | ASYNCRT_CAP_SUBSYSTEMS | ASYNCRT_CAP_SCOPES |
           (e->clock->test ? ASYNCRT_CAP_TEST_CLOCK : 0);
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
  /* 0.1's struct ended at memory_limit; later fields are filled if there is room. */
  if (!stats || stats->size < offsetof(asyncrt_executor_stats, workers))
    return art_fail(ASYNCRT_EINVAL, "asyncrt_executor_stats_get: stats is NULL or its size is too small");
  asyncrt_executor_stats all;
  art_executor_stats(e, &all);
  art_copy_sized(stats, stats->size, &all, sizeof all);
  return ASYNCRT_OK;
}

int asyncrt_worker_stats_get(asyncrt_executor *ex, unsigned worker, asyncrt_worker_stats *stats) {
  REFUSE_IN_CHILD();
  art_exec *e;
  int rc = resolve_exec(ex, &e);
  if (rc) return rc;
  /* 0.2's struct ended at parked_ns; newer fields are filled if there is room. */
  if (!stats || stats->size < offsetof(asyncrt_worker_stats, ticks))
    return art_fail(ASYNCRT_EINVAL, "asyncrt_worker_stats_get: stats is NULL or its size is too small");
  unsigned n = art_exec_workers(e);
  if (worker >= n) return art_fail(ASYNCRT_EINVAL, "worker %u: the executor has %u", worker, n);
  asyncrt_worker_stats all;
  art_core_stats(art_exec_worker(e, worker), &all);
  art_copy_sized(stats, stats->size, &all, sizeof all);
  return ASYNCRT_OK;
}

/* ---- stall detection ------------------------------------------------------ */

#define STALL_DEFAULT_THRESHOLD_NS 100000000ull
#define STALL_PERIOD_MIN_NS 1000000ull
#define STALL_PERIOD_MAX_NS 1000000000ull

void asyncrt_stall_config_init_size(asyncrt_stall_config *cfg, size_t size) {
  if (!cfg || size < sizeof cfg->size) return;
  asyncrt_stall_config d = {.size = sizeof d, .threshold_ns = STALL_DEFAULT_THRESHOLD_NS};
  memcpy(cfg, &d, size < sizeof d ? size : sizeof d);
  cfg->size = size < sizeof d ? size : sizeof d;
}

/* The executor of a watch or check call: a live one that is not foreign,
 * and not the one whose report runs on this thread. */
static int resolve_watched(asyncrt_executor *ex, const char *who, art_exec **e) {
  int rc = resolve_exec(ex, e);
  if (rc) return rc;
  if ((*e)->is_foreign)
    return art_fail(ASYNCRT_ENOTSUP, "%s: a foreign executor's polls are its host's to watch", who);
  if (art_watch_reporting(*e))
    return art_fail(ASYNCRT_EREENTRANT, "%s: called from a stall report of the same executor", who);
  return ASYNCRT_OK;
}

int asyncrt_executor_watch_stalls(asyncrt_executor *ex, const asyncrt_stall_config *cfg) {
  REFUSE_IN_CHILD();
  if (!cfg) return art_fail(ASYNCRT_EINVAL, "asyncrt_executor_watch_stalls: cfg is NULL");
  if (cfg->size < sizeof(asyncrt_stall_config)) {
    /* Too small to be sure where finalize is: it cannot be called. */
    return art_fail(ASYNCRT_EINVAL, "asyncrt_executor_watch_stalls: config size %zu is too small (set it to sizeof)",
                    cfg->size);
  }
  art_exec *e;
  int rc = resolve_watched(ex, "asyncrt_executor_watch_stalls", &e);
  if (rc) {
    if (cfg->finalize) cfg->finalize(cfg->user_data); /* handed over either way */
    return rc;
  }
  uint64_t threshold = cfg->threshold_ns, period = cfg->period_ns;
  if (!period) { /* threshold / 4, within 1 ms .. 1 s */
    period = threshold / 4;
    if (period < STALL_PERIOD_MIN_NS) period = STALL_PERIOD_MIN_NS;
    if (period > STALL_PERIOD_MAX_NS) period = STALL_PERIOD_MAX_NS;
  }
  if (!threshold || period == ASYNCRT_STALL_MANUAL) period = 0; /* no thread */
  /* Off: the thread stops before the handler goes. On: the handler is in
   * place before the thread starts. */
  if (!threshold && (rc = art_go_executor_watch((uintptr_t)ex, 0))) {
    if (cfg->finalize) cfg->finalize(cfg->user_data);
    return rc;
  }
  if ((rc = art_watch_set(e, threshold, cfg->report, cfg->user_data, cfg->finalize))) return rc;
  return threshold ? art_go_executor_watch((uintptr_t)ex, period) : ASYNCRT_OK;
}

int asyncrt_executor_check_stalls(asyncrt_executor *ex, unsigned *reported) {
  REFUSE_IN_CHILD();
  art_exec *e;
  int rc = resolve_watched(ex, "asyncrt_executor_check_stalls", &e);
  if (rc) return rc;
  unsigned n = art_watch_check(e);
  if (reported) *reported = n;
  return ASYNCRT_OK;
}

/* ---- tasks ----------------------------------------------------------------- */

size_t asyncrt_task_storage_size(size_t output_size) { return ASYNCRT_TASK_STORAGE_SIZE(output_size); }

/* Publishes a handle for a task spawned with a caller reference. */
static int publish_task(art_task *t, asyncrt_task **out) {
  /* Before the handle is visible: it lets other threads open scopes for t. */
  atomic_fetch_or(&t->state, ART_HANDLED);
  uint64_t h = art_handle_new(ART_H_TASK, t);
  if (!h) {
    art_task_cancel(t); /* nobody could observe it: undo the spawn */
    art_task_unref(t);
    return art_fail(ASYNCRT_ENOMEM, "no memory for a task handle; the task was cancelled");
  }
  *out = (asyncrt_task *)(uintptr_t)h;
  return ASYNCRT_OK;
}

/* Checks spawn flags and caller storage against executor e (not placed). */
static int check_spawn_args(art_exec *e, const asyncrt_future *fut, unsigned flags,
                            const asyncrt_task_storage *storage) {
  int rc = ASYNCRT_OK;
  if (flags & ~(ASYNCRT_SPAWN_SEND | 0xffff00u))
    rc = art_fail(ASYNCRT_EINVAL, "asyncrt_spawn: unknown flags %#x", flags);
  if (!rc && e->group && (flags & 0xffff00u) && ((flags >> 8) & 0xffffu) > e->group->nworkers)
    rc = art_fail(ASYNCRT_EINVAL, "asyncrt_spawn: worker %u: the executor has %u", ((flags >> 8) & 0xffffu) - 1,
                  e->group->nworkers);
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
  return rc;
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
  *id = art_task_id(t);
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
  art_exec *e;
  int rc = resolve_exec(ex, &e);
  if (rc) return rc;
  /* The other kinds refuse, with the control plane's message. */
  if (e->group || e->is_foreign) return art_go_run((uintptr_t)ex, max_polls, max_ns, polls);
  /* A local executor's step is the data plane's run loop and nothing else,
   * so it costs no trip through Go: a host loop (asyncio's, say) steps on
   * every wakeup of the executor's fd, and a Go round trip cost ~1.7 us. */
  if (art_in_poll()) return art_fail(ASYNCRT_EREENTRANT, "cannot drive an executor from inside a poll");
  if (!art_exec_acquire_driver(e)) return art_fail(ASYNCRT_EBUSY, "executor is already driven by another thread");
  uint64_t n = 0;
  art_exec_run_ex(e, max_polls, max_ns ? art_now_ns() + max_ns : 0, NULL, &n);
  art_exec_release_driver(e);
  if (polls) *polls = n;
  return ASYNCRT_OK;
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

uint64_t asyncrt_runnable_task_id(const asyncrt_runnable *r) { return r ? art_task_id((const art_task *)r) : 0; }

/* ---- time and timers --------------------------------------------------------- */

int asyncrt_executor_now(asyncrt_executor *ex, uint64_t *now_ns) {
  REFUSE_IN_CHILD();
  art_exec *e;
  int rc = resolve_exec(ex, &e);
  if (rc) return rc;
  if (!now_ns) return art_fail(ASYNCRT_EINVAL, "asyncrt_executor_now: now_ns is NULL");
  *now_ns = art_clock_now(e->clock);
  return ASYNCRT_OK;
}

uint64_t asyncrt_context_now(const asyncrt_context *cx) {
  return cx && cx->exec ? art_clock_now(cx->exec->clock) : art_now_ns();
}

int asyncrt_clock_advance(asyncrt_executor *ex, uint64_t delta_ns) {
  REFUSE_IN_CHILD();
  art_exec *e;
  int rc = resolve_exec(ex, &e);
  if (rc) return rc;
  art_clock *c = e->clock;
  if (!c->test) return art_fail(ASYNCRT_EINVAL, "asyncrt_clock_advance: the executor's clock is not a test clock");
  uint64_t now = atomic_load(&c->now);
  do {
    if (UINT64_MAX - now < delta_ns)
      return art_fail(ASYNCRT_EINVAL, "asyncrt_clock_advance: the clock would pass UINT64_MAX");
  } while (!atomic_compare_exchange_weak(&c->now, &now, now + delta_ns));
  /* Every driver ticks at its next run; wake the sleeping ones. */
  unsigned n = e->group ? e->group->nworkers : 1;
  for (unsigned i = 0; i < n; i++) {
    art_exec *core = e->group ? e->group->workers[i] : e;
    if (!core->is_foreign) art_exec_wake_driver(core);
  }
  return ASYNCRT_OK;
}

int asyncrt_timer_poll(asyncrt_timer *t, asyncrt_context *cx, uint64_t deadline_ns) {
  if (art_is_forked()) {
    art_fail_forked();
    if (cx) cx->failure = ASYNCRT_EFORKED;
    return ASYNCRT_POLL_ERROR;
  }
  return art_timer_poll(t, cx, deadline_ns);
}

void asyncrt_timer_cancel(asyncrt_timer *t) {
  REFUSE_IN_CHILD_VOID();
  if (t) art_timer_cancel(t);
}

int asyncrt_timer_armed(const asyncrt_timer *t) { return t ? art_timer_armed(t) : 0; }

int asyncrt_sleep_for(asyncrt_sleep *s, uint64_t duration_ns, asyncrt_future *out) {
  REFUSE_IN_CHILD();
  if (!s || !out) return art_fail(ASYNCRT_EINVAL, "asyncrt_sleep_for: %s is NULL", s ? "out" : "state");
  art_sleep_init(s, duration_ns, 1, out);
  return ASYNCRT_OK;
}

int asyncrt_sleep_until(asyncrt_sleep *s, uint64_t deadline_ns, asyncrt_future *out) {
  REFUSE_IN_CHILD();
  if (!s || !out) return art_fail(ASYNCRT_EINVAL, "asyncrt_sleep_until: %s is NULL", s ? "out" : "state");
  art_sleep_init(s, deadline_ns, 0, out);
  return ASYNCRT_OK;
}

int asyncrt_timeout_for(asyncrt_timeout *s, const asyncrt_future *inner, uint64_t duration_ns, asyncrt_future *out) {
  REFUSE_IN_CHILD();
  int rc = take_future(inner, "asyncrt_timeout_for");
  if (rc) return rc;
  if (!s || !out) {
    art_drop_future(inner);
    return art_fail(ASYNCRT_EINVAL, "asyncrt_timeout_for: %s is NULL", s ? "out" : "state");
  }
  art_timeout_init(s, inner, duration_ns, out);
  return ASYNCRT_OK;
}

/* ---- subsystems and operations ------------------------------------------------ */

void asyncrt_subsystem_config_init_size(asyncrt_subsystem_config *cfg, size_t size) {
  if (!cfg || size < sizeof(size_t)) return;
  asyncrt_subsystem_config d = {.size = sizeof d,
                                .priority = 1,
                                .waiter_cap = 64,
                                .poll_budget = 64,
                                .worker = ASYNCRT_SUBSYSTEM_ALL_WORKERS,
                                .fd = -1};
  memcpy(cfg, &d, size < sizeof d ? size : sizeof d);
  cfg->size = size < sizeof d ? size : sizeof d;
}

static void finalize_config(const asyncrt_subsystem_config *c) {
  if (c->vtable && c->vtable->size >= offsetof(asyncrt_subsystem_vtable, finalize) + sizeof(void *) &&
      c->vtable->finalize)
    c->vtable->finalize(c->user_data);
}

int asyncrt_subsystem_register(asyncrt_executor *ex, const asyncrt_subsystem_config *cfg, asyncrt_subsystem **out) {
  REFUSE_IN_CHILD();
  if (out) *out = NULL;
  if (!cfg) return art_fail(ASYNCRT_EINVAL, "asyncrt_subsystem_register: cfg is NULL");
  asyncrt_subsystem_config c;
  asyncrt_subsystem_config_init(&c);
  /* Copy what the caller's size covers, so that even a config refused for
   * its size hands its user data to the finalizer when it names one. */
  art_copy_sized(&c, sizeof c, cfg, cfg->size);
  int rc = ASYNCRT_OK;
  art_exec *e = NULL;
  if (cfg->size < offsetof(asyncrt_subsystem_config, name)) {
    if (cfg->size < offsetof(asyncrt_subsystem_config, user_data) + sizeof(void *)) c.vtable = NULL;
    rc = art_fail(ASYNCRT_EINVAL, "asyncrt_subsystem_register: config size %zu is too small (set it to sizeof)",
                  cfg->size);
  } else if (!out) rc = art_fail(ASYNCRT_EINVAL, "asyncrt_subsystem_register: out is NULL");
  else if (art_tls_subsys)
    rc = art_fail(ASYNCRT_EREENTRANT, "asyncrt_subsystem_register: called from a subsystem callback");
  else if (!c.vtable || c.vtable->size < offsetof(asyncrt_subsystem_vtable, poll) + sizeof(void *) ||
           !c.vtable->poll)
    rc = art_fail(ASYNCRT_EINVAL, "asyncrt_subsystem_register: the vtable needs size and poll");
  else if (c.priority < 1 || c.priority > 1000)
    rc = art_fail(ASYNCRT_EINVAL, "asyncrt_subsystem_register: priority %u is outside 1..1000", c.priority);
  else if (c.waiter_cap < 1 || c.waiter_cap > (1u << 31))
    rc = art_fail(ASYNCRT_EINVAL, "asyncrt_subsystem_register: waiter_cap %u is outside 1..2^31", c.waiter_cap);
  else if (!c.poll_budget)
    rc = art_fail(ASYNCRT_EINVAL, "asyncrt_subsystem_register: poll_budget is 0");
  else if (c.fd < -1) rc = art_fail(ASYNCRT_EINVAL, "asyncrt_subsystem_register: fd %d", c.fd);
  else if (!(rc = resolve_exec(ex, &e)) && atomic_load(&e->shutdown))
    rc = art_fail(ASYNCRT_ESHUTDOWN, "asyncrt_subsystem_register: the executor is shutting down");
  if (rc) {
    finalize_config(&c);
    return rc;
  }
  uint64_t h = 0;
  rc = art_subsys_register(e, &c, &h);
  if (!rc) *out = (asyncrt_subsystem *)(uintptr_t)h;
  return rc;
}

static int resolve_subsys(asyncrt_subsystem *sub, art_subsys **s) {
  return art_handle_resolve(sub, ART_H_SUBSYS, "subsystem", (void **)s);
}

int asyncrt_subsystem_unregister(asyncrt_subsystem *sub) {
  REFUSE_IN_CHILD();
  art_subsys *s;
  int rc = resolve_subsys(sub, &s);
  if (rc) return rc;
  if (art_tls_subsys && art_tls_subsys->sub == s)
    return art_fail(ASYNCRT_EREENTRANT, "asyncrt_subsystem_unregister: called from its own callback");
  if (art_tls_subsys)
    return art_fail(ASYNCRT_EREENTRANT, "asyncrt_subsystem_unregister: called from a subsystem callback");
  if (!art_handle_free(s->handle)) return art_fail(ASYNCRT_EHANDLE, "subsystem was already unregistered");
  art_subsys_detach(s); /* its own free of the handle finds it freed already */
  return ASYNCRT_OK;
}

int asyncrt_subsystem_stats_get(asyncrt_subsystem *sub, asyncrt_subsystem_stats *stats) {
  REFUSE_IN_CHILD();
  art_subsys *s;
  int rc = resolve_subsys(sub, &s);
  if (rc) return rc;
  if (!stats || stats->size < offsetof(asyncrt_subsystem_stats, submits))
    return art_fail(ASYNCRT_EINVAL, "asyncrt_subsystem_stats_get: stats is NULL or its size is too small");
  return art_subsys_stats(s, stats);
}

int asyncrt_timer_stats_get(asyncrt_executor *ex, asyncrt_subsystem_stats *stats) {
  REFUSE_IN_CHILD();
  art_exec *e;
  int rc = resolve_exec(ex, &e);
  if (rc) return rc;
  if (!stats || stats->size < offsetof(asyncrt_subsystem_stats, submits))
    return art_fail(ASYNCRT_EINVAL, "asyncrt_timer_stats_get: stats is NULL or its size is too small");
  asyncrt_subsystem_stats sum;
  art_timer_stats(e, &sum);
  art_copy_sized(stats, stats->size, &sum, sizeof sum);
  return ASYNCRT_OK;
}

int asyncrt_op_submit(asyncrt_context *cx, asyncrt_subsystem *sub, asyncrt_op *op) {
  REFUSE_IN_CHILD();
  if (!cx || !op) return art_fail(ASYNCRT_EINVAL, "asyncrt_op_submit: %s is NULL", cx ? "op" : "cx");
  art_subsys *s;
  int rc = resolve_subsys(sub, &s);
  if (rc) return rc;
  return art_op_submit(cx, s, op);
}

int asyncrt_op_poll(asyncrt_op *op, asyncrt_context *cx) {
  if (!op) {
    art_fail(ASYNCRT_EINVAL, "asyncrt_op_poll: op is NULL");
    if (cx) cx->failure = ASYNCRT_EINVAL;
    return ASYNCRT_POLL_ERROR;
  }
  return art_op_done(op) ? ASYNCRT_POLL_READY : ASYNCRT_POLL_PENDING;
}

int asyncrt_op_done(const asyncrt_op *op) { return op ? art_op_done(op) : 1; }

int asyncrt_op_cancel(asyncrt_op *op) {
  REFUSE_IN_CHILD();
  if (!op) return art_fail(ASYNCRT_EINVAL, "asyncrt_op_cancel: op is NULL");
  return art_op_cancel(op);
}

void asyncrt_op_complete(asyncrt_op *op, int status, int64_t result) {
  REFUSE_IN_CHILD_VOID();
  if (op) art_op_complete(op, status, result);
}

unsigned asyncrt_subsystem_cx_worker(const asyncrt_subsystem_cx *scx) {
  return scx ? ((const art_subsys_inst *)scx)->worker : 0;
}

uint64_t asyncrt_subsystem_cx_waiters(const asyncrt_subsystem_cx *scx) {
  return scx ? atomic_load(&((art_subsys_inst *)scx)->waiters) : 0;
}

asyncrt_op *asyncrt_subsystem_cx_first_op(asyncrt_subsystem_cx *scx) {
  return scx ? ((art_subsys_inst *)scx)->head : NULL;
}

asyncrt_op *asyncrt_op_next(asyncrt_op *op) { return op ? art_op_next(op) : NULL; }

size_t asyncrt_subsystem_cx_complete_all(asyncrt_subsystem_cx *scx, int status, int64_t result) {
  if (!scx) return 0;
  art_subsys_inst *inst = (art_subsys_inst *)scx;
  size_t n = 0;
  while (inst->head) {
    art_op_complete(inst->head, status, result);
    n++;
  }
  return n;
}

int asyncrt_executor_tick(asyncrt_executor *ex, uint64_t *next_deadline_ns, int *busy) {
  REFUSE_IN_CHILD();
  art_exec *e;
  int rc = resolve_exec(ex, &e);
  if (rc) return rc;
  if (e->group) return not_supported("asyncrt_executor_tick (its workers tick themselves)");
  if (art_tls_subsys) return art_fail(ASYNCRT_EREENTRANT, "asyncrt_executor_tick: called from a subsystem callback");
  if (!e->is_foreign && art_in_poll())
    return art_fail(ASYNCRT_EREENTRANT, "asyncrt_executor_tick: called from inside a poll");
  if (!art_exec_acquire_driver(e))
    return art_fail(ASYNCRT_EBUSY, "asyncrt_executor_tick: the executor is driven by another thread");
  art_core_tick(e);
  if (next_deadline_ns)
    *next_deadline_ns = atomic_load(&e->timers_armed) ? atomic_load(&e->timer_next) : UINT64_MAX;
  if (busy) *busy = e->busy_nofd;
  art_exec_release_driver(e);
  return ASYNCRT_OK;
}

/* ---- the op future ------------------------------------------------------------ */

enum { OPF_SUBMITTED = 1u };

static int op_future_poll(void *self, asyncrt_context *cx, void *out) {
  asyncrt_op_future_state *st = self;
  (void)out;
  if (!(st->flags & OPF_SUBMITTED)) {
    int rc = asyncrt_op_submit(cx, st->sub, st->op);
    if (rc) {
      if (cx) cx->failure = rc;
      return ASYNCRT_POLL_ERROR;
    }
    st->flags |= OPF_SUBMITTED;
  }
  if (!art_op_done(st->op)) return ASYNCRT_POLL_PENDING;
  if (st->op->status == ASYNCRT_OK) return ASYNCRT_POLL_READY;
  if (cx) cx->failure = st->op->status;
  return ASYNCRT_POLL_ERROR;
}

static void op_future_drop(void *self) {
  asyncrt_op_future_state *st = self;
  if ((st->flags & OPF_SUBMITTED) && !art_op_done(st->op)) art_op_cancel(st->op);
}

static const asyncrt_future_vtable op_future_vtable = {
    .size = sizeof(asyncrt_future_vtable), .output_size = 0, .poll = op_future_poll, .drop = op_future_drop};

int asyncrt_op_future(asyncrt_op_future_state *st, asyncrt_op *op, asyncrt_subsystem *sub, asyncrt_future *out) {
  REFUSE_IN_CHILD();
  if (!st || !op || !out) return art_fail(ASYNCRT_EINVAL, "asyncrt_op_future: an argument is NULL");
  *st = (asyncrt_op_future_state){.op = op, .sub = sub};
  *out = (asyncrt_future){st, &op_future_vtable};
  return ASYNCRT_OK;
}

/* ---- scopes ------------------------------------------------------------------- */

static int resolve_scope(asyncrt_scope *scope, art_scope **s) {
  return art_handle_resolve(scope, ART_H_SCOPE, "scope", (void **)s);
}

void asyncrt_scope_config_init_size(asyncrt_scope_config *cfg, size_t size) {
  if (!cfg || size < offsetof(asyncrt_scope_config, flags) + sizeof(unsigned)) return;
  asyncrt_scope_config d = {.size = sizeof d, .flags = ASYNCRT_SCOPE_FIRST_ERROR};
  memcpy(cfg, &d, size < sizeof d ? size : sizeof d);
  cfg->size = size < sizeof d ? size : sizeof d;
}

/* Copies the caller's config over the defaults; EINVAL for bad flags. */
static int scope_config(const asyncrt_scope_config *in, asyncrt_scope_config *cfg, const char *who) {
  asyncrt_scope_config_init_size(cfg, sizeof *cfg);
  if (!in) return ASYNCRT_OK;
  if (in->size < offsetof(asyncrt_scope_config, flags) + sizeof(unsigned))
    return art_fail(ASYNCRT_EINVAL, "%s: config size %zu is too small", who, in->size);
  art_copy_sized(cfg, sizeof *cfg, in, in->size);
  if (cfg->flags & ~(ASYNCRT_SCOPE_COLLECT_ALL | ASYNCRT_SCOPE_SHIELD))
    return art_fail(ASYNCRT_EINVAL, "%s: unknown scope flags %#x", who, cfg->flags);
  return ASYNCRT_OK;
}

static int publish_scope(art_scope *s, asyncrt_scope **out) {
  *out = (asyncrt_scope *)(uintptr_t)s->handle;
  return ASYNCRT_OK;
}

int asyncrt_scope_open(asyncrt_context *cx, const asyncrt_scope_config *cfg, asyncrt_scope **out) {
  REFUSE_IN_CHILD();
  if (!cx || !out) return art_fail(ASYNCRT_EINVAL, "asyncrt_scope_open: %s is NULL", cx ? "out" : "cx");
  *out = NULL;
  asyncrt_scope_config c;
  int rc = scope_config(cfg, &c, "asyncrt_scope_open");
  if (rc) return rc;
  art_task *t = art_context_task(cx);
  if (!t)
    return art_fail(ASYNCRT_ENOTSUP, "asyncrt_scope_open: the context is not that of an asyncrt task's poll");
  art_exec *top = cx->exec->group ? cx->exec->group->workers[0] : cx->exec;
  art_scope *s;
  rc = art_scope_open(cx->exec, top, t, &c, &s);
  return rc ? rc : publish_scope(s, out);
}

int asyncrt_scope_open_for(asyncrt_task *owner, const asyncrt_scope_config *cfg, asyncrt_scope **out) {
  REFUSE_IN_CHILD();
  art_task *t;
  int rc = resolve_task(owner, &t);
  if (rc) return rc;
  if (!out) return art_fail(ASYNCRT_EINVAL, "asyncrt_scope_open_for: out is NULL");
  *out = NULL;
  asyncrt_scope_config c;
  if ((rc = scope_config(cfg, &c, "asyncrt_scope_open_for"))) return rc;
  art_exec *e = t->exec, *top = e->group ? e->group->workers[0] : e;
  art_scope *s;
  rc = art_scope_open(e, top, t, &c, &s);
  return rc ? rc : publish_scope(s, out);
}

int asyncrt_scope_open_top(asyncrt_executor *ex, const asyncrt_scope_config *cfg, asyncrt_scope **out) {
  REFUSE_IN_CHILD();
  art_exec *e;
  int rc = resolve_exec(ex, &e);
  if (rc) return rc;
  if (!out) return art_fail(ASYNCRT_EINVAL, "asyncrt_scope_open_top: out is NULL");
  *out = NULL;
  asyncrt_scope_config c;
  if ((rc = scope_config(cfg, &c, "asyncrt_scope_open_top"))) return rc;
  art_scope *s;
  rc = art_scope_open(e, e, NULL, &c, &s);
  return rc ? rc : publish_scope(s, out);
}

static int scope_spawn_common(asyncrt_scope *scope, const asyncrt_future *fut, unsigned flags,
                              const asyncrt_task_storage *storage, asyncrt_task **out, const char *who) {
  if (out) *out = NULL;
  int rc = take_future(fut, who);
  if (rc) return rc;
  art_scope *s;
  if (!(rc = resolve_scope(scope, &s))) rc = check_spawn_args(s->top, fut, flags, storage);
  if (rc) {
    art_drop_future(fut);
    return rc;
  }
  art_task *t;
  rc = art_scope_spawn(s, fut, flags, storage, out ? &t : NULL);
  if (rc || !out) return rc;
  return publish_task(t, out);
}

int asyncrt_scope_spawn(asyncrt_scope *scope, const asyncrt_future *fut, unsigned flags, asyncrt_task **out) {
  REFUSE_IN_CHILD();
  return scope_spawn_common(scope, fut, flags, NULL, out, "asyncrt_scope_spawn");
}

int asyncrt_scope_spawn_in(asyncrt_scope *scope, const asyncrt_future *fut, unsigned flags,
                           const asyncrt_task_storage *storage, asyncrt_task **out) {
  REFUSE_IN_CHILD();
  if (!storage) {
    if (out) *out = NULL;
    if (!take_future(fut, "asyncrt_scope_spawn_in")) art_drop_future(fut);
    return art_fail(ASYNCRT_EINVAL, "asyncrt_scope_spawn_in: storage is NULL");
  }
  return scope_spawn_common(scope, fut, flags, storage, out, "asyncrt_scope_spawn_in");
}

int asyncrt_scope_join(asyncrt_scope *scope, asyncrt_future *out) {
  REFUSE_IN_CHILD();
  art_scope *s;
  int rc = resolve_scope(scope, &s);
  if (rc) return rc;
  if (!out) return art_fail(ASYNCRT_EINVAL, "asyncrt_scope_join: out is NULL");
  return art_scope_join(s, out);
}

int asyncrt_scope_cancel(asyncrt_scope *scope) {
  REFUSE_IN_CHILD();
  art_scope *s;
  int rc = resolve_scope(scope, &s);
  if (rc) return rc;
  art_scope_cancel(s, s->cleanup_ns + art_clock_now(s->core->clock), ART_CANCEL_USER);
  return ASYNCRT_OK;
}

int asyncrt_scope_status(asyncrt_scope *scope) {
  REFUSE_IN_CHILD();
  art_scope *s;
  int rc = resolve_scope(scope, &s);
  return rc ? rc : art_scope_status(s);
}

int asyncrt_scope_free(asyncrt_scope *scope) {
  REFUSE_IN_CHILD();
  if (!scope) return ASYNCRT_OK;
  art_scope *s;
  int rc = resolve_scope(scope, &s);
  if (rc) return rc;
  if (!art_handle_free((uint64_t)(uintptr_t)scope))
    return art_fail(ASYNCRT_EHANDLE, "scope %p was freed by another thread meanwhile", (void *)scope);
  art_scope_free(s);
  return ASYNCRT_OK;
}

int asyncrt_scope_id(asyncrt_scope *scope, uint64_t *id) {
  REFUSE_IN_CHILD();
  art_scope *s;
  int rc = resolve_scope(scope, &s);
  if (rc) return rc;
  if (!id) return art_fail(ASYNCRT_EINVAL, "asyncrt_scope_id: id is NULL");
  *id = s->id;
  return ASYNCRT_OK;
}

void asyncrt_context_fail_info(asyncrt_context *cx, const asyncrt_error_info *info) {
  REFUSE_IN_CHILD_VOID();
  if (!info) return;
  if (!cx || info->size < offsetof(asyncrt_error_info, value_free) + sizeof info->value_free) {
    /* The value was handed over: it must not leak, even on a bad call. */
    if (info->size >= offsetof(asyncrt_error_info, value_free) + sizeof info->value_free && info->value_free)
      info->value_free(info->value);
    art_fail(ASYNCRT_EINVAL, "asyncrt_context_fail_info: %s", cx ? "info->size is too small" : "cx is NULL");
    return;
  }
  art_context_fail_info(cx, info);
}

int asyncrt_scope_error_count(asyncrt_scope *scope, size_t *count) {
  REFUSE_IN_CHILD();
  art_scope *s;
  int rc = resolve_scope(scope, &s);
  if (rc) return rc;
  if (!count) return art_fail(ASYNCRT_EINVAL, "asyncrt_scope_error_count: count is NULL");
  *count = art_scope_error_count(s);
  return ASYNCRT_OK;
}

#define ERROR_INFO_MIN (offsetof(asyncrt_error_info, value_free) + sizeof(void (*)(void *)))

int asyncrt_scope_error_get(asyncrt_scope *scope, size_t index, asyncrt_error_info *out) {
  REFUSE_IN_CHILD();
  art_scope *s;
  int rc = resolve_scope(scope, &s);
  if (rc) return rc;
  if (!out || out->size < ERROR_INFO_MIN)
    return art_fail(ASYNCRT_EINVAL, "asyncrt_scope_error_get: out is NULL or its size is too small");
  return art_scope_error_get(s, index, out);
}

int asyncrt_task_error_get(asyncrt_task *task, asyncrt_error_info *out) {
  REFUSE_IN_CHILD();
  art_task *t;
  int rc = resolve_task(task, &t);
  if (rc) return rc;
  if (!out || out->size < ERROR_INFO_MIN)
    return art_fail(ASYNCRT_EINVAL, "asyncrt_task_error_get: out is NULL or its size is too small");
  return art_task_error_get(t, out);
}

int asyncrt_task_cancel_ex(asyncrt_task *task, uint64_t cleanup_timeout_ns) {
  REFUSE_IN_CHILD();
  art_task *t;
  int rc = resolve_task(task, &t);
  return rc ? rc : art_task_cancel_deadline(t, cleanup_timeout_ns);
}

int asyncrt_shield_enter(asyncrt_context *cx) {
  REFUSE_IN_CHILD();
  if (!cx) return art_fail(ASYNCRT_EINVAL, "asyncrt_shield_enter: cx is NULL");
  return art_shield_enter(cx);
}

int asyncrt_shield_exit(asyncrt_context *cx) {
  REFUSE_IN_CHILD();
  if (!cx) return art_fail(ASYNCRT_EINVAL, "asyncrt_shield_exit: cx is NULL");
  return art_shield_exit(cx);
}

int asyncrt_task_set_name(asyncrt_task *task, const char *name) {
  REFUSE_IN_CHILD();
  art_task *t;
  int rc = resolve_task(task, &t);
  return rc ? rc : art_task_set_name(t, name);
}

int asyncrt_context_set_name(asyncrt_context *cx, const char *name) {
  REFUSE_IN_CHILD();
  if (!cx) return art_fail(ASYNCRT_EINVAL, "asyncrt_context_set_name: cx is NULL");
  art_task *t = art_context_task(cx);
  if (!t) return art_fail(ASYNCRT_ENOTSUP, "asyncrt_context_set_name: not inside the poll of an asyncrt task");
  return art_task_set_name(t, name);
}

int asyncrt_executor_dump(asyncrt_executor *ex, unsigned format, asyncrt_dump_write write, void *user) {
  REFUSE_IN_CHILD();
  art_exec *e;
  int rc = resolve_exec(ex, &e);
  if (rc) return rc;
  if (format > ASYNCRT_DUMP_JSON || !write)
    return art_fail(ASYNCRT_EINVAL, "asyncrt_executor_dump: %s", write ? "unknown format" : "write is NULL");
  if (e->group) return art_exec_dump(e->group->workers, e->group->nworkers, format, write, user);
  return art_exec_dump(&e, 1, format, write, user);
}
