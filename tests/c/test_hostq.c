/* The host queue: POLL and DROP events in order, completion, wakes, wakers,
 * and taking events in small batches. */
#include "check.h"
#include "testfut.h"

#define POLL_OF(tag) (ASYNCRT_HOSTQ_POLL | (tag))
#define DROP_OF(tag) (ASYNCRT_HOSTQ_DROP | (tag))

/* Checks that the queue holds exactly `want` (n events), in order. */
static void expect_events_at(int line, asyncrt_hostq *q, const uint64_t *want, size_t n) {
  uint64_t got[64];
  size_t count = 99, i;
  if (asyncrt_hostq_take(q, got, 64, &count) != ASYNCRT_OK) {
    check_fail_at(__FILE__, line);
    fprintf(stderr, "hostq_take: %s\n", asyncrt_last_error());
    return;
  }
  if (count != n) {
    check_fail_at(__FILE__, line);
    fprintf(stderr, "hostq_take: got %zu events, want %zu:", count, n);
    for (i = 0; i < count && i < 64; i++) {
      fprintf(stderr, " %s:%llu", (got[i] & ASYNCRT_HOSTQ_KIND_MASK) == ASYNCRT_HOSTQ_POLL ? "POLL" : "DROP",
              (unsigned long long)(got[i] & ASYNCRT_HOSTQ_TAG_MASK));
    }
    fprintf(stderr, "\n");
    return;
  }
  for (i = 0; i < n; i++) {
    if (got[i] != want[i]) {
      check_fail_at(__FILE__, line);
      fprintf(stderr, "hostq_take: event %zu: got 0x%llx, want 0x%llx\n", i,
              (unsigned long long)got[i], (unsigned long long)want[i]);
      return;
    }
  }
}

#define EXPECT_EVENTS(q, want, n)                                             \
  do {                                                                        \
    expect_events_at(__LINE__, q, want, n);                                   \
    CHECK_PASSED();                                                           \
  } while (0)

static void new_host_future(asyncrt_hostq *q, uint64_t *tag, asyncrt_future *f) {
  *tag = 0;
  CHECK_OK(asyncrt_hostq_future(q, tag, f));
  CHECK(*tag != 0);
  CHECK_INT(*tag & ASYNCRT_HOSTQ_KIND_MASK, 0);
  CHECK(f->vtable != NULL);
  CHECK_INT(f->vtable->output_size, 0);
}

