/* statuses.c -- which statuses include/asyncrt.h documents for each
 * function the fuzzer calls, and the check every call's status goes
 * through. The sets are read off the header: a function's \return list or
 * its text, plus the conventions at the top of the header (EINVAL for a
 * NULL where a value is required, EHANDLE for a dead or foreign handle,
 * ENOMEM/ELIMIT wherever task memory is taken, EREENTRANT for a driving
 * call from inside a poll). A status outside its set is a finding: either
 * the code or the header is wrong. */
#include "fuzz.h"

#define OK ST(ASYNCRT_OK)
#define H (ST(ASYNCRT_EINVAL) | ST(ASYNCRT_EHANDLE)) /* a handle argument */
#define MEM (ST(ASYNCRT_ENOMEM) | ST(ASYNCRT_ELIMIT))
/* A task's or a scope's outcome: any failure its future named (the
 * fuzzer's futures name these, or a user status above 1000). */
#define OUTCOME (ST(ASYNCRT_EAGAIN) | OK | ST(ASYNCRT_ECANCELLED) | ST(ASYNCRT_EFAILED) | ST(ASYNCRT_ESCOPE) | \
                 ST(ASYNCRT_ETIMEDOUT) | ST(ASYNCRT_ENOTSUP) | ST(ASYNCRT_ESHUTDOWN) | MEM | USER |    \
                 ST(ASYNCRT_ECLOSED) | ST(ASYNCRT_ELAGGED) | ST(ASYNCRT_EINVAL) | ST(ASYNCRT_EHANDLE))
#define USER (1u << 31) /* stands for any status above 1000 */

