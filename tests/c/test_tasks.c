/* Futures and tasks: spawn, join, block_on, failures, wakes, yields, run and
 * run_step, task status and ids. */
#include "check.h"
#include "testfut.h"

static void test_spawn_join_block_on(void) {
  asyncrt_executor *ex = tf_executor();
  tf_state st;
  asyncrt_future f, join;
  asyncrt_task *task = NULL;
  uint64_t out = 0;
  CHECK(ex != NULL);
  tf_init(&st);
  st.pendings = 3;
  st.value = 0x1122334455667788ull;
  f = tf_future(&st);
  CHECK_OK(asyncrt_spawn(ex, &f, ASYNCRT_SPAWN_LOCAL, &task));
  CHECK(task != NULL);
  CHECK_INT(tf_get(&st.polls), 0); /* polled by the driver, not by spawn */
  CHECK_STATUS(asyncrt_task_status(task), ASYNCRT_EAGAIN);
  CHECK_OK(asyncrt_task_join(task, &join));
  CHECK(join.vtable != NULL && join.vtable->poll != NULL);
  CHECK_INT(join.vtable->output_size, sizeof(uint64_t));
  CHECK_OK(asyncrt_block_on(ex, &join, &out, TF_TIMEOUT_NS));
  CHECK_INT(out, 0x1122334455667788ull);
  CHECK_INT(tf_get(&st.polls), 4);
  CHECK_INT(tf_get(&st.drops), 1);
  CHECK_INT(tf_get(&st.bad_polls), 0);
  CHECK(st.executor == ex);
  CHECK(pthread_equal(st.poll_thread, pthread_self()));
  CHECK_OK(asyncrt_task_status(task));
  CHECK_OK(asyncrt_task_release(task));
  CHECK_OK(asyncrt_executor_free(ex));
  CHECK_INT(tf_get(&st.drops), 1);
}

/* A future with the largest output: every byte must reach the joiner. */
static int big_poll(void *self, asyncrt_context *cx, void *out) {
  unsigned char *bytes = out;
  size_t i;
  (void)self;
  (void)cx;
  for (i = 0; i < ASYNCRT_OUTPUT_MAX; i++) {
    bytes[i] = (unsigned char)(i * 7 + 3);
  }
  return ASYNCRT_POLL_READY;
}
static const asyncrt_future_vtable big_vtable = {sizeof(asyncrt_future_vtable),
                                                 ASYNCRT_OUTPUT_MAX, big_poll, NULL, NULL};

static void test_join_carries_every_output_byte(void) {
  asyncrt_executor *ex = tf_executor();
  asyncrt_future f, join;
  asyncrt_task *task = NULL;
  static unsigned char out[ASYNCRT_OUTPUT_MAX + 16];
  size_t i;
  CHECK(ex != NULL);
  f.self = NULL;
  f.vtable = &big_vtable;
  CHECK_OK(asyncrt_spawn(ex, &f, 0, &task));
  CHECK_OK(asyncrt_task_join(task, &join));
  CHECK_INT(join.vtable->output_size, ASYNCRT_OUTPUT_MAX);
  memset(out, 0xee, sizeof out);
  CHECK_OK(asyncrt_block_on(ex, &join, out, TF_TIMEOUT_NS));
  for (i = 0; i < ASYNCRT_OUTPUT_MAX; i++) {
    CHECK_INT(out[i], (unsigned char)(i * 7 + 3));
  }
  for (; i < sizeof out; i++) {
    CHECK_INT(out[i], 0xee); /* nothing written past output_size */
  }
  /* block_on of the future itself, too */
  memset(out, 0, sizeof out);
  CHECK_OK(asyncrt_block_on(ex, &f, out, TF_TIMEOUT_NS));
  CHECK_INT(out[ASYNCRT_OUTPUT_MAX - 1], (unsigned char)((ASYNCRT_OUTPUT_MAX - 1) * 7 + 3));
  CHECK_OK(asyncrt_task_release(task));
  CHECK_OK(asyncrt_executor_free(ex));
}

