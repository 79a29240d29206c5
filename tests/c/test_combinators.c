/* Combinators and streams: join_all's packed outputs and its first-error
 * drop, select's winner and its losers (each dropped exactly once),
 * stream_next over a hand-written stream, the same run by an executor, and
 * misuse.
 *
 * The children are tf_state futures (testfut.h), which count their polls
 * and drops and note a poll after they finished or were dropped; the
 * combinators are polled by hand with a counting waker, so every count is
 * exact. */
#include "check.h" /* first: it sets _POSIX_C_SOURCE */
#include "testfut.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define STATE_BYTES 1024
/* Combinator state: caller storage, 16-aligned. */
typedef struct state_buf {
  unsigned char bytes[STATE_BYTES];
} __attribute__((aligned(16))) state_buf;

static int wakes;
static void cw_clone(const void *data, asyncrt_waker *out);
static void cw_wake(const void *data) {
  (void)data;
  tf_add(&wakes, 1);
}
static void cw_noop(const void *data) { (void)data; }
static const asyncrt_waker_vtable cw_vtable = {cw_clone, cw_wake, cw_wake, cw_noop};
static void cw_clone(const void *data, asyncrt_waker *out) {
  out->data = data;
  out->vtable = &cw_vtable;
}
static const asyncrt_waker waker = {NULL, &cw_vtable};

static int poll_once(const asyncrt_future *f, void *out, int *failure) {
  return asyncrt_poll_with_waker(f, &waker, out, failure);
}

/* A child with a 4-byte output (the value's low half), to see the packing. */
static const asyncrt_future_vtable *u32_vtable(void) {
  static asyncrt_future_vtable vt;
  vt = tf_vtable_u64;
  vt.output_size = sizeof(uint32_t);
  return &vt;
}

static int all_dropped_once(const tf_state *st, int n) {
  int i;
  for (i = 0; i < n; i++) {
    if (tf_get(&st[i].drops) != 1 || tf_get(&st[i].bad_polls) != 0) {
      fprintf(stderr, "  child %d: drops %d, bad polls %d\n", i, st[i].drops, st[i].bad_polls);
      return 0;
    }
  }
  return 1;
}

/* --- join_all ------------------------------------------------------------------- */

static void test_join_all_outputs(void) {
  static state_buf state;
  tf_state st[4];
  asyncrt_future kids[4], all;
  unsigned char outputs[32];
  uint64_t a, c;
  uint32_t b;
  int i;
  for (i = 0; i < 4; i++) tf_init(&st[i]);
  st[0].value = 0x1111111111111111ull;
  st[0].pendings = 2;
  st[1].value = 0x22222222u;
  st[2].value = 0x3333333333333333ull;
  st[2].pendings = 1;
  st[3].pendings = 3; /* no output: takes no room */
  kids[0] = tf_future(&st[0]);
  kids[1] = tf_future(&st[1]);
  kids[1].vtable = u32_vtable();
  kids[2] = tf_future(&st[2]);
  kids[3] = tf_future_void(&st[3]);
  CHECK(asyncrt_join_all_size(4) <= sizeof state);
  CHECK_INT(asyncrt_join_all_size(4) % 16, 0);
  memset(outputs, 0xee, sizeof outputs);
  CHECK_OK(asyncrt_join_all(&state, kids, 4, outputs, &all));
  CHECK_INT(all.vtable->output_size, 0);
  CHECK_INT(asyncrt_join_all_index(&state), SIZE_MAX);
  for (i = 0; i < 3; i++) CHECK_INT(poll_once(&all, NULL, NULL), ASYNCRT_POLL_PENDING);
  /* Completed children are dropped as they complete. */
  CHECK_INT(st[1].drops, 1);
  CHECK_INT(st[2].drops, 1);
  CHECK_INT(st[0].drops, 1);
  CHECK_INT(st[3].drops, 0);
  CHECK_INT(poll_once(&all, NULL, NULL), ASYNCRT_POLL_READY);
  /* Packed in order, each rounded up to 8 bytes: 0, 8, 16. */
  memcpy(&a, outputs, 8);
  memcpy(&b, outputs + 8, 4);
  memcpy(&c, outputs + 16, 8);
  CHECK_INT(a, 0x1111111111111111ull);
  CHECK_INT(b, 0x22222222u);
  CHECK_INT(c, 0x3333333333333333ull);
  CHECK_INT(outputs[24], 0xee);
  CHECK_INT(st[1].polls, 1);
  CHECK_INT(st[3].polls, 4);
  all.vtable->drop(all.self);
  CHECK(all_dropped_once(st, 4));
}

