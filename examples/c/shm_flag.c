/*
 * shm_flag.c -- a user subsystem: many tasks wait on a counter in shared
 * memory that another process bumps.
 *
 * The parent maps a page shared with a child process (fork, before asyncrt
 * is touched: a forked child may not call asyncrt). The child bumps a counter
 * in that page ROUNDS times, a couple of milliseconds apart. In the parent,
 * TASKS tasks each wait for ROUNDS changes of the counter by submitting an
 * operation to a subsystem; the subsystem's poll reads the counter once and,
 * when it changed, completes every waiting operation at once.
 *
 * The point is in the counters printed at the end: the subsystem is polled
 * once per tick of the executor, whether 1 task waits or 1,000 -- waiting
 * tasks do not multiply the polling -- and it is never polled once nobody
 * waits. It has no fd, so the idle executor busy-polls it for its spin time
 * and then backs off (50 us doubling to 1 ms between ticks).
 *
 *     shm_flag [TASKS]      (default 1000; runs once with 1 task and once
 *                            with TASKS, and checks the counters)
 */
#define _GNU_SOURCE
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "asyncrt.h"

#define ROUNDS 5

/* The page both processes see. */
typedef struct shared {
  _Atomic uint64_t counter; /* bumped by the child */
  _Atomic int go;           /* set by the parent when its tasks wait */
  _Atomic int quit;         /* set by the parent: the child exits */
} shared;

/* ---- the subsystem ---------------------------------------------------------- */

typedef struct flag_subsystem {
  shared *page;
  uint64_t seen; /* the counter value the in-flight ops wait to see change */
} flag_subsystem;

/* An op waits for the counter to pass args[0]; it completes with args[0] + 1
 * as its result, so a task sees every bump once even if two come between
 * its polls. */
static void flag_submit(void *user, asyncrt_subsystem_cx *scx, asyncrt_op *op) {
  flag_subsystem *fs = user;
  (void)scx;
  if (atomic_load(&fs->page->counter) > op->args[0]) /* passed already */
    asyncrt_op_complete(op, ASYNCRT_OK, (int64_t)op->args[0] + 1);
}

/* One load per poll, however many ops wait; the ops are walked only when
 * the counter moved. */
static int flag_poll(void *user, asyncrt_subsystem_cx *scx, uint32_t budget) {
  flag_subsystem *fs = user;
  uint64_t now = atomic_load(&fs->page->counter);
  int done = 0;
  (void)budget;
  if (now == fs->seen) return 0;
  fs->seen = now;
  for (asyncrt_op *op = asyncrt_subsystem_cx_first_op(scx), *next; op; op = next) {
    next = asyncrt_op_next(op); /* before the completion unlinks op */
    if (now > op->args[0]) {
      asyncrt_op_complete(op, ASYNCRT_OK, (int64_t)op->args[0] + 1);
      done++;
    }
  }
  return done;
}

static const asyncrt_subsystem_vtable flag_vtable = {
    .size = sizeof(asyncrt_subsystem_vtable), .poll = flag_poll, .submit = flag_submit};

/* ---- the waiting tasks ------------------------------------------------------- */

typedef struct waiter {
  asyncrt_subsystem *sub;
  asyncrt_op op;
  uint64_t last; /* the last counter value this task saw */
  int rounds, submitted;
} waiter;

static int waiter_poll(void *self, asyncrt_context *cx, void *out) {
  waiter *w = self;
  (void)out;
  for (;;) {
    if (w->submitted) {
      if (asyncrt_op_poll(&w->op, cx) == ASYNCRT_POLL_PENDING) return ASYNCRT_POLL_PENDING;
      w->submitted = 0;
      if (w->op.status != ASYNCRT_OK) {
        asyncrt_context_fail(cx, w->op.status);
        return ASYNCRT_POLL_ERROR;
      }
      w->last = (uint64_t)w->op.result;
      if (++w->rounds == ROUNDS) return ASYNCRT_POLL_READY;
    }
    memset(&w->op, 0, sizeof w->op);
    w->op.args[0] = w->last;
    int rc = asyncrt_op_submit(cx, w->sub, &w->op);
    if (rc) {
      asyncrt_context_fail(cx, rc);
      return ASYNCRT_POLL_ERROR;
    }
    w->submitted = 1;
  }
}

static const asyncrt_future_vtable waiter_vtable = {
    .size = sizeof(asyncrt_future_vtable), .output_size = 0, .poll = waiter_poll};

/* The root spawns the waiters, tells the child to start once they are all
 * waiting (their first polls submitted), and joins them. */
typedef struct root {
  asyncrt_executor *ex;
  waiter *waiters;
  int n, spawned, joined;
  asyncrt_task **tasks;
  asyncrt_future join;
  int joining;
  shared *page;
} root;

