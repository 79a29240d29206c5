/* Wakers: the free functions, the runtime's task wakers, late wakes, and
 * wakes from threads asyncrt never saw. */
#include "check.h"
#include "testfut.h"

/* A waker that counts what is done to it. */
typedef struct counting_waker {
  int clones, wakes, wakes_by_ref, drops;
} counting_waker;

static const asyncrt_waker_vtable counting_vtable;

static void cw_clone(const void *data, asyncrt_waker *out) {
  tf_add(&((counting_waker *)data)->clones, 1);
  out->data = data;
  out->vtable = &counting_vtable;
}
static void cw_wake(const void *data) { tf_add(&((counting_waker *)data)->wakes, 1); }
static void cw_wake_by_ref(const void *data) { tf_add(&((counting_waker *)data)->wakes_by_ref, 1); }
static void cw_drop(const void *data) { tf_add(&((counting_waker *)data)->drops, 1); }

static const asyncrt_waker_vtable counting_vtable = {cw_clone, cw_wake, cw_wake_by_ref, cw_drop};
static const asyncrt_waker_vtable other_vtable = {cw_clone, cw_wake, cw_wake_by_ref, cw_drop};

static void test_waker_functions_use_the_vtable(void) {
  counting_waker c, d;
  asyncrt_waker w, copy;
  memset(&c, 0, sizeof c);
  memset(&d, 0, sizeof d);
  w.data = &c;
  w.vtable = &counting_vtable;
  asyncrt_waker_clone(&w, &copy);
  CHECK_INT(c.clones, 1);
  CHECK(copy.data == &c && copy.vtable == &counting_vtable);
  CHECK_INT(asyncrt_waker_will_wake(&w, &copy), 1);
  CHECK_INT(asyncrt_waker_will_wake(&w, &w), 1);
  asyncrt_waker_wake_by_ref(&w);
  CHECK_INT(c.wakes_by_ref, 1);
  CHECK(w.data == &c && w.vtable == &counting_vtable); /* not consumed */
  asyncrt_waker_wake(&copy);
  CHECK_INT(c.wakes, 1);
  CHECK(copy.data == NULL && copy.vtable == NULL); /* consumed and zeroed */
  asyncrt_waker_drop(&w);
  CHECK_INT(c.drops, 1);
  CHECK(w.data == NULL && w.vtable == NULL);
  CHECK_INT(c.clones, 1);
  CHECK_INT(c.wakes_by_ref, 1);
  CHECK_INT(c.wakes, 1);

  /* same data and vtable, or not */
  w.data = &c;
  w.vtable = &counting_vtable;
  copy.data = &d;
  copy.vtable = &counting_vtable;
  CHECK_INT(asyncrt_waker_will_wake(&w, &copy), 0);
  copy.data = &c;
  copy.vtable = &other_vtable;
  CHECK_INT(asyncrt_waker_will_wake(&w, &copy), 0);
  CHECK_INT(c.clones + c.wakes + c.wakes_by_ref + c.drops, 4);
}

static void test_zeroed_waker_is_a_no_op(void) {
  counting_waker c;
  asyncrt_waker zero, out, real, null_vtable;
  memset(&c, 0, sizeof c);
  memset(&zero, 0, sizeof zero);
  real.data = &c;
  real.vtable = &counting_vtable;
  out.data = (void *)0x1;
  out.vtable = (const asyncrt_waker_vtable *)0x1;
  asyncrt_waker_clone(&zero, &out);
  CHECK(out.data == NULL && out.vtable == NULL);
  asyncrt_waker_wake_by_ref(&zero);
  asyncrt_waker_wake(&zero);
  asyncrt_waker_drop(&zero);
  CHECK(zero.data == NULL && zero.vtable == NULL);
  CHECK_INT(asyncrt_waker_will_wake(&zero, &real), 0);
  CHECK_INT(asyncrt_waker_will_wake(&real, &zero), 0);
  /* "vtable NULL" is what makes it a zeroed waker */
  null_vtable.data = &c;
  null_vtable.vtable = NULL;
  asyncrt_waker_wake_by_ref(&null_vtable);
  asyncrt_waker_clone(&null_vtable, &out);
  CHECK(out.vtable == NULL);
  asyncrt_waker_wake(&null_vtable);
  asyncrt_waker_drop(&null_vtable);
  CHECK_INT(c.clones + c.wakes + c.wakes_by_ref + c.drops, 0);
}

