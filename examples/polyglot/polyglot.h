/*
 * polyglot.h -- the children of examples/polyglot/one_tree.py, one per
 * language: a C future (c_child.c, libpolyglot_c.so) and a Rust future
 * (rust/, libpolyglot_rust.so), each handed out as a plain asyncrt_future
 * that any language can spawn into any scope. The third child, a Python
 * coroutine, lives in one_tree.py.
 *
 * A child that is told to fail waits POLYGLOT_FAIL_AFTER_NS, then fails with
 * its status and message; any other child waits a minute, so it ends only
 * by being cancelled. Each counts what happened to it in a polyglot_counts
 * the caller owns and keeps alive until the child is dropped.
 */
#ifndef POLYGLOT_H
#define POLYGLOT_H

#include <stdint.h>

#include "asyncrt.h"

/* Long enough for the siblings to be polled first, so the failure finds
 * them waiting. */
#define POLYGLOT_FAIL_AFTER_NS 50000000ull /* 50 ms */
#define POLYGLOT_WAIT_NS 60000000000ull    /* a minute: only a cancel ends it */

/* User statuses (above 1000) and messages of the failures. */
#define POLYGLOT_C_STATUS 1001
#define POLYGLOT_C_MESSAGE "the C child failed"
#define POLYGLOT_RUST_STATUS 1002
#define POLYGLOT_RUST_MESSAGE "the Rust child failed"

/* Written on the thread that polls and drops the child. */
typedef struct polyglot_counts {
  uint32_t started;  /* first polls */
  uint32_t finished; /* completions: the wait ended without a cancel */
  uint32_t cleanups; /* asynchronous cancels seen (vtable->cleanup runs; Rust has none) */
  uint32_t drops;    /* releases of the child's state */
} polyglot_counts;

/* Fill *out with a child; `fail` nonzero makes it the failing one.
 * ASYNCRT_OK, ASYNCRT_EINVAL (NULL argument) or ASYNCRT_ENOMEM. */
int polyglot_c_child(int fail, polyglot_counts *counts, asyncrt_future *out);
int polyglot_rust_child(int fail, polyglot_counts *counts, asyncrt_future *out);

#endif /* POLYGLOT_H */
