/*
 * libuv peer. libuv has handles, not tasks: the idiom for a task that yields
 * is one uv_idle_t whose callback runs once per loop iteration; a spawned
 * task is a malloc'd uv_idle_t that stops and closes itself on its first
 * callback. uv_run returns once every handle is closed, which is "wait for
 * all". A chained task starts the next handle from its callback; a wake
 * from another thread is uv_async_send, acknowledged through a uv_sem_t.
 */
#include <stdlib.h>
#include <uv.h>

#include "bench.h"

static uv_loop_t *loop;

static void check(int rc, const char *what) {
  if (rc != 0) bench_die(what, uv_strerror(rc));
}

typedef struct yielder {
  uv_idle_t handle; /* first, so the handle pointer is the state pointer */
  size_t left;
} yielder;

static void yielder_cb(uv_idle_t *handle) {
  yielder *y = (yielder *)handle;
  if (y->left-- == 0) {
    uv_idle_stop(handle);
    uv_close((uv_handle_t *)handle, NULL);
  }
}

static void yield_once(size_t tasks, size_t yields) {
  static yielder *states;
  if (states == NULL && (states = malloc(tasks * sizeof *states)) == NULL)
    bench_die("malloc", "states");
  for (size_t i = 0; i < tasks; i++) {
    states[i].left = yields;
    check(uv_idle_init(loop, &states[i].handle), "uv_idle_init");
    check(uv_idle_start(&states[i].handle, yielder_cb), "uv_idle_start");
  }
  check(uv_run(loop, UV_RUN_DEFAULT), "uv_run");
}

static void free_handle(uv_handle_t *handle) { free(handle); }

static void trivial_cb(uv_idle_t *handle) {
  uv_idle_stop(handle);
  uv_close((uv_handle_t *)handle, free_handle);
}

static void spawn_once(size_t tasks) {
  for (size_t i = 0; i < tasks; i++) {
    uv_idle_t *handle = malloc(sizeof *handle);
    if (handle == NULL) bench_die("malloc", "uv_idle_t");
    check(uv_idle_init(loop, handle), "uv_idle_init");
    check(uv_idle_start(handle, trivial_cb), "uv_idle_start");
  }
  check(uv_run(loop, UV_RUN_DEFAULT), "uv_run");
}

static size_t chain_left;

static void spawn_link(void);

static void link_cb(uv_idle_t *handle) {
  if (--chain_left > 0) spawn_link();
  trivial_cb(handle);
}

static void spawn_link(void) {
  uv_idle_t *handle = malloc(sizeof *handle);
  if (handle == NULL) bench_die("malloc", "uv_idle_t");
  check(uv_idle_init(loop, handle), "uv_idle_init");
  check(uv_idle_start(handle, link_cb), "uv_idle_start");
}

static void chain_once(size_t depth) {
  chain_left = depth;
  spawn_link();
  check(uv_run(loop, UV_RUN_DEFAULT), "uv_run");
  if (chain_left != 0) bench_die("chain", "the loop ended before the chain");
}

/* cross_thread_wake: a uv_thread_t sends, the loop's async callback
 * acknowledges on a semaphore the thread waits on. */
typedef struct pinger {
  uv_async_t async; /* first, so the handle pointer is the state pointer */
  uv_sem_t ack;
  size_t rounds, acked;
} pinger;

static void pinger_thread(void *arg) {
  pinger *p = arg;
  for (size_t i = 0; i < p->rounds; i++) {
    check(uv_async_send(&p->async), "uv_async_send");
    uv_sem_wait(&p->ack);
  }
}

static void ack_cb(uv_async_t *async) {
  pinger *p = (pinger *)async;
  uv_sem_post(&p->ack);
  if (++p->acked == p->rounds) uv_close((uv_handle_t *)async, NULL);
}

static void wake_once(size_t round_trips) {
  pinger p = {.rounds = round_trips};
  check(uv_sem_init(&p.ack, 0), "uv_sem_init");
  check(uv_async_init(loop, &p.async, ack_cb), "uv_async_init");
  uv_thread_t thread;
  check(uv_thread_create(&thread, pinger_thread, &p), "uv_thread_create");
  check(uv_run(loop, UV_RUN_DEFAULT), "uv_run");
  check(uv_thread_join(&thread), "uv_thread_join");
  uv_sem_destroy(&p.ack);
}

int main(int argc, char **argv) {
  loop = uv_default_loop();
  /* No idle_task_memory: a parked "task" would be a stopped handle, which is
   * just caller memory libuv does not track -- there is no task to measure.
   * No spawn_mt: a libuv loop is one thread. */
  static const bench_ops ops = {
      .yield_once = yield_once,
      .spawn_once = spawn_once,
      .chain_once = chain_once,
      .wake_once = wake_once,
  };
  return bench_main(argc, argv, &ops);
}
