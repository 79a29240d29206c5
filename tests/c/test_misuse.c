/* Misuse: NULL arguments, dead, foreign and made-up handles, bad flags and
 * structs, a second join, driving calls from inside a poll, two drivers,
 * and block_on timeouts. */
#include "check.h" /* first: it sets _POSIX_C_SOURCE */
#include "testfut.h"

#include <stddef.h>
#include <time.h>

static asyncrt_executor *made_up_executors[] = {
    (asyncrt_executor *)0x12345, (asyncrt_executor *)0x1, (asyncrt_executor *)(uintptr_t)-1,
    (asyncrt_executor *)(uintptr_t)0xdeadbeef000ull};

static void test_null_arguments(void) {
  asyncrt_executor *ex = tf_executor();
  asyncrt_executor_config cfg;
  asyncrt_executor_stats stats;
  asyncrt_hostq *q = NULL;
  asyncrt_task *task = NULL;
  asyncrt_future f, join;
  tf_state st;
  uint64_t id = 0, polls = 0, tag = 0, events[4];
  size_t count = 0;
  int fd = -1;
  asyncrt_waker waker;
  CHECK(ex != NULL);
  stats.size = sizeof stats;
  asyncrt_executor_config_init(&cfg);

  CHECK_STATUS(asyncrt_executor_new(NULL, NULL), ASYNCRT_EINVAL);
  CHECK_STATUS(asyncrt_last_status(), ASYNCRT_EINVAL);
  CHECK_STATUS(asyncrt_executor_new(&cfg, NULL), ASYNCRT_EINVAL);
  CHECK_OK(asyncrt_executor_free(NULL));
  CHECK_OK(asyncrt_task_release(NULL));
  CHECK_OK(asyncrt_hostq_free(NULL));
  CHECK_STATUS(asyncrt_executor_fd(NULL, &fd), ASYNCRT_EINVAL);
  CHECK_STATUS(asyncrt_executor_fd(ex, NULL), ASYNCRT_EINVAL);
  CHECK_STATUS(asyncrt_executor_stats_get(NULL, &stats), ASYNCRT_EINVAL);
  CHECK_STATUS(asyncrt_executor_stats_get(ex, NULL), ASYNCRT_EINVAL);
  CHECK_STATUS(asyncrt_run(NULL, &polls), ASYNCRT_EINVAL);
  CHECK_STATUS(asyncrt_run_step(NULL, 10, 0, &polls), ASYNCRT_EINVAL);
  CHECK_STATUS(asyncrt_block_on(ex, NULL, NULL, TF_TIMEOUT_NS), ASYNCRT_EINVAL);
  CHECK_STATUS(asyncrt_spawn(ex, NULL, 0, &task), ASYNCRT_EINVAL);

  tf_init(&st);
  st.park = 1;
  st.pendings = 1;
  f = tf_future(&st);
  CHECK_OK(asyncrt_spawn(ex, &f, 0, &task));
  CHECK_STATUS(asyncrt_task_join(NULL, &join), ASYNCRT_EINVAL);
  CHECK_STATUS(asyncrt_task_join(task, NULL), ASYNCRT_EINVAL);
  CHECK_OK(asyncrt_task_join(task, &join)); /* the failed calls used nothing up */
  join.vtable->drop(join.self);
  CHECK_STATUS(asyncrt_task_cancel(NULL), ASYNCRT_EINVAL);
  CHECK_STATUS(asyncrt_task_status(NULL), ASYNCRT_EINVAL);
  CHECK_STATUS(asyncrt_task_id(NULL, &id), ASYNCRT_EINVAL);
  CHECK_STATUS(asyncrt_task_id(task, NULL), ASYNCRT_EINVAL);

  CHECK(asyncrt_context_waker(NULL) == NULL);
  CHECK(asyncrt_context_executor(NULL) == NULL);
  asyncrt_context_fail(NULL, 1001); /* void: does nothing */

  CHECK_STATUS(asyncrt_hostq_new(NULL, &q), ASYNCRT_EINVAL);
  CHECK_STATUS(asyncrt_hostq_new(ex, NULL), ASYNCRT_EINVAL);
  CHECK_OK(asyncrt_hostq_new(ex, &q));
  CHECK_STATUS(asyncrt_hostq_future(NULL, &tag, &f), ASYNCRT_EINVAL);
  CHECK_STATUS(asyncrt_hostq_future(q, NULL, &f), ASYNCRT_EINVAL);
  CHECK_STATUS(asyncrt_hostq_future(q, &tag, NULL), ASYNCRT_EINVAL);
  CHECK_STATUS(asyncrt_hostq_take(NULL, events, 4, &count), ASYNCRT_EINVAL);
  CHECK_STATUS(asyncrt_hostq_take(q, NULL, 4, &count), ASYNCRT_EINVAL);
  CHECK_STATUS(asyncrt_hostq_take(q, events, 4, NULL), ASYNCRT_EINVAL);
  CHECK_STATUS(asyncrt_hostq_complete(NULL, &tag, NULL, 1), ASYNCRT_EINVAL);
  CHECK_STATUS(asyncrt_hostq_complete(q, NULL, NULL, 1), ASYNCRT_EINVAL);
  CHECK_STATUS(asyncrt_hostq_wake(NULL, &tag, 1), ASYNCRT_EINVAL);
  CHECK_STATUS(asyncrt_hostq_wake(q, NULL, 1), ASYNCRT_EINVAL);
  CHECK_STATUS(asyncrt_hostq_waker(NULL, 1, &waker), ASYNCRT_EINVAL);
  CHECK_STATUS(asyncrt_hostq_waker(q, 1, NULL), ASYNCRT_EINVAL);
  CHECK_OK(asyncrt_hostq_free(q));

  CHECK_OK(asyncrt_task_release(task));
  CHECK_OK(asyncrt_executor_free(ex));
  CHECK_INT(tf_get(&st.drops), 1);
}

