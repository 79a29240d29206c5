/*
 * test_idle.c -- what an idle executor must not miss: a subsystem fd that
 * turns readable while another subsystem is heavier, a timer "never" due
 * beside a bounded block_on, an fd registered twice, a host polling the
 * executor's fd, and a foreign host dropping a woken task with an op in
 * flight. Each was a lost wake-up or a loop found in review; every wait
 * here is bounded and a miss shows up as a timeout status, not a hang.
 */
#include <stdint.h>
#include <stdlib.h>

#include "check.h" /* first: it sets _POSIX_C_SOURCE */
#include "testfut.h"

#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

/* A subsystem on an eventfd: poll reads it and, if it was readable,
 * completes every op; cancel completes the op at once. */
typedef struct fdsub {
  int fd;
  int polls;
  int cancels;
} fdsub;

static int fds_poll(void *u, asyncrt_subsystem_cx *scx, uint32_t budget) {
  fdsub *s = u;
  uint64_t count;
  (void)budget;
  s->polls++;
  if (s->fd >= 0 && read(s->fd, &count, sizeof count) == (ssize_t)sizeof count)
    return (int)asyncrt_subsystem_cx_complete_all(scx, ASYNCRT_OK, 0);
  return 0;
}

static void fds_cancel(void *u, asyncrt_subsystem_cx *scx, asyncrt_op *op) {
  (void)scx;
  ((fdsub *)u)->cancels++;
  asyncrt_op_complete(op, ASYNCRT_ECANCELLED, 0);
}

static const asyncrt_subsystem_vtable fds_vtable = {
    sizeof(asyncrt_subsystem_vtable), fds_poll, NULL, fds_cancel, NULL, NULL};

static int fds_register(asyncrt_executor *ex, fdsub *s, int fd, unsigned priority, asyncrt_subsystem **h) {
  asyncrt_subsystem_config c;
  asyncrt_subsystem_config_init(&c);
  c.vtable = &fds_vtable;
  c.user_data = s;
  c.priority = priority;
  c.fd = fd;
  return asyncrt_subsystem_register(ex, &c, h);
}

/* A future that awaits one op as a future. */
typedef struct waiter {
  asyncrt_op op;
  asyncrt_op_future_state st;
  asyncrt_future f;
} waiter;

static asyncrt_future *waiter_on(waiter *w, asyncrt_subsystem *sub) {
  memset(w, 0, sizeof *w);
  asyncrt_op_future(&w->st, &w->op, sub, &w->f);
  return &w->f;
}

static void *write_later(void *arg) {
  uint64_t one = 1;
  tf_sleep_ms(50);
  if (write(*(int *)arg, &one, sizeof one) != (ssize_t)sizeof one) perror("write");
  return NULL;
}

static asyncrt_executor *local(void) {
  asyncrt_executor *ex = NULL;
  return asyncrt_executor_new(NULL, &ex) == ASYNCRT_OK ? ex : NULL;
}

/* The edge of B's fd wakes the sleeping driver; the tick after it must poll
 * B, not the much heavier A that the round robin would pick. */
static void test_readable_fd_is_polled_though_another_weighs_more(void) {
  asyncrt_executor *ex = local();
  int fda = eventfd(0, EFD_NONBLOCK), fdb = eventfd(0, EFD_NONBLOCK);
  fdsub a = {fda, 0, 0}, b = {fdb, 0, 0};
  asyncrt_subsystem *ha = NULL, *hb = NULL;
  waiter heavy[4], root;
  pthread_t th;
  int i;
  CHECK(ex != NULL && fda >= 0 && fdb >= 0);
  CHECK_OK(fds_register(ex, &a, fda, 1000, &ha));
  CHECK_OK(fds_register(ex, &b, fdb, 1, &hb));
  for (i = 0; i < 4; i++) CHECK_OK(asyncrt_spawn(ex, waiter_on(&heavy[i], ha), 0, NULL));
  CHECK_INT(pthread_create(&th, NULL, write_later, &fdb), 0);
  /* A lost edge would leave block_on asleep until its bound: ETIMEDOUT. */
  CHECK_OK(asyncrt_block_on(ex, waiter_on(&root, hb), NULL, TF_TIMEOUT_NS));
  CHECK_INT(pthread_join(th, NULL), 0);
  CHECK(b.polls >= 1);
  CHECK_OK(asyncrt_executor_free(ex));
  close(fda);
  close(fdb);
}

/* A second registration of the same fd is refused, and must not take the
 * first one's watch with it. */
static void test_refused_duplicate_fd_keeps_the_first_watch(void) {
  asyncrt_executor *ex = local();
  int fd = eventfd(0, EFD_NONBLOCK);
  fdsub a = {fd, 0, 0}, b = {fd, 0, 0};
  asyncrt_subsystem *ha = NULL, *hb = NULL;
  waiter root;
  pthread_t th;
  CHECK(ex != NULL && fd >= 0);
  CHECK_OK(fds_register(ex, &a, fd, 1, &ha));
  CHECK_STATUS(fds_register(ex, &b, fd, 1, &hb), ASYNCRT_EINVAL);
  CHECK_INT(pthread_create(&th, NULL, write_later, &fd), 0);
  CHECK_OK(asyncrt_block_on(ex, waiter_on(&root, ha), NULL, TF_TIMEOUT_NS));
  CHECK_INT(pthread_join(th, NULL), 0);
  CHECK_OK(asyncrt_executor_free(ex));
  close(fd);
}

