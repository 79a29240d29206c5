/* testfutures.c -- hand-written C futures for the Go tests of the control
 * plane (Go test files cannot contain cgo). Each counts its polls and drops
 * so tests can prove "dropped exactly once". The public asyncrt_* functions
 * live in the library's export layer, so these use the data plane's own
 * inline waker helpers and context fields. */
#include <stdlib.h>

#include "testfutures.h"

static int probe_poll(void *self, asyncrt_context *cx, void *out) {
  tf_probe *p = self;
  atomic_fetch_add(&p->polls, 1);
  if (p->yields_left > 0) {
    p->yields_left--;
    art_waker_wake_by_ref(&cx->waker);
    return ASYNCRT_POLL_PENDING;
  }
  if (p->fail) {
    cx->failure = p->fail;
    return ASYNCRT_POLL_ERROR;
  }
  if (p->wait && !atomic_load(&p->released)) {
    /* Publish the waker, then look again: tf_probe_release sets released and
     * then looks for the waker, so one of the two sides sees the other. */
    if (!atomic_load(&p->has_waker)) {
      art_waker_clone(&cx->waker, &p->waker);
      atomic_store(&p->has_waker, 1);
    }
    if (!atomic_load(&p->released)) return ASYNCRT_POLL_PENDING;
  }
  *(uint64_t *)out = p->output;
  return ASYNCRT_POLL_READY;
}

static void probe_drop(void *self) {
  tf_probe *p = self;
  if (atomic_exchange(&p->has_waker, 0)) art_waker_drop(&p->waker);
  atomic_fetch_add(&p->drops, 1);
}

static const asyncrt_future_vtable probe_vtable = {
    .size = sizeof(asyncrt_future_vtable), .output_size = sizeof(uint64_t),
    .poll = probe_poll, .drop = probe_drop};

tf_probe *tf_probe_new(int yields, int wait, int fail, uint64_t output) {
  tf_probe *p = calloc(1, sizeof *p);
  p->yields_left = yields;
  p->wait = wait;
  p->fail = fail;
  p->output = output;
  p->future.self = p;
  p->future.vtable = &probe_vtable;
  return p;
}

void tf_probe_release(tf_probe *p) {
  atomic_store(&p->released, 1);
  if (atomic_load(&p->has_waker)) art_waker_wake_by_ref(&p->waker);
}

void tf_probe_free(tf_probe *p) { free(p); }
