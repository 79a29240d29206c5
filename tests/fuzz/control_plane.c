/* control_plane.c -- the Go control plane (runtime/executor, capi/exports.go)
 * rewritten in C for the fuzzer, so that libFuzzer can drive the public
 * functions in capi/ and the whole data plane in one instrumented program
 * with no Go runtime in it.
 *
 * It keeps the Go code's order of operations and its statuses (the fuzzer's
 * model checks them against the header), for the three kinds: local,
 * thread-per-core (pthreads running art_worker_loop) and foreign. What it
 * leaves out: CPU pinning, thread hooks (the fuzzer passes none) and the
 * timerfd of thread-per-core cores (only a host that polls a local
 * executor's fd reads it). One deliberate difference: the cores are
 * configured before the workers start (Go starts them first; see the note
 * in the fuzzer's README).
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include "../../runtime/dataplane/art.h"
#include "cgo_stub/_cgo_export.h"

enum { KIND_LOCAL = 0, KIND_THREADS = 1, KIND_FOREIGN = -1 };

#define DEFAULT_BUDGET_POLLS 256u
#define DEFAULT_BUDGET_NS 1000000u
#define DEFAULT_SHUTDOWN_NS 5000000000ull
#define PARK_BOUND_NS 1000000000ull
#define BATCH (1u << 16)

typedef struct cp_exec {
  int kind;
  unsigned n;
  art_exec **cores;
  int *pollfds, *timerfds;
  uint64_t handle;
  pthread_mutex_t mu; /* freed */
  int freed;
  /* thread-per-core */
  art_group *group;
  pthread_t *threads;
  art_worker_config wcfg;
  uint64_t shutdown_ns;
  pthread_mutex_t stop_mu;
  pthread_mutex_t exit_mu; /* exited, with exit_cv */
  pthread_cond_t exit_cv;
  unsigned exited;
  _Atomic int cancelled;
} cp_exec;

static uint64_t now_ns(void) { return art_now_ns(); }

static int fail(int status, const char *msg) { return art_fail(status, "%s", msg); }

/* One core with its eventfd, epoll set and timerfd, as addCore makes it. */
static int add_core(cp_exec *x, const asyncrt_executor_config *c, size_t limit, unsigned i) {
  int evfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (evfd < 0) return fail(ASYNCRT_ENOMEM, "eventfd failed");
  int pollfd = epoll_create1(EPOLL_CLOEXEC);
  if (pollfd < 0) {
    close(evfd);
    return fail(ASYNCRT_ENOMEM, "epoll_create1 failed");
  }
  struct epoll_event ev = {.events = EPOLLIN, .data.fd = evfd};
  if (epoll_ctl(pollfd, EPOLL_CTL_ADD, evfd, &ev)) {
    close(evfd);
    close(pollfd);
    return fail(ASYNCRT_ENOMEM, "epoll_ctl failed");
  }
  int tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
  if (tfd < 0) {
    close(evfd);
    close(pollfd);
    return fail(ASYNCRT_ENOMEM, "timerfd_create failed");
  }
  art_exec *core = art_exec_new(c ? c->allocator : NULL, limit, evfd);
  if (!core) {
    int st = art_last_status();
    close(evfd);
    close(tfd);
    close(pollfd);
    return st;
  }
  core->pollfd = pollfd;
  struct epoll_event tev = {.events = EPOLLIN, .data.fd = tfd};
  if (epoll_ctl(pollfd, EPOLL_CTL_ADD, tfd, &tev)) {
    art_exec_close(core);
    close(tfd);
    close(pollfd);
    return fail(ASYNCRT_ENOMEM, "epoll_ctl failed");
  }
  x->cores[i] = core;
  x->pollfds[i] = pollfd;
  x->timerfds[i] = tfd;
  return ASYNCRT_OK;
}

/* Lets go of the cores; runs once no driver uses them. */
static void release(cp_exec *x) {
  for (unsigned i = 0; i < x->n; i++) {
    if (x->pollfds[i] >= 0) close(x->pollfds[i]);
    if (x->timerfds[i] >= 0) close(x->timerfds[i]);
    if (x->cores[i]) art_exec_close(x->cores[i]);
  }
  free(x->cores);
  free(x->pollfds);
  free(x->timerfds);
  free(x->threads);
  pthread_mutex_destroy(&x->mu);
  pthread_mutex_destroy(&x->stop_mu);
  pthread_mutex_destroy(&x->exit_mu);
  pthread_cond_destroy(&x->exit_cv);
  free(x);
}

