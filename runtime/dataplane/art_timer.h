/*
 * art_timer.h -- a hierarchical timing wheel: the data structure under
 * asyncrt's timers.
 *
 * Each executor core has one (art_time.c wraps it in the core's timer lock
 * and turns asyncrt_timer entries into its entries). It also builds on its
 * own, with test/timer_test.c and test/timer_bench.c (test/Makefile:
 * `timer`, `timer-bench`).
 *
 * Threads. No function here is thread-safe and none takes a lock or an
 * atomic: the caller serializes every call on one wheel (art_time.c holds
 * the core's timer_lock).
 *
 * Lifetimes. The caller owns the entries: the wheel never allocates or frees
 * one, it only links and unlinks them. A linked entry must stay valid (not
 * freed, not moved, not reused) until it is unlinked: by art_wheel_remove,
 * by art_wheel_advance just before its fire callback, or by art_wheel_free
 * forgetting it. An entry starts zeroed (`art_timer t = {0}`, calloc,
 * memset): a zeroed entry is unlinked.
 *
 * Time is a uint64_t count of nanoseconds on one monotonic clock of the
 * caller's choosing. Every value from 0 to UINT64_MAX is a valid deadline.
 */
#ifndef ART_TIMER_H
#define ART_TIMER_H

#include <stddef.h>
#include <stdint.h>

/* An intrusive wheel entry. Embed it in the object that waits (and find the
 * object again with container_of in the fire callback) or allocate it on its
 * own. While it is linked, the wheel owns every field; deadline_ns may be
 * read at any time and holds the deadline last given to art_wheel_insert. */
typedef struct art_timer {
  struct art_timer *next, *prev; /* the list of the slot it is in */
  uint64_t deadline_ns;
  uint32_t slot; /* which list holds it, plus one; 0 while unlinked */
  uint32_t reserved; /* padding, made explicit: the entry is 32 bytes */
} art_timer;

/* The wheel. Opaque; about 14 KiB, allocated once by art_wheel_new. */
typedef struct art_wheel art_wheel;

/* \brief Creates an empty wheel whose clock reads now_ns.
 * \return a wheel the caller owns and gives back with art_wheel_free, or
 *         NULL when out of memory (errno is ENOMEM). */
art_wheel *art_wheel_new(uint64_t now_ns);

/* \brief Frees w. Entries still linked are forgotten, not touched: their
 *        memory stays the caller's, and their fields are left as they were
 *        (so art_timer_linked still reports them linked; zero them before
 *        reuse). NULL is a no-op. Must not be called from a fire callback. */
void art_wheel_free(art_wheel *w);

/* \brief Links t to fire once the clock reaches deadline_ns. O(1), no
 *        allocation, cannot fail.
 *
 * A deadline at or before the wheel's clock (the now_ns of the last
 * art_wheel_advance, or of art_wheel_new) fires at the next advance. If t is
 * already linked into w it is moved to the new deadline (remove + insert).
 * t must not be linked into another wheel. May be called from a fire
 * callback; see art_wheel_advance for what happens to due deadlines then. */
void art_wheel_insert(art_wheel *w, art_timer *t, uint64_t deadline_ns);

/* \brief Unlinks t, so that it will not fire. O(1). A no-op if t is not
 *        linked (never inserted, already fired, already removed). t must
 *        not be linked into another wheel. May be called from a fire
 *        callback, for any entry, including ones due in the same advance. */
void art_wheel_remove(art_wheel *w, art_timer *t);

/* \brief 1 if t is linked into a wheel (inserted and neither fired nor
 *        removed), else 0. O(1). */
int art_timer_linked(const art_timer *t);

/* \brief Moves the wheel's clock to now_ns and fires every entry whose
 *        deadline is <= now_ns.
 *
 * Each due entry is unlinked and then passed to fire(t, user); from that
 * moment the entry is the caller's again (fire may free it, or insert it
 * again). Within one call entries fire in order of deadline, exactly (to
 * the nanosecond, across slots and levels; equal deadlines in an
 * unspecified order), and never early: an entry fires only if
 * now_ns >= its deadline_ns.
 *
 * fire may insert and remove any entries. An entry it inserts with a
 * deadline <= now_ns does not fire in this call but at the next advance
 * (whose clock is then past it), so a callback that re-arms itself cannot
 * keep one advance running forever. Entries it inserts with later deadlines
 * are placed normally. fire must not call art_wheel_advance (a nested call
 * returns 0 and does nothing) or art_wheel_free.
 *
 * now_ns should not decrease from one call to the next; if it does, the
 * wheel's clock stays where it was and only entries with deadline <= now_ns
 * fire.
 *
 * Cost: O(entries fired + entries cascaded + occupied slots passed); empty
 * slots and empty stretches of time are skipped with one count-trailing-
 * zeros per level, so a jump of hours costs no more than a jump of a tick.
 * An entry is cascaded at most once per level it descends (realistic
 * timeouts, 1 ms to 10 s, descend 1 to 3 levels), and entries due within
 * one 1.024 us tick are sorted by deadline (a linear check when they
 * already are).
 *
 * \return the number of entries fired. */
size_t art_wheel_advance(art_wheel *w, uint64_t now_ns, void (*fire)(art_timer *t, void *user),
                         void *user);

/* \brief art_wheel_advance that stops once `max` entries have fired. The
 *        due entries left stay pending (still linked, still removable) and
 *        fire first at the next advance, in deadline order, so a caller
 *        that fires in batches does the same total work as one advance.
 *        art_wheel_next_expiry counts them. \return the number fired; less
 *        than max means nothing due at now_ns is left. */
size_t art_wheel_advance_max(art_wheel *w, uint64_t now_ns, void (*fire)(art_timer *t, void *user),
                             void *user, size_t max);

/* \brief The earliest instant at which some entry may need to fire.
 *
 * Never later than the earliest linked deadline, so a caller may sleep until
 * then and call art_wheel_advance. Exact (equal to the earliest deadline)
 * unless an entry sharing a slot with the earliest one was removed, in
 * which case it may be earlier by up to that slot's span; exact whenever
 * the wheel holds one entry. Right after an advance to now_ns it is later
 * than now_ns unless fire inserted due entries, so a sleep-advance loop
 * always makes progress. UINT64_MAX when the wheel is empty (or holds only
 * entries due at UINT64_MAX: art_wheel_count tells them apart).
 * O(levels): at most 9 loads and one count-trailing-zeros; never touches
 * an entry. */
uint64_t art_wheel_next_expiry(const art_wheel *w);

/* \brief The number of linked entries. O(1). */
size_t art_wheel_count(const art_wheel *w);

#endif
