/* art_hostq.c -- host queues: futures whose polls become events a host reads
 * in batches (see "Host-polled futures" in asyncrt.h).
 *
 * Single-threaded by contract: the host drives the executor and calls these on
 * the same thread, so nothing here is atomic. Slots are allocated one by one
 * and never move, since a future's self pointer is its slot. A closed queue
 * lives until its last future is dropped.
 */
#include <stdlib.h>
#include <string.h>

#include "art.h"

#define GEN_MASK 0x3fffffffu /* the tag's top two bits carry the event kind */

typedef struct hq_slot {
  art_hostq *q;
  uint32_t index, gen;
  uint32_t next_free; /* index + 1 while free */
  uint8_t live, done, poll_queued, cleanup_queued;
  int status;
  asyncrt_waker waker; /* of the task that last polled this future */
} hq_slot;

struct art_hostq {
  hq_slot **slots;
  uint32_t nslots, cap, free_head;
  uint64_t *events;
  size_t ev_head, ev_len, ev_cap;
  size_t live;
  int closed;
};

static uint64_t slot_tag(const hq_slot *s) { return (uint64_t)s->gen << 32 | (s->index + 1); }

static hq_slot *slot_of(art_hostq *q, uint64_t tag) {
  uint32_t i1 = (uint32_t)tag, gen = (uint32_t)(tag >> 32) & GEN_MASK;
  if (!i1 || i1 > q->nslots) return NULL;
  hq_slot *s = q->slots[i1 - 1];
  return s->live && s->gen == gen ? s : NULL;
}

static int push_event(art_hostq *q, uint64_t ev) {
  if (q->ev_head == q->ev_len) q->ev_head = q->ev_len = 0;
  if (q->ev_len == q->ev_cap) {
    if (q->ev_head) {
      memmove(q->events, q->events + q->ev_head, (q->ev_len - q->ev_head) * sizeof *q->events);
      q->ev_len -= q->ev_head;
      q->ev_head = 0;
    }
    if (q->ev_len == q->ev_cap) {
      size_t cap = q->ev_cap ? q->ev_cap * 2 : 64;
      uint64_t *ev2 = realloc(q->events, cap * sizeof *ev2);
      if (!ev2) return 0;
      q->events = ev2;
      q->ev_cap = cap;
    }
  }
  q->events[q->ev_len++] = ev;
  return 1;
}

art_hostq *art_hostq_new(void) { return calloc(1, sizeof(art_hostq)); }

static void hostq_destroy(art_hostq *q) {
  for (uint32_t i = 0; i < q->nslots; i++) free(q->slots[i]);
  free(q->slots);
  free(q->events);
  free(q);
}

void art_hostq_close(art_hostq *q) {
  q->closed = 1;
  q->ev_head = q->ev_len = 0;
  if (!q->live) hostq_destroy(q);
}

/* What a poll and a cleanup poll share: a completed future's outcome (-1
 * while not done), and the waker kept for the host's wakes. */
static int hq_outcome(hq_slot *s, asyncrt_context *cx) {
  if (!s->done) {
    if (!art_waker_will_wake(&s->waker, &cx->waker)) {
      art_waker_drop(&s->waker);
      art_waker_clone(&cx->waker, &s->waker);
    }
    return -1;
  }
  if (!s->status) return ASYNCRT_POLL_READY;
  cx->failure = s->status;
  return ASYNCRT_POLL_ERROR;
}

/* Queues the POLL event of s once until the host takes it. */
static int hq_queue_poll(hq_slot *s) {
  if (s->poll_queued) return 1;
  if (!push_event(s->q, ASYNCRT_HOSTQ_POLL | slot_tag(s))) return 0;
  s->poll_queued = 1;
  return 1;
}

static int hq_poll(void *self, asyncrt_context *cx, void *out) {
  (void)out;
  hq_slot *s = self;
  if (s->q->closed) {
    cx->failure = ASYNCRT_ESHUTDOWN;
    return ASYNCRT_POLL_ERROR;
  }
  int r = hq_outcome(s, cx);
  if (r >= 0) return r;
  if (!hq_queue_poll(s)) {
    cx->failure = ASYNCRT_ENOMEM;
    return ASYNCRT_POLL_ERROR;
  }
  return ASYNCRT_POLL_PENDING;
}

/* An asynchronous cancel: the host is told once (a CLEANUP event) and runs
 * the future's cleanup itself, stepping it at each later wake (a POLL
 * event); it reports the end with hostq_complete. An event that cannot be
 * queued ends the cleanup: the future is dropped. */
