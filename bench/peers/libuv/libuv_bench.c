/*
 * libuv peer. libuv has handles, not tasks: the idiom for a task that yields
 * is one uv_idle_t whose callback runs once per loop iteration; a spawned
 * task is a malloc'd uv_idle_t that stops and closes itself on its first
 * callback. uv_run returns once every handle is closed, which is "wait for
 * all".
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

int main(int argc, char **argv) {
  loop = uv_default_loop();
  /* No idle_task_memory: a parked "task" would be a stopped handle, which is
   * just caller memory libuv does not track -- there is no task to measure. */
  static const bench_ops ops = {yield_once, spawn_once, NULL};
  return bench_main(argc, argv, &ops);
}