static void test_poll_complete_drop(void) {
  asyncrt_executor *ex = tf_executor();
  asyncrt_hostq *q = NULL;
  asyncrt_future f1, f2;
  asyncrt_task *t1 = NULL, *t2 = NULL;
  asyncrt_waker w;
  uint64_t tag1, tag2, polls = 0, want[4];
  int status;
  CHECK(ex != NULL);
  CHECK_OK(asyncrt_hostq_new(ex, &q));
  new_host_future(q, &tag1, &f1);
  new_host_future(q, &tag2, &f2);
  CHECK_PASSED();
  CHECK(tag1 != tag2);
  EXPECT_EVENTS(q, NULL, 0);
  CHECK_STATUS(asyncrt_hostq_waker(q, tag1, &w), ASYNCRT_EAGAIN); /* not polled yet */

  CHECK_OK(asyncrt_spawn(ex, &f1, 0, &t1));
  CHECK_STATUS(asyncrt_hostq_waker(q, tag1, &w), ASYNCRT_EAGAIN);
  CHECK_OK(asyncrt_run(ex, &polls));
  CHECK_INT(polls, 1);
  CHECK_OK(asyncrt_spawn(ex, &f2, 0, &t2));
  CHECK_OK(asyncrt_run(ex, &polls));
  CHECK_INT(polls, 1);
  want[0] = POLL_OF(tag1);
  want[1] = POLL_OF(tag2);
  EXPECT_EVENTS(q, want, 2);
  EXPECT_EVENTS(q, NULL, 0); /* taken means gone */
  CHECK_PASSED();
  CHECK_STATUS(asyncrt_task_status(t1), ASYNCRT_EAGAIN);

  /* wake: the task is polled again, which the host sees as a new POLL */
  CHECK_OK(asyncrt_hostq_wake(q, &tag2, 1));
  CHECK_OK(asyncrt_run(ex, &polls));
  CHECK_INT(polls, 1);
  CHECK_OK(asyncrt_hostq_wake(q, &tag1, 1));
  CHECK_OK(asyncrt_run(ex, &polls));
  CHECK_INT(polls, 1);
  want[0] = POLL_OF(tag2);
  want[1] = POLL_OF(tag1);
  EXPECT_EVENTS(q, want, 2);

  /* the waker of a polled future, for other threads */
  CHECK_OK(asyncrt_hostq_waker(q, tag1, &w));
  CHECK(w.vtable != NULL);
  asyncrt_waker_wake_by_ref(&w);
  CHECK_OK(asyncrt_run(ex, &polls));
  CHECK_INT(polls, 1);
  want[0] = POLL_OF(tag1);
  EXPECT_EVENTS(q, want, 1);

  /* complete: READY at the next poll (no POLL event), then DROP */
  CHECK_OK(asyncrt_hostq_complete(q, &tag1, NULL, 1));
  CHECK_OK(asyncrt_run(ex, &polls));
  CHECK_INT(polls, 1); /* complete woke the task */
  CHECK_OK(asyncrt_task_status(t1));
  want[0] = DROP_OF(tag1);
  EXPECT_EVENTS(q, want, 1);

  /* complete with a status: POLL_ERROR with that status */
  status = 1005;
  CHECK_OK(asyncrt_hostq_complete(q, &tag2, &status, 1));
  CHECK_OK(asyncrt_run(ex, &polls));
  CHECK_INT(polls, 1);
  CHECK_STATUS(asyncrt_task_status(t2), 1005);
  want[0] = DROP_OF(tag2);
  EXPECT_EVENTS(q, want, 1);

  /* dropped and unknown tags are skipped */
  CHECK_OK(asyncrt_hostq_complete(q, &tag1, NULL, 1));
  CHECK_OK(asyncrt_hostq_wake(q, &tag2, 1));
  want[0] = 0x3fff12345ull;
  CHECK_OK(asyncrt_hostq_complete(q, want, NULL, 1));
  CHECK_OK(asyncrt_hostq_wake(q, want, 1));
  CHECK_OK(asyncrt_run(ex, &polls));
  CHECK_INT(polls, 0);
  EXPECT_EVENTS(q, NULL, 0);
  asyncrt_waker_wake_by_ref(&w); /* the waker outlives its future harmlessly */
  asyncrt_waker_drop(&w);

  CHECK_OK(asyncrt_task_release(t1));
  CHECK_OK(asyncrt_task_release(t2));
  CHECK_OK(asyncrt_hostq_free(q));
  CHECK_OK(asyncrt_executor_free(ex));
}

static void test_complete_before_first_poll(void) {
  asyncrt_executor *ex = tf_executor();
  asyncrt_hostq *q = NULL;
  asyncrt_future f;
  asyncrt_task *task = NULL;
  uint64_t tag, polls = 0, want[1];
  CHECK(ex != NULL);
  CHECK_OK(asyncrt_hostq_new(ex, &q));
  new_host_future(q, &tag, &f);
  CHECK_PASSED();
  CHECK_OK(asyncrt_hostq_complete(q, &tag, NULL, 1));
  CHECK_OK(asyncrt_spawn(ex, &f, 0, &task));
  CHECK_OK(asyncrt_run(ex, &polls));
  CHECK_INT(polls, 1);
  CHECK_OK(asyncrt_task_status(task));
  want[0] = DROP_OF(tag);
  EXPECT_EVENTS(q, want, 1);
  CHECK_OK(asyncrt_task_release(task));
  CHECK_OK(asyncrt_hostq_free(q));
  CHECK_OK(asyncrt_executor_free(ex));
}