static void test_join_all_first_error(void) {
  static state_buf state;
  tf_state st[4];
  asyncrt_future kids[4], all;
  uint64_t outputs[4];
  int i, failure = 0;
  for (i = 0; i < 4; i++) tf_init(&st[i]);
  st[0].value = 5; /* ready at once */
  st[1].pendings = 100;
  st[1].park = 1;
  st[2].pendings = 1;
  st[2].fail = ASYNCRT_ETIMEDOUT;
  st[3].pendings = 100;
  st[3].park = 1;
  for (i = 0; i < 4; i++) kids[i] = tf_future(&st[i]);
  CHECK_OK(asyncrt_join_all(&state, kids, 4, outputs, &all));
  CHECK_INT(poll_once(&all, NULL, NULL), ASYNCRT_POLL_PENDING);
  CHECK_INT(st[0].drops, 1);
  CHECK_INT(poll_once(&all, NULL, &failure), ASYNCRT_POLL_ERROR);
  CHECK_INT(failure, ASYNCRT_ETIMEDOUT);
  CHECK_INT(asyncrt_join_all_index(&state), 2);
  /* The others went at once: child 3 was not polled after the failure. */
  CHECK(all_dropped_once(st, 4));
  CHECK_INT(st[3].polls, 1);
  all.vtable->drop(all.self); /* drops nothing twice */
  CHECK(all_dropped_once(st, 4));
}

static void test_join_all_dropped(void) {
  static state_buf state;
  tf_state st[3];
  asyncrt_future kids[3], all;
  uint64_t outputs[3];
  int i;
  for (i = 0; i < 3; i++) tf_init(&st[i]);
  st[1].pendings = 10;
  st[1].park = 1;
  for (i = 0; i < 3; i++) kids[i] = tf_future(&st[i]);
  /* Dropped before any poll: every child, once. */
  CHECK_OK(asyncrt_join_all(&state, kids, 3, outputs, &all));
  all.vtable->drop(all.self);
  CHECK(all_dropped_once(st, 3));
  CHECK_INT(st[0].polls + st[1].polls + st[2].polls, 0);
  /* Dropped mid-way: the finished ones are not dropped again. */
  for (i = 0; i < 3; i++) tf_init(&st[i]);
  st[1].pendings = 10;
  st[1].park = 1;
  for (i = 0; i < 3; i++) kids[i] = tf_future(&st[i]);
  CHECK_OK(asyncrt_join_all(&state, kids, 3, outputs, &all));
  CHECK_INT(poll_once(&all, NULL, NULL), ASYNCRT_POLL_PENDING);
  CHECK_INT(st[0].drops + st[2].drops, 2);
  all.vtable->drop(all.self);
  CHECK(all_dropped_once(st, 3));
  /* No children: ready at once, outputs may be NULL. */
  CHECK_OK(asyncrt_join_all(&state, NULL, 0, NULL, &all));
  CHECK_INT(poll_once(&all, NULL, NULL), ASYNCRT_POLL_READY);
  all.vtable->drop(all.self);
}

/* --- select -------------------------------------------------------------------- */