/* Not promised by the header (it says nothing of NULL waker pointers), but a
 * runtime callable through an FFI should not crash on them. */
static void test_null_waker_pointers(void) {
  asyncrt_waker out;
  out.data = (void *)0x1;
  out.vtable = (const asyncrt_waker_vtable *)0x1;
  asyncrt_waker_clone(NULL, &out);
  CHECK(out.vtable == NULL);
  asyncrt_waker_clone(&out, NULL);
  asyncrt_waker_wake(NULL);
  asyncrt_waker_wake_by_ref(NULL);
  asyncrt_waker_drop(NULL);
  CHECK_INT(asyncrt_waker_will_wake(NULL, &out), 0);
  CHECK_INT(asyncrt_waker_will_wake(&out, NULL), 0);
  asyncrt_executor_config_init_size(NULL, sizeof(asyncrt_executor_config));
  (asyncrt_executor_config_init)(NULL); /* the 0.2 function behind the macro */
}

static void test_freed_handles(void) {
  asyncrt_executor *ex = tf_executor(), *live = tf_executor();
  asyncrt_executor_stats stats;
  asyncrt_hostq *q = NULL;
  asyncrt_task *task = NULL;
  asyncrt_future f, join;
  tf_state st;
  uint64_t id = 0, polls = 0, events[4];
  size_t count = 0;
  int fd = -1;
  CHECK(ex != NULL && live != NULL);
  stats.size = sizeof stats;

  tf_init(&st);
  f = tf_future(&st);
  CHECK_OK(asyncrt_spawn(live, &f, 0, &task));
  CHECK_OK(asyncrt_task_release(task));
  CHECK_STATUS(asyncrt_task_release(task), ASYNCRT_EHANDLE);
  CHECK_STATUS(asyncrt_task_status(task), ASYNCRT_EHANDLE);
  CHECK_STATUS(asyncrt_task_cancel(task), ASYNCRT_EHANDLE);
  CHECK_STATUS(asyncrt_task_id(task, &id), ASYNCRT_EHANDLE);
  CHECK_STATUS(asyncrt_task_join(task, &join), ASYNCRT_EHANDLE);
  CHECK_STATUS(asyncrt_last_status(), ASYNCRT_EHANDLE);
  CHECK_OK(asyncrt_run(live, NULL)); /* the released task still ran */
  CHECK_INT(tf_get(&st.drops), 1);

  CHECK_OK(asyncrt_hostq_new(live, &q));
  CHECK_OK(asyncrt_hostq_free(q));
  CHECK_STATUS(asyncrt_hostq_free(q), ASYNCRT_EHANDLE);
  CHECK_STATUS(asyncrt_hostq_take(q, events, 4, &count), ASYNCRT_EHANDLE);

  CHECK_OK(asyncrt_executor_free(ex));
  CHECK_STATUS(asyncrt_executor_free(ex), ASYNCRT_EHANDLE);
  CHECK_STATUS(asyncrt_run(ex, &polls), ASYNCRT_EHANDLE);
  CHECK_STATUS(asyncrt_run_step(ex, 10, 0, &polls), ASYNCRT_EHANDLE);
  CHECK_STATUS(asyncrt_executor_fd(ex, &fd), ASYNCRT_EHANDLE);
  CHECK_STATUS(asyncrt_executor_stats_get(ex, &stats), ASYNCRT_EHANDLE);
  CHECK_STATUS(asyncrt_hostq_new(ex, &q), ASYNCRT_EHANDLE);
  CHECK_OK(asyncrt_executor_free(live));
}

