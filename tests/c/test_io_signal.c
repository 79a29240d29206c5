/* Awaiting signals (ASYNCRT_IO_OP_SIGNAL, "Signals" under "Processes and
 * signals" in asyncrt.h), on both backends: a task awaits SIGUSR1 and the
 * test raises it; a signal sent while nobody waits completes the next wait
 * at once; asyncrt_io_signal_release cancels the waits and gives the signal
 * back; a host's handler does not run while asyncrt catches its signal and
 * is back afterwards; the driver's close gives its signals back; signals
 * that cannot be awaited are refused. */
#define _XOPEN_SOURCE 700 /* SA_ONSTACK */
#include "io_batch.h"

#include <errno.h>
#include <signal.h>
#include <unistd.h>

static int host_handled;

static void host_handler(int sig, siginfo_t *info, void *ctx) {
  (void)sig;
  (void)info;
  (void)ctx;
  __atomic_add_fetch(&host_handled, 1, __ATOMIC_SEQ_CST);
}

/* Spawns a batch of one SIGNAL op for signo and waits until it is submitted
 * (from then on asyncrt catches signo). */
static int await_signal(asyncrt_executor *ex, asyncrt_io *io, io_batch *b, int signo) {
  io_batch_init(b, io, 1);
  asyncrt_io_prep_signal(&b->ops[0], signo);
  CHECK_OR(io_batch_spawn(ex, b) == ASYNCRT_OK, 0);
  CHECK_OR(tf_wait_flag(&b->submitted, 5000), 0);
  CHECK_OR(b->submit_rc[0] == ASYNCRT_OK, 0);
  return 1;
}

static void test_await_and_pending(void) {
  size_t bk;
  for (bk = 0; bk < IO_NBACKENDS; bk++) {
    asyncrt_executor *ex = io_threads_executor();
    asyncrt_io *io;
    io_batch b1, b2, b3;
    if (!ex) return;
    if (!io_open_backend(ex, io_backends[bk], NULL, &io)) {
      CHECK_OK(asyncrt_executor_free(ex));
      continue;
    }
    /* A wait, then the signal. */
    if (await_signal(ex, io, &b1, SIGUSR1)) {
      CHECK_INT(kill(getpid(), SIGUSR1), 0);
      CHECK(io_batch_wait(&b1));
      CHECK_INT(b1.ops[0].status, ASYNCRT_OK);
      CHECK_INT(b1.ops[0].result, SIGUSR1);
    }

    /* The signal with nobody waiting, then a wait. SIGUSR2's completion
     * says SIGUSR1 was handed over: the test thread takes SIGUSR1 inside
     * kill (it leaves it unblocked), and Go passes pending signals on in
     * order. */
    if (await_signal(ex, io, &b2, SIGUSR2)) {
      CHECK_INT(kill(getpid(), SIGUSR1), 0);
      CHECK_INT(kill(getpid(), SIGUSR2), 0);
      CHECK(io_batch_wait(&b2));
      CHECK_INT(b2.ops[0].result, SIGUSR2);
      io_batch_init(&b3, io, 1);
      asyncrt_io_prep_signal(&b3.ops[0], SIGUSR1);
      CHECK_OK(io_batch_spawn(ex, &b3));
      CHECK(io_batch_wait(&b3)); /* no further signal is sent */
      CHECK_INT(b3.ops[0].status, ASYNCRT_OK);
      CHECK_INT(b3.ops[0].result, SIGUSR1);
      CHECK_INT(tf_get(&b3.polls), 1); /* complete inside its submit */
    }

    /* A release cancels the wait. */
    if (await_signal(ex, io, &b1, SIGUSR1)) {
      CHECK_OK(asyncrt_io_signal_release(io, SIGUSR1));
      CHECK(io_batch_wait(&b1));
      CHECK_INT(b1.ops[0].status, ASYNCRT_ECANCELLED);
    }
    CHECK_OK(asyncrt_io_signal_release(io, SIGUSR1)); /* not caught: fine */
    CHECK_OK(asyncrt_io_close(io));
    CHECK_OK(asyncrt_executor_free(ex));
  }
}

/* Two waiters on one driver, and one on another driver: one delivery
 * completes all three. */
