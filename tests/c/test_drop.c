/* Every future handed to asyncrt is dropped exactly once, whatever happens. */
#include "check.h"
#include "testfut.h"

static void test_dropped_once_on_completion(void) {
  asyncrt_executor *ex = tf_executor();
  tf_state st;
  asyncrt_future f;
  asyncrt_task *task = NULL;
  CHECK(ex != NULL);
  tf_init(&st);
  st.pendings = 2;
  f = tf_future(&st);
  CHECK_OK(asyncrt_spawn(ex, &f, 0, &task));
  CHECK_INT(tf_get(&st.drops), 0);
  CHECK_OK(asyncrt_run(ex, NULL));
  /* dropped at completion, while the handle is still held */
  CHECK_INT(tf_get(&st.drops), 1);
  CHECK(pthread_equal(st.drop_thread, pthread_self()));
  CHECK_OK(asyncrt_task_release(task));
  CHECK_OK(asyncrt_run(ex, NULL));
  CHECK_OK(asyncrt_executor_free(ex));
  CHECK_INT(tf_get(&st.drops), 1);
  CHECK_INT(tf_get(&st.bad_polls), 0);
}

static void test_dropped_once_on_failure(void) {
  asyncrt_executor *ex = tf_executor();
  tf_state st;
  asyncrt_future f;
  asyncrt_task *task = NULL;
  CHECK(ex != NULL);
  tf_init(&st);
  st.pendings = 1;
  st.fail = 1001;
  f = tf_future(&st);
  CHECK_OK(asyncrt_spawn(ex, &f, 0, &task));
  CHECK_OK(asyncrt_run(ex, NULL));
  CHECK_INT(tf_get(&st.polls), 2);
  CHECK_INT(tf_get(&st.drops), 1);
  CHECK_STATUS(asyncrt_task_status(task), 1001);
  CHECK_OK(asyncrt_task_release(task));
  CHECK_OK(asyncrt_executor_free(ex));
  CHECK_INT(tf_get(&st.drops), 1);
  CHECK_INT(tf_get(&st.bad_polls), 0);
}

static void test_cancel_before_first_poll(void) {
  asyncrt_executor *ex = tf_executor(), *other = tf_executor();
  tf_state st;
  asyncrt_future f, join;
  asyncrt_task *task = NULL;
  uint64_t out = 0;
  CHECK(ex != NULL && other != NULL);
  tf_init(&st);
  f = tf_future(&st);
  CHECK_OK(asyncrt_spawn(ex, &f, 0, &task));
  CHECK_OK(asyncrt_task_join(task, &join));
  CHECK_OK(asyncrt_task_cancel(task));
  CHECK_OK(asyncrt_run(ex, NULL));
  CHECK_INT(tf_get(&st.polls), 0);
  CHECK_INT(tf_get(&st.drops), 1);
  CHECK_STATUS(asyncrt_task_status(task), ASYNCRT_ECANCELLED);
  CHECK_STATUS(asyncrt_block_on(other, &join, &out, TF_TIMEOUT_NS), ASYNCRT_ECANCELLED);
  CHECK_OK(asyncrt_task_cancel(task)); /* again: nothing happens */
  CHECK_OK(asyncrt_run(ex, NULL));
  CHECK_INT(tf_get(&st.drops), 1);
  CHECK_OK(asyncrt_task_release(task));
  CHECK_OK(asyncrt_executor_free(ex));
  CHECK_OK(asyncrt_executor_free(other));
  CHECK_INT(tf_get(&st.drops), 1);
}

static void *cancel_on_thread(void *task) {
  return (void *)(intptr_t)asyncrt_task_cancel(task);
}

/* A cancel from another thread drops the future on the driver's thread,
 * when the executor next runs. */
