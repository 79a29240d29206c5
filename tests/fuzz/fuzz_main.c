/* fuzz_main.c -- libFuzzer's entry point over the public API: one input,
 * one run of operations against the model, then the teardown's checks.
 * A broken invariant prints the run's last trace lines and aborts, which
 * libFuzzer reports as a crash and saves as an input to replay. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "fuzz.h"

#define TRACE_LINES 48
static char trace_buf[TRACE_LINES][112];
static unsigned trace_n;

static int trace_live = -1; /* ASYNCRT_FUZZ_TRACE=1: print each line as it comes */

void fz_trace(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  char *line = trace_buf[trace_n++ % TRACE_LINES];
  vsnprintf(line, sizeof trace_buf[0], fmt, ap);
  va_end(ap);
  if (trace_live < 0) trace_live = getenv("ASYNCRT_FUZZ_TRACE") != NULL;
  if (trace_live) fprintf(stderr, "trace: %s\n", line);
}

void fz_fail(const char *fmt, ...) {
  fprintf(stderr, "\n==asyncrt-fuzz== the last operations of this run:\n");
  unsigned first = trace_n > TRACE_LINES ? trace_n - TRACE_LINES : 0;
  for (unsigned i = first; i < trace_n; i++) fprintf(stderr, "  %s\n", trace_buf[i % TRACE_LINES]);
  fprintf(stderr, "==asyncrt-fuzz== the programs (kind exec task given polls cleanups drops finished failure):\n");
  for (int i = 0; i < fz_nprogs; i++) {
    const prog *p = &fz_progs[i];
    fprintf(stderr, "  prog %d: %d %d %d %d %d %d %d %d %d\n", i, p->kind, p->exec, p->task, atomic_load(&p->given),
            atomic_load(&p->polls), atomic_load(&p->cleanups), atomic_load(&p->drops), atomic_load(&p->finished),
            atomic_load(&p->failure));
  }
  fprintf(stderr, "==asyncrt-fuzz== FINDING: ");
  va_list ap;
  va_start(ap, fmt);
  vfprintf(stderr, fmt, ap);
  va_end(ap);
  fprintf(stderr, "\n");
  abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  helpers_start();
  world_reset();
  trace_n = 0;
  fz_input in = {data, data + size};
  ops_run(&in);
  world_teardown();
  return 0;
}
