/*
 * asyncrt_coro.h -- coroutines for asyncrt poll functions, in plain C.
 *
 * A poll function is a state machine: it runs until it must wait, returns
 * ASYNCRT_POLL_PENDING, and on the next poll picks up where it stopped. By
 * hand that means numbering the states and switching on the number. The
 * macros below do the numbering: the body of a poll reads top to bottom,
 * with ARC_AWAIT where it waits, ARC_YIELD where a stream hands out an item
 * and ARC_RETURN where it ends.
 *
 *     typedef struct pause_twice {
 *       arc_state co;          // where the poll resumes; zero it
 *       asyncrt_sleep sleep;   // child state lives in the struct ...
 *       asyncrt_future nap;    // ... and so does every "local" that
 *       int round;             //     must survive an await
 *     } pause_twice;
 *
 *     static int pause_twice_poll(void *self, asyncrt_context *cx, void *out) {
 *       pause_twice *p = self;
 *       ARC_BEGIN(p->co);
 *       for (p->round = 0; p->round < 2; p->round++) {
 *         asyncrt_sleep_for(&p->sleep, 1000000, &p->nap);
 *         ARC_AWAIT(p->co, cx, &p->nap, NULL);
 *         ARC_DROP_CHILD(&p->nap);
 *       }
 *       ARC_RETURN(p->co, *(int *)out = p->round);
 *       ARC_END(p->co);
 *     }
 *
 *     static void pause_twice_drop(void *self) {
 *       ARC_DROP_CHILD(&((pause_twice *)self)->nap);  // a no-op if none
 *     }
 *
 * How it works.  ARC_BEGIN opens a `switch` on the number kept in the
 * arc_state; every macro that suspends stores its own line number there and
 * places a `case <line>:` label where the body resumes. This is standard C99
 * (the technique of Duff's device and of protothreads): no GNU extension, no
 * allocation, no stack of its own. The state is one int plus the result of
 * the last await.
 *
 * The rules that follow from it -- break one and the compiler usually
 * complains (a duplicate case value), but not always:
 *
 *  1. Locals do not survive a suspension. The function returns at every
 *     ARC_AWAIT, ARC_AWAIT_POLL, ARC_YIELD and ARC_PAUSE and is re-entered
 *     from the top, so a value needed after one of them lives in the
 *     future's struct (loop counters included). Locals are fine as scratch
 *     between two suspensions; declare them before ARC_BEGIN, since the
 *     switch jumps over any declaration inside the body.
 *  2. One suspending macro per source line (each is numbered by __LINE__).
 *  3. No suspending macro inside a `switch` statement of the body: its
 *     `case` label would belong to the inner switch. Use if/else chains, or
 *     a switch that is complete between two suspensions.
 *  4. One coroutine per function, with its own arc_state: a poll and a
 *     cleanup of the same future are two coroutines with two arc_state
 *     fields. The body lies between ARC_BEGIN and ARC_END, and ARC_END is the
 *     last statement of the function.
 *  5. No `break` at the top level of the body (inside your own loops it is
 *     fine): it would leave the switch, and the poll would end with
 *     ASYNCRT_POLL_ERROR.
 *  6. Expressions given to ARC_AWAIT and ARC_AWAIT_POLL are evaluated again
 *     at every poll until the wait is over: they may name the struct's
 *     fields and the poll's `cx` and `out`, never a local.
 *
 * Children.  The futures a coroutine awaits are the coroutine's own: it
 * makes them (asyncrt_sleep_for, asyncrt_task_join, ...) into fields of its
 * struct and must drop each exactly once. The macros never drop anything.
 * Keep a child's asyncrt_future zeroed while there is none, drop it with
 * ARC_DROP_CHILD once it has completed (which zeroes it again), and call
 * ARC_DROP_CHILD on every child field in the future's drop: a child still
 * running when the future is cancelled is dropped there, one that was
 * already dropped is skipped.
 *
 * Threads.  Nothing here is shared: the macros touch only the future's own
 * struct and call only the asyncrt functions named below, on the thread that
 * polls the future.
 *
 * This header is for C code that writes futures; it adds no symbols to the
 * library and nothing here is needed through an FFI. Include it after (or
 * instead of) asyncrt.h.
 */
#ifndef ASYNCRT_CORO_H
#define ASYNCRT_CORO_H

#include <stddef.h>

#include "asyncrt.h"

/**
 * Where a coroutine resumes, kept in the future's struct. Zero it before the
 * first poll (ARC_STATE_INIT, memset, or a static/zero initializer); the
 * macros own it afterwards.
 */
typedef struct arc_state {
  int line; /**< 0: not started; ARC__DONE: finished; else the resume line */
  int last; /**< the asyncrt_poll value the last await ended with (ARC_LAST) */
} arc_state;