static void test_block_on_outputs(void) {
  asyncrt_executor *ex = tf_executor();
  tf_state st;
  asyncrt_future f;
  uint64_t out = 0;
  CHECK(ex != NULL);
  tf_init(&st);
  st.value = 42;
  f = tf_future(&st);
  CHECK_OK(asyncrt_block_on(ex, &f, &out, TF_TIMEOUT_NS));
  CHECK_INT(out, 42);
  CHECK_INT(tf_get(&st.polls), 1);
  CHECK_INT(tf_get(&st.drops), 1); /* dropped by the time block_on returns */

  tf_init(&st);
  st.pendings = 5;
  st.value = 43;
  f = tf_future(&st);
  CHECK_OK(asyncrt_block_on(ex, &f, &out, ASYNCRT_NO_TIMEOUT));
  CHECK_INT(out, 43);
  CHECK_INT(tf_get(&st.polls), 6);
  CHECK_INT(tf_get(&st.drops), 1);

  tf_init(&st);
  st.pendings = 2;
  f = tf_future_void(&st);
  CHECK_OK(asyncrt_block_on(ex, &f, NULL, TF_TIMEOUT_NS));
  CHECK_INT(tf_get(&st.polls), 3);
  CHECK_INT(tf_get(&st.drops), 1);
  CHECK_INT(tf_get(&st.bad_polls), 0);
  CHECK_OK(asyncrt_executor_free(ex));
}

/* A task on executor B awaits a task on executor A. */
static void test_join_across_executors(void) {
  asyncrt_executor *a = tf_executor(), *b = tf_executor();
  tf_state producer;
  tf_joiner joiner;
  asyncrt_future f, join, jf;
  asyncrt_task *pt = NULL, *jt = NULL;
  uint64_t polls = 99, out = 0;
  CHECK(a != NULL && b != NULL);
  tf_init(&producer);
  producer.park = 1;
  producer.pendings = 1;
  producer.value = 77;
  f = tf_future(&producer);
  CHECK_OK(asyncrt_spawn(a, &f, 0, &pt));
  CHECK_OK(asyncrt_task_join(pt, &join));
  CHECK_OK(asyncrt_task_release(pt)); /* the join holds its own reference */
  tf_joiner_init(&joiner, &join, 1);
  jf = tf_joiner_future(&joiner);
  CHECK_OK(asyncrt_spawn(b, &jf, 0, &jt));

  CHECK_OK(asyncrt_run(b, &polls));
  CHECK_INT(polls, 1); /* the joiner waits */
  CHECK_OK(asyncrt_run(a, &polls));
  CHECK_INT(polls, 1); /* the producer parks */
  CHECK(tf_get(&producer.parked_flag));
  asyncrt_waker_wake(&producer.parked);
  CHECK_OK(asyncrt_run(b, &polls));
  CHECK_INT(polls, 0); /* nothing for B yet */
  CHECK_OK(asyncrt_run(a, &polls));
  CHECK_INT(polls, 1); /* the producer completes and wakes B's joiner */
  CHECK_STATUS(asyncrt_task_status(jt), ASYNCRT_EAGAIN);
  CHECK_OK(asyncrt_run(b, &polls));
  CHECK_INT(polls, 1);
  CHECK_OK(asyncrt_task_status(jt));
  CHECK_INT(joiner.child_result, ASYNCRT_POLL_READY);
  CHECK_INT(joiner.got, 77);
  CHECK_INT(joiner.drops, 1);
  CHECK_INT(tf_get(&producer.drops), 1);
  /* the joiner task's own output is the producer's */
  CHECK_OK(asyncrt_task_join(jt, &join));
  CHECK_OK(asyncrt_block_on(b, &join, &out, TF_TIMEOUT_NS));
  CHECK_INT(out, 77);
  CHECK_OK(asyncrt_task_release(jt));
  CHECK_OK(asyncrt_executor_free(a));
  CHECK_OK(asyncrt_executor_free(b));
}

