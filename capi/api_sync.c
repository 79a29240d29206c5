/* api_sync.c -- the public synchronization functions (see "Synchronization"
 * in asyncrt.h): argument checks here, the work in
 * runtime/dataplane/art_sync.c. */
#include <stddef.h>
#include <stdint.h>

#include "../runtime/dataplane/art.h"

#define REFUSE_IN_CHILD()                                                                          \
  do {                                                                                             \
    if (art_is_forked()) return art_fail_forked();                                                 \
  } while (0)

static int resolve(const void *handle, int kind, const char *who, art_sync **s) {
  return art_handle_resolve(handle, kind, who, (void **)s);
}

/* The common part of every *_new: checks, then the object, published. */
static int sync_new(int kind, unsigned flags, uint64_t count, uint32_t parties, void **out, const char *who) {
  if (!out) return art_fail(ASYNCRT_EINVAL, "%s: out is NULL", who);
  *out = NULL;
  if (flags & ~ASYNCRT_SYNC_LOCAL) return art_fail(ASYNCRT_EINVAL, "%s: unknown flags %#x", who, flags);
  art_sync *s;
  int rc = art_sync_new(kind, flags, count, parties, &s);
  if (rc) return rc;
  *out = (void *)(uintptr_t)art_sync_handle(s);
  return ASYNCRT_OK;
}

/* The common part of every wait: the object is resolved again by the
 * future (which pins the object until it completes or is dropped). */
static int sync_wait(const void *handle, int kind, uint64_t permits, asyncrt_wait *w, asyncrt_future *out,
                     const char *who) {
  art_sync *s;
  int rc = resolve(handle, kind, who, &s);
  if (rc) return rc;
  if (!w || !out) return art_fail(ASYNCRT_EINVAL, "%s: %s is NULL", who, w ? "out" : "the wait storage");
  art_sync_wait_init(s, permits, w, out);
  return ASYNCRT_OK;
}

static int sync_free(const void *handle, int kind, const char *who) {
  if (!handle) return ASYNCRT_OK;
  art_sync *s;
  int rc = resolve(handle, kind, who, &s);
  return rc ? rc : art_sync_free(s);
}

/* ---- mutex ------------------------------------------------------------------- */

int asyncrt_mutex_new(unsigned flags, asyncrt_mutex **out) {
  REFUSE_IN_CHILD();
  return sync_new(ART_H_MUTEX, flags, 0, 0, (void **)out, "asyncrt_mutex_new");
}

int asyncrt_mutex_lock(asyncrt_mutex *m, asyncrt_wait *w, asyncrt_future *out) {
  REFUSE_IN_CHILD();
  return sync_wait(m, ART_H_MUTEX, 1, w, out, "asyncrt_mutex_lock: mutex");
}

int asyncrt_mutex_try_lock(asyncrt_mutex *m) {
  REFUSE_IN_CHILD();
  art_sync *s;
  int rc = resolve(m, ART_H_MUTEX, "asyncrt_mutex_try_lock: mutex", &s);
  return rc ? rc : art_mutex_try_lock(s);
}

int asyncrt_mutex_unlock(asyncrt_mutex *m) {
  REFUSE_IN_CHILD();
  art_sync *s;
  int rc = resolve(m, ART_H_MUTEX, "asyncrt_mutex_unlock: mutex", &s);
  return rc ? rc : art_mutex_unlock(s);
}

int asyncrt_mutex_free(asyncrt_mutex *m) {
  REFUSE_IN_CHILD();
  return sync_free(m, ART_H_MUTEX, "asyncrt_mutex_free: mutex");
}

/* ---- semaphore --------------------------------------------------------------- */

int asyncrt_semaphore_new(unsigned flags, uint64_t permits, asyncrt_semaphore **out) {
  REFUSE_IN_CHILD();
  return sync_new(ART_H_SEMAPHORE, flags, permits, 0, (void **)out, "asyncrt_semaphore_new");
}

int asyncrt_semaphore_acquire(asyncrt_semaphore *s, uint64_t n, asyncrt_wait *w, asyncrt_future *out) {
  REFUSE_IN_CHILD();
  if (!n) return art_fail(ASYNCRT_EINVAL, "asyncrt_semaphore_acquire: n is 0");
  return sync_wait(s, ART_H_SEMAPHORE, n, w, out, "asyncrt_semaphore_acquire: semaphore");
}

