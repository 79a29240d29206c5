/* timer_test.c -- the timing wheel (art_timer.c) on its own. Prints
 * "PASS <name>" per test; exits 1 at the first failure. Nothing here reads
 * a clock: time is whatever the tests pass in, and random choices come from
 * a fixed seed, so every run is the same run.
 *
 * The wheel's source is included, not linked, so that check_wheel can walk
 * its private lists and bitmaps after the operations that could break them. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../art_timer.c"

#include "check.h"

#define US 1000ull
#define MS (1000ull * US)
#define SEC (1000ull * MS)
#define HOUR (3600ull * SEC)

static uint64_t rng_state;
static uint64_t rnd(void) { /* splitmix64 */
  uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}
static uint64_t below(uint64_t n) { return n ? rnd() % n : 0; }

/* Every structural invariant of the wheel, checked by walking it. */
static void check_wheel(const art_wheel *w) {
  size_t linked = 0;
  for (unsigned index = 0; index < WHEEL_LISTS + 2; index++) {
    const timer_list *l = &w->lists[index];
    const art_timer *prev = NULL;
    for (const art_timer *t = l->head; t; prev = t, t = t->next) {
      CHECK(t->slot == index + 1, "entry in list %u says slot %u", index, t->slot);
      CHECK(t->prev == prev, "broken prev link in list %u", index);
      CHECK(l->min_deadline <= t->deadline_ns, "list %u bound %llu above deadline %llu", index,
            (unsigned long long)l->min_deadline, (unsigned long long)t->deadline_ns);
      linked++;
      if (index >= WHEEL_LISTS) continue;
      unsigned level = index / SLOTS, slot = index % SLOTS;
      uint64_t tick = t->deadline_ns >> TICK_SHIFT;
      if (level == 0 && tick < w->elapsed) {
        CHECK(slot == (w->elapsed & (SLOTS - 1)), "passed deadline outside the current slot");
      } else {
        CHECK(level_of(tick, w->elapsed) == level, "tick %llu at level %u, elapsed %llu",
              (unsigned long long)tick, level, (unsigned long long)w->elapsed);
        CHECK(((tick >> (level * LEVEL_BITS)) & (SLOTS - 1)) == slot, "entry in the wrong slot");
      }
    }
    CHECK(l->tail == prev, "list %u tail is not its last entry", index);
    if (!l->head) CHECK(l->min_deadline == NO_DEADLINE, "empty list %u keeps a bound", index);
    /* A stale bound still never points before its slot (but in the current tick's). */
    if (l->head && index < WHEEL_LISTS && index != (w->elapsed & (SLOTS - 1))) {
      uint64_t start = slot_start(w->elapsed, index / SLOTS, index % SLOTS);
      CHECK(l->min_deadline >= start << TICK_SHIFT, "list %u bound before its slot", index);
    }
    if (index < WHEEL_LISTS) {
      int bit = (int)((w->occupied[index / SLOTS] >> (index % SLOTS)) & 1);
      CHECK(bit == (l->head != NULL), "bitmap says %d for list %u", bit, index);
    }
  }
  CHECK(!w->advancing, "left advancing");
  /* Pending entries outlive an advance only when art_wheel_advance_max
   * stopped at its limit; they are due at the clock, and in order. */
  CHECK(!w->lists[DEFERRED].head, "deferred entries left");
  for (const art_timer *t = w->lists[PENDING].head; t; t = t->next) {
    CHECK(t->deadline_ns >> TICK_SHIFT <= w->elapsed, "pending entry not due at the wheel's clock");
    CHECK(!t->next || t->deadline_ns <= t->next->deadline_ns, "pending entries out of order");
  }
  CHECK(linked == w->count, "count %zu, linked %zu", w->count, linked);
}

/* A test's entries and what the fire callback saw. */
typedef struct entry {
  art_timer timer;
  unsigned id;
  unsigned fires;
  int armed_in_fire; /* inserted by a fire callback during the current advance */
} entry;

#define ENTRY(t) ((entry *)((char *)(t) - offsetof(entry, timer)))

typedef struct firing {
  art_wheel *wheel;
  uint64_t now;
  uint64_t last_deadline; /* of the previous fire; tests that insert passed deadlines reset it */
  size_t fired;
  entry *order[256]; /* the first fires of this advance, for tests that look */
  /* Property-test callbacks that change the wheel from inside fire. */
  entry *pool;
  unsigned pool_size;
  int mutate;
} firing;

