/* Channels: every kind (mpsc bounded and unbounded, oneshot, broadcast,
 * watch), the try_send / try_recv statuses, closing from either side, the
 * FIFO of blocked senders, dropped send and receive futures, value_drop,
 * the future and _poll forms, misuse, LOCAL channels, and traffic between
 * threads.
 *
 * The single-thread tests poll futures by hand (asyncrt_poll_with_waker
 * with a counting waker) or run tasks on a local executor with asyncrt_run,
 * so every outcome -- which value, which status, which waker was woken --
 * follows from the header and is checked exactly. The cross-thread tests
 * check that every value arrives exactly once and in order per sender; they
 * wait through block_on timeouts only, and keep what workers touch on the
 * heap (leaked when a CHECK fails). */
#include "check.h" /* first: it sets _POSIX_C_SOURCE */
#include "testfut.h"

#include <sched.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* --- a counting waker ------------------------------------------------------------ */

typedef struct cw {
  int clones, wakes, wake_refs, drops;
} cw;

static void cw_clone(const void *data, asyncrt_waker *out);
static void cw_wake(const void *data) { tf_add(&((cw *)data)->wakes, 1); }
static void cw_wake_by_ref(const void *data) { tf_add(&((cw *)data)->wake_refs, 1); }
static void cw_drop(const void *data) { tf_add(&((cw *)data)->drops, 1); }
static const asyncrt_waker_vtable cw_vtable = {cw_clone, cw_wake, cw_wake_by_ref, cw_drop};
static void cw_clone(const void *data, asyncrt_waker *out) {
  tf_add(&((cw *)data)->clones, 1);
  out->data = data;
  out->vtable = &cw_vtable;
}

/** Times it was woken (consuming or by reference). */
static int cw_woken(cw *w) { return tf_get(&w->wakes) + tf_get(&w->wake_refs); }
/** Clones the library still holds (each clone ends in one wake or one drop). */
static int cw_held(cw *w) { return tf_get(&w->clones) - tf_get(&w->wakes) - tf_get(&w->drops); }

/* Polls f once outside any executor with w as its waker. */
static int poll_with(asyncrt_future *f, cw *w, void *out, int *failure) {
  asyncrt_waker k;
  k.data = w;
  k.vtable = &cw_vtable;
  *failure = 0;
  return asyncrt_poll_with_waker(f, &k, out, failure);
}

static void drop_fut(asyncrt_future *f) {
  if (f->vtable->drop != NULL) {
    f->vtable->drop(f->self);
  }
}

/* --- channels and values ----------------------------------------------------------- */

static int chan_new(unsigned kind, size_t capacity, unsigned flags, asyncrt_sender **tx, asyncrt_receiver **rx) {
  asyncrt_channel_config cfg;
  asyncrt_channel_config_init(&cfg);
  cfg.kind = kind;
  cfg.capacity = capacity;
  cfg.flags = flags;
  return asyncrt_channel_new(&cfg, tx, rx);
}

#define SEND_OK(tx, v)                                                                             \
  do {                                                                                             \
    uint64_t sv_ = (uint64_t)(v);                                                                  \
    CHECK_OK(asyncrt_try_send((tx), &sv_));                                                        \
  } while (0)

#define SEND_IS(tx, v, status)                                                                     \
  do {                                                                                             \
    uint64_t sv_ = (uint64_t)(v);                                                                  \
    CHECK_STATUS(asyncrt_try_send((tx), &sv_), (status));                                          \
  } while (0)

#define RECV_IS(rx, want)                                                                          \
  do {                                                                                             \
    uint64_t rv_ = 0xdeadbeef;                                                                     \
    CHECK_OK(asyncrt_try_recv((rx), &rv_));                                                        \
    CHECK_INT(rv_, (want));                                                                        \
  } while (0)

/* A receive that fails with `status` and leaves out untouched. */
#define RECV_FAILS(rx, status)                                                                     \
  do {                                                                                             \
    uint64_t rv_ = 0xdeadbeef;                                                                     \
    CHECK_STATUS(asyncrt_try_recv((rx), &rv_), (status));                                          \
    CHECK_INT(rv_, 0xdeadbeef);                                                                    \
  } while (0)

#define LEN_IS(rx, want)                                                                           \
  do {                                                                                             \
    size_t len_ = 999;                                                                             \
    CHECK_OK(asyncrt_channel_len((rx), &len_));                                                    \
    CHECK_INT(len_, (want));                                                                       \
  } while (0)

/* --- one send or receive at a time, in either form, from inside a poll --------------- */

typedef struct chan_io {
  int poll_form; /* 1: asyncrt_send_poll / asyncrt_recv_poll; 0: the futures */
  asyncrt_sender *tx;
  asyncrt_receiver *rx;
  asyncrt_chan_op op;
  asyncrt_future fut;
  int live; /* a send or receive is pending on op */
} chan_io;

static int io_send(chan_io *io, asyncrt_context *cx, const uint64_t *value) {
  int r, rc;
  if (io->poll_form) {
    r = asyncrt_send_poll(io->tx, value, cx, &io->op);
    io->live = r == ASYNCRT_POLL_PENDING;
    return r;
  }
  if (!io->live) {
    if ((rc = asyncrt_send(io->tx, value, &io->op, &io->fut)) != ASYNCRT_OK) {
      asyncrt_context_fail(cx, rc);
      return ASYNCRT_POLL_ERROR;
    }
    io->live = 1;
  }
  r = io->fut.vtable->poll(io->fut.self, cx, NULL);
  if (r != ASYNCRT_POLL_PENDING) {
    drop_fut(&io->fut);
    io->live = 0;
  }
  return r;
}

static int io_recv(chan_io *io, asyncrt_context *cx, uint64_t *out) {
  int r, rc;
  if (io->poll_form) {
    r = asyncrt_recv_poll(io->rx, out, cx, &io->op);
    io->live = r == ASYNCRT_POLL_PENDING;
    return r;
  }
  if (!io->live) {
    if ((rc = asyncrt_recv(io->rx, &io->op, &io->fut)) != ASYNCRT_OK) {
      asyncrt_context_fail(cx, rc);
      return ASYNCRT_POLL_ERROR;
    }
    io->live = 1;
  }
  r = io->fut.vtable->poll(io->fut.self, cx, out);
  if (r != ASYNCRT_POLL_PENDING) {
    drop_fut(&io->fut);
    io->live = 0;
  }
  return r;
}

/* Withdraws a pending send or receive. */
static void io_drop(chan_io *io) {
  if (!io->live) {
    return;
  }
  if (io->poll_form) {
    asyncrt_chan_op_cancel(&io->op);
  } else {
    drop_fut(&io->fut);
  }
  io->live = 0;
}

/* --- a task that sends `count` values, or receives them -------------------------------- */

#define CT_UNTIL_CLOSED (-1)

typedef struct chan_task {
  chan_io io;
  int is_send;
  int count;      /* values to send or receive; CT_UNTIL_CLOSED: receive until ECLOSED */
  uint64_t base;  /* a sender sends base, base + 1, ... */
  uint64_t *got;  /* a receiver's values (room for `room`) */
  int room;
  int done;       /* values sent or received */
  int failure;    /* the status that ended it (0: it finished its count) */
  int polls, pendings, drops;
  uint64_t value; /* the value being sent: stays put while the send is pending */
} chan_task;

static int chan_task_poll(void *self, asyncrt_context *cx, void *out) {
  chan_task *t = self;
  int r;
  (void)out;
  t->polls++;
  while (t->count == CT_UNTIL_CLOSED || t->done < t->count) {
    uint64_t v = 0;
    if (t->is_send) {
      if (!t->io.live) {
        t->value = t->base + (uint64_t)t->done;
      }
      r = io_send(&t->io, cx, &t->value);
    } else {
      r = io_recv(&t->io, cx, &v);
    }
    if (r == ASYNCRT_POLL_PENDING) {
      t->pendings++;
      return r;
    }
    if (r == ASYNCRT_POLL_ERROR) {
      t->failure = asyncrt_context_failure(cx);
      if (t->count == CT_UNTIL_CLOSED && t->failure == ASYNCRT_ECLOSED) {
        return ASYNCRT_POLL_READY;
      }
      return r;
    }
    if (!t->is_send) {
      if (t->done >= t->room) {
        asyncrt_context_fail(cx, ASYNCRT_EINVAL); /* more values than were sent */
        return ASYNCRT_POLL_ERROR;
      }
      t->got[t->done] = v;
    }
    t->done++;
  }
  return ASYNCRT_POLL_READY;
}

static void chan_task_drop(void *self) {
  chan_task *t = self;
  io_drop(&t->io);
  t->drops++;
}

static const asyncrt_future_vtable chan_task_vtable = {sizeof(asyncrt_future_vtable), 0, chan_task_poll,
                                                       chan_task_drop, NULL};

static void sender_init(chan_task *t, asyncrt_sender *tx, int poll_form, uint64_t base, int count) {
  memset(t, 0, sizeof *t);
  t->io.tx = tx;
  t->io.poll_form = poll_form;
  t->is_send = 1;
  t->base = base;
  t->count = count;
}

static void receiver_init(chan_task *t, asyncrt_receiver *rx, int poll_form, uint64_t *got, int room, int count) {
  memset(t, 0, sizeof *t);
  t->io.rx = rx;
  t->io.poll_form = poll_form;
  t->got = got;
  t->room = room;
  t->count = count;
}

static int spawn_task(asyncrt_executor *ex, chan_task *t, unsigned flags, asyncrt_task **out) {
  asyncrt_future f;
  f.self = t;
  f.vtable = &chan_task_vtable;
  return asyncrt_spawn(ex, &f, flags, out);
}

static asyncrt_executor *executor(unsigned kind, unsigned workers) {
  asyncrt_executor_config cfg;
  asyncrt_executor *ex = NULL;
  int rc;
  asyncrt_executor_config_init(&cfg);
  cfg.kind = kind;
  cfg.workers = workers;
  rc = asyncrt_executor_new(&cfg, &ex);
  if (rc != ASYNCRT_OK) {
    fprintf(stderr, "  asyncrt_executor_new(kind %u, %u workers): got %s (%s)\n", kind, workers,
            asyncrt_status_str(rc), asyncrt_last_error());
    return NULL;
  }
  return ex;
}

/* Awaits a task's end through block_on on `ex` (bounded). */
static int await_task(asyncrt_executor *ex, asyncrt_task *t, int64_t timeout_ns) {
  asyncrt_future join;
  int rc = asyncrt_task_join(t, &join);
  if (rc != ASYNCRT_OK) {
    return rc;
  }
  return asyncrt_block_on(ex, &join, NULL, timeout_ns);
}

/* --- the kinds -------------------------------------------------------------------------- */

/* Capacity 1 and 3: exactly `capacity` try_sends fit, EAGAIN past them, values
 * come out in order, and each receive makes room for one more. */
