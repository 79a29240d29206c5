/* scopefut.c -- see scopefut.h. */
#include "scopefut.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int sf_seq_counter;

int sf_seq(void) { return tf_add(&sf_seq_counter, 1); }

static int sf_finish(sf_node *n, int result) {
  if (result == ASYNCRT_POLL_READY || result == ASYNCRT_POLL_ERROR) {
    tf_set(&n->finished, 1);
  }
  return result;
}

static void sf_first_poll(sf_node *n, asyncrt_context *cx) {
  int i, rc;
  n->first_poll_seq = sf_seq();
  n->first_thread = pthread_self();
  n->executor = asyncrt_context_executor(cx);
  if (n->name != NULL) {
    asyncrt_context_set_name(cx, n->name);
  }
  if (!n->opens_scope) {
    return;
  }
  rc = asyncrt_scope_open(cx, &n->cfg, &n->scope);
  tf_set(&n->open_rc, rc);
  if (rc != ASYNCRT_OK) {
    tf_set(&n->join_rc, rc);
    return;
  }
  asyncrt_scope_id(n->scope, &n->scope_id);
  for (i = 0; i < n->nchildren; i++) {
    rc = sf_scope_spawn(n->scope, n->children[i], n->child_flags,
                        n->child_tasks != NULL ? &n->child_tasks[i] : NULL);
    if (rc == ASYNCRT_OK) {
      tf_add(&n->spawned, 1);
    } else if (tf_get(&n->spawn_rc) == ASYNCRT_OK) {
      tf_set(&n->spawn_rc, rc);
    }
  }
  if (n->then == SF_JOIN) {
    rc = asyncrt_scope_join(n->scope, &n->join);
    tf_set(&n->join_rc, rc);
    n->join_live = rc == ASYNCRT_OK;
  }
}

static int sf_poll_join(sf_node *n, asyncrt_context *cx) {
  int r, failure = 0;
  if (!n->join_live) {
    asyncrt_context_fail(cx, tf_get(&n->join_rc) ? tf_get(&n->join_rc) : ASYNCRT_EINVAL);
    return ASYNCRT_POLL_ERROR;
  }
  r = asyncrt_poll_with_waker(&n->join, asyncrt_context_waker(cx), NULL, &failure);
  if (r == ASYNCRT_POLL_PENDING) {
    return r;
  }
  n->join.vtable->drop(n->join.self);
  n->join_live = 0;
  tf_set(&n->join_failure, r == ASYNCRT_POLL_ERROR ? failure : 0);
  tf_set(&n->join_result, r);
  return ASYNCRT_POLL_READY;
}

static int sf_poll_sleep(asyncrt_sleep *s, asyncrt_future *f, int *live, uint64_t ns,
                         asyncrt_context *cx) {
  int r;
  if (!*live) {
    if (asyncrt_sleep_for(s, ns, f) != ASYNCRT_OK) {
      asyncrt_context_fail(cx, ASYNCRT_EINVAL);
      return ASYNCRT_POLL_ERROR;
    }
    *live = 1;
  }
  r = f->vtable->poll(f->self, cx, NULL);
  if (r != ASYNCRT_POLL_PENDING) {
    f->vtable->drop(f->self);
    *live = 0;
  }
  return r;
}

static void sf_fail_info(asyncrt_context *cx, int status, const char *message, void *value,
                         void (*value_free)(void *)) {
  asyncrt_error_info info;
  memset(&info, 0, sizeof info);
  info.size = sizeof info;
  info.status = status;
  info.message = message;
  info.value = value;
  info.value_free = value_free;
  asyncrt_context_fail_info(cx, &info);
}

static int sf_poll(void *self, asyncrt_context *cx, void *out) {
  sf_node *n = self;
  int r;
  (void)out;
  if (tf_get(&n->finished) || tf_get(&n->drops) || tf_get(&n->cleanup_calls)) {
    tf_add(&n->bad_polls, 1);
  }
  if (tf_add(&n->polls, 1) == 1) {
    sf_first_poll(n, cx);
  }
  if (n->hook != NULL && (r = n->hook(n, cx)) != SF_CONTINUE) {
    return sf_finish(n, r);
  }
  if (n->step < n->steps) {
    n->step++;
    asyncrt_waker_wake_by_ref(asyncrt_context_waker(cx));
    return ASYNCRT_POLL_PENDING;
  }
  switch (n->then) {
  case SF_READY:
    return sf_finish(n, ASYNCRT_POLL_READY);
  case SF_FAIL:
    sf_fail_info(cx, n->fail_status, n->fail_message, n->fail_value, n->fail_value_free);
    return sf_finish(n, ASYNCRT_POLL_ERROR);
  case SF_JOIN:
    return sf_finish(n, sf_poll_join(n, cx));
  case SF_SLEEP:
    return sf_finish(n, sf_poll_sleep(&n->sleep, &n->sleep_fut, &n->sleep_live, n->sleep_ns, cx));
  default: /* SF_PARK */
    if (tf_get(&n->release)) {
      return sf_finish(n, ASYNCRT_POLL_READY);
    }
    if (!tf_get(&n->waker_flag)) {
      asyncrt_waker_clone(asyncrt_context_waker(cx), &n->waker);
      tf_set(&n->waker_flag, 1);
    }
    return ASYNCRT_POLL_PENDING;
  }
}