static void test_select_winner(void) {
  static state_buf state;
  tf_state st[3];
  asyncrt_future kids[3], sel;
  uint64_t out = 0;
  int i;
  for (i = 0; i < 3; i++) {
    tf_init(&st[i]);
    st[i].pendings = 100;
    st[i].park = 1;
  }
  st[1].pendings = 2;
  st[1].park = 0;
  st[1].value = 42;
  for (i = 0; i < 3; i++) kids[i] = tf_future(&st[i]);
  CHECK(asyncrt_select_size(3) <= sizeof state);
  CHECK_OK(asyncrt_select(&state, kids, 3, &out, &sel));
  CHECK_INT(sel.vtable->output_size, 0);
  CHECK_INT(poll_once(&sel, NULL, NULL), ASYNCRT_POLL_PENDING);
  CHECK_INT(poll_once(&sel, NULL, NULL), ASYNCRT_POLL_PENDING);
  CHECK_INT(asyncrt_select_index(&state), SIZE_MAX);
  CHECK_INT(poll_once(&sel, NULL, NULL), ASYNCRT_POLL_READY);
  CHECK_INT(asyncrt_select_index(&state), 1);
  CHECK_INT(out, 42);
  /* In order: child 2 was not polled in the poll child 1 won. */
  CHECK_INT(st[0].polls, 3);
  CHECK_INT(st[2].polls, 2);
  CHECK(all_dropped_once(st, 3));
  sel.vtable->drop(sel.self);
  CHECK(all_dropped_once(st, 3));
}

static void test_select_in_order_and_errors(void) {
  static state_buf state;
  tf_state st[3];
  asyncrt_future kids[3], sel;
  uint64_t out = 0;
  int i, failure = 0;
  /* Two ready at once: the first in order wins; the other is never polled. */
  for (i = 0; i < 3; i++) {
    tf_init(&st[i]);
    st[i].value = (uint64_t)(10 + i);
  }
  st[0].pendings = 100;
  st[0].park = 1;
  for (i = 0; i < 3; i++) kids[i] = tf_future(&st[i]);
  CHECK_OK(asyncrt_select(&state, kids, 3, &out, &sel));
  CHECK_INT(poll_once(&sel, NULL, NULL), ASYNCRT_POLL_READY);
  CHECK_INT(asyncrt_select_index(&state), 1);
  CHECK_INT(out, 11);
  CHECK_INT(st[2].polls, 0);
  CHECK(all_dropped_once(st, 3));
  sel.vtable->drop(sel.self);
  /* A failing winner: the select fails with its status. */
  for (i = 0; i < 3; i++) {
    tf_init(&st[i]);
    st[i].pendings = 100;
    st[i].park = 1;
  }
  st[2].pendings = 0;
  st[2].fail = ASYNCRT_ECLOSED;
  for (i = 0; i < 3; i++) kids[i] = tf_future(&st[i]);
  CHECK_OK(asyncrt_select(&state, kids, 3, &out, &sel));
  CHECK_INT(poll_once(&sel, NULL, &failure), ASYNCRT_POLL_ERROR);
  CHECK_INT(failure, ASYNCRT_ECLOSED);
  CHECK_INT(asyncrt_select_index(&state), 2);
  CHECK(all_dropped_once(st, 3));
  sel.vtable->drop(sel.self);
  CHECK(all_dropped_once(st, 3));
  /* Dropped undecided: every child once. */
  for (i = 0; i < 3; i++) {
    tf_init(&st[i]);
    st[i].pendings = 100;
    st[i].park = 1;
  }
  for (i = 0; i < 3; i++) kids[i] = tf_future_void(&st[i]);
  CHECK_OK(asyncrt_select(&state, kids, 3, NULL, &sel)); /* no outputs: NULL is fine */
  CHECK_INT(poll_once(&sel, NULL, NULL), ASYNCRT_POLL_PENDING);
  sel.vtable->drop(sel.self);
  CHECK(all_dropped_once(st, 3));
}

/* --- streams ------------------------------------------------------------------- */

/* A hand-written stream: yields 10, 20, 30 -- each after one pending poll
 * that wakes itself -- then ends. */
typedef struct counter_stream {
  int next, pending, polls, drops, fail;
} counter_stream;