/* Handles carry generations: a freed handle stays dead even when its slot
 * is used again. */
static void test_handle_generations(void) {
  enum { N = 64 };
  asyncrt_executor *old[N];
  asyncrt_task *old_tasks[N];
  asyncrt_executor *ex = NULL;
  tf_state st;
  asyncrt_future f;
  int i, j;
  for (i = 0; i < N; i++) {
    CHECK_OK(asyncrt_executor_new(NULL, &ex));
    tf_init(&st);
    f = tf_future(&st);
    CHECK_OK(asyncrt_spawn(ex, &f, 0, &old_tasks[i]));
    CHECK_OK(asyncrt_run(ex, NULL));
    CHECK_OK(asyncrt_task_release(old_tasks[i]));
    for (j = 0; j < i; j++) {
      CHECK_STATUS(asyncrt_run(old[j], NULL), ASYNCRT_EHANDLE);
      CHECK_STATUS(asyncrt_task_status(old_tasks[j]), ASYNCRT_EHANDLE);
    }
    CHECK_STATUS(asyncrt_task_status(old_tasks[i]), ASYNCRT_EHANDLE);
    CHECK_OK(asyncrt_run(ex, NULL));
    CHECK_OK(asyncrt_executor_free(ex));
    old[i] = ex;
  }
}

