#ifndef TESTFUTURES_H
#define TESTFUTURES_H
#include "../art.h"

/* A future that yields `yields` times, then fails with `fail` if nonzero,
 * waits for tf_probe_release if `wait`, and returns `output` (8 bytes). */
typedef struct tf_probe {
  asyncrt_future future;
  _Atomic int polls, drops, released, has_waker;
  asyncrt_waker waker;
  int yields_left, wait, fail;
  uint64_t output;
} tf_probe;

tf_probe *tf_probe_new(int yields, int wait, int fail, uint64_t output);
void tf_probe_release(tf_probe *p);
void tf_probe_free(tf_probe *p);
static inline int tf_probe_polls(tf_probe *p) { return atomic_load(&p->polls); }
static inline int tf_probe_drops(tf_probe *p) { return atomic_load(&p->drops); }
#endif
