/* dataplane_test.c -- the C data plane on its own, without Go, so that it can
 * run under AddressSanitizer, UndefinedBehaviorSanitizer and ThreadSanitizer.
 * Prints "PASS <name>" per test; exits 1 at the first failure. Every wait is
 * bounded: a lost wakeup fails the test instead of hanging it. */
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "../art.h"

#include "check.h"

static art_exec *exec_new(size_t limit, const asyncrt_allocator *hook) {
  int efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  art_exec *e = art_exec_new(hook, limit, efd);
  CHECK(e, "art_exec_new: %s", art_last_error());
  return e;
}

static void exec_free(art_exec *e) {
  CHECK(art_exec_acquire_driver(e), "driver busy at free");
  art_exec_shutdown(e);
  art_exec_release_driver(e);
  art_exec_close(e);
}

/* Runs until `until` completes, waiting on the eventfd (bounded) when idle. */
static void run_until(art_exec *e, art_task *until) {
  CHECK(art_exec_acquire_driver(e), "driver busy");
  for (int idle = 0; !(atomic_load(&until->state) & ART_COMPLETE);) {
    if (art_exec_run(e, 1u << 20, 0, until)) {
      idle = 0;
      continue;
    }
    uint64_t t0 = art_now_ns();
    art_exec_park(e, 100000000); /* a lost wakeup shows as 100 parks that time out */
    if (art_now_ns() - t0 >= 100000000) CHECK(++idle < 100, "no progress for 10 s: lost wakeup?");
  }
  art_exec_release_driver(e);
}

/* ---- a counting future ----------------------------------------------------- */

typedef struct {
  _Atomic int polls, drops;
  int yields;
  _Atomic int target; /* with wait: complete once polls reach it */
  int wait, fail;
  uint64_t output;
  asyncrt_waker waker;
  _Atomic int has_waker;
} probe;

static int probe_poll(void *self, asyncrt_context *cx, void *out) {
  probe *p = self;
  int n = atomic_fetch_add(&p->polls, 1) + 1;
  if (p->yields > 0) {
    p->yields--;
    art_waker_wake_by_ref(&cx->waker);
    return ASYNCRT_POLL_PENDING;
  }
  if (p->fail) {
    cx->failure = p->fail;
    return ASYNCRT_POLL_ERROR;
  }
  if (p->wait && n < atomic_load(&p->target)) {
    if (!atomic_load(&p->has_waker)) {
      art_waker_clone(&cx->waker, &p->waker);
      atomic_store(&p->has_waker, 1);
    }
    return ASYNCRT_POLL_PENDING;
  }
  if (out) memcpy(out, &p->output, sizeof p->output);
  return ASYNCRT_POLL_READY;
}

static void probe_drop(void *self) {
  probe *p = self;
  if (atomic_exchange(&p->has_waker, 0)) art_waker_drop(&p->waker);
  atomic_fetch_add(&p->drops, 1);
}

static const asyncrt_future_vtable probe_vt = {sizeof(asyncrt_future_vtable), 8, probe_poll, probe_drop, NULL};

static asyncrt_future probe_future(probe *p) { return (asyncrt_future){p, &probe_vt}; }

/* ---- tests ------------------------------------------------------------------- */

static void test_yield_and_join(void) {
  art_exec *e = exec_new(0, NULL);
  enum { T = 100 };
  static probe ps[T];
  art_task *tasks[T];
  for (int i = 0; i < T; i++) {
    ps[i] = (probe){.yields = i, .output = 1000u + i};
    asyncrt_future f = probe_future(&ps[i]);
    CHECK(art_exec_spawn(e, &f, 0, NULL, &tasks[i]) == 0, "spawn %d: %s", i, art_last_error());
  }
  CHECK(art_exec_acquire_driver(e), "driver");
  uint64_t polls = art_exec_run(e, UINT64_MAX, 0, NULL);
  art_exec_release_driver(e);
  CHECK(polls == T * (T + 1) / 2, "polls %llu, want %d", (unsigned long long)polls, T * (T + 1) / 2);
  for (int i = 0; i < T; i++) {
    CHECK(art_task_status(tasks[i]) == ASYNCRT_OK, "task %d status %d", i, art_task_status(tasks[i]));
    asyncrt_future j;
    CHECK(art_task_join(tasks[i], &j) == 0, "join");
    CHECK(art_task_join(tasks[i], &j) == ASYNCRT_EBUSY, "second join must be EBUSY");
    uint64_t out = 0;
    asyncrt_context cx = {0};
    CHECK(j.vtable->poll(j.self, &cx, &out) == ASYNCRT_POLL_READY && out == 1000u + i, "join output %llu",
          (unsigned long long)out);
    j.vtable->drop(j.self);
    art_task_unref(tasks[i]);
    CHECK(ps[i].drops == 1 && ps[i].polls == i + 1, "task %d drops %d polls %d", i, ps[i].drops, ps[i].polls);
  }
  asyncrt_worker_stats st;
  art_core_stats(e, &st);
  CHECK(st.tasks_live == 0 && st.memory_in_use == 0 && st.tasks_spawned == T && st.tasks_completed == T,
        "stats live %llu mem %llu completed %llu", (unsigned long long)st.tasks_live,
        (unsigned long long)st.memory_in_use, (unsigned long long)st.tasks_completed);
  exec_free(e);
  puts("PASS yield_and_join");
}

/* Threads the runtime never saw wake a parked task; each wake must lead to
 * at least one more poll, and the task completes after all of them. */
typedef struct { probe *p; int wakes; } waker_arg;

static void *wake_thread(void *arg) {
  waker_arg *a = arg;
  while (!atomic_load(&a->p->has_waker)) sched_yield();
  for (int i = 0; i < a->wakes; i++) {
    asyncrt_waker w;
    art_waker_clone(&a->p->waker, &w); /* the waker stays set while the task lives */
    art_waker_wake(&w);
  }
  return NULL;
}

static void test_cross_thread_wakes(void) {
  art_exec *e = exec_new(0, NULL);
  enum { THREADS = 4, WAKES = 2000 };
  probe p = {.wait = 1};
  atomic_store(&p.target, 1 << 30);
  asyncrt_future f = probe_future(&p);
  art_task *t;
  CHECK(art_exec_spawn(e, &f, 0, NULL, &t) == 0, "spawn");
  pthread_t th[THREADS];
  waker_arg arg = {&p, WAKES};
  CHECK(art_exec_acquire_driver(e), "driver");
  art_exec_run(e, 1, 0, NULL); /* first poll publishes the waker */
  art_exec_release_driver(e);
  for (int i = 0; i < THREADS; i++) pthread_create(&th[i], NULL, wake_thread, &arg);
  for (int i = 0; i < THREADS; i++) pthread_join(th[i], NULL);
  /* Every wake happened; at least one poll must follow the last of them. */
  int before = atomic_load(&p.polls);
  atomic_store(&p.target, before + 1);
  asyncrt_waker w;
  art_waker_clone(&p.waker, &w);
  art_waker_wake(&w);
  run_until(e, t);
  CHECK(art_task_status(t) == ASYNCRT_OK, "status %d", art_task_status(t));
  CHECK(p.drops == 1, "drops %d", p.drops);
  art_task_unref(t);
  exec_free(e);
  puts("PASS cross_thread_wakes");
}

static void test_cancel_and_shutdown_drop_once(void) {
  art_exec *e = exec_new(0, NULL);
  probe queued = {0}, parked = {.wait = 1}, yielding = {.yields = 1 << 30};
  atomic_store(&parked.target, 1 << 30);
  art_task *tq, *tp;
  asyncrt_future f = probe_future(&queued);
  CHECK(art_exec_spawn(e, &f, 0, NULL, &tq) == 0, "spawn");
  art_task_cancel(tq); /* before its first poll */
  f = probe_future(&parked);
  CHECK(art_exec_spawn(e, &f, 0, NULL, &tp) == 0, "spawn");
  f = probe_future(&yielding);
  CHECK(art_exec_spawn(e, &f, 0, NULL, NULL) == 0, "spawn");
  CHECK(art_exec_acquire_driver(e), "driver");
  art_exec_run(e, 100, 0, NULL);
  art_exec_release_driver(e);
  CHECK(art_task_status(tq) == ASYNCRT_ECANCELLED && queued.polls == 0 && queued.drops == 1,
        "cancelled-before-poll: status %d polls %d drops %d", art_task_status(tq), queued.polls, queued.drops);
  CHECK(art_task_status(tp) == ASYNCRT_EAGAIN && parked.drops == 0, "parked task must still live");
  exec_free(e); /* parked and yielding (queued) tasks are cancelled */
  CHECK(parked.drops == 1 && yielding.drops == 1, "shutdown drops %d %d", parked.drops, yielding.drops);
  CHECK(art_task_status(tp) == ASYNCRT_ECANCELLED, "status after shutdown %d", art_task_status(tp));
  /* The task outlives its executor's handle; waking it is harmless. */
  art_waker_wake_by_ref(&(asyncrt_waker){tp, &art_task_waker_vtable});
  art_task_unref(tq);
  art_task_unref(tp);
  puts("PASS cancel_and_shutdown_drop_once");
}

/* A task on executor A is joined from a task on executor B, driven by another
 * thread: completion on A must wake B across threads. */
typedef struct { art_exec *e; art_task *until; } drive_arg;
static void *drive_thread(void *arg) {
  drive_arg *a = arg;
  run_until(a->e, a->until);
  return NULL;
}

typedef struct { asyncrt_future join; uint64_t got; int polls; } joiner;
static int joiner_poll(void *self, asyncrt_context *cx, void *out) {
  joiner *j = self;
  j->polls++;
  return j->join.vtable->poll(j->join.self, cx, &j->got);
}
static void joiner_drop(void *self) {
  joiner *j = self;
  j->join.vtable->drop(j->join.self);
}
static const asyncrt_future_vtable joiner_vt = {sizeof(asyncrt_future_vtable), 0, joiner_poll, joiner_drop, NULL};

static void test_join_across_executors(void) {
  art_exec *a = exec_new(0, NULL), *b = exec_new(0, NULL);
  probe p = {.wait = 1, .output = 77};
  atomic_store(&p.target, 1 << 30);
  art_task *ta, *tb;
  asyncrt_future f = probe_future(&p);
  CHECK(art_exec_spawn(a, &f, 0, NULL, &ta) == 0, "spawn a");
  joiner j = {0};
  CHECK(art_task_join(ta, &j.join) == 0, "join");
  f = (asyncrt_future){&j, &joiner_vt};
  CHECK(art_exec_spawn(b, &f, 0, NULL, &tb) == 0, "spawn b");
  pthread_t th;
  drive_arg arg = {b, tb};
  pthread_create(&th, NULL, drive_thread, &arg);
  CHECK(art_exec_acquire_driver(a), "driver a");
  art_exec_run(a, 10, 0, NULL);
  art_exec_release_driver(a);
  while (!atomic_load(&p.has_waker)) sched_yield();
  atomic_store(&p.target, 0);
  asyncrt_waker w;
  art_waker_clone(&p.waker, &w);
  art_waker_wake(&w);
  run_until(a, ta);
  pthread_join(th, NULL);
  CHECK(j.got == 77 && art_task_status(tb) == ASYNCRT_OK, "joined %llu status %d", (unsigned long long)j.got,
        art_task_status(tb));
  art_task_unref(ta);
  art_task_unref(tb);
  exec_free(a);
  exec_free(b);
  puts("PASS join_across_executors");
}

