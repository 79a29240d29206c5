/*
 * asyncrt side of the benchmarks, driven through the public header only:
 * default executor configuration, default allocator, and every wake goes
 * through the waker found in the poll context.
 *
 * yield and spawn both run a root future with asyncrt_block_on that spawns
 * its children (detached) from inside its first poll and stays pending until
 * the last child wakes it through a cloned waker. The timed span therefore
 * includes spawning and waiting, as it does for every peer (tokio block_on +
 * spawn + Notify, Go go + WaitGroup, asyncio create_task + a future).
 */
#include <stdio.h>
#include <stdlib.h>

#include "asyncrt.h"
#include "bench.h"

static asyncrt_executor *executor;

static void check(int status, const char *what) {
  if (status != ASYNCRT_OK) bench_die(what, asyncrt_last_error());
}

/* ---- the root: spawn the children, wait for the last one ---------------- */

typedef struct fan_out {
  const asyncrt_future_vtable *child_vtable;
  char *child_states; /* child i's state is child_states + i * child_stride */
  size_t child_stride;
  size_t children;
  size_t remaining;
  int spawned;
  asyncrt_waker root; /* a clone, woken by the last child */
} fan_out;

static int fan_out_poll(void *self, asyncrt_context *cx, void *out) {
  (void)out;
  fan_out *f = self;
  if (!f->spawned) {
    f->spawned = 1;
    asyncrt_waker_clone(asyncrt_context_waker(cx), &f->root);
    asyncrt_executor *ex = asyncrt_context_executor(cx);
    for (size_t i = 0; i < f->children; i++) {
      asyncrt_future child = {f->child_states + i * f->child_stride, f->child_vtable};
      check(asyncrt_spawn(ex, &child, ASYNCRT_SPAWN_LOCAL, NULL), "asyncrt_spawn");
    }
  }
  return f->remaining == 0 ? ASYNCRT_POLL_READY : ASYNCRT_POLL_PENDING;
}

static const asyncrt_future_vtable fan_out_vtable = {
    sizeof(asyncrt_future_vtable), 0, fan_out_poll, NULL, NULL};

static void fan_out_run(fan_out *f) {
  asyncrt_future root = {f, &fan_out_vtable};
  check(asyncrt_block_on(executor, &root, NULL, ASYNCRT_NO_TIMEOUT), "asyncrt_block_on");
  if (f->remaining != 0) bench_die("fan_out", "root finished before its children");
}

static void child_done(fan_out *f) {
  if (--f->remaining == 0) asyncrt_waker_wake(&f->root);
}

/* ---- yield_many / yield_few: wake yourself, return pending ---------------- */

typedef struct yielder {
  fan_out *group;
  size_t left;
} yielder;

static int yielder_poll(void *self, asyncrt_context *cx, void *out) {
  (void)out;
  yielder *y = self;
  if (y->left-- == 0) {
    child_done(y->group);
    return ASYNCRT_POLL_READY;
  }
  asyncrt_waker_wake_by_ref(asyncrt_context_waker(cx));
  return ASYNCRT_POLL_PENDING;
}

static const asyncrt_future_vtable yielder_vtable = {
    sizeof(asyncrt_future_vtable), 0, yielder_poll, NULL, NULL};

static void yield_once(size_t tasks, size_t yields) {
  static yielder *states; /* the futures' state: the bench's memory, reused */
  if (states == NULL && (states = malloc(tasks * sizeof *states)) == NULL)
    bench_die("malloc", "yielder states");
  fan_out f = {&yielder_vtable, (char *)states, sizeof *states, tasks, tasks, 0, {0}};
  for (size_t i = 0; i < tasks; i++) states[i] = (yielder){&f, yields};
  fan_out_run(&f);
}

/* ---- spawn_many: trivial children, ready on their first poll ------------- */

static int trivial_poll(void *self, asyncrt_context *cx, void *out) {
  (void)cx, (void)out;
  child_done(self);
  return ASYNCRT_POLL_READY;
}

static const asyncrt_future_vtable trivial_vtable = {
    sizeof(asyncrt_future_vtable), 0, trivial_poll, NULL, NULL};

static void spawn_once(size_t tasks) {
  /* Every child's state is the group itself (stride 0): nothing per task. */
  fan_out f = {&trivial_vtable, NULL, 0, tasks, tasks, 0, {0}};
  f.child_states = (char *)&f;
  fan_out_run(&f);
}

/* ---- idle_task_memory: pending forever, never woken ---------------------- */

typedef struct parked {
  uint64_t polls;
} parked;

static int parked_poll(void *self, asyncrt_context *cx, void *out) {
  (void)cx, (void)out;
  ((parked *)self)->polls++;
  return ASYNCRT_POLL_PENDING;
}

static const asyncrt_future_vtable parked_vtable = {
    sizeof(asyncrt_future_vtable), 0, parked_poll, NULL, NULL};

/* The futures' state is one array allocated and touched before the first
 * RSS reading, so only the runtime's own memory is in the growth. Each task
 * is polled once (the poll is where a runtime may register a waker) before
 * the second reading. */
static double idle_bytes(size_t tasks) {
  parked *states = malloc(tasks * sizeof *states);
  if (states == NULL) bench_die("malloc", "parked states");
  for (size_t i = 0; i < tasks; i++) states[i].polls = 0;
  size_t before = bench_rss_bytes();
  for (size_t i = 0; i < tasks; i++) {
    asyncrt_future fut = {&states[i], &parked_vtable};
    check(asyncrt_spawn(executor, &fut, ASYNCRT_SPAWN_LOCAL, NULL), "asyncrt_spawn");
  }
  uint64_t polls = 0;
  check(asyncrt_run(executor, &polls), "asyncrt_run");
  size_t after = bench_rss_bytes();
  if (polls != tasks) bench_die("idle", "not every task was polled exactly once");

  asyncrt_executor_stats stats = {.size = sizeof stats};
  check(asyncrt_executor_stats_get(executor, &stats), "asyncrt_executor_stats_get");
  fprintf(stderr, "future state %zu bytes/task excluded; executor stats: %.1f bytes/task in use\n",
          sizeof *states, (double)stats.memory_in_use / (double)tasks);
  return (double)(after - before);
}

int main(int argc, char **argv) {
  check(asyncrt_check_version(ASYNCRT_VERSION_HEX), "asyncrt_check_version");
  check(asyncrt_executor_new(NULL, &executor), "asyncrt_executor_new");
  static const bench_ops ops = {yield_once, spawn_once, idle_bytes};
  int rc = bench_main(argc, argv, &ops);
  check(asyncrt_executor_free(executor), "asyncrt_executor_free");
  return rc;
}
