/* art_chan.c -- channels: oneshot, mpsc (bounded and unbounded), broadcast,
 * watch. Every send and receive is worked here, in C memory.
 *
 * A channel is a ring of elem_size-byte slots (mpsc: `len` values from
 * `head`; broadcast: the last `cap` values by sequence number; watch and
 * oneshot: one slot) under a short lock, which a LOCAL channel skips.
 *
 * Endpoints are refcounted objects behind generation-tagged handles: the
 * handle holds one reference, each send or receive future another, so a
 * future may outlive the handle it was made from. An endpoint's death
 * uncounts it from the channel (the last sender closes the channel for its
 * receivers, the last receiver for its senders), and the channel dies with
 * its last endpoint.
 *
 * Waiting. A receiver endpoint keeps one registered waker, replaced only
 * when a poll brings a different one, so a task that receives in a loop
 * clones its waker once, and a send wakes it by reference only when it is
 * marked waiting: a message costs the lock and, when the receiver sleeps,
 * one schedule -- no reference counting. Senders blocked on a full bounded
 * mpsc queue are a FIFO list of their ops, each with its own waker clone;
 * room wakes the first, which sends at its next poll (a new sender does not
 * overtake a queued one), and a woken op that is dropped passes the wake on.
 * Under the lock only an asyncrt task's waker is woken (queueing it runs no
 * user code); any other waker -- its clone, wake and drop alike -- runs
 * after the lock (wake_or_defer).
 */
#include <stdlib.h>
#include <string.h>

#include "art.h"

typedef struct art_chan art_chan;
typedef struct chan_ep chan_ep;
typedef struct chan_op chan_op;

/* The private words of an asyncrt_chan_op. */
struct chan_op {
  chan_ep *ep;          /* the future form's endpoint (a reference), else NULL */
  const void *value;    /* the future form's value to send */
  chan_op *next, *prev; /* the channel's blocked senders, under its lock */
  asyncrt_waker waker;  /* a blocked sender's */
  /* OP_IDLE, OP_QUEUED, OP_WOKEN. Only the op's poller leaves or enters
   * IDLE; other threads move QUEUED to WOKEN under the lock. So the poller
   * may look for IDLE without the lock (atomic: TSan sees the others). */
  _Atomic uint32_t state;
  uint32_t is_send;
  uint64_t reserved;
};
_Static_assert(sizeof(chan_op) <= sizeof(asyncrt_chan_op), "asyncrt_chan_op is too small");

enum { OP_IDLE = 0, OP_QUEUED = 1, OP_WOKEN = 2 };

struct chan_ep {
  art_chan *ch;
  _Atomic uint32_t refs; /* the handle, and each future made on it */
  int is_tx;
  uint64_t handle;
  /* A receiver's: its registered waker, whether a receive waits, its place
   * (broadcast: the next sequence number; watch: the version it saw). */
  asyncrt_waker waker;
  int waiting;
  /* The task whose waker is registered while `waiting` is set, when that
   * waker is an asyncrt task's (else 0): set and cleared with `waiting`
   * under the lock, read without it by that task's next receive, which
   * then knows nothing was sent since and stays pending without the lock. */
  _Atomic uintptr_t armed;
  uint64_t pos;
  chan_ep *rx_next, *rx_prev; /* the channel's receivers, under its lock */
};

struct art_chan {
  art_lock lock;
  unsigned kind, local;
  size_t elem;
  void (*value_drop)(void *, void *);
  void *user;
  uint32_t senders, receivers, endpoints; /* live endpoints, under the lock */
  char *buf;
  size_t cap;       /* slots in buf (mpsc unbounded: grows) */
  size_t bound;     /* mpsc: the capacity asked (0: unbounded) */
  size_t head, len; /* mpsc ring */
  uint64_t seq;     /* broadcast: values sent; watch: version; oneshot: 1 once sent */
  int taken;        /* oneshot: its value was received */
  chan_ep *rx_list;
  chan_op *send_head, *send_tail;
};