static int hook_calls, hook_fail_at;
static void *failing_alloc(size_t size, size_t align, void *user) {
  (void)user;
  if (++hook_calls == hook_fail_at) return NULL;
  void *p;
  return posix_memalign(&p, align, size) ? NULL : p;
}
static void plain_free(void *p, size_t size, void *user) {
  (void)size, (void)user;
  free(p);
}

static void test_memory_limit_and_hook(void) {
  art_exec *e = exec_new(3 * art_task_slot_size(8), NULL);
  probe ps[4] = {{0}};
  for (int i = 0; i < 3; i++) {
    asyncrt_future f = probe_future(&ps[i]);
    CHECK(art_exec_spawn(e, &f, 0, NULL, NULL) == 0, "spawn %d under the cap", i);
  }
  asyncrt_future f = probe_future(&ps[3]);
  CHECK(art_exec_spawn(e, &f, 0, NULL, NULL) == ASYNCRT_ELIMIT, "spawn past the cap must be ELIMIT");
  CHECK(ps[3].drops == 1, "a refused future is dropped at once");
  exec_free(e);

  asyncrt_allocator hook = {sizeof hook, failing_alloc, plain_free, NULL};
  hook_calls = 0;
  hook_fail_at = 2;
  e = exec_new(0, &hook);
  int spawned = 0, status = 0;
  static probe many[5000];
  for (; spawned < 5000; spawned++) {
    asyncrt_future g = probe_future(&many[spawned]);
    if ((status = art_exec_spawn(e, &g, 0, NULL, NULL))) break;
  }
  CHECK(status == ASYNCRT_ENOMEM && hook_calls == 2, "status %d after %d spawns, %d hook calls", status, spawned,
        hook_calls);
  CHECK(many[spawned].drops == 1, "refused future dropped");
  asyncrt_future g = probe_future(&many[spawned + 1]);
  CHECK(art_exec_spawn(e, &g, 0, NULL, NULL) == 0, "spawn after the hook recovers: %s", art_last_error());
  exec_free(e);
  for (int i = 0; i <= spawned + 1; i++) CHECK(many[i].drops == 1, "task %d drops %d", i, many[i].drops);
  puts("PASS memory_limit_and_hook");
}

static void test_handles(void) {
  int x;
  uint64_t h = art_handle_new(ART_H_TASK, &x);
  CHECK(art_handle_get(h, ART_H_TASK) == &x, "live handle");
  CHECK(art_handle_get(h, ART_H_EXEC) == NULL, "wrong type");
  CHECK(art_handle_free(h) == 1 && art_handle_free(h) == 0, "free once");
  CHECK(art_handle_get(h, ART_H_TASK) == NULL, "stale handle");
  uint64_t h2 = art_handle_new(ART_H_TASK, &x);
  CHECK(h2 != h && art_handle_get(h, ART_H_TASK) == NULL, "reused slot, new generation");
  CHECK(art_handle_get(0x12345, ART_H_TASK) == NULL && art_handle_get(~0ull, ART_H_TASK) == NULL, "made-up");
  art_handle_free(h2);
  puts("PASS handles");
}

static void test_hostq(void) {
  art_exec *e = exec_new(0, NULL);
  art_hostq *q = art_hostq_new();
  uint64_t tag;
  asyncrt_future f;
  CHECK(art_hostq_future(q, &tag, &f) == 0, "hostq future");
  art_task *t;
  CHECK(art_exec_spawn(e, &f, 0, NULL, &t) == 0, "spawn");
  CHECK(art_exec_acquire_driver(e), "driver");
  art_exec_run(e, 10, 0, NULL);
  uint64_t ev[4];
  CHECK(art_hostq_take(q, ev, 4) == 1 && ev[0] == (ASYNCRT_HOSTQ_POLL | tag), "one POLL event");
  art_hostq_wake(q, &tag, 1);
  art_exec_run(e, 10, 0, NULL);
  CHECK(art_hostq_take(q, ev, 4) == 1 && ev[0] == (ASYNCRT_HOSTQ_POLL | tag), "woken: polled again");
  int st = 0;
  art_hostq_complete(q, &tag, &st, 1);
  art_exec_run(e, 10, 0, NULL);
  art_exec_release_driver(e);
  CHECK(art_task_status(t) == ASYNCRT_OK, "completed");
  CHECK(art_hostq_take(q, ev, 4) == 1 && ev[0] == (ASYNCRT_HOSTQ_DROP | tag), "DROP event");
  art_task_unref(t);
  art_hostq_close(q);
  exec_free(e);
  puts("PASS hostq");
}

/* Two threads each drive one core of a group, stealing when idle, while
 * core 0's tasks spawn Send tasks: every task completes and is dropped
 * exactly once, some run on the other core, and (under TSan) no race. */
enum { GROUP_TASKS = 20000 };
static probe group_probes[GROUP_TASKS];
static _Atomic int group_ran_on[2];
static _Atomic int group_done;

typedef struct { art_exec *core; int index; } group_arg;

static int counted_poll(void *self, asyncrt_context *cx, void *out) {
  probe *p = self;
  atomic_fetch_add(&group_ran_on[cx->exec->index], 1);
  int r = probe_poll(self, cx, out);
  if (r == ASYNCRT_POLL_READY) atomic_fetch_add(&group_done, 1);
  (void)p;
  return r;
}
static const asyncrt_future_vtable counted_vt = {sizeof(asyncrt_future_vtable), 8, counted_poll, probe_drop, NULL};

static int spawner_poll(void *self, asyncrt_context *cx, void *out) {
  (void)self, (void)out;
  for (int i = 0; i < GROUP_TASKS; i++) {
    group_probes[i] = (probe){.yields = i % 3};
    asyncrt_future f = {&group_probes[i], &counted_vt};
    CHECK(art_exec_spawn(cx->exec, &f, ASYNCRT_SPAWN_SEND, NULL, NULL) == 0, "send spawn: %s", art_last_error());
  }
  return ASYNCRT_POLL_READY;
}
static const asyncrt_future_vtable spawner_vt = {sizeof(asyncrt_future_vtable), 0, spawner_poll, NULL, NULL};

static void *group_driver(void *arg) {
  group_arg *a = arg;
  CHECK(art_exec_acquire_driver(a->core), "driver");
  uint64_t t0 = art_now_ns();
  while (atomic_load(&group_done) < GROUP_TASKS) {
    CHECK(art_now_ns() - t0 < 20000000000ull, "group made no progress in 20 s (%d done)", atomic_load(&group_done));
    if (art_exec_run(a->core, 256, 0, NULL)) continue;
    if (art_group_steal(a->core)) continue;
    if (art_worker_prepare_park(a->core)) {
      art_exec_park(a->core, 1000000);
      art_worker_unparked(a->core);
    }
  }
  art_exec_release_driver(a->core);
  return NULL;
}

static void test_group_steals(void) {
  art_exec *cores[2] = {exec_new(0, NULL), exec_new(0, NULL)};
  art_group *g = art_group_new(cores, 2, 0);
  CHECK(g, "group");
  asyncrt_future f = {NULL, &spawner_vt};
  CHECK(art_exec_spawn(cores[0], &f, 0, NULL, NULL) == 0, "spawner");
  pthread_t th[2];
  group_arg args[2] = {{cores[0], 0}, {cores[1], 1}};
  for (int i = 0; i < 2; i++) pthread_create(&th[i], NULL, group_driver, &args[i]);
  for (int i = 0; i < 2; i++) pthread_join(th[i], NULL);
  for (int i = 0; i < GROUP_TASKS; i++)
    CHECK(group_probes[i].drops == 1 && group_probes[i].polls == i % 3 + 1, "task %d: drops %d polls %d", i,
          group_probes[i].drops, group_probes[i].polls);
  CHECK(atomic_load(&group_ran_on[1]) > 0, "core 1 never ran a Send task (no steal)");
  for (int i = 0; i < 2; i++) exec_free(cores[i]);
  printf("PASS group_steals (%d polls on core 0, %d on core 1)\n", atomic_load(&group_ran_on[0]),
         atomic_load(&group_ran_on[1]));
}

/* The same with futures that have no output, spawned without a handle:
 * these become spawn requests (art_group.c), whose headers the core that
 * takes them writes, some after a trip through the group's overflow (more
 * than a ring's worth are spawned in one poll). */
static const asyncrt_future_vtable counted0_vt = {sizeof(asyncrt_future_vtable), 0, counted_poll, probe_drop, NULL};

static int spawner0_poll(void *self, asyncrt_context *cx, void *out) {
  (void)self, (void)out;
  for (int i = 0; i < GROUP_TASKS; i++) {
    group_probes[i] = (probe){.yields = i % 3};
    asyncrt_future f = {&group_probes[i], &counted0_vt};
    CHECK(art_exec_spawn(cx->exec, &f, ASYNCRT_SPAWN_SEND, NULL, NULL) == 0, "send spawn: %s", art_last_error());
  }
  return ASYNCRT_POLL_READY;
}
static const asyncrt_future_vtable spawner0_vt = {sizeof(asyncrt_future_vtable), 0, spawner0_poll, NULL, NULL};

static void test_group_requests(void) {
  atomic_store(&group_done, 0);
  atomic_store(&group_ran_on[0], 0);
  atomic_store(&group_ran_on[1], 0);
  art_exec *cores[2] = {exec_new(0, NULL), exec_new(0, NULL)};
  art_group *g = art_group_new(cores, 2, 0);
  CHECK(g, "group");
  asyncrt_future f = {NULL, &spawner0_vt};
  CHECK(art_exec_spawn(cores[0], &f, 0, NULL, NULL) == 0, "spawner");
  pthread_t th[2];
  group_arg args[2] = {{cores[0], 0}, {cores[1], 1}};
  for (int i = 0; i < 2; i++) pthread_create(&th[i], NULL, group_driver, &args[i]);
  for (int i = 0; i < 2; i++) pthread_join(th[i], NULL);
  for (int i = 0; i < GROUP_TASKS; i++)
    CHECK(group_probes[i].drops == 1 && group_probes[i].polls == i % 3 + 1, "task %d: drops %d polls %d", i,
          group_probes[i].drops, group_probes[i].polls);
  CHECK(atomic_load(&group_ran_on[1]) > 0, "core 1 never ran a Send task (no steal)");
  CHECK(art_group_live(g) == 0, "live after all completed: %llu", (unsigned long long)art_group_live(g));
  uint64_t spawned = cores[0]->spawned + cores[1]->spawned;
  CHECK(spawned == GROUP_TASKS + 1, "spawned %llu", (unsigned long long)spawned);
  for (int i = 0; i < 2; i++) exec_free(cores[i]);
  printf("PASS group_requests (%d polls on core 0, %d on core 1)\n", atomic_load(&group_ran_on[0]),
         atomic_load(&group_ran_on[1]));
}

/* Requests still queued when an immediate shutdown begins are dropped,
 * never polled, each once: those a worker takes after the cancel, and
 * those left once the workers are gone (art_group_drain_injector). */
static void test_group_requests_cancelled(void) {
  art_exec *cores[2] = {exec_new(0, NULL), exec_new(0, NULL)};
  art_group *g = art_group_new(cores, 2, 0);
  CHECK(g, "group");
  asyncrt_future f = {NULL, &spawner0_vt};
  CHECK(art_exec_spawn(cores[0], &f, 0, NULL, NULL) == 0, "spawner");
  /* Core 0 runs only the spawner: one poll. */
  CHECK(art_exec_acquire_driver(cores[0]), "driver");
  CHECK(art_exec_run(cores[0], 1, 0, NULL) == 1, "the spawner's poll");
  art_exec_release_driver(cores[0]);
  CHECK(art_group_live(g) == GROUP_TASKS, "live %llu, not %d requests", (unsigned long long)art_group_live(g),
        GROUP_TASKS);
  for (int i = 0; i < 2; i++) art_exec_cancel_all(cores[i]);
  /* Core 1 takes a batch (dropped), then the rest go at the drain. */
  CHECK(art_exec_acquire_driver(cores[1]), "driver");
  CHECK(art_group_steal(cores[1]) > 0, "no request to take");
  art_exec_release_driver(cores[1]);
  art_group_drain_injector(g);
  for (int i = 0; i < GROUP_TASKS; i++)
    CHECK(group_probes[i].drops == 1 && group_probes[i].polls == 0, "task %d: drops %d polls %d", i,
          group_probes[i].drops, group_probes[i].polls);
  CHECK(art_group_live(g) == 0, "live after the drain: %llu", (unsigned long long)art_group_live(g));
  for (int i = 0; i < 2; i++) exec_free(cores[i]);
  puts("PASS group_requests_cancelled");
}

