/* api_io_signal.c -- asyncrt_io_signal_release, and the hook through which
 * the data plane's SIGNAL ops (runtime/dataplane/art_io_signal.c) ask the
 * control plane to catch a signal (exports_io_signal.go). */
#include <stddef.h>
#include <stdint.h>

#include "../runtime/dataplane/art.h"
#include "../runtime/dataplane/art_io_signal.h"
#include "_cgo_export.h"

static int watch(int signo) { return art_go_io_signal_watch(signo); }

/* Only a pointer store at load: nothing enters Go before a first wait. */
__attribute__((constructor)) static void install_signal_hook(void) { art_io_signal_watch_hook = watch; }

int asyncrt_io_signal_release(asyncrt_io *io, int signo) {
  static const char who[] = "asyncrt_io_signal_release";
  art_io *d;
  if (art_is_forked()) return art_fail_forked();
  if (!io) return art_fail(ASYNCRT_EINVAL, "%s: io is NULL", who);
  if (signo < 1 || signo >= ART_IO_NSIG)
    return art_fail(ASYNCRT_EINVAL, "%s: signal %d is not in 1..64", who, signo);
  int rc = art_handle_resolve(io, ART_H_IO, "IO driver", (void **)&d);
  if (rc) return rc;
  if (art_io_signal_release(d, signo)) art_go_io_signal_unwatch(signo);
  return ASYNCRT_OK;
}