/* Records whether the context's waker is the one given to poll_with_waker. */
static int same_waker_hook(tf_state *st, asyncrt_context *cx, void *out) {
  const asyncrt_waker *expected = st->hook_data;
  (void)out;
  if (asyncrt_waker_will_wake(asyncrt_context_waker(cx), expected) != 1) {
    tf_add(&st->bad_polls, 100);
  }
  return TF_CONTINUE;
}

static void test_poll_with_waker(void) {
  counting_waker c;
  asyncrt_waker w;
  tf_state st;
  asyncrt_future f;
  uint64_t out = 0;
  int failure = -7;
  memset(&c, 0, sizeof c);
  w.data = &c;
  w.vtable = &counting_vtable;

  /* a future that wakes itself through our waker */
  tf_init(&st);
  st.pendings = 2;
  st.value = 55;
  st.hook = same_waker_hook;
  st.hook_data = &w;
  f = tf_future(&st);
  CHECK_INT(asyncrt_poll_with_waker(&f, &w, &out, &failure), ASYNCRT_POLL_PENDING);
  CHECK_INT(c.wakes_by_ref, 1);
  CHECK(st.executor == NULL); /* no executor behind this poll */
  CHECK_INT(asyncrt_poll_with_waker(&f, &w, &out, NULL), ASYNCRT_POLL_PENDING);
  CHECK_INT(asyncrt_poll_with_waker(&f, &w, &out, &failure), ASYNCRT_POLL_READY);
  CHECK_INT(out, 55);
  CHECK_INT(c.wakes_by_ref, 2);
  CHECK_INT(tf_get(&st.drops), 0); /* borrowed: not dropped */
  CHECK_INT(tf_get(&st.bad_polls), 0);
  f.vtable->drop(f.self);

  /* a future that keeps a clone of our waker, and drops it in its drop */
  tf_init(&st);
  st.park = 1;
  st.pendings = 1;
  f = tf_future(&st);
  CHECK_INT(asyncrt_poll_with_waker(&f, &w, &out, NULL), ASYNCRT_POLL_PENDING);
  CHECK_INT(c.clones, 1);
  asyncrt_waker_wake_by_ref(&st.parked);
  CHECK_INT(c.wakes_by_ref, 3);
  f.vtable->drop(f.self);
  CHECK_INT(c.drops, 1);
  CHECK_INT(c.wakes, 0);

  /* failures are reported through *failure */
  tf_init(&st);
  st.fail = 1001;
  f = tf_future(&st);
  CHECK_INT(asyncrt_poll_with_waker(&f, &w, &out, &failure), ASYNCRT_POLL_ERROR);
  CHECK_STATUS(failure, 1001);
  tf_init(&st);
  st.fail = TF_FAIL_UNNAMED;
  f = tf_future(&st);
  CHECK_INT(asyncrt_poll_with_waker(&f, &w, &out, &failure), ASYNCRT_POLL_ERROR);
  CHECK_STATUS(failure, ASYNCRT_EFAILED);
  /* items */
  tf_init(&st);
  st.yields = 1;
  f = tf_future(&st);
  CHECK_INT(asyncrt_poll_with_waker(&f, &w, &out, &failure), ASYNCRT_POLL_YIELDED);
  CHECK_INT(out, 1);
  /* a future with no output takes a NULL out */
  tf_init(&st);
  f = tf_future_void(&st);
  CHECK_INT(asyncrt_poll_with_waker(&f, &w, NULL, NULL), ASYNCRT_POLL_READY);

  /* NULL arguments */
  tf_init(&st);
  f = tf_future(&st);
  CHECK_INT(asyncrt_poll_with_waker(NULL, &w, &out, NULL), -ASYNCRT_EINVAL);
  CHECK_INT(asyncrt_poll_with_waker(&f, NULL, &out, NULL), -ASYNCRT_EINVAL);
  CHECK_INT(asyncrt_poll_with_waker(&f, &w, NULL, NULL), -ASYNCRT_EINVAL);
  CHECK_INT(tf_get(&st.polls), 0);
  CHECK_STATUS(asyncrt_last_status(), ASYNCRT_EINVAL);
}

