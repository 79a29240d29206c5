/* handles.c -- choosing the handle an operation passes: a live one of the
 * right type, a stale one (freed or released earlier in the run), NULL, a
 * live one of another type ("foreign"), or a value asyncrt never issued.
 * The model knows which it picked, so it knows the status: EINVAL for
 * NULL, EHANDLE for anything not live of the right type. */
#include "fuzz.h"
#include "ops.h"

static void *live_of_type(int type, unsigned k, int *idx) {
  int n = 0, found[MAX_TASKS];
  switch (type) {
  case HT_EXEC:
    for (int i = 0; i < MAX_EXECS; i++)
      if (W.ex[i].live && !W.ex[i].freed) found[n++] = i;
    break;
  case HT_TASK:
    for (int i = 0; i < W.ntasks; i++)
      if (W.tasks[i].h) found[n++] = i;
    break;
  case HT_SCOPE:
    for (int i = 0; i < W.nscopes; i++)
      if (W.scopes[i].h) found[n++] = i;
    break;
  case HT_SYNC:
    for (int i = 0; i < MAX_SYNCS; i++)
      if (W.syncs[i].live) found[n++] = i;
    break;
  default:
    for (int i = 0; i < MAX_ENDPOINTS; i++)
      if (W.eps[i].live && W.eps[i].is_rx == (type == HT_RECEIVER)) found[n++] = i;
    break;
  }
  if (!n) return NULL;
  int i = found[k % (unsigned)n];
  *idx = i;
  switch (type) {
  case HT_EXEC: return W.ex[i].h;
  case HT_TASK: return W.tasks[i].h;
  case HT_SCOPE: return W.scopes[i].h;
  case HT_SYNC: return W.syncs[i].h;
  default: return W.eps[i].h;
  }
}

void *pick_handle(fz_input *in, int type, int *idx) {
  uint8_t b = fz_byte(in);
  unsigned mode = b & 7, k = b >> 3;
  int dummy;
  void *h;
  *idx = -1;
  if (mode < 4 && (h = live_of_type(type, k, idx))) return h;
  if (mode <= 4 && W.nstale) return W.stale[k % (unsigned)W.nstale];
  if (mode == 5) return NULL;
  if (mode == 6) {
    for (int t = 1; t < HT_COUNT; t++)
      if ((h = live_of_type((type + t) % HT_COUNT, k, &dummy))) return h;
  }
  /* Never issued: a live handle with its generation changed, or a slot
   * past any the table has. */
  for (int t = 0; t < HT_COUNT; t++)
    if ((h = live_of_type(t, k, &dummy))) return (void *)((uintptr_t)h ^ ((uintptr_t)(k | 1) << 40));
  return (void *)(uintptr_t)(0x100000000ull | (0xfffff000u + k));
}

uint32_t handle_status(const void *h, int idx) {
  if (!h) return ST(ASYNCRT_EINVAL);
  return idx < 0 ? ST(ASYNCRT_EHANDLE) : 0;
}

void stale_add(void *h) {
  if (!h) return;
  if (W.nstale < MAX_STALE) W.stale[W.nstale++] = h;
  else W.stale[(uintptr_t)h % MAX_STALE] = h;
}