static void test_failure_reaches_block_on_and_joiner(void) {
  asyncrt_executor *ex = tf_executor();
  tf_state st, st2, st3;
  tf_joiner joiner;
  asyncrt_future f, join, jf;
  asyncrt_task *t = NULL, *t2 = NULL, *t3 = NULL, *jt = NULL;
  uint64_t out = 0;
  CHECK(ex != NULL);

  /* block_on returns the status the future named */
  tf_init(&st);
  st.pendings = 1;
  st.fail = 1001;
  f = tf_future(&st);
  CHECK_STATUS(asyncrt_block_on(ex, &f, &out, TF_TIMEOUT_NS), 1001);
  CHECK_INT(tf_get(&st.drops), 1);
  tf_init(&st);
  st.fail = ASYNCRT_ECANCELLED; /* any status may be named */
  f = tf_future(&st);
  CHECK_STATUS(asyncrt_block_on(ex, &f, &out, TF_TIMEOUT_NS), ASYNCRT_ECANCELLED);
  /* or EFAILED when it named none */
  tf_init(&st);
  st.fail = TF_FAIL_UNNAMED;
  f = tf_future(&st);
  CHECK_STATUS(asyncrt_block_on(ex, &f, &out, TF_TIMEOUT_NS), ASYNCRT_EFAILED);
  CHECK_INT(tf_get(&st.drops), 1);

  /* a joiner on another task sees the task's failure */
  tf_init(&st);
  st.pendings = 2;
  st.fail = 1002;
  f = tf_future(&st);
  CHECK_OK(asyncrt_spawn(ex, &f, 0, &t));
  CHECK_OK(asyncrt_task_join(t, &join));
  tf_joiner_init(&joiner, &join, 0);
  jf = tf_joiner_future(&joiner);
  CHECK_OK(asyncrt_spawn(ex, &jf, 0, &jt));
  CHECK_OK(asyncrt_run(ex, NULL));
  CHECK_STATUS(asyncrt_task_status(t), 1002);
  CHECK_OK(asyncrt_task_status(jt));
  CHECK_INT(joiner.child_result, ASYNCRT_POLL_ERROR);
  CHECK_STATUS(joiner.child_failure, 1002);
  CHECK_INT(tf_get(&st.drops), 1);

  /* block_on of a failed task's join returns the failure */
  tf_init(&st2);
  st2.fail = TF_FAIL_UNNAMED;
  f = tf_future(&st2);
  CHECK_OK(asyncrt_spawn(ex, &f, 0, &t2));
  CHECK_OK(asyncrt_run(ex, NULL));
  CHECK_STATUS(asyncrt_task_status(t2), ASYNCRT_EFAILED);
  CHECK_OK(asyncrt_task_join(t2, &join));
  CHECK_STATUS(asyncrt_block_on(ex, &join, &out, TF_TIMEOUT_NS), ASYNCRT_EFAILED);

  /* a failure named by a child polled with the task's own context passes
   * through a parent that returns ASYNCRT_POLL_ERROR without naming one */
  tf_init(&st3);
  st3.pendings = 1;
  st3.fail = 1003;
  f = tf_future(&st3);
  CHECK_OK(asyncrt_spawn(ex, &f, 0, &t3));
  CHECK_OK(asyncrt_task_join(t3, &join));
  tf_joiner_init(&joiner, &join, 1);
  jf = tf_joiner_future(&joiner);
  CHECK_STATUS(asyncrt_block_on(ex, &jf, &out, TF_TIMEOUT_NS), 1003);
  CHECK_INT(joiner.child_result, ASYNCRT_POLL_ERROR);
  CHECK_INT(joiner.drops, 1);

  CHECK_OK(asyncrt_task_release(t));
  CHECK_OK(asyncrt_task_release(t2));
  CHECK_OK(asyncrt_task_release(t3));
  CHECK_OK(asyncrt_task_release(jt));
  CHECK_OK(asyncrt_executor_free(ex));
}

static void test_self_wake_loop(void) {
  asyncrt_executor *ex = tf_executor();
  tf_state st;
  asyncrt_future f;
  asyncrt_task *task = NULL;
  uint64_t polls = 0;
  CHECK(ex != NULL);
  tf_init(&st);
  st.pendings = 1000;
  f = tf_future(&st);
  CHECK_OK(asyncrt_spawn(ex, &f, 0, &task));
  CHECK_OK(asyncrt_run(ex, &polls));
  CHECK_INT(polls, 1001);
  CHECK_INT(tf_get(&st.polls), 1001);
  CHECK_INT(tf_get(&st.drops), 1);
  CHECK_OK(asyncrt_task_status(task));
  CHECK_INT(tf_stats(ex).polls, 1001);
  CHECK_OK(asyncrt_task_release(task));
  CHECK_OK(asyncrt_executor_free(ex));
}

