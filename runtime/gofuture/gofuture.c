/* gofuture.c -- the C half of a Go future. The data plane calls the vtable
 * below like any C future's; its poll and drop only pass `self` (the Go
 * value's cgo.Handle) and the context on to the trampolines in cgo.go. The
 * context's layout and the waker helpers are the data plane's (art.h, inline
 * only): this package is not linked with the data plane's hidden symbols,
 * so anything else it needs from there goes through runtime/dataplane's Go
 * functions. */
#include "gofuture.h"

#include "../dataplane/art.h"
#include "_cgo_export.h"

static int gf_poll(void *self, asyncrt_context *cx, void *out) {
  (void)out; /* output_size is 0: a Go future keeps its result in Go */
  return art_gofuture_poll((uintptr_t)self, cx);
}

static void gf_drop(void *self) { art_gofuture_drop((uintptr_t)self); }

/* No cleanup: an asynchronous cancel drops a Go future at once. */
static const asyncrt_future_vtable gf_vtable = {
    .size = sizeof(asyncrt_future_vtable), .output_size = 0, .poll = gf_poll, .drop = gf_drop};

asyncrt_future gf_future(uintptr_t handle) { return (asyncrt_future){(void *)handle, &gf_vtable}; }

void gf_context_wake(const asyncrt_context *cx) { art_waker_wake_by_ref(&cx->waker); }

void gf_context_waker_clone(const asyncrt_context *cx, asyncrt_waker *out) { art_waker_clone(&cx->waker, out); }

void gf_waker_wake_by_ref(const asyncrt_waker *w) { art_waker_wake_by_ref(w); }

void gf_waker_drop(asyncrt_waker *w) { art_waker_drop(w); }
