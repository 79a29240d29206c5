/*
 * check.h -- the CHECK macros of the asyncrt C tests. No framework.
 *
 * A test program is a list of `static void test_x(void)` functions run with
 * RUN(test_x) between CHECK_BEGIN() and CHECK_END("name"). A failed CHECK
 * prints where it failed and what it got before what it wanted, then returns
 * from the test function; the program goes on with the next test and, at the
 * end, prints "FAIL name" and exits 1 (or "PASS name" and exits 0).
 *
 * A test whose CHECK failed returns early and leaks whatever it held (an
 * executor, a task): nothing is freed that the runtime might still touch.
 * CHECK_BEGIN arms alarm(30) as a last guard against a hang; every wait in
 * the tests has its own, shorter bound.
 */
#ifndef ASYNCRT_TEST_CHECK_H
#define ASYNCRT_TEST_CHECK_H

#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L
#endif

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "asyncrt.h"

static int check_failed_tests;
static int check_current_failed;
static const char *check_current_test = "";

static inline void check_fail_at(const char *file, int line) {
  check_current_failed = 1;
  fprintf(stderr, "  %s:%d: in %s: ", file, line, check_current_test);
}

#define CHECK(cond)                                                           \
  do {                                                                        \
    if (!(cond)) {                                                            \
      check_fail_at(__FILE__, __LINE__);                                      \
      fprintf(stderr, "CHECK(%s) is false\n", #cond);                         \
      return;                                                                 \
    }                                                                         \
  } while (0)

/* Integers of any signed or unsigned type up to 64 bits. */
#define CHECK_INT(got, want)                                                  \
  do {                                                                        \
    unsigned long long got_ = (unsigned long long)(got);                      \
    unsigned long long want_ = (unsigned long long)(want);                    \
    if (got_ != want_) {                                                      \
      check_fail_at(__FILE__, __LINE__);                                      \
      fprintf(stderr, "%s: got %lld (0x%llx), want %lld (0x%llx)\n", #got,   \
              (long long)got_, got_, (long long)want_, want_);                \
      return;                                                                 \
    }                                                                         \
  } while (0)

/* An asyncrt status; prints both names and the thread's last error. */
#define CHECK_STATUS(got, want)                                               \
  do {                                                                        \
    int got_ = (int)(got);                                                    \
    int want_ = (int)(want);                                                  \
    if (got_ != want_) {                                                      \
      check_fail_at(__FILE__, __LINE__);                                      \
      fprintf(stderr, "%s: got %d (%s), want %d (%s); last error: \"%s\"\n",  \
              #got, got_, asyncrt_status_str(got_), want_,                    \
              asyncrt_status_str(want_), asyncrt_last_error());               \
      return;                                                                 \
    }                                                                         \
  } while (0)

#define CHECK_OK(expr) CHECK_STATUS(expr, ASYNCRT_OK)

/* Returns if a helper called by the current test has already failed. */
#define CHECK_PASSED()                                                        \
  do {                                                                        \
    if (check_current_failed) {                                               \
      return;                                                                 \
    }                                                                         \
  } while (0)

#define CHECK_STR(got, want)                                                  \
  do {                                                                        \
    const char *got_ = (got);                                                 \
    const char *want_ = (want);                                               \
    if (got_ == NULL || strcmp(got_, want_) != 0) {                           \
      check_fail_at(__FILE__, __LINE__);                                      \
      fprintf(stderr, "%s: got \"%s\", want \"%s\"\n", #got,                 \
              got_ ? got_ : "(null)", want_);                                 \
      return;                                                                 \
    }                                                                         \
  } while (0)

static inline void check_on_alarm(int sig) {
  static const char msg[] = "FAIL: timed out after 30 s (alarm)\n";
  (void)sig;
  if (write(2, msg, sizeof msg - 1) < 0) {
    /* nothing more to do: we are exiting anyway */
  }
  _exit(1);
}

#define CHECK_BEGIN()                                                         \
  do {                                                                        \
    setvbuf(stdout, NULL, _IONBF, 0);                                         \
    signal(SIGALRM, check_on_alarm);                                          \
    alarm(30);                                                                \
  } while (0)

#define RUN(test)                                                             \
  do {                                                                        \
    check_current_test = #test;                                               \
    check_current_failed = 0;                                                 \
    test();                                                                   \
    if (check_current_failed) {                                               \
      check_failed_tests++;                                                   \
      printf("  FAIL %s\n", #test);                                           \
    } else {                                                                  \
      printf("  ok   %s\n", #test);                                           \
    }                                                                         \
  } while (0)

#define CHECK_END(name)                                                       \
  (check_failed_tests                                                         \
       ? (printf("FAIL %s (%d test%s failed)\n", name, check_failed_tests,    \
                 check_failed_tests == 1 ? "" : "s"),                         \
          1)                                                                  \
       : (printf("PASS %s\n", name), 0))

#endif /* ASYNCRT_TEST_CHECK_H */
