/*
 * crash_null.c [worker] -- a future whose poll dereferences NULL. Run by
 * crash_test.sh, which expects the process to die and its stderr to name
 * crashing_poll_function (the header promises a stack trace naming the C
 * functions of a crash inside a poll). Built with -g -O0 so the function
 * keeps its frame and its name.
 *
 * Without an argument the poll runs on the calling thread (block_on of a
 * local executor: a thread the C program made, which entered Go). With
 * "worker" it runs on a worker of a thread-per-core executor: a thread the
 * Go runtime made, inside the worker's one long cgo call.
 */
#include <stdio.h>
#include <string.h>

#include "asyncrt.h"

__attribute__((noinline)) int crashing_poll_function(void *self, asyncrt_context *cx, void *out) {
  volatile int *nowhere = self; /* NULL */
  (void)cx;
  (void)out;
  return *nowhere;
}

static const asyncrt_future_vtable crashing_vtable = {sizeof(asyncrt_future_vtable), 0,
                                                      crashing_poll_function, NULL, NULL};

int main(int argc, char **argv) {
  asyncrt_executor_config cfg;
  asyncrt_executor *ex = NULL;
  asyncrt_future f;
  int rc;
  asyncrt_executor_config_init(&cfg);
  if (argc > 1 && strcmp(argv[1], "worker") == 0) {
    cfg.kind = ASYNCRT_EXECUTOR_THREADS;
    cfg.workers = 1;
  }
  if (asyncrt_executor_new(&cfg, &ex) != ASYNCRT_OK) {
    fprintf(stderr, "crash_null: asyncrt_executor_new failed: %s\n", asyncrt_last_error());
    return 3;
  }
  f.self = NULL;
  f.vtable = &crashing_vtable;
  rc = asyncrt_block_on(ex, &f, NULL, 10LL * 1000 * 1000 * 1000);
  /* not reached if the crash ends the process, as it must */
  printf("crash_null: block_on returned %s; the process survived a NULL dereference\n",
         asyncrt_status_str(rc));
  return 4;
}
