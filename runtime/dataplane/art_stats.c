/* art_stats.c -- the counters of a worker, an executor and the timers, as
 * the public stats structs (see "Metrics" in asyncrt.h).
 *
 * Nothing here stops a worker. Run-loop counters are words only their
 * driver writes (art_count), read with relaxed loads; the task counts are
 * read together under the core's lock, which is where they change: a task
 * is counted when it is spawned and again, by its final status, when it
 * leaves its home's live list.
 */
#include "art.h"

static uint64_t load(_Atomic uint64_t *c) { return atomic_load_explicit(c, memory_order_relaxed); }

void art_core_stats(art_exec *e, asyncrt_worker_stats *out) {
  *out = (asyncrt_worker_stats){.size = sizeof *out};
  art_lock_acquire(&e->lock);
  uint64_t ended = e->spawned - e->live_count;
  /* Spawn requests are tasks without a header yet (art_group.c). */
  uint64_t requests = atomic_load_explicit(&e->req_pushed, memory_order_acquire) - e->req_done;
  out->tasks_spawned = e->spawned + requests;
  out->tasks_live = e->live_count + requests;
  out->tasks_failed = e->tasks_failed;
  out->tasks_cancelled = e->tasks_cancelled;
  out->tasks_completed = ended - e->tasks_failed - e->tasks_cancelled;
  out->memory_in_use = e->mem.in_use;
  art_lock_release(&e->lock);
  out->polls = load(&e->polls);
  out->wakes = load(&e->wakes);
  out->steals = load(&e->steals);
  out->parks = load(&e->parks);
  out->parked_ns = load(&e->parked_ns);
  out->ticks = load(&e->ticks);
  out->wakes_local = load(&e->wakes_local);
  out->budget_yields = load(&e->budget_yields);
  out->timers_armed = load(&e->timers_armed);
  out->timers_fired = load(&e->timer_fired);
  out->ops_in_flight = load(&e->subs_waiters);
  out->stalls = load(&e->stalls);
}

unsigned art_exec_workers(const art_exec *e) { return e->group ? e->group->nworkers : 1; }

art_exec *art_exec_worker(art_exec *e, unsigned i) { return e->group ? e->group->workers[i] : e; }

void art_executor_stats(art_exec *e, asyncrt_executor_stats *out) {
  asyncrt_executor_stats sum = {.size = sizeof sum};
  unsigned n = art_exec_workers(e);
  for (unsigned i = 0; i < n; i++) {
    asyncrt_worker_stats w;
    art_core_stats(art_exec_worker(e, i), &w);
    sum.tasks_spawned += w.tasks_spawned;
    sum.tasks_live += w.tasks_live;
    sum.tasks_completed += w.tasks_completed;
    sum.tasks_failed += w.tasks_failed;
    sum.tasks_cancelled += w.tasks_cancelled;
    sum.polls += w.polls;
    sum.memory_in_use += w.memory_in_use;
    sum.wakes_local += w.wakes_local;
    sum.wakes_remote += w.wakes;
    sum.steals += w.steals;
    sum.parks += w.parks;
    sum.parked_ns += w.parked_ns;
    sum.ticks += w.ticks;
    sum.budget_yields += w.budget_yields;
    sum.timers_armed += w.timers_armed;
    sum.timers_fired += w.timers_fired;
    sum.ops_in_flight += w.ops_in_flight;
    sum.stalls += w.stalls;
  }
  /* The cap of a group is the executor's, over all its workers. */
  sum.memory_limit = e->group ? e->group->mem_limit : e->mem.limit;
  sum.workers = n;
  *out = sum;
}

void art_timer_stats(art_exec *e, asyncrt_subsystem_stats *out) {
  asyncrt_subsystem_stats sum = {.size = sizeof sum};
  unsigned n = art_exec_workers(e);
  for (unsigned i = 0; i < n; i++) {
    art_exec *c = art_exec_worker(e, i);
    sum.polls += load(&c->timer_polls);
    sum.completions += load(&c->timer_fired);
    sum.empty_polls += load(&c->timer_empty);
    sum.waiters += load(&c->timers_armed);
  }
  sum.submits = sum.completions + sum.waiters; /* timers are not counted when disarmed early */
  sum.workers = n;
  *out = sum;
}
