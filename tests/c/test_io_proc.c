/* Child processes on both backends: asyncrt_process_spawn (posix_spawnp +
 * pidfd_open), ASYNCRT_IO_OP_WAITPID (the wait status as waitpid gives it),
 * asyncrt_process_kill, a child under a timeout, a child's stdout read
 * through a pipe with READ ops, its environment and working directory, and
 * the errors. */
#include "io_batch.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

/* Spawns argv (stdout to out_fd unless -1); returns the pidfd or -1. */
static int spawn(const char *const *argv, int out_fd) {
  asyncrt_process_config cfg;
  int pid = 0, pidfd = -1;
  asyncrt_process_config_init(&cfg);
  cfg.argv = argv;
  cfg.stdout_fd = out_fd;
  int rc = asyncrt_process_spawn(&cfg, &pid, &pidfd);
  if (rc != ASYNCRT_OK) fprintf(stderr, "asyncrt_process_spawn(%s): %s\n", argv[0], asyncrt_last_error());
  CHECK_OR(rc == ASYNCRT_OK, -1);
  CHECK_OR(pid > 0, -1);
  CHECK_OR(fcntl(pidfd, F_GETFD) & FD_CLOEXEC, -1);
  return pidfd;
}

/* Awaits the child of pidfd: its wait status, or -1000 - the op's failure. */
static int64_t wait_child(asyncrt_executor *ex, asyncrt_io *io, int pidfd) {
  asyncrt_op op;
  memset(&op, 0, sizeof op);
  asyncrt_io_prep_waitpid(&op, pidfd);
  int rc = io_run_op(ex, io, &op);
  if (rc != ASYNCRT_OK) {
    fprintf(stderr, "  WAITPID: %s, result %lld\n", asyncrt_status_str(rc), (long long)op.result);
    return -1000 - rc;
  }
  return op.result;
}

/* Closes an fd a driver has seen through ASYNCRT_IO_OP_CLOSE (see
 * "Descriptors" in asyncrt.h: a plain close could leave the driver's
 * registration behind for the next file with that number). */
static void io_close_fd(asyncrt_executor *ex, asyncrt_io *io, int fd) {
  asyncrt_op op;
  memset(&op, 0, sizeof op);
  asyncrt_io_prep_close(&op, fd);
  CHECK_OK(io_run_op(ex, io, &op));
}

static int64_t run_child(asyncrt_executor *ex, asyncrt_io *io, const char *const *argv) {
  int pidfd = spawn(argv, -1);
  if (pidfd < 0) return -1;
  int64_t st = wait_child(ex, io, pidfd);
  io_close_fd(ex, io, pidfd);
  return st;
}

/* Runs the statement after it once per backend, with ex a new executor
 * (made by `make`) and io a driver of that backend on it. */
#define FOR_EACH_DRIVER_ON(make, ex, io)                                                           \
  for (size_t b_ = 0; b_ < IO_NBACKENDS; b_++)                                                     \
    if (((ex) = (make)()) == NULL) {                                                               \
      check_fail_at(__FILE__, __LINE__);                                                           \
    } else if (!io_open_backend((ex), io_backends[b_], NULL, &(io))) {                             \
      CHECK_OK(asyncrt_executor_free(ex));                                                         \
    } else

#define FOR_EACH_DRIVER(ex, io) FOR_EACH_DRIVER_ON(tf_executor, ex, io)

#define DRIVER_DONE(ex, io)                                                                        \
  do {                                                                                             \
    CHECK_OK(asyncrt_io_close(io));                                                                \
    CHECK_OK(asyncrt_executor_free(ex));                                                           \
  } while (0)

static void test_exit_statuses(void) {
  static const char *const t[] = {"true", NULL};
  static const char *const f[] = {"false", NULL};
  static const char *const three[] = {"sh", "-c", "exit 3", NULL};
  asyncrt_executor *ex;
  asyncrt_io *io;
  FOR_EACH_DRIVER(ex, io) {
    int64_t st = run_child(ex, io, t);
    CHECK(st >= 0 && WIFEXITED((int)st) && WEXITSTATUS((int)st) == 0);
    st = run_child(ex, io, f);
    CHECK(st >= 0 && WIFEXITED((int)st) && WEXITSTATUS((int)st) == 1);
    st = run_child(ex, io, three);
    CHECK(st >= 0 && WIFEXITED((int)st));
    CHECK_INT(WEXITSTATUS((int)st), 3);
    DRIVER_DONE(ex, io);
  }
}