static void test_wrong_type_and_made_up_handles(void) {
  asyncrt_executor *ex = tf_executor();
  asyncrt_hostq *q = NULL;
  asyncrt_task *task = NULL;
  asyncrt_future f;
  tf_state st;
  uint64_t events[4];
  size_t count = 0, i;
  int local = 0;
  CHECK(ex != NULL);
  tf_init(&st);
  st.park = 1;
  st.pendings = 1;
  f = tf_future(&st);
  CHECK_OK(asyncrt_spawn(ex, &f, 0, &task));
  CHECK_OK(asyncrt_hostq_new(ex, &q));

  /* a task handle passed as an executor, and the other way round */
  CHECK_STATUS(asyncrt_run((asyncrt_executor *)task, NULL), ASYNCRT_EHANDLE);
  CHECK_STATUS(asyncrt_executor_free((asyncrt_executor *)task), ASYNCRT_EHANDLE);
  CHECK_STATUS(asyncrt_task_status((asyncrt_task *)ex), ASYNCRT_EHANDLE);
  CHECK_STATUS(asyncrt_task_release((asyncrt_task *)ex), ASYNCRT_EHANDLE);
  CHECK_STATUS(asyncrt_task_cancel((asyncrt_task *)ex), ASYNCRT_EHANDLE);
  CHECK_STATUS(asyncrt_run((asyncrt_executor *)q, NULL), ASYNCRT_EHANDLE);
  CHECK_STATUS(asyncrt_task_status((asyncrt_task *)q), ASYNCRT_EHANDLE);
  CHECK_STATUS(asyncrt_hostq_take((asyncrt_hostq *)ex, events, 4, &count), ASYNCRT_EHANDLE);
  CHECK_STATUS(asyncrt_hostq_free((asyncrt_hostq *)task), ASYNCRT_EHANDLE);
  /* all three survived */
  CHECK_STATUS(asyncrt_task_status(task), ASYNCRT_EAGAIN);
  CHECK_OK(asyncrt_run(ex, NULL));
  CHECK_OK(asyncrt_hostq_take(q, events, 4, &count));

  /* values asyncrt never issued */
  for (i = 0; i < sizeof made_up_executors / sizeof made_up_executors[0]; i++) {
    asyncrt_executor *bogus = made_up_executors[i];
    CHECK_STATUS(asyncrt_run(bogus, NULL), ASYNCRT_EHANDLE);
    CHECK_STATUS(asyncrt_executor_free(bogus), ASYNCRT_EHANDLE);
    CHECK_STATUS(asyncrt_task_status((asyncrt_task *)bogus), ASYNCRT_EHANDLE);
    CHECK_STATUS(asyncrt_task_release((asyncrt_task *)bogus), ASYNCRT_EHANDLE);
    CHECK_STATUS(asyncrt_hostq_free((asyncrt_hostq *)bogus), ASYNCRT_EHANDLE);
  }
  CHECK_STATUS(asyncrt_run((asyncrt_executor *)&local, NULL), ASYNCRT_EHANDLE);
  CHECK_STATUS(asyncrt_task_status((asyncrt_task *)&local), ASYNCRT_EHANDLE);
  CHECK_INT(local, 0);

  CHECK_OK(asyncrt_hostq_free(q));
  CHECK_OK(asyncrt_task_release(task));
  CHECK_OK(asyncrt_executor_free(ex));
  CHECK_INT(tf_get(&st.drops), 1);
}

static void test_unknown_spawn_flags(void) {
  asyncrt_executor *ex = tf_executor();
  int bit;
  CHECK(ex != NULL);
  for (bit = 1; bit < 32; bit++) {
    tf_state st;
    asyncrt_future f;
    asyncrt_task *task = NULL;
    if (bit >= 8 && bit < 24) {
      continue; /* ASYNCRT_SPAWN_WORKER(i) lives here; test_drop covers bad indices */
    }
    tf_init(&st);
    f = tf_future(&st);
    CHECK_STATUS(asyncrt_spawn(ex, &f, 1u << bit, &task), ASYNCRT_EINVAL);
    CHECK(task == NULL);
    CHECK_INT(tf_get(&st.drops), 1);
  }
  CHECK_INT(asyncrt_run(ex, NULL), ASYNCRT_OK);
  CHECK_OK(asyncrt_executor_free(ex));
}

static void test_bad_vtables(void) {
  static asyncrt_future_vtable vt;
  asyncrt_executor *ex = tf_executor();
  tf_state st;
  asyncrt_future f;
  uint64_t out = 0;
  CHECK(ex != NULL);
  vt = tf_vtable_u64;
  vt.output_size = ASYNCRT_OUTPUT_MAX + 1;
  tf_init(&st);
  f.self = &st;
  f.vtable = &vt;
  CHECK_STATUS(asyncrt_spawn(ex, &f, 0, NULL), ASYNCRT_EINVAL);
  CHECK_INT(tf_get(&st.drops), 1);
  vt.output_size = (size_t)-1;
  tf_init(&st);
  CHECK_STATUS(asyncrt_block_on(ex, &f, &out, TF_TIMEOUT_NS), ASYNCRT_EINVAL);
  CHECK_INT(tf_get(&st.drops), 1);
  CHECK_INT(tf_get(&st.polls), 0);
  /* a vtable `size` that covers nothing is too small */
  vt = tf_vtable_u64;
  vt.size = 0;
  tf_init(&st);
  CHECK_STATUS(asyncrt_spawn(ex, &f, 0, NULL), ASYNCRT_EINVAL);
  CHECK_INT(tf_get(&st.polls), 0);
  CHECK_OK(asyncrt_run(ex, NULL));
  CHECK_INT(tf_get(&st.polls), 0);
  CHECK_OK(asyncrt_executor_free(ex));
}

