/* After fork(), every asyncrt call in the child fails with ASYNCRT_EFORKED,
 * and the child exits cleanly. */
#include "check.h" /* first: it sets _POSIX_C_SOURCE */
#include "testfut.h"

#include <signal.h>
#include <sys/wait.h>

/* What the child checks; it exits 0 if all held, else 1 (with a message). */
typedef struct parent_objects {
  asyncrt_executor *ex;
  asyncrt_task *task;
  asyncrt_waker waker; /* a clone of a parked task's waker, or zeroed */
} parent_objects;

#define CHILD_EXPECT(expr, want)                                              \
  do {                                                                        \
    int got_ = (expr);                                                        \
    if (got_ != (want)) {                                                     \
      fprintf(stderr, "  child: %s: got %d (%s), want %d\n", #expr, got_,    \
              asyncrt_status_str(got_), (int)(want));                         \
      failures++;                                                             \
    }                                                                         \
  } while (0)

static int child_checks(parent_objects *po) {
  int failures = 0;
  asyncrt_executor *ex = NULL;
  asyncrt_hostq *q = NULL;
  asyncrt_future f;
  tf_state st;
  uint64_t polls = 0, out = 0;
  int fd = -1;
  CHILD_EXPECT(asyncrt_executor_new(NULL, &ex), ASYNCRT_EFORKED);
  if (po->ex != NULL) {
    tf_init(&st);
    f = tf_future(&st);
    CHILD_EXPECT(asyncrt_block_on(po->ex, &f, &out, TF_SECOND_NS), ASYNCRT_EFORKED);
    tf_init(&st);
    f = tf_future(&st);
    CHILD_EXPECT(asyncrt_spawn(po->ex, &f, 0, NULL), ASYNCRT_EFORKED);
    CHILD_EXPECT(tf_get(&st.polls), 0);
    CHILD_EXPECT(asyncrt_run(po->ex, &polls), ASYNCRT_EFORKED);
    CHILD_EXPECT(asyncrt_run_step(po->ex, 10, 0, &polls), ASYNCRT_EFORKED);
    CHILD_EXPECT(asyncrt_executor_fd(po->ex, &fd), ASYNCRT_EFORKED);
    CHILD_EXPECT(asyncrt_hostq_new(po->ex, &q), ASYNCRT_EFORKED);
    CHILD_EXPECT(asyncrt_task_status(po->task), ASYNCRT_EFORKED);
    CHILD_EXPECT(asyncrt_task_cancel(po->task), ASYNCRT_EFORKED);
    CHILD_EXPECT(asyncrt_task_release(po->task), ASYNCRT_EFORKED);
    CHILD_EXPECT(asyncrt_executor_free(po->ex), ASYNCRT_EFORKED);
  }
  CHILD_EXPECT(asyncrt_last_status(), ASYNCRT_EFORKED);
  /* void functions do nothing */
  asyncrt_waker_wake_by_ref(&po->waker);
  asyncrt_waker_drop(&po->waker);
  return failures;
}

/* Forks; the child runs child_checks and exits. Waits for it with a bound. */
static void fork_and_check(parent_objects *po) {
  pid_t pid, done = 0;
  int status = 0, waited_ms = 0;
  fflush(stdout);
  fflush(stderr);
  pid = fork();
  CHECK(pid >= 0);
  if (pid == 0) {
    int failures;
    alarm(10);
    failures = child_checks(po);
    /* _exit, as a child of a threaded process should: exit handlers may
     * need what the parent's other threads held. Under LeakSanitizer the
     * memory those threads referenced would also look leaked here. */
    fflush(stderr);
    _exit(failures == 0 ? 0 : 1);
  }
  while (waited_ms < 10000) {
    done = waitpid(pid, &status, WNOHANG);
    if (done != 0) {
      break;
    }
    tf_sleep_ms(10);
    waited_ms += 10;
  }
  if (done == 0) {
    kill(pid, SIGKILL);
    waitpid(pid, &status, 0);
    check_fail_at(__FILE__, __LINE__);
    fprintf(stderr, "the child did not exit within 10 s (killed)\n");
    return;
  }
  CHECK_INT(done, pid);
  if (!WIFEXITED(status)) {
    check_fail_at(__FILE__, __LINE__);
    fprintf(stderr, "the child did not exit normally: %s %d\n",
            WIFSIGNALED(status) ? "signal" : "status", WIFSIGNALED(status) ? WTERMSIG(status) : status);
    return;
  }
  CHECK_INT(WEXITSTATUS(status), 0);
}