/* The earliest deadline among linked entries, by brute force. */
static uint64_t earliest(const entry *es, unsigned n, unsigned *linked) {
  uint64_t min = UINT64_MAX;
  *linked = 0;
  for (unsigned i = 0; i < n; i++)
    if (art_timer_linked(&es[i].timer)) {
      (*linked)++;
      if (es[i].timer.deadline_ns < min) min = es[i].timer.deadline_ns;
    }
  return min;
}

/* next_expiry is a lower bound of every deadline; exact with one entry. */
static void check_next_expiry(const art_wheel *w, const entry *es, unsigned n) {
  unsigned linked;
  uint64_t min = earliest(es, n, &linked);
  uint64_t next = art_wheel_next_expiry(w);
  CHECK(linked == art_wheel_count(w), "count %zu, linked %u", art_wheel_count(w), linked);
  CHECK(next <= min, "next_expiry %llu later than the earliest deadline %llu",
        (unsigned long long)next, (unsigned long long)min);
  if (linked == 1) CHECK(next == min, "one entry at %llu, next_expiry %llu", (unsigned long long)min,
                         (unsigned long long)next);
}

static void on_fire(art_timer *t, void *user) {
  firing *f = user;
  entry *e = ENTRY(t);
  CHECK(!art_timer_linked(t), "fired entry %u still linked", e->id);
  CHECK(f->now >= t->deadline_ns, "entry %u fired early: now %llu < deadline %llu", e->id,
        (unsigned long long)f->now, (unsigned long long)t->deadline_ns);
  CHECK(t->deadline_ns >= f->last_deadline, "entry %u out of order: %llu after %llu", e->id,
        (unsigned long long)t->deadline_ns, (unsigned long long)f->last_deadline);
  CHECK(!e->armed_in_fire, "entry %u inserted by fire, due already, fired in the same advance",
        e->id);
  f->last_deadline = t->deadline_ns;
  if (f->fired < sizeof f->order / sizeof f->order[0]) f->order[f->fired] = e;
  f->fired++;
  e->fires++;
  if (!f->mutate) return;
  if (f->fired % 61 == 0) check_next_expiry(f->wheel, f->pool, f->pool_size); /* mid-advance */
  /* Remove a random entry (perhaps one due in this same advance), and insert
   * another (perhaps this one again) at a deadline already reached or not. */
  art_wheel_remove(f->wheel, &f->pool[below(f->pool_size)].timer);
  entry *r = &f->pool[below(f->pool_size)];
  uint64_t deadline = below(2) ? f->now - below(f->now < MS ? f->now : MS) : f->now + 1 + below(MS);
  art_wheel_insert(f->wheel, &r->timer, deadline);
  r->armed_in_fire = deadline <= f->now;
}

static size_t advance(art_wheel *w, firing *f, uint64_t now) {
  f->wheel = w;
  f->now = now;
  f->fired = 0;
  size_t n = art_wheel_advance(w, now, on_fire, f);
  CHECK(n == f->fired, "advance says %zu fired, callback saw %zu", n, f->fired);
  return n;
}

static entry *entries_new(unsigned n) {
  entry *es = calloc(n, sizeof *es);
  CHECK(es, "out of memory");
  for (unsigned i = 0; i < n; i++) es[i].id = i;
  return es;
}

static art_wheel *wheel_new(uint64_t now) {
  art_wheel *w = art_wheel_new(now);
  CHECK(w, "art_wheel_new failed");
  return w;
}

/* ---- tests ------------------------------------------------------------------ */

