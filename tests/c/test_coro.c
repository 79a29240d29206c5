/* Coroutines (bindings/c/asyncrt_coro.h): awaits of sleeps and timers, of a
 * task's join, of a stream; a stream written with ARC_YIELD; ARC_PAUSE; a
 * child's failure passing through; ARC_FAIL; a coroutine cancelled while it
 * awaits.
 *
 * Everything runs on local executors driven by this thread (or is polled
 * directly with asyncrt_poll_with_waker), and time is the test clock's, so
 * each outcome -- how many polls, which line of the body ran, what was
 * dropped -- is checked exactly. */
#include "check.h" /* first: it sets _POSIX_C_SOURCE */
#include "testfut.h"

#include "asyncrt_coro.h"

#include <stdint.h>
#include <string.h>

#define MS 1000000ull

/* A user status (values above 1000 are the program's). */
#define CHILD_FAILED 1234
#define SELF_FAILED 1500

/* A waker that does nothing: for polls outside any executor. */
static void nw_clone(const void *data, asyncrt_waker *out);
static void nw_noop(const void *data) { (void)data; }
static const asyncrt_waker_vtable nw_vtable = {nw_clone, nw_noop, nw_noop, nw_noop};
static void nw_clone(const void *data, asyncrt_waker *out) {
  out->data = data;
  out->vtable = &nw_vtable;
}
static const asyncrt_waker noop_waker = {NULL, &nw_vtable};

static asyncrt_executor *test_clock_executor(void) {
  asyncrt_executor_config cfg;
  asyncrt_executor *ex = NULL;
  asyncrt_executor_config_init(&cfg);
  cfg.clock = ASYNCRT_CLOCK_TEST;
  if (asyncrt_executor_new(&cfg, &ex) != ASYNCRT_OK) {
    fprintf(stderr, "  asyncrt_executor_new: %s\n", asyncrt_last_error());
    return NULL;
  }
  return ex;
}

/* --- one coroutine future for every test ---------------------------------------
 *
 * Each test has its own poll body; the state is shared: the coroutine's
 * arc_state, one child future field, the children's storage, and counters
 * of what the body did. */

typedef struct coro {
  arc_state co;
  asyncrt_future child; /* zeroed while there is none; dropped in coro_drop */
  asyncrt_sleep sleep;
  asyncrt_timer timer; /* zeroed; disarmed in coro_drop */
  uint64_t deadline;
  tf_state *script; /* a scripted child (testfut.h) */
  asyncrt_task *task;
  uint64_t got, sum;
  int i;
  int stage; /* the last line of the body that ran, numbered by each test */
  int polls, drops;
} coro;

static void coro_drop(void *self) {
  coro *c = self;
  ARC_DROP_CHILD(&c->child);
  asyncrt_timer_cancel(&c->timer);
  c->drops++;
}

#define CORO_VTABLE(name, poll)                                               \
  static const asyncrt_future_vtable name = {sizeof(asyncrt_future_vtable),   \
                                             sizeof(uint64_t), poll, coro_drop, NULL}

static asyncrt_future coro_future(coro *c, const asyncrt_future_vtable *vt) {
  asyncrt_future f;
  memset(c, 0, sizeof *c);
  f.self = c;
  f.vtable = vt;
  return f;
}

/* --- two sleeps on the test clock ----------------------------------------------- */

/* Sleeps 10 ms through a sleep future (ARC_AWAIT), then 20 ms on a bare
 * timer (ARC_AWAIT_POLL), and returns the clock. */
static int two_sleeps_poll(void *self, asyncrt_context *cx, void *out) {
  coro *c = self;
  c->polls++;
  ARC_BEGIN(c->co);
  c->stage = 1;
  if (asyncrt_sleep_for(&c->sleep, 10 * MS, &c->child) != ASYNCRT_OK) {
    ARC_FAIL(c->co, cx, ASYNCRT_EINTERNAL);
  }
  ARC_AWAIT(c->co, cx, &c->child, NULL);
  ARC_DROP_CHILD(&c->child);
  c->stage = 2;
  c->deadline = asyncrt_context_now(cx) + 20 * MS;
  ARC_AWAIT_POLL(c->co, asyncrt_timer_poll(&c->timer, cx, c->deadline));
  c->stage = 3;
  ARC_RETURN(c->co, *(uint64_t *)out = asyncrt_context_now(cx));
  ARC_END(c->co);
}
CORO_VTABLE(two_sleeps_vtable, two_sleeps_poll);