/** An initializer for an arc_state: `arc_state co = ARC_STATE_INIT;`. */
#define ARC_STATE_INIT {0, 0}

/* Private: the line of a coroutine that returned READY or ERROR. */
#define ARC__DONE (-1)

/*
 * Private: makes the current line a resume point. The state is set first;
 * a later poll jumps to the case label. The label sits in an `if (0)` block
 * so that straight-line execution reaches the code after it without "falling
 * through" into a case label (which -Wimplicit-fallthrough reports, and C99
 * has no attribute to silence).
 */
#define ARC__RESUME_POINT(co)                                                 \
  (co).line = __LINE__;                                                       \
  if (0) {                                                                    \
  case __LINE__:;                                                             \
  }

/**
 * ARC_BEGIN(co) -- starts the body of a coroutine.
 *
 * Expands to `switch ((co).line) { case 0:` -- the opening of the switch
 * that ARC_END closes. `co` is an lvalue of type arc_state that lives in the
 * future's struct (usually `self->co`). Put it after the declarations of the
 * poll's locals.
 */
#define ARC_BEGIN(co)                                                         \
  switch ((co).line) {                                                        \
  case 0:

/**
 * ARC_END(co) -- ends the body of a coroutine; the last statement of the
 * function.
 *
 * Reaching it by running off the end of the body finishes the future: the
 * poll returns ASYNCRT_POLL_READY without writing any output -- right for a
 * future with output_size 0 and for the end of a stream. A future with an
 * output ends with ARC_RETURN instead. A poll after the coroutine finished
 * (which asyncrt never makes) returns ASYNCRT_POLL_ERROR, as does a state
 * that no resume point matches (an arc_state that was not zeroed).
 */
#define ARC_END(co)                                                           \
  (co).line = ARC__DONE;                                                      \
  return ASYNCRT_POLL_READY;                                                  \
  default:                                                                    \
    break;                                                                    \
  }                                                                           \
  return ASYNCRT_POLL_ERROR

/**
 * ARC_AWAIT_POLL(co, expr) -- waits until `expr`, an expression of any
 * asyncrt_poll value, is not pending.
 *
 * Evaluates `expr` now and again at every later poll of the future while it
 * gives ASYNCRT_POLL_PENDING (the poll returns pending: `expr` must have
 * arranged for the context's waker to be woken, as asyncrt_timer_poll,
 * asyncrt_send_poll, asyncrt_recv_poll and asyncrt_op_poll do). Then:
 *  - ASYNCRT_POLL_READY or ASYNCRT_POLL_YIELDED: the body goes on, and
 *    ARC_LAST(co) is that value;
 *  - anything else (ASYNCRT_POLL_ERROR, or a negative status such as
 *    asyncrt_poll_with_waker's -ASYNCRT_EINVAL): the coroutine finishes
 *    and the poll returns ASYNCRT_POLL_ERROR. The failure `expr` named in
 *    the context (asyncrt_context_fail) is the one reported; if it named
 *    none, the failure is ASYNCRT_EFAILED. (asyncrt_poll_with_waker hands
 *    a child's status to its own `failure` argument, not to the context:
 *    to pass that status on, poll it by hand and use ARC_FAIL.)
 * Requires rule 6 above: `expr` may use the struct, `cx` and `out` only.
 */
#define ARC_AWAIT_POLL(co, expr)                                              \
  do {                                                                        \
    ARC__RESUME_POINT(co)                                                     \
    {                                                                         \
      int arc__result = (expr);                                               \
      if (arc__result == ASYNCRT_POLL_PENDING) {                              \
        return ASYNCRT_POLL_PENDING;                                          \
      }                                                                       \
      if (arc__result != ASYNCRT_POLL_READY &&                                \
          arc__result != ASYNCRT_POLL_YIELDED) {                              \
        (co).line = ARC__DONE;                                                \
        return ASYNCRT_POLL_ERROR;                                            \
      }                                                                       \
      (co).last = arc__result;                                                \
    }                                                                         \
  } while (0)

/**
 * ARC_AWAIT(co, cx, fut, out) -- polls the child future `*fut` (an
 * asyncrt_future *) with this poll's context until it is not pending.
 *
 * ARC_AWAIT_POLL of `fut->vtable->poll(fut->self, cx, out)`: `out` receives
 * the child's output when it is READY (its output_size bytes: point it into
 * the struct, or at this poll's `out` to pass the output through; NULL if
 * output_size is 0). A child's failure is this future's failure, with the
 * child's status (the child named it in the shared context). A child that
 * yields (a stream) ends the wait too, with its item in `out` and
 * ARC_LAST(co) == ASYNCRT_POLL_YIELDED; await it again for the next item,
 * until ARC_LAST(co) is ASYNCRT_POLL_READY (its end).
 * Requires a live child (made, not yet finished, not dropped); the child is
 * not dropped here (see "Children").
 */