static void test_mpsc_bounded(void) {
  static const size_t caps[2] = {1, 3};
  size_t c, i;
  for (c = 0; c < 2; c++) {
    asyncrt_sender *tx = NULL;
    asyncrt_receiver *rx = NULL;
    CHECK_OK(chan_new(ASYNCRT_CHANNEL_MPSC, caps[c], 0, &tx, &rx));
    RECV_FAILS(rx, ASYNCRT_EAGAIN);
    for (i = 0; i < caps[c]; i++) {
      SEND_OK(tx, 10 + i);
    }
    LEN_IS(rx, caps[c]);
    SEND_IS(tx, 99, ASYNCRT_EAGAIN);
    SEND_IS(tx, 99, ASYNCRT_EAGAIN);
    LEN_IS(rx, caps[c]);
    /* around the ring several times */
    for (i = 0; i < 5 * caps[c]; i++) {
      RECV_IS(rx, 10 + i);
      SEND_OK(tx, 10 + caps[c] + i);
      SEND_IS(tx, 99, ASYNCRT_EAGAIN);
    }
    for (i = 0; i < caps[c]; i++) {
      RECV_IS(rx, 10 + 5 * caps[c] + i);
    }
    RECV_FAILS(rx, ASYNCRT_EAGAIN);
    LEN_IS(rx, 0);
    CHECK_OK(asyncrt_sender_free(tx));
    CHECK_OK(asyncrt_receiver_free(rx));
  }
}

/* Unbounded: 10,000 values never meet EAGAIN; the ring grows while it wraps
 * (values received from its front first) and keeps the order. */
static void test_mpsc_unbounded_grows(void) {
  asyncrt_sender *tx = NULL;
  asyncrt_receiver *rx = NULL;
  uint64_t next_in = 0, next_out = 0;
  int i;
  CHECK_OK(chan_new(ASYNCRT_CHANNEL_MPSC, 0, 0, &tx, &rx));
  /* move the front off slot 0 so that growth copies a wrapped ring */
  for (i = 0; i < 10; i++) {
    SEND_OK(tx, next_in++);
  }
  for (i = 0; i < 7; i++) {
    RECV_IS(rx, next_out++);
  }
  for (i = 0; i < 10000; i++) {
    SEND_OK(tx, next_in++);
  }
  LEN_IS(rx, 10003);
  for (i = 0; i < 5000; i++) {
    RECV_IS(rx, next_out++);
  }
  for (i = 0; i < 10000; i++) {
    SEND_OK(tx, next_in++);
  }
  while (next_out < next_in) {
    RECV_IS(rx, next_out++);
  }
  RECV_FAILS(rx, ASYNCRT_EAGAIN);
  LEN_IS(rx, 0);
  CHECK_OK(asyncrt_sender_free(tx));
  RECV_FAILS(rx, ASYNCRT_ECLOSED);
  CHECK_OK(asyncrt_receiver_free(rx));
}

/* One value: a second send is EAGAIN; after the value is taken the receiver
 * sees ECLOSED; a sender freed without sending closes it; a receive future
 * waits for the value; a send future on a full oneshot fails EAGAIN. */
static void test_oneshot(void) {
  asyncrt_sender *tx = NULL, *tx2 = (asyncrt_sender *)1;
  asyncrt_receiver *rx = NULL, *rx2 = (asyncrt_receiver *)1;
  asyncrt_chan_op op;
  asyncrt_future f;
  uint64_t v = 0, sv = 77;
  int failure;
  cw w;

  CHECK_OK(chan_new(ASYNCRT_CHANNEL_ONESHOT, 0, 0, &tx, &rx));
  CHECK_STATUS(asyncrt_sender_clone(tx, &tx2), ASYNCRT_EINVAL);
  CHECK_STATUS(asyncrt_sender_subscribe(tx, &rx2), ASYNCRT_EINVAL);
  RECV_FAILS(rx, ASYNCRT_EAGAIN);
  LEN_IS(rx, 0);
  SEND_OK(tx, 5);
  LEN_IS(rx, 1);
  SEND_IS(tx, 6, ASYNCRT_EAGAIN);
  /* the send future on a oneshot that holds its value fails with EAGAIN */
  CHECK_OK(asyncrt_send(tx, &sv, &op, &f));
  memset(&w, 0, sizeof w);
  CHECK_INT(poll_with(&f, &w, NULL, &failure), ASYNCRT_POLL_ERROR);
  CHECK_STATUS(failure, ASYNCRT_EAGAIN);
  drop_fut(&f);
  RECV_IS(rx, 5);
  LEN_IS(rx, 0);
  RECV_FAILS(rx, ASYNCRT_ECLOSED); /* taken, though the sender lives */
  SEND_IS(tx, 6, ASYNCRT_EAGAIN);
  CHECK_OK(asyncrt_sender_free(tx));
  RECV_FAILS(rx, ASYNCRT_ECLOSED);
  CHECK_OK(asyncrt_receiver_free(rx));

  /* a sender freed without sending: ECLOSED, and a waiting receive is woken */
  CHECK_OK(chan_new(ASYNCRT_CHANNEL_ONESHOT, 0, 0, &tx, &rx));
  CHECK_OK(asyncrt_recv(rx, &op, &f));
  memset(&w, 0, sizeof w);
  CHECK_INT(poll_with(&f, &w, &v, &failure), ASYNCRT_POLL_PENDING);
  CHECK_INT(cw_woken(&w), 0);
  CHECK_OK(asyncrt_sender_free(tx));
  CHECK_INT(cw_woken(&w), 1);
  CHECK_INT(poll_with(&f, &w, &v, &failure), ASYNCRT_POLL_ERROR);
  CHECK_STATUS(failure, ASYNCRT_ECLOSED);
  drop_fut(&f);
  CHECK_OK(asyncrt_receiver_free(rx));
  CHECK_INT(cw_held(&w), 0);

  /* a receive future waits, is woken by the send, and gets the value */
  CHECK_OK(chan_new(ASYNCRT_CHANNEL_ONESHOT, 0, 0, &tx, &rx));
  CHECK_OK(asyncrt_recv(rx, &op, &f));
  CHECK_INT(f.vtable->output_size, 8);
  memset(&w, 0, sizeof w);
  CHECK_INT(poll_with(&f, &w, &v, &failure), ASYNCRT_POLL_PENDING);
  SEND_OK(tx, 1234);
  CHECK_INT(cw_woken(&w), 1);
  CHECK_INT(poll_with(&f, &w, &v, &failure), ASYNCRT_POLL_READY);
  CHECK_INT(v, 1234);
  drop_fut(&f);
  CHECK_OK(asyncrt_sender_free(tx));
  CHECK_OK(asyncrt_receiver_free(rx));
  CHECK_INT(cw_held(&w), 0);

  /* the receiver freed first: the send is ECLOSED */
  CHECK_OK(chan_new(ASYNCRT_CHANNEL_ONESHOT, 0, 0, &tx, &rx));
  CHECK_OK(asyncrt_receiver_free(rx));
  SEND_IS(tx, 1, ASYNCRT_ECLOSED);
  CHECK_OK(asyncrt_sender_free(tx));
}

/* Two receivers each see every value; a receiver subscribed later sees only
 * the values sent after it subscribed; sends never wait. */
static void test_broadcast_every_receiver(void) {
  asyncrt_sender *tx = NULL;
  asyncrt_receiver *a = NULL, *b = NULL, *late = NULL;
  uint64_t i;
  CHECK_OK(chan_new(ASYNCRT_CHANNEL_BROADCAST, 8, 0, &tx, &a)); /* room: nobody lags here */
  CHECK_OK(asyncrt_sender_subscribe(tx, &b));
  RECV_FAILS(a, ASYNCRT_EAGAIN);
  RECV_FAILS(b, ASYNCRT_EAGAIN);
  for (i = 1; i <= 4; i++) {
    SEND_OK(tx, i);
  }
  LEN_IS(a, 4);
  CHECK_OK(asyncrt_sender_subscribe(tx, &late));
  LEN_IS(late, 0);
  RECV_FAILS(late, ASYNCRT_EAGAIN);
  for (i = 1; i <= 4; i++) {
    RECV_IS(a, i);
  }
  RECV_FAILS(a, ASYNCRT_EAGAIN);
  SEND_OK(tx, 5);
  RECV_IS(a, 5);
  for (i = 1; i <= 5; i++) {
    RECV_IS(b, i);
  }
  RECV_IS(late, 5);
  RECV_FAILS(b, ASYNCRT_EAGAIN);
  RECV_FAILS(late, ASYNCRT_EAGAIN);
  /* a long run, read as it goes, by both */
  for (i = 6; i < 1006; i++) {
    SEND_OK(tx, i);
    RECV_IS(a, i);
    RECV_IS(b, i);
  }
  /* freeing one receiver leaves the others their values */
  CHECK_OK(asyncrt_receiver_free(late));
  SEND_OK(tx, 2000);
  SEND_OK(tx, 2001);
  /* the last sender gone: drain, then ECLOSED */
  CHECK_OK(asyncrt_sender_free(tx));
  RECV_IS(a, 2000);
  RECV_IS(a, 2001);
  RECV_FAILS(a, ASYNCRT_ECLOSED);
  RECV_IS(b, 2000);
  RECV_IS(b, 2001);
  RECV_FAILS(b, ASYNCRT_ECLOSED);
  CHECK_OK(asyncrt_receiver_free(a));
  CHECK_OK(asyncrt_receiver_free(b));

  /* no receiver left: a send is ECLOSED */
  CHECK_OK(chan_new(ASYNCRT_CHANNEL_BROADCAST, 1, 0, &tx, &a));
  CHECK_OK(asyncrt_receiver_free(a));
  SEND_IS(tx, 1, ASYNCRT_ECLOSED);
  CHECK_OK(asyncrt_sender_free(tx));
}

/* Capacity 2, 5 values sent: the receiver that read none gets ELAGGED once,
 * then the oldest kept value (4), then 5; one that read as it went sees all. */
static void test_broadcast_lagging_receiver(void) {
  asyncrt_sender *tx = NULL;
  asyncrt_receiver *slow = NULL, *fast = NULL;
  asyncrt_chan_op op;
  asyncrt_future f;
  uint64_t i, v;
  int failure;
  cw w;
  CHECK_OK(chan_new(ASYNCRT_CHANNEL_BROADCAST, 2, 0, &tx, &slow));
  CHECK_OK(asyncrt_sender_subscribe(tx, &fast));
  for (i = 1; i <= 5; i++) {
    SEND_OK(tx, i);
    RECV_IS(fast, i);
  }
  RECV_FAILS(slow, ASYNCRT_ELAGGED);
  RECV_IS(slow, 4);
  RECV_IS(slow, 5);
  RECV_FAILS(slow, ASYNCRT_EAGAIN);
  RECV_FAILS(fast, ASYNCRT_EAGAIN);

  /* the same through the receive future: ERROR ELAGGED once, then READY */
  for (i = 6; i <= 12; i++) {
    SEND_OK(tx, i);
  }
  memset(&w, 0, sizeof w);
  CHECK_OK(asyncrt_recv(slow, &op, &f));
  CHECK_INT(poll_with(&f, &w, &v, &failure), ASYNCRT_POLL_ERROR);
  CHECK_STATUS(failure, ASYNCRT_ELAGGED);
  drop_fut(&f);
  CHECK_OK(asyncrt_recv(slow, &op, &f));
  v = 0;
  CHECK_INT(poll_with(&f, &w, &v, &failure), ASYNCRT_POLL_READY);
  CHECK_INT(v, 11);
  drop_fut(&f);
  RECV_IS(slow, 12);
  /* lagging and closed: ELAGGED first, then the kept values, then ECLOSED */
  for (i = 13; i <= 16; i++) {
    SEND_OK(tx, i);
  }
  CHECK_OK(asyncrt_sender_free(tx));
  RECV_FAILS(slow, ASYNCRT_ELAGGED);
  RECV_IS(slow, 15);
  RECV_IS(slow, 16);
  RECV_FAILS(slow, ASYNCRT_ECLOSED);
  RECV_FAILS(slow, ASYNCRT_ECLOSED);
  CHECK_OK(asyncrt_receiver_free(slow));
  CHECK_OK(asyncrt_receiver_free(fast));
  CHECK_INT(cw_held(&w), 0);
}

