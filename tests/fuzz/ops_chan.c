/* ops_chan.c -- channels through their non-waiting calls, checked against an
 * exact model: every value sent is unique, so each receive must return
 * precisely the value the model says (FIFO for MPSC, per-receiver positions
 * for BROADCAST with its lag rule, the latest for WATCH), and every value
 * left inside a dying ONESHOT or MPSC channel goes to its value_drop once. */
#include <string.h>

#include "ops.h"

static _Atomic int value_drops[MAX_CHANS];

static void value_drop(void *value, void *user) {
  int c = (int)(intptr_t)user;
  uint64_t v;
  memcpy(&v, value, sizeof v);
  FZ_CHECK((v >> 32) == 0xc4a0u + (unsigned)c, "value_drop of channel %d got %#llx, not one of its values", c,
           (unsigned long long)v);
  atomic_fetch_add(&value_drops[c], 1);
}

static int ep_add(void *h, int c, int is_rx, unsigned pos) {
  for (int i = 0; i < MAX_ENDPOINTS; i++)
    if (!W.eps[i].live) {
      W.eps[i] = (fz_endpoint){.live = 1, .h = h, .chan = c, .is_rx = is_rx, .pos = pos};
      if (is_rx) W.chans[c].receivers++;
      else W.chans[c].senders++;
      return i;
    }
  return -1;
}

/* The values a dying channel still holds (ONESHOT, MPSC). */
static int chan_held(const fz_chan *ch) {
  if (ch->kind == ASYNCRT_CHANNEL_MPSC) return (int)(ch->seq - ch->head);
  if (ch->kind == ASYNCRT_CHANNEL_ONESHOT) return ch->seq && !ch->taken;
  return 0;
}

void chan_endpoint_free(int i, int checked) {
  fz_endpoint *ep = &W.eps[i];
  fz_chan *ch = &W.chans[ep->chan];
  int rc = ep->is_rx ? asyncrt_receiver_free(ep->h) : asyncrt_sender_free(ep->h);
  fz_expect(FN_ENDPOINT_FREE, rc, ST(ASYNCRT_OK), "endpoint free");
  (void)checked;
  stale_add(ep->h);
  ep->live = 0;
  if (ep->is_rx) ch->receivers--;
  else ch->senders--;
  if (!ch->senders && !ch->receivers) {
    FZ_CHECK(ch->async || atomic_load(&value_drops[ep->chan]) == chan_held(ch),
             "channel %d died holding %d values; value_drop ran %d times", ep->chan, chan_held(ch),
             atomic_load(&value_drops[ep->chan]));
    ch->live = 0;
  }
}

