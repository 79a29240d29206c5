/* Versions, status names, and the per-thread last error. */
#include "check.h"
#include "testfut.h"

static void test_version_numbers(void) {
  CHECK_INT(asyncrt_version(), ASYNCRT_VERSION_HEX);
  CHECK_STR(asyncrt_version_string(), ASYNCRT_VERSION_STRING);
  {
    char want[32];
    snprintf(want, sizeof want, "%d.%d.%d", ASYNCRT_VERSION_MAJOR, ASYNCRT_VERSION_MINOR,
             ASYNCRT_VERSION_PATCH);
    CHECK_STR(ASYNCRT_VERSION_STRING, want);
  }
}

static void test_check_version(void) {
  const unsigned major = ASYNCRT_VERSION_MAJOR, minor = ASYNCRT_VERSION_MINOR;
  CHECK_OK(asyncrt_check_version(ASYNCRT_VERSION_HEX));
  /* an older minor and any patch are served */
  CHECK_OK(asyncrt_check_version((major << 16) | 0u));
  CHECK_OK(asyncrt_check_version((major << 16) | (minor << 8) | 0xffu));
  /* a newer minor is not */
  CHECK_STATUS(asyncrt_check_version((major << 16) | ((minor + 1) << 8)), ASYNCRT_EVERSION);
  /* nor is another major, above or below */
  CHECK_STATUS(asyncrt_check_version(((major + 1) << 16) | (minor << 8)), ASYNCRT_EVERSION);
  CHECK_STATUS(asyncrt_check_version(0xff0000u), ASYNCRT_EVERSION);
  CHECK_STATUS(asyncrt_last_status(), ASYNCRT_EVERSION);
  CHECK(asyncrt_last_error()[0] != '\0');
}

static void test_status_str(void) {
  static const char *const names[] = {
      "ASYNCRT_OK",        "ASYNCRT_EINVAL",     "ASYNCRT_EHANDLE",  "ASYNCRT_ESHUTDOWN",
      "ASYNCRT_ENOMEM",    "ASYNCRT_ELIMIT",     "ASYNCRT_ECANCELLED", "ASYNCRT_EREENTRANT",
      "ASYNCRT_EBUSY",     "ASYNCRT_ETIMEDOUT",  "ASYNCRT_EFORKED",  "ASYNCRT_EVERSION",
      "ASYNCRT_EINTERNAL", "ASYNCRT_EFAILED",    "ASYNCRT_EAGAIN",   "ASYNCRT_ENOTSUP",
      "ASYNCRT_ESCOPE",   "ASYNCRT_ECLOSED",  "ASYNCRT_ELAGGED",  "ASYNCRT_EOS"};
  static const int unknown[] = {20, 99, 1000, 1001, -1, -2147483647 - 1, 2147483647};
  const int count = (int)(sizeof names / sizeof names[0]);
  int s, t;
  CHECK_INT(count, ASYNCRT_EOS + 1);
  for (s = 0; s < count; s++) {
    const char *str = asyncrt_status_str(s);
    size_t n = strlen(names[s]);
    CHECK(str != NULL);
    /* "ASYNCRT_EHANDLE: ..." -- the name, then the end or a colon */
    if (strncmp(str, names[s], n) != 0 || (str[n] != '\0' && str[n] != ':')) {
      check_fail_at(__FILE__, __LINE__);
      fprintf(stderr, "asyncrt_status_str(%d): got \"%s\", want \"%s: ...\"\n", s, str, names[s]);
      return;
    }
    for (t = 0; t < s; t++) {
      CHECK(strcmp(str, asyncrt_status_str(t)) != 0);
    }
  }
  for (s = 0; s < (int)(sizeof unknown / sizeof unknown[0]); s++) {
    CHECK_STR(asyncrt_status_str(unknown[s]), "unknown asyncrt status");
  }
}

typedef struct thread_errors {
  int fresh_status;
  char fresh_error[64];
  int failed_status;
  int failed_error_nonempty;
  int after_success_status;
} thread_errors;

static void *fail_on_fresh_thread(void *arg) {
  thread_errors *te = arg;
  asyncrt_executor *ex = NULL;
  te->fresh_status = asyncrt_last_status();
  snprintf(te->fresh_error, sizeof te->fresh_error, "%s", asyncrt_last_error());
  asyncrt_executor_new(NULL, NULL); /* EINVAL */
  te->failed_status = asyncrt_last_status();
  te->failed_error_nonempty = asyncrt_last_error()[0] != '\0';
  if (asyncrt_executor_new(NULL, &ex) == ASYNCRT_OK) {
    asyncrt_executor_free(ex);
  }
  te->after_success_status = asyncrt_last_status();
  return NULL;
}

static void test_last_error_per_thread(void) {
  thread_errors te;
  pthread_t th;
  char main_error[256];
  memset(&te, 0, sizeof te);

  CHECK_STATUS(asyncrt_task_status((asyncrt_task *)0x12345), ASYNCRT_EHANDLE);
  CHECK_STATUS(asyncrt_last_status(), ASYNCRT_EHANDLE);
  CHECK(asyncrt_last_error()[0] != '\0');
  snprintf(main_error, sizeof main_error, "%s", asyncrt_last_error());

  /* a successful call does not clear it */
  CHECK_OK(asyncrt_check_version(ASYNCRT_VERSION_HEX));
  CHECK_STATUS(asyncrt_last_status(), ASYNCRT_EHANDLE);
  CHECK_STR(asyncrt_last_error(), main_error);

  /* a thread asyncrt never saw starts clean and has its own */
  CHECK_INT(pthread_create(&th, NULL, fail_on_fresh_thread, &te), 0);
  CHECK_INT(pthread_join(th, NULL), 0);
  CHECK_STATUS(te.fresh_status, ASYNCRT_OK);
  CHECK_STR(te.fresh_error, "");
  CHECK_STATUS(te.failed_status, ASYNCRT_EINVAL);
  CHECK(te.failed_error_nonempty);
  CHECK_STATUS(te.after_success_status, ASYNCRT_EINVAL);

  /* and the main thread's is untouched */
  CHECK_STATUS(asyncrt_last_status(), ASYNCRT_EHANDLE);
  CHECK_STR(asyncrt_last_error(), main_error);

  /* the next failure replaces it */
  CHECK_STATUS(asyncrt_executor_new(NULL, NULL), ASYNCRT_EINVAL);
  CHECK_STATUS(asyncrt_last_status(), ASYNCRT_EINVAL);
  CHECK(asyncrt_last_error()[0] != '\0');
}

int main(void) {
  CHECK_BEGIN();
  RUN(test_version_numbers);
  RUN(test_check_version);
  RUN(test_status_str);
  RUN(test_last_error_per_thread);
  return CHECK_END("version");
}