/* 40 receivers (more than the channel wakes in one batch) each wait in a
 * receive future: one send wakes every one exactly once, each then gets the
 * value; the last sender's free wakes them all again and they see ECLOSED.
 * Broadcast and watch. */
#define MANY 40
static void test_many_waiting_receivers(void) {
  static const unsigned kinds[2] = {ASYNCRT_CHANNEL_BROADCAST, ASYNCRT_CHANNEL_WATCH};
  asyncrt_receiver *rx[MANY];
  asyncrt_chan_op op[MANY];
  asyncrt_future f[MANY];
  cw w[MANY];
  asyncrt_sender *tx = NULL;
  uint64_t v;
  int k, i, failure;
  for (k = 0; k < 2; k++) {
    CHECK_OK(chan_new(kinds[k], 4, 0, &tx, &rx[0]));
    for (i = 1; i < MANY; i++) {
      CHECK_OK(asyncrt_sender_subscribe(tx, &rx[i]));
    }
    memset(w, 0, sizeof w);
    for (i = 0; i < MANY; i++) {
      CHECK_OK(asyncrt_recv(rx[i], &op[i], &f[i]));
      CHECK_INT(poll_with(&f[i], &w[i], &v, &failure), ASYNCRT_POLL_PENDING);
    }
    SEND_OK(tx, 77);
    for (i = 0; i < MANY; i++) {
      CHECK_INT(cw_woken(&w[i]), 1);
      v = 0;
      CHECK_INT(poll_with(&f[i], &w[i], &v, &failure), ASYNCRT_POLL_READY);
      CHECK_INT(v, 77);
      drop_fut(&f[i]);
      CHECK_OK(asyncrt_recv(rx[i], &op[i], &f[i]));
      CHECK_INT(poll_with(&f[i], &w[i], &v, &failure), ASYNCRT_POLL_PENDING);
    }
    CHECK_OK(asyncrt_sender_free(tx));
    for (i = 0; i < MANY; i++) {
      CHECK_INT(cw_woken(&w[i]), 2);
      CHECK_INT(poll_with(&f[i], &w[i], &v, &failure), ASYNCRT_POLL_ERROR);
      CHECK_STATUS(failure, ASYNCRT_ECLOSED);
      drop_fut(&f[i]);
      CHECK_OK(asyncrt_receiver_free(rx[i]));
      CHECK_INT(cw_held(&w[i]), 0);
    }
  }
}

/* asyncrt_channel_len counts the values the channel still holds for a
 * receiver: a lagging broadcast receiver is told the capacity, not every
 * value sent since its last receive. */
static void test_broadcast_len_of_a_lagging_receiver(void) {
  asyncrt_sender *tx = NULL;
  asyncrt_receiver *rx = NULL;
  uint64_t i;
  CHECK_OK(chan_new(ASYNCRT_CHANNEL_BROADCAST, 2, 0, &tx, &rx));
  for (i = 1; i <= 5; i++) {
    SEND_OK(tx, i);
  }
  LEN_IS(rx, 2);
  RECV_FAILS(rx, ASYNCRT_ELAGGED);
  LEN_IS(rx, 2);
  RECV_IS(rx, 4);
  RECV_IS(rx, 5);
  CHECK_OK(asyncrt_sender_free(tx));
  CHECK_OK(asyncrt_receiver_free(rx));
}

/* Watch: the latest value only; an initial value counts as seen; a receive
 * waits for a version newer than the one the receiver saw. */
static void test_watch(void) {
  asyncrt_sender *tx = NULL, *tx2 = NULL;
  asyncrt_receiver *rx = NULL, *rx2 = NULL;
  asyncrt_channel_config cfg;
  asyncrt_chan_op op;
  asyncrt_future f;
  uint64_t initial = 42, v = 0;
  int failure;
  cw w;

  /* no initial value: nothing to receive until a send; then the latest */
  CHECK_OK(chan_new(ASYNCRT_CHANNEL_WATCH, 0, 0, &tx, &rx));
  RECV_FAILS(rx, ASYNCRT_EAGAIN);
  LEN_IS(rx, 0);
  SEND_OK(tx, 1);
  SEND_OK(tx, 2);
  SEND_OK(tx, 3); /* sends never wait */
  LEN_IS(rx, 1);
  RECV_IS(rx, 3);
  RECV_FAILS(rx, ASYNCRT_EAGAIN);
  CHECK_OK(asyncrt_sender_free(tx));
  RECV_FAILS(rx, ASYNCRT_ECLOSED);
  CHECK_OK(asyncrt_receiver_free(rx));

  /* an initial value: receivers start having seen it */
  asyncrt_channel_config_init(&cfg);
  cfg.kind = ASYNCRT_CHANNEL_WATCH;
  cfg.initial = &initial;
  CHECK_OK(asyncrt_channel_new(&cfg, &tx, &rx));
  initial = 0; /* it was copied */
  RECV_FAILS(rx, ASYNCRT_EAGAIN);
  CHECK_OK(asyncrt_sender_subscribe(tx, &rx2));
  RECV_FAILS(rx2, ASYNCRT_EAGAIN);

  /* a receive future waits for a newer version, is woken by the send */
  memset(&w, 0, sizeof w);
  CHECK_OK(asyncrt_recv(rx, &op, &f));
  CHECK_INT(poll_with(&f, &w, &v, &failure), ASYNCRT_POLL_PENDING);
  CHECK_INT(poll_with(&f, &w, &v, &failure), ASYNCRT_POLL_PENDING);
  CHECK_INT(cw_woken(&w), 0);
  SEND_OK(tx, 43);
  CHECK_INT(cw_woken(&w), 1);
  CHECK_INT(poll_with(&f, &w, &v, &failure), ASYNCRT_POLL_READY);
  CHECK_INT(v, 43);
  drop_fut(&f);
  /* seen: the next receive waits again */
  CHECK_OK(asyncrt_recv(rx, &op, &f));
  CHECK_INT(poll_with(&f, &w, &v, &failure), ASYNCRT_POLL_PENDING);
  SEND_OK(tx, 44);
  CHECK_INT(cw_woken(&w), 2);
  CHECK_INT(poll_with(&f, &w, &v, &failure), ASYNCRT_POLL_READY);
  CHECK_INT(v, 44);
  drop_fut(&f);
  RECV_IS(rx2, 44); /* rx2 skipped 43: only the latest is kept */
  RECV_FAILS(rx2, ASYNCRT_EAGAIN);

  /* a cloned sender keeps it open; a later subscriber has seen the current one */
  CHECK_OK(asyncrt_sender_clone(tx, &tx2));
  CHECK_OK(asyncrt_sender_free(tx));
  RECV_FAILS(rx, ASYNCRT_EAGAIN);
  SEND_OK(tx2, 45);
  CHECK_OK(asyncrt_receiver_free(rx2));
  CHECK_OK(asyncrt_sender_subscribe(tx2, &rx2));
  RECV_FAILS(rx2, ASYNCRT_EAGAIN);
  /* the last sender gone: an unseen value is still received, then ECLOSED */
  CHECK_OK(asyncrt_sender_free(tx2));
  RECV_IS(rx, 45);
  RECV_FAILS(rx, ASYNCRT_ECLOSED);
  RECV_FAILS(rx2, ASYNCRT_ECLOSED);
  CHECK_OK(asyncrt_receiver_free(rx));
  CHECK_OK(asyncrt_receiver_free(rx2));
  CHECK_INT(cw_held(&w), 0);
}

/* --- closing ------------------------------------------------------------------------------ */

/* The last sender freed: the receiver drains, then gets ECLOSED; a receive
 * waiting at that moment is woken and fails with ECLOSED. */
static void test_close_last_sender(void) {
  asyncrt_sender *tx = NULL, *tx2 = NULL;
  asyncrt_receiver *rx = NULL;
  asyncrt_chan_op op;
  asyncrt_future f;
  uint64_t v;
  int failure;
  cw w;
  CHECK_OK(chan_new(ASYNCRT_CHANNEL_MPSC, 4, 0, &tx, &rx));
  CHECK_OK(asyncrt_sender_clone(tx, &tx2));
  SEND_OK(tx, 1);
  SEND_OK(tx2, 2);
  SEND_OK(tx, 3);
  CHECK_OK(asyncrt_sender_free(tx));
  RECV_IS(rx, 1);
  RECV_IS(rx, 2);
  RECV_IS(rx, 3);
  RECV_FAILS(rx, ASYNCRT_EAGAIN); /* tx2 still lives */
  memset(&w, 0, sizeof w);
  CHECK_OK(asyncrt_recv(rx, &op, &f));
  CHECK_INT(poll_with(&f, &w, &v, &failure), ASYNCRT_POLL_PENDING);
  CHECK_INT(cw_woken(&w), 0);
  CHECK_OK(asyncrt_sender_free(tx2));
  CHECK_INT(cw_woken(&w), 1);
  CHECK_INT(poll_with(&f, &w, &v, &failure), ASYNCRT_POLL_ERROR);
  CHECK_STATUS(failure, ASYNCRT_ECLOSED);
  drop_fut(&f);
  RECV_FAILS(rx, ASYNCRT_ECLOSED);
  CHECK_OK(asyncrt_receiver_free(rx));
  CHECK_INT(cw_held(&w), 0);

  /* values sent and then every sender freed: all drained, then ECLOSED */
  CHECK_OK(chan_new(ASYNCRT_CHANNEL_MPSC, 0, 0, &tx, &rx));
  SEND_OK(tx, 7);
  SEND_OK(tx, 8);
  CHECK_OK(asyncrt_sender_free(tx));
  LEN_IS(rx, 2);
  RECV_IS(rx, 7);
  RECV_IS(rx, 8);
  RECV_FAILS(rx, ASYNCRT_ECLOSED);
  CHECK_OK(asyncrt_receiver_free(rx));
}

/* The last receiver freed: a send is ECLOSED, and a sender blocked on the
 * full channel is woken and fails with ECLOSED (its value never enters). */
