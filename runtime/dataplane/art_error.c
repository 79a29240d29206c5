/* art_error.c -- status names, the per-thread last error, and fork detection. */
#include <pthread.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "art.h"

static __thread char last_message[512];
static __thread int last_status;
static __thread int last_errno; /* of the last ASYNCRT_EOS failure */

static void record(int status, const char *fmt, va_list ap) {
  int n = snprintf(last_message, sizeof last_message, "%s; ", art_status_str(status));
  if (n < 0 || (size_t)n >= sizeof last_message) n = 0;
  vsnprintf(last_message + n, sizeof last_message - (size_t)n, fmt, ap);
  last_status = status;
  last_errno = 0;
}

int art_fail(int status, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  record(status, fmt, ap);
  va_end(ap);
  return status;
}

int art_fail_os(int err, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  record(ASYNCRT_EOS, fmt, ap);
  va_end(ap);
  size_t n = strlen(last_message);
  if (n < sizeof last_message - 1)
    snprintf(last_message + n, sizeof last_message - n, ": %s (errno %d)", strerror(err), err);
  last_errno = err;
  return ASYNCRT_EOS;
}

int art_last_errno(void) { return last_errno; }

const char *art_last_error(void) { return last_message; }
int art_last_status(void) { return last_status; }

const char *art_status_str(int status) {
  switch (status) {
  case ASYNCRT_OK: return "ASYNCRT_OK";
  case ASYNCRT_EINVAL: return "ASYNCRT_EINVAL: invalid argument";
  case ASYNCRT_EHANDLE: return "ASYNCRT_EHANDLE: handle is not live";
  case ASYNCRT_ESHUTDOWN: return "ASYNCRT_ESHUTDOWN: executor is shut down";
  case ASYNCRT_ENOMEM: return "ASYNCRT_ENOMEM: out of memory";
  case ASYNCRT_ELIMIT: return "ASYNCRT_ELIMIT: memory limit reached";
  case ASYNCRT_ECANCELLED: return "ASYNCRT_ECANCELLED: task cancelled";
  case ASYNCRT_EREENTRANT: return "ASYNCRT_EREENTRANT: not allowed inside a poll";
  case ASYNCRT_EBUSY: return "ASYNCRT_EBUSY: in use";
  case ASYNCRT_ETIMEDOUT: return "ASYNCRT_ETIMEDOUT: timed out";
  case ASYNCRT_EFORKED: return "ASYNCRT_EFORKED: process forked";
  case ASYNCRT_EVERSION: return "ASYNCRT_EVERSION: version mismatch";
  case ASYNCRT_EINTERNAL: return "ASYNCRT_EINTERNAL: internal error";
  case ASYNCRT_EFAILED: return "ASYNCRT_EFAILED: future failed";
  case ASYNCRT_EAGAIN: return "ASYNCRT_EAGAIN: not ready";
  case ASYNCRT_ENOTSUP: return "ASYNCRT_ENOTSUP: not supported by this executor";
  case ASYNCRT_ECLOSED: return "ASYNCRT_ECLOSED: the other side of the channel is gone";
  case ASYNCRT_ELAGGED: return "ASYNCRT_ELAGGED: the receiver fell behind; values were skipped";
  case ASYNCRT_EOS: return "ASYNCRT_EOS: an operating-system call failed";
  case ASYNCRT_ESCOPE: return "ASYNCRT_ESCOPE: a scope was misused (closed, or its owner returned with live children)";
  default: return "unknown asyncrt status";
  }
}

_Atomic int art_forked;
char art_copy_refusal[512];

int art_fail_forked(void) {
  if (atomic_load(&art_forked) == ART_REFUSE_COPY) return art_fail(ASYNCRT_EVERSION, "%s", art_copy_refusal);
  return art_fail(ASYNCRT_EFORKED,
                  "this process forked after libasyncrt was loaded; asyncrt cannot run in the child");
}

static void mark_forked_child(void) { atomic_store(&art_forked, ART_REFUSE_FORKED); }

__attribute__((constructor)) static void install_fork_guard(void) {
  pthread_atfork(NULL, NULL, mark_forked_child);
}

void art_lock_slow(art_lock *l) {
  for (unsigned spins = 0;; spins++) {
    if (!atomic_load_explicit(&l->held, memory_order_relaxed) &&
        !atomic_exchange_explicit(&l->held, 1, memory_order_acquire))
      return;
    if (spins < 1024) __builtin_ia32_pause(); /* holders keep it for a few dozen ns */
    else sched_yield();
  }
}