static void test_one_delivery_wakes_all(void) {
  size_t bk;
  for (bk = 0; bk < IO_NBACKENDS; bk++) {
    asyncrt_executor *ex = io_threads_executor();
    asyncrt_io *io1, *io2;
    io_batch b1, b2;
    if (!ex) return;
    if (!io_open_backend(ex, io_backends[bk], NULL, &io1)) {
      CHECK_OK(asyncrt_executor_free(ex));
      continue;
    }
    CHECK(io_open_backend(ex, io_backends[bk], NULL, &io2));
    io_batch_init(&b1, io1, 2);
    asyncrt_io_prep_signal(&b1.ops[0], SIGUSR1);
    asyncrt_io_prep_signal(&b1.ops[1], SIGUSR1);
    CHECK_OK(io_batch_spawn(ex, &b1));
    CHECK(tf_wait_flag(&b1.submitted, 5000));
    if (await_signal(ex, io2, &b2, SIGUSR1)) {
      CHECK_INT(kill(getpid(), SIGUSR1), 0);
      CHECK(io_batch_wait(&b1));
      CHECK(io_batch_wait(&b2));
      CHECK_INT(b1.ops[0].result, SIGUSR1);
      CHECK_INT(b1.ops[1].result, SIGUSR1);
      CHECK_INT(b2.ops[0].result, SIGUSR1);
    }
    CHECK_OK(asyncrt_io_close(io1));
    CHECK_OK(asyncrt_io_close(io2));
    CHECK_OK(asyncrt_executor_free(ex));
  }
}

/* What happens to the host's handler: it does not run while asyncrt
 * catches the signal, and it is the handler again after the release. The
 * close gives back a signal the same way. */
static void test_host_handler(void) {
  size_t bk;
  for (bk = 0; bk < IO_NBACKENDS; bk++) {
    asyncrt_executor *ex = io_threads_executor();
    struct sigaction sa, now;
    asyncrt_io *io;
    io_batch b;
    int before;
    if (!ex) return;
    if (!io_open_backend(ex, io_backends[bk], NULL, &io)) {
      CHECK_OK(asyncrt_executor_free(ex));
      continue;
    }
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = host_handler;
    sa.sa_flags = SA_SIGINFO | SA_ONSTACK | SA_RESTART;
    sigemptyset(&sa.sa_mask);
    CHECK_INT(sigaction(SIGHUP, &sa, NULL), 0);
    before = tf_get(&host_handled);
    if (await_signal(ex, io, &b, SIGHUP)) {
      CHECK_INT(kill(getpid(), SIGHUP), 0);
      CHECK(io_batch_wait(&b));
      CHECK_INT(b.ops[0].result, SIGHUP);
      CHECK_INT(tf_get(&host_handled), before); /* asyncrt's, not the host's */
    }
    CHECK_OK(asyncrt_io_signal_release(io, SIGHUP));
    CHECK_INT(sigaction(SIGHUP, NULL, &now), 0);
    CHECK(now.sa_sigaction == host_handler);
    CHECK_INT(kill(getpid(), SIGHUP), 0);
    CHECK(tf_wait_at_least(&host_handled, before + 1, 5000));
    signal(SIGHUP, SIG_DFL);

    /* The close: SIGUSR1 goes back to its default action. */
    if (await_signal(ex, io, &b, SIGUSR1)) {
      CHECK_INT(sigaction(SIGUSR1, NULL, &now), 0);
      CHECK(now.sa_handler != SIG_DFL); /* Go's, while caught */
    }
    CHECK_OK(asyncrt_io_close(io));
    CHECK(io_batch_wait(&b)); /* cancelled by the close */
    CHECK(b.ops[0].status != ASYNCRT_OK);
    CHECK_INT(sigaction(SIGUSR1, NULL, &now), 0);
    CHECK(now.sa_handler == SIG_DFL);
    CHECK_OK(asyncrt_executor_free(ex));
  }
}

static void test_refused_signals(void) {
  static const int refused[] = {SIGKILL, SIGSTOP, SIGSEGV, SIGBUS, SIGFPE, SIGILL, 0, 65};
  size_t bk, i;
  for (bk = 0; bk < IO_NBACKENDS; bk++) {
    asyncrt_executor *ex = tf_executor();
    asyncrt_io *io;
    if (!ex) return;
    if (!io_open_backend(ex, io_backends[bk], NULL, &io)) {
      CHECK_OK(asyncrt_executor_free(ex));
      continue;
    }
    for (i = 0; i < sizeof refused / sizeof refused[0]; i++) {
      asyncrt_op op;
      memset(&op, 0, sizeof op);
      asyncrt_io_prep_signal(&op, refused[i]);
      CHECK_STATUS(io_run_op(ex, io, &op), ASYNCRT_EOS);
      CHECK_INT(op.result, -EINVAL);
    }
    CHECK_STATUS(asyncrt_io_signal_release(io, 0), ASYNCRT_EINVAL);
    CHECK_STATUS(asyncrt_io_signal_release(io, 65), ASYNCRT_EINVAL);
    CHECK_STATUS(asyncrt_io_signal_release(NULL, SIGUSR1), ASYNCRT_EINVAL);
    CHECK_OK(asyncrt_io_close(io));
    CHECK_STATUS(asyncrt_io_signal_release(io, SIGUSR1), ASYNCRT_EHANDLE);
    CHECK_OK(asyncrt_executor_free(ex));
  }
}

int main(void) {
  CHECK_BEGIN();
  RUN(test_await_and_pending);
  RUN(test_one_delivery_wakes_all);
  RUN(test_host_handler);
  RUN(test_refused_signals);
  return CHECK_END("io_signal");
}
