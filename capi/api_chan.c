/* api_chan.c -- the public channel functions (see "Channels" in asyncrt.h):
 * argument checks here, the work in runtime/dataplane/art_chan.c. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "../runtime/dataplane/art.h"

#define REFUSE_IN_CHILD()                                                                          \
  do {                                                                                             \
    if (art_is_forked()) return art_fail_forked();                                                 \
  } while (0)

/* Inline for the live handle (every send and receive looks its endpoint
 * up); the failure's message is made out of line. */
static inline int resolve_tx(asyncrt_sender *tx, void **ep) {
  void *o = art_handle_get((uint64_t)(uintptr_t)tx, ART_H_SENDER);
  if (ART_LIKELY(o)) {
    *ep = o;
    return ASYNCRT_OK;
  }
  return art_handle_resolve(tx, ART_H_SENDER, "sender", ep);
}

static inline int resolve_rx(asyncrt_receiver *rx, void **ep) {
  void *o = art_handle_get((uint64_t)(uintptr_t)rx, ART_H_RECEIVER);
  if (ART_LIKELY(o)) {
    *ep = o;
    return ASYNCRT_OK;
  }
  return art_handle_resolve(rx, ART_H_RECEIVER, "receiver", ep);
}

void asyncrt_channel_config_init_size(asyncrt_channel_config *cfg, size_t size) {
  if (!cfg || size < offsetof(asyncrt_channel_config, kind) + sizeof(unsigned)) return;
  asyncrt_channel_config d = {.size = sizeof d, .kind = ASYNCRT_CHANNEL_MPSC, .elem_size = 8};
  memcpy(cfg, &d, size < sizeof d ? size : sizeof d);
  cfg->size = size < sizeof d ? size : sizeof d;
}

int asyncrt_channel_new(const asyncrt_channel_config *in, asyncrt_sender **tx, asyncrt_receiver **rx) {
  REFUSE_IN_CHILD();
  if (!in || !tx || !rx)
    return art_fail(ASYNCRT_EINVAL, "asyncrt_channel_new: %s is NULL", !in ? "cfg" : !tx ? "tx" : "rx");
  *tx = NULL;
  *rx = NULL;
  if (in->size < offsetof(asyncrt_channel_config, capacity) + sizeof in->capacity)
    return art_fail(ASYNCRT_EINVAL, "asyncrt_channel_new: cfg->size %zu is too small", in->size);
  asyncrt_channel_config cfg;
  asyncrt_channel_config_init_size(&cfg, sizeof cfg);
  art_copy_sized(&cfg, sizeof cfg, in, in->size);
  if (cfg.kind > ASYNCRT_CHANNEL_WATCH)
    return art_fail(ASYNCRT_EINVAL, "asyncrt_channel_new: unknown kind %u", cfg.kind);
  if (cfg.flags & ~ASYNCRT_CHANNEL_LOCAL)
    return art_fail(ASYNCRT_EINVAL, "asyncrt_channel_new: unknown flags %#x", cfg.flags);
  if (!cfg.elem_size || cfg.elem_size > ASYNCRT_CHANNEL_ELEM_MAX)
    return art_fail(ASYNCRT_EINVAL, "asyncrt_channel_new: elem_size %zu is not in 1..%u", cfg.elem_size,
                    ASYNCRT_CHANNEL_ELEM_MAX);
  if (cfg.kind == ASYNCRT_CHANNEL_BROADCAST && (!cfg.capacity || cfg.capacity > (1u << 24)))
    return art_fail(ASYNCRT_EINVAL, "asyncrt_channel_new: a broadcast channel needs a capacity in 1..2^24");
  if (cfg.kind == ASYNCRT_CHANNEL_MPSC && cfg.capacity > (1u << 24))
    return art_fail(ASYNCRT_EINVAL, "asyncrt_channel_new: capacity %zu is above 2^24", cfg.capacity);
  if (cfg.value_drop && (cfg.kind == ASYNCRT_CHANNEL_BROADCAST || cfg.kind == ASYNCRT_CHANNEL_WATCH))
    return art_fail(ASYNCRT_EINVAL, "asyncrt_channel_new: value_drop is for ONESHOT and MPSC channels (a "
                                    "broadcast or watch value is copied to every receiver)");
  uint64_t t, r;
  int rc = art_channel_new(&cfg, &t, &r);
  if (rc) return rc;
  *tx = (asyncrt_sender *)(uintptr_t)t;
  *rx = (asyncrt_receiver *)(uintptr_t)r;
  return ASYNCRT_OK;
}

int asyncrt_sender_clone(asyncrt_sender *tx, asyncrt_sender **out) {
  REFUSE_IN_CHILD();
  void *ep;
  int rc = resolve_tx(tx, &ep);
  if (rc) return rc;
  if (!out) return art_fail(ASYNCRT_EINVAL, "asyncrt_sender_clone: out is NULL");
  uint64_t h;
  if ((rc = art_sender_clone(ep, 0, &h))) return rc;
  *out = (asyncrt_sender *)(uintptr_t)h;
  return ASYNCRT_OK;
}