static inline chan_op *op_priv(asyncrt_chan_op *op) { return (chan_op *)op; }
#define ST(o) atomic_load_explicit(&(o)->state, memory_order_relaxed)
#define SET_ST(o, v) atomic_store_explicit(&(o)->state, (v), memory_order_relaxed)

/* Copies one value: the common sizes as one load and store, not a call. */
static inline void elem_copy(void *dst, const void *src, size_t n) {
  switch (n) {
  case 8: memcpy(dst, src, 8); break;
  case 4: memcpy(dst, src, 4); break;
  case 16: memcpy(dst, src, 16); break;
  default: memcpy(dst, src, n);
  }
}

static inline void ch_lock(art_chan *c) {
  if (!c->local) art_lock_acquire(&c->lock);
}
static inline void ch_unlock(art_chan *c) {
  if (!c->local) art_lock_release(&c->lock);
}

/* ---- creation and endpoints --------------------------------------------------- */

static chan_ep *ep_new(art_chan *c, int is_tx) {
  chan_ep *ep = calloc(1, sizeof *ep);
  if (!ep) return NULL;
  ep->ch = c;
  ep->is_tx = is_tx;
  atomic_init(&ep->refs, 1);
  ep->handle = art_handle_new(is_tx ? ART_H_SENDER : ART_H_RECEIVER, ep);
  if (!ep->handle) {
    free(ep);
    return NULL;
  }
  return ep;
}

static void chan_destroy(art_chan *c) {
  if (c->value_drop) {
    if (c->kind == ASYNCRT_CHANNEL_MPSC)
      for (size_t i = 0; i < c->len; i++) c->value_drop(c->buf + ((c->head + i) % c->cap) * c->elem, c->user);
    else if (c->kind == ASYNCRT_CHANNEL_ONESHOT && c->seq && !c->taken)
      c->value_drop(c->buf, c->user);
  }
  free(c->buf);
  free(c);
}

/* Links a new endpoint into c (its lock held). */
static void ep_attach(art_chan *c, chan_ep *ep) {
  c->endpoints++;
  if (ep->is_tx) {
    c->senders++;
    return;
  }
  c->receivers++;
  ep->rx_next = c->rx_list;
  if (c->rx_list) c->rx_list->rx_prev = ep;
  c->rx_list = ep;
  if (c->kind == ASYNCRT_CHANNEL_BROADCAST || c->kind == ASYNCRT_CHANNEL_WATCH) ep->pos = c->seq;
}

/* Wakes w (a registered waker that stays registered) from under the lock
 * if it is an asyncrt task's on a core asyncrt drives: queueing such a task
 * runs no user code and takes no lock that is ever held around a channel's,
 * and it costs no reference count. Any other waker (a foreign executor's
 * task, a user's waker) is cloned into *defer, to be woken after the lock.
 * Returns 1 if it deferred. */
static inline int wake_or_defer(asyncrt_waker *w, asyncrt_waker *defer) {
  if (w->vtable == &art_task_waker_vtable) {
    art_task *t = (art_task *)w->data;
    if (!__atomic_load_n(&t->exec, __ATOMIC_RELAXED)->is_foreign) {
      art_task_wake_by_ref(t);
      return 0;
    }
  }
  /* Any other waker's code (even its clone) is the caller's: the
   * registration is moved out, to be woken after the lock; the next poll
   * registers a fresh clone, made outside the lock too. */
  *defer = *w;
  *w = (asyncrt_waker){0};
  return 1;
}

/* Marks receiver r waiting or not (lock held); see `armed`. */
static inline void set_waiting(chan_ep *r, int waiting) {
  r->waiting = waiting;
  uintptr_t armed = waiting && r->waker.vtable == &art_task_waker_vtable ? (uintptr_t)r->waker.data : 0;
  atomic_store_explicit(&r->armed, armed, memory_order_release);
}

