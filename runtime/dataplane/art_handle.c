/* art_handle.c -- generation-tagged handles.
 *
 * A handle names a table slot and the slot's generation when it was issued.
 * Freeing bumps the generation, so a stale handle no longer matches; a value
 * asyncrt never issued has generation 0 or an index past the table. Slots sit
 * in chunks that are allocated once and never freed, so a check never reads
 * freed memory. The free list is a Treiber stack whose head carries an ABA tag.
 */
#include <stdlib.h>

#include "art.h"

#define CHUNK_BITS ART_HANDLE_CHUNK_BITS
#define CHUNK_SLOTS (1u << CHUNK_BITS)
#define MAX_CHUNKS ART_HANDLE_MAX_CHUNKS /* 16M live handles */

typedef art_handle_slot slot;

/* Read by art_handle_get, inline in art.h (a channel's _poll calls look a
 * handle up each time: a call less there is most of the look-up). */
art_handle_slot *_Atomic art_handle_chunks[MAX_CHUNKS];
#define chunks art_handle_chunks
static _Atomic uint64_t free_head; /* (tag << 32) | (index + 1) */
static _Atomic uint32_t next_unused;
static art_lock grow_lock;

static slot *slot_at(uint32_t index) {
  if (index >= MAX_CHUNKS * CHUNK_SLOTS) return NULL;
  slot *c = atomic_load_explicit(&chunks[index >> CHUNK_BITS], memory_order_acquire);
  return c ? &c[index & (CHUNK_SLOTS - 1)] : NULL;
}

static slot *slot_fresh(uint32_t *index) {
  uint32_t i = atomic_fetch_add(&next_unused, 1);
  if (i >= MAX_CHUNKS * CHUNK_SLOTS) return NULL;
  slot *s = slot_at(i);
  if (!s) {
    art_lock_acquire(&grow_lock);
    slot *c = atomic_load(&chunks[i >> CHUNK_BITS]);
    if (!c) {
      c = calloc(CHUNK_SLOTS, sizeof(slot));
      if (c) atomic_store_explicit(&chunks[i >> CHUNK_BITS], c, memory_order_release);
    }
    art_lock_release(&grow_lock);
    if (!c) return NULL; /* the index is lost; harmless */
    s = &c[i & (CHUNK_SLOTS - 1)];
  }
  *index = i;
  return s;
}

static slot *slot_pop(uint32_t *index) {
  uint64_t head = atomic_load(&free_head);
  for (;;) {
    uint32_t i1 = (uint32_t)head;
    if (!i1) return slot_fresh(index);
    slot *s = slot_at(i1 - 1);
    uint64_t next = ((head >> 32) + 1) << 32 | atomic_load(&s->next_free);
    if (atomic_compare_exchange_weak(&free_head, &head, next)) {
      *index = i1 - 1;
      return s;
    }
  }
}

uint64_t art_handle_new(int type, void *obj) {
  uint32_t index;
  slot *s = slot_pop(&index);
  if (!s) return 0;
  uint32_t gen = atomic_load(&s->gen);
  if (!gen) gen = 1, atomic_store(&s->gen, 1);
  atomic_store(&s->type, type);
  atomic_store(&s->obj, obj);
  return (uint64_t)gen << 32 | (index + 1);
}

static slot *slot_live(uint64_t handle, int type) {
  uint32_t i1 = (uint32_t)handle, gen = (uint32_t)(handle >> 32);
  if (!i1 || !gen) return NULL;
  slot *s = slot_at(i1 - 1);
  if (!s || atomic_load_explicit(&s->gen, memory_order_acquire) != gen) return NULL;
  if (atomic_load_explicit(&s->type, memory_order_relaxed) != type) return NULL;
  return s;
}


int art_handle_free(uint64_t handle) {
  uint32_t i1 = (uint32_t)handle, gen = (uint32_t)(handle >> 32);
  slot *s = i1 && gen ? slot_at(i1 - 1) : NULL;
  if (!s) return 0;
  uint32_t expect = gen, next = gen + 1 ? gen + 1 : 1;
  if (!atomic_compare_exchange_strong(&s->gen, &expect, next)) return 0; /* already freed */
  atomic_store(&s->type, 0);
  atomic_store(&s->obj, NULL);
  uint64_t head = atomic_load(&free_head);
  do {
    atomic_store(&s->next_free, (uint32_t)head);
  } while (!atomic_compare_exchange_weak(&free_head, &head, ((head >> 32) + 1) << 32 | i1));
  return 1;
}

int art_handle_claim(uint64_t handle, int type) {
  slot *s = slot_live(handle, type);
  int expect = type;
  return s && atomic_compare_exchange_strong(&s->type, &expect, -type);
}

void art_handle_unclaim(uint64_t handle, int type) {
  slot *s = slot_live(handle, -type);
  int expect = -type;
  if (s) atomic_compare_exchange_strong(&s->type, &expect, type);
}

static const char *type_name(int type) {
  switch (type) {
  case ART_H_EXEC: return "executor";
  case ART_H_TASK: return "task";
  case ART_H_HOSTQ: return "host queue";
  case ART_H_SUBSYS: return "subsystem";
  case ART_H_SCOPE: return "scope";
  case ART_H_SENDER: return "sender";
  case ART_H_RECEIVER: return "receiver";
  case ART_H_MUTEX: return "mutex";
  case ART_H_SEMAPHORE: return "semaphore";
  case ART_H_NOTIFY: return "notify";
  case ART_H_BARRIER: return "barrier";
  case ART_H_IO: return "IO driver";
  default: return "object";
  }
}

int art_handle_resolve(const void *handle, int type, const char *what, void **obj) {
  if (!handle) return art_fail(ASYNCRT_EINVAL, "%s is NULL", what);
  void *o = art_handle_get((uint64_t)(uintptr_t)handle, type);
  if (!o)
    return art_fail(ASYNCRT_EHANDLE, "%s %p is not a live %s handle (freed, foreign or of another type)",
                    what, handle, type_name(type));
  *obj = o;
  return ASYNCRT_OK;
}