static void test_cancel_from_another_thread_drops_on_driver(void) {
  asyncrt_executor *ex = tf_executor();
  tf_state st;
  asyncrt_future f;
  asyncrt_task *task = NULL;
  pthread_t th;
  void *rc = NULL;
  CHECK(ex != NULL);
  tf_init(&st);
  st.park = 1;
  st.pendings = 1;
  f = tf_future(&st);
  CHECK_OK(asyncrt_spawn(ex, &f, 0, &task));
  CHECK_OK(asyncrt_run(ex, NULL));
  CHECK_INT(pthread_create(&th, NULL, cancel_on_thread, task), 0);
  CHECK_INT(pthread_join(th, &rc), 0);
  CHECK_OK((int)(intptr_t)rc);
  CHECK_INT(tf_get(&st.drops), 0); /* not on the cancelling thread */
  CHECK_OK(asyncrt_run(ex, NULL));
  CHECK_INT(tf_get(&st.drops), 1);
  CHECK(pthread_equal(st.drop_thread, pthread_self()));
  CHECK_INT(tf_get(&st.polls), 1);
  CHECK_STATUS(asyncrt_task_status(task), ASYNCRT_ECANCELLED);
  CHECK_OK(asyncrt_task_release(task));
  CHECK_OK(asyncrt_executor_free(ex));
  CHECK_INT(tf_get(&st.drops), 1);
}

static void test_cancel_while_pending(void) {
  asyncrt_executor *ex = tf_executor();
  tf_state parked, runnable;
  asyncrt_future f;
  asyncrt_task *pt = NULL, *rt = NULL;
  uint64_t polls = 0;
  CHECK(ex != NULL);
  tf_init(&parked);
  parked.park = 1;
  parked.pendings = 5;
  f = tf_future(&parked);
  CHECK_OK(asyncrt_spawn(ex, &f, 0, &pt));
  CHECK_OK(asyncrt_run(ex, NULL));
  CHECK_INT(tf_get(&parked.polls), 1);
  CHECK_OK(asyncrt_task_cancel(pt));
  CHECK_OK(asyncrt_run(ex, NULL));
  CHECK_INT(tf_get(&parked.polls), 1);
  CHECK_INT(tf_get(&parked.drops), 1);
  CHECK_STATUS(asyncrt_task_status(pt), ASYNCRT_ECANCELLED);

  /* a task that woke itself and waits in the run queue */
  tf_init(&runnable);
  runnable.pendings = 100;
  f = tf_future(&runnable);
  CHECK_OK(asyncrt_spawn(ex, &f, 0, &rt));
  CHECK_OK(asyncrt_run_step(ex, 1, 0, &polls));
  CHECK_INT(polls, 1);
  CHECK_OK(asyncrt_task_cancel(rt));
  CHECK_OK(asyncrt_run(ex, &polls));
  CHECK_INT(polls, 0);
  CHECK_INT(tf_get(&runnable.polls), 1);
  CHECK_INT(tf_get(&runnable.drops), 1);
  CHECK_STATUS(asyncrt_task_status(rt), ASYNCRT_ECANCELLED);
  /* a late wake of a cancelled task does nothing */
  asyncrt_waker_wake_by_ref(&parked.parked);
  CHECK_OK(asyncrt_run(ex, &polls));
  CHECK_INT(polls, 0);
  CHECK_OK(asyncrt_task_release(pt));
  CHECK_OK(asyncrt_task_release(rt));
  CHECK_OK(asyncrt_executor_free(ex));
  CHECK_INT(tf_get(&parked.drops), 1);
  CHECK_INT(tf_get(&runnable.drops), 1);
  CHECK_INT(tf_get(&parked.bad_polls) + tf_get(&runnable.bad_polls), 0);
}

/* hook_data: the future's own task handle (asyncrt_task **). st->value says
 * what the poll returns after cancelling: 0 pending and woken, 1 pending and
 * parked, 2 ready. */
static int cancel_self_hook(tf_state *st, asyncrt_context *cx, void *out) {
  asyncrt_task *self_task = *(asyncrt_task **)st->hook_data;
  uint64_t v = 31;
  if (asyncrt_task_cancel(self_task) != ASYNCRT_OK) {
    asyncrt_context_fail(cx, 1200);
    return ASYNCRT_POLL_ERROR;
  }
  if (tf_get(&st->drops) != 0) { /* not dropped under our feet */
    asyncrt_context_fail(cx, 1201);
    return ASYNCRT_POLL_ERROR;
  }
  switch (st->value) {
  case 0:
    asyncrt_waker_wake_by_ref(asyncrt_context_waker(cx));
    return ASYNCRT_POLL_PENDING;
  case 1:
    return ASYNCRT_POLL_PENDING;
  default:
    memcpy(out, &v, sizeof v);
    return ASYNCRT_POLL_READY;
  }
}