static int sf_cleanup(void *self, asyncrt_context *cx) {
  sf_node *n = self;
  int r;
  if (tf_get(&n->cleanups_done) || tf_get(&n->drops)) {
    tf_add(&n->bad_cleanups, 1);
  }
  if (tf_add(&n->cleanup_calls, 1) == 1) {
    n->cleanup_start_clock = asyncrt_context_now(cx);
    tf_set(&n->cleanup_start_seq, sf_seq());
  }
  switch (n->cleanup) {
  case SF_CLEANUP_FAIL:
    asyncrt_context_fail(cx, n->cleanup_fail_status);
    r = ASYNCRT_POLL_ERROR;
    break;
  case SF_CLEANUP_SLEEP:
    r = sf_poll_sleep(&n->cleanup_sleep, &n->cleanup_fut, &n->cleanup_live, n->cleanup_sleep_ns,
                      cx);
    if (r == ASYNCRT_POLL_PENDING) {
      return r;
    }
    break;
  case SF_CLEANUP_FOREVER:
    return ASYNCRT_POLL_PENDING;
  default:
    r = ASYNCRT_POLL_READY;
    break;
  }
  n->cleanup_end_clock = asyncrt_context_now(cx);
  tf_set(&n->cleanup_end_seq, sf_seq());
  tf_set(&n->cleanups_done, 1);
  return r;
}

static void sf_drop(void *self) {
  sf_node *n = self;
  n->drop_thread = pthread_self();
  if (n->join_live) {
    n->join.vtable->drop(n->join.self);
    n->join_live = 0;
  }
  if (n->sleep_live) {
    n->sleep_fut.vtable->drop(n->sleep_fut.self);
    n->sleep_live = 0;
  }
  if (n->cleanup_live) {
    n->cleanup_fut.vtable->drop(n->cleanup_fut.self);
    n->cleanup_live = 0;
  }
  if (n->scope != NULL && !n->keep_scope) {
    asyncrt_scope_free(n->scope);
    n->scope = NULL;
  }
  asyncrt_waker_drop(&n->waker);
  tf_set(&n->drop_seq, sf_seq());
  tf_add(&n->drops, 1);
}

static const asyncrt_future_vtable sf_vtable_absent = {offsetof(asyncrt_future_vtable, cleanup), 0,
                                                       sf_poll, sf_drop, NULL};
static const asyncrt_future_vtable sf_vtable_null = {sizeof(asyncrt_future_vtable), 0, sf_poll,
                                                     sf_drop, NULL};
static const asyncrt_future_vtable sf_vtable_cleanup = {sizeof(asyncrt_future_vtable), 0, sf_poll,
                                                        sf_drop, sf_cleanup};

void sf_node_init(sf_node *n) {
  memset(n, 0, sizeof *n);
  asyncrt_scope_config_init(&n->cfg);
  n->then = SF_PARK;
  n->cleanup = SF_CLEANUP_NULL;
  n->join_result = -1;
}

asyncrt_future sf_future(sf_node *n) {
  asyncrt_future f;
  f.self = n;
  f.vtable = n->cleanup == SF_CLEANUP_ABSENT ? &sf_vtable_absent
             : n->cleanup == SF_CLEANUP_NULL ? &sf_vtable_null
                                             : &sf_vtable_cleanup;
  return f;
}

int sf_spawn(asyncrt_executor *ex, sf_node *n, unsigned flags, asyncrt_task **out) {
  asyncrt_future f = sf_future(n);
  return asyncrt_spawn(ex, &f, flags, out);
}

int sf_scope_spawn(asyncrt_scope *s, sf_node *n, unsigned flags, asyncrt_task **out) {
  asyncrt_future f = sf_future(n);
  return asyncrt_scope_spawn(s, &f, flags, out);
}

void sf_wake(sf_node *n) {
  if (tf_get(&n->waker_flag)) {
    asyncrt_waker_wake_by_ref(&n->waker);
  }
}

void sf_release(sf_node *n) {
  tf_set(&n->release, 1);
  sf_wake(n);
}