/* ==== timers and subsystems under concurrency ==================================
 *
 * These run a core on a driver thread while other threads cancel timers,
 * complete and cancel ops, cancel tasks and unregister subsystems. Every wait
 * is bounded (WAIT_FOR), no check depends on timing, and the counts they
 * check are exact. Subsystem callbacks keep their counters in plain fields on
 * purpose: callbacks of one registration are serialized by its lock, and
 * TSan reports it if they are not. */

#define WAIT_FOR(cond, ...)                                                                        \
  do {                                                                                             \
    uint64_t wait_t0_ = art_now_ns();                                                              \
    while (!(cond)) {                                                                              \
      CHECK(art_now_ns() - wait_t0_ < 30000000000ull, __VA_ARGS__);                                \
      sched_yield();                                                                               \
    }                                                                                              \
  } while (0)

/* A group worker batches the retirement of its own Send tasks, never of
 * its local-wake tasks: a cancel_all walking the live list wakes those
 * through the remote stack, whose link (t->next) a retire batch would also
 * use. Local tasks that keep yielding on core 0's driver, cancelled again
 * and again from this thread, with drops slow enough that retire batches
 * stay open: every future dropped once, and nothing left live. (Found by
 * review: it failed every run under ASan before the fix.) */
enum { CA_TASKS = 2000 };
static probe ca_probes[CA_TASKS];
static _Atomic int ca_stop;

static void slow_drop(void *self) {
  uint64_t t0 = art_now_ns();
  while (art_now_ns() - t0 < 20000) {} /* a batch stays open while it runs */
  probe_drop(self);
}
static int forever_poll(void *self, asyncrt_context *cx, void *out) {
  (void)out;
  atomic_fetch_add(&((probe *)self)->polls, 1);
  art_waker_wake_by_ref(&cx->waker);
  return ASYNCRT_POLL_PENDING;
}
static const asyncrt_future_vtable forever_vt = {sizeof(asyncrt_future_vtable), 0, forever_poll, slow_drop, NULL};

static void *ca_drive(void *arg) {
  art_exec *e = arg;
  CHECK(art_exec_acquire_driver(e), "driver");
  while (!atomic_load(&ca_stop)) art_exec_run(e, 256, 0, NULL);
  art_exec_release_driver(e);
  return NULL;
}

static void test_group_cancel_all_with_local_tasks(void) {
  art_exec *cores[2] = {exec_new(0, NULL), exec_new(0, NULL)};
  art_group *g = art_group_new(cores, 2, 0);
  CHECK(g, "group");
  atomic_store(&ca_stop, 0);
  for (int i = 0; i < CA_TASKS; i++) {
    ca_probes[i] = (probe){0};
    asyncrt_future f = {&ca_probes[i], &forever_vt};
    CHECK(art_exec_spawn(cores[0], &f, 0, NULL, NULL) == 0, "spawn");
  }
  pthread_t th;
  pthread_create(&th, NULL, ca_drive, cores[0]);
  /* The control plane's immediate stop: cancel_all, again each round. */
  for (int round = 0; round < 2000 && art_group_live(g); round++) art_exec_cancel_all(cores[0]);
  WAIT_FOR(art_group_live(g) == 0, "tasks still live after the cancels: %llu",
           (unsigned long long)art_group_live(g));
  atomic_store(&ca_stop, 1);
  pthread_join(th, NULL);
  for (int i = 0; i < CA_TASKS; i++) CHECK(ca_probes[i].drops == 1, "task %d dropped %d times", i, ca_probes[i].drops);
  for (int i = 0; i < 2; i++) exec_free(cores[i]);
  puts("PASS group_cancel_all_with_local_tasks");
}

/* A request is a task to be wherever it is -- on the ring, or in the hands
 * of a worker that took it and has not yet put it on a live list: the
 * executor's live count never reads 0 (nor wraps) before the task ran. */
enum { TR_ROUNDS = 3000 };
static _Atomic int tr_polled, tr_stop;
static int tr_leaf_poll(void *self, asyncrt_context *cx, void *out) {
  (void)self, (void)cx, (void)out;
  atomic_store(&tr_polled, 1);
  return ASYNCRT_POLL_READY;
}
static const asyncrt_future_vtable tr_leaf_vt = {sizeof(asyncrt_future_vtable), 0, tr_leaf_poll, NULL, NULL};
static int tr_spawner_poll(void *self, asyncrt_context *cx, void *out) {
  (void)self, (void)out;
  asyncrt_future f = {NULL, &tr_leaf_vt};
  CHECK(art_exec_spawn(cx->exec, &f, ASYNCRT_SPAWN_SEND, NULL, NULL) == 0, "spawn: %s", art_last_error());
  return ASYNCRT_POLL_READY;
}
static const asyncrt_future_vtable tr_spawner_vt = {sizeof(asyncrt_future_vtable), 0, tr_spawner_poll, NULL, NULL};
static void *tr_thief(void *arg) {
  art_exec *e = arg;
  CHECK(art_exec_acquire_driver(e), "driver");
  while (!atomic_load(&tr_stop)) {
    if (art_exec_run(e, 256, 0, NULL)) continue;
    art_group_steal(e);
  }
  art_exec_release_driver(e);
  return NULL;
}

static void test_group_live_counts_requests_in_transit(void) {
  art_exec *cores[2] = {exec_new(0, NULL), exec_new(0, NULL)};
  art_group *g = art_group_new(cores, 2, 0);
  CHECK(g, "group");
  atomic_store(&tr_stop, 0);
  pthread_t th;
  pthread_create(&th, NULL, tr_thief, cores[1]);
  for (int i = 0; i < TR_ROUNDS; i++) {
    atomic_store(&tr_polled, 0);
    asyncrt_future f = {NULL, &tr_spawner_vt};
    CHECK(art_exec_spawn(cores[0], &f, 0, NULL, NULL) == 0, "spawner");
    CHECK(art_exec_acquire_driver(cores[0]), "driver");
    CHECK(art_exec_run(cores[0], 1, 0, NULL) == 1, "the spawner's poll"); /* a request on core 0's ring */
    art_exec_release_driver(cores[0]);
    uint64_t t0 = art_now_ns();
    while (!atomic_load(&tr_polled)) {
      uint64_t live = art_group_live(g);
      CHECK(live != 0 || atomic_load(&tr_polled), "round %d: live read 0 before the request's task ran", i);
      CHECK(live <= 2, "round %d: live read %llu", i, (unsigned long long)live);
      if (art_now_ns() - t0 > 1000000000ull) { /* the thief may be slow: run it here */
        CHECK(art_exec_acquire_driver(cores[0]), "driver");
        art_exec_run(cores[0], 16, 0, NULL);
        art_exec_release_driver(cores[0]);
      }
      CHECK(art_now_ns() - t0 < 30000000000ull, "round %d: the request never ran", i);
    }
    WAIT_FOR(art_group_live(g) == 0, "round %d: live %llu after the task ran", i, (unsigned long long)art_group_live(g));
  }
  atomic_store(&tr_stop, 1);
  pthread_join(th, NULL);
  for (int i = 0; i < 2; i++) exec_free(cores[i]);
  puts("PASS group_live_counts_requests_in_transit");
}


/* A core with a test clock, as the control plane configures one. */
static art_exec *clocked_new(art_clock *shared) {
  art_exec *e = exec_new(0, NULL);
  art_core_configure(e, shared, 1, 256, 1000000, 0, -1);
  return e;
}

static void clock_set(art_exec *e, uint64_t now) { atomic_store(&e->clock->now, now); }

/* As the control plane frees a core: subsystems, then tasks, then timers. */
static void clocked_free(art_exec *e) {
  CHECK(art_exec_acquire_driver(e), "driver busy at free");
  art_exec_detach_subsystems(e);
  art_exec_shutdown(e);
  art_timers_orphan(e);
  CHECK(atomic_load(&e->timers_armed) == 0, "timers armed after orphan: %llu",
        (unsigned long long)atomic_load(&e->timers_armed));
  art_exec_release_driver(e);
  art_exec_close(e);
}

/* A driver thread: runs its core until told to stop, ticking while timers or
 * subsystems wait and parking briefly when idle (wakes cut the park short). */
typedef struct {
  art_exec *e;
  _Atomic int stop;
  pthread_t th;
} driver;

static void *driver_main(void *arg) {
  driver *d = arg;
  CHECK(art_exec_acquire_driver(d->e), "driver busy");
  while (!atomic_load(&d->stop)) {
    uint64_t polls;
    if (art_exec_run_ex(d->e, 1024, 0, NULL, &polls) != ART_RUN_DRAINED || polls) continue;
    if (art_core_waiting(d->e) && art_core_tick(d->e)) continue;
    art_exec_park(d->e, art_core_waiting(d->e) ? 20000 : 1000000);
  }
  art_exec_release_driver(d->e);
  return NULL;
}

static void driver_start(driver *d, art_exec *e) {
  d->e = e;
  atomic_store(&d->stop, 0);
  CHECK(pthread_create(&d->th, NULL, driver_main, d) == 0, "pthread_create");
}

static void driver_stop(driver *d) {
  atomic_store(&d->stop, 1);
  art_exec_wake_driver(d->e);
  pthread_join(d->th, NULL);
}

/* ---- timers_fire_vs_cancel ---------------------------------------------------------- */

/* Firing tasks re-arm their timer TF_ROUNDS times as the clock moves; the
 * other tasks ("sleepers") arm once, for a deadline the clock never reaches,
 * and are never polled again: canceller threads disarm their timers while
 * the driver arms and fires the rest. */
enum { TF_FIRING = 400, TF_SLEEPERS = 1200, TF_ROUNDS = 6, TF_PERIOD = 100000, TF_STEPS = 120 };
#define TF_END ((uint64_t)(TF_ROUNDS + 2) * TF_PERIOD)

typedef struct {
  asyncrt_timer timer;
  uint64_t deadline;
  int sleeper, round, fires, pending; /* the poller's */
  _Atomic int polls, drops, armed, cancelled;
} tf_state;

static int tf_poll(void *self, asyncrt_context *cx, void *out) {
  tf_state *s = self;
  int n = atomic_fetch_add(&s->polls, 1);
  if (s->sleeper) {
    CHECK(n == 0, "a sleeper was polled again (cancelled %d): its cancelled timer woke it",
          atomic_load(&s->cancelled));
    CHECK(art_timer_poll(&s->timer, cx, s->deadline) == ASYNCRT_POLL_PENDING, "sleeper not pending");
    CHECK(art_timer_armed(&s->timer), "sleeper's timer not armed");
    atomic_store_explicit(&s->armed, 1, memory_order_release); /* the timer is the canceller's now */
    return ASYNCRT_POLL_PENDING;
  }
  for (;;) {
    int r = art_timer_poll(&s->timer, cx, s->deadline);
    if (r == ASYNCRT_POLL_PENDING) {
      s->pending = 1;
      return r;
    }
    CHECK(r == ASYNCRT_POLL_READY, "timer poll %d", r);
    CHECK(art_clock_now(cx->exec->clock) >= s->deadline, "fired early");
    CHECK(!art_timer_armed(&s->timer), "armed after READY");
    if (s->pending) s->fires++; /* it was armed: only its firing woke the task */
    s->pending = 0;
    if (++s->round == TF_ROUNDS) return ASYNCRT_POLL_READY;
    s->deadline += TF_PERIOD;
  }
}