static const struct {
  const char *name;
  uint32_t documented;
  int answers; /* statuses that answer a question, not failures: not recorded */
} fns[FN_COUNT] = {
    [FN_SEND] = {"asyncrt_send", OK | H},
    [FN_RECV] = {"asyncrt_recv", OK | H},
    [FN_SYNC_NEW] = {"asyncrt_*_new (synchronization)", OK | ST(ASYNCRT_EINVAL) | ST(ASYNCRT_ENOMEM)},
    [FN_SYNC_WAIT] = {"asyncrt_mutex_lock / semaphore_acquire / notify_wait / barrier_wait", OK | H},
    /* EBUSY while a wait future pins the object (the section's text). */
    [FN_SYNC_FREE] = {"asyncrt_*_free (synchronization)", OK | ST(ASYNCRT_EHANDLE) | ST(ASYNCRT_EBUSY)},
    [FN_MUTEX_TRY] = {"asyncrt_mutex_try_lock", OK | H | ST(ASYNCRT_EAGAIN), 1},
    [FN_MUTEX_UNLOCK] = {"asyncrt_mutex_unlock", OK | H},
    [FN_SEM_TRY] = {"asyncrt_semaphore_try_acquire", OK | H | ST(ASYNCRT_EAGAIN), 1},
    [FN_SEM_RELEASE] = {"asyncrt_semaphore_release", OK | H},
    [FN_SEM_AVAILABLE] = {"asyncrt_semaphore_available", OK | H},
    [FN_NOTIFY] = {"asyncrt_notify_one / notify_all", OK | H},
    [FN_COMB] = {"asyncrt_join_all / asyncrt_select", OK | ST(ASYNCRT_EINVAL)},
    [FN_EXEC_NEW] = {"asyncrt_executor_new", OK | ST(ASYNCRT_EINVAL) | ST(ASYNCRT_ENOMEM)},
    [FN_EXEC_NEW_FOREIGN] = {"asyncrt_executor_new_foreign", OK | ST(ASYNCRT_EINVAL) | ST(ASYNCRT_ENOMEM)},
    [FN_EXEC_FREE] = {"asyncrt_executor_free", OK | ST(ASYNCRT_EHANDLE) | ST(ASYNCRT_ETIMEDOUT) | ST(ASYNCRT_EBUSY)},
    [FN_EXEC_SHUTDOWN] = {"asyncrt_executor_shutdown",
                          OK | H | ST(ASYNCRT_ETIMEDOUT) | ST(ASYNCRT_ENOTSUP) | ST(ASYNCRT_EBUSY)},
    [FN_EXEC_CAPS] = {"asyncrt_executor_capabilities", OK | H},
    [FN_EXEC_STATS] = {"asyncrt_executor_stats_get", OK | H},
    [FN_WORKER_STATS] = {"asyncrt_worker_stats_get", OK | H},
    [FN_EXEC_FD] = {"asyncrt_executor_fd", OK | H | ST(ASYNCRT_ENOTSUP)},
    [FN_SPAWN] = {"asyncrt_spawn", OK | H | ST(ASYNCRT_ESHUTDOWN) | MEM},
    [FN_SPAWN_IN] = {"asyncrt_spawn_in", OK | H | ST(ASYNCRT_ESHUTDOWN) | MEM},
    [FN_TASK_JOIN] = {"asyncrt_task_join", OK | H | ST(ASYNCRT_EBUSY)},
    [FN_TASK_CANCEL] = {"asyncrt_task_cancel", OK | H},
    [FN_TASK_CANCEL_EX] = {"asyncrt_task_cancel_ex", OK | H},
    [FN_TASK_STATUS] = {"asyncrt_task_status", OUTCOME | H, 1},
    [FN_TASK_ID] = {"asyncrt_task_id", OK | H},
    [FN_TASK_RELEASE] = {"asyncrt_task_release", OK | ST(ASYNCRT_EHANDLE)},
    [FN_TASK_ERROR_GET] = {"asyncrt_task_error_get", OK | H | ST(ASYNCRT_EAGAIN), 1},
    /* The name lives in the task's extension record, which comes from task
     * memory: the Memory convention's ENOMEM / ELIMIT. */
    [FN_TASK_SET_NAME] = {"asyncrt_task_set_name", OK | H | MEM},
    [FN_BLOCK_ON] = {"asyncrt_block_on", OUTCOME | H | ST(ASYNCRT_EREENTRANT) | ST(ASYNCRT_EBUSY), 1},
    [FN_RUN] = {"asyncrt_run", OK | H | ST(ASYNCRT_ENOTSUP) | ST(ASYNCRT_EREENTRANT) | ST(ASYNCRT_EBUSY)},
    [FN_RUN_STEP] = {"asyncrt_run_step", OK | H | ST(ASYNCRT_ENOTSUP) | ST(ASYNCRT_EREENTRANT) | ST(ASYNCRT_EBUSY)},
    [FN_EXEC_NOW] = {"asyncrt_executor_now", OK | H},
    [FN_CLOCK_ADVANCE] = {"asyncrt_clock_advance", OK | H},
    [FN_EXEC_TICK] = {"asyncrt_executor_tick",
                      OK | H | ST(ASYNCRT_EBUSY) | ST(ASYNCRT_ENOTSUP) | ST(ASYNCRT_EREENTRANT)},
    [FN_RUNNABLE_RUN] = {"asyncrt_runnable_run", OK | ST(ASYNCRT_EINVAL)},
    [FN_RUNNABLE_DROP] = {"asyncrt_runnable_drop", OK | ST(ASYNCRT_EINVAL)},
    [FN_SCOPE_OPEN] = {"asyncrt_scope_open",
                       OK | ST(ASYNCRT_EINVAL) | ST(ASYNCRT_ENOTSUP) | ST(ASYNCRT_ESCOPE) | ST(ASYNCRT_ESHUTDOWN) | MEM},
    [FN_SCOPE_OPEN_FOR] = {"asyncrt_scope_open_for", OK | H | ST(ASYNCRT_ESCOPE) | ST(ASYNCRT_ESHUTDOWN) | MEM},
    [FN_SCOPE_OPEN_TOP] = {"asyncrt_scope_open_top", OK | H | ST(ASYNCRT_ESHUTDOWN) | MEM},
    [FN_SCOPE_SPAWN] = {"asyncrt_scope_spawn",
                        OK | H | ST(ASYNCRT_ESCOPE) | ST(ASYNCRT_ECANCELLED) | ST(ASYNCRT_ESHUTDOWN) | MEM},
    [FN_SCOPE_JOIN] = {"asyncrt_scope_join", OK | H | ST(ASYNCRT_EBUSY)},
    [FN_SCOPE_CANCEL] = {"asyncrt_scope_cancel", OK | H},
    [FN_SCOPE_STATUS] = {"asyncrt_scope_status", OUTCOME | H, 1},
    [FN_SCOPE_FREE] = {"asyncrt_scope_free", OK | ST(ASYNCRT_EHANDLE)},
    [FN_SCOPE_ERROR_COUNT] = {"asyncrt_scope_error_count", OK | H},
    [FN_SCOPE_ERROR_GET] = {"asyncrt_scope_error_get", OK | H},
    [FN_SCOPE_ID] = {"asyncrt_scope_id", OK | H},
    [FN_EXEC_DUMP] = {"asyncrt_executor_dump", OK | H | ST(ASYNCRT_ENOMEM)},
    [FN_SLEEP_FOR] = {"asyncrt_sleep_for", OK | ST(ASYNCRT_EINVAL)},
    [FN_TIMEOUT_FOR] = {"asyncrt_timeout_for", OK | ST(ASYNCRT_EINVAL)},
    [FN_CHANNEL_NEW] = {"asyncrt_channel_new", OK | ST(ASYNCRT_EINVAL) | ST(ASYNCRT_ENOMEM)},
    [FN_SENDER_CLONE] = {"asyncrt_sender_clone", OK | H | ST(ASYNCRT_ENOMEM)},
    [FN_SENDER_SUBSCRIBE] = {"asyncrt_sender_subscribe", OK | H | ST(ASYNCRT_ENOMEM)},
    [FN_ENDPOINT_FREE] = {"asyncrt_sender_free / asyncrt_receiver_free", OK | ST(ASYNCRT_EHANDLE)},
    [FN_TRY_SEND] = {"asyncrt_try_send", OK | H | ST(ASYNCRT_EAGAIN) | ST(ASYNCRT_ECLOSED), 1},
    [FN_TRY_RECV] = {"asyncrt_try_recv", OK | H | ST(ASYNCRT_EAGAIN) | ST(ASYNCRT_ECLOSED) | ST(ASYNCRT_ELAGGED), 1},
    [FN_CHANNEL_LEN] = {"asyncrt_channel_len", OK | H},
    [FN_SHIELD] = {"asyncrt_shield_enter / _exit", OK | ST(ASYNCRT_EINVAL) | ST(ASYNCRT_ENOTSUP)},
};

static uint32_t bit(int status) {
  if (status > 1000) return USER;
  return status >= 0 && status < 31 ? ST(status) : 0;
}

int fz_documented(enum fz_fn fn, int status) {
  FZ_CHECK(bit(status) & fns[fn].documented, "%s returned %d (%s), which the header does not document for it",
           fns[fn].name, status, asyncrt_status_str(status));
  /* A failure is recorded for asyncrt_last_status / asyncrt_last_error on
   * this thread (answers such as EAGAIN need not be). */
  if (status && !fns[fn].answers)
    FZ_CHECK(asyncrt_last_status() == status && asyncrt_last_error()[0],
             "%s failed with %d but the thread's last error is %d (\"%s\")", fns[fn].name, status,
             asyncrt_last_status(), asyncrt_last_error());
  return status;
}

int fz_expect(enum fz_fn fn, int status, uint32_t allowed, const char *what) {
  fz_documented(fn, status);
  FZ_CHECK(bit(status) & allowed, "%s: %s returned %d (%s); the model allows mask %#x", what, fns[fn].name,
           status, asyncrt_status_str(status), allowed);
  return status;
}