static void test_two_sleeps(void) {
  asyncrt_executor *ex = test_clock_executor();
  static coro c;
  asyncrt_future f = coro_future(&c, &two_sleeps_vtable), join;
  asyncrt_task *task = NULL;
  uint64_t woke_at = 0;
  CHECK(ex != NULL);
  CHECK_OK(asyncrt_spawn(ex, &f, ASYNCRT_SPAWN_LOCAL, &task));
  CHECK_OK(asyncrt_run(ex, NULL));
  CHECK_INT(c.stage, 1);
  CHECK_OK(asyncrt_clock_advance(ex, 9 * MS));
  CHECK_OK(asyncrt_run(ex, NULL));
  CHECK_INT(c.stage, 1); /* no timer fires early */
  CHECK_OK(asyncrt_clock_advance(ex, 1 * MS));
  CHECK_OK(asyncrt_run(ex, NULL));
  CHECK_INT(c.stage, 2);
  CHECK(c.child.vtable == NULL); /* the first sleep was dropped */
  CHECK_OK(asyncrt_clock_advance(ex, 19 * MS));
  CHECK_OK(asyncrt_run(ex, NULL));
  CHECK_INT(c.stage, 2);
  CHECK_STATUS(asyncrt_task_status(task), ASYNCRT_EAGAIN);
  CHECK_OK(asyncrt_clock_advance(ex, 1 * MS));
  CHECK_OK(asyncrt_run(ex, NULL));
  CHECK_INT(c.stage, 3);
  CHECK_STATUS(asyncrt_task_status(task), ASYNCRT_OK);
  CHECK_INT(c.polls, 3); /* start, first sleep over, second sleep over */
  CHECK_INT(c.drops, 1);
  CHECK_OK(asyncrt_task_join(task, &join));
  CHECK_OK(asyncrt_block_on(ex, &join, &woke_at, TF_TIMEOUT_NS));
  CHECK_INT(woke_at, 30 * MS);
  CHECK_OK(asyncrt_task_release(task));
  CHECK_OK(asyncrt_executor_free(ex));
  CHECK_INT(c.drops, 1);
}

/* --- a task's join ------------------------------------------------------------- */

/* Spawns c->script as a sibling task and returns its output: the join's
 * output goes straight to this poll's `out`. */
static int await_join_poll(void *self, asyncrt_context *cx, void *out) {
  coro *c = self;
  asyncrt_future f;
  c->polls++;
  ARC_BEGIN(c->co);
  f = tf_future(c->script);
  if (asyncrt_spawn(asyncrt_context_executor(cx), &f, ASYNCRT_SPAWN_LOCAL, &c->task) !=
          ASYNCRT_OK ||
      asyncrt_task_join(c->task, &c->child) != ASYNCRT_OK) {
    ARC_FAIL(c->co, cx, ASYNCRT_EINTERNAL);
  }
  asyncrt_task_release(c->task); /* the join holds its own reference */
  c->stage = 1;
  ARC_AWAIT(c->co, cx, &c->child, out);
  ARC_DROP_CHILD(&c->child);
  c->stage = 2;
  ARC_RETURN(c->co, ); /* the output is already in `out` */
  ARC_END(c->co);
}
CORO_VTABLE(await_join_vtable, await_join_poll);

static void test_await_join(void) {
  asyncrt_executor *ex = test_clock_executor();
  static coro c;
  static tf_state script;
  asyncrt_future f = coro_future(&c, &await_join_vtable);
  uint64_t got = 0;
  CHECK(ex != NULL);
  tf_init(&script);
  script.pendings = 3;
  script.value = 77;
  c.script = &script;
  CHECK_OK(asyncrt_block_on(ex, &f, &got, TF_TIMEOUT_NS));
  CHECK_INT(got, 77);
  CHECK_INT(c.stage, 2);
  CHECK_INT(c.drops, 1);
  CHECK_INT(tf_get(&script.polls), 4);
  CHECK_INT(tf_get(&script.drops), 1);
  CHECK_OK(asyncrt_executor_free(ex));
  CHECK_INT(tf_get(&script.drops), 1);
  CHECK_INT(tf_get(&script.bad_polls), 0);
}

/* --- a stream ------------------------------------------------------------------ */

/* Yields 10, 20, 30, then ends. The loop counter lives in the struct. */
static int three_items_poll(void *self, asyncrt_context *cx, void *out) {
  coro *c = self;
  (void)cx;
  c->polls++;
  ARC_BEGIN(c->co);
  for (c->i = 1; c->i <= 3; c->i++) {
    ARC_YIELD(c->co, *(uint64_t *)out = (uint64_t)c->i * 10);
    c->stage = c->i;
  }
  ARC_END(c->co);
}
CORO_VTABLE(three_items_vtable, three_items_poll);