typedef struct worker_arg {
  cp_exec *x;
  unsigned i;
} worker_arg;

static void *worker_main(void *arg) {
  worker_arg a = *(worker_arg *)arg;
  free(arg);
  art_exec *core = a.x->cores[a.i];
  art_exec_acquire_driver(core);
  art_worker_loop(core, &a.x->wcfg);
  art_exec_release_driver(core);
  pthread_mutex_lock(&a.x->exit_mu);
  a.x->exited++;
  pthread_cond_broadcast(&a.x->exit_cv);
  pthread_mutex_unlock(&a.x->exit_mu);
  return NULL;
}

static cp_exec *cp_new(int kind, unsigned n) {
  cp_exec *x = calloc(1, sizeof *x);
  if (!x) return NULL;
  x->kind = kind;
  x->n = n;
  x->cores = calloc(n, sizeof *x->cores);
  x->pollfds = malloc(n * sizeof *x->pollfds);
  x->timerfds = malloc(n * sizeof *x->timerfds);
  x->threads = calloc(n, sizeof *x->threads);
  if (!x->cores || !x->pollfds || !x->timerfds || !x->threads) {
    free(x->cores);
    free(x->pollfds);
    free(x->timerfds);
    free(x->threads);
    free(x);
    return NULL;
  }
  for (unsigned i = 0; i < n; i++) x->pollfds[i] = x->timerfds[i] = -1;
  pthread_mutex_init(&x->mu, NULL);
  pthread_mutex_init(&x->stop_mu, NULL);
  pthread_mutex_init(&x->exit_mu, NULL);
  pthread_condattr_t ca;
  pthread_condattr_init(&ca);
  pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
  pthread_cond_init(&x->exit_cv, &ca);
  pthread_condattr_destroy(&ca);
  return x;
}

/* Publishes the first core's handle and shares it with the others. */
static int publish(cp_exec *x) {
  art_exec *first = x->cores[0];
  first->go_ref = (uintptr_t)x;
  x->handle = art_handle_new(ART_H_EXEC, first);
  first->handle = x->handle;
  if (!x->handle) return fail(ASYNCRT_ENOMEM, "no memory for an executor handle");
  for (unsigned i = 1; i < x->n; i++) {
    x->cores[i]->handle = first->handle;
    x->cores[i]->go_ref = first->go_ref;
  }
  return ASYNCRT_OK;
}

static int stop(cp_exec *x, int immediate, uint64_t grace_until, uint64_t stop_until, uint64_t cancel_bound);

int art_go_executor_new(asyncrt_executor_config *c, uintptr_t *out) {
  int threads = c->kind == ASYNCRT_EXECUTOR_THREADS;
  if (c->kind != ASYNCRT_EXECUTOR_LOCAL && !threads) return fail(ASYNCRT_EINVAL, "unknown executor kind");
  unsigned n = 1;
  if (threads) {
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    n = c->workers ? c->workers : (unsigned)(cpus > 0 ? cpus : 1);
    if (n < 1 || n > 4096) return fail(ASYNCRT_EINVAL, "workers: want 1..4096 (0 for one per CPU)");
  }
  cp_exec *x = cp_new(threads ? KIND_THREADS : KIND_LOCAL, n);
  if (!x) return fail(ASYNCRT_ENOMEM, "no memory for an executor");
  int rc = ASYNCRT_OK;
  for (unsigned i = 0; i < n && !rc; i++) rc = add_core(x, c, threads ? 0 : c->memory_limit, i);
  if (!rc && threads && !(x->group = art_group_new(x->cores, n, c->memory_limit))) rc = art_last_status();
  if (!rc) {
    for (unsigned i = 0; i < n; i++) {
      art_core_configure(x->cores[i], i ? x->cores[0]->clock : NULL, c->clock == ASYNCRT_CLOCK_TEST,
                         c->budget_polls ? c->budget_polls : DEFAULT_BUDGET_POLLS,
                         c->budget_ns ? c->budget_ns : DEFAULT_BUDGET_NS, c->spin_ns, x->timerfds[i]);
      x->timerfds[i] = -1; /* the core owns it now */
    }
    rc = publish(x);
  }
  /* Local executors use it too: it bounds block_on's runs after a timeout. */
  x->shutdown_ns = c->shutdown_timeout_ns ? c->shutdown_timeout_ns : DEFAULT_SHUTDOWN_NS;
  if (!rc && threads) {
    x->wcfg = (art_worker_config){.budget_polls = c->budget_polls ? c->budget_polls : DEFAULT_BUDGET_POLLS,
                                  .budget_ns = c->budget_ns ? c->budget_ns : DEFAULT_BUDGET_NS,
                                  .spin_ns = c->spin_ns, .park_bound_ns = PARK_BOUND_NS};
    for (unsigned i = 0; i < n; i++) {
      worker_arg *a = malloc(sizeof *a);
      if (!a) abort(); /* the harness does not inject malloc failures here */
      *a = (worker_arg){x, i};
      if (pthread_create(&x->threads[i], NULL, worker_main, a)) abort();
    }
  }
  if (rc) {
    if (x->handle) art_handle_free(x->handle);
    release(x);
    return rc;
  }
  *out = x->handle;
  return ASYNCRT_OK;
}

