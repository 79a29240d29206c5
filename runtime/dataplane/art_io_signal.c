/* art_io_signal.c -- ASYNCRT_IO_OP_SIGNAL: waiting for a signal.
 *
 * The Go control plane catches the signals (os/signal.Notify: its handler,
 * with SA_ONSTACK, records the signal and one goroutine receives it) and
 * calls art_io_signal_deliver, which completes every op waiting for that
 * signal, on every driver watching it, with asyncrt_op_complete's thread-
 * safe path. A driver with nobody waiting remembers the delivery (one, as
 * the kernel merges pending signals too), so the next wait completes at
 * once.
 *
 * State: a watch per (driver, signal), from the driver's first wait for it
 * until asyncrt_io_signal_release or the driver's close, in one table under
 * one mutex (signals are rare; a wait or a delivery walks a short list).
 * The first wait of a driver for a signal calls the control plane through
 * art_io_signal_watch_hook, synchronously, so the handler is in place
 * before asyncrt_io_submit returns: a signal raised right after the submit
 * is caught, never left to its default action (which for most is to end
 * the process). That is one call into Go per driver and signal, not per op.
 *
 * A waiting op is linked through subsystem_data[0] into its watch's list.
 * Completions happen outside the mutex: a completion takes the registration
 * lock, and a cancel holds that lock while it takes the mutex. */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>

#include "art.h"
#include "art_io.h"
#include "art_io_signal.h"

typedef struct sig_watch {
  struct sig_watch *next;
  art_io *io;
  int pending;        /* a delivery nobody was waiting for */
  asyncrt_op *waiters;
} sig_watch;

static pthread_mutex_t sig_mu = PTHREAD_MUTEX_INITIALIZER;
static sig_watch *watches[ART_IO_NSIG];

int (*art_io_signal_watch_hook)(int signo);

int art_io_signal_valid(int signo) {
  if (signo < 1 || signo >= ART_IO_NSIG) return 0;
  switch (signo) {
  case SIGKILL: case SIGSTOP:                          /* cannot be caught */
  case SIGSEGV: case SIGBUS: case SIGFPE: case SIGILL: /* the runtime's crash reports */
  case SIGTRAP:
    return 0;
  default:
    /* glibc's own (SIGCANCEL, SIGSETXID) sit below SIGRTMIN. */
    return signo < 32 || signo >= SIGRTMIN;
  }
}

static sig_watch *find(art_io *io, int signo) {
  for (sig_watch *w = watches[signo]; w; w = w->next)
    if (w->io == io) return w;
  return NULL;
}

static void complete_list(asyncrt_op *op, int status, int64_t result) {
  while (op) {
    asyncrt_op *next = op->subsystem_data[0];
    op->subsystem_data[0] = NULL;
    art_op_complete(op, status, result);
    op = next;
  }
}

void art_io_signal_submit(art_io *io, asyncrt_op *op) {
  int signo = art_io_int(op->args[0]);
  if (!art_io_signal_valid(signo)) {
    art_op_complete(op, ASYNCRT_EOS, -EINVAL);
    return;
  }
  pthread_mutex_lock(&sig_mu);
  /* A close sets `closing` before it ends the watches under sig_mu: a
   * submit racing with it either sees the flag here or has its watch
   * ended by the close. */
  if (atomic_load(&io->closing)) {
    pthread_mutex_unlock(&sig_mu);
    art_op_complete(op, ASYNCRT_ECANCELLED, -ECANCELED);
    return;
  }
  sig_watch *w = find(io, signo);
  if (!w) {
    int rc = (w = calloc(1, sizeof *w)) ? 0 : -ENOMEM;
    if (!rc) rc = art_io_signal_watch_hook ? art_io_signal_watch_hook(signo) : -ENOTSUP;
    if (rc) {
      pthread_mutex_unlock(&sig_mu);
      free(w);
      art_op_complete(op, rc == -ENOTSUP ? ASYNCRT_ENOTSUP : ASYNCRT_EOS, rc);
      return;
    }
    w->io = io;
    w->next = watches[signo];
    watches[signo] = w;
  }
  if (w->pending) {
    w->pending = 0;
    pthread_mutex_unlock(&sig_mu);
    art_op_complete(op, ASYNCRT_OK, signo);
    return;
  }
  op->subsystem_data[0] = w->waiters;
  w->waiters = op;
  pthread_mutex_unlock(&sig_mu);
}

int art_io_signal_cancel(art_io *io, asyncrt_op *op) {
  int signo = art_io_int(op->args[0]), found = 0;
  if (signo < 1 || signo >= ART_IO_NSIG) return 0;
  pthread_mutex_lock(&sig_mu);
  sig_watch *w = find(io, signo);
  for (asyncrt_op **pp = w ? &w->waiters : NULL; pp && *pp; pp = (asyncrt_op **)&(*pp)->subsystem_data[0]) {
    if (*pp == op) {
      *pp = op->subsystem_data[0];
      op->subsystem_data[0] = NULL;
      found = 1;
      break;
    }
  }
  pthread_mutex_unlock(&sig_mu);
  if (found) art_op_complete(op, ASYNCRT_ECANCELLED, -ECANCELED);
  return found;
}

void art_io_signal_deliver(int signo) {
  asyncrt_op *done = NULL;
  if (signo < 1 || signo >= ART_IO_NSIG) return;
  pthread_mutex_lock(&sig_mu);
  for (sig_watch *w = watches[signo]; w; w = w->next) {
    if (!w->waiters) {
      w->pending = 1;
      continue;
    }
    /* Splice this watch's waiters in front of `done`. */
    asyncrt_op *last = w->waiters;
    while (last->subsystem_data[0]) last = last->subsystem_data[0];
    last->subsystem_data[0] = done;
    done = w->waiters;
    w->waiters = NULL;
  }
  pthread_mutex_unlock(&sig_mu);
  complete_list(done, ASYNCRT_OK, signo);
}

int art_io_signal_release(art_io *io, int signo) {
  asyncrt_op *waiters = NULL;
  int had = 0;
  if (signo < 1 || signo >= ART_IO_NSIG) return 0;
  pthread_mutex_lock(&sig_mu);
  for (sig_watch **pp = &watches[signo]; *pp; pp = &(*pp)->next) {
    if ((*pp)->io == io) {
      sig_watch *w = *pp;
      *pp = w->next;
      waiters = w->waiters;
      free(w);
      had = 1;
      break;
    }
  }
  pthread_mutex_unlock(&sig_mu);
  complete_list(waiters, ASYNCRT_ECANCELLED, -ECANCELED);
  return had;
}

uint64_t art_io_signal_close(art_io *io) {
  uint64_t released = 0;
  for (int s = 1; s < ART_IO_NSIG; s++)
    if (art_io_signal_release(io, s)) released |= 1ull << (s - 1);
  return released;
}
