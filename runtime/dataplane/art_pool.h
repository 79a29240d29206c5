/* art_pool.h -- the blocking pool's side of the IO data plane beyond what
 * art_io.h gives every backend (submit, cancel, close): how the control
 * plane opens it and runs its threads, and what a job does. See art_pool.c
 * for the design. */
#ifndef ART_POOL_H
#define ART_POOL_H

#include "art_io.h"

#pragma GCC visibility push(hidden)

/* (art_pool_submit makes io->pool at the first op that needs it, with
 * io->pool_threads, pool_queue and pool_idle_ns.) */
/* Drops the driver's reference (art_io_free): the pool is freed now, or by
 * the last thread of an orphaned job when it returns. io->pool is NULL after. */
void art_pool_release(art_io *io);
/* Counters into the pool_* fields of *out. Any thread. */
void art_pool_stats(art_io *io, asyncrt_io_stats *out);

/* The process-wide eventfd the control plane reads: every start a pool
 * asks for adds 1 to it. Set once, before the first pool opens. */
void art_pool_set_wake_fd(int fd);
/* The next pool that asked for threads, with how many (*starts), or NULL.
 * The control plane starts that many runners for it, each calling
 * art_pool_run (or art_pool_start_failed if it cannot). */
art_pool *art_pool_take_request(uint32_t *starts);
/* A runner: blocks until the pool closes or the thread was idle for the
 * pool's idle time, running jobs. Returns with the thread's reference
 * dropped (p may be freed). */
void art_pool_run(art_pool *p);
/* A start asked for that will not happen: drops its reference. */
void art_pool_start_failed(art_pool *p);

#pragma GCC visibility pop

#endif
