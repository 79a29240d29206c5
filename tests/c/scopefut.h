/*
 * scopefut.h -- sf_node, the scripted future of the scope tests, and the
 * helpers those tests share (executors, joins, dumps).
 *
 * A node's first poll names its task (`name`), opens a scope owned by its
 * task (`opens_scope`, with `cfg`) and spawns its `nchildren` children into
 * it. Then every poll takes one of `steps` self-woken pending returns, and
 * once they are used up the node does `then`:
 *
 *   SF_PARK   pending, holding a clone of its waker in `waker` (taken at the
 *             first park) for the test to wake; once `release` is set, ready.
 *   SF_READY  ready.
 *   SF_FAIL   fails, naming fail_status / fail_message / fail_value through
 *             asyncrt_context_fail_info.
 *   SF_JOIN   awaits its scope's join (polled through asyncrt_poll_with_waker,
 *             so the join's failure is only recorded, in join_result and
 *             join_failure), then is ready.
 *   SF_SLEEP  awaits an asyncrt_sleep_for of sleep_ns, then is ready.
 *
 * `cleanup` picks the vtable: SF_CLEANUP_ABSENT (a vtable whose size stops at
 * drop), SF_CLEANUP_NULL (the slot is NULL), or a cleanup that is ready at
 * once, fails, awaits a sleep of cleanup_sleep_ns, or stays pending forever.
 *
 * The drop frees the node's scope handle (unless keep_scope) and whatever
 * the node still holds. Events that tests compare in time -- the first poll,
 * the start and end of the cleanup, the drop -- take a number from one global
 * sequence (sf_seq), so "children before parents" is a comparison of numbers
 * even across threads. Counters are atomic: read them with tf_get.
 */
#ifndef ASYNCRT_SCOPEFUT_H
#define ASYNCRT_SCOPEFUT_H

#include "testfut.h"

#include <stddef.h>

enum sf_then { SF_PARK, SF_READY, SF_FAIL, SF_JOIN, SF_SLEEP };

enum sf_cleanup {
  SF_CLEANUP_ABSENT,  /* vtable size stops at drop */
  SF_CLEANUP_NULL,    /* the cleanup slot is NULL */
  SF_CLEANUP_READY,   /* ready at its first call */
  SF_CLEANUP_FAIL,    /* fails at its first call, naming cleanup_fail_status */
  SF_CLEANUP_SLEEP,   /* awaits a sleep of cleanup_sleep_ns, then ready */
  SF_CLEANUP_FOREVER  /* pending forever (nothing wakes it) */
};

/** sf_node.hook's return to let the script go on. */
#define SF_CONTINUE (-1)

typedef struct sf_node sf_node;

/** Runs at the start of every poll, after the counters; returns SF_CONTINUE
 *  or an asyncrt_poll value to return at once. */
typedef int (*sf_hook_fn)(sf_node *n, asyncrt_context *cx);

struct sf_node {
  /* --- the script: set before the future is handed over --- */
  const char *name; /* asyncrt_context_set_name at the first poll */
  int opens_scope;
  asyncrt_scope_config cfg;  /* set up by sf_node_init */
  sf_node **children;        /* spawned into the scope at the first poll */
  int nchildren;
  unsigned child_flags;      /* spawn flags of every child */
  asyncrt_task **child_tasks; /* if set: receives the children's handles */
  int steps;                 /* self-woken pending returns before `then` */
  int then;                  /* enum sf_then */
  int release;               /* SF_PARK: set (tf_set) and wake to finish */
  int fail_status;
  const char *fail_message;
  void *fail_value;
  void (*fail_value_free)(void *value);
  uint64_t sleep_ns;         /* SF_SLEEP */
  int cleanup;               /* enum sf_cleanup */
  uint64_t cleanup_sleep_ns; /* SF_CLEANUP_SLEEP */
  int cleanup_fail_status;   /* SF_CLEANUP_FAIL */
  int keep_scope;            /* the test frees the scope handle, not the drop */
  sf_hook_fn hook;
  void *hook_data;

