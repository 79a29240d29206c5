/* art_timer.c -- a hierarchical timing wheel (see art_timer.h for the
 * contract).
 *
 * Ticks. A deadline is kept to the nanosecond, but placed by its tick:
 * deadline_ns >> 10, a tick of 1.024 us. That is finer than any sleep the
 * runtime can ask of the kernel (a futex or epoll timeout overshoots by tens
 * of microseconds), so the wheel adds no delay anyone can see; and 10 + 9
 * levels x 6 bits = 64, so nine levels of 64 slots cover every uint64_t
 * deadline with no overflow list and no clamping. A coarser tick would save
 * a cascade for long timers but not a level, and cascades are rare: most
 * timeouts are removed before they fire.
 *
 * Levels. `elapsed` is the wheel's clock in ticks. An entry due at tick t
 * sits at the level of the highest 6-bit group in which t and elapsed
 * differ (level 0 if they are equal), in slot (t >> 6*level) & 63. So level
 * k holds entries due within the current level-(k+1) slot but in a later
 * level-k slot than the current one: every entry at level k is due before
 * every entry at level k+1, and within a level slot order is time order.
 * A deadline already passed is placed as if due at tick elapsed (level 0,
 * the current slot).
 *
 * Bitmaps. One 64-bit word per level says which slots hold entries. The
 * earliest slot is the lowest set bit of the lowest non-empty level (the
 * placement rule means no level holds a slot behind the current one), so
 * finding it skips any stretch of empty slots with one ctz.
 *
 * Advancing and cascading. art_wheel_advance repeatedly takes that earliest
 * slot while its start is <= the target tick, and moves elapsed to its start.
 * A slot above level 0 is cascaded: its entries are placed again relative to
 * the new elapsed, which puts each one at a lower level (each entry descends
 * at most once per level). A level-0 slot holds one tick; its due entries
 * move to the pending list, are sorted by deadline, and fire one by one.
 * When no slot starts at or before the target, elapsed jumps to it; the
 * placement rule still holds, because every remaining slot starts after it.
 *
 * Never early. Whether an entry fires is decided by comparing its deadline
 * with now_ns, never by its slot: a level-0 slot is one tick wide, and in
 * the tick that contains now_ns only the entries with deadline <= now_ns
 * fire; the rest are placed back in the same slot for the next advance.
 *
 * Lists. Each slot is a FIFO list with a lower bound of its deadlines: the
 * least deadline pushed since the list was last empty, so exact until an
 * entry other than the last is removed. pending (due, about to fire) and
 * deferred (inserted by fire() with a deadline already reached, held until
 * the end of the advance) are two more lists of the same kind, so removal
 * works the same wherever an entry is: its `slot` field names the list.
 *
 * The bound lets art_wheel_next_expiry answer with the earliest deadline
 * rather than the start of a slot hours wide. Even when stale it is never
 * before the start of its slot, since a slot only ever holds deadlines in
 * its range and is emptied (resetting the bound) before elapsed moves on to
 * reuse it for a later range; the one exception is the current tick's slot,
 * which also holds deadlines already passed, and which every advance
 * empties. So after an advance to now_ns every bound left is past now_ns,
 * and a sleep-advance loop cannot spin.
 */
#include <stdint.h>
#include <stdlib.h>

#include "art_timer.h"

#define TICK_SHIFT 10u /* 1.024 us */
#define LEVEL_BITS 6u
#define SLOTS 64u
#define LEVELS 9u /* TICK_SHIFT + LEVELS * LEVEL_BITS == 64 */
#define WHEEL_LISTS (LEVELS * SLOTS)
#define PENDING WHEEL_LISTS
#define DEFERRED (WHEEL_LISTS + 1u)
#define NO_DEADLINE UINT64_MAX

_Static_assert(TICK_SHIFT + LEVELS * LEVEL_BITS == 64, "levels must cover every deadline");

typedef struct timer_list {
  art_timer *head, *tail;
  uint64_t min_deadline; /* <= every deadline in the list; NO_DEADLINE when empty */
} timer_list;

struct art_wheel {
  /* What insert and remove touch besides the lists comes first. */
  uint64_t elapsed;     /* the clock, in ticks */
  size_t count;         /* linked entries, on any list */
  int advancing;        /* inside art_wheel_advance */
  uint64_t advance_now; /* its now_ns, while advancing */
  uint64_t occupied[LEVELS]; /* bit s of word k: slot s of level k holds entries */
  /* Index level * SLOTS + slot; then PENDING and DEFERRED. An entry's
   * `slot` field is its list's index plus one. */
  timer_list lists[WHEEL_LISTS + 2];
};

