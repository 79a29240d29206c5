/* api_process_pending.c -- the process and signal functions of "IO" in
 * asyncrt.h that helper C's branch (i8-pool) implements: until it is
 * merged, asyncrt_process_spawn and asyncrt_io_signal_release refuse with
 * ASYNCRT_ENOTSUP (they are declared and exported so that the header, the
 * version script and the library agree). i8-pool replaces this file.
 */
#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "../runtime/dataplane/art.h"

#define REFUSE_IN_CHILD()                                                                          \
  do {                                                                                             \
    if (art_is_forked()) return art_fail_forked();                                                 \
  } while (0)

void asyncrt_process_config_init_size(asyncrt_process_config *cfg, size_t size) {
  if (!cfg || size < sizeof(size_t)) return;
  asyncrt_process_config d = {.size = sizeof d, .stdin_fd = -1, .stdout_fd = -1, .stderr_fd = -1};
  memcpy(cfg, &d, size < sizeof d ? size : sizeof d);
  cfg->size = size < sizeof d ? size : sizeof d;
}

int asyncrt_process_spawn(const asyncrt_process_config *cfg, int *pid, int *pidfd) {
  REFUSE_IN_CHILD();
  (void)cfg;
  (void)pid;
  (void)pidfd;
  return art_fail(ASYNCRT_ENOTSUP, "asyncrt_process_spawn: not in this build yet (i8-pool)");
}

int asyncrt_process_kill(int pidfd, int signo) {
  REFUSE_IN_CHILD();
  if (pidfd < 0 || signo < 0 || signo >= 65)
    return art_fail(ASYNCRT_EINVAL, "asyncrt_process_kill: pidfd %d or signal %d is invalid", pidfd, signo);
  if (syscall(SYS_pidfd_send_signal, pidfd, signo, NULL, 0) < 0)
    return art_fail_os(errno, "asyncrt_process_kill: pidfd_send_signal");
  return ASYNCRT_OK;
}

int asyncrt_io_signal_release(asyncrt_io *io, int signo) {
  REFUSE_IN_CHILD();
  (void)io;
  (void)signo;
  return art_fail(ASYNCRT_ENOTSUP, "asyncrt_io_signal_release: not in this build yet (i8-pool)");
}