static void test_stream_yields_three_items(void) {
  static coro c;
  asyncrt_future f = coro_future(&c, &three_items_vtable);
  const uint64_t want[3] = {10, 20, 30};
  uint64_t item;
  int i, failure;
  for (i = 0; i < 3; i++) {
    item = 0;
    failure = -1;
    CHECK_INT(asyncrt_poll_with_waker(&f, &noop_waker, &item, &failure), ASYNCRT_POLL_YIELDED);
    CHECK_INT(item, want[i]);
    CHECK_INT(c.stage, i); /* the body stopped at the yield */
  }
  item = 99;
  CHECK_INT(asyncrt_poll_with_waker(&f, &noop_waker, &item, &failure), ASYNCRT_POLL_READY);
  CHECK_INT(item, 99); /* the end carries no item */
  CHECK_INT(c.stage, 3);
  CHECK_INT(c.polls, 4);
  /* A poll after the end (asyncrt never makes one) is an error. */
  CHECK_INT(asyncrt_poll_with_waker(&f, &noop_waker, &item, &failure), ASYNCRT_POLL_ERROR);
  CHECK_STATUS(failure, ASYNCRT_EFAILED);
  f.vtable->drop(f.self);
  CHECK_INT(c.drops, 1);
}

/* Awaits every item of the three-item stream (its child: the consumer owns
 * the stream and drops it) and returns their sum. */
typedef struct consumer {
  coro base; /* base.child: the stream */
  coro stream;
} consumer;

static int sum_stream_poll(void *self, asyncrt_context *cx, void *out) {
  consumer *s = self;
  coro *c = &s->base;
  c->polls++;
  ARC_BEGIN(c->co);
  for (;;) {
    ARC_AWAIT(c->co, cx, &c->child, &c->got);
    if (ARC_LAST(c->co) == ASYNCRT_POLL_READY) {
      break; /* the stream ended: c->got holds no item */
    }
    c->sum += c->got;
    c->i++;
  }
  ARC_DROP_CHILD(&c->child);
  ARC_RETURN(c->co, *(uint64_t *)out = c->sum);
  ARC_END(c->co);
}
CORO_VTABLE(sum_stream_vtable, sum_stream_poll);

static void test_await_stream_items(void) {
  asyncrt_executor *ex = test_clock_executor();
  static consumer s;
  asyncrt_future f = coro_future(&s.base, &sum_stream_vtable);
  uint64_t sum = 0;
  CHECK(ex != NULL);
  s.base.child = coro_future(&s.stream, &three_items_vtable);
  CHECK_OK(asyncrt_block_on(ex, &f, &sum, TF_TIMEOUT_NS));
  CHECK_INT(sum, 60);
  CHECK_INT(s.base.i, 3);
  CHECK_INT(s.base.polls, 1); /* a stream that never waits: one poll */
  CHECK_INT(s.stream.polls, 4);
  CHECK_INT(s.stream.drops, 1);
  CHECK_INT(s.base.drops, 1);
  CHECK_OK(asyncrt_executor_free(ex));
}

/* --- ARC_PAUSE ---------------------------------------------------------------- */

static int pause_three_times_poll(void *self, asyncrt_context *cx, void *out) {
  coro *c = self;
  c->polls++;
  ARC_BEGIN(c->co);
  for (c->i = 0; c->i < 3; c->i++) {
    ARC_PAUSE(c->co, cx);
  }
  ARC_RETURN(c->co, *(uint64_t *)out = (uint64_t)c->i);
  ARC_END(c->co);
}
CORO_VTABLE(pause_vtable, pause_three_times_poll);

static void test_pause(void) {
  asyncrt_executor *ex = test_clock_executor();
  static coro c;
  asyncrt_future f = coro_future(&c, &pause_vtable);
  asyncrt_task *task = NULL;
  uint64_t polls = 0;
  CHECK(ex != NULL);
  CHECK_OK(asyncrt_spawn(ex, &f, ASYNCRT_SPAWN_LOCAL, &task));
  CHECK_OK(asyncrt_run_step(ex, 1, 0, &polls));
  CHECK_INT(polls, 1);
  CHECK_INT(c.polls, 1);
  CHECK_STATUS(asyncrt_task_status(task), ASYNCRT_EAGAIN); /* woke itself, waits its turn */
  CHECK_OK(asyncrt_run(ex, &polls));
  CHECK_INT(polls, 3);
  CHECK_INT(c.polls, 4);
  CHECK_STATUS(asyncrt_task_status(task), ASYNCRT_OK);
  CHECK_INT(c.drops, 1);
  CHECK_OK(asyncrt_task_release(task));
  CHECK_OK(asyncrt_executor_free(ex));
}

/* --- failures ----------------------------------------------------------------- */

/* Awaits c->script as a child (the coroutine owns it); stage 2 would mean
 * the body went on after the await. */
