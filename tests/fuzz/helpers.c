/* helpers.c -- two threads asyncrt never saw, which run the wake jobs the
 * input queues (signal a waiting program, wake or drop a waker clone) while
 * the main thread goes on driving, spawning and cancelling. They live for
 * the whole process; each run ends by draining them, with a bound. */
#include <pthread.h>
#include <sched.h>
#include <time.h>

#include "fuzz.h"

#define RING 64

typedef struct job {
  int kind, prog;
  asyncrt_waker w;
} job;

typedef struct helper {
  pthread_mutex_t mu;
  pthread_cond_t cv;
  job ring[RING];
  unsigned head, tail; /* under mu */
  int busy;            /* a job is running */
} helper;

static helper H[2] = {{PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER},
                      {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER}};

static void run_job(const job *j) {
  asyncrt_waker w = j->w;
  switch (j->kind) {
  case JOB_SIGNAL: prog_signal(j->prog); break;
  case JOB_WAKE: asyncrt_waker_wake(&w); break;
  case JOB_WAKE_BY_REF_DROP:
    asyncrt_waker_wake_by_ref(&w);
    asyncrt_waker_drop(&w);
    break;
  default: asyncrt_waker_drop(&w); break;
  }
}

static void *helper_main(void *arg) {
  helper *h = arg;
  pthread_mutex_lock(&h->mu);
  for (;;) {
    while (h->head == h->tail) pthread_cond_wait(&h->cv, &h->mu);
    job j = h->ring[h->head % RING];
    h->head++;
    h->busy = 1;
    pthread_mutex_unlock(&h->mu);
    run_job(&j);
    pthread_mutex_lock(&h->mu);
    h->busy = 0;
  }
  return NULL;
}

void helpers_start(void) {
  static int started;
  if (started) return;
  started = 1;
  for (int i = 0; i < 2; i++) {
    pthread_t t;
    if (pthread_create(&t, NULL, helper_main, &H[i])) fz_fail("could not start a helper thread");
    pthread_detach(t);
  }
}

void helpers_post(int which, int kind, int prog, asyncrt_waker w) {
  helper *h = &H[which & 1];
  job j = {kind, prog, w};
  pthread_mutex_lock(&h->mu);
  if (h->tail - h->head == RING) {
    pthread_mutex_unlock(&h->mu);
    run_job(&j);
    return;
  }
  h->ring[h->tail % RING] = j;
  h->tail++;
  pthread_cond_signal(&h->cv);
  pthread_mutex_unlock(&h->mu);
}

void helpers_drain(void) {
  struct timespec t0, t;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  for (int i = 0; i < 2; i++) {
    for (;;) {
      pthread_mutex_lock(&H[i].mu);
      int idle = H[i].head == H[i].tail && !H[i].busy;
      pthread_mutex_unlock(&H[i].mu);
      if (idle) break;
      clock_gettime(CLOCK_MONOTONIC, &t);
      if (t.tv_sec - t0.tv_sec > 10) fz_fail("helper thread %d did not finish its wake jobs in 10 s (hang)", i);
      sched_yield();
    }
  }
}
