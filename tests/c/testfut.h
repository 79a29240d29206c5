/*
 * testfut.h -- hand-written futures and small helpers shared by the C tests.
 *
 * tf_state is a scripted state machine: it yields `yields` items, then
 * returns pending `pendings` times (waking itself first, or parking a clone
 * of its waker for someone else to wake), then finishes ready with `value`
 * or fails with `fail`. It counts its polls and drops and notes anything a
 * runtime must never do (a poll after it finished or was dropped).
 *
 * tf_joiner awaits another future (typically a task's join future) the way a
 * composing future does, and records what it saw.
 */
#ifndef ASYNCRT_TESTFUT_H
#define ASYNCRT_TESTFUT_H

#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L
#endif

#include <pthread.h>
#include <stdint.h>

#include "asyncrt.h"

#define TF_MS_NS 1000000LL
#define TF_SECOND_NS 1000000000LL
/** The bound on every wait that should succeed. */
#define TF_TIMEOUT_NS (5 * TF_SECOND_NS)

/** tf_state.fail value: fail without calling asyncrt_context_fail. */
#define TF_FAIL_UNNAMED (-1)
/** A hook's return value that lets the script go on. */
#define TF_CONTINUE (-1)

typedef struct tf_state tf_state;

/** Runs at the start of every poll, after the counters are updated. Returns
 *  TF_CONTINUE or an asyncrt_poll value to return at once. */
typedef int (*tf_hook_fn)(tf_state *st, asyncrt_context *cx, void *out);

struct tf_state {
  /* The script; set before the future is handed over. */
  int yields;   /**< ASYNCRT_POLL_YIELDED returns first (item: the poll count) */
  int pendings; /**< then ASYNCRT_POLL_PENDING returns */
  int park;     /**< 0: wake itself before each pending; 1: keep a clone of
                     the waker in `parked` and wait to be woken */
  int fail;     /**< 0: finish ready with `value`; else finish with
                     ASYNCRT_POLL_ERROR, naming `fail` (unless TF_FAIL_UNNAMED) */
  uint64_t value;
  tf_hook_fn hook;
  void *hook_data;
  int has_output; /**< set by tf_future (8 bytes) / tf_future_void (0) */

  /* What happened; read with tf_get. */
  int polls;
  int drops;
  int bad_polls; /**< polls after finishing or after the drop */
  int finished;
  int parked_flag;           /**< 1 once `parked` holds a waker */
  asyncrt_waker parked;      /**< dropped by the future's drop */
  asyncrt_executor *executor; /**< asyncrt_context_executor of the last poll */
  pthread_t poll_thread;
  pthread_t drop_thread;
};

/** Zeroes *st: a future that is ready at its first poll with value 0. */
void tf_init(tf_state *st);
/** A future over st with an 8-byte output (st->value). */
asyncrt_future tf_future(tf_state *st);
/** A future over st with no output. */
asyncrt_future tf_future_void(tf_state *st);
/** The vtables behind tf_future and tf_future_void. */
extern const asyncrt_future_vtable tf_vtable_u64;
extern const asyncrt_future_vtable tf_vtable_void;

/** An atomic (acquire) read of an int counter of a tf_state or elsewhere. */
int tf_get(const int *counter);
/** An atomic (release) store. */
void tf_set(int *counter, int value);
/** An atomic increment; returns the new value. */
int tf_add(int *counter, int delta);

typedef struct tf_joiner {
  asyncrt_future child; /**< owned; dropped when it finishes or with the joiner */
  int child_live;
  int direct;        /**< 1: poll the child with our own context (its failure
                          passes through to our task); 0: through
                          asyncrt_poll_with_waker, finishing ready whatever
                          the child did */
  int child_result;  /**< the asyncrt_poll value the child finished with, -1 */
  int child_failure; /**< the child's failure status (mode 0) */
  uint64_t got;      /**< the child's output */
  int polls;
  int drops;
  pthread_t poll_thread; /**< the thread of its last poll */
} tf_joiner;

/** Sets up a joiner that owns `child`. */
void tf_joiner_init(tf_joiner *j, const asyncrt_future *child, int direct);
/** The joiner as a future with an 8-byte output (the child's output). */
asyncrt_future tf_joiner_future(tf_joiner *j);

/**
 * tf_ping: a task and a plain thread take turns. tf_ping_thread, run on a
 * thread asyncrt never saw, bumps `round` and wakes the task through its own
 * clone of the task's waker (wake_by_ref and clone+wake in turn), then waits
 * at most 5 s for the task to acknowledge the round. The task finishes once it
 * has acknowledged `rounds` rounds; extra polls are harmless.
 */
typedef struct tf_ping {
  int rounds;
  int round, acked, ready, polls, drops;
  int moved; /**< polls on a thread other than the first poll's */
  pthread_t first_thread, drop_thread;
  asyncrt_waker waker; /**< the thread's clone, dropped by the thread */
  int failed_round;    /**< set by the thread: -1 all done; 0 the task never
                            ran; else the round not acknowledged in time */
} tf_ping;

/** Zeroes *p for `rounds` rounds. */
void tf_ping_init(tf_ping *p, int rounds);
/** The task's future (no output). */
asyncrt_future tf_ping_future(tf_ping *p);
/** The thread's side; pass it to pthread_create with the tf_ping. */
void *tf_ping_thread(void *p);

/** CLOCK_MONOTONIC in nanoseconds. */
int64_t tf_now_ns(void);
void tf_sleep_ms(int ms);
/** Waits until *flag is nonzero, at most timeout_ms; returns the flag. */
int tf_wait_flag(const int *flag, int timeout_ms);
/** Waits until *counter >= want, at most timeout_ms; returns 1 if it got
 *  there. Polls with short sleeps: made for counters other threads bump. */
int tf_wait_at_least(const int *counter, int want, int timeout_ms);

/** A new executor with the default configuration, or NULL (message printed). */
asyncrt_executor *tf_executor(void);
/** The executor's counters; every field all-ones if the call failed. */
asyncrt_executor_stats tf_stats(asyncrt_executor *ex);

#endif /* ASYNCRT_TESTFUT_H */
