/*
 * consumer.c -- a C program built out of the tree against an installed
 * asyncrt (tests/install/run.sh builds it with pkg-config and with CMake's
 * find_package). It includes both installed headers, checks that the header
 * and the loaded library are the same version, runs a coroutine future on an
 * executor, and prints the file the library was loaded from, for run.sh to
 * check that it is the installed copy.
 */
#define _GNU_SOURCE /* dladdr */
#include <dlfcn.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "asyncrt.h"
#include "asyncrt_coro.h"

/* Lets the executor run twice (two pauses), then returns 42. */
typedef struct answer {
  arc_state co;
  int pauses;
} answer;

static int answer_poll(void *self, asyncrt_context *cx, void *out) {
  answer *a = self;
  ARC_BEGIN(a->co);
  for (a->pauses = 0; a->pauses < 2; a->pauses++) {
    ARC_PAUSE(a->co, cx);
  }
  ARC_RETURN(a->co, *(uint64_t *)out = 42);
  ARC_END(a->co);
}

static const asyncrt_future_vtable answer_vtable = {sizeof(asyncrt_future_vtable), sizeof(uint64_t),
                                                    answer_poll, NULL, NULL};

static int fail(const char *what, int status) {
  fprintf(stderr, "consumer: %s failed: %s (%s)\n", what, asyncrt_status_str(status), asyncrt_last_error());
  return 1;
}

int main(void) {
  answer state = {ARC_STATE_INIT, 0};
  asyncrt_future fut = {&state, &answer_vtable};
  asyncrt_executor *ex = NULL;
  uint64_t result = 0;
  Dl_info where;
  int rc;

  if ((rc = asyncrt_check_version(ASYNCRT_VERSION_HEX)) != ASYNCRT_OK) return fail("asyncrt_check_version", rc);
  if (strcmp(asyncrt_version_string(), ASYNCRT_VERSION_STRING) != 0) {
    fprintf(stderr, "consumer: header %s, library %s\n", ASYNCRT_VERSION_STRING, asyncrt_version_string());
    return 1;
  }
  if (!dladdr((void *)(uintptr_t)&asyncrt_version, &where) || !where.dli_fname) {
    fprintf(stderr, "consumer: dladdr cannot place asyncrt_version\n");
    return 1;
  }
  printf("consumer: libasyncrt loaded from %s\n", where.dli_fname);

  if ((rc = asyncrt_executor_new(NULL, &ex)) != ASYNCRT_OK) return fail("asyncrt_executor_new", rc);
  rc = asyncrt_block_on(ex, &fut, &result, 10LL * 1000 * 1000 * 1000);
  asyncrt_executor_free(ex);
  if (rc != ASYNCRT_OK) return fail("asyncrt_block_on", rc);
  if (result != 42 || state.pauses != 2) {
    fprintf(stderr, "consumer: got %llu after %d pauses, want 42 after 2\n", (unsigned long long)result,
            state.pauses);
    return 1;
  }
  printf("consumer: success (asyncrt %s)\n", asyncrt_version_string());
  return 0;
}
