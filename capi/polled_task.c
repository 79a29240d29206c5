/* polled_task.c -- the task whose poll made a call into asyncrt, for the
 * reports of Go panics in that call (panics.go). Everything here runs on the
 * polling thread, inside the poll. */
#include <stdio.h>

#include "../runtime/dataplane/art.h"

/* The task being polled on this thread, or NULL (not in a poll, or a poll
 * that no asyncrt task makes: asyncrt_poll_with_waker, a subsystem). */
static art_task *polled_task(void) { return art_context_task(art_tls_cx); }

int art_polled_task_describe(char *buf, size_t cap) {
  art_task *t = polled_task();
  if (!t) return 0;
  unsigned long long id = (unsigned long long)art_task_id(t);
  unsigned long long ex = (unsigned long long)art_tls_cx->exec->handle;
  art_task_ext *x = art_task_ext_of(t);
  int named = 0;
  if (x) {
    art_lock_acquire(&x->lock);
    if (x->name) {
      snprintf(buf, cap, "task %llu \"%s\" of executor %#llx", id, x->name, ex);
      named = 1;
    }
    art_lock_release(&x->lock);
  }
  if (!named) snprintf(buf, cap, "task %llu of executor %#llx", id, ex);
  return 1;
}

void art_polled_task_fail(int status, const char *message) {
  if (!polled_task()) return;
  asyncrt_error_info info = {.size = sizeof info, .status = status, .message = message};
  art_context_fail_info(art_tls_cx, &info);
}
