/*
 * c_child.c -- the C child of one_tree.py (see polyglot.h): a future that
 * sleeps on asyncrt's timer, then fails (status and message) or finishes.
 * Cancelled asynchronously, its cleanup slot runs instead of its poll.
 */
#include <stdlib.h>
#include <string.h>

#include "asyncrt_coro.h"
#include "polyglot.h"

typedef struct c_child {
  arc_state co;
  int fail;
  polyglot_counts *counts;
  asyncrt_sleep sleep;
  asyncrt_future nap; /* zeroed until made; dropped in c_child_drop */
} c_child;

static int c_child_poll(void *self, asyncrt_context *cx, void *out) {
  c_child *c = self;
  asyncrt_error_info info;
  (void)out;
  ARC_BEGIN(c->co);
  c->counts->started++;
  asyncrt_sleep_for(&c->sleep, c->fail ? POLYGLOT_FAIL_AFTER_NS : POLYGLOT_WAIT_NS, &c->nap);
  ARC_AWAIT(c->co, cx, &c->nap, NULL);
  if (c->fail) {
    memset(&info, 0, sizeof info);
    info.size = sizeof info;
    info.status = POLYGLOT_C_STATUS;
    info.message = POLYGLOT_C_MESSAGE;
    asyncrt_context_fail_info(cx, &info);
    ARC_FINISH(c->co, ASYNCRT_POLL_ERROR);
  }
  c->counts->finished++;
  ARC_END(c->co);
}

/* Runs instead of the poll once a sibling's failure cancels the scope.
 * Nothing to flush here: it only counts, and is done at once. */
static int c_child_cleanup(void *self, asyncrt_context *cx) {
  c_child *c = self;
  (void)cx;
  c->counts->cleanups++;
  return ASYNCRT_POLL_READY;
}

static void c_child_drop(void *self) {
  c_child *c = self;
  ARC_DROP_CHILD(&c->nap); /* disarms the timer */
  c->counts->drops++;
  free(c);
}

static const asyncrt_future_vtable c_child_vtable = {sizeof(asyncrt_future_vtable), 0, c_child_poll,
                                                     c_child_drop, c_child_cleanup};

int polyglot_c_child(int fail, polyglot_counts *counts, asyncrt_future *out) {
  c_child *c;
  if (counts == NULL || out == NULL) {
    return ASYNCRT_EINVAL;
  }
  c = calloc(1, sizeof *c);
  if (c == NULL) {
    return ASYNCRT_ENOMEM;
  }
  c->fail = fail;
  c->counts = counts;
  out->self = c;
  out->vtable = &c_child_vtable;
  return ASYNCRT_OK;
}
