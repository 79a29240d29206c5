/* art_mem.c -- task memory: slots carved from chunks, one free list per size
 * class, a byte cap, and an optional allocator hook.
 *
 * Callers hold the executor's lock. Chunks go back to the hook only when the
 * executor's last task slot is gone (art_mem_destroy); freed slots are reused.
 * Outputs above the largest class get a hook allocation of their own.
 *
 * Chunks double in size (16 KiB up to 256 KiB), so a million tasks cost a
 * few hundred allocations and at most one partly used chunk. The cap keeps
 * each step of the resident size small: task memory is kept for reuse, so
 * an executor's footprint is its busiest moment's, and with chunks of up to
 * 4 MiB a new peak a little above the last one cost up to 4 MiB at once
 * (the soak's RSS showed the steps). Without a hook they
 * are mapped with MAP_POPULATE: the kernel fills a chunk's pages in one call
 * instead of one fault per 4 KiB page on first touch, which on virtual
 * machines is the larger part of a spawn's cost.
 */
#include <stdlib.h>
#include <sys/mman.h>

#include "art.h"

struct art_mem_chunk { art_mem_chunk *next; size_t size; };

#define CHUNK_HEADER 16u /* keeps slots 16-aligned */

#define CHUNK_MIN (16u * 1024u)
#define CHUNK_MAX (256u * 1024u)

static void *hook_alloc(art_mem *m, size_t size) {
  if (m->hook.alloc) return m->hook.alloc(size, 16, m->hook.user_data);
  void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
  return p == MAP_FAILED ? NULL : p;
}

static void hook_free(art_mem *m, void *p, size_t size) {
  if (m->hook.alloc) m->hook.free(p, size, m->hook.user_data);
  else munmap(p, size);
}

void art_mem_init(art_mem *m, const asyncrt_allocator *hook, size_t limit) {
  *m = (art_mem){.limit = limit};
  if (hook) m->hook = *hook;
}

void art_mem_destroy(art_mem *m) {
  for (unsigned i = 0; i < ART_MEM_CLASSES; i++) free(m->stacks[i].slots);
  for (art_mem_chunk *c = m->chunks, *next; c; c = next) {
    next = c->next;
    hook_free(m, c, c->size);
  }
  m->chunks = NULL;
}

static unsigned class_of(size_t size) { return (unsigned)((size - ART_TASK_SLOT_BASE) / 16u); }

void *art_mem_alloc_slow(art_mem *m, size_t size, int *status) {
  if (m->limit && m->in_use + size > m->limit) {
    *status = art_fail(ASYNCRT_ELIMIT, "task memory limit of %zu bytes reached (%zu in use, %zu asked)",
                       m->limit, m->in_use, size);
    return NULL;
  }
  void *p;
  unsigned cls = class_of(size);
  if (cls >= ART_MEM_CLASSES) {
    p = hook_alloc(m, size);
  } else if (m->stacks[cls].len) {
    p = m->stacks[cls].slots[--m->stacks[cls].len];
  } else if (m->free_lists[cls]) {
    art_mem_free *f = m->free_lists[cls];
    m->free_lists[cls] = f->next;
    /* A freed slot is often warm in another worker's cache: fetch the next
     * one now, while the caller fills this one. */
    if (f->next) __builtin_prefetch(f->next, 1);
    p = f;
  } else {
    if ((size_t)(m->bump_end - m->bump) < size) {
      size_t chunk = m->chunks ? m->chunks->size * 2 : CHUNK_MIN;
      if (chunk > CHUNK_MAX) chunk = CHUNK_MAX;
      art_mem_chunk *c = hook_alloc(m, chunk);
      if (c) {
        c->next = m->chunks;
        c->size = chunk;
        m->chunks = c;
        m->bump = (char *)c + CHUNK_HEADER;
        m->bump_end = (char *)c + chunk;
      }
    }
    p = NULL;
    if ((size_t)(m->bump_end - m->bump) >= size) {
      p = m->bump;
      m->bump += size;
      /* Fresh chunk memory is cold: ask for the lines a few spawns ahead. */
      __builtin_prefetch(m->bump + 8 * ART_CACHELINE, 1, 0);
      __builtin_prefetch(m->bump + 9 * ART_CACHELINE, 1, 0);
    }
  }
  if (!p) {
    *status = art_fail(ASYNCRT_ENOMEM, "could not allocate %zu bytes of task memory", size);
    return NULL;
  }
  m->in_use += size;
  return p;
}

void art_mem_release_slow(art_mem *m, void *slot, size_t size) {
  m->in_use -= size;
  unsigned cls = class_of(size);
  if (cls >= ART_MEM_CLASSES) {
    hook_free(m, slot, size);
    return;
  }
  art_mem_stack *st = &m->stacks[cls];
  if (st->len == st->cap) { /* grow by doubling; if that fails, the slot goes on the list */
    uint32_t cap = st->cap ? st->cap * 2 : 256;
    void **grown = cap > st->cap ? realloc(st->slots, (size_t)cap * sizeof *grown) : NULL;
    if (grown) {
      st->slots = grown;
      st->cap = cap;
    }
  }
  if (st->len < st->cap) {
    st->slots[st->len++] = slot;
    return;
  }
  art_mem_free *f = slot;
  f->next = m->free_lists[cls];
  m->free_lists[cls] = f;
}
