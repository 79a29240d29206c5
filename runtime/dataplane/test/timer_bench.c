/* timer_bench.c -- what the timing wheel costs, in ns per operation. Not a
 * test (tests never time things): `make timer-bench` builds it with -O2 and
 * runs it. Each figure is the best of several rounds, over N entries with
 * deadlines spread uniformly over a span (uniform random, fixed seed), so
 * they land on every level a timeout of that length uses.
 *
 *   insert        into a wheel already holding N live entries
 *   remove        of those, in random order (each one, and its neighbours
 *                 in its slot, a cache miss once N entries outgrow the cache)
 *   arm+cancel    one insert and one remove with N live: a timeout that is
 *                 armed and then cancelled because the I/O won
 *   fire          advance() cost per entry fired, time moving in 1 ms steps
 *                 until all N have fired (cascades and slot crossings
 *                 included)
 *   fire, 1 jump  the same, in one advance past the last deadline
 *   next_expiry   with N live
 *
 * Entries are in memory in insertion order and deadlines are random, so with
 * N beyond the cache every cascade and fire is a cache miss on the entry; the
 * last line puts the entries in deadline order to show the wheel's own cost.
 */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "../art_timer.h"

#define MS 1000000ull
#define SEC (1000ull * MS)
#define ROUNDS 7

static uint64_t rng = 42;
static uint64_t rnd(void) { /* splitmix64 */
  uint64_t z = (rng += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

static uint64_t clock_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static size_t fired;
static volatile uint64_t sink; /* keeps the next_expiry calls */
static void count_fire(art_timer *t, void *user) {
  (void)t;
  (void)user;
  fired++;
}

static double min_of(double a, double b) { return a < b ? a : b; }

static int by_value(const void *a, const void *b) {
  uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
  return (x > y) - (x < y);
}

/* in_order: entries sit in memory in deadline order, so firing walks memory
 * forwards; what is left is the wheel's own work, without cache misses. */
static void run(size_t n, uint64_t span, int in_order) {
  art_timer *live = calloc(n, sizeof *live), *extra = calloc(n, sizeof *extra);
  uint64_t *deadline = malloc(n * sizeof *deadline), *extra_deadline = malloc(n * sizeof *deadline);
  size_t *order = malloc(n * sizeof *order);
  if (!live || !extra || !deadline || !extra_deadline || !order) abort();
  const uint64_t start = 10 * SEC;
  double insert = 1e9, remove = 1e9, pair = 1e9, fire = 1e9, jump = 1e9, next = 1e9;
  uint64_t sum = 0;
  for (int round = 0; round < ROUNDS; round++) {
    for (size_t i = 0; i < n; i++) deadline[i] = start + 1 + rnd() % span;
    if (in_order) qsort(deadline, n, sizeof *deadline, by_value);
    for (size_t i = 0; i < n; i++) extra_deadline[i] = start + 1 + rnd() % span;
    for (size_t i = 0; i < n; i++) order[i] = i;
    for (size_t i = n; i > 1; i--) {
      size_t j = rnd() % i, t = order[i - 1];
      order[i - 1] = order[j];
      order[j] = t;
    }
    art_wheel *w = art_wheel_new(start);
    if (!w) abort();

    /* Fill to n, then time n more inserts with n live. */
    for (size_t i = 0; i < n; i++) art_wheel_insert(w, &live[i], deadline[i]);
    uint64_t t0 = clock_ns();
    for (size_t i = 0; i < n; i++) art_wheel_insert(w, &extra[i], extra_deadline[i]);
    insert = min_of(insert, (double)(clock_ns() - t0) / (double)n);

    t0 = clock_ns();
    for (size_t i = 0; i < n; i++) art_wheel_remove(w, &extra[order[i]]);
    remove = min_of(remove, (double)(clock_ns() - t0) / (double)n);

    t0 = clock_ns();
    for (size_t i = 0; i < n; i++) {
      art_wheel_insert(w, &extra[i], extra_deadline[i]);
      art_wheel_remove(w, &extra[i]);
    }
    pair = min_of(pair, (double)(clock_ns() - t0) / (double)n);

    t0 = clock_ns();
    for (size_t i = 0; i < n; i++) sum += art_wheel_next_expiry(w);
    next = min_of(next, (double)(clock_ns() - t0) / (double)n);

    fired = 0;
    t0 = clock_ns();
    for (uint64_t now = start; art_wheel_count(w); now += MS) art_wheel_advance(w, now, count_fire, NULL);
    fire = min_of(fire, (double)(clock_ns() - t0) / (double)fired);
    if (fired != n) abort();

    for (size_t i = 0; i < n; i++) art_wheel_insert(w, &live[i], deadline[i] + span + 2);
    fired = 0;
    t0 = clock_ns();
    art_wheel_advance(w, start + 3 * span + 3, count_fire, NULL);
    jump = min_of(jump, (double)(clock_ns() - t0) / (double)fired);
    if (fired != n) abort();
    art_wheel_free(w);
  }
  sink = sum;
  printf("%8zu live over %5.0f ms%-17s  insert %5.1f  remove %5.1f  arm+cancel %5.1f  fire %5.1f  "
         "fire,1 jump %5.1f  next_expiry %4.1f  (ns/op)\n",
         n, (double)span / MS, in_order ? ", in memory order" : "", insert, remove, pair, fire, jump, next);
  free(live);
  free(extra);
  free(deadline);
  free(extra_deadline);
  free(order);
}

int main(void) {
  run(1000, 100 * MS, 0);
  run(100000, 100 * MS, 0);
  run(100000, 10 * SEC, 0);
  run(1000000, 10 * SEC, 0);
  run(1000000, 10 * SEC, 1);
  return 0;
}