static void list_push(art_wheel *w, unsigned index, art_timer *t) {
  timer_list *l = &w->lists[index];
  t->next = NULL;
  t->prev = l->tail;
  if (l->tail) l->tail->next = t;
  else l->head = t;
  l->tail = t;
  if (t->deadline_ns < l->min_deadline) l->min_deadline = t->deadline_ns;
  t->slot = index + 1;
}

/* Empties list `index` and returns its entries, still chained by next (their
 * other fields are stale until they are pushed somewhere). */
static art_timer *list_take(art_wheel *w, unsigned index) {
  timer_list *l = &w->lists[index];
  art_timer *head = l->head;
  *l = (timer_list){.min_deadline = NO_DEADLINE};
  if (index < WHEEL_LISTS) w->occupied[index / SLOTS] &= ~(1ull << (index % SLOTS));
  return head;
}

static unsigned level_of(uint64_t tick, uint64_t elapsed) {
  /* The highest differing bit, with bits 0..5 standing for level 0. */
  return (63u - (unsigned)__builtin_clzll((tick ^ elapsed) | (SLOTS - 1))) / LEVEL_BITS;
}

/* The tick at which slot `slot` of `level` starts, relative to elapsed. */
static uint64_t slot_start(uint64_t elapsed, unsigned level, unsigned slot) {
  unsigned shift = level * LEVEL_BITS;
  uint64_t above = elapsed >> shift >> LEVEL_BITS << LEVEL_BITS; /* the level-(k+1) slot */
  return (above | slot) << shift;
}

/* Links t by its deadline, relative to the current elapsed. */
static void place(art_wheel *w, art_timer *t) {
  uint64_t tick = t->deadline_ns >> TICK_SHIFT;
  if (tick < w->elapsed) tick = w->elapsed;
  unsigned level = level_of(tick, w->elapsed);
  unsigned slot = (unsigned)(tick >> (level * LEVEL_BITS)) & (SLOTS - 1);
  list_push(w, level * SLOTS + slot, t);
  w->occupied[level] |= 1ull << slot;
}

art_wheel *art_wheel_new(uint64_t now_ns) {
  art_wheel *w = calloc(1, sizeof *w);
  if (!w) return NULL;
  w->elapsed = now_ns >> TICK_SHIFT;
  for (unsigned i = 0; i < WHEEL_LISTS + 2; i++) w->lists[i].min_deadline = NO_DEADLINE;
  return w;
}

void art_wheel_free(art_wheel *w) { free(w); }

int art_timer_linked(const art_timer *t) { return t->slot != 0; }

size_t art_wheel_count(const art_wheel *w) { return w->count; }

void art_wheel_remove(art_wheel *w, art_timer *t) {
  if (!t->slot) return;
  unsigned index = t->slot - 1;
  timer_list *l = &w->lists[index];
  if (t->prev) t->prev->next = t->next;
  else l->head = t->next;
  if (t->next) t->next->prev = t->prev;
  else l->tail = t->prev;
  t->next = t->prev = NULL;
  t->slot = 0;
  w->count--;
  if (!l->head) {
    l->min_deadline = NO_DEADLINE;
    if (index < WHEEL_LISTS) w->occupied[index / SLOTS] &= ~(1ull << (index % SLOTS));
  } else if (l->head == l->tail) {
    l->min_deadline = l->head->deadline_ns; /* one left: the bound is exact again */
  }
}

void art_wheel_insert(art_wheel *w, art_timer *t, uint64_t deadline_ns) {
  if (__builtin_expect(t->slot != 0, 0)) art_wheel_remove(w, t);
  t->deadline_ns = deadline_ns;
  w->count++;
  if (__builtin_expect(w->advancing, 0) && deadline_ns <= w->advance_now) list_push(w, DEFERRED, t);
  else place(w, t);
}

/* Merges two lists chained by next, sorted by deadline; a's entries go
 * first among equals. */
static art_timer *merge(art_timer *a, art_timer *b) {
  art_timer head, *tail = &head;
  while (a && b) {
    if (b->deadline_ns < a->deadline_ns) {
      tail->next = b;
      b = b->next;
    } else {
      tail->next = a;
      a = a->next;
    }
    tail = tail->next;
  }
  tail->next = a ? a : b;
  return head.next;
}

