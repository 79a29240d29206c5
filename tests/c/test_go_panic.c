/* A Go panic in asyncrt code reached from a task (see "Crashes" in asyncrt.h)
 * is an error of that task: the call returns ASYNCRT_EINTERNAL with a message
 * naming the task, and a poll that passes it on fails its task with it.
 *
 * Needs the test build of the library (make checked-test): run with
 * ASYNCRT_TEST_PANIC=asyncrt_executor_new, which makes asyncrt_executor_new
 * panic when a task's poll calls it. With the argument "fatal" (and
 * ASYNCRT_TEST_PANIC=asyncrt_executor_new:fatal) the program instead makes
 * that call die of a Go fatal error, for go_fatal_test.sh to read the report.
 */
#include "check.h" /* first: it sets _POSIX_C_SOURCE */
#include "testfut.h"

/* A future whose poll names its task `name`, calls asyncrt_executor_new once
 * and keeps what it got; it then fails without naming a failure (passing the
 * call's on), names `own_failure` if that is set, or finishes ready if
 * `ignore` is set. */
typedef struct caller {
  const char *name;
  int status;          /* what asyncrt_executor_new returned; -1 before */
  char message[1024];  /* asyncrt_last_error() right after */
  int own_failure;
  int ignore;
  int polls;
} caller;

static int caller_poll(void *self, asyncrt_context *cx, void *out) {
  caller *c = self;
  asyncrt_executor *ex = NULL;
  (void)out;
  c->polls++;
  asyncrt_context_set_name(cx, c->name);
  c->status = asyncrt_executor_new(NULL, &ex);
  snprintf(c->message, sizeof c->message, "%s", asyncrt_last_error());
  if (c->status == ASYNCRT_OK) {
    asyncrt_executor_free(ex);
    return ASYNCRT_POLL_READY;
  }
  if (c->ignore) return ASYNCRT_POLL_READY;
  if (c->own_failure) asyncrt_context_fail(cx, c->own_failure);
  return ASYNCRT_POLL_ERROR;
}

static void caller_drop(void *self) { (void)self; }

static const asyncrt_future_vtable caller_vtable = {sizeof(asyncrt_future_vtable), 0, caller_poll,
                                                    caller_drop, NULL};

static void caller_init(caller *c) {
  memset(c, 0, sizeof *c);
  c->status = -1;
}

static int contains(const char *haystack, const char *needle) { return strstr(haystack, needle) != NULL; }

#define CHECK_CONTAINS(text, part)                                                                 \
  do {                                                                                             \
    if (!contains((text), (part))) {                                                               \
      check_fail_at(__FILE__, __LINE__);                                                           \
      fprintf(stderr, "\"%s\" does not contain \"%s\"\n", (text), (part));                         \
      return;                                                                                      \
    }                                                                                              \
  } while (0)

/* Spawns a caller as a task named `name` on ex, runs it to its end (ex is a
 * local executor driven here, or a thread-per-core one), and returns the
 * task's status; its error message goes to `message`. */
static int run_named(asyncrt_executor *ex, caller *c, const char *name, char *message, size_t cap,
                     uint64_t *id) {
  asyncrt_future f = {c, &caller_vtable};
  asyncrt_future join;
  asyncrt_task *task = NULL;
  asyncrt_error_info info;
  int status, rc;
  unsigned caps = 0;
  message[0] = 0;
  c->name = name;
  if ((rc = asyncrt_spawn(ex, &f, ASYNCRT_SPAWN_SEND, &task)) != ASYNCRT_OK) return -rc;
  asyncrt_task_id(task, id);
  asyncrt_executor_capabilities(ex, &caps);
  if (caps & ASYNCRT_CAP_STEPPED) {
    asyncrt_run(ex, NULL);
  } else if (asyncrt_task_join(task, &join) == ASYNCRT_OK) {
    asyncrt_executor *waiter = tf_executor();
    asyncrt_block_on(waiter, &join, NULL, TF_TIMEOUT_NS); /* fails as the task did */
    asyncrt_executor_free(waiter);
  }
  status = asyncrt_task_status(task);
  memset(&info, 0, sizeof info);
  info.size = sizeof info;
  if (asyncrt_task_error_get(task, &info) == ASYNCRT_OK && info.message)
    snprintf(message, cap, "%s", info.message);
  asyncrt_task_release(task);
  return status;
}