/* Two children awaited at once by one task. */
static void test_two_children(void) {
  static const char *const five[] = {"sh", "-c", "exit 5", NULL};
  static const char *const six[] = {"sh", "-c", "exit 6", NULL};
  asyncrt_executor *ex;
  asyncrt_io *io;
  FOR_EACH_DRIVER(ex, io) {
    io_batch batch;
    int a = spawn(five, -1), c = spawn(six, -1);
    io_batch_init(&batch, io, 2);
    asyncrt_io_prep_waitpid(&batch.ops[0], a);
    asyncrt_io_prep_waitpid(&batch.ops[1], c);
    CHECK_OK(io_batch_run(ex, &batch));
    CHECK_INT(batch.ops[0].status, ASYNCRT_OK);
    CHECK_INT(batch.ops[1].status, ASYNCRT_OK);
    CHECK_INT(WEXITSTATUS((int)batch.ops[0].result), 5);
    CHECK_INT(WEXITSTATUS((int)batch.ops[1].result), 6);
    io_close_fd(ex, io, a);
    io_close_fd(ex, io, c);
    DRIVER_DONE(ex, io);
  }
}

static void test_kill(void) {
  static const char *const sleeper[] = {"sleep", "10", NULL};
  asyncrt_executor *ex;
  asyncrt_io *io;
  FOR_EACH_DRIVER(ex, io) {
    int pidfd = spawn(sleeper, -1);
    CHECK_OK(asyncrt_process_kill(pidfd, 0)); /* alive */
    CHECK_OK(asyncrt_process_kill(pidfd, SIGKILL));
    int64_t st = wait_child(ex, io, pidfd);
    CHECK(st >= 0 && WIFSIGNALED((int)st));
    CHECK_INT(WTERMSIG((int)st), SIGKILL);
    /* Reaped: the pidfd names a process that is gone. */
    CHECK_STATUS(asyncrt_process_kill(pidfd, SIGTERM), ASYNCRT_EOS);
    CHECK_INT(asyncrt_last_errno(), ESRCH);
    /* ... and a second wait has no child to reap. */
    asyncrt_op op;
    memset(&op, 0, sizeof op);
    asyncrt_io_prep_waitpid(&op, pidfd);
    CHECK_STATUS(io_run_op(ex, io, &op), ASYNCRT_EOS);
    CHECK_INT(op.result, -ECHILD);
    io_close_fd(ex, io, pidfd);
    DRIVER_DONE(ex, io);
  }
}

/* The child-with-a-timeout pattern: select over its exit and a TIMEOUT op;
 * the timeout wins (sleep 10 against 1 ms), the losing WAITPID is
 * cancelled, and the child is killed and reaped. On a worker thread, which
 * goes on ticking after block_on returns: the cancel of the loser may land
 * after the winner. */
static void test_timeout(void) {
  static const char *const sleeper[] = {"sleep", "10", NULL};
  asyncrt_executor *ex;
  asyncrt_io *io;
  FOR_EACH_DRIVER_ON(io_threads_executor, ex, io) {
    asyncrt_op wait_op, timer_op;
    asyncrt_io_future_state wst, tst;
    asyncrt_future futs[2], sel;
    void *state = NULL;
    int64_t winner_out = -1;
    CHECK_INT(posix_memalign(&state, 16, asyncrt_select_size(2)), 0);
    int pidfd = spawn(sleeper, -1);
    memset(&wait_op, 0, sizeof wait_op);
    memset(&timer_op, 0, sizeof timer_op);
    asyncrt_io_prep_waitpid(&wait_op, pidfd);
    asyncrt_io_prep_timeout(&timer_op, 1000000);
    CHECK_OK(asyncrt_io_future(&wst, io, &wait_op, &futs[0]));
    CHECK_OK(asyncrt_io_future(&tst, io, &timer_op, &futs[1]));
    CHECK_OK(asyncrt_select(state, futs, 2, &winner_out, &sel));
    CHECK_OK(asyncrt_block_on(ex, &sel, NULL, TF_TIMEOUT_NS));
    CHECK_INT(asyncrt_select_index(state), 1);
    CHECK_INT(timer_op.status, ASYNCRT_OK);
    /* The WAITPID was cancelled with its future (it may take a tick). */
    CHECK(io_op_wait(&wait_op));
    CHECK_INT(wait_op.status, ASYNCRT_ECANCELLED);
    CHECK_OK(asyncrt_process_kill(pidfd, SIGKILL));
    int64_t st = wait_child(ex, io, pidfd);
    CHECK(st >= 0 && WIFSIGNALED((int)st) && WTERMSIG((int)st) == SIGKILL);
    io_close_fd(ex, io, pidfd);
    free(state);
    DRIVER_DONE(ex, io);
  }
}

/* Reads fd (non-blocking, a pipe) with READ ops until end of stream. */
static size_t read_all(asyncrt_executor *ex, asyncrt_io *io, int fd, char *buf, size_t cap) {
  size_t got = 0;
  for (;;) {
    asyncrt_op op;
    memset(&op, 0, sizeof op);
    asyncrt_io_prep_read(&op, fd, buf + got, cap - got, -1);
    int rc = io_run_op(ex, io, &op);
    if (rc != ASYNCRT_OK) fprintf(stderr, "READ: %s\n", asyncrt_status_str(rc));
    CHECK_OR(rc == ASYNCRT_OK, got);
    if (op.result == 0 || got + (size_t)op.result >= cap) return got + (size_t)op.result;
    got += (size_t)op.result;
  }
}

