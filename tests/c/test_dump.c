/* asyncrt_executor_dump: the text tree and the JSON document of a running
 * executor -- names, ids, states, nesting -- taken from outside, from
 * inside a poll, and from a thread-per-core executor's caller; and its
 * refusals.
 *
 * The JSON is checked by a small validating parser below (strict JSON:
 * objects, arrays, strings with escapes, numbers, literals), which also
 * collects, per element of "tasks" and "scopes", every string and integer
 * inside it, so a test can ask "does this task's record hold its id, its
 * name and its state" without assuming key names the header does not give. */
#include "check.h" /* first: it sets _POSIX_C_SOURCE */
#include "scopefut.h"

#include <stdint.h>
#include <stdlib.h>

#define SEC 1000000000ull

/* --- a minimal JSON checker ---------------------------------------------------- */

#define JV_MAX_ITEMS 64
#define JV_MAX_STR 128
#define JV_MAX_ELEMS 16
#define JV_MAX_DEPTH 32

/* The strings and integers found inside one element. */
typedef struct jv_elem {
  char strings[JV_MAX_ITEMS][JV_MAX_STR];
  int nstrings;
  uint64_t numbers[JV_MAX_ITEMS];
  int nnumbers;
} jv_elem;

typedef struct jv_doc {
  jv_elem tasks[JV_MAX_ELEMS], scopes[JV_MAX_ELEMS];
  int ntasks, nscopes; /* -1: the key is missing or not an array */
  char error[96];
} jv_doc;

static void jv_ws(const char **p) {
  while (**p == ' ' || **p == '\t' || **p == '\n' || **p == '\r') {
    (*p)++;
  }
}