/* B wakes A's parked waker from inside its own poll. */
static int wake_other_hook(tf_state *st, asyncrt_context *cx, void *out) {
  tf_state *other = st->hook_data;
  asyncrt_waker clone;
  (void)out;
  if (!tf_get(&other->parked_flag)) { /* A not polled yet: try again later */
    asyncrt_waker_wake_by_ref(asyncrt_context_waker(cx));
    return ASYNCRT_POLL_PENDING;
  }
  asyncrt_waker_clone(&other->parked, &clone);
  asyncrt_waker_wake(&clone);
  return TF_CONTINUE;
}

static void test_wake_one_task_from_another(void) {
  asyncrt_executor *ex = tf_executor();
  tf_state a, b;
  asyncrt_future fa, fb;
  asyncrt_task *ta = NULL, *tb = NULL;
  CHECK(ex != NULL);
  tf_init(&a);
  a.park = 1;
  a.pendings = 1;
  tf_init(&b);
  b.hook = wake_other_hook;
  b.hook_data = &a;
  fa = tf_future(&a);
  fb = tf_future(&b);
  CHECK_OK(asyncrt_spawn(ex, &fa, 0, &ta));
  CHECK_OK(asyncrt_spawn(ex, &fb, 0, &tb));
  CHECK_OK(asyncrt_run(ex, NULL));
  CHECK_INT(tf_get(&a.polls), 2);
  CHECK_OK(asyncrt_task_status(ta));
  CHECK_OK(asyncrt_task_status(tb));
  CHECK_INT(tf_get(&a.drops), 1);
  CHECK_INT(tf_get(&b.drops), 1);
  CHECK_OK(asyncrt_task_release(ta));
  CHECK_OK(asyncrt_task_release(tb));
  CHECK_OK(asyncrt_executor_free(ex));
}

static void test_yielded_top_level(void) {
  asyncrt_executor *ex = tf_executor();
  tf_state st;
  asyncrt_future f, join;
  asyncrt_task *task = NULL;
  uint64_t polls = 0, out = 0;
  CHECK(ex != NULL);
  tf_init(&st);
  st.yields = 3;
  st.value = 9;
  f = tf_future(&st);
  CHECK_OK(asyncrt_spawn(ex, &f, 0, &task));
  CHECK_OK(asyncrt_task_join(task, &join));
  CHECK_OK(asyncrt_run(ex, &polls));
  CHECK_INT(polls, 4); /* each yield is polled again at once */
  CHECK_OK(asyncrt_task_status(task));
  CHECK_OK(asyncrt_block_on(ex, &join, &out, TF_TIMEOUT_NS));
  CHECK_INT(out, 9); /* the output, not an item */

  tf_init(&st);
  st.yields = 2;
  st.pendings = 2;
  st.value = 10;
  f = tf_future(&st);
  CHECK_OK(asyncrt_block_on(ex, &f, &out, TF_TIMEOUT_NS));
  CHECK_INT(out, 10);
  CHECK_INT(tf_get(&st.polls), 5);
  CHECK_INT(tf_get(&st.drops), 1);
  CHECK_OK(asyncrt_task_release(task));
  CHECK_OK(asyncrt_executor_free(ex));
}