static void test_cancel_from_inside_own_poll(void) {
  asyncrt_executor *ex = tf_executor();
  tf_state st;
  asyncrt_future f, join;
  asyncrt_task *task = NULL;
  uint64_t out = 0;
  int mode;
  CHECK(ex != NULL);
  for (mode = 0; mode < 3; mode++) {
    tf_init(&st);
    st.hook = cancel_self_hook;
    st.hook_data = &task;
    st.value = (uint64_t)mode;
    f = tf_future(&st);
    CHECK_OK(asyncrt_spawn(ex, &f, 0, &task));
    CHECK_OK(asyncrt_task_join(task, &join));
    CHECK_OK(asyncrt_run(ex, NULL));
    CHECK_INT(tf_get(&st.polls), 1);
    CHECK_INT(tf_get(&st.drops), 1);
    if (mode < 2) {
      CHECK_STATUS(asyncrt_task_status(task), ASYNCRT_ECANCELLED);
      CHECK_STATUS(asyncrt_block_on(ex, &join, &out, TF_TIMEOUT_NS), ASYNCRT_ECANCELLED);
    } else { /* the poll completed the task: the cancel came too late */
      CHECK_OK(asyncrt_task_status(task));
      CHECK_OK(asyncrt_block_on(ex, &join, &out, TF_TIMEOUT_NS));
      CHECK_INT(out, 31);
    }
    CHECK_OK(asyncrt_task_release(task));
  }
  CHECK_OK(asyncrt_executor_free(ex));
  CHECK_INT(tf_get(&st.drops), 1);
}

static void test_cancel_after_completion_is_a_no_op(void) {
  asyncrt_executor *ex = tf_executor();
  tf_state ok, failed;
  asyncrt_future f, join;
  asyncrt_task *t_ok = NULL, *t_failed = NULL;
  uint64_t out = 0;
  CHECK(ex != NULL);
  tf_init(&ok);
  ok.value = 8;
  f = tf_future(&ok);
  CHECK_OK(asyncrt_spawn(ex, &f, 0, &t_ok));
  tf_init(&failed);
  failed.fail = 1003;
  f = tf_future(&failed);
  CHECK_OK(asyncrt_spawn(ex, &f, 0, &t_failed));
  CHECK_OK(asyncrt_run(ex, NULL));
  CHECK_OK(asyncrt_task_cancel(t_ok));
  CHECK_OK(asyncrt_task_cancel(t_failed));
  CHECK_OK(asyncrt_run(ex, NULL));
  CHECK_OK(asyncrt_task_status(t_ok));
  CHECK_STATUS(asyncrt_task_status(t_failed), 1003);
  CHECK_OK(asyncrt_task_join(t_ok, &join));
  CHECK_OK(asyncrt_block_on(ex, &join, &out, TF_TIMEOUT_NS));
  CHECK_INT(out, 8);
  CHECK_INT(tf_get(&ok.drops), 1);
  CHECK_INT(tf_get(&failed.drops), 1);
  CHECK_OK(asyncrt_task_release(t_ok));
  CHECK_OK(asyncrt_task_release(t_failed));
  CHECK_OK(asyncrt_executor_free(ex));
  CHECK_INT(tf_get(&ok.drops), 1);
  CHECK_INT(tf_get(&failed.drops), 1);
}