static int counter_poll(void *self, asyncrt_context *cx, void *out) {
  counter_stream *s = self;
  s->polls++;
  if (!s->pending) {
    s->pending = 1;
    asyncrt_waker_wake_by_ref(asyncrt_context_waker(cx));
    return ASYNCRT_POLL_PENDING;
  }
  s->pending = 0;
  if (s->next == 3) {
    if (s->fail) {
      asyncrt_context_fail(cx, s->fail);
      return ASYNCRT_POLL_ERROR;
    }
    return ASYNCRT_POLL_READY; /* the end: no item */
  }
  s->next++;
  {
    uint64_t item = (uint64_t)s->next * 10;
    memcpy(out, &item, sizeof item);
  }
  return ASYNCRT_POLL_YIELDED;
}

static void counter_drop(void *self) { ((counter_stream *)self)->drops++; }

static const asyncrt_future_vtable counter_vtable = {sizeof(asyncrt_future_vtable), sizeof(uint64_t),
                                                     counter_poll, counter_drop, NULL};

static void test_stream_next(void) {
  counter_stream cs;
  asyncrt_future stream, next;
  asyncrt_stream_next_state st;
  uint64_t item = 0;
  int more = -1, i;
  memset(&cs, 0, sizeof cs);
  stream.self = &cs;
  stream.vtable = &counter_vtable;
  wakes = 0;
  for (i = 1; i <= 3; i++) {
    CHECK_OK(asyncrt_stream_next(&st, &stream, &item, &next));
    CHECK_INT(next.vtable->output_size, sizeof(int));
    CHECK_INT(poll_once(&next, &more, NULL), ASYNCRT_POLL_PENDING);
    CHECK_INT(poll_once(&next, &more, NULL), ASYNCRT_POLL_READY);
    CHECK_INT(more, 1);
    CHECK_INT(item, (uint64_t)i * 10);
    next.vtable->drop(next.self);
  }
  CHECK_OK(asyncrt_stream_next(&st, &stream, &item, &next));
  CHECK_INT(poll_once(&next, &more, NULL), ASYNCRT_POLL_PENDING);
  CHECK_INT(poll_once(&next, &more, NULL), ASYNCRT_POLL_READY);
  CHECK_INT(more, 0);
  next.vtable->drop(next.self);
  CHECK_INT(tf_get(&wakes), 4);
  CHECK_INT(cs.polls, 8);
  CHECK_INT(cs.drops, 0); /* borrowed: the caller drops it */
  stream.vtable->drop(stream.self);
  CHECK_INT(cs.drops, 1);

  /* Dropping a next that is pending leaves the stream as it was. */
  memset(&cs, 0, sizeof cs);
  CHECK_OK(asyncrt_stream_next(&st, &stream, &item, &next));
  CHECK_INT(poll_once(&next, &more, NULL), ASYNCRT_POLL_PENDING);
  next.vtable->drop(next.self);
  CHECK_INT(cs.drops, 0);
  CHECK_OK(asyncrt_stream_next(&st, &stream, &item, &next));
  CHECK_INT(poll_once(&next, &more, NULL), ASYNCRT_POLL_READY);
  CHECK_INT(item, 10);
  next.vtable->drop(next.self);

  /* A failing stream fails the next. */
  memset(&cs, 0, sizeof cs);
  cs.next = 3;
  cs.pending = 1;
  cs.fail = ASYNCRT_ELAGGED;
  {
    int failure = 0;
    CHECK_OK(asyncrt_stream_next(&st, &stream, &item, &next));
    CHECK_INT(poll_once(&next, &more, &failure), ASYNCRT_POLL_ERROR);
    CHECK_INT(failure, ASYNCRT_ELAGGED);
    next.vtable->drop(next.self);
  }
}

/* A task that sums a stream through stream_next, on a local executor. */
typedef struct summer {
  counter_stream cs;
  asyncrt_future stream, next;
  asyncrt_stream_next_state st;
  uint64_t item, sum;
  int nexting, items;
} summer;