/* Sorts the pending list by deadline: one pass when it already is (the
 * usual case: a tick's entries were inserted in order, or there is one),
 * else a bottom-up merge sort, O(n log n) in the entries of one tick. */
static void sort_pending(art_wheel *w) {
  timer_list *l = &w->lists[PENDING];
  art_timer *t = l->head;
  while (t && t->next && t->deadline_ns <= t->next->deadline_ns) t = t->next;
  if (!t || !t->next) return;
  art_timer *runs[64] = {0}; /* runs[i]: 2^i entries, earlier ones in higher i */
  for (art_timer *next, *run = l->head; run; run = next) {
    next = run->next;
    run->next = NULL;
    unsigned i = 0;
    for (; runs[i]; i++) {
      run = merge(runs[i], run);
      runs[i] = NULL;
    }
    runs[i] = run;
  }
  art_timer *sorted = NULL;
  for (unsigned i = 0; i < 64; i++)
    if (runs[i]) sorted = merge(runs[i], sorted);
  art_timer *prev = NULL;
  for (t = sorted; t; prev = t, t = t->next) t->prev = prev;
  l->head = sorted;
  l->tail = prev;
}

/* Fires pending entries (due at now_ns) until `max` have fired in this
 * advance; returns 1 if it stopped for the limit with some still pending. */
static int fire_pending(art_wheel *w, uint64_t now_ns, void (*fire)(art_timer *t, void *user), void *user,
                        size_t max, size_t *fired) {
  art_timer *t;
  /* fire may remove pending entries, so take them one at a time. */
  while ((t = w->lists[PENDING].head) && t->deadline_ns <= now_ns) {
    if (*fired == max) return 1;
    art_wheel_remove(w, t);
    fire(t, user);
    (*fired)++;
  }
  return 0;
}

size_t art_wheel_advance(art_wheel *w, uint64_t now_ns, void (*fire)(art_timer *t, void *user),
                         void *user) {
  return art_wheel_advance_max(w, now_ns, fire, user, SIZE_MAX);
}

size_t art_wheel_advance_max(art_wheel *w, uint64_t now_ns, void (*fire)(art_timer *t, void *user),
                             void *user, size_t max) {
  if (w->advancing) return 0;
  uint64_t target = now_ns >> TICK_SHIFT;
  if (target < w->elapsed) target = w->elapsed;
  w->advancing = 1;
  w->advance_now = now_ns;
  size_t fired = 0;
  /* What a previous advance left pending (it stopped at its limit) fires
   * first: it is due, and earlier than anything still in the wheel. */
  int stopped = fire_pending(w, now_ns, fire, user, max, &fired);
  for (; !stopped;) {
    unsigned level = 0;
    while (level < LEVELS && !w->occupied[level]) level++;
    if (level == LEVELS) break;
    unsigned slot = (unsigned)__builtin_ctzll(w->occupied[level]);
    uint64_t start = slot_start(w->elapsed, level, slot);
    if (start > target) break;
    w->elapsed = start;
    art_timer *t = list_take(w, level * SLOTS + slot), *next;
    if (level > 0) {
      for (; t; t = next) {
        next = t->next;
        place(w, t); /* lands at a lower level: it is due within this slot */
      }
      continue;
    }
    for (; t; t = next) {
      next = t->next;
      if (t->deadline_ns <= now_ns) list_push(w, PENDING, t);
      else place(w, t); /* back into this slot (only in the tick of now_ns) */
    }
    sort_pending(w);
    if ((stopped = fire_pending(w, now_ns, fire, user, max, &fired))) break; /* elapsed stays at start */
    if (start == target) break; /* what is left in this slot is not due yet */
  }
  if (!stopped) w->elapsed = target;
  w->advancing = 0;
  /* Deferred entries are due: the current slot makes them fire next time. */
  for (art_timer *t = list_take(w, DEFERRED), *next; t; t = next) {
    next = t->next;
    place(w, t);
  }
  return fired;
}

uint64_t art_wheel_next_expiry(const art_wheel *w) {
  uint64_t next = w->lists[PENDING].min_deadline;
  if (w->lists[DEFERRED].min_deadline < next) next = w->lists[DEFERRED].min_deadline;
  for (unsigned level = 0; level < LEVELS; level++) {
    if (!w->occupied[level]) continue;
    /* The earliest slot; its bound is <= every deadline in the wheel. */
    uint64_t bound = w->lists[level * SLOTS + (unsigned)__builtin_ctzll(w->occupied[level])].min_deadline;
    return bound < next ? bound : next;
  }
  return next;
}