static int root_poll(void *self, asyncrt_context *cx, void *out) {
  root *r = self;
  (void)out;
  if (!r->spawned) {
    for (int i = 0; i < r->n; i++) {
      asyncrt_future f = {&r->waiters[i], &waiter_vtable};
      int rc = asyncrt_spawn(r->ex, &f, 0, &r->tasks[i]);
      if (rc) {
        asyncrt_context_fail(cx, rc);
        return ASYNCRT_POLL_ERROR;
      }
    }
    r->spawned = 1;
    asyncrt_waker_wake_by_ref(asyncrt_context_waker(cx)); /* after the waiters' first polls */
    return ASYNCRT_POLL_PENDING;
  }
  atomic_store(&r->page->go, 1);
  while (r->joined < r->n) {
    if (!r->joining) {
      int rc = asyncrt_task_join(r->tasks[r->joined], &r->join);
      if (rc) {
        asyncrt_context_fail(cx, rc);
        return ASYNCRT_POLL_ERROR;
      }
      r->joining = 1;
    }
    int p = r->join.vtable->poll(r->join.self, cx, NULL);
    if (p == ASYNCRT_POLL_PENDING) return ASYNCRT_POLL_PENDING;
    r->join.vtable->drop(r->join.self);
    r->joining = 0;
    asyncrt_task_release(r->tasks[r->joined++]);
    if (p != ASYNCRT_POLL_READY) return p;
  }
  return ASYNCRT_POLL_READY;
}

static const asyncrt_future_vtable root_vtable = {
    .size = sizeof(asyncrt_future_vtable), .output_size = 0, .poll = root_poll};

/* ---- one run: fork a writer, wait, read the counters ------------------------ */

typedef struct result {
  asyncrt_subsystem_stats sub;
  asyncrt_worker_stats worker;
} result;

static void child_bumps(shared *page) {
  while (!atomic_load(&page->go) && !atomic_load(&page->quit)) usleep(100);
  for (int i = 0; i < ROUNDS && !atomic_load(&page->quit); i++) {
    usleep(2000);
    atomic_fetch_add(&page->counter, 1);
  }
  _exit(0);
}

static int run(int ntasks, result *res) {
  shared *page = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (page == MAP_FAILED) return perror("mmap"), 1;
  pid_t child = fork();
  if (child < 0) return perror("fork"), 1;
  if (child == 0) child_bumps(page); /* plain C only in the child */

  flag_subsystem fs = {.page = page};
  asyncrt_subsystem_config sc;
  asyncrt_subsystem_config_init(&sc);
  sc.vtable = &flag_vtable;
  sc.user_data = &fs;
  sc.name = "shm-flag";
  asyncrt_subsystem *sub = NULL;
  asyncrt_executor_config cfg;
  asyncrt_executor_config_init(&cfg);
  cfg.subsystems = &sc;
  cfg.subsystem_count = 1;
  cfg.subsystem_handles = &sub;
  asyncrt_executor *ex = NULL;
  int rc = asyncrt_executor_new(&cfg, &ex);
  if (rc) {
    fprintf(stderr, "executor: %s\n", asyncrt_last_error());
    atomic_store(&page->quit, 1);
    waitpid(child, NULL, 0);
    return 1;
  }
  waiter *waiters = calloc((size_t)ntasks, sizeof *waiters);
  asyncrt_task **tasks = calloc((size_t)ntasks, sizeof *tasks);
  for (int i = 0; i < ntasks; i++) waiters[i].sub = sub;
  root r = {.ex = ex, .waiters = waiters, .n = ntasks, .tasks = tasks, .page = page};
  asyncrt_future f = {&r, &root_vtable};
  rc = asyncrt_block_on(ex, &f, NULL, 10LL * 1000000000LL); /* bounded: 10 s */
  if (rc) fprintf(stderr, "block_on: %s\n", asyncrt_last_error());
  res->sub.size = sizeof res->sub;
  res->worker.size = sizeof res->worker;
  asyncrt_subsystem_stats_get(sub, &res->sub);
  asyncrt_worker_stats_get(ex, 0, &res->worker);
  asyncrt_executor_free(ex);
  atomic_store(&page->quit, 1);
  waitpid(child, NULL, 0);
  free(waiters);
  free(tasks);
  munmap(page, 4096);
  return rc != ASYNCRT_OK;
}

static void report(int ntasks, const result *r) {
  printf("%5d tasks: %3d rounds, subsystem polls %6llu (empty %6llu), completions %6llu, "
         "ticks %6llu, polls per tick %.2f, completions per non-empty poll %.0f\n",
         ntasks, ROUNDS, (unsigned long long)r->sub.polls, (unsigned long long)r->sub.empty_polls,
         (unsigned long long)r->sub.completions, (unsigned long long)r->worker.ticks,
         r->worker.ticks ? (double)r->sub.polls / (double)r->worker.ticks : 0.0,
         r->sub.polls > r->sub.empty_polls
             ? (double)r->sub.completions / (double)(r->sub.polls - r->sub.empty_polls)
             : 0.0);
}

int main(int argc, char **argv) {
  int many = argc > 1 ? atoi(argv[1]) : 1000;
  if (many < 1) many = 1;
  result one, lots;
  if (run(1, &one) || run(many, &lots)) return 1;
  report(1, &one);
  report(many, &lots);
  /* What the design promises, checked: every op completed; at most one poll
   * per tick whatever the number of waiters; and no poll without waiters
   * (the subsystem's waiters are 0 at the end). */
  int ok = 1;
  const result *rs[2] = {&one, &lots};
  int ns[2] = {1, many};
  for (int i = 0; i < 2; i++) {
    const result *r = rs[i];
    if (r->sub.completions != (uint64_t)ns[i] * ROUNDS) ok = 0;
    if (r->sub.polls > r->worker.ticks) ok = 0;
    if (r->sub.waiters != 0) ok = 0;
  }
  printf(ok ? "ok: one poll per tick at most, however many tasks wait\n" : "FAILED: counters out of line\n");
  return ok ? 0 : 1;
}
