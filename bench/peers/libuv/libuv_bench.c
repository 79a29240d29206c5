/*
 * libuv peer. libuv has handles, not tasks: the idiom for a task that yields
 * is one uv_idle_t whose callback runs once per loop iteration; a spawned
 * task is a malloc'd uv_idle_t that stops and closes itself on its first
 * callback. uv_run returns once every handle is closed, which is "wait for
 * all". A chained task starts the next handle from its callback; ping_pong
 * hands a message to the peer's handle and starts it (uv_idle_start(peer)),
 * stopping its own until the reply comes; a wake
 * from another thread is uv_async_send, acknowledged through a uv_sem_t. A
 * timer is a malloc'd uv_timer_t that closes itself when it fires.
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

/* ping_pong: each side is an idle handle with a one-message inbox. Its
 * callback takes the message, puts the reply in the peer's inbox, and
 * passes the turn: it stops itself and starts the peer. */
typedef struct side {
  uv_idle_t handle; /* first, so the handle pointer is the state pointer */
  uv_idle_cb cb;
  struct side *peer;
  uint64_t inbox;
  size_t rounds_left; /* the pinger's count; the ponger's is unused */
} side;

static void pass_turn(side *from, uint64_t message) {
  from->peer->inbox = message;
  check(uv_idle_stop(&from->handle), "uv_idle_stop");
  check(uv_idle_start(&from->peer->handle, from->peer->cb), "uv_idle_start");
}

static void ponger_cb(uv_idle_t *handle) {
  side *me = (side *)handle;
  pass_turn(me, me->inbox + 1);
}

static void pinger_cb(uv_idle_t *handle) {
  side *me = (side *)handle;
  if (--me->rounds_left == 0) {
    uv_idle_stop(handle);
    uv_close((uv_handle_t *)handle, NULL);
    uv_close((uv_handle_t *)&me->peer->handle, NULL);
    return;
  }
  pass_turn(me, me->inbox);
}

static void ping_pong_once(size_t round_trips) {
  side pinger = {.cb = pinger_cb, .rounds_left = round_trips + 1}, ponger = {.cb = ponger_cb};
  pinger.peer = &ponger;
  ponger.peer = &pinger;
  check(uv_idle_init(loop, &pinger.handle), "uv_idle_init");
  check(uv_idle_init(loop, &ponger.handle), "uv_idle_init");
  check(uv_idle_start(&pinger.handle, pinger.cb), "uv_idle_start");
  check(uv_run(loop, UV_RUN_DEFAULT), "uv_run");
  if (pinger.inbox != round_trips) bench_die("ping_pong", "wrong number of replies");
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

/* timers: the handle's state holds the deadline on CLOCK_MONOTONIC
 * (bench_now_ns; libuv's uv_hrtime reads the same clock). */
typedef struct timer_task {
  uv_timer_t handle; /* first, so the handle pointer is the state pointer */
  uint64_t deadline;
  int64_t *late;
} timer_task;

static void timer_cb(uv_timer_t *handle) {
  timer_task *t = (timer_task *)handle;
  *t->late = (int64_t)(bench_now_ns() - t->deadline);
  uv_close((uv_handle_t *)handle, free_handle);
}

static void timers_once(bench_timers *b) {
  uint64_t start = bench_now_ns();
  for (size_t i = 0; i < b->count; i++) {
    timer_task *t = malloc(sizeof *t);
    if (t == NULL) bench_die("malloc", "uv_timer_t");
    t->deadline = bench_now_ns() + b->offset_ns[i];
    t->late = &b->late_ns[i];
    check(uv_timer_init(loop, &t->handle), "uv_timer_init");
    /* A libuv timer is due at uv_now() + timeout, in whole milliseconds of
     * the loop's clock, which is cached per loop iteration and so behind the
     * real time. Counting from uv_now() to the deadline rounded up to its
     * millisecond makes the due time exactly that millisecond, which is
     * never before the deadline; a plain timeout of ceil(offset) ms would
     * count from the stale loop time and fire early. */
    uint64_t due_ms = (t->deadline + 999999) / 1000000;
    check(uv_timer_start(&t->handle, timer_cb, due_ms - uv_now(loop), 0), "uv_timer_start");
  }
  b->create_ns = bench_now_ns() - start;
  check(uv_run(loop, UV_RUN_DEFAULT), "uv_run");
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
      .ping_pong_once = ping_pong_once,
      .wake_once = wake_once,
      .timers_once = timers_once,
  };
  return bench_main(argc, argv, &ops);
}
