/* api_proc.c -- the public functions for child processes and name lookups
 * (see "Processes and signals" and "Blocking calls and name lookups on the
 * pool" in asyncrt.h): argument checks here, the work in
 * runtime/dataplane/art_proc.c and art_io_resolve.c. No Go involved. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "../runtime/dataplane/art.h"
#include "../runtime/dataplane/art_io_resolve.h"
#include "../runtime/dataplane/art_proc.h"

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
  static const char who[] = "asyncrt_process_spawn";
  REFUSE_IN_CHILD();
  if (!cfg || !pidfd) return art_fail(ASYNCRT_EINVAL, "%s: %s is NULL", who, cfg ? "pidfd" : "cfg");
  /* Every field is needed: the struct has had them all since it exists. */
  if (cfg->size < sizeof *cfg)
    return art_fail(ASYNCRT_EINVAL, "%s: cfg->size %zu is too small (asyncrt_process_config_init)", who,
                    cfg->size);
  if (!cfg->argv || !cfg->argv[0] || !cfg->argv[0][0])
    return art_fail(ASYNCRT_EINVAL, "%s: argv has no program (argv[0])", who);
  if (cfg->stdin_fd < -1 || cfg->stdout_fd < -1 || cfg->stderr_fd < -1)
    return art_fail(ASYNCRT_EINVAL, "%s: a stdio fd is below -1", who);
  *pidfd = -1;
  return art_process_spawn(cfg, pid, pidfd);
}

int asyncrt_process_kill(int pidfd, int signo) {
  REFUSE_IN_CHILD();
  if (pidfd < 0 || signo < 0 || signo > 64)
    return art_fail(ASYNCRT_EINVAL, "asyncrt_process_kill: bad %s %d", pidfd < 0 ? "pidfd" : "signal",
                    pidfd < 0 ? pidfd : signo);
  return art_process_kill(pidfd, signo);
}

void asyncrt_io_prep_getaddrinfo(asyncrt_op *op, asyncrt_io_addrinfo *req) {
  if (!op) return;
  asyncrt_io_prep_blocking(op, art_io_resolve_job, req);
}
