/* ops.h -- what the operation files share: handle picking, decoding a
 * program from the input, and the settling of executors. */
#ifndef ART_FUZZ_OPS_H
#define ART_FUZZ_OPS_H

#include "fuzz.h"

enum { HT_EXEC, HT_TASK, HT_SCOPE, HT_SENDER, HT_RECEIVER, HT_SYNC, HT_COUNT };

/* A handle of `type` chosen by the input; *idx is the model's index when it
 * is live and of that type, else -1. */
void *pick_handle(fz_input *in, int type, int *idx);
/* The status a call must return for the handle before anything else:
 * EINVAL for NULL, EHANDLE for a dead or foreign one, 0 when live. */
uint32_t handle_status(const void *h, int idx);
void stale_add(void *h);

/* Decodes a program for executor e (-1: not yet known). depth limits
 * nesting of SCOPE children. */
int decode_prog(fz_input *in, int e, int depth);
/* Spawn flags from the input, and the status the model expects for them on
 * executor e (0 if fine). */
unsigned decode_flags(fz_input *in);
uint32_t flags_status(const fz_exec *e, unsigned flags);
/* What a spawn of a valid future must return on live executor e. */
uint32_t spawn_status(const fz_exec *e);
/* Keeps a join future the harness holds (dropped if no slot is free). */
void hjoin_keep(asyncrt_future f, int task, int scope);
/* Marks a program (and its children) as handed to asyncrt on executor e. */
void prog_give(int p, int e);
/* A task entry for a spawn that succeeded; h may be NULL (detached). */
int task_add(asyncrt_task *h, int e, int p, int scope);
/* Checks every program that executor e owned was dropped exactly once. */
void check_exec_dropped(int e);
/* Checks that every task of executor e reports completion. */
void check_exec_tasks_done(int e);

/* Drives every executor (run, tick, advance test clocks, deliver wakes)
 * until nothing moves; with liveness, also waits (bounded) until every task
 * the model proves finite has finished, and fails if one has not. */
void settle_all(int liveness);

/* The operation groups. */
void op_exec_new(fz_input *in);
void op_exec_free(fz_input *in);
void op_exec_shutdown(fz_input *in);
void op_exec_query(fz_input *in);
void op_spawn(fz_input *in);
void op_block_on(fz_input *in);
void op_drive(fz_input *in);
void op_clock(fz_input *in);
void op_foreign(fz_input *in);
void op_wake(fz_input *in);
void op_task(fz_input *in);
void op_join(fz_input *in);
void op_hjoin(fz_input *in);
void op_scope_open(fz_input *in);
void op_scope_spawn(fz_input *in);
void op_scope(fz_input *in);
void op_timers(fz_input *in);
void op_chan_new(fz_input *in);
void op_chan(fz_input *in);
void op_sync_new(fz_input *in);
void op_sync(fz_input *in);
/* The future of a CHAN or SYNC program, made at decode time; 0 if the
 * input's handle was refused (the program then is a plain READY one). */
int chan_future(fz_input *in, int p);
int sync_future(fz_input *in, int p);
void chan_endpoint_free(int i, int checked);
int main_thread_only(int e);
void sync_free_all(void);

/* A waker that counts its clones (harness-held join polls). */
extern _Atomic int fz_hwaker_refs;
extern const asyncrt_waker fz_hwaker;

#endif