static void test_drop_events(void) {
  asyncrt_executor *ex = tf_executor();
  asyncrt_hostq *q = NULL;
  asyncrt_future unspawned, cancelled, orphan;
  asyncrt_task *task = NULL;
  uint64_t t_unspawned, t_cancelled, t_orphan, want[3];
  CHECK(ex != NULL);
  CHECK_OK(asyncrt_hostq_new(ex, &q));
  new_host_future(q, &t_unspawned, &unspawned);
  new_host_future(q, &t_cancelled, &cancelled);
  new_host_future(q, &t_orphan, &orphan);
  CHECK_PASSED();

  /* dropped by its owner without ever running */
  unspawned.vtable->drop(unspawned.self);
  want[0] = DROP_OF(t_unspawned);
  EXPECT_EVENTS(q, want, 1);

  /* cancelled after a poll */
  CHECK_OK(asyncrt_spawn(ex, &cancelled, 0, &task));
  CHECK_OK(asyncrt_run(ex, NULL));
  want[0] = POLL_OF(t_cancelled);
  EXPECT_EVENTS(q, want, 1);
  CHECK_OK(asyncrt_task_cancel(task));
  CHECK_OK(asyncrt_run(ex, NULL));
  CHECK_STATUS(asyncrt_task_status(task), ASYNCRT_ECANCELLED);
  want[0] = DROP_OF(t_cancelled);
  EXPECT_EVENTS(q, want, 1);

  /* dropped when its executor is freed; the queue outlives the executor */
  CHECK_OK(asyncrt_spawn(ex, &orphan, 0, NULL));
  CHECK_OK(asyncrt_executor_free(ex));
  want[0] = DROP_OF(t_orphan);
  EXPECT_EVENTS(q, want, 1);
  CHECK_OK(asyncrt_task_release(task));
  CHECK_OK(asyncrt_hostq_free(q));
}

/* The header says a future has at most one POLL event pending: a second poll
 * before the host takes the first adds nothing. */
static void test_pending_polls_merge(void) {
  asyncrt_executor *ex = tf_executor();
  asyncrt_hostq *q = NULL;
  asyncrt_future f;
  uint64_t tag, want[1];
  CHECK(ex != NULL);
  CHECK_OK(asyncrt_hostq_new(ex, &q));
  new_host_future(q, &tag, &f);
  CHECK_PASSED();
  CHECK_OK(asyncrt_spawn(ex, &f, 0, NULL));
  CHECK_OK(asyncrt_run(ex, NULL));
  CHECK_OK(asyncrt_hostq_wake(q, &tag, 1));
  CHECK_OK(asyncrt_run(ex, NULL));
  want[0] = POLL_OF(tag);
  EXPECT_EVENTS(q, want, 1);
  CHECK_OK(asyncrt_executor_free(ex));
  CHECK_OK(asyncrt_hostq_free(q));
}

/* ... and a POLL event whose future was dropped before the host took it is
 * skipped: the host must never poll a future the runtime has dropped. */
static void test_poll_event_of_dropped_future_is_skipped(void) {
  asyncrt_executor *ex = tf_executor();
  asyncrt_hostq *q = NULL;
  asyncrt_future f;
  asyncrt_task *task = NULL;
  uint64_t tag, want[1];
  CHECK(ex != NULL);
  CHECK_OK(asyncrt_hostq_new(ex, &q));
  new_host_future(q, &tag, &f);
  CHECK_PASSED();
  CHECK_OK(asyncrt_spawn(ex, &f, 0, &task));
  CHECK_OK(asyncrt_run(ex, NULL));
  CHECK_OK(asyncrt_task_cancel(task));
  CHECK_OK(asyncrt_run(ex, NULL));
  want[0] = DROP_OF(tag);
  EXPECT_EVENTS(q, want, 1);
  CHECK_OK(asyncrt_task_release(task));
  CHECK_OK(asyncrt_executor_free(ex));
  CHECK_OK(asyncrt_hostq_free(q));
}