/* Wakes every waiting receiver (marked not waiting; they stay registered),
 * deferring up to `cap` into out (lock held). Returns how many it deferred;
 * *more if some are left waiting for another pass. */
static size_t take_rx_wakes(art_chan *c, asyncrt_waker *out, size_t cap, int *more) {
  size_t n = 0;
  *more = 0;
  for (chan_ep *r = c->rx_list; r; r = r->rx_next) {
    if (!r->waiting) continue;
    if (n == cap) {
      *more = 1;
      break;
    }
    set_waiting(r, 0);
    n += wake_or_defer(&r->waker, &out[n]);
  }
  return n;
}

/* Wakes every waiting receiver of c, in batches (the lock is not held). */
static void wake_receivers(art_chan *c) {
  for (;;) {
    asyncrt_waker w[32];
    int more;
    ch_lock(c);
    size_t n = take_rx_wakes(c, w, 32, &more);
    ch_unlock(c);
    for (size_t i = 0; i < n; i++) art_waker_wake(&w[i]);
    if (!more) return;
  }
}

/* Wakes the first blocked sender (lock held), marking it woken; a wake
 * that must wait for the unlock is returned. */
static asyncrt_waker take_send_wake(art_chan *c) {
  asyncrt_waker w = {0};
  chan_op *o = c->send_head;
  if (o && ST(o) == OP_QUEUED) {
    SET_ST(o, OP_WOKEN);
    wake_or_defer(&o->waker, &w);
  }
  return w;
}

/* Wakes every blocked sender (the receivers are gone). */
static void wake_all_senders(art_chan *c) {
  for (;;) {
    asyncrt_waker w = {0};
    ch_lock(c);
    for (chan_op *o = c->send_head; o; o = o->next)
      if (ST(o) == OP_QUEUED) {
        SET_ST(o, OP_WOKEN);
        if (wake_or_defer(&o->waker, &w)) break;
      }
    ch_unlock(c);
    if (!w.vtable) return;
    art_waker_wake(&w);
  }
}

static void ep_unref(chan_ep *ep) {
  if (atomic_fetch_sub_explicit(&ep->refs, 1, memory_order_acq_rel) != 1) return;
  art_chan *c = ep->ch;
  int close_rx = 0, close_tx = 0, last;
  asyncrt_waker mine = {0};
  ch_lock(c);
  if (ep->is_tx) {
    close_rx = --c->senders == 0;
  } else {
    if (ep->rx_prev) ep->rx_prev->rx_next = ep->rx_next;
    else c->rx_list = ep->rx_next;
    if (ep->rx_next) ep->rx_next->rx_prev = ep->rx_prev;
    close_tx = --c->receivers == 0;
    mine = ep->waker;
    ep->waker = (asyncrt_waker){0};
  }
  ch_unlock(c);
  art_waker_drop(&mine);
  free(ep);
  /* This endpoint still counts, so the channel outlives these wakes. */
  if (close_rx) wake_receivers(c); /* they drain, then see ECLOSED */
  if (close_tx) wake_all_senders(c);
  ch_lock(c);
  last = --c->endpoints == 0;
  ch_unlock(c);
  if (last) chan_destroy(c);
}