static void test_close_last_receiver(void) {
  asyncrt_sender *tx = NULL, *tx2 = NULL;
  asyncrt_receiver *rx = NULL;
  asyncrt_chan_op op1, op2;
  asyncrt_future f1, f2;
  uint64_t v1 = 11, v2 = 12;
  int failure;
  cw w1, w2;
  CHECK_OK(chan_new(ASYNCRT_CHANNEL_MPSC, 1, 0, &tx, &rx));
  CHECK_OK(asyncrt_sender_clone(tx, &tx2));
  SEND_OK(tx, 10);
  memset(&w1, 0, sizeof w1);
  memset(&w2, 0, sizeof w2);
  CHECK_OK(asyncrt_send(tx, &v1, &op1, &f1));
  CHECK_OK(asyncrt_send(tx2, &v2, &op2, &f2));
  CHECK_INT(poll_with(&f1, &w1, NULL, &failure), ASYNCRT_POLL_PENDING);
  CHECK_INT(poll_with(&f2, &w2, NULL, &failure), ASYNCRT_POLL_PENDING);
  CHECK_INT(cw_woken(&w1), 0);
  CHECK_INT(cw_woken(&w2), 0);
  CHECK_OK(asyncrt_receiver_free(rx));
  CHECK_INT(cw_woken(&w1), 1);
  CHECK_INT(cw_woken(&w2), 1);
  CHECK_INT(poll_with(&f1, &w1, NULL, &failure), ASYNCRT_POLL_ERROR);
  CHECK_STATUS(failure, ASYNCRT_ECLOSED);
  CHECK_INT(poll_with(&f2, &w2, NULL, &failure), ASYNCRT_POLL_ERROR);
  CHECK_STATUS(failure, ASYNCRT_ECLOSED);
  drop_fut(&f1);
  drop_fut(&f2);
  SEND_IS(tx, 13, ASYNCRT_ECLOSED);
  SEND_IS(tx2, 13, ASYNCRT_ECLOSED);
  CHECK_OK(asyncrt_sender_free(tx));
  CHECK_OK(asyncrt_sender_free(tx2));
  CHECK_INT(cw_held(&w1), 0);
  CHECK_INT(cw_held(&w2), 0);
}

/* The same with tasks: a task blocked in a send completes with ECLOSED once
 * the receiver is freed. */
static void test_close_wakes_blocked_sender_task(void) {
  asyncrt_executor *ex = executor(ASYNCRT_EXECUTOR_LOCAL, 0);
  asyncrt_sender *tx = NULL;
  asyncrt_receiver *rx = NULL;
  asyncrt_task *t = NULL;
  chan_task s;
  CHECK(ex != NULL);
  CHECK_OK(chan_new(ASYNCRT_CHANNEL_MPSC, 1, 0, &tx, &rx));
  sender_init(&s, tx, 0, 1, 3);
  CHECK_OK(spawn_task(ex, &s, 0, &t));
  CHECK_OK(asyncrt_run(ex, NULL));
  CHECK_INT(s.done, 1);
  CHECK_INT(s.pendings, 1);
  CHECK_STATUS(asyncrt_task_status(t), ASYNCRT_EAGAIN);
  CHECK_OK(asyncrt_receiver_free(rx));
  CHECK_OK(asyncrt_run(ex, NULL));
  CHECK_STATUS(asyncrt_task_status(t), ASYNCRT_ECLOSED);
  CHECK_INT(s.failure, ASYNCRT_ECLOSED);
  CHECK_INT(s.done, 1);
  CHECK_INT(s.drops, 1);
  CHECK_OK(asyncrt_task_release(t));
  CHECK_OK(asyncrt_sender_free(tx));
  CHECK_OK(asyncrt_executor_free(ex));
}

/* --- blocked senders and dropped futures ----------------------------------------------- */

/* Three tasks blocked on a full capacity-1 channel are served in the order
 * they blocked: each receive lets exactly the next one through. */
static void test_blocked_senders_fifo(void) {
  static const int forms[2] = {0, 1};
  int form, i, j;
  for (form = 0; form < 2; form++) {
    asyncrt_executor *ex = executor(ASYNCRT_EXECUTOR_LOCAL, 0);
    asyncrt_sender *tx = NULL;
    asyncrt_receiver *rx = NULL;
    asyncrt_task *t[3];
    chan_task s[3];
    CHECK(ex != NULL);
    CHECK_OK(chan_new(ASYNCRT_CHANNEL_MPSC, 1, 0, &tx, &rx));
    SEND_OK(tx, 100);
    for (i = 0; i < 3; i++) {
      sender_init(&s[i], tx, forms[form], 101 + (uint64_t)i, 1);
      CHECK_OK(spawn_task(ex, &s[i], 0, &t[i]));
      CHECK_OK(asyncrt_run(ex, NULL)); /* it blocks before the next is spawned */
      CHECK_INT(s[i].pendings, 1);
      CHECK_INT(s[i].done, 0);
    }
    for (i = 0; i < 3; i++) {
      RECV_IS(rx, 100 + (uint64_t)i);
      CHECK_OK(asyncrt_run(ex, NULL));
      for (j = 0; j < 3; j++) {
        CHECK_INT(s[j].done, j <= i ? 1 : 0);
        CHECK_STATUS(asyncrt_task_status(t[j]), j <= i ? ASYNCRT_OK : ASYNCRT_EAGAIN);
      }
      LEN_IS(rx, 1);
    }
    RECV_IS(rx, 103);
    RECV_FAILS(rx, ASYNCRT_EAGAIN);
    for (i = 0; i < 3; i++) {
      CHECK_INT(s[i].drops, 1);
      CHECK_OK(asyncrt_task_release(t[i]));
    }
    CHECK_OK(asyncrt_sender_free(tx));
    CHECK_OK(asyncrt_receiver_free(rx));
    CHECK_OK(asyncrt_executor_free(ex));
  }
}

/* Send futures a, b, c, d blocked on a full capacity-1 channel. A receive
 * wakes a only; a is dropped before it runs: its value is never delivered and
 * its wake passes to b. d is dropped while still waiting its turn: nobody is
 * woken for it. */
static void test_dropped_send_passes_wake(void) {
  asyncrt_sender *tx = NULL;
  asyncrt_receiver *rx = NULL;
  asyncrt_chan_op op[4];
  asyncrt_future f[4];
  uint64_t vals[4] = {1, 2, 3, 4};
  cw w[4];
  int i, failure;
  CHECK_OK(chan_new(ASYNCRT_CHANNEL_MPSC, 1, 0, &tx, &rx));
  SEND_OK(tx, 100);
  memset(w, 0, sizeof w);
  for (i = 0; i < 4; i++) {
    CHECK_OK(asyncrt_send(tx, &vals[i], &op[i], &f[i]));
    CHECK_INT(poll_with(&f[i], &w[i], NULL, &failure), ASYNCRT_POLL_PENDING);
  }
  drop_fut(&f[3]); /* d leaves the line while waiting: no wake moves */
  for (i = 0; i < 4; i++) {
    CHECK_INT(cw_woken(&w[i]), 0);
  }
  RECV_IS(rx, 100);
  CHECK_INT(cw_woken(&w[0]), 1);
  CHECK_INT(cw_woken(&w[1]), 0);
  CHECK_INT(cw_woken(&w[2]), 0);
  drop_fut(&f[0]); /* a had been woken: its turn goes to b */
  CHECK_INT(cw_woken(&w[1]), 1);
  CHECK_INT(cw_woken(&w[2]), 0);
  LEN_IS(rx, 0);
  CHECK_INT(poll_with(&f[1], &w[1], NULL, &failure), ASYNCRT_POLL_READY);
  drop_fut(&f[1]);
  CHECK_INT(cw_woken(&w[2]), 0); /* full again */
  RECV_IS(rx, 2);
  CHECK_INT(cw_woken(&w[2]), 1);
  CHECK_INT(poll_with(&f[2], &w[2], NULL, &failure), ASYNCRT_POLL_READY);
  drop_fut(&f[2]);
  RECV_IS(rx, 3);
  RECV_FAILS(rx, ASYNCRT_EAGAIN); /* neither 1 nor 4 was ever delivered */
  CHECK_OK(asyncrt_sender_free(tx));
  RECV_FAILS(rx, ASYNCRT_ECLOSED);
  CHECK_OK(asyncrt_receiver_free(rx));
  for (i = 0; i < 4; i++) {
    CHECK_INT(cw_held(&w[i]), 0);
  }
}

/* The same on an executor: the woken task is cancelled before it runs; the
 * next blocked task sends. */
static void test_cancelled_sender_task_passes_wake(void) {
  asyncrt_executor *ex = executor(ASYNCRT_EXECUTOR_LOCAL, 0);
  asyncrt_sender *tx = NULL;
  asyncrt_receiver *rx = NULL;
  asyncrt_task *t[2];
  chan_task s[2];
  int i;
  CHECK(ex != NULL);
  CHECK_OK(chan_new(ASYNCRT_CHANNEL_MPSC, 1, 0, &tx, &rx));
  SEND_OK(tx, 100);
  for (i = 0; i < 2; i++) {
    sender_init(&s[i], tx, i, 1 + (uint64_t)i, 1); /* the future form, then the _poll form */
    CHECK_OK(spawn_task(ex, &s[i], 0, &t[i]));
    CHECK_OK(asyncrt_run(ex, NULL));
  }
  RECV_IS(rx, 100);
  CHECK_OK(asyncrt_task_cancel(t[0]));
  CHECK_OK(asyncrt_run(ex, NULL));
  CHECK_STATUS(asyncrt_task_status(t[0]), ASYNCRT_ECANCELLED);
  CHECK_INT(s[0].drops, 1);
  CHECK_OK(asyncrt_task_status(t[1]));
  CHECK_INT(s[1].done, 1);
  RECV_IS(rx, 2);
  RECV_FAILS(rx, ASYNCRT_EAGAIN);
  for (i = 0; i < 2; i++) {
    CHECK_OK(asyncrt_task_release(t[i]));
  }
  CHECK_OK(asyncrt_sender_free(tx));
  CHECK_OK(asyncrt_receiver_free(rx));
  CHECK_OK(asyncrt_executor_free(ex));
}

/* A pending receive dropped takes nothing: the message sent afterwards goes
 * to the next receive. Both forms, and a cancelled receiving task. */