static void test_run_until_idle(void) {
  asyncrt_executor *ex = tf_executor();
  tf_state st[5], parked;
  asyncrt_future f;
  asyncrt_task *parked_task = NULL;
  asyncrt_executor_stats s;
  uint64_t polls = 99;
  int i;
  CHECK(ex != NULL);
  CHECK_OK(asyncrt_run(ex, &polls));
  CHECK_INT(polls, 0);
  for (i = 0; i < 5; i++) {
    tf_init(&st[i]);
    st[i].pendings = 2;
    f = tf_future(&st[i]);
    CHECK_OK(asyncrt_spawn(ex, &f, 0, NULL)); /* detached */
  }
  tf_init(&parked);
  parked.park = 1;
  parked.pendings = 1;
  f = tf_future(&parked);
  CHECK_OK(asyncrt_spawn(ex, &f, 0, &parked_task));
  s = tf_stats(ex);
  CHECK_INT(s.tasks_spawned, 6);
  CHECK_INT(s.tasks_live, 6);
  CHECK_OK(asyncrt_run(ex, &polls));
  CHECK_INT(polls, 16);
  for (i = 0; i < 5; i++) {
    CHECK_INT(tf_get(&st[i].polls), 3);
    CHECK_INT(tf_get(&st[i].drops), 1);
  }
  s = tf_stats(ex);
  CHECK_INT(s.tasks_spawned, 6);
  CHECK_INT(s.tasks_live, 1);
  CHECK_INT(s.polls, 16);
  CHECK_STATUS(asyncrt_task_status(parked_task), ASYNCRT_EAGAIN);
  CHECK_OK(asyncrt_run(ex, &polls));
  CHECK_INT(polls, 0); /* nothing runnable: returns, never sleeps */
  asyncrt_waker_wake_by_ref(&parked.parked);
  CHECK_OK(asyncrt_run(ex, &polls));
  CHECK_INT(polls, 1);
  CHECK_OK(asyncrt_task_status(parked_task));
  s = tf_stats(ex);
  CHECK_INT(s.tasks_live, 0);
  CHECK_INT(s.polls, 17);
  CHECK_OK(asyncrt_run(ex, NULL)); /* polls may be NULL */
  CHECK_OK(asyncrt_task_release(parked_task));
  CHECK_OK(asyncrt_executor_free(ex));
}

static void test_run_step_bounded_by_polls(void) {
  asyncrt_executor *ex = tf_executor();
  tf_state st[3];
  asyncrt_future f;
  uint64_t polls = 99;
  int i;
  CHECK(ex != NULL);
  for (i = 0; i < 3; i++) {
    tf_init(&st[i]);
    st[i].pendings = 9; /* 10 polls each */
    f = tf_future(&st[i]);
    CHECK_OK(asyncrt_spawn(ex, &f, 0, NULL));
  }
  CHECK_OK(asyncrt_run_step(ex, 0, 0, &polls));
  CHECK_INT(polls, 0);
  CHECK_OK(asyncrt_run_step(ex, 7, 0, &polls));
  CHECK_INT(polls, 7);
  CHECK_INT(tf_stats(ex).polls, 7);
  CHECK_OK(asyncrt_run_step(ex, 1, 0, &polls));
  CHECK_INT(polls, 1);
  CHECK_OK(asyncrt_run_step(ex, 7, 0, &polls));
  CHECK_INT(polls, 7);
  CHECK_OK(asyncrt_run_step(ex, 100, 0, &polls));
  CHECK_INT(polls, 15);
  CHECK_OK(asyncrt_run_step(ex, 100, 0, &polls));
  CHECK_INT(polls, 0);
  CHECK_INT(tf_stats(ex).polls, 30);
  CHECK_INT(tf_stats(ex).tasks_live, 0);
  for (i = 0; i < 3; i++) {
    CHECK_INT(tf_get(&st[i].polls), 10);
    CHECK_INT(tf_get(&st[i].drops), 1);
  }
  CHECK_OK(asyncrt_executor_free(ex));
}

static void test_run_step_bounded_by_time(void) {
  enum { PENDINGS = 200000 };
  asyncrt_executor *ex = tf_executor();
  tf_state st[2];
  asyncrt_future f;
  uint64_t polls = 0, total = 0;
  int64_t longest = 0;
  int i, steps = 0;
  CHECK(ex != NULL);
  for (i = 0; i < 2; i++) {
    tf_init(&st[i]);
    st[i].pendings = PENDINGS;
    f = tf_future_void(&st[i]);
    CHECK_OK(asyncrt_spawn(ex, &f, 0, NULL));
  }
  while (total < 2 * (PENDINGS + 1) && steps < 1000000) {
    int64_t t0 = tf_now_ns(), took;
    CHECK_OK(asyncrt_run_step(ex, 0xffffffffu, 2 * TF_MS_NS, &polls));
    took = tf_now_ns() - t0;
    if (took > longest) {
      longest = took;
    }
    total += polls;
    steps++;
    if (steps == 1) {
      CHECK(polls < 2 * (PENDINGS + 1)); /* the time bound stopped it */
    }
  }
  CHECK_INT(total, 2 * (PENDINGS + 1));
  CHECK(steps > 1);
  if (longest > 500 * TF_MS_NS) {
    check_fail_at(__FILE__, __LINE__);
    fprintf(stderr, "a 2 ms run_step took %lld ns\n", (long long)longest);
    return;
  }
  CHECK_OK(asyncrt_executor_free(ex));
}