int art_channel_new(const asyncrt_channel_config *cfg, uint64_t *tx, uint64_t *rx) {
  art_chan *c = calloc(1, sizeof *c);
  if (!c) return art_fail(ASYNCRT_ENOMEM, "could not allocate a channel");
  c->kind = cfg->kind;
  c->local = (cfg->flags & ASYNCRT_CHANNEL_LOCAL) != 0;
  c->elem = cfg->elem_size;
  c->value_drop = cfg->value_drop;
  c->user = cfg->user;
  c->bound = c->kind == ASYNCRT_CHANNEL_MPSC ? cfg->capacity : 0;
  c->cap = c->kind == ASYNCRT_CHANNEL_BROADCAST ? cfg->capacity
           : c->kind == ASYNCRT_CHANNEL_MPSC   ? (cfg->capacity ? cfg->capacity : 16)
                                                : 1;
  c->buf = malloc(c->cap * c->elem);
  if (!c->buf) {
    size_t cap = c->cap;
    free(c);
    return art_fail(ASYNCRT_ENOMEM, "could not allocate a channel of %zu values", cap);
  }
  if (c->kind == ASYNCRT_CHANNEL_WATCH && cfg->initial) {
    memcpy(c->buf, cfg->initial, c->elem);
    c->seq = 1;
  }
  chan_ep *t = ep_new(c, 1), *r = t ? ep_new(c, 0) : NULL;
  if (!r) {
    if (t) {
      art_handle_free(t->handle);
      free(t);
    }
    free(c->buf);
    free(c);
    return art_fail(ASYNCRT_ENOMEM, "could not allocate a channel's endpoints");
  }
  ep_attach(c, t);
  ep_attach(c, r);
  *tx = t->handle;
  *rx = r->handle;
  return ASYNCRT_OK;
}

int art_sender_clone(void *tx_obj, int subscribe, uint64_t *out) {
  chan_ep *tx = tx_obj;
  art_chan *c = tx->ch;
  if (c->kind == ASYNCRT_CHANNEL_ONESHOT || (subscribe && c->kind == ASYNCRT_CHANNEL_MPSC))
    return art_fail(ASYNCRT_EINVAL, "this kind of channel cannot %s", subscribe ? "subscribe" : "clone a sender");
  chan_ep *ep = ep_new(c, !subscribe);
  if (!ep) return art_fail(ASYNCRT_ENOMEM, "could not allocate an endpoint");
  ch_lock(c);
  ep_attach(c, ep);
  ch_unlock(c);
  *out = ep->handle;
  return ASYNCRT_OK;
}

int art_endpoint_free(uint64_t handle, void *obj) {
  if (!art_handle_free(handle)) return art_fail(ASYNCRT_EHANDLE, "the endpoint was freed by another thread meanwhile");
  ep_unref(obj);
  return ASYNCRT_OK;
}

/* ---- the operations, under the lock --------------------------------------------- */

static int mpsc_grow(art_chan *c) {
  size_t cap = c->cap * 2;
  char *b = malloc(cap * c->elem);
  if (!b) return 0;
  for (size_t i = 0; i < c->len; i++)
    memcpy(b + i * c->elem, c->buf + ((c->head + i) % c->cap) * c->elem, c->elem);
  free(c->buf);
  c->buf = b;
  c->cap = cap;
  c->head = 0;
  return 1;
}

/* Tries to put a value in (lock held). Returns OK, EAGAIN (full), ECLOSED
 * or ENOMEM. `queued` says the caller is the first blocked sender, allowed
 * past the others. */
static inline int put_locked(art_chan *c, const void *value, int queued) {
  if (!c->receivers) return ASYNCRT_ECLOSED;
  switch (c->kind) {
  case ASYNCRT_CHANNEL_MPSC:
    if (c->bound ? c->len >= c->bound : 0) return ASYNCRT_EAGAIN;
    if (!queued && c->send_head) return ASYNCRT_EAGAIN; /* FIFO: no overtaking */
    if (c->len == c->cap && !mpsc_grow(c)) return ASYNCRT_ENOMEM;
    elem_copy(c->buf + ((c->head + c->len) % c->cap) * c->elem, value, c->elem);
    c->len++;
    return ASYNCRT_OK;
  case ASYNCRT_CHANNEL_ONESHOT:
    if (c->seq) return ASYNCRT_EAGAIN;
    elem_copy(c->buf, value, c->elem);
    c->seq = 1;
    return ASYNCRT_OK;
  case ASYNCRT_CHANNEL_BROADCAST:
    elem_copy(c->buf + (c->seq % c->cap) * c->elem, value, c->elem);
    c->seq++;
    return ASYNCRT_OK;
  default: /* WATCH */
    elem_copy(c->buf, value, c->elem);
    c->seq++;
    return ASYNCRT_OK;
  }
}