static void test_config_and_stats_sizes(void) {
  asyncrt_executor_config cfg;
  asyncrt_executor_stats stats;
  asyncrt_allocator no_alloc;
  asyncrt_executor *ex = NULL;

  asyncrt_executor_config_init(&cfg);
  CHECK_INT(cfg.size, sizeof cfg);
  CHECK_INT(cfg.kind, ASYNCRT_EXECUTOR_LOCAL);
  CHECK_INT(cfg.memory_limit, 0);
  CHECK(cfg.allocator == NULL);
  cfg.size = 0;
  CHECK_STATUS(asyncrt_executor_new(&cfg, &ex), ASYNCRT_EINVAL);
  asyncrt_executor_config_init(&cfg);
  cfg.kind = 99;
  CHECK_STATUS(asyncrt_executor_new(&cfg, &ex), ASYNCRT_EINVAL);
  asyncrt_executor_config_init(&cfg);
  memset(&no_alloc, 0, sizeof no_alloc);
  no_alloc.size = sizeof no_alloc;
  cfg.allocator = &no_alloc; /* NULL functions */
  CHECK_STATUS(asyncrt_executor_new(&cfg, &ex), ASYNCRT_EINVAL);

  asyncrt_executor_config_init(&cfg);
  CHECK_OK(asyncrt_executor_new(&cfg, &ex));

  /* a stats struct whose `size` covers nothing is too small */
  memset(&stats, 0, sizeof stats);
  CHECK_STATUS(asyncrt_executor_stats_get(ex, &stats), ASYNCRT_EINVAL);
  stats.size = sizeof stats;
  CHECK_OK(asyncrt_executor_stats_get(ex, &stats));
  CHECK_INT(stats.tasks_spawned, 0);
  CHECK_INT(stats.memory_limit, 0);
  CHECK_OK(asyncrt_executor_free(ex));
}

static void test_second_join_is_busy(void) {
  asyncrt_executor *ex = tf_executor();
  tf_state st;
  asyncrt_future f, join, again;
  asyncrt_task *task = NULL;
  uint64_t out = 0;
  CHECK(ex != NULL);
  tf_init(&st);
  st.value = 4;
  f = tf_future(&st);
  CHECK_OK(asyncrt_spawn(ex, &f, 0, &task));
  CHECK_OK(asyncrt_task_join(task, &join));
  CHECK_STATUS(asyncrt_task_join(task, &again), ASYNCRT_EBUSY);
  CHECK_OK(asyncrt_block_on(ex, &join, &out, TF_TIMEOUT_NS));
  CHECK_INT(out, 4);
  /* still one per task, after the first is gone and the task is done */
  CHECK_STATUS(asyncrt_task_join(task, &again), ASYNCRT_EBUSY);
  CHECK_OK(asyncrt_task_release(task));
  CHECK_OK(asyncrt_executor_free(ex));
}

/* What the driving calls return from inside a poll or a drop. */
typedef struct reentry {
  asyncrt_executor *ex;
  asyncrt_executor *other;
  tf_state inner;
  int block_on, block_on_other, run, run_other, run_step, free;
  int inner_drops_after_block_on;
} reentry;