static void test_stdout_through_a_pipe(void) {
  static const char *const argv[] = {"sh", "-c", "echo hello; sleep 0; echo world", NULL};
  asyncrt_executor *ex;
  asyncrt_io *io;
  FOR_EACH_DRIVER(ex, io) {
    int fds[2];
    char buf[256];
    CHECK_OK(asyncrt_pipe(fds));
    /* The child's end shares its file description: make it blocking. */
    CHECK_INT(fcntl(fds[1], F_SETFL, fcntl(fds[1], F_GETFL) & ~O_NONBLOCK), 0);
    int pidfd = spawn(argv, fds[1]);
    close(fds[1]); /* the child holds the only write end now: EOF at its exit */
    memset(buf, 0, sizeof buf);
    size_t n = read_all(ex, io, fds[0], buf, sizeof buf - 1);
    CHECK_INT(n, 12);
    CHECK_STR(buf, "hello\nworld\n");
    int64_t st = wait_child(ex, io, pidfd);
    CHECK(st >= 0 && WIFEXITED((int)st) && WEXITSTATUS((int)st) == 0);
    io_close_fd(ex, io, fds[0]);
    io_close_fd(ex, io, pidfd);
    DRIVER_DONE(ex, io);
  }
}

static void test_environment_and_cwd(void) {
  static const char *const argv[] = {"sh", "-c", "echo \"$FOO $(pwd)\"", NULL};
  static const char *const envp[] = {"FOO=bar", "PATH=/usr/bin:/bin", NULL};
  asyncrt_executor *ex;
  asyncrt_io *io;
  FOR_EACH_DRIVER(ex, io) {
    asyncrt_process_config cfg;
    int fds[2], pidfd = -1;
    char buf[256];
    CHECK_OK(asyncrt_pipe(fds));
    CHECK_INT(fcntl(fds[1], F_SETFL, fcntl(fds[1], F_GETFL) & ~O_NONBLOCK), 0);
    asyncrt_process_config_init(&cfg);
    cfg.argv = argv;
    cfg.envp = envp;
    cfg.cwd = "/";
    cfg.stdout_fd = fds[1];
    CHECK_OK(asyncrt_process_spawn(&cfg, NULL, &pidfd));
    close(fds[1]);
    memset(buf, 0, sizeof buf);
    read_all(ex, io, fds[0], buf, sizeof buf - 1);
    CHECK_STR(buf, "bar /\n");
    int64_t st = wait_child(ex, io, pidfd);
    CHECK(st >= 0 && WIFEXITED((int)st) && WEXITSTATUS((int)st) == 0);
    io_close_fd(ex, io, fds[0]);
    io_close_fd(ex, io, pidfd);
    DRIVER_DONE(ex, io);
  }
}

static void test_spawn_errors(void) {
  static const char *const missing[] = {"/nonexistent-asyncrt/program", NULL};
  static const char *const empty[] = {NULL};
  asyncrt_process_config cfg;
  int pidfd = 1234;
  asyncrt_process_config_init(&cfg);
  CHECK_INT(cfg.stdin_fd, -1);
  CHECK_INT(cfg.stdout_fd, -1);
  CHECK_INT(cfg.stderr_fd, -1);
  cfg.argv = missing;
  CHECK_STATUS(asyncrt_process_spawn(&cfg, NULL, &pidfd), ASYNCRT_EOS);
  CHECK_INT(asyncrt_last_errno(), ENOENT);
  CHECK_INT(pidfd, -1);
  cfg.argv = empty;
  CHECK_STATUS(asyncrt_process_spawn(&cfg, NULL, &pidfd), ASYNCRT_EINVAL);
  cfg.argv = NULL;
  CHECK_STATUS(asyncrt_process_spawn(&cfg, NULL, &pidfd), ASYNCRT_EINVAL);
  CHECK_STATUS(asyncrt_process_spawn(NULL, NULL, &pidfd), ASYNCRT_EINVAL);
  cfg.argv = missing;
  CHECK_STATUS(asyncrt_process_spawn(&cfg, NULL, NULL), ASYNCRT_EINVAL);
  CHECK_STATUS(asyncrt_process_kill(-1, SIGTERM), ASYNCRT_EINVAL);
  CHECK_STATUS(asyncrt_process_kill(0, -1), ASYNCRT_EINVAL);
}

int main(void) {
  CHECK_BEGIN();
  RUN(test_exit_statuses);
  RUN(test_two_children);
  RUN(test_kill);
  RUN(test_timeout);
  RUN(test_stdout_through_a_pipe);
  RUN(test_environment_and_cwd);
  RUN(test_spawn_errors);
  return CHECK_END("io_proc");
}