void op_chan_new(fz_input *in) {
  int c = -1;
  for (int i = 0; i < MAX_CHANS && c < 0; i++)
    if (!W.chans[i].live) c = i;
  uint8_t b = fz_byte(in), v = fz_byte(in);
  asyncrt_channel_config cfg;
  asyncrt_channel_config_init(&cfg);
  cfg.kind = b % 4;
  cfg.flags = (b >> 2) & 1 ? ASYNCRT_CHANNEL_LOCAL : 0;
  cfg.elem_size = (b >> 3) & 1 ? 16 : 8;
  cfg.capacity = cfg.kind == ASYNCRT_CHANNEL_BROADCAST ? 1 + (v & 3) : cfg.kind == ASYNCRT_CHANNEL_MPSC ? (v & 3) : 0;
  uint64_t initial[2] = {0xc4a0ull << 32, 0};
  if (cfg.kind == ASYNCRT_CHANNEL_WATCH && (v & 4)) cfg.initial = initial;
  if (cfg.kind <= ASYNCRT_CHANNEL_MPSC) {
    cfg.value_drop = value_drop;
    cfg.user = (void *)(intptr_t)(c < 0 ? 0 : c);
  }
  asyncrt_sender *tx = NULL;
  asyncrt_receiver *rx = NULL;
  int bad = 1, rc;
  switch ((b >> 4) % 12) {
  case 0: rc = asyncrt_channel_new(NULL, &tx, &rx); break;
  case 1: rc = asyncrt_channel_new(&cfg, NULL, &rx); break;
  case 2: cfg.size = 8; rc = asyncrt_channel_new(&cfg, &tx, &rx); break;
  case 3: cfg.kind = 9; rc = asyncrt_channel_new(&cfg, &tx, &rx); break;
  case 4: cfg.flags = 2; rc = asyncrt_channel_new(&cfg, &tx, &rx); break;
  case 5: cfg.elem_size = (v & 1) ? 0 : ASYNCRT_CHANNEL_ELEM_MAX + 1; rc = asyncrt_channel_new(&cfg, &tx, &rx); break;
  case 6:
    cfg.kind = ASYNCRT_CHANNEL_BROADCAST;
    cfg.capacity = (v & 1) ? 0 : (1u << 24) + 1;
    cfg.value_drop = NULL;
    rc = asyncrt_channel_new(&cfg, &tx, &rx);
    break;
  case 7:
    cfg.kind = (v & 1) ? ASYNCRT_CHANNEL_BROADCAST : ASYNCRT_CHANNEL_WATCH;
    cfg.capacity = 2;
    cfg.value_drop = value_drop;
    rc = asyncrt_channel_new(&cfg, &tx, &rx);
    break;
  default:
    bad = 0;
    if (c < 0) return;
    rc = asyncrt_channel_new(&cfg, &tx, &rx);
    break;
  }
  fz_expect(FN_CHANNEL_NEW, rc, bad ? ST(ASYNCRT_EINVAL) : ST(ASYNCRT_OK), "channel_new");
  if (rc) return;
  FZ_CHECK(tx && rx, "channel_new returned OK without both endpoints");
  fz_chan *ch = &W.chans[c];
  memset(ch, 0, sizeof *ch);
  ch->live = 1;
  ch->kind = cfg.kind;
  ch->local = (cfg.flags & ASYNCRT_CHANNEL_LOCAL) != 0;
  ch->cap = (unsigned)cfg.capacity;
  ch->elem = (unsigned)cfg.elem_size;
  atomic_store(&value_drops[c], 0);
  int t = ep_add(tx, c, 0, 0), r = ep_add(rx, c, 1, 0);
  if (t < 0 || r < 0) { /* no room for both: give them back */
    if (t >= 0) chan_endpoint_free(t, 1);
    else asyncrt_sender_free(tx), ch->senders--;
    if (r >= 0) chan_endpoint_free(r, 1);
    else asyncrt_receiver_free(rx), ch->receivers--;
    if (ch->live && !ch->senders && !ch->receivers) ch->live = 0;
  }
  fz_trace("chan %d: kind %u cap %u elem %u", c, ch->kind, ch->cap, ch->elem);
}

/* The status and value a try_send / try_recv must give. */
static uint32_t model_send(fz_chan *ch, uint64_t v, int commit) {
  if (!ch->receivers) return ST(ASYNCRT_ECLOSED);
  switch (ch->kind) {
  case ASYNCRT_CHANNEL_MPSC:
    if (ch->cap && ch->seq - ch->head >= ch->cap) return ST(ASYNCRT_EAGAIN);
    break;
  case ASYNCRT_CHANNEL_ONESHOT:
    if (ch->seq) return ST(ASYNCRT_EAGAIN);
    break;
  default: break;
  }
  if (commit && ch->seq < CHAN_VALUES) ch->values[ch->seq++] = v;
  return ST(ASYNCRT_OK);
}