#define ARC_AWAIT(co, cx, fut, out)                                           \
  ARC_AWAIT_POLL(co, (fut)->vtable->poll((fut)->self, (cx), (out)))

/**
 * ARC_LAST(co) -- how the last ARC_AWAIT or ARC_AWAIT_POLL ended:
 * ASYNCRT_POLL_READY, or ASYNCRT_POLL_YIELDED when the child was a stream
 * that handed out an item. An int rvalue.
 */
#define ARC_LAST(co) ((co).last + 0)

/**
 * ARC_YIELD(co, ...) -- hands out one item of a stream.
 *
 * Runs the statements or expressions given after `co` (they write the item
 * to the poll's `out`, e.g. `*(int *)out = self->i`; commas are allowed),
 * then returns ASYNCRT_POLL_YIELDED. The next poll resumes after the
 * ARC_YIELD. With nothing to write, pass an empty argument: ARC_YIELD(co, ).
 */
#define ARC_YIELD(co, ...)                                                    \
  do {                                                                        \
    __VA_ARGS__;                                                              \
    (co).line = __LINE__;                                                     \
    return ASYNCRT_POLL_YIELDED;                                              \
  case __LINE__:;                                                             \
  } while (0)

/**
 * ARC_PAUSE(co, cx) -- lets the other tasks run (tokio's yield_now).
 *
 * Wakes the task through `cx`'s waker (asyncrt_waker_wake_by_ref) and
 * returns ASYNCRT_POLL_PENDING: the task goes to the back of the run queue
 * and the next poll resumes after the ARC_PAUSE. No item is produced.
 */
#define ARC_PAUSE(co, cx)                                                     \
  do {                                                                        \
    asyncrt_waker_wake_by_ref(asyncrt_context_waker(cx));                     \
    (co).line = __LINE__;                                                     \
    return ASYNCRT_POLL_PENDING;                                              \
  case __LINE__:;                                                             \
  } while (0)

/**
 * ARC_FINISH(co, result) -- finishes the coroutine and returns `result`
 * (ASYNCRT_POLL_READY or ASYNCRT_POLL_ERROR) from the poll. The primitive
 * under ARC_RETURN and ARC_FAIL; use it after naming a failure yourself
 * (asyncrt_context_fail_info) to return ASYNCRT_POLL_ERROR.
 */
#define ARC_FINISH(co, result)                                                \
  do {                                                                        \
    (co).line = ARC__DONE;                                                    \
    return (result);                                                          \
  } while (0)

/**
 * ARC_RETURN(co, ...) -- finishes the future successfully.
 *
 * Runs the statements or expressions given after `co` (they write the
 * output to `out`: `*(uint64_t *)out = self->sum`), then returns
 * ASYNCRT_POLL_READY. A future without output passes an empty argument:
 * ARC_RETURN(co, ).
 */
#define ARC_RETURN(co, ...)                                                   \
  do {                                                                        \
    __VA_ARGS__;                                                              \
    ARC_FINISH(co, ASYNCRT_POLL_READY);                                       \
  } while (0)

/**
 * ARC_FAIL(co, cx, status) -- finishes the future with a failure: names
 * `status` with asyncrt_context_fail(cx, status) (a nonzero asyncrt_status
 * or a user value above 1000) and returns ASYNCRT_POLL_ERROR.
 */
#define ARC_FAIL(co, cx, status)                                              \
  do {                                                                        \
    asyncrt_context_fail((cx), (status));                                     \
    ARC_FINISH(co, ASYNCRT_POLL_ERROR);                                       \
  } while (0)

/**
 * ARC_DROP_CHILD(fut) -- drops the child future `*fut` (an asyncrt_future
 * *) if there is one, and zeroes it.
 *
 * A zeroed asyncrt_future (vtable NULL) means "no child": it is skipped, so
 * the same field may be dropped after the child completed and again in the
 * future's drop, and the child is dropped once. Use it in the body after an
 * await (before making a new child in the same field) and in the future's
 * drop for every child field. Not safe to use on a future that asyncrt owns
 * (one handed to asyncrt_spawn or a combinator).
 */
#define ARC_DROP_CHILD(fut)                                                   \
  do {                                                                        \
    asyncrt_future *arc__child = (fut);                                       \
    if (arc__child->vtable != NULL && arc__child->vtable->drop != NULL) {     \
      arc__child->vtable->drop(arc__child->self);                             \
    }                                                                         \
    arc__child->self = NULL;                                                  \
    arc__child->vtable = NULL;                                                \
  } while (0)

#endif /* ASYNCRT_CORO_H */