static void test_task_status_transitions(void) {
  asyncrt_executor *ex = tf_executor();
  tf_state st;
  asyncrt_future f;
  asyncrt_task *task = NULL;
  CHECK(ex != NULL);
  tf_init(&st);
  st.park = 1;
  st.pendings = 2;
  f = tf_future(&st);
  CHECK_OK(asyncrt_spawn(ex, &f, 0, &task));
  CHECK_STATUS(asyncrt_task_status(task), ASYNCRT_EAGAIN);
  CHECK_OK(asyncrt_run(ex, NULL));
  CHECK_STATUS(asyncrt_task_status(task), ASYNCRT_EAGAIN);
  asyncrt_waker_wake_by_ref(&st.parked);
  CHECK_STATUS(asyncrt_task_status(task), ASYNCRT_EAGAIN);
  CHECK_OK(asyncrt_run(ex, NULL));
  CHECK_STATUS(asyncrt_task_status(task), ASYNCRT_EAGAIN);
  asyncrt_waker_wake_by_ref(&st.parked);
  CHECK_OK(asyncrt_run(ex, NULL));
  CHECK_OK(asyncrt_task_status(task));
  CHECK_OK(asyncrt_task_status(task)); /* stays */
  CHECK_INT(tf_get(&st.polls), 3);
  CHECK_OK(asyncrt_task_release(task));
  CHECK_STATUS(asyncrt_task_status(task), ASYNCRT_EHANDLE);
  CHECK_OK(asyncrt_executor_free(ex));
}

static void test_task_ids_unique_and_nonzero(void) {
  enum { N = 200 };
  asyncrt_executor *ex = tf_executor();
  static tf_state st[N];
  asyncrt_task *tasks[N];
  uint64_t ids[N], again = 0;
  asyncrt_future f;
  int i, j;
  CHECK(ex != NULL);
  for (i = 0; i < N; i++) {
    tf_init(&st[i]);
    f = tf_future(&st[i]);
    CHECK_OK(asyncrt_spawn(ex, &f, 0, &tasks[i]));
    CHECK_OK(asyncrt_task_id(tasks[i], &ids[i]));
    CHECK(ids[i] != 0);
    for (j = 0; j < i; j++) {
      CHECK(ids[i] != ids[j]);
    }
    if (i % 2 == 0) { /* run some to completion and release them: ids are not reused */
      CHECK_OK(asyncrt_run(ex, NULL));
      CHECK_OK(asyncrt_task_id(tasks[i], &again));
      CHECK_INT(again, ids[i]);
      CHECK_OK(asyncrt_task_release(tasks[i]));
    }
  }
  for (i = 1; i < N; i += 2) {
    CHECK_OK(asyncrt_task_id(tasks[i], &again));
    CHECK_INT(again, ids[i]);
    CHECK_OK(asyncrt_task_release(tasks[i]));
  }
  CHECK_OK(asyncrt_executor_free(ex));
}

/* Spawns a sibling through the executor in the context. */
static int spawn_sibling_hook(tf_state *st, asyncrt_context *cx, void *out) {
  tf_state *sibling = st->hook_data;
  asyncrt_future f = tf_future(sibling);
  (void)out;
  if (asyncrt_context_executor(cx) == NULL ||
      asyncrt_spawn(asyncrt_context_executor(cx), &f, 0, NULL) != ASYNCRT_OK) {
    asyncrt_context_fail(cx, 1100);
    return ASYNCRT_POLL_ERROR;
  }
  return TF_CONTINUE;
}