static int reenter_hook(tf_state *st, asyncrt_context *cx, void *out) {
  reentry *r = st->hook_data;
  asyncrt_future inner;
  uint64_t inner_out = 0, polls = 0;
  (void)cx;
  (void)out;
  tf_init(&r->inner);
  inner = tf_future(&r->inner);
  r->block_on = asyncrt_block_on(r->ex, &inner, &inner_out, TF_TIMEOUT_NS);
  r->inner_drops_after_block_on = tf_get(&r->inner.drops);
  tf_init(&r->inner);
  inner = tf_future(&r->inner);
  r->block_on_other = asyncrt_block_on(r->other, &inner, &inner_out, TF_TIMEOUT_NS);
  r->inner_drops_after_block_on += tf_get(&r->inner.drops);
  r->run = asyncrt_run(r->ex, &polls);
  r->run_other = asyncrt_run(r->other, &polls);
  r->run_step = asyncrt_run_step(r->ex, 10, 0, &polls);
  r->free = asyncrt_executor_free(r->ex);
  return TF_CONTINUE;
}

static void check_reentry(const reentry *r) {
  CHECK_STATUS(r->block_on, ASYNCRT_EREENTRANT);
  CHECK_STATUS(r->block_on_other, ASYNCRT_EREENTRANT);
  CHECK_INT(r->inner_drops_after_block_on, 2); /* taken, so dropped at once */
  CHECK_INT(tf_get(&r->inner.polls), 0);
  CHECK_STATUS(r->run, ASYNCRT_EREENTRANT);
  CHECK_STATUS(r->run_other, ASYNCRT_EREENTRANT);
  CHECK_STATUS(r->run_step, ASYNCRT_EREENTRANT);
  CHECK_STATUS(r->free, ASYNCRT_EBUSY);
}

typedef struct drop_reentry {
  asyncrt_executor *ex;
  int run, free, drops;
} drop_reentry;

static int ready_at_once(void *self, asyncrt_context *cx, void *out) {
  (void)self;
  (void)cx;
  (void)out;
  return ASYNCRT_POLL_READY;
}
static void reentrant_drop(void *self) {
  drop_reentry *d = self;
  d->run = asyncrt_run(d->ex, NULL);
  d->free = asyncrt_executor_free(d->ex);
  d->drops++;
}
static const asyncrt_future_vtable reentrant_drop_vtable = {sizeof(asyncrt_future_vtable), 0,
                                                            ready_at_once, reentrant_drop, NULL};

static void test_driving_from_inside_a_poll(void) {
  asyncrt_executor *ex = tf_executor(), *other = tf_executor();
  reentry r;
  drop_reentry d;
  tf_state st;
  asyncrt_future f;
  uint64_t out = 0;
  CHECK(ex != NULL && other != NULL);
  memset(&r, 0, sizeof r);
  r.ex = ex;
  r.other = other;

  /* from a spawned task's poll */
  tf_init(&st);
  st.hook = reenter_hook;
  st.hook_data = &r;
  f = tf_future(&st);
  CHECK_OK(asyncrt_spawn(ex, &f, 0, NULL));
  CHECK_OK(asyncrt_run(ex, NULL));
  CHECK_INT(tf_get(&st.polls), 1);
  check_reentry(&r);
  CHECK_PASSED();

  /* from the poll of a future run by block_on */
  memset(&r, 0, sizeof r);
  r.ex = ex;
  r.other = other;
  tf_init(&st);
  st.hook = reenter_hook;
  st.hook_data = &r;
  st.value = 17;
  f = tf_future(&st);
  CHECK_OK(asyncrt_block_on(ex, &f, &out, TF_TIMEOUT_NS));
  CHECK_INT(out, 17);
  check_reentry(&r);
  CHECK_PASSED();

  /* from a drop run by the executor */
  memset(&d, 0, sizeof d);
  d.ex = ex;
  f.self = &d;
  f.vtable = &reentrant_drop_vtable;
  CHECK_OK(asyncrt_spawn(ex, &f, 0, NULL));
  CHECK_OK(asyncrt_run(ex, NULL));
  CHECK_INT(d.drops, 1);
  CHECK_STATUS(d.run, ASYNCRT_EREENTRANT);
  CHECK_STATUS(d.free, ASYNCRT_EBUSY);

  /* the executors survived it all */
  tf_init(&st);
  st.value = 18;
  f = tf_future(&st);
  CHECK_OK(asyncrt_block_on(ex, &f, &out, TF_TIMEOUT_NS));
  CHECK_INT(out, 18);
  CHECK_OK(asyncrt_executor_free(ex));
  CHECK_OK(asyncrt_executor_free(other));
}