static void test_dropped_recv_loses_nothing(void) {
  asyncrt_executor *ex = executor(ASYNCRT_EXECUTOR_LOCAL, 0);
  asyncrt_sender *tx = NULL;
  asyncrt_receiver *rx = NULL;
  asyncrt_chan_op op;
  asyncrt_future f;
  asyncrt_task *t = NULL;
  chan_task r;
  uint64_t v = 0, got[4];
  int failure;
  cw w1, w2;
  CHECK(ex != NULL);
  CHECK_OK(chan_new(ASYNCRT_CHANNEL_MPSC, 2, 0, &tx, &rx));
  memset(&w1, 0, sizeof w1);
  memset(&w2, 0, sizeof w2);
  CHECK_OK(asyncrt_recv(rx, &op, &f));
  CHECK_INT(poll_with(&f, &w1, &v, &failure), ASYNCRT_POLL_PENDING);
  drop_fut(&f);
  SEND_OK(tx, 5);
  LEN_IS(rx, 1);
  CHECK_OK(asyncrt_recv(rx, &op, &f));
  CHECK_INT(poll_with(&f, &w2, &v, &failure), ASYNCRT_POLL_READY);
  CHECK_INT(v, 5);
  drop_fut(&f);

  /* a receiving task cancelled while it waits */
  receiver_init(&r, rx, 0, got, 4, 1);
  CHECK_OK(spawn_task(ex, &r, 0, &t));
  CHECK_OK(asyncrt_run(ex, NULL));
  CHECK_INT(r.pendings, 1);
  CHECK_OK(asyncrt_task_cancel(t));
  CHECK_OK(asyncrt_run(ex, NULL));
  CHECK_INT(r.drops, 1);
  CHECK_OK(asyncrt_task_release(t));
  SEND_OK(tx, 6);
  RECV_IS(rx, 6);

  /* the _poll form, withdrawn with asyncrt_chan_op_cancel */
  receiver_init(&r, rx, 1, got, 4, 1);
  CHECK_OK(spawn_task(ex, &r, 0, &t));
  CHECK_OK(asyncrt_run(ex, NULL));
  CHECK_INT(r.pendings, 1);
  CHECK_OK(asyncrt_task_cancel(t));
  CHECK_OK(asyncrt_run(ex, NULL));
  CHECK_INT(r.drops, 1);
  CHECK_OK(asyncrt_task_release(t));
  SEND_OK(tx, 7);
  RECV_IS(rx, 7);
  RECV_FAILS(rx, ASYNCRT_EAGAIN);

  CHECK_OK(asyncrt_sender_free(tx));
  CHECK_OK(asyncrt_receiver_free(rx));
  CHECK_INT(cw_held(&w1), 0);
  CHECK_INT(cw_held(&w2), 0);
  CHECK_OK(asyncrt_executor_free(ex));
}

/* A channel outlives the executor whose tasks waited on it: freeing the
 * executor drops the waiting receive and the blocked send; a later send or
 * receive wakes nothing that is gone, and the channel still works. */
static void test_channel_outlives_executor(void) {
  asyncrt_executor *ex = executor(ASYNCRT_EXECUTOR_LOCAL, 0);
  asyncrt_sender *tx = NULL, *tx2 = NULL;
  asyncrt_receiver *rx = NULL, *rx2 = NULL;
  chan_task r, s;
  uint64_t got[2];
  CHECK(ex != NULL);
  CHECK_OK(chan_new(ASYNCRT_CHANNEL_MPSC, 0, 0, &tx, &rx));
  CHECK_OK(chan_new(ASYNCRT_CHANNEL_MPSC, 1, 0, &tx2, &rx2));
  SEND_OK(tx2, 1);
  receiver_init(&r, rx, 0, got, 2, 1);
  sender_init(&s, tx2, 0, 2, 1);
  CHECK_OK(spawn_task(ex, &r, 0, NULL));
  CHECK_OK(spawn_task(ex, &s, 0, NULL));
  CHECK_OK(asyncrt_run(ex, NULL));
  CHECK_INT(r.pendings, 1);
  CHECK_INT(s.pendings, 1);
  CHECK_OK(asyncrt_executor_free(ex));
  CHECK_INT(r.drops, 1);
  CHECK_INT(s.drops, 1);
  SEND_OK(tx, 5); /* the receiver's last waker belongs to a task of a freed executor */
  RECV_IS(rx, 5);
  RECV_IS(rx2, 1); /* room: the dropped sender is not in line any more */
  SEND_OK(tx2, 6);
  RECV_IS(rx2, 6);
  RECV_FAILS(rx2, ASYNCRT_EAGAIN);
  CHECK_OK(asyncrt_sender_free(tx));
  CHECK_OK(asyncrt_receiver_free(rx));
  CHECK_OK(asyncrt_sender_free(tx2));
  CHECK_OK(asyncrt_receiver_free(rx2));
}

/* --- value_drop -------------------------------------------------------------------------- */

#define OBJS 64
static int objs[OBJS];
static int obj_drops[OBJS];
static int obj_strays; /* value_drop on something that is no obj, or with a wrong user */
static int drop_user;

static void obj_drop(void *value, void *user) {
  int *p;
  memcpy(&p, value, sizeof p);
  if (user != &drop_user || p < objs || p >= objs + OBJS) {
    tf_add(&obj_strays, 1);
    return;
  }
  tf_add(&obj_drops[p - objs], 1);
}

static void objs_reset(void) {
  memset(obj_drops, 0, sizeof obj_drops);
  obj_strays = 0;
}

static int obj_chan(unsigned kind, size_t capacity, asyncrt_sender **tx, asyncrt_receiver **rx) {
  asyncrt_channel_config cfg;
  asyncrt_channel_config_init(&cfg);
  cfg.kind = kind;
  cfg.capacity = capacity;
  cfg.elem_size = sizeof(int *);
  cfg.value_drop = obj_drop;
  cfg.user = &drop_user;
  return asyncrt_channel_new(&cfg, tx, rx);
}

#define SEND_OBJ(tx, i)                                                                            \
  do {                                                                                             \
    int *p_ = &objs[i];                                                                            \
    CHECK_OK(asyncrt_try_send((tx), &p_));                                                         \
  } while (0)

#define RECV_OBJ(rx, i)                                                                            \
  do {                                                                                             \
    int *p_ = NULL;                                                                                \
    CHECK_OK(asyncrt_try_recv((rx), &p_));                                                         \
    CHECK(p_ == &objs[i]);                                                                         \
  } while (0)

/* value_drop runs once per value left inside at the channel's death (its last
 * endpoint freed), never for a received value, never for the value of a send
 * that did not go in, and not before the death. */
static void test_value_drop(void) {
  asyncrt_sender *tx = NULL;
  asyncrt_receiver *rx = NULL;
  asyncrt_chan_op op;
  asyncrt_future f;
  int *blocked = &objs[5];
  int i, failure;
  cw w;

  /* bounded, wrapped: 0..2 in, 0 and 1 out, 3 and 4 in; 5 blocked, then closed */
  objs_reset();
  CHECK_OK(obj_chan(ASYNCRT_CHANNEL_MPSC, 3, &tx, &rx));
  SEND_OBJ(tx, 0);
  SEND_OBJ(tx, 1);
  SEND_OBJ(tx, 2);
  RECV_OBJ(rx, 0);
  RECV_OBJ(rx, 1);
  SEND_OBJ(tx, 3);
  SEND_OBJ(tx, 4);
  memset(&w, 0, sizeof w);
  CHECK_OK(asyncrt_send(tx, &blocked, &op, &f));
  CHECK_INT(poll_with(&f, &w, NULL, &failure), ASYNCRT_POLL_PENDING);
  CHECK_OK(asyncrt_receiver_free(rx));
  CHECK_INT(poll_with(&f, &w, NULL, &failure), ASYNCRT_POLL_ERROR);
  CHECK_STATUS(failure, ASYNCRT_ECLOSED);
  drop_fut(&f);
  for (i = 0; i < OBJS; i++) {
    CHECK_INT(tf_get(&obj_drops[i]), 0); /* the sender still lives */
  }
  CHECK_OK(asyncrt_sender_free(tx));
  for (i = 0; i < OBJS; i++) {
    CHECK_INT(tf_get(&obj_drops[i]), i >= 2 && i <= 4 ? 1 : 0);
  }
  CHECK_INT(tf_get(&obj_strays), 0);
  CHECK_INT(cw_held(&w), 0);

  /* unbounded, grown: 40 in, 10 out; the receiver outlives the sender */
  objs_reset();
  CHECK_OK(obj_chan(ASYNCRT_CHANNEL_MPSC, 0, &tx, &rx));
  for (i = 0; i < 10; i++) {
    SEND_OBJ(tx, i);
  }
  for (i = 0; i < 5; i++) {
    RECV_OBJ(rx, i);
  }
  for (i = 10; i < 40; i++) {
    SEND_OBJ(tx, i);
  }
  for (i = 5; i < 10; i++) {
    RECV_OBJ(rx, i);
  }
  CHECK_OK(asyncrt_sender_free(tx));
  for (i = 0; i < OBJS; i++) {
    CHECK_INT(tf_get(&obj_drops[i]), 0);
  }
  CHECK_OK(asyncrt_receiver_free(rx));
  for (i = 0; i < OBJS; i++) {
    CHECK_INT(tf_get(&obj_drops[i]), i >= 10 && i < 40 ? 1 : 0);
  }
  CHECK_INT(tf_get(&obj_strays), 0);

  /* a try_send that fails (full, then closed) leaves its value the caller's */
  objs_reset();
  CHECK_OK(obj_chan(ASYNCRT_CHANNEL_MPSC, 1, &tx, &rx));
  SEND_OBJ(tx, 0);
  {
    int *p1 = &objs[1];
    CHECK_STATUS(asyncrt_try_send(tx, &p1), ASYNCRT_EAGAIN);
    CHECK_OK(asyncrt_receiver_free(rx));
    CHECK_STATUS(asyncrt_try_send(tx, &p1), ASYNCRT_ECLOSED);
  }
  CHECK_OK(asyncrt_sender_free(tx));
  CHECK_INT(tf_get(&obj_drops[0]), 1);
  CHECK_INT(tf_get(&obj_drops[1]), 0);

  /* a channel emptied before its death drops nothing */
  objs_reset();
  CHECK_OK(obj_chan(ASYNCRT_CHANNEL_MPSC, 2, &tx, &rx));
  SEND_OBJ(tx, 0);
  RECV_OBJ(rx, 0);
  CHECK_OK(asyncrt_receiver_free(rx));
  CHECK_OK(asyncrt_sender_free(tx));
  CHECK_INT(tf_get(&obj_drops[0]), 0);

  /* oneshot: an unreceived value is dropped once; a received one never */
  objs_reset();
  CHECK_OK(obj_chan(ASYNCRT_CHANNEL_ONESHOT, 0, &tx, &rx));
  SEND_OBJ(tx, 6);
  CHECK_OK(asyncrt_sender_free(tx));
  CHECK_INT(tf_get(&obj_drops[6]), 0);
  CHECK_OK(asyncrt_receiver_free(rx));
  CHECK_INT(tf_get(&obj_drops[6]), 1);
  CHECK_OK(obj_chan(ASYNCRT_CHANNEL_ONESHOT, 0, &tx, &rx));
  SEND_OBJ(tx, 7);
  RECV_OBJ(rx, 7);
  CHECK_OK(asyncrt_receiver_free(rx));
  CHECK_OK(asyncrt_sender_free(tx));
  CHECK_INT(tf_get(&obj_drops[7]), 0);
  CHECK_INT(tf_get(&obj_drops[6]), 1);
  CHECK_INT(tf_get(&obj_strays), 0);
}

/* --- the future and _poll forms on an executor --------------------------------------------- */

/* A sender task and a receiver task, every pairing of the two forms, over
 * capacity 1, 3 and unbounded channels, plain and LOCAL, on a local
 * executor: 1000 values each, all received once and in order. */
