/*
 * child_timeout.c -- runs a child process with a time limit.
 *
 *   child_timeout [--backend auto|epoll|io_uring] SECONDS PROGRAM [ARGS...]
 *
 * Spawns PROGRAM (asyncrt_process_spawn: posix_spawn plus a pidfd) and waits
 * for it with an ASYNCRT_IO_OP_WAITPID op inside asyncrt_timeout_for. If
 * the child exits first, prints "child_timeout: exited with status N" (or
 * "killed by signal N") and exits with the child's status. If the time
 * runs out first, the timeout drops the wait -- which cancels the op; the
 * op and its future state live in this program's struct, so they outlive
 * the cancellation -- then kills the child through its pidfd, waits for it
 * with a second op, prints "child_timeout: timed out after S s, killed
 * (signal 9)" and exits 124, as timeout(1) does. Exits 77 when the backend
 * asked for is refused by the kernel.
 */
#define _POSIX_C_SOURCE 200809L
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "asyncrt.h"
#include "asyncrt_coro.h"

#define EXIT_SKIP 77
#define EXIT_TIMED_OUT 124

typedef struct supervisor {
  arc_state co;
  asyncrt_io *io;
  int pidfd;
  uint64_t limit_ns;
  /* the first wait, under a timeout: the op and its future's state must
   * outlive the timeout's drop of the future (the op is cancelled then,
   * and stays the driver's until the cancellation completes) */
  asyncrt_op wait_op;
  asyncrt_io_future_state wait_state;
  asyncrt_timeout timeout_state;
  asyncrt_future timed_wait;
  int64_t status_out;
  /* the wait after the kill */
  asyncrt_op reap_op;
  int timed_out;
  int wait_status; /* as waitpid(2) reports it */
  int failed;      /* an asyncrt status, 0 while all is well */
} supervisor;

/* Polls the timed wait by hand (not with ARC_AWAIT, which would end the
 * coroutine at a failure): READY when it is over, its failure in s->failed
 * (ASYNCRT_ETIMEDOUT when the time ran out). */
static int poll_timed_wait(supervisor *s, asyncrt_context *cx) {
  int rc = s->timed_wait.vtable->poll(s->timed_wait.self, cx, &s->status_out);
  if (rc == ASYNCRT_POLL_PENDING) {
    return rc;
  }
  if (rc != ASYNCRT_POLL_READY) {
    s->failed = asyncrt_context_failure(cx) ? asyncrt_context_failure(cx) : ASYNCRT_EFAILED;
  }
  return ASYNCRT_POLL_READY;
}

static int supervisor_poll(void *self, asyncrt_context *cx, void *out) {
  supervisor *s = self;
  int rc;
  (void)out;
  ARC_BEGIN(s->co);
  asyncrt_io_prep_waitpid(&s->wait_op, s->pidfd);
  {
    asyncrt_future wait;
    asyncrt_io_future(&s->wait_state, s->io, &s->wait_op, &wait);
    asyncrt_timeout_for(&s->timeout_state, &wait, s->limit_ns, &s->timed_wait);
  }
  ARC_AWAIT_POLL(s->co, poll_timed_wait(s, cx));
  ARC_DROP_CHILD(&s->timed_wait);
  if (s->failed == 0) {
    s->wait_status = (int)s->status_out;
    ARC_FINISH(s->co, ASYNCRT_POLL_READY);
  }
  if (s->failed != ASYNCRT_ETIMEDOUT) {
    ARC_FINISH(s->co, ASYNCRT_POLL_READY); /* reported by main */
  }
  s->failed = 0;
  s->timed_out = 1;
  if ((rc = asyncrt_process_kill(s->pidfd, SIGKILL)) != ASYNCRT_OK) {
    /* ESRCH: the first wait reaped it just as the time ran out, and its
     * status went with the dropped future */
    s->failed = rc;
    ARC_FINISH(s->co, ASYNCRT_POLL_READY);
  }
  asyncrt_io_prep_waitpid(&s->reap_op, s->pidfd);
  if ((rc = asyncrt_io_submit(cx, s->io, &s->reap_op)) != ASYNCRT_OK) {
    s->failed = rc;
    ARC_FINISH(s->co, ASYNCRT_POLL_READY);
  }
  ARC_AWAIT_POLL(s->co, asyncrt_op_poll(&s->reap_op, cx));
  if (s->reap_op.status != ASYNCRT_OK) {
    s->failed = s->reap_op.status;
  } else {
    s->failed = 0;
    s->wait_status = (int)s->reap_op.result;
  }
  ARC_END(s->co);
}

