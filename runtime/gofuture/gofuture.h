/* gofuture.h -- the C half of a Go future (gofuture.c): a vtable whose poll
 * and drop call the Go trampolines in cgo.go, and the waker calls the Go
 * side makes. Declarations only: cgo.go's preamble includes this file, and
 * a file with //export may not define C. */
#ifndef GOFUTURE_H
#define GOFUTURE_H

#include <stdint.h>

#include "../../include/asyncrt.h"

/* The future whose self is `handle` (a runtime/cgo.Handle of the Go value). */
asyncrt_future gf_future(uintptr_t handle);

/* The waker of the task polled with cx: wake it without consuming it, or
 * clone it into *out. Only during that poll. */
void gf_context_wake(const asyncrt_context *cx);
void gf_context_waker_clone(const asyncrt_context *cx, asyncrt_waker *out);

/* A cloned waker: wake it (it stays held), or release it (then zeroed). */
void gf_waker_wake_by_ref(const asyncrt_waker *w);
void gf_waker_drop(asyncrt_waker *w);

#endif