static void test_fork_before_any_executor(void) {
  parent_objects po;
  memset(&po, 0, sizeof po);
  fork_and_check(&po);
}

static void test_fork_with_live_executor(void) {
  parent_objects po;
  tf_state parked, st;
  asyncrt_future f;
  uint64_t out = 0;
  memset(&po, 0, sizeof po);
  po.ex = tf_executor();
  CHECK(po.ex != NULL);
  tf_init(&parked);
  parked.park = 1;
  parked.pendings = 1;
  f = tf_future(&parked);
  CHECK_OK(asyncrt_spawn(po.ex, &f, 0, &po.task));
  CHECK_OK(asyncrt_run(po.ex, NULL));
  asyncrt_waker_clone(&parked.parked, &po.waker);
  /* a busy block_on first, so that the runtime has done real work */
  tf_init(&st);
  st.pendings = 100;
  f = tf_future(&st);
  CHECK_OK(asyncrt_block_on(po.ex, &f, &out, TF_TIMEOUT_NS));

  fork_and_check(&po);
  CHECK_PASSED();

  /* the parent is unaffected */
  asyncrt_waker_wake(&po.waker);
  CHECK_OK(asyncrt_run(po.ex, NULL));
  CHECK_OK(asyncrt_task_status(po.task));
  tf_init(&st);
  st.value = 5;
  f = tf_future(&st);
  CHECK_OK(asyncrt_block_on(po.ex, &f, &out, TF_TIMEOUT_NS));
  CHECK_INT(out, 5);
  CHECK_OK(asyncrt_task_release(po.task));
  CHECK_OK(asyncrt_executor_free(po.ex));
  CHECK_INT(tf_get(&parked.drops), 1);
}

/* Forking while another thread of ours is inside asyncrt. */
typedef struct busy_thread {
  asyncrt_executor *ex;
  int stop;
  int status;
} busy_thread;

static void *keep_running(void *arg) {
  busy_thread *b = arg;
  while (!tf_get(&b->stop)) {
    tf_state st;
    asyncrt_future f;
    uint64_t out = 0;
    tf_init(&st);
    st.pendings = 10;
    f = tf_future(&st);
    b->status = asyncrt_block_on(b->ex, &f, &out, TF_TIMEOUT_NS);
    if (b->status != ASYNCRT_OK) {
      break;
    }
  }
  return NULL;
}

static void test_fork_while_another_thread_drives(void) {
  parent_objects po;
  busy_thread b;
  pthread_t th;
  int i;
  memset(&po, 0, sizeof po);
  memset(&b, 0, sizeof b);
  b.ex = tf_executor();
  CHECK(b.ex != NULL);
  CHECK_INT(pthread_create(&th, NULL, keep_running, &b), 0);
  for (i = 0; i < 5 && !check_current_failed; i++) {
    fork_and_check(&po);
  }
  tf_set(&b.stop, 1);
  CHECK_INT(pthread_join(th, NULL), 0);
  CHECK_PASSED();
  CHECK_OK(b.status);
  CHECK_OK(asyncrt_executor_free(b.ex));
}

/* Forking while a thread-per-core executor's workers run tasks: the child
 * has none of the workers, and every call on the executor is refused. */
static void test_fork_while_workers_run(void) {
  asyncrt_executor_config cfg;
  parent_objects po;
  busy_thread b;
  pthread_t th;
  int i;
  memset(&po, 0, sizeof po);
  memset(&b, 0, sizeof b);
  asyncrt_executor_config_init(&cfg);
  cfg.kind = ASYNCRT_EXECUTOR_THREADS;
  cfg.workers = 2;
  CHECK_OK(asyncrt_executor_new(&cfg, &b.ex));
  po.ex = b.ex;
  CHECK_INT(pthread_create(&th, NULL, keep_running, &b), 0);
  for (i = 0; i < 3 && !check_current_failed; i++) {
    fork_and_check(&po);
  }
  tf_set(&b.stop, 1);
  CHECK_INT(pthread_join(th, NULL), 0);
  CHECK_PASSED();
  CHECK_OK(b.status);
  CHECK_OK(asyncrt_executor_free(b.ex));
}

int main(void) {
  CHECK_BEGIN();
  RUN(test_fork_before_any_executor);
  RUN(test_fork_with_live_executor);
  RUN(test_fork_while_another_thread_drives);
  RUN(test_fork_while_workers_run);
  return CHECK_END("fork");
}