static void test_forms_on_a_local_executor(void) {
  static const size_t caps[3] = {1, 3, 0};
  enum { N = 1000 };
  uint64_t *got = malloc(N * sizeof *got);
  int sform, rform, c, local, i;
  CHECK(got != NULL);
  for (local = 0; local < 2; local++) {
    for (c = 0; c < 3; c++) {
      for (sform = 0; sform < 2; sform++) {
        for (rform = 0; rform < 2; rform++) {
          asyncrt_executor *ex = executor(ASYNCRT_EXECUTOR_LOCAL, 0);
          asyncrt_sender *tx = NULL;
          asyncrt_receiver *rx = NULL;
          asyncrt_task *ts = NULL, *tr = NULL;
          chan_task s, r;
          CHECK(ex != NULL);
          CHECK_OK(chan_new(ASYNCRT_CHANNEL_MPSC, caps[c], local ? ASYNCRT_CHANNEL_LOCAL : 0, &tx, &rx));
          receiver_init(&r, rx, rform, got, N, N);
          sender_init(&s, tx, sform, 0, N);
          /* the receiver first, so that it waits before anything is sent */
          CHECK_OK(spawn_task(ex, &r, 0, &tr));
          CHECK_OK(spawn_task(ex, &s, 0, &ts));
          CHECK_OK(await_task(ex, tr, TF_TIMEOUT_NS));
          CHECK_OK(await_task(ex, ts, TF_TIMEOUT_NS));
          CHECK_INT(r.done, N);
          CHECK_INT(s.done, N);
          for (i = 0; i < N; i++) {
            if (got[i] != (uint64_t)i) {
              fprintf(stderr, "  local %d cap %zu forms %d/%d: value %d is %llu\n", local, caps[c], sform,
                      rform, i, (unsigned long long)got[i]);
            }
            CHECK_INT(got[i], i);
          }
          CHECK(r.pendings >= 1);
          if (caps[c] == 1) {
            CHECK(s.pendings >= 1); /* a capacity-1 channel made the sender wait */
          }
          CHECK_INT(r.drops, 1);
          CHECK_INT(s.drops, 1);
          RECV_FAILS(rx, ASYNCRT_EAGAIN);
          CHECK_OK(asyncrt_task_release(tr));
          CHECK_OK(asyncrt_task_release(ts));
          CHECK_OK(asyncrt_sender_free(tx));
          RECV_FAILS(rx, ASYNCRT_ECLOSED);
          CHECK_OK(asyncrt_receiver_free(rx));
          CHECK_OK(asyncrt_executor_free(ex));
        }
      }
    }
  }
  free(got);
}

/* The _poll form by hand: a pending send withdrawn with asyncrt_chan_op_cancel
 * never delivers its value and leaves no waker behind; cancel on an op that
 * is not pending is a no-op; the op is reusable after READY. */

typedef struct pf {
  int is_send;
  asyncrt_sender *tx;
  asyncrt_receiver *rx;
  uint64_t value;
  asyncrt_chan_op op;
} pf;

static int pf_poll(void *self, asyncrt_context *cx, void *out) {
  pf *p = self;
  return p->is_send ? asyncrt_send_poll(p->tx, &p->value, cx, &p->op) : asyncrt_recv_poll(p->rx, out, cx, &p->op);
}

static const asyncrt_future_vtable pf_vtable = {sizeof(asyncrt_future_vtable), 8, pf_poll, NULL, NULL};

static void test_poll_form_cancel(void) {
  asyncrt_sender *tx = NULL;
  asyncrt_receiver *rx = NULL;
  asyncrt_future fs, fr;
  pf s, r;
  uint64_t out = 0;
  int failure;
  cw ws, wr;
  CHECK_OK(chan_new(ASYNCRT_CHANNEL_MPSC, 1, 0, &tx, &rx));
  memset(&s, 0, sizeof s);
  memset(&r, 0, sizeof r);
  memset(&ws, 0, sizeof ws);
  memset(&wr, 0, sizeof wr);
  s.is_send = 1;
  s.tx = tx;
  r.rx = rx;
  fs.self = &s;
  fs.vtable = &pf_vtable;
  fr.self = &r;
  fr.vtable = &pf_vtable;

  asyncrt_chan_op_cancel(&s.op); /* zeroed, not pending: nothing happens */
  asyncrt_chan_op_cancel(NULL);
  s.value = 1;
  CHECK_INT(poll_with(&fs, &ws, &out, &failure), ASYNCRT_POLL_READY);
  asyncrt_chan_op_cancel(&s.op); /* completed: nothing happens */
  s.value = 2;
  CHECK_INT(poll_with(&fs, &ws, &out, &failure), ASYNCRT_POLL_PENDING);
  CHECK_INT(poll_with(&fs, &ws, &out, &failure), ASYNCRT_POLL_PENDING); /* again, same op and value */
  asyncrt_chan_op_cancel(&s.op);
  CHECK_INT(cw_held(&ws), 0);
  asyncrt_chan_op_cancel(&s.op); /* twice: a no-op */
  CHECK_INT(poll_with(&fr, &wr, &out, &failure), ASYNCRT_POLL_READY);
  CHECK_INT(out, 1);
  CHECK_INT(cw_woken(&ws), 0); /* withdrawn: not woken by the room */
  CHECK_INT(poll_with(&fr, &wr, &out, &failure), ASYNCRT_POLL_PENDING);
  asyncrt_chan_op_cancel(&r.op); /* a withdrawn receive loses nothing: */
  s.value = 3;                   /* the next value goes to the next receive */
  CHECK_INT(poll_with(&fs, &ws, &out, &failure), ASYNCRT_POLL_READY);
  out = 0;
  CHECK_INT(poll_with(&fr, &wr, &out, &failure), ASYNCRT_POLL_READY);
  CHECK_INT(out, 3);
  RECV_FAILS(rx, ASYNCRT_EAGAIN); /* 2 was never delivered */

  /* a pending send, woken by room and then withdrawn: the room stays usable */
  SEND_OK(tx, 4);
  s.value = 5;
  CHECK_INT(poll_with(&fs, &ws, &out, &failure), ASYNCRT_POLL_PENDING);
  RECV_IS(rx, 4);
  CHECK_INT(cw_woken(&ws), 1);
  asyncrt_chan_op_cancel(&s.op);
  SEND_OK(tx, 6);
  RECV_IS(rx, 6);
  RECV_FAILS(rx, ASYNCRT_EAGAIN);

  /* errors of the _poll form come back as POLL_ERROR with the status named */
  CHECK_OK(asyncrt_receiver_free(rx));
  s.value = 7;
  CHECK_INT(poll_with(&fs, &ws, &out, &failure), ASYNCRT_POLL_ERROR);
  CHECK_STATUS(failure, ASYNCRT_ECLOSED);
  CHECK_INT(poll_with(&fr, &wr, &out, &failure), ASYNCRT_POLL_ERROR);
  CHECK_STATUS(failure, ASYNCRT_EHANDLE);
  CHECK_OK(asyncrt_sender_free(tx));
  CHECK_INT(poll_with(&fs, &ws, &out, &failure), ASYNCRT_POLL_ERROR);
  CHECK_STATUS(failure, ASYNCRT_EHANDLE);
  CHECK_INT(cw_held(&ws), 0);
  CHECK_INT(cw_held(&wr), 0);
}

/* A send or receive future outlives the handle it was made from. */
static void test_future_outlives_handle(void) {
  asyncrt_sender *tx = NULL;
  asyncrt_receiver *rx = NULL;
  asyncrt_chan_op ops, opr;
  asyncrt_future fs, fr;
  uint64_t v = 9, out = 0;
  int failure;
  cw w;
  memset(&w, 0, sizeof w);
  CHECK_OK(chan_new(ASYNCRT_CHANNEL_MPSC, 1, 0, &tx, &rx));
  CHECK_OK(asyncrt_send(tx, &v, &ops, &fs));
  CHECK_OK(asyncrt_recv(rx, &opr, &fr));
  CHECK_OK(asyncrt_sender_free(tx));
  CHECK_OK(asyncrt_receiver_free(rx));
  SEND_IS(tx, 1, ASYNCRT_EHANDLE);
  CHECK_INT(poll_with(&fr, &w, &out, &failure), ASYNCRT_POLL_PENDING);
  CHECK_INT(poll_with(&fs, &w, NULL, &failure), ASYNCRT_POLL_READY);
  CHECK(cw_woken(&w) >= 1);
  drop_fut(&fs); /* the last sender: closed after this value */
  CHECK_INT(poll_with(&fr, &w, &out, &failure), ASYNCRT_POLL_READY);
  CHECK_INT(out, 9);
  drop_fut(&fr);
  CHECK_STATUS(asyncrt_recv(rx, &opr, &fr), ASYNCRT_EHANDLE);
  CHECK_INT(cw_held(&w), 0);
}

/* --- misuse --------------------------------------------------------------------------------- */