static void test_basics(void) {
  art_wheel_free(NULL);
  art_wheel *w = wheel_new(5 * SEC);
  firing f = {0};
  entry es[2] = {{.id = 0}, {.id = 1}};
  art_timer *a = &es[0].timer, *b = &es[1].timer;
  CHECK(art_wheel_count(w) == 0 && art_wheel_next_expiry(w) == UINT64_MAX, "new wheel not empty");
  CHECK(!art_timer_linked(a), "zeroed entry linked");
  art_wheel_remove(w, a); /* not linked: a no-op */
  art_wheel_insert(w, a, 5 * SEC + 10 * MS);
  art_wheel_insert(w, b, 5 * SEC + 20 * MS);
  CHECK(art_timer_linked(a) && art_wheel_count(w) == 2, "insert did not link");
  art_wheel_insert(w, a, 5 * SEC + 30 * MS); /* moves a */
  CHECK(art_wheel_count(w) == 2, "moving an entry changed the count to %zu", art_wheel_count(w));
  CHECK(art_wheel_next_expiry(w) == 5 * SEC + 20 * MS, "next_expiry %llu",
        (unsigned long long)art_wheel_next_expiry(w));
  CHECK(advance(w, &f, 5 * SEC + 20 * MS - 1) == 0, "fired a nanosecond early");
  CHECK(advance(w, &f, 5 * SEC + 20 * MS) == 1 && !art_timer_linked(b), "b did not fire on time");
  art_wheel_remove(w, a);
  art_wheel_remove(w, a);
  CHECK(art_wheel_count(w) == 0 && !art_timer_linked(a), "remove did not unlink");
  CHECK(advance(w, &f, HOUR) == 0, "a removed entry fired");
  check_wheel(w);
  art_wheel_free(w);
  printf("PASS basics\n");
}

/* Deadlines spread over every level, inserted in random order, fire in
 * deadline order, whether time moves in one jump or in many small steps. */
static void test_ordering(void) {
  enum { N = 5000 };
  for (int jump = 0; jump < 2; jump++) {
    rng_state = 1;
    art_wheel *w = wheel_new(0);
    entry *es = entries_new(N);
    firing f = {0};
    uint64_t max = 0;
    for (unsigned i = 0; i < N; i++) {
      static const uint64_t spans[] = {2 * US, 100 * US, 10 * MS, SEC, 20 * SEC, 5 * HOUR};
      uint64_t d = below(spans[i % 6]);
      if (i % 7 == 0 && i) d = es[i - 1].timer.deadline_ns; /* ties */
      art_wheel_insert(w, &es[i].timer, d);
      if (d > max) max = d;
    }
    check_wheel(w);
    if (jump) {
      CHECK(advance(w, &f, max) == N, "one jump fired %zu of %d", f.fired, N);
    } else {
      uint64_t last = 0; /* the order must hold across advances too */
      size_t total = 0;
      for (uint64_t now = 0; art_wheel_count(w); now += 1 + below(now / 8 + 1000)) {
        advance(w, &f, now);
        if (f.fired) {
          CHECK(f.order[0]->timer.deadline_ns >= last, "order broken across advances");
          last = f.last_deadline;
        }
        total += f.fired;
      }
      CHECK(total == N, "steps fired %zu of %d", total, N);
    }
    for (unsigned i = 0; i < N; i++) CHECK(es[i].fires == 1, "entry %u fired %u times", i, es[i].fires);
    check_wheel(w);
    art_wheel_free(w);
    free(es);
  }
  /* Within one tick: reverse insertion order still fires by deadline. */
  art_wheel *w = wheel_new(0);
  entry *es = entries_new(200);
  firing f = {0};
  for (unsigned i = 0; i < 200; i++) art_wheel_insert(w, &es[i].timer, 10 * 1024 + 1000 - 5 * i);
  CHECK(advance(w, &f, 11 * 1024 - 1) == 200, "fired %zu of 200 in one tick", f.fired);
  for (unsigned i = 0; i < 200; i++) CHECK(f.order[i] == &es[199 - i], "tick order wrong at %u", i);
  art_wheel_free(w);
  free(es);
  printf("PASS ordering\n");
}

/* An advance that starts a fresh account of order and of fire's inserts. */
static size_t property_advance(art_wheel *w, firing *f, uint64_t now) {
  for (unsigned i = 0; i < f->pool_size; i++) f->pool[i].armed_in_fire = 0;
  f->last_deadline = 0; /* passed deadlines inserted since may fire first */
  return advance(w, f, now);
}

/* The property test: random inserts (past, near, far), removals and advances
 * by random steps. After every advance, nothing fired early (on_fire checks)
 * and everything due has fired; next_expiry is a lower bound throughout. With
 * `mutate`, every fire also removes and inserts entries. */