static void tf_drop(void *self) {
  tf_state *s = self;
  art_timer_cancel(&s->timer);
  CHECK(atomic_fetch_add(&s->drops, 1) == 0, "dropped twice");
}

static const asyncrt_future_vtable tf_vt = {sizeof(asyncrt_future_vtable), 0, tf_poll, tf_drop, NULL};

typedef struct {
  tf_state *sleepers;
  int which, of;
  _Atomic int *done;
} tf_canceller;

static void *tf_cancel_main(void *arg) {
  tf_canceller *c = arg;
  for (int i = c->which; i < TF_SLEEPERS; i += c->of) {
    tf_state *s = &c->sleepers[i];
    WAIT_FOR(atomic_load_explicit(&s->armed, memory_order_acquire), "sleeper %d never armed", i);
    CHECK(art_timer_armed(&s->timer), "sleeper %d disarmed before its cancel", i);
    art_timer_cancel(&s->timer);
    CHECK(!art_timer_armed(&s->timer), "armed after cancel");
    if (i % 3 == 0) art_timer_cancel(&s->timer); /* a second cancel is a no-op */
    atomic_store(&s->cancelled, 1);
    atomic_fetch_add(c->done, 1);
  }
  return NULL;
}

static void test_timers_fire_vs_cancel(void) {
  art_exec *e = clocked_new(NULL);
  tf_state *firing = calloc(TF_FIRING, sizeof *firing), *sleepers = calloc(TF_SLEEPERS, sizeof *sleepers);
  art_task **tfiring = calloc(TF_FIRING, sizeof *tfiring), **tsleepers = calloc(TF_SLEEPERS, sizeof *tsleepers);
  CHECK(firing && sleepers && tfiring && tsleepers, "calloc");
  for (int i = 0; i < TF_FIRING; i++) {
    firing[i].deadline = TF_PERIOD + (uint64_t)i * 7919 % TF_PERIOD;
    asyncrt_future f = {&firing[i], &tf_vt};
    CHECK(art_exec_spawn(e, &f, 0, NULL, &tfiring[i]) == 0, "spawn: %s", art_last_error());
  }
  _Atomic int cancelled = 0;
  tf_canceller cs[2] = {{sleepers, 0, 2, &cancelled}, {sleepers, 1, 2, &cancelled}};
  pthread_t cth[2];
  for (int i = 0; i < 2; i++) pthread_create(&cth[i], NULL, tf_cancel_main, &cs[i]);
  driver d;
  driver_start(&d, e);
  for (int i = 0; i < TF_FIRING; i++)
    WAIT_FOR(atomic_load(&firing[i].polls), "firing task %d never polled", i); /* all armed before time moves */
  /* The clock moves while sleepers are spawned (from this thread), armed
   * (by the driver) and cancelled (by the cancellers). */
  for (int step = 1; step <= TF_STEPS; step++) {
    for (int i = (step - 1) * TF_SLEEPERS / TF_STEPS; i < step * TF_SLEEPERS / TF_STEPS; i++) {
      sleepers[i].sleeper = 1;
      /* Never reached: just past the end (in the wheel's near slots), or far. */
      sleepers[i].deadline = i % 4 ? TF_END + 1 + (uint64_t)i * 37 : UINT64_MAX / 2 + (uint64_t)i * 1000003;
      asyncrt_future f = {&sleepers[i], &tf_vt};
      CHECK(art_exec_spawn(e, &f, 0, NULL, &tsleepers[i]) == 0, "spawn: %s", art_last_error());
    }
    uint64_t now = (uint64_t)step * TF_END / TF_STEPS;
    clock_set(e, now);
    art_exec_wake_driver(e);
    /* The driver ticks at this reading before the next, so timers fire from
     * the wheel each step instead of being found due at their next poll (a
     * driver with no timer armed does not tick: nothing to wait for then). */
    WAIT_FOR(atomic_load(&e->tick_now) >= now || !atomic_load(&e->timers_armed), "the driver never ticked at %llu",
             (unsigned long long)now);
  }
  for (int i = 0; i < TF_FIRING; i++)
    WAIT_FOR(art_task_status(tfiring[i]) != ASYNCRT_EAGAIN, "firing task %d stuck (round %d polls %d)", i,
             firing[i].round, atomic_load(&firing[i].polls));
  for (int i = 0; i < 2; i++) pthread_join(cth[i], NULL);
  driver_stop(&d);

  CHECK(atomic_load(&cancelled) == TF_SLEEPERS, "cancelled %d", atomic_load(&cancelled));
  CHECK(atomic_load(&e->timers_armed) == 0, "timers armed at the end: %llu",
        (unsigned long long)atomic_load(&e->timers_armed));
  uint64_t fires = 0;
  for (int i = 0; i < TF_FIRING; i++) {
    CHECK(art_task_status(tfiring[i]) == ASYNCRT_OK, "firing task %d status %d", i, art_task_status(tfiring[i]));
    CHECK(firing[i].round == TF_ROUNDS && firing[i].drops == 1, "task %d round %d drops %d", i, firing[i].round,
          firing[i].drops);
    /* One poll to arm, one per firing. */
    CHECK(firing[i].polls == 1 + firing[i].fires, "task %d polls %d fires %d", i, firing[i].polls, firing[i].fires);
    /* Only our handle is left: every waker clone was dropped exactly once. */
    CHECK(atomic_load(&tfiring[i]->refs) == 1, "firing task %d refs %u", i, atomic_load(&tfiring[i]->refs));
    fires += (uint64_t)firing[i].fires;
  }
  CHECK(atomic_load(&e->timer_fired) == fires, "wheel fired %llu, tasks saw %llu",
        (unsigned long long)atomic_load(&e->timer_fired), (unsigned long long)fires);
  for (int i = 0; i < TF_SLEEPERS; i++) {
    uint32_t st = atomic_load(&tsleepers[i]->state);
    /* Parked: a local-wake task keeps OWNED; queued or not is its status. */
    CHECK(sleepers[i].polls == 1 && !(st & (ART_NOTIFIED | ART_COMPLETE)) && art_ls_get(tsleepers[i]) == ART_LS_IDLE,
          "sleeper %d polls %d state %#x: woken after its timer was cancelled", i, sleepers[i].polls, st);
    /* The executor's and ours: the cancel dropped the timer's clone. */
    CHECK(atomic_load(&tsleepers[i]->refs) == 2, "sleeper %d refs %u", i, atomic_load(&tsleepers[i]->refs));
  }
  clocked_free(e);
  for (int i = 0; i < TF_SLEEPERS; i++) {
    CHECK(sleepers[i].drops == 1 && art_task_status(tsleepers[i]) == ASYNCRT_ECANCELLED, "sleeper %d drops %d", i,
          sleepers[i].drops);
    art_task_unref(tsleepers[i]);
  }
  for (int i = 0; i < TF_FIRING; i++) art_task_unref(tfiring[i]);
  free(firing), free(sleepers), free(tfiring), free(tsleepers);
  printf("PASS timers_fire_vs_cancel (%llu fired, %d cancelled)\n", (unsigned long long)fires, TF_SLEEPERS);
}

/* ---- timer_moved_between_cores -------------------------------------------------------- */

/* A task on core A arms its timer (A's driver polls it); then the timer is
 * polled with a context whose exec is core B -- as when a Send task is
 * stolen -- which moves it to B's wheel while A's driver may be firing it,
 * or finds it due and disarms it on A. The task's later polls (wakes from
 * either wheel) leave the timer alone, so only this thread polls it after
 * the first arm. Found: a fire (or disarm) published the entry's leaving
 * with a relaxed store, so a poll on B that read NULL wrote the entry
 * unordered with A's last writes to it (TSan). */
enum { MV_ITERS = 2000 };

typedef struct {
  asyncrt_timer timer;
  uint64_t deadline;
  _Atomic int polls, drops, armed;
} mv_state;

static int mv_poll(void *self, asyncrt_context *cx, void *out) {
  mv_state *s = self;
  if (atomic_fetch_add(&s->polls, 1) == 0) {
    CHECK(art_timer_poll(&s->timer, cx, s->deadline) == ASYNCRT_POLL_PENDING, "first arm not pending");
    atomic_store_explicit(&s->armed, 1, memory_order_release);
  }
  return ASYNCRT_POLL_PENDING;
}

static void mv_drop(void *self) {
  mv_state *s = self;
  CHECK(!art_timer_armed(&s->timer), "dropped while armed");
  art_timer_cancel(&s->timer);
  CHECK(atomic_fetch_add(&s->drops, 1) == 0, "dropped twice");
}

static const asyncrt_future_vtable mv_vt = {sizeof(asyncrt_future_vtable), 0, mv_poll, mv_drop, NULL};