/* While the main thread is inside block_on, another thread tries to drive. */
typedef struct second_driver {
  asyncrt_executor *ex;
  tf_state *blocked; /* the future main is blocked on */
  tf_state other;
  tf_state spawned;
  int run, run_step, block_on, free, spawn;
  int other_drops_after_block_on;
} second_driver;

static void *drive_concurrently(void *arg) {
  second_driver *d = arg;
  asyncrt_future f;
  uint64_t out = 0, polls = 0;
  if (!tf_wait_flag(&d->blocked->parked_flag, 5000)) {
    return NULL;
  }
  d->run = asyncrt_run(d->ex, &polls);
  d->run_step = asyncrt_run_step(d->ex, 10, 0, &polls);
  f = tf_future(&d->other);
  d->block_on = asyncrt_block_on(d->ex, &f, &out, TF_SECOND_NS);
  d->other_drops_after_block_on = tf_get(&d->other.drops);
  d->free = asyncrt_executor_free(d->ex);
  f = tf_future(&d->spawned); /* spawning from another thread is fine */
  d->spawn = asyncrt_spawn(d->ex, &f, 0, NULL);
  asyncrt_waker_wake_by_ref(&d->blocked->parked);
  return NULL;
}

static void test_two_threads_driving_one_executor(void) {
  asyncrt_executor *ex = tf_executor();
  second_driver d;
  tf_state blocked;
  asyncrt_future f;
  pthread_t th;
  uint64_t out = 0;
  int rc;
  CHECK(ex != NULL);
  memset(&d, 0, sizeof d);
  tf_init(&blocked);
  blocked.park = 1;
  blocked.pendings = 1;
  blocked.value = 21;
  tf_init(&d.other);
  tf_init(&d.spawned);
  d.ex = ex;
  d.blocked = &blocked;
  d.run = d.run_step = d.block_on = d.free = d.spawn = -1;
  f = tf_future(&blocked);
  CHECK_INT(pthread_create(&th, NULL, drive_concurrently, &d), 0);
  rc = asyncrt_block_on(ex, &f, &out, TF_TIMEOUT_NS);
  CHECK_INT(pthread_join(th, NULL), 0);
  CHECK_OK(rc);
  CHECK_INT(out, 21);
  CHECK_STATUS(d.run, ASYNCRT_EBUSY);
  CHECK_STATUS(d.run_step, ASYNCRT_EBUSY);
  CHECK_STATUS(d.block_on, ASYNCRT_EBUSY);
  CHECK_INT(d.other_drops_after_block_on, 1);
  CHECK_INT(tf_get(&d.other.polls), 0);
  CHECK_STATUS(d.free, ASYNCRT_EBUSY);
  CHECK_OK(d.spawn);
  CHECK_OK(asyncrt_run(ex, NULL));
  CHECK_INT(tf_get(&d.spawned.polls), 1);
  CHECK(pthread_equal(d.spawned.poll_thread, pthread_self()));
  CHECK_INT(tf_get(&d.spawned.drops), 1);
  CHECK_OK(asyncrt_executor_free(ex));
}