static uint32_t model_recv(fz_chan *ch, fz_endpoint *r, uint64_t *v) {
  uint32_t empty = ch->senders ? ST(ASYNCRT_EAGAIN) : ST(ASYNCRT_ECLOSED);
  switch (ch->kind) {
  case ASYNCRT_CHANNEL_MPSC:
    if (ch->head == ch->seq) return empty;
    *v = ch->values[ch->head++];
    return ST(ASYNCRT_OK);
  case ASYNCRT_CHANNEL_ONESHOT:
    if (ch->seq && !ch->taken) {
      ch->taken = 1;
      *v = ch->values[0];
      return ST(ASYNCRT_OK);
    }
    return ch->senders && !ch->taken ? ST(ASYNCRT_EAGAIN) : ST(ASYNCRT_ECLOSED);
  case ASYNCRT_CHANNEL_BROADCAST:
    if (ch->seq - r->pos > ch->cap) {
      r->pos = ch->seq - ch->cap;
      return ST(ASYNCRT_ELAGGED);
    }
    if (r->pos == ch->seq) return empty;
    *v = ch->values[r->pos++];
    return ST(ASYNCRT_OK);
  default:
    if (r->pos == ch->seq) return empty;
    r->pos = ch->seq;
    *v = ch->values[ch->seq - 1];
    return ST(ASYNCRT_OK);
  }
}

void op_chan(fz_input *in) {
  uint8_t b = fz_byte(in);
  int is_rx = b & 1, idx;
  void *h = pick_handle(in, is_rx ? HT_RECEIVER : HT_SENDER, &idx);
  uint32_t hs = handle_status(h, idx);
  fz_endpoint *ep = idx >= 0 ? &W.eps[idx] : NULL;
  fz_chan *ch = ep ? &W.chans[ep->chan] : NULL;
  int rc;
  switch ((b >> 1) % 5) {
  case 0: { /* try_send / try_recv */
    uint64_t buf[2] = {0, 0}, want_v = 0;
    int null_arg = (b & 0x80) != 0;
    if (!is_rx) {
      uint64_t v = (uint64_t)(0xc4a0u + (ep ? ep->chan : 0)) << 32 | (uint32_t)++W.next_value;
      buf[0] = v;
      buf[1] = ~v;
      uint32_t want = hs ? hs : null_arg ? ST(ASYNCRT_EINVAL) : ch->async ? ~0u : model_send(ch, v, 0);
      rc = asyncrt_try_send(h, null_arg ? NULL : buf);
      fz_expect(FN_TRY_SEND, rc, want, "try_send");
      if (!rc && !ch->async) model_send(ch, v, 1);
    } else {
      uint32_t want = hs ? hs : null_arg ? ST(ASYNCRT_EINVAL) : ch->async ? ~0u : model_recv(ch, ep, &want_v);
      rc = asyncrt_try_recv(h, null_arg ? NULL : buf);
      fz_expect(FN_TRY_RECV, rc, want, "try_recv");
      if (!rc && ch->async) {
        FZ_CHECK((buf[0] >> 32) == 0xc4a0u + (unsigned)ep->chan, "try_recv on channel %d gave %#llx, not one of its values",
                 ep->chan, (unsigned long long)buf[0]);
      } else if (!rc) {
        FZ_CHECK(buf[0] == want_v, "try_recv on channel %d gave %#llx, the model %#llx", ep->chan,
                 (unsigned long long)buf[0], (unsigned long long)want_v);
        if (ch->elem == 16) FZ_CHECK(buf[1] == ~want_v, "try_recv gave a torn 16-byte value");
      }
    }
    return;
  }
  case 1: { /* clone a sender, or subscribe a receiver */
    void *out = NULL;
    int subscribe = is_rx;
    if (is_rx) h = pick_handle(in, HT_SENDER, &idx), hs = handle_status(h, idx);
    ep = idx >= 0 ? &W.eps[idx] : NULL;
    ch = ep ? &W.chans[ep->chan] : NULL;
    rc = subscribe ? asyncrt_sender_subscribe(h, (asyncrt_receiver **)&out) : asyncrt_sender_clone(h, (asyncrt_sender **)&out);
    uint32_t want = hs;
    if (!want) {
      int ok = subscribe ? ch->kind == ASYNCRT_CHANNEL_BROADCAST || ch->kind == ASYNCRT_CHANNEL_WATCH
                         : ch->kind != ASYNCRT_CHANNEL_ONESHOT;
      want = ok ? ST(ASYNCRT_OK) : ST(ASYNCRT_EINVAL);
    }
    fz_expect(subscribe ? FN_SENDER_SUBSCRIBE : FN_SENDER_CLONE, rc, want, "sender_clone / subscribe");
    if (rc) return;
    if (ep_add(out, ep->chan, subscribe, ch->seq) < 0) {
      rc = subscribe ? asyncrt_receiver_free(out) : asyncrt_sender_free(out);
      fz_expect(FN_ENDPOINT_FREE, rc, ST(ASYNCRT_OK), "endpoint free");
    }
    return;
  }
  case 2: /* free */
    if (!ep) {
      rc = is_rx ? asyncrt_receiver_free(h) : asyncrt_sender_free(h);
      fz_expect(FN_ENDPOINT_FREE, rc, h ? ST(ASYNCRT_EHANDLE) : ST(ASYNCRT_OK), "endpoint free");
      return;
    }
    if (atomic_load(&ep->pins)) return; /* a future on it lives: freeing it now is the caller's error */
    chan_endpoint_free(idx, 1);
    return;
  default: { /* len */
    if (!is_rx) return;
    size_t len = 99;
    rc = asyncrt_channel_len(h, b & 0x80 ? NULL : &len);
    fz_expect(FN_CHANNEL_LEN, rc, hs ? hs : b & 0x80 ? ST(ASYNCRT_EINVAL) : ST(ASYNCRT_OK), "channel_len");
    if (!rc && ch->kind == ASYNCRT_CHANNEL_MPSC && !ch->async)
      FZ_CHECK(len == ch->seq - ch->head, "channel %d: len %zu, the model holds %u", ep->chan, len, ch->seq - ch->head);
    return;
  }
  }
}