static void test_timer_moved_between_cores(void) {
  art_exec *a = clocked_new(NULL);
  art_exec *b = clocked_new(a->clock); /* one clock, as the cores of a group share */
  mv_state *st = calloc(MV_ITERS, sizeof *st);
  art_task **ts = calloc(MV_ITERS, sizeof *ts);
  CHECK(st && ts, "calloc");
  /* A timer on B that never fires keeps B ticking at each run. */
  asyncrt_timer keep = ASYNCRT_TIMER_INIT;
  asyncrt_context cxkeep = {.exec = b};
  CHECK(art_timer_poll(&keep, &cxkeep, UINT64_MAX / 2) == ASYNCRT_POLL_PENDING, "keep-alive timer");
  driver da, db;
  driver_start(&da, a);
  driver_start(&db, b);
  int moved = 0, ready_on_b = 0;
  for (int k = 0; k < MV_ITERS; k++) {
    mv_state *s = &st[k];
    uint64_t now = atomic_load(&a->clock->now), dl = now + 1000;
    s->deadline = dl;
    asyncrt_future f = {s, &mv_vt};
    CHECK(art_exec_spawn(a, &f, 0, NULL, &ts[k]) == 0, "spawn: %s", art_last_error());
    WAIT_FOR(atomic_load_explicit(&s->armed, memory_order_acquire), "iteration %d: never armed on A", k);
    asyncrt_context cxb = {.waker = {ts[k], &art_task_waker_vtable}, .exec = b};
    int r;
    switch (k % 5) {
    case 0: /* A may be firing it right now */
      clock_set(a, dl);
      art_exec_wake_driver(a);
      for (int i = 0; i < k % 64; i++) __builtin_ia32_pause();
      r = art_timer_poll(&s->timer, &cxb, dl);
      break;
    case 1: /* A fired it; B arms it again */
      clock_set(a, dl);
      art_exec_wake_driver(a);
      WAIT_FOR(!art_timer_armed(&s->timer), "iteration %d: A never fired", k);
      r = art_timer_poll(&s->timer, &cxb, dl);
      break;
    case 2: /* moved before it is due */
      r = art_timer_poll(&s->timer, &cxb, dl);
      clock_set(a, dl);
      break;
    case 3: /* moved to another deadline, while A looks at the old one */
      clock_set(a, dl);
      art_exec_wake_driver(a);
      r = art_timer_poll(&s->timer, &cxb, dl + 500);
      clock_set(a, dl + 500);
      break;
    default: /* B's clock has passed it: READY on B disarms it on A, which may be firing it */
      clock_set(a, dl);
      art_exec_wake_driver(b);
      WAIT_FOR(atomic_load(&b->tick_now) >= dl, "iteration %d: B never ticked", k);
      art_exec_wake_driver(a);
      for (int i = 0; i < k % 64; i++) __builtin_ia32_pause();
      r = art_timer_poll(&s->timer, &cxb, dl);
      CHECK(r == ASYNCRT_POLL_READY, "not READY on B after its tick passed the deadline");
      break;
    }
    CHECK(r == ASYNCRT_POLL_PENDING || r == ASYNCRT_POLL_READY, "poll on B: %d", r);
    if (r == ASYNCRT_POLL_READY) ready_on_b++;
    else moved++;
    art_exec_wake_driver(a);
    art_exec_wake_driver(b);
    WAIT_FOR(!art_timer_armed(&s->timer), "iteration %d: the timer never fired on B", k);
    art_task_cancel(ts[k]);
  }
  for (int k = 0; k < MV_ITERS; k++)
    WAIT_FOR(art_task_status(ts[k]) != ASYNCRT_EAGAIN, "task %d never dropped", k);
  driver_stop(&da);
  driver_stop(&db);
  CHECK(atomic_load(&b->timers_armed) == 1 && art_timer_armed(&keep), "the keep-alive timer");
  art_timer_cancel(&keep);
  CHECK(atomic_load(&a->timers_armed) == 0 && atomic_load(&b->timers_armed) == 0, "armed A %llu B %llu",
        (unsigned long long)atomic_load(&a->timers_armed), (unsigned long long)atomic_load(&b->timers_armed));
  for (int k = 0; k < MV_ITERS; k++) {
    CHECK(st[k].drops == 1 && art_task_status(ts[k]) == ASYNCRT_ECANCELLED, "task %d drops %d status %d", k,
          st[k].drops, art_task_status(ts[k]));
    CHECK(atomic_load(&ts[k]->refs) == 1, "task %d refs %u: a waker clone leaked or was dropped twice", k,
          atomic_load(&ts[k]->refs));
  }
  uint64_t fired = atomic_load(&a->timer_fired) + atomic_load(&b->timer_fired);
  clocked_free(a);
  clocked_free(b);
  for (int k = 0; k < MV_ITERS; k++) art_task_unref(ts[k]);
  free(st), free(ts);
  printf("PASS timer_moved_between_cores (%d armed on B, %d ready at once, %llu fired)\n", moved, ready_on_b,
         (unsigned long long)fired);
}

/* ---- a test subsystem -------------------------------------------------------------------- */

enum { TS_POLL_NONE, TS_POLL_MARKED };

typedef struct {
  /* Set up before registering. */
  int poll_mode;   /* TS_POLL_*: what poll completes */
  int cancel_now;  /* the cancel callback completes at once (else marks for poll) */
  int handoff;     /* submit hands ops to another thread (queue) */
  /* Callback-only (serialized by the instance lock). */
  int depth;
  uintptr_t owner;
  uint64_t polls, submits, cancels, changes, completed_in_poll;
  /* The handoff queue. */
  pthread_mutex_t mu;
  asyncrt_op **q;
  size_t qlen, qcap;
  _Atomic int finalized;
} tsub;

static void ts_enter(tsub *s) {
  uintptr_t me = art_thread_token();
  if (s->depth) CHECK(s->owner == me, "a callback overlapped another thread's");
  else s->owner = me;
  s->depth++;
}
static void ts_leave(tsub *s) { s->depth--; }

static int ts_poll(void *user, asyncrt_subsystem_cx *scx, uint32_t budget) {
  tsub *s = user;
  ts_enter(s);
  s->polls++;
  int done = 0;
  if (s->poll_mode == TS_POLL_MARKED) {
    for (asyncrt_op *op = ((art_subsys_inst *)scx)->head, *next; op && (uint32_t)done < budget; op = next) {
      next = art_op_next(op);
      int marked = op->subsystem_data[0] != NULL;
      if (!marked) continue;
      art_op_complete(op, ASYNCRT_ECANCELLED, -1);
      CHECK(art_op_done(op), "op not done after its completion");
      done++;
    }
  }
  s->completed_in_poll += (uint64_t)done;
  ts_leave(s);
  return done;
}

static void ts_submit(void *user, asyncrt_subsystem_cx *scx, asyncrt_op *op) {
  tsub *s = user;
  ts_enter(s);
  s->submits++;
  op->subsystem_data[0] = NULL;
  if (s->handoff) {
    pthread_mutex_lock(&s->mu);
    CHECK(s->qlen < s->qcap, "handoff queue full");
    s->q[s->qlen++] = op;
    pthread_mutex_unlock(&s->mu);
  }
  ts_leave(s);
}

static void ts_cancel(void *user, asyncrt_subsystem_cx *scx, asyncrt_op *op) {
  tsub *s = user;
  ts_enter(s);
  s->cancels++;
  CHECK(!art_op_done(op), "cancel callback for an op that is done");
  if (s->cancel_now) art_op_complete(op, ASYNCRT_ECANCELLED, -1);
  else op->subsystem_data[0] = (void *)1; /* completed by the next poll */
  ts_leave(s);
}

static void ts_waiters_changed(void *user, asyncrt_subsystem_cx *scx, uint64_t waiters) {
  tsub *s = user;
  ts_enter(s);
  s->changes++;
  CHECK(waiters == atomic_load(&((art_subsys_inst *)scx)->waiters), "waiters_changed %llu",
        (unsigned long long)waiters);
  ts_leave(s);
}

static void ts_finalize(void *user) { atomic_fetch_add(&((tsub *)user)->finalized, 1); }

static const asyncrt_subsystem_vtable ts_vt = {sizeof(asyncrt_subsystem_vtable), ts_poll, ts_submit, ts_cancel,
                                               ts_waiters_changed, ts_finalize};

static art_subsys *tsub_register(art_exec *e, tsub *s) {
  pthread_mutex_init(&s->mu, NULL);
  asyncrt_subsystem_config cfg = {.size = sizeof cfg,
                                  .vtable = &ts_vt,
                                  .user_data = s,
                                  .priority = 1,
                                  .waiter_cap = 64,
                                  .poll_budget = 64,
                                  .worker = ASYNCRT_SUBSYSTEM_ALL_WORKERS,
                                  .fd = -1,
                                  .name = "test"};
  uint64_t h = 0;
  CHECK(art_subsys_register(e, &cfg, &h) == 0, "register: %s", art_last_error());
  art_subsys *sub = art_handle_get(h, ART_H_SUBSYS);
  CHECK(sub && sub->ninst == 1 && sub->inst[0].core == e, "registration");
  return sub;
}

static void tsub_check_idle(art_exec *e, art_subsys *sub) {
  CHECK(atomic_load(&sub->inst[0].waiters) == 0 && atomic_load(&e->subs_waiters) == 0 && !sub->inst[0].head,
        "waiters left: inst %llu core %llu", (unsigned long long)atomic_load(&sub->inst[0].waiters),
        (unsigned long long)atomic_load(&e->subs_waiters));
}

/* A plain task beside the op tasks, so the driver also runs polls between
 * ticks (and ticks on its budget inside a run). */
static void spawn_yielders(art_exec *e, probe *ps, int n, int yields) {
  for (int i = 0; i < n; i++) {
    ps[i] = (probe){.yields = yields};
    asyncrt_future f = probe_future(&ps[i]);
    CHECK(art_exec_spawn(e, &f, 0, NULL, NULL) == 0, "spawn: %s", art_last_error());
  }
}

/* ---- ops_complete_from_other_thread ------------------------------------------------------ */

/* Each task submits OC_ROUNDS ops one after another; submit hands every op
 * to a completer thread, which completes them (out of order) with
 * art_op_complete while the driver ticks and polls. */
enum { OC_TASKS = 300, OC_ROUNDS = 8 };

typedef struct {
  asyncrt_op op;
  art_subsys *sub;
  int id, round, submitted; /* the poller's */
  _Atomic int polls, drops;
} oc_task;

static int oc_poll(void *self, asyncrt_context *cx, void *out) {
  oc_task *t = self;
  atomic_fetch_add(&t->polls, 1);
  if (t->submitted) {
    CHECK(art_op_done(&t->op), "task %d polled while its op is in flight (a wake before completion)", t->id);
    CHECK(t->op.status == ASYNCRT_OK && t->op.result == (int64_t)t->op.args[0] * 3, "task %d: status %d result %lld",
          t->id, t->op.status, (long long)t->op.result);
    t->submitted = 0;
    if (++t->round == OC_ROUNDS) return ASYNCRT_POLL_READY;
  }
  t->op.args[0] = (uint64_t)t->id * 1000 + (uint64_t)t->round;
  int rc = art_op_submit(cx, t->sub, &t->op);
  CHECK(rc == 0, "submit: %s", art_last_error());
  t->submitted = 1;
  return ASYNCRT_POLL_PENDING;
}

static void oc_drop(void *self) {
  oc_task *t = self;
  CHECK(art_op_done(&t->op), "dropped with its op in flight");
  CHECK(atomic_fetch_add(&t->drops, 1) == 0, "dropped twice");
}

static const asyncrt_future_vtable oc_vt = {sizeof(asyncrt_future_vtable), 0, oc_poll, oc_drop, NULL};

typedef struct {
  tsub *s;
  _Atomic int stop;
  uint64_t completed;
} oc_completer;

static void *oc_complete_main(void *arg) {
  oc_completer *c = arg;
  unsigned seed = 12345;
  for (;;) {
    asyncrt_op *op = NULL;
    pthread_mutex_lock(&c->s->mu);
    if (c->s->qlen) { /* any queued op, not the oldest: completions come out of order */
      seed = seed * 1103515245u + 12345u;
      size_t i = (seed >> 8) % c->s->qlen;
      op = c->s->q[i];
      c->s->q[i] = c->s->q[--c->s->qlen];
    }
    pthread_mutex_unlock(&c->s->mu);
    if (!op) {
      if (atomic_load(&c->stop)) return NULL;
      sched_yield();
      continue;
    }
    CHECK(!art_op_done(op), "a queued op is done already");
    art_op_complete(op, ASYNCRT_OK, (int64_t)op->args[0] * 3);
    c->completed++;
  }
}