static void property(uint64_t seed, int mutate, const char *name) {
  enum { M = 3000, OPS = 60000 };
  rng_state = seed;
  uint64_t now = below(HOUR);
  art_wheel *w = wheel_new(now);
  entry *es = entries_new(M);
  firing f = {.pool = es, .pool_size = M, .mutate = mutate};
  size_t inserted = 0, removed = 0, fired = 0;
  for (unsigned op = 0; op < OPS; op++) {
    unsigned r = (unsigned)below(100);
    if (r < 55) {
      static const uint64_t spans[] = {0, 1, 2 * US, 100 * US, 10 * MS, 2 * SEC, 3 * HOUR, 0};
      unsigned kind = (unsigned)below(8);
      uint64_t d;
      if (kind == 0) d = now - below(now < SEC ? now + 1 : SEC); /* passed */
      else if (kind == 7) d = now + below(UINT64_MAX - now); /* anywhere ahead */
      else d = now + below(spans[kind] + 1);
      entry *e = &es[below(M)];
      if (!art_timer_linked(&e->timer)) inserted++;
      art_wheel_insert(w, &e->timer, d);
    } else if (r < 75) {
      entry *e = &es[below(M)];
      removed += art_timer_linked(&e->timer) != 0;
      art_wheel_remove(w, &e->timer);
    } else if (r < 78) {
      /* A clock that went back: nothing moves, nothing fires early. */
      uint64_t back = now - below(now < SEC ? now + 1 : SEC);
      uint64_t elapsed = w->elapsed;
      fired += property_advance(w, &f, back);
      CHECK(w->elapsed == elapsed, "the clock went back with now_ns");
    } else {
      static const uint64_t steps[] = {0, 1000, 100 * US, 5 * MS, 500 * MS, 20 * SEC, 2 * HOUR};
      uint64_t step = below(steps[below(7)] + 1);
      if (step > UINT64_MAX - now) step = UINT64_MAX - now;
      now += step;
      fired += property_advance(w, &f, now);
      CHECK(w->elapsed == now >> TICK_SHIFT, "clock at tick %llu after advancing to %llu",
            (unsigned long long)w->elapsed, (unsigned long long)now);
      for (unsigned i = 0; i < M; i++) {
        const art_timer *t = &es[i].timer;
        if (art_timer_linked(t) && t->deadline_ns <= now)
          CHECK(es[i].armed_in_fire, "entry %u due at %llu still linked at %llu", i,
                (unsigned long long)t->deadline_ns, (unsigned long long)now);
      }
      uint64_t next = art_wheel_next_expiry(w);
      if (!mutate) CHECK(next > now || !art_wheel_count(w), "no progress: next_expiry %llu, now %llu",
                         (unsigned long long)next, (unsigned long long)now);
    }
    if (op % 16 == 0) check_next_expiry(w, es, M);
    if (op % 128 == 0) check_wheel(w);
  }
  check_wheel(w);
  if (!mutate) CHECK(inserted == removed + fired + art_wheel_count(w),
                     "inserted %zu != removed %zu + fired %zu + linked %zu", inserted, removed, fired,
                     art_wheel_count(w));
  art_wheel_free(w);
  free(es);
  printf("PASS %s (%zu fired, %zu removed)\n", name, fired, removed);
}

/* Remove a random half of many entries; only the other half fires. */
static void test_remove_random(void) {
  enum { N = 20000 };
  rng_state = 3;
  art_wheel *w = wheel_new(MS);
  entry *es = entries_new(N);
  firing f = {0};
  for (unsigned i = 0; i < N; i++) art_wheel_insert(w, &es[i].timer, MS + below(30 * SEC));
  unsigned kept = N;
  for (unsigned i = 0; i < N; i++) {
    entry *e = &es[below(N)];
    if (art_timer_linked(&e->timer)) kept--;
    art_wheel_remove(w, &e->timer);
    if (i % 1000 == 0) check_next_expiry(w, es, N);
  }
  CHECK(art_wheel_count(w) == kept, "count %zu, kept %u", art_wheel_count(w), kept);
  check_wheel(w);
  for (unsigned i = 0; i < N; i++) es[i].fires = art_timer_linked(&es[i].timer) ? 0 : 100;
  for (uint64_t now = MS; art_wheel_count(w); now += 7 * MS) advance(w, &f, now);
  for (unsigned i = 0; i < N; i++)
    CHECK(es[i].fires == 1 || es[i].fires == 100, "entry %u: %u fires", i, es[i].fires);
  check_wheel(w);
  art_wheel_free(w);
  free(es);
  printf("PASS remove_random\n");
}

/* What fire() may do to the wheel it is called from. */
typedef struct rearm {
  art_wheel *w;
  art_timer self, other, victim, later;
  uint64_t now, period;
  unsigned self_fires, other_fires, victim_fires, later_fires;
} rearm;