static void test_executor_free_drops_pending_tasks(void) {
  enum { QUEUED, PARKED, RUNNABLE, DETACHED, DONE, FAILED, COUNT };
  asyncrt_executor *ex = tf_executor(), *other = tf_executor();
  tf_state st[COUNT];
  asyncrt_future f, joins[COUNT];
  asyncrt_task *tasks[COUNT];
  asyncrt_executor_stats stats;
  uint64_t polls = 0, out = 0;
  int i;
  CHECK(ex != NULL && other != NULL);
  for (i = 0; i < COUNT; i++) {
    tf_init(&st[i]);
  }
  st[PARKED].park = 1;
  st[PARKED].pendings = 1;
  st[RUNNABLE].park = 1;
  st[RUNNABLE].pendings = 2;
  st[DETACHED].park = 1;
  st[DETACHED].pendings = 1;
  st[FAILED].fail = 1004;
  for (i = 0; i < COUNT; i++) {
    if (i == QUEUED) {
      continue;
    }
    f = tf_future(&st[i]);
    CHECK_OK(asyncrt_spawn(ex, &f, 0, &tasks[i]));
    CHECK_OK(asyncrt_task_join(tasks[i], &joins[i]));
  }
  CHECK_OK(asyncrt_run(ex, &polls));
  CHECK_INT(polls, 5);
  asyncrt_waker_wake_by_ref(&st[RUNNABLE].parked); /* now in the run queue */
  f = tf_future(&st[QUEUED]);                       /* never polled */
  CHECK_OK(asyncrt_spawn(ex, &f, 0, &tasks[QUEUED]));
  CHECK_OK(asyncrt_task_join(tasks[QUEUED], &joins[QUEUED]));
  CHECK_OK(asyncrt_task_release(tasks[DETACHED]));
  CHECK_INT(tf_get(&st[QUEUED].polls), 0);
  CHECK_INT(tf_get(&st[PARKED].polls), 1);
  CHECK_INT(tf_get(&st[RUNNABLE].polls), 1);
  CHECK_INT(tf_get(&st[DONE].drops), 1);
  CHECK_INT(tf_get(&st[FAILED].drops), 1);

  CHECK_OK(asyncrt_executor_free(ex));
  for (i = 0; i < COUNT; i++) {
    CHECK_INT(tf_get(&st[i].drops), 1);
    CHECK(pthread_equal(st[i].drop_thread, pthread_self()));
    CHECK_INT(tf_get(&st[i].bad_polls), 0);
  }
  stats.size = sizeof stats;
  CHECK_STATUS(asyncrt_executor_stats_get(ex, &stats), ASYNCRT_EHANDLE);

  /* the handles outlive the executor and tell what happened */
  CHECK_STATUS(asyncrt_task_status(tasks[QUEUED]), ASYNCRT_ECANCELLED);
  CHECK_STATUS(asyncrt_task_status(tasks[PARKED]), ASYNCRT_ECANCELLED);
  CHECK_STATUS(asyncrt_task_status(tasks[RUNNABLE]), ASYNCRT_ECANCELLED);
  CHECK_OK(asyncrt_task_status(tasks[DONE]));
  CHECK_STATUS(asyncrt_task_status(tasks[FAILED]), 1004);
  /* and so do the joins, awaited on another executor */
  for (i = 0; i < COUNT; i++) {
    int want = i == DONE ? ASYNCRT_OK : i == FAILED ? 1004 : ASYNCRT_ECANCELLED;
    CHECK_STATUS(asyncrt_block_on(other, &joins[i], &out, TF_TIMEOUT_NS), want);
    if (i != DETACHED) {
      CHECK_OK(asyncrt_task_release(tasks[i]));
    }
  }
  CHECK_OK(asyncrt_executor_free(other));
  for (i = 0; i < COUNT; i++) {
    CHECK_INT(tf_get(&st[i].drops), 1);
  }
}

static const asyncrt_future_vtable too_big_vtable = {
    sizeof(asyncrt_future_vtable), ASYNCRT_OUTPUT_MAX + 1, NULL, NULL, NULL};

static void drop_counter(void *self) { tf_add(&((tf_state *)self)->drops, 1); }

static int never_poll(void *self, asyncrt_context *cx, void *out) {
  (void)cx;
  (void)out;
  tf_add(&((tf_state *)self)->polls, 1);
  return ASYNCRT_POLL_READY;
}

static const asyncrt_future_vtable too_big_with_poll_vtable = {
    sizeof(asyncrt_future_vtable), ASYNCRT_OUTPUT_MAX + 1, never_poll, drop_counter, NULL};
static const asyncrt_future_vtable no_poll_vtable = {sizeof(asyncrt_future_vtable), 0, NULL,
                                                     drop_counter, NULL};

/* spawn must fail with `want` and drop the future before returning. */
static void expect_spawn_drops(asyncrt_executor *ex, const asyncrt_future_vtable *vt,
                               unsigned flags, int want, int want_alt) {
  tf_state st;
  asyncrt_future f;
  asyncrt_task *task = (asyncrt_task *)0x1;
  int rc;
  tf_init(&st);
  f = vt ? (asyncrt_future){&st, vt} : tf_future(&st);
  rc = asyncrt_spawn(ex, &f, flags, &task);
  if (rc != want && rc == want_alt) {
    want = want_alt;
  }
  CHECK_STATUS(rc, want);
  CHECK_STATUS(asyncrt_last_status(), want);
  CHECK_INT(tf_get(&st.drops), 1);
  CHECK_INT(tf_get(&st.polls), 0);
}

