/*
 * fanout.c -- one scope, a hundred children, one failure.
 *
 * A scope owns the tasks spawned into it, and its join completes only when
 * all of them are gone. Here 100 "requests" run in one scope. Request 42
 * fails after a few polls, naming its failure with a status and a message
 * (asyncrt_context_fail_info). The scope uses the default policy,
 * ASYNCRT_SCOPE_FIRST_ERROR: the first failure cancels the siblings.
 *
 * The cancel is asynchronous: instead of being dropped on the spot, each
 * sibling's vtable->cleanup runs -- here it "flushes" for a millisecond,
 * awaiting a sleep as any poll could -- and only then is the future
 * dropped. The join fails with request 42's status, and the scope keeps
 * the error record for asyncrt_scope_error_get.
 *
 * The poll and the cleanup are coroutines (bindings/c/asyncrt_coro.h): two
 * functions, so two arc_state fields, each reading top to bottom.
 *
 * Exits 0 when the counts are what the header promises: 100 drops, 99
 * cleanups, one error, the join failing with 42's status.
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "asyncrt.h"
#include "asyncrt_coro.h"

#define REQUESTS 100
#define FAILING 42
#define REFUSED 1001 /* a user status: values above 1000 are the program's */

static const uint64_t ms = 1000000ull;

/* --- a request: waits for a (long) reply; one of them fails ------------------ */

typedef struct request {
  arc_state co;         /* where request_poll resumes */
  arc_state cleanup_co; /* where request_cleanup resumes */
  int index;
  int work;            /* rounds of work done before failing (request 42) */
  asyncrt_sleep reply; /* the reply that would come in a minute */
  asyncrt_future reply_fut; /* zeroed until made; dropped in request_drop */
  asyncrt_sleep flush; /* what its cleanup awaits */
  asyncrt_future flush_fut;
} request;

static int cleanups_started, cleanups_finished, drops;

static int request_poll(void *self, asyncrt_context *cx, void *out) {
  request *r = self;
  asyncrt_error_info info;
  (void)out;
  ARC_BEGIN(r->co);
  if (r->index == FAILING) {
    for (r->work = 0; r->work < 3; r->work++) { /* some work first */
      ARC_PAUSE(r->co, cx);
    }
    memset(&info, 0, sizeof info);
    info.size = sizeof info;
    info.status = REFUSED;
    info.message = "request 42: connection refused by 10.0.0.42";
    asyncrt_context_fail_info(cx, &info);
    ARC_FINISH(r->co, ASYNCRT_POLL_ERROR);
  }
  asyncrt_sleep_for(&r->reply, 60000 * ms, &r->reply_fut);
  ARC_AWAIT(r->co, cx, &r->reply_fut, NULL);
  ARC_END(r->co);
}

/* Called instead of poll once the request is cancelled asynchronously. */
static int request_cleanup(void *self, asyncrt_context *cx) {
  request *r = self;
  ARC_BEGIN(r->cleanup_co);
  cleanups_started++;
  asyncrt_sleep_for(&r->flush, 1 * ms, &r->flush_fut);
  ARC_AWAIT(r->cleanup_co, cx, &r->flush_fut, NULL);
  cleanups_finished++;
  ARC_END(r->cleanup_co);
}

static void request_drop(void *self) {
  request *r = self;
  ARC_DROP_CHILD(&r->reply_fut); /* no-ops for a future never made */
  ARC_DROP_CHILD(&r->flush_fut);
  drops++;
}

static const asyncrt_future_vtable request_vtable = {sizeof(asyncrt_future_vtable), 0, request_poll,
                                                     request_drop, request_cleanup};

static int fail(const char *what, int status) {
  fprintf(stderr, "fanout: %s failed: %s (%s)\n", what, asyncrt_status_str(status),
          asyncrt_last_error());
  return 1;
}

int main(void) {
  static request requests[REQUESTS];
  asyncrt_executor *ex = NULL;
  asyncrt_scope *scope = NULL;
  asyncrt_scope_config cfg;
  asyncrt_future join;
  asyncrt_error_info err;
  size_t errors = 0;
  int i, rc, joined;

  if ((rc = asyncrt_executor_new(NULL, &ex)) != ASYNCRT_OK) {
    return fail("asyncrt_executor_new", rc);
  }
  asyncrt_scope_config_init(&cfg);
  cfg.name = "fanout"; /* FIRST_ERROR is the default */
  if ((rc = asyncrt_scope_open_top(ex, &cfg, &scope)) != ASYNCRT_OK) {
    return fail("asyncrt_scope_open_top", rc);
  }
  for (i = 0; i < REQUESTS; i++) {
    asyncrt_future f = {&requests[i], &request_vtable};
    requests[i].index = i;
    if ((rc = asyncrt_scope_spawn(scope, &f, ASYNCRT_SPAWN_LOCAL, NULL)) != ASYNCRT_OK) {
      return fail("asyncrt_scope_spawn", rc);
    }
  }
  printf("fanout: %d requests spawned into scope \"fanout\"\n", REQUESTS);

  /* The join runs the requests on this thread until the scope is empty. */
  if ((rc = asyncrt_scope_join(scope, &join)) != ASYNCRT_OK) {
    return fail("asyncrt_scope_join", rc);
  }
  joined = asyncrt_block_on(ex, &join, NULL, 10000 * (int64_t)ms);
  printf("fanout: the join failed with status %d (%s)\n", joined,
         joined == REFUSED ? "request 42's" : asyncrt_status_str(joined));

  if ((rc = asyncrt_scope_error_count(scope, &errors)) != ASYNCRT_OK) {
    return fail("asyncrt_scope_error_count", rc);
  }
  memset(&err, 0, sizeof err);
  err.size = sizeof err;
  if (errors > 0 && (rc = asyncrt_scope_error_get(scope, 0, &err)) != ASYNCRT_OK) {
    return fail("asyncrt_scope_error_get", rc);
  }
  printf("fanout: %zu error(s); the first: status %d from task %llu: \"%s\"\n", errors, err.status,
         (unsigned long long)err.task_id, err.message ? err.message : "(no message)");
  printf("fanout: %d futures dropped, %d cleanups started, %d finished\n", drops, cleanups_started,
         cleanups_finished);

  asyncrt_scope_free(scope); /* the message above dies with the handle */
  asyncrt_executor_free(ex);
  if (joined != REFUSED || errors != 1 || err.status != REFUSED || drops != REQUESTS ||
      cleanups_started != REQUESTS - 1 || cleanups_finished != REQUESTS - 1) {
    fprintf(stderr, "fanout: expected the join to fail with %d, 1 error, %d drops, %d cleanups\n",
            REFUSED, REQUESTS, REQUESTS - 1);
    return 1;
  }
  printf("fanout: success\n");
  return 0;
}