static int summer_poll(void *self, asyncrt_context *cx, void *out) {
  summer *s = self;
  int more = 0, r;
  for (;;) {
    if (!s->nexting) {
      if (asyncrt_stream_next(&s->st, &s->stream, &s->item, &s->next) != ASYNCRT_OK) return ASYNCRT_POLL_ERROR;
      s->nexting = 1;
    }
    r = s->next.vtable->poll(s->next.self, cx, &more);
    if (r == ASYNCRT_POLL_PENDING) return r;
    s->next.vtable->drop(s->next.self);
    s->nexting = 0;
    if (r != ASYNCRT_POLL_READY) return r;
    if (!more) break;
    s->sum += s->item;
    s->items++;
  }
  memcpy(out, &s->sum, sizeof s->sum);
  return ASYNCRT_POLL_READY;
}

static void summer_drop(void *self) {
  summer *s = self;
  if (s->nexting) s->next.vtable->drop(s->next.self);
  s->stream.vtable->drop(s->stream.self);
}

static const asyncrt_future_vtable summer_vtable = {sizeof(asyncrt_future_vtable), sizeof(uint64_t),
                                                    summer_poll, summer_drop, NULL};

static void test_stream_in_a_task(void) {
  asyncrt_executor *ex = tf_executor();
  summer s;
  asyncrt_future f;
  uint64_t sum = 0;
  CHECK(ex != NULL);
  memset(&s, 0, sizeof s);
  s.stream.self = &s.cs;
  s.stream.vtable = &counter_vtable;
  f.self = &s;
  f.vtable = &summer_vtable;
  CHECK_OK(asyncrt_block_on(ex, &f, &sum, TF_TIMEOUT_NS));
  CHECK_INT(sum, 60);
  CHECK_INT(s.items, 3);
  CHECK_INT(s.cs.drops, 1);
  CHECK_OK(asyncrt_executor_free(ex));
}

/* join_all and select as tasks: their children register the task's waker. */
static void test_in_a_task(void) {
  asyncrt_executor *ex = tf_executor();
  static state_buf js, ss;
  tf_state st[3], sst[2];
  asyncrt_future kids[3], skids[2], all, sel;
  uint64_t outputs[3], won = 0;
  int i;
  CHECK(ex != NULL);
  for (i = 0; i < 3; i++) {
    tf_init(&st[i]);
    st[i].pendings = i * 3;
    st[i].value = (uint64_t)i + 1;
    kids[i] = tf_future(&st[i]);
  }
  CHECK_OK(asyncrt_join_all(&js, kids, 3, outputs, &all));
  CHECK_OK(asyncrt_block_on(ex, &all, NULL, TF_TIMEOUT_NS));
  CHECK_INT(outputs[0] + outputs[1] * 10 + outputs[2] * 100, 321);
  CHECK(all_dropped_once(st, 3));
  for (i = 0; i < 2; i++) {
    tf_init(&sst[i]);
    sst[i].pendings = 5 - i * 3;
    sst[i].value = (uint64_t)i + 7;
    skids[i] = tf_future(&sst[i]);
  }
  CHECK_OK(asyncrt_select(&ss, skids, 2, &won, &sel));
  CHECK_OK(asyncrt_block_on(ex, &sel, NULL, TF_TIMEOUT_NS));
  CHECK_INT(asyncrt_select_index(&ss), 1);
  CHECK_INT(won, 8);
  CHECK(all_dropped_once(sst, 2));
  CHECK_OK(asyncrt_executor_free(ex));
}

/* --- misuse ------------------------------------------------------------------- */