static void test_task_waker_clone_wake_drop(void) {
  asyncrt_executor *ex = tf_executor();
  tf_state a, b;
  asyncrt_future f;
  asyncrt_task *ta = NULL, *tb = NULL;
  asyncrt_waker c1, c2;
  uint64_t polls = 0;
  CHECK(ex != NULL);
  tf_init(&a);
  a.park = 1;
  a.pendings = 3;
  tf_init(&b);
  b.park = 1;
  b.pendings = 1;
  f = tf_future(&a);
  CHECK_OK(asyncrt_spawn(ex, &f, 0, &ta));
  f = tf_future(&b);
  CHECK_OK(asyncrt_spawn(ex, &f, 0, &tb));
  CHECK_OK(asyncrt_run(ex, &polls));
  CHECK_INT(polls, 2);
  CHECK(a.parked.vtable != NULL && b.parked.vtable != NULL);
  CHECK_INT(asyncrt_waker_will_wake(&a.parked, &a.parked), 1);
  CHECK_INT(asyncrt_waker_will_wake(&a.parked, &b.parked), 0);

  asyncrt_waker_clone(&a.parked, &c1);
  CHECK(c1.vtable != NULL);
  CHECK_INT(asyncrt_waker_will_wake(&c1, &b.parked), 0);
  asyncrt_waker_wake_by_ref(&c1); /* by reference: c1 stays usable */
  CHECK(c1.vtable != NULL);
  CHECK_OK(asyncrt_run(ex, &polls));
  CHECK_INT(polls, 1);
  CHECK_INT(tf_get(&a.polls), 2);
  asyncrt_waker_wake(&c1); /* consumes c1 */
  CHECK(c1.data == NULL && c1.vtable == NULL);
  CHECK_OK(asyncrt_run(ex, &polls));
  CHECK_INT(polls, 1);
  CHECK_INT(tf_get(&a.polls), 3);
  asyncrt_waker_clone(&a.parked, &c2);
  asyncrt_waker_drop(&c2); /* a drop does not wake */
  CHECK(c2.data == NULL && c2.vtable == NULL);
  CHECK_OK(asyncrt_run(ex, &polls));
  CHECK_INT(polls, 0);
  CHECK_STATUS(asyncrt_task_status(ta), ASYNCRT_EAGAIN);
  CHECK_INT(tf_get(&b.polls), 1); /* waking a never touched b */
  asyncrt_waker_wake_by_ref(&a.parked);
  asyncrt_waker_wake_by_ref(&b.parked);
  CHECK_OK(asyncrt_run(ex, &polls));
  CHECK_INT(polls, 2);
  CHECK_OK(asyncrt_task_status(ta));
  CHECK_OK(asyncrt_task_status(tb));
  CHECK_OK(asyncrt_task_release(ta));
  CHECK_OK(asyncrt_task_release(tb));
  CHECK_OK(asyncrt_executor_free(ex));
}

static void test_wake_after_completion_or_cancel(void) {
  asyncrt_executor *ex = tf_executor();
  tf_state st, cancelled;
  asyncrt_future f;
  asyncrt_task *task = NULL, *ct = NULL;
  asyncrt_waker kept, kept_cancelled, extra;
  uint64_t polls = 0;
  CHECK(ex != NULL);
  tf_init(&st);
  st.park = 1;
  st.pendings = 1;
  f = tf_future(&st);
  CHECK_OK(asyncrt_spawn(ex, &f, 0, &task));
  tf_init(&cancelled);
  cancelled.park = 1;
  cancelled.pendings = 1;
  f = tf_future(&cancelled);
  CHECK_OK(asyncrt_spawn(ex, &f, 0, &ct));
  CHECK_OK(asyncrt_run(ex, NULL));
  asyncrt_waker_clone(&st.parked, &kept);
  asyncrt_waker_clone(&cancelled.parked, &kept_cancelled);
  asyncrt_waker_wake_by_ref(&st.parked);
  CHECK_OK(asyncrt_task_cancel(ct));
  CHECK_OK(asyncrt_run(ex, NULL));
  CHECK_OK(asyncrt_task_status(task));
  CHECK_STATUS(asyncrt_task_status(ct), ASYNCRT_ECANCELLED);
  CHECK_INT(tf_get(&st.drops), 1);

  asyncrt_waker_wake_by_ref(&kept);
  asyncrt_waker_wake_by_ref(&kept_cancelled);
  CHECK_OK(asyncrt_run(ex, &polls));
  CHECK_INT(polls, 0);
  CHECK_OK(asyncrt_task_release(task));
  CHECK_OK(asyncrt_task_release(ct));
  asyncrt_waker_wake_by_ref(&kept); /* the handle is gone too */
  asyncrt_waker_clone(&kept, &extra);
  asyncrt_waker_wake(&extra);
  asyncrt_waker_wake(&kept_cancelled);
  CHECK_OK(asyncrt_run(ex, &polls));
  CHECK_INT(polls, 0);
  asyncrt_waker_drop(&kept);
  CHECK_INT(tf_get(&st.polls), 2);
  CHECK_INT(tf_get(&st.bad_polls) + tf_get(&cancelled.bad_polls), 0);
  CHECK_OK(asyncrt_executor_free(ex));
}