int art_go_executor_new_foreign(asyncrt_foreign_vtable *vt, void *user, uintptr_t *out) {
  cp_exec *x = cp_new(KIND_FOREIGN, 1);
  if (!x) return fail(ASYNCRT_ENOMEM, "no memory for an executor");
  art_exec *e = art_exec_new(NULL, 0, -1);
  if (!e) {
    release(x);
    return art_last_status();
  }
  e->is_foreign = 1;
  e->foreign = *vt;
  e->foreign_user = user;
  x->cores[0] = e;
  art_core_configure(e, NULL, 0, DEFAULT_BUDGET_POLLS, DEFAULT_BUDGET_NS, 0, -1);
  int rc = publish(x);
  if (rc) {
    release(x);
    return rc;
  }
  *out = x->handle;
  return ASYNCRT_OK;
}

/* Lookup: the control-plane object a live executor handle names. */
static int lookup(uintptr_t h, cp_exec **x) {
  art_exec *e = art_handle_get(h, ART_H_EXEC);
  if (!e) return h ? fail(ASYNCRT_EHANDLE, "executor is not a live executor handle") : fail(ASYNCRT_EINVAL, "executor is NULL");
  *x = (cp_exec *)e->go_ref;
  return ASYNCRT_OK;
}

static int unpublish(cp_exec *x) {
  pthread_mutex_lock(&x->mu);
  int ok = !x->freed && art_handle_free(x->handle);
  if (ok) x->freed = 1;
  pthread_mutex_unlock(&x->mu);
  return ok ? ASYNCRT_OK : fail(ASYNCRT_EHANDLE, "executor was already freed");
}

static int is_freed(cp_exec *x) {
  pthread_mutex_lock(&x->mu);
  int f = x->freed;
  pthread_mutex_unlock(&x->mu);
  return f;
}

static int on_worker(cp_exec *x) {
  return art_tls_cx && art_tls_cx->exec && art_tls_cx->exec->group == x->group;
}

static uint64_t live(cp_exec *x) { return art_group_live(x->group); }

static int all_exited(cp_exec *x, uint64_t wait_ns) {
  pthread_mutex_lock(&x->exit_mu);
  if (x->exited < x->n) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    uint64_t at = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec + wait_ns;
    ts.tv_sec = (time_t)(at / 1000000000u);
    ts.tv_nsec = (long)(at % 1000000000u);
    pthread_cond_timedwait(&x->exit_cv, &x->exit_mu, &ts);
  }
  int done = x->exited == x->n;
  pthread_mutex_unlock(&x->exit_mu);
  return done;
}

/* threads.go's stop: refuse spawns, let tasks finish (graceful) or cancel
 * them, then wait for the workers until stop_until (0: no bound). */