/* Tries to take a value for receiver r (lock held): OK, EAGAIN (nothing
 * yet), ECLOSED, ELAGGED. */
static inline int take_locked(art_chan *c, chan_ep *r, void *out) {
  switch (c->kind) {
  case ASYNCRT_CHANNEL_MPSC:
    if (!c->len) return c->senders ? ASYNCRT_EAGAIN : ASYNCRT_ECLOSED;
    elem_copy(out, c->buf + c->head * c->elem, c->elem);
    c->head = (c->head + 1) % c->cap;
    c->len--;
    return ASYNCRT_OK;
  case ASYNCRT_CHANNEL_ONESHOT:
    if (c->seq && !c->taken) {
      elem_copy(out, c->buf, c->elem);
      c->taken = 1;
      return ASYNCRT_OK;
    }
    return c->senders && !c->taken ? ASYNCRT_EAGAIN : ASYNCRT_ECLOSED;
  case ASYNCRT_CHANNEL_BROADCAST:
    if (c->seq - r->pos > c->cap) { /* overwritten: skip to the oldest kept */
      r->pos = c->seq - c->cap;
      return ASYNCRT_ELAGGED;
    }
    if (r->pos == c->seq) return c->senders ? ASYNCRT_EAGAIN : ASYNCRT_ECLOSED;
    elem_copy(out, c->buf + (r->pos % c->cap) * c->elem, c->elem);
    r->pos++;
    return ASYNCRT_OK;
  default: /* WATCH */
    if (r->pos == c->seq) return c->senders ? ASYNCRT_EAGAIN : ASYNCRT_ECLOSED;
    elem_copy(out, c->buf, c->elem);
    r->pos = c->seq;
    return ASYNCRT_OK;
  }
}

static const char *status_msg(int status) {
  switch (status) {
  case ASYNCRT_ECLOSED: return "the channel is closed";
  case ASYNCRT_EAGAIN: return "the channel has no room (or no value) now";
  case ASYNCRT_ELAGGED: return "the receiver fell behind; the oldest values were overwritten";
  default: return "no memory to grow the channel";
  }
}

/* After a put: who to wake (lock held). */
static size_t put_wakes(art_chan *c, asyncrt_waker *w, size_t cap, int *more) {
  *more = 0;
  if (c->kind == ASYNCRT_CHANNEL_MPSC || c->kind == ASYNCRT_CHANNEL_ONESHOT) {
    chan_ep *r = c->rx_list; /* one receiver */
    if (r && r->waiting) {
      set_waiting(r, 0);
      return (size_t)wake_or_defer(&r->waker, &w[0]);
    }
    return 0;
  }
  return take_rx_wakes(c, w, cap, more);
}

int art_try_send(void *tx_obj, const void *value) {
  chan_ep *tx = tx_obj;
  art_chan *c = tx->ch;
  asyncrt_waker w[32];
  int more;
  ch_lock(c);
  int st = put_locked(c, value, 0);
  size_t n = st ? 0 : put_wakes(c, w, 32, &more);
  ch_unlock(c);
  for (size_t i = 0; i < n; i++) art_waker_wake(&w[i]);
  if (!st && more) wake_receivers(c);
  return st ? art_fail(st, "asyncrt_try_send: %s", status_msg(st)) : ASYNCRT_OK;
}

int art_try_recv(void *rx_obj, void *out) {
  chan_ep *rx = rx_obj;
  art_chan *c = rx->ch;
  ch_lock(c);
  int st = take_locked(c, rx, out);
  asyncrt_waker w = st == ASYNCRT_OK && c->kind == ASYNCRT_CHANNEL_MPSC ? take_send_wake(c) : (asyncrt_waker){0};
  ch_unlock(c);
  art_waker_wake(&w);
  return st ? art_fail(st, "asyncrt_try_recv: %s", status_msg(st)) : ASYNCRT_OK;
}