static void rearm_fire(art_timer *t, void *user) {
  rearm *r = user;
  CHECK(r->now >= t->deadline_ns, "fired early");
  if (t == &r->self) {
    r->self_fires++;
    art_wheel_insert(r->w, t, t->deadline_ns + r->period); /* a periodic timer */
    CHECK(art_wheel_next_expiry(r->w) <= t->deadline_ns, "next_expiry inside fire");
    art_wheel_remove(r->w, &r->victim); /* perhaps due in this same advance */
    if (r->self_fires == 1) art_wheel_insert(r->w, &r->later, r->now + 1);
    CHECK(art_wheel_advance(r->w, r->now, rearm_fire, r) == 0, "nested advance ran");
  } else if (t == &r->victim) {
    r->victim_fires++;
  } else if (t == &r->later) {
    r->later_fires++;
  } else {
    r->other_fires++;
  }
}

static void test_insert_from_fire(void) {
  /* Period 0: re-armed at a deadline already reached, so it fires once per
   * advance instead of holding one advance forever. The victim, due in the
   * same tick, is removed by the first fire; `later`, inserted by it for
   * the next nanosecond, fires at the next advance. */
  rearm r = {.period = 0};
  r.w = wheel_new(0);
  art_wheel_insert(r.w, &r.self, 100);
  art_wheel_insert(r.w, &r.victim, 100);
  for (r.now = 100; r.now < 110; r.now++) {
    size_t n = art_wheel_advance(r.w, r.now, rearm_fire, &r);
    CHECK(n == 1u + (r.now == 101), "%zu fired at %llu", n, (unsigned long long)r.now);
    check_wheel(r.w);
  }
  CHECK(r.self_fires == 10 && r.victim_fires == 0 && r.later_fires == 1, "self %u, victim %u, later %u",
        r.self_fires, r.victim_fires, r.later_fires);
  CHECK(art_wheel_count(r.w) == 1 && art_wheel_next_expiry(r.w) == 100, "after due re-arms");
  art_wheel_free(r.w);

  /* A 250 us period, advanced by 1 ms: each advance fires it once (its
   * re-arm at a passed deadline waits for the next advance), so a periodic
   * timer that fell behind catches up one period per advance. */
  rearm p = {.period = 250 * US};
  p.w = wheel_new(0);
  art_wheel_insert(p.w, &p.self, 250 * US);
  art_wheel_insert(p.w, &p.other, 3 * MS + 1);
  for (p.now = MS; p.now <= 10 * MS; p.now += MS) {
    art_wheel_advance(p.w, p.now, rearm_fire, &p);
    check_wheel(p.w);
  }
  CHECK(p.self_fires == 10 && p.self.deadline_ns == 11 * 250 * US, "periodic fired %u times",
        p.self_fires);
  CHECK(p.other_fires == 1 && p.later_fires == 1, "other fired %u times", p.other_fires);
  /* Once time stands still, it catches up and then waits for its deadline. */
  p.now = 10 * MS;
  for (unsigned i = 0; i < 40; i++) art_wheel_advance(p.w, p.now, rearm_fire, &p);
  CHECK(p.self_fires == 40 && p.self.deadline_ns == 10 * MS + p.period, "caught up: %u fires",
        p.self_fires);
  art_wheel_free(p.w);
  printf("PASS insert_from_fire\n");
}