static int hq_cleanup(void *self, asyncrt_context *cx) {
  hq_slot *s = self;
  if (s->q->closed) return ASYNCRT_POLL_READY;
  int r = hq_outcome(s, cx);
  if (r >= 0) return r;
  if (!s->cleanup_queued) {
    if (!push_event(s->q, ASYNCRT_HOSTQ_CLEANUP | slot_tag(s))) return ASYNCRT_POLL_READY;
    s->cleanup_queued = 1;
  } else if (!hq_queue_poll(s)) {
    return ASYNCRT_POLL_READY;
  }
  return ASYNCRT_POLL_PENDING;
}

static void hq_drop(void *self) {
  hq_slot *s = self;
  art_hostq *q = s->q;
  art_waker_drop(&s->waker);
  uint64_t tag = slot_tag(s);
  s->live = 0;
  s->gen = (s->gen + 1) & GEN_MASK ? (s->gen + 1) & GEN_MASK : 1;
  s->next_free = q->free_head;
  q->free_head = s->index + 1;
  q->live--;
  if (q->closed) {
    if (!q->live) hostq_destroy(q);
    return;
  }
  push_event(q, ASYNCRT_HOSTQ_DROP | tag); /* on ENOMEM the host's object leaks, not ours */
}

static const asyncrt_future_vtable hq_vtable = {.size = sizeof(asyncrt_future_vtable), .output_size = 0,
                                              .poll = hq_poll, .drop = hq_drop, .cleanup = hq_cleanup};

int art_hostq_future(art_hostq *q, uint64_t *tag, asyncrt_future *out) {
  hq_slot *s;
  if (q->free_head) {
    s = q->slots[q->free_head - 1];
    q->free_head = s->next_free;
  } else {
    if (q->nslots == q->cap) {
      uint32_t cap = q->cap ? q->cap * 2 : 64;
      hq_slot **slots = realloc(q->slots, cap * sizeof *slots);
      if (!slots) return art_fail(ASYNCRT_ENOMEM, "could not grow the host queue");
      q->slots = slots;
      q->cap = cap;
    }
    s = calloc(1, sizeof *s);
    if (!s) return art_fail(ASYNCRT_ENOMEM, "could not allocate a host future");
    s->q = q;
    s->index = q->nslots;
    s->gen = 1;
    q->slots[q->nslots++] = s;
  }
  s->live = 1;
  s->done = s->poll_queued = s->cleanup_queued = 0;
  s->status = 0;
  s->waker = (asyncrt_waker){0};
  q->live++;
  *tag = slot_tag(s);
  out->self = s;
  out->vtable = &hq_vtable;
  return ASYNCRT_OK;
}

size_t art_hostq_take(art_hostq *q, uint64_t *events, size_t cap) {
  size_t n = 0;
  while (n < cap && q->ev_head < q->ev_len) {
    uint64_t ev = q->events[q->ev_head++];
    if ((ev & ASYNCRT_HOSTQ_KIND_MASK) == ASYNCRT_HOSTQ_POLL) {
      hq_slot *s = slot_of(q, ev & ASYNCRT_HOSTQ_TAG_MASK);
      if (!s) continue; /* dropped since: its DROP event follows */
      s->poll_queued = 0;
    }
    events[n++] = ev;
  }
  return n;
}

void art_hostq_complete(art_hostq *q, const uint64_t *tags, const int *statuses, size_t n) {
  for (size_t i = 0; i < n; i++) {
    hq_slot *s = slot_of(q, tags[i]);
    if (!s || s->done) continue;
    s->done = 1;
    s->status = statuses ? statuses[i] : 0;
    art_waker_wake_by_ref(&s->waker);
  }
}

void art_hostq_wake(art_hostq *q, const uint64_t *tags, size_t n) {
  for (size_t i = 0; i < n; i++) {
    hq_slot *s = slot_of(q, tags[i]);
    if (s) art_waker_wake_by_ref(&s->waker);
  }
}

int art_hostq_waker(art_hostq *q, uint64_t tag, asyncrt_waker *out) {
  hq_slot *s = slot_of(q, tag);
  if (!s) return art_fail(ASYNCRT_EINVAL, "no live host future has tag %llu", (unsigned long long)tag);
  if (!s->waker.vtable) return art_fail(ASYNCRT_EAGAIN, "host future %llu has not been polled yet",
                                        (unsigned long long)tag);
  art_waker_clone(&s->waker, out);
  return ASYNCRT_OK;
}