static int stop(cp_exec *x, int immediate, uint64_t grace_until, uint64_t stop_until, uint64_t cancel_bound) {
  pthread_mutex_lock(&x->stop_mu);
  for (unsigned i = 0; i < x->n; i++) art_exec_refuse_spawns(x->cores[i]);
  atomic_store(&x->group->stopping, 1);
  if (!immediate && !atomic_load(&x->cancelled)) {
    while (live(x) > 0 && !(grace_until && now_ns() > grace_until)) usleep(200);
  }
  if (live(x) > 0 && !atomic_exchange(&x->cancelled, 1)) {
    for (unsigned i = 0; i < x->n; i++) art_exec_cancel_all(x->cores[i]);
    if (cancel_bound) stop_until = now_ns() + cancel_bound;
  }
  int rc = ASYNCRT_OK;
  for (;;) {
    for (unsigned i = 0; i < x->n; i++) {
      if (atomic_load(&x->cancelled)) art_exec_cancel_all(x->cores[i]);
      art_exec_wake_driver(x->cores[i]);
    }
    uint64_t wait = 10000000u;
    if (stop_until) {
      uint64_t now = now_ns();
      if (now >= stop_until) {
        rc = fail(ASYNCRT_ETIMEDOUT, "a worker did not stop in time (stuck in a poll?)");
        break;
      }
      if (stop_until - now < wait) wait = stop_until - now;
    }
    if (all_exited(x, wait)) {
      art_group_drain_injector(x->group);
      break;
    }
  }
  pthread_mutex_unlock(&x->stop_mu);
  return rc;
}

int art_go_executor_shutdown(uintptr_t h, int mode, int64_t timeout_ns) {
  cp_exec *x;
  int rc = lookup(h, &x);
  if (rc) return rc;
  if (x->kind != KIND_THREADS) return fail(ASYNCRT_ENOTSUP, "asyncrt_executor_shutdown is not supported");
  if (mode != ASYNCRT_SHUTDOWN_GRACEFUL && mode != ASYNCRT_SHUTDOWN_IMMEDIATE)
    return fail(ASYNCRT_EINVAL, "unknown shutdown mode");
  if (on_worker(x)) return fail(ASYNCRT_EBUSY, "cannot shut an executor down from one of its own workers");
  uint64_t until = timeout_ns >= 0 ? now_ns() + (uint64_t)timeout_ns : 0;
  if (mode == ASYNCRT_SHUTDOWN_GRACEFUL) return stop(x, 0, until, 0, x->shutdown_ns);
  return stop(x, 1, 0, until, 0);
}

/* Joins the workers and releases the executor once they are gone. */
static void *reaper(void *arg) {
  cp_exec *x = arg;
  while (!all_exited(x, 100000000u)) {
  }
  for (unsigned i = 0; i < x->n; i++) pthread_join(x->threads[i], NULL);
  release(x);
  return NULL;
}

int art_go_executor_free(uintptr_t h) {
  cp_exec *x;
  int rc = lookup(h, &x);
  if (rc) return rc;
  if (x->kind == KIND_THREADS) {
    if (on_worker(x)) return fail(ASYNCRT_EBUSY, "cannot free an executor from one of its own workers");
    if ((rc = unpublish(x))) return rc;
    for (unsigned i = 0; i < x->n; i++) art_exec_detach_subsystems(x->cores[i]);
    rc = stop(x, 1, 0, now_ns() + x->shutdown_ns, 0);
    for (unsigned i = 0; i < x->n; i++) art_timers_orphan(x->cores[i]);
    if (rc) { /* a worker is stuck: release after it leaves */
      pthread_t t;
      if (pthread_create(&t, NULL, reaper, x) == 0) pthread_detach(t);
      return rc;
    }
    for (unsigned i = 0; i < x->n; i++) pthread_join(x->threads[i], NULL);
    release(x);
    return ASYNCRT_OK;
  }
  art_exec *core = x->cores[0];
  if (x->kind == KIND_FOREIGN) {
    if (art_in_poll()) return fail(ASYNCRT_EBUSY, "cannot free a foreign executor from inside a poll");
    if ((rc = unpublish(x))) return rc;
    art_exec_detach_subsystems(core);
    art_exec_shutdown(core);
    art_timers_orphan(core);
    release(x);
    return ASYNCRT_OK;
  }
  if (is_freed(x)) return fail(ASYNCRT_EHANDLE, "executor was already freed");
  if (!art_exec_acquire_driver(core))
    return fail(ASYNCRT_EBUSY, "executor is being driven (by another thread, or from one of its polls)");
  if ((rc = unpublish(x))) {
    art_exec_release_driver(core);
    return rc;
  }
  art_exec_detach_subsystems(core);
  art_exec_shutdown(core);
  art_timers_orphan(core);
  art_exec_release_driver(core);
  release(x);
  return ASYNCRT_OK;
}