static void test_ops_complete_from_other_thread(void) {
  art_exec *e = clocked_new(NULL);
  tsub s = {.poll_mode = TS_POLL_NONE, .handoff = 1, .qcap = OC_TASKS};
  s.q = calloc(s.qcap, sizeof *s.q);
  art_subsys *sub = tsub_register(e, &s);
  oc_task *ot = calloc(OC_TASKS, sizeof *ot);
  art_task **ts = calloc(OC_TASKS, sizeof *ts);
  CHECK(s.q && ot && ts, "calloc");
  static probe yielders[4];
  spawn_yielders(e, yielders, 4, 20000);
  for (int i = 0; i < OC_TASKS; i++) {
    ot[i].sub = sub;
    ot[i].id = i;
    asyncrt_future f = {&ot[i], &oc_vt};
    CHECK(art_exec_spawn(e, &f, 0, NULL, &ts[i]) == 0, "spawn: %s", art_last_error());
  }
  oc_completer c = {.s = &s};
  pthread_t cth;
  pthread_create(&cth, NULL, oc_complete_main, &c);
  driver d;
  driver_start(&d, e);
  for (int i = 0; i < OC_TASKS; i++)
    WAIT_FOR(art_task_status(ts[i]) != ASYNCRT_EAGAIN, "task %d stuck at round %d (polls %d)", i, ot[i].round,
             atomic_load(&ot[i].polls));
  atomic_store(&c.stop, 1);
  pthread_join(cth, NULL);
  driver_stop(&d);
  CHECK(c.completed == (uint64_t)OC_TASKS * OC_ROUNDS, "completed %llu", (unsigned long long)c.completed);
  for (int i = 0; i < OC_TASKS; i++) {
    CHECK(art_task_status(ts[i]) == ASYNCRT_OK && ot[i].drops == 1 && ot[i].round == OC_ROUNDS,
          "task %d status %d drops %d round %d", i, art_task_status(ts[i]), ot[i].drops, ot[i].round);
    /* One poll per completion, plus the first: a wake only after completion. */
    CHECK(ot[i].polls == OC_ROUNDS + 1, "task %d polls %d", i, ot[i].polls);
    CHECK(art_op_done(&ot[i].op) && ART_OPS(atomic_load(&ts[i]->state)) == 0, "task %d: op state", i);
    CHECK(atomic_load(&ts[i]->refs) == 1, "task %d refs %u", i, atomic_load(&ts[i]->refs));
  }
  tsub_check_idle(e, sub);
  asyncrt_subsystem_stats stats = {.size = sizeof stats};
  art_subsys_stats(sub, &stats);
  CHECK(stats.submits == (uint64_t)OC_TASKS * OC_ROUNDS && stats.completions == stats.submits &&
            s.submits == stats.submits,
        "stats: submits %llu completions %llu", (unsigned long long)stats.submits,
        (unsigned long long)stats.completions);
  CHECK(s.changes == 2 * stats.submits, "waiters_changed %llu times", (unsigned long long)s.changes);
  art_subsys_detach(sub);
  CHECK(atomic_load(&s.finalized) == 1 && s.cancels == 0, "finalized %d cancels %llu", atomic_load(&s.finalized),
        (unsigned long long)s.cancels);
  clocked_free(e);
  for (int i = 0; i < OC_TASKS; i++) art_task_unref(ts[i]);
  free(ot), free(ts), free(s.q);
  pthread_mutex_destroy(&s.mu);
  printf("PASS ops_complete_from_other_thread (%llu subsystem polls)\n", (unsigned long long)s.polls);
}

/* ---- cancel_with_ops_in_flight ------------------------------------------------------------ */

/* Each task submits two ops and waits; only their cancellation completes
 * them (the cancel callback marks them, the next poll completes them). A
 * thread cancels the tasks; a task must be dropped only after both of its
 * ops completed. */
enum { CW_TASKS = 600 };

typedef struct {
  asyncrt_op op[2];
  art_subsys *sub;
  int id;
  _Atomic int polls, drops, submitted;
} cw_task;

static int cw_poll(void *self, asyncrt_context *cx, void *out) {
  cw_task *t = self;
  CHECK(atomic_fetch_add(&t->polls, 1) == 0, "task %d polled again: only its cancellation may follow", t->id);
  for (int k = 0; k < 2; k++) CHECK(art_op_submit(cx, t->sub, &t->op[k]) == 0, "submit: %s", art_last_error());
  atomic_store_explicit(&t->submitted, 1, memory_order_release);
  if (t->id % 5 == 0) sched_yield(); /* give the canceller a chance to land inside the poll */
  return ASYNCRT_POLL_PENDING;
}

static void cw_drop(void *self) {
  cw_task *t = self;
  for (int k = 0; k < 2; k++) {
    CHECK(art_op_done(&t->op[k]), "task %d dropped with op %d in flight", t->id, k);
    if (atomic_load(&t->submitted))
      CHECK(t->op[k].status == ASYNCRT_ECANCELLED && t->op[k].result == -1, "task %d op %d status %d", t->id, k,
            t->op[k].status);
  }
  CHECK(atomic_fetch_add(&t->drops, 1) == 0, "task %d dropped twice", t->id);
}

static const asyncrt_future_vtable cw_vt = {sizeof(asyncrt_future_vtable), 0, cw_poll, cw_drop, NULL};

typedef struct {
  cw_task *ct;
  art_task **ts;
} cw_canceller;

static void *cw_cancel_main(void *arg) {
  cw_canceller *c = arg;
  for (int i = 0; i < CW_TASKS; i++) {
    /* Most after their submit (ops in flight), some whenever (maybe before
     * their first poll: no ops). */
    if (i % 4) WAIT_FOR(atomic_load_explicit(&c->ct[i].submitted, memory_order_acquire), "task %d never ran", i);
    art_task_cancel(c->ts[i]);
    if (i % 3 == 0) art_task_cancel(c->ts[i]); /* twice: still one drop */
  }
  return NULL;
}

static void test_cancel_with_ops_in_flight(void) {
  art_exec *e = clocked_new(NULL);
  tsub s = {.poll_mode = TS_POLL_MARKED};
  art_subsys *sub = tsub_register(e, &s);
  cw_task *ct = calloc(CW_TASKS, sizeof *ct);
  art_task **ts = calloc(CW_TASKS, sizeof *ts);
  CHECK(ct && ts, "calloc");
  static probe yielders[4];
  spawn_yielders(e, yielders, 4, 20000);
  for (int i = 0; i < CW_TASKS; i++) {
    ct[i].sub = sub;
    ct[i].id = i;
    asyncrt_future f = {&ct[i], &cw_vt};
    CHECK(art_exec_spawn(e, &f, 0, NULL, &ts[i]) == 0, "spawn: %s", art_last_error());
  }
  cw_canceller c = {ct, ts};
  pthread_t cth;
  driver d;
  driver_start(&d, e);
  pthread_create(&cth, NULL, cw_cancel_main, &c);
  pthread_join(cth, NULL);
  for (int i = 0; i < CW_TASKS; i++)
    WAIT_FOR(art_task_status(ts[i]) != ASYNCRT_EAGAIN, "cancelled task %d never dropped (ops %u)", i,
             ART_OPS(atomic_load(&ts[i]->state)));
  driver_stop(&d);
  uint64_t with_ops = 0;
  for (int i = 0; i < CW_TASKS; i++) {
    CHECK(art_task_status(ts[i]) == ASYNCRT_ECANCELLED && ct[i].drops == 1, "task %d status %d drops %d", i,
          art_task_status(ts[i]), ct[i].drops);
    CHECK(ART_OPS(atomic_load(&ts[i]->state)) == 0, "task %d ops count %u", i, ART_OPS(atomic_load(&ts[i]->state)));
    CHECK(atomic_load(&ts[i]->refs) == 1, "task %d refs %u", i, atomic_load(&ts[i]->refs));
    with_ops += (uint64_t)ct[i].submitted;
  }
  tsub_check_idle(e, sub);
  CHECK(s.submits == 2 * with_ops && s.cancels == s.submits && s.completed_in_poll == s.submits,
        "submits %llu cancels %llu completed %llu", (unsigned long long)s.submits, (unsigned long long)s.cancels,
        (unsigned long long)s.completed_in_poll);
  CHECK(with_ops >= CW_TASKS * 3 / 4, "only %llu tasks had ops in flight", (unsigned long long)with_ops);
  clocked_free(e); /* detaches the subsystem */
  CHECK(atomic_load(&s.finalized) == 1, "finalized %d", atomic_load(&s.finalized));
  for (int i = 0; i < CW_TASKS; i++) art_task_unref(ts[i]);
  free(ct), free(ts);
  pthread_mutex_destroy(&s.mu);
  printf("PASS cancel_with_ops_in_flight (%llu of %d tasks had ops in flight)\n", (unsigned long long)with_ops,
         CW_TASKS);
}

/* ---- detach_with_waiters ------------------------------------------------------------------- */

/* Every task waits on an op that only the unregistration completes; another
 * thread unregisters while the driver ticks (polling the subsystem). The
 * tasks never touch the registration after their submit. */
enum { DW_TASKS = 500 };

typedef struct {
  asyncrt_op op;
  art_subsys *sub;
  int id, submitted;
  _Atomic int polls, drops;
  _Atomic int *nsubmitted;
} dw_task;

static int dw_poll(void *self, asyncrt_context *cx, void *out) {
  dw_task *t = self;
  atomic_fetch_add(&t->polls, 1);
  if (!t->submitted) {
    CHECK(art_op_submit(cx, t->sub, &t->op) == 0, "submit: %s", art_last_error());
    t->submitted = 1;
    atomic_fetch_add(t->nsubmitted, 1);
    return ASYNCRT_POLL_PENDING;
  }
  CHECK(art_op_done(&t->op), "task %d woken with its op in flight", t->id);
  cx->failure = t->op.status;
  return t->op.status == ASYNCRT_OK ? ASYNCRT_POLL_READY : ASYNCRT_POLL_ERROR;
}

static void dw_drop(void *self) {
  dw_task *t = self;
  CHECK(art_op_done(&t->op), "task %d dropped with its op in flight", t->id);
  CHECK(atomic_fetch_add(&t->drops, 1) == 0, "task %d dropped twice", t->id);
}

static const asyncrt_future_vtable dw_vt = {sizeof(asyncrt_future_vtable), 0, dw_poll, dw_drop, NULL};

typedef struct {
  art_subsys *sub;
  _Atomic int *nsubmitted;
  _Atomic int done;
} dw_detacher;

static void *dw_detach_main(void *arg) {
  dw_detacher *d = arg;
  WAIT_FOR(atomic_load(d->nsubmitted) == DW_TASKS, "only %d tasks submitted", atomic_load(d->nsubmitted));
  art_subsys_detach(d->sub);
  atomic_store(&d->done, 1);
  return NULL;
}

static void test_detach_with_waiters(void) {
  art_exec *e = clocked_new(NULL);
  tsub s = {.poll_mode = TS_POLL_MARKED}; /* offered the cancel, it only marks: detach completes them */
  art_subsys *sub = tsub_register(e, &s);
  _Atomic int nsubmitted = 0;
  dw_task *dt = calloc(DW_TASKS, sizeof *dt);
  art_task **ts = calloc(DW_TASKS, sizeof *ts);
  CHECK(dt && ts, "calloc");
  static probe yielders[4];
  spawn_yielders(e, yielders, 4, 20000);
  for (int i = 0; i < DW_TASKS; i++) {
    dt[i].sub = sub;
    dt[i].id = i;
    dt[i].nsubmitted = &nsubmitted;
    asyncrt_future f = {&dt[i], &dw_vt};
    CHECK(art_exec_spawn(e, &f, 0, NULL, &ts[i]) == 0, "spawn: %s", art_last_error());
  }
  dw_detacher det = {.sub = sub, .nsubmitted = &nsubmitted};
  pthread_t dth;
  pthread_create(&dth, NULL, dw_detach_main, &det);
  driver d;
  driver_start(&d, e);
  pthread_join(dth, NULL);
  for (int i = 0; i < DW_TASKS; i++)
    WAIT_FOR(art_task_status(ts[i]) != ASYNCRT_EAGAIN, "task %d never woken by the unregistration", i);
  driver_stop(&d);
  CHECK(atomic_load(&s.finalized) == 1, "finalized %d", atomic_load(&s.finalized));
  CHECK(s.submits == DW_TASKS && s.cancels == DW_TASKS && s.completed_in_poll == 0,
        "submits %llu cancels %llu completed in poll %llu", (unsigned long long)s.submits,
        (unsigned long long)s.cancels, (unsigned long long)s.completed_in_poll);
  CHECK(e->nsubs == 0 && atomic_load(&e->subs_waiters) == 0, "core still has %u registrations, %llu waiters",
        e->nsubs, (unsigned long long)atomic_load(&e->subs_waiters));
  for (int i = 0; i < DW_TASKS; i++) {
    CHECK(art_task_status(ts[i]) == ASYNCRT_ESHUTDOWN && dt[i].op.status == ASYNCRT_ESHUTDOWN,
          "task %d status %d op status %d", i, art_task_status(ts[i]), dt[i].op.status);
    CHECK(dt[i].polls == 2 && dt[i].drops == 1, "task %d polls %d drops %d", i, dt[i].polls, dt[i].drops);
    CHECK(atomic_load(&ts[i]->refs) == 1 && ART_OPS(atomic_load(&ts[i]->state)) == 0, "task %d refs %u", i,
          atomic_load(&ts[i]->refs));
  }
  clocked_free(e);
  CHECK(atomic_load(&s.finalized) == 1, "finalized again at the executor's free");
  for (int i = 0; i < DW_TASKS; i++) art_task_unref(ts[i]);
  free(dt), free(ts);
  pthread_mutex_destroy(&s.mu);
  printf("PASS detach_with_waiters (%llu subsystem polls before the detach)\n", (unsigned long long)s.polls);
}

