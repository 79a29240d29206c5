/* Loading libasyncrt twice (see "Loading the library twice" in asyncrt.h):
 * the same file again is the library already loaded; a copy of it refuses
 * every call with ASYNCRT_EVERSION naming both files, and the library loaded
 * first (the one this program is linked with) goes on working.
 *
 * Usage: test_load_twice PATH_OF_THE_LINKED_LIBRARY */
#include "check.h" /* first: it sets _POSIX_C_SOURCE */
#include "testfut.h"

#include <dlfcn.h>
#include <fcntl.h>
#include <sys/stat.h>

static const char *library_path;
static char copy_dir[64];
static char copy_path[128];

/* Copies the library file to a fresh temporary directory; 0 on success. */
static int copy_library(void) {
  char buf[1 << 16];
  ssize_t n = 0;
  int in, out, rc = 0;
  strcpy(copy_dir, "/tmp/asyncrt_copy_XXXXXX");
  if (!mkdtemp(copy_dir)) return -1;
  snprintf(copy_path, sizeof copy_path, "%s/libasyncrt_copy.so", copy_dir);
  in = open(library_path, O_RDONLY);
  out = open(copy_path, O_WRONLY | O_CREAT | O_TRUNC, 0755);
  if (in < 0 || out < 0) rc = -1;
  while (rc == 0 && (n = read(in, buf, sizeof buf)) > 0) {
    if (write(out, buf, (size_t)n) != n) rc = -1;
  }
  if (n < 0) rc = -1;
  if (in >= 0) close(in);
  if (out >= 0 && close(out) != 0) rc = -1;
  return rc;
}

static void remove_copy(void) {
  if (copy_path[0]) unlink(copy_path);
  if (copy_dir[0]) rmdir(copy_dir);
}

/* The linked library still serves: an executor runs a future. */
static void check_linked_library_works(void) {
  asyncrt_executor *ex = tf_executor();
  tf_state st;
  asyncrt_future f;
  uint64_t out = 0;
  CHECK(ex != NULL);
  tf_init(&st);
  st.pendings = 3;
  st.value = 42;
  f = tf_future(&st);
  CHECK_OK(asyncrt_block_on(ex, &f, &out, TF_TIMEOUT_NS));
  CHECK_INT(out, 42);
  CHECK_OK(asyncrt_executor_free(ex));
}

static void test_the_same_path_is_the_same_library(void) {
  void *h = dlopen(library_path, RTLD_NOW | RTLD_LOCAL);
  CHECK(h != NULL);
  /* The loader handed back the object this program is linked with. */
  CHECK(dlsym(h, "asyncrt_executor_new") == (void *)asyncrt_executor_new);
  CHECK_INT(dlclose(h), 0);
  check_linked_library_works();
}

typedef int (*executor_new_fn)(const asyncrt_executor_config *, asyncrt_executor **);
typedef const char *(*last_error_fn)(void);
typedef int (*last_status_fn)(void);
typedef unsigned (*version_fn)(void);
typedef int (*check_version_fn)(unsigned);

static void test_a_copy_refuses_and_the_first_serves(void) {
  void *h;
  executor_new_fn copy_new;
  last_error_fn copy_last_error;
  last_status_fn copy_last_status;
  version_fn copy_version;
  check_version_fn copy_check_version;
  asyncrt_executor *ex = NULL;
  const char *message;
  CHECK_INT(copy_library(), 0);
  h = dlopen(copy_path, RTLD_NOW | RTLD_LOCAL);
  if (!h) fprintf(stderr, "  dlopen(%s): %s\n", copy_path, dlerror());
  CHECK(h != NULL);
  copy_new = (executor_new_fn)dlsym(h, "asyncrt_executor_new");
  copy_last_error = (last_error_fn)dlsym(h, "asyncrt_last_error");
  copy_last_status = (last_status_fn)dlsym(h, "asyncrt_last_status");
  copy_version = (version_fn)dlsym(h, "asyncrt_version");
  copy_check_version = (check_version_fn)dlsym(h, "asyncrt_check_version");
  CHECK(copy_new && copy_last_error && copy_last_status && copy_version && copy_check_version);
  CHECK((void *)copy_new != (void *)asyncrt_executor_new); /* a second object */

  /* What needs no runtime answers; everything else is refused. */
  CHECK_INT(copy_version(), ASYNCRT_VERSION_HEX);
  CHECK_STATUS(copy_check_version(ASYNCRT_VERSION_HEX), ASYNCRT_EVERSION);
  CHECK_STATUS(copy_new(NULL, &ex), ASYNCRT_EVERSION);
  CHECK(ex == NULL);
  CHECK_STATUS(copy_last_status(), ASYNCRT_EVERSION);
  message = copy_last_error();
  if (!strstr(message, "another") || !strstr(message, copy_path)) {
    check_fail_at(__FILE__, __LINE__);
    fprintf(stderr, "the copy's error does not say why: \"%s\"\n", message);
    return;
  }
  /* The copy's errors are its own: the linked library's last error is not
   * touched by them. */
  CHECK_STATUS(asyncrt_last_status(), ASYNCRT_OK);

  check_linked_library_works();
  /* Go code cannot be unloaded: the copy stays mapped, refusing. */
  dlclose(h);
  CHECK_STATUS(copy_new(NULL, &ex), ASYNCRT_EVERSION);
  check_linked_library_works();
}

int main(int argc, char **argv) {
  int rc;
  if (argc != 2) {
    fprintf(stderr, "usage: %s PATH_OF_THE_LINKED_LIBRARY\n", argv[0]);
    return 2;
  }
  library_path = argv[1];
  CHECK_BEGIN();
  RUN(test_the_same_path_is_the_same_library);
  RUN(test_a_copy_refuses_and_the_first_serves);
  rc = CHECK_END("load_twice");
  remove_copy();
  return rc;
}
