/* art_proc.c -- child processes: spawned with posix_spawnp (the Go runtime
 * is never forked: glibc's posix_spawn is a vfork-style clone that execs at
 * once), held by a pidfd and signalled with pidfd_send_signal. A pidfd
 * names one process for good, so a kill or a wait can never reach a
 * recycled pid. The WAITPID op waits for the pidfd to turn readable and
 * reaps with waitid(P_PIDFD) (art_io_do_sync).
 *
 * Raw syscalls rather than glibc's wrappers (2.36+): the kernel calls exist
 * from Linux 5.3 on, older libcs on such kernels lack the wrappers. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "art.h"
#include "art_proc.h"

#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif
#ifndef SYS_pidfd_send_signal
#define SYS_pidfd_send_signal 424
#endif

extern char **environ;

/* Source fds 0..2 that another stdio slot overwrites first would be read
 * after the overwrite (stdout_fd = 5 and stderr_fd = 1 would give the child
 * the pipe twice). Moving such a source above 2 first keeps "fd 1" meaning
 * the parent's fd 1. Returns the fd to dup2 from (maybe a new one, closed by
 * the caller), or -1 with errno. */
static int stable_source(int fd, int target, int *moved) {
  *moved = -1;
  if (fd < 0 || fd > 2 || fd == target) return fd;
  int copy = fcntl(fd, F_DUPFD_CLOEXEC, 3);
  if (copy < 0) return -1;
  *moved = copy;
  return copy;
}

int art_process_spawn(const asyncrt_process_config *cfg, int *pid_out, int *pidfd_out) {
  static const char who[] = "asyncrt_process_spawn";
  posix_spawn_file_actions_t fa;
  posix_spawnattr_t attr;
  sigset_t none, all;
  int moved[3] = {-1, -1, -1};
  int src[3] = {cfg->stdin_fd, cfg->stdout_fd, cfg->stderr_fd};
  int rc, err = 0, i;
  pid_t pid = -1;

  if ((rc = posix_spawn_file_actions_init(&fa)) != 0) return art_fail_os(rc, "%s", who);
  if ((rc = posix_spawnattr_init(&attr)) != 0) {
    posix_spawn_file_actions_destroy(&fa);
    return art_fail_os(rc, "%s", who);
  }
  /* The child starts clean: nothing blocked (the spawning thread may be a
   * runtime thread with signals blocked), every signal at its default
   * action (not the host's SIG_IGN for SIGPIPE, say). */
  sigemptyset(&none);
  sigfillset(&all);
  sigdelset(&all, SIGKILL);
  sigdelset(&all, SIGSTOP);
  rc = posix_spawnattr_setsigmask(&attr, &none);
  if (!rc) rc = posix_spawnattr_setsigdefault(&attr, &all);
  if (!rc) rc = posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
  for (i = 0; !rc && i < 3; i++) {
    int fd = stable_source(src[i], i, &moved[i]);
    if (fd == -1 && src[i] != -1) {
      rc = errno;
      break;
    }
    /* dup2 onto itself clears close-on-exec in the child (glibc >= 2.29,
     * POSIX 2024), so an fd passed as its own slot is inherited too. */
    if (fd >= 0) rc = posix_spawn_file_actions_adddup2(&fa, fd, i);
  }
  if (!rc && cfg->cwd) rc = posix_spawn_file_actions_addchdir_np(&fa, cfg->cwd);
  if (!rc)
    rc = posix_spawnp(&pid, cfg->argv[0], &fa, &attr, (char *const *)cfg->argv,
                      cfg->envp ? (char *const *)cfg->envp : environ);
  posix_spawn_file_actions_destroy(&fa);
  posix_spawnattr_destroy(&attr);
  for (i = 0; i < 3; i++)
    if (moved[i] >= 0) close(moved[i]);
  if (rc) {
    err = rc;
    return art_fail_os(err, "%s: cannot run \"%s\"", who, cfg->argv[0]);
  }

  int pidfd = (int)syscall(SYS_pidfd_open, pid, 0); /* close-on-exec always */
  if (pidfd < 0) {
    /* No handle to await it with (a kernel before 5.3, or a seccomp filter):
     * do not leave an unowned child behind. */
    err = errno;
    kill(pid, SIGKILL);
    while (waitpid(pid, NULL, 0) < 0 && errno == EINTR) {
    }
    return art_fail_os(err, "asyncrt_process_spawn: pidfd_open");
  }
  if (pid_out) *pid_out = pid;
  *pidfd_out = pidfd;
  return ASYNCRT_OK;
}

int art_process_kill(int pidfd, int signo) {
  if (syscall(SYS_pidfd_send_signal, pidfd, signo, NULL, 0) < 0)
    return art_fail_os(errno, "asyncrt_process_kill: pidfd_send_signal");
  return ASYNCRT_OK;
}
