/* art_comb.c -- join_all, select and stream_next: futures over futures.
 *
 * join_all and select keep their children in caller storage (a comb_state
 * and one comb_kid per child) and poll every live child, in order, with
 * their own context: a child registers the task's waker and names its
 * failure on the task's context, so a failure (and its rich error) passes
 * through as it is. A child is dropped exactly once, and its `live` flag
 * cleared first: when it completes, when the combinator fails (join_all) or
 * has a winner (select), or with the combinator. A child that yields (a
 * stream) has its item discarded and is polled again at the next wake, which
 * it gets at once, as a task that yields does.
 */
#include "art.h"

typedef struct comb_kid {
  asyncrt_future fut;
  size_t out_off; /* join_all: where its output goes in `outputs` */
  size_t live;
} comb_kid;

typedef struct comb_state {
  size_t n;
  size_t index; /* join_all: the child that failed; select: the winner; SIZE_MAX: none yet */
  void *outputs; /* join_all: the packed outputs; select: the winner's */
  size_t done;   /* completed: a poll now is a misuse */
  comb_kid kids[];
} comb_state;

static size_t state_size(size_t n) {
  if (n > (SIZE_MAX - sizeof(comb_state) - 15u) / sizeof(comb_kid)) return 0;
  return (sizeof(comb_state) + n * sizeof(comb_kid) + 15u) & ~(size_t)15u;
}

static void drop_kid(comb_kid *k) {
  if (!k->live) return;
  k->live = 0;
  art_drop_future(&k->fut);
}

static void drop_all(comb_state *st) {
  for (size_t i = 0; i < st->n; i++) drop_kid(&st->kids[i]);
}

static int comb_misuse(asyncrt_context *cx, const char *what) {
  int status = art_fail(ASYNCRT_EINVAL, "%s was polled after it completed", what);
  if (cx) cx->failure = status;
  return ASYNCRT_POLL_ERROR;
}

/* Polls one child; a yield is turned into a self-wake and PENDING. */
static int poll_kid(comb_kid *k, asyncrt_context *cx, void *out) {
  int r = k->fut.vtable->poll(k->fut.self, cx, k->fut.vtable->output_size ? out : NULL);
  if (r == ASYNCRT_POLL_YIELDED) {
    art_waker_wake_by_ref(&cx->waker);
    return ASYNCRT_POLL_PENDING;
  }
  if (r != ASYNCRT_POLL_PENDING && r != ASYNCRT_POLL_READY) return ASYNCRT_POLL_ERROR;
  return r;
}

static void init(comb_state *st, const asyncrt_future *futs, size_t n, void *outputs, int packed) {
  st->n = n;
  st->index = SIZE_MAX;
  st->outputs = outputs;
  st->done = 0;
  size_t off = 0;
  for (size_t i = 0; i < n; i++) {
    st->kids[i] = (comb_kid){.fut = futs[i], .out_off = packed ? off : 0, .live = 1};
    off += (futs[i].vtable->output_size + 7u) & ~(size_t)7u;
  }
}

static void comb_drop(void *self) { drop_all(self); }

/* ---- join_all ---------------------------------------------------------------- */

static int join_all_poll(void *self, asyncrt_context *cx, void *out) {
  comb_state *st = self;
  (void)out;
  if (st->done) return comb_misuse(cx, "asyncrt_join_all's future");
  size_t pending = 0;
  for (size_t i = 0; i < st->n; i++) {
    comb_kid *k = &st->kids[i];
    if (!k->live) continue;
    int r = poll_kid(k, cx, st->outputs ? (char *)st->outputs + k->out_off : NULL);
    if (r == ASYNCRT_POLL_PENDING) {
      pending++;
    } else if (r == ASYNCRT_POLL_READY) {
      drop_kid(k);
    } else { /* the first failure: the others go at once */
      st->index = i;
      st->done = 1;
      drop_kid(k);
      drop_all(st);
      return ASYNCRT_POLL_ERROR;
    }
  }
  if (pending) return ASYNCRT_POLL_PENDING;
  st->done = 1;
  return ASYNCRT_POLL_READY;
}

static const asyncrt_future_vtable join_all_vtable = {
    .size = sizeof(asyncrt_future_vtable), .output_size = 0, .poll = join_all_poll, .drop = comb_drop};

size_t art_join_all_size(size_t n) { return state_size(n); }

void art_join_all_init(void *state, const asyncrt_future *futs, size_t n, void *outputs, asyncrt_future *out) {
  init(state, futs, n, outputs, 1);
  *out = (asyncrt_future){state, &join_all_vtable};
}

size_t art_join_all_index(const void *state) { return ((const comb_state *)state)->index; }

/* ---- select ------------------------------------------------------------------ */

static int select_poll(void *self, asyncrt_context *cx, void *out) {
  comb_state *st = self;
  (void)out;
  if (st->done) return comb_misuse(cx, "asyncrt_select's future");
  for (size_t i = 0; i < st->n; i++) {
    comb_kid *k = &st->kids[i];
    int r = poll_kid(k, cx, st->outputs);
    if (r == ASYNCRT_POLL_PENDING) continue;
    st->index = i;
    st->done = 1;
    drop_kid(k); /* the winner first, then the losers in order */
    drop_all(st);
    return r;
  }
  return ASYNCRT_POLL_PENDING;
}

static const asyncrt_future_vtable select_vtable = {
    .size = sizeof(asyncrt_future_vtable), .output_size = 0, .poll = select_poll, .drop = comb_drop};

size_t art_select_size(size_t n) { return state_size(n); }

void art_select_init(void *state, const asyncrt_future *futs, size_t n, void *winner_output,
                     asyncrt_future *out) {
  init(state, futs, n, winner_output, 0);
  *out = (asyncrt_future){state, &select_vtable};
}

size_t art_select_index(const void *state) { return ((const comb_state *)state)->index; }

/* ---- stream_next ------------------------------------------------------------- */

enum { NEXT_DONE = 1u };

static int stream_next_poll(void *self, asyncrt_context *cx, void *out) {
  asyncrt_stream_next_state *st = self;
  if (st->flags & NEXT_DONE) return comb_misuse(cx, "asyncrt_stream_next's future");
  const asyncrt_future_vtable *vt = st->stream.vtable;
  int r = vt->poll(st->stream.self, cx, vt->output_size ? st->item : NULL);
  if (r == ASYNCRT_POLL_PENDING) return r;
  st->flags |= NEXT_DONE;
  if (r != ASYNCRT_POLL_YIELDED && r != ASYNCRT_POLL_READY) return ASYNCRT_POLL_ERROR;
  int more = r == ASYNCRT_POLL_YIELDED;
  __builtin_memcpy(out, &more, sizeof more);
  return ASYNCRT_POLL_READY;
}

/* The stream is borrowed: the caller drops it. */
static void stream_next_drop(void *self) { (void)self; }

static const asyncrt_future_vtable stream_next_vtable = {.size = sizeof(asyncrt_future_vtable),
                                                         .output_size = sizeof(int),
                                                         .poll = stream_next_poll,
                                                         .drop = stream_next_drop};

void art_stream_next_init(asyncrt_stream_next_state *st, const asyncrt_future *stream, void *item,
                          asyncrt_future *out) {
  *st = (asyncrt_stream_next_state){.stream = *stream, .item = item, .flags = 0};
  *out = (asyncrt_future){st, &stream_next_vtable};
}