/* The call fails with EINTERNAL naming the function, the task and the panic;
 * the task, whose poll passed the failure on, fails with the same. */
static void check_panic_in_task(asyncrt_executor *ex, const char *name) {
  caller c;
  char message[1024], want[128];
  uint64_t id = 0;
  int status;
  caller_init(&c);
  status = run_named(ex, &c, name, message, sizeof message, &id);
  CHECK_INT(c.polls, 1);
  CHECK_STATUS(c.status, ASYNCRT_EINTERNAL);
  CHECK_CONTAINS(c.message, "Go panic in asyncrt_executor_new");
  snprintf(want, sizeof want, "task %llu \"%s\"", (unsigned long long)id, name);
  CHECK_CONTAINS(c.message, want);
  CHECK_CONTAINS(c.message, "injected by ASYNCRT_TEST_PANIC");
  CHECK_STATUS(status, ASYNCRT_EINTERNAL);
  CHECK_CONTAINS(message, want);
  CHECK_CONTAINS(message, "injected by ASYNCRT_TEST_PANIC");
}

static void test_panic_on_the_driving_thread(void) {
  asyncrt_executor *ex = tf_executor();
  CHECK(ex != NULL);
  check_panic_in_task(ex, "panicky");
  CHECK_PASSED();
  /* The executor and the thread go on: the next task panics the same way. */
  check_panic_in_task(ex, "panicky again");
  CHECK_PASSED();
  CHECK_OK(asyncrt_executor_free(ex));
}

static void test_panic_on_a_worker(void) {
  asyncrt_executor_config cfg;
  asyncrt_executor *ex = NULL;
  asyncrt_executor_config_init(&cfg);
  cfg.kind = ASYNCRT_EXECUTOR_THREADS;
  cfg.workers = 1;
  CHECK_OK(asyncrt_executor_new(&cfg, &ex));
  check_panic_in_task(ex, "on a worker");
  CHECK_PASSED();
  CHECK_OK(asyncrt_executor_free(ex));
}

/* The poll decides: its own failure wins, and a poll that goes on anyway
 * completes its task. */
static void test_the_poll_decides(void) {
  asyncrt_executor *ex = tf_executor();
  caller c;
  char message[1024];
  uint64_t id = 0;
  CHECK(ex != NULL);
  caller_init(&c);
  c.own_failure = 1001;
  CHECK_INT(run_named(ex, &c, "own failure", message, sizeof message, &id), 1001);
  CHECK_STATUS(c.status, ASYNCRT_EINTERNAL);
  caller_init(&c);
  c.ignore = 1;
  CHECK_OK(run_named(ex, &c, "ignores it", message, sizeof message, &id));
  CHECK_STATUS(c.status, ASYNCRT_EINTERNAL);
  CHECK_OK(asyncrt_executor_free(ex));
}

/* Outside a poll the hook does not fire: the same call works. */
static void test_no_panic_outside_a_poll(void) {
  asyncrt_executor *ex = NULL;
  CHECK_OK(asyncrt_executor_new(NULL, &ex));
  CHECK_OK(asyncrt_executor_free(ex));
}

/* For go_fatal_test.sh: the call dies; reaching the end is a failure. */
static int die_in_task(void) {
  asyncrt_executor *ex = tf_executor();
  caller c;
  char message[1024];
  uint64_t id = 0;
  if (!ex) return 3;
  caller_init(&c);
  run_named(ex, &c, "doomed", message, sizeof message, &id);
  fprintf(stderr, "test_go_panic: the fatal call returned %d (%s)\n", c.status, c.message);
  return 4;
}

int main(int argc, char **argv) {
  if (argc > 1 && strcmp(argv[1], "fatal") == 0) return die_in_task();
  CHECK_BEGIN();
  RUN(test_panic_on_the_driving_thread);
  RUN(test_panic_on_a_worker);
  RUN(test_the_poll_decides);
  RUN(test_no_panic_outside_a_poll);
  return CHECK_END("go_panic");
}