static void supervisor_drop(void *self) { ARC_DROP_CHILD(&((supervisor *)self)->timed_wait); }

static const asyncrt_future_vtable supervisor_vtable = {sizeof(asyncrt_future_vtable), 0, supervisor_poll,
                                                        supervisor_drop, NULL};

static int fail(const char *what, int status) {
  fprintf(stderr, "child_timeout: %s failed: %s (%s)\n", what, asyncrt_status_str(status), asyncrt_last_error());
  return 1;
}

int main(int argc, char **argv) {
  asyncrt_io_config cfg;
  asyncrt_process_config pcfg;
  asyncrt_executor *ex = NULL;
  asyncrt_io *io = NULL;
  supervisor s;
  asyncrt_future fut = {&s, &supervisor_vtable};
  int i = 1, rc, pid = 0;
  double seconds;
  unsigned b;

  asyncrt_io_config_init(&cfg);
  if (i + 1 < argc && strcmp(argv[i], "--backend") == 0) {
    for (b = ASYNCRT_IO_AUTO; b <= ASYNCRT_IO_URING && strcmp(argv[i + 1], asyncrt_io_backend_name(b)) != 0; b++) {
    }
    cfg.backend = b;
    i += 2;
  }
  if (argc - i < 2 || cfg.backend > ASYNCRT_IO_URING || (seconds = atof(argv[i])) < 0) {
    fprintf(stderr, "usage: %s [--backend auto|epoll|io_uring] SECONDS PROGRAM [ARGS...]\n", argv[0]);
    return 2;
  }

  if ((rc = asyncrt_executor_new(NULL, &ex)) != ASYNCRT_OK) {
    return fail("asyncrt_executor_new", rc);
  }
  rc = asyncrt_io_open(ex, &cfg, &io);
  if (rc == ASYNCRT_ENOTSUP) {
    printf("child_timeout: backend %s refused by this kernel: skipped\n", asyncrt_io_backend_name(cfg.backend));
    return EXIT_SKIP;
  }
  if (rc != ASYNCRT_OK) {
    return fail("asyncrt_io_open", rc);
  }
  memset(&s, 0, sizeof s);
  s.io = io;
  s.limit_ns = (uint64_t)(seconds * 1e9);
  asyncrt_process_config_init(&pcfg);
  pcfg.argv = (const char *const *)&argv[i + 1];
  if ((rc = asyncrt_process_spawn(&pcfg, &pid, &s.pidfd)) != ASYNCRT_OK) {
    return fail("asyncrt_process_spawn", rc);
  }
  printf("child_timeout: %s backend, pid %d, limit %g s: %s\n",
         asyncrt_io_backend_name((unsigned)asyncrt_io_backend(io)), pid, seconds, argv[i + 1]);
  fflush(stdout);
  rc = asyncrt_block_on(ex, &fut, NULL, ASYNCRT_NO_TIMEOUT);
  asyncrt_io_close(io);
  asyncrt_executor_free(ex);
  close(s.pidfd);
  if (rc != ASYNCRT_OK || s.failed != 0) {
    return fail("waiting for the child", rc != ASYNCRT_OK ? rc : s.failed);
  }
  if (s.timed_out) {
    printf("child_timeout: timed out after %g s, killed (signal %d)\n", seconds,
           WIFSIGNALED(s.wait_status) ? WTERMSIG(s.wait_status) : 0);
    return EXIT_TIMED_OUT;
  }
  if (WIFSIGNALED(s.wait_status)) {
    printf("child_timeout: killed by signal %d\n", WTERMSIG(s.wait_status));
    return 128 + WTERMSIG(s.wait_status);
  }
  printf("child_timeout: exited with status %d\n", WEXITSTATUS(s.wait_status));
  return WEXITSTATUS(s.wait_status);
}
