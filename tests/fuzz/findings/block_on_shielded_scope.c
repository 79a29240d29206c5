/* An open finding of the API fuzzer, as a program: asyncrt_block_on with a
 * 1 ms timeout never returns when its root owns a shielded scope whose
 * child does not finish. The timeout cancels the root, an owner cancel,
 * which the shield ignores (ASYNCRT_SCOPE_SHIELD); the root waits for the
 * child, and block_on waits for the root. The header promises both that
 * block_on is bounded by its timeout and that a shielded scope ignores its
 * owner's cancel; one must give. On a thread-per-core executor the wait
 * ends after shutdown_timeout_ns, with ETIMEDOUT and the root not dropped.
 *
 *   cc -Iinclude tests/fuzz/findings/block_on_shielded_scope.c -Lbuild -lasyncrt \
 *      -Wl,-rpath,$PWD/build -o /tmp/shield && timeout 5 /tmp/shield
 *
 * prints the first line, then hangs (timeout's exit status 124). Not run by
 * make test. The fuzzer gives block_on roots no shields until this is
 * decided (ops_task.c, strip_shields). */
#include <stdio.h>
#include <stdlib.h>

#include "asyncrt.h"

static int child_poll(void *s, asyncrt_context *cx, void *o) {
  (void)s, (void)cx, (void)o;
  return ASYNCRT_POLL_PENDING; /* nothing ever wakes it */
}
static void no_drop(void *s) { (void)s; }
static const asyncrt_future_vtable child_vt = {sizeof child_vt, 0, child_poll, no_drop, NULL};

static asyncrt_scope *scope;
static int root_poll(void *s, asyncrt_context *cx, void *o) {
  (void)s, (void)o;
  if (!scope) {
    asyncrt_scope_config c;
    asyncrt_scope_config_init(&c);
    c.flags = ASYNCRT_SCOPE_SHIELD;
    asyncrt_future f = {NULL, &child_vt};
    if (asyncrt_scope_open(cx, &c, &scope) || asyncrt_scope_spawn(scope, &f, 0, NULL)) abort();
  }
  return ASYNCRT_POLL_PENDING;
}
static void root_drop(void *s) {
  (void)s;
  asyncrt_scope_free(scope);
}
static const asyncrt_future_vtable root_vt = {sizeof root_vt, 0, root_poll, root_drop, NULL};

int main(void) {
  asyncrt_executor *ex;
  if (asyncrt_executor_new(NULL, &ex)) abort();
  asyncrt_future f = {NULL, &root_vt};
  printf("block_on with a 1 ms timeout...\n");
  fflush(stdout);
  int rc = asyncrt_block_on(ex, &f, NULL, 1000000);
  printf("block_on returned %d\n", rc);
  asyncrt_executor_free(ex);
  return 0;
}
