/* api_comb.c -- the public combinators and streams (see "Combinators and
 * streams" in asyncrt.h): argument checks here, the futures in
 * runtime/dataplane/art_comb.c. */
#include <stddef.h>
#include <stdint.h>

#include "../runtime/dataplane/art.h"

#define REFUSE_IN_CHILD()                                                                          \
  do {                                                                                             \
    if (art_is_forked()) return art_fail_forked();                                                 \
  } while (0)

/* A vtable must cover size, output_size, poll and drop. */
#define VTABLE_MIN_SIZE (offsetof(asyncrt_future_vtable, drop) + sizeof(void (*)(void *)))
#define STATE_ALIGN 16u

/* Checks one future handed to a combinator; records why it is refused. */
static int check_future(const asyncrt_future *f, size_t i, const char *who) {
  const asyncrt_future_vtable *vt = f->vtable;
  if (!vt) return art_fail(ASYNCRT_EINVAL, "%s: future %zu has no vtable", who, i);
  if (vt->size < VTABLE_MIN_SIZE)
    return art_fail(ASYNCRT_EINVAL, "%s: future %zu's vtable size %zu is smaller than the minimum %zu", who, i,
                    vt->size, (size_t)VTABLE_MIN_SIZE);
  if (!vt->poll) return art_fail(ASYNCRT_EINVAL, "%s: future %zu's vtable has no poll function", who, i);
  if (vt->output_size > ASYNCRT_OUTPUT_MAX)
    return art_fail(ASYNCRT_EINVAL, "%s: future %zu's output_size %zu exceeds ASYNCRT_OUTPUT_MAX (%u)", who, i,
                    vt->output_size, ASYNCRT_OUTPUT_MAX);
  return ASYNCRT_OK;
}

/* The combinator takes the futures whatever it returns: on a refusal, every
 * one whose drop can be found is dropped (see "Ownership"). */
static int refuse(const asyncrt_future *futs, size_t n, int status) {
  for (size_t i = 0; futs && i < n; i++)
    if (futs[i].vtable && futs[i].vtable->size >= VTABLE_MIN_SIZE) art_drop_future(&futs[i]);
  return status;
}

/* The checks join_all and select share. `outputs` may be NULL only if every
 * output is empty. */
static int check_args(void *state, size_t state_size, const asyncrt_future *futs, size_t n, const void *outputs,
                      const asyncrt_future *out, const char *who) {
  /* n is checked before the array is read: an n this large is no count. */
  if (!state_size) return art_fail(ASYNCRT_EINVAL, "%s: %zu futures are too many", who, n);
  if (n && !futs) return art_fail(ASYNCRT_EINVAL, "%s: futs is NULL", who);
  int any_output = 0;
  for (size_t i = 0; i < n; i++) {
    int rc = check_future(&futs[i], i, who);
    if (rc) return refuse(futs, n, rc);
    any_output |= futs[i].vtable->output_size != 0;
  }
  int rc = ASYNCRT_OK;
  if (!state || !out) rc = art_fail(ASYNCRT_EINVAL, "%s: %s is NULL", who, state ? "out" : "state");
  else if ((uintptr_t)state % STATE_ALIGN)
    rc = art_fail(ASYNCRT_EINVAL, "%s: state %p is not %u-aligned", who, state, STATE_ALIGN);
  else if (any_output && !outputs)
    rc = art_fail(ASYNCRT_EINVAL, "%s: the output buffer is NULL but a future has output", who);
  return rc ? refuse(futs, n, rc) : ASYNCRT_OK;
}

size_t asyncrt_join_all_size(size_t n) { return art_join_all_size(n); }

int asyncrt_join_all(void *state, const asyncrt_future *futs, size_t n, void *outputs, asyncrt_future *out) {
  REFUSE_IN_CHILD();
  int rc = check_args(state, art_join_all_size(n), futs, n, outputs, out, "asyncrt_join_all");
  if (rc) return rc;
  art_join_all_init(state, futs, n, outputs, out);
  return ASYNCRT_OK;
}

size_t asyncrt_join_all_index(const void *state) { return state ? art_join_all_index(state) : SIZE_MAX; }

size_t asyncrt_select_size(size_t n) { return art_select_size(n); }

int asyncrt_select(void *state, const asyncrt_future *futs, size_t n, void *winner_output, asyncrt_future *out) {
  REFUSE_IN_CHILD();
  if (!n) return art_fail(ASYNCRT_EINVAL, "asyncrt_select: no futures to select from");
  int rc = check_args(state, art_select_size(n), futs, n, winner_output, out, "asyncrt_select");
  if (rc) return rc;
  art_select_init(state, futs, n, winner_output, out);
  return ASYNCRT_OK;
}

size_t asyncrt_select_index(const void *state) { return state ? art_select_index(state) : SIZE_MAX; }

int asyncrt_stream_next(asyncrt_stream_next_state *st, const asyncrt_future *stream, void *item,
                        asyncrt_future *out) {
  REFUSE_IN_CHILD();
  static const char who[] = "asyncrt_stream_next";
  if (!st || !stream || !out)
    return art_fail(ASYNCRT_EINVAL, "%s: %s is NULL", who, !st ? "st" : !stream ? "stream" : "out");
  int rc = check_future(stream, 0, who);
  if (rc) return rc;
  if (!item && stream->vtable->output_size)
    return art_fail(ASYNCRT_EINVAL, "%s: item is NULL but the stream's items are %zu bytes", who,
                    stream->vtable->output_size);
  art_stream_next_init(st, stream, item, out);
  return ASYNCRT_OK;
}