static void test_far_and_past(void) {
  firing f = {0};
  /* Past: a deadline behind the wheel's clock fires at the next advance,
   * even one that does not move the clock. */
  art_wheel *w = wheel_new(HOUR);
  entry *es = entries_new(8);
  art_wheel_insert(w, &es[0].timer, 0);
  art_wheel_insert(w, &es[1].timer, HOUR - 1);
  art_wheel_insert(w, &es[2].timer, HOUR);
  CHECK(art_wheel_next_expiry(w) == 0, "next_expiry %llu with a deadline of 0",
        (unsigned long long)art_wheel_next_expiry(w));
  check_wheel(w);
  CHECK(advance(w, &f, HOUR) == 3, "passed deadlines: %zu fired", f.fired);
  CHECK(f.order[0] == &es[0] && f.order[1] == &es[1] && f.order[2] == &es[2], "order");
  /* Time going backwards moves nothing and fires nothing early. */
  art_wheel_insert(w, &es[3].timer, HOUR + 10);
  CHECK(advance(w, &f, HOUR - SEC) == 0, "fired when time went back");
  CHECK(advance(w, &f, HOUR + 10) == 1, "did not fire after time went back");
  art_wheel_free(w);

  /* Far: hours, days, and the end of the clock. */
  w = wheel_new(0);
  f.last_deadline = 0;
  const uint64_t far[] = {3 * HOUR, 3 * HOUR + 1, 40 * 24 * HOUR, 1ull << 63, UINT64_MAX - 1, UINT64_MAX};
  for (unsigned i = 0; i < 6; i++) art_wheel_insert(w, &es[i].timer, far[i]);
  check_wheel(w);
  CHECK(art_wheel_next_expiry(w) == 3 * HOUR, "next_expiry %llu",
        (unsigned long long)art_wheel_next_expiry(w));
  for (unsigned i = 0; i < 6; i++) {
    CHECK(advance(w, &f, far[i] - 1) == 0, "deadline %u fired a nanosecond early", i);
    CHECK(art_wheel_next_expiry(w) == far[i], "next_expiry before deadline %u: %llu", i,
          (unsigned long long)art_wheel_next_expiry(w));
    CHECK(advance(w, &f, far[i]) == 1 && f.order[0] == &es[i], "deadline %u did not fire", i);
    check_wheel(w);
  }
  CHECK(art_wheel_count(w) == 0 && art_wheel_next_expiry(w) == UINT64_MAX, "not empty at the end");
  art_wheel_free(w);

  /* A wheel whose clock starts near the end. */
  w = wheel_new(UINT64_MAX - SEC);
  f.last_deadline = 0;
  art_wheel_insert(w, &es[6].timer, UINT64_MAX - 1);
  art_wheel_insert(w, &es[7].timer, 5);
  CHECK(advance(w, &f, UINT64_MAX - 2) == 1 && f.order[0] == &es[7], "past at the end");
  CHECK(advance(w, &f, UINT64_MAX) == 1 && f.order[0] == &es[6], "last deadline");
  art_wheel_free(w);
  free(es);
  printf("PASS far_and_past\n");
}

/* 100,000 live timers: counts, an exact next_expiry, and all of them firing
 * in order as time moves in 1 ms steps; then again, removing them all. */
static void test_many(void) {
  enum { N = 100000 };
  rng_state = 4;
  art_wheel *w = wheel_new(SEC);
  entry *es = entries_new(N);
  firing f = {0};
  for (unsigned i = 0; i < N; i++) art_wheel_insert(w, &es[i].timer, SEC + below(10 * SEC));
  CHECK(art_wheel_count(w) == N, "count %zu", art_wheel_count(w));
  check_wheel(w);
  unsigned linked;
  uint64_t min = earliest(es, N, &linked);
  CHECK(art_wheel_next_expiry(w) == min, "next_expiry %llu, earliest %llu",
        (unsigned long long)art_wheel_next_expiry(w), (unsigned long long)min);
  size_t total = 0;
  for (uint64_t now = SEC; art_wheel_count(w); now += MS) {
    uint64_t next = art_wheel_next_expiry(w);
    total += advance(w, &f, now); /* on_fire checks the order across advances too */
    CHECK(art_wheel_count(w) == N - total, "count %zu after %zu fired", art_wheel_count(w), total);
    if (next > now) CHECK(f.fired == 0, "fired before next_expiry");
  }
  CHECK(total == N, "fired %zu", total);
  check_wheel(w);
  for (unsigned i = 0; i < N; i++) art_wheel_insert(w, &es[i].timer, 11 * SEC + below(HOUR));
  for (unsigned i = N; i-- > 0;) {
    art_wheel_remove(w, &es[(i * 7919u) % N].timer);
    CHECK(art_wheel_count(w) == i, "count %zu after removals", art_wheel_count(w));
  }
  CHECK(art_wheel_next_expiry(w) == UINT64_MAX, "empty wheel with an expiry");
  check_wheel(w);
  art_wheel_free(w);
  free(es);
  printf("PASS many (100000 live)\n");
}

/* next_expiry with one entry at each distance is that entry's deadline; with
 * two entries in one slot and the earlier removed it may be early, but never
 * before the slot starts, and one advance makes it exact again. */