/* A host polling the executor's fd: a readable subsystem fd with nobody
 * waiting may make it readable once, not for ever. */
static void test_host_fd_settles_with_an_unwaited_readable_fd(void) {
  asyncrt_executor *ex = local();
  int efd = -1, fd = eventfd(0, EFD_NONBLOCK), readable = 0, i;
  fdsub a = {fd, 0, 0};
  asyncrt_subsystem *h = NULL;
  uint64_t one = 1, polls;
  CHECK(ex != NULL && fd >= 0);
  CHECK_OK(asyncrt_executor_fd(ex, &efd));
  CHECK_OK(fds_register(ex, &a, fd, 1, &h));
  CHECK_INT(write(fd, &one, sizeof one), (ssize_t)sizeof one);
  for (i = 0; i < 100; i++) {
    struct pollfd p = {efd, POLLIN, 0};
    readable += poll(&p, 1, 0) == 1;
    CHECK_OK(asyncrt_run_step(ex, 64, 0, &polls));
  }
  CHECK(readable <= 2);
  CHECK_INT(a.polls, 0); /* never polled without waiters */
  CHECK_OK(asyncrt_executor_free(ex));
  close(fd);
}

/* A timer due at UINT64_MAX ("never") bounds no sleep: block_on's own
 * bound still ends the wait. */
static void test_never_due_timer_leaves_block_on_bounded(void) {
  asyncrt_executor *ex = local();
  asyncrt_sleep s;
  asyncrt_future f;
  CHECK(ex != NULL);
  CHECK_OK(asyncrt_sleep_for(&s, UINT64_MAX, &f));
  CHECK_STATUS(asyncrt_block_on(ex, &f, NULL, 20 * TF_MS_NS), ASYNCRT_ETIMEDOUT);
  CHECK_OK(asyncrt_executor_free(ex));
}

/* Foreign executor: a woken task with an op in flight, dropped by the host
 * with asyncrt_runnable_drop, is not rescheduled for ever; its future is
 * dropped once, after the op's cancellation completes at the next tick. */
#define QN 64
static asyncrt_runnable *queue[QN];
static int qhead, qtail;
static void schedule(void *u, asyncrt_runnable *r) {
  (void)u;
  queue[qtail++ % QN] = r;
}
static asyncrt_runnable *pop(void) { return qhead == qtail ? NULL : queue[qhead++ % QN]; }

typedef struct held {
  waiter w;
  asyncrt_waker waker;
  int drops;
} held;
static int held_poll(void *self, asyncrt_context *cx, void *out) {
  held *h = self;
  if (!h->waker.vtable) asyncrt_waker_clone(asyncrt_context_waker(cx), &h->waker);
  return h->w.f.vtable->poll(h->w.f.self, cx, out);
}
static void held_drop(void *self) {
  held *h = self;
  h->drops++;
  h->w.f.vtable->drop(h->w.f.self);
}
static const asyncrt_future_vtable held_vtable = {sizeof(asyncrt_future_vtable), 0, held_poll, held_drop, NULL};

static void test_foreign_drop_of_a_woken_task_with_an_op(void) {
  asyncrt_foreign_vtable fv = {sizeof fv, schedule, NULL};
  asyncrt_executor *ex = NULL;
  fdsub s = {-1, 0, 0};
  asyncrt_subsystem *h = NULL;
  held t;
  asyncrt_future f;
  asyncrt_runnable *r;
  int drops = 0;
  CHECK_OK(asyncrt_executor_new_foreign(&fv, NULL, &ex));
  CHECK_OK(fds_register(ex, &s, -1, 1, &h));
  memset(&t, 0, sizeof t);
  waiter_on(&t.w, h);
  f.self = &t;
  f.vtable = &held_vtable;
  CHECK_OK(asyncrt_spawn(ex, &f, 0, NULL));
  while ((r = pop())) CHECK_OK(asyncrt_runnable_run(r));
  CHECK(!asyncrt_op_done(&t.w.op));
  asyncrt_waker_wake_by_ref(&t.waker); /* queued */
  asyncrt_waker_wake_by_ref(&t.waker); /* and notified */
  while (drops < 1000 && (r = pop())) {
    CHECK_OK(asyncrt_runnable_drop(r));
    drops++;
  }
  CHECK(drops < 1000);   /* the queue emptied */
  CHECK_INT(t.drops, 0); /* not while its op is in flight */
  CHECK_OK(asyncrt_executor_tick(ex, NULL, NULL)); /* sends the cancellation: completed at once */
  while ((r = pop())) CHECK_OK(asyncrt_runnable_drop(r));
  CHECK_INT(s.cancels, 1);
  CHECK_INT(t.drops, 1);
  asyncrt_waker_drop(&t.waker);
  CHECK_OK(asyncrt_executor_free(ex));
}

int main(void) {
  CHECK_BEGIN();
  RUN(test_readable_fd_is_polled_though_another_weighs_more);
  RUN(test_refused_duplicate_fd_keeps_the_first_watch);
  RUN(test_host_fd_settles_with_an_unwaited_readable_fd);
  RUN(test_never_due_timer_leaves_block_on_bounded);
  RUN(test_foreign_drop_of_a_woken_task_with_an_op);
  CHECK_END("idle");
}