asyncrt_executor *sf_executor(unsigned kind, unsigned workers, unsigned clock) {
  asyncrt_executor_config cfg;
  asyncrt_executor *ex = NULL;
  int rc;
  asyncrt_executor_config_init(&cfg);
  cfg.kind = kind;
  cfg.workers = workers;
  cfg.clock = clock;
  rc = asyncrt_executor_new(&cfg, &ex);
  if (rc != ASYNCRT_OK) {
    fprintf(stderr, "  asyncrt_executor_new(kind %u, %u workers, clock %u): got %s (%s)\n", kind,
            workers, clock, asyncrt_status_str(rc), asyncrt_last_error());
    return NULL;
  }
  return ex;
}

asyncrt_executor *sf_local_test_clock(void) {
  return sf_executor(ASYNCRT_EXECUTOR_LOCAL, 0, ASYNCRT_CLOCK_TEST);
}

asyncrt_scope *sf_top(asyncrt_executor *ex, unsigned flags, uint64_t timeout_ns, const char *name) {
  asyncrt_scope_config cfg;
  asyncrt_scope *s = NULL;
  int rc;
  asyncrt_scope_config_init(&cfg);
  cfg.flags = flags;
  cfg.timeout_ns = timeout_ns;
  cfg.name = name;
  rc = asyncrt_scope_open_top(ex, &cfg, &s);
  if (rc != ASYNCRT_OK) {
    fprintf(stderr, "  asyncrt_scope_open_top(flags %u): got %s (%s)\n", flags,
            asyncrt_status_str(rc), asyncrt_last_error());
    return NULL;
  }
  return s;
}

int sf_join(asyncrt_executor *ex, asyncrt_scope *s, int64_t timeout_ns) {
  asyncrt_future join;
  int rc = asyncrt_scope_join(s, &join);
  if (rc != ASYNCRT_OK) {
    return rc;
  }
  return asyncrt_block_on(ex, &join, NULL, timeout_ns > TF_TIMEOUT_NS ? timeout_ns : TF_TIMEOUT_NS);
}

uint64_t sf_task_id(asyncrt_task *task) {
  uint64_t id = 0;
  return asyncrt_task_id(task, &id) == ASYNCRT_OK ? id : 0;
}

uint64_t sf_scope_id(asyncrt_scope *s) {
  uint64_t id = 0;
  return asyncrt_scope_id(s, &id) == ASYNCRT_OK ? id : 0;
}

int sf_wait_task(asyncrt_task *task, int timeout_ms) {
  int64_t deadline = tf_now_ns() + (int64_t)timeout_ms * TF_MS_NS;
  int rc;
  while ((rc = asyncrt_task_status(task)) == ASYNCRT_EAGAIN && tf_now_ns() < deadline) {
    tf_sleep_ms(1);
  }
  return rc;
}

void sf_text_write(const char *data, size_t len, void *user) {
  sf_text *t = user;
  t->writes++;
  if (t->len + len + 1 > t->cap) {
    size_t cap = t->cap ? t->cap : 4096;
    char *p;
    while (cap < t->len + len + 1) {
      cap *= 2;
    }
    p = realloc(t->data, cap);
    if (p == NULL) {
      t->oom = 1;
      return;
    }
    t->data = p;
    t->cap = cap;
  }
  memcpy(t->data + t->len, data, len);
  t->len += len;
  t->data[t->len] = '\0';
}

void sf_text_free(sf_text *t) {
  free(t->data);
  memset(t, 0, sizeof *t);
}

int sf_dump(asyncrt_executor *ex, unsigned format, sf_text *t) {
  sf_text_free(t);
  return asyncrt_executor_dump(ex, format, sf_text_write, t);
}

int sf_line_with(const char *text, const char *needle, char *line, size_t cap) {
  const char *hit = text != NULL ? strstr(text, needle) : NULL;
  const char *start, *end;
  size_t len;
  if (hit == NULL || cap == 0) {
    return 0;
  }
  for (start = hit; start > text && start[-1] != '\n'; start--) {
  }
  for (end = hit; *end != '\0' && *end != '\n'; end++) {
  }
  len = (size_t)(end - start);
  if (len > cap - 1) {
    len = cap - 1;
  }
  memcpy(line, start, len);
  line[len] = '\0';
  return 1;
}

static int sf_is_digit(char c) { return c >= '0' && c <= '9'; }

int sf_has_number(const char *text, uint64_t n) {
  char num[32];
  const char *p = text;
  size_t len;
  snprintf(num, sizeof num, "%llu", (unsigned long long)n);
  len = strlen(num);
  while (p != NULL && (p = strstr(p, num)) != NULL) {
    if ((p == text || !sf_is_digit(p[-1])) && !sf_is_digit(p[len])) {
      return 1;
    }
    p++;
  }
  return 0;
}