static int await_child_poll(void *self, asyncrt_context *cx, void *out) {
  coro *c = self;
  c->polls++;
  ARC_BEGIN(c->co);
  c->child = tf_future(c->script);
  c->stage = 1;
  ARC_AWAIT(c->co, cx, &c->child, &c->got);
  c->stage = 2;
  ARC_RETURN(c->co, *(uint64_t *)out = c->got);
  ARC_END(c->co);
}
CORO_VTABLE(await_child_vtable, await_child_poll);

static void test_child_failure_propagates(void) {
  asyncrt_executor *ex = test_clock_executor();
  static coro c;
  static tf_state script;
  asyncrt_future f = coro_future(&c, &await_child_vtable);
  uint64_t out = 0;
  CHECK(ex != NULL);
  tf_init(&script);
  script.pendings = 2;
  script.fail = CHILD_FAILED;
  c.script = &script;
  CHECK_STATUS(asyncrt_block_on(ex, &f, &out, TF_TIMEOUT_NS), CHILD_FAILED);
  CHECK_INT(c.stage, 1);
  CHECK_INT(c.polls, 3);
  CHECK_INT(tf_get(&script.polls), 3);
  CHECK_INT(tf_get(&script.drops), 1); /* by coro_drop */
  CHECK_INT(c.drops, 1);

  /* A child that fails without naming why: ASYNCRT_EFAILED. */
  f = coro_future(&c, &await_child_vtable);
  tf_init(&script);
  script.fail = TF_FAIL_UNNAMED;
  c.script = &script;
  CHECK_STATUS(asyncrt_block_on(ex, &f, &out, TF_TIMEOUT_NS), ASYNCRT_EFAILED);
  CHECK_INT(c.stage, 1);
  CHECK_INT(tf_get(&script.drops), 1);
  CHECK_INT(c.drops, 1);
  CHECK_OK(asyncrt_executor_free(ex));
  CHECK_INT(tf_get(&script.bad_polls), 0);
}

/* Fails with its own status after a pause. */
static int fail_poll(void *self, asyncrt_context *cx, void *out) {
  coro *c = self;
  (void)out;
  c->polls++;
  ARC_BEGIN(c->co);
  ARC_PAUSE(c->co, cx);
  c->stage = 1;
  ARC_FAIL(c->co, cx, SELF_FAILED);
  c->stage = 2; /* never runs */
  ARC_END(c->co);
}
CORO_VTABLE(fail_vtable, fail_poll);

static void test_fail(void) {
  asyncrt_executor *ex = test_clock_executor();
  static coro c;
  asyncrt_future f = coro_future(&c, &fail_vtable);
  uint64_t out = 0;
  CHECK(ex != NULL);
  CHECK_STATUS(asyncrt_block_on(ex, &f, &out, TF_TIMEOUT_NS), SELF_FAILED);
  CHECK_INT(c.stage, 1);
  CHECK_INT(c.polls, 2);
  CHECK_INT(c.drops, 1);
  CHECK_OK(asyncrt_executor_free(ex));
}

/* --- cancelled while it awaits ------------------------------------------------- */

static void test_cancel_mid_await(void) {
  asyncrt_executor *ex = test_clock_executor();
  static coro c;
  static tf_state script;
  asyncrt_future f = coro_future(&c, &await_child_vtable);
  asyncrt_task *task = NULL;
  CHECK(ex != NULL);
  tf_init(&script);
  script.park = 1; /* keeps the waker and waits for a wake nobody sends */
  script.pendings = 1;
  c.script = &script;
  CHECK_OK(asyncrt_spawn(ex, &f, ASYNCRT_SPAWN_LOCAL, &task));
  CHECK_OK(asyncrt_run(ex, NULL));
  CHECK_INT(c.stage, 1);
  CHECK_INT(tf_get(&script.polls), 1);
  CHECK_INT(tf_get(&script.parked_flag), 1);
  CHECK_OK(asyncrt_task_cancel(task));
  CHECK_OK(asyncrt_run(ex, NULL));
  CHECK_STATUS(asyncrt_task_status(task), ASYNCRT_ECANCELLED);
  CHECK_INT(c.drops, 1);
  CHECK_INT(tf_get(&script.drops), 1);
  CHECK_INT(c.stage, 1);
  CHECK_INT(c.polls, 1);
  CHECK(c.child.vtable == NULL);
  CHECK_OK(asyncrt_task_release(task));
  CHECK_OK(asyncrt_executor_free(ex));
  CHECK_INT(c.drops, 1);
  CHECK_INT(tf_get(&script.drops), 1);
  CHECK_INT(tf_get(&script.polls), 1);
}

int main(void) {
  CHECK_BEGIN();
  RUN(test_two_sleeps);
  RUN(test_await_join);
  RUN(test_stream_yields_three_items);
  RUN(test_await_stream_items);
  RUN(test_pause);
  RUN(test_child_failure_propagates);
  RUN(test_fail);
  RUN(test_cancel_mid_await);
  return CHECK_END("coro");
}