/* ---- polls ------------------------------------------------------------------------ */

static void unqueue_locked(art_chan *c, chan_op *o) {
  if (o->prev) o->prev->next = o->next;
  else c->send_head = o->next;
  if (o->next) o->next->prev = o->prev;
  else c->send_tail = o->prev;
  o->next = o->prev = NULL;
}

int art_send_poll(void *tx_obj, const void *value, asyncrt_context *cx, asyncrt_chan_op *aop) {
  chan_ep *tx = tx_obj;
  art_chan *c = tx->ch;
  chan_op *o = op_priv(aop);
  /* The common case first: an mpsc send with room, no one in line, at most
   * one receiver to wake. */
  if (ART_LIKELY(c->kind == ASYNCRT_CHANNEL_MPSC && ST(o) == OP_IDLE)) {
    ch_lock(c);
    if (ART_LIKELY(c->receivers && !c->send_head && (!c->bound || c->len < c->bound) && c->len < c->cap)) {
      elem_copy(c->buf + ((c->head + c->len) % c->cap) * c->elem, value, c->elem);
      c->len++;
      asyncrt_waker w1 = {0};
      chan_ep *r = c->rx_list;
      if (r && r->waiting) {
        set_waiting(r, 0);
        wake_or_defer(&r->waker, &w1);
      }
      ch_unlock(c);
      art_waker_wake(&w1);
      return ASYNCRT_POLL_READY;
    }
    ch_unlock(c);
  }
  asyncrt_waker w[32], old = {0}, fresh = {0};
  size_t n = 0;
  int more = 0, st;
  for (;;) {
    ch_lock(c);
    st = put_locked(c, value, ST(o) != OP_IDLE && c->send_head == o);
    if (st != ASYNCRT_EAGAIN || c->kind != ASYNCRT_CHANNEL_MPSC) break;
    /* Full: wait in line (or refresh the waker of the place it holds). A
     * waker is cloned outside the lock, and the state looked at again. */
    int registered = ST(o) != OP_IDLE && art_waker_will_wake(&o->waker, &cx->waker);
    if (!registered && !fresh.vtable && cx->waker.vtable) {
      ch_unlock(c);
      art_waker_clone(&cx->waker, &fresh);
      continue;
    }
    if (ST(o) == OP_IDLE) {
      o->is_send = 1;
      o->reserved = (uint64_t)(uintptr_t)c; /* for a cancel given the op only */
      o->next = NULL;
      o->prev = c->send_tail;
      if (c->send_tail) c->send_tail->next = o;
      else c->send_head = o;
      c->send_tail = o;
    }
    if (!registered) {
      old = o->waker;
      o->waker = fresh;
      fresh = (asyncrt_waker){0};
    }
    SET_ST(o, OP_QUEUED);
    ch_unlock(c);
    art_waker_drop(&old);
    art_waker_drop(&fresh);
    return ASYNCRT_POLL_PENDING;
  }
  asyncrt_waker next = {0};
  if (ST(o) != OP_IDLE) { /* it held a place in line: leave it */
    unqueue_locked(c, o);
    old = o->waker;
    o->waker = (asyncrt_waker){0};
    SET_ST(o, OP_IDLE);
    /* Room may be left for the next in line. */
    if (!st && c->kind == ASYNCRT_CHANNEL_MPSC && (!c->bound || c->len < c->bound)) next = take_send_wake(c);
  }
  if (!st) n = put_wakes(c, w, 32, &more);
  ch_unlock(c);
  art_waker_drop(&old);
  art_waker_drop(&fresh);
  art_waker_wake(&next);
  for (size_t i = 0; i < n; i++) art_waker_wake(&w[i]);
  if (more) wake_receivers(c);
  if (!st) return ASYNCRT_POLL_READY;
  cx->failure = st; /* EAGAIN: a ONESHOT that already had its value */
  art_fail(st, "send: %s", status_msg(st));
  return ASYNCRT_POLL_ERROR;
}

