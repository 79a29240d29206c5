/* Signals (see "Signals" in asyncrt.h): the runtime's handlers are in place
 * once the library is loaded, and a handler the program installs afterwards
 * with SA_ONSTACK keeps working while the signal lands on the runtime's own
 * threads, running there on their alternate signal stacks. */
#define _XOPEN_SOURCE 700 /* SA_ONSTACK, sigaltstack */
#include "check.h"            /* first after that: it sets _POSIX_C_SOURCE */
#include "testfut.h"

#include <signal.h>

enum { SIGNALS = 50 };

static int handled;          /* handler runs */
static int off_main;         /* runs on a thread other than main's */
static int on_altstack;      /* runs, off main, on an alternate signal stack */
static pthread_t main_thread;

static void on_usr1(int sig, siginfo_t *info, void *ctx) {
  stack_t st;
  (void)sig;
  (void)info;
  (void)ctx;
  if (!pthread_equal(pthread_self(), main_thread)) {
    __atomic_add_fetch(&off_main, 1, __ATOMIC_SEQ_CST);
    if (sigaltstack(NULL, &st) == 0 && (st.ss_flags & SS_ONSTACK))
      __atomic_add_fetch(&on_altstack, 1, __ATOMIC_SEQ_CST);
  }
  __atomic_add_fetch(&handled, 1, __ATOMIC_SEQ_CST);
}

/* The runtime handles the crash signals (for its reports), SIGPIPE and its
 * preemption signal SIGURG, all on the signal stack. */
static void test_runtime_handlers_are_installed(void) {
  static const int sigs[] = {SIGSEGV, SIGBUS, SIGFPE, SIGPIPE, SIGURG};
  struct sigaction sa;
  size_t i;
  for (i = 0; i < sizeof sigs / sizeof sigs[0]; i++) {
    CHECK_INT(sigaction(sigs[i], NULL, &sa), 0);
    CHECK((sa.sa_flags & SA_SIGINFO) && sa.sa_sigaction != NULL);
    CHECK(sa.sa_flags & SA_ONSTACK);
  }
}

/* Keeps a thread-per-core executor's workers busy with yielding tasks until
 * *stop, so signals meet them inside polls and inside Go. */
typedef struct busy {
  asyncrt_executor *ex;
  int stop;
  int status;
} busy;

static void *keep_busy(void *arg) {
  busy *b = arg;
  while (!tf_get(&b->stop) && b->status == ASYNCRT_OK) {
    tf_state st;
    asyncrt_future f;
    uint64_t out = 0;
    tf_init(&st);
    st.pendings = 200;
    f = tf_future(&st);
    b->status = asyncrt_block_on(b->ex, &f, &out, TF_TIMEOUT_NS);
  }
  return NULL;
}

static void test_handler_installed_after_load(void) {
  asyncrt_executor_config cfg;
  struct sigaction sa;
  sigset_t usr1;
  busy b;
  pthread_t th;
  int i;
  memset(&b, 0, sizeof b);
  asyncrt_executor_config_init(&cfg);
  cfg.kind = ASYNCRT_EXECUTOR_THREADS;
  cfg.workers = 2;
  CHECK_OK(asyncrt_executor_new(&cfg, &b.ex));

  memset(&sa, 0, sizeof sa);
  sa.sa_sigaction = on_usr1;
  sa.sa_flags = SA_SIGINFO | SA_ONSTACK | SA_RESTART;
  sigemptyset(&sa.sa_mask);
  CHECK_INT(sigaction(SIGUSR1, &sa, NULL), 0);
  /* Blocked here (and in the thread made next, which inherits the mask): the
   * kernel hands the process's SIGUSR1 to one of the runtime's threads. */
  sigemptyset(&usr1);
  sigaddset(&usr1, SIGUSR1);
  CHECK_INT(pthread_sigmask(SIG_BLOCK, &usr1, NULL), 0);
  CHECK_INT(pthread_create(&th, NULL, keep_busy, &b), 0);

  for (i = 1; i <= SIGNALS && !check_current_failed; i++) {
    CHECK_INT(kill(getpid(), SIGUSR1), 0);
    /* One at a time: a signal sent while another is pending would merge. */
    if (!tf_wait_at_least(&handled, i, 5000)) {
      check_fail_at(__FILE__, __LINE__);
      fprintf(stderr, "signal %d was not handled within 5 s (%d handled)\n", i, tf_get(&handled));
    }
  }
  tf_set(&b.stop, 1);
  CHECK_INT(pthread_join(th, NULL), 0);
  CHECK_PASSED();
  CHECK_OK(b.status); /* the runtime was not disturbed */
  CHECK_INT(tf_get(&handled), SIGNALS);
  CHECK_INT(tf_get(&off_main), SIGNALS);
  CHECK_INT(tf_get(&on_altstack), SIGNALS);
  CHECK_OK(asyncrt_executor_free(b.ex));
  CHECK_INT(pthread_sigmask(SIG_UNBLOCK, &usr1, NULL), 0);
  signal(SIGUSR1, SIG_DFL);
}

int main(void) {
  main_thread = pthread_self();
  CHECK_BEGIN();
  RUN(test_runtime_handlers_are_installed);
  RUN(test_handler_installed_after_load);
  return CHECK_END("signals");
}
