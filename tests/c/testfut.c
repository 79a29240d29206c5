/* testfut.c -- see testfut.h. */
#include "testfut.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

int tf_get(const int *counter) { return __atomic_load_n(counter, __ATOMIC_ACQUIRE); }
void tf_set(int *counter, int value) { __atomic_store_n(counter, value, __ATOMIC_RELEASE); }
int tf_add(int *counter, int delta) { return __atomic_add_fetch(counter, delta, __ATOMIC_ACQ_REL); }

static void tf_write_output(tf_state *st, void *out, uint64_t v) {
  if (st->has_output && out != NULL) {
    memcpy(out, &v, sizeof v);
  }
}

static int tf_finish(tf_state *st, int result) {
  tf_set(&st->finished, 1);
  return result;
}

static int tf_poll(void *self, asyncrt_context *cx, void *out) {
  tf_state *st = self;
  int hooked;
  if (tf_get(&st->finished) || tf_get(&st->drops)) {
    tf_add(&st->bad_polls, 1);
  }
  tf_add(&st->polls, 1);
  st->poll_thread = pthread_self();
  st->executor = asyncrt_context_executor(cx);
  if (st->hook != NULL && (hooked = st->hook(st, cx, out)) != TF_CONTINUE) {
    if (hooked == ASYNCRT_POLL_READY || hooked == ASYNCRT_POLL_ERROR) {
      return tf_finish(st, hooked);
    }
    return hooked;
  }
  if (st->yields > 0) {
    st->yields--;
    tf_write_output(st, out, (uint64_t)tf_get(&st->polls));
    return ASYNCRT_POLL_YIELDED;
  }
  if (st->pendings > 0) {
    st->pendings--;
    if (st->park) {
      asyncrt_waker_drop(&st->parked);
      asyncrt_waker_clone(asyncrt_context_waker(cx), &st->parked);
      tf_set(&st->parked_flag, 1);
    } else {
      asyncrt_waker_wake_by_ref(asyncrt_context_waker(cx));
    }
    return ASYNCRT_POLL_PENDING;
  }
  if (st->fail != 0) {
    if (st->fail != TF_FAIL_UNNAMED) {
      asyncrt_context_fail(cx, st->fail);
    }
    return tf_finish(st, ASYNCRT_POLL_ERROR);
  }
  tf_write_output(st, out, st->value);
  return tf_finish(st, ASYNCRT_POLL_READY);
}

static void tf_drop(void *self) {
  tf_state *st = self;
  st->drop_thread = pthread_self();
  asyncrt_waker_drop(&st->parked);
  tf_add(&st->drops, 1);
}

const asyncrt_future_vtable tf_vtable_u64 = {sizeof(asyncrt_future_vtable), sizeof(uint64_t),
                                             tf_poll, tf_drop, NULL};
const asyncrt_future_vtable tf_vtable_void = {sizeof(asyncrt_future_vtable), 0, tf_poll, tf_drop,
                                              NULL};

void tf_init(tf_state *st) { memset(st, 0, sizeof *st); }

asyncrt_future tf_future(tf_state *st) {
  asyncrt_future f;
  st->has_output = 1;
  f.self = st;
  f.vtable = &tf_vtable_u64;
  return f;
}

asyncrt_future tf_future_void(tf_state *st) {
  asyncrt_future f;
  st->has_output = 0;
  f.self = st;
  f.vtable = &tf_vtable_void;
  return f;
}

static void tf_joiner_drop_child(tf_joiner *j) {
  if (j->child_live) {
    j->child_live = 0;
    if (j->child.vtable->drop != NULL) {
      j->child.vtable->drop(j->child.self);
    }
  }
}

static int tf_joiner_poll(void *self, asyncrt_context *cx, void *out) {
  tf_joiner *j = self;
  void *child_out = j->child.vtable->output_size ? &j->got : NULL;
  int r;
  j->polls++;
  j->poll_thread = pthread_self();
  if (j->direct) {
    r = j->child.vtable->poll(j->child.self, cx, child_out);
  } else {
    r = asyncrt_poll_with_waker(&j->child, asyncrt_context_waker(cx), child_out,
                                &j->child_failure);
  }
  if (r == ASYNCRT_POLL_PENDING) {
    return ASYNCRT_POLL_PENDING;
  }
  if (r == ASYNCRT_POLL_YIELDED) { /* a join future never yields; poll again */
    asyncrt_waker_wake_by_ref(asyncrt_context_waker(cx));
    return ASYNCRT_POLL_PENDING;
  }
  j->child_result = r;
  tf_joiner_drop_child(j);
  if (r == ASYNCRT_POLL_ERROR && j->direct) {
    return ASYNCRT_POLL_ERROR; /* the child named its failure on our context */
  }
  memcpy(out, &j->got, sizeof j->got);
  return ASYNCRT_POLL_READY;
}