/* ---- op_cancel_and_complete_races ------------------------------------------------------------ */

/* Each task submits one op (never resubmitted, so no thread can mistake a
 * later submission for it). One thread asks to cancel ops (art_op_cancel:
 * any thread; the driver's next tick sends the cancel, and the cancel
 * callback completes the op at once) while another completes them
 * (art_op_complete: a second completion is ignored). Each op must end done,
 * completed exactly once, and its task must finish exactly once. Found:
 * art_op_cancel dereferenced the instance a racing completion had just
 * cleared (a crash), and could leave a completed op looking in flight
 * forever; art_op_complete could do the same with a second completion. */
enum { RC_TASKS = 1500 };

typedef struct {
  asyncrt_op op;
  art_subsys *sub;
  int id, submitted_here;
  _Atomic int polls, drops, submitted;
} rc_task;

static int rc_poll(void *self, asyncrt_context *cx, void *out) {
  rc_task *t = self;
  atomic_fetch_add(&t->polls, 1);
  if (!t->submitted_here) {
    CHECK(art_op_submit(cx, t->sub, &t->op) == 0, "submit: %s", art_last_error());
    t->submitted_here = 1;
    atomic_store_explicit(&t->submitted, 1, memory_order_release);
    return ASYNCRT_POLL_PENDING;
  }
  CHECK(art_op_done(&t->op), "task %d woken but its op is not done (state %#x)", t->id,
        (unsigned)t->op.opaque[6]);
  return ASYNCRT_POLL_READY;
}

static void rc_drop(void *self) {
  rc_task *t = self;
  CHECK(art_op_done(&t->op), "task %d dropped with its op in flight", t->id);
  CHECK(atomic_fetch_add(&t->drops, 1) == 0, "task %d dropped twice", t->id);
}

static const asyncrt_future_vtable rc_vt = {sizeof(asyncrt_future_vtable), 0, rc_poll, rc_drop, NULL};

typedef struct {
  rc_task *rt;
  int cancel; /* else complete */
  _Atomic int *go;
  _Atomic unsigned *arrived;
} rc_racer;

/* Both racers start once every op is in flight and walk them oldest first,
 * in lockstep (a barrier per op, so they reach each op together, with the
 * driver sending the cancels of the ops before). The canceller skips every
 * third op and the completer another third, so most ops see one racer and
 * every third op sees both. */
static void *rc_race_main(void *arg) {
  rc_racer *r = arg;
  WAIT_FOR(atomic_load(r->go), "the ops were never all submitted");
  for (int i = 0; i < RC_TASKS; i++) {
    rc_task *t = &r->rt[i];
    CHECK(atomic_load_explicit(&t->submitted, memory_order_acquire), "task %d never submitted", i);
    unsigned target = 2u * (unsigned)(i + 1);
    atomic_fetch_add(r->arrived, 1);
    while (atomic_load(r->arrived) < target) __builtin_ia32_pause(); /* the other racer never waits long */
    if (i % 3 == (r->cancel ? 2 : 1)) continue;
    if (r->cancel) art_op_cancel(&t->op);
    else art_op_complete(&t->op, ASYNCRT_OK, 2);
  }
  return NULL;
}

static void test_op_cancel_and_complete_races(void) {
  art_exec *e = clocked_new(NULL);
  _Atomic int go = 0;
  tsub s = {.poll_mode = TS_POLL_NONE, .cancel_now = 1};
  art_subsys *sub = tsub_register(e, &s);
  rc_task *rt = calloc(RC_TASKS, sizeof *rt);
  art_task **ts = calloc(RC_TASKS, sizeof *ts);
  CHECK(rt && ts, "calloc");
  for (int i = 0; i < RC_TASKS; i++) {
    rt[i].sub = sub;
    rt[i].id = i;
    asyncrt_future f = {&rt[i], &rc_vt};
    CHECK(art_exec_spawn(e, &f, 0, NULL, &ts[i]) == 0, "spawn: %s", art_last_error());
  }
  _Atomic unsigned arrived = 0;
  rc_racer racers[2] = {{rt, 1, &go, &arrived}, {rt, 0, &go, &arrived}};
  pthread_t th[2];
  for (int i = 0; i < 2; i++) pthread_create(&th[i], NULL, rc_race_main, &racers[i]);
  /* Every task submits at its first poll, before the driver's first tick
   * can complete anything. */
  CHECK(art_exec_acquire_driver(e), "driver");
  art_exec_run(e, RC_TASKS, 0, NULL);
  art_exec_release_driver(e);
  for (int i = 0; i < RC_TASKS; i++) CHECK(atomic_load(&rt[i].submitted), "task %d did not submit", i);
  driver d;
  atomic_store(&go, 1);
  driver_start(&d, e);
  for (int i = 0; i < 2; i++) pthread_join(th[i], NULL);
  for (int i = 0; i < RC_TASKS; i++)
    WAIT_FOR(art_task_status(ts[i]) != ASYNCRT_EAGAIN, "task %d stuck: op done %d state %#x", i,
             art_op_done(&rt[i].op), (unsigned)rt[i].op.opaque[6]);
  driver_stop(&d);
  int by_thread = 0, by_cancel = 0;
  for (int i = 0; i < RC_TASKS; i++) {
    CHECK(art_task_status(ts[i]) == ASYNCRT_OK && rt[i].drops == 1 && rt[i].polls == 2,
          "task %d status %d drops %d polls %d", i, art_task_status(ts[i]), rt[i].drops, rt[i].polls);
    CHECK(atomic_load(&ts[i]->refs) == 1 && ART_OPS(atomic_load(&ts[i]->state)) == 0, "task %d refs %u", i,
          atomic_load(&ts[i]->refs));
    asyncrt_op *op = &rt[i].op;
    if (op->status == ASYNCRT_ECANCELLED && op->result == -1) by_cancel++;
    else if (op->status == ASYNCRT_OK && op->result == 2) by_thread++;
    else CHECK(0, "op %d: status %d result %lld", i, op->status, (long long)op->result);
  }
  tsub_check_idle(e, sub);
  asyncrt_subsystem_stats stats = {.size = sizeof stats};
  art_subsys_stats(sub, &stats);
  CHECK(stats.submits == RC_TASKS && stats.completions == RC_TASKS, "submits %llu completions %llu",
        (unsigned long long)stats.submits, (unsigned long long)stats.completions);
  CHECK(s.cancels == (uint64_t)by_cancel, "cancel callbacks %llu, ops completed by them %d",
        (unsigned long long)s.cancels, by_cancel);
  clocked_free(e);
  CHECK(atomic_load(&s.finalized) == 1, "finalized %d", atomic_load(&s.finalized));
  for (int i = 0; i < RC_TASKS; i++) art_task_unref(ts[i]);
  free(rt), free(ts);
  pthread_mutex_destroy(&s.mu);
  printf("PASS op_cancel_and_complete_races (%d completed by another thread, %d cancelled)\n", by_thread,
         by_cancel);
}

/* ---- scopes under concurrency ---------------------------------------------------- */

/* A child that parks forever (until cancelled), or finishes after `yields`
 * self-wakes; it records the order of drops. */
typedef struct {
  int yields;
  _Atomic int polls, drops;
  _Atomic uint64_t drop_seq;
} sc_child;
static _Atomic uint64_t sc_seq;

static int sc_child_poll(void *self, asyncrt_context *cx, void *out) {
  sc_child *c = self;
  atomic_fetch_add(&c->polls, 1);
  if (c->yields < 0) return ASYNCRT_POLL_PENDING; /* forever */
  if (c->yields-- > 0) {
    art_waker_wake_by_ref(&cx->waker);
    return ASYNCRT_POLL_PENDING;
  }
  return ASYNCRT_POLL_READY;
}
static void sc_child_drop(void *self) {
  sc_child *c = self;
  atomic_store(&c->drop_seq, atomic_fetch_add(&sc_seq, 1) + 1);
  atomic_fetch_add(&c->drops, 1);
}
static const asyncrt_future_vtable sc_child_vt = {sizeof(asyncrt_future_vtable), 0, sc_child_poll, sc_child_drop,
                                                  NULL};

static asyncrt_scope_config sc_config(void) {
  asyncrt_scope_config c = {.size = sizeof c, .cleanup_timeout_ns = 1};
  return c;
}

enum { SVC_PER_THREAD = 1500 };
typedef struct {
  art_scope *s;
  art_exec *cores[2];
  sc_child *kids;
  _Atomic int *refused, *spawned;
} svc_arg;

static void *svc_spawner(void *arg) {
  svc_arg *a = arg;
  for (int i = 0; i < SVC_PER_THREAD; i++) {
    sc_child *k = &a->kids[i];
    k->yields = (i % 3) ? -1 : i % 7; /* some finish on their own, most wait */
    asyncrt_future f = {k, &sc_child_vt};
    int rc = art_exec_spawn_scoped(a->cores[i & 1], &f, 0, NULL, NULL, a->s);
    if (rc == ASYNCRT_OK) atomic_fetch_add(a->spawned, 1);
    else {
      CHECK(rc == ASYNCRT_ECANCELLED, "spawn into a cancelled scope: %d", rc);
      atomic_fetch_add(a->refused, 1);
    }
  }
  return NULL;
}

/* Spawns from two threads race with a cancel from a third, and children on
 * two cores finish while the walk goes: each future is dropped once, the
 * scope ends with no child, every refusal is ECANCELLED. */
static void test_scope_spawn_vs_cancel(void) {
  art_clock clk = {.test = 1};
  art_exec *cores[2] = {clocked_new(&clk), clocked_new(&clk)};
  driver d[2];
  driver_start(&d[0], cores[0]);
  driver_start(&d[1], cores[1]);
  for (int round = 0; round < 4; round++) {
    asyncrt_scope_config cfg = sc_config();
    art_scope *s;
    CHECK(art_scope_open(cores[0], cores[0], NULL, &cfg, &s) == 0, "open: %s", art_last_error());
    static sc_child kids[2][SVC_PER_THREAD];
    memset(kids, 0, sizeof kids);
    _Atomic int refused = 0, spawned = 0;
    svc_arg args[2];
    pthread_t th[2];
    for (int i = 0; i < 2; i++) {
      args[i] = (svc_arg){s, {cores[0], cores[1]}, kids[i], &refused, &spawned};
      CHECK(pthread_create(&th[i], NULL, svc_spawner, &args[i]) == 0, "pthread_create");
    }
    while (atomic_load(&spawned) < 300 * (round + 1)) sched_yield();
    art_scope_cancel(s, 1, ART_CANCEL_USER);
    for (int i = 0; i < 2; i++) pthread_join(th[i], NULL);
    WAIT_FOR(art_scope_status(s) != ASYNCRT_EAGAIN, "scope still has %u children", s->live);
    int st = art_scope_status(s);
    CHECK(st == ASYNCRT_ECANCELLED, "scope status %d", st);
    for (int t = 0; t < 2; t++)
      for (int i = 0; i < SVC_PER_THREAD; i++)
        CHECK(atomic_load(&kids[t][i].drops) == 1, "child %d/%d dropped %d times", t, i, kids[t][i].drops);
    CHECK(atomic_load(&spawned) + atomic_load(&refused) == 2 * SVC_PER_THREAD, "spawned %d refused %d",
          atomic_load(&spawned), atomic_load(&refused));
    art_scope_free(s);
  }
  driver_stop(&d[0]);
  driver_stop(&d[1]);
  for (int i = 0; i < 2; i++) {
    asyncrt_worker_stats st;
    art_core_stats(cores[i], &st);
    CHECK(st.tasks_live == 0 && st.memory_in_use == 0, "core %d: live %llu mem %llu", i,
          (unsigned long long)st.tasks_live, (unsigned long long)st.memory_in_use);
    clocked_free(cores[i]);
  }
  puts("PASS scope_spawn_vs_cancel");
}

