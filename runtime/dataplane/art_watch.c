/* art_watch.c -- the stall watchdog: finds polls that have run longer than a
 * threshold and reports them (see "Stall detection" in asyncrt.h).
 *
 * The run loop publishes, per worker, which poll it is in (art_watch_enter:
 * watch_seq, then watch_task and watch_fn), and whether it is in a run at all
 * (`running`). A check samples those words; a worker found in a run with the
 * same sequence number as at an earlier sample at least `threshold` ago (on
 * the executor's clock) is stuck in one poll. What a check needs beyond the
 * words it reads without a lock -- the task's id and name -- it reads only
 * for a task it finds on a live list, under that list's lock (the header of
 * a finished task may be freed, even unmapped, at any moment).
 *
 * Checks come from the control plane's watchdog goroutine every period, and
 * from asyncrt_executor_check_stalls; the watch's mutex makes them one at a
 * time, and reports are made under it, so a report never races with a
 * change of the handler that finalizes its user data.
 */
#include <dlfcn.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "art.h"

/* What the last check saw of one worker. */
typedef struct watch_worker {
  uint64_t seq;   /* its watch_seq */
  uint64_t since; /* the clock when a check first saw that seq */
  int running;    /* it was in a run */
  int reported;   /* that poll was reported */
} watch_worker;

struct art_watch {
  pthread_mutex_t mutex; /* checks, reports and the handler */
  uint64_t threshold;    /* 0: off */
  asyncrt_stall_fn report;
  void *user;
  void (*finalize)(void *);
  unsigned nworkers;
  watch_worker workers[];
};

/* The watches whose reports run on this thread, innermost first (a report
 * may check another executor, whose report checks a third...): their
 * executors may not be freed, watched or checked from inside. */
typedef struct report_frame {
  const art_watch *watch;
  const struct report_frame *outer;
} report_frame;
static __thread const report_frame *reporting;

int art_watch_reporting(art_exec *e) {
  const art_watch *w = atomic_load_explicit(&e->watch, memory_order_acquire);
  for (const report_frame *f = reporting; w && f; f = f->outer)
    if (f->watch == w) return 1;
  return 0;
}

static art_watch *watch_get(art_exec *e) {
  art_watch *w = atomic_load_explicit(&e->watch, memory_order_acquire);
  if (w) return w;
  unsigned n = art_exec_workers(e);
  art_watch *made = calloc(1, sizeof *made + n * sizeof made->workers[0]);
  if (!made) return NULL;
  pthread_mutex_init(&made->mutex, NULL);
  made->nworkers = n;
  if (atomic_compare_exchange_strong(&e->watch, &w, made)) return made;
  pthread_mutex_destroy(&made->mutex); /* a racing call made it first */
  free(made);
  return w;
}

int art_watch_set(art_exec *e, uint64_t threshold, asyncrt_stall_fn report, void *user,
                  void (*finalize)(void *)) {
  art_watch *w = watch_get(e);
  if (!w) {
    if (finalize) finalize(user);
    return art_fail(ASYNCRT_ENOMEM, "no memory for the stall watchdog");
  }
  pthread_mutex_lock(&w->mutex);
  void (*old_finalize)(void *) = w->finalize;
  void *old_user = w->user;
  w->threshold = threshold;
  w->report = report;
  w->user = user;
  w->finalize = finalize;
  memset(w->workers, 0, w->nworkers * sizeof w->workers[0]); /* samples start again */
  pthread_mutex_unlock(&w->mutex);
  if (old_finalize) old_finalize(old_user);
  return ASYNCRT_OK;
}

/* ---- reporting ------------------------------------------------------------- */

typedef struct stall {
  asyncrt_stall_info info;
  char name[ART_NAME_MAX];
} stall;