int asyncrt_semaphore_try_acquire(asyncrt_semaphore *s, uint64_t n) {
  REFUSE_IN_CHILD();
  art_sync *o;
  int rc = resolve(s, ART_H_SEMAPHORE, "asyncrt_semaphore_try_acquire: semaphore", &o);
  if (rc) return rc;
  if (!n) return art_fail(ASYNCRT_EINVAL, "asyncrt_semaphore_try_acquire: n is 0");
  return art_semaphore_try_acquire(o, n);
}

int asyncrt_semaphore_release(asyncrt_semaphore *s, uint64_t n) {
  REFUSE_IN_CHILD();
  art_sync *o;
  int rc = resolve(s, ART_H_SEMAPHORE, "asyncrt_semaphore_release: semaphore", &o);
  return rc ? rc : art_semaphore_release(o, n);
}

int asyncrt_semaphore_available(asyncrt_semaphore *s, uint64_t *permits) {
  REFUSE_IN_CHILD();
  art_sync *o;
  int rc = resolve(s, ART_H_SEMAPHORE, "asyncrt_semaphore_available: semaphore", &o);
  if (rc) return rc;
  if (!permits) return art_fail(ASYNCRT_EINVAL, "asyncrt_semaphore_available: permits is NULL");
  *permits = art_semaphore_available(o);
  return ASYNCRT_OK;
}

int asyncrt_semaphore_free(asyncrt_semaphore *s) {
  REFUSE_IN_CHILD();
  return sync_free(s, ART_H_SEMAPHORE, "asyncrt_semaphore_free: semaphore");
}

/* ---- notify ------------------------------------------------------------------ */

int asyncrt_notify_new(unsigned flags, asyncrt_notify **out) {
  REFUSE_IN_CHILD();
  return sync_new(ART_H_NOTIFY, flags, 0, 0, (void **)out, "asyncrt_notify_new");
}

int asyncrt_notify_wait(asyncrt_notify *n, asyncrt_wait *w, asyncrt_future *out) {
  REFUSE_IN_CHILD();
  return sync_wait(n, ART_H_NOTIFY, 0, w, out, "asyncrt_notify_wait: notify");
}

int asyncrt_notify_one(asyncrt_notify *n) {
  REFUSE_IN_CHILD();
  art_sync *s;
  int rc = resolve(n, ART_H_NOTIFY, "asyncrt_notify_one: notify", &s);
  if (!rc) art_notify_one(s);
  return rc;
}

int asyncrt_notify_all(asyncrt_notify *n) {
  REFUSE_IN_CHILD();
  art_sync *s;
  int rc = resolve(n, ART_H_NOTIFY, "asyncrt_notify_all: notify", &s);
  if (!rc) art_notify_all(s);
  return rc;
}

int asyncrt_notify_free(asyncrt_notify *n) {
  REFUSE_IN_CHILD();
  return sync_free(n, ART_H_NOTIFY, "asyncrt_notify_free: notify");
}

/* ---- barrier ----------------------------------------------------------------- */

int asyncrt_barrier_new(unsigned flags, uint32_t parties, asyncrt_barrier **out) {
  REFUSE_IN_CHILD();
  if (!parties) {
    if (out) *out = NULL;
    return art_fail(ASYNCRT_EINVAL, "asyncrt_barrier_new: parties is 0");
  }
  return sync_new(ART_H_BARRIER, flags, 0, parties, (void **)out, "asyncrt_barrier_new");
}

int asyncrt_barrier_wait(asyncrt_barrier *b, asyncrt_wait *w, asyncrt_future *out) {
  REFUSE_IN_CHILD();
  return sync_wait(b, ART_H_BARRIER, 0, w, out, "asyncrt_barrier_wait: barrier");
}

int asyncrt_barrier_free(asyncrt_barrier *b) {
  REFUSE_IN_CHILD();
  return sync_free(b, ART_H_BARRIER, "asyncrt_barrier_free: barrier");
}