static void test_misuse(void) {
  asyncrt_channel_config cfg;
  asyncrt_sender *tx = NULL, *tx2 = NULL, *dead_tx = NULL;
  asyncrt_receiver *rx = NULL, *rx2 = NULL, *dead_rx = NULL;
  asyncrt_chan_op op;
  asyncrt_future f;
  uint64_t v = 1;
  size_t len;
  cw w;
  int failure;

  /* the defaults */
  memset(&cfg, 0xab, sizeof cfg);
  asyncrt_channel_config_init(&cfg);
  CHECK_INT(cfg.size, sizeof cfg);
  CHECK_INT(cfg.kind, ASYNCRT_CHANNEL_MPSC);
  CHECK_INT(cfg.flags, 0);
  CHECK_INT(cfg.elem_size, 8);
  CHECK_INT(cfg.capacity, 0);
  CHECK(cfg.value_drop == NULL && cfg.user == NULL && cfg.initial == NULL);
  asyncrt_channel_config_init_size(NULL, sizeof cfg); /* a no-op */

  /* NULL arguments */
  CHECK_STATUS(asyncrt_channel_new(NULL, &tx, &rx), ASYNCRT_EINVAL);
  CHECK_STATUS(asyncrt_channel_new(&cfg, NULL, &rx), ASYNCRT_EINVAL);
  CHECK_STATUS(asyncrt_channel_new(&cfg, &tx, NULL), ASYNCRT_EINVAL);
  CHECK(tx == NULL && rx == NULL);

  /* bad configurations */
  cfg.size = 4;
  CHECK_STATUS(asyncrt_channel_new(&cfg, &tx, &rx), ASYNCRT_EINVAL);
  asyncrt_channel_config_init(&cfg);
  cfg.elem_size = 0;
  CHECK_STATUS(asyncrt_channel_new(&cfg, &tx, &rx), ASYNCRT_EINVAL);
  cfg.elem_size = ASYNCRT_CHANNEL_ELEM_MAX + 1;
  CHECK_STATUS(asyncrt_channel_new(&cfg, &tx, &rx), ASYNCRT_EINVAL);
  CHECK(tx == NULL && rx == NULL);
  asyncrt_channel_config_init(&cfg);
  cfg.kind = ASYNCRT_CHANNEL_WATCH + 1;
  CHECK_STATUS(asyncrt_channel_new(&cfg, &tx, &rx), ASYNCRT_EINVAL);
  cfg.kind = ~0u;
  CHECK_STATUS(asyncrt_channel_new(&cfg, &tx, &rx), ASYNCRT_EINVAL);
  asyncrt_channel_config_init(&cfg);
  cfg.flags = ASYNCRT_CHANNEL_LOCAL << 1;
  CHECK_STATUS(asyncrt_channel_new(&cfg, &tx, &rx), ASYNCRT_EINVAL);
  asyncrt_channel_config_init(&cfg);
  cfg.kind = ASYNCRT_CHANNEL_BROADCAST;
  cfg.capacity = 0;
  CHECK_STATUS(asyncrt_channel_new(&cfg, &tx, &rx), ASYNCRT_EINVAL);
  /* capacities above 2^24 are refused (the header says only "bad capacity") */
  asyncrt_channel_config_init(&cfg);
  cfg.capacity = ((size_t)1 << 24) + 1;
  CHECK_STATUS(asyncrt_channel_new(&cfg, &tx, &rx), ASYNCRT_EINVAL);
  cfg.kind = ASYNCRT_CHANNEL_BROADCAST;
  CHECK_STATUS(asyncrt_channel_new(&cfg, &tx, &rx), ASYNCRT_EINVAL);
  CHECK(tx == NULL && rx == NULL);
  /* value_drop: ONESHOT and MPSC only (a broadcast or watch value is copied
   * to every receiver). The header does not say so yet. */
  asyncrt_channel_config_init(&cfg);
  cfg.value_drop = obj_drop;
  cfg.kind = ASYNCRT_CHANNEL_BROADCAST;
  cfg.capacity = 4;
  CHECK_STATUS(asyncrt_channel_new(&cfg, &tx, &rx), ASYNCRT_EINVAL);
  cfg.kind = ASYNCRT_CHANNEL_WATCH;
  CHECK_STATUS(asyncrt_channel_new(&cfg, &tx, &rx), ASYNCRT_EINVAL);
  CHECK(tx == NULL && rx == NULL);

  /* the largest element works, copied whole */
  {
    unsigned char big[ASYNCRT_CHANNEL_ELEM_MAX], back[ASYNCRT_CHANNEL_ELEM_MAX];
    size_t i;
    asyncrt_channel_config_init(&cfg);
    cfg.elem_size = ASYNCRT_CHANNEL_ELEM_MAX;
    CHECK_OK(asyncrt_channel_new(&cfg, &tx, &rx));
    for (i = 0; i < sizeof big; i++) {
      big[i] = (unsigned char)(i * 7 + 1);
    }
    CHECK_OK(asyncrt_try_send(tx, big));
    memset(big, 0, sizeof big);
    CHECK_OK(asyncrt_try_recv(rx, back));
    for (i = 0; i < sizeof back; i++) {
      CHECK_INT(back[i], (unsigned char)(i * 7 + 1));
    }
    CHECK_OK(asyncrt_recv(rx, &op, &f));
    CHECK_INT(f.vtable->output_size, ASYNCRT_CHANNEL_ELEM_MAX);
    drop_fut(&f);
    CHECK_OK(asyncrt_sender_free(tx));
    CHECK_OK(asyncrt_receiver_free(rx));
  }

  /* kinds that cannot clone or subscribe */
  CHECK_OK(chan_new(ASYNCRT_CHANNEL_MPSC, 0, 0, &tx, &rx));
  CHECK_STATUS(asyncrt_sender_subscribe(tx, &rx2), ASYNCRT_EINVAL);
  CHECK_STATUS(asyncrt_sender_clone(tx, NULL), ASYNCRT_EINVAL);

  /* NULL handles and NULL buffers */
  CHECK_STATUS(asyncrt_try_send(NULL, &v), ASYNCRT_EINVAL);
  CHECK_STATUS(asyncrt_try_recv(NULL, &v), ASYNCRT_EINVAL);
  CHECK_STATUS(asyncrt_try_send(tx, NULL), ASYNCRT_EINVAL);
  CHECK_STATUS(asyncrt_try_recv(rx, NULL), ASYNCRT_EINVAL);
  CHECK_STATUS(asyncrt_sender_clone(NULL, &tx2), ASYNCRT_EINVAL);
  CHECK_STATUS(asyncrt_send(tx, NULL, &op, &f), ASYNCRT_EINVAL);
  CHECK_STATUS(asyncrt_send(tx, &v, NULL, &f), ASYNCRT_EINVAL);
  CHECK_STATUS(asyncrt_send(tx, &v, &op, NULL), ASYNCRT_EINVAL);
  CHECK_STATUS(asyncrt_recv(rx, NULL, &f), ASYNCRT_EINVAL);
  CHECK_STATUS(asyncrt_recv(rx, &op, NULL), ASYNCRT_EINVAL);
  CHECK_STATUS(asyncrt_channel_len(rx, NULL), ASYNCRT_EINVAL);
  CHECK_STATUS(asyncrt_channel_len(NULL, &len), ASYNCRT_EINVAL);
  CHECK_OK(asyncrt_sender_free(NULL));
  CHECK_OK(asyncrt_receiver_free(NULL));

  /* a sender passed as a receiver and the other way round: EHANDLE, and both
   * endpoints still work */
  CHECK_STATUS(asyncrt_try_recv((asyncrt_receiver *)tx, &v), ASYNCRT_EHANDLE);
  CHECK_STATUS(asyncrt_try_send((asyncrt_sender *)rx, &v), ASYNCRT_EHANDLE);
  CHECK_STATUS(asyncrt_receiver_free((asyncrt_receiver *)tx), ASYNCRT_EHANDLE);
  CHECK_STATUS(asyncrt_sender_free((asyncrt_sender *)rx), ASYNCRT_EHANDLE);
  CHECK_STATUS(asyncrt_recv((asyncrt_receiver *)tx, &op, &f), ASYNCRT_EHANDLE);
  CHECK_STATUS(asyncrt_send((asyncrt_sender *)rx, &v, &op, &f), ASYNCRT_EHANDLE);
  CHECK_STATUS(asyncrt_channel_len((asyncrt_receiver *)tx, &len), ASYNCRT_EHANDLE);
  CHECK_STATUS(asyncrt_sender_clone((asyncrt_sender *)rx, &tx2), ASYNCRT_EHANDLE);
  /* made-up handles */
  CHECK_STATUS(asyncrt_try_send((asyncrt_sender *)(uintptr_t)0x12345, &v), ASYNCRT_EHANDLE);
  CHECK_STATUS(asyncrt_try_recv((asyncrt_receiver *)(uintptr_t)~(uintptr_t)0, &v), ASYNCRT_EHANDLE);
  SEND_OK(tx, 3);
  RECV_IS(rx, 3);

  /* the _poll calls fail the poll with the status instead of returning it */
  {
    pf p;
    asyncrt_future pfut;
    memset(&p, 0, sizeof p);
    memset(&w, 0, sizeof w);
    pfut.self = &p;
    pfut.vtable = &pf_vtable;
    p.is_send = 1;
    p.tx = (asyncrt_sender *)rx;
    CHECK_INT(poll_with(&pfut, &w, &v, &failure), ASYNCRT_POLL_ERROR);
    CHECK_STATUS(failure, ASYNCRT_EHANDLE);
    p.is_send = 0;
    p.rx = (asyncrt_receiver *)tx;
    CHECK_INT(poll_with(&pfut, &w, &v, &failure), ASYNCRT_POLL_ERROR);
    CHECK_STATUS(failure, ASYNCRT_EHANDLE);
    p.rx = NULL;
    CHECK_INT(poll_with(&pfut, &w, &v, &failure), ASYNCRT_POLL_ERROR);
    CHECK_STATUS(failure, ASYNCRT_EINVAL);
  }

  /* freed handles: EHANDLE everywhere, also a second free */
  dead_tx = tx;
  dead_rx = rx;
  CHECK_OK(asyncrt_sender_free(tx));
  CHECK_OK(asyncrt_receiver_free(rx));
  CHECK_STATUS(asyncrt_sender_free(dead_tx), ASYNCRT_EHANDLE);
  CHECK_STATUS(asyncrt_receiver_free(dead_rx), ASYNCRT_EHANDLE);
  CHECK_STATUS(asyncrt_try_send(dead_tx, &v), ASYNCRT_EHANDLE);
  CHECK_STATUS(asyncrt_try_recv(dead_rx, &v), ASYNCRT_EHANDLE);
  CHECK_STATUS(asyncrt_sender_clone(dead_tx, &tx2), ASYNCRT_EHANDLE);
  CHECK_STATUS(asyncrt_sender_subscribe(dead_tx, &rx2), ASYNCRT_EHANDLE);
  CHECK_STATUS(asyncrt_send(dead_tx, &v, &op, &f), ASYNCRT_EHANDLE);
  CHECK_STATUS(asyncrt_recv(dead_rx, &op, &f), ASYNCRT_EHANDLE);
  CHECK_STATUS(asyncrt_channel_len(dead_rx, &len), ASYNCRT_EHANDLE);
  CHECK_STATUS(asyncrt_last_status(), ASYNCRT_EHANDLE);
  CHECK(strlen(asyncrt_last_error()) > 0);

  /* a freed handle's slot reused by a new channel: the old one stays dead */
  CHECK_OK(chan_new(ASYNCRT_CHANNEL_MPSC, 0, 0, &tx, &rx));
  CHECK_STATUS(asyncrt_try_send(dead_tx, &v), ASYNCRT_EHANDLE);
  CHECK_STATUS(asyncrt_try_recv(dead_rx, &v), ASYNCRT_EHANDLE);
  RECV_FAILS(rx, ASYNCRT_EAGAIN);
  CHECK_OK(asyncrt_sender_free(tx));
  CHECK_OK(asyncrt_receiver_free(rx));

  /* status names */
  CHECK(strstr(asyncrt_status_str(ASYNCRT_ECLOSED), "ECLOSED") != NULL);
  CHECK(strstr(asyncrt_status_str(ASYNCRT_ELAGGED), "ELAGGED") != NULL);
}

/* --- threads ---------------------------------------------------------------------------- */

#define PRODUCERS 2
#define PER_PRODUCER 20000

typedef struct producer {
  asyncrt_sender *tx; /* its own; freed by the thread when it is done */
  uint64_t id;
  int status;         /* the status that stopped it (OK: all sent) */
  int sent;
} producer;

/* A thread asyncrt never saw: try_send in a loop, retrying on EAGAIN. It
 * stops early at any other status (ECLOSED if the test gave up and freed the
 * receiver), so it always ends. */
static void *producer_main(void *arg) {
  producer *p = arg;
  int i, rc;
  p->status = ASYNCRT_OK;
  for (i = 0; i < PER_PRODUCER; i++) {
    uint64_t v = p->id << 32 | (uint64_t)i;
    while ((rc = asyncrt_try_send(p->tx, &v)) == ASYNCRT_EAGAIN) {
      sched_yield();
    }
    if (rc != ASYNCRT_OK) {
      p->status = rc;
      break;
    }
    p->sent++;
  }
  asyncrt_sender_free(p->tx);
  return NULL;
}

/* Values a receiver got from PRODUCERS senders: each sender's values all
 * there, once, in order. Returns 0 if so (else prints the first fault). */
static int check_per_sender_order(const uint64_t *got, int n, int senders, int per_sender) {
  int next[8] = {0};
  int i;
  if (n != senders * per_sender) {
    fprintf(stderr, "  received %d values, want %d\n", n, senders * per_sender);
    return 1;
  }
  for (i = 0; i < n; i++) {
    uint64_t id = got[i] >> 32, seq = got[i] & 0xffffffffu;
    if (id >= (uint64_t)senders || seq != (uint64_t)next[id]) {
      fprintf(stderr, "  value %d: sender %llu seq %llu, want seq %d\n", i, (unsigned long long)id,
              (unsigned long long)seq, id < (uint64_t)senders ? next[id] : -1);
      return 1;
    }
    next[id]++;
  }
  return 0;
}