static int jv_hex(char c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

/* A string at *p (which points at its quote), decoded into out (truncated;
 * \u escapes other than ASCII become '?'). */
static int jv_string(const char **p, char *out, size_t cap) {
  size_t n = 0;
  const char *s = *p;
  if (*s != '"') {
    return 0;
  }
  s++;
  for (;;) {
    char c = *s++;
    if (c == '\0' || (unsigned char)c < 0x20) {
      return 0;
    }
    if (c == '"') {
      break;
    }
    if (c == '\\') {
      char e = *s++;
      switch (e) {
      case '"': case '\\': case '/': c = e; break;
      case 'b': c = '\b'; break;
      case 'f': c = '\f'; break;
      case 'n': c = '\n'; break;
      case 'r': c = '\r'; break;
      case 't': c = '\t'; break;
      case 'u': {
        unsigned v = 0;
        int i;
        for (i = 0; i < 4; i++) {
          if (!jv_hex(s[i])) {
            return 0;
          }
          v = v * 16 + (unsigned)(s[i] <= '9' ? s[i] - '0' : (s[i] | 0x20) - 'a' + 10);
        }
        s += 4;
        c = v < 0x80 ? (char)v : '?';
        break;
      }
      default:
        return 0;
      }
    }
    if (out != NULL && n + 1 < cap) {
      out[n++] = c;
    }
  }
  if (out != NULL && cap > 0) {
    out[n] = '\0';
  }
  *p = s;
  return 1;
}

static int jv_number(const char **p, jv_elem *e) {
  const char *s = *p;
  int integer = 1;
  uint64_t v = 0;
  if (*s == '-') {
    integer = 0;
    s++;
  }
  if (*s == '0') {
    s++;
  } else if (*s >= '1' && *s <= '9') {
    while (*s >= '0' && *s <= '9') {
      v = v * 10 + (uint64_t)(*s - '0');
      s++;
    }
  } else {
    return 0;
  }
  if (*s == '.') {
    integer = 0;
    s++;
    if (!(*s >= '0' && *s <= '9')) {
      return 0;
    }
    while (*s >= '0' && *s <= '9') {
      s++;
    }
  }
  if (*s == 'e' || *s == 'E') {
    integer = 0;
    s++;
    if (*s == '+' || *s == '-') {
      s++;
    }
    if (!(*s >= '0' && *s <= '9')) {
      return 0;
    }
    while (*s >= '0' && *s <= '9') {
      s++;
    }
  }
  if (integer && e != NULL && e->nnumbers < JV_MAX_ITEMS) {
    e->numbers[e->nnumbers++] = v;
  }
  *p = s;
  return 1;
}

static int jv_literal(const char **p, const char *word) {
  size_t n = strlen(word);
  if (strncmp(*p, word, n) != 0) {
    return 0;
  }
  *p += n;
  return 1;
}

/* One value at *p; strings and integers inside go to e (unless NULL). */
static int jv_value(const char **p, int depth, jv_elem *e) {
  char buf[JV_MAX_STR];
  if (depth > JV_MAX_DEPTH) {
    return 0;
  }
  jv_ws(p);
  switch (**p) {
  case '{':
    (*p)++;
    jv_ws(p);
    if (**p == '}') {
      (*p)++;
      return 1;
    }
    for (;;) {
      jv_ws(p);
      if (!jv_string(p, NULL, 0)) {
        return 0;
      }
      jv_ws(p);
      if (**p != ':') {
        return 0;
      }
      (*p)++;
      if (!jv_value(p, depth + 1, e)) {
        return 0;
      }
      jv_ws(p);
      if (**p == ',') {
        (*p)++;
        continue;
      }
      if (**p == '}') {
        (*p)++;
        return 1;
      }
      return 0;
    }
  case '[':
    (*p)++;
    jv_ws(p);
    if (**p == ']') {
      (*p)++;
      return 1;
    }
    for (;;) {
      if (!jv_value(p, depth + 1, e)) {
        return 0;
      }
      jv_ws(p);
      if (**p == ',') {
        (*p)++;
        continue;
      }
      if (**p == ']') {
        (*p)++;
        return 1;
      }
      return 0;
    }
  case '"':
    if (!jv_string(p, buf, sizeof buf)) {
      return 0;
    }
    if (e != NULL && e->nstrings < JV_MAX_ITEMS) {
      memcpy(e->strings[e->nstrings++], buf, sizeof buf);
    }
    return 1;
  case 't':
    return jv_literal(p, "true");
  case 'f':
    return jv_literal(p, "false");
  case 'n':
    return jv_literal(p, "null");
  default:
    return jv_number(p, e);
  }
}

/* An array at *p whose elements are collected one by one into elems. */
static int jv_elements(const char **p, jv_elem *elems, int *count) {
  *count = 0;
  jv_ws(p);
  if (**p != '[') {
    return 0;
  }
  (*p)++;
  jv_ws(p);
  if (**p == ']') {
    (*p)++;
    return 1;
  }
  for (;;) {
    jv_elem *e = *count < JV_MAX_ELEMS ? &elems[*count] : NULL;
    if (e != NULL) {
      memset(e, 0, sizeof *e);
    }
    if (!jv_value(p, 1, e)) {
      return 0;
    }
    (*count)++;
    jv_ws(p);
    if (**p == ',') {
      (*p)++;
      continue;
    }
    if (**p == ']') {
      (*p)++;
      return 1;
    }
    return 0;
  }
}

/* Parses a whole document: one object, nothing after it. Returns 1 if it
 * is valid JSON; the tasks and scopes arrays are collected into doc. */
static int jv_parse(const char *text, jv_doc *doc) {
  const char *p = text;
  char key[JV_MAX_STR];
  doc->ntasks = doc->nscopes = -1;
  doc->error[0] = '\0';
  if (text == NULL) {
    snprintf(doc->error, sizeof doc->error, "no text");
    return 0;
  }
  jv_ws(&p);
  if (*p != '{') {
    goto bad;
  }
  p++;
  jv_ws(&p);
  if (*p == '}') {
    p++;
  } else {
    for (;;) {
      jv_ws(&p);
      if (!jv_string(&p, key, sizeof key)) {
        goto bad;
      }
      jv_ws(&p);
      if (*p != ':') {
        goto bad;
      }
      p++;
      jv_ws(&p);
      if (strcmp(key, "tasks") == 0 && *p == '[') {
        if (!jv_elements(&p, doc->tasks, &doc->ntasks)) {
          goto bad;
        }
      } else if (strcmp(key, "scopes") == 0 && *p == '[') {
        if (!jv_elements(&p, doc->scopes, &doc->nscopes)) {
          goto bad;
        }
      } else if (!jv_value(&p, 1, NULL)) {
        goto bad;
      }
      jv_ws(&p);
      if (*p == ',') {
        p++;
        continue;
      }
      if (*p == '}') {
        p++;
        break;
      }
      goto bad;
    }
  }
  jv_ws(&p);
  if (*p == '\0') {
    return 1;
  }
bad:
  snprintf(doc->error, sizeof doc->error, "invalid JSON at byte %ld: \"%.40s\"",
           (long)(p - text), p);
  return 0;
}

static int jv_has_string(const jv_elem *e, const char *s) {
  int i;
  for (i = 0; i < e->nstrings; i++) {
    if (strcmp(e->strings[i], s) == 0) {
      return 1;
    }
  }
  return 0;
}

static int jv_has_number(const jv_elem *e, uint64_t n) {
  int i;
  for (i = 0; i < e->nnumbers; i++) {
    if (e->numbers[i] == n) {
      return 1;
    }
  }
  return 0;
}

/* The element of elems holding the number id, or NULL. */
static const jv_elem *jv_find(const jv_elem *elems, int count, uint64_t id) {
  int i;
  for (i = 0; i < count && i < JV_MAX_ELEMS; i++) {
    if (jv_has_number(&elems[i], id)) {
      return &elems[i];
    }
  }
  return NULL;
}

/* The checker must itself be able to say no. */
static void test_json_checker(void) {
  static jv_doc doc;
  CHECK(jv_parse("{\"tasks\": [{\"id\": 3, \"name\": \"a\\\"b\"}], \"scopes\": []}", &doc));
  CHECK_INT(doc.ntasks, 1);
  CHECK_INT(doc.nscopes, 0);
  CHECK(jv_has_number(&doc.tasks[0], 3));
  CHECK(jv_has_string(&doc.tasks[0], "a\"b"));
  CHECK(!jv_parse("{\"tasks\": [}", &doc));
  CHECK(!jv_parse("{\"tasks\": [1,]}", &doc));
  CHECK(!jv_parse("{\"a\": \"x\ny\"}", &doc)); /* raw control character */
  CHECK(!jv_parse("{\"a\": 1} {}", &doc));
  CHECK(!jv_parse("{\"a\": 01}", &doc));
  CHECK(!jv_parse("{'a': 1}", &doc));
  CHECK(!jv_parse("", &doc));
}

/* --- the dump of a small tree ---------------------------------------------------- */

/* The number of spaces that start a line. */
static int indent_of(const char *line) {
  int n = 0;
  while (line[n] == ' ') {
    n++;
  }
  return n;
}

/* A task "main-task" waits on the join of scope "fanout-scope", whose two
 * children wait: "sleeper-child" on a 10 s sleep, "parked-child" on a
 * waker nobody calls. */
static void test_text_and_json_of_a_tree(void) {
  asyncrt_executor *ex = sf_local_test_clock();
  sf_node main_node, kids[2], *ptrs[2];
  asyncrt_task *main_task = NULL, *kid_tasks[2] = {NULL, NULL};
  static jv_doc doc;
  const jv_elem *e;
  sf_text text;
  char line[512];
  uint64_t main_id, scope_id, kid_ids[2];
  int main_indent, scope_indent, i;
  const char *kid_names[2] = {"sleeper-child", "parked-child"};
  CHECK(ex != NULL);
  memset(&text, 0, sizeof text);
  sf_node_init(&main_node);
  main_node.opens_scope = 1;
  main_node.cfg.name = "fanout-scope";
  main_node.children = ptrs;
  main_node.nchildren = 2;
  main_node.child_tasks = kid_tasks;
  main_node.then = SF_JOIN;
  for (i = 0; i < 2; i++) {
    sf_node_init(&kids[i]);
    kids[i].name = kid_names[i];
    ptrs[i] = &kids[i];
  }
  kids[0].then = SF_SLEEP;
  kids[0].sleep_ns = 10 * SEC;
  CHECK_OK(sf_spawn(ex, &main_node, 0, &main_task));
  CHECK_OK(asyncrt_task_set_name(main_task, "main-task"));
  CHECK_OK(asyncrt_run(ex, NULL));
  CHECK_INT(tf_get(&main_node.spawned), 2);
  main_id = sf_task_id(main_task);
  scope_id = main_node.scope_id;
  kid_ids[0] = sf_task_id(kid_tasks[0]);
  kid_ids[1] = sf_task_id(kid_tasks[1]);
  CHECK(main_id != 0 && scope_id != 0 && kid_ids[0] != 0 && kid_ids[1] != 0);

  CHECK_OK(sf_dump(ex, ASYNCRT_DUMP_TEXT, &text));
  CHECK(text.writes >= 1 && !text.oom && text.data != NULL);
  CHECK_INT(strlen(text.data), text.len); /* no NUL inside */
  CHECK(sf_line_with(text.data, "main-task", line, sizeof line));
  CHECK(sf_has_number(line, main_id));
  CHECK(strstr(line, "waiting") != NULL);
  CHECK(sf_has_number(line, scope_id)); /* what it waits on: the scope's join */
  main_indent = indent_of(line);
  CHECK(sf_line_with(text.data, "fanout-scope", line, sizeof line));
  CHECK(sf_has_number(line, scope_id));
  scope_indent = indent_of(line);
  CHECK(scope_indent > main_indent);
  for (i = 0; i < 2; i++) {
    CHECK(sf_line_with(text.data, kid_names[i], line, sizeof line));
    CHECK(sf_has_number(line, kid_ids[i]));
    CHECK(strstr(line, "waiting") != NULL);
    CHECK(indent_of(line) > scope_indent);
  }

  CHECK_OK(sf_dump(ex, ASYNCRT_DUMP_JSON, &text));
  CHECK(text.data != NULL && !text.oom);
  if (!jv_parse(text.data, &doc)) {
    fprintf(stderr, "  %s\n", doc.error);
    CHECK(0);
  }
  CHECK_INT(doc.ntasks, 3);
  CHECK_INT(doc.nscopes, 1);
  e = jv_find(doc.tasks, doc.ntasks, main_id);
  CHECK(e != NULL);
  CHECK(jv_has_string(e, "main-task"));
  CHECK(jv_has_string(e, "waiting"));
  for (i = 0; i < 2; i++) {
    e = jv_find(doc.tasks, doc.ntasks, kid_ids[i]);
    CHECK(e != NULL);
    CHECK(jv_has_string(e, kid_names[i]));
    CHECK(jv_has_string(e, "waiting"));
    CHECK(jv_has_number(e, scope_id)); /* its parent scope */
  }
  CHECK(jv_has_number(&doc.scopes[0], scope_id));
  CHECK(jv_has_string(&doc.scopes[0], "fanout-scope"));
  CHECK(jv_has_number(&doc.scopes[0], main_id)); /* its owner */

  /* refusals */
  CHECK_STATUS(asyncrt_executor_dump(ex, 2u, sf_text_write, &text), ASYNCRT_EINVAL);
  CHECK_STATUS(asyncrt_executor_dump(ex, 0xffffffffu, sf_text_write, &text), ASYNCRT_EINVAL);
  CHECK_STATUS(asyncrt_executor_dump(ex, ASYNCRT_DUMP_TEXT, NULL, NULL), ASYNCRT_EINVAL);
  CHECK_STATUS(asyncrt_executor_dump(ex, ASYNCRT_DUMP_JSON, NULL, NULL), ASYNCRT_EINVAL);

  CHECK_OK(asyncrt_task_cancel(main_task));
  CHECK_OK(asyncrt_run(ex, NULL));
  CHECK_INT(tf_get(&main_node.drops), 1);
  CHECK_INT(tf_get(&kids[0].drops) + tf_get(&kids[1].drops), 2);
  CHECK_OK(sf_dump(ex, ASYNCRT_DUMP_JSON, &text));
  CHECK(jv_parse(text.data, &doc));
  CHECK_INT(doc.ntasks, 0);
  CHECK_INT(doc.nscopes, 0);
  CHECK_OK(asyncrt_task_release(main_task));
  CHECK_OK(asyncrt_task_release(kid_tasks[0]));
  CHECK_OK(asyncrt_task_release(kid_tasks[1]));
  CHECK_OK(asyncrt_executor_free(ex));
  sf_text_free(&text);
}

/* Names that JSON must escape keep the document valid and decode back. */
static void test_json_escapes_names(void) {
  asyncrt_executor *ex = sf_local_test_clock();
  const char *name = "q\"uote\\back\nline\ttab";
  static jv_doc doc;
  sf_node n;
  asyncrt_task *task = NULL;
  sf_text text;
  CHECK(ex != NULL);
  memset(&text, 0, sizeof text);
  sf_node_init(&n);
  CHECK_OK(sf_spawn(ex, &n, 0, &task));
  CHECK_OK(asyncrt_task_set_name(task, name));
  CHECK_OK(asyncrt_run(ex, NULL));
  CHECK_OK(sf_dump(ex, ASYNCRT_DUMP_JSON, &text));
  if (!jv_parse(text.data, &doc)) {
    fprintf(stderr, "  %s\n", doc.error);
    CHECK(0);
  }
  CHECK_INT(doc.ntasks, 1);
  CHECK(jv_has_string(&doc.tasks[0], name));
  CHECK(jv_has_number(&doc.tasks[0], sf_task_id(task)));
  CHECK_OK(asyncrt_task_cancel(task));
  CHECK_OK(asyncrt_run(ex, NULL));
  CHECK_OK(asyncrt_task_release(task));
  CHECK_OK(asyncrt_executor_free(ex));
  sf_text_free(&text);
}

/* A task dumps its own executor from inside its poll: it is "running". */
static int self_dump_hook(sf_node *n, asyncrt_context *cx) {
  sf_text *t = n->hook_data;
  n->open_rc = asyncrt_executor_dump(asyncrt_context_executor(cx), ASYNCRT_DUMP_TEXT,
                                     sf_text_write, t);
  return ASYNCRT_POLL_READY;
}

static void test_dump_inside_a_poll(void) {
  asyncrt_executor *ex = sf_local_test_clock();
  sf_node n;
  sf_text text;
  char line[512];
  asyncrt_task *task = NULL;
  CHECK(ex != NULL);
  memset(&text, 0, sizeof text);
  sf_node_init(&n);
  n.name = "self-dumper";
  n.hook = self_dump_hook;
  n.hook_data = &text;
  CHECK_OK(sf_spawn(ex, &n, 0, &task));
  CHECK_OK(asyncrt_run(ex, NULL));
  CHECK_OK(n.open_rc);
  CHECK(sf_line_with(text.data, "self-dumper", line, sizeof line));
  CHECK(sf_has_number(line, sf_task_id(task)));
  CHECK(strstr(line, "running") != NULL);
  CHECK_OK(asyncrt_task_status(task));
  CHECK_OK(asyncrt_task_release(task));
  CHECK_OK(asyncrt_executor_free(ex));
  sf_text_free(&text);
}

/* The states of a task inside its cleanup ("cleanup") and of one that
 * returned while its scope had live children ("completing"). */
static void test_cleanup_and_completing_states(void) {
  asyncrt_executor *ex = sf_local_test_clock();
  sf_node cleaning, parent, kid, *kid_ptr = &kid;
  asyncrt_task *ct = NULL, *pt = NULL;
  sf_text text;
  char line[512];
  CHECK(ex != NULL);
  memset(&text, 0, sizeof text);
  sf_node_init(&cleaning);
  cleaning.name = "in-cleanup";
  cleaning.cleanup = SF_CLEANUP_FOREVER;
  sf_node_init(&parent);
  parent.name = "returned-early";
  parent.opens_scope = 1;
  parent.children = &kid_ptr;
  parent.nchildren = 1;
  parent.then = SF_READY;
  sf_node_init(&kid);
  kid.name = "slow-to-clean";
  kid.cleanup = SF_CLEANUP_FOREVER;
  CHECK_OK(sf_spawn(ex, &cleaning, 0, &ct));
  CHECK_OK(sf_spawn(ex, &parent, 0, &pt));
  CHECK_OK(asyncrt_run(ex, NULL));
  CHECK_OK(asyncrt_task_cancel_ex(ct, 5 * SEC));
  CHECK_OK(asyncrt_run(ex, NULL));
  CHECK_INT(tf_get(&cleaning.cleanup_calls), 1);
  CHECK_INT(tf_get(&kid.cleanup_calls), 1); /* the parent's return cancelled its scope */
  CHECK_INT(tf_get(&parent.drops), 0);

  CHECK_OK(sf_dump(ex, ASYNCRT_DUMP_TEXT, &text));
  CHECK(sf_line_with(text.data, "in-cleanup", line, sizeof line));
  CHECK(strstr(strstr(line, "in-cleanup") + strlen("in-cleanup"), "cleanup") != NULL);
  CHECK(sf_line_with(text.data, "returned-early", line, sizeof line));
  CHECK(strstr(line, "completing") != NULL);

  CHECK_OK(asyncrt_clock_advance(ex, 5 * SEC)); /* both cleanup deadlines pass */
  CHECK_OK(asyncrt_run(ex, NULL));
  CHECK_INT(tf_get(&cleaning.drops), 1);
  CHECK_INT(tf_get(&kid.drops), 1);
  CHECK_INT(tf_get(&parent.drops), 1);
  CHECK_STATUS(asyncrt_task_status(pt), ASYNCRT_ESCOPE);
  CHECK_OK(asyncrt_task_release(ct));
  CHECK_OK(asyncrt_task_release(pt));
  CHECK_OK(asyncrt_executor_free(ex));
  sf_text_free(&text);
}

/* A thread-per-core executor is dumped from a thread that is not a worker,
 * while its workers run. */
static void test_dump_of_a_threads_executor(void) {
  asyncrt_executor *ex = sf_executor(ASYNCRT_EXECUTOR_THREADS, 2, ASYNCRT_CLOCK_MONOTONIC);
  sf_node *n = calloc(1, sizeof *n);
  static jv_doc doc;
  asyncrt_task *task = NULL;
  sf_text text;
  char line[512];
  CHECK(ex != NULL && n != NULL);
  memset(&text, 0, sizeof text);
  sf_node_init(n);
  n->name = "on-worker-1";
  CHECK_OK(sf_spawn(ex, n, ASYNCRT_SPAWN_WORKER(1), &task));
  CHECK(tf_wait_flag(&n->waker_flag, 5000));
  CHECK_OK(sf_dump(ex, ASYNCRT_DUMP_TEXT, &text));
  CHECK(sf_line_with(text.data, "on-worker-1", line, sizeof line));
  CHECK(sf_has_number(line, sf_task_id(task)));
  CHECK(strstr(line, "waiting") != NULL);
  CHECK_OK(sf_dump(ex, ASYNCRT_DUMP_JSON, &text));
  if (!jv_parse(text.data, &doc)) {
    fprintf(stderr, "  %s\n", doc.error);
    CHECK(0);
  }
  CHECK_INT(doc.ntasks, 1);
  CHECK(jv_has_string(&doc.tasks[0], "on-worker-1"));
  CHECK(jv_has_number(&doc.tasks[0], 1)); /* its worker */
  CHECK_OK(asyncrt_task_cancel(task));
  CHECK_STATUS(sf_wait_task(task, 5000), ASYNCRT_ECANCELLED);
  CHECK_OK(asyncrt_task_release(task));
  CHECK_OK(asyncrt_executor_shutdown(ex, ASYNCRT_SHUTDOWN_GRACEFUL, TF_TIMEOUT_NS));
  CHECK_OK(asyncrt_executor_free(ex));
  CHECK_INT(tf_get(&n->drops), 1);
  free(n);
  sf_text_free(&text);
}

int main(void) {
  CHECK_BEGIN();
  RUN(test_json_checker);
  RUN(test_text_and_json_of_a_tree);
  RUN(test_json_escapes_names);
  RUN(test_dump_inside_a_poll);
  RUN(test_cleanup_and_completing_states);
  RUN(test_dump_of_a_threads_executor);
  return CHECK_END("test_dump");
}