int art_go_run(uintptr_t h, uint64_t max_polls, uint64_t max_ns, uint64_t *polls_out) {
  cp_exec *x;
  int rc = lookup(h, &x);
  if (rc) return rc;
  if (x->kind != KIND_LOCAL) return fail(ASYNCRT_ENOTSUP, "driving it from the calling thread is not supported");
  if (art_in_poll()) return fail(ASYNCRT_EREENTRANT, "cannot drive an executor from inside a poll");
  art_exec *core = x->cores[0];
  if (!art_exec_acquire_driver(core)) return fail(ASYNCRT_EBUSY, "executor is already driven by another thread");
  uint64_t deadline = max_ns ? now_ns() + max_ns : 0, polls = 0;
  if (!max_polls) max_polls = UINT64_MAX;
  while (polls < max_polls) {
    uint64_t n, left = max_polls - polls;
    int why = art_exec_run_ex(core, left < BATCH ? left : BATCH, deadline, NULL, &n);
    polls += n;
    if (why == ART_RUN_DRAINED || n < BATCH || (deadline && now_ns() >= deadline)) break;
  }
  art_exec_release_driver(core);
  if (polls_out) *polls_out = polls;
  return ASYNCRT_OK;
}

/* The stall watchdog's goroutine (capi/exports.go): the fuzzer's control
 * plane has none; starting or stopping it only checks the handle, and the
 * C side (art_watch.c) keeps the threshold and checks on demand. */
int art_go_executor_watch(uintptr_t h, uint64_t period_ns) {
  (void)period_ns;
  cp_exec *x;
  return lookup(h, &x);
}

/* rootResult: a completed block_on root's output or error. */
static int root_result(art_task *root, void *out, int timed_out) {
  int st = art_task_status(root);
  if (st == ASYNCRT_OK) {
    if (root->output_size && out) memcpy(out, art_task_output(root), root->output_size);
    return ASYNCRT_OK;
  }
  if (timed_out && (st == ASYNCRT_ECANCELLED || st == ASYNCRT_EAGAIN))
    return fail(ASYNCRT_ETIMEDOUT, "block_on: the future did not complete in time; it was cancelled");
  return fail(st, st == ASYNCRT_ECANCELLED ? "block_on: the future was cancelled" : "block_on: the future failed");
}

int art_go_block_on(uintptr_t h, asyncrt_future *fut, void *out, int64_t timeout_ns) {
  cp_exec *x;
  int rc = lookup(h, &x);
  if (rc) {
    art_drop_future(fut);
    return rc;
  }
  uint64_t deadline = timeout_ns >= 0 ? now_ns() + (uint64_t)timeout_ns : 0;
  if (x->kind == KIND_THREADS) {
    if (art_in_poll()) {
      art_drop_future(fut);
      return fail(ASYNCRT_EREENTRANT, "cannot block_on from inside a poll");
    }
    art_exec *core = art_group_place(x->group, ASYNCRT_SPAWN_SEND);
    if (!core) {
      art_drop_future(fut);
      return art_last_status();
    }
    art_task *root;
    if ((rc = art_exec_spawn(core, fut, ASYNCRT_SPAWN_SEND, NULL, &root))) return rc;
    int timed_out = !art_task_wait(root, deadline);
    if (timed_out) {
      art_task_cancel(root);
      art_task_wait_cancelled(root, now_ns() + x->shutdown_ns);
    }
    rc = root_result(root, out, timed_out);
    art_task_unref(root);
    return rc;
  }
  if (x->kind != KIND_LOCAL) {
    art_drop_future(fut);
    return fail(ASYNCRT_ENOTSUP, "asyncrt_block_on is not supported");
  }
  return art_exec_block_on(x->cores[0], fut, out, timeout_ns, x->shutdown_ns);
}
