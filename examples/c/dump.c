/*
 * dump.c -- what is my program doing? asyncrt_executor_dump shows it.
 *
 * A small "server": a task named "server" opens a scope named
 * "connections" and awaits its join; two connections live in the scope,
 * one waiting on a 30 s timer, one waiting for data nobody sends. A
 * separate "ticker" sleeps for a minute. After one pass of the executor
 * everything waits, and the dump -- first the text tree, then the same
 * snapshot as JSON -- shows each task's id, name, state and what it waits
 * on, and each scope's owner and live children.
 *
 * The dump can be taken from any thread, even inside a poll, and never
 * stops the workers. Freeing the executor at the end cancels every task.
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "asyncrt.h"

static const uint64_t sec = 1000000000ull;

/* --- one future type for everything here -------------------------------------- */

enum role { SERVER, SLEEPER, IDLE };

typedef struct node {
  enum role role;
  const char *name;
  uint64_t sleep_ns;
  struct node *children[2];
  int started;
  asyncrt_scope *scope;
  asyncrt_future join, sleep_fut;
  int join_live, sleep_live;
  asyncrt_sleep sleep;
} node;

static const asyncrt_future_vtable node_vtable;

static int node_poll(void *self, asyncrt_context *cx, void *out) {
  node *n = self;
  int i, failure = 0;
  (void)out;
  if (!n->started) {
    n->started = 1;
    asyncrt_context_set_name(cx, n->name); /* the name the dump shows */
    if (n->role == SERVER) {
      asyncrt_scope_config cfg;
      asyncrt_scope_config_init(&cfg);
      cfg.name = "connections";
      if (asyncrt_scope_open(cx, &cfg, &n->scope) != ASYNCRT_OK) {
        return ASYNCRT_POLL_ERROR;
      }
      for (i = 0; i < 2; i++) {
        asyncrt_future f = {n->children[i], &node_vtable};
        asyncrt_scope_spawn(n->scope, &f, ASYNCRT_SPAWN_LOCAL, NULL);
      }
      n->join_live = asyncrt_scope_join(n->scope, &n->join) == ASYNCRT_OK;
    } else if (n->role == SLEEPER) {
      n->sleep_live = asyncrt_sleep_for(&n->sleep, n->sleep_ns, &n->sleep_fut) == ASYNCRT_OK;
    }
  }
  if (n->join_live) {
    return asyncrt_poll_with_waker(&n->join, asyncrt_context_waker(cx), NULL, &failure);
  }
  if (n->sleep_live) {
    return n->sleep_fut.vtable->poll(n->sleep_fut.self, cx, NULL);
  }
  return ASYNCRT_POLL_PENDING; /* IDLE: waits for data that never comes */
}

static void node_drop(void *self) {
  node *n = self;
  if (n->join_live) {
    n->join.vtable->drop(n->join.self);
  }
  if (n->sleep_live) {
    n->sleep_fut.vtable->drop(n->sleep_fut.self);
  }
  asyncrt_scope_free(n->scope);
}

static const asyncrt_future_vtable node_vtable = {sizeof(asyncrt_future_vtable), 0, node_poll,
                                                  node_drop, NULL};

/* --- the dump goes to stdout, chunk by chunk ------------------------------------ */

typedef struct sink {
  size_t bytes;
} sink;

static void to_stdout(const char *data, size_t len, void *user) {
  sink *s = user;
  fwrite(data, 1, len, stdout);
  s->bytes += len;
}

static int fail(const char *what, int status) {
  fprintf(stderr, "dump: %s failed: %s (%s)\n", what, asyncrt_status_str(status),
          asyncrt_last_error());
  return 1;
}

int main(void) {
  static node conn1, conn2, server, ticker;
  asyncrt_executor *ex = NULL;
  sink text = {0}, json = {0};
  int rc;

  conn1.role = SLEEPER;
  conn1.name = "conn-1";
  conn1.sleep_ns = 30 * sec;
  conn2.role = IDLE;
  conn2.name = "conn-2";
  server.role = SERVER;
  server.name = "server";
  server.children[0] = &conn1;
  server.children[1] = &conn2;
  ticker.role = SLEEPER;
  ticker.name = "ticker";
  ticker.sleep_ns = 60 * sec;

  if ((rc = asyncrt_executor_new(NULL, &ex)) != ASYNCRT_OK) {
    return fail("asyncrt_executor_new", rc);
  }
  {
    asyncrt_future fs = {&server, &node_vtable}, ft = {&ticker, &node_vtable};
    if ((rc = asyncrt_spawn(ex, &fs, ASYNCRT_SPAWN_LOCAL, NULL)) != ASYNCRT_OK ||
        (rc = asyncrt_spawn(ex, &ft, ASYNCRT_SPAWN_LOCAL, NULL)) != ASYNCRT_OK) {
      return fail("asyncrt_spawn", rc);
    }
  }
  /* One pass: every task runs until it waits. asyncrt_run never sleeps. */
  if ((rc = asyncrt_run(ex, NULL)) != ASYNCRT_OK) {
    return fail("asyncrt_run", rc);
  }

  printf("--- text ---\n");
  if ((rc = asyncrt_executor_dump(ex, ASYNCRT_DUMP_TEXT, to_stdout, &text)) != ASYNCRT_OK) {
    return fail("asyncrt_executor_dump(TEXT)", rc);
  }
  printf("--- json ---\n");
  if ((rc = asyncrt_executor_dump(ex, ASYNCRT_DUMP_JSON, to_stdout, &json)) != ASYNCRT_OK) {
    return fail("asyncrt_executor_dump(JSON)", rc);
  }
  printf("\n--- end ---\n");

  asyncrt_executor_free(ex); /* cancels the four tasks */
  if (text.bytes == 0 || json.bytes == 0) {
    fprintf(stderr, "dump: a dump wrote nothing\n");
    return 1;
  }
  printf("dump: success (%zu bytes of text, %zu of JSON)\n", text.bytes, json.bytes);
  return 0;
}