static void test_misuse(void) {
  static state_buf state;
  tf_state st[2];
  asyncrt_future kids[2], f;
  asyncrt_future_vtable small;
  asyncrt_stream_next_state nst;
  uint64_t outputs[2], item;
  int i, failure = 0;

#define FRESH()                                                                                    \
  do {                                                                                             \
    for (i = 0; i < 2; i++) {                                                                      \
      tf_init(&st[i]);                                                                             \
      kids[i] = tf_future(&st[i]);                                                                 \
    }                                                                                              \
  } while (0)

  /* Refused calls drop the futures they took. */
  FRESH();
  CHECK_STATUS(asyncrt_join_all(NULL, kids, 2, outputs, &f), ASYNCRT_EINVAL);
  CHECK(all_dropped_once(st, 2));
  FRESH();
  CHECK_STATUS(asyncrt_join_all(&state, kids, 2, outputs, NULL), ASYNCRT_EINVAL);
  CHECK(all_dropped_once(st, 2));
  FRESH();
  CHECK_STATUS(asyncrt_join_all(state.bytes + 8, kids, 2, outputs, &f), ASYNCRT_EINVAL);
  CHECK(strstr(asyncrt_last_error(), "aligned") != NULL);
  CHECK(all_dropped_once(st, 2));
  FRESH();
  CHECK_STATUS(asyncrt_join_all(&state, kids, 2, NULL, &f), ASYNCRT_EINVAL);
  CHECK(all_dropped_once(st, 2));
  FRESH();
  CHECK_STATUS(asyncrt_select(&state, kids, 2, NULL, &f), ASYNCRT_EINVAL);
  CHECK(all_dropped_once(st, 2));
  FRESH();
  CHECK_STATUS(asyncrt_join_all(&state, kids, SIZE_MAX / 2, outputs, &f), ASYNCRT_EINVAL);
  CHECK_STATUS(asyncrt_join_all(&state, NULL, 2, outputs, &f), ASYNCRT_EINVAL);
  CHECK_STATUS(asyncrt_select(&state, kids, 0, outputs, &f), ASYNCRT_EINVAL);
  CHECK_INT(asyncrt_join_all_size(SIZE_MAX / 2), 0);
  CHECK_INT(asyncrt_join_all_index(NULL), SIZE_MAX);
  CHECK_INT(asyncrt_select_index(NULL), SIZE_MAX);
  /* A vtable too small to find a drop in: that one stays the caller's. */
  FRESH();
  small = tf_vtable_u64;
  small.size = offsetof(asyncrt_future_vtable, poll);
  kids[1].vtable = &small;
  CHECK_STATUS(asyncrt_join_all(&state, kids, 2, outputs, &f), ASYNCRT_EINVAL);
  CHECK_INT(st[0].drops, 1);
  CHECK_INT(st[1].drops, 0);
  /* Polled after it completed. */
  FRESH();
  CHECK_OK(asyncrt_join_all(&state, kids, 2, outputs, &f));
  CHECK_INT(poll_once(&f, NULL, NULL), ASYNCRT_POLL_READY);
  CHECK_INT(poll_once(&f, NULL, &failure), ASYNCRT_POLL_ERROR);
  CHECK_INT(failure, ASYNCRT_EINVAL);
  f.vtable->drop(f.self);
  CHECK(all_dropped_once(st, 2));
  /* stream_next: the stream is borrowed, never dropped by a refusal. */
  FRESH();
  CHECK_STATUS(asyncrt_stream_next(NULL, &kids[0], &item, &f), ASYNCRT_EINVAL);
  CHECK_STATUS(asyncrt_stream_next(&nst, NULL, &item, &f), ASYNCRT_EINVAL);
  CHECK_STATUS(asyncrt_stream_next(&nst, &kids[0], NULL, &f), ASYNCRT_EINVAL);
  CHECK_STATUS(asyncrt_stream_next(&nst, &kids[0], &item, NULL), ASYNCRT_EINVAL);
  CHECK_INT(st[0].drops, 0);
  CHECK_OK(asyncrt_stream_next(&nst, &kids[0], &item, &f));
  CHECK_INT(poll_once(&f, &i, NULL), ASYNCRT_POLL_READY);
  CHECK_INT(poll_once(&f, &i, &failure), ASYNCRT_POLL_ERROR);
  CHECK_INT(failure, ASYNCRT_EINVAL);
  f.vtable->drop(f.self);
  CHECK_INT(st[0].drops, 0);
#undef FRESH
}

int main(void) {
  CHECK_BEGIN();
  RUN(test_join_all_outputs);
  RUN(test_join_all_first_error);
  RUN(test_join_all_dropped);
  RUN(test_select_winner);
  RUN(test_select_in_order_and_errors);
  RUN(test_stream_next);
  RUN(test_stream_in_a_task);
  RUN(test_in_a_task);
  RUN(test_misuse);
  return CHECK_END("test_combinators");
}