static void test_take_in_small_batches(void) {
  enum { N = 5, MANY = 300 };
  asyncrt_executor *ex = tf_executor();
  asyncrt_hostq *q = NULL;
  asyncrt_future f;
  uint64_t tags[MANY], events[64], seen[MANY];
  size_t count = 0, i, j, total;
  CHECK(ex != NULL);
  CHECK_OK(asyncrt_hostq_new(ex, &q));
  for (i = 0; i < N; i++) {
    new_host_future(q, &tags[i], &f);
    CHECK_PASSED();
    CHECK_OK(asyncrt_spawn(ex, &f, 0, NULL));
    CHECK_OK(asyncrt_run(ex, NULL)); /* one at a time: the order is known */
  }
  CHECK_OK(asyncrt_hostq_take(q, events, 2, &count));
  CHECK_INT(count, 2);
  CHECK_INT(events[0], POLL_OF(tags[0]));
  CHECK_INT(events[1], POLL_OF(tags[1]));
  CHECK_OK(asyncrt_hostq_take(q, events, 0, &count));
  CHECK_INT(count, 0);
  CHECK_OK(asyncrt_hostq_take(q, events, 2, &count));
  CHECK_INT(count, 2);
  CHECK_INT(events[0], POLL_OF(tags[2]));
  CHECK_INT(events[1], POLL_OF(tags[3]));
  CHECK_OK(asyncrt_hostq_take(q, events, 2, &count));
  CHECK_INT(count, 1);
  CHECK_INT(events[0], POLL_OF(tags[4]));
  CHECK_OK(asyncrt_hostq_take(q, events, 2, &count));
  CHECK_INT(count, 0);

  /* many at once: every tag exactly once */
  for (i = 0; i < MANY; i++) {
    new_host_future(q, &tags[i], &f);
    CHECK_PASSED();
    CHECK_OK(asyncrt_spawn(ex, &f, 0, NULL));
    seen[i] = 0;
  }
  CHECK_OK(asyncrt_run(ex, NULL));
  total = 0;
  do {
    CHECK_OK(asyncrt_hostq_take(q, events, 64, &count));
    CHECK(count <= 64);
    for (j = 0; j < count; j++) {
      CHECK_INT(events[j] & ASYNCRT_HOSTQ_KIND_MASK, ASYNCRT_HOSTQ_POLL);
      for (i = 0; i < MANY && tags[i] != (events[j] & ASYNCRT_HOSTQ_TAG_MASK); i++) {
      }
      CHECK(i < MANY);
      seen[i]++;
    }
    total += count;
  } while (count > 0 && total <= MANY);
  CHECK_INT(total, MANY);
  for (i = 0; i < MANY; i++) {
    CHECK_INT(seen[i], 1);
  }
  CHECK_OK(asyncrt_hostq_complete(q, tags, NULL, MANY));
  CHECK_OK(asyncrt_run(ex, NULL));
  total = 0;
  do {
    CHECK_OK(asyncrt_hostq_take(q, events, 64, &count));
    for (j = 0; j < count; j++) {
      CHECK_INT(events[j] & ASYNCRT_HOSTQ_KIND_MASK, ASYNCRT_HOSTQ_DROP);
    }
    total += count;
  } while (count > 0 && total <= MANY);
  CHECK_INT(total, MANY);
  CHECK_OK(asyncrt_hostq_free(q));
  CHECK_OK(asyncrt_executor_free(ex));
}

static void test_freed_queue_fails_its_futures(void) {
  asyncrt_executor *ex = tf_executor();
  asyncrt_hostq *q = NULL;
  asyncrt_future f;
  asyncrt_task *task = NULL;
  asyncrt_waker w;
  uint64_t tag, polls = 0;
  CHECK(ex != NULL);
  CHECK_OK(asyncrt_hostq_new(ex, &q));
  new_host_future(q, &tag, &f);
  CHECK_PASSED();
  CHECK_OK(asyncrt_spawn(ex, &f, 0, &task));
  CHECK_OK(asyncrt_run(ex, NULL));
  CHECK_OK(asyncrt_hostq_waker(q, tag, &w));
  CHECK_OK(asyncrt_hostq_free(q));
  asyncrt_waker_wake(&w);
  CHECK_OK(asyncrt_run(ex, &polls));
  CHECK_INT(polls, 1);
  CHECK_STATUS(asyncrt_task_status(task), ASYNCRT_ESHUTDOWN);
  CHECK_OK(asyncrt_task_release(task));
  CHECK_OK(asyncrt_executor_free(ex));
}

int main(void) {
  CHECK_BEGIN();
  RUN(test_poll_complete_drop);
  RUN(test_complete_before_first_poll);
  RUN(test_drop_events);
  RUN(test_pending_polls_merge);
  RUN(test_poll_event_of_dropped_future_is_skipped);
  RUN(test_take_in_small_batches);
  RUN(test_freed_queue_fails_its_futures);
  return CHECK_END("hostq");
}