/* An owner on core 0 opens a scope, spawns children on core 1 and returns
 * at once: it must complete with ESCOPE after the last child's drop, and a
 * dump taken meanwhile from another thread sees a consistent tree. */
typedef struct {
  art_exec *child_core;
  sc_child kids[8];
  int opened;
  art_scope *s;
  _Atomic int drops;
  _Atomic uint64_t drop_seq;
} sc_owner;

static int sc_owner_poll(void *self, asyncrt_context *cx, void *out) {
  sc_owner *o = self;
  if (!o->opened) {
    o->opened = 1;
    asyncrt_scope_config cfg = sc_config();
    art_task *me = art_context_task(cx);
    CHECK(me, "no task in the context");
    CHECK(art_scope_open(cx->exec, cx->exec, me, &cfg, &o->s) == 0, "open: %s", art_last_error());
    for (int i = 0; i < 8; i++) {
      o->kids[i].yields = i & 1 ? -1 : 3;
      asyncrt_future f = {&o->kids[i], &sc_child_vt};
      CHECK(art_exec_spawn_scoped(o->child_core, &f, 0, NULL, NULL, o->s) == 0, "spawn: %s", art_last_error());
    }
  }
  return ASYNCRT_POLL_READY; /* without joining: the misuse */
}
static void sc_owner_drop(void *self) {
  sc_owner *o = self;
  atomic_store(&o->drop_seq, atomic_fetch_add(&sc_seq, 1) + 1);
  atomic_fetch_add(&o->drops, 1);
  art_scope_free(o->s);
}
static const asyncrt_future_vtable sc_owner_vt = {sizeof(asyncrt_future_vtable), 0, sc_owner_poll, sc_owner_drop,
                                                  NULL};

static void dump_sink(const char *data, size_t len, void *user) {
  CHECK(len > 0 && data, "empty dump");
  CHECK(strstr(data, user ? "\"tasks\":[" : "executor:") != NULL, "dump has no header: %.60s", data);
}

static _Atomic int dumping;
static void *dumper(void *arg) {
  art_exec **cores = arg;
  unsigned n = 0;
  while (atomic_load(&dumping)) {
    CHECK(art_exec_dump(cores, 2, n & 1 ? ASYNCRT_DUMP_JSON : ASYNCRT_DUMP_TEXT, dump_sink, n & 1 ? "j" : NULL) == 0,
          "dump: %s", art_last_error());
    n++;
  }
  return NULL;
}

static void test_scope_owner_waits_for_children(void) {
  art_clock clk = {.test = 1};
  art_exec *cores[2] = {clocked_new(&clk), clocked_new(&clk)};
  driver d[2];
  driver_start(&d[0], cores[0]);
  driver_start(&d[1], cores[1]);
  atomic_store(&dumping, 1);
  pthread_t dth;
  CHECK(pthread_create(&dth, NULL, dumper, cores) == 0, "pthread_create");
  enum { OWNERS = 200 };
  sc_owner *owners = calloc(OWNERS, sizeof *owners);
  art_task *ts[OWNERS];
  for (int i = 0; i < OWNERS; i++) {
    owners[i].child_core = cores[1];
    asyncrt_future f = {&owners[i], &sc_owner_vt};
    CHECK(art_exec_spawn(cores[0], &f, 0, NULL, &ts[i]) == 0, "spawn owner: %s", art_last_error());
  }
  for (int i = 0; i < OWNERS; i++) {
    WAIT_FOR(art_task_status(ts[i]) != ASYNCRT_EAGAIN, "owner %d did not complete", i);
    CHECK(art_task_status(ts[i]) == ASYNCRT_ESCOPE, "owner %d status %d", i, art_task_status(ts[i]));
    CHECK(atomic_load(&owners[i].drops) == 1, "owner %d drops %d", i, owners[i].drops);
    for (int k = 0; k < 8; k++) {
      CHECK(atomic_load(&owners[i].kids[k].drops) == 1, "owner %d kid %d drops %d", i, k, owners[i].kids[k].drops);
      CHECK(owners[i].kids[k].drop_seq < owners[i].drop_seq, "owner %d dropped before its child %d", i, k);
    }
    asyncrt_error_info info = {.size = sizeof info};
    CHECK(art_task_error_get(ts[i], &info) == 0 && info.message && strstr(info.message, "live children"),
          "owner %d: no misuse message", i);
    art_task_unref(ts[i]);
  }
  atomic_store(&dumping, 0);
  pthread_join(dth, NULL);
  driver_stop(&d[0]);
  driver_stop(&d[1]);
  for (int i = 0; i < 2; i++) {
    asyncrt_worker_stats st;
    art_core_stats(cores[i], &st);
    CHECK(st.tasks_live == 0 && st.memory_in_use == 0, "core %d: live %llu mem %llu", i,
          (unsigned long long)st.tasks_live, (unsigned long long)st.memory_in_use);
    clocked_free(cores[i]);
  }
  free(owners);
  puts("PASS scope_owner_waits_for_children");
}

/* Another thread reads ids and names while the driver gives the task its
 * ext (a shield) and other threads name it: the id never changes. */
typedef struct {
  art_task *t;
  uint64_t id;
  _Atomic int stop;
} ext_race;

static void *ext_reader(void *arg) {
  ext_race *r = arg;
  while (!atomic_load(&r->stop)) {
    CHECK(art_task_id(r->t) == r->id, "id changed: %llu", (unsigned long long)art_task_id(r->t));
    art_task_set_name(r->t, "racer");
  }
  return NULL;
}

static int shield_poll(void *self, asyncrt_context *cx, void *out) {
  int *n = self;
  CHECK(art_shield_enter(cx) == 0, "shield enter");
  CHECK(art_shield_exit(cx) == 0, "shield exit");
  if (++*n < 2000) {
    art_waker_wake_by_ref(&cx->waker);
    return ASYNCRT_POLL_PENDING;
  }
  return ASYNCRT_POLL_READY;
}
static const asyncrt_future_vtable shield_vt = {sizeof(asyncrt_future_vtable), 0, shield_poll, NULL, NULL};

static void test_lazy_ext_vs_readers(void) {
  art_exec *e = exec_new(0, NULL);
  for (int round = 0; round < 20; round++) {
    int n = 0;
    asyncrt_future f = {&n, &shield_vt};
    ext_race r = {0};
    CHECK(art_exec_spawn(e, &f, 0, NULL, &r.t) == 0, "spawn");
    r.id = art_task_id(r.t);
    pthread_t th;
    CHECK(pthread_create(&th, NULL, ext_reader, &r) == 0, "pthread_create");
    run_until(e, r.t);
    atomic_store(&r.stop, 1);
    pthread_join(th, NULL);
    CHECK(art_task_status(r.t) == ASYNCRT_OK && art_task_id(r.t) == r.id, "status %d", art_task_status(r.t));
    art_task_unref(r.t);
  }
  exec_free(e);
  puts("PASS lazy_ext_vs_readers");
}

/* A scope's deadline fires (the clock moved by another thread) while its
 * last children finish and it is joined: one outcome, no leak. */
static void test_deadline_vs_close(void) {
  art_clock clk = {.test = 1};
  art_exec *e = clocked_new(&clk);
  driver d;
  driver_start(&d, e);
  int timed_out = 0, ok = 0;
  for (int round = 0; round < 200; round++) {
    asyncrt_scope_config cfg = sc_config();
    cfg.timeout_ns = 1000;
    art_scope *s;
    CHECK(art_scope_open(e, e, NULL, &cfg, &s) == 0, "open: %s", art_last_error());
    sc_child kids[4] = {{.yields = 1}, {.yields = 2}, {.yields = 3}, {.yields = round % 5}};
    for (int i = 0; i < 4; i++) {
      asyncrt_future f = {&kids[i], &sc_child_vt};
      CHECK(art_exec_spawn_scoped(e, &f, 0, NULL, NULL, s) == 0, "round %d spawn %d: %s (flags %#x deadline %llu now %llu tick_now %llu)",
            round, i, art_last_error(), atomic_load(&s->flags), (unsigned long long)s->deadline,
            (unsigned long long)atomic_load(&e->clock->now), (unsigned long long)atomic_load(&e->tick_now));
    }
    atomic_fetch_add(&e->clock->now, 1000 + (round & 1)); /* the deadline is now due */
    art_exec_wake_driver(e);
    asyncrt_future j;
    CHECK(art_scope_join(s, &j) == 0, "join");
    asyncrt_context jcx = {0};
    int r;
    WAIT_FOR((r = j.vtable->poll(j.self, &jcx, NULL)) != ASYNCRT_POLL_PENDING, "scope never ended");
    j.vtable->drop(j.self);
    int st = r == ASYNCRT_POLL_READY ? ASYNCRT_OK : jcx.failure;
    if (st == ASYNCRT_ETIMEDOUT) timed_out++;
    else if (st == ASYNCRT_OK) ok++; /* the children finished before the deadline fired */
    else CHECK(0, "scope outcome %d: a deadline reports ETIMEDOUT", st);
    for (int i = 0; i < 4; i++) CHECK(atomic_load(&kids[i].drops) == 1, "kid %d drops %d", i, kids[i].drops);
    art_scope_free(s);
  }
  driver_stop(&d);
  asyncrt_worker_stats st;
  art_core_stats(e, &st);
  CHECK(st.tasks_live == 0 && st.memory_in_use == 0, "live %llu mem %llu", (unsigned long long)st.tasks_live,
        (unsigned long long)st.memory_in_use);
  clocked_free(e);
  printf("PASS deadline_vs_close (%d timed out, %d finished first)\n", timed_out, ok);
}

int main(void) {
  setvbuf(stdout, NULL, _IOLBF, 0); /* a run killed by the alarm still shows how far it got */
  alarm(120);
  test_handles();
  test_yield_and_join();
  test_cancel_and_shutdown_drop_once();
  test_cross_thread_wakes();
  test_join_across_executors();
  test_memory_limit_and_hook();
  test_hostq();
  test_group_steals();
  test_group_requests();
  test_group_requests_cancelled();
  test_group_cancel_all_with_local_tasks();
  test_group_live_counts_requests_in_transit();
  test_timers_fire_vs_cancel();
  test_timer_moved_between_cores();
  test_ops_complete_from_other_thread();
  test_cancel_with_ops_in_flight();
  test_detach_with_waiters();
  test_op_cancel_and_complete_races();
  test_scope_spawn_vs_cancel();
  test_scope_owner_waits_for_children();
  test_lazy_ext_vs_readers();
  test_deadline_vs_close();
  return 0;
}