static void test_next_expiry(void) {
  firing f = {0};
  art_wheel *w = wheel_new(7 * SEC + 123);
  art_timer a = {0}, b = {0};
  for (uint64_t d = 1; d < 10 * HOUR; d = d * 3 + 1) {
    art_wheel_insert(w, &a, 7 * SEC + 123 + d);
    CHECK(art_wheel_next_expiry(w) == a.deadline_ns, "one entry %llu ns ahead: next_expiry %llu",
          (unsigned long long)d, (unsigned long long)art_wheel_next_expiry(w));
  }
  art_wheel_remove(w, &a);
  uint64_t base = 8 * SEC; /* a, b in one level-3 slot (268 ms to 17 s) */
  art_wheel_insert(w, &a, base + 2 * SEC);
  art_wheel_insert(w, &b, base + 2 * SEC + 50 * MS);
  CHECK(art_wheel_next_expiry(w) == a.deadline_ns, "two entries");
  art_wheel_insert(w, &b, base + 2 * SEC + 60 * MS);
  art_wheel_insert(w, &a, base + 2 * SEC + 70 * MS);
  CHECK(art_wheel_next_expiry(w) <= b.deadline_ns, "after moves");
  art_wheel_remove(w, &b);
  CHECK(art_wheel_next_expiry(w) == a.deadline_ns, "one left: exact again");
  art_timer c = {0};
  art_wheel_insert(w, &b, base + 2 * SEC + 10 * MS);
  art_wheel_insert(w, &c, base + 2 * SEC + 90 * MS);
  art_wheel_remove(w, &b);
  uint64_t next = art_wheel_next_expiry(w);
  CHECK(next <= a.deadline_ns, "stale bound later than the earliest");
  CHECK(advance(w, &f, next) == 0, "advance to a stale bound fired");
  CHECK(art_wheel_next_expiry(w) == a.deadline_ns, "not exact after the advance: %llu",
        (unsigned long long)art_wheel_next_expiry(w));
  check_wheel(w);
  art_wheel_free(w);
  printf("PASS next_expiry\n");
}

/* art_wheel_advance_max in batches fires what one advance would, in the
 * same order, with nothing fired twice; a remove between batches takes a
 * pending entry out; next_expiry counts what is left pending. */
static void test_advance_in_batches(void) {
  enum { N = 3000 };
  rng_state = 7;
  art_wheel *w = wheel_new(0);
  entry *es = entries_new(N);
  firing f = {0};
  for (unsigned i = 0; i < N; i++) art_wheel_insert(w, &es[i].timer, below(50 * MS));
  art_wheel_remove(w, &es[5].timer); /* never fires */
  uint64_t now = 60 * MS, last = 0;
  size_t total = 0, batches = 0;
  f.wheel = w;
  f.now = now;
  for (;;) {
    f.fired = 0;
    f.last_deadline = last;
    size_t n = art_wheel_advance_max(w, now, on_fire, &f, 97);
    CHECK(n == f.fired && n <= 97, "batch fired %zu (callback %zu)", n, f.fired);
    if (n) last = f.last_deadline;
    total += n;
    batches++;
    check_wheel(w);
    if (n < 97) break;
    if (batches == 3) { /* a pending entry removed between batches */
      for (unsigned i = 0; i < N; i++) {
        if (art_timer_linked(&es[i].timer)) {
          art_wheel_remove(w, &es[i].timer);
          total++; /* counted as if it fired: it was due */
          es[i].fires = 1;
          break;
        }
      }
    }
    CHECK(art_wheel_next_expiry(w) <= now, "next_expiry %llu past now with entries pending",
          (unsigned long long)art_wheel_next_expiry(w));
  }
  CHECK(total == N - 1, "batches fired %zu of %d", total, N - 1);
  CHECK(art_wheel_count(w) == 0, "%zu left", art_wheel_count(w));
  for (unsigned i = 0; i < N; i++) CHECK(es[i].fires == (i != 5), "entry %u fired %u times", i, es[i].fires);
  art_wheel_free(w);
  free(es);
  printf("PASS advance_in_batches (%zu batches)\n", batches);
}

int main(void) {
  alarm(60); /* a looping advance fails the run instead of hanging it */
  test_advance_in_batches();
  test_basics();
  test_ordering();
  property(11, 0, "never_early");
  property(12, 0, "never_early_seed2");
  property(13, 1, "never_early_fire_mutates");
  test_remove_random();
  test_insert_from_fire();
  test_far_and_past();
  test_many();
  test_next_expiry();
  printf("PASS all timer tests\n");
  return 0;
}