int asyncrt_sender_subscribe(asyncrt_sender *tx, asyncrt_receiver **out) {
  REFUSE_IN_CHILD();
  void *ep;
  int rc = resolve_tx(tx, &ep);
  if (rc) return rc;
  if (!out) return art_fail(ASYNCRT_EINVAL, "asyncrt_sender_subscribe: out is NULL");
  uint64_t h;
  if ((rc = art_sender_clone(ep, 1, &h))) return rc;
  *out = (asyncrt_receiver *)(uintptr_t)h;
  return ASYNCRT_OK;
}

int asyncrt_sender_free(asyncrt_sender *tx) {
  REFUSE_IN_CHILD();
  if (!tx) return ASYNCRT_OK;
  void *ep;
  int rc = resolve_tx(tx, &ep);
  return rc ? rc : art_endpoint_free((uint64_t)(uintptr_t)tx, ep);
}

int asyncrt_receiver_free(asyncrt_receiver *rx) {
  REFUSE_IN_CHILD();
  if (!rx) return ASYNCRT_OK;
  void *ep;
  int rc = resolve_rx(rx, &ep);
  return rc ? rc : art_endpoint_free((uint64_t)(uintptr_t)rx, ep);
}

int asyncrt_try_send(asyncrt_sender *tx, const void *value) {
  REFUSE_IN_CHILD();
  void *ep;
  int rc = resolve_tx(tx, &ep);
  if (rc) return rc;
  if (!value) return art_fail(ASYNCRT_EINVAL, "asyncrt_try_send: value is NULL");
  return art_try_send(ep, value);
}

int asyncrt_try_recv(asyncrt_receiver *rx, void *out) {
  REFUSE_IN_CHILD();
  void *ep;
  int rc = resolve_rx(rx, &ep);
  if (rc) return rc;
  if (!out) return art_fail(ASYNCRT_EINVAL, "asyncrt_try_recv: out is NULL");
  return art_try_recv(ep, out);
}

int asyncrt_send(asyncrt_sender *tx, const void *value, asyncrt_chan_op *op, asyncrt_future *out) {
  REFUSE_IN_CHILD();
  void *ep;
  int rc = resolve_tx(tx, &ep);
  if (rc) return rc;
  if (!value || !op || !out)
    return art_fail(ASYNCRT_EINVAL, "asyncrt_send: %s is NULL", !value ? "value" : !op ? "op" : "out");
  return art_send_future(ep, value, op, out);
}

int asyncrt_recv(asyncrt_receiver *rx, asyncrt_chan_op *op, asyncrt_future *out) {
  REFUSE_IN_CHILD();
  void *ep;
  int rc = resolve_rx(rx, &ep);
  if (rc) return rc;
  if (!op || !out) return art_fail(ASYNCRT_EINVAL, "asyncrt_recv: %s is NULL", !op ? "op" : "out");
  return art_recv_future(ep, op, out);
}

/* The _poll calls return an asyncrt_poll value; a bad argument fails the
 * poll (ERROR with the status in the context) rather than returning it. */
static int poll_error(asyncrt_context *cx, int status) {
  if (cx) cx->failure = status;
  return ASYNCRT_POLL_ERROR;
}

int asyncrt_send_poll(asyncrt_sender *tx, const void *value, asyncrt_context *cx, asyncrt_chan_op *op) {
  if (art_is_forked()) return poll_error(cx, art_fail_forked());
  void *ep;
  int rc = resolve_tx(tx, &ep);
  if (rc) return poll_error(cx, rc);
  if (!value || !cx || !op)
    return poll_error(cx, art_fail(ASYNCRT_EINVAL, "asyncrt_send_poll: %s is NULL",
                                   !value ? "value" : !cx ? "cx" : "op"));
  return art_send_poll(ep, value, cx, op);
}

int asyncrt_recv_poll(asyncrt_receiver *rx, void *out, asyncrt_context *cx, asyncrt_chan_op *op) {
  if (art_is_forked()) return poll_error(cx, art_fail_forked());
  void *ep;
  int rc = resolve_rx(rx, &ep);
  if (rc) return poll_error(cx, rc);
  if (!out || !cx || !op)
    return poll_error(cx, art_fail(ASYNCRT_EINVAL, "asyncrt_recv_poll: %s is NULL", !out ? "out" : !cx ? "cx" : "op"));
  return art_recv_poll(ep, out, cx, op);
}

void asyncrt_chan_op_cancel(asyncrt_chan_op *op) {
  if (op && !art_is_forked()) art_chan_op_cancel(op);
}

int asyncrt_channel_len(asyncrt_receiver *rx, size_t *len) {
  REFUSE_IN_CHILD();
  void *ep;
  int rc = resolve_rx(rx, &ep);
  if (rc) return rc;
  if (!len) return art_fail(ASYNCRT_EINVAL, "asyncrt_channel_len: len is NULL");
  *len = art_channel_len(ep);
  return ASYNCRT_OK;
}