/* ---- futures on channels: SEND and RECV programs ---------------------------------- */

int chan_future(fz_input *in, int p) {
  prog *g = &fz_progs[p];
  uint8_t b = fz_byte(in);
  int idx;
  g->is_send = b & 1;
  void *h = pick_handle(in, g->is_send ? HT_SENDER : HT_RECEIVER, &idx);
  uint32_t hs = handle_status(h, idx);
  int rc;
  /* A receiver serves one pending receive at a time (the header: two keep
   * waking each other, and a driver that runs until nothing is runnable
   * never returns). */
  if (!g->is_send && idx >= 0 && atomic_load(&W.eps[idx].pins)) return 0;
  if (idx >= 0 && W.chans[W.eps[idx].chan].local && !main_thread_only(g->exec)) return 0;
  if (g->is_send) {
    uint64_t v = (uint64_t)(0xc4a0u + (idx >= 0 ? W.eps[idx].chan : 0)) << 32 | (uint32_t)++W.next_value;
    g->chan_val[0] = v;
    g->chan_val[1] = ~v;
    rc = asyncrt_send(h, (b & 6) == 6 ? NULL : g->chan_val, &g->chan_op, &g->inner);
    fz_expect(FN_SEND, rc, hs ? hs : (b & 6) == 6 ? ST(ASYNCRT_EINVAL) : ST(ASYNCRT_OK), "asyncrt_send");
  } else {
    rc = asyncrt_recv(h, (b & 6) == 6 ? NULL : &g->chan_op, &g->inner);
    fz_expect(FN_RECV, rc, hs ? hs : (b & 6) == 6 ? ST(ASYNCRT_EINVAL) : ST(ASYNCRT_OK), "asyncrt_recv");
  }
  if (rc) return 0;
  if (!g->is_send) FZ_CHECK(g->inner.vtable->output_size == W.chans[W.eps[idx].chan].elem,
                            "a receive future's output_size is %zu, the channel's elem_size %u",
                            g->inner.vtable->output_size, W.chans[W.eps[idx].chan].elem);
  g->ep = idx;
  g->has_inner = 1;
  atomic_fetch_add(&W.eps[idx].pins, 1);
  W.chans[W.eps[idx].chan].async = 1;
  return 1;
}