  /* --- what happened --- */
  int polls, drops, bad_polls, finished;
  int cleanup_calls, cleanups_done, bad_cleanups; /* bad: after the end or the drop */
  int first_poll_seq, cleanup_start_seq, cleanup_end_seq, drop_seq;
  uint64_t cleanup_start_clock, cleanup_end_clock; /* asyncrt_context_now */
  int open_rc;         /* asyncrt_scope_open's status */
  int spawned;         /* children spawned */
  int spawn_rc;        /* the first failed spawn's status, or OK */
  int join_rc;         /* asyncrt_scope_join's status (SF_JOIN) */
  int join_result;     /* the join's asyncrt_poll value, -1 until it finished */
  int join_failure;    /* its failure status */
  asyncrt_scope *scope;
  uint64_t scope_id;
  int waker_flag;      /* 1 once `waker` holds a clone */
  asyncrt_waker waker;
  pthread_t first_thread, drop_thread;
  asyncrt_executor *executor; /* asyncrt_context_executor at the first poll */

  /* --- private --- */
  int step;
  asyncrt_future join;
  int join_live;
  asyncrt_sleep sleep, cleanup_sleep;
  asyncrt_future sleep_fut, cleanup_fut;
  int sleep_live, cleanup_live;
};

/** Zeroes *n: a parked node with no scope, no children and no cleanup slot
 *  (SF_CLEANUP_NULL); cfg holds the defaults. */
void sf_node_init(sf_node *n);
/** The node as a future (no output), with the vtable its `cleanup` asks for. */
asyncrt_future sf_future(sf_node *n);
/** Spawns the node onto ex (asyncrt_spawn). */
int sf_spawn(asyncrt_executor *ex, sf_node *n, unsigned flags, asyncrt_task **out);
/** Spawns the node into a scope (asyncrt_scope_spawn). */
int sf_scope_spawn(asyncrt_scope *s, sf_node *n, unsigned flags, asyncrt_task **out);
/** Wakes a parked node through its waker clone (a no-op before it parked). */
void sf_wake(sf_node *n);
/** Sets `release` and wakes the node. */
void sf_release(sf_node *n);

/** The next number of the global event sequence (starts at 1). */
int sf_seq(void);

/** A new executor, or NULL (message printed). workers: THREADS only. */
asyncrt_executor *sf_executor(unsigned kind, unsigned workers, unsigned clock);
/** A local executor on the test clock. */
asyncrt_executor *sf_local_test_clock(void);

/** A scope at the top of ex with these flags, timeout and name (0/NULL:
 *  none); NULL if the open failed (message printed). */
asyncrt_scope *sf_top(asyncrt_executor *ex, unsigned flags, uint64_t timeout_ns, const char *name);
/** Makes the scope's join and runs it with asyncrt_block_on on ex (bounded
 *  by TF_TIMEOUT_NS unless timeout_ns is larger); returns what block_on
 *  returned, or the join call's failure. */
int sf_join(asyncrt_executor *ex, asyncrt_scope *s, int64_t timeout_ns);
/** The task's id, or 0 if the call failed. */
uint64_t sf_task_id(asyncrt_task *task);
/** The scope's id, or 0 if the call failed. */
uint64_t sf_scope_id(asyncrt_scope *s);
/** Waits until the task is no longer running, at most timeout_ms; returns
 *  its status (EAGAIN if it is still running). Polls: for THREADS executors. */
int sf_wait_task(asyncrt_task *task, int timeout_ms);

/** A growing text buffer that asyncrt_executor_dump writes into. `data` is
 *  always NUL-terminated (or NULL before the first write). */
typedef struct sf_text {
  char *data;
  size_t len, cap;
  int writes;
  int oom;
} sf_text;
void sf_text_write(const char *data, size_t len, void *user);
void sf_text_free(sf_text *t);
/** Dumps ex in `format` into a fresh *t (freed first); returns the status. */
int sf_dump(asyncrt_executor *ex, unsigned format, sf_text *t);
/** The line of `text` that contains `needle` (copied into line, at most
 *  cap-1 bytes), or 0 if no line does. */
int sf_line_with(const char *text, const char *needle, char *line, size_t cap);
/** 1 if `text` contains the decimal number n with no digit on either side. */
int sf_has_number(const char *text, uint64_t n);

#endif /* ASYNCRT_SCOPEFUT_H */