static void tf_joiner_drop(void *self) {
  tf_joiner *j = self;
  tf_joiner_drop_child(j);
  j->drops++;
}

static const asyncrt_future_vtable tf_joiner_vtable = {
    sizeof(asyncrt_future_vtable), sizeof(uint64_t), tf_joiner_poll, tf_joiner_drop, NULL};

void tf_joiner_init(tf_joiner *j, const asyncrt_future *child, int direct) {
  memset(j, 0, sizeof *j);
  j->child = *child;
  j->child_live = 1;
  j->direct = direct;
  j->child_result = -1;
}

asyncrt_future tf_joiner_future(tf_joiner *j) {
  asyncrt_future f;
  f.self = j;
  f.vtable = &tf_joiner_vtable;
  return f;
}

void tf_ping_init(tf_ping *p, int rounds) {
  memset(p, 0, sizeof *p);
  p->rounds = rounds;
}

static int tf_ping_poll(void *self, asyncrt_context *cx, void *out) {
  tf_ping *p = self;
  int r;
  (void)out;
  if (tf_add(&p->polls, 1) == 1) {
    p->first_thread = pthread_self();
  } else if (!pthread_equal(p->first_thread, pthread_self())) {
    tf_add(&p->moved, 1);
  }
  if (!tf_get(&p->ready)) {
    asyncrt_waker_clone(asyncrt_context_waker(cx), &p->waker);
    tf_set(&p->ready, 1);
  }
  r = tf_get(&p->round);
  if (r > tf_get(&p->acked)) {
    tf_set(&p->acked, r);
  }
  return r >= p->rounds ? ASYNCRT_POLL_READY : ASYNCRT_POLL_PENDING;
}

static void tf_ping_drop(void *self) {
  tf_ping *p = self;
  p->drop_thread = pthread_self();
  tf_add(&p->drops, 1);
}

static const asyncrt_future_vtable tf_ping_vtable = {sizeof(asyncrt_future_vtable), 0,
                                                     tf_ping_poll, tf_ping_drop, NULL};

asyncrt_future tf_ping_future(tf_ping *p) {
  asyncrt_future f;
  f.self = p;
  f.vtable = &tf_ping_vtable;
  return f;
}

void *tf_ping_thread(void *arg) {
  tf_ping *p = arg;
  asyncrt_waker copy;
  int r;
  p->failed_round = 0;
  if (!tf_wait_flag(&p->ready, 5000)) {
    return NULL;
  }
  for (r = 1; r <= p->rounds; r++) {
    tf_set(&p->round, r);
    if (r & 1) {
      asyncrt_waker_wake_by_ref(&p->waker);
    } else {
      asyncrt_waker_clone(&p->waker, &copy);
      asyncrt_waker_wake(&copy);
    }
    if (!tf_wait_at_least(&p->acked, r, 5000)) {
      p->failed_round = r;
      break;
    }
  }
  if (r > p->rounds) {
    p->failed_round = -1;
  }
  asyncrt_waker_wake_by_ref(&p->waker); /* the task is done (or about to be): a no-op */
  asyncrt_waker_drop(&p->waker);
  return NULL;
}

int64_t tf_now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * TF_SECOND_NS + ts.tv_nsec;
}

void tf_sleep_ms(int ms) {
  struct timespec ts;
  ts.tv_sec = ms / 1000;
  ts.tv_nsec = (long)(ms % 1000) * TF_MS_NS;
  nanosleep(&ts, NULL);
}

int tf_wait_flag(const int *flag, int timeout_ms) {
  int64_t deadline = tf_now_ns() + (int64_t)timeout_ms * TF_MS_NS;
  while (!tf_get(flag) && tf_now_ns() < deadline) {
    tf_sleep_ms(1);
  }
  return tf_get(flag);
}

int tf_wait_at_least(const int *counter, int want, int timeout_ms) {
  int64_t deadline = tf_now_ns() + (int64_t)timeout_ms * TF_MS_NS;
  struct timespec pause = {0, 50000};
  while (tf_get(counter) < want) {
    if (tf_now_ns() >= deadline) {
      return 0;
    }
    nanosleep(&pause, NULL);
  }
  return 1;
}

asyncrt_executor *tf_executor(void) {
  asyncrt_executor *ex = NULL;
  int rc = asyncrt_executor_new(NULL, &ex);
  if (rc != ASYNCRT_OK) {
    fprintf(stderr, "  asyncrt_executor_new: got %s, want ASYNCRT_OK (%s)\n",
            asyncrt_status_str(rc), asyncrt_last_error());
    return NULL;
  }
  return ex;
}

asyncrt_executor_stats tf_stats(asyncrt_executor *ex) {
  asyncrt_executor_stats s;
  memset(&s, 0xff, sizeof s);
  s.size = sizeof s;
  if (asyncrt_executor_stats_get(ex, &s) != ASYNCRT_OK) {
    memset(&s, 0xff, sizeof s);
  }
  return s;
}