static void test_block_on_timeout(void) {
  asyncrt_executor *ex = tf_executor();
  tf_state st, waiting;
  asyncrt_future f, join, again;
  asyncrt_task *task = NULL;
  uint64_t out = 0;
  int64_t t0, took;
  CHECK(ex != NULL);

  tf_init(&st);
  st.park = 1;
  st.pendings = 1; /* nobody will wake it */
  f = tf_future(&st);
  t0 = tf_now_ns();
  CHECK_STATUS(asyncrt_block_on(ex, &f, &out, 50 * TF_MS_NS), ASYNCRT_ETIMEDOUT);
  took = tf_now_ns() - t0;
  CHECK_INT(tf_get(&st.drops), 1);
  CHECK_INT(tf_get(&st.polls), 1);
  CHECK(took >= 45 * TF_MS_NS);
  CHECK(took < 2 * TF_SECOND_NS);

  /* block_on sleeps in the kernel while it waits: it does not spin */
  tf_init(&st);
  st.park = 1;
  st.pendings = 1;
  f = tf_future(&st);
  {
    struct timespec c0, c1;
    int64_t cpu;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &c0);
    CHECK_STATUS(asyncrt_block_on(ex, &f, &out, 300 * TF_MS_NS), ASYNCRT_ETIMEDOUT);
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &c1);
    cpu = (int64_t)(c1.tv_sec - c0.tv_sec) * TF_SECOND_NS + (c1.tv_nsec - c0.tv_nsec);
    if (cpu > 100 * TF_MS_NS) {
      check_fail_at(__FILE__, __LINE__);
      fprintf(stderr, "a 300 ms block_on on a parked future used %lld ms of CPU, want < 100\n",
              (long long)(cpu / TF_MS_NS));
      return;
    }
  }

  /* a zero timeout does not wait */
  tf_init(&st);
  st.park = 1;
  st.pendings = 1;
  f = tf_future(&st);
  t0 = tf_now_ns();
  CHECK_STATUS(asyncrt_block_on(ex, &f, &out, 0), ASYNCRT_ETIMEDOUT);
  CHECK(tf_now_ns() - t0 < TF_SECOND_NS);
  CHECK_INT(tf_get(&st.drops), 1);

  /* a negative timeout other than ASYNCRT_NO_TIMEOUT is invalid */
  tf_init(&st);
  f = tf_future(&st);
  CHECK_STATUS(asyncrt_block_on(ex, &f, &out, -5), ASYNCRT_EINVAL);
  CHECK_INT(tf_get(&st.drops), 1);

  /* timing out on a join drops the join, not the task */
  tf_init(&waiting);
  waiting.park = 1;
  waiting.pendings = 1;
  waiting.value = 6;
  f = tf_future(&waiting);
  CHECK_OK(asyncrt_spawn(ex, &f, 0, &task));
  CHECK_OK(asyncrt_task_join(task, &join));
  CHECK_STATUS(asyncrt_block_on(ex, &join, &out, 20 * TF_MS_NS), ASYNCRT_ETIMEDOUT);
  CHECK_INT(tf_get(&waiting.polls), 1); /* block_on ran the task meanwhile */
  CHECK_INT(tf_get(&waiting.drops), 0);
  CHECK_STATUS(asyncrt_task_status(task), ASYNCRT_EAGAIN);
  CHECK_STATUS(asyncrt_task_join(task, &again), ASYNCRT_EBUSY);
  asyncrt_waker_wake_by_ref(&waiting.parked);
  CHECK_OK(asyncrt_run(ex, NULL));
  CHECK_OK(asyncrt_task_status(task));
  CHECK_INT(tf_get(&waiting.drops), 1);
  CHECK_OK(asyncrt_task_release(task));

  /* and the executor goes on working */
  tf_init(&st);
  st.value = 1;
  f = tf_future(&st);
  CHECK_OK(asyncrt_block_on(ex, &f, &out, TF_TIMEOUT_NS));
  CHECK_INT(out, 1);
  CHECK_OK(asyncrt_executor_free(ex));
}

int main(void) {
  CHECK_BEGIN();
  RUN(test_null_arguments);
  RUN(test_null_waker_pointers);
  RUN(test_freed_handles);
  RUN(test_handle_generations);
  RUN(test_wrong_type_and_made_up_handles);
  RUN(test_unknown_spawn_flags);
  RUN(test_bad_vtables);
  RUN(test_config_and_stats_sizes);
  RUN(test_second_join_is_busy);
  RUN(test_driving_from_inside_a_poll);
  RUN(test_two_threads_driving_one_executor);
  RUN(test_block_on_timeout);
  return CHECK_END("misuse");
}