static void log_stall(const asyncrt_stall_info *s) {
  char line[512];
  int n = snprintf(line, sizeof line, "asyncrt: stall: executor %#" PRIx64 " worker %u: ",
                   (uint64_t)(uintptr_t)s->executor, s->worker);
  if (s->task_id)
    n += snprintf(line + n, sizeof line - (size_t)n, "task %" PRIu64 "%s%s%s has been in its poll", s->task_id,
                  s->task_name ? " \"" : "", s->task_name ? s->task_name : "", s->task_name ? "\"" : "");
  else if (s->poll)
    n += snprintf(line + n, sizeof line - (size_t)n, "a task that has since ended was in its poll");
  else
    n += snprintf(line + n, sizeof line - (size_t)n, "has been in no task's poll (timers, subsystems)");
  n += snprintf(line + n, sizeof line - (size_t)n, " for %.1f ms", (double)s->duration_ns / 1e6);
  if (s->poll)
    n += snprintf(line + n, sizeof line - (size_t)n, "; poll function %s (%s)",
                  s->poll_symbol ? s->poll_symbol : "?", s->poll_object ? s->poll_object : "?");
  if (n > (int)sizeof line - 2) n = (int)sizeof line - 2;
  line[n++] = '\n';
  /* One write: lines from several threads do not mix. */
  if (write(STDERR_FILENO, line, (size_t)n) < 0) {
    /* nowhere left to say it */
  }
}

/* Fills in what a report says about worker i, stuck in the poll it
 * published as (task, fn). */
static void describe(art_exec *e, unsigned i, const art_task *task, int (*fn)(void *, asyncrt_context *, void *),
                     uint64_t duration, stall *out) {
  memset(out, 0, sizeof *out);
  out->info.size = sizeof out->info;
  out->info.executor = (asyncrt_executor *)(uintptr_t)e->handle;
  out->info.worker = i;
  out->info.duration_ns = duration;
  if (!task) return;
  /* A task that ended meanwhile is not found, and stays unnamed. */
  if (art_exec_find_task(e, task, &out->info.task_id, out->name, sizeof out->name) && out->name[0])
    out->info.task_name = out->name;
  out->info.poll = fn;
  Dl_info dl;
  if (fn && dladdr((void *)(uintptr_t)fn, &dl)) { /* a code address: asking never faults */
    out->info.poll_symbol = dl.dli_sname;
    out->info.poll_object = dl.dli_fname;
  }
}

unsigned art_watch_check(art_exec *e) {
  art_watch *w = atomic_load_explicit(&e->watch, memory_order_acquire);
  if (!w) return 0;
  pthread_mutex_lock(&w->mutex);
  unsigned reports = 0;
  if (!w->threshold) goto out;
  uint64_t now = art_clock_now(e->clock);
  for (unsigned i = 0; i < w->nworkers; i++) {
    art_exec *c = art_exec_worker(e, i);
    watch_worker *ww = &w->workers[i];
    /* `running` first: a run publishes its new sequence number before it
     * sets it (art_exec_run_ex), so a run seen here is seen with it. */
    int running = atomic_load_explicit(&c->running, memory_order_acquire);
    uint64_t seq = atomic_load_explicit(&c->watch_seq, memory_order_acquire);
    if (!running) {
      ww->running = 0;
      continue;
    }
    if (!ww->running || seq != ww->seq) { /* a poll not seen before: its time starts now */
      *ww = (watch_worker){.seq = seq, .since = now, .running = 1};
      continue;
    }
    if (ww->reported || now - ww->since < w->threshold) continue;
    /* Acquire, pairing with art_watch_enter's release stores: task or fn
     * of a later poll would come with its sequence number, so the same
     * number again means they are this poll's. */
    const art_task *task = atomic_load_explicit(&c->watch_task, memory_order_acquire);
    int (*fn)(void *, asyncrt_context *, void *) = atomic_load_explicit(&c->watch_fn, memory_order_acquire);
    if (atomic_load_explicit(&c->watch_seq, memory_order_relaxed) != seq) continue; /* it just moved on */
    ww->reported = 1;
    atomic_store_explicit(&c->stalls, atomic_load_explicit(&c->stalls, memory_order_relaxed) + 1,
                          memory_order_relaxed); /* under the mutex: checks are its only writers */
    stall s;
    describe(e, i, task, fn, now - ww->since, &s);
    reports++;
    report_frame frame = {w, reporting};
    reporting = &frame;
    if (w->report) w->report(&s.info, w->user);
    else log_stall(&s.info);
    reporting = frame.outer;
  }
out:
  pthread_mutex_unlock(&w->mutex);
  return reports;
}

void art_watch_free(art_exec *e) {
  art_watch *w = atomic_exchange_explicit(&e->watch, NULL, memory_order_acq_rel);
  if (!w) return;
  if (w->finalize) w->finalize(w->user);
  pthread_mutex_destroy(&w->mutex);
  free(w);
}