static void *fail_every_alloc(size_t size, size_t align, void *user_data) {
  (void)size;
  (void)align;
  (void)user_data;
  return NULL;
}
static void never_free(void *ptr, size_t size, void *user_data) {
  (void)ptr;
  (void)size;
  (void)user_data;
}

static void test_failed_spawn_drops_at_once(void) {
  asyncrt_executor *ex = tf_executor(), *limited = NULL, *starved = NULL, *freed = NULL;
  asyncrt_executor_config cfg;
  asyncrt_allocator failing = {sizeof(asyncrt_allocator), fail_every_alloc, never_free, NULL};
  asyncrt_task *task = NULL;
  tf_state st;
  asyncrt_future f;
  CHECK(ex != NULL);
  expect_spawn_drops(ex, NULL, 2u, ASYNCRT_EINVAL, -1);                      /* unknown flag */
  expect_spawn_drops(ex, NULL, ASYNCRT_SPAWN_WORKER(1), ASYNCRT_EINVAL, -1); /* one worker only */
  expect_spawn_drops(ex, NULL, 0x80000000u, ASYNCRT_EINVAL, -1);
  expect_spawn_drops(ex, &too_big_with_poll_vtable, 0, ASYNCRT_EINVAL, -1);
  expect_spawn_drops(ex, &no_poll_vtable, 0, ASYNCRT_EINVAL, -1);
  expect_spawn_drops(NULL, NULL, 0, ASYNCRT_EINVAL, -1);
  expect_spawn_drops((asyncrt_executor *)0x12345, NULL, 0, ASYNCRT_EHANDLE, -1);

  asyncrt_executor_config_init(&cfg);
  cfg.memory_limit = 1; /* smaller than any task */
  CHECK_OK(asyncrt_executor_new(&cfg, &limited));
  expect_spawn_drops(limited, NULL, 0, ASYNCRT_ELIMIT, -1);

  asyncrt_executor_config_init(&cfg);
  cfg.allocator = &failing;
  CHECK_OK(asyncrt_executor_new(&cfg, &starved));
  expect_spawn_drops(starved, NULL, 0, ASYNCRT_ENOMEM, -1);

  /* the header calls a freed executor both EHANDLE and ESHUTDOWN */
  CHECK_OK(asyncrt_executor_new(NULL, &freed));
  CHECK_OK(asyncrt_executor_free(freed));
  expect_spawn_drops(freed, NULL, 0, ASYNCRT_EHANDLE, ASYNCRT_ESHUTDOWN);

  /* a task handle is not an executor */
  tf_init(&st);
  st.park = 1;
  st.pendings = 1;
  f = tf_future(&st);
  CHECK_OK(asyncrt_spawn(ex, &f, 0, &task));
  expect_spawn_drops((asyncrt_executor *)task, NULL, 0, ASYNCRT_EHANDLE, -1);
  CHECK_OK(asyncrt_task_release(task));
  /* no vtable at all: nothing to drop, but no crash either */
  f.self = &st;
  f.vtable = NULL;
  CHECK_STATUS(asyncrt_spawn(ex, &f, 0, NULL), ASYNCRT_EINVAL);
  f.vtable = &too_big_vtable; /* no poll and no drop */
  CHECK_STATUS(asyncrt_spawn(ex, &f, 0, NULL), ASYNCRT_EINVAL);
  CHECK_STATUS(asyncrt_spawn(ex, NULL, 0, NULL), ASYNCRT_EINVAL);

  CHECK_OK(asyncrt_executor_free(limited));
  CHECK_OK(asyncrt_executor_free(starved));
  CHECK_OK(asyncrt_executor_free(ex));
  CHECK_INT(tf_get(&st.drops), 1);
}

