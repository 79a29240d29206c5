/* dataplane_test.c -- the C data plane on its own, without Go, so that it can
 * run under AddressSanitizer, UndefinedBehaviorSanitizer and ThreadSanitizer.
 * Prints "PASS <name>" per test; exits 1 at the first failure. Every wait is
 * bounded: a lost wakeup fails the test instead of hanging it. */
#include <poll.h>
#include <pthread.h>
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
  asyncrt_executor_stats st;
  art_exec_stats(e, &st);
  CHECK(st.tasks_live == 0 && st.memory_in_use == 0 && st.tasks_spawned == T, "stats live %llu mem %llu",
        (unsigned long long)st.tasks_live, (unsigned long long)st.memory_in_use);
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

int main(void) {
  alarm(120);
  test_handles();
  test_yield_and_join();
  test_cancel_and_shutdown_drop_once();
  test_cross_thread_wakes();
  test_join_across_executors();
  test_memory_limit_and_hook();
  test_hostq();
  test_group_steals();
  return 0;
}