static void test_wake_after_executor_freed(void) {
  asyncrt_executor *ex = tf_executor();
  tf_state st;
  asyncrt_future f;
  asyncrt_waker kept, extra;
  CHECK(ex != NULL);
  tf_init(&st);
  st.park = 1;
  st.pendings = 1;
  f = tf_future(&st);
  CHECK_OK(asyncrt_spawn(ex, &f, 0, NULL));
  CHECK_OK(asyncrt_run(ex, NULL));
  asyncrt_waker_clone(&st.parked, &kept);
  CHECK_OK(asyncrt_executor_free(ex));
  CHECK_INT(tf_get(&st.drops), 1);
  asyncrt_waker_wake_by_ref(&kept);
  asyncrt_waker_clone(&kept, &extra);
  asyncrt_waker_wake(&extra);
  CHECK(extra.vtable == NULL);
  CHECK_INT(asyncrt_waker_will_wake(&kept, &kept), 1);
  asyncrt_waker_drop(&kept);
  CHECK_INT(tf_get(&st.polls), 1);
  CHECK_INT(tf_get(&st.drops), 1);
}

/* One parked future; a plain pthread wakes it while block_on sleeps. */
typedef struct handoff {
  asyncrt_waker waker; /* given to the thread by the first poll */
  int ready;
  int woken;
  int delay_ms;
  int by_ref;
} handoff;

static int handoff_hook(tf_state *st, asyncrt_context *cx, void *out) {
  handoff *h = st->hook_data;
  (void)out;
  if (tf_get(&st->polls) == 1) {
    asyncrt_waker_clone(asyncrt_context_waker(cx), &h->waker);
    tf_set(&h->ready, 1);
    return ASYNCRT_POLL_PENDING;
  }
  return tf_get(&h->woken) ? TF_CONTINUE : ASYNCRT_POLL_PENDING;
}

static void *wake_later(void *arg) {
  handoff *h = arg;
  if (!tf_wait_flag(&h->ready, 5000)) {
    return NULL;
  }
  if (h->delay_ms > 0) {
    tf_sleep_ms(h->delay_ms);
  }
  tf_set(&h->woken, 1);
  if (h->by_ref) {
    asyncrt_waker_wake_by_ref(&h->waker);
    asyncrt_waker_drop(&h->waker);
  } else {
    asyncrt_waker_wake(&h->waker);
  }
  return NULL;
}