int art_recv_poll(void *rx_obj, void *out, asyncrt_context *cx, asyncrt_chan_op *aop) {
  (void)aop;
  chan_ep *rx = rx_obj;
  art_chan *c = rx->ch;
  asyncrt_waker old = {0}, w = {0}, fresh = {0};
  int st;
  /* Still armed for this task: nothing was sent since it last looked (a
   * send disarms, under the lock, before it wakes the task). */
  if (cx->waker.vtable == &art_task_waker_vtable &&
      atomic_load_explicit(&rx->armed, memory_order_acquire) == (uintptr_t)cx->waker.data)
    return ASYNCRT_POLL_PENDING;
  /* The common case next: an mpsc value to take, no sender in line. */
  if (ART_LIKELY(c->kind == ASYNCRT_CHANNEL_MPSC)) {
    ch_lock(c);
    if (ART_LIKELY(c->len && !c->send_head)) {
      elem_copy(out, c->buf + c->head * c->elem, c->elem);
      c->head = (c->head + 1) % c->cap;
      c->len--;
      set_waiting(rx, !c->len && c->senders && art_waker_will_wake(&rx->waker, &cx->waker)); /* see below */
      ch_unlock(c);
      return ASYNCRT_POLL_READY;
    }
    ch_unlock(c);
  }
  for (;;) {
    ch_lock(c);
    st = take_locked(c, rx, out);
    if (st != ASYNCRT_EAGAIN) break;
    /* Stay registered across receives: a new clone (made outside the lock)
     * only for a new waker. A different one replaces it, and the replaced
     * one is woken so that a second receive on the same endpoint is never
     * left asleep. */
    if (!art_waker_will_wake(&rx->waker, &cx->waker)) {
      if (!fresh.vtable && cx->waker.vtable) {
        ch_unlock(c);
        art_waker_clone(&cx->waker, &fresh);
        continue;
      }
      old = rx->waker;
      rx->waker = fresh;
      fresh = (asyncrt_waker){0};
    }
    int was_waiting = rx->waiting;
    set_waiting(rx, 1);
    ch_unlock(c);
    if (old.vtable && was_waiting) art_waker_wake(&old);
    else art_waker_drop(&old);
    art_waker_drop(&fresh);
    return ASYNCRT_POLL_PENDING;
  }
  /* An mpsc receiver that took the last value stays waiting: a task that
   * receives in a loop then finds its next receive armed (above) and costs
   * no lock when it comes back to an empty queue. A task that does not
   * receive again gets at most one spurious wake from the next send. */
  set_waiting(rx, st == ASYNCRT_OK && c->kind == ASYNCRT_CHANNEL_MPSC && !c->len && c->senders &&
                      art_waker_will_wake(&rx->waker, &cx->waker));
  if (st == ASYNCRT_OK && c->kind == ASYNCRT_CHANNEL_MPSC && c->send_head) w = take_send_wake(c);
  ch_unlock(c);
  art_waker_drop(&fresh);
  art_waker_wake(&w);
  if (st == ASYNCRT_OK) return ASYNCRT_POLL_READY;
  cx->failure = st;
  art_fail(st, "receive: %s", status_msg(st));
  return ASYNCRT_POLL_ERROR;
}

void art_chan_op_cancel(asyncrt_chan_op *aop) {
  chan_op *o = op_priv(aop);
  if (ST(o) == OP_IDLE || !o->is_send) return;
  /* Queueing recorded the channel: the _poll form's caller gives the op
   * only. The op's sender (and so the channel) is alive while it is queued. */
  art_chan *c = (art_chan *)(uintptr_t)o->reserved;
  if (!c) return;
  asyncrt_waker old, next = {0};
  ch_lock(c);
  int was_woken = ST(o) == OP_WOKEN;
  unqueue_locked(c, o);
  old = o->waker;
  o->waker = (asyncrt_waker){0};
  SET_ST(o, OP_IDLE);
  if (was_woken) next = take_send_wake(c); /* the wake it got goes to the next */
  ch_unlock(c);
  art_waker_drop(&old);
  art_waker_wake(&next);
}