/* block_on takes ownership too: every failure drops the future. */
static void test_failed_block_on_drops_at_once(void) {
  asyncrt_executor *ex = tf_executor(), *freed = NULL;
  tf_state st;
  asyncrt_future f;
  uint64_t out = 0;
  CHECK(ex != NULL);
  CHECK_OK(asyncrt_executor_new(NULL, &freed));
  CHECK_OK(asyncrt_executor_free(freed));

  tf_init(&st);
  f = tf_future(&st);
  CHECK_STATUS(asyncrt_block_on(freed, &f, &out, TF_TIMEOUT_NS), ASYNCRT_EHANDLE);
  CHECK_INT(tf_get(&st.drops), 1);

  tf_init(&st);
  f = tf_future(&st);
  CHECK_STATUS(asyncrt_block_on(NULL, &f, &out, TF_TIMEOUT_NS), ASYNCRT_EINVAL);
  CHECK_INT(tf_get(&st.drops), 1);

  tf_init(&st);
  f = tf_future(&st);
  CHECK_STATUS(asyncrt_block_on(ex, &f, NULL, TF_TIMEOUT_NS), ASYNCRT_EINVAL);
  CHECK_INT(tf_get(&st.drops), 1);
  CHECK_INT(tf_get(&st.polls), 0);

  tf_init(&st);
  f.self = &st;
  f.vtable = &too_big_with_poll_vtable;
  CHECK_STATUS(asyncrt_block_on(ex, &f, &out, TF_TIMEOUT_NS), ASYNCRT_EINVAL);
  CHECK_INT(tf_get(&st.drops), 1);
  CHECK_INT(tf_get(&st.polls), 0);

  tf_init(&st);
  f = tf_future(&st);
  CHECK_STATUS(asyncrt_block_on((asyncrt_executor *)0x12345, &f, &out, TF_TIMEOUT_NS),
               ASYNCRT_EHANDLE);
  CHECK_INT(tf_get(&st.drops), 1);

  /* the executor still works */
  tf_init(&st);
  st.value = 3;
  f = tf_future(&st);
  CHECK_OK(asyncrt_block_on(ex, &f, &out, TF_TIMEOUT_NS));
  CHECK_INT(out, 3);
  CHECK_OK(asyncrt_executor_free(ex));
}

/* A join future is a future like any other: dropping it unpolled, or
 * after its executor is gone, leaves the task alone. */
static void test_join_future_dropped_unpolled(void) {
  asyncrt_executor *ex = tf_executor();
  tf_state st;
  asyncrt_future f, join;
  asyncrt_task *task = NULL;
  CHECK(ex != NULL);
  tf_init(&st);
  st.pendings = 2;
  f = tf_future(&st);
  CHECK_OK(asyncrt_spawn(ex, &f, 0, &task));
  CHECK_OK(asyncrt_task_join(task, &join));
  join.vtable->drop(join.self);
  CHECK_INT(tf_get(&st.drops), 0);
  CHECK_OK(asyncrt_task_release(task));
  CHECK_OK(asyncrt_run(ex, NULL));
  CHECK_INT(tf_get(&st.polls), 3);
  CHECK_INT(tf_get(&st.drops), 1);

  /* a join outliving the executor and the handle */
  tf_init(&st);
  st.park = 1;
  st.pendings = 1;
  f = tf_future(&st);
  CHECK_OK(asyncrt_spawn(ex, &f, 0, &task));
  CHECK_OK(asyncrt_task_join(task, &join));
  CHECK_OK(asyncrt_task_release(task));
  CHECK_OK(asyncrt_run(ex, NULL));
  CHECK_OK(asyncrt_executor_free(ex));
  CHECK_INT(tf_get(&st.drops), 1);
  join.vtable->drop(join.self);
  CHECK_INT(tf_get(&st.drops), 1);
}

int main(void) {
  CHECK_BEGIN();
  RUN(test_dropped_once_on_completion);
  RUN(test_dropped_once_on_failure);
  RUN(test_cancel_before_first_poll);
  RUN(test_cancel_from_another_thread_drops_on_driver);
  RUN(test_cancel_while_pending);
  RUN(test_cancel_from_inside_own_poll);
  RUN(test_cancel_after_completion_is_a_no_op);
  RUN(test_executor_free_drops_pending_tasks);
  RUN(test_failed_spawn_drops_at_once);
  RUN(test_failed_block_on_drops_at_once);
  RUN(test_join_future_dropped_unpolled);
  return CHECK_END("drop");
}