static void test_wake_from_foreign_thread_during_block_on(void) {
  asyncrt_executor *ex = tf_executor();
  int i;
  CHECK(ex != NULL);
  for (i = 0; i < 150; i++) {
    tf_state st;
    handoff h;
    asyncrt_future f;
    pthread_t th;
    uint64_t out = 0;
    int rc;
    int64_t t0, took;
    memset(&h, 0, sizeof h);
    h.delay_ms = i % 3 == 0 ? 0 : i % 7;
    h.by_ref = i % 2;
    tf_init(&st);
    st.hook = handoff_hook;
    st.hook_data = &h;
    st.value = (uint64_t)i;
    f = tf_future(&st);
    CHECK_INT(pthread_create(&th, NULL, wake_later, &h), 0);
    t0 = tf_now_ns();
    rc = asyncrt_block_on(ex, &f, &out, 2 * TF_SECOND_NS);
    took = tf_now_ns() - t0;
    CHECK_INT(pthread_join(th, NULL), 0);
    if (rc != ASYNCRT_OK) {
      check_fail_at(__FILE__, __LINE__);
      fprintf(stderr, "iteration %d (delay %d ms, %s): block_on got %s after %lld ms, want OK "
              "(a lost wakeup?)\n", i, h.delay_ms, h.by_ref ? "wake_by_ref" : "wake",
              asyncrt_status_str(rc), (long long)(took / TF_MS_NS));
      return;
    }
    CHECK_INT(out, i);
    CHECK(tf_get(&h.woken));
    CHECK_INT(tf_get(&st.drops), 1);
  }
  CHECK_OK(asyncrt_executor_free(ex));
}

/* Many threads hammer one task's waker while block_on drives it. */
enum { HAMMER_THREADS = 8, HAMMER_WAKES = 2000 };
typedef struct hammer {
  asyncrt_waker wakers[HAMMER_THREADS];
  int ready;
  int done;
} hammer;
typedef struct hammer_arg {
  hammer *h;
  int index;
} hammer_arg;

static int hammer_hook(tf_state *st, asyncrt_context *cx, void *out) {
  hammer *h = st->hook_data;
  int i;
  (void)out;
  if (tf_get(&st->polls) == 1) {
    for (i = 0; i < HAMMER_THREADS; i++) {
      asyncrt_waker_clone(asyncrt_context_waker(cx), &h->wakers[i]);
    }
    tf_set(&h->ready, 1);
  }
  return tf_get(&h->done) == HAMMER_THREADS ? TF_CONTINUE : ASYNCRT_POLL_PENDING;
}

static void *hammer_thread(void *arg) {
  hammer_arg *a = arg;
  int n;
  if (!tf_wait_flag(&a->h->ready, 5000)) {
    return NULL;
  }
  for (n = 0; n < HAMMER_WAKES; n++) {
    asyncrt_waker_wake_by_ref(&a->h->wakers[a->index]);
  }
  tf_add(&a->h->done, 1);
  asyncrt_waker_wake(&a->h->wakers[a->index]);
  return NULL;
}

static void test_many_threads_wake_one_task(void) {
  asyncrt_executor *ex = tf_executor();
  hammer h;
  hammer_arg args[HAMMER_THREADS];
  pthread_t th[HAMMER_THREADS];
  tf_state st;
  asyncrt_future f;
  uint64_t out = 0;
  int i, rc;
  CHECK(ex != NULL);
  memset(&h, 0, sizeof h);
  tf_init(&st);
  st.hook = hammer_hook;
  st.hook_data = &h;
  st.value = 12;
  f = tf_future(&st);
  for (i = 0; i < HAMMER_THREADS; i++) {
    args[i].h = &h;
    args[i].index = i;
    CHECK_INT(pthread_create(&th[i], NULL, hammer_thread, &args[i]), 0);
  }
  rc = asyncrt_block_on(ex, &f, &out, TF_TIMEOUT_NS);
  for (i = 0; i < HAMMER_THREADS; i++) {
    pthread_join(th[i], NULL);
  }
  CHECK_OK(rc);
  CHECK_INT(out, 12);
  CHECK(tf_get(&st.polls) >= 2);
  CHECK(tf_get(&st.polls) <= HAMMER_THREADS * (HAMMER_WAKES + 1) + 1);
  CHECK_INT(tf_get(&st.drops), 1);
  CHECK_OK(asyncrt_executor_free(ex));
}

int main(void) {
  CHECK_BEGIN();
  RUN(test_waker_functions_use_the_vtable);
  RUN(test_zeroed_waker_is_a_no_op);
  RUN(test_poll_with_waker);
  RUN(test_task_waker_clone_wake_drop);
  RUN(test_wake_after_completion_or_cancel);
  RUN(test_wake_after_executor_freed);
  RUN(test_wake_from_foreign_thread_during_block_on);
  RUN(test_many_threads_wake_one_task);
  return CHECK_END("waker");
}