size_t art_channel_len(void *rx_obj) {
  chan_ep *rx = rx_obj;
  art_chan *c = rx->ch;
  ch_lock(c);
  size_t n = c->kind == ASYNCRT_CHANNEL_MPSC         ? c->len
             : c->kind == ASYNCRT_CHANNEL_BROADCAST ? (size_t)(c->seq - rx->pos > c->cap ? c->cap : c->seq - rx->pos)
             : c->kind == ASYNCRT_CHANNEL_WATCH     ? (rx->pos != c->seq)
                                                   : (c->seq && !c->taken);
  ch_unlock(c);
  return n;
}

/* ---- the future forms ------------------------------------------------------------ */

static int send_fut_poll(void *self, asyncrt_context *cx, void *out) {
  (void)out;
  chan_op *o = self;
  return art_send_poll(o->ep, o->value, cx, (asyncrt_chan_op *)o);
}

static void send_fut_drop(void *self) {
  chan_op *o = self;
  art_chan_op_cancel((asyncrt_chan_op *)o);
  ep_unref(o->ep);
  o->ep = NULL;
}

static const asyncrt_future_vtable send_vtable = {.size = sizeof send_vtable, .output_size = 0,
                                                  .poll = send_fut_poll, .drop = send_fut_drop};

static int recv_fut_poll(void *self, asyncrt_context *cx, void *out) {
  chan_op *o = self;
  return art_recv_poll(o->ep, out, cx, (asyncrt_chan_op *)o);
}

static void recv_fut_drop(void *self) {
  chan_op *o = self;
  ep_unref(o->ep);
  o->ep = NULL;
}

/* A receive future's output_size is its channel's elem_size: one vtable per
 * size, made on first use and kept for the life of the process. */
static asyncrt_future_vtable *_Atomic recv_vtables[ASYNCRT_CHANNEL_ELEM_MAX + 1];

static const asyncrt_future_vtable *recv_vtable(size_t elem) {
  asyncrt_future_vtable *vt = atomic_load_explicit(&recv_vtables[elem], memory_order_acquire);
  if (vt) return vt;
  asyncrt_future_vtable *made = malloc(sizeof *made);
  if (!made) return NULL;
  *made = (asyncrt_future_vtable){.size = sizeof *made, .output_size = elem, .poll = recv_fut_poll,
                                  .drop = recv_fut_drop};
  if (atomic_compare_exchange_strong(&recv_vtables[elem], &vt, made)) return made;
  free(made);
  return vt;
}

int art_send_future(void *tx_obj, const void *value, asyncrt_chan_op *aop, asyncrt_future *out) {
  chan_ep *tx = tx_obj;
  chan_op *o = op_priv(aop);
  memset(aop, 0, sizeof *aop);
  atomic_fetch_add_explicit(&tx->refs, 1, memory_order_relaxed);
  o->ep = tx;
  o->value = value;
  o->reserved = (uint64_t)(uintptr_t)tx->ch;
  *out = (asyncrt_future){o, &send_vtable};
  return ASYNCRT_OK;
}

int art_recv_future(void *rx_obj, asyncrt_chan_op *aop, asyncrt_future *out) {
  chan_ep *rx = rx_obj;
  const asyncrt_future_vtable *vt = recv_vtable(rx->ch->elem);
  if (!vt) return art_fail(ASYNCRT_ENOMEM, "could not allocate a receive vtable");
  chan_op *o = op_priv(aop);
  memset(aop, 0, sizeof *aop);
  atomic_fetch_add_explicit(&rx->refs, 1, memory_order_relaxed);
  o->ep = rx;
  o->reserved = (uint64_t)(uintptr_t)rx->ch;
  *out = (asyncrt_future){o, vt};
  return ASYNCRT_OK;
}