/* Plain threads try_send into a capacity-4 channel; a task on worker 1 of a
 * 2-worker executor receives until ECLOSED (the threads free their senders
 * when done). */
static void test_plain_threads_to_a_task(void) {
  asyncrt_executor *ex = executor(ASYNCRT_EXECUTOR_THREADS, 2);
  asyncrt_sender *tx = NULL;
  asyncrt_receiver *rx = NULL;
  asyncrt_task *t = NULL;
  chan_task *r = calloc(1, sizeof *r);
  producer *p = calloc(PRODUCERS, sizeof *p);
  uint64_t *got = calloc(PRODUCERS * PER_PRODUCER, sizeof *got);
  pthread_t th[PRODUCERS];
  int i, rc;
  CHECK(ex != NULL && r != NULL && p != NULL && got != NULL);
  CHECK_OK(chan_new(ASYNCRT_CHANNEL_MPSC, 4, 0, &tx, &rx));
  receiver_init(r, rx, 0, got, PRODUCERS * PER_PRODUCER, CT_UNTIL_CLOSED);
  CHECK_OK(spawn_task(ex, r, ASYNCRT_SPAWN_WORKER(1), &t));
  for (i = 0; i < PRODUCERS; i++) {
    p[i].id = (uint64_t)i;
    CHECK_OK(asyncrt_sender_clone(tx, &p[i].tx));
  }
  CHECK_OK(asyncrt_sender_free(tx)); /* the threads' senders keep it open */
  for (i = 0; i < PRODUCERS; i++) {
    CHECK(pthread_create(&th[i], NULL, producer_main, &p[i]) == 0);
  }
  rc = await_task(ex, t, 20 * TF_SECOND_NS);
  if (rc != ASYNCRT_OK) {
    /* give up: the executor's end drops the task's receive, the receiver's
     * free closes the channel, and the threads stop at ECLOSED */
    asyncrt_executor_free(ex);
    asyncrt_receiver_free(rx);
    for (i = 0; i < PRODUCERS; i++) {
      pthread_join(th[i], NULL);
    }
    CHECK_OK(rc);
  }
  for (i = 0; i < PRODUCERS; i++) {
    CHECK(pthread_join(th[i], NULL) == 0);
    CHECK_OK(p[i].status);
    CHECK_INT(p[i].sent, PER_PRODUCER);
  }
  CHECK_INT(r->failure, ASYNCRT_ECLOSED);
  CHECK(check_per_sender_order(got, r->done, PRODUCERS, PER_PRODUCER) == 0);
  CHECK_OK(asyncrt_task_release(t));
  CHECK_OK(asyncrt_receiver_free(rx));
  CHECK_OK(asyncrt_executor_free(ex));
  free(r);
  free(p);
  free(got);
}

/* --- ping-pong between workers ------------------------------------------------------------- */

#define ROUNDS 10000

typedef struct pp {
  chan_io out, in;
  int is_ping;
  int round, phase; /* phase 0: ping sends / pong receives; 1: the other way */
  uint64_t value;
  int faults;       /* a value out of order */
  pthread_t thread;
  int polls, moved;
} pp;

/* Ping sends r and expects 2r + 1 back; pong expects r and answers 2r + 1. */
static int pp_poll(void *self, asyncrt_context *cx, void *out) {
  pp *p = self;
  int r;
  (void)out;
  if (p->polls++ == 0) {
    p->thread = pthread_self();
  } else if (!pthread_equal(p->thread, pthread_self())) {
    p->moved++;
  }
  while (p->round < ROUNDS) {
    int sending = p->is_ping ? p->phase == 0 : p->phase == 1;
    if (sending) {
      if (!p->out.live) {
        p->value = p->is_ping ? (uint64_t)p->round : 2 * (uint64_t)p->round + 1;
      }
      r = io_send(&p->out, cx, &p->value);
    } else {
      uint64_t v = 0;
      r = io_recv(&p->in, cx, &v);
      if (r == ASYNCRT_POLL_READY && v != (p->is_ping ? 2 * (uint64_t)p->round + 1 : (uint64_t)p->round)) {
        p->faults++;
      }
    }
    if (r != ASYNCRT_POLL_READY) {
      return r;
    }
    if (p->phase == 1) {
      p->round++;
    }
    p->phase ^= 1;
  }
  return ASYNCRT_POLL_READY;
}

static void pp_drop(void *self) {
  pp *p = self;
  io_drop(&p->out);
  io_drop(&p->in);
}

static const asyncrt_future_vtable pp_vtable = {sizeof(asyncrt_future_vtable), 0, pp_poll, pp_drop, NULL};

/* A task on worker 0 and one on worker 1 play 10,000 rounds through two
 * capacity-1 channels (one side with the futures, the other with the _poll
 * calls); every value arrives in its round, and neither task moves. */
static void test_ping_pong_between_workers(void) {
  asyncrt_executor *ex = executor(ASYNCRT_EXECUTOR_THREADS, 2);
  asyncrt_sender *tx1 = NULL, *tx2 = NULL;
  asyncrt_receiver *rx1 = NULL, *rx2 = NULL;
  asyncrt_task *t[2] = {NULL, NULL};
  pp *p = calloc(2, sizeof *p);
  asyncrt_future f;
  int i, rc0, rc1;
  CHECK(ex != NULL && p != NULL);
  CHECK_OK(chan_new(ASYNCRT_CHANNEL_MPSC, 1, 0, &tx1, &rx1)); /* ping -> pong */
  CHECK_OK(chan_new(ASYNCRT_CHANNEL_MPSC, 1, 0, &tx2, &rx2)); /* pong -> ping */
  p[0].is_ping = 1;
  p[0].out.tx = tx1;
  p[0].in.rx = rx2;
  p[1].out.tx = tx2;
  p[1].in.rx = rx1;
  p[1].out.poll_form = 1;
  p[1].in.poll_form = 1;
  for (i = 0; i < 2; i++) {
    f.self = &p[i];
    f.vtable = &pp_vtable;
    CHECK_OK(asyncrt_spawn(ex, &f, ASYNCRT_SPAWN_WORKER(i), &t[i]));
  }
  rc0 = await_task(ex, t[0], 20 * TF_SECOND_NS);
  rc1 = rc0 == ASYNCRT_OK ? await_task(ex, t[1], TF_TIMEOUT_NS) : rc0;
  if (rc0 != ASYNCRT_OK || rc1 != ASYNCRT_OK) {
    fprintf(stderr, "  stuck at ping round %d phase %d, pong round %d phase %d\n", p[0].round, p[0].phase,
            p[1].round, p[1].phase);
    CHECK_OK(rc0);
    CHECK_OK(rc1);
  }
  for (i = 0; i < 2; i++) {
    CHECK_INT(p[i].round, ROUNDS);
    CHECK_INT(p[i].faults, 0);
    CHECK_INT(p[i].moved, 0);
    CHECK_OK(asyncrt_task_release(t[i]));
  }
  CHECK(!pthread_equal(p[0].thread, p[1].thread));
  RECV_FAILS(rx1, ASYNCRT_EAGAIN);
  RECV_FAILS(rx2, ASYNCRT_EAGAIN);
  CHECK_OK(asyncrt_sender_free(tx1));
  CHECK_OK(asyncrt_sender_free(tx2));
  CHECK_OK(asyncrt_receiver_free(rx1));
  CHECK_OK(asyncrt_receiver_free(rx2));
  CHECK_OK(asyncrt_executor_free(ex));
  free(p);
}

/* A waker that is not an asyncrt task's runs only outside the channel's
 * lock: its clone may look at the channel (asyncrt_channel_len) without a
 * deadlock, both when a receive registers it and when a send wakes it. */
static asyncrt_receiver *clone_probe_rx;
static int clone_probe_calls, clone_probe_wakes;
static const asyncrt_waker_vtable clone_probe_vtable;
static void clone_probe_clone(const void *data, asyncrt_waker *out) {
  size_t len = 99;
  clone_probe_calls++;
  CHECK_OK(asyncrt_channel_len(clone_probe_rx, &len)); /* would deadlock under the lock */
  *out = (asyncrt_waker){data, &clone_probe_vtable};
}
static void clone_probe_wake(const void *data) {
  (void)data;
  clone_probe_wakes++;
}
static void clone_probe_nop(const void *data) { (void)data; }
static const asyncrt_waker_vtable clone_probe_vtable = {clone_probe_clone, clone_probe_wake, clone_probe_wake,
                                                        clone_probe_nop};

static void test_user_waker_runs_outside_the_lock(void) {
  asyncrt_sender *tx = NULL;
  asyncrt_receiver *rx = NULL;
  asyncrt_chan_op op;
  asyncrt_waker wk = {&op, &clone_probe_vtable};
  uint64_t v = 0, seven = 7;
  int failure = 0;
  CHECK_OK(chan_new(ASYNCRT_CHANNEL_MPSC, 1, 0, &tx, &rx));
  clone_probe_rx = rx;
  clone_probe_calls = clone_probe_wakes = 0;
  memset(&op, 0, sizeof op);
  {
    asyncrt_future f;
    CHECK_OK(asyncrt_recv(rx, &op, &f));
    CHECK_INT(asyncrt_poll_with_waker(&f, &wk, &v, &failure), ASYNCRT_POLL_PENDING);
    CHECK_INT(clone_probe_calls, 1);
    CHECK_OK(asyncrt_try_send(tx, &seven)); /* wakes the registration, outside the lock */
    CHECK_INT(clone_probe_wakes, 1);
    CHECK_INT(asyncrt_poll_with_waker(&f, &wk, &v, &failure), ASYNCRT_POLL_READY);
    CHECK_INT(v, 7);
    f.vtable->drop(f.self);
  }
  CHECK_OK(asyncrt_sender_free(tx));
  CHECK_OK(asyncrt_receiver_free(rx));
}

int main(void) {
  CHECK_BEGIN();
  RUN(test_mpsc_bounded);
  RUN(test_mpsc_unbounded_grows);
  RUN(test_oneshot);
  RUN(test_broadcast_every_receiver);
  RUN(test_broadcast_lagging_receiver);
  RUN(test_many_waiting_receivers);
  RUN(test_broadcast_len_of_a_lagging_receiver);
  RUN(test_user_waker_runs_outside_the_lock);
  RUN(test_watch);
  RUN(test_close_last_sender);
  RUN(test_close_last_receiver);
  RUN(test_close_wakes_blocked_sender_task);
  RUN(test_blocked_senders_fifo);
  RUN(test_dropped_send_passes_wake);
  RUN(test_cancelled_sender_task_passes_wake);
  RUN(test_dropped_recv_loses_nothing);
  RUN(test_channel_outlives_executor);
  RUN(test_value_drop);
  RUN(test_forms_on_a_local_executor);
  RUN(test_poll_form_cancel);
  RUN(test_future_outlives_handle);
  RUN(test_misuse);
  RUN(test_plain_threads_to_a_task);
  RUN(test_ping_pong_between_workers);
  return CHECK_END("test_channels");
}
