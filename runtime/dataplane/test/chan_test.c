/* chan_test.c -- channels (art_chan.c) under several threads, without Go and
 * without executors, so that ASan and TSan see every access. Each thread
 * polls with a hand-made waker: wake sets a futex word the thread sleeps on,
 * and every clone, wake and drop is counted, so a test ends by checking that
 * the channel kept no waker (clones == wakes + drops).
 *
 * Prints "PASS <name>" per test; exits 1 at the first failure. Every wait is
 * bounded: a lost wakeup fails the test instead of hanging it. */
#include <linux/futex.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "../art.h"

#include "check.h"

/* ---- a thread's waker ------------------------------------------------------- */

typedef struct tw {
  _Atomic uint32_t woken; /* the futex word */
} tw;

/* Over every tw: clones handed out, and wakes (consuming) and drops that
 * ended one. */
static _Atomic long clones, wakes, drops;

static void tw_clone(const void *data, asyncrt_waker *out);
static void tw_signal(const void *data) {
  tw *w = (tw *)data;
  atomic_store(&w->woken, 1);
  syscall(SYS_futex, &w->woken, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
}
static void tw_wake(const void *data) {
  tw_signal(data);
  atomic_fetch_add(&wakes, 1);
}
static void tw_drop(const void *data) {
  (void)data;
  atomic_fetch_add(&drops, 1);
}
static const asyncrt_waker_vtable tw_vtable = {tw_clone, tw_wake, tw_signal, tw_drop};
static void tw_clone(const void *data, asyncrt_waker *out) {
  atomic_fetch_add(&clones, 1);
  out->data = data;
  out->vtable = &tw_vtable;
}

static void wakers_reset(void) {
  atomic_store(&clones, 0);
  atomic_store(&wakes, 0);
  atomic_store(&drops, 0);
}

/* Once every endpoint is freed, the channel holds no clone. */
static void wakers_balanced(const char *test) {
  long c = atomic_load(&clones), w = atomic_load(&wakes), d = atomic_load(&drops);
  CHECK(c == w + d, "%s: %ld waker clones, %ld wakes + %ld drops: %ld leaked", test, c, w, d, c - w - d);
}

/* Sleeps until woken (and clears the flag); fails after 10 s without a wake. */
static void tw_wait(tw *w) {
  for (int i = 0; !atomic_exchange(&w->woken, 0); i++) {
    CHECK(i < 100, "no wake for 10 s: lost wakeup?");
    struct timespec ts = {0, 100000000};
    syscall(SYS_futex, &w->woken, FUTEX_WAIT_PRIVATE, 0, &ts, NULL, 0);
  }
}

static asyncrt_context ctx_of(tw *w) {
  asyncrt_context cx;
  memset(&cx, 0, sizeof cx);
  cx.waker.data = w;
  cx.waker.vtable = &tw_vtable;
  return cx;
}

/* A send polled until it is not pending: OK or the failure. */
static int send_blocking(void *tx, const uint64_t *v, tw *w, asyncrt_chan_op *op) {
  asyncrt_context cx = ctx_of(w);
  for (;;) {
    atomic_store(&w->woken, 0);
    cx.failure = 0;
    int r = art_send_poll(tx, v, &cx, op);
    if (r == ASYNCRT_POLL_READY) return ASYNCRT_OK;
    if (r == ASYNCRT_POLL_ERROR) return cx.failure;
    CHECK(r == ASYNCRT_POLL_PENDING, "send poll returned %d", r);
    tw_wait(w);
  }
}

static int recv_blocking(void *rx, uint64_t *v, tw *w, asyncrt_chan_op *op) {
  asyncrt_context cx = ctx_of(w);
  for (;;) {
    atomic_store(&w->woken, 0);
    cx.failure = 0;
    int r = art_recv_poll(rx, v, &cx, op);
    if (r == ASYNCRT_POLL_READY) return ASYNCRT_OK;
    if (r == ASYNCRT_POLL_ERROR) return cx.failure;
    CHECK(r == ASYNCRT_POLL_PENDING, "receive poll returned %d", r);
    tw_wait(w);
  }
}

/* ---- channels ----------------------------------------------------------------- */

typedef struct chan {
  uint64_t txh, rxh;
  void *tx, *rx;
} chan;

static _Atomic long dropped_values;
static _Atomic unsigned char *drop_marks; /* per value, when values are small numbers */
static size_t drop_marks_len;

static void count_drop(void *value, void *user) {
  uint64_t v;
  memcpy(&v, value, sizeof v);
  CHECK(user == &dropped_values, "value_drop got user %p", user);
  atomic_fetch_add(&dropped_values, 1);
  if (drop_marks) {
    CHECK(v < drop_marks_len, "value_drop of a value never sent: %llu", (unsigned long long)v);
    atomic_fetch_add(&drop_marks[v], 1);
  }
}

static chan chan_new(unsigned kind, size_t capacity, int with_drop) {
  asyncrt_channel_config cfg = {.size = sizeof cfg, .kind = kind, .elem_size = sizeof(uint64_t),
                                .capacity = capacity};
  if (with_drop) {
    cfg.value_drop = count_drop;
    cfg.user = &dropped_values;
  }
  chan c;
  CHECK(art_channel_new(&cfg, &c.txh, &c.rxh) == ASYNCRT_OK, "art_channel_new: %s", art_last_error());
  c.tx = art_handle_get(c.txh, ART_H_SENDER);
  c.rx = art_handle_get(c.rxh, ART_H_RECEIVER);
  CHECK(c.tx && c.rx, "endpoints resolve");
  CHECK(!art_handle_get(c.txh, ART_H_RECEIVER) && !art_handle_get(c.rxh, ART_H_SENDER), "typed handles");
  return c;
}

/* A new sender of c: its handle and endpoint. */
static void sender_clone(void *tx, uint64_t *h, void **ep) {
  CHECK(art_sender_clone(tx, 0, h) == ASYNCRT_OK, "art_sender_clone: %s", art_last_error());
  *ep = art_handle_get(*h, ART_H_SENDER);
  CHECK(*ep, "clone resolves");
}

static void endpoint_free(uint64_t h, void *ep) {
  CHECK(art_endpoint_free(h, ep) == ASYNCRT_OK, "art_endpoint_free: %s", art_last_error());
  CHECK(!art_handle_get(h, ART_H_SENDER) && !art_handle_get(h, ART_H_RECEIVER), "freed handle is dead");
}

#define VAL(id, seq) ((uint64_t)(id) << 32 | (uint64_t)(seq))
#define VAL_ID(v) ((unsigned)((v) >> 32))
#define VAL_SEQ(v) ((unsigned)((v)&0xffffffffu))

/* ---- several producers, one consumer ------------------------------------------ */

#define PRODUCERS 4
#define PER_PRODUCER 20000

typedef struct producer {
  uint64_t h;
  void *tx;
  unsigned id;
  int use_try; /* art_try_send with retries, else the poll form */
  int status;
  pthread_t thread;
} producer;

static void *producer_main(void *arg) {
  producer *p = arg;
  tw w = {0};
  asyncrt_chan_op op;
  memset(&op, 0, sizeof op);
  p->status = ASYNCRT_OK;
  for (unsigned i = 0; i < PER_PRODUCER && !p->status; i++) {
    uint64_t v = VAL(p->id, i);
    if (p->use_try) {
      int rc;
      while ((rc = art_try_send(p->tx, &v)) == ASYNCRT_EAGAIN) sched_yield();
      p->status = rc;
    } else {
      p->status = send_blocking(p->tx, &v, &w, &op);
    }
  }
  endpoint_free(p->h, p->tx); /* the last one closes the channel */
  return NULL;
}

/* Consumes until ECLOSED, checking each producer's values arrive once, in
 * order. use_try: art_try_recv with retries, else the poll form. */
static void consume_all(void *rx, int use_try, unsigned producers, unsigned per) {
  unsigned next[PRODUCERS] = {0};
  tw w = {0};
  asyncrt_chan_op op;
  memset(&op, 0, sizeof op);
  for (;;) {
    uint64_t v = ~0ull;
    int rc;
    if (use_try) {
      while ((rc = art_try_recv(rx, &v)) == ASYNCRT_EAGAIN) sched_yield();
    } else {
      rc = recv_blocking(rx, &v, &w, &op);
    }
    if (rc == ASYNCRT_ECLOSED) break;
    CHECK(rc == ASYNCRT_OK, "receive: %d (%s)", rc, art_last_error());
    unsigned id = VAL_ID(v), seq = VAL_SEQ(v);
    CHECK(id < producers, "value from no producer: %#llx", (unsigned long long)v);
    CHECK(seq == next[id], "producer %u: got seq %u, want %u", id, seq, next[id]);
    next[id]++;
  }
  for (unsigned i = 0; i < producers; i++) CHECK(next[i] == per, "producer %u: %u values, want %u", i, next[i], per);
}

static void run_producers(size_t capacity, int consumer_try) {
  wakers_reset();
  atomic_store(&dropped_values, 0);
  chan c = chan_new(ASYNCRT_CHANNEL_MPSC, capacity, 1);
  producer p[PRODUCERS];
  for (unsigned i = 0; i < PRODUCERS; i++) {
    p[i] = (producer){.id = i, .use_try = i % 2};
    sender_clone(c.tx, &p[i].h, &p[i].tx);
  }
  endpoint_free(c.txh, c.tx); /* the producers' senders keep it open */
  for (unsigned i = 0; i < PRODUCERS; i++) CHECK(!pthread_create(&p[i].thread, NULL, producer_main, &p[i]), "thread");
  consume_all(c.rx, consumer_try, PRODUCERS, PER_PRODUCER);
  for (unsigned i = 0; i < PRODUCERS; i++) {
    pthread_join(p[i].thread, NULL);
    CHECK(p[i].status == ASYNCRT_OK, "producer %u: %d", i, p[i].status);
  }
  CHECK(art_channel_len(c.rx) == 0, "drained");
  endpoint_free(c.rxh, c.rx);
  CHECK(atomic_load(&dropped_values) == 0, "value_drop ran %ld times on a drained channel",
        atomic_load(&dropped_values));
  wakers_balanced("producers");
}

static void test_producers_one_consumer(void) {
  static const size_t caps[] = {1, 4, 0};
  for (unsigned i = 0; i < sizeof caps / sizeof caps[0]; i++) {
    run_producers(caps[i], 0);
    run_producers(caps[i], 1);
  }
  puts("PASS producers_one_consumer");
}

/* ---- blocked senders withdrawn ------------------------------------------------ */

#define CANCELLERS 4
#define PER_CANCELLER 10000

typedef struct canceller {
  uint64_t h;
  void *tx;
  unsigned id;
  unsigned char withdrawn[PER_CANCELLER];
  pthread_t thread;
} canceller;

/* Each value is sent with the poll form. When it waits: every third value is
 * withdrawn at once (still queued), every third after its wake (its turn
 * passes on), the rest are sent. A withdrawn value must never arrive. */
static void *canceller_main(void *arg) {
  canceller *k = arg;
  tw w = {0};
  asyncrt_context cx = ctx_of(&w);
  asyncrt_chan_op op;
  memset(&op, 0, sizeof op);
  for (unsigned i = 0; i < PER_CANCELLER; i++) {
    uint64_t v = VAL(k->id, i);
    atomic_store(&w.woken, 0);
    cx.failure = 0;
    int r = art_send_poll(k->tx, &v, &cx, &op);
    if (r == ASYNCRT_POLL_PENDING) {
      if (i % 3 == 0) {
        /* The yield lets the consumer make room and wake this op before the
         * cancel: a cancel racing with a wake (the op's state read by its
         * poller while the consumer writes it under the lock). */
        if (i % 2) sched_yield();
        art_chan_op_cancel(&op);
        k->withdrawn[i] = 1;
        continue;
      }
      if (i % 3 == 1) {
        tw_wait(&w);
        art_chan_op_cancel(&op);
        k->withdrawn[i] = 1;
        continue;
      }
      for (;;) {
        tw_wait(&w);
        cx.failure = 0;
        r = art_send_poll(k->tx, &v, &cx, &op);
        if (r != ASYNCRT_POLL_PENDING) break;
      }
    }
    CHECK(r == ASYNCRT_POLL_READY, "canceller %u value %u: %d (%d)", k->id, i, r, cx.failure);
  }
  endpoint_free(k->h, k->tx);
  return NULL;
}

static void test_blocked_senders_withdrawn(void) {
  wakers_reset();
  chan c = chan_new(ASYNCRT_CHANNEL_MPSC, 1, 0);
  canceller *k = calloc(CANCELLERS, sizeof *k);
  unsigned char(*got)[PER_CANCELLER] = calloc(CANCELLERS, PER_CANCELLER);
  CHECK(k && got, "calloc");
  for (unsigned i = 0; i < CANCELLERS; i++) {
    k[i].id = i;
    sender_clone(c.tx, &k[i].h, &k[i].tx);
  }
  endpoint_free(c.txh, c.tx);
  for (unsigned i = 0; i < CANCELLERS; i++) CHECK(!pthread_create(&k[i].thread, NULL, canceller_main, &k[i]), "thread");
  /* the consumer: every delivered value once, in order per sender */
  tw w = {0};
  asyncrt_chan_op op;
  memset(&op, 0, sizeof op);
  unsigned last[CANCELLERS];
  memset(last, 0xff, sizeof last);
  long received = 0;
  for (;;) {
    uint64_t v;
    int rc = recv_blocking(c.rx, &v, &w, &op);
    if (rc == ASYNCRT_ECLOSED) break;
    CHECK(rc == ASYNCRT_OK, "receive: %d", rc);
    unsigned id = VAL_ID(v), seq = VAL_SEQ(v);
    CHECK(id < CANCELLERS && seq < PER_CANCELLER, "stray value %#llx", (unsigned long long)v);
    CHECK(last[id] == ~0u || seq > last[id], "sender %u: seq %u after %u", id, seq, last[id]);
    CHECK(!got[id][seq], "sender %u seq %u received twice", id, seq);
    got[id][seq] = 1;
    last[id] = seq;
    received++;
  }
  long withdrawn = 0;
  for (unsigned i = 0; i < CANCELLERS; i++) {
    pthread_join(k[i].thread, NULL);
    for (unsigned s = 0; s < PER_CANCELLER; s++) {
      CHECK(got[i][s] + k[i].withdrawn[s] == 1, "sender %u seq %u: received %d, withdrawn %d", i, s, got[i][s],
            k[i].withdrawn[s]);
      withdrawn += k[i].withdrawn[s];
    }
  }
  endpoint_free(c.rxh, c.rx);
  wakers_balanced("withdrawn");
  printf("PASS blocked_senders_withdrawn (%ld received, %ld withdrawn)\n", received, withdrawn);
  free(k);
  free(got);
}

/* ---- the receiver freed while senders block ----------------------------------- */

#define BLOCKERS 3
#define FREE_ROUNDS 300
#define VALUES_PER_ROUND 4096

typedef struct blocker {
  uint64_t h;
  void *tx;
  unsigned id;
  _Atomic unsigned *next_value; /* shared: unique values */
  unsigned char *sent;          /* per value: went in */
  int status;
  pthread_t thread;
} blocker;

static void *blocker_main(void *arg) {
  blocker *b = arg;
  tw w = {0};
  asyncrt_chan_op op;
  memset(&op, 0, sizeof op);
  for (;;) {
    unsigned n = atomic_fetch_add(b->next_value, 1);
    CHECK(n < VALUES_PER_ROUND, "ran out of values");
    uint64_t v = n;
    int rc = send_blocking(b->tx, &v, &w, &op);
    if (rc != ASYNCRT_OK) {
      b->status = rc;
      break;
    }
    b->sent[n] = 1;
  }
  endpoint_free(b->h, b->tx);
  return NULL;
}

/* Senders blocked on a capacity-1 channel; the receiver takes a few values,
 * then is freed: every sender gets ECLOSED, and at the channel's death
 * value_drop runs exactly on the values that went in and were not received. */
static void test_receiver_freed_while_senders_block(void) {
  unsigned char *sent = malloc(VALUES_PER_ROUND), *recvd = malloc(VALUES_PER_ROUND);
  _Atomic unsigned char *marks = malloc(VALUES_PER_ROUND);
  CHECK(sent && recvd && marks, "malloc");
  for (unsigned round = 0; round < FREE_ROUNDS; round++) {
    wakers_reset();
    atomic_store(&dropped_values, 0);
    memset(sent, 0, VALUES_PER_ROUND);
    memset(recvd, 0, VALUES_PER_ROUND);
    for (unsigned i = 0; i < VALUES_PER_ROUND; i++) atomic_init(&marks[i], 0);
    drop_marks = marks;
    drop_marks_len = VALUES_PER_ROUND;
    _Atomic unsigned next_value = 0;
    chan c = chan_new(ASYNCRT_CHANNEL_MPSC, 1 + round % 2, 1);
    blocker b[BLOCKERS];
    for (unsigned i = 0; i < BLOCKERS; i++) {
      b[i] = (blocker){.id = i, .next_value = &next_value, .sent = sent};
      sender_clone(c.tx, &b[i].h, &b[i].tx);
    }
    endpoint_free(c.txh, c.tx);
    for (unsigned i = 0; i < BLOCKERS; i++) CHECK(!pthread_create(&b[i].thread, NULL, blocker_main, &b[i]), "thread");
    tw w = {0};
    asyncrt_chan_op op;
    memset(&op, 0, sizeof op);
    for (unsigned i = 0; i < round % 7; i++) {
      uint64_t v;
      CHECK(recv_blocking(c.rx, &v, &w, &op) == ASYNCRT_OK, "receive");
      CHECK(v < VALUES_PER_ROUND && !recvd[v], "value %llu", (unsigned long long)v);
      recvd[v] = 1;
    }
    if (round % 3 == 0) { /* sometimes leave a receive pending at the free */
      uint64_t v;
      asyncrt_context cx = ctx_of(&w);
      for (int j = 0; j < 3 && art_recv_poll(c.rx, &v, &cx, &op) == ASYNCRT_POLL_READY; j++) {
        CHECK(v < VALUES_PER_ROUND && !recvd[v], "value %llu", (unsigned long long)v);
        recvd[v] = 1;
      }
    }
    endpoint_free(c.rxh, c.rx);
    for (unsigned i = 0; i < BLOCKERS; i++) {
      pthread_join(b[i].thread, NULL);
      CHECK(b[i].status == ASYNCRT_ECLOSED, "round %u sender %u ended with %d", round, i, b[i].status);
    }
    /* every endpoint is gone: the channel died with the last sender */
    long in = 0, out = 0;
    for (unsigned v = 0; v < VALUES_PER_ROUND; v++) {
      unsigned m = atomic_load(&marks[v]);
      CHECK(!recvd[v] || sent[v], "round %u: value %u received but never sent", round, v);
      CHECK(m == (unsigned)(sent[v] && !recvd[v]), "round %u value %u: sent %d received %d, value_drop ran %u times",
            round, v, sent[v], recvd[v], m);
      in += sent[v];
      out += recvd[v];
    }
    CHECK(atomic_load(&dropped_values) == in - out, "round %u: %ld dropped, want %ld", round,
          atomic_load(&dropped_values), in - out);
    drop_marks = NULL;
    wakers_balanced("receiver freed");
  }
  free(sent);
  free(recvd);
  free((void *)marks);
  puts("PASS receiver_freed_while_senders_block");
}

/* ---- broadcast and watch receivers on their own threads ------------------------- */

#define WATCHERS 3
#define BROADCASTS 50000

typedef struct watcher {
  uint64_t h;
  void *rx;
  unsigned kind;
  long got, lagged;
  uint64_t last;
  pthread_t thread;
} watcher;

/* Values arrive strictly increasing; a broadcast receiver misses values only
 * after an ELAGGED; the last value seen before ECLOSED is the last sent. */
static void *watcher_main(void *arg) {
  watcher *k = arg;
  tw w = {0};
  asyncrt_chan_op op;
  memset(&op, 0, sizeof op);
  int have = 0, told = 0;
  for (;;) {
    uint64_t v;
    int rc = recv_blocking(k->rx, &v, &w, &op);
    if (rc == ASYNCRT_ECLOSED) break;
    if (rc == ASYNCRT_ELAGGED) { /* twice in a row if it fell behind again meanwhile */
      CHECK(k->kind == ASYNCRT_CHANNEL_BROADCAST, "ELAGGED from a kind %u channel", k->kind);
      told = 1;
      k->lagged++;
      continue;
    }
    CHECK(rc == ASYNCRT_OK, "receive: %d", rc);
    CHECK(!have || v > k->last, "value %llu after %llu", (unsigned long long)v, (unsigned long long)k->last);
    if (k->kind == ASYNCRT_CHANNEL_BROADCAST && !have && !told) CHECK(v == 0, "first value %llu", (unsigned long long)v);
    if (k->kind == ASYNCRT_CHANNEL_BROADCAST && have && !told)
      CHECK(v == k->last + 1, "skipped from %llu to %llu without ELAGGED", (unsigned long long)k->last,
            (unsigned long long)v);
    told = 0;
    have = 1;
    k->last = v;
    k->got++;
  }
  CHECK(have && k->last == BROADCASTS - 1, "last value %llu, want %d", (unsigned long long)k->last, BROADCASTS - 1);
  endpoint_free(k->h, k->rx);
  return NULL;
}

static void run_watchers(unsigned kind) {
  wakers_reset();
  chan c = chan_new(kind, 8, 0);
  watcher k[WATCHERS];
  for (unsigned i = 0; i < WATCHERS; i++) {
    k[i] = (watcher){.kind = kind};
    if (i == 0) {
      k[i].h = c.rxh;
      k[i].rx = c.rx;
    } else {
      CHECK(art_sender_clone(c.tx, 1, &k[i].h) == ASYNCRT_OK, "subscribe");
      k[i].rx = art_handle_get(k[i].h, ART_H_RECEIVER);
      CHECK(k[i].rx, "subscriber resolves");
    }
  }
  for (unsigned i = 0; i < WATCHERS; i++) CHECK(!pthread_create(&k[i].thread, NULL, watcher_main, &k[i]), "thread");
  for (uint64_t v = 0; v < BROADCASTS; v++) {
    CHECK(art_try_send(c.tx, &v) == ASYNCRT_OK, "send %llu", (unsigned long long)v);
    if (v % 64 == 0) sched_yield();
  }
  endpoint_free(c.txh, c.tx);
  for (unsigned i = 0; i < WATCHERS; i++) pthread_join(k[i].thread, NULL);
  wakers_balanced(kind == ASYNCRT_CHANNEL_WATCH ? "watch" : "broadcast");
  printf("PASS %s receivers (got %ld/%ld/%ld, lagged %ld/%ld/%ld)\n", kind == ASYNCRT_CHANNEL_WATCH ? "watch" : "broadcast",
         k[0].got, k[1].got, k[2].got, k[0].lagged, k[1].lagged, k[2].lagged);
}

static void test_broadcast_and_watch_receivers(void) {
  run_watchers(ASYNCRT_CHANNEL_BROADCAST);
  run_watchers(ASYNCRT_CHANNEL_WATCH);
}

/* ---- senders cloned and freed while the consumer receives ----------------------- */

#define CHURNERS 4
#define CHURN_ROUNDS 2000

typedef struct churner {
  void *parent; /* a sender that lives until every churner is done */
  unsigned id;
  pthread_t thread;
} churner;

/* Each round: clone a sender, send one value, free the clone. */
static void *churner_main(void *arg) {
  churner *k = arg;
  tw w = {0};
  asyncrt_chan_op op;
  memset(&op, 0, sizeof op);
  for (unsigned i = 0; i < CHURN_ROUNDS; i++) {
    uint64_t h;
    void *tx;
    sender_clone(k->parent, &h, &tx);
    uint64_t v = VAL(k->id, i);
    CHECK(send_blocking(tx, &v, &w, &op) == ASYNCRT_OK, "send");
    endpoint_free(h, tx);
  }
  return NULL;
}

static void test_sender_churn(void) {
  wakers_reset();
  chan c = chan_new(ASYNCRT_CHANNEL_MPSC, 2, 0);
  churner k[CHURNERS];
  for (unsigned i = 0; i < CHURNERS; i++) {
    k[i] = (churner){.parent = c.tx, .id = i};
    CHECK(!pthread_create(&k[i].thread, NULL, churner_main, &k[i]), "thread");
  }
  /* the parent sender keeps the channel open while clones come and go */
  unsigned next[CHURNERS] = {0};
  tw w = {0};
  asyncrt_chan_op op;
  memset(&op, 0, sizeof op);
  long got = 0;
  while (got < (long)CHURNERS * CHURN_ROUNDS) {
    uint64_t v;
    CHECK(recv_blocking(c.rx, &v, &w, &op) == ASYNCRT_OK, "receive");
    unsigned id = VAL_ID(v);
    CHECK(id < CHURNERS && VAL_SEQ(v) == next[id], "order");
    next[id]++;
    got++;
  }
  for (unsigned i = 0; i < CHURNERS; i++) pthread_join(k[i].thread, NULL);
  uint64_t v;
  CHECK(art_try_recv(c.rx, &v) == ASYNCRT_EAGAIN, "parent still open");
  endpoint_free(c.txh, c.tx);
  CHECK(art_try_recv(c.rx, &v) == ASYNCRT_ECLOSED, "closed with the last sender");
  endpoint_free(c.rxh, c.rx);
  wakers_balanced("churn");
  puts("PASS sender_churn");
}

/* ---- task_ping_pong: asyncrt tasks on two driven cores ------------------------- */

/* A receiver that took the last value stays armed for its task, whose next
 * receive then returns pending without the lock (art_recv_poll). Here the
 * two sides are tasks on two cores, each driven by its own thread, so every
 * armed look races with the other side's send; a lost wakeup shows as no
 * progress (bounded), a lost or doubled message as a wrong sequence. */

#define PP_ROUNDS 20000

typedef struct pp_side {
  void *tx, *rx;
  int receiving, is_ping;
  uint64_t value, left;
  asyncrt_chan_op send_op, recv_op;
} pp_side;

static int pp_poll(void *self, asyncrt_context *cx, void *out) {
  (void)out;
  pp_side *p = self;
  for (;;) {
    if (p->is_ping) {
      if (!p->receiving) {
        if (!p->left) return ASYNCRT_POLL_READY;
        int r = art_send_poll(p->tx, &p->value, cx, &p->send_op);
        if (r != ASYNCRT_POLL_READY) return r;
        p->receiving = 1;
      }
      uint64_t v;
      int r = art_recv_poll(p->rx, &v, cx, &p->recv_op);
      if (r != ASYNCRT_POLL_READY) return r;
      CHECK(v == p->value + 1, "ping: got %llu after sending %llu", (unsigned long long)v,
            (unsigned long long)p->value);
      p->value = v + 1;
      p->receiving = 0;
      p->left--;
    } else {
      if (!p->receiving) {
        int r = art_recv_poll(p->rx, &p->value, cx, &p->recv_op);
        if (r != ASYNCRT_POLL_READY) return r;
        if (p->value == UINT64_MAX) return ASYNCRT_POLL_READY;
        p->value++;
        p->receiving = 1;
      }
      int r = art_send_poll(p->tx, &p->value, cx, &p->send_op);
      if (r != ASYNCRT_POLL_READY) return r;
      p->receiving = 0;
    }
  }
}

static const asyncrt_future_vtable pp_vtable = {sizeof(asyncrt_future_vtable), 0, pp_poll, NULL, NULL};

typedef struct pp_driver {
  art_exec *e;
  art_task *until;
  pthread_t th;
} pp_driver;

/* Drives its core until its task completes; a core idle for 10 s fails. */
static void *pp_drive(void *arg) {
  pp_driver *d = arg;
  CHECK(art_exec_acquire_driver(d->e), "driver busy");
  for (int idle = 0; !(atomic_load(&d->until->state) & ART_COMPLETE);) {
    if (art_exec_run(d->e, 1u << 20, 0, d->until)) {
      idle = 0;
      continue;
    }
    uint64_t t0 = art_now_ns();
    art_exec_park(d->e, 100000000);
    if (art_now_ns() - t0 >= 100000000) CHECK(++idle < 100, "no progress for 10 s: lost wakeup?");
  }
  art_exec_release_driver(d->e);
  return NULL;
}

static void test_task_ping_pong(void) {
  chan a = chan_new(ASYNCRT_CHANNEL_MPSC, 1, 0), b = chan_new(ASYNCRT_CHANNEL_MPSC, 1, 0);
  pp_side ping = {.tx = a.tx, .rx = b.rx, .is_ping = 1, .left = PP_ROUNDS};
  pp_side pong = {.tx = b.tx, .rx = a.rx};
  asyncrt_future fping = {&ping, &pp_vtable}, fpong = {&pong, &pp_vtable};
  pp_driver d[2];
  for (int i = 0; i < 2; i++) {
    d[i].e = art_exec_new(NULL, 0, eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC));
    CHECK(d[i].e, "art_exec_new: %s", art_last_error());
  }
  CHECK(art_exec_spawn(d[0].e, &fping, 0, NULL, &d[0].until) == 0, "spawn ping: %s", art_last_error());
  CHECK(art_exec_spawn(d[1].e, &fpong, 0, NULL, &d[1].until) == 0, "spawn pong: %s", art_last_error());
  CHECK(!pthread_create(&d[1].th, NULL, pp_drive, &d[1]), "thread");
  pp_drive(&d[0]);
  CHECK(ping.value == 2 * PP_ROUNDS, "ping ended at %llu", (unsigned long long)ping.value);
  uint64_t stop = UINT64_MAX; /* from this thread: a send that is no task's */
  CHECK(art_try_send(a.tx, &stop) == ASYNCRT_OK, "stop: %s", art_last_error());
  pthread_join(d[1].th, NULL);
  for (int i = 0; i < 2; i++) {
    art_task_unref(d[i].until);
    CHECK(art_exec_acquire_driver(d[i].e), "driver busy at free");
    art_exec_shutdown(d[i].e);
    art_exec_release_driver(d[i].e);
    art_exec_close(d[i].e);
  }
  endpoint_free(a.txh, a.tx);
  endpoint_free(a.rxh, a.rx);
  endpoint_free(b.txh, b.tx);
  endpoint_free(b.rxh, b.rx);
  puts("PASS task_ping_pong");
}

int main(void) {
  setvbuf(stdout, NULL, _IOLBF, 0);
  alarm(300);
  test_producers_one_consumer();
  test_blocked_senders_withdrawn();
  test_receiver_freed_while_senders_block();
  test_broadcast_and_watch_receivers();
  test_sender_churn();
  test_task_ping_pong();
  return 0;
}