static void test_spawn_from_inside_a_poll(void) {
  asyncrt_executor *ex = tf_executor();
  tf_state parent, sibling;
  asyncrt_future f;
  uint64_t polls = 0, out = 0;
  CHECK(ex != NULL);
  tf_init(&parent);
  tf_init(&sibling);
  parent.hook = spawn_sibling_hook;
  parent.hook_data = &sibling;
  parent.value = 5;
  f = tf_future(&parent);
  CHECK_OK(asyncrt_spawn(ex, &f, 0, NULL));
  CHECK_OK(asyncrt_run(ex, &polls));
  CHECK_INT(polls, 2);
  CHECK_INT(tf_get(&parent.drops), 1);
  CHECK_INT(tf_get(&sibling.polls), 1);
  CHECK_INT(tf_get(&sibling.drops), 1);
  CHECK(sibling.executor == ex);
  /* from a block_on'd future too */
  tf_init(&parent);
  tf_init(&sibling);
  parent.hook = spawn_sibling_hook;
  parent.hook_data = &sibling;
  parent.value = 6;
  f = tf_future(&parent);
  CHECK_OK(asyncrt_block_on(ex, &f, &out, TF_TIMEOUT_NS));
  CHECK_INT(out, 6);
  CHECK(parent.executor == ex);
  CHECK_OK(asyncrt_run(ex, &polls));
  CHECK_INT(tf_get(&sibling.drops), 1);
  CHECK_OK(asyncrt_executor_free(ex));
}

typedef struct spawner_args {
  asyncrt_executor *ex;
  tf_state *st;
  int status;
} spawner_args;

static void *spawn_from_thread(void *arg) {
  spawner_args *a = arg;
  asyncrt_future f = tf_future(a->st);
  a->status = asyncrt_spawn(a->ex, &f, 0, NULL);
  return NULL;
}

static void test_spawn_from_another_thread(void) {
  asyncrt_executor *ex = tf_executor();
  tf_state st;
  spawner_args args;
  pthread_t th;
  uint64_t polls = 0;
  CHECK(ex != NULL);
  tf_init(&st);
  st.pendings = 1;
  args.ex = ex;
  args.st = &st;
  args.status = -1;
  CHECK_INT(pthread_create(&th, NULL, spawn_from_thread, &args), 0);
  CHECK_INT(pthread_join(th, NULL), 0);
  CHECK_OK(args.status);
  CHECK_INT(tf_get(&st.polls), 0);
  CHECK_OK(asyncrt_run(ex, &polls));
  CHECK_INT(polls, 2);
  CHECK(pthread_equal(st.poll_thread, pthread_self()));
  CHECK(pthread_equal(st.drop_thread, pthread_self()));
  CHECK_INT(tf_get(&st.drops), 1);
  CHECK_OK(asyncrt_executor_free(ex));
}

static void test_detached_task_runs_to_completion(void) {
  asyncrt_executor *ex = tf_executor();
  tf_state st;
  asyncrt_future f;
  CHECK(ex != NULL);
  tf_init(&st);
  st.pendings = 3;
  f = tf_future(&st);
  CHECK_OK(asyncrt_spawn(ex, &f, 0, NULL));
  CHECK_OK(asyncrt_run(ex, NULL));
  CHECK_INT(tf_get(&st.polls), 4);
  CHECK_INT(tf_get(&st.drops), 1);
  CHECK_INT(tf_stats(ex).tasks_live, 0);
  CHECK_INT(tf_stats(ex).tasks_spawned, 1);
  CHECK_OK(asyncrt_executor_free(ex));
  CHECK_INT(tf_get(&st.drops), 1);
}

int main(void) {
  CHECK_BEGIN();
  RUN(test_spawn_join_block_on);
  RUN(test_join_carries_every_output_byte);
  RUN(test_block_on_outputs);
  RUN(test_join_across_executors);
  RUN(test_failure_reaches_block_on_and_joiner);
  RUN(test_self_wake_loop);
  RUN(test_wake_one_task_from_another);
  RUN(test_yielded_top_level);
  RUN(test_run_until_idle);
  RUN(test_run_step_bounded_by_polls);
  RUN(test_run_step_bounded_by_time);
  RUN(test_task_status_transitions);
  RUN(test_task_ids_unique_and_nonzero);
  RUN(test_spawn_from_inside_a_poll);
  RUN(test_spawn_from_another_thread);
  RUN(test_detached_task_runs_to_completion);
  return CHECK_END("tasks");
}
